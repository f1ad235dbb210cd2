//! Checkpoints and receipts: the ledger signs a checkpoint of the tree at
//! the end of every group with a [`CheckpointSigner`] it is handed (it owns
//! no keys), and every acknowledged write gets a [`Receipt`] holding one.
//!
//! The note format is [`crate::audit::note`]'s; stored checkpoints are read
//! back through it (and their signature checked), never re-parsed here.

use std::sync::Arc;

use crate::audit::{
    Hash,
    merkle::Frontier,
    note::{Checkpoint, LogKey, NoteError, NoteVerifier},
};

use super::LedgerError;

/// Signs checkpoint notes for the ledger. The log key implements it; an
/// installation with its key elsewhere (a KMS, an HSM) implements it there.
pub trait CheckpointSigner: Send + Sync {
    /// The log's origin (its key name), the first line of every checkpoint.
    fn origin(&self) -> &str;
    /// A signed note of `text`.
    fn sign(&self, text: &str) -> Result<String, NoteError>;
    /// The verifier key of the signatures it makes.
    fn verifier(&self) -> NoteVerifier;
    /// Every key a stored checkpoint of this log may be signed by: the
    /// signing key, and during and after a rotation the next and the
    /// retired keys (checkpoints signed before the rotation stay
    /// readable).
    fn verifiers(&self) -> Vec<NoteVerifier> {
        vec![self.verifier()]
    }
}

impl CheckpointSigner for LogKey {
    fn origin(&self) -> &str {
        self.name()
    }

    fn sign(&self, text: &str) -> Result<String, NoteError> {
        LogKey::sign(self, text)
    }

    fn verifier(&self) -> NoteVerifier {
        LogKey::verifier(self)
    }
}

/// The log key during a rotation ([`crate::config::LogSettings`]): the
/// current key signs every checkpoint, the next key (announced, not yet
/// current) countersigns it, so witnesses and tenants that already hold the
/// next key's public half move over without a gap; retired keys only
/// verify checkpoints stored before they were retired. All share one name,
/// the log's origin.
pub struct RotatingLogKey {
    current: LogKey,
    next: Option<LogKey>,
    retired: Vec<NoteVerifier>,
}

impl RotatingLogKey {
    /// Checks that every key names the same log and no key appears twice.
    pub fn new(
        current: LogKey,
        next: Option<LogKey>,
        retired: Vec<NoteVerifier>,
    ) -> Result<RotatingLogKey, String> {
        let origin = current.name().to_owned();
        let mut seen = vec![current.verifier()];
        let names = next
            .iter()
            .map(|k| ("the next signing key", k.verifier()))
            .chain(retired.iter().map(|v| ("a retired key", v.clone())));
        for (what, v) in names {
            if v.name() != origin {
                return Err(format!(
                    "{what} is for log {:?}, not {origin:?}: every key of a log has its origin as its name (make the new key with `daypass certs log-key --origin {origin}`)",
                    v.name()
                ));
            }
            if seen.contains(&v) {
                return Err(format!(
                    "{what} ({}+{}) is already one of this log's keys",
                    v.name(),
                    hex::encode(v.key_id())
                ));
            }
            seen.push(v);
        }
        Ok(RotatingLogKey {
            current,
            next,
            retired,
        })
    }

    /// The announced next key's verifier, if a rotation is under way.
    pub fn next_verifier(&self) -> Option<NoteVerifier> {
        self.next.as_ref().map(LogKey::verifier)
    }

    pub fn retired(&self) -> &[NoteVerifier] {
        &self.retired
    }
}

impl CheckpointSigner for RotatingLogKey {
    fn origin(&self) -> &str {
        self.current.name()
    }

    fn sign(&self, text: &str) -> Result<String, NoteError> {
        let mut keys = vec![&self.current];
        keys.extend(self.next.as_ref());
        crate::audit::note::sign_all(&keys, text)
    }

    fn verifier(&self) -> NoteVerifier {
        self.current.verifier()
    }

    fn verifiers(&self) -> Vec<NoteVerifier> {
        let mut v = vec![self.current.verifier()];
        v.extend(self.next_verifier());
        v.extend(self.retired.iter().cloned());
        v
    }
}

/// A signed checkpoint with its parsed body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedCheckpoint {
    pub size: u64,
    pub root: Hash,
    pub note: Arc<str>,
}

impl SignedCheckpoint {
    /// Signs a checkpoint of the tree whose right edge is `frontier`.
    pub fn sign(
        signer: &dyn CheckpointSigner,
        frontier: &Frontier,
    ) -> Result<SignedCheckpoint, LedgerError> {
        let cp = Checkpoint {
            origin: signer.origin().to_owned(),
            size: frontier.size(),
            root: frontier.root(),
        };
        let note = signer
            .sign(&cp.to_text())
            .map_err(|e| LedgerError::Unavailable(format!("cannot sign a checkpoint: {e}")))?;
        Ok(SignedCheckpoint {
            size: cp.size,
            root: cp.root,
            note: Arc::from(note),
        })
    }

    /// A stored checkpoint, read back: its signature must verify with one
    /// of the ledger's keys, or the stored data was changed.
    pub fn open(note: &str, verifiers: &[NoteVerifier]) -> Result<SignedCheckpoint, LedgerError> {
        let cp = Checkpoint::open_any(note, verifiers).map_err(|e| {
            LedgerError::Corrupt(format!("a stored checkpoint does not verify: {e}"))
        })?;
        Ok(SignedCheckpoint {
            size: cp.size,
            root: cp.root,
            note: Arc::from(note),
        })
    }
}

/// What a caller gets for a write: the last entry its call appended and a
/// signed checkpoint of a tree that includes it, so it can later demand an
/// inclusion proof and hold the log to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    pub seq: u64,
    /// `SHA-256(0x00 ‖ entry bytes)`, the entry's leaf in the tree.
    pub leaf_hash: Hash,
    /// The signed note of the tree as of the end of this entry's group.
    pub checkpoint: Arc<str>,
}
