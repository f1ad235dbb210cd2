//! Scheduled grants (docs/security.md, "Scheduled grants"): a request for a
//! window that starts later, approved ahead, refused by ValidateGrant before
//! its start (`not_yet_active`), admitting from the start millisecond on,
//! activated at its start by the sweeper (or by the first call that meets
//! it due), expiring its duration (at most 24 h) after the start; the start
//! bounds, the pending TTL, approval after the start, revocation, a restart
//! in between and a long stop, the command line, and the log's rules.

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

/// Moves the test clock to the next whole minute and returns it.
fn round_clock(s: &TestServer) -> Timestamp {
    let t = Timestamp((s.clock.now().millis() / 60_000 + 1) * 60_000);
    s.clock.set(t);
    t
}

fn scheduled(tenant: &str, start: Timestamp, duration_seconds: i64) -> pb::RequestGrantRequest {
    pb::RequestGrantRequest {
        starts_at_ms: start.millis(),
        ..grant_request(tenant, "CHG-7: database upgrade", duration_seconds)
    }
}

async fn ask(
    c: &mut daypass::client::Clients,
    r: pb::RequestGrantRequest,
) -> Result<pb::Grant, tonic::Status> {
    c.grants.request_grant(r).await.map(|r| r.into_inner())
}

async fn approve(c: &mut daypass::client::Clients, id: &str) -> Result<pb::Grant, tonic::Status> {
    c.grants
        .approve_grant(pb::DecideGrantRequest {
            grant_id: id.into(),
            note: String::new(),
        })
        .await
        .map(|r| r.into_inner())
}

fn of<'a>(
    entries: &'a [daypass::audit::SealedEntry],
    kind: &str,
    id: &str,
) -> Vec<&'a daypass::audit::Entry> {
    entries
        .iter()
        .map(|e| &e.entry)
        .filter(|e| e.kind == kind && e.details.get("grant").map(String::as_str) == Some(id))
        .collect()
}

