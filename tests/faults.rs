//! Fail closed, stay up: while the store cannot write, every call that
//! must be logged fails with UNAVAILABLE (a tenant gets no "allowed"), no
//! state changes without its entry, reads still work, and the server
//! recovers by itself when writes work again. (Process-wide fault
//! injection: this file holds one test on purpose.) The switches fail
//! writes above sled; a real full disk, which sled itself remembers, is
//! `tests/disk_full.rs`.

mod common;

use common::*;
use daypass::pb::{self, ApprovalPolicy, Role};
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_fail_closed_and_the_server_recovers() {
    let s = TestServer::start().await;
    let mut alice = s.enrol("alice", Role::Support).await;
    let mut acme = s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    s.add_tenant("globex", ApprovalPolicy::Auto, false).await;
    let g = request(&mut alice, "acme", "INC-1").await;
    let before = s.entries().await;

    s.faults.fail_writes(true);
    let st = validate_err(&mut acme, &g.id).await;
    assert_eq!(st.code(), Code::Unavailable, "{}", st.message());
    assert!(
        st.message().contains("nothing was changed"),
        "{}",
        st.message()
    );
    assert!(
        !st.message().contains("injected"),
        "storage details are not leaked"
    );
    let st = alice
        .grants
        .request_grant(grant_request("globex", "during the fault", 0))
        .await
        .unwrap_err();
    assert_eq!(st.code(), Code::Unavailable);
    let st = alice
        .grants
        .release_grant(pb::ReleaseGrantRequest {
            grant_id: g.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(st.code(), Code::Unavailable);
    // Reads that need no log entry still work; refusals cannot be logged,
    // so they too fail closed.
    let mine = get_grant(&mut alice, &g.id).await;
    assert_eq!(
        mine.state,
        pb::GrantState::Active as i32,
        "the release did not happen"
    );
    let st = acme
        .staff
        .list_staff(pb::ListStaffRequest {})
        .await
        .unwrap_err();
    assert_eq!(
        st.code(),
        Code::Unavailable,
        "a refusal that cannot be logged"
    );

    // Writes work again: the server goes on by itself, from where it was.
    s.faults.fail_writes(false);
    let v = validate(&mut acme, &g.id).await;
    assert!(v.allowed);
    let other = request(&mut alice, "globex", "after the fault").await;
    let after = s.entries().await;
    assert_eq!(
        &after[..before.len()],
        &before[..],
        "nothing before the fault changed"
    );
    let new: Vec<_> = after[before.len()..].iter().collect();
    assert_eq!(
        new[0].entry.seq,
        before.len() as u64,
        "no gap where the fault was"
    );
    assert!(
        !new.iter()
            .any(|e| e.entry.details.get("reason").map(String::as_str) == Some("during the fault")),
        "nothing of the failed calls was kept"
    );
    assert!(
        new.iter()
            .any(|e| e.entry.details.get("grant") == Some(&other.id))
    );
    let report = s.verify_chain().await;
    assert!(report.ok, "{}", report.problem);
    // And after a restart too.
    let mut s = s;
    s.restart().await;
    let mut acme = s.tenant("acme").await;
    assert!(validate(&mut acme, &g.id).await.allowed);

    // A flush that fails after its transaction: sled cannot take the group
    // back, so the store refuses every further write until a flush of that
    // group succeeds; then it recovers by itself, without a restart.
    let durable = s.entries().await;
    s.faults.fail_flushes(true);
    let st = validate_err(&mut acme, &g.id).await;
    assert_eq!(st.code(), Code::Unavailable);
    let st = validate_err(&mut acme, &g.id).await;
    assert_eq!(
        st.code(),
        Code::Unavailable,
        "still refused while flushes fail: fail closed"
    );
    let mut alice = s.staff("alice").await;
    let st = alice
        .grants
        .release_grant(pb::ReleaseGrantRequest {
            grant_id: g.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(st.code(), Code::Unavailable);
    // The disk works again: the next call retries the failed group's flush
    // and is served.
    s.faults.fail_flushes(false);
    assert!(validate(&mut acme, &g.id).await.allowed);
    let report = s.verify_chain().await;
    assert!(report.ok, "{}", report.problem);
    let recovered = s.entries().await;
    assert_eq!(
        &recovered[..durable.len()],
        &durable[..],
        "the durable log is intact"
    );
    // The failed group may be in the log (its callers were told it
    // failed): at most the first refused validation's entry, beside the
    // served one; nothing of the calls refused while the store was
    // poisoned (the release).
    let extra = &recovered[durable.len()..];
    let validations = extra
        .iter()
        .filter(|e| e.entry.kind == "validation.allowed")
        .count();
    assert!(
        (1..=2).contains(&validations),
        "the served validation, and at most the one whose flush failed: {extra:?}"
    );
    assert!(
        !extra.iter().any(|e| e.entry.kind == "grant.released"),
        "{extra:?}"
    );
    // A restart reads the same log from disk.
    s.restart().await;
    let mut acme = s.tenant("acme").await;
    assert!(validate(&mut acme, &g.id).await.allowed);
    let after = s.entries().await;
    assert_eq!(
        &after[..recovered.len()],
        &recovered[..],
        "all of it was on disk"
    );
    let report = s.verify_chain().await;
    assert!(report.ok, "{}", report.problem);

    // A stop while flushes fail cannot be logged, and says so; the next
    // start reads what is on disk and writes again.
    s.faults.fail_flushes(true);
    let stopped = s.stop_reporting().await;
    s.faults.fail_flushes(false);
    assert!(
        matches!(&stopped, Err(e) if e.to_string().contains("the stop could not be logged")),
        "{stopped:?}"
    );
    s.start_again().await;
    let mut acme = s.tenant("acme").await;
    assert!(validate(&mut acme, &g.id).await.allowed);
    let report = s.verify_chain().await;
    assert!(report.ok, "{}", report.problem);

    // A revocation answered UNAVAILABLE because its flush failed may still
    // reach the log once flushes work: the tenants' revocation lists must
    // hold it all the same (they are fed before the entry is durable).
    s.faults.fail_flushes(true);
    let st = acme
        .grants
        .revoke_grant(pb::RevokeGrantRequest {
            grant_id: g.id.clone(),
            note: "during a flush fault".into(),
        })
        .await
        .expect_err("the flush fails");
    s.faults.fail_flushes(false);
    assert_eq!(st.code(), Code::Unavailable);
    let list = revocations(&mut acme).await;
    assert_eq!(list.revoked_grant_ids, vec![g.id.clone()], "listed at once");
    // The next write flushes the revocation: the grant is revoked online too.
    let v = validate(&mut acme, &g.id).await;
    assert!(!v.allowed);
    assert_eq!(deny_reason(&v), pb::DenyReason::Revoked);
    let list = revocations(&mut acme).await;
    assert_eq!(list.revoked_grant_ids, vec![g.id.clone()]);
}
