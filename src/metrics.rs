//! Prometheus metrics and the plain-HTTP health face: the [`Metrics`]
//! handle (an `Arc`, cheap to clone, reachable as `broker.metrics()`), the
//! one tower layer ([`RpcLayer`]) that counts and times every gRPC call and
//! writes the server's request log line, and the `/metrics`, `/healthz`,
//! `/readyz` routes ([`router`]). See docs/monitoring.md.
//!
//! Not here: what is measured is decided where it happens (validation in
//! `service::access`, rate limits in `service::admission`, group flushes
//! through the ledger's observer hook, which keeps the ledger free of
//! Prometheus). The listener is plain HTTP by design: it exposes counts,
//! never tenant data; keep it on localhost or the scrape network.

use std::{
    fmt::Write as _,
    pin::Pin,
    sync::{Arc, OnceLock},
    task::{Context, Poll},
    time::Duration,
};

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};
use tonic::codegen::http;

use crate::service::Broker;

type Labels2 = [(&'static str, String); 2];
type Labels1 = [(&'static str, String); 1];

/// The labels of a call: `code` is one of a fixed set, so only the method
/// is an owned string (moved in from the call, not copied).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcLabels {
    method: String,
    code: &'static str,
}

/// Validation labels: both from fixed sets, so recording allocates nothing.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ValidationLabels {
    result: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabel {
    call: &'static str,
}

/// Every daypass metric, registered once. Cheap to clone.
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

struct Inner {
    registry: Registry,
    rpc_requests: Family<RpcLabels, Counter>,
    rpc_seconds: Family<RpcLabels, Histogram, fn() -> Histogram>,
    validations: Family<ValidationLabels, Counter>,
    rate_limited: Family<CallLabel, Counter>,
    grants: Family<Labels1, Gauge>,
    log_entries: Gauge,
    checkpoint_size: Gauge,
    checkpoint_age: Gauge,
    /// The newest checkpoint size seen and when (unix seconds, injected clock).
    checkpoint_seen: parking_lot::Mutex<(u64, i64)>,
    group_commits: Histogram,
    flush_seconds: Histogram,
    expiry_lag: Histogram,
    alerts_open: Family<Labels1, Gauge>,
    outbox_depth: Family<Labels1, Gauge>,
    webhook_deliveries: Family<Labels2, Counter>,
    /// The webhook notifier's counters, read at each scrape
    /// ([`Metrics::observe_webhooks`]).
    webhooks: OnceLock<WebhookStats>,
    /// One scrape at a time brings the webhook counters up to date (two at
    /// once would add the same deliveries twice).
    webhooks_synced: parking_lot::Mutex<()>,
    syslog_backlog: Family<Labels1, Gauge>,
    syslog_sent: Family<Labels1, Counter>,
    syslog_failures: Family<Labels1, Counter>,
    /// The syslog forwarders' counters, read at each scrape
    /// ([`Metrics::observe_syslog`]); synced under `webhooks_synced`.
    syslog: OnceLock<SyslogStats>,
}

/// Reads the webhook notifier's per-hook counters
/// ([`crate::notify::Notifier::stats`]); the server hands it over.
pub type WebhookStats = Box<dyn Fn() -> Vec<crate::notify::HookStats> + Send + Sync>;

/// Reads the syslog forwarders' counters
/// ([`crate::siem::forward::Forwarder::stats`]); the server hands it over.
pub type SyslogStats = Box<dyn Fn() -> Vec<crate::siem::forward::ForwarderStats> + Send + Sync>;

fn rpc_histogram() -> Histogram {
    // 100 µs .. ~3.3 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("daypass");
        let rpc_requests = Family::<RpcLabels, Counter>::default();
        registry.register(
            "rpc_requests",
            "gRPC calls by method and status code",
            rpc_requests.clone(),
        );
        let rpc_seconds =
            Family::<RpcLabels, Histogram, fn() -> Histogram>::new_with_constructor(rpc_histogram);
        registry.register(
            "rpc_duration_seconds",
            "gRPC call latency by method and status code, until the response body ends",
            rpc_seconds.clone(),
        );
        let validations = Family::<ValidationLabels, Counter>::default();
        registry.register(
            "validations",
            "ValidateGrant decisions by result (allowed, denied) and deny reason",
            validations.clone(),
        );
        let rate_limited = Family::<CallLabel, Counter>::default();
        registry.register(
            "rate_limited",
            "calls refused for a rate limit, by limited call class",
            rate_limited.clone(),
        );
        let grants = Family::<Labels1, Gauge>::default();
        // Both states are exposed from the start, at 0.
        for state in ["pending", "active"] {
            let _ = grants.get_or_create(&[("state", state.to_owned())]);
        }
        registry.register(
            "grants",
            "live grants by state (pending, active), computed at scrape time",
            grants.clone(),
        );
        let log_entries = Gauge::default();
        registry.register(
            "log_entries",
            "durable entries in the log",
            log_entries.clone(),
        );
        let checkpoint_size = Gauge::default();
        registry.register(
            "checkpoint_size",
            "entries covered by the newest signed checkpoint",
            checkpoint_size.clone(),
        );
        let checkpoint_age = Gauge::default();
        registry.register(
            "checkpoint_age_seconds",
            "seconds since this server first saw the newest checkpoint grow (injected clock)",
            checkpoint_age.clone(),
        );
        let group_commits = Histogram::new(exponential_buckets(1.0, 2.0, 12));
        registry.register(
            "group_commits",
            "commits written per group flush",
            group_commits.clone(),
        );
        let flush_seconds = Histogram::new(exponential_buckets(0.0001, 2.0, 16));
        registry.register(
            "group_flush_duration_seconds",
            "time to write and flush one group to the store",
            flush_seconds.clone(),
        );
        let expiry_lag = Histogram::new(exponential_buckets(0.01, 2.0, 16));
        registry.register(
            "expiry_lag_seconds",
            "seconds between a grant's deadline and the writing of its expiry entry",
            expiry_lag.clone(),
        );
        let alerts_open = Family::<Labels1, Gauge>::default();
        registry.register(
            "alerts_open",
            "open alerts by severity (fed by the monitor)",
            alerts_open.clone(),
        );
        let outbox_depth = Family::<Labels1, Gauge>::default();
        registry.register(
            "webhook_outbox_depth",
            "undelivered webhook events by hook (fed by the webhook notifier)",
            outbox_depth.clone(),
        );
        let webhook_deliveries = Family::<Labels2, Counter>::default();
        registry.register(
            "webhook_deliveries",
            "webhook delivery attempts by hook and result (fed by the webhook notifier)",
            webhook_deliveries.clone(),
        );
        let syslog_backlog = Family::<Labels1, Gauge>::default();
        registry.register(
            "syslog_backlog",
            "durable entries a syslog forwarder has not yet flushed to its collector",
            syslog_backlog.clone(),
        );
        let syslog_sent = Family::<Labels1, Counter>::default();
        registry.register(
            "syslog_sent",
            "entries flushed to the collector by syslog forwarder (a resent one counts again)",
            syslog_sent.clone(),
        );
        let syslog_failures = Family::<Labels1, Counter>::default();
        registry.register(
            "syslog_failures",
            "failed connections, writes and flushes by syslog forwarder",
            syslog_failures.clone(),
        );
        Metrics(Arc::new(Inner {
            registry,
            rpc_requests,
            rpc_seconds,
            validations,
            rate_limited,
            grants,
            log_entries,
            checkpoint_size,
            checkpoint_age,
            checkpoint_seen: parking_lot::Mutex::new((0, 0)),
            group_commits,
            flush_seconds,
            expiry_lag,
            alerts_open,
            outbox_depth,
            webhook_deliveries,
            webhooks: OnceLock::new(),
            webhooks_synced: parking_lot::Mutex::new(()),
            syslog_backlog,
            syslog_sent,
            syslog_failures,
            syslog: OnceLock::new(),
        }))
    }

    /// One finished gRPC call.
    pub fn rpc(&self, method: String, code: &'static str, latency: Duration) {
        let labels = RpcLabels { method, code };
        self.0.rpc_requests.get_or_create(&labels).inc();
        self.0
            .rpc_seconds
            .get_or_create(&labels)
            .observe(latency.as_secs_f64());
    }

    /// One ValidateGrant decision; `reason` is the deny reason (`""` when
    /// allowed).
    pub fn validation(&self, allowed: bool, reason: &'static str) {
        let result = if allowed { "allowed" } else { "denied" };
        self.0
            .validations
            .get_or_create(&ValidationLabels { result, reason })
            .inc();
    }

    /// One call refused for its rate limit, labelled with the limited call.
    pub fn rate_limited(&self, class: crate::limits::Class) {
        let call = match class {
            crate::limits::Class::Requests => "RequestGrant",
            crate::limits::Class::Validations => "ValidateGrant",
            crate::limits::Class::Reports => "RecordAccess",
        };
        self.0.rate_limited.get_or_create(&CallLabel { call }).inc();
    }

    /// One group written and flushed: `commits` in it, taking `took`.
    pub fn group_flushed(&self, commits: u64, took: Duration) {
        self.0.group_commits.observe(commits as f64);
        self.0.flush_seconds.observe(took.as_secs_f64());
    }

    /// A grant's expiry entry was written `lag_secs` after its deadline.
    pub fn expiry_lag(&self, lag_secs: f64) {
        self.0.expiry_lag.observe(lag_secs.max(0.0));
    }

    /// Open alerts of `severity` (fed by the monitor).
    pub fn set_alerts_open(&self, severity: &str, n: i64) {
        self.0
            .alerts_open
            .get_or_create(&[("severity", severity.to_owned())])
            .set(n);
    }

    /// Undelivered events for `hook` (fed by the webhook notifier at each
    /// scrape, [`Metrics::observe_webhooks`]).
    pub fn set_outbox_depth(&self, hook: &str, n: i64) {
        self.0
            .outbox_depth
            .get_or_create(&[("hook", hook.to_owned())])
            .set(n);
    }

    /// One delivery attempt for `hook`, counted as it happens. The
    /// server's notifier is read at each scrape instead
    /// ([`Metrics::observe_webhooks`]); a handle is fed one way, not both.
    pub fn webhook_delivery(&self, hook: &str, ok: bool) {
        let result = if ok { "ok" } else { "failed" };
        self.0
            .webhook_deliveries
            .get_or_create(&[("hook", hook.to_owned()), ("result", result.to_owned())])
            .inc();
    }

    /// Sets where the webhook families are read from at each scrape (once;
    /// a second source is ignored).
    pub fn observe_webhooks(&self, stats: WebhookStats) {
        let _ = self.0.webhooks.set(stats);
    }

    /// Sets where the syslog families are read from at each scrape (once;
    /// a second source is ignored).
    pub fn observe_syslog(&self, stats: SyslogStats) {
        let _ = self.0.syslog.set(stats);
    }

    /// Brings the syslog families to the forwarders' counts, as
    /// [`Metrics::sync_webhooks`] does for the webhooks.
    fn sync_syslog(&self) {
        let Some(stats) = self.0.syslog.get() else {
            return;
        };
        let _one = self.0.webhooks_synced.lock();
        for f in stats() {
            let labels = [("forwarder", f.name.clone())];
            self.0
                .syslog_backlog
                .get_or_create(&labels)
                .set(gauge(f.depth));
            for (family, total) in [
                (&self.0.syslog_sent, f.sent),
                (&self.0.syslog_failures, f.failures),
            ] {
                let c = family.get_or_create(&labels);
                let behind = total.saturating_sub(c.get());
                if behind > 0 {
                    c.inc_by(behind);
                }
            }
        }
    }

    /// Brings the webhook families to the notifier's counts: the depth as
    /// it is now, the delivery counters up to the notifier's totals (which,
    /// like the counters, start at zero with the process).
    fn sync_webhooks(&self) {
        let Some(stats) = self.0.webhooks.get() else {
            return;
        };
        let _one = self.0.webhooks_synced.lock();
        for h in stats() {
            self.set_outbox_depth(&h.name, gauge(h.depth));
            for (result, total) in [("ok", h.delivered), ("failed", h.failed_attempts)] {
                let c = self
                    .0
                    .webhook_deliveries
                    .get_or_create(&[("hook", h.name.clone()), ("result", result.to_owned())]);
                let behind = total.saturating_sub(c.get());
                if behind > 0 {
                    c.inc_by(behind);
                }
            }
        }
    }

    /// The text exposition, after the scrape-time gauges are brought up to
    /// date from `broker` and the webhook notifier.
    pub fn render(&self, broker: &Broker) -> String {
        self.sync_webhooks();
        self.sync_syslog();
        let ledger = broker.ledger();
        self.0.log_entries.set(gauge(ledger.durable_size()));
        let now = broker.now().millis() / 1000;
        if let Some(cp) = ledger.latest_checkpoint() {
            self.0.checkpoint_size.set(gauge(cp.size));
            let mut seen = self.0.checkpoint_seen.lock();
            if cp.size > seen.0 || seen.1 == 0 {
                *seen = (cp.size, now);
            }
            self.0.checkpoint_age.set((now - seen.1).max(0));
        }
        let (mut pending, mut active) = (0i64, 0i64);
        if let Ok(grants) = ledger.live_grants() {
            for g in grants {
                match g.state {
                    crate::domain::GrantState::Pending => pending += 1,
                    crate::domain::GrantState::Active => active += 1,
                    _ => {}
                }
            }
        }
        self.0
            .grants
            .get_or_create(&[("state", "pending".to_owned())])
            .set(pending);
        self.0
            .grants
            .get_or_create(&[("state", "active".to_owned())])
            .set(active);
        // Open (not yet resolved) alerts by severity, from the alert records.
        if let Ok(alerts) = ledger.all_alerts() {
            for s in crate::domain::Severity::ALL {
                let n = alerts
                    .iter()
                    .filter(|a| a.severity == s && a.state != crate::domain::AlertState::Resolved)
                    .count();
                self.set_alerts_open(s.as_str(), n as i64);
            }
        }
        self.encode()
    }

    /// The text exposition (OpenMetrics) of every metric as it stands.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.0.registry).is_err() {
            out.clear();
            let _ = writeln!(out, "# encoding failed");
        }
        out
    }
}

