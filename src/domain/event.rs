//! What the log records: every [`EventKind`] an entry can have, the detail
//! keys ([`detail`]) that writers and readers (replay, the CLI) share, and
//! the [`Draft`] of an entry before the ledger gives it a place in the
//! chain.
//!
//! Not here: the entry's bytes, hash and tree (see [`crate::audit::entry`]).

use std::{collections::BTreeMap, fmt};

use super::ids::Actor;

/// Every kind of entry daypass writes. An entry's `kind` field is this
/// enum's text ([`EventKind::as_str`]); readers of a log written by a newer
/// server may meet kinds this build does not know ([`EventKind::parse`]
/// gives `None`) and must skip them, not fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    StaffBootstrapped,
    StaffEnrolled,
    StaffOffboarded,
    TenantAdded,
    TenantUpdated,
    GrantRequested,
    GrantApproved,
    GrantDenied,
    GrantActivated,
    GrantRevoked,
    GrantReleased,
    GrantExpired,
    GrantRequestExpired,
    GrantCertificateIssued,
    ValidationAllowed,
    ValidationDenied,
    AccessRecorded,
    CallRefused,
    AuditRead,
    AuditVerified,
    ReportGenerated,
    ServerStarted,
    ServerStopped,
    AlertRaised,
    AlertAcknowledged,
    AlertResolved,
    ScreenPairingIssued,
    ScreenSessionOpened,
    ScreenRevoked,
    LogKeyAnnounced,
    LogKeyRotated,
    StoreRestored,
    StoreBackedUp,
    StaffDeclarationRecorded,
    TenantTerminated,
    TenantShredded,
    IncidentRecorded,
    IncidentUpdated,
    IncidentTenantNotified,
    IncidentNotificationOverdue,
    StaffLocated,
    SubprocessorAdded,
    SubprocessorAnnounced,
    SubprocessorObjected,
    TenantCountriesSet,
    ProcessingRecorded,
    StaffRecertified,
    TenantJustificationSet,
    GrantReviewed,
    TenantBreakGlassSet,
    GroupSet,
    GroupRemoved,
    GrantScheduled,
    TenantAccessLimitSet,
}

impl EventKind {
    pub const ALL: [EventKind; 54] = [
        EventKind::StaffBootstrapped,
        EventKind::StaffEnrolled,
        EventKind::StaffOffboarded,
        EventKind::TenantAdded,
        EventKind::TenantUpdated,
        EventKind::GrantRequested,
        EventKind::GrantApproved,
        EventKind::GrantDenied,
        EventKind::GrantActivated,
        EventKind::GrantRevoked,
        EventKind::GrantReleased,
        EventKind::GrantExpired,
        EventKind::GrantRequestExpired,
        EventKind::GrantCertificateIssued,
        EventKind::ValidationAllowed,
        EventKind::ValidationDenied,
        EventKind::AccessRecorded,
        EventKind::CallRefused,
        EventKind::AuditRead,
        EventKind::AuditVerified,
        EventKind::ReportGenerated,
        EventKind::ServerStarted,
        EventKind::ServerStopped,
        EventKind::AlertRaised,
        EventKind::AlertAcknowledged,
        EventKind::AlertResolved,
        EventKind::ScreenPairingIssued,
        EventKind::ScreenSessionOpened,
        EventKind::ScreenRevoked,
        EventKind::LogKeyAnnounced,
        EventKind::LogKeyRotated,
        EventKind::StoreRestored,
        EventKind::StoreBackedUp,
        EventKind::StaffDeclarationRecorded,
        EventKind::TenantTerminated,
        EventKind::TenantShredded,
        EventKind::IncidentRecorded,
        EventKind::IncidentUpdated,
        EventKind::IncidentTenantNotified,
        EventKind::IncidentNotificationOverdue,
        EventKind::StaffLocated,
        EventKind::SubprocessorAdded,
        EventKind::SubprocessorAnnounced,
        EventKind::SubprocessorObjected,
        EventKind::TenantCountriesSet,
        EventKind::ProcessingRecorded,
        EventKind::StaffRecertified,
        EventKind::TenantJustificationSet,
        EventKind::GrantReviewed,
        EventKind::TenantBreakGlassSet,
        EventKind::GroupSet,
        EventKind::GroupRemoved,
        EventKind::GrantScheduled,
        EventKind::TenantAccessLimitSet,
    ];

