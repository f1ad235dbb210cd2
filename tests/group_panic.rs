//! A panic while the store writes a group (a bug, injected with
//! `Faults::panic_in_group_writes`) fails that group's calls with
//! UNAVAILABLE and nothing else: no gap, no half-written group, and the next
//! calls are served. (Its own test binary: the hook is process-wide.)

mod common;

use common::*;
use daypass::pb::{ApprovalPolicy, Role};
use tonic::Code;

#[tokio::test]
async fn a_panic_in_a_group_write_fails_only_that_group() {
    let mut s = TestServer::start().await;
    let mut alice = s.enrol("alice", Role::Support).await;
    let mut acme = s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let g = request(&mut alice, "acme", "INC-1").await;
    let before = s.entries().await;

    s.faults.panic_in_group_writes(true);
    let st = validate_err(&mut acme, &g.id).await;
    s.faults.panic_in_group_writes(false);
    assert_eq!(st.code(), Code::Unavailable, "{}", st.message());

    // The next calls are served and the log has no gap and nothing of the
    // failed call.
    assert!(validate(&mut acme, &g.id).await.allowed);
    let after = s.entries().await;
    assert_eq!(&after[..before.len()], &before[..]);
    for (i, e) in after.iter().enumerate() {
        assert_eq!(e.entry.seq, i as u64, "no gap");
    }
    let validations = after[before.len()..]
        .iter()
        .filter(|e| e.entry.kind == "validation.allowed")
        .count();
    assert_eq!(validations, 1, "only the served validation");
    let report = s.verify_chain().await;
    assert!(report.ok, "{}", report.problem);
    // And the same from disk.
    s.restart().await;
    let report = s.verify_chain().await;
    assert!(report.ok, "{}", report.problem);
}
