//! The register of processing (GDPR Art 30(2); docs/compliance/processing.md):
//! the [`ProcessingRegister`], every version of every tenant's declared
//! record as a fold over the `processing.recorded` entries (rebuilt from the
//! log at start-up, [`Broker::load_processing`], and advanced with the
//! entries each commit appends, under one lock held across the commit); the
//! use cases that set and read it; and the facts daypass adds itself to the
//! document (sub-processors in effect, countries, the security measures it
//! enforces with their live values, the log position).
//!
//! Not here: parsing a record ([`crate::domain::processing`]), the
//! document's text ([`super::processing_documents`]), who may read which
//! tenant's record ([`crate::policy`]).

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use tokio::sync::Mutex;

use super::{
    Broker, BrokerError, Result,
    incident_documents::DocFormat,
    processing_documents::{self, Facts, LogPosition, Measure},
};
use crate::{
    audit::Entry,
    clock::Timestamp,
    domain::{
        Draft, EventKind, Name, ProcessingRecord, Role, TenantRecord, detail,
        processing::{read_entry, sha256_hex},
    },
    ledger::{Committed, LedgerError, Receipt},
    policy::{Caller, may_read_processing, may_read_whole_processing_register},
};

/// One version of a tenant's record, as its entry tells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedVersion {
    pub version: u32,
    pub recorded_at: Timestamp,
    /// The entry's actor (`staff/ada`).
    pub recorded_by: String,
    pub sha256: String,
    /// The `processing.recorded` entry.
    pub seq: u64,
    /// Its `record` detail, exactly.
    pub json: String,
    pub record: ProcessingRecord,
}

/// Every version of every tenant's record: a fold over the log.
#[derive(Clone, Debug, Default)]
pub struct ProcessingRegister {
    tenants: BTreeMap<Name, Vec<RecordedVersion>>,
}

impl ProcessingRegister {
    /// Applies one entry (other kinds change nothing), or says why it
    /// contradicts the register; a contradicting entry changes nothing.
    pub fn apply(&mut self, e: &Entry) -> std::result::Result<(), String> {
        if EventKind::parse(&e.kind) != Some(EventKind::ProcessingRecorded) {
            return Ok(());
        }
        let tenant = Name::parse(&e.tenant).map_err(|why| format!("tenant: {why}"))?;
        let (version, record) = read_entry(&e.details)?;
        let next = self.versions(&tenant).len() as u32 + 1;
        if version != next {
            return Err(format!(
                "version {version} of tenant {tenant}'s record; the next is {next}"
            ));
        }
        self.tenants
            .entry(tenant)
            .or_default()
            .push(RecordedVersion {
                version,
                recorded_at: e.timestamp,
                recorded_by: e.actor.clone(),
                sha256: e.details.get(detail::SHA256).cloned().unwrap_or_default(),
                seq: e.seq,
                json: e.details.get(detail::RECORD).cloned().unwrap_or_default(),
                record,
            });
        Ok(())
    }

    /// Oldest first; empty for a tenant without a record.
    pub fn versions(&self, tenant: &Name) -> &[RecordedVersion] {
        self.tenants
            .get(tenant)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    pub fn current(&self, tenant: &Name) -> Option<&RecordedVersion> {
        self.versions(tenant).last()
    }

    pub fn version(&self, tenant: &Name, version: u32) -> Option<&RecordedVersion> {
        self.versions(tenant).iter().find(|v| v.version == version)
    }

    /// Versions recorded, over all tenants.
    pub fn len(&self) -> usize {
        self.tenants.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.tenants.is_empty()
    }
}

/// The register behind its lock, held by the [`Broker`].
#[derive(Debug, Default)]
pub struct ProcessingBook {
    register: Mutex<ProcessingRegister>,
}

/// What setting a record did.
#[derive(Clone, Debug)]
pub enum Setting {
    /// A new version, with the receipt of its entry.
    Recorded(RecordedVersion, Receipt),
    /// The content was the current version's: nothing was written.
    Unchanged(RecordedVersion),
}

/// Which part of the register a document shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DocScope {
    /// One tenant, its current version or the one named.
    Tenant { tenant: Name, version: Option<u32> },
    /// Every tenant (Art 2.6: the register shown on request).
    All,
}

