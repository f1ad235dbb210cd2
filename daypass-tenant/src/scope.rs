//! Scoped grants: the grammar of scopes and resources and the one matcher
//! (docs/integration.md §2.1). A grant may name scopes within its tenant
//! (`db:read`, `ssh:web-*`); a grant without scopes covers the whole
//! tenant. The tenant asks about a *resource* (`ssh:web-1`); the resource is
//! inside the grant if it matches at least one of its scopes.
//!
//! The broker re-uses this module to parse requests, to answer
//! `ValidateGrant` and to replay the log, so the broker and every tenant
//! running this library decide alike. Not here: reading scopes from tokens
//! and certificates ([`crate::verifier`]).
//!
//! Grammar (ASCII, case-sensitive, no normalisation besides what is said):
//!
//! ```text
//! resource = segment *7( ":" segment )          ; 1..=8 segments, <= 100 bytes
//! segment  = 1*32( %x61-7A / DIGIT / "." / "_" / "-" )
//! scope    = pattern *7( ":" pattern )          ; 1..=8 segments, <= 100 bytes
//! pattern  = segment / 0*31segchar "*"          ; a `*` only at a segment's end
//! ```
//!
//! A segment pattern `p*` matches a resource segment that starts with `p`
//! (so `*` alone matches any one segment). The last pattern `*` alone
//! matches one or more remaining segments. A grant names at most
//! [`MAX_SCOPES`] scopes; duplicates are dropped and the rest are kept in
//! ascending byte order ([`Scopes`]).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error as _};
use thiserror::Error;

/// Scopes one grant may name.
pub const MAX_SCOPES: usize = 16;
/// The longest scope or resource, in bytes.
pub const MAX_SCOPE_BYTES: usize = 100;
/// Segments of a scope or resource at most.
pub const MAX_SEGMENTS: usize = 8;
/// The longest segment, in characters (a pattern's `*` included).
pub const MAX_SEGMENT_CHARS: usize = 32;

/// Why a scope or resource was refused: the message says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ScopeError {
    #[error("{what} {text:?}: {why}")]
    Malformed {
        what: &'static str,
        text: String,
        why: String,
    },
    #[error("at most {MAX_SCOPES} scopes per grant ({0} given)")]
    TooMany(usize),
}

/// A resource a tenant asks about: segments without wildcards, e.g.
/// `ssh:web-1` or `db:orders:read`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Resource(String);

/// One scope of a grant: a pattern over resources, e.g. `ssh:web-*`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope(String);

/// A grant's scopes: empty means the whole tenant (a grant without
/// scopes); otherwise 1 to [`MAX_SCOPES`] distinct scopes in ascending
/// byte order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Scopes(Vec<Scope>);

