//! The breach register as the log tells it: [`IncidentRegister`], a fold
//! over the `incident.*` entries, and the drafts of those entries (so that
//! what is written and what is read back are defined in one file).
//!
//! Every change is an entry whose details carry everything needed to
//! rebuild it; the register is never stored, only rebuilt (at start-up,
//! and by `audit check`/`audit verify` through [`super::LogState`]).
//!
//! Entries are written **one per affected tenant**, with that tenant in the
//! entry's `tenant` field, so each tenant reads them in its own log slice
//! and never learns which other tenants an incident affects
//! (docs/log-format.md §5 and §9). The entries of one recording (or one
//! update) are written in one commit, share a timestamp and carry identical
//! details; the fold joins them.
//!
//! Not here: parsing peer input (see [`crate::domain::incident`]), who may
//! read what (see [`crate::policy`]).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::{
    audit::Entry,
    clock::Timestamp,
    domain::{
        Actor, Draft, EventKind, IncidentId, IncidentReport, IncidentUpdate, Name, Notification,
        detail, incident::ContactPoint,
    },
};

/// One affected tenant's 24 h clock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TenantClock {
    pub due_at: Timestamp,
    /// Every notification recorded, in order (the first one stops the clock).
    pub notifications: Vec<LoggedNotification>,
    /// When the server logged `incident.notification_overdue`, and its seq.
    pub overdue_logged: Option<(Timestamp, u64)>,
}

/// Where a tenant's clock stands at a moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClockStatus {
    /// Not yet told, not yet due.
    Pending,
    /// Not told, and the deadline has passed.
    Overdue,
    /// Told by the deadline.
    Notified,
    /// Told, after the deadline.
    NotifiedLate,
}

impl ClockStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ClockStatus::Pending => "pending",
            ClockStatus::Overdue => "overdue",
            ClockStatus::Notified => "notified",
            ClockStatus::NotifiedLate => "notified-late",
        }
    }
}

impl TenantClock {
    pub fn first_notification(&self) -> Option<&LoggedNotification> {
        self.notifications.first()
    }

    pub fn status(&self, now: Timestamp) -> ClockStatus {
        match self.first_notification() {
            Some(n) if n.notification.notified_at <= self.due_at => ClockStatus::Notified,
            Some(_) => ClockStatus::NotifiedLate,
            None if now > self.due_at => ClockStatus::Overdue,
            None => ClockStatus::Pending,
        }
    }
}

/// A notification with the entry that recorded it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LoggedNotification {
    pub notification: Notification,
    pub recorded_at: Timestamp,
    pub recorded_by: String,
    pub seq: u64,
}

/// An update with the first entry that recorded it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LoggedUpdate {
    pub update: IncidentUpdate,
    pub at: Timestamp,
    pub by: String,
    pub seq: u64,
}

/// An incident: the report as first recorded, every update after it, and
/// each affected tenant's clock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Incident {
    pub id: IncidentId,
    pub report: IncidentReport,
    pub recorded_at: Timestamp,
    pub recorded_by: String,
    pub recorded_seq: u64,
    pub updates: Vec<LoggedUpdate>,
    #[serde(serialize_with = "clocks_by_name")]
    pub clocks: BTreeMap<Name, TenantClock>,
}

fn clocks_by_name<S: serde::Serializer>(
    c: &BTreeMap<Name, TenantClock>,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_map(c.iter().map(|(k, v)| (k.as_str(), v)))
}

/// One line of an incident's history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimelineEvent {
    pub seq: u64,
    pub at: Timestamp,
    pub by: String,
    pub what: String,
}

impl Incident {
    /// The incident as `tenant` may see it: only its own clock, and no
    /// other tenant's name.
    pub fn scoped_to(&self, tenant: &Name) -> Incident {
        let mut i = self.clone();
        i.clocks.retain(|t, _| t == tenant);
        i.report.tenants.retain(|t| t == tenant);
        i
    }

    /// Whether `tenant` is affected.
    pub fn affects(&self, tenant: &Name) -> bool {
        self.clocks.contains_key(tenant)
    }

