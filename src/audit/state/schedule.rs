//! The scheduled grants' and the access limit's part of the log's
//! semantics: a grant is scheduled (`grant.scheduled`) only before its
//! start and once its policy is met; a scheduled grant activates at its
//! start, never before, and expires its duration (at most 24 h) after;
//! and every request, and every approval that makes a grant active or
//! scheduled, keeps within its tenant's access limit as the log tells it
//! (the same [`crate::domain::AccessLimit::check`] the server runs).

use super::{LogState, timestamp};
use crate::{
    audit::Entry,
    domain::{Approval, Grant, GrantId, GrantState, Name, detail},
};

impl LogState {
    /// `grant.scheduled`: a pending grant with a start, its policy met,
    /// before its start.
    pub(super) fn scheduled(&mut self, e: &Entry) -> Result<(), String> {
        let now = e.timestamp;
        let at = timestamp(e, detail::STARTS_AT)?;
        self.within_access_limit(e)?;
        let g = self.live_grant(e)?;
        let id = &g.grant.id;
        if g.grant.state != GrantState::Pending {
            return Err(format!(
                "grant {id} is scheduled but it is {}",
                g.grant.state.as_str()
            ));
        }
        if g.grant.starts_at != Some(at) {
            return Err(format!(
                "grant {id} is scheduled to start at {at}, not at its requested start"
            ));
        }
        if now >= at {
            return Err(format!(
                "grant {id} is scheduled at {now}, not before its start {at}"
            ));
        }
        if let Some(policy) = g.grant.approval {
            if !policy.satisfied(&g.grant.approvals) {
                return Err(format!(
                    "grant {id} is scheduled without the approval of {} (policy {})",
                    policy.waiting_for(&g.grant.approvals),
                    policy.as_str()
                ));
            }
        }
        g.grant.state = GrantState::Scheduled;
        g.grant.pending_until = None;
        self.touch(e);
        Ok(())
    }

    /// `grant.activated` of a scheduled grant: at its start (the entry is
    /// written then or later), until its start plus its duration.
    pub(super) fn scheduled_activated(&mut self, e: &Entry) -> Result<(), String> {
        let now = e.timestamp;
        let max = self.rules.max_grant_secs;
        let activated = timestamp(e, detail::ACTIVATED_AT)?;
        let expires = timestamp(e, detail::EXPIRES_AT)?;
        let g = self.live_grant(e)?;
        let id = &g.grant.id;
        let start = g
            .grant
            .starts_at
            .ok_or("a scheduled grant without a start")?;
        if activated != start || now < start {
            return Err(format!(
                "grant {id} is activated at {activated} (written {now}); it is scheduled to start at {start}"
            ));
        }
        if expires != start.plus_secs(g.grant.duration_secs) || g.grant.duration_secs > max {
            return Err(format!(
                "grant {id} is activated until {expires}, not for its {} s from its start (at most {max} s)",
                g.grant.duration_secs
            ));
        }
        let g = &mut g.grant;
        g.state = GrantState::Active;
        g.pending_until = None;
        g.activated_at = Some(start);
        g.expires_at = Some(expires);
        self.touch(e);
        Ok(())
    }

    /// An approval made the entry's grant active or scheduled: within the
    /// tenant's access limit then (an `auto` grant was held to it at its
    /// request, in the same commit).
    pub(super) fn within_access_limit(&self, e: &Entry) -> Result<(), String> {
        let g = &self.grant_of(e)?.grant;
        if g.state != GrantState::Pending || matches!(g.approval, None | Some(Approval::Auto)) {
            return Ok(());
        }
        let Some(limit) = self
            .tenants
            .get(&g.tenant)
            .and_then(|(t, _)| t.access_limit)
        else {
            return Ok(());
        };
        let now = e.timestamp;
        let start = g.starts_at.map_or(now, |s| s.max(now));
        let others = self.holder_grants(&g.holder, &g.tenant, &g.id);
        limit
            .check(others, start, g.duration_secs, now)
            .map_err(|x| {
                format!(
                    "grant {} is approved beyond the access limit: {}",
                    g.id,
                    x.message(g.tenant.as_str())
                )
            })
    }

    /// The holder's other grants for the tenant (a scan: only for tenants
    /// with an access limit).
    pub(super) fn holder_grants<'a>(
        &'a self,
        holder: &'a Name,
        tenant: &'a Name,
        except: &'a GrantId,
    ) -> impl Iterator<Item = &'a Grant> + 'a {
        self.grants
            .values()
            .map(|g| &g.grant)
            .filter(move |g| g.holder == *holder && g.tenant == *tenant && g.id != *except)
    }
}
