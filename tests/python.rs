//! Cross-language: examples/python/tenant_example.py, what a tenant writes
//! with grpcio and an ordinary PASETO library (pyseto), run against a real
//! server over real mutual TLS. It checks a grant online, verifies its token
//! and the signed revocation list offline, and reads (and proves) the
//! tenant's audit entries; then the grant is revoked and it must see that
//! both ways; and a tampered token must be refused.
//!
//! The Python side runs in a virtualenv under the target directory
//! (`$CARGO_TARGET_TMPDIR/pyenv`), created once with `python3 -m venv` and
//! examples/python/requirements.txt, and reused while that file (and the
//! interpreter) stay the same. Stubs are generated per run with
//! grpc_tools.protoc into a temporary directory. Without `python3` the test
//! says SKIPPED loudly and passes, except under CI (`CI` set), where it fails.

// Times and waits for real processes and sockets: wall time on purpose.
#![allow(clippy::disallowed_methods)]

mod common;

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
    time::Instant,
};

use common::*;
use daypass::{
    clock::{Clock, SystemClock},
    identity::PrincipalKind,
    pb::{ApprovalPolicy, Role},
};
use serde_json::Value;

const EXAMPLE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/python");
const PROTO_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/proto");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_tenant_checks_grants_online_offline_and_in_the_log() {
    let Some(python) = blocking(python_env).await else {
        return;
    };
    let work = tempfile::tempdir().expect("temp dir");
    let stubs = work.path().join("stubs");
    blocking({
        let (python, stubs) = (python.clone(), stubs.clone());
        move || generate_stubs(&python, &stubs)
    })
    .await;

    let s = TestServer::start().await;
    let mut alice = s.enrol("alice", Role::Support).await;
    let mut acme = s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let g = request(&mut alice, "acme", "INC-7: customer cannot log in").await;
    assert!(
        !g.token.is_empty(),
        "an active grant's holder gets its token"
    );
    record_access(&mut acme, &g.id, "ssh", "web-1").await;

    // The tenant's files, as its gateway would have them.
    let id = s.issue(PrincipalKind::Tenant, "acme");
    let file = |name: &str, text: &str| {
        let p = work.path().join(name);
        std::fs::write(&p, text).expect("write");
        p
    };
    let ca = file("ca.pem", s.ca.cert_pem());
    let cert = file("acme.pem", &id.cert_pem);
    let key = file("acme.key", &id.key_pem);
    let log_key = file("log.pub", &format!("{}\n", s.log_verifier()));
    let token = file("token.txt", &g.token);
    let example = Example {
        python,
        args: vec![
            "--server".into(),
            format!("127.0.0.1:{}", s.addr.port()),
            "--server-name".into(),
            "localhost".into(),
            "--ca".into(),
            ca.display().to_string(),
            "--cert".into(),
            cert.display().to_string(),
            "--key".into(),
            key.display().to_string(),
            "--tenant".into(),
            "acme".into(),
            "--grant-id".into(),
            g.id.clone(),
            "--token-file".into(),
            token.display().to_string(),
            "--log-key".into(),
            log_key.display().to_string(),
            "--stubs".into(),
            stubs.display().to_string(),
            // Small pages, so paging by next_seq is exercised.
            "--page-size".into(),
            "2".into(),
        ],
    };

    // Admitted: allowed online, valid offline, not revoked, and the log shows
    // the grant's story, every entry proven against a signed checkpoint.
    sync_clock(&s);
    let out = example.run(&[]).await;
    let summary = summary_of(&out, 0);
    assert_eq!(summary["tenant"], "acme");
    assert_eq!(summary["grant_id"], g.id.as_str());
    assert_eq!(summary["online_allowed"], true);
    assert_eq!(summary["deny_reason"], Value::Null);
    assert_eq!(summary["offline_valid"], true);
    assert_eq!(summary["holder"], "spiffe://test.daypass/staff/alice");
    assert_eq!(summary["revoked"], false);
    assert_eq!(summary["checkpoint_signature_verified"], true);
    let grant_kinds = strings(&summary["grant_kinds"]);
    for kind in [
        "grant.requested",
        "grant.activated",
        "access.recorded",
        "validation.allowed",
    ] {
        assert!(
            grant_kinds.contains(&kind.to_owned()),
            "{kind} of {} missing from {grant_kinds:?}",
            g.id
        );
    }
    // Exactly the tenant's entries in the proven tree, as the server has them.
    let tree_size = summary["tree_size"].as_u64().expect("tree_size");
    let acme_entries = s
        .entries()
        .await
        .into_iter()
        .filter(|e| e.entry.tenant == "acme" && e.entry.seq < tree_size)
        .count();
    assert_eq!(summary["entries"].as_u64(), Some(acme_entries as u64));
    assert!(acme_entries > 2, "more than one page at --page-size 2");

    // A token altered after signing (exp pushed out) is refused.
    let out = example.run(&["--tamper"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(out.stdout.is_empty(), "no summary: {}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("REJECTED") && stderr.contains("signature is invalid"),
        "{stderr}"
    );

    // Revoked by the tenant: denied online, listed in the signed revocation
    // list, while the token itself still verifies (so a gateway that skipped
    // the list would let the engineer in).
    revoke(&mut acme, &g.id, "INC-7 closed").await;
    sync_clock(&s);
    let out = example.run(&[]).await;
    let summary = summary_of(&out, 2);
    assert_eq!(summary["online_allowed"], false);
    assert_eq!(summary["deny_reason"], "DENY_REASON_REVOKED");
    assert_eq!(summary["offline_valid"], true);
    assert_eq!(summary["revoked"], true);
    assert_eq!(strings(&summary["revoked_grant_ids"]), vec![g.id.clone()]);
    let grant_kinds = strings(&summary["grant_kinds"]);
    for kind in ["grant.revoked", "validation.denied"] {
        assert!(grant_kinds.contains(&kind.to_owned()), "{grant_kinds:?}");
    }
}

/// How to run the example with fixed arguments.
struct Example {
    python: PathBuf,
    args: Vec<String>,
}

impl Example {
    async fn run(&self, extra: &[&str]) -> Output {
        let mut cmd = Command::new(&self.python);
        cmd.arg(Path::new(EXAMPLE_DIR).join("tenant_example.py"))
            .args(&self.args)
            .args(extra);
        let started = Instant::now();
        let out = blocking(move || cmd.output().expect("run the example")).await;
        eprintln!(
            "python: tenant_example.py {} exited {:?} in {:.2} s",
            extra.join(" "),
            out.status.code(),
            started.elapsed().as_secs_f64()
        );
        for line in String::from_utf8_lossy(&out.stderr).lines() {
            eprintln!("  | {line}");
        }
        out
    }
}

/// The server's clock is a manual one that starts at the wall clock; the
/// Python side uses the wall clock and refuses revocation lists older than
/// 30 s, so bring the server's clock up to the wall clock before each run.
fn sync_clock(s: &TestServer) {
    s.clock.set(SystemClock.now());
}

/// The JSON summary (stdout) of a run that exited with `code`.
fn summary_of(out: &Output, code: i32) -> Value {
    assert_eq!(out.status.code(), Some(code), "{}", describe(out));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not the JSON summary ({e}): {}", describe(out)))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("a JSON array")
        .iter()
        .map(|s| s.as_str().expect("a string").to_owned())
        .collect()
}

fn describe(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs blocking work (processes) off the runtime's worker threads, which
/// serve the test server meanwhile.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f)
        .await
        .expect("blocking task did not panic")
}

/// The virtualenv's python, created or reused (once per test process: the
/// tests here share it); `None` (after a loud SKIP) when python3 is not
/// installed and this is not CI.
fn python_env() -> Option<PathBuf> {
    static ENV: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    ENV.get_or_init(make_python_env).clone()
}

fn make_python_env() -> Option<PathBuf> {
    let version = python::python3_version(
        "tests/python.rs",
        "The Python tenant example",
        "Python 3 (with venv)",
    )?;
    let requirements = Path::new(EXAMPLE_DIR).join("requirements.txt");
    let wanted = format!(
        "{version}\n{}",
        std::fs::read_to_string(&requirements).expect("read examples/python/requirements.txt")
    );
    let env = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pyenv");
    let python = env.join("bin").join("python");
    // Written last: its presence means the install completed for these
    // requirements and this interpreter.
    let marker = env.join("daypass-requirements.txt");
    if python.exists() && std::fs::read_to_string(&marker).ok().as_deref() == Some(&wanted) {
        eprintln!("python: reusing {} ({version})", env.display());
        return Some(python);
    }

    let started = Instant::now();
    if env.exists() {
        std::fs::remove_dir_all(&env).expect("remove the outdated virtualenv");
    }
    check(
        "python3 -m venv",
        Command::new("python3").args(["-m", "venv"]).arg(&env),
    );
    check(
        "pip install -r examples/python/requirements.txt",
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--no-input",
                "--timeout",
                "60",
                "-r",
            ])
            .arg(&requirements),
    );
    std::fs::write(&marker, &wanted).expect("write the virtualenv marker");
    eprintln!(
        "python: created {} ({version}) in {:.1} s",
        env.display(),
        started.elapsed().as_secs_f64()
    );
    Some(python)
}