    /// Every log entry named as evidence, first report and updates.
    pub fn all_evidence(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self
            .report
            .evidence
            .iter()
            .chain(self.updates.iter().flat_map(|u| u.update.evidence.iter()))
            .copied()
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// The history, in log order: recorded, updates, notifications, overdue.
    pub fn timeline(&self) -> Vec<TimelineEvent> {
        let mut out = vec![TimelineEvent {
            seq: self.recorded_seq,
            at: self.recorded_at,
            by: self.recorded_by.clone(),
            what: format!(
                "recorded (became known {}; tenants must be told by {})",
                self.report.became_known_at,
                self.report.due_at()
            ),
        }];
        for (n, u) in self.updates.iter().enumerate() {
            let mut parts = Vec::new();
            for (label, text) in [
                ("facts", &u.update.facts),
                ("measures", &u.update.measures),
                ("likely consequences", &u.update.consequences),
            ] {
                if !text.is_empty() {
                    parts.push(format!("{label}: {text}"));
                }
            }
            if !u.update.evidence.is_empty() {
                parts.push(format!("evidence: {}", seqs_text(&u.update.evidence)));
            }
            out.push(TimelineEvent {
                seq: u.seq,
                at: u.at,
                by: u.by.clone(),
                what: format!("update {}: {}", n + 1, parts.join("; ")),
            });
        }
        for (tenant, c) in &self.clocks {
            for n in &c.notifications {
                out.push(TimelineEvent {
                    seq: n.seq,
                    at: n.recorded_at,
                    by: n.recorded_by.clone(),
                    what: format!(
                        "tenant {tenant} notified at {} via {} by {}",
                        n.notification.notified_at, n.notification.channel, n.notification.by
                    ),
                });
            }
            if let Some((at, seq)) = c.overdue_logged {
                out.push(TimelineEvent {
                    seq,
                    at,
                    by: Actor::System.to_string(),
                    what: format!("notification of tenant {tenant} overdue (due {})", c.due_at),
                });
            }
        }
        out.sort_by_key(|e| e.seq);
        out
    }
}

/// Every incident the log records.
#[derive(Clone, Debug, Default)]
pub struct IncidentRegister {
    incidents: BTreeMap<IncidentId, Incident>,
}

impl IncidentRegister {
    pub fn get(&self, id: &IncidentId) -> Option<&Incident> {
        self.incidents.get(id)
    }

    /// Newest first.
    pub fn all(&self) -> impl Iterator<Item = &Incident> {
        self.incidents.values().rev()
    }

    pub fn len(&self) -> usize {
        self.incidents.len()
    }

    pub fn is_empty(&self) -> bool {
        self.incidents.is_empty()
    }

    /// The earliest deadline of a clock that has neither a notification nor
    /// an overdue entry yet: when the sweeper must look next.
    pub fn next_due(&self) -> Option<Timestamp> {
        self.unsettled().map(|(_, _, due)| due).min()
    }

    /// Clocks past due at `now` with no notification and no overdue entry.
    pub fn overdue_unlogged(&self, now: Timestamp) -> Vec<(IncidentId, Name, Timestamp)> {
        self.unsettled()
            .filter(|(_, _, due)| now > *due)
            .map(|(i, t, due)| (i.clone(), t.clone(), due))
            .collect()
    }

    fn unsettled(&self) -> impl Iterator<Item = (&IncidentId, &Name, Timestamp)> {
        self.incidents.values().flat_map(|i| {
            i.clocks
                .iter()
                .filter(|(_, c)| c.notifications.is_empty() && c.overdue_logged.is_none())
                .map(move |(t, c)| (&i.id, t, c.due_at))
        })
    }

    /// Applies one `incident.*` entry, or says how it contradicts the log
    /// before it (then nothing changes). Other kinds are ignored.
    pub fn apply(&mut self, kind: EventKind, e: &Entry) -> Result<(), String> {
        match kind {
            EventKind::IncidentRecorded => self.recorded(e),
            EventKind::IncidentUpdated => self.updated(e),
            EventKind::IncidentTenantNotified => self.notified(e),
            EventKind::IncidentNotificationOverdue => self.overdue(e),
            _ => Ok(()),
        }
    }

    fn recorded(&mut self, e: &Entry) -> Result<(), String> {
        let id = incident_id(e)?;
        let tenant = entry_tenant(e)?;
        let report = report_of(e, tenant.clone())?;
        if let Some(i) = self.incidents.get_mut(&id) {
            // Another tenant's entry of the same recording.
            let same = i.recorded_at == e.timestamp
                && i.recorded_by == e.actor
                && IncidentReport {
                    tenants: report.tenants.clone(),
                    ..i.report.clone()
                } == report;
            if !same || i.affects(&tenant) {
                return Err(format!("incident {id} was recorded before"));
            }
            i.report.tenants.push(tenant.clone());
            i.clocks.insert(tenant, clock(i.report.due_at()));
            return Ok(());
        }
        let mut clocks = BTreeMap::new();
        clocks.insert(tenant, clock(report.due_at()));
        self.incidents.insert(
            id.clone(),
            Incident {
                id,
                report,
                recorded_at: e.timestamp,
                recorded_by: e.actor.clone(),
                recorded_seq: e.seq,
                updates: Vec::new(),
                clocks,
            },
        );
        Ok(())
    }

