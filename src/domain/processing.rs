//! The record of processing one tenant (controller) declares (GDPR Art
//! 30(2)), parsed once: [`ProcessingRecord`], built from the fields a peer
//! sent ([`RawRecord`], also what an admin's TOML file holds) by a
//! constructor that refuses empties, oversize text, too many items and
//! control characters with a message naming the field; its canonical JSON
//! and SHA-256 (what a `processing.recorded` entry holds); and the TOML
//! reading, whose errors name the line and the field.
//!
//! Not here: versions and the register as the log tells it
//! ([`crate::service::processing`]), the document
//! ([`crate::service::processing_documents`]).

use ring::digest::{SHA256, digest};
use serde::{Deserialize, Serialize};

use super::{location::Country, text::free_text};

/// Longest short field (a name, a contact, one item of a list), in characters.
pub const MAX_ITEM_CHARS: usize = 300;
/// Longest retention text, in characters (line breaks allowed).
pub const MAX_RETENTION_CHARS: usize = 2000;
/// Most items in one list.
pub const MAX_ITEMS: usize = 50;

/// A name and how to reach them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    pub contact: String,
    pub name: String,
}

/// A transfer to a third country and its safeguard.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transfer {
    pub country: Country,
    pub safeguard: String,
}

/// The Art 30(2) content for one controller. Fields are in alphabetical
/// order, so its serde form is its canonical JSON ([`Self::canonical_json`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProcessingRecord {
    /// (b) categories of processing carried out for the controller.
    pub categories: Vec<String>,
    /// (a) the controller.
    pub controller: Contact,
    /// Categories of data subjects.
    pub data_subjects: Vec<String>,
    /// Categories of personal data.
    pub personal_data: Vec<String>,
    /// (a) the processor's data protection officer or contact point.
    pub processor_contact: Contact,
    pub purposes: Vec<String>,
    pub recipients: Vec<String>,
    /// (a) the controller's representative, if it has one.
    pub representative: Option<Contact>,
    pub retention: String,
    /// (d) technical and organisational security measures.
    pub security_measures: Vec<String>,
    /// (c) transfers to third countries.
    pub transfers: Vec<Transfer>,
}

