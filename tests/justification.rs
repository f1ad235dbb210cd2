//! Justification end to end over mutual TLS: a request's reason code is
//! logged in plain on `grant.requested` and shown by `grant show` and
//! `grant list --json`; a tenant may require one; a tenant's ticket pattern
//! is set (admins only), logged as `tenant.justification_set`, shown by
//! `tenant list`, applied to requests (a non-matching ticket is refused
//! with the pattern named), cleared, and rebuilt from the log after a
//! restart; hostile patterns are refused with what is wrong.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use daypass::{
    client::Clients,
    identity::PrincipalKind,
    pb::{self, ApprovalPolicy, Role},
};
use tonic::Code;

fn ticketed(tenant: &str, ticket: &str, code: &str) -> pb::RequestGrantRequest {
    pb::RequestGrantRequest {
        ticket: ticket.into(),
        reason_code: code.into(),
        ..grant_request(tenant, "customer cannot log in", 3600)
    }
}

async fn try_request(
    c: &mut Clients,
    r: pb::RequestGrantRequest,
) -> Result<pb::Grant, tonic::Status> {
    c.grants.request_grant(r).await.map(|r| r.into_inner())
}

async fn set(
    admin: &mut Clients,
    tenant: &str,
    pattern: Option<&str>,
    require_code: Option<bool>,
) -> Result<pb::Tenant, tonic::Status> {
    admin
        .tenants
        .set_tenant_justification(pb::SetTenantJustificationRequest {
            tenant: tenant.into(),
            ticket_pattern: pattern.map(str::to_owned),
            require_reason_code: require_code,
        })
        .await
        .map(|r| r.into_inner())
}

fn invalid(r: Result<impl std::fmt::Debug, tonic::Status>, says: &str) {
    let e = r.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(
        e.message().contains(says),
        "{:?} lacks {says:?}",
        e.message()
    );
}

/// `daypass WORDS` as the admin, against the server as it runs now.
async fn as_admin(s: &TestServer, words: &[&str]) -> std::process::Output {
    let dir = s.dir.path().to_owned();
    let mut v: Vec<String> = words.iter().map(|w| (*w).to_owned()).collect();
    v.extend(s.cli_flags(&dir, PrincipalKind::Staff, ADMIN));
    cli::run_async(dir, v).await
}

async fn tenant_record(s: &TestServer, name: &str) -> pb::Tenant {
    s.admin()
        .await
        .tenants
        .list_tenants(pb::ListTenantsRequest {})
        .await
        .unwrap()
        .into_inner()
        .tenants
        .into_iter()
        .find(|t| t.name == name)
        .unwrap()
}

#[tokio::test]
async fn a_reason_code_is_logged_in_plain_and_shown() {
    let s = TestServer::start().await;
    s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let mut carol = s.enrol("carol", Role::Support).await;
    let g = try_request(&mut carol, ticketed("acme", "", "incident"))
        .await
        .unwrap();
    assert_eq!(g.reason_code, "incident");
    assert_eq!(get_grant(&mut carol, &g.id).await.reason_code, "incident");

    let entries = s.entries().await;
    let requested = entries
        .iter()
        .find(|e| e.entry.kind == "grant.requested")
        .unwrap();
    assert_eq!(requested.entry.details["reason_code"], "incident");
    // A category, not personal data: never sealed.
    let opened = requested
        .entry
        .sealed
        .as_ref()
        .map(|s| s.opened.clone())
        .unwrap_or_default();
    assert!(!opened.contains("reason_code"), "{opened:?}");
    assert!(!daypass::domain::detail::is_personal("reason_code"));

    // `audit replay` tells it with the grant's story.
    let stories = daypass::audit::replay::replay(entries.clone(), &Default::default());
    let story = stories.iter().find(|st| st.grant == g.id).unwrap();
    assert_eq!(story.reason_code, "incident");
    let told = daypass::audit::replay::render(&stories);
    assert!(told.contains("  code    incident"), "{told}");

    // A code that is not one of the four is refused, and none is fine.
    release(&mut carol, &g.id).await;
    invalid(
        try_request(&mut carol, ticketed("acme", "", "curiosity")).await,
        "reason_code \"curiosity\" is not one of customer-request, incident, maintenance, security",
    );
    let plain = try_request(&mut carol, ticketed("acme", "", ""))
        .await
        .unwrap();
    assert_eq!(plain.reason_code, "");
    let entries = s.entries().await;
    let last_request = entries
        .iter()
        .rev()
        .find(|e| e.entry.kind == "grant.requested")
        .unwrap();
    assert!(!last_request.entry.details.contains_key("reason_code"));
    release(&mut carol, &plain.id).await;

    // The CLI: --code on request, shown by `grant show` and `grant list --json`.
    let dir = s.dir.path();
    let flags = s.cli_flags(dir, PrincipalKind::Staff, "carol");
    let run = |words: &[&str]| {
        let mut v: Vec<String> = words.iter().map(|w| (*w).to_owned()).collect();
        v.extend(flags.iter().cloned());
        cli::run_async(dir.to_owned(), v)
    };
    let out = run(&[
        "--json",
        "grant",
        "request",
        "acme",
        "--reason",
        "INC-9",
        "--code",
        "maintenance",
    ])
    .await;
    let made: serde_json::Value = serde_json::from_str(&cli::assert_ok(&out, "request")).unwrap();
    assert_eq!(made["reason_code"], "maintenance", "{made}");
    let id = made["id"].as_str().unwrap().to_owned();
    let shown = cli::assert_ok(&run(&["grant", "show", &id]).await, "show");
    assert!(
        shown
            .lines()
            .any(|l| l.contains("reason code") && l.contains("maintenance")),
        "{shown}"
    );
    let listed = cli::assert_ok(&run(&["--json", "grant", "list"]).await, "list");
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    let codes: Vec<_> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["reason_code"].clone())
        .collect();
    assert!(codes.contains(&"maintenance".into()), "{listed}");
    assert!(codes.contains(&"incident".into()), "{listed}");
    assert!(codes.contains(&serde_json::Value::Null), "{listed}");
    // A typo fails before connecting, naming the choices.
    let out = run(&[
        "grant", "request", "acme", "--reason", "x", "--code", "oops",
    ])
    .await;
    assert!(!out.status.success());
    assert!(
        cli::text(&out.stderr).contains("customer-request, incident, maintenance, security"),
        "{}",
        cli::text(&out.stderr)
    );
}

