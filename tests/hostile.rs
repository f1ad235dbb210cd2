//! Hostile input, over real mutual TLS: for every RPC that takes input,
//! each bad value (empty, blank, oversize, control characters and terminal
//! escapes, malformed or unknown ids and names, out-of-range durations,
//! sequence numbers and tree sizes, unknown enum values, certificate
//! requests that are not, a message over the size limit) is answered with
//! the right code and a message that says what to fix; the server stays up;
//! and nothing is stored but refusals, each a bounded echo of its input.
//! A malformed validation subject is the one exception by design: it is a
//! logged "denied, unknown" decision.

mod common;

use common::*;
use daypass::pb::{self, ApprovalPolicy, Role, validate_grant_request::Subject};
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
            grant_request("", "r", 0),
            Code::InvalidArgument,
            "tenant",
        ),
        (
            "tenant with a space",
            grant_request("ac me", "r", 0),
            Code::InvalidArgument,
            "tenant",
        ),
        (
            "tenant with a control character",
            grant_request("ac\u{7}me", "r", 0),
            Code::InvalidArgument,
            "tenant",
        ),
        (
            "unknown tenant",
            grant_request("nosuch", "r", 0),
            Code::NotFound,
            "does not exist",
        ),
        (
            "empty reason",
            grant_request("acme", "", 0),
            Code::InvalidArgument,
            "reason is required",
        ),
        (
            "blank reason",
            grant_request("acme", " \t ", 0),
            Code::InvalidArgument,
            "reason is required",
        ),
        (
            "reason too long",
            grant_request("acme", &long, 0),
            Code::InvalidArgument,
            "longer than",
        ),
        (
            "reason with a newline",
            grant_request("acme", "a\nb", 0),
            Code::InvalidArgument,
            "control characters",
        ),
        (
            "ticket too long",
            pb::RequestGrantRequest {
                ticket: long.clone(),
                ..grant_request("acme", "r", 0)
            },
            Code::InvalidArgument,
            "ticket",
        ),
        (
            "unknown reason code",
            pb::RequestGrantRequest {
                reason_code: "incident\u{202e}".into(),
                ..grant_request("acme", "r", 0)
            },
            Code::InvalidArgument,
            "reason_code",
        ),
        (
            "reason code too long to echo",
            pb::RequestGrantRequest {
                reason_code: long.clone(),
                ..grant_request("acme", "r", 0)
            },
            Code::InvalidArgument,
            "is not one of customer-request",
        ),
        (
            "negative duration",
            grant_request("acme", "r", -5),
            Code::InvalidArgument,
            "positive",
        ),
        (
            "duration over 24 h",
            grant_request("acme", "r", 86_401),
            Code::InvalidArgument,
            "exceeds the maximum",
        ),
        (
            "huge duration",
            grant_request("acme", "r", i64::MAX),
            Code::InvalidArgument,
            "exceeds the maximum",
        ),
        (
            "message over 1 MiB",
            grant_request("acme", &big, 0),
            Code::OutOfRange,
            "message",
        ),
        (
            "17 scopes",
            scoped((0..17).map(|i| format!("s{i}")).collect()),
            Code::InvalidArgument,
            "at most 16 scopes",
        ),
        (
            "a scope of 101 bytes",
            scoped(vec![format!("{}:{}", "a".repeat(32), "b".repeat(68))]),
            Code::InvalidArgument,
            "at most 100",
        ),
        (
            "a scope of 9 segments",
            scoped(vec![["a"; 9].join(":")]),
            Code::InvalidArgument,
            "at most 8",
        ),
        (
            "a segment of 33 characters",
            scoped(vec![format!("db:{}", "a".repeat(33))]),
            Code::InvalidArgument,
            "at most 32",
        ),
        (
            "an empty scope",
            scoped(vec!["db:read".into(), String::new()]),
            Code::InvalidArgument,
            "empty",
        ),
        (
            "an empty segment",
            scoped(vec!["db::read".into()]),
            Code::InvalidArgument,
            "empty segment",
        ),
        (
            "a scope in upper case",
            scoped(vec!["DB:read".into()]),
            Code::InvalidArgument,
            "use only a-z",
        ),
        (
            "a scope with a terminal escape",
            scoped(vec!["db:\u{1b}[31mread".into()]),
            Code::InvalidArgument,
            "use only a-z",
        ),
        (
            "a scope with a wildcard inside a segment",
            scoped(vec!["db:re*ad".into()]),
            Code::InvalidArgument,
            "only at the end",
        ),
        (
            "a scope of 1 MiB",
            scoped(vec![big.clone()]),
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
            .record_access(access_request(id, "ssh", ""))
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
        (
            "resource with a line separator",
            "ssh",
            "web-1\u{2028}web-2",
            "found U+2028",
        ),
        ("resource too long", "ssh", long.as_str(), "longer than"),
    ] {
        let r = acme
            .grants
            .record_access(access_request(&g.id, action, resource))
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
        .validate_grant(pb::ValidateGrantRequest::default())
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
                country: String::new(),
                organisation: String::new(),
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
                require_declaration: false,
                ..Default::default()
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

    assert_refused_as_specified(&cases);

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

/// The rest of the API: staff and tenant administration, decisions,
/// revocation and release, list filters, validation subjects, access
/// records, grant certificates, and every audit call's names, sizes and
/// ranges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_other_rpc_refuses_bad_input_clearly() {
    let s = TestServer::start().await;
    let mut admin = s.admin().await;
    let mut alice = s.enrol("alice", Role::Support).await;
    let mut bob = s.enrol("bob", Role::Support).await;
    s.enrol("dave", Role::Support).await;
    admin
        .staff
        .offboard_staff(pb::OffboardStaffRequest {
            name: "dave".into(),
        })
        .await
        .expect("offboard dave");
    let mut acme = s.add_tenant("acme", ApprovalPolicy::Approval, false).await;
    let mut globex = s.add_tenant("globex", ApprovalPolicy::Auto, false).await;
    s.add_tenant("initech", ApprovalPolicy::Auto, true).await;
    let pending = request(&mut alice, "acme", "INC-1").await;
    let active = request(&mut alice, "globex", "INC-2").await;
    let ended = request(&mut bob, "globex", "INC-3").await;
    release(&mut bob, &ended.id).await;
    let mut auditor = s.audit_reader().await;
    let before = s.entries().await;
    let size = before.len() as u64;

    let big = "x".repeat(1 << 20);
    let kib = "a".repeat(1024);
    let long = "x".repeat(501);
    let esc = "al\u{1b}[31mice";
    let unknown_id = "g-000000000000000000000000";
    let bad_ids = [
        ("empty id", ""),
        ("blank id", "   "),
        ("malformed id", "g-123"),
        (
            "id with a control character",
            "g-00000000000000000000000\u{0}",
        ),
        ("1 KiB id", kib.as_str()),
    ];
    let bad_names = [
        ("empty name", ""),
        ("blank name", "  \t "),
        ("name with a space", "ac me"),
        ("uppercase name", "Acme2"),
        ("name with a terminal escape", esc),
        ("name with a newline", "ac\nme"),
        ("1 KiB name", kib.as_str()),
    ];
    let mut cases = Vec::new();

    // StaffService.
    for (what, name) in bad_names {
        let r = admin
            .staff
            .add_staff(pb::AddStaffRequest {
                name: name.into(),
                role: Role::Support as i32,
                country: String::new(),
                organisation: String::new(),
            })
            .await;
        cases.push(case(
            format!("AddStaff: {what}"),
            r,
            Code::InvalidArgument,
            "invalid name",
        ));
        let r = admin
            .staff
            .offboard_staff(pb::OffboardStaffRequest { name: name.into() })
            .await;
        cases.push(case(
            format!("OffboardStaff: {what}"),
            r,
            Code::InvalidArgument,
            "invalid name",
        ));
    }
    for (what, name, role, code, says) in [
        (
            "negative role value",
            "carol",
            -1,
            Code::InvalidArgument,
            "unknown role value -1",
        ),
        (
            "an offboarded name again",
            "dave",
            Role::Support as i32,
            Code::AlreadyExists,
            "never reused",
        ),
        (
            "message over 1 MiB",
            big.as_str(),
            Role::Support as i32,
            Code::OutOfRange,
            "message",
        ),
    ] {
        let r = admin
            .staff
            .add_staff(pb::AddStaffRequest {
                name: name.into(),
                role,
                country: String::new(),
                organisation: String::new(),
            })
            .await;
        cases.push(case(format!("AddStaff: {what}"), r, code, says));
    }
    for (what, name, code, says) in [
        ("unknown name", "nobody", Code::NotFound, "is not enrolled"),
        (
            "already offboarded",
            "dave",
            Code::FailedPrecondition,
            "already offboarded",
        ),
        (
            "message over 1 MiB",
            big.as_str(),
            Code::OutOfRange,
            "message",
        ),
    ] {
        let r = admin
            .staff
            .offboard_staff(pb::OffboardStaffRequest { name: name.into() })
            .await;
        cases.push(case(format!("OffboardStaff: {what}"), r, code, says));
    }
    for (what, name) in bad_names {
        let r = admin
            .staff
            .recertify_staff(pb::RecertifyStaffRequest { name: name.into() })
            .await;
        cases.push(case(
            format!("RecertifyStaff: {what}"),
            r,
            Code::InvalidArgument,
            "invalid name",
        ));
    }
    for (what, name, code, says) in [
        ("unknown name", "nobody", Code::NotFound, "is not enrolled"),
        ("offboarded", "dave", Code::FailedPrecondition, "offboarded"),
        (
            "message over 1 MiB",
            big.as_str(),
            Code::OutOfRange,
            "message",
        ),
    ] {
        let r = admin
            .staff
            .recertify_staff(pb::RecertifyStaffRequest { name: name.into() })
            .await;
        cases.push(case(format!("RecertifyStaff: {what}"), r, code, says));
    }

    // TenantService.
    for (what, name) in bad_names {
        let r = admin
            .tenants
            .add_tenant(pb::AddTenantRequest {
                name: name.into(),
                approval: ApprovalPolicy::Auto as i32,
                require_ticket: false,
                require_declaration: false,
                ..Default::default()
            })
            .await;
        cases.push(case(
            format!("AddTenant: {what}"),
            r,
            Code::InvalidArgument,
            "invalid name",
        ));
        let r = admin
            .tenants
            .update_tenant(pb::UpdateTenantRequest {
                name: name.into(),
                approval: ApprovalPolicy::Auto as i32,
                require_ticket: None,
                require_declaration: None,
                ..Default::default()
            })
            .await;
        cases.push(case(
            format!("UpdateTenant: {what}"),
            r,
            Code::InvalidArgument,
            "invalid name",
        ));
    }
    let r = admin
        .tenants
        .add_tenant(pb::AddTenantRequest {
            name: "t-new".into(),
            approval: -1,
            require_ticket: false,
            require_declaration: false,
            ..Default::default()
        })
        .await;
    cases.push(case(
        "AddTenant: negative approval value",
        r,
        Code::InvalidArgument,
        "unknown approval policy value -1",
    ));
    let r = admin
        .tenants
        .add_tenant(pb::AddTenantRequest {
            name: big.clone(),
            approval: ApprovalPolicy::Auto as i32,
            require_ticket: false,
            require_declaration: false,
            ..Default::default()
        })
        .await;
    cases.push(case(
        "AddTenant: message over 1 MiB",
        r,
        Code::OutOfRange,
        "message",
    ));
    for (what, name, approval, require_ticket, code, says) in [
        (
            "unknown tenant",
            "nosuch",
            ApprovalPolicy::Auto as i32,
            None,
            Code::NotFound,
            "does not exist",
        ),
        (
            "unknown approval value",
            "acme",
            7,
            None,
            Code::InvalidArgument,
            "unknown approval policy value 7",
        ),
        (
            "negative approval value",
            "acme",
            -1,
            Some(true),
            Code::InvalidArgument,
            "unknown approval policy value -1",
        ),
        (
            "nothing to change",
            "acme",
            0,
            None,
            Code::InvalidArgument,
            "nothing to update",
        ),
        (
            "message over 1 MiB",
            big.as_str(),
            ApprovalPolicy::Auto as i32,
            None,
            Code::OutOfRange,
            "message",
        ),
    ] {
        let r = admin
            .tenants
            .update_tenant(pb::UpdateTenantRequest {
                name: name.into(),
                approval,
                require_ticket,
                require_declaration: None,
                ..Default::default()
            })
            .await;
        cases.push(case(format!("UpdateTenant: {what}"), r, code, says));
    }

    // RequestGrant: what the first matrix leaves out.
    for (what, tenant, reason, ticket, code, says) in [
        (
            "blank tenant",
            "   ",
            "r",
            "",
            Code::InvalidArgument,
            "tenant",
        ),
        (
            "1 KiB tenant",
            kib.as_str(),
            "r",
            "",
            Code::InvalidArgument,
            "tenant",
        ),
        (
            "reason of 501 two-byte characters",
            "globex",
            &"é".repeat(501),
            "",
            Code::InvalidArgument,
            "reason is longer than 500",
        ),
        (
            "reason with a terminal escape",
            "globex",
            esc,
            "",
            Code::InvalidArgument,
            "reason must not contain control characters",
        ),
        (
            "ticket with a control character",
            "globex",
            "r",
            "T-\u{7f}1",
            Code::InvalidArgument,
            "ticket must not contain control characters",
        ),
        (
            "reason with a right-to-left override",
            "globex",
            "fix \u{202E}nigol",
            "",
            Code::InvalidArgument,
            "reason must not contain invisible or direction-changing characters (found U+202E)",
        ),
        (
            "reason with a zero-width space",
            "globex",
            "INC\u{200B}-1",
            "",
            Code::InvalidArgument,
            "found U+200B",
        ),
        (
            "reason with a byte-order mark",
            "globex",
            "\u{FEFF}INC-1",
            "",
            Code::InvalidArgument,
            "found U+FEFF",
        ),
        (
            "no ticket where one is required",
            "initech",
            "r",
            "  ",
            Code::InvalidArgument,
            "requires a ticket reference",
        ),
    ] {
        let r = bob
            .grants
            .request_grant(pb::RequestGrantRequest {
                ticket: ticket.into(),
                ..grant_request(tenant, reason, 0)
            })
            .await;
        cases.push(case(format!("RequestGrant: {what}"), r, code, says));
    }

    // RequestGrant: the start of a scheduled grant.
    for (what, starts_at_ms, says) in [
        (
            "a negative start",
            -1,
            "starts_at_ms must be a time in Unix milliseconds",
        ),
        (
            "the smallest start",
            i64::MIN,
            "starts_at_ms must be a time in Unix milliseconds",
        ),
        ("a start in 1970", 1, "is in the past"),
        ("the largest start", i64::MAX, "more than 30 days ahead"),
    ] {
        let r = bob
            .grants
            .request_grant(pb::RequestGrantRequest {
                starts_at_ms,
                ..grant_request("globex", "r", 0)
            })
            .await;
        cases.push(case(
            format!("RequestGrant: {what}"),
            r,
            Code::InvalidArgument,
            says,
        ));
    }

    // SetTenantAccessLimit: names and numbers.
    for (what, tenant, limit_seconds, window_seconds, code, says) in [
        (
            "a name with a terminal escape",
            esc,
            3600,
            86_400,
            Code::InvalidArgument,
            "tenant",
        ),
        (
            "a 1 KiB name",
            kib.as_str(),
            3600,
            86_400,
            Code::InvalidArgument,
            "tenant",
        ),
        (
            "an unknown tenant",
            "no-such-tenant",
            3600,
            86_400,
            Code::NotFound,
            "does not exist",
        ),
        (
            "a limit above the window",
            "acme",
            86_401,
            86_400,
            Code::InvalidArgument,
            "the limit must be between 1 s and the window",
        ),
        (
            "a negative limit",
            "acme",
            -1,
            86_400,
            Code::InvalidArgument,
            "the limit must be between",
        ),
        (
            "a window of a minute",
            "acme",
            60,
            60,
            Code::InvalidArgument,
            "the window must be between 1 h and 366 d",
        ),
        (
            "the largest window",
            "acme",
            i64::MAX,
            i64::MAX,
            Code::InvalidArgument,
            "the window must be between",
        ),
        (
            "a limit without a window",
            "acme",
            3600,
            0,
            Code::InvalidArgument,
            "give 0 and 0 to clear the limit",
        ),
    ] {
        let r = admin
            .tenants
            .set_tenant_access_limit(pb::SetTenantAccessLimitRequest {
                tenant: tenant.into(),
                limit_seconds,
                window_seconds,
            })
            .await;
        cases.push(case(format!("SetTenantAccessLimit: {what}"), r, code, says));
    }

    // ApproveGrant and DenyGrant: ids, notes and state.
    for approve in [true, false] {
        let call = if approve { "ApproveGrant" } else { "DenyGrant" };
        let mut decide = async |id: &str, note: &str| {
            let r = pb::DecideGrantRequest {
                grant_id: id.into(),
                note: note.into(),
            };
            if approve {
                admin.grants.approve_grant(r).await
            } else {
                admin.grants.deny_grant(r).await
            }
        };
        for (what, id) in bad_ids {
            let r = decide(id, "").await;
            cases.push(case(
                format!("{call}: {what}"),
                r,
                Code::InvalidArgument,
                "malformed",
            ));
        }
        for (what, id, note, code, says) in [
            ("unknown id", unknown_id, "", Code::NotFound, "not found"),
            (
                "note too long",
                pending.id.as_str(),
                long.as_str(),
                Code::InvalidArgument,
                "note is longer than 500",
            ),
            (
                "note with a newline",
                pending.id.as_str(),
                "ok\nforged line",
                Code::InvalidArgument,
                "note must not contain control characters",
            ),
            (
                "message over 1 MiB",
                pending.id.as_str(),
                big.as_str(),
                Code::OutOfRange,
                "message",
            ),
            (
                "an active grant",
                active.id.as_str(),
                "",
                Code::FailedPrecondition,
                "not pending",
            ),
            (
                "an ended grant",
                ended.id.as_str(),
                "",
                Code::FailedPrecondition,
                "not pending",
            ),
        ] {
            let r = decide(id, note).await;
            cases.push(case(format!("{call}: {what}"), r, code, says));
        }
    }

    // RevokeGrant and ReleaseGrant.
    for (what, id) in bad_ids {
        let r = admin
            .grants
            .revoke_grant(pb::RevokeGrantRequest {
                grant_id: id.into(),
                note: String::new(),
            })
            .await;
        cases.push(case(
            format!("RevokeGrant: {what}"),
            r,
            Code::InvalidArgument,
            "malformed",
        ));
    }
    for (what, id, note, code, says) in [
        ("unknown id", unknown_id, "", Code::NotFound, "not found"),
        (
            "note too long",
            active.id.as_str(),
            long.as_str(),
            Code::InvalidArgument,
            "note is longer than 500",
        ),
        (
            "note with a terminal escape",
            active.id.as_str(),
            esc,
            Code::InvalidArgument,
            "note must not contain control characters",
        ),
        (
            "an ended grant",
            ended.id.as_str(),
            "",
            Code::FailedPrecondition,
            "already ended",
        ),
    ] {
        let r = admin
            .grants
            .revoke_grant(pb::RevokeGrantRequest {
                grant_id: id.into(),
                note: note.into(),
            })
            .await;
        cases.push(case(format!("RevokeGrant: {what}"), r, code, says));
    }
    for (what, id, code, says) in [
        ("unknown id", unknown_id, Code::NotFound, "not found"),
        (
            "an ended grant",
            ended.id.as_str(),
            Code::FailedPrecondition,
            "already ended",
        ),
        (
            "another holder's grant",
            active.id.as_str(),
            Code::NotFound,
            "not found",
        ),
    ] {
        let r = bob
            .grants
            .release_grant(pb::ReleaseGrantRequest {
                grant_id: id.into(),
            })
            .await;
        cases.push(case(format!("ReleaseGrant: {what}"), r, code, says));
    }

    // ListGrants filters.
    for (what, name) in bad_names.into_iter().filter(|(_, n)| !n.is_empty()) {
        for (field, tenant, holder) in [("tenant", name, ""), ("holder", "", name)] {
            let r = admin
                .grants
                .list_grants(pb::ListGrantsRequest {
                    tenant: tenant.into(),
                    holder: holder.into(),
                    live_only: false,
                    ..Default::default()
                })
                .await;
            let says = if field == "tenant" {
                "tenant filter: invalid name"
            } else {
                "holder filter: invalid name"
            };
            cases.push(case(
                format!("ListGrants: {field} filter, {what}"),
                r,
                Code::InvalidArgument,
                says,
            ));
        }
    }
    let r = admin
        .grants
        .list_grants(pb::ListGrantsRequest {
            tenant: big.clone(),
            ..Default::default()
        })
        .await;
    cases.push(case(
        "ListGrants: message over 1 MiB",
        r,
        Code::OutOfRange,
        "message",
    ));

    // ValidateGrant: a subject that names nobody, or is over the limit.
    for (what, subject, code, says) in [
        (
            "empty grant id",
            Subject::GrantId(String::new()),
            Code::InvalidArgument,
            "either a grant id or a staff name",
        ),
        (
            "blank staff name",
            Subject::Staff(" \t ".into()),
            Code::InvalidArgument,
            "either a grant id or a staff name",
        ),
        (
            "message over 1 MiB",
            Subject::Staff(big.clone()),
            Code::OutOfRange,
            "message",
        ),
    ] {
        let r = globex
            .grants
            .validate_grant(pb::ValidateGrantRequest {
                subject: Some(subject),
                ..Default::default()
            })
            .await;
        cases.push(case(format!("ValidateGrant: {what}"), r, code, says));
    }
    // ValidateGrant: a resource not of the grammar (a wildcard, upper case,
    // an empty segment, over the limits) is refused, not decided.
    for (what, resource, says) in [
        ("a wildcard", "ssh:*".to_owned(), "no `*`"),
        ("a wildcard in a segment", "ssh:web-*".to_owned(), "no `*`"),
        ("upper case", "SSH:web-1".to_owned(), "use only a-z"),
        ("an empty segment", "ssh::web-1".to_owned(), "empty segment"),
        ("a trailing colon", "ssh:".to_owned(), "empty segment"),
        ("101 bytes", "a".repeat(101), "at most 100"),
        ("9 segments", ["a"; 9].join(":"), "at most 8"),
        (
            "a control character",
            "ssh:web\u{0}".to_owned(),
            "use only a-z",
        ),
        ("a blank", " ".to_owned(), "use only a-z"),
    ] {
        let r = globex
            .grants
            .validate_grant(pb::ValidateGrantRequest {
                subject: Some(Subject::Staff("alice".into())),
                resource,
            })
            .await;
        cases.push(case(
            format!("ValidateGrant: resource with {what}"),
            r,
            Code::InvalidArgument,
            says,
        ));
    }

    // RecordAccess: what the first matrix leaves out.
    for (what, id, action, resource, code, says) in [
        (
            "blank action",
            active.id.as_str(),
            " \t ",
            "",
            Code::InvalidArgument,
            "action is required",
        ),
        (
            "action too long",
            active.id.as_str(),
            &"a".repeat(129),
            "",
            Code::InvalidArgument,
            "action is longer than 128",
        ),
        (
            "resource with a terminal escape",
            active.id.as_str(),
            "ssh",
            esc,
            Code::InvalidArgument,
            "resource must not contain control characters",
        ),
        (
            "unknown id",
            unknown_id,
            "ssh",
            "",
            Code::NotFound,
            "not found",
        ),
        (
            "another tenant's grant",
            pending.id.as_str(),
            "ssh",
            "",
            Code::NotFound,
            "not found",
        ),
        (
            "an ended grant",
            ended.id.as_str(),
            "ssh",
            "",
            Code::FailedPrecondition,
            "does not admit its holder now",
        ),
        (
            "message over 1 MiB",
            active.id.as_str(),
            big.as_str(),
            "",
            Code::OutOfRange,
            "message",
        ),
    ] {
        let r = globex
            .grants
            .record_access(access_request(id, action, resource))
            .await;
        cases.push(case(format!("RecordAccess: {what}"), r, code, says));
    }

    // IssueGrantCertificate: ids and certificate requests.
    let csr = certificate_request();
    let mut tampered = csr.clone();
    // A character inside the base64 body: the signature no longer matches.
    let at = tampered.len() / 2;
    let flipped = if &tampered[at..=at] == "A" { "B" } else { "A" };
    tampered.replace_range(at..=at, flipped);
    for (what, id) in bad_ids {
        let r = alice
            .grants
            .issue_grant_certificate(pb::IssueGrantCertificateRequest {
                grant_id: id.into(),
                csr_pem: csr.clone(),
            })
            .await;
        cases.push(case(
            format!("IssueGrantCertificate: {what}"),
            r,
            Code::InvalidArgument,
            "malformed",
        ));
    }
    for (what, id, csr_pem, code, says) in [
        (
            "empty request",
            active.id.as_str(),
            String::new(),
            Code::InvalidArgument,
            "csr_pem is empty",
        ),
        (
            "blank request",
            active.id.as_str(),
            " \n ".into(),
            Code::InvalidArgument,
            "csr_pem is empty",
        ),
        (
            "20 KiB request",
            active.id.as_str(),
            "x".repeat(20 << 10),
            Code::InvalidArgument,
            "at most 16384",
        ),
        (
            "not PEM",
            active.id.as_str(),
            "hello".into(),
            Code::InvalidArgument,
            "not a valid PEM certificate request",
        ),
        (
            "a certificate instead of a request",
            active.id.as_str(),
            s.ca.cert_pem().to_owned(),
            Code::InvalidArgument,
            "not a valid PEM certificate request",
        ),
        (
            "a request whose signature does not match",
            active.id.as_str(),
            tampered.clone(),
            Code::InvalidArgument,
            "signature does not verify",
        ),
        (
            "unknown id",
            unknown_id,
            csr.clone(),
            Code::NotFound,
            "not found",
        ),
        (
            "an ended grant",
            ended.id.as_str(),
            csr.clone(),
            Code::NotFound,
            "not found",
        ),
        (
            "a pending grant",
            pending.id.as_str(),
            csr.clone(),
            Code::FailedPrecondition,
            "not active",
        ),
        (
            "message over 1 MiB",
            active.id.as_str(),
            big.clone(),
            Code::OutOfRange,
            "message",
        ),
    ] {
        let r = alice
            .grants
            .issue_grant_certificate(pb::IssueGrantCertificateRequest {
                grant_id: id.into(),
                csr_pem,
            })
            .await;
        cases.push(case(
            format!("IssueGrantCertificate: {what}"),
            r,
            code,
            says,
        ));
    }

    // AuditService: purposes, sequence numbers, sizes and ranges.
    for (what, from_seq, follow, purpose, code, says) in [
        (
            "unknown purpose value",
            0,
            false,
            9,
            Code::InvalidArgument,
            "unknown read purpose value 9",
        ),
        (
            "negative purpose value",
            0,
            false,
            -1,
            Code::InvalidArgument,
            "unknown read purpose value -1",
        ),
        (
            "from_seq beyond the end",
            size + 1_000,
            false,
            0,
            Code::OutOfRange,
            "beyond the log's end",
        ),
        (
            "following from u64::MAX",
            u64::MAX,
            true,
            pb::ReadPurpose::Tail as i32,
            Code::OutOfRange,
            "beyond the log's end",
        ),
    ] {
        let r = auditor
            .audit
            .stream_entries(pb::StreamEntriesRequest {
                from_seq,
                follow,
                purpose,
                last: 0,
            })
            .await;
        cases.push(case(format!("StreamEntries: {what}"), r, code, says));
    }
    for (what, start, end) in [("1001 entries", 0, 1001), ("[0, u64::MAX)", 0, u64::MAX)] {
        let r = auditor
            .audit
            .get_entries(pb::GetEntriesRequest { start, end })
            .await;
        cases.push(case(
            format!("GetEntries: {what}"),
            r,
            Code::InvalidArgument,
            "at most 1000 entries per call",
        ));
    }
    let r = auditor
        .audit
        .get_entries(pb::GetEntriesRequest {
            start: u64::MAX,
            end: 1,
        })
        .await;
    cases.push(case(
        "GetEntries: start u64::MAX",
        r,
        Code::InvalidArgument,
        "before start",
    ));
    for (what, tree_size) in [
        ("a size beyond the log", size + 1_000),
        ("u64::MAX", u64::MAX),
    ] {
        let r = auditor
            .audit
            .get_checkpoint(pb::GetCheckpointRequest { tree_size })
            .await;
        cases.push(case(
            format!("GetCheckpoint: {what}"),
            r,
            Code::OutOfRange,
            "is beyond the log, which has",
        ));
    }
    for (what, seq, tree_size, code, says) in [
        (
            "seq beyond the log",
            size + 1_000,
            0,
            Code::NotFound,
            "no entry",
        ),
        (
            "seq not below tree_size",
            5,
            5,
            Code::NotFound,
            "no entry 5",
        ),
        (
            "tree_size beyond the log",
            0,
            size + 1_000,
            Code::OutOfRange,
            "beyond the log's",
        ),
        (
            "u64::MAX both",
            u64::MAX,
            u64::MAX,
            Code::OutOfRange,
            "beyond the log's",
        ),
    ] {
        let r = auditor
            .audit
            .get_inclusion_proof(pb::GetInclusionProofRequest { seq, tree_size })
            .await;
        cases.push(case(format!("GetInclusionProof: {what}"), r, code, says));
    }
    for (what, old_size, new_size, code, says) in [
        (
            "old_size above new_size",
            6,
            5,
            Code::InvalidArgument,
            "larger than new_size",
        ),
        (
            "new_size beyond the log",
            1,
            size + 1_000,
            Code::OutOfRange,
            "beyond the log's",
        ),
        (
            "old_size u64::MAX",
            u64::MAX,
            0,
            Code::InvalidArgument,
            "larger than new_size",
        ),
    ] {
        let r = auditor
            .audit
            .get_consistency_proof(pb::GetConsistencyProofRequest { old_size, new_size })
            .await;
        cases.push(case(format!("GetConsistencyProof: {what}"), r, code, says));
    }
    for (what, tenant, code, says) in [
        (
            "no tenant named by staff",
            "",
            Code::InvalidArgument,
            "name the tenant",
        ),
        (
            "blank tenant",
            " \t ",
            Code::InvalidArgument,
            "name the tenant",
        ),
        (
            "tenant with a space",
            "ac me",
            Code::InvalidArgument,
            "tenant: invalid name",
        ),
        (
            "tenant with a terminal escape",
            esc,
            Code::InvalidArgument,
            "tenant: invalid name",
        ),
        (
            "1 KiB tenant",
            kib.as_str(),
            Code::InvalidArgument,
            "tenant: invalid name",
        ),
        (
            "message over 1 MiB",
            big.as_str(),
            Code::OutOfRange,
            "message",
        ),
    ] {
        let r = auditor
            .audit
            .get_tenant_entries(pb::GetTenantEntriesRequest {
                tenant: tenant.into(),
                ..Default::default()
            })
            .await;
        cases.push(case(format!("GetTenantEntries: {what}"), r, code, says));
    }
    let r = auditor
        .audit
        .get_tenant_entries(pb::GetTenantEntriesRequest {
            tenant: "acme".into(),
            tree_size: size + 1_000,
            ..Default::default()
        })
        .await;
    cases.push(case(
        "GetTenantEntries: tree_size beyond the log",
        r,
        Code::OutOfRange,
        "is beyond the log, which has",
    ));
    let r = auditor
        .audit
        .get_tenant_entries(pb::GetTenantEntriesRequest {
            tenant: "no-such-tenant".into(),
            ..Default::default()
        })
        .await;
    cases.push(case(
        "GetTenantEntries: an unregistered tenant",
        r,
        Code::NotFound,
        "tenant no-such-tenant is not registered",
    ));
    let r = acme
        .audit
        .get_tenant_entries(pb::GetTenantEntriesRequest {
            tenant: "globex".into(),
            ..Default::default()
        })
        .await;
    cases.push(case(
        "GetTenantEntries: another tenant's",
        r,
        Code::PermissionDenied,
        "only its own entries",
    ));

    // Break-glass: the request's flag, ReviewGrant, SetTenantBreakGlass and
    // the review queue's filter.
    for (what, seconds, says) in [
        ("negative", -1, "positive"),
        (
            "over the break-glass maximum",
            4 * 3600 + 1,
            "break-glass maximum",
        ),
        ("huge", i64::MAX, "break-glass maximum"),
    ] {
        let r = alice
            .grants
            .request_grant(pb::RequestGrantRequest {
                break_glass: true,
                ..grant_request("acme", "INC-9 outage", seconds)
            })
            .await;
        cases.push(case(
            format!("RequestGrant break_glass: duration {what}"),
            r,
            Code::InvalidArgument,
            says,
        ));
    }
    let r = alice
        .grants
        .request_grant(pb::RequestGrantRequest {
            break_glass: true,
            ..grant_request("acme", "INC-9 outage", 0)
        })
        .await;
    cases.push(case(
        "RequestGrant break_glass: support, where the tenant does not allow it",
        r,
        Code::PermissionDenied,
        "lets only root holders",
    ));
    let review = |id: &str, verdict: &str, note: &str| pb::ReviewGrantRequest {
        grant_id: id.into(),
        verdict: verdict.into(),
        note: note.into(),
    };
    for (what, id) in bad_ids {
        let r = admin
            .grants
            .review_grant(review(id, "justified", "ok"))
            .await;
        cases.push(case(
            format!("ReviewGrant: {what}"),
            r,
            Code::InvalidArgument,
            "malformed",
        ));
    }
    for (what, id, verdict, note, code, says) in [
        (
            "empty verdict",
            active.id.as_str(),
            "",
            "ok",
            Code::InvalidArgument,
            "verdict must be justified or unjustified",
        ),
        (
            "verdict in capitals",
            active.id.as_str(),
            "JUSTIFIED",
            "ok",
            Code::InvalidArgument,
            "verdict must be justified or unjustified",
        ),
        (
            "verdict with a terminal escape",
            active.id.as_str(),
            "justified\u{1b}[2J",
            "ok",
            Code::InvalidArgument,
            "verdict must be justified or unjustified",
        ),
        (
            "1 KiB verdict",
            active.id.as_str(),
            kib.as_str(),
            "ok",
            Code::InvalidArgument,
            "verdict must be justified or unjustified",
        ),
        (
            "empty note",
            active.id.as_str(),
            "justified",
            "",
            Code::InvalidArgument,
            "note is required",
        ),
        (
            "note too long",
            active.id.as_str(),
            "justified",
            long.as_str(),
            Code::InvalidArgument,
            "note is longer than 500",
        ),
        (
            "note with a newline",
            active.id.as_str(),
            "justified",
            "ok\nforged line",
            Code::InvalidArgument,
            "note must not contain control characters",
        ),
        (
            "unknown id",
            unknown_id,
            "justified",
            "ok",
            Code::NotFound,
            "not found",
        ),
        (
            "an ordinary grant",
            active.id.as_str(),
            "justified",
            "ok",
            Code::FailedPrecondition,
            "not a break-glass grant",
        ),
        (
            "message over 1 MiB",
            active.id.as_str(),
            "justified",
            big.as_str(),
            Code::OutOfRange,
            "message",
        ),
    ] {
        let r = admin.grants.review_grant(review(id, verdict, note)).await;
        cases.push(case(format!("ReviewGrant: {what}"), r, code, says));
    }
    for (what, name) in bad_names {
        let r = admin
            .tenants
            .set_tenant_break_glass(pb::SetTenantBreakGlassRequest {
                tenant: name.into(),
                allow_support: true,
            })
            .await;
        cases.push(case(
            format!("SetTenantBreakGlass: {what}"),
            r,
            Code::InvalidArgument,
            "invalid name",
        ));
    }
    let r = admin
        .tenants
        .set_tenant_break_glass(pb::SetTenantBreakGlassRequest {
            tenant: "nosuch".into(),
            allow_support: true,
        })
        .await;
    cases.push(case(
        "SetTenantBreakGlass: unknown tenant",
        r,
        Code::NotFound,
        "does not exist",
    ));
    let r = admin
        .grants
        .list_grants(pb::ListGrantsRequest {
            awaiting_me: true,
            awaiting_review: true,
            ..Default::default()
        })
        .await;
    cases.push(case(
        "ListGrants: both queues at once",
        r,
        Code::InvalidArgument,
        "two different queues",
    ));

    assert_refused_as_specified(&cases);

    // Still serving; nothing stored but refusals (and the final read), and
    // no refusal stores more than a bounded echo of what it was sent.
    let whoami = alice.staff.who_am_i(pb::WhoAmIRequest {}).await;
    assert!(whoami.is_ok());
    let after = s.entries().await;
    let added = &after[before.len()..];
    let kinds: Vec<&str> = added
        .iter()
        .map(|e| e.entry.kind.as_str())
        .filter(|k| *k != "call.refused")
        .collect();
    assert_eq!(kinds, ["audit.read"], "stored besides refusals");
    for e in added {
        for (k, v) in &e.entry.details {
            assert!(v.chars().count() <= 301, "{k} of {}: {v:?}", e.entry.seq);
        }
    }
    let report = s.verify_chain().await;
    assert!(report.ok, "{}", report.problem);
}

