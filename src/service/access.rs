//! What tenants ask and tell: may this engineer act now
//! ([`Broker::validate`]), and what they did ([`Broker::record_access`]).
//! Both decide under the writer lock, so the log order is the decision
//! order: no `validation.allowed` can follow the revocation it missed.

use super::{Broker, BrokerError, Result, not_found};
use crate::{
    audit::Hash,
    clock::Timestamp,
    domain::{
        DenyReason, EventKind, Grant, GrantId, Name, Principal, PrincipalKind, detail, truncate,
    },
    ledger::{LedgerError, Receipt},
    policy::Caller,
    service::commands::{RecordAccess, Subject, ValidateGrant},
};

/// How far in the future a reported access may be (clock skew).
const MAX_REPORT_SKEW_MS: i64 = 5 * 60 * 1000;
/// How old a reported access may be.
const MAX_REPORT_AGE_MS: i64 = 7 * 24 * 3600 * 1000;

/// What a tenant's validation concluded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validation {
    pub allowed: Result<(), DenyReason>,
    /// The grant, when the calling tenant may know of it.
    pub grant: Option<Grant>,
    pub log_seq: u64,
    pub receipt: Receipt,
}

/// How an access report was recorded.
#[derive(Clone, Debug)]
pub struct AccessRecord {
    pub seq: u64,
    pub hash: Hash,
    /// None for a duplicate (nothing new was written).
    pub receipt: Option<Receipt>,
    /// The report id had been recorded before: `seq` and `hash` are the
    /// first report's entry.
    pub duplicate: bool,
    /// The grant was active when the access happened.
    pub within_grant: bool,
}

impl ValidateGrant {
    /// A subject as a tenant sends it: a grant id, or a staff name or
    /// principal URI (`trust_domain` is the server's). `None` when it is
    /// blank or missing: that names nobody and is refused, not decided.
    pub fn parse(
        by_grant: Option<&str>,
        by_staff: Option<&str>,
        trust_domain: &str,
    ) -> Option<ValidateGrant> {
        let (subject, asked) = match (by_grant, by_staff) {
            (Some(id), None) if !id.trim().is_empty() => {
                (Subject::Grant(GrantId::parse(id.trim())), id)
            }
            (None, Some(staff)) if !staff.trim().is_empty() => {
                (Subject::Staff(staff_name(staff, trust_domain)), staff)
            }
            _ => return None,
        };
        Some(ValidateGrant {
            subject,
            asked: truncate(asked, 80),
            resource: None,
        })
    }
}

/// A staff member named by a tenant: `alice`, `staff/alice` or a
/// principal URI.
fn staff_name(s: &str, trust_domain: &str) -> Option<Name> {
    let s = s.trim();
    if let Ok(p) = Principal::parse_uri(s, trust_domain) {
        return (p.kind == PrincipalKind::Staff).then_some(p.name);
    }
    Name::parse(s.strip_prefix("staff/").unwrap_or(s)).ok()
}

impl Broker {
    /// A tenant asks whether an engineer may act in its environment now.
    /// A grant of another tenant is answered exactly like an unknown one.
    pub async fn validate(&self, caller: &Caller, cmd: ValidateGrant) -> Result<Validation> {
        let Some(tenant) = caller.tenant() else {
            return Err(BrokerError::PermissionDenied(
                "only tenants validate grants".into(),
            ));
        };
        let ((allowed, grant, activated), c) = self
            .ledger
            .commit(&*self.clock, |s, b, now| {
                // Another tenant's grant is answered exactly like an unknown
                // one, with the same work (one index lookup decides).
                let mut grant = match &cmd.subject {
                    Subject::Grant(Some(id)) => s.tenant_grant(tenant, id)?,
                    Subject::Staff(Some(name)) => s.latest_grant(name, tenant)?,
                    Subject::Grant(None) | Subject::Staff(None) => None,
                };
                // A scheduled grant admits from its start second, even if
                // the sweeper has not run: its activation is logged first.
                let mut activated = false;
                if let Some(g) = grant.as_mut() {
                    if self.start_if_due(s, b, g, now)? {
                        b.put_grant(g.clone());
                        activated = true;
                    }
                }
                let allowed = match &grant {
                    None => Err(DenyReason::Unknown),
                    Some(g) => match s.staff(&g.holder)? {
                        Some(rec) if !rec.is_active() => Err(DenyReason::Offboarded),
                        _ => g.admits_to(now, cmd.resource.as_ref()),
                    },
                };
                let kind = if allowed.is_ok() {
                    EventKind::ValidationAllowed
                } else {
                    EventKind::ValidationDenied
                };
                let mut draft = match &grant {
                    Some(g) => g.draft(&caller.actor(), kind),
                    None => crate::domain::Draft::new(caller.actor(), tenant.as_str(), kind)
                        .with(detail::ASKED, &cmd.asked),
                };
                if let Err(r) = allowed {
                    draft = draft.with(detail::DENY_REASON, r.as_str());
                }
                if let Some(r) = &cmd.resource {
                    draft = draft.with(detail::FOR_RESOURCE, r);
                }
                b.log(draft);
                Ok::<_, BrokerError>((allowed, grant, activated))
            })
            .await?;
        if let Some(g) = grant.as_ref().filter(|_| activated) {
            self.track(g);
        }
        let c = c.ok_or_else(|| LedgerError::Unavailable("no entry was written".into()))?;
        match allowed {
            Ok(()) => self.metrics.validation(true, ""),
            Err(r) => self.metrics.validation(false, r.as_str()),
        }
        Ok(Validation {
            allowed,
            grant,
            log_seq: c.receipt.seq,
            receipt: c.receipt,
        })
    }

