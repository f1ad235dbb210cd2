//! Connection-level identity: every way a peer can present the wrong
//! certificate is refused, cleanly, and the server keeps serving others.

mod common;

use common::*;
use daypass::{
    client::{self, ClientIdentity},
    pb::{self, Role},
    pki::{CertSpec, CertificateAuthority, Issued},
};
use time::{Duration, OffsetDateTime};
use tonic::{
    Code,
    transport::{Certificate, ClientTlsConfig, Endpoint},
};

/// WhoAmI with `issued`; Err(None) when the connection or handshake failed,
/// Err(Some(code)) when the server answered with a status.
async fn whoami(s: &TestServer, issued: &Issued) -> Result<(), Option<Code>> {
    let mut c = s.connect_with(issued).await.map_err(|_| None)?;
    match c.staff.who_am_i(pb::WhoAmIRequest {}).await {
        Ok(_) => Ok(()),
        Err(st) if st.code() == Code::Unavailable || st.code() == Code::Unknown => Err(None),
        Err(st) => Err(Some(st.code())),
    }
}

async fn server_still_serves(s: &TestServer) {
    let mut admin = s.admin().await;
    let me = admin
        .staff
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .expect("admin still served");
    assert_eq!(me.into_inner().name, ADMIN);
}

fn spec(uris: &[&str]) -> CertSpec {
    let mut spec = CertSpec::client("spiffe://test.daypass/staff/ada", 1);
    spec.uris = uris.iter().map(|u| u.to_string()).collect();
    spec
}

#[tokio::test]
async fn certificates_that_do_not_pass_tls_are_refused() {
    let s = TestServer::start().await;

    // No client certificate at all.
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(s.ca.cert_pem()))
        .domain_name("127.0.0.1");
    let channel = Endpoint::from_shared(s.server_url())
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await;
    match channel {
        Err(_) => {}
        Ok(ch) => {
            let r = pb::staff_service_client::StaffServiceClient::new(ch)
                .who_am_i(pb::WhoAmIRequest {})
                .await;
            assert!(r.is_err(), "a call without a client certificate must fail");
        }
    }
    server_still_serves(&s).await;

    // Signed by another CA, for an enrolled name.
    let other = CertificateAuthority::generate("other CA").unwrap();
    let foreign = other
        .issue(&spec(&["spiffe://test.daypass/staff/ada"]))
        .unwrap();
    assert_eq!(whoami(&s, &foreign).await, Err(None));
    server_still_serves(&s).await;

    // Expired, and not yet valid, from the right CA.
    let now = OffsetDateTime::now_utc();
    let mut expired = spec(&["spiffe://test.daypass/staff/ada"]);
    expired.not_before = now - Duration::days(10);
    expired.not_after = now - Duration::days(1);
    assert_eq!(whoami(&s, &s.ca.issue(&expired).unwrap()).await, Err(None));
    let mut future = spec(&["spiffe://test.daypass/staff/ada"]);
    future.not_before = now + Duration::days(1);
    future.not_after = now + Duration::days(10);
    assert_eq!(whoami(&s, &s.ca.issue(&future).unwrap()).await, Err(None));

    // A server-only certificate (no clientAuth usage) is not a client certificate.
    let mut server_only = spec(&["spiffe://test.daypass/staff/ada"]);
    server_only.client_auth = false;
    server_only.server_auth = true;
    assert_eq!(
        whoami(&s, &s.ca.issue(&server_only).unwrap()).await,
        Err(None)
    );
    server_still_serves(&s).await;
}

#[tokio::test]
async fn certificates_without_exactly_one_valid_principal_are_unauthenticated() {
    let s = TestServer::start().await;
    s.enrol("alice", Role::Support).await;
    let cases: &[(&str, &[&str])] = &[
        ("no URI SAN", &[]),
        (
            "two principals",
            &[
                "spiffe://test.daypass/staff/ada",
                "spiffe://test.daypass/staff/alice",
            ],
        ),
        ("wrong trust domain", &["spiffe://other.domain/staff/ada"]),
        ("unknown kind", &["spiffe://test.daypass/robot/ada"]),
        ("malformed name", &["spiffe://test.daypass/staff/Ada"]),
        ("extra path", &["spiffe://test.daypass/staff/ada/x"]),
    ];
    for (what, uris) in cases {
        let cert = s.ca.issue(&spec(uris)).unwrap();
        assert_eq!(
            whoami(&s, &cert).await,
            Err(Some(Code::Unauthenticated)),
            "{what}"
        );
    }
    // A non-spiffe URI beside a valid principal is ignored.
    let cert =
        s.ca.issue(&spec(&[
            "https://example.com/x",
            "spiffe://test.daypass/staff/ada",
        ]))
        .unwrap();
    assert_eq!(whoami(&s, &cert).await, Ok(()));
    server_still_serves(&s).await;

    let entries = s.entries().await;
    let unauthenticated = entries
        .iter()
        .filter(|e| e.entry.kind == "call.refused" && e.entry.actor == "unauthenticated")
        .count();
    assert_eq!(unauthenticated, cases.len(), "each refusal is logged");
}

#[tokio::test]
async fn the_client_refuses_a_server_it_does_not_trust() {
    let s = TestServer::start().await;
    let other = CertificateAuthority::generate("other CA").unwrap();
    let issued = s.issue(daypass::identity::PrincipalKind::Staff, ADMIN);
    let id = ClientIdentity {
        ca_pem: other.cert_pem().as_bytes().to_vec(),
        cert_pem: issued.cert_pem.into_bytes(),
        key_pem: issued.key_pem.into_bytes(),
    };
    match client::connect(&s.server_url(), &id).await {
        Err(e) => assert!(e.to_string().contains("cannot connect"), "{e}"),
        Ok(mut c) => {
            let r = c.staff.who_am_i(pb::WhoAmIRequest {}).await;
            assert!(r.is_err(), "an untrusted server must not be talked to");
        }
    }
    // And plain http is refused by the client before anything is sent.
    let plain = client::connect(&s.server_url().replace("https", "http"), &id).await;
    assert!(plain.is_err());
    server_still_serves(&s).await;
}
