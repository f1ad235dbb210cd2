//! Persistence in sled: the registries (staff, tenants), grants with their
//! indexes, and the log, all in one database.
//!
//! Writes are serialized by one writer lock. Under it a caller reads what it
//! needs, decides, and hands back a [`Batch`] of record changes and log
//! entries; the batch is sealed (sequence numbers, hash chain) and applied in
//! one sled transaction, so a state change never exists without its entry.
//! [`Store::commit`] then waits until the database is flushed past its
//! transaction before returning: an acknowledged call is durable. If anything
//! fails, nothing is applied and the caller gets [`StoreError::Unavailable`].
//!
//! Group commit: flushing happens under the same (async) lock, one flush at a
//! time. A caller whose transaction was already covered by someone else's
//! flush returns without flushing; callers that queue up while a flush runs
//! apply their transactions and share the next flush. Holding one lock for
//! both also keeps sled 0.34 from deadlocking: its flush holds the
//! concurrency-control read guard while it waits for IO, and a transaction
//! waiting for the write guard then blocks the readers that IO needs. So no
//! transaction ever runs while one of our flushes does, and sled's own
//! background flusher is off.
//!
//! The log is also an RFC 6962 Merkle tree ([`crate::audit::merkle`]): each
//! transaction that appends entries also stores the complete subtrees they
//! close and a checkpoint of the new tree signed with the log key, so every
//! acknowledged call has a [`Receipt`]. The writer keeps the tree's
//! frontier in memory; opening reads popcount(n) nodes, never the log.
//!
//! Trees: `meta` (head, tree size), `log` (seq → hash ‖ entry bytes),
//! `staff`, `tenants`, `grants` (id → record), `live` (ids of pending/active
//! grants), `latest` (holder \0 tenant → newest grant id), `merkle` (`n` ‖
//! level ‖ index → node hash; `c` ‖ size → signed checkpoint), `scope`
//! (tenant \0 seq → entries a tenant may read, see
//! [`crate::policy::tenant_scopes`]).

use std::{
    collections::BTreeMap,
    path::Path,
    sync::{Arc, Mutex},
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
    key: Arc<LogKey>,
    /// Serializes transactions and flushes (see the module docs).
    writer: tokio::sync::Mutex<Writer>,
    /// The head after the last transaction, for synchronous readers.
    published: Mutex<Head>,
    /// The newest durable signed checkpoint (None while the log is empty).
    checkpoint: Mutex<Option<SignedCheckpoint>>,
    /// The next sequence number that is durable, for followers of the log.
    head_tx: watch::Sender<u64>,
}

/// State owned by the writer lock.
struct Writer {
    head: Head,
    /// The tree's right edge; its size is `head.next_seq`.
    frontier: Frontier,
    /// The checkpoint of the last transaction, published once flushed.
    checkpoint: Option<SignedCheckpoint>,
    /// Transactions applied since open.
    committed: u64,
    /// Transactions known to be on disk.
    flushed: u64,
}

const HEAD_KEY: &[u8] = b"head";
/// The number of entries the Merkle tree covers (8 bytes, big-endian).
const TREE_KEY: &[u8] = b"tree";

const GENESIS_HEAD: Head = Head {
    next_seq: 0,
    prev_hash: GENESIS_PREV_HASH,
    last_timestamp: Timestamp(0),
};

impl Store {
    /// Opens (or creates) the database; `key` signs checkpoints.
    pub fn open(dir: &Path, key: Arc<LogKey>) -> Result<Store, StoreError> {
        // We flush explicitly after every commit (group commit below).
        let db = sled::Config::new().path(dir).flush_every_ms(None).open()?;
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
            key,
            db,
            writer: tokio::sync::Mutex::new(Writer {
                head: GENESIS_HEAD,
                frontier: Frontier::new(),
                checkpoint: None,
                committed: 0,
                flushed: 0,
            }),
            published: Mutex::new(GENESIS_HEAD),
            checkpoint: Mutex::new(None),
            head_tx: watch::Sender::new(0),
        };
        let head = store.read_head()?;
        let frontier = store.open_tree(head.next_seq)?;
        let writer = store.writer.get_mut();
        writer.head = head;
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

