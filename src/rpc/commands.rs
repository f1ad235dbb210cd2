//! Protobuf requests into typed commands ([`crate::service::commands`]):
//! every field parsed once, here, with a message that names the field and
//! says what to fix. A request that does not convert is refused with
//! INVALID_ARGUMENT (and the refusal logged) before the service runs.

use crate::{
    clock::Timestamp,
    domain::{
        AccessAction, Approval, GrantId, GroupRule, Name, Note, Reason, ReportId, Resource, Role,
        Ticket, truncate,
    },
    identity::IdentityError,
    pb,
    service::{
        BrokerError,
        commands::{
            AddStaff, AddSubprocessor, AddTenant, Decide, DecideAlert, IssueCertificate,
            ListAlerts, ListGrants, LocateStaff, MAX_CSR_BYTES, ObjectToSubprocessor,
            OffboardStaff, PairScreen, RecertifyStaff, RecordAccess, RecordDeclaration,
            RecordReport, RemoveApproverGroup, RequestGrant, RevokeScreen, SetApproverGroup,
            SetTenantAccessLimit, SetTenantCountries, SetTenantJustification, ShredTenant,
            TenantEntries, TerminateTenant, UpdateTenant,
        },
        commands::{ReviewGrant, SetTenantBreakGlass},
    },
};

type Result<T> = std::result::Result<T, BrokerError>;

fn invalid(message: impl Into<String>) -> BrokerError {
    BrokerError::InvalidArgument(message.into())
}

fn name(value: &str) -> Result<Name> {
    Name::parse(value).map_err(|e| invalid(e.to_string()))
}

fn named_field(field: &str, value: &str) -> Result<Name> {
    Name::parse(value).map_err(|e: IdentityError| invalid(format!("{field}: {e}")))
}

/// A grant id as the caller sent it (surrounding space forgiven).
pub fn grant_id(value: &str) -> Result<GrantId> {
    GrantId::parse(value.trim()).ok_or_else(|| {
        invalid(format!(
            "grant id {:?} is malformed: it looks like g- followed by 24 hex digits",
            truncate(value, 40)
        ))
    })
}

/// A filter is empty (no filter) or a name; anything else would silently
/// match nothing.
fn filter(field: &str, value: &str) -> Result<Option<Name>> {
    if value.is_empty() {
        return Ok(None);
    }
    Name::parse(value)
        .map(Some)
        .map_err(|e| invalid(format!("{field} filter: {e}")))
}

/// `None` for UNSPECIFIED; an error for a value this server does not know.
pub fn role(v: i32) -> Result<Option<Role>> {
    let r = pb::Role::try_from(v).map_err(|_| invalid(format!("unknown role value {v}")))?;
    Ok(match r {
        pb::Role::Unspecified => None,
        pb::Role::Support => Some(Role::Support),
        pb::Role::Root => Some(Role::Root),
        pb::Role::Admin => Some(Role::Admin),
        pb::Role::Auditor => Some(Role::Auditor),
        pb::Role::Partnerships => Some(Role::Partnerships),
        pb::Role::DataEntry => Some(Role::DataEntry),
        pb::Role::Administration => Some(Role::Administration),
    })
}

fn approval(v: i32) -> Result<Option<Approval>> {
    let a = pb::ApprovalPolicy::try_from(v)
        .map_err(|_| invalid(format!("unknown approval policy value {v}")))?;
    Ok(match a {
        pb::ApprovalPolicy::Unspecified => None,
        pb::ApprovalPolicy::Auto => Some(Approval::Auto),
        pb::ApprovalPolicy::Approval => Some(Approval::TenantOrPeer),
        pb::ApprovalPolicy::Tenant => Some(Approval::Tenant),
        pb::ApprovalPolicy::Peer => Some(Approval::Peer),
        pb::ApprovalPolicy::TenantAndPeer => Some(Approval::TenantAndPeer),
        pb::ApprovalPolicy::Group => Some(Approval::Group),
    })
}

