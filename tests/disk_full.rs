//! A real disk-full, not an injected one: the server's data directory is on
//! a small tmpfs of its own, a ballast file fills it until the store's
//! writes fail (UNAVAILABLE, reads still served), the ballast is deleted,
//! and writes must come back by themselves within a bounded time, with no
//! restart, nothing acknowledged lost and the chain intact (also after a
//! restart). sled 0.34 keeps its first IO error for good, so this needs
//! the store to reopen the database in place (`src/ledger/group.rs`).
//!
//! Mounting needs root: without it the test says SKIPPED loudly and
//! passes, except under CI (`CI` set), where it fails.

mod common;

use std::time::Duration;

use common::{tmpfs::Tmpfs, *};
use daypass::{
    audit::{Hash, merkle},
    pb::{self, ApprovalPolicy, Role},
};
use tokio::time::Instant;
use tonic::Code;

/// How long writes may take to come back once space is free.
const RECOVERY_BOUND: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_come_back_after_a_real_disk_full_without_a_restart() {
    let Some(fs) = Tmpfs::mount(
        "tests/disk_full.rs",
        "Recovery from a real disk-full (sled on a filesystem that fills up)",
        16,
    ) else {
        return;
    };
    let data = fs.path().join("data");
    let mut s = TestServer::start_with(|c| c.data_dir = data.clone()).await;
    let mut alice = s.enrol("alice", Role::Support).await;
    let mut acme = s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    s.add_tenant("globex", ApprovalPolicy::Auto, false).await;
    let g = request(&mut alice, "acme", "INC-1").await;
    let mut acked = vec![g.receipt.clone().expect("receipt")];

    // Full: sled may still have room in what it already holds, so write
    // until a call fails.
    let (ballast, ballast_bytes) = fs.fill("ballast");
    let mut served_while_full = 0;
    let refused = loop {
        match acme.grants.validate_grant(validate_request(&g.id)).await {
            Ok(v) => {
                acked.push(v.into_inner().receipt.expect("receipt"));
                served_while_full += 1;
                assert!(
                    served_while_full < 20_000,
                    "the filesystem is full but writes never failed"
                );
            }
            Err(st) => break st,
        }
    };
    assert_eq!(refused.code(), Code::Unavailable, "{}", refused.message());
    assert_eq!(
        validate_err(&mut acme, &g.id).await.code(),
        Code::Unavailable,
        "still full: still refused"
    );
    assert_eq!(
        get_grant(&mut alice, &g.id).await.state,
        pb::GrantState::Active as i32,
        "reads are served while the disk is full"
    );

    // Space again: writes come back by themselves.
    std::fs::remove_file(&ballast).expect("remove ballast");
    let freed = Instant::now();
    let mut refusals_after = 0;
    loop {
        match acme.grants.validate_grant(validate_request(&g.id)).await {
            Ok(v) => {
                let v = v.into_inner();
                assert!(v.allowed);
                acked.push(v.receipt.expect("receipt"));
                break;
            }
            Err(st) => {
                assert_eq!(st.code(), Code::Unavailable, "{}", st.message());
                refusals_after += 1;
                assert!(
                    freed.elapsed() < RECOVERY_BOUND,
                    "no write succeeded within {RECOVERY_BOUND:?} after space was freed \
                     ({refusals_after} refused; last: {})",
                    st.message()
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    let recovered_in = freed.elapsed();
    eprintln!(
        "disk_full: ballast {} KiB; {served_while_full} writes served once full; \
         first write after freeing space served in {recovered_in:?} ({refusals_after} refused before it)",
        ballast_bytes >> 10
    );
    // And they go on: a state change too.
    let other = request(&mut alice, "globex", "after the disk-full").await;
    acked.push(other.receipt.clone().expect("receipt"));
    assert!(validate(&mut acme, &g.id).await.allowed);

    assert_acknowledged_are_stored(&s, &acked, &[&g.id, &other.id]).await;
    s.restart().await;
    assert_acknowledged_are_stored(&s, &acked, &[&g.id, &other.id]).await;
    s.stop().await;
    drop(fs);
}

/// The chain and tree verify, every acknowledged receipt's entry is stored
/// with its leaf hash, and every acknowledged grant (alice's) exists.
async fn assert_acknowledged_are_stored(s: &TestServer, acked: &[pb::Receipt], grants: &[&str]) {
    let report = s.verify_chain().await;
    assert!(report.ok, "{}", report.problem);
    let entries = s.entries().await;
    for r in acked {
        let e = entries
            .get(r.seq as usize)
            .unwrap_or_else(|| panic!("acknowledged entry {} is missing", r.seq));
        let leaf: Hash = r.leaf_hash.as_slice().try_into().expect("leaf hash");
        assert_eq!(
            merkle::leaf_hash(&e.entry.encode()),
            leaf,
            "acknowledged entry {} changed",
            r.seq
        );
    }
    let mut alice = s.staff("alice").await;
    for id in grants {
        get_grant(&mut alice, id).await;
    }
}
