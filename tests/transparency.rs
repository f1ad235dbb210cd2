//! The verifiable log end to end, over real mutual TLS: receipts on every
//! write, inclusion and consistency proofs against signed checkpoints,
//! tenant-scoped proofs, and an auditor's witness catching a truncated, a
//! rolled-back and a rewritten log.
//!
//! The tampering is done the way someone with write access to the data
//! directory would: with the server stopped, directly in the sled files, and
//! in the worst case with the log's own signing key (the server rebuilds and
//! re-signs the tree of whatever log it finds).

// The tampering helpers below are test tooling: any failure should panic.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::{witness::hashes, *};
use daypass::{
    audit::{
        Hash, SealedEntry,
        merkle::{self, verify_consistency, verify_inclusion},
        note::{Checkpoint, NoteVerifier},
        witness::{History, Outcome},
    },
    client::Clients,
    pb::{self, ApprovalPolicy, Role},
};
use tonic::Code;

fn open_cp(note: &str, v: &NoteVerifier) -> Checkpoint {
    Checkpoint::open(note, v).expect("checkpoint verifies with the log key")
}

/// Checks a receipt completely: signature, and the entry's inclusion in the
/// receipt's tree as proven by the server now.
async fn check_receipt(
    auditor: &mut Clients,
    r: &pb::Receipt,
    v: &NoteVerifier,
    entries: &[SealedEntry],
) -> Checkpoint {
    let cp = open_cp(&r.checkpoint, v);
    assert!(r.seq < cp.size, "receipt seq {} outside its tree", r.seq);
    let leaf: Hash = r.leaf_hash.as_slice().try_into().expect("leaf hash");
    let stored = &entries[r.seq as usize];
    assert_eq!(leaf, merkle::leaf_hash(&stored.entry.encode()));
    let p = auditor
        .audit
        .get_inclusion_proof(pb::GetInclusionProofRequest {
            seq: r.seq,
            tree_size: cp.size,
        })
        .await
        .expect("inclusion proof")
        .into_inner();
    assert_eq!((p.seq, p.tree_size), (r.seq, cp.size));
    verify_inclusion(&leaf, r.seq, cp.size, &hashes(&p.hashes), &cp.root)
        .expect("receipt's entry is in its checkpoint's tree");
    cp
}

