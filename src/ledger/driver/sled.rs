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
//!
//! sled 0.34 keeps the first IO error of its background writes (a full
//! disk, a failing device) for good: every later write and flush of that
//! database fails with it, even once the disk works again; only a new
//! open clears it. So [`Driver::recover`] reopens the database in place:
//! the handles live behind a read-write lock (a read lock per call,
//! uncontended but for a reopen), row iterators take it per page rather
//! than holding a handle (an old handle would keep sled's file lock), and a
//! reopen first checks that the directory has room, so that a disk still
//! full keeps the old, readable handles instead of losing them.

use std::{
    io::Write as _,
    path::{Path, PathBuf},
    sync::Arc,
};

use parking_lot::RwLock;
use serde::{Serialize, de::DeserializeOwned};
use sled::IVec;

mod backup;
mod grants;
mod write;

use self::{
    grants::{decode_grant, get_grant},
    write::write_group,
};
use super::{BackupRecord, Driver, FlushFuture, Group, Rows, StoredHead, layout};
use crate::{
    audit::{Entry, Hash, SealedEntry, entry::hash_bytes, merkle::NodeId},
    domain::{Alert, AlertId, Grant, GrantId, Name, ScreenRecord, StaffRecord, TenantRecord},
    ledger::{
        LedgerError,
        batch::{ReportKey, ReportRef},
        keys::TenantKeys,
    },
};

impl From<sled::Error> for LedgerError {
    fn from(e: sled::Error) -> Self {
        LedgerError::Unavailable(e.to_string())
    }
}

/// A sled database holding one daypass store.
pub struct SledDriver {
    dir: PathBuf,
    cache_bytes: u64,
    /// The open database. `None` only after a reopen dropped the old
    /// handles and could not open new ones: calls then fail until the next
    /// [`Driver::recover`] succeeds.
    handles: Arc<RwLock<Option<Handles>>>,
    /// Seals tenants' personal details on write, opens them on read.
    keys: Arc<TenantKeys>,
}

/// One open sled database and its trees.
struct Handles {
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
    tenant_grants: sled::Tree,
    alerts: sled::Tree,
    notify: sled::Tree,
}

/// What a reopen writes (and deletes) first, to see that the directory has
/// room again: one sled segment (its default size), the unit sled's log
/// grows by.
const SPACE_PROBE_BYTES: usize = 512 << 10;
const SPACE_PROBE_NAME: &str = "space-probe.tmp";
/// Tries of a reopen while the old handles' file lock lingers (10 ms apart).
const LOCK_TRIES: u32 = 200;

impl SledDriver {
    /// Opens (or creates, mode 0700) the database in `dir` with a page
    /// cache of `cache_bytes`.
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<SledDriver, LedgerError> {
        create_private(dir).map_err(|e| {
            LedgerError::Unavailable(format!("cannot create {}: {e}", dir.display()))
        })?;
        Ok(SledDriver {
            dir: dir.to_owned(),
            cache_bytes,
            handles: Arc::new(RwLock::new(Some(Handles::open_waiting(dir, cache_bytes)?))),
            keys: Arc::new(TenantKeys::new(dir)),
        })
    }

    /// Raw access for tests that tamper with the files on purpose.
    #[doc(hidden)]
    pub fn raw_log(&self) -> sled::Tree {
        self.with(|h| Ok(h.log.clone()))
            .expect("the database is open")
    }

    /// Runs `f` on the open database, under the read lock.
    fn with<T>(
        &self,
        f: impl FnOnce(&Handles) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        match &*self.handles.read() {
            Some(h) => f(h),
            None => Err(not_open()),
        }
    }