    /// The head after the last applied transaction: `next_seq` is the
    /// number of entries in the log.
    pub fn head(&self) -> Head {
        *self.published_head()
    }

    /// Watches the next durable sequence number, for followers of the log:
    /// entries below it are on disk.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.head_tx.subscribe()
    }

    /// Runs `decide` under the writer lock with the current time; applies
    /// the batch it fills in atomically with its log entries, then flushes
    /// before returning. When `decide` fails nothing is written.
    ///
    /// The time is read under the lock and never earlier than the last
    /// entry's, so log timestamps never go backwards.
    pub async fn commit<T, E>(
        &self,
        clock: &dyn Clock,
        decide: impl FnOnce(&Store, &mut Batch, Timestamp) -> Result<T, E>,
    ) -> Result<(T, Committed), E>
    where
        E: From<StoreError>,
    {
        let mut writer = self.writer.lock().await;
        let (value, sealed) = self.apply(&mut writer, clock, decide)?;
        let ticket = writer.committed;
        drop(writer);
        self.flush_past(ticket).await?;
        Ok((value, sealed))
    }

    /// Appends entries with no state change (decisions, refusals, reads).
    pub async fn append(
        &self,
        clock: &dyn Clock,
        drafts: Vec<Draft>,
    ) -> Result<Committed, StoreError> {
        let ((), sealed) = self
            .commit(clock, |_, b: &mut Batch, _| {
                b.entries = drafts;
                Ok::<_, StoreError>(())
            })
            .await?;
        Ok(sealed)
    }

    /// Flushes everything applied so far.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let ticket = self.writer.lock().await.committed;
        self.flush_past(ticket).await
    }

    /// Returns once transaction number `ticket` is on disk, flushing only if
    /// no flush since it has covered it.
    async fn flush_past(&self, ticket: u64) -> Result<(), StoreError> {
        let mut writer = self.writer.lock().await;
        if writer.flushed >= ticket {
            return Ok(());
        }
        let (target, durable_next_seq) = (writer.committed, writer.head.next_seq);
        let checkpoint = writer.checkpoint.clone();
        // Held across the flush on purpose: no transaction may run meanwhile.
        self.db.flush_async().await?;
        writer.flushed = target;
        drop(writer);
        if checkpoint.is_some() {
            *self.latest_checkpoint_slot() = checkpoint;
        }
        self.head_tx
            .send_if_modified(|seq| std::mem::replace(seq, durable_next_seq) != durable_next_seq);
        Ok(())
    }

    fn apply<T, E>(
        &self,
        writer: &mut Writer,
        clock: &dyn Clock,
        decide: impl FnOnce(&Store, &mut Batch, Timestamp) -> Result<T, E>,
    ) -> Result<(T, Committed), E>
    where
        E: From<StoreError>,
    {
        let head = &mut writer.head;
        let now = clock.now().max(head.last_timestamp);
        let mut batch = Batch::default();
        let value = decide(self, &mut batch, now)?;

        // Seal the entries in order.
        let mut next = *head;
        let mut sealed = Vec::with_capacity(batch.entries.len());
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
            next = Head {
                next_seq: next.next_seq + 1,
                prev_hash: s.hash,
                last_timestamp: now,
            };
            sealed.push(s);
        }

        let staff: Vec<_> = batch
            .staff
            .iter()
            .map(|r| (r.name.as_str().to_owned(), encode(r)))
            .collect();
        let tenants: Vec<_> = batch
            .tenants
            .iter()
            .map(|r| (r.name.as_str().to_owned(), encode(r)))
            .collect();
        let grants: Vec<_> = batch
            .grants
            .iter()
            .map(|g| (g, encode(g), latest_key(&g.holder, &g.tenant)))
            .collect();
        // The tree grows with the log, in the same transaction.
        let mut frontier = writer.frontier.clone();
        let mut tree_rows: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut scope_rows = Vec::new();
        let mut receipt = None;
        let mut log_rows = Vec::with_capacity(sealed.len());
        for s in &sealed {
            let bytes = s.entry.encode();
            let leaf = merkle::leaf_hash(&bytes);
            for (id, h) in frontier.push(leaf) {
                tree_rows.push((node_key(id).to_vec(), h.to_vec()));
            }
            for t in tenant_scopes(&s.entry) {
                scope_rows.push(scope_key(t, s.entry.seq));
            }
            let mut v = Vec::with_capacity(32 + bytes.len());
            v.extend_from_slice(&s.hash);
            v.extend_from_slice(&bytes);
            log_rows.push((s.entry.seq.to_be_bytes(), v));
            receipt = Some((s.entry.seq, leaf));
        }
        let checkpoint = if sealed.is_empty() {
            None
        } else {
            let cp = self.sign_checkpoint(&frontier)?;
            tree_rows.push((
                checkpoint_key(frontier.size()).to_vec(),
                cp.note.as_bytes().to_vec(),
            ));
            Some(cp)
        };
        let tree_size = frontier.size().to_be_bytes();
        let mut head_bytes = [0u8; 40];
        head_bytes[..8].copy_from_slice(&next.next_seq.to_be_bytes());
        head_bytes[8..].copy_from_slice(&next.prev_hash);

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
        )
            .transaction(
                |(meta, log, staff_t, tenants_t, grants_t, live, latest, tree, scope)| {
                    for (k, v) in &staff {
                        staff_t.insert(k.as_bytes(), v.as_slice())?;
                    }
                    for (k, v) in &tenants {
                        tenants_t.insert(k.as_bytes(), v.as_slice())?;
                    }
                    for (g, v, lk) in &grants {
                        let id = g.id.as_str().as_bytes();
                        grants_t.insert(id, v.as_slice())?;
                        if g.state.is_live() {
                            live.insert(id, &[])?;
                        } else {
                            live.remove(id)?;
                        }
                        latest.insert(lk.as_slice(), id)?;
                    }
                    for (k, v) in &log_rows {
                        log.insert(&k[..], v.as_slice())?;
                    }
                    for (k, v) in &tree_rows {
                        tree.insert(k.as_slice(), v.as_slice())?;
                    }
                    for k in &scope_rows {
                        scope.insert(k.as_slice(), &[])?;
                    }
                    if !log_rows.is_empty() {
                        meta.insert(HEAD_KEY, &head_bytes[..])?;
                        meta.insert(TREE_KEY, &tree_size[..])?;
                    }
                    Ok::<(), ConflictableTransactionError<()>>(())
                },
            );
        match result {
            Ok(()) => {}
            Err(TransactionError::Storage(e)) => return Err(StoreError::from(e).into()),
            Err(TransactionError::Abort(())) => {
                return Err(StoreError::Unavailable("transaction aborted".into()).into());
            }
        }
        *head = next;
        writer.frontier = frontier;
        writer.committed += 1;
        *self.published_head() = next;
        let receipt = match (receipt, checkpoint) {
            (Some((seq, leaf_hash)), Some(cp)) => {
                writer.checkpoint = Some(cp.clone());
                Some(Receipt {
                    seq,
                    leaf_hash,
                    checkpoint: cp.note,
                })
            }
            _ => None,
        };
        Ok((
            value,
            Committed {
                entries: sealed,
                receipt,
            },
        ))
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

impl Nodes for Store {
    type Error = StoreError;
    fn node(&self, id: NodeId) -> Result<Hash, StoreError> {
        Store::node(self, id)
    }
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
