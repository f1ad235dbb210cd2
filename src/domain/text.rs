//! Free text a person typed, parsed once: [`Reason`], [`Ticket`], [`Note`],
//! and what a tenant reports ([`AccessAction`], [`Resource`]). Each is
//! trimmed, bounded in characters (Unicode scalar values), and free of
//! control characters and of invisible or direction-changing ones, so a log
//! entry reads as what it says.

use std::fmt;

pub use daypass_tenant::report::{MAX_ACTION_CHARS, MAX_RESOURCE_CHARS};

/// Longest accepted reason, in characters.
pub const MAX_REASON_CHARS: usize = 500;
/// Longest ticket reference, in characters.
pub const MAX_TICKET_CHARS: usize = 128;
/// Longest decision or revocation note, in characters.
pub const MAX_NOTE_CHARS: usize = 500;

macro_rules! text_type {
    ($(#[$doc:meta])* $name:ident, $field:literal, $max:expr, required = $required:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            /// The field's name in messages.
            pub const FIELD: &'static str = $field;

            /// Trims `value` and checks it (see the module docs); the error
            /// says what to fix.
            pub fn parse(value: &str) -> Result<Self, String> {
                free_text($field, value, $max, $required).map($name)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn is_empty(&self) -> bool {
                self.0.is_empty()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

text_type!(
    /// Why access is asked for: required, at most 500 characters.
    Reason, "reason", MAX_REASON_CHARS, required = true
);
text_type!(
    /// A ticket reference: optional (empty), at most 128 characters.
    #[derive(Default)]
    Ticket, "ticket", MAX_TICKET_CHARS, required = false
);
text_type!(
    /// A note on a decision or a revocation: optional, at most 500 characters.
    #[derive(Default)]
    Note, "note", MAX_NOTE_CHARS, required = false
);
text_type!(
    /// What an engineer did, as a tenant reports it: required.
    AccessAction, "action", MAX_ACTION_CHARS, required = true
);
text_type!(
    /// What it was done to: optional.
    #[derive(Default)]
    Resource, "resource", MAX_RESOURCE_CHARS, required = false
);

/// A free-text field: trimmed, bounded, no control or invisible characters.
pub(crate) fn free_text(
    field: &str,
    value: &str,
    max_chars: usize,
    required: bool,
) -> Result<String, String> {
    let v = value.trim();
    if required && v.is_empty() {
        return Err(format!("{field} is required and must not be blank"));
    }
    if v.chars().count() > max_chars {
        return Err(format!("{field} is longer than {max_chars} characters"));
    }
    if v.chars().any(char::is_control) {
        return Err(format!("{field} must not contain control characters"));
    }
    if let Some(c) = v.chars().find(|&c| is_invisible_format(c)) {
        return Err(format!(
            "{field} must not contain invisible or direction-changing characters (found U+{:04X}); they make log views misleading",
            u32::from(c)
        ));
    }
    Ok(v.to_owned())
}

/// Characters that change how text around them is shown without being
/// seen: bidirectional marks, overrides and isolates, zero-width and other
/// invisible format characters (soft hyphen, grapheme joiner, Mongolian
/// vowel separator, interlinear annotation, tags), the byte-order mark,
/// line and paragraph separators.
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2028}'..='\u{2029}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{E0000}'..='\u{E007F}'
    )
}

/// HTML text escaping (`& < > " '`): whatever a peer typed is shown as
/// text, never as markup, in element content and in quoted attributes.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// At most `max` characters of `s`, for messages about peer input.
pub fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_trimmed_and_bounded_in_characters() {
        assert_eq!(Reason::parse("  INC-1 \n").unwrap().as_str(), "INC-1");
        assert!(Reason::parse(&"é".repeat(500)).is_ok());
        let long = Reason::parse(&"é".repeat(501)).unwrap_err();
        assert_eq!(long, "reason is longer than 500 characters");
        assert!(Ticket::parse(&"t".repeat(129)).is_err());
        assert!(Ticket::parse("").unwrap().is_empty());
        assert!(Note::parse("").is_ok());
    }

    #[test]
    fn required_text_must_not_be_blank() {
        for blank in ["", "   ", "\t\n"] {
            assert_eq!(
                Reason::parse(blank).unwrap_err(),
                "reason is required and must not be blank"
            );
            assert!(AccessAction::parse(blank).is_err());
        }
        assert!(Resource::parse("").is_ok());
    }

    #[test]
    fn control_and_invisible_characters_are_refused() {
        assert!(
            Reason::parse("a\u{7}b")
                .unwrap_err()
                .contains("control characters")
        );
        for c in [
            '\u{202E}',
            '\u{200B}',
            '\u{FEFF}',
            '\u{2028}',
            '\u{E0041}',
            '\u{00AD}',
        ] {
            let err = Note::parse(&format!("ok{c}ok")).unwrap_err();
            assert!(err.contains(&format!("U+{:04X}", u32::from(c))), "{err}");
        }
        // Ordinary non-ASCII text is fine.
        assert!(Reason::parse("Kunde kann sich nicht anmelden – Ärger").is_ok());
    }

    #[test]
    fn truncation_counts_characters() {
        assert_eq!(truncate("abc", 5), "abc");
        assert_eq!(truncate("ééé", 2), "éé…");
    }
}
