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

    /// A stored checkpoint, read back: its signature must verify with the
    /// ledger's key, or the stored data was changed.
    pub fn open(note: &str, verifier: &NoteVerifier) -> Result<SignedCheckpoint, LedgerError> {
        let cp = Checkpoint::open(note, verifier).map_err(|e| {
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
