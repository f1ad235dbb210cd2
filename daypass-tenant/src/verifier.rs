//! Offline decisions: [`Verifier`] admits the holder of a grant token or a
//! grant certificate, or says why not, without asking the broker.
//!
//! It needs the broker's keys ([`KeySet`]) and a fresh revocation list: each
//! list the feed delivers is verified and replaces the previous one (never
//! by an older one). Once the newest list is older than the staleness limit
//! (default 30 s), every credential is refused until a fresh one arrives:
//! a revoked grant is accepted offline for at most that limit (plus the
//! clock difference between broker and tenant) after its revocation.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, RwLock},
    time::Duration,
};

use serde::de::DeserializeOwned;
use thiserror::Error;
use x509_parser::{certificate::X509Certificate, extensions::GeneralName, prelude::FromDer};

use crate::{
    claims::{
        CERT_BACKDATE_SECS, CERT_COUNTRY_PATH, CERT_ORGANISATION_PATH, CERT_SCOPE_PATH,
        CERT_SCOPED_GRANT_PATH, Footer, GRANT_ASSERTION, GrantClaims, MAX_GRANT_SECS,
        REVOCATIONS_ASSERTION, RevocationClaims, SCOPED_GRANT_ASSERTION,
    },
    clock::{SharedClock, Timestamp},
    keys::{KeySet, TokenKey},
    paseto,
    remembered::{Remembered, StateError},
    scope::{Resource, Scopes},
};

pub use crate::holder::HolderRule;

/// The default staleness limit of the revocation list.
pub const DEFAULT_MAX_STALENESS: Duration = Duration::from_secs(30);

/// Someone the verifier let in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    pub grant_id: String,
    /// The holder's principal, `spiffe://<trust domain>/staff/<name>`.
    pub holder: String,
    pub tenant: String,
    pub expires_at: Timestamp,
    pub credential: Credential,
    /// The holder's country (ISO 3166-1 alpha-2) when the grant was issued,
    /// as the broker records it; `None` when unknown or from an older broker.
    pub country: Option<String>,
    /// Whom the holder works for: `company` or a sub-processor's name.
    pub organisation: Option<String>,
    /// The grant's scopes within the tenant; empty: the whole tenant.
    /// Admitting the holder says nothing about a resource: ask
    /// [`Admission::permits`] (or [`Admission::require`]) for the one the
    /// call is for ([`crate::RequireGrant::for_resources`] does).
    pub scopes: Scopes,
}

impl Admission {
    /// Is `resource` inside the grant (always, for a grant of the whole
    /// tenant)?
    pub fn permits(&self, resource: &Resource) -> bool {
        self.scopes.permits(resource)
    }

    /// [`Admission::permits`], or the refusal to answer with.
    pub fn require(&self, resource: &Resource) -> Result<(), Refusal> {
        if self.permits(resource) {
            Ok(())
        } else {
            Err(Refusal::OutOfScope {
                resource: resource.to_string(),
                scopes: self.scopes.to_string(),
            })
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    Token,
    Certificate,
}

/// Why a credential was refused. Every variant is a "no".
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum Refusal {
    #[error("malformed credential: {0}")]
    Malformed(String),
    #[error("signed by unknown key {0:?}")]
    UnknownKey(String),
    #[error("signed by key {0}, which is no longer accepted (rotated out)")]
    KeyRetired(String),
    #[error("bad signature")]
    BadSignature,
    #[error("the grant is for tenant {0:?}, not this one")]
    WrongTenant(String),
    #[error("not valid before {0}")]
    NotYetValid(Timestamp),
    #[error("the grant expired at {0}")]
    Expired(Timestamp),
    #[error("grant {0} was revoked")]
    Revoked(String),
    /// The holder's country or organisation is not what this tenant
    /// requires ([`HolderRule`]).
    #[error("{0}")]
    Holder(String),
    /// The grant is scoped and the call is for a resource outside its
    /// scopes (or names none).
    #[error("out of scope: the grant covers {scopes}, not {resource}")]
    OutOfScope { resource: String, scopes: String },
    #[error("no revocation list has been received yet, so nothing is admitted")]
    NoRevocationList,
    #[error(
        "the revocation list is {age_ms} ms old (limit {limit_ms} ms), so nothing is admitted until the feed is fresh"
    )]
    Stale { age_ms: i64, limit_ms: i64 },
}

