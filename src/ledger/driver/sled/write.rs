//! The sled driver's group write: one transaction over every tree, so a
//! group's records, entries, tree nodes, index rows, checkpoint and head
//! are on disk together or not at all.

use sled::{
    Transactional,
    transaction::{ConflictableTransactionError, TransactionError},
};

use super::{Handles, encode, grants::encode_grant};
use crate::ledger::{
    LedgerError,
    driver::{Group, layout},
    keys::TenantKeys,
};

/// One group as one sled transaction over every tree.
pub(super) fn write_group(
    h: &Handles,
    keys: &TenantKeys,
    g: &Group<'_>,
) -> Result<(), LedgerError> {
    let staff: Vec<_> = g
        .staff
        .iter()
        .map(|r| (r.name.as_str(), encode(*r)))
        .collect();
    let tenants: Vec<_> = g
        .tenants
        .iter()
        .map(|r| (r.name.as_str(), encode(*r)))
        .collect();
    let grants = g
        .grants
        .iter()
        .map(|r| Ok((*r, encode_grant(keys, r)?)))
        .collect::<Result<Vec<_>, LedgerError>>()?;
    let screens: Vec<_> = g
        .screens
        .iter()
        .map(|r| (layout::screen_key(r.name.as_str()), encode(*r)))
        .collect();
    let alerts: Vec<_> = g
        .alerts
        .iter()
        .map(|r| (r.id.as_str(), encode(*r)))
        .collect();
    let result: Result<(), TransactionError<()>> = (
        &h.meta,
        &h.log,
        &h.staff,
        &h.tenants,
        &h.grants,
        &h.live,
        &h.latest,
        &h.merkle,
        &h.scope,
        &h.reports,
        &h.tenant_grants,
        &h.alerts,
    )
        .transaction(
            |(
                meta,
                log,
                staff_t,
                tenants_t,
                grants_t,
                live,
                latest,
                tree,
                scope,
                reports,
                by_tenant,
                alerts_t,
            )| {
                for (k, v) in &staff {
                    staff_t.insert(k.as_bytes(), v.as_slice())?;
                }
                for (k, v) in &tenants {
                    tenants_t.insert(k.as_bytes(), v.as_slice())?;
                }
                for (r, v) in &grants {
                    let id = r.id.as_str().as_bytes();
                    grants_t.insert(id, v.as_slice())?;
                    by_tenant.insert(layout::tenant_grant_key(&r.tenant, &r.id), &[])?;
                    if r.state.is_live() {
                        live.insert(id, &[])?;
                    } else {
                        live.remove(id)?;
                    }
                }
                for ((holder, tenant), id) in &g.latest {
                    latest.insert(layout::latest_key(holder, tenant), id.as_str().as_bytes())?;
                }
                for e in g.entries {
                    let mut v = Vec::with_capacity(32 + e.bytes.len());
                    v.extend_from_slice(&e.hash);
                    v.extend_from_slice(&e.bytes);
                    log.insert(&e.seq.to_be_bytes()[..], v)?;
                }
                for (id, h) in g.nodes {
                    tree.insert(&layout::node_key(*id)[..], &h[..])?;
                }
                if let Some(cp) = g.checkpoint {
                    tree.insert(&layout::checkpoint_key(cp.size)[..], cp.note.as_bytes())?;
                }
                for (tenant, seq) in g.scopes {
                    scope.insert(layout::scope_key(tenant, *seq), &[])?;
                }
                for (k, v) in &alerts {
                    alerts_t.insert(k.as_bytes(), v.as_slice())?;
                }
                for (k, v) in &screens {
                    meta.insert(k.as_slice(), v.as_slice())?;
                }
                for (name, seq) in &g.cursors {
                    meta.insert(layout::cursor_key(name), &seq.to_be_bytes()[..])?;
                }
                for (k, r) in &g.reports {
                    reports.insert(layout::report_key(k), &layout::report_value(r)[..])?;
                }
                if let Some(h) = &g.head {
                    meta.insert(
                        layout::HEAD_KEY,
                        &layout::head_value(h.next_seq, &h.prev_hash)[..],
                    )?;
                    meta.insert(layout::TREE_KEY, &h.tree_size.to_be_bytes()[..])?;
                }
                Ok::<(), ConflictableTransactionError<()>>(())
            },
        );
    match result {
        Ok(()) => Ok(()),
        Err(TransactionError::Storage(e)) => Err(e.into()),
        Err(TransactionError::Abort(())) => {
            Err(LedgerError::Unavailable("transaction aborted".into()))
        }
    }
}
