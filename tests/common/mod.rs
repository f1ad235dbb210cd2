//! Shared end-to-end harness: a real daypass server on 127.0.0.1:0 with real
//! mutual TLS, a fresh rcgen PKI and a temporary sled directory per test, and
//! a [`ManualClock`] the test moves instead of sleeping; the request helpers
//! the tests share; the `daypass` binary runner ([`cli`]); and the python3
//! check of the Python-side tests ([`python`]); a tmpfs of a test's own
//! ([`tmpfs`]); a syslog-over-TLS collector ([`syslog`]).

#![allow(dead_code)]

pub mod browser;
pub mod cli;
pub mod dev_server;
pub mod https;
pub mod python;
pub mod syslog;
pub mod tmpfs;
pub mod witness;

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use daypass::{
    audit::{
        SealedEntry,
        note::{LogKey, NoteVerifier},
    },
    client::{self, ClientIdentity, Clients},
    clock::{Clock, ManualClock, SystemClock},
    config::{Config, GrantLimits, StaffLimits, TlsFiles},
    faults::Faults,
    identity::{Name, PrincipalKind},
    ledger::{Ledger, driver::sled::SledDriver},
    pb,
    pki::{self, CertSpec, CertificateAuthority, Issued},
    server,
};
use tempfile::TempDir;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

pub const TRUST_DOMAIN: &str = "test.daypass";
/// The admin enrolled by `bootstrap_admin` in every test server.
pub const ADMIN: &str = "ada";

/// A running server and everything needed to talk to it.
pub struct TestServer {
    pub addr: SocketAddr,
    /// The plain-HTTP `/metrics`, `/healthz`, `/readyz` listener.
    pub metrics_addr: Option<SocketAddr>,
    /// The warning screen's HTTPS listener, when `config.screen.enabled`
    /// (the same port again after a restart).
    pub screen_addr: Option<SocketAddr>,
    /// The tile read API's HTTPS listener, when `config.tiles.enabled`.
    pub tiles_addr: Option<SocketAddr>,
    pub ca: CertificateAuthority,
    pub clock: ManualClock,
    pub dir: TempDir,
    pub config: Config,
    /// This server's fault switches (a failing disk, panics), kept across
    /// restarts.
    pub faults: Arc<Faults>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), server::ServerError>>>,
}

