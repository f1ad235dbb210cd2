//! The `daypass` command line: one binary, subcommands for the server, the
//! PKI, and every client call. Client commands print readable tables, or
//! JSON with `--json`, and fail with one clear line and exit status 1.

mod output;

use std::{
    fs::File,
    io::{self, BufReader, BufWriter, Write},
    path::{Path, PathBuf},
    sync::Arc,
};

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::json;

use crate::{
    audit::{self, export, replay},
    client::{self, ClientIdentity, Clients},
    clock::{SystemClock, Timestamp},
    config::{Config, DEFAULT_TRUST_DOMAIN},
    dev,
    identity::{Name, PrincipalKind},
    pb, pki, server,
};

/// Default directory of `serve --dev`.
pub const DEV_DIR: &str = "daypass-dev";
pub const DEFAULT_SERVER: &str = "https://127.0.0.1:50051";

#[derive(Debug, Parser)]
#[command(
    name = "daypass",
    version,
    about = "Time-limited (at most 24 h), fully logged support access to customer environments",
    after_help = "Start with `daypass serve --dev`; it prints a walkthrough."
)]
pub struct Cli {
    #[command(flatten)]
    pub conn: Connection,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// How client commands reach the server. Without --cert, the dev identity
/// named by --as under ./daypass-dev/certs is used when present.
#[derive(Debug, Args)]
pub struct Connection {
    /// Server address.
    #[arg(long, global = true, env = "DAYPASS_SERVER", default_value = DEFAULT_SERVER)]
    pub server: String,
    /// CA certificate that signed the server's certificate.
    #[arg(long, global = true, env = "DAYPASS_CA")]
    pub ca: Option<PathBuf>,
    /// Your client certificate.
    #[arg(long, global = true, env = "DAYPASS_CERT")]
    pub cert: Option<PathBuf>,
    /// Your client key.
    #[arg(long, global = true, env = "DAYPASS_KEY")]
    pub key: Option<PathBuf>,
    /// Dev identity to use (alice, bob, rory, ada, eve, pat, acme, globex).
    #[arg(
        long = "as",
        global = true,
        env = "DAYPASS_AS",
        default_value = "alice"
    )]
    pub as_name: String,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Create the CA and certificates.
    #[command(subcommand)]
    Certs(CertsCommand),
    /// Enrol, offboard and list staff (admin).
    #[command(subcommand)]
    Staff(StaffCommand),
    /// Register and list tenants (admin).
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Request, decide, show and end grants.
    #[command(subcommand)]
    Grant(GrantCommand),
    /// As a tenant: may this engineer act in my environment now?
    Validate(ValidateArgs),
    /// As a tenant: record what an engineer did.
    #[command(subcommand)]
    Access(AccessCommand),
    /// Read, export, verify and replay the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Show who the server thinks you are.
    Whoami,
    /// Measure daypass on this machine (results for docs/performance.md).
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// The log's Merkle tree in a real store: append rate, root and proof
    /// cost at growing log sizes.
    Tree {
        /// Log sizes to measure at, comma-separated.
        #[arg(long, value_delimiter = ',', default_values_t = [1_000u64, 100_000, 1_000_000])]
        sizes: Vec<u64>,
        /// Proofs timed at each size.
        #[arg(long, default_value_t = 1000)]
        proofs: usize,
        /// Where to put the temporary store (default: the system temp dir).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// The real server over real mutual TLS under concurrent load, with its
    /// baselines (empty RPC, raw sled, SHA-256, Ed25519).
    Service {
        /// Measured seconds per workload.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// Calls in flight.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Mutual-TLS connections the calls share.
        #[arg(long, default_value_t = 4)]
        connections: usize,
        /// Where to put the temporary server files (default: the system temp dir).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// The server process at growing log sizes with many active grants:
    /// start-up time, resident memory, disk per entry, append and verify rates.
    Scale {
        /// Log sizes to measure at, comma-separated.
        #[arg(long, value_delimiter = ',', default_values_t = [10_000u64, 100_000, 1_000_000, 10_000_000])]
        sizes: Vec<u64>,
        /// Simultaneously active grants (created first, expiry task running).
        #[arg(long, default_value_t = 100_000)]
        grants: u64,
        /// Where to put the temporary data (default: the system temp dir).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// A tenant's offline decision: grant token and grant certificate
    /// verification beside raw Ed25519 verification.
    Verify {
        /// Measured seconds per workload.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// Grants on the tenant's revocation list.
        #[arg(long, default_value_t = 1000)]
        revoked: usize,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Configuration file (TOML).
    #[arg(long, env = "DAYPASS_CONFIG", required_unless_present = "dev")]
    pub config: Option<PathBuf>,
    /// Create ./daypass-dev/ (CA, certificates, enrolled identities) and serve on 127.0.0.1:50051.
    #[arg(long, conflicts_with = "config")]
    pub dev: bool,
    /// Override the listen address.
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Create a CA, a server certificate, the log signing key and the gate
    /// keys (token key, grant CA).
    Init {
        #[arg(long, default_value = "certs")]
        dir: PathBuf,
        /// Host name or IP address for the server certificate (repeatable).
        #[arg(long = "host", default_values_t = ["localhost".to_string(), "127.0.0.1".to_string()])]
        hosts: Vec<String>,
        #[arg(long, env = "DAYPASS_TRUST_DOMAIN", default_value = DEFAULT_TRUST_DOMAIN)]
        trust_domain: String,
        /// Replace an existing CA and log key.
        #[arg(long)]
        force: bool,
    },
    /// Create only the log signing key (log.key, log.pub) in --dir.
    LogKey {
        #[arg(long, default_value = "certs")]
        dir: PathBuf,
        /// The log's name (checkpoint origin); default <trust-domain>/log.
        #[arg(long)]
        origin: Option<String>,
        #[arg(long, env = "DAYPASS_TRUST_DOMAIN", default_value = DEFAULT_TRUST_DOMAIN)]
        trust_domain: String,
        #[arg(long)]
        force: bool,
    },
    /// Create only the gate keys tenants verify against: the token key
    /// (token.key, token.pub) and the grant CA (grant-ca.pem, grant-ca.key).
    GateKeys {
        #[arg(long, default_value = "certs")]
        dir: PathBuf,
        #[arg(long)]
        force: bool,
    },
    /// Issue a client certificate naming a principal.
    Issue {
        #[arg(long, value_enum)]
        kind: KindArg,
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "certs")]
        dir: PathBuf,
        #[arg(long, env = "DAYPASS_TRUST_DOMAIN", default_value = DEFAULT_TRUST_DOMAIN)]
        trust_domain: String,
        /// Validity in days (at most 3650, the CA's own validity).
        #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(i64).range(1..=3650))]
        days: i64,
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

#[derive(Debug, Subcommand)]
pub enum StaffCommand {
    /// Enrol a person.
    Add {
        name: String,
        #[arg(long, value_enum)]
        role: RoleArg,
    },
    /// End a person's access now (revokes their live grants).
    Offboard { name: String },
    /// List enrolled staff.
    List,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum RoleArg {
    Support,
    Root,
    Admin,
    Auditor,
    Partnerships,
    DataEntry,
    Administration,
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Register a tenant.
    Add {
        name: String,
        #[arg(long, value_enum, default_value_t = ApprovalArg::Auto)]
        approval: ApprovalArg,
        /// Grants for this tenant must name a ticket.
        #[arg(long)]
        require_ticket: bool,
    },
    /// Change a tenant's approval policy or ticket rule.
    Update {
        name: String,
        #[arg(long, value_enum)]
        approval: Option<ApprovalArg>,
        #[arg(long)]
        require_ticket: Option<bool>,
    },
    /// List tenants.
    List,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ApprovalArg {
    Auto,
    Approval,
}

#[derive(Debug, Subcommand)]
pub enum GrantCommand {
    /// Ask for access to a tenant.
    Request {
        tenant: String,
        /// Why you need access (mandatory).
        #[arg(long)]
        reason: String,
        #[arg(long, default_value = "")]
        ticket: String,
        /// How long, e.g. 2h, 90m, 3600s (default and maximum: 24h).
        #[arg(long)]
        duration: Option<String>,
    },
    /// List the grants you may see.
    List {
        #[arg(long, default_value = "")]
        tenant: String,
        #[arg(long, default_value = "")]
        holder: String,
        /// Only pending and active grants.
        #[arg(long)]
        live: bool,
    },
    /// Show one grant.
    Show { id: String },
    /// Approve a pending request (tenant, or a colleague of the requester).
    Approve {
        id: String,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Deny a pending request.
    Deny {
        id: String,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// End a grant now (admin, or the tenant).
    Revoke {
        id: String,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Give up your own grant now.
    Release { id: String },
    /// Print your active grant's signed token (for a tenant to verify
    /// offline), and nothing else, so it can be piped.
    Token { id: String },
    /// Get a client certificate for your active grant, valid until it
    /// expires: a new key is made here and never leaves this machine.
    Cert {
        id: String,
        /// Where to write grant-<id>.pem, grant-<id>.key (0600) and grant-ca.pem.
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The grant id the engineer presents.
    #[arg(long, conflicts_with = "staff", required_unless_present = "staff")]
    pub grant: Option<String>,
    /// Or the engineer's staff name.
    #[arg(long)]
    pub staff: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum AccessCommand {
    /// Log an action taken under a grant.
    Record {
        grant: String,
        #[arg(long)]
        action: String,
        #[arg(long, default_value = "")]
        resource: String,
        /// When it happened (RFC 3339), for a report sent afterwards; logged
        /// even if the grant has ended since. Default: it happens now, and is
        /// refused unless the grant admits its holder now.
        #[arg(long)]
        at: Option<String>,
        /// An id unique to this access, so sending the report again logs it once.
        #[arg(long, default_value = "")]
        report_id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Export the log as JSON Lines (streaming).
    Export {
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// Output file (default: standard output).
        #[arg(long, short)]
        out: Option<PathBuf>,
        /// Also save the signed checkpoint the export ends at, for
        /// `audit verify --checkpoint`.
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// Only this tenant's entries, each with an inclusion proof against
        /// the saved checkpoint (needs --checkpoint). A tenant exports its own
        /// with --tenant and its own name.
        #[arg(long, requires = "checkpoint")]
        tenant: Option<String>,
    },
    /// Verify an export offline: no server needed. With --checkpoint and
    /// --log-key also the signature, the tree root or every inclusion proof.
    Verify {
        file: PathBuf,
        /// A signed checkpoint file (from `audit export --checkpoint`).
        #[arg(long, requires = "log_key")]
        checkpoint: Option<PathBuf>,
        /// The log's verifier key, or a file holding it (certs/log.pub).
        #[arg(long, requires = "checkpoint")]
        log_key: Option<String>,
    },
    /// Print the log's newest signed checkpoint (verified with --log-key).
    Checkpoint {
        #[arg(long)]
        log_key: Option<String>,
        /// Write the note to this file too.
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    /// Accept the newest checkpoint only if the log proves it extends the
    /// last one this witness accepted; otherwise raise an alarm (exit 1).
    Witness {
        /// Witness state: the accepted checkpoints (JSON Lines). Keep it
        /// where the server's operators cannot write.
        #[arg(long)]
        state: PathBuf,
        /// The log's verifier key, or a file holding it (certs/log.pub).
        #[arg(long)]
        log_key: String,
    },
    /// Who had access to which tenant, when, why, and what they did.
    Replay {
        /// Read an export instead of asking the server.
        #[arg(long)]
        file: Option<PathBuf>,
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        person: Option<String>,
        /// RFC 3339 time, e.g. 2026-11-25T00:00:00Z.
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        until: Option<String>,
    },
    /// Follow the log as it is written.
    Tail {
        /// Start at this sequence number (default: the last 10 entries).
        #[arg(long)]
        from: Option<u64>,
    },
    /// Ask the server to verify its stored chain.
    Check,
}

/// Parses the command line. Help and version print as clap prints them;
/// any other mistake becomes one line naming it, with clap's exit status (2).
pub fn parse() -> Result<Cli, std::process::ExitCode> {
    use clap::error::ErrorKind;
    Cli::try_parse().map_err(|e| {
        if matches!(
            e.kind(),
            ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
        ) {
            let _ = e.print();
        } else {
            eprintln!("daypass: {}", usage_error_line(&e));
        }
        std::process::ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2))
    })
}

/// A clap usage error on one line: its message and tips, without the usage
/// block (`--help` shows that).
fn usage_error_line(e: &clap::Error) -> String {
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
    format!("{line} (see --help)")
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
        CliError(if msg.is_empty() {
            format!("{code} ({:?})", s.code())
        } else {
            format!("{code}: {msg}")
        })
    }
}

macro_rules! cli_err {
    ($($t:tt)*) => { CliError(format!($($t)*)) };
}

impl From<io::Error> for CliError {
    fn from(e: io::Error) -> Self {
        cli_err!("{e}")
    }
}

type CliResult = Result<(), CliError>;

/// `daypass bench …`: runs one benchmark and prints its report.
async fn bench(command: BenchCommand) -> CliResult {
    // TEMPORARY during the restructure: the bench moves into the binary.
    let _ = command;
    Err(cli_err!("bench is not available in this build"))
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> CliResult {
    match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Certs(c) => certs(c),
        Command::Bench(b) => bench(b).await,
        Command::Audit(AuditCommand::Verify {
            file,
            checkpoint,
            log_key,
        }) => match (checkpoint, log_key) {
            (Some(cp), Some(key)) => verify_file_against(&file, &cp, &key, cli.json),
            _ => verify_file(&file, cli.json),
        },
        Command::Audit(AuditCommand::Replay {
            file: Some(file),
            tenant,
            person,
            since,
            until,
        }) => {
            let filter = replay_filter(tenant, person, since, until)?;
            let mut lines = export::Lines::new(BufReader::new(open(&file)?));
            let mut entries = Vec::new();
            while let Some((_, e)) = lines
                .next_entry()
                .map_err(|(_, p)| cli_err!("{}: {}", file.display(), p.detail))?
            {
                entries.push(e);
            }
            print_replay(replay::replay(entries, &filter), cli.json)
        }
        command => {
            // Check what can be checked locally before connecting.
            if let Command::Grant(GrantCommand::Request {
                duration: Some(d), ..
            }) = &command
            {
                parse_duration(d)?;
            }
            if let Command::Audit(AuditCommand::Witness { state, log_key }) = &command {
                load_verifier(log_key)?;
                audit::witness::History::load(state).map_err(|e| cli_err!("{e}"))?;
            }
            let clients = connect(&cli.conn).await?;
            client_command(clients, command, cli.json).await
        }
    }
}

async fn connect(conn: &Connection) -> Result<Clients, CliError> {
    let (ca, cert, key) = identity_files(conn)?;
    let id = ClientIdentity::from_files(&ca, &cert, &key).map_err(|e| cli_err!("{e}"))?;
    client::connect(&conn.server, &id)
        .await
        .map_err(|e| match e {
            client::ClientError::Identity(_) => cli_err!("{e}"),
            _ => cli_err!("{e} (is the server running? is --server right?)"),
        })
}

/// --ca/--cert/--key when given, else the dev identity named by --as.
fn identity_files(conn: &Connection) -> Result<(PathBuf, PathBuf, PathBuf), CliError> {
    let dev_certs = Path::new(DEV_DIR).join("certs");
    match (&conn.ca, &conn.cert, &conn.key) {
        (Some(ca), Some(cert), Some(key)) => Ok((ca.clone(), cert.clone(), key.clone())),
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
            "give --ca, --cert and --key (or DAYPASS_CA, DAYPASS_CERT, DAYPASS_KEY); run `daypass serve --dev` for dev identities"
        )),
    }
}

async fn client_command(mut c: Clients, command: Command, json_out: bool) -> CliResult {
    let out = |json: serde_json::Value, text: String| {
        if json_out {
            println!("{json:#}");
        } else {
            print!("{text}");
        }
    };
    match command {
        Command::Whoami => {
            let w = c.staff.who_am_i(pb::WhoAmIRequest {}).await?.into_inner();
            out(
                json!({"principal": w.principal, "kind": w.kind, "name": w.name, "role": output::role(w.role)}),
                format!(
                    "{} ({}{})\n",
                    w.principal,
                    w.kind,
                    if w.role != 0 {
                        format!(", {}", output::role(w.role))
                    } else {
                        String::new()
                    }
                ),
            );
        }
        Command::Staff(StaffCommand::Add { name, role }) => {
            let s = c
                .staff
                .add_staff(pb::AddStaffRequest {
                    name,
                    role: role_pb(role) as i32,
                })
                .await?
                .into_inner();
            out(
                output::staff_json(&s),
                format!(
                    "enrolled {} as {} ({})\n",
                    s.name,
                    output::role(s.role),
                    s.principal
                ),
            );
        }
        Command::Staff(StaffCommand::Offboard { name }) => {
            let r = c
                .staff
                .offboard_staff(pb::OffboardStaffRequest { name: name.clone() })
                .await?
                .into_inner();
            out(
                json!({"staff": r.staff.as_ref().map(output::staff_json), "revoked_grant_ids": r.revoked_grant_ids}),
                format!(
                    "offboarded {name}; revoked {} live grant(s){}\n",
                    r.revoked_grant_ids.len(),
                    if r.revoked_grant_ids.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", r.revoked_grant_ids.join(", "))
                    }
                ),
            );
        }
        Command::Staff(StaffCommand::List) => {
            let r = c
                .staff
                .list_staff(pb::ListStaffRequest {})
                .await?
                .into_inner();
            out(
                json!(r.staff.iter().map(output::staff_json).collect::<Vec<_>>()),
                output::staff_table(&r.staff),
            );
        }
        Command::Tenant(TenantCommand::Add {
            name,
            approval,
            require_ticket,
        }) => {
            let t = c
                .tenants
                .add_tenant(pb::AddTenantRequest {
                    name,
                    approval: approval_pb(approval) as i32,
                    require_ticket,
                })
                .await?
                .into_inner();
            out(
                output::tenant_json(&t),
                format!("added tenant {}\n", output::tenant_summary(&t)),
            );
        }
        Command::Tenant(TenantCommand::Update {
            name,
            approval,
            require_ticket,
        }) => {
            let t = c
                .tenants
                .update_tenant(pb::UpdateTenantRequest {
                    name,
                    approval: approval.map(|a| approval_pb(a) as i32).unwrap_or(0),
                    require_ticket,
                })
                .await?
                .into_inner();
            out(
                output::tenant_json(&t),
                format!("updated tenant {}\n", output::tenant_summary(&t)),
            );
        }
        Command::Tenant(TenantCommand::List) => {
            let r = c
                .tenants
                .list_tenants(pb::ListTenantsRequest {})
                .await?
                .into_inner();
            out(
                json!(
                    r.tenants
                        .iter()
                        .map(output::tenant_json)
                        .collect::<Vec<_>>()
                ),
                output::tenants_table(&r.tenants),
            );
        }
        Command::Grant(g) => grant_command(&mut c, g, json_out).await?,
        Command::Validate(v) => {
            let subject = match (v.grant, v.staff) {
                (Some(g), _) => pb::validate_grant_request::Subject::GrantId(g),
                (None, Some(s)) => pb::validate_grant_request::Subject::Staff(s),
                (None, None) => return Err(cli_err!("give --grant ID or --staff NAME")),
            };
            let r = c
                .grants
                .validate_grant(pb::ValidateGrantRequest {
                    subject: Some(subject),
                })
                .await?
                .into_inner();
            out(
                json!({"allowed": r.allowed, "deny_reason": output::deny_reason(r.deny_reason), "grant_id": r.grant_id,
                       "holder": r.holder, "expires_at": output::time(r.expires_at_ms), "log_seq": r.log_seq}),
                if r.allowed {
                    format!(
                        "ALLOW {} on grant {} until {} (logged as #{})\n",
                        r.holder,
                        r.grant_id,
                        output::time(r.expires_at_ms),
                        r.log_seq
                    )
                } else {
                    format!(
                        "DENY ({}){} (logged as #{})\n",
                        output::deny_reason(r.deny_reason),
                        if r.grant_id.is_empty() {
                            String::new()
                        } else {
                            format!(" grant {} of {}", r.grant_id, r.holder)
                        },
                        r.log_seq
                    )
                },
            );
            if !r.allowed {
                return Err(cli_err!(
                    "access denied: {}",
                    output::deny_reason(r.deny_reason)
                ));
            }
        }
        Command::Access(AccessCommand::Record {
            grant,
            action,
            resource,
            at,
            report_id,
        }) => {
            let accessed_at_ms = match at {
                None => 0,
                Some(t) => Timestamp::parse_rfc3339(&t)
                    .ok_or_else(|| {
                        cli_err!("--at {t:?} is not an RFC 3339 time, e.g. 2026-11-26T10:00:00Z")
                    })?
                    .millis(),
            };
            let r = c
                .grants
                .record_access(pb::RecordAccessRequest {
                    grant_id: grant,
                    action,
                    resource,
                    accessed_at_ms,
                    report_id,
                })
                .await?
                .into_inner();
            let mut said = if r.duplicate {
                format!("already recorded as #{} ({})", r.log_seq, r.entry_hash)
            } else {
                format!("recorded as #{} ({})", r.log_seq, r.entry_hash)
            };
            if !r.within_grant {
                said.push_str("; the grant was not active at that time");
            }
            out(
                json!({
                    "log_seq": r.log_seq,
                    "entry_hash": r.entry_hash,
                    "duplicate": r.duplicate,
                    "within_grant": r.within_grant,
                }),
                format!("{said}\n"),
            );
        }
        Command::Audit(a) => audit_command(&mut c, a, json_out).await?,
        Command::Serve(_) | Command::Certs(_) | Command::Bench(_) => {
            unreachable!("handled before connecting")
        }
    }
    Ok(())
}

async fn grant_command(c: &mut Clients, command: GrantCommand, json_out: bool) -> CliResult {
    let show = |g: &pb::Grant, headline: &str| {
        if json_out {
            println!("{:#}", output::grant_json(g));
        } else {
            println!("{headline}");
            print!("{}", output::grant_detail(g));
        }
    };
    match command {
        GrantCommand::Request {
            tenant,
            reason,
            ticket,
            duration,
        } => {
            let duration_seconds = match duration {
                Some(d) => parse_duration(&d)?,
                None => 0,
            };
            let g = c
                .grants
                .request_grant(pb::RequestGrantRequest {
                    tenant,
                    reason,
                    ticket,
                    duration_seconds,
                })
                .await?
                .into_inner();
            let headline = if output::state(g.state) == "active" {
                format!(
                    "grant {} is active until {}",
                    g.id,
                    output::time(g.expires_at_ms)
                )
            } else {
                format!(
                    "grant {} is pending approval until {}",
                    g.id,
                    output::time(g.pending_until_ms)
                )
            };
            show(&g, &headline);
        }
        GrantCommand::List {
            tenant,
            holder,
            live,
        } => {
            let r = c
                .grants
                .list_grants(pb::ListGrantsRequest {
                    tenant,
                    holder,
                    live_only: live,
                })
                .await?
                .into_inner();
            if json_out {
                println!(
                    "{:#}",
                    json!(r.grants.iter().map(output::grant_json).collect::<Vec<_>>())
                );
            } else {
                print!("{}", output::grants_table(&r.grants));
            }
        }
        GrantCommand::Show { id } => {
            let g = c
                .grants
                .get_grant(pb::GetGrantRequest { grant_id: id })
                .await?
                .into_inner();
            show(&g, &format!("grant {}", g.id));
        }
        GrantCommand::Approve { id, note } => {
            let g = c
                .grants
                .approve_grant(pb::DecideGrantRequest { grant_id: id, note })
                .await?
                .into_inner();
            show(
                &g,
                &format!(
                    "approved: grant {} is active until {}",
                    g.id,
                    output::time(g.expires_at_ms)
                ),
            );
        }
        GrantCommand::Deny { id, note } => {
            let g = c
                .grants
                .deny_grant(pb::DecideGrantRequest { grant_id: id, note })
                .await?
                .into_inner();
            show(&g, &format!("denied grant {}", g.id));
        }
        GrantCommand::Revoke { id, note } => {
            let g = c
                .grants
                .revoke_grant(pb::RevokeGrantRequest { grant_id: id, note })
                .await?
                .into_inner();
            show(&g, &format!("revoked grant {}", g.id));
        }
        GrantCommand::Release { id } => {
            let g = c
                .grants
                .release_grant(pb::ReleaseGrantRequest { grant_id: id })
                .await?
                .into_inner();
            show(&g, &format!("released grant {}", g.id));
        }
        GrantCommand::Token { id } => {
            let g = c
                .grants
                .get_grant(pb::GetGrantRequest { grant_id: id })
                .await?
                .into_inner();
            if g.token.is_empty() {
                return Err(cli_err!(
                    "grant {} has no token: tokens are given to the holder of an active grant only (it is {})",
                    g.id,
                    output::state(g.state)
                ));
            }
            println!("{}", g.token);
        }
        GrantCommand::Cert { id, out } => {
            let key = rcgen::KeyPair::generate().map_err(|e| cli_err!("cannot make a key: {e}"))?;
            let csr = rcgen::CertificateParams::new(Vec::<String>::new())
                .and_then(|p| p.serialize_request(&key))
                .and_then(|r| r.pem())
                .map_err(|e| cli_err!("cannot make a certificate request: {e}"))?;
            let issued = c
                .grants
                .issue_grant_certificate(pb::IssueGrantCertificateRequest {
                    grant_id: id.clone(),
                    csr_pem: csr,
                })
                .await?
                .into_inner();
            pki::create_dir(&out).map_err(|e| cli_err!("{e}"))?;
            let written = [
                pki::write_secret(&out.join(format!("grant-{id}.key")), &key.serialize_pem()),
                pki::write_public(
                    &out.join(format!("grant-{id}.pem")),
                    &issued.certificate_pem,
                ),
                pki::write_public(&out.join("grant-ca.pem"), &issued.grant_ca_pem),
            ];
            for w in written {
                let path = w.map_err(|e| cli_err!("{e}"))?;
                if !json_out {
                    println!("wrote {}", path.display());
                }
            }
            if json_out {
                println!(
                    "{}",
                    serde_json::json!({
                        "grant": id,
                        "serial": issued.serial,
                        "expires_at": output::time(issued.expires_at_ms),
                        "dir": out,
                    })
                );
            } else {
                println!(
                    "grant certificate {} for {id}: valid until {}",
                    issued.serial,
                    output::time(issued.expires_at_ms)
                );
            }
        }
    }
    Ok(())
}

async fn audit_command(c: &mut Clients, command: AuditCommand, json_out: bool) -> CliResult {
    match command {
        AuditCommand::Export {
            from,
            out,
            checkpoint: Some(cp_path),
            tenant,
        } => {
            let sink: Box<dyn Write> = match &out {
                Some(p) => Box::new(
                    File::create(p).map_err(|e| cli_err!("cannot create {}: {e}", p.display()))?,
                ),
                None => Box::new(io::stdout().lock()),
            };
            let mut w = BufWriter::new(sink);
            let (note, n) = match tenant {
                Some(t) => export_tenant(c, &t, from, &mut w).await?,
                None => export_to_checkpoint(c, from, &mut w).await?,
            };
            w.flush()?;
            std::fs::write(&cp_path, &note)
                .map_err(|e| cli_err!("cannot write {}: {e}", cp_path.display()))?;
            eprintln!(
                "exported {n} entries{}; checkpoint saved to {}",
                out.map(|p| format!(" to {}", p.display()))
                    .unwrap_or_default(),
                cp_path.display()
            );
        }
        AuditCommand::Checkpoint { log_key, out } => {
            let cp = c
                .audit
                .get_checkpoint(pb::GetCheckpointRequest { tree_size: 0 })
                .await?
                .into_inner();
            let verified = match &log_key {
                Some(k) => {
                    let v = load_verifier(k)?;
                    audit::note::Checkpoint::open(&cp.note, &v)
                        .map_err(|e| cli_err!("the server's checkpoint does not verify: {e}"))?;
                    true
                }
                None => false,
            };
            if let Some(p) = &out {
                std::fs::write(p, &cp.note)
                    .map_err(|e| cli_err!("cannot write {}: {e}", p.display()))?;
            }
            if json_out {
                println!(
                    "{:#}",
                    json!({"tree_size": cp.tree_size, "root_hash": hex::encode(&cp.root_hash), "note": cp.note, "verified": verified})
                );
            } else {
                print!("{}", cp.note);
                if !verified {
                    eprintln!("(signature not checked: pass --log-key certs/log.pub)");
                }
            }
        }
        AuditCommand::Witness { state, log_key } => {
            let verifier = load_verifier(&log_key)?;
            let history = audit::witness::History::load(&state).map_err(|e| cli_err!("{e}"))?;
            let cp = c
                .audit
                .get_checkpoint(pb::GetCheckpointRequest { tree_size: 0 })
                .await?
                .into_inner();
            let now = crate::clock::Clock::now(&SystemClock).to_rfc3339();
            let (outcome, accept) =
                audit::witness::run(&history, &cp.note, &verifier, &now, async |old, new| {
                    let p = c
                        .audit
                        .get_consistency_proof(pb::GetConsistencyProofRequest {
                            old_size: old,
                            new_size: new,
                        })
                        .await
                        .map_err(|s| audit::witness::WitnessError::Fetch(CliError::from(s).0))?
                        .into_inner();
                    hashes_from_pb(&p.hashes).map_err(|e| audit::witness::WitnessError::Fetch(e.0))
                })
                .await
                .map_err(|e| cli_err!("{e}"))?;
            if let Some(rec) = &accept {
                audit::witness::History::append(&state, rec).map_err(|e| cli_err!("{e}"))?;
            }
            if json_out {
                println!(
                    "{:#}",
                    json!({"ok": !outcome.is_alarm(), "outcome": outcome.label(), "message": outcome.to_string(), "tree_size": cp.tree_size})
                );
            }
            if outcome.is_alarm() {
                return Err(cli_err!("{outcome}"));
            }
            if !json_out {
                println!("OK: {outcome}");
            }
        }
        AuditCommand::Export {
            from,
            out,
            checkpoint: None,
            tenant: _,
        } => {
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
            let sink: Box<dyn Write> = match &out {
                Some(p) => Box::new(
                    File::create(p).map_err(|e| cli_err!("cannot create {}: {e}", p.display()))?,
                ),
                None => Box::new(io::stdout().lock()),
            };
            let mut w = BufWriter::new(sink);
            let mut n = 0u64;
            while let Some(e) = stream.message().await? {
                export::write_line(&mut w, &sealed_from_pb(&e)?)?;
                n += 1;
                if out.is_some() && n % 100_000 == 0 {
                    eprintln!("exported {n} entries…");
                }
            }
            w.flush()?;
            eprintln!(
                "exported {n} entries{}",
                out.map(|p| format!(" to {}", p.display()))
                    .unwrap_or_default()
            );
        }
        AuditCommand::Replay {
            file: _,
            tenant,
            person,
            since,
            until,
        } => {
            let filter = replay_filter(tenant, person, since, until)?;
            let mut stream = c
                .audit
                .stream_entries(pb::StreamEntriesRequest {
                    from_seq: 0,
                    follow: false,
                    purpose: pb::ReadPurpose::Replay as i32,
                    last: 0,
                })
                .await?
                .into_inner();
            let mut entries = Vec::new();
            while let Some(e) = stream.message().await? {
                entries.push(sealed_from_pb(&e)?);
            }
            print_replay(replay::replay(entries, &filter), json_out)?;
        }
        AuditCommand::Tail { from } => {
            let mut stream = c
                .audit
                .stream_entries(pb::StreamEntriesRequest {
                    from_seq: from.unwrap_or(0),
                    follow: true,
                    purpose: pb::ReadPurpose::Tail as i32,
                    last: if from.is_some() { 0 } else { 10 },
                })
                .await?
                .into_inner();
            while let Some(e) = stream.message().await? {
                if json_out {
                    println!("{}", export::to_json(&sealed_from_pb(&e)?));
                } else {
                    println!("{}", output::entry_line(&e));
                }
            }
        }
        AuditCommand::Check => {
            let r = c
                .audit
                .verify_chain(pb::VerifyChainRequest {})
                .await?
                .into_inner();
            if json_out {
                println!(
                    "{:#}",
                    json!({"ok": r.ok, "entries_checked": r.entries_checked, "head_hash": hex::encode(&r.head_hash), "first_bad_seq": r.first_bad_seq, "problem": r.problem})
                );
            } else if r.ok {
                println!(
                    "chain OK: {} entries, head {}",
                    r.entries_checked,
                    hex::encode(&r.head_hash)
                );
            }
            if !r.ok {
                return Err(cli_err!(
                    "chain BROKEN at seq {}: {}",
                    r.first_bad_seq,
                    r.problem
                ));
            }
        }
        AuditCommand::Verify { .. } => unreachable!("handled offline"),
    }
    Ok(())
}

fn sealed_from_pb(e: &pb::LogEntry) -> Result<audit::SealedEntry, CliError> {
    crate::rpc::entry_from_pb(e).map_err(|why| cli_err!("the server sent a bad entry: {why}"))
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

fn hashes_from_pb(hs: &[Vec<u8>]) -> Result<Vec<audit::Hash>, CliError> {
    hs.iter()
        .map(|h| {
            h.as_slice()
                .try_into()
                .map_err(|_| cli_err!("the server sent a proof hash that is not 32 bytes"))
        })
        .collect()
}

/// A verifier key given inline (`name+id+key`) or as a file holding one.
fn load_verifier(arg: &str) -> Result<audit::note::NoteVerifier, CliError> {
    let text = if Path::new(arg).is_file() {
        std::fs::read_to_string(arg).map_err(|e| cli_err!("cannot read {arg}: {e}"))?
    } else {
        arg.to_owned()
    };
    audit::note::NoteVerifier::parse(&text).map_err(|e| {
        cli_err!("--log-key: {e} (give the log's verifier key, e.g. the file certs/log.pub)")
    })
}

fn verify_file_against(file: &Path, cp_path: &Path, key: &str, json_out: bool) -> CliResult {
    let verifier = load_verifier(key)?;
    let note = std::fs::read_to_string(cp_path)
        .map_err(|e| cli_err!("cannot read {}: {e}", cp_path.display()))?;
    let cp = audit::note::Checkpoint::open(&note, &verifier)
        .map_err(|e| cli_err!("{}: {e}", cp_path.display()))?;
    match export::verify_against(BufReader::new(open(file)?), &cp) {
        Ok(s) => {
            if json_out {
                println!(
                    "{:#}",
                    json!({"ok": true, "entries": s.entries, "tenant_scoped": s.proven, "tree_size": s.tree_size, "beyond_checkpoint": s.beyond, "signed_by": verifier.name()})
                );
            } else if s.proven {
                println!(
                    "OK: {} entries, each proven included in the log's tree of {} entries signed by {}",
                    s.entries,
                    s.tree_size,
                    verifier.name()
                );
            } else {
                println!(
                    "OK: {} entries, chain intact, and the first {} hash to the root signed by {}{}",
                    s.entries,
                    s.tree_size,
                    verifier.name(),
                    if s.beyond > 0 {
                        format!(" ({} later entries are chain-checked only)", s.beyond)
                    } else {
                        String::new()
                    }
                );
            }
            Ok(())
        }
        Err((line, p)) => Err(verify_failed(file, line, &p, json_out)),
    }
}

/// Reports the first problem an export verification found.
fn verify_failed(file: &Path, line: usize, p: &audit::Problem, json_out: bool) -> CliError {
    if json_out {
        println!(
            "{:#}",
            json!({"ok": false, "line": line, "first_bad_seq": p.seq, "problem": p.kind.as_str(), "detail": p.detail})
        );
    }
    cli_err!(
        "{}: line {line}: first bad entry is seq {}: {} ({})",
        file.display(),
        p.seq,
        p.kind.as_str(),
        p.detail
    )
}

fn verify_file(file: &Path, json_out: bool) -> CliResult {
    let reader = BufReader::new(open(file)?);
    match export::verify(reader) {
        // A log has entries from its start on: an empty export is a wrong
        // or emptied file, not a verified log.
        Ok(s) if s.entries == 0 => Err(cli_err!(
            "{}: no log entries in it (an export has one JSON line per entry)",
            file.display()
        )),
        Ok(s) => {
            if json_out {
                println!(
                    "{:#}",
                    json!({"ok": true, "entries": s.entries, "first_seq": s.first_seq, "head_hash": hex::encode(s.head)})
                );
            } else {
                println!(
                    "OK: {} entries verified, head {}",
                    s.entries,
                    hex::encode(s.head)
                );
            }
            Ok(())
        }
        Err((line, p)) => Err(verify_failed(file, line, &p, json_out)),
    }
}

fn print_replay(stories: Vec<replay::GrantStory>, json_out: bool) -> CliResult {
    if json_out {
        let v: Vec<_> = stories
            .iter()
            .map(|s| json!({
                "grant": s.grant, "tenant": s.tenant, "holder": s.holder, "reason": s.reason, "ticket": s.ticket,
                "requested_at": s.requested_at.to_rfc3339(), "activated_at": s.activated_at.map(|t| t.to_rfc3339()),
                "ended_at": s.ended_at.map(|t| t.to_rfc3339()), "outcome": s.outcome,
                "decisions": s.decided_by.iter().map(|(w, by)| json!({"what": w, "by": by})).collect::<Vec<_>>(),
                "validations_allowed": s.validations_allowed,
                "accesses": s.accesses.iter().map(|(t, a, r)| json!({"time": t.to_rfc3339(), "action": a, "resource": r})).collect::<Vec<_>>(),
            }))
            .collect();
        println!("{:#}", json!(v));
    } else {
        print!("{}", replay::render(&stories));
    }
    Ok(())
}

fn replay_filter(
    tenant: Option<String>,
    person: Option<String>,
    since: Option<String>,
    until: Option<String>,
) -> Result<replay::Filter, CliError> {
    let time = |s: Option<String>, flag: &str| -> Result<Option<Timestamp>, CliError> {
        s.map(|s| {
            Timestamp::parse_rfc3339(&s).ok_or_else(|| {
                cli_err!("--{flag} {s:?} is not an RFC 3339 time like 2026-11-25T09:00:00Z")
            })
        })
        .transpose()
    };
    Ok(replay::Filter {
        tenant,
        person,
        since: time(since, "since")?,
        until: time(until, "until")?,
    })
}

fn open(path: &Path) -> Result<File, CliError> {
    let file = File::open(path).map_err(|e| cli_err!("cannot open {}: {e}", path.display()))?;
    if file.metadata().is_ok_and(|m| m.is_dir()) {
        return Err(cli_err!(
            "cannot open {}: it is a directory, not a file",
            path.display()
        ));
    }
    Ok(file)
}

/// `4h`, `90m`, `30s`, `1h30m` or plain seconds.
pub fn parse_duration(s: &str) -> Result<i64, CliError> {
    let bad = || cli_err!("--duration {s:?} is not a duration like 4h, 90m, 1h30m or 3600");
    if let Ok(n) = s.parse::<i64>() {
        // 0 would mean "the maximum" to the server: ask for that by omitting --duration.
        return if n > 0 { Ok(n) } else { Err(bad()) };
    }
    let (mut total, mut num) = (0i64, String::new());
    for ch in s.chars() {
        if ch.is_ascii_digit() {
            num.push(ch);
            continue;
        }
        let unit = match ch {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return Err(bad()),
        };
        let n: i64 = num.parse().map_err(|_| bad())?;
        total = total
            .checked_add(n.checked_mul(unit).ok_or_else(bad)?)
            .ok_or_else(bad)?;
        num.clear();
    }
    if !num.is_empty() || total == 0 {
        return Err(bad());
    }
    Ok(total)
}

fn role_pb(r: RoleArg) -> pb::Role {
    match r {
        RoleArg::Support => pb::Role::Support,
        RoleArg::Root => pb::Role::Root,
        RoleArg::Admin => pb::Role::Admin,
        RoleArg::Auditor => pb::Role::Auditor,
        RoleArg::Partnerships => pb::Role::Partnerships,
        RoleArg::DataEntry => pb::Role::DataEntry,
        RoleArg::Administration => pb::Role::Administration,
    }
}

fn approval_pb(a: ApprovalArg) -> pb::ApprovalPolicy {
    match a {
        ApprovalArg::Auto => pb::ApprovalPolicy::Auto,
        ApprovalArg::Approval => pb::ApprovalPolicy::Approval,
    }
}

fn certs(c: CertsCommand) -> CliResult {
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

async fn serve(args: ServeArgs) -> CliResult {
    init_tracing(args.log_format);
    let mut config = if args.dev {
        dev::prepare(Path::new(DEV_DIR))
            .await
            .map_err(|e| cli_err!("dev setup failed: {e}"))?
    } else {
        let path = args
            .config
            .ok_or_else(|| cli_err!("give --config FILE or --dev"))?;
        Config::load(&path).map_err(|e| cli_err!("{e}"))?
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| cli_err!("cannot listen on {}: {e}", config.listen))?;
    if args.dev {
        let addr = listener.local_addr().map_err(|e| cli_err!("{e}"))?;
        println!("{}", dev::walkthrough(Path::new(DEV_DIR), addr));
    }
    server::run(config, Arc::new(SystemClock), listener, shutdown_signal())
        .await
        .map_err(|e| cli_err!("{e}"))
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only for a person at a terminal, not in files or journald.
    let ansi = std::io::IsTerminal::is_terminal(&io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("4h").unwrap(), 14_400);
        assert_eq!(parse_duration("1h30m").unwrap(), 5_400);
        assert_eq!(parse_duration("90").unwrap(), 90);
        for bad in ["", "h", "4x", "4h5", "0h", "0", "-5"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
