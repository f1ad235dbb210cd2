//! `daypass staff`: enrol, offboard, list staff, record their
//! confidentiality declarations and where they work, re-certify their
//! eligibility to hold grants, and keep the approver groups (admin). What an
//! enrolment means and who may do it is the server's business; this file
//! owns the flags and what is printed.

use clap::{Subcommand, ValueEnum};
use serde_json::json;

use super::{CliResult, Connection, connect::connect, output};
use crate::pb;

#[derive(Debug, Subcommand)]
pub enum StaffCommand {
    /// Enrol a person.
    #[command(
        after_help = "Example:\n  daypass staff add carol --role support --country DE --as ada"
    )]
    Add {
        /// Their name, as in their client certificate (e.g. carol).
        name: String,
        /// What they may do: support, root and admin reach customer
        /// environments through grants; auditor reads the log.
        #[arg(long, value_enum)]
        role: RoleArg,
        /// Where they work: ISO 3166-1 alpha-2 (e.g. DE). Without it the
        /// country is unknown, refused by tenants with their own list.
        #[arg(long)]
        country: Option<String>,
        /// Whom they work for: `company` (default) or a registered
        /// sub-processor (`daypass tenant subprocessor list`).
        #[arg(long)]
        organisation: Option<String>,
    },
    /// Record where a person works and for whom (admin); their live grants
    /// a tenant no longer allows are revoked.
    #[command(
        after_help = "Example:\n  daypass staff locate carol --country DE --organisation company --as ada\ndaypass trusts what is recorded here: keep it true when people move."
    )]
    Locate {
        /// The enrolled person's name.
        name: String,
        /// ISO 3166-1 alpha-2 country code, e.g. DE.
        #[arg(long)]
        country: String,
        /// `company` or a registered sub-processor's name.
        #[arg(long, default_value = "company")]
        organisation: String,
    },
    /// End a person's access now (revokes their live grants).
    Offboard {
        /// The enrolled person's name.
        name: String,
    },
    /// List enrolled staff (with staff.recertify_days set: each person's
    /// last certification and when it lapses).
    List,
    /// Re-certify a person's eligibility to hold grants (admin; never
    /// yourself).
    #[command(
        after_help = "Example:\n  daypass staff recertify carol --as ada\nWith staff.recertify_days set, a holder whose last certification (the enrolment, then\neach recertify) is older than that is refused grant requests and approvals; another\nadmin than the person must recertify them. Logged as staff.recertified."
    )]
    Recertify {
        /// The enrolled person's name.
        name: String,
    },
    /// Record the confidentiality declaration a person signed (admin).
    #[command(
        after_help = "Example:\n  daypass staff declare carol --version 2026-1 --signed-on 2026-11-30 \\\n    --document carol-confidentiality-2026-1.pdf --as ada\nOnly the document's SHA-256 is sent and kept; with staff.declaration_version set, only\nholders of that version may request or be approved for grants."
    )]
    Declare {
        /// The enrolled person's name.
        name: String,
        /// The declaration text's version, e.g. 2026-1.
        #[arg(long)]
        version: String,
        /// The day it was signed, YYYY-MM-DD.
        #[arg(long)]
        signed_on: String,
        /// The signed document (read only to hash it; it is not sent).
        #[arg(
            long,
            required_unless_present = "document_sha256",
            conflicts_with = "document_sha256"
        )]
        document: Option<std::path::PathBuf>,
        /// The signed document's SHA-256 (hex), instead of --document.
        #[arg(long)]
        document_sha256: Option<String>,
    },
    /// Approver groups: named groups of staff whose members approve a
    /// tenant's grants under the policy group:NAME:N (admin).
    Group {
        #[command(subcommand)]
        command: GroupCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// Create or replace a group with exactly these members (enrolled
    /// support or root holders).
    #[command(after_help = "Example:\n  \
        daypass staff group set oncall-leads --member alice --member bob --member carol --as ada\n  \
        daypass tenant update acme --approval group:oncall-leads:2 --as ada\n\
        Logged as group.set with its members. Refused if a tenant's threshold would exceed\n\
        the new size.")]
    Set {
        /// The group's name (e.g. oncall-leads).
        name: String,
        /// A member's staff name; repeat for each member.
        #[arg(long = "member", value_name = "NAME", required = true)]
        members: Vec<String>,
    },
    /// Remove a group no tenant's policy names.
    #[command(after_help = "Example:\n  daypass staff group remove oncall-leads --as ada")]
    Remove {
        /// The group's name.
        name: String,
    },
    /// List the groups and their members (admins and auditors).
    List,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum RoleArg {
    Support,
    Root,
    Admin,
    Auditor,
    Partnerships,
    DataEntry,
    Administration,
}

/// Runs one `daypass staff` command against the server.
pub(super) async fn run(conn: &Connection, command: StaffCommand, json_out: bool) -> CliResult {
    let mut c = connect(conn).await?;
    match command {
        StaffCommand::Locate {
            name,
            country,
            organisation,
        } => {
            let r = c
                .staff
                .locate_staff(pb::LocateStaffRequest {
                    name: name.clone(),
                    country,
                    organisation,
                })
                .await?
                .into_inner();
            let s = r.staff.clone().unwrap_or_default();
            output::print_json_or_text(
                json_out,
                &json!({"staff": r.staff.as_ref().map(output::staff_json), "revoked_grant_ids": r.revoked_grant_ids}),
                &format!(
                    "{name} works in {} for {}; revoked {} live grant(s) a tenant no longer allows{}\n",
                    s.country,
                    s.organisation,
                    r.revoked_grant_ids.len(),
                    if r.revoked_grant_ids.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", r.revoked_grant_ids.join(", "))
                    }
                ),
            );
        }
        StaffCommand::Add {
            name,
            role,
            country,
            organisation,
        } => {
            let s = c
                .staff
                .add_staff(pb::AddStaffRequest {
                    name,
                    role: role_pb(role) as i32,
                    country: country.unwrap_or_default(),
                    organisation: organisation.unwrap_or_default(),
                })
                .await?
                .into_inner();
            output::print_json_or_text(
                json_out,
                &output::staff_json(&s),
                &format!(
                    "enrolled {} as {} ({})\n",
                    s.name,
                    output::role(s.role),
                    s.principal
                ),
            );
        }
        StaffCommand::Offboard { name } => {
            let r = c
                .staff
                .offboard_staff(pb::OffboardStaffRequest { name: name.clone() })
                .await?
                .into_inner();
            output::print_json_or_text(
                json_out,
                &json!({"staff": r.staff.as_ref().map(output::staff_json), "revoked_grant_ids": r.revoked_grant_ids}),
                &format!(
                    "offboarded {name}; revoked {} live grant(s){}\n",
                    r.revoked_grant_ids.len(),
                    if r.revoked_grant_ids.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", r.revoked_grant_ids.join(", "))
                    }
                ),
            );
        }
        StaffCommand::Declare {
            name,
            version,
            signed_on,
            document,
            document_sha256,
        } => {
            let document_sha256 = match (document, document_sha256) {
                (Some(path), _) => {
                    let bytes = std::fs::read(&path)
                        .map_err(|e| cli_err!("--document {}: {e}", path.display()))?;
                    hex::encode(ring::digest::digest(&ring::digest::SHA256, &bytes))
                }
                (None, Some(h)) => h,
                (None, None) => return Err(cli_err!("give --document or --document-sha256")),
            };
            let s = c
                .staff
                .record_declaration(pb::RecordDeclarationRequest {
                    name,
                    version,
                    signed_on,
                    document_sha256,
                })
                .await?
                .into_inner();
            let d = s.declaration.clone().unwrap_or_default();
            output::print_json_or_text(
                json_out,
                &output::staff_json(&s),
                &format!(
                    "recorded {}'s confidentiality declaration {} signed {} (document SHA-256 {})\n",
                    s.name, d.version, d.signed_on, d.document_sha256
                ),
            );
        }
        StaffCommand::Recertify { name } => {
            let s = c
                .staff
                .recertify_staff(pb::RecertifyStaffRequest { name })
                .await?
                .into_inner();
            output::print_json_or_text(
                json_out,
                &output::staff_json(&s),
                &format!(
                    "recertified {}'s eligibility to hold grants{}\n",
                    s.name,
                    if s.recertify_due_at_ms == 0 {
                        " (staff.recertify_days is off: it does not lapse)".to_owned()
                    } else {
                        format!("; next due {}", output::time(s.recertify_due_at_ms))
                    }
                ),
            );
        }
        StaffCommand::Group { command } => group(&mut c, command, json_out).await?,
        StaffCommand::List => {
            let r = c
                .staff
                .list_staff(pb::ListStaffRequest {})
                .await?
                .into_inner();
            output::print_json_or_text(
                json_out,
                &json!(r.staff.iter().map(output::staff_json).collect::<Vec<_>>()),
                &output::staff_table(&r.staff),
            );
        }
    }
    Ok(())
}