/// Why a revocation list was not taken.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum FeedError {
    #[error("revocation list refused: {0}")]
    Invalid(Refusal),
    #[error("revocation list is for tenant {0:?}, not this one")]
    WrongTenant(String),
    #[error(
        "revocation list {got} is older than the one held ({held}): refused (replay or rollback)"
    )]
    Older { got: u64, held: u64 },
    #[error(
        "revocation list of restore epoch {got} is older than the one held (epoch {held}): refused (a list from before the broker's declared restore)"
    )]
    OlderEpoch { got: u64, held: u64 },
    #[error("revocation list issued at {0}, in the future of this clock: check the clocks")]
    Future(Timestamp),
    /// The list could not be remembered (see [`Verifier::remembering`]):
    /// it was not taken, so the verifier fails closed once the held one is
    /// stale.
    #[error("{0}")]
    NotRemembered(StateError),
}

/// The newest revocation list taken.
#[derive(Debug, Clone)]
struct Revocations {
    seq: u64,
    /// The broker's restore epoch the list was made in.
    epoch: u64,
    /// The list's own `iat` (orders lists of equal `seq`).
    signed_at: Timestamp,
    /// Freshness is measured from here: `iat`, or the moment it was taken
    /// if `iat` is in this clock's future (so a broker clock ahead of ours
    /// never makes a list last longer).
    issued_at: Timestamp,
    grants: HashMap<String, Timestamp>,
}

/// Checks grant tokens and grant certificates for one tenant, offline.
/// Cheap to share (`Arc`), safe to use from many tasks.
pub struct Verifier {
    tenant: String,
    clock: SharedClock,
    max_staleness_ms: i64,
    keys: RwLock<Arc<KeySet>>,
    revocations: RwLock<Option<Arc<Revocations>>>,
    /// Where the newest list and the revocations seen are remembered.
    state_file: Option<PathBuf>,
    /// What this tenant requires of holders' country and organisation.
    holders: HolderRule,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("tenant", &self.tenant)
            .field("max_staleness_ms", &self.max_staleness_ms)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier for `tenant`, trusting `keys`. It admits nobody until a
    /// revocation list has been applied.
    pub fn new(tenant: &str, keys: KeySet, clock: SharedClock) -> Verifier {
        Verifier {
            tenant: tenant.to_owned(),
            clock,
            max_staleness_ms: DEFAULT_MAX_STALENESS.as_millis() as i64,
            keys: RwLock::new(Arc::new(keys)),
            revocations: RwLock::new(None),
            state_file: None,
            holders: HolderRule::default(),
        }
    }

    /// Remembers the newest revocation list and every grant seen revoked
    /// in `path`, across restarts ([`crate::remembered`]): loaded now (the
    /// verifier still admits nobody until a fresh list arrives, and never
    /// takes one older than remembered), written with every list taken.
    /// Recommended for every tenant: without it, a broker restored from an
    /// older backup could re-admit a grant this tenant saw revoked.
    pub fn remembering(mut self, path: impl Into<PathBuf>) -> Result<Verifier, StateError> {
        let path = path.into();
        if let Some(r) = Remembered::load(&path)? {
            *write(&self.revocations) = Some(Arc::new(Revocations {
                seq: r.seq,
                epoch: r.epoch,
                signed_at: Timestamp(r.signed_at_ms),
                // Stale at once: remembered, not fresh.
                issued_at: Timestamp(i64::MIN / 2),
                grants: r
                    .revoked
                    .into_iter()
                    .map(|(id, exp)| (id, Timestamp(exp)))
                    .collect(),
            }));
        }
        self.state_file = Some(path);
        Ok(self)
    }

    /// Refuses credentials whose holder's country or organisation `rule`
    /// does not accept (the `country` and `organisation` claims of a token,
    /// the `/holder/...` URIs of a certificate).
    pub fn requiring(mut self, rule: HolderRule) -> Verifier {
        self.holders = rule;
        self
    }

