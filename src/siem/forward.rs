//! The syslog forwarder: every durable log entry, in log order, to a
//! collector over TLS (RFC 5425), **at least once**, from a cursor kept in
//! the store.
//!
//! It works as the webhooks do (`crate::notify`, whose module doc explains
//! why the log is the outbox): one task per `[[syslog]]` section
//! ([`Forwarder::start`]) follows the *durable* log ([`Ledger::subscribe`],
//! [`Ledger::entries_from`]) from the cursor stored under `syslog:<name>`
//! ([`Ledger::notifier_state`]; webhook names hold no `:`, so the two never
//! meet). A forwarder seen for the first time starts at the durable head:
//! history is for `audit export --format ocsf|csv`.
//!
//! Syslog over TCP has no application acknowledgement, so **sent means
//! written and flushed to the TLS stream**: the task writes a batch of
//! frames (at most [`PAGE`] entries), flushes, and only then moves the
//! cursor and stores it. A connection that fails (connect, handshake,
//! write, flush, or the collector closing it while idle) is dropped, and
//! after a backoff on the injected clock (`backoff_initial_ms`, doubled
//! per failure, capped at `backoff_max_ms`) the task connects again and
//! resends from the stored cursor. A crash or a broken connection
//! therefore resends at most the batch that was not yet flushed (plus
//! whatever the collector had received but not processed, which TCP
//! cannot tell); receivers drop duplicates by the `seq` in the structured
//! data. Nothing is ever skipped.
//!
//! Not here: the message format ([`super::syslog`], [`super::ocsf`]) and
//! the settings ([`super::settings`]).

use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
    sync::watch,
    task::JoinHandle,
};
use tokio_rustls::{
    TlsConnector,
    client::TlsStream,
    rustls::{
        ClientConfig, RootCertStore,
        pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject as _},
    },
};

use super::{
    settings::{SyslogConfig, SyslogFormat, split_address},
    syslog::{self, Header},
};
use crate::{
    audit::SealedEntry,
    clock::{SharedClock, Timestamp},
    ledger::{Ledger, LedgerError},
};

/// Entries read from the store, framed and flushed at a time.
pub const PAGE: usize = 256;
/// A connection (TCP and TLS) or a batch's write and flush not done by then
/// has failed.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Error)]
pub enum SyslogError {
    #[error("syslog {name:?}: {what} {path}: {message}")]
    File {
        name: String,
        what: &'static str,
        path: std::path::PathBuf,
        message: String,
    },
    #[error("syslog {name:?}: {message}")]
    Setup { name: String, message: String },
    #[error("syslog state: {0}")]
    Store(#[from] LedgerError),
}

/// What the store keeps per forwarder (JSON under `syslog:<name>`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwarderState {
    /// The next seq to send: every entry below it was flushed to the
    /// collector.
    pub cursor: u64,
}

/// One forwarder's counters ([`Forwarder::stats`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForwarderStats {
    pub name: String,
    pub cursor: u64,
    /// Durable entries not yet flushed: the durable head − the cursor.
    pub depth: u64,
    /// Entries flushed (a resent one counts again).
    pub sent: u64,
    /// Failed connections, writes and flushes.
    pub failures: u64,
}

/// The forwarding tasks' shared part: one [`Sink`] per `[[syslog]]`.
pub struct Forwarder {
    ledger: Arc<Ledger>,
    clock: SharedClock,
    sinks: Vec<Arc<Sink>>,
}

struct Sink {
    config: SyslogConfig,
    host: String,
    port: u16,
    server_name: ServerName<'static>,
    tls: TlsConnector,
    header: Header,
    cursor: AtomicU64,
    sent: AtomicU64,
    failures: AtomicU64,
}

/// Reads every forwarder's CA file and client key pair, as
/// [`Forwarder::new`] will: for the server (and `serve --check-config`) to
/// refuse a bad section before it opens or logs anything.
pub fn check(configs: &[SyslogConfig]) -> Result<(), SyslogError> {
    for c in configs {
        Sink::new(c)?;
    }
    Ok(())
}

