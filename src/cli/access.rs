//! What a tenant asks and tells: `daypass validate` (may this engineer act
//! in my environment now?) and `daypass access record` (what they did).
//! The decision itself is the server's; this file owns the flags, the
//! printed verdict and the exit status of a denial.

use clap::{Args, Subcommand};
use serde_json::json;

use super::{CliResult, Connection, connect::connect, output};
use crate::{clock::Timestamp, pb};

#[derive(Debug, Args)]
#[command(
    after_help = "Give --grant ID (the grant the engineer presents) or --staff NAME (their \
    live grant for you, if any). Prints ALLOW or DENY; a denial exits with status 1.\n\n\
    Examples:\n  \
    daypass validate --staff alice --as acme\n  \
    daypass validate --grant g-0123456789abcdef01234567 --as acme"
)]
pub struct ValidateArgs {
    /// The grant id the engineer presents (or --staff).
    #[arg(long, conflicts_with = "staff", required_unless_present = "staff")]
    pub grant: Option<String>,
    /// Or the engineer's staff name: is any grant of theirs for you live now?
    #[arg(long)]
    pub staff: Option<String>,
    /// The resource the engineer is to act on (e.g. ssh:web-1): denied
    /// (out_of_scope) when it is outside the grant's scopes.
    #[arg(long, default_value_t, hide_default_value = true)]
    pub resource: String,
    #[command(flatten)]
    pub conn: Connection,
}

#[derive(Debug, Subcommand)]
pub enum AccessCommand {
    /// Log an action taken under a grant.
    #[command(after_help = "Example:\n  \
        daypass access record g-0123456789abcdef01234567 --action ssh --resource web-1 --as acme")]
    Record {
        /// The grant the engineer acted under (g-…).
        grant: String,
        /// What they did (e.g. ssh, db-query).
        #[arg(long)]
        action: String,
        /// What they did it to (e.g. web-1).
        #[arg(long, default_value_t, hide_default_value = true)]
        resource: String,
        /// When it happened (RFC 3339), for a report sent afterwards; logged
        /// even if the grant has ended since. Default: it happens now, and is
        /// refused unless the grant admits its holder now.
        #[arg(long)]
        at: Option<String>,
        /// An id unique to this access, so sending the report again logs it once.
        #[arg(long, default_value_t, hide_default_value = true)]
        report_id: String,
    },
}

/// `daypass validate`: prints ALLOW or DENY; a denial is also an error
/// (exit status 1), so scripts can branch on it.
pub(super) async fn validate(v: ValidateArgs, json_out: bool) -> CliResult {
    let mut c = connect(&v.conn).await?;
    let subject = match (v.grant, v.staff) {
        (Some(g), _) => pb::validate_grant_request::Subject::GrantId(g),
        (None, Some(s)) => pb::validate_grant_request::Subject::Staff(s),
        (None, None) => return Err(cli_err!("give --grant ID or --staff NAME")),
    };
    let r = c
        .grants
        .validate_grant(pb::ValidateGrantRequest {
            subject: Some(subject),
            resource: v.resource,
        })
        .await?
        .into_inner();
    output::print_json_or_text(
        json_out,
        &json!({"allowed": r.allowed, "deny_reason": output::deny_reason(r.deny_reason), "grant_id": r.grant_id,
               "holder": r.holder, "expires_at": output::time(r.expires_at_ms), "log_seq": r.log_seq}),
        &if r.allowed {
            format!(
                "ALLOW {} on grant {} until {} (logged as #{})\n",
                r.holder,
                r.grant_id,
                output::time(r.expires_at_ms),
                r.log_seq
            )
        } else {
            format!(
                "DENY ({}){} (logged as #{})\n",
                output::deny_reason(r.deny_reason),
                if r.grant_id.is_empty() {
                    String::new()
                } else {
                    format!(" grant {} of {}", r.grant_id, r.holder)
                },
                r.log_seq
            )
        },
    );
    if !r.allowed {
        return Err(cli_err!(
            "access denied: {}",
            output::deny_reason(r.deny_reason)
        ));
    }
    Ok(())
}

/// Runs one `daypass access` command against the server.
pub(super) async fn run(conn: &Connection, command: AccessCommand, json_out: bool) -> CliResult {
    let mut c = connect(conn).await?;
    match command {
        AccessCommand::Record {
            grant,
            action,
            resource,
            at,
            report_id,
        } => {
            let accessed_at_ms = match at {
                None => 0,
                Some(t) => Timestamp::parse_rfc3339(&t)
                    .ok_or_else(|| {
                        cli_err!("--at {t:?} is not an RFC 3339 time, e.g. 2026-11-26T10:00:00Z")
                    })?
                    .millis(),
            };
            let r = c
                .grants
                .record_access(pb::RecordAccessRequest {
                    grant_id: grant,
                    action,
                    resource,
                    accessed_at_ms,
                    report_id,
                })
                .await?
                .into_inner();
            let mut said = if r.duplicate {
                format!("already recorded as #{} ({})", r.log_seq, r.entry_hash)
            } else {
                format!("recorded as #{} ({})", r.log_seq, r.entry_hash)
            };
            if !r.within_grant {
                said.push_str("; the grant was not active at that time");
            }
            output::print_json_or_text(
                json_out,
                &json!({
                    "log_seq": r.log_seq,
                    "entry_hash": r.entry_hash,
                    "duplicate": r.duplicate,
                    "within_grant": r.within_grant,
                }),
                &format!("{said}\n"),
            );
        }
    }
    Ok(())
}
