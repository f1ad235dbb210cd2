//! Personnel location, employer and sub-processors in the grant rules (the
//! agreement's Art 3 and Art 5), end to end over mutual TLS: a grant is
//! refused, at request and at approval, for a holder whose country the
//! tenant does not allow, who works for a sub-processor the tenant objected
//! to, or whose sub-processor's notice period has not passed (the injected
//! clock moves it); a change of location revokes the live grants it no
//! longer fits; tokens and grant certificates carry the holder's country
//! and organisation, which the tenant library checks offline.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::*;
use daypass::client::Clients;
use daypass::clock::Clock;
use daypass::pb::{self, ApprovalPolicy, Role};
use daypass_tenant::{HolderRule, KeySet, Refusal, Verifier};
use tonic::Code;

async fn enrol_at(s: &TestServer, name: &str, country: &str, organisation: &str) -> Clients {
    s.admin()
        .await
        .staff
        .add_staff(pb::AddStaffRequest {
            name: name.into(),
            role: Role::Support as i32,
            country: country.into(),
            organisation: organisation.into(),
        })
        .await
        .expect("enrol");
    s.staff(name).await
}

async fn try_request(c: &mut Clients, tenant: &str) -> Result<pb::Grant, tonic::Status> {
    c.grants
        .request_grant(grant_request(tenant, "INC-11 queue stuck", 3600))
        .await
        .map(|r| r.into_inner())
}

async fn locate(
    admin: &mut Clients,
    name: &str,
    country: &str,
    organisation: &str,
) -> Result<pb::LocateStaffResponse, tonic::Status> {
    admin
        .staff
        .locate_staff(pb::LocateStaffRequest {
            name: name.into(),
            country: country.into(),
            organisation: organisation.into(),
        })
        .await
        .map(|r| r.into_inner())
}

async fn add_subprocessor(admin: &mut Clients, name: &str, country: &str) -> pb::Subprocessor {
    admin
        .tenants
        .add_subprocessor(pb::AddSubprocessorRequest {
            name: name.into(),
            country: country.into(),
            purpose: "second-line support at night".into(),
        })
        .await
        .expect("add sub-processor")
        .into_inner()
}

fn refused(r: Result<pb::Grant, tonic::Status>, says: &str) {
    let e = r.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(
        e.message().contains(says),
        "{:?} lacks {says:?}",
        e.message()
    );
}

#[tokio::test]
async fn a_disallowed_country_is_refused_and_an_adequate_one_allowed() {
    let s = TestServer::start().await;
    s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let mut bert = enrol_at(&s, "bert", "BR", "company").await;
    let mut emma = enrol_at(&s, "emma", "de", "").await;
    let mut jun = enrol_at(&s, "jun", "JP", "company").await;

    refused(
        try_request(&mut bert, "acme").await,
        "country BR is not allowed by tenant acme (allowed: EU/EEA + AD, AR,",
    );
    // EU and an adequacy decision: granted.
    assert_eq!(try_request(&mut emma, "acme").await.unwrap().state, 2);
    assert_eq!(try_request(&mut jun, "acme").await.unwrap().state, 2);

    // The staff list shows what is recorded (upper case).
    let list = s
        .admin()
        .await
        .staff
        .list_staff(pb::ListStaffRequest {})
        .await
        .unwrap()
        .into_inner();
    let emma = list.staff.iter().find(|p| p.name == "emma").unwrap();
    assert_eq!(
        (emma.country.as_str(), emma.organisation.as_str()),
        ("DE", "company")
    );
}

