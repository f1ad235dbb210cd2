//! The grant lifecycle end to end: limits, approval, stacking, revocation,
//! release, offboarding and tenant isolation.

mod common;

use common::*;
use daypass::pb::{self, ApprovalPolicy, DenyReason, Role};
use tonic::Code;

fn code<T: std::fmt::Debug>(r: Result<T, tonic::Status>) -> Code {
    r.expect_err("call should be refused").code()
}

#[tokio::test]
async fn at_most_two_root_holders() {
    let s = TestServer::start().await;
    s.enrol("r1", Role::Root).await;
    s.enrol("r2", Role::Root).await;
    let mut admin = s.admin().await;
    let third = admin
        .staff
        .add_staff(pb::AddStaffRequest {
            name: "r3".into(),
            role: Role::Root as i32,
            country: String::new(),
            organisation: String::new(),
        })
        .await;
    let status = third.expect_err("third root refused");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status.message().contains("root holders"),
        "{}",
        status.message()
    );
    // Offboarding one makes room again.
    admin
        .staff
        .offboard_staff(pb::OffboardStaffRequest { name: "r1".into() })
        .await
        .unwrap();
    s.enrol("r3", Role::Root).await;

    let lower = TestServer::start_with(|c| c.staff.max_root_holders = 1).await;
    lower.enrol("r1", Role::Root).await;
    let mut admin = lower.admin().await;
    let second = admin
        .staff
        .add_staff(pb::AddStaffRequest {
            name: "r2".into(),
            role: Role::Root as i32,
            country: String::new(),
            organisation: String::new(),
        })
        .await;
    assert_eq!(code(second), Code::FailedPrecondition);
}

#[tokio::test]
async fn reason_and_duration_limits() {
    let s = TestServer::start().await;
    let mut alice = s.enrol("alice", Role::Support).await;
    s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    s.add_tenant("strict", ApprovalPolicy::Auto, true).await;

    for (reason, duration) in [
        ("", 0),
        ("   ", 0),
        ("x", 86_401),
        ("x", -1),
        (&*"r".repeat(501), 0),
        ("a\u{7}b", 0),
    ] {
        let r = alice
            .grants
            .request_grant(grant_request("acme", reason, duration))
            .await;
        let st = r.expect_err("refused");
        assert_eq!(
            st.code(),
            Code::InvalidArgument,
            "{reason:?} {duration}: {}",
            st.message()
        );
    }
    let st = alice
        .grants
        .request_grant(grant_request("acme", "x", 86_401))
        .await
        .unwrap_err();
    assert!(
        st.message().contains("86400"),
        "message says the limit: {}",
        st.message()
    );

    let st = alice
        .grants
        .request_grant(grant_request("strict", "INC-1", 0))
        .await
        .unwrap_err();
    assert_eq!(st.code(), Code::InvalidArgument);
    assert!(st.message().contains("ticket"), "{}", st.message());
    let mut with_ticket = grant_request("strict", "INC-1", 0);
    with_ticket.ticket = "INC-1".into();
    alice
        .grants
        .request_grant(with_ticket)
        .await
        .expect("ticket given");

    let st = alice
        .grants
        .request_grant(grant_request("nowhere", "x", 0))
        .await
        .unwrap_err();
    assert_eq!(st.code(), Code::NotFound);

    // Exactly 24 h is fine, and the default is 24 h.
    let g = alice
        .grants
        .request_grant(grant_request("acme", "INC-2", 86_400))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(g.expires_at_ms - g.activated_at_ms, 86_400_000);

    let lower = TestServer::start_with(|c| c.grants.max_duration_secs = 3600).await;
    let mut bob = lower.enrol("bob", Role::Support).await;
    lower.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    assert_eq!(
        code(
            bob.grants
                .request_grant(grant_request("acme", "x", 3601))
                .await
        ),
        Code::InvalidArgument
    );
    let g = bob
        .grants
        .request_grant(grant_request("acme", "x", 0))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        g.duration_seconds, 3600,
        "default is the configured maximum"
    );

    // Every refusal above was logged.
    let refused = s
        .entries()
        .await
        .iter()
        .filter(|e| e.entry.kind == "call.refused")
        .count();
    assert_eq!(refused, 6 + 1 + 1 + 1);
}

