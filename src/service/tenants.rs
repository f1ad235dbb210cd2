//! Tenant use cases: register a tenant, change its policy, list them.

use super::{Broker, BrokerError, Receipted, Result, receipt};
use crate::{
    domain::{Draft, EventKind, TenantRecord, detail},
    policy::Caller,
    service::commands::{AddTenant, UpdateTenant},
};

impl Broker {
    pub async fn add_tenant(
        &self,
        caller: &Caller,
        cmd: AddTenant,
    ) -> Result<Receipted<TenantRecord>> {
        let AddTenant {
            name,
            approval,
            require_ticket,
            require_declaration,
        } = cmd;
        let (rec, c) = self
            .ledger
            .commit(&*self.clock, |s, b, now| {
                if s.tenant(&name)?.is_some() {
                    return Err(BrokerError::AlreadyExists(format!(
                        "tenant {name} already exists"
                    )));
                }
                let rec = TenantRecord {
                    name: name.clone(),
                    approval,
                    require_ticket,
                    created_at: now,
                    require_declaration,
                };
                b.put_tenant(rec.clone());
                b.log(
                    Draft::new(caller.actor(), name.as_str(), EventKind::TenantAdded)
                        .with(detail::APPROVAL, approval.as_str())
                        .with(detail::REQUIRE_TICKET, require_ticket)
                        .with(detail::REQUIRE_DECLARATION, require_declaration),
                );
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
        let (rec, c) = self
            .ledger
            .commit(&*self.clock, |s, b, _now| {
                let Some(mut rec) = s.tenant(&name)? else {
                    return Err(BrokerError::NotFound(format!(
                        "tenant {name} does not exist"
                    )));
                };
                if let Some(a) = cmd.approval {
                    rec.approval = a;
                }
                if let Some(t) = cmd.require_ticket {
                    rec.require_ticket = t;
                }
                if let Some(d) = cmd.require_declaration {
                    rec.require_declaration = d;
                }
                b.put_tenant(rec.clone());
                b.log(
                    Draft::new(caller.actor(), name.as_str(), EventKind::TenantUpdated)
                        .with(detail::APPROVAL, rec.approval.as_str())
                        .with(detail::REQUIRE_TICKET, rec.require_ticket)
                        .with(detail::REQUIRE_DECLARATION, rec.require_declaration),
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