    /// The kind as written in entries (docs/log-format.md lists them).
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::StaffBootstrapped => "staff.bootstrapped",
            EventKind::StaffEnrolled => "staff.enrolled",
            EventKind::StaffOffboarded => "staff.offboarded",
            EventKind::TenantAdded => "tenant.added",
            EventKind::TenantUpdated => "tenant.updated",
            EventKind::TenantTerminated => "tenant.terminated",
            EventKind::TenantShredded => "tenant.shredded",
            EventKind::GrantRequested => "grant.requested",
            EventKind::GrantApproved => "grant.approved",
            EventKind::GrantDenied => "grant.denied",
            EventKind::GrantActivated => "grant.activated",
            EventKind::GrantRevoked => "grant.revoked",
            EventKind::GrantReleased => "grant.released",
            EventKind::GrantExpired => "grant.expired",
            EventKind::GrantRequestExpired => "grant.request_expired",
            EventKind::GrantCertificateIssued => "grant.certificate_issued",
            EventKind::ValidationAllowed => "validation.allowed",
            EventKind::ValidationDenied => "validation.denied",
            EventKind::AccessRecorded => "access.recorded",
            EventKind::CallRefused => "call.refused",
            EventKind::AuditRead => "audit.read",
            EventKind::ReportGenerated => "report.generated",
            EventKind::AuditVerified => "audit.verified",
            EventKind::ServerStarted => "server.started",
            EventKind::ServerStopped => "server.stopped",
            EventKind::AlertRaised => "alert.raised",
            EventKind::AlertAcknowledged => "alert.acknowledged",
            EventKind::AlertResolved => "alert.resolved",
            EventKind::ScreenPairingIssued => "screen.pairing_issued",
            EventKind::ScreenSessionOpened => "screen.session_opened",
            EventKind::ScreenRevoked => "screen.revoked",
            EventKind::LogKeyAnnounced => "log.key_announced",
            EventKind::LogKeyRotated => "log.key_rotated",
            EventKind::StoreRestored => "store.restored",
            EventKind::StoreBackedUp => "store.backed_up",
            EventKind::StaffDeclarationRecorded => "staff.declaration_recorded",
            EventKind::IncidentRecorded => "incident.recorded",
            EventKind::IncidentUpdated => "incident.updated",
            EventKind::IncidentTenantNotified => "incident.tenant_notified",
            EventKind::IncidentNotificationOverdue => "incident.notification_overdue",
            EventKind::StaffLocated => "staff.located",
            EventKind::SubprocessorAdded => "subprocessor.added",
            EventKind::SubprocessorAnnounced => "subprocessor.announced",
            EventKind::SubprocessorObjected => "subprocessor.objected",
            EventKind::TenantCountriesSet => "tenant.countries_set",
            EventKind::ProcessingRecorded => "processing.recorded",
            EventKind::StaffRecertified => "staff.recertified",
            EventKind::TenantJustificationSet => "tenant.justification_set",
            EventKind::GrantReviewed => "grant.reviewed",
            EventKind::TenantBreakGlassSet => "tenant.break_glass_set",
            EventKind::GroupSet => "group.set",
            EventKind::GroupRemoved => "group.removed",
            EventKind::GrantScheduled => "grant.scheduled",
            EventKind::TenantAccessLimitSet => "tenant.access_limit_set",
        }
    }

    /// The kind an entry names, if this build knows it.
    pub fn parse(s: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Kinds that end a grant (its outcome in a replay).
    pub fn ends_grant(self) -> bool {
        matches!(
            self,
            EventKind::GrantDenied
                | EventKind::GrantRevoked
                | EventKind::GrantReleased
                | EventKind::GrantExpired
                | EventKind::GrantRequestExpired
        )
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Detail keys, shared by the code that writes entries and the code that
/// reads them back.
pub mod detail {
    pub const GRANT: &str = "grant";
    /// The previous entry of each tenant scope the entry is in
    /// (docs/log-format.md §9), set by the ledger.
    pub const SCOPE_PREV: &str = "scope_prev";
    pub const HOLDER: &str = "holder";
    pub const REASON: &str = "reason";
    pub const TICKET: &str = "ticket";
    pub const NOTE: &str = "note";
    pub const CAUSE: &str = "cause";
    pub const DURATION_SECS: &str = "duration_secs";
    pub const APPROVAL: &str = "approval";
    pub const REQUIRE_TICKET: &str = "require_ticket";
    pub const REQUIRE_DECLARATION: &str = "require_declaration";
    pub const EXPIRES_AT: &str = "expires_at";
    pub const EXPIRED_AT: &str = "expired_at";
    pub const PENDING_UNTIL: &str = "pending_until";
    pub const NAME: &str = "name";
    pub const ROLE: &str = "role";
    pub const SOURCE: &str = "source";
    pub const REVOKED_GRANTS: &str = "revoked_grants";
    pub const ACTION: &str = "action";
    pub const RESOURCE: &str = "resource";
    pub const ACCESSED_AT: &str = "accessed_at";
    pub const WITHIN_GRANT: &str = "within_grant";
    pub const REPORT_ID: &str = "report_id";
    pub const ASKED: &str = "asked";
    pub const DENY_REASON: &str = "deny_reason";
    pub const SERIAL: &str = "serial";
    pub const NOT_AFTER: &str = "not_after";
    pub const CALL: &str = "call";
    pub const CODE: &str = "code";
    pub const MESSAGE: &str = "message";
    pub const UNLOGGED_REFUSALS_BEFORE: &str = "unlogged_refusals_before";
    pub const FROM_SEQ: &str = "from_seq";
    /// An access report's period, RFC 3339 (`report.generated`).
    pub const PERIOD_FROM: &str = "period_from";
    pub const PERIOD_TO: &str = "period_to";
    pub const FOLLOW: &str = "follow";
    pub const PURPOSE: &str = "purpose";
    pub const TREE_SIZE: &str = "tree_size";
    pub const ENTRIES: &str = "entries";
    pub const OK: &str = "ok";
    pub const FIRST_BAD_SEQ: &str = "first_bad_seq";
    pub const PROBLEM: &str = "problem";
    pub const VERSION: &str = "version";
    pub const DETAIL: &str = "detail";
    pub const ALERT: &str = "alert";
    pub const RULE: &str = "rule";
    pub const SEVERITY: &str = "severity";
    pub const SUBJECT: &str = "subject";
    pub const SUMMARY: &str = "summary";
    pub const TRIGGER_SEQS: &str = "trigger_seqs";
    pub const SCREEN: &str = "screen";
    pub const PEER: &str = "peer";
    pub const REPLACED: &str = "replaced";
    pub const KEY: &str = "key";
    pub const NEXT_KEY: &str = "next_key";
    pub const RETIRED_KEYS: &str = "retired_keys";
    pub const RESTORED_SIZE: &str = "restored_size";
    pub const LOST_SIZE: &str = "lost_size";
    pub const LOST_ROOT: &str = "lost_root";
    pub const SNAPSHOT_TAKEN_AT: &str = "snapshot_taken_at";
    pub const EPOCH: &str = "epoch";
    pub const PREVIOUS_RESTORE: &str = "previous_restore";
    pub const DECLARATION_VERSION: &str = "declaration_version";
    pub const SIGNED_ON: &str = "signed_on";
    pub const COUNTRY: &str = "country";
    pub const ORGANISATION: &str = "organisation";
    pub const PREVIOUS_COUNTRY: &str = "previous_country";
    pub const PREVIOUS_ORGANISATION: &str = "previous_organisation";
    pub const SUBPROCESSOR: &str = "subprocessor";
    pub const ANNOUNCED_AT: &str = "announced_at";
    pub const USABLE_FROM: &str = "usable_from";
    pub const NOTICE_DAYS: &str = "notice_days";
    pub const ALLOWED_COUNTRIES: &str = "allowed_countries";
    pub const TENANTS_NOTIFIED: &str = "tenants_notified";
    pub const DOCUMENT_SHA256: &str = "document_sha256";
    pub const SHREDDED_AT: &str = "shredded_at";
    /// `processing.recorded`: the record's SHA-256 and its canonical JSON.
    pub const SHA256: &str = "sha256";
    pub const RECORD: &str = "record";
    /// `grant.requested`: the request's category (`domain::ReasonCode`),
    /// absent when it gave none. A category, not personal data: plain.
    pub const REASON_CODE: &str = "reason_code";
    /// `tenant.justification_set`: the tenant's ticket pattern (empty: none)
    /// and whether its requests need a reason code.
    pub const TICKET_PATTERN: &str = "ticket_pattern";
    pub const REQUIRE_REASON_CODE: &str = "require_reason_code";
    /// `grant.requested` and `grant.activated` of a break-glass grant:
    /// `true` (absent on every other grant's entries).
    pub const BREAK_GLASS: &str = "break_glass";
    /// `grant.reviewed`: `justified` or `unjustified` (its `note` is sealed).
    pub const VERDICT: &str = "verdict";
    /// `tenant.break_glass_set`: may support staff open break-glass grants
    /// for the tenant (`true`/`false`).
    pub const ALLOW_SUPPORT: &str = "allow_support";
    /// A grant's scopes (`grant.requested`), comma-joined in ascending
    /// order; absent: the whole tenant. Structure, not sealed.
    pub const SCOPES: &str = "scopes";
    /// The resource a tenant asked `ValidateGrant` about (`validation.*`).
    /// Of the scope grammar, not free text; not sealed, so the scope rule
    /// is checked offline.
    pub const FOR_RESOURCE: &str = "for_resource";
    /// A scheduled grant's start (`grant.requested`, `grant.scheduled`)
    /// and, on the activation of a scheduled grant, the activation time
    /// (its start, whenever the entry is written).
    pub const STARTS_AT: &str = "starts_at";
    pub const ACTIVATED_AT: &str = "activated_at";
    /// `tenant.access_limit_set`: one person's access allowed per rolling
    /// window, in seconds (both 0: no limit).
    pub const LIMIT_SECS: &str = "limit_secs";
    pub const WINDOW_SECS: &str = "window_secs";

    /// The details of a tenant's entries that are its personal data: the
    /// free text people type (reasons, tickets, notes) and what they did
    /// in the tenant's environment (actions, resources). They are sealed
    /// with the tenant's key ([`crate::ledger::keys`]) and gone once it is
    /// destroyed; every other detail is structure the log's rules are
    /// checked with, offline and without the key, and stays plain.
    pub const PERSONAL: [&str; 5] = [REASON, TICKET, NOTE, ACTION, RESOURCE];

    pub fn is_personal(key: &str) -> bool {
        PERSONAL.contains(&key)
    }
    pub const INCIDENT: &str = "incident";
    pub const NATURE: &str = "nature";
    pub const SUBJECT_CATEGORIES: &str = "data_subject_categories";
    pub const DATA_CATEGORIES: &str = "personal_data_categories";
    pub const APPROX_SUBJECTS: &str = "approx_data_subjects";
    pub const APPROX_RECORDS: &str = "approx_records";
    pub const CONTACT_NAME: &str = "contact_name";
    pub const CONTACT_EMAIL: &str = "contact_email";
    pub const CONSEQUENCES: &str = "likely_consequences";
    pub const MEASURES: &str = "measures";
    pub const FACTS: &str = "facts";
    pub const BECAME_KNOWN_AT: &str = "became_known_at";
    pub const DUE_AT: &str = "due_at";
    pub const EVIDENCE_SEQS: &str = "evidence_seqs";
    pub const NOTIFIED_AT: &str = "notified_at";
    pub const CHANNEL: &str = "channel";
    pub const NOTIFIED_BY: &str = "notified_by";
    /// An approver group's name (`group.set`, `group.removed`, and the
    /// `tenant.*` and `grant.requested` entries under a group policy), its
    /// members (comma-separated) and the policy's threshold.
    pub const GROUP: &str = "group";
    pub const MEMBERS: &str = "members";
    pub const THRESHOLD: &str = "threshold";
    /// `grant.requested`: who it waits for, in words (`tenant acme`,
    /// `peer`, `group oncall-leads 2 of 3`), and the approvers it names
    /// (actors, comma-separated; absent when any colleague may approve),
    /// for the webhooks that notify them.
    pub const AWAITS: &str = "awaits";
    pub const APPROVERS: &str = "approvers";
}

/// A log entry before it has a sequence number and a place in the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Draft {
    pub actor: Actor,
    /// The tenant the entry is about (empty: none).
    pub tenant: String,
    pub kind: EventKind,
    pub details: BTreeMap<String, String>,
}

impl Draft {
    pub fn new(actor: Actor, tenant: impl Into<String>, kind: EventKind) -> Self {
        Draft {
            actor,
            tenant: tenant.into(),
            kind,
            details: BTreeMap::new(),
        }
    }

    pub fn with(mut self, key: &str, value: impl ToString) -> Self {
        self.details.insert(key.to_owned(), value.to_string());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_through_its_text() {
        for k in EventKind::ALL {
            assert_eq!(EventKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(EventKind::parse("grant.teleported"), None);
    }
}
