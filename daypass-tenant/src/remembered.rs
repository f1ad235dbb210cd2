//! What a [`crate::verifier::Verifier`] remembers across restarts: the
//! newest revocation list it took (its sequence number and signing time)
//! and every grant it has seen revoked, each until its own expiry. With it,
//! a broker restored from an older backup cannot re-admit anyone: its lists
//! are older than the one remembered (refused, so the verifier goes stale
//! and admits nobody), and when its log has grown past that point again, a
//! grant the tenant saw revoked stays revoked until it expires.
//!
//! The file is JSON, replaced atomically (written beside, then renamed),
//! mode 0600. Only the tenant's own host writes it: it is not signed.

use std::{
    collections::BTreeMap,
    io::Write as _,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Why the remembered state could not be read or kept.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("revocation state {path}: {why}")]
pub struct StateError {
    pub path: PathBuf,
    pub why: String,
}

/// The remembered state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Remembered {
    /// The newest list's sequence number and `iat` (ms).
    pub seq: u64,
    /// The newest list's restore epoch (absent in files written before).
    #[serde(default)]
    pub epoch: u64,
    pub signed_at_ms: i64,
    /// Grant id → its expiry (ms): revoked until then, whatever later
    /// lists say.
    pub revoked: BTreeMap<String, i64>,
}

impl Remembered {
    /// The state at `path`; `None` when there is no file yet.
    pub fn load(path: &Path) -> Result<Option<Remembered>, StateError> {
        let err = |why: String| StateError {
            path: path.to_owned(),
            why,
        };
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| err(format!("not a revocation state file ({e})"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(err(e.to_string())),
        }
    }

    /// Writes the state to `path`, atomically, readable by its owner only.
    pub fn save(&self, path: &Path) -> Result<(), StateError> {
        let err = |e: std::io::Error| StateError {
            path: path.to_owned(),
            why: e.to_string(),
        };
        let tmp = path.with_extension("tmp");
        {
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut f = opts.open(&tmp).map_err(err)?;
            let bytes = serde_json::to_vec(self).map_err(|e| StateError {
                path: path.to_owned(),
                why: e.to_string(),
            })?;
            f.write_all(&bytes).map_err(err)?;
            f.sync_all().map_err(err)?;
        }
        std::fs::rename(&tmp, path).map_err(err)
    }
}
