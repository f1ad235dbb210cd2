//! `audit export --format csv|ocsf` through the real binary against a real
//! server (docs/siem.md §2, §3): every entry once, in log order, in the
//! documented shape; `--checkpoint` refused for the unverifiable formats;
//! the closing summary as one JSON object with `--json`.

mod common;

use std::path::Path;

use common::{cli, *};
use daypass::{
    identity::PrincipalKind,
    pb::{ApprovalPolicy, Role},
    siem::ocsf,
};
use serde_json::Value;

/// The CLI's connection flags as auditor eve.
fn auditor_flags(s: &TestServer, dir: &Path) -> Vec<String> {
    s.cli_flags(dir, PrincipalKind::Auditor, "eve")
}

async fn story(s: &TestServer) {
    s.enrol("eve", Role::Auditor).await;
    let mut alice = s.enrol("alice", Role::Support).await;
    let mut acme = s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    // A reason a CSV must quote: a comma and quotes (free text holds no
    // control characters).
    let g = request(&mut alice, "acme", "INC-1, \"login\" fails").await;
    assert!(validate(&mut acme, &g.id).await.allowed);
    revoke(&mut s.admin().await, &g.id, "done").await;
}

/// Runs `audit export ARGS -o FILE` (with `--json` when asked); returns
/// the file and stderr.
async fn export(s: &TestServer, dir: &Path, args: &[&str], json: bool) -> (String, String) {
    let file = dir.join("out");
    let mut a: Vec<String> = ["audit", "export", "-o"].map(String::from).into();
    a.push(file.display().to_string());
    a.extend(args.iter().map(|s| (*s).to_owned()));
    // Connection flags go after the command.
    a.extend(auditor_flags(s, dir));
    if json {
        a.push("--json".into());
    }
    let out = cli::run_async(dir.to_owned(), a).await;
    let err = cli::text(&out.stderr);
    assert!(out.status.success(), "{err}");
    (std::fs::read_to_string(&file).expect("the export"), err)
}

/// A minimal RFC 4180 reader: quoted fields may hold commas, `""` and
/// line breaks; records end with CRLF.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let (mut rows, mut row, mut field) = (Vec::new(), Vec::new(), String::new());
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {
                assert_eq!(chars.next(), Some('\n'), "CRLF");
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    assert!(
        row.is_empty() && field.is_empty(),
        "the last record ends with CRLF"
    );
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_export_has_a_fixed_header_and_one_quoted_row_per_entry() {
    let s = TestServer::start().await;
    story(&s).await;
    let work = tempfile::tempdir().expect("tmp");
    let (text, err) = export(&s, work.path(), &["--format", "csv"], false).await;
    let rows = parse_csv(&text);
    assert_eq!(
        rows[0],
        [
            "seq", "time", "kind", "actor", "tenant", "grant", "holder", "details"
        ]
    );
    let entries = s.entries().await;
    let body = &rows[1..];
    assert!(
        body.len() >= 8 && body.len() < entries.len(),
        "{}",
        body.len()
    );
    for (i, r) in body.iter().enumerate() {
        let e = &entries[i].entry;
        assert_eq!(r[0], e.seq.to_string(), "in log order from 0");
        assert_eq!(r[1], e.timestamp.to_rfc3339());
        assert_eq!(
            (r[2].as_str(), r[3].as_str(), r[4].as_str()),
            (e.kind.as_str(), e.actor.as_str(), e.tenant.as_str())
        );
        assert_eq!(r[5], e.details.get("grant").cloned().unwrap_or_default());
        assert_eq!(r[6], e.details.get("holder").cloned().unwrap_or_default());
        let details: Value = serde_json::from_str(&r[7]).expect("details JSON");
        assert_eq!(details, serde_json::to_value(&e.details).expect("json"));
    }
    let requested = body
        .iter()
        .find(|r| r[2] == "grant.requested")
        .expect("a request");
    let details: Value = serde_json::from_str(&requested[7]).expect("json");
    assert_eq!(
        details["reason"], "INC-1, \"login\" fails",
        "the quoted reason survives"
    );
    assert!(
        err.starts_with(&format!("exported {} entries to ", body.len())),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ocsf_export_maps_each_entry_to_its_class() {
    let s = TestServer::start().await;
    story(&s).await;
    let work = tempfile::tempdir().expect("tmp");
    let (text, err) = export(&s, work.path(), &["--format", "ocsf", "--from", "1"], true).await;
    let entries = s.entries().await;
    let events: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object a line"))
        .collect();
    for (i, v) in events.iter().enumerate() {
        let e = &entries[i + 1].entry;
        let class = ocsf::class_of(e);
        assert_eq!(v["metadata"]["sequence"], e.seq, "from --from, in order");
        assert_eq!(v["metadata"]["event_code"], e.kind.as_str());
        assert_eq!(v["class_uid"], class.class_uid);
        assert_eq!(v["type_uid"], class.type_uid());
        assert_eq!(v["time"], e.timestamp.millis());
        assert_eq!(v["actor"]["user"]["name"], e.actor.as_str());
        assert_eq!(
            v["unmapped"]["details"],
            serde_json::to_value(&e.details).expect("json")
        );
        assert!(v["severity_id"].as_u64().is_some() && v["status_id"].as_u64().is_some());
    }
    let by_kind = |k: &str| {
        events
            .iter()
            .find(|v| v["metadata"]["event_code"] == k)
            .unwrap_or_else(|| panic!("no {k}"))
    };
    assert_eq!(by_kind("staff.enrolled")["type_uid"], 300101);
    assert_eq!(by_kind("tenant.added")["type_uid"], 300401);
    assert_eq!(by_kind("grant.activated")["type_uid"], 300501);
    assert_eq!(by_kind("grant.revoked")["type_uid"], 300502);
    assert_eq!(by_kind("validation.allowed")["type_uid"], 300301);
    assert_eq!(by_kind("audit.read")["type_uid"], 600302);
    // --json: the summary is one JSON object on stderr.
    let summary: Value = serde_json::from_str(err.trim()).expect("one JSON object");
    assert_eq!(summary["exported"], events.len());
    assert_eq!(summary["format"], "ocsf");
    assert!(summary["to"].as_str().is_some_and(|t| t.ends_with("out")));
    assert_eq!(summary["checkpoint"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verifiable_flags_need_jsonl_and_jsonl_summaries_are_json_too() {
    let s = TestServer::start().await;
    story(&s).await;
    let work = tempfile::tempdir().expect("tmp");
    let cp = work.path().join("cp");
    let mut args: Vec<String> = ["audit", "export", "--format", "csv", "--checkpoint"]
        .map(String::from)
        .into();
    args.push(cp.display().to_string());
    args.extend(auditor_flags(&s, work.path()));
    let out = cli::run_async(work.path().to_owned(), args).await;
    let err = cli::one_line_error(&out, "csv with --checkpoint");
    assert!(
        err.contains("--format jsonl") && err.contains("csv"),
        "{err}"
    );
    assert!(!cp.exists(), "nothing written");

    let (text, err) = export(
        &s,
        work.path(),
        &["--checkpoint", &cp.display().to_string()],
        true,
    )
    .await;
    let summary: Value = serde_json::from_str(err.trim()).expect("one JSON object");
    assert_eq!(summary["exported"], text.lines().count());
    assert_eq!(summary["checkpoint"], cp.display().to_string());
    assert_eq!(summary["format"], "jsonl");
}
