//! Crash consistency: the real `daypass serve` process, driven by concurrent
//! grant requests, validations and access records, killed with SIGKILL at
//! random moments and restarted, again and again. After every restart:
//!
//! * every call the server acknowledged is in the log: the entry its
//!   receipt names is there, with the same leaf hash, and the signed
//!   checkpoint the receipt carried is still extended by the log;
//! * the chain and the Merkle tree verify (`VerifyChain`: every hash, link,
//!   sequence number and tree node), so no sequence number is missing or
//!   repeated;
//! * every grant the server holds has its `grant.requested` entry, and every
//!   acknowledged grant exists.
//!
//! `DAYPASS_CRASH_KILLS` sets the number of kills (default 20). The figures
//! of a run are printed (`--nocapture`) and recorded in docs/reliability.md.

// Times and waits for real processes and sockets: wall time on purpose.
#![allow(clippy::disallowed_methods)]

use std::{
    collections::{HashMap, HashSet},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use daypass::{
    audit::{
        Hash,
        merkle::verify_consistency,
        note::{Checkpoint, NoteVerifier},
    },
    client::{self, ClientIdentity, Clients},
    identity::{Name, PrincipalKind},
    pb,
    pki::{self, CertSpec, CertificateAuthority},
};

const TRUST: &str = "crash.daypass";
const ENGINEERS: usize = 6;
const TENANTS: usize = 400;

struct Pki {
    ca: CertificateAuthority,
    dir: PathBuf,
}

impl Pki {
    fn identity(&self, kind: PrincipalKind, name: &str) -> ClientIdentity {
        let issued = self
            .ca
            .issue_client(kind, &Name::parse(name).expect("name"), TRUST, 2)
            .expect("client cert");
        ClientIdentity {
            ca_pem: self.ca.cert_pem().as_bytes().to_vec(),
            cert_pem: issued.cert_pem.into_bytes(),
            key_pem: issued.key_pem.into_bytes(),
        }
    }
}

/// The server child process; killed when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn toml_path(p: &Path) -> String {
    format!("{:?}", p.display().to_string())
}

