//! The storage-driver seam: what the ledger needs from a storage engine.
//! The ledger does sequencing, hashing, the Merkle tree, checkpoint signing
//! and group commit; a driver only stores what it is handed and reads it
//! back. One file per engine: [`sled`] today (the default, embedded);
//! PostgreSQL next, for more than one replica.
//!
//! The contract a driver keeps:
//! * [`Driver::write`] applies one [`Group`] atomically: after it returns
//!   `Ok`, readers see all of the group; after an error, none of it.
//! * [`Driver::flush`] returns `Ok` only once every group written before it
//!   is durable (survives a crash or power loss). The ledger never answers
//!   a caller before that.
//! * The ledger calls `write` and `flush` one at a time (never a `write`
//!   while a `flush` runs), so a driver needs no locking of its own for
//!   them. Reads may run at any time, concurrently with both.
//! * Reads return what was written, or [`LedgerError::Corrupt`] naming what
//!   cannot be decoded; never a guess.
//! * [`Driver::recover`] is called by the ledger, with no `write` or
//!   `flush` running, before the next group after a `write` or `flush` of
//!   this driver failed. It brings the driver back to what is on disk (an
//!   engine that keeps an IO error for good, as sled 0.34 does, is
//!   reopened) or fails, in which case the ledger calls it again before
//!   the group after. After an `Ok`, reads return what is durable, and
//!   that is durable: a group written but never flushed is either all
//!   there and on disk, or not there at all. The ledger then checks the
//!   stored head against what it knows is durable.
//! * [`Driver::put_notifier_state`] stores one small value of the
//!   notifier ([`crate::notify`]) outside the log's groups: atomically
//!   (the old value or the new, never a mix) and durably before it returns
//!   `Ok`. It is blocking; the ledger runs it off the async threads and
//!   under the same lock as group writes
//!   ([`crate::ledger::Ledger::put_notifier_state`]), so never while a
//!   `write`, `flush` or `recover` runs (sled would deadlock if a flush
//!   met a transaction).

pub mod layout;
pub mod sled;

use std::{future::Future, pin::Pin};

use super::{
    LedgerError, SignedCheckpoint,
    batch::{ReportKey, ReportRef},
};
use crate::{
    audit::{Hash, SealedEntry, merkle::NodeId},
    domain::{Alert, AlertId, Grant, GrantId, Name, ScreenRecord, StaffRecord, TenantRecord},
};

/// A driver's answer to a flush.
pub type FlushFuture<'a> = Pin<Box<dyn Future<Output = Result<(), LedgerError>> + Send + 'a>>;

/// Reads that yield many items (the log, a tenant's index).
pub type Rows<T> = Box<dyn Iterator<Item = Result<T, LedgerError>> + Send + 'static>;

