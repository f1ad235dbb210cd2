//! The log key at start-up: the newest stored checkpoint must carry the
//! configured signing key's signature (a key swapped without an overlap
//! would leave witnesses and tenants holding a key the log no longer
//! uses), and a rotation's steps are logged: `log.key_announced` the first
//! time a next key countersigns, `log.key_rotated` the first time the new
//! key signs alone. Both are found from the newest checkpoint's
//! signatures, so a restart logs nothing twice. The steps are in
//! docs/operations.md, "Rotating the log key".

use crate::{
    audit::note::{Checkpoint, NoteVerifier},
    domain::{EventKind, detail},
    ledger::{Ledger, checkpoint::RotatingLogKey},
};

use super::ServerError;

/// A system entry to write: its kind and details.
pub(super) type SystemEntry = (EventKind, Vec<(&'static str, String)>);

/// `name+keyid` of a verifier key, for messages.
fn short(v: &NoteVerifier) -> String {
    format!("{}+{}", v.name(), hex::encode(v.key_id()))
}

/// The rotation entries this start must write (before any other entry),
/// or why the configured keys cannot sign this log.
pub(super) fn rotation_entries(
    ledger: &Ledger,
    keys: &RotatingLogKey,
) -> Result<Vec<SystemEntry>, ServerError> {
    use crate::ledger::CheckpointSigner as _;
    let current = keys.verifier();
    let Some(newest) = ledger.latest_checkpoint() else {
        // An empty log: its first checkpoint is signed by what is configured.
        return Ok(match keys.next_verifier() {
            Some(next) => vec![announced(&current, &next)],
            None => Vec::new(),
        });
    };
    let signed_by = |v: &NoteVerifier| Checkpoint::open(&newest.note, v).is_ok();
    if !signed_by(&current) {
        let by_next = keys.next_verifier().filter(|v| signed_by(v));
        return Err(ServerError::LogKey(match by_next {
            Some(_) => format!(
                "the newest checkpoint ({} entries) is signed by log.next_signing_key but not by \
                 log.signing_key ({}): the two look swapped",
                newest.size,
                short(&current)
            ),
            None => format!(
                "the newest checkpoint ({} entries) is not signed by log.signing_key ({}): to move \
                 to a new key, first run with the old key as log.signing_key and the new one as \
                 log.next_signing_key, so that witnesses and tenants see both (docs/operations.md, \
                 \"Rotating the log key\"); if the old key was lost, the log cannot be continued \
                 under the same trust",
                newest.size,
                short(&current)
            ),
        }));
    }
    let mut out = Vec::new();
    if let Some(next) = keys.next_verifier() {
        if !signed_by(&next) {
            out.push(announced(&current, &next));
        }
    }
    let retiring: Vec<String> = keys
        .retired()
        .iter()
        .filter(|v| signed_by(v))
        .map(|v| v.to_string())
        .collect();
    if !retiring.is_empty() {
        out.push((
            EventKind::LogKeyRotated,
            vec![
                (detail::KEY, current.to_string()),
                (detail::RETIRED_KEYS, retiring.join(" ")),
            ],
        ));
    }
    Ok(out)
}

fn announced(
    current: &NoteVerifier,
    next: &NoteVerifier,
) -> (EventKind, Vec<(&'static str, String)>) {
    (
        EventKind::LogKeyAnnounced,
        vec![
            (detail::KEY, current.to_string()),
            (detail::NEXT_KEY, next.to_string()),
        ],
    )
}
