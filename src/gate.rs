//! What a tenant needs to decide offline (docs/integration.md): signed grant
//! tokens, grant certificates from a separate grant CA, the published
//! verification keys with their validity windows, and per-tenant signed
//! revocation lists with a change feed.
//!
//! The formats live in the tenant library ([`daypass_tenant::claims`]) so
//! the broker signs exactly what tenants verify. Revocations are kept in
//! memory (rebuilt from the grants at start-up): a grant of a tenant that
//! was revoked or released while active is listed until its own expiry.

use std::{
    collections::{BTreeMap, HashMap},
    path::Path,
    sync::Arc,
    time::Duration,
};

use daypass_tenant::{
    claims::{
        CERT_BACKDATE_SECS, CERT_COUNTRY_PATH, CERT_ORGANISATION_PATH, CERT_SCOPE_PATH,
        CERT_SCOPED_GRANT_PATH, GrantClaims, RevocationClaims, Revoked, key_id, reason_sha256,
    },
    keys::{GrantCa, KeySet, TokenKey},
};
use parking_lot::Mutex;
use ring::signature::{Ed25519KeyPair, KeyPair};
use thiserror::Error;
use tokio::sync::broadcast;

use crate::{
    clock::Timestamp,
    config::Config,
    domain::{Grant, GrantState, Location, MAX_GRANT_SECS},
    identity::{Principal, PrincipalKind},
    limits::{Slot, Slots},
    pki::{self, CertificateAuthority, PkiError},
};

#[derive(Debug, Error)]
pub enum GateError {
    #[error("{0} (create the gate keys with `daypass certs gate-keys --dir <certs dir>`)")]
    Keys(PkiError),
    #[error("{0}")]
    Invalid(String),
}

/// How long past its expiry a revoked grant stays listed: at least the
/// clock difference a tenant's verifier tolerates (it takes lists up to its
/// staleness limit, 30 s by default, from its future).
pub const LISTED_PAST_EXPIRY: Duration = Duration::from_secs(300);

/// A grant certificate as issued.
#[derive(Debug, Clone)]
pub struct IssuedCertificate {
    pub certificate_pem: String,
    pub serial: String,
    pub not_after: Timestamp,
}

/// Signing keys, published keys and the revocation index.
pub struct Gate {
    trust_domain: String,
    token_key: Ed25519KeyPair,
    grant_ca: CertificateAuthority,
    published: KeySet,
    heartbeat: Duration,
    /// tenant → grant id → its expiry, for grants ended early.
    revoked: Mutex<HashMap<String, BTreeMap<String, Timestamp>>>,
    /// The tenant whose list changed, for feed followers (each wakes only
    /// for its own tenant).
    changed: broadcast::Sender<Arc<str>>,
    /// Open revocation streams per tenant.
    watchers: Slots,
    /// Declared restores of the store so far: every list carries it, so
    /// tenants take lists of a restored (shorter) log.
    restore_epoch: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("trust_domain", &self.trust_domain)
            .field("published", &self.published)
            .finish_non_exhaustive()
    }
}

