//! Group commit: commits are applied in memory under the writer lock
//! ([`Ledger::commit`]), and whoever finds its commit not yet written leads
//! the next group write of everything applied so far: one
//! [`Driver::write`](super::driver::Driver::write) and one flush (see the
//! module docs of [`super`] for the contract and the failure cases).

use std::{collections::HashMap, sync::atomic::Ordering};

use super::{
    Batch, Committed, Head, Ledger, LedgerError, Receipt, ReportRef, SignedCheckpoint, View,
    driver::{Group, StoredEntry, StoredHead},
    view::Pending,
};
use crate::{
    audit::{
        Entry, Hash, SealedEntry,
        merkle::{self, Frontier},
    },
    clock::{Clock, Timestamp},
    domain::{Draft, detail},
    policy::tenant_scopes,
};

/// Failed ticket ranges remembered (waiters check theirs once).
const FAILED_RANGES_KEPT: usize = 64;

/// Ticket ranges `(after, through]` whose group write failed, newest last,
/// and the end of the newest range forgotten since.
#[derive(Default)]
pub(super) struct FailedRanges {
    ranges: Vec<(u64, u64, String)>,
    forgotten_through: u64,
}

/// State owned by the writer lock.
pub(super) struct Writer {
    /// The head including pending commits.
    head: Head,
    /// The tree's right edge; its size is `head.next_seq`.
    frontier: Frontier,
    /// Commits applied in memory since the last group write.
    pending: Pending,
    /// What is on disk, to go back to if a group write fails.
    durable: (Head, Frontier),
    /// A group written but whose flush failed (the ledger is then
    /// poisoned): what the driver holds, and its checkpoint. It becomes
    /// durable once a flush succeeds.
    unflushed: Option<(Head, Frontier, Option<SignedCheckpoint>)>,
    /// Commits accepted since open (tickets).
    committed: u64,
    /// Commits whose fate is settled: on disk, or failed.
    flushed: u64,
    /// The newest entry of each tenant's scope seen since the last failed
    /// group (a cache: a tenant not here is looked up in the store, which
    /// with `pending` holds every entry the head covers).
    scope_heads: HashMap<String, u64>,
}

impl Writer {
    pub(super) fn new(head: Head, frontier: Frontier) -> Writer {
        Writer {
            head,
            durable: (head, frontier.clone()),
            frontier,
            pending: Pending::default(),
            unflushed: None,
            committed: 0,
            flushed: 0,
            scope_heads: HashMap::new(),
        }
    }
}

