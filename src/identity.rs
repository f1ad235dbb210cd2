//! Who is calling: the peer's client certificate becomes a typed
//! [`Principal`] once, here. What that principal may do is decided by the
//! registries and [`crate::policy`], not by the certificate.
//!
//! A principal is named by exactly one URI SAN of the form
//! `spiffe://<trust-domain>/<kind>/<name>` with kind `staff`, `tenant` or
//! `auditor`.

use std::fmt;

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

/// A validated name of a person or tenant: 1-64 characters of `[a-z0-9._-]`,
/// starting with a letter or digit.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct Name(String);

impl TryFrom<String> for Name {
    type Error = IdentityError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Name::parse(&s)
    }
}

impl From<Name> for String {
    fn from(n: Name) -> String {
        n.0
    }
}

impl Name {
    pub fn parse(s: &str) -> Result<Name, IdentityError> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes().enumerate().all(|(i, b)| {
                b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || (i > 0 && matches!(b, b'.' | b'_' | b'-'))
            });
        if ok {
            Ok(Name(s.to_owned()))
        } else {
            // Never echo an arbitrarily long peer string back.
            Err(IdentityError::BadName(truncate(s, 64)))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PrincipalKind {
    Staff,
    Tenant,
    Auditor,
}

impl PrincipalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::Staff => "staff",
            PrincipalKind::Tenant => "tenant",
            PrincipalKind::Auditor => "auditor",
        }
    }

    pub fn parse(s: &str) -> Option<PrincipalKind> {
        match s {
            "staff" => Some(PrincipalKind::Staff),
            "tenant" => Some(PrincipalKind::Tenant),
            "auditor" => Some(PrincipalKind::Auditor),
            _ => None,
        }
    }
}

/// An authenticated peer: `kind/name` under the server's trust domain.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Principal {
    pub kind: PrincipalKind,
    pub name: Name,
}

impl Principal {
    pub fn new(kind: PrincipalKind, name: Name) -> Self {
        Principal { kind, name }
    }

    /// `spiffe://<trust_domain>/<kind>/<name>`.
    pub fn uri(&self, trust_domain: &str) -> String {
        format!(
            "spiffe://{trust_domain}/{}/{}",
            self.kind.as_str(),
            self.name
        )
    }

    /// Parses `spiffe://<trust_domain>/<kind>/<name>`; anything else is refused.
    pub fn parse_uri(uri: &str, trust_domain: &str) -> Result<Principal, IdentityError> {
        let bad = || IdentityError::BadPrincipal(truncate(uri, 128));
        let rest = uri.strip_prefix("spiffe://").ok_or_else(bad)?;
        let mut parts = rest.split('/');
        let (Some(td), Some(kind), Some(name), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        if td != trust_domain {
            return Err(bad());
        }
        let kind = PrincipalKind::parse(kind).ok_or_else(bad)?;
        Ok(Principal::new(kind, Name::parse(name)?))
    }

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

/// `kind/name`, the form used as the actor of log entries.
impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind.as_str(), self.name)
    }
}

/// At most `max` characters of `s`, for error messages about peer input.
pub fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(Name::parse("alice").is_ok());
        assert!(Name::parse("acme-prod.eu_1").is_ok());
        for bad in ["", "Alice", "-x", "a/b", "a b", &"a".repeat(65), "é"] {
            assert!(Name::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn principal_uris() {
        let p = Principal::parse_uri("spiffe://example.test/staff/alice", "example.test").unwrap();
        assert_eq!(p.kind, PrincipalKind::Staff);
        assert_eq!(p.to_string(), "staff/alice");
        assert_eq!(p.uri("example.test"), "spiffe://example.test/staff/alice");
        for bad in [
            "spiffe://other.test/staff/alice",
            "spiffe://example.test/robot/alice",
            "spiffe://example.test/staff",
            "spiffe://example.test/staff/alice/x",
            "https://example.test/staff/alice",
            "spiffe://example.test/staff/ALICE",
        ] {
            assert!(Principal::parse_uri(bad, "example.test").is_err(), "{bad}");
        }
    }
}
