//! The sled driver's side of an online backup and of a restore
//! ([`crate::ledger::backup`]): the trees that change in place are copied
//! while the ledger holds its flush lock (no group is written meanwhile),
//! the append-only trees afterwards, bounded by the head copied with them,
//! so the copy is the store exactly as it was at that head. A restore
//! writes the rows into a new, empty directory and flushes once.

use std::path::Path;

use super::{Handles, SledDriver, layout};
use crate::{
    audit::merkle::NodeId,
    ledger::{
        LedgerError,
        driver::{BackupRecord, Rows},
    },
};

/// Trees copied at the head, under the ledger's flush lock: they change in
/// place (records, indexes of live state, the head, webhook cursors).
const STATE_TREES: [&str; 9] = [
    "meta",
    "staff",
    "tenants",
    "grants",
    "live",
    "latest",
    "tenant_grants",
    "alerts",
    "notify",
];

/// Append-only trees: a row, once written, never changes, and each belongs
/// to one entry (or one tree size), so the rows of the first `size`
/// entries are read while later groups are written.
const LOG_TREES: [&str; 4] = ["log", "merkle", "scope", "reports"];

/// Every tree a backup may hold.
pub fn known_tree(name: &str) -> bool {
    STATE_TREES.contains(&name) || LOG_TREES.contains(&name)
}

fn tree<'h>(h: &'h Handles, name: &str) -> &'h sled::Tree {
    match name {
        "meta" => &h.meta,
        "staff" => &h.staff,
        "tenants" => &h.tenants,
        "grants" => &h.grants,
        "live" => &h.live,
        "latest" => &h.latest,
        "tenant_grants" => &h.tenant_grants,
        "alerts" => &h.alerts,
        "notify" => &h.notify,
        "log" => &h.log,
        "merkle" => &h.merkle,
        "scope" => &h.scope,
        _ => &h.reports,
    }
}

/// Whether a row of an append-only tree belongs to the first `size`
/// entries (the tree covers them all in a backed-up store).
fn belongs(tree: &str, key: &[u8], value: &[u8], size: u64) -> bool {
    let below = |seq: Option<u64>| seq.is_some_and(|s| s < size);
    match tree {
        "log" => below(layout::be_u64(key)),
        "scope" => below(
            key.len()
                .checked_sub(8)
                .and_then(|i| layout::be_u64(&key[i..])),
        ),
        "reports" => below(value.get(..8).and_then(layout::be_u64)),
        "merkle" => match key.first() {
            Some(b'c') => layout::be_u64(&key[1..]).is_some_and(|s| s <= size),
            Some(b'n') if key.len() == 10 => {
                let id = NodeId {
                    level: key[1],
                    index: layout::be_u64(&key[2..]).unwrap_or(u64::MAX),
                };
                // The node covers leaves [index·2^level, (index+1)·2^level).
                id.level < 64 && (u128::from(id.index) + 1) << id.level <= u128::from(size)
            }
            _ => false,
        },
        _ => false,
    }
}

impl SledDriver {
    pub(super) fn backup_state_rows(&self) -> Result<Vec<BackupRecord>, LedgerError> {
        self.with(|h| {
            let mut out = Vec::new();
            for name in STATE_TREES {
                for kv in tree(h, name).iter() {
                    let (k, v) = kv?;
                    out.push(BackupRecord {
                        tree: name.to_owned(),
                        key: k.to_vec(),
                        value: v.to_vec(),
                    });
                }
            }
            Ok(out)
        })
    }

    pub(super) fn backup_log_rows(&self, size: u64) -> Rows<BackupRecord> {
        let mut all: Rows<BackupRecord> = Box::new(std::iter::empty());
        for name in LOG_TREES {
            let end = (name == "log").then(|| size.to_be_bytes().to_vec());
            let handle: fn(&Handles) -> &sled::Tree = match name {
                "log" => |h| &h.log,
                "merkle" => |h| &h.merkle,
                "scope" => |h| &h.scope,
                _ => |h| &h.reports,
            };
            let rows = self.rows(handle, Vec::new(), end, move |k, v| {
                Ok(BackupRecord {
                    tree: name.to_owned(),
                    key: k.to_vec(),
                    value: v.to_vec(),
                })
            });
            let kept = rows.filter(move |r| match r {
                Ok(r) => belongs(name, &r.key, &r.value, size),
                Err(_) => true,
            });
            all = Box::new(all.chain(kept));
        }
        all
    }

    /// Writes `rows` into a new store in `dir` (which must not hold one)
    /// and flushes it. The caller verifies the result.
    pub fn import(
        dir: &Path,
        rows: impl Iterator<Item = Result<BackupRecord, LedgerError>>,
    ) -> Result<(), LedgerError> {
        let driver = SledDriver::open(dir, crate::ledger::DEFAULT_CACHE_MIB << 20)?;
        driver.with(|h| {
            if !h.meta.is_empty() || !h.log.is_empty() {
                return Err(LedgerError::Unavailable(format!(
                    "{} already holds a store: restore into a new directory",
                    dir.display()
                )));
            }
            for r in rows {
                let r = r?;
                if !known_tree(&r.tree) {
                    return Err(LedgerError::Corrupt(format!(
                        "the backup holds rows of an unknown tree {:?}",
                        r.tree
                    )));
                }
                tree(h, &r.tree).insert(r.key, r.value)?;
            }
            h.db.flush()?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_rows_of_the_first_entries_belong_to_a_backup_of_them() {
        let node = |level: u8, index: u64| layout::node_key(NodeId { level, index }).to_vec();
        assert!(belongs("log", &3u64.to_be_bytes(), b"", 4));
        assert!(!belongs("log", &4u64.to_be_bytes(), b"", 4));
        assert!(belongs("merkle", &node(2, 0), b"", 4));
        assert!(!belongs("merkle", &node(2, 1), b"", 4));
        assert!(belongs("merkle", &node(0, 3), b"", 4));
        assert!(!belongs("merkle", &node(0, 4), b"", 4));
        assert!(!belongs("merkle", &node(63, u64::MAX), b"", 4));
        assert!(belongs("merkle", &layout::checkpoint_key(4), b"", 4));
        assert!(!belongs("merkle", &layout::checkpoint_key(5), b"", 4));
        assert!(belongs("scope", &layout::scope_key("acme", 1), b"", 4));
        assert!(!belongs("scope", &layout::scope_key("acme", 9), b"", 4));
        let mut report = 2u64.to_be_bytes().to_vec();
        report.extend_from_slice(&[0; 64]);
        assert!(belongs("reports", b"acme\0r1", &report, 4));
        report[..8].copy_from_slice(&7u64.to_be_bytes());
        assert!(!belongs("reports", b"acme\0r1", &report, 4));
    }
}