/// A storage engine behind the ledger (see the module docs for the contract).
pub trait Driver: Send + Sync + 'static {
    /// The head as last written, or `None` for an empty store.
    fn stored_head(&self) -> Result<Option<StoredHead>, LedgerError>;
    /// Applies one group atomically (not yet durable).
    fn write(&self, group: &Group<'_>) -> Result<(), LedgerError>;
    /// Makes every group written so far durable.
    fn flush(&self) -> FlushFuture<'_>;
    /// The same, blocking the thread (at open, before any runtime work).
    fn flush_blocking(&self) -> Result<(), LedgerError>;
    /// After a failed `write` or `flush`: back to what is on disk, so that
    /// writes can succeed again once the cause is gone (see the module
    /// docs). Blocking; the ledger runs it off the async threads.
    fn recover(&self) -> Result<(), LedgerError>;

    /// The tenant keys this store seals personal details with
    /// ([`crate::ledger::keys`]); None for a store that seals nothing.
    fn tenant_keys(&self) -> Option<&std::sync::Arc<crate::ledger::keys::TenantKeys>> {
        None
    }

    fn staff(&self, name: &Name) -> Result<Option<StaffRecord>, LedgerError>;
    fn all_staff(&self) -> Result<Vec<StaffRecord>, LedgerError>;
    fn tenant(&self, name: &Name) -> Result<Option<TenantRecord>, LedgerError>;
    fn all_tenants(&self) -> Result<Vec<TenantRecord>, LedgerError>;
    fn grant(&self, id: &GrantId) -> Result<Option<Grant>, LedgerError>;
    /// Every grant, in id order.
    fn all_grants(&self) -> Result<Vec<Grant>, LedgerError>;
    /// Pending and active grants.
    fn live_grants(&self) -> Result<Vec<Grant>, LedgerError>;
    /// The grant `id` if it is `tenant`'s. Another tenant's grant must cost
    /// what an unknown id does (one index lookup decides), so that its
    /// answer's timing tells a tenant nothing.
    fn tenant_grant(&self, tenant: &Name, id: &GrantId) -> Result<Option<Grant>, LedgerError>;
    /// The newest grant `holder` asked for on `tenant`, whatever its state.
    fn latest_grant(&self, holder: &Name, tenant: &Name) -> Result<Option<Grant>, LedgerError>;
    fn report(&self, key: &ReportKey) -> Result<Option<ReportRef>, LedgerError>;
    fn alert(&self, id: &AlertId) -> Result<Option<Alert>, LedgerError>;
    /// Every alert, in id order.
    fn all_alerts(&self) -> Result<Vec<Alert>, LedgerError>;
    /// A log follower's cursor (the next seq it will judge), as last written.
    fn cursor(&self, name: &str) -> Result<Option<u64>, LedgerError>;
    fn screen(&self, name: &Name) -> Result<Option<ScreenRecord>, LedgerError>;
    /// Every warning screen, in name order.
    fn all_screens(&self) -> Result<Vec<ScreenRecord>, LedgerError>;

    fn entry(&self, seq: u64) -> Result<Option<SealedEntry>, LedgerError>;
    /// Stored entries from `from` on, in order, each with its stored hash.
    fn entries_from(&self, from: u64) -> Rows<SealedEntry>;
    fn node(&self, id: NodeId) -> Result<Option<Hash>, LedgerError>;
    /// The signed checkpoint stored at exactly `size` entries.
    fn checkpoint(&self, size: u64) -> Result<Option<String>, LedgerError>;
    /// The stored checkpoint of the largest size.
    fn newest_checkpoint(&self) -> Result<Option<String>, LedgerError>;
    /// Sequence numbers of the entries in `tenant`'s scope, from `from` on.
    fn tenant_seqs(&self, tenant: &str, from: u64) -> Rows<u64>;
    /// The sequence number of the newest entry in `tenant`'s scope.
    fn last_tenant_seq(&self, tenant: &str) -> Result<Option<u64>, LedgerError>;

    /// The notifier's value under `key` (a webhook's cursor and dead
    /// letters), or `None` if none was stored.
    fn notifier_state(&self, key: &str) -> Result<Option<Vec<u8>>, LedgerError>;
    /// Replaces the notifier's value under `key`: atomic and durable
    /// before it returns (see the module docs). Blocking.
    fn put_notifier_state(&self, key: &str, value: &[u8]) -> Result<(), LedgerError>;

    /// For an online backup ([`crate::ledger::backup`]): every row of the
    /// trees that change in place, as they are now. The ledger calls it
    /// holding its flush lock, so no group is written meanwhile.
    fn backup_state(&self) -> Result<Vec<BackupRecord>, LedgerError>;
    /// The rows of the append-only trees that belong to the first `size`
    /// entries (the log, the tree's nodes and checkpoints up to `size`,
    /// the indexes of those entries); may run while later groups are
    /// written.
    fn backup_log(&self, size: u64) -> Rows<BackupRecord>;
}

/// One stored row, as a backup carries it: the tree (`layout`) and the
/// raw key and value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupRecord {
    pub tree: String,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

/// The head of the stored log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredHead {
    /// Entries in the log.
    pub next_seq: u64,
    /// The last entry's hash.
    pub prev_hash: Hash,
    /// Entries the stored Merkle tree covers (equal to `next_seq`, except
    /// in a store written before the tree existed).
    pub tree_size: u64,
}

/// An entry as stored: its place, its hash and its canonical bytes.
#[derive(Clone, Debug)]
pub struct StoredEntry {
    pub seq: u64,
    pub hash: Hash,
    pub bytes: Vec<u8>,
}

/// One group write: every record, entry, tree node, index row and the
/// group's signed checkpoint, to be applied atomically.
#[derive(Default)]
pub struct Group<'a> {
    pub staff: Vec<&'a StaffRecord>,
    pub tenants: Vec<&'a TenantRecord>,
    pub grants: Vec<&'a Grant>,
    /// (holder, tenant) → the newest grant id.
    pub latest: Vec<(&'a (Name, Name), &'a GrantId)>,
    pub entries: &'a [StoredEntry],
    /// Complete subtrees the group's entries close.
    pub nodes: &'a [(NodeId, Hash)],
    /// (tenant, seq): entries in a tenant's scope.
    pub scopes: &'a [(String, u64)],
    pub reports: Vec<(&'a ReportKey, &'a ReportRef)>,
    pub alerts: Vec<&'a Alert>,
    /// Log followers' cursors (name, next seq), written with the group.
    pub cursors: Vec<(&'a str, u64)>,
    pub screens: Vec<&'a ScreenRecord>,
    pub checkpoint: Option<&'a SignedCheckpoint>,
    /// The head after the group; `None` when it appends nothing.
    pub head: Option<StoredHead>,
}

impl Group<'_> {
    pub fn is_empty(&self) -> bool {
        self.staff.is_empty()
            && self.tenants.is_empty()
            && self.grants.is_empty()
            && self.entries.is_empty()
            && self.nodes.is_empty()
            && self.reports.is_empty()
            && self.alerts.is_empty()
            && self.cursors.is_empty()
            && self.screens.is_empty()
            && self.head.is_none()
    }
}
