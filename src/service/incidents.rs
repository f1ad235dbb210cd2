//! The breach register's use cases: record an incident, append updates,
//! record that a tenant was notified, read incidents (a tenant only those
//! that affect it) and their documents, and the clock sweeper that logs
//! `incident.notification_overdue` once per incident and tenant when its
//! 24 h pass without a notification.
//!
//! The register ([`IncidentRegister`]) lives in memory only and is a fold
//! over the log: rebuilt from every entry at start-up
//! ([`Broker::load_incidents`]) and advanced with the entries each commit
//! appends. Its lock is held across each incident commit, so what a change
//! is checked against is what it is applied to.
//!
//! Not here: the documents' text (see [`super::incident_documents`]), who
//! may do what (see [`crate::policy`]).

use std::{future::Future, sync::Arc, time::Duration};

use tokio::sync::{Mutex, Notify};

use super::{
    Broker, BrokerError, Receipted, Result,
    incident_documents::{self, DocFormat},
};
use crate::{
    audit::state::incidents::{
        Incident, IncidentRegister, notified_draft, overdue_draft, recorded_drafts, updated_drafts,
    },
    clock::Timestamp,
    domain::{EventKind, IncidentId, IncidentReport, IncidentUpdate, Name, Notification},
    ledger::Committed,
    policy::{Caller, may_see_incident},
};

/// The register and a wake-up for the clock sweeper.
#[derive(Debug, Default)]
pub struct IncidentBook {
    register: Mutex<IncidentRegister>,
    changed: Notify,
}

impl Broker {
    /// Rebuilds the register from the whole log (start-up).
    pub async fn load_incidents(&self) -> Result<usize> {
        let mut reg = self.incidents.register.lock().await;
        *reg = IncidentRegister::default();
        for item in self.ledger.entries_from(0) {
            let s = item?;
            if let Some(kind) = EventKind::parse(&s.entry.kind) {
                if let Err(why) = reg.apply(kind, &s.entry) {
                    // `audit check` reports it; the register skips it.
                    tracing::warn!(seq = s.entry.seq, %why, "an incident entry contradicts the log");
                }
            }
        }
        Ok(reg.len())
    }

    /// Records a breach; every affected tenant gets an `incident.recorded`.
    pub async fn record_incident(
        &self,
        caller: &Caller,
        report: IncidentReport,
    ) -> Result<Receipted<Incident>> {
        let mut reg = self.incidents.register.lock().await;
        self.evidence_exists(&report.evidence)?;
        let id = IncidentId::random();
        let actor = caller.actor();
        let (_, c) = self
            .ledger
            .commit(&*self.clock, |v, b, now| {
                if report.became_known_at > now {
                    return Err(BrokerError::InvalidArgument(format!(
                        "became_known_at {} is in the future (now is {now}); record when the \
                         breach became known, not when it is expected",
                        report.became_known_at
                    )));
                }
                for t in &report.tenants {
                    if v.tenant(t)?.is_none() {
                        return Err(BrokerError::InvalidArgument(format!(
                            "tenants: there is no tenant {t}; `daypass tenant list` shows them"
                        )));
                    }
                }
                for d in recorded_drafts(&id, &report, &actor) {
                    b.log(d);
                }
                Ok(())
            })
            .await?;
        self.settle(&mut reg, &id, c)
    }

    /// Appends an update (to every affected tenant's slice).
    pub async fn update_incident(
        &self,
        caller: &Caller,
        id: &IncidentId,
        update: IncidentUpdate,
    ) -> Result<Receipted<Incident>> {
        let mut reg = self.incidents.register.lock().await;
        let incident = self.visible(&reg, caller, id)?;
        self.evidence_exists(&update.evidence)?;
        let actor = caller.actor();
        let (_, c) = self
            .ledger
            .commit(&*self.clock, |_, b, _| {
                for d in updated_drafts(&incident, &update, &actor) {
                    b.log(d);
                }
                Ok::<_, BrokerError>(())
            })
            .await?;
        self.settle(&mut reg, id, c)
    }

    /// Records that a tenant was told. `notified_at` is checked against the
    /// incident and the clock here.
    pub async fn record_notification(
        &self,
        caller: &Caller,
        id: &IncidentId,
        n: Notification,
    ) -> Result<Receipted<Incident>> {
        let mut reg = self.incidents.register.lock().await;
        let incident = self.visible(&reg, caller, id)?;
        if !incident.affects(&n.tenant) {
            return Err(BrokerError::InvalidArgument(format!(
                "tenant: incident {id} does not affect tenant {}; `daypass incident show {id}` \
                 lists the affected tenants",
                n.tenant
            )));
        }
        if n.notified_at < incident.report.became_known_at {
            return Err(BrokerError::InvalidArgument(format!(
                "notified_at {} is before the breach became known ({})",
                n.notified_at, incident.report.became_known_at
            )));
        }
        let actor = caller.actor();
        let (_, c) = self
            .ledger
            .commit(&*self.clock, |_, b, now| {
                if n.notified_at > now {
                    return Err(BrokerError::InvalidArgument(format!(
                        "notified_at {} is in the future (now is {now})",
                        n.notified_at
                    )));
                }
                b.log(notified_draft(id, &n, &actor));
                Ok(())
            })
            .await?;
        self.settle(&mut reg, id, c)
    }

    /// One incident, as the caller may see it (a tenant: only its clock).
    pub async fn get_incident(&self, caller: &Caller, id: &IncidentId) -> Result<Incident> {
        let reg = self.incidents.register.lock().await;
        self.visible(&reg, caller, id)
    }

