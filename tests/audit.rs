//! The audit log end to end: the exact entries of a scripted scenario, the
//! offline verifier on tampered exports (through the real binary), the
//! server's own verification of tampered sled files, chain continuity across
//! restarts and under 200 concurrent requests, and following the log.

mod common;

use std::{path::Path, process::Command, time::Duration};

use common::*;
use daypass::{
    audit::{ChainVerifier, SealedEntry, export},
    identity::PrincipalKind,
    pb::{self, ApprovalPolicy, Role},
};

fn assert_one_chain(entries: &[SealedEntry]) {
    let mut v = ChainVerifier::new();
    for (i, e) in entries.iter().enumerate() {
        v.push(e, entries.get(i + 1))
            .unwrap_or_else(|p| panic!("chain broken: {p}"));
    }
    assert_eq!(v.checked(), entries.len() as u64);
}

#[tokio::test]
async fn a_scripted_scenario_yields_exactly_the_expected_log() {
    let s = TestServer::start().await;
    let mut alice = s.enrol("alice", Role::Support).await;
    let mut bob = s.enrol("bob", Role::Support).await;
    let mut pat = s.enrol("pat", Role::Partnerships).await;
    let mut acme = s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    s.add_tenant("globex", ApprovalPolicy::Approval, false)
        .await;

    let g1 = request(&mut alice, "acme", "INC-1 login fails").await;
    assert!(validate(&mut acme, &g1.id).await.allowed);
    acme.grants
        .record_access(pb::RecordAccessRequest {
            grant_id: g1.id.clone(),
            action: "ssh".into(),
            resource: "web-1".into(),
        })
        .await
        .unwrap();
    let g2 = request(&mut alice, "globex", "INC-2 export stuck").await;
    bob.grants
        .approve_grant(pb::DecideGrantRequest {
            grant_id: g2.id.clone(),
            note: "checked".into(),
        })
        .await
        .unwrap();
    let refused = pat
        .grants
        .request_grant(pb::RequestGrantRequest {
            tenant: "acme".into(),
            reason: "curious".into(),
            ..Default::default()
        })
        .await;
    assert_eq!(refused.unwrap_err().code(), tonic::Code::PermissionDenied);
    alice
        .grants
        .release_grant(pb::ReleaseGrantRequest {
            grant_id: g1.id.clone(),
        })
        .await
        .unwrap();
    s.admin()
        .await
        .staff
        .offboard_staff(pb::OffboardStaffRequest {
            name: "alice".into(),
        })
        .await
        .unwrap();

    let entries = s.entries().await;
    let got: Vec<(&str, &str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e.entry.kind.as_str(),
                e.entry.actor.as_str(),
                e.entry.tenant.as_str(),
            )
        })
        .collect();
    let expected = vec![
        ("staff.bootstrapped", "system", ""),
        ("server.started", "system", ""),
        ("staff.enrolled", "staff/ada", ""),
        ("staff.enrolled", "staff/ada", ""),
        ("staff.enrolled", "staff/ada", ""),
        ("tenant.added", "staff/ada", "acme"),
        ("tenant.added", "staff/ada", "globex"),
        ("grant.requested", "staff/alice", "acme"),
        ("grant.activated", "system", "acme"),
        ("validation.allowed", "tenant/acme", "acme"),
        ("access.recorded", "tenant/acme", "acme"),
        ("grant.requested", "staff/alice", "globex"),
        ("grant.approved", "staff/bob", "globex"),
        ("grant.activated", "staff/bob", "globex"),
        ("call.refused", "staff/pat", ""),
        ("grant.released", "staff/alice", "acme"),
        ("grant.revoked", "staff/ada", "globex"),
        ("staff.offboarded", "staff/ada", ""),
        ("staff.enrolled", "staff/ada", ""), // audit-reader, by TestServer::entries
        ("audit.read", "auditor/audit-reader", ""),
    ];
    assert_eq!(got, expected);
    assert_one_chain(&entries);
    assert!(
        entries
            .iter()
            .enumerate()
            .all(|(i, e)| e.entry.seq == i as u64)
    );

    let d = |i: usize, k: &str| entries[i].entry.details.get(k).cloned().unwrap_or_default();
    assert_eq!(
        (d(2, "name"), d(2, "role")),
        ("alice".into(), "support".into())
    );
    assert_eq!(
        (d(4, "name"), d(4, "role")),
        ("pat".into(), "partnerships".into())
    );
    assert_eq!(
        (d(7, "grant"), d(7, "holder")),
        (g1.id.clone(), "alice".into())
    );
    assert_eq!(d(7, "reason"), "INC-1 login fails");
    assert_eq!(
        d(8, "expires_at"),
        daypass::clock::Timestamp(g1.expires_at_ms).to_rfc3339()
    );
    assert_eq!(d(9, "grant"), g1.id);
    assert_eq!(
        (d(10, "action"), d(10, "resource")),
        ("ssh".into(), "web-1".into())
    );
    assert_eq!(
        (d(12, "grant"), d(12, "note")),
        (g2.id.clone(), "checked".into())
    );
    assert_eq!(
        (d(14, "call"), d(14, "code")),
        ("RequestGrant".into(), "permission-denied".into())
    );
    assert_eq!(d(15, "grant"), g1.id);
    assert_eq!(
        (d(16, "grant"), d(16, "cause")),
        (g2.id.clone(), "holder offboarded".into())
    );
    assert_eq!(
        (d(17, "name"), d(17, "revoked_grants")),
        ("alice".into(), "1".into())
    );
}

