//! The breach register's documents, as text: the notification of one
//! affected tenant (every field of Art 7.3 a–d, with what updates added)
//! and the Art 33(5) documentation (facts, effects, corrective measures,
//! the affected tenants' clocks and the full timeline), each as Markdown,
//! HTML or JSON. Pure functions of an [`Incident`] and the time.
//!
//! Not here: who may read which document (see [`crate::policy`]).

use serde_json::{Value, json};

use crate::{
    audit::state::incidents::{Incident, TenantClock, seqs_text},
    clock::Timestamp,
    domain::Name,
};

/// A document's format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DocFormat {
    Markdown,
    Html,
    Json,
}

impl DocFormat {
    /// `markdown` (or empty), `html` or `json`.
    pub fn parse(s: &str) -> Result<DocFormat, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "markdown" | "md" => Ok(DocFormat::Markdown),
            "html" => Ok(DocFormat::Html),
            "json" => Ok(DocFormat::Json),
            _ => Err(format!(
                "format {:?} is not one of markdown, html, json",
                crate::domain::truncate(s, 20)
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DocFormat::Markdown => "markdown",
            DocFormat::Html => "html",
            DocFormat::Json => "json",
        }
    }

    pub fn media_type(self) -> &'static str {
        match self {
            DocFormat::Markdown => "text/markdown",
            DocFormat::Html => "text/html",
            DocFormat::Json => "application/json",
        }
    }
}

/// A document as labelled sections, rendered three ways (also the
/// register of processing's, [`super::processing_documents`]).
pub(super) struct Doc {
    pub(super) title: String,
    /// (heading, lines)
    pub(super) sections: Vec<(String, Vec<String>)>,
}

/// The notification to `tenant` (Art 7.3 a–d).
pub fn notification(i: &Incident, tenant: &Name, now: Timestamp, format: DocFormat) -> String {
    let r = &i.report;
    let clock = i.clocks.get(tenant);
    let extra = |f: fn(&crate::domain::IncidentUpdate) -> &String| -> Vec<String> {
        i.updates
            .iter()
            .filter(|u| !f(&u.update).is_empty())
            .map(|u| format!("{} (update of {})", f(&u.update), u.at))
            .collect()
    };
    if format == DocFormat::Json {
        let mut v = json!({
            "document": "personal data breach notification",
            "incident": i.id.as_str(),
            "tenant": tenant.as_str(),
            "became_known_at": r.became_known_at.to_string(),
            "nature": r.nature,
            "data_subject_categories": r.subject_categories,
            "approx_data_subjects": r.approx_subjects,
            "personal_data_categories": r.data_categories,
            "approx_records": r.approx_records,
            "contact_point": {"name": r.contact.name, "email": r.contact.email},
            "likely_consequences": r.consequences,
            "measures": r.measures,
            "evidence_seqs": i.all_evidence(),
            "updates": updates_json(i),
            "generated_at": now.to_string(),
        });
        if let (Some(c), Value::Object(m)) = (clock, &mut v) {
            m.insert("clock".into(), clock_json(c, now));
        }
        return pretty(&v);
    }
    let mut consequences = vec![r.consequences.clone()];
    consequences.extend(extra(|u| &u.consequences));
    let mut measures = vec![r.measures.clone()];
    measures.extend(extra(|u| &u.measures));
    let mut nature = vec![r.nature.clone()];
    nature.extend(extra(|u| &u.facts));
    let mut sections = vec![(
        "Incident".to_owned(),
        vec![
            format!("Incident: {}", i.id),
            format!("Controller (tenant): {tenant}"),
            format!("Became known: {}", r.became_known_at),
        ],
    )];
    if let Some(c) = clock {
        sections[0].1.push(format!(
            "Notification due: {} ({})",
            c.due_at,
            c.status(now).as_str()
        ));
    }
    sections.extend([
        ("(a) Nature of the breach".to_owned(), nature),
        (
            "(a) Categories of data subjects".to_owned(),
            r.subject_categories.clone(),
        ),
        (
            "(a) Approximate number of data subjects".to_owned(),
            vec![r.approx_subjects.to_string()],
        ),
        (
            "(a) Categories of personal data".to_owned(),
            r.data_categories.clone(),
        ),
        (
            "(a) Approximate number of personal data records".to_owned(),
            vec![r.approx_records.to_string()],
        ),
        (
            "(b) Contact point (data protection officer)".to_owned(),
            vec![format!("{} <{}>", r.contact.name, r.contact.email)],
        ),
        ("(c) Likely consequences".to_owned(), consequences),
        ("(d) Measures taken or proposed".to_owned(), measures),
    ]);
    let evidence = i.all_evidence();
    if !evidence.is_empty() {
        sections.push((
            "Evidence (daypass log entries)".to_owned(),
            vec![seqs_text(&evidence)],
        ));
    }
    render(
        &Doc {
            title: format!("Personal data breach notification: {}", i.id),
            sections,
        },
        format,
    )
}

