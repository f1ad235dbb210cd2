//! Checking the log: `daypass audit verify` checks an export offline (the
//! chain, and with a checkpoint and the log's key, the signed tree root or
//! every inclusion proof), or a tile tree (`--tiles`); `daypass audit check` asks the server to verify
//! its stored chain. The verification rules live in `crate::audit`.

use std::{
    io::{BufRead, BufReader, Read as _},
    path::{Path, PathBuf},
};

use serde_json::json;

use super::{load_verifiers, open};
use crate::{
    audit::{self, export},
    cli::{CliError, CliResult, Connection, connect::connect},
    pb,
};

/// An export to check: a file, or standard input (`-`), which is read
/// once into memory (the checks make two passes).
pub(super) enum Export {
    File(PathBuf),
    Stdin(Vec<u8>),
}

impl Export {
    pub(super) fn from_arg(p: &Path) -> Result<Export, CliError> {
        if p == Path::new("-") {
            let mut bytes = Vec::new();
            std::io::stdin()
                .lock()
                .read_to_end(&mut bytes)
                .map_err(|e| cli_err!("cannot read standard input: {e}"))?;
            Ok(Export::Stdin(bytes))
        } else {
            Ok(Export::File(p.to_owned()))
        }
    }

    fn reader(&self) -> Result<Box<dyn BufRead + '_>, CliError> {
        Ok(match self {
            Export::File(p) => Box::new(BufReader::new(open(p)?)),
            Export::Stdin(b) => Box::new(b.as_slice()),
        })
    }

    fn display(&self) -> String {
        match self {
            Export::File(p) => p.display().to_string(),
            Export::Stdin(_) => "standard input".into(),
        }
    }
}

/// `audit verify FILE`: the chain of an export, offline.
pub(super) fn file(file: &Export, json_out: bool) -> CliResult {
    let reader = file.reader()?;
    match export::verify(reader).and_then(|s| semantics(file).map(|()| s)) {
        // A log has entries from its start on: an empty export is a wrong
        // or emptied file, not a verified log.
        Ok(s) if s.entries == 0 => Err(cli_err!(
            "{}: no log entries in it (an export has one JSON line per entry)",
            file.display()
        )),
        Ok(s) => {
            if json_out {
                println!(
                    "{:#}",
                    json!({"ok": true, "entries": s.entries, "first_seq": s.first_seq, "head_hash": hex::encode(s.head)})
                );
            } else {
                println!(
                    "OK: {} entries verified, head {}",
                    s.entries,
                    hex::encode(s.head)
                );
            }
            Ok(())
        }
        Err((line, p)) => Err(failed(file, line, &p, json_out)),
    }
}

/// `audit verify FILE --checkpoint CP --log-key K`: also the checkpoint's
/// signature, and the tree root or every inclusion proof, offline.
pub(super) fn file_against(
    file: &Export,
    cp_path: &Path,
    keys: &[String],
    json_out: bool,
) -> CliResult {
    let verifiers = load_verifiers(keys)?;
    let note = std::fs::read_to_string(cp_path)
        .map_err(|e| cli_err!("cannot read {}: {e}", cp_path.display()))?;
    let cp = audit::note::Checkpoint::open_any(&note, &verifiers)
        .map_err(|e| cli_err!("{}: {e}", cp_path.display()))?;
    // The key that signed it (the first of several, during a rotation).
    let verifier = verifiers
        .iter()
        .find(|v| audit::note::Checkpoint::open(&note, v).is_ok())
        .ok_or_else(|| cli_err!("{}: no --log-key verifies it", cp_path.display()))?;
    match export::verify_against(file.reader()?, &cp).and_then(|s| semantics(file).map(|()| s)) {
        Ok(s) => {
            if json_out {
                println!(
                    "{:#}",
                    json!({"ok": true, "entries": s.entries, "tenant_scoped": s.proven, "tree_size": s.tree_size, "beyond_checkpoint": s.beyond, "signed_by": verifier.name()})
                );
            } else if s.proven {
                println!(
                    "OK: {} entries, each proven included in the log's tree of {} entries signed by {}",
                    s.entries,
                    s.tree_size,
                    verifier.name()
                );
            } else {
                println!(
                    "OK: {} entries, chain intact, and the first {} hash to the root signed by {}{}",
                    s.entries,
                    s.tree_size,
                    verifier.name(),
                    if s.beyond > 0 {
                        format!(" ({} later entries are chain-checked only)", s.beyond)
                    } else {
                        String::new()
                    }
                );
            }
            Ok(())
        }
        Err((line, p)) => Err(failed(file, line, &p, json_out)),
    }
}

