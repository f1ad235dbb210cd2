//! The sled driver (the default): everything in one embedded database, one
//! sled tree per kind of row ([`super::layout`]), one sled transaction per
//! group and one explicit flush (sled's own background flusher is off).
//!
//! sled 0.34 pays for each atomic write at flush time (about 2 ms each
//! here), which is why a whole group is one transaction. Its flush holds the
//! concurrency-control read guard while it waits for IO, and a transaction
//! waiting for the write guard then blocks the readers that IO needs: the
//! ledger never runs a `write` while a `flush` runs (see the driver
//! contract), which keeps it from deadlocking.

use std::path::Path;

use serde::{Serialize, de::DeserializeOwned};
use sled::{
    Transactional,
    transaction::{ConflictableTransactionError, TransactionError},
};

use super::{Driver, FlushFuture, Group, Rows, StoredHead, layout};
use crate::{
    audit::{Entry, Hash, SealedEntry, entry::hash_bytes, merkle::NodeId},
    domain::{Grant, GrantId, Name, StaffRecord, TenantRecord},
    ledger::{
        LedgerError,
        batch::{ReportKey, ReportRef},
    },
};

impl From<sled::Error> for LedgerError {
    fn from(e: sled::Error) -> Self {
        LedgerError::Unavailable(e.to_string())
    }
}

/// A sled database holding one daypass store.
pub struct SledDriver {
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
}

impl SledDriver {
    /// Opens (or creates, mode 0700) the database in `dir` with a page
    /// cache of `cache_bytes`.
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<SledDriver, LedgerError> {
        create_private(dir).map_err(|e| {
            LedgerError::Unavailable(format!("cannot create {}: {e}", dir.display()))
        })?;
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            .flush_every_ms(None)
            .open()?;
        let tree = |name: &str| db.open_tree(name);
        Ok(SledDriver {
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
            db,
        })
    }

    /// Raw access for tests that tamper with the files on purpose.
    #[doc(hidden)]
    pub fn raw_log(&self) -> &sled::Tree {
        &self.log
    }
}

impl Driver for SledDriver {
    fn stored_head(&self) -> Result<Option<StoredHead>, LedgerError> {
        let Some(v) = self.meta.get(layout::HEAD_KEY)? else {
            return Ok(None);
        };
        if v.len() != 40 {
            return Err(LedgerError::Corrupt(
                "the log head record is malformed".into(),
            ));
        }
        let next_seq = layout::be_u64(&v[..8]).unwrap_or_default();
        let mut prev_hash = [0u8; 32];
        prev_hash.copy_from_slice(&v[8..]);
        let tree_size = match self.meta.get(layout::TREE_KEY)? {
            None => 0,
            Some(v) => layout::be_u64(&v)
                .ok_or_else(|| LedgerError::Corrupt("the tree size record is malformed".into()))?,
        };
        Ok(Some(StoredHead {
            next_seq,
            prev_hash,
            tree_size,
        }))
    }

