//! Webhooks end to end (docs/webhooks.md), against a real HTTP receiver
//! started here: signed deliveries in log order with stable idempotency
//! keys, retries on the test clock, dead letters and their retry, nothing
//! lost across a SIGKILL of a real `daypass serve`, event and tenant
//! filters, and the Slack format. The receiver verifies every signature
//! itself; the Python snippet of docs/webhooks.md runs against one delivery.

mod common;

use std::{
    collections::BTreeSet,
    convert::Infallible,
    net::SocketAddr,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use common::*;
use daypass::{
    audit::SealedEntry,
    client::{self, ClientIdentity, Clients},
    clock::Clock as _,
    config::{WebhookConfig, WebhookFormat},
    identity::{Name, PrincipalKind},
    ledger::driver::{Driver, sled::SledDriver},
    notify,
    pb::{self, ApprovalPolicy, Role},
    pki::{self, CertSpec, CertificateAuthority},
};
use http_body_util::{BodyExt as _, Full};
use hyper::{Request, Response, StatusCode, service::service_fn};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use ring::hmac;
use serde_json::Value;
use tokio::net::TcpListener;

const SECRET: &[u8] = b"0123456789abcdef-test-hook-key";

/// One request the receiver got, and what it answered.
#[derive(Clone, Debug)]
struct Captured {
    delivery: String,
    signature: String,
    body: Vec<u8>,
    status: u16,
}

impl Captured {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }
    fn seq(&self) -> u64 {
        self.json()["seq"].as_u64().expect("seq")
    }
}

/// An HTTP receiver on 127.0.0.1 that records every request; it answers
/// 500 to the first `fail_next` requests, or to all while `always_fail`.
#[derive(Clone)]
struct Receiver {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<Captured>>>,
    fail_next: Arc<AtomicUsize>,
    always_fail: Arc<AtomicBool>,
}

impl Receiver {
    async fn start() -> Receiver {
        Receiver::on(TcpListener::bind("127.0.0.1:0").await.expect("bind")).await
    }

