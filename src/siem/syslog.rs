//! RFC 5424 syslog messages for log entries, and the RFC 5425 (syslog over
//! TLS) octet-counting frame they are sent in. Pure formatting: the
//! connection and the cursor are [`super::forward`]'s.
//!
//! ```text
//! <PRI>1 TIMESTAMP HOSTNAME APP-NAME - MSGID [daypass@32473 seq=".." tenant=".." actor=".." grant=".."] MSG
//! ```
//!
//! PRI is `facility * 8 + severity` (severity from [`super::Level`]);
//! TIMESTAMP is the entry's time (RFC 3339, UTC, milliseconds); MSGID its
//! kind; the structured data carries seq, tenant, actor and, when the entry
//! has one, grant; MSG is the entry as one JSON object (the export's line,
//! or its OCSF event). docs/siem.md §4.

use super::Level;
use crate::{audit::Entry, domain::detail};

/// The SD-ID of the structured-data element. 32473 is the private
/// enterprise number RFC 5612 reserves for documentation; a collector
/// matches on the whole SD-ID.
pub const SD_ID: &str = "daypass@32473";

/// `facility * 8 + severity` (RFC 5424 §6.2.1); both are checked small
/// enough by their types' users (facility 0..=23, severity 0..=7).
pub fn pri(facility: u8, severity: u8) -> u16 {
    u16::from(facility) * 8 + u16::from(severity & 7)
}

/// What stays the same for every message of one forwarder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// 0..=23.
    pub facility: u8,
    /// PRINTUSASCII, at most 255 (checked by the configuration).
    pub hostname: String,
    /// PRINTUSASCII, at most 48.
    pub app_name: String,
}

/// One RFC 5424 message for `e`, with `msg` as its MSG part.
pub fn message(h: &Header, e: &Entry, msg: &str) -> String {
    let severity = Level::of(e).syslog_severity();
    let mut sd = format!(
        "[{SD_ID} seq=\"{}\" tenant=\"{}\" actor=\"{}\"",
        e.seq,
        escape_param(&e.tenant),
        escape_param(&e.actor)
    );
    if let Some(g) = e.details.get(detail::GRANT) {
        sd.push_str(&format!(" grant=\"{}\"", escape_param(g)));
    }
    sd.push(']');
    format!(
        "<{}>1 {} {} {} - {} {sd} {msg}",
        pri(h.facility, severity),
        e.timestamp.to_rfc3339(),
        header_field(&h.hostname, 255),
        header_field(&h.app_name, 48),
        header_field(&e.kind, 32),
    )
}

/// RFC 5425 §4.3 octet counting: `MSG-LEN SP SYSLOG-MSG`.
pub fn frame(msg: &str) -> Vec<u8> {
    let mut out = format!("{} ", msg.len()).into_bytes();
    out.extend_from_slice(msg.as_bytes());
    out
}

/// A PARAM-VALUE with `"`, `\` and `]` escaped by a backslash (RFC 5424
/// §6.3.3).
pub fn escape_param(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A header field: printable US-ASCII without spaces (others become `_`),
/// at most `max` characters, `-` (NILVALUE) when empty.
fn header_field(s: &str, max: usize) -> String {
    let v: String = s
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .take(max)
        .collect();
    if v.is_empty() { "-".into() } else { v }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::clock::Timestamp;

    fn header() -> Header {
        Header {
            facility: 10,
            hostname: "broker-1".into(),
            app_name: "daypass".into(),
        }
    }

    fn entry(kind: &str, tenant: &str, details: &[(&str, &str)]) -> Entry {
        Entry {
            seq: 12,
            timestamp: Timestamp(1_764_000_000_123),
            actor: "staff/bob".into(),
            tenant: tenant.into(),
            kind: kind.into(),
            details: details
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect::<BTreeMap<_, _>>(),
            sealed: None,
            prev_hash: [0; 32],
        }
    }

    #[test]
    fn pri_is_facility_times_eight_plus_severity() {
        assert_eq!(pri(0, 0), 0);
        assert_eq!(pri(10, 6), 86);
        assert_eq!(pri(16, 2), 130);
        assert_eq!(pri(23, 7), 191);
    }

    #[test]
    fn param_values_escape_quote_backslash_and_bracket() {
        assert_eq!(escape_param("acme"), "acme");
        assert_eq!(escape_param(r#"a"b\c]d"#), r#"a\"b\\c\]d"#);
        assert_eq!(escape_param("[ok]"), r"[ok\]");
        assert_eq!(escape_param("é ü"), "é ü");
    }

    #[test]
    fn a_message_has_every_part_in_order() {
        let e = entry(
            "grant.activated",
            "acme",
            &[("grant", "g-1"), ("holder", "bob")],
        );
        let m = message(&header(), &e, "{}");
        // authpriv (10) * 8 + notice (5).
        assert_eq!(
            m,
            "<85>1 2025-11-24T16:00:00.123Z broker-1 daypass - grant.activated \
             [daypass@32473 seq=\"12\" tenant=\"acme\" actor=\"staff/bob\" grant=\"g-1\"] {}"
        );
        let e = entry("audit.read", "", &[]);
        let m = message(&header(), &e, "x");
        assert!(m.starts_with("<86>1 "), "{m}");
        assert!(
            m.contains("[daypass@32473 seq=\"12\" tenant=\"\" actor=\"staff/bob\"] x"),
            "{m}"
        );
        let alert = entry("alert.raised", "acme", &[("severity", "critical")]);
        assert!(message(&header(), &alert, "x").starts_with("<82>1 "));
    }

    #[test]
    fn header_fields_stay_printable_and_short() {
        let e = entry(
            "a kind with spaces and much more than thirty-two characters",
            "t]",
            &[],
        );
        let m = message(&header(), &e, "x");
        assert!(m.contains(" - a_kind_with_spaces_and_much_more "), "{m}");
        assert!(m.contains("tenant=\"t\\]\""), "{m}");
        assert_eq!(header_field("", 5), "-");
    }

    #[test]
    fn frames_count_octets_not_characters() {
        assert_eq!(frame("abc"), b"3 abc");
        assert_eq!(frame("é"), "2 é".as_bytes());
    }
}
