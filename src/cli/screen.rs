//! `daypass screen`: pair, revoke and list the office warning screens
//! (docs/monitoring.md, "The warning screen").

use clap::Subcommand;
use serde_json::{Value, json};

use super::{CliResult, Connection, connect::connect, output, parse_duration};
use crate::pb;

#[derive(Debug, Subcommand)]
pub enum ScreenCommand {
    /// Issue a one-time pairing code for a screen (new, or paired again).
    Pair {
        /// The screen's name, e.g. office-wall.
        name: String,
        /// How long the code may wait to be used (e.g. 10m, 1h; at most 24h).
        #[arg(long, default_value = "10m", value_parser = parse_duration)]
        ttl: i64,
    },
    /// End a screen's session (it shows the pairing page at its next update).
    Revoke {
        /// The screen's name.
        name: String,
    },
    /// Every screen and its state.
    List,
}

/// Runs one `daypass screen` command against the server.
pub(super) async fn run(conn: &Connection, command: ScreenCommand, json_out: bool) -> CliResult {
    let mut c = connect(conn).await?;
    match command {
        ScreenCommand::Pair { name, ttl } => {
            let ttl_secs = ttl;
            let r = c
                .screens
                .pair_screen(pb::PairScreenRequest {
                    name,
                    ttl_secs: u64::try_from(ttl_secs).unwrap_or(0),
                })
                .await?
                .into_inner();
            let s = r.screen.clone().unwrap_or_default();
            output::print_json_or_text(
                json_out,
                &json!({"screen": screen_json(&s), "code": r.code, "receipt_seq": r.receipt.as_ref().map(|r| r.seq)}),
                &format!(
                    "pairing code for screen {}: {}\n\
                     valid once, until {}. On the screen, open\n  \
                     https://<screen.listen>/pair?code={}\n\
                     (or type the code at /pair). Pairing again signs out its current session.\n",
                    s.name,
                    r.code,
                    output::time(s.code_expires_at_ms),
                    r.code
                ),
            );
        }
        ScreenCommand::Revoke { name } => {
            let r = c
                .screens
                .revoke_screen(pb::RevokeScreenRequest { name })
                .await?
                .into_inner();
            let s = r.screen.unwrap_or_default();
            output::print_json_or_text(
                json_out,
                &json!({"screen": screen_json(&s), "receipt_seq": r.receipt.as_ref().map(|r| r.seq)}),
                &format!("revoked screen {}: its session has ended\n", s.name),
            );
        }
        ScreenCommand::List => {
            let screens = c
                .screens
                .list_screens(pb::ListScreensRequest {})
                .await?
                .into_inner()
                .screens;
            let text = if screens.is_empty() {
                "no screens; pair one with `daypass screen pair NAME`\n".to_owned()
            } else {
                let mut t =
                    output::Table::new(vec!["name", "status", "paired by", "session since"]);
                for s in &screens {
                    t.row(vec![
                        s.name.clone(),
                        s.status.clone(),
                        s.paired_by.clone(),
                        if s.session_opened_at_ms == 0 {
                            "-".into()
                        } else {
                            output::time(s.session_opened_at_ms)
                        },
                    ]);
                }
                t.render()
            };
            output::print_json_or_text(
                json_out,
                &Value::Array(screens.iter().map(screen_json).collect()),
                &text,
            );
        }
    }
    Ok(())
}

fn screen_json(s: &pb::Screen) -> Value {
    let t = |ms: i64| (ms != 0).then(|| output::time(ms));
    json!({
        "name": s.name,
        "status": s.status,
        "paired_by": s.paired_by,
        "paired_at": t(s.paired_at_ms),
        "code_expires_at": t(s.code_expires_at_ms),
        "session_opened_at": t(s.session_opened_at_ms),
        "revoked_at": t(s.revoked_at_ms),
        "revoked_by": s.revoked_by,
    })
}
