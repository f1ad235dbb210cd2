//! Server configuration: plain data, read once at start-up from a TOML file
//! (`daypass serve --config daypass.toml`) and checked before anything runs.
//!
//! ```toml
//! listen = "127.0.0.1:50051"
//! data_dir = "/var/lib/daypass"
//! trust_domain = "daypass.example"
//! bootstrap_admin = "ada"          # enrolled as admin only if no staff exist yet
//!
//! [tls]
//! ca = "/etc/daypass/ca.pem"
//! cert = "/etc/daypass/server.pem"
//! key = "/etc/daypass/server.key"
//!
//! [log]
//! signing_key = "/etc/daypass/log.key"  # default: log.key beside tls.key
//! # next_signing_key = "/etc/daypass/log-next.key"  # a key rotation under way
//! # retired_keys = ["/etc/daypass/log-2026.pub"]     # keys this log signed with before
//!
//! [store]
//! cache_mib = 64                   # sled's page cache
//! allow_shared_data_dir = false    # refuse a data_dir others can read
//!
//! [limits]
//! requests_per_minute = 60         # RequestGrant per engineer (burst: request_burst)
//! request_burst = 60
//! validations_per_second = 500     # ValidateGrant per tenant
//! validation_burst = 1000
//! reports_per_second = 2000        # RecordAccess per tenant
//! report_burst = 4000
//! handshake_timeout_ms = 10000     # a TLS handshake not done by then is closed
//! max_pending_handshakes = 256     # beyond this many, new connections are closed at once
//!
//! [grants]
//! max_duration_secs = 86400        # at most 86400 (24 h)
//! pending_ttl_secs = 3600
//! break_glass_default_secs = 3600  # a break-glass grant's length when none is asked for
//! break_glass_max_secs = 14400     # the longest break-glass grant; at most 86400 (24 h)
//! max_schedule_ahead_secs = 2592000 # a scheduled grant starts at most this far ahead (30 days; 0: no scheduling)
//!
//! [staff]
//! max_root_holders = 2             # at most 2
//! # declaration_version = "2026-1" # grant holders must have signed this confidentiality declaration
//! recertify_days = 0               # >0: a holder's eligibility lapses unless an admin recertifies it this often
//!
//! [location]                       # personnel location and sub-processors (docs/compliance/location.md)
//! adequate = ["AD", "AR", "CA", "FO", "GG", "IL", "IM", "JP", "JE", "NZ", "KR", "CH", "GB", "UY", "US"]
//! subprocessor_notice_days = 30    # a sub-processor's staff get no grant for a tenant before this
//! require_country = false          # true: staff with no recorded country are refused everywhere
//!
//! [gate]                           # what tenants verify offline
//! token_key = "/etc/daypass/token.key"       # default: beside tls.key
//! grant_ca_cert = "/etc/daypass/grant-ca.pem"
//! grant_ca_key = "/etc/daypass/grant-ca.key"
//! heartbeat_secs = 10              # revocation lists streamed at least this often
//! # keys rotated out stay published until retired_at + 24 h:
//! # retired_token_keys = [{ public = "/etc/daypass/token-2026-10.pub", retired_at = "2026-11-20T12:00:00Z" }]
//! # retired_grant_cas = [{ public = "/etc/daypass/grant-ca-2026-10.pem", retired_at = "2026-11-20T12:00:00Z" }]
//!
//! [alerts]                         # detection rules (docs/monitoring.md)
//! enabled = true
//! cooldown_secs = 3600             # one alert per rule and subject per hour
//! office_hours = { start = "07:00", end = "19:00", days = ["mon", "tue", "wed", "thu", "fri"], utc_offset = "+01:00" }
//! many_tenants = { count = 8, window_secs = 7200 }
//! denied_burst = { count = 10, window_secs = 600 }
//! rate_flood = { count = 20, window_secs = 60 }
//! renewal_chain = { gap_secs = 14400, max_chain_secs = 86400 }
//! # root_activity = { enabled = false }   # likewise offboarded_use, no_access_role, outside_grant, chain_check_failed, store_unwritable
//! log_stalled = { stall_secs = 60 }     # commits waiting, the log not growing
//! health_interval_ms = 5000        # how often the store and the log are sampled
//! [metrics]                        # /metrics, /healthz, /readyz (docs/monitoring.md)
//! enabled = true
//! listen = "127.0.0.1:9464"        # plain HTTP: keep it on localhost or the scrape network
//! [screen]                         # the office warning screen (docs/monitoring.md)
//! enabled = true                   # default: off
//! listen = "0.0.0.0:9443"          # HTTPS with tls.cert, which must name this address
//! [tiles]                          # the log as C2SP tlog-tiles over HTTPS (docs/log-format.md §13)
//! enabled = true                   # default: off
//! listen = "0.0.0.0:9445"          # HTTPS with tls.cert; client certificates from tls.ca
//! public_hashes = false            # true: checkpoint and hash tiles without a client certificate
//! [[webhooks]]                     # zero or more; docs/webhooks.md
//! name = "oncall"
//! url = "https://hooks.example/daypass"
//! secret_file = "/etc/daypass/oncall.hook-key"   # HMAC key, mode 0600
//! events = ["grant.requested", "grant.approved"] # default: every notifiable kind
//! tenants = ["acme"]               # default: every tenant
//! format = "json"                  # or "slack"
//! max_attempts = 12
//! backoff_initial_ms = 1000        # doubled per attempt, capped at backoff_max_ms
//! backoff_max_ms = 300000
//! # ca_file = "/etc/daypass/hooks-ca.pem"        # default: the webpki roots
//! [[syslog]]                       # zero or more: RFC 5424 over TLS to a collector; docs/siem.md
//! name = "siem"
//! address = "siem.example:6514"    # host:port; the collector's certificate must name the host
//! ca_file = "/etc/daypass/siem-ca.pem"
//! # client_cert = "/etc/daypass/siem-client.pem"  # if the collector asks for one,
//! # client_key = "/etc/daypass/siem-client.key"   # with its key (mode 0600)
//! app_name = "daypass"
//! # hostname = "broker-1"          # default: this machine's host name
//! facility = "authpriv"            # or auth, daemon, local0 … local7, …
//! format = "json"                  # MSG: the export's JSON line, or "ocsf"
//! backoff_initial_ms = 1000        # after a failure; doubled, capped at backoff_max_ms
//! backoff_max_ms = 60000
//! ```

