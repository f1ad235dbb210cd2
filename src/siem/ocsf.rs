//! One log entry as one OCSF event (schema [`SCHEMA_VERSION`]): the class
//! and activity each kind maps to, the common attributes every event has,
//! the class's primary objects, and every detail verbatim under
//! `unmapped`. Used by `audit export --format ocsf` and by the syslog
//! forwarder's `format = "ocsf"`. The table is in docs/siem.md §3; the
//! unit tests below hold the code to it.

use serde_json::{Value, json};

use super::Level;
use crate::{audit::Entry, domain::detail};

/// The OCSF schema version the events follow (`metadata.version`).
pub const SCHEMA_VERSION: &str = "1.5.0";

/// An OCSF class and activity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Class {
    pub class_uid: u32,
    pub class_name: &'static str,
    pub activity_id: u32,
    pub activity_name: &'static str,
}

impl Class {
    const fn new(uid: u32, name: &'static str, id: u32, activity: &'static str) -> Class {
        Class {
            class_uid: uid,
            class_name: name,
            activity_id: id,
            activity_name: activity,
        }
    }

    /// `class_uid / 1000`.
    pub fn category(self) -> (u32, &'static str) {
        match self.class_uid / 1000 {
            2 => (2, "Findings"),
            3 => (3, "Identity & Access Management"),
            6 => (6, "Application Activity"),
            _ => (0, "Uncategorized"),
        }
    }

    /// `class_uid * 100 + activity_id`.
    pub fn type_uid(self) -> u64 {
        u64::from(self.class_uid) * 100 + u64::from(self.activity_id)
    }
}

const ACCOUNT: &str = "Account Change";
const AUTHN: &str = "Authentication";
const AUTHZ: &str = "Authorize Session";
const ENTITY: &str = "Entity Management";
const USER_ACCESS: &str = "User Access Management";
const LIFECYCLE: &str = "Application Lifecycle";
const API: &str = "API Activity";
const FINDING: &str = "Detection Finding";
const INCIDENT: &str = "Incident Finding";

/// The class and activity of an entry (docs/siem.md §3). A kind this build
/// does not know is a Base Event (0) with activity Other (99).
pub fn class_of(e: &Entry) -> Class {
    match e.kind.as_str() {
        "staff.bootstrapped" | "staff.enrolled" => Class::new(3001, ACCOUNT, 1, "Create"),
        "staff.offboarded" => Class::new(3001, ACCOUNT, 5, "Disable"),
        "staff.declaration_recorded" | "staff.located" | "staff.recertified" => {
            Class::new(3001, ACCOUNT, 99, "Other")
        }
        "subprocessor.added" | "subprocessor.announced" => Class::new(3004, ENTITY, 1, "Create"),
        "subprocessor.objected"
        | "tenant.countries_set"
        | "tenant.justification_set"
        | "processing.recorded"
        | "tenant.break_glass_set"
        | "grant.reviewed" => Class::new(3004, ENTITY, 3, "Update"),
        "call.refused"
            if e.details.get(detail::CODE).map(String::as_str) == Some("unauthenticated") =>
        {
            Class::new(3002, AUTHN, 1, "Logon")
        }
        "screen.session_opened" => Class::new(3002, AUTHN, 1, "Logon"),
        "validation.allowed" | "validation.denied" => {
            Class::new(3003, AUTHZ, 1, "Assign Privileges")
        }
        "tenant.added"
        | "grant.requested"
        | "grant.certificate_issued"
        | "screen.pairing_issued" => Class::new(3004, ENTITY, 1, "Create"),
        "tenant.updated"
        | "tenant.terminated"
        | "grant.approved"
        | "grant.denied"
        | "grant.request_expired"
        | "grant.scheduled"
        | "tenant.access_limit_set" => Class::new(3004, ENTITY, 3, "Update"),
        "screen.revoked" | "tenant.shredded" => Class::new(3004, ENTITY, 4, "Delete"),
        "group.set" => Class::new(3004, ENTITY, 3, "Update"),
        "group.removed" => Class::new(3004, ENTITY, 4, "Delete"),
        "grant.activated" => Class::new(3005, USER_ACCESS, 1, "Assign Privileges"),
        "grant.revoked" | "grant.released" | "grant.expired" => {
            Class::new(3005, USER_ACCESS, 2, "Revoke Privileges")
        }
        "server.started" => Class::new(6002, LIFECYCLE, 3, "Start"),
        "server.stopped" => Class::new(6002, LIFECYCLE, 4, "Stop"),
        "log.key_announced" | "log.key_rotated" | "store.restored" => {
            Class::new(6002, LIFECYCLE, 8, "Update")
        }
        "store.backed_up" => Class::new(6003, API, 2, "Read"),
        "audit.read" | "audit.verified" | "report.generated" => Class::new(6003, API, 2, "Read"),
        "access.recorded" | "call.refused" => Class::new(6003, API, 99, "Other"),
        "alert.raised" => Class::new(2004, FINDING, 1, "Create"),
        "alert.acknowledged" => Class::new(2004, FINDING, 2, "Update"),
        "alert.resolved" => Class::new(2004, FINDING, 3, "Close"),
        "incident.recorded" => Class::new(2005, INCIDENT, 1, "Create"),
        "incident.updated" | "incident.tenant_notified" | "incident.notification_overdue" => {
            Class::new(2005, INCIDENT, 2, "Update")
        }
        _ => Class::new(0, "Base Event", 99, "Other"),
    }
}