impl TestServer {
    /// A server with default limits.
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    /// A server whose config `tweak` may change before start.
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let ca = CertificateAuthority::generate("test CA").expect("CA");
        let server_cert = ca
            .issue(&CertSpec::server(
                &["localhost".into(), "127.0.0.1".into()],
                2,
            ))
            .expect("server cert");
        let path = |n: &str| dir.path().join(n);
        std::fs::write(path("ca.pem"), ca.cert_pem()).expect("write");
        std::fs::write(path("server.pem"), &server_cert.cert_pem).expect("write");
        std::fs::write(path("server.key"), &server_cert.key_pem).expect("write");
        pki::create_log_key(dir.path(), &pki::default_log_origin(TRUST_DOMAIN), false)
            .expect("log key");
        pki::create_gate_keys(dir.path(), false).expect("gate keys");
        let mut config = Config {
            listen: "127.0.0.1:0".parse().expect("addr"),
            data_dir: path("data"),
            trust_domain: TRUST_DOMAIN.into(),
            bootstrap_admin: Some(ADMIN.into()),
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
            limits: Default::default(),
            gate: Default::default(),
            // Off unless a test is about monitoring (tests/monitor.rs):
            // other tests count entries exactly, and the monitor's would
            // interleave.
            alerts: daypass::monitor::settings::AlertSettings {
                enabled: false,
                ..Default::default()
            },
            metrics: Default::default(),
            webhooks: Vec::new(),
            syslog: Vec::new(),
            screen: Default::default(),
            tiles: Default::default(),
        };
        tweak(&mut config);
        config.check().expect("valid test config");
        let clock = ManualClock::new(SystemClock.now());
        let mut s = TestServer {
            addr: "127.0.0.1:0".parse().expect("addr"),
            metrics_addr: None,
            screen_addr: None,
            tiles_addr: None,
            ca,
            clock,
            dir,
            config,
            faults: Arc::default(),
            stop: None,
            task: None,
        };
        s.launch().await;
        s
    }

    async fn launch(&mut self) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        self.addr = listener.local_addr().expect("addr");
        let metrics = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        self.metrics_addr = Some(metrics.local_addr().expect("addr"));
        let screen = if self.config.screen.enabled {
            let at = self
                .screen_addr
                .unwrap_or_else(|| "127.0.0.1:0".parse().expect("addr"));
            let l = TcpListener::bind(at).await.expect("bind the screen's port");
            self.screen_addr = Some(l.local_addr().expect("addr"));
            Some(l)
        } else {
            None
        };
        let tiles = if self.config.tiles.enabled {
            let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            self.tiles_addr = Some(l.local_addr().expect("addr"));
            Some(l)
        } else {
            None
        };
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(server::run_with_faults(
            self.config.clone(),
            Arc::new(self.clock.clone()),
            self.faults.clone(),
            server::Listeners {
                grpc: listener,
                metrics: Some(metrics),
                screen,
                tiles,
            },
            async {
                let _ = rx.await;
            },
        ));
        self.stop = Some(tx);
        self.task = Some(task);
    }

    /// Stops the server (graceful: drains, logs `server.stopped`).
    pub async fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(20), task)
                .await
                .expect("server stops within 20 s")
                .expect("server task did not panic")
                .expect("server ran without error");
        }
    }

    /// Stops the server and returns how it ended, error or not.
    pub async fn stop_reporting(&mut self) -> Result<(), server::ServerError> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        match self.task.take() {
            Some(task) => tokio::time::timeout(Duration::from_secs(20), task)
                .await
                .expect("server stops within 20 s")
                .expect("server task did not panic"),
            None => Ok(()),
        }
    }

    /// Starts a stopped server again on the same data directory (new port).
    pub async fn start_again(&mut self) {
        assert!(self.task.is_none(), "server is still running");
        self.launch().await;
    }

    /// Stops and starts again on the same data directory (new port).
    pub async fn restart(&mut self) {
        self.stop().await;
        self.launch().await;
    }

    pub fn server_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.addr.port())
    }

    /// A certificate for `kind/name` from the test CA.
    pub fn issue(&self, kind: PrincipalKind, name: &str) -> Issued {
        self.ca
            .issue_client(kind, &Name::parse(name).expect("name"), TRUST_DOMAIN, 1)
            .expect("client cert")
    }

    /// The `daypass` CLI's connection flags (they go after the command)
    /// for a fresh certificate of `kind`/`name`, its PEM files written to
    /// `dir` as `<kind>-<name>.pem` and `.key`.
    pub fn cli_flags(&self, dir: &std::path::Path, kind: PrincipalKind, name: &str) -> Vec<String> {
        let issued = self.issue(kind, name);
        let stem = format!("{}-{name}", kind.as_str());
        let (cert, key) = (
            dir.join(format!("{stem}.pem")),
            dir.join(format!("{stem}.key")),
        );
        std::fs::write(&cert, &issued.cert_pem).expect("write cert");
        std::fs::write(&key, &issued.key_pem).expect("write key");
        vec![
            "--server".into(),
            self.server_url(),
            "--ca".into(),
            self.config.tls.ca.display().to_string(),
            "--cert".into(),
            cert.display().to_string(),
            "--key".into(),
            key.display().to_string(),
        ]
    }

    /// Connects presenting `issued`, trusting the test CA.
    pub async fn connect_with(&self, issued: &Issued) -> Result<Clients, client::ClientError> {
        let id = ClientIdentity {
            ca_pem: self.ca.cert_pem().as_bytes().to_vec(),
            cert_pem: issued.cert_pem.as_bytes().to_vec(),
            key_pem: issued.key_pem.as_bytes().to_vec(),
        };
        client::connect(&self.server_url(), &id).await
    }

    /// Clients for `kind/name` (the principal need not be enrolled).
    pub async fn client(&self, kind: PrincipalKind, name: &str) -> Clients {
        self.connect_with(&self.issue(kind, name))
            .await
            .expect("connect")
    }

    pub async fn staff(&self, name: &str) -> Clients {
        self.client(PrincipalKind::Staff, name).await
    }

    pub async fn tenant(&self, name: &str) -> Clients {
        self.client(PrincipalKind::Tenant, name).await
    }

    pub async fn auditor(&self, name: &str) -> Clients {
        self.client(PrincipalKind::Auditor, name).await
    }

    pub async fn admin(&self) -> Clients {
        self.staff(ADMIN).await
    }

    /// Enrols `name` with `role` (as the admin) and returns their clients.
    pub async fn enrol(&self, name: &str, role: pb::Role) -> Clients {
        self.admin()
            .await
            .staff
            .add_staff(pb::AddStaffRequest {
                name: name.into(),
                role: role as i32,
                country: String::new(),
                organisation: String::new(),
            })
            .await
            .expect("enrol");
        if role == pb::Role::Auditor {
            self.auditor(name).await
        } else {
            self.staff(name).await
        }
    }

    /// Registers a tenant (as the admin) and returns its clients.
    pub async fn add_tenant(
        &self,
        name: &str,
        approval: pb::ApprovalPolicy,
        require_ticket: bool,
    ) -> Clients {
        self.admin()
            .await
            .tenants
            .add_tenant(pb::AddTenantRequest {
                name: name.into(),
                approval: approval as i32,
                require_ticket,
                require_declaration: false,
                ..Default::default()
            })
            .await
            .expect("add tenant");
        self.tenant(name).await
    }

    /// Clients for the auditor `audit-reader`, enrolled on first use.
    pub async fn audit_reader(&self) -> Clients {
        let _ = self
            .admin()
            .await
            .staff
            .add_staff(pb::AddStaffRequest {
                name: "audit-reader".into(),
                role: pb::Role::Auditor as i32,
                country: String::new(),
                organisation: String::new(),
            })
            .await;
        self.auditor("audit-reader").await
    }

    /// Every entry in the log, read through the audit API as auditor
    /// `audit-reader` (enrolled on first use). The read itself appends an
    /// `audit.read` entry, which is the last one returned.
    pub async fn entries(&self) -> Vec<SealedEntry> {
        let mut auditor = self.audit_reader().await;
        let mut stream = auditor
            .audit
            .stream_entries(pb::StreamEntriesRequest::default())
            .await
            .expect("stream")
            .into_inner();
        let mut out = Vec::new();
        while let Some(e) = stream.message().await.expect("entry") {
            out.push(sealed(&e));
        }
        out
    }

    /// The server's own check of its stored chain and tree, as auditor
    /// `audit-reader`.
    pub async fn verify_chain(&self) -> pb::VerifyChainResponse {
        verify_chain(&mut self.audit_reader().await).await
    }

    /// Opens the ledger directly; only while the server is stopped.
    pub fn open_ledger(&self) -> Ledger {
        let driver = self.open_driver();
        Ledger::with_driver(Arc::new(driver), Arc::new(self.log_key())).expect("open ledger")
    }

    /// Opens the sled database itself (to tamper with its rows); only
    /// while the server is stopped.
    // Waits for a real server's handles to drop: wall time, not the test clock.
    #[allow(clippy::disallowed_methods)]
    pub fn open_driver(&self) -> SledDriver {
        // The stopped server's last handles may take a moment to drop.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            match SledDriver::open(&self.config.data_dir, 8 << 20) {
                Err(e) if e.is_locked() && std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                result => return result.expect("open store"),
            }
        }
    }

    /// The log signing key this server uses.
    pub fn log_key(&self) -> LogKey {
        pki::load_log_key(&self.config.log_key_path()).expect("log key")
    }

    /// The log's verifier key (what auditors are given).
    pub fn log_verifier(&self) -> NoteVerifier {
        self.log_key().verifier()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.config.data_dir.clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// A protobuf entry back into the domain type.
pub fn sealed(e: &pb::LogEntry) -> SealedEntry {
    daypass::rpc::entry_from_pb(e).expect("well-formed entry")
}

/// The kinds of `entries`, in order.
pub fn kinds(entries: &[SealedEntry]) -> Vec<&str> {
    entries.iter().map(|e| e.entry.kind.as_str()).collect()
}

/// Entries after (not including) sequence number `after`.
pub fn since(entries: &[SealedEntry], after: u64) -> Vec<SealedEntry> {
    entries
        .iter()
        .filter(|e| e.entry.seq > after)
        .cloned()
        .collect()
}

/// A request for a grant on `tenant` lasting `duration_seconds` (0: the
/// default), without a ticket.
pub fn grant_request(tenant: &str, reason: &str, duration_seconds: i64) -> pb::RequestGrantRequest {
    pb::RequestGrantRequest {
        tenant: tenant.into(),
        reason: reason.into(),
        ticket: String::new(),
        duration_seconds,
        ..Default::default()
    }
}

/// Requests a grant of the default duration for `tenant` as `clients` and
/// returns it.
pub async fn request(clients: &mut Clients, tenant: &str, reason: &str) -> pb::Grant {
    request_lasting(clients, tenant, reason, 0).await
}

/// Requests a grant of `duration_seconds` for `tenant` as `clients` and
/// returns it.
pub async fn request_lasting(
    clients: &mut Clients,
    tenant: &str,
    reason: &str,
    duration_seconds: i64,
) -> pb::Grant {
    clients
        .grants
        .request_grant(grant_request(tenant, reason, duration_seconds))
        .await
        .expect("request grant")
        .into_inner()
}

/// The grant `grant_id` as `clients` see it.
pub async fn get_grant(clients: &mut Clients, grant_id: &str) -> pb::Grant {
    clients
        .grants
        .get_grant(pb::GetGrantRequest {
            grant_id: grant_id.into(),
        })
        .await
        .expect("get grant")
        .into_inner()
}

/// Releases `grant_id` as its holder `clients` and returns the grant.
pub async fn release(clients: &mut Clients, grant_id: &str) -> pb::Grant {
    clients
        .grants
        .release_grant(pb::ReleaseGrantRequest {
            grant_id: grant_id.into(),
        })
        .await
        .expect("release grant")
        .into_inner()
}

/// Revokes `grant_id` as `clients` (its tenant, or staff allowed to) with
/// `note`, and returns the grant.
pub async fn revoke(clients: &mut Clients, grant_id: &str, note: &str) -> pb::Grant {
    clients
        .grants
        .revoke_grant(pb::RevokeGrantRequest {
            grant_id: grant_id.into(),
            note: note.into(),
        })
        .await
        .expect("revoke grant")
        .into_inner()
}

/// The signed revocation list of the tenant `clients`.
pub async fn revocations(clients: &mut Clients) -> pb::RevocationList {
    clients
        .gate
        .get_revocations(pb::GetRevocationsRequest {})
        .await
        .expect("revocation list")
        .into_inner()
}

/// A report that `action` on `resource` is about to happen under
/// `grant_id` (now: no access time, no report id).
pub fn access_request(grant_id: &str, action: &str, resource: &str) -> pb::RecordAccessRequest {
    pb::RecordAccessRequest {
        grant_id: grant_id.into(),
        action: action.into(),
        resource: resource.into(),
        ..Default::default()
    }
}

/// Records, as the tenant `clients`, that `action` on `resource` is about
/// to happen under `grant_id`.
pub async fn record_access(
    clients: &mut Clients,
    grant_id: &str,
    action: &str,
    resource: &str,
) -> pb::RecordAccessResponse {
    clients
        .grants
        .record_access(access_request(grant_id, action, resource))
        .await
        .expect("record access")
        .into_inner()
}

/// A validation request for the grant `grant_id`.
pub fn validate_request(grant_id: &str) -> pb::ValidateGrantRequest {
    pb::ValidateGrantRequest {
        subject: Some(pb::validate_grant_request::Subject::GrantId(
            grant_id.into(),
        )),
        ..Default::default()
    }
}

/// Validates `grant_id` as the tenant `clients`.
pub async fn validate(clients: &mut Clients, grant_id: &str) -> pb::ValidateGrantResponse {
    clients
        .grants
        .validate_grant(validate_request(grant_id))
        .await
        .expect("validate")
        .into_inner()
}

/// Validates `grant_id` as the tenant `clients`, where the call itself
/// must fail (not merely deny); returns its status.
pub async fn validate_err(clients: &mut Clients, grant_id: &str) -> tonic::Status {
    clients
        .grants
        .validate_grant(validate_request(grant_id))
        .await
        .expect_err("the call fails")
}

pub fn deny_reason(r: &pb::ValidateGrantResponse) -> pb::DenyReason {
    pb::DenyReason::try_from(r.deny_reason).expect("known deny reason")
}

/// The server's own check of its stored chain and tree, as `auditor`.
pub async fn verify_chain(auditor: &mut Clients) -> pb::VerifyChainResponse {
    auditor
        .audit
        .verify_chain(pb::VerifyChainRequest {})
        .await
        .expect("verify chain")
        .into_inner()
}

impl TestServer {
    /// Follows the log from the start until an entry satisfying `pred`
    /// arrives (or fails after 10 s). Event-driven: no polling, no sleeps.
    pub async fn wait_for(&self, what: &str, pred: impl Fn(&SealedEntry) -> bool) -> SealedEntry {
        let mut auditor = self.audit_reader().await;
        let mut stream = auditor
            .audit
            .stream_entries(pb::StreamEntriesRequest {
                follow: true,
                ..Default::default()
            })
            .await
            .expect("stream")
            .into_inner();
        let found = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(e) = stream.message().await.expect("entry") {
                let e = sealed(&e);
                if pred(&e) {
                    return Some(e);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(e)) => e,
            _ => panic!("no log entry {what} within 10 s"),
        }
    }
}

/// Copies a directory tree as a careful backup or restore would: the copy
/// keeps the source's permissions (a data directory is 0700).
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    let fail = "copy the directory";
    std::fs::create_dir_all(to).expect(fail);
    std::fs::set_permissions(to, std::fs::metadata(from).expect(fail).permissions()).expect(fail);
    for e in std::fs::read_dir(from).expect(fail) {
        let e = e.expect(fail);
        let target = to.join(e.file_name());
        if e.file_type().expect(fail).is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).expect(fail);
        }
    }
}

/// Replaces `dir` with a copy of `from` (a restore).
pub fn replace_dir(dir: &std::path::Path, from: &std::path::Path) {
    std::fs::remove_dir_all(dir).expect("remove the directory");
    copy_dir(from, dir);
}

/// `sled::open`, waiting up to 2 s for the file lock that a ledger or
/// server just dropped may hold a moment longer (sled's background
/// threads).
pub fn sled_open(path: &std::path::Path) -> sled::Db {
    for _ in 0..200 {
        match sled::open(path) {
            Ok(db) => return db,
            Err(sled::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("open sled at {}: {e}", path.display()),
        }
    }
    panic!("sled at {} stayed locked for 2 s", path.display())
}
