//! Signed checkpoints from the command line: `daypass audit checkpoint`
//! prints (and optionally verifies and saves) the newest one; `daypass
//! audit witness` accepts it only if the log proves it extends the last
//! one this witness accepted. The witness rules and state format live in
//! `crate::audit::witness`.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::{hashes_from_pb, load_verifiers, sealed_from_pb};
use crate::{
    audit,
    cli::{CliError, CliResult, Connection, connect::connect},
    clock::{Clock, SystemClock},
    pb,
};

/// `audit checkpoint [--log-key K] [--out F]`.
pub(super) async fn checkpoint(
    conn: &Connection,
    log_keys: &[String],
    out: Option<PathBuf>,
    json_out: bool,
) -> CliResult {
    let mut c = connect(conn).await?;
    let cp = c
        .audit
        .get_checkpoint(pb::GetCheckpointRequest { tree_size: 0 })
        .await?
        .into_inner();
    let verified = !log_keys.is_empty();
    if verified {
        audit::note::Checkpoint::open_any(&cp.note, &load_verifiers(log_keys)?)
            .map_err(|e| cli_err!("the server's checkpoint does not verify: {e}"))?;
    }
    if let Some(p) = &out {
        std::fs::write(p, &cp.note).map_err(|e| cli_err!("cannot write {}: {e}", p.display()))?;
    }
    if json_out {
        println!(
            "{:#}",
            json!({"tree_size": cp.tree_size, "root_hash": hex::encode(&cp.root_hash), "note": cp.note, "verified": verified})
        );
    } else {
        print!("{}", cp.note);
        if !verified {
            eprintln!("(signature not checked: pass --log-key certs/log.pub)");
        }
    }
    Ok(())
}

/// `audit witness --state S --log-key K`: the key and the state are read
/// before connecting, so a mistake in either is reported first. An alarm
/// is an error (exit status 1).
pub(super) async fn witness(
    conn: &Connection,
    state: &Path,
    log_keys: &[String],
    json_out: bool,
) -> CliResult {
    let verifiers = load_verifiers(log_keys)?;
    let history = audit::witness::History::load(state).map_err(|e| cli_err!("{e}"))?;
    let mut c = connect(conn).await?;
    let cp = c
        .audit
        .get_checkpoint(pb::GetCheckpointRequest { tree_size: 0 })
        .await?
        .into_inner();
    let now = Clock::now(&SystemClock).to_rfc3339();
    let (outcome, accept) = audit::witness::run(
        &history,
        &cp.note,
        cp.restore_seq,
        &verifiers,
        &now,
        &mut ServerLog(&mut c),
    )
    .await
    .map_err(|e| cli_err!("{e}"))?;
    if let Some(rec) = &accept {
        audit::witness::History::append(state, rec).map_err(|e| cli_err!("{e}"))?;
    }
    if json_out {
        println!(
            "{:#}",
            json!({"ok": !outcome.is_alarm(), "outcome": outcome.label(), "message": outcome.to_string(), "tree_size": cp.tree_size})
        );
    }
    if outcome.is_alarm() {
        return Err(cli_err!("{outcome}"));
    }
    if matches!(outcome, audit::witness::Outcome::Restored { .. }) {
        // Accepted, but the loss is for a person to read.
        eprintln!("{outcome}");
    }
    if !json_out {
        println!("OK: {outcome}");
    }
    Ok(())
}

/// The log as the witness asks it: consistency proofs, and an entry with
/// its inclusion proof (for a declared restore).
struct ServerLog<'c>(&'c mut crate::client::Clients);

impl audit::witness::LogSource for ServerLog<'_> {
    async fn consistency(
        &mut self,
        old: u64,
        new: u64,
    ) -> Result<Vec<audit::Hash>, audit::witness::WitnessError> {
        let fetch = |e: CliError| audit::witness::WitnessError::Fetch(e.0);
        let p = self
            .0
            .audit
            .get_consistency_proof(pb::GetConsistencyProofRequest {
                old_size: old,
                new_size: new,
            })
            .await
            .map_err(|s| fetch(CliError::from(s)))?
            .into_inner();
        hashes_from_pb(&p.hashes).map_err(fetch)
    }

    async fn entry_with_proof(
        &mut self,
        seq: u64,
        size: u64,
    ) -> Result<(audit::Entry, Vec<audit::Hash>), audit::witness::WitnessError> {
        let fetch = |e: CliError| audit::witness::WitnessError::Fetch(e.0);
        let page = self
            .0
            .audit
            .get_entries(pb::GetEntriesRequest {
                start: seq,
                end: seq + 1,
            })
            .await
            .map_err(|s| fetch(CliError::from(s)))?
            .into_inner();
        let entry = page
            .entries
            .first()
            .ok_or_else(|| fetch(cli_err!("the log sent no entry {seq}")))?;
        let entry = sealed_from_pb(entry).map_err(fetch)?.entry;
        let p = self
            .0
            .audit
            .get_inclusion_proof(pb::GetInclusionProofRequest {
                seq,
                tree_size: size,
            })
            .await
            .map_err(|s| fetch(CliError::from(s)))?
            .into_inner();
        Ok((entry, hashes_from_pb(&p.hashes).map_err(fetch)?))
    }
}
