//! The breach register's inputs, parsed once (Art 7.3 a–d of the agreement,
//! GDPR Art 33(5)): a new incident ([`IncidentReport`]), an append-only
//! [`IncidentUpdate`] and a [`Notification`] of one tenant, and the
//! incident's id ([`IncidentId`]). Everything here is checked without the
//! server's state; what needs it (the tenants exist, the evidence entries
//! exist, `became_known_at` is not in the future) is checked by the use case
//! ([`crate::service::incidents`]).
//!
//! Not here: the incident as the log tells it (see
//! [`crate::audit::state::incidents`]), the documents (see
//! [`crate::service::incident_documents`]).

use std::fmt;

use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use super::{Name, text::free_text};
use crate::clock::Timestamp;

/// Longest free-text description (nature, consequences, measures, facts).
pub const MAX_DESCRIPTION_CHARS: usize = 4000;
/// Longest short field (a category, a name, a channel).
pub const MAX_SHORT_CHARS: usize = 200;
/// Longest e-mail address (RFC 5321's path limit).
pub const MAX_EMAIL_CHARS: usize = 254;
/// Most categories in one list.
pub const MAX_CATEGORIES: usize = 50;
/// Most affected tenants of one incident.
pub const MAX_TENANTS: usize = 100;
/// Most evidence entries named at once.
pub const MAX_EVIDENCE: usize = 1000;
/// The agreement's notification deadline: 24 h after the breach became known.
pub const NOTIFY_WITHIN_SECS: i64 = 24 * 3600;

/// `i-` followed by 24 lowercase hex digits (96 random bits).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct IncidentId(String);

impl IncidentId {
    pub fn random() -> IncidentId {
        let mut bytes = [0u8; 12];
        SystemRandom::new()
            .fill(&mut bytes)
            .unwrap_or_else(|_| panic!("the operating system's random number generator failed"));
        IncidentId(format!("i-{}", hex::encode(bytes)))
    }

    /// An id as a peer sent it: `i-` and 24 lowercase hex digits.
    pub fn parse(s: &str) -> Result<IncidentId, String> {
        let ok = s.strip_prefix("i-").is_some_and(|hex| {
            hex.len() == 24 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        });
        if ok {
            Ok(IncidentId(s.to_owned()))
        } else {
            Err(format!(
                "id {:?} is not an incident id (i- and 24 hex digits)",
                super::truncate(s, 40)
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IncidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The contact point where more information can be obtained (Art 7.3 b):
/// the data protection officer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ContactPoint {
    pub name: String,
    pub email: String,
}

/// A breach as first recorded: every field of Art 7.3 a–d, when it became
/// known, whom it affects and which log entries show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IncidentReport {
    /// (a) the nature of the breach.
    pub nature: String,
    /// (a) categories of data subjects concerned.
    pub subject_categories: Vec<String>,
    /// (a) categories of personal data records concerned.
    pub data_categories: Vec<String>,
    /// (a) approximate number of data subjects concerned.
    pub approx_subjects: u64,
    /// (a) approximate number of personal data records concerned.
    pub approx_records: u64,
    /// (b) the contact point.
    pub contact: ContactPoint,
    /// (c) the likely consequences.
    pub consequences: String,
    /// (d) the measures taken or proposed.
    pub measures: String,
    /// When the breach became known (the 24 h clock starts here).
    pub became_known_at: Timestamp,
    /// The tenants (controllers) whose data it concerns, at least one.
    pub tenants: Vec<Name>,
    /// Log entries that show it (seq numbers).
    pub evidence: Vec<u64>,
}

/// What an update adds. Nothing is overwritten: every update is kept, in
/// order, beside the original report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IncidentUpdate {
    /// New facts (what happened, what was found).
    pub facts: String,
    /// Measures taken or proposed since.
    pub measures: String,
    /// Further likely consequences.
    pub consequences: String,
    /// More log entries as evidence.
    pub evidence: Vec<u64>,
}

/// A tenant was told: when, how and by whom.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Notification {
    #[serde(serialize_with = "name_str")]
    pub tenant: Name,
    pub notified_at: Timestamp,
    /// How: e-mail to the tenant's DPO, phone, ticket, ...
    pub channel: String,
    /// The person who told them.
    pub by: String,
}

fn name_str<S: serde::Serializer>(n: &Name, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(n.as_str())
}

/// The raw fields of a new incident, as a peer sent them.
pub struct RawReport<'a> {
    pub nature: &'a str,
    pub subject_categories: &'a [String],
    pub data_categories: &'a [String],
    pub approx_subjects: i64,
    pub approx_records: i64,
    pub contact_name: &'a str,
    pub contact_email: &'a str,
    pub consequences: &'a str,
    pub measures: &'a str,
    pub became_known_at_ms: i64,
    pub tenants: &'a [String],
    pub evidence: &'a [u64],
}

