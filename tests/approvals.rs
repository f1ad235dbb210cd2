//! Approval policies per tenant (docs/security.md, "Approval policies"):
//! `tenant` (only the tenant approves), `peer` (a colleague, never the
//! requester), `tenant+peer` (both), `tenant-or-peer` (either: the old
//! `approval`) and `auto`. Who may approve and who may not, denial by any
//! approver, the pending TTL, every approval logged and kept, the approval
//! queue (`grant pending`), and all of it through a restart and `audit
//! check`.

#![allow(clippy::unwrap_used)]

mod common;

use common::{cli, *};
use daypass::{identity::PrincipalKind, pb};
use tonic::Code;

fn decide(id: &str) -> pb::DecideGrantRequest {
    pb::DecideGrantRequest {
        grant_id: id.into(),
        note: String::new(),
    }
}

async fn approve(c: &mut daypass::client::Clients, id: &str) -> Result<pb::Grant, tonic::Status> {
    c.grants
        .approve_grant(decide(id))
        .await
        .map(|r| r.into_inner())
}

async fn deny(c: &mut daypass::client::Clients, id: &str) -> Result<pb::Grant, tonic::Status> {
    c.grants
        .deny_grant(decide(id))
        .await
        .map(|r| r.into_inner())
}

async fn queue(c: &mut daypass::client::Clients) -> Vec<String> {
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

fn refused(r: Result<pb::Grant, tonic::Status>, code: Code, says: &str) {
    let e = r.expect_err("refused");
    assert_eq!(e.code(), code, "{e:?}");
    assert!(
        e.message().contains(says),
        "{:?} should say {says:?}",
        e.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_policy_counts_exactly_its_approvers() {
    let mut s = TestServer::start().await;
    let mut acme = s
        .add_tenant("acme", pb::ApprovalPolicy::Tenant, false)
        .await;
    let mut peerco = s
        .add_tenant("peerco", pb::ApprovalPolicy::Peer, false)
        .await;
    let mut both = s
        .add_tenant("both", pb::ApprovalPolicy::TenantAndPeer, false)
        .await;
    let mut either = s
        .add_tenant("either", pb::ApprovalPolicy::Approval, false)
        .await;
    let mut globex = s
        .add_tenant("globex", pb::ApprovalPolicy::Auto, false)
        .await;
    let mut alice = s.enrol("alice", pb::Role::Support).await;
    let mut bob = s.enrol("bob", pb::Role::Support).await;
    let mut carol = s.enrol("carol", pb::Role::Support).await;

    // tenant: only acme itself.
    let g = request(&mut alice, "acme", "INC-1 lockbox").await;
    assert_eq!(g.state(), pb::GrantState::Pending);
    assert_eq!(g.approval(), pb::ApprovalPolicy::Tenant);
    refused(
        approve(&mut bob, &g.id).await,
        Code::PermissionDenied,
        "policy tenant",
    );
    refused(
        deny(&mut bob, &g.id).await,
        Code::PermissionDenied,
        "the tenant only",
    );
    refused(
        approve(&mut alice, &g.id).await,
        Code::PermissionDenied,
        "own request",
    );
    refused(approve(&mut globex, &g.id).await, Code::NotFound, "");
    assert_eq!(queue(&mut bob).await, Vec::<String>::new());
    assert_eq!(queue(&mut acme).await, vec![g.id.clone()]);
    let done = approve(&mut acme, &g.id).await.unwrap();
    assert_eq!(done.state(), pb::GrantState::Active);
    assert_eq!(done.approvals.len(), 1);
    assert_eq!(done.approvals[0].by, "tenant/acme");
    assert_eq!(queue(&mut acme).await, Vec::<String>::new());

    // peer: a colleague, not the tenant, never the requester.
    let g = request(&mut alice, "peerco", "INC-2 four eyes").await;
    refused(
        approve(&mut peerco, &g.id).await,
        Code::PermissionDenied,
        "policy peer",
    );
    refused(
        approve(&mut alice, &g.id).await,
        Code::PermissionDenied,
        "own request",
    );
    assert_eq!(queue(&mut alice).await, Vec::<String>::new());
    assert_eq!(queue(&mut bob).await, vec![g.id.clone()]);
    assert_eq!(queue(&mut peerco).await, Vec::<String>::new());
    let done = approve(&mut bob, &g.id).await.unwrap();
    assert_eq!(done.state(), pb::GrantState::Active);

    // tenant+peer: both, each once, in either order.
    let g = request(&mut alice, "both", "INC-3 both").await;
    assert_eq!(queue(&mut bob).await, vec![g.id.clone()]);
    assert_eq!(queue(&mut both).await, vec![g.id.clone()]);
    let half = approve(&mut bob, &g.id).await.unwrap();
    assert_eq!(half.state(), pb::GrantState::Pending);
    assert_eq!(half.approvals.len(), 1);
    refused(
        approve(&mut bob, &g.id).await,
        Code::PermissionDenied,
        "already approved",
    );
    // Another colleague's approval does not stand in for the tenant's.
    let still = approve(&mut carol, &g.id).await.unwrap();
    assert_eq!(still.state(), pb::GrantState::Pending);
    assert_eq!(queue(&mut bob).await, Vec::<String>::new());
    assert_eq!(queue(&mut both).await, vec![g.id.clone()]);
    let done = approve(&mut both, &g.id).await.unwrap();
    assert_eq!(done.state(), pb::GrantState::Active);
    let by: Vec<&str> = done.approvals.iter().map(|a| a.by.as_str()).collect();
    assert_eq!(by, ["staff/bob", "staff/carol", "tenant/both"]);

    // tenant-or-peer (the old `approval`): either one.
    let g = request(&mut alice, "either", "INC-4 either").await;
    assert_eq!(
        approve(&mut either, &g.id).await.unwrap().state(),
        pb::GrantState::Active
    );
    let g = request(&mut bob, "either", "INC-5 either").await;
    assert_eq!(
        approve(&mut alice, &g.id).await.unwrap().state(),
        pb::GrantState::Active
    );

    // auto: nobody decides.
    let g = request(&mut alice, "globex", "INC-6 auto").await;
    assert_eq!(g.state(), pb::GrantState::Active);
    refused(
        approve(&mut bob, &g.id).await,
        Code::FailedPrecondition,
        "not pending",
    );

    // Every approval is its own entry, the activation follows the last.
    let entries = s.entries().await;
    let story: Vec<(String, String)> = entries
        .iter()
        .filter(|e| e.entry.details.get("grant") == Some(&done.id))
        .map(|e| (e.entry.kind.clone(), e.entry.actor.clone()))
        .collect();
    let want = [
        ("grant.requested", "staff/alice"),
        ("grant.approved", "staff/bob"),
        ("grant.approved", "staff/carol"),
        ("grant.approved", "tenant/both"),
        ("grant.activated", "tenant/both"),
    ];
    assert_eq!(
        story,
        want.map(|(k, a)| (k.to_owned(), a.to_owned())).to_vec()
    );
    let requested = entries
        .iter()
        .find(|e| {
            e.entry.kind == "grant.requested" && e.entry.details.get("grant") == Some(&done.id)
        })
        .unwrap();
    assert_eq!(requested.entry.details["approval"], "tenant+peer");
    assert!(s.verify_chain().await.ok);

    // A restart keeps the policy and the approvals (the store agrees with
    // the log), and a half-approved request still waits.
    let half = request(&mut carol, "both", "INC-7 across a restart").await;
    approve(&mut both, &half.id).await.unwrap();
    s.restart().await;
    let mut both = s.tenant("both").await;
    let mut bob = s.staff("bob").await;
    refused(
        approve(&mut both, &half.id).await,
        Code::PermissionDenied,
        "already approved",
    );
    let mut alice = s.staff("alice").await;
    let shown = get_grant(&mut alice, &done.id).await;
    assert_eq!(shown.approvals.len(), 3);
    assert_eq!(queue(&mut bob).await, vec![half.id.clone()]);
    assert_eq!(
        approve(&mut bob, &half.id).await.unwrap().state(),
        pb::GrantState::Active
    );
    assert!(s.verify_chain().await.ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denial_by_any_approver_ends_the_request_and_the_ttl_still_runs() {
    let s = TestServer::start().await;
    let mut both = s
        .add_tenant("both", pb::ApprovalPolicy::TenantAndPeer, false)
        .await;
    let mut alice = s.enrol("alice", pb::Role::Support).await;
    let mut bob = s.enrol("bob", pb::Role::Support).await;
    let mut carol = s.enrol("carol", pb::Role::Support).await;

    // The colleague approved; the tenant denies: it ends.
    let g = request(&mut alice, "both", "INC-1").await;
    approve(&mut bob, &g.id).await.unwrap();
    let denied = deny(&mut both, &g.id).await.unwrap();
    assert_eq!(denied.state(), pb::GrantState::Denied);
    refused(
        approve(&mut carol, &g.id).await,
        Code::FailedPrecondition,
        "not pending",
    );

    // The tenant approved; a colleague denies: it ends too.
    let g = request(&mut alice, "both", "INC-2").await;
    approve(&mut both, &g.id).await.unwrap();
    assert_eq!(
        deny(&mut carol, &g.id).await.unwrap().state(),
        pb::GrantState::Denied
    );

    // Half-approved past the pending TTL: expired, nobody can finish it.
    let g = request(&mut alice, "both", "INC-3").await;
    approve(&mut bob, &g.id).await.unwrap();
    s.clock.advance_secs(s.config.grants.pending_ttl_secs + 1);
    assert_eq!(queue(&mut both).await, Vec::<String>::new());
    refused(
        approve(&mut both, &g.id).await,
        Code::FailedPrecondition,
        "expired",
    );
    assert!(s.verify_chain().await.ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_and_the_policy_on_the_command_line() {
    let s = TestServer::start().await;
    s.add_tenant("acme", pb::ApprovalPolicy::Auto, false).await;
    let mut alice = s.enrol("alice", pb::Role::Support).await;
    s.enrol("bob", pb::Role::Support).await;
    let work = tempfile::tempdir().unwrap();
    let run = |who: (PrincipalKind, &str), args: &[&str]| {
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        all.extend(s.cli_flags(work.path(), who.0, who.1));
        cli::run_async(work.path().to_owned(), all)
    };
    let admin = (PrincipalKind::Staff, ADMIN);
    let bob = (PrincipalKind::Staff, "bob");

    // The admin sets the policy by its name; `approval` is the old name.
    let out = run(
        admin,
        &["tenant", "update", "acme", "--approval", "tenant+peer"],
    )
    .await;
    cli::assert_ok(&out, "tenant update");
    let listed = cli::assert_ok(&run(admin, &["tenant", "list"]).await, "tenant list");
    assert!(listed.contains("tenant+peer"), "{listed}");

    let g = request(&mut alice, "acme", "INC-9 from the queue").await;
    let q = cli::assert_ok(&run(bob, &["grant", "pending"]).await, "grant pending");
    assert!(q.contains(&g.id) && q.contains("WAITS FOR"), "{q}");
    assert!(
        q.contains("the tenant and a colleague of the requester"),
        "{q}"
    );
    let said = cli::assert_ok(&run(bob, &["grant", "approve", &g.id]).await, "approve");
    assert!(
        said.contains("still waits for the tenant (policy tenant+peer)"),
        "{said}"
    );
    let q = cli::assert_ok(&run(bob, &["grant", "pending"]).await, "grant pending");
    assert!(q.contains("nothing waits for your decision"), "{q}");
    let err = cli::one_line_error(&run(bob, &["grant", "approve", &g.id]).await, "twice");
    assert!(err.contains("already approved"), "{err}");

    let out = run(
        admin,
        &["tenant", "update", "acme", "--approval", "approval"],
    )
    .await;
    cli::assert_ok(&out, "old name");
    let listed = cli::assert_ok(&run(admin, &["tenant", "list"]).await, "tenant list");
    assert!(listed.contains("tenant-or-peer"), "{listed}");
    // The request keeps the policy it was made under.
    let shown = cli::assert_ok(
        &run((PrincipalKind::Staff, "alice"), &["grant", "show", &g.id]).await,
        "show",
    );
    assert!(
        shown.contains("tenant+peer") && shown.contains("staff/bob at"),
        "{shown}"
    );
}

/// The log's rules (`audit check`, `audit verify`) judge approvals by the
/// policy the request names: a log whose entries were edited to skip an
/// approval, or to have someone else approve, is contradicted there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_logs_rules_hold_approvals_to_the_policy() {
    use daypass::audit::state::{LogState, Rules};
    let s = TestServer::start().await;
    let mut acme = s
        .add_tenant("acme", pb::ApprovalPolicy::Tenant, false)
        .await;
    let mut both = s
        .add_tenant("both", pb::ApprovalPolicy::TenantAndPeer, false)
        .await;
    let mut alice = s.enrol("alice", pb::Role::Support).await;
    let mut bob = s.enrol("bob", pb::Role::Support).await;
    let lockbox = request(&mut alice, "acme", "INC-1").await;
    approve(&mut acme, &lockbox.id).await.unwrap();
    let pair = request(&mut alice, "both", "INC-2").await;
    approve(&mut bob, &pair.id).await.unwrap();
    approve(&mut both, &pair.id).await.unwrap();
    let entries: Vec<daypass::audit::Entry> =
        s.entries().await.into_iter().map(|e| e.entry).collect();
    let replay = |entries: &[daypass::audit::Entry]| {
        let mut state = LogState::new(Rules::default());
        entries.iter().try_for_each(|e| state.apply(e))
    };
    replay(&entries).unwrap();
    let is = |e: &daypass::audit::Entry, kind: &str, grant: &str, actor: &str| {
        e.kind == kind
            && e.details.get("grant").map(String::as_str) == Some(grant)
            && e.actor == actor
    };

    // The tenant's approval of the lockbox grant made a colleague's.
    let mut edited = entries.clone();
    let at = edited
        .iter()
        .position(|e| is(e, "grant.approved", &lockbox.id, "tenant/acme"))
        .unwrap();
    edited[at].actor = "staff/bob".into();
    let c = replay(&edited).unwrap_err();
    assert_eq!(c.seq, edited[at].seq);
    assert!(
        c.why.contains("does not count under policy tenant"),
        "{}",
        c.why
    );

    // The tenant's approval of the pair grant gone (its kind made one this
    // build does not know): the activation comes too early.
    let mut edited = entries.clone();
    let at = edited
        .iter()
        .position(|e| is(e, "grant.approved", &pair.id, "tenant/both"))
        .unwrap();
    edited[at].kind = "grant.not_a_kind".into();
    let c = replay(&edited).unwrap_err();
    assert!(
        c.why
            .contains("activated without the approval of the tenant (policy tenant+peer)"),
        "{}",
        c.why
    );

    // The colleague's approval twice.
    let mut edited = entries.clone();
    let at = edited
        .iter()
        .position(|e| is(e, "grant.approved", &pair.id, "tenant/both"))
        .unwrap();
    edited[at].actor = "staff/bob".into();
    let c = replay(&edited).unwrap_err();
    assert!(c.why.contains("who had already approved it"), "{}", c.why);
}