#[tokio::test]
async fn a_tenant_may_require_a_reason_code() {
    let s = TestServer::start().await;
    s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    s.add_tenant("globex", ApprovalPolicy::Auto, false).await;
    let mut admin = s.admin().await;
    let t = set(&mut admin, "acme", None, Some(true)).await.unwrap();
    assert!(t.require_reason_code);
    assert_eq!(t.ticket_pattern, "");

    let mut carol = s.enrol("carol", Role::Support).await;
    invalid(
        try_request(&mut carol, ticketed("acme", "", "")).await,
        "reason_code is required for tenant acme: one of customer-request, incident, maintenance, security",
    );
    // Only where required: globex takes a request without one.
    let other = try_request(&mut carol, ticketed("globex", "", ""))
        .await
        .unwrap();
    assert_eq!(other.reason_code, "");
    let g = try_request(&mut carol, ticketed("acme", "", "security"))
        .await
        .unwrap();
    assert_eq!(g.reason_code, "security");

    let entries = s.entries().await;
    let set_entry = entries
        .iter()
        .find(|e| e.entry.kind == "tenant.justification_set")
        .unwrap();
    assert_eq!(set_entry.entry.tenant, "acme");
    assert_eq!(set_entry.entry.details["require_reason_code"], "true");
    assert_eq!(set_entry.entry.details["ticket_pattern"], "");
    assert_eq!(set_entry.entry.actor, format!("staff/{ADMIN}"));
    let refused = entries
        .iter()
        .find(|e| e.entry.kind == "call.refused" && e.entry.details["call"] == "RequestGrant")
        .unwrap();
    assert_eq!(refused.entry.details["code"], "invalid-argument");

    // Turned off again, a request without a code is taken.
    release(&mut carol, &g.id).await;
    let t = set(&mut admin, "acme", None, Some(false)).await.unwrap();
    assert!(!t.require_reason_code);
    try_request(&mut carol, ticketed("acme", "", ""))
        .await
        .unwrap();
    assert!(s.verify_chain().await.ok);
}

