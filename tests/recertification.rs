//! Recertification (`staff.recertify_days`): a grant holder's eligibility
//! lapses unless an admin other than them re-certifies it within the
//! period (the enrolment is the first certification). Past it, requests
//! and approvals are refused with when it lapsed and what to run; a
//! re-certification is logged (`staff.recertified`), rebuilt from the log
//! at start-up, and refused for oneself and for an offboarded person. Off
//! by default. The clock is moved, never waited for.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use daypass::{
    audit::SealedEntry,
    clock::Timestamp,
    identity::PrincipalKind,
    pb::{self, ApprovalPolicy, Role},
};
use tonic::Code;

const DAY: i64 = 86_400;

async fn try_request(
    c: &mut daypass::client::Clients,
    tenant: &str,
) -> Result<pb::Grant, tonic::Status> {
    c.grants
        .request_grant(grant_request(tenant, "INC-7 queue stuck", 3600))
        .await
        .map(|r| r.into_inner())
}

async fn recertify(
    c: &mut daypass::client::Clients,
    name: &str,
) -> Result<pb::Staff, tonic::Status> {
    c.staff
        .recertify_staff(pb::RecertifyStaffRequest { name: name.into() })
        .await
        .map(|r| r.into_inner())
}

async fn listed(s: &TestServer, name: &str) -> pb::Staff {
    s.admin()
        .await
        .staff
        .list_staff(pb::ListStaffRequest {})
        .await
        .unwrap()
        .into_inner()
        .staff
        .into_iter()
        .find(|m| m.name == name)
        .unwrap()
}

/// The entry of `kind` naming `name`, the newest first.
async fn newest(s: &TestServer, kind: &str, name: &str) -> SealedEntry {
    s.entries()
        .await
        .into_iter()
        .rev()
        .find(|e| {
            e.entry.kind == kind && e.entry.details.get("name").map(String::as_str) == Some(name)
        })
        .unwrap_or_else(|| panic!("no {kind} for {name}"))
}

fn day_of(t: Timestamp) -> String {
    t.to_rfc3339()[..10].to_owned()
}

fn lapsed_message(name: &str, due: Timestamp, days: i64) -> String {
    format!(
        "{name}'s eligibility lapsed on {} (recertify every {days} days): an admin must run `daypass staff recertify {name}`",
        day_of(due)
    )
}

#[tokio::test]
async fn eligibility_lapses_after_the_period_and_a_recertification_renews_it() {
    let mut s = TestServer::start_with(|c| c.staff.recertify_days = 90).await;
    s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let mut alice = s.enrol("alice", Role::Support).await;
    let enrolled = newest(&s, "staff.enrolled", "alice").await.entry.timestamp;
    let due = enrolled.plus_secs(90 * DAY);

    // The enrolment is the first certification: listed with its due date.
    let a = listed(&s, "alice").await;
    assert_eq!(a.last_certified_at_ms, enrolled.millis());
    assert_eq!(a.recertify_due_at_ms, due.millis());

    // A minute before the due time: still eligible.
    s.clock.advance_secs(90 * DAY - 60);
    let g = try_request(&mut alice, "acme")
        .await
        .expect("not lapsed yet");
    release(&mut alice, &g.id).await;

    // Past it: refused, saying when it lapsed and who can fix it.
    s.clock.advance_secs(120);
    let e = try_request(&mut alice, "acme").await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert_eq!(e.message(), lapsed_message("alice", due, 90));

    // An admin re-certifies: logged with the admin as actor, and the
    // next request goes through.
    let mut admin = s.admin().await;
    let rec = recertify(&mut admin, "alice").await.unwrap();
    assert!(rec.receipt.is_some());
    let logged = newest(&s, "staff.recertified", "alice").await;
    assert_eq!(logged.entry.actor, format!("staff/{ADMIN}"));
    assert_eq!(logged.entry.details.len(), 1, "{:?}", logged.entry.details);
    let renewed = logged.entry.timestamp;
    assert_eq!(rec.last_certified_at_ms, renewed.millis());
    assert_eq!(
        rec.recertify_due_at_ms,
        renewed.plus_secs(90 * DAY).millis()
    );
    let g = try_request(&mut alice, "acme").await.expect("recertified");
    assert_eq!(g.state, pb::GrantState::Active as i32);
    release(&mut alice, &g.id).await;

    // The record is rebuilt from the log at start-up (no fail-closed), and
    // the re-certification still counts...
    s.restart().await;
    let a = listed(&s, "alice").await;
    assert_eq!(a.last_certified_at_ms, renewed.millis());
    let mut alice = s.staff("alice").await;
    let g = try_request(&mut alice, "acme")
        .await
        .expect("still recertified");
    release(&mut alice, &g.id).await;
    assert!(s.verify_chain().await.ok);

    // ...until it lapses in its turn, on the new date.
    s.clock.advance_secs(90 * DAY + 1);
    let e = try_request(&mut alice, "acme").await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert_eq!(
        e.message(),
        lapsed_message("alice", renewed.plus_secs(90 * DAY), 90)
    );
    s.stop().await;
}

