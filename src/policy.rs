//! Who may do what, decided in one place. Handlers ask; they never
//! re-implement a rule. Two kinds of decision live here:
//!
//! * [`authorize`]: may this caller make this call at all (role × RPC);
//! * the object-level checks ([`may_see`], [`may_decide`], [`may_revoke`],
//!   [`may_read_entry`], [`may_read_tenant_log`],
//!   [`may_release`], [`may_use`], [`may_see_incident`],
//!   [`may_read_processing`], [`may_recertify`], [`may_break_glass`],
//!   [`may_review`]): may this caller touch this particular grant or read
//!   this particular log entry.
//!
//! Callers whose role gives no access to customer data (partnerships,
//! data-entry, administration) are refused everything but `WhoAmI`.

use thiserror::Error;

pub use crate::domain::Role;
use crate::{
    audit::Entry,
    domain::{Actor, Approval, ApproverGroup, Grant, Name, Principal, PrincipalKind, detail},
};

/// An authenticated, enrolled caller. Built once per call by the RPC layer
/// from the peer certificate and the registries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    Staff { name: Name, role: Role },
    Tenant { name: Name },
}

impl Caller {
    /// The principal it is: `staff/alice`, `auditor/eve`, `tenant/acme`.
    pub fn principal(&self) -> Principal {
        match self {
            Caller::Staff {
                name,
                role: Role::Auditor,
            } => Principal::new(PrincipalKind::Auditor, name.clone()),
            Caller::Staff { name, .. } => Principal::new(PrincipalKind::Staff, name.clone()),
            Caller::Tenant { name } => Principal::new(PrincipalKind::Tenant, name.clone()),
        }
    }

    /// The actor of the entries it causes.
    pub fn actor(&self) -> Actor {
        Actor::Principal(self.principal())
    }

    pub fn role(&self) -> Option<Role> {
        match self {
            Caller::Staff { role, .. } => Some(*role),
            Caller::Tenant { .. } => None,
        }
    }

    /// The tenant this caller speaks for, if it is a tenant.
    pub fn tenant(&self) -> Option<&Name> {
        match self {
            Caller::Tenant { name } => Some(name),
            Caller::Staff { .. } => None,
        }
    }
}

/// Every RPC, as a policy action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    AddStaff,
    OffboardStaff,
    ListStaff,
    WhoAmI,
    AddTenant,
    UpdateTenant,
    ListTenants,
    RequestGrant,
    ApproveGrant,
    DenyGrant,
    ListGrants,
    GetGrant,
    RevokeGrant,
    ReleaseGrant,
    ValidateGrant,
    RecordAccess,
    StreamEntries,
    VerifyChain,
    GetCheckpoint,
    GetEntries,
    GetInclusionProof,
    GetConsistencyProof,
    GetTenantEntries,
    RecordReport,
    IssueGrantCertificate,
    GetVerificationKeys,
    GetRevocations,
    WatchRevocations,
    ListAlerts,
    AcknowledgeAlert,
    ResolveAlert,
    ListDeadLetters,
    RetryDeadLetter,
    PairScreen,
    RevokeScreen,
    ListScreens,
    Backup,
    RecordDeclaration,
    TerminateTenant,
    ShredTenant,
    RecordIncident,
    UpdateIncident,
    RecordNotification,
    GetIncident,
    ListIncidents,
    NotificationDocument,
    Documentation,
    LocateStaff,
    SetTenantCountries,
    SetTenantJustification,
    ObjectToSubprocessor,
    AddSubprocessor,
    ListSubprocessors,
    SetProcessingRecord,
    GetProcessingRecord,
    ListProcessingRecords,
    ProcessingRegisterDocument,
    RecertifyStaff,
    /// The tile read API's `checkpoint` and hash tiles (HTTPS, not gRPC;
    /// `crate::tile_api`).
    ReadTiles,
    /// The tile read API's entry bundles: the whole log, as `GetEntries`.
    ReadEntryBundles,
    ReviewGrant,
    SetTenantBreakGlass,
    SetApproverGroup,
    RemoveApproverGroup,
    ListApproverGroups,
    SetTenantAccessLimit,
}