impl Forwarder {
    /// Loads every forwarder's TLS material. Nothing runs until
    /// [`Forwarder::start`].
    pub fn new(
        configs: &[SyslogConfig],
        ledger: Arc<Ledger>,
        clock: SharedClock,
    ) -> Result<Forwarder, SyslogError> {
        let sinks = configs
            .iter()
            .map(|c| Sink::new(c).map(Arc::new))
            .collect::<Result<_, _>>()?;
        Ok(Forwarder {
            ledger,
            clock,
            sinks,
        })
    }

    /// Reads (or, for a forwarder seen for the first time, stores at the
    /// durable head) each forwarder's cursor, then spawns one task per
    /// forwarder. The tasks end once `stop` turns true (or its sender is
    /// dropped).
    pub async fn start(
        self: &Arc<Self>,
        stop: watch::Receiver<bool>,
    ) -> Result<Vec<JoinHandle<()>>, SyslogError> {
        let mut tasks = Vec::new();
        for sink in &self.sinks {
            let state = match load(&self.ledger, &sink.config.name).await? {
                Some(s) => s,
                None => {
                    let s = ForwarderState {
                        cursor: *self.ledger.subscribe().borrow(),
                    };
                    store(&self.ledger, &sink.config.name, &s).await?;
                    s
                }
            };
            sink.cursor.store(state.cursor, Ordering::Relaxed);
            let (me, sink, stop) = (self.clone(), sink.clone(), stop.clone());
            tasks.push(tokio::spawn(
                async move { me.run(&sink, state, stop).await },
            ));
        }
        Ok(tasks)
    }

    /// Per forwarder: cursor, backlog and counts (for metrics).
    pub fn stats(&self) -> Vec<ForwarderStats> {
        let head = *self.ledger.subscribe().borrow();
        self.sinks
            .iter()
            .map(|s| {
                let cursor = s.cursor.load(Ordering::Relaxed);
                ForwarderStats {
                    name: s.config.name.clone(),
                    cursor,
                    depth: head.saturating_sub(cursor),
                    sent: s.sent.load(Ordering::Relaxed),
                    failures: s.failures.load(Ordering::Relaxed),
                }
            })
            .collect()
    }

    /// One forwarder's loop: connect, send from the cursor up to the
    /// durable head batch by batch, wait for the head to move; on any
    /// failure drop the connection, back off, and start again from the
    /// stored cursor.
    async fn run(&self, sink: &Sink, mut state: ForwarderState, mut stop: watch::Receiver<bool>) {
        let mut head = self.ledger.subscribe();
        let mut backoff = sink.config.backoff_initial_ms;
        loop {
            if *stop.borrow() {
                return;
            }
            let failure = match sink.connect().await {
                Ok(mut conn) => {
                    tracing::info!(syslog = %sink.config.name, address = %sink.config.address, "syslog connected");
                    match self
                        .follow(
                            sink,
                            &mut conn,
                            &mut state,
                            &mut head,
                            &mut stop,
                            &mut backoff,
                        )
                        .await
                    {
                        Ok(()) => return, // stopped
                        Err(Failure::Store(e)) => {
                            // The store failed (a full disk, say): the
                            // stored cursor is the one to resume from.
                            tracing::warn!(syslog = %sink.config.name, error = %e, "syslog forwarding paused");
                            if let Ok(Some(s)) = load(&self.ledger, &sink.config.name).await {
                                state = s;
                            }
                            format!("the store: {e}")
                        }
                        Err(Failure::Io(m)) => m,
                    }
                }
                Err(m) => m,
            };
            sink.failures.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(syslog = %sink.config.name, error = %failure, retry_in_ms = backoff, "syslog connection failed");
            let wake = self
                .clock
                .now()
                .millis()
                .saturating_add(i64::try_from(backoff).unwrap_or(i64::MAX));
            tokio::select! {
                () = self.clock.sleep_until(Timestamp(wake)) => {}
                r = stop.changed() => if r.is_err() { return },
            }
            backoff = backoff.saturating_mul(2).min(sink.config.backoff_max_ms);
        }
    }

