//! Break-glass grants' after-the-fact review: the [`ReviewVerdict`] a
//! second person gives, its mandatory [`ReviewNote`], and the
//! [`GrantReview`] a grant keeps (docs/security.md, "Break-glass").
//!
//! Who may review is [`crate::policy::may_review`]'s question; the
//! transition itself is [`super::Grant::review`].

use std::fmt;

use serde::{Deserialize, Serialize};

use super::text::{MAX_NOTE_CHARS, free_text};
use crate::clock::Timestamp;

/// The reviewer's judgement of an emergency grant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReviewVerdict {
    /// The emergency justified skipping approval.
    Justified,
    /// It did not: an alert is raised, and the note says why.
    Unjustified,
}

impl ReviewVerdict {
    pub const ALL: [ReviewVerdict; 2] = [ReviewVerdict::Justified, ReviewVerdict::Unjustified];

    pub fn as_str(self) -> &'static str {
        match self {
            ReviewVerdict::Justified => "justified",
            ReviewVerdict::Unjustified => "unjustified",
        }
    }

    /// A verdict as typed (trimmed, lower case only); the error names the
    /// choices.
    pub fn parse(s: &str) -> Result<ReviewVerdict, String> {
        let s = s.trim();
        ReviewVerdict::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "verdict must be justified or unjustified, not {:?}",
                    super::truncate(s, 40)
                )
            })
    }
}

impl fmt::Display for ReviewVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the reviewer found: required (a verdict alone explains nothing),
/// at most 500 characters, free of control and invisible characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReviewNote(String);

impl ReviewNote {
    pub fn parse(value: &str) -> Result<ReviewNote, String> {
        free_text("note", value, MAX_NOTE_CHARS, true).map(ReviewNote)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ReviewNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A break-glass grant's review, as the grant keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantReview {
    /// The reviewer as an actor (`staff/carol`, `auditor/eve`, `tenant/acme`).
    pub by: String,
    pub at: Timestamp,
    pub verdict: ReviewVerdict,
    pub note: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_and_notes_are_parsed() {
        for v in ReviewVerdict::ALL {
            assert_eq!(ReviewVerdict::parse(v.as_str()), Ok(v));
        }
        assert_eq!(
            ReviewVerdict::parse(" justified "),
            Ok(ReviewVerdict::Justified)
        );
        assert!(ReviewVerdict::parse("Justified").is_err());
        assert!(
            ReviewVerdict::parse("")
                .unwrap_err()
                .contains("justified or unjustified")
        );
        assert!(ReviewNote::parse("  ").is_err());
        assert!(ReviewNote::parse("a\u{202e}b").is_err());
        assert!(ReviewNote::parse(&"x".repeat(501)).is_err());
        assert_eq!(ReviewNote::parse(" ok ").unwrap().as_str(), "ok");
    }
}
