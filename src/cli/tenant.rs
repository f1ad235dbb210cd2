//! `daypass tenant`: register, update and list tenants (admin), the
//! countries a tenant allows, its justification rules (ticket pattern,
//! reason code), its cumulative access limit, its objections to sub-processors, the
//! sub-processor register, and (in `processing`) the register of
//! processing. The
//! approval rules themselves are the server's; this file owns the flags
//! and what is printed.

use clap::{Subcommand, ValueEnum};
use serde_json::json;

use super::{CliResult, Connection, connect::connect, output};
use crate::pb;

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Register a tenant.
    #[command(after_help = "Examples:\n  \
        daypass tenant add acme --as ada\n  \
        daypass tenant add globex --approval approval --require-ticket --as ada\n  \
        daypass tenant add initech --approval group:oncall-leads:2 --as ada")]
    Add {
        /// The tenant's name, as in its client certificate (e.g. acme).
        name: String,
        /// Who approves each grant: nobody (auto), the tenant or a colleague
        /// of the requester (tenant-or-peer), the tenant only, a colleague
        /// only (peer), both (tenant+peer), or N members of an approver
        /// group other than the requester (group:NAME:N, e.g.
        /// group:oncall-leads:2; `staff group set` makes the group).
        #[arg(long, default_value = "auto", value_name = "POLICY", value_parser = parse_policy)]
        approval: PolicyArg,
        /// Grants for this tenant must name a ticket (--require-ticket, or
        /// --require-ticket=false) [default: false].
        #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
              default_missing_value = "true")]
        require_ticket: Option<bool>,
        /// Grants for this tenant need the holder's confidentiality
        /// declaration on record (`staff declare`) [default: false].
        #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
              default_missing_value = "true")]
        require_declaration: Option<bool>,
    },
    /// Change a tenant's approval policy, ticket or declaration rule.
    #[command(
        after_help = "Example:\n  daypass tenant update acme --require-ticket=false --as ada"
    )]
    Update {
        /// The registered tenant's name.
        name: String,
        /// The new approval policy (unchanged if not given): auto,
        /// tenant-or-peer, tenant, peer, tenant+peer or group:NAME:N.
        #[arg(long, value_name = "POLICY", value_parser = parse_policy)]
        approval: Option<PolicyArg>,
        /// Grants for this tenant must name a ticket (--require-ticket, or
        /// --require-ticket=false) [default: unchanged].
        #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
              default_missing_value = "true")]
        require_ticket: Option<bool>,
        /// Grants for this tenant need the holder's confidentiality
        /// declaration on record [default: unchanged].
        #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
              default_missing_value = "true")]
        require_declaration: Option<bool>,
    },
    /// List tenants.
    List,
    /// End a tenant's agreement: revoke its grants, take no new ones,
    /// export its log slice with proofs and its key to DIR (checked), and
    /// with --confirm destroy its key: its personal details are gone, the
    /// log still verifies.
    #[command(after_help = "Examples:\n  \
        daypass tenant terminate acme --export acme-return --as ada\n  \
        daypass tenant terminate acme --export acme-return --confirm acme --as ada")]
    Terminate {
        /// The tenant's name.
        name: String,
        /// Directory for the tenant's export (log.jsonl, checkpoint,
        /// processing-register.json and .md,
        /// tenant.key), made 0700.
        #[arg(long, value_name = "DIR")]
        export: std::path::PathBuf,
        /// Repeat the tenant's name to destroy its key after the export
        /// (cannot be undone). Without it, stops after the export.
        #[arg(long, value_name = "NAME")]
        confirm: Option<String>,
    },
    /// Set the countries a tenant's grant holders may work from (admin);
    /// none given: back to EU/EEA plus the configured adequacy list.
    #[command(
        after_help = "Examples:\n  daypass tenant countries acme DE AT FR --as ada\n  daypass tenant countries acme --as ada     # the default again"
    )]
    Countries {
        /// The registered tenant's name.
        name: String,
        /// ISO 3166-1 alpha-2 codes.
        countries: Vec<String>,
    },
    /// Set a tenant's justification rules (admin): the regular expression
    /// its tickets must match, and whether requests need a reason code.
    #[command(after_help = "Examples:\n  \
        daypass tenant justification acme --ticket-pattern '^INC-[0-9]+$' --as ada\n  \
        daypass tenant justification acme --require-code --as ada\n  \
        daypass tenant justification acme --ticket-pattern '' --require-code=false --as ada")]
    Justification {
        /// The registered tenant's name.
        name: String,
        /// A regular expression (at most 200 characters) tickets must match
        /// somewhere; anchor it with ^…$. Empty ('') clears it [default:
        /// unchanged].
        #[arg(long, value_name = "REGEX")]
        ticket_pattern: Option<String>,
        /// Requests must give a reason code (--require-code, or
        /// --require-code=false) [default: unchanged].
        #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
              default_missing_value = "true")]
        require_code: Option<bool>,
    },
    /// Set a tenant's cumulative access limit (admin): at most so many
    /// hours of one person's access in any rolling window, or --off.
    #[command(after_help = "Examples:\n  \
        daypass tenant access-limit acme --hours 24 --per 7d --as ada\n  \
        daypass tenant access-limit acme --off --as ada")]
    AccessLimit {
        /// The registered tenant's name.
        name: String,
        /// Hours of access one person may have in the window.
        #[arg(long, required_unless_present = "off", requires = "per",
              value_parser = clap::value_parser!(u32).range(1..=8784))]
        hours: Option<u32>,
        /// The rolling window, e.g. 7d, 48h (1h to 366d).
        #[arg(long, value_name = "DURATION", requires = "hours",
              value_parser = super::parse_duration)]
        per: Option<i64>,
        /// Remove the limit.
        #[arg(long, conflicts_with_all = ["hours", "per"])]
        off: bool,
    },
    /// Record a tenant's objection to a sub-processor (the tenant itself,
    /// or an admin on its behalf): its staff lose their grants there.
    #[command(after_help = "Example:\n  daypass tenant object acme nightdesk --as acme")]
    Object {
        /// The tenant's name.
        name: String,
        /// The sub-processor objected to.
        subprocessor: String,
    },
    /// The register of processing (GDPR Art 30(2)): set a tenant's record
    /// from TOML, show it, list its versions, write the document.
    Processing {
        #[command(subcommand)]
        command: super::processing::ProcessingCommand,
    },
    /// The sub-processor register: add (admin, announces it to every
    /// tenant) and list.
    Subprocessor {
        #[command(subcommand)]
        command: SubprocessorCommand,
    },
    /// Whether support staff may open break-glass grants for a tenant
    /// (admin; root holders always may).
    #[command(after_help = "Examples:\n  \
        daypass tenant break-glass globex --allow-support on --as ada\n  \
        daypass tenant break-glass globex --allow-support off --as ada")]
    BreakGlass {
        /// The registered tenant's name.
        name: String,
        /// on: support may open break-glass grants too; off: root holders only.
        #[arg(long, value_name = "on|off", value_parser = parse_on_off, action = clap::ArgAction::Set)]
        allow_support: bool,
    },
}

