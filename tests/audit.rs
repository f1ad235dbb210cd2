//! The audit log end to end: the exact entries of a scripted scenario, the
//! offline verifier on tampered exports (through the real binary), the
//! server's own verification of tampered sled files, chain continuity across
//! restarts and under 200 concurrent requests, and following the log.

mod common;

use std::{
    collections::BTreeSet,
    path::Path,
    process::{Command, Output},
    time::Duration,
};

use common::{cli::one_line_error, *};
use daypass::{
    audit::{ChainVerifier, Entry, SealedEntry, entry::GENESIS_PREV_HASH, export},
    clock::{Clock, Timestamp},
    identity::PrincipalKind,
    pb::{self, ApprovalPolicy, Role},
};

/// How long a test waits for something that should happen at once.
const PATIENCE: Duration = Duration::from_secs(10);

/// Checks that `entries` is one chain from seq 0, computing everything
/// itself (seq `i` at index `i`, each stated hash recomputed from the
/// entry's canonical bytes, each `prev_hash` the previous entry's hash, time
/// never going back), then that the library's verifier agrees.
fn assert_one_chain(entries: &[SealedEntry]) {
    assert!(!entries.is_empty(), "no entries at all");
    let mut prev = GENESIS_PREV_HASH;
    let mut last_time = Timestamp(i64::MIN);
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(
            e.entry.seq, i as u64,
            "entry at index {i}: no gap, no repeat"
        );
        assert_eq!(e.entry.hash(), e.hash, "entry {i}: hash matches content");
        assert_eq!(
            e.entry.prev_hash, prev,
            "entry {i}: links to the entry before"
        );
        assert!(e.entry.timestamp >= last_time, "entry {i}: time went back");
        prev = e.hash;
        last_time = e.entry.timestamp;
    }
    let mut v = ChainVerifier::new();
    for (i, e) in entries.iter().enumerate() {
        v.push(e, entries.get(i + 1))
            .unwrap_or_else(|p| panic!("the verifier disagrees: {p}"));
    }
    assert_eq!(v.checked(), entries.len() as u64);
}

