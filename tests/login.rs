//! `daypass login`, `logout`, `status` and the profiles every client
//! command uses, through the real binary against a real server (mutual TLS
//! on 127.0.0.1:0, a fresh PKI): commands without flags from any directory,
//! named profiles, `DAYPASS_PROFILE`, flags over a profile, the file's
//! permissions and contents, refusals that save nothing, and the dev
//! directory (`login --dev`, the walkthrough on a random port). Every run
//! has a `HOME` of the test's own.

// Waits for real processes: wall time on purpose.
#![allow(clippy::disallowed_methods)]

mod common;

use std::{
    path::{Path, PathBuf},
    process::Output,
    time::Duration,
};

use common::{
    TestServer,
    cli::{self, text},
    dev_server::DevServer,
};
use daypass::{identity::PrincipalKind, pb, pki::CertificateAuthority};

/// A home directory and places to run commands in.
struct Desk {
    _tmp: tempfile::TempDir,
    home: PathBuf,
    /// Where the certificates are and logins are run.
    certs: PathBuf,
    /// Another directory, holding nothing.
    elsewhere: PathBuf,
}

impl Desk {
    fn new() -> Desk {
        let tmp = tempfile::tempdir().expect("tempdir");
        let [home, certs, elsewhere] = ["home", "certs", "elsewhere"].map(|d| tmp.path().join(d));
        for d in [&home, &certs, &elsewhere] {
            std::fs::create_dir_all(d).expect("dir");
        }
        Desk {
            _tmp: tmp,
            home,
            certs,
            elsewhere,
        }
    }

    fn profiles_file(&self) -> PathBuf {
        self.home.join(".config/daypass/profiles.toml")
    }

    /// `daypass args` in `dir` with this desk's home and `env` set.
    async fn run_env(&self, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
        let (dir, home) = (dir.to_owned(), self.home.clone());
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        tokio::task::spawn_blocking(move || {
            let mut cmd = cli::command(&dir);
            cli::with_home(&mut cmd, &home).args(&args);
            for (k, v) in env {
                cmd.env(k, v);
            }
            cmd.output().expect("run daypass")
        })
        .await
        .expect("no panic")
    }

    async fn run(&self, dir: &Path, args: &[&str]) -> Output {
        self.run_env(dir, args, &[]).await
    }

    /// Logs in as the certificate files `stem`.pem/.key in `certs`, given
    /// as relative paths (the profile must keep them absolute).
    async fn login(&self, s: &TestServer, stem: &str, extra: &[&str]) -> Output {
        let (cert, key) = (format!("{stem}.pem"), format!("{stem}.key"));
        let ca = s.config.tls.ca.display().to_string();
        let url = s.server_url();
        let mut args = vec![
            "login", "--server", &url, "--ca", &ca, "--cert", &cert, "--key", &key,
        ];
        args.extend(extra);
        self.run(&self.certs, &args).await
    }
}

