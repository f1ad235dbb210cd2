//! One real call per RPC for the policy matrix, with arguments good
//! enough to pass admission (an admitted call may still fail on them with
//! NOT_FOUND, INVALID_ARGUMENT and the like, never PERMISSION_DENIED).

use daypass::{
    client::Clients,
    pb::{self, ApprovalPolicy},
    policy::Action::{self, *},
};
use tonic::Status;

use crate::common::{access_request, grant_request, validate_request};

/// A grant id that is well-formed but exists nowhere: object-level checks
/// answer NOT_FOUND for it, so only admission can say PERMISSION_DENIED.
const UNKNOWN_GRANT: &str = "g-000000000000000000000000";
/// Likewise for alerts.
const UNKNOWN_ALERT: &str = "a-000000000000000000000000";
/// Likewise for incidents.
const UNKNOWN_INCIDENT: &str = "i-000000000000000000000000";

/// For calls whose answer does not matter, only whether there was one.
fn done<T>(_: T) -> String {
    String::new()
}

/// Makes one real `action` call. On success returns a short description of
/// the answer (for `WhoAmI`, the actor the server saw). `fresh` is unique
/// per cell, for names that must not exist yet.
pub async fn call(c: &mut Clients, action: Action, fresh: &str) -> Result<String, Status> {
    match action {
        AddStaff => c
            .staff
            .add_staff(pb::AddStaffRequest {
                name: format!("new-{fresh}"),
                role: pb::Role::Support as i32,
                country: String::new(),
                organisation: String::new(),
            })
            .await
            .map(done),
        OffboardStaff => c
            .staff
            .offboard_staff(pb::OffboardStaffRequest {
                name: "no-such-person".into(),
            })
            .await
            .map(done),
        ListStaff => c.staff.list_staff(pb::ListStaffRequest {}).await.map(done),
        WhoAmI => c.staff.who_am_i(pb::WhoAmIRequest {}).await.map(|r| {
            let r = r.into_inner();
            format!("{}/{}", r.kind, r.name)
        }),
        AddTenant => c
            .tenants
            .add_tenant(pb::AddTenantRequest {
                name: format!("t-{fresh}"),
                approval: ApprovalPolicy::Auto as i32,
                require_ticket: false,
                require_declaration: false,
                ..Default::default()
            })
            .await
            .map(done),
        UpdateTenant => c
            .tenants
            .update_tenant(pb::UpdateTenantRequest {
                name: "acme".into(),
                approval: ApprovalPolicy::Unspecified as i32,
                require_ticket: None,
                require_declaration: None,
                ..Default::default()
            })
            .await
            .map(done),
        ListTenants => c
            .tenants
            .list_tenants(pb::ListTenantsRequest {})
            .await
            .map(done),
        RequestGrant => c
            .grants
            .request_grant(grant_request("acme", "policy matrix", 60))
            .await
            .map(done),
        ApproveGrant => c
            .grants
            .approve_grant(pb::DecideGrantRequest {
                grant_id: UNKNOWN_GRANT.into(),
                note: String::new(),
            })
            .await
            .map(done),
        DenyGrant => c
            .grants
            .deny_grant(pb::DecideGrantRequest {
                grant_id: UNKNOWN_GRANT.into(),
                note: String::new(),
            })
            .await
            .map(done),
        ListGrants => c
            .grants
            .list_grants(pb::ListGrantsRequest::default())
            .await
            .map(done),
        GetGrant => c
            .grants
            .get_grant(pb::GetGrantRequest {
                grant_id: UNKNOWN_GRANT.into(),
            })
            .await
            .map(done),
        RevokeGrant => c
            .grants
            .revoke_grant(pb::RevokeGrantRequest {
                grant_id: UNKNOWN_GRANT.into(),
                note: String::new(),
            })
            .await
            .map(done),
        ReleaseGrant => c
            .grants
            .release_grant(pb::ReleaseGrantRequest {
                grant_id: UNKNOWN_GRANT.into(),
            })
            .await
            .map(done),
        ValidateGrant => c
            .grants
            .validate_grant(validate_request(UNKNOWN_GRANT))
            .await
            .map(done),
        RecordAccess => c
            .grants
            .record_access(access_request(UNKNOWN_GRANT, "ssh", ""))
            .await
            .map(done),
        GetCheckpoint => c
            .audit
            .get_checkpoint(pb::GetCheckpointRequest { tree_size: 0 })
            .await
            .map(done),
        GetEntries => c
            .audit
            .get_entries(pb::GetEntriesRequest { start: 0, end: 1 })
            .await
            .map(done),
        GetInclusionProof => c
            .audit
            .get_inclusion_proof(pb::GetInclusionProofRequest {
                seq: 0,
                tree_size: 0,
            })
            .await
            .map(done),
        GetConsistencyProof => c
            .audit
            .get_consistency_proof(pb::GetConsistencyProofRequest {
                old_size: 1,
                new_size: 0,
            })
            .await
            .map(done),
        // Empty tenant: a tenant's own; staff must name one (INVALID_ARGUMENT).
        GetTenantEntries => c
            .audit
            .get_tenant_entries(pb::GetTenantEntriesRequest::default())
            .await
            .map(done),
        // Empty tenant: a tenant's own; staff must name one (INVALID_ARGUMENT).
        RecordReport => c
            .audit
            .record_report(pb::RecordReportRequest {
                tenant: String::new(),
                from_ms: 1_780_000_000_000,
                to_ms: 1_790_000_000_000,
            })
            .await
            .map(done),
        StreamEntries => {
            let mut stream = c
                .audit
                .stream_entries(pb::StreamEntriesRequest {
                    follow: false,
                    ..Default::default()
                })
                .await?
                .into_inner();
            let mut n = 0;
            while stream.message().await?.is_some() {
                n += 1;
            }
            Ok(format!("{n} entries"))
        }
        VerifyChain => c
            .audit
            .verify_chain(pb::VerifyChainRequest {})
            .await
            .map(done),
        IssueGrantCertificate => c
            .grants
            .issue_grant_certificate(pb::IssueGrantCertificateRequest {
                grant_id: UNKNOWN_GRANT.into(),
                csr_pem: "-----BEGIN CERTIFICATE REQUEST-----".into(),
            })
            .await
            .map(done),
        GetVerificationKeys => c
            .gate
            .get_verification_keys(pb::GetVerificationKeysRequest {})
            .await
            .map(done),
        GetRevocations => c
            .gate
            .get_revocations(pb::GetRevocationsRequest {})
            .await
            .map(done),
        WatchRevocations => {
            let mut stream = c
                .gate
                .watch_revocations(pb::WatchRevocationsRequest {})
                .await?
                .into_inner();
            // The first list comes at once; the stream then stays open.
            let first = stream.message().await?;
            Ok(format!("first list: {}", first.is_some()))
        }
        ListAlerts => c
            .alerts
            .list_alerts(pb::ListAlertsRequest::default())
            .await
            .map(done),
        AcknowledgeAlert => c
            .alerts
            .acknowledge_alert(pb::DecideAlertRequest {
                id: UNKNOWN_ALERT.into(),
                note: "looking".into(),
            })
            .await
            .map(done),
        ResolveAlert => c
            .alerts
            .resolve_alert(pb::DecideAlertRequest {
                id: UNKNOWN_ALERT.into(),
                note: "done".into(),
            })
            .await
            .map(done),
        ListDeadLetters => c
            .notify
            .list_dead_letters(pb::ListDeadLettersRequest::default())
            .await
            .map(done),
        // No such hook: NOT_FOUND once admitted.
        RetryDeadLetter => c
            .notify
            .retry_dead_letter(pb::RetryDeadLetterRequest {
                hook: "none".into(),
                seq: 0,
            })
            .await
            .map(done),
        PairScreen => c
            .screens
            .pair_screen(pb::PairScreenRequest {
                name: format!("wall-{fresh}"),
                ttl_secs: 0,
            })
            .await
            .map(done),
        // No such screen: NOT_FOUND once admitted.
        RevokeScreen => c
            .screens
            .revoke_screen(pb::RevokeScreenRequest {
                name: "no-such-screen".into(),
            })
            .await
            .map(done),
        ListScreens => c
            .screens
            .list_screens(pb::ListScreensRequest {})
            .await
            .map(done),
        // No such tenant: NOT_FOUND once admitted (terminating a real one
        // would end the matrix's grants).
        TerminateTenant => c
            .tenants
            .terminate_tenant(pb::TerminateTenantRequest {
                name: "no-such-tenant".into(),
            })
            .await
            .map(done),
        ShredTenant => c
            .tenants
            .shred_tenant(pb::ShredTenantRequest {
                name: "no-such-tenant".into(),
                confirm: "no-such-tenant".into(),
            })
            .await
            .map(done),
        // An unknown tenant: INVALID_ARGUMENT once admitted.
        RecordIncident => c
            .incidents
            .record_incident(pb::RecordIncidentRequest {
                nature: "policy matrix".into(),
                data_subject_categories: vec!["customers".into()],
                personal_data_categories: vec!["e-mail addresses".into()],
                approx_data_subjects: 1,
                approx_records: 1,
                contact_name: "Dana DPO".into(),
                contact_email: "dpo@example.com".into(),
                likely_consequences: "none".into(),
                measures: "none".into(),
                became_known_at_ms: 1,
                tenants: vec!["no-such-tenant".into()],
                evidence_seqs: vec![],
            })
            .await
            .map(done),
        UpdateIncident => c
            .incidents
            .update_incident(pb::UpdateIncidentRequest {
                id: UNKNOWN_INCIDENT.into(),
                facts: "more".into(),
                ..Default::default()
            })
            .await
            .map(done),
        RecordNotification => c
            .incidents
            .record_notification(pb::RecordNotificationRequest {
                id: UNKNOWN_INCIDENT.into(),
                tenant: "acme".into(),
                channel: "phone".into(),
                ..Default::default()
            })
            .await
            .map(done),
        GetIncident => c
            .incidents
            .get_incident(pb::GetIncidentRequest {
                id: UNKNOWN_INCIDENT.into(),
            })
            .await
            .map(done),
        ListIncidents => c
            .incidents
            .list_incidents(pb::ListIncidentsRequest::default())
            .await
            .map(done),
        NotificationDocument => c
            .incidents
            .notification_document(pb::NotificationDocumentRequest {
                id: UNKNOWN_INCIDENT.into(),
                tenant: "acme".into(),
                format: "json".into(),
            })
            .await
            .map(done),
        Documentation => c
            .incidents
            .documentation(pb::DocumentationRequest {
                id: UNKNOWN_INCIDENT.into(),
                format: "html".into(),
            })
            .await
            .map(done),
        // Nobody by that name: NOT_FOUND once admitted.
        RecordDeclaration => c
            .staff
            .record_declaration(pb::RecordDeclarationRequest {
                name: "nobody-here".into(),
                version: "2026-1".into(),
                signed_on: "2026-01-05".into(),
                document_sha256: "ab".repeat(32),
            })
            .await
            .map(done),
        // Nobody by that name (and so not the caller): NOT_FOUND once admitted.
        // An unknown grant: NOT_FOUND once admitted.
        ReviewGrant => c
            .grants
            .review_grant(pb::ReviewGrantRequest {
                grant_id: UNKNOWN_GRANT.into(),
                verdict: "justified".into(),
                note: "matrix".into(),
            })
            .await
            .map(done),
        SetTenantBreakGlass => c
            .tenants
            .set_tenant_break_glass(pb::SetTenantBreakGlassRequest {
                tenant: "no-such-tenant".into(),
                allow_support: true,
            })
            .await
            .map(done),
        RecertifyStaff => c
            .staff
            .recertify_staff(pb::RecertifyStaffRequest {
                name: "nobody-here".into(),
            })
            .await
            .map(done),
        // HTTPS, not gRPC: the matrix makes these with `tile_call`.
        ReadTiles | ReadEntryBundles => Err(Status::unimplemented(
            "the tile read API is HTTPS: see tile_call in tests/policy_matrix.rs",
        )),
        // Nobody by that name: NOT_FOUND once admitted.
        LocateStaff => c
            .staff
            .locate_staff(pb::LocateStaffRequest {
                name: "nobody-here".into(),
                country: "DE".into(),
                organisation: "company".into(),
            })
            .await
            .map(done),
        SetTenantCountries => c
            .tenants
            .set_tenant_countries(pb::SetTenantCountriesRequest {
                tenant: "no-such-tenant".into(),
                countries: vec!["DE".into()],
            })
            .await
            .map(done),
        SetTenantJustification => c
            .tenants
            .set_tenant_justification(pb::SetTenantJustificationRequest {
                tenant: "no-such-tenant".into(),
                ticket_pattern: Some("^INC-[0-9]+$".into()),
                require_reason_code: None,
            })
            .await
            .map(done),
        // Another tenant's name, for a tenant: NOT_FOUND as well.
        ObjectToSubprocessor => c
            .tenants
            .object_to_subprocessor(pb::ObjectToSubprocessorRequest {
                tenant: "no-such-tenant".into(),
                subprocessor: "no-such-sp".into(),
            })
            .await
            .map(done),
        AddSubprocessor => c
            .tenants
            .add_subprocessor(pb::AddSubprocessorRequest {
                name: format!("sp-{fresh}"),
                country: "DE".into(),
                purpose: "matrix".into(),
            })
            .await
            .map(done),
        ListSubprocessors => c
            .tenants
            .list_subprocessors(pb::ListSubprocessorsRequest {})
            .await
            .map(done),
        // No record: INVALID_ARGUMENT once admitted.
        SetProcessingRecord => c
            .processing
            .set_processing_record(pb::SetProcessingRecordRequest {
                tenant: "acme".into(),
                record: None,
            })
            .await
            .map(done),
        GetProcessingRecord => c
            .processing
            .get_processing_record(pb::GetProcessingRecordRequest {
                tenant: "acme".into(),
                version: 0,
            })
            .await
            .map(done),
        ListProcessingRecords => c
            .processing
            .list_processing_records(pb::ListProcessingRecordsRequest {
                tenant: "acme".into(),
            })
            .await
            .map(done),
        ProcessingRegisterDocument => c
            .processing
            .processing_register_document(pb::ProcessingRegisterDocumentRequest {
                tenant: "acme".into(),
                all: false,
                format: "json".into(),
                version: 0,
            })
            .await
            .map(done),
        // Nobody by that name: NOT_FOUND once admitted.
        SetApproverGroup => c
            .staff
            .set_approver_group(pb::SetApproverGroupRequest {
                name: "matrix-group".into(),
                members: vec!["nobody-here".into()],
            })
            .await
            .map(done),
        // No such group: NOT_FOUND once admitted.
        RemoveApproverGroup => c
            .staff
            .remove_approver_group(pb::RemoveApproverGroupRequest {
                name: "matrix-group".into(),
            })
            .await
            .map(done),
        ListApproverGroups => c
            .staff
            .list_approver_groups(pb::ListApproverGroupsRequest {})
            .await
            .map(done),
        SetTenantAccessLimit => c
            .tenants
            .set_tenant_access_limit(pb::SetTenantAccessLimitRequest {
                tenant: "no-such-tenant".into(),
                limit_seconds: 24 * 3600,
                window_seconds: 7 * 24 * 3600,
            })
            .await
            .map(done),
        Backup => {
            let mut stream = c.audit.backup(pb::BackupRequest {}).await?.into_inner();
            let mut bytes = 0;
            while let Some(chunk) = stream.message().await? {
                bytes += chunk.data.len();
            }
            Ok(format!("{bytes} bytes"))
        }
    }
}
