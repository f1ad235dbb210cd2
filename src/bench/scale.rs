//! `daypass bench scale`: the service at growing log sizes (see
//! `ScaleOptions`).

use std::path::PathBuf;

/// What `daypass bench scale` runs.
#[derive(Clone, Debug)]
pub struct ScaleOptions {
    /// Log sizes to measure at.
    pub sizes: Vec<u64>,
    /// Simultaneously active grants.
    pub grants: u64,
    pub dir: Option<PathBuf>,
}

/// Runs the scale benchmark and returns the report (Markdown).
pub async fn scale(opts: &ScaleOptions) -> Result<String, String> {
    Err(format!("not implemented yet ({opts:?})"))
}