#[tokio::test]
async fn a_pending_request_is_not_approved_once_the_holder_lapsed() {
    let mut s = TestServer::start_with(|c| c.staff.recertify_days = 1).await;
    s.add_tenant("globex", ApprovalPolicy::Approval, false)
        .await;
    let mut bob = s.enrol("bob", Role::Support).await;
    let enrolled = newest(&s, "staff.enrolled", "bob").await.entry.timestamp;
    // Requested just in time (the pending TTL is an hour)...
    s.clock.advance_secs(DAY - 100);
    let g = try_request(&mut bob, "globex").await.expect("in time");
    assert_eq!(g.state, pb::GrantState::Pending as i32);
    // ...and approved after the lapse: refused, still pending.
    s.clock.advance_secs(200);
    let mut admin = s.admin().await;
    let approve = pb::DecideGrantRequest {
        grant_id: g.id.clone(),
        note: "ok".into(),
    };
    let e = admin
        .grants
        .approve_grant(approve.clone())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert_eq!(
        e.message(),
        format!(
            "cannot approve grant {}: {}",
            g.id,
            lapsed_message("bob", enrolled.plus_secs(DAY), 1)
        )
    );
    assert_eq!(
        get_grant(&mut admin, &g.id).await.state,
        pb::GrantState::Pending as i32
    );
    // Once re-certified, the same approval goes through.
    recertify(&mut admin, "bob").await.unwrap();
    let approved = admin
        .grants
        .approve_grant(approve)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(approved.state, pb::GrantState::Active as i32);
    s.stop().await;
}

#[tokio::test]
async fn a_grant_active_when_its_holder_lapses_runs_to_its_end() {
    let mut s = TestServer::start_with(|c| c.staff.recertify_days = 1).await;
    let mut acme = s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let mut alice = s.enrol("alice", Role::Support).await;
    s.clock.advance_secs(DAY - 600);
    let g = try_request(&mut alice, "acme").await.expect("in time");
    // Ten minutes past the lapse, the hour-long grant still admits (the
    // check is at request and approval; grants last at most 24 h)...
    s.clock.advance_secs(1200);
    let v = validate(&mut acme, &g.id).await;
    assert!(v.allowed, "{v:?}");
    // ...the next request is refused...
    release(&mut alice, &g.id).await;
    let e = try_request(&mut alice, "acme").await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    // ...and audit check finds nothing wrong with the allowed validation.
    assert!(s.verify_chain().await.ok);
    s.stop().await;
}

