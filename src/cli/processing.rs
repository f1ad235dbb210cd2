//! `daypass tenant processing`: the register of processing
//! (docs/compliance/processing.md): set a tenant's record from the TOML
//! file an admin keeps (read and checked here first, so a mistake names its
//! line and field), show one version, list the versions, and write the
//! register document for one tenant or all. What is valid and who may read
//! what is the server's business; this file owns the flags and the output.

use std::path::{Path, PathBuf};

use clap::{Subcommand, ValueEnum};
use serde_json::{Value, json};

use super::{CliError, CliResult, Connection, connect::connect, output};
use crate::{client::Clients, domain::ProcessingRecord, pb};

#[derive(Debug, Subcommand)]
pub enum ProcessingCommand {
    /// Set a tenant's record of processing from a TOML file (admin); the
    /// same content as the current version writes nothing.
    #[command(
        after_help = "Example:\n  daypass tenant processing set acme --file examples/processing-record.toml --as ada"
    )]
    Set {
        /// The registered tenant's name.
        tenant: String,
        /// The record, as TOML (docs/compliance/processing.md shows the format).
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
    },
    /// Show a tenant's record (admin, auditor, the tenant itself).
    #[command(
        after_help = "Examples:\n  daypass tenant processing show acme --as eve\n  \
        daypass tenant processing show acme --version 1 --as acme"
    )]
    Show {
        /// The tenant's name.
        tenant: String,
        /// This version instead of the current one.
        #[arg(long, value_name = "N")]
        version: Option<u32>,
    },
    /// List the versions of a tenant's record: when, by whom, SHA-256.
    #[command(after_help = "Example:\n  daypass tenant processing history acme --as ada")]
    History {
        /// The tenant's name.
        tenant: String,
    },
    /// Write the register document: the declared record and what daypass
    /// knows itself, for one tenant or (admin, auditor) all.
    #[command(after_help = "Examples:\n  \
        daypass tenant processing document acme --format html --out acme.html --as ada\n  \
        daypass tenant processing document --all --format json --as eve")]
    Document {
        /// The tenant (a tenant caller: itself by default).
        #[arg(conflicts_with = "all")]
        tenant: Option<String>,
        /// Every tenant: the register shown on request.
        #[arg(long)]
        all: bool,
        /// md (Markdown), html or json.
        #[arg(long, value_enum, default_value = "md")]
        format: DocFormatArg,
        /// This version of the tenant's record instead of the current one.
        #[arg(long, value_name = "N", conflicts_with = "all")]
        version: Option<u32>,
        /// Write to this file instead of standard output.
        #[arg(long, short = 'o', value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum DocFormatArg {
    #[value(alias = "markdown")]
    Md,
    Html,
    Json,
}

impl DocFormatArg {
    fn as_str(self) -> &'static str {
        match self {
            DocFormatArg::Md => "markdown",
            DocFormatArg::Html => "html",
            DocFormatArg::Json => "json",
        }
    }
}

/// Reads and checks a record file; the error names the file, line and field.
pub fn read_record(path: &Path) -> Result<ProcessingRecord, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| cli_err!("cannot read {}: {e}", path.display()))?;
    ProcessingRecord::from_toml(&text).map_err(|e| cli_err!("{}: {e}", path.display()))
}

