//! Every caller × every RPC against a real server: allowed calls pass
//! admission (they may still fail on their dummy arguments, never with
//! PERMISSION_DENIED), refused calls get PERMISSION_DENIED, and every
//! refusal is in the log as a `call.refused` entry naming caller and call.

mod common;

use common::*;
use daypass::{
    client::Clients,
    identity::PrincipalKind,
    pb::{self, ApprovalPolicy, Role},
    policy::Action,
};
use tonic::{Code, Status};

const UNKNOWN_GRANT: &str = "g-000000000000000000000000";

/// The specification, written out: what each caller may call.
fn allowed(caller: &str) -> &'static [&'static str] {
    match caller {
        "support" | "root" => &[
            "WhoAmI",
            "ListTenants",
            "RequestGrant",
            "ApproveGrant",
            "DenyGrant",
            "ListGrants",
            "GetGrant",
            "ReleaseGrant",
        ],
        "admin" => &[
            "WhoAmI",
            "AddStaff",
            "OffboardStaff",
            "ListStaff",
            "AddTenant",
            "UpdateTenant",
            "ListTenants",
            "ApproveGrant",
            "DenyGrant",
            "ListGrants",
            "GetGrant",
            "RevokeGrant",
            "StreamEntries",
            "VerifyChain",
        ],
        "auditor" => &[
            "WhoAmI",
            "ListStaff",
            "ListTenants",
            "ListGrants",
            "GetGrant",
            "StreamEntries",
            "VerifyChain",
        ],
        "partnerships" | "data-entry" | "administration" => &["WhoAmI"],
        "tenant" => &[
            "WhoAmI",
            "ApproveGrant",
            "DenyGrant",
            "ListGrants",
            "GetGrant",
            "RevokeGrant",
            "ValidateGrant",
            "RecordAccess",
        ],
        "offboarded" | "unenrolled" => &[],
        other => panic!("no row for {other}"),
    }
}

/// Makes one real call of `action`; Ok(()) when the server answered OK.
async fn call(c: &mut Clients, action: Action, unique: &str) -> Result<(), Status> {
    let grant_id = || UNKNOWN_GRANT.to_string();
    match action {
        Action::AddStaff => c
            .staff
            .add_staff(pb::AddStaffRequest {
                name: format!("new-{unique}"),
                role: Role::Support as i32,
            })
            .await
            .map(drop),
        Action::OffboardStaff => c
            .staff
            .offboard_staff(pb::OffboardStaffRequest {
                name: "no-such-person".into(),
            })
            .await
            .map(drop),
        Action::ListStaff => c.staff.list_staff(pb::ListStaffRequest {}).await.map(drop),
        Action::WhoAmI => c.staff.who_am_i(pb::WhoAmIRequest {}).await.map(drop),
        Action::AddTenant => c
            .tenants
            .add_tenant(pb::AddTenantRequest {
                name: format!("t-{unique}"),
                approval: ApprovalPolicy::Auto as i32,
                require_ticket: false,
            })
            .await
            .map(drop),
        Action::UpdateTenant => c
            .tenants
            .update_tenant(pb::UpdateTenantRequest {
                name: "acme".into(),
                approval: 0,
                require_ticket: None,
            })
            .await
            .map(drop),
        Action::ListTenants => c
            .tenants
            .list_tenants(pb::ListTenantsRequest {})
            .await
            .map(drop),
        Action::RequestGrant => c
            .grants
            .request_grant(pb::RequestGrantRequest {
                tenant: "acme".into(),
                reason: "matrix".into(),
                ticket: String::new(),
                duration_seconds: 60,
            })
            .await
            .map(drop),
        Action::ApproveGrant => c
            .grants
            .approve_grant(pb::DecideGrantRequest {
                grant_id: grant_id(),
                note: String::new(),
            })
            .await
            .map(drop),
        Action::DenyGrant => c
            .grants
            .deny_grant(pb::DecideGrantRequest {
                grant_id: grant_id(),
                note: String::new(),
            })
            .await
            .map(drop),
        Action::ListGrants => c
            .grants
            .list_grants(pb::ListGrantsRequest::default())
            .await
            .map(drop),
        Action::GetGrant => c
            .grants
            .get_grant(pb::GetGrantRequest {
                grant_id: grant_id(),
            })
            .await
            .map(drop),
        Action::RevokeGrant => c
            .grants
            .revoke_grant(pb::RevokeGrantRequest {
                grant_id: grant_id(),
                note: String::new(),
            })
            .await
            .map(drop),
        Action::ReleaseGrant => c
            .grants
            .release_grant(pb::ReleaseGrantRequest {
                grant_id: grant_id(),
            })
            .await
            .map(drop),
        Action::ValidateGrant => c
            .grants
            .validate_grant(pb::ValidateGrantRequest {
                subject: Some(pb::validate_grant_request::Subject::GrantId(grant_id())),
            })
            .await
            .map(drop),
        Action::RecordAccess => c
            .grants
            .record_access(pb::RecordAccessRequest {
                grant_id: grant_id(),
                action: "ssh".into(),
                resource: String::new(),
            })
            .await
            .map(drop),
        Action::StreamEntries => {
            let mut s = c
                .audit
                .stream_entries(pb::StreamEntriesRequest::default())
                .await?
                .into_inner();
            while s.message().await?.is_some() {}
            Ok(())
        }
        Action::VerifyChain => c
            .audit
            .verify_chain(pb::VerifyChainRequest {})
            .await
            .map(drop),
    }
}