use std::{fs, net::SocketAddr, path::PathBuf};

use serde::Deserialize;
use thiserror::Error;

use crate::{
    clock::Timestamp,
    domain::{MAX_GRANT_SECS, Name},
};

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config: {0}")]
    Invalid(String),
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    #[serde(default = "default_trust_domain")]
    pub trust_domain: String,
    #[serde(default)]
    pub bootstrap_admin: Option<String>,
    pub tls: TlsFiles,
    #[serde(default)]
    pub grants: GrantLimits,
    #[serde(default)]
    pub staff: StaffLimits,
    /// Personnel location and sub-processors (docs/compliance/location.md).
    #[serde(default)]
    pub location: LocationSettings,
    #[serde(default)]
    pub log: LogSettings,
    #[serde(default)]
    pub store: StoreSettings,
    #[serde(default)]
    pub limits: RateSettings,
    #[serde(default)]
    pub gate: GateSettings,
    /// The monitor's detection rules (docs/monitoring.md).
    #[serde(default)]
    pub alerts: crate::monitor::settings::AlertSettings,
    #[serde(default)]
    pub metrics: MetricsSettings,
    #[serde(default)]
    pub webhooks: Vec<WebhookConfig>,
    /// Syslog forwarders (`crate::siem::forward`, docs/siem.md).
    #[serde(default)]
    pub syslog: Vec<crate::siem::settings::SyslogConfig>,
    /// The office warning screen (docs/monitoring.md).
    #[serde(default)]
    pub screen: ScreenSettings,
    /// The tile read API (`crate::tile_api`, docs/log-format.md §13).
    #[serde(default)]
    pub tiles: TileSettings,
}

/// `[location]`: the countries outside the EU/EEA with an adequate level
/// of protection (every tenant allows EU/EEA plus these unless it set its
/// own list), the sub-processor notice period, and whether an unknown
/// country is refused everywhere.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct LocationSettings {
    /// ISO 3166-1 alpha-2 codes; default: the EU Commission's adequacy
    /// decisions ([`crate::domain::location::DEFAULT_ADEQUATE`]).
    pub adequate: Vec<String>,
    /// Days after a sub-processor's announcement before its staff may get
    /// grants for a tenant.
    pub subprocessor_notice_days: u32,
    /// Refuse staff whose country is not recorded for every tenant, not
    /// only for tenants that set their own list.
    pub require_country: bool,
}

