//! What a commit reads: a [`View`] of the store under the writer lock, which
//! layers the commits applied in memory since the last group write
//! ([`Pending`]) over what the driver holds.

use std::collections::{HashMap, HashSet};

use super::{
    LedgerError,
    batch::{ReportKey, ReportRef},
    driver::{Driver, StoredEntry},
};
use crate::{
    audit::{Hash, merkle::NodeId},
    domain::{
        Alert, AlertId, Grant, GrantId, Name, ReportId, ScreenRecord, StaffRecord, TenantRecord,
    },
};

/// Commits applied in memory, not yet written: the rows of the next group
/// write, and the records they change (for reads by later commits in the
/// same group). Later commits override earlier ones.
#[derive(Default)]
pub(super) struct Pending {
    pub staff: HashMap<Name, StaffRecord>,
    pub tenants: HashMap<Name, TenantRecord>,
    pub grants: HashMap<GrantId, Grant>,
    pub latest: HashMap<(Name, Name), GrantId>,
    pub entries: Vec<StoredEntry>,
    pub nodes: Vec<(NodeId, Hash)>,
    pub scopes: Vec<(String, u64)>,
    pub reports: HashMap<ReportKey, ReportRef>,
    pub alerts: HashMap<AlertId, Alert>,
    pub cursors: HashMap<&'static str, u64>,
    pub screens: HashMap<Name, ScreenRecord>,
}

/// The store as a commit sees it under the writer lock: what the driver
/// holds plus the commits applied in memory since the last group write.
pub struct View<'a> {
    pub(super) driver: &'a dyn Driver,
    pub(super) pending: &'a Pending,
}

impl View<'_> {
    pub fn staff(&self, name: &Name) -> Result<Option<StaffRecord>, LedgerError> {
        match self.pending.staff.get(name) {
            Some(r) => Ok(Some(r.clone())),
            None => self.driver.staff(name),
        }
    }

    pub fn all_staff(&self) -> Result<Vec<StaffRecord>, LedgerError> {
        let mut all = self.driver.all_staff()?;
        for r in &mut all {
            if let Some(p) = self.pending.staff.get(&r.name) {
                *r = p.clone();
            }
        }
        let stored: HashSet<Name> = all.iter().map(|r| r.name.clone()).collect();
        all.extend(
            self.pending
                .staff
                .values()
                .filter(|r| !stored.contains(&r.name))
                .cloned(),
        );
        Ok(all)
    }

    pub fn tenant(&self, name: &Name) -> Result<Option<TenantRecord>, LedgerError> {
        match self.pending.tenants.get(name) {
            Some(r) => Ok(Some(r.clone())),
            None => self.driver.tenant(name),
        }
    }

    pub fn grant(&self, id: &GrantId) -> Result<Option<Grant>, LedgerError> {
        match self.pending.grants.get(id) {
            Some(g) => Ok(Some(g.clone())),
            None => self.driver.grant(id),
        }
    }

    /// The grant `id` if it is `tenant`'s; another tenant's grant is
    /// answered like an unknown id, with the same work
    /// ([`Driver::tenant_grant`]).
    pub fn tenant_grant(&self, tenant: &Name, id: &GrantId) -> Result<Option<Grant>, LedgerError> {
        match self.pending.grants.get(id) {
            Some(g) if g.tenant == *tenant => Ok(Some(g.clone())),
            _ => self.driver.tenant_grant(tenant, id),
        }
    }

    /// The newest grant `holder` asked for on `tenant`, whatever its state.
    pub fn latest_grant(&self, holder: &Name, tenant: &Name) -> Result<Option<Grant>, LedgerError> {
        match self.pending.latest.get(&(holder.clone(), tenant.clone())) {
            Some(id) => self.grant(id),
            None => self.driver.latest_grant(holder, tenant),
        }
    }

    /// The entry that recorded a tenant's access report with this id, and
    /// the report's fingerprint, if any.
    pub fn report(&self, tenant: &Name, id: &ReportId) -> Result<Option<ReportRef>, LedgerError> {
        let key = ReportKey {
            tenant: tenant.clone(),
            id: id.clone(),
        };
        match self.pending.reports.get(&key) {
            Some(r) => Ok(Some(*r)),
            None => self.driver.report(&key),
        }
    }

    pub fn alert(&self, id: &AlertId) -> Result<Option<Alert>, LedgerError> {
        match self.pending.alerts.get(id) {
            Some(a) => Ok(Some(a.clone())),
            None => self.driver.alert(id),
        }
    }

    pub fn screen(&self, name: &Name) -> Result<Option<ScreenRecord>, LedgerError> {
        match self.pending.screens.get(name) {
            Some(r) => Ok(Some(r.clone())),
            None => self.driver.screen(name),
        }
    }

    /// A follower's cursor: the next seq it will judge (`None`: never set).
    pub fn cursor(&self, name: &str) -> Result<Option<u64>, LedgerError> {
        match self.pending.cursors.get(name) {
            Some(c) => Ok(Some(*c)),
            None => self.driver.cursor(name),
        }
    }

    /// Pending and active grants.
    pub fn live_grants(&self) -> Result<Vec<Grant>, LedgerError> {
        let mut out = Vec::new();
        let mut stored = HashSet::new();
        for g in self.driver.live_grants()? {
            stored.insert(g.id.clone());
            match self.pending.grants.get(&g.id) {
                Some(p) if p.state.is_live() => out.push(p.clone()),
                Some(_) => {}
                None => out.push(g),
            }
        }
        out.extend(
            self.pending
                .grants
                .values()
                .filter(|g| g.state.is_live() && !stored.contains(&g.id))
                .cloned(),
        );
        Ok(out)
    }

    /// Every grant `holder` asked for on `tenant`, whatever its state. A
    /// scan of every grant: only for tenants with an access limit.
    pub fn holder_grants(&self, holder: &Name, tenant: &Name) -> Result<Vec<Grant>, LedgerError> {
        let mut out: Vec<Grant> = Vec::new();
        let mut stored = HashSet::new();
        for g in self.driver.all_grants()? {
            stored.insert(g.id.clone());
            let g = self.pending.grants.get(&g.id).cloned().unwrap_or(g);
            if g.holder == *holder && g.tenant == *tenant {
                out.push(g);
            }
        }
        out.extend(
            self.pending
                .grants
                .values()
                .filter(|g| g.holder == *holder && g.tenant == *tenant && !stored.contains(&g.id))
                .cloned(),
        );
        Ok(out)
    }
}
