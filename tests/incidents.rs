//! The breach register (Art 7.3 a–d of the agreement, GDPR Art 33(5))
//! through the real server: every field round-trips; the notification
//! document carries each Art 7.3 field in Markdown, HTML and JSON; the 24 h
//! clock per tenant (overdue at once when recorded 25 h late, with the
//! server's overdue entry and an alert; stopped by a notification, after
//! which no overdue entry is ever written); tenants see only the incidents
//! that affect them; updates append and show in the documentation's
//! timeline; a restart rebuilds everything from the log; hostile input is
//! refused naming the field.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use daypass::{
    clock::Clock as _,
    pb::{self, ApprovalPolicy, Role},
};
use tonic::Code;

const HOUR_MS: i64 = 3_600_000;

fn report(tenants: &[&str], became_known_at_ms: i64) -> pb::RecordIncidentRequest {
    pb::RecordIncidentRequest {
        nature: "Support laptop stolen from a car; disk encrypted, session tokens cached".into(),
        data_subject_categories: vec!["end customers".into(), "tenant staff".into()],
        personal_data_categories: vec!["e-mail addresses".into(), "order history".into()],
        approx_data_subjects: 1234,
        approx_records: 56789,
        contact_name: "Dana Datenschutz".into(),
        contact_email: "dpo@daypass.example".into(),
        likely_consequences: "Phishing aimed at the listed customers".into(),
        measures: "Tokens revoked; laptop wiped remotely".into(),
        became_known_at_ms,
        tenants: tenants.iter().map(|t| t.to_string()).collect(),
        evidence_seqs: vec![1],
    }
}

async fn record(
    admin: &mut daypass::client::Clients,
    req: pb::RecordIncidentRequest,
) -> pb::Incident {
    admin
        .incidents
        .record_incident(req)
        .await
        .expect("record incident")
        .into_inner()
        .incident
        .unwrap()
}

async fn get(c: &mut daypass::client::Clients, id: &str) -> Result<pb::Incident, tonic::Status> {
    c.incidents
        .get_incident(pb::GetIncidentRequest { id: id.into() })
        .await
        .map(|r| r.into_inner())
}

async fn notification_doc(
    c: &mut daypass::client::Clients,
    id: &str,
    tenant: &str,
    format: &str,
) -> Result<pb::Document, tonic::Status> {
    c.incidents
        .notification_document(pb::NotificationDocumentRequest {
            id: id.into(),
            tenant: tenant.into(),
            format: format.into(),
        })
        .await
        .map(|r| r.into_inner())
}

async fn documentation(c: &mut daypass::client::Clients, id: &str, format: &str) -> String {
    c.incidents
        .documentation(pb::DocumentationRequest {
            id: id.into(),
            format: format.into(),
        })
        .await
        .expect("documentation")
        .into_inner()
        .content
}

async fn notify(
    admin: &mut daypass::client::Clients,
    id: &str,
    tenant: &str,
    at_ms: i64,
) -> pb::Incident {
    admin
        .incidents
        .record_notification(pb::RecordNotificationRequest {
            id: id.into(),
            tenant: tenant.into(),
            notified_at_ms: at_ms,
            channel: "e-mail to the tenant's DPO".into(),
            notified_by: "Dana Datenschutz".into(),
        })
        .await
        .expect("record notification")
        .into_inner()
        .incident
        .unwrap()
}

fn clock<'a>(i: &'a pb::Incident, tenant: &str) -> &'a pb::TenantClock {
    i.clocks.iter().find(|c| c.tenant == tenant).unwrap()
}

