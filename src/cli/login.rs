//! `daypass login`, `daypass login --list` and `daypass logout`: save,
//! show and remove connection profiles. A login checks the files (they
//! parse, the key is the certificate's) and calls `WhoAmI` once, so a wrong
//! server, CA or certificate fails here, naming which, and nothing is
//! saved. The file format and where it lives are `profile`'s; how client
//! commands use a profile is `connect::resolve`'s.

use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::json;

use super::{
    CliError, CliResult, output,
    profile::{self, Profile, Profiles},
};
use crate::{
    client::{self, ClientIdentity, IdentityFile},
    pb,
};

/// The profile name a login saves without --profile.
const DEFAULT_NAME: &str = "default";
/// ... and with --dev.
const DEV_NAME: &str = "dev";

/// `daypass login --help`'s description (on the command in `mod.rs`: a
/// variant's doc comment would replace one given here).
pub(super) const LONG_ABOUT: &str = "Save a connection profile, so that client commands need no connection flags.\n\n\
        Give the server and your files (--server, --ca, --cert, --key), or a `serve --dev` \
        directory (--dev DIR: its recorded address, its CA and the dev identity named by --as). \
        The files are checked (they parse, the key is the certificate's) and the server is \
        asked who you are (WhoAmI), so a wrong server, CA or certificate fails now and nothing \
        is saved. The profile keeps the absolute paths, never a copy of a certificate or key, in \
        $XDG_CONFIG_HOME/daypass/profiles.toml (else ~/.config/daypass/profiles.toml; mode \
        0600, directory 0700).\n\n\
        The first profile saved is the default (--default makes another one the default). \
        Client commands use --profile NAME (or DAYPASS_PROFILE), else ./daypass-dev when there \
        is one in the current directory, else the default profile; connection flags given with \
        a command win over the profile's settings. `daypass status` shows which is in use.";

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
        daypass login --server https://daypass.example.com:50051 --ca ca.pem --cert staff-alice.pem --key staff-alice.key\n  \
        daypass login --dev ./daypass-dev                     # the dev server's alice, as profile \"dev\"\n  \
        daypass login --dev ./daypass-dev --as eve --profile eve\n  \
        daypass login --list\n  \
        daypass grant list --profile eve\n  \
        daypass logout --profile eve")]
pub struct LoginArgs {
    /// Server address, e.g. https://daypass.example.com:50051.
    #[arg(long, value_name = "URL", required_unless_present_any = ["dev", "list"], conflicts_with = "dev")]
    pub server: Option<String>,
    /// CA certificate that signed the server's certificate.
    #[arg(long, value_name = "PEM", required_unless_present_any = ["dev", "list"], conflicts_with = "dev")]
    pub ca: Option<PathBuf>,
    /// Your client certificate.
    #[arg(long, value_name = "PEM", required_unless_present_any = ["dev", "list"], conflicts_with = "dev")]
    pub cert: Option<PathBuf>,
    /// Your client key (its path is saved, never the key).
    #[arg(long, value_name = "PEM", required_unless_present_any = ["dev", "list"], conflicts_with = "dev")]
    pub key: Option<PathBuf>,
    /// A `daypass serve --dev` directory (e.g. ./daypass-dev): its recorded
    /// address, CA and the dev identity named by --as.
    #[arg(long, value_name = "DIR")]
    pub dev: Option<PathBuf>,
    /// With --dev: the dev identity (alice, bob, rory, ada, eve, pat, acme, globex).
    #[arg(
        long = "as",
        value_name = "NAME",
        requires = "dev",
        default_value = "alice"
    )]
    pub as_name: String,
    /// Name to save it as [default: "dev" with --dev, else "default"];
    /// an existing profile of that name is replaced.
    #[arg(long, value_name = "NAME", value_parser = profile::parse_name)]
    pub profile: Option<String>,
    /// Make it the default profile (the first one saved is anyway).
    #[arg(long)]
    pub default: bool,
    /// Show the saved profiles and which one is the default, and change nothing.
    #[arg(long, conflicts_with_all = ["server", "ca", "cert", "key", "dev", "profile", "default"])]
    pub list: bool,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  daypass logout                # the default profile\n  \
                        daypass logout --profile eve"
)]
pub struct LogoutArgs {
    /// The profile to remove [default: the default profile]. Its
    /// certificate and key files are left where they are.
    #[arg(long, value_name = "NAME", value_parser = profile::parse_name)]
    pub profile: Option<String>,
}