/// Whether the entry records something that failed: a refused call, a
/// denied validation, a log check that found a problem.
pub fn failed(e: &Entry) -> bool {
    match e.kind.as_str() {
        "call.refused" | "validation.denied" => true,
        "audit.verified" => e.details.get(detail::OK).map(String::as_str) == Some("false"),
        _ => false,
    }
}

/// The OCSF event for one entry.
pub fn to_ocsf(e: &Entry) -> Value {
    let class = class_of(e);
    let (category_uid, category_name) = class.category();
    let (severity_id, severity) = Level::of(e).ocsf_severity();
    let (status_id, status) = if failed(e) {
        (2, "Failure")
    } else {
        (1, "Success")
    };
    let mut v = json!({
        "class_uid": class.class_uid,
        "class_name": class.class_name,
        "category_uid": category_uid,
        "category_name": category_name,
        "activity_id": class.activity_id,
        "activity_name": class.activity_name,
        "type_uid": class.type_uid(),
        "type_name": format!("{}: {}", class.class_name, class.activity_name),
        "severity_id": severity_id,
        "severity": severity,
        "status_id": status_id,
        "status": status,
        "time": e.timestamp.millis(),
        "timezone_offset": 0,
        "message": crate::notify::summary(e, None),
        "metadata": {
            "version": SCHEMA_VERSION,
            "product": product(),
            "uid": e.seq.to_string(),
            "sequence": e.seq,
            "event_code": e.kind,
            "log_name": "daypass audit log",
        },
        "actor": { "user": { "name": e.actor } },
        "unmapped": { "tenant": e.tenant, "details": e.details },
    });
    let extra = primary(e, class);
    if let (Some(obj), Value::Object(extra)) = (v.as_object_mut(), extra) {
        obj.extend(extra);
    }
    v
}

/// `metadata.product` (and a lifecycle event's `app`).
fn product() -> Value {
    json!({
        "name": "daypass",
        "vendor_name": "daypass",
        "version": env!("CARGO_PKG_VERSION"),
    })
}