#[tokio::test]
async fn a_ticket_pattern_is_set_applied_cleared_and_survives_a_restart() {
    let mut s = TestServer::start().await;
    s.add_tenant("acme", ApprovalPolicy::Auto, true).await;
    let mut admin = s.admin().await;
    let t = set(&mut admin, "acme", Some("^INC-[0-9]+$"), None)
        .await
        .unwrap();
    assert_eq!(t.ticket_pattern, "^INC-[0-9]+$");
    assert!(t.receipt.is_some());

    let mut carol = s.enrol("carol", Role::Support).await;
    let e = try_request(&mut carol, ticketed("acme", "JIRA-7", ""))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(
        e.message(),
        "the ticket does not match tenant acme's ticket pattern ^INC-[0-9]+$"
    );
    // The refusal is logged without the ticket (personal data).
    let entries = s.entries().await;
    let refused = entries
        .iter()
        .rev()
        .find(|e| e.entry.kind == "call.refused")
        .unwrap();
    assert!(!refused.entry.details["message"].contains("JIRA-7"));
    // require_ticket still decides whether one is needed.
    invalid(
        try_request(&mut carol, ticketed("acme", "", "")).await,
        "requires a ticket reference",
    );
    let g = try_request(&mut carol, ticketed("acme", "INC-42", ""))
        .await
        .unwrap();
    release(&mut carol, &g.id).await;

    // Setting the other rule keeps the pattern; the entry says both.
    set(&mut admin, "acme", None, Some(true)).await.unwrap();
    let entries = s.entries().await;
    let last_set = entries
        .iter()
        .rev()
        .find(|e| e.entry.kind == "tenant.justification_set")
        .unwrap();
    assert_eq!(last_set.entry.details["ticket_pattern"], "^INC-[0-9]+$");
    assert_eq!(last_set.entry.details["require_reason_code"], "true");

    // `tenant list` shows it, in the table and as JSON.
    let table = cli::assert_ok(&as_admin(&s, &["tenant", "list"]).await, "tenant list");
    assert!(
        table.contains("PATTERN") && table.contains("^INC-[0-9]+$"),
        "{table}"
    );
    let json = cli::assert_ok(
        &as_admin(&s, &["--json", "tenant", "list"]).await,
        "tenant list --json",
    );
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let acme = json
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "acme")
        .unwrap();
    assert_eq!(acme["ticket_pattern"], "^INC-[0-9]+$", "{json}");
    assert_eq!(acme["require_reason_code"], true, "{json}");

    // The server rebuilds the rules from the log and starts (records
    // match), then applies them as before.
    s.restart().await;
    let t = tenant_record(&s, "acme").await;
    assert_eq!(t.ticket_pattern, "^INC-[0-9]+$");
    assert!(t.require_reason_code);
    let mut carol = s.staff("carol").await;
    invalid(
        try_request(&mut carol, ticketed("acme", "INC-42b", "incident")).await,
        "ticket pattern ^INC-[0-9]+$",
    );

    // Cleared through the CLI: any ticket again.
    let out = as_admin(
        &s,
        &[
            "tenant",
            "justification",
            "acme",
            "--ticket-pattern",
            "",
            "--require-code=false",
        ],
    )
    .await;
    let said = cli::assert_ok(&out, "tenant justification");
    assert!(said.contains("updated tenant acme"), "{said}");
    assert!(!said.contains("matching"), "{said}");
    let t = tenant_record(&s, "acme").await;
    assert_eq!(t.ticket_pattern, "");
    assert!(!t.require_reason_code);
    try_request(&mut carol, ticketed("acme", "JIRA-7", ""))
        .await
        .unwrap();

    s.restart().await;
    assert_eq!(tenant_record(&s, "acme").await.ticket_pattern, "");
    assert!(s.verify_chain().await.ok);
}

#[tokio::test]
async fn hostile_patterns_are_refused_with_what_is_wrong() {
    let s = TestServer::start().await;
    s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let mut admin = s.admin().await;
    invalid(
        set(&mut admin, "acme", Some("^INC-[0-9+$"), None).await,
        "ticket_pattern is not a valid regular expression: unclosed character class",
    );
    invalid(
        set(&mut admin, "acme", Some(&"a".repeat(201)), None).await,
        "at most 200",
    );
    invalid(
        set(&mut admin, "acme", Some("a{1000}{1000}"), None).await,
        "size limit",
    );
    invalid(
        set(&mut admin, "acme", Some("INC-\u{7}"), None).await,
        "control characters",
    );
    invalid(set(&mut admin, "acme", None, None).await, "nothing to set");
    invalid(set(&mut admin, "", Some("x"), None).await, "tenant");
    let e = set(&mut admin, "nobody", Some("x"), None)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    // Nothing was set.
    let t = tenant_record(&s, "acme").await;
    assert_eq!(t.ticket_pattern, "");
    let entries = s.entries().await;
    assert!(
        !entries
            .iter()
            .any(|e| e.entry.kind == "tenant.justification_set")
    );
    // Only admins set the rules (the matrix covers every role; one here).
    let mut carol = s.enrol("carol", Role::Support).await;
    let e = set(&mut carol, "acme", Some("x"), None).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    let mut acme = s.tenant("acme").await;
    let e = set(&mut acme, "acme", Some("x"), None).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
}
