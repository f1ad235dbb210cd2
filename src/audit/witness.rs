//! An auditor's witness: it remembers every checkpoint it accepted and, each
//! time it runs, accepts the log's newest checkpoint only if the log proves
//! it extends the last one accepted. Otherwise it raises an alarm that names
//! what happened:
//!
//! * **truncated**: the log is now smaller than the tree this witness
//!   accepted: entries were removed from its tail;
//! * **rolled back**: the log is at least as large as before but no longer
//!   extends the last accepted tree, while it does extend an earlier one:
//!   the store went back to an earlier state (e.g. restored from a backup)
//!   and grew again from there;
//! * **forked**: the log extends none of the trees this witness accepted:
//!   its history was rewritten (e.g. one entry changed and every later hash
//!   recomputed, even with the log's own key), or this witness is shown a
//!   different log than others.
//!
//! A **declared restore** is not an alarm: a store restored from a backup
//! with `daypass restore` logs `store.restored` as the first entry after
//! the restored log, naming the size and root of the newest checkpoint the
//! server had published (what was lost). The log names that entry
//! (`GetCheckpoint`'s `restore_seq`); the witness checks its inclusion in
//! the new tree, that it declares the loss of everything this witness saw
//! beyond the restored size, and that the restored log still extends the
//! newest tree this witness accepted within it; then it accepts the new
//! checkpoint and says loudly what was lost ([`Outcome::Restored`]). An
//! undeclared restore, or one that does not hold up, stays an alarm.
//!
//! The first run trusts the checkpoint it sees (trust on first use); after
//! that nothing but a valid consistency proof moves the witness forward.
//! State is a JSON Lines file of accepted checkpoints, appended to; keep it
//! where the server's operators cannot write (docs/operations.md).

use std::{
    fs,
    io::{self, BufRead, Write},
    path::Path,
};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::{
    Entry, Hash,
    merkle::{leaf_hash, verify_consistency, verify_inclusion},
    note::{Checkpoint, NoteError, NoteVerifier},
};

/// What a witness asks the log for.
#[allow(async_fn_in_trait)]
pub trait LogSource {
    /// A consistency proof from the tree of `old` entries to that of `new`.
    async fn consistency(&mut self, old: u64, new: u64) -> Result<Vec<Hash>, WitnessError>;
    /// The entry at `seq` and its inclusion proof in the tree of `size`.
    async fn entry_with_proof(
        &mut self,
        seq: u64,
        size: u64,
    ) -> Result<(Entry, Vec<Hash>), WitnessError>;
}

/// How many declared restores a witness walks back through.
const MAX_RESTORES: usize = 16;

/// One checkpoint the witness accepted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    /// RFC 3339, when the witness accepted it.
    pub accepted_at: String,
    pub size: u64,
    /// The signed note, as received.
    pub note: String,
}

/// The accepted checkpoints, oldest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    pub accepted: Vec<Accepted>,
}

#[derive(Debug, Error)]
pub enum WitnessError {
    #[error("witness state {path}: {why}")]
    State { path: String, why: String },
    #[error("the log's checkpoint is not acceptable: {0}")]
    Checkpoint(#[from] NoteError),
    #[error("cannot get a proof from the log: {0}")]
    Fetch(String),
}

/// What one run concluded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// First run: the checkpoint is trusted as seen.
    First { size: u64 },
    /// Same tree as last time.
    Unchanged { size: u64 },
    /// The log grew and proved it extends the last accepted tree.
    Extended { from: u64, to: u64 },
    /// Alarm: see the module docs.
    Truncated {
        accepted: u64,
        accepted_at: String,
        now: u64,
        /// The largest earlier accepted tree the log still extends, if any.
        still_extends: Option<u64>,
    },
    /// Alarm: see the module docs.
    RolledBack {
        accepted: u64,
        accepted_at: String,
        now: u64,
        extends: u64,
        extends_accepted_at: String,
    },
    /// Alarm: see the module docs.
    Forked {
        accepted: u64,
        accepted_at: String,
        now: u64,
    },
    /// A declared restore (see the module docs): accepted, not an alarm,
    /// but entries `restored_size..lost_size` the log once held are gone.
    Restored {
        accepted: u64,
        accepted_at: String,
        now: u64,
        restored_size: u64,
        lost_size: u64,
        snapshot_taken_at: String,
    },
}

impl Outcome {
    pub fn is_alarm(&self) -> bool {
        matches!(
            self,
            Outcome::Truncated { .. } | Outcome::RolledBack { .. } | Outcome::Forked { .. }
        )
    }