async fn group(c: &mut crate::client::Clients, command: GroupCommand, json_out: bool) -> CliResult {
    match command {
        GroupCommand::Set { name, members } => {
            let g = c
                .staff
                .set_approver_group(pb::SetApproverGroupRequest { name, members })
                .await?
                .into_inner();
            output::print_json_or_text(
                json_out,
                &output::group_json(&g),
                &format!(
                    "set approver group {} ({} members: {})\n",
                    g.name,
                    g.members.len(),
                    g.members.join(", ")
                ),
            );
        }
        GroupCommand::Remove { name } => {
            let r = c
                .staff
                .remove_approver_group(pb::RemoveApproverGroupRequest { name })
                .await?
                .into_inner();
            output::print_json_or_text(
                json_out,
                &json!({"removed": r.name}),
                &format!("removed approver group {}\n", r.name),
            );
        }
        GroupCommand::List => {
            let r = c
                .staff
                .list_approver_groups(pb::ListApproverGroupsRequest {})
                .await?
                .into_inner();
            output::print_json_or_text(
                json_out,
                &json!(r.groups.iter().map(output::group_json).collect::<Vec<_>>()),
                &output::groups_table(&r.groups),
            );
        }
    }
    Ok(())
}

fn role_pb(r: RoleArg) -> pb::Role {
    match r {
        RoleArg::Support => pb::Role::Support,
        RoleArg::Root => pb::Role::Root,
        RoleArg::Admin => pb::Role::Admin,
        RoleArg::Auditor => pb::Role::Auditor,
        RoleArg::Partnerships => pb::Role::Partnerships,
        RoleArg::DataEntry => pb::Role::DataEntry,
        RoleArg::Administration => pb::Role::Administration,
    }
}
