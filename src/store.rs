//! Persistence in sled: the registries (staff, tenants), grants with their
//! indexes, and the log, all in one database.
//!
//! Writes are serialized by one writer lock. Under it a caller reads what it
//! needs (through a [`View`]), decides, and hands back a [`Batch`] of record
//! changes and log entries; the batch is sealed (sequence numbers, hash
//! chain, Merkle tree) and applied *in memory*. [`Store::commit`] then
//! returns only once its commit is on disk: an acknowledged call is
//! durable, and a state change is never on disk without its entry.
//!
//! Group commit. The commits applied while one group is being written form
//! the next group, which is written as ONE sled transaction (every record,
//! entry, tree node and the group's signed checkpoint) followed by one
//! flush. This matters twice: the flush is shared, and sled 0.34 pays for
//! each atomic write (transaction or batch) with its own disk write at flush
//! time (about 2 ms each here), so a transaction per call would bound the
//! service at a few hundred writes per second whatever the concurrency.
//! Later commits of a group read earlier ones through the [`View`], which
//! layers the group's pending records over sled; readers outside the lock
//! see what sled holds: the groups written, including one whose flush is
//! still running (or failed: see below), never the commits applied in
//! memory since. A reader that must hand out something only for durable
//! state waits for [`Store::flush`] first. If a group write fails, every commit of the
//! group fails with [`StoreError::Unavailable`] and the in-memory head and
//! tree go back to what is on disk: nothing of the group is kept. If the
//! *flush* fails after the group's transaction succeeded, sled keeps the
//! group in memory and cannot take it back: its callers are told it failed
//! (it may yet reach the disk, so the log may hold entries of calls
//! answered UNAVAILABLE, never the reverse), and the store refuses every
//! further write (fail closed) until a flush of that group succeeds. Each
//! later group first retries that flush, so the store recovers by itself
//! once the disk works again; a restart reads only what is on disk.
//!
//! One group is written at a time, under a flush lock: its transaction runs
//! under the writer lock, its flush without it, so the next group is
//! applied in memory while the previous one is flushed (pipelining). The
//! flush lock also keeps sled 0.34 from deadlocking: its flush holds the
//! concurrency-control read guard while it waits for IO, and a transaction
//! waiting for the write guard then blocks the readers that IO needs. So no
//! transaction ever runs while one of our flushes does, and sled's own
//! background flusher is off.
//!
//! The log is also an RFC 6962 Merkle tree ([`crate::audit::merkle`]): each
//! group stores the complete subtrees its entries close and a checkpoint of
//! the new tree signed with the log key, so every acknowledged call has a
//! [`Receipt`]. The writer keeps the tree's frontier in memory; opening
//! reads popcount(n) nodes, never the log.
//!
//! Trees: `meta` (head, tree size), `log` (seq → hash ‖ entry bytes),
//! `staff`, `tenants`, `grants` (id → record), `live` (ids of pending/active
//! grants), `latest` (holder \0 tenant → newest grant id), `merkle` (`n` ‖
//! level ‖ index → node hash; `c` ‖ size → signed checkpoint), `scope`
//! (tenant \0 seq → entries a tenant may read, see
//! [`crate::policy::tenant_scopes`]), `reports` (tenant \0 report id →
//! seq ‖ hash of its `access.recorded` entry ‖ fingerprint of the report:
//! a retried report is logged once, a reused id is refused).

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    path::Path,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use sled::{
    Transactional,
    transaction::{ConflictableTransactionError, TransactionError},
};
use thiserror::Error;
use tokio::sync::watch;

use crate::{
    audit::{
        Entry, Hash, SealedEntry,
        entry::{GENESIS_PREV_HASH, hash_bytes},
        merkle::{self, Frontier, NodeId, Nodes, ProofError},
        note::{Checkpoint, LogKey},
    },
    clock::{Clock, Timestamp},
    grant::{Grant, GrantId},
    identity::Name,
    policy::{Role, tenant_scopes},
};

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("the store cannot be written or read right now: {0}")]
    Unavailable(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Another handle holds the database's file lock. Within one process
    /// this clears as soon as the previous handle is fully dropped.
    pub fn is_locked(&self) -> bool {
        matches!(self, StoreError::Unavailable(m) if m.contains("could not acquire lock"))
    }
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

/// A staff member in the registry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffRecord {
    pub name: Name,
    pub role: Role,
    pub enrolled_at: Timestamp,
    pub offboarded_at: Option<Timestamp>,
}

impl StaffRecord {
    pub fn is_active(&self) -> bool {
        self.offboarded_at.is_none()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Approval {
    Auto,
    Approval,
}

impl Approval {
    pub fn as_str(self) -> &'static str {
        match self {
            Approval::Auto => "auto",
            Approval::Approval => "approval",
        }
    }
}

/// A tenant in the registry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantRecord {
    pub name: Name,
    pub approval: Approval,
    pub require_ticket: bool,
    pub created_at: Timestamp,
}

/// A log entry before it has a sequence number and a place in the chain.
#[derive(Clone, Debug)]
pub struct Draft {
    pub actor: String,
    pub tenant: String,
    pub kind: &'static str,
    pub details: BTreeMap<String, String>,
}

impl Draft {
    pub fn new(actor: impl Into<String>, tenant: impl Into<String>, kind: &'static str) -> Self {
        Draft {
            actor: actor.into(),
            tenant: tenant.into(),
            kind,
            details: BTreeMap::new(),
        }
    }

    pub fn with(mut self, key: &str, value: impl ToString) -> Self {
        self.details.insert(key.to_owned(), value.to_string());
        self
    }
}

/// Changes to apply atomically, with the entries that record them.
#[derive(Default)]
pub struct Batch {
    staff: Vec<StaffRecord>,
    tenants: Vec<TenantRecord>,
    grants: Vec<Grant>,
    entries: Vec<Draft>,
    reports: Vec<(Vec<u8>, Hash)>,
}

impl Batch {
    pub fn put_staff(&mut self, r: StaffRecord) {
        self.staff.push(r);
    }

    pub fn put_tenant(&mut self, r: TenantRecord) {
        self.tenants.push(r);
    }