fn ok(out: &Output, what: &str) -> String {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{what}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn failed(out: &Output, what: &str) -> String {
    assert_eq!(
        out.status.code(),
        Some(1),
        "{what}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let err = text(&out.stderr);
    assert!(!err.contains("panicked"), "{what}: {err}");
    err
}

/// A server with alice (support) and eve (auditor) enrolled, and their
/// certificate files written to the desk's `certs`.
async fn server_and_desk() -> (TestServer, Desk) {
    let s = TestServer::start().await;
    s.enrol("alice", pb::Role::Support).await;
    s.enrol("eve", pb::Role::Auditor).await;
    let desk = Desk::new();
    s.cli_flags(&desk.certs, PrincipalKind::Staff, "alice");
    s.cli_flags(&desk.certs, PrincipalKind::Auditor, "eve");
    (s, desk)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_serves_every_command_from_any_directory() {
    let (s, desk) = server_and_desk().await;
    let out = ok(&desk.login(&s, "staff-alice", &[]).await, "login");
    assert!(out.contains("saved profile default (the default)"), "{out}");
    assert!(
        out.contains("you are spiffe://test.daypass/staff/alice (staff, support)"),
        "{out}"
    );

    // No flags, another directory: the profile's server and identity.
    let who = ok(&desk.run(&desk.elsewhere, &["whoami"]).await, "whoami");
    assert_eq!(
        who.trim(),
        "spiffe://test.daypass/staff/alice (staff, support)"
    );
    s.add_tenant("acme", pb::ApprovalPolicy::Auto, false).await;
    let out = ok(
        &desk
            .run(
                &desk.elsewhere,
                &["grant", "request", "acme", "--reason", "INC-1: x"],
            )
            .await,
        "grant request",
    );
    assert!(out.contains(" is active until "), "{out}");
    let list = ok(
        &desk
            .run(&desk.elsewhere, &["--json", "grant", "list"])
            .await,
        "grant list",
    );
    let list: serde_json::Value = serde_json::from_str(&list).expect("JSON");
    assert_eq!(list[0]["holder"], "alice", "{list:#}");

    // The file: 0600 in a 0700 directory, absolute paths, no key material.
    let file = desk.profiles_file();
    let body = std::fs::read_to_string(&file).expect("profiles file");
    assert!(!body.contains("BEGIN"), "no PEM in the profiles:\n{body}");
    assert!(!body.contains("PRIVATE"), "{body}");
    let key_path = desk.certs.join("staff-alice.key");
    assert!(
        body.contains(&format!("key = \"{}\"", key_path.display())),
        "{body}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode(&file), 0o600);
        assert_eq!(mode(file.parent().expect("dir")), 0o700);
    }
    let names: Vec<_> = std::fs::read_dir(file.parent().expect("dir"))
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, ["profiles.toml"], "no temporary file is left");

    // A file the profile names that has gone: which, and what to do.
    std::fs::rename(&key_path, desk.certs.join("moved.key")).expect("move");
    let err = failed(&desk.run(&desk.elsewhere, &["whoami"]).await, "gone");
    assert!(
        err.contains("client key") && err.contains("is gone") && err.contains("log in again"),
        "{err}"
    );
    std::fs::rename(desk.certs.join("moved.key"), &key_path).expect("move back");

    // logout removes it; then it is today's error, with the new hint.
    let out = ok(&desk.run(&desk.elsewhere, &["logout"]).await, "logout");
    assert!(out.contains("removed profile default"), "{out}");
    let err = failed(&desk.run(&desk.elsewhere, &["whoami"]).await, "none");
    assert!(
        err.contains("give --ca, --cert and --key") && err.contains("daypass login"),
        "{err}"
    );
    let err = failed(&desk.run(&desk.elsewhere, &["logout"]).await, "again");
    assert!(err.contains("no profile is saved"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_profiles_switch_identity_and_flags_win() {
    let (s, desk) = server_and_desk().await;
    ok(&desk.login(&s, "staff-alice", &[]).await, "login alice");
    let out = ok(
        &desk.login(&s, "auditor-eve", &["--profile", "audit"]).await,
        "login eve",
    );
    assert!(
        out.contains("saved profile audit in") && !out.contains("(the default)"),
        "{out}"
    );
    let d = &desk.elsewhere;
    let who = |out: Output| ok(&out, "whoami").trim().to_owned();
    assert!(who(desk.run(d, &["whoami"]).await).contains("staff/alice"));
    assert!(who(desk.run(d, &["whoami", "--profile", "audit"]).await).contains("auditor/eve"));
    assert!(
        who(desk
            .run_env(d, &["whoami"], &[("DAYPASS_PROFILE", "audit")])
            .await)
        .contains("auditor/eve")
    );
    // --profile wins over DAYPASS_PROFILE; explicit files win over the profile's.
    assert!(
        who(desk
            .run_env(
                d,
                &["whoami", "--profile", "default"],
                &[("DAYPASS_PROFILE", "audit")]
            )
            .await)
        .contains("staff/alice")
    );
    let alice_cert = desk.certs.join("staff-alice.pem").display().to_string();
    let alice_key = desk.certs.join("staff-alice.key").display().to_string();
    assert!(
        who(desk
            .run(
                d,
                &[
                    "whoami",
                    "--profile",
                    "audit",
                    "--cert",
                    &alice_cert,
                    "--key",
                    &alice_key
                ]
            )
            .await)
        .contains("staff/alice")
    );
    // An explicit --server over the profile's: a port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let closed_url = format!(
        "https://127.0.0.1:{}",
        closed.local_addr().expect("a").port()
    );
    drop(closed);
    failed(
        &desk.run(d, &["whoami", "--server", &closed_url]).await,
        "--server wins",
    );

    // A name that is not saved: the error lists those that are.
    let err = failed(
        &desk.run(d, &["grant", "list", "--profile", "nope"]).await,
        "nope",
    );
    assert!(
        err.contains("no profile \"nope\"") && err.contains("audit, default (default)"),
        "{err}"
    );
    let err = failed(
        &desk
            .run_env(d, &["whoami"], &[("DAYPASS_PROFILE", "nope")])
            .await,
        "env nope",
    );
    assert!(err.contains("audit, default (default)"), "{err}");

    // --list shows both and the default; --default moves it.
    let list = ok(&desk.run(d, &["login", "--list"]).await, "list");
    assert!(list.contains("PROFILE") && list.contains("audit"), "{list}");
    let default_row = list
        .lines()
        .find(|l| l.starts_with("default "))
        .expect("a default row");
    assert!(default_row.contains("yes"), "{list}");
    ok(
        &desk
            .login(&s, "auditor-eve", &["--profile", "audit", "--default"])
            .await,
        "login --default",
    );
    assert!(who(desk.run(d, &["whoami"]).await).contains("auditor/eve"));
    let json = ok(&desk.run(d, &["--json", "login", "--list"]).await, "list");
    let json: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    let default: Vec<_> = json
        .as_array()
        .expect("array")
        .iter()
        .filter(|p| p["default"] == true)
        .map(|p| p["profile"].clone())
        .collect();
    assert_eq!(default, ["audit"]);

    // logout of the default leaves the only other one as the default.
    let out = ok(
        &desk.run(d, &["logout", "--profile", "audit"]).await,
        "logout",
    );
    assert!(out.contains("the default profile is default"), "{out}");
    assert!(who(desk.run(d, &["whoami"]).await).contains("staff/alice"));
    let err = failed(
        &desk.run(d, &["whoami", "--profile", "audit"]).await,
        "gone",
    );
    assert!(err.contains("no profile \"audit\""), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_that_cannot_work_says_why_and_saves_nothing() {
    let (s, desk) = server_and_desk().await;
    // A CA that did not issue the server's certificate.
    let other = CertificateAuthority::generate("other CA").expect("CA");
    let other_ca = desk.certs.join("other-ca.pem");
    std::fs::write(&other_ca, other.cert_pem()).expect("write");
    let url = s.server_url();
    let out = desk
        .run(
            &desk.certs,
            &[
                "login",
                "--server",
                &url,
                "--ca",
                "other-ca.pem",
                "--cert",
                "staff-alice.pem",
                "--key",
                "staff-alice.key",
            ],
        )
        .await;
    let err = failed(&out, "wrong CA");
    assert!(
        err.contains("--ca") && err.contains("other-ca.pem") && err.contains("did not issue"),
        "{err}"
    );
    assert!(err.contains("nothing was saved"), "{err}");
    assert!(!desk.profiles_file().exists(), "nothing saved");

    // A key that is not the certificate's.
    let ca = s.config.tls.ca.display().to_string();
    let out = desk
        .run(
            &desk.certs,
            &[
                "login",
                "--server",
                &url,
                "--ca",
                &ca,
                "--cert",
                "staff-alice.pem",
                "--key",
                "auditor-eve.key",
            ],
        )
        .await;
    let err = failed(&out, "wrong key");
    assert!(
        err.contains("--key") && err.contains("is not the key of the client certificate"),
        "{err}"
    );
    // Not PEM at all; a file that is not there.
    std::fs::write(desk.certs.join("junk.pem"), "hello").expect("write");
    let out = desk
        .run(
            &desk.certs,
            &[
                "login",
                "--server",
                &url,
                "--ca",
                &ca,
                "--cert",
                "junk.pem",
                "--key",
                "staff-alice.key",
            ],
        )
        .await;
    let err = failed(&out, "junk cert");
    assert!(err.contains("--cert") && err.contains("junk.pem"), "{err}");
    let out = desk
        .run(
            &desk.certs,
            &[
                "login",
                "--server",
                &url,
                "--ca",
                "missing.pem",
                "--cert",
                "staff-alice.pem",
                "--key",
                "staff-alice.key",
            ],
        )
        .await;
    let err = failed(&out, "missing CA");
    assert!(err.contains("missing.pem"), "{err}");
    // Nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let closed_url = format!(
        "https://127.0.0.1:{}",
        closed.local_addr().expect("a").port()
    );
    drop(closed);
    let out = desk
        .run(
            &desk.certs,
            &[
                "login",
                "--server",
                &closed_url,
                "--ca",
                &ca,
                "--cert",
                "staff-alice.pem",
                "--key",
                "staff-alice.key",
            ],
        )
        .await;
    let err = failed(&out, "closed port");
    assert!(err.contains("nothing answers at"), "{err}");
    assert!(!desk.profiles_file().exists(), "nothing saved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_identity_certificate_and_health_and_fails_without_a_server() {
    let (mut s, desk) = server_and_desk().await;
    ok(&desk.login(&s, "staff-alice", &[]).await, "login");
    let out = desk.run(&desk.elsewhere, &["status"]).await;
    let shown = ok(&out, "status");
    for want in [
        "using        profile default (the default)",
        &format!("server       {}", s.server_url()),
        "identity     spiffe://test.daypass/staff/alice (staff, support)",
        "role         support",
        "health       serving",
        "entries (newest signed checkpoint)",
    ] {
        assert!(shown.contains(want), "{want:?} in:\n{shown}");
    }
    // The test CA issues client certificates for one day: a warning.
    let expires = shown
        .lines()
        .find(|l| l.starts_with("expires"))
        .expect("expiry");
    assert!(expires.contains("0 day(s) left: WARNING"), "{expires}");
    assert!(text(&out.stderr).contains("warning: your client certificate expires"));

    let json = ok(
        &desk.run(&desk.elsewhere, &["status", "--json"]).await,
        "status --json",
    );
    let v: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(v["identity"]["role"], "support", "{v:#}");
    assert_eq!(v["source"]["profile"], "default", "{v:#}");
    assert_eq!(v["reachable"], true);
    assert!(
        v["cert_expires_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );

    // Flags alone: "flags".
    let eve = [
        "--server".to_owned(),
        s.server_url(),
        "--ca".into(),
        s.config.tls.ca.display().to_string(),
        "--cert".into(),
        desk.certs.join("auditor-eve.pem").display().to_string(),
        "--key".into(),
        desk.certs.join("auditor-eve.key").display().to_string(),
    ];
    let mut args = vec!["status"];
    args.extend(eve.iter().map(String::as_str));
    let shown = ok(&desk.run(&desk.elsewhere, &args).await, "status flags");
    assert!(shown.contains("using        flags"), "{shown}");
    assert!(shown.contains("auditor/eve (auditor)"), "{shown}");

    // The server stopped: exit 1, with the reason; what is known locally is shown.
    s.stop().await;
    let out = desk.run(&desk.elsewhere, &["status"]).await;
    let err = failed(&out, "stopped");
    assert!(err.contains("cannot be reached"), "{err}");
    let shown = text(&out.stdout);
    assert!(
        shown.contains("expires") && shown.contains("reachable    no"),
        "{shown}"
    );
}

/// The dev server on a random port: the walkthrough's `login --dev` line,
/// run as printed, saves a profile with the recorded address; commands
/// from another directory then reach this server; in the dev directory
/// the dev identities still apply, and `--profile` wins over them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_dev_and_the_walkthrough_on_a_random_port() {
    let desk = Desk::new();
    let d = desk.certs.clone();
    let server = DevServer::start(&d, 1);
    assert!(
        !server.url.ends_with(":50051"),
        "a random port: {}",
        server.url
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let lines = loop {
        let lines = server.printed.lock().expect("lock").clone();
        if lines.iter().any(|l| l.starts_with("Stop with Ctrl-C")) {
            break lines;
        }
        assert!(std::time::Instant::now() < deadline, "{lines:#?}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let login = lines
        .iter()
        .filter_map(|l| l.trim().strip_prefix("$D "))
        .find(|l| l.starts_with("login "))
        .expect("the walkthrough shows a login");
    assert!(login.starts_with("login --dev ./daypass-dev"), "{login}");
    let words: Vec<&str> = login
        .split('#')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let out = ok(&desk.run(&d, &words).await, "walkthrough login");
    assert!(out.contains("saved profile dev (the default)"), "{out}");
    assert!(out.contains(&server.url), "{out}");
    let body = std::fs::read_to_string(desk.profiles_file()).expect("profiles");
    assert!(
        body.contains(&format!("server = \"{}\"", server.url)),
        "{body}"
    );

    let who = ok(&desk.run(&desk.elsewhere, &["whoami"]).await, "whoami");
    assert_eq!(
        who.trim(),
        "spiffe://daypass.local/staff/alice (staff, support)"
    );
    let shown = ok(&desk.run(&desk.elsewhere, &["status"]).await, "status");
    assert!(shown.contains("profile dev (the default)"), "{shown}");
    assert!(
        shown.contains("days left)"),
        "a year's certificate: {shown}"
    );

    ok(
        &desk
            .run(
                &d,
                &[
                    "login",
                    "--dev",
                    "daypass-dev",
                    "--as",
                    "eve",
                    "--profile",
                    "eve",
                ],
            )
            .await,
        "login --dev --as eve",
    );
    // In the dev directory: the dev identity (--as), unless --profile says otherwise.
    let who = ok(&desk.run(&d, &["whoami", "--as", "bob"]).await, "dev dir");
    assert!(who.contains("staff/bob"), "{who}");
    let shown = ok(&desk.run(&d, &["status"]).await, "status in the dev dir");
    assert!(
        shown.contains("using        dev directory ./daypass-dev"),
        "{shown}"
    );
    let who = ok(
        &desk.run(&d, &["whoami", "--profile", "eve"]).await,
        "profile",
    );
    assert!(who.contains("auditor/eve"), "{who}");
    let who = ok(
        &desk
            .run(&desk.elsewhere, &["whoami", "--profile", "eve"])
            .await,
        "eve",
    );
    assert!(who.contains("auditor/eve"), "{who}");

    // Not a dev directory: said so, nothing saved beyond what was.
    let err = failed(
        &desk.run(&desk.elsewhere, &["login", "--dev", "."]).await,
        "not a dev dir",
    );
    assert!(
        err.contains("not a `daypass serve --dev` directory"),
        "{err}"
    );
    let err = failed(
        &desk
            .run(&d, &["login", "--dev", "daypass-dev", "--as", "nobody"])
            .await,
        "unknown dev identity",
    );
    assert!(err.contains("no dev identity \"nobody\""), "{err}");
}