/// Runs one `daypass tenant processing` command against the server.
pub(super) async fn run(
    conn: &Connection,
    command: ProcessingCommand,
    json_out: bool,
) -> CliResult {
    // A bad file fails before any connection is made.
    let record = match &command {
        ProcessingCommand::Set { file, .. } => Some(read_record(file)?),
        _ => None,
    };
    let mut c = connect(conn).await?;
    match command {
        ProcessingCommand::Set { tenant, file } => {
            let record = record.ok_or_else(|| cli_err!("{}: not read", file.display()))?;
            let r = c
                .processing
                .set_processing_record(pb::SetProcessingRecordRequest {
                    tenant,
                    record: Some(crate::rpc::record_to_pb(&record.to_raw())),
                })
                .await?
                .into_inner();
            let v = r.version.clone().unwrap_or_default();
            let text = if r.unchanged {
                format!(
                    "unchanged: tenant {}'s record is already version {} (sha256 {}); nothing was written\n",
                    r.tenant, v.version, v.sha256
                )
            } else {
                format!(
                    "recorded version {} of tenant {}'s record of processing (entry {}, sha256 {})\n",
                    v.version, r.tenant, v.seq, v.sha256
                )
            };
            output::print_json_or_text(
                json_out,
                &json!({
                    "tenant": r.tenant,
                    "unchanged": r.unchanged,
                    "version": version_json(&v),
                }),
                &text,
            );
        }
        ProcessingCommand::Show { tenant, version } => {
            let r = c
                .processing
                .get_processing_record(pb::GetProcessingRecordRequest {
                    tenant,
                    version: version.unwrap_or(0),
                })
                .await?
                .into_inner();
            let v = r.version.clone().unwrap_or_default();
            let record: Value = serde_json::from_str(&r.canonical_json).unwrap_or(Value::Null);
            output::print_json_or_text(
                json_out,
                &json!({"tenant": r.tenant, "version": version_json(&v), "record": record}),
                &show_text(&r, &v),
            );
        }
        ProcessingCommand::History { tenant } => {
            let r = history(&mut c, &tenant).await?;
            let mut t = output::Table::new(vec!["VERSION", "RECORDED", "BY", "ENTRY", "SHA256"]);
            for v in &r.versions {
                t.row(vec![
                    v.version.to_string(),
                    output::time(v.recorded_at_ms),
                    v.recorded_by.clone(),
                    v.seq.to_string(),
                    v.sha256.clone(),
                ]);
            }
            let text = if r.versions.is_empty() {
                format!("tenant {} has no record of processing yet\n", r.tenant)
            } else {
                t.render()
            };
            output::print_json_or_text(
                json_out,
                &json!({
                    "tenant": r.tenant,
                    "versions": r.versions.iter().map(version_json).collect::<Vec<_>>(),
                }),
                &text,
            );
        }
        ProcessingCommand::Document {
            tenant,
            all,
            format,
            version,
            out,
        } => {
            let doc = c
                .processing
                .processing_register_document(pb::ProcessingRegisterDocumentRequest {
                    tenant: tenant.unwrap_or_default(),
                    all,
                    format: format.as_str().into(),
                    version: version.unwrap_or(0),
                })
                .await?
                .into_inner();
            match out {
                Some(path) => {
                    std::fs::write(&path, &doc.content)
                        .map_err(|e| cli_err!("cannot write {}: {e}", path.display()))?;
                    println!("wrote {} ({})", path.display(), doc.media_type);
                }
                None => print!("{}", doc.content),
            }
        }
    }
    Ok(())
}

async fn history(
    c: &mut Clients,
    tenant: &str,
) -> Result<pb::ListProcessingRecordsResponse, CliError> {
    Ok(c.processing
        .list_processing_records(pb::ListProcessingRecordsRequest {
            tenant: tenant.to_owned(),
        })
        .await?
        .into_inner())
}

/// The register document of one tenant in `format`, for an export.
pub(super) async fn document(
    c: &mut Clients,
    tenant: &str,
    format: &str,
) -> Result<String, CliError> {
    Ok(c.processing
        .processing_register_document(pb::ProcessingRegisterDocumentRequest {
            tenant: tenant.to_owned(),
            all: false,
            format: format.to_owned(),
            version: 0,
        })
        .await?
        .into_inner()
        .content)
}

fn version_json(v: &pb::ProcessingVersion) -> Value {
    json!({
        "version": v.version,
        "recorded_at": output::time_json(v.recorded_at_ms),
        "recorded_by": v.recorded_by,
        "sha256": v.sha256,
        "seq": v.seq,
    })
}

fn show_text(r: &pb::ProcessingRecordResponse, v: &pb::ProcessingVersion) -> String {
    let rec = r.record.clone().unwrap_or_default();
    let contact = |c: &Option<pb::ProcessingContact>| {
        c.as_ref()
            .filter(|c| !c.name.is_empty())
            .map_or("none".to_owned(), |c| format!("{} ({})", c.name, c.contact))
    };
    let list = |title: &str, items: &[String]| {
        let mut s = format!("{title}:\n");
        if items.is_empty() {
            s.push_str("  none\n");
        }
        for i in items {
            s.push_str(&format!("  - {i}\n"));
        }
        s
    };
    let mut out = format!(
        "tenant {}: record of processing version {} (recorded {} by {}, entry {})\nsha256 {}\n\n",
        r.tenant,
        v.version,
        output::time(v.recorded_at_ms),
        v.recorded_by,
        v.seq,
        v.sha256
    );
    out.push_str(&format!("controller: {}\n", contact(&rec.controller)));
    out.push_str(&format!(
        "representative: {}\n",
        contact(&rec.representative)
    ));
    out.push_str(&format!(
        "processor contact point: {}\n",
        contact(&rec.processor_contact)
    ));
    out.push_str(&list("categories of processing", &rec.categories));
    out.push_str(&list("purposes", &rec.purposes));
    out.push_str(&list("data subjects", &rec.data_subjects));
    out.push_str(&list("personal data", &rec.personal_data));
    out.push_str(&list("recipients", &rec.recipients));
    let transfers: Vec<String> = rec
        .transfers
        .iter()
        .map(|t| format!("{}: {}", t.country, t.safeguard))
        .collect();
    out.push_str(&list("transfers to third countries", &transfers));
    out.push_str(&format!("retention: {}\n", rec.retention));
    out.push_str(&list("security measures", &rec.security_measures));
    out
}
