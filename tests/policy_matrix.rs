//! Every caller × every RPC against a real server over mutual TLS.
//!
//! The expected decisions are the specification, written out below as one
//! allow list per caller. Each cell is one real call with arguments good
//! enough to pass admission: an admitted call may still fail on its dummy
//! arguments (NOT_FOUND, INVALID_ARGUMENT...) but never with
//! PERMISSION_DENIED; a refused call fails with exactly PERMISSION_DENIED and
//! leaves a `call.refused` entry naming the caller and the call.
//!
//! The same table is checked against `policy::authorize` directly, so a
//! disagreement between the spec and the code shows up in both tests.

mod common;

use common::*;
use daypass::{
    client::Clients,
    identity::{Name, PrincipalKind},
    pb::{self, ApprovalPolicy},
    policy::{
        self,
        Action::{self, *},
        Caller, Role,
    },
};
use tonic::{Code, Status};

// ------------------------------------------------------ the specification ---

const SUPPORT_ROLE: &[Action] = &[
    WhoAmI,
    ListTenants,
    RequestGrant,
    ApproveGrant,
    DenyGrant,
    ListGrants,
    GetGrant,
    ReleaseGrant,
    GetCheckpoint,
    GetInclusionProof,
    GetConsistencyProof,
    IssueGrantCertificate,
    GetVerificationKeys,
];

/// Support's calls, the alerts (root holders acknowledge and resolve)
/// and the webhooks' dead letters.
const ROOT_ROLE: &[Action] = &[
    WhoAmI,
    ListTenants,
    RequestGrant,
    ApproveGrant,
    DenyGrant,
    ListGrants,
    GetGrant,
    ReleaseGrant,
    GetCheckpoint,
    GetInclusionProof,
    GetConsistencyProof,
    IssueGrantCertificate,
    GetVerificationKeys,
    ListAlerts,
    AcknowledgeAlert,
    ResolveAlert,
    ListDeadLetters,
    RetryDeadLetter,
];

const ADMIN_ROLE: &[Action] = &[
    WhoAmI,
    AddStaff,
    OffboardStaff,
    ListStaff,
    AddTenant,
    UpdateTenant,
    ListTenants,
    ApproveGrant,
    DenyGrant,
    ListGrants,
    GetGrant,
    RevokeGrant,
    StreamEntries,
    VerifyChain,
    GetCheckpoint,
    GetEntries,
    GetInclusionProof,
    GetConsistencyProof,
    GetTenantEntries,
    GetVerificationKeys,
    ListAlerts,
    AcknowledgeAlert,
    ResolveAlert,
    ListDeadLetters,
    RetryDeadLetter,
    PairScreen,
    RevokeScreen,
    ListScreens,
    Backup,
    RecordDeclaration,
];

const AUDITOR_ROLE: &[Action] = &[
    WhoAmI,
    ListStaff,
    ListTenants,
    ListGrants,
    GetGrant,
    StreamEntries,
    VerifyChain,
    GetCheckpoint,
    GetEntries,
    GetInclusionProof,
    GetConsistencyProof,
    GetTenantEntries,
    GetVerificationKeys,
    ListAlerts,
    ListScreens,
];

/// Partnerships, data-entry and administration: no access to customer
/// environments, so nothing but `WhoAmI`.
const NO_CUSTOMER_ACCESS: &[Action] = &[WhoAmI];

const TENANT: &[Action] = &[
    WhoAmI,
    ApproveGrant,
    DenyGrant,
    ListGrants,
    GetGrant,
    RevokeGrant,
    ValidateGrant,
    RecordAccess,
    GetCheckpoint,
    GetInclusionProof,
    GetConsistencyProof,
    GetTenantEntries,
    GetVerificationKeys,
    GetRevocations,
    WatchRevocations,
    ListAlerts,
];

/// Offboarded, unenrolled, unregistered or wrong-kind principals.
const NOTHING: &[Action] = &[];

/// The spec's row for an enrolled staff member presenting the right kind of
/// certificate. Exhaustive on purpose: a new role must get a row.
fn staff_allows(role: Role) -> &'static [Action] {
    match role {
        Role::Support => SUPPORT_ROLE,
        Role::Root => ROOT_ROLE,
        Role::Admin => ADMIN_ROLE,
        Role::Auditor => AUDITOR_ROLE,
        Role::Partnerships | Role::DataEntry | Role::Administration => NO_CUSTOMER_ACCESS,
    }
}

