//! Metrics and health over the plain-HTTP listener: real calls over mutual
//! TLS move the counters `/metrics` exposes, with the right labels;
//! `/healthz` answers while the process serves; `/readyz` turns 503 while
//! the store refuses writes and 200 again once a write succeeds; every
//! metric name the deploy files (dashboard, alert rules) use is one the
//! server exposes; the webhook families follow the notifier's deliveries
//! to a real HTTP receiver. (Process-wide fault switches: one test per
//! server.)

mod common;

use std::{
    collections::{BTreeMap, BTreeSet},
    convert::Infallible,
    net::SocketAddr,
    os::unix::fs::PermissionsExt as _,
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicU16, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use common::*;
use daypass::{
    config::{WebhookConfig, WebhookFormat},
    pb::{self, ApprovalPolicy, Role},
};
use http_body_util::Full;
use hyper::{Request, Response, StatusCode, service::service_fn};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tonic::Code;

/// One GET over HTTP/1.1: the status code and the body.
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .expect("write");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.expect("read");
    let text = String::from_utf8(raw).expect("utf-8");
    let (head, body) = text.split_once("\r\n\r\n").expect("a full response");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status line");
    (status, body.to_owned())
}

/// A sample of the text exposition.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// The families (`# TYPE` lines) and samples of a text exposition.
fn parse(text: &str) -> (BTreeSet<String>, Vec<Sample>) {
    let mut families = BTreeSet::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            families.insert(rest.split_whitespace().next().expect("a name").to_owned());
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("name and value");
        let (name, labels) = match series.split_once('{') {
            None => (series.to_owned(), BTreeMap::new()),
            Some((name, rest)) => {
                let inner = rest.strip_suffix('}').expect("closing brace");
                let labels = inner
                    .split("\",")
                    .filter(|p| !p.is_empty())
                    .map(|p| {
                        let (k, v) = p.split_once("=\"").expect("k=\"v\"");
                        (k.to_owned(), v.trim_end_matches('"').to_owned())
                    })
                    .collect();
                (name.to_owned(), labels)
            }
        };
        samples.push(Sample {
            name,
            labels,
            value: value.parse().expect("a number"),
        });
    }
    (families, samples)
}

/// The sum of the samples named `name` whose labels include `want`.
fn total(samples: &[Sample], name: &str, want: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            want.iter()
                .all(|(k, v)| s.labels.get(*k).is_some_and(|l| l.contains(v)))
        })
        .map(|s| s.value)
        .sum()
}

async fn scrape(s: &TestServer) -> (BTreeSet<String>, Vec<Sample>) {
    let (status, body) = get(s.metrics_addr.expect("metrics listener"), "/metrics").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.trim_end().ends_with("# EOF"),
        "OpenMetrics text ends with # EOF"
    );
    parse(&body)
}

/// Every family the server exposes once it has served these calls (a
/// family without a series is not in the exposition; the ones fed by
/// others are the second test's).
const FAMILIES: &[&str] = &[
    "daypass_rpc_requests",
    "daypass_rpc_duration_seconds",
    "daypass_validations",
    "daypass_rate_limited",
    "daypass_grants",
    "daypass_log_entries",
    "daypass_checkpoint_size",
    "daypass_checkpoint_age_seconds",
    "daypass_group_commits",
    "daypass_group_flush_duration_seconds",
    "daypass_expiry_lag_seconds",
];

/// Families fed by the monitor and the webhook notifier.
const FED_BY_OTHERS: &[&str] = &[
    "daypass_alerts_open",
    "daypass_webhook_outbox_depth",
    "daypass_webhook_deliveries",
];

/// A handle on which every family has a series.
fn fed() -> daypass::metrics::Metrics {
    let m = daypass::metrics::Metrics::new();
    m.rpc(
        "daypass.v1.GrantService/ValidateGrant".into(),
        "OK",
        std::time::Duration::from_millis(1),
    );
    m.validation(true, "");
    m.rate_limited(daypass::limits::Class::Requests);
    m.group_flushed(3, std::time::Duration::from_millis(2));
    m.expiry_lag(0.5);
    m.set_alerts_open("critical", 3);
    m.set_outbox_depth("pager", 7);
    m.webhook_delivery("pager", true);
    m
}

