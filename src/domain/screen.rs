//! Office warning screens: a wall display paired once with a short-lived
//! code, then holding a session cookie (docs/monitoring.md, "The warning
//! screen"). A screen is a principal of its own (`screen/<name>`) that can
//! only read the screen's page: it has no certificate and so no gRPC
//! identity at all.
//!
//! The secrets (the pairing code, the session secret) are never stored or
//! logged: the record keeps their SHA-256, the log only that they were
//! issued and used. Pairing a screen again replaces its session (the old
//! browser is signed out); revoking it ends its session.

use ring::{
    digest::{SHA256, digest},
    rand::{SecureRandom as _, SystemRandom},
};
use serde::{Deserialize, Serialize};

use super::{
    event::{Draft, EventKind, detail},
    ids::{Actor, Name, Principal, PrincipalKind},
};
use crate::clock::Timestamp;

/// How long a pairing code may wait to be used, by default (seconds).
pub const PAIRING_TTL_SECS: i64 = 600;
/// The longest a pairing code may be asked to last (seconds).
pub const MAX_PAIRING_TTL_SECS: i64 = 86_400;

/// One screen: who paired it, the pending pairing code (its hash) and the
/// open session (its hash).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScreenRecord {
    pub name: Name,
    /// The actor that issued the latest pairing code.
    pub paired_by: String,
    pub paired_at: Timestamp,
    /// SHA-256 (hex) of the unused pairing code; empty once used.
    pub code_sha256: String,
    pub code_expires_at: Timestamp,
    /// SHA-256 (hex) of the session secret; empty: no session.
    pub session_sha256: String,
    pub session_opened_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    #[serde(default)]
    pub revoked_by: String,
}

/// Why a pairing code or a session cookie is not accepted. The messages
/// are shown on the screen and say what to do; they never say whether a
/// screen by that name exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScreenRefusal {
    #[error(
        "this pairing code is not valid (used, expired or mistyped); ask an admin for a new one: daypass screen pair NAME"
    )]
    BadCode,
    #[error("this screen is not paired (or was revoked); pair it again: daypass screen pair NAME")]
    NoSession,
}

/// A fresh secret: `bytes` random bytes, lowercase hex.
fn secret(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    SystemRandom::new()
        .fill(&mut b)
        .unwrap_or_else(|_| panic!("the operating system's random number generator failed"));
    hex::encode(b)
}

fn sha256_hex(s: &str) -> String {
    hex::encode(digest(&SHA256, s.as_bytes()))
}

