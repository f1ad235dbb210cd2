//! Rotating the log key with an overlap (docs/operations.md, "Rotating the
//! log key"): the next key countersigns every checkpoint, then replaces the
//! old one, which stays a retired verifier; each step is logged once, and a
//! key swapped without the overlap is refused at start-up.

#![allow(clippy::unwrap_used)]

mod common;

use common::{witness::witness_run, *};
use daypass::{
    audit::{
        note::{Checkpoint, LogKey, NoteVerifier},
        witness::{History, Outcome},
    },
    pb, pki,
};

async fn newest_note(s: &TestServer) -> String {
    s.audit_reader()
        .await
        .audit
        .get_checkpoint(pb::GetCheckpointRequest::default())
        .await
        .unwrap()
        .into_inner()
        .note
}

/// A new key of the same log, written as `<stem>.key` and `<stem>.pub`.
fn new_key(s: &TestServer, stem: &str) -> (LogKey, std::path::PathBuf, std::path::PathBuf) {
    let dir = s.dir.path().join(stem);
    pki::create_log_key(&dir, s.log_key().name(), false).unwrap();
    let key = pki::load_log_key(&dir.join(pki::LOG_KEY_FILE)).unwrap();
    (
        key,
        dir.join(pki::LOG_KEY_FILE),
        dir.join(pki::LOG_PUB_FILE),
    )
}

fn signed_by(note: &str, v: &NoteVerifier) -> bool {
    Checkpoint::open(note, v).is_ok()
}

#[tokio::test]
async fn the_log_key_rotates_with_an_overlap_and_witnesses_follow_without_a_gap() {
    let mut s = TestServer::start().await;
    s.add_tenant("acme", pb::ApprovalPolicy::Auto, false).await;
    let old = s.log_verifier();
    let old_pub = s.dir.path().join("old-log.pub");
    std::fs::write(&old_pub, format!("{old}\n")).unwrap();
    // A witness that only knows the old key, and one told of both.
    let mut w_old = History::default();
    assert!(matches!(
        witness_run(&s, &mut w_old, std::slice::from_ref(&old)).await,
        Outcome::First { .. }
    ));
    let before = newest_note(&s).await;
    let old_size = Checkpoint::open(&before, &old).unwrap().size;

    // Step 1: announce the next key; it countersigns from now on.
    let (next, next_key, _next_pub) = new_key(&s, "next");
    let new = next.verifier();
    s.stop().await;
    s.config.log.next_signing_key = Some(next_key.clone());
    s.start_again().await;
    let overlap = newest_note(&s).await;
    assert!(signed_by(&overlap, &old) && signed_by(&overlap, &new));
    let entries = s.entries().await;
    let announced: Vec<_> = entries
        .iter()
        .filter(|e| e.entry.kind == "log.key_announced")
        .collect();
    assert_eq!(announced.len(), 1, "announced once");
    assert_eq!(
        announced[0].entry.details.get("next_key"),
        Some(&new.to_string())
    );
    assert!(matches!(
        witness_run(&s, &mut w_old, std::slice::from_ref(&old)).await,
        Outcome::Extended { .. }
    ));
    // A restart during the overlap announces nothing again.
    s.restart().await;
    let again = s.entries().await;
    assert_eq!(
        again
            .iter()
            .filter(|e| e.entry.kind == "log.key_announced")
            .count(),
        1
    );
    // The witness learns the new key during the overlap.
    assert!(matches!(
        witness_run(&s, &mut w_old, &[old.clone(), new.clone()]).await,
        Outcome::Extended { .. }
    ));

    // Step 2: the new key signs alone; the old one is retired.
    s.stop().await;
    let current = s.config.log_key_path();
    std::fs::copy(&next_key, &current).unwrap();
    s.config.log.next_signing_key = None;
    s.config.log.retired_keys = vec![old_pub.clone()];
    s.start_again().await;
    let after = newest_note(&s).await;
    assert!(signed_by(&after, &new) && !signed_by(&after, &old));
    let entries = s.entries().await;
    let rotated: Vec<_> = entries
        .iter()
        .filter(|e| e.entry.kind == "log.key_rotated")
        .collect();
    assert_eq!(rotated.len(), 1);
    assert_eq!(rotated[0].entry.details.get("key"), Some(&new.to_string()));
    assert_eq!(
        rotated[0].entry.details.get("retired_keys"),
        Some(&old.to_string())
    );
    // The witness holding both keys moves on, with no gap.
    assert!(matches!(
        witness_run(&s, &mut w_old, &[old.clone(), new.clone()]).await,
        Outcome::Extended { .. }
    ));
    // Checkpoints signed before the rotation are still served.
    let early = s
        .audit_reader()
        .await
        .audit
        .get_checkpoint(pb::GetCheckpointRequest {
            tree_size: old_size,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(signed_by(&early.note, &old));
    // A restart after the rotation logs nothing twice.
    s.restart().await;
    assert_eq!(
        s.entries()
            .await
            .iter()
            .filter(|e| e.entry.kind == "log.key_rotated")
            .count(),
        1
    );
    s.stop().await;
}

#[tokio::test]
async fn a_key_swapped_without_an_overlap_is_refused_at_start() {
    let mut s = TestServer::start().await;
    s.stop().await;
    let old = s.log_verifier();
    let old_pub = s.dir.path().join("old-log.pub");
    std::fs::write(&old_pub, format!("{old}\n")).unwrap();
    let (_k, other_key, _) = new_key(&s, "other");
    std::fs::copy(&other_key, s.config.log_key_path()).unwrap();
    // Even naming the old key as retired does not help: nobody was shown
    // the new one.
    s.config.log.retired_keys = vec![old_pub];
    s.start_again().await;
    let err = s.stop_reporting().await.unwrap_err().to_string();
    assert!(err.contains("not signed by log.signing_key"), "{err}");
    assert!(err.contains("log.next_signing_key"), "{err}");

    // A next key for another log is refused by name.
    let mut s = TestServer::start().await;
    s.stop().await;
    let dir = s.dir.path().join("elsewhere");
    pki::create_log_key(&dir, "elsewhere.example/log", false).unwrap();
    s.config.log.next_signing_key = Some(dir.join(pki::LOG_KEY_FILE));
    s.start_again().await;
    let err = s.stop_reporting().await.unwrap_err().to_string();
    assert!(err.contains("elsewhere.example/log"), "{err}");
}
