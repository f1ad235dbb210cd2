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
    /// The newest confidentiality declaration recorded for this person
    /// (absent in records written before declarations existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declaration: Option<Declaration>,
    /// When an admin last re-certified this person's eligibility
    /// (`staff.recertified`); absent: never, so the enrolment is the last
    /// certification ([`StaffRecord::last_certified`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recertified_at: Option<Timestamp>,
}

/// A confidentiality declaration a staff member signed: which version of
/// the text, when, and the SHA-256 of the signed document (kept by HR;
/// daypass keeps only its hash, so the record proves which document
/// without holding it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Declaration {
    /// The text's version, e.g. `2026-1`: 1 to 40 of `A-Z a-z 0-9 . _ -`.
    pub version: String,
    /// The day it was signed, `YYYY-MM-DD`.
    pub signed_on: String,
    /// Lowercase hex SHA-256 of the signed document.
    pub document_sha256: String,
}

impl Declaration {
    /// Parses the three fields as typed; the message names the field.
    pub fn parse(version: &str, signed_on: &str, sha256: &str) -> Result<Declaration, String> {
        let version = version.trim();
        if version.is_empty()
            || version.chars().count() > 40
            || !version
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err("version: 1 to 40 letters, digits, '.', '_' or '-' (e.g. 2026-1)".into());
        }
        let day = chrono::NaiveDate::parse_from_str(signed_on.trim(), "%Y-%m-%d")
            .map_err(|_| "signed_on: a date like 2026-11-30".to_owned())?;
        let sha = sha256.trim().to_ascii_lowercase();
        if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(
                "document_sha256: 64 hex digits (the SHA-256 of the signed document)".into(),
            );
        }
        Ok(Declaration {
            version: version.to_owned(),
            signed_on: day.format("%Y-%m-%d").to_string(),
            document_sha256: sha,
        })
    }

    /// The day it was signed, at 00:00 UTC.
    pub fn signed_at(&self) -> Option<Timestamp> {
        chrono::NaiveDate::parse_from_str(&self.signed_on, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| Timestamp(t.and_utc().timestamp_millis()))
    }
}

impl StaffRecord {
    pub fn is_active(&self) -> bool {
        self.offboarded_at.is_none()
    }

    /// The last certification of this person's eligibility: the newest
    /// re-certification, or the enrolment, which counts as the first.
    pub fn last_certified(&self) -> Timestamp {
        self.recertified_at.unwrap_or(self.enrolled_at)
    }

    /// When eligibility lapses if it must be re-certified every `days`
    /// days (`staff.recertify_days`); `None` when that is off (0).
    pub fn certification_due(&self, days: u32) -> Option<Timestamp> {
        (days > 0).then(|| self.last_certified().plus_secs(i64::from(days) * 86_400))
    }
}
