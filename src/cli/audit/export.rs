//! `daypass audit export`: the log as JSON Lines, streamed to a file or
//! standard output; with `--checkpoint`, cut at the newest signed
//! checkpoint (saved beside it), and with `--tenant`, one tenant's entries
//! each with its inclusion proof. The line format lives in
//! `crate::audit::export`.

use std::{
    fs::File,
    io::{self, BufWriter, Write},
    path::{Path, PathBuf},
};

use super::{hashes_from_pb, sealed_from_pb};
use crate::{
    audit::export,
    cli::{CliError, CliResult, Connection, connect::connect},
    client::Clients,
    pb,
};

/// `audit export --checkpoint F [--tenant T]`: exports up to the newest
/// checkpoint (or one tenant's entries with proofs against it) and saves
/// the checkpoint's note to `cp_path`.
pub(super) async fn to_checkpoint(
    conn: &Connection,
    from: u64,
    out: Option<PathBuf>,
    cp_path: &Path,
    tenant: Option<String>,
) -> CliResult {
    let mut c = connect(conn).await?;
    let mut w = BufWriter::new(sink(out.as_deref())?);
    let (note, n) = match tenant {
        Some(t) => export_tenant(&mut c, &t, from, &mut w).await?,
        None => export_to_checkpoint(&mut c, from, &mut w).await?,
    };
    w.flush()?;
    std::fs::write(cp_path, &note)
        .map_err(|e| cli_err!("cannot write {}: {e}", cp_path.display()))?;
    eprintln!(
        "exported {n} entries{}; checkpoint saved to {}",
        out.map(|p| format!(" to {}", p.display()))
            .unwrap_or_default(),
        cp_path.display()
    );
    Ok(())
}

/// `audit export` without `--checkpoint`: every entry from `from` on.
pub(super) async fn whole(conn: &Connection, from: u64, out: Option<PathBuf>) -> CliResult {
    let mut c = connect(conn).await?;
    let mut stream = c
        .audit
        .stream_entries(pb::StreamEntriesRequest {
            from_seq: from,
            follow: false,
            purpose: pb::ReadPurpose::Export as i32,
            last: 0,
        })
        .await?
        .into_inner();
    let mut w = BufWriter::new(sink(out.as_deref())?);
    let mut n = 0u64;
    // A reader that stops early (`| head`) closes the pipe: stop quietly.
    let closed = |e: &io::Error| e.kind() == io::ErrorKind::BrokenPipe;
    while let Some(e) = stream.message().await? {
        match export::write_line(&mut w, &sealed_from_pb(&e)?) {
            Err(e) if closed(&e) => return Ok(()),
            r => r?,
        }
        n += 1;
        if out.is_some() && n % 100_000 == 0 {
            eprintln!("exported {n} entries…");
        }
    }
    match w.flush() {
        Err(e) if closed(&e) => return Ok(()),
        r => r?,
    }
    eprintln!(
        "exported {n} entries{}",
        out.map(|p| format!(" to {}", p.display()))
            .unwrap_or_default()
    );
    Ok(())
}

/// The `--out` file, created now, or standard output.
fn sink(out: Option<&Path>) -> Result<Box<dyn Write>, CliError> {
    Ok(match out {
        Some(p) => {
            Box::new(File::create(p).map_err(|e| cli_err!("cannot create {}: {e}", p.display()))?)
        }
        None => Box::new(io::stdout().lock()),
    })
}

/// Exports `[from, size)` of the newest checkpoint; returns its note and
/// the number of entries written.
async fn export_to_checkpoint(
    c: &mut Clients,
    from: u64,
    w: &mut impl Write,
) -> Result<(String, u64), CliError> {
    let cp = c
        .audit
        .get_checkpoint(pb::GetCheckpointRequest { tree_size: 0 })
        .await?
        .into_inner();
    let mut stream = c
        .audit
        .stream_entries(pb::StreamEntriesRequest {
            from_seq: from,
            follow: false,
            purpose: pb::ReadPurpose::Export as i32,
            last: 0,
        })
        .await?
        .into_inner();
    let mut n = 0u64;
    while let Some(e) = stream.message().await? {
        if e.seq >= cp.tree_size {
            break;
        }
        export::write_line(w, &sealed_from_pb(&e)?)?;
        n += 1;
    }
    Ok((cp.note, n))
}

/// Exports one tenant's entries with inclusion proofs, page by page, all
/// against the checkpoint of the first page.
async fn export_tenant(
    c: &mut Clients,
    tenant: &str,
    from: u64,
    w: &mut impl Write,
) -> Result<(String, u64), CliError> {
    let mut req = pb::GetTenantEntriesRequest {
        tenant: tenant.to_owned(),
        from_seq: from,
        limit: 0,
        tree_size: 0,
    };
    let mut note = String::new();
    let mut n = 0u64;
    loop {
        let page = c.audit.get_tenant_entries(req.clone()).await?.into_inner();
        if note.is_empty() {
            note = page.checkpoint.clone();
            req.tree_size = page.tree_size;
        }
        for p in &page.entries {
            let e = p
                .entry
                .as_ref()
                .ok_or_else(|| cli_err!("the server sent a proven entry without its entry"))?;
            export::write_proven_line(w, &sealed_from_pb(e)?, &hashes_from_pb(&p.inclusion)?)?;
            n += 1;
        }
        if page.next_seq == 0 {
            return Ok((note, n));
        }
        req.from_seq = page.next_seq;
    }
}