/// Starts `daypass serve` on a free port and waits until an admitted call
/// answers.
async fn start(dir: &Path, pki: &Pki, admin: &ClientIdentity, n: u32) -> (Server, Clients) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let config = dir.join("daypass.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndata_dir = {}\ntrust_domain = \"{TRUST}\"\n\
             bootstrap_admin = \"admin\"\n\n[tls]\nca = {}\ncert = {}\nkey = {}\n\n\
             [limits]\nrequests_per_minute = 1e9\nrequest_burst = 1e9\n\n\
             [metrics]\nlisten = \"127.0.0.1:0\"\n",
            toml_path(&dir.join("data")),
            toml_path(&pki.dir.join("ca.pem")),
            toml_path(&pki.dir.join("server.pem")),
            toml_path(&pki.dir.join("server.key")),
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
    let server = Server {
        child,
        url: format!("https://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(mut c) = client::connect(&server.url, admin).await {
            if c.staff.who_am_i(pb::WhoAmIRequest {}).await.is_ok() {
                return (server, c);
            }
        }
        assert!(
            Instant::now() < deadline,
            "restart {n}: the server did not come up; its log:\n{}",
            std::fs::read_to_string(dir.join(format!("server-{n}.log"))).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// What the server acknowledged before a kill.
#[derive(Default)]
struct Acked {
    /// seq → (leaf hash, the receipt's checkpoint note).
    receipts: HashMap<u64, (Hash, String)>,
    grants: HashSet<String>,
    calls: u64,
}

fn record(acked: &Mutex<Acked>, r: Option<&pb::Receipt>) {
    let r = r.expect("every write returns a receipt");
    let leaf: Hash = r.leaf_hash.as_slice().try_into().expect("leaf hash");
    let mut a = acked.lock().expect("lock");
    a.receipts.insert(r.seq, (leaf, r.checkpoint.clone()));
    a.calls += 1;
}

/// One engineer's loop: request a grant on the next tenant, have that
/// tenant validate it and record an access, until the server goes away.
async fn drive(
    url: String,
    me: ClientIdentity,
    tenants: Arc<Vec<ClientIdentity>>,
    acked: Arc<Mutex<Acked>>,
    next: Arc<Mutex<usize>>,
) {
    let Ok(mut me) = client::connect(&url, &me).await else {
        return;
    };
    loop {
        let t = {
            let mut n = next.lock().expect("lock");
            *n += 1;
            *n % TENANTS
        };
        let g = match me
            .grants
            .request_grant(pb::RequestGrantRequest {
                tenant: format!("t{t}"),
                reason: "crash test".into(),
                ticket: String::new(),
                duration_seconds: 3600,
                ..Default::default()
            })
            .await
        {
            Ok(g) => g.into_inner(),
            // This engineer already holds a live grant there: next tenant.
            Err(s) if s.code() == tonic::Code::AlreadyExists => continue,
            Err(_) => return,
        };
        record(&acked, g.receipt.as_ref());
        acked.lock().expect("lock").grants.insert(g.id.clone());
        let Ok(mut tenant) = client::connect(&url, &tenants[t]).await else {
            return;
        };
        match tenant
            .grants
            .validate_grant(pb::ValidateGrantRequest {
                subject: Some(pb::validate_grant_request::Subject::GrantId(g.id.clone())),
                ..Default::default()
            })
            .await
        {
            Ok(v) => record(&acked, v.get_ref().receipt.as_ref()),
            Err(_) => return,
        }
        match tenant
            .grants
            .record_access(pb::RecordAccessRequest {
                grant_id: g.id.clone(),
                action: "ssh".into(),
                resource: "db".into(),
                ..Default::default()
            })
            .await
        {
            Ok(r) => record(&acked, r.get_ref().receipt.as_ref()),
            Err(_) => return,
        }
    }
}

fn hashes(v: &[Vec<u8>]) -> Vec<Hash> {
    v.iter()
        .map(|h| h.as_slice().try_into().expect("32-byte hash"))
        .collect()
}

#[tokio::test(flavor = "current_thread")]
async fn acknowledged_calls_survive_sigkill_and_the_log_stays_whole() {
    let kills: u32 = std::env::var("DAYPASS_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir().expect("temp dir");
    let pki_dir = dir.path().join("pki");
    let ca = CertificateAuthority::generate("crash test CA").expect("CA");
    let server_cert = ca
        .issue(&CertSpec::server(
            &["localhost".into(), "127.0.0.1".into()],
            2,
        ))
        .expect("server cert");
    pki::create_dir(&pki_dir).expect("pki dir");
    pki::write_public(&pki_dir.join("ca.pem"), ca.cert_pem()).expect("write");
    pki::write_public(&pki_dir.join("server.pem"), &server_cert.cert_pem).expect("write");
    pki::write_secret(&pki_dir.join("server.key"), &server_cert.key_pem).expect("write");
    pki::create_log_key(&pki_dir, &pki::default_log_origin(TRUST), false).expect("log key");
    pki::create_gate_keys(&pki_dir, false).expect("gate keys");
    let verifier: NoteVerifier = pki::load_log_key(&pki_dir.join(pki::LOG_KEY_FILE))
        .expect("log key")
        .verifier();
    let pki = Pki { ca, dir: pki_dir };
    let admin_id = pki.identity(PrincipalKind::Staff, "admin");
    let auditor_id = pki.identity(PrincipalKind::Auditor, "eve");
    let engineers: Vec<ClientIdentity> = (0..ENGINEERS)
        .map(|i| pki.identity(PrincipalKind::Staff, &format!("s{i}")))
        .collect();
    let tenants: Arc<Vec<ClientIdentity>> = Arc::new(
        (0..TENANTS)
            .map(|t| pki.identity(PrincipalKind::Tenant, &format!("t{t}")))
            .collect(),
    );

    // Cast, once.
    let (server, mut admin) = start(dir.path(), &pki, &admin_id, 0).await;
    for (name, role) in (0..ENGINEERS)
        .map(|i| (format!("s{i}"), pb::Role::Support))
        .chain(std::iter::once(("eve".to_owned(), pb::Role::Auditor)))
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
            .expect("enrol");
    }
    for t in 0..TENANTS {
        admin
            .tenants
            .add_tenant(pb::AddTenantRequest {
                name: format!("t{t}"),
                approval: pb::ApprovalPolicy::Auto as i32,
                require_ticket: false,
                require_declaration: false,
                ..Default::default()
            })
            .await
            .expect("tenant");
    }
    drop(server);

    let acked = Arc::new(Mutex::new(Acked::default()));
    let next = Arc::new(Mutex::new(0usize));
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut checked_entries = 0u64;
    for round in 1..=kills {
        let (mut server, _) = start(dir.path(), &pki, &admin_id, round).await;
        let tasks: Vec<_> = engineers
            .iter()
            .map(|id| {
                tokio::spawn(drive(
                    server.url.clone(),
                    id.clone(),
                    tenants.clone(),
                    acked.clone(),
                    next.clone(),
                ))
            })
            .collect();
        // A random moment under load, then SIGKILL.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        tokio::time::sleep(Duration::from_millis(30 + rng % 250)).await;
        server.child.kill().expect("SIGKILL");
        server.child.wait().expect("reaped");
        for t in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(30), t).await;
        }
        drop(server);

        // Restart and check everything acknowledged so far.
        let (server, mut admin) = start(dir.path(), &pki, &admin_id, 1000 + round).await;
        let mut auditor = client::connect(&server.url, &auditor_id)
            .await
            .expect("auditor");
        let report = auditor
            .audit
            .verify_chain(pb::VerifyChainRequest {})
            .await
            .expect("verify")
            .into_inner();
        assert!(report.ok, "round {round}: {}", report.problem);
        checked_entries += report.entries_checked;
        let newest = auditor
            .audit
            .get_checkpoint(pb::GetCheckpointRequest::default())
            .await
            .expect("checkpoint")
            .into_inner();
        let newest = Checkpoint::open(&newest.note, &verifier).expect("signed");
        let mut stream = auditor
            .audit
            .stream_entries(pb::StreamEntriesRequest::default())
            .await
            .expect("stream")
            .into_inner();
        let mut leaves = HashMap::new();
        let mut requested = HashSet::new();
        while let Some(e) = stream.message().await.expect("entry") {
            let s = daypass::rpc::entry_from_pb(&e).expect("entry");
            if s.entry.kind == "grant.requested" {
                requested.insert(s.entry.details.get("grant").cloned().unwrap_or_default());
            }
            leaves.insert(
                s.entry.seq,
                daypass::audit::merkle::leaf_hash(&s.entry.encode()),
            );
        }
        let (receipts, acked_grants) = {
            let a = acked.lock().expect("lock");
            (a.receipts.clone(), a.grants.clone())
        };
        let mut seen_sizes = HashSet::new();
        for (seq, (leaf, note)) in &receipts {
            assert_eq!(
                leaves.get(seq),
                Some(leaf),
                "round {round}: acknowledged entry {seq} lost or changed"
            );
            let cp = Checkpoint::open(note, &verifier).expect("receipt checkpoint");
            if seen_sizes.insert(cp.size) {
                let p = auditor
                    .audit
                    .get_consistency_proof(pb::GetConsistencyProofRequest {
                        old_size: cp.size,
                        new_size: newest.size,
                    })
                    .await
                    .expect("consistency proof")
                    .into_inner();
                verify_consistency(
                    cp.size,
                    newest.size,
                    &cp.root,
                    &newest.root,
                    &hashes(&p.hashes),
                )
                .unwrap_or_else(|e| {
                    panic!("round {round}: checkpoint {} not extended: {e}", cp.size)
                });
            }
        }
        let grants = admin
            .grants
            .list_grants(pb::ListGrantsRequest::default())
            .await
            .expect("list")
            .into_inner()
            .grants;
        let held: HashSet<String> = grants.iter().map(|g| g.id.clone()).collect();
        for id in &acked_grants {
            assert!(
                held.contains(id),
                "round {round}: acknowledged grant {id} lost"
            );
        }
        for id in &held {
            assert!(
                requested.contains(id),
                "round {round}: grant {id} exists without its grant.requested entry"
            );
        }
        drop(server);
    }
    let a = acked.lock().expect("lock");
    println!(
        "crash test: {kills} SIGKILLs under load; {} acknowledged calls ({} receipts, {} grants) \
         all present after every restart; {checked_entries} entries verified in all \
         (chain and tree), 0 breaks",
        a.calls,
        a.receipts.len(),
        a.grants.len()
    );
    assert!(
        a.calls > u64::from(kills),
        "the load ran: {} calls",
        a.calls
    );
}