#[tokio::test]
async fn every_field_round_trips_and_each_document_carries_each_art_7_3_field() {
    let s = TestServer::start().await;
    s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let mut admin = s.admin().await;
    let known = s.clock.now().millis() - HOUR_MS;
    let sent = report(&["acme"], known);
    let i = record(&mut admin, sent.clone()).await;

    assert!(i.id.starts_with("i-"), "{}", i.id);
    assert_eq!(i.nature, sent.nature);
    assert_eq!(i.data_subject_categories, sent.data_subject_categories);
    assert_eq!(i.personal_data_categories, sent.personal_data_categories);
    assert_eq!(i.approx_data_subjects, 1234);
    assert_eq!(i.approx_records, 56789);
    assert_eq!(i.contact_name, sent.contact_name);
    assert_eq!(i.contact_email, sent.contact_email);
    assert_eq!(i.likely_consequences, sent.likely_consequences);
    assert_eq!(i.measures, sent.measures);
    assert_eq!(i.became_known_at_ms, known);
    assert_eq!(i.evidence_seqs, vec![1]);
    assert_eq!(i.recorded_by, "staff/ada");
    let c = clock(&i, "acme");
    assert_eq!(c.due_at_ms, known + 24 * HOUR_MS);
    assert_eq!(c.status, "pending");
    assert!(!c.overdue);
    assert_eq!(get(&mut admin, &i.id).await.unwrap(), i);

    // One entry in acme's slice, carrying every field.
    let entries = s.entries().await;
    let e = entries
        .iter()
        .find(|e| e.entry.kind == "incident.recorded")
        .unwrap();
    assert_eq!(e.entry.tenant, "acme");
    assert_eq!(e.entry.details["nature"], sent.nature);
    assert_eq!(e.entry.details["contact_email"], sent.contact_email);

    for format in ["markdown", "html", "json"] {
        let doc = notification_doc(&mut admin, &i.id, "acme", format)
            .await
            .unwrap();
        assert_eq!(doc.format, format);
        let text = doc.content;
        let has = |what: &str, needle: &str| {
            assert!(
                text.contains(needle),
                "{format}: the {what} ({needle:?}) is missing:\n{text}"
            )
        };
        has("nature (a)", &sent.nature);
        has("first data subject category (a)", "end customers");
        has("second data subject category (a)", "tenant staff");
        has("first personal data category (a)", "e-mail addresses");
        has("second personal data category (a)", "order history");
        has("approximate number of data subjects (a)", "1234");
        has("approximate number of records (a)", "56789");
        has("contact point's name (b)", "Dana Datenschutz");
        has("contact point's e-mail (b)", "dpo@daypass.example");
        has(
            "likely consequences (c)",
            "Phishing aimed at the listed customers",
        );
        has("measures (d)", "Tokens revoked; laptop wiped remotely");
        has("incident id", &i.id);
        has("tenant", "acme");
    }
    let json: serde_json::Value = serde_json::from_str(
        &notification_doc(&mut admin, &i.id, "acme", "json")
            .await
            .unwrap()
            .content,
    )
    .unwrap();
    assert_eq!(json["approx_data_subjects"], 1234);
    assert_eq!(json["approx_records"], 56789);
    assert_eq!(json["contact_point"]["email"], "dpo@daypass.example");
    assert_eq!(json["clock"]["status"], "pending");
    let html = notification_doc(&mut admin, &i.id, "acme", "html")
        .await
        .unwrap();
    assert_eq!(html.media_type, "text/html");
    assert!(html.content.starts_with("<!DOCTYPE html>"));
}

#[tokio::test]
async fn a_breach_known_25_hours_ago_without_notification_is_overdue_at_once() {
    let mut s = TestServer::start_with(|c| c.alerts.enabled = true).await;
    s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let mut admin = s.admin().await;
    let known = s.clock.now().millis() - 25 * HOUR_MS;
    let i = record(&mut admin, report(&["acme"], known)).await;

    let c = clock(&i, "acme");
    assert_eq!(c.status, "overdue");
    assert!(c.overdue);
    let now = get(&mut admin, &i.id).await.unwrap();
    assert!(clock(&now, "acme").overdue);

    let overdue = s
        .wait_for("incident.notification_overdue", |e| {
            e.entry.kind == "incident.notification_overdue"
        })
        .await;
    assert_eq!(overdue.entry.tenant, "acme");
    assert_eq!(overdue.entry.actor, "system");
    assert_eq!(overdue.entry.details["incident"], i.id);
    let alert = s
        .wait_for("the overdue alert", |e| {
            e.entry.kind == "alert.raised"
                && e.entry.details.get("rule").map(String::as_str)
                    == Some("breach-notification-overdue")
        })
        .await;
    assert_eq!(alert.entry.tenant, "acme");
    assert_eq!(
        alert.entry.details["trigger_seqs"],
        overdue.entry.seq.to_string()
    );
    let alerts = admin
        .alerts
        .list_alerts(pb::ListAlertsRequest {
            rule: "breach-notification-overdue".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .alerts;
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0].severity, "critical");

    // Once per incident and tenant: later time adds no second entry.
    let got = get(&mut admin, &i.id).await.unwrap();
    assert_eq!(clock(&got, "acme").overdue_seq, overdue.entry.seq);
    // A late notification is recorded as late.
    let told = notify(&mut admin, &i.id, "acme", 0).await;
    assert_eq!(clock(&told, "acme").status, "notified-late");
    let overdue_entries = s
        .entries()
        .await
        .into_iter()
        .filter(|e| e.entry.kind == "incident.notification_overdue")
        .count();
    assert_eq!(overdue_entries, 1);

    // The log's semantics accept it all: a restart serves (not fail-closed)
    // and rebuilds the same clock, and writes no second overdue entry.
    s.restart().await;
    let mut admin = s.admin().await;
    assert_eq!(get(&mut admin, &i.id).await.unwrap(), told);
    let check = s.verify_chain().await;
    assert!(check.ok, "{check:?}");
    let overdue_entries = s
        .entries()
        .await
        .into_iter()
        .filter(|e| e.entry.kind == "incident.notification_overdue")
        .count();
    assert_eq!(overdue_entries, 1);
}

