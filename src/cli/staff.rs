//! `daypass staff`: enrol, offboard and list staff (admin). What an
//! enrolment means and who may do it is the server's business; this file
//! owns the flags and what is printed.

use clap::{Subcommand, ValueEnum};
use serde_json::json;

use super::{CliResult, Connection, connect::connect, output};
use crate::pb;

#[derive(Debug, Subcommand)]
pub enum StaffCommand {
    /// Enrol a person.
    #[command(after_help = "Example:\n  daypass staff add carol --role support --as ada")]
    Add {
        /// Their name, as in their client certificate (e.g. carol).
        name: String,
        /// What they may do: support, root and admin reach customer
        /// environments through grants; auditor reads the log.
        #[arg(long, value_enum)]
        role: RoleArg,
    },
    /// End a person's access now (revokes their live grants).
    Offboard {
        /// The enrolled person's name.
        name: String,
    },
    /// List enrolled staff.
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
        StaffCommand::Add { name, role } => {
            let s = c
                .staff
                .add_staff(pb::AddStaffRequest {
                    name,
                    role: role_pb(role) as i32,
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
