//! `daypass bench service`: the real server, real mutual TLS on 127.0.0.1,
//! a fresh PKI and store, driven by a concurrent client; every figure next
//! to the baseline that bounds it, measured in the same run.
//!
//! Method. The server runs in this process (`server::run`, the same code as
//! `daypass serve`) on a new data directory. The load generator keeps
//! `--concurrency` calls in flight (one task each, a new call as soon as the
//! previous one answers) over `--connections` mutual-TLS connections, for
//! `--seconds` per workload, and records every call's latency:
//!
//! * **empty RPC** (baseline): `grpc.health.v1.Health/Check` over the same
//!   TLS stack, with no admission and no log write;
//! * **ValidateGrant**: a tenant validates an active grant (admitted,
//!   decided, one durable log entry: group commit);
//! * **RecordAccess**: the tenant records an access under it (same);
//! * **RequestGrant**: support engineers request auto-approved grants, each
//!   a new (engineer, tenant) pair: two durable entries and a grant record;
//!   one connection per engineer, since the engineer is the certificate;
//! * **export + verify**: the whole log streamed as an auditor into a JSON
//!   Lines buffer, then verified offline (`audit::export::verify`).
//!
//! Baselines measured in the same run: raw sled insert + flush with the
//! store's group-commit policy at the same concurrency, SHA-256 over the
//! exported bytes, and Ed25519 sign and verify (ring).

use std::{
    future::Future,
    net::SocketAddr,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use ring::{
    digest::{SHA256, digest},
    signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey},
};
use tokio::{net::TcpListener, sync::oneshot};

use super::tree::{err, header, scratch_dir};
use daypass::{
    audit::export,
    client::{self, ClientIdentity, Clients},
    clock::SystemClock,
    config::{Config, GrantLimits, StaffLimits, TlsFiles},
    identity::{Name, PrincipalKind},
    pb,
    pki::{self, CertSpec, CertificateAuthority},
};

/// What `daypass bench service` runs.
#[derive(Clone, Debug)]
pub struct ServiceOptions {
    /// Measured seconds per workload.
    pub seconds: f64,
    /// Calls in flight.
    pub concurrency: usize,
    /// Mutual-TLS connections the calls share (RequestGrant uses one per
    /// engineer instead).
    pub connections: usize,
    pub dir: Option<PathBuf>,
    /// The monitor follows the log (the default, as in production); off to
    /// measure what it costs.
    pub monitor: bool,
}

const TRUST: &str = "bench.daypass";

/// Latencies of one workload.
#[derive(Clone, Debug)]
struct Stats {
    calls: u64,
    seconds: f64,
    p50: f64,
    p99: f64,
    p999: f64,
}

impl Stats {
    fn rate(&self) -> f64 {
        self.calls as f64 / self.seconds
    }

    fn from(mut micros: Vec<u32>, seconds: f64) -> Stats {
        micros.sort_unstable();
        let q = |p: f64| -> f64 {
            if micros.is_empty() {
                return 0.0;
            }
            let i = ((micros.len() as f64 * p).ceil() as usize).clamp(1, micros.len()) - 1;
            f64::from(micros[i])
        };
        Stats {
            calls: micros.len() as u64,
            seconds,
            p50: q(0.50),
            p99: q(0.99),
            p999: q(0.999),
        }
    }
}

