//! `daypass bench`: measurements reported in docs/performance.md.
//!
//! `tree`: the log's Merkle tree in a real sled store.

use std::path::PathBuf;

/// What `daypass bench tree` measures.
#[derive(Clone, Debug)]
pub struct TreeOptions {
    pub sizes: Vec<u64>,
    pub proofs: usize,
    pub dir: Option<PathBuf>,
}

/// Runs the tree benchmark and returns the report (Markdown).
pub async fn tree(opts: &TreeOptions) -> Result<String, String> {
    Err(format!("not implemented yet ({opts:?})"))
}