impl IncidentReport {
    /// Parses every field; the error names the field and what to fix.
    pub fn parse(r: &RawReport<'_>) -> Result<IncidentReport, String> {
        if r.became_known_at_ms <= 0 {
            return Err("became_known_at is required (milliseconds since the epoch)".into());
        }
        let tenants = tenants(r.tenants)?;
        Ok(IncidentReport {
            nature: description("nature", r.nature, true)?,
            subject_categories: categories("data_subject_categories", r.subject_categories)?,
            data_categories: categories("personal_data_categories", r.data_categories)?,
            approx_subjects: count("approx_data_subjects", r.approx_subjects)?,
            approx_records: count("approx_records", r.approx_records)?,
            contact: ContactPoint {
                name: free_text("contact_name", r.contact_name, MAX_SHORT_CHARS, true)?,
                email: email(r.contact_email)?,
            },
            consequences: description("likely_consequences", r.consequences, true)?,
            measures: description("measures", r.measures, true)?,
            became_known_at: Timestamp(r.became_known_at_ms),
            tenants,
            evidence: evidence(r.evidence)?,
        })
    }

    /// When the affected tenants must have been told.
    pub fn due_at(&self) -> Timestamp {
        self.became_known_at.plus_secs(NOTIFY_WITHIN_SECS)
    }
}

impl IncidentUpdate {
    /// At least one of the fields must say something.
    pub fn parse(
        facts: &str,
        measures: &str,
        consequences: &str,
        evidence_seqs: &[u64],
    ) -> Result<IncidentUpdate, String> {
        let u = IncidentUpdate {
            facts: description("facts", facts, false)?,
            measures: description("measures", measures, false)?,
            consequences: description("likely_consequences", consequences, false)?,
            evidence: evidence(evidence_seqs)?,
        };
        if u.facts.is_empty()
            && u.measures.is_empty()
            && u.consequences.is_empty()
            && u.evidence.is_empty()
        {
            return Err(
                "facts: an update must add facts, measures, likely_consequences or evidence".into(),
            );
        }
        Ok(u)
    }
}

impl Notification {
    pub fn parse(
        tenant: &str,
        notified_at_ms: i64,
        channel: &str,
        by: &str,
    ) -> Result<Notification, String> {
        if notified_at_ms <= 0 {
            return Err("notified_at is required (milliseconds since the epoch)".into());
        }
        Ok(Notification {
            tenant: Name::parse(tenant).map_err(|e| format!("tenant: {e}"))?,
            notified_at: Timestamp(notified_at_ms),
            channel: free_text("channel", channel, MAX_SHORT_CHARS, true)?,
            by: free_text("notified_by", by, MAX_SHORT_CHARS, true)?,
        })
    }
}

