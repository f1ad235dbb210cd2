//! The ledger: registries, grants and the log, changed only together.
//!
//! # The commit contract
//! [`Ledger::commit`] runs a decision under the writer lock with the time
//! and a [`View`] that includes commits not yet on disk; the decision fills
//! in a [`Batch`] of record changes and log entries. The ledger seals the
//! entries (sequence numbers, hash chain, Merkle tree) and applies the
//! batch in memory, then returns **only once it is durable**: an
//! acknowledged call is on disk, and a state change is never on disk
//! without its entry. Whatever appended entries gets [`Committed`], with
//! the entries' positions and a [`Receipt`] (a signed checkpoint of a tree
//! that includes them).
//!
//! Group commit ([`group`]). The commits applied while one group is written
//! form the next group, written as ONE [`driver::Driver::write`] plus one
//! flush. Later commits of a group read earlier ones through the [`View`];
//! readers outside the lock see what the driver holds: the groups written,
//! including one whose flush is still running (or failed: see below), never
//! the commits applied in memory since. A reader that must hand out
//! something only for durable state waits for [`Ledger::flush`] first. If
//! a group write fails, every commit of the group fails with
//! [`LedgerError::Unavailable`] and the in-memory head and tree go back to
//! what is stored: nothing of the group is kept. If the *flush* fails after
//! the group was written, the engine may hold the group and cannot take it
//! back: its callers are told it failed (it may yet reach the disk, so the
//! log may hold entries of calls answered UNAVAILABLE, never the reverse),
//! and the ledger refuses every further write (fail closed) until a flush
//! of that group succeeds. Each later group first retries that flush.
//!
//! A failed write or flush of the driver itself (not an injected one) also
//! marks the driver for recovery: the next group first calls
//! [`driver::Driver::recover`], which for sled reopens the database in
//! place (sled 0.34 keeps its first IO error, a full disk say, for good,
//! so without a reopen writes would never come back), and refuses while
//! the disk has no room. After a reopen the stored head must be the
//! durable head (the unflushed group, if any, did not reach the disk and
//! is dropped; the commits built on it fail) or the unflushed group's head
//! (it did; the retried flush makes it durable). Anything else, and the
//! ledger refuses every write for good and logs why: it never guesses
//! which state is right. So writes come back by themselves once the disk
//! has room, with nothing acknowledged lost (`tests/disk_full.rs`).
//!
//! One group is written at a time, under a flush lock: its write runs under
//! the writer lock, its flush without it, so the next group is applied in
//! memory while the previous one is flushed (pipelining).
//!
//! The log is also an RFC 6962 Merkle tree ([`crate::audit::merkle`]): each
//! group stores the complete subtrees its entries close and a checkpoint of
//! the new tree signed by the [`CheckpointSigner`] the ledger is handed.
//! The writer keeps the tree's frontier in memory; opening reads
//! popcount(n) nodes, never the log.
//!
//! Storage is behind [`driver::Driver`]; [`driver::sled`] is the default.

pub mod backup;
mod batch;
pub mod checkpoint;
pub mod driver;
mod group;
pub mod keys;
pub mod published;
#[cfg(test)]
mod tests;
mod view;

use std::{path::Path, sync::Arc};

use parking_lot::Mutex;
use thiserror::Error;
use tokio::sync::watch;

pub use self::{
    batch::{Batch, ReportKey, ReportRef},
    checkpoint::{CheckpointSigner, Receipt, SignedCheckpoint},
    view::View,
};
use self::{
    driver::{Driver, Group, StoredHead, sled::SledDriver},
    group::{FailedRanges, Writer},
};
use crate::{
    audit::{
        Hash, SealedEntry,
        entry::GENESIS_PREV_HASH,
        merkle::{self, Frontier, NodeId, Nodes, ProofError},
        note::NoteVerifier,
    },
    clock::Timestamp,
    domain::{Alert, AlertId, Grant, GrantId, Name, ScreenRecord, StaffRecord, TenantRecord},
    policy::tenant_scopes,
};