/// The Art 33(5) documentation: facts, effects, corrective measures,
/// timeline.
pub fn documentation(i: &Incident, now: Timestamp, format: DocFormat) -> String {
    let r = &i.report;
    let timeline = i.timeline();
    if format == DocFormat::Json {
        let clocks: serde_json::Map<String, Value> = i
            .clocks
            .iter()
            .map(|(t, c)| (t.to_string(), clock_json(c, now)))
            .collect();
        let v = json!({
            "document": "breach documentation (GDPR Art 33(5))",
            "incident": i.id.as_str(),
            "recorded_at": i.recorded_at.to_string(),
            "recorded_by": i.recorded_by,
            "became_known_at": r.became_known_at.to_string(),
            "facts": {
                "nature": r.nature,
                "updates": i.updates.iter().filter(|u| !u.update.facts.is_empty())
                    .map(|u| json!({"at": u.at.to_string(), "by": u.by, "facts": u.update.facts}))
                    .collect::<Vec<_>>(),
                "evidence_seqs": i.all_evidence(),
            },
            "effects": {
                "data_subject_categories": r.subject_categories,
                "approx_data_subjects": r.approx_subjects,
                "personal_data_categories": r.data_categories,
                "approx_records": r.approx_records,
                "likely_consequences": r.consequences,
            },
            "corrective_measures": r.measures,
            "contact_point": {"name": r.contact.name, "email": r.contact.email},
            "updates": updates_json(i),
            "tenants": clocks,
            "timeline": timeline.iter().map(|e| json!({
                "seq": e.seq, "at": e.at.to_string(), "by": e.by, "what": e.what,
            })).collect::<Vec<_>>(),
            "generated_at": now.to_string(),
        });
        return pretty(&v);
    }
    let updates_of = |f: fn(&crate::domain::IncidentUpdate) -> &String| -> Vec<String> {
        i.updates
            .iter()
            .filter(|u| !f(&u.update).is_empty())
            .map(|u| format!("{} ({} by {})", f(&u.update), u.at, u.by))
            .collect()
    };
    let mut facts = vec![format!("Nature: {}", r.nature)];
    facts.extend(updates_of(|u| &u.facts));
    let evidence = i.all_evidence();
    if !evidence.is_empty() {
        facts.push(format!("Evidence (log entries): {}", seqs_text(&evidence)));
    }
    let mut effects = vec![
        format!("Data subjects: {}", r.subject_categories.join(", ")),
        format!("Approximate number of data subjects: {}", r.approx_subjects),
        format!("Personal data: {}", r.data_categories.join(", ")),
        format!("Approximate number of records: {}", r.approx_records),
        format!("Likely consequences: {}", r.consequences),
    ];
    effects.extend(updates_of(|u| &u.consequences));
    let mut measures = vec![r.measures.clone()];
    measures.extend(updates_of(|u| &u.measures));
    let tenants = i
        .clocks
        .iter()
        .map(|(t, c)| {
            let told = c.first_notification().map_or("not yet".to_owned(), |n| {
                format!(
                    "{} via {} by {}",
                    n.notification.notified_at, n.notification.channel, n.notification.by
                )
            });
            format!(
                "{t}: due {}, {}; notified: {told}",
                c.due_at,
                c.status(now).as_str()
            )
        })
        .collect();
    let doc = Doc {
        title: format!("Breach documentation (GDPR Art 33(5)): {}", i.id),
        sections: vec![
            (
                "Incident".into(),
                vec![
                    format!("Incident: {}", i.id),
                    format!("Became known: {}", r.became_known_at),
                    format!("Recorded: {} by {}", i.recorded_at, i.recorded_by),
                    format!("Contact point: {} <{}>", r.contact.name, r.contact.email),
                ],
            ),
            ("Facts".into(), facts),
            ("Effects".into(), effects),
            ("Corrective measures".into(), measures),
            ("Affected tenants and notifications".into(), tenants),
            (
                "Timeline".into(),
                timeline
                    .iter()
                    .map(|e| format!("#{} {} {}: {}", e.seq, e.at, e.by, e.what))
                    .collect(),
            ),
        ],
    };
    render(&doc, format)
}