/// The group and threshold of a group policy: both given with
/// APPROVAL_POLICY_GROUP, neither with any other. Whether the group
/// exists and the threshold fits it is the service's question.
fn group_rule(
    approval: Option<Approval>,
    group: &str,
    threshold: u32,
) -> Result<Option<GroupRule>> {
    match approval {
        Some(Approval::Group) => {
            if group.is_empty() {
                return Err(invalid(
                    "approver_group is required with approval policy group \
                     (group:NAME:N on the command line)",
                ));
            }
            Ok(Some(GroupRule {
                group: named_field("approver_group", group)?,
                threshold,
            }))
        }
        _ if !group.is_empty() || threshold != 0 => Err(invalid(
            "approver_group and approval_threshold are only for approval policy group",
        )),
        _ => Ok(None),
    }
}

impl TryFrom<&pb::SetApproverGroupRequest> for SetApproverGroup {
    type Error = BrokerError;
    fn try_from(r: &pb::SetApproverGroupRequest) -> Result<Self> {
        Ok(SetApproverGroup {
            name: named_field("name", &r.name)?,
            members: crate::domain::group::parse_members(r.members.iter().map(String::as_str))
                .map_err(invalid)?,
        })
    }
}

impl TryFrom<&pb::RemoveApproverGroupRequest> for RemoveApproverGroup {
    type Error = BrokerError;
    fn try_from(r: &pb::RemoveApproverGroupRequest) -> Result<Self> {
        Ok(RemoveApproverGroup {
            name: named_field("name", &r.name)?,
        })
    }
}

impl TryFrom<&pb::AddStaffRequest> for AddStaff {
    type Error = BrokerError;
    fn try_from(r: &pb::AddStaffRequest) -> Result<Self> {
        let role = role(r.role)?;
        let name = name(&r.name)?;
        let role = role.ok_or_else(|| {
            invalid("role is required: support, root, admin, auditor, partnerships, data-entry or administration")
        })?;
        let location =
            crate::domain::Location::parse(&r.country, &r.organisation).map_err(invalid)?;
        Ok(AddStaff {
            name,
            role,
            location,
        })
    }
}

impl TryFrom<&pb::LocateStaffRequest> for LocateStaff {
    type Error = BrokerError;
    fn try_from(r: &pb::LocateStaffRequest) -> Result<Self> {
        let name = named_field("name", &r.name)?;
        if r.country.trim().is_empty() {
            return Err(invalid(
                "country is required: an ISO 3166-1 alpha-2 code such as DE",
            ));
        }
        Ok(LocateStaff {
            name,
            location: crate::domain::Location::parse(&r.country, &r.organisation)
                .map_err(invalid)?,
        })
    }
}

impl TryFrom<&pb::AddSubprocessorRequest> for AddSubprocessor {
    type Error = BrokerError;
    fn try_from(r: &pb::AddSubprocessorRequest) -> Result<Self> {
        Ok(AddSubprocessor {
            name: named_field("name", &r.name)?,
            country: crate::domain::Country::parse("country", &r.country).map_err(invalid)?,
            purpose: crate::domain::location::parse_purpose(&r.purpose).map_err(invalid)?,
        })
    }
}

impl TryFrom<&pb::SetTenantJustificationRequest> for SetTenantJustification {
    type Error = BrokerError;
    fn try_from(r: &pb::SetTenantJustificationRequest) -> Result<Self> {
        let tenant = named_field("tenant", &r.tenant)?;
        if r.ticket_pattern.is_none() && r.require_reason_code.is_none() {
            return Err(invalid(
                "nothing to set: give ticket_pattern (empty clears it) or require_reason_code",
            ));
        }
        let ticket_pattern = match &r.ticket_pattern {
            None => None,
            Some(p) => Some(crate::domain::TicketPattern::parse(p).map_err(invalid)?),
        };
        Ok(SetTenantJustification {
            tenant,
            ticket_pattern,
            require_reason_code: r.require_reason_code,
        })
    }
}

impl TryFrom<&pb::SetTenantAccessLimitRequest> for SetTenantAccessLimit {
    type Error = BrokerError;
    fn try_from(r: &pb::SetTenantAccessLimitRequest) -> Result<Self> {
        Ok(SetTenantAccessLimit {
            tenant: named_field("tenant", &r.tenant)?,
            limit: crate::domain::AccessLimit::new(r.limit_seconds, r.window_seconds)
                .map_err(invalid)?,
        })
    }
}

