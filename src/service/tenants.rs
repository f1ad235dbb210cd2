//! Tenant use cases: register a tenant, change its policy, list them, and
//! end its agreement: terminate (revoke every grant, take no new ones,
//! hand over its key with its export) and shred (destroy the key, and with
//! it the tenant's personal details; docs/compliance/termination.md).

use super::{Broker, BrokerError, Receipted, Result, receipt};
use crate::{
    domain::{Draft, EventKind, GrantId, Note, TenantRecord, detail, grant::Ending},
    ledger::{LedgerError, keys::KeyState},
    policy::Caller,
    service::commands::{
        AddTenant, SetTenantAccessLimit, SetTenantJustification, ShredTenant, TerminateTenant,
        UpdateTenant,
    },
};

/// What `TerminateTenant` answers: the record, the grants it revoked and
/// the tenant's key (hex), if it has one.
pub struct Terminated {
    pub tenant: TenantRecord,
    pub revoked: Vec<GrantId>,
    pub key_hex: Option<String>,
}

impl Broker {
    pub async fn add_tenant(
        &self,
        caller: &Caller,
        cmd: AddTenant,
    ) -> Result<Receipted<TenantRecord>> {
        let AddTenant {
            name,
            approval,
            approver_group,
            require_ticket,
            require_declaration,
        } = cmd;
        let _groups = self.groups().reading().await;
        let (rec, c) = self
            .ledger
            .commit(&*self.clock, |s, b, now| {
                if s.tenant(&name)?.is_some() {
                    return Err(BrokerError::AlreadyExists(format!(
                        "tenant {name} already exists"
                    )));
                }
                self.check_group_rule(s, approval, approver_group.as_ref())?;
                let rec = TenantRecord {
                    name: name.clone(),
                    approval,
                    require_ticket,
                    created_at: now,
                    require_declaration,
                    terminated_at: None,
                    shredded_at: None,
                    justification: Default::default(),
                    break_glass_support: false,
                    approver_group: approver_group.clone(),
                    access_limit: None,
                };
                b.put_tenant(rec.clone());
                b.log(with_group(
                    Draft::new(caller.actor(), name.as_str(), EventKind::TenantAdded)
                        .with(detail::APPROVAL, approval.as_str())
                        .with(detail::REQUIRE_TICKET, require_ticket)
                        .with(detail::REQUIRE_DECLARATION, require_declaration),
                    &rec,
                ));
                Ok(rec)
            })
            .await?;
        Ok((rec, receipt(c)?))
    }

    pub async fn update_tenant(
        &self,
        caller: &Caller,
        cmd: UpdateTenant,
    ) -> Result<Receipted<TenantRecord>> {
        let name = cmd.name;
        let _groups = self.groups().reading().await;
        let (rec, c) = self
            .ledger
            .commit(&*self.clock, |s, b, _now| {
                let Some(mut rec) = s.tenant(&name)? else {
                    return Err(BrokerError::NotFound(format!(
                        "tenant {name} does not exist"
                    )));
                };
                if let Some(why) = rec.closed() {
                    return Err(BrokerError::FailedPrecondition(why));
                }
                if let Some(a) = cmd.approval {
                    self.check_group_rule(s, a, cmd.approver_group.as_ref())?;
                    rec.approval = a;
                    rec.approver_group = cmd.approver_group.clone();
                }
                if let Some(t) = cmd.require_ticket {
                    rec.require_ticket = t;
                }
                if let Some(d) = cmd.require_declaration {
                    rec.require_declaration = d;
                }
                b.put_tenant(rec.clone());
                b.log(with_group(
                    Draft::new(caller.actor(), name.as_str(), EventKind::TenantUpdated)
                        .with(detail::APPROVAL, rec.approval.as_str())
                        .with(detail::REQUIRE_TICKET, rec.require_ticket)
                        .with(detail::REQUIRE_DECLARATION, rec.require_declaration),
                    &rec,
                ));
                Ok(rec)
            })
            .await?;
        Ok((rec, receipt(c)?))
    }

