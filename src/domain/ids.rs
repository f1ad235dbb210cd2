//! Identifiers, parsed once: [`Name`] (a person or tenant), [`Principal`]
//! (`kind/name`), [`GrantId`], [`ReportId`], and [`Actor`] (who an entry
//! says acted). Below the RPC layer nothing takes these as raw strings.
//!
//! Not here: reading a principal out of a certificate (see
//! [`crate::identity`]).

use std::fmt;

use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use super::text::truncate;
use crate::identity::IdentityError;

/// A validated name of a person or tenant: 1-64 characters of `[a-z0-9._-]`,
/// starting with a letter or digit.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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
    /// An office warning screen ([`crate::domain::screen`]): it
    /// authenticates with a session cookie, never with a certificate, so
    /// [`PrincipalKind::parse`] (certificates' URIs) does not know it.
    Screen,
}

impl PrincipalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::Staff => "staff",
            PrincipalKind::Tenant => "tenant",
            PrincipalKind::Auditor => "auditor",
            PrincipalKind::Screen => "screen",
        }
    }

    /// A kind a certificate may name: not `screen`.
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
}

/// `kind/name`, the form used as the actor of log entries.
impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind.as_str(), self.name)
    }
}

/// Who an entry says acted: the server itself, a principal, or a caller
/// whose certificate named none. Written into entries as `system`,
/// `kind/name` and `unauthenticated`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Actor {
    System,
    Unauthenticated,
    Principal(Principal),
}

impl Actor {
    /// Is `logged` (an entry's actor field) this actor?
    pub fn wrote(&self, logged: &str) -> bool {
        match self {
            Actor::System => logged == "system",
            Actor::Unauthenticated => logged == "unauthenticated",
            Actor::Principal(p) => logged
                .split_once('/')
                .is_some_and(|(k, n)| k == p.kind.as_str() && n == p.name.as_str()),
        }
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::System => f.write_str("system"),
            Actor::Unauthenticated => f.write_str("unauthenticated"),
            Actor::Principal(p) => p.fmt(f),
        }
    }
}

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

/// Longest access report id.
pub const MAX_REPORT_ID_CHARS: usize = 64;

/// A tenant's id for one access report: 1 to 64 of `[A-Za-z0-9._:-]`. The
/// same id is logged once; a retry with it gets the first answer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ReportId(String);

impl ReportId {
    /// `None` for the empty string (no id); an error for anything else
    /// that is not an id.
    pub fn parse(id: &str) -> Result<Option<ReportId>, String> {
        if id.is_empty() {
            return Ok(None);
        }
        if id.len() > MAX_REPORT_ID_CHARS
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
        {
            return Err(format!(
                "report_id must be 1 to {MAX_REPORT_ID_CHARS} characters of A-Z a-z 0-9 . _ : -"
            ));
        }
        Ok(Some(ReportId(id.to_owned())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ReportId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
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

    #[test]
    fn grant_ids_round_trip_and_reject_anything_else() {
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

    #[test]
    fn report_ids() {
        assert_eq!(ReportId::parse("").unwrap(), None);
        assert!(ReportId::parse("r-1.a_b:C").unwrap().is_some());
        for bad in ["a b", "é", "a/b", &"x".repeat(65)] {
            assert!(ReportId::parse(bad).is_err(), "{bad:?}");
        }
        assert!(ReportId::parse(&"x".repeat(64)).unwrap().is_some());
    }

    #[test]
    fn actors_print_as_logged_and_recognise_their_entries() {
        let eve = Actor::Principal(Principal::new(
            PrincipalKind::Auditor,
            Name::parse("eve").unwrap(),
        ));
        assert_eq!(eve.to_string(), "auditor/eve");
        assert!(eve.wrote("auditor/eve"));
        assert!(!eve.wrote("staff/eve"));
        assert!(!eve.wrote("auditor/eve2"));
        assert!(Actor::System.wrote("system"));
        assert_eq!(Actor::Unauthenticated.to_string(), "unauthenticated");
    }
}
