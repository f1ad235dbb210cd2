//! The CSV export (`audit export --format csv`): RFC 4180, one header row
//! ([`HEADER`]) then one row per entry, CRLF line ends, every field that
//! holds a comma, a double quote, CR or LF quoted (quotes doubled). The
//! details that most entries carry get their own columns; all of them,
//! those included, are in the last column as one JSON object, so nothing
//! is lost and the columns stay fixed whatever kinds a newer server adds.
//! docs/siem.md §2.

use std::io::{self, Write};

use crate::{audit::Entry, domain::detail};

/// The columns, in order.
pub const HEADER: [&str; 8] = [
    "seq", "time", "kind", "actor", "tenant", "grant", "holder", "details",
];

/// Writes the header row.
pub fn write_header(w: &mut impl Write) -> io::Result<()> {
    write_record(w, HEADER.iter().copied())
}

/// Writes one entry's row: `time` is RFC 3339 UTC with milliseconds,
/// `grant` and `holder` are empty for an entry without them, `details` is
/// the JSON object of every detail.
pub fn write_row(w: &mut impl Write, e: &Entry) -> io::Result<()> {
    let get = |k: &str| e.details.get(k).map(String::as_str).unwrap_or_default();
    let seq = e.seq.to_string();
    let time = e.timestamp.to_rfc3339();
    let details = serde_json::to_string(&e.details).map_err(io::Error::other)?;
    write_record(
        w,
        [
            seq.as_str(),
            time.as_str(),
            e.kind.as_str(),
            e.actor.as_str(),
            e.tenant.as_str(),
            get(detail::GRANT),
            get(detail::HOLDER),
            details.as_str(),
        ],
    )
}

fn write_record<'a>(
    w: &mut impl Write,
    fields: impl IntoIterator<Item = &'a str>,
) -> io::Result<()> {
    for (i, f) in fields.into_iter().enumerate() {
        if i > 0 {
            w.write_all(b",")?;
        }
        w.write_all(field(f).as_bytes())?;
    }
    w.write_all(b"\r\n")
}

/// One field as RFC 4180 §2 writes it: as is, or in double quotes with
/// each quote doubled when it holds a comma, a quote, CR or LF.
pub fn field(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\"")).into()
    } else {
        s.into()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::clock::Timestamp;

    #[test]
    fn fields_are_quoted_only_when_they_must_be() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field(""), "");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("two\nlines"), "\"two\nlines\"");
        assert_eq!(field("cr\r"), "\"cr\r\"");
    }

    #[test]
    fn a_row_has_every_column_and_the_details_as_json() {
        let e = Entry {
            seq: 7,
            timestamp: Timestamp(1_764_000_000_123),
            actor: "staff/bob".into(),
            tenant: "acme".into(),
            kind: "grant.requested".into(),
            details: BTreeMap::from([
                ("grant".into(), "g-1".into()),
                ("holder".into(), "bob".into()),
                ("reason".into(), "INC-7, \"disk\" full".into()),
            ]),
            sealed: None,
            prev_hash: [0; 32],
        };
        let mut out = Vec::new();
        write_header(&mut out).unwrap();
        write_row(&mut out, &e).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "seq,time,kind,actor,tenant,grant,holder,details\r\n\
             7,2025-11-24T16:00:00.123Z,grant.requested,staff/bob,acme,g-1,bob,\
             \"{\"\"grant\"\":\"\"g-1\"\",\"\"holder\"\":\"\"bob\"\",\
             \"\"reason\"\":\"\"INC-7, \\\"\"disk\\\"\" full\"\"}\"\r\n"
        );
    }
}