    fn updated(&mut self, e: &Entry) -> Result<(), String> {
        let (i, _) = self.affected(e)?;
        let update = IncidentUpdate {
            facts: text(e, detail::FACTS),
            measures: text(e, detail::MEASURES),
            consequences: text(e, detail::CONSEQUENCES),
            evidence: seqs(e)?,
        };
        // The entries of one update share their time, author and details.
        match i.updates.last() {
            Some(last) if last.at == e.timestamp && last.by == e.actor && last.update == update => {
                Ok(())
            }
            _ => {
                i.updates.push(LoggedUpdate {
                    update,
                    at: e.timestamp,
                    by: e.actor.clone(),
                    seq: e.seq,
                });
                Ok(())
            }
        }
    }

    fn notified(&mut self, e: &Entry) -> Result<(), String> {
        let (i, tenant) = self.affected(e)?;
        let notified_at = timestamp(e, detail::NOTIFIED_AT)?;
        if notified_at < i.report.became_known_at || notified_at > e.timestamp {
            return Err(format!(
                "incident {}: tenant {tenant} is notified at {notified_at}, before the breach \
                 became known or after the entry",
                i.id
            ));
        }
        let n = LoggedNotification {
            notification: Notification {
                tenant: tenant.clone(),
                notified_at,
                channel: text(e, detail::CHANNEL),
                by: text(e, detail::NOTIFIED_BY),
            },
            recorded_at: e.timestamp,
            recorded_by: e.actor.clone(),
            seq: e.seq,
        };
        if let Some(c) = i.clocks.get_mut(&tenant) {
            c.notifications.push(n);
        }
        Ok(())
    }

    fn overdue(&mut self, e: &Entry) -> Result<(), String> {
        if e.actor != Actor::System.to_string() {
            return Err(format!(
                "{} logged an overdue notification; only the server does",
                e.actor
            ));
        }
        let (i, tenant) = self.affected(e)?;
        let id = i.id.clone();
        let Some(c) = i.clocks.get_mut(&tenant) else {
            return Err(format!("incident {id} does not affect {tenant}"));
        };
        if e.timestamp <= c.due_at || !c.notifications.is_empty() || c.overdue_logged.is_some() {
            return Err(format!(
                "incident {id}: the notification of {tenant} is logged overdue although it is \
                 not (due {}, {} notification(s), overdue logged before: {})",
                c.due_at,
                c.notifications.len(),
                c.overdue_logged.is_some()
            ));
        }
        c.overdue_logged = Some((e.timestamp, e.seq));
        Ok(())
    }