    /// Rows of one tree from `from` (up to `end`, exclusive), read a page at
    /// a time under the read lock, each decoded by `decode`.
    fn rows<T: 'static>(
        &self,
        tree: fn(&Handles) -> &sled::Tree,
        from: Vec<u8>,
        end: Option<Vec<u8>>,
        decode: impl Fn(IVec, IVec) -> Result<T, LedgerError> + Send + 'static,
    ) -> Rows<T> {
        Box::new(Paged {
            handles: self.handles.clone(),
            tree,
            next: Some(from),
            end,
            page_len: FIRST_PAGE,
            page: Vec::new().into_iter(),
            decode,
        })
    }

    /// Writes and deletes a probe file of one sled segment, synced.
    fn probe_space(&self) -> std::io::Result<()> {
        let path = self.dir.join(SPACE_PROBE_NAME);
        let result = std::fs::File::create(&path).and_then(|mut f| {
            f.write_all(&[0u8; SPACE_PROBE_BYTES])?;
            f.sync_all()
        });
        let removed = std::fs::remove_file(&path);
        result.and(removed)
    }
}

impl Handles {
    /// [`Handles::open`], waiting up to `LOCK_TRIES` × 10 ms for sled's
    /// file lock: the background writers of handles just dropped (a
    /// reopen after a storage error, a ledger closed and opened again in
    /// the same process) hold it a moment longer. Another process holding
    /// it is still refused, after that wait.
    fn open_waiting(dir: &Path, cache_bytes: u64) -> Result<Handles, LedgerError> {
        let mut tries = 0;
        loop {
            match Handles::open(dir, cache_bytes) {
                Err(e) if e.is_locked() && tries < LOCK_TRIES => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                result => return result,
            }
        }
    }

    fn open(dir: &Path, cache_bytes: u64) -> Result<Handles, LedgerError> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            .flush_every_ms(None)
            .open()?;
        let tree = |name: &str| db.open_tree(name);
        let h = Handles {
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
            alerts: tree("alerts")?,
            tenant_grants: tree("tenant_grants")?,
            notify: tree("notify")?,
            db,
        };
        h.index_tenant_grants()?;
        Ok(h)
    }

    /// A store written before the `tenant_grants` index gets it once, from
    /// the grants (at open).
    fn index_tenant_grants(&self) -> Result<(), LedgerError> {
        if !self.tenant_grants.is_empty() || self.grants.is_empty() {
            return Ok(());
        }
        let mut batch = sled::Batch::default();
        let mut n = 0usize;
        for g in scan_json::<Grant>(&self.grants)? {
            batch.insert(layout::tenant_grant_key(&g.tenant, &g.id), &[]);
            n += 1;
        }
        self.tenant_grants.apply_batch(batch)?;
        self.db.flush()?;
        tracing::info!(grants = n, "indexed the grants by tenant");
        Ok(())
    }
}

fn not_open() -> LedgerError {
    LedgerError::Unavailable(
        "the database is closed after a storage error and could not be reopened yet".into(),
    )
}

/// Rows per page: small first (most reads want a few), doubling to the
/// largest.
const FIRST_PAGE: usize = 16;
const LARGEST_PAGE: usize = 512;

/// A row iterator that holds no sled handle between pages (see the module
/// docs).
struct Paged<F> {
    handles: Arc<RwLock<Option<Handles>>>,
    tree: fn(&Handles) -> &sled::Tree,
    /// The first key of the next page; `None` once done.
    next: Option<Vec<u8>>,
    end: Option<Vec<u8>>,
    page_len: usize,
    page: std::vec::IntoIter<(IVec, IVec)>,
    decode: F,
}

