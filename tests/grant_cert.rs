//! Grant certificates end to end: an engineer with an active grant makes a
//! key and a CSR, gets a certificate from the broker's grant CA
//! (IssueGrantCertificate) and connects with it over mutual TLS to a
//! tenant's own service: `examples/tenant_service.rs`, run in process, with
//! the tenant library's `RequireGrant` in front of it.
//!
//! rustls checks the certificate's validity with the real clock; the
//! verifier decides on the injected one. That is why expiry here is reached
//! by moving `s.clock`, and a certificate still valid to rustls is refused.

mod common;

#[path = "../examples/tenant_service.rs"]
#[allow(dead_code)]
mod tenant_service;

use std::{sync::Arc, time::Duration};

use common::*;
use daypass::{
    client::Clients,
    clock::{Clock, Timestamp},
    identity::PrincipalKind,
    pb::{self, ApprovalPolicy, Role},
    pki::CertSpec,
};
use daypass_tenant::{
    Gateway, Refusal,
    gateway::{BrokerIdentity, connect_broker},
};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::{
    Code,
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity},
};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// Generous bound on event-driven waits (nothing here waits for time).
const WAIT: Duration = Duration::from_secs(20);

/// The gRPC method the example service serves, as reported.
const CHECK: &str = "/grpc.health.v1.Health/Check";

#[tokio::test]
async fn an_engineer_with_a_grant_certificate_is_admitted_and_the_access_recorded() {
    let s = TestServer::start().await;
    let mut alice = s.enrol("alice", Role::Support).await;
    s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let g = request_for(&mut alice, "acme", 3600).await;
    assert_eq!(state(&g), pb::GrantState::Active, "acme approves at once");
    let cert = grant_certificate(&mut alice, &g.id).await;
    assert_eq!(
        cert.issued.expires_at_ms,
        g.expires_at_ms / 1000 * 1000,
        "valid until the grant expires (whole seconds)"
    );
    let acme = TenantService::start(&s, "acme").await;

    let mut health = acme.connect(&s, Some(&cert)).await;
    assert_eq!(check(&mut health).await, Ok(ServingStatus::Serving as i32));

    // The grant token works too, over TLS without a client certificate;
    // without either, the call is refused as unauthenticated.
    let mut anonymous = acme.connect(&s, None).await;
    let mut req = tonic::Request::new(HealthCheckRequest::default());
    req.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", g.token).parse().expect("ascii"),
    );
    let answer = anonymous.check(req).await.expect("admitted with the token");
    assert_eq!(answer.into_inner().status, ServingStatus::Serving as i32);
    let refused = check(&mut anonymous).await.expect_err("no credential");
    assert_eq!(refused.0, Code::Unauthenticated, "{refused:?}");

    // Both admitted calls were reported, as the gRPC method called.
    let stats = tokio::time::timeout(WAIT, acme.gateway.reporter().flush())
        .await
        .expect("flushed");
    assert_eq!((stats.acknowledged, stats.failed), (2, 0), "{stats:?}");
    let entries = s.entries().await;
    let recorded: Vec<_> = entries
        .iter()
        .filter(|e| e.entry.kind == "access.recorded" && e.entry.details["grant"] == g.id)
        .collect();
    assert_eq!(recorded.len(), 2);
    assert!(recorded.iter().all(|e| e.entry.details["action"] == CHECK));
    assert!(entries.iter().any(|e| {
        e.entry.kind == "grant.certificate_issued"
            && e.entry.details["serial"] == cert.issued.serial
    }));
}