/// `on`/`off` (also `true`/`false`).
fn parse_on_off(s: &str) -> Result<bool, String> {
    match s {
        "on" | "true" => Ok(true),
        "off" | "false" => Ok(false),
        _ => Err(format!("give on or off, not {s:?}")),
    }
}

#[derive(Debug, Subcommand)]
pub enum SubprocessorCommand {
    /// Register and announce a sub-processor (admin). Its staff get grants
    /// for a tenant only after the notice period.
    #[command(
        after_help = "Example:\n  daypass tenant subprocessor add nightdesk --country PT --purpose \"second-line support at night\" --as ada"
    )]
    Add {
        /// Its name (a-z 0-9 . _ -), as staff records name it.
        name: String,
        /// Where it processes: ISO 3166-1 alpha-2.
        #[arg(long)]
        country: String,
        /// What it does for the company.
        #[arg(long)]
        purpose: String,
    },
    /// List the register.
    #[command(after_help = "Example:\n  daypass tenant subprocessor list --as acme")]
    List,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ApprovalArg {
    /// Grants are active at once.
    Auto,
    /// One approval: the tenant's or a colleague's (`approval` is its old name).
    #[value(name = "tenant-or-peer", alias = "approval")]
    TenantOrPeer,
    /// Only the tenant approves.
    Tenant,
    /// A colleague of the requester approves (four eyes).
    Peer,
    /// Both the tenant and a colleague approve.
    #[value(name = "tenant+peer")]
    TenantAndPeer,
}