/// Writes PEM files for an enrolled auditor and returns the CLI flags.
fn auditor_flags(s: &TestServer, dir: &Path) -> Vec<String> {
    let issued = s.issue(PrincipalKind::Auditor, "eve");
    std::fs::write(dir.join("eve.pem"), &issued.cert_pem).expect("write cert");
    std::fs::write(dir.join("eve.key"), &issued.key_pem).expect("write key");
    vec![
        "--server".into(),
        s.server_url(),
        "--ca".into(),
        s.config.tls.ca.display().to_string(),
        "--cert".into(),
        dir.join("eve.pem").display().to_string(),
        "--key".into(),
        dir.join("eve.key").display().to_string(),
    ]
}

async fn daypass(args: Vec<String>) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_daypass"))
            .args(&args)
            .output()
            .expect("run daypass")
    })
    .await
    .expect("task")
}

#[tokio::test]
async fn offline_verify_names_each_kind_of_tampering() {
    let s = TestServer::start().await;
    s.enrol("eve", Role::Auditor).await;
    let mut alice = s.enrol("alice", Role::Support).await;
    let mut acme = s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let g = request(&mut alice, "acme", "INC-1").await;
    for _ in 0..3 {
        validate(&mut acme, &g.id).await;
    }
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("log.jsonl");
    let mut args = auditor_flags(&s, work.path());
    args.extend(["audit", "export", "-o"].map(String::from));
    args.push(file.display().to_string());
    let out = daypass(args).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let verify = |lines: &[String]| {
        let f = work.path().join("tampered.jsonl");
        std::fs::write(&f, lines.join("\n") + "\n").unwrap();
        Command::new(env!("CARGO_BIN_EXE_daypass"))
            .args(["audit", "verify"])
            .arg(&f)
            .output()
            .unwrap()
    };
    let lines: Vec<String> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert!(lines.len() >= 11, "a real export: {} lines", lines.len());
    let ok = verify(&lines);
    assert!(ok.status.success());
    assert!(
        String::from_utf8_lossy(&ok.stdout).starts_with(&format!("OK: {} entries", lines.len()))
    );

    let k = 8; // some middle entry
    let stderr = |o: &std::process::Output| {
        assert!(!o.status.success(), "tampering not detected");
        String::from_utf8_lossy(&o.stderr).into_owned()
    };

    let mut modified = lines.clone();
    modified[k] = modified[k].replace("\"actor\":\"", "\"actor\":\"x");
    assert_ne!(modified[k], lines[k]);
    let e = stderr(&verify(&modified));
    assert!(e.contains(&format!("seq {k}: modified")), "{e}");

    let mut deleted = lines.clone();
    deleted.remove(k);
    let e = stderr(&verify(&deleted));
    assert!(e.contains(&format!("seq {k}: deleted")), "{e}");

    let mut inserted = lines.clone();
    let mut forged = export::parse_line(&lines[k]).unwrap();
    forged.entry.details.insert("note".into(), "forged".into());
    forged.hash = forged.entry.hash();
    inserted.insert(k + 1, export::to_json(&forged).to_string());
    let e = stderr(&verify(&inserted));
    assert!(e.contains(&format!("seq {k}: inserted")), "{e}");

    let mut swapped = lines.clone();
    swapped.swap(k, k + 1);
    let e = stderr(&verify(&swapped));
    assert!(e.contains(&format!("seq {k}: reordered")), "{e}");

    assert_eq!(e.lines().count(), 1, "one clear line: {e}");
}

