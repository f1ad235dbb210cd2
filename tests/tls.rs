//! Connection-level identity: every way a peer can present the wrong
//! certificate, or none, is refused, and the server keeps serving a
//! legitimate admin afterwards. Certificates that fail verification never
//! reach a handler; certificates that verify but do not name exactly one
//! principal in our trust domain are answered UNAUTHENTICATED and logged as
//! `call.refused` by actor `unauthenticated`. The client, for its part,
//! refuses a server it does not trust.
//!
//! Every case has a control beside it that differs only in the one property
//! under test and is served, so a refusal cannot come from a broken setup.

mod common;

use common::*;
use daypass::{
    client::{self, ClientIdentity, Clients},
    identity::PrincipalKind,
    pb,
    pki::{CertSpec, CertificateAuthority, Issued},
};
use time::{Duration, OffsetDateTime};
use tonic::{
    Code,
    transport::{Certificate, ClientTlsConfig, Endpoint, Identity},
};

const ADA: &str = "spiffe://test.daypass/staff/ada";

// rustls checks validity against the real time: the certificates are made
// around it.
#[allow(clippy::disallowed_methods)]
#[tokio::test]
async fn certificates_that_fail_verification_are_refused_at_the_handshake() {
    let s = TestServer::start().await;
    let now = OffsetDateTime::now_utc();

    // Controls: the same construction with a good certificate is served.
    assert_served(&s, &s.ca.issue(&spec(&[ADA])).expect("cert")).await;
    assert_eq!(
        whoami_without_certificate(&s, Some(&s.issue(PrincipalKind::Staff, ADMIN))).await,
        Outcome::Served(format!("staff/{ADMIN}")),
        "control: the raw channel with a certificate works"
    );

    // No client certificate at all.
    let outcome = whoami_without_certificate(&s, None).await;
    assert!(
        matches!(
            outcome,
            Outcome::NoConnection(_) | Outcome::Refused(Code::Unauthenticated, _)
        ),
        "no client certificate: {outcome:?}"
    );
    admin_still_served(&s).await;

    // The enrolled admin's principal, signed by a CA the server does not trust.
    let other = CertificateAuthority::generate("other CA").expect("CA");
    let foreign = other.issue(&spec(&[ADA])).expect("cert");
    assert_no_connection("certificate from another CA", whoami(&s, &foreign).await);
    admin_still_served(&s).await;

    // A self-signed certificate (that CA's own).
    let self_signed = Issued {
        cert_pem: other.cert_pem().to_owned(),
        key_pem: other.key_pem().to_owned(),
    };
    assert_no_connection("self-signed certificate", whoami(&s, &self_signed).await);
    admin_still_served(&s).await;

    // Right CA, right principal, outside its validity period.
    let mut expired = spec(&[ADA]);
    expired.not_before = now - Duration::days(10);
    expired.not_after = now - Duration::days(1);
    let expired = s.ca.issue(&expired).expect("cert");
    assert_no_connection("expired certificate", whoami(&s, &expired).await);
    admin_still_served(&s).await;

    let mut early = spec(&[ADA]);
    early.not_before = now + Duration::days(1);
    early.not_after = now + Duration::days(10);
    let early = s.ca.issue(&early).expect("cert");
    assert_no_connection("not-yet-valid certificate", whoami(&s, &early).await);
    admin_still_served(&s).await;

    // Right CA, right principal, but issued for servers, not clients.
    let mut server_only = spec(&[ADA]);
    server_only.client_auth = false;
    server_only.server_auth = true;
    let server_only = s.ca.issue(&server_only).expect("cert");
    assert_no_connection(
        "certificate without clientAuth",
        whoami(&s, &server_only).await,
    );
    admin_still_served(&s).await;

    // None of these reached a handler, so none is in the log as a call.
    let entries = s.entries().await;
    let refused: Vec<_> = entries
        .iter()
        .filter(|e| e.entry.kind == "call.refused")
        .map(|e| (&e.entry.actor, &e.entry.details))
        .collect();
    assert!(
        refused.is_empty(),
        "handshake failures were seen as calls: {refused:?}"
    );
}

