//! `daypass audit export`: the log as JSON Lines, streamed to a file or
//! standard output; with `--checkpoint`, cut at the newest signed
//! checkpoint (saved beside it), and with `--tenant`, one tenant's entries
//! each with its inclusion proof. `--format csv|ocsf` writes the same
//! entries for a SIEM instead (without `--checkpoint`: those shapes carry
//! no hashes to verify). `--tiles DIR` writes the log up to the newest
//! checkpoint as a C2SP tlog-tiles tree instead. The line format lives in `crate::audit::export`,
//! the SIEM shapes in `crate::siem`. The closing summary goes to standard
//! error, as one JSON object with the global `--json`.

use std::{
    fs::File,
    io::{self, BufWriter, Write},
    path::{Path, PathBuf},
};

use super::{ExportFormat, hashes_from_pb, sealed_from_pb};
use crate::{
    audit::{
        SealedEntry, export,
        tiles::{self, TileError, TileWriter},
    },
    cli::{CliError, CliResult, Connection, connect::connect},
    client::Clients,
    pb, siem,
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
    json_out: bool,
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
    summary(
        json_out,
        n,
        out.as_deref(),
        Some(cp_path),
        ExportFormat::Jsonl,
    );
    Ok(())
}

/// The closing line on standard error: `exported N entries[ to F][;
/// checkpoint saved to C]`, or with `--json` one object
/// `{"exported", "to", "checkpoint", "format"}` (`null` for standard
/// output and for no checkpoint).
fn summary(json_out: bool, n: u64, out: Option<&Path>, cp: Option<&Path>, format: ExportFormat) {
    if json_out {
        let path = |p: Option<&Path>| p.map(|p| p.display().to_string());
        eprintln!(
            "{}",
            serde_json::json!({
                "exported": n,
                "to": path(out),
                "checkpoint": path(cp),
                "format": format.as_str(),
            })
        );
    } else {
        eprintln!(
            "exported {n} entries{}{}",
            out.map(|p| format!(" to {}", p.display()))
                .unwrap_or_default(),
            cp.map(|p| format!("; checkpoint saved to {}", p.display()))
                .unwrap_or_default()
        );
    }
}

/// Writes one entry in `format`.
fn write_entry(w: &mut impl Write, format: ExportFormat, e: &SealedEntry) -> io::Result<()> {
    match format {
        ExportFormat::Jsonl => export::write_line(w, e),
        ExportFormat::Csv => siem::csv::write_row(w, &e.entry),
        ExportFormat::Ocsf => {
            serde_json::to_writer(&mut *w, &siem::ocsf::to_ocsf(&e.entry))?;
            w.write_all(b"\n")
        }
    }
}

/// `audit export` without `--checkpoint`: every entry from `from` on, in
/// `format`.
pub(super) async fn whole(
    conn: &Connection,
    from: u64,
    out: Option<PathBuf>,
    format: ExportFormat,
    json_out: bool,
) -> CliResult {
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
    if format == ExportFormat::Csv {
        match siem::csv::write_header(&mut w) {
            Err(e) if closed(&e) => return Ok(()),
            r => r?,
        }
    }
    while let Some(e) = stream.message().await? {
        match write_entry(&mut w, format, &sealed_from_pb(&e)?) {
            Err(e) if closed(&e) => return Ok(()),
            r => r?,
        }
        n += 1;
        if out.is_some() && !json_out && n % 100_000 == 0 {
            eprintln!("exported {n} entries…");
        }
    }
    match w.flush() {
        Err(e) if closed(&e) => return Ok(()),
        r => r?,
    }
    summary(json_out, n, out.as_deref(), None, format);
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
pub(crate) async fn export_tenant(
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

/// `audit export --tiles DIR`: every entry up to the newest checkpoint as
/// a C2SP tlog-tiles tree (`crate::audit::tiles`), computed here from the
/// streamed entries, its root checked against the checkpoint's before the
/// checkpoint is written (last: a tree without it is an interrupted export).
pub(super) async fn tiles(conn: &Connection, dir: &Path, json_out: bool) -> CliResult {
    let mut writer = TileWriter::create(dir).map_err(|e| cli_err!("{e}"))?;
    let mut c = connect(conn).await?;
    let cp = c
        .audit
        .get_checkpoint(pb::GetCheckpointRequest { tree_size: 0 })
        .await?
        .into_inner();
    let mut stream = c
        .audit
        .stream_entries(pb::StreamEntriesRequest {
            from_seq: 0,
            follow: false,
            purpose: pb::ReadPurpose::Export as i32,
            last: 0,
        })
        .await?
        .into_inner();
    let fail = |e: TileError| cli_err!("{}: {e}", dir.display());
    while writer.size() < cp.tree_size {
        let Some(e) = stream.message().await? else {
            return Err(cli_err!(
                "the server's stream ended at seq {} before the checkpoint's {} entries; nothing \
                 was verified: export again",
                writer.size(),
                cp.tree_size
            ));
        };
        let e = sealed_from_pb(&e)?;
        if e.entry.seq != writer.size() {
            return Err(cli_err!(
                "the server sent seq {} where seq {} belongs",
                e.entry.seq,
                writer.size()
            ));
        }
        writer.push(&e.entry.encode()).map_err(fail)?;
        if !json_out && writer.size() % 1_000_000 == 0 {
            eprintln!("exported {} entries…", writer.size());
        }
    }
    drop(stream);
    let checkpoint = writer.finish(&cp.note).map_err(fail)?;
    if json_out {
        eprintln!(
            "{}",
            serde_json::json!({
                "exported": checkpoint.size,
                "to": dir.display().to_string(),
                "checkpoint": dir.join(tiles::CHECKPOINT_FILE).display().to_string(),
                "format": "tiles",
            })
        );
    } else {
        eprintln!(
            "exported {} entries as tiles to {} (checkpoint written last)",
            checkpoint.size,
            dir.display()
        );
    }
    Ok(())
}
