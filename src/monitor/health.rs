//! The system-health rules: unlike [`super::rules`], which fold over the
//! log's entries, these judge the ledger itself, sampled every
//! `health_interval_ms` ([`run`]):
//!
//! - `store-unwritable`: the store refused writes ([`Ledger::refuses_writes`],
//!   the fail-closed state of a failed write or flush). An alert cannot be
//!   written while the store refuses, so the episode is remembered and the
//!   alert raised once writes succeed again, saying from when to when and
//!   why. While it refuses, the sampler retries an empty commit each tick
//!   (the ledger retries the failed flush, or reopens the driver, on the
//!   next group), so writes come back without waiting for a call.
//! - `log-stalled`: commits were accepted but not settled
//!   ([`Ledger::commits_waiting`]) while the durable size
//!   ([`Ledger::durable_size`]) did not move for `stall_secs`. The alert's
//!   commit waits behind the stalled ones, so it is written once the log
//!   moves again.
//!
//! A store that refuses writes for good, or a log that never moves again,
//! can write no alert at all: `/readyz` and the Prometheus rules in
//! `deploy/prometheus-alerts.yml` are the signal then (docs/monitoring.md).
//!
//! The judgement ([`Health::observe`]) is a pure fold over samples with
//! the time taken from the injected clock, so tests drive it with
//! scripted times; only the tick is real tokio time. The findings name no
//! entries (`trigger_seqs` is empty) and are committed without moving the
//! log follower's cursor ([`Broker::raise_system_alerts`]). Not here: the
//! log-derived rules, and anything about what the store's trouble was
//! beyond the ledger's own one-line reason.

use std::{collections::HashMap, future::Future, sync::Arc, time::Duration};

use tokio::time::MissedTickBehavior;

use super::settings::AlertSettings;
use crate::{
    clock::Timestamp,
    domain::{Finding, Rule, Severity},
    ledger::{Ledger, LedgerError},
    service::Broker,
};

/// Samples the ledger every `health_interval_ms` and raises what the
/// system-health rules find, until `stop` resolves.
pub async fn run(broker: Arc<Broker>, settings: AlertSettings, stop: impl Future<Output = ()>) {
    tokio::pin!(stop);
    let mut health = Health::new(&settings);
    let mut pending: Vec<Finding> = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(settings.health_interval_ms));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = &mut stop => break,
        }
        let ledger = broker.ledger();
        if health.refusing_since().is_some() && ledger.refuses_writes().is_some() {
            // The ledger retries its failed flush (or reopens the driver)
            // on the next group: an empty commit is that group. Its
            // failure is the refusal already being judged.
            let _ = ledger
                .commit(&**broker.clock(), |_, _, _| Ok::<_, LedgerError>(()))
                .await;
        }
        pending.extend(health.observe(&Sample::of(ledger), broker.now()));
        if pending.is_empty() {
            continue;
        }
        // Awaited, not raced against the stop: a commit is not cancelled
        // half-way (a stalled log holds this one as it holds the server's
        // own stop entry). A failed one is retried at the next tick.
        match broker.raise_system_alerts(&pending).await {
            Ok(a) => {
                tracing::warn!(alerts = a.len(), "the monitor raised system-health alerts");
                pending.clear();
            }
            Err(e) => {
                tracing::warn!(error = %e, "the monitor could not write its system-health alerts; retrying");
            }
        }
    }
    if !pending.is_empty() {
        tracing::warn!(
            alerts = pending.len(),
            "the monitor stopped with system-health alerts it could not write"
        );
    }
}

/// What the sampler reads from the ledger at one tick.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    /// Why the store refuses writes, if it does.
    pub refusing: Option<String>,
    /// Commits accepted whose fate (on disk or failed) is not settled.
    pub waiting: u64,
    /// Durable entries in the log.
    pub durable: u64,
}

