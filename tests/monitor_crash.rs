//! The monitor across a SIGKILL of the real `daypass serve`: in a burst of
//! denied validations (one `denied-burst` alert due per tenant), the
//! server is killed once some alerts are raised, restarted, and the burst
//! finished. Every tenant then has exactly one alert: none lost (the
//! entries judged before the kill whose alerts were not committed are
//! judged again), none raised twice (the cursor moved with the alerts, and
//! the cool-down was rebuilt from the log).

// Waits for a real process and sockets: wall time on purpose.
#![allow(clippy::disallowed_methods)]

use std::{
    collections::HashMap,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use daypass::{
    client::{self, ClientIdentity, Clients},
    identity::{Name, PrincipalKind},
    pb,
    pki::{self, CertSpec, CertificateAuthority},
};

const TRUST: &str = "monitor.daypass";
const TENANTS: usize = 30;
/// Denials per tenant: the default rule fires at 10 within 10 minutes.
const DENIALS: usize = 12;
const UNKNOWN_GRANT: &str = "g-000000000000000000000000";

struct Server(Child);

impl Drop for Server {
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

async fn start(dir: &Path, admin: &ClientIdentity, n: u32) -> (Server, String, Clients) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let q = |p: &Path| format!("{:?}", p.display().to_string());
    let pki = dir.join("pki");
    let config = dir.join("daypass.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndata_dir = {}\ntrust_domain = \"{TRUST}\"\n\
             bootstrap_admin = \"admin\"\n\n[tls]\nca = {}\ncert = {}\nkey = {}\n\n\
             [alerts]\nenabled = true\n",
            q(&dir.join("data")),
            q(&pki.join("ca.pem")),
            q(&pki.join("server.pem")),
            q(&pki.join("server.key")),
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
    let server = Server(child);
    let url = format!("https://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(mut c) = client::connect(&url, admin).await {
            if c.staff.who_am_i(pb::WhoAmIRequest {}).await.is_ok() {
                return (server, url, c);
            }
        }
        assert!(
            Instant::now() < deadline,
            "start {n}: the server did not come up: {}",
            std::fs::read_to_string(dir.join(format!("server-{n}.log"))).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn alerts(admin: &mut Clients) -> Vec<pb::Alert> {
    admin
        .alerts
        .list_alerts(pb::ListAlertsRequest {
            include_resolved: true,
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner().alerts)
        .unwrap_or_default()
}

#[tokio::test(flavor = "current_thread")]
async fn no_alert_is_lost_or_raised_twice_across_a_sigkill() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pki_dir = dir.path().join("pki");
    let ca = CertificateAuthority::generate("monitor crash CA").expect("CA");
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
    let admin_id = identity(&ca, PrincipalKind::Staff, "admin");

    let (server, url, mut admin) = start(dir.path(), &admin_id, 0).await;
    let mut tenants = Vec::new();
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
            .expect("add tenant");
        tenants.push(identity(&ca, PrincipalKind::Tenant, &format!("t{t}")));
    }

    // The burst, tenant after tenant, until the server has raised a few
    // alerts: then SIGKILL.
    let mut denied = vec![0usize; TENANTS];
    let mut server = Some(server);
    'burst: for t in 0..TENANTS {
        let mut c = client::connect(&url, &tenants[t]).await.expect("connect");
        while denied[t] < DENIALS {
            let ok = c
                .grants
                .validate_grant(pb::ValidateGrantRequest {
                    subject: Some(pb::validate_grant_request::Subject::GrantId(
                        UNKNOWN_GRANT.into(),
                    )),
                    ..Default::default()
                })
                .await
                .is_ok();
            assert!(
                ok,
                "validation {} of t{t} failed before the kill",
                denied[t]
            );
            denied[t] += 1;
            if alerts(&mut admin).await.len() >= 5 {
                drop(server.take()); // Child::kill is SIGKILL
                break 'burst;
            }
        }
    }
    assert!(
        server.is_none(),
        "the burst ended before five alerts were raised"
    );
    let raised_before = denied.iter().filter(|d| **d >= 10).count();
    assert!(
        raised_before < TENANTS,
        "the kill came after the whole burst"
    );

    let (_server, url, mut admin) = start(dir.path(), &admin_id, 1).await;
    for t in 0..TENANTS {
        if denied[t] >= DENIALS {
            continue;
        }
        let mut c = client::connect(&url, &tenants[t]).await.expect("connect");
        while denied[t] < DENIALS {
            c.grants
                .validate_grant(pb::ValidateGrantRequest {
                    subject: Some(pb::validate_grant_request::Subject::GrantId(
                        UNKNOWN_GRANT.into(),
                    )),
                    ..Default::default()
                })
                .await
                .expect("validate after the restart");
            denied[t] += 1;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let got = loop {
        let got = alerts(&mut admin).await;
        if got.len() >= TENANTS || Instant::now() > deadline {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut per_tenant: HashMap<String, usize> = HashMap::new();
    for a in &got {
        assert_eq!(a.rule, "denied-burst", "{a:?}");
        *per_tenant.entry(a.subject.clone()).or_default() += 1;
    }
    for t in 0..TENANTS {
        assert_eq!(
            per_tenant
                .get(&format!("tenant/t{t}"))
                .copied()
                .unwrap_or(0),
            1,
            "tenant t{t}: {per_tenant:?}"
        );
    }
    // The log says the same: one alert.raised per tenant.
    let mut stream = admin
        .audit
        .stream_entries(pb::StreamEntriesRequest {
            from_seq: 0,
            follow: false,
            ..Default::default()
        })
        .await
        .expect("stream")
        .into_inner();
    let mut raised = 0;
    while let Some(e) = stream.message().await.expect("entry") {
        if e.kind == "alert.raised" {
            raised += 1;
        }
    }
    assert_eq!(raised, TENANTS);
}