    /// A tenant records what an engineer did: about to happen under a grant
    /// that admits its holder now, or already happened (`accessed_at_ms`),
    /// logged whatever the grant's state with whether it was active then.
    pub async fn record_access(&self, caller: &Caller, cmd: RecordAccess) -> Result<AccessRecord> {
        let Some(tenant) = caller.tenant() else {
            return Err(BrokerError::PermissionDenied(
                "only tenants record access".into(),
            ));
        };
        let RecordAccess {
            grant: id,
            action,
            resource,
            accessed_at_ms,
            report_id,
        } = cmd;
        let actor = caller.actor();
        let (record, c) = self
            .ledger
            .commit(&*self.clock, |s, b, now| {
                let accessed_at = reported_time(accessed_at_ms, now)?;
                let mut g = s
                    .tenant_grant(tenant, &id)?
                    .ok_or_else(|| not_found(&id))?;
                let fingerprint =
                    report_fingerprint(&id, action.as_str(), resource.as_str(), accessed_at_ms);
                if let Some(rid) = &report_id {
                    if let Some(first) = s.report(tenant, rid)? {
                        if first.fingerprint != fingerprint {
                            return Err(BrokerError::AlreadyExists(format!(
                                "report_id {rid} was already used for another access; give each access its own id"
                            )));
                        }
                        // A retry carries the same time, so the answer is
                        // the first one's: a report without a time was only
                        // taken while the grant admitted its holder.
                        return Ok((
                            AccessRecord {
                                seq: first.seq,
                                hash: first.hash,
                                receipt: None,
                                duplicate: true,
                                within_grant: accessed_at.is_none_or(|t| g.was_active_at(t)),
                            },
                            None,
                        ));
                    }
                }
                // A scheduled grant past its start: its activation first.
                let activated = if self.start_if_due(s, b, &mut g, now)? {
                    b.put_grant(g.clone());
                    Some(g.clone())
                } else {
                    None
                };
                let within_grant = match accessed_at {
                    // About to happen: only while the grant admits its holder.
                    None => match g.is_valid_at(now) {
                        Ok(()) => true,
                        Err(why) => {
                            return Err(BrokerError::FailedPrecondition(format!(
                                "grant {id} does not admit its holder now ({}); the access must not happen",
                                why.as_str()
                            )));
                        }
                    },
                    // Already happened: logged whatever the grant's state
                    // was, and whether it was active then.
                    Some(t) => g.was_active_at(t),
                };
                let mut draft = g
                    .draft(&actor, EventKind::AccessRecorded)
                    .with(detail::ACTION, &action)
                    .with(detail::RESOURCE, &resource);
                if let Some(t) = accessed_at {
                    draft = draft
                        .with(detail::ACCESSED_AT, t)
                        .with(detail::WITHIN_GRANT, within_grant);
                }
                if let Some(rid) = &report_id {
                    draft = draft.with(detail::REPORT_ID, rid);
                    b.put_report(tenant, rid, fingerprint);
                }
                b.log(draft);
                // The entry's place is known once the commit is sealed.
                Ok::<_, BrokerError>((
                    AccessRecord {
                        seq: 0,
                        hash: [0; 32],
                        receipt: None,
                        duplicate: false,
                        within_grant,
                    },
                    activated,
                ))
            })
            .await?;
        let (record, activated) = record;
        if let Some(g) = &activated {
            self.track(g);
        }
        Ok(match c {
            // A duplicate wrote nothing: the first report's entry stands.
            None => record,
            Some(mut c) => {
                let entry = c.entries.pop().ok_or_else(|| {
                    BrokerError::Store(LedgerError::Unavailable("no entry written".into()))
                })?;
                AccessRecord {
                    seq: entry.entry.seq,
                    hash: entry.hash,
                    receipt: Some(c.receipt),
                    ..record
                }
            }
        })
    }
}

/// When a reported access happened: `None` for 0 (now), or a time within
/// [`MAX_REPORT_AGE_MS`] before and [`MAX_REPORT_SKEW_MS`] after `now`.
fn reported_time(ms: i64, now: Timestamp) -> Result<Option<Timestamp>> {
    match ms {
        0 => Ok(None),
        ms if ms > now.millis().saturating_add(MAX_REPORT_SKEW_MS) => {
            Err(BrokerError::InvalidArgument(format!(
                "the reported access time {} is more than 5 minutes in the future (now {now}); check the tenant's clock",
                Timestamp(ms)
            )))
        }
        ms if ms < now.millis().saturating_sub(MAX_REPORT_AGE_MS) => {
            Err(BrokerError::InvalidArgument(format!(
                "the reported access time {} is more than 7 days in the past; such a report cannot be taken",
                Timestamp(ms)
            )))
        }
        ms => Ok(Some(Timestamp(ms))),
    }
}

/// What an access report says, hashed: a report id names one report.
fn report_fingerprint(grant: &GrantId, action: &str, resource: &str, accessed_at_ms: i64) -> Hash {
    let mut d = ring::digest::Context::new(&ring::digest::SHA256);
    for part in [grant.as_str(), action, resource] {
        d.update(&(part.len() as u64).to_be_bytes());
        d.update(part.as_bytes());
    }
    d.update(&accessed_at_ms.to_be_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.finish().as_ref());
    out
}
