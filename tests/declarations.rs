//! Confidentiality declarations (the privacy policy's "all staff signed a
//! confidentiality declaration"): with `staff.declaration_version` set, a
//! grant is requested, and approved, only for a holder whose record carries
//! that version; declarations are recorded by admins, logged, survive a
//! restart (rebuilt from the log), and a new version must be signed again.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use daypass::pb::{self, ApprovalPolicy, Role};
use tonic::Code;

const DOC: &str = "4f8a3c1e9b2d7a6f5e4c3b2a1908f7e6d5c4b3a29180f7e6d5c4b3a291807f6e";

fn declaration(name: &str, version: &str, signed_on: &str) -> pb::RecordDeclarationRequest {
    pb::RecordDeclarationRequest {
        name: name.into(),
        version: version.into(),
        signed_on: signed_on.into(),
        document_sha256: DOC.into(),
    }
}

async fn try_request(
    c: &mut daypass::client::Clients,
    tenant: &str,
) -> Result<pb::Grant, tonic::Status> {
    c.grants
        .request_grant(grant_request(tenant, "INC-3 disk alarm", 3600))
        .await
        .map(|r| r.into_inner())
}

#[tokio::test]
async fn grants_need_the_current_declaration_and_a_new_version_is_signed_again() {
    let mut s =
        TestServer::start_with(|c| c.staff.declaration_version = Some("2026-1".into())).await;
    s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let mut alice = s.enrol("alice", Role::Support).await;
    let mut admin = s.admin().await;

    // No declaration on record: refused, saying what to do.
    let e = try_request(&mut alice, "acme").await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(
        e.message().contains("confidentiality declaration 2026-1"),
        "{}",
        e.message()
    );
    assert!(e.message().contains("on record: none"), "{}", e.message());
    assert!(
        e.message().contains("daypass staff declare alice"),
        "{}",
        e.message()
    );

    // An older version does not do.
    admin
        .staff
        .record_declaration(declaration("alice", "2025-1", "2025-02-01"))
        .await
        .unwrap();
    let e = try_request(&mut alice, "acme").await.unwrap_err();
    assert!(
        e.message().contains("version 2025-1 signed 2025-02-01"),
        "{}",
        e.message()
    );

    // Malformed, future or for nobody: refused with what to fix.
    let bad = [
        (
            declaration("alice", "2026 1", "2026-01-05"),
            Code::InvalidArgument,
            "version",
        ),
        (
            declaration("alice", "2026-1", "05.01.2026"),
            Code::InvalidArgument,
            "signed_on",
        ),
        (
            declaration("alice", "2026-1", "2999-01-01"),
            Code::InvalidArgument,
            "future",
        ),
        (
            declaration("nobody", "2026-1", "2026-01-05"),
            Code::NotFound,
            "not enrolled",
        ),
        (
            pb::RecordDeclarationRequest {
                document_sha256: "abc".into(),
                ..declaration("alice", "2026-1", "2026-01-05")
            },
            Code::InvalidArgument,
            "document_sha256",
        ),
    ];
    for (req, code, says) in bad {
        let e = admin.staff.record_declaration(req).await.unwrap_err();
        assert_eq!(e.code(), code, "{e:?}");
        assert!(e.message().contains(says), "{}", e.message());
    }
    // Only admins record declarations.
    let e = alice
        .staff
        .record_declaration(declaration("alice", "2026-1", "2026-01-05"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);

    // The current version: granted.
    let rec = admin
        .staff
        .record_declaration(declaration("alice", "2026-1", "2026-01-05"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rec.declaration.as_ref().unwrap().version, "2026-1");
    assert!(rec.receipt.is_some());
    let g = try_request(&mut alice, "acme").await.expect("declared");
    assert_eq!(g.state, pb::GrantState::Active as i32);
    let logged: Vec<_> = s
        .entries()
        .await
        .into_iter()
        .filter(|e| e.entry.kind == "staff.declaration_recorded")
        .collect();
    assert_eq!(logged.len(), 2, "every recorded declaration is in the log");
    let d = &logged[1].entry.details;
    assert_eq!(d["name"], "alice");
    assert_eq!(d["declaration_version"], "2026-1");
    assert_eq!(d["signed_on"], "2026-01-05");
    assert_eq!(d["document_sha256"], DOC);
    assert_eq!(logged[1].entry.actor, format!("staff/{ADMIN}"));
    release(&mut alice, &g.id).await;

    // The record is rebuilt from the log at start-up: the server does not
    // fail closed, and the declaration still counts.
    s.restart().await;
    let mut alice = s.staff("alice").await;
    let g = try_request(&mut alice, "acme")
        .await
        .expect("still declared");
    release(&mut alice, &g.id).await;
    let list = s
        .admin()
        .await
        .staff
        .list_staff(pb::ListStaffRequest {})
        .await
        .unwrap()
        .into_inner();
    let a = list.staff.iter().find(|m| m.name == "alice").unwrap();
    assert_eq!(a.declaration.as_ref().unwrap().signed_on, "2026-01-05");

    // A new version of the text: alice must sign it again.
    s.stop().await;
    s.config.staff.declaration_version = Some("2027-1".into());
    s.start_again().await;
    let mut alice = s.staff("alice").await;
    let e = try_request(&mut alice, "acme").await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("2027-1"), "{}", e.message());
    s.stop().await;
}

#[tokio::test]
async fn a_pending_request_is_not_approved_for_someone_without_the_declaration() {
    // Requested before declarations were required...
    let mut s = TestServer::start().await;
    s.add_tenant("globex", ApprovalPolicy::Approval, false)
        .await;
    let mut bob = s.enrol("bob", Role::Support).await;
    let g = try_request(&mut bob, "globex").await.unwrap();
    assert_eq!(g.state, pb::GrantState::Pending as i32);
    // ...and approved after: refused, and still pending.
    s.stop().await;
    s.config.staff.declaration_version = Some("2026-1".into());
    s.start_again().await;
    let mut admin = s.admin().await;
    let e = admin
        .grants
        .approve_grant(pb::DecideGrantRequest {
            grant_id: g.id.clone(),
            note: "ok".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(
        e.message()
            .starts_with(&format!("cannot approve grant {}", g.id)),
        "{}",
        e.message()
    );
    let still = get_grant(&mut admin, &g.id).await;
    assert_eq!(still.state, pb::GrantState::Pending as i32);
    // Once bob's declaration is recorded, the approval goes through.
    admin
        .staff
        .record_declaration(declaration("bob", "2026-1", "2026-01-05"))
        .await
        .unwrap();
    let approved = admin
        .grants
        .approve_grant(pb::DecideGrantRequest {
            grant_id: g.id.clone(),
            note: "ok".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(approved.state, pb::GrantState::Active as i32);
    s.stop().await;
}

#[tokio::test]
async fn the_cli_hashes_the_document_and_lists_the_declaration() {
    let s = TestServer::start().await;
    s.enrol("carol", Role::Support).await;
    let dir = s.dir.path();
    std::fs::write(dir.join("signed.pdf"), b"%PDF-1.7 carol signed").unwrap();
    let conn = |mut v: Vec<String>| {
        v.extend(s.cli_flags(dir, daypass::identity::PrincipalKind::Staff, ADMIN));
        v
    };
    let args = conn(
        [
            "staff",
            "declare",
            "carol",
            "--version",
            "2026-1",
            "--signed-on",
            "2026-01-05",
            "--document",
        ]
        .map(String::from)
        .into_iter()
        .chain([dir.join("signed.pdf").display().to_string()])
        .collect(),
    );
    let out = cli::run_async(dir.to_owned(), args).await;
    let said = cli::assert_ok(&out, "staff declare");
    let sha = hex::encode(ring::digest::digest(
        &ring::digest::SHA256,
        b"%PDF-1.7 carol signed",
    ));
    assert!(said.contains(&sha), "{said}");
    let out = cli::run_async(dir.to_owned(), conn(vec!["staff".into(), "list".into()])).await;
    let table = cli::assert_ok(&out, "staff list");
    assert!(table.contains("DECLARATION"), "{table}");
    assert!(table.contains("2026-1 (2026-01-05)"), "{table}");
}

#[tokio::test]
async fn a_tenant_may_require_a_declaration_when_the_company_does_not() {
    let mut s = TestServer::start().await;
    let mut admin = s.admin().await;
    admin
        .tenants
        .add_tenant(pb::AddTenantRequest {
            name: "acme".into(),
            approval: ApprovalPolicy::Auto as i32,
            require_ticket: false,
            require_declaration: true,
            ..Default::default()
        })
        .await
        .unwrap();
    s.add_tenant("globex", ApprovalPolicy::Auto, false).await;
    let mut alice = s.enrol("alice", Role::Support).await;
    let e = try_request(&mut alice, "acme").await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(
        e.message().contains("which tenant acme requires"),
        "{}",
        e.message()
    );
    // Another tenant does not ask for it.
    let g = try_request(&mut alice, "globex")
        .await
        .expect("globex does not require it");
    release(&mut alice, &g.id).await;
    // Any declaration on record satisfies the tenant's rule.
    admin
        .staff
        .record_declaration(declaration("alice", "2025-1", "2025-02-01"))
        .await
        .unwrap();
    let g = try_request(&mut alice, "acme").await.expect("declared");
    release(&mut alice, &g.id).await;
    // The tenant's rule is logged and rebuilt from the log at start-up.
    let added = s
        .entries()
        .await
        .into_iter()
        .find(|e| e.entry.kind == "tenant.added" && e.entry.tenant == "acme")
        .unwrap();
    assert_eq!(added.entry.details["require_declaration"], "true");
    s.restart().await;
    let mut admin = s.admin().await;
    let t = admin
        .tenants
        .update_tenant(pb::UpdateTenantRequest {
            name: "globex".into(),
            approval: 0,
            require_ticket: None,
            require_declaration: Some(true),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(t.require_declaration);
    let mut bob = s.enrol("bob", Role::Support).await;
    let e = try_request(&mut bob, "globex").await.unwrap_err();
    assert!(
        e.message().contains("which tenant globex requires"),
        "{}",
        e.message()
    );
    s.stop().await;
}