impl Gate {
    /// Loads the keys the configuration names.
    pub fn load(config: &Config) -> Result<Gate, GateError> {
        let token_key = pki::load_token_key(&config.token_key_path()).map_err(GateError::Keys)?;
        let (ca_cert, ca_key) = config.grant_ca_paths();
        let grant_ca = pki::load_ca_files(&ca_cert, &ca_key).map_err(GateError::Keys)?;
        let ca_der = pki::load_cert_der(&ca_cert).map_err(GateError::Keys)?;
        let max_grant_ms = MAX_GRANT_SECS * 1000;
        let mut token_keys = vec![TokenKey {
            id: key_id(token_key.public_key().as_ref()),
            public_key: public_key(&token_key),
            retired_at: None,
            verify_until: None,
        }];
        for r in &config.gate.retired_token_keys {
            let public = pki::load_token_public(&r.public).map_err(GateError::Keys)?;
            let retired = retired_at(&r.retired_at, &r.public)?;
            token_keys.push(TokenKey {
                id: key_id(&public),
                public_key: public,
                retired_at: Some(retired),
                verify_until: Some(Timestamp(retired.millis().saturating_add(max_grant_ms))),
            });
        }
        let mut grant_cas = vec![GrantCa {
            id: key_id(&ca_der),
            certificate_der: ca_der,
            retired_at: None,
            verify_until: None,
        }];
        for r in &config.gate.retired_grant_cas {
            let der = pki::load_cert_der(&r.public).map_err(GateError::Keys)?;
            let retired = retired_at(&r.retired_at, &r.public)?;
            grant_cas.push(GrantCa {
                id: key_id(&der),
                certificate_der: der,
                retired_at: Some(retired),
                verify_until: Some(Timestamp(retired.millis().saturating_add(max_grant_ms))),
            });
        }
        Ok(Gate {
            trust_domain: config.trust_domain.clone(),
            token_key,
            grant_ca,
            published: KeySet {
                trust_domain: config.trust_domain.clone(),
                token_keys,
                grant_cas,
            },
            heartbeat: Duration::from_secs(config.gate.heartbeat_secs),
            revoked: Mutex::new(HashMap::new()),
            changed: broadcast::Sender::new(256),
            watchers: Slots::new(MAX_WATCHERS_PER_TENANT),
            restore_epoch: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// The published keys, current and rotated out (those whose window has
    /// closed at `now` are left out).
    pub fn keys(&self, now: Timestamp) -> KeySet {
        let mut keys = self.published.clone();
        keys.token_keys
            .retain(|k| k.verify_until.is_none_or(|u| now < u));
        keys.grant_cas
            .retain(|k| k.verify_until.is_none_or(|u| now < u));
        keys
    }

    pub fn grant_ca_pem(&self) -> &str {
        self.grant_ca.cert_pem()
    }

    pub fn heartbeat(&self) -> Duration {
        self.heartbeat
    }

    fn issuer(&self) -> String {
        format!("spiffe://{}", self.trust_domain)
    }

    /// The grant's token, if it is active, with its holder's location
    /// (`country` and `organisation` claims) and, for a scoped grant, its
    /// `scopes` (then signed as `daypass-scoped-grant-v1`).
    pub fn token(&self, g: &Grant, holder_at: &Location) -> Option<String> {
        let (GrantState::Active, Some(iat), Some(exp)) = (g.state, g.activated_at, g.expires_at)
        else {
            return None;
        };
        let holder = Principal::new(PrincipalKind::Staff, g.holder.clone());
        Some(
            GrantClaims {
                iss: self.issuer(),
                sub: holder.uri(&self.trust_domain),
                aud: g.tenant.to_string(),
                jti: g.id.to_string(),
                iat,
                nbf: iat,
                exp,
                reason_sha256: reason_sha256(&g.reason),
                country: holder_at.country.as_ref().map(|c| c.to_string()),
                organisation: Some(holder_at.organisation.to_string()),
                scopes: (!g.scopes.is_whole_tenant()).then(|| g.scopes.strings()),
            }
            .sign(&self.token_key),
        )
    }

    /// A grant certificate for the key in `csr_pem`, valid until the grant
    /// expires, and from [`CERT_BACKDATE_SECS`] before `now` (so a tenant or an
    /// engineer whose clock is a little behind the broker's can use it at
    /// once; it did not exist earlier anyway). The grant must be active
    /// (checked by the caller).
    pub fn issue_certificate(
        &self,
        g: &Grant,
        holder_at: &Location,
        csr_pem: &str,
        now: Timestamp,
    ) -> Result<IssuedCertificate, GateError> {
        let Some(exp) = g.expires_at else {
            return Err(GateError::Invalid(format!("grant {} is not active", g.id)));
        };
        let holder = Principal::new(PrincipalKind::Staff, g.holder.clone());
        // A scoped grant's URI is not `/grant/`: a verifier that does not
        // know scopes finds no grant and refuses it (docs/integration.md §5).
        let grant_path = if g.scopes.is_whole_tenant() {
            "/grant/"
        } else {
            CERT_SCOPED_GRANT_PATH
        };
        let mut uris = vec![
            format!("{}{grant_path}{}/{}", self.issuer(), g.tenant, g.id),
            holder.uri(&self.trust_domain),
            format!(
                "{}{CERT_ORGANISATION_PATH}{}",
                self.issuer(),
                holder_at.organisation
            ),
        ];
        if let Some(c) = &holder_at.country {
            uris.push(format!("{}{CERT_COUNTRY_PATH}{c}", self.issuer()));
        }
        for scope in g.scopes.iter() {
            uris.push(format!("{}{CERT_SCOPE_PATH}{scope}", self.issuer()));
        }
        let to_time = |t: Timestamp| {
            time::OffsetDateTime::from_unix_timestamp(t.millis().div_euclid(1000))
                .map_err(|e| GateError::Invalid(e.to_string()))
        };
        let (pem, serial) = self
            .grant_ca
            .issue_for_csr(
                csr_pem,
                &format!("{} grant {}", g.holder, g.id),
                &uris,
                to_time(now.plus_secs(-CERT_BACKDATE_SECS))?,
                to_time(exp)?,
            )
            .map_err(|e| match e {
                PkiError::Invalid(m) => GateError::Invalid(m),
                other => GateError::Invalid(other.to_string()),
            })?;
        Ok(IssuedCertificate {
            certificate_pem: pem,
            serial,
            // X.509 times have whole seconds: the certificate ends at or
            // before the grant.
            not_after: Timestamp(exp.millis().div_euclid(1000) * 1000),
        })
    }

    /// Notes a grant that may have ended early (revoked, released,
    /// offboarded): listed for its tenant until [`LISTED_PAST_EXPIRY`] after
    /// its expiry.
    pub fn note_ended(&self, g: &Grant, now: Timestamp) {
        if !matches!(g.state, GrantState::Revoked | GrantState::Released)
            || g.activated_at.is_none()
        {
            return;
        }
        let margin = LISTED_PAST_EXPIRY.as_millis() as i64;
        let Some(exp) = g
            .expires_at
            .filter(|exp| now.millis() < exp.millis().saturating_add(margin))
        else {
            return;
        };
        self.revoked
            .lock()
            .entry(g.tenant.to_string())
            .or_default()
            .insert(g.id.to_string(), exp);
        // No follower listening is fine.
        let _ = self.changed.send(Arc::from(g.tenant.as_str()));
    }

    /// Fills the revocation index at start-up.
    pub fn load_ended<'a>(&self, grants: impl IntoIterator<Item = &'a Grant>, now: Timestamp) {
        for g in grants {
            self.note_ended(g, now);
        }
    }

    /// Sets the restore epoch the lists carry (at start-up, from the log).
    pub fn set_restore_epoch(&self, epoch: u64) {
        self.restore_epoch
            .store(epoch, std::sync::atomic::Ordering::Relaxed);
    }

    /// Tenant `tenant`'s signed revocation list. `at` gives the log's size
    /// and the time, read under the index's lock so that a later list never
    /// holds an older snapshot. Returns the token and its claims.
    pub fn revocations(
        &self,
        tenant: &str,
        at: impl FnOnce() -> (u64, Timestamp),
    ) -> (String, RevocationClaims) {
        let (seq, now, revoked) = {
            let mut all = self.revoked.lock();
            let (seq, now) = at();
            let revoked = match all.get_mut(tenant) {
                Some(list) => {
                    // Kept past the grant's expiry by a margin: a tenant
                    // whose clock is behind still sees it revoked until its
                    // own clock refuses the grant as expired.
                    let margin = LISTED_PAST_EXPIRY.as_millis() as i64;
                    list.retain(|_, exp| now.millis() < exp.millis().saturating_add(margin));
                    list.iter()
                        .map(|(jti, &exp)| Revoked {
                            jti: jti.clone(),
                            exp,
                        })
                        .collect()
                }
                None => Vec::new(),
            };
            (seq, now, revoked)
        };
        let claims = RevocationClaims {
            iss: self.issuer(),
            aud: tenant.to_owned(),
            seq,
            epoch: self
                .restore_epoch
                .load(std::sync::atomic::Ordering::Relaxed),
            iat: now,
            revoked,
        };
        (claims.sign(&self.token_key), claims)
    }

    /// Changes to the revocation index: the tenant whose list changed.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<str>> {
        self.changed.subscribe()
    }

    /// A slot for one more revocation stream of `tenant`, or None when it
    /// has [`MAX_WATCHERS_PER_TENANT`] open (one per gateway is enough).
    pub fn watch_slot(&self, tenant: &str) -> Option<Slot> {
        self.watchers.take(tenant)
    }
}

/// Revocation streams a tenant may hold open at once.
pub const MAX_WATCHERS_PER_TENANT: usize = 32;

fn public_key(key: &Ed25519KeyPair) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(key.public_key().as_ref());
    out
}

fn retired_at(s: &str, path: &Path) -> Result<Timestamp, GateError> {
    Timestamp::parse_rfc3339(s).ok_or_else(|| {
        GateError::Invalid(format!(
            "gate: retired_at {s:?} of {} is not an RFC 3339 time",
            path.display()
        ))
    })
}