    fn write(&self, g: &Group<'_>) -> Result<(), LedgerError> {
        if g.is_empty() {
            return Ok(());
        }
        let staff: Vec<_> = g
            .staff
            .iter()
            .map(|r| (r.name.as_str(), encode(*r)))
            .collect();
        let tenants: Vec<_> = g
            .tenants
            .iter()
            .map(|r| (r.name.as_str(), encode(*r)))
            .collect();
        let grants: Vec<_> = g.grants.iter().map(|r| (*r, encode(*r))).collect();
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
                |(meta, log, staff_t, tenants_t, grants_t, live, latest, tree, scope, reports)| {
                    for (k, v) in &staff {
                        staff_t.insert(k.as_bytes(), v.as_slice())?;
                    }
                    for (k, v) in &tenants {
                        tenants_t.insert(k.as_bytes(), v.as_slice())?;
                    }
                    for (r, v) in &grants {
                        let id = r.id.as_str().as_bytes();
                        grants_t.insert(id, v.as_slice())?;
                        if r.state.is_live() {
                            live.insert(id, &[])?;
                        } else {
                            live.remove(id)?;
                        }
                    }
                    for ((holder, tenant), id) in &g.latest {
                        latest
                            .insert(layout::latest_key(holder, tenant), id.as_str().as_bytes())?;
                    }
                    for e in g.entries {
                        let mut v = Vec::with_capacity(32 + e.bytes.len());
                        v.extend_from_slice(&e.hash);
                        v.extend_from_slice(&e.bytes);
                        log.insert(&e.seq.to_be_bytes()[..], v)?;
                    }
                    for (id, h) in g.nodes {
                        tree.insert(&layout::node_key(*id)[..], &h[..])?;
                    }
                    if let Some(cp) = g.checkpoint {
                        tree.insert(&layout::checkpoint_key(cp.size)[..], cp.note.as_bytes())?;
                    }
                    for (tenant, seq) in g.scopes {
                        scope.insert(layout::scope_key(tenant, *seq), &[])?;
                    }
                    for (k, r) in &g.reports {
                        reports.insert(layout::report_key(k), &layout::report_value(r)[..])?;
                    }
                    if let Some(h) = &g.head {
                        meta.insert(
                            layout::HEAD_KEY,
                            &layout::head_value(h.next_seq, &h.prev_hash)[..],
                        )?;
                        meta.insert(layout::TREE_KEY, &h.tree_size.to_be_bytes()[..])?;
                    }
                    Ok::<(), ConflictableTransactionError<()>>(())
                },
            );
        match result {
            Ok(()) => Ok(()),
            Err(TransactionError::Storage(e)) => Err(e.into()),
            Err(TransactionError::Abort(())) => {
                Err(LedgerError::Unavailable("transaction aborted".into()))
            }
        }
    }

    fn flush(&self) -> FlushFuture<'_> {
        Box::pin(async move {
            self.db
                .flush_async()
                .await
                .map(drop)
                .map_err(LedgerError::from)
        })
    }

    fn flush_blocking(&self) -> Result<(), LedgerError> {
        self.db.flush().map(drop).map_err(LedgerError::from)
    }

    fn staff(&self, name: &Name) -> Result<Option<StaffRecord>, LedgerError> {
        get_json(&self.staff, name.as_str().as_bytes())
    }

    fn all_staff(&self) -> Result<Vec<StaffRecord>, LedgerError> {
        scan_json(&self.staff)
    }

    fn tenant(&self, name: &Name) -> Result<Option<TenantRecord>, LedgerError> {
        get_json(&self.tenants, name.as_str().as_bytes())
    }

    fn all_tenants(&self) -> Result<Vec<TenantRecord>, LedgerError> {
        scan_json(&self.tenants)
    }

    fn grant(&self, id: &GrantId) -> Result<Option<Grant>, LedgerError> {
        get_json(&self.grants, id.as_str().as_bytes())
    }

    fn all_grants(&self) -> Result<Vec<Grant>, LedgerError> {
        scan_json(&self.grants)
    }

    fn live_grants(&self) -> Result<Vec<Grant>, LedgerError> {
        let mut out = Vec::new();
        for kv in self.live.iter() {
            let (k, _) = kv?;
            if let Some(g) = get_json::<Grant>(&self.grants, &k)? {
                out.push(g);
            }
        }
        Ok(out)
    }

    fn latest_grant(&self, holder: &Name, tenant: &Name) -> Result<Option<Grant>, LedgerError> {
        match self.latest.get(layout::latest_key(holder, tenant))? {
            Some(id) => get_json(&self.grants, &id),
            None => Ok(None),
        }
    }

    fn report(&self, key: &ReportKey) -> Result<Option<ReportRef>, LedgerError> {
        self.reports
            .get(layout::report_key(key))?
            .map(|v| layout::parse_report_value(&v))
            .transpose()
    }

    fn entry(&self, seq: u64) -> Result<Option<SealedEntry>, LedgerError> {
        match self.log.get(seq.to_be_bytes())? {
            None => Ok(None),
            Some(v) => decode_stored(&v)
                .map(Some)
                .map_err(|why| LedgerError::Corrupt(format!("entry {seq}: {why}"))),
        }
    }

    fn entries_from(&self, from: u64) -> Rows<SealedEntry> {
        Box::new(self.log.range(from.to_be_bytes()..).map(|kv| {
            let (k, v) = kv?;
            let seq = layout::be_u64(&k)
                .ok_or_else(|| LedgerError::Corrupt("a log key is not 8 bytes".into()))?;
            decode_stored(&v).map_err(|why| LedgerError::Corrupt(format!("entry {seq}: {why}")))
        }))
    }

    fn node(&self, id: NodeId) -> Result<Option<Hash>, LedgerError> {
        match self.merkle.get(layout::node_key(id))? {
            None => Ok(None),
            Some(v) => v.as_ref().try_into().map(Some).map_err(|_| {
                LedgerError::Corrupt(format!("tree node {}/{} is malformed", id.level, id.index))
            }),
        }
    }

    fn checkpoint(&self, size: u64) -> Result<Option<String>, LedgerError> {
        self.merkle
            .get(layout::checkpoint_key(size))?
            .map(|v| note_text(&v))
            .transpose()
    }

    fn newest_checkpoint(&self) -> Result<Option<String>, LedgerError> {
        match self
            .merkle
            .scan_prefix(layout::CHECKPOINT_PREFIX)
            .next_back()
        {
            None => Ok(None),
            Some(kv) => note_text(&kv?.1).map(Some),
        }
    }

    fn tenant_seqs(&self, tenant: &str, from: u64) -> Rows<u64> {
        let prefix_len = tenant.len() + 1;
        Box::new(
            self.scope
                .range(layout::scope_key(tenant, from)..layout::scope_key_end(tenant))
                .map(move |kv| {
                    let (k, _) = kv?;
                    k.get(prefix_len..)
                        .and_then(layout::be_u64)
                        .ok_or_else(|| LedgerError::Corrupt("a scope key is malformed".into()))
                }),
        )
    }
}

