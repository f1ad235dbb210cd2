//! Alerts: what the monitor ([`crate::monitor`]) raises when a detection
//! rule fires. An alert is a record (kept in step with the log like a
//! grant) and three kinds of log entry: `alert.raised` (rule, severity,
//! subject, the seq numbers that triggered it), `alert.acknowledged` (by a
//! named person, with a note) and `alert.resolved`.

use std::fmt;

use ring::rand::{SecureRandom as _, SystemRandom};
use serde::{Deserialize, Serialize};

use super::{
    event::{Draft, EventKind, detail},
    ids::Actor,
};
use crate::clock::Timestamp;

/// `a-` followed by 24 lowercase hex digits (96 random bits).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AlertId(String);

impl AlertId {
    pub fn random() -> AlertId {
        let mut bytes = [0u8; 12];
        SystemRandom::new()
            .fill(&mut bytes)
            .unwrap_or_else(|_| panic!("the operating system's random number generator failed"));
        AlertId(format!("a-{}", hex::encode(bytes)))
    }

    /// An id as a peer sent it: `a-` and 24 lowercase hex digits.
    pub fn parse(s: &str) -> Option<AlertId> {
        let hex = s.strip_prefix("a-")?;
        (hex.len() == 24 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| AlertId(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AlertId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How loudly an alert asks for attention.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 3] = [Severity::Info, Severity::Warning, Severity::Critical];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The detection rules (docs/monitoring.md describes each).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Rule {
    #[serde(rename = "off-hours")]
    OffHours,
    #[serde(rename = "many-tenants")]
    ManyTenants,
    #[serde(rename = "renewal-chain")]
    RenewalChain,
    #[serde(rename = "denied-burst")]
    DeniedBurst,
    #[serde(rename = "offboarded-use")]
    OffboardedUse,
    #[serde(rename = "no-access-role")]
    NoAccessRole,
    #[serde(rename = "outside-grant")]
    OutsideGrant,
    #[serde(rename = "root-activity")]
    RootActivity,
    #[serde(rename = "rate-flood")]
    RateFlood,
    #[serde(rename = "chain-check-failed")]
    ChainCheckFailed,
    /// The store refused writes (not from the log: the monitor samples
    /// the ledger, [`crate::monitor::health`]).
    #[serde(rename = "store-unwritable")]
    StoreUnwritable,
    /// Commits waited while the durable log did not grow (sampled too).
    #[serde(rename = "log-stalled")]
    LogStalled,
    /// An affected tenant was not told of a breach within 24 h (the
    /// server's `incident.notification_overdue`).
    #[serde(rename = "breach-notification-overdue")]
    BreachNotificationOverdue,
    /// A break-glass grant opened (every one, not a setting).
    #[serde(rename = "break-glass")]
    BreakGlass,
    /// A break-glass grant was reviewed as unjustified.
    #[serde(rename = "break-glass-unjustified")]
    BreakGlassUnjustified,
}

impl Rule {
    pub const ALL: [Rule; 15] = [
        Rule::OffHours,
        Rule::ManyTenants,
        Rule::RenewalChain,
        Rule::DeniedBurst,
        Rule::OffboardedUse,
        Rule::NoAccessRole,
        Rule::OutsideGrant,
        Rule::RootActivity,
        Rule::RateFlood,
        Rule::ChainCheckFailed,
        Rule::StoreUnwritable,
        Rule::LogStalled,
        Rule::BreachNotificationOverdue,
        Rule::BreakGlass,
        Rule::BreakGlassUnjustified,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Rule::OffHours => "off-hours",
            Rule::ManyTenants => "many-tenants",
            Rule::RenewalChain => "renewal-chain",
            Rule::DeniedBurst => "denied-burst",
            Rule::OffboardedUse => "offboarded-use",
            Rule::NoAccessRole => "no-access-role",
            Rule::OutsideGrant => "outside-grant",
            Rule::RootActivity => "root-activity",
            Rule::RateFlood => "rate-flood",
            Rule::ChainCheckFailed => "chain-check-failed",
            Rule::StoreUnwritable => "store-unwritable",
            Rule::LogStalled => "log-stalled",
            Rule::BreachNotificationOverdue => "breach-notification-overdue",
            Rule::BreakGlass => "break-glass",
            Rule::BreakGlassUnjustified => "break-glass-unjustified",
        }
    }

    pub fn parse(s: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an alert is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    Open,
    Acknowledged,
    Resolved,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Open => "open",
            AlertState::Acknowledged => "acknowledged",
            AlertState::Resolved => "resolved",
        }
    }
}

/// What a rule found, before it is an alert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub rule: Rule,
    pub severity: Severity,
    /// Who or what the alert is about, e.g. `staff/alice`, `tenant/acme`,
    /// or `store` and `log` for the system-health rules.
    pub subject: String,
    /// The tenant it concerns (empty: none), so that tenant may read it.
    pub tenant: String,
    /// One line for people: what happened.
    pub summary: String,
    /// The entries that triggered it (none for the system-health rules,
    /// which judge the ledger's state, not entries).
    pub seqs: Vec<u64>,
}