/// A validation asking about something malformed is a decision, not a
/// refusal: it is answered "denied, unknown" and logged, with what was
/// asked cut short, and never admits anyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_validation_subjects_are_denied_and_logged_briefly() {
    let s = TestServer::start().await;
    let mut alice = s.enrol("alice", Role::Support).await;
    let mut globex = s.add_tenant("globex", ApprovalPolicy::Auto, false).await;
    request(&mut alice, "globex", "INC-1").await;
    let huge = "a".repeat(64 << 10);
    let subjects = [
        Subject::GrantId("g-123".into()),
        Subject::GrantId(huge.clone()),
        Subject::Staff("al\u{1b}[31mice".into()),
        Subject::Staff(huge),
        Subject::Staff("spiffe://other.domain/staff/alice".into()),
        Subject::Staff(format!("spiffe://{TRUST_DOMAIN}/auditor/alice")),
        Subject::Staff(format!("spiffe://{TRUST_DOMAIN}/staff/alice/extra")),
        Subject::Staff("tenant/alice".into()),
    ];
    let n = subjects.len();
    for subject in subjects {
        let what = format!("{subject:.80?}");
        let v = globex
            .grants
            .validate_grant(pb::ValidateGrantRequest {
                subject: Some(subject),
                ..Default::default()
            })
            .await
            .expect("answered")
            .into_inner();
        assert!(!v.allowed, "{what}");
        assert_eq!(deny_reason(&v), pb::DenyReason::Unknown, "{what}");
    }
    let denied: Vec<_> = s
        .entries()
        .await
        .into_iter()
        .filter(|e| e.entry.kind == "validation.denied")
        .collect();
    assert_eq!(denied.len(), n);
    for e in &denied {
        let asked = &e.entry.details["asked"];
        assert!(asked.chars().count() <= 81, "{asked:?}");
    }
    eprintln!("malformed validation subjects: {n} cases, all denied as unknown");
}

