//! How client commands reach the server: the connection flags, where each
//! setting comes from ([`resolve`]: flags, a saved profile, the dev
//! directory ./daypass-dev), [`connect`], and `whoami`,
//! which shows the identity a connection presents. The mutual-TLS client
//! itself lives in `crate::client`.

use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::json;

use super::{
    CliError, CliResult, DEV_DIR, output,
    profile::{self, Profile, Profiles},
};
use crate::{
    client::{self, ClientIdentity, Clients},
    pb,
};

pub const DEFAULT_SERVER: &str = "https://127.0.0.1:50051";

/// The connection flags, as typed (for the tip on one given where it is
/// not taken).
pub(super) const FLAGS: [&str; 6] = ["--server", "--ca", "--cert", "--key", "--as", "--profile"];

// How client commands reach the server: flags, then --profile, then
// ./daypass-dev, then the default profile (`resolve` has the rules).
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
    /// Server address [default: the profile's; in a dev directory, the
    /// address `serve --dev` recorded in ./daypass-dev/address; else
    /// https://127.0.0.1:50051].
    #[arg(long, global = true, env = "DAYPASS_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// CA certificate that signed the server's certificate [default: the
    /// profile's; in a dev directory, ./daypass-dev/certs/ca.pem].
    #[arg(long, global = true, env = "DAYPASS_CA", value_name = "PEM")]
    pub ca: Option<PathBuf>,
    /// Your client certificate (with --key) [default: the profile's; in a
    /// dev directory, the dev identity of --as].
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
    /// Saved profile to use (`daypass login` saves them; `daypass login
    /// --list` shows them) [default: in a dev directory, the dev identity;
    /// else the default profile]. Flags given with it win over its settings.
    #[arg(long, global = true, env = "DAYPASS_PROFILE", value_name = "NAME", value_parser = profile::parse_name)]
    pub profile: Option<String>,
}

/// Connects with the identity [`resolve`] finds.
pub(super) async fn connect(conn: &Connection) -> Result<Clients, CliError> {
    let resolved = resolve(conn)?;
    let id = resolved.identity()?;
    connect_resolved(&resolved, &id).await
}

/// Connects to `resolved.server` presenting `id`.
pub(super) async fn connect_resolved(
    resolved: &Resolved,
    id: &ClientIdentity,
) -> Result<Clients, CliError> {
    client::connect(&resolved.server, id)
        .await
        .map_err(|e| match e {
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
        &format!("{}\n", super::login::whoami_line(&w)),
    );
    Ok(())
}

/// Where a connection's settings came from, for `daypass status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Source {
    /// --server, --ca, --cert and --key (or their environment variables).
    Flags,
    /// A saved profile: named by --profile / DAYPASS_PROFILE, or the default.
    Profile { name: String, default: bool },
    /// ./daypass-dev in the current directory.
    DevDir,
}