    /// Changes a tenant's justification rules (its ticket pattern, whether
    /// a reason code is required), logged as `tenant.justification_set`
    /// with the rules that result. Requests already made are not judged
    /// again.
    pub async fn set_tenant_justification(
        &self,
        caller: &Caller,
        cmd: SetTenantJustification,
    ) -> Result<Receipted<TenantRecord>> {
        let SetTenantJustification {
            tenant: name,
            ticket_pattern,
            require_reason_code,
        } = cmd;
        let (rec, c) = self
            .ledger
            .commit(&*self.clock, |s, b, _now| {
                let Some(mut rec) = s.tenant(&name)? else {
                    return Err(BrokerError::NotFound(format!(
                        "tenant {name} does not exist; `daypass tenant list` shows the tenants"
                    )));
                };
                if let Some(why) = rec.closed() {
                    return Err(BrokerError::FailedPrecondition(why));
                }
                let j = &mut rec.justification;
                if let Some(p) = ticket_pattern.clone() {
                    j.ticket_pattern = p;
                }
                if let Some(r) = require_reason_code {
                    j.require_reason_code = r;
                }
                let pattern = j.ticket_pattern.as_ref().map(|p| p.as_str()).unwrap_or("");
                b.log(
                    Draft::new(
                        caller.actor(),
                        name.as_str(),
                        EventKind::TenantJustificationSet,
                    )
                    .with(detail::TICKET_PATTERN, pattern)
                    .with(detail::REQUIRE_REASON_CODE, j.require_reason_code),
                );
                b.put_tenant(rec.clone());
                Ok(rec)
            })
            .await?;
        Ok((rec, receipt(c)?))
    }

    /// Sets or clears a tenant's cumulative access limit, logged as
    /// `tenant.access_limit_set` (both numbers 0 when cleared). Grants
    /// already requested are not judged again; later requests and
    /// approvals are.
    pub async fn set_tenant_access_limit(
        &self,
        caller: &Caller,
        cmd: SetTenantAccessLimit,
    ) -> Result<Receipted<TenantRecord>> {
        let SetTenantAccessLimit {
            tenant: name,
            limit,
        } = cmd;
        let (rec, c) = self
            .ledger
            .commit(&*self.clock, |s, b, _now| {
                let Some(mut rec) = s.tenant(&name)? else {
                    return Err(BrokerError::NotFound(format!(
                        "tenant {name} does not exist; `daypass tenant list` shows the tenants"
                    )));
                };
                if let Some(why) = rec.closed() {
                    return Err(BrokerError::FailedPrecondition(why));
                }
                rec.access_limit = limit;
                let (l, w) = limit.map_or((0, 0), |l| (l.limit_secs, l.window_secs));
                b.log(
                    Draft::new(
                        caller.actor(),
                        name.as_str(),
                        EventKind::TenantAccessLimitSet,
                    )
                    .with(detail::LIMIT_SECS, l)
                    .with(detail::WINDOW_SECS, w),
                );
                b.put_tenant(rec.clone());
                Ok(rec)
            })
            .await?;
        Ok((rec, receipt(c)?))
    }

