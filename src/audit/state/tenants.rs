//! The tenant entries' part of the log's semantics: added once, updated
//! only while the agreement runs, terminated once and only with no live
//! grant left, shredded once and only after termination.

use super::{LogState, timestamp};
use crate::{
    audit::Entry,
    domain::{Approval, EventKind, Name, TenantRecord, detail},
};

impl LogState {
    pub(super) fn tenant_changed(&mut self, kind: EventKind, e: &Entry) -> Result<(), String> {
        let now = e.timestamp;
        match kind {
            EventKind::TenantAdded | EventKind::TenantUpdated => {
                let name = Name::parse(&e.tenant).map_err(|e| format!("tenant: {e}"))?;
                let approval = e
                    .details
                    .get(detail::APPROVAL)
                    .and_then(|a| Approval::parse(a))
                    .ok_or("the approval policy is missing or unknown")?;
                let require_ticket =
                    e.details.get(detail::REQUIRE_TICKET).map(String::as_str) == Some("true");
                let require_declaration = e
                    .details
                    .get(detail::REQUIRE_DECLARATION)
                    .map(String::as_str)
                    == Some("true");
                let exists = self.tenants.contains_key(&name);
                if kind == EventKind::TenantAdded && exists {
                    return Err(format!("tenant {name} was already added"));
                }
                if let Some(why) = self.tenants.get(&name).and_then(|(t, _)| t.closed()) {
                    return Err(format!("{why}, so it is not updated"));
                }
                let created_at = match self.tenants.get(&name) {
                    Some((t, _)) => t.created_at,
                    None if kind == EventKind::TenantAdded => now,
                    None => return Err(format!("tenant {name} is updated but was never added")),
                };
                let rec = TenantRecord {
                    name: name.clone(),
                    approval,
                    require_ticket,
                    created_at,
                    require_declaration,
                    terminated_at: None,
                    shredded_at: None,
                };
                self.tenants.insert(name, (rec, e.seq));
            }
            EventKind::TenantTerminated => {
                if let Some(g) = self
                    .grants
                    .values()
                    .find(|g| g.grant.tenant.as_str() == e.tenant && g.grant.state.is_live())
                {
                    return Err(format!(
                        "tenant {} is terminated while grant {} is still {}",
                        e.tenant,
                        g.grant.id,
                        g.grant.state.as_str()
                    ));
                }
                let (t, seq) = self.tenant_entry(e)?;
                if t.terminated_at.is_some() {
                    return Err(format!("tenant {} was already terminated", t.name));
                }
                t.terminated_at = Some(now);
                *seq = e.seq;
            }
            EventKind::TenantShredded => {
                let (t, seq) = self.tenant_entry(e)?;
                if t.terminated_at.is_none() {
                    return Err(format!(
                        "tenant {} is shredded but was not terminated",
                        t.name
                    ));
                }
                if t.shredded_at.is_some() {
                    return Err(format!("tenant {} was already shredded", t.name));
                }
                t.shredded_at = Some(timestamp(e, detail::SHREDDED_AT)?);
                *seq = e.seq;
            }
            _ => {}
        }
        Ok(())
    }

    /// The record of the tenant an entry is about.
    fn tenant_entry(&mut self, e: &Entry) -> Result<(&mut TenantRecord, &mut u64), String> {
        let name = Name::parse(&e.tenant).map_err(|e| format!("tenant: {e}"))?;
        match self.tenants.get_mut(&name) {
            Some((t, seq)) => Ok((t, seq)),
            None => Err(format!("tenant {name} was never added")),
        }
    }
}