/// The server's log lines, captured (one subscriber for this test binary).
fn captured_log() -> Arc<Mutex<Vec<u8>>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || Sink(sink.clone()))
            .try_init()
            .expect("the only subscriber");
        log
    })
    .clone()
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_move_the_counters_and_readiness_follows_the_store() {
    let server_log = captured_log();
    let s = TestServer::start_with(|c| {
        // A second RequestGrant within the minute is refused for its rate.
        c.limits.requests_per_minute = 1.0;
        c.limits.request_burst = 1.0;
    })
    .await;
    let metrics = s.metrics_addr.expect("metrics listener");
    assert_eq!(get(metrics, "/healthz").await.0, 200);
    let mut alice = s.enrol("alice", Role::Support).await;
    let mut acme = s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let g = request_lasting(&mut alice, "acme", "INC-1", 60).await;
    let st = alice
        .grants
        .request_grant(grant_request("acme", "INC-2", 60))
        .await
        .expect_err("over the rate");
    assert_eq!(st.code(), Code::ResourceExhausted);
    assert!(validate(&mut acme, &g.id).await.allowed);
    let denied = validate(&mut acme, "g-unknown").await;
    assert!(!denied.allowed);
    let st = acme
        .staff
        .list_staff(pb::ListStaffRequest {})
        .await
        .expect_err("a tenant lists no staff");
    assert_eq!(st.code(), Code::PermissionDenied);
    // The grant expires: its expiry entry is written after the deadline.
    s.clock.advance_secs(61);
    s.wait_for("grant.expired", |e| e.entry.kind == "grant.expired")
        .await;
    // The families fed by others (the monitor, the webhook notifier) are
    // registered here; their setters are the next test's.

    // Reading the log as an auditor enrols one: counted before the scrape.
    let logged = s.entries().await.len();
    let (families, samples) = scrape(&s).await;
    for f in FAMILIES {
        assert!(families.contains(*f), "{f} is exposed: {families:?}");
    }
    let rpc = "daypass_rpc_requests_total";
    assert!(
        total(
            &samples,
            rpc,
            &[("method", "/ValidateGrant"), ("code", "OK")]
        ) >= 2.0
    );
    assert!(
        total(
            &samples,
            rpc,
            &[("method", "/ListStaff"), ("code", "PERMISSION_DENIED")]
        ) >= 1.0
    );
    assert!(
        total(
            &samples,
            rpc,
            &[("method", "/RequestGrant"), ("code", "RESOURCE_EXHAUSTED")]
        ) >= 1.0
    );
    assert!(
        total(
            &samples,
            "daypass_rpc_duration_seconds_count",
            &[("method", "/ValidateGrant")]
        ) >= 2.0
    );
    let v = "daypass_validations_total";
    assert_eq!(total(&samples, v, &[("result", "allowed")]), 1.0);
    assert_eq!(
        total(&samples, v, &[("result", "denied"), ("reason", "unknown")]),
        1.0
    );
    assert_eq!(
        total(
            &samples,
            "daypass_rate_limited_total",
            &[("call", "RequestGrant")]
        ),
        1.0
    );
    assert_eq!(
        total(&samples, "daypass_grants", &[("state", "active")]),
        0.0
    );
    assert!(samples.iter().any(
        |x| x.name == "daypass_grants" && x.labels.get("state").is_some_and(|l| l == "pending")
    ));
    let log = total(&samples, "daypass_log_entries", &[]);
    assert!(
        log >= logged as f64,
        "log size in entries: {log} < {logged}"
    );
    assert!(total(&samples, "daypass_checkpoint_size", &[]) >= 1.0);
    assert!(total(&samples, "daypass_checkpoint_age_seconds", &[]) >= 0.0);
    assert!(total(&samples, "daypass_group_commits_count", &[]) >= 5.0);
    assert!(total(&samples, "daypass_group_commits_sum", &[]) >= 5.0);
    assert!(total(&samples, "daypass_group_flush_duration_seconds_count", &[]) >= 5.0);
    assert_eq!(
        total(&samples, "daypass_expiry_lag_seconds_count", &[]),
        1.0
    );

    // Ready; not while writes fail; ready again once one succeeds.
    assert_eq!(get(metrics, "/readyz").await, (200, "ready\n".to_owned()));
    s.faults.fail_writes(true);
    let st = validate_err(&mut acme, &g.id).await;
    assert_eq!(st.code(), Code::Unavailable);
    let (status, why) = get(metrics, "/readyz").await;
    assert_eq!(status, 503, "{why}");
    assert!(why.contains("store refuses writes"), "{why}");
    assert_eq!(why.lines().count(), 1, "one line: {why}");
    assert_eq!(
        get(metrics, "/healthz").await.0,
        200,
        "alive while not ready"
    );
    s.faults.fail_writes(false);
    validate(&mut acme, &g.id).await;
    assert_eq!(get(metrics, "/readyz").await.0, 200);
    let (_, samples) = scrape(&s).await;
    let lines = String::from_utf8(server_log.lock().expect("log lock").clone()).expect("utf-8");
    let rpc_lines: Vec<&str> = lines
        .lines()
        .filter(|l| l.contains(": rpc method="))
        .collect();
    assert!(
        rpc_lines
            .iter()
            .any(|l| l.contains("ValidateGrant principal=")
                && l.contains("acme")
                && l.contains("code=OK latency_ms=")),
        "an admitted call's line names its caller: {rpc_lines:#?}"
    );
    assert!(
        rpc_lines
            .iter()
            .any(|l| l.contains("/ListStaff principal=- code=PERMISSION_DENIED")),
        "a call refused at admission logs principal -: {rpc_lines:#?}"
    );
    assert!(
        !rpc_lines
            .iter()
            .any(|l| l.contains("INC-1") || l.contains(&g.id)),
        "no request data in the request log"
    );
    assert!(
        total(
            &samples,
            rpc,
            &[("method", "/ValidateGrant"), ("code", "UNAVAILABLE")]
        ) >= 1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_families_fed_by_others_are_set_through_the_api() {
    let untouched = daypass::metrics::Metrics::new();
    let (families, _) = parse(&untouched.encode());
    for f in FED_BY_OTHERS {
        assert!(!families.contains(*f), "{f} has no series until fed");
    }
    let m = fed();
    m.webhook_delivery("pager", false);
    m.webhook_delivery("pager", false);
    let (families, samples) = parse(&m.encode());
    for f in FAMILIES.iter().chain(FED_BY_OTHERS) {
        assert!(families.contains(*f), "{f} is exposed once fed");
    }
    assert_eq!(
        total(&samples, "daypass_alerts_open", &[("severity", "critical")]),
        3.0
    );
    assert_eq!(
        total(
            &samples,
            "daypass_webhook_outbox_depth",
            &[("hook", "pager")]
        ),
        7.0
    );
    let d = "daypass_webhook_deliveries_total";
    assert_eq!(
        total(&samples, d, &[("hook", "pager"), ("result", "ok")]),
        1.0
    );
    assert_eq!(
        total(&samples, d, &[("hook", "pager"), ("result", "failed")]),
        2.0
    );
}

/// Every `daypass_…` name in the deploy files is one the server exposes
/// (a family, or one of its sample names).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deploy_files_use_only_exposed_metrics() {
    let (families, samples) = parse(&fed().encode());
    let mut exposed: BTreeSet<String> = samples.into_iter().map(|s| s.name).collect();
    for f in &families {
        for suffix in ["", "_total", "_bucket", "_sum", "_count", "_created"] {
            exposed.insert(format!("{f}{suffix}"));
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy");
    let mut used = 0;
    for file in ["grafana-dashboard.json", "prometheus-alerts.yml"] {
        let text = std::fs::read_to_string(root.join(file)).expect(file);
        let names = metric_names(&text);
        assert!(!names.is_empty(), "{file} uses daypass metrics");
        for n in &names {
            assert!(
                exposed.contains(n),
                "{file} uses {n}, which the server does not expose"
            );
        }
        used += names.len();
    }
    assert!(used >= 10);
}

/// The `daypass_[a-z_]+` words of `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("daypass_") {
        let before = rest[..at].chars().next_back();
        let tail = &rest[at..];
        let len = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .unwrap_or(tail.len());
        if !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            names.insert(tail[..len].trim_end_matches('_').to_owned());
        }
        rest = &tail[len.max(1)..];
    }
    names
}

