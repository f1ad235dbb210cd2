//! The `daypass` binary as a person uses it: `serve --dev` and the
//! walkthrough's commands, `certs init/issue`, SIGTERM, and one clear line
//! (never a panic) for bad input.

// Times and waits for real processes and sockets: wall time on purpose.
#![allow(clippy::disallowed_methods)]

mod common;

use std::{path::Path, process::Stdio};

use common::{
    cli::{self, assert_ok, assert_one_line_error, text},
    dev_server::{DevServer, run},
};

/// The kinds of the entries in an export file, in order.
fn exported_kinds(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .expect("export")
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
            v["kind"].as_str().expect("kind").to_owned()
        })
        .collect()
}

#[test]
fn the_dev_walkthrough_works_end_to_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let server = DevServer::start(d, 1);
    assert!(
        d.join("daypass-dev/certs/staff-alice.pem").exists(),
        "dev identities"
    );

    let out = assert_ok(&run(d, &server, &["whoami"]), "whoami");
    assert_eq!(
        out.trim(),
        "spiffe://daypass.local/staff/alice (staff, support)"
    );
    // The dev server listens on a port of its own (not 50051): it recorded
    // it, so the walkthrough's commands, copied without --server, and the
    // dev config reach it.
    let out = assert_ok(&run(d, &server, &["whoami", "--as", "eve"]), "whoami");
    assert_eq!(out.trim(), "spiffe://daypass.local/auditor/eve (auditor)");
    let out = assert_ok(&cli::run(d, ["whoami"]), "whoami without --server");
    assert!(out.contains("staff/alice"), "{out}");
    let addr = server.url.trim_start_matches("https://");
    let toml = std::fs::read_to_string(d.join("daypass-dev/daypass.toml")).expect("dev config");
    assert!(toml.contains(&format!("listen = \"{addr}\"")), "{toml}");

    let reason = "INC-42: customer cannot log in";
    let out = run(
        d,
        &server,
        &[
            "grant",
            "request",
            "acme",
            "--reason",
            reason,
            "--duration",
            "2h",
        ],
    );
    let out = assert_ok(&out, "grant request");
    assert!(out.contains(" is active until "), "{out}");

    let out = assert_ok(&run(d, &server, &["--json", "grant", "list"]), "list");
    let list: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    let grants = list.as_array().expect("a JSON array");
    assert_eq!(grants.len(), 1, "{list:#}");
    let g = &grants[0];
    assert_eq!(
        (&g["tenant"], &g["holder"], &g["reason"]),
        (&"acme".into(), &"alice".into(), &reason.into())
    );
    assert_eq!(g["duration_seconds"], 7200);
    let id = g["id"].as_str().expect("id").to_owned();
    assert!(out.contains(&id));

    let out = run(
        d,
        &server,
        &["validate", "--staff", "alice", "--as", "acme"],
    );
    let out = assert_ok(&out, "validate");
    assert!(
        out.starts_with(&format!("ALLOW alice on grant {id}")),
        "{out}"
    );

    let out = run(
        d,
        &server,
        &[
            "access",
            "record",
            &id,
            "--action",
            "ssh",
            "--resource",
            "web-1",
            "--as",
            "acme",
        ],
    );
    assert_ok(&out, "access record");

    let out = run(
        d,
        &server,
        &["grant", "request", "acme", "--reason", "x", "--as", "pat"],
    );
    assert_one_line_error(&out, "daypass: permission denied");
    assert!(out.stdout.is_empty());

    let out = run(d, &server, &["validate", "--grant", &id, "--as", "globex"]);
    assert_one_line_error(&out, "daypass: access denied: unknown");

    let out = run(
        d,
        &server,
        &["audit", "export", "-o", "log.jsonl", "--as", "eve"],
    );
    assert_ok(&out, "export");
    let out = cli::run(d, ["audit", "verify", "log.jsonl"]);
    let n = exported_kinds(&d.join("log.jsonl")).len();
    assert!(n > 10, "a real log: {n} entries");
    let out = assert_ok(&out, "verify");
    assert!(
        out.starts_with(&format!("OK: {n} entries verified, head ")),
        "{out}"
    );
    // An export into a pipe whose reader is gone (`| head` that already
    // stopped) ends quietly.
    let mut child = cli::command(d)
        .args([
            "audit",
            "export",
            "--server",
            server.url.as_str(),
            "--as",
            "eve",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    let gone = child.wait_with_output().expect("wait");
    assert_eq!(gone.status.code(), Some(0), "{}", text(&gone.stderr));
    assert!(
        !text(&gone.stderr).contains("pipe"),
        "{}",
        text(&gone.stderr)
    );
    // The same export on standard input (`-`).
    let mut child = cli::command(d)
        .args(["audit", "verify", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(&std::fs::read(d.join("log.jsonl")).expect("export"))
            .expect("write stdin");
    }
    let piped = assert_ok(&child.wait_with_output().expect("wait"), "verify -");
    assert_eq!(piped, out, "verify - reads standard input");

    let out = run(
        d,
        &server,
        &["audit", "replay", "--tenant", "acme", "--as", "eve"],
    );
    let replay = assert_ok(&out, "replay");
    assert!(replay.contains("alice had access to acme"), "{replay}");
    assert!(replay.contains(reason), "{replay}");
    assert!(replay.contains("ssh  web-1"), "{replay}");

    let out = run(d, &server, &["audit", "check", "--as", "eve"]);
    let out = assert_ok(&out, "check");
    assert!(out.starts_with("chain OK"), "{out}");

    // SIGTERM: a clean stop, logged; a second start reuses everything.
    let status = server.terminate();
    assert_eq!(status.code(), Some(0), "clean exit on SIGTERM: {status}");
    let server = DevServer::start(d, 2);
    let out = run(
        d,
        &server,
        &["audit", "export", "-o", "log2.jsonl", "--as", "eve"],
    );
    assert_ok(&out, "second export");
    let before = std::fs::read_to_string(d.join("log.jsonl")).expect("export");
    let after = std::fs::read_to_string(d.join("log2.jsonl")).expect("export");
    assert!(after.starts_with(&before), "the log only grew");
    let kinds = exported_kinds(&d.join("log2.jsonl"));
    let stops: Vec<usize> = (0..kinds.len())
        .filter(|&i| kinds[i] == "server.stopped")
        .collect();
    assert_eq!(stops.len(), 1, "{kinds:?}");
    assert_eq!(kinds[stops[0] + 1], "server.started", "{kinds:?}");
    let out = cli::run(d, ["audit", "verify", "log2.jsonl"]);
    assert_ok(&out, "verify after restart");
    let out = run(
        d,
        &server,
        &["validate", "--staff", "alice", "--as", "acme"],
    );
    assert!(
        assert_ok(&out, "validate after restart").starts_with("ALLOW"),
        "grants survive a restart"
    );
}

#[test]
fn auditors_and_tenants_verify_the_log_offline_and_witness_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let server = DevServer::start(d, 1);
    let key = "daypass-dev/certs/log.pub";
    let out = run(
        d,
        &server,
        &["grant", "request", "acme", "--reason", "INC-9"],
    );
    assert_ok(&out, "grant request");
    let out = run(
        d,
        &server,
        &["validate", "--staff", "alice", "--as", "acme"],
    );
    assert_ok(&out, "validate");
    let out = run(
        d,
        &server,
        &[
            "grant",
            "request",
            "globex",
            "--reason",
            "INC-10 globex only",
            "--ticket",
            "T-1",
            "--as",
            "bob",
        ],
    );
    assert_ok(&out, "globex request");
    let offline = |args: &[&str]| cli::run(d, args);
    let witness = |log_key: &str| {
        run(
            d,
            &server,
            &[
                "audit",
                "witness",
                "--state",
                "w.jsonl",
                "--log-key",
                log_key,
                "--as",
                "eve",
            ],
        )
    };

    // The witness starts on trust and then demands proofs.
    let out = witness(key);
    let first = assert_ok(&out, "first witness run");
    assert!(
        first.starts_with("OK: first checkpoint accepted"),
        "{first}"
    );

    // A full export with its checkpoint verifies offline, tree and all.
    let out = run(
        d,
        &server,
        &[
            "audit",
            "export",
            "-o",
            "full.jsonl",
            "--checkpoint",
            "cp.txt",
            "--as",
            "eve",
        ],
    );
    assert_ok(&out, "export");
    let n = exported_kinds(&d.join("full.jsonl")).len();
    let note = std::fs::read_to_string(d.join("cp.txt")).expect("checkpoint");
    assert!(
        note.starts_with(&format!("daypass.local/log\n{n}\n")),
        "{note}"
    );
    let out = offline(&[
        "audit",
        "verify",
        "full.jsonl",
        "--checkpoint",
        "cp.txt",
        "--log-key",
        key,
    ]);
    let ok = assert_ok(&out, "verify against checkpoint");
    assert_eq!(
        ok.trim(),
        format!(
            "OK: {n} entries, chain intact, and the first {n} hash to the root signed by daypass.local/log"
        )
    );

    // A rewritten entry with every later hash recomputed passes the chain
    // check alone, but not the signed root.
    let forged: Vec<String> = std::fs::read_to_string(d.join("full.jsonl"))
        .expect("export")
        .lines()
        .map(|l| daypass::audit::export::parse_line(l).expect("line"))
        .scan([0u8; 32], |prev, mut e| {
            if e.entry.seq == 3 {
                e.entry.actor = "staff/nobody".into();
            }
            e.entry.prev_hash = *prev;
            e.hash = e.entry.hash();
            *prev = e.hash;
            Some(daypass::audit::export::to_json(&e).to_string())
        })
        .collect();
    std::fs::write(d.join("forged.jsonl"), forged.join("\n") + "\n").expect("write");
    assert_ok(
        &offline(&["audit", "verify", "forged.jsonl"]),
        "chain-only verify of a forgery",
    );
    let out = offline(&[
        "audit",
        "verify",
        "forged.jsonl",
        "--checkpoint",
        "cp.txt",
        "--log-key",
        key,
    ]);
    assert_one_line_error(&out, "daypass: forged.jsonl: line");
    assert!(
        text(&out.stderr).contains("unproven"),
        "{}",
        text(&out.stderr)
    );

    // Another key: the checkpoint itself is refused.
    std::fs::create_dir_all(d.join("other")).expect("dir");
    assert_ok(
        &offline(&["certs", "log-key", "--dir", "other"]),
        "other key",
    );
    let out = offline(&[
        "audit",
        "verify",
        "full.jsonl",
        "--checkpoint",
        "cp.txt",
        "--log-key",
        "other/log.pub",
    ]);
    assert_one_line_error(&out, "daypass: cp.txt: the note carries no valid signature");

    // A tenant exports its own entries with proofs; they verify offline and
    // hold nothing of the other tenant.
    let out = run(
        d,
        &server,
        &[
            "audit",
            "export",
            "--tenant",
            "acme",
            "-o",
            "acme.jsonl",
            "--checkpoint",
            "acme-cp.txt",
            "--as",
            "acme",
        ],
    );
    assert_ok(&out, "tenant export");
    let mine = std::fs::read_to_string(d.join("acme.jsonl")).expect("tenant export");
    assert!(mine.lines().count() >= 3, "{mine}");
    assert!(!mine.contains("globex"), "{mine}");
    let out = offline(&[
        "audit",
        "verify",
        "acme.jsonl",
        "--checkpoint",
        "acme-cp.txt",
        "--log-key",
        key,
    ]);
    let ok = assert_ok(&out, "tenant verify");
    assert!(
        ok.contains("each proven included in the log's tree"),
        "{ok}"
    );
    std::fs::write(
        d.join("acme-edited.jsonl"),
        // A hashed field (the reason is sealed: `opened` is checked with
        // the tenant's key, tests/termination.rs).
        mine.replacen(
            "\"kind\":\"grant.requested\"",
            "\"kind\":\"grant.requestex\"",
            1,
        ),
    )
    .expect("write");
    let out = offline(&[
        "audit",
        "verify",
        "acme-edited.jsonl",
        "--checkpoint",
        "acme-cp.txt",
        "--log-key",
        key,
    ]);
    assert_one_line_error(&out, "daypass: acme-edited.jsonl: line");
    assert!(
        text(&out.stderr).contains("modified"),
        "{}",
        text(&out.stderr)
    );
    let out = run(
        d,
        &server,
        &[
            "audit",
            "export",
            "--tenant",
            "globex",
            "-o",
            "x.jsonl",
            "--checkpoint",
            "x.txt",
            "--as",
            "acme",
        ],
    );
    assert_one_line_error(&out, "daypass: permission denied");

    // The witness moves forward only with a proof, and prints the checkpoint.
    let out = witness(key);
    let grew = assert_ok(&out, "second witness run");
    assert!(grew.starts_with("OK: the log grew from "), "{grew}");
    assert_eq!(
        std::fs::read_to_string(d.join("w.jsonl"))
            .expect("state")
            .lines()
            .count(),
        2
    );
    let out = witness("other/log.pub");
    assert_one_line_error(&out, "daypass: the log's checkpoint is not acceptable");
    let out = run(
        d,
        &server,
        &["audit", "checkpoint", "--log-key", key, "--as", "acme"],
    );
    assert!(assert_ok(&out, "checkpoint").starts_with("daypass.local/log\n"));
}

#[test]
fn certs_init_and_issue_write_a_usable_pki() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().join("pki");
    let pki = d.to_str().expect("a UTF-8 temp path");
    let init = || cli::run(dir.path(), ["certs", "init", "--dir", pki]);
    assert_ok(&init(), "certs init");
    let out = cli::run(
        dir.path(),
        [
            "certs", "issue", "--kind", "staff", "--name", "alice", "--dir", pki,
        ],
    );
    assert_ok(&out, "certs issue");
    for f in [
        "ca.pem",
        "ca.key",
        "server.pem",
        "server.key",
        "staff-alice.pem",
        "staff-alice.key",
        "log.key",
        "log.pub",
    ] {
        assert!(d.join(f).exists(), "{f}");
    }
    #[cfg(unix)]
    for key in ["ca.key", "server.key", "staff-alice.key", "log.key"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.join(key))
            .expect("stat")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{key} mode {mode:o}");
    }
    let pem = std::fs::read(d.join("staff-alice.pem")).expect("read");
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).expect("PEM");
    let p = daypass::identity::Principal::from_certificate(&pem.contents, "daypass.local")
        .expect("principal");
    assert_eq!(p.to_string(), "staff/alice");
    assert_eq!(p.uri("daypass.local"), "spiffe://daypass.local/staff/alice");
    // The SAN itself, read without the library.
    let cert = pem.parse_x509().expect("certificate");
    let sans: Vec<String> = cert
        .subject_alternative_name()
        .expect("SAN extension")
        .expect("has SANs")
        .value
        .general_names
        .iter()
        .map(|n| match n {
            x509_parser::extensions::GeneralName::URI(uri) => format!("URI {uri}"),
            other => format!("other {other:?}"),
        })
        .collect();
    assert_eq!(sans, ["URI spiffe://daypass.local/staff/alice"]);

    // A second init would silently replace the CA: refused without --force.
    let again = init();
    assert_one_line_error(&again, "daypass: ");
    assert!(text(&again.stderr).contains("--force"));
}