impl<T, F: Fn(IVec, IVec) -> Result<T, LedgerError>> Iterator for Paged<F> {
    type Item = Result<T, LedgerError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some((k, v)) = self.page.next() {
            return Some((self.decode)(k, v));
        }
        let from = self.next.take()?;
        let page: Result<Vec<(IVec, IVec)>, LedgerError> = match &*self.handles.read() {
            None => Err(not_open()),
            Some(h) => {
                let tree = (self.tree)(h);
                let range = match &self.end {
                    Some(end) => tree.range(from.as_slice()..end.as_slice()),
                    None => tree.range(from.as_slice()..),
                };
                range
                    .take(self.page_len)
                    .map(|kv| kv.map_err(LedgerError::from))
                    .collect()
            }
        };
        let page = match page {
            Ok(page) => page,
            Err(e) => return Some(Err(e)),
        };
        if page.len() == self.page_len {
            // The smallest key after the last one read.
            let mut next = page[page.len() - 1].0.to_vec();
            next.push(0);
            self.next = Some(next);
            self.page_len = (self.page_len * 2).min(LARGEST_PAGE);
        }
        self.page = page.into_iter();
        let (k, v) = self.page.next()?;
        Some((self.decode)(k, v))
    }
}

impl Driver for SledDriver {
    fn stored_head(&self) -> Result<Option<StoredHead>, LedgerError> {
        self.with(|h| {
            let Some(v) = h.meta.get(layout::HEAD_KEY)? else {
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
            let tree_size = match h.meta.get(layout::TREE_KEY)? {
                None => 0,
                Some(v) => layout::be_u64(&v).ok_or_else(|| {
                    LedgerError::Corrupt("the tree size record is malformed".into())
                })?,
            };
            Ok(Some(StoredHead {
                next_seq,
                prev_hash,
                tree_size,
            }))
        })
    }

    fn tenant_keys(&self) -> Option<&Arc<TenantKeys>> {
        Some(&self.keys)
    }

    fn write(&self, g: &Group<'_>) -> Result<(), LedgerError> {
        if g.is_empty() {
            return Ok(());
        }
        self.with(|h| write_group(h, &self.keys, g))
    }

    fn flush(&self) -> FlushFuture<'_> {
        // The flush awaits without the lock (its guard cannot be held across
        // an await); the ledger never reopens while it flushes.
        let db = self.with(|h| Ok(h.db.clone()));
        Box::pin(async move { db?.flush_async().await.map(drop).map_err(LedgerError::from) })
    }

    fn flush_blocking(&self) -> Result<(), LedgerError> {
        self.with(|h| h.db.flush().map(drop).map_err(LedgerError::from))
    }

    /// Reopens the database in place (see the module docs): refuses while
    /// the directory has no room, then drops every handle (sled's file
    /// lock goes with the last), opens the database again and syncs its
    /// files, so that what the new handles read is on disk.
    fn recover(&self) -> Result<(), LedgerError> {
        self.probe_space().map_err(|e| {
            LedgerError::Unavailable(format!(
                "the data directory still has no room for a {} KiB write: {e}",
                SPACE_PROBE_BYTES >> 10
            ))
        })?;
        let mut handles = self.handles.write();
        drop(handles.take());
        let reopened = Handles::open_waiting(&self.dir, self.cache_bytes)?;
        sync_files(&self.dir).map_err(|e| {
            LedgerError::Unavailable(format!("cannot sync the reopened database: {e}"))
        })?;
        *handles = Some(reopened);
        Ok(())
    }

    fn staff(&self, name: &Name) -> Result<Option<StaffRecord>, LedgerError> {
        self.with(|h| get_json(&h.staff, name.as_str().as_bytes()))
    }

    fn all_staff(&self) -> Result<Vec<StaffRecord>, LedgerError> {
        self.with(|h| scan_json(&h.staff))
    }

    fn tenant(&self, name: &Name) -> Result<Option<TenantRecord>, LedgerError> {
        self.with(|h| get_json(&h.tenants, name.as_str().as_bytes()))
    }

    fn all_tenants(&self) -> Result<Vec<TenantRecord>, LedgerError> {
        self.with(|h| scan_json(&h.tenants))
    }

    fn grant(&self, id: &GrantId) -> Result<Option<Grant>, LedgerError> {
        self.with(|h| get_grant(&self.keys, &h.grants, id.as_str().as_bytes()))
    }

