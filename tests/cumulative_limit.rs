//! The cumulative access limit (docs/security.md, "Cumulative access
//! limit"): per tenant, at most so much of one person's access in any
//! rolling window. A request beyond it is refused with FAILED_PRECONDITION
//! naming the limit, the usage and the exact time the needed hours free up;
//! asking again then succeeds; the approval checks again; the setting is
//! logged (`tenant.access_limit_set`), rebuilt after a restart, shown by
//! `tenant list`, and the log's rules redo the check.

#![allow(clippy::unwrap_used)]

mod common;

use common::{cli, *};
use daypass::{
    audit::state::{LogState, Rules},
    clock::{Clock, Timestamp},
    identity::PrincipalKind,
    pb,
};
use tonic::Code;

const H: i64 = 3600;

fn round_clock(s: &TestServer) -> Timestamp {
    let t = Timestamp((s.clock.now().millis() / 60_000 + 1) * 60_000);
    s.clock.set(t);
    t
}

async fn set_limit(
    admin: &mut daypass::client::Clients,
    tenant: &str,
    limit_seconds: i64,
    window_seconds: i64,
) -> Result<pb::Tenant, tonic::Status> {
    admin
        .tenants
        .set_tenant_access_limit(pb::SetTenantAccessLimitRequest {
            tenant: tenant.into(),
            limit_seconds,
            window_seconds,
        })
        .await
        .map(|r| r.into_inner())
}

async fn ask(
    c: &mut daypass::client::Clients,
    duration: i64,
    start: Option<Timestamp>,
) -> Result<pb::Grant, tonic::Status> {
    c.grants
        .request_grant(pb::RequestGrantRequest {
            starts_at_ms: start.map_or(0, |t| t.millis()),
            ..grant_request("acme", "INC-5: long-running migration", duration)
        })
        .await
        .map(|r| r.into_inner())
}

fn replay(entries: &[daypass::audit::Entry]) -> Result<(), daypass::audit::state::Contradiction> {
    let mut state = LogState::new(Rules::default());
    entries.iter().try_for_each(|e| state.apply(e))
}

