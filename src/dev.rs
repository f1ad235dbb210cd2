//! `daypass serve --dev`: a throw-away installation in `./daypass-dev/`.
//!
//! Creates (once) a CA, a server certificate for localhost/127.0.0.1, client
//! certificates for a cast of identities, a config file, and enrols them
//! through the broker so that the enrolments are in the log like any other.
//! Running it again reuses what is there.

use std::{net::SocketAddr, path::Path, sync::Arc};

use crate::{
    clock::SystemClock,
    config::{Config, DEFAULT_TRUST_DOMAIN, GrantLimits, StaffLimits, TlsFiles},
    domain::{Approval, Name, PrincipalKind, Role},
    ledger::Ledger,
    pki::{self, CertSpec, CertificateAuthority},
    policy::Caller,
    service::{
        Broker, BrokerError, Limits,
        commands::{AddStaff, AddTenant},
    },
};

/// Who exists in a dev installation.
pub const CAST: &[(&str, PrincipalKind, Option<Role>)] = &[
    ("ada", PrincipalKind::Staff, Some(Role::Admin)),
    ("alice", PrincipalKind::Staff, Some(Role::Support)),
    ("bob", PrincipalKind::Staff, Some(Role::Support)),
    ("rory", PrincipalKind::Staff, Some(Role::Root)),
    ("eve", PrincipalKind::Auditor, Some(Role::Auditor)),
    ("pat", PrincipalKind::Staff, Some(Role::Partnerships)),
    ("acme", PrincipalKind::Tenant, None),
    ("globex", PrincipalKind::Tenant, None),
];

pub const DEV_LISTEN: &str = "127.0.0.1:50051";

/// The file in the dev directory where `serve --dev` records the address
/// it listens on (`https://…`), for client commands run beside it.
pub const ADDRESS_FILE: &str = "address";

