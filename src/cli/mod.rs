//! The `daypass` command line: one binary, subcommands for the server, the
//! PKI, and every client call. Client commands print readable tables, or
//! JSON with `--json`, and fail with one clear line and exit status 1.
//!
//! This file owns the top-level parser ([`Cli`], [`Command`], [`parse`]),
//! the dispatch ([`run`]), the one error type ([`CliError`]) and what
//! several groups share ([`parse_duration`]). Each command group lives in
//! its own file beside its clap definition: `serve`, `certs`, `connect`
//! (the connection flags, where their settings come from, and `whoami`),
//! `profile` (the saved profiles file), `login` (`login`, `logout`),
//! `status`, `staff`, `tenant`, `grant`,
//! `access` (`validate` and `access record`), `audit/`, `webhooks` (dead
//! letters), `processing` (`tenant processing`), `report` (access
//! reports), `docs` (completions and man pages) and `bench` (its flags
//! only: the binary runs it); how things are shown is `output`. What the
//! server does is not here.

/// `cli_err!("…", …)`: a [`CliError`] with a formatted message. Defined
/// before the `mod` lines so every command file can use it.
macro_rules! cli_err {
    ($($t:tt)*) => { $crate::cli::CliError(format!($($t)*)) };
}

mod access;
mod alerts;
mod audit;
mod backup;
mod bench;
mod certs;
mod connect;
mod docs;
mod grant;
mod incident;
mod login;
mod output;
mod processing;
mod profile;
mod report;
mod screen;
mod serve;
mod staff;
mod status;
mod tenant;
mod terminate;
mod webhooks;

use std::io;

use clap::{Parser, Subcommand};

pub use self::{
    access::{AccessCommand, ValidateArgs},
    audit::AuditCommand,
    bench::BenchCommand,
    certs::{CertsCommand, KindArg},
    connect::{Connection, DEFAULT_SERVER},
    docs::{CompletionsArgs, ManArgs},
    grant::GrantCommand,
    serve::{LogFormat, ServeArgs, shutdown_signal},
    staff::{RoleArg, StaffCommand},
    tenant::{ApprovalArg, TenantCommand},
    webhooks::WebhooksCommand,
};

/// Default directory of `serve --dev`.
pub const DEV_DIR: &str = "daypass-dev";

#[derive(Debug, Parser)]
#[command(
    name = "daypass",
    version,
    about = "Time-limited (at most 24 h), fully logged support access to customer environments",
    after_help = "Start with `daypass serve --dev`; it prints a walkthrough.\n\
                  Commands that talk to the server take --server, --ca, --cert, --key, --as and \
                  --profile after the command name, e.g. `daypass grant list --as eve`; \
                  `daypass login` saves them once."
)]
pub struct Cli {
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// The commands. Those that talk to the server carry a [`Connection`]
/// (flattened into the group, or into each command of `audit`, since
/// `audit verify` works offline), so `--help` shows the connection flags
/// only where they mean something.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (`daypass serve --dev` for a local one to try).
    Serve(ServeArgs),
    /// Create the CA and certificates.
    #[command(subcommand)]
    Certs(CertsCommand),
    /// Enrol, offboard and list staff (admin).
    Staff {
        #[command(flatten)]
        conn: Connection,
        #[command(subcommand)]
        command: StaffCommand,
    },
    /// Register and list tenants (admin).
    Tenant {
        #[command(flatten)]
        conn: Connection,
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Request, decide, show and end grants.
    Grant {
        #[command(flatten)]
        conn: Connection,
        #[command(subcommand)]
        command: GrantCommand,
    },
    /// As a tenant: may this engineer act in my environment now?
    Validate(ValidateArgs),
    /// As a tenant: record what an engineer did.
    Access {
        #[command(flatten)]
        conn: Connection,
        #[command(subcommand)]
        command: AccessCommand,
    },
    /// List, acknowledge and resolve the monitor's alerts.
    Alerts {
        #[command(flatten)]
        conn: Connection,
        #[command(subcommand)]
        command: alerts::AlertsCommand,
    },
    /// The breach register: record, update, notify, show, list, document.
    Incident {
        #[command(flatten)]
        conn: Connection,
        #[command(subcommand)]
        command: incident::IncidentCommand,
    },
    /// Pair, revoke and list the office warning screens (admin).
    Screen {
        #[command(flatten)]
        conn: Connection,
        #[command(subcommand)]
        command: screen::ScreenCommand,
    },
    /// Read, export, verify and replay the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Access reports per tenant and period, proven complete; verify them.
    #[command(subcommand)]
    Report(report::ReportCommand),
    /// List and retry the webhooks' dead letters (admin, root).
    Webhooks {
        #[command(flatten)]
        conn: Connection,
        #[command(subcommand)]
        command: WebhooksCommand,
    },
    /// Take an online backup of the running server's whole store (admin).
    Backup(backup::BackupArgs),
    /// Restore a backup into a new data directory, verifying it (offline).
    Restore(backup::RestoreArgs),
    /// Show who the server thinks you are.
    Whoami {
        #[command(flatten)]
        conn: Connection,
    },
    /// Save a connection profile (server, CA, certificate, key), checked
    /// against the server; --list shows them.
    #[command(long_about = login::LONG_ABOUT)]
    Login(login::LoginArgs),
    /// Remove a saved connection profile.
    Logout(login::LogoutArgs),
    /// Show the connection in use, who you are, your certificate's expiry
    /// and the server's health (exit 1 when it cannot be reached).
    Status {
        #[command(flatten)]
        conn: Connection,
    },
    /// Measure daypass on this machine (results for docs/performance.md).
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Print a shell completion script to standard output.
    Completions(CompletionsArgs),
    /// Write the manual pages (daypass.1 and one per command) to a directory.
    Man(ManArgs),
}

/// Parses the command line. Help and version print as clap prints them;
/// any other mistake becomes one line naming it, with clap's exit status (2).
pub fn parse() -> Result<Cli, std::process::ExitCode> {
    use clap::error::ErrorKind;
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    Cli::try_parse_from(&args).map_err(|e| {
        if matches!(
            e.kind(),
            ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
        ) {
            let _ = e.print();
        } else {
            eprintln!("daypass: {}", usage_error_line(&e, &args));
        }
        std::process::ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2))
    })
}