impl Action {
    pub const ALL: [Action; 66] = [
        Action::AddStaff,
        Action::OffboardStaff,
        Action::ListStaff,
        Action::WhoAmI,
        Action::AddTenant,
        Action::UpdateTenant,
        Action::ListTenants,
        Action::RequestGrant,
        Action::ApproveGrant,
        Action::DenyGrant,
        Action::ListGrants,
        Action::GetGrant,
        Action::RevokeGrant,
        Action::ReleaseGrant,
        Action::ValidateGrant,
        Action::RecordAccess,
        Action::StreamEntries,
        Action::VerifyChain,
        Action::GetCheckpoint,
        Action::GetEntries,
        Action::GetInclusionProof,
        Action::GetConsistencyProof,
        Action::GetTenantEntries,
        Action::RecordReport,
        Action::IssueGrantCertificate,
        Action::GetVerificationKeys,
        Action::GetRevocations,
        Action::WatchRevocations,
        Action::ListAlerts,
        Action::AcknowledgeAlert,
        Action::ResolveAlert,
        Action::ListDeadLetters,
        Action::RetryDeadLetter,
        Action::PairScreen,
        Action::RevokeScreen,
        Action::ListScreens,
        Action::Backup,
        Action::RecordDeclaration,
        Action::TerminateTenant,
        Action::ShredTenant,
        Action::RecordIncident,
        Action::UpdateIncident,
        Action::RecordNotification,
        Action::GetIncident,
        Action::ListIncidents,
        Action::NotificationDocument,
        Action::Documentation,
        Action::LocateStaff,
        Action::SetTenantCountries,
        Action::SetTenantJustification,
        Action::ObjectToSubprocessor,
        Action::AddSubprocessor,
        Action::ListSubprocessors,
        Action::SetProcessingRecord,
        Action::GetProcessingRecord,
        Action::ListProcessingRecords,
        Action::ProcessingRegisterDocument,
        Action::RecertifyStaff,
        Action::ReadTiles,
        Action::ReadEntryBundles,
        Action::ReviewGrant,
        Action::SetTenantBreakGlass,
        Action::SetApproverGroup,
        Action::RemoveApproverGroup,
        Action::ListApproverGroups,
        Action::SetTenantAccessLimit,
    ];

