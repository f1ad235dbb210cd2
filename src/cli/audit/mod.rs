//! `daypass audit`: read, export, verify, witness and replay the audit
//! log. This file owns the subcommand definitions, the dispatch (what runs
//! offline, what connects) and the conversions every audit command shares;
//! the log format, proofs and replay rules live in `crate::audit`.
//!
//! * [`export`]: `audit export`, whole or one tenant's with proofs;
//! * [`verify`]: `audit verify` (offline) and `audit check` (server-side);
//! * [`witness`]: `audit checkpoint` and `audit witness`;
//! * [`replay`]: `audit replay` (from the server or an export) and `audit tail`.

pub(super) mod export;
mod replay;
pub(super) use replay::parse_when;
mod verify;
mod witness;

use std::{
    fs::File,
    path::{Path, PathBuf},
};

use clap::Subcommand;

use super::{CliError, CliResult, Connection};
use crate::{audit, pb};

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Export the log (streaming): as JSON Lines (verifiable), CSV or OCSF
    /// events for a SIEM (docs/siem.md).
    #[command(after_help = "Examples:\n  \
        daypass audit export -o log.jsonl --as eve\n  \
        daypass audit export -o log.jsonl --checkpoint cp.txt --as eve\n  \
        daypass audit export --format ocsf -o log.ocsf.jsonl --as eve\n  \
        daypass audit export --tenant acme -o acme.jsonl --checkpoint acme-cp.txt --as acme\n  \
        daypass audit export --tiles log-tiles/ --as eve")]
    Export {
        /// First sequence number to export.
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// jsonl: the verifiable export (docs/log-format.md §4); csv: one
        /// RFC 4180 row per entry; ocsf: one OCSF event (JSON) per line.
        /// --checkpoint and --tenant need jsonl.
        #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
        format: ExportFormat,
        /// Output file (default: standard output).
        #[arg(long, short)]
        out: Option<PathBuf>,
        /// Also save the signed checkpoint the export ends at, for
        /// `audit verify --checkpoint`.
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// Only this tenant's entries, each with an inclusion proof against
        /// the saved checkpoint (needs --checkpoint). A tenant exports its own
        /// with --tenant and its own name.
        #[arg(long, requires = "checkpoint")]
        tenant: Option<String>,
        /// Write the whole log up to the newest checkpoint as a C2SP
        /// tlog-tiles tree into this new (or empty) directory: `checkpoint`,
        /// hash tiles and entry bundles, for any static web server
        /// (docs/log-format.md §14). Verify it with `audit verify --tiles`.
        #[arg(long, value_name = "DIR", conflicts_with_all = ["from", "out", "checkpoint", "tenant"])]
        tiles: Option<PathBuf>,
        #[command(flatten)]
        conn: Connection,
    },
    /// Verify an export offline: no server needed. With --checkpoint and
    /// --log-key also the signature, the tree root or every inclusion proof.
    #[command(after_help = "Examples:\n  \
        daypass audit verify log.jsonl\n  \
        daypass audit verify log.jsonl --checkpoint cp.txt --log-key daypass-dev/certs/log.pub\n  \
        daypass audit export --as eve | daypass audit verify -\n  \
        daypass audit verify --tiles log-tiles/ --log-key daypass-dev/certs/log.pub")]
    Verify {
        /// The export (JSON lines), or - for standard input.
        #[arg(required_unless_present = "tiles")]
        file: Option<PathBuf>,
        /// A signed checkpoint file (from `audit export --checkpoint`).
        #[arg(long, requires = "log_key")]
        checkpoint: Option<PathBuf>,
        /// A tile tree (from `audit export --tiles`) instead of a file: its
        /// signed checkpoint, every tile and bundle, the root, the chain and
        /// the log's semantics.
        #[arg(long, value_name = "DIR", requires = "log_key", conflicts_with_all = ["file", "checkpoint", "tenant_key"])]
        tiles: Option<PathBuf>,
        /// The log's verifier key, or a file holding it (certs/log.pub).
        /// Repeat it during a key rotation: a checkpoint signed by any is accepted.
        /// Needs --checkpoint or --tiles.
        #[arg(long)]
        log_key: Vec<String>,
        /// A tenant's key file (from `tenant terminate`): every sealed
        /// entry must open with it, and what `opened` shows must match.
        #[arg(long, value_name = "FILE")]
        tenant_key: Option<PathBuf>,
    },
    /// Print the log's newest signed checkpoint (verified with --log-key).
    Checkpoint {
        /// The log's verifier key, or a file holding it (certs/log.pub);
        /// repeat it during a key rotation.
        #[arg(long)]
        log_key: Vec<String>,
        /// Write the note to this file too.
        #[arg(long, short)]
        out: Option<PathBuf>,
        #[command(flatten)]
        conn: Connection,
    },
    /// Accept the newest checkpoint only if the log proves it extends the
    /// last one this witness accepted, or declares a restore from a backup
    /// that holds up (reported on stderr); otherwise raise an alarm (exit 1).
    Witness {
        /// Witness state: the accepted checkpoints (JSON Lines). Keep it
        /// where the server's operators cannot write.
        #[arg(long)]
        state: PathBuf,
        /// The log's verifier key, or a file holding it (certs/log.pub).
        /// Repeat it during a key rotation (old and new key): checkpoints
        /// signed by any are accepted.
        #[arg(long, required = true)]
        log_key: Vec<String>,
        #[command(flatten)]
        conn: Connection,
    },
    /// Who had access to which tenant, when, why, and what they did.
    Replay {
        /// Read an export instead of asking the server (the connection
        /// flags are then not used).
        #[arg(long)]
        file: Option<PathBuf>,
        /// Only access to this tenant.
        #[arg(long)]
        tenant: Option<String>,
        /// Only this person's access.
        #[arg(long)]
        person: Option<String>,
        /// From this time: RFC 3339 (2026-11-25T09:00:00Z), a UTC time
        /// without a zone (2026-11-25 09:00), a date, or how long ago (1h, 2d).
        #[arg(long)]
        since: Option<String>,
        /// Until this time (the same forms as --since).
        #[arg(long)]
        until: Option<String>,
        #[command(flatten)]
        conn: Connection,
    },
    /// Follow the log as it is written.
    Tail {
        /// Start at this sequence number (default: the last 10 entries).
        #[arg(long)]
        from: Option<u64>,
        #[command(flatten)]
        conn: Connection,
    },
    /// Ask the server to verify its stored chain.
    Check {
        #[command(flatten)]
        conn: Connection,
    },
}