/// What the ledger can fail with.
#[derive(Debug, Error)]
pub enum LedgerError {
    #[error("the store cannot be written or read right now: {0}")]
    Unavailable(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl LedgerError {
    /// Another handle holds the database's file lock. Within one process
    /// this clears as soon as the previous handle is fully dropped.
    pub fn is_locked(&self) -> bool {
        matches!(self, LedgerError::Unavailable(m) if m.contains("could not acquire lock"))
    }
}

/// The position of the next entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    pub next_seq: u64,
    pub prev_hash: Hash,
    /// Timestamp of the last entry (kept in memory, read from the log at open).
    pub last_timestamp: Timestamp,
}

const GENESIS_HEAD: Head = Head {
    next_seq: 0,
    prev_hash: GENESIS_PREV_HASH,
    last_timestamp: Timestamp(0),
};

/// What one commit appended: its entries, in order, and the receipt of the
/// last one.
#[derive(Clone, Debug)]
pub struct Committed {
    pub entries: Vec<SealedEntry>,
    pub receipt: Receipt,
}

/// sled's page cache unless configured (`store.cache_mib`): sled's own
/// default (1 GiB) would dominate the server's memory.
pub const DEFAULT_CACHE_MIB: u64 = 64;

/// One durable group's entries, in seq order (shared, not copied).
pub type DurableGroup = std::sync::Arc<Vec<driver::StoredEntry>>;

/// Groups [`Ledger::follow_groups`] keeps for a slow follower.
const GROUPS_BACKLOG: usize = 1024;

pub struct Ledger {
    driver: Arc<dyn Driver>,
    signer: Arc<dyn CheckpointSigner>,
    /// The keys stored checkpoints may be signed by ([`CheckpointSigner::verifiers`]).
    verifiers: Vec<NoteVerifier>,
    /// Serializes commits (applied in memory) and group writes.
    writer: tokio::sync::Mutex<Writer>,
    /// The head on disk, for synchronous readers.
    published: Mutex<Head>,
    /// The newest durable signed checkpoint (None while the log is empty).
    checkpoint: Mutex<Option<SignedCheckpoint>>,
    /// The next sequence number that is durable, for followers of the log.
    head_tx: watch::Sender<u64>,
    /// Each durable group's entries, for followers in the same process
    /// ([`Ledger::follow_groups`]); sent only while someone listens.
    groups_tx: tokio::sync::broadcast::Sender<DurableGroup>,
    /// The entries of the group being flushed, kept for `groups_tx`.
    flushing_entries: Mutex<Option<DurableGroup>>,
    /// Commits and group writes so far (for benchmarks and tests).
    written: Mutex<(u64, u64)>,
    /// Held while a group is written and flushed.
    flush_lock: tokio::sync::Mutex<()>,
    /// The newest settled commit (on disk or failed), for waiting commits.
    settled_tx: watch::Sender<u64>,
    /// Commits accepted (applied in memory) since open: the writer's
    /// ticket count, for synchronous readers ([`Ledger::commits_waiting`]).
    accepted: std::sync::atomic::AtomicU64,
    /// Failed group writes.
    failed: Mutex<FailedRanges>,
    /// The checkpoint of the group being flushed.
    pending_checkpoint: Mutex<Option<SignedCheckpoint>>,
    /// A flush failed after its group was written: no more writes until a
    /// flush succeeds.
    poisoned: std::sync::atomic::AtomicBool,
    /// A write or flush of the driver failed: reopen it (in place) before
    /// the next group ([`driver::Driver::recover`]).
    needs_recovery: std::sync::atomic::AtomicBool,
    /// After a reopen the store held neither what the ledger knows is
    /// durable nor the unflushed group: every write is refused, for good.
    diverged: std::sync::OnceLock<String>,
    /// The newest group write or flush failed ([`Ledger::refuses_writes`]).
    last_group_failed: std::sync::atomic::AtomicBool,
    /// Told about every group flushed ([`Ledger::observe_groups`]).
    observer: std::sync::OnceLock<GroupObserver>,
    #[cfg(any(test, feature = "fault-injection"))]
    faults: Arc<crate::faults::Faults>,
}

/// Called after each group is written and flushed, with the commits in it
/// and how long the write and flush took. Keeps the ledger free of any
/// metrics library (the server hands it `crate::metrics`).
pub type GroupObserver = Box<dyn Fn(u64, std::time::Duration) + Send + Sync>;

impl Ledger {
    /// Opens the sled store in `dir` with the default page cache.
    pub fn open(dir: &Path, signer: Arc<dyn CheckpointSigner>) -> Result<Ledger, LedgerError> {
        Ledger::open_sled(dir, signer, DEFAULT_CACHE_MIB << 20)
    }