    async fn on(listener: TcpListener) -> Receiver {
        let r = Receiver {
            addr: listener.local_addr().expect("addr"),
            got: Arc::default(),
            fail_next: Arc::default(),
            always_fail: Arc::default(),
        };
        let me = r.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let me = me.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let me = me.clone();
                        async move { Ok::<_, Infallible>(me.answer(req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        r
    }

    async fn answer(&self, req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
        let header = |n: &str| {
            req.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let (delivery, signature) = (header("daypass-delivery"), header("daypass-signature"));
        let body = req
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes().to_vec())
            .unwrap_or_default();
        let fail = self.always_fail.load(Ordering::SeqCst)
            || self
                .fail_next
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
        let status = if fail {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::OK
        };
        self.got.lock().push(Captured {
            delivery,
            signature,
            body,
            status: status.as_u16(),
        });
        let mut r = Response::new(Full::new(Bytes::new()));
        *r.status_mut() = status;
        r
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    fn all(&self) -> Vec<Captured> {
        self.got.lock().clone()
    }

    /// The requests answered 2xx.
    fn acked(&self) -> Vec<Captured> {
        self.all().into_iter().filter(|c| c.status == 200).collect()
    }

    /// Waits (wall time, at most `secs`) until `done` holds of the requests,
    /// calling `nudge` (to move the test clock) between looks.
    async fn wait(
        &self,
        what: &str,
        secs: u64,
        nudge: impl Fn(),
        done: impl Fn(&[Captured]) -> bool,
    ) {
        let waited = tokio::time::timeout(Duration::from_secs(secs), async {
            while !done(&self.all()) {
                nudge();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(
            waited.is_ok(),
            "{what} within {secs} s; got {:#?}",
            self.all()
        );
    }
}

/// Writes the hook key (mode 0600) beside the server's TLS key.
fn secret_file(config_dir: &Path, name: &str) -> PathBuf {
    let path = config_dir.join(format!("{name}.hook-key"));
    std::fs::write(&path, SECRET).expect("write key");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    path
}

fn hook(dir: &Path, name: &str, url: &str) -> WebhookConfig {
    WebhookConfig {
        name: name.into(),
        url: url.into(),
        secret_file: secret_file(dir, name),
        events: None,
        tenants: None,
        format: WebhookFormat::Json,
        max_attempts: 12,
        backoff_initial_ms: 1000,
        backoff_max_ms: 300_000,
        ca_file: None,
    }
}

fn key_dir(c: &daypass::config::Config) -> PathBuf {
    c.tls.key.parent().expect("key dir").to_owned()
}

/// Checks `Daypass-Signature` as a receiver would: the HMAC over
/// `"<t>." ‖ body`, compared in constant time (ring's verify).
fn signature_ok(c: &Captured) -> bool {
    let Some((t, v1)) = c
        .signature
        .strip_prefix("t=")
        .and_then(|s| s.split_once(",v1="))
    else {
        return false;
    };
    let Ok(mac) = hex::decode(v1) else {
        return false;
    };
    let key = hmac::Key::new(hmac::HMAC_SHA256, SECRET);
    let mut msg = format!("{t}.").into_bytes();
    msg.extend_from_slice(&c.body);
    hmac::verify(&key, &msg, &mac).is_ok()
}

fn notifiable_seqs(entries: &[SealedEntry]) -> Vec<u64> {
    entries
        .iter()
        .filter(|e| notify::notifiable(&e.entry))
        .map(|e| e.entry.seq)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_arrive_signed_in_log_order_with_stable_keys() {
    let r = Receiver::start().await;
    let url = r.url();
    let mut s = TestServer::start_with(|c| {
        let h = hook(&key_dir(c), "ops", &url);
        c.webhooks.push(h);
    })
    .await;
    let mut acme = s.add_tenant("acme", ApprovalPolicy::Approval, false).await;
    s.add_tenant("globex", ApprovalPolicy::Auto, false).await;
    let mut bob = s.enrol("bob", Role::Support).await;
    let g = request(&mut bob, "acme", "INC-7 disk full").await;
    acme.grants
        .approve_grant(pb::DecideGrantRequest {
            grant_id: g.id.clone(),
            note: "ok".into(),
        })
        .await
        .expect("approve");
    let mut admin = s.admin().await;
    revoke(&mut admin, &g.id, "done early").await;
    // An auto-approved request: its grant.requested waits for no one.
    let mut carol = s.enrol("carol", Role::Support).await;
    let auto = request(&mut carol, "globex", "INC-8").await;

    let entries = s.entries().await;
    let expected = notifiable_seqs(&entries);
    let kind_of = |seq: u64| entries[seq as usize].entry.kind.clone();
    let kinds: Vec<String> = expected.iter().map(|q| kind_of(*q)).collect();
    assert_eq!(
        kinds,
        [
            "grant.requested",
            "grant.approved",
            "grant.activated",
            "grant.revoked",
            "grant.activated"
        ],
        "the notifiable entries of this story"
    );
    r.wait(
        "every notifiable entry acknowledged",
        20,
        || {},
        |got| got.iter().filter(|c| c.status == 200).count() >= expected.len(),
    )
    .await;
    let got = r.acked();
    assert_eq!(
        got.len(),
        expected.len(),
        "nothing else delivered: {got:#?}"
    );
    let seqs: Vec<u64> = got.iter().map(Captured::seq).collect();
    assert_eq!(seqs, expected, "in log order");
    let mut ids = BTreeSet::new();
    for c in &got {
        assert!(
            signature_ok(c),
            "signature of {}: {}",
            c.delivery,
            c.signature
        );
        let b = c.json();
        assert_eq!(b["id"], c.delivery.as_str());
        assert_eq!(
            c.delivery,
            format!("ops:{}", c.seq()),
            "the key is <hook>:<seq>"
        );
        assert!(ids.insert(c.delivery.clone()), "unique keys");
        let e = &entries[c.seq() as usize].entry;
        assert_eq!(b["kind"], e.kind.as_str());
        assert_eq!(b["tenant"], e.tenant.as_str());
        assert_eq!(b["actor"], e.actor.as_str());
        assert_eq!(b["timestamp"], e.timestamp.to_rfc3339().as_str());
        assert_eq!(b["details"]["grant"], e.details["grant"].as_str());
        assert!(b["log_origin"].as_str().is_some_and(|o| !o.is_empty()));
        let t: i64 = c.signature[2..c.signature.find(',').expect(",")]
            .parse()
            .expect("t");
        assert!(
            (t - s.clock.now().millis() / 1000).abs() <= 300,
            "t is the clock's time"
        );
    }
    assert_eq!(got[0].json()["details"]["approval"], "tenant-or-peer");
    assert!(got[4].json()["details"]["grant"] == auto.id.as_str());
    // A tampered body fails the check the receiver makes.
    let mut forged = got[0].clone();
    let at = forged
        .body
        .windows(5)
        .position(|w| w == b"INC-7")
        .expect("the reason is in the body");
    forged.body[at + 4] = b'9';
    assert!(!signature_ok(&forged), "a changed body must not verify");

    // After a restart the stored cursor holds: nothing is sent again.
    s.restart().await;
    revoke(&mut s.admin().await, &auto.id, "done").await;
    r.wait(
        "the next entry only",
        20,
        || {},
        |got| got.iter().filter(|c| c.status == 200).count() > expected.len(),
    )
    .await;
    let after: Vec<String> = r.acked()[expected.len()..]
        .iter()
        .map(|c| c.delivery.clone())
        .collect();
    assert_eq!(after.len(), 1, "one new delivery, no repeats: {after:?}");
    assert!(!ids.contains(&after[0]));

    python_verifies(&got[0]);
}

/// Runs the receiver's check of docs/webhooks.md (Python, standard
/// library only) against a real captured delivery, and against a forged one.
fn python_verifies(c: &Captured) {
    if common::python::python3_version(
        "tests/webhooks.rs",
        "the Python signature check of docs/webhooks.md",
        "python3",
    )
    .is_none()
    {
        return;
    }
    let doc = include_str!("../docs/webhooks.md");
    let snippet = doc
        .split("```python\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/webhooks.md has a ```python block");
    let t: i64 = c.signature[2..c.signature.find(',').expect(",")]
        .parse()
        .expect("t");
    let driver = "\nimport os, sys\nbody = open(os.environ['BODY'], 'rb').read()\n\
                  ok = verify(os.environ['SECRET'].encode(), os.environ['SIG'], body, \
                  now=int(os.environ['NOW']))\nsys.exit(0 if ok else 3)\n";
    let dir = tempfile::tempdir().expect("tmp");
    let run = |body: &[u8], now: i64| {
        let path = dir.path().join("body");
        std::fs::write(&path, body).expect("body");
        Command::new("python3")
            .arg("-c")
            .arg(format!("{snippet}{driver}"))
            .env("BODY", &path)
            .env("SECRET", std::str::from_utf8(SECRET).expect("ascii"))
            .env("SIG", &c.signature)
            .env("NOW", now.to_string())
            .output()
            .expect("run python3")
    };
    let ok = run(&c.body, t + 10);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "the documented check accepts a real delivery: {}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let mut forged = c.body.clone();
    forged.push(b' ');
    assert_eq!(
        run(&forged, t).status.code(),
        Some(3),
        "a changed body is refused"
    );
    assert_eq!(
        run(&c.body, t + 301).status.code(),
        Some(3),
        "a stale one is refused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_retried_then_dead_lettered_and_dead_letters_can_be_retried() {
    let flaky = Receiver::start().await;
    flaky.fail_next.store(2, Ordering::SeqCst);
    let down = Receiver::start().await;
    down.always_fail.store(true, Ordering::SeqCst);
    let (flaky_url, down_url) = (flaky.url(), down.url());
    let mut s = TestServer::start_with(|c| {
        let dir = key_dir(c);
        c.webhooks.push(hook(&dir, "flaky", &flaky_url));
        let mut h = hook(&dir, "down", &down_url);
        h.max_attempts = 3;
        c.webhooks.push(h);
    })
    .await;
    s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let mut bob = s.enrol("bob", Role::Support).await;
    let g = request(&mut bob, "acme", "INC-1").await;

    // Backoff runs on the test clock: 1 s, then 2 s.
    let clock = s.clock.clone();
    flaky
        .wait(
            "a 2xx after two 500s",
            20,
            || clock.advance_secs(1),
            |got| got.iter().any(|c| c.status == 200),
        )
        .await;
    let got = flaky.all();
    let statuses: Vec<u16> = got.iter().map(|c| c.status).collect();
    assert_eq!(
        statuses,
        [500, 500, 200],
        "retried until acknowledged, then no more"
    );
    let id = &got[0].delivery;
    assert!(
        got.iter().all(|c| &c.delivery == id),
        "one key across retries: {got:#?}"
    );
    assert!(got.iter().all(|c| c.json()["id"] == id.as_str()));
    assert!(got.iter().all(signature_ok));
    assert_eq!(got[2].json()["details"]["grant"], g.id.as_str());

    down.wait(
        "max_attempts tries",
        20,
        || clock.advance_secs(1),
        |got| got.len() >= 3,
    )
    .await;
    // Give up after the third: no fourth attempt however long we wait.
    for _ in 0..20 {
        clock.advance_secs(600);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(down.all().len(), 3, "exactly max_attempts attempts");

    // Through the RPC, on the running server: listed, refused to support,
    // and retried.
    let mut admin = s.admin().await;
    let listed = admin
        .notify
        .list_dead_letters(pb::ListDeadLettersRequest::default())
        .await
        .expect("list")
        .into_inner()
        .dead_letters;
    let seq = got[0].seq();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!((listed[0].hook.as_str(), listed[0].seq), ("down", seq));
    assert_eq!(
        (listed[0].attempts, listed[0].kind.as_str()),
        (3, "grant.activated")
    );
    assert!(
        listed[0].last_error.contains("500"),
        "{}",
        listed[0].last_error
    );
    let refused = bob
        .notify
        .list_dead_letters(pb::ListDeadLettersRequest::default())
        .await
        .expect_err("support may not");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    let retry = |hook: &str, seq: u64| pb::RetryDeadLetterRequest {
        hook: hook.into(),
        seq,
    };
    let unknown = admin
        .notify
        .retry_dead_letter(retry("down", seq + 1000))
        .await;
    assert_eq!(unknown.expect_err("no such").code(), tonic::Code::NotFound);
    down.always_fail.store(false, Ordering::SeqCst);
    admin
        .notify
        .retry_dead_letter(retry("down", seq))
        .await
        .expect("retry");
    down.wait(
        "the retried dead letter",
        20,
        || {},
        |got| got.iter().any(|c| c.status == 200),
    )
    .await;
    assert_eq!(
        down.acked()[0].delivery,
        format!("down:{seq}"),
        "the same key again"
    );
    assert_eq!(down.acked().len(), 1);

    // Through the ledger API, while stopped: a second dead letter.
    down.always_fail.store(true, Ordering::SeqCst);
    let before = down.all().len();
    revoke(&mut admin, &g.id, "done").await;
    down.wait(
        "three more attempts",
        20,
        || clock.advance_secs(1),
        |got| got.len() >= before + 3,
    )
    .await;
    // The dead letter is stored after the last attempt's answer.
    let mut dead = Vec::new();
    for _ in 0..500 {
        dead = admin
            .notify
            .list_dead_letters(pb::ListDeadLettersRequest {
                hook: "down".into(),
            })
            .await
            .expect("list")
            .into_inner()
            .dead_letters;
        if !dead.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        dead.len(),
        1,
        "the retried one is gone, the new one is there: {dead:?}"
    );
    // And through the CLI.
    let work = tempfile::tempdir().expect("tmp");
    let issued = s.issue(PrincipalKind::Staff, ADMIN);
    std::fs::write(work.path().join("ada.pem"), &issued.cert_pem).expect("cert");
    std::fs::write(work.path().join("ada.key"), &issued.key_pem).expect("key");
    // The command, then the connection flags.
    let flags = |rest: &[&str]| {
        let mut a: Vec<String> = rest.iter().map(|r| (*r).to_owned()).collect();
        a.extend([
            "--server".into(),
            s.server_url(),
            "--ca".into(),
            s.config.tls.ca.display().to_string(),
            "--cert".into(),
            work.path().join("ada.pem").display().to_string(),
            "--key".into(),
            work.path().join("ada.key").display().to_string(),
        ]);
        a
    };
    let out = cli::run_async(
        work.path().to_owned(),
        flags(&["--json", "webhooks", "dead"]),
    )
    .await;
    let listed: Value = serde_json::from_str(&cli::assert_ok(&out, "webhooks dead")).expect("json");
    assert_eq!(listed[0]["hook"], "down");
    assert_eq!(listed[0]["seq"], dead[0].seq);
    let out = cli::run_async(
        work.path().to_owned(),
        flags(&["webhooks", "retry", "down", "999999"]),
    )
    .await;
    let err = cli::one_line_error(&out, "webhooks retry of no dead letter");
    assert!(err.contains("no dead letter at seq 999999"), "{err}");

    s.stop().await;
    let ledger = s.open_ledger();
    let dead = notify::dead_letters(&ledger, "down")
        .await
        .expect("dead letters");
    assert_eq!(dead.len(), 1, "{dead:?}");
    let seq = dead[0].seq;
    assert_eq!(
        (dead[0].attempts, dead[0].kind.as_str()),
        (3, "grant.revoked")
    );
    assert!(
        notify::dead_letters(&ledger, "flaky")
            .await
            .expect("read")
            .is_empty()
    );
    assert!(
        notify::retry_dead_letter(&ledger, "down", seq + 1000)
            .await
            .is_err()
    );
    notify::retry_dead_letter(&ledger, "down", seq)
        .await
        .expect("retry");
    drop(ledger);

    down.always_fail.store(false, Ordering::SeqCst);
    s.start_again().await;
    down.wait(
        "the dead letter retried at start",
        20,
        || {},
        |got| got.iter().filter(|c| c.status == 200).count() >= 2,
    )
    .await;
    assert_eq!(
        down.acked()[1].delivery,
        format!("down:{seq}"),
        "the same key again"
    );
    s.stop().await;
    let ledger = s.open_ledger();
    assert!(
        notify::dead_letters(&ledger, "down")
            .await
            .expect("read")
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_pick_kinds_and_tenants_and_slack_gets_one_line() {
    let all = Receiver::start().await;
    let slack = Receiver::start().await;
    let (all_url, slack_url) = (all.url(), slack.url());
    let s = TestServer::start_with(|c| {
        let dir = key_dir(c);
        c.webhooks.push(hook(&dir, "all", &all_url));
        let mut h = hook(&dir, "chat", &slack_url);
        h.events = Some(vec!["grant.activated".into()]);
        h.tenants = Some(vec!["acme".into()]);
        h.format = WebhookFormat::Slack;
        c.webhooks.push(h);
    })
    .await;
    s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    s.add_tenant("globex", ApprovalPolicy::Auto, false).await;
    let mut bob = s.enrol("bob", Role::Support).await;
    let mut carol = s.enrol("carol", Role::Support).await;
    s.enrol("dave", Role::Support).await;
    let first = request(&mut bob, "acme", "INC-1 slow queries").await;
    request(&mut carol, "globex", "INC-2").await;
    s.admin()
        .await
        .staff
        .offboard_staff(pb::OffboardStaffRequest {
            name: "dave".into(),
        })
        .await
        .expect("offboard");
    let last = request(&mut carol, "acme", "INC-3 backups").await;

    // The second acme activation shows the chat hook went past the rest.
    slack
        .wait("two acme activations", 20, || {}, |got| got.len() >= 2)
        .await;
    let got = slack.all();
    assert_eq!(got.len(), 2, "only acme's grant.activated: {got:#?}");
    for (c, (g, who, reason)) in got.iter().zip([
        (&first, "bob", "INC-1 slow queries"),
        (&last, "carol", "INC-3 backups"),
    ]) {
        assert!(signature_ok(c));
        let body = c.json();
        let obj = body.as_object().expect("an object");
        assert_eq!(obj.keys().collect::<Vec<_>>(), ["text"], "Slack's shape");
        let text = obj["text"].as_str().expect("text");
        assert_eq!(text.lines().count(), 1, "one line: {text}");
        for part in ["grant.activated", "acme", g.id.as_str(), who, reason] {
            assert!(text.contains(part), "{text:?} names {part:?}");
        }
    }
    all.wait("the json hook: all four", 20, || {}, |got| got.len() >= 4)
        .await;
    let kinds: Vec<String> = all
        .all()
        .iter()
        .map(|c| c.json()["kind"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        kinds,
        [
            "grant.activated",
            "grant.activated",
            "staff.offboarded",
            "grant.activated"
        ]
    );
}

/// The monitor's alerts are notifiable too: a burst of denied validations
/// raises `denied-burst`, and its `alert.raised` entry reaches the hook.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_the_monitor_raises_is_delivered() {
    let pager = Receiver::start().await;
    let url = pager.url();
    let s = TestServer::start_with(|c| {
        c.alerts.enabled = true;
        let dir = key_dir(c);
        let mut h = hook(&dir, "pager", &url);
        h.events = Some(vec!["alert.raised".into()]);
        c.webhooks.push(h);
    })
    .await;
    let mut acme = s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    for _ in 0..10 {
        validate(&mut acme, "g-000000000000000000000000").await;
    }
    pager
        .wait("the alert", 20, || {}, |got| !got.is_empty())
        .await;
    let got = pager.all();
    assert_eq!(got.len(), 1, "{got:#?}");
    assert!(signature_ok(&got[0]));
    let body = got[0].json();
    assert_eq!(body["kind"], "alert.raised");
    assert_eq!(body["tenant"], "acme");
    assert_eq!(body["details"]["rule"], "denied-burst");
    assert_eq!(body["details"]["subject"], "tenant/acme");
}

// ------------------------------------------------------------ SIGKILL ---

const TRUST: &str = "hooks.daypass";

/// A `daypass serve` child; killed when dropped.
struct Serving(Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn identity(ca: &CertificateAuthority, kind: PrincipalKind, name: &str) -> ClientIdentity {
    let issued = ca
        .issue_client(kind, &Name::parse(name).expect("name"), TRUST, 2)
        .expect("client cert");
    ClientIdentity {
        ca_pem: ca.cert_pem().as_bytes().to_vec(),
        cert_pem: issued.cert_pem.into_bytes(),
        key_pem: issued.key_pem.into_bytes(),
    }
}

/// Starts `daypass serve --config` in `dir` and waits for an admitted call.
// Waiting for a real process: wall time.
#[allow(clippy::disallowed_methods)]
async fn serve(
    dir: &Path,
    hook_url: &str,
    admin: &ClientIdentity,
    n: u32,
) -> (Serving, Clients, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let p = |f: &str| format!("{:?}", dir.join(f).display().to_string());
    let config = dir.join("daypass.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndata_dir = {}\ntrust_domain = \"{TRUST}\"\n\
             bootstrap_admin = \"admin\"\n\n[tls]\nca = {}\ncert = {}\nkey = {}\n\n\
             [[webhooks]]\nname = \"ops\"\nurl = \"{hook_url}\"\nsecret_file = {}\n\
             backoff_initial_ms = 50\nbackoff_max_ms = 200\nmax_attempts = 1000\n",
            p("data"),
            p("ca.pem"),
            p("server.pem"),
            p("server.key"),
            p("ops.hook-key"),
        ),
    )
    .expect("config");
    let log = std::fs::File::create(dir.join(format!("server-{n}.log"))).expect("log");
    let child = Command::new(env!("CARGO_BIN_EXE_daypass"))
        .args(["serve", "--config"])
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("spawn daypass serve");
    let serving = Serving(child);
    let url = format!("https://127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(mut c) = client::connect(&url, admin).await {
            if c.staff.who_am_i(pb::WhoAmIRequest {}).await.is_ok() {
                return (serving, c, url);
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "start {n}: the server did not come up:\n{}",
            std::fs::read_to_string(dir.join(format!("server-{n}.log"))).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_lost_across_a_sigkill_while_the_receiver_is_down() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let ca = CertificateAuthority::generate("hooks CA").expect("CA");
    let server_cert = ca
        .issue(&CertSpec::server(
            &["localhost".into(), "127.0.0.1".into()],
            2,
        ))
        .expect("server cert");
    std::fs::write(d.join("ca.pem"), ca.cert_pem()).expect("write");
    std::fs::write(d.join("server.pem"), &server_cert.cert_pem).expect("write");
    pki::write_secret(&d.join("server.key"), &server_cert.key_pem).expect("write");
    pki::create_log_key(d, &pki::default_log_origin(TRUST), false).expect("log key");
    pki::create_gate_keys(d, false).expect("gate keys");
    secret_file(d, "ops");
    let admin = identity(&ca, PrincipalKind::Staff, "admin");

    // The receiver is down: its port is free and nothing listens.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let hook_url = format!("http://127.0.0.1:{port}/hook");
    let (server, mut c, url) = serve(d, &hook_url, &admin, 1).await;
    for (tenant, approval) in [
        ("acme", pb::ApprovalPolicy::Approval),
        ("globex", pb::ApprovalPolicy::Auto),
    ] {
        c.tenants
            .add_tenant(pb::AddTenantRequest {
                name: tenant.into(),
                approval: approval as i32,
                require_ticket: false,
                require_declaration: false,
                ..Default::default()
            })
            .await
            .expect("add tenant");
    }
    for who in ["e1", "e2", "e3"] {
        c.staff
            .add_staff(pb::AddStaffRequest {
                name: who.into(),
                role: Role::Support as i32,
                country: String::new(),
                organisation: String::new(),
            })
            .await
            .expect("add staff");
    }
    let acme = identity(&ca, PrincipalKind::Tenant, "acme");
    let mut acme = client::connect(&url, &acme).await.expect("acme");
    for who in ["e1", "e2"] {
        let mut e = client::connect(&url, &identity(&ca, PrincipalKind::Staff, who))
            .await
            .expect("connect");
        let g = request(&mut e, "acme", "INC-1").await;
        acme.grants
            .approve_grant(pb::DecideGrantRequest {
                grant_id: g.id.clone(),
                note: String::new(),
            })
            .await
            .expect("approve");
        let g2 = request(&mut e, "globex", "INC-2").await;
        revoke(&mut c, &g2.id, "enough").await;
    }
    c.staff
        .offboard_staff(pb::OffboardStaffRequest { name: "e3".into() })
        .await
        .expect("offboard");
    drop(server); // SIGKILL: no clean stop

    let driver = SledDriver::open(&d.join("data"), 8 << 20).expect("open");
    let logged: Vec<SealedEntry> = driver
        .entries_from(0)
        .collect::<Result<_, _>>()
        .expect("read log");
    drop(driver);
    let expected: BTreeSet<u64> = notifiable_seqs(&logged).into_iter().collect();
    assert!(expected.len() >= 10, "a real backlog: {expected:?}");

    let r = Receiver::on(
        TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("rebind"),
    )
    .await;
    let (_server, _c, _) = serve(d, &hook_url, &admin, 2).await;
    r.wait(
        "every notifiable entry of the log",
        60,
        || {},
        |got| {
            let acked: BTreeSet<u64> = got
                .iter()
                .filter(|c| c.status == 200)
                .map(Captured::seq)
                .collect();
            expected.is_subset(&acked)
        },
    )
    .await;
    let got = r.acked();
    for c in &got {
        assert!(signature_ok(c));
        assert!(
            expected.contains(&c.seq()),
            "only notifiable entries: {}",
            c.seq()
        );
        assert_eq!(c.delivery, format!("ops:{}", c.seq()));
    }
    let order: Vec<u64> = got.iter().map(Captured::seq).collect();
    let mut sorted = order.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(
        sorted,
        expected.iter().copied().collect::<Vec<_>>(),
        "none skipped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hook_key_others_can_read_is_refused_at_start() {
    let mut s = TestServer::start_with(|c| {
        let h = hook(&key_dir(c), "ops", "http://127.0.0.1:9/hook");
        std::fs::set_permissions(&h.secret_file, std::fs::Permissions::from_mode(0o644))
            .expect("chmod");
        c.webhooks.push(h);
    })
    .await;
    let e = s.stop_reporting().await.expect_err("refused").to_string();
    assert!(
        e.contains("webhook \"ops\"") && e.contains("chmod 600"),
        "{e}"
    );
    assert!(
        !e.contains(std::str::from_utf8(SECRET).expect("ascii")),
        "{e}"
    );
}

/// Notifications go to the approvers: a request under a group policy is
/// delivered with who it waits for (`awaits`) and the members who may
/// approve it (`approvers`, never the requester), in the JSON body and in
/// the Slack line, so a chat or pager receiver can notify exactly them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_names_its_approvers_for_the_receiver() {
    let json = Receiver::start().await;
    let slack = Receiver::start().await;
    let (json_url, slack_url) = (json.url(), slack.url());
    let s = TestServer::start_with(|c| {
        let dir = key_dir(c);
        let mut h = hook(&dir, "pager", &json_url);
        h.events = Some(vec!["grant.requested".into()]);
        c.webhooks.push(h);
        let mut h = hook(&dir, "chat", &slack_url);
        h.events = Some(vec!["grant.requested".into()]);
        h.format = WebhookFormat::Slack;
        c.webhooks.push(h);
    })
    .await;
    let mut alice = s.enrol("alice", Role::Support).await;
    s.enrol("bob", Role::Support).await;
    s.enrol("carol", Role::Root).await;
    let mut admin = s.admin().await;
    admin
        .staff
        .set_approver_group(pb::SetApproverGroupRequest {
            name: "oncall-leads".into(),
            members: vec!["alice".into(), "bob".into(), "carol".into()],
        })
        .await
        .expect("group");
    admin
        .tenants
        .add_tenant(pb::AddTenantRequest {
            name: "acme".into(),
            approval: ApprovalPolicy::Group as i32,
            approver_group: "oncall-leads".into(),
            approval_threshold: 2,
            ..Default::default()
        })
        .await
        .expect("tenant");
    s.add_tenant("lockbox", ApprovalPolicy::Tenant, false).await;
    let g = request(&mut alice, "acme", "INC-11 pager").await;
    let t = request(&mut alice, "lockbox", "INC-12 lockbox").await;

    json.wait("both requests", 20, || {}, |got| got.len() >= 2)
        .await;
    let got = json.all();
    assert!(got.iter().all(signature_ok));
    let group = got[0].json();
    assert_eq!(group["kind"], "grant.requested");
    assert_eq!(group["details"]["grant"], g.id.as_str());
    assert_eq!(group["details"]["awaits"], "group oncall-leads 2 of 2");
    assert_eq!(group["details"]["approvers"], "staff/bob,staff/carol");
    let lockbox = got[1].json();
    assert_eq!(lockbox["details"]["grant"], t.id.as_str());
    assert_eq!(lockbox["details"]["awaits"], "tenant lockbox");
    assert_eq!(lockbox["details"]["approvers"], "tenant/lockbox");

    slack
        .wait("both requests in chat", 20, || {}, |got| got.len() >= 2)
        .await;
    let text = slack.all()[0].json()["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.contains(&format!(
            "grant {}, for alice, waiting for approval by group oncall-leads 2 of 2: \
             staff/bob staff/carol",
            g.id
        )),
        "{text}"
    );
}