/// What `audit export` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// JSON Lines with hashes: what `audit verify` checks.
    Jsonl,
    /// RFC 4180 CSV with a header row.
    Csv,
    /// One OCSF 1.5.0 event per line.
    Ocsf,
}

impl ExportFormat {
    fn as_str(self) -> &'static str {
        match self {
            ExportFormat::Jsonl => "jsonl",
            ExportFormat::Csv => "csv",
            ExportFormat::Ocsf => "ocsf",
        }
    }
}

/// Runs one `daypass audit` command. `verify` and `replay --file` never
/// connect (`verify` takes no connection flags); the others connect once
/// what can be checked locally is.
pub(super) async fn run(command: AuditCommand, json_out: bool) -> CliResult {
    match command {
        AuditCommand::Export {
            from,
            format,
            out,
            checkpoint,
            tenant,
            tiles,
            conn,
        } => match (checkpoint, tiles) {
            (_, Some(_)) if format != ExportFormat::Jsonl => Err(cli_err!(
                "--tiles writes entry bundles of the log's canonical bytes; drop --format {}",
                format.as_str()
            )),
            (_, Some(dir)) => export::tiles(&conn, &dir, json_out).await,
            (checkpoint, None) => match checkpoint {
                Some(_) if format != ExportFormat::Jsonl => Err(cli_err!(
                    "--checkpoint{} makes a verifiable export, which is --format jsonl; {} carries no \
                 hashes or proofs (export jsonl for the auditor, {} for the SIEM)",
                    if tenant.is_some() {
                        " with --tenant"
                    } else {
                        ""
                    },
                    format.as_str(),
                    format.as_str()
                )),
                Some(cp_path) => {
                    export::to_checkpoint(&conn, from, out, &cp_path, tenant, json_out).await
                }
                None => export::whole(&conn, from, out, format, json_out).await,
            },
        },
        AuditCommand::Verify {
            file,
            checkpoint,
            tiles,
            log_key,
            tenant_key,
        } => {
            if let Some(dir) = tiles {
                return verify::tiles(&dir, &log_key, json_out);
            }
            if checkpoint.is_none() && !log_key.is_empty() {
                return Err(cli_err!(
                    "--log-key checks a signed checkpoint: give --checkpoint FILE (or --tiles DIR)"
                ));
            }
            let Some(file) = file else {
                return Err(cli_err!(
                    "give the export to verify (a file, or - for standard input)"
                ));
            };
            let export = verify::Export::from_arg(&file)?;
            if let Some(k) = tenant_key {
                verify::open_with_key(&export, &k)?;
            }
            match checkpoint {
                Some(cp) => verify::file_against(&export, &cp, &log_key, json_out),
                None => verify::file(&export, json_out),
            }
        }
        AuditCommand::Checkpoint { log_key, out, conn } => {
            witness::checkpoint(&conn, &log_key, out, json_out).await
        }
        AuditCommand::Witness {
            state,
            log_key,
            conn,
        } => witness::witness(&conn, &state, &log_key, json_out).await,
        AuditCommand::Replay {
            file,
            tenant,
            person,
            since,
            until,
            conn,
        } => {
            let filter = replay::Flags {
                tenant,
                person,
                since,
                until,
            };
            match file {
                Some(file) => replay::from_file(&file, filter, json_out),
                None => replay::from_server(&conn, filter, json_out).await,
            }
        }
        AuditCommand::Tail { from, conn } => replay::tail(&conn, from, json_out).await,
        AuditCommand::Check { conn } => verify::check(&conn, json_out).await,
    }
}