impl Sample {
    pub fn of(ledger: &Ledger) -> Sample {
        Sample {
            refusing: ledger.refuses_writes().map(str::to_owned),
            waiting: ledger.commits_waiting(),
            durable: ledger.durable_size(),
        }
    }
}

/// The system-health rules' state: the open episodes and when each rule
/// last raised (the cool-down).
pub struct Health {
    store_unwritable: bool,
    log_stalled: bool,
    stall_ms: i64,
    cooldown_ms: i64,
    /// Since when, and why, the store has refused writes.
    refusing: Option<(Timestamp, String)>,
    /// Since when the durable size has stood still with commits waiting.
    stalled: Option<Stalled>,
    last_raised: HashMap<Rule, Timestamp>,
}

struct Stalled {
    since: Timestamp,
    durable: u64,
    /// This episode raised already (or was judged in the cool-down).
    judged: bool,
}

impl Health {
    pub fn new(s: &AlertSettings) -> Health {
        Health {
            store_unwritable: s.store_unwritable.enabled,
            log_stalled: s.log_stalled.enabled,
            stall_ms: s.log_stalled.stall_secs.saturating_mul(1000),
            cooldown_ms: s.cooldown_secs.saturating_mul(1000),
            refusing: None,
            stalled: None,
            last_raised: HashMap::new(),
        }
    }

    /// Since when the store has refused writes (an open episode).
    pub fn refusing_since(&self) -> Option<Timestamp> {
        self.refusing.as_ref().map(|(t, _)| *t)
    }

    /// Judges the sample taken at `now`: at most one finding per rule and
    /// episode.
    pub fn observe(&mut self, sample: &Sample, now: Timestamp) -> Vec<Finding> {
        let mut out = Vec::new();
        if self.store_unwritable {
            match (&sample.refusing, self.refusing.take()) {
                (Some(why), None) => self.refusing = Some((now, why.clone())),
                (Some(_), open @ Some(_)) => self.refusing = open,
                (None, Some((since, why))) => {
                    if self.cooled(Rule::StoreUnwritable, now) {
                        out.push(finding(
                            Rule::StoreUnwritable,
                            "store",
                            format!("the store refused writes from {since} to {now}: {why}"),
                        ));
                    }
                }
                (None, None) => {}
            }
        }
        if self.log_stalled {
            if sample.waiting == 0 {
                // Idle, or caught up: no stall.
                self.stalled = None;
            } else {
                let moved = self
                    .stalled
                    .as_ref()
                    .is_none_or(|st| st.durable != sample.durable);
                if moved {
                    self.stalled = Some(Stalled {
                        since: now,
                        durable: sample.durable,
                        judged: false,
                    });
                }
                let due = self
                    .stalled
                    .as_ref()
                    .filter(|st| !st.judged && now.0 - st.since.0 >= self.stall_ms)
                    .map(|st| st.since);
                if let Some(since) = due {
                    if let Some(st) = &mut self.stalled {
                        st.judged = true;
                    }
                    if self.cooled(Rule::LogStalled, now) {
                        out.push(finding(
                            Rule::LogStalled,
                            "log",
                            format!(
                                "{} commits waited while the log stayed at {} entries from {since} to {now}",
                                sample.waiting, sample.durable
                            ),
                        ));
                    }
                }
            }
        }
        out
    }

    /// Whether `rule` may raise at `now` (and, if so, that it did).
    fn cooled(&mut self, rule: Rule, now: Timestamp) -> bool {
        if let Some(last) = self.last_raised.get(&rule) {
            if now.0 < last.0 + self.cooldown_ms {
                return false;
            }
        }
        self.last_raised.insert(rule, now);
        true
    }
}

fn finding(rule: Rule, subject: &str, summary: String) -> Finding {
    Finding {
        rule,
        severity: Severity::Critical,
        subject: subject.to_owned(),
        tenant: String::new(),
        summary,
        seqs: Vec::new(),
    }
}

#[cfg(test)]
mod tests;