fn replay(entries: &[daypass::audit::Entry]) -> Result<(), daypass::audit::state::Contradiction> {
    let mut state = LogState::new(Rules::default());
    entries.iter().try_for_each(|e| state.apply(e))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approved_ahead_it_admits_from_its_start_second_and_expires_its_duration_later() {
    let mut s = TestServer::start().await;
    let mut acme = s.add_tenant("acme", pb::ApprovalPolicy::Peer, false).await;
    let mut alice = s.enrol("alice", pb::Role::Support).await;
    let mut bob = s.enrol("bob", pb::Role::Support).await;
    let t0 = round_clock(&s);
    let start = t0.plus_secs(2 * H);

    let g = ask(&mut alice, scheduled("acme", start, 4 * H))
        .await
        .unwrap();
    assert_eq!(g.state(), pb::GrantState::Pending);
    assert_eq!(g.starts_at_ms, start.millis());
    assert_eq!(
        g.pending_until_ms,
        t0.plus_secs(H).millis(),
        "the pending TTL as ever"
    );
    // Another request while it waits: the no-stacking rule counts it.
    let e = ask(&mut alice, grant_request("acme", "INC-1", 0))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists, "{e:?}");

    // Approved ahead: scheduled, no token, no expiry yet.
    let g = approve(&mut bob, &g.id).await.unwrap();
    assert_eq!(g.state(), pb::GrantState::Scheduled);
    assert_eq!(
        (g.expires_at_ms, g.activated_at_ms, g.pending_until_ms),
        (0, 0, 0)
    );
    let mine = get_grant(&mut alice, &g.id).await;
    assert!(mine.token.is_empty(), "no token before the start");
    let key = rcgen::KeyPair::generate().unwrap();
    let csr = rcgen::CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .serialize_request(&key)
        .unwrap()
        .pem()
        .unwrap();
    let cert = alice
        .grants
        .issue_grant_certificate(pb::IssueGrantCertificateRequest {
            grant_id: g.id.clone(),
            csr_pem: csr,
        })
        .await
        .unwrap_err();
    assert_eq!(cert.code(), Code::FailedPrecondition);
    assert!(
        cert.message().contains("not_yet_active"),
        "{}",
        cert.message()
    );

    // Refused until the last millisecond before the start.
    let v = validate(&mut acme, &g.id).await;
    assert!(!v.allowed);
    assert_eq!(deny_reason(&v), pb::DenyReason::NotYetActive);
    s.clock.set(Timestamp(start.millis() - 1));
    let v = validate(&mut acme, &g.id).await;
    assert_eq!(deny_reason(&v), pb::DenyReason::NotYetActive);

    // At the start it admits, whoever writes the activation first.
    s.clock.set(start);
    let v = validate(&mut acme, &g.id).await;
    assert!(v.allowed, "{v:?}");
    assert_eq!(v.expires_at_ms, start.plus_secs(4 * H).millis());
    let active = get_grant(&mut alice, &g.id).await;
    assert_eq!(active.state(), pb::GrantState::Active);
    assert_eq!(active.activated_at_ms, start.millis());
    assert!(!active.token.is_empty(), "a token once active");

    let entries = s.entries().await;
    let activated = of(&entries, "grant.activated", &g.id);
    assert_eq!(activated.len(), 1, "activated once");
    assert_eq!(activated[0].details["activated_at"], start.to_string());
    assert_eq!(
        activated[0].details["expires_at"],
        start.plus_secs(4 * H).to_string()
    );
    assert!(activated[0].timestamp >= start);
    let sched = of(&entries, "grant.scheduled", &g.id);
    assert_eq!(sched.len(), 1);
    assert_eq!(sched[0].details["starts_at"], start.to_string());
    assert_eq!(sched[0].actor, "staff/bob");

    // Expires its duration after the start, not after the approval.
    s.clock.set(start.plus_secs(4 * H));
    let expired = s
        .wait_for("grant.expired", |e| {
            e.entry.kind == "grant.expired" && e.entry.details.get("grant") == Some(&g.id)
        })
        .await;
    assert_eq!(
        expired.entry.details["expired_at"],
        start.plus_secs(4 * H).to_string()
    );
    let v = validate(&mut acme, &g.id).await;
    assert_eq!(deny_reason(&v), pb::DenyReason::Expired);

    assert!(s.verify_chain().await.ok);
    let entries: Vec<_> = s.entries().await.into_iter().map(|e| e.entry).collect();
    replay(&entries).unwrap();
    s.restart().await;
    let after = get_grant(&mut s.staff("alice").await, &g.id).await;
    assert_eq!(after.state(), pb::GrantState::Expired);
    assert_eq!(after.starts_at_ms, start.millis());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweeper_activates_at_the_start_and_a_restart_in_between_keeps_it() {
    let mut s = TestServer::start().await;
    s.add_tenant("acme", pb::ApprovalPolicy::Auto, false).await;
    let mut alice = s.enrol("alice", pb::Role::Support).await;
    let t0 = round_clock(&s);
    let start = t0.plus_secs(H);
    let g = ask(&mut alice, scheduled("acme", start, 2 * H))
        .await
        .unwrap();
    // Auto: scheduled at once.
    assert_eq!(g.state(), pb::GrantState::Scheduled);

    // A restart before the start keeps it scheduled.
    s.restart().await;
    let mut acme = s.tenant("acme").await;
    let v = validate(&mut acme, &g.id).await;
    assert_eq!(deny_reason(&v), pb::DenyReason::NotYetActive);

    // The sweeper writes the activation at the start, unasked.
    s.clock.set(start);
    let a = s
        .wait_for("grant.activated", |e| {
            e.entry.kind == "grant.activated" && e.entry.details.get("grant") == Some(&g.id)
        })
        .await;
    assert_eq!(a.entry.details["activated_at"], start.to_string());
    assert_eq!(a.entry.actor, "system");
    let mut alice = s.staff("alice").await;
    let active = get_grant(&mut alice, &g.id).await;
    assert_eq!(active.state(), pb::GrantState::Active);
    assert_eq!(active.expires_at_ms, start.plus_secs(2 * H).millis());

    // A second scheduled grant, then a stop past its whole window: at
    // start-up the log gets its activation at the start and its expiry.
    release(&mut alice, &g.id).await;
    let start2 = start.plus_secs(3 * H);
    let g2 = ask(&mut alice, scheduled("acme", start2, H)).await.unwrap();
    s.stop().await;
    s.clock.set(start2.plus_secs(5 * H));
    s.start_again().await;
    let entries = s.entries().await;
    let a = of(&entries, "grant.activated", &g2.id);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].details["activated_at"], start2.to_string());
    let x = of(&entries, "grant.expired", &g2.id);
    assert_eq!(x.len(), 1);
    assert_eq!(x[0].details["expired_at"], start2.plus_secs(H).to_string());
    assert!(s.verify_chain().await.ok);
    let entries: Vec<_> = entries.into_iter().map(|e| e.entry).collect();
    replay(&entries).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_are_bounded_and_the_pending_ttl_and_endings_apply() {
    let s = TestServer::start().await;
    s.add_tenant("acme", pb::ApprovalPolicy::Peer, false).await;
    let mut admin = s.admin().await;
    let mut alice = s.enrol("alice", pb::Role::Support).await;
    let mut bob = s.enrol("bob", pb::Role::Support).await;
    let t0 = round_clock(&s);

    // In the past beyond the skew, or too far ahead: refused, saying the bound.
    let e = ask(
        &mut alice,
        scheduled("acme", Timestamp(t0.millis() - 61_000), H),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().contains("is in the past") && e.message().contains("at most 60 s ago"),
        "{}",
        e.message()
    );
    let e = ask(
        &mut alice,
        scheduled("acme", t0.plus_secs(30 * 24 * H + 1), H),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().contains("more than 30 days ahead"),
        "{}",
        e.message()
    );
    // Exactly 30 days ahead is fine; within the skew it means now.
    let far = ask(&mut alice, scheduled("acme", t0.plus_secs(30 * 24 * H), H))
        .await
        .unwrap();
    assert_eq!(far.starts_at_ms, t0.plus_secs(30 * 24 * H).millis());
    release(&mut alice, &far.id).await;
    let now = ask(
        &mut alice,
        scheduled("acme", Timestamp(t0.millis() - 30_000), H),
    )
    .await
    .unwrap();
    assert_eq!(now.starts_at_ms, 0, "a start within the skew is now");
    release(&mut alice, &now.id).await;

    // Not approved within the pending TTL: the request expires, even
    // though its start is later still.
    let g = ask(&mut alice, scheduled("acme", t0.plus_secs(3 * H), H))
        .await
        .unwrap();
    s.clock.advance_secs(s.config.grants.pending_ttl_secs);
    let e = approve(&mut bob, &g.id).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(
        // The sweeper may have closed it already.
        e.message().contains("expired unapproved") || e.message().contains("request-expired"),
        "{}",
        e.message()
    );
    s.wait_for("grant.request_expired", |e| {
        e.entry.kind == "grant.request_expired" && e.entry.details.get("grant") == Some(&g.id)
    })
    .await;

    // Approved after its start: active from the approval for its duration.
    let t1 = s.clock.now();
    let g = ask(&mut alice, scheduled("acme", t1.plus_secs(600), H))
        .await
        .unwrap();
    s.clock.advance_secs(1200);
    let approved = approve(&mut bob, &g.id).await.unwrap();
    assert_eq!(approved.state(), pb::GrantState::Active);
    assert_eq!(approved.activated_at_ms, t1.plus_secs(1200).millis());
    assert_eq!(approved.expires_at_ms, t1.plus_secs(1200 + H).millis());
    release(&mut alice, &g.id).await;

    // Revoked or released while scheduled: never active.
    let t2 = s.clock.now();
    let g = ask(&mut alice, scheduled("acme", t2.plus_secs(H), H))
        .await
        .unwrap();
    approve(&mut bob, &g.id).await.unwrap();
    let revoked = revoke(&mut admin, &g.id, "window cancelled").await;
    assert_eq!(revoked.state(), pb::GrantState::Revoked);
    assert_eq!(revoked.activated_at_ms, 0);
    s.clock.advance_secs(H);
    let mut acme = s.tenant("acme").await;
    assert_eq!(
        deny_reason(&validate(&mut acme, &g.id).await),
        pb::DenyReason::Revoked
    );
    let g = ask(&mut alice, scheduled("acme", s.clock.now().plus_secs(H), H))
        .await
        .unwrap();
    approve(&mut bob, &g.id).await.unwrap();
    assert_eq!(
        release(&mut alice, &g.id).await.state(),
        pb::GrantState::Released
    );

    // Offboarding ends a scheduled grant too.
    let g = ask(&mut alice, scheduled("acme", s.clock.now().plus_secs(H), H))
        .await
        .unwrap();
    approve(&mut bob, &g.id).await.unwrap();
    admin
        .staff
        .offboard_staff(pb::OffboardStaffRequest {
            name: "alice".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        get_grant(&mut admin, &g.id).await.state(),
        pb::GrantState::Revoked
    );
    assert!(s.verify_chain().await.ok);
    let entries: Vec<_> = s.entries().await.into_iter().map(|e| e.entry).collect();
    replay(&entries).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_asks_for_a_start_and_shows_it() {
    let s = TestServer::start().await;
    s.add_tenant("acme", pb::ApprovalPolicy::Peer, false).await;
    s.enrol("alice", pb::Role::Support).await;
    s.enrol("bob", pb::Role::Support).await;
    let t0 = round_clock(&s);
    let start = t0.plus_secs(2 * H);
    let work = tempfile::tempdir().unwrap();
    let run = |who: &str, args: &[&str]| {
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        all.extend(s.cli_flags(work.path(), PrincipalKind::Staff, who));
        cli::run_async(work.path().to_owned(), all)
    };
    let at = start.to_rfc3339();
    let out = run(
        "alice",
        &[
            "grant",
            "request",
            "acme",
            "--reason",
            "CHG-7",
            "--start",
            &at,
            "--duration",
            "4h",
        ],
    )
    .await;
    let said = cli::assert_ok(&out, "request");
    assert!(
        said.contains("pending approval") && said.contains("starts at"),
        "{said}"
    );
    let q = cli::assert_ok(&run("bob", &["grant", "pending"]).await, "pending");
    assert!(
        q.contains("STARTS") && q.contains(&daypass_time(start)),
        "{q}"
    );
    let id = q
        .split_whitespace()
        .find(|w| w.starts_with("g-"))
        .unwrap()
        .to_string();
    let said = cli::assert_ok(&run("bob", &["grant", "approve", &id]).await, "approve");
    assert!(said.contains("is scheduled to start at"), "{said}");
    let listed = cli::assert_ok(&run("alice", &["grant", "list"]).await, "list");
    assert!(
        listed.contains("scheduled") && listed.contains(&daypass_time(start)),
        "{listed}"
    );
    let out = run(
        "alice",
        &[
            "grant", "request", "acme", "--reason", "x", "--start", "tomorrow",
        ],
    )
    .await;
    let err = cli::text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "refused before connecting: {err}"
    );
    assert!(err.contains("2026-12-05T22:00:00Z"), "{err}");
}

/// How the CLI prints a time.
fn daypass_time(t: Timestamp) -> String {
    let s = t.to_rfc3339();
    // The tables print seconds precision; match on the minute.
    s[..16].to_string()
}

/// The log's rules: a scheduled grant's activation before its start, or
/// for longer than its duration from the start, is a contradiction; so is
/// a validation that admits a scheduled grant no entry activated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_logs_rules_hold_scheduled_grants_to_their_start() {
    let s = TestServer::start().await;
    let mut acme = s.add_tenant("acme", pb::ApprovalPolicy::Auto, false).await;
    let mut alice = s.enrol("alice", pb::Role::Support).await;
    let t0 = round_clock(&s);
    let start = t0.plus_secs(H);
    let g = ask(&mut alice, scheduled("acme", start, 2 * H))
        .await
        .unwrap();
    s.clock.set(start);
    assert!(validate(&mut acme, &g.id).await.allowed);
    let entries: Vec<_> = s.entries().await.into_iter().map(|e| e.entry).collect();
    replay(&entries).unwrap();
    let at = entries
        .iter()
        .position(|e| e.kind == "grant.activated" && e.details.get("grant") == Some(&g.id))
        .unwrap();

    let mut early = entries.clone();
    early[at]
        .details
        .insert("activated_at".into(), t0.plus_secs(1800).to_string());
    let c = replay(&early).unwrap_err();
    assert_eq!(c.seq, early[at].seq);
    assert!(c.why.contains("scheduled to start at"), "{}", c.why);

    let mut long = entries.clone();
    long[at]
        .details
        .insert("expires_at".into(), start.plus_secs(25 * H).to_string());
    let c = replay(&long).unwrap_err();
    assert!(
        c.why.contains("not for its 7200 s from its start"),
        "{}",
        c.why
    );

    // The activation gone: the validation admitted a grant only scheduled.
    let mut gone = entries.clone();
    gone[at].kind = "grant.not_a_kind".into();
    let c = replay(&gone).unwrap_err();
    assert!(c.why.contains("scheduled, never activated"), "{}", c.why);

    // A start not later than its request.
    let req = entries
        .iter()
        .position(|e| e.kind == "grant.requested" && e.details.get("grant") == Some(&g.id))
        .unwrap();
    let mut back = entries.clone();
    let when = back[req].timestamp.to_string();
    back[req].details.insert("starts_at".into(), when);
    let c = replay(&back).unwrap_err();
    assert!(c.why.contains("not later than its request"), "{}", c.why);
}