impl Resource {
    pub fn parse(s: &str) -> Result<Resource, ScopeError> {
        check(s, "resource", false)?;
        Ok(Resource(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Scope {
    pub fn parse(s: &str) -> Result<Scope, ScopeError> {
        check(s, "scope", true)?;
        Ok(Scope(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Does this scope cover `resource`?
    pub fn matches(&self, resource: &Resource) -> bool {
        let patterns: Vec<&str> = self.0.split(':').collect();
        let segments: Vec<&str> = resource.0.split(':').collect();
        let (last, init) = match patterns.split_last() {
            Some(split) => split,
            None => return false,
        };
        if *last == "*" {
            // `…:*`: one or more segments from here.
            segments.len() >= patterns.len()
                && init
                    .iter()
                    .zip(&segments)
                    .all(|(p, s)| segment_matches(p, s))
        } else {
            segments.len() == patterns.len()
                && patterns
                    .iter()
                    .zip(&segments)
                    .all(|(p, s)| segment_matches(p, s))
        }
    }
}

impl Scopes {
    /// The whole tenant: a grant without scopes.
    pub fn whole_tenant() -> Scopes {
        Scopes(Vec::new())
    }

    /// Parses a grant's scopes: each must parse, at most [`MAX_SCOPES`]
    /// distinct ones; duplicates are dropped, the rest sorted. No scopes at
    /// all is the whole tenant.
    pub fn parse<S: AsRef<str>>(scopes: &[S]) -> Result<Scopes, ScopeError> {
        // Refused before parsing anything: a hostile list costs nothing.
        if scopes.len() > MAX_SCOPES {
            return Err(ScopeError::TooMany(scopes.len()));
        }
        let mut out = scopes
            .iter()
            .map(|s| Scope::parse(s.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        out.sort();
        out.dedup();
        Ok(Scopes(out))
    }

    /// The scopes as written in a log entry's `scopes` detail: joined by
    /// `,` (empty for the whole tenant).
    pub fn parse_joined(s: &str) -> Result<Scopes, ScopeError> {
        if s.is_empty() {
            return Ok(Scopes::whole_tenant());
        }
        let parts: Vec<&str> = s.split(',').collect();
        let scopes = Scopes::parse(&parts)?;
        // The canonical form only: sorted, without duplicates.
        if scopes.joined() != s {
            return Err(ScopeError::Malformed {
                what: "scopes",
                text: s.to_owned(),
                why: "not in ascending byte order without duplicates".into(),
            });
        }
        Ok(scopes)
    }

    /// Comma-joined, in order (the log's `scopes` detail).
    pub fn joined(&self) -> String {
        self.strings().join(",")
    }

    pub fn is_whole_tenant(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Scope> {
        self.0.iter()
    }

    pub fn strings(&self) -> Vec<String> {
        self.0.iter().map(|s| s.0.clone()).collect()
    }

    /// Is `resource` inside the grant? Always, for the whole tenant;
    /// otherwise when at least one scope matches it.
    pub fn permits(&self, resource: &Resource) -> bool {
        self.is_whole_tenant() || self.0.iter().any(|s| s.matches(resource))
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `db:read ssh:web-*`, or `(whole tenant)`.
impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_whole_tenant() {
            return f.write_str("(whole tenant)");
        }
        f.write_str(&self.strings().join(" "))
    }
}

/// Stored as a list of strings, parsed again when read.
impl Serialize for Scopes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.strings().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Scopes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Scopes, D::Error> {
        let v = Vec::<String>::deserialize(d)?;
        Scopes::parse(&v).map_err(D::Error::custom)
    }
}

fn segment_matches(pattern: &str, segment: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => segment.starts_with(prefix),
        None => pattern == segment,
    }
}

fn is_segment_char(c: char) -> bool {
    matches!(c, 'a'..='z' | '0'..='9' | '.' | '_' | '-')
}

/// The grammar of the module documentation; `wildcards` for scopes.
fn check(s: &str, what: &'static str, wildcards: bool) -> Result<(), ScopeError> {
    let bad = |why: String| ScopeError::Malformed {
        what,
        text: s.chars().take(MAX_SCOPE_BYTES + 1).collect(),
        why,
    };
    if s.is_empty() {
        return Err(bad("empty".into()));
    }
    if s.len() > MAX_SCOPE_BYTES {
        return Err(bad(format!("{} bytes, at most {MAX_SCOPE_BYTES}", s.len())));
    }
    let segments: Vec<&str> = s.split(':').collect();
    if segments.len() > MAX_SEGMENTS {
        return Err(bad(format!(
            "{} segments, at most {MAX_SEGMENTS} joined by `:`",
            segments.len()
        )));
    }
    for seg in segments {
        if seg.is_empty() {
            return Err(bad("an empty segment (`::`, or `:` at either end)".into()));
        }
        let chars = seg.chars().count();
        if chars > MAX_SEGMENT_CHARS {
            return Err(bad(format!(
                "segment {seg:?} has {chars} characters, at most {MAX_SEGMENT_CHARS}"
            )));
        }
        let body = if wildcards {
            seg.strip_suffix('*').unwrap_or(seg)
        } else {
            seg
        };
        if let Some(c) = body.chars().find(|c| !is_segment_char(*c)) {
            let why = if c == '*' {
                if wildcards {
                    format!("segment {seg:?}: `*` only at the end of a segment, once")
                } else {
                    "a resource names one thing: no `*`".into()
                }
            } else {
                format!(
                    "segment {seg:?} has {c:?}; use only a-z 0-9 . _ - (lower case){}",
                    if wildcards { " and a final `*`" } else { "" }
                )
            };
            return Err(bad(why));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn m(scope: &str, resource: &str) -> bool {
        Scope::parse(scope)
            .unwrap()
            .matches(&Resource::parse(resource).unwrap())
    }

    /// The worked examples of docs/integration.md §2.1.
    #[test]
    fn matching_follows_the_documented_examples() {
        assert!(m("db:read", "db:read"));
        assert!(!m("db:read", "db:write"));
        assert!(!m("db:read", "db:read:orders"), "exact length without `*`");
        assert!(!m("db:read", "db"));
        assert!(m("ssh:web-*", "ssh:web-1"));
        assert!(m("ssh:web-*", "ssh:web-"), "the run may be empty");
        assert!(!m("ssh:web-*", "ssh:web"));
        assert!(!m("ssh:web-*", "ssh:web-1:root"), "`p*` is one segment");
        assert!(!m("ssh:web-*", "ssh:db-1"));
        assert!(m("ssh:*", "ssh:web-1"));
        assert!(m("ssh:*", "ssh:web-1:root"), "a final `*`: any segments");
        assert!(!m("ssh:*", "ssh"), "at least one segment for the final `*`");
        assert!(m("db:*:read", "db:orders:read"));
        assert!(!m("db:*:read", "db:orders:write"));
        assert!(
            !m("db:*:read", "db:orders:x:read"),
            "an inner `*` is one segment"
        );
        assert!(m("*", "anything"));
        assert!(m("*", "a:b:c:d:e:f:g:h"));
        assert!(
            !m("s*", "ssh:web-1"),
            "a final `s*` is not `*`: one segment"
        );
        assert!(m("s*", "ssh"));
        assert!(!m("s*", "db"));
        // Case matters, and there is no case folding: upper case is refused.
        assert!(Resource::parse("SSH:web-1").is_err());
        // `.` `_` `-` are ordinary characters, no path semantics.
        assert!(!m("db:orders", "db:orders.."));
        assert!(m("db:orders.*", "db:orders.2026"));
    }

    #[test]
    fn the_grammar_refuses_what_it_does_not_say() {
        for bad in [
            "",
            ":",
            "db:",
            ":db",
            "db::read",
            "DB:read",
            "db read",
            "db/read",
            "db:re*ad",
            "db:**",
            "*db",
            "db:ré",
            "db,read",
            "db:read\n",
        ] {
            assert!(Scope::parse(bad).is_err(), "scope {bad:?}");
        }
        for bad in ["db:*", "ssh:web-*", "*", "db:re*ad", "a b"] {
            assert!(Resource::parse(bad).is_err(), "resource {bad:?}");
        }
        let long = "a".repeat(MAX_SEGMENT_CHARS);
        assert!(Resource::parse(&long).is_ok());
        assert!(Resource::parse(&format!("{long}a")).is_err());
        assert!(Scope::parse(&format!("{}*", "a".repeat(31))).is_ok());
        assert!(Scope::parse(&format!("{long}*")).is_err());
        let nine = ["a"; 9].join(":");
        assert!(Resource::parse(&nine).is_err());
        assert!(Resource::parse(&["a"; 8].join(":")).is_ok());
        // Four segments of 32 and three `:`: 131 bytes.
        let wide = [long.as_str(); 4].join(":");
        assert!(
            Resource::parse(&wide)
                .unwrap_err()
                .to_string()
                .contains("at most 100")
        );
        assert!(Resource::parse(&"a".repeat(101)).is_err());
    }

    #[test]
    fn a_grants_scopes_are_a_sorted_set_of_at_most_sixteen() {
        let s = Scopes::parse(&["ssh:web-*", "db:read", "ssh:web-*"]).unwrap();
        assert_eq!(s.strings(), ["db:read", "ssh:web-*"]);
        assert_eq!(s.joined(), "db:read,ssh:web-*");
        assert_eq!(Scopes::parse_joined("db:read,ssh:web-*").unwrap(), s);
        assert!(
            Scopes::parse_joined("ssh:web-*,db:read").is_err(),
            "not canonical"
        );
        assert!(Scopes::parse_joined("db:read,db:read").is_err());
        assert!(Scopes::parse_joined(",").is_err());
        assert!(Scopes::parse_joined("").unwrap().is_whole_tenant());
        let none: [&str; 0] = [];
        let whole = Scopes::parse(&none).unwrap();
        assert!(whole.permits(&Resource::parse("anything:at:all").unwrap()));
        let many: Vec<String> = (0..17).map(|i| format!("s{i}")).collect();
        assert_eq!(Scopes::parse(&many), Err(ScopeError::TooMany(17)));
        assert!(Scopes::parse(&many[..16]).is_ok());
        assert!(s.permits(&Resource::parse("ssh:web-2").unwrap()));
        assert!(!s.permits(&Resource::parse("db:write").unwrap()));
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, r#"["db:read","ssh:web-*"]"#);
        assert_eq!(serde_json::from_str::<Scopes>(&json).unwrap(), s);
        assert!(serde_json::from_str::<Scopes>(r#"["DB"]"#).is_err());
    }
}