impl Ledger {
    /// Runs `decide` under the writer lock with the current time and a
    /// [`View`] that includes commits not yet on disk; applies the batch it
    /// fills in (its entries sealed into the chain and the tree) in memory,
    /// then returns once it is durable. When `decide` fails nothing
    /// changes; when the group write fails the call fails and nothing of
    /// its group is kept. A commit that appended entries gets
    /// [`Committed`]; one that appended none, `None`.
    ///
    /// The time is read under the lock and never earlier than the last
    /// entry's, so log timestamps never go backwards.
    pub async fn commit<T, E>(
        &self,
        clock: &dyn Clock,
        decide: impl FnOnce(&View<'_>, &mut Batch, Timestamp) -> Result<T, E>,
    ) -> Result<(T, Option<Committed>), E>
    where
        E: From<LedgerError>,
    {
        let mut writer = self.writer.lock().await;
        let (value, entries, last_leaf) = self.apply(&mut writer, clock, decide)?;
        let ticket = writer.committed;
        drop(writer);
        let checkpoint = self.flush_past(ticket).await?;
        let committed = match (entries.last(), last_leaf, checkpoint) {
            (Some(last), Some(leaf_hash), Some(cp)) => Some(Committed {
                receipt: Receipt {
                    seq: last.entry.seq,
                    leaf_hash,
                    checkpoint: cp.note,
                },
                entries,
            }),
            _ => None,
        };
        Ok((value, committed))
    }

    /// Appends entries with no state change (decisions, refusals, reads).
    pub async fn append(
        &self,
        clock: &dyn Clock,
        drafts: Vec<Draft>,
    ) -> Result<Committed, LedgerError> {
        let ((), committed) = self
            .commit(clock, |_, b: &mut Batch, _| {
                b.entries = drafts;
                Ok::<_, LedgerError>(())
            })
            .await?;
        committed.ok_or_else(|| LedgerError::Unavailable("nothing was appended".into()))
    }

    /// Writes and flushes everything applied so far.
    pub async fn flush(&self) -> Result<(), LedgerError> {
        let ticket = self.writer.lock().await.committed;
        self.flush_past(ticket).await.map(drop)
    }

    /// Returns once commit number `ticket` is on disk (with the newest
    /// durable checkpoint, which covers it), writing the pending group
    /// unless a group write since it has already covered it.
    async fn flush_past(&self, ticket: u64) -> Result<Option<SignedCheckpoint>, LedgerError> {
        let mut settled = self.settled_tx.subscribe();
        loop {
            if *settled.borrow_and_update() >= ticket {
                return self.outcome(ticket);
            }
            // One leader writes the next group. The others wait until their
            // commit is settled by it, or until the lock is free (their
            // commit came too late for that group: one of them leads next).
            tokio::select! {
                biased;
                // The sender lives as long as the ledger: this cannot fail.
                _ = settled.changed() => {}
                _leader = self.flush_lock.lock() => {
                    if *self.settled_tx.borrow() < ticket {
                        self.write_next_group().await;
                    }
                }
            }
        }
    }

    /// Writes and flushes everything applied so far, as one group. Called
    /// with the flush lock held: a write never runs while a flush does (the
    /// driver contract). Failures are recorded for the commits they fail.
    async fn write_next_group(&self) {
        let mut w = self.writer.lock().await;
        let (after, through) = (w.flushed, w.committed);
        if let Some(why) = self.diverged.get() {
            self.fail(&mut w, after, &LedgerError::Corrupt(why.clone()));
            return;
        }
        if self.needs_recovery.load(Ordering::Relaxed) {
            // The driver failed: it may keep that error for good (sled
            // does), so it is brought back to what is on disk first.
            if let Err(e) = self.recover_driver(&mut w).await {
                self.fail(&mut w, after, &e);
                return;
            }
        }
        if self.poisoned.load(Ordering::Relaxed) {
            // Nothing may build on the unflushed group until it is on disk:
            // retry its flush first (under the writer lock; this is rare).
            if let Err(e) = self.flush_driver().await {
                self.fail(&mut w, after, &e);
                return;
            }
            self.recovered(&mut w);
        }
        // A panic while writing (a bug) must not leave the group half
        // taken: it fails like any failed write, and the ledger goes on.
        let started = tokio::time::Instant::now();
        let written =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.write_group(&mut w)))
                .unwrap_or_else(|_| {
                    Err(LedgerError::Unavailable(
                        "internal error while writing to the store (see the server log)".into(),
                    ))
                });
        if let Err(e) = written {
            self.fail(&mut w, after, &e);
            return;
        }
        let (head, frontier) = (w.head, w.frontier.clone());
        // The flush runs without the writer lock: the next group is applied
        // in memory meanwhile (pipelining).
        drop(w);
        let flushed = self.flush_driver().await;
        let mut w = self.writer.lock().await;
        if let Err(e) = flushed {
            // The group is in the engine's memory but not on disk, and it
            // cannot be taken back: nothing more is written until a flush of
            // it succeeds (the next group retries it first). Its callers are
            // told it failed.
            self.poisoned.store(true, Ordering::Relaxed);
            tracing::error!(error = %e, "a flush failed: writes are refused until a flush succeeds");
            let checkpoint = self.pending_checkpoint.lock().take();
            // Followers read this group from the store if it is durable
            // after all (`recovered`).
            self.flushing_entries.lock().take();
            w.unflushed = Some((head, frontier, checkpoint));
            // Commits applied during the flush built on this group: they
            // fail with it (and go back to what the driver holds).
            self.fail(&mut w, after, &e);
            return;
        }
        w.durable = (head, frontier);
        w.flushed = through;
        drop(w);
        self.last_group_failed.store(false, Ordering::Relaxed);
        if let Some(observe) = self.observer.get() {
            observe(through - after, started.elapsed());
        }
        {
            let mut written = self.written.lock();
            written.0 += through - after;
            written.1 += 1;
        }
        self.publish(head);
        self.settled_tx.send_replace(through);
    }

    /// Makes `head` and the pending checkpoint what readers see.
    fn publish(&self, head: Head) {
        // Sent before the head moves, so a follower woken by the head
        // finds the group waiting.
        if let Some(group) = self.flushing_entries.lock().take() {
            let _ = self.groups_tx.send(group);
        }
        *self.published.lock() = head;
        if let Some(cp) = self.pending_checkpoint.lock().take() {
            *self.checkpoint.lock() = Some(cp);
        }
        self.head_tx
            .send_if_modified(|seq| std::mem::replace(seq, head.next_seq) != head.next_seq);
    }

    /// Flushes the driver (or fails, when a test asked for it).
    async fn flush_driver(&self) -> Result<(), LedgerError> {
        #[cfg(any(test, feature = "fault-injection"))]
        if self.faults.flushes_fail() {
            return Err(LedgerError::Unavailable("injected flush fault".into()));
        }
        #[cfg(any(test, feature = "fault-injection"))]
        while self.faults.flushes_hang() {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let flushed = self.driver.flush().await;
        if flushed.is_err() {
            self.needs_recovery.store(true, Ordering::Relaxed);
        }
        flushed
    }

    /// Reopens the driver after it failed ([`Driver::recover`], off the
    /// async threads) and checks what it then holds against what this
    /// ledger knows: the durable head (the unflushed group, if any, did not
    /// reach the disk: it is dropped, as its callers were told), or the
    /// unflushed group's head (it is there: the retried flush makes it
    /// durable). Anything else means the store lost or gained what it
    /// should not have: the ledger refuses every write from then on and
    /// says so, rather than guess which is right.
    ///
    /// [`Driver::recover`]: super::driver::Driver::recover
    async fn recover_driver(&self, w: &mut Writer) -> Result<(), LedgerError> {
        let driver = self.driver.clone();
        tokio::task::spawn_blocking(move || driver.recover())
            .await
            .map_err(|e| LedgerError::Unavailable(format!("the store's reopen failed: {e}")))??;
        let stored = self.driver.stored_head()?;
        let is = |head: &Head, frontier: &Frontier| match stored {
            None => head.next_seq == 0,
            Some(s) => {
                s.next_seq == head.next_seq
                    && s.prev_hash == head.prev_hash
                    && s.tree_size == frontier.size()
            }
        };
        let (durable, durable_frontier) = &w.durable;
        if is(durable, durable_frontier) {
            self.poisoned.store(false, Ordering::Relaxed);
            if w.unflushed.take().is_some() {
                // The commits applied since built on it: they fail too
                // (`fail` takes the head back to the durable one).
                self.needs_recovery.store(false, Ordering::Relaxed);
                tracing::warn!(
                    next_seq = durable.next_seq,
                    "the store was reopened after a storage error; the group whose flush \
                     failed did not reach the disk and is dropped"
                );
                return Err(LedgerError::Unavailable(
                    "the store was reopened after a storage error; retry".into(),
                ));
            }
        } else if !matches!(&w.unflushed, Some((head, frontier, _)) if is(head, frontier)) {
            let why = format!(
                "after reopening, the store's head ({}) is neither the durable head (next_seq {}) \
                 nor the group being flushed; writes are refused until an operator checks the \
                 data directory (daypass audit check) and restarts",
                stored.map_or_else(|| "empty".into(), |s| format!("next_seq {}", s.next_seq)),
                durable.next_seq
            );
            tracing::error!("{why}");
            let _ = self.diverged.set(why.clone());
            return Err(LedgerError::Corrupt(why));
        }
        self.needs_recovery.store(false, Ordering::Relaxed);
        tracing::warn!(
            next_seq = stored.map_or(0, |s| s.next_seq),
            "the store was reopened after a storage error and holds what is durable"
        );
        Ok(())
    }

    /// A flush of the unflushed group succeeded: it is durable now, and
    /// writes go on from it.
    fn recovered(&self, w: &mut Writer) {
        self.poisoned.store(false, Ordering::Relaxed);
        let Some((head, frontier, checkpoint)) = w.unflushed.take() else {
            return;
        };
        tracing::warn!(
            next_seq = head.next_seq,
            "a flush succeeded again: the store accepts writes (the group whose flush had failed is durable)"
        );
        w.durable = (head, frontier);
        *self.pending_checkpoint.lock() = checkpoint;
        self.publish(head);
    }

    /// How commit `ticket`, now settled, ended.
    fn outcome(&self, ticket: u64) -> Result<Option<SignedCheckpoint>, LedgerError> {
        let failed = self.failed.lock();
        match failed
            .ranges
            .iter()
            .find(|(after, through, _)| *after < ticket && ticket <= *through)
        {
            Some((_, _, why)) => Err(LedgerError::Unavailable(why.clone())),
            // Its range may have been forgotten (many failures since): say
            // it failed rather than risk saying a failed call succeeded.
            None if ticket <= failed.forgotten_through => Err(LedgerError::Unavailable(
                "the outcome of this write is unknown after repeated store failures; check before retrying".into(),
            )),
            None => Ok(self.latest_checkpoint()),
        }
    }

    /// After a failed group write: back to what the driver holds (what is
    /// on disk, or an unflushed group), and every commit after `after`
    /// fails.
    fn fail(&self, w: &mut Writer, after: u64, e: &LedgerError) {
        self.last_group_failed.store(true, Ordering::Relaxed);
        let (head, frontier) = match &w.unflushed {
            Some((head, frontier, _)) => (*head, frontier.clone()),
            None => w.durable.clone(),
        };
        w.head = head;
        w.frontier = frontier;
        w.pending = Pending::default();
        w.scope_heads.clear();
        w.flushed = w.committed;
        {
            let mut failed = self.failed.lock();
            if failed.ranges.len() == FAILED_RANGES_KEPT {
                let (_, through, _) = failed.ranges.remove(0);
                failed.forgotten_through = through;
            }
            failed.ranges.push((after, w.committed, e.to_string()));
        }
        self.settled_tx.send_replace(w.committed);
    }

    /// Writes the pending group, with a signed checkpoint of the tree at
    /// its end (published once flushed).
    fn write_group(&self, w: &mut Writer) -> Result<(), LedgerError> {
        #[cfg(any(test, feature = "fault-injection"))]
        if self.faults.writes_fail() {
            return Err(LedgerError::Unavailable("injected write fault".into()));
        }
        let pending = std::mem::take(&mut w.pending);
        #[cfg(any(test, feature = "fault-injection"))]
        if self.faults.group_writes_panic() {
            panic!("injected panic during a group write");
        }
        let has_entries = !pending.entries.is_empty();
        let checkpoint = if has_entries {
            Some(SignedCheckpoint::sign(&*self.signer, &w.frontier)?)
        } else {
            None
        };
        let written = self.driver.write(&Group {
            staff: pending.staff.values().collect(),
            tenants: pending.tenants.values().collect(),
            grants: pending.grants.values().collect(),
            latest: pending.latest.iter().collect(),
            entries: &pending.entries,
            nodes: &pending.nodes,
            scopes: &pending.scopes,
            reports: pending.reports.iter().collect(),
            alerts: pending.alerts.values().collect(),
            cursors: pending.cursors.iter().map(|(k, v)| (*k, *v)).collect(),
            screens: pending.screens.values().collect(),
            checkpoint: checkpoint.as_ref(),
            head: has_entries.then_some(StoredHead {
                next_seq: w.head.next_seq,
                prev_hash: w.head.prev_hash,
                tree_size: w.frontier.size(),
            }),
        });
        if written.is_err() {
            self.needs_recovery.store(true, Ordering::Relaxed);
        }
        written?;
        *self.pending_checkpoint.lock() = checkpoint;
        if has_entries && self.groups_tx.receiver_count() > 0 {
            *self.flushing_entries.lock() = Some(std::sync::Arc::new(pending.entries));
        }
        Ok(())
    }

    /// Applies one commit in memory: decides, seals its entries into the
    /// chain and the tree, and queues its rows for the next group write.
    #[allow(clippy::type_complexity)]
    pub(super) fn apply<T, E>(
        &self,
        w: &mut Writer,
        clock: &dyn Clock,
        decide: impl FnOnce(&View<'_>, &mut Batch, Timestamp) -> Result<T, E>,
    ) -> Result<(T, Vec<SealedEntry>, Option<Hash>), E>
    where
        E: From<LedgerError>,
    {
        let now = clock.now().max(w.head.last_timestamp);
        let mut batch = Batch::default();
        let value = decide(
            &View {
                driver: &*self.driver,
                pending: &w.pending,
            },
            &mut batch,
            now,
        )?;

        let mut next = w.head;
        // Seal every entry first: a failure (no key could be made) leaves
        // the writer as it was.
        let mut sealed = Vec::with_capacity(batch.entries.len());
        let mut scope_heads = HashMap::new();
        for d in batch.entries.drain(..) {
            let mut e = Entry {
                seq: next.next_seq,
                timestamp: now,
                actor: d.actor.to_string(),
                tenant: d.tenant,
                kind: d.kind.as_str().to_owned(),
                details: d.details,
                sealed: None,
                prev_hash: next.prev_hash,
            };
            self.link_scopes(&w.scope_heads, &mut scope_heads, &mut e)?;
            if let Some(keys) = self.driver.tenant_keys() {
                keys.seal_entry(&mut e).map_err(|why| {
                    LedgerError::Unavailable(format!(
                        "cannot seal the personal details of an entry for tenant {}: {why}",
                        e.tenant
                    ))
                })?;
            }
            let s = e.seal();
            next = Head {
                next_seq: next.next_seq + 1,
                prev_hash: s.hash,
                last_timestamp: now,
            };
            sealed.push(s);
        }
        let mut last_leaf = None;
        for s in &sealed {
            let bytes = s.entry.encode();
            let leaf = merkle::leaf_hash(&bytes);
            w.pending.nodes.extend(w.frontier.push(leaf));
            w.pending
                .scopes
                .extend(tenant_scopes(&s.entry).map(|t| (t.to_owned(), s.entry.seq)));
            w.pending.entries.push(StoredEntry {
                seq: s.entry.seq,
                hash: s.hash,
                bytes,
            });
            last_leaf = Some(leaf);
        }
        if let Some(last) = sealed.last() {
            for (key, fingerprint) in batch.reports {
                w.pending.reports.insert(
                    key,
                    ReportRef {
                        seq: last.entry.seq,
                        hash: last.hash,
                        fingerprint,
                    },
                );
            }
        }
        for r in batch.staff {
            w.pending.staff.insert(r.name.clone(), r);
        }
        for r in batch.tenants {
            w.pending.tenants.insert(r.name.clone(), r);
        }
        for a in batch.alerts {
            w.pending.alerts.insert(a.id.clone(), a);
        }
        for (name, seq) in batch.cursors {
            w.pending.cursors.insert(name, seq);
        }
        for r in batch.screens {
            w.pending.screens.insert(r.name.clone(), r);
        }
        for g in batch.grants {
            w.pending
                .latest
                .insert((g.holder.clone(), g.tenant.clone()), g.id.clone());
            w.pending.grants.insert(g.id.clone(), g);
        }
        w.scope_heads.extend(scope_heads);
        w.head = next;
        w.committed += 1;
        self.accepted.store(w.committed, Ordering::Relaxed);
        Ok((value, sealed, last_leaf))
    }
}

impl Ledger {
    /// Names in `e` the previous entry of each tenant scope it is in
    /// (detail `scope_prev`, docs/log-format.md §9): a tenant's entries
    /// form a chain of their own, so a slice that follows it back from a
    /// proven entry is provably complete. `batch` holds this commit's
    /// links so far, `cached` those of earlier commits.
    fn link_scopes(
        &self,
        cached: &HashMap<String, u64>,
        batch: &mut HashMap<String, u64>,
        e: &mut Entry,
    ) -> Result<(), LedgerError> {
        let scopes: Vec<String> = tenant_scopes(e).map(str::to_owned).collect();
        if scopes.is_empty() {
            return Ok(());
        }
        let mut links = Vec::with_capacity(scopes.len());
        for t in scopes {
            let prev = match batch.get(&t).or_else(|| cached.get(&t)) {
                Some(seq) => Some(*seq),
                None => self.driver.last_tenant_seq(&t)?,
            };
            links.push(scope_link(&t, prev));
            batch.insert(t, e.seq);
        }
        e.details
            .insert(detail::SCOPE_PREV.to_owned(), links.join(" "));
        Ok(())
    }
}

/// One link of `scope_prev`: `tenant:seq`, or `tenant:-` for the first
/// entry of the scope.
fn scope_link(tenant: &str, prev: Option<u64>) -> String {
    match prev {
        Some(seq) => format!("{tenant}:{seq}"),
        None => format!("{tenant}:-"),
    }
}