    /// Sends on one connection until it fails (`Err`) or the task is
    /// stopped (`Ok`).
    async fn follow(
        &self,
        sink: &Sink,
        conn: &mut TlsStream<TcpStream>,
        state: &mut ForwarderState,
        head: &mut watch::Receiver<u64>,
        stop: &mut watch::Receiver<bool>,
        backoff: &mut u64,
    ) -> Result<(), Failure> {
        loop {
            if *stop.borrow() {
                return Ok(());
            }
            let durable = *head.borrow_and_update();
            let page = match state.cursor < durable {
                true => self.page(state.cursor, durable).await?,
                false => Vec::new(),
            };
            // Nothing to send (or, oddly, nothing stored yet below the
            // durable head): wait for the head to move.
            if page.is_empty() {
                // Idle: also watch the connection, so that a collector
                // that went away is noticed before the next write.
                let mut scratch = [0u8; 512];
                tokio::select! {
                    r = head.changed() => if r.is_err() { return Ok(()) },
                    r = stop.changed() => if r.is_err() { return Ok(()) },
                    r = conn.read(&mut scratch) => match r {
                        Ok(0) => return Err(Failure::Io("the collector closed the connection".into())),
                        Ok(_) => {} // collectors send nothing; ignore it
                        Err(e) => return Err(Failure::Io(format!("reading: {e}"))),
                    },
                }
                continue;
            }
            let last = page.last().map_or(state.cursor, |e| e.entry.seq);
            let mut batch = Vec::new();
            for e in &page {
                batch.extend(syslog::frame(&sink.message(e)));
            }
            let written = tokio::time::timeout(IO_TIMEOUT, async {
                conn.write_all(&batch).await?;
                conn.flush().await
            });
            tokio::select! {
                r = written => match r {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return Err(Failure::Io(format!("writing: {e}"))),
                    Err(_) => return Err(Failure::Io(format!("writing took over {} s", IO_TIMEOUT.as_secs()))),
                },
                // Not flushed: the batch is sent again after the restart.
                _ = stop.changed() => return Ok(()),
            }
            state.cursor = last + 1;
            sink.cursor.store(state.cursor, Ordering::Relaxed);
            sink.sent.fetch_add(page.len() as u64, Ordering::Relaxed);
            *backoff = sink.config.backoff_initial_ms;
            store(&self.ledger, &sink.config.name, state)
                .await
                .map_err(Failure::Store)?;
        }
    }