    /// The RPC's name, as logged.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::AddStaff => "AddStaff",
            Action::OffboardStaff => "OffboardStaff",
            Action::ListStaff => "ListStaff",
            Action::WhoAmI => "WhoAmI",
            Action::AddTenant => "AddTenant",
            Action::UpdateTenant => "UpdateTenant",
            Action::ListTenants => "ListTenants",
            Action::RequestGrant => "RequestGrant",
            Action::ApproveGrant => "ApproveGrant",
            Action::DenyGrant => "DenyGrant",
            Action::ListGrants => "ListGrants",
            Action::GetGrant => "GetGrant",
            Action::RevokeGrant => "RevokeGrant",
            Action::ReleaseGrant => "ReleaseGrant",
            Action::ValidateGrant => "ValidateGrant",
            Action::RecordAccess => "RecordAccess",
            Action::StreamEntries => "StreamEntries",
            Action::VerifyChain => "VerifyChain",
            Action::GetCheckpoint => "GetCheckpoint",
            Action::GetEntries => "GetEntries",
            Action::GetInclusionProof => "GetInclusionProof",
            Action::GetConsistencyProof => "GetConsistencyProof",
            Action::GetTenantEntries => "GetTenantEntries",
            Action::RecordReport => "RecordReport",
            Action::IssueGrantCertificate => "IssueGrantCertificate",
            Action::GetVerificationKeys => "GetVerificationKeys",
            Action::GetRevocations => "GetRevocations",
            Action::WatchRevocations => "WatchRevocations",
            Action::ListAlerts => "ListAlerts",
            Action::AcknowledgeAlert => "AcknowledgeAlert",
            Action::ResolveAlert => "ResolveAlert",
            Action::ListDeadLetters => "ListDeadLetters",
            Action::RetryDeadLetter => "RetryDeadLetter",
            Action::PairScreen => "PairScreen",
            Action::RevokeScreen => "RevokeScreen",
            Action::ListScreens => "ListScreens",
            Action::Backup => "Backup",
            Action::RecordDeclaration => "RecordDeclaration",
            Action::TerminateTenant => "TerminateTenant",
            Action::ShredTenant => "ShredTenant",
            Action::RecordIncident => "RecordIncident",
            Action::UpdateIncident => "UpdateIncident",
            Action::RecordNotification => "RecordNotification",
            Action::GetIncident => "GetIncident",
            Action::ListIncidents => "ListIncidents",
            Action::NotificationDocument => "NotificationDocument",
            Action::Documentation => "Documentation",
            Action::LocateStaff => "LocateStaff",
            Action::RecertifyStaff => "RecertifyStaff",
            Action::ReadTiles => "ReadTiles",
            Action::ReadEntryBundles => "ReadEntryBundles",
            Action::SetTenantCountries => "SetTenantCountries",
            Action::SetTenantJustification => "SetTenantJustification",
            Action::ObjectToSubprocessor => "ObjectToSubprocessor",
            Action::AddSubprocessor => "AddSubprocessor",
            Action::ListSubprocessors => "ListSubprocessors",
            Action::SetProcessingRecord => "SetProcessingRecord",
            Action::GetProcessingRecord => "GetProcessingRecord",
            Action::ListProcessingRecords => "ListProcessingRecords",
            Action::ProcessingRegisterDocument => "ProcessingRegisterDocument",
            Action::ReviewGrant => "ReviewGrant",
            Action::SetTenantBreakGlass => "SetTenantBreakGlass",
            Action::SetApproverGroup => "SetApproverGroup",
            Action::RemoveApproverGroup => "RemoveApproverGroup",
            Action::ListApproverGroups => "ListApproverGroups",
            Action::SetTenantAccessLimit => "SetTenantAccessLimit",
        }
    }
}

/// A refusal by policy; always PERMISSION_DENIED.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("{actor} may not call {action}: {why}")]
pub struct Refusal {
    pub actor: String,
    pub action: &'static str,
    pub why: &'static str,
}

/// Calls served while the server is fail-closed (its records disagree
/// with its log): reading and checking the log itself, nothing decided
/// from the records.
pub fn serves_while_fail_closed(action: Action) -> bool {
    use Action::*;
    matches!(
        action,
        WhoAmI
            | StreamEntries
            | VerifyChain
            | GetCheckpoint
            | GetEntries
            | GetInclusionProof
            | GetConsistencyProof
            | GetTenantEntries
            | ReadTiles
            | ReadEntryBundles
    )
}

