//! The syslog forwarder end to end (docs/siem.md §4), against a real RFC
//! 5425 collector started here: a TLS listener on 127.0.0.1 with a
//! certificate from its own fresh PKI, asking daypass for a client
//! certificate, parsing octet-counted RFC 5424 frames. Checks PRI, MSGID,
//! structured data and log order; the OCSF format; no gap across a
//! restart and a SIGKILL of a real `daypass serve` (a resend only from the
//! stored cursor on); the metrics; and a collector that
//! is down at first being caught up once it listens, the backoff run on the
//! test clock.

mod common;

use std::{net::SocketAddr, os::unix::fs::PermissionsExt as _, time::Duration};

use common::{syslog::*, *};
use daypass::{
    audit::{SealedEntry, export},
    ledger::driver::Driver as _,
    pb::{ApprovalPolicy, Role},
    pki::{CertSpec, CertificateAuthority},
    siem::settings::SyslogFormat,
};
use serde_json::Value;
use tokio::{io::AsyncReadExt as _, net::TcpListener};

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

// ------------------------------------------------------------ SIGKILL ---

const TRUST: &str = "siem.daypass";

/// A `daypass serve` child; killed (SIGKILL) when dropped.
struct Serving(std::process::Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a real `daypass serve --config` in `dir`, forwarding to
/// `collector`, and waits until it admits a call.
// Waiting for a real process: wall time.
#[allow(clippy::disallowed_methods)]
async fn serve(
    dir: &std::path::Path,
    pki: &Pki,
    collector: SocketAddr,
    admin: &daypass::client::ClientIdentity,
    n: u32,
) -> (Serving, daypass::client::Clients) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let p = |f: &std::path::Path| format!("{:?}", f.display().to_string());
    let config = dir.join("daypass.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndata_dir = {}\ntrust_domain = \"{TRUST}\"\n\
             bootstrap_admin = \"admin\"\n\n[tls]\nca = {}\ncert = {}\nkey = {}\n\n\
             [metrics]\nenabled = false\n\n\
             [[syslog]]\nname = \"siem\"\naddress = \"{collector}\"\nca_file = {}\n\
             client_cert = {}\nclient_key = {}\nhostname = \"broker-test\"\n\
             facility = \"local3\"\nbackoff_initial_ms = 50\nbackoff_max_ms = 200\n",
            p(&dir.join("data")),
            p(&dir.join("ca.pem")),
            p(&dir.join("server.pem")),
            p(&dir.join("server.key")),
            p(&pki.path("ca.pem")),
            p(&pki.path("client.pem")),
            p(&pki.path("client.key")),
        ),
    )
    .expect("config");
    let log_path = dir.join(format!("server-{n}.log"));
    let log = std::fs::File::create(&log_path).expect("log");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_daypass"))
        .args(["serve", "--config"])
        .arg(&config)
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("spawn daypass serve");
    let serving = Serving(child);
    let url = format!("https://127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(mut c) = daypass::client::connect(&url, admin).await {
            if c.staff
                .who_am_i(daypass::pb::WhoAmIRequest {})
                .await
                .is_ok()
            {
                return (serving, c);
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "start {n}: the server did not come up:\n{}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn enrol_some(c: &mut daypass::client::Clients, names: &[&str]) {
    for who in names {
        c.staff
            .add_staff(daypass::pb::AddStaffRequest {
                name: (*who).into(),
                role: Role::Support as i32,
                country: String::new(),
                organisation: String::new(),
            })
            .await
            .expect("add staff");
    }
}

fn stored_log(dir: &std::path::Path) -> (Vec<SealedEntry>, Option<u64>) {
    let driver =
        daypass::ledger::driver::sled::SledDriver::open(&dir.join("data"), 8 << 20).expect("open");
    let log = driver
        .entries_from(0)
        .collect::<Result<Vec<_>, _>>()
        .expect("read log");
    let cursor = driver
        .notifier_state("syslog:siem")
        .expect("state")
        .map(|b| {
            serde_json::from_slice::<Value>(&b).expect("JSON")["cursor"]
                .as_u64()
                .expect("cursor")
        });
    (log, cursor)
}

/// A SIGKILL of a real server loses nothing: after the restart the
/// forwarder resends from its stored cursor, so every entry reaches the
/// collector, and only entries at or past that cursor arrive twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_lost_across_a_sigkill() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let ca = CertificateAuthority::generate("daypass CA").expect("CA");
    let server_cert = ca
        .issue(&CertSpec::server(&["127.0.0.1".into()], 2))
        .expect("server cert");
    std::fs::write(d.join("ca.pem"), ca.cert_pem()).expect("write");
    std::fs::write(d.join("server.pem"), &server_cert.cert_pem).expect("write");
    daypass::pki::write_secret(&d.join("server.key"), &server_cert.key_pem).expect("write");
    daypass::pki::create_log_key(d, &daypass::pki::default_log_origin(TRUST), false)
        .expect("log key");
    daypass::pki::create_gate_keys(d, false).expect("gate keys");
    let issued = ca
        .issue_client(
            daypass::identity::PrincipalKind::Staff,
            &daypass::identity::Name::parse("admin").expect("name"),
            TRUST,
            2,
        )
        .expect("admin cert");
    let admin = daypass::client::ClientIdentity {
        ca_pem: ca.cert_pem().as_bytes().to_vec(),
        cert_pem: issued.cert_pem.into_bytes(),
        key_pem: issued.key_pem.into_bytes(),
    };
    let pki = Pki::new();
    let c = Collector::start(&pki).await;

    let (server, mut admin_c) = serve(d, &pki, c.addr, &admin, 1).await;
    enrol_some(&mut admin_c, &["e1", "e2", "e3"]).await;
    c.wait_for_seq(3, 20, || {}).await;
    // More entries, and the kill right behind them: some may still be on
    // their way.
    enrol_some(&mut admin_c, &["e4", "e5", "e6", "e7", "e8"]).await;
    drop(admin_c);
    drop(server);
    let (logged, cursor) = stored_log(d);
    let cursor = cursor.expect("the forwarder stored its cursor");

    let (_server, mut admin_c) = serve(d, &pki, c.addr, &admin, 2).await;
    enrol_some(&mut admin_c, &["e9"]).await;
    let arrived = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let e9 = c
                .frames()
                .iter()
                .any(|f| f.msgid == "staff.enrolled" && f.json()["details"]["name"] == "e9");
            if e9 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        arrived.is_ok(),
        "the restarted server forwards: {:?}",
        c.seqs()
    );
    let enrolled = c.seqs();
    no_gap(&enrolled);
    let last_logged = logged.last().expect("entries").entry.seq;
    assert!(
        enrolled.contains(&last_logged),
        "every entry of the killed run arrived: {enrolled:?}"
    );
    let mut once = std::collections::BTreeSet::new();
    for q in &enrolled {
        assert!(
            once.insert(*q) || *q >= cursor,
            "only entries at or past the stored cursor {cursor} repeat: {enrolled:?}"
        );
    }
    for f in c.frames() {
        if let Some(e) = logged.get(f.seq() as usize) {
            check_frame(&f, e);
            assert_eq!(f.json(), export::to_json(e));
        }
    }
}