    /// Stores a grant and keeps the `live` and `latest` indexes in step.
    pub fn put_grant(&mut self, g: Grant) {
        self.grants.push(g);
    }

    pub fn log(&mut self, d: Draft) {
        self.entries.push(d);
    }

    /// Indexes a tenant's access report id to this batch's last entry and
    /// a fingerprint of what was reported, so the same report is never
    /// logged twice and an id is never reused for another ([`View::report`]).
    pub fn put_report(&mut self, tenant: &Name, report_id: &str, fingerprint: Hash) {
        self.reports
            .push((report_key(tenant, report_id), fingerprint));
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

/// What a caller gets for a write: the last entry its call appended and a
/// signed checkpoint of a tree that includes it, so it can later demand an
/// inclusion proof and hold the log to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    pub seq: u64,
    /// `SHA-256(0x00 ‖ entry bytes)`, the entry's leaf in the tree.
    pub leaf_hash: Hash,
    /// The signed note of the tree as of the end of this transaction.
    pub checkpoint: Arc<str>,
}

/// A signed checkpoint with its parsed body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedCheckpoint {
    pub size: u64,
    pub root: Hash,
    pub note: Arc<str>,
}

/// What one transaction appended.
#[derive(Clone, Debug, Default)]
pub struct Committed {
    pub entries: Vec<SealedEntry>,
    pub receipt: Option<Receipt>,
}

pub struct Store {
    db: sled::Db,
    meta: sled::Tree,
    log: sled::Tree,
    staff: sled::Tree,
    tenants: sled::Tree,
    grants: sled::Tree,
    live: sled::Tree,
    latest: sled::Tree,
    merkle: sled::Tree,
    scope: sled::Tree,
    reports: sled::Tree,
    key: Arc<LogKey>,
    /// Serializes commits (applied in memory) and group transactions (see
    /// the module docs).
    writer: tokio::sync::Mutex<Writer>,
    /// The head on disk, for synchronous readers.
    published: Mutex<Head>,
    /// The newest durable signed checkpoint (None while the log is empty).
    checkpoint: Mutex<Option<SignedCheckpoint>>,
    /// The next sequence number that is durable, for followers of the log.
    head_tx: watch::Sender<u64>,
    /// Commits and group writes so far (for benchmarks and tests).
    written: (AtomicU64, AtomicU64),
    /// Held while a group is written and flushed.
    flush_lock: tokio::sync::Mutex<()>,
    /// The newest settled commit (on disk or failed), for waiting commits.
    settled_tx: watch::Sender<u64>,
    /// Failed group writes (see [`FailedRanges`]).
    failed: Mutex<FailedRanges>,
    /// The checkpoint of the group being flushed.
    pending_checkpoint: Mutex<Option<SignedCheckpoint>>,
    /// A flush failed after its transaction: no more writes until a flush
    /// succeeds (see [`Writer::unflushed`]).
    poisoned: AtomicBool,
}

/// Ticket ranges `(after, through]` whose group write failed, newest last,
/// and the end of the newest range forgotten since (kept: [`FAILED_RANGES_KEPT`]).
#[derive(Default)]
struct FailedRanges {
    ranges: Vec<(u64, u64, String)>,
    forgotten_through: u64,
}

/// State owned by the writer lock.
struct Writer {
    /// The head including pending commits.
    head: Head,
    /// The tree's right edge; its size is `head.next_seq`.
    frontier: Frontier,
    /// Commits applied in memory since the last group write.
    pending: Pending,
    /// What is on disk, to go back to if a group write fails.
    durable: (Head, Frontier),
    /// A group whose transaction is in sled's memory but whose flush
    /// failed (the store is then poisoned): what sled holds, and its
    /// checkpoint. It becomes durable once a flush succeeds.
    unflushed: Option<(Head, Frontier, Option<SignedCheckpoint>)>,
    /// Commits accepted since open (tickets).
    committed: u64,
    /// Commits whose fate is settled: on disk, or failed.
    flushed: u64,
}

/// Commits applied in memory, not yet written: the rows to write in the
/// next group transaction, and the records they change (for reads by later
/// commits in the same group). Later commits override earlier ones.
#[derive(Default)]
struct Pending {
    staff: HashMap<String, StaffRecord>,
    tenants: HashMap<String, TenantRecord>,
    grants: HashMap<String, Grant>,
    latest: HashMap<Vec<u8>, String>,
    log_rows: Vec<([u8; 8], Vec<u8>)>,
    tree_rows: Vec<(Vec<u8>, Vec<u8>)>,
    scope_rows: Vec<Vec<u8>>,
    /// Access report ids → sequence number ‖ hash of their entry ‖ the
    /// report's fingerprint.
    reports: HashMap<Vec<u8>, [u8; 72]>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.staff.is_empty()
            && self.tenants.is_empty()
            && self.grants.is_empty()
            && self.log_rows.is_empty()
            && self.reports.is_empty()
    }
}

/// sled's page cache unless configured (`store.cache_mib`): sled's own
/// default (1 GiB) would dominate the server's memory.
pub const DEFAULT_CACHE_MIB: u64 = 64;

/// Fault injection for tests: while set, every group write in this process
/// fails before its transaction, as a full or failing disk would.
static WRITE_FAULTS: AtomicBool = AtomicBool::new(false);
/// Fault injection for tests: while set, every flush fails after its
/// group's transaction succeeded.
static FLUSH_FAULTS: AtomicBool = AtomicBool::new(false);

/// Makes every store in this process fail its writes (`true`) or work
/// again (`false`). For fault-injection tests only; each such test needs a
/// test binary of its own, since this is process-wide.
#[doc(hidden)]
pub fn inject_write_faults(on: bool) {
    WRITE_FAULTS.store(on, Ordering::Relaxed);
}

/// Makes every flush in this process fail after its transaction (`true`).
/// For fault-injection tests only (see [`inject_write_faults`]).
#[doc(hidden)]
pub fn inject_flush_faults(on: bool) {
    FLUSH_FAULTS.store(on, Ordering::Relaxed);
}

/// Fault injection for tests: while set, every group write panics after
/// taking the group's rows, before its transaction (a bug, simulated).
static GROUP_PANICS: AtomicBool = AtomicBool::new(false);

