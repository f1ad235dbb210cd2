//! Approver groups with a threshold (docs/security.md, "Approval
//! policies"): a tenant's policy "N of group G" (`group:G:N`). Who may
//! approve (current members, never the requester, not the tenant, not a
//! colleague outside the group), the first approval keeping the request
//! pending and the N-th activating it, duplicates refused, denial by any
//! member ending it, the pending TTL, the checks when a group or a policy
//! is set, membership judged at the decision, the registry rebuilt by a
//! restart, the queue, the command line, and the log's rules over all of
//! it.

#![allow(clippy::unwrap_used)]

mod common;

use common::{cli, *};
use daypass::{
    audit::{
        Entry,
        state::{LogState, Rules},
    },
    client::Clients,
    identity::PrincipalKind,
    pb,
};
use tonic::Code;

const GROUP: &str = "oncall-leads";

fn decide(id: &str) -> pb::DecideGrantRequest {
    pb::DecideGrantRequest {
        grant_id: id.into(),
        note: "looked at it".into(),
    }
}

async fn approve(c: &mut Clients, id: &str) -> Result<pb::Grant, tonic::Status> {
    c.grants
        .approve_grant(decide(id))
        .await
        .map(|r| r.into_inner())
}

async fn deny(c: &mut Clients, id: &str) -> Result<pb::Grant, tonic::Status> {
    c.grants
        .deny_grant(decide(id))
        .await
        .map(|r| r.into_inner())
}

