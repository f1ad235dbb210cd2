//! The server's own checks of its stored rows: the chain and Merkle tree
//! ([`check_chain`]) and the log's semantics ([`check_semantics`]) for
//! `audit check`, and the records against the log ([`verify_state`]) at
//! start-up.

use super::{
    ChainVerifier, Hash, Problem,
    merkle::{self, Nodes},
    state::{LogState, Mismatch, Rules},
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

/// The log's semantics ([`super::state`]) over the stored log, from seq 0 up
/// to the head at the start of the check: the first entry that contradicts
/// the entries before it, if any. Run after [`check_chain`] found the chain
/// intact.
pub fn check_semantics(ledger: &Ledger, rules: Rules) -> Result<Option<Problem>, LedgerError> {
    let end = ledger.head().next_seq;
    let mut state = LogState::new(rules);
    for item in ledger.entries_from(0).take(end as usize) {
        if let Err(c) = state.apply(&item?.entry) {
            return Ok(Some(Problem {
                seq: c.seq,
                kind: ProblemKind::Contradicted,
                detail: c.why,
            }));
        }
    }
    Ok(None)
}

/// The stored records against the log (at start-up, before anything is
/// decided from them): staff, tenants and grants must be exactly what the
/// log's entries make them, and the live and newest-grant indexes must
/// point where the log says. Returns every difference, with the entry that
/// last set each record. Entries that contradict the log are skipped here
/// (they change nothing) and reported by [`check_semantics`].
pub fn verify_state(ledger: &Ledger, rules: Rules) -> Result<Vec<Mismatch>, LedgerError> {
    let end = ledger.head().next_seq;
    let mut state = LogState::new(rules);
    let mut verifier = ChainVerifier::new();
    for item in ledger.entries_from(0).take(end as usize) {
        let entry = item?;
        // A log that is not intact vouches for nothing after the break.
        if let Err(p) = verifier.push(&entry, None) {
            return Ok(vec![Mismatch {
                record: "log".into(),
                seq: p.seq,
                why: format!("entry {} is {}: {}", p.seq, p.kind.as_str(), p.detail),
            }]);
        }
        let _ = state.apply(&entry.entry);
    }
    let grants = ledger.all_grants()?;
    let mut out = state.compare(&ledger.all_staff()?, &ledger.all_tenants()?, &grants);
    out.extend(state.compare_alerts(&ledger.all_alerts()?));
    let mut live: Vec<String> = ledger
        .live_grants()?
        .iter()
        .map(|g| g.id.to_string())
        .collect();
    let mut logged: Vec<String> = state.live_ids().iter().map(|id| id.to_string()).collect();
    live.sort();
    logged.sort();
    if live != logged {
        out.push(Mismatch {
            record: "index/live".into(),
            seq: 0,
            why: format!(
                "{} grants are indexed as live, the log says {}",
                live.len(),
                logged.len()
            ),
        });
    }
    for g in &grants {
        if let Some(id) = state.latest(&g.holder, &g.tenant) {
            let stored = ledger.latest_grant(&g.holder, &g.tenant)?;
            if stored.as_ref().map(|s| &s.id) != Some(id) {
                out.push(Mismatch {
                    record: format!("index/latest/{}/{}", g.holder, g.tenant),
                    seq: 0,
                    why: format!("the newest grant should be {id}"),
                });
            }
        }
    }
    out.dedup();
    Ok(out)
}
