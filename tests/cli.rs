//! The `daypass` binary as a person uses it: `serve --dev` and the
//! walkthrough's commands, `certs init/issue`, SIGTERM, and one clear line
//! (never a panic) for bad input.

// Times and waits for real processes and sockets: wall time on purpose.
#![allow(clippy::disallowed_methods)]

mod common;

use std::{
    fs::File,
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Output, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use common::cli::{self, assert_ok, assert_one_line_error, text};

/// A `daypass serve --dev` child process, killed when dropped.
struct DevServer {
    child: Child,
    url: String,
    /// Everything it printed on stdout so far (the walkthrough).
    printed: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl DevServer {
    /// Starts `serve --dev` in `dir` and learns its address from the
    /// walkthrough it prints. Its log goes to `dir/server-N.log`.
    fn start(dir: &Path, n: u32) -> DevServer {
        let log = dir.join(format!("server-{n}.log"));
        let child = cli::command(dir)
            .args([
                "serve",
                "--dev",
                "--listen",
                "127.0.0.1:0",
                "--metrics-listen",
                "127.0.0.1:0",
                "--screen-listen",
                "127.0.0.1:0",
            ])
            .stdout(Stdio::piped())
            .stderr(File::create(&log).expect("server log"))
            .spawn()
            .expect("spawn server");
        // Killed on every path from here on, including a failed start.
        let mut server = DevServer {
            child,
            url: String::new(),
            printed: Default::default(),
        };
        let stdout = server.child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        let printed = server.printed.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                printed.lock().expect("lock").push(line.clone());
                if let Some(i) = line.find("https://127.0.0.1:") {
                    let url: String = line[i..]
                        .chars()
                        .take_while(|c| !c.is_whitespace())
                        .collect();
                    let _ = tx.send(url);
                }
            }
        });
        server.url = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                panic!(
                    "the walkthrough did not name the server address; server log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            });
        server
    }

    /// SIGTERM, then wait for a clean exit.
    fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .expect("kill")
                .success()
        );
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "server did not stop within 15 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for DevServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `daypass --server URL args` in `dir`, against `server`.
fn run(dir: &Path, server: &DevServer, args: &[&str]) -> Output {
    cli::run(dir, ["--server", server.url.as_str()].iter().chain(args))
}

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
    let out = assert_ok(&run(d, &server, &["--as", "eve", "whoami"]), "whoami");
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
        &["--as", "acme", "validate", "--staff", "alice"],
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
            "--as",
            "acme",
            "access",
            "record",
            &id,
            "--action",
            "ssh",
            "--resource",
            "web-1",
        ],
    );
    assert_ok(&out, "access record");

    let out = run(
        d,
        &server,
        &["--as", "pat", "grant", "request", "acme", "--reason", "x"],
    );
    assert_one_line_error(&out, "daypass: permission denied");
    assert!(out.stdout.is_empty());

    let out = run(d, &server, &["--as", "globex", "validate", "--grant", &id]);
    assert_one_line_error(&out, "daypass: access denied: unknown");

    let out = run(
        d,
        &server,
        &["--as", "eve", "audit", "export", "-o", "log.jsonl"],
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
            "--server",
            server.url.as_str(),
            "--as",
            "eve",
            "audit",
            "export",
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
        &["--as", "eve", "audit", "replay", "--tenant", "acme"],
    );
    let replay = assert_ok(&out, "replay");
    assert!(replay.contains("alice had access to acme"), "{replay}");
    assert!(replay.contains(reason), "{replay}");
    assert!(replay.contains("ssh  web-1"), "{replay}");

    let out = run(d, &server, &["--as", "eve", "audit", "check"]);
    let out = assert_ok(&out, "check");
    assert!(out.starts_with("chain OK"), "{out}");

    // SIGTERM: a clean stop, logged; a second start reuses everything.
    let status = server.terminate();
    assert_eq!(status.code(), Some(0), "clean exit on SIGTERM: {status}");
    let server = DevServer::start(d, 2);
    let out = run(
        d,
        &server,
        &["--as", "eve", "audit", "export", "-o", "log2.jsonl"],
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
        &["--as", "acme", "validate", "--staff", "alice"],
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
        &["--as", "acme", "validate", "--staff", "alice"],
    );
    assert_ok(&out, "validate");
    let out = run(
        d,
        &server,
        &[
            "--as",
            "bob",
            "grant",
            "request",
            "globex",
            "--reason",
            "INC-10 globex only",
            "--ticket",
            "T-1",
        ],
    );
    assert_ok(&out, "globex request");
    let offline = |args: &[&str]| cli::run(d, args);
    let witness = |log_key: &str| {
        run(
            d,
            &server,
            &[
                "--as",
                "eve",
                "audit",
                "witness",
                "--state",
                "w.jsonl",
                "--log-key",
                log_key,
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
            "--as",
            "eve",
            "audit",
            "export",
            "-o",
            "full.jsonl",
            "--checkpoint",
            "cp.txt",
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
            "--as",
            "acme",
            "audit",
            "export",
            "--tenant",
            "acme",
            "-o",
            "acme.jsonl",
            "--checkpoint",
            "acme-cp.txt",
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
        mine.replacen("INC-9", "INC-8", 1),
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
            "--as",
            "acme",
            "audit",
            "export",
            "--tenant",
            "globex",
            "-o",
            "x.jsonl",
            "--checkpoint",
            "x.txt",
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
        &["--as", "acme", "audit", "checkpoint", "--log-key", key],
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
    let out = run(d, &server, &["--as", "bob", "grant", "token", &id]);
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
        &["--as", "bob", "grant", "cert", &id, "--out", "bc"],
    );
    assert_one_line_error(&out, "daypass: ");
    assert!(!d.join(format!("bc/grant-{id}.key")).exists());
}

/// A client certificate from a CA the server does not trust: the client
/// says its certificate was not accepted and how to fix it; the server's
/// log says why, at info.
#[test]
fn a_certificate_the_server_does_not_trust_is_explained_on_both_sides() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let server = DevServer::start(d, 1);
    let other = d.join("other");
    std::fs::create_dir(&other).expect("dir");
    assert_ok(
        &cli::run(&other, ["certs", "init", "--dir", "c"]),
        "certs init",
    );
    assert_ok(
        &cli::run(
            &other,
            [
                "certs", "issue", "--kind", "staff", "--name", "alice", "--dir", "c",
            ],
        ),
        "certs issue",
    );
    let out = run(
        d,
        &server,
        &[
            "--cert",
            "other/c/staff-alice.pem",
            "--key",
            "other/c/staff-alice.key",
            "whoami",
        ],
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("client certificate") && err.contains("CA the server trusts"),
        "{err}"
    );
    let log = d.join("server-1.log");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("a TLS handshake failed") && text.contains("UnknownIssuer") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "server log: {text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A second `serve --dev` in the same directory says another daypass
/// holds it, with its pid; a busy port is refused before anything is
/// written.
#[test]
fn a_second_dev_server_is_refused_with_a_clear_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let _server = DevServer::start(d, 1);
    let out = cli::run(
        d,
        [
            "serve",
            "--dev",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            "--screen-listen",
            "127.0.0.1:0",
        ],
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let pid = _server.child.id();
    assert!(
        err.contains(&format!(
            "another daypass (pid {pid}) holds the data directory"
        )),
        "{err}"
    );

    // A busy port: refused before a dev directory is made.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = busy.local_addr().expect("addr").port();
    let fresh = tempfile::tempdir().expect("tempdir");
    let out = cli::run(
        fresh.path(),
        ["serve", "--dev", "--listen", &format!("127.0.0.1:{port}")],
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot listen on") && err.contains("--listen"),
        "{err}"
    );
    assert!(
        !fresh.path().join("daypass-dev").exists(),
        "nothing written for a server that cannot listen"
    );
}

/// Splits a walkthrough command as a shell would for these simple lines:
/// words, double-quoted strings, and a `#` comment to the end.
fn shell_words(line: &str) -> Vec<String> {
    let (mut words, mut word, mut quoted, mut any) = (Vec::new(), String::new(), false, false);
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            '#' if !quoted => break,
            c if c.is_whitespace() && !quoted => {
                if any {
                    words.push(std::mem::take(&mut word));
                    any = false;
                }
            }
            c => {
                word.push(c);
                any = true;
            }
        }
    }
    if any {
        words.push(word);
    }
    words
}