/// A grant id that is well-formed but exists nowhere: object-level checks
/// answer NOT_FOUND for it, so only admission can say PERMISSION_DENIED.
const UNKNOWN_GRANT: &str = "g-000000000000000000000000";
/// Likewise for alerts.
const UNKNOWN_ALERT: &str = "a-000000000000000000000000";

/// Codes an admitted call may end with, given dummy arguments.
const ADMITTED: &[Code] = &[
    Code::Ok,
    Code::NotFound,
    Code::InvalidArgument,
    Code::FailedPrecondition,
    Code::AlreadyExists,
    Code::OutOfRange,
];

// ------------------------------------------------------------------ tests ---

#[test]
fn the_written_table_is_what_policy_authorize_decides() {
    let name = Name::parse("someone").expect("name");
    let mut rows: Vec<(String, Caller, &[Action])> = Role::ALL
        .into_iter()
        .map(|role| {
            (
                role.as_str().to_owned(),
                Caller::Staff {
                    name: name.clone(),
                    role,
                },
                staff_allows(role),
            )
        })
        .collect();
    rows.push(("tenant".into(), Caller::Tenant { name }, TENANT));
    let mut disagreements = Vec::new();
    for (label, caller, allows) in &rows {
        for action in Action::ALL {
            let spec = allows.contains(&action);
            let code = policy::authorize(caller, action).is_ok();
            if spec != code {
                disagreements.push(format!(
                    "{label} {}: spec {}, policy::authorize {}",
                    action.as_str(),
                    verdict(spec),
                    verdict(code)
                ));
            }
        }
    }
    assert!(
        disagreements.is_empty(),
        "the spec and policy::authorize disagree:\n{}",
        disagreements.join("\n")
    );
}

