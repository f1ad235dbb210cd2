//! `daypass backup OUT`: an online backup of a running server (admins),
//! written to a file beside OUT and renamed into place once complete (mode
//! 0600: it holds every tenant's records); `daypass restore FILE
//! --data-dir DIR --log-key K`: writes a backup into a new data directory,
//! offline, refusing it unless it verifies. The format and the checks live
//! in `crate::ledger::backup`.

use std::{io::Write as _, path::PathBuf};

use clap::Args;
use serde_json::json;

use super::{CliResult, Connection, connect::connect, output};
use crate::pb;

#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  daypass backup /var/backups/daypass/2026-12-02.backup --server https://daypass.example.com:50051 \\\n    --ca ca.pem --cert staff-ada.pem --key staff-ada.key"
)]
pub struct BackupArgs {
    /// Where to write the backup file (not overwritten if it exists).
    pub out: PathBuf,
    #[command(flatten)]
    pub conn: Connection,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  daypass restore daypass-2026-12-02.backup --data-dir /var/lib/daypass/data.new \\\n    --log-key /etc/daypass/log.pub\nthen point data_dir at the new directory (or move it into place) and start the server:\nit logs store.restored, which witnesses and tenants follow."
)]
pub struct RestoreArgs {
    /// The backup file (from `daypass backup`).
    pub file: PathBuf,
    /// The new data directory to restore into (must not exist, or be empty).
    #[arg(long)]
    pub data_dir: PathBuf,
    /// The log's verifier key, or a file holding it (log.pub); repeat it
    /// during a key rotation.
    #[arg(long, required = true)]
    pub log_key: Vec<String>,
}

pub(super) async fn backup(args: BackupArgs, json_out: bool) -> CliResult {
    if args.out.exists() {
        return Err(cli_err!(
            "{} exists: give a new file name (a backup is never written over another)",
            args.out.display()
        ));
    }
    let mut c = connect(&args.conn).await?;
    let mut stream = c.audit.backup(pb::BackupRequest {}).await?.into_inner();
    let tmp = args.out.with_extension("partial");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let file = opts
        .open(&tmp)
        .map_err(|e| cli_err!("cannot create {}: {e}", tmp.display()))?;
    let mut w = std::io::BufWriter::new(file);
    let mut bytes = 0u64;
    let written: CliResult = async {
        const PROGRESS_EVERY: u64 = 64 << 20;
        while let Some(chunk) = stream.message().await? {
            w.write_all(&chunk.data)?;
            let before = bytes;
            bytes += chunk.data.len() as u64;
            if bytes / PROGRESS_EVERY > before / PROGRESS_EVERY {
                eprintln!("backup: {} MiB written…", bytes >> 20);
            }
        }
        let f = w.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        Ok(())
    }
    .await;
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    // Only a complete file gets the name: a cut-off one fails its digest.
    let header = std::fs::File::open(&tmp)
        .map_err(|e| cli_err!("{e}"))
        .and_then(|f| {
            crate::ledger::backup::BackupReader::open(std::io::BufReader::new(f))
                .map(|(h, _)| h)
                .map_err(|e| cli_err!("the server sent an unreadable backup: {e}"))
        });
    let header = match header {
        Ok(h) => h,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    std::fs::rename(&tmp, &args.out).map_err(|e| {
        cli_err!(
            "cannot rename {} to {}: {e}",
            tmp.display(),
            args.out.display()
        )
    })?;
    output::print_json_or_text(
        json_out,
        &json!({"file": args.out, "bytes": bytes, "entries": header.size, "taken_at": header.taken_at}),
        &format!(
            "wrote {} ({bytes} bytes): {} entries, taken at {}\n",
            args.out.display(),
            header.size,
            header.taken_at
        ),
    );
    Ok(())
}

pub(super) fn restore(args: RestoreArgs, json_out: bool) -> CliResult {
    let keys = super::audit::load_verifiers(&args.log_key)?;
    let r = crate::ledger::backup::restore(&args.file, &args.data_dir, keys)
        .map_err(|e| cli_err!("{}: {e}; nothing was restored", args.file.display()))?;
    output::print_json_or_text(
        json_out,
        &json!({"data_dir": args.data_dir, "entries": r.header.size, "rows": r.rows, "taken_at": r.header.taken_at, "backup_sha256": r.declaration.backup_sha256}),
        &format!(
            "restored {} entries (taken at {}) into {}: digest, chain, tree, checkpoint and records verified.\n\
             Point data_dir at it and start the server: it logs store.restored, and witnesses and tenants follow the declared restore.\n",
            r.header.size,
            r.header.taken_at,
            args.data_dir.display()
        ),
    );
    Ok(())
}