impl Default for LocationSettings {
    fn default() -> Self {
        LocationSettings {
            adequate: crate::domain::location::DEFAULT_ADEQUATE
                .iter()
                .map(|c| (*c).to_owned())
                .collect(),
            subprocessor_notice_days: 30,
            require_country: false,
        }
    }
}

/// The office warning screen's HTTPS listener (`crate::screen`,
/// docs/monitoring.md): off unless configured. It uses the server's
/// certificate (`tls.cert`), so that certificate must name the address the
/// kiosk opens.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ScreenSettings {
    pub enabled: bool,
    pub listen: SocketAddr,
}

impl Default for ScreenSettings {
    fn default() -> Self {
        ScreenSettings {
            enabled: false,
            listen: SocketAddr::from(([127, 0, 0, 1], 9443)),
        }
    }
}

/// The tile read API's HTTPS listener (`crate::tile_api`): off unless
/// configured. Like the warning screen it uses the server's certificate;
/// a client may present a certificate from `tls.ca` (it must, for entry
/// bundles, and for everything unless `public_hashes`).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct TileSettings {
    pub enabled: bool,
    pub listen: SocketAddr,
    /// Serve `checkpoint` and the hash tiles to anyone who connects,
    /// without a client certificate. They reveal the log's size and
    /// hashes, nothing of its entries.
    pub public_hashes: bool,
}

impl Default for TileSettings {
    fn default() -> Self {
        TileSettings {
            enabled: false,
            listen: SocketAddr::from(([127, 0, 0, 1], 9445)),
            public_hashes: false,
        }
    }
}

/// The plain-HTTP metrics and health listener (`crate::metrics`,
/// docs/monitoring.md). It serves counts only, no tenant data, but it has
/// no TLS and no authentication: keep it on localhost or behind the
/// scrape network.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSettings {
    /// Serve `/metrics`, `/healthz` and `/readyz` at all.
    pub enabled: bool,
    /// Where to serve them.
    pub listen: SocketAddr,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        MetricsSettings {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
        }
    }
}

/// One webhook (`crate::notify`, docs/webhooks.md): where matching log
/// entries are delivered, signed with the key in `secret_file`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Names the hook in its idempotency keys and its stored cursor.
    pub name: String,
    /// `http://` or `https://` receiver.
    pub url: String,
    /// The HMAC-SHA256 key; refused if its group or others can read it.
    pub secret_file: PathBuf,
    /// Kinds delivered (default: every notifiable kind).
    #[serde(default)]
    pub events: Option<Vec<String>>,
    /// Tenants delivered (default: all, and entries about no tenant).
    #[serde(default)]
    pub tenants: Option<Vec<String>>,
    #[serde(default)]
    pub format: WebhookFormat,
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    #[serde(default = "default_backoff_initial_ms")]
    pub backoff_initial_ms: u64,
    #[serde(default = "default_backoff_max_ms")]
    pub backoff_max_ms: u64,
    /// CA certificates (PEM) for an https receiver instead of the webpki
    /// roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

/// The body a webhook receives.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// The entry as JSON (docs/webhooks.md).
    #[default]
    Json,
    /// `{"text": …}`: one readable line, for Slack-compatible receivers.
    Slack,
}

fn default_max_attempts() -> u32 {
    12
}

fn default_backoff_initial_ms() -> u64 {
    1000
}

fn default_backoff_max_ms() -> u64 {
    300_000
}

/// What tenants verify offline (`crate::gate`, docs/integration.md): the
/// token key and the grant CA (default: `token.key`, `grant-ca.pem`,
/// `grant-ca.key` beside the server's TLS key), keys rotated out, and the
/// revocation feed's heartbeat.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct GateSettings {
    pub token_key: Option<PathBuf>,
    pub grant_ca_cert: Option<PathBuf>,
    pub grant_ca_key: Option<PathBuf>,
    /// A revocation list is streamed at least this often (seconds).
    pub heartbeat_secs: u64,
    /// Token keys rotated out: still published until `retired_at` + the
    /// longest grant, so the tokens they signed stay verifiable.
    pub retired_token_keys: Vec<RetiredKey>,
    /// Grant CAs rotated out, likewise.
    pub retired_grant_cas: Vec<RetiredKey>,
}

impl Default for GateSettings {
    fn default() -> Self {
        GateSettings {
            token_key: None,
            grant_ca_cert: None,
            grant_ca_key: None,
            heartbeat_secs: 10,
            retired_token_keys: Vec::new(),
            retired_grant_cas: Vec::new(),
        }
    }
}