/// Runs a parsed command line, except `bench`: the daypass binary runs
/// that itself. Each group connects to the server itself, after checking
/// what it can check locally; `serve`, `certs`, `completions`, `man`,
/// `restore`, `logout`, `audit verify`, `report verify` and `audit replay
/// --file` never connect.
pub async fn run(cli: Cli) -> CliResult {
    let Cli { json, command } = cli;
    match command {
        Command::Serve(args) => serve::serve(args).await,
        Command::Certs(c) => certs::run(c),
        Command::Bench(_) => Err(cli_err!(
            "`daypass bench` is run by the daypass binary, not by the library"
        )),
        Command::Completions(args) => docs::completions(&args),
        Command::Man(args) => docs::man(&args),
        Command::Staff { conn, command } => staff::run(&conn, command, json).await,
        Command::Tenant { conn, command } => tenant::run(&conn, command, json).await,
        Command::Grant { conn, command } => grant::run(&conn, command, json).await,
        Command::Validate(v) => access::validate(v, json).await,
        Command::Access { conn, command } => access::run(&conn, command, json).await,
        Command::Alerts { conn, command } => alerts::run(&conn, command, json).await,
        Command::Incident { conn, command } => incident::run(&conn, command, json).await,
        Command::Screen { conn, command } => screen::run(&conn, command, json).await,
        Command::Audit(a) => audit::run(a, json).await,
        Command::Report(r) => report::run(r, json).await,
        Command::Webhooks { conn, command } => webhooks::run(&conn, command, json).await,
        Command::Whoami { conn } => connect::whoami(&conn, json).await,
        Command::Login(args) => login::login(args, json).await,
        Command::Logout(args) => login::logout(args, json),
        Command::Status { conn } => status::status(&conn, json).await,
        Command::Backup(b) => backup::backup(b, json).await,
        Command::Restore(r) => backup::restore(r, json),
    }
}

/// A duration as typed: `4h`, `90m`, `1h30m`, `1d` (24 h), `45s` or plain
/// seconds (`3600`); at least 1 s. A clap value parser, so that a value
/// that does not parse is a usage error (exit 2) naming the flag.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    const SHAPE: &str = "not a duration like 4h, 90m, 1h30m, 1d or 3600 (seconds)";
    let t = s.trim();
    if t.starts_with('-') {
        return Err("a duration cannot be negative".into());
    }
    if let Ok(n) = t.parse::<i64>() {
        // 0 would mean "the maximum" to the server: ask for that by omitting the flag.
        return if n > 0 {
            Ok(n)
        } else {
            Err("a duration must be at least 1s".into())
        };
    }
    let (mut total, mut num) = (0i64, String::new());
    for ch in t.chars() {
        if ch.is_ascii_digit() {
            num.push(ch);
            continue;
        }
        let unit = match ch {
            'd' => 86_400,
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return Err(SHAPE.into()),
        };
        let n: i64 = num.parse().map_err(|_| SHAPE.to_owned())?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| "that duration is too long".to_owned())?;
        num.clear();
    }
    if !num.is_empty() || t.is_empty() {
        return Err(SHAPE.into());
    }
    if total == 0 {
        return Err("a duration must be at least 1s".into());
    }
    Ok(total)
}