/// The fields as a peer or a TOML file gives them, unchecked.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRecord {
    pub controller: RawContact,
    #[serde(default)]
    pub representative: Option<RawContact>,
    pub processor_contact: RawContact,
    pub categories: Vec<String>,
    pub purposes: Vec<String>,
    pub data_subjects: Vec<String>,
    pub personal_data: Vec<String>,
    #[serde(default)]
    pub recipients: Vec<String>,
    #[serde(default)]
    pub transfers: Vec<RawTransfer>,
    pub retention: String,
    pub security_measures: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawContact {
    pub name: String,
    pub contact: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTransfer {
    pub country: String,
    pub safeguard: String,
}

impl ProcessingRecord {
    /// Parses every field; the error starts with the field's name
    /// (`purposes[2]: ...`, `controller.name ...`).
    pub fn parse(r: &RawRecord) -> Result<ProcessingRecord, String> {
        let representative = match &r.representative {
            Some(c) if !(c.name.trim().is_empty() && c.contact.trim().is_empty()) => {
                Some(contact("representative", c)?)
            }
            _ => None,
        };
        if r.transfers.len() > MAX_ITEMS {
            return Err(format!("transfers: at most {MAX_ITEMS} items"));
        }
        let transfers = r
            .transfers
            .iter()
            .enumerate()
            .map(|(i, t)| {
                Ok(Transfer {
                    country: Country::parse(&format!("transfers[{i}].country"), &t.country)?,
                    safeguard: item(&format!("transfers[{i}].safeguard"), &t.safeguard)?,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(ProcessingRecord {
            controller: contact("controller", &r.controller)?,
            representative,
            processor_contact: contact("processor_contact", &r.processor_contact)?,
            categories: list("categories", &r.categories, true)?,
            purposes: list("purposes", &r.purposes, true)?,
            data_subjects: list("data_subjects", &r.data_subjects, true)?,
            personal_data: list("personal_data", &r.personal_data, true)?,
            recipients: list("recipients", &r.recipients, false)?,
            transfers,
            retention: retention(&r.retention)?,
            security_measures: list("security_measures", &r.security_measures, true)?,
        })
    }

    /// The record as an admin's TOML file holds it (docs/compliance/processing.md).
    /// An error names the line and the field.
    pub fn from_toml(text: &str) -> Result<ProcessingRecord, String> {
        let raw: RawRecord = toml::from_str(text).map_err(|e| toml_error(&e))?;
        ProcessingRecord::parse(&raw).map_err(|e| match line_of(text, field_path(&e)) {
            Some(n) => format!("line {n}: {e}"),
            None => e,
        })
    }

    /// Its fields back as unchecked ones (for the wire).
    pub fn to_raw(&self) -> RawRecord {
        let c = |c: &Contact| RawContact {
            name: c.name.clone(),
            contact: c.contact.clone(),
        };
        RawRecord {
            controller: c(&self.controller),
            representative: self.representative.as_ref().map(c),
            processor_contact: c(&self.processor_contact),
            categories: self.categories.clone(),
            purposes: self.purposes.clone(),
            data_subjects: self.data_subjects.clone(),
            personal_data: self.personal_data.clone(),
            recipients: self.recipients.clone(),
            transfers: self
                .transfers
                .iter()
                .map(|t| RawTransfer {
                    country: t.country.to_string(),
                    safeguard: t.safeguard.clone(),
                })
                .collect(),
            retention: self.retention.clone(),
            security_measures: self.security_measures.clone(),
        }
    }

    /// The canonical JSON: object keys in ascending (byte) order at every
    /// level, no insignificant whitespace, `representative` `null` when
    /// there is none, lists in the order given, UTF-8, serde_json's string
    /// escaping. What a `processing.recorded` entry's `record` holds.
    pub fn canonical_json(&self) -> String {
        // Through a Value: serde_json's map is ordered by key, so the bytes
        // do not depend on the struct's field order.
        serde_json::to_value(self)
            .map(|v| v.to_string())
            .unwrap_or_default()
    }

    /// Lowercase hex SHA-256 of the canonical JSON.
    pub fn sha256(&self) -> String {
        sha256_hex(&self.canonical_json())
    }

    /// A record from an entry's `record` detail: it must parse and be
    /// canonical (re-encoding gives the same bytes).
    pub fn from_canonical_json(s: &str) -> Result<ProcessingRecord, String> {
        let raw: RawRecord =
            serde_json::from_str(s).map_err(|e| format!("record is not a record's JSON: {e}"))?;
        let rec = ProcessingRecord::parse(&raw).map_err(|e| format!("record: {e}"))?;
        if rec.canonical_json() != s {
            return Err("record is not in canonical form".into());
        }
        Ok(rec)
    }
}

/// What a `processing.recorded` entry says, checked on its own: `version`
/// is a number from 1, `record` is a record's canonical JSON and `sha256`
/// is its hash. Whether the version follows the tenant's previous one is
/// the reader's check (it needs the entries before).
pub fn read_entry(
    details: &std::collections::BTreeMap<String, String>,
) -> Result<(u32, ProcessingRecord), String> {
    let get = |k: &str| details.get(k).map(String::as_str).unwrap_or_default();
    let version: u32 = get(super::detail::VERSION)
        .parse()
        .ok()
        .filter(|v| *v >= 1)
        .ok_or_else(|| {
            format!(
                "version {:?} is not a number from 1",
                get(super::detail::VERSION)
            )
        })?;
    let json = get(super::detail::RECORD);
    let sha = get(super::detail::SHA256);
    if sha256_hex(json) != sha {
        return Err(format!(
            "sha256 {sha:?} is not the SHA-256 of the record ({})",
            sha256_hex(json)
        ));
    }
    Ok((version, ProcessingRecord::from_canonical_json(json)?))
}

/// Lowercase hex SHA-256 of `s`'s UTF-8 bytes.
pub fn sha256_hex(s: &str) -> String {
    hex::encode(digest(&SHA256, s.as_bytes()))
}

fn contact(field: &str, c: &RawContact) -> Result<Contact, String> {
    Ok(Contact {
        name: free_text(&format!("{field}.name"), &c.name, MAX_ITEM_CHARS, true)?,
        contact: free_text(
            &format!("{field}.contact"),
            &c.contact,
            MAX_ITEM_CHARS,
            true,
        )?,
    })
}

fn item(field: &str, v: &str) -> Result<String, String> {
    free_text(field, v, MAX_ITEM_CHARS, true)
}

fn list(field: &str, values: &[String], required: bool) -> Result<Vec<String>, String> {
    if required && values.is_empty() {
        return Err(format!("{field}: name at least one item"));
    }
    if values.len() > MAX_ITEMS {
        return Err(format!("{field}: at most {MAX_ITEMS} items"));
    }
    values
        .iter()
        .enumerate()
        .map(|(i, v)| item(&format!("{field}[{i}]"), v))
        .collect()
}

/// Multi-line text: each line checked like any free text.
fn retention(v: &str) -> Result<String, String> {
    let v = v.trim();
    if v.is_empty() {
        return Err("retention is required and must not be blank".into());
    }
    if v.chars().count() > MAX_RETENTION_CHARS {
        return Err(format!(
            "retention is longer than {MAX_RETENTION_CHARS} characters"
        ));
    }
    let lines = v
        .split('\n')
        .map(|l| {
            free_text(
                "retention",
                l.trim_end_matches('\r'),
                MAX_RETENTION_CHARS,
                false,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(lines.join("\n"))
}

/// toml's message in one line: where, then what.
fn toml_error(e: &toml::de::Error) -> String {
    let what = e.message().trim().replace('\n', " ");
    match e.span() {
        Some(_) => {
            let first = e.to_string();
            // "TOML parse error at line 3, column 1"
            let at = first
                .lines()
                .next()
                .and_then(|l| l.split_once(" at "))
                .map(|(_, at)| at.to_owned());
            match at {
                Some(at) => format!("{at}: {what}"),
                None => what,
            }
        }
        None => what,
    }
}

/// The field path an error message starts with (`transfers[1].country`).
fn field_path(msg: &str) -> &str {
    msg.split([':', ' ']).next().unwrap_or_default()
}

/// The 1-based line of `path` (`purposes[2]`, `controller.name`,
/// `transfers[1].country`) in a TOML text, found by its key: within its
/// `[table]` or its n-th `[[array]]` header for dotted paths.
fn line_of(text: &str, path: &str) -> Option<usize> {
    let (table, key) = match path.split_once('.') {
        Some((t, k)) => (Some(t), k),
        None => (None, path),
    };
    let key = key.split('[').next().unwrap_or(key);
    let (table, nth) = match table {
        Some(t) => match t.split_once('[') {
            Some((name, rest)) => (Some(name), rest.trim_end_matches(']').parse().unwrap_or(0)),
            None => (Some(t), 0usize),
        },
        None => (None, 0),
    };
    let mut inside = table.is_none();
    let mut seen = 0usize;
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.starts_with('[') {
            let name = l.trim_matches(['[', ']']).trim();
            inside = match table {
                Some(t) if name == t => {
                    seen += 1;
                    seen == nth + 1
                }
                _ => false,
            };
            continue;
        }
        if !inside {
            continue;
        }
        let k = l.split('=').next().unwrap_or_default().trim();
        if l.contains('=') && k.trim_matches('"') == key {
            return Some(i + 1);
        }
        // An inline table (`controller = { name = "…" }`).
        if let Some(t) = table {
            if k == t && l.contains(&format!("{key} =")) && nth == 0 {
                return Some(i + 1);
            }
        }
    }
    // A dotted path in an inline table on one line of its own.
    if let Some(t) = table {
        return text
            .lines()
            .position(|l| {
                l.trim_start().starts_with(&format!("{t} "))
                    || l.trim_start().starts_with(&format!("{t}="))
            })
            .map(|i| i + 1);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const EXAMPLE: &str = include_str!("../../examples/processing-record.toml");

    #[test]
    fn the_example_file_parses_and_its_json_is_canonical() {
        let r = ProcessingRecord::from_toml(EXAMPLE).unwrap();
        let json = r.canonical_json();
        assert!(json.starts_with("{\"categories\":["), "{json}");
        // Compact and key-sorted: re-encoding its own parse changes nothing.
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value.to_string(), json);
        assert!(!json.contains('\n'));
        let back = ProcessingRecord::from_canonical_json(&json).unwrap();
        assert_eq!(back, r);
        assert_eq!(r.sha256(), sha256_hex(&json));
        assert_eq!(r.sha256().len(), 64);
        // Not canonical: same content, other key order.
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        let pretty = serde_json::to_string_pretty(&v).unwrap();
        assert!(
            ProcessingRecord::from_canonical_json(&pretty)
                .unwrap_err()
                .contains("canonical")
        );
    }

    #[test]
    fn each_bad_field_is_named() {
        let ok = ProcessingRecord::from_toml(EXAMPLE).unwrap().to_raw();
        let bad = |f: fn(&mut RawRecord)| {
            let mut r = ok.clone();
            f(&mut r);
            ProcessingRecord::parse(&r).unwrap_err()
        };
        assert!(bad(|r| r.purposes.clear()).starts_with("purposes: name at least one"));
        assert!(bad(|r| r.purposes[0] = "a\u{7}b".into()).starts_with("purposes[0] must not"));
        assert!(bad(|r| r.controller.name = " ".into()).starts_with("controller.name is required"));
        assert!(
            bad(|r| r.recipients = vec!["x".into(); MAX_ITEMS + 1])
                .starts_with("recipients: at most")
        );
        assert!(
            bad(|r| r.categories[0] = "x".repeat(MAX_ITEM_CHARS + 1))
                .starts_with("categories[0] is longer")
        );
        assert!(
            bad(|r| r.transfers[0].country = "XX".into())
                .starts_with("transfers[0].country: \"XX\" is not an ISO 3166-1")
        );
        assert!(bad(|r| r.retention = "a\u{202E}".into()).starts_with("retention must not"));
        // An empty representative is none.
        let mut r = ok.clone();
        r.representative = Some(RawContact::default());
        assert_eq!(ProcessingRecord::parse(&r).unwrap().representative, None);
    }

    #[test]
    fn toml_errors_name_the_line_and_the_field() {
        let e = ProcessingRecord::from_toml(&EXAMPLE.replace("purposes = [", "purposes = [\"\","))
            .unwrap_err();
        let n = EXAMPLE
            .lines()
            .position(|l| l.starts_with("purposes"))
            .unwrap()
            + 1;
        assert!(e.starts_with(&format!("line {n}: purposes[0]")), "{e}");

        let e =
            ProcessingRecord::from_toml(&EXAMPLE.replace("country = \"CH\"", "country = \"ZZ\""))
                .unwrap_err();
        let n = EXAMPLE
            .lines()
            .position(|l| l.contains("country = \"CH\""))
            .unwrap()
            + 1;
        assert!(
            e.starts_with(&format!("line {n}: transfers[1].country")),
            "{e}"
        );

        let e = ProcessingRecord::from_toml("retention = 3\n").unwrap_err();
        assert!(e.starts_with("line 1"), "{e}");
        assert!(e.contains("retention") || e.contains("string"), "{e}");

        let e = ProcessingRecord::from_toml(&EXAMPLE.replace("retention =", "retentoin ="))
            .unwrap_err();
        assert!(e.contains("retentoin"), "{e}");
        assert!(e.starts_with("line "), "{e}");
    }
}
