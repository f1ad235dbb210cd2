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

#[path = "policy_matrix/calls.rs"]
mod calls;
mod common;

use calls::call;
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
    ListSubprocessors,
    ReadTiles,
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
    ListSubprocessors,
    ReadTiles,
    ReviewGrant,
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
    RecordReport,
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
    TerminateTenant,
    ShredTenant,
    RecordIncident,
    UpdateIncident,
    RecordNotification,
    GetIncident,
    ListIncidents,
    NotificationDocument,
    Documentation,
    LocateStaff,
    SetTenantCountries,
    SetTenantJustification,
    ObjectToSubprocessor,
    AddSubprocessor,
    ListSubprocessors,
    SetProcessingRecord,
    GetProcessingRecord,
    ListProcessingRecords,
    ProcessingRegisterDocument,
    RecertifyStaff,
    ReadTiles,
    ReadEntryBundles,
    ReviewGrant,
    SetTenantBreakGlass,
    SetApproverGroup,
    RemoveApproverGroup,
    ListApproverGroups,
    SetTenantAccessLimit,
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
    RecordReport,
    GetVerificationKeys,
    ListAlerts,
    ListScreens,
    GetIncident,
    ListIncidents,
    NotificationDocument,
    Documentation,
    ListSubprocessors,
    GetProcessingRecord,
    ListProcessingRecords,
    ProcessingRegisterDocument,
    ReadTiles,
    ReadEntryBundles,
    ReviewGrant,
    ListApproverGroups,
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
    RecordReport,
    GetVerificationKeys,
    GetRevocations,
    WatchRevocations,
    ListAlerts,
    GetIncident,
    ListIncidents,
    NotificationDocument,
    Documentation,
    ObjectToSubprocessor,
    ListSubprocessors,
    GetProcessingRecord,
    ListProcessingRecords,
    ProcessingRegisterDocument,
    ReadTiles,
    ReviewGrant,
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
    // The tile read API's two actions are HTTPS calls (`tile_call`).
    let s = TestServer::start_with(|c| c.tiles.enabled = true).await;
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
            // A refused principal's refusals are logged within a budget
            // (limits::LOGGED_REFUSAL_BURST, refilled per second): a second
            // per cell keeps every one of them logged, which is checked below.
            s.clock.advance_secs(1);
            let result = match action {
                ReadTiles | ReadEntryBundles => tile_call(&s, &row.actor, action).await,
                _ => call(&mut row.clients, action, &format!("m{i}x{j}")).await,
            };
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

/// A tile read API call (HTTPS) as the matrix's `actor`, with a fresh
/// certificate for the same principal: 403 is PERMISSION_DENIED, 200 and
/// 404 (no tile there yet) are admissions.
async fn tile_call(s: &TestServer, actor: &str, action: Action) -> Result<String, Status> {
    let (kind, name) = actor.split_once('/').expect("kind/name");
    let kind = match kind {
        "staff" => PrincipalKind::Staff,
        "auditor" => PrincipalKind::Auditor,
        "tenant" => PrincipalKind::Tenant,
        other => panic!("no principal kind {other}"),
    };
    let issued = s.issue(kind, name);
    let path = match action {
        ReadTiles => "/tile/0/000.p/1",
        ReadEntryBundles => "/tile/entries/000.p/1",
        _ => unreachable!("only the tile actions are HTTPS"),
    };
    let r = common::https::request_as(
        s.ca.cert_pem(),
        Some((&issued.cert_pem, &issued.key_pem)),
        s.tiles_addr.expect("tiles on"),
        "GET",
        path,
        None,
        std::time::Duration::from_secs(10),
    )
    .await;
    match r.status {
        200 | 404 => Ok(String::new()),
        403 => Err(Status::permission_denied(r.body)),
        other => Err(Status::unknown(format!("HTTP {other}: {}", r.body))),
    }
}

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