#[tokio::test]
async fn every_caller_times_every_rpc() {
    let s = TestServer::start().await;
    s.add_tenant("acme", ApprovalPolicy::Auto, false).await;

    let mut rows = vec![
        Row::new(
            "support",
            "staff/sam",
            SUPPORT_ROLE,
            s.enrol("sam", pb::Role::Support).await,
        ),
        Row::new(
            "root",
            "staff/rory",
            ROOT_ROLE,
            s.enrol("rory", pb::Role::Root).await,
        ),
        Row::new(
            "admin",
            &format!("staff/{ADMIN}"),
            ADMIN_ROLE,
            s.admin().await,
        ),
        Row::new(
            "auditor",
            "auditor/eve",
            AUDITOR_ROLE,
            s.enrol("eve", pb::Role::Auditor).await,
        ),
        Row::new(
            "partnerships",
            "staff/pat",
            NO_CUSTOMER_ACCESS,
            s.enrol("pat", pb::Role::Partnerships).await,
        ),
        Row::new(
            "data-entry",
            "staff/dan",
            NO_CUSTOMER_ACCESS,
            s.enrol("dan", pb::Role::DataEntry).await,
        ),
        Row::new(
            "administration",
            "staff/ann",
            NO_CUSTOMER_ACCESS,
            s.enrol("ann", pb::Role::Administration).await,
        ),
        Row::new("tenant", "tenant/acme", TENANT, s.tenant("acme").await),
    ];
    // Enrolled, then offboarded: the certificate is still valid, the person
    // no longer is.
    let gone = s.enrol("gone", pb::Role::Support).await;
    s.admin()
        .await
        .staff
        .offboard_staff(pb::OffboardStaffRequest {
            name: "gone".into(),
        })
        .await
        .expect("offboard");
    rows.push(Row::new("offboarded", "staff/gone", NOTHING, gone));
    rows.push(Row::new(
        "unenrolled",
        "staff/nobody",
        NOTHING,
        s.client(PrincipalKind::Staff, "nobody").await,
    ));
    // Beyond the spec's list: principals whose certificate is valid but
    // does not match the registries.
    rows.push(Row::new(
        "auditor w/ staff cert",
        "staff/eve",
        NOTHING,
        s.staff("eve").await,
    ));
    rows.push(Row::new(
        "support w/ auditor cert",
        "auditor/sam",
        NOTHING,
        s.auditor("sam").await,
    ));
    rows.push(Row::new(
        "unregistered tenant",
        "tenant/nowhere",
        NOTHING,
        s.tenant("nowhere").await,
    ));

    // The matrix covers every role the code knows.
    for role in Role::ALL {
        assert!(
            rows.iter().any(|r| r.label == role.as_str()),
            "no matrix row for role {role}"
        );
    }

    let mut refused = Vec::new();
    let mut failures = Vec::new();
    for (i, row) in rows.iter_mut().enumerate() {
        for (j, action) in Action::ALL.into_iter().enumerate() {
            let expect_admitted = row.allows.contains(&action);
            let result = call(&mut row.clients, action, &format!("m{i}x{j}")).await;
            let code = result.as_ref().map_or_else(Status::code, |_| Code::Ok);
            let cell_ok = if expect_admitted {
                let who_ok = match (&result, action) {
                    (Ok(who), WhoAmI) => *who == row.actor,
                    _ => true,
                };
                ADMITTED.contains(&code) && who_ok
            } else {
                code == Code::PermissionDenied
            };
            if code == Code::PermissionDenied {
                refused.push((row.actor.clone(), action));
            }
            row.cells.push(match (cell_ok, expect_admitted) {
                (true, true) => '+',
                (true, false) => '.',
                (false, true) => '!',
                (false, false) => 'X',
            });
            if !cell_ok {
                failures.push(format!(
                    "{} ({}) {}: expected {}, got {:?}",
                    row.label,
                    row.actor,
                    action.as_str(),
                    if expect_admitted {
                        "admission"
                    } else {
                        "PERMISSION_DENIED"
                    },
                    result.map_err(|st| (st.code(), st.message().to_owned()))
                ));
            }
        }
    }
    let cases = rows.len() * Action::ALL.len();
    let matrix = render(&rows);
    println!("{cases} cases\n{matrix}");
    assert!(
        failures.is_empty(),
        "{matrix}\n{} of {cases} cells wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(cases, 13 * Action::ALL.len());

    // Every refusal is logged once, with its caller and call, and no
    // admitted call left a permission refusal behind.
    let entries = s.entries().await;
    let permission_refusals: Vec<_> = entries
        .iter()
        .filter(|e| {
            e.entry.kind == "call.refused"
                && e.entry.details.get("code").map(String::as_str) == Some("permission-denied")
        })
        .collect();
    let mut unlogged = Vec::new();
    for (actor, action) in &refused {
        let n = permission_refusals
            .iter()
            .filter(|e| {
                e.entry.actor == *actor
                    && e.entry.details.get("call").map(String::as_str) == Some(action.as_str())
            })
            .count();
        if n != 1 {
            unlogged.push(format!("{actor} {}: logged {n} times", action.as_str()));
        }
    }
    assert!(
        unlogged.is_empty(),
        "refusals not logged exactly once:\n{}",
        unlogged.join("\n")
    );
    assert_eq!(
        permission_refusals.len(),
        refused.len(),
        "permission refusals in the log other than the matrix's"
    );
}

// ---------------------------------------------------------------- helpers ---

/// One caller: its label, its actor string in the log, what the spec
/// admits, its connection, and the rendered outcome per RPC.
struct Row {
    label: String,
    actor: String,
    allows: &'static [Action],
    clients: Clients,
    cells: String,
}

impl Row {
    fn new(label: &str, actor: &str, allows: &'static [Action], clients: Clients) -> Row {
        Row {
            label: label.to_owned(),
            actor: actor.to_owned(),
            allows,
            clients,
            cells: String::new(),
        }
    }
}

/// For calls whose answer does not matter, only whether there was one.
fn done<T>(_: T) -> String {
    String::new()
}

fn verdict(admitted: bool) -> &'static str {
    if admitted { "admits" } else { "refuses" }
}