#[test]
fn bad_input_gives_one_clear_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let cmd = |args: &[&str]| cli::run(d, args);

    let out = cmd(&["audit", "verify", "no-such-file.jsonl"]);
    assert_one_line_error(&out, "daypass: cannot open no-such-file.jsonl");

    std::fs::write(d.join("garbage.jsonl"), "this is not json\n").expect("write");
    let out = cmd(&["audit", "verify", "garbage.jsonl"]);
    assert_one_line_error(&out, "daypass: garbage.jsonl: line 1");
    assert!(text(&out.stderr).contains("malformed"));

    let out = cmd(&["serve", "--config", "/nonexistent/daypass.toml"]);
    assert_one_line_error(
        &out,
        "daypass: cannot read config file /nonexistent/daypass.toml",
    );

    std::fs::write(d.join("bad.toml"), "listen = \"127.0.0.1:0\"\ndata_dir = \"x\"\n[tls]\nca=\"a\"\ncert=\"b\"\nkey=\"c\"\n[grants]\nmax_duration_secs = 90000\n").expect("write");
    let out = cmd(&["serve", "--config", "bad.toml"]);
    assert_one_line_error(
        &out,
        "daypass: config: grants.max_duration_secs must be between 1 and 86400",
    );

    // No dev directory and no certificate: says what to pass.
    let out = cmd(&["grant", "list"]);
    assert_one_line_error(&out, "daypass: give --ca, --cert and --key");

    let out = cmd(&[
        "grant",
        "request",
        "acme",
        "--reason",
        "x",
        "--duration",
        "25x",
    ]);
    // A value that does not parse is a usage error: exit 2, one line.
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("daypass: invalid value '25x' for '--duration <DURATION>': not a duration"),
        "{err}"
    );
}