    /// Opens the sled store in `dir` with a page cache of `cache_bytes`.
    pub fn open_sled(
        dir: &Path,
        signer: Arc<dyn CheckpointSigner>,
        cache_bytes: u64,
    ) -> Result<Ledger, LedgerError> {
        Ledger::with_driver(Arc::new(SledDriver::open(dir, cache_bytes)?), signer)
    }

    /// A ledger over any driver: reads the head and the tree's frontier,
    /// and brings a tree that does not cover the whole log up to date once.
    pub fn with_driver(
        driver: Arc<dyn Driver>,
        signer: Arc<dyn CheckpointSigner>,
    ) -> Result<Ledger, LedgerError> {
        let verifiers = signer.verifiers();
        let ledger = Ledger {
            driver,
            signer,
            verifiers,
            writer: tokio::sync::Mutex::new(Writer::new(GENESIS_HEAD, Frontier::new())),
            published: Mutex::new(GENESIS_HEAD),
            checkpoint: Mutex::new(None),
            head_tx: watch::Sender::new(0),
            groups_tx: tokio::sync::broadcast::Sender::new(GROUPS_BACKLOG),
            flushing_entries: Mutex::new(None),
            written: Mutex::new((0, 0)),
            flush_lock: tokio::sync::Mutex::new(()),
            settled_tx: watch::Sender::new(0),
            accepted: std::sync::atomic::AtomicU64::new(0),
            failed: Mutex::new(FailedRanges::default()),
            pending_checkpoint: Mutex::new(None),
            poisoned: std::sync::atomic::AtomicBool::new(false),
            needs_recovery: std::sync::atomic::AtomicBool::new(false),
            diverged: std::sync::OnceLock::new(),
            last_group_failed: std::sync::atomic::AtomicBool::new(false),
            observer: std::sync::OnceLock::new(),
            #[cfg(any(test, feature = "fault-injection"))]
            faults: Arc::default(),
        };
        let stored = ledger.driver.stored_head()?;
        let head = ledger.read_head(stored)?;
        let frontier = ledger.open_tree(head, stored.map_or(0, |s| s.tree_size))?;
        *ledger.writer.try_lock().map_err(|_| {
            LedgerError::Unavailable("the ledger is in use while it opens".into())
        })? = Writer::new(head, frontier);
        *ledger.published.lock() = head;
        *ledger.checkpoint.lock() = match ledger.driver.newest_checkpoint()? {
            Some(note) => Some(SignedCheckpoint::open(&note, &ledger.verifiers)?),
            None => None,
        };
        ledger.head_tx.send_replace(head.next_seq);
        Ok(ledger)
    }

    /// This ledger's fault switches (tests only).
    #[cfg(any(test, feature = "fault-injection"))]
    pub fn faults(&self) -> &Arc<crate::faults::Faults> {
        &self.faults
    }

    /// Uses `faults` as this ledger's fault switches (tests only).
    #[cfg(any(test, feature = "fault-injection"))]
    pub fn with_faults(mut self, faults: Arc<crate::faults::Faults>) -> Ledger {
        self.faults = faults;
        self
    }