#[tokio::test]
async fn certificates_without_exactly_one_principal_of_ours_are_unauthenticated() {
    let s = TestServer::start().await;
    s.enrol("alice", pb::Role::Support).await;
    let cases: &[(&str, &[&str])] = &[
        ("no URI SAN", &[]),
        (
            "two principals",
            &[ADA, "spiffe://test.daypass/staff/alice"],
        ),
        ("the same principal twice", &[ADA, ADA]),
        ("wrong trust domain", &["spiffe://other.domain/staff/ada"]),
        (
            "wrong trust domain beside a good principal",
            &["spiffe://other.domain/staff/ada", ADA],
        ),
        ("unknown kind", &["spiffe://test.daypass/robot/ada"]),
        ("uppercase name", &["spiffe://test.daypass/staff/Ada"]),
        ("no name", &["spiffe://test.daypass/staff"]),
        ("extra path segment", &["spiffe://test.daypass/staff/ada/x"]),
        // Look like principals but are not canonical: refused, not skipped.
        (
            "uppercase scheme beside a good principal",
            &["SPIFFE://test.daypass/staff/alice", ADA],
        ),
        ("mixed-case scheme", &["Spiffe://test.daypass/staff/ada"]),
        (
            "spiffe: without // beside a good principal",
            &["spiffe:test.daypass/staff/alice", ADA],
        ),
    ];

    // Control: URIs of other schemes are ignored, so this one is served.
    assert_served(
        &s,
        &s.ca
            .issue(&spec(&["https://example.com/staff/eve", ADA]))
            .expect("cert"),
    )
    .await;

    for (what, uris) in cases {
        let cert = s.ca.issue(&spec(uris)).expect("cert");
        match whoami(&s, &cert).await {
            Outcome::Refused(Code::Unauthenticated, _) => {}
            other => panic!("{what}: expected UNAUTHENTICATED, got {other:?}"),
        }
        admin_still_served(&s).await;
    }

    // Each refusal is in the log: actor `unauthenticated`, the call, the code.
    let entries = s.entries().await;
    let unauthenticated: Vec<_> = entries
        .iter()
        .filter(|e| e.entry.kind == "call.refused" && e.entry.actor == "unauthenticated")
        .collect();
    assert_eq!(
        unauthenticated.len(),
        cases.len(),
        "one logged refusal per case: {unauthenticated:?}"
    );
    for e in &unauthenticated {
        let detail = |k: &str| e.entry.details.get(k).map(String::as_str);
        assert_eq!(detail("call"), Some("WhoAmI"), "{e:?}");
        assert_eq!(detail("code"), Some("unauthenticated"), "{e:?}");
        assert!(!detail("message").unwrap_or_default().is_empty(), "{e:?}");
    }
}

