//! Why a grant is asked for, beyond the free-text reason: a [`ReasonCode`]
//! (a category, chosen from a fixed list) and a tenant's [`Justification`]
//! rules: whether it requires a code, and the [`TicketPattern`] its tickets
//! must match.
//!
//! A reason code is a category, not personal data: it is logged in plain
//! (`reason_code` on `grant.requested`), unlike the reason and the ticket.
//! A ticket pattern is a regular expression of the `regex` crate, which
//! matches in linear time (no backtracking); it is bounded in length and
//! compiled under a size limit, so an admin's typo cannot slow requests.
//!
//! Not here: where the rules are applied (`service::grants`), how they are
//! set (`service::tenants`), who may set them (`policy`).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{ids::Name, text::Ticket};

/// Longest ticket pattern, in characters.
pub const MAX_TICKET_PATTERN_CHARS: usize = 200;
/// The compiled program's and the lazy DFA's size limits, in bytes: far
/// above what 200 characters of a sane pattern need, far below what makes
/// a request slow (`a{1000}{1000}` and its like are refused).
const PATTERN_SIZE_LIMIT: usize = 1 << 20;

/// The category of a grant request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReasonCode {
    /// The customer asked for help.
    CustomerRequest,
    /// An incident is under way.
    Incident,
    /// Planned work.
    Maintenance,
    /// A security investigation or response.
    Security,
}

impl ReasonCode {
    pub const ALL: [ReasonCode; 4] = [
        ReasonCode::CustomerRequest,
        ReasonCode::Incident,
        ReasonCode::Maintenance,
        ReasonCode::Security,
    ];

    /// The code as written on the wire and in the log.
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonCode::CustomerRequest => "customer-request",
            ReasonCode::Incident => "incident",
            ReasonCode::Maintenance => "maintenance",
            ReasonCode::Security => "security",
        }
    }

    /// The codes, comma-separated, for messages.
    pub fn choices() -> String {
        ReasonCode::ALL
            .iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// A code as a caller sent it: empty (surrounding space forgiven) is no
    /// code; anything else must be one of [`ReasonCode::ALL`].
    pub fn parse(value: &str) -> Result<Option<ReasonCode>, String> {
        let v = value.trim();
        if v.is_empty() {
            return Ok(None);
        }
        ReasonCode::ALL
            .into_iter()
            .find(|c| c.as_str() == v)
            .map(Some)
            .ok_or_else(|| {
                format!(
                    "reason_code {:?} is not one of {}",
                    super::text::truncate(v, 40),
                    ReasonCode::choices()
                )
            })
    }
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A regular expression a tenant's tickets must match (somewhere: anchor
/// it with `^…$` to match the whole ticket). Compared and stored as its
/// source text.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TicketPattern {
    source: String,
    regex: regex::Regex,
}

impl TicketPattern {
    /// A pattern as an admin typed it: empty is no pattern (the rule is
    /// cleared); otherwise at most 200 characters, no control characters,
    /// and a valid expression within the size limit. The error names the
    /// regex error's cause on one line.
    pub fn parse(value: &str) -> Result<Option<TicketPattern>, String> {
        if value.is_empty() {
            return Ok(None);
        }
        let chars = value.chars().count();
        if chars > MAX_TICKET_PATTERN_CHARS {
            return Err(format!(
                "ticket_pattern is {chars} characters long; at most {MAX_TICKET_PATTERN_CHARS}"
            ));
        }
        if value.chars().any(char::is_control) {
            return Err("ticket_pattern must not contain control characters".into());
        }
        let regex = regex::RegexBuilder::new(value)
            .size_limit(PATTERN_SIZE_LIMIT)
            .dfa_size_limit(PATTERN_SIZE_LIMIT)
            .build()
            .map_err(|e| {
                format!(
                    "ticket_pattern is not a valid regular expression: {}",
                    cause(&e)
                )
            })?;
        Ok(Some(TicketPattern {
            source: value.to_string(),
            regex,
        }))
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    pub fn matches(&self, ticket: &str) -> bool {
        self.regex.is_match(ticket)
    }
}

/// The one line of a regex error that says what is wrong: a syntax error
/// is printed over several lines (the pattern, a caret, then `error: …`).
fn cause(e: &regex::Error) -> String {
    let text = e.to_string();
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("error:"))
        .or_else(|| text.lines().map(str::trim).find(|l| !l.is_empty()))
        .unwrap_or("unknown error");
    line.trim_start_matches("error:").trim().to_string()
}

impl PartialEq for TicketPattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for TicketPattern {}

