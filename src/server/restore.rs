//! A declared restore at start-up: `daypass restore` leaves
//! [`DECLARATION_FILE`] in the data directory it verified and wrote; the
//! next start logs `store.restored` as the first entry after the restored
//! log (naming the newest checkpoint this server had published, whose
//! entries past the backup are lost), saves the new checkpoint as the
//! published one, and removes the declaration. Without a declaration, a
//! data directory older than the published checkpoint still fails closed
//! (`super::restored`).

use std::path::Path;

use super::ServerError;
use crate::{
    ledger::backup::{DECLARATION_FILE, Declaration},
    service::Broker,
};

/// The declaration in `dir`, if a restore left one.
pub(super) fn declaration(dir: &Path) -> Result<Option<Declaration>, ServerError> {
    let path = dir.join(DECLARATION_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(ServerError::Published(format!(
                "cannot read {}: {e}",
                path.display()
            )));
        }
    };
    serde_json::from_str(&text).map(Some).map_err(|e| {
        ServerError::Published(format!(
            "{} is not a restore declaration ({e}); it is written by `daypass restore`",
            path.display()
        ))
    })
}

/// Logs the declared restore, publishes its checkpoint and removes the
/// declaration (in that order: a crash in between logs it again at the
/// next start only if the entry did not become durable).
pub(super) async fn declare(
    broker: &Broker,
    declaration: &Declaration,
    dir: &Path,
    published_path: &Path,
) -> Result<(), ServerError> {
    let ledger = broker.ledger();
    if already_declared(broker, declaration) {
        // A crash after the entry and before the declaration was removed:
        // finish the rest.
        tracing::warn!(
            seq = declaration.restored_size,
            "the declared restore was logged before the last stop; finishing it"
        );
        return finish(broker, dir, published_path);
    }
    let lost =
        crate::ledger::published::load(published_path, ledger).map_err(ServerError::Published)?;
    let seq = broker.declare_restore(declaration, lost.as_ref()).await?;
    tracing::warn!(
        seq,
        restored_size = declaration.restored_size,
        lost_size = lost.as_ref().map_or(declaration.restored_size, |c| c.size.max(declaration.restored_size)),
        snapshot_taken_at = %declaration.snapshot_taken_at,
        "DECLARED RESTORE: logged store.restored; witnesses and tenants follow it"
    );
    finish(broker, dir, published_path)
}

/// Whether the entry at the restored size is this restore's entry.
fn already_declared(broker: &Broker, declaration: &Declaration) -> bool {
    use crate::domain::{EventKind, detail};
    let Some(Ok(e)) = broker
        .ledger()
        .entries_from(declaration.restored_size)
        .next()
    else {
        return false;
    };
    e.entry.seq == declaration.restored_size
        && e.entry.kind == EventKind::StoreRestored.as_str()
        && e.entry.details.get(detail::SNAPSHOT_TAKEN_AT) == Some(&declaration.snapshot_taken_at)
}

/// Publishes the restored log's checkpoint and removes the declaration.
fn finish(broker: &Broker, dir: &Path, published_path: &Path) -> Result<(), ServerError> {
    if let Some(cp) = broker.ledger().latest_checkpoint() {
        crate::ledger::published::save(published_path, &cp).map_err(|e| {
            ServerError::Published(format!("cannot save {}: {e}", published_path.display()))
        })?;
    }
    std::fs::remove_file(dir.join(DECLARATION_FILE)).map_err(|e| {
        ServerError::Published(format!(
            "logged the restore but cannot remove {}: {e}",
            dir.join(DECLARATION_FILE).display()
        ))
    })
}
