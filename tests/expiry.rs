//! Expiry against the injected clock: a grant is valid one millisecond
//! before its expiry and never at it; the sweeper logs `grant.expired` once;
//! grants that expired while the server was down are logged at start-up.

mod common;

use common::*;
use daypass::pb::{self, ApprovalPolicy, DenyReason, Role};

#[tokio::test]
async fn valid_until_the_last_second_and_expired_logged_once() {
    let s = TestServer::start().await;
    let mut alice = s.enrol("alice", Role::Support).await;
    let mut acme = s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let g = request_lasting(&mut alice, "acme", "INC-1", 7200).await;

    s.clock.advance_secs(7199);
    let v = validate(&mut acme, &g.id).await;
    assert!(v.allowed, "valid at expiry - 1 s");
    assert_eq!(v.expires_at_ms, g.expires_at_ms);
    s.clock.advance_millis(999);
    assert!(
        validate(&mut acme, &g.id).await.allowed,
        "valid at expiry - 1 ms"
    );
    s.clock.advance_millis(1);
    let v = validate(&mut acme, &g.id).await;
    assert!(!v.allowed, "denied at expiry");
    assert_eq!(deny_reason(&v), DenyReason::Expired);

    let e = s
        .wait_for("grant.expired", |e| e.entry.kind == "grant.expired")
        .await;
    assert_eq!(e.entry.details["grant"], g.id);
    assert_eq!(e.entry.actor, "system");
    assert_eq!(
        e.entry.details["expired_at"].as_str(),
        daypass::clock::Timestamp(g.expires_at_ms)
            .to_rfc3339()
            .as_str(),
        "expired_at is the deadline"
    );

    // Time goes on, more calls come: still exactly one expiry entry.
    s.clock.advance_secs(86_400);
    assert!(!validate(&mut acme, &g.id).await.allowed);
    let n = s
        .entries()
        .await
        .iter()
        .filter(|e| e.entry.kind == "grant.expired")
        .count();
    assert_eq!(n, 1);
    let shown = get_grant(&mut alice, &g.id).await;
    assert_eq!(shown.state, pb::GrantState::Expired as i32);
    // The holder may ask again once it has expired.
    request(&mut alice, "acme", "INC-2").await;
}

#[tokio::test]
async fn the_sweeper_closes_grants_in_deadline_order() {
    let s = TestServer::start().await;
    let mut alice = s.enrol("alice", Role::Support).await;
    s.add_tenant("short", ApprovalPolicy::Auto, false).await;
    s.add_tenant("long", ApprovalPolicy::Auto, false).await;
    let mk = |tenant: &str, secs: i64| grant_request(tenant, "INC", secs);
    let long = alice
        .grants
        .request_grant(mk("long", 7200))
        .await
        .unwrap()
        .into_inner();
    let short = alice
        .grants
        .request_grant(mk("short", 60))
        .await
        .unwrap()
        .into_inner();
    s.clock.advance_secs(60);
    s.wait_for("short expired", |e| {
        e.entry.kind == "grant.expired" && e.entry.details.get("grant") == Some(&short.id)
    })
    .await;
    let live = get_grant(&mut alice, &long.id).await;
    assert_eq!(
        live.state,
        pb::GrantState::Active as i32,
        "the later grant is untouched"
    );
    s.clock.advance_secs(7140);
    s.wait_for("long expired", |e| {
        e.entry.kind == "grant.expired" && e.entry.details.get("grant") == Some(&long.id)
    })
    .await;
}

#[tokio::test]
async fn grants_that_expired_while_the_server_was_down_are_logged_at_start_up() {
    let mut s = TestServer::start().await;
    let mut alice = s.enrol("alice", Role::Support).await;
    s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let g = request(&mut alice, "acme", "INC-1").await;
    drop(alice);
    s.stop().await;
    s.clock.advance_secs(25 * 3600);
    s.start_again().await;

    let entries = s.entries().await;
    let k = kinds(&entries);
    let stopped = k
        .iter()
        .rposition(|k| *k == "server.stopped")
        .expect("stop logged");
    assert_eq!(
        &k[stopped..stopped + 3],
        &["server.stopped", "grant.expired", "server.started"],
        "the expiry is written at start-up, before serving"
    );
    let e = &entries[stopped + 1];
    assert_eq!(e.entry.details["grant"], g.id);
    assert_eq!(
        e.entry.details["expired_at"],
        daypass::clock::Timestamp(g.expires_at_ms).to_rfc3339(),
        "the entry says when it really expired"
    );
}

#[tokio::test]
async fn log_timestamps_never_go_backwards_even_if_the_clock_does() {
    let s = TestServer::start().await;
    let mut alice = s.enrol("alice", Role::Support).await;
    let mut acme = s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let g = request(&mut alice, "acme", "INC-1").await;
    s.clock.advance_secs(-3600);
    validate(&mut acme, &g.id).await;
    let entries = s.entries().await;
    assert!(
        entries
            .windows(2)
            .all(|w| w[0].entry.timestamp <= w[1].entry.timestamp),
        "timestamps are monotonic"
    );
    let last_validation = entries
        .iter()
        .rfind(|e| e.entry.kind.starts_with("validation."))
        .expect("validation logged");
    assert_eq!(last_validation.entry.timestamp.millis(), g.requested_at_ms);
}
