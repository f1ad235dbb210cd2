//! `daypass grant`: request, list, show, decide and end grants, print a
//! grant's token, and fetch a grant certificate (its key is made here and
//! never leaves this machine). The grant lifecycle is the server's; this
//! file owns the flags and what is printed.

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::json;

use super::{CliResult, Connection, connect::connect, output, parse_duration};
use crate::{client::Clients, pb, pki};

#[derive(Debug, Subcommand)]
pub enum GrantCommand {
    /// Ask for access to a tenant.
    #[command(after_help = "Examples:\n  \
        daypass grant request acme --reason \"INC-42: customer cannot log in\" --duration 2h\n  \
        daypass grant request globex --reason \"INC-43: export stuck\" --ticket INC-43 --code incident --as bob\n  \
        daypass grant request acme --reason \"INC-44: slow queries\" --scope db:read --scope 'ssh:web-*'\n  \
        daypass grant request globex --break-glass --reason \"INC-44: outage, database down\" --duration 30m --as root1\n  \
        daypass grant request acme --reason \"CHG-7: database upgrade\" --start 2026-12-05T22:00:00Z --duration 4h")]
    Request {
        /// The tenant whose environment you need (e.g. acme).
        tenant: String,
        /// Why you need access (mandatory).
        #[arg(long)]
        reason: String,
        /// A ticket reference (mandatory for tenants that require one; it
        /// must match the tenant's ticket pattern, if it has one).
        #[arg(long, default_value_t, hide_default_value = true)]
        ticket: String,
        /// The request's category: customer-request, incident, maintenance
        /// or security (mandatory for tenants that require one).
        #[arg(long, value_name = "CODE", value_parser = parse_reason_code)]
        code: Option<String>,
        /// How long, e.g. 2h, 90m, 1h30m, 1d, 3600 (default and maximum: 24h;
        /// with --break-glass, default 1h and maximum 4h unless configured).
        #[arg(long, value_parser = parse_duration)]
        duration: Option<i64>,
        /// An emergency: active at once, whatever the tenant's approval
        /// policy (root holders; support where the tenant allows it). It is
        /// logged loudly, raises an alert and must be reviewed afterwards by
        /// a second person.
        #[arg(long)]
        break_glass: bool,
        /// Limit the grant to a scope within the tenant, e.g. db:read or
        /// 'ssh:web-*' (repeatable, at most 16; docs/integration.md §2.1).
        /// Without any: the whole tenant.
        #[arg(long = "scope", value_name = "SCOPE", value_parser = parse_scope)]
        scopes: Vec<String>,
        /// A scheduled grant: when its window starts, RFC 3339 (e.g.
        /// 2026-12-05T22:00:00Z); it can be approved ahead and activates
        /// then. The duration counts from the start [default: now].
        #[arg(long, value_name = "TIME", value_parser = parse_start)]
        start: Option<i64>,
    },
    /// List the grants you may see.
    List {
        /// Only this tenant's grants.
        #[arg(long, default_value_t, hide_default_value = true)]
        tenant: String,
        /// Only grants held by this person.
        #[arg(long, default_value_t, hide_default_value = true)]
        holder: String,
        /// Only live grants: pending, scheduled and active.
        #[arg(long)]
        live: bool,
    },
    /// The requests that wait for your decision, oldest first, with their
    /// age, the time left to decide and who else must approve; with
    /// --reviews, the break-glass grants that wait for your review.
    #[command(after_help = "Examples:\n  \
        daypass grant pending --as bob\n  \
        daypass grant approve g-0123456789abcdef01234567 --as bob\n  \
        daypass grant pending --reviews --as ada")]
    Pending {
        /// The break-glass grants not yet reviewed that you may review,
        /// oldest first, with their age.
        #[arg(long)]
        reviews: bool,
    },
    /// Review a break-glass grant afterwards (a second person, never its
    /// holder: an admin, an auditor, another root holder, or the tenant).
    #[command(after_help = "Example:\n  \
        daypass grant review g-0123456789abcdef01234567 --verdict justified \
        --note \"INC-44 confirmed: database outage\" --as ada")]
    Review {
        /// The break-glass grant's id (g-…).
        id: String,
        /// justified or unjustified (an unjustified verdict raises an alert).
        #[arg(long, value_parser = ["justified", "unjustified"])]
        verdict: String,
        /// What you found (mandatory, logged).
        #[arg(long)]
        note: String,
    },
    /// Show one grant.
    Show {
        /// The grant's id (g-…).
        id: String,
    },
    /// Approve a pending request (as the tenant's approval policy says: the
    /// tenant, a colleague of the requester, or both).
    #[command(after_help = "Examples:\n  \
        daypass grant approve g-0123456789abcdef01234567 --as globex\n  \
        daypass grant approve g-0123456789abcdef01234567 --note \"checked INC-43\" --as bob")]
    Approve {
        /// The pending grant's id (g-…).
        id: String,
        /// Why you approve (logged).
        #[arg(long, default_value_t, hide_default_value = true)]
        note: String,
    },
    /// Deny a pending request.
    Deny {
        /// The pending grant's id (g-…).
        id: String,
        /// Why you deny (logged, shown to the requester).
        #[arg(long, default_value_t, hide_default_value = true)]
        note: String,
    },
    /// End a grant now (admin, or the tenant).
    Revoke {
        /// The live grant's id (g-…).
        id: String,
        /// Why it ends (logged).
        #[arg(long, default_value_t, hide_default_value = true)]
        note: String,
    },
    /// Give up your own grant now.
    Release {
        /// Your live grant's id (g-…).
        id: String,
    },
    /// Print your active grant's signed token (for a tenant to verify
    /// offline), and nothing else, so it can be piped.
    Token {
        /// Your active grant's id (g-…).
        id: String,
    },
    /// Get a client certificate for your active grant, valid until it
    /// expires: a new key is made here and never leaves this machine.
    Cert {
        /// Your active grant's id (g-…).
        id: String,
        /// Where to write grant-<id>.pem, grant-<id>.key (0600) and grant-ca.pem.
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
}