/// A missing directory is made readable by its owner only: it holds
/// every tenant's reasons.
fn create_private(dir: &Path) -> std::io::Result<()> {
    if dir.exists() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
}

fn note_text(v: &[u8]) -> Result<String, LedgerError> {
    String::from_utf8(v.to_vec())
        .map_err(|_| LedgerError::Corrupt("a stored checkpoint is not UTF-8".into()))
}

fn decode_stored(v: &[u8]) -> Result<SealedEntry, String> {
    let (hash, bytes) = layout::split_log_value(v)?;
    let entry = Entry::decode(bytes).map_err(|e| e.to_string())?;
    Ok(SealedEntry { entry, hash })
}

/// Recomputes a stored log value's hash (for tests that tamper with it).
pub fn stored_hash_matches(v: &[u8]) -> bool {
    layout::split_log_value(v)
        .is_ok_and(|(hash, bytes)| !bytes.is_empty() && hash_bytes(bytes) == hash)
}

fn get_json<T: DeserializeOwned>(tree: &sled::Tree, key: &[u8]) -> Result<Option<T>, LedgerError> {
    match tree.get(key)? {
        None => Ok(None),
        Some(v) => serde_json::from_slice(&v).map(Some).map_err(|e| {
            LedgerError::Corrupt(format!("record {:?}: {e}", String::from_utf8_lossy(key)))
        }),
    }
}

fn scan_json<T: DeserializeOwned>(tree: &sled::Tree) -> Result<Vec<T>, LedgerError> {
    tree.iter()
        .map(|kv| {
            let (k, v) = kv?;
            serde_json::from_slice(&v).map_err(|e| {
                LedgerError::Corrupt(format!("record {:?}: {e}", String::from_utf8_lossy(&k)))
            })
        })
        .collect()
}

/// Records are plain data with string keys; serializing them cannot fail.
fn encode<T: Serialize>(record: &T) -> Vec<u8> {
    serde_json::to_vec(record).unwrap_or_default()
}
