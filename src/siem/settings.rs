//! The `[[syslog]]` sections: where each syslog forwarder
//! ([`super::forward`]) sends, how it proves who it is, and what its
//! messages say. Plain data, read with the rest of `crate::config` and
//! checked by [`check`] before anything runs; the files they name are read
//! by [`super::forward::check`]. docs/siem.md §4, docs/operations.md.

use std::path::PathBuf;

use serde::Deserialize;

/// One collector (RFC 5425: syslog over TLS).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SyslogConfig {
    /// Names the forwarder in its stored cursor, its logs and metrics.
    pub name: String,
    /// The collector, `host:port` (6514 is syslog over TLS's port).
    pub address: String,
    /// CA certificates (PEM) the collector's certificate must chain to;
    /// the certificate must name the address's host.
    pub ca_file: PathBuf,
    /// A client certificate (PEM) for collectors that ask for one; with
    /// `client_key`.
    #[serde(default)]
    pub client_cert: Option<PathBuf>,
    /// Its private key (PEM); refused if its group or others can read it.
    #[serde(default)]
    pub client_key: Option<PathBuf>,
    /// APP-NAME (default `daypass`).
    #[serde(default = "default_app_name")]
    pub app_name: String,
    /// HOSTNAME (default: this machine's host name).
    #[serde(default)]
    pub hostname: Option<String>,
    /// A facility name (default `authpriv`): kern, user, mail, daemon,
    /// auth, syslog, lpr, news, uucp, cron, authpriv, ftp, ntp, audit,
    /// alert, clock, local0 … local7.
    #[serde(default)]
    pub facility: Facility,
    /// MSG: the entry as the export's JSON line, or as an OCSF event.
    #[serde(default)]
    pub format: SyslogFormat,
    /// After a failed connection or write, wait this long, doubled per
    /// failure up to `backoff_max_ms` (the injected clock).
    #[serde(default = "default_backoff_initial_ms")]
    pub backoff_initial_ms: u64,
    #[serde(default = "default_backoff_max_ms")]
    pub backoff_max_ms: u64,
}

/// What a message's MSG part holds.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SyslogFormat {
    /// The entry's JSON export line (docs/log-format.md §4).
    #[default]
    Json,
    /// The entry's OCSF event (docs/siem.md §3).
    Ocsf,
}

/// A syslog facility (RFC 5424 §6.2.1), 0..=23, named in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Facility(u8);

const FACILITIES: [&str; 24] = [
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
    "ftp", "ntp", "audit", "alert", "clock", "local0", "local1", "local2", "local3", "local4",
    "local5", "local6", "local7",
];

impl Facility {
    /// The facility's code, 0..=23.
    pub fn code(self) -> u8 {
        self.0
    }

    pub fn parse(name: &str) -> Option<Facility> {
        FACILITIES
            .iter()
            .position(|f| *f == name)
            .and_then(|i| u8::try_from(i).ok())
            .map(Facility)
    }
}

impl Default for Facility {
    fn default() -> Self {
        Facility(10) // authpriv: the messages carry tenants' reasons
    }
}

impl TryFrom<String> for Facility {
    type Error = String;

    fn try_from(name: String) -> Result<Self, String> {
        Facility::parse(&name).ok_or_else(|| {
            format!(
                "facility {name:?} is not a syslog facility (one of {})",
                FACILITIES.join(", ")
            )
        })
    }
}

fn default_app_name() -> String {
    "daypass".into()
}

fn default_backoff_initial_ms() -> u64 {
    1000
}

fn default_backoff_max_ms() -> u64 {
    60_000
}

/// Each forwarder's name (unique among the forwarders), address, header
/// fields, key pair and backoff; the message says which section and what
/// to change.
pub fn check(configs: &[SyslogConfig]) -> Result<(), String> {
    let mut names = std::collections::BTreeSet::new();
    for c in configs {
        let bad = |m: String| format!("syslog {:?}: {m}", c.name);
        if c.name.is_empty()
            || c.name.len() > 64
            || !c
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(bad(
                "name must be 1 to 64 letters, digits, '-' or '_'".into()
            ));
        }
        if !names.insert(c.name.as_str()) {
            return Err(bad("two [[syslog]] sections have this name".into()));
        }
        split_address(&c.address).map_err(bad)?;
        if c.client_cert.is_some() != c.client_key.is_some() {
            return Err(bad(
                "client_cert and client_key go together: set both or neither".into(),
            ));
        }
        printable("app_name", &c.app_name, 48).map_err(bad)?;
        if let Some(h) = &c.hostname {
            printable("hostname", h, 255).map_err(bad)?;
        }
        if c.backoff_initial_ms == 0 || c.backoff_initial_ms > c.backoff_max_ms {
            return Err(bad(format!(
                "backoff_initial_ms ({}) must be at least 1 and at most backoff_max_ms ({})",
                c.backoff_initial_ms, c.backoff_max_ms
            )));
        }
        if c.backoff_max_ms > 3_600_000 {
            return Err(bad(format!(
                "backoff_max_ms must be at most 3600000 (1 h), not {}",
                c.backoff_max_ms
            )));
        }
    }
    Ok(())
}

/// `host:port` (`[v6]:port` for IPv6) into its host and port.
pub fn split_address(address: &str) -> Result<(String, u16), String> {
    let wrong = || format!("address {address:?} must be host:port, e.g. siem.example:6514");
    let (host, port) = address.rsplit_once(':').ok_or_else(wrong)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port: u16 = port.parse().map_err(|_| wrong())?;
    if host.is_empty() || port == 0 || host.contains(['/', '@', ' ']) {
        return Err(wrong());
    }
    Ok((host.to_owned(), port))
}

/// RFC 5424's PRINTUSASCII (33..=126), 1 to `max` characters.
fn printable(field: &str, v: &str, max: usize) -> Result<(), String> {
    if v.is_empty() || v.len() > max || !v.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "{field} {v:?} must be 1 to {max} printable ASCII characters without spaces"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facilities_by_name() {
        assert_eq!(Facility::parse("kern").map(Facility::code), Some(0));
        assert_eq!(Facility::parse("authpriv").map(Facility::code), Some(10));
        assert_eq!(Facility::parse("local7").map(Facility::code), Some(23));
        assert_eq!(Facility::parse("local8"), None);
        assert_eq!(Facility::default().code(), 10);
    }

    #[test]
    fn addresses() {
        assert_eq!(
            split_address("siem.example:6514"),
            Ok(("siem.example".into(), 6514))
        );
        assert_eq!(split_address("[::1]:6514"), Ok(("::1".into(), 6514)));
        assert!(split_address("siem.example").is_err());
        assert!(split_address(":6514").is_err());
        assert!(split_address("siem:0").is_err());
        assert!(split_address("tls://siem:6514").is_err());
    }
}