impl Broker {
    /// Rebuilds the register from the whole log (start-up).
    pub async fn load_processing(&self) -> Result<usize> {
        let mut reg = self.processing.register.lock().await;
        *reg = ProcessingRegister::default();
        for item in self.ledger.entries_from(0) {
            let s = item?;
            if let Err(why) = reg.apply(&s.entry) {
                // `audit check` reports it; the register skips it.
                tracing::warn!(seq = s.entry.seq, %why, "a processing.recorded entry contradicts the log");
            }
        }
        Ok(reg.len())
    }

    /// Records `record` as the tenant's next version, or, if it is the
    /// current version's content, nothing.
    pub async fn set_processing_record(
        &self,
        caller: &Caller,
        tenant: &Name,
        record: ProcessingRecord,
    ) -> Result<Setting> {
        let mut reg = self.processing.register.lock().await;
        let json = record.canonical_json();
        let sha = sha256_hex(&json);
        let actor = caller.actor();
        let (unchanged, c) = self
            .ledger
            .commit(&*self.clock, |v, b, _| {
                let Some(rec) = v.tenant(tenant)? else {
                    return Err(unknown_tenant(tenant));
                };
                if let Some(at) = rec.terminated_at {
                    return Err(BrokerError::FailedPrecondition(format!(
                        "tenant {tenant} was terminated on {}: its record of processing is closed \
                         (the versions recorded are kept, as the processor's record of what it did)",
                        at.to_rfc3339()
                    )));
                }
                if let Some(cur) = reg.current(tenant).filter(|c| c.sha256 == sha) {
                    return Ok(Some(cur.clone()));
                }
                let version = reg.versions(tenant).len() as u32 + 1;
                b.log(
                    Draft::new(actor.clone(), tenant.as_str(), EventKind::ProcessingRecorded)
                        .with(detail::VERSION, version)
                        .with(detail::SHA256, &sha)
                        .with(detail::RECORD, &json),
                );
                Ok(None)
            })
            .await?;
        if let Some(cur) = unchanged {
            return Ok(Setting::Unchanged(cur));
        }
        let c = c.ok_or_else(|| {
            BrokerError::Store(LedgerError::Unavailable("no entry was written".into()))
        })?;
        apply(&mut reg, &c);
        let cur = reg
            .current(tenant)
            .cloned()
            .ok_or_else(|| no_record(tenant))?;
        Ok(Setting::Recorded(cur, c.receipt))
    }

    /// One version (default: the current one) of a tenant's record.
    pub async fn processing_record(
        &self,
        caller: &Caller,
        tenant: &Name,
        version: Option<u32>,
    ) -> Result<RecordedVersion> {
        self.readable_tenant(caller, tenant)?;
        let reg = self.processing.register.lock().await;
        pick(&reg, tenant, version).cloned()
    }

    /// The tenant's version history, oldest first.
    pub async fn processing_history(
        &self,
        caller: &Caller,
        tenant: &Name,
    ) -> Result<Vec<RecordedVersion>> {
        self.readable_tenant(caller, tenant)?;
        Ok(self
            .processing
            .register
            .lock()
            .await
            .versions(tenant)
            .to_vec())
    }

