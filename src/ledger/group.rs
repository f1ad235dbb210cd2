//! Group commit: commits are applied in memory under the writer lock
//! ([`Ledger::commit`]), and whoever finds its commit not yet written leads
//! the next group write of everything applied so far: one
//! [`Driver::write`](super::driver::Driver::write) and one flush (see the
//! module docs of [`super`] for the contract and the failure cases).

use std::sync::atomic::Ordering;

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
    domain::Draft,
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
            w.unflushed = Some((head, frontier, checkpoint));
            // Commits applied during the flush built on this group: they
            // fail with it (and go back to what the driver holds).
            self.fail(&mut w, after, &e);
            return;
        }
        w.durable = (head, frontier);
        w.flushed = through;
        drop(w);
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
        let (head, frontier) = match &w.unflushed {
            Some((head, frontier, _)) => (*head, frontier.clone()),
            None => w.durable.clone(),
        };
        w.head = head;
        w.frontier = frontier;
        w.pending = Pending::default();
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
        let mut sealed = Vec::with_capacity(batch.entries.len());
        let mut last_leaf = None;
        for d in batch.entries.drain(..) {
            let s = Entry {
                seq: next.next_seq,
                timestamp: now,
                actor: d.actor.to_string(),
                tenant: d.tenant,
                kind: d.kind.as_str().to_owned(),
                details: d.details,
                prev_hash: next.prev_hash,
            }
            .seal();
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
            next = Head {
                next_seq: next.next_seq + 1,
                prev_hash: s.hash,
                last_timestamp: now,
            };
            sealed.push(s);
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
        for g in batch.grants {
            w.pending
                .latest
                .insert((g.holder.clone(), g.tenant.clone()), g.id.clone());
            w.pending.grants.insert(g.id.clone(), g);
        }
        w.head = next;
        w.committed += 1;
        Ok((value, sealed, last_leaf))
    }
}

#[cfg(test)]
mod tests {
    use std::{path::Path, sync::Arc};

    use super::*;
    use crate::{
        audit::note::{Checkpoint, LogKey},
        clock::{ManualClock, SystemClock},
        domain::{Actor, EventKind, Name, Role, StaffRecord, detail},
    };

    fn ledger(dir: &Path) -> Ledger {
        Ledger::open(dir, Arc::new(LogKey::generate("t.test/log").unwrap())).unwrap()
    }

    fn staff(name: &str) -> StaffRecord {
        StaffRecord {
            name: Name::parse(name).unwrap(),
            role: Role::Support,
            enrolled_at: Timestamp(1),
            offboarded_at: None,
        }
    }

    fn probe() -> Draft {
        Draft::new(Actor::System, "", EventKind::AuditRead)
    }

