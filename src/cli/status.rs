//! `daypass status`: where this command's connection settings come from
//! (a profile, flags or the dev directory), the server, who the server
//! says you are (`WhoAmI`), your client certificate's expiry, and the
//! server's health (the gRPC health service) and log size (the newest
//! signed checkpoint, for the roles that may read it). Exits 1 with the
//! reason when the server cannot be reached.

use serde_json::{Value, json};
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

use super::{
    CliError, CliResult, Connection,
    connect::{self, Resolved},
    login::whoami_line,
    output,
};
use crate::{
    client::ClientIdentity,
    clock::{Clock as _, SystemClock, Timestamp},
    pb,
};

/// Fewer days than this left on the client certificate earn a warning.
const WARN_DAYS: i64 = 7;

/// `daypass status`.
pub(super) async fn status(conn: &Connection, json_out: bool) -> CliResult {
    let resolved = connect::resolve(conn)?;
    let id = resolved.identity()?;
    let info = id.check().map_err(|e| {
        let path = match e.file {
            crate::client::IdentityFile::Ca => &resolved.ca,
            crate::client::IdentityFile::Cert => &resolved.cert,
            crate::client::IdentityFile::Key => &resolved.key,
        };
        cli_err!("{}: {e}", path.display())
    })?;
    let now = SystemClock.now();
    let days_left = (info.not_after.millis() - now.millis()).div_euclid(86_400_000);
    let mut report = Report {
        rows: vec![
            ("using", resolved.describe()),
            ("server", resolved.server.clone()),
            ("certificate", resolved.cert.display().to_string()),
            ("expires", expiry(info.not_after, days_left, now)),
        ],
        json: json!({
            "using": resolved.describe(),
            "source": source_json(&resolved),
            "server": resolved.server,
            "ca": resolved.ca.display().to_string(),
            "cert": resolved.cert.display().to_string(),
            "key": resolved.key.display().to_string(),
            "cert_expires_at": info.not_after.to_rfc3339(),
            "cert_days_left": days_left,
        }),
    };
    if info.not_after <= now {
        eprintln!(
            "daypass: warning: your client certificate expired at {}: the server will refuse it; ask for a new one",
            info.not_after
        );
    } else if days_left < WARN_DAYS {
        eprintln!(
            "daypass: warning: your client certificate expires in {days_left} day(s), at {}: ask for a new one",
            info.not_after
        );
    }
    match ask_server(&resolved, &id, &mut report).await {
        Ok(()) => {
            report.json["reachable"] = true.into();
            report.print(json_out);
            Ok(())
        }
        Err(e) => {
            report.rows.push(("reachable", format!("no: {e}")));
            report.json["reachable"] = false.into();
            report.json["error"] = e.to_string().into();
            report.print(json_out);
            Err(cli_err!("the server cannot be reached: {e}"))
        }
    }
}

/// What `status` found, as rows and as JSON.
struct Report {
    rows: Vec<(&'static str, String)>,
    json: Value,
}

impl Report {
    fn print(&self, json_out: bool) {
        let width = self.rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        let text: String = self
            .rows
            .iter()
            .map(|(k, v)| format!("{k:<width$}  {v}\n"))
            .collect();
        output::print_json_or_text(json_out, &self.json, &text);
    }
}

/// Health, identity and log size, added to `report`; an error when the
/// server cannot be reached or refuses the connection.
async fn ask_server(
    resolved: &Resolved,
    id: &ClientIdentity,
    report: &mut Report,
) -> Result<(), CliError> {
    let mut c = connect::connect_resolved(resolved, id).await?;
    // WhoAmI first: a refused client certificate shows on the first call,
    // and its explanation is the CLI's usual one.
    let w = c.staff.who_am_i(pb::WhoAmIRequest {}).await?.into_inner();
    let role = if w.role == 0 {
        "-".to_owned()
    } else {
        output::role(w.role).to_owned()
    };
    report.rows.push(("identity", whoami_line(&w)));
    report.rows.push(("kind", w.kind.clone()));
    report.rows.push(("role", role.clone()));
    report.json["identity"] = json!({
        "principal": w.principal, "kind": w.kind, "name": w.name,
        "role": if w.role == 0 { Value::Null } else { role.into() },
    });
    let health = c
        .health
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await?
        .into_inner();
    let health = match ServingStatus::try_from(health.status) {
        Ok(ServingStatus::Serving) => "serving",
        Ok(ServingStatus::NotServing) => "not serving",
        _ => "unknown",
    };
    report.rows.push(("health", health.to_owned()));
    report.json["health"] = health.into();
    // The log size, for the roles that may read checkpoints.
    match c
        .audit
        .get_checkpoint(pb::GetCheckpointRequest { tree_size: 0 })
        .await
    {
        Ok(cp) => {
            let size = cp.into_inner().tree_size;
            report
                .rows
                .push(("log", format!("{size} entries (newest signed checkpoint)")));
            report.json["log_size"] = size.into();
        }
        Err(s) if s.code() == tonic::Code::PermissionDenied => {
            report
                .rows
                .push(("log", "- (your role may not read it)".into()));
            report.json["log_size"] = Value::Null;
        }
        Err(s) => return Err(s.into()),
    }
    report.rows.push((
        "client",
        format!(
            "daypass {} (the server does not say its version)",
            env!("CARGO_PKG_VERSION")
        ),
    ));
    report.json["client_version"] = env!("CARGO_PKG_VERSION").into();
    Ok(())
}

/// `2026-12-09T10:00:00.000Z (6 days left: renew it soon)`.
fn expiry(not_after: Timestamp, days_left: i64, now: Timestamp) -> String {
    if not_after <= now {
        format!("{not_after} (EXPIRED: ask for a new certificate)")
    } else if days_left < WARN_DAYS {
        format!("{not_after} ({days_left} day(s) left: WARNING, renew it soon)")
    } else {
        format!("{not_after} ({days_left} days left)")
    }
}

fn source_json(r: &Resolved) -> Value {
    use super::connect::Source;
    let overridden: Vec<&str> = r.overridden.clone();
    match &r.source {
        Source::Flags => json!({"kind": "flags"}),
        Source::Profile { name, default } => {
            json!({"kind": "profile", "profile": name, "default": default, "flags": overridden})
        }
        Source::DevDir => json!({"kind": "dev directory", "flags": overridden}),
    }
}
