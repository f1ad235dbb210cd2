//! `daypass tenant terminate`: the end of a tenant's agreement (Art 12.3:
//! return, then delete). In order, each step safe to repeat:
//!
//! 1. `TerminateTenant`: every live grant revoked, no new ones, the
//!    tenant's key handed out;
//! 2. the tenant's complete log slice with inclusion proofs, the signed
//!    checkpoint they prove against and the key, written to `--export DIR`
//!    and checked there (chain, and every sealed entry opens with the key),
//!    with the tenant's register of processing document (JSON and Markdown);
//! 3. with `--confirm NAME` only: `ShredTenant`, which destroys the key on
//!    the server, and with it the tenant's personal details.
//!
//! Without `--confirm` it stops after step 2, so the export can be handed
//! over and checked first; run again with it to finish.

use std::{
    fs::File,
    io::{BufReader, BufWriter, Write},
    path::{Path, PathBuf},
};

use serde_json::json;

use super::{CliError, CliResult, Connection, audit::export::export_tenant, connect::connect};
use crate::{audit::export, pb};

/// The files an export directory holds.
pub const LOG_FILE: &str = "log.jsonl";
pub const CHECKPOINT_FILE: &str = "checkpoint";
pub const KEY_FILE: &str = "tenant.key";
/// The tenant's register of processing document (JSON and Markdown).
pub const PROCESSING_JSON_FILE: &str = "processing-register.json";
pub const PROCESSING_MD_FILE: &str = "processing-register.md";

pub(super) async fn run(
    conn: &Connection,
    name: String,
    dir: PathBuf,
    confirm: Option<String>,
    json_out: bool,
) -> CliResult {
    if let Some(c) = &confirm {
        if *c != name {
            return Err(cli_err!(
                "--confirm {c} does not repeat the tenant's name ({name}); shredding cannot be undone"
            ));
        }
    }
    let mut c = connect(conn).await?;
    let t = c
        .tenants
        .terminate_tenant(pb::TerminateTenantRequest { name: name.clone() })
        .await?
        .into_inner();
    let record = t.tenant.unwrap_or_default();
    eprintln!(
        "terminated tenant {name}: {} grants revoked, no new ones",
        t.revoked_grants.len()
    );

    private_dir(&dir)?;
    let log = dir.join(LOG_FILE);
    let mut w = BufWriter::new(private_file(&log)?);
    let (note, n) = export_tenant(&mut c, &name, 0, &mut w).await?;
    w.flush()?;
    drop(w);
    write_private(&dir.join(CHECKPOINT_FILE), note.as_bytes())?;
    let key_path = dir.join(KEY_FILE);
    let has_key = !t.tenant_key.is_empty();
    if has_key {
        write_private(&key_path, format!("{}\n", t.tenant_key).as_bytes())?;
    }
    eprintln!("exported {n} entries to {}", log.display());
    // The register of processing, as the processor's record of what it did
    // for the tenant (kept after the shred, too).
    for (file, format) in [
        (PROCESSING_JSON_FILE, "json"),
        (PROCESSING_MD_FILE, "markdown"),
    ] {
        let doc = super::processing::document(&mut c, &name, format).await?;
        write_private(&dir.join(file), doc.as_bytes())?;
    }
    eprintln!(
        "wrote the register of processing to {} and {}",
        dir.join(PROCESSING_JSON_FILE).display(),
        dir.join(PROCESSING_MD_FILE).display()
    );

    // Check what is handed over before anything is destroyed.
    let reader = || -> Result<BufReader<File>, CliError> {
        Ok(BufReader::new(File::open(&log).map_err(|e| {
            cli_err!("cannot read {}: {e}", log.display())
        })?))
    };
    // Every entry proven included in the checkpoint's tree (its signature
    // is for the recipient to check, with the log's key).
    let body = note
        .find("\n\n")
        .map(|i| &note[..=i])
        .ok_or_else(|| cli_err!("the server sent a checkpoint that is not a signed note"))?;
    let cp = crate::audit::note::Checkpoint::parse(body)
        .map_err(|e| cli_err!("the server sent a malformed checkpoint: {e}"))?;
    export::verify_against(reader()?, &cp)
        .map_err(|(line, p)| cli_err!("{}: line {line}: {p}", log.display()))?;
    let opened = if has_key {
        let key = crate::audit::seal::parse_key(t.tenant_key.as_bytes())
            .map_err(|e| cli_err!("the server sent a malformed tenant key: {e}"))?;
        let o = export::open_sealed(reader()?, &key)
            .map_err(|(line, why)| cli_err!("{}: line {line}: {why}", log.display()))?;
        eprintln!(
            "checked: every entry is proven included in the checkpoint's tree; {} sealed entries open with {}",
            o.sealed,
            key_path.display()
        );
        o.sealed
    } else {
        eprintln!(
            "checked: every entry is proven included in the checkpoint's tree; no key (nothing sealed, or already shredded)"
        );
        0
    };

    let shredded = if record.shredded_at_ms != 0 {
        eprintln!("tenant {name} was already shredded");
        true
    } else if confirm.is_some() {
        c.tenants
            .shred_tenant(pb::ShredTenantRequest {
                name: name.clone(),
                confirm: name.clone(),
            })
            .await?;
        eprintln!(
            "shredded: the key of {name} is destroyed on the server; its personal details are gone, the log still verifies"
        );
        true
    } else {
        eprintln!(
            "not shredded yet: hand over {} (with its key), then run\n  daypass tenant terminate {name} --export {} --confirm {name}",
            dir.display(),
            dir.display()
        );
        false
    };
    if json_out {
        println!(
            "{:#}",
            json!({
                "tenant": name,
                "revoked_grants": t.revoked_grants,
                "exported": n,
                "sealed_entries": opened,
                "export": dir.display().to_string(),
                "key": has_key.then(|| key_path.display().to_string()),
                "shredded": shredded,
            })
        );
    }
    Ok(())
}

pub(super) fn private_dir(dir: &Path) -> CliResult {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
        .map_err(|e| cli_err!("cannot create {}: {e}", dir.display()))
}

fn private_file(path: &Path) -> Result<File, CliError> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(path)
        .map_err(|e| cli_err!("cannot write {}: {e}", path.display()))
}

pub(super) fn write_private(path: &Path, bytes: &[u8]) -> CliResult {
    let mut f = private_file(path)?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| cli_err!("cannot write {}: {e}", path.display()))
}