    /// The register as a document: the declared records and the facts
    /// daypass knows itself, with the log position it was made at.
    pub async fn processing_document(
        &self,
        caller: &Caller,
        scope: DocScope,
        format: DocFormat,
    ) -> Result<String> {
        let tenants: Vec<(TenantRecord, Option<u32>)> = match &scope {
            DocScope::Tenant { tenant, version } => {
                vec![(self.readable_tenant(caller, tenant)?, *version)]
            }
            DocScope::All if may_read_whole_processing_register(caller) => self
                .ledger
                .all_tenants()?
                .into_iter()
                .map(|t| (t, None))
                .collect(),
            DocScope::All => {
                return Err(BrokerError::PermissionDenied(format!(
                    "{} may read only its own record of processing: ask for the tenant, not all",
                    caller.actor()
                )));
            }
        };
        // The log position first: the facts below are at least as new.
        let log = self.ledger.latest_checkpoint().map(|cp| LogPosition {
            tree_size: cp.size,
            root_hex: hex::encode(cp.root),
            root_base64: base64::engine::general_purpose::STANDARD.encode(cp.root),
            checkpoint: cp.note.to_string(),
        });
        let now = self.now();
        let grants = self.ledger.all_grants()?;
        let location = self.location.snapshot();
        let rules = self.location.rules().clone();
        let reg = self.processing.register.lock().await;
        let mut facts = Vec::with_capacity(tenants.len());
        for (t, version) in tenants {
            let declared = match version {
                Some(_) => Some(pick(&reg, &t.name, version)?.clone()),
                None => reg.current(&t.name).cloned(),
            };
            let subprocessors = location
                .subprocessors()
                .into_iter()
                .filter(|sp| {
                    !location
                        .objections(&t.name)
                        .iter()
                        .any(|(n, _)| *n == sp.name)
                })
                .filter_map(|sp| {
                    let from = sp.announced_at.plus_secs(rules.notice_secs);
                    (now >= from).then_some((sp, from))
                })
                .collect();
            let (allowed_countries, own_countries) = location.allowed_countries(&rules, &t.name);
            let mut holders: BTreeMap<String, BTreeSet<Name>> = BTreeMap::new();
            for g in grants
                .iter()
                .filter(|g| g.tenant == t.name && g.activated_at.is_some())
            {
                let country = location
                    .location(&g.holder)
                    .country
                    .map_or_else(|| "unknown".to_owned(), |c| c.to_string());
                holders.entry(country).or_default().insert(g.holder.clone());
            }
            facts.push(Facts {
                measures: self.measures(&t),
                tenant: t,
                declared,
                subprocessors,
                allowed_countries,
                own_countries,
                holder_countries: holders.into_iter().map(|(c, p)| (c, p.len())).collect(),
            });
        }
        drop(reg);
        Ok(processing_documents::register(
            &facts,
            scope == DocScope::All,
            log.as_ref(),
            now,
            format,
        ))
    }

    /// The security measures daypass enforces for `t`, with the values in
    /// force now.
    fn measures(&self, t: &TenantRecord) -> Vec<Measure> {
        let l = &self.limits;
        let hours = l.max_duration_secs as f64 / 3600.0;
        let holders: Vec<&str> = Role::ALL
            .into_iter()
            .filter(|r| r.may_hold_grants())
            .map(Role::as_str)
            .collect();
        let sealing = match (t.shredded_at, self.ledger.tenant_keys().is_some()) {
            (Some(at), _) => format!(
                "the tenant's key was destroyed on {}: its sealed details are gone",
                at.to_rfc3339()
            ),
            (None, true) => {
                "reasons, tickets, notes, actions and resources in the tenant's entries and grant \
                 records are sealed with the tenant's own key (AES-256-GCM)"
                    .to_owned()
            }
            (None, false) => "not in use on this store (no tenant keys)".to_owned(),
        };
        let declaration = match (&l.declaration_version, t.require_declaration) {
            (Some(v), _) => format!("required of every grant holder (version {v})"),
            (None, true) => "required by this tenant of every grant holder".to_owned(),
            (None, false) => "not required".to_owned(),
        };
        vec![
            Measure::new(
                "maximum grant duration",
                format!(
                    "{hours:.1} h ({} s); never more than 24 h",
                    l.max_duration_secs
                ),
            ),
            Measure::new(
                "mutual TLS",
                "every call; clients present certificates issued by the daypass CA",
            ),
            Measure::new(
                "signed, hash-chained log",
                "every change is an entry in a hash chain and an RFC 6962 Merkle tree with \
                 signed checkpoints; the tenant can prove its entries with inclusion proofs",
            ),
            Measure::new("sealing of personal details per tenant", sealing),
            Measure::new(
                "offboarding ends access",
                "offboarding a person revokes their live grants in the same commit",
            ),
            Measure::new("roles allowed to hold grants", holders.join(", ")),
            Measure::new("maximum root holders", l.max_root_holders.to_string()),
            Measure::new(
                "approval of grants",
                match t.approval {
                    crate::domain::Approval::Auto => {
                        "automatic (active at once, logged)".to_owned()
                    }
                    crate::domain::Approval::TenantOrPeer => {
                        "each grant approved by the tenant or a colleague of the requester"
                            .to_owned()
                    }
                    a => format!(
                        "each grant approved by {} (policy {})",
                        a.describe(),
                        t.policy_name()
                    ),
                },
            ),
            Measure::new(
                "ticket required",
                if t.require_ticket { "yes" } else { "no" },
            ),
            Measure::new("confidentiality declaration", declaration),
            Measure::new(
                "recertification of grant holders",
                match l.recertify_days {
                    0 => "not required".to_owned(),
                    d => format!(
                        "every {d} days by an admin other than the holder; lapsed holders get no grants"
                    ),
                },
            ),
        ]
    }

