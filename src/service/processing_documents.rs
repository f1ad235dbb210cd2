//! The register of processing as a document (GDPR Art 30(2), the
//! agreement's Art 2.6): for each tenant the record its admin declared
//! (version, when, sha256, every Art 30(2) field) and, marked as such, the
//! facts daypass knows itself (sub-processors in effect, allowed countries,
//! the countries of the staff who held its grants, the security measures it
//! enforces with their live values), with the log position the document
//! was made at. Markdown, HTML (everything escaped) or JSON (schema in
//! docs/compliance/processing.md). Pure functions of what they are given.
//!
//! Not here: gathering the facts ([`super::processing`]).

use serde_json::{Value, json};

use super::{
    incident_documents::{Doc, DocFormat, pretty, render},
    processing::RecordedVersion,
};
use crate::{
    clock::Timestamp,
    domain::{Country, Subprocessor, TenantRecord, processing::Contact},
};

/// The `document` member of the JSON form.
pub const JSON_DOCUMENT: &str = "record of processing activities (GDPR Art 30(2))";
/// The `schema` member of the JSON form (docs/compliance/processing.md).
pub const JSON_SCHEMA: &str = "daypass.processing-register.v1";

/// A security measure daypass enforces, with its value now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Measure {
    pub measure: String,
    pub value: String,
}

impl Measure {
    pub fn new(measure: &str, value: impl Into<String>) -> Measure {
        Measure {
            measure: measure.to_owned(),
            value: value.into(),
        }
    }
}

/// The latest signed checkpoint when the document was made.
#[derive(Clone, Debug)]
pub struct LogPosition {
    pub tree_size: u64,
    pub root_hex: String,
    /// As in the checkpoint's body.
    pub root_base64: String,
    /// The signed note itself.
    pub checkpoint: String,
}

/// One tenant's part of the register.
#[derive(Clone, Debug)]
pub struct Facts {
    pub tenant: TenantRecord,
    /// The declared record shown (None: none declared yet).
    pub declared: Option<RecordedVersion>,
    /// Sub-processors in effect: announced, notice period passed, not
    /// objected to; with the day from which they are.
    pub subprocessors: Vec<(Subprocessor, Timestamp)>,
    pub allowed_countries: Vec<Country>,
    /// The tenant's own list (else EU/EEA plus the adequacy list).
    pub own_countries: bool,
    /// (country or `unknown`, people) of the staff who held its grants.
    pub holder_countries: Vec<(String, usize)>,
    pub measures: Vec<Measure>,
}

/// The document for `tenants` (`whole`: the whole register).
pub fn register(
    tenants: &[Facts],
    whole: bool,
    log: Option<&LogPosition>,
    now: Timestamp,
    format: DocFormat,
) -> String {
    if format == DocFormat::Json {
        return pretty(&json!({
            "document": JSON_DOCUMENT,
            "schema": JSON_SCHEMA,
            "scope": if whole { "all" } else { "tenant" },
            "generated_at": now.to_string(),
            "log": log.map(|l| json!({
                "tree_size": l.tree_size,
                "root_hash_hex": l.root_hex,
                "root_hash_base64": l.root_base64,
                "checkpoint": l.checkpoint,
            })),
            "tenants": tenants.iter().map(tenant_json).collect::<Vec<_>>(),
        }));
    }
    let title = match (whole, tenants) {
        (false, [one]) => format!(
            "Record of processing (GDPR Art 30(2)): tenant {}",
            one.tenant.name
        ),
        _ => "Register of processing (GDPR Art 30(2)): all tenants".to_owned(),
    };
    let mut sections = vec![(
        "About this document".to_owned(),
        vec![
            format!("Generated: {now}"),
            match log {
                Some(l) => format!(
                    "Log position: tree size {}, root hash {} (base64 {}) of the latest signed checkpoint",
                    l.tree_size, l.root_hex, l.root_base64
                ),
                None => "Log position: the log is empty".to_owned(),
            },
            "Declared: what the company's admin recorded for the controller (the \
             `processing.recorded` entry named). Known to daypass: facts daypass derives \
             itself from its configuration, registers and log."
                .to_owned(),
        ],
    )];
    if whole {
        sections.push((
            "Tenants".to_owned(),
            tenants
                .iter()
                .map(|f| match &f.declared {
                    Some(d) => format!(
                        "{}: version {} of {}",
                        f.tenant.name, d.version, d.recorded_at
                    ),
                    None => format!("{}: no record declared yet", f.tenant.name),
                })
                .collect(),
        ));
    }
    for f in tenants {
        sections.extend(tenant_sections(f, whole));
    }
    render(&Doc { title, sections }, format)
}