/// Scoped grant certificates over real mutual TLS: TLS takes the
/// certificate (its scope URIs hold `:` and `*`), and the tenant's layer
/// admits it only to the methods its scopes name (the example service
/// names each call by its gRPC method), offline.
#[tokio::test]
async fn a_scoped_grant_certificate_is_admitted_only_within_its_scopes() {
    let s = TestServer::start().await;
    let mut alice = s.enrol("alice", Role::Support).await;
    let mut bob = s.enrol("bob", Role::Support).await;
    s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let scoped = |who: &str, scopes: &[&str]| pb::RequestGrantRequest {
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        ..grant_request("acme", &format!("INC-9: {who}"), 3600)
    };
    let inside = alice
        .grants
        .request_grant(scoped("alice", &["grpc.health.v1.health:*"]))
        .await
        .expect("requested")
        .into_inner();
    let outside = bob
        .grants
        .request_grant(scoped("bob", &["db:read"]))
        .await
        .expect("requested")
        .into_inner();
    let inside_cert = grant_certificate(&mut alice, &inside.id).await;
    let outside_cert = grant_certificate(&mut bob, &outside.id).await;
    assert_eq!(outside_cert.issued.scopes, ["db:read"]);
    let acme = TenantService::start(&s, "acme").await;

    let mut health = acme.connect(&s, Some(&inside_cert)).await;
    assert_eq!(check(&mut health).await, Ok(ServingStatus::Serving as i32));
    let mut health = acme.connect(&s, Some(&outside_cert)).await;
    assert_eq!(
        check(&mut health).await,
        Err((
            Code::PermissionDenied,
            Refusal::OutOfScope {
                resource: "grpc.health.v1.health:check".into(),
                scopes: "db:read".into()
            }
            .to_string()
        ))
    );
    let stats = tokio::time::timeout(WAIT, acme.gateway.reporter().flush())
        .await
        .expect("flushed");
    assert_eq!(
        (stats.acknowledged, stats.failed),
        (1, 0),
        "only the admitted call"
    );
    let entries = s.entries().await;
    let recorded: Vec<_> = entries
        .iter()
        .filter(|e| e.entry.kind == "access.recorded")
        .collect();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].entry.details["grant"], inside.id);
    assert_eq!(
        recorded[0].entry.details["resource"],
        "grpc.health.v1.health:check"
    );
}

#[tokio::test]
async fn a_certificate_for_acme_is_refused_by_globex() {
    let s = TestServer::start().await;
    let mut alice = s.enrol("alice", Role::Support).await;
    s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    s.add_tenant("globex", ApprovalPolicy::Auto, false).await;
    let g = request_for(&mut alice, "acme", 3600).await;
    let cert = grant_certificate(&mut alice, &g.id).await;
    let globex = TenantService::start(&s, "globex").await;

    // TLS accepts it (same grant CA); the verifier does not.
    let mut health = globex.connect(&s, Some(&cert)).await;
    let refused = check(&mut health).await.expect_err("wrong tenant");
    assert_eq!(
        refused,
        (
            Code::PermissionDenied,
            Refusal::WrongTenant("acme".into()).to_string()
        )
    );
    assert_eq!(
        globex.gateway.reporter().stats().queued,
        0,
        "nothing reported"
    );
}

#[tokio::test]
async fn the_certificate_is_refused_once_the_grant_expires_on_the_injected_clock() {
    let s = TestServer::start().await;
    let mut alice = s.enrol("alice", Role::Support).await;
    s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let g = request_for(&mut alice, "acme", 600).await;
    let cert = grant_certificate(&mut alice, &g.id).await;
    let acme = TenantService::start(&s, "acme").await;
    let mut health = acme.connect(&s, Some(&cert)).await;
    assert!(check(&mut health).await.is_ok());

    // Two seconds before the certificate's end: admitted (once the feed
    // has the broker's heartbeat for the new time).
    let not_after = cert.issued.expires_at_ms;
    s.clock
        .advance_millis(not_after - 2_000 - s.clock.now().millis());
    acme.fresh(&s).await;
    assert!(check(&mut health).await.is_ok(), "still valid");

    s.clock.advance_millis(2_000);
    let expired = Refusal::Expired(Timestamp(not_after)).to_string();
    assert_eq!(
        check(&mut health).await,
        Err((Code::PermissionDenied, expired.clone())),
        "the same connection"
    );
    // A new connection: rustls (real clock) still takes the certificate,
    // the verifier (injected clock) refuses it.
    let mut again = acme.connect(&s, Some(&cert)).await;
    assert_eq!(
        check(&mut again).await,
        Err((Code::PermissionDenied, expired))
    );
}

