//! Chain verification, one entry at a time in constant memory. Used by the
//! server (`VerifyChain`) and by the offline `daypass audit verify`.
//!
//! Each entry is checked for: its stated hash matches its bytes (else
//! *modified*), its sequence number is the next one (else *deleted*,
//! *inserted* or *reordered*, told apart with one entry of look-ahead), and
//! its `prev_hash` is the previous entry's hash (else the chain is *broken*).

use std::fmt;

use super::entry::{GENESIS_PREV_HASH, Hash, SealedEntry};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProblemKind {
    /// The entry's content does not match its hash.
    Modified,
    /// One or more entries are missing before this one.
    Deleted,
    /// An entry appears that does not belong to the chain.
    Inserted,
    /// Entries are out of order.
    Reordered,
    /// The link to the previous entry does not hold.
    Broken,
    /// The entry could not be read at all.
    Malformed,
    /// The entries do not match the signed checkpoint they are checked
    /// against (not in its tree, or not hashing to its root).
    Unproven,
    /// The entry contradicts what the entries before it say (e.g. an
    /// access allowed on a grant the log shows revoked).
    Contradicted,
}

impl ProblemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::Modified => "modified",
            ProblemKind::Deleted => "deleted",
            ProblemKind::Inserted => "inserted",
            ProblemKind::Reordered => "reordered",
            ProblemKind::Broken => "broken",
            ProblemKind::Malformed => "malformed",
            ProblemKind::Unproven => "unproven",
            ProblemKind::Contradicted => "contradicted",
        }
    }
}

/// The first thing wrong with a chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The sequence number at which the chain first goes wrong.
    pub seq: u64,
    pub kind: ProblemKind,
    pub detail: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seq {}: {}: {}",
            self.seq,
            self.kind.as_str(),
            self.detail
        )
    }
}

impl std::error::Error for Problem {}

/// Walks a chain from its first entry (or from a trusted point).
#[derive(Clone, Debug)]
pub struct ChainVerifier {
    expected_seq: u64,
    prev_hash: Hash,
    checked: u64,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl ChainVerifier {
    /// Expects the chain to start at seq 0 with the genesis prev_hash.
    pub fn new() -> Self {
        Self::starting_at(0, GENESIS_PREV_HASH)
    }

    /// Resumes after a trusted entry (`seq - 1` with hash `prev_hash`).
    pub fn starting_at(seq: u64, prev_hash: Hash) -> Self {
        ChainVerifier {
            expected_seq: seq,
            prev_hash,
            checked: 0,
        }
    }

    pub fn checked(&self) -> u64 {
        self.checked
    }

    /// Hash of the last accepted entry (the head so far).
    pub fn head(&self) -> Hash {
        self.prev_hash
    }

    /// Next sequence number expected.
    pub fn expected_seq(&self) -> u64 {
        self.expected_seq
    }

    /// Checks `entry`; `next` is the entry after it, if any, used only to
    /// tell a swap from a deletion.
    pub fn push(&mut self, entry: &SealedEntry, next: Option<&SealedEntry>) -> Result<(), Problem> {
        let e = &entry.entry;
        let expected = self.expected_seq;
        if e.hash() != entry.hash {
            return Err(Problem {
                seq: e.seq,
                kind: ProblemKind::Modified,
                detail: "the entry's content does not match its hash".into(),
            });
        }
        if e.seq < expected {
            let (kind, detail) = if expected > 0 && e.seq == expected - 1 {
                (
                    ProblemKind::Inserted,
                    format!("a second entry with seq {} follows the first", e.seq),
                )
            } else {
                (
                    ProblemKind::Reordered,
                    format!(
                        "seq {} appears after seq {}",
                        e.seq,
                        expected.saturating_sub(1)
                    ),
                )
            };
            return Err(Problem {
                seq: e.seq,
                kind,
                detail,
            });
        }
        if e.seq > expected {
            let swapped = next.is_some_and(|n| n.entry.seq == expected);
            return Err(if swapped {
                Problem {
                    seq: expected,
                    kind: ProblemKind::Reordered,
                    detail: format!("seq {} appears before seq {expected}", e.seq),
                }
            } else {
                Problem {
                    seq: expected,
                    kind: ProblemKind::Deleted,
                    detail: if e.seq == expected + 1 {
                        format!("entry {expected} is missing")
                    } else {
                        format!("entries {expected}..={} are missing", e.seq - 1)
                    },
                }
            });
        }
        if e.prev_hash != self.prev_hash {
            return Err(Problem {
                seq: e.seq,
                kind: ProblemKind::Broken,
                detail: if expected == 0 {
                    "the first entry's prev_hash is not 32 zero bytes".into()
                } else {
                    format!(
                        "prev_hash does not match the hash of entry {} (an entry before it was inserted, removed or rewritten)",
                        expected - 1
                    )
                },
            });
        }
        self.prev_hash = entry.hash;
        self.expected_seq += 1;
        self.checked += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::{audit::Entry, clock::Timestamp};

    fn chain(n: u64) -> Vec<SealedEntry> {
        let mut prev = GENESIS_PREV_HASH;
        (0..n)
            .map(|seq| {
                let s = Entry {
                    seq,
                    timestamp: Timestamp(1_000 + seq as i64),
                    actor: "system".into(),
                    tenant: String::new(),
                    kind: "test".into(),
                    details: BTreeMap::from([("n".into(), seq.to_string())]),
                    sealed: None,
                    prev_hash: prev,
                }
                .seal();
                prev = s.hash;
                s
            })
            .collect()
    }

    fn verify(entries: &[SealedEntry]) -> Result<u64, Problem> {
        let mut v = ChainVerifier::new();
        for (i, e) in entries.iter().enumerate() {
            v.push(e, entries.get(i + 1))?;
        }
        Ok(v.checked())
    }

    #[test]
    fn intact_chain_verifies() {
        assert_eq!(verify(&chain(10)), Ok(10));
    }

    #[test]
    fn each_tampering_is_named() {
        let good = chain(10);

        let mut modified = good.clone();
        modified[4].entry.actor = "staff/mallory".into();
        assert_eq!(verify(&modified).unwrap_err().kind, ProblemKind::Modified);

        let mut deleted = good.clone();
        deleted.remove(4);
        let p = verify(&deleted).unwrap_err();
        assert_eq!((p.seq, p.kind), (4, ProblemKind::Deleted));

        let mut swapped = good.clone();
        swapped.swap(4, 5);
        let p = verify(&swapped).unwrap_err();
        assert_eq!((p.seq, p.kind), (4, ProblemKind::Reordered));

        let mut inserted = good.clone();
        let mut forged = good[4].entry.clone();
        forged.actor = "staff/mallory".into();
        inserted.insert(5, forged.seal());
        let p = verify(&inserted).unwrap_err();
        assert_eq!((p.seq, p.kind), (4, ProblemKind::Inserted));

        let mut relinked = good.clone();
        let mut e = relinked[4].entry.clone();
        e.prev_hash = [9; 32];
        relinked[4] = e.seal();
        assert_eq!(verify(&relinked).unwrap_err().kind, ProblemKind::Broken);
    }
}