/// May `caller` make an `action` call at all?
pub fn authorize(caller: &Caller, action: Action) -> Result<(), Refusal> {
    use Action::*;
    let allowed = match caller {
        Caller::Tenant { .. } => matches!(
            action,
            WhoAmI
                | ApproveGrant
                | DenyGrant
                | ListGrants
                | GetGrant
                | RevokeGrant
                | ValidateGrant
                | RecordAccess
                | GetCheckpoint
                | ReadTiles
                | GetInclusionProof
                | GetConsistencyProof
                | GetTenantEntries
                | RecordReport
                | GetVerificationKeys
                | GetRevocations
                | WatchRevocations
                | ListAlerts
                | GetIncident
                | ListIncidents
                | NotificationDocument
                | Documentation
                | ObjectToSubprocessor
                | ListSubprocessors
                | GetProcessingRecord
                | ListProcessingRecords
                | ProcessingRegisterDocument
                | ReviewGrant
        ),
        Caller::Staff { role, .. } => match role {
            Role::Root
                if matches!(
                    action,
                    ListAlerts
                        | AcknowledgeAlert
                        | ResolveAlert
                        | ListDeadLetters
                        | RetryDeadLetter
                        | ReviewGrant
                ) =>
            {
                true
            }
            Role::Support | Role::Root => matches!(
                action,
                WhoAmI
                    | ListTenants
                    | RequestGrant
                    | ApproveGrant
                    | DenyGrant
                    | ListGrants
                    | GetGrant
                    | ReleaseGrant
                    | GetCheckpoint
                    | ReadTiles
                    | GetInclusionProof
                    | GetConsistencyProof
                    | IssueGrantCertificate
                    | GetVerificationKeys
                    | ListSubprocessors
            ),
            Role::Admin => matches!(
                action,
                WhoAmI
                    | AddStaff
                    | OffboardStaff
                    | ListStaff
                    | AddTenant
                    | UpdateTenant
                    | ListTenants
                    | ApproveGrant
                    | DenyGrant
                    | ListGrants
                    | GetGrant
                    | RevokeGrant
                    | StreamEntries
                    | VerifyChain
                    | GetCheckpoint
                    | ReadTiles
                    | GetEntries
                    | ReadEntryBundles
                    | GetInclusionProof
                    | GetConsistencyProof
                    | GetTenantEntries
                    | RecordReport
                    | GetVerificationKeys
                    | ListAlerts
                    | AcknowledgeAlert
                    | ResolveAlert
                    | ListDeadLetters
                    | RetryDeadLetter
                    | PairScreen
                    | RevokeScreen
                    | ListScreens
                    | Backup
                    | RecordDeclaration
                    | TerminateTenant
                    | ShredTenant
                    | RecordIncident
                    | UpdateIncident
                    | RecordNotification
                    | GetIncident
                    | ListIncidents
                    | NotificationDocument
                    | Documentation
                    | LocateStaff
                    | SetTenantCountries
                    | SetTenantJustification
                    | ObjectToSubprocessor
                    | AddSubprocessor
                    | ListSubprocessors
                    | SetProcessingRecord
                    | GetProcessingRecord
                    | ListProcessingRecords
                    | ProcessingRegisterDocument
                    | RecertifyStaff
                    | ReviewGrant
                    | SetTenantBreakGlass
                    | SetApproverGroup
                    | RemoveApproverGroup
                    | ListApproverGroups
                    | SetTenantAccessLimit
            ),
            Role::Auditor => matches!(
                action,
                WhoAmI
                    | ListStaff
                    | ListTenants
                    | ListGrants
                    | GetGrant
                    | StreamEntries
                    | VerifyChain
                    | GetCheckpoint
                    | ReadTiles
                    | GetEntries
                    | ReadEntryBundles
                    | GetInclusionProof
                    | GetConsistencyProof
                    | GetTenantEntries
                    | RecordReport
                    | GetVerificationKeys
                    | ListAlerts
                    | ListScreens
                    | GetIncident
                    | ListIncidents
                    | NotificationDocument
                    | Documentation
                    | ListSubprocessors
                    | GetProcessingRecord
                    | ListProcessingRecords
                    | ProcessingRegisterDocument
                    | ReviewGrant
                    | ListApproverGroups
            ),
            Role::Partnerships | Role::DataEntry | Role::Administration => action == WhoAmI,
        },
    };
    if allowed {
        Ok(())
    } else {
        Err(Refusal {
            actor: caller.actor().to_string(),
            action: action.as_str(),
            why: match caller.role() {
                Some(r)
                    if !matches!(r, Role::Support | Role::Root | Role::Admin | Role::Auditor) =>
                {
                    "this role has no access to customer environments"
                }
                _ => "not permitted for this role",
            },
        })
    }
}