/// The settings a client command connects with, and where they came from.
#[derive(Clone, Debug)]
pub(super) struct Resolved {
    pub source: Source,
    /// The connection flags that were given over what `source` says.
    pub overridden: Vec<&'static str>,
    pub server: String,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Resolved {
    /// "profile work (default)", "flags", "dev directory ./daypass-dev",
    /// with the flags given over a profile or the dev directory.
    pub fn describe(&self) -> String {
        let base = match &self.source {
            Source::Flags => return "flags".into(),
            Source::Profile {
                name,
                default: true,
            } => format!("profile {name} (the default)"),
            Source::Profile { name, .. } => format!("profile {name}"),
            Source::DevDir => format!("dev directory ./{DEV_DIR}"),
        };
        if self.overridden.is_empty() {
            base
        } else {
            format!("{base}, with {} from flags", self.overridden.join(", "))
        }
    }

    /// Reads the three files.
    pub fn identity(&self) -> Result<ClientIdentity, CliError> {
        ClientIdentity::from_files(&self.ca, &self.cert, &self.key).map_err(|e| cli_err!("{e}"))
    }
}

/// Finds what a client command connects with. Field by field (the
/// certificate and its key count as one field: they are given together or
/// not at all), the first of these that has it wins:
///
/// 1. `--server`, `--ca`, `--cert`/`--key`, or their environment variables
///    (`DAYPASS_SERVER`, `DAYPASS_CA`, `DAYPASS_CERT`/`DAYPASS_KEY`);
/// 2. the profile named by `--profile` or `DAYPASS_PROFILE` (one that is
///    not saved is an error listing those that are);
/// 3. `./daypass-dev` in the current directory: the address `serve --dev`
///    recorded, its CA, and the dev identity named by `--as` (so the dev
///    walkthrough works as printed);
/// 4. the default profile (`daypass login`; the first one saved, or the
///    one saved with `--default`);
/// 5. for the server only, `https://127.0.0.1:50051`.
///
/// Anything still missing is an error saying what to give, or to run
/// `daypass login`. A file a profile names that has gone is an error
/// naming it and saying to log in again. Docs: docs/operations.md,
/// "Connection profiles".
pub(super) fn resolve(conn: &Connection) -> Result<Resolved, CliError> {
    resolve_in(conn, Path::new(DEV_DIR), profile::store_path())
}

/// [`resolve`] with the dev directory and the profiles file given.
fn resolve_in(
    conn: &Connection,
    dev_dir: &Path,
    store: Option<PathBuf>,
) -> Result<Resolved, CliError> {
    let identity_flags = match (&conn.cert, &conn.key) {
        (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
        (None, None) => None,
        _ => {
            return Err(cli_err!(
                "give both --cert and --key (your client certificate and its key)"
            ));
        }
    };
    let all_flags = conn.server.is_some() && conn.ca.is_some() && identity_flags.is_some();
    let identity_given = identity_flags.is_some();
    let overridden = || {
        let mut given = Vec::new();
        if conn.server.is_some() {
            given.push("--server");
        }
        if conn.ca.is_some() {
            given.push("--ca");
        }
        if identity_given {
            given.push("--cert/--key");
        }
        given
    };
    let dev_certs = dev_dir.join("certs");
    // What fills the fields the flags leave open.
    let base = if let Some(name) = &conn.profile {
        Some(saved(store.as_deref(), Some(name))?.ok_or_else(|| {
            cli_err!("no profile {name:?}: cannot tell where profiles are kept (set HOME)")
        })?)
    } else if all_flags {
        None
    } else if dev_certs.is_dir() {
        let server = std::fs::read_to_string(dev_dir.join(crate::dev::ADDRESS_FILE))
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| s.starts_with("https://"))
            .unwrap_or_else(|| DEFAULT_SERVER.to_owned());
        let ca = conn.ca.clone().unwrap_or_else(|| dev_certs.join("ca.pem"));
        let (cert, key) = match identity_flags {
            Some(files) => files,
            None => dev_identity(&dev_certs, &conn.as_name)?,
        };
        return Ok(Resolved {
            source: Source::DevDir,
            overridden: overridden(),
            server: conn.server.clone().unwrap_or(server),
            ca,
            cert,
            key,
        });
    } else {
        saved(store.as_deref(), None)?
    };
    let Some((name, default, profile)) = base else {
        let server = conn
            .server
            .clone()
            .unwrap_or_else(|| DEFAULT_SERVER.to_owned());
        return match (&conn.ca, identity_flags) {
            (Some(ca), Some((cert, key))) => Ok(Resolved {
                source: Source::Flags,
                overridden: Vec::new(),
                server,
                ca: ca.clone(),
                cert,
                key,
            }),
            (None, Some(_)) => Err(cli_err!(
                "give --ca too (the CA that signed the server's certificate): there is no ./{DEV_DIR}/certs/ca.pem here and no default profile (or run `daypass login`)"
            )),
            _ => Err(cli_err!(
                "give --ca, --cert and --key (or DAYPASS_CA, DAYPASS_CERT, DAYPASS_KEY), or run `daypass login` once to save them; no ./{DEV_DIR} here: for the dev identities, run client commands in the directory where `daypass serve --dev` runs, or `daypass login --dev DIR`"
            )),
        };
    };
    // A file the profile supplies must still be there.
    let from_profile = |given: Option<&PathBuf>, what: &str, path: &Path| match given {
        Some(p) => Ok(p.clone()),
        None if path.exists() => Ok(path.to_owned()),
        None => Err(cli_err!(
            "profile {name}: its {what} {} is gone; log in again: daypass login --profile {name} --server … --ca … --cert … --key …",
            path.display()
        )),
    };
    let ca = from_profile(conn.ca.as_ref(), "CA certificate", &profile.ca)?;
    let (cert, key) = match identity_flags {
        Some(files) => files,
        None => (
            from_profile(None, "client certificate", &profile.cert)?,
            from_profile(None, "client key", &profile.key)?,
        ),
    };
    Ok(Resolved {
        source: Source::Profile { name, default },
        overridden: overridden(),
        server: conn.server.clone().unwrap_or(profile.server),
        ca,
        cert,
        key,
    })
}

/// The saved profile `name`, or the default one when `name` is `None`
/// (`None` when there is no default); with whether it is the default.
fn saved(
    store: Option<&Path>,
    name: Option<&str>,
) -> Result<Option<(String, bool, Profile)>, CliError> {
    let Some(path) = store else {
        return Ok(None);
    };
    let profiles = Profiles::load(path)?;
    let default = profiles.default.clone();
    let Some(name) = name.map(str::to_owned).or(default.clone()) else {
        return Ok(None);
    };
    let profile = profiles.named(&name, path)?.clone();
    let is_default = default.as_deref() == Some(name.as_str());
    Ok(Some((name, is_default, profile)))
}

/// The dev identity `name`'s certificate and key under `dev_certs`.
pub(super) fn dev_identity(dev_certs: &Path, name: &str) -> Result<(PathBuf, PathBuf), CliError> {
    let stem = ["staff", "auditor", "tenant"]
        .iter()
        .map(|k| format!("{k}-{name}"))
        .find(|s| dev_certs.join(format!("{s}.pem")).exists())
        .ok_or_else(|| {
            cli_err!(
                "no dev identity {name:?} in {}; try alice, bob, rory, ada, eve, pat, acme or globex",
                dev_certs.display()
            )
        })?;
    Ok((
        dev_certs.join(format!("{stem}.pem")),
        dev_certs.join(format!("{stem}.key")),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(profile: Option<&str>) -> Connection {
        Connection {
            server: None,
            ca: None,
            cert: None,
            key: None,
            as_name: "alice".into(),
            profile: profile.map(str::to_owned),
        }
    }

    fn profile(n: &str, dir: &Path) -> Profile {
        Profile {
            server: format!("https://{n}.example:1"),
            ca: dir.join(format!("{n}-ca.pem")),
            cert: dir.join(format!("{n}.pem")),
            key: dir.join(format!("{n}.key")),
        }
    }

    /// The order of `resolve`, row by row: flags, --profile, the dev
    /// directory, the default profile.
    #[test]
    fn settings_come_from_flags_then_profile_then_dev_dir_then_default() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let d = tmp.path();
        for n in ["work", "lab"] {
            for f in [
                format!("{n}-ca.pem"),
                format!("{n}.pem"),
                format!("{n}.key"),
            ] {
                std::fs::write(d.join(f), "x").expect("write");
            }
        }
        let store = d.join("profiles.toml");
        let mut saved = Profiles::default();
        saved.profiles.insert("work".into(), profile("work", d));
        saved.profiles.insert("lab".into(), profile("lab", d));
        saved.default = Some("work".into());
        saved.save(&store).expect("save");
        let dev = d.join("daypass-dev");
        let no_dev = d.join("absent");
        let resolve = |c: &Connection, dev: &Path| resolve_in(c, dev, Some(store.clone()));

        // The default profile, when there is no dev directory.
        let r = resolve(&conn(None), &no_dev).expect("default");
        assert_eq!(
            r.source,
            Source::Profile {
                name: "work".into(),
                default: true
            }
        );
        assert_eq!(r.server, "https://work.example:1");
        assert_eq!(r.describe(), "profile work (the default)");
        // --profile.
        let r = resolve(&conn(Some("lab")), &no_dev).expect("named");
        assert_eq!(r.cert, d.join("lab.pem"));
        // Flags win field by field.
        let mut c = conn(Some("lab"));
        c.server = Some("https://other:2".into());
        let r = resolve(&c, &no_dev).expect("override");
        assert_eq!(
            (r.server.as_str(), r.ca.clone()),
            ("https://other:2", d.join("lab-ca.pem"))
        );
        assert_eq!(r.describe(), "profile lab, with --server from flags");
        // A dev directory wins over the default profile, not over --profile.
        std::fs::create_dir_all(dev.join("certs")).expect("dev");
        std::fs::write(dev.join("certs/staff-alice.pem"), "x").expect("write");
        std::fs::write(dev.join("address"), "https://127.0.0.1:4242\n").expect("write");
        let r = resolve(&conn(None), &dev).expect("dev");
        assert_eq!(r.source, Source::DevDir);
        assert_eq!(r.server, "https://127.0.0.1:4242");
        assert_eq!(r.cert, dev.join("certs/staff-alice.pem"));
        let r = resolve(&conn(Some("lab")), &dev).expect("named over dev");
        assert_eq!(r.cert, d.join("lab.pem"));
        // All flags: the flags alone, no profile read.
        let mut c = conn(None);
        c.server = Some("https://x:3".into());
        c.ca = Some("ca.pem".into());
        c.cert = Some("me.pem".into());
        c.key = Some("me.key".into());
        assert_eq!(resolve(&c, &dev).expect("flags").source, Source::Flags);
        // A name not saved lists those that are; a gone file is named.
        let e = resolve(&conn(Some("nope")), &no_dev)
            .expect_err("unknown")
            .0;
        assert!(e.contains("lab, work (default)"), "{e}");
        std::fs::remove_file(d.join("work.key")).expect("remove");
        let e = resolve(&conn(None), &no_dev).expect_err("gone").0;
        assert!(
            e.contains("client key") && e.contains("log in again"),
            "{e}"
        );
        // Nothing anywhere: today's error, with the hint.
        let e = resolve_in(&conn(None), &no_dev, None)
            .expect_err("nothing")
            .0;
        assert!(e.contains("daypass login"), "{e}");
    }
}