#[tokio::test]
async fn only_clientauth_leaves_issued_directly_by_our_ca_are_admitted() {
    let s = TestServer::start().await;
    // Control: a leaf issued directly by the CA, sent with the CA itself
    // (a harmless extra in the chain), is served.
    let direct = s.ca.issue(&spec(&[ADA])).expect("cert");
    let with_root = Issued {
        cert_pem: format!("{}{}", direct.cert_pem, s.ca.cert_pem()),
        key_pem: direct.key_pem.clone(),
    };
    assert_served(&s, &with_root).await;

    let cases = [
        (
            "a leaf under an intermediate CA",
            via_intermediate(&s.ca, "test intermediate CA"),
            "issued directly",
        ),
        (
            // Same subject as our CA, so only its signature tells.
            "a leaf under an intermediate CA named like ours",
            via_intermediate(&s.ca, "test CA"),
            "issued directly",
        ),
        (
            "no extended key usage",
            s.ca.issue(&CertSpec {
                client_auth: false,
                ..spec(&[ADA])
            })
            .expect("cert"),
            "clientAuth",
        ),
    ];
    for (what, cert, says) in &cases {
        match whoami(&s, cert).await {
            Outcome::Refused(Code::Unauthenticated, m) if m.contains(says) => {}
            other => panic!("{what}: expected UNAUTHENTICATED saying {says:?}, got {other:?}"),
        }
        admin_still_served(&s).await;
    }
    // A CA certificate (CA:TRUE) as the leaf: rustls refuses it at the
    // handshake already; the server would refuse it too (identity.rs).
    let ca_leaf = ca_as_leaf(&s.ca);
    assert!(
        !matches!(whoami(&s, &ca_leaf).await, Outcome::Served(_)),
        "a CA:TRUE leaf"
    );
    admin_still_served(&s).await;

    let entries = s.entries().await;
    let refused: Vec<_> = entries
        .iter()
        .filter(|e| e.entry.kind == "call.refused" && e.entry.actor == "unauthenticated")
        .collect();
    assert_eq!(refused.len(), cases.len(), "each is logged: {refused:?}");
    for (e, (_, _, says)) in refused.iter().zip(&cases) {
        assert_eq!(e.entry.details["code"], "unauthenticated", "{e:?}");
        assert!(e.entry.details["message"].contains(says), "{e:?}");
    }
}

#[tokio::test]
async fn handshakes_that_never_finish_are_closed_in_time_while_others_are_served() {
    let s = TestServer::start_with(|c| c.limits.handshake_timeout_ms = 1_000).await;
    let started = tokio::time::Instant::now();
    let mut stalled = Vec::new();
    for i in 0..40 {
        stalled.push(stalled_connection(&s, i % 2 == 1).await);
    }
    // Meanwhile the server serves as usual.
    admin_still_served(&s).await;
    for (i, conn) in stalled.iter_mut().enumerate() {
        assert!(
            closed_within(conn, std::time::Duration::from_secs(5)).await,
            "stalled connection {i} still open after {:?}",
            started.elapsed()
        );
    }
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(900),
        "closed by the timeout, not at once: {:?}",
        started.elapsed()
    );
    admin_still_served(&s).await;
}

