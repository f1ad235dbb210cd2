//! The monitor: follows the committed log in order and raises alerts when
//! a detection rule ([`rules`]) fires. Alerts are log entries
//! (`alert.raised`) and records, so they are as tamper-evident as the rest.
//!
//! # Exactly once, across crashes
//! The monitor keeps a cursor in the store: the next seq it will judge.
//! The cursor moves **in the same commit** as the alerts raised by the
//! entries before it, so after a crash either both are on disk or
//! neither. The rules are a deterministic fold over entries (their time is
//! the entries' timestamps), so at start the monitor rebuilds their state
//! by judging, silently, the entries of the look-back window before the
//! cursor ([`settings::AlertSettings::lookback_secs`]), then judges from
//! the cursor on. An entry judged before a crash whose alert was not
//! committed is judged again with the same state and raises the same
//! alert, once; one whose alert was committed is behind the cursor. So no
//! alert is lost and none is raised twice (`tests/monitor.rs` kills the
//! server in a burst to check it). Without alerts to raise, the cursor is
//! saved every [`SAVE_EVERY`] entries and at a stop (only to shorten the
//! next start's re-judging).
//!
//! # Reading the log
//! The entries of each durable group come to the monitor in memory
//! ([`Ledger::follow_groups`]): it decodes them from the bytes the ledger
//! wrote instead of reading them back from the store. Whatever it did not
//! get that way (what was durable before it started, a group whose flush
//! failed and later succeeded, a backlog it fell behind) it reads from
//! the store, from its `next` seq: the seq numbers decide, so nothing is
//! judged twice or skipped either way.
//!
//! A first start (no cursor) judges the log from
//! `first_start_lookback_secs` back, not from its beginning: switching the
//! monitor on for an old log does not raise its whole history.
//!
//! Beside the follower, [`health`] samples the ledger itself (the store
//! refusing writes, the log not moving while commits wait) and raises its
//! alerts without the cursor.

pub mod health;
pub mod rules;
pub mod settings;

use std::{collections::HashMap, future::Future, sync::Arc, time::Duration};

use self::{
    rules::{Directory, Rules},
    settings::AlertSettings,
};
use crate::{
    audit::{Entry, SealedEntry},
    clock::Timestamp,
    domain::{Finding, Name, StaffRecord},
    ledger::{Ledger, LedgerError},
    service::Broker,
};

/// The monitor's cursor in the store.
pub const CURSOR: &str = "monitor";

/// Entries judged without an alert before the cursor is saved anyway.
pub const SAVE_EVERY: u64 = 10_000;

/// Entries read from the store at a time.
const PAGE: usize = 1024;

/// Follows the log until `stop` resolves.
pub async fn run(broker: Arc<Broker>, settings: AlertSettings, stop: impl Future<Output = ()>) {
    tokio::pin!(stop);
    let mut follower = match Follower::start(&broker, settings).await {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(error = %e, "the monitor cannot start; no alerts will be raised");
            return;
        }
    };
    let mut durable = broker.ledger().subscribe();
    loop {
        match follower.step(&broker).await {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, "the monitor could not write its alerts; retrying");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    () = &mut stop => break,
                }
            }
        }
        tokio::select! {
            changed = durable.changed() => if changed.is_err() { break },
            () = &mut stop => break,
        }
    }
    if let Err(e) = follower.save(&broker).await {
        tracing::warn!(error = %e, "the monitor could not save its cursor at the stop");
    }
}

/// The monitor's place in the log and the rules' state there.
pub struct Follower {
    rules: Rules,
    /// Durable groups as the ledger wrote them.
    groups: tokio::sync::broadcast::Receiver<crate::ledger::DurableGroup>,
    /// The next seq to judge.
    next: u64,
    /// Findings judged but not yet committed (a failed commit keeps them).
    pending: Vec<Finding>,
    /// Entries judged since the cursor was last written.
    unsaved: u64,
}

/// The staff registry, read through a cache that a `staff.*` entry clears
/// (roles never change; offboarding is such an entry).
struct Registry<'a> {
    ledger: &'a Ledger,
    cache: std::cell::RefCell<HashMap<Name, Option<StaffRecord>>>,
}

impl<'a> Registry<'a> {
    fn new(ledger: &'a Ledger) -> Self {
        Registry {
            ledger,
            cache: Default::default(),
        }
    }

    /// Call before judging `e`.
    fn before(&self, e: &Entry) {
        if e.kind.starts_with("staff.") {
            self.cache.borrow_mut().clear();
        }
    }
}

impl Directory for Registry<'_> {
    fn staff(&self, name: &Name) -> Option<StaffRecord> {
        if let Some(hit) = self.cache.borrow().get(name) {
            return hit.clone();
        }
        let rec = self.ledger.staff(name).ok().flatten();
        self.cache.borrow_mut().insert(name.clone(), rec.clone());
        rec
    }
}

