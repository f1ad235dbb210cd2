//! The syslog forwarder end to end (docs/siem.md §4), against a real RFC
//! 5425 collector started here: a TLS listener on 127.0.0.1 with a
//! certificate from its own fresh PKI, asking daypass for a client
//! certificate, parsing octet-counted RFC 5424 frames. Checks PRI, MSGID,
//! structured data and log order; the OCSF format; no gap across a
//! restart (a resend only from the stored cursor on); and a collector that
//! is down at first being caught up once it listens, the backoff run on the
//! test clock.

mod common;

use std::{
    collections::BTreeMap, net::SocketAddr, os::unix::fs::PermissionsExt as _, path::PathBuf,
    sync::Arc, time::Duration,
};

use common::*;
use daypass::{
    audit::{SealedEntry, export},
    ledger::driver::Driver as _,
    pb::{ApprovalPolicy, Role},
    pki::{CertSpec, CertificateAuthority},
    siem::{
        Level,
        settings::{Facility, SyslogConfig, SyslogFormat},
    },
};
use parking_lot::Mutex;
use serde_json::Value;
use tempfile::TempDir;
use tokio::{io::AsyncReadExt as _, net::TcpListener};
use tokio_rustls::TlsAcceptor;

/// One RFC 5424 message as the collector parsed it.
#[derive(Clone, Debug)]
struct Frame {
    pri: u16,
    version: String,
    timestamp: String,
    hostname: String,
    app_name: String,
    procid: String,
    msgid: String,
    sd_id: String,
    sd: BTreeMap<String, String>,
    msg: String,
}

impl Frame {
    fn seq(&self) -> u64 {
        self.sd["seq"].parse().expect("seq is a number")
    }
    fn json(&self) -> Value {
        serde_json::from_str(&self.msg).expect("MSG is JSON")
    }
}

/// The collector's PKI, in a directory of its own: its CA (which daypass
/// is told to trust), its server certificate for 127.0.0.1, and the client
/// certificate and key (0600) it hands daypass.
struct Pki {
    dir: TempDir,
    ca: CertificateAuthority,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().expect("tmp");
        let ca = CertificateAuthority::generate("collector CA").expect("CA");
        std::fs::write(dir.path().join("ca.pem"), ca.cert_pem()).expect("write");
        let client = ca
            .issue(&CertSpec::client("spiffe://test.daypass/forwarder", 2))
            .expect("client cert");
        std::fs::write(dir.path().join("client.pem"), &client.cert_pem).expect("write");
        let key = dir.path().join("client.key");
        std::fs::write(&key, &client.key_pem).expect("write");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        Pki { dir, ca }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn acceptor(&self) -> TlsAcceptor {
        let cert = self
            .ca
            .issue(&CertSpec::server(&["127.0.0.1".into()], 2))
            .expect("server cert");
        // Mutual TLS: the collector asks for a certificate of its own CA.
        let config = daypass::tls::server_config(
            self.ca.cert_pem().as_bytes(),
            cert.cert_pem.as_bytes(),
            cert.key_pem.as_bytes(),
        )
        .expect("collector TLS");
        TlsAcceptor::from(config)
    }

    fn forwarder(&self, name: &str, addr: SocketAddr, format: SyslogFormat) -> SyslogConfig {
        SyslogConfig {
            name: name.into(),
            address: addr.to_string(),
            ca_file: self.path("ca.pem"),
            client_cert: Some(self.path("client.pem")),
            client_key: Some(self.path("client.key")),
            app_name: "daypass".into(),
            hostname: Some("broker-test".into()),
            facility: Facility::parse("local3").expect("facility"),
            format,
            backoff_initial_ms: 1000,
            backoff_max_ms: 4000,
        }
    }
}

/// A syslog-over-TLS receiver that records every frame of every
/// connection.
#[derive(Clone)]
struct Collector {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<Frame>>>,
    connections: Arc<Mutex<usize>>,
}

impl Collector {
    async fn start(pki: &Pki) -> Collector {
        Collector::on(TcpListener::bind("127.0.0.1:0").await.expect("bind"), pki)
    }

