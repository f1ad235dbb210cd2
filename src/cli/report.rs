//! `daypass report`: access reports. `report access` asks the server to log
//! the report (`RecordReport`), reads the tenant's proven entries against
//! the checkpoint of its receipt, keeps the path back from the report's
//! entry and writes the report's directory; `--all` does so for every
//! tenant, with an index. `report verify` checks a directory offline. What
//! a report holds and proves lives in `crate::audit::report`.

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
};

use clap::Subcommand;
use serde_json::json;

use super::{
    CliError, CliResult, Connection,
    audit::{hashes_from_pb, load_verifiers, parse_when, sealed_from_pb},
    connect::connect,
    terminate::{private_dir, write_private},
};
use crate::{
    audit::{
        SealedEntry, export,
        note::Checkpoint,
        report::{self, Anchor, Coverage, IndexRow},
    },
    client::Clients,
    clock::{Clock as _, SystemClock, Timestamp},
    pb,
};

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Make an access report for a tenant and period: who had access when,
    /// why and what they did, with the signed checkpoint and every entry's
    /// inclusion proof, so it proves its own completeness (tenant: its own;
    /// admin, auditor: any, or --all).
    #[command(
        after_help = "Writes DIR/report.html, grants.csv, accesses.csv, slice.jsonl and \
        checkpoint.txt (0600, in a 0700 directory); with --all one such directory per tenant \
        plus index.html and summary.csv.\n\nExamples:\n  \
        daypass report access acme --from 2026-11-01 --to 2026-12-01 --out acme-nov --as eve\n  \
        daypass report access --all --from 2026-01-01 --to 2027-01-01 --out annual-2026 --as audra\n  \
        daypass report verify acme-nov --log-key certs/log.pub"
    )]
    Access {
        /// The tenant (a tenant caller: its own, the default).
        #[arg(conflicts_with = "all")]
        tenant: Option<String>,
        /// Every registered tenant, each in DIR/<tenant>, with an index.
        #[arg(long)]
        all: bool,
        /// Start of the period (included): RFC 3339, a date (its midnight,
        /// UTC), a UTC time without zone, or a duration back from now (30d).
        #[arg(long)]
        from: String,
        /// End of the period (not included), in the same forms.
        #[arg(long)]
        to: String,
        /// The directory to write (created; must not hold a report yet).
        #[arg(long, short)]
        out: PathBuf,
        #[command(flatten)]
        conn: Connection,
    },
    /// Check a report offline: the checkpoint's signature, every inclusion
    /// proof, that no entry of the tenant's scope is missing, and that the
    /// HTML and CSV files are exactly what the proven entries say.
    #[command(after_help = "Examples:\n  \
        daypass report verify acme-nov --log-key certs/log.pub\n  \
        daypass report verify annual-2026 --log-key certs/log.pub")]
    Verify {
        /// A report's directory (or one made with --all).
        dir: PathBuf,
        /// The log's verifier key, or a file holding it (certs/log.pub).
        /// Repeat it during a key rotation.
        #[arg(long, required = true)]
        log_key: Vec<String>,
        /// The tenant's key file (from `tenant terminate`): the sealed
        /// details the report shows must be what the ciphertexts hold.
        #[arg(long, value_name = "FILE")]
        tenant_key: Option<PathBuf>,
    },
}

pub async fn run(command: ReportCommand, json_out: bool) -> CliResult {
    match command {
        ReportCommand::Access {
            tenant,
            all,
            from,
            to,
            out,
            conn,
        } => {
            let now = SystemClock.now();
            let when = |s: &str, flag: &str| {
                parse_when(s, now).ok_or_else(|| {
                    cli_err!(
                        "--{flag} {s:?}: give RFC 3339 (2026-11-01T00:00:00Z), a date \
                         (2026-11-01) or a duration back from now (30d)"
                    )
                })
            };
            let (from, to) = (when(&from, "from")?, when(&to, "to")?);
            if from >= to {
                return Err(cli_err!(
                    "the period is empty: --from {from} must come before --to {to}"
                ));
            }
            let mut c = connect(&conn).await?;
            if all {
                access_all(&mut c, from, to, &out, json_out).await
            } else {
                let made = access_one(&mut c, tenant, from, to, &out).await?;
                say(json_out, &made, &out);
                Ok(())
            }
        }
        ReportCommand::Verify {
            dir,
            log_key,
            tenant_key,
        } => verify(&dir, &log_key, tenant_key.as_deref(), json_out),
    }
}