/// An alert as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    pub id: AlertId,
    pub rule: Rule,
    pub severity: Severity,
    pub subject: String,
    pub tenant: String,
    pub summary: String,
    pub seqs: Vec<u64>,
    pub state: AlertState,
    pub raised_at: Timestamp,
    /// Who acknowledged it, when, and why (empty until then).
    pub acknowledged_by: String,
    pub acknowledged_at: Option<Timestamp>,
    pub acknowledge_note: String,
    pub resolved_by: String,
    pub resolved_at: Option<Timestamp>,
    pub resolve_note: String,
}

impl Alert {
    /// A new open alert for `f`, and the entry that raises it.
    pub fn raise(f: Finding, now: Timestamp) -> (Alert, Draft) {
        Alert::raise_as(AlertId::random(), f, now)
    }

    /// [`Alert::raise`] with a given id (replaying the log).
    pub fn raise_as(id: AlertId, f: Finding, now: Timestamp) -> (Alert, Draft) {
        let a = Alert {
            id,
            rule: f.rule,
            severity: f.severity,
            subject: f.subject,
            tenant: f.tenant,
            summary: f.summary,
            seqs: f.seqs,
            state: AlertState::Open,
            raised_at: now,
            acknowledged_by: String::new(),
            acknowledged_at: None,
            acknowledge_note: String::new(),
            resolved_by: String::new(),
            resolved_at: None,
            resolve_note: String::new(),
        };
        let seqs: Vec<String> = a.seqs.iter().map(u64::to_string).collect();
        let d = a
            .draft(&Actor::System, EventKind::AlertRaised)
            .with(detail::RULE, a.rule)
            .with(detail::SEVERITY, a.severity)
            .with(detail::SUBJECT, &a.subject)
            .with(detail::SUMMARY, &a.summary)
            .with(detail::TRIGGER_SEQS, seqs.join(","));
        (a, d)
    }

    fn draft(&self, actor: &Actor, kind: EventKind) -> Draft {
        Draft::new(actor.clone(), self.tenant.as_str(), kind).with(detail::ALERT, &self.id)
    }

    /// Acknowledged by `actor`: someone is on it. Only an open alert.
    pub fn acknowledge(&mut self, now: Timestamp, actor: &Actor, note: &str) -> Option<Draft> {
        if self.state != AlertState::Open {
            return None;
        }
        self.state = AlertState::Acknowledged;
        self.acknowledged_by = actor.to_string();
        self.acknowledged_at = Some(now);
        self.acknowledge_note = note.to_owned();
        Some(
            self.draft(actor, EventKind::AlertAcknowledged)
                .with(detail::NOTE, note),
        )
    }

    /// Resolved by `actor`: done with. An open or acknowledged alert.
    pub fn resolve(&mut self, now: Timestamp, actor: &Actor, note: &str) -> Option<Draft> {
        if self.state == AlertState::Resolved {
            return None;
        }
        self.state = AlertState::Resolved;
        self.resolved_by = actor.to_string();
        self.resolved_at = Some(now);
        self.resolve_note = note.to_owned();
        Some(
            self.draft(actor, EventKind::AlertResolved)
                .with(detail::NOTE, note),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_ids_parse_strictly() {
        for r in Rule::ALL {
            assert_eq!(Rule::parse(r.as_str()), Some(r));
        }
        for s in Severity::ALL {
            assert_eq!(Severity::parse(s.as_str()), Some(s));
        }
        let id = AlertId::random();
        assert_eq!(AlertId::parse(id.as_str()), Some(id));
        assert_eq!(AlertId::parse("a-XYZ"), None);
        assert_eq!(AlertId::parse("g-000000000000000000000000"), None);
    }

    #[test]
    fn an_alert_is_acknowledged_once_and_resolved_once() {
        let f = Finding {
            rule: Rule::OutsideGrant,
            severity: Severity::Warning,
            subject: "staff/alice".into(),
            tenant: "acme".into(),
            summary: "x".into(),
            seqs: vec![3, 4],
        };
        let (mut a, d) = Alert::raise(f, Timestamp(1));
        assert_eq!(d.details[detail::TRIGGER_SEQS], "3,4");
        assert_eq!(d.tenant, "acme");
        let bob = Actor::System;
        assert!(a.acknowledge(Timestamp(2), &bob, "on it").is_some());
        assert!(a.acknowledge(Timestamp(3), &bob, "again").is_none());
        assert!(a.resolve(Timestamp(4), &bob, "done").is_some());
        assert!(a.resolve(Timestamp(5), &bob, "again").is_none());
        assert_eq!(a.state, AlertState::Resolved);
    }
}
