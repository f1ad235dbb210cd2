//! `daypass bench`: measurements reported in docs/performance.md, each
//! figure beside the limit that bounds it, measured in the same run.
//!
//! * [`tree`]: the log's Merkle tree in a real store, at growing sizes;
//! * [`service`]: the real server over real mutual TLS under concurrent
//!   load, with its baselines (an empty RPC, raw sled, SHA-256, Ed25519).

pub mod service;
mod tree;

pub use service::{ServiceOptions, service};
pub use tree::{TreeOptions, tree};
