//! The break-glass part of the log's semantics: a `grant.requested` with
//! `break_glass = true` needs the holder's right to open one at that time
//! ([`policy::may_break_glass`]: a root holder, or support on a tenant that
//! allows it) and a duration within the break-glass maximum; a
//! `grant.reviewed` is for a break-glass grant that opened, once, by
//! someone [`policy::may_review`] allows (never its holder), with a known
//! verdict. The activation's own rule (by the holder, at the request,
//! whatever the policy) is in [`super::LogState`]'s step.

use super::{LogState, grant_id};
use crate::{
    audit::Entry,
    domain::{GrantId, GrantReview, Name, ReviewVerdict, Role, detail},
    policy::{self, Caller, Verdict},
};

impl LogState {
    /// May `holder` open a break-glass grant for `tenant` now, for this long?
    pub(super) fn may_break_glass(
        &self,
        id: &GrantId,
        holder: &Name,
        tenant: &Name,
        duration_secs: i64,
    ) -> Result<(), String> {
        let Some((r, _)) = self.staff.get(holder) else {
            return Err(format!(
                "grant {id} is requested by {holder}, who is not enrolled"
            ));
        };
        let Some((t, _)) = self.tenants.get(tenant) else {
            return Err(format!(
                "grant {id} is for tenant {tenant}, which was never added"
            ));
        };
        if let Err(why) = policy::may_break_glass(r.role, t) {
            return Err(format!(
                "break-glass grant {id} is opened by {holder} ({}): {why}",
                r.role
            ));
        }
        let max = self.rules.max_break_glass_secs;
        if duration_secs > max {
            return Err(format!(
                "break-glass grant {id} is requested for {duration_secs} s (at most {max} s)"
            ));
        }
        Ok(())
    }

    /// A review of a break-glass grant.
    pub(super) fn reviewed(&mut self, e: &Entry) -> Result<(), String> {
        let verdict = e
            .details
            .get(detail::VERDICT)
            .ok_or_else(|| "verdict is missing".to_string())
            .and_then(|v| ReviewVerdict::parse(v))?;
        let caller = self.caller_of(&e.actor);
        let g = &self.grant_of(e)?.grant;
        g.reviewable()?;
        let allowed = match &caller {
            Some(c) => policy::may_review(c, g),
            None => Verdict::Denied("not an enrolled reviewer"),
        };
        match allowed {
            Verdict::Allowed => {}
            Verdict::Hidden => {
                return Err(format!(
                    "grant {} of tenant {} is reviewed by {}",
                    g.id, g.tenant, e.actor
                ));
            }
            Verdict::Denied(why) => {
                return Err(format!("grant {} is reviewed by {}: {why}", g.id, e.actor));
            }
        }
        let id = grant_id(e)?;
        if let Some(g) = self.grants.get_mut(&id) {
            g.grant.review = Some(GrantReview {
                by: e.actor.clone(),
                at: e.timestamp,
                verdict,
                note: e.details.get(detail::NOTE).cloned().unwrap_or_default(),
            });
        }
        self.touch(e);
        Ok(())
    }

    /// The caller an entry's actor was, as the registries say at this
    /// point of the log (`None`: not enrolled, offboarded, or no principal).
    fn caller_of(&self, actor: &str) -> Option<Caller> {
        let (kind, name) = actor.split_once('/')?;
        let name = Name::parse(name).ok()?;
        match kind {
            "tenant" => self
                .tenants
                .contains_key(&name)
                .then_some(Caller::Tenant { name }),
            "staff" | "auditor" => {
                let (r, _) = self.staff.get(&name)?;
                if !r.is_active() || (kind == "auditor") != (r.role == Role::Auditor) {
                    return None;
                }
                Some(Caller::Staff { name, role: r.role })
            }
            _ => None,
        }
    }
}