/// Makes every group write in this process panic (`true`). For
/// fault-injection tests only (see [`inject_write_faults`]).
#[doc(hidden)]
pub fn inject_group_write_panics(on: bool) {
    GROUP_PANICS.store(on, Ordering::Relaxed);
}

/// Failed ticket ranges remembered (waiters check theirs once).
const FAILED_RANGES_KEPT: usize = 64;

const HEAD_KEY: &[u8] = b"head";
/// The number of entries the Merkle tree covers (8 bytes, big-endian).
const TREE_KEY: &[u8] = b"tree";

const GENESIS_HEAD: Head = Head {
    next_seq: 0,
    prev_hash: GENESIS_PREV_HASH,
    last_timestamp: Timestamp(0),
};

impl Store {
    /// Opens (or creates) the database with the default page cache; `key`
    /// signs checkpoints.
    pub fn open(dir: &Path, key: Arc<LogKey>) -> Result<Store, StoreError> {
        Store::open_with_cache(dir, key, DEFAULT_CACHE_MIB << 20)
    }

    /// Opens (or creates) the database with a page cache of `cache_bytes`.
    pub fn open_with_cache(
        dir: &Path,
        key: Arc<LogKey>,
        cache_bytes: u64,
    ) -> Result<Store, StoreError> {
        // We flush explicitly after every group (group commit below).
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            .flush_every_ms(None)
            .open()?;
        let tree = |name: &str| db.open_tree(name);
        let mut store = Store {
            meta: tree("meta")?,
            log: tree("log")?,
            staff: tree("staff")?,
            tenants: tree("tenants")?,
            grants: tree("grants")?,
            live: tree("live")?,
            latest: tree("latest")?,
            merkle: tree("merkle")?,
            scope: tree("scope")?,
            reports: tree("reports")?,
            key,
            db,
            writer: tokio::sync::Mutex::new(Writer {
                head: GENESIS_HEAD,
                frontier: Frontier::new(),
                pending: Pending::default(),
                durable: (GENESIS_HEAD, Frontier::new()),
                unflushed: None,
                committed: 0,
                flushed: 0,
            }),
            published: Mutex::new(GENESIS_HEAD),
            checkpoint: Mutex::new(None),
            head_tx: watch::Sender::new(0),
            written: (AtomicU64::new(0), AtomicU64::new(0)),
            flush_lock: tokio::sync::Mutex::new(()),
            settled_tx: watch::Sender::new(0),
            failed: Mutex::new(FailedRanges::default()),
            pending_checkpoint: Mutex::new(None),
            poisoned: AtomicBool::new(false),
        };
        let head = store.read_head()?;
        let frontier = store.open_tree(head.next_seq)?;
        let writer = store.writer.get_mut();
        writer.head = head;
        writer.durable = (head, frontier.clone());
        writer.frontier = frontier;
        *store.published_head() = head;
        *store.latest_checkpoint_slot() = store.read_latest_checkpoint()?;
        store.head_tx.send_replace(head.next_seq);
        Ok(store)
    }

