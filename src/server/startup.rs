//! What the server reads and checks before it opens anything: the TLS
//! material, the log key, the gate's keys, the webhooks' secrets, the syslog
//! forwarders' TLS files and the data directory's mode ([`load_startup`]); and `serve --check-config`,
//! which stops there ([`check_config`]).

use std::sync::Arc;

use super::ServerError;
use crate::{
    config::Config, gate::Gate, identity::ClientCa, ledger::checkpoint::RotatingLogKey, pki, tls,
};

/// What the server reads before it opens anything: TLS material, the log
/// key, the gate's keys, the webhooks' secrets, the data directory's mode.
pub(super) struct Startup {
    pub client_ca: Arc<ClientCa>,
    pub tls_config: Arc<tokio_rustls::rustls::ServerConfig>,
    pub screen_tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    pub tiles_tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    pub log_key: Arc<RotatingLogKey>,
    pub gate: Arc<Gate>,
}

pub(super) fn load_startup(
    config: &Config,
    want_screen: bool,
    want_tiles: bool,
) -> Result<Startup, ServerError> {
    let read = |what, path: &std::path::Path| {
        std::fs::read(path).map_err(|source| ServerError::Read {
            what,
            path: path.to_owned(),
            source,
        })
    };
    let ca = read("CA certificate", &config.tls.ca)?;
    let cert = read("server certificate", &config.tls.cert)?;
    let key = read("server key", &config.tls.key)?;
    // Checked before anything is opened or logged: a server that cannot
    // speak TLS must not record that it started.
    let client_ca = Arc::new(ClientCa::from_pem(&ca).ok_or_else(|| {
        ServerError::Tls(format!(
            "tls.ca {} holds no PEM CA certificate that parses",
            config.tls.ca.display()
        ))
    })?);
    let tls_config = tls::server_config(&ca, &cert, &key).map_err(|e| {
        ServerError::Tls(format!(
            "tls.cert {}, tls.key {} and tls.ca {} must be a PEM certificate, its private key \
             and a PEM CA certificate ({e})",
            config.tls.cert.display(),
            config.tls.key.display(),
            config.tls.ca.display(),
        ))
    })?;
    let screen_tls = match want_screen {
        true => Some(
            tls::web_server_config(&cert, &key)
                .map_err(|e| ServerError::Tls(format!("the warning screen's TLS: {e}")))?,
        ),
        false => None,
    };
    let tiles_tls = match want_tiles {
        true => Some(
            tls::tile_server_config(&ca, &cert, &key)
                .map_err(|e| ServerError::Tls(format!("the tile read API's TLS: {e}")))?,
        ),
        false => None,
    };
    let log_key = Arc::new(load_log_keys(config)?);
    let gate = Arc::new(Gate::load(config).map_err(|e| ServerError::Gate(e.to_string()))?);
    crate::notify::check(&config.webhooks).map_err(|e| ServerError::Webhooks(e.to_string()))?;
    crate::siem::forward::check(&config.syslog).map_err(|e| ServerError::Syslog(e.to_string()))?;
    private_data_dir(&config.data_dir, config.store.allow_shared_data_dir)?;
    Ok(Startup {
        client_ca,
        tls_config,
        screen_tls,
        tiles_tls,
        log_key,
        gate,
    })
}

/// The log's signing key, and during a rotation the next and the retired
/// keys (`log.next_signing_key`, `log.retired_keys`).
fn load_log_keys(config: &Config) -> Result<RotatingLogKey, ServerError> {
    let current = pki::load_log_key(&config.log_key_path()).map_err(|e| {
        ServerError::LogKey(format!(
            "{e}; copy the log's existing signing key (log.key from `daypass certs init`) there, or point log.signing_key at it; only for a new log whose log.pub nobody has yet, create one with `daypass certs log-key --dir DIR`"
        ))
    })?;
    let next = match &config.log.next_signing_key {
        Some(p) => Some(pki::load_log_key(p).map_err(|e| {
            ServerError::LogKey(format!(
                "log.next_signing_key: {e} (make one with `daypass certs log-key --dir DIR --origin {}`)",
                current.name()
            ))
        })?),
        None => None,
    };
    let mut retired = Vec::new();
    for p in &config.log.retired_keys {
        let text = std::fs::read_to_string(p).map_err(|e| {
            ServerError::LogKey(format!(
                "log.retired_keys: cannot read {}: {e}",
                p.display()
            ))
        })?;
        retired.push(crate::audit::note::NoteVerifier::parse(&text).map_err(|e| {
            ServerError::LogKey(format!(
                "log.retired_keys: {}: {e} (give the retired key's log.pub, never its private key)",
                p.display()
            ))
        })?);
    }
    RotatingLogKey::new(current, next, retired).map_err(ServerError::LogKey)
}

/// `serve --check-config`: loads and checks everything the server would
/// read at start (the config's own rules, TLS files, keys, webhook
/// secrets, the syslog forwarders' CA files and client keys, the data
/// directory's mode) without opening the store or any
/// socket, or writing anything.
pub fn check_config(config: &Config) -> Result<(), ServerError> {
    config
        .check()
        .map_err(|e| ServerError::Config(e.to_string()))?;
    load_startup(config, config.screen.enabled, config.tiles.enabled).map(drop)
}

/// Refuses a data directory its group or others may read (it holds every
/// tenant's reasons) unless `allow_shared` (`store.allow_shared_data_dir`).
/// A missing one is created 0700 by the storage driver.
fn private_data_dir(dir: &std::path::Path, allow_shared: bool) -> Result<(), ServerError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        // Missing, or not a directory: opening it says what is wrong.
        let Some(meta) = std::fs::metadata(dir).ok().filter(|m| m.is_dir()) else {
            return Ok(());
        };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 && !allow_shared {
            return Err(ServerError::SharedDataDir {
                path: dir.to_owned(),
                mode,
            });
        }
    }
    let _ = (dir, allow_shared);
    Ok(())
}