/// One expected entry: `at` is seconds after the server started; `details`
/// lists every detail in key order ("*" accepts any non-empty value).
struct Want {
    kind: &'static str,
    actor: &'static str,
    tenant: &'static str,
    at: i64,
    details: Vec<(&'static str, String)>,
}

fn want(
    kind: &'static str,
    actor: &'static str,
    tenant: &'static str,
    at: i64,
    details: &[(&'static str, &str)],
) -> Want {
    Want {
        kind,
        actor,
        tenant,
        at,
        details: details.iter().map(|(k, v)| (*k, v.to_string())).collect(),
    }
}

#[tokio::test]
async fn a_scripted_scenario_yields_exactly_the_expected_log() {
    let s = TestServer::start().await;
    let t0 = s.clock.now();
    // The server task logs its start once it runs; an answered call (WhoAmI
    // logs nothing) shows it has, before the clock moves.
    s.admin()
        .await
        .staff
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .unwrap();
    // Each step happens one second after the previous one.
    let step = || s.clock.advance_secs(1);

    step(); // 1
    let mut alice = s.enrol("alice", Role::Support).await;
    step(); // 2
    let mut bob = s.enrol("bob", Role::Support).await;
    step(); // 3
    let mut pat = s.enrol("pat", Role::Partnerships).await;
    step(); // 4
    let mut acme = s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    step(); // 5
    s.add_tenant("globex", ApprovalPolicy::Approval, false)
        .await;
    step(); // 6
    let g1 = request(&mut alice, "acme", "INC-1 login fails").await;
    assert_eq!(g1.state, pb::GrantState::Active as i32);
    step(); // 7
    let v = validate(&mut acme, &g1.id).await;
    assert!(v.allowed, "denied: {:?}", deny_reason(&v));
    step(); // 8
    record_access(&mut acme, &g1.id, "ssh", "web-1").await;
    step(); // 9
    let g2 = request(&mut alice, "globex", "INC-2 export stuck").await;
    assert_eq!(g2.state, pb::GrantState::Pending as i32);
    assert_ne!(g1.id, g2.id);
    step(); // 10
    bob.grants
        .approve_grant(pb::DecideGrantRequest {
            grant_id: g2.id.clone(),
            note: "checked".into(),
        })
        .await
        .unwrap();
    step(); // 11
    let refused = pat
        .grants
        .request_grant(grant_request("acme", "curious", 0))
        .await;
    assert_eq!(refused.unwrap_err().code(), tonic::Code::PermissionDenied);
    step(); // 12
    release(&mut alice, &g1.id).await;
    step(); // 13
    let off = s
        .admin()
        .await
        .staff
        .offboard_staff(pb::OffboardStaffRequest {
            name: "alice".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(off.revoked_grant_ids, vec![g2.id.clone()]);
    step(); // 14
    let entries = s.entries().await;

    let day = 86_400;
    let expires1 = t0.plus_secs(6).plus_secs(day);
    let expires2 = t0.plus_secs(10).plus_secs(day);
    assert_eq!(g1.expires_at_ms, expires1.millis());
    let (expires1, expires2) = (expires1.to_rfc3339(), expires2.to_rfc3339());
    // globex's request (step 9) waits for approval for the pending TTL.
    let pending_until2 = t0.plus_secs(9).plus_secs(3600).to_rfc3339();
    let listening = format!("listening on {}", s.addr);
    let version = env!("CARGO_PKG_VERSION");
    let (g1, g2) = (g1.id.as_str(), g2.id.as_str());
    #[rustfmt::skip]
    let expected = vec![
        want("staff.bootstrapped", "system", "", 0,
            &[("name", "ada"), ("role", "admin"), ("source", "config bootstrap_admin")]),
        want("server.started", "system", "", 0, &[("detail", &listening), ("version", version)]),
        want("staff.enrolled", "staff/ada", "", 1, &[("name", "alice"), ("role", "support")]),
        want("staff.enrolled", "staff/ada", "", 2, &[("name", "bob"), ("role", "support")]),
        want("staff.enrolled", "staff/ada", "", 3, &[("name", "pat"), ("role", "partnerships")]),
        want("tenant.added", "staff/ada", "acme", 4,
            &[("approval", "auto"), ("require_declaration", "false"), ("require_ticket", "false"), ("scope_prev", "acme:-")]),
        want("tenant.added", "staff/ada", "globex", 5,
            &[("approval", "tenant-or-peer"), ("require_declaration", "false"), ("require_ticket", "false"),
              ("scope_prev", "globex:-")]),
        want("grant.requested", "staff/alice", "acme", 6,
            &[("approval", "auto"), ("duration_secs", "86400"), ("grant", g1),
              ("holder", "alice"), ("reason", "INC-1 login fails"), ("scope_prev", "acme:5"), ("ticket", "")]),
        want("grant.activated", "system", "acme", 6,
            &[("expires_at", &expires1), ("grant", g1), ("holder", "alice"), ("scope_prev", "acme:7")]),
        want("validation.allowed", "tenant/acme", "acme", 7,
            &[("grant", g1), ("holder", "alice"), ("scope_prev", "acme:8")]),
        want("access.recorded", "tenant/acme", "acme", 8,
            &[("action", "ssh"), ("grant", g1), ("holder", "alice"), ("resource", "web-1"), ("scope_prev", "acme:9")]),
        want("grant.requested", "staff/alice", "globex", 9,
            &[("approval", "tenant-or-peer"), ("approvers", "tenant/globex"),
              ("awaits", "tenant globex or peer"), ("duration_secs", "86400"), ("grant", g2),
              ("holder", "alice"), ("pending_until", &pending_until2), ("reason", "INC-2 export stuck"),
              ("scope_prev", "globex:6"), ("ticket", "")]),
        want("grant.approved", "staff/bob", "globex", 10,
            &[("grant", g2), ("holder", "alice"), ("note", "checked"), ("scope_prev", "globex:11")]),
        want("grant.activated", "staff/bob", "globex", 10,
            &[("expires_at", &expires2), ("grant", g2), ("holder", "alice"), ("scope_prev", "globex:12")]),
        want("call.refused", "staff/pat", "", 11,
            &[("call", "RequestGrant"), ("code", "permission-denied"), ("message", "*")]),
        want("grant.released", "staff/alice", "acme", 12,
            &[("grant", g1), ("holder", "alice"), ("note", ""), ("scope_prev", "acme:10")]),
        want("grant.revoked", "staff/ada", "globex", 13,
            &[("cause", "holder offboarded"), ("grant", g2), ("holder", "alice"), ("scope_prev", "globex:13")]),
        want("staff.offboarded", "staff/ada", "", 13,
            &[("name", "alice"), ("revoked_grants", "1"), ("role", "support")]),
        // TestServer::entries enrols its reader, then its read is logged.
        want("staff.enrolled", "staff/ada", "", 14, &[("name", "audit-reader"), ("role", "auditor")]),
        want("audit.read", "auditor/audit-reader", "", 14,
            &[("follow", "false"), ("from_seq", "0"), ("purpose", "read")]),
    ];

    let got: Vec<_> = entries
        .iter()
        .map(|e| {
            (
                e.entry.kind.as_str(),
                e.entry.actor.as_str(),
                e.entry.tenant.as_str(),
            )
        })
        .collect();
    let wanted: Vec<_> = expected
        .iter()
        .map(|w| (w.kind, w.actor, w.tenant))
        .collect();
    assert_eq!(got, wanted);
    for (e, w) in entries.iter().zip(&expected) {
        let what = format!("seq {} ({})", e.entry.seq, w.kind);
        assert_eq!(e.entry.timestamp, t0.plus_secs(w.at), "{what}: time");
        let keys: Vec<&str> = e.entry.details.keys().map(String::as_str).collect();
        let want_keys: Vec<&str> = w.details.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, want_keys, "{what}: detail keys");
        for (k, v) in &w.details {
            let got = &e.entry.details[*k];
            if v == "*" {
                assert!(!got.is_empty(), "{what}: {k} is empty");
            } else {
                assert_eq!(got, v, "{what}: {k}");
            }
        }
    }
    assert_one_chain(&entries);
}

/// The CLI's connection flags as auditor eve.
fn auditor_flags(s: &TestServer, dir: &Path) -> Vec<String> {
    s.cli_flags(dir, PrincipalKind::Auditor, "eve")
}

/// `daypass audit verify` failed with exit status 1 and exactly one line
/// naming the line, the first bad seq and the kind of problem.
fn assert_verify_fails(out: &Output, line: usize, seq: usize, kind: &str) {
    let err = one_line_error(out, &format!("{kind} not detected"));
    let expected = format!(": line {line}: first bad entry is seq {seq}: {kind} (");
    assert!(
        err.contains(&expected),
        "{err:?} should contain {expected:?}"
    );
    assert!(out.stdout.is_empty(), "nothing on stdout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_verify_names_each_kind_of_tampering() {
    let s = TestServer::start().await;
    s.enrol("eve", Role::Auditor).await;
    let mut alice = s.enrol("alice", Role::Support).await;
    let mut acme = s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let g = request(&mut alice, "acme", "INC-1 login fails").await;
    for _ in 0..3 {
        assert!(validate(&mut acme, &g.id).await.allowed);
    }
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("log.jsonl");
    let mut args: Vec<String> = ["audit", "export", "-o"].map(String::from).into();
    args.push(file.display().to_string());
    args.extend(auditor_flags(&s, work.path()));
    let out = cli::run_async(work.path().to_owned(), args).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<String> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();

    // The export is the log, entry for entry, up to its own audit.read.
    let entries = s.entries().await;
    assert!(lines.len() >= 10 && lines.len() < entries.len());
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(export::parse_line(l).unwrap(), entries[i], "line {}", i + 1);
    }
    let exported_head = &entries[lines.len() - 1];
    assert_eq!(exported_head.entry.kind, "audit.read");
    assert_eq!(exported_head.entry.details["purpose"], "export");

    let verify = |name: &str, lines: &[String]| {
        let f = work.path().join(name);
        std::fs::write(&f, lines.join("\n") + "\n").unwrap();
        cli::run(
            work.path(),
            [Path::new("audit"), Path::new("verify"), f.as_path()],
        )
    };
    let ok = verify("intact.jsonl", &lines);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&ok.stdout).trim(),
        format!(
            "OK: {} entries verified, head {}",
            lines.len(),
            hex::encode(exported_head.hash)
        )
    );

    // Middle entries to tamper with (index = seq: the export starts at 0).
    let at = |kind: &str| {
        let i = lines
            .iter()
            .position(|l| export::parse_line(l).unwrap().entry.kind == kind)
            .unwrap_or_else(|| panic!("no {kind} in the export"));
        assert!(
            i > 0 && i + 2 < lines.len(),
            "{kind} at {i} is not in the middle"
        );
        i
    };
    let requested = at("grant.requested");
    let validated = at("validation.allowed");
    let added = at("tenant.added");

    // One hashed field changed: the requested duration. (The reason is
    // sealed: the hash covers its ciphertext; `opened` shows it, checked by
    // `audit verify --tenant-key`, tests/termination.rs.)
    let mut modified = lines.clone();
    let mut v: serde_json::Value = serde_json::from_str(&lines[requested]).unwrap();
    assert_eq!(v["opened"]["reason"], "INC-1 login fails");
    assert!(v["details"]["reason"].is_null(), "{v}");
    assert!(v["sealed"]["ciphertext"].is_string(), "{v}");
    v["details"]["duration_secs"] = "86399".into();
    modified[requested] = v.to_string();
    assert_verify_fails(
        &verify("modified.jsonl", &modified),
        requested + 1,
        requested,
        "modified",
    );

    let mut deleted = lines.clone();
    deleted.remove(validated);
    assert_verify_fails(
        &verify("deleted.jsonl", &deleted),
        validated + 1,
        validated,
        "deleted",
    );

    // A forged copy of the request with a different reason and a correct
    // hash, claiming the same seq: only its position gives it away.
    let mut forged = export::parse_line(&lines[requested]).unwrap();
    forged
        .entry
        .details
        .insert("reason".into(), "routine check".into());
    forged.hash = forged.entry.hash();
    assert_eq!(forged.entry.seq, requested as u64);
    let mut inserted = lines.clone();
    inserted.insert(requested + 1, export::to_json(&forged).to_string());
    assert_verify_fails(
        &verify("inserted.jsonl", &inserted),
        requested + 2,
        requested,
        "inserted",
    );

    let mut swapped = lines.clone();
    swapped.swap(added, added + 1);
    assert_verify_fails(
        &verify("swapped.jsonl", &swapped),
        added + 1,
        added,
        "reordered",
    );
}

#[tokio::test]
async fn the_server_detects_an_entry_changed_in_its_files() {
    let mut s = TestServer::start().await;
    let mut eve = s.enrol("eve", Role::Auditor).await;
    let mut alice = s.enrol("alice", Role::Support).await;
    let mut acme = s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let g = request(&mut alice, "acme", "INC-1").await;
    assert!(validate(&mut acme, &g.id).await.allowed);

    let before = s.entries().await;
    let report = verify_chain(&mut eve).await;
    assert!(report.ok, "{}", report.problem);
    assert_eq!(report.entries_checked, before.len() as u64);
    assert_eq!(report.head_hash, before.last().unwrap().hash.to_vec());
    assert_eq!((report.first_bad_seq, report.problem.as_str()), (0, ""));
    drop((eve, alice, acme));

    let victim = before
        .iter()
        .find(|e| e.entry.kind == "grant.requested")
        .unwrap()
        .entry
        .clone();
    assert_eq!(victim.actor, "staff/alice");
    let seq = victim.seq;
    assert!(seq > 0 && seq + 1 < before.len() as u64, "a middle entry");

    s.stop().await;
    {
        let store = s.open_driver();
        let log = store.raw_log();
        let stored = log
            .get(seq.to_be_bytes())
            .unwrap()
            .expect("stored")
            .to_vec();
        assert_eq!(&stored[..32], &before[seq as usize].hash[..]);
        assert_eq!(&stored[32..], &victim.encode()[..]);
        // hash(32) | version(1) seq(8) timestamp(8) actor_len(4) actor...:
        // the actor's last character, every length intact.
        let last_char = 32 + 1 + 8 + 8 + 4 + victim.actor.len() - 1;
        let mut tampered = stored.clone();
        tampered[last_char] = b'x';
        assert_eq!(Entry::decode(&tampered[32..]).unwrap().actor, "staff/alicx");
        assert!(!daypass::ledger::driver::sled::stored_hash_matches(
            &tampered
        ));
        log.insert(seq.to_be_bytes(), tampered).unwrap();
        log.flush().unwrap();
    }
    s.start_again().await;
    let mut eve = s.auditor("eve").await;
    let report = verify_chain(&mut eve).await;
    assert!(!report.ok);
    assert_eq!(report.first_bad_seq, seq);
    assert_eq!(report.entries_checked, seq, "everything before it checked");
    assert!(report.problem.contains("modified"), "{}", report.problem);
    // The finding is itself in the log.
    let found = s
        .wait_for("audit.verified failure", |e| {
            e.entry.kind == "audit.verified"
                && e.entry.details.get("ok").map(String::as_str) == Some("false")
        })
        .await;
    assert_eq!(found.entry.details["first_bad_seq"], seq.to_string());
}

#[tokio::test]
async fn restarts_continue_the_chain_without_fork_or_gap() {
    let mut s = TestServer::start().await;
    let mut alice = s.enrol("alice", Role::Support).await;
    let mut acme = s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let g = request(&mut alice, "acme", "INC-1").await;
    assert!(validate(&mut acme, &g.id).await.allowed);
    drop((alice, acme));

    let mut seen = s.entries().await;
    for round in 1..=2 {
        s.restart().await;
        let mut acme = s.tenant("acme").await;
        let v = validate(&mut acme, &g.id).await;
        assert!(v.allowed, "round {round}: {:?}", deny_reason(&v));
        // The restarted server writes, too.
        let mut bob = s.enrol(&format!("bob{round}"), Role::Support).await;
        request(&mut bob, "acme", "INC-2").await;

        let now = s.entries().await;
        assert_one_chain(&now);
        assert_eq!(
            &now[..seen.len()],
            &seen[..],
            "round {round}: the log before the restart is unchanged"
        );
        let (stopped, started) = (&now[seen.len()].entry, &now[seen.len() + 1].entry);
        assert_eq!(
            (stopped.kind.as_str(), started.kind.as_str()),
            ("server.stopped", "server.started"),
            "round {round}"
        );
        assert_eq!(stopped.details["detail"], "shutdown");
        assert_eq!(
            started.details["detail"],
            format!("listening on {}", s.addr)
        );
        seen = now;
    }
    let k = kinds(&seen);
    let count = |kind: &str| k.iter().filter(|k| **k == kind).count();
    assert_eq!((count("server.started"), count("server.stopped")), (3, 2));
    assert_eq!(count("grant.activated"), 3);
    assert_eq!(count("validation.allowed"), 3);
    assert_eq!(count("grant.expired"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_requests_make_one_gap_free_chain() {
    // 4 engineers, one connection each, on 50 tenants: 200 requests.
    const ENGINEERS: usize = 4;
    const TENANTS: usize = 50;
    let s = TestServer::start().await;
    let mut admin = s.admin().await;
    for t in 0..TENANTS {
        admin
            .tenants
            .add_tenant(pb::AddTenantRequest {
                name: format!("t{t}"),
                approval: ApprovalPolicy::Auto as i32,
                require_ticket: false,
                require_declaration: false,
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let mut engineers = Vec::new();
    for e in 0..ENGINEERS {
        engineers.push(s.enrol(&format!("e{e}"), Role::Support).await);
    }

    let mut tasks = Vec::new();
    for (e, clients) in engineers.iter().enumerate() {
        for t in 0..TENANTS {
            let mut c = clients.clone(); // the engineer's one connection
            tasks.push(tokio::spawn(async move {
                let r = c
                    .grants
                    .request_grant(grant_request(&format!("t{t}"), &format!("load {e}/{t}"), 0))
                    .await;
                (format!("e{e}"), format!("t{t}"), r)
            }));
        }
    }
    let mut ids = BTreeSet::new();
    for task in tasks {
        let (holder, tenant, r) = task.await.expect("task");
        let g = r
            .unwrap_or_else(|st| panic!("{holder} on {tenant}: {st}"))
            .into_inner();
        assert_eq!((&g.holder, &g.tenant), (&holder, &tenant));
        assert_eq!(g.state, pb::GrantState::Active as i32);
        assert!(ids.insert(g.id.clone()), "grant id {} repeated", g.id);
    }
    assert_eq!(ids.len(), ENGINEERS * TENANTS);

    let entries = s.entries().await;
    assert_one_chain(&entries);
    let count = |kind: &str| entries.iter().filter(|e| e.entry.kind == kind).count();
    assert_eq!(count("grant.requested"), 200);
    assert_eq!(count("grant.activated"), 200);
    // Each request and its activation are one transaction: adjacent, same
    // grant, same time.
    let mut logged = BTreeSet::new();
    for (i, e) in entries.iter().enumerate() {
        if e.entry.kind != "grant.requested" {
            continue;
        }
        let next = &entries[i + 1].entry;
        assert_eq!(next.kind, "grant.activated", "after seq {i}");
        assert_eq!(next.details["grant"], e.entry.details["grant"]);
        assert_eq!(next.timestamp, e.entry.timestamp);
        logged.insert(e.entry.details["grant"].clone());
    }
    assert_eq!(logged, ids, "the logged grants are the granted ones");
}

/// The next message of a log stream, or a failure after [`PATIENCE`].
async fn next_entry(stream: &mut tonic::Streaming<pb::LogEntry>) -> pb::LogEntry {
    tokio::time::timeout(PATIENCE, stream.message())
        .await
        .expect("an entry arrives in time")
        .expect("stream ok")
        .expect("stream still open")
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
    let first = next_entry(&mut stream).await;
    assert_eq!(
        (first.kind.as_str(), first.details["name"].as_str()),
        ("staff.enrolled", "eve")
    );
    let read = next_entry(&mut stream).await;
    assert_eq!(read.kind, "audit.read");
    assert_eq!(read.seq, first.seq + 1);
    assert_eq!(read.details["purpose"], "tail");
    assert_eq!(read.details["follow"], "true");
    assert_eq!(read.details["from_seq"], first.seq.to_string());

    // Another client makes a call; the follower sees its entry.
    let mut alice = s.enrol("alice", Role::Support).await;
    let enrolled = next_entry(&mut stream).await;
    assert_eq!(
        (enrolled.kind.as_str(), enrolled.details["name"].as_str()),
        ("staff.enrolled", "alice")
    );
    s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let added = next_entry(&mut stream).await;
    assert_eq!(
        (added.kind.as_str(), added.tenant.as_str()),
        ("tenant.added", "acme")
    );
    let g = request(&mut alice, "acme", "INC-7").await;
    let requested = next_entry(&mut stream).await;
    assert_eq!(requested.kind, "grant.requested");
    assert_eq!(requested.details["grant"], g.id);

    // What was followed is a gap-free piece of the chain.
    let followed: Vec<_> = [first, read, enrolled, added, requested]
        .iter()
        .map(sealed)
        .collect();
    for w in followed.windows(2) {
        assert_eq!(w[1].entry.seq, w[0].entry.seq + 1);
        assert_eq!(w[1].entry.prev_hash, w[0].hash);
        assert_eq!(w[1].entry.hash(), w[1].hash);
    }
}

/// A real server's exports, as the CLI writes them, for the Python verifier:
/// a full one without and one with its checkpoint, and acme's tenant-scoped
/// one with its checkpoint.
struct Exports {
    /// Holds the server's directory, where `key` is.
    _server: TestServer,
    /// eve, an auditor.
    auditor: daypass::client::Clients,
    work: tempfile::TempDir,
    /// `audit export` without a checkpoint.
    plain: std::path::PathBuf,
    full: std::path::PathBuf,
    cp: std::path::PathBuf,
    tenant: std::path::PathBuf,
    tenant_cp: std::path::PathBuf,
    /// The log's verifier key, log.pub.
    key: std::path::PathBuf,
}

const VERIFY_EXPORT_PY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/verify_export.py");

impl Exports {
    /// `None` (after a loud SKIP) without python3, except under CI.
    async fn make() -> Option<Exports> {
        python::python3_version(
            "tests/audit.rs",
            "The independent Python verifier (docs/verify_export.py)",
            "Python 3",
        )?;
        let s = TestServer::start().await;
        let auditor = s.enrol("eve", Role::Auditor).await;
        let mut alice = s.enrol("alice", Role::Support).await;
        let mut acme = s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
        let g = request(&mut alice, "acme", "INC-1 ünïcödé reason").await;
        validate(&mut acme, &g.id).await;
        let work = tempfile::tempdir().expect("tempdir");
        let path = |name: &str| work.path().join(name);
        let (plain, full, cp) = (path("log.jsonl"), path("full.jsonl"), path("cp.txt"));
        let (tenant, tenant_cp) = (path("acme.jsonl"), path("acme-cp.txt"));
        for (out, checkpoint, t) in [
            (&plain, None, None),
            (&full, Some(&cp), None),
            (&tenant, Some(&tenant_cp), Some("acme")),
        ] {
            let mut args: Vec<String> = ["audit", "export", "-o"].map(String::from).into();
            args.push(out.display().to_string());
            args.extend(auditor_flags(&s, work.path()));
            if let Some(cp) = checkpoint {
                args.extend(["--checkpoint".into(), cp.display().to_string()]);
            }
            if let Some(t) = t {
                args.extend(["--tenant".into(), t.into()]);
            }
            let o = cli::run_async(work.path().to_owned(), args).await;
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        }
        let key = s.config.log_key_path().with_file_name("log.pub");
        Some(Exports {
            _server: s,
            auditor,
            work,
            plain,
            full,
            cp,
            tenant,
            tenant_cp,
            key,
        })
    }

    /// Writes `lines` (one JSON object each) as the export `name`.
    fn write(&self, name: &str, lines: &[String]) -> std::path::PathBuf {
        let p = self.work.path().join(name);
        std::fs::write(
            &p,
            lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
        )
        .expect("write");
        p
    }

    /// `python3 docs/verify_export.py FILE [--checkpoint CP --log-key KEY]`.
    fn python(&self, file: &Path, cp: Option<&Path>, key: &Path) -> Output {
        let mut cmd = Command::new("python3");
        cmd.arg(VERIFY_EXPORT_PY).arg(file);
        if let Some(cp) = cp {
            cmd.arg("--checkpoint").arg(cp).arg("--log-key").arg(key);
        }
        cmd.output().expect("python3")
    }

    /// `daypass audit verify FILE [--checkpoint CP --log-key KEY]`.
    fn rust(&self, file: &Path, cp: Option<&Path>) -> Output {
        let mut args = vec!["audit".into(), "verify".into(), file.display().to_string()];
        if let Some(cp) = cp {
            args.extend(["--checkpoint".into(), cp.display().to_string()]);
            args.extend(["--log-key".into(), self.key.display().to_string()]);
        }
        cli::run(self.work.path(), args)
    }
}

fn lines_of(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .expect("read")
        .lines()
        .map(String::from)
        .collect()
}

/// Refused with exit status 1 and one line on stderr that names line
/// `line` of `file` (no traceback, no panic); returns stderr.
fn assert_refused(out: &Output, file: &Path, line: usize, what: &str) -> String {
    let err = one_line_error(out, what);
    let wanted = format!("{}: line {line}: ", file.display());
    assert!(
        err.contains(&wanted),
        "{what}: {err:?} should name {wanted:?}"
    );
    err
}

/// docs/verify_export.py, written from docs/log-format.md alone, must agree
/// with the Rust verifier on a real export and on a tampered one. Without
/// python3 it says SKIPPED loudly and passes, except under CI (`CI` set),
/// where it fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_independent_python_verifier_agrees() {
    let Some(x) = Exports::make().await else {
        return;
    };
    let file = &x.plain;
    let ok = x.python(file, None, &x.key);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let rust = x.rust(file, None);
    assert_eq!(
        String::from_utf8_lossy(&ok.stdout),
        String::from_utf8_lossy(&rust.stdout),
        "same entry count and head"
    );
    let text = std::fs::read_to_string(file).expect("read");
    let bad = x.write(
        "bad.jsonl",
        &[text.replacen(
            "\"kind\":\"grant.requested\"",
            "\"kind\":\"grant.requestex\"",
            1,
        )],
    );
    assert_ne!(text, std::fs::read_to_string(&bad).expect("read"));
    assert!(!x.python(&bad, None, &x.key).status.success());

    // With the signed checkpoint and the log key: the Ed25519 signature and
    // the Merkle root (full export), or every inclusion proof (tenant export).
    let ok = x.python(&x.full, Some(&x.cp), &x.key);
    let n = lines_of(&x.full).len();
    assert!(
        String::from_utf8_lossy(&ok.stdout)
            .ends_with(&format!("; the first {n} hash to the checkpoint's root\n")),
        "{}{}",
        String::from_utf8_lossy(&ok.stdout),
        String::from_utf8_lossy(&ok.stderr)
    );
    let ok = x.python(&x.tenant, Some(&x.tenant_cp), &x.key);
    let proven = lines_of(&x.tenant).len();
    assert!(proven >= 3);
    assert!(
        String::from_utf8_lossy(&ok.stdout)
            .starts_with(&format!("OK: {proven} entries proven included")),
        "{}{}",
        String::from_utf8_lossy(&ok.stdout),
        String::from_utf8_lossy(&ok.stderr)
    );
    // An edited tenant entry, a wrong key and a re-hashed forgery all fail.
    let text = std::fs::read_to_string(&x.tenant).expect("read");
    let edited = x.write("acme-edited.jsonl", &[text.replacen("acme", "acmf", 1)]);
    assert!(
        !x.python(&edited, Some(&x.tenant_cp), &x.key)
            .status
            .success()
    );
    let other = x.work.path().join("other");
    daypass::pki::create_log_key(&other, "test.daypass/log", false).expect("key");
    let wrong = x.python(&x.full, Some(&x.cp), &other.join("log.pub"));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("no valid signature"));
    let forged = x.write("forged.jsonl", &rehashed_forgery(&x.full));
    assert!(
        x.python(&forged, None, &x.key).status.success(),
        "the chain alone is fooled"
    );
    let caught = x.python(&forged, Some(&x.cp), &x.key);
    let err = String::from_utf8_lossy(&caught.stderr);
    assert!(
        err.starts_with(&format!("{}: unproven: ", forged.display())),
        "{err}"
    );
}

/// `full` with entry 2's kind changed and every hash recomputed: a chain
/// that verifies on its own but is not the log the checkpoint signed.
fn rehashed_forgery(full: &Path) -> Vec<String> {
    let mut prev = GENESIS_PREV_HASH;
    lines_of(full)
        .iter()
        .map(|l| {
            let mut e = export::parse_line(l).expect("line");
            if e.entry.seq == 2 {
                e.entry.kind = "staff.offboarded".into();
            }
            e.entry.prev_hash = prev;
            e.hash = e.entry.hash();
            prev = e.hash;
            export::to_json(&e).to_string()
        })
        .collect()
}

/// The forgeries an independent review made docs/verify_export.py accept
/// (issue 12, finding 12) are refused, each with a message naming the bad
/// line, and so does `daypass audit verify`; the honest exports still
/// verify with both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_verifier_refuses_forged_exports() {
    let Some(mut x) = Exports::make().await else {
        return;
    };
    let (full, tenant) = (lines_of(&x.full), lines_of(&x.tenant));
    for (file, cp) in [
        (&x.plain, None),
        (&x.full, Some(&x.cp)),
        (&x.tenant, Some(&x.tenant_cp)),
    ] {
        let cp = cp.map(|p: &std::path::PathBuf| p.as_path());
        let py = x.python(file, cp, &x.key);
        assert!(
            py.status.success(),
            "{}",
            String::from_utf8_lossy(&py.stderr)
        );
        cli::assert_ok(&x.rust(file, cp), "the CLI on an honest export");
    }

    // (a) A re-hashed forgery of the whole log, with one genuine line and
    // its real inclusion proof in the checkpoint's tree appended: one proven
    // line must not vouch for the rest. The appended line mixes the two
    // kinds of export.
    let size: u64 = std::fs::read_to_string(&x.cp)
        .expect("read")
        .lines()
        .nth(1)
        .and_then(|l| l.parse().ok())
        .expect("the checkpoint's size");
    let proof = x
        .auditor
        .audit
        .get_inclusion_proof(pb::GetInclusionProofRequest {
            seq: 0,
            tree_size: size,
        })
        .await
        .expect("a proof of entry 0")
        .into_inner();
    let mut genuine: serde_json::Value = serde_json::from_str(&full[0]).expect("json");
    genuine["inclusion"] = proof.hashes.iter().map(hex::encode).collect();
    let mut a = rehashed_forgery(&x.full);
    a.push(genuine.to_string());
    let a = x.write("forged-a.jsonl", &a);
    let err = assert_refused(
        &x.python(&a, Some(&x.cp), &x.key),
        &a,
        full.len() + 1,
        "(a) python",
    );
    assert!(
        err.contains("has an inclusion proof but line 1 does not"),
        "{err}"
    );
    assert_refused(&x.rust(&a, Some(&x.cp)), &a, full.len() + 1, "(a) CLI");
    // The same forgery with the genuine line first: a tenant export whose
    // second line has no proof.
    let mut a2 = vec![tenant[0].clone()];
    a2.extend(rehashed_forgery(&x.full));
    let a2 = x.write("forged-a2.jsonl", &a2);
    let err = assert_refused(
        &x.python(&a2, Some(&x.tenant_cp), &x.key),
        &a2,
        2,
        "(a') python",
    );
    assert!(
        err.contains("has no inclusion proof but line 1 does"),
        "{err}"
    );
    assert_refused(&x.rust(&a2, Some(&x.tenant_cp)), &a2, 2, "(a') CLI");

    // (b) acme's export with a made-up access.recorded entry in front: seq
    // 0, the genesis prev_hash, a correct hash, and no inclusion proof.
    let first = export::parse_line(&tenant[0]).expect("line");
    let made_up = Entry {
        seq: 0,
        timestamp: first.entry.timestamp,
        actor: "tenant/acme".into(),
        tenant: "acme".into(),
        kind: "access.recorded".into(),
        details: [
            ("action", "ssh"),
            ("grant", "g-000000000000000000000000"),
            ("holder", "alice"),
            ("resource", "db-1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect(),
        sealed: None,
        prev_hash: GENESIS_PREV_HASH,
    }
    .seal();
    let mut b = vec![export::to_json(&made_up).to_string()];
    b.extend(tenant.iter().cloned());
    let b = x.write("forged-b.jsonl", &b);
    let err = assert_refused(
        &x.python(&b, Some(&x.tenant_cp), &x.key),
        &b,
        2,
        "(b) python",
    );
    assert!(
        err.contains("has an inclusion proof but line 1 does not"),
        "{err}"
    );
    assert_refused(&x.rust(&b, Some(&x.tenant_cp)), &b, 2, "(b) CLI");

    // (c) A member docs/log-format.md §4 does not list, in a full export
    // (with and without its checkpoint) and in a tenant export.
    let with_extra = |line: &str| {
        let mut v: serde_json::Value = serde_json::from_str(line).expect("json");
        v["approved_by"] = "the auditor".into();
        v.to_string()
    };
    let mut c = full.clone();
    c[2] = with_extra(&c[2]);
    let c = x.write("forged-c.jsonl", &c);
    let mut c_tenant = tenant.clone();
    c_tenant[1] = with_extra(&c_tenant[1]);
    let c_tenant = x.write("forged-c-tenant.jsonl", &c_tenant);
    for (file, cp, line) in [
        (&c, None, 3),
        (&c, Some(&x.cp), 3),
        (&c_tenant, Some(&x.tenant_cp), 2),
    ] {
        let cp = cp.map(|p: &std::path::PathBuf| p.as_path());
        let err = assert_refused(&x.python(file, cp, &x.key), file, line, "(c) python");
        assert!(err.contains("unknown member 'approved_by'"), "{err}");
        assert_refused(&x.rust(file, cp), file, line, "(c) CLI");
    }
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

fn follow_request() -> pb::StreamEntriesRequest {
    pb::StreamEntriesRequest {
        follow: true,
        purpose: pb::ReadPurpose::Tail as i32,
        ..Default::default()
    }
}

/// A stream opened before its caller was offboarded ends, with
/// PERMISSION_DENIED, before it delivers the offboarding or anything after
/// it; the refusal is logged.
#[tokio::test]
async fn a_follow_stream_ends_when_its_caller_is_offboarded() {
    let s = TestServer::start().await;
    let mut admin = s.admin().await;
    let mut eve = s.enrol("eve", Role::Auditor).await;
    let mut stream = eve
        .audit
        .stream_entries(follow_request())
        .await
        .unwrap()
        .into_inner();
    // Catch up with the log (it ends with eve's own audit.read).
    loop {
        if next_entry(&mut stream).await.kind == "audit.read" {
            break;
        }
    }
    let off = admin
        .staff
        .offboard_staff(pb::OffboardStaffRequest { name: "eve".into() })
        .await
        .unwrap()
        .into_inner();
    let offboarded_at = off.receipt.expect("receipt").seq;
    let ended = loop {
        match tokio::time::timeout(PATIENCE, stream.message())
            .await
            .expect("the stream answers in time")
        {
            Ok(Some(e)) => assert!(
                e.seq < offboarded_at,
                "entry {} ({}) delivered to an offboarded auditor",
                e.seq,
                e.kind
            ),
            Ok(None) => panic!("the stream ended without saying why"),
            Err(st) => break st,
        }
    };
    assert_eq!(ended.code(), tonic::Code::PermissionDenied, "{ended:?}");
    assert!(
        ended.message().contains("offboarded"),
        "{}",
        ended.message()
    );
    let refused = s
        .wait_for("the stream's refusal", |e| {
            e.entry.kind == "call.refused" && e.entry.actor == "auditor/eve"
        })
        .await;
    assert_eq!(refused.entry.details["call"], "StreamEntries");
}

/// One principal holds a bounded number of log streams; a closed one frees
/// its slot.
#[tokio::test]
async fn log_streams_per_principal_are_bounded() {
    let s = TestServer::start().await;
    let mut eve = s.enrol("eve", Role::Auditor).await;
    let max = daypass::service::MAX_STREAMS_PER_PRINCIPAL;
    let mut open = Vec::new();
    for _ in 0..max {
        let mut st = eve
            .audit
            .stream_entries(follow_request())
            .await
            .unwrap()
            .into_inner();
        next_entry(&mut st).await;
        open.push(st);
    }
    let refused = eve
        .audit
        .stream_entries(follow_request())
        .await
        .expect_err("one stream too many");
    assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
    assert!(
        refused.message().contains(&format!("{max} log streams")),
        "{}",
        refused.message()
    );
    // Another principal is not affected.
    let mut ada = s.admin().await;
    ada.audit
        .stream_entries(follow_request())
        .await
        .expect("another principal's stream");
    // Closing one frees a slot (the server notices the closed stream when
    // it next has something to send: make an entry).
    drop(open.pop());
    let mut freed = false;
    for i in 0..50 {
        s.add_tenant(&format!("t{i}"), ApprovalPolicy::Auto, false)
            .await;
        match eve.audit.stream_entries(follow_request()).await {
            Ok(_) => {
                freed = true;
                break;
            }
            Err(st) => assert_eq!(st.code(), tonic::Code::ResourceExhausted),
        }
    }
    assert!(freed, "a closed stream's slot was never freed");
}
