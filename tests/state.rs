//! The state answers to the log (issue 12, finding 1). With the server
//! stopped, a data-directory writer edits only the records (staff, grants),
//! not the log: at the next start the server finds that its records
//! disagree with its log and fails closed (it serves reads of the log, and
//! decides nothing), and `audit check` names the record and the entry that
//! last set it. A forged log whose entries contradict each other is named
//! by `audit check` and by the offline `audit verify`.

mod common;

use std::path::Path;

use common::*;
use daypass::{
    audit::{Entry, SealedEntry, export},
    pb::{ApprovalPolicy, Role},
};
use serde_json::Value;
use tonic::Code;

/// Rewrites one JSON record in a sled tree, as an attacker would.
fn edit_record(data_dir: &Path, tree: &str, key: &str, edit: impl FnOnce(&mut Value)) {
    let db = sled_open(data_dir);
    let t = db.open_tree(tree).expect("tree");
    let mut v: Value = match t.get(key).expect("read") {
        Some(bytes) => serde_json::from_slice(&bytes).expect("json"),
        None => Value::Null,
    };
    edit(&mut v);
    t.insert(key, serde_json::to_vec(&v).expect("json"))
        .expect("write");
    db.flush().expect("flush");
}

fn seq_of(entries: &[SealedEntry], kind: &str, pred: impl Fn(&SealedEntry) -> bool) -> u64 {
    entries
        .iter()
        .find(|e| e.entry.kind == kind && pred(e))
        .unwrap_or_else(|| panic!("no {kind} entry"))
        .entry
        .seq
}

#[tokio::test]
async fn records_the_log_does_not_vouch_for_make_the_server_fail_closed() {
    let mut s = TestServer::start().await;
    let eve = s.enrol("eve", Role::Auditor).await;
    let mut alice = s.enrol("alice", Role::Support).await;
    s.enrol("pat", Role::Partnerships).await;
    s.enrol("rory", Role::Root).await;
    let mut acme = s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let revoked = request(&mut alice, "acme", "INC-1").await;
    revoke(&mut acme, &revoked.id, "").await;
    let mut bob = s.enrol("bob", Role::Support).await;
    let live = request(&mut bob, "acme", "INC-2").await;
    assert!(validate(&mut acme, &live.id).await.allowed);
    let entries = s.entries().await;
    drop((eve, alice, bob, acme));
    s.stop().await;
    let pristine = tempfile::tempdir().unwrap();
    copy_dir(&s.data_dir(), pristine.path());

    let pat_enrolled = seq_of(&entries, "staff.enrolled", |e| {
        e.entry.details["name"] == "pat"
    });
    let revoked_at = seq_of(&entries, "grant.revoked", |_| true);
    let activated = seq_of(&entries, "grant.activated", |e| {
        e.entry.details["grant"] == live.id
    });
    type Edit = Box<dyn Fn(&Path)>;
    let (rid, lid) = (revoked.id.clone(), live.id.clone());
    let cases: Vec<(&str, Edit, &str, u64)> = vec![
        (
            "a partnerships advisor turned support",
            Box::new(|d| edit_record(d, "staff", "pat", |v| v["role"] = "support".into())),
            "staff/pat",
            pat_enrolled,
        ),
        (
            "a revoked grant made active again",
            Box::new(move |d| {
                edit_record(d, "grants", &rid, |v| {
                    v["state"] = "active".into();
                    v["ended_at"] = Value::Null;
                })
            }),
            "grant/",
            revoked_at,
        ),
        (
            "a 24 h grant stretched to 31 days",
            Box::new(move |d| {
                edit_record(d, "grants", &lid, |v| {
                    let exp = v["expires_at"].as_i64().unwrap();
                    v["expires_at"] = (exp + 30 * 86_400_000).into();
                })
            }),
            "grant/",
            activated,
        ),
        (
            "a third root holder who was never enrolled",
            Box::new(|d| {
                edit_record(d, "staff", "mallory", |v| {
                    *v = serde_json::json!({
                        "name": "mallory", "role": "root",
                        "enrolled_at": 1, "offboarded_at": null
                    })
                })
            }),
            "staff/mallory",
            0,
        ),
    ];

    for (what, edit, record, seq) in &cases {
        replace_dir(&s.data_dir(), pristine.path());
        edit(&s.data_dir());
        s.start_again().await;
        // Nothing is decided from the edited records...
        let mut acme = s.tenant("acme").await;
        let st = acme
            .grants
            .validate_grant(validate_request(&live.id))
            .await
            .expect_err(what);
        assert_eq!(st.code(), Code::FailedPrecondition, "{what}: {st:?}");
        assert!(
            st.message().contains("disagree with the log") && st.message().contains(record),
            "{what}: {}",
            st.message()
        );
        // ... while the log can still be read and checked, and the check
        // names the record and the entry that last set it.
        let mut eve = s.auditor("eve").await;
        let report = verify_chain(&mut eve).await;
        assert!(!report.ok, "{what}: audit check said OK");
        assert_eq!(report.first_bad_seq, *seq, "{what}: {}", report.problem);
        assert!(
            report.problem.contains(record),
            "{what}: {}",
            report.problem
        );
        s.stop().await;
    }

    // The untouched directory serves as before.
    replace_dir(&s.data_dir(), pristine.path());
    s.start_again().await;
    let mut acme = s.tenant("acme").await;
    assert!(validate(&mut acme, &live.id).await.allowed);
    assert!(s.verify_chain().await.ok);
}