/// The class's primary attributes.
fn primary(e: &Entry, class: Class) -> Value {
    let d = |k: &str| e.details.get(k).cloned().unwrap_or_default();
    let service = json!({ "name": "daypass" });
    let tenant_privilege = json!([format!("tenant:{}", e.tenant)]);
    match class.class_uid {
        3001 => json!({ "user": { "name": d(detail::NAME) } }),
        3002 => {
            let mut v = json!({ "user": { "name": e.actor }, "service": service });
            if e.kind == "call.refused" {
                v["status_detail"] = d(detail::CODE).into();
            }
            if let Some(peer) = e.details.get(detail::PEER) {
                v["src_endpoint"] = match peer.parse::<std::net::SocketAddr>() {
                    Ok(a) => json!({ "ip": a.ip().to_string(), "port": a.port() }),
                    Err(_) => json!({ "name": peer }),
                };
            }
            v
        }
        3003 => {
            let mut v = json!({
                "user": { "name": e.details.get(detail::HOLDER).cloned().unwrap_or_else(|| "unknown".into()) },
                "privileges": tenant_privilege,
                "dst_endpoint": { "name": e.tenant },
            });
            if let Some(g) = e.details.get(detail::GRANT) {
                v["session"] = json!({ "uid": g });
            }
            if e.kind == "validation.denied" {
                v["status_detail"] = d(detail::DENY_REASON).into();
            }
            v
        }
        3004 => {
            let (uid, kind) = if e.kind.starts_with("tenant.") {
                (e.tenant.clone(), "tenant")
            } else if e.kind.starts_with("screen.") {
                (d(detail::SCREEN), "screen")
            } else if e.kind == "grant.certificate_issued" {
                (d(detail::SERIAL), "grant certificate")
            } else if e.kind.starts_with("subprocessor.") {
                (d(detail::SUBPROCESSOR), "sub-processor")
            } else if e.kind == "processing.recorded" {
                (e.tenant.clone(), "record of processing")
            } else if e.kind.starts_with("group.") {
                (d(detail::GROUP), "approver group")
            } else {
                (d(detail::GRANT), "grant")
            };
            let mut v = json!({ "entity": { "uid": uid, "name": uid, "type": kind } });
            let comment = e
                .details
                .get(detail::REASON)
                .or_else(|| e.details.get(detail::NOTE))
                .filter(|c| !c.is_empty());
            if let Some(c) = comment {
                v["comment"] = c.clone().into();
            }
            v
        }
        3005 => json!({
            "user": { "name": d(detail::HOLDER) },
            "privileges": tenant_privilege,
            "resources": [{ "uid": d(detail::GRANT), "name": e.tenant, "type": "tenant" }],
        }),
        6002 => {
            let mut app = product();
            if let Some(version) = e.details.get(detail::VERSION) {
                app["version"] = version.clone().into();
            }
            json!({ "app": app })
        }
        6003 => {
            let (operation, resources) = match e.kind.as_str() {
                "access.recorded" => (
                    d(detail::ACTION),
                    json!([{ "name": d(detail::RESOURCE), "type": "tenant resource" }]),
                ),
                "call.refused" => (d(detail::CALL), json!([])),
                "audit.verified" => ("VerifyChain".to_owned(), json!([])),
                "store.backed_up" => ("Backup".to_owned(), json!([])),
                _ => (format!("audit.read:{}", d(detail::PURPOSE)), json!([])),
            };
            let mut v = json!({
                "api": { "operation": operation, "service": service },
                "src_endpoint": { "name": if e.kind == "access.recorded" { e.tenant.clone() } else { e.actor.clone() } },
                "resources": resources,
            });
            if e.kind == "call.refused" {
                v["status_detail"] = d(detail::CODE).into();
            }
            v
        }
        2004 => json!({
            "finding_info": {
                "uid": d(detail::ALERT),
                "title": e.details.get(detail::SUMMARY).cloned().unwrap_or_else(|| e.kind.clone()),
                "types": e.details.get(detail::RULE).map(|r| vec![r.clone()]).unwrap_or_default(),
            },
            "is_alert": e.kind == "alert.raised",
        }),
        2005 => json!({
            "finding_info_list": [{
                "uid": d(detail::INCIDENT),
                "title": e.details.get(detail::NATURE).cloned().unwrap_or_else(|| e.kind.clone()),
                "types": ["personal data breach"],
            }],
            "is_suspected_breach": true,
            "status": if e.kind == "incident.notification_overdue" { "Notification overdue" } else { "In Progress" },
        }),
        _ => json!({}),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::{clock::Timestamp, domain::EventKind};

    fn entry(kind: &str, details: &[(&str, &str)]) -> Entry {
        Entry {
            seq: 42,
            timestamp: Timestamp(1_764_000_000_123),
            actor: "staff/bob".into(),
            tenant: "acme".into(),
            kind: kind.into(),
            details: details
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect::<BTreeMap<_, _>>(),
            sealed: None,
            prev_hash: [0; 32],
        }
    }

    #[test]
    fn every_known_kind_has_a_class_and_the_arithmetic_holds() {
        for k in EventKind::ALL {
            let e = entry(k.as_str(), &[]);
            let c = class_of(&e);
            assert_ne!(c.class_uid, 0, "{} is mapped", k.as_str());
            let v = to_ocsf(&e);
            assert_eq!(
                v["type_uid"],
                c.class_uid as u64 * 100 + c.activity_id as u64
            );
            assert_eq!(v["category_uid"], c.class_uid as u64 / 1000);
            assert_eq!(v["time"], 1_764_000_000_123i64);
            assert_eq!(v["metadata"]["version"], SCHEMA_VERSION);
            assert_eq!(v["metadata"]["product"]["name"], "daypass");
            assert_eq!(v["metadata"]["event_code"], k.as_str());
            assert_eq!(v["actor"]["user"]["name"], "staff/bob");
            assert!(v["severity_id"].as_u64().is_some());
        }
        let unknown = to_ocsf(&entry("grant.teleported", &[]));
        assert_eq!(
            (unknown["class_uid"].as_u64(), unknown["type_uid"].as_u64()),
            (Some(0), Some(99))
        );
    }

    #[test]
    fn grants_map_to_privileges_and_alerts_to_findings() {
        let v = to_ocsf(&entry(
            "grant.activated",
            &[("grant", "g-1"), ("holder", "bob"), ("expires_at", "x")],
        ));
        assert_eq!(v["type_uid"], 300501);
        assert_eq!(v["user"]["name"], "bob");
        assert_eq!(v["privileges"][0], "tenant:acme");
        assert_eq!(v["unmapped"]["details"]["expires_at"], "x");
        assert_eq!(v["severity_id"], 2);

        let v = to_ocsf(&entry(
            "grant.revoked",
            &[("grant", "g-1"), ("holder", "bob")],
        ));
        assert_eq!(v["type_uid"], 300502);

        let v = to_ocsf(&entry(
            "alert.raised",
            &[
                ("alert", "a-1"),
                ("rule", "root-activity"),
                ("severity", "critical"),
                ("summary", "root used"),
            ],
        ));
        assert_eq!(v["type_uid"], 200401);
        assert_eq!(v["severity_id"], 5);
        assert_eq!(v["finding_info"]["uid"], "a-1");
        assert_eq!(v["finding_info"]["types"][0], "root-activity");
        assert_eq!(v["is_alert"], true);
    }

    #[test]
    fn refusals_and_denials_fail() {
        let v = to_ocsf(&entry(
            "call.refused",
            &[("call", "RequestGrant"), ("code", "unauthenticated")],
        ));
        assert_eq!(
            (v["type_uid"].as_u64(), v["status_id"].as_u64()),
            (Some(300201), Some(2))
        );
        assert_eq!(v["status_detail"], "unauthenticated");
        let v = to_ocsf(&entry(
            "call.refused",
            &[("call", "RequestGrant"), ("code", "not-found")],
        ));
        assert_eq!(v["type_uid"], 600399);
        assert_eq!(v["api"]["operation"], "RequestGrant");
        let v = to_ocsf(&entry("validation.denied", &[("deny_reason", "expired")]));
        assert_eq!(
            (v["type_uid"].as_u64(), v["status_id"].as_u64()),
            (Some(300301), Some(2))
        );
        assert_eq!(v["status_detail"], "expired");
        let v = to_ocsf(&entry(
            "validation.allowed",
            &[("grant", "g-1"), ("holder", "bob")],
        ));
        assert_eq!(v["status_id"], 1);
        assert_eq!(v["session"]["uid"], "g-1");
    }
}