    /// Sets the staleness limit of the revocation list.
    pub fn with_max_staleness(mut self, limit: Duration) -> Verifier {
        self.max_staleness_ms = i64::try_from(limit.as_millis()).unwrap_or(i64::MAX);
        self
    }

    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The clock decisions are made on.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    pub fn max_staleness(&self) -> Duration {
        Duration::from_millis(self.max_staleness_ms.unsigned_abs())
    }

    /// Replaces the trusted keys (after fetching them again).
    pub fn set_keys(&self, keys: KeySet) {
        *write(&self.keys) = Arc::new(keys);
    }

    pub fn keys(&self) -> Arc<KeySet> {
        read(&self.keys).clone()
    }

    /// Checks a grant token (`v4.public.…`).
    pub fn verify_token(&self, token: &str) -> Result<Admission, Refusal> {
        let now = self.clock.now();
        let keys = self.keys();
        let iat = |c: &GrantClaims| c.iat;
        // A scoped token is signed under its own assertion (so verifiers
        // that do not know scopes refuse it); which one is only known by
        // trying.
        let (claims, scoped) = match open(token, &keys, GRANT_ASSERTION, now, iat) {
            Ok((claims, _key)) => (claims, false),
            Err(Refusal::BadSignature) => {
                let (claims, _key): (GrantClaims, _) =
                    open(token, &keys, SCOPED_GRANT_ASSERTION, now, iat)?;
                (claims, true)
            }
            Err(other) => return Err(other),
        };
        let scopes = match (&claims.scopes, scoped) {
            (None, false) => Scopes::whole_tenant(),
            (Some(list), true) if !list.is_empty() => Scopes::parse(list)
                .ok()
                .filter(|s| s.strings() == *list)
                .ok_or_else(|| {
                    Refusal::Malformed(
                        "the token's scopes are not a daypass grant's (sorted, distinct, at most 16, each of the scope grammar)"
                            .into(),
                    )
                })?,
            _ => {
                return Err(Refusal::Malformed(
                    "the token's scopes do not match its signature (a scoped token is signed as daypass-scoped-grant-v1, with a non-empty scopes claim)"
                        .into(),
                ));
            }
        };
        if claims.iss != issuer(&keys) {
            return Err(Refusal::Malformed(format!(
                "issued by {:?}, not {:?}",
                claims.iss,
                issuer(&keys)
            )));
        }
        // The broker never signs more than a day; a token that says so was
        // not made by it (e.g. forged with a key rotated out).
        if claims.nbf != claims.iat
            || claims.exp.millis().saturating_sub(claims.iat.millis()) > MAX_GRANT_SECS * 1000
        {
            return Err(Refusal::Malformed(
                "the token's times are not a daypass grant's (nbf = iat, exp at most 24 h later)"
                    .into(),
            ));
        }
        self.admit(
            Admission {
                grant_id: claims.jti,
                holder: claims.sub,
                tenant: claims.aud,
                expires_at: claims.exp,
                credential: Credential::Token,
                country: claims.country,
                organisation: claims.organisation,
                scopes,
            },
            claims.nbf,
            now,
        )
    }