#[tokio::test]
async fn an_admin_cannot_recertify_themselves_nor_an_offboarded_person() {
    let mut s = TestServer::start_with(|c| c.staff.recertify_days = 30).await;
    let mut grace = s.enrol("grace", Role::Admin).await;
    let mut alice = s.enrol("alice", Role::Support).await;
    let mut admin = s.admin().await;

    // Four eyes: not oneself, with a message saying whom to ask.
    let e = recertify(&mut admin, ADMIN).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(
        e.message().contains("cannot recertify themselves"),
        "{}",
        e.message()
    );
    assert!(e.message().contains("another admin"), "{}", e.message());
    let refused = s
        .entries()
        .await
        .into_iter()
        .rev()
        .find(|e| e.entry.kind == "call.refused")
        .unwrap();
    assert_eq!(refused.entry.actor, format!("staff/{ADMIN}"));
    // Another admin may.
    recertify(&mut grace, ADMIN).await.expect("another admin");

    // Only admins: a support engineer cannot re-certify anyone, not even
    // someone else.
    let e = recertify(&mut alice, "grace").await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);

    // Nobody by that name; a malformed name.
    let e = recertify(&mut admin, "nobody").await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    let e = recertify(&mut admin, "Not A Name").await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().starts_with("name:"), "{}", e.message());

    // Offboarded: the record is closed.
    admin
        .staff
        .offboard_staff(pb::OffboardStaffRequest {
            name: "alice".into(),
        })
        .await
        .unwrap();
    let e = recertify(&mut admin, "alice").await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("offboarded"), "{}", e.message());
    let a = listed(&s, "alice").await;
    assert_eq!(
        a.recertify_due_at_ms, 0,
        "an offboarded person has no due date"
    );

    // Exactly one re-certification is in the log, and it checks.
    let n = s
        .entries()
        .await
        .iter()
        .filter(|e| e.entry.kind == "staff.recertified")
        .count();
    assert_eq!(n, 1);
    s.restart().await;
    assert!(s.verify_chain().await.ok);
    s.stop().await;
}

#[tokio::test]
async fn off_by_default_eligibility_never_lapses() {
    let mut s = TestServer::start().await;
    s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let mut alice = s.enrol("alice", Role::Support).await;
    s.clock.advance_secs(3650 * DAY);
    let g = try_request(&mut alice, "acme").await.expect("never lapses");
    assert_eq!(g.state, pb::GrantState::Active as i32);
    let a = listed(&s, "alice").await;
    assert_eq!(a.recertify_due_at_ms, 0);
    assert_ne!(a.last_certified_at_ms, 0, "the enrolment is still shown");
    // Recertifying is still possible (and logged), it just has no deadline.
    let rec = recertify(&mut s.admin().await, "alice").await.unwrap();
    assert_eq!(rec.recertify_due_at_ms, 0);
    s.stop().await;
}

#[tokio::test]
async fn the_cli_recertifies_and_lists_due_dates() {
    let s = TestServer::start_with(|c| c.staff.recertify_days = 90).await;
    s.enrol("carol", Role::Support).await;
    let dir = s.dir.path();
    let as_ = |who: &str, v: &[&str]| {
        let mut v: Vec<String> = v.iter().map(|a| a.to_string()).collect();
        v.extend(s.cli_flags(dir, PrincipalKind::Staff, who));
        v
    };
    s.clock.advance_secs(10 * DAY);
    let out = cli::run_async(dir.to_owned(), as_(ADMIN, &["staff", "recertify", "carol"])).await;
    let said = cli::assert_ok(&out, "staff recertify");
    let renewed = newest(&s, "staff.recertified", "carol")
        .await
        .entry
        .timestamp;
    let due = renewed.plus_secs(90 * DAY);
    assert_eq!(
        said,
        format!(
            "recertified carol's eligibility to hold grants; next due {}\n",
            due.to_rfc3339()
        )
    );

    let out = cli::run_async(dir.to_owned(), as_(ADMIN, &["staff", "list"])).await;
    let table = cli::assert_ok(&out, "staff list");
    assert!(
        table.contains("CERTIFIED") && table.contains("DUE"),
        "{table}"
    );
    let row = table.lines().find(|l| l.starts_with("carol")).unwrap();
    assert!(row.contains(&renewed.to_rfc3339()), "{row}");
    assert!(row.contains(&due.to_rfc3339()), "{row}");

    let out = cli::run_async(dir.to_owned(), as_(ADMIN, &["staff", "list", "--json"])).await;
    let json: serde_json::Value =
        serde_json::from_str(&cli::assert_ok(&out, "staff list --json")).unwrap();
    let carol = json
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "carol")
        .unwrap();
    assert_eq!(carol["last_certified_at"], renewed.to_rfc3339());
    assert_eq!(carol["recertify_due_at"], due.to_rfc3339());

    // Oneself: one line saying why.
    let out = cli::run_async(dir.to_owned(), as_(ADMIN, &["staff", "recertify", ADMIN])).await;
    let err = cli::one_line_error(&out, "self recertify");
    assert!(err.contains("cannot recertify themselves"), "{err}");
}