fn updates_json(i: &Incident) -> Vec<Value> {
    i.updates
        .iter()
        .map(|u| {
            json!({
                "seq": u.seq, "at": u.at.to_string(), "by": u.by,
                "facts": u.update.facts, "measures": u.update.measures,
                "likely_consequences": u.update.consequences,
                "evidence_seqs": u.update.evidence,
            })
        })
        .collect()
}

fn clock_json(c: &TenantClock, now: Timestamp) -> Value {
    json!({
        "due_at": c.due_at.to_string(),
        "status": c.status(now).as_str(),
        "notifications": c.notifications.iter().map(|n| json!({
            "notified_at": n.notification.notified_at.to_string(),
            "channel": n.notification.channel,
            "notified_by": n.notification.by,
            "recorded_by": n.recorded_by,
            "seq": n.seq,
        })).collect::<Vec<_>>(),
        "overdue_seq": c.overdue_logged.map(|(_, s)| s),
    })
}

pub(super) fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

pub(super) fn render(d: &Doc, format: DocFormat) -> String {
    match format {
        DocFormat::Markdown => {
            let mut out = format!("# {}\n", d.title);
            for (h, lines) in &d.sections {
                out.push_str(&format!("\n## {h}\n\n"));
                for l in lines {
                    // Continuation lines of a multi-line text stay in the item.
                    out.push_str(&format!("- {}\n", l.replace('\n', "\n  ")));
                }
            }
            out
        }
        DocFormat::Html => {
            let mut out = format!(
                "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title></head>\n<body>\n<h1>{t}</h1>\n",
                t = escape(&d.title)
            );
            for (h, lines) in &d.sections {
                out.push_str(&format!("<h2>{}</h2>\n<ul>\n", escape(h)));
                for l in lines {
                    out.push_str(&format!("<li>{}</li>\n", escape(l).replace('\n', "<br>")));
                }
                out.push_str("</ul>\n");
            }
            out.push_str("</body></html>\n");
            out
        }
        // Callers render JSON themselves.
        DocFormat::Json => String::new(),
    }
}

use crate::domain::text::escape_html as escape;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escapes_peer_text_and_formats_parse() {
        assert_eq!(escape("<b>&\"'"), "&lt;b&gt;&amp;&quot;&#39;");
        assert_eq!(DocFormat::parse("").unwrap(), DocFormat::Markdown);
        assert_eq!(DocFormat::parse("HTML").unwrap(), DocFormat::Html);
        assert!(DocFormat::parse("pdf").unwrap_err().contains("format"));
    }
}