fn gauge(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The `/metrics`, `/healthz`, `/readyz` routes.
pub fn router(broker: Arc<Broker>) -> axum::Router {
    use axum::{http::StatusCode, routing::get};
    let scrape = broker.clone();
    let ready = broker;
    axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let broker = scrape.clone();
                async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        broker.metrics().render(&broker),
                    )
                }
            }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(move || {
                let broker = ready.clone();
                async move {
                    match not_ready(&broker) {
                        None => (StatusCode::OK, "ready\n".to_owned()),
                        Some(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")),
                    }
                }
            }),
        )
}

/// Why the server is not ready, on one line; `None` when it is.
pub fn not_ready(broker: &Broker) -> Option<String> {
    if broker.fail_closed_reason().is_some() {
        return Some("fail-closed: the stored records disagree with the log".into());
    }
    broker
        .ledger()
        .refuses_writes()
        .map(|why| format!("the store refuses writes: {why}"))
}

/// The principal of a call, filled in by `rpc::Api::admit` once the
/// caller is admitted (the layer inserts an empty one into the request's
/// extensions; tonic hands them to the handler).
#[derive(Clone, Default)]
pub struct CallPrincipal(pub Arc<OnceLock<String>>);

/// The tower layer on the tonic router: counts and times every call by
/// method and gRPC status, and logs one line per call.
#[derive(Clone)]
pub struct RpcLayer(pub Metrics);

