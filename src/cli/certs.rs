//! `daypass certs`: creates the CA, the server certificate, the log
//! signing key, the gate keys and client certificates in a directory. The
//! certificate work itself lives in `crate::pki`; this file owns the flags
//! and what is printed.

use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};

use super::CliResult;
use crate::{
    config::DEFAULT_TRUST_DOMAIN,
    identity::{Name, PrincipalKind},
    pki,
};

#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Create a CA, a server certificate, the log signing key and the gate
    /// keys (token key, grant CA).
    Init {
        /// The directory to write to (created if missing).
        #[arg(long, default_value = "certs")]
        dir: PathBuf,
        /// Host name or IP address for the server certificate (repeatable).
        #[arg(long = "host", default_values_t = ["localhost".to_string(), "127.0.0.1".to_string()])]
        hosts: Vec<String>,
        /// The SPIFFE trust domain the certificates name (spiffe://DOMAIN/…).
        #[arg(long, env = "DAYPASS_TRUST_DOMAIN", default_value = DEFAULT_TRUST_DOMAIN)]
        trust_domain: String,
        /// Replace an existing CA and log key.
        #[arg(long)]
        force: bool,
    },
    /// Create only the log signing key (log.key, log.pub) in --dir.
    LogKey {
        /// The directory to write to (created if missing).
        #[arg(long, default_value = "certs")]
        dir: PathBuf,
        /// The log's name (checkpoint origin); default <trust-domain>/log.
        #[arg(long)]
        origin: Option<String>,
        /// The SPIFFE trust domain the certificates name (spiffe://DOMAIN/…).
        #[arg(long, env = "DAYPASS_TRUST_DOMAIN", default_value = DEFAULT_TRUST_DOMAIN)]
        trust_domain: String,
        /// Replace files that exist already.
        #[arg(long)]
        force: bool,
    },
    /// Create only the gate keys tenants verify against: the token key
    /// (token.key, token.pub) and the grant CA (grant-ca.pem, grant-ca.key).
    GateKeys {
        /// The directory to write to (created if missing).
        #[arg(long, default_value = "certs")]
        dir: PathBuf,
        /// Replace files that exist already.
        #[arg(long)]
        force: bool,
    },
    /// Issue a client certificate naming a principal.
    Issue {
        /// What the certificate is for: a staff member, a tenant or an auditor.
        #[arg(long, value_enum)]
        kind: KindArg,
        /// The principal's name (e.g. alice, acme).
        #[arg(long)]
        name: String,
        /// The certificate directory: its CA (ca.pem, ca.key) signs, and
        /// the new certificate and key are written there.
        #[arg(long, default_value = "certs")]
        dir: PathBuf,
        /// The SPIFFE trust domain the certificates name (spiffe://DOMAIN/…).
        #[arg(long, env = "DAYPASS_TRUST_DOMAIN", default_value = DEFAULT_TRUST_DOMAIN)]
        trust_domain: String,
        /// Validity in days (at most 3650, the CA's own validity).
        #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(i64).range(1..=3650))]
        days: i64,
        /// Replace files that exist already.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum KindArg {
    Staff,
    Tenant,
    Auditor,
}

/// Runs one `daypass certs` command (no server involved).
pub(super) fn run(c: CertsCommand) -> CliResult {
    match c {
        CertsCommand::Init {
            dir,
            hosts,
            trust_domain,
            force,
        } => {
            let origin = pki::default_log_origin(&trust_domain);
            let written =
                pki::init_dir(&dir, &hosts, &origin, force).map_err(|e| cli_err!("{e}"))?;
            for p in written {
                println!("wrote {}", p.display());
            }
            println!("keep ca.key offline once you have issued the certificates you need");
            println!(
                "give auditors log.pub (the log's verifier key) so they can check checkpoints"
            );
        }
        CertsCommand::GateKeys { dir, force } => {
            for p in pki::create_gate_keys(&dir, force).map_err(|e| cli_err!("{e}"))? {
                println!("wrote {}", p.display());
            }
            println!(
                "tenants fetch the public halves with GetVerificationKeys (docs/integration.md)"
            );
        }
        CertsCommand::LogKey {
            dir,
            origin,
            trust_domain,
            force,
        } => {
            let origin = origin.unwrap_or_else(|| pki::default_log_origin(&trust_domain));
            for p in pki::create_log_key(&dir, &origin, force).map_err(|e| cli_err!("{e}"))? {
                println!("wrote {}", p.display());
            }
        }
        CertsCommand::Issue {
            kind,
            name,
            dir,
            trust_domain,
            days,
            force,
        } => {
            let name = Name::parse(&name).map_err(|e| cli_err!("--name: {e}"))?;
            let kind = match kind {
                KindArg::Staff => PrincipalKind::Staff,
                KindArg::Tenant => PrincipalKind::Tenant,
                KindArg::Auditor => PrincipalKind::Auditor,
            };
            let (cert, key) = pki::issue_to_dir(&dir, kind, &name, &trust_domain, days, force)
                .map_err(|e| cli_err!("{e}"))?;
            println!(
                "wrote {} and {} (spiffe://{trust_domain}/{}/{name})",
                cert.display(),
                key.display(),
                kind.as_str()
            );
        }
    }
    Ok(())
}