async fn queue(c: &mut Clients) -> Vec<String> {
    c.grants
        .list_grants(pb::ListGrantsRequest {
            awaiting_me: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .grants
        .into_iter()
        .map(|g| g.id)
        .collect()
}

fn refused<T: std::fmt::Debug>(r: Result<T, tonic::Status>, code: Code, says: &str) {
    let e = r.expect_err("refused");
    assert_eq!(e.code(), code, "{e:?}");
    assert!(
        e.message().contains(says),
        "{:?} should say {says:?}",
        e.message()
    );
}

async fn set_group(
    admin: &mut Clients,
    name: &str,
    members: &[&str],
) -> Result<pb::ApproverGroup, tonic::Status> {
    admin
        .staff
        .set_approver_group(pb::SetApproverGroupRequest {
            name: name.into(),
            members: members.iter().map(|m| (*m).to_owned()).collect(),
        })
        .await
        .map(|r| r.into_inner())
}

async fn set_policy(
    admin: &mut Clients,
    tenant: &str,
    approval: pb::ApprovalPolicy,
    group: &str,
    threshold: u32,
) -> Result<pb::Tenant, tonic::Status> {
    admin
        .tenants
        .update_tenant(pb::UpdateTenantRequest {
            name: tenant.into(),
            approval: approval as i32,
            approver_group: group.into(),
            approval_threshold: threshold,
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner())
}

async fn groups(c: &mut Clients) -> Vec<(String, Vec<String>)> {
    c.staff
        .list_approver_groups(pb::ListApproverGroupsRequest {})
        .await
        .unwrap()
        .into_inner()
        .groups
        .into_iter()
        .map(|g| (g.name, g.members))
        .collect()
}

/// A server with tenant acme under `group:oncall-leads:2`, the group
/// alice, bob and carol, and dave (support) outside it.
struct Setup {
    s: TestServer,
    acme: Clients,
    alice: Clients,
    bob: Clients,
    carol: Clients,
    dave: Clients,
}

async fn setup() -> Setup {
    let s = TestServer::start().await;
    let acme = s.add_tenant("acme", pb::ApprovalPolicy::Auto, false).await;
    let alice = s.enrol("alice", pb::Role::Support).await;
    let bob = s.enrol("bob", pb::Role::Support).await;
    let carol = s.enrol("carol", pb::Role::Root).await;
    let dave = s.enrol("dave", pb::Role::Support).await;
    let mut admin = s.admin().await;
    let g = set_group(&mut admin, GROUP, &["carol", "alice", "bob"])
        .await
        .unwrap();
    assert_eq!(g.members, ["alice", "bob", "carol"]);
    assert!(g.receipt.is_some());
    let t = set_policy(&mut admin, "acme", pb::ApprovalPolicy::Group, GROUP, 2)
        .await
        .unwrap();
    assert_eq!(t.approval(), pb::ApprovalPolicy::Group);
    assert_eq!(
        (t.approver_group.as_str(), t.approval_threshold),
        (GROUP, 2)
    );
    Setup {
        s,
        acme,
        alice,
        bob,
        carol,
        dave,
    }
}

fn is(e: &Entry, kind: &str, grant: &str, actor: &str) -> bool {
    e.kind == kind && e.details.get("grant").map(String::as_str) == Some(grant) && e.actor == actor
}

fn replay(entries: &[Entry]) -> Result<(), daypass::audit::state::Contradiction> {
    let mut state = LogState::new(Rules::default());
    entries.iter().try_for_each(|e| state.apply(e))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_of_three_members_other_than_the_requester_approve() {
    let Setup {
        s,
        mut acme,
        mut alice,
        mut bob,
        mut carol,
        mut dave,
    } = setup().await;
    let mut admin = s.admin().await;

    // alice is in the group, but she asked: only bob and carol count.
    let g = request(&mut alice, "acme", "INC-1 two of three").await;
    assert_eq!(g.state(), pb::GrantState::Pending);
    assert_eq!(g.approval(), pb::ApprovalPolicy::Group);
    assert_eq!(
        (g.approver_group.as_str(), g.approval_threshold),
        (GROUP, 2)
    );
    assert_eq!(queue(&mut bob).await, vec![g.id.clone()]);
    assert_eq!(queue(&mut carol).await, vec![g.id.clone()]);
    for c in [&mut alice, &mut dave, &mut acme, &mut admin] {
        assert_eq!(queue(c).await, Vec::<String>::new());
    }
    refused(
        approve(&mut alice, &g.id).await,
        Code::PermissionDenied,
        "own request",
    );
    refused(
        approve(&mut dave, &g.id).await,
        Code::PermissionDenied,
        "approved by members of group oncall-leads (policy group:oncall-leads:2): staff/dave cannot decide",
    );
    refused(
        deny(&mut dave, &g.id).await,
        Code::PermissionDenied,
        "members of group oncall-leads",
    );
    refused(
        approve(&mut admin, &g.id).await,
        Code::PermissionDenied,
        "members of group oncall-leads",
    );
    // The tenant does not count under a group policy.
    refused(
        approve(&mut acme, &g.id).await,
        Code::PermissionDenied,
        "policy group:oncall-leads:2",
    );
    // Another tenant does not even see it.
    let mut globex = s
        .add_tenant("globex", pb::ApprovalPolicy::Auto, false)
        .await;
    refused(
        approve(&mut globex, &g.id).await,
        Code::NotFound,
        "not found",
    );

    // The first approval keeps it pending; the same member twice is refused.
    let half = approve(&mut bob, &g.id).await.unwrap();
    assert_eq!(half.state(), pb::GrantState::Pending);
    assert_eq!(half.approvals.len(), 1);
    refused(
        approve(&mut bob, &g.id).await,
        Code::PermissionDenied,
        "staff/bob already approved grant",
    );
    refused(
        approve(&mut bob, &g.id).await,
        Code::PermissionDenied,
        "it waits for 1 more of group oncall-leads (1 of 2 approved)",
    );
    assert_eq!(queue(&mut bob).await, Vec::<String>::new());
    assert_eq!(queue(&mut carol).await, vec![g.id.clone()]);

    // The second distinct member activates it.
    let done = approve(&mut carol, &g.id).await.unwrap();
    assert_eq!(done.state(), pb::GrantState::Active);
    let by: Vec<&str> = done.approvals.iter().map(|a| a.by.as_str()).collect();
    assert_eq!(by, ["staff/bob", "staff/carol"]);
    assert_eq!(queue(&mut carol).await, Vec::<String>::new());
    assert_eq!(get_grant(&mut alice, &g.id).await.approvals.len(), 2);

    // The log: the group, the policy, the request naming its approvers,
    // each approval its own entry, then the activation.
    let entries: Vec<Entry> = s.entries().await.into_iter().map(|e| e.entry).collect();
    let set = entries.iter().find(|e| e.kind == "group.set").unwrap();
    assert_eq!(set.actor, format!("staff/{ADMIN}"));
    assert_eq!(set.details["group"], GROUP);
    assert_eq!(set.details["members"], "alice,bob,carol");
    let updated = entries
        .iter()
        .rfind(|e| e.kind == "tenant.updated" && e.tenant == "acme")
        .unwrap();
    assert_eq!(updated.details["approval"], "group");
    assert_eq!(updated.details["group"], GROUP);
    assert_eq!(updated.details["threshold"], "2");
    let story: Vec<(&str, &str)> = entries
        .iter()
        .filter(|e| e.details.get("grant") == Some(&g.id))
        .map(|e| (e.kind.as_str(), e.actor.as_str()))
        .collect();
    assert_eq!(
        story,
        [
            ("grant.requested", "staff/alice"),
            ("grant.approved", "staff/bob"),
            ("grant.approved", "staff/carol"),
            ("grant.activated", "staff/carol"),
        ]
    );
    let requested = entries
        .iter()
        .find(|e| is(e, "grant.requested", &g.id, "staff/alice"))
        .unwrap();
    assert_eq!(requested.details["approval"], "group");
    assert_eq!(requested.details["group"], GROUP);
    assert_eq!(requested.details["threshold"], "2");
    assert_eq!(requested.details["awaits"], "group oncall-leads 2 of 2");
    assert_eq!(requested.details["approvers"], "staff/bob,staff/carol");
    assert!(s.verify_chain().await.ok);

    // The log's rules hold approvals to the group.
    replay(&entries).unwrap();
    let at = entries
        .iter()
        .position(|e| is(e, "grant.approved", &g.id, "staff/bob"))
        .unwrap();
    let mut edited = entries.clone();
    edited[at].actor = "staff/dave".into();
    let c = replay(&edited).unwrap_err();
    assert_eq!(c.seq, edited[at].seq);
    assert!(
        c.why
            .contains("staff/dave is not a member of group oncall-leads"),
        "{}",
        c.why
    );
    let mut edited = entries.clone();
    edited[at].actor = "tenant/acme".into();
    let c = replay(&edited).unwrap_err();
    assert!(
        c.why
            .contains("does not count under policy group:oncall-leads:2"),
        "{}",
        c.why
    );
    // carol's approval gone: the activation comes with one of two.
    let mut edited = entries.clone();
    let at = edited
        .iter()
        .position(|e| is(e, "grant.approved", &g.id, "staff/carol"))
        .unwrap();
    edited[at].kind = "grant.not_a_kind".into();
    let c = replay(&edited).unwrap_err();
    assert!(
        c.why.contains(
            "activated without the approval of 1 more of group oncall-leads (1 of 2 approved) \
             (policy group:oncall-leads:2)"
        ),
        "{}",
        c.why
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denial_by_any_member_ends_it_and_the_pending_ttl_runs() {
    let Setup {
        s,
        mut alice,
        mut bob,
        mut carol,
        mut dave,
        ..
    } = setup().await;

    // bob approved, carol denies: it ends; nobody can approve it now.
    let g = request(&mut alice, "acme", "INC-2 denied").await;
    approve(&mut bob, &g.id).await.unwrap();
    let denied = deny(&mut carol, &g.id).await.unwrap();
    assert_eq!(denied.state(), pb::GrantState::Denied);
    assert_eq!(denied.decided_by, "staff/carol");
    refused(
        approve(&mut dave, &g.id).await,
        Code::FailedPrecondition,
        "not pending",
    );
    refused(
        approve(&mut carol, &g.id).await,
        Code::FailedPrecondition,
        "not pending",
    );

    // A member who did not approve yet denies first: it ends too.
    let g = request(&mut bob, "acme", "INC-3 denied at once").await;
    assert_eq!(
        deny(&mut alice, &g.id).await.unwrap().state(),
        pb::GrantState::Denied
    );

    // Half-approved past the pending TTL: expired, nobody can finish it.
    let g = request(&mut alice, "acme", "INC-4 too slow").await;
    approve(&mut bob, &g.id).await.unwrap();
    s.clock.advance_secs(s.config.grants.pending_ttl_secs);
    assert_eq!(queue(&mut carol).await, Vec::<String>::new());
    // Refused whether or not the sweeper has closed it yet.
    refused(
        approve(&mut carol, &g.id).await,
        Code::FailedPrecondition,
        "expired",
    );
    s.wait_for("the request expires", |e| {
        e.entry.kind == "grant.request_expired" && e.entry.details.get("grant") == Some(&g.id)
    })
    .await;
    assert_eq!(
        get_grant(&mut alice, &g.id).await.state(),
        pb::GrantState::RequestExpired
    );
    assert!(s.verify_chain().await.ok);
    let entries: Vec<Entry> = s.entries().await.into_iter().map(|e| e.entry).collect();
    replay(&entries).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_and_group_policies_are_checked_when_they_are_set() {
    let s = TestServer::start().await;
    s.add_tenant("acme", pb::ApprovalPolicy::Auto, false).await;
    s.enrol("alice", pb::Role::Support).await;
    s.enrol("bob", pb::Role::Support).await;
    s.enrol("carol", pb::Role::Root).await;
    s.enrol("dave", pb::Role::Support).await;
    s.enrol("erin", pb::Role::Admin).await;
    s.enrol("mallory", pb::Role::Auditor).await;
    let mut admin = s.admin().await;
    admin
        .staff
        .offboard_staff(pb::OffboardStaffRequest {
            name: "dave".into(),
        })
        .await
        .unwrap();

    // Members: enrolled, active, support or root.
    refused(
        set_group(&mut admin, GROUP, &["alice", "nobody"]).await,
        Code::NotFound,
        "nobody is not enrolled",
    );
    refused(
        set_group(&mut admin, GROUP, &["alice", "dave"]).await,
        Code::FailedPrecondition,
        "dave was offboarded",
    );
    refused(
        set_group(&mut admin, GROUP, &["alice", "erin"]).await,
        Code::FailedPrecondition,
        "erin is admin; only support and root holders",
    );
    refused(
        set_group(&mut admin, GROUP, &["alice", "mallory"]).await,
        Code::FailedPrecondition,
        "mallory is auditor",
    );
    // Only admins keep the groups.
    let mut alice = s.staff("alice").await;
    refused(
        set_group(&mut alice, GROUP, &["alice"]).await,
        Code::PermissionDenied,
        "may not call SetApproverGroup",
    );
    assert!(groups(&mut admin).await.is_empty());

    // A policy naming a group: it exists, 1 <= N <= its members.
    refused(
        set_policy(&mut admin, "acme", pb::ApprovalPolicy::Group, GROUP, 1).await,
        Code::FailedPrecondition,
        "approver group oncall-leads does not exist",
    );
    set_group(&mut admin, GROUP, &["alice", "bob", "carol"])
        .await
        .unwrap();
    refused(
        set_policy(&mut admin, "acme", pb::ApprovalPolicy::Group, GROUP, 0).await,
        Code::InvalidArgument,
        "must be between 1 and its 3 active members",
    );
    refused(
        set_policy(&mut admin, "acme", pb::ApprovalPolicy::Group, GROUP, 4).await,
        Code::InvalidArgument,
        "approval threshold 4 for group oncall-leads must be between 1 and its 3 active members",
    );
    refused(
        set_policy(&mut admin, "acme", pb::ApprovalPolicy::Peer, GROUP, 2).await,
        Code::InvalidArgument,
        "only for approval policy group",
    );
    refused(
        set_policy(&mut admin, "acme", pb::ApprovalPolicy::Group, "", 2).await,
        Code::InvalidArgument,
        "approver_group is required",
    );
    let added = admin
        .tenants
        .add_tenant(pb::AddTenantRequest {
            name: "initech".into(),
            approval: pb::ApprovalPolicy::Group as i32,
            approver_group: GROUP.into(),
            approval_threshold: 3,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (added.approver_group.as_str(), added.approval_threshold),
        (GROUP, 3)
    );
    set_policy(&mut admin, "acme", pb::ApprovalPolicy::Group, GROUP, 2)
        .await
        .unwrap();

    // The group cannot shrink below a threshold, nor go while named.
    refused(
        set_group(&mut admin, GROUP, &["alice", "bob"]).await,
        Code::FailedPrecondition,
        "fewer than the threshold of tenant initech (group:oncall-leads:3)",
    );
    let removed = admin
        .staff
        .remove_approver_group(pb::RemoveApproverGroupRequest { name: GROUP.into() })
        .await;
    refused(
        removed,
        Code::FailedPrecondition,
        "named by the policy of tenant acme, initech",
    );
    for t in ["acme", "initech"] {
        set_policy(&mut admin, t, pb::ApprovalPolicy::Peer, "", 0)
            .await
            .unwrap();
    }
    set_group(&mut admin, GROUP, &["alice"]).await.unwrap();
    let r = admin
        .staff
        .remove_approver_group(pb::RemoveApproverGroupRequest { name: GROUP.into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.name, GROUP);
    assert!(r.receipt.is_some());
    assert!(groups(&mut admin).await.is_empty());
    let again = admin
        .staff
        .remove_approver_group(pb::RemoveApproverGroupRequest { name: GROUP.into() })
        .await;
    refused(
        again,
        Code::NotFound,
        "approver group oncall-leads does not exist",
    );
    let kinds: Vec<String> = s
        .entries()
        .await
        .into_iter()
        .map(|e| e.entry.kind)
        .filter(|k| k.starts_with("group."))
        .collect();
    assert_eq!(kinds, ["group.set", "group.set", "group.removed"]);
    assert!(s.verify_chain().await.ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_counts_at_the_decision_and_a_restart_rebuilds_the_groups() {
    let Setup {
        mut s,
        mut alice,
        mut bob,
        ..
    } = setup().await;
    let mut admin = s.admin().await;

    // bob approves, then leaves the group: his approval stays, but he can
    // no longer decide; dave, who joined, can.
    let g = request(&mut alice, "acme", "INC-5 across a change").await;
    approve(&mut bob, &g.id).await.unwrap();
    set_group(&mut admin, GROUP, &["alice", "carol", "dave"])
        .await
        .unwrap();
    refused(
        deny(&mut bob, &g.id).await,
        Code::PermissionDenied,
        "members of group oncall-leads",
    );

    // A restart rebuilds the registry from the log, and the stored
    // records agree with it (else every call below would be refused).
    s.restart().await;
    let mut admin = s.admin().await;
    assert_eq!(
        groups(&mut admin).await,
        vec![(
            GROUP.to_owned(),
            vec!["alice".to_owned(), "carol".into(), "dave".into()]
        )]
    );
    let mut dave = s.staff("dave").await;
    let mut bob = s.staff("bob").await;
    assert_eq!(queue(&mut dave).await, vec![g.id.clone()]);
    assert_eq!(queue(&mut bob).await, Vec::<String>::new());
    let done = approve(&mut dave, &g.id).await.unwrap();
    assert_eq!(done.state(), pb::GrantState::Active);
    let by: Vec<&str> = done.approvals.iter().map(|a| a.by.as_str()).collect();
    assert_eq!(by, ["staff/bob", "staff/dave"]);

    // An offboarded member no longer counts: with carol gone, a request
    // by alice has only dave left to approve it, one short of two.
    admin
        .staff
        .offboard_staff(pb::OffboardStaffRequest {
            name: "carol".into(),
        })
        .await
        .unwrap();
    let mut alice = s.staff("alice").await;
    release(&mut alice, &g.id).await;
    let r = alice
        .grants
        .request_grant(grant_request("acme", "INC-6 short", 3600))
        .await;
    refused(
        r,
        Code::FailedPrecondition,
        "need 2 of group oncall-leads, but only 1 of its members other than you can approve",
    );
    // Nor can a policy count on her.
    refused(
        set_policy(&mut admin, "acme", pb::ApprovalPolicy::Group, GROUP, 3).await,
        Code::InvalidArgument,
        "between 1 and its 2 active members",
    );
    s.restart().await;
    let mut bob = s.staff("bob").await;
    let g = request(&mut bob, "acme", "INC-7 after restarts").await;
    let mut dave = s.staff("dave").await;
    let mut alice = s.staff("alice").await;
    approve(&mut dave, &g.id).await.unwrap();
    assert_eq!(
        approve(&mut alice, &g.id).await.unwrap().state(),
        pb::GrantState::Active
    );
    assert!(s.verify_chain().await.ok);
    let entries: Vec<Entry> = s.entries().await.into_iter().map(|e| e.entry).collect();
    replay(&entries).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_and_the_queue_on_the_command_line() {
    let s = TestServer::start().await;
    s.add_tenant("acme", pb::ApprovalPolicy::Auto, false).await;
    let mut alice = s.enrol("alice", pb::Role::Support).await;
    s.enrol("bob", pb::Role::Support).await;
    s.enrol("carol", pb::Role::Support).await;
    let work = tempfile::tempdir().unwrap();
    let run = |who: (PrincipalKind, &str), args: &[&str]| {
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        all.extend(s.cli_flags(work.path(), who.0, who.1));
        cli::run_async(work.path().to_owned(), all)
    };
    let admin = (PrincipalKind::Staff, ADMIN);
    let bob = (PrincipalKind::Staff, "bob");

    let out = run(
        admin,
        &[
            "staff", "group", "set", GROUP, "--member", "alice", "--member", "bob", "--member",
            "carol",
        ],
    )
    .await;
    let said = cli::assert_ok(&out, "group set");
    assert!(
        said.contains("set approver group oncall-leads (3 members: alice, bob, carol)"),
        "{said}"
    );
    let listed = cli::assert_ok(&run(admin, &["staff", "group", "list"]).await, "list");
    assert!(
        listed.contains(GROUP) && listed.contains("alice,bob,carol"),
        "{listed}"
    );

    // A usage error (clap's exit status 2), saying how to write it.
    let out = run(
        admin,
        &[
            "tenant",
            "update",
            "acme",
            "--approval",
            "group:oncall-leads",
        ],
    )
    .await;
    let err = cli::text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("is written group:NAME:N"), "{err}");
    let out = run(
        admin,
        &[
            "tenant",
            "update",
            "acme",
            "--approval",
            "group:oncall-leads:2",
        ],
    )
    .await;
    let said = cli::assert_ok(&out, "tenant update");
    assert!(said.contains("approval: group:oncall-leads:2"), "{said}");
    let listed = cli::assert_ok(&run(admin, &["tenant", "list"]).await, "tenant list");
    assert!(listed.contains("group:oncall-leads:2"), "{listed}");

    let g = request(&mut alice, "acme", "INC-9 from the queue").await;
    let q = cli::assert_ok(&run(bob, &["grant", "pending"]).await, "grant pending");
    assert!(
        q.contains(&g.id) && q.contains("2 more of group oncall-leads (0 of 2 approved)"),
        "{q}"
    );
    let said = cli::assert_ok(&run(bob, &["grant", "approve", &g.id]).await, "approve");
    assert!(
        said.contains(
            "still waits for 1 more of group oncall-leads (1 of 2 approved) \
             (policy group:oncall-leads:2)"
        ),
        "{said}"
    );
    let q = cli::assert_ok(&run(bob, &["grant", "pending"]).await, "grant pending");
    assert!(q.contains("nothing waits for your decision"), "{q}");

    let err = cli::one_line_error(
        &run(admin, &["staff", "group", "remove", GROUP]).await,
        "remove while named",
    );
    assert!(err.contains("named by the policy of tenant acme"), "{err}");
    let shown = cli::assert_ok(
        &run((PrincipalKind::Staff, "alice"), &["grant", "show", &g.id]).await,
        "show",
    );
    assert!(
        shown.contains("group:oncall-leads:2") && shown.contains("staff/bob at"),
        "{shown}"
    );
}
