//! How client commands reach the server: the connection flags, the dev
//! identity lookup under ./daypass-dev/certs, [`connect`], and `whoami`,
//! which shows the identity a connection presents. The mutual-TLS client
//! itself lives in `crate::client`.

use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::json;

use super::{CliError, CliResult, DEV_DIR, output};
use crate::{
    client::{self, ClientIdentity, Clients},
    pb,
};

pub const DEFAULT_SERVER: &str = "https://127.0.0.1:50051";

/// The connection flags, as typed (for the tip on one given where it is
/// not taken).
pub(super) const FLAGS: [&str; 5] = ["--server", "--ca", "--cert", "--key", "--as"];

// How client commands reach the server. Without --cert, the dev identity
// named by --as under ./daypass-dev/certs is used when present.
//
// Flattened into each command that connects, never onto the top level:
// the flags go after the command name (`daypass grant list --as eve`).
// They are `global` so that a group's flags are also taken after its
// subcommand (`daypass grant --as eve list` and `daypass grant list --as
// eve` alike). (Plain comments: a doc comment here would become the
// `about` of the commands it is flattened into.)
#[derive(Debug, Args)]
#[command(next_help_heading = "Connection")]
pub struct Connection {
    /// Server address [default: the address `serve --dev` recorded in
    /// ./daypass-dev/address, else https://127.0.0.1:50051].
    #[arg(long, global = true, env = "DAYPASS_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// CA certificate that signed the server's certificate [default: in a
    /// dev directory, ./daypass-dev/certs/ca.pem].
    #[arg(long, global = true, env = "DAYPASS_CA", value_name = "PEM")]
    pub ca: Option<PathBuf>,
    /// Your client certificate (with --key) [default: the dev identity of --as].
    #[arg(long, global = true, env = "DAYPASS_CERT", value_name = "PEM")]
    pub cert: Option<PathBuf>,
    /// Your client key (with --cert).
    #[arg(long, global = true, env = "DAYPASS_KEY", value_name = "PEM")]
    pub key: Option<PathBuf>,
    /// Dev identity to use, from ./daypass-dev/certs (without --cert): any
    /// of them works, alice, bob (support), rory (root), ada (admin), eve
    /// (auditor), pat (partnerships), acme, globex (tenants).
    #[arg(
        long = "as",
        global = true,
        env = "DAYPASS_AS",
        default_value = "alice",
        value_name = "NAME"
    )]
    pub as_name: String,
}

/// Connects with the identity the flags name.
pub(super) async fn connect(conn: &Connection) -> Result<Clients, CliError> {
    let (ca, cert, key) = identity_files(conn)?;
    let id = ClientIdentity::from_files(&ca, &cert, &key).map_err(|e| cli_err!("{e}"))?;
    let server = server_url(conn);
    client::connect(&server, &id).await.map_err(|e| match e {
        client::ClientError::Identity(_) => cli_err!("{e}"),
        _ => cli_err!("{e} (is the server running? is --server right?)"),
    })
}

/// `daypass whoami`: who the server thinks you are.
pub(super) async fn whoami(conn: &Connection, json_out: bool) -> CliResult {
    let mut c = connect(conn).await?;
    let w = c.staff.who_am_i(pb::WhoAmIRequest {}).await?.into_inner();
    output::print_json_or_text(
        json_out,
        &json!({"principal": w.principal, "kind": w.kind, "name": w.name, "role": output::role(w.role)}),
        &format!(
            "{} ({}{})\n",
            w.principal,
            w.kind,
            // An auditor's kind is its role: say it once.
            if w.role != 0 && output::role(w.role) != w.kind {
                format!(", {}", output::role(w.role))
            } else {
                String::new()
            }
        ),
    );
    Ok(())
}

/// `--server` when given; else the address the dev server in
/// ./daypass-dev recorded when it started; else [`DEFAULT_SERVER`].
pub fn server_url(conn: &Connection) -> String {
    if let Some(s) = &conn.server {
        return s.clone();
    }
    std::fs::read_to_string(Path::new(DEV_DIR).join(crate::dev::ADDRESS_FILE))
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| s.starts_with("https://"))
        .unwrap_or_else(|| DEFAULT_SERVER.to_owned())
}

/// --ca/--cert/--key when given (the dev CA when only --ca is left out in
/// a dev directory), else the dev identity named by --as.
fn identity_files(conn: &Connection) -> Result<(PathBuf, PathBuf, PathBuf), CliError> {
    let dev_certs = Path::new(DEV_DIR).join("certs");
    match (&conn.ca, &conn.cert, &conn.key) {
        (Some(ca), Some(cert), Some(key)) => Ok((ca.clone(), cert.clone(), key.clone())),
        (None, Some(cert), Some(key)) => {
            let dev_ca = dev_certs.join("ca.pem");
            if dev_ca.exists() {
                Ok((dev_ca, cert.clone(), key.clone()))
            } else {
                Err(cli_err!(
                    "give --ca too (the CA that signed the server's certificate): there is no ./{DEV_DIR}/certs/ca.pem here"
                ))
            }
        }
        (_, Some(_), None) | (_, None, Some(_)) => Err(cli_err!(
            "give both --cert and --key (your client certificate and its key)"
        )),
        (ca, None, None) if dev_certs.is_dir() => {
            let name = &conn.as_name;
            let stem = ["staff", "auditor", "tenant"]
                .iter()
                .map(|k| format!("{k}-{name}"))
                .find(|s| dev_certs.join(format!("{s}.pem")).exists())
                .ok_or_else(|| cli_err!("no dev identity {name:?} in {}; try alice, bob, rory, ada, eve, pat, acme or globex", dev_certs.display()))?;
            Ok((
                ca.clone().unwrap_or_else(|| dev_certs.join("ca.pem")),
                dev_certs.join(format!("{stem}.pem")),
                dev_certs.join(format!("{stem}.key")),
            ))
        }
        _ => Err(cli_err!(
            "give --ca, --cert and --key (or DAYPASS_CA, DAYPASS_CERT, DAYPASS_KEY); no ./{DEV_DIR} here: for the dev identities, run client commands in the directory where `daypass serve --dev` runs"
        )),
    }
}
