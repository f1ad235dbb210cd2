//! Tenants: a customer environment's [`TenantRecord`] and its
//! [`Approval`] policy.

use serde::{Deserialize, Serialize};

use super::{ids::Name, justification::Justification};
use crate::clock::Timestamp;

/// How a tenant's grants become active.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Approval {
    /// Active at once.
    Auto,
    /// Pending until the tenant or another staff member approves.
    Approval,
}

impl Approval {
    pub fn as_str(self) -> &'static str {
        match self {
            Approval::Auto => "auto",
            Approval::Approval => "approval",
        }
    }
}

/// A tenant in the registry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantRecord {
    pub name: Name,
    pub approval: Approval,
    pub require_ticket: bool,
    pub created_at: Timestamp,
    /// Grants for this tenant need a confidentiality declaration on the
    /// holder's record (absent in records written before it existed).
    #[serde(default)]
    pub require_declaration: bool,
    /// When the agreement ended (`tenant terminate`): no grants from then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminated_at: Option<Timestamp>,
    /// When its key was destroyed, and with it its personal details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shredded_at: Option<Timestamp>,
    /// Its rules for a request's reason code and ticket
    /// (`tenant.justification_set`; default in older records).
    #[serde(default, skip_serializing_if = "is_default")]
    pub justification: Justification,
}

fn is_default(j: &Justification) -> bool {
    *j == Justification::default()
}

impl TenantRecord {
    /// Why no grant may be requested or approved for this tenant, if so.
    pub fn closed(&self) -> Option<String> {
        self.terminated_at.map(|t| {
            format!(
                "tenant {} was terminated on {}: it takes no grants any more",
                self.name,
                t.to_rfc3339()
            )
        })
    }
}