/// Which grants a caller may see: staff their own, a tenant its own
/// tenant's, admins and auditors all. A grant a caller may not see must be
/// reported exactly like an unknown one.
pub fn may_see(caller: &Caller, grant: &Grant) -> bool {
    match caller {
        Caller::Tenant { name } => grant.tenant == *name,
        Caller::Staff {
            role: Role::Admin | Role::Auditor,
            ..
        } => true,
        Caller::Staff { name, .. } => grant.holder == *name,
    }
}

/// The answer to an object-level question about one grant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// The caller must not learn the grant exists: answer as for an unknown id.
    Hidden,
    /// The caller knows the grant but may not do this; the reason says why.
    Denied(&'static str),
}

/// Approve or deny a pending grant: the grant's own tenant, or a staff
/// member (support, root, admin) who is not the requester.
pub fn may_decide(caller: &Caller, grant: &Grant) -> Verdict {
    match caller {
        Caller::Tenant { name } if grant.tenant == *name => Verdict::Allowed,
        Caller::Tenant { .. } => Verdict::Hidden,
        Caller::Staff { name, .. } if grant.holder == *name => Verdict::Denied(
            "a requester cannot approve or deny their own request; ask the tenant or a colleague",
        ),
        Caller::Staff {
            role: Role::Support | Role::Root | Role::Admin,
            ..
        } => Verdict::Allowed,
        Caller::Staff { .. } => Verdict::Denied("not permitted for this role"),
    }
}

/// In the caller's approval queue: pending, not past its deadline, and the
/// caller may decide it ([`may_decide`], [`may_decide_under`]; `group` is
/// the approver group the grant's policy names, as the registry has it now).
pub fn awaits(
    caller: &Caller,
    grant: &Grant,
    group: Option<&ApproverGroup>,
    now: crate::clock::Timestamp,
) -> bool {
    grant.state == crate::domain::GrantState::Pending
        && grant.pending_until.is_some_and(|u| now < u)
        && may_decide(caller, grant) == Verdict::Allowed
        && may_decide_under(caller, grant, group).is_ok()
}

/// Approve or deny under the grant's approval policy (after
/// [`may_decide`]): the caller must be one whose approval counts, and must
/// not have approved it already. A denial by anyone whose approval counts
/// ends the request. Under a group policy only the group's members count,
/// as the registry has them at the decision (`group`: the group the grant
/// names, `None` if it was removed).
pub fn may_decide_under(
    caller: &Caller,
    grant: &Grant,
    group: Option<&ApproverGroup>,
) -> Result<(), String> {
    let by = caller.actor().to_string();
    let policy = grant.policy();
    let member = match (caller, group) {
        (Caller::Staff { name, .. }, Some(g)) => g.is_member(name),
        _ => false,
    };
    if !policy.counts(&by, grant.tenant.as_str()) || (policy == Approval::Group && !member) {
        let who = match &grant.approver_group {
            Some(r) if policy == Approval::Group => format!("members of group {}", r.group),
            _ => policy.describe().to_owned(),
        };
        return Err(format!(
            "tenant {}'s grants are approved by {who} (policy {}): {by} cannot decide grant {}",
            grant.tenant,
            grant.policy_name(),
            grant.id
        ));
    }
    if grant.approvals.iter().any(|a| a.by == by) {
        return Err(format!(
            "{by} already approved grant {}; it waits for {}",
            grant.id,
            grant.waits_for()
        ));
    }
    Ok(())
}

/// Re-certify a person's eligibility to hold grants: an admin (admission
/// already limited the call to admins), never for themselves (four eyes).
pub fn may_recertify(caller: &Caller, person: &Name) -> Verdict {
    match caller {
        Caller::Staff { name, .. } if name == person => {
            Verdict::Denied("an admin cannot recertify themselves (four eyes); ask another admin")
        }
        Caller::Staff {
            role: Role::Admin, ..
        } => Verdict::Allowed,
        _ => Verdict::Denied("not permitted for this role"),
    }
}

