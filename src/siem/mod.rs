//! SIEM export: the audit log in the shapes security tooling ingests.
//!
//! * [`csv`]: one RFC 4180 row per entry (`audit export --format csv`);
//! * [`ocsf`]: one OCSF 1.3.0 event per entry (`audit export --format ocsf`,
//!   and the syslog forwarder's `format = "ocsf"`);
//! * [`syslog`]: RFC 5424 messages and RFC 5425 octet-counting frames;
//! * [`forward`]: the syslog forwarder, which follows the durable log from a
//!   cursor kept in the store and writes each entry, at least once, to a
//!   collector over TLS, as the webhooks do (`crate::notify`);
//! * [`settings`]: the `[[syslog]]` configuration sections and their checks.
//!
//! [`Level`] is how much an entry matters to a security team; the OCSF
//! `severity_id` and the syslog severity both come from it, so the two never
//! disagree. The mapping tables are in docs/siem.md.
//!
//! Not here: the verifiable JSON Lines export (`crate::audit::export`),
//! which is what an auditor checks; these shapes carry no hashes or proofs.

pub mod csv;
pub mod forward;
pub mod ocsf;
pub mod settings;
pub mod syslog;

use crate::{audit::Entry, domain::detail};

/// How much an entry matters to whoever watches a SIEM.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Routine: reads, registrations, grant bookkeeping.
    Info,
    /// Worth seeing: access granted or taken away, a refused call, a denied
    /// validation, the server starting or stopping, an `info` alert.
    Notice,
    /// Worth a look: a refusal of identity or permission, an access
    /// reported outside its grant, a failed log check, a `warning` alert.
    Warning,
    /// Act now: a `critical` alert.
    Critical,
}

impl Level {
    /// The level of an entry, from its kind and, for some kinds, its
    /// details (docs/siem.md §1).
    pub fn of(e: &Entry) -> Level {
        let d = |k: &str| e.details.get(k).map(String::as_str);
        match e.kind.as_str() {
            "alert.raised" => match d(detail::SEVERITY) {
                Some("info") => Level::Notice,
                Some("critical") => Level::Critical,
                _ => Level::Warning,
            },
            "call.refused" => match d(detail::CODE) {
                Some("unauthenticated" | "permission-denied") => Level::Warning,
                _ => Level::Notice,
            },
            "access.recorded" if d(detail::WITHIN_GRANT) == Some("false") => Level::Warning,
            // Entries the log once held are gone (declared, not hidden).
            "store.restored" => Level::Warning,
            "audit.verified" if d(detail::OK) == Some("false") => Level::Warning,
            "grant.activated"
            | "grant.revoked"
            | "staff.offboarded"
            | "validation.denied"
            | "server.started"
            | "server.stopped"
            | "screen.session_opened"
            | "log.key_announced"
            | "log.key_rotated"
            | "store.backed_up" => Level::Notice,
            _ => Level::Info,
        }
    }

    /// RFC 5424 severity (§6.2.1): 6 informational, 5 notice, 4 warning,
    /// 2 critical.
    pub fn syslog_severity(self) -> u8 {
        match self {
            Level::Info => 6,
            Level::Notice => 5,
            Level::Warning => 4,
            Level::Critical => 2,
        }
    }

    /// OCSF `severity_id` and its caption: 1 Informational, 2 Low,
    /// 3 Medium, 5 Critical.
    pub fn ocsf_severity(self) -> (u8, &'static str) {
        match self {
            Level::Info => (1, "Informational"),
            Level::Notice => (2, "Low"),
            Level::Warning => (3, "Medium"),
            Level::Critical => (5, "Critical"),
        }
    }
}