/// A failed command: one line for the user.
#[derive(Debug)]
pub struct CliError(pub String);

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<tonic::Status> for CliError {
    fn from(s: tonic::Status) -> Self {
        let code = match s.code() {
            tonic::Code::PermissionDenied => "permission denied",
            tonic::Code::Unauthenticated => "not authenticated",
            tonic::Code::InvalidArgument => "invalid argument",
            tonic::Code::NotFound => "not found",
            tonic::Code::AlreadyExists => "already exists",
            tonic::Code::FailedPrecondition => "not possible now",
            tonic::Code::Unavailable => "server unavailable",
            _ => "server error",
        };
        let msg = s.message();
        // A transport failure on a call: say why, from the error's causes
        // (a TLS alert when the server refused our certificate).
        if let Some(source) = std::error::Error::source(&s) {
            let chain = crate::client::error_chain(source);
            let refused_cert = [
                "UnknownCA",
                "BadCertificate",
                "CertificateExpired",
                "CertificateRevoked",
                "CertificateUnknown",
                "CertificateRequired",
                "AccessDenied",
            ]
            .iter()
            .any(|a| chain.contains(a));
            return CliError(if refused_cert {
                format!(
                    "the server refused your client certificate ({chain}): it must be issued by the CA the server trusts (tls.ca) and not be expired; check --cert and --key"
                )
            } else if [
                "connection closed",
                "broken pipe",
                "connection reset",
                "Connection reset",
            ]
            .iter()
            .any(|c| chain.contains(c))
            {
                // TLS 1.3: the server checks the client's certificate after
                // the client thinks the handshake is done, so a refused
                // certificate shows here only as a closed connection.
                format!(
                    "the server closed the connection ({chain}); if this repeats, it does not accept your client certificate: it must be issued by the CA the server trusts (tls.ca) and not be expired (the server's log says why)"
                )
            } else {
                format!("{code}: {msg}: {chain}")
            });
        }
        CliError(if msg.is_empty() {
            format!("{code} ({:?})", s.code())
        } else {
            format!("{code}: {msg}")
        })
    }
}

impl From<io::Error> for CliError {
    fn from(e: io::Error) -> Self {
        cli_err!("{e}")
    }
}

type CliResult = Result<(), CliError>;

/// A clap usage error on one line: its message and tips, without the usage
/// block (`--help` shows that). A connection flag where none is taken
/// (before the command, as older versions took it, or on a command that
/// works offline) gets a tip saying where it goes.
fn usage_error_line(e: &clap::Error, args: &[std::ffi::OsString]) -> String {
    let mut line = clap_error_line(e);
    if let Some(tip) = connection_flag_tip(e, args) {
        line.push_str("; ");
        line.push_str(&tip);
    }
    format!("{line} (see --help)")
}

/// The tip for a connection flag clap did not accept, if that was the mistake.
fn connection_flag_tip(e: &clap::Error, args: &[std::ffi::OsString]) -> Option<String> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if e.kind() != ErrorKind::UnknownArgument {
        return None;
    }
    let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) else {
        return None;
    };
    let flag = arg.split('=').next().unwrap_or_default();
    if !connect::FLAGS.contains(&flag) {
        return None;
    }
    // Before the command name: nothing but flags (and their values) come first.
    let before_command = args
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy())
        .take_while(|a| a.starts_with('-') || !is_command(a))
        .any(|a| a.split('=').next() == Some(flag));
    Some(if before_command {
        format!("connection flags go after the command, e.g. `daypass grant list {flag} …`")
    } else {
        format!("this command does not connect to a server, so it takes no {flag}")
    })
}

/// Is `name` a top-level command of daypass?
fn is_command(name: &str) -> bool {
    use clap::CommandFactory;
    Cli::command()
        .get_subcommands()
        .any(|c| c.get_name() == name)
}