impl TryFrom<&pb::SetTenantCountriesRequest> for SetTenantCountries {
    type Error = BrokerError;
    fn try_from(r: &pb::SetTenantCountriesRequest) -> Result<Self> {
        let tenant = named_field("tenant", &r.tenant)?;
        if r.countries.len() > crate::domain::location::MAX_ALLOWED_COUNTRIES {
            return Err(invalid(format!(
                "countries: at most {}",
                crate::domain::location::MAX_ALLOWED_COUNTRIES
            )));
        }
        Ok(SetTenantCountries {
            tenant,
            countries: crate::domain::location::parse_countries(
                "countries",
                r.countries.iter().map(String::as_str),
            )
            .map_err(invalid)?,
        })
    }
}

impl TryFrom<&pb::ObjectToSubprocessorRequest> for ObjectToSubprocessor {
    type Error = BrokerError;
    fn try_from(r: &pb::ObjectToSubprocessorRequest) -> Result<Self> {
        Ok(ObjectToSubprocessor {
            tenant: named_field("tenant", &r.tenant)?,
            subprocessor: named_field("subprocessor", &r.subprocessor)?,
        })
    }
}

impl TryFrom<&pb::RecordDeclarationRequest> for RecordDeclaration {
    type Error = BrokerError;
    fn try_from(r: &pb::RecordDeclarationRequest) -> Result<Self> {
        Ok(RecordDeclaration {
            name: named_field("name", &r.name)?,
            declaration: crate::domain::Declaration::parse(
                &r.version,
                &r.signed_on,
                &r.document_sha256,
            )
            .map_err(invalid)?,
        })
    }
}

impl TryFrom<&pb::OffboardStaffRequest> for OffboardStaff {
    type Error = BrokerError;
    fn try_from(r: &pb::OffboardStaffRequest) -> Result<Self> {
        Ok(OffboardStaff {
            name: name(&r.name)?,
        })
    }
}

impl TryFrom<&pb::RecertifyStaffRequest> for RecertifyStaff {
    type Error = BrokerError;
    fn try_from(r: &pb::RecertifyStaffRequest) -> Result<Self> {
        Ok(RecertifyStaff {
            name: named_field("name", &r.name)?,
        })
    }
}

impl TryFrom<&pb::AddTenantRequest> for AddTenant {
    type Error = BrokerError;
    fn try_from(r: &pb::AddTenantRequest) -> Result<Self> {
        let approval = approval(r.approval)?;
        let name = name(&r.name)?;
        let approval = approval.ok_or_else(|| {
            invalid("approval policy is required: auto, tenant-or-peer, tenant, peer, tenant+peer or group")
        })?;
        let approver_group = group_rule(Some(approval), &r.approver_group, r.approval_threshold)?;
        Ok(AddTenant {
            name,
            approval,
            approver_group,
            require_ticket: r.require_ticket,
            require_declaration: r.require_declaration,
        })
    }
}

impl TryFrom<&pb::UpdateTenantRequest> for UpdateTenant {
    type Error = BrokerError;
    fn try_from(r: &pb::UpdateTenantRequest) -> Result<Self> {
        let approval = approval(r.approval)?;
        let approver_group = group_rule(approval, &r.approver_group, r.approval_threshold)?;
        // An update that changes nothing would only add a log entry.
        if approval.is_none() && r.require_ticket.is_none() && r.require_declaration.is_none() {
            return Err(invalid(
                "nothing to update: give an approval policy, require_ticket or require_declaration",
            ));
        }
        Ok(UpdateTenant {
            name: name(&r.name)?,
            approval,
            approver_group,
            require_ticket: r.require_ticket,
            require_declaration: r.require_declaration,
        })
    }
}

impl TryFrom<&pb::TerminateTenantRequest> for TerminateTenant {
    type Error = BrokerError;
    fn try_from(r: &pb::TerminateTenantRequest) -> Result<Self> {
        Ok(TerminateTenant {
            name: name(&r.name)?,
        })
    }
}

