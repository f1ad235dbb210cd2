//! Grant records and their lifecycle:
//!
//! ```text
//! requested ─┬─ auto ──────────────▶ Active ─┬─ expires_at ─▶ Expired
//!            └─ approval ▶ Pending ─┤        ├─ revoke ─────▶ Revoked
//!                                   │        └─ release ────▶ Released
//!                                   ├─ deny ─▶ Denied
//!                                   ├─ release ▶ Released
//!                                   └─ pending TTL ▶ RequestExpired
//! ```
//!
//! The 24 hours start at activation. Validity is always decided against the
//! injected clock ([`Grant::is_valid_at`]), never by the stored state alone,
//! so a grant is invalid at its expiry even if the sweeper has not run yet.

use std::fmt;

use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use crate::{clock::Timestamp, identity::Name};

/// The longest a grant can ever last: 24 hours.
pub const MAX_GRANT_SECS: i64 = daypass_tenant::claims::MAX_GRANT_SECS;

/// `g-` followed by 24 lowercase hex digits (96 random bits).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct GrantId(String);

impl GrantId {
    pub fn random() -> GrantId {
        let mut bytes = [0u8; 12];
        // The OS RNG failing is not something we can serve through.
        SystemRandom::new()
            .fill(&mut bytes)
            .unwrap_or_else(|_| panic!("the operating system's random number generator failed"));
        GrantId(format!("g-{}", hex::encode(bytes)))
    }

    /// Accepts only the exact shape we generate.
    pub fn parse(s: &str) -> Option<GrantId> {
        let hex = s.strip_prefix("g-")?;
        (hex.len() == 24 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| GrantId(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for GrantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GrantState {
    Pending,
    Active,
    Denied,
    RequestExpired,
    Expired,
    Revoked,
    Released,
}

impl GrantState {
    /// Pending or active: the grant still has a deadline ahead of it.
    pub fn is_live(self) -> bool {
        matches!(self, GrantState::Pending | GrantState::Active)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            GrantState::Pending => "pending",
            GrantState::Active => "active",
            GrantState::Denied => "denied",
            GrantState::RequestExpired => "request-expired",
            GrantState::Expired => "expired",
            GrantState::Revoked => "revoked",
            GrantState::Released => "released",
        }
    }
}

/// Why a grant does not admit its holder right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DenyReason {
    Unknown,
    Pending,
    Expired,
    Revoked,
    Offboarded,
    Denied,
    Released,
}

impl DenyReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DenyReason::Unknown => "unknown",
            DenyReason::Pending => "pending",
            DenyReason::Expired => "expired",
            DenyReason::Revoked => "revoked",
            DenyReason::Offboarded => "offboarded",
            DenyReason::Denied => "denied",
            DenyReason::Released => "released",
        }
    }
}

/// A grant as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub id: GrantId,
    pub tenant: Name,
    pub holder: Name,
    pub reason: String,
    pub ticket: String,
    pub state: GrantState,
    pub duration_secs: i64,
    pub requested_at: Timestamp,
    /// Deadline for approval while pending.
    pub pending_until: Option<Timestamp>,
    pub activated_at: Option<Timestamp>,
    pub expires_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    /// Actor who approved, denied, revoked or released it.
    pub decided_by: String,
    pub decision_note: String,
    /// Set when the revocation was caused by offboarding the holder.
    #[serde(default)]
    pub offboarded: bool,
}

impl Grant {
    /// The next moment at which this grant changes state by itself, if any.
    pub fn deadline(&self) -> Option<Timestamp> {
        match self.state {
            GrantState::Pending => self.pending_until,
            GrantState::Active => self.expires_at,
            _ => None,
        }
    }

    /// Was the grant active at `t` (for an access reported afterwards)?
    /// From its activation until it expired or ended, whichever came first.
    pub fn was_active_at(&self, t: Timestamp) -> bool {
        let Some(from) = self.activated_at else {
            return false;
        };
        let until = match (self.expires_at, self.ended_at) {
            (Some(exp), Some(end)) => exp.min(end),
            (Some(exp), None) => exp,
            (None, _) => return false,
        };
        from <= t && t < until
    }

    /// Does the grant admit its holder at `now`? `Ok` only for an active
    /// grant strictly before its expiry.
    pub fn is_valid_at(&self, now: Timestamp) -> Result<(), DenyReason> {
        match self.state {
            GrantState::Active => match self.expires_at {
                Some(exp) if now < exp => Ok(()),
                _ => Err(DenyReason::Expired),
            },
            GrantState::Pending => match self.pending_until {
                Some(until) if now < until => Err(DenyReason::Pending),
                _ => Err(DenyReason::Expired),
            },
            GrantState::Expired | GrantState::RequestExpired => Err(DenyReason::Expired),
            GrantState::Revoked if self.offboarded => Err(DenyReason::Offboarded),
            GrantState::Revoked => Err(DenyReason::Revoked),
            GrantState::Denied => Err(DenyReason::Denied),
            GrantState::Released => Err(DenyReason::Released),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn active(expires: i64) -> Grant {
        Grant {
            id: GrantId::random(),
            tenant: Name::parse("acme").unwrap(),
            holder: Name::parse("alice").unwrap(),
            reason: "r".into(),
            ticket: String::new(),
            state: GrantState::Active,
            duration_secs: 60,
            requested_at: Timestamp(0),
            pending_until: None,
            activated_at: Some(Timestamp(0)),
            expires_at: Some(Timestamp(expires)),
            ended_at: None,
            decided_by: String::new(),
            decision_note: String::new(),
            offboarded: false,
        }
    }

    /// Validity does not depend on the sweeper having run: the stored state
    /// still says active, yet the grant is refused from its expiry on.
    #[test]
    fn never_valid_at_or_after_expiry() {
        let g = active(60_000);
        assert_eq!(g.is_valid_at(Timestamp(59_999)), Ok(()));
        assert_eq!(g.is_valid_at(Timestamp(60_000)), Err(DenyReason::Expired));
        assert_eq!(g.is_valid_at(Timestamp(i64::MAX)), Err(DenyReason::Expired));
        let mut pending = active(0);
        pending.state = GrantState::Pending;
        pending.expires_at = None;
        pending.pending_until = Some(Timestamp(1_000));
        assert_eq!(
            pending.is_valid_at(Timestamp(999)),
            Err(DenyReason::Pending)
        );
        assert_eq!(
            pending.is_valid_at(Timestamp(1_000)),
            Err(DenyReason::Expired)
        );
    }

    #[test]
    fn ids_round_trip_and_reject_anything_else() {
        let id = GrantId::random();
        assert_eq!(GrantId::parse(id.as_str()), Some(id.clone()));
        for bad in [
            "",
            "g-",
            "g-XYZ",
            "x-0123456789abcdef01234567",
            "g-0123456789abcdef0123456",
        ] {
            assert_eq!(GrantId::parse(bad), None, "{bad}");
        }
    }
}