/// What one report holds, for the closing line.
struct Made {
    row: IndexRow,
    entries: usize,
}

fn say(json_out: bool, m: &Made, dir: &Path) {
    let a = &m.row.anchor;
    if json_out {
        println!(
            "{:#}",
            json!({
                "tenant": a.tenant, "from": a.from.to_rfc3339(), "to": a.to.to_rfc3339(),
                "report_seq": a.seq, "entries": m.entries, "grants": m.row.grants,
                "accesses": m.row.accesses, "other_entries": m.row.others,
                "coverage": report::coverage_text(a, m.row.coverage), "dir": dir.display().to_string(),
            })
        );
    } else {
        println!(
            "report for {} ({} to {}) written to {}: {} grants, {} accesses, {} other entries; \
             {} proven entries\n{}",
            a.tenant,
            a.from,
            a.to,
            dir.display(),
            m.row.grants,
            m.row.accesses,
            m.row.others,
            m.entries,
            report::coverage_text(a, m.row.coverage)
        );
    }
}

/// Logs the report, collects its slice and writes its directory.
async fn access_one(
    c: &mut Clients,
    tenant: Option<String>,
    from: Timestamp,
    to: Timestamp,
    dir: &Path,
) -> Result<Made, CliError> {
    if dir.join(report::SLICE_FILE).exists() {
        return Err(cli_err!(
            "{} already holds a report; give a new --out directory",
            dir.display()
        ));
    }
    let r = c
        .audit
        .record_report(pb::RecordReportRequest {
            tenant: tenant.unwrap_or_default(),
            from_ms: from.millis(),
            to_ms: to.millis(),
        })
        .await?
        .into_inner();
    let receipt = r
        .receipt
        .ok_or_else(|| cli_err!("the server logged the report but sent no receipt"))?;
    let cp = Checkpoint::parse(&receipt.checkpoint)
        .map_err(|e| cli_err!("the server's receipt holds a bad checkpoint: {e}"))?;
    let (note, entries) = scope(c, &r.tenant, cp.size, receipt.seq).await?;
    let by_seq: BTreeMap<u64, &SealedEntry> =
        entries.iter().map(|(e, _)| (e.entry.seq, e)).collect();
    let anchor_entry = by_seq.get(&receipt.seq).ok_or_else(|| {
        cli_err!(
            "the report's entry {} is not among tenant {}'s entries",
            receipt.seq,
            r.tenant
        )
    })?;
    let anchor = Anchor::of(&anchor_entry.entry).map_err(CliError)?;
    let sel = report::select(&anchor, |s| by_seq.get(&s).map(|e| &e.entry))
        .map_err(|why| cli_err!("the server's entries do not make a complete report: {why}"))?;
    let proofs: BTreeMap<u64, &(SealedEntry, Vec<crate::audit::Hash>)> =
        entries.iter().map(|p| (p.0.entry.seq, p)).collect();
    let mut slice = Vec::with_capacity(sel.seqs.len());
    let mut lines = Vec::new();
    for s in &sel.seqs {
        let (e, proof) = proofs[s];
        export::write_proven_line(&mut lines, e, proof)?;
        slice.push(e.clone());
    }
    let page_cp =
        Checkpoint::parse(&note).map_err(|e| cli_err!("the server sent a bad checkpoint: {e}"))?;
    let rendered = report::render(&anchor, sel.coverage, &slice, &note, &page_cp);
    private_dir(dir)?;
    write_private(&dir.join(report::SLICE_FILE), &lines)?;
    write_private(&dir.join(report::CHECKPOINT_FILE), note.as_bytes())?;
    write_private(&dir.join(report::HTML_FILE), rendered.html.as_bytes())?;
    write_private(
        &dir.join(report::GRANTS_FILE),
        rendered.grants_csv.as_bytes(),
    )?;
    write_private(
        &dir.join(report::ACCESSES_FILE),
        rendered.accesses_csv.as_bytes(),
    )?;
    Ok(Made {
        row: IndexRow::of(&anchor, sel.coverage, &slice),
        entries: slice.len(),
    })
}