impl TryFrom<&pb::ShredTenantRequest> for ShredTenant {
    type Error = BrokerError;
    fn try_from(r: &pb::ShredTenantRequest) -> Result<Self> {
        let name = name(&r.name)?;
        if r.confirm != r.name {
            return Err(invalid(format!(
                "confirm must repeat the tenant's name ({name}): shredding cannot be undone"
            )));
        }
        Ok(ShredTenant { name })
    }
}

impl TryFrom<&pb::RequestGrantRequest> for RequestGrant {
    type Error = BrokerError;
    fn try_from(r: &pb::RequestGrantRequest) -> Result<Self> {
        Ok(RequestGrant {
            tenant: named_field("tenant", &r.tenant)?,
            reason: Reason::parse(&r.reason).map_err(invalid)?,
            ticket: Ticket::parse(&r.ticket).map_err(invalid)?,
            duration_secs: r.duration_seconds,
            reason_code: crate::domain::ReasonCode::parse(&r.reason_code).map_err(invalid)?,
            break_glass: r.break_glass,
            scopes: crate::domain::Scopes::parse(&r.scopes).map_err(|e| invalid(e.to_string()))?,
            starts_at: match r.starts_at_ms {
                0 => None,
                ms if ms < 0 => {
                    return Err(invalid(format!(
                        "starts_at_ms must be a time in Unix milliseconds (or 0 for now), not {ms}"
                    )));
                }
                ms => Some(crate::clock::Timestamp(ms)),
            },
        })
    }
}

impl TryFrom<&pb::ReviewGrantRequest> for ReviewGrant {
    type Error = BrokerError;
    fn try_from(r: &pb::ReviewGrantRequest) -> Result<Self> {
        Ok(ReviewGrant {
            grant: grant_id(&r.grant_id)?,
            verdict: crate::domain::ReviewVerdict::parse(&r.verdict).map_err(invalid)?,
            note: crate::domain::ReviewNote::parse(&r.note).map_err(invalid)?,
        })
    }
}

impl TryFrom<&pb::SetTenantBreakGlassRequest> for SetTenantBreakGlass {
    type Error = BrokerError;
    fn try_from(r: &pb::SetTenantBreakGlassRequest) -> Result<Self> {
        Ok(SetTenantBreakGlass {
            tenant: named_field("tenant", &r.tenant)?,
            allow_support: r.allow_support,
        })
    }
}

impl TryFrom<&pb::DecideGrantRequest> for Decide {
    type Error = BrokerError;
    fn try_from(r: &pb::DecideGrantRequest) -> Result<Self> {
        Ok(Decide {
            grant: grant_id(&r.grant_id)?,
            note: Note::parse(&r.note).map_err(invalid)?,
        })
    }
}

impl TryFrom<&pb::RevokeGrantRequest> for Decide {
    type Error = BrokerError;
    fn try_from(r: &pb::RevokeGrantRequest) -> Result<Self> {
        Ok(Decide {
            grant: grant_id(&r.grant_id)?,
            note: Note::parse(&r.note).map_err(invalid)?,
        })
    }
}

impl TryFrom<&pb::ListGrantsRequest> for ListGrants {
    type Error = BrokerError;
    fn try_from(r: &pb::ListGrantsRequest) -> Result<Self> {
        Ok(ListGrants {
            tenant: filter("tenant", &r.tenant)?,
            holder: filter("holder", &r.holder)?,
            live_only: r.live_only,
            awaiting_me: r.awaiting_me,
            awaiting_review: if r.awaiting_review && r.awaiting_me {
                return Err(invalid(
                    "awaiting_review and awaiting_me are two different queues: ask for one",
                ));
            } else {
                r.awaiting_review
            },
        })
    }
}

impl TryFrom<&pb::RecordAccessRequest> for RecordAccess {
    type Error = BrokerError;
    fn try_from(r: &pb::RecordAccessRequest) -> Result<Self> {
        Ok(RecordAccess {
            grant: grant_id(&r.grant_id)?,
            action: AccessAction::parse(&r.action).map_err(invalid)?,
            resource: Resource::parse(&r.resource).map_err(invalid)?,
            report_id: ReportId::parse(&r.report_id).map_err(invalid)?,
            accessed_at_ms: r.accessed_at_ms,
        })
    }
}