/// Runs one `daypass grant` command against the server. (A bad
/// `--duration` is refused by clap, before connecting.)
pub(super) async fn run(conn: &Connection, command: GrantCommand, json_out: bool) -> CliResult {
    let mut c = connect(conn).await?;
    let show = |g: &pb::Grant, headline: &str| {
        if json_out {
            println!("{:#}", output::grant_json(g));
        } else {
            println!("{headline}");
            print!("{}", output::grant_detail(g));
        }
    };
    match command {
        GrantCommand::Request {
            tenant,
            reason,
            ticket,
            code,
            duration,
            break_glass,
            scopes,
            start,
        } => {
            let duration_seconds = duration.unwrap_or_default();
            let g = c
                .grants
                .request_grant(pb::RequestGrantRequest {
                    tenant,
                    reason,
                    ticket,
                    duration_seconds,
                    reason_code: code.unwrap_or_default(),
                    break_glass,
                    scopes,
                    starts_at_ms: start.unwrap_or_default(),
                })
                .await?
                .into_inner();
            let headline = if g.break_glass {
                format!(
                    "BREAK-GLASS grant {} is active until {}: this is logged, raises an alert and must be reviewed",
                    g.id,
                    output::time(g.expires_at_ms)
                )
            } else if output::state(g.state) == "active" {
                format!(
                    "grant {} is active until {}",
                    g.id,
                    output::time(g.expires_at_ms)
                )
            } else if output::state(g.state) == "scheduled" {
                format!(
                    "grant {} is scheduled: active from {} for {} s",
                    g.id,
                    output::time(g.starts_at_ms),
                    g.duration_seconds
                )
            } else if g.starts_at_ms != 0 {
                format!(
                    "grant {} (from {}) is pending approval until {}",
                    g.id,
                    output::time(g.starts_at_ms),
                    output::time(g.pending_until_ms)
                )
            } else {
                format!(
                    "grant {} is pending approval until {}",
                    g.id,
                    output::time(g.pending_until_ms)
                )
            };
            show(&g, &headline);
        }
        GrantCommand::List {
            tenant,
            holder,
            live,
        } => {
            let r = c
                .grants
                .list_grants(pb::ListGrantsRequest {
                    tenant,
                    holder,
                    live_only: live,
                    ..Default::default()
                })
                .await?
                .into_inner();
            if json_out {
                println!(
                    "{:#}",
                    json!(r.grants.iter().map(output::grant_json).collect::<Vec<_>>())
                );
            } else {
                print!("{}", output::grants_table(&r.grants));
            }
        }
        GrantCommand::Show { id } => {
            let g = c
                .grants
                .get_grant(pb::GetGrantRequest { grant_id: id })
                .await?
                .into_inner();
            show(&g, &format!("grant {}", g.id));
        }
        GrantCommand::Approve { id, note } => {
            let g = c
                .grants
                .approve_grant(pb::DecideGrantRequest { grant_id: id, note })
                .await?
                .into_inner();
            let headline = if output::state(g.state) == "active" {
                format!(
                    "approved: grant {} is active until {}",
                    g.id,
                    output::time(g.expires_at_ms)
                )
            } else if output::state(g.state) == "scheduled" {
                format!(
                    "approved: grant {} is scheduled to start at {}",
                    g.id,
                    output::time(g.starts_at_ms)
                )
            } else {
                format!(
                    "approved: grant {} still waits for {} (policy {}) until {}",
                    g.id,
                    output::waiting_for(&g),
                    output::grant_policy(&g),
                    output::time(g.pending_until_ms)
                )
            };
            show(&g, &headline);
        }
        GrantCommand::Pending { reviews } => {
            let r = c
                .grants
                .list_grants(pb::ListGrantsRequest {
                    awaiting_me: !reviews,
                    awaiting_review: reviews,
                    ..Default::default()
                })
                .await?
                .into_inner();
            let now = crate::clock::Clock::now(&crate::clock::SystemClock);
            if json_out {
                println!(
                    "{:#}",
                    json!(r.grants.iter().map(output::grant_json).collect::<Vec<_>>())
                );
            } else if reviews {
                print!("{}", output::reviews_table(&r.grants, now));
            } else {
                print!("{}", output::pending_table(&r.grants, now));
            }
        }
        GrantCommand::Review { id, verdict, note } => {
            let g = c
                .grants
                .review_grant(pb::ReviewGrantRequest {
                    grant_id: id,
                    verdict,
                    note,
                })
                .await?
                .into_inner();
            show(&g, &format!("reviewed break-glass grant {}", g.id));
        }
        GrantCommand::Deny { id, note } => {
            let g = c
                .grants
                .deny_grant(pb::DecideGrantRequest { grant_id: id, note })
                .await?
                .into_inner();
            show(&g, &format!("denied grant {}", g.id));
        }
        GrantCommand::Revoke { id, note } => {
            let g = c
                .grants
                .revoke_grant(pb::RevokeGrantRequest { grant_id: id, note })
                .await?
                .into_inner();
            show(&g, &format!("revoked grant {}", g.id));
        }
        GrantCommand::Release { id } => {
            let g = c
                .grants
                .release_grant(pb::ReleaseGrantRequest { grant_id: id })
                .await?
                .into_inner();
            show(&g, &format!("released grant {}", g.id));
        }
        GrantCommand::Token { id } => {
            let g = c
                .grants
                .get_grant(pb::GetGrantRequest { grant_id: id })
                .await?
                .into_inner();
            if g.token.is_empty() {
                return Err(cli_err!(
                    "grant {} has no token: tokens are given to the holder of an active grant only (it is {})",
                    g.id,
                    output::state(g.state)
                ));
            }
            output::print_json_or_text(
                json_out,
                &serde_json::json!({
                    "grant": g.id,
                    "token": g.token,
                    "expires_at": output::time(g.expires_at_ms),
                }),
                &format!("{}\n", g.token),
            );
        }
        GrantCommand::Cert { id, out } => write_certificate(&mut c, id, out, json_out).await?,
    }
    Ok(())
}