/// Eligibility that lapses between the approval and the start
/// (`staff.recertify_days`): the grant is revoked at its start instead of
/// activating, with the cause, and never admits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_whose_eligibility_lapsed_before_the_start_is_not_activated() {
    let s = TestServer::start_with(|c| c.staff.recertify_days = 1).await;
    let mut acme = s.add_tenant("acme", pb::ApprovalPolicy::Auto, false).await;
    let mut alice = s.enrol("alice", pb::Role::Support).await;
    let t0 = round_clock(&s);
    let start = t0.plus_secs(2 * 24 * H);
    let g = ask(&mut alice, scheduled("acme", start, H)).await.unwrap();
    assert_eq!(g.state(), pb::GrantState::Scheduled);
    s.clock.set(start);
    let v = validate(&mut acme, &g.id).await;
    assert!(!v.allowed);
    assert_eq!(deny_reason(&v), pb::DenyReason::Revoked);
    let entries = s.entries().await;
    assert!(of(&entries, "grant.activated", &g.id).is_empty());
    let revoked = of(&entries, "grant.revoked", &g.id);
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0].details["cause"], "eligibility lapsed");
    assert_eq!(revoked[0].actor, "system");
    assert!(s.verify_chain().await.ok);
    let entries: Vec<_> = entries.into_iter().map(|e| e.entry).collect();
    replay(&entries).unwrap();
}
