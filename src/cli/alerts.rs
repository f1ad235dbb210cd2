//! `daypass alerts`: list the monitor's alerts, acknowledge and resolve
//! them (docs/monitoring.md). Who may see or decide which alert is the
//! server's business; this file owns the flags and what is printed.

use clap::{Subcommand, ValueEnum};
use serde_json::{Value, json};

use super::{CliResult, Connection, connect::connect, output};
use crate::pb;

#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// Open and acknowledged alerts, newest first.
    List {
        /// Resolved alerts too.
        #[arg(long)]
        all: bool,
        /// Only alerts at least this severe.
        #[arg(long, value_enum)]
        severity: Option<SeverityArg>,
        /// Only alerts of this rule (e.g. off-hours, denied-burst).
        #[arg(long)]
        rule: Option<String>,
        /// Only alerts about this tenant.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Say that you are looking into an alert.
    Ack {
        /// The alert's id (a-…), from `daypass alerts list`.
        id: String,
        /// What you are doing about it (logged).
        #[arg(long)]
        note: String,
    },
    /// Close an alert.
    Resolve {
        /// The alert's id (a-…), from `daypass alerts list`.
        id: String,
        /// What was found and done (logged).
        #[arg(long)]
        note: String,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum SeverityArg {
    Info,
    Warning,
    Critical,
}

impl SeverityArg {
    fn as_str(self) -> &'static str {
        match self {
            SeverityArg::Info => "info",
            SeverityArg::Warning => "warning",
            SeverityArg::Critical => "critical",
        }
    }
}

/// Runs one `daypass alerts` command against the server.
pub(super) async fn run(conn: &Connection, command: AlertsCommand, json_out: bool) -> CliResult {
    let mut c = connect(conn).await?;
    match command {
        AlertsCommand::List {
            all,
            severity,
            rule,
            tenant,
        } => {
            let alerts = c
                .alerts
                .list_alerts(pb::ListAlertsRequest {
                    include_resolved: all,
                    min_severity: severity.map(|s| s.as_str().to_owned()).unwrap_or_default(),
                    rule: rule.unwrap_or_default(),
                    tenant: tenant.unwrap_or_default(),
                })
                .await?
                .into_inner()
                .alerts;
            let text = if alerts.is_empty() {
                format!(
                    "no {}alerts\n",
                    if all { "" } else { "open or acknowledged " }
                )
            } else {
                table(&alerts)
            };
            output::print_json_or_text(
                json_out,
                &Value::Array(alerts.iter().map(alert_json).collect()),
                &text,
            );
        }
        AlertsCommand::Ack { id, note } => {
            let r = c
                .alerts
                .acknowledge_alert(pb::DecideAlertRequest { id, note })
                .await?
                .into_inner();
            decided(json_out, &r, "acknowledged");
        }
        AlertsCommand::Resolve { id, note } => {
            let r = c
                .alerts
                .resolve_alert(pb::DecideAlertRequest { id, note })
                .await?
                .into_inner();
            decided(json_out, &r, "resolved");
        }
    }
    Ok(())
}

fn decided(json_out: bool, r: &pb::AlertResponse, what: &str) {
    let a = r.alert.clone().unwrap_or_default();
    output::print_json_or_text(
        json_out,
        &json!({"alert": alert_json(&a), "receipt_seq": r.receipt.as_ref().map(|r| r.seq)}),
        &format!("{what} {} ({}: {})\n", a.id, a.rule, a.summary),
    );
}

fn table(alerts: &[pb::Alert]) -> String {
    let mut t = output::Table::new(vec![
        "id", "severity", "rule", "state", "raised", "tenant", "summary",
    ]);
    for a in alerts {
        t.row(vec![
            a.id.clone(),
            a.severity.clone(),
            a.rule.clone(),
            a.state.clone(),
            output::time(a.raised_at_ms),
            if a.tenant.is_empty() {
                "-".into()
            } else {
                a.tenant.clone()
            },
            a.summary.clone(),
        ]);
    }
    t.render()
}

fn alert_json(a: &pb::Alert) -> Value {
    json!({
        "id": a.id,
        "rule": a.rule,
        "severity": a.severity,
        "subject": a.subject,
        "tenant": a.tenant,
        "summary": a.summary,
        "trigger_seqs": a.trigger_seqs,
        "state": a.state,
        "raised_at": output::time(a.raised_at_ms),
        "acknowledged_by": a.acknowledged_by,
        "acknowledge_note": a.acknowledge_note,
        "resolved_by": a.resolved_by,
        "resolve_note": a.resolve_note,
    })
}