/// Revoke: an admin, or the tenant for its own grants.
pub fn may_revoke(caller: &Caller, grant: &Grant) -> bool {
    match caller {
        Caller::Tenant { name } => grant.tenant == *name,
        Caller::Staff { role, .. } => *role == Role::Admin,
    }
}

/// The tenants whose scope an entry is in: the tenant it is about, and the
/// tenant that acted, if either. A tenant may read exactly these entries.
pub fn tenant_scopes(e: &Entry) -> impl Iterator<Item = &str> {
    let about = (!e.tenant.is_empty()).then_some(e.tenant.as_str());
    let actor = e
        .actor
        .strip_prefix("tenant/")
        .filter(|t| Some(*t) != about);
    about.into_iter().chain(actor)
}

/// Which log entries a caller may read one by one (with a proof): admins
/// and auditors all; a tenant those in its scope (about it, or by it);
/// staff the entries they wrote and those about grants they hold. Any other entry must be reported exactly
/// like one that does not exist.
pub fn may_read_entry(caller: &Caller, entry: &Entry) -> bool {
    match caller {
        Caller::Staff {
            role: Role::Admin | Role::Auditor,
            ..
        } => true,
        Caller::Tenant { name } => tenant_scopes(entry).any(|t| t == name.as_str()),
        // Their own entries, and those about their own grants (a receipt
        // may name the `system` activation of a grant they asked for).
        Caller::Staff { name, .. } => {
            caller.actor().wrote(&entry.actor)
                || (!entry.tenant.is_empty()
                    && entry.details.contains_key(detail::GRANT)
                    && entry
                        .details
                        .get(detail::HOLDER)
                        .is_some_and(|h| h == name.as_str()))
        }
    }
}

/// Whose tenant-scoped log a caller may read: a tenant its own, admins and
/// auditors any.
pub fn may_read_tenant_log(caller: &Caller, tenant: &Name) -> bool {
    match caller {
        Caller::Tenant { name } => name == tenant,
        Caller::Staff {
            role: Role::Admin | Role::Auditor,
            ..
        } => true,
        Caller::Staff { .. } => false,
    }
}

/// Which calls are rate-limited per caller, and in which bucket: the ones
/// a caller can repeat cheaply and that each write a log entry.
pub fn rate_class(action: Action) -> Option<crate::limits::Class> {
    use crate::limits::Class;
    match action {
        // Both mint credentials for an engineer.
        Action::RequestGrant | Action::IssueGrantCertificate => Some(Class::Requests),
        // Revocation lists are signed per call: polls and new streams count
        // like validations.
        Action::ValidateGrant | Action::GetRevocations | Action::WatchRevocations => {
            Some(Class::Validations)
        }
        Action::RecordAccess => Some(Class::Reports),
        _ => None,
    }
}

/// What the tile read API serves (`crate::tile_api`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TileResource {
    Checkpoint,
    HashTile,
    EntryBundle,
}

impl TileResource {
    /// The action a caller with a certificate is admitted for.
    pub fn action(self) -> Action {
        match self {
            TileResource::Checkpoint | TileResource::HashTile => Action::ReadTiles,
            TileResource::EntryBundle => Action::ReadEntryBundles,
        }
    }
}

/// May a connection without a client certificate read `what`? The
/// checkpoint and hash tiles reveal only the log's size and hashes: where
/// the operator made them public (`tiles.public_hashes`). Entry bundles,
/// the log's contents, never.
pub fn may_read_tiles_anonymously(what: TileResource, public_hashes: bool) -> bool {
    public_hashes && what != TileResource::EntryBundle
}