#[tokio::test]
async fn notifying_before_the_deadline_stops_the_clock_and_no_overdue_entry_is_written() {
    let s = TestServer::start().await;
    s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    s.add_tenant("globex", ApprovalPolicy::Auto, false).await;
    let mut admin = s.admin().await;
    let known = s.clock.now().millis() - HOUR_MS;
    let told = record(&mut admin, report(&["acme"], known)).await;
    // A second incident, same deadline, never notified: the sweeper's
    // witness that it looked.
    let untold = record(&mut admin, report(&["globex"], known)).await;
    let after = notify(&mut admin, &told.id, "acme", s.clock.now().millis()).await;
    let c = clock(&after, "acme");
    assert_eq!(c.status, "notified");
    assert_eq!(c.notifications.len(), 1);
    assert_eq!(c.notifications[0].channel, "e-mail to the tenant's DPO");
    assert_eq!(c.notifications[0].notified_by, "Dana Datenschutz");
    assert_eq!(c.notifications[0].recorded_by, "staff/ada");

    s.clock.advance_secs(24 * 3600);
    let witness = s
        .wait_for("the untold incident's overdue entry", |e| {
            e.entry.kind == "incident.notification_overdue"
        })
        .await;
    assert_eq!(witness.entry.details["incident"], untold.id);
    let overdue: Vec<_> = s
        .entries()
        .await
        .into_iter()
        .filter(|e| e.entry.kind == "incident.notification_overdue")
        .collect();
    assert_eq!(overdue.len(), 1, "only the untold incident is overdue");
    let c = get(&mut admin, &told.id).await.unwrap();
    assert_eq!(clock(&c, "acme").status, "notified");
    assert_eq!(clock(&c, "acme").overdue_seq, 0);
}

