//! Who is calling: the peer's client certificate becomes a typed
//! [`Principal`] once, here. What that principal may do is decided by the
//! registries and [`crate::policy`], not by the certificate.
//!
//! A principal is named by exactly one URI SAN of the form
//! `spiffe://<trust-domain>/<kind>/<name>` with kind `staff`, `tenant` or
//! `auditor`. Beyond what the TLS stack checked (a chain to `tls.ca`,
//! validity, no EKU other than clientAuth), a client certificate must be
//! issued directly by that CA ([`ClientCa`]: no intermediate CAs), must not
//! itself be a CA, and must carry extended key usage clientAuth.

use thiserror::Error;
use x509_parser::{
    certificate::X509Certificate, extensions::GeneralName, prelude::FromDer,
    x509::SubjectPublicKeyInfo,
};

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
        "URI SAN {0:?} looks like a principal but is not canonical: write \
         spiffe://<trust-domain>/<kind>/<name> in lowercase"
    )]
    NonCanonicalPrincipal(String),
    #[error(
        "the client certificate was not issued directly by the daypass CA (tls.ca); \
         intermediate CAs are not accepted: issue it with `daypass certs issue`"
    )]
    NotIssuedByCa,
    #[error("the client certificate is a CA certificate (CA:TRUE); present a leaf certificate")]
    CaCertificate,
    #[error(
        "the client certificate has no extended key usage clientAuth; \
         issue it with `daypass certs issue`"
    )]
    NoClientAuth,
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
    /// The principal named by a DER certificate: a leaf (not CA:TRUE) with
    /// extended key usage clientAuth, in which exactly one URI SAN in our
    /// trust domain parses. URI SANs of other schemes are ignored; one
    /// whose scheme is `spiffe` in any case must be canonical.
    pub fn from_certificate(der: &[u8], trust_domain: &str) -> Result<Principal, IdentityError> {
        let (_, cert) =
            X509Certificate::from_der(der).map_err(|_| IdentityError::BadCertificate)?;
        let bad = |_| IdentityError::BadCertificate;
        if cert
            .basic_constraints()
            .map_err(bad)?
            .is_some_and(|bc| bc.value.ca)
        {
            return Err(IdentityError::CaCertificate);
        }
        // anyExtendedKeyUsage alone is not clientAuth.
        let client_auth = cert
            .extended_key_usage()
            .map_err(bad)?
            .is_some_and(|eku| eku.value.client_auth);
        if !client_auth {
            return Err(IdentityError::NoClientAuth);
        }
        let mut found = None;
        let sans = cert.subject_alternative_name().map_err(bad)?;
        for name in sans.iter().flat_map(|ext| ext.value.general_names.iter()) {
            if let GeneralName::URI(uri) = name {
                let scheme = uri.split_once(':').map(|(scheme, _)| scheme);
                if !scheme.is_some_and(|s| s.eq_ignore_ascii_case("spiffe")) {
                    continue;
                }
                if !uri.starts_with("spiffe://") {
                    return Err(IdentityError::NonCanonicalPrincipal(truncate(uri, 128)));
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

/// The CA (or CAs: `tls.ca` may hold several) that issues client
/// certificates directly. The TLS stack accepts any chain to it, through
/// intermediates the client sends; [`ClientCa::issued_directly`] refuses
/// those.
#[derive(Debug, Clone)]
pub struct ClientCa {
    /// Each CA's subject (raw DER) and SubjectPublicKeyInfo (raw DER).
    cas: Vec<(Vec<u8>, Vec<u8>)>,
}

impl ClientCa {
    /// The CAs in a PEM bundle (`tls.ca`); `None` if it holds no
    /// certificate that parses.
    pub fn from_pem(pem: &[u8]) -> Option<ClientCa> {
        let cas: Vec<_> = x509_parser::pem::Pem::iter_from_buffer(pem)
            .filter_map(Result::ok)
            .filter(|p| p.label == "CERTIFICATE")
            .filter_map(|p| {
                let (_, cert) = X509Certificate::from_der(&p.contents).ok()?;
                Some((
                    cert.subject().as_raw().to_vec(),
                    cert.public_key().raw.to_vec(),
                ))
            })
            .collect();
        (!cas.is_empty()).then_some(ClientCa { cas })
    }

    /// Was the leaf of this peer chain (as the TLS stack verified it)
    /// signed by one of our CAs itself? Its issuer must be a CA's subject.
    /// A chain of the leaf alone can only have been verified against a
    /// trust anchor, so that is enough; when the peer sent more (which
    /// could hold an intermediate named like our CA), the leaf's signature
    /// is checked against the CA's key as well. That keeps the signature
    /// check off the common path, which runs on every call.
    pub fn issued_directly(&self, chain: &[impl AsRef<[u8]>]) -> Result<(), IdentityError> {
        let leaf = chain.first().ok_or(IdentityError::NoCertificate)?;
        let (_, cert) =
            X509Certificate::from_der(leaf.as_ref()).map_err(|_| IdentityError::BadCertificate)?;
        let issuer = cert.issuer().as_raw();
        let signed_by = |spki: &[u8]| {
            SubjectPublicKeyInfo::from_der(spki)
                .is_ok_and(|(_, key)| cert.verify_signature(Some(&key)).is_ok())
        };
        let direct = self
            .cas
            .iter()
            .filter(|(subject, _)| subject.as_slice() == issuer)
            .any(|(_, spki)| chain.len() == 1 || signed_by(spki));
        if direct {
            Ok(())
        } else {
            Err(IdentityError::NotIssuedByCa)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::{CertSpec, CertificateAuthority};

    const TD: &str = "test.daypass";
    const ADA: &str = "spiffe://test.daypass/staff/ada";

    fn der(pem: &str) -> Vec<u8> {
        daypass_tenant::pem::decode(pem, "CERTIFICATE").expect("PEM certificate")
    }

    fn leaf(ca: &CertificateAuthority, tweak: impl FnOnce(&mut CertSpec)) -> Vec<u8> {
        let mut spec = CertSpec::client(ADA, 1);
        tweak(&mut spec);
        der(&ca.issue(&spec).expect("cert").cert_pem)
    }

    #[test]
    fn a_client_leaf_names_its_principal() {
        let ca = CertificateAuthority::generate("CA").expect("CA");
        let p = Principal::from_certificate(&leaf(&ca, |_| {}), TD).expect("principal");
        assert_eq!(p.to_string(), "staff/ada");
    }

    #[test]
    fn a_ca_certificate_is_not_a_client_certificate() {
        let ca = CertificateAuthority::generate("CA").expect("CA");
        assert_eq!(
            Principal::from_certificate(&der(ca.cert_pem()), TD),
            Err(IdentityError::CaCertificate)
        );
    }

    #[test]
    fn extended_key_usage_client_auth_is_required() {
        let ca = CertificateAuthority::generate("CA").expect("CA");
        for (what, server, client) in [("none", false, false), ("serverAuth only", true, false)] {
            let cert = leaf(&ca, |s| {
                s.server_auth = server;
                s.client_auth = client;
            });
            assert_eq!(
                Principal::from_certificate(&cert, TD),
                Err(IdentityError::NoClientAuth),
                "{what}"
            );
        }
    }

    #[test]
    fn a_spiffe_uri_in_any_case_must_be_canonical() {
        let ca = CertificateAuthority::generate("CA").expect("CA");
        for odd in [
            "SPIFFE://test.daypass/staff/eve",
            "sPiFfE://test.daypass/staff/eve",
            "spiffe:test.daypass/staff/eve",
            "spiffe:/test.daypass/staff/eve",
        ] {
            let cert = leaf(&ca, |s| s.uris = vec![odd.into(), ADA.into()]);
            assert_eq!(
                Principal::from_certificate(&cert, TD),
                Err(IdentityError::NonCanonicalPrincipal(odd.into())),
                "{odd}"
            );
        }
        // Other schemes are still ignored.
        let cert = leaf(&ca, |s| {
            s.uris = vec!["https://x/staff/eve".into(), ADA.into()]
        });
        assert!(Principal::from_certificate(&cert, TD).is_ok());
    }

    #[test]
    fn only_leaves_of_our_ca_are_issued_directly() {
        let ours = CertificateAuthority::generate("daypass CA").expect("CA");
        // Another CA with the same name: only the signature tells.
        let other = CertificateAuthority::generate("daypass CA").expect("CA");
        let bundle = format!(
            "{}{}",
            ours.cert_pem(),
            CertificateAuthority::generate("second CA")
                .expect("CA")
                .cert_pem()
        );
        let ca = ClientCa::from_pem(bundle.as_bytes()).expect("CA bundle");
        let good = leaf(&ours, |_| {});
        let forged = leaf(&other, |_| {});
        let root = der(ours.cert_pem());
        assert_eq!(ca.issued_directly(&[&good]), Ok(()));
        assert_eq!(ca.issued_directly(&[&good, &root]), Ok(()));
        assert_eq!(
            ca.issued_directly(&[&forged, &root]),
            Err(IdentityError::NotIssuedByCa)
        );
        assert_eq!(
            ca.issued_directly(&[leaf(
                &CertificateAuthority::generate("x").expect("CA"),
                |_| {}
            )]),
            Err(IdentityError::NotIssuedByCa)
        );
        assert_eq!(
            ca.issued_directly(&[] as &[&[u8]]),
            Err(IdentityError::NoCertificate)
        );
        assert!(ClientCa::from_pem(b"not PEM").is_none());
    }
}