/// `audit verify --tiles DIR --log-key K`: a tile tree offline
/// (`crate::audit::tiles::verify_dir`).
pub(super) fn tiles(dir: &Path, keys: &[String], json_out: bool) -> CliResult {
    let verifiers = load_verifiers(keys)?;
    if !dir.is_dir() {
        return Err(cli_err!(
            "--tiles {}: not a directory (give the directory `audit export --tiles` wrote)",
            dir.display()
        ));
    }
    match audit::tiles::verify_dir(dir, &verifiers) {
        Ok(s) => {
            let cp = &s.checkpoint;
            if json_out {
                println!(
                    "{:#}",
                    json!({"ok": true, "entries": cp.size, "root": hex::encode(cp.root), "head_hash": hex::encode(s.head), "bundles": s.bundles, "tiles": s.tiles, "signed_by": cp.origin})
                );
            } else {
                println!(
                    "OK: {} entries in {} bundles and {} tiles, chain intact, root {} signed by {}",
                    cp.size,
                    s.bundles,
                    s.tiles,
                    hex::encode(cp.root),
                    cp.origin
                );
            }
            Ok(())
        }
        Err(e) => {
            if json_out {
                println!("{:#}", json!({"ok": false, "problem": e.to_string()}));
            }
            Err(cli_err!("{}: {e}", dir.display()))
        }
    }
}

/// `audit verify --tenant-key K`: every sealed entry opens with the key and
/// shows what it holds (reported on standard error before the other checks).
pub(super) fn open_with_key(file: &Export, key_path: &Path) -> CliResult {
    let bytes =
        std::fs::read(key_path).map_err(|e| cli_err!("cannot read {}: {e}", key_path.display()))?;
    let key =
        audit::seal::parse_key(&bytes).map_err(|e| cli_err!("{}: {e}", key_path.display()))?;
    match export::open_sealed(file.reader()?, &key) {
        Ok(o) => {
            eprintln!(
                "tenant key: {} sealed entries open with it ({} show their details, all match)",
                o.sealed, o.shown
            );
            Ok(())
        }
        Err((line, why)) => Err(cli_err!(
            "{}: line {line}: {why} (with the tenant key {})",
            file.display(),
            key_path.display()
        )),
    }
}

/// `audit check`: the server verifies its stored chain; a broken chain is
/// an error (exit status 1).
pub(super) async fn check(conn: &Connection, json_out: bool) -> CliResult {
    let mut c = connect(conn).await?;
    let r = c
        .audit
        .verify_chain(pb::VerifyChainRequest {})
        .await?
        .into_inner();
    if json_out {
        println!(
            "{:#}",
            json!({"ok": r.ok, "entries_checked": r.entries_checked, "head_hash": hex::encode(&r.head_hash), "first_bad_seq": r.first_bad_seq, "problem": r.problem})
        );
    } else if r.ok {
        println!(
            "chain OK: {} entries, head {}",
            r.entries_checked,
            hex::encode(&r.head_hash)
        );
    }
    if !r.ok {
        return Err(cli_err!(
            "chain BROKEN at seq {}: {}",
            r.first_bad_seq,
            r.problem
        ));
    }
    Ok(())
}

/// The second pass over a verified export: its entries must agree with
/// each other (`crate::audit::state`).
fn semantics(file: &Export) -> Result<(), (usize, audit::Problem)> {
    let reader = match file.reader() {
        Ok(r) => r,
        Err(e) => {
            return Err((
                0,
                audit::Problem {
                    seq: 0,
                    kind: audit::verify::ProblemKind::Malformed,
                    detail: e.to_string(),
                },
            ));
        }
    };
    export::check_semantics(reader).map(drop)
}

/// Reports the first problem an export verification found.
fn failed(file: &Export, line: usize, p: &audit::Problem, json_out: bool) -> CliError {
    if json_out {
        println!(
            "{:#}",
            json!({"ok": false, "line": line, "first_bad_seq": p.seq, "problem": p.kind.as_str(), "detail": p.detail})
        );
    }
    cli_err!(
        "{}: line {line}: first bad entry is seq {}: {} ({})",
        file.display(),
        p.seq,
        p.kind.as_str(),
        p.detail
    )
}