#[tokio::test]
async fn every_write_returns_a_receipt_the_log_proves() {
    let s = TestServer::start().await;
    let v = s.log_verifier();
    let mut admin = s.admin().await;
    let mut alice = s.enrol("alice", Role::Support).await;
    let mut acme = s.add_tenant("acme", ApprovalPolicy::Auto, false).await;

    let mut receipts = Vec::new();
    let staff = admin
        .staff
        .add_staff(pb::AddStaffRequest {
            name: "bob".into(),
            role: Role::Support as i32,
            country: String::new(),
            organisation: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    receipts.push(("AddStaff", staff.receipt));
    let t = admin
        .tenants
        .add_tenant(pb::AddTenantRequest {
            name: "globex".into(),
            approval: ApprovalPolicy::Approval as i32,
            require_ticket: false,
            require_declaration: false,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    receipts.push(("AddTenant", t.receipt));
    let g = request(&mut alice, "acme", "INC-7 disk full").await;
    receipts.push(("RequestGrant", g.receipt.clone()));
    let val = validate(&mut acme, &g.id).await;
    assert!(val.allowed);
    receipts.push(("ValidateGrant", val.receipt));
    let acc = record_access(&mut acme, &g.id, "ssh", "db-1").await;
    assert_eq!(acc.receipt.as_ref().map(|r| r.seq), Some(acc.log_seq));
    receipts.push(("RecordAccess", acc.receipt));
    let rel = release(&mut alice, &g.id).await;
    receipts.push(("ReleaseGrant", rel.receipt));
    let off = admin
        .staff
        .offboard_staff(pb::OffboardStaffRequest { name: "bob".into() })
        .await
        .unwrap()
        .into_inner();
    receipts.push(("OffboardStaff", off.receipt));

    let entries = s.entries().await;
    let mut auditor = s.audit_reader().await;
    let mut sizes = Vec::new();
    for (call, r) in &receipts {
        let r = r
            .as_ref()
            .unwrap_or_else(|| panic!("{call} returned no receipt"));
        let cp = check_receipt(&mut auditor, r, &v, &entries).await;
        // The receipt names the entry that records this very call.
        let kind = &entries[r.seq as usize].entry.kind;
        let expected = match *call {
            "AddStaff" => "staff.enrolled",
            "AddTenant" => "tenant.added",
            "RequestGrant" => "grant.activated",
            "ValidateGrant" => "validation.allowed",
            "RecordAccess" => "access.recorded",
            "ReleaseGrant" => "grant.released",
            _ => "staff.offboarded",
        };
        assert_eq!(kind, expected, "{call}");
        sizes.push(cp);
    }

    // Every later tree extends every earlier one.
    let latest = auditor
        .audit
        .get_checkpoint(pb::GetCheckpointRequest { tree_size: 0 })
        .await
        .unwrap()
        .into_inner();
    let latest_cp = open_cp(&latest.note, &v);
    assert_eq!(latest.tree_size, latest_cp.size);
    for cp in &sizes {
        let p = auditor
            .audit
            .get_consistency_proof(pb::GetConsistencyProofRequest {
                old_size: cp.size,
                new_size: latest_cp.size,
            })
            .await
            .unwrap()
            .into_inner();
        verify_consistency(
            cp.size,
            latest_cp.size,
            &cp.root,
            &latest_cp.root,
            &hashes(&p.hashes),
        )
        .expect("consistent");
        // A flipped bit in the old root is caught.
        let mut bad = cp.root;
        bad[0] ^= 1;
        assert!(
            verify_consistency(
                cp.size,
                latest_cp.size,
                &bad,
                &latest_cp.root,
                &hashes(&p.hashes)
            )
            .is_err()
        );
    }
    // The historical checkpoint at a receipt's size is the receipt's own.
    let first = receipts[0].1.as_ref().unwrap();
    let again = auditor
        .audit
        .get_checkpoint(pb::GetCheckpointRequest {
            tree_size: sizes[0].size,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.note, first.checkpoint);
}

#[tokio::test]
async fn proof_requests_outside_the_log_are_refused_clearly() {
    let s = TestServer::start().await;
    let mut auditor = s.audit_reader().await;
    let size = auditor
        .audit
        .get_checkpoint(pb::GetCheckpointRequest::default())
        .await
        .unwrap()
        .into_inner()
        .tree_size;
    let st = auditor
        .audit
        .get_inclusion_proof(pb::GetInclusionProofRequest {
            seq: 0,
            tree_size: size + 100,
        })
        .await
        .unwrap_err();
    assert_eq!(st.code(), Code::OutOfRange, "{}", st.message());
    assert!(st.message().contains("beyond"), "{}", st.message());
    let st = auditor
        .audit
        .get_consistency_proof(pb::GetConsistencyProofRequest {
            old_size: size,
            new_size: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(st.code(), Code::InvalidArgument, "{}", st.message());
    let st = auditor
        .audit
        .get_checkpoint(pb::GetCheckpointRequest {
            // (Each refusal above appended an entry; stay well beyond.)
            tree_size: size + 1000,
        })
        .await
        .unwrap_err();
    assert_eq!(st.code(), Code::OutOfRange, "{}", st.message());
    let st = auditor
        .audit
        .get_entries(pb::GetEntriesRequest {
            start: 0,
            end: 5000,
        })
        .await
        .unwrap_err();
    assert_eq!(st.code(), Code::InvalidArgument, "{}", st.message());
    assert!(st.message().contains("1000"), "{}", st.message());
}

#[tokio::test]
async fn a_tenant_proves_its_own_entries_and_learns_nothing_of_another() {
    let s = TestServer::start().await;
    let v = s.log_verifier();
    let mut alice = s.enrol("alice", Role::Support).await;
    let mut acme = s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let mut globex = s.add_tenant("globex", ApprovalPolicy::Auto, false).await;
    let ga = request(&mut alice, "acme", "INC-1 acme outage").await;
    let gg = request(&mut alice, "globex", "INC-2 globex secret").await;
    assert!(validate(&mut acme, &ga.id).await.allowed);
    assert!(validate(&mut globex, &gg.id).await.allowed);
    // A refusal by acme is about acme too (it is the actor).
    let _ = acme.staff.list_staff(pb::ListStaffRequest {}).await;

    // Page through acme's scope with a small page size.
    let mut pages = 0;
    let mut got: Vec<(SealedEntry, Vec<Hash>)> = Vec::new();
    let mut req = pb::GetTenantEntriesRequest {
        limit: 3,
        ..Default::default()
    };
    let mut note = String::new();
    loop {
        let page = acme
            .audit
            .get_tenant_entries(req.clone())
            .await
            .unwrap()
            .into_inner();
        pages += 1;
        if note.is_empty() {
            note = page.checkpoint.clone();
            req.tree_size = page.tree_size;
        }
        assert_eq!(
            page.checkpoint, note,
            "every page proves against one checkpoint"
        );
        for p in page.entries {
            got.push((sealed(p.entry.as_ref().unwrap()), hashes(&p.inclusion)));
        }
        if page.next_seq == 0 {
            break;
        }
        req.from_seq = page.next_seq;
    }
    assert!(pages > 1, "small pages exercise paging");
    let cp = open_cp(&note, &v);
    for (e, proof) in &got {
        assert!(
            e.entry.tenant == "acme" || e.entry.actor == "tenant/acme",
            "not acme's: {:?}",
            e.entry
        );
        assert_eq!(e.hash, e.entry.hash());
        let leaf = merkle::leaf_hash(&e.entry.encode());
        verify_inclusion(&leaf, e.entry.seq, cp.size, proof, &cp.root).expect("proven");
        let text = format!("{:?}", e.entry);
        assert!(!text.contains("globex"), "globex leaked: {text}");
    }
    // Exactly acme's scope within the tree: compare with the auditor's view.
    let all = s.entries().await;
    let expected: Vec<u64> = all
        .iter()
        .filter(|e| e.entry.seq < cp.size)
        .filter(|e| e.entry.tenant == "acme" || e.entry.actor == "tenant/acme")
        .map(|e| e.entry.seq)
        .collect();
    let seqs: Vec<u64> = got.iter().map(|(e, _)| e.entry.seq).collect();
    assert_eq!(seqs, expected);
    assert!(expected.len() >= 5, "{expected:?}");

    // Another tenant's log and entries stay closed.
    let st = acme
        .audit
        .get_tenant_entries(pb::GetTenantEntriesRequest {
            tenant: "globex".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(st.code(), Code::PermissionDenied);
    let globex_seq = all
        .iter()
        .find(|e| e.entry.tenant == "globex")
        .map(|e| e.entry.seq)
        .expect("a globex entry");
    let theirs = acme
        .audit
        .get_inclusion_proof(pb::GetInclusionProofRequest {
            seq: globex_seq,
            tree_size: cp.size,
        })
        .await
        .unwrap_err();
    assert_eq!(theirs.code(), Code::NotFound);
    assert_eq!(
        theirs.message(),
        format!(
            "no entry {globex_seq} that you may read in the tree of {} entries",
            cp.size
        ),
        "answered like an entry that does not exist"
    );
    // ...while its own entries are proven one by one as well.
    let own = acme
        .audit
        .get_inclusion_proof(pb::GetInclusionProofRequest {
            seq: expected[0],
            tree_size: cp.size,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(hashes(&own.hashes), got[0].1);
    // Staff prove only entries they wrote.
    let st = alice
        .audit
        .get_inclusion_proof(pb::GetInclusionProofRequest {
            seq: globex_seq,
            tree_size: 0,
        })
        .await;
    let wrote_it = all[globex_seq as usize].entry.actor == "staff/alice";
    assert_eq!(st.is_ok(), wrote_it);
}

#[tokio::test]
async fn the_tree_continues_across_restarts() {
    let mut s = TestServer::start().await;
    let v = s.log_verifier();
    let mut auditor = s.audit_reader().await;
    let before = open_cp(
        &auditor
            .audit
            .get_checkpoint(pb::GetCheckpointRequest::default())
            .await
            .unwrap()
            .into_inner()
            .note,
        &v,
    );
    s.restart().await;
    let mut auditor = s.audit_reader().await;
    let after = auditor
        .audit
        .get_checkpoint(pb::GetCheckpointRequest::default())
        .await
        .unwrap()
        .into_inner();
    let after = open_cp(&after.note, &v);
    assert!(after.size > before.size);
    let p = auditor
        .audit
        .get_consistency_proof(pb::GetConsistencyProofRequest {
            old_size: before.size,
            new_size: after.size,
        })
        .await
        .unwrap()
        .into_inner();
    verify_consistency(
        before.size,
        after.size,
        &before.root,
        &after.root,
        &hashes(&p.hashes),
    )
    .expect("the restarted log extends the old one");
}

// ------------------------------------------------------------- witness ---

/// One witness run as auditor `audit-reader`, with the log's key.
async fn witness(s: &TestServer, history: &mut History) -> Outcome {
    common::witness::witness_run(s, history, &[s.log_verifier()]).await
}

/// Some logged activity.
async fn activity(s: &TestServer, n: usize) {
    let mut acme = s.tenant("acme").await;
    for _ in 0..n {
        let _ = validate(&mut acme, "g-000000000000000000000000").await;
    }
}

/// Replaces the stored log with `entries` the way an attacker with the data
/// directory (and the log key) would: log rows and head rewritten, the Merkle
/// tree and tenant index dropped so that the server rebuilds and re-signs
/// them from the forged log at start-up.
fn rewrite_store(data_dir: &Path, entries: &[SealedEntry]) {
    let db = sled_open(data_dir);
    let log = db.open_tree("log").unwrap();
    log.clear().unwrap();
    for s in entries {
        let mut v = s.hash.to_vec();
        v.extend_from_slice(&s.entry.encode());
        log.insert(s.entry.seq.to_be_bytes(), v).unwrap();
    }
    let meta = db.open_tree("meta").unwrap();
    let mut head = (entries.len() as u64).to_be_bytes().to_vec();
    head.extend_from_slice(&entries.last().expect("entries").hash);
    meta.insert("head", head).unwrap();
    meta.remove("tree").unwrap();
    db.open_tree("merkle").unwrap().clear().unwrap();
    db.open_tree("scope").unwrap().clear().unwrap();
    db.flush().unwrap();
}

/// The attacker controls the host, so it also deletes the checkpoint the
/// server keeps outside its data directory (which would make the server
/// itself refuse the older log): the witness is what must catch them.
fn forget_published(s: &TestServer) {
    let _ = std::fs::remove_file(s.config.published_checkpoint_path());
}

fn stored_entries(s: &TestServer) -> Vec<SealedEntry> {
    s.open_ledger()
        .entries_from(0)
        .collect::<Result<_, _>>()
        .expect("entries")
}

#[tokio::test]
async fn the_witness_accepts_honest_growth_and_names_each_attack() {
    let mut s = TestServer::start().await;
    s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let mut history = History::default();
    assert!(matches!(
        witness(&s, &mut history).await,
        Outcome::First { .. }
    ));
    activity(&s, 3).await;
    assert!(matches!(
        witness(&s, &mut history).await,
        Outcome::Extended { .. }
    ));
    let accepted_early = history.last().unwrap().size;

    // A backup of the data directory, taken now.
    s.stop().await;
    let backup = tempfile::tempdir().unwrap();
    copy_dir(&s.data_dir(), backup.path());
    s.start_again().await;
    activity(&s, 6).await;
    assert!(matches!(
        witness(&s, &mut history).await,
        Outcome::Extended { .. }
    ));
    let accepted = history.last().unwrap().size;

    // (a) Entries removed from the tail.
    s.stop().await;
    let entries = stored_entries(&s);
    let keep = accepted - 6;
    let pristine = tempfile::tempdir().unwrap();
    copy_dir(&s.data_dir(), pristine.path());
    rewrite_store(&s.data_dir(), &entries[..keep as usize]);
    forget_published(&s);
    s.start_again().await;
    match witness(&s, &mut history.clone()).await {
        Outcome::Truncated {
            accepted: a,
            now,
            still_extends,
            ..
        } => {
            assert_eq!(a, accepted);
            assert!(now < accepted);
            assert_eq!(still_extends, Some(accepted_early));
        }
        other => panic!("truncation not named: {other}"),
    }

    // (b) The store restored from the older backup, then growing again.
    s.stop().await;
    replace_dir(&s.data_dir(), backup.path());
    forget_published(&s);
    s.start_again().await;
    activity(&s, 12).await;
    match witness(&s, &mut history.clone()).await {
        Outcome::RolledBack {
            accepted: a,
            extends,
            now,
            ..
        } => {
            assert_eq!(a, accepted);
            assert!(now >= accepted);
            assert_eq!(extends, accepted_early);
        }
        other => panic!("rollback not named: {other}"),
    }

    // (c) One middle entry rewritten, every later hash recomputed, tree
    // rebuilt and re-signed with the log's own key.
    s.stop().await;
    replace_dir(&s.data_dir(), pristine.path());
    let mut entries = stored_entries(&s);
    let victim = 2;
    entries[victim].entry.actor = "staff/nobody".into();
    let mut prev = entries[victim - 1].hash;
    for e in &mut entries[victim..] {
        e.entry.prev_hash = prev;
        e.hash = e.entry.hash();
        prev = e.hash;
    }
    rewrite_store(&s.data_dir(), &entries);
    forget_published(&s);
    s.start_again().await;
    // The forged log is internally consistent: its own chain verifies.
    let report = s.verify_chain().await;
    assert!(
        report.ok,
        "the forgery is self-consistent: {}",
        report.problem
    );
    match witness(&s, &mut history.clone()).await {
        Outcome::Forked { accepted: a, .. } => assert_eq!(a, accepted),
        other => panic!("rewrite not named: {other}"),
    }

    // Control: the pristine store satisfies the witness.
    s.stop().await;
    replace_dir(&s.data_dir(), pristine.path());
    forget_published(&s);
    s.start_again().await;
    assert!(matches!(
        witness(&s, &mut history).await,
        Outcome::Extended { .. }
    ));
}

#[tokio::test]
async fn the_servers_own_check_catches_a_tampered_tree_node() {
    let mut s = TestServer::start().await;
    let ok = s.verify_chain().await;
    assert!(ok.ok, "{}", ok.problem);
    s.stop().await;
    {
        let db = sled_open(&s.data_dir());
        let merkle = db.open_tree("merkle").unwrap();
        // Leaf 0's node: 'n', level 0, index 0.
        let mut key = vec![b'n', 0];
        key.extend_from_slice(&0u64.to_be_bytes());
        let mut node = merkle.get(&key).unwrap().expect("leaf 0 stored").to_vec();
        node[0] ^= 1;
        merkle.insert(key, node).unwrap();
        db.flush().unwrap();
    }
    s.start_again().await;
    let report = s.verify_chain().await;
    assert!(!report.ok);
    assert!(report.problem.contains("unproven"), "{}", report.problem);
    assert!(report.problem.contains("Merkle tree"), "{}", report.problem);
}

/// Every caller can prove, with its own certificate, every receipt it was
/// given (docs/log-format.md §8): an engineer's RequestGrant on an auto
/// tenant names the `grant.activated` entry, written by `system`, which is
/// about the engineer's own grant.
#[tokio::test]
async fn every_caller_proves_its_own_receipts() {
    let s = TestServer::start().await;
    let v = s.log_verifier();
    let mut alice = s.enrol("alice", Role::Support).await;
    let mut bob = s.enrol("bob", Role::Support).await;
    let mut acme = s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let g = request(&mut alice, "acme", "INC-8 stuck export").await;
    let val = validate(&mut acme, &g.id).await;
    let acc = record_access(&mut acme, &g.id, "ssh", "db-1").await;
    let rel = release(&mut alice, &g.id).await;
    let entries = s.entries().await;
    assert_eq!(
        entries[g.receipt.as_ref().unwrap().seq as usize]
            .entry
            .actor,
        "system"
    );
    for (who, receipt) in [
        ("alice", g.receipt.clone()),
        ("acme", val.receipt.clone()),
        ("acme", acc.receipt.clone()),
        ("alice", rel.receipt.clone()),
    ] {
        let client = if who == "alice" {
            &mut alice
        } else {
            &mut acme
        };
        let r = receipt.unwrap_or_else(|| panic!("no receipt for {who}"));
        let cp = open_cp(&r.checkpoint, &v);
        let p = client
            .audit
            .get_inclusion_proof(pb::GetInclusionProofRequest {
                seq: r.seq,
                tree_size: cp.size,
            })
            .await
            .unwrap_or_else(|e| panic!("{who} cannot prove its receipt {}: {e}", r.seq))
            .into_inner();
        let leaf: Hash = r.leaf_hash.as_slice().try_into().expect("leaf hash");
        verify_inclusion(&leaf, r.seq, cp.size, &hashes(&p.hashes), &cp.root)
            .expect("the receipt's entry is in its tree");
    }
    // Another engineer still cannot read alice's entries one by one.
    let st = bob
        .audit
        .get_inclusion_proof(pb::GetInclusionProofRequest {
            seq: g.receipt.as_ref().unwrap().seq,
            tree_size: 0,
        })
        .await
        .expect_err("bob may not read alice's grant entries");
    assert_eq!(st.code(), tonic::Code::NotFound);
}
