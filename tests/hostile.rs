//! Hostile input, over real mutual TLS: for the RPCs that take free input,
//! each bad value (empty, blank, oversize, control characters, malformed or
//! unknown ids, out-of-range durations and enum values, a message over the
//! size limit) is answered with the right code and a message that says what
//! to fix; the server stays up; and nothing is stored but refusals.

mod common;

use common::*;
use daypass::pb::{self, ApprovalPolicy, Role};
use tonic::{Code, Status};

/// One bad request: what it is, its outcome, the code and a phrase the
/// message must contain.
struct Case {
    what: String,
    result: Result<(), Status>,
    code: Code,
    says: &'static str,
}

fn case<T>(what: impl Into<String>, r: Result<T, Status>, code: Code, says: &'static str) -> Case {
    Case {
        what: what.into(),
        result: r.map(drop),
        code,
        says,
    }
}

fn req(tenant: &str, reason: &str, ticket: &str, duration: i64) -> pb::RequestGrantRequest {
    pb::RequestGrantRequest {
        tenant: tenant.into(),
        reason: reason.into(),
        ticket: ticket.into(),
        duration_seconds: duration,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_clearly_and_changes_nothing() {
    let s = TestServer::start().await;
    let mut admin = s.admin().await;
    let mut alice = s.enrol("alice", Role::Support).await;
    let mut acme = s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let g = request(&mut alice, "acme", "INC-1").await;
    let before = s.entries().await;
    let grants_before = admin
        .grants
        .list_grants(pb::ListGrantsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .grants;

    let big = "x".repeat(1 << 20);
    let long = "x".repeat(600);
    let mut cases = Vec::new();
    // RequestGrant: every field.
    for (what, r, code, says) in [
        (
            "empty tenant",
            req("", "r", "", 0),
            Code::InvalidArgument,
            "tenant",
        ),
        (
            "tenant with a space",
            req("ac me", "r", "", 0),
            Code::InvalidArgument,
            "tenant",
        ),
        (
            "tenant with a control character",
            req("ac\u{7}me", "r", "", 0),
            Code::InvalidArgument,
            "tenant",
        ),
        (
            "unknown tenant",
            req("nosuch", "r", "", 0),
            Code::NotFound,
            "does not exist",
        ),
        (
            "empty reason",
            req("acme", "", "", 0),
            Code::InvalidArgument,
            "reason is required",
        ),
        (
            "blank reason",
            req("acme", " \t ", "", 0),
            Code::InvalidArgument,
            "reason is required",
        ),
        (
            "reason too long",
            req("acme", &long, "", 0),
            Code::InvalidArgument,
            "longer than",
        ),
        (
            "reason with a newline",
            req("acme", "a\nb", "", 0),
            Code::InvalidArgument,
            "control characters",
        ),
        (
            "ticket too long",
            req("acme", "r", &long, 0),
            Code::InvalidArgument,
            "ticket",
        ),
        (
            "negative duration",
            req("acme", "r", "", -5),
            Code::InvalidArgument,
            "positive",
        ),
        (
            "duration over 24 h",
            req("acme", "r", "", 86_401),
            Code::InvalidArgument,
            "exceeds the maximum",
        ),
        (
            "huge duration",
            req("acme", "r", "", i64::MAX),
            Code::InvalidArgument,
            "exceeds the maximum",
        ),
        (
            "message over 1 MiB",
            req("acme", &big, "", 0),
            Code::OutOfRange,
            "message",
        ),
    ] {
        // alice already holds acme: use bob-less unknown checks first.
        let r = alice.grants.request_grant(r).await;
        cases.push(case(format!("RequestGrant: {what}"), r, code, says));
    }
    // Grant ids.
    for (what, id) in [
        ("empty id", ""),
        ("malformed id", "g-123"),
        (
            "id with a control character",
            "g-00000000000000000000000\u{0}",
        ),
        ("1 KiB id", &"g".repeat(1024)),
    ] {
        let r = alice
            .grants
            .get_grant(pb::GetGrantRequest {
                grant_id: id.into(),
            })
            .await;
        cases.push(case(
            format!("GetGrant: {what}"),
            r,
            Code::InvalidArgument,
            "malformed",
        ));
        let r = alice
            .grants
            .release_grant(pb::ReleaseGrantRequest {
                grant_id: id.into(),
            })
            .await;
        cases.push(case(
            format!("ReleaseGrant: {what}"),
            r,
            Code::InvalidArgument,
            "malformed",
        ));
        let r = acme
            .grants
            .record_access(pb::RecordAccessRequest {
                grant_id: id.into(),
                action: "ssh".into(),
                resource: String::new(),
            })
            .await;
        cases.push(case(
            format!("RecordAccess: {what}"),
            r,
            Code::InvalidArgument,
            "malformed",
        ));
    }
    let unknown = "g-000000000000000000000000";
    let r = alice
        .grants
        .get_grant(pb::GetGrantRequest {
            grant_id: unknown.into(),
        })
        .await;
    cases.push(case("GetGrant: unknown id", r, Code::NotFound, "not found"));
    // RecordAccess fields.
    for (what, action, resource, says) in [
        ("empty action", "", "", "action is required"),
        ("action with a tab", "s\tsh", "", "control characters"),
        ("resource too long", "ssh", long.as_str(), "longer than"),
    ] {
        let r = acme
            .grants
            .record_access(pb::RecordAccessRequest {
                grant_id: g.id.clone(),
                action: action.into(),
                resource: resource.into(),
            })
            .await;
        cases.push(case(
            format!("RecordAccess: {what}"),
            r,
            Code::InvalidArgument,
            says,
        ));
    }
    // ValidateGrant: no subject at all.
    let r = acme
        .grants
        .validate_grant(pb::ValidateGrantRequest { subject: None })
        .await;
    cases.push(case(
        "ValidateGrant: no subject",
        r,
        Code::InvalidArgument,
        "either a grant id or a staff name",
    ));
    // Admin calls: names and enum values.
    for (what, name, role, says) in [
        ("empty name", "", pb::Role::Support as i32, "name"),
        ("uppercase name", "Alice2", pb::Role::Support as i32, "name"),
        ("name with a slash", "a/b", pb::Role::Support as i32, "name"),
        (
            "no role",
            "carol",
            pb::Role::Unspecified as i32,
            "role is required",
        ),
        ("unknown role value", "carol", 99, "unknown role value 99"),
        (
            "duplicate",
            "alice",
            pb::Role::Support as i32,
            "already enrolled",
        ),
    ] {
        let r = admin
            .staff
            .add_staff(pb::AddStaffRequest {
                name: name.into(),
                role,
            })
            .await;
        let code = if what == "duplicate" {
            Code::AlreadyExists
        } else {
            Code::InvalidArgument
        };
        cases.push(case(format!("AddStaff: {what}"), r, code, says));
    }
    for (what, name, approval, code, says) in [
        (
            "unknown approval value",
            "t-new",
            7,
            Code::InvalidArgument,
            "unknown approval policy value 7",
        ),
        (
            "no approval",
            "t-new",
            0,
            Code::InvalidArgument,
            "approval policy is required",
        ),
        (
            "duplicate",
            "acme",
            ApprovalPolicy::Auto as i32,
            Code::AlreadyExists,
            "already exists",
        ),
    ] {
        let r = admin
            .tenants
            .add_tenant(pb::AddTenantRequest {
                name: name.into(),
                approval,
                require_ticket: false,
            })
            .await;
        cases.push(case(format!("AddTenant: {what}"), r, code, says));
    }
    let r = admin
        .audit
        .get_entries(pb::GetEntriesRequest { start: 10, end: 5 })
        .await;
    cases.push(case(
        "GetEntries: end before start",
        r,
        Code::InvalidArgument,
        "before start",
    ));

    let mut wrong = Vec::new();
    for c in &cases {
        match &c.result {
            Ok(()) => wrong.push(format!("{}: accepted", c.what)),
            Err(st) if st.code() != c.code || !st.message().contains(c.says) => {
                wrong.push(format!(
                    "{}: {:?} {:?}, expected {:?} saying {:?}",
                    c.what,
                    st.code(),
                    st.message(),
                    c.code,
                    c.says
                ))
            }
            Err(st) if st.message().len() > 400 => {
                wrong.push(format!("{}: a {} byte message", c.what, st.message().len()))
            }
            Err(_) => {}
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} cases wrong:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
    eprintln!(
        "hostile input: {} cases, all refused as specified",
        cases.len()
    );

    // The server is still up, and nothing but refusals was stored.
    let whoami = alice.staff.who_am_i(pb::WhoAmIRequest {}).await;
    assert!(whoami.is_ok());
    let after = s.entries().await;
    let added: Vec<&str> = after[before.len()..]
        .iter()
        .map(|e| e.entry.kind.as_str())
        .filter(|k| *k != "call.refused" && *k != "audit.read")
        .collect();
    assert!(added.is_empty(), "stored besides refusals: {added:?}");
    let grants_after = admin
        .grants
        .list_grants(pb::ListGrantsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .grants;
    assert_eq!(grants_after.len(), grants_before.len());
}
