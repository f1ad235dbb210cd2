//! The audit log as a format: entry encoding and hashing ([`entry`]), chain
//! verification shared by the server and the offline verifier ([`verify`]),
//! the JSON Lines export ([`export`]), the human timeline ([`replay`]), the
//! RFC 6962 Merkle tree over the entries ([`merkle`]) and signed
//! checkpoints of it ([`note`]), witnessing ([`witness`]) and the server's
//! own re-check of its stored rows ([`check`]); the log's semantics, replayed
//! ([`state`]); the log as a C2SP tlog-tiles tree ([`tiles`]).
//! The byte format is specified in `docs/log-format.md`.

pub mod check;
pub mod entry;
pub mod export;
pub mod merkle;
pub mod note;
pub mod replay;
pub mod report;
pub mod seal;
pub mod state;
pub mod tiles;
pub mod verify;
pub mod witness;

pub use entry::{Entry, Hash, SealedEntry};
pub use verify::{ChainVerifier, Problem};