#[tokio::test]
async fn a_revoked_grant_certificate_is_refused_once_the_feed_delivers_the_revocation() {
    let s = TestServer::start().await;
    let mut alice = s.enrol("alice", Role::Support).await;
    s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let g = request_for(&mut alice, "acme", 3600).await;
    let cert = grant_certificate(&mut alice, &g.id).await;
    let acme = TenantService::start(&s, "acme").await;
    let mut health = acme.connect(&s, Some(&cert)).await;
    assert!(check(&mut health).await.is_ok());

    revoke(&mut s.admin().await, &g.id, "incident closed").await;
    let revoked = Refusal::Revoked(g.id.clone());
    let verifier = acme.gateway.verifier();
    tokio::time::timeout(
        WAIT,
        acme.gateway
            .feed()
            .wait_for(|_| verifier.verify_certificate(&cert.der).as_ref() == Err(&revoked)),
    )
    .await
    .expect("the revocation arrives")
    .expect("feed running");
    assert_eq!(
        check(&mut health).await,
        Err((Code::PermissionDenied, revoked.to_string())),
        "refused on the open connection"
    );
}

#[tokio::test]
async fn a_csr_for_a_key_type_we_do_not_issue_for_is_refused_and_not_logged_as_issued() {
    let s = TestServer::start().await;
    let mut alice = s.enrol("alice", Role::Support).await;
    s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let g = request_for(&mut alice, "acme", 3600).await;
    // Made with openssl (tests/data/csr/README.md): each verifies as a
    // CSR, and none holds a P-256 or Ed25519 key. The first is the
    // review's case: a P-384 key in a request signed with SHA-256 was
    // certified as a "P-256" key holding a 97-byte point.
    for (what, file) in [
        ("P-384 key, SHA-256 signature", "p384-sha256.csr"),
        ("RSA 2048 key", "rsa2048-sha256.csr"),
        ("secp256k1 key", "secp256k1-sha256.csr"),
    ] {
        let refused = alice
            .grants
            .issue_grant_certificate(pb::IssueGrantCertificateRequest {
                grant_id: g.id.clone(),
                csr_pem: csr_fixture(file),
            })
            .await
            .expect_err(what);
        assert_eq!(refused.code(), Code::InvalidArgument, "{what}: {refused:?}");
        assert!(
            refused.message().contains("P-256") && refused.message().contains("Ed25519"),
            "{what}: the refusal says which keys are accepted: {refused:?}"
        );
    }
    let entries = s.entries().await;
    assert!(
        !entries
            .iter()
            .any(|e| e.entry.kind == "grant.certificate_issued"),
        "nothing was logged as issued"
    );
    let refused = entries
        .iter()
        .filter(|e| {
            e.entry.kind == "call.refused"
                && e.entry.details["call"] == "IssueGrantCertificate"
                && e.entry.details["code"] == "invalid-argument"
        })
        .count();
    assert_eq!(refused, 3, "each refusal is logged as a refusal");
}

#[tokio::test]
async fn p256_and_ed25519_keys_are_certified_as_themselves_whatever_the_csr_hash() {
    let s = TestServer::start().await;
    let mut alice = s.enrol("alice", Role::Support).await;
    s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let g = request_for(&mut alice, "acme", 3600).await;
    let ed25519 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("key");
    let p256 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    for (what, csr_pem) in [
        ("Ed25519", csr_for(&ed25519)),
        ("P-256, SHA-256", csr_for(&p256)),
        // Was certified as a P-384 key holding a 65-byte point.
        ("P-256, SHA-384", csr_fixture("p256-sha384.csr")),
    ] {
        let issued = alice
            .grants
            .issue_grant_certificate(pb::IssueGrantCertificateRequest {
                grant_id: g.id.clone(),
                csr_pem: csr_pem.clone(),
            })
            .await
            .unwrap_or_else(|e| panic!("{what}: {e:?}"))
            .into_inner();
        let (_, csr) = x509_parser::pem::parse_x509_pem(csr_pem.as_bytes()).expect("CSR PEM");
        let (_, csr) =
            <x509_parser::certification_request::X509CertificationRequest as x509_parser::prelude::FromDer<_>>::from_der(&csr.contents)
                .expect("CSR");
        let (_, cert) = x509_parser::pem::parse_x509_pem(issued.certificate_pem.as_bytes())
            .expect("certificate PEM");
        let cert = cert.parse_x509().expect("certificate");
        assert_eq!(
            cert.public_key().raw,
            csr.certification_request_info.subject_pki.raw,
            "{what}: the certificate holds the request's key, labelled as it was"
        );
    }
}

// ------------------------------------------------------------- helpers ---

