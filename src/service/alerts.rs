//! Alerts: raising what the monitor found (with its cursor, in one
//! commit; the system-health findings without it), listing (a tenant sees only alerts about itself), and
//! acknowledging and resolving by a named person.

use super::{
    Broker, BrokerError, Receipted, Result,
    commands::{DecideAlert, ListAlerts},
    receipt,
};
use crate::{
    domain::{Alert, AlertState, Finding},
    ledger::LedgerError,
    monitor::CURSOR,
    policy::Caller,
};

impl Broker {
    /// Raises an alert for each finding and moves the monitor's cursor to
    /// `next_seq`, in one commit ([`crate::monitor`]).
    pub async fn raise_alerts(
        &self,
        findings: &[Finding],
        next_seq: u64,
    ) -> std::result::Result<Vec<Alert>, LedgerError> {
        self.raise(findings, Some(next_seq)).await
    }

    /// Raises an alert for each finding of the system-health rules
    /// ([`crate::monitor::health`]), in one commit that leaves the log
    /// follower's cursor where it is: these findings judge the ledger's
    /// state, not entries, so they are behind no cursor.
    pub async fn raise_system_alerts(
        &self,
        findings: &[Finding],
    ) -> std::result::Result<Vec<Alert>, LedgerError> {
        self.raise(findings, None).await
    }

    async fn raise(
        &self,
        findings: &[Finding],
        cursor: Option<u64>,
    ) -> std::result::Result<Vec<Alert>, LedgerError> {
        let (alerts, _) = self
            .ledger
            .commit(&*self.clock, |_, b, now| {
                let mut raised = Vec::with_capacity(findings.len());
                for f in findings {
                    let (a, d) = Alert::raise(f.clone(), now);
                    b.log(d);
                    b.put_alert(a.clone());
                    raised.push(a);
                }
                if let Some(next_seq) = cursor {
                    b.put_cursor(CURSOR, next_seq);
                }
                Ok::<_, LedgerError>(raised)
            })
            .await?;
        Ok(alerts)
    }

    /// Alerts the caller may see, newest first.
    pub fn list_alerts(&self, caller: &Caller, cmd: &ListAlerts) -> Result<Vec<Alert>> {
        let own = caller.tenant();
        let mut out: Vec<Alert> = self
            .ledger
            .all_alerts()?
            .into_iter()
            .filter(|a| own.is_none_or(|t| a.tenant == t.as_str()))
            .filter(|a| cmd.include_resolved || a.state != AlertState::Resolved)
            .filter(|a| cmd.min_severity.is_none_or(|s| a.severity >= s))
            .filter(|a| cmd.rule.is_none_or(|r| a.rule == r))
            .filter(|a| cmd.tenant.as_ref().is_none_or(|t| a.tenant == t.as_str()))
            .collect();
        out.sort_by(|a, b| b.raised_at.cmp(&a.raised_at).then(b.id.cmp(&a.id)));
        Ok(out)
    }

    /// Someone is on it.
    pub async fn acknowledge_alert(
        &self,
        caller: &Caller,
        cmd: DecideAlert,
    ) -> Result<Receipted<Alert>> {
        self.decide_alert(caller, cmd, true).await
    }

    /// Done with.
    pub async fn resolve_alert(
        &self,
        caller: &Caller,
        cmd: DecideAlert,
    ) -> Result<Receipted<Alert>> {
        self.decide_alert(caller, cmd, false).await
    }

    async fn decide_alert(
        &self,
        caller: &Caller,
        cmd: DecideAlert,
        acknowledge: bool,
    ) -> Result<Receipted<Alert>> {
        let actor = caller.actor();
        let (alert, c) = self
            .ledger
            .commit(&*self.clock, |v, b, now| {
                let Some(mut a) = v.alert(&cmd.id)? else {
                    return Err(BrokerError::NotFound(format!(
                        "no alert {}; `daypass alerts list --all` shows every alert",
                        cmd.id
                    )));
                };
                let note = cmd.note.to_string();
                let draft = if acknowledge {
                    a.acknowledge(now, &actor, &note)
                } else {
                    a.resolve(now, &actor, &note)
                };
                let Some(d) = draft else {
                    return Err(BrokerError::FailedPrecondition(format!(
                        "alert {} is already {}",
                        a.id,
                        a.state.as_str()
                    )));
                };
                b.log(d);
                b.put_alert(a.clone());
                Ok(a)
            })
            .await?;
        Ok((alert, receipt(c)?))
    }
}