/// A key rotated out: its public file (`token.pub` or a grant CA's PEM) and
/// when signing with it stopped (RFC 3339).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RetiredKey {
    pub public: PathBuf,
    pub retired_at: String,
}

/// Per-caller rate limits (`crate::limits`).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RateSettings {
    /// RequestGrant per engineer, sustained.
    pub requests_per_minute: f64,
    pub request_burst: f64,
    /// ValidateGrant and RecordAccess per tenant, sustained.
    pub validations_per_second: f64,
    pub validation_burst: f64,
    /// RecordAccess per tenant, sustained (its own bucket: a tenant deciding
    /// offline reports every admitted call).
    pub reports_per_second: f64,
    pub report_burst: f64,
    /// A TLS handshake not finished in this time is closed.
    pub handshake_timeout_ms: u64,
    /// Connections still in their TLS handshake; beyond this, new ones are
    /// closed at once.
    pub max_pending_handshakes: usize,
}

impl Default for RateSettings {
    fn default() -> Self {
        RateSettings {
            requests_per_minute: 60.0,
            request_burst: 60.0,
            validations_per_second: 500.0,
            validation_burst: 1000.0,
            reports_per_second: 2000.0,
            report_burst: 4000.0,
            handshake_timeout_ms: 10_000,
            max_pending_handshakes: 256,
        }
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSettings {
    /// sled's page cache, in MiB.
    pub cache_mib: u64,
    /// Start even when the data directory is readable by its group or by
    /// others (it holds every tenant's reasons): off by default.
    pub allow_shared_data_dir: bool,
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            cache_mib: crate::ledger::DEFAULT_CACHE_MIB,
            allow_shared_data_dir: false,
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// The log's checkpoint-signing key (`daypass certs init` writes it).
    pub signing_key: Option<PathBuf>,
    /// Where the newest checkpoint this server published is kept, outside
    /// the data directory, so that a data directory restored from an older
    /// backup is noticed (default: `published.checkpoint` beside the log
    /// key).
    pub published_checkpoint: Option<PathBuf>,
    /// A log key rotation under way: the new signing key, which countersigns
    /// every checkpoint until it replaces `signing_key` (docs/operations.md,
    /// "Rotating the log key").
    pub next_signing_key: Option<PathBuf>,
    /// Verifier keys (`log.pub` files) of keys this log signed with before:
    /// checkpoints stored under them stay readable.
    pub retired_keys: Vec<PathBuf>,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct GrantLimits {
    /// Longest grant; also the default length. Never above 24 h.
    pub max_duration_secs: i64,
    /// How long a request waits for approval.
    pub pending_ttl_secs: i64,
    /// A break-glass grant's length when the request asks for none (1 h).
    pub break_glass_default_secs: i64,
    /// The longest break-glass grant (4 h); never above 24 h.
    pub break_glass_max_secs: i64,
    /// How far ahead a scheduled grant may start (0: requests must start
    /// now). At most 366 days.
    pub max_schedule_ahead_secs: i64,
}

impl Default for GrantLimits {
    fn default() -> Self {
        GrantLimits {
            max_duration_secs: MAX_GRANT_SECS,
            pending_ttl_secs: 3600,
            break_glass_default_secs: 3600,
            break_glass_max_secs: 4 * 3600,
            max_schedule_ahead_secs: 30 * 24 * 3600,
        }
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct StaffLimits {
    /// Root holders allowed at once: 0, 1 or 2.
    pub max_root_holders: u32,
    /// The confidentiality declaration every grant holder must have signed
    /// (its version, e.g. "2026-1"); unset: none is required. A new version
    /// must be signed (and recorded with `daypass staff declare`) before
    /// its signers may request or be approved for grants again.
    pub declaration_version: Option<String>,
    /// Days a grant holder's eligibility lasts from its last certification
    /// (the enrolment, then each `daypass staff recertify`); past it, their
    /// requests and approvals are refused until an admin other than them
    /// re-certifies it. 0 (the default): eligibility never lapses.
    pub recertify_days: u32,
}

impl Default for StaffLimits {
    fn default() -> Self {
        StaffLimits {
            max_root_holders: 2,
            declaration_version: None,
            recertify_days: 0,
        }
    }
}

pub const DEFAULT_TRUST_DOMAIN: &str = "daypass.local";

fn default_trust_domain() -> String {
    DEFAULT_TRUST_DOMAIN.to_owned()
}

impl Config {
    /// Where the log signing key is: `log.signing_key`, or `log.key` in the
    /// directory of the server's TLS key.
    /// See [`LogSettings::published_checkpoint`].
    pub fn published_checkpoint_path(&self) -> PathBuf {
        self.log.published_checkpoint.clone().unwrap_or_else(|| {
            self.log_key_path()
                .parent()
                .unwrap_or(std::path::Path::new("."))
                .join("published.checkpoint")
        })
    }

    pub fn log_key_path(&self) -> PathBuf {
        self.log.signing_key.clone().unwrap_or_else(|| {
            self.tls
                .key
                .parent()
                .unwrap_or(std::path::Path::new("."))
                .join(crate::pki::LOG_KEY_FILE)
        })
    }

    /// A file beside the server's TLS key, unless configured.
    fn beside_tls_key(&self, configured: &Option<PathBuf>, file: &str) -> PathBuf {
        configured.clone().unwrap_or_else(|| {
            self.tls
                .key
                .parent()
                .unwrap_or(std::path::Path::new("."))
                .join(file)
        })
    }

    /// The token-signing key: `gate.token_key` or `token.key`.
    pub fn token_key_path(&self) -> PathBuf {
        self.beside_tls_key(&self.gate.token_key, crate::pki::TOKEN_KEY_FILE)
    }

    /// The grant CA's certificate and key files.
    pub fn grant_ca_paths(&self) -> (PathBuf, PathBuf) {
        (
            self.beside_tls_key(&self.gate.grant_ca_cert, crate::pki::GRANT_CA_FILE),
            self.beside_tls_key(&self.gate.grant_ca_key, crate::pki::GRANT_CA_KEY_FILE),
        )
    }

    pub fn load(path: &std::path::Path) -> Result<Config, ConfigError> {
        let text = fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let config: Config = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: match e.span() {
                // One line that says where: "line 7: unknown field ...".
                Some(span) => format!(
                    "line {}: {}",
                    text.get(..span.start)
                        .map_or(1, |before| before.matches('\n').count() + 1),
                    e.message()
                ),
                None => e.message().to_owned(),
            },
        })?;
        config.check()?;
        Ok(config)
    }

    /// Each webhook's name (unique), URL, kinds and retry settings.
    fn check_webhooks(&self) -> Result<(), ConfigError> {
        let mut names = std::collections::BTreeSet::new();
        for h in &self.webhooks {
            let bad = |m: String| ConfigError::Invalid(format!("webhook {:?}: {m}", h.name));
            if h.name.is_empty()
                || h.name.len() > 64
                || !h
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(bad(
                    "name must be 1 to 64 letters, digits, '-' or '_'".into()
                ));
            }
            if !names.insert(h.name.as_str()) {
                return Err(bad("two webhooks have this name".into()));
            }
            crate::notify::Endpoint::parse(&h.url).map_err(|e| bad(format!("url: {e}")))?;
            for k in h.events.iter().flatten() {
                if !crate::notify::NOTIFIABLE.contains(&k.as_str()) {
                    return Err(bad(format!(
                        "events: {k:?} is not a notifiable kind (one of {})",
                        crate::notify::NOTIFIABLE.join(", ")
                    )));
                }
            }
            if !(1..=1000).contains(&h.max_attempts) {
                return Err(bad(format!(
                    "max_attempts must be between 1 and 1000, not {}",
                    h.max_attempts
                )));
            }
            if h.backoff_initial_ms == 0 || h.backoff_initial_ms > h.backoff_max_ms {
                return Err(bad(format!(
                    "backoff_initial_ms ({}) must be at least 1 and at most backoff_max_ms ({})",
                    h.backoff_initial_ms, h.backoff_max_ms
                )));
            }
        }
        Ok(())
    }

    /// Enforces the limits the service promises, whatever the file says.
    pub fn check(&self) -> Result<(), ConfigError> {
        let g = &self.grants;
        if !(1..=MAX_GRANT_SECS).contains(&g.max_duration_secs) {
            return Err(ConfigError::Invalid(format!(
                "grants.max_duration_secs must be between 1 and {MAX_GRANT_SECS} (24 h), not {}",
                g.max_duration_secs
            )));
        }
        if !(1..=7 * 24 * 3600).contains(&g.pending_ttl_secs) {
            return Err(ConfigError::Invalid(format!(
                "grants.pending_ttl_secs must be between 1 and 604800 (7 days), not {}",
                g.pending_ttl_secs
            )));
        }
        if !(1..=MAX_GRANT_SECS).contains(&g.break_glass_max_secs) {
            return Err(ConfigError::Invalid(format!(
                "grants.break_glass_max_secs must be between 1 and {MAX_GRANT_SECS} (24 h), not {}",
                g.break_glass_max_secs
            )));
        }
        if !(1..=g.break_glass_max_secs).contains(&g.break_glass_default_secs) {
            return Err(ConfigError::Invalid(format!(
                "grants.break_glass_default_secs must be between 1 and grants.break_glass_max_secs \
                 ({}), not {}",
                g.break_glass_max_secs, g.break_glass_default_secs
            )));
        }
        if !(0..=366 * 24 * 3600).contains(&g.max_schedule_ahead_secs) {
            return Err(ConfigError::Invalid(format!(
                "grants.max_schedule_ahead_secs must be between 0 and 31622400 (366 days), not {}",
                g.max_schedule_ahead_secs
            )));
        }
        self.alerts.check().map_err(ConfigError::Invalid)?;
        let l = &self.limits;
        for (name, v) in [
            ("limits.requests_per_minute", l.requests_per_minute),
            ("limits.request_burst", l.request_burst),
            ("limits.validations_per_second", l.validations_per_second),
            ("limits.validation_burst", l.validation_burst),
            ("limits.reports_per_second", l.reports_per_second),
            ("limits.report_burst", l.report_burst),
        ] {
            if !(v.is_finite() && v >= 1.0) {
                return Err(ConfigError::Invalid(format!(
                    "{name} must be a number of at least 1, not {v}"
                )));
            }
        }
        if !(100..=60_000).contains(&l.handshake_timeout_ms) {
            return Err(ConfigError::Invalid(format!(
                "limits.handshake_timeout_ms must be between 100 and 60000, not {}",
                l.handshake_timeout_ms
            )));
        }
        if !(1..=65_536).contains(&l.max_pending_handshakes) {
            return Err(ConfigError::Invalid(format!(
                "limits.max_pending_handshakes must be between 1 and 65536, not {}",
                l.max_pending_handshakes
            )));
        }
        if !(8..=65_536).contains(&self.store.cache_mib) {
            return Err(ConfigError::Invalid(format!(
                "store.cache_mib must be between 8 and 65536, not {}",
                self.store.cache_mib
            )));
        }
        if !(1..=3600).contains(&self.gate.heartbeat_secs) {
            return Err(ConfigError::Invalid(format!(
                "gate.heartbeat_secs must be between 1 and 3600, not {}",
                self.gate.heartbeat_secs
            )));
        }
        for k in self
            .gate
            .retired_token_keys
            .iter()
            .chain(&self.gate.retired_grant_cas)
        {
            if Timestamp::parse_rfc3339(&k.retired_at).is_none() {
                return Err(ConfigError::Invalid(format!(
                    "gate: retired_at {:?} of {} is not an RFC 3339 time (e.g. 2026-11-20T12:00:00Z)",
                    k.retired_at,
                    k.public.display()
                )));
            }
        }
        self.check_webhooks()?;
        crate::siem::settings::check(&self.syslog).map_err(ConfigError::Invalid)?;
        if self.staff.max_root_holders > 2 {
            return Err(ConfigError::Invalid(format!(
                "staff.max_root_holders may be 0, 1 or 2, not {}",
                self.staff.max_root_holders
            )));
        }
        crate::domain::location::parse_countries(
            "location.adequate",
            self.location.adequate.iter().map(String::as_str),
        )
        .map_err(ConfigError::Invalid)?;
        if self.location.subprocessor_notice_days > 3650 {
            return Err(ConfigError::Invalid(
                "location.subprocessor_notice_days: at most 3650".into(),
            ));
        }
        if self.staff.recertify_days > 3650 {
            return Err(ConfigError::Invalid(format!(
                "staff.recertify_days: at most 3650 (10 years), or 0 for never, not {}",
                self.staff.recertify_days
            )));
        }
        if let Some(v) = &self.staff.declaration_version {
            // The same rule as a recorded declaration's version.
            crate::domain::Declaration::parse(v, "2000-01-01", &"0".repeat(64))
                .map_err(|e| ConfigError::Invalid(format!("staff.declaration_version: {e}")))?;
        }
        if let Some(admin) = &self.bootstrap_admin {
            Name::parse(admin)
                .map_err(|e| ConfigError::Invalid(format!("bootstrap_admin: {e}")))?;
        }
        if self.trust_domain.is_empty()
            || !self
                .trust_domain
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        {
            return Err(ConfigError::Invalid(format!(
                "trust_domain {:?} must be a lowercase DNS-style name",
                self.trust_domain
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