/// A webhook receiver on 127.0.0.1 answering every request with the
/// status `answer` holds at the time.
async fn receiver(answer: Arc<AtomicU16>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let service = service_fn(move |_: Request<hyper::body::Incoming>| {
                    let code = StatusCode::from_u16(answer.load(Ordering::SeqCst))
                        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                    async move {
                        let mut r = Response::new(Full::new(Bytes::new()));
                        *r.status_mut() = code;
                        Ok::<_, Infallible>(r)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// Scrapes until `done` holds of the samples (wall time, at most 20 s),
/// calling `nudge` (to move the test clock) between scrapes.
async fn scrape_until(
    s: &TestServer,
    what: &str,
    nudge: impl Fn(),
    done: impl Fn(&[Sample]) -> bool,
) -> Vec<Sample> {
    let waited = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let (_, samples) = scrape(s).await;
            if done(&samples) {
                return samples;
            }
            nudge();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    waited.unwrap_or_else(|_| panic!("{what} within 20 s"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_families_follow_the_notifiers_deliveries() {
    let answer = Arc::new(AtomicU16::new(500));
    let url = format!("http://{}/hook", receiver(answer.clone()).await);
    let s = TestServer::start_with(|c| {
        let key = c.tls.key.parent().expect("key dir").join("pager.hook-key");
        std::fs::write(&key, b"0123456789abcdef-test-hook-key").expect("write key");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        c.webhooks.push(WebhookConfig {
            name: "pager".into(),
            url,
            secret_file: key,
            events: None,
            tenants: None,
            format: WebhookFormat::Json,
            max_attempts: 12,
            backoff_initial_ms: 1000,
            backoff_max_ms: 1000,
            ca_file: None,
        });
    })
    .await;
    let (ok, failed) = (
        [("hook", "pager"), ("result", "ok")],
        [("hook", "pager"), ("result", "failed")],
    );
    let d = "daypass_webhook_deliveries_total";
    let depth = "daypass_webhook_outbox_depth";
    // Nothing to deliver yet: the series are there, at zero.
    let samples = scrape_until(
        &s,
        "an empty outbox",
        || {},
        |x| x.iter().any(|x| x.name == depth) && total(x, depth, &[("hook", "pager")]) == 0.0,
    )
    .await;
    assert_eq!(total(&samples, d, &ok), 0.0);
    assert_eq!(total(&samples, d, &failed), 0.0);
    assert_eq!(total(&samples, depth, &[("hook", "pager")]), 0.0);

    // A notifiable entry (grant.activated); the receiver answers 500, so
    // the notifier retries it on the test clock and it stays in the outbox.
    s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let mut alice = s.enrol("alice", Role::Support).await;
    request_lasting(&mut alice, "acme", "INC-9", 3600).await;
    let samples = scrape_until(
        &s,
        "a failed attempt",
        || {},
        |x| total(x, d, &failed) >= 1.0,
    )
    .await;
    assert_eq!(total(&samples, d, &ok), 0.0);
    assert!(total(&samples, depth, &[("hook", "pager")]) >= 1.0);

    // The receiver recovers: the retry is delivered and the outbox empties.
    answer.store(200, Ordering::SeqCst);
    let samples = scrape_until(
        &s,
        "the delivery, and an empty outbox",
        || s.clock.advance_secs(1),
        |x| total(x, d, &ok) >= 1.0 && total(x, depth, &[("hook", "pager")]) == 0.0,
    )
    .await;
    assert!(total(&samples, d, &failed) >= 1.0);
}
