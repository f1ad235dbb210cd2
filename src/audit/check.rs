//! `audit check` on the server: the stored chain and Merkle tree,
//! re-verified from the ledger's own rows.

use super::{
    ChainVerifier, Hash, Problem,
    merkle::{self, Nodes},
    verify::ProblemKind,
};
use crate::ledger::{Ledger, LedgerError};

/// What a server-side chain verification found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainReport {
    pub checked: u64,
    pub head: Hash,
    pub problem: Option<Problem>,
}

/// The stored chain, checked from seq 0 up to the head at the start of the
/// check: every stored hash recomputed, every link and sequence number, the
/// last hash against the recorded head, and every stored Merkle tree node
/// against the node computed from the entries.
pub fn check_chain(ledger: &Ledger) -> Result<ChainReport, LedgerError> {
    let head = ledger.head();
    let end = head.next_seq;
    let mut verifier = ChainVerifier::new();
    let mut tree = merkle::Frontier::new();
    let mut entries = ledger.entries_from(0).take(end as usize).peekable();
    let mut problem = None;
    while let Some(item) = entries.next() {
        let entry = match item {
            Ok(e) => e,
            Err(e) => {
                problem = Some(Problem {
                    seq: verifier.expected_seq(),
                    kind: ProblemKind::Malformed,
                    detail: e.to_string(),
                });
                break;
            }
        };
        let next = entries.peek().and_then(|n| n.as_ref().ok());
        if let Err(p) = verifier.push(&entry, next) {
            problem = Some(p);
            break;
        }
        // Every stored node the entry completes must be the one computed.
        let seq = entry.entry.seq;
        for (id, h) in tree.push(merkle::leaf_hash(&entry.entry.encode())) {
            if problem.is_none() && ledger.node(id).ok() != Some(h) {
                problem = Some(Problem {
                    seq,
                    kind: ProblemKind::Unproven,
                    detail: format!(
                        "the stored Merkle tree node {}/{} does not match the entries: \
                         its nodes or the entries were changed",
                        id.level, id.index
                    ),
                });
            }
        }
        if problem.is_some() {
            break;
        }
    }
    if problem.is_none() && verifier.checked() != end {
        problem = Some(Problem {
            seq: verifier.expected_seq(),
            kind: ProblemKind::Deleted,
            detail: format!(
                "the log ends at {} but its head says {end}",
                verifier.expected_seq()
            ),
        });
    }
    if problem.is_none() && verifier.head() != head.prev_hash {
        problem = Some(Problem {
            seq: end.saturating_sub(1),
            kind: ProblemKind::Modified,
            detail: "the last entry's hash differs from the recorded head".into(),
        });
    }
    Ok(ChainReport {
        checked: verifier.checked(),
        head: verifier.head(),
        problem,
    })
}