    /// Checks a grant certificate (DER), as presented in mutual TLS: issued
    /// by a published grant CA, within its validity, for this tenant, not
    /// revoked. (A TLS server configured with the grant CAs has checked the
    /// chain already; this checks it again, and everything TLS does not.)
    pub fn verify_certificate(&self, der: &[u8]) -> Result<Admission, Refusal> {
        let now = self.clock.now();
        let keys = self.keys();
        let (_, cert) = X509Certificate::from_der(der)
            .map_err(|_| Refusal::Malformed("not a DER certificate".into()))?;
        let not_before = Timestamp(cert.validity().not_before.timestamp().saturating_mul(1000));
        let not_after = Timestamp(cert.validity().not_after.timestamp().saturating_mul(1000));
        let issued_by = keys.grant_cas.iter().find(|ca| {
            X509Certificate::from_der(&ca.certificate_der).is_ok_and(|(_, ca_cert)| {
                ca_cert.subject() == cert.issuer()
                    && cert.verify_signature(Some(ca_cert.public_key())).is_ok()
            })
        });
        let Some(ca) = issued_by else {
            return Err(Refusal::UnknownKey(format!("issuer {}", cert.issuer())));
        };
        let within = ca.verify_until.is_none_or(|until| now < until)
            && ca.retired_at.is_none_or(|retired| not_before <= retired);
        if !within {
            return Err(Refusal::KeyRetired(ca.id.clone()));
        }
        let prefix = issuer(&keys);
        let mut grant = None;
        let mut holder = None;
        let mut country = None;
        let mut organisation = None;
        let mut scoped_grant = None;
        let mut scopes = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                if let GeneralName::URI(uri) = name {
                    let Some(path) = uri.strip_prefix(prefix.as_str()) else {
                        continue;
                    };
                    if let Some(rest) = path.strip_prefix("/grant/") {
                        grant = rest
                            .split_once('/')
                            .map(|(t, g)| (t.to_owned(), g.to_owned()));
                    } else if let Some(rest) = path.strip_prefix(CERT_SCOPED_GRANT_PATH) {
                        scoped_grant = rest
                            .split_once('/')
                            .map(|(t, g)| (t.to_owned(), g.to_owned()));
                    } else if let Some(scope) = path.strip_prefix(CERT_SCOPE_PATH) {
                        scopes.push(scope.to_owned());
                    } else if let Some(c) = path.strip_prefix(CERT_COUNTRY_PATH) {
                        country = Some(c.to_owned());
                    } else if let Some(o) = path.strip_prefix(CERT_ORGANISATION_PATH) {
                        organisation = Some(o.to_owned());
                    } else if path.starts_with("/staff/") {
                        holder = Some(uri.to_string());
                    }
                }
            }
        }
        // At most a day, plus the broker's backdating of the start.
        if not_after.millis().saturating_sub(not_before.millis())
            > (MAX_GRANT_SECS + CERT_BACKDATE_SECS) * 1000
        {
            return Err(Refusal::Malformed(
                "the certificate lasts longer than any daypass grant".into(),
            ));
        }
        // A grant URI and no scopes, or a scoped-grant URI and scopes:
        // never both kinds, never a scoped grant without its scopes.
        let (grant, scopes) = match (grant, scoped_grant, scopes.is_empty()) {
            (grant, None, true) => (grant, Scopes::whole_tenant()),
            (None, Some(grant), false) => {
                let parsed = Scopes::parse(&scopes)
                    .ok()
                    .filter(|s| s.strings().len() == scopes.len())
                    .ok_or_else(|| {
                        Refusal::Malformed(
                            "the certificate's scope URIs are not a daypass grant's (distinct, at most 16, each of the scope grammar)"
                                .into(),
                        )
                    })?;
                (Some(grant), parsed)
            }
            _ => {
                return Err(Refusal::Malformed(
                    "the certificate's grant and scope URIs do not agree (a scoped grant has a scoped-grant URI and at least one scope URI)"
                        .into(),
                ));
            }
        };
        let (Some((tenant, grant_id)), Some(holder)) = (grant, holder) else {
            return Err(Refusal::Malformed(
                "not a grant certificate (no grant or staff URI)".into(),
            ));
        };
        self.admit(
            Admission {
                grant_id,
                holder,
                tenant,
                expires_at: not_after,
                credential: Credential::Certificate,
                country,
                organisation,
                scopes,
            },
            not_before,
            now,
        )
    }

    fn admit(
        &self,
        a: Admission,
        not_before: Timestamp,
        now: Timestamp,
    ) -> Result<Admission, Refusal> {
        if a.tenant != self.tenant {
            return Err(Refusal::WrongTenant(a.tenant));
        }
        if now < not_before {
            return Err(Refusal::NotYetValid(not_before));
        }
        if now >= a.expires_at {
            return Err(Refusal::Expired(a.expires_at));
        }
        let revocations = read(&self.revocations).clone();
        let Some(revocations) = revocations else {
            return Err(Refusal::NoRevocationList);
        };
        let age_ms = now.millis().saturating_sub(revocations.issued_at.millis());
        if age_ms > self.max_staleness_ms {
            return Err(Refusal::Stale {
                age_ms,
                limit_ms: self.max_staleness_ms,
            });
        }
        if revocations.grants.contains_key(&a.grant_id) {
            return Err(Refusal::Revoked(a.grant_id));
        }
        if let Some(why) = self
            .holders
            .check(a.country.as_deref(), a.organisation.as_deref())
        {
            return Err(Refusal::Holder(why));
        }
        Ok(a)
    }

    /// Takes a revocation list (a `v4.public.` token from the feed): checks
    /// its signature, tenant and order, then replaces the one held. Returns
    /// its sequence number.
    pub fn apply_revocations(&self, token: &str) -> Result<u64, FeedError> {
        let now = self.clock.now();
        let keys = self.keys();
        let (list, _key): (RevocationClaims, _) = open(
            token,
            &keys,
            REVOCATIONS_ASSERTION,
            now,
            |c: &RevocationClaims| c.iat,
        )
        .map_err(FeedError::Invalid)?;
        if list.iss != issuer(&keys) {
            return Err(FeedError::Invalid(Refusal::Malformed(format!(
                "issued by {:?}",
                list.iss
            ))));
        }
        if list.aud != self.tenant {
            return Err(FeedError::WrongTenant(list.aud));
        }
        if list.iat.millis() > now.millis().saturating_add(self.max_staleness_ms) {
            return Err(FeedError::Future(list.iat));
        }
        let mut held = write(&self.revocations);
        if let Some(h) = held.as_ref() {
            // A declared restore of the broker takes its log back and
            // raises the epoch: a list of a later epoch is newer whatever
            // its seq, one of an earlier epoch is older.
            if list.epoch < h.epoch {
                return Err(FeedError::OlderEpoch {
                    got: list.epoch,
                    held: h.epoch,
                });
            }
            // Within an epoch the log only grows: a lower seq is an older
            // list (a replay); at equal seq the later signature wins. A
            // higher seq is newer whatever its iat says (a broker clock
            // stepped back).
            if list.epoch == h.epoch
                && (list.seq < h.seq || (list.seq == h.seq && list.iat < h.signed_at))
            {
                return Err(FeedError::Older {
                    got: list.seq,
                    held: h.seq,
                });
            }
        }
        let seq = list.seq;
        let mut grants: HashMap<String, Timestamp> =
            list.revoked.into_iter().map(|r| (r.jti, r.exp)).collect();
        // A grant once seen revoked stays revoked until it expires, whatever
        // a later list says (a broker restored from a backup forgets).
        if let Some(h) = held.as_ref() {
            for (id, exp) in &h.grants {
                if *exp > now {
                    grants.entry(id.clone()).or_insert(*exp);
                }
            }
        }
        let taken = Revocations {
            seq,
            epoch: list.epoch,
            signed_at: list.iat,
            issued_at: list.iat.min(now),
            grants,
        };
        if let Some(path) = &self.state_file {
            Remembered {
                seq,
                epoch: taken.epoch,
                signed_at_ms: taken.signed_at.millis(),
                revoked: taken
                    .grants
                    .iter()
                    .map(|(id, exp)| (id.clone(), exp.millis()))
                    .collect(),
            }
            .save(path)
            .map_err(FeedError::NotRemembered)?;
        }
        *held = Some(Arc::new(taken));
        Ok(seq)
    }

    /// The held list's sequence number and issue time, if any.
    pub fn revocation_list(&self) -> Option<(u64, Timestamp)> {
        read(&self.revocations)
            .as_ref()
            .map(|r| (r.seq, r.issued_at))
    }
}