/// Runs the service benchmark and returns the report (Markdown).
pub async fn service(opts: &ServiceOptions) -> Result<String, String> {
    if opts.concurrency == 0 || opts.connections == 0 || opts.seconds <= 0.0 {
        return Err("--concurrency, --connections and --seconds must be above 0".into());
    }
    let dir = scratch_dir(opts.dir.as_deref())?;
    let result = run(opts, &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

pub(super) struct Setup {
    ca: CertificateAuthority,
    url: String,
    pub(super) stop: oneshot::Sender<()>,
    pub(super) server: tokio::task::JoinHandle<Result<(), daypass::server::ServerError>>,
}

impl Setup {
    pub(super) async fn connect(&self, kind: PrincipalKind, name: &str) -> Result<Clients, String> {
        let issued = self
            .ca
            .issue_client(kind, &Name::parse(name).map_err(err)?, TRUST, 2)
            .map_err(err)?;
        let id = ClientIdentity {
            ca_pem: self.ca.cert_pem().as_bytes().to_vec(),
            cert_pem: issued.cert_pem.into_bytes(),
            key_pem: issued.key_pem.into_bytes(),
        };
        client::connect(&self.url, &id).await.map_err(err)
    }
}

pub(super) async fn start_server(dir: &std::path::Path, monitor: bool) -> Result<Setup, String> {
    let ca = CertificateAuthority::generate("daypass bench CA").map_err(err)?;
    let server_cert = ca
        .issue(&CertSpec::server(
            &["localhost".into(), "127.0.0.1".into()],
            2,
        ))
        .map_err(err)?;
    let path = |n: &str| dir.join(n);
    pki::write_public(&path("ca.pem"), ca.cert_pem()).map_err(err)?;
    pki::write_public(&path("server.pem"), &server_cert.cert_pem).map_err(err)?;
    pki::write_secret(&path("server.key"), &server_cert.key_pem).map_err(err)?;
    pki::create_log_key(dir, &pki::default_log_origin(TRUST), false).map_err(err)?;
    pki::create_gate_keys(dir, false).map_err(err)?;
    let config = Config {
        listen: "127.0.0.1:0".parse::<SocketAddr>().map_err(err)?,
        data_dir: path("data"),
        trust_domain: TRUST.into(),
        bootstrap_admin: Some("bench-admin".into()),
        tls: TlsFiles {
            ca: path("ca.pem"),
            cert: path("server.pem"),
            key: path("server.key"),
        },
        grants: GrantLimits::default(),
        staff: StaffLimits::default(),
        location: daypass::config::LocationSettings::default(),
        log: Default::default(),
        store: Default::default(),
        // The bench measures throughput: no per-caller limit may bind.
        limits: daypass::config::RateSettings {
            requests_per_minute: 1e9,
            request_burst: 1e9,
            validations_per_second: 1e9,
            validation_burst: 1e9,
            reports_per_second: 1e9,
            report_burst: 1e9,
            ..Default::default()
        },
        gate: Default::default(),
        alerts: daypass::monitor::settings::AlertSettings {
            enabled: monitor,
            ..Default::default()
        },
        metrics: Default::default(),
        webhooks: Vec::new(),
        syslog: Vec::new(),
        screen: Default::default(),
        tiles: Default::default(),
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.map_err(err)?;
    let port = listener.local_addr().map_err(err)?.port();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(daypass::server::run(
        config,
        Arc::new(SystemClock),
        daypass::server::Listeners {
            grpc: listener,
            metrics: None,
            screen: None,
            tiles: None,
        },
        async {
            let _ = stopped.await;
        },
    ));
    Ok(Setup {
        ca,
        url: format!("https://127.0.0.1:{port}"),
        stop,
        server,
    })
}

/// Waits until the server answers an admitted call (it bootstraps its
/// admin before serving).
pub(super) async fn ready(setup: &Setup) -> Result<Clients, String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(mut admin) = setup.connect(PrincipalKind::Staff, "bench-admin").await {
            if admin.staff.who_am_i(pb::WhoAmIRequest {}).await.is_ok() {
                return Ok(admin);
            }
        }
        if Instant::now() > deadline {
            return Err("the bench server did not come up within 20 s".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Keeps `concurrency` calls in flight for `seconds`. `call(task, n)`
/// returns false when that task has nothing more to do.
async fn drive<F, Fut>(concurrency: usize, seconds: f64, call: F) -> Result<Stats, String>
where
    F: Fn(usize, u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<bool, String>> + Send,
{
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(seconds);
    let mut tasks = Vec::with_capacity(concurrency);
    for task in 0..concurrency {
        let call = call.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut n = 0u64;
            while Instant::now() < deadline {
                let t = Instant::now();
                let more = call(task, n).await?;
                lat.push(u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX));
                n += 1;
                if !more {
                    break;
                }
            }
            Ok::<_, String>(lat)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.map_err(err)??);
    }
    Ok(Stats::from(all, start.elapsed().as_secs_f64()))
}

async fn run(opts: &ServiceOptions, dir: &std::path::Path) -> Result<String, String> {
    let setup = start_server(dir, opts.monitor).await?;
    let report = measure(opts, &setup, dir).await;
    let _ = setup.stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(20), setup.server).await;
    report
}

async fn measure(
    opts: &ServiceOptions,
    setup: &Setup,
    dir: &std::path::Path,
) -> Result<String, String> {
    let (c, secs) = (opts.concurrency, opts.seconds);
    let mut admin = ready(setup).await?;

    // Cast: a holder with one active grant on tenant t0 (validated and
    // recorded against), one engineer per in-flight RequestGrant, and enough
    // auto-approved tenants that every request is a new pair.
    let tenants = ((secs * 12_000.0 / c as f64).ceil() as usize).clamp(8, 4000);
    for (name, role) in std::iter::once(("holder".to_owned(), pb::Role::Support))
        .chain((0..c).map(|i| (format!("s{i}"), pb::Role::Support)))
        .chain(std::iter::once((
            "bench-auditor".to_owned(),
            pb::Role::Auditor,
        )))
    {
        admin
            .staff
            .add_staff(pb::AddStaffRequest {
                name,
                role: role as i32,
                country: String::new(),
                organisation: String::new(),
            })
            .await
            .map_err(err)?;
    }
    let mut adds = Vec::new();
    for j in 0..tenants {
        let mut a = admin.clone();
        adds.push(tokio::spawn(async move {
            a.tenants
                .add_tenant(pb::AddTenantRequest {
                    name: format!("t{j}"),
                    approval: pb::ApprovalPolicy::Auto as i32,
                    require_ticket: false,
                    require_declaration: false,
                    ..Default::default()
                })
                .await
                .map(drop)
                .map_err(err)
        }));
        if adds.len() == 16 {
            for a in adds.drain(..) {
                a.await.map_err(err)??;
            }
        }
    }
    for a in adds {
        a.await.map_err(err)??;
    }
    let mut holder = setup.connect(PrincipalKind::Staff, "holder").await?;
    let grant = holder
        .grants
        .request_grant(pb::RequestGrantRequest {
            tenant: "t0".into(),
            reason: "bench: validations and access records".into(),
            ticket: String::new(),
            duration_seconds: 0,
            ..Default::default()
        })
        .await
        .map_err(err)?
        .into_inner()
        .id;

    let mut tenant_conns = Vec::new();
    for _ in 0..opts.connections {
        tenant_conns.push(setup.connect(PrincipalKind::Tenant, "t0").await?);
    }
    let tenant_conns = Arc::new(tenant_conns);
    let conn = move |conns: &Arc<Vec<Clients>>, task: usize| conns[task % conns.len()].clone();

    // Baseline: the empty RPC.
    let conns = tenant_conns.clone();
    let empty = drive(c, secs, move |task, _| {
        let mut cl = conn(&conns, task);
        async move {
            cl.health
                .check(tonic_health::pb::HealthCheckRequest::default())
                .await
                .map_err(err)?;
            Ok(true)
        }
    })
    .await?;

    let conns = tenant_conns.clone();
    let g = grant.clone();
    let validate = drive(c, secs, move |task, _| {
        let mut cl = conn(&conns, task);
        let g = g.clone();
        async move {
            let r = cl
                .grants
                .validate_grant(pb::ValidateGrantRequest {
                    subject: Some(pb::validate_grant_request::Subject::GrantId(g)),
                    ..Default::default()
                })
                .await
                .map_err(err)?
                .into_inner();
            if !r.allowed {
                return Err("the bench grant was not allowed".into());
            }
            Ok(true)
        }
    })
    .await?;

    let conns = tenant_conns.clone();
    let g = grant.clone();
    let record = drive(c, secs, move |task, _| {
        let mut cl = conn(&conns, task);
        let g = g.clone();
        async move {
            cl.grants
                .record_access(pb::RecordAccessRequest {
                    grant_id: g,
                    action: "kubectl exec".into(),
                    resource: "deploy/web".into(),
                    ..Default::default()
                })
                .await
                .map_err(err)?;
            Ok(true)
        }
    })
    .await?;

    let mut engineers = Vec::new();
    for i in 0..c {
        engineers.push(
            setup
                .connect(PrincipalKind::Staff, &format!("s{i}"))
                .await?,
        );
    }
    let engineers = Arc::new(engineers);
    let exhausted = Arc::new(AtomicU64::new(0));
    let (e, x) = (engineers.clone(), exhausted.clone());
    let request = drive(c, secs, move |task, n| {
        let mut cl = e[task].clone();
        let x = x.clone();
        async move {
            // Tenant t0 holds the bench grant's pair for "holder" only, so
            // every engineer may use t0..t{tenants-1}.
            let j = n as usize;
            if j + 1 >= tenants {
                x.fetch_add(1, Ordering::Relaxed);
            }
            cl.grants
                .request_grant(pb::RequestGrantRequest {
                    tenant: format!("t{j}"),
                    reason: "bench: auto-approved request".into(),
                    ticket: String::new(),
                    duration_seconds: 3600,
                    ..Default::default()
                })
                .await
                .map_err(err)?;
            Ok(j + 1 < tenants)
        }
    })
    .await?;

    // Export as an auditor into memory, then verify it offline.
    let mut auditor = setup
        .connect(PrincipalKind::Auditor, "bench-auditor")
        .await?;
    let t = Instant::now();
    let mut stream = auditor
        .audit
        .stream_entries(pb::StreamEntriesRequest {
            purpose: pb::ReadPurpose::Export as i32,
            ..Default::default()
        })
        .await
        .map_err(err)?
        .into_inner();
    let mut bytes = Vec::new();
    let mut entries = 0u64;
    while let Some(e) = stream.message().await.map_err(err)? {
        let s = daypass::rpc::entry_from_pb(&e).map_err(err)?;
        export::write_line(&mut bytes, &s).map_err(err)?;
        entries += 1;
    }
    let export_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let summary = export::verify(&bytes[..])
        .map_err(|(line, p)| format!("the export did not verify: line {line}: {p}"))?;
    let verify_secs = t.elapsed().as_secs_f64();
    if summary.entries != entries {
        return Err("the verifier saw a different number of entries".into());
    }

    // Baselines without the service.
    let sled = raw_sled(c, secs, dir).await?;
    let (sha_mb_s, sign_s, verify_s) = crypto_baselines(&bytes);

    let mb = bytes.len() as f64 / 1e6;
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    use std::fmt::Write as _;
    let mut out = header(
        "Service benchmark",
        format!(
            "daypass bench service --seconds {secs} --concurrency {c} --connections {}",
            opts.connections
        ),
        opts.dir.as_deref(),
    );
    let _ = writeln!(
        out,
        "{c} calls in flight over {} mutual-TLS connections (RequestGrant: one per engineer), \
         {secs} s per workload. Latency in µs.\n",
        opts.connections
    );
    let _ = writeln!(
        out,
        "| workload | calls | calls/s | p50 | p99 | p99.9 | rate vs empty RPC | p99 vs empty RPC |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|");
    for (name, s) in [
        ("empty RPC (health check)", &empty),
        ("ValidateGrant", &validate),
        ("RecordAccess", &record),
        ("RequestGrant (auto, 2 entries)", &request),
    ] {
        let _ = writeln!(
            out,
            "| {name} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} |",
            s.calls,
            s.rate(),
            s.p50,
            s.p99,
            s.p999,
            ratio(s.rate(), empty.rate()),
            ratio(s.p99, empty.p99)
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "| baseline / offline | figure |");
    let _ = writeln!(out, "|---|---:|");
    let _ = writeln!(
        out,
        "| raw sled insert + flush, group commit, {c} in flight | {:.0} /s (p99 {:.0} µs) |",
        sled.rate(),
        sled.p99
    );
    let _ = writeln!(
        out,
        "| durable log writes (ValidateGrant) vs raw sled | {:.2} |",
        ratio(validate.rate(), sled.rate())
    );
    let _ = writeln!(out, "| Ed25519 sign (ring) | {sign_s:.0} /s |");
    let _ = writeln!(out, "| Ed25519 verify (ring) | {verify_s:.0} /s |");
    let _ = writeln!(
        out,
        "| export as auditor: {entries} entries, {mb:.1} MB | {:.0} entries/s, {:.1} MB/s |",
        entries as f64 / export_secs,
        mb / export_secs
    );
    let _ = writeln!(
        out,
        "| offline verify of that export | {:.0} entries/s, {:.1} MB/s |",
        entries as f64 / verify_secs,
        mb / verify_secs
    );
    let _ = writeln!(out, "| SHA-256 over the same bytes | {sha_mb_s:.1} MB/s |");
    let _ = writeln!(
        out,
        "| offline verify vs SHA-256 | {:.2} |",
        ratio(mb / verify_secs, sha_mb_s)
    );
    let _ = writeln!(out);
    let check = |ok: bool| if ok { "met" } else { "missed" };
    let _ = writeln!(out, "Targets (issue 6):\n");
    let _ = writeln!(
        out,
        "- ValidateGrant ≥ 50 % of the empty RPC rate: {:.0} % ({})",
        100.0 * ratio(validate.rate(), empty.rate()),
        check(validate.rate() >= 0.5 * empty.rate())
    );
    let _ = writeln!(
        out,
        "- ValidateGrant p99 ≤ 2× the empty RPC's: {:.2}× ({})",
        ratio(validate.p99, empty.p99),
        check(validate.p99 <= 2.0 * empty.p99)
    );
    let _ = writeln!(
        out,
        "- RequestGrant ≥ 30 % of the empty RPC rate: {:.0} % ({})",
        100.0 * ratio(request.rate(), empty.rate()),
        check(request.rate() >= 0.3 * empty.rate())
    );
    let _ = writeln!(
        out,
        "- offline verify ≥ 50 % of SHA-256: {:.0} % ({})",
        100.0 * ratio(mb / verify_secs, sha_mb_s),
        check(mb / verify_secs >= 0.5 * sha_mb_s)
    );
    let ran_out = exhausted.load(Ordering::Relaxed);
    if ran_out > 0 {
        let _ = writeln!(
            out,
            "\n({ran_out} RequestGrant tasks ran out of fresh tenants before the time was up.)"
        );
    }
    Ok(out)
}

/// Raw sled: `concurrency` writers each insert a 300-byte value, then wait
/// for a flush that covers it; flushes are shared exactly as the store's
/// group commit shares them (one at a time, under the same lock).
async fn raw_sled(
    concurrency: usize,
    seconds: f64,
    dir: &std::path::Path,
) -> Result<Stats, String> {
    struct Counters {
        committed: u64,
        flushed: u64,
    }
    let db = sled::Config::new()
        .path(dir.join("raw-sled"))
        .flush_every_ms(None)
        .open()
        .map_err(err)?;
    let tree = db.open_tree("t").map_err(err)?;
    let lock = Arc::new(tokio::sync::Mutex::new(Counters {
        committed: 0,
        flushed: 0,
    }));
    let key = Arc::new(AtomicU64::new(0));
    let value = Arc::new(vec![0x5au8; 300]);
    drive(concurrency, seconds, move |_, _| {
        let (db, tree, lock, key, value) = (
            db.clone(),
            tree.clone(),
            lock.clone(),
            key.clone(),
            value.clone(),
        );
        async move {
            let ticket = {
                let mut w = lock.lock().await;
                let k = key.fetch_add(1, Ordering::Relaxed);
                tree.insert(k.to_be_bytes(), value.as_slice())
                    .map_err(err)?;
                w.committed += 1;
                w.committed
            };
            let mut w = lock.lock().await;
            if w.flushed < ticket {
                let target = w.committed;
                db.flush_async().await.map_err(err)?;
                w.flushed = target;
            }
            Ok(true)
        }
    })
    .await
}

/// SHA-256 MB/s over `bytes`, Ed25519 signs/s and verifies/s.
fn crypto_baselines(bytes: &[u8]) -> (f64, f64, f64) {
    let t = Instant::now();
    let mut rounds = 0u32;
    let mut sink = 0u8;
    while t.elapsed() < Duration::from_millis(300) || rounds == 0 {
        sink ^= digest(&SHA256, bytes).as_ref()[0];
        rounds += 1;
    }
    let sha = bytes.len() as f64 * f64::from(rounds) / 1e6 / t.elapsed().as_secs_f64();
    std::hint::black_box(sink);

    let Ok(pair) = Ed25519KeyPair::from_seed_unchecked(&[9u8; 32]) else {
        return (sha, 0.0, 0.0);
    };
    let msg = b"bench.daypass/log\n123456\nq6jvKzQ9lM2lb7t1c0Ihq7XWxTYbJrvhOlJH6KxC3yI=\n";
    let n = 5000u32;
    let t = Instant::now();
    let mut sig = pair.sign(msg);
    for _ in 1..n {
        sig = pair.sign(std::hint::black_box(msg));
    }
    let sign = f64::from(n) / t.elapsed().as_secs_f64();
    let public = UnparsedPublicKey::new(&ED25519, pair.public_key().as_ref().to_vec());
    let t = Instant::now();
    let mut ok = 0u32;
    for _ in 0..n {
        ok += u32::from(public.verify(msg, sig.as_ref()).is_ok());
    }
    let verify = f64::from(n) / t.elapsed().as_secs_f64();
    std::hint::black_box(ok);
    (sha, sign, verify)
}

#[cfg(test)]
mod tests;
