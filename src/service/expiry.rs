//! Expiry: the deadlines of live grants, and the sweeper that closes grants
//! at their deadline and logs it. A scheduled grant's deadline is its
//! start: the sweeper activates it then (`grant.activated` with the start
//! as `activated_at`) and tracks its expiry next.
//!
//! Validity never depends on this task (validation checks the clock); it
//! exists so that the log says, within a second, that a grant expired. It
//! keeps a `BTreeSet<(deadline, id)>` and sleeps until the earliest deadline
//! or until a new, earlier one is added: no periodic full scans.

use std::{collections::BTreeSet, future::Future, sync::Arc, time::Duration};

use parking_lot::{Mutex, MutexGuard};
use tokio::sync::Notify;

use super::{Broker, BrokerError, Result};
use crate::{
    clock::Timestamp,
    domain::{Grant, GrantId},
};

/// Pending deadlines, earliest first.
#[derive(Debug, Default)]
pub struct ExpiryIndex {
    deadlines: Mutex<BTreeSet<(Timestamp, GrantId)>>,
    changed: Notify,
}

impl ExpiryIndex {
    pub fn insert(&self, deadline: Timestamp, id: GrantId) {
        let mut set = self.lock();
        let earliest = set.first().is_none_or(|(d, _)| deadline < *d);
        set.insert((deadline, id));
        drop(set);
        if earliest {
            self.changed.notify_one();
        }
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn next(&self) -> Option<Timestamp> {
        self.lock().first().map(|(d, _)| *d)
    }

    /// Removes and returns every id due at `now` (at most `max`).
    fn take_due(&self, now: Timestamp, max: usize) -> Vec<GrantId> {
        let mut set = self.lock();
        let mut out = Vec::new();
        while out.len() < max {
            match set.first() {
                Some((d, _)) if *d <= now => {
                    if let Some((_, id)) = set.pop_first() {
                        out.push(id);
                    }
                }
                _ => break,
            }
        }
        out
    }

    fn lock(&self) -> MutexGuard<'_, BTreeSet<(Timestamp, GrantId)>> {
        self.deadlines.lock()
    }
}

/// The `cause` of a scheduled grant revoked at its start because its
/// holder's eligibility lapsed in the meantime.
pub const CAUSE_LAPSED: &str = "eligibility lapsed";

/// Grants closed per transaction.
const BATCH: usize = 1024;

/// Closes everything already due. Called at start-up before serving, so
/// grants that expired while the server was down get their entry first.
pub async fn catch_up(broker: &Broker) -> Result<usize> {
    let mut total = 0;
    loop {
        let due = broker.expiry().take_due(broker.now(), BATCH);
        if due.is_empty() {
            return Ok(total);
        }
        total += broker.expire_due(&due).await?;
    }
}

/// Runs until `shutdown` resolves.
pub async fn run(broker: Arc<Broker>, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    let index = broker.expiry().clone();
    loop {
        let due = index.take_due(broker.now(), BATCH);
        if !due.is_empty() {
            match broker.expire_due(&due).await {
                Ok(n) => tracing::debug!(closed = n, "expired grants"),
                Err(e) => {
                    // Put them back and retry shortly: the store may recover.
                    tracing::warn!(error = %e, "could not log grant expiry; retrying");
                    let now = broker.now();
                    for id in due {
                        index.insert(now, id);
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = &mut shutdown => return,
                    }
                }
            }
            continue;
        }
        let clock = broker.clock().clone();
        let next = index.next();
        tokio::select! {
            _ = async { match next {
                Some(t) => clock.sleep_until(t).await,
                None => std::future::pending().await,
            } } => {}
            _ = index.changed.notified() => {}
            _ = &mut shutdown => return,
        }
    }
}

impl Broker {
    /// A scheduled grant whose start has come, brought up to `now`: its
    /// activation is logged, or, when its holder's eligibility lapsed
    /// since the approval (`staff.recertify_days`), it is revoked instead
    /// (`cause` = `eligibility lapsed`). `true` when it changed; the caller
    /// stores it (and tracks it once committed).
    pub(super) fn start_if_due(
        &self,
        s: &crate::ledger::View<'_>,
        b: &mut crate::ledger::Batch,
        g: &mut Grant,
        now: Timestamp,
    ) -> Result<bool> {
        if g.state != crate::domain::GrantState::Scheduled || g.deadline().is_some_and(|d| now < d)
        {
            return Ok(false);
        }
        if let Some(why) = self.lapsed_eligibility(&g.holder, s.staff(&g.holder)?.as_ref(), now) {
            let note = crate::domain::Note::parse(&crate::domain::truncate(
                &format!("at its start: {why}"),
                crate::domain::text::MAX_NOTE_CHARS - 1,
            ))
            .unwrap_or_default();
            b.log(
                g.end(
                    crate::domain::grant::Ending::Revoke,
                    now,
                    &crate::domain::Actor::System,
                    &note,
                )
                .with(crate::domain::detail::CAUSE, CAUSE_LAPSED),
            );
            self.gate.note_ended(g, now);
            return Ok(true);
        }
        Ok(match g.activate_if_due(now) {
            Some(d) => {
                b.log(d);
                true
            }
            None => false,
        })
    }

    /// Remembers a live grant's deadline for the sweeper.
    pub(super) fn track(&self, g: &Grant) {
        if let Some(d) = g.deadline() {
            self.expiry.insert(d, g.id.clone());
        }
    }

    /// Loads the deadlines of every live grant, and the grants that ended
    /// early but have not expired into the revocation lists (start-up).
    pub fn load_deadlines(&self) -> Result<usize> {
        let live = self.ledger.live_grants()?;
        for g in &live {
            self.track(g);
        }
        self.gate
            .load_ended(self.ledger.all_grants()?.iter(), self.clock.now());
        Ok(live.len())
    }

    /// Closes the given grants whose deadline has passed, logging
    /// `grant.expired` or `grant.request_expired` once for each, and
    /// activates the scheduled ones whose start has come. Grants that ended
    /// otherwise in the meantime are skipped.
    pub async fn expire_due(&self, ids: &[GrantId]) -> Result<usize> {
        let ((lags, activated), _) = self
            .ledger
            .commit(&*self.clock, |s, b, now| {
                // Seconds past each deadline, for the expiry-lag histogram.
                let mut lags = Vec::new();
                let mut activated = Vec::new();
                for id in ids {
                    if let Some(mut g) = s.grant(id)? {
                        if let Some(d) = g.deadline().filter(|d| g.state.is_live() && now >= *d) {
                            lags.push((now.millis() - d.millis()) as f64 / 1000.0);
                            if self.start_if_due(s, b, &mut g, now)? {
                                activated.push(g.clone());
                            } else {
                                b.log(g.expire(now));
                            }
                            b.put_grant(g);
                        }
                    }
                }
                Ok::<_, BrokerError>((lags, activated))
            })
            .await?;
        // Their expiry is the next deadline (already due, after a long
        // stop: the next round closes them).
        for g in &activated {
            self.track(g);
        }
        // Durable now: the entries were written this late.
        for lag in &lags {
            self.metrics.expiry_lag(*lag);
        }
        Ok(lags.len())
    }
}