/// `spiffe://<trust domain>`: the issuer of everything the broker signs.
fn issuer(keys: &KeySet) -> String {
    format!("spiffe://{}", keys.trust_domain)
}

/// Verifies a token against the key its footer names and parses its
/// payload; `iat` reads the claims' issue time (for retired keys).
fn open<'k, T: DeserializeOwned>(
    token: &str,
    keys: &'k KeySet,
    assertion: &[u8],
    now: Timestamp,
    iat: impl Fn(&T) -> Timestamp,
) -> Result<(T, &'k TokenKey), Refusal> {
    let footer = paseto::untrusted_footer(token).map_err(|e| Refusal::Malformed(e.to_string()))?;
    let footer: Footer =
        serde_json::from_slice(&footer).map_err(|e| Refusal::Malformed(format!("footer: {e}")))?;
    let key = keys
        .token_key(&footer.kid)
        .ok_or_else(|| Refusal::UnknownKey(footer.kid.clone()))?;
    let message = paseto::verify(&key.public_key, token, None, assertion).map_err(|e| match e {
        paseto::Error::BadSignature => Refusal::BadSignature,
        other => Refusal::Malformed(other.to_string()),
    })?;
    let claims: T = serde_json::from_slice(&message)
        .map_err(|e| Refusal::Malformed(format!("payload: {e}")))?;
    if !key.accepts(iat(&claims), now) {
        return Err(Refusal::KeyRetired(key.id.clone()));
    }
    Ok((claims, key))
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    // Writers only ever assign whole values: a poisoned lock holds a valid one.
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use ring::signature::{Ed25519KeyPair, KeyPair};

    use super::*;
    use crate::{
        claims::{RevocationClaims, key_id},
        clock::ManualClock,
        keys::TokenKey,
    };

    const T0: Timestamp = Timestamp(1_795_000_000_000);

    fn list(key: &Ed25519KeyPair, seq: u64, iat: Timestamp) -> String {
        list_in(key, 0, seq, iat)
    }

    fn list_in(key: &Ed25519KeyPair, epoch: u64, seq: u64, iat: Timestamp) -> String {
        RevocationClaims {
            iss: "spiffe://test.daypass".into(),
            aud: "acme".into(),
            seq,
            epoch,
            iat,
            revoked: vec![],
        }
        .sign(key)
    }

    /// After a declared restore the broker's log is shorter but its epoch
    /// higher: its lists are taken at once, and a list from before the
    /// restore (a replay) is refused, even with a higher seq.
    #[test]
    fn a_later_restore_epoch_wins_whatever_its_seq() {
        let key = Ed25519KeyPair::from_seed_unchecked(&[4u8; 32]).expect("key");
        let public = key.public_key().as_ref();
        let keys = KeySet {
            trust_domain: "test.daypass".into(),
            token_keys: vec![TokenKey::new(&key_id(public), public, None, None).expect("key")],
            grant_cas: vec![],
        };
        let v = Verifier::new("acme", keys, Arc::new(ManualClock::new(T0)));
        v.apply_revocations(&list(&key, 100, T0)).expect("taken");
        assert!(matches!(
            v.apply_revocations(&list(&key, 40, T0)),
            Err(FeedError::Older { .. })
        ));
        v.apply_revocations(&list_in(&key, 1, 40, T0))
            .expect("the restored broker's list");
        assert_eq!(v.revocation_list().map(|(s, _)| s), Some(40));
        assert!(matches!(
            v.apply_revocations(&list(&key, 101, T0)),
            Err(FeedError::OlderEpoch { got: 0, held: 1 })
        ));
        v.apply_revocations(&list_in(&key, 1, 41, T0))
            .expect("newer");
    }

    #[test]
    fn lists_are_ordered_by_seq_and_fresh_from_no_later_than_now() {
        let key = Ed25519KeyPair::from_seed_unchecked(&[3u8; 32]).expect("key");
        let public = key.public_key().as_ref();
        let keys = KeySet {
            trust_domain: "test.daypass".into(),
            token_keys: vec![TokenKey::new(&key_id(public), public, None, None).expect("key")],
            grant_cas: vec![],
        };
        let clock = ManualClock::new(T0);
        let v = Verifier::new("acme", keys, Arc::new(clock.clone()));
        // Signed 20 s in this clock's future (a broker clock ahead):
        // taken, but fresh only from now.
        v.apply_revocations(&list(&key, 5, T0.plus_secs(20)))
            .expect("taken");
        assert_eq!(v.revocation_list(), Some((5, T0)));
        // A newer list (higher seq) with an earlier iat (the broker's clock
        // stepped back) is taken; an equal seq with an earlier iat, or a
        // lower seq, is a replay.
        v.apply_revocations(&list(&key, 6, T0)).expect("newer");
        assert!(matches!(
            v.apply_revocations(&list(&key, 6, Timestamp(T0.millis() - 1))),
            Err(FeedError::Older { .. })
        ));
        assert!(matches!(
            v.apply_revocations(&list(&key, 4, T0.plus_secs(1))),
            Err(FeedError::Older { .. })
        ));
        // More than the limit in the future: refused (check the clocks).
        assert!(matches!(
            v.apply_revocations(&list(&key, 7, T0.plus_secs(31))),
            Err(FeedError::Future(_))
        ));
        clock.advance_secs(1);
        v.apply_revocations(&list(&key, 7, T0.plus_secs(25)))
            .expect("taken");
        assert_eq!(v.revocation_list(), Some((7, T0.plus_secs(1))));
    }

    fn list_revoking(key: &Ed25519KeyPair, seq: u64, iat: Timestamp, revoked: &[&str]) -> String {
        RevocationClaims {
            iss: "spiffe://test.daypass".into(),
            aud: "acme".into(),
            seq,
            epoch: 0,
            iat,
            revoked: revoked
                .iter()
                .map(|jti| crate::claims::Revoked {
                    jti: (*jti).into(),
                    exp: T0.plus_secs(3600),
                })
                .collect(),
        }
        .sign(key)
    }

    /// A verifier that remembers (finding 4 of the review): after its own
    /// restart, a broker restored from an older backup cannot re-admit a
    /// grant it saw revoked: older lists are refused, and a grant seen
    /// revoked stays revoked until it expires whatever later lists say.
    #[test]
    fn a_remembering_verifier_never_forgets_a_revocation() {
        let key = Ed25519KeyPair::from_seed_unchecked(&[3u8; 32]).expect("key");
        let public = key.public_key().as_ref();
        let keys = || KeySet {
            trust_domain: "test.daypass".into(),
            token_keys: vec![TokenKey::new(&key_id(public), public, None, None).expect("key")],
            grant_cas: vec![],
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let state = dir.path().join("revocations.json");
        let clock = ManualClock::new(T0);
        let v = Verifier::new("acme", keys(), Arc::new(clock.clone()))
            .remembering(&state)
            .expect("no state yet");
        v.apply_revocations(&list_revoking(&key, 10, T0, &["g-revoked"]))
            .expect("taken");
        drop(v);

        // The tenant restarts; the broker was restored to an older state.
        let v = Verifier::new("acme", keys(), Arc::new(clock.clone()))
            .remembering(&state)
            .expect("state loaded");
        let (seq, issued) = v.revocation_list().expect("remembered");
        assert_eq!(seq, 10);
        assert!(
            issued < T0,
            "a remembered list is stale until a fresh one comes"
        );
        assert!(matches!(
            v.apply_revocations(&list_revoking(&key, 7, T0.plus_secs(1), &[])),
            Err(FeedError::Older { got: 7, held: 10 })
        ));
        // Once the restored log has grown past it, its lists are taken, but
        // the grant seen revoked stays revoked until it expires.
        clock.advance_secs(2);
        v.apply_revocations(&list_revoking(&key, 11, T0.plus_secs(2), &[]))
            .expect("newer");
        assert!(
            read(&v.revocations)
                .as_ref()
                .expect("held")
                .grants
                .contains_key("g-revoked")
        );
        // Nor does a second restart forget it.
        let v = Verifier::new("acme", keys(), Arc::new(clock.clone()))
            .remembering(&state)
            .expect("state loaded");
        assert!(
            read(&v.revocations)
                .as_ref()
                .expect("held")
                .grants
                .contains_key("g-revoked")
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&state)
                .expect("state")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // A state file that is not one is refused, not ignored.
        std::fs::write(&state, b"{}garbage").expect("write");
        assert!(
            Verifier::new("acme", keys(), Arc::new(clock))
                .remembering(&state)
                .is_err()
        );
    }
}