pub(super) fn sealed_from_pb(e: &pb::LogEntry) -> Result<audit::SealedEntry, CliError> {
    crate::rpc::entry_from_pb(e).map_err(|why| cli_err!("the server sent a bad entry: {why}"))
}

pub(super) fn hashes_from_pb(hs: &[Vec<u8>]) -> Result<Vec<audit::Hash>, CliError> {
    hs.iter()
        .map(|h| {
            h.as_slice()
                .try_into()
                .map_err(|_| cli_err!("the server sent a proof hash that is not 32 bytes"))
        })
        .collect()
}

/// Every `--log-key` given (several during a key rotation).
pub(in crate::cli) fn load_verifiers(
    args: &[String],
) -> Result<Vec<audit::note::NoteVerifier>, CliError> {
    args.iter().map(|a| load_verifier(a)).collect()
}

/// A verifier key given inline (`name+id+key`) or as a file holding one.
fn load_verifier(arg: &str) -> Result<audit::note::NoteVerifier, CliError> {
    let path = Path::new(arg);
    let text = if path.is_file() {
        std::fs::read_to_string(arg).map_err(|e| cli_err!("cannot read {arg}: {e}"))?
    } else if path.is_dir() {
        return Err(cli_err!(
            "--log-key {arg} is a directory; give the log's verifier key file (e.g. certs/log.pub)"
        ));
    } else if arg.matches('+').count() < 2 {
        // An inline key is `name+id+key`: this was meant as a file.
        return Err(cli_err!(
            "--log-key {arg}: no such file (give the log's verifier key file, e.g. certs/log.pub, \
             or the key itself, name+id+key)"
        ));
    } else {
        arg.to_owned()
    };
    audit::note::NoteVerifier::parse(&text).map_err(|e| {
        cli_err!("--log-key: {e} (give the log's verifier key, e.g. the file certs/log.pub)")
    })
}

/// Opens an export for reading; a directory is refused by name.
fn open(path: &Path) -> Result<File, CliError> {
    let file = File::open(path).map_err(|e| cli_err!("cannot open {}: {e}", path.display()))?;
    if file.metadata().is_ok_and(|m| m.is_dir()) {
        return Err(cli_err!(
            "cannot open {}: it is a directory, not a file",
            path.display()
        ));
    }
    Ok(file)
}
