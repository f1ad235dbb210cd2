//! A mutual-TLS connection to a daypass server, used by the CLI and tests,
//! and the local check of the files a client presents ([`ClientIdentity::check`]).

use std::path::{Path, PathBuf};

use thiserror::Error;
use tokio_rustls::rustls::{
    self,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject as _},
    sign::CertifiedKey,
};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::clock::Timestamp;

use crate::pb::{
    audit_service_client::AuditServiceClient, gate_service_client::GateServiceClient,
    grant_service_client::GrantServiceClient, notify_service_client::NotifyServiceClient,
    staff_service_client::StaffServiceClient, tenant_service_client::TenantServiceClient,
};

#[derive(Debug, Error)]
pub enum ClientError {
    #[error("cannot read {what} {path}: {source}")]
    Read {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid server address {0:?}: use https://HOST:PORT")]
    Address(String),
    #[error(
        "cannot use the client certificate, key or CA: give a PEM certificate, its private key and the PEM CA certificate ({0})"
    )]
    Identity(String),
    #[error("cannot connect to {server}: {detail}")]
    Connect { server: String, detail: String },
}

/// The PEM files a client presents and trusts.
#[derive(Clone)]
pub struct ClientIdentity {
    pub ca_pem: Vec<u8>,
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientIdentity { .. }")
    }
}

impl ClientIdentity {
    pub fn from_files(ca: &Path, cert: &Path, key: &Path) -> Result<Self, ClientError> {
        let read = |what, path: &Path| {
            std::fs::read(path).map_err(|source| ClientError::Read {
                what,
                path: path.to_owned(),
                source,
            })
        };
        Ok(ClientIdentity {
            ca_pem: read("CA certificate", ca)?,
            cert_pem: read("client certificate", cert)?,
            key_pem: read("client key", key)?,
        })
    }
}

/// Which of a client's three files a problem is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdentityFile {
    Ca,
    Cert,
    Key,
}

/// A client's files that cannot work, found without connecting: which
/// file, and what is wrong with it (never its contents).
#[derive(Debug, Error)]
#[error("{detail}")]
pub struct IdentityProblem {
    pub file: IdentityFile,
    pub detail: String,
}

/// What a client's checked files say.
#[derive(Clone, Copy, Debug)]
pub struct IdentityInfo {
    /// The client certificate's `notAfter`.
    pub not_after: Timestamp,
}

impl ClientIdentity {
    /// Checks the three PEM files without connecting: the CA file holds
    /// certificates, the client certificate parses, the key parses and is
    /// the certificate's (rustls compares the public keys, as a server
    /// loading them would). Returns the certificate's expiry.
    pub fn check(&self) -> Result<IdentityInfo, IdentityProblem> {
        let problem = |file, detail: String| IdentityProblem { file, detail };
        let cas = CertificateDer::pem_slice_iter(&self.ca_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| problem(IdentityFile::Ca, format!("not a PEM certificate ({e})")))?;
        if cas.is_empty() {
            return Err(problem(IdentityFile::Ca, "holds no PEM certificate".into()));
        }
        for ca in &cas {
            x509_parser::parse_x509_certificate(ca).map_err(|e| {
                problem(
                    IdentityFile::Ca,
                    format!("a certificate does not parse ({e})"),
                )
            })?;
        }
        let chain = CertificateDer::pem_slice_iter(&self.cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| problem(IdentityFile::Cert, format!("not a PEM certificate ({e})")))?;
        let leaf = chain
            .first()
            .ok_or_else(|| problem(IdentityFile::Cert, "holds no PEM certificate".into()))?;
        let (_, parsed) = x509_parser::parse_x509_certificate(leaf).map_err(|e| {
            problem(
                IdentityFile::Cert,
                format!("the certificate does not parse ({e})"),
            )
        })?;
        let not_after = Timestamp(parsed.validity().not_after.timestamp().saturating_mul(1000));
        let key = PrivateKeyDer::from_pem_slice(&self.key_pem)
            .map_err(|e| problem(IdentityFile::Key, format!("not a PEM private key ({e})")))?;
        let provider = rustls::crypto::ring::default_provider();
        match CertifiedKey::from_der(chain, key, &provider) {
            Ok(_) => Ok(IdentityInfo { not_after }),
            Err(rustls::Error::InconsistentKeys(_)) => Err(problem(
                IdentityFile::Key,
                "is not the key of the client certificate".into(),
            )),
            Err(e) => Err(problem(IdentityFile::Key, format!("cannot be used ({e})"))),
        }
    }
}