    /// `truncated`, `rolled-back`, `forked`, `restored` or `ok`.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Truncated { .. } => "truncated",
            Outcome::RolledBack { .. } => "rolled-back",
            Outcome::Forked { .. } => "forked",
            Outcome::Restored { .. } => "restored",
            _ => "ok",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::First { size } => write!(
                f,
                "first checkpoint accepted (trust on first use): {size} entries"
            ),
            Outcome::Unchanged { size } => write!(f, "unchanged at {size} entries"),
            Outcome::Extended { from, to } => write!(
                f,
                "the log grew from {from} to {to} entries and proved it kept every earlier one"
            ),
            Outcome::Truncated {
                accepted,
                accepted_at,
                now,
                still_extends,
            } => {
                write!(
                    f,
                    "ALARM truncated: the log now has {now} entries, fewer than the {accepted} \
                     this witness accepted at {accepted_at}; entries were removed from its tail"
                )?;
                match still_extends {
                    Some(s) => write!(f, " (its first {s} entries still match)"),
                    None => Ok(()),
                }
            }
            Outcome::RolledBack {
                accepted,
                accepted_at,
                now,
                extends,
                extends_accepted_at,
            } => write!(
                f,
                "ALARM rolled back: the log ({now} entries) no longer extends the {accepted} \
                 entries accepted at {accepted_at}, but does extend the {extends} accepted at \
                 {extends_accepted_at}: it went back to that state (e.g. restored from a backup) \
                 and grew again"
            ),
            Outcome::Restored {
                accepted,
                accepted_at,
                now,
                restored_size,
                lost_size,
                snapshot_taken_at,
            } => write!(
                f,
                "DECLARED RESTORE: the log was restored from a backup taken at {snapshot_taken_at} \
                 and declares it in its entry {restored_size}; entries {restored_size} to {} it held \
                 are lost (this witness had accepted {accepted} at {accepted_at}); it now has {now} \
                 entries and extends what this witness accepted up to the restored size",
                lost_size.saturating_sub(1)
            ),
            Outcome::Forked {
                accepted,
                accepted_at,
                now,
            } => write!(
                f,
                "ALARM forked: the log ({now} entries) extends none of the trees this witness \
                 accepted (last: {accepted} entries at {accepted_at}): its history was rewritten"
            ),
        }
    }
}

impl History {
    /// Reads a state file; a missing file is an empty history.
    pub fn load(path: &Path) -> Result<History, WitnessError> {
        let err = |why: String| WitnessError::State {
            path: path.display().to_string(),
            why,
        };
        let file = match fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(History::default()),
            Err(e) => return Err(err(e.to_string())),
        };
        let mut accepted = Vec::new();
        for (i, line) in io::BufReader::new(file).lines().enumerate() {
            let line = line.map_err(|e| err(e.to_string()))?;
            if line.trim().is_empty() {
                continue;
            }
            let a: Accepted =
                serde_json::from_str(&line).map_err(|e| err(format!("line {}: {e}", i + 1)))?;
            accepted.push(a);
        }
        if accepted.is_empty() {
            // A witness writes its state only once it has accepted a
            // checkpoint: an empty file was emptied, and treating it as a
            // first run would accept whatever the log shows now.
            return Err(err(
                "the file exists but holds no accepted checkpoint (was it emptied?); delete it only \
                 if you mean to start over, trusting the log's current checkpoint again"
                    .into(),
            ));
        }
        Ok(History { accepted })
    }

    /// Appends one accepted checkpoint to the state file (and syncs it).
    pub fn append(path: &Path, a: &Accepted) -> Result<(), WitnessError> {
        let err = |e: io::Error| WitnessError::State {
            path: path.display().to_string(),
            why: e.to_string(),
        };
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(err)?;
        let mut line = serde_json::to_string(a).map_err(|e| err(io::Error::other(e)))?;
        line.push('\n');
        f.write_all(line.as_bytes()).map_err(err)?;
        f.sync_all().map_err(err)
    }

    pub fn last(&self) -> Option<&Accepted> {
        self.accepted.last()
    }
}

/// Most earlier checkpoints tried when the last one is not extended.
const MAX_EARLIER: usize = 64;

