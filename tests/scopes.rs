//! Scoped grants end to end over mutual TLS: a request names scopes
//! (`--scope db:read --scope 'ssh:web-*'`); the grant, its token (signed
//! as `daypass-scoped-grant-v1`, so a verifier that ignores scopes refuses
//! it) and its grant certificate (a `/scoped-grant/` URI and one
//! `/grant-scope/` URI per scope) carry them; the tenant library refuses an
//! out-of-scope resource offline and admits and reports an in-scope one;
//! `ValidateGrant` denies `out_of_scope` online, allows in scope and without
//! a resource, and logs the resource; a grant without scopes covers the
//! whole tenant; the scopes survive a restart and replay in the log.

#![allow(clippy::unwrap_used)]

mod common;

use std::{sync::Arc, time::Duration};

use common::*;
use daypass::{
    client::Clients,
    clock::Clock,
    identity::PrincipalKind,
    pb::{self, ApprovalPolicy, Role},
};
use daypass_tenant::{
    Credential, Feed, FeedHandle, KeySet, Refusal, Reporter, RequireGrant, Resource, Verifier,
    claims::{GRANT_ASSERTION, GrantClaims, SCOPED_GRANT_ASSERTION},
    gateway::{BrokerIdentity, connect_broker},
    paseto,
};
use tonic::{
    Code,
    codegen::http::{self, HeaderMap, Uri},
    transport::Channel,
};

/// Generous bound on event-driven waits (nothing here waits for time).
const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn a_scoped_token_is_refused_offline_outside_its_scopes() {
    let s = TestServer::start().await;
    let mut alice = s.enrol("alice", Role::Support).await;
    s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    // Duplicates dropped, sorted.
    let g = request_scoped(&mut alice, "acme", &["ssh:web-*", "db:read", "ssh:web-*"]).await;
    assert_eq!(g.scopes, ["db:read", "ssh:web-*"]);
    assert_eq!(get_grant(&mut alice, &g.id).await.scopes, g.scopes);

    // The token carries them, under the scoped assertion: a verifier that
    // knows only daypass-grant-v1 (and would ignore the claim) refuses it.
    let claims = token_payload(&g.token);
    assert_eq!(
        claims.scopes,
        Some(vec!["db:read".to_owned(), "ssh:web-*".to_owned()])
    );
    let (verifier, _feed) = follow(&s, "acme").await;
    let key = verifier.keys().token_keys[0].public_key;
    assert!(
        matches!(
            paseto::verify(&key, &g.token, None, GRANT_ASSERTION),
            Err(paseto::Error::BadSignature)
        ),
        "an old verifier refuses a scoped token"
    );
    assert!(paseto::verify(&key, &g.token, None, SCOPED_GRANT_ASSERTION).is_ok());

    let admitted = verifier.verify_token(&g.token).expect("a valid grant");
    assert_eq!(admitted.credential, Credential::Token);
    assert_eq!(admitted.scopes.strings(), g.scopes);
    let web1 = Resource::parse("ssh:web-1").unwrap();
    let write = Resource::parse("db:write").unwrap();
    assert!(admitted.permits(&web1));
    assert!(admitted.permits(&Resource::parse("db:read").unwrap()));
    assert!(!admitted.permits(&write));
    assert!(!admitted.permits(&Resource::parse("ssh:web-1:root").unwrap()));
    assert_eq!(
        admitted.require(&write),
        Err(Refusal::OutOfScope {
            resource: "db:write".into(),
            scopes: "db:read ssh:web-*".into()
        })
    );

    // The tower layer: the resource comes from the call (here a metadata
    // key); out of scope is refused without asking the broker, in scope
    // admitted and reported with the resource.
    let reporter = Reporter::new(tenant_channel(&s, "acme"));
    let gate = RequireGrant::new(verifier.clone(), reporter.clone()).for_resources(
        |_: &Uri, metadata: &HeaderMap| {
            let r = metadata.get("x-resource")?.to_str().ok()?;
            Resource::parse(r).ok()
        },
    );
    let refused = gate
        .admit(&call(&g.token, Some("db:write")))
        .expect_err("out of scope");
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert_eq!(
        refused.message(),
        "out of scope: the grant covers db:read ssh:web-*, not db:write"
    );
    let refused = gate
        .admit(&call(&g.token, None))
        .expect_err("names no resource");
    assert!(
        refused.message().contains("names no resource"),
        "{refused:?}"
    );
    assert_eq!(reporter.stats().queued, 0, "refusals are not accesses");
    let a = gate
        .admit(&call(&g.token, Some("ssh:web-1")))
        .expect("in scope");
    assert_eq!(a.grant_id, g.id);
    let stats = tokio::time::timeout(WAIT, reporter.flush())
        .await
        .expect("flushed");
    assert_eq!((stats.acknowledged, stats.failed), (1, 0), "{stats:?}");
    let recorded: Vec<_> = s
        .entries()
        .await
        .into_iter()
        .filter(|e| e.entry.kind == "access.recorded")
        .collect();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].entry.details["resource"], "ssh:web-1");
    assert_eq!(recorded[0].entry.details["action"], "/acme.Ops/Run");

    // A layer that names no resources admits no scoped grant at all.
    let blind = RequireGrant::new(verifier, reporter);
    assert!(blind.admit(&call(&g.token, Some("ssh:web-1"))).is_err());
}

