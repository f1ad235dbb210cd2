//! What the broker signs for tenants to check offline: grant tokens and
//! revocation lists (docs/integration.md §3–4).
//!
//! Both are PASETO v4.public tokens ([`crate::paseto`]) whose payload is a
//! JSON object and whose footer is `{"kid":"<key id>"}`. They use different
//! implicit assertions ([`GRANT_ASSERTION`], [`REVOCATIONS_ASSERTION`]), so
//! one can never be passed off as the other. Times are RFC 3339 UTC strings
//! with milliseconds, e.g. `2026-11-26T10:00:00.000Z`.

use ring::{
    digest,
    signature::{Ed25519KeyPair, KeyPair},
};
use serde::{Deserialize, Serialize};

use crate::{clock::Timestamp, paseto};

/// The longest grant daypass ever issues (24 h). A verifier refuses a
/// token or certificate that claims to last longer.
pub const MAX_GRANT_SECS: i64 = 24 * 60 * 60;

/// The path, after the issuer, of a grant certificate's URI SAN carrying
/// the holder's country: `spiffe://<td>/holder/country/<CC>`.
pub const CERT_COUNTRY_PATH: &str = "/holder/country/";
/// The same for the holder's organisation:
/// `spiffe://<td>/holder/organisation/<company or sub-processor>`.
pub const CERT_ORGANISATION_PATH: &str = "/holder/organisation/";

/// The path, after the issuer, of a *scoped* grant certificate's grant
/// URI: `spiffe://<td>/scoped-grant/<tenant>/<grant id>`. Not `/grant/`, so a
/// verifier that does not know scopes finds no grant in it and refuses it
/// rather than admitting it to the whole tenant.
pub const CERT_SCOPED_GRANT_PATH: &str = "/scoped-grant/";
/// The path of each scope URI of a scoped grant certificate:
/// `spiffe://<td>/grant-scope/<scope>`, one URI per scope.
pub const CERT_SCOPE_PATH: &str = "/grant-scope/";

/// How long before its issue a grant certificate's validity starts:
/// tolerance for clocks a little behind the broker's. A verifier allows a
/// certificate this much longer than the longest grant.
pub const CERT_BACKDATE_SECS: i64 = 300;

/// The implicit assertion of grant tokens.
pub const GRANT_ASSERTION: &[u8] = b"daypass-grant-v1";
/// The implicit assertion of grant tokens with a `scopes` claim: a
/// verifier that does not know scopes checks `daypass-grant-v1` only, so a
/// scoped token fails its signature check there instead of passing as a
/// whole-tenant grant (docs/integration.md §2.1).
pub const SCOPED_GRANT_ASSERTION: &[u8] = b"daypass-scoped-grant-v1";
/// The implicit assertion of revocation lists.
pub const REVOCATIONS_ASSERTION: &[u8] = b"daypass-revocations-v1";

/// A key's id: hex of the first 8 bytes of SHA-256 over the raw 32-byte
/// Ed25519 public key (for a grant CA: over the certificate's DER).
pub fn key_id(bytes: &[u8]) -> String {
    hex::encode(&digest::digest(&digest::SHA256, bytes).as_ref()[..8])
}

/// The footer of every token the broker signs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Footer {
    pub kid: String,
}

/// The payload of a grant token. The registered PASETO claims carry the
/// grant; `reason_sha256` binds the stated reason without disclosing it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantClaims {
    /// The broker: `spiffe://<trust domain>`.
    pub iss: String,
    /// The holder's principal, `spiffe://<trust domain>/staff/<name>`.
    pub sub: String,
    /// The tenant the grant is for.
    pub aud: String,
    /// The grant id.
    pub jti: String,
    /// When the grant became active.
    #[serde(with = "rfc3339")]
    pub iat: Timestamp,
    /// Equal to `iat`.
    #[serde(with = "rfc3339")]
    pub nbf: Timestamp,
    /// When the grant expires (at most 24 h after `iat`).
    #[serde(with = "rfc3339")]
    pub exp: Timestamp,
    /// Hex SHA-256 of the grant's reason (UTF-8).
    pub reason_sha256: String,
    /// The holder's country (ISO 3166-1 alpha-2) as the broker records it;
    /// absent when unknown, and in tokens from brokers before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// Whom the holder works for: `company` or a sub-processor's name;
    /// absent in tokens from brokers before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organisation: Option<String>,
    /// The grant's scopes within the tenant ([`crate::scope`]), in
    /// ascending order; absent for a grant of the whole tenant. Present
    /// exactly when the token is signed with [`SCOPED_GRANT_ASSERTION`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
}

