//! Online backup and declared restore (docs/operations.md, "Backup and
//! restore"), end to end with the real binary: a backup taken under load
//! restores to a store whose chain, tree and every call acknowledged before
//! it are intact; the restored server logs `store.restored`; a witness
//! accepts the declared restore and still alarms on an undeclared one; a
//! tenant's verifier takes the restored broker's revocation lists; damaged
//! or foreign backups are refused and leave nothing behind.

#![allow(clippy::unwrap_used)]

mod common;

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use common::{cli, witness::witness_run, *};
use daypass::{
    audit::witness::{History, Outcome},
    identity::PrincipalKind,
    ledger::backup::{BackupReader, DECLARATION_FILE},
    pb::{self, ApprovalPolicy, Role},
};
use daypass_tenant::{KeySet, Verifier};
use tokio::sync::Mutex;

async fn backup(s: &TestServer, out: &Path) -> std::process::Output {
    let mut args = vec!["backup".to_owned(), out.display().to_string()];
    args.extend(s.cli_flags(s.dir.path(), PrincipalKind::Staff, ADMIN));
    cli::run_async(s.dir.path().to_owned(), args).await
}

fn restore(s: &TestServer, file: &Path, into: &Path) -> std::process::Output {
    cli::run(
        s.dir.path(),
        [
            "restore".to_owned(),
            file.display().to_string(),
            "--data-dir".into(),
            into.display().to_string(),
            "--log-key".into(),
            s.dir.path().join("log.pub").display().to_string(),
        ],
    )
}

async fn published(c: &mut daypass::client::Clients) -> KeySet {
    use prost::Message as _;
    let k = c
        .gate
        .get_verification_keys(pb::GetVerificationKeysRequest {})
        .await
        .unwrap()
        .into_inner();
    let wire = daypass_tenant::pb::VerificationKeys::decode(k.encode_to_vec().as_slice()).unwrap();
    daypass_tenant::keys_from_pb(&wire).unwrap()
}

/// Requests and releases grants until `stop`, recording every
/// acknowledged request: (grant id, its entry's seq).
async fn load(
    mut sam: daypass::client::Clients,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<(String, u64)>>>,
) {
    while !stop.load(Ordering::Relaxed) {
        let g = request(&mut sam, "acme", "INC-7 backup drill").await;
        let seq = g.receipt.as_ref().unwrap().seq;
        acked.lock().await.push((g.id.clone(), seq));
        release(&mut sam, &g.id).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_load_restores_intact_and_is_followed_as_a_declared_restore() {
    // The load requests grants back to back: far above the per-engineer
    // limit, which is not what this test is about.
    let mut s = TestServer::start_with(|c| {
        c.limits.requests_per_minute = 1e6;
        c.limits.request_burst = 1e6;
    })
    .await;
    let mut acme = s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    s.enrol("sam", Role::Support).await;
    let log_key = s.log_verifier();
    let mut witness = History::default();
    witness_run(&s, &mut witness, std::slice::from_ref(&log_key)).await;
    let tenant = Verifier::new(
        "acme",
        published(&mut acme).await,
        Arc::new(s.clock.clone()),
    );
    tenant
        .apply_revocations(&revocations(&mut acme).await.token)
        .unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let loader = tokio::spawn(load(s.staff("sam").await, stop.clone(), acked.clone()));
    while acked.lock().await.len() < 20 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let before_backup = acked.lock().await.clone();
    let file = s.dir.path().join("store.backup");
    let out = backup(&s, &file).await;
    let said = cli::assert_ok(&out, "backup");
    assert!(said.contains("entries"), "{said}");
    // More load after the copy: these calls are what the restore loses.
    let at_backup = acked.lock().await.len();
    while acked.lock().await.len() < at_backup + 20 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    loader.await.unwrap();
    witness_run(&s, &mut witness, std::slice::from_ref(&log_key)).await;
    tenant
        .apply_revocations(&revocations(&mut acme).await.token)
        .unwrap();
    let acked = acked.lock().await.clone();
    let lost_size = s.entries().await.len() as u64;

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "a backup holds every tenant's records");
    }
    let (header, _) = BackupReader::open(std::fs::File::open(&file).unwrap()).unwrap();
    for (id, seq) in &before_backup {
        assert!(
            *seq < header.size,
            "{id} was acknowledged before the backup"
        );
    }
    assert!(header.size < lost_size, "the load went on after the copy");
    // The backup is logged, with who took it.
    let backed_up = s
        .entries()
        .await
        .into_iter()
        .find(|e| e.entry.kind == "store.backed_up")
        .expect("store.backed_up");
    assert_eq!(backed_up.entry.actor, format!("staff/{ADMIN}"));
    assert!(backed_up.entry.seq >= header.size);

    // The disk is lost; the backup is restored into a new directory.
    s.stop().await;
    let new_dir = s.dir.path().join("data-restored");
    let out = restore(&s, &file, &new_dir);
    let said = cli::assert_ok(&out, "restore");
    assert!(said.contains("verified"), "{said}");
    assert!(new_dir.join(DECLARATION_FILE).exists());
    // A second copy, for an undeclared restore below.
    let undeclared = s.dir.path().join("data-undeclared");
    cli::assert_ok(&restore(&s, &file, &undeclared), "restore again");
    std::fs::remove_file(undeclared.join(DECLARATION_FILE)).unwrap();

    let declaration = std::fs::read(new_dir.join(DECLARATION_FILE)).unwrap();
    s.config.data_dir = new_dir.clone();
    s.start_again().await;
    let entries = s.entries().await;
    assert!(!new_dir.join(DECLARATION_FILE).exists(), "declared once");
    let restored = &entries[header.size as usize];
    assert_eq!(restored.entry.kind, "store.restored");
    let d = &restored.entry.details;
    assert_eq!(d["restored_size"], header.size.to_string());
    assert_eq!(d["epoch"], "1");
    assert_eq!(d["snapshot_taken_at"], header.taken_at);
    let lost: u64 = d["lost_size"].parse().unwrap();
    // What the server published at its stop: at least all it had shown.
    assert!(lost >= lost_size && lost > header.size, "{lost}");
    assert!(s.verify_chain().await.ok);
    // Every call acknowledged before the backup is intact; the ones after
    // it are the declared loss.
    let mut admin = s.admin().await;
    for (id, seq) in &acked {
        let got = admin
            .grants
            .get_grant(pb::GetGrantRequest {
                grant_id: id.clone(),
            })
            .await;
        assert_eq!(got.is_ok(), *seq < header.size, "{id} at {seq}");
    }
    // The witness accepts the declared restore, loudly, and goes on.
    let outcome = witness_run(&s, &mut witness, std::slice::from_ref(&log_key)).await;
    match &outcome {
        Outcome::Restored {
            restored_size,
            lost_size: l,
            ..
        } => {
            assert_eq!(*restored_size, header.size);
            assert_eq!(*l, lost);
        }
        other => panic!("expected a declared restore, got {other}"),
    }
    assert!(!outcome.is_alarm());
    assert!(matches!(
        witness_run(&s, &mut witness, std::slice::from_ref(&log_key)).await,
        Outcome::Unchanged { .. } | Outcome::Extended { .. }
    ));
    // The tenant takes the restored broker's list (shorter log, next epoch).
    let mut acme = s.tenant("acme").await;
    let list = revocations(&mut acme).await;
    assert!(list.seq < lost_size);
    tenant
        .apply_revocations(&list.token)
        .expect("taken after a declared restore");
    // A restart logs the restore only once, even when the declaration
    // survived a crash right after the entry was written.
    s.stop().await;
    std::fs::write(new_dir.join(DECLARATION_FILE), &declaration).unwrap();
    s.start_again().await;
    assert_eq!(
        s.entries()
            .await
            .iter()
            .filter(|e| e.entry.kind == "store.restored")
            .count(),
        1
    );
    assert!(!new_dir.join(DECLARATION_FILE).exists());
    s.stop().await;

    // An undeclared restore (no declaration, the published checkpoint
    // removed as an attacker with the host would) is still an alarm for
    // a witness that did not see the declared one.
    let mut fresh_witness = History {
        accepted: witness.accepted[..2].to_vec(),
    };
    std::fs::remove_file(s.config.published_checkpoint_path()).unwrap();
    s.config.data_dir = undeclared;
    s.start_again().await;
    let outcome = witness_run(&s, &mut fresh_witness, std::slice::from_ref(&log_key)).await;
    assert!(outcome.is_alarm(), "{outcome}");
    s.stop().await;
}