    fn read_head(&self, stored: Option<StoredHead>) -> Result<Head, LedgerError> {
        let Some(s) = stored else {
            return Ok(GENESIS_HEAD);
        };
        // One read of the newest entry, for its timestamp.
        let last_timestamp = match s.next_seq.checked_sub(1) {
            Some(last) => {
                self.driver
                    .entry(last)?
                    .ok_or_else(|| {
                        LedgerError::Corrupt(format!(
                            "the head says entry {last} exists but it is missing"
                        ))
                    })?
                    .entry
                    .timestamp
            }
            None => Timestamp(0),
        };
        Ok(Head {
            next_seq: s.next_seq,
            prev_hash: s.prev_hash,
            last_timestamp,
        })
    }

    /// Loads the tree's frontier. A log the tree does not fully cover yet
    /// (written before the tree existed) is added to it here, once.
    fn open_tree(&self, head: Head, tree_size: u64) -> Result<Frontier, LedgerError> {
        let log_size = head.next_seq;
        if tree_size > log_size {
            return Err(LedgerError::Corrupt(format!(
                "the Merkle tree covers {tree_size} entries but the log has {log_size}"
            )));
        }
        let mut frontier = Frontier::load(tree_size, self)?;
        if tree_size == log_size {
            return Ok(frontier);
        }
        tracing::info!(
            from = tree_size,
            to = log_size,
            "adding existing log entries to the Merkle tree"
        );
        let (mut nodes, mut scopes) = (Vec::new(), Vec::new());
        for item in self
            .driver
            .entries_from(tree_size)
            .take((log_size - tree_size) as usize)
        {
            let s = item?;
            nodes.extend(frontier.push(merkle::leaf_hash(&s.entry.encode())));
            scopes.extend(tenant_scopes(&s.entry).map(|t| (t.to_owned(), s.entry.seq)));
        }
        if frontier.size() != log_size {
            return Err(LedgerError::Corrupt(format!(
                "the log head says {log_size} entries but only {} are stored",
                frontier.size()
            )));
        }
        let cp = SignedCheckpoint::sign(&*self.signer, &frontier)?;
        self.driver.write(&Group {
            nodes: &nodes,
            scopes: &scopes,
            checkpoint: Some(&cp),
            head: Some(StoredHead {
                next_seq: head.next_seq,
                prev_hash: head.prev_hash,
                tree_size: log_size,
            }),
            ..Group::default()
        })?;
        self.driver.flush_blocking()?;
        Ok(frontier)
    }

    /// The head on disk: `next_seq` is the number of entries in the log.
    pub fn head(&self) -> Head {
        *self.published.lock()
    }

    /// Watches the next durable sequence number, for followers of the log:
    /// entries below it are on disk.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.head_tx.subscribe()
    }

    /// The entries of each group from now on, once durable, in order, as
    /// the ledger wrote them: a follower in this process (the monitor)
    /// judges them without reading them back from the store. A follower
    /// must still read the store for what it did not get this way: what
    /// was durable before it subscribed, a group whose flush failed and
    /// later succeeded (not sent), and anything it missed by lagging
    /// more than the backlog ([`tokio::sync::broadcast`]'s `Lagged`).
    pub fn follow_groups(&self) -> tokio::sync::broadcast::Receiver<DurableGroup> {
        self.groups_tx.subscribe()
    }

    /// Sets the observer told about every group flushed (once; a second
    /// one is ignored).
    pub fn observe_groups(&self, observer: GroupObserver) {
        let _ = self.observer.set(observer);
    }