/// One revoked (or released) grant, listed until its original expiry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revoked {
    pub jti: String,
    #[serde(with = "rfc3339")]
    pub exp: Timestamp,
}

/// The payload of a revocation list: every grant of tenant `aud` that
/// ended before its expiry and has not yet expired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationClaims {
    pub iss: String,
    pub aud: String,
    /// The log's size when the list was made: never decreases, except
    /// across a declared restore of the broker, which raises `epoch`.
    pub seq: u64,
    /// How many times the broker's store was restored from a backup (a
    /// declared restore, `store.restored`); omitted when 0. Lists are
    /// ordered by (`epoch`, `seq`, `iat`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub epoch: u64,
    /// When the list was made; a verifier refuses everything once this is
    /// older than its staleness limit.
    #[serde(with = "rfc3339")]
    pub iat: Timestamp,
    pub revoked: Vec<Revoked>,
}

impl GrantClaims {
    /// Signs the claims: a `v4.public.` token, with
    /// [`SCOPED_GRANT_ASSERTION`] when it carries scopes.
    pub fn sign(&self, key: &Ed25519KeyPair) -> String {
        sign_json(self, key, self.assertion())
    }

    /// The implicit assertion these claims are signed with.
    pub fn assertion(&self) -> &'static [u8] {
        if self.scopes.is_some() {
            SCOPED_GRANT_ASSERTION
        } else {
            GRANT_ASSERTION
        }
    }
}

impl RevocationClaims {
    /// Signs the list: a `v4.public.` token.
    pub fn sign(&self, key: &Ed25519KeyPair) -> String {
        sign_json(self, key, REVOCATIONS_ASSERTION)
    }
}

/// Hex SHA-256 of a reason, as in [`GrantClaims::reason_sha256`].
pub fn reason_sha256(reason: &str) -> String {
    hex::encode(digest::digest(&digest::SHA256, reason.as_bytes()))
}

fn sign_json<T: Serialize>(claims: &T, key: &Ed25519KeyPair, assertion: &[u8]) -> String {
    // Serializing plain structs of strings and numbers cannot fail.
    let message = serde_json::to_vec(claims).unwrap_or_default();
    let footer = serde_json::to_vec(&Footer {
        kid: key_id(key.public_key().as_ref()),
    })
    .unwrap_or_default();
    paseto::sign(key, &message, &footer, assertion)
}

/// RFC 3339 UTC with milliseconds for [`Timestamp`]s in claims.
pub(crate) mod rfc3339 {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    use crate::clock::Timestamp;

    pub fn serialize<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Timestamp::parse_rfc3339(&s)
            .ok_or_else(|| D::Error::custom(format!("not an RFC 3339 time: {s:?}")))
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn location_claims_are_optional_and_omitted_when_unknown() {
        let c = GrantClaims {
            iss: "spiffe://t".into(),
            sub: "spiffe://t/staff/a".into(),
            aud: "acme".into(),
            jti: "g".into(),
            iat: Timestamp(0),
            nbf: Timestamp(0),
            exp: Timestamp(1000),
            reason_sha256: reason_sha256("r"),
            country: None,
            organisation: None,
            scopes: None,
        };
        let json = serde_json::to_string(&c).unwrap();
        assert!(
            !json.contains("country") && !json.contains("organisation"),
            "{json}"
        );
        // A payload of an older broker still parses.
        assert_eq!(serde_json::from_str::<GrantClaims>(&json).unwrap(), c);
        let with = GrantClaims {
            country: Some("DE".into()),
            organisation: Some("company".into()),
            ..c
        };
        let json = serde_json::to_string(&with).unwrap();
        assert!(json.contains(r#""country":"DE""#), "{json}");
        assert_eq!(serde_json::from_str::<GrantClaims>(&json).unwrap(), with);
    }
}