impl TryFrom<&pb::IssueGrantCertificateRequest> for IssueCertificate {
    type Error = BrokerError;
    fn try_from(r: &pb::IssueGrantCertificateRequest) -> Result<Self> {
        let grant = grant_id(&r.grant_id)?;
        if r.csr_pem.trim().is_empty() {
            return Err(invalid(
                "csr_pem is empty: send a PEM certificate signing request made with your own key",
            ));
        }
        if r.csr_pem.len() > MAX_CSR_BYTES {
            return Err(invalid(format!(
                "csr_pem is {} bytes; a certificate signing request has at most {MAX_CSR_BYTES}",
                r.csr_pem.len()
            )));
        }
        Ok(IssueCertificate {
            grant,
            csr_pem: r.csr_pem.clone(),
        })
    }
}

impl TryFrom<&pb::GetTenantEntriesRequest> for TenantEntries {
    type Error = BrokerError;
    fn try_from(r: &pb::GetTenantEntriesRequest) -> Result<Self> {
        let tenant = match r.tenant.trim() {
            "" => None,
            t => Some(named_field("tenant", t)?),
        };
        Ok(TenantEntries {
            tenant,
            from: r.from_seq,
            limit: r.limit,
            tree_size: r.tree_size,
        })
    }
}

/// Report periods start after 2000 and end before 2200.
const REPORT_EPOCH: std::ops::Range<i64> = 946_684_800_000..7_258_118_400_000;

impl TryFrom<&pb::RecordReportRequest> for RecordReport {
    type Error = BrokerError;
    fn try_from(r: &pb::RecordReportRequest) -> Result<Self> {
        let tenant = match r.tenant.trim() {
            "" => None,
            t => Some(named_field("tenant", t)?),
        };
        for (field, ms) in [("from_ms", r.from_ms), ("to_ms", r.to_ms)] {
            if !REPORT_EPOCH.contains(&ms) {
                return Err(invalid(format!(
                    "{field} {ms} is not a time between 2000 and 2200 (milliseconds since the Unix epoch)"
                )));
            }
        }
        if r.from_ms >= r.to_ms {
            return Err(invalid(format!(
                "the period is empty: from_ms {} must come before to_ms {}",
                r.from_ms, r.to_ms
            )));
        }
        Ok(RecordReport {
            tenant,
            from: Timestamp(r.from_ms),
            to: Timestamp(r.to_ms),
        })
    }
}

impl TryFrom<&pb::ListAlertsRequest> for ListAlerts {
    type Error = BrokerError;
    fn try_from(r: &pb::ListAlertsRequest) -> Result<Self> {
        let min_severity = match r.min_severity.trim() {
            "" => None,
            s => Some(crate::domain::Severity::parse(s).ok_or_else(|| {
                invalid(format!(
                    "severity {s:?} is not one of info, warning, critical"
                ))
            })?),
        };
        let rule = match r.rule.trim() {
            "" => None,
            s => Some(crate::domain::Rule::parse(s).ok_or_else(|| {
                let all: Vec<&str> = crate::domain::Rule::ALL
                    .iter()
                    .map(|r| r.as_str())
                    .collect();
                invalid(format!("rule {s:?} is not one of {}", all.join(", ")))
            })?),
        };
        Ok(ListAlerts {
            include_resolved: r.include_resolved,
            min_severity,
            rule,
            tenant: filter("tenant", &r.tenant)?,
        })
    }
}

impl TryFrom<&pb::DecideAlertRequest> for DecideAlert {
    type Error = BrokerError;
    fn try_from(r: &pb::DecideAlertRequest) -> Result<Self> {
        let id = crate::domain::AlertId::parse(r.id.trim()).ok_or_else(|| {
            invalid(format!(
                "alert id {:?} is malformed: it looks like a- followed by 24 hex digits",
                truncate(&r.id, 40)
            ))
        })?;
        let note = Note::parse(&r.note).map_err(invalid)?;
        if note.to_string().trim().is_empty() {
            return Err(invalid("say what was done about the alert (--note)"));
        }
        Ok(DecideAlert { id, note })
    }
}

