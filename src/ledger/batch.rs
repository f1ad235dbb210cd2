//! A [`Batch`]: the record changes one commit makes and the entries that
//! record them, applied together or not at all.

use crate::{
    audit::Hash,
    domain::{Alert, Draft, Grant, Name, ReportId, ScreenRecord, StaffRecord, TenantRecord},
};

/// Changes to apply atomically, with the entries that record them.
#[derive(Default)]
pub struct Batch {
    pub(super) staff: Vec<StaffRecord>,
    pub(super) tenants: Vec<TenantRecord>,
    pub(super) grants: Vec<Grant>,
    pub(super) entries: Vec<Draft>,
    pub(super) reports: Vec<(ReportKey, Hash)>,
    pub(super) alerts: Vec<Alert>,
    pub(super) cursors: Vec<(&'static str, u64)>,
    pub(super) screens: Vec<ScreenRecord>,
}

impl Batch {
    pub fn put_staff(&mut self, r: StaffRecord) {
        self.staff.push(r);
    }

    pub fn put_tenant(&mut self, r: TenantRecord) {
        self.tenants.push(r);
    }

    /// Stores a grant; the ledger keeps the live and latest indexes in step.
    pub fn put_grant(&mut self, g: Grant) {
        self.grants.push(g);
    }

    pub fn put_alert(&mut self, a: Alert) {
        self.alerts.push(a);
    }

    /// Moves a follower's cursor (the next seq it will judge), atomically
    /// with the rest of the batch ([`super::View::cursor`]).
    pub fn put_cursor(&mut self, name: &'static str, next_seq: u64) {
        self.cursors.push((name, next_seq));
    }

    pub fn put_screen(&mut self, r: ScreenRecord) {
        self.screens.push(r);
    }

    pub fn log(&mut self, d: Draft) {
        self.entries.push(d);
    }

    /// Indexes a tenant's access report id to this batch's last entry and
    /// a fingerprint of what was reported, so the same report is never
    /// logged twice and an id is never reused for another
    /// ([`super::View::report`]).
    pub fn put_report(&mut self, tenant: &Name, report_id: &ReportId, fingerprint: Hash) {
        self.reports.push((
            ReportKey {
                tenant: tenant.clone(),
                id: report_id.clone(),
            },
            fingerprint,
        ));
    }
}

/// A tenant's access report id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ReportKey {
    pub tenant: Name,
    pub id: ReportId,
}

/// Where a report was logged, and what it said (hashed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReportRef {
    pub seq: u64,
    pub hash: Hash,
    pub fingerprint: Hash,
}