impl fmt::Display for TicketPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl TryFrom<String> for TicketPattern {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        TicketPattern::parse(&s)?.ok_or_else(|| "an empty ticket pattern is stored as none".into())
    }
}

impl From<TicketPattern> for String {
    fn from(p: TicketPattern) -> String {
        p.source
    }
}

/// A tenant's rules for the justification of its grants.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Justification {
    /// Requests must carry a reason code.
    #[serde(default)]
    pub require_reason_code: bool,
    /// Tickets given must match it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket_pattern: Option<TicketPattern>,
}

impl Justification {
    /// Why a request for `tenant` with this code and ticket is refused, if
    /// it is (an INVALID_ARGUMENT the requester can fix). An empty ticket
    /// is not matched: whether one is needed is the tenant's
    /// `require_ticket`. The message never repeats the ticket (refusals are
    /// logged in plain, tickets are personal data).
    pub fn refusal(
        &self,
        tenant: &Name,
        code: Option<ReasonCode>,
        ticket: &Ticket,
    ) -> Option<String> {
        if self.require_reason_code && code.is_none() {
            return Some(format!(
                "reason_code is required for tenant {tenant}: one of {} (--code)",
                ReasonCode::choices()
            ));
        }
        match &self.ticket_pattern {
            Some(p) if !ticket.is_empty() && !p.matches(ticket.as_str()) => Some(format!(
                "the ticket does not match tenant {tenant}'s ticket pattern {}",
                p.as_str()
            )),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reason_codes_round_trip_and_refuse_others() {
        for c in ReasonCode::ALL {
            assert_eq!(ReasonCode::parse(c.as_str()).unwrap(), Some(c));
        }
        assert_eq!(ReasonCode::parse("  ").unwrap(), None);
        let e = ReasonCode::parse("curiosity").unwrap_err();
        assert_eq!(
            e,
            "reason_code \"curiosity\" is not one of customer-request, incident, maintenance, security"
        );
        assert!(ReasonCode::parse("Incident").is_err());
    }

    #[test]
    fn patterns_are_bounded_and_explain_errors() {
        assert_eq!(TicketPattern::parse("").unwrap(), None);
        let p = TicketPattern::parse("^INC-[0-9]+$").unwrap().unwrap();
        assert!(p.matches("INC-42"));
        assert!(!p.matches("INC-42x"));
        let e = TicketPattern::parse("^INC-[0-9+$").unwrap_err();
        assert_eq!(
            e,
            "ticket_pattern is not a valid regular expression: unclosed character class"
        );
        let e = TicketPattern::parse(&"a".repeat(201)).unwrap_err();
        assert!(e.contains("at most 200"), "{e}");
        assert!(TicketPattern::parse(&"a".repeat(200)).unwrap().is_some());
        let e = TicketPattern::parse("a{1000}{1000}").unwrap_err();
        assert!(e.contains("size limit"), "{e}");
        assert!(TicketPattern::parse("INC\n").is_err());
    }

    #[test]
    fn patterns_serialise_as_their_source() {
        let j = Justification {
            require_reason_code: true,
            ticket_pattern: TicketPattern::parse("^OPS-\\d+$").unwrap(),
        };
        let text = serde_json::to_string(&j).unwrap();
        assert_eq!(
            text,
            r#"{"require_reason_code":true,"ticket_pattern":"^OPS-\\d+$"}"#
        );
        assert_eq!(serde_json::from_str::<Justification>(&text).unwrap(), j);
        assert_eq!(
            serde_json::from_str::<Justification>("{}").unwrap(),
            Justification::default()
        );
    }

    #[test]
    fn refusals_name_what_to_fix() {
        let acme = Name::parse("acme").unwrap();
        let j = Justification {
            require_reason_code: true,
            ticket_pattern: TicketPattern::parse("^INC-[0-9]+$").unwrap(),
        };
        let t = |s: &str| Ticket::parse(s).unwrap();
        let why = j.refusal(&acme, None, &t("INC-1")).unwrap();
        assert!(
            why.starts_with("reason_code is required for tenant acme: one of"),
            "{why}"
        );
        let why = j
            .refusal(&acme, Some(ReasonCode::Incident), &t("JIRA-7"))
            .unwrap();
        assert_eq!(
            why,
            "the ticket does not match tenant acme's ticket pattern ^INC-[0-9]+$"
        );
        assert_eq!(
            j.refusal(&acme, Some(ReasonCode::Incident), &t("INC-7")),
            None
        );
        assert_eq!(j.refusal(&acme, Some(ReasonCode::Incident), &t("")), None);
        assert_eq!(Justification::default().refusal(&acme, None, &t("x")), None);
    }
}
