//! The broker's published verification keys (GetVerificationKeys): token
//! keys and grant CAs, each with its id and validity window.
//!
//! Rotation: when the broker moves to a new key, the old one stays
//! published with `retired_at` (signing stopped) and `verify_until` =
//! `retired_at` + the longest grant; every token it signed has expired by
//! then. A verifier refuses anything signed by a key it does not know, by a
//! key past its `verify_until`, or by a retired key after its retirement.

use thiserror::Error;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::{claims::key_id, clock::Timestamp};

/// One Ed25519 token-signing key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenKey {
    pub id: String,
    pub public_key: [u8; 32],
    /// When signing with it stopped; None for the current key.
    pub retired_at: Option<Timestamp>,
    /// From when nothing it signed is accepted; None for the current key.
    pub verify_until: Option<Timestamp>,
}

/// One grant CA certificate (DER).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantCa {
    pub id: String,
    pub certificate_der: Vec<u8>,
    pub retired_at: Option<Timestamp>,
    pub verify_until: Option<Timestamp>,
}

/// Everything a verifier trusts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeySet {
    pub trust_domain: String,
    pub token_keys: Vec<TokenKey>,
    pub grant_cas: Vec<GrantCa>,
}

#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("token key {id}: an Ed25519 public key has 32 bytes, not {len}")]
    KeyLength { id: String, len: usize },
    #[error(
        "token key {id}: its id should be {expected} (hex of SHA-256 of the key, first 8 bytes)"
    )]
    KeyId { id: String, expected: String },
    #[error("grant CA {id}: not a DER certificate")]
    Certificate { id: String },
    #[error("grant CA {id}: its id should be {expected}")]
    CaId { id: String, expected: String },
    #[error("the key set has no trust domain")]
    NoTrustDomain,
}

impl TokenKey {
    /// Checks the id against the key.
    pub fn new(
        id: &str,
        public_key: &[u8],
        retired_at: Option<Timestamp>,
        verify_until: Option<Timestamp>,
    ) -> Result<TokenKey, KeyError> {
        let public_key: [u8; 32] = public_key.try_into().map_err(|_| KeyError::KeyLength {
            id: id.to_owned(),
            len: public_key.len(),
        })?;
        let expected = key_id(&public_key);
        if expected != id {
            return Err(KeyError::KeyId {
                id: id.to_owned(),
                expected,
            });
        }
        Ok(TokenKey {
            id: expected,
            public_key,
            retired_at,
            verify_until,
        })
    }

    /// May a token signed at `iat` by this key be accepted at `now`?
    pub fn accepts(&self, iat: Timestamp, now: Timestamp) -> bool {
        self.verify_until.is_none_or(|until| now < until)
            && self.retired_at.is_none_or(|retired| iat <= retired)
    }
}

impl GrantCa {
    /// Checks that the certificate parses and the id matches it.
    pub fn new(
        id: &str,
        certificate_der: Vec<u8>,
        retired_at: Option<Timestamp>,
        verify_until: Option<Timestamp>,
    ) -> Result<GrantCa, KeyError> {
        if X509Certificate::from_der(&certificate_der).is_err() {
            return Err(KeyError::Certificate { id: id.to_owned() });
        }
        let expected = key_id(&certificate_der);
        if expected != id {
            return Err(KeyError::CaId {
                id: id.to_owned(),
                expected,
            });
        }
        Ok(GrantCa {
            id: expected,
            certificate_der,
            retired_at,
            verify_until,
        })
    }
}

impl KeySet {
    pub fn token_key(&self, id: &str) -> Option<&TokenKey> {
        self.token_keys.iter().find(|k| k.id == id)
    }
}