#[tokio::test]
async fn a_live_grant_does_not_stack() {
    let s = TestServer::start().await;
    let mut alice = s.enrol("alice", Role::Support).await;
    s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    s.add_tenant("globex", ApprovalPolicy::Approval, false)
        .await;
    let g = request(&mut alice, "acme", "INC-1").await;
    let st = alice
        .grants
        .request_grant(grant_request("acme", "again", 0))
        .await
        .unwrap_err();
    assert_eq!(st.code(), Code::AlreadyExists);
    assert!(
        st.message().contains(&g.id),
        "names the live grant: {}",
        st.message()
    );
    // Another tenant is fine; a pending request also blocks a second one.
    let p = request(&mut alice, "globex", "INC-1").await;
    assert_eq!(p.state, pb::GrantState::Pending as i32);
    assert_eq!(
        code(
            alice
                .grants
                .request_grant(grant_request("globex", "x", 0))
                .await
        ),
        Code::AlreadyExists
    );
    // After release a new request works.
    release(&mut alice, &g.id).await;
    let g2 = request(&mut alice, "acme", "INC-2").await;
    assert_ne!(g2.id, g.id);
}

#[tokio::test]
async fn approval_flow() {
    let s = TestServer::start().await;
    let mut alice = s.enrol("alice", Role::Support).await;
    let mut bob = s.enrol("bob", Role::Support).await;
    let mut globex = s
        .add_tenant("globex", ApprovalPolicy::Approval, false)
        .await;
    let mut other = s.add_tenant("other", ApprovalPolicy::Auto, false).await;

    // Approved by the tenant; the 24 h start at activation, not at request.
    let g = request(&mut alice, "globex", "INC-1").await;
    assert_eq!(g.state, pb::GrantState::Pending as i32);
    assert_eq!(
        deny_reason(&validate(&mut globex, &g.id).await),
        DenyReason::Pending
    );
    let self_approve = alice
        .grants
        .approve_grant(pb::DecideGrantRequest {
            grant_id: g.id.clone(),
            note: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(self_approve.code(), Code::PermissionDenied);
    assert!(
        self_approve.message().contains("own request"),
        "{}",
        self_approve.message()
    );
    // Another tenant cannot approve it either, and learns nothing.
    let st = other
        .grants
        .approve_grant(pb::DecideGrantRequest {
            grant_id: g.id.clone(),
            note: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(st.code(), Code::NotFound);

    s.clock.advance_secs(600);
    let approved = globex
        .grants
        .approve_grant(pb::DecideGrantRequest {
            grant_id: g.id.clone(),
            note: "ok".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(approved.state, pb::GrantState::Active as i32);
    assert_eq!(approved.activated_at_ms, g.requested_at_ms + 600_000);
    assert_eq!(
        approved.expires_at_ms,
        approved.activated_at_ms + 86_400_000
    );
    assert!(validate(&mut globex, &g.id).await.allowed);
    let again = globex
        .grants
        .approve_grant(pb::DecideGrantRequest {
            grant_id: g.id.clone(),
            note: String::new(),
        })
        .await;
    assert_eq!(code(again), Code::FailedPrecondition);

    // Denied by a colleague.
    let mut carol = s.enrol("carol", Role::Support).await;
    let d = request(&mut carol, "globex", "INC-2").await;
    let denied = bob
        .grants
        .deny_grant(pb::DecideGrantRequest {
            grant_id: d.id.clone(),
            note: "no ticket".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(denied.state, pb::GrantState::Denied as i32);
    assert_eq!(denied.decided_by, "staff/bob");
    assert_eq!(
        deny_reason(&validate(&mut globex, &d.id).await),
        DenyReason::Denied
    );

    // A request nobody approves expires after the pending TTL (1 h).
    let mut dave = s.enrol("dave", Role::Support).await;
    let p = request(&mut dave, "globex", "INC-3").await;
    s.clock.advance_secs(3599);
    assert_eq!(
        deny_reason(&validate(&mut globex, &p.id).await),
        DenyReason::Pending
    );
    s.clock.advance_secs(1);
    assert_eq!(
        deny_reason(&validate(&mut globex, &p.id).await),
        DenyReason::Expired
    );
    let late = globex
        .grants
        .approve_grant(pb::DecideGrantRequest {
            grant_id: p.id.clone(),
            note: String::new(),
        })
        .await;
    assert_eq!(code(late), Code::FailedPrecondition);
    let e = s
        .wait_for("grant.request_expired", |e| {
            e.entry.kind == "grant.request_expired" && e.entry.details.get("grant") == Some(&p.id)
        })
        .await;
    assert_eq!(e.entry.actor, "system");
    let shown = get_grant(&mut dave, &p.id).await;
    assert_eq!(shown.state, pb::GrantState::RequestExpired as i32);
}

#[tokio::test]
async fn revocation_release_and_offboarding_apply_to_the_next_validation() {
    let s = TestServer::start().await;
    let mut alice = s.enrol("alice", Role::Support).await;
    let mut bob = s.enrol("bob", Role::Root).await;
    let mut acme = s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let mut admin = s.admin().await;

    let g = request(&mut alice, "acme", "INC-1").await;
    assert!(validate(&mut acme, &g.id).await.allowed);
    revoke(&mut admin, &g.id, "done").await;
    assert_eq!(
        deny_reason(&validate(&mut acme, &g.id).await),
        DenyReason::Revoked
    );

    let g = request(&mut alice, "acme", "INC-2").await;
    revoke(&mut acme, &g.id, "").await;
    assert_eq!(
        deny_reason(&validate(&mut acme, &g.id).await),
        DenyReason::Revoked
    );

    let g = request(&mut alice, "acme", "INC-3").await;
    // Only the holder can release.
    assert_eq!(
        code(
            bob.grants
                .release_grant(pb::ReleaseGrantRequest {
                    grant_id: g.id.clone()
                })
                .await
        ),
        Code::NotFound
    );
    release(&mut alice, &g.id).await;
    assert_eq!(
        deny_reason(&validate(&mut acme, &g.id).await),
        DenyReason::Released
    );
    let st = alice
        .grants
        .release_grant(pb::ReleaseGrantRequest {
            grant_id: g.id.clone(),
        })
        .await;
    assert_eq!(code(st), Code::FailedPrecondition);

    // Offboarding: every live grant ends at once, the certificate stops working.
    let g1 = request(&mut bob, "acme", "INC-4").await;
    assert!(validate(&mut acme, &g1.id).await.allowed);
    let r = admin
        .staff
        .offboard_staff(pb::OffboardStaffRequest { name: "bob".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.revoked_grant_ids, vec![g1.id.clone()]);
    let v = validate(&mut acme, &g1.id).await;
    assert!(!v.allowed);
    assert_eq!(deny_reason(&v), DenyReason::Offboarded);
    let by_staff = acme
        .grants
        .validate_grant(pb::ValidateGrantRequest {
            subject: Some(pb::validate_grant_request::Subject::Staff("bob".into())),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deny_reason(&by_staff), DenyReason::Offboarded);
    let st = bob.staff.who_am_i(pb::WhoAmIRequest {}).await.unwrap_err();
    assert_eq!(st.code(), Code::PermissionDenied);
    assert!(st.message().contains("offboarded"), "{}", st.message());
    assert_eq!(
        code(
            bob.grants
                .request_grant(grant_request("acme", "x", 0))
                .await
        ),
        Code::PermissionDenied
    );
}

#[tokio::test]
async fn a_tenant_cannot_see_or_infer_another_tenants_grants() {
    let s = TestServer::start().await;
    let mut alice = s.enrol("alice", Role::Support).await;
    let mut a = s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let mut b = s.add_tenant("globex", ApprovalPolicy::Auto, false).await;
    let g = request(&mut alice, "acme", "INC-1").await;
    let unknown = "g-000000000000000000000000";

    // Validation: identical to an unknown id, field for field (except the log seq).
    let mut theirs = validate(&mut b, &g.id).await;
    let mut none = validate(&mut b, unknown).await;
    assert!(!theirs.allowed);
    assert_eq!(deny_reason(&theirs), DenyReason::Unknown);
    // Each answer carries its own receipt (a different log entry).
    assert!(theirs.receipt.take().is_some() && none.receipt.take().is_some());
    theirs.log_seq = 0;
    none.log_seq = 0;
    assert_eq!(theirs, none);
    // By staff name too: alice has no grant for globex.
    let by_staff = b
        .grants
        .validate_grant(pb::ValidateGrantRequest {
            subject: Some(pb::validate_grant_request::Subject::Staff("alice".into())),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deny_reason(&by_staff), DenyReason::Unknown);
    assert!(by_staff.grant_id.is_empty() && by_staff.holder.is_empty());

    // Listing shows nothing of acme's; get, revoke and record look like unknown ids.
    let list = b
        .grants
        .list_grants(pb::ListGrantsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(list.grants.is_empty());
    let list = b
        .grants
        .list_grants(pb::ListGrantsRequest {
            tenant: "acme".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(list.grants.is_empty());
    for id in [g.id.as_str(), unknown] {
        let get = b
            .grants
            .get_grant(pb::GetGrantRequest {
                grant_id: id.into(),
            })
            .await
            .unwrap_err();
        assert_eq!(
            (get.code(), get.message()),
            (Code::NotFound, &*format!("grant {id} not found"))
        );
        let rev = b
            .grants
            .revoke_grant(pb::RevokeGrantRequest {
                grant_id: id.into(),
                note: String::new(),
            })
            .await
            .unwrap_err();
        assert_eq!(
            (rev.code(), rev.message()),
            (Code::NotFound, &*format!("grant {id} not found"))
        );
        let rec = b
            .grants
            .record_access(access_request(id, "ssh", ""))
            .await
            .unwrap_err();
        assert_eq!(
            (rec.code(), rec.message()),
            (Code::NotFound, &*format!("grant {id} not found"))
        );
    }
    // The owner still sees it, and the grant is untouched.
    assert!(validate(&mut a, &g.id).await.allowed);
    let list = a
        .grants
        .list_grants(pb::ListGrantsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.grants.len(), 1);
}

#[tokio::test]
async fn staff_see_only_their_own_grants_admins_and_auditors_all() {
    let s = TestServer::start().await;
    let mut alice = s.enrol("alice", Role::Support).await;
    let mut bob = s.enrol("bob", Role::Support).await;
    let mut eve = s.enrol("eve", Role::Auditor).await;
    s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let ga = request(&mut alice, "acme", "INC-1").await;
    let gb = request(&mut bob, "acme", "INC-2").await;
    let mine = alice
        .grants
        .list_grants(pb::ListGrantsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        mine.grants.iter().map(|g| &g.id).collect::<Vec<_>>(),
        vec![&ga.id]
    );
    assert_eq!(
        alice
            .grants
            .get_grant(pb::GetGrantRequest {
                grant_id: gb.id.clone()
            })
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    for mut c in [s.admin().await, eve.clone()] {
        let all = c
            .grants
            .list_grants(pb::ListGrantsRequest::default())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(all.grants.len(), 2);
    }
    let one = get_grant(&mut eve, &gb.id).await;
    assert_eq!(one.holder, "bob");
}

#[tokio::test]
async fn access_records_need_a_valid_grant() {
    let s = TestServer::start().await;
    let mut alice = s.enrol("alice", Role::Support).await;
    let mut acme = s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let g = request(&mut alice, "acme", "INC-1").await;
    let r = record_access(&mut acme, &g.id, "ssh", "web-1").await;
    let entries = s.entries().await;
    let e = entries
        .iter()
        .find(|e| e.entry.seq == r.log_seq)
        .expect("entry");
    assert_eq!(e.entry.kind, "access.recorded");
    assert_eq!(hex::encode(e.hash), r.entry_hash);
    assert_eq!(e.entry.details["resource"], "web-1");
    let blank = acme
        .grants
        .record_access(access_request(&g.id, " ", ""))
        .await;
    assert_eq!(code(blank), Code::InvalidArgument);
    release(&mut alice, &g.id).await;
    let after = acme
        .grants
        .record_access(access_request(&g.id, "ssh", ""))
        .await;
    assert_eq!(code(after), Code::FailedPrecondition);
}