#[tokio::test]
async fn a_grant_without_scopes_covers_the_whole_tenant_offline() {
    let s = TestServer::start().await;
    let mut bob = s.enrol("bob", Role::Support).await;
    s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let g = request(&mut bob, "acme", "INC-2").await;
    assert!(g.scopes.is_empty());
    assert_eq!(token_payload(&g.token).scopes, None, "no scopes claim");
    let (verifier, _feed) = follow(&s, "acme").await;
    let a = verifier.verify_token(&g.token).expect("admitted");
    assert!(a.scopes.is_whole_tenant());
    assert!(a.permits(&Resource::parse("anything:at:all").unwrap()));
    let reporter = Reporter::new(tenant_channel(&s, "acme"));
    let gate = RequireGrant::new(verifier, reporter)
        .for_resources(daypass_tenant::layer::grpc_method_resource);
    gate.admit(&call(&g.token, None)).expect("whole tenant");
}

#[tokio::test]
async fn validate_grant_denies_out_of_scope_online_and_logs_the_resource() {
    let s = TestServer::start().await;
    let mut alice = s.enrol("alice", Role::Support).await;
    let mut bob = s.enrol("bob", Role::Support).await;
    let mut acme = s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let scoped = request_scoped(&mut alice, "acme", &["db:read", "ssh:web-*"]).await;
    let whole = request(&mut bob, "acme", "INC-3").await;

    let v = validate_for(&mut acme, &scoped.id, "ssh:web-7").await;
    assert!(v.allowed, "in scope");
    assert_eq!(v.scopes, ["db:read", "ssh:web-*"], "scopes echoed");
    let v = validate_for(&mut acme, &scoped.id, "db:write").await;
    assert!(!v.allowed);
    assert_eq!(deny_reason(&v), pb::DenyReason::OutOfScope);
    assert_eq!(v.grant_id, scoped.id);
    assert_eq!(v.scopes, ["db:read", "ssh:web-*"]);
    let out_seq = v.log_seq;
    let v = validate(&mut acme, &scoped.id).await;
    assert!(v.allowed, "no resource: the scopes are not checked");
    // By staff name too.
    let by_staff = acme
        .grants
        .validate_grant(pb::ValidateGrantRequest {
            subject: Some(pb::validate_grant_request::Subject::Staff("alice".into())),
            resource: "ssh:db-1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deny_reason(&by_staff), pb::DenyReason::OutOfScope);
    // A grant without scopes allows any resource.
    let v = validate_for(&mut acme, &whole.id, "db:write").await;
    assert!(v.allowed && v.scopes.is_empty(), "{v:?}");
    // A malformed resource is refused, not decided.
    let err = acme
        .grants
        .validate_grant(pb::ValidateGrantRequest {
            resource: "db:*".into(),
            ..validate_request(&scoped.id)
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("no `*`"), "{err:?}");

    // The log: each decision names the resource; the denial says why.
    let entries = s.entries().await;
    let denied = entries.iter().find(|e| e.entry.seq == out_seq).unwrap();
    assert_eq!(denied.entry.kind, "validation.denied");
    assert_eq!(denied.entry.details["deny_reason"], "out_of_scope");
    assert_eq!(denied.entry.details["for_resource"], "db:write");
    assert_eq!(denied.entry.details["grant"], scoped.id);
    let allowed: Vec<_> = entries
        .iter()
        .filter(|e| e.entry.kind == "validation.allowed")
        .map(|e| e.entry.details.get("for_resource").cloned())
        .collect();
    assert_eq!(
        allowed,
        [Some("ssh:web-7".into()), None, Some("db:write".into())]
    );
    assert!(entries.iter().any(|e| {
        e.entry.kind == "call.refused"
            && e.entry.details["call"] == "ValidateGrant"
            && e.entry.details["code"] == "invalid-argument"
    }));

    // Validity comes first: an expired scoped grant is denied as expired,
    // whatever the resource.
    s.clock.advance_secs(24 * 3600);
    let v = validate_for(&mut acme, &scoped.id, "db:write").await;
    assert_eq!(deny_reason(&v), pb::DenyReason::Expired);
    assert!(s.verify_chain().await.ok);
}

#[tokio::test]
async fn a_scoped_grant_certificate_carries_its_scopes() {
    let s = TestServer::start().await;
    let mut alice = s.enrol("alice", Role::Support).await;
    let mut bob = s.enrol("bob", Role::Support).await;
    s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let g = request_scoped(&mut alice, "acme", &["ssh:web-*", "db:read"]).await;
    let (cert, der) = certificate(&mut alice, &g.id).await;
    assert_eq!(cert.scopes, ["db:read", "ssh:web-*"]);
    let uris = uri_sans(&der);
    let issuer = format!("spiffe://{TRUST_DOMAIN}");
    assert!(
        uris.contains(&format!("{issuer}/scoped-grant/acme/{}", g.id)),
        "{uris:?}"
    );
    assert!(
        uris.contains(&format!("{issuer}/grant-scope/db:read")),
        "{uris:?}"
    );
    assert!(
        uris.contains(&format!("{issuer}/grant-scope/ssh:web-*")),
        "{uris:?}"
    );
    assert!(
        !uris.iter().any(|u| u.contains("/grant/")),
        "no whole-tenant grant URI for an old verifier to take: {uris:?}"
    );
    let (verifier, _feed) = follow(&s, "acme").await;
    let a = verifier.verify_certificate(&der).expect("admitted");
    assert_eq!(a.credential, Credential::Certificate);
    assert_eq!(a.grant_id, g.id);
    assert_eq!(a.scopes.strings(), ["db:read", "ssh:web-*"]);
    assert!(a.permits(&Resource::parse("ssh:web-2").unwrap()));
    assert!(!a.permits(&Resource::parse("ssh:db-2").unwrap()));

    // A grant of the whole tenant: the /grant/ URI, no scope URIs.
    let whole = request(&mut bob, "acme", "INC-4").await;
    let (cert, der) = certificate(&mut bob, &whole.id).await;
    assert!(cert.scopes.is_empty());
    let uris = uri_sans(&der);
    assert!(uris.contains(&format!("{issuer}/grant/acme/{}", whole.id)));
    assert!(!uris.iter().any(|u| u.contains("grant-scope")), "{uris:?}");
    assert!(
        verifier
            .verify_certificate(&der)
            .unwrap()
            .scopes
            .is_whole_tenant()
    );
}

#[tokio::test]
async fn scopes_are_logged_shown_and_survive_a_restart() {
    let mut s = TestServer::start().await;
    s.enrol("carol", Role::Support).await;
    s.add_tenant("acme", ApprovalPolicy::Peer, false).await;
    let mut dave = s.enrol("dave", Role::Support).await;

    // The CLI: --scope on request, shown by show, list and the queue.
    let dir = s.dir.path();
    let flags = s.cli_flags(dir, PrincipalKind::Staff, "carol");
    let run = |words: &[&str], flags: &[String]| {
        let mut v: Vec<String> = words.iter().map(|w| (*w).to_owned()).collect();
        v.extend(flags.iter().cloned());
        cli::run_async(dir.to_owned(), v)
    };
    let out = run(
        &[
            "--json",
            "grant",
            "request",
            "acme",
            "--reason",
            "INC-9",
            "--scope",
            "ssh:web-*",
            "--scope",
            "db:read",
        ],
        &flags,
    )
    .await;
    let made: serde_json::Value = serde_json::from_str(&cli::assert_ok(&out, "request")).unwrap();
    assert_eq!(made["scopes"], serde_json::json!(["db:read", "ssh:web-*"]));
    let id = made["id"].as_str().unwrap().to_owned();
    let shown = cli::assert_ok(&run(&["grant", "show", &id], &flags).await, "show");
    assert!(
        shown
            .lines()
            .any(|l| l.starts_with("scopes") && l.contains("db:read ssh:web-*")),
        "{shown}"
    );
    let listed = cli::assert_ok(&run(&["grant", "list"], &flags).await, "list");
    assert!(listed.contains("db:read ssh:web-*"), "{listed}");
    let dave_flags = s.cli_flags(dir, PrincipalKind::Staff, "dave");
    let queue = cli::assert_ok(&run(&["grant", "pending"], &dave_flags).await, "pending");
    assert!(
        queue.contains(&id) && queue.contains("db:read ssh:web-*"),
        "the approver sees the scopes: {queue}"
    );
    // A bad scope fails before connecting.
    let out = run(
        &["grant", "request", "acme", "--reason", "x", "--scope", "DB"],
        &flags,
    )
    .await;
    assert!(!out.status.success());
    assert!(
        cli::text(&out.stderr).contains("use only a-z"),
        "{}",
        cli::text(&out.stderr)
    );

    // Approved by a peer: the token carries the scopes.
    let approved = dave
        .grants
        .approve_grant(pb::DecideGrantRequest {
            grant_id: id.clone(),
            note: "ok".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(approved.scopes, ["db:read", "ssh:web-*"]);

    // The log: grant.requested names them, in order, in plain.
    let entries = s.entries().await;
    let requested = entries
        .iter()
        .find(|e| e.entry.kind == "grant.requested" && e.entry.details["grant"] == id)
        .unwrap();
    assert_eq!(requested.entry.details["scopes"], "db:read,ssh:web-*");

    // A restart rebuilds the same grant from the log (the start-up
    // comparison would refuse to serve otherwise).
    s.restart().await;
    let mut carol = s.staff("carol").await;
    let g = get_grant(&mut carol, &id).await;
    assert_eq!(g.scopes, ["db:read", "ssh:web-*"]);
    assert_eq!(
        token_payload(&g.token).scopes,
        Some(vec!["db:read".to_owned(), "ssh:web-*".to_owned()])
    );
    assert!(s.verify_chain().await.ok);
    // Not failed closed: a write is served.
    let revoked = revoke(&mut s.admin().await, &id, "done").await;
    assert_eq!(revoked.scopes, ["db:read", "ssh:web-*"]);
}

/// A forged log: an allowed validation for a resource outside the grant's
/// scopes, or an `out_of_scope` denial for one inside them, is named by
/// seq by the offline `audit verify`.
#[tokio::test]
async fn a_forged_scope_decision_is_named_by_audit_verify() {
    let s = TestServer::start().await;
    let mut alice = s.enrol("alice", Role::Support).await;
    let mut acme = s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let g = request_scoped(&mut alice, "acme", &["db:read"]).await;
    let allowed = validate_for(&mut acme, &g.id, "db:read").await;
    let denied = validate_for(&mut acme, &g.id, "db:write").await;
    assert!(allowed.allowed && !denied.allowed);
    let entries = s.entries().await;
    let dir = tempfile::tempdir().unwrap();
    for (template_seq, resource, says) in [
        (allowed.log_seq, "db:write", "outside grant"),
        (denied.log_seq, "db:read", "is inside grant"),
    ] {
        let mut entries = entries.clone();
        let mut template = entries[template_seq as usize].entry.clone();
        let acme_last = entries
            .iter()
            .rev()
            .find(|e| e.entry.tenant == "acme" || e.entry.actor == "tenant/acme")
            .unwrap()
            .entry
            .seq;
        // Linked into acme's scope like a real one: only the scope rule
        // can object.
        template
            .details
            .insert("scope_prev".into(), format!("acme:{acme_last}"));
        template
            .details
            .insert("for_resource".into(), resource.into());
        let last = entries.last().unwrap().clone();
        let forged = daypass::audit::Entry {
            seq: last.entry.seq + 1,
            timestamp: last.entry.timestamp,
            prev_hash: last.hash,
            ..template
        }
        .seal();
        let forged_seq = forged.entry.seq;
        entries.push(forged);
        let file = dir.path().join(format!("forged-{forged_seq}.jsonl"));
        let mut out = Vec::new();
        for e in &entries {
            daypass::audit::export::write_line(&mut out, e).unwrap();
        }
        std::fs::write(&file, out).unwrap();
        let run = cli::run(dir.path(), ["audit", "verify", file.to_str().unwrap()]);
        let err = cli::one_line_error(&run, "a contradicted export");
        assert!(
            err.contains(&format!("seq {forged_seq}")) && err.contains(says),
            "{err}"
        );
    }
    // The genuine log verifies.
    let file = dir.path().join("genuine.jsonl");
    let mut out = Vec::new();
    for e in &entries {
        daypass::audit::export::write_line(&mut out, e).unwrap();
    }
    std::fs::write(&file, out).unwrap();
    let run = cli::run(dir.path(), ["audit", "verify", file.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(0), "{}", cli::text(&run.stderr));
}

/// A request for `tenant` naming `scopes`, as `holder`.
async fn request_scoped(holder: &mut Clients, tenant: &str, scopes: &[&str]) -> pb::Grant {
    holder
        .grants
        .request_grant(pb::RequestGrantRequest {
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            ..grant_request(tenant, "INC-8: web tier slow", 3600)
        })
        .await
        .expect("requested")
        .into_inner()
}

async fn validate_for(
    tenant: &mut Clients,
    grant_id: &str,
    resource: &str,
) -> pb::ValidateGrantResponse {
    tenant
        .grants
        .validate_grant(pb::ValidateGrantRequest {
            resource: resource.into(),
            ..validate_request(grant_id)
        })
        .await
        .expect("answered")
        .into_inner()
}

/// A call to `/acme.Ops/Run` with `token`, for `resource` (metadata
/// `x-resource`).
fn call(token: &str, resource: Option<&str>) -> http::Request<()> {
    let mut req = http::Request::builder()
        .uri("/acme.Ops/Run")
        .header("authorization", format!("Bearer {token}"));
    if let Some(r) = resource {
        req = req.header("x-resource", r);
    }
    req.body(()).unwrap()
}

/// The claims of a token, read without verifying (tests only).
fn token_payload(token: &str) -> GrantClaims {
    use base64::Engine as _;
    let body = token.trim_start_matches("v4.public.");
    let body = body.split('.').next().expect("body");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(body)
        .expect("base64");
    serde_json::from_slice(&bytes[..bytes.len() - 64]).expect("claims")
}

fn tenant_channel(s: &TestServer, name: &str) -> Channel {
    let issued = s.issue(PrincipalKind::Tenant, name);
    let id = BrokerIdentity {
        ca_pem: s.ca.cert_pem().as_bytes().to_vec(),
        cert_pem: issued.cert_pem.into_bytes(),
        key_pem: issued.key_pem.into_bytes(),
    };
    connect_broker(&s.server_url(), &id).expect("channel")
}

/// A verifier for `tenant` on the test clock, following the broker: keys
/// and a first revocation list in.
async fn follow(s: &TestServer, tenant: &str) -> (Arc<Verifier>, FeedHandle) {
    let verifier = Arc::new(Verifier::new(
        tenant,
        KeySet::default(),
        Arc::new(s.clock.clone()),
    ));
    let feed = Feed::follow(verifier.clone(), tenant_channel(s, tenant));
    tokio::time::timeout(
        WAIT,
        feed.wait_for(|st| st.key_refreshes > 0 && st.lists_applied > 0),
    )
    .await
    .expect("feed ready in time")
    .expect("feed running");
    // The feed's list is fresh on the test clock, which has not moved.
    assert!(
        verifier
            .revocation_list()
            .is_some_and(|(_, at)| at <= s.clock.now())
    );
    (verifier, feed)
}

/// A grant certificate for a key made here: the response and its DER.
async fn certificate(holder: &mut Clients, grant_id: &str) -> (pb::GrantCertificate, Vec<u8>) {
    let key = rcgen::KeyPair::generate().unwrap();
    let csr = rcgen::CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .serialize_request(&key)
        .unwrap()
        .pem()
        .unwrap();
    let issued = holder
        .grants
        .issue_grant_certificate(pb::IssueGrantCertificateRequest {
            grant_id: grant_id.into(),
            csr_pem: csr,
        })
        .await
        .expect("grant certificate")
        .into_inner();
    let (_, pem) = x509_parser::pem::parse_x509_pem(issued.certificate_pem.as_bytes()).unwrap();
    (issued, pem.contents)
}

/// The URI SANs of a DER certificate.
fn uri_sans(der: &[u8]) -> Vec<String> {
    use x509_parser::{extensions::GeneralName, prelude::FromDer};
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(der).unwrap();
    let san = cert.subject_alternative_name().unwrap().unwrap();
    san.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::URI(u) => Some((*u).to_owned()),
            _ => None,
        })
        .collect()
}
