//! The newest checkpoint this server has published, kept outside the data
//! directory (`log.published_checkpoint`). Every receipt, witness and
//! tenant feed has seen the log at least this far; a data directory whose
//! log is shorter, or whose tree at that size has another root, is older
//! than what was handed out (a restore from a backup, or a rewrite) and the
//! server fails closed on it until an operator has looked.
//!
//! The file holds the signed checkpoint note itself, so it is checked with
//! the log key like any other; it is replaced atomically (written beside,
//! then renamed), mode 0600.

use std::{io::Write as _, path::Path};

use super::{Ledger, LedgerError, SignedCheckpoint};

/// The checkpoint saved at `path`, if any.
pub fn load(path: &Path, ledger: &Ledger) -> Result<Option<SignedCheckpoint>, String> {
    let note = match std::fs::read_to_string(path) {
        Ok(n) => n,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    ledger
        .open_checkpoint(&note)
        .map(Some)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Why the ledger is older than `published`, or `None` when it holds it.
pub fn older_than(
    ledger: &Ledger,
    published: &SignedCheckpoint,
) -> Result<Option<String>, LedgerError> {
    let size = ledger.durable_size();
    if size < published.size {
        return Ok(Some(format!(
            "the log holds {size} entries but this server had published a checkpoint of {} \
             entries: the data directory is older than what receipts, witnesses and tenants \
             have seen (restored from a backup?)",
            published.size
        )));
    }
    match ledger.root_at(published.size)? {
        Ok(root) if root == published.root => Ok(None),
        _ => Ok(Some(format!(
            "the log's first {} entries do not hash to the root this server published: its \
             history was rewritten",
            published.size
        ))),
    }
}

/// Saves `cp` at `path` (atomically, mode 0600).
pub fn save(path: &Path, cp: &SignedCheckpoint) -> std::io::Result<()> {
    let tmp = path.with_extension("checkpoint.tmp");
    {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&tmp)?;
        f.write_all(cp.note.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}