    /// Durable entries `[from, durable)`, at most [`PAGE`].
    async fn page(&self, from: u64, durable: u64) -> Result<Vec<SealedEntry>, Failure> {
        let ledger = self.ledger.clone();
        tokio::task::spawn_blocking(move || {
            ledger
                .entries_from(from)
                .take_while(|e| e.as_ref().map_or(true, |e| e.entry.seq < durable))
                .take(PAGE)
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(|e| {
            Failure::Store(LedgerError::Unavailable(format!(
                "reading the log stopped: {e}"
            )))
        })?
        .map_err(Failure::Store)
    }
}

enum Failure {
    Io(String),
    Store(LedgerError),
}

impl Sink {
    fn new(c: &SyslogConfig) -> Result<Sink, SyslogError> {
        let setup = |message: String| SyslogError::Setup {
            name: c.name.clone(),
            message,
        };
        let (host, port) = split_address(&c.address).map_err(setup)?;
        let server_name = ServerName::try_from(host.clone())
            .map_err(|e| setup(format!("{host} is not a TLS server name: {e}")))?;
        let ca = read(c, "ca_file", &c.ca_file)?;
        let ca_err = |m: String| file_error(c, "ca_file", &c.ca_file, m);
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&ca) {
            let cert = cert.map_err(|e| ca_err(format!("not PEM: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| ca_err(format!("not a usable CA certificate: {e}")))?;
        }
        if roots.is_empty() {
            return Err(ca_err("holds no PEM certificate".into()));
        }
        let builder = ClientConfig::builder_with_provider(Arc::new(
            tokio_rustls::rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| setup(format!("TLS setup: {e}")))?
        .with_root_certificates(roots);
        let config = match (&c.client_cert, &c.client_key) {
            (Some(cert_path), Some(key_path)) => {
                let pem = read(c, "client_cert", cert_path)?;
                let cert_err = |m: String| file_error(c, "client_cert", cert_path, m);
                let chain = CertificateDer::pem_slice_iter(&pem)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| cert_err(format!("not PEM: {e}")))?;
                if chain.is_empty() {
                    return Err(cert_err("holds no PEM certificate".into()));
                }
                private_file(c, key_path)?;
                let pem = read(c, "client_key", key_path)?;
                let key_err = |m: String| file_error(c, "client_key", key_path, m);
                // Never the key's bytes in a message: only what is wrong.
                let key = PrivateKeyDer::from_pem_slice(&pem)
                    .map_err(|_| key_err("holds no PEM private key".into()))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| setup(format!("client_cert and client_key do not match: {e}")))?
            }
            _ => builder.with_no_client_auth(),
        };
        let hostname = c.hostname.clone().unwrap_or_else(local_hostname);
        Ok(Sink {
            header: Header {
                facility: c.facility.code(),
                hostname,
                app_name: c.app_name.clone(),
            },
            config: c.clone(),
            host,
            port,
            server_name,
            tls: TlsConnector::from(Arc::new(config)),
            cursor: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        })
    }

    async fn connect(&self) -> Result<TlsStream<TcpStream>, String> {
        let address = &self.config.address;
        let connected = tokio::time::timeout(IO_TIMEOUT, async {
            let tcp = TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(|e| format!("cannot connect to {address}: {e}"))?;
            let _ = tcp.set_nodelay(true);
            self.tls
                .connect(self.server_name.clone(), tcp)
                .await
                .map_err(|e| format!("TLS with {address} failed: {e}"))
        })
        .await;
        connected.unwrap_or_else(|_| {
            Err(format!(
                "no connection to {address} within {} s",
                IO_TIMEOUT.as_secs()
            ))
        })
    }

    fn message(&self, e: &SealedEntry) -> String {
        let msg = match self.config.format {
            SyslogFormat::Json => crate::audit::export::to_json(e).to_string(),
            SyslogFormat::Ocsf => super::ocsf::to_ocsf(&e.entry).to_string(),
        };
        syslog::message(&self.header, &e.entry, &msg)
    }
}

fn file_error(c: &SyslogConfig, what: &'static str, path: &Path, message: String) -> SyslogError {
    SyslogError::File {
        name: c.name.clone(),
        what,
        path: path.to_owned(),
        message,
    }
}

fn read(c: &SyslogConfig, what: &'static str, path: &Path) -> Result<Vec<u8>, SyslogError> {
    std::fs::read(path).map_err(|e| file_error(c, what, path, format!("cannot read it: {e}")))
}

/// Refuses a client key its group or others may read.
fn private_file(c: &SyslogConfig, path: &Path) -> Result<(), SyslogError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let err = |message: String| SyslogError::File {
            name: c.name.clone(),
            what: "client_key",
            path: path.to_owned(),
            message,
        };
        let mode = std::fs::metadata(path)
            .map_err(|e| err(format!("cannot read it: {e}")))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(err(format!(
                "has mode {:04o}: others may read the key; run `chmod 600` on it",
                mode & 0o7777
            )));
        }
    }
    let _ = (c, path);
    Ok(())
}

/// The kernel's host name, or `-` (NILVALUE) if it cannot be read.
fn local_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or_else(|| "-".into())
}

fn key(name: &str) -> String {
    format!("syslog:{name}")
}

async fn load(ledger: &Ledger, name: &str) -> Result<Option<ForwarderState>, LedgerError> {
    match ledger.notifier_state(&key(name)).await? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            LedgerError::Corrupt(format!("the state of syslog {name:?} does not decode: {e}"))
        }),
    }
}

async fn store(ledger: &Ledger, name: &str, state: &ForwarderState) -> Result<(), LedgerError> {
    let bytes = serde_json::to_vec(state)
        .map_err(|e| LedgerError::Unavailable(format!("cannot encode: {e}")))?;
    ledger.put_notifier_state(&key(name), bytes).await
}