/// Checks every case's code and message; fails listing all wrong ones.
/// A request for acme with `scopes`.
fn scoped(scopes: Vec<String>) -> pb::RequestGrantRequest {
    pb::RequestGrantRequest {
        scopes,
        ..grant_request("acme", "r", 0)
    }
}

fn assert_refused_as_specified(cases: &[Case]) {
    let mut wrong = Vec::new();
    for c in cases {
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
}

/// A PEM certificate signing request made with a fresh key.
fn certificate_request() -> String {
    let key = rcgen::KeyPair::generate().expect("key");
    rcgen::CertificateParams::new(Vec::<String>::new())
        .expect("params")
        .serialize_request(&key)
        .expect("request")
        .pem()
        .expect("PEM")
}

/// The approver-group fields (SetApproverGroup, RemoveApproverGroup, and
/// the group and threshold of a tenant's policy): each bad value refused
/// with the right code and what to fix, and nothing stored but refusals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approver_group_fields_refuse_bad_input_clearly() {
    let s = TestServer::start().await;
    let mut admin = s.admin().await;
    s.enrol("alice", Role::Support).await;
    s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let big = "x".repeat(1 << 20);
    let many: Vec<String> = (0..65).map(|i| format!("m{i}")).collect();
    let mut cases = Vec::new();
    let members = |m: &[&str]| m.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    for (what, name, m, code, says) in [
        (
            "empty name",
            "",
            members(&["alice"]),
            Code::InvalidArgument,
            "name: invalid name",
        ),
        (
            "upper-case name",
            "Leads",
            members(&["alice"]),
            Code::InvalidArgument,
            "name: invalid name",
        ),
        (
            "escape in name",
            "le\u{1b}[2J",
            members(&["alice"]),
            Code::InvalidArgument,
            "name: invalid name",
        ),
        (
            "1 KiB name",
            &"a".repeat(1024),
            members(&["alice"]),
            Code::InvalidArgument,
            "name: invalid name",
        ),
        (
            "no members",
            "leads",
            vec![],
            Code::InvalidArgument,
            "needs at least one member",
        ),
        (
            "blank member",
            "leads",
            members(&["alice", " "]),
            Code::InvalidArgument,
            "members: invalid name",
        ),
        (
            "member twice",
            "leads",
            members(&["alice", "alice"]),
            Code::InvalidArgument,
            "alice is named twice",
        ),
        (
            "65 members",
            "leads",
            many.clone(),
            Code::InvalidArgument,
            "at most 64 members",
        ),
        (
            "unknown member",
            "leads",
            members(&["nobody"]),
            Code::NotFound,
            "nobody is not enrolled",
        ),
        (
            "message over 1 MiB",
            "leads",
            vec![big.clone()],
            Code::OutOfRange,
            "message",
        ),
    ] {
        let r = admin
            .staff
            .set_approver_group(pb::SetApproverGroupRequest {
                name: name.into(),
                members: m,
            })
            .await;
        cases.push(case(format!("SetApproverGroup: {what}"), r, code, says));
    }
    for (what, name, code, says) in [
        (
            "empty name",
            "",
            Code::InvalidArgument,
            "name: invalid name",
        ),
        (
            "control character",
            "a\u{0}b",
            Code::InvalidArgument,
            "name: invalid name",
        ),
        ("unknown group", "leads", Code::NotFound, "does not exist"),
        (
            "message over 1 MiB",
            big.as_str(),
            Code::OutOfRange,
            "message",
        ),
    ] {
        let r = admin
            .staff
            .remove_approver_group(pb::RemoveApproverGroupRequest { name: name.into() })
            .await;
        cases.push(case(format!("RemoveApproverGroup: {what}"), r, code, says));
    }
    for (what, approval, group, threshold, code, says) in [
        (
            "group policy without a group",
            ApprovalPolicy::Group,
            "",
            2,
            Code::InvalidArgument,
            "approver_group is required",
        ),
        (
            "bad group name",
            ApprovalPolicy::Group,
            "Leads!",
            2,
            Code::InvalidArgument,
            "approver_group: invalid name",
        ),
        (
            "unknown group",
            ApprovalPolicy::Group,
            "leads",
            1,
            Code::FailedPrecondition,
            "does not exist",
        ),
        (
            "group with another policy",
            ApprovalPolicy::Peer,
            "leads",
            0,
            Code::InvalidArgument,
            "only for approval policy group",
        ),
        (
            "threshold with another policy",
            ApprovalPolicy::Auto,
            "",
            2,
            Code::InvalidArgument,
            "only for approval policy group",
        ),
        (
            "threshold without a policy",
            ApprovalPolicy::Unspecified,
            "",
            7,
            Code::InvalidArgument,
            "only for approval policy group",
        ),
    ] {
        let r = admin
            .tenants
            .update_tenant(pb::UpdateTenantRequest {
                name: "acme".into(),
                approval: approval as i32,
                approver_group: group.into(),
                approval_threshold: threshold,
                ..Default::default()
            })
            .await;
        cases.push(case(format!("UpdateTenant: {what}"), r, code, says));
        let r = admin
            .tenants
            .add_tenant(pb::AddTenantRequest {
                name: "t-new".into(),
                approval: approval as i32,
                approver_group: group.into(),
                approval_threshold: threshold,
                ..Default::default()
            })
            .await;
        let code = if approval == ApprovalPolicy::Unspecified {
            Code::InvalidArgument
        } else {
            code
        };
        let says = if approval == ApprovalPolicy::Unspecified {
            "approval policy is required"
        } else {
            says
        };
        cases.push(case(format!("AddTenant: {what}"), r, code, says));
    }
    // Thresholds out of range, against a real group of one.
    admin
        .staff
        .set_approver_group(pb::SetApproverGroupRequest {
            name: "leads".into(),
            members: vec!["alice".into()],
        })
        .await
        .expect("set group");
    for (what, threshold) in [
        ("threshold 0", 0),
        ("threshold above the size", 2),
        ("threshold u32::MAX", u32::MAX),
    ] {
        let r = admin
            .tenants
            .update_tenant(pb::UpdateTenantRequest {
                name: "acme".into(),
                approval: ApprovalPolicy::Group as i32,
                approver_group: "leads".into(),
                approval_threshold: threshold,
                ..Default::default()
            })
            .await;
        cases.push(case(
            format!("UpdateTenant: {what}"),
            r,
            Code::InvalidArgument,
            "must be between 1 and its 1 active members",
        ));
    }
    assert_refused_as_specified(&cases);

    // Nothing but the one group changed.
    let groups = admin
        .staff
        .list_approver_groups(pb::ListApproverGroupsRequest {})
        .await
        .expect("list")
        .into_inner()
        .groups;
    assert_eq!(groups.len(), 1);
    let tenants = admin
        .tenants
        .list_tenants(pb::ListTenantsRequest {})
        .await
        .expect("tenants")
        .into_inner()
        .tenants;
    assert_eq!(tenants.len(), 1);
    assert_eq!(tenants[0].approval(), ApprovalPolicy::Auto);
    let kinds: Vec<String> = s
        .entries()
        .await
        .into_iter()
        .map(|e| e.entry.kind)
        .filter(|k| !matches!(k.as_str(), "call.refused" | "audit.read"))
        .collect();
    assert_eq!(kinds.iter().filter(|k| k.starts_with("group.")).count(), 1);
    assert!(!kinds.iter().any(|k| k == "tenant.updated"), "{kinds:?}");
}