    /// Every incident the caller may see, newest first; with `tenant`, only
    /// those affecting it.
    pub async fn list_incidents(
        &self,
        caller: &Caller,
        tenant: Option<&Name>,
    ) -> Result<Vec<Incident>> {
        let reg = self.incidents.register.lock().await;
        Ok(reg
            .all()
            .filter(|i| may_see_incident(caller, &i.report.tenants))
            .filter(|i| tenant.is_none_or(|t| i.affects(t)))
            .map(|i| scoped(caller, i))
            .collect())
    }

    /// The notification document for one affected tenant.
    pub async fn notification_document(
        &self,
        caller: &Caller,
        id: &IncidentId,
        tenant: Option<&Name>,
        format: DocFormat,
    ) -> Result<String> {
        let incident = self.get_incident(caller, id).await?;
        let tenant = match (tenant, caller.tenant()) {
            (Some(t), _) => t.clone(),
            (None, Some(own)) => own.clone(),
            (None, None) => {
                return Err(BrokerError::InvalidArgument(
                    "tenant: name the tenant the notification is for".into(),
                ));
            }
        };
        if !incident.affects(&tenant) {
            // A tenant asking for another's document: as for an unknown one.
            return Err(match caller.tenant() {
                Some(_) => not_found(id),
                None => BrokerError::InvalidArgument(format!(
                    "tenant: incident {id} does not affect tenant {tenant}"
                )),
            });
        }
        Ok(incident_documents::notification(
            &incident,
            &tenant,
            self.now(),
            format,
        ))
    }

    /// The Art 33(5) documentation of one incident.
    pub async fn incident_documentation(
        &self,
        caller: &Caller,
        id: &IncidentId,
        format: DocFormat,
    ) -> Result<String> {
        let incident = self.get_incident(caller, id).await?;
        Ok(incident_documents::documentation(
            &incident,
            self.now(),
            format,
        ))
    }

    /// Logs `incident.notification_overdue` for every clock past due with
    /// no notification and no such entry yet.
    pub async fn log_overdue_notifications(&self) -> Result<usize> {
        let mut reg = self.incidents.register.lock().await;
        let due = reg.overdue_unlogged(self.now());
        if due.is_empty() {
            return Ok(0);
        }
        let (n, c) = self
            .ledger
            .commit(&*self.clock, |_, b, now| {
                let mut n = 0;
                for (id, tenant, due_at) in &due {
                    if now > *due_at {
                        b.log(overdue_draft(id, tenant, *due_at));
                        n += 1;
                    }
                }
                Ok::<_, BrokerError>(n)
            })
            .await?;
        if let Some(c) = c {
            apply(&mut reg, &c);
        }
        Ok(n)
    }

    /// The next moment the sweeper must look, if any.
    async fn next_incident_due(&self) -> Option<Timestamp> {
        self.incidents.register.lock().await.next_due()
    }

    fn visible(
        &self,
        reg: &IncidentRegister,
        caller: &Caller,
        id: &IncidentId,
    ) -> Result<Incident> {
        reg.get(id)
            .filter(|i| may_see_incident(caller, &i.report.tenants))
            .map(|i| scoped(caller, i))
            .ok_or_else(|| not_found(id))
    }

    fn evidence_exists(&self, seqs: &[u64]) -> Result<()> {
        let size = self.ledger.head().next_seq;
        match seqs.iter().find(|s| **s >= size) {
            Some(bad) => Err(BrokerError::InvalidArgument(format!(
                "evidence_seqs: there is no entry {bad} (the log has {size} entries, 0 to {})",
                size.saturating_sub(1)
            ))),
            None => Ok(()),
        }
    }

    /// Applies what a commit appended and answers with the incident as the
    /// caller's change left it.
    fn settle(
        &self,
        reg: &mut IncidentRegister,
        id: &IncidentId,
        c: Option<Committed>,
    ) -> Result<Receipted<Incident>> {
        let c = c.ok_or_else(|| {
            BrokerError::Store(crate::ledger::LedgerError::Unavailable(
                "no entry was written".into(),
            ))
        })?;
        apply(reg, &c);
        self.incidents.changed.notify_one();
        let incident = reg.get(id).cloned().ok_or_else(|| not_found(id))?;
        Ok((incident, c.receipt))
    }
}

/// Runs until `shutdown` resolves: sleeps (on the injected clock) until the
/// earliest unsettled deadline or until the register changes, then logs the
/// clocks that passed it.
pub async fn run(broker: Arc<Broker>, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        if let Err(e) = broker.log_overdue_notifications().await {
            tracing::warn!(error = %e, "could not log an overdue breach notification; retrying");
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = &mut shutdown => return,
            }
            continue;
        }
        let clock = broker.clock().clone();
        let next = broker.next_incident_due().await;
        tokio::select! {
            _ = async { match next {
                // Overdue is strictly after the deadline.
                Some(t) => clock.sleep_until(Timestamp(t.0.saturating_add(1))).await,
                None => std::future::pending().await,
            } } => {}
            _ = broker.incidents.changed.notified() => {}
            _ = &mut shutdown => return,
        }
    }
}

fn apply(reg: &mut IncidentRegister, c: &Committed) {
    for s in &c.entries {
        if let Some(kind) = EventKind::parse(&s.entry.kind) {
            if let Err(why) = reg.apply(kind, &s.entry) {
                tracing::error!(seq = s.entry.seq, %why, "an incident entry just written contradicts the register");
            }
        }
    }
}

fn scoped(caller: &Caller, i: &Incident) -> Incident {
    match caller.tenant() {
        Some(t) => i.scoped_to(t),
        None => i.clone(),
    }
}

fn not_found(id: &IncidentId) -> BrokerError {
    BrokerError::NotFound(format!(
        "no incident {id}; `daypass incident list` shows the incidents you may see"
    ))
}
