//! `daypass bench`: measurements reported in docs/performance.md, each
//! figure beside the limit that bounds it, measured in the same run.
//!
//! * [`tree`]: the log's Merkle tree in a real store, at growing sizes;
//! * [`service`]: the real server over real mutual TLS under concurrent
//!   load, with its baselines (an empty RPC, raw sled, SHA-256, Ed25519);
//! * [`scale`]: the server process at 10^4 … 10^7 log entries and 10^5
//!   active grants: start-up, memory, disk, append and verify rates;
//! * [`verify`]: a tenant's offline decision (grant token, grant
//!   certificate) beside raw Ed25519 verification.

pub mod scale;
pub mod service;
mod tree;
pub mod verify;

pub use scale::{ScaleOptions, scale};
pub use service::{ServiceOptions, service};
pub use tree::{TreeOptions, tree};
pub use verify::{VerifyOptions, verify};