#[tokio::test]
async fn the_staff_table_has_no_certification_columns_when_off() {
    let s = TestServer::start().await;
    s.enrol("carol", Role::Support).await;
    let dir = s.dir.path();
    let mut args = vec!["staff".to_owned(), "list".to_owned()];
    args.extend(s.cli_flags(dir, PrincipalKind::Staff, ADMIN));
    let out = cli::run_async(dir.to_owned(), args).await;
    let table = cli::assert_ok(&out, "staff list");
    assert!(table.contains("DECLARATION"), "{table}");
    assert!(!table.contains("CERTIFIED"), "{table}");
}

/// A re-certification written into the store but not the log (a forged
/// `recertified_at`) makes the server fail closed at the next start, and
/// `audit check` names the record.
#[tokio::test]
async fn a_stored_recertification_the_log_does_not_vouch_for_fails_closed() {
    let mut s = TestServer::start_with(|c| c.staff.recertify_days = 30).await;
    let acme = s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let mut alice = s.enrol("alice", Role::Support).await;
    let g = try_request(&mut alice, "acme").await.unwrap();
    let enrolled = newest(&s, "staff.enrolled", "alice").await.entry.seq;
    drop((alice, acme));
    s.stop().await;
    {
        let db = sled_open(&s.data_dir());
        let t = db.open_tree("staff").unwrap();
        let mut v: serde_json::Value =
            serde_json::from_slice(&t.get("alice").unwrap().unwrap()).unwrap();
        let later = v["enrolled_at"].as_i64().unwrap() + 29 * DAY * 1000;
        v["recertified_at"] = later.into();
        t.insert("alice", serde_json::to_vec(&v).unwrap()).unwrap();
        db.flush().unwrap();
    }
    s.start_again().await;
    let mut acme = s.tenant("acme").await;
    let st = acme
        .grants
        .validate_grant(validate_request(&g.id))
        .await
        .unwrap_err();
    assert_eq!(st.code(), Code::FailedPrecondition, "{st:?}");
    assert!(st.message().contains("staff/alice"), "{}", st.message());
    let report = s.verify_chain().await;
    assert!(!report.ok);
    assert_eq!(report.first_bad_seq, enrolled, "{}", report.problem);
    assert!(
        report.problem.contains("last certified"),
        "{}",
        report.problem
    );
    s.stop().await;
}

/// The register of processing lists recertification among the measures
/// daypass enforces, with the live setting.
#[tokio::test]
async fn the_register_of_processing_names_the_recertification_period() {
    let s = TestServer::start_with(|c| c.staff.recertify_days = 90).await;
    s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let mut admin = s.admin().await;
    let record = daypass::domain::ProcessingRecord::from_toml(include_str!(
        "../examples/processing-record.toml"
    ))
    .unwrap();
    admin
        .processing
        .set_processing_record(pb::SetProcessingRecordRequest {
            tenant: "acme".into(),
            record: Some(daypass::rpc::record_to_pb(&record.to_raw())),
        })
        .await
        .unwrap();
    let doc = admin
        .processing
        .processing_register_document(pb::ProcessingRegisterDocumentRequest {
            tenant: "acme".into(),
            all: false,
            format: "json".into(),
            version: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .content;
    let json: serde_json::Value = serde_json::from_str(&doc).unwrap();
    let measure = json["tenants"][0]["known_to_daypass"]["security_measures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["measure"] == "recertification of grant holders")
        .cloned()
        .unwrap();
    assert_eq!(
        measure["value"],
        "every 90 days by an admin other than the holder; lapsed holders get no grants"
    );
}
