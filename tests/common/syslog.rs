//! The syslog tests' collector (tests/syslog.rs): an RFC 5425 receiver
//! on 127.0.0.1 (TLS with a certificate from its own fresh PKI, asking for
//! a client certificate), the RFC 5424 parser it runs on every
//! octet-counted frame, and the checks of a frame against its entry.

use std::{
    collections::BTreeMap, net::SocketAddr, os::unix::fs::PermissionsExt as _, path::PathBuf,
    sync::Arc, time::Duration,
};

use daypass::{
    audit::SealedEntry,
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
pub struct Frame {
    pub pri: u16,
    pub version: String,
    pub timestamp: String,
    pub hostname: String,
    pub app_name: String,
    pub procid: String,
    pub msgid: String,
    pub sd_id: String,
    pub sd: BTreeMap<String, String>,
    pub msg: String,
}

impl Frame {
    pub fn seq(&self) -> u64 {
        self.sd["seq"].parse().expect("seq is a number")
    }
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.msg).expect("MSG is JSON")
    }
}

/// The collector's PKI, in a directory of its own: its CA (which daypass
/// is told to trust), its server certificate for 127.0.0.1, and the client
/// certificate and key (0600) it hands daypass.
pub struct Pki {
    pub dir: TempDir,
    pub ca: CertificateAuthority,
}

impl Pki {
    pub fn new() -> Pki {
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

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn acceptor(&self) -> TlsAcceptor {
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

    pub fn forwarder(&self, name: &str, addr: SocketAddr, format: SyslogFormat) -> SyslogConfig {
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
pub struct Collector {
    pub addr: SocketAddr,
    pub got: Arc<Mutex<Vec<Frame>>>,
    pub connections: Arc<Mutex<usize>>,
}

impl Collector {
    pub async fn start(pki: &Pki) -> Collector {
        Collector::on(TcpListener::bind("127.0.0.1:0").await.expect("bind"), pki)
    }

    pub fn on(listener: TcpListener, pki: &Pki) -> Collector {
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

    pub fn frames(&self) -> Vec<Frame> {
        self.got.lock().clone()
    }

    pub fn seqs(&self) -> Vec<u64> {
        self.frames().iter().map(Frame::seq).collect()
    }

    /// Waits (wall time, at most `secs`) until a frame of `seq` or later
    /// arrived, calling `nudge` between looks.
    pub async fn wait_for_seq(&self, seq: u64, secs: u64, nudge: impl Fn()) {
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
pub fn take_frames(buf: &mut Vec<u8>) -> Vec<Frame> {
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
pub fn parse_5424(m: &str) -> Frame {
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
pub fn check_frame(f: &Frame, e: &SealedEntry) {
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

pub fn no_gap(seqs: &[u64]) {
    let first = *seqs.first().expect("frames");
    let mut seen: Vec<u64> = seqs.to_vec();
    seen.sort_unstable();
    seen.dedup();
    let last = *seen.last().expect("frames");
    assert_eq!(seen, (first..=last).collect::<Vec<_>>(), "no gap: {seqs:?}");
}
