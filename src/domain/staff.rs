//! Staff: a person's [`Role`] and their [`StaffRecord`] in the registry.
//! What a role may do is decided in [`crate::policy`], not here.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::ids::Name;
use crate::clock::Timestamp;

/// A staff member's role, held in the server's staff registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Support,
    Root,
    Admin,
    Auditor,
    Partnerships,
    DataEntry,
    Administration,
}

impl Role {
    pub const ALL: [Role; 7] = [
        Role::Support,
        Role::Root,
        Role::Admin,
        Role::Auditor,
        Role::Partnerships,
        Role::DataEntry,
        Role::Administration,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Support => "support",
            Role::Root => "root",
            Role::Admin => "admin",
            Role::Auditor => "auditor",
            Role::Partnerships => "partnerships",
            Role::DataEntry => "data-entry",
            Role::Administration => "administration",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Roles that may hold grants into customer environments.
    pub fn may_hold_grants(self) -> bool {
        matches!(self, Role::Support | Role::Root)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A staff member in the registry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffRecord {
    pub name: Name,
    pub role: Role,
    pub enrolled_at: Timestamp,
    pub offboarded_at: Option<Timestamp>,
}

impl StaffRecord {
    pub fn is_active(&self) -> bool {
        self.offboarded_at.is_none()
    }
}