    /// The tenant's record if `caller` may read its record of processing;
    /// an unknown tenant and another tenant's are both NOT_FOUND.
    fn readable_tenant(&self, caller: &Caller, tenant: &Name) -> Result<TenantRecord> {
        if !may_read_processing(caller, tenant) {
            return Err(unknown_tenant(tenant));
        }
        self.ledger
            .tenant(tenant)?
            .ok_or_else(|| unknown_tenant(tenant))
    }
}

fn pick<'r>(
    reg: &'r ProcessingRegister,
    tenant: &Name,
    version: Option<u32>,
) -> Result<&'r RecordedVersion> {
    match version {
        None => reg.current(tenant).ok_or_else(|| no_record(tenant)),
        Some(v) => reg.version(tenant, v).ok_or_else(|| {
            let n = reg.versions(tenant).len();
            BrokerError::NotFound(format!(
                "tenant {tenant} has no version {v} of its record of processing (it has {n}; \
                 `daypass tenant processing history {tenant}` lists them)"
            ))
        }),
    }
}

fn apply(reg: &mut ProcessingRegister, c: &Committed) {
    for s in &c.entries {
        if let Err(why) = reg.apply(&s.entry) {
            tracing::error!(seq = s.entry.seq, %why, "a processing.recorded entry just written contradicts the register");
        }
    }
}

fn unknown_tenant(tenant: &Name) -> BrokerError {
    BrokerError::NotFound(format!(
        "tenant {tenant} does not exist; `daypass tenant list` shows the tenants"
    ))
}

fn no_record(tenant: &Name) -> BrokerError {
    BrokerError::NotFound(format!(
        "tenant {tenant} has no record of processing yet; an admin sets it with \
         `daypass tenant processing set {tenant} --file record.toml`"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64, version: &str, json: &str, sha: &str) -> Entry {
        Entry {
            seq,
            timestamp: Timestamp(1_000 + seq as i64),
            actor: "staff/ada".into(),
            tenant: "acme".into(),
            kind: "processing.recorded".into(),
            details: [
                (detail::VERSION, version),
                (detail::RECORD, json),
                (detail::SHA256, sha),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
            sealed: None,
            prev_hash: [0; 32],
        }
    }

    #[test]
    fn versions_follow_each_other_and_the_hash_must_match() {
        let rec =
            ProcessingRecord::from_toml(include_str!("../../examples/processing-record.toml"))
                .unwrap_or_else(|e| panic!("{e}"));
        let json = rec.canonical_json();
        let sha = rec.sha256();
        let mut reg = ProcessingRegister::default();
        assert!(reg.apply(&entry(1, "1", &json, &sha)).is_ok());
        assert!(
            reg.apply(&entry(2, "3", &json, &sha))
                .unwrap_err()
                .contains("the next is 2")
        );
        assert!(
            reg.apply(&entry(3, "2", &json, &"0".repeat(64)))
                .unwrap_err()
                .contains("sha256")
        );
        assert!(reg.apply(&entry(4, "2", &json, &sha)).is_ok());
        let acme = Name::parse("acme").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(reg.versions(&acme).len(), 2);
        assert_eq!(reg.current(&acme).map(|v| v.seq), Some(4));
        assert_eq!(reg.version(&acme, 1).map(|v| v.seq), Some(1));
    }
}