/// daypass/v1/daypass_pb2{,_grpc}.py under `out`, from the repository's proto.
fn generate_stubs(python: &Path, out: &Path) {
    std::fs::create_dir_all(out).expect("stubs dir");
    check(
        "grpc_tools.protoc",
        Command::new(python)
            .args(["-m", "grpc_tools.protoc"])
            .arg(format!("-I{PROTO_DIR}"))
            .arg(format!("--python_out={}", out.display()))
            .arg(format!("--grpc_python_out={}", out.display()))
            .arg(format!("{PROTO_DIR}/daypass/v1/daypass.proto")),
    );
}

/// Runs `cmd`; on failure panics with its whole output.
fn check(what: &str, cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    assert!(out.status.success(), "{what} failed: {}", describe(&out));
}

/// Stock Python clients, not tonic: server reflection v1alpha (all that
/// grpcio-reflection speaks) and v1 list every service, and the standard
/// health check answers SERVING for each daypass service by name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_python_clients_see_reflection_and_health_for_every_service() {
    let Some(python) = blocking(python_env).await else {
        return;
    };
    let s = TestServer::start().await;
    s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let work = tempfile::tempdir().expect("temp dir");
    let id = s.issue(PrincipalKind::Tenant, "acme");
    let file = |name: &str, text: &str| {
        let p = work.path().join(name);
        std::fs::write(&p, text).expect("write");
        p
    };
    let (ca, cert, key) = (
        file("ca.pem", s.ca.cert_pem()),
        file("acme.pem", &id.cert_pem),
        file("acme.key", &id.key_pem),
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/probe_services.py");
    let mut cmd = Command::new(&python);
    cmd.arg(script)
        .arg(format!("127.0.0.1:{}", s.addr.port()))
        .args([&ca, &cert, &key]);
    let out = blocking(move || cmd.output().expect("run the probe")).await;
    let v = summary_of(&out, 0);
    let v1alpha = strings(&v["v1alpha"]);
    // Each version lists the daypass services, health, and itself.
    let others = |list: &[String]| -> Vec<String> {
        list.iter()
            .filter(|n| !n.starts_with("grpc.reflection."))
            .cloned()
            .collect()
    };
    let v1 = strings(&v["v1"]);
    assert_eq!(others(&v1alpha), others(&v1), "both versions list the same");
    assert!(
        v1.iter()
            .any(|n| n == "grpc.reflection.v1.ServerReflection")
    );
    let daypass: Vec<&str> = v1alpha
        .iter()
        .map(String::as_str)
        .filter(|n| n.starts_with("daypass."))
        .collect();
    assert_eq!(
        daypass,
        [
            "daypass.v1.AlertService",
            "daypass.v1.AuditService",
            "daypass.v1.GateService",
            "daypass.v1.GrantService",
            "daypass.v1.IncidentService",
            "daypass.v1.NotifyService",
            "daypass.v1.ProcessingService",
            "daypass.v1.ScreenService",
            "daypass.v1.StaffService",
            "daypass.v1.TenantService",
        ]
    );
    for n in [
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    ] {
        assert!(v1alpha.iter().any(|s| s == n), "{n} in {v1alpha:?}");
    }
    for n in daypass {
        assert_eq!(v["health"][n], "SERVING", "{n}: {}", v["health"]);
    }
}
