//! `daypass incident`: the breach register (docs/compliance/breach.md):
//! record a breach, append updates, record that a tenant was notified,
//! show, list, and write the notification document or the Art 33(5)
//! documentation. What is valid and who may do what is the server's
//! business; this file owns the flags and what is printed.

use clap::{Subcommand, ValueEnum};
use serde_json::{Value, json};

use super::{CliError, CliResult, Connection, connect::connect, output};
use crate::{clock::Timestamp, pb};

#[derive(Debug, Subcommand)]
pub enum IncidentCommand {
    /// Record a personal data breach with every field of Art 7.3 a–d (admin).
    Record {
        /// (a) What happened.
        #[arg(long)]
        nature: String,
        /// (a) A category of data subjects concerned (repeat for more).
        #[arg(long = "subjects", required = true)]
        subject_categories: Vec<String>,
        /// (a) A category of personal data concerned (repeat for more).
        #[arg(long = "data", required = true)]
        data_categories: Vec<String>,
        /// (a) Approximate number of data subjects.
        #[arg(long, allow_negative_numbers = true)]
        approx_subjects: i64,
        /// (a) Approximate number of personal data records.
        #[arg(long, allow_negative_numbers = true)]
        approx_records: i64,
        /// (b) The contact point's (DPO's) name.
        #[arg(long)]
        dpo_name: String,
        /// (b) The contact point's (DPO's) e-mail address.
        #[arg(long)]
        dpo_email: String,
        /// (c) The likely consequences.
        #[arg(long)]
        consequences: String,
        /// (d) Measures taken or proposed.
        #[arg(long)]
        measures: String,
        /// When the breach became known (RFC 3339, e.g.
        /// 2026-12-01T09:30:00Z); the 24 h clock starts here.
        #[arg(long)]
        known_at: String,
        /// An affected tenant (repeat for more).
        #[arg(long = "tenant", required = true)]
        tenants: Vec<String>,
        /// A log entry (seq) that shows it (repeat for more).
        #[arg(long = "evidence")]
        evidence: Vec<u64>,
    },
    /// Add facts, measures, consequences or evidence (append-only, admin).
    Update {
        /// The incident's id (i-…).
        id: String,
        /// New facts learnt about the breach (appended to its record).
        #[arg(long, default_value = "", hide_default_value = true)]
        facts: String,
        /// Measures taken or proposed since (appended).
        #[arg(long, default_value = "", hide_default_value = true)]
        measures: String,
        /// Likely consequences, as now understood (appended).
        #[arg(long, default_value = "", hide_default_value = true)]
        consequences: String,
        /// Seq of a log entry that is evidence (repeat it).
        #[arg(long = "evidence")]
        evidence: Vec<u64>,
    },
    /// Record that an affected tenant was notified (admin).
    Notify {
        /// The incident's id (i-…).
        id: String,
        /// The tenant that was told.
        #[arg(long)]
        tenant: String,
        /// How it was told (e-mail to its DPO, phone, ...).
        #[arg(long)]
        channel: String,
        /// When (RFC 3339); default now.
        #[arg(long)]
        at: Option<String>,
        /// Who told it; default you.
        #[arg(long)]
        by: Option<String>,
    },
    /// One incident with its updates and each tenant's clock.
    Show {
        /// The incident's id (i-…).
        id: String,
    },
    /// The incidents you may see, newest first.
    List {
        /// Only incidents affecting this tenant.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// The notification document for one tenant, or (with --art-33) the
    /// Art 33(5) documentation with the full timeline.
    Document {
        /// The incident's id (i-…).
        id: String,
        /// The tenant the notification is for (a tenant: itself by default).
        #[arg(long)]
        tenant: Option<String>,
        /// The Art 33(5) documentation instead of the notification.
        #[arg(long = "art-33")]
        art_33: bool,
        /// markdown, html or json.
        #[arg(long, value_enum, default_value = "markdown")]
        format: FormatArg,
        /// Write to this file instead of standard output.
        #[arg(long, short = 'o')]
        output: Option<std::path::PathBuf>,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum FormatArg {
    Markdown,
    Html,
    Json,
}

impl FormatArg {
    fn as_str(self) -> &'static str {
        match self {
            FormatArg::Markdown => "markdown",
            FormatArg::Html => "html",
            FormatArg::Json => "json",
        }
    }
}

fn millis(flag: &str, s: &str) -> Result<i64, CliError> {
    Timestamp::parse_rfc3339(s)
        .map(Timestamp::millis)
        .ok_or_else(|| cli_err!("--{flag} {s:?} is not an RFC 3339 time like 2026-12-01T09:30:00Z"))
}

/// Runs one `daypass incident` command against the server.
pub(super) async fn run(conn: &Connection, command: IncidentCommand, json_out: bool) -> CliResult {
    let mut c = connect(conn).await?;
    match command {
        IncidentCommand::Record {
            nature,
            subject_categories,
            data_categories,
            approx_subjects,
            approx_records,
            dpo_name,
            dpo_email,
            consequences,
            measures,
            known_at,
            tenants,
            evidence,
        } => {
            let r = c
                .incidents
                .record_incident(pb::RecordIncidentRequest {
                    nature,
                    data_subject_categories: subject_categories,
                    personal_data_categories: data_categories,
                    approx_data_subjects: approx_subjects,
                    approx_records,
                    contact_name: dpo_name,
                    contact_email: dpo_email,
                    likely_consequences: consequences,
                    measures,
                    became_known_at_ms: millis("known-at", &known_at)?,
                    tenants,
                    evidence_seqs: evidence,
                })
                .await?
                .into_inner();
            changed(json_out, &r, "recorded");
        }
        IncidentCommand::Update {
            id,
            facts,
            measures,
            consequences,
            evidence,
        } => {
            let r = c
                .incidents
                .update_incident(pb::UpdateIncidentRequest {
                    id,
                    facts,
                    measures,
                    likely_consequences: consequences,
                    evidence_seqs: evidence,
                })
                .await?
                .into_inner();
            changed(json_out, &r, "updated");
        }
        IncidentCommand::Notify {
            id,
            tenant,
            channel,
            at,
            by,
        } => {
            let notified_at_ms = match at {
                Some(t) => millis("at", &t)?,
                None => 0,
            };
            let r = c
                .incidents
                .record_notification(pb::RecordNotificationRequest {
                    id,
                    tenant,
                    notified_at_ms,
                    channel,
                    notified_by: by.unwrap_or_default(),
                })
                .await?
                .into_inner();
            changed(json_out, &r, "notification recorded for");
        }
        IncidentCommand::Show { id } => {
            let i = c
                .incidents
                .get_incident(pb::GetIncidentRequest { id })
                .await?
                .into_inner();
            output::print_json_or_text(json_out, &incident_json(&i), &detail(&i));
        }
        IncidentCommand::List { tenant } => {
            let list = c
                .incidents
                .list_incidents(pb::ListIncidentsRequest {
                    tenant: tenant.unwrap_or_default(),
                })
                .await?
                .into_inner()
                .incidents;
            let text = if list.is_empty() {
                "no incidents\n".to_owned()
            } else {
                table(&list)
            };
            output::print_json_or_text(
                json_out,
                &Value::Array(list.iter().map(incident_json).collect()),
                &text,
            );
        }
        IncidentCommand::Document {
            id,
            tenant,
            art_33,
            format,
            output: file,
        } => {
            let doc = if art_33 {
                c.incidents
                    .documentation(pb::DocumentationRequest {
                        id,
                        format: format.as_str().into(),
                    })
                    .await?
                    .into_inner()
            } else {
                c.incidents
                    .notification_document(pb::NotificationDocumentRequest {
                        id,
                        tenant: tenant.unwrap_or_default(),
                        format: format.as_str().into(),
                    })
                    .await?
                    .into_inner()
            };
            match file {
                Some(path) => {
                    std::fs::write(&path, &doc.content)
                        .map_err(|e| cli_err!("cannot write {}: {e}", path.display()))?;
                    println!("wrote {} ({})", path.display(), doc.media_type);
                }
                None => print!("{}", doc.content),
            }
        }
    }
    Ok(())
}

fn changed(json_out: bool, r: &pb::IncidentResponse, what: &str) {
    let i = r.incident.clone().unwrap_or_default();
    let seq = r.receipt.as_ref().map(|r| r.seq);
    output::print_json_or_text(
        json_out,
        &json!({"incident": incident_json(&i), "receipt_seq": seq}),
        &format!(
            "{what} {} (logged as #{})\n{}",
            i.id,
            seq.unwrap_or_default(),
            detail(&i)
        ),
    );
}

fn table(list: &[pb::Incident]) -> String {
    let mut t = output::Table::new(vec!["id", "became known", "tenants", "clocks", "nature"]);
    for i in list {
        t.row(vec![
            i.id.clone(),
            output::time(i.became_known_at_ms),
            i.clocks.len().to_string(),
            clocks_summary(i),
            crate::domain::truncate(&i.nature.replace('\n', " "), 60),
        ]);
    }
    t.render()
}

fn clocks_summary(i: &pb::Incident) -> String {
    i.clocks
        .iter()
        .map(|c| format!("{} {}", c.tenant, c.status))
        .collect::<Vec<_>>()
        .join(", ")
}

fn detail(i: &pb::Incident) -> String {
    let seqs = |s: &[u64]| {
        if s.is_empty() {
            "-".to_owned()
        } else {
            s.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
        }
    };
    let mut t = output::Table::new(vec!["FIELD", "VALUE"]);
    for (k, v) in [
        ("id", i.id.clone()),
        ("nature", i.nature.clone()),
        ("data subjects", i.data_subject_categories.join(", ")),
        ("approx. subjects", i.approx_data_subjects.to_string()),
        ("personal data", i.personal_data_categories.join(", ")),
        ("approx. records", i.approx_records.to_string()),
        (
            "contact point",
            format!("{} <{}>", i.contact_name, i.contact_email),
        ),
        ("consequences", i.likely_consequences.clone()),
        ("measures", i.measures.clone()),
        ("became known", output::time(i.became_known_at_ms)),
        ("evidence", seqs(&i.evidence_seqs)),
        (
            "recorded",
            format!(
                "{} by {} (#{})",
                output::time(i.recorded_at_ms),
                i.recorded_by,
                i.recorded_seq
            ),
        ),
    ] {
        t.row(vec![k.to_owned(), v.replace('\n', " / ")]);
    }
    let mut out = t.render();
    if !i.updates.is_empty() {
        let mut u = output::Table::new(vec!["UPDATE", "AT", "BY", "ADDS"]);
        for (n, up) in i.updates.iter().enumerate() {
            let mut adds = Vec::new();
            for (label, text) in [
                ("facts", &up.facts),
                ("measures", &up.measures),
                ("consequences", &up.likely_consequences),
            ] {
                if !text.is_empty() {
                    adds.push(format!("{label}: {}", text.replace('\n', " / ")));
                }
            }
            if !up.evidence_seqs.is_empty() {
                adds.push(format!("evidence: {}", seqs(&up.evidence_seqs)));
            }
            u.row(vec![
                (n + 1).to_string(),
                output::time(up.at_ms),
                up.by.clone(),
                adds.join("; "),
            ]);
        }
        out.push('\n');
        out.push_str(&u.render());
    }
    let mut c = output::Table::new(vec!["TENANT", "DUE", "STATUS", "NOTIFIED"]);
    for k in &i.clocks {
        let told = k.notifications.first().map_or("-".to_owned(), |n| {
            format!(
                "{} via {} by {}",
                output::time(n.notified_at_ms),
                n.channel,
                n.notified_by
            )
        });
        c.row(vec![
            k.tenant.clone(),
            output::time(k.due_at_ms),
            k.status.clone(),
            told,
        ]);
    }
    out.push('\n');
    out.push_str(&c.render());
    out
}

fn incident_json(i: &pb::Incident) -> Value {
    json!({
        "id": i.id,
        "nature": i.nature,
        "data_subject_categories": i.data_subject_categories,
        "personal_data_categories": i.personal_data_categories,
        "approx_data_subjects": i.approx_data_subjects,
        "approx_records": i.approx_records,
        "contact_name": i.contact_name,
        "contact_email": i.contact_email,
        "likely_consequences": i.likely_consequences,
        "measures": i.measures,
        "became_known_at": output::time_json(i.became_known_at_ms),
        "evidence_seqs": i.evidence_seqs,
        "recorded_at": output::time_json(i.recorded_at_ms),
        "recorded_by": i.recorded_by,
        "recorded_seq": i.recorded_seq,
        "updates": i.updates.iter().map(|u| json!({
            "seq": u.seq, "at": output::time_json(u.at_ms), "by": u.by, "facts": u.facts,
            "measures": u.measures, "likely_consequences": u.likely_consequences,
            "evidence_seqs": u.evidence_seqs,
        })).collect::<Vec<_>>(),
        "clocks": i.clocks.iter().map(|c| json!({
            "tenant": c.tenant, "due_at": output::time_json(c.due_at_ms), "status": c.status,
            "overdue": c.overdue, "overdue_seq": c.overdue_seq,
            "notifications": c.notifications.iter().map(|n| json!({
                "notified_at": output::time_json(n.notified_at_ms), "channel": n.channel,
                "notified_by": n.notified_by, "recorded_by": n.recorded_by, "seq": n.seq,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}