/// Multi-line free text: each line is checked like any free text.
fn description(field: &str, value: &str, required: bool) -> Result<String, String> {
    let v = value.trim();
    if required && v.is_empty() {
        return Err(format!("{field} is required and must not be blank"));
    }
    if v.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(format!(
            "{field} is longer than {MAX_DESCRIPTION_CHARS} characters"
        ));
    }
    let lines = v
        .split('\n')
        .map(|l| {
            free_text(
                field,
                l.trim_end_matches('\r'),
                MAX_DESCRIPTION_CHARS,
                false,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(lines.join("\n"))
}

fn categories(field: &str, values: &[String]) -> Result<Vec<String>, String> {
    if values.is_empty() {
        return Err(format!("{field}: name at least one category"));
    }
    if values.len() > MAX_CATEGORIES {
        return Err(format!("{field}: at most {MAX_CATEGORIES} categories"));
    }
    values
        .iter()
        .map(|v| free_text(field, v, MAX_SHORT_CHARS, true))
        .collect()
}

fn count(field: &str, n: i64) -> Result<u64, String> {
    u64::try_from(n).map_err(|_| format!("{field} must not be negative (got {n})"))
}

fn email(value: &str) -> Result<String, String> {
    let v = free_text("contact_email", value, MAX_EMAIL_CHARS, true)?;
    let ok = v
        .split_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
        && !v.contains(char::is_whitespace);
    if ok {
        Ok(v)
    } else {
        Err(format!(
            "contact_email {:?} is not an e-mail address",
            super::truncate(&v, 40)
        ))
    }
}

fn tenants(values: &[String]) -> Result<Vec<Name>, String> {
    if values.is_empty() {
        return Err("tenants: name at least one affected tenant".into());
    }
    if values.len() > MAX_TENANTS {
        return Err(format!("tenants: at most {MAX_TENANTS} per incident"));
    }
    let mut out: Vec<Name> = Vec::with_capacity(values.len());
    for v in values {
        let n = Name::parse(v).map_err(|e| format!("tenants: {e}"))?;
        if !out.contains(&n) {
            out.push(n);
        }
    }
    Ok(out)
}

fn evidence(seqs: &[u64]) -> Result<Vec<u64>, String> {
    if seqs.len() > MAX_EVIDENCE {
        return Err(format!(
            "evidence_seqs: at most {MAX_EVIDENCE} entries at once"
        ));
    }
    let mut out = seqs.to_vec();
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw<'a>(tenants: &'a [String], subjects: &'a [String], data: &'a [String]) -> RawReport<'a> {
        RawReport {
            nature: "laptop stolen",
            subject_categories: subjects,
            data_categories: data,
            approx_subjects: 10,
            approx_records: 20,
            contact_name: "Dana DPO",
            contact_email: "dpo@example.com",
            consequences: "phishing",
            measures: "disk encrypted",
            became_known_at_ms: 1_000,
            tenants,
            evidence: &[],
        }
    }

    #[test]
    fn a_report_parses_and_each_bad_field_is_named() {
        let t = vec!["acme".to_owned()];
        let c = vec!["customers".to_owned()];
        let ok = IncidentReport::parse(&raw(&t, &c, &c)).unwrap();
        assert_eq!(ok.due_at(), Timestamp(1_000 + NOTIFY_WITHIN_SECS * 1000));

        let mut r = raw(&t, &c, &c);
        r.approx_records = -1;
        assert!(
            IncidentReport::parse(&r)
                .unwrap_err()
                .contains("approx_records")
        );
        let mut r = raw(&t, &c, &c);
        r.nature = "  ";
        assert!(IncidentReport::parse(&r).unwrap_err().starts_with("nature"));
        let mut r = raw(&t, &c, &c);
        r.contact_email = "nobody";
        assert!(
            IncidentReport::parse(&r)
                .unwrap_err()
                .contains("contact_email")
        );
        assert!(
            IncidentReport::parse(&raw(&[], &c, &c))
                .unwrap_err()
                .starts_with("tenants")
        );
    }

    #[test]
    fn descriptions_keep_lines_and_refuse_other_control_characters() {
        assert_eq!(description("facts", "a\r\nb", true).unwrap(), "a\nb");
        assert!(description("facts", "a\u{7}", true).is_err());
        let long = "x".repeat(MAX_DESCRIPTION_CHARS + 1);
        assert!(
            description("facts", &long, true)
                .unwrap_err()
                .contains("longer")
        );
    }

    #[test]
    fn an_empty_update_is_refused() {
        assert!(IncidentUpdate::parse("", " ", "", &[]).is_err());
        assert!(IncidentUpdate::parse("", "", "", &[3]).is_ok());
    }
}