    fn all_grants(&self) -> Result<Vec<Grant>, LedgerError> {
        self.with(|h| {
            h.grants
                .iter()
                .map(|kv| {
                    let (k, v) = kv?;
                    decode_grant(&self.keys, &v).map_err(|e| {
                        LedgerError::Corrupt(format!(
                            "grant {:?}: {e}",
                            String::from_utf8_lossy(&k)
                        ))
                    })
                })
                .collect()
        })
    }

    fn live_grants(&self) -> Result<Vec<Grant>, LedgerError> {
        self.with(|h| {
            let mut out = Vec::new();
            for kv in h.live.iter() {
                let (k, _) = kv?;
                if let Some(g) = get_grant(&self.keys, &h.grants, &k)? {
                    out.push(g);
                }
            }
            Ok(out)
        })
    }

    fn tenant_grant(&self, tenant: &Name, id: &GrantId) -> Result<Option<Grant>, LedgerError> {
        self.with(|h| {
            // One index read decides, whatever the id: another tenant's
            // grant costs what an unknown id does.
            if h.tenant_grants
                .get(layout::tenant_grant_key(tenant, id))?
                .is_none()
            {
                return Ok(None);
            }
            get_grant(&self.keys, &h.grants, id.as_str().as_bytes())
        })
    }

    fn latest_grant(&self, holder: &Name, tenant: &Name) -> Result<Option<Grant>, LedgerError> {
        self.with(
            |h| match h.latest.get(layout::latest_key(holder, tenant))? {
                Some(id) => get_grant(&self.keys, &h.grants, &id),
                None => Ok(None),
            },
        )
    }

    fn report(&self, key: &ReportKey) -> Result<Option<ReportRef>, LedgerError> {
        self.with(|h| {
            h.reports
                .get(layout::report_key(key))?
                .map(|v| layout::parse_report_value(&v))
                .transpose()
        })
    }

    fn alert(&self, id: &AlertId) -> Result<Option<Alert>, LedgerError> {
        self.with(|h| get_json(&h.alerts, id.as_str().as_bytes()))
    }

    fn all_alerts(&self) -> Result<Vec<Alert>, LedgerError> {
        self.with(|h| scan_json(&h.alerts))
    }

    fn screen(&self, name: &Name) -> Result<Option<ScreenRecord>, LedgerError> {
        self.with(|h| get_json(&h.meta, &layout::screen_key(name.as_str())))
    }

    fn all_screens(&self) -> Result<Vec<ScreenRecord>, LedgerError> {
        self.with(|h| {
            h.meta
                .scan_prefix(layout::SCREEN_PREFIX)
                .map(|kv| {
                    let (_, v) = kv?;
                    serde_json::from_slice(&v)
                        .map_err(|e| LedgerError::Corrupt(format!("a screen record: {e}")))
                })
                .collect()
        })
    }

    fn cursor(&self, name: &str) -> Result<Option<u64>, LedgerError> {
        self.with(|h| match h.meta.get(layout::cursor_key(name))? {
            None => Ok(None),
            Some(v) => layout::parse_u64(&v)
                .map(Some)
                .ok_or_else(|| LedgerError::Corrupt(format!("cursor {name} is not 8 bytes"))),
        })
    }

    fn entry(&self, seq: u64) -> Result<Option<SealedEntry>, LedgerError> {
        self.with(|h| match h.log.get(seq.to_be_bytes())? {
            None => Ok(None),
            Some(v) => decode_stored(&v, &self.keys)
                .map(Some)
                .map_err(|why| LedgerError::Corrupt(format!("entry {seq}: {why}"))),
        })
    }

    fn entries_from(&self, from: u64) -> Rows<SealedEntry> {
        let keys = self.keys.clone();
        self.rows(
            |h| &h.log,
            from.to_be_bytes().to_vec(),
            None,
            move |k, v| {
                let seq = layout::be_u64(&k)
                    .ok_or_else(|| LedgerError::Corrupt("a log key is not 8 bytes".into()))?;
                decode_stored(&v, &keys)
                    .map_err(|why| LedgerError::Corrupt(format!("entry {seq}: {why}")))
            },
        )
    }

