//! A bug that panics in a handler fails only its own call: the caller gets
//! INTERNAL with a fixed message (never the panic's text), the same
//! connection goes on serving, calls in flight beside it complete, a panic
//! while the store's writer lock is held wedges nothing, nothing of the
//! failed calls is logged, and the server stops cleanly afterwards.
//! (Process-wide fault injection: this file holds one test on purpose.)

mod common;

use std::time::Duration;

use common::*;
use daypass::{
    pb::{self, ApprovalPolicy, Role},
    server::PANIC_MESSAGE,
};
use tonic::{Code, Status};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_fails_only_its_call() {
    let mut s = TestServer::start().await;
    let mut alice = s.enrol("alice", Role::Support).await;
    let mut acme = s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    s.add_tenant("globex", ApprovalPolicy::Auto, false).await;
    let g = request(&mut alice, "acme", "INC-1").await;
    let before = s.entries().await;

    s.faults.panic_in_handlers(true);
    for _ in 0..3 {
        assert_internal(&validate_err(&mut acme, &g.id).await);
    }
    // The same client, on the same connection, is still served.
    let who = acme
        .staff
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .expect("the connection survives a panicking call")
        .into_inner();
    assert_eq!(who.name, "acme");
    // Calls in flight beside panicking ones, on the one connection, complete.
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..32 {
        let mut c = acme.clone();
        let id = g.id.clone();
        calls.spawn(async move {
            if i % 2 == 0 {
                Err(validate_err(&mut c, &id).await)
            } else {
                c.staff
                    .who_am_i(pb::WhoAmIRequest {})
                    .await
                    .map(|r| r.into_inner().name)
            }
        });
    }
    let (mut panicked, mut served) = (0, 0);
    while let Some(r) = calls.join_next().await {
        match r.expect("the call task ran") {
            Ok(name) => {
                assert_eq!(name, "acme");
                served += 1;
            }
            Err(st) => {
                assert_internal(&st);
                panicked += 1;
            }
        }
    }
    assert_eq!((panicked, served), (16, 16));
    s.faults.panic_in_handlers(false);
    assert!(
        validate(&mut acme, &g.id).await.allowed,
        "the same handler works again"
    );

    // A panic while the store's writer lock is held: the lock is released
    // as the panic unwinds, so later writes neither wedge nor fail.
    s.faults.panic_under_writer_lock(true);
    assert_internal(&validate_err(&mut acme, &g.id).await);
    s.faults.panic_under_writer_lock(false);
    let allowed = tokio::time::timeout(Duration::from_secs(5), validate(&mut acme, &g.id))
        .await
        .expect("a write after the panic is not wedged");
    assert!(allowed.allowed);
    let other = tokio::time::timeout(
        Duration::from_secs(5),
        request(&mut alice, "globex", "after the panics"),
    )
    .await
    .expect("a grant request after the panic is not wedged");

    // Only the calls that succeeded are in the log, in order, and the
    // chain and tree verify.
    let after = s.entries().await;
    assert_eq!(&after[..before.len()], &before[..]);
    // (Reading the log adds an `audit.read`, and a `call.refused` for the
    // reader's repeated enrolment.)
    let new: Vec<&str> = kinds(&after[before.len()..])
        .into_iter()
        .filter(|k| !matches!(*k, "audit.read" | "call.refused"))
        .collect();
    assert_eq!(
        new,
        [
            "validation.allowed",
            "validation.allowed",
            "grant.requested",
            "grant.activated",
        ],
        "the panicked calls left nothing behind"
    );
    assert!(
        after
            .iter()
            .any(|e| e.entry.details.get("grant") == Some(&other.id))
    );
    let report = s.verify_chain().await;
    assert!(report.ok, "{}", report.problem);

    // The server task never panicked and stops cleanly.
    s.stop().await;
}

/// The answer to a call whose handler panicked.
fn assert_internal(st: &Status) {
    assert_eq!(st.code(), Code::Internal, "{st:?}");
    assert_eq!(st.message(), PANIC_MESSAGE);
    assert!(
        !format!("{st:?}").contains("hunter2"),
        "the panic's text is not sent: {st:?}"
    );
}