    /// Loads the tree's frontier. A log the tree does not fully cover yet
    /// (written before the tree existed) is added to it here, once.
    fn open_tree(&self, log_size: u64) -> Result<Frontier, StoreError> {
        let tree_size = match self.meta.get(TREE_KEY)? {
            None => 0,
            Some(v) => v
                .as_ref()
                .try_into()
                .map(u64::from_be_bytes)
                .map_err(|_| StoreError::Corrupt("the tree size record is malformed".into()))?,
        };
        if tree_size > log_size {
            return Err(StoreError::Corrupt(format!(
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
        let mut batch = sled::Batch::default();
        let mut scope = sled::Batch::default();
        for item in self
            .entries_from(tree_size)
            .take((log_size - tree_size) as usize)
        {
            let s = item?;
            for (id, h) in frontier.push(merkle::leaf_hash(&s.entry.encode())) {
                batch.insert(&node_key(id)[..], &h[..]);
            }
            for t in tenant_scopes(&s.entry) {
                scope.insert(scope_key(t, s.entry.seq), &[]);
            }
        }
        if frontier.size() != log_size {
            return Err(StoreError::Corrupt(format!(
                "the log head says {log_size} entries but only {} are stored",
                frontier.size()
            )));
        }
        let cp = self.sign_checkpoint(&frontier)?;
        batch.insert(&checkpoint_key(log_size)[..], cp.note.as_bytes());
        self.merkle.apply_batch(batch)?;
        self.scope.apply_batch(scope)?;
        self.meta.insert(TREE_KEY, &log_size.to_be_bytes())?;
        self.db.flush()?;
        Ok(frontier)
    }

    fn sign_checkpoint(&self, frontier: &Frontier) -> Result<SignedCheckpoint, StoreError> {
        let cp = Checkpoint {
            origin: self.key.name().to_owned(),
            size: frontier.size(),
            root: frontier.root(),
        };
        let note = self
            .key
            .sign(&cp.to_text())
            .map_err(|e| StoreError::Unavailable(format!("cannot sign a checkpoint: {e}")))?;
        Ok(SignedCheckpoint {
            size: cp.size,
            root: cp.root,
            note: Arc::from(note),
        })
    }

    fn read_latest_checkpoint(&self) -> Result<Option<SignedCheckpoint>, StoreError> {
        match self.merkle.scan_prefix(b"c").next_back() {
            None => Ok(None),
            Some(kv) => {
                let (_, v) = kv?;
                parse_stored_checkpoint(&v).map(Some)
            }
        }
    }

    fn latest_checkpoint_slot(&self) -> std::sync::MutexGuard<'_, Option<SignedCheckpoint>> {
        self.checkpoint.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn read_head(&self) -> Result<Head, StoreError> {
        match self.meta.get(HEAD_KEY)? {
            None => Ok(GENESIS_HEAD),
            Some(v) if v.len() == 40 => {
                let mut seq = [0u8; 8];
                seq.copy_from_slice(&v[..8]);
                let mut prev_hash = [0u8; 32];
                prev_hash.copy_from_slice(&v[8..]);
                let next_seq = u64::from_be_bytes(seq);
                // One read of the newest entry, for its timestamp.
                let last_timestamp = match next_seq.checked_sub(1) {
                    Some(last) => match self.log.get(last.to_be_bytes())? {
                        Some(v) => decode_stored(&v)
                            .map(|e| e.entry.timestamp)
                            .map_err(|why| StoreError::Corrupt(format!("entry {last}: {why}")))?,
                        None => {
                            return Err(StoreError::Corrupt(format!(
                                "the head says entry {last} exists but it is missing"
                            )));
                        }
                    },
                    None => Timestamp(0),
                };
                Ok(Head {
                    next_seq,
                    prev_hash,
                    last_timestamp,
                })
            }
            Some(_) => Err(StoreError::Corrupt(
                "the log head record is malformed".into(),
            )),
        }
    }

    fn published_head(&self) -> std::sync::MutexGuard<'_, Head> {
        // Only ever assigned whole, so a poisoned lock still holds a valid head.
        self.published.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The head on disk: `next_seq` is the number of entries in the log.
    pub fn head(&self) -> Head {
        *self.published_head()
    }

    /// Watches the next durable sequence number, for followers of the log:
    /// entries below it are on disk.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.head_tx.subscribe()
    }

    /// Runs `decide` under the writer lock with the current time and a
    /// [`View`] of the store that includes commits not yet on disk; applies
    /// the batch it fills in (with its log entries, sealed into the chain
    /// and the tree) in memory, then returns once it is on disk. When
    /// `decide` fails nothing changes; when the group write fails the call
    /// fails and nothing of its group is kept.
    ///
    /// The time is read under the lock and never earlier than the last
    /// entry's, so log timestamps never go backwards.
    pub async fn commit<T, E>(
        &self,
        clock: &dyn Clock,
        decide: impl FnOnce(&View<'_>, &mut Batch, Timestamp) -> Result<T, E>,
    ) -> Result<(T, Committed), E>
    where
        E: From<StoreError>,
    {
        let mut writer = self.writer.lock().await;
        let (value, entries, last_leaf) = self.apply(&mut writer, clock, decide)?;
        let ticket = writer.committed;
        drop(writer);
        let checkpoint = self.flush_past(ticket).await?;
        let receipt = match (entries.last(), last_leaf, checkpoint) {
            (Some(last), Some(leaf_hash), Some(cp)) => Some(Receipt {
                seq: last.entry.seq,
                leaf_hash,
                checkpoint: cp.note,
            }),
            _ => None,
        };
        Ok((value, Committed { entries, receipt }))
    }

    /// Appends entries with no state change (decisions, refusals, reads).
    pub async fn append(
        &self,
        clock: &dyn Clock,
        drafts: Vec<Draft>,
    ) -> Result<Committed, StoreError> {
        let ((), committed) = self
            .commit(clock, |_, b: &mut Batch, _| {
                b.entries = drafts;
                Ok::<_, StoreError>(())
            })
            .await?;
        Ok(committed)
    }

    /// Commits written and group writes (transaction + flush) so far:
    /// their ratio is the average group size.
    pub fn group_stats(&self) -> (u64, u64) {
        (
            self.written.0.load(Ordering::Relaxed),
            self.written.1.load(Ordering::Relaxed),
        )
    }

    /// Writes and flushes everything applied so far.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let ticket = self.writer.lock().await.committed;
        self.flush_past(ticket).await.map(drop)
    }

    /// Returns once commit number `ticket` is on disk (with the newest
    /// durable checkpoint, which covers it), writing the pending group
    /// unless a group write since it has already covered it.
    ///
    /// Group commit: every commit applied while the previous group was
    /// being written joins the next group, which is written as ONE sled
    /// transaction and one flush. (sled 0.34 pays for each atomic write at
    /// flush time, so one transaction per call would cost a disk write per
    /// call however the flushes are shared.)
    async fn flush_past(&self, ticket: u64) -> Result<Option<SignedCheckpoint>, StoreError> {
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
                // The sender lives as long as the store: this cannot fail.
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
    /// with the flush lock held: a sled transaction must never run while a
    /// flush does (see the module docs). Failures are recorded for the
    /// commits they fail.
    async fn write_next_group(&self) {
        let mut w = self.writer.lock().await;
        let (after, through) = (w.flushed, w.committed);
        if self.poisoned.load(Ordering::Relaxed) {
            // Nothing may build on the unflushed group until it is on disk:
            // retry its flush first (under the writer lock; this is rare).
            if let Err(e) = self.flush_db().await {
                self.fail(&mut w, after, &e);
                return;
            }
            self.recovered(&mut w);
        }
        // A panic while writing (a bug) must not leave the group half
        // taken: it fails like any failed write, and the store goes on.
        let written =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.write_group(&mut w)))
                .unwrap_or_else(|_| {
                    Err(StoreError::Unavailable(
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
        let flushed = self.flush_db().await;
        let mut w = self.writer.lock().await;
        if let Err(e) = flushed {
            // The group's transaction is in sled's memory but not on disk,
            // and sled cannot take it back: nothing more is written until a
            // flush of it succeeds (the next group retries it first). Its
            // callers are told it failed.
            self.poisoned.store(true, Ordering::Relaxed);
            tracing::error!(error = %e, "a flush failed: writes are refused until a flush succeeds");
            let checkpoint = lock(&self.pending_checkpoint).take();
            w.unflushed = Some((head, frontier, checkpoint));
            // Commits applied during the flush built on this group: they
            // fail with it (and go back to what sled holds).
            self.fail(&mut w, after, &e);
            return;
        }
        w.durable = (head, frontier);
        w.flushed = through;
        drop(w);
        self.written.0.fetch_add(through - after, Ordering::Relaxed);
        self.written.1.fetch_add(1, Ordering::Relaxed);
        *self.published_head() = head;
        let checkpoint = lock(&self.pending_checkpoint).take();
        if checkpoint.is_some() {
            *self.latest_checkpoint_slot() = checkpoint;
        }
        self.head_tx
            .send_if_modified(|seq| std::mem::replace(seq, head.next_seq) != head.next_seq);
        self.settled_tx.send_replace(through);
    }

    /// Flushes sled (or fails, with the test hook on).
    async fn flush_db(&self) -> Result<(), StoreError> {
        if FLUSH_FAULTS.load(Ordering::Relaxed) {
            return Err(StoreError::Unavailable("injected flush fault".into()));
        }
        self.db
            .flush_async()
            .await
            .map(drop)
            .map_err(StoreError::from)
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
        *self.published_head() = head;
        if checkpoint.is_some() {
            *self.latest_checkpoint_slot() = checkpoint;
        }
        self.head_tx
            .send_if_modified(|seq| std::mem::replace(seq, head.next_seq) != head.next_seq);
    }

    /// How commit `ticket`, now settled, ended.
    fn outcome(&self, ticket: u64) -> Result<Option<SignedCheckpoint>, StoreError> {
        let failed = lock(&self.failed);
        match failed
            .ranges
            .iter()
            .find(|(after, through, _)| *after < ticket && ticket <= *through)
        {
            Some((_, _, why)) => Err(StoreError::Unavailable(why.clone())),
            // Its range may have been forgotten (many failures since): say
            // it failed rather than risk saying a failed call succeeded.
            None if ticket <= failed.forgotten_through => Err(StoreError::Unavailable(
                "the outcome of this write is unknown after repeated store failures; check before retrying".into(),
            )),
            None => Ok(self.latest_checkpoint()),
        }
    }

    /// After a failed group write: back to what sled holds (what is on
    /// disk, or an unflushed group), and every commit after `after` fails.
    fn fail(&self, w: &mut Writer, after: u64, e: &StoreError) {
        let (head, frontier) = match &w.unflushed {
            Some((head, frontier, _)) => (*head, frontier.clone()),
            None => w.durable.clone(),
        };
        w.head = head;
        w.frontier = frontier;
        w.pending = Pending::default();
        w.flushed = w.committed;
        {
            let mut failed = lock(&self.failed);
            if failed.ranges.len() == FAILED_RANGES_KEPT {
                let (_, through, _) = failed.ranges.remove(0);
                failed.forgotten_through = through;
            }
            failed.ranges.push((after, w.committed, e.to_string()));
        }
        self.settled_tx.send_replace(w.committed);
    }

    /// Writes the pending group in one transaction, with a signed checkpoint
    /// of the tree at its end (published once flushed).
    fn write_group(&self, w: &mut Writer) -> Result<(), StoreError> {
        if WRITE_FAULTS.load(Ordering::Relaxed) {
            return Err(StoreError::Unavailable("injected write fault".into()));
        }
        let pending = std::mem::take(&mut w.pending);
        if GROUP_PANICS.load(Ordering::Relaxed) {
            panic!("injected panic during a group write");
        }
        let has_entries = !pending.log_rows.is_empty();
        let checkpoint = if has_entries {
            Some(self.sign_checkpoint(&w.frontier)?)
        } else {
            None
        };
        if !pending.is_empty() {
            let staff: Vec<_> = pending
                .staff
                .values()
                .map(|r| (r.name.as_str(), encode(r)))
                .collect();
            let tenants: Vec<_> = pending
                .tenants
                .values()
                .map(|r| (r.name.as_str(), encode(r)))
                .collect();
            let grants: Vec<_> = pending.grants.values().map(|g| (g, encode(g))).collect();
            let mut head_bytes = [0u8; 40];
            head_bytes[..8].copy_from_slice(&w.head.next_seq.to_be_bytes());
            head_bytes[8..].copy_from_slice(&w.head.prev_hash);
            let tree_size = w.frontier.size().to_be_bytes();
            let result: Result<(), TransactionError<()>> = (
                &self.meta,
                &self.log,
                &self.staff,
                &self.tenants,
                &self.grants,
                &self.live,
                &self.latest,
                &self.merkle,
                &self.scope,
                &self.reports,
            )
                .transaction(
                    |(
                        meta,
                        log,
                        staff_t,
                        tenants_t,
                        grants_t,
                        live,
                        latest,
                        tree,
                        scope,
                        reports,
                    )| {
                        for (k, v) in &staff {
                            staff_t.insert(k.as_bytes(), v.as_slice())?;
                        }
                        for (k, v) in &tenants {
                            tenants_t.insert(k.as_bytes(), v.as_slice())?;
                        }
                        for (g, v) in &grants {
                            let id = g.id.as_str().as_bytes();
                            grants_t.insert(id, v.as_slice())?;
                            if g.state.is_live() {
                                live.insert(id, &[])?;
                            } else {
                                live.remove(id)?;
                            }
                        }
                        for (k, id) in &pending.latest {
                            latest.insert(k.as_slice(), id.as_bytes())?;
                        }
                        for (k, v) in &pending.log_rows {
                            log.insert(&k[..], v.as_slice())?;
                        }
                        for (k, v) in &pending.tree_rows {
                            tree.insert(k.as_slice(), v.as_slice())?;
                        }
                        if let Some(cp) = &checkpoint {
                            tree.insert(&checkpoint_key(cp.size)[..], cp.note.as_bytes())?;
                        }
                        for k in &pending.scope_rows {
                            scope.insert(k.as_slice(), &[])?;
                        }
                        for (k, v) in &pending.reports {
                            reports.insert(k.as_slice(), v.as_slice())?;
                        }
                        if has_entries {
                            meta.insert(HEAD_KEY, &head_bytes[..])?;
                            meta.insert(TREE_KEY, &tree_size[..])?;
                        }
                        Ok::<(), ConflictableTransactionError<()>>(())
                    },
                );
            match result {
                Ok(()) => {}
                Err(TransactionError::Storage(e)) => return Err(e.into()),
                Err(TransactionError::Abort(())) => {
                    return Err(StoreError::Unavailable("transaction aborted".into()));
                }
            }
        }
        *self
            .pending_checkpoint
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = checkpoint;
        Ok(())
    }

    /// Applies one commit in memory: decides, seals its entries into the
    /// chain and the tree, and queues its rows for the next group write.
    #[allow(clippy::type_complexity)]
    fn apply<T, E>(
        &self,
        w: &mut Writer,
        clock: &dyn Clock,
        decide: impl FnOnce(&View<'_>, &mut Batch, Timestamp) -> Result<T, E>,
    ) -> Result<(T, Vec<SealedEntry>, Option<Hash>), E>
    where
        E: From<StoreError>,
    {
        let now = clock.now().max(w.head.last_timestamp);
        let mut batch = Batch::default();
        let value = decide(
            &View {
                store: self,
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
                actor: d.actor,
                tenant: d.tenant,
                kind: d.kind.to_owned(),
                details: d.details,
                prev_hash: next.prev_hash,
            }
            .seal();
            let bytes = s.entry.encode();
            let leaf = merkle::leaf_hash(&bytes);
            for (id, h) in w.frontier.push(leaf) {
                w.pending
                    .tree_rows
                    .push((node_key(id).to_vec(), h.to_vec()));
            }
            for t in tenant_scopes(&s.entry) {
                w.pending.scope_rows.push(scope_key(t, s.entry.seq));
            }
            let mut v = Vec::with_capacity(32 + bytes.len());
            v.extend_from_slice(&s.hash);
            v.extend_from_slice(&bytes);
            w.pending.log_rows.push((s.entry.seq.to_be_bytes(), v));
            last_leaf = Some(leaf);
            next = Head {
                next_seq: next.next_seq + 1,
                prev_hash: s.hash,
                last_timestamp: now,
            };
            sealed.push(s);
        }
        if let Some(last) = sealed.last() {
            for (k, fingerprint) in batch.reports {
                let mut v = [0u8; 72];
                v[..8].copy_from_slice(&last.entry.seq.to_be_bytes());
                v[8..40].copy_from_slice(&last.hash);
                v[40..].copy_from_slice(&fingerprint);
                w.pending.reports.insert(k, v);
            }
        }
        for r in batch.staff {
            w.pending.staff.insert(r.name.as_str().to_owned(), r);
        }
        for r in batch.tenants {
            w.pending.tenants.insert(r.name.as_str().to_owned(), r);
        }
        for g in batch.grants {
            w.pending
                .latest
                .insert(latest_key(&g.holder, &g.tenant), g.id.as_str().to_owned());
            w.pending.grants.insert(g.id.as_str().to_owned(), g);
        }
        w.head = next;
        w.committed += 1;
        Ok((value, sealed, last_leaf))
    }

    // ------------------------------------------------------------ reads ---

    pub fn staff(&self, name: &Name) -> Result<Option<StaffRecord>, StoreError> {
        get_json(&self.staff, name.as_str().as_bytes())
    }

    pub fn all_staff(&self) -> Result<Vec<StaffRecord>, StoreError> {
        scan_json(&self.staff)
    }

    pub fn tenant(&self, name: &Name) -> Result<Option<TenantRecord>, StoreError> {
        get_json(&self.tenants, name.as_str().as_bytes())
    }

    pub fn all_tenants(&self) -> Result<Vec<TenantRecord>, StoreError> {
        scan_json(&self.tenants)
    }

    pub fn grant(&self, id: &GrantId) -> Result<Option<Grant>, StoreError> {
        get_json(&self.grants, id.as_str().as_bytes())
    }

    /// Every grant, oldest id first. (A full scan: fine for listing, never
    /// used on a hot path.)
    pub fn all_grants(&self) -> Result<Vec<Grant>, StoreError> {
        scan_json(&self.grants)
    }

    /// Pending and active grants.
    pub fn live_grants(&self) -> Result<Vec<Grant>, StoreError> {
        let mut out = Vec::new();
        for kv in self.live.iter() {
            let (k, _) = kv?;
            if let Some(g) = get_json::<Grant>(&self.grants, &k)? {
                out.push(g);
            }
        }
        Ok(out)
    }

    /// The newest grant `holder` asked for on `tenant`, whatever its state.
    pub fn latest_grant(&self, holder: &Name, tenant: &Name) -> Result<Option<Grant>, StoreError> {
        match self.latest.get(latest_key(holder, tenant))? {
            Some(id) => get_json(&self.grants, &id),
            None => Ok(None),
        }
    }

    /// Stored entries from `from` on, each with its stored hash. A value that
    /// cannot be decoded is returned as `Corrupt` naming its sequence number.
    pub fn entries_from(
        &self,
        from: u64,
    ) -> impl Iterator<Item = Result<SealedEntry, StoreError>> + Send + 'static {
        self.log.range(from.to_be_bytes()..).map(|kv| {
            let (k, v) = kv?;
            let seq = k
                .as_ref()
                .try_into()
                .map(u64::from_be_bytes)
                .map_err(|_| StoreError::Corrupt("a log key is not 8 bytes".into()))?;
            decode_stored(&v).map_err(|why| StoreError::Corrupt(format!("entry {seq}: {why}")))
        })
    }

    /// Raw access for tests that tamper with the files on purpose.
    pub fn raw_log(&self) -> &sled::Tree {
        &self.log
    }

    // -------------------------------------------------- tree and proofs ---

    /// The newest durable signed checkpoint, or None for an empty log.
    pub fn latest_checkpoint(&self) -> Option<SignedCheckpoint> {
        self.latest_checkpoint_slot().clone()
    }

    /// The checkpoint signed when the tree had exactly `size` entries, if a
    /// transaction ended there and it is durable.
    pub fn checkpoint_at(&self, size: u64) -> Result<Option<SignedCheckpoint>, StoreError> {
        if size > self.durable_size() {
            return Ok(None);
        }
        match self.merkle.get(checkpoint_key(size))? {
            None => Ok(None),
            Some(v) => parse_stored_checkpoint(&v).map(Some),
        }
    }

    /// Entries below this are on disk; proofs are served only up to it.
    pub fn durable_size(&self) -> u64 {
        *self.head_tx.borrow()
    }

    /// One stored entry.
    pub fn entry(&self, seq: u64) -> Result<Option<SealedEntry>, StoreError> {
        match self.log.get(seq.to_be_bytes())? {
            None => Ok(None),
            Some(v) => decode_stored(&v)
                .map(Some)
                .map_err(|why| StoreError::Corrupt(format!("entry {seq}: {why}"))),
        }
    }

    /// The tree's root at any size up to the current one (O(log n) reads).
    pub fn root_at(&self, size: u64) -> Result<Result<Hash, ProofError>, StoreError> {
        let now = self.durable_size();
        if size > now {
            return Ok(Err(ProofError::IndexOutOfRange {
                index: size,
                size: now,
            }));
        }
        Ok(Ok(Frontier::load(size, self)?.root()))
    }

    /// `PATH(seq, D[size])`, for a size no larger than the log.
    pub fn inclusion_proof(
        &self,
        seq: u64,
        size: u64,
    ) -> Result<Result<Vec<Hash>, ProofError>, StoreError> {
        let now = self.durable_size();
        if size > now {
            return Ok(Err(ProofError::IndexOutOfRange {
                index: size,
                size: now,
            }));
        }
        merkle::inclusion_proof(seq, size, self)
    }

    /// `PROOF(old, D[new])`, for sizes no larger than the log.
    pub fn consistency_proof(
        &self,
        old: u64,
        new: u64,
    ) -> Result<Result<Vec<Hash>, ProofError>, StoreError> {
        let now = self.durable_size();
        if new > now {
            return Ok(Err(ProofError::IndexOutOfRange {
                index: new,
                size: now,
            }));
        }
        merkle::consistency_proof(old, new, self)
    }

    /// Sequence numbers of the entries in `tenant`'s scope, from `from` on.
    pub fn tenant_seqs(
        &self,
        tenant: &str,
        from: u64,
    ) -> impl Iterator<Item = Result<u64, StoreError>> + Send + 'static {
        let prefix_len = tenant.len() + 1;
        self.scope
            .range(scope_key(tenant, from)..scope_key_end(tenant))
            .map(move |kv| {
                let (k, _) = kv?;
                k.get(prefix_len..)
                    .and_then(|b| b.try_into().ok())
                    .map(u64::from_be_bytes)
                    .ok_or_else(|| StoreError::Corrupt("a scope key is malformed".into()))
            })
    }

    fn node(&self, id: NodeId) -> Result<Hash, StoreError> {
        match self.merkle.get(node_key(id))? {
            Some(v) if v.len() == 32 => {
                let mut h = [0u8; 32];
                h.copy_from_slice(&v);
                Ok(h)
            }
            Some(_) => Err(StoreError::Corrupt(format!(
                "tree node {}/{} is malformed",
                id.level, id.index
            ))),
            None => Err(StoreError::Corrupt(format!(
                "tree node {}/{} is missing",
                id.level, id.index
            ))),
        }
    }
}

/// The store as a commit sees it under the writer lock: what is on disk
/// plus the commits applied in memory since the last group write.
pub struct View<'a> {
    store: &'a Store,
    pending: &'a Pending,
}

impl View<'_> {
    pub fn staff(&self, name: &Name) -> Result<Option<StaffRecord>, StoreError> {
        match self.pending.staff.get(name.as_str()) {
            Some(r) => Ok(Some(r.clone())),
            None => self.store.staff(name),
        }
    }

    pub fn all_staff(&self) -> Result<Vec<StaffRecord>, StoreError> {
        let mut all = self.store.all_staff()?;
        for r in &mut all {
            if let Some(p) = self.pending.staff.get(r.name.as_str()) {
                *r = p.clone();
            }
        }
        let stored: HashSet<String> = all.iter().map(|r| r.name.as_str().to_owned()).collect();
        all.extend(
            self.pending
                .staff
                .values()
                .filter(|r| !stored.contains(r.name.as_str()))
                .cloned(),
        );
        Ok(all)
    }

    pub fn tenant(&self, name: &Name) -> Result<Option<TenantRecord>, StoreError> {
        match self.pending.tenants.get(name.as_str()) {
            Some(r) => Ok(Some(r.clone())),
            None => self.store.tenant(name),
        }
    }

    pub fn grant(&self, id: &GrantId) -> Result<Option<Grant>, StoreError> {
        match self.pending.grants.get(id.as_str()) {
            Some(g) => Ok(Some(g.clone())),
            None => self.store.grant(id),
        }
    }

    /// The newest grant `holder` asked for on `tenant`, whatever its state.
    pub fn latest_grant(&self, holder: &Name, tenant: &Name) -> Result<Option<Grant>, StoreError> {
        match self.pending.latest.get(&latest_key(holder, tenant)) {
            Some(id) => match self.pending.grants.get(id) {
                Some(g) => Ok(Some(g.clone())),
                None => get_json(&self.store.grants, id.as_bytes()),
            },
            None => self.store.latest_grant(holder, tenant),
        }
    }

    /// The entry (sequence number, hash) that recorded a tenant's access
    /// report with this id, and the report's fingerprint, if any.
    pub fn report(
        &self,
        tenant: &Name,
        report_id: &str,
    ) -> Result<Option<(u64, Hash, Hash)>, StoreError> {
        let key = report_key(tenant, report_id);
        let stored = match self.pending.reports.get(&key) {
            Some(v) => Some(v.to_vec()),
            None => self.store.reports.get(&key)?.map(|v| v.to_vec()),
        };
        match stored {
            None => Ok(None),
            Some(v) if v.len() == 72 => {
                let mut seq = [0u8; 8];
                seq.copy_from_slice(&v[..8]);
                let mut hash = [0u8; 32];
                hash.copy_from_slice(&v[8..40]);
                let mut fingerprint = [0u8; 32];
                fingerprint.copy_from_slice(&v[40..]);
                Ok(Some((u64::from_be_bytes(seq), hash, fingerprint)))
            }
            Some(_) => Err(StoreError::Corrupt(
                "a report index value is malformed".into(),
            )),
        }
    }

    /// Pending and active grants.
    pub fn live_grants(&self) -> Result<Vec<Grant>, StoreError> {
        let mut out = Vec::new();
        let mut stored = HashSet::new();
        for g in self.store.live_grants()? {
            stored.insert(g.id.as_str().to_owned());
            match self.pending.grants.get(g.id.as_str()) {
                Some(p) if p.state.is_live() => out.push(p.clone()),
                Some(_) => {}
                None => out.push(g),
            }
        }
        out.extend(
            self.pending
                .grants
                .values()
                .filter(|g| g.state.is_live() && !stored.contains(g.id.as_str()))
                .cloned(),
        );
        Ok(out)
    }
}

impl Nodes for Store {
    type Error = StoreError;
    fn node(&self, id: NodeId) -> Result<Hash, StoreError> {
        Store::node(self, id)
    }
}

/// Locks a std mutex whose data is only ever assigned whole, so a poisoned
/// lock still holds valid data.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn parse_stored_checkpoint(v: &[u8]) -> Result<SignedCheckpoint, StoreError> {
    let corrupt = |why: &str| StoreError::Corrupt(format!("a stored checkpoint {why}"));
    let note = std::str::from_utf8(v).map_err(|_| corrupt("is not UTF-8"))?;
    let text = note
        .split_once("\n\n")
        .map(|(t, _)| t)
        .ok_or_else(|| corrupt("has no signature"))?;
    let cp = Checkpoint::parse(text).map_err(|e| corrupt(&e.to_string()))?;
    Ok(SignedCheckpoint {
        size: cp.size,
        root: cp.root,
        note: Arc::from(note),
    })
}

fn node_key(id: NodeId) -> [u8; 10] {
    let mut k = [0u8; 10];
    k[0] = b'n';
    k[1..].copy_from_slice(&id.key());
    k
}

fn checkpoint_key(size: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = b'c';
    k[1..].copy_from_slice(&size.to_be_bytes());
    k
}

/// `tenant \0 report id`: the access report index.
fn report_key(tenant: &Name, report_id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(tenant.as_str().len() + 1 + report_id.len());
    k.extend_from_slice(tenant.as_str().as_bytes());
    k.push(0);
    k.extend_from_slice(report_id.as_bytes());
    k
}

fn scope_key(tenant: &str, seq: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(tenant.len() + 9);
    k.extend_from_slice(tenant.as_bytes());
    k.push(0);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

fn scope_key_end(tenant: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(tenant.len() + 1);
    k.extend_from_slice(tenant.as_bytes());
    k.push(1);
    k
}

fn decode_stored(v: &[u8]) -> Result<SealedEntry, String> {
    if v.len() < 32 {
        return Err("stored value shorter than its hash".into());
    }
    let mut hash = [0u8; 32];
    hash.copy_from_slice(&v[..32]);
    let entry = Entry::decode(&v[32..]).map_err(|e| e.to_string())?;
    Ok(SealedEntry { entry, hash })
}

/// Recomputes a stored value's hash (for tests and tools).
pub fn stored_hash_matches(v: &[u8]) -> bool {
    v.len() > 32 && hash_bytes(&v[32..]) == v[..32]
}

fn latest_key(holder: &Name, tenant: &Name) -> Vec<u8> {
    let mut k = Vec::with_capacity(holder.as_str().len() + 1 + tenant.as_str().len());
    k.extend_from_slice(holder.as_str().as_bytes());
    k.push(0);
    k.extend_from_slice(tenant.as_str().as_bytes());
    k
}

fn get_json<T: DeserializeOwned>(tree: &sled::Tree, key: &[u8]) -> Result<Option<T>, StoreError> {
    match tree.get(key)? {
        None => Ok(None),
        Some(v) => serde_json::from_slice(&v).map(Some).map_err(|e| {
            StoreError::Corrupt(format!("record {:?}: {e}", String::from_utf8_lossy(key)))
        }),
    }
}

fn scan_json<T: DeserializeOwned>(tree: &sled::Tree) -> Result<Vec<T>, StoreError> {
    tree.iter()
        .map(|kv| {
            let (k, v) = kv?;
            serde_json::from_slice(&v).map_err(|e| {
                StoreError::Corrupt(format!("record {:?}: {e}", String::from_utf8_lossy(&k)))
            })
        })
        .collect()
}

/// Records are plain data with string keys; serializing them cannot fail.
fn encode<T: Serialize>(record: &T) -> Vec<u8> {
    serde_json::to_vec(record).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn store(dir: &Path) -> Store {
        Store::open(dir, Arc::new(LogKey::generate("t.test/log").unwrap())).unwrap()
    }

    fn staff(name: &str) -> StaffRecord {
        StaffRecord {
            name: Name::parse(name).unwrap(),
            role: Role::Support,
            enrolled_at: Timestamp(1),
            offboarded_at: None,
        }
    }

    /// Two commits in one group: the second sees the first's record before
    /// anything is on disk; one transaction and one flush write both.
    #[tokio::test]
    async fn a_group_reads_its_own_pending_commits_and_is_written_once() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let clock = ManualClock::new(Timestamp(1_000));
        let alice = Name::parse("alice").unwrap();
        {
            let mut w = s.writer.lock().await;
            s.apply(&mut w, &clock, |_, b, _| {
                b.put_staff(staff("alice"));
                b.log(Draft::new("system", "", "staff.enrolled").with("name", "alice"));
                Ok::<_, StoreError>(())
            })
            .unwrap();
            let (seen, _, _) = s
                .apply(&mut w, &clock, |v, b, _| {
                    b.log(Draft::new("system", "", "probe"));
                    Ok::<_, StoreError>((v.staff(&alice)?, v.all_staff()?.len()))
                })
                .unwrap();
            assert_eq!(seen.0.map(|r| r.name), Some(alice.clone()));
            assert_eq!(seen.1, 1);
            // Nothing on disk yet, and readers outside the lock see nothing.
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
        // Reopened: the same head, tree and checkpoint.
        drop(s);
        let s = Store::open(
            dir.path(),
            Arc::new(LogKey::generate("t.test/log").unwrap()),
        )
        .unwrap();
        assert_eq!(s.head().next_seq, 2);
        assert_eq!(s.latest_checkpoint().unwrap().root, cp.root);
    }

    /// Concurrent commits share group writes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_commits_share_group_writes() {
        let dir = tempfile::tempdir().unwrap();
        let s = Arc::new(store(dir.path()));
        let mut tasks = Vec::new();
        for i in 0..64 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                for j in 0..20 {
                    let c = s
                        .append(
                            &crate::clock::SystemClock,
                            vec![Draft::new("system", "", "probe").with("n", i * 100 + j)],
                        )
                        .await
                        .unwrap();
                    let r = c.receipt.unwrap();
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