/// Records where the dev server listens: [`ADDRESS_FILE`], and the
/// `listen` line of the dev directory's `daypass.toml`, so that copied
/// commands and the config reach this server whatever its port.
pub fn record_address(dir: &Path, addr: SocketAddr) -> std::io::Result<()> {
    std::fs::write(dir.join(ADDRESS_FILE), format!("https://{addr}\n"))?;
    let toml = dir.join("daypass.toml");
    if let Ok(text) = std::fs::read_to_string(&toml) {
        let rewritten: String = text
            .lines()
            .map(|l| {
                if l.starts_with("listen = ") {
                    format!("listen = \"{addr}\"\n")
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        std::fs::write(&toml, rewritten)?;
    }
    Ok(())
}

/// Creates what is missing under `dir` and returns the config to serve.
pub async fn prepare(dir: &Path) -> Result<Config, String> {
    let certs = dir.join("certs");
    let config = Config {
        listen: DEV_LISTEN.parse().map_err(|e| format!("{e}"))?,
        data_dir: dir.join("data"),
        trust_domain: DEFAULT_TRUST_DOMAIN.to_owned(),
        bootstrap_admin: Some("ada".into()),
        tls: TlsFiles {
            ca: certs.join("ca.pem"),
            cert: certs.join("server.pem"),
            key: certs.join("server.key"),
        },
        grants: GrantLimits::default(),
        staff: StaffLimits::default(),
        location: crate::config::LocationSettings::default(),
        log: Default::default(),
        store: Default::default(),
        limits: Default::default(),
        gate: Default::default(),
        alerts: Default::default(),
        metrics: Default::default(),
        webhooks: Vec::new(),
        syslog: Vec::new(),
        screen: crate::config::ScreenSettings {
            enabled: true,
            ..Default::default()
        },
        tiles: Default::default(),
    };
    if !certs.join("ca.key").exists() {
        make_certs(&certs).map_err(|e| e.to_string())?;
        let toml = format!(
            "# Written by `daypass serve --dev`.\nlisten = \"{DEV_LISTEN}\"\ndata_dir = \"{}\"\ntrust_domain = \"{DEFAULT_TRUST_DOMAIN}\"\nbootstrap_admin = \"ada\"\n\n[tls]\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n",
            config.data_dir.display(),
            config.tls.ca.display(),
            config.tls.cert.display(),
            config.tls.key.display()
        );
        std::fs::write(dir.join("daypass.toml"), toml).map_err(|e| e.to_string())?;
    }
    if !config.log_key_path().exists() {
        // A dev directory from before the log was signed.
        pki::create_log_key(
            &certs,
            &pki::default_log_origin(DEFAULT_TRUST_DOMAIN),
            false,
        )
        .map_err(|e| e.to_string())?;
    }
    if !config.token_key_path().exists() {
        // A dev directory from before grant tokens.
        pki::create_gate_keys(&certs, false).map_err(|e| e.to_string())?;
    }
    enrol(&config).await?;
    Ok(config)
}

fn make_certs(certs: &Path) -> Result<(), pki::PkiError> {
    pki::create_dir(certs)?;
    let ca = CertificateAuthority::generate("daypass dev CA")?;
    let server = ca.issue(&CertSpec::server(
        &["localhost".into(), "127.0.0.1".into()],
        365,
    ))?;
    pki::write_public(&certs.join("ca.pem"), ca.cert_pem())?;
    pki::write_secret(&certs.join("ca.key"), ca.key_pem())?;
    pki::write_public(&certs.join("server.pem"), &server.cert_pem)?;
    pki::write_secret(&certs.join("server.key"), &server.key_pem)?;
    for (name, kind, _) in CAST {
        let name = Name::parse(name).map_err(|e| pki::PkiError::Invalid(e.to_string()))?;
        let issued = ca.issue_client(*kind, &name, DEFAULT_TRUST_DOMAIN, 365)?;
        let stem = pki::client_file_stem(*kind, &name);
        pki::write_public(&certs.join(format!("{stem}.pem")), &issued.cert_pem)?;
        pki::write_secret(&certs.join(format!("{stem}.key")), &issued.key_pem)?;
    }
    Ok(())
}

/// Enrols the cast through the broker (as ada, the bootstrapped admin), so
/// every enrolment is logged. Already-enrolled names are left alone.
async fn enrol(config: &Config) -> Result<(), String> {
    let key = pki::load_log_key(&config.log_key_path()).map_err(|e| e.to_string())?;
    let ledger = Arc::new(Ledger::open(&config.data_dir, Arc::new(key)).map_err(|e| {
        if e.is_locked() {
            crate::server::ServerError::Held {
                path: config.data_dir.clone(),
                pid: crate::server::holder_pid(&config.data_dir),
            }
            .to_string()
        } else {
            e.to_string()
        }
    })?);
    let gate = Arc::new(crate::gate::Gate::load(config).map_err(|e| e.to_string())?);
    let broker = Broker::new(
        ledger,
        Arc::new(SystemClock),
        Limits::from(config),
        config.trust_domain.clone(),
        gate,
    );
    let ada = Name::parse("ada").map_err(|e| e.to_string())?;
    broker
        .bootstrap_admin(&ada)
        .await
        .map_err(|e| e.to_string())?;
    let admin = Caller::Staff {
        name: ada,
        role: Role::Admin,
    };
    let err = |e: BrokerError| e.to_string();
    for (name, kind, role) in CAST {
        let n = Name::parse(name).map_err(|e| e.to_string())?;
        let ledger = broker.ledger();
        match (kind, role) {
            (PrincipalKind::Tenant, _)
                if ledger.tenant(&n).map_err(|e| e.to_string())?.is_none() =>
            {
                let (approval, ticket) = if *name == "globex" {
                    (Approval::TenantAndPeer, true)
                } else {
                    (Approval::Auto, false)
                };
                broker
                    .add_tenant(
                        &admin,
                        AddTenant {
                            name: n,
                            approval,
                            approver_group: None,
                            require_ticket: ticket,
                            require_declaration: false,
                        },
                    )
                    .await
                    .map_err(err)?;
            }
            (PrincipalKind::Staff | PrincipalKind::Auditor, Some(role))
                if ledger.staff(&n).map_err(|e| e.to_string())?.is_none() =>
            {
                broker
                    .add_staff(
                        &admin,
                        AddStaff {
                            name: n,
                            role: *role,
                            location: crate::domain::Location::default(),
                        },
                    )
                    .await
                    .map_err(err)?;
            }
            _ => {}
        }
    }
    broker.ledger().flush().await.map_err(|e| e.to_string())?;
    Ok(())
}

/// The copy-paste walkthrough printed at start. Its commands carry no
/// `--server`: client commands read the address `serve --dev` recorded in
/// `./daypass-dev/address`, so they reach this server on any `--listen`
/// port (tests/cli_dev.rs and tests/login.rs run them on a random one).
pub fn walkthrough(dir: &Path, addr: SocketAddr, screen: Option<SocketAddr>) -> String {
    let d = dir.display();
    let exe = running_binary();
    let screen = screen.map_or_else(|| "SCREEN".to_owned(), |a| a.to_string());
    format!(
        r#"
daypass dev server on https://{addr}  (data and certificates in ./{d}/)

Identities (choose one with --as NAME after the command; the default is alice):
  ada (admin)   alice, bob (support)   rory (root)   eve (auditor)   pat (partnerships)
  tenants: acme (auto-approved), globex (a colleague and globex approve; a ticket)

In another terminal, in this directory:

  D={exe}
  $D whoami
  $D grant request acme --reason "INC-42: customer cannot log in" --duration 2h
  $D grant list
  $D validate --staff alice --as acme                # the tenant asks: may alice act now?
  $D access record <GRANT_ID> --action ssh --resource web-1 --as acme
  $D grant request acme --reason "curious" --as pat  # refused: no access for partnerships

  $D grant request globex --reason "INC-43: export stuck" --ticket INC-43
  $D grant approve <GLOBEX_GRANT_ID> --as alice      # refused: no self-approval
  $D grant pending --as bob                          # what waits for bob's decision
  $D grant approve <GLOBEX_GRANT_ID> --as bob        # a colleague approves (four eyes)...
  $D grant approve <GLOBEX_GRANT_ID> --as globex     # ...and the tenant: now it is active

  $D staff offboard bob --as ada                     # bob's grants end at once
  $D audit replay --as eve                           # who had access, when, why, what
  $D alerts list --as ada                            # what the monitor found (docs/monitoring.md)
  $D screen pair office --as ada                     # a code for the warning screen: open
                                                     # https://{screen}/pair?code=CODE (trust {d}/certs/ca.pem)
  $D audit export -o log.jsonl --checkpoint cp.txt --as eve
  $D audit verify log.jsonl --checkpoint cp.txt --log-key {d}/certs/log.pub
  $D audit witness --state witness.jsonl --log-key {d}/certs/log.pub --as eve
  $D audit export --tenant acme -o acme.jsonl --checkpoint acme-cp.txt --as acme
  $D audit tail --as eve                             # follow the log live

To work from any other directory, log in once here (it saves a profile: absolute paths, in
~/.config/daypass); then every command, and `daypass status`, works there without flags:

  $D login --dev ./{d}                     # as alice; --as NAME --profile NAME for others
  $D status                                          # connection, identity, certificate, health

Stop with Ctrl-C (the stop is logged). Start afresh: rm -rf ./{d}
"#
    )
}

/// The binary running now, as a path to type in this directory (relative
/// when it is below it), so the walkthrough's commands use this build.
fn running_binary() -> String {
    let Ok(exe) = std::env::current_exe() else {
        return "daypass".into();
    };
    match std::env::current_dir()
        .ok()
        .and_then(|cwd| exe.strip_prefix(&cwd).ok().map(|p| p.to_owned()))
    {
        Some(rel) => format!("./{}", rel.display()),
        None => exe.display().to_string(),
    }
}