#[tokio::test]
async fn tenants_see_only_the_incidents_that_affect_them_and_only_their_own_clock() {
    let s = TestServer::start().await;
    let mut acme = s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let mut globex = s.add_tenant("globex", ApprovalPolicy::Auto, false).await;
    let mut admin = s.admin().await;
    let known = s.clock.now().millis() - HOUR_MS;
    let both = record(&mut admin, report(&["acme", "globex"], known)).await;
    let only_globex = record(&mut admin, report(&["globex"], known)).await;

    let list = acme
        .incidents
        .list_incidents(pb::ListIncidentsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .incidents;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].id, both.id);
    // Only its own clock: it does not learn globex is affected.
    assert_eq!(list[0].clocks.len(), 1);
    assert_eq!(list[0].clocks[0].tenant, "acme");
    let shown = format!("{:?}", get(&mut acme, &both.id).await.unwrap());
    assert!(!shown.contains("globex"), "{shown}");

    // Another tenant's incident is unknown, not forbidden.
    let e = get(&mut acme, &only_globex.id).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    let e = notification_doc(&mut acme, &only_globex.id, "", "markdown")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    let e = notification_doc(&mut acme, &both.id, "globex", "markdown")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    let doc = notification_doc(&mut acme, &both.id, "", "markdown")
        .await
        .unwrap();
    assert!(!doc.content.contains("globex"), "{}", doc.content);
    let docs = acme
        .incidents
        .documentation(pb::DocumentationRequest {
            id: both.id.clone(),
            format: "json".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .content;
    assert!(!docs.contains("globex"), "{docs}");

    let globex_list = globex
        .incidents
        .list_incidents(pb::ListIncidentsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .incidents;
    assert_eq!(globex_list.len(), 2);

    // Each tenant's log slice has its own entry of each recording.
    let slice = acme
        .audit
        .get_tenant_entries(pb::GetTenantEntriesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .entries;
    let recorded: Vec<_> = slice
        .iter()
        .filter_map(|p| p.entry.as_ref())
        .filter(|e| e.kind == "incident.recorded")
        .collect();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].details["incident"], both.id);

    // Auditors read every incident; support and root nothing.
    let mut eve = s.enrol("eve", Role::Auditor).await;
    assert_eq!(
        eve.incidents
            .list_incidents(pb::ListIncidentsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .incidents
            .len(),
        2
    );
    let mut alice = s.enrol("alice", Role::Support).await;
    let e = get(&mut alice, &both.id).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    let e = eve
        .incidents
        .record_incident(report(&["acme"], known))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
}

#[tokio::test]
async fn updates_append_the_documentation_has_the_timeline_and_a_restart_keeps_it_all() {
    let mut s = TestServer::start().await;
    s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    s.add_tenant("globex", ApprovalPolicy::Auto, false).await;
    let mut admin = s.admin().await;
    let known = s.clock.now().millis() - 2 * HOUR_MS;
    let i = record(&mut admin, report(&["acme", "globex"], known)).await;
    let updated = admin
        .incidents
        .update_incident(pb::UpdateIncidentRequest {
            id: i.id.clone(),
            facts: "The laptop was found; the disk had not been opened".into(),
            measures: "Staff retrained on leaving devices in cars".into(),
            likely_consequences: String::new(),
            evidence_seqs: vec![2],
        })
        .await
        .unwrap()
        .into_inner()
        .incident
        .unwrap();
    let updated = {
        assert_eq!(updated.updates.len(), 1);
        admin
            .incidents
            .update_incident(pb::UpdateIncidentRequest {
                id: i.id.clone(),
                likely_consequences: "None expected any more".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .incident
            .unwrap()
    };
    // Nothing overwritten.
    assert_eq!(updated.measures, i.measures);
    assert_eq!(updated.likely_consequences, i.likely_consequences);
    assert_eq!(updated.nature, i.nature);
    assert_eq!(updated.updates.len(), 2);
    assert_eq!(
        updated.updates[0].facts,
        "The laptop was found; the disk had not been opened"
    );
    assert_eq!(updated.updates[0].evidence_seqs, vec![2]);
    assert_eq!(
        updated.updates[1].likely_consequences,
        "None expected any more"
    );
    let told = notify(&mut admin, &i.id, "acme", s.clock.now().millis()).await;

    // One update entry per affected tenant.
    let entries = s.entries().await;
    let mut update_tenants: Vec<_> = entries
        .iter()
        .filter(|e| e.entry.kind == "incident.updated")
        .map(|e| e.entry.tenant.clone())
        .collect();
    update_tenants.sort();
    assert_eq!(update_tenants, ["acme", "acme", "globex", "globex"]);

    let md = documentation(&mut admin, &i.id, "markdown").await;
    for needle in [
        "## Facts",
        "## Effects",
        "## Corrective measures",
        "## Timeline",
        "recorded (became known",
        "update 1: facts: The laptop was found",
        "update 2: likely consequences: None expected any more",
        "Staff retrained on leaving devices in cars",
        "tenant acme notified at",
        "globex: due",
        &i.nature,
    ] {
        assert!(md.contains(needle), "{needle:?} missing:\n{md}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&documentation(&mut admin, &i.id, "json").await).unwrap();
    assert_eq!(json["timeline"].as_array().unwrap().len(), 4);
    assert_eq!(json["tenants"]["acme"]["status"], "notified");
    assert_eq!(json["tenants"]["globex"]["status"], "pending");

    s.restart().await;
    let mut admin = s.admin().await;
    let after = get(&mut admin, &i.id).await.unwrap();
    assert_eq!(after, told, "rebuilt from the log");
    assert_eq!(documentation(&mut admin, &i.id, "markdown").await, md);
    let v = s.verify_chain().await;
    assert!(v.ok, "{v:?}");
}

#[tokio::test]
async fn hostile_input_is_refused_with_invalid_argument_naming_the_field() {
    let s = TestServer::start().await;
    s.add_tenant("acme", ApprovalPolicy::Auto, false).await;
    let mut admin = s.admin().await;
    let now = s.clock.now().millis();
    let good = report(&["acme"], now - HOUR_MS);
    let big = "x".repeat(4001);
    let cases: Vec<(&str, pb::RecordIncidentRequest, &str)> = vec![
        (
            "empty nature",
            pb::RecordIncidentRequest {
                nature: "  ".into(),
                ..good.clone()
            },
            "nature",
        ),
        (
            "negative subjects",
            pb::RecordIncidentRequest {
                approx_data_subjects: -1,
                ..good.clone()
            },
            "approx_data_subjects",
        ),
        (
            "negative records",
            pb::RecordIncidentRequest {
                approx_records: -5,
                ..good.clone()
            },
            "approx_records",
        ),
        (
            "unknown tenant",
            report(&["no-such-tenant"], now - HOUR_MS),
            "tenants",
        ),
        ("no tenant", report(&[], now - HOUR_MS), "tenants"),
        (
            "unknown seq",
            pb::RecordIncidentRequest {
                evidence_seqs: vec![999_999],
                ..good.clone()
            },
            "evidence_seqs",
        ),
        (
            "future became_known_at",
            report(&["acme"], now + HOUR_MS),
            "became_known_at",
        ),
        (
            "oversize nature",
            pb::RecordIncidentRequest {
                nature: big.clone(),
                ..good.clone()
            },
            "nature",
        ),
        (
            "oversize measures",
            pb::RecordIncidentRequest {
                measures: big.clone(),
                ..good.clone()
            },
            "measures",
        ),
        (
            "oversize category",
            pb::RecordIncidentRequest {
                personal_data_categories: vec!["c".repeat(201)],
                ..good.clone()
            },
            "personal_data_categories",
        ),
        (
            "no category",
            pb::RecordIncidentRequest {
                data_subject_categories: vec![],
                ..good.clone()
            },
            "data_subject_categories",
        ),
        (
            "bad e-mail",
            pb::RecordIncidentRequest {
                contact_email: "dpo at example".into(),
                ..good.clone()
            },
            "contact_email",
        ),
        (
            "control character",
            pb::RecordIncidentRequest {
                contact_name: "Dana\u{7}".into(),
                ..good.clone()
            },
            "contact_name",
        ),
    ];
    let mut failures = Vec::new();
    for (what, req, field) in cases {
        match admin.incidents.record_incident(req).await {
            Ok(_) => failures.push(format!("{what}: accepted")),
            Err(e) if e.code() != Code::InvalidArgument || !e.message().contains(field) => {
                failures.push(format!("{what}: {:?} {:?}", e.code(), e.message()))
            }
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    let i = record(&mut admin, good).await;
    let bad_update = admin
        .incidents
        .update_incident(pb::UpdateIncidentRequest {
            id: i.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad_update.code(), Code::InvalidArgument);
    let bad_seq = admin
        .incidents
        .update_incident(pb::UpdateIncidentRequest {
            id: i.id.clone(),
            evidence_seqs: vec![u64::MAX],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(bad_seq.message().contains("evidence_seqs"), "{bad_seq:?}");
    for (what, req, field) in [
        (
            "future notification",
            pb::RecordNotificationRequest {
                id: i.id.clone(),
                tenant: "acme".into(),
                notified_at_ms: now + HOUR_MS,
                channel: "phone".into(),
                notified_by: String::new(),
            },
            "notified_at",
        ),
        (
            "notified before known",
            pb::RecordNotificationRequest {
                id: i.id.clone(),
                tenant: "acme".into(),
                notified_at_ms: now - 3 * HOUR_MS,
                channel: "phone".into(),
                notified_by: String::new(),
            },
            "notified_at",
        ),
        (
            "no channel",
            pb::RecordNotificationRequest {
                id: i.id.clone(),
                tenant: "acme".into(),
                ..Default::default()
            },
            "channel",
        ),
        (
            "bad id",
            pb::RecordNotificationRequest {
                id: "i-nope".into(),
                tenant: "acme".into(),
                channel: "phone".into(),
                ..Default::default()
            },
            "incident id",
        ),
    ] {
        let e = admin.incidents.record_notification(req).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{what}: {e:?}");
        assert!(e.message().contains(field), "{what}: {e:?}");
    }
    let e = notification_doc(&mut admin, &i.id, "acme", "pdf")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("format"), "{e:?}");
    // Nothing of the refused calls was recorded.
    let list = admin
        .incidents
        .list_incidents(pb::ListIncidentsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .incidents;
    assert_eq!(list.len(), 1);
}
