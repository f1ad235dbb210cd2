//! The dev server as a newcomer meets it: the walkthrough it prints runs
//! as printed on any port, a second server in the same directory and a
//! busy port are refused with a reason, and a client certificate the
//! server does not trust is explained on both sides.

// Times and waits for real processes and sockets: wall time on purpose.
#![allow(clippy::disallowed_methods)]

mod common;

use std::time::Duration;

use common::{
    cli::{self, assert_ok, text},
    dev_server::{DevServer, run},
};

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
            "whoami",
            "--cert",
            "other/c/staff-alice.pem",
            "--key",
            "other/c/staff-alice.key",
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
        // The grants the later lines name (a refused request makes none).
        let requested = |tenant: &str| {
            !refused
                && words.get(1).map(String::as_str) == Some("request")
                && words.get(2).map(String::as_str) == Some(tenant)
        };
        if requested("acme") {
            grant = id.clone().unwrap_or_default();
        }
        if requested("globex") {
            globex = id.unwrap_or_default();
        }
        ran += 1;
    }
    assert!(ran >= 15, "ran {ran} walkthrough commands");
    assert!(grant.starts_with("g-") && globex.starts_with("g-"));
}
