//! Warning screens: pairing (an admin issues a one-time code), opening a
//! session with the code (the browser), checking a session cookie, and
//! what the screen shows ([`ScreenView`]: active grants, open alerts, the
//! last events, health). The HTTP face is [`crate::screen`].

use serde::Serialize;

use super::{
    Broker, BrokerError, Receipted, Result,
    commands::{PairScreen, RevokeScreen},
    receipt,
};
use crate::{
    clock::Timestamp,
    domain::{
        AlertState, GrantState, Name, ScreenRecord, ScreenRefusal, SessionCookie,
        screen::normalize_code,
    },
    policy::Caller,
};

/// Events shown under "last events".
pub const LAST_EVENTS: u64 = 12;

/// What a warning screen shows, as sent to it (JSON).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ScreenView {
    /// The server's time (ms since the epoch, injected clock): the page
    /// counts time left from it, not from the kiosk's own clock.
    pub now_ms: i64,
    pub screen: String,
    pub grants: Vec<GrantRow>,
    pub alerts: Vec<AlertRow>,
    pub events: Vec<EventRow>,
    pub health: Health,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GrantRow {
    pub id: String,
    pub holder: String,
    pub tenant: String,
    pub reason: String,
    pub ticket: String,
    pub expires_at_ms: i64,
    /// Opened in an emergency without approval: shown loudly.
    pub break_glass: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AlertRow {
    pub id: String,
    pub severity: &'static str,
    pub rule: &'static str,
    pub subject: String,
    pub tenant: String,
    pub summary: String,
    pub state: &'static str,
    pub raised_at_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EventRow {
    pub seq: u64,
    pub at_ms: i64,
    pub kind: String,
    pub actor: String,
    pub tenant: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Health {
    /// `None`: the store takes writes; else why not.
    pub problem: Option<String>,
    pub log_size: u64,
    pub checkpoint_size: u64,
    /// Seconds since the newest entry the checkpoint covers was written.
    pub checkpoint_age_secs: Option<i64>,
}

impl Broker {
    /// A pairing code for screen `cmd.name` (shown once), logged.
    pub async fn pair_screen(
        &self,
        caller: &Caller,
        cmd: PairScreen,
    ) -> Result<Receipted<(ScreenRecord, String)>> {
        let actor = caller.actor();
        let (out, c) = self
            .ledger
            .commit(&*self.clock, |v, b, now| {
                let existing = v.screen(&cmd.name)?;
                let (r, code, d) =
                    ScreenRecord::pair(existing, cmd.name.clone(), &actor, now, cmd.ttl_secs);
                b.log(d);
                b.put_screen(r.clone());
                Ok::<_, BrokerError>((r, code))
            })
            .await?;
        Ok((out, receipt(c)?))
    }

    /// Ends screen `cmd.name`'s session and any unused code, logged.
    pub async fn revoke_screen(
        &self,
        caller: &Caller,
        cmd: RevokeScreen,
    ) -> Result<Receipted<ScreenRecord>> {
        let actor = caller.actor();
        let (r, c) = self
            .ledger
            .commit(&*self.clock, |v, b, now| {
                let Some(mut r) = v.screen(&cmd.name)? else {
                    return Err(BrokerError::NotFound(format!(
                        "no screen {}; `daypass screen list` shows them",
                        cmd.name
                    )));
                };
                let Some(d) = r.revoke(&actor, now) else {
                    return Err(BrokerError::FailedPrecondition(format!(
                        "screen {} is already revoked; `daypass screen pair {}` pairs it again",
                        r.name, r.name
                    )));
                };
                b.log(d);
                b.put_screen(r.clone());
                Ok(r)
            })
            .await?;
        Ok((r, receipt(c)?))
    }

    pub fn list_screens(&self) -> Result<Vec<ScreenRecord>> {
        Ok(self.ledger.all_screens()?)
    }

    /// Uses a pairing code (from the browser at `peer`): opens the
    /// session of the screen it was issued for, logged as that screen.
    /// `Ok(Err(_))`: the code is not accepted.
    pub async fn open_screen_session(
        &self,
        code: &str,
        peer: &str,
    ) -> Result<std::result::Result<SessionCookie, ScreenRefusal>> {
        let Some(code) = normalize_code(code) else {
            return Ok(Err(ScreenRefusal::BadCode));
        };
        // Screens are few: find the one whose code this is, then open its
        // session under the writer lock (which checks the code again).
        let now = self.clock.now();
        let Some(name) = self
            .ledger
            .all_screens()?
            .into_iter()
            .find(|r| r.awaits(&code, now))
            .map(|r| r.name)
        else {
            return Ok(Err(ScreenRefusal::BadCode));
        };
        let result = self
            .ledger
            .commit(&*self.clock, |v, b, now| {
                let Some(mut r) = v.screen(&name)? else {
                    return Ok(Err(ScreenRefusal::BadCode));
                };
                match r.open_session(&code, now, peer) {
                    Ok((cookie, d)) => {
                        b.log(d);
                        b.put_screen(r);
                        Ok::<_, BrokerError>(Ok(cookie))
                    }
                    Err(e) => Ok(Err(e)),
                }
            })
            .await?;
        Ok(result.0)
    }

    /// The screen a session cookie belongs to, if it is open.
    pub fn screen_session(&self, cookie: &SessionCookie) -> Result<Option<Name>> {
        Ok(self
            .ledger
            .screen(&cookie.name)?
            .filter(|r| r.admits(cookie).is_ok())
            .map(|r| r.name))
    }

    /// What screen `screen` shows now.
    pub fn screen_view(&self, screen: &Name) -> Result<ScreenView> {
        let now = self.clock.now();
        let mut grants: Vec<GrantRow> = self
            .ledger
            .live_grants()?
            .into_iter()
            .filter(|g| g.state == GrantState::Active)
            .map(|g| GrantRow {
                id: g.id.to_string(),
                holder: g.holder.to_string(),
                tenant: g.tenant.to_string(),
                reason: g.reason,
                ticket: g.ticket,
                expires_at_ms: g.expires_at.map_or(0, Timestamp::millis),
                break_glass: g.break_glass,
            })
            .collect();
        grants.sort_by(|a, b| a.expires_at_ms.cmp(&b.expires_at_ms).then(a.id.cmp(&b.id)));
        let mut alerts: Vec<AlertRow> = self
            .ledger
            .all_alerts()?
            .into_iter()
            .filter(|a| a.state != AlertState::Resolved)
            .map(|a| AlertRow {
                id: a.id.to_string(),
                severity: a.severity.as_str(),
                rule: a.rule.as_str(),
                subject: a.subject,
                tenant: a.tenant,
                summary: a.summary,
                state: a.state.as_str(),
                raised_at_ms: a.raised_at.millis(),
            })
            .collect();
        // Most severe first, then newest.
        alerts.sort_by(|a, b| {
            severity_rank(b.severity)
                .cmp(&severity_rank(a.severity))
                .then(b.raised_at_ms.cmp(&a.raised_at_ms))
        });
        let size = self.ledger.durable_size();
        let mut events = Vec::new();
        for s in self
            .ledger
            .entries_from(size.saturating_sub(LAST_EVENTS))
            .take(LAST_EVENTS as usize)
        {
            let e = s?.entry;
            events.push(EventRow {
                seq: e.seq,
                at_ms: e.timestamp.millis(),
                kind: e.kind,
                actor: e.actor,
                tenant: e.tenant,
            });
        }
        events.reverse();
        let checkpoint = self.ledger.latest_checkpoint();
        let checkpoint_size = checkpoint.as_ref().map_or(0, |c| c.size);
        let checkpoint_age_secs = match checkpoint_size.checked_sub(1) {
            Some(last) => self
                .ledger
                .entry(last)?
                .map(|s| (now.millis() - s.entry.timestamp.millis()).max(0) / 1000),
            None => None,
        };
        Ok(ScreenView {
            now_ms: now.millis(),
            screen: screen.to_string(),
            grants,
            alerts,
            events,
            health: Health {
                problem: crate::metrics::not_ready(self),
                log_size: size,
                checkpoint_size,
                checkpoint_age_secs,
            },
        })
    }
}

fn severity_rank(s: &str) -> u8 {
    match s {
        "critical" => 2,
        "warning" => 1,
        _ => 0,
    }
}
