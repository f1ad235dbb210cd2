//! The audit log as a format: entry encoding and hashing ([`entry`]), chain
//! verification shared by the server and the offline verifier ([`verify`]),
//! the JSON Lines export ([`export`]) and the human timeline ([`replay`]).
//! The byte format is specified in `docs/log-format.md`.

pub mod entry;
pub mod export;
pub mod replay;
pub mod verify;

pub use entry::{Entry, Hash, SealedEntry};
pub use verify::{ChainVerifier, Problem};