#[tokio::test]
async fn a_tenants_own_list_applies_to_requests_approvals_and_unknown_countries() {
    let s = TestServer::start().await;
    let mut acme = s.add_tenant("acme", ApprovalPolicy::Approval, false).await;
    let mut admin = s.admin().await;
    let mut greta = enrol_at(&s, "greta", "GB", "company").await;
    let mut old = s.enrol("oldtimer", Role::Support).await;
    let mut dora = enrol_at(&s, "dora", "DE", "company").await;

    // Under the default, GB (adequate) and an unknown country may ask.
    let pending = try_request(&mut greta, "acme").await.unwrap();
    try_request(&mut old, "acme").await.unwrap();

    let t = admin
        .tenants
        .set_tenant_countries(pb::SetTenantCountriesRequest {
            tenant: "acme".into(),
            countries: vec!["de".into(), "AT, FR".into()],
        })
        .await
        .unwrap()
        .into_inner();
    assert!(t.own_countries);
    assert_eq!(t.allowed_countries, ["AT", "DE", "FR"]);

    // Pending requests no longer fitting were revoked with the reason.
    let g = get_grant(&mut greta, &pending.id).await;
    assert_eq!(g.state, pb::GrantState::Revoked as i32, "{g:?}");
    let entries = s.entries().await;
    let revoked = entries
        .iter()
        .find(|e| e.entry.kind == "grant.revoked" && e.entry.details["grant"] == pending.id)
        .unwrap();
    assert_eq!(revoked.entry.details["cause"], "location");
    assert!(
        revoked.entry.details["note"]
            .contains("country GB is not allowed by tenant acme (allowed: AT, DE, FR)"),
        "{:?}",
        revoked.entry.details
    );
    assert!(kinds(&entries).contains(&"tenant.countries_set"));

    refused(
        try_request(&mut greta, "acme").await,
        "country GB is not allowed by tenant acme (allowed: AT, DE, FR)",
    );
    refused(
        try_request(&mut old, "acme").await,
        "oldtimer's country is not recorded (unknown)",
    );

    // Approval re-checks: dora asks from DE, then moves to CH (adequate,
    // but not on acme's list) — her pending grant is revoked; asked again
    // from DE and moved before the tenant approves, the approval refuses.
    let g = try_request(&mut dora, "acme").await.unwrap();
    let r = locate(&mut admin, "dora", "CH", "company").await.unwrap();
    assert_eq!(r.revoked_grant_ids, vec![g.id.clone()]);
    assert_eq!(r.staff.unwrap().country, "CH");
    refused(
        try_request(&mut dora, "acme").await,
        "country CH is not allowed",
    );
    locate(&mut admin, "dora", "DE", "company").await.unwrap();
    let g = try_request(&mut dora, "acme").await.unwrap();
    assert_eq!(g.state, pb::GrantState::Pending as i32);
    let e = acme
        .grants
        .approve_grant(pb::DecideGrantRequest {
            grant_id: g.id.clone(),
            note: "ok".into(),
        })
        .await
        .unwrap();
    assert_eq!(e.into_inner().state, pb::GrantState::Active as i32);

    // An empty list restores the default.
    let t = admin
        .tenants
        .set_tenant_countries(pb::SetTenantCountriesRequest {
            tenant: "acme".into(),
            countries: vec![],
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!t.own_countries);
    assert!(t.allowed_countries.contains(&"US".to_owned()));
    assert!(t.allowed_countries.contains(&"NO".to_owned()));
}

#[tokio::test]
async fn approval_checks_again_and_the_register_survives_a_restart() {
    let mut s = TestServer::start_with(|c| c.location.adequate = vec!["CH".into()]).await;
    s.add_tenant("acme", ApprovalPolicy::Approval, false).await;
    let mut sam = enrol_at(&s, "sam", "CH", "company").await;
    let g = try_request(&mut sam, "acme").await.unwrap();
    // The operator narrows the adequacy list while the request waits: the
    // approval checks again (locations come back from the log).
    s.config.location.adequate = vec![];
    s.restart().await;
    let mut acme = s.tenant("acme").await;
    let e = acme
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
            .contains(&format!("cannot approve grant {}", g.id))
            && e.message()
                .contains("country CH is not allowed by tenant acme (allowed: EU/EEA)"),
        "{}",
        e.message()
    );
}