/// One witness run. `note` is the log's newest checkpoint and
/// `restore_seq` the newest `store.restored` entry the log names (if any);
/// `log` fetches proofs and entries. Returns the outcome and, when the
/// checkpoint is to be accepted, the record to append.
pub async fn run(
    history: &History,
    note: &str,
    restore_seq: Option<u64>,
    verifiers: &[NoteVerifier],
    accepted_at: &str,
    log: &mut impl LogSource,
) -> Result<(Outcome, Option<Accepted>), WitnessError> {
    let new = Checkpoint::open_any(note, verifiers)?;
    let record = Accepted {
        accepted_at: accepted_at.to_owned(),
        size: new.size,
        note: note.to_owned(),
    };
    let Some(last) = history.last() else {
        return Ok((Outcome::First { size: new.size }, Some(record)));
    };
    let old = parse_accepted(last, verifiers)?;
    if old.size == new.size && old.root == new.root {
        return Ok((Outcome::Unchanged { size: new.size }, None));
    }
    if new.size > old.size {
        let proof = log.consistency(old.size, new.size).await?;
        if verify_consistency(old.size, new.size, &old.root, &new.root, &proof).is_ok() {
            return Ok((
                Outcome::Extended {
                    from: old.size,
                    to: new.size,
                },
                Some(record),
            ));
        }
    }
    // Not an extension of the last accepted tree: which earlier one does
    // the log still extend, if any?
    let mut extends = None;
    let earlier = history.accepted[..history.accepted.len() - 1]
        .iter()
        .rev()
        .filter(|a| a.size <= new.size && a.size < old.size)
        .take(MAX_EARLIER);
    for a in earlier {
        let cp = parse_accepted(a, verifiers)?;
        let proof = if cp.size == new.size || cp.size == 0 {
            Vec::new()
        } else {
            log.consistency(cp.size, new.size).await?
        };
        if verify_consistency(cp.size, new.size, &cp.root, &new.root, &proof).is_ok() {
            extends = Some(a);
            break;
        }
    }
    if let Some(seq) = restore_seq {
        let declared = declared_restore(history, &old, seq, &new, verifiers, log).await?;
        if let Some((restored_size, lost_size, snapshot_taken_at)) = declared {
            return Ok((
                Outcome::Restored {
                    accepted: old.size,
                    accepted_at: last.accepted_at.clone(),
                    now: new.size,
                    restored_size,
                    lost_size,
                    snapshot_taken_at,
                },
                Some(record),
            ));
        }
    }
    let outcome = if new.size < old.size {
        Outcome::Truncated {
            accepted: old.size,
            accepted_at: last.accepted_at.clone(),
            now: new.size,
            still_extends: extends.map(|a| a.size),
        }
    } else if let Some(a) = extends {
        Outcome::RolledBack {
            accepted: old.size,
            accepted_at: last.accepted_at.clone(),
            now: new.size,
            extends: a.size,
            extends_accepted_at: a.accepted_at.clone(),
        }
    } else {
        Outcome::Forked {
            accepted: old.size,
            accepted_at: last.accepted_at.clone(),
            now: new.size,
        }
    };
    Ok((outcome, None))
}

/// The declared restore that explains why the log no longer extends `old`
/// (the last accepted tree), if one does: walking back from the entry at
/// `seq`, a `store.restored` entry included in `new` whose restored size
/// is below `old`'s, whose declared loss covers `old` (with its root when
/// it names the same size), and below which the log still extends the
/// newest tree this witness accepted. Returns (restored size, lost size,
/// when the backup was taken).
async fn declared_restore(
    history: &History,
    old: &Checkpoint,
    seq: u64,
    new: &Checkpoint,
    verifiers: &[NoteVerifier],
    log: &mut impl LogSource,
) -> Result<Option<(u64, u64, String)>, WitnessError> {
    let mut next = Some(seq);
    for _ in 0..MAX_RESTORES {
        let Some(seq) = next.take() else { break };
        if seq >= new.size {
            break;
        }
        let (entry, proof) = log.entry_with_proof(seq, new.size).await?;
        if entry.seq != seq
            || entry.kind != crate::domain::EventKind::StoreRestored.as_str()
            || verify_inclusion(
                &leaf_hash(&entry.encode()),
                seq,
                new.size,
                &proof,
                &new.root,
            )
            .is_err()
        {
            return Ok(None);
        }
        let num = |k: &str| entry.details.get(k).and_then(|v| v.parse::<u64>().ok());
        next = num(crate::domain::detail::PREVIOUS_RESTORE);
        let (Some(restored), Some(lost)) = (
            num(crate::domain::detail::RESTORED_SIZE),
            num(crate::domain::detail::LOST_SIZE),
        ) else {
            return Ok(None);
        };
        if restored != seq || old.size <= restored || old.size > lost {
            continue;
        }
        let lost_root = entry
            .details
            .get(crate::domain::detail::LOST_ROOT)
            .map(String::as_str)
            .unwrap_or_default();
        if old.size == lost && !lost_root.is_empty() && lost_root != hex::encode(old.root) {
            continue;
        }
        // The restored log must still hold what this witness accepted
        // within it.
        let within = history
            .accepted
            .iter()
            .rev()
            .filter(|a| a.size <= restored)
            .find_map(|a| parse_accepted(a, verifiers).ok());
        if let Some(cp) = within {
            let proof = if cp.size == 0 || cp.size == new.size {
                Vec::new()
            } else {
                log.consistency(cp.size, new.size).await?
            };
            if verify_consistency(cp.size, new.size, &cp.root, &new.root, &proof).is_err() {
                return Ok(None);
            }
        }
        let taken = entry
            .details
            .get(crate::domain::detail::SNAPSHOT_TAKEN_AT)
            .cloned()
            .unwrap_or_default();
        return Ok(Some((restored, lost, taken)));
    }
    Ok(None)
}