    /// Two commits in one group: the second sees the first's record before
    /// anything is on disk; one driver write and one flush write both.
    #[tokio::test]
    async fn a_group_reads_its_own_pending_commits_and_is_written_once() {
        let dir = tempfile::tempdir().unwrap();
        let key = Arc::new(LogKey::generate("t.test/log").unwrap());
        let s = Ledger::open(dir.path(), key.clone()).unwrap();
        let clock = ManualClock::new(Timestamp(1_000));
        let alice = Name::parse("alice").unwrap();
        {
            let mut w = s.writer.lock().await;
            s.apply(&mut w, &clock, |_, b, _| {
                b.put_staff(staff("alice"));
                b.log(
                    Draft::new(Actor::System, "", EventKind::StaffEnrolled)
                        .with(detail::NAME, "alice"),
                );
                Ok::<_, LedgerError>(())
            })
            .unwrap();
            let (seen, _, _) = s
                .apply(&mut w, &clock, |v, b, _| {
                    b.log(probe());
                    Ok::<_, LedgerError>((v.staff(&alice)?, v.all_staff()?.len()))
                })
                .unwrap();
            assert_eq!(seen.0.map(|r| r.name), Some(alice.clone()));
            assert_eq!(seen.1, 1);
            // Nothing written yet, and readers outside the lock see nothing.
            assert!(s.staff(&alice).unwrap().is_none());
            assert_eq!(s.head().next_seq, 0);
        }
        s.flush().await.unwrap();
        assert_eq!(s.group_stats(), (2, 1));
        assert!(s.staff(&alice).unwrap().is_some());
        assert_eq!(s.head().next_seq, 2);
        let cp = s.latest_checkpoint().unwrap();
        assert_eq!(cp.size, 2);
        let entries: Vec<_> = s.entries_from(0).collect::<Result<_, _>>().unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].entry.prev_hash, entries[0].hash);
        assert_eq!(entries[1].entry.kind, "audit.read");
        // Reopened: the same head, tree and checkpoint (its signature
        // checked on the way in).
        drop(s);
        let s = Ledger::open(dir.path(), key).unwrap();
        assert_eq!(s.head().next_seq, 2);
        assert_eq!(s.latest_checkpoint().unwrap().root, cp.root);
        assert_eq!(s.checkpoint_at(2).unwrap().unwrap().note, cp.note);
    }

    /// A stored checkpoint that does not verify with the ledger's key is
    /// refused at open, not served.
    #[tokio::test]
    async fn a_checkpoint_signed_by_another_key_is_refused_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let s = ledger(dir.path());
        s.append(&SystemClock, vec![probe()]).await.unwrap();
        drop(s);
        let err = Ledger::open(
            dir.path(),
            Arc::new(LogKey::generate("t.test/log").unwrap()),
        )
        .err()
        .expect("another key's checkpoint is refused");
        assert!(matches!(err, LedgerError::Corrupt(_)), "{err}");
    }

    /// A failing flush fails its callers and every later write until a
    /// flush succeeds; then the group that failed is durable after all and
    /// the log goes on from it.
    #[tokio::test]
    async fn a_failed_flush_fails_closed_until_a_flush_succeeds() {
        let dir = tempfile::tempdir().unwrap();
        let s = ledger(dir.path());
        s.append(&SystemClock, vec![probe()]).await.unwrap();
        s.faults().fail_flushes(true);
        assert!(s.append(&SystemClock, vec![probe()]).await.is_err());
        assert!(s.append(&SystemClock, vec![probe()]).await.is_err());
        assert_eq!(s.durable_size(), 1);
        s.faults().fail_flushes(false);
        let c = s.append(&SystemClock, vec![probe()]).await.unwrap();
        // The first failed group reached the disk with the retried flush;
        // the second was refused before it was written.
        assert_eq!(c.receipt.seq, 2);
        assert_eq!(s.durable_size(), 3);
        let cp = Checkpoint::parse(c.receipt.checkpoint.split("\n\n").next().unwrap()).unwrap();
        assert_eq!(cp.size, 3);
    }

    /// A driver that, like sled, keeps a failure until it is recovered, and
    /// can be told to report a head it does not hold.
    struct Sticky {
        inner: crate::ledger::driver::sled::SledDriver,
        fail_next_flush: std::sync::atomic::AtomicBool,
        broken: std::sync::atomic::AtomicBool,
        recovered: std::sync::atomic::AtomicU32,
        false_head: parking_lot::Mutex<Option<StoredHead>>,
    }

    impl Sticky {
        fn broken(&self) -> Result<(), LedgerError> {
            if self.broken.load(Ordering::Relaxed) {
                return Err(LedgerError::Unavailable("sticky".into()));
            }
            Ok(())
        }
    }

    use crate::{
        audit::merkle::NodeId,
        domain::{Grant, GrantId, TenantRecord},
        ledger::{
            batch::{ReportKey, ReportRef},
            driver::{Driver, FlushFuture, Rows},
        },
    };

    impl Driver for Sticky {
        fn stored_head(&self) -> Result<Option<StoredHead>, LedgerError> {
            match *self.false_head.lock() {
                Some(h) => Ok(Some(h)),
                None => self.inner.stored_head(),
            }
        }
        fn write(&self, g: &Group<'_>) -> Result<(), LedgerError> {
            self.broken()?;
            self.inner.write(g)
        }
        fn flush(&self) -> FlushFuture<'_> {
            Box::pin(async move {
                if self.fail_next_flush.swap(false, Ordering::Relaxed) {
                    self.broken.store(true, Ordering::Relaxed);
                }
                self.broken()?;
                self.inner.flush().await
            })
        }
        fn flush_blocking(&self) -> Result<(), LedgerError> {
            self.broken()?;
            self.inner.flush_blocking()
        }
        fn recover(&self) -> Result<(), LedgerError> {
            self.inner.recover()?;
            self.broken.store(false, Ordering::Relaxed);
            self.recovered.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
        fn staff(&self, n: &Name) -> Result<Option<StaffRecord>, LedgerError> {
            self.inner.staff(n)
        }
        fn all_staff(&self) -> Result<Vec<StaffRecord>, LedgerError> {
            self.inner.all_staff()
        }
        fn tenant(&self, n: &Name) -> Result<Option<TenantRecord>, LedgerError> {
            self.inner.tenant(n)
        }
        fn all_tenants(&self) -> Result<Vec<TenantRecord>, LedgerError> {
            self.inner.all_tenants()
        }
        fn grant(&self, id: &GrantId) -> Result<Option<Grant>, LedgerError> {
            self.inner.grant(id)
        }
        fn all_grants(&self) -> Result<Vec<Grant>, LedgerError> {
            self.inner.all_grants()
        }
        fn live_grants(&self) -> Result<Vec<Grant>, LedgerError> {
            self.inner.live_grants()
        }
        fn latest_grant(&self, h: &Name, t: &Name) -> Result<Option<Grant>, LedgerError> {
            self.inner.latest_grant(h, t)
        }
        fn report(&self, k: &ReportKey) -> Result<Option<ReportRef>, LedgerError> {
            self.inner.report(k)
        }
        fn entry(&self, seq: u64) -> Result<Option<SealedEntry>, LedgerError> {
            self.inner.entry(seq)
        }
        fn entries_from(&self, from: u64) -> Rows<SealedEntry> {
            self.inner.entries_from(from)
        }
        fn node(&self, id: NodeId) -> Result<Option<Hash>, LedgerError> {
            self.inner.node(id)
        }
        fn checkpoint(&self, size: u64) -> Result<Option<String>, LedgerError> {
            self.inner.checkpoint(size)
        }
        fn newest_checkpoint(&self) -> Result<Option<String>, LedgerError> {
            self.inner.newest_checkpoint()
        }
        fn tenant_seqs(&self, t: &str, from: u64) -> Rows<u64> {
            self.inner.tenant_seqs(t, from)
        }
    }

    fn sticky_ledger(dir: &Path) -> (Ledger, Arc<Sticky>) {
        let d = Arc::new(Sticky {
            inner: crate::ledger::driver::sled::SledDriver::open(dir, 8 << 20).unwrap(),
            fail_next_flush: Default::default(),
            broken: Default::default(),
            recovered: Default::default(),
            false_head: Default::default(),
        });
        let key = Arc::new(LogKey::generate("t.test/log").unwrap());
        (Ledger::with_driver(d.clone(), key).unwrap(), d)
    }

    /// A driver error that sticks (as sled's does) is cleared by a reopen
    /// before the next group; the group whose flush failed is found on
    /// disk and kept, and the log goes on from it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_sticky_driver_error_is_recovered_by_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (s, d) = sticky_ledger(dir.path());
        s.append(&SystemClock, vec![probe()]).await.unwrap();
        d.fail_next_flush.store(true, Ordering::Relaxed);
        assert!(s.append(&SystemClock, vec![probe()]).await.is_err());
        let c = s.append(&SystemClock, vec![probe()]).await.unwrap();
        assert_eq!(d.recovered.load(Ordering::Relaxed), 1);
        assert_eq!(c.receipt.seq, 2, "the unflushed group reached the disk");
        assert_eq!(s.durable_size(), 3);
        let report = crate::audit::check::check_chain(&s).unwrap();
        assert_eq!(report.problem, None);
        // Injected faults (above the driver) do not reopen it.
        s.faults().fail_writes(true);
        assert!(s.append(&SystemClock, vec![probe()]).await.is_err());
        s.faults().fail_writes(false);
        s.append(&SystemClock, vec![probe()]).await.unwrap();
        assert_eq!(d.recovered.load(Ordering::Relaxed), 1);
    }

    /// After a reopen that finds a head the ledger never wrote, every write
    /// is refused for good: no guessing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reopen_that_finds_another_head_fails_closed() {
        let dir = tempfile::tempdir().unwrap();
        let (s, d) = sticky_ledger(dir.path());
        s.append(&SystemClock, vec![probe()]).await.unwrap();
        s.append(&SystemClock, vec![probe()]).await.unwrap();
        *d.false_head.lock() = Some(StoredHead {
            next_seq: 1,
            prev_hash: [7; 32],
            tree_size: 1,
        });
        d.fail_next_flush.store(true, Ordering::Relaxed);
        assert!(s.append(&SystemClock, vec![probe()]).await.is_err());
        // Callers are told it failed (UNAVAILABLE), with the reason.
        let err = s.append(&SystemClock, vec![probe()]).await.unwrap_err();
        assert!(err.to_string().contains("neither"), "{err}");
        *d.false_head.lock() = None;
        let err = s.append(&SystemClock, vec![probe()]).await.unwrap_err();
        assert!(
            err.to_string().contains("neither"),
            "refused for good: {err}"
        );
        assert_eq!(
            d.recovered.load(Ordering::Relaxed),
            1,
            "and not reopened again"
        );
        assert_eq!(s.durable_size(), 2);
    }

    /// Concurrent commits share group writes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_commits_share_group_writes() {
        let dir = tempfile::tempdir().unwrap();
        let s = Arc::new(ledger(dir.path()));
        let mut tasks = Vec::new();
        for i in 0..64 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                for j in 0..20 {
                    let c = s
                        .append(&SystemClock, vec![probe().with("n", i * 100 + j)])
                        .await
                        .unwrap();
                    let r = c.receipt;
                    assert!(
                        r.seq
                            < Checkpoint::parse(r.checkpoint.split("\n\n").next().unwrap())
                                .unwrap()
                                .size
                    );
                }
            }));
        }
        // A lost wake-up would hang here: fail instead.
        tokio::time::timeout(std::time::Duration::from_secs(60), async {
            for t in tasks {
                t.await.unwrap();
            }
        })
        .await
        .expect("every commit settles");
        let (commits, groups) = s.group_stats();
        assert_eq!(commits, 1280);
        assert!(
            groups < commits / 4,
            "{groups} groups for {commits} commits"
        );
        assert_eq!(s.head().next_seq, 1280);
    }
}
