//! The alert entries' part of the log's semantics: `alert.raised` only by
//! the monitor, once, naming earlier entries; `alert.acknowledged` and
//! `alert.resolved` once each, of an alert that was raised; and the stored
//! alert records compared with what the entries make them.

use super::{LogState, Mismatch};
use crate::{
    audit::Entry,
    domain::{Alert, AlertId, AlertState, EventKind, Finding, Rule, Severity, detail},
};

impl LogState {
    pub(super) fn alert_raised(&mut self, e: &Entry) -> Result<(), String> {
        let now = e.timestamp;
        if e.actor != "system" {
            return Err(format!(
                "{} raised an alert; only the monitor does",
                e.actor
            ));
        }
        let id = alert_id(e)?;
        let get = |k: &str| e.details.get(k).cloned().unwrap_or_default();
        let rule = Rule::parse(&get(detail::RULE))
            .ok_or_else(|| format!("alert {id}: unknown rule {:?}", get(detail::RULE)))?;
        let severity = Severity::parse(&get(detail::SEVERITY))
            .ok_or_else(|| format!("alert {id}: unknown severity {:?}", get(detail::SEVERITY)))?;
        let seqs = get(detail::TRIGGER_SEQS)
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<u64>()
                    .map_err(|_| format!("alert {id}: bad seq {s:?}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(bad) = seqs.iter().find(|s| **s >= e.seq) {
            return Err(format!(
                "alert {id} names entry {bad}, which is not before it"
            ));
        }
        let (a, _) = Alert::raise_as(
            id.clone(),
            Finding {
                rule,
                severity,
                subject: get(detail::SUBJECT),
                tenant: e.tenant.clone(),
                summary: get(detail::SUMMARY),
                seqs,
            },
            now,
        );
        if self.alerts.contains_key(&id) {
            return Err(format!("alert {id} was raised before"));
        }
        self.alerts.insert(id, (a, e.seq));
        Ok(())
    }

    pub(super) fn alert_decided(&mut self, kind: EventKind, e: &Entry) -> Result<(), String> {
        let now = e.timestamp;
        let id = alert_id(e)?;
        let Some((a, seq)) = self.alerts.get_mut(&id) else {
            return Err(format!("alert {id} was never raised"));
        };
        let note = e.details.get(detail::NOTE).cloned().unwrap_or_default();
        let actor = crate::domain::Actor::System;
        let changed = if kind == EventKind::AlertAcknowledged {
            a.acknowledge(now, &actor, &note)
        } else {
            a.resolve(now, &actor, &note)
        };
        if changed.is_none() {
            return Err(format!("alert {id} is already {}", a.state.as_str()));
        }
        // The decider is the entry's actor, as logged.
        if a.state == AlertState::Acknowledged {
            a.acknowledged_by = e.actor.clone();
        } else {
            a.resolved_by = e.actor.clone();
        }
        *seq = e.seq;
        Ok(())
    }

    /// Differences between the stored alerts and the log's.
    pub fn compare_alerts(&self, stored: &[Alert]) -> Vec<Mismatch> {
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for a in stored {
            seen.insert(a.id.clone());
            match self.alerts.get(&a.id) {
                Some((logged, _)) if logged == a => {}
                Some((logged, seq)) => out.push(Mismatch {
                    record: format!("alert/{}", a.id),
                    seq: *seq,
                    why: format!(
                        "stored as {} ({}), the log says {} ({})",
                        a.state.as_str(),
                        a.severity,
                        logged.state.as_str(),
                        logged.severity
                    ),
                }),
                None => out.push(Mismatch {
                    record: format!("alert/{}", a.id),
                    seq: 0,
                    why: "stored, but the log never raised it".into(),
                }),
            }
        }
        for (id, (_, seq)) in &self.alerts {
            if !seen.contains(id) {
                out.push(Mismatch {
                    record: format!("alert/{id}"),
                    seq: *seq,
                    why: "in the log, but not stored".into(),
                });
            }
        }
        out
    }
}

fn alert_id(e: &Entry) -> Result<AlertId, String> {
    let raw = e
        .details
        .get(detail::ALERT)
        .map(String::as_str)
        .unwrap_or("");
    AlertId::parse(raw).ok_or_else(|| format!("alert id {raw:?} is malformed"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{audit::entry::GENESIS_PREV_HASH, clock::Timestamp, domain::Draft};

    fn entry(seq: u64, d: &Draft) -> Entry {
        Entry {
            seq,
            timestamp: Timestamp(1_000 + seq as i64),
            actor: d.actor.to_string(),
            tenant: d.tenant.clone(),
            kind: d.kind.as_str().to_owned(),
            details: d.details.clone(),
            sealed: None,
            prev_hash: GENESIS_PREV_HASH,
        }
    }

    fn health_finding(seqs: Vec<u64>) -> Finding {
        Finding {
            rule: Rule::StoreUnwritable,
            severity: Severity::Critical,
            subject: "store".into(),
            tenant: String::new(),
            summary: "the store refused writes from … to …: a flush failed".into(),
            seqs,
        }
    }

    #[test]
    fn a_system_health_alert_naming_no_entries_is_accepted_and_compares_equal() {
        let mut state = LogState::default();
        let (stored, d) = Alert::raise(health_finding(Vec::new()), Timestamp(1_005));
        state.apply(&entry(5, &d)).expect("accepted");
        assert!(state.compare_alerts(&[stored]).is_empty());
    }

    #[test]
    fn an_alert_naming_a_later_entry_or_raised_by_a_person_is_still_rejected() {
        let mut state = LogState::default();
        let (_, d) = Alert::raise(health_finding(vec![9]), Timestamp(1_005));
        assert!(state.apply(&entry(5, &d)).is_err());
        let (_, d) = Alert::raise(health_finding(Vec::new()), Timestamp(1_005));
        let mut by_a_person = entry(6, &d);
        by_a_person.actor = "staff/alice".into();
        assert!(state.apply(&by_a_person).is_err());
    }
}
