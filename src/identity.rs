//! Who is calling: the peer's client certificate becomes a typed
//! [`Principal`] once, here. What that principal may do is decided by the
//! registries and [`crate::policy`], not by the certificate.
//!
//! A principal is named by exactly one URI SAN of the form
//! `spiffe://<trust-domain>/<kind>/<name>` with kind `staff`, `tenant` or
//! `auditor`.

use thiserror::Error;
use x509_parser::{extensions::GeneralName, prelude::FromDer};

/// Why a certificate or a name was not accepted.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum IdentityError {
    #[error("no client certificate was presented")]
    NoCertificate,
    #[error("the client certificate could not be parsed")]
    BadCertificate,
    #[error("the client certificate has no spiffe://{0}/<kind>/<name> URI SAN")]
    NoPrincipal(String),
    #[error("the client certificate names more than one principal")]
    AmbiguousPrincipal,
    #[error("invalid principal URI: {0}")]
    BadPrincipal(String),
    #[error(
        "invalid name {0:?}: use 1-64 characters a-z, 0-9, '.', '_' or '-', starting with a letter or digit"
    )]
    BadName(String),
}

pub use crate::domain::{
    ids::{Name, Principal, PrincipalKind},
    text::truncate,
};

impl Principal {
    /// The principal named by a DER certificate: exactly one URI SAN in our
    /// trust domain must parse. URI SANs of other schemes are ignored.
    pub fn from_certificate(der: &[u8], trust_domain: &str) -> Result<Principal, IdentityError> {
        let (_, cert) = x509_parser::certificate::X509Certificate::from_der(der)
            .map_err(|_| IdentityError::BadCertificate)?;
        let mut found = None;
        let sans = cert
            .subject_alternative_name()
            .map_err(|_| IdentityError::BadCertificate)?;
        for name in sans.iter().flat_map(|ext| ext.value.general_names.iter()) {
            if let GeneralName::URI(uri) = name {
                if !uri.starts_with("spiffe://") {
                    continue;
                }
                let principal = Principal::parse_uri(uri, trust_domain)?;
                if found.replace(principal).is_some() {
                    return Err(IdentityError::AmbiguousPrincipal);
                }
            }
        }
        found.ok_or_else(|| IdentityError::NoPrincipal(trust_domain.to_owned()))
    }
}
