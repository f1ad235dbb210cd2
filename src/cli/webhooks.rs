//! `daypass webhooks`: the dead letters of the server's webhooks (admin,
//! root). Delivery itself is the server's (`crate::notify`); this file owns
//! the flags and what is printed.

use clap::Subcommand;
use serde_json::json;

use super::{CliResult, Connection, connect::connect, output};
use crate::pb;

#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// List the deliveries given up on (of every hook, or of --hook).
    Dead {
        /// Only this hook's (its name in the config's [[webhooks]]).
        #[arg(long)]
        hook: Option<String>,
    },
    /// Deliver a dead letter again (before the hook's new entries).
    Retry {
        /// The hook's name.
        hook: String,
        /// The dead letter's log sequence number (from `webhooks dead`).
        seq: u64,
    },
}

/// Runs one `daypass webhooks` command against the server.
pub(super) async fn run(conn: &Connection, command: WebhooksCommand, json_out: bool) -> CliResult {
    let mut c = connect(conn).await?;
    match command {
        WebhooksCommand::Dead { hook } => {
            let dead = c
                .notify
                .list_dead_letters(pb::ListDeadLettersRequest {
                    hook: hook.unwrap_or_default(),
                })
                .await?
                .into_inner()
                .dead_letters;
            let rows: Vec<_> = dead
                .iter()
                .map(|d| {
                    json!({"hook": d.hook, "seq": d.seq, "kind": d.kind, "attempts": d.attempts,
                           "last_error": d.last_error, "failed_at": d.failed_at})
                })
                .collect();
            let mut t = output::Table::new(vec![
                "HOOK",
                "SEQ",
                "KIND",
                "ATTEMPTS",
                "FAILED AT",
                "LAST ERROR",
            ]);
            for d in &dead {
                t.row(vec![
                    d.hook.clone(),
                    d.seq.to_string(),
                    d.kind.clone(),
                    d.attempts.to_string(),
                    d.failed_at.clone(),
                    d.last_error.clone(),
                ]);
            }
            let text = if dead.is_empty() {
                "no dead letters\n".to_owned()
            } else {
                t.render()
            };
            output::print_json_or_text(json_out, &json!(rows), &text);
        }
        WebhooksCommand::Retry { hook, seq } => {
            c.notify
                .retry_dead_letter(pb::RetryDeadLetterRequest {
                    hook: hook.clone(),
                    seq,
                })
                .await?;
            output::print_json_or_text(
                json_out,
                &json!({"hook": hook, "seq": seq, "queued": true}),
                &format!("queued {hook}:{seq} for delivery again\n"),
            );
        }
    }
    Ok(())
}