/// A forged log (re-hashed, so the chain holds) with a `validation.allowed`
/// for a grant the log itself shows revoked: `audit verify` offline and
/// `audit check` on the server both name the entry.
#[tokio::test]
async fn an_allowed_validation_the_log_contradicts_is_named_by_seq() {
    let mut s = TestServer::start().await;
    let mut alice = s.enrol("alice", Role::Support).await;
    let mut acme = s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let g = request(&mut alice, "acme", "INC-1").await;
    let allowed = validate(&mut acme, &g.id).await;
    assert!(allowed.allowed);
    revoke(&mut acme, &g.id, "").await;
    let mut entries = s.entries().await;

    // The forgery: the allowed validation is repeated after the revocation.
    let mut template = entries[allowed.log_seq as usize].entry.clone();
    let last = entries.last().unwrap().clone();
    // It links into acme's scope like a real one (docs/log-format.md §9),
    // so only the grant rule can object to it.
    let acme_last = entries
        .iter()
        .rev()
        .find(|e| e.entry.tenant == "acme" || e.entry.actor == "tenant/acme")
        .unwrap()
        .entry
        .seq;
    template
        .details
        .insert("scope_prev".into(), format!("acme:{acme_last}"));
    let forged = Entry {
        seq: last.entry.seq + 1,
        timestamp: last.entry.timestamp,
        prev_hash: last.hash,
        ..template
    }
    .seal();
    let forged_seq = forged.entry.seq;
    entries.push(forged);

    // Offline.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("forged.jsonl");
    let mut out = Vec::new();
    for e in &entries {
        export::write_line(&mut out, e).unwrap();
    }
    std::fs::write(&file, out).unwrap();
    let run = cli::run(dir.path(), ["audit", "verify", file.to_str().unwrap()]);
    let err = cli::one_line_error(&run, "a contradicted export");
    assert!(
        err.contains(&format!("seq {forged_seq}")) && err.contains("contradicted"),
        "{err}"
    );
    assert!(err.contains("revoked"), "{err}");

    // On the server: the log rewritten with the forgery.
    s.stop().await;
    {
        let db = sled_open(&s.data_dir());
        let log = db.open_tree("log").unwrap();
        let mut v = entries.last().unwrap().hash.to_vec();
        v.extend_from_slice(&entries.last().unwrap().entry.encode());
        log.insert(forged_seq.to_be_bytes(), v).unwrap();
        let meta = db.open_tree("meta").unwrap();
        let mut head = (forged_seq + 1).to_be_bytes().to_vec();
        head.extend_from_slice(&entries.last().unwrap().hash);
        meta.insert("head", head).unwrap();
        meta.remove("tree").unwrap();
        db.open_tree("merkle").unwrap().clear().unwrap();
        db.flush().unwrap();
    }
    s.start_again().await;
    let report = s.verify_chain().await;
    assert!(!report.ok, "audit check said OK");
    assert_eq!(report.first_bad_seq, forged_seq, "{}", report.problem);
    assert!(
        report.problem.contains("contradicted"),
        "{}",
        report.problem
    );
}

/// A data directory restored from a backup older than what the server had
/// published (finding 4): the revocation it undid is not re-admitted; the
/// server fails closed and says why, and the log can still be read.
#[tokio::test]
async fn a_restore_older_than_the_published_log_fails_closed() {
    let mut s = TestServer::start().await;
    s.enrol("eve", Role::Auditor).await;
    let mut alice = s.enrol("alice", Role::Support).await;
    let acme = s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let g = request(&mut alice, "acme", "INC-1").await;
    drop((alice, acme));
    s.stop().await;
    let backup = tempfile::tempdir().unwrap();
    copy_dir(&s.data_dir(), backup.path());

    s.start_again().await;
    let mut acme = s.tenant("acme").await;
    revoke(&mut acme, &g.id, "").await;
    drop(acme);
    s.stop().await;

    replace_dir(&s.data_dir(), backup.path());
    s.start_again().await;
    let mut acme = s.tenant("acme").await;
    let st = acme
        .grants
        .validate_grant(validate_request(&g.id))
        .await
        .expect_err("the revoked grant is not re-admitted");
    assert_eq!(st.code(), Code::FailedPrecondition);
    assert!(
        st.message().contains("restored from a backup"),
        "{}",
        st.message()
    );
    let report = verify_chain(&mut s.auditor("eve").await).await;
    assert!(!report.ok);
    assert!(report.problem.contains("older"), "{}", report.problem);
}