/// The example tenant service, serving on 127.0.0.1 with a server
/// certificate from the test CA, in front of the test broker.
struct TenantService {
    port: u16,
    gateway: Arc<Gateway>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl TenantService {
    async fn start(s: &TestServer, tenant: &str) -> TenantService {
        let issued = s.issue(PrincipalKind::Tenant, tenant);
        let broker = BrokerIdentity {
            ca_pem: s.ca.cert_pem().as_bytes().to_vec(),
            cert_pem: issued.cert_pem.into_bytes(),
            key_pem: issued.key_pem.into_bytes(),
        };
        let channel = connect_broker(&s.server_url(), &broker).expect("channel");
        let gateway = Arc::new(
            Gateway::start(tenant, channel, Arc::new(s.clock.clone()))
                .await
                .expect("gateway ready"),
        );
        let server =
            s.ca.issue(&CertSpec::server(&["127.0.0.1".into()], 1))
                .expect("server certificate");
        let identity = Identity::from_pem(server.cert_pem, server.key_pem);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = gateway.clone();
        let task = tokio::spawn(async move {
            tenant_service::serve(&serving, identity, listener, async {
                let _ = stopped.await;
            })
            .await
        });
        TenantService {
            port,
            gateway,
            stop: Some(stop),
            task,
        }
    }

    /// A health client over TLS, presenting `cert` if given.
    async fn connect(&self, s: &TestServer, cert: Option<&GrantCert>) -> HealthClient<Channel> {
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(s.ca.cert_pem()))
            .domain_name("127.0.0.1");
        if let Some(cert) = cert {
            tls = tls.identity(Identity::from_pem(
                &cert.issued.certificate_pem,
                &cert.key_pem,
            ));
        }
        let channel = Endpoint::from_shared(format!("https://127.0.0.1:{}", self.port))
            .expect("url")
            .tls_config(tls)
            .expect("tls")
            .connect()
            .await
            .expect("TLS connection to the tenant service");
        HealthClient::new(channel)
    }

    /// Waits until the verifier holds a revocation list issued at the test
    /// clock's current time (the broker sends one when its clock moves).
    async fn fresh(&self, s: &TestServer) {
        let now = Timestamp(s.clock.now().millis());
        let verifier = self.gateway.verifier();
        tokio::time::timeout(
            WAIT,
            self.gateway
                .feed()
                .wait_for(|_| verifier.revocation_list().is_some_and(|(_, at)| at >= now)),
        )
        .await
        .expect("a fresh list in time")
        .expect("feed running");
    }
}

impl Drop for TenantService {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.abort();
    }
}

/// A grant certificate, its key and its DER.
struct GrantCert {
    issued: pb::GrantCertificate,
    key_pem: String,
    der: Vec<u8>,
}

/// A key made here, a CSR for it, and the broker's certificate for it.
async fn grant_certificate(holder: &mut Clients, grant_id: &str) -> GrantCert {
    let key = rcgen::KeyPair::generate().expect("key");
    let csr = csr_for(&key);
    let issued = holder
        .grants
        .issue_grant_certificate(pb::IssueGrantCertificateRequest {
            grant_id: grant_id.into(),
            csr_pem: csr,
        })
        .await
        .expect("grant certificate")
        .into_inner();
    let (_, pem) = x509_parser::pem::parse_x509_pem(issued.certificate_pem.as_bytes())
        .expect("PEM certificate");
    GrantCert {
        issued,
        key_pem: key.serialize_pem(),
        der: pem.contents,
    }
}

/// A PEM CSR for `key`, signed with the key's own algorithm.
fn csr_for(key: &rcgen::KeyPair) -> String {
    rcgen::CertificateParams::new(Vec::<String>::new())
        .expect("params")
        .serialize_request(key)
        .expect("CSR")
        .pem()
        .expect("CSR PEM")
}

/// A CSR from `tests/data/csr`.
fn csr_fixture(file: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/csr")
        .join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

async fn request_for(holder: &mut Clients, tenant: &str, seconds: i64) -> pb::Grant {
    request_lasting(holder, tenant, "INC-7: billing export stuck", seconds).await
}

fn state(g: &pb::Grant) -> pb::GrantState {
    pb::GrantState::try_from(g.state).expect("known state")
}

/// One health check: the serving status, or the refusal's code and message.
async fn check(health: &mut HealthClient<Channel>) -> Result<i32, (Code, String)> {
    health
        .check(HealthCheckRequest::default())
        .await
        .map(|r| r.into_inner().status)
        .map_err(|s| (s.code(), s.message().to_owned()))
}