    fn affected(&mut self, e: &Entry) -> Result<(&mut Incident, Name), String> {
        let id = incident_id(e)?;
        let tenant = entry_tenant(e)?;
        let Some(i) = self.incidents.get_mut(&id) else {
            return Err(format!("incident {id} was never recorded"));
        };
        if !i.affects(&tenant) {
            return Err(format!("incident {id} does not affect tenant {tenant}"));
        }
        Ok((i, tenant))
    }
}

fn clock(due_at: Timestamp) -> TenantClock {
    TenantClock {
        due_at,
        notifications: Vec::new(),
        overdue_logged: None,
    }
}

// ------------------------------------------------------------- drafts ---

/// `incident.recorded`, one per affected tenant.
pub fn recorded_drafts(id: &IncidentId, r: &IncidentReport, actor: &Actor) -> Vec<Draft> {
    r.tenants
        .iter()
        .map(|t| {
            Draft::new(actor.clone(), t.as_str(), EventKind::IncidentRecorded)
                .with(detail::INCIDENT, id)
                .with(detail::NATURE, &r.nature)
                .with(detail::SUBJECT_CATEGORIES, r.subject_categories.join("\n"))
                .with(detail::DATA_CATEGORIES, r.data_categories.join("\n"))
                .with(detail::APPROX_SUBJECTS, r.approx_subjects)
                .with(detail::APPROX_RECORDS, r.approx_records)
                .with(detail::CONTACT_NAME, &r.contact.name)
                .with(detail::CONTACT_EMAIL, &r.contact.email)
                .with(detail::CONSEQUENCES, &r.consequences)
                .with(detail::MEASURES, &r.measures)
                .with(detail::BECAME_KNOWN_AT, r.became_known_at)
                .with(detail::DUE_AT, r.due_at())
                .with(detail::EVIDENCE_SEQS, seqs_csv(&r.evidence))
        })
        .collect()
}

/// `incident.updated`, one per affected tenant.
pub fn updated_drafts(i: &Incident, u: &IncidentUpdate, actor: &Actor) -> Vec<Draft> {
    i.clocks
        .keys()
        .map(|t| {
            Draft::new(actor.clone(), t.as_str(), EventKind::IncidentUpdated)
                .with(detail::INCIDENT, &i.id)
                .with(detail::FACTS, &u.facts)
                .with(detail::MEASURES, &u.measures)
                .with(detail::CONSEQUENCES, &u.consequences)
                .with(detail::EVIDENCE_SEQS, seqs_csv(&u.evidence))
        })
        .collect()
}

/// `incident.tenant_notified`, about the tenant told.
pub fn notified_draft(id: &IncidentId, n: &Notification, actor: &Actor) -> Draft {
    Draft::new(
        actor.clone(),
        n.tenant.as_str(),
        EventKind::IncidentTenantNotified,
    )
    .with(detail::INCIDENT, id)
    .with(detail::NOTIFIED_AT, n.notified_at)
    .with(detail::CHANNEL, &n.channel)
    .with(detail::NOTIFIED_BY, &n.by)
}

/// `incident.notification_overdue`, by the server, about the tenant not told.
pub fn overdue_draft(id: &IncidentId, tenant: &Name, due_at: Timestamp) -> Draft {
    Draft::new(
        Actor::System,
        tenant.as_str(),
        EventKind::IncidentNotificationOverdue,
    )
    .with(detail::INCIDENT, id)
    .with(detail::DUE_AT, due_at)
}

/// `1, 5, 9`, for people.
pub fn seqs_text(seqs: &[u64]) -> String {
    seqs.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn seqs_csv(seqs: &[u64]) -> String {
    seqs.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

// ------------------------------------------------------------ reading ---

fn report_of(e: &Entry, tenant: Name) -> Result<IncidentReport, String> {
    let list = |k: &str| -> Vec<String> {
        e.details
            .get(k)
            .map(|v| {
                v.split('\n')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let number = |k: &str| -> Result<u64, String> {
        e.details
            .get(k)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{k} is missing or not a number"))
    };
    let became_known_at = timestamp(e, detail::BECAME_KNOWN_AT)?;
    let r = IncidentReport {
        nature: text(e, detail::NATURE),
        subject_categories: list(detail::SUBJECT_CATEGORIES),
        data_categories: list(detail::DATA_CATEGORIES),
        approx_subjects: number(detail::APPROX_SUBJECTS)?,
        approx_records: number(detail::APPROX_RECORDS)?,
        contact: ContactPoint {
            name: text(e, detail::CONTACT_NAME),
            email: text(e, detail::CONTACT_EMAIL),
        },
        consequences: text(e, detail::CONSEQUENCES),
        measures: text(e, detail::MEASURES),
        became_known_at,
        tenants: vec![tenant],
        evidence: seqs(e)?,
    };
    if r.nature.is_empty() {
        return Err("an incident is recorded without its nature".into());
    }
    if became_known_at > e.timestamp {
        return Err(format!(
            "an incident is recorded as known from {became_known_at}, after the entry"
        ));
    }
    if timestamp(e, detail::DUE_AT)? != r.due_at() {
        return Err("an incident's due_at is not 24 h after it became known".into());
    }
    if let Some(bad) = r.evidence.iter().find(|s| **s >= e.seq) {
        return Err(format!(
            "an incident names entry {bad} as evidence, which is not before it"
        ));
    }
    Ok(r)
}

fn text(e: &Entry, key: &str) -> String {
    e.details.get(key).cloned().unwrap_or_default()
}

fn seqs(e: &Entry) -> Result<Vec<u64>, String> {
    text(e, detail::EVIDENCE_SEQS)
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<u64>()
                .map_err(|_| format!("bad evidence seq {s:?}"))
        })
        .collect()
}

fn incident_id(e: &Entry) -> Result<IncidentId, String> {
    IncidentId::parse(e.details.get(detail::INCIDENT).map_or("", String::as_str))
}

fn entry_tenant(e: &Entry) -> Result<Name, String> {
    Name::parse(&e.tenant).map_err(|err| format!("an incident entry's tenant: {err}"))
}

fn timestamp(e: &Entry, key: &str) -> Result<Timestamp, String> {
    e.details
        .get(key)
        .and_then(|t| Timestamp::parse_rfc3339(t))
        .ok_or_else(|| format!("{key} is missing or not a time"))
}

#[cfg(test)]
mod tests;