impl<S> tower::Layer<S> for RpcLayer {
    type Service = RpcService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RpcService {
            inner,
            metrics: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct RpcService<S> {
    inner: S,
    metrics: Metrics,
}

impl<S, B, RB> tower::Service<http::Request<RB>> for RpcService<S>
where
    S: tower::Service<http::Request<RB>, Response = http::Response<B>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: http_body::Body + Send + 'static,
{
    type Response = http::Response<MeteredBody<B>>;
    type Error = S::Error;
    type Future =
        Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<RB>) -> Self::Future {
        let principal = CallPrincipal::default();
        req.extensions_mut().insert(principal.clone());
        let call = Call {
            metrics: self.metrics.clone(),
            // Bounded: the path is the peer's (logged, never a label
            // unless the server has the method).
            method: req
                .uri()
                .path()
                .trim_start_matches('/')
                .chars()
                .take(128)
                .collect(),
            principal,
            started: tokio::time::Instant::now(),
            done: false,
        };
        let fut = self.inner.call(req);
        Box::pin(async move {
            let resp = fut.await?;
            let (parts, body) = resp.into_parts();
            let mut call = call;
            // Trailers-only responses (most errors) carry the status here.
            let code = parts.headers.get("grpc-status").map(status_name);
            if let Some(code) = code {
                call.finish(code);
            }
            Ok(http::Response::from_parts(
                parts,
                MeteredBody { inner: body, call },
            ))
        })
    }
}

/// The `method` label of calls to a method the server does not have.
pub const UNKNOWN_METHOD: &str = "unknown";

struct Call {
    metrics: Metrics,
    method: String,
    principal: CallPrincipal,
    started: tokio::time::Instant,
    done: bool,
}

impl Call {
    fn finish(&mut self, code: &'static str) {
        if self.done {
            return;
        }
        self.done = true;
        let latency = self.started.elapsed();
        let principal = self.principal.0.get().map(String::as_str).unwrap_or("-");
        tracing::info!(
            method = %self.method,
            principal = %principal,
            code = %code,
            latency_ms = latency.as_secs_f64() * 1000.0,
            "rpc"
        );
        // The path is the peer's: one it made up (answered UNIMPLEMENTED)
        // must not add a series, or a client could grow the registry.
        let method = if code == "UNIMPLEMENTED" {
            UNKNOWN_METHOD.to_owned()
        } else {
            std::mem::take(&mut self.method)
        };
        self.metrics.rpc(method, code, latency);
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        // The body was dropped before it ended: the client went away.
        self.finish("CANCELLED");
    }
}

/// A response body that records its call when it ends (unary OK calls and
/// streams carry `grpc-status` in the trailers).
pub struct MeteredBody<B> {
    inner: B,
    call: Call,
}

impl<B> http_body::Body for MeteredBody<B>
where
    B: http_body::Body + Unpin,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame
                    .trailers_ref()
                    .and_then(|t| t.get("grpc-status"))
                    .map(status_name)
                {
                    this.call.finish(code);
                }
            }
            Poll::Ready(Some(Err(_))) => this.call.finish("INTERNAL"),
            Poll::Ready(None) => this.call.finish("OK"),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The gRPC status name of a `grpc-status` header value.
fn status_name(v: &http::HeaderValue) -> &'static str {
    match v.as_bytes() {
        b"0" => "OK",
        b"1" => "CANCELLED",
        b"2" => "UNKNOWN",
        b"3" => "INVALID_ARGUMENT",
        b"4" => "DEADLINE_EXCEEDED",
        b"5" => "NOT_FOUND",
        b"6" => "ALREADY_EXISTS",
        b"7" => "PERMISSION_DENIED",
        b"8" => "RESOURCE_EXHAUSTED",
        b"9" => "FAILED_PRECONDITION",
        b"10" => "ABORTED",
        b"11" => "OUT_OF_RANGE",
        b"12" => "UNIMPLEMENTED",
        b"13" => "INTERNAL",
        b"14" => "UNAVAILABLE",
        b"15" => "DATA_LOSS",
        b"16" => "UNAUTHENTICATED",
        _ => "UNKNOWN",
    }
}