#[tokio::test]
async fn the_server_detects_an_entry_changed_in_its_files() {
    let mut s = TestServer::start().await;
    let mut eve = s.enrol("eve", Role::Auditor).await;
    let mut alice = s.enrol("alice", Role::Support).await;
    s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    request(&mut alice, "acme", "INC-1").await;
    let report = eve
        .audit
        .verify_chain(pb::VerifyChainRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(report.ok, "{}", report.problem);
    // Everything up to (not including) the verification's own entry.
    let n = s.entries().await.len() as u64;
    assert_eq!(
        report.entries_checked,
        n - 3,
        "verify.. then enrol+read by entries()"
    );
    drop((eve, alice));

    s.stop().await;
    let victim = 5u64;
    {
        let store = s.open_store();
        let log = store.raw_log();
        let mut v = log.get(victim.to_be_bytes()).unwrap().unwrap().to_vec();
        // hash(32) | version(1) seq(8) ts(8) actor_len(4) actor...: flip the
        // first actor character, keeping every length intact.
        let at = 32 + 1 + 8 + 8 + 4;
        v[at] ^= 0x01;
        log.insert(victim.to_be_bytes(), v).unwrap();
        log.flush().unwrap();
    }
    s.start_again().await;
    let mut eve = s.auditor("eve").await;
    let report = eve
        .audit
        .verify_chain(pb::VerifyChainRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(!report.ok);
    assert_eq!(report.first_bad_seq, victim);
    assert!(report.problem.contains("modified"), "{}", report.problem);
    // The finding is itself in the log.
    let found = s
        .wait_for("audit.verified failure", |e| {
            e.entry.kind == "audit.verified"
                && e.entry.details.get("ok").map(String::as_str) == Some("false")
        })
        .await;
    assert_eq!(found.entry.details["first_bad_seq"], victim.to_string());
}

#[tokio::test]
async fn restarts_continue_the_chain_without_fork_or_gap() {
    let mut s = TestServer::start().await;
    let mut alice = s.enrol("alice", Role::Support).await;
    let acme = s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let g = request(&mut alice, "acme", "INC-1").await;
    drop((alice, acme));
    s.restart().await;
    let mut acme = s.tenant("acme").await;
    assert!(
        validate(&mut acme, &g.id).await.allowed,
        "grants survive restarts"
    );
    s.restart().await;
    let mut bob = s.enrol("bob", Role::Support).await;
    request(&mut bob, "acme", "INC-2").await;

    let entries = s.entries().await;
    assert_one_chain(&entries);
    let k = kinds(&entries);
    let restarts = k
        .windows(2)
        .filter(|w| w == &["server.stopped", "server.started"])
        .count();
    assert_eq!(restarts, 2, "{k:?}");
    assert_eq!(k.iter().filter(|k| **k == "server.started").count(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_requests_make_one_gap_free_chain() {
    let s = TestServer::start().await;
    s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let mut admin = s.admin().await;
    let mut engineers = Vec::new();
    for i in 0..200 {
        let name = format!("e{i}");
        admin
            .staff
            .add_staff(pb::AddStaffRequest {
                name: name.clone(),
                role: Role::Support as i32,
            })
            .await
            .unwrap();
        engineers.push(s.staff(&name).await);
    }
    let tasks: Vec<_> = engineers
        .into_iter()
        .map(|mut c| tokio::spawn(async move { request(&mut c, "acme", "load").await.id }))
        .collect();
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 200, "every grant id distinct");

    let entries = s.entries().await;
    assert_one_chain(&entries);
    let count = |kind: &str| entries.iter().filter(|e| e.entry.kind == kind).count();
    assert_eq!(count("grant.requested"), 200);
    assert_eq!(count("grant.activated"), 200);
}

#[tokio::test]
async fn an_auditor_can_follow_the_log_live() {
    let s = TestServer::start().await;
    let mut eve = s.enrol("eve", Role::Auditor).await;
    let mut stream = eve
        .audit
        .stream_entries(pb::StreamEntriesRequest {
            follow: true,
            last: 1,
            purpose: pb::ReadPurpose::Tail as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    // First the current last entry, then our own audit.read.
    let first = stream.message().await.unwrap().unwrap();
    assert_eq!(first.kind, "staff.enrolled");
    let read = stream.message().await.unwrap().unwrap();
    assert_eq!(read.kind, "audit.read");
    assert_eq!(read.details["purpose"], "tail");

    s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let next = tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("a new entry arrives")
        .unwrap()
        .unwrap();
    assert_eq!(
        (next.kind.as_str(), next.tenant.as_str()),
        ("tenant.added", "acme")
    );
    assert_eq!(next.seq, read.seq + 1);
}

/// docs/verify_export.py, written from docs/log-format.md alone, must agree
/// with the Rust verifier on a real export and on a tampered one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_independent_python_verifier_agrees() {
    let Ok(py) = Command::new("python3").arg("--version").output() else {
        eprintln!("skipped: python3 is not installed");
        return;
    };
    assert!(py.status.success());
    let s = TestServer::start().await;
    s.enrol("eve", Role::Auditor).await;
    let mut alice = s.enrol("alice", Role::Support).await;
    let mut acme = s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let g = request(&mut alice, "acme", "INC-1 ünïcödé reason").await;
    validate(&mut acme, &g.id).await;
    let work = tempfile::tempdir().expect("tempdir");
    let file = work.path().join("log.jsonl");
    let mut args = auditor_flags(&s, work.path());
    args.extend([
        "audit".into(),
        "export".into(),
        "-o".into(),
        file.display().to_string(),
    ]);
    assert!(daypass(args).await.status.success());

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/verify_export.py");
    let run = |f: &Path| {
        Command::new("python3")
            .arg(script)
            .arg(f)
            .output()
            .expect("python3")
    };
    let ok = run(&file);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let rust = Command::new(env!("CARGO_BIN_EXE_daypass"))
        .args(["audit", "verify"])
        .arg(&file)
        .output()
        .expect("daypass");
    assert_eq!(
        String::from_utf8_lossy(&ok.stdout),
        String::from_utf8_lossy(&rust.stdout),
        "same entry count and head"
    );
    let bad = work.path().join("bad.jsonl");
    let text = std::fs::read_to_string(&file).expect("read");
    std::fs::write(&bad, text.replacen("INC-1", "INC-2", 1)).expect("write");
    assert!(!run(&bad).status.success());
}

#[tokio::test]
async fn shutdown_ends_follow_streams_instead_of_waiting_for_them() {
    let mut s = TestServer::start().await;
    let mut eve = s.enrol("eve", Role::Auditor).await;
    let mut stream = eve
        .audit
        .stream_entries(pb::StreamEntriesRequest {
            follow: true,
            last: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    while let Ok(Ok(Some(_))) =
        tokio::time::timeout(Duration::from_millis(200), stream.message()).await
    {}
    let started = tokio::time::Instant::now();
    s.stop().await;
    assert!(
        started.elapsed() < daypass::server::DRAIN_TIMEOUT / 2,
        "stopped in {:?}, not after the drain timeout",
        started.elapsed()
    );
    let end = tokio::time::timeout(Duration::from_secs(5), stream.message())
        .await
        .expect("the stream ends");
    assert!(!matches!(end, Ok(Some(_))), "no more entries: {end:?}");
}