/// `daypass grant cert`: makes a key here, sends only a certificate
/// request, and writes the key (0600), the certificate and the grant CA.
async fn write_certificate(c: &mut Clients, id: String, out: PathBuf, json_out: bool) -> CliResult {
    let key = rcgen::KeyPair::generate().map_err(|e| cli_err!("cannot make a key: {e}"))?;
    let csr = rcgen::CertificateParams::new(Vec::<String>::new())
        .and_then(|p| p.serialize_request(&key))
        .and_then(|r| r.pem())
        .map_err(|e| cli_err!("cannot make a certificate request: {e}"))?;
    let issued = c
        .grants
        .issue_grant_certificate(pb::IssueGrantCertificateRequest {
            grant_id: id.clone(),
            csr_pem: csr,
        })
        .await?
        .into_inner();
    pki::create_dir(&out).map_err(|e| cli_err!("{e}"))?;
    let written = [
        pki::write_secret(&out.join(format!("grant-{id}.key")), &key.serialize_pem()),
        pki::write_public(
            &out.join(format!("grant-{id}.pem")),
            &issued.certificate_pem,
        ),
        pki::write_public(&out.join("grant-ca.pem"), &issued.grant_ca_pem),
    ];
    for w in written {
        let path = w.map_err(|e| cli_err!("{e}"))?;
        if !json_out {
            println!("wrote {}", path.display());
        }
    }
    if json_out {
        println!(
            "{}",
            json!({
                "grant": id,
                "serial": issued.serial,
                "expires_at": output::time(issued.expires_at_ms),
                "dir": out,
            })
        );
    } else {
        println!(
            "grant certificate {} for {id}: valid until {}",
            issued.serial,
            output::time(issued.expires_at_ms)
        );
    }
    Ok(())
}

/// `--scope`: checked here so a typo fails before connecting (the server
/// checks it again).
fn parse_scope(s: &str) -> Result<String, String> {
    crate::domain::Scope::parse(s)
        .map(|s| s.to_string())
        .map_err(|e| e.to_string())
}

/// `--start`: an RFC 3339 time, as Unix milliseconds (the server checks
/// it against its clock and its bounds).
fn parse_start(s: &str) -> Result<i64, String> {
    crate::clock::Timestamp::parse_rfc3339(s.trim())
        .map(|t| t.millis())
        .filter(|ms| *ms > 0)
        .ok_or_else(|| format!("not a time like 2026-12-05T22:00:00Z: {s:?}"))
}

/// `--code`: one of the reason codes, checked here so a typo fails before
/// connecting (the server checks it again).
fn parse_reason_code(s: &str) -> Result<String, String> {
    match crate::domain::ReasonCode::parse(s)? {
        Some(c) => Ok(c.as_str().to_string()),
        None => Err(format!(
            "give one of {}",
            crate::domain::ReasonCode::choices()
        )),
    }
}