#[test]
fn engineers_get_their_grant_token_and_a_grant_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let server = DevServer::start(d, 1);
    let out = run(
        d,
        &server,
        &["--json", "grant", "request", "acme", "--reason", "INC-11"],
    );
    let g: serde_json::Value =
        serde_json::from_str(&assert_ok(&out, "grant request")).expect("json");
    let id = g["id"].as_str().expect("id").to_owned();

    let out = run(d, &server, &["grant", "token", &id]);
    let token = assert_ok(&out, "grant token");
    assert!(token.starts_with("v4.public."), "{token}");
    assert_eq!(token.lines().count(), 1, "just the token: {token}");
    let out = run(d, &server, &["--json", "grant", "token", &id]);
    let j: serde_json::Value =
        serde_json::from_str(&assert_ok(&out, "grant token --json")).expect("JSON");
    assert_eq!(j["token"].as_str(), Some(token.trim()));
    assert_eq!(j["grant"].as_str(), Some(id.as_str()));
    // Nobody else gets it: another engineer is told the grant is unknown.
    let out = run(d, &server, &["grant", "token", &id, "--as", "bob"]);
    assert_one_line_error(&out, "daypass: ");

    let out = run(d, &server, &["grant", "cert", &id, "--out", "gc"]);
    let said = assert_ok(&out, "grant cert");
    assert!(said.contains("valid until"), "{said}");
    let pem = std::fs::read_to_string(d.join(format!("gc/grant-{id}.pem"))).expect("cert");
    assert!(pem.contains("BEGIN CERTIFICATE"));
    assert!(d.join("gc/grant-ca.pem").exists());
    let key = d.join(format!("gc/grant-{id}.key"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).expect("key").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the key is private");
    }
    // A certificate for someone else's grant is refused.
    let out = run(
        d,
        &server,
        &["grant", "cert", &id, "--out", "bc", "--as", "bob"],
    );
    assert_one_line_error(&out, "daypass: ");
    assert!(!d.join(format!("bc/grant-{id}.key")).exists());
}