#[tokio::test]
async fn beyond_the_cap_on_pending_handshakes_new_connections_are_closed_at_once() {
    let s = TestServer::start_with(|c| c.limits.max_pending_handshakes = 4).await;
    let mut stalled = Vec::new();
    for i in 0..4 {
        stalled.push(stalled_connection(&s, i % 2 == 1).await);
    }
    // The server has taken the four into their handshakes (the cap is
    // counted as connections are accepted, so give it a moment).
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let mut fifth = stalled_connection(&s, true).await;
    assert!(
        closed_within(&mut fifth, std::time::Duration::from_secs(2)).await,
        "a connection beyond the cap is closed at once, not after the 10 s timeout"
    );
    for conn in &mut stalled {
        assert!(
            !closed_within(conn, std::time::Duration::from_millis(10)).await,
            "the four within the cap are still waiting"
        );
    }
    // Once they go away, clients are served again.
    drop(stalled);
    let mut served = false;
    for _ in 0..50 {
        if let Ok(mut admin) = s.connect_with(&s.issue(PrincipalKind::Staff, ADMIN)).await {
            if admin.staff.who_am_i(pb::WhoAmIRequest {}).await.is_ok() {
                served = true;
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(served, "served once the stalled connections closed");
}

#[tokio::test]
async fn the_client_refuses_a_server_it_does_not_trust() {
    let s = TestServer::start().await;
    let other = CertificateAuthority::generate("other CA").expect("CA");
    let admin = s.issue(PrincipalKind::Staff, ADMIN);

    // The client trusts another CA than the one that signed the server.
    let trusts_other = identity(other.cert_pem(), &admin);
    let outcome = whoami_on(client::connect(&s.server_url(), &trusts_other).await).await;
    assert!(
        matches!(outcome, Outcome::NoConnection(_)),
        "client trusting another CA: {outcome:?}"
    );
    // Plain http is refused by the client before anything is sent.
    assert!(
        client::connect(&s.server_url().replace("https", "http"), &trusts_other)
            .await
            .is_err()
    );
    admin_still_served(&s).await;
}

#[tokio::test]
async fn the_client_refuses_a_server_certificate_from_another_ca() {
    // A server that trusts the test CA for clients but presents a
    // certificate signed by another CA.
    let other = CertificateAuthority::generate("other CA").expect("CA");
    let server_cert = other
        .issue(&CertSpec::server(
            &["localhost".into(), "127.0.0.1".into()],
            2,
        ))
        .expect("server cert");
    let pki = tempfile::tempdir().expect("temp dir");
    let (cert, key) = (pki.path().join("server.pem"), pki.path().join("server.key"));
    std::fs::write(&cert, &server_cert.cert_pem).expect("write");
    std::fs::write(&key, &server_cert.key_pem).expect("write");
    let s = TestServer::start_with(|c| {
        // The log and gate keys stay where they are (their defaults
        // follow tls.key).
        c.log.signing_key = Some(c.log_key_path());
        c.gate.token_key = Some(c.token_key_path());
        let (ca_cert, ca_key) = c.grant_ca_paths();
        c.gate.grant_ca_cert = Some(ca_cert);
        c.gate.grant_ca_key = Some(ca_key);
        c.tls.cert = cert;
        c.tls.key = key;
    })
    .await;
    let admin = s.issue(PrincipalKind::Staff, ADMIN);

    // Trusting the test CA, as every client does: refused.
    let outcome = whoami_on(s.connect_with(&admin).await).await;
    assert!(
        matches!(outcome, Outcome::NoConnection(_)),
        "server certificate from another CA: {outcome:?}"
    );

    // Control: a client that trusts the other CA is served by that server.
    let trusts_other = identity(other.cert_pem(), &admin);
    assert_eq!(
        whoami_on(client::connect(&s.server_url(), &trusts_other).await).await,
        Outcome::Served(format!("staff/{ADMIN}"))
    );
}

// ---------------------------------------------------------------- helpers ---

/// How a WhoAmI attempt ended.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// Served; the actor the server saw.
    Served(String),
    /// The server answered with an error status.
    Refused(Code, String),
    /// There was no usable connection: connecting or the TLS handshake failed.
    NoConnection(String),
}

/// A client certificate for `uris`, from whichever CA issues it.
fn spec(uris: &[&str]) -> CertSpec {
    let mut spec = CertSpec::client(ADA, 1);
    spec.uris = uris.iter().map(|u| u.to_string()).collect();
    spec
}

/// A client certificate for ADA signed by a new intermediate CA (CA:TRUE,
/// named `name`) that `ca` signed; the chain sent is leaf + intermediate.
fn via_intermediate(ca: &CertificateAuthority, name: &str) -> Issued {
    let root = rcgen::Issuer::from_ca_cert_pem(
        ca.cert_pem(),
        rcgen::KeyPair::from_pem(ca.key_pem()).expect("CA key"),
    )
    .expect("CA issuer");
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let intermediate = params.signed_by(&key, &root).expect("intermediate");
    let under = CertificateAuthority::load(&intermediate.pem(), &key.serialize_pem())
        .expect("intermediate CA");
    let leaf = under.issue(&spec(&[ADA])).expect("leaf");
    Issued {
        cert_pem: format!("{}{}", leaf.cert_pem, intermediate.pem()),
        key_pem: leaf.key_pem,
    }
}

/// A CA:TRUE certificate for ADA with clientAuth, signed by `ca`.
fn ca_as_leaf(ca: &CertificateAuthority) -> Issued {
    let root = rcgen::Issuer::from_ca_cert_pem(
        ca.cert_pem(),
        rcgen::KeyPair::from_pem(ca.key_pem()).expect("CA key"),
    )
    .expect("CA issuer");
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "ada");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.subject_alt_names = vec![rcgen::SanType::URI(ADA.try_into().expect("URI"))];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.signed_by(&key, &root).expect("cert");
    Issued {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

/// A TCP connection to the server that sends nothing, or half a
/// ClientHello (a record header announcing 512 bytes, and 6 of them).
async fn stalled_connection(s: &TestServer, half_hello: bool) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt as _;
    let mut conn = tokio::net::TcpStream::connect(s.addr)
        .await
        .expect("TCP connect");
    if half_hello {
        conn.write_all(&[
            0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
        ])
        .await
        .expect("write");
    }
    conn
}

/// Does the server close `conn` (end of stream or reset) within `limit`?
async fn closed_within(conn: &mut tokio::net::TcpStream, limit: std::time::Duration) -> bool {
    use tokio::io::AsyncReadExt as _;
    let mut buf = [0u8; 512];
    loop {
        match tokio::time::timeout(limit, conn.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            // An alert, say: keep reading until the close.
            Ok(Ok(_)) => {}
        }
    }
}

fn identity(ca_pem: &str, issued: &Issued) -> ClientIdentity {
    ClientIdentity {
        ca_pem: ca_pem.as_bytes().to_vec(),
        cert_pem: issued.cert_pem.as_bytes().to_vec(),
        key_pem: issued.key_pem.as_bytes().to_vec(),
    }
}

/// WhoAmI presenting `issued`, trusting the test CA.
async fn whoami(s: &TestServer, issued: &Issued) -> Outcome {
    whoami_on(s.connect_with(issued).await).await
}

async fn whoami_on(clients: Result<Clients, client::ClientError>) -> Outcome {
    match clients {
        Ok(mut c) => classify(c.staff.who_am_i(pb::WhoAmIRequest {}).await),
        Err(e) => Outcome::NoConnection(e.to_string()),
    }
}

/// WhoAmI over a channel built by hand: trusting the test CA, presenting
/// `issued` if given and no certificate at all otherwise.
async fn whoami_without_certificate(s: &TestServer, issued: Option<&Issued>) -> Outcome {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(s.ca.cert_pem()))
        .domain_name("127.0.0.1");
    if let Some(issued) = issued {
        tls = tls.identity(Identity::from_pem(&issued.cert_pem, &issued.key_pem));
    }
    let endpoint = Endpoint::from_shared(s.server_url())
        .expect("url")
        .tls_config(tls)
        .expect("tls config");
    match endpoint.connect().await {
        Ok(channel) => classify(
            pb::staff_service_client::StaffServiceClient::new(channel)
                .who_am_i(pb::WhoAmIRequest {})
                .await,
        ),
        Err(e) => Outcome::NoConnection(client::error_chain(&e)),
    }
}

fn classify(r: Result<tonic::Response<pb::WhoAmIResponse>, tonic::Status>) -> Outcome {
    match r {
        Ok(r) => {
            let r = r.into_inner();
            Outcome::Served(format!("{}/{}", r.kind, r.name))
        }
        // A status the client made up because the connection failed
        // carries the transport error as its source; one the server sent
        // does not.
        Err(st) if std::error::Error::source(&st).is_some() => {
            Outcome::NoConnection(format!("{st}"))
        }
        Err(st) => Outcome::Refused(st.code(), st.message().to_owned()),
    }
}

async fn assert_served(s: &TestServer, issued: &Issued) {
    assert_eq!(
        whoami(s, issued).await,
        Outcome::Served(format!("staff/{ADMIN}")),
        "control: a good certificate for {ADA} is served"
    );
}

fn assert_no_connection(what: &str, outcome: Outcome) {
    assert!(
        matches!(outcome, Outcome::NoConnection(_)),
        "{what}: expected the handshake to fail, got {outcome:?}"
    );
}

/// The server is unaffected: the enrolled admin is still served.
async fn admin_still_served(s: &TestServer) {
    assert_eq!(
        whoami_on(Ok(s.admin().await)).await,
        Outcome::Served(format!("staff/{ADMIN}")),
        "the admin is still served"
    );
}