#[tokio::test]
async fn damaged_foreign_or_misplaced_backups_are_refused_and_leave_nothing() {
    let mut s = TestServer::start().await;
    s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let file = s.dir.path().join("store.backup");
    cli::assert_ok(&backup(&s, &file).await, "backup");
    // Never written over an existing file.
    let out = backup(&s, &file).await;
    cli::assert_one_line_error(&out, "daypass:");
    assert!(cli::text(&out.stderr).contains("exists"));
    s.stop().await;
    let bytes = std::fs::read(&file).unwrap();

    let base = s.dir.path().to_owned();
    let into = |n: &str| -> PathBuf { base.join(n) };
    let refused = |out: std::process::Output, dir: &Path, why: &str| {
        let err = cli::one_line_error(&out, why);
        assert!(err.contains(why), "{err}");
        assert!(!dir.exists(), "nothing is left in {}", dir.display());
    };
    // One byte changed in the middle: the digest catches it.
    let mut damaged = bytes.clone();
    let mid = damaged.len() / 2;
    damaged[mid] ^= 0x01;
    let bad = s.dir.path().join("damaged.backup");
    std::fs::write(&bad, &damaged).unwrap();
    let dir = into("d1");
    refused(restore(&s, &bad, &dir), &dir, "does not");
    // Cut off.
    std::fs::write(&bad, &bytes[..bytes.len() - 40]).unwrap();
    let dir = into("d2");
    refused(restore(&s, &bad, &dir), &dir, "");
    // Signed by another log's key.
    let other = s.dir.path().join("other");
    daypass::pki::create_log_key(&other, s.log_key().name(), false).unwrap();
    let dir = into("d3");
    let out = cli::run(
        s.dir.path(),
        [
            "restore".to_owned(),
            file.display().to_string(),
            "--data-dir".into(),
            dir.display().to_string(),
            "--log-key".into(),
            other.join("log.pub").display().to_string(),
        ],
    );
    refused(out, &dir, "does not verify");
    // Into a directory that holds something: refused, and left as it was.
    let out = restore(&s, &file, &s.config.data_dir);
    let err = cli::one_line_error(&out, "into the live data directory");
    assert!(err.contains("not empty"), "{err}");
    s.start_again().await;
    s.stop().await;
    // And the intact file restores.
    let dir = into("d4");
    cli::assert_ok(&restore(&s, &file, &dir), "intact");
}
