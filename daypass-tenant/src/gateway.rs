//! A tenant gateway, wired: a mutual-TLS channel to the broker
//! ([`connect_broker`]) and a [`Gateway`] that holds the [`Verifier`], the
//! [`Feed`] keeping it fresh and the [`Reporter`], ready once the broker's
//! keys and a first revocation list have arrived. Its [`RequireGrant`]
//! layer protects a tonic server; its [`Gateway::grant_ca_pem`] is the
//! client CA for that server's TLS, so engineers can connect with grant
//! certificates.
//!
//! The pieces stay usable on their own; this module only saves every tenant
//! writing the same thirty lines.

use std::{path::Path, sync::Arc, time::Duration};

use thiserror::Error;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::{
    clock::SharedClock,
    feed::{Feed, FeedHandle, FeedOptions},
    keys::KeySet,
    layer::RequireGrant,
    report::{Reporter, ReporterOptions},
    verifier::Verifier,
};

/// The PEM files a tenant presents to the broker, and the CA it trusts for
/// the broker's server certificate.
#[derive(Clone)]
pub struct BrokerIdentity {
    pub ca_pem: Vec<u8>,
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

impl std::fmt::Debug for BrokerIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BrokerIdentity { .. }")
    }
}

#[derive(Debug, Error)]
pub enum GatewayError {
    #[error("cannot read {what} {path}: {source}")]
    Read {
        what: &'static str,
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("invalid broker address {0:?}: use https://HOST:PORT")]
    Address(String),
    #[error("TLS setup for the broker failed: {0}")]
    Tls(String),
    #[error(
        "no keys and revocation list from the broker within {waited:?} (last error: {})",
        last_error.as_deref().unwrap_or("none")
    )]
    NotReady {
        waited: Duration,
        last_error: Option<String>,
    },
}

/// How a gateway starts. Plain data.
#[derive(Debug, Clone)]
pub struct GatewayOptions {
    pub feed: FeedOptions,
    pub reporter: ReporterOptions,
    /// How long [`Gateway::start`] waits for the broker's keys and a first
    /// revocation list.
    pub ready_within: Duration,
}

impl Default for GatewayOptions {
    fn default() -> Self {
        GatewayOptions {
            feed: FeedOptions::default(),
            reporter: ReporterOptions::default(),
            ready_within: Duration::from_secs(10),
        }
    }
}

/// A verifier, kept fresh, and a reporter. See the module documentation.
#[derive(Debug)]
pub struct Gateway {
    verifier: Arc<Verifier>,
    feed: FeedHandle,
    reporter: Reporter,
}

impl BrokerIdentity {
    pub fn from_files(ca: &Path, cert: &Path, key: &Path) -> Result<Self, GatewayError> {
        let read = |what, path: &Path| {
            std::fs::read(path).map_err(|source| GatewayError::Read {
                what,
                path: path.to_owned(),
                source,
            })
        };
        Ok(BrokerIdentity {
            ca_pem: read("broker CA certificate", ca)?,
            cert_pem: read("tenant certificate", cert)?,
            key_pem: read("tenant key", key)?,
        })
    }
}

/// A mutual-TLS channel to the broker at `url` (`https://host:port`). It
/// connects on first use and reconnects by itself, so a tenant may start
/// before the broker.
pub fn connect_broker(url: &str, id: &BrokerIdentity) -> Result<Channel, GatewayError> {
    let endpoint =
        Endpoint::from_shared(url.to_owned()).map_err(|_| GatewayError::Address(url.to_owned()))?;
    let host = endpoint
        .uri()
        .host()
        .unwrap_or_default()
        .trim_matches(['[', ']'])
        .to_owned();
    if endpoint.uri().scheme_str() != Some("https") || host.is_empty() {
        return Err(GatewayError::Address(url.to_owned()));
    }
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&id.ca_pem))
        .identity(Identity::from_pem(&id.cert_pem, &id.key_pem))
        .domain_name(host);
    Ok(endpoint
        .tls_config(tls)
        .map_err(|e| GatewayError::Tls(e.to_string()))?
        .tcp_nodelay(true)
        .connect_lazy())
}

impl Gateway {
    /// Starts a gateway for `tenant` over `channel` with default options.
    pub async fn start(
        tenant: &str,
        channel: Channel,
        clock: SharedClock,
    ) -> Result<Gateway, GatewayError> {
        let verifier = Arc::new(Verifier::new(tenant, KeySet::default(), clock));
        Gateway::start_with(verifier, channel, GatewayOptions::default()).await
    }

    /// Starts the feed (which fetches the keys) and the reporter, and waits
    /// until the verifier has keys and a revocation list.
    pub async fn start_with(
        verifier: Arc<Verifier>,
        channel: Channel,
        options: GatewayOptions,
    ) -> Result<Gateway, GatewayError> {
        let feed = Feed::follow_with(verifier.clone(), channel.clone(), options.feed);
        let ready = feed.wait_for(|s| s.key_refreshes > 0 && s.lists_applied > 0);
        if tokio::time::timeout(options.ready_within, ready)
            .await
            .ok()
            .flatten()
            .is_none()
        {
            return Err(GatewayError::NotReady {
                waited: options.ready_within,
                last_error: feed.status().last_error,
            });
        }
        // Accesses are stamped on the verifier's clock, the one that admitted them.
        let reporter = Reporter::with_clock(channel, options.reporter, verifier.clock().clone());
        Ok(Gateway {
            verifier,
            feed,
            reporter,
        })
    }

    pub fn verifier(&self) -> &Arc<Verifier> {
        &self.verifier
    }

    pub fn feed(&self) -> &FeedHandle {
        &self.feed
    }

    pub fn reporter(&self) -> &Reporter {
        &self.reporter
    }

    /// The layer admitting grant holders into a tonic server.
    pub fn require_grant(&self) -> RequireGrant {
        RequireGrant::new(self.verifier.clone(), self.reporter.clone())
    }

    /// The broker's grant CAs (current and rotated out), as PEM: the client
    /// CAs of a TLS server that admits grant certificates. Read at start;
    /// a server picks up a new grant CA when it is restarted.
    pub fn grant_ca_pem(&self) -> String {
        self.verifier
            .keys()
            .grant_cas
            .iter()
            .map(|ca| crate::pem::encode("CERTIFICATE", &ca.certificate_der))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_addresses_must_be_https() {
        let id = BrokerIdentity {
            ca_pem: Vec::new(),
            cert_pem: Vec::new(),
            key_pem: Vec::new(),
        };
        for bad in ["http://localhost:1", "localhost:1", "https://:1"] {
            assert!(
                matches!(connect_broker(bad, &id), Err(GatewayError::Address(_))),
                "{bad}"
            );
        }
    }
}