    /// Why writes are failing now, if they are: the store diverged (for
    /// good), or the newest group write or flush failed and none has
    /// succeeded since (the next commit retries).
    pub fn refuses_writes(&self) -> Option<&'static str> {
        use std::sync::atomic::Ordering;
        if self.diverged.get().is_some() {
            Some("the store diverged from the log after a storage error")
        } else if self.poisoned.load(Ordering::Relaxed) {
            Some("a flush failed and no flush has succeeded since")
        } else if self.last_group_failed.load(Ordering::Relaxed) {
            Some("the last write to the store failed and none has succeeded since")
        } else {
            None
        }
    }

    /// Commits accepted (applied in memory) whose fate is not settled yet:
    /// neither on disk nor failed. Non-zero while the durable size does
    /// not move means the log is stalled ([`crate::monitor::health`]).
    pub fn commits_waiting(&self) -> u64 {
        use std::sync::atomic::Ordering;
        let settled = *self.settled_tx.borrow();
        self.accepted
            .load(Ordering::Relaxed)
            .saturating_sub(settled)
    }

    /// The notifier's stored value under `key` ([`crate::notify`]).
    pub async fn notifier_state(&self, key: &str) -> Result<Option<Vec<u8>>, LedgerError> {
        let (driver, key) = (self.driver.clone(), key.to_owned());
        tokio::task::spawn_blocking(move || driver.notifier_state(&key))
            .await
            .map_err(|e| LedgerError::Unavailable(format!("the state read did not finish: {e}")))?
    }

    /// Replaces the notifier's value under `key`, durably, outside the
    /// log's groups ([`driver::Driver::put_notifier_state`]). Holds the
    /// flush lock, so that it never runs while a group is written or
    /// flushed (the driver contract).
    pub async fn put_notifier_state(&self, key: &str, value: Vec<u8>) -> Result<(), LedgerError> {
        let _one_writer = self.flush_lock.lock().await;
        let (driver, key) = (self.driver.clone(), key.to_owned());
        tokio::task::spawn_blocking(move || driver.put_notifier_state(&key, &value))
            .await
            .map_err(|e| LedgerError::Unavailable(format!("the state write did not finish: {e}")))?
    }

    /// Commits written and group writes so far: their ratio is the average
    /// group size.
    pub fn group_stats(&self) -> (u64, u64) {
        *self.written.lock()
    }

    // ------------------------------------------------------------ reads ---

    pub fn staff(&self, name: &Name) -> Result<Option<StaffRecord>, LedgerError> {
        self.driver.staff(name)
    }

    pub fn all_staff(&self) -> Result<Vec<StaffRecord>, LedgerError> {
        self.driver.all_staff()
    }

    pub fn tenant(&self, name: &Name) -> Result<Option<TenantRecord>, LedgerError> {
        self.driver.tenant(name)
    }

    /// The keys tenants' personal details are sealed with, if the store
    /// seals them ([`keys`]).
    pub fn tenant_keys(&self) -> Option<Arc<keys::TenantKeys>> {
        self.driver.tenant_keys().cloned()
    }

    pub fn all_tenants(&self) -> Result<Vec<TenantRecord>, LedgerError> {
        self.driver.all_tenants()
    }

    pub fn grant(&self, id: &GrantId) -> Result<Option<Grant>, LedgerError> {
        self.driver.grant(id)
    }

    /// Every grant, oldest id first. (A full scan: fine for listing, never
    /// used on a hot path.)
    pub fn all_grants(&self) -> Result<Vec<Grant>, LedgerError> {
        self.driver.all_grants()
    }

    /// Pending and active grants.
    pub fn live_grants(&self) -> Result<Vec<Grant>, LedgerError> {
        self.driver.live_grants()
    }

    /// The newest grant `holder` asked for on `tenant`, as indexed.
    pub fn latest_grant(&self, holder: &Name, tenant: &Name) -> Result<Option<Grant>, LedgerError> {
        self.driver.latest_grant(holder, tenant)
    }

    pub fn alert(&self, id: &AlertId) -> Result<Option<Alert>, LedgerError> {
        self.driver.alert(id)
    }

    /// Every alert (a full scan of the alerts, which are few).
    pub fn all_alerts(&self) -> Result<Vec<Alert>, LedgerError> {
        self.driver.all_alerts()
    }

    pub fn screen(&self, name: &Name) -> Result<Option<ScreenRecord>, LedgerError> {
        self.driver.screen(name)
    }

    /// Every warning screen (they are few).
    pub fn all_screens(&self) -> Result<Vec<ScreenRecord>, LedgerError> {
        self.driver.all_screens()
    }

    /// A log follower's cursor as stored (the next seq it will judge).
    pub fn cursor(&self, name: &str) -> Result<Option<u64>, LedgerError> {
        self.driver.cursor(name)
    }

    /// Stored entries from `from` on, each with its stored hash. A value that
    /// cannot be decoded is returned as `Corrupt` naming its sequence number.
    pub fn entries_from(&self, from: u64) -> driver::Rows<SealedEntry> {
        self.driver.entries_from(from)
    }

    /// One stored entry.
    pub fn entry(&self, seq: u64) -> Result<Option<SealedEntry>, LedgerError> {
        self.driver.entry(seq)
    }

    /// Sequence numbers of the entries in `tenant`'s scope, from `from` on.
    pub fn tenant_seqs(&self, tenant: &str, from: u64) -> driver::Rows<u64> {
        self.driver.tenant_seqs(tenant, from)
    }

    // -------------------------------------------------- tree and proofs ---

    /// The newest durable signed checkpoint, or None for an empty log.
    pub fn latest_checkpoint(&self) -> Option<SignedCheckpoint> {
        self.checkpoint.lock().clone()
    }

    /// The checkpoint signed when the tree had exactly `size` entries, if a
    /// group ended there and it is durable.
    pub fn checkpoint_at(&self, size: u64) -> Result<Option<SignedCheckpoint>, LedgerError> {
        if size > self.durable_size() {
            return Ok(None);
        }
        match self.driver.checkpoint(size)? {
            None => Ok(None),
            Some(note) => SignedCheckpoint::open(&note, &self.verifiers).map(Some),
        }
    }

    /// A checkpoint note this ledger's key signed (read from elsewhere).
    pub fn open_checkpoint(&self, note: &str) -> Result<SignedCheckpoint, LedgerError> {
        SignedCheckpoint::open(note, &self.verifiers)
    }

    /// Entries below this are on disk; proofs are served only up to it.
    pub fn durable_size(&self) -> u64 {
        *self.head_tx.borrow()
    }

    /// The tree's root at any size up to the current one (O(log n) reads).
    pub fn root_at(&self, size: u64) -> Result<Result<Hash, ProofError>, LedgerError> {
        match self.within_log(size) {
            Err(e) => Ok(Err(e)),
            Ok(()) => Ok(Ok(Frontier::load(size, self)?.root())),
        }
    }

    /// `PATH(seq, D[size])`, for a size no larger than the log.
    pub fn inclusion_proof(
        &self,
        seq: u64,
        size: u64,
    ) -> Result<Result<Vec<Hash>, ProofError>, LedgerError> {
        match self.within_log(size) {
            Err(e) => Ok(Err(e)),
            Ok(()) => merkle::inclusion_proof(seq, size, self),
        }
    }

    /// `PROOF(old, D[new])`, for sizes no larger than the log.
    pub fn consistency_proof(
        &self,
        old: u64,
        new: u64,
    ) -> Result<Result<Vec<Hash>, ProofError>, LedgerError> {
        match self.within_log(new) {
            Err(e) => Ok(Err(e)),
            Ok(()) => merkle::consistency_proof(old, new, self),
        }
    }

    fn within_log(&self, size: u64) -> Result<(), ProofError> {
        let now = self.durable_size();
        if size > now {
            return Err(ProofError::IndexOutOfRange {
                index: size,
                size: now,
            });
        }
        Ok(())
    }
}

impl Nodes for Ledger {
    type Error = LedgerError;
    fn node(&self, id: NodeId) -> Result<Hash, LedgerError> {
        self.driver.node(id)?.ok_or_else(|| {
            LedgerError::Corrupt(format!("tree node {}/{} is missing", id.level, id.index))
        })
    }
}