/// `daypass login`.
pub(super) async fn login(args: LoginArgs, json_out: bool) -> CliResult {
    let store = profile::require_store_path()?;
    if args.list {
        return list(&store, json_out);
    }
    let (name, candidate, names) = match &args.dev {
        Some(dir) => dev_profile(dir, &args.as_name)?,
        None => {
            // clap requires all four without --dev.
            let (Some(server), Some(ca), Some(cert), Some(key)) =
                (&args.server, &args.ca, &args.cert, &args.key)
            else {
                return Err(cli_err!(
                    "give --server, --ca, --cert and --key, or --dev DIR"
                ));
            };
            (
                DEFAULT_NAME,
                Profile {
                    server: server.clone(),
                    ca: absolute(ca)?,
                    cert: absolute(cert)?,
                    key: absolute(key)?,
                },
                ["--ca", "--cert", "--key"],
            )
        }
    };
    let name = args.profile.clone().unwrap_or_else(|| name.to_owned());
    let who = check(&candidate, names).await?;
    let mut profiles = Profiles::load(&store)?;
    let replaced = profiles
        .profiles
        .insert(name.clone(), candidate.clone())
        .is_some();
    let default_gone = profiles
        .default
        .as_ref()
        .is_none_or(|d| !profiles.profiles.contains_key(d));
    if args.default || default_gone {
        profiles.default = Some(name.clone());
    }
    profiles.save(&store)?;
    let is_default = profiles.default.as_deref() == Some(name.as_str());
    let identity = whoami_line(&who);
    output::print_json_or_text(
        json_out,
        &json!({
            "profile": name,
            "default": is_default,
            "replaced": replaced,
            "file": store.display().to_string(),
            "server": candidate.server,
            "ca": candidate.ca.display().to_string(),
            "cert": candidate.cert.display().to_string(),
            "key": candidate.key.display().to_string(),
            "principal": who.principal,
            "kind": who.kind,
            "name": who.name,
            "role": output::role(who.role),
        }),
        &format!(
            "{} profile {name}{} in {}\n  server  {}\n  ca      {}\n  cert    {}\n  key     {}\nyou are {identity}\n",
            if replaced { "replaced" } else { "saved" },
            if is_default { " (the default)" } else { "" },
            store.display(),
            candidate.server,
            candidate.ca.display(),
            candidate.cert.display(),
            candidate.key.display(),
        ),
    );
    Ok(())
}

/// `daypass logout`: removes a profile (the default one without --profile).
pub(super) fn logout(args: LogoutArgs, json_out: bool) -> CliResult {
    let store = profile::require_store_path()?;
    let mut profiles = Profiles::load(&store)?;
    let name = match args.profile.or_else(|| profiles.default.clone()) {
        Some(n) => n,
        None if profiles.profiles.is_empty() => {
            return Err(cli_err!("no profile is saved (in {})", store.display()));
        }
        None => {
            return Err(cli_err!(
                "there is no default profile: name one with --profile ({})",
                profiles.names()
            ));
        }
    };
    profiles.named(&name, &store)?;
    profiles.profiles.remove(&name);
    if profiles.default.as_deref() == Some(name.as_str()) {
        // The only one left becomes the default, as the first one saved
        // does; among several, the person chooses.
        profiles.default = match profiles.profiles.keys().collect::<Vec<_>>().as_slice() {
            [only] => Some((*only).clone()),
            _ => None,
        };
    }
    profiles.save(&store)?;
    let default_line = match (&profiles.default, profiles.profiles.len()) {
        (Some(d), _) => format!("the default profile is {d}"),
        (None, 0) => "no profile is left".to_owned(),
        (None, _) => format!(
            "there is no default profile now: use --profile, or log in again with --default ({})",
            profiles.names()
        ),
    };
    output::print_json_or_text(
        json_out,
        &json!({"removed": name, "default": profiles.default}),
        &format!("removed profile {name}; {default_line}\n"),
    );
    Ok(())
}

/// `daypass login --list`.
fn list(store: &Path, json_out: bool) -> CliResult {
    let profiles = Profiles::load(store)?;
    if json_out {
        let list: Vec<_> = profiles
            .profiles
            .iter()
            .map(|(n, p)| {
                json!({
                    "profile": n,
                    "default": profiles.default.as_deref() == Some(n.as_str()),
                    "server": p.server,
                    "ca": p.ca.display().to_string(),
                    "cert": p.cert.display().to_string(),
                    "key": p.key.display().to_string(),
                })
            })
            .collect();
        println!("{:#}", serde_json::Value::Array(list));
        return Ok(());
    }
    if profiles.profiles.is_empty() {
        println!(
            "no profiles saved (in {}); save one with `daypass login`",
            store.display()
        );
        return Ok(());
    }
    let mut table = output::Table::new(vec!["PROFILE", "DEFAULT", "SERVER", "CERT"]);
    for (n, p) in &profiles.profiles {
        let default = profiles.default.as_deref() == Some(n.as_str());
        table.row(vec![
            n.clone(),
            if default { "yes" } else { "" }.to_owned(),
            p.server.clone(),
            p.cert.display().to_string(),
        ]);
    }
    print!("{}", table.render());
    Ok(())
}