fn parse_accepted(a: &Accepted, verifiers: &[NoteVerifier]) -> Result<Checkpoint, WitnessError> {
    Checkpoint::open_any(&a.note, verifiers).map_err(|e| WitnessError::State {
        path: "(history)".into(),
        why: format!(
            "the checkpoint accepted at {} no longer verifies with this key: {e}",
            a.accepted_at
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{
        merkle::{MemoryTree, consistency_proof},
        note::LogKey,
    };

    struct Log {
        key: LogKey,
        tree: MemoryTree,
    }

    impl Log {
        fn new(key: &LogKey) -> Log {
            Log {
                key: LogKey::parse(&key.to_private()).unwrap(),
                tree: MemoryTree::new(),
            }
        }
        fn grow(&mut self, n: u32, tag: &str) {
            for i in 0..n {
                self.tree.push_entry(format!("{tag}{i}").as_bytes());
            }
        }
        fn note(&self) -> String {
            let cp = Checkpoint {
                origin: self.key.name().into(),
                size: self.tree.size(),
                root: self.tree.root(),
            };
            self.key.sign(&cp.to_text()).unwrap()
        }
    }

    impl LogSource for &Log {
        async fn consistency(&mut self, o: u64, n: u64) -> Result<Vec<Hash>, WitnessError> {
            Ok(consistency_proof(o, n, &self.tree).unwrap().unwrap())
        }
        async fn entry_with_proof(
            &mut self,
            _: u64,
            _: u64,
        ) -> Result<(Entry, Vec<Hash>), WitnessError> {
            Err(WitnessError::Fetch("these logs hold no entries".into()))
        }
    }

    async fn step(h: &mut History, log: &Log, v: &NoteVerifier) -> Outcome {
        let (outcome, rec) = run(
            h,
            &log.note(),
            None,
            std::slice::from_ref(v),
            "t",
            &mut &*log,
        )
        .await
        .unwrap();
        if let Some(r) = rec {
            h.accepted.push(r);
        }
        outcome
    }

    #[tokio::test]
    async fn each_kind_of_tampering_is_named() {
        let key = LogKey::generate("w.test/log").unwrap();
        let v = key.verifier();
        let mut h = History::default();
        let mut log = Log::new(&key);
        log.grow(5, "a");
        assert_eq!(step(&mut h, &log, &v).await, Outcome::First { size: 5 });
        assert_eq!(step(&mut h, &log, &v).await, Outcome::Unchanged { size: 5 });
        let backup = log.tree.clone();
        log.grow(7, "b");
        assert_eq!(
            step(&mut h, &log, &v).await,
            Outcome::Extended { from: 5, to: 12 }
        );

        // Truncated: the same first 9 entries, the rest gone.
        let mut cut = Log::new(&key);
        cut.grow(5, "a");
        cut.grow(4, "b");
        assert!(matches!(
            step(&mut h.clone(), &cut, &v).await,
            Outcome::Truncated {
                accepted: 12,
                now: 9,
                still_extends: Some(5),
                ..
            }
        ));

        // Rolled back: restored to the 5-entry backup, then grew past 12.
        let mut restored = Log {
            key: LogKey::parse(&key.to_private()).unwrap(),
            tree: backup,
        };
        restored.grow(10, "c");
        assert!(matches!(
            step(&mut h.clone(), &restored, &v).await,
            Outcome::RolledBack {
                accepted: 12,
                now: 15,
                extends: 5,
                ..
            }
        ));

        // Forked: entry 2 rewritten, everything recomputed and re-signed.
        let mut forked = Log::new(&key);
        forked.grow(2, "a");
        forked.grow(1, "X");
        forked.grow(20, "d");
        assert!(matches!(
            step(&mut h.clone(), &forked, &v).await,
            Outcome::Forked {
                accepted: 12,
                now: 23,
                ..
            }
        ));

        // A checkpoint signed by another key is refused outright.
        let other = LogKey::generate("w.test/log").unwrap();
        let mut impostor = Log::new(&other);
        impostor.grow(30, "z");
        let r = run(
            &h,
            &impostor.note(),
            None,
            std::slice::from_ref(&v),
            "t",
            &mut &impostor,
        )
        .await;
        assert!(matches!(r, Err(WitnessError::Checkpoint(_))));
        // ...and the honest log still extends what was accepted.
        log.grow(1, "e");
        assert_eq!(
            step(&mut h, &log, &v).await,
            Outcome::Extended { from: 12, to: 13 }
        );
    }
}