#[tokio::test]
async fn every_caller_times_every_rpc() {
    let s = TestServer::start().await;
    s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    // (row label, log actor, clients)
    let mut callers: Vec<(&str, String, Clients)> = vec![
        (
            "support",
            "staff/sam".into(),
            s.enrol("sam", Role::Support).await,
        ),
        (
            "root",
            "staff/rory".into(),
            s.enrol("rory", Role::Root).await,
        ),
        ("admin", format!("staff/{ADMIN}"), s.admin().await),
        (
            "auditor",
            "auditor/eve".into(),
            s.enrol("eve", Role::Auditor).await,
        ),
        (
            "partnerships",
            "staff/pat".into(),
            s.enrol("pat", Role::Partnerships).await,
        ),
        (
            "data-entry",
            "staff/dan".into(),
            s.enrol("dan", Role::DataEntry).await,
        ),
        (
            "administration",
            "staff/ann".into(),
            s.enrol("ann", Role::Administration).await,
        ),
        ("tenant", "tenant/acme".into(), s.tenant("acme").await),
    ];
    let gone = s.enrol("gone", Role::Support).await;
    s.admin()
        .await
        .staff
        .offboard_staff(pb::OffboardStaffRequest {
            name: "gone".into(),
        })
        .await
        .expect("offboard");
    callers.push(("offboarded", "staff/gone".into(), gone));
    callers.push((
        "unenrolled",
        "staff/nobody".into(),
        s.client(PrincipalKind::Staff, "nobody").await,
    ));
    // A certificate of the wrong kind for the enrolled role is refused too.
    callers.push(("unenrolled", "staff/eve".into(), s.staff("eve").await));

    let mut failures = Vec::new();
    let mut refused = Vec::new();
    let mut matrix = String::new();
    for (i, (label, actor, clients)) in callers.iter_mut().enumerate() {
        matrix.push_str(&format!("{label:>15} "));
        for action in Action::ALL {
            let expect_allowed = allowed(label).contains(&action.as_str());
            let result = call(clients, action, &format!("{i}-{}", action.as_str())).await;
            let denied = matches!(&result, Err(st) if st.code() == Code::PermissionDenied);
            matrix.push_str(if denied { "-" } else { "+" });
            if expect_allowed == denied {
                failures.push(format!(
                    "{label} ({actor}) {}: expected {}, got {:?}",
                    action.as_str(),
                    if expect_allowed {
                        "allowed"
                    } else {
                        "PERMISSION_DENIED"
                    },
                    result.map_err(|s| (s.code(), s.message().to_owned()))
                ));
            }
            if denied {
                refused.push((actor.clone(), action.as_str()));
            }
        }
        matrix.push('\n');
    }
    assert!(
        failures.is_empty(),
        "matrix:\n{matrix}\n{}",
        failures.join("\n")
    );
    let cases = callers.len() * Action::ALL.len();
    assert_eq!(cases, 11 * 18);

    // Every refusal is logged, with its caller and call.
    let entries = s.entries().await;
    for (actor, call) in &refused {
        let n = entries
            .iter()
            .filter(|e| {
                e.entry.kind == "call.refused"
                    && e.entry.actor == *actor
                    && e.entry.details.get("call").map(String::as_str) == Some(*call)
                    && e.entry.details.get("code").map(String::as_str) == Some("permission-denied")
            })
            .count();
        assert_eq!(n, 1, "refusal of {call} for {actor} logged once");
    }
    let refusals_logged = entries
        .iter()
        .filter(|e| {
            e.entry.kind == "call.refused"
                && e.entry.details.get("code").map(String::as_str) == Some("permission-denied")
        })
        .count();
    assert_eq!(
        refusals_logged,
        refused.len(),
        "no other permission refusals"
    );
}