    /// Ends the tenant's agreement: revokes every live grant (cause `tenant
    /// terminated`) and marks the record, so no grant is requested or
    /// approved from now. Repeated on a terminated tenant it changes
    /// nothing and hands out the key again, until the key is destroyed.
    pub async fn terminate_tenant(
        &self,
        caller: &Caller,
        cmd: TerminateTenant,
    ) -> Result<Terminated> {
        let name = cmd.name;
        let actor = caller.actor();
        let no_note = Note::default();
        let existing = self.ledger.tenant(&name)?;
        let (tenant, revoked) = match existing {
            None => {
                return Err(BrokerError::NotFound(format!(
                    "tenant {name} does not exist; `daypass tenant list` shows the tenants"
                )));
            }
            Some(t) if t.terminated_at.is_some() => (t, Vec::new()),
            Some(_) => {
                let (out, _c) = self
                    .ledger
                    .commit(&*self.clock, |s, b, now| {
                        let Some(mut rec) = s.tenant(&name)? else {
                            return Err(BrokerError::NotFound(format!(
                                "tenant {name} does not exist"
                            )));
                        };
                        if rec.terminated_at.is_some() {
                            return Ok((rec, Vec::new()));
                        }
                        let mut revoked = Vec::new();
                        for mut g in s.live_grants()?.into_iter().filter(|g| g.tenant == name) {
                            b.log(g.end(Ending::Terminate, now, &actor, &no_note));
                            self.gate.note_ended(&g, now);
                            revoked.push(g.id.clone());
                            b.put_grant(g);
                        }
                        rec.terminated_at = Some(now);
                        b.put_tenant(rec.clone());
                        b.log(
                            Draft::new(actor.clone(), name.as_str(), EventKind::TenantTerminated)
                                .with(detail::REVOKED_GRANTS, revoked.len()),
                        );
                        Ok((rec, revoked))
                    })
                    .await?;
                out
            }
        };
        let key_hex = match self.ledger.tenant_keys() {
            None => None,
            Some(keys) => keys
                .export(name.as_str())
                .map_err(|e| {
                    BrokerError::Store(LedgerError::Unavailable(format!(
                        "cannot read the key of tenant {name}: {e}"
                    )))
                })?
                .map(hex::encode),
        };
        Ok(Terminated {
            tenant,
            revoked,
            key_hex,
        })
    }

    /// Destroys a terminated tenant's key, then logs `tenant.shredded`.
    /// If the entry cannot be written the key is gone all the same; the
    /// call can be repeated to log it.
    pub async fn shred_tenant(
        &self,
        caller: &Caller,
        cmd: ShredTenant,
    ) -> Result<Receipted<TenantRecord>> {
        let name = cmd.name;
        let actor = caller.actor();
        let keys = self.ledger.tenant_keys();
        let (rec, c) = self
            .ledger
            .commit(&*self.clock, |s, b, now| {
                let Some(mut rec) = s.tenant(&name)? else {
                    return Err(BrokerError::NotFound(format!("tenant {name} does not exist")));
                };
                if rec.terminated_at.is_none() {
                    return Err(BrokerError::FailedPrecondition(format!(
                        "tenant {name} is not terminated; `daypass tenant terminate {name}` ends its grants and exports its data first"
                    )));
                }
                if let Some(at) = rec.shredded_at {
                    return Err(BrokerError::FailedPrecondition(format!(
                        "tenant {name} was already shredded on {}",
                        at.to_rfc3339()
                    )));
                }
                if let Some(keys) = &keys {
                    let at = match keys.state(name.as_str()) {
                        KeyState::Shredded(ms) if ms > 0 => crate::clock::Timestamp(ms),
                        _ => now,
                    };
                    keys.destroy(name.as_str(), at.millis()).map_err(|e| {
                        BrokerError::Store(LedgerError::Unavailable(format!(
                            "cannot destroy the key of tenant {name}: {e}"
                        )))
                    })?;
                }
                rec.shredded_at = Some(now);
                b.put_tenant(rec.clone());
                b.log(
                    Draft::new(actor.clone(), name.as_str(), EventKind::TenantShredded)
                        .with(detail::SHREDDED_AT, now),
                );
                Ok(rec)
            })
            .await?;
        Ok((rec, receipt(c)?))
    }

    pub fn list_tenants(&self) -> Result<Vec<TenantRecord>> {
        Ok(self.ledger.all_tenants()?)
    }
}

/// A `tenant.added` or `tenant.updated` entry under a group policy names
/// its group and threshold.
fn with_group(d: Draft, rec: &TenantRecord) -> Draft {
    match &rec.approver_group {
        Some(r) => d
            .with(detail::GROUP, &r.group)
            .with(detail::THRESHOLD, r.threshold),
        None => d,
    }
}