/// The walkthrough that `serve --dev` prints, on a port of its own, runs
/// as printed: every `$D` line, copied into a shell in that directory,
/// does what its comment says (the refusals refused, everything else
/// done), with the binary it names and without `--server`.
#[test]
fn the_printed_walkthrough_runs_as_printed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let server = DevServer::start(d, 1);
    // The whole walkthrough is printed at once, before the server serves.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let lines = loop {
        let lines = server.printed.lock().expect("lock").clone();
        if lines.iter().any(|l| l.starts_with("Stop with Ctrl-C")) {
            break lines;
        }
        assert!(std::time::Instant::now() < deadline, "{lines:#?}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let exe = lines
        .iter()
        .find_map(|l| l.trim().strip_prefix("D="))
        .expect("the walkthrough names the binary");
    assert_eq!(
        std::fs::canonicalize(d.join(exe)).expect("the named binary exists"),
        std::fs::canonicalize(cli::BIN).expect("bin"),
        "the walkthrough names the binary that runs"
    );
    let (mut grant, mut globex, mut ran) = (String::new(), String::new(), 0);
    for line in lines.iter().filter_map(|l| l.trim().strip_prefix("$D ")) {
        let refused = line.contains("# refused");
        let mut words = shell_words(line);
        if words.iter().any(|w| w == "tail") {
            continue; // follows the log until stopped
        }
        for w in &mut words {
            if w == "<GRANT_ID>" {
                *w = grant.clone();
            } else if w == "<GLOBEX_GRANT_ID>" {
                *w = globex.clone();
            }
        }
        let out = cli::run(d, &words);
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        if refused {
            assert_eq!(out.status.code(), Some(1), "$D {line}: {all}");
        } else {
            assert_eq!(out.status.code(), Some(0), "$D {line}: {all}");
        }
        let id = all
            .split(|c: char| !c.is_ascii_alphanumeric() && c != '-')
            .find(|w| w.starts_with("g-") && w.len() == 26)
            .map(str::to_owned);
        if words.get(2).map(String::as_str) == Some("acme") && words[1] == "request" {
            grant = id.clone().unwrap_or_default();
        }
        if words.get(2).map(String::as_str) == Some("globex") && words[1] == "request" {
            globex = id.unwrap_or_default();
        }
        ran += 1;
    }
    assert!(ran >= 15, "ran {ran} walkthrough commands");
    assert!(grant.starts_with("g-") && globex.starts_with("g-"));
}