    fn node(&self, id: NodeId) -> Result<Option<Hash>, LedgerError> {
        self.with(|h| match h.merkle.get(layout::node_key(id))? {
            None => Ok(None),
            Some(v) => v.as_ref().try_into().map(Some).map_err(|_| {
                LedgerError::Corrupt(format!("tree node {}/{} is malformed", id.level, id.index))
            }),
        })
    }

    fn checkpoint(&self, size: u64) -> Result<Option<String>, LedgerError> {
        self.with(|h| {
            h.merkle
                .get(layout::checkpoint_key(size))?
                .map(|v| note_text(&v))
                .transpose()
        })
    }

    fn newest_checkpoint(&self) -> Result<Option<String>, LedgerError> {
        self.with(
            |h| match h.merkle.scan_prefix(layout::CHECKPOINT_PREFIX).next_back() {
                None => Ok(None),
                Some(kv) => note_text(&kv?.1).map(Some),
            },
        )
    }

    fn tenant_seqs(&self, tenant: &str, from: u64) -> Rows<u64> {
        let prefix_len = tenant.len() + 1;
        self.rows(
            |h| &h.scope,
            layout::scope_key(tenant, from),
            Some(layout::scope_key_end(tenant)),
            move |k, _| {
                k.get(prefix_len..)
                    .and_then(layout::be_u64)
                    .ok_or_else(|| LedgerError::Corrupt("a scope key is malformed".into()))
            },
        )
    }

    fn last_tenant_seq(&self, tenant: &str) -> Result<Option<u64>, LedgerError> {
        let (start, end) = (layout::scope_key(tenant, 0), layout::scope_key_end(tenant));
        self.with(|h| match h.scope.range(start..end).next_back() {
            None => Ok(None),
            Some(kv) => kv?
                .0
                .get(tenant.len() + 1..)
                .and_then(layout::be_u64)
                .map(Some)
                .ok_or_else(|| LedgerError::Corrupt("a scope key is malformed".into())),
        })
    }

    fn notifier_state(&self, key: &str) -> Result<Option<Vec<u8>>, LedgerError> {
        self.with(|h| Ok(h.notify.get(key.as_bytes())?.map(|v| v.to_vec())))
    }

    /// One insert (atomic in sled) and a flush of the database: the value
    /// is on disk before this returns. It may also make a group written
    /// but not yet flushed durable early, which the contract allows (a
    /// written group may reach the disk at any time).
    fn backup_state(&self) -> Result<Vec<BackupRecord>, LedgerError> {
        self.backup_state_rows()
    }

    fn backup_log(&self, size: u64) -> Rows<BackupRecord> {
        self.backup_log_rows(size)
    }

    fn put_notifier_state(&self, key: &str, value: &[u8]) -> Result<(), LedgerError> {
        self.with(|h| {
            h.notify.insert(key.as_bytes(), value)?;
            h.db.flush()?;
            Ok(())
        })
    }
}

/// fsyncs sled's files in `dir` and the directory itself. What a reopened
/// database reads may be only in the kernel's cache (written by the old
/// handles, whose sync failed); sled syncs only what it writes itself.
fn sync_files(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_file() && entry.file_name() != SPACE_PROBE_NAME {
            std::fs::File::open(entry.path())?.sync_all()?;
        }
    }
    std::fs::File::open(dir)?.sync_all()
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

fn decode_stored(v: &[u8], keys: &TenantKeys) -> Result<SealedEntry, String> {
    let (hash, bytes) = layout::split_log_value(v)?;
    let mut entry = Entry::decode(bytes).map_err(|e| e.to_string())?;
    keys.open_entry(&mut entry);
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
