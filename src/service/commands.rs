//! Typed commands: what each use case is asked to do, with every field
//! already parsed ([`crate::domain`] types). The RPC layer builds them from
//! protobuf requests (`TryFrom`, in [`crate::rpc::commands`]); a command
//! that exists is well-formed, so the service checks only rules that need
//! state, the clock or the configuration.

use crate::{
    clock::Timestamp,
    domain::{
        AccessAction, Approval, GrantId, Name, Note, Reason, ReportId, Resource, Role, Ticket,
    },
};

/// Enrol a staff member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddStaff {
    pub name: Name,
    pub role: Role,
    /// Where they work (unknown country and the company when not given).
    pub location: crate::domain::Location,
}

/// Offboard a staff member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffboardStaff {
    pub name: Name,
}

/// Re-certify a staff member's eligibility to hold grants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecertifyStaff {
    pub name: Name,
}

/// Record a staff member's signed confidentiality declaration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordDeclaration {
    pub name: Name,
    pub declaration: crate::domain::Declaration,
}

/// Register a tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddTenant {
    pub name: Name,
    pub approval: Approval,
    /// Under [`Approval::Group`]: the group and threshold.
    pub approver_group: Option<crate::domain::GroupRule>,
    pub require_ticket: bool,
    pub require_declaration: bool,
}

/// End a tenant's agreement: revoke its grants, take no new ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TerminateTenant {
    pub name: Name,
}

/// Destroy a terminated tenant's key (the name given twice).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShredTenant {
    pub name: Name,
}

/// Change a tenant's policy; at least one field is set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateTenant {
    pub name: Name,
    pub approval: Option<Approval>,
    /// With `approval` [`Approval::Group`]: the group and threshold.
    pub approver_group: Option<crate::domain::GroupRule>,
    pub require_ticket: Option<bool>,
    pub require_declaration: Option<bool>,
}

/// Ask for access to a tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestGrant {
    pub tenant: Name,
    pub reason: Reason,
    pub ticket: Ticket,
    /// As asked: 0 for the maximum; checked against the configured maximum.
    pub duration_secs: i64,
    /// Its category, if it gave one (the tenant may require one).
    pub reason_code: Option<crate::domain::ReasonCode>,
    /// An emergency: active at once, whatever the approval policy (then 0
    /// asks for the break-glass default, not the maximum).
    pub break_glass: bool,
    /// The scopes it asks for; none: the whole tenant.
    pub scopes: crate::domain::Scopes,
    /// A scheduled grant's start, as asked (`None`: now); the service
    /// checks it against the clock and `grants.max_schedule_ahead_secs`.
    pub starts_at: Option<crate::clock::Timestamp>,
}

/// Approve or deny a pending request, or revoke a grant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decide {
    pub grant: GrantId,
    pub note: Note,
}

/// Which grants to list (each filter optional).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListGrants {
    pub tenant: Option<Name>,
    pub holder: Option<Name>,
    pub live_only: bool,
    /// The caller's approval queue instead ([`crate::policy::may_decide_under`]).
    pub awaiting_me: bool,
    /// The break-glass grants waiting for the caller's review instead
    /// ([`crate::policy::awaits_review`]).
    pub awaiting_review: bool,
}

/// Review a break-glass grant afterwards.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReviewGrant {
    pub grant: GrantId,
    pub verdict: crate::domain::ReviewVerdict,
    pub note: crate::domain::ReviewNote,
}

/// Whether support staff may open break-glass grants for a tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetTenantBreakGlass {
    pub tenant: Name,
    pub allow_support: bool,
}

/// What a tenant asks about: a grant, or the newest grant of a person.
/// An id or name that does not parse names nobody: it is answered (and
/// logged) as unknown, with what was asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    Grant(Option<GrantId>),
    Staff(Option<Name>),
}

/// May this engineer act now?
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidateGrant {
    pub subject: Subject,
    /// What the tenant sent, for the log when it names nobody.
    pub asked: String,
    /// The resource the engineer is to act on, if the tenant named one:
    /// refused (out of scope) when outside the grant's scopes.
    pub resource: Option<crate::domain::ScopedResource>,
}

/// What an engineer did under a grant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordAccess {
    pub grant: GrantId,
    pub action: AccessAction,
    pub resource: Resource,
    /// When it happened (ms since the epoch); 0: now, about to happen.
    pub accessed_at_ms: i64,
    pub report_id: Option<ReportId>,
}

/// A grant certificate for a key of the holder's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssueCertificate {
    pub grant: GrantId,
    /// A PEM certificate signing request, non-empty and bounded.
    pub csr_pem: String,
}

/// One page of a tenant's entries with proofs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantEntries {
    /// `None`: the calling tenant's own.
    pub tenant: Option<Name>,
    pub from: u64,
    pub limit: u32,
    /// 0: the newest checkpoint.
    pub tree_size: u64,
}

/// An access report opened on a tenant for a period.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordReport {
    /// `None`: the calling tenant's own.
    pub tenant: Option<Name>,
    /// The period `[from, to)`: `from` before `to`.
    pub from: Timestamp,
    pub to: Timestamp,
}

/// Largest accepted certificate signing request (PEM).
pub const MAX_CSR_BYTES: usize = 16 * 1024;

/// Which alerts to list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListAlerts {
    /// Resolved ones too.
    pub include_resolved: bool,
    /// At least this severe.
    pub min_severity: Option<crate::domain::Severity>,
    pub rule: Option<crate::domain::Rule>,
    pub tenant: Option<Name>,
}

/// Acknowledge or resolve an alert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecideAlert {
    pub id: crate::domain::AlertId,
    pub note: Note,
}

/// Issue a pairing code for a warning screen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairScreen {
    pub name: Name,
    /// How long the code may wait to be used.
    pub ttl_secs: i64,
}

/// End a warning screen's session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevokeScreen {
    pub name: Name,
}

/// Change where a staff member works and for whom.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocateStaff {
    pub name: Name,
    pub location: crate::domain::Location,
}

/// Register and announce a sub-processor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddSubprocessor {
    pub name: Name,
    pub country: crate::domain::Country,
    pub purpose: String,
}

/// Set a tenant's own allowed countries (empty: the default).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetTenantCountries {
    pub tenant: Name,
    pub countries: Vec<crate::domain::Country>,
}

/// Change a tenant's justification rules; `None` keeps a rule as it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetTenantJustification {
    pub tenant: Name,
    /// `Some(None)` clears the pattern.
    pub ticket_pattern: Option<Option<crate::domain::TicketPattern>>,
    pub require_reason_code: Option<bool>,
}

/// A tenant's objection to a sub-processor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectToSubprocessor {
    pub tenant: Name,
    pub subprocessor: Name,
}

/// Create or replace an approver group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetApproverGroup {
    pub name: Name,
    /// Sorted, each once, at least one.
    pub members: Vec<Name>,
}

/// Remove an approver group no tenant's policy names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoveApproverGroup {
    pub name: Name,
}

/// Set (`Some`) or clear (`None`) a tenant's cumulative access limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetTenantAccessLimit {
    pub tenant: Name,
    pub limit: Option<crate::domain::AccessLimit>,
}
