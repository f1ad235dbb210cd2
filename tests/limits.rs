//! Per-caller rate limits over real mutual TLS: a flooding tenant is
//! refused with RESOURCE_EXHAUSTED and a retry hint, cheaply and without
//! flooding the log, while another tenant's validations are still served
//! promptly; buckets refill on the (injected) clock.

// Times and waits for real processes and sockets: wall time on purpose.
#![allow(clippy::disallowed_methods)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use daypass::pb::{ApprovalPolicy, Role};
use tonic::Code;

fn limited(c: &mut daypass::config::Config) {
    c.limits.validations_per_second = 20.0;
    c.limits.validation_burst = 20.0;
    c.limits.requests_per_minute = 2.0;
    c.limits.request_burst = 2.0;
}

fn refusals_for(
    entries: &[daypass::audit::SealedEntry],
    actor: &str,
) -> Vec<daypass::audit::SealedEntry> {
    entries
        .iter()
        .filter(|e| {
            e.entry.kind == "call.refused"
                && e.entry.actor == actor
                && e.entry.details.get("code").map(String::as_str) == Some("resource-exhausted")
        })
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_tenant_is_refused_while_another_is_served() {
    let s = TestServer::start_with(limited).await;
    let mut alice = s.enrol("alice", Role::Support).await;
    let acme = s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let mut globex = s.add_tenant("globex", ApprovalPolicy::Auto, false).await;
    let ga = request(&mut alice, "acme", "INC-1").await;
    let gg = request(&mut alice, "globex", "INC-2").await;

    // acme floods from 16 tasks for a while; the clock stands still, so
    // its bucket (20) never refills.
    let flood_until = Instant::now() + Duration::from_millis(1500);
    let mut flood = Vec::new();
    for _ in 0..16 {
        let mut c = acme.clone();
        let id = ga.id.clone();
        flood.push(tokio::spawn(async move {
            let (mut ok, mut refused, mut pushback) = (0u32, 0u32, None);
            while Instant::now() < flood_until {
                match c.grants.validate_grant(validate_request(&id)).await {
                    Ok(_) => ok += 1,
                    Err(st) => {
                        assert_eq!(st.code(), Code::ResourceExhausted, "{}", st.message());
                        assert!(st.message().contains("over its limit"), "{}", st.message());
                        pushback = st
                            .metadata()
                            .get("grpc-retry-pushback-ms")
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned);
                        refused += 1;
                    }
                }
            }
            (ok, refused, pushback)
        }));
    }
    // Meanwhile globex validates, one call at a time: every one served,
    // each well within a one-second deadline.
    let mut slowest = Duration::ZERO;
    let mut served = 0;
    while Instant::now() < flood_until {
        let t = Instant::now();
        let mut req = tonic::Request::new(validate_request(&gg.id));
        req.set_timeout(Duration::from_secs(1));
        let v = globex
            .grants
            .validate_grant(req)
            .await
            .expect("globex is served during the flood")
            .into_inner();
        assert!(v.allowed);
        slowest = slowest.max(t.elapsed());
        served += 1;
        if served == 15 {
            break; // stay inside globex's own limit of 20
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (mut ok, mut refused) = (0, 0);
    for f in flood {
        let (o, r, pushback) = f.await.expect("flood task");
        ok += o;
        refused += r;
        if r > 0 {
            assert_eq!(pushback.as_deref(), Some("50"), "one token per 50 ms");
        }
    }
    assert_eq!(ok, 20, "exactly the burst got through");
    assert!(refused > 100, "the flood was refused: {refused}");
    assert!(served >= 10, "globex was served {served} times");
    assert!(
        slowest < Duration::from_secs(1),
        "slowest globex call {slowest:?}"
    );
    eprintln!(
        "flood: acme {ok} served, {refused} refused; globex {served} served, slowest {slowest:?}"
    );

    // acme's validations are used up, but its access records have a bucket
    // of their own: reports of offline admissions never starve validations,
    // nor the reverse.
    let mut reporting = acme.clone();
    reporting
        .grants
        .record_access(access_request(&ga.id, "ssh", ""))
        .await
        .expect("access records are limited separately");

    // One logged refusal for the whole flood.
    let entries = s.entries().await;
    assert_eq!(refusals_for(&entries, "tenant/acme").len(), 1);

    // The bucket refills with the clock: a second later, 20 more.
    s.clock.advance_secs(1);
    let mut acme = acme.clone();
    for _ in 0..20 {
        validate(&mut acme, &ga.id).await;
    }
    // A minute later the next refusal is logged again, counting the rest.
    s.clock.advance_secs(60);
    for _ in 0..20 {
        validate(&mut acme, &ga.id).await;
    }
    let st = validate_err(&mut acme, &ga.id).await;
    assert_eq!(st.code(), Code::ResourceExhausted);
    let entries = s.entries().await;
    let logged = refusals_for(&entries, "tenant/acme");
    assert_eq!(logged.len(), 2);
    let unlogged: u32 = logged[1].entry.details["unlogged_refusals_before"]
        .parse()
        .unwrap();
    assert_eq!(unlogged, refused - 1, "every refusal is accounted for");
}

#[tokio::test]
async fn grant_requests_are_limited_per_engineer() {
    let s = TestServer::start_with(limited).await;
    let mut alice = s.enrol("alice", Role::Support).await;
    let mut bob = s.enrol("bob", Role::Support).await;
    for t in ["t1", "t2", "t3"] {
        s.add_tenant(t, ApprovalPolicy::Auto, false).await;
    }
    request(&mut alice, "t1", "one").await;
    request(&mut alice, "t2", "two").await;
    let st = alice
        .grants
        .request_grant(grant_request("t3", "three", 0))
        .await
        .unwrap_err();
    assert_eq!(st.code(), Code::ResourceExhausted, "{}", st.message());
    assert_eq!(
        st.metadata()
            .get("grpc-retry-pushback-ms")
            .and_then(|v| v.to_str().ok()),
        Some("30000"),
        "one request per 30 s"
    );
    // Bob has his own bucket.
    request(&mut bob, "t3", "bob's").await;
    // Nothing was granted or stored for the refused call but its refusal.
    let entries = s.entries().await;
    assert!(!entries.iter().any(|e| e.entry.kind == "grant.requested"
        && e.entry.details.get("reason").map(String::as_str) == Some("three")));
    assert_eq!(refusals_for(&entries, "staff/alice").len(), 1);
    s.clock.advance_secs(30);
    request(&mut alice, "t3", "three, later").await;
}

/// A certificate whose holder was offboarded floods the server: every call
/// is refused, yet the log grows by at most the per-principal budget
/// (limits::LOGGED_REFUSAL_BURST while the clock stands still), and the next
/// logged refusal counts exactly the ones that were not logged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_of_a_flooding_certificate_are_counted_not_logged_one_by_one() {
    let s = TestServer::start().await;
    let mut admin = s.admin().await;
    let mallory = s.enrol("mallory", Role::Support).await;
    admin
        .staff
        .offboard_staff(daypass::pb::OffboardStaffRequest {
            name: "mallory".into(),
        })
        .await
        .expect("offboard");
    let before = s.entries().await.len();
    const TASKS: usize = 8;
    const CALLS: usize = 250;
    let mut flood = Vec::new();
    for _ in 0..TASKS {
        let mut c = mallory.clone();
        flood.push(tokio::spawn(async move {
            for _ in 0..CALLS {
                let st = c
                    .staff
                    .who_am_i(daypass::pb::WhoAmIRequest {})
                    .await
                    .expect_err("an offboarded certificate is refused");
                assert_eq!(st.code(), Code::PermissionDenied);
            }
        }));
    }
    for t in flood {
        t.await.expect("flood task");
    }
    let total = (TASKS * CALLS) as u64;
    let entries = s.entries().await;
    let logged: Vec<_> = entries[before..]
        .iter()
        .filter(|e| e.entry.kind == "call.refused" && e.entry.actor == "staff/mallory")
        .collect();
    let burst = daypass::limits::LOGGED_REFUSAL_BURST as usize;
    assert_eq!(logged.len(), burst, "{} refusals logged", logged.len());
    // Everything else the log gained is the test's own reads.
    let grown = entries.len() - before;
    assert!(grown <= burst + 4, "the log grew by {grown} entries");

    // A minute later one more refusal is logged, with the exact count.
    s.clock.advance_secs(60);
    let mut c = mallory.clone();
    c.staff
        .who_am_i(daypass::pb::WhoAmIRequest {})
        .await
        .expect_err("still refused");
    let next = s
        .wait_for("the next logged refusal", |e| {
            e.entry.kind == "call.refused"
                && e.entry.actor == "staff/mallory"
                && e.entry.details.contains_key("unlogged_refusals_before")
        })
        .await;
    assert_eq!(
        next.entry.details["unlogged_refusals_before"],
        (total - burst as u64).to_string()
    );
}
