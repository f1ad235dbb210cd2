//! The log as a C2SP tlog-tiles tree (docs/log-format.md §13), read from
//! what the ledger already stores: a hash tile is 256 consecutive stored
//! complete-subtree hashes of one tree level (level `8 × L`), an entry
//! bundle the canonical bytes of 256 consecutive entries, each behind a
//! big-endian `u16` length. Both are served only within the durable log,
//! so what a client fetches never changes afterwards (immutable, as the
//! spec requires), and a partial tile of width `W` is served for any `W`
//! the log has reached, not only for sizes a checkpoint was signed at.
//!
//! Reading entry bundles is reading the whole log, so it is logged like
//! `GetEntries` pages are, as `audit.read` (purpose `tiles`, `from` the
//! bundle's first entry), but at most once per caller per
//! [`BUNDLE_READ_LOG_EVERY_MS`]: a monitor that fetches a bundle after
//! every checkpoint would otherwise double the log. Hash tiles and the
//! checkpoint reveal nothing but hashes and the log's size and are not
//! logged.

use std::collections::HashMap;

use super::{Broker, BrokerError, Result};
use crate::{
    audit::{
        merkle::{NodeId, Nodes as _},
        tiles::{self, MAX_BUNDLE_ENTRY_BYTES},
    },
    clock::Timestamp,
    ledger::SignedCheckpoint,
    policy::Caller,
};

/// Hashes in a full tile, entries in a full bundle ([`tiles::TILE_WIDTH`]).
const TILE_WIDTH: u64 = tiles::TILE_WIDTH as u64;
/// An entry bundle read is logged at most this often per caller.
pub const BUNDLE_READ_LOG_EVERY_MS: i64 = 60_000;

/// When each caller's bundle read was last logged.
#[derive(Debug, Default)]
pub struct BundleReads(std::sync::Mutex<HashMap<String, Timestamp>>);

impl BundleReads {
    /// Whether a read by `who` at `now` is logged (and, if so, remembers it).
    fn due(&self, who: &str, now: Timestamp) -> bool {
        let mut last = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match last.get(who) {
            Some(t) if now.millis() - t.millis() < BUNDLE_READ_LOG_EVERY_MS => false,
            _ => {
                // Forget callers not seen for a window, so the map stays small.
                last.retain(|_, t| now.millis() - t.millis() < BUNDLE_READ_LOG_EVERY_MS);
                last.insert(who.to_owned(), now);
                true
            }
        }
    }

    /// Forgets `who`, so that its next read is logged (after a failed log write).
    fn forget(&self, who: &str) {
        let mut last = self.0.lock().unwrap_or_else(|p| p.into_inner());
        last.remove(who);
    }
}

/// Which part of the tree a tile request names, once its numbers are in range.
fn span(size: u64, level: u8, index: u64, width: u16) -> Result<(u8, u64)> {
    let missing = || {
        BrokerError::NotFound(format!(
            "the log has {size} entries: it has no tile at level {level}, index {index}{}",
            match u64::from(width) {
                TILE_WIDTH => String::new(),
                w => format!(", width {w}"),
            }
        ))
    };
    // Level L holds hashes of tree level 8L, which exist only below 2^64.
    let tree_level = level
        .checked_mul(8)
        .filter(|l| *l < 64)
        .ok_or_else(missing)?;
    let nodes = size >> tree_level;
    let start = index.checked_mul(TILE_WIDTH).ok_or_else(missing)?;
    let end = start.checked_add(u64::from(width)).ok_or_else(missing)?;
    if width == 0 || u64::from(width) > TILE_WIDTH || end > nodes {
        return Err(missing());
    }
    Ok((tree_level, start))
}

impl Broker {
    /// The newest durable signed checkpoint; NotFound for an empty log.
    pub fn tile_checkpoint(&self) -> Result<SignedCheckpoint> {
        self.ledger
            .latest_checkpoint()
            .ok_or_else(|| BrokerError::NotFound("the log has no checkpoint yet".into()))
    }

    /// Hash tile `level`/`index` of `width` hashes (256: a full tile), as
    /// served: the hashes concatenated, 32 bytes each.
    pub fn hash_tile(&self, level: u8, index: u64, width: u16) -> Result<Vec<u8>> {
        let (tree_level, start) = span(self.ledger.durable_size(), level, index, width)?;
        let mut out = Vec::with_capacity(usize::from(width) * 32);
        for i in start..start + u64::from(width) {
            let hash = self.ledger.node(NodeId {
                level: tree_level,
                index: i,
            })?;
            out.extend_from_slice(&hash);
        }
        Ok(out)
    }

    /// Entry bundle `index` of `width` entries (256: full), as served; the
    /// read is logged (see the module docs) before anything is returned.
    pub async fn entry_bundle(&self, caller: &Caller, index: u64, width: u16) -> Result<Vec<u8>> {
        let (_, start) = span(self.ledger.durable_size(), 0, index, width)?;
        let who = caller.actor().to_string();
        if self.bundle_reads.due(&who, self.clock.now()) {
            if let Err(e) = self.log_audit_read(caller, start, false, "tiles").await {
                self.bundle_reads.forget(&who);
                return Err(e);
            }
        }
        let mut out = Vec::new();
        let mut rows = self.ledger.entries_from(start);
        for seq in start..start + u64::from(width) {
            let entry = rows.next().transpose()?.ok_or_else(|| {
                BrokerError::Store(crate::ledger::LedgerError::Corrupt(format!(
                    "entry {seq} is missing from the log"
                )))
            })?;
            let bytes = entry.entry.encode();
            let len = u16::try_from(bytes.len()).map_err(|_| {
                BrokerError::FailedPrecondition(format!(
                    "entry {seq} is {} bytes, beyond the {MAX_BUNDLE_ENTRY_BYTES} an entry bundle \
                     frames; read it with GetEntries",
                    bytes.len()
                ))
            })?;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&bytes);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_exist_only_within_the_log() {
        // The spec's example: size 70 000 has 273 full level-0 tiles, a
        // partial one of width 112, one full level-1 tile, a partial of 17,
        // and a level-2 partial of width 1.
        let size = 70_000;
        assert!(span(size, 0, 272, 256).is_ok());
        assert!(span(size, 0, 273, 112).is_ok());
        assert!(span(size, 0, 273, 113).is_err());
        assert!(span(size, 0, 273, 256).is_err());
        assert!(span(size, 1, 0, 256).is_ok());
        assert!(span(size, 1, 1, 17).is_ok());
        assert!(span(size, 1, 1, 18).is_err());
        assert!(span(size, 2, 0, 1).is_ok());
        assert!(span(size, 2, 0, 2).is_err());
        assert!(span(size, 3, 0, 1).is_err());
        // Nonsense numbers are missing tiles, never an overflow.
        assert!(span(size, 8, 0, 1).is_err());
        assert!(span(size, 0, u64::MAX, 1).is_err());
        assert!(span(u64::MAX, 7, 0, 1).is_ok());
        assert!(span(size, 0, 0, 0).is_err());
        assert_eq!(span(size, 1, 1, 17).map_err(|_| ()), Ok((8, 256)));
    }

    #[test]
    fn bundle_reads_are_logged_once_per_window() {
        let reads = BundleReads::default();
        let t = Timestamp;
        assert!(reads.due("auditor/eve", t(0)));
        assert!(!reads.due("auditor/eve", t(59_999)));
        assert!(reads.due("staff/ada", t(1)));
        assert!(reads.due("auditor/eve", t(60_000)));
        reads.forget("auditor/eve");
        assert!(reads.due("auditor/eve", t(60_001)));
    }
}