#[tokio::test]
async fn a_subprocessor_waits_out_its_notice_and_an_objection_ends_its_access() {
    let s = TestServer::start().await;
    let mut acme = s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    s.add_tenant("globex", ApprovalPolicy::Auto, false).await;
    let mut admin = s.admin().await;
    let before = s.entries().await.len() as u64;
    let sp = add_subprocessor(&mut admin, "nightdesk", "PT").await;
    assert_eq!(sp.country, "PT");

    // One entry for the register, one in each tenant's slice.
    let new = since(&s.entries().await, before.saturating_sub(1));
    let announced: Vec<_> = new
        .iter()
        .filter(|e| e.entry.kind == "subprocessor.announced")
        .map(|e| e.entry.tenant.clone())
        .collect();
    assert_eq!(announced, ["acme", "globex"]);
    assert!(kinds(&new).contains(&"subprocessor.added"));
    let slice = acme
        .audit
        .get_tenant_entries(pb::GetTenantEntriesRequest {
            tenant: "acme".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        slice.entries.iter().any(|e| e
            .entry
            .as_ref()
            .is_some_and(|e| e.kind == "subprocessor.announced")),
        "acme reads the notice in its slice"
    );

    // Its staff wait for the notice period.
    let mut nina = enrol_at(&s, "nina", "PT", "nightdesk").await;
    let announced_on = day_of(sp.announced_at_ms);
    let usable_on = day_of(sp.announced_at_ms + 30 * 86_400_000);
    refused(
        try_request(&mut nina, "acme").await,
        &format!(
            "organisation nightdesk announced {announced_on}; usable for acme from {usable_on} (notice period 30 days)"
        ),
    );
    s.clock.advance_secs(30 * 86_400 - 1);
    refused(
        try_request(&mut nina, "acme").await,
        "notice period 30 days",
    );
    s.clock.advance_secs(1);
    let g = try_request(&mut nina, "acme").await.unwrap();
    assert_eq!(g.state, pb::GrantState::Active as i32);

    // acme objects itself: the live grant is revoked, new ones refused;
    // globex is untouched.
    let t = acme
        .tenants
        .object_to_subprocessor(pb::ObjectToSubprocessorRequest {
            tenant: "acme".into(),
            subprocessor: "nightdesk".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(t.objections.len(), 1);
    assert_eq!(
        get_grant(&mut nina, &g.id).await.state,
        pb::GrantState::Revoked as i32
    );
    let today = day_of(s.clock.now().millis());
    refused(
        try_request(&mut nina, "acme").await,
        &format!("organisation nightdesk: tenant acme objected on {today}"),
    );
    try_request(&mut nina, "globex").await.unwrap();
    // It cannot object for another tenant (answered as unknown), twice, or
    // to a sub-processor that is not registered.
    let e = acme
        .tenants
        .object_to_subprocessor(pb::ObjectToSubprocessorRequest {
            tenant: "globex".into(),
            subprocessor: "nightdesk".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    let e = admin
        .tenants
        .object_to_subprocessor(pb::ObjectToSubprocessorRequest {
            tenant: "acme".into(),
            subprocessor: "nightdesk".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists, "{e:?}");
    let list = admin
        .tenants
        .list_subprocessors(pb::ListSubprocessorsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.notice_days, 30);
    assert_eq!(list.subprocessors.len(), 1);
}

#[tokio::test]
async fn tokens_and_certificates_carry_country_and_organisation_checked_offline() {
    let s = TestServer::start().await;
    let mut acme = s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let mut admin = s.admin().await;
    add_subprocessor(&mut admin, "nightdesk", "PT").await;
    s.clock.advance_secs(31 * 86_400);
    let mut nina = enrol_at(&s, "nina", "PT", "nightdesk").await;
    let mut emma = enrol_at(&s, "emma", "DE", "company").await;
    let gn = try_request(&mut nina, "acme").await.unwrap();
    let ge = try_request(&mut emma, "acme").await.unwrap();

    let keys = published(&mut acme).await;
    let list = revocations(&mut acme).await;
    let open = Verifier::new("acme", keys.clone(), Arc::new(s.clock.clone()));
    open.apply_revocations(&list.token).unwrap();
    let a = open.verify_token(&gn.token).unwrap();
    assert_eq!(a.country.as_deref(), Some("PT"));
    assert_eq!(a.organisation.as_deref(), Some("nightdesk"));

    // A tenant that takes only DE staff of the company, offline.
    let strict = Verifier::new("acme", keys, Arc::new(s.clock.clone())).requiring(HolderRule {
        allowed_countries: Some(vec!["DE".into()]),
        denied_organisations: vec!["nightdesk".into()],
    });
    strict.apply_revocations(&list.token).unwrap();
    assert!(matches!(
        strict.verify_token(&gn.token),
        Err(Refusal::Holder(why)) if why.contains("country PT is not allowed")
    ));
    let a = strict.verify_token(&ge.token).unwrap();
    assert_eq!(
        (a.country.as_deref(), a.organisation.as_deref()),
        (Some("DE"), Some("company"))
    );
    let only_company = Verifier::new(
        "acme",
        published(&mut acme).await,
        Arc::new(s.clock.clone()),
    )
    .requiring(HolderRule {
        allowed_countries: None,
        denied_organisations: vec!["nightdesk".into()],
    });
    only_company.apply_revocations(&list.token).unwrap();
    assert!(matches!(
        only_company.verify_token(&gn.token),
        Err(Refusal::Holder(why)) if why.contains("organisation nightdesk is refused")
    ));

    // The grant certificate says the same, as URIs.
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let csr = rcgen::CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .serialize_request(&key)
        .unwrap()
        .pem()
        .unwrap();
    let issued = nina
        .grants
        .issue_grant_certificate(pb::IssueGrantCertificateRequest {
            grant_id: gn.id.clone(),
            csr_pem: csr,
        })
        .await
        .unwrap()
        .into_inner();
    let (_, pem) = x509_parser::pem::parse_x509_pem(issued.certificate_pem.as_bytes()).unwrap();
    let a = open.verify_certificate(&pem.contents).unwrap();
    assert_eq!(
        (a.country.as_deref(), a.organisation.as_deref()),
        (Some("PT"), Some("nightdesk"))
    );
    assert!(matches!(
        strict.verify_certificate(&pem.contents),
        Err(Refusal::Holder(_))
    ));
}

#[tokio::test]
async fn hostile_location_inputs_are_refused_naming_the_field() {
    let s = TestServer::start().await;
    s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let mut admin = s.admin().await;
    s.enrol("alice", Role::Support).await;
    let long = "x".repeat(10_000);
    let cases: Vec<(&str, Result<(), tonic::Status>)> = vec![
        (
            "country",
            locate(&mut admin, "alice", "XX", "company").await.map(drop),
        ),
        (
            "country",
            locate(&mut admin, "alice", "DEU", "company")
                .await
                .map(drop),
        ),
        (
            "country",
            locate(&mut admin, "alice", &long, "company")
                .await
                .map(drop),
        ),
        (
            "country",
            locate(&mut admin, "alice", "", "company").await.map(drop),
        ),
        (
            "organisation",
            locate(&mut admin, "alice", "DE", "nobody-gmbh")
                .await
                .map(drop),
        ),
        (
            "organisation",
            locate(&mut admin, "alice", "DE", "Big Corp")
                .await
                .map(drop),
        ),
        (
            "organisation",
            locate(&mut admin, "alice", "DE", &long).await.map(drop),
        ),
        (
            "organisation",
            admin
                .staff
                .add_staff(pb::AddStaffRequest {
                    name: "bob".into(),
                    role: Role::Support as i32,
                    country: "DE".into(),
                    organisation: "unknown-sp".into(),
                })
                .await
                .map(drop),
        ),
        (
            "purpose",
            admin
                .tenants
                .add_subprocessor(pb::AddSubprocessorRequest {
                    name: "sp".into(),
                    country: "DE".into(),
                    purpose: long.clone(),
                })
                .await
                .map(drop),
        ),
        (
            "country",
            admin
                .tenants
                .add_subprocessor(pb::AddSubprocessorRequest {
                    name: "sp".into(),
                    country: "ZZ".into(),
                    purpose: "support".into(),
                })
                .await
                .map(drop),
        ),
        (
            "name",
            admin
                .tenants
                .add_subprocessor(pb::AddSubprocessorRequest {
                    name: long.clone(),
                    country: "DE".into(),
                    purpose: "support".into(),
                })
                .await
                .map(drop),
        ),
        (
            "countries",
            admin
                .tenants
                .set_tenant_countries(pb::SetTenantCountriesRequest {
                    tenant: "acme".into(),
                    countries: vec!["DE".into(), "Mars".into()],
                })
                .await
                .map(drop),
        ),
        (
            "countries",
            admin
                .tenants
                .set_tenant_countries(pb::SetTenantCountriesRequest {
                    tenant: "acme".into(),
                    countries: vec!["DE".into(); 100_000],
                })
                .await
                .map(drop),
        ),
        (
            "subprocessor",
            admin
                .tenants
                .object_to_subprocessor(pb::ObjectToSubprocessorRequest {
                    tenant: "acme".into(),
                    subprocessor: "never-announced".into(),
                })
                .await
                .map(drop),
        ),
    ];
    for (field, r) in cases {
        let e = r.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{field}: {e:?}");
        assert!(e.message().contains(field), "{field}: {}", e.message());
        assert!(
            e.message().len() < 400,
            "no echo of a long input: {}",
            e.message()
        );
    }
}

async fn published(c: &mut Clients) -> KeySet {
    use prost::Message as _;
    let k = c
        .gate
        .get_verification_keys(pb::GetVerificationKeysRequest {})
        .await
        .expect("keys")
        .into_inner();
    let wire = daypass_tenant::pb::VerificationKeys::decode(k.encode_to_vec().as_slice())
        .expect("same proto");
    daypass_tenant::keys_from_pb(&wire).expect("valid keys")
}

fn day_of(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .format("%Y-%m-%d")
        .to_string()
}

#[tokio::test]
async fn the_cli_locates_staff_and_keeps_the_register() {
    let s = TestServer::start().await;
    s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    s.enrol("carol", Role::Support).await;
    let dir = s.dir.path();
    let admin = |words: &[&str]| {
        let mut v: Vec<String> = words.iter().map(|w| (*w).to_owned()).collect();
        v.extend(s.cli_flags(dir, daypass::identity::PrincipalKind::Staff, ADMIN));
        v
    };
    let run = |args: Vec<String>| cli::run_async(dir.to_owned(), args);
    let out = run(admin(&[
        "tenant",
        "subprocessor",
        "add",
        "nightdesk",
        "--country",
        "PT",
        "--purpose",
        "second-line support at night",
    ]))
    .await;
    assert!(
        cli::assert_ok(&out, "subprocessor add").contains("announced sub-processor nightdesk (PT)")
    );
    let out = run(admin(&[
        "staff",
        "locate",
        "carol",
        "--country",
        "pt",
        "--organisation",
        "nightdesk",
    ]))
    .await;
    let said = cli::assert_ok(&out, "staff locate");
    assert!(said.contains("carol works in PT for nightdesk"), "{said}");
    let out = run(admin(&["tenant", "countries", "acme", "DE", "PT"])).await;
    assert!(cli::assert_ok(&out, "tenant countries").contains("its own list: DE, PT"));
    let out = run(admin(&["tenant", "object", "acme", "nightdesk"])).await;
    assert!(cli::assert_ok(&out, "tenant object").contains("acme objected to nightdesk"));
    let out = run(admin(&["staff", "list"])).await;
    let table = cli::assert_ok(&out, "staff list");
    assert!(
        table.contains("LOCATION") && table.contains("PT / nightdesk"),
        "{table}"
    );
    let out = run(admin(&["tenant", "subprocessor", "list"])).await;
    let table = cli::assert_ok(&out, "subprocessor list");
    assert!(
        table.contains("nightdesk") && table.contains("notice period: 30 days"),
        "{table}"
    );
    let entries = s.entries().await;
    let located = entries
        .iter()
        .find(|e| e.entry.kind == "staff.located")
        .unwrap();
    assert_eq!(located.entry.details["country"], "PT");
    assert_eq!(located.entry.details["organisation"], "nightdesk");
    assert_eq!(located.entry.details["previous_organisation"], "company");
}