/// A grant's credentials (its token, a grant certificate): only the
/// holder gets them.
pub fn may_use(caller: &Caller, grant: &Grant) -> bool {
    matches!(caller, Caller::Staff { name, .. } if grant.holder == *name)
}

/// Which incidents of the breach register a caller may read: admins and
/// auditors all; a tenant those that affect it (any other must be reported
/// exactly like an unknown one, so a tenant cannot learn of other tenants'
/// incidents); nobody else any.
pub fn may_see_incident(caller: &Caller, affected: &[Name]) -> bool {
    match caller {
        Caller::Tenant { name } => affected.contains(name),
        Caller::Staff {
            role: Role::Admin | Role::Auditor,
            ..
        } => true,
        Caller::Staff { .. } => false,
    }
}

/// A tenant's objection to a sub-processor: the tenant itself, or an admin
/// on its behalf (admission already limited the call to those two).
pub fn may_object_for(caller: &Caller, tenant: &Name) -> bool {
    match caller {
        Caller::Tenant { name } => name == tenant,
        Caller::Staff {
            role: Role::Admin, ..
        } => true,
        Caller::Staff { .. } => false,
    }
}

/// Whose record of processing a caller may read: admins and auditors
/// any; a tenant its own (another tenant's must be reported exactly like
/// an unknown tenant); nobody else any.
pub fn may_read_processing(caller: &Caller, tenant: &Name) -> bool {
    match caller {
        Caller::Tenant { name } => name == tenant,
        Caller::Staff {
            role: Role::Admin | Role::Auditor,
            ..
        } => true,
        Caller::Staff { .. } => false,
    }
}

/// The whole register of processing (every tenant): admins and auditors.
pub fn may_read_whole_processing_register(caller: &Caller) -> bool {
    matches!(
        caller,
        Caller::Staff {
            role: Role::Admin | Role::Auditor,
            ..
        }
    )
}

/// Release: only the holder.
pub fn may_release(caller: &Caller, grant: &Grant) -> bool {
    matches!(caller, Caller::Staff { name, .. } if grant.holder == *name)
}

/// Open a break-glass grant (active at once, whatever the tenant's
/// approval policy): a root holder always; support only on a tenant that
/// allows it (`tenant break-glass NAME --allow-support on`); nobody else.
pub fn may_break_glass(role: Role, tenant: &crate::domain::TenantRecord) -> Result<(), String> {
    match role {
        Role::Root => Ok(()),
        Role::Support if tenant.break_glass_support => Ok(()),
        Role::Support => Err(format!(
            "tenant {} lets only root holders open break-glass grants; ask a root holder, \
             or request an ordinary grant",
            tenant.name
        )),
        _ => Err(
            "only root holders (and support, where the tenant allows it) open \
             break-glass grants"
                .into(),
        ),
    }
}

/// Review a break-glass grant afterwards: a second person, never its
/// holder. Admins, auditors and root holders may review any; the grant's
/// own tenant its own (another tenant's is hidden); support may not.
pub fn may_review(caller: &Caller, grant: &Grant) -> Verdict {
    match caller {
        Caller::Tenant { name } if grant.tenant == *name => Verdict::Allowed,
        Caller::Tenant { .. } => Verdict::Hidden,
        Caller::Staff { name, .. } if grant.holder == *name => Verdict::Denied(
            "the holder cannot review their own break-glass grant; a second person must \
             (an admin, an auditor, another root holder or the tenant)",
        ),
        Caller::Staff {
            role: Role::Admin | Role::Auditor | Role::Root,
            ..
        } => Verdict::Allowed,
        Caller::Staff { .. } => Verdict::Denied("not permitted for this role"),
    }
}

/// In the caller's review queue: a break-glass grant that opened, has no
/// review yet, and the caller may review ([`may_review`]).
pub fn awaits_review(caller: &Caller, grant: &Grant) -> bool {
    grant.awaits_review() && may_review(caller, grant) == Verdict::Allowed
}
