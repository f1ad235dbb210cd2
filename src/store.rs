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
//! Trees: `meta` (head), `log` (seq → hash ‖ entry bytes), `staff`,
//! `tenants`, `grants` (id → record), `live` (ids of pending/active grants),
//! `latest` (holder \0 tenant → newest grant id).

use std::{collections::BTreeMap, path::Path, sync::Mutex};

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
    },
    clock::{Clock, Timestamp},
    grant::{Grant, GrantId},
    identity::Name,
    policy::Role,
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

pub struct Store {
    db: sled::Db,
    meta: sled::Tree,
    log: sled::Tree,
    staff: sled::Tree,
    tenants: sled::Tree,
    grants: sled::Tree,
    live: sled::Tree,
    latest: sled::Tree,
    /// Serializes transactions and flushes (see the module docs).
    writer: tokio::sync::Mutex<Writer>,
    /// The head after the last transaction, for synchronous readers.
    published: Mutex<Head>,
    /// The next sequence number that is durable, for followers of the log.
    head_tx: watch::Sender<u64>,
}

/// State owned by the writer lock.
struct Writer {
    head: Head,
    /// Transactions applied since open.
    committed: u64,
    /// Transactions known to be on disk.
    flushed: u64,
}

const HEAD_KEY: &[u8] = b"head";

const GENESIS_HEAD: Head = Head {
    next_seq: 0,
    prev_hash: GENESIS_PREV_HASH,
    last_timestamp: Timestamp(0),
};

impl Store {
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
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
            db,
            writer: tokio::sync::Mutex::new(Writer {
                head: GENESIS_HEAD,
                committed: 0,
                flushed: 0,
            }),
            published: Mutex::new(GENESIS_HEAD),
            head_tx: watch::Sender::new(0),
        };
        let head = store.read_head()?;
        store.writer.get_mut().head = head;
        *store.published_head() = head;
        store.head_tx.send_replace(head.next_seq);
        Ok(store)
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
    ) -> Result<(T, Vec<SealedEntry>), E>
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
    ) -> Result<Vec<SealedEntry>, StoreError> {
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
        // Held across the flush on purpose: no transaction may run meanwhile.
        self.db.flush_async().await?;
        writer.flushed = target;
        drop(writer);
        self.head_tx
            .send_if_modified(|seq| std::mem::replace(seq, durable_next_seq) != durable_next_seq);
        Ok(())
    }

    fn apply<T, E>(
        &self,
        writer: &mut Writer,
        clock: &dyn Clock,
        decide: impl FnOnce(&Store, &mut Batch, Timestamp) -> Result<T, E>,
    ) -> Result<(T, Vec<SealedEntry>), E>
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
        let log_rows: Vec<_> = sealed
            .iter()
            .map(|s| {
                let mut v = Vec::with_capacity(32 + 256);
                v.extend_from_slice(&s.hash);
                v.extend_from_slice(&s.entry.encode());
                (s.entry.seq.to_be_bytes(), v)
            })
            .collect();
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
        )
            .transaction(|(meta, log, staff_t, tenants_t, grants_t, live, latest)| {
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
                if !log_rows.is_empty() {
                    meta.insert(HEAD_KEY, &head_bytes[..])?;
                }
                Ok::<(), ConflictableTransactionError<()>>(())
            });
        match result {
            Ok(()) => {}
            Err(TransactionError::Storage(e)) => return Err(StoreError::from(e).into()),
            Err(TransactionError::Abort(())) => {
                return Err(StoreError::Unavailable("transaction aborted".into()).into());
            }
        }
        *head = next;
        writer.committed += 1;
        *self.published_head() = next;
        Ok((value, sealed))
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