/// The tenant's entries up to `last` with their proofs in the tree of
/// `size`, and that tree's signed checkpoint.
async fn scope(
    c: &mut Clients,
    tenant: &str,
    size: u64,
    last: u64,
) -> Result<(String, Vec<(SealedEntry, Vec<crate::audit::Hash>)>), CliError> {
    let mut req = pb::GetTenantEntriesRequest {
        tenant: tenant.to_owned(),
        from_seq: 0,
        limit: 0,
        tree_size: size,
    };
    let mut out = Vec::new();
    loop {
        let page = c.audit.get_tenant_entries(req.clone()).await?.into_inner();
        if page.tree_size != size {
            return Err(cli_err!(
                "the server proved against a tree of {} entries, not the receipt's {size}",
                page.tree_size
            ));
        }
        for p in &page.entries {
            let e = p
                .entry
                .as_ref()
                .ok_or_else(|| cli_err!("the server sent a proven entry without its entry"))?;
            if e.seq > last {
                return Ok((page.checkpoint, out));
            }
            out.push((sealed_from_pb(e)?, hashes_from_pb(&p.inclusion)?));
        }
        if page.next_seq == 0 {
            return Ok((page.checkpoint, out));
        }
        req.from_seq = page.next_seq;
    }
}

/// `--all`: one report per tenant, then the index.
async fn access_all(
    c: &mut Clients,
    from: Timestamp,
    to: Timestamp,
    dir: &Path,
    json_out: bool,
) -> CliResult {
    if dir.join(report::INDEX_FILE).exists() {
        return Err(cli_err!(
            "{} already holds reports; give a new --out directory",
            dir.display()
        ));
    }
    let tenants = c
        .tenants
        .list_tenants(pb::ListTenantsRequest {})
        .await?
        .into_inner()
        .tenants;
    private_dir(dir)?;
    let mut rows = Vec::new();
    let mut made = Vec::new();
    for (i, t) in tenants.iter().enumerate() {
        let sub = dir.join(&t.name);
        let m = access_one(c, Some(t.name.clone()), from, to, &sub).await?;
        if !json_out {
            eprintln!(
                "[{}/{}] {}: {} grants, {} accesses",
                i + 1,
                tenants.len(),
                t.name,
                m.row.grants,
                m.row.accesses
            );
        }
        rows.push(m.row.clone());
        made.push(m);
    }
    let (html, csv) = report::render_index(&rows);
    write_private(&dir.join(report::INDEX_FILE), html.as_bytes())?;
    write_private(&dir.join(report::SUMMARY_FILE), csv.as_bytes())?;
    if json_out {
        println!(
            "{:#}",
            json!({
                "dir": dir.display().to_string(),
                "tenants": made.iter().map(|m| json!({
                    "tenant": m.row.anchor.tenant, "report_seq": m.row.anchor.seq,
                    "entries": m.entries, "grants": m.row.grants, "accesses": m.row.accesses,
                })).collect::<Vec<_>>(),
            })
        );
    } else {
        println!(
            "{} reports ({} to {}) written to {}; index in {}",
            rows.len(),
            from,
            to,
            dir.display(),
            dir.join(report::INDEX_FILE).display()
        );
    }
    Ok(())
}

/// `report verify DIR`: one report, or every report and the index of one
/// made with `--all`.
fn verify(dir: &Path, keys: &[String], tenant_key: Option<&Path>, json_out: bool) -> CliResult {
    let verifiers = load_verifiers(keys)?;
    if dir.join(report::SLICE_FILE).exists() {
        let (row, entries, signer) = verify_one(dir, &verifiers, tenant_key)?;
        let a = &row.anchor;
        if json_out {
            println!(
                "{:#}",
                json!({"ok": true, "tenant": a.tenant, "from": a.from.to_rfc3339(), "to": a.to.to_rfc3339(),
                       "report_seq": a.seq, "entries": entries, "signed_by": signer,
                       "coverage": report::coverage_text(a, row.coverage)})
            );
        } else {
            println!(
                "OK: report for {} ({} to {}): {entries} entries, each proven in the tree signed by \
                 {signer}; none of the scope's entries is missing; report.html, {} and {} match them\n{}",
                a.tenant,
                a.from,
                a.to,
                report::GRANTS_FILE,
                report::ACCESSES_FILE,
                report::coverage_text(a, row.coverage)
            );
        }
        return Ok(());
    }
    if !dir.join(report::INDEX_FILE).exists() {
        return Err(cli_err!(
            "{}: no {} or {} in it: not a report's directory",
            dir.display(),
            report::SLICE_FILE,
            report::INDEX_FILE
        ));
    }
    let mut subs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| cli_err!("cannot read {}: {e}", dir.display()))?
        .filter_map(|d| d.ok().map(|d| d.path()))
        .filter(|p| p.is_dir())
        .collect();
    subs.sort();
    let mut rows = Vec::new();
    for sub in &subs {
        let (row, _, _) = verify_one(sub, &verifiers, None)?;
        let name = sub.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if row.anchor.tenant != name {
            return Err(cli_err!(
                "{}: the report is for tenant {}, not {name}",
                sub.display(),
                row.anchor.tenant
            ));
        }
        rows.push(row);
    }
    let (html, csv) = report::render_index(&rows);
    same(&dir.join(report::INDEX_FILE), &html)?;
    same(&dir.join(report::SUMMARY_FILE), &csv)?;
    if json_out {
        println!("{:#}", json!({"ok": true, "reports": rows.len()}));
    } else {
        println!(
            "OK: {} reports verified, and {} and {} match them",
            rows.len(),
            report::INDEX_FILE,
            report::SUMMARY_FILE
        );
    }
    Ok(())
}

