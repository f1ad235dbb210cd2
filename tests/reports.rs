//! Access reports (docs/compliance/reports.md): `daypass report access`
//! against a real server writes a tenant's report for a period (HTML, two
//! CSV files, the proven slice and the signed checkpoint), `report verify`
//! checks it offline, and finds a left-out entry, an edited page or CSV and
//! a forged index; only the tenant itself, admins and auditors make one.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use common::{cli, *};
use daypass::{clock::Clock as _, identity::PrincipalKind, pb};
use tonic::Code;

const HOUR: i64 = 3600;

/// Runs the CLI in `work` with `args` then `flags`.
async fn run(work: &Path, args: &[&str], flags: &[String]) -> std::process::Output {
    let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    all.extend(flags.iter().cloned());
    cli::run_async(work.to_owned(), all).await
}

fn read(p: PathBuf) -> String {
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// `report verify DIR --log-key K`.
async fn verify(s: &TestServer, work: &Path, dir: &Path) -> std::process::Output {
    let key = s.log_verifier().to_string();
    run(
        work,
        &["report", "verify", dir.to_str().unwrap(), "--log-key", &key],
        &[],
    )
    .await
}

fn copy(dir: &Path, to: &Path) -> PathBuf {
    copy_dir(dir, to);
    to.to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_report_lists_who_had_access_and_proves_it_is_complete() {
    let s = TestServer::start().await;
    let mut acme = s.add_tenant("acme", pb::ApprovalPolicy::Auto, false).await;
    let mut globex = s
        .add_tenant("globex", pb::ApprovalPolicy::Auto, false)
        .await;
    let mut alice = s.enrol("alice", pb::Role::Support).await;
    let mut bob = s.enrol("bob", pb::Role::Support).await;

    let t0 = s.clock.now();
    let g = request(&mut alice, "acme", "INC-1 orders stuck").await;
    record_access(&mut acme, &g.id, "read", "db/orders").await;
    let other = request(&mut bob, "globex", "GLOBEX-ONLY reason").await;
    record_access(&mut globex, &other.id, "read", "globex/secret").await;
    s.clock.advance_secs(2 * HOUR);
    release(&mut alice, &g.id).await;
    // A day later, outside the period: bob on acme.
    s.clock.advance_secs(24 * HOUR);
    let late = request(&mut bob, "acme", "INC-2 later").await;
    record_access(&mut acme, &late.id, "write", "db/late").await;

    let work = tempfile::tempdir().unwrap();
    let flags = s.cli_flags(work.path(), PrincipalKind::Tenant, "acme");
    let dir = work.path().join("acme-report");
    let from = t0.plus_secs(-HOUR).to_rfc3339();
    let to = t0.plus_secs(3 * HOUR).to_rfc3339();
    let out = run(
        work.path(),
        &[
            "report",
            "access",
            "--from",
            &from,
            "--to",
            &to,
            "--out",
            dir.to_str().unwrap(),
        ],
        &flags,
    )
    .await;
    let stdout = cli::assert_ok(&out, "report access");
    assert!(stdout.contains("1 grants, 1 accesses"), "{stdout}");
    assert!(stdout.contains("Complete"), "{stdout}");

    let grants = read(dir.join("grants.csv"));
    let mut lines = grants.split("\r\n");
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("grant,holder,reason,ticket,")
    );
    let row = lines.next().unwrap();
    assert!(
        row.starts_with(&format!("{},alice,INC-1 orders stuck,", g.id)),
        "{row}"
    );
    assert!(
        row.contains(",released,released by staff/alice,1,"),
        "{row}"
    );
    assert_eq!(lines.next(), Some(""), "one grant only: {grants}");
    let accesses = read(dir.join("accesses.csv"));
    assert!(
        accesses.contains(&format!(",{},alice,read,db/orders,true\r\n", g.id)),
        "{accesses}"
    );
    assert_eq!(accesses.matches("\r\n").count(), 2, "{accesses}");
    let html = read(dir.join("report.html"));
    assert!(html.contains("Access report for tenant acme"), "{html}");
    assert!(html.contains("db/orders") && html.contains("INC-1 orders stuck"));
    // Another tenant's entries are nowhere; later ones of acme's are in
    // the slice (it runs to the report's entry) but not in what is shown.
    for absent in ["GLOBEX-ONLY", "globex/secret", "INC-2 later", "db/late"] {
        for f in ["report.html", "grants.csv", "accesses.csv"] {
            assert!(!read(dir.join(f)).contains(absent), "{absent} in {f}");
        }
    }
    assert!(!read(dir.join("slice.jsonl")).contains("globex"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("slice.jsonl")), 0o600);
    }

    let ok = verify(&s, work.path(), &dir).await;
    let said = cli::assert_ok(&ok, "report verify");
    assert!(
        said.contains("none of the scope's entries is missing"),
        "{said}"
    );

    // Left out: any entry of the slice but the report's own.
    let slice = read(dir.join("slice.jsonl"));
    let n = slice.lines().count();
    assert!(n >= 4, "{slice}");
    for drop in [0, n / 2, n - 2] {
        let bad = copy(&dir, &work.path().join(format!("dropped-{drop}")));
        let kept: Vec<&str> = slice
            .lines()
            .enumerate()
            .filter(|(i, _)| *i != drop)
            .map(|(_, l)| l)
            .collect();
        std::fs::write(bad.join("slice.jsonl"), kept.join("\n") + "\n").unwrap();
        let seq: serde_json::Value =
            serde_json::from_str(slice.lines().nth(drop).unwrap()).unwrap();
        let err = cli::one_line_error(&verify(&s, work.path(), &bad).await, "dropped");
        assert!(
            err.contains(&format!("entry {} is missing", seq["seq"])),
            "{err}"
        );
    }

    // Edited after the fact: the page and each CSV.
    for (file, from, to) in [
        ("grants.csv", "alice", "mallory"),
        ("accesses.csv", "db/orders", "db/nothing"),
        ("report.html", "INC-1 orders stuck", "routine check"),
    ] {
        let bad = copy(&dir, &work.path().join(format!("edited-{file}")));
        let text = read(bad.join(file)).replacen(from, to, 1);
        std::fs::write(bad.join(file), text).unwrap();
        let err = cli::one_line_error(&verify(&s, work.path(), &bad).await, file);
        assert!(err.contains(file) && err.contains("was changed"), "{err}");
    }

    // A slice that is not JSON Lines is named with its line.
    let bad = copy(&dir, &work.path().join("garbage"));
    let mut text = read(bad.join("slice.jsonl"));
    text.insert_str(0, "{not json\n");
    std::fs::write(bad.join("slice.jsonl"), text).unwrap();
    let err = cli::one_line_error(&verify(&s, work.path(), &bad).await, "garbage");
    assert!(err.contains("slice.jsonl: line 1"), "{err}");
    // Not a report's directory at all.
    let err = cli::one_line_error(&verify(&s, work.path(), work.path()).await, "no report");
    assert!(err.contains("not a report's directory"), "{err}");

    // Another log's key does not verify it.
    let other_key = daypass::audit::note::LogKey::generate("daypass.local/log")
        .unwrap()
        .verifier()
        .to_string();
    let out = run(
        work.path(),
        &[
            "report",
            "verify",
            dir.to_str().unwrap(),
            "--log-key",
            &other_key,
        ],
        &[],
    )
    .await;
    let err = cli::one_line_error(&out, "wrong key");
    assert!(err.contains("checkpoint.txt"), "{err}");

    // A period starting after the grant was requested still shows it: it
    // was active then.
    let dir2 = work.path().join("acme-later");
    let from2 = t0.plus_secs(HOUR).to_rfc3339();
    let out = run(
        work.path(),
        &[
            "report",
            "access",
            "acme",
            "--from",
            &from2,
            "--to",
            &to,
            "--out",
            dir2.to_str().unwrap(),
        ],
        &flags,
    )
    .await;
    cli::assert_ok(&out, "report access later");
    assert!(read(dir2.join("grants.csv")).contains(&g.id));
    assert_eq!(read(dir2.join("accesses.csv")).matches("\r\n").count(), 1);
    cli::assert_ok(&verify(&s, work.path(), &dir2).await, "verify later");

    // A directory that already holds a report is not overwritten.
    let again = run(
        work.path(),
        &[
            "report",
            "access",
            "--from",
            &from,
            "--to",
            &to,
            "--out",
            dir.to_str().unwrap(),
        ],
        &flags,
    )
    .await;
    let err = cli::one_line_error(&again, "again");
    assert!(err.contains("already holds a report"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_tenant_admins_and_auditors_make_reports() {
    let s = TestServer::start().await;
    let mut acme = s.add_tenant("acme", pb::ApprovalPolicy::Auto, false).await;
    s.add_tenant("globex", pb::ApprovalPolicy::Auto, false)
        .await;
    let mut alice = s.enrol("alice", pb::Role::Support).await;
    let mut admin = s.admin().await;
    let mut auditor = s.audit_reader().await;
    let now = s.clock.now();
    let req = |tenant: &str| pb::RecordReportRequest {
        tenant: tenant.into(),
        from_ms: now.plus_secs(-HOUR).millis(),
        to_ms: now.millis(),
    };

    let own = acme
        .audit
        .record_report(req(""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(own.tenant, "acme");
    let e = acme.audit.record_report(req("globex")).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    let e = alice.audit.record_report(req("acme")).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    admin.audit.record_report(req("globex")).await.unwrap();
    auditor.audit.record_report(req("acme")).await.unwrap();
    let e = admin.audit.record_report(req("nobody")).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    let mut empty = req("acme");
    empty.to_ms = empty.from_ms;
    let e = admin.audit.record_report(empty).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(
        e.message().contains("the period is empty"),
        "{}",
        e.message()
    );
    let e = admin
        .audit
        .record_report(pb::RecordReportRequest {
            tenant: "acme".into(),
            from_ms: -5,
            to_ms: 10,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");

    // Hostile requests are refused with a message, never logged.
    for (tenant, from_ms, to_ms, says) in [
        ("ACME", now.millis() - 1, now.millis(), "tenant"),
        ("acme\u{202e}", now.millis() - 1, now.millis(), "tenant"),
        (
            &"a".repeat(10_000)[..],
            now.millis() - 1,
            now.millis(),
            "tenant",
        ),
        ("acme", i64::MIN, now.millis(), "from_ms"),
        ("acme", now.millis(), i64::MAX, "to_ms"),
        (
            "acme",
            now.millis(),
            now.millis() - 1,
            "the period is empty",
        ),
    ] {
        let e = admin
            .audit
            .record_report(pb::RecordReportRequest {
                tenant: tenant.into(),
                from_ms,
                to_ms,
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
        assert!(e.message().contains(says), "{}", e.message());
        assert!(e.message().len() < 300, "{}", e.message());
    }

    // Each report is logged in the tenant's scope, by whoever made it.
    let entries = s.entries().await;
    let made: Vec<(&str, &str)> = entries
        .iter()
        .filter(|e| e.entry.kind == "report.generated")
        .map(|e| (e.entry.tenant.as_str(), e.entry.actor.as_str()))
        .collect();
    assert_eq!(
        made,
        vec![
            ("acme", "tenant/acme"),
            ("globex", "staff/ada"),
            ("acme", "auditor/audit-reader")
        ]
    );
    assert!(s.verify_chain().await.ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_annual_report_across_tenants_verifies_with_its_index() {
    let s = TestServer::start().await;
    let mut acme = s.add_tenant("acme", pb::ApprovalPolicy::Auto, false).await;
    s.add_tenant("globex", pb::ApprovalPolicy::Auto, false)
        .await;
    let mut alice = s.enrol("alice", pb::Role::Support).await;
    s.audit_reader().await;
    let t0 = s.clock.now();
    let g = request(&mut alice, "acme", "=HYPERLINK(\"x\") <b>bold</b>").await;
    record_access(&mut acme, &g.id, "read", "+cmd|' /C calc'!A0").await;
    s.clock.advance_secs(HOUR);

    let work = tempfile::tempdir().unwrap();
    let flags = s.cli_flags(work.path(), PrincipalKind::Auditor, "audit-reader");
    let dir = work.path().join("annual");
    let from = t0.plus_secs(-24 * HOUR).to_rfc3339();
    let to = t0.plus_secs(24 * HOUR).to_rfc3339();
    let out = run(
        work.path(),
        &[
            "report",
            "access",
            "--all",
            "--from",
            &from,
            "--to",
            &to,
            "--out",
            dir.to_str().unwrap(),
        ],
        &flags,
    )
    .await;
    let said = cli::assert_ok(&out, "report access --all");
    assert!(said.contains("2 reports"), "{said}");
    let summary = read(dir.join("summary.csv"));
    let rows: Vec<&str> = summary.split("\r\n").collect();
    assert!(
        rows[1].starts_with("acme,") && rows[1].ends_with(",1,1,1"),
        "{summary}"
    );
    assert!(
        rows[2].starts_with("globex,") && rows[2].ends_with(",0,0,1"),
        "{summary}"
    );
    assert!(read(dir.join("index.html")).contains("<a href=\"acme/report.html\">acme</a>"));

    // Hostile text stays text: escaped in HTML, no formula in CSV.
    let html = read(dir.join("acme/report.html"));
    assert!(html.contains("&lt;b&gt;bold&lt;/b&gt;") && !html.contains("<b>bold"));
    let grants = read(dir.join("acme/grants.csv"));
    assert!(
        grants.contains(",\"'=HYPERLINK(\"\"x\"\") <b>bold</b>\","),
        "{grants}"
    );
    let accesses = read(dir.join("acme/accesses.csv"));
    assert!(accesses.contains(",'+cmd|' /C calc'!A0,"), "{accesses}");

    let ok = verify(&s, work.path(), &dir).await;
    let said = cli::assert_ok(&ok, "verify --all");
    assert!(said.contains("2 reports verified"), "{said}");

    // (Each tenant's one other entry is its tenant.added.)
    // A summary that hides acme's grant is found.
    let bad = copy(&dir, &work.path().join("forged"));
    let forged = read(bad.join("summary.csv")).replace(",1,1,1\r\n", ",0,0,1\r\n");
    std::fs::write(bad.join("summary.csv"), forged).unwrap();
    let err = cli::one_line_error(&verify(&s, work.path(), &bad).await, "forged");
    assert!(err.contains("summary.csv"), "{err}");

    // A tenant cannot make the report across tenants.
    let tflags = s.cli_flags(work.path(), PrincipalKind::Tenant, "acme");
    let out = run(
        work.path(),
        &[
            "report",
            "access",
            "--all",
            "--from",
            &from,
            "--to",
            &to,
            "--out",
            work.path().join("t").to_str().unwrap(),
        ],
        &tflags,
    )
    .await;
    cli::one_line_error(&out, "tenant --all");
}