impl Follower {
    /// Reads the cursor and rebuilds the rules' state from the entries of
    /// the look-back window before it.
    pub async fn start(
        broker: &Arc<Broker>,
        settings: AlertSettings,
    ) -> Result<Follower, LedgerError> {
        let ledger = broker.ledger().clone();
        // Before the cursor is read: every group durable after it comes
        // this way (or is read from the store).
        let groups = ledger.follow_groups();
        let lookback = settings.lookback_secs();
        let first_lookback = settings.first_start_lookback_secs;
        let mut rules = Rules::new(settings);
        let next = tokio::task::spawn_blocking(move || -> Result<(Rules, u64), LedgerError> {
            let head = ledger.durable_size();
            let next = match ledger.cursor(CURSOR)? {
                Some(c) => c.min(head),
                None => match head.checked_sub(1) {
                    None => 0,
                    Some(last) => {
                        let t = entry_at(&ledger, last)?.timestamp;
                        seq_at(&ledger, head, Timestamp(t.0 - first_lookback * 1000))?
                    }
                },
            };
            if let Some(before) = next.checked_sub(1) {
                let t = entry_at(&ledger, before)?.timestamp;
                let from = seq_at(&ledger, next, Timestamp(t.0 - lookback * 1000))?;
                let dir = Registry::new(&ledger);
                for s in ledger.entries_from(from).take((next - from) as usize) {
                    let e = s?.entry;
                    dir.before(&e);
                    let _ = rules.observe(&e, &dir);
                }
                tracing::info!(cursor = next, rejudged = next - from, "monitor resumed");
            }
            Ok((rules, next))
        })
        .await
        .map_err(|e| LedgerError::Unavailable(format!("the monitor's start failed: {e}")))??;
        Ok(Follower {
            groups,
            rules: next.0,
            next: next.1,
            pending: Vec::new(),
            unsaved: 0,
        })
    }

    /// Judges the next page of durable entries and commits what they
    /// raised. `Ok(true)` if there may be more to judge right away.
    pub async fn step(&mut self, broker: &Arc<Broker>) -> Result<bool, LedgerError> {
        if !self.pending.is_empty() {
            return self.commit(broker).await.map(|()| true);
        }
        let ledger = broker.ledger();
        let head = ledger.durable_size();
        if self.next >= head {
            return Ok(false);
        }
        let page = match self.in_memory()? {
            Some(page) => page,
            None => self.in_store(ledger, head)?,
        };
        let dir = Registry::new(ledger);
        for s in &page {
            dir.before(&s.entry);
            let found = self.rules.observe(&s.entry, &dir);
            self.pending.extend(found);
            self.next = s.entry.seq + 1;
            self.unsaved += 1;
        }
        if !self.pending.is_empty() || self.unsaved >= SAVE_EVERY {
            self.commit(broker).await?;
        }
        Ok(true)
    }

    /// The entries from `next` on of the groups waiting in memory, as far
    /// as they run on without a gap; `None` when the next entry is not
    /// among them (read the store).
    fn in_memory(&mut self) -> Result<Option<Vec<SealedEntry>>, LedgerError> {
        use tokio::sync::broadcast::error::TryRecvError;
        let mut page = Vec::new();
        let mut next = self.next;
        loop {
            match self.groups.try_recv() {
                Ok(group) => {
                    let (Some(first), Some(last)) = (group.first(), group.last()) else {
                        continue;
                    };
                    if last.seq < next {
                        continue; // judged already
                    }
                    if first.seq > next {
                        break; // a gap: the store has it
                    }
                    for s in &group[(next - first.seq) as usize..] {
                        let entry = Entry::decode(&s.bytes)
                            .map_err(|e| LedgerError::Corrupt(format!("entry {}: {e}", s.seq)))?;
                        page.push(SealedEntry {
                            entry,
                            hash: s.hash,
                        });
                    }
                    next = last.seq + 1;
                    if page.len() >= PAGE {
                        break;
                    }
                }
                Err(TryRecvError::Lagged(_)) => continue,
                Err(TryRecvError::Empty | TryRecvError::Closed) => break,
            }
        }
        Ok((!page.is_empty()).then_some(page))
    }

    fn in_store(&self, ledger: &Ledger, head: u64) -> Result<Vec<SealedEntry>, LedgerError> {
        let page: Vec<SealedEntry> = ledger
            .entries_from(self.next)
            .take(PAGE.min((head - self.next) as usize))
            .collect::<Result<_, _>>()?;
        Ok(page)
    }

    /// Commits the pending findings as alerts, with the cursor.
    async fn commit(&mut self, broker: &Arc<Broker>) -> Result<(), LedgerError> {
        let n = self.pending.len();
        broker.raise_alerts(&self.pending, self.next).await?;
        self.pending.clear();
        if n > 0 {
            tracing::info!(alerts = n, cursor = self.next, "monitor raised alerts");
        }
        self.unsaved = 0;
        Ok(())
    }

    /// Writes the cursor (at a stop).
    pub async fn save(&mut self, broker: &Arc<Broker>) -> Result<(), LedgerError> {
        if self.unsaved == 0 && self.pending.is_empty() {
            return Ok(());
        }
        self.commit(broker).await
    }
}

fn entry_at(ledger: &Ledger, seq: u64) -> Result<Entry, LedgerError> {
    ledger
        .entry(seq)?
        .map(|s| s.entry)
        .ok_or_else(|| LedgerError::Corrupt(format!("entry {seq} is missing")))
}

/// The first seq below `end` whose timestamp is at or after `t` (entries'
/// timestamps never go backwards): a binary search, O(log n) reads.
fn seq_at(ledger: &Ledger, end: u64, t: Timestamp) -> Result<u64, LedgerError> {
    let (mut lo, mut hi) = (0u64, end);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if entry_at(ledger, mid)?.timestamp < t {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    Ok(lo)
}