/// The profile a `serve --dev` directory gives for the dev identity `as_name`.
fn dev_profile(
    dir: &Path,
    as_name: &str,
) -> Result<(&'static str, Profile, [&'static str; 3]), CliError> {
    let dir = absolute(dir)?;
    let certs = dir.join("certs");
    if !certs.is_dir() {
        return Err(cli_err!(
            "{} is not a `daypass serve --dev` directory (it has no certs/)",
            dir.display()
        ));
    }
    let address = dir.join(crate::dev::ADDRESS_FILE);
    let server = std::fs::read_to_string(&address)
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| s.starts_with("https://"))
        .ok_or_else(|| {
            cli_err!(
                "no server address recorded in {}: start `daypass serve --dev` beside it first",
                address.display()
            )
        })?;
    let (cert, key) = super::connect::dev_identity(&certs, as_name)?;
    Ok((
        DEV_NAME,
        Profile {
            server,
            ca: certs.join("ca.pem"),
            cert,
            key,
        },
        ["the dev CA", "the dev certificate", "the dev key"],
    ))
}

/// Checks the candidate's files and asks the server who they make us.
/// `names` are how the CA, certificate and key were given (for messages).
async fn check(p: &Profile, names: [&str; 3]) -> Result<pb::WhoAmIResponse, CliError> {
    let id = ClientIdentity::from_files(&p.ca, &p.cert, &p.key).map_err(|e| cli_err!("{e}"))?;
    id.check().map_err(|e| {
        let (flag, path) = match e.file {
            IdentityFile::Ca => (names[0], &p.ca),
            IdentityFile::Cert => (names[1], &p.cert),
            IdentityFile::Key => (names[2], &p.key),
        };
        cli_err!("{flag} {}: {e}; nothing was saved", path.display())
    })?;
    let mut clients = client::connect(&p.server, &id).await.map_err(|e| match e {
        client::ClientError::Connect { detail, .. } => {
            cli_err!(
                "{}; nothing was saved",
                explain_connect(p, names[0], &detail)
            )
        }
        other => cli_err!("{other}; nothing was saved"),
    })?;
    let who = clients
        .staff
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .map_err(|s| cli_err!("{}; nothing was saved", CliError::from(s)))?;
    Ok(who.into_inner())
}

/// Why a connection to the profile's server failed, saying which setting
/// is likely wrong.
pub(super) fn explain_connect(p: &Profile, ca_name: &str, detail: &str) -> String {
    let server = &p.server;
    if ["UnknownIssuer", "BadSignature", "invalid peer certificate"]
        .iter()
        .any(|m| detail.contains(m))
        && !detail.contains("NotValidForName")
    {
        format!(
            "the server at {server} presented a certificate that {ca_name} {} did not issue ({detail}): is that the CA of this server?",
            p.ca.display()
        )
    } else if detail.contains("NotValidForName") {
        format!(
            "the certificate of the server at {server} does not name that host ({detail}): is --server right?"
        )
    } else if detail.contains("refused") {
        format!("nothing answers at {server} ({detail}): is the server running, is --server right?")
    } else {
        format!("cannot connect to {server}: {detail} (is the server running? is --server right?)")
    }
}

/// `spiffe://…/staff/alice (staff, support)`, as `whoami` prints it.
pub(super) fn whoami_line(w: &pb::WhoAmIResponse) -> String {
    format!(
        "{} ({}{})",
        w.principal,
        w.kind,
        // An auditor's kind is its role: say it once.
        if w.role != 0 && output::role(w.role) != w.kind {
            format!(", {}", output::role(w.role))
        } else {
            String::new()
        }
    )
}

/// `p` as an absolute path (relative to the current directory; symbolic
/// links are kept, so a renewed certificate behind one is picked up).
fn absolute(p: &Path) -> Result<PathBuf, CliError> {
    std::path::absolute(p).map_err(|e| cli_err!("cannot resolve {}: {e}", p.display()))
}