fn tenant_sections(f: &Facts, whole: bool) -> Vec<(String, Vec<String>)> {
    let t = &f.tenant.name;
    let h = |s: &str| {
        if whole {
            format!("{t}: {s}")
        } else {
            s.to_owned()
        }
    };
    let mut out = Vec::new();
    let mut head = vec![format!("Tenant (controller's environment): {t}")];
    if let Some(at) = f.tenant.terminated_at {
        head.push(format!(
            "Terminated: {at} (the record is kept as the processor's record of what it did)"
        ));
    }
    match &f.declared {
        Some(d) => {
            head.push(format!(
                "Declared record: version {}, recorded {} by {}, log entry {}",
                d.version, d.recorded_at, d.recorded_by, d.seq
            ));
            head.push(format!("SHA-256 of its canonical JSON: {}", d.sha256));
        }
        None => head.push("Declared record: none yet".to_owned()),
    }
    out.push((h("Record"), head));
    if let Some(d) = &f.declared {
        let r = &d.record;
        out.push((
            h("(a) Controller, representative and the processor's contact point (declared)"),
            vec![
                format!("Controller: {}", contact(&r.controller)),
                format!(
                    "Controller's representative: {}",
                    r.representative.as_ref().map_or("none".to_owned(), contact)
                ),
                format!(
                    "Processor's data protection officer / contact point: {}",
                    contact(&r.processor_contact)
                ),
            ],
        ));
        out.push((
            h("(b) Categories of processing (declared)"),
            r.categories.clone(),
        ));
        out.push((h("Purposes (declared)"), r.purposes.clone()));
        out.push((
            h("Categories of data subjects (declared)"),
            r.data_subjects.clone(),
        ));
        out.push((
            h("Categories of personal data (declared)"),
            r.personal_data.clone(),
        ));
        out.push((h("Recipients (declared)"), or_none(r.recipients.clone())));
        out.push((
            h("(c) Transfers to third countries (declared)"),
            or_none(
                r.transfers
                    .iter()
                    .map(|t| format!("{}: {}", t.country, t.safeguard))
                    .collect(),
            ),
        ));
        out.push((h("Retention (declared)"), vec![r.retention.clone()]));
        out.push((
            h("(d) Technical and organisational security measures (declared)"),
            r.security_measures.clone(),
        ));
    }
    out.push((
        h("Sub-processors in effect (known to daypass)"),
        or_none(
            f.subprocessors
                .iter()
                .map(|(sp, from)| {
                    format!(
                        "{} ({}): {}; announced {}, in effect from {}",
                        sp.name, sp.country, sp.purpose, sp.announced_at, from
                    )
                })
                .collect(),
        ),
    ));
    out.push((
        h("Countries (known to daypass)"),
        vec![
            format!(
                "Allowed for grant holders ({}): {}",
                if f.own_countries {
                    "the tenant's own list"
                } else {
                    "EU/EEA plus the adequacy list"
                },
                f.allowed_countries
                    .iter()
                    .map(Country::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            format!(
                "Countries of the staff who held grants (as recorded now): {}",
                if f.holder_countries.is_empty() {
                    "none (no grant was active yet)".to_owned()
                } else {
                    f.holder_countries
                        .iter()
                        .map(|(c, n)| {
                            format!("{c} ({n} {})", if *n == 1 { "person" } else { "people" })
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ),
        ],
    ));
    out.push((
        h("Security measures daypass enforces (known to daypass, live values)"),
        f.measures
            .iter()
            .map(|m| format!("{}: {}", m.measure, m.value))
            .collect(),
    ));
    out
}

fn tenant_json(f: &Facts) -> Value {
    json!({
        "tenant": f.tenant.name.as_str(),
        "terminated_at": f.tenant.terminated_at.map(|t| t.to_string()),
        "declared": f.declared.as_ref().map(|d| json!({
            "version": d.version,
            "recorded_at": d.recorded_at.to_string(),
            "recorded_by": d.recorded_by,
            "sha256": d.sha256,
            "seq": d.seq,
            "record": serde_json::to_value(&d.record).unwrap_or(Value::Null),
        })),
        "known_to_daypass": {
            "subprocessors_in_effect": f.subprocessors.iter().map(|(sp, from)| json!({
                "name": sp.name.as_str(),
                "country": sp.country.as_str(),
                "purpose": sp.purpose,
                "announced_at": sp.announced_at.to_string(),
                "in_effect_from": from.to_string(),
            })).collect::<Vec<_>>(),
            "allowed_countries": f.allowed_countries.iter().map(Country::as_str).collect::<Vec<_>>(),
            "allowed_countries_own_list": f.own_countries,
            "grant_holder_countries": f.holder_countries.iter().map(|(c, n)| json!({
                "country": c, "people": n,
            })).collect::<Vec<_>>(),
            "security_measures": f.measures.iter().map(|m| json!({
                "measure": m.measure, "value": m.value,
            })).collect::<Vec<_>>(),
        },
    })
}

fn contact(c: &Contact) -> String {
    format!("{} ({})", c.name, c.contact)
}

fn or_none(v: Vec<String>) -> Vec<String> {
    if v.is_empty() {
        vec!["none".to_owned()]
    } else {
        v
    }
}