/// Typed clients for every daypass service over one connection.
#[derive(Clone, Debug)]
pub struct Clients {
    pub staff: StaffServiceClient<Channel>,
    pub tenants: TenantServiceClient<Channel>,
    pub grants: GrantServiceClient<Channel>,
    pub audit: AuditServiceClient<Channel>,
    pub gate: GateServiceClient<Channel>,
    pub alerts: crate::pb::alert_service_client::AlertServiceClient<Channel>,
    pub incidents: crate::pb::incident_service_client::IncidentServiceClient<Channel>,
    pub processing: crate::pb::processing_service_client::ProcessingServiceClient<Channel>,
    pub notify: NotifyServiceClient<Channel>,
    pub screens: crate::pb::screen_service_client::ScreenServiceClient<Channel>,
    /// The standard gRPC health service (no admission: the cheapest call
    /// over the same mutual TLS).
    pub health: tonic_health::pb::health_client::HealthClient<Channel>,
}

impl Clients {
    pub fn new(channel: Channel) -> Self {
        Clients {
            staff: StaffServiceClient::new(channel.clone()),
            tenants: TenantServiceClient::new(channel.clone()),
            grants: GrantServiceClient::new(channel.clone()),
            gate: GateServiceClient::new(channel.clone()),
            alerts: crate::pb::alert_service_client::AlertServiceClient::new(channel.clone()),
            incidents: crate::pb::incident_service_client::IncidentServiceClient::new(
                channel.clone(),
            ),
            processing: crate::pb::processing_service_client::ProcessingServiceClient::new(
                channel.clone(),
            ),
            notify: NotifyServiceClient::new(channel.clone()),
            screens: crate::pb::screen_service_client::ScreenServiceClient::new(channel.clone()),
            audit: AuditServiceClient::new(channel.clone())
                .max_decoding_message_size(8 * crate::server::MAX_MESSAGE_BYTES),
            health: tonic_health::pb::health_client::HealthClient::new(channel),
        }
    }
}

/// Connects to `server` (`https://host:port`) presenting `id`.
pub async fn connect(server: &str, id: &ClientIdentity) -> Result<Clients, ClientError> {
    let endpoint = Endpoint::from_shared(server.to_owned())
        .map_err(|_| ClientError::Address(server.to_owned()))?;
    let host = endpoint
        .uri()
        .host()
        .unwrap_or_default()
        .trim_matches(['[', ']'])
        .to_owned();
    if endpoint.uri().scheme_str() != Some("https") || host.is_empty() {
        return Err(ClientError::Address(server.to_owned()));
    }
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&id.ca_pem))
        .identity(Identity::from_pem(&id.cert_pem, &id.key_pem))
        .domain_name(host);
    let channel = endpoint
        .tls_config(tls)
        .map_err(|e| ClientError::Identity(error_chain(&e)))?
        .tcp_nodelay(true)
        .connect()
        .await
        .map_err(|e| ClientError::Connect {
            server: server.to_owned(),
            detail: error_chain(&e),
        })?;
    Ok(Clients::new(channel))
}

/// An error and its causes on one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let msg = s.to_string();
        if !out.contains(&msg) {
            out.push_str(": ");
            out.push_str(&msg);
        }
        source = s.source();
    }
    out
}