/// The matrix with a legend: one column per RPC, in `Action::ALL` order.
fn render(rows: &[Row]) -> String {
    let width = rows.iter().map(|r| r.label.len()).max().unwrap_or(0);
    let mut out = String::from(
        "+ admitted as specified   . refused as specified   \
         ! specified admitted, was not   X specified refused, was not\n",
    );
    for (j, action) in Action::ALL.into_iter().enumerate() {
        out.push_str(&format!("  col {:>2}: {}\n", j + 1, action.as_str()));
    }
    let digits = |f: fn(usize) -> usize| -> String {
        (1..=Action::ALL.len())
            .map(|c| char::from_digit((f(c) % 10) as u32, 10).unwrap_or('?'))
            .collect()
    };
    out.push_str(&format!("{:width$}  {}\n", "", digits(|c| c / 10)));
    out.push_str(&format!("{:width$}  {}\n", "", digits(|c| c)));
    for row in rows {
        out.push_str(&format!("{:width$}  {}\n", row.label, row.cells));
    }
    out
}

/// Makes one real `action` call. On success returns a short description of
/// the answer (for `WhoAmI`, the actor the server saw). `fresh` is unique
/// per cell, for names that must not exist yet.
async fn call(c: &mut Clients, action: Action, fresh: &str) -> Result<String, Status> {
    match action {
        AddStaff => c
            .staff
            .add_staff(pb::AddStaffRequest {
                name: format!("new-{fresh}"),
                role: pb::Role::Support as i32,
            })
            .await
            .map(done),
        OffboardStaff => c
            .staff
            .offboard_staff(pb::OffboardStaffRequest {
                name: "no-such-person".into(),
            })
            .await
            .map(done),
        ListStaff => c.staff.list_staff(pb::ListStaffRequest {}).await.map(done),
        WhoAmI => c.staff.who_am_i(pb::WhoAmIRequest {}).await.map(|r| {
            let r = r.into_inner();
            format!("{}/{}", r.kind, r.name)
        }),
        AddTenant => c
            .tenants
            .add_tenant(pb::AddTenantRequest {
                name: format!("t-{fresh}"),
                approval: ApprovalPolicy::Auto as i32,
                require_ticket: false,
            })
            .await
            .map(done),
        UpdateTenant => c
            .tenants
            .update_tenant(pb::UpdateTenantRequest {
                name: "acme".into(),
                approval: ApprovalPolicy::Unspecified as i32,
                require_ticket: None,
            })
            .await
            .map(done),
        ListTenants => c
            .tenants
            .list_tenants(pb::ListTenantsRequest {})
            .await
            .map(done),
        RequestGrant => c
            .grants
            .request_grant(grant_request("acme", "policy matrix", 60))
            .await
            .map(done),
        ApproveGrant => c
            .grants
            .approve_grant(pb::DecideGrantRequest {
                grant_id: UNKNOWN_GRANT.into(),
                note: String::new(),
            })
            .await
            .map(done),
        DenyGrant => c
            .grants
            .deny_grant(pb::DecideGrantRequest {
                grant_id: UNKNOWN_GRANT.into(),
                note: String::new(),
            })
            .await
            .map(done),
        ListGrants => c
            .grants
            .list_grants(pb::ListGrantsRequest::default())
            .await
            .map(done),
        GetGrant => c
            .grants
            .get_grant(pb::GetGrantRequest {
                grant_id: UNKNOWN_GRANT.into(),
            })
            .await
            .map(done),
        RevokeGrant => c
            .grants
            .revoke_grant(pb::RevokeGrantRequest {
                grant_id: UNKNOWN_GRANT.into(),
                note: String::new(),
            })
            .await
            .map(done),
        ReleaseGrant => c
            .grants
            .release_grant(pb::ReleaseGrantRequest {
                grant_id: UNKNOWN_GRANT.into(),
            })
            .await
            .map(done),
        ValidateGrant => c
            .grants
            .validate_grant(validate_request(UNKNOWN_GRANT))
            .await
            .map(done),
        RecordAccess => c
            .grants
            .record_access(access_request(UNKNOWN_GRANT, "ssh", ""))
            .await
            .map(done),
        GetCheckpoint => c
            .audit
            .get_checkpoint(pb::GetCheckpointRequest { tree_size: 0 })
            .await
            .map(done),
        GetEntries => c
            .audit
            .get_entries(pb::GetEntriesRequest { start: 0, end: 1 })
            .await
            .map(done),
        GetInclusionProof => c
            .audit
            .get_inclusion_proof(pb::GetInclusionProofRequest {
                seq: 0,
                tree_size: 0,
            })
            .await
            .map(done),
        GetConsistencyProof => c
            .audit
            .get_consistency_proof(pb::GetConsistencyProofRequest {
                old_size: 1,
                new_size: 0,
            })
            .await
            .map(done),
        // Empty tenant: a tenant's own; staff must name one (INVALID_ARGUMENT).
        GetTenantEntries => c
            .audit
            .get_tenant_entries(pb::GetTenantEntriesRequest::default())
            .await
            .map(done),
        StreamEntries => {
            let mut stream = c
                .audit
                .stream_entries(pb::StreamEntriesRequest {
                    follow: false,
                    ..Default::default()
                })
                .await?
                .into_inner();
            let mut n = 0;
            while stream.message().await?.is_some() {
                n += 1;
            }
            Ok(format!("{n} entries"))
        }
        VerifyChain => c
            .audit
            .verify_chain(pb::VerifyChainRequest {})
            .await
            .map(done),
        IssueGrantCertificate => c
            .grants
            .issue_grant_certificate(pb::IssueGrantCertificateRequest {
                grant_id: UNKNOWN_GRANT.into(),
                csr_pem: "-----BEGIN CERTIFICATE REQUEST-----".into(),
            })
            .await
            .map(done),
        GetVerificationKeys => c
            .gate
            .get_verification_keys(pb::GetVerificationKeysRequest {})
            .await
            .map(done),
        GetRevocations => c
            .gate
            .get_revocations(pb::GetRevocationsRequest {})
            .await
            .map(done),
        WatchRevocations => {
            let mut stream = c
                .gate
                .watch_revocations(pb::WatchRevocationsRequest {})
                .await?
                .into_inner();
            // The first list comes at once; the stream then stays open.
            let first = stream.message().await?;
            Ok(format!("first list: {}", first.is_some()))
        }
        ListAlerts => c
            .alerts
            .list_alerts(pb::ListAlertsRequest::default())
            .await
            .map(done),
        AcknowledgeAlert => c
            .alerts
            .acknowledge_alert(pb::DecideAlertRequest {
                id: UNKNOWN_ALERT.into(),
                note: "looking".into(),
            })
            .await
            .map(done),
        ResolveAlert => c
            .alerts
            .resolve_alert(pb::DecideAlertRequest {
                id: UNKNOWN_ALERT.into(),
                note: "done".into(),
            })
            .await
            .map(done),
        ListDeadLetters => c
            .notify
            .list_dead_letters(pb::ListDeadLettersRequest::default())
            .await
            .map(done),
        // No such hook: NOT_FOUND once admitted.
        RetryDeadLetter => c
            .notify
            .retry_dead_letter(pb::RetryDeadLetterRequest {
                hook: "none".into(),
                seq: 0,
            })
            .await
            .map(done),
        PairScreen => c
            .screens
            .pair_screen(pb::PairScreenRequest {
                name: format!("wall-{fresh}"),
                ttl_secs: 0,
            })
            .await
            .map(done),
        // No such screen: NOT_FOUND once admitted.
        RevokeScreen => c
            .screens
            .revoke_screen(pb::RevokeScreenRequest {
                name: "no-such-screen".into(),
            })
            .await
            .map(done),
        ListScreens => c
            .screens
            .list_screens(pb::ListScreensRequest {})
            .await
            .map(done),
        // Nobody by that name: NOT_FOUND once admitted.
        RecordDeclaration => c
            .staff
            .record_declaration(pb::RecordDeclarationRequest {
                name: "nobody-here".into(),
                version: "2026-1".into(),
                signed_on: "2026-01-05".into(),
                document_sha256: "ab".repeat(32),
            })
            .await
            .map(done),
        Backup => {
            let mut stream = c.audit.backup(pb::BackupRequest {}).await?.into_inner();
            let mut bytes = 0;
            while let Some(chunk) = stream.message().await? {
                bytes += chunk.data.len();
            }
            Ok(format!("{bytes} bytes"))
        }
    }
}