/// An `--approval` value: a policy's name, or `group:NAME:N`.
#[derive(Clone, Debug)]
pub struct PolicyArg {
    pub approval: pb::ApprovalPolicy,
    /// For `group:NAME:N`: the group and the threshold.
    pub group: Option<(String, u32)>,
}

fn parse_policy(s: &str) -> Result<PolicyArg, String> {
    if s.starts_with("group:") {
        let rule = crate::domain::GroupRule::parse_policy(s)?;
        return Ok(PolicyArg {
            approval: pb::ApprovalPolicy::Group,
            group: Some((rule.group.to_string(), rule.threshold)),
        });
    }
    let a = ApprovalArg::from_str(s, false).map_err(|_| {
        format!(
            "unknown policy {s:?}; choose auto, tenant-or-peer, tenant, peer, tenant+peer or \
             group:NAME:N"
        )
    })?;
    Ok(PolicyArg {
        approval: approval_pb(a),
        group: None,
    })
}

impl PolicyArg {
    fn fields(&self) -> (i32, String, u32) {
        let (g, n) = self.group.clone().unwrap_or_default();
        (self.approval as i32, g, n)
    }
}

/// Runs one `daypass tenant` command against the server.
pub(super) async fn run(conn: &Connection, command: TenantCommand, json_out: bool) -> CliResult {
    if let TenantCommand::Terminate {
        name,
        export,
        confirm,
    } = command
    {
        return super::terminate::run(conn, name, export, confirm, json_out).await;
    }
    if let TenantCommand::Processing { command } = command {
        return super::processing::run(conn, command, json_out).await;
    }
    let mut c = connect(conn).await?;
    match command {
        TenantCommand::Add {
            name,
            approval,
            require_ticket,
            require_declaration,
        } => {
            let (approval, approver_group, approval_threshold) = approval.fields();
            let t = c
                .tenants
                .add_tenant(pb::AddTenantRequest {
                    name,
                    approval,
                    require_ticket: require_ticket.unwrap_or(false),
                    require_declaration: require_declaration.unwrap_or(false),
                    approver_group,
                    approval_threshold,
                })
                .await?
                .into_inner();
            output::print_json_or_text(
                json_out,
                &output::tenant_json(&t),
                &format!("added tenant {}\n", output::tenant_summary(&t)),
            );
        }
        TenantCommand::Update {
            name,
            approval,
            require_ticket,
            require_declaration,
        } => {
            let (approval, approver_group, approval_threshold) =
                approval.map(|a| a.fields()).unwrap_or_default();
            let t = c
                .tenants
                .update_tenant(pb::UpdateTenantRequest {
                    name,
                    approval,
                    require_ticket,
                    require_declaration,
                    approver_group,
                    approval_threshold,
                })
                .await?
                .into_inner();
            output::print_json_or_text(
                json_out,
                &output::tenant_json(&t),
                &format!("updated tenant {}\n", output::tenant_summary(&t)),
            );
        }
        TenantCommand::Countries { name, countries } => {
            let t = c
                .tenants
                .set_tenant_countries(pb::SetTenantCountriesRequest {
                    tenant: name,
                    countries,
                })
                .await?
                .into_inner();
            output::print_json_or_text(
                json_out,
                &output::tenant_json(&t),
                &format!(
                    "tenant {} allows {}: {}\n",
                    t.name,
                    if t.own_countries {
                        "its own list"
                    } else {
                        "EU/EEA + the adequacy list"
                    },
                    t.allowed_countries.join(", ")
                ),
            );
        }
        TenantCommand::Justification {
            name,
            ticket_pattern,
            require_code,
        } => {
            let t = c
                .tenants
                .set_tenant_justification(pb::SetTenantJustificationRequest {
                    tenant: name,
                    ticket_pattern,
                    require_reason_code: require_code,
                })
                .await?
                .into_inner();
            output::print_json_or_text(
                json_out,
                &output::tenant_json(&t),
                &format!("updated tenant {}\n", output::tenant_summary(&t)),
            );
        }
        TenantCommand::AccessLimit {
            name,
            hours,
            per,
            off,
        } => {
            let (limit_seconds, window_seconds) = if off {
                (0, 0)
            } else {
                (
                    i64::from(hours.unwrap_or_default()) * 3600,
                    per.unwrap_or_default(),
                )
            };
            let t = c
                .tenants
                .set_tenant_access_limit(pb::SetTenantAccessLimitRequest {
                    tenant: name,
                    limit_seconds,
                    window_seconds,
                })
                .await?
                .into_inner();
            output::print_json_or_text(
                json_out,
                &output::tenant_json(&t),
                &format!("updated tenant {}\n", output::tenant_summary(&t)),
            );
        }
        TenantCommand::Object { name, subprocessor } => {
            let t = c
                .tenants
                .object_to_subprocessor(pb::ObjectToSubprocessorRequest {
                    tenant: name,
                    subprocessor: subprocessor.clone(),
                })
                .await?
                .into_inner();
            output::print_json_or_text(
                json_out,
                &output::tenant_json(&t),
                &format!("tenant {} objected to {subprocessor}\n", t.name),
            );
        }
        TenantCommand::Subprocessor {
            command:
                SubprocessorCommand::Add {
                    name,
                    country,
                    purpose,
                },
        } => {
            let sp = c
                .tenants
                .add_subprocessor(pb::AddSubprocessorRequest {
                    name,
                    country,
                    purpose,
                })
                .await?
                .into_inner();
            output::print_json_or_text(
                json_out,
                &output::subprocessor_json(&sp),
                &format!(
                    "registered and announced sub-processor {} ({}) on {}\n",
                    sp.name,
                    sp.country,
                    output::time(sp.announced_at_ms)
                ),
            );
        }
        TenantCommand::Subprocessor {
            command: SubprocessorCommand::List,
        } => {
            let r = c
                .tenants
                .list_subprocessors(pb::ListSubprocessorsRequest {})
                .await?
                .into_inner();
            output::print_json_or_text(
                json_out,
                &json!({
                    "notice_days": r.notice_days,
                    "subprocessors": r.subprocessors.iter().map(output::subprocessor_json).collect::<Vec<_>>(),
                }),
                &output::subprocessors_table(&r.subprocessors, r.notice_days),
            );
        }
        TenantCommand::List => {
            let r = c
                .tenants
                .list_tenants(pb::ListTenantsRequest {})
                .await?
                .into_inner();
            output::print_json_or_text(
                json_out,
                &json!(
                    r.tenants
                        .iter()
                        .map(output::tenant_json)
                        .collect::<Vec<_>>()
                ),
                &output::tenants_table(&r.tenants),
            );
        }
        TenantCommand::BreakGlass {
            name,
            allow_support,
        } => {
            let t = c
                .tenants
                .set_tenant_break_glass(pb::SetTenantBreakGlassRequest {
                    tenant: name,
                    allow_support,
                })
                .await?
                .into_inner();
            output::print_json_or_text(
                json_out,
                &output::tenant_json(&t),
                &format!(
                    "updated tenant {}: {} open break-glass grants\n",
                    t.name,
                    if t.break_glass_support {
                        "root holders and support may"
                    } else {
                        "only root holders may"
                    }
                ),
            );
        }
        TenantCommand::Terminate { .. } | TenantCommand::Processing { .. } => {
            unreachable!("handled above")
        }
    }
    Ok(())
}

fn approval_pb(a: ApprovalArg) -> pb::ApprovalPolicy {
    match a {
        ApprovalArg::Auto => pb::ApprovalPolicy::Auto,
        ApprovalArg::TenantOrPeer => pb::ApprovalPolicy::Approval,
        ApprovalArg::Tenant => pb::ApprovalPolicy::Tenant,
        ApprovalArg::Peer => pb::ApprovalPolicy::Peer,
        ApprovalArg::TenantAndPeer => pb::ApprovalPolicy::TenantAndPeer,
    }
}