    fn on(listener: TcpListener, pki: &Pki) -> Collector {
        let c = Collector {
            addr: listener.local_addr().expect("addr"),
            got: Arc::default(),
            connections: Arc::default(),
        };
        let (me, acceptor) = (c.clone(), pki.acceptor());
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (me, acceptor) = (me.clone(), acceptor.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    *me.connections.lock() += 1;
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    while let Ok(n) = tls.read(&mut chunk).await {
                        if n == 0 {
                            break;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        for f in take_frames(&mut buf) {
                            me.got.lock().push(f);
                        }
                    }
                });
            }
        });
        c
    }

    fn frames(&self) -> Vec<Frame> {
        self.got.lock().clone()
    }

    fn seqs(&self) -> Vec<u64> {
        self.frames().iter().map(Frame::seq).collect()
    }

    /// Waits (wall time, at most `secs`) until a frame of `seq` or later
    /// arrived, calling `nudge` between looks.
    async fn wait_for_seq(&self, seq: u64, secs: u64, nudge: impl Fn()) {
        let waited = tokio::time::timeout(Duration::from_secs(secs), async {
            while !self.seqs().iter().any(|s| *s >= seq) {
                nudge();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(
            waited.is_ok(),
            "seq {seq} within {secs} s; got {:?}",
            self.seqs()
        );
    }
}

/// Takes every complete octet-counted frame (`LEN SP MSG`) off the front
/// of `buf`.
fn take_frames(buf: &mut Vec<u8>) -> Vec<Frame> {
    let mut out = Vec::new();
    while let Some(sp) = buf.iter().position(|b| *b == b' ') {
        let len: usize = std::str::from_utf8(&buf[..sp])
            .expect("MSG-LEN is ASCII")
            .parse()
            .expect("MSG-LEN is a number");
        if buf.len() < sp + 1 + len {
            break;
        }
        let msg = String::from_utf8(buf[sp + 1..sp + 1 + len].to_vec()).expect("UTF-8");
        buf.drain(..sp + 1 + len);
        out.push(parse_5424(&msg));
    }
    out
}

/// `<PRI>VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP
/// SD SP MSG`, with one SD element whose values may hold `\"`, `\\`, `\]`.
fn parse_5424(m: &str) -> Frame {
    let rest = m.strip_prefix('<').expect("<PRI>");
    let (pri, rest) = rest.split_once('>').expect(">");
    let mut parts = rest.splitn(7, ' ');
    let mut next = || parts.next().expect("header field").to_owned();
    let (version, timestamp, hostname, app_name, procid, msgid) =
        (next(), next(), next(), next(), next(), next());
    let sd_and_msg = next();
    let body = sd_and_msg.strip_prefix('[').expect("one SD element");
    let (sd_id, mut params) = body.split_once(' ').expect("SD-ID and params");
    let mut sd = BTreeMap::new();
    loop {
        let (name, after) = params.split_once("=\"").expect("name=\"");
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next().expect("closing quote") {
                (_, '\\') => value.push(chars.next().expect("escaped").1),
                (i, '"') => break i,
                (_, c) => value.push(c),
            }
        };
        sd.insert(name.to_owned(), value);
        let after = &after[end + 1..];
        if let Some(more) = after.strip_prefix(' ') {
            params = more;
        } else {
            let msg = after.strip_prefix("] ").expect("] MSG");
            return Frame {
                pri: pri.parse().expect("PRI"),
                version,
                timestamp,
                hostname,
                app_name,
                procid,
                msgid,
                sd_id: sd_id.to_owned(),
                sd,
                msg: msg.to_owned(),
            };
        }
    }
}

/// Checks a frame against the log entry it is about.
fn check_frame(f: &Frame, e: &SealedEntry) {
    let entry = &e.entry;
    assert_eq!(
        f.pri,
        19 * 8 + u16::from(Level::of(entry).syslog_severity()),
        "PRI of {f:?}"
    );
    assert_eq!(f.version, "1");
    assert_eq!(f.timestamp, entry.timestamp.to_rfc3339());
    assert_eq!(
        (f.hostname.as_str(), f.app_name.as_str()),
        ("broker-test", "daypass")
    );
    assert_eq!(f.procid, "-");
    assert_eq!(f.msgid, entry.kind);
    assert_eq!(f.sd_id, "daypass@32473");
    assert_eq!(f.sd["tenant"], entry.tenant);
    assert_eq!(f.sd["actor"], entry.actor);
    assert_eq!(f.sd.get("grant"), entry.details.get("grant"));
}

/// A story with grants, a validation, a refusal and reads of the log.
async fn story(s: &TestServer, tenant: &str) {
    let mut acme = s.add_tenant(tenant, ApprovalPolicy::Auto, false).await;
    let mut bob = s.enrol(&format!("bob-{tenant}"), Role::Support).await;
    let g = request(&mut bob, tenant, "INC-7 \"disk\" [full]").await;
    assert!(validate(&mut acme, &g.id).await.allowed);
    let _ = validate(&mut acme, "g-000000000000000000000000").await;
    revoke(&mut s.admin().await, &g.id, "done").await;
}

fn stored_cursor(s: &TestServer, name: &str) -> u64 {
    let state = s
        .open_driver()
        .notifier_state(&format!("syslog:{name}"))
        .expect("read state")
        .expect("the forwarder stored its cursor");
    serde_json::from_slice::<Value>(&state).expect("JSON")["cursor"]
        .as_u64()
        .expect("cursor")
}

/// The server's `/metrics` text (plain HTTP/1.1, one request).
async fn metrics(s: &TestServer) -> String {
    use tokio::io::AsyncWriteExt as _;
    let mut tcp = tokio::net::TcpStream::connect(s.metrics_addr.expect("metrics listener"))
        .await
        .expect("connect");
    tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut body = String::new();
    tcp.read_to_string(&mut body).await.expect("read");
    body
}

fn first_of(entries: &[SealedEntry], kind: &str) -> u64 {
    entries
        .iter()
        .find(|e| e.entry.kind == kind)
        .map(|e| e.entry.seq)
        .unwrap_or_else(|| panic!("no {kind}"))
}

fn no_gap(seqs: &[u64]) {
    let first = *seqs.first().expect("frames");
    let mut seen: Vec<u64> = seqs.to_vec();
    seen.sort_unstable();
    seen.dedup();
    let last = *seen.last().expect("frames");
    assert_eq!(seen, (first..=last).collect::<Vec<_>>(), "no gap: {seqs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_arrive_as_rfc5424_frames_in_log_order() {
    let pki = Pki::new();
    let json = Collector::start(&pki).await;
    let ocsf = Collector::start(&pki).await;
    let s = TestServer::start_with(|c| {
        c.syslog
            .push(pki.forwarder("siem", json.addr, SyslogFormat::Json));
        c.syslog
            .push(pki.forwarder("ocsf", ocsf.addr, SyslogFormat::Ocsf));
    })
    .await;
    story(&s, "acme").await;
    let entries = s.entries().await;
    let head = entries.last().expect("entries").entry.seq;
    json.wait_for_seq(head, 20, || {}).await;
    ocsf.wait_for_seq(head, 20, || {}).await;

    let frames = json.frames();
    let seqs = json.seqs();
    let first = seqs[0];
    assert!(
        first <= first_of(&entries, "tenant.added"),
        "a new forwarder starts at the head it found at start-up: {seqs:?}"
    );
    assert_eq!(
        seqs[..=(head - first) as usize],
        (first..=head).collect::<Vec<_>>(),
        "every entry once, in log order"
    );
    for f in &frames[..=(head - first) as usize] {
        let e = &entries[f.seq() as usize];
        check_frame(f, e);
        assert_eq!(f.json(), export::to_json(e), "MSG is the export's line");
    }
    let kinds: Vec<&str> = frames.iter().map(|f| f.msgid.as_str()).collect();
    for k in [
        "grant.activated",
        "validation.allowed",
        "validation.denied",
        "grant.revoked",
    ] {
        assert!(kinds.contains(&k), "{k} forwarded: {kinds:?}");
    }
    assert_eq!(*json.connections.lock(), 1, "one connection for everything");

    let activated = ocsf
        .frames()
        .into_iter()
        .find(|f| f.msgid == "grant.activated")
        .expect("the activation in OCSF");
    let v = activated.json();
    assert_eq!(v["class_uid"], 3005);
    assert_eq!(v["type_uid"], 300501);
    assert_eq!(v["metadata"]["sequence"], activated.seq());
    assert_eq!(v["user"]["name"], "bob-acme");
    assert_eq!(v["privileges"][0], "tenant:acme");
    assert_eq!(
        v["time"],
        entries[activated.seq() as usize].entry.timestamp.millis()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_resends_nothing_below_the_stored_cursor() {
    let pki = Pki::new();
    let c = Collector::start(&pki).await;
    let mut s = TestServer::start_with(|cfg| {
        cfg.syslog
            .push(pki.forwarder("siem", c.addr, SyslogFormat::Json));
    })
    .await;
    story(&s, "acme").await;
    let head = s.entries().await.last().expect("entries").entry.seq;
    c.wait_for_seq(head, 20, || {}).await;
    s.stop().await;
    let cursor = stored_cursor(&s, "siem");
    let before = c.seqs().len();
    assert!(cursor > head, "the cursor is past what was flushed");

    s.start_again().await;
    story(&s, "globex").await;
    let entries = s.entries().await;
    let head = entries.last().expect("entries").entry.seq;
    c.wait_for_seq(head, 20, || {}).await;
    let seqs = c.seqs();
    no_gap(&seqs);
    // After the restart the forwarder goes on from its stored cursor: the
    // stop's own entry first, nothing below it again.
    assert_eq!(
        seqs[before], cursor,
        "resumed at the stored cursor: {seqs:?}"
    );
    let mut once = std::collections::BTreeSet::new();
    for q in &seqs {
        assert!(
            once.insert(*q) || *q >= cursor,
            "only the unflushed tail repeats: {seqs:?}"
        );
    }
    for f in c.frames() {
        check_frame(&f, &entries[f.seq() as usize]);
    }
    assert_eq!(entries[cursor as usize].entry.kind, "server.stopped");
    assert_eq!(*c.connections.lock(), 2, "one connection per run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_down_at_first_is_caught_up_once_it_listens() {
    let pki = Pki::new();
    // A port nobody listens on yet.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind")
        .local_addr()
        .expect("addr");
    let s = TestServer::start_with(|cfg| {
        cfg.syslog
            .push(pki.forwarder("siem", addr, SyslogFormat::Json));
    })
    .await;
    story(&s, "acme").await;
    let head = s.entries().await.last().expect("entries").entry.seq;
    // The forwarder fails and backs off; nothing moves the test clock yet.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let c = Collector::on(TcpListener::bind(addr).await.expect("the port again"), &pki);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        c.seqs().is_empty(),
        "still backing off: the test clock has not moved"
    );
    // It connects again only once the clock passes its backoff (capped at
    // backoff_max_ms = 4 s).
    c.wait_for_seq(head, 20, || s.clock.advance_millis(500))
        .await;
    // The failures and the caught-up backlog are on /metrics.
    let waited = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let m = metrics(&s).await;
            let value = |name: &str| {
                m.lines()
                    .find_map(|l| l.strip_prefix(&format!("{name}{{forwarder=\"siem\"}} ")))
                    .and_then(|v| v.trim().parse::<f64>().ok())
            };
            let (failures, backlog, sent) = (
                value("daypass_syslog_failures_total"),
                value("daypass_syslog_backlog"),
                value("daypass_syslog_sent_total"),
            );
            if failures.is_some_and(|f| f >= 1.0)
                && backlog == Some(0.0)
                && sent.is_some_and(|n| n >= c.seqs().len() as f64)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "metrics: {}", metrics(&s).await);
    let seqs = c.seqs();
    no_gap(&seqs);
    let entries = s.entries().await;
    assert!(
        seqs[0] <= first_of(&entries, "tenant.added"),
        "from where it started, nothing skipped: {seqs:?}"
    );
    for f in c.frames() {
        check_frame(&f, &entries[f.seq() as usize]);
    }
}

/// Settings that cannot work are refused at start-up, by name, and
/// `serve --check-config` says the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_forwarder_settings_are_refused_with_what_to_fix() {
    let pki = Pki::new();
    let addr: SocketAddr = "127.0.0.1:6514".parse().expect("addr");
    let mut bad = pki.forwarder("siem", addr, SyslogFormat::Json);
    bad.address = "siem.example".into();
    let s = TestServer::start().await;
    let mut cfg = s.config.clone();
    cfg.syslog = vec![bad];
    let err = cfg.check().expect_err("no port").to_string();
    assert!(
        err.contains("syslog \"siem\": address \"siem.example\" must be host:port"),
        "{err}"
    );

    let mut missing = pki.forwarder("siem", addr, SyslogFormat::Json);
    missing.ca_file = pki.path("nope.pem");
    cfg.syslog = vec![missing];
    let err = daypass::server::check_config(&cfg)
        .expect_err("no CA")
        .to_string();
    assert!(
        err.contains("syslog \"siem\": ca_file") && err.contains("nope.pem"),
        "{err}"
    );

    let open = pki.forwarder("siem", addr, SyslogFormat::Json);
    std::fs::set_permissions(
        pki.path("client.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .expect("chmod");
    cfg.syslog = vec![open];
    let err = daypass::server::check_config(&cfg)
        .expect_err("open key")
        .to_string();
    assert!(
        err.contains("client_key") && err.contains("chmod 600"),
        "{err}"
    );
    assert!(!err.contains("PRIVATE KEY"), "never the key: {err}");
}