/// 10 h per 48 h. 8 h used from t0; at t0 + 10 h, 4 h more would make
/// 12 h. The window ending with a 4 h grant from x holds at most 6 h of the
/// old one once x - 44 h >= t0 + 2 h: the time frees up at t0 + 46 h.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_beyond_the_limit_is_refused_until_the_exact_free_up_time() {
    let mut s = TestServer::start().await;
    s.add_tenant("acme", pb::ApprovalPolicy::Auto, false).await;
    let mut admin = s.admin().await;
    let mut alice = s.enrol("alice", pb::Role::Support).await;
    let t = set_limit(&mut admin, "acme", 10 * H, 48 * H).await.unwrap();
    assert_eq!(
        (t.access_limit_seconds, t.access_window_seconds),
        (10 * H, 48 * H)
    );
    let t0 = round_clock(&s);

    let g = ask(&mut alice, 8 * H, None).await.unwrap();
    s.clock.set(t0.plus_secs(8 * H));
    s.wait_for("grant.expired", |e| {
        e.entry.kind == "grant.expired" && e.entry.details.get("grant") == Some(&g.id)
    })
    .await;

    s.clock.set(t0.plus_secs(10 * H));
    let e = ask(&mut alice, 4 * H, None).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    let frees = t0.plus_secs(46 * H).to_rfc3339();
    for says in [
        "tenant acme allows one person at most 10 h per 2 d of access",
        "you have used or booked 8 h",
        "4 h more would make 12 h",
        &format!("4 h frees up at {frees}"),
    ] {
        assert!(
            e.message().contains(says),
            "{:?} should say {says:?}",
            e.message()
        );
    }
    // 2 h still fits now (8 + 2 = 10), and is released at once.
    let short = ask(&mut alice, 2 * H, None).await.unwrap();
    release(&mut alice, &short.id).await;
    // Released at once: it used nothing, so 2 h still fit.
    let short = ask(&mut alice, 2 * H, None).await.unwrap();
    release(&mut alice, &short.id).await;

    // A scheduled request from the free-up time is taken now.
    let ahead = ask(&mut alice, 4 * H, Some(t0.plus_secs(46 * H)))
        .await
        .unwrap();
    assert_eq!(ahead.state(), pb::GrantState::Scheduled);
    // ... but one a millisecond earlier is not.
    release(&mut alice, &ahead.id).await;
    let e = ask(
        &mut alice,
        4 * H,
        Some(Timestamp(t0.plus_secs(46 * H).millis() - 1)),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);

    // At the free-up time itself a request for now succeeds; a second before, not.
    s.clock.set(Timestamp(t0.plus_secs(46 * H).millis() - 1000));
    assert!(ask(&mut alice, 4 * H, None).await.is_err());
    s.clock.set(t0.plus_secs(46 * H));
    let g = ask(&mut alice, 4 * H, None).await.unwrap();
    assert_eq!(g.state(), pb::GrantState::Active);

    // Longer than the whole limit: never, and it says what fits.
    release(&mut alice, &g.id).await;
    let e = ask(&mut alice, 11 * H, None).await.unwrap_err();
    assert!(
        e.message().contains("ask for at most 10 h"),
        "{}",
        e.message()
    );

    assert!(s.verify_chain().await.ok);
    let entries: Vec<_> = s.entries().await.into_iter().map(|e| e.entry).collect();
    replay(&entries).unwrap();
    // The log's rules redo the check: with the limit edited lower, the
    // 8 h request contradicts it.
    let mut edited = entries.clone();
    let at = edited
        .iter()
        .position(|e| e.kind == "tenant.access_limit_set")
        .unwrap();
    edited[at]
        .details
        .insert("limit_secs".into(), "3600".into());
    let c = replay(&edited).unwrap_err();
    assert!(c.why.contains("beyond the access limit"), "{}", c.why);

    s.restart().await;
    let mut alice = s.staff("alice").await;
    let e = ask(&mut alice, 11 * H, None).await.unwrap_err();
    assert_eq!(
        e.code(),
        Code::FailedPrecondition,
        "the limit survives a restart"
    );
    assert!(ask(&mut alice, 10 * H, None).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_approval_checks_again_and_a_waiting_request_counts() {
    let s = TestServer::start().await;
    s.add_tenant("acme", pb::ApprovalPolicy::Peer, false).await;
    let mut admin = s.admin().await;
    let mut alice = s.enrol("alice", pb::Role::Support).await;
    let mut bob = s.enrol("bob", pb::Role::Support).await;
    set_limit(&mut admin, "acme", 10 * H, 48 * H).await.unwrap();
    round_clock(&s);

    let g = ask(&mut alice, 6 * H, None).await.unwrap();
    assert_eq!(g.state(), pb::GrantState::Pending);
    // The pending request books its 6 h: no second one beside it (the
    // no-stacking rule refuses it before the limit could be passed).
    let e = ask(&mut alice, 6 * H, None).await.unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists);

    // The limit lowered before the approval: the approval is refused.
    set_limit(&mut admin, "acme", 4 * H, 48 * H).await.unwrap();
    let e = bob
        .grants
        .approve_grant(pb::DecideGrantRequest {
            grant_id: g.id.clone(),
            note: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(
        e.message().contains("cannot approve grant")
            && e.message().contains("at most 4 h per 2 d")
            && e.message().contains("ask for at most 4 h"),
        "{}",
        e.message()
    );
    // Cleared: the approval goes through.
    let t = set_limit(&mut admin, "acme", 0, 0).await.unwrap();
    assert_eq!(t.access_limit_seconds, 0);
    let ok = bob
        .grants
        .approve_grant(pb::DecideGrantRequest {
            grant_id: g.id.clone(),
            note: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ok.state(), pb::GrantState::Active);
    let entries: Vec<_> = s.entries().await.into_iter().map(|e| e.entry).collect();
    replay(&entries).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_setting_is_checked_logged_and_shown() {
    let mut s = TestServer::start().await;
    s.add_tenant("acme", pb::ApprovalPolicy::Auto, false).await;
    let mut admin = s.admin().await;
    for (limit, window, says) in [
        (
            25 * H,
            24 * H,
            "the limit must be between 1 s and the window",
        ),
        (H, 0, "the window must be between 1 h and 366 d"),
        (0, 7 * 24 * H, "the limit must be between 1 s"),
        (-1, H, "the limit must be between 1 s"),
        (H, -H, "the window must be"),
        (H, i64::MAX, "the window must be"),
        (i64::MIN, i64::MIN, "the window must be"),
    ] {
        let e = set_limit(&mut admin, "acme", limit, window)
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{limit} {window}");
        assert!(
            e.message().contains(says),
            "{limit} {window}: {}",
            e.message()
        );
    }
    let e = set_limit(&mut admin, "nope", H, 24 * H).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = set_limit(&mut admin, "Not A Name", H, 24 * H)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    // Only admins.
    let mut alice = s.enrol("alice", pb::Role::Support).await;
    let e = set_limit(&mut alice, "acme", H, 24 * H).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);

    let work = tempfile::tempdir().unwrap();

    let said = cli::assert_ok(
        &run(
            &s,
            work.path(),
            &[
                "tenant",
                "access-limit",
                "acme",
                "--hours",
                "24",
                "--per",
                "7d",
            ],
        )
        .await,
        "access-limit",
    );
    assert!(said.contains("access at most 24 h per 7 d"), "{said}");
    let listed = cli::assert_ok(&run(&s, work.path(), &["tenant", "list"]).await, "list");
    assert!(
        listed.contains("LIMIT") && listed.contains("24 h per 7 d"),
        "{listed}"
    );
    let entries = s.entries().await;
    let set = entries
        .iter()
        .map(|e| &e.entry)
        .rfind(|e| e.kind == "tenant.access_limit_set")
        .unwrap();
    assert_eq!(set.details["limit_secs"], "86400");
    assert_eq!(set.details["window_secs"], "604800");
    assert_eq!(set.actor, format!("staff/{ADMIN}"));
    // A usage error, refused by clap before connecting.
    let out = run(
        &s,
        work.path(),
        &["tenant", "access-limit", "acme", "--hours", "24"],
    )
    .await;
    let err = cli::text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--per"), "{err}");

    s.restart().await;
    let listed = cli::assert_ok(&run(&s, work.path(), &["tenant", "list"]).await, "list");
    assert!(listed.contains("24 h per 7 d"), "kept: {listed}");
    let said = cli::assert_ok(
        &run(
            &s,
            work.path(),
            &["tenant", "access-limit", "acme", "--off"],
        )
        .await,
        "off",
    );
    assert!(!said.contains("access at most"), "{said}");
    let listed = cli::assert_ok(&run(&s, work.path(), &["tenant", "list"]).await, "list");
    assert!(!listed.contains("24 h per 7 d"), "{listed}");
    let entries = s.entries().await;
    let off = entries
        .iter()
        .map(|e| &e.entry)
        .rfind(|e| e.kind == "tenant.access_limit_set")
        .unwrap();
    assert_eq!(
        (
            off.details["limit_secs"].as_str(),
            off.details["window_secs"].as_str()
        ),
        ("0", "0")
    );
    assert!(s.verify_chain().await.ok);
}

async fn run(s: &TestServer, work: &std::path::Path, args: &[&str]) -> std::process::Output {
    let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    all.extend(s.cli_flags(work, PrincipalKind::Staff, ADMIN));
    cli::run_async(work.to_owned(), all).await
}