/// Checks one report's directory; returns its index row, its number of
/// entries and the checkpoint's signer.
fn verify_one(
    dir: &Path,
    verifiers: &[crate::audit::note::NoteVerifier],
    tenant_key: Option<&Path>,
) -> Result<(IndexRow, usize, String), CliError> {
    let file = |name: &str| dir.join(name);
    let cp_path = file(report::CHECKPOINT_FILE);
    let note = std::fs::read_to_string(&cp_path)
        .map_err(|e| cli_err!("cannot read {}: {e}", cp_path.display()))?;
    let cp = Checkpoint::open_any(&note, verifiers)
        .map_err(|e| cli_err!("{}: {e}", cp_path.display()))?;
    let signer = verifiers
        .iter()
        .find(|v| Checkpoint::open(&note, v).is_ok())
        .map(|v| v.name().to_owned())
        .unwrap_or_default();
    let slice_path = file(report::SLICE_FILE);
    let open = || {
        std::fs::File::open(&slice_path)
            .map(BufReader::new)
            .map_err(|e| cli_err!("cannot read {}: {e}", slice_path.display()))
    };
    let summary = export::verify_against(open()?, &cp).map_err(|(line, p)| {
        cli_err!(
            "{}: line {line}: entry {}: {} ({})",
            slice_path.display(),
            p.seq,
            p.kind.as_str(),
            p.detail
        )
    })?;
    if !summary.proven {
        return Err(cli_err!(
            "{}: its lines carry no inclusion proofs: a report's slice proves every entry",
            slice_path.display()
        ));
    }
    let mut slice = Vec::new();
    for (i, line) in open()?.lines().enumerate() {
        let line = line.map_err(|e| cli_err!("cannot read {}: {e}", slice_path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let (e, _) = export::parse_proven_line(&line)
            .map_err(|why| cli_err!("{}: line {}: {why}", slice_path.display(), i + 1))?;
        slice.push(e);
    }
    let (anchor, coverage): (Anchor, Coverage) =
        report::check_slice(&slice).map_err(|why| cli_err!("{}: {why}", slice_path.display()))?;
    if let Some(key_path) = tenant_key {
        let bytes = std::fs::read(key_path)
            .map_err(|e| cli_err!("cannot read {}: {e}", key_path.display()))?;
        let key = crate::audit::seal::parse_key(&bytes)
            .map_err(|e| cli_err!("{}: {e}", key_path.display()))?;
        export::open_sealed(open()?, &key).map_err(|(line, why)| {
            cli_err!(
                "{}: line {line}: {why} (with the tenant key {})",
                slice_path.display(),
                key_path.display()
            )
        })?;
    }
    let r = report::render(&anchor, coverage, &slice, &note, &cp);
    same(&file(report::HTML_FILE), &r.html)?;
    same(&file(report::GRANTS_FILE), &r.grants_csv)?;
    same(&file(report::ACCESSES_FILE), &r.accesses_csv)?;
    Ok((IndexRow::of(&anchor, coverage, &slice), slice.len(), signer))
}

/// `path` must hold exactly `want`; else the first line that differs.
fn same(path: &Path, want: &str) -> CliResult {
    let got = std::fs::read(path).map_err(|e| cli_err!("cannot read {}: {e}", path.display()))?;
    if got == want.as_bytes() {
        return Ok(());
    }
    let got = String::from_utf8_lossy(&got);
    let line = got
        .split('\n')
        .zip(want.split('\n'))
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| got.split('\n').count().min(want.split('\n').count()))
        + 1;
    Err(cli_err!(
        "{}: line {line} is not what the proven entries say: the file was changed after the report was made",
        path.display()
    ))
}