/// Compares a presented secret's hash with a stored one without an early
/// exit (what is compared is a hash, so timing would tell little anyway).
fn matches(presented: &str, stored_hex: &str) -> bool {
    let h = sha256_hex(presented);
    !stored_hex.is_empty()
        && h.len() == stored_hex.len()
        && h.bytes()
            .zip(stored_hex.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// A session cookie's value: `<name>.<secret>`, as a browser sent it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionCookie {
    pub name: Name,
    secret: String,
}

impl SessionCookie {
    /// The cookie's name in `Set-Cookie` and `Cookie`.
    pub const NAME: &'static str = "daypass_screen";

    /// Parses a cookie value; `None` if it is not of our shape.
    pub fn parse(value: &str) -> Option<SessionCookie> {
        let (name, secret) = value.split_once('.')?;
        let name = Name::parse(name).ok()?;
        (secret.len() == 64
            && secret
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .then(|| SessionCookie {
            name,
            secret: secret.to_owned(),
        })
    }

    /// The value to set.
    pub fn value(&self) -> String {
        format!("{}.{}", self.name, self.secret)
    }
}

/// A pairing code as typed or passed in a URL: 32 hex digits, dashes and
/// case ignored.
pub fn normalize_code(code: &str) -> Option<String> {
    let c: String = code
        .chars()
        .filter(|c| *c != '-' && !c.is_whitespace())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (c.len() == 32 && c.bytes().all(|b| b.is_ascii_hexdigit())).then_some(c)
}

/// A code for people to read: groups of four.
fn grouped(code: &str) -> String {
    code.as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("-")
}

impl ScreenRecord {
    /// The principal a session of this screen acts as.
    pub fn actor(name: &Name) -> Actor {
        Actor::Principal(Principal::new(PrincipalKind::Screen, name.clone()))
    }

    /// Issues a pairing code for screen `name` (a new screen, or one paired
    /// again: its session ends when the code is used, and a revoked screen
    /// is usable again once paired). Returns the record, the code (shown
    /// once to the admin, never stored) and the entry.
    pub fn pair(
        existing: Option<ScreenRecord>,
        name: Name,
        by: &Actor,
        now: Timestamp,
        ttl_secs: i64,
    ) -> (ScreenRecord, String, Draft) {
        let code = secret(16);
        let expires = now.plus_secs(ttl_secs);
        let mut r = existing.unwrap_or_else(|| ScreenRecord {
            name: name.clone(),
            paired_by: String::new(),
            paired_at: now,
            code_sha256: String::new(),
            code_expires_at: now,
            session_sha256: String::new(),
            session_opened_at: None,
            revoked_at: None,
            revoked_by: String::new(),
        });
        r.paired_by = by.to_string();
        r.paired_at = now;
        r.code_sha256 = sha256_hex(&code);
        r.code_expires_at = expires;
        // A revoked screen's session was cleared: pairing it again only
        // makes its new code usable.
        r.revoked_at = None;
        r.revoked_by.clear();
        let d = Draft::new(by.clone(), "", EventKind::ScreenPairingIssued)
            .with(detail::SCREEN, &name)
            .with(detail::EXPIRES_AT, expires);
        (r, grouped(&code), d)
    }

    /// Is `code` (normalized) this screen's unused, unexpired code?
    pub fn awaits(&self, code: &str, now: Timestamp) -> bool {
        self.revoked_at.is_none() && now < self.code_expires_at && matches(code, &self.code_sha256)
    }

    /// Uses a pairing code: opens the screen's session (ending any earlier
    /// one). Returns the cookie (shown once to the browser) and the entry.
    pub fn open_session(
        &mut self,
        code: &str,
        now: Timestamp,
        peer: &str,
    ) -> Result<(SessionCookie, Draft), ScreenRefusal> {
        let code = normalize_code(code).ok_or(ScreenRefusal::BadCode)?;
        if !self.awaits(&code, now) {
            return Err(ScreenRefusal::BadCode);
        }
        let cookie = SessionCookie {
            name: self.name.clone(),
            secret: secret(32),
        };
        let replaced = !self.session_sha256.is_empty() && self.revoked_at.is_none();
        self.code_sha256.clear();
        self.session_sha256 = sha256_hex(&cookie.secret);
        self.session_opened_at = Some(now);
        self.revoked_at = None;
        self.revoked_by.clear();
        let d = Draft::new(
            ScreenRecord::actor(&self.name),
            "",
            EventKind::ScreenSessionOpened,
        )
        .with(detail::SCREEN, &self.name)
        .with(detail::PEER, peer)
        .with(detail::REPLACED, replaced);
        Ok((cookie, d))
    }

    /// Is `cookie` this screen's open session?
    pub fn admits(&self, cookie: &SessionCookie) -> Result<(), ScreenRefusal> {
        if self.revoked_at.is_none()
            && cookie.name == self.name
            && matches(&cookie.secret, &self.session_sha256)
        {
            Ok(())
        } else {
            Err(ScreenRefusal::NoSession)
        }
    }

    /// Ends the session and any unused code. `None` if already revoked.
    pub fn revoke(&mut self, by: &Actor, now: Timestamp) -> Option<Draft> {
        if self.revoked_at.is_some() {
            return None;
        }
        self.revoked_at = Some(now);
        self.revoked_by = by.to_string();
        self.code_sha256.clear();
        self.session_sha256.clear();
        Some(Draft::new(by.clone(), "", EventKind::ScreenRevoked).with(detail::SCREEN, &self.name))
    }

    /// `paired` (a session is open), `waiting` (a code is out), `revoked`.
    pub fn status(&self, now: Timestamp) -> &'static str {
        if self.revoked_at.is_some() {
            "revoked"
        } else if !self.session_sha256.is_empty() {
            "paired"
        } else if !self.code_sha256.is_empty() && now < self.code_expires_at {
            "waiting for its code"
        } else {
            "not paired (code expired)"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admin() -> Actor {
        Actor::Principal(Principal::new(
            PrincipalKind::Staff,
            Name::parse("ada").unwrap(),
        ))
    }

    #[test]
    fn a_code_opens_one_session_once_and_only_before_it_expires() {
        let name = Name::parse("office-wall").unwrap();
        let t0 = Timestamp(1_800_000_000_000);
        let (mut r, code, d) = ScreenRecord::pair(None, name.clone(), &admin(), t0, 600);
        assert_eq!(d.kind, EventKind::ScreenPairingIssued);
        assert!(
            !d.details
                .values()
                .any(|v| v.contains(&code.replace('-', "")))
        );
        assert_eq!(code.len(), 32 + 7, "{code}");
        assert_eq!(r.status(t0), "waiting for its code");
        // Wrong and malformed codes, and nothing stored in the clear.
        assert_eq!(
            r.open_session("0000-0000-0000-0000-0000-0000-0000-0000", t0, "p")
                .unwrap_err(),
            ScreenRefusal::BadCode
        );
        assert!(r.open_session("xyz", t0, "p").is_err());
        assert!(
            !serde_json::to_string(&r)
                .unwrap()
                .contains(&code.replace('-', ""))
        );
        // Case and dashes do not matter; the code works once.
        let (cookie, d) = r
            .open_session(&code.to_uppercase().replace('-', ""), t0.plus_secs(10), "p")
            .unwrap();
        assert_eq!(d.kind, EventKind::ScreenSessionOpened);
        assert_eq!(d.actor.to_string(), "screen/office-wall");
        assert!(r.admits(&cookie).is_ok());
        assert!(!serde_json::to_string(&r).unwrap().contains(&cookie.value()));
        assert_eq!(
            r.open_session(&code, t0.plus_secs(20), "p").unwrap_err(),
            ScreenRefusal::BadCode
        );
        // The cookie round-trips through its text; a forged one does not.
        let back = SessionCookie::parse(&cookie.value()).unwrap();
        assert!(r.admits(&back).is_ok());
        let forged = SessionCookie::parse(&format!("office-wall.{}", "a".repeat(64))).unwrap();
        assert_eq!(r.admits(&forged), Err(ScreenRefusal::NoSession));
        // Expired code.
        let (mut r2, code2, _) = ScreenRecord::pair(None, name.clone(), &admin(), t0, 600);
        assert!(r2.open_session(&code2, t0.plus_secs(600), "p").is_err());
        // Pairing again replaces the session; revoking ends it.
        let (mut r, code3, _) = ScreenRecord::pair(Some(r), name, &admin(), t0.plus_secs(30), 600);
        assert!(
            r.admits(&cookie).is_ok(),
            "the old session lasts until the new code is used"
        );
        let (cookie3, d) = r.open_session(&code3, t0.plus_secs(40), "p").unwrap();
        assert_eq!(
            d.details.get(detail::REPLACED).map(String::as_str),
            Some("true")
        );
        assert!(r.admits(&cookie).is_err());
        assert!(r.revoke(&admin(), t0.plus_secs(50)).is_some());
        assert!(r.admits(&cookie3).is_err());
        assert!(r.revoke(&admin(), t0.plus_secs(60)).is_none());
        assert_eq!(r.status(t0), "revoked");
        // A revoked screen can be paired again.
        let (mut r, code4, _) =
            ScreenRecord::pair(Some(r), r_name(), &admin(), t0.plus_secs(70), 600);
        assert!(r.admits(&cookie3).is_err());
        assert!(r.open_session(&code4, t0.plus_secs(80), "p").is_ok());
    }

    fn r_name() -> Name {
        Name::parse("office-wall").unwrap()
    }
}