/// clap's message and tips on one line.
fn clap_error_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let mut line = String::new();
    for part in text.lines().map(str::trim).filter(|l| {
        !l.is_empty() && !l.starts_with("Usage:") && !l.starts_with("For more information")
    }) {
        if !line.is_empty() {
            line.push_str(if line.ends_with(':') { " " } else { "; " });
        }
        line.push_str(part.strip_prefix("error: ").unwrap_or(part));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("4h").unwrap(), 14_400);
        assert_eq!(parse_duration("1h30m").unwrap(), 5_400);
        assert_eq!(parse_duration("90").unwrap(), 90);
        assert_eq!(parse_duration("1d").unwrap(), 86_400);
        assert_eq!(
            parse_duration("-1h").unwrap_err(),
            "a duration cannot be negative"
        );
        assert_eq!(
            parse_duration("0").unwrap_err(),
            "a duration must be at least 1s"
        );
        assert_eq!(
            parse_duration("0h").unwrap_err(),
            "a duration must be at least 1s"
        );
        for bad in [
            "",
            "h",
            "4x",
            "4h5",
            "0h",
            "0",
            "-5",
            "99999999999999999999h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    /// Every option and positional argument of every command says what it
    /// is, and none shows an empty default (`[default: ]`).
    #[test]
    fn every_argument_is_described() {
        use clap::CommandFactory;
        fn walk(cmd: &clap::Command, path: &str, problems: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if matches!(id, "help" | "version") {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    problems.push(format!("{path} {id}: no help"));
                }
                let empty_default = arg.get_default_values().iter().any(|v| v.is_empty());
                if empty_default && !arg.is_hide_default_value_set() {
                    problems.push(format!("{path} {id}: shows [default: ]"));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), problems);
            }
        }
        let mut cmd = Cli::command();
        cmd.build(); // the inherited (global) connection flags too
        let mut problems = Vec::new();
        walk(&cmd, "daypass", &mut problems);
        assert!(problems.is_empty(), "{}", problems.join("\n"));
        // The walk sees what it should: a command deep down, with its flags.
        let request = cmd
            .find_subcommand("grant")
            .and_then(|g| g.find_subcommand("request"))
            .expect("grant request");
        assert!(request.get_arguments().any(|a| a.get_id() == "server"));
    }

    /// `--require-ticket` takes the same forms on `tenant add` and `tenant
    /// update`: bare (true), `=true`/`=false`, or absent (add: false;
    /// update: unchanged). A following word is never taken as its value.
    #[test]
    fn require_ticket_forms() {
        let ticket = |args: &[&str]| {
            let mut all = vec!["daypass", "tenant"];
            all.extend(args);
            match Cli::try_parse_from(all).map(|c| c.command) {
                Ok(Command::Tenant {
                    command:
                        TenantCommand::Add { require_ticket, .. }
                        | TenantCommand::Update { require_ticket, .. },
                    ..
                }) => Ok(require_ticket),
                Ok(other) => panic!("{other:?}"),
                Err(e) => Err(e.kind()),
            }
        };
        for verb in ["add", "update"] {
            assert_eq!(ticket(&[verb, "acme", "--require-ticket"]), Ok(Some(true)));
            assert_eq!(ticket(&[verb, "--require-ticket", "acme"]), Ok(Some(true)));
            assert_eq!(
                ticket(&[verb, "acme", "--require-ticket=false"]),
                Ok(Some(false))
            );
            assert_eq!(
                ticket(&[verb, "acme", "--require-ticket=true"]),
                Ok(Some(true))
            );
            assert_eq!(ticket(&[verb, "acme"]), Ok(None));
            assert!(ticket(&[verb, "acme", "--require-ticket=maybe"]).is_err());
        }
    }

    /// A connection flag before the command, as older versions took it,
    /// or on a command that works offline, gets a tip saying where it goes.
    #[test]
    fn misplaced_connection_flags_get_a_tip() {
        let line = |args: &[&str]| {
            let args: Vec<std::ffi::OsString> = args.iter().map(Into::into).collect();
            let e = Cli::try_parse_from(&args).expect_err("a usage error");
            usage_error_line(&e, &args)
        };
        let before = line(&["daypass", "--as", "eve", "audit", "replay"]);
        assert!(
            before.contains("connection flags go after the command"),
            "{before}"
        );
        let offline = line(&["daypass", "certs", "init", "--server", "https://x"]);
        assert!(
            offline.contains("does not connect to a server, so it takes no --server"),
            "{offline}"
        );
        let other = line(&["daypass", "grant", "list", "--bogus"]);
        assert!(!other.contains("connection flags"), "{other}");
        // After the command they parse, before or after the subcommand.
        for args in [
            ["daypass", "grant", "list", "--as", "eve"],
            ["daypass", "grant", "--as", "eve", "list"],
        ] {
            let cli = Cli::try_parse_from(args).expect("parses");
            let Command::Grant { conn, .. } = cli.command else {
                panic!("grant")
            };
            assert_eq!(conn.as_name, "eve");
        }
    }
}