impl TryFrom<&pb::PairScreenRequest> for PairScreen {
    type Error = BrokerError;
    fn try_from(r: &pb::PairScreenRequest) -> Result<Self> {
        use crate::domain::screen::{MAX_PAIRING_TTL_SECS, PAIRING_TTL_SECS};
        let ttl_secs = match r.ttl_secs {
            0 => PAIRING_TTL_SECS,
            s if s > MAX_PAIRING_TTL_SECS as u64 => {
                return Err(invalid(format!(
                    "a pairing code lasts at most {MAX_PAIRING_TTL_SECS} s (asked: {s} s)"
                )));
            }
            s => s as i64,
        };
        Ok(PairScreen {
            name: named_field("name", r.name.trim())?,
            ttl_secs,
        })
    }
}

impl TryFrom<&pb::RevokeScreenRequest> for RevokeScreen {
    type Error = BrokerError;
    fn try_from(r: &pb::RevokeScreenRequest) -> Result<Self> {
        Ok(RevokeScreen {
            name: named_field("name", r.name.trim())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message<T: std::fmt::Debug>(r: Result<T>) -> String {
        match r {
            Err(BrokerError::InvalidArgument(m)) => m,
            other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
        }
    }

    fn request(tenant: &str, reason: &str, ticket: &str) -> pb::RequestGrantRequest {
        pb::RequestGrantRequest {
            tenant: tenant.into(),
            reason: reason.into(),
            ticket: ticket.into(),
            duration_seconds: 0,
            ..Default::default()
        }
    }

    #[test]
    fn reason_codes_and_justification_rules_are_parsed() {
        let coded = |code: &str| pb::RequestGrantRequest {
            reason_code: code.into(),
            ..request("acme", "r", "")
        };
        assert_eq!(
            RequestGrant::try_from(&coded(" incident "))
                .unwrap()
                .reason_code,
            Some(crate::domain::ReasonCode::Incident)
        );
        assert_eq!(
            RequestGrant::try_from(&coded("")).unwrap().reason_code,
            None
        );
        assert!(message(RequestGrant::try_from(&coded("other"))).starts_with("reason_code"));
        let set = |p: Option<&str>, r: Option<bool>| pb::SetTenantJustificationRequest {
            tenant: "acme".into(),
            ticket_pattern: p.map(str::to_owned),
            require_reason_code: r,
        };
        let cleared = SetTenantJustification::try_from(&set(Some(""), None)).unwrap();
        assert_eq!(cleared.ticket_pattern, Some(None));
        let kept = SetTenantJustification::try_from(&set(None, Some(true))).unwrap();
        assert_eq!(
            (kept.ticket_pattern, kept.require_reason_code),
            (None, Some(true))
        );
        assert!(
            message(SetTenantJustification::try_from(&set(None, None)))
                .starts_with("nothing to set")
        );
        assert!(
            message(SetTenantJustification::try_from(&set(Some("("), None)))
                .starts_with("ticket_pattern")
        );
    }

    #[test]
    fn grant_requests_are_parsed_field_by_field() {
        let ok = RequestGrant::try_from(&request("acme", " INC-1 ", "T-1")).unwrap();
        assert_eq!(ok.tenant.as_str(), "acme");
        assert_eq!(ok.reason.as_str(), "INC-1");
        assert_eq!(ok.ticket.as_str(), "T-1");
        assert!(
            message(RequestGrant::try_from(&request("Acme", "r", "")))
                .starts_with("tenant: invalid name")
        );
        assert_eq!(
            message(RequestGrant::try_from(&request("acme", "  ", ""))),
            "reason is required and must not be blank"
        );
        assert_eq!(
            message(RequestGrant::try_from(&request(
                "acme",
                &"r".repeat(501),
                ""
            ))),
            "reason is longer than 500 characters"
        );
        assert_eq!(
            message(RequestGrant::try_from(&request(
                "acme",
                "r",
                &"t".repeat(129)
            ))),
            "ticket is longer than 128 characters"
        );
        assert!(
            message(RequestGrant::try_from(&request("acme", "a\u{202e}b", ""))).contains("U+202E")
        );
    }

    #[test]
    fn grant_ids_are_checked_with_a_hint() {
        let id = GrantId::random();
        assert_eq!(grant_id(&format!(" {id} ")).unwrap(), id);
        let m = message(grant_id("g-nope"));
        assert_eq!(
            m,
            "grant id \"g-nope\" is malformed: it looks like g- followed by 24 hex digits"
        );
        // A long peer string is not echoed whole.
        assert!(message(grant_id(&"x".repeat(1000))).len() < 120);
    }

    #[test]
    fn staff_requests_need_a_known_role_and_a_name() {
        let r = |name: &str, role: i32| pb::AddStaffRequest {
            name: name.into(),
            role,
            country: String::new(),
            organisation: String::new(),
        };
        assert_eq!(
            AddStaff::try_from(&r("alice", pb::Role::Root as i32))
                .unwrap()
                .role,
            Role::Root
        );
        assert_eq!(
            message(AddStaff::try_from(&r("alice", 99))),
            "unknown role value 99"
        );
        assert!(message(AddStaff::try_from(&r("alice", 0))).starts_with("role is required"));
        assert!(
            message(AddStaff::try_from(&r("", pb::Role::Support as i32)))
                .starts_with("invalid name")
        );
    }

    #[test]
    fn tenant_updates_must_change_something() {
        let r = pb::UpdateTenantRequest {
            name: "acme".into(),
            approval: 0,
            require_ticket: None,
            require_declaration: None,
            ..Default::default()
        };
        assert!(message(UpdateTenant::try_from(&r)).starts_with("nothing to update"));
        let add = pb::AddTenantRequest {
            name: "acme".into(),
            approval: 7,
            require_ticket: false,
            require_declaration: false,
            ..Default::default()
        };
        assert_eq!(
            message(AddTenant::try_from(&add)),
            "unknown approval policy value 7"
        );
    }

    #[test]
    fn access_reports_are_parsed() {
        let r = |action: &str, resource: &str, report_id: &str| pb::RecordAccessRequest {
            grant_id: GrantId::random().to_string(),
            action: action.into(),
            resource: resource.into(),
            accessed_at_ms: 0,
            report_id: report_id.into(),
        };
        let ok = RecordAccess::try_from(&r("ssh", "web-1", "r-1")).unwrap();
        assert_eq!(ok.report_id.unwrap().as_str(), "r-1");
        assert!(message(RecordAccess::try_from(&r("", "", ""))).starts_with("action is required"));
        assert!(
            message(RecordAccess::try_from(&r("ssh", "", "a b"))).starts_with("report_id must be")
        );
        assert!(message(RecordAccess::try_from(&r("ssh", "a\u{0}", ""))).contains("control"));
    }

    #[test]
    fn certificate_requests_are_bounded() {
        let r = |csr: &str| pb::IssueGrantCertificateRequest {
            grant_id: GrantId::random().to_string(),
            csr_pem: csr.into(),
        };
        assert!(message(IssueCertificate::try_from(&r(" "))).starts_with("csr_pem is empty"));
        assert!(
            message(IssueCertificate::try_from(&r(
                &"x".repeat(MAX_CSR_BYTES + 1)
            )))
            .contains("at most")
        );
    }

    #[test]
    fn list_filters_are_names_or_nothing() {
        let r = |tenant: &str, holder: &str| pb::ListGrantsRequest {
            tenant: tenant.into(),
            holder: holder.into(),
            live_only: false,
            ..Default::default()
        };
        assert_eq!(
            ListGrants::try_from(&r("", "")).unwrap(),
            ListGrants::default()
        );
        assert!(message(ListGrants::try_from(&r("x y", ""))).starts_with("tenant filter:"));
        assert!(message(ListGrants::try_from(&r("", "A"))).starts_with("holder filter:"));
    }
}
