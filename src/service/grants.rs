//! The grant lifecycle's use cases: request (no stacking), approve or
//! deny, list and show, revoke and release, and grant certificates. The
//! transitions themselves are [`crate::domain::grant`]'s.

use super::{Broker, BrokerError, Receipted, Result, not_found, receipt};
use crate::{
    domain::{Actor, Approval, Grant, GrantId, GrantState, Note, detail, grant::Ending},
    gate::IssuedCertificate,
    policy::{self, Caller, Verdict},
    service::commands::{Decide, IssueCertificate, ListGrants, RequestGrant},
};

impl Broker {
    /// A support engineer or root holder asks for access to a tenant; with
    /// `break_glass`, opens it at once in an emergency
    /// ([`policy::may_break_glass`]), for the break-glass default length
    /// unless it asks for another, at most the break-glass maximum.
    ///
    /// Stacking rule: while the requester has a live (pending or active)
    /// grant for the same tenant, a new request is refused with
    /// ALREADY_EXISTS naming that grant; release it first. Access can thus
    /// never be extended past 24 h by overlapping grants. A scheduled grant
    /// (`starts_at` later than now) is live from its request, so it counts.
    ///
    /// A start may be at most a minute ago (clock skew: then it is now) and
    /// at most `grants.max_schedule_ahead_secs` ahead; otherwise
    /// INVALID_ARGUMENT says the bound. The tenant's cumulative access
    /// limit, if it has one, is checked here and again at approval
    /// (FAILED_PRECONDITION with the time the needed hours free up).
    pub async fn request_grant(
        &self,
        caller: &Caller,
        cmd: RequestGrant,
    ) -> Result<Receipted<Grant>> {
        let Caller::Staff { name: holder, role } = caller else {
            return Err(BrokerError::PermissionDenied(
                "only staff can hold grants".into(),
            ));
        };
        let RequestGrant {
            tenant,
            reason,
            ticket,
            duration_secs,
            reason_code,
            break_glass,
            scopes,
            starts_at,
        } = cmd;
        let ahead = self.limits.max_schedule_ahead_secs;
        let max = if break_glass {
            self.limits
                .break_glass_max_secs
                .min(self.limits.max_duration_secs)
        } else {
            self.limits.max_duration_secs
        };
        let what = if break_glass { "break-glass " } else { "" };
        if break_glass && starts_at.is_some() {
            return Err(BrokerError::InvalidArgument(
                "a break-glass grant is for now: it takes no start (drop --start, or ask for a \
                 scheduled grant without --break-glass)"
                    .into(),
            ));
        }
        let duration_secs = match duration_secs {
            0 if break_glass => self.limits.break_glass_default_secs.min(max),
            0 => max,
            d if d < 0 => {
                let zero = if break_glass {
                    format!(
                        "the break-glass default of {} s",
                        self.limits.break_glass_default_secs.min(max)
                    )
                } else {
                    format!("the maximum of {max} s")
                };
                return Err(BrokerError::InvalidArgument(format!(
                    "duration must be positive (or 0 for {zero}), not {d}"
                )));
            }
            d if d > max => {
                return Err(BrokerError::InvalidArgument(format!(
                    "duration {d} s exceeds the {what}maximum of {max} s; ask for at most {}",
                    human_secs(max)
                )));
            }
            d => d,
        };
        let actor = caller.actor();
        let pending_ttl = self.limits.pending_ttl_secs;
        let _location = self.location().reading().await;
        let _groups = self.groups().reading().await;
        let (grant, c) = self
            .ledger
            .commit(&*self.clock, |s, b, now| {
                let start = scheduled_start(starts_at, now, ahead)?;
                let Some(t) = s.tenant(&tenant)? else {
                    return Err(BrokerError::NotFound(format!(
                        "tenant {tenant} does not exist; `daypass tenant list` shows the tenants"
                    )));
                };
                if let Some(why) = t.closed() {
                    return Err(BrokerError::FailedPrecondition(why));
                }
                // An emergency skips approval, never the tenant's other
                // rules (declaration, countries, recertification,
                // justification): those are the agreement's promises.
                if break_glass {
                    policy::may_break_glass(*role, &t).map_err(BrokerError::PermissionDenied)?;
                }
                if let Some(why) =
                    self.lacks_declaration(holder, &t, s.staff(holder)?.as_ref())
                {
                    return Err(BrokerError::FailedPrecondition(why));
                }
                if let Some(why) = self.lapsed_eligibility(holder, s.staff(holder)?.as_ref(), now)
                {
                    return Err(BrokerError::FailedPrecondition(why));
                }
                if let Some(why) = self.location_refusal(holder, &t, now) {
                    return Err(BrokerError::FailedPrecondition(why));
                }
                if t.require_ticket && ticket.is_empty() {
                    return Err(BrokerError::InvalidArgument(format!(
                        "tenant {tenant} requires a ticket reference: pass --ticket"
                    )));
                }
                if let Some(why) = t.justification.refusal(&tenant, reason_code, &ticket) {
                    return Err(BrokerError::InvalidArgument(why));
                }
                let mut settled = None;
                if let Some(mut prev) = s.latest_grant(holder, &tenant)? {
                    if prev.state.is_live() {
                        if prev.live_until().is_some_and(|d| now < d) {
                            return Err(BrokerError::AlreadyExists(format!(
                                "you already hold {} grant {} for {tenant}; release it (`daypass grant release {}`) before asking again",
                                prev.state.as_str(),
                                prev.id,
                                prev.id
                            )));
                        }
                        // Past its deadline but not yet swept: close it first
                        // (a scheduled one activated at its start, then expired).
                        for d in prev.settle(now) {
                            b.log(d);
                        }
                        b.put_grant(prev.clone());
                        settled = Some(prev);
                    }
                }
                if let Some(limit) = t.access_limit {
                    let others = self.holder_grants(s, holder, &tenant, settled)?;
                    if let Err(e) =
                        limit.check(&others, start.unwrap_or(now), duration_secs, now)
                    {
                        return Err(BrokerError::FailedPrecondition(e.message(tenant.as_str())));
                    }
                }
                let (mut g, requested) = Grant::request(
                    &actor,
                    holder.clone(),
                    tenant.clone(),
                    &reason,
                    &ticket,
                    duration_secs,
                    t.approval,
                    now,
                );
                let requested = g.set_reason_code(reason_code, requested);
                let requested = g.set_scopes(scopes.clone(), requested);
                let requested = g.set_approver_group(t.approver_group.clone(), requested);
                let requested = match start {
                    Some(at) => g.schedule_from(at, requested),
                    None => requested,
                };
                if break_glass {
                    for d in g.break_glass(now, &actor, requested) {
                        b.log(d);
                    }
                } else if t.approval == Approval::Auto {
                    b.log(requested);
                    if start.is_some() {
                        b.log(g.schedule(&Actor::System));
                    } else {
                        b.log(g.activate(now, &Actor::System));
                    }
                } else {
                    let requested = self.name_approvers(s, &g, requested)?;
                    let until = now.plus_secs(pending_ttl);
                    g.await_approval(until);
                    b.log(requested.with(detail::PENDING_UNTIL, until));
                }
                b.put_grant(g.clone());
                Ok(g)
            })
            .await?;
        self.track(&grant);
        Ok((grant, receipt(c)?))
    }

    /// Approves (`approve`) or denies a pending request.
    pub async fn decide(
        &self,
        caller: &Caller,
        cmd: Decide,
        approve: bool,
    ) -> Result<Receipted<Grant>> {
        let Decide { grant: id, note } = cmd;
        let actor = caller.actor();
        let _location = self.location().reading().await;
        let _groups = self.groups().reading().await;
        let (grant, c) = self
            .ledger
            .commit(&*self.clock, |s, b, now| {
                let mut g = s.grant(&id)?.ok_or_else(|| not_found(&id))?;
                match policy::may_decide(caller, &g) {
                    Verdict::Allowed => {}
                    Verdict::Hidden => return Err(not_found(&id)),
                    Verdict::Denied(why) => return Err(BrokerError::PermissionDenied(why.into())),
                }
                if g.state != GrantState::Pending {
                    return Err(BrokerError::FailedPrecondition(format!(
                        "grant {id} is {}, not pending",
                        g.state.as_str()
                    )));
                }
                if g.pending_until.is_none_or(|u| now >= u) {
                    return Err(BrokerError::FailedPrecondition(format!(
                        "the request {id} expired unapproved; the requester must ask again"
                    )));
                }
                let group = self.groups().of(g.approver_group.as_ref());
                if let Err(why) = policy::may_decide_under(caller, &g, group.as_ref()) {
                    return Err(BrokerError::PermissionDenied(why));
                }
                if approve {
                    if let Some(why) =
                        self.lapsed_eligibility(&g.holder, s.staff(&g.holder)?.as_ref(), now)
                    {
                        return Err(BrokerError::FailedPrecondition(format!(
                            "cannot approve grant {id}: {why}"
                        )));
                    }
                    let why = match s.tenant(&g.tenant)? {
                        Some(t) => self
                            .lacks_declaration(&g.holder, &t, s.staff(&g.holder)?.as_ref())
                            .or_else(|| self.location_refusal(&g.holder, &t, now)),
                        None => None,
                    };
                    if let Some(why) = why {
                        return Err(BrokerError::FailedPrecondition(format!(
                            "cannot approve grant {id}: {why}"
                        )));
                    }
                    // The approval that makes it active or scheduled is
                    // held to the access limit again: time has passed.
                    let mut probe = g.clone();
                    probe.approve(now, &actor, &note);
                    let limit = match s.tenant(&g.tenant)? {
                        Some(t) if probe.state != GrantState::Pending => t.access_limit,
                        _ => None,
                    };
                    if let Some(limit) = limit {
                        let others = self.holder_grants(s, &g.holder, &g.tenant, None)?;
                        let others: Vec<Grant> =
                            others.into_iter().filter(|o| o.id != g.id).collect();
                        let start = g.starts_at.map_or(now, |st| st.max(now));
                        if let Err(e) = limit.check(&others, start, g.duration_secs, now) {
                            return Err(BrokerError::FailedPrecondition(format!(
                                "cannot approve grant {id}: {}",
                                e.message(g.tenant.as_str())
                            )));
                        }
                    }
                    for d in g.approve(now, &actor, &note) {
                        b.log(d);
                    }
                } else {
                    b.log(g.deny(now, &actor, &note));
                }
                b.put_grant(g.clone());
                Ok(g)
            })
            .await?;
        self.track(&grant);
        Ok((grant, receipt(c)?))
    }

    /// Grants the caller may see, optionally filtered; or with
    /// `awaiting_me`, the pending requests that wait for the caller's
    /// decision; or with `awaiting_review`, the break-glass grants that
    /// wait for the caller's review.
    pub fn list_grants(&self, caller: &Caller, filter: &ListGrants) -> Result<Vec<Grant>> {
        let now = self.now();
        let mut grants: Vec<Grant> = self
            .ledger
            .all_grants()?
            .into_iter()
            .filter(|g| {
                if filter.awaiting_review {
                    policy::awaits_review(caller, g)
                } else if filter.awaiting_me {
                    let group = self.groups().of(g.approver_group.as_ref());
                    policy::awaits(caller, g, group.as_ref(), now)
                } else {
                    policy::may_see(caller, g)
                }
            })
            .filter(|g| filter.tenant.as_ref().is_none_or(|t| g.tenant == *t))
            .filter(|g| filter.holder.as_ref().is_none_or(|h| g.holder == *h))
            .filter(|g| !filter.live_only || g.state.is_live())
            .collect();
        grants.sort_by(|a, b| a.requested_at.cmp(&b.requested_at).then(a.id.cmp(&b.id)));
        Ok(grants)
    }

    /// A grant the caller may see; any other is reported as unknown.
    pub fn get_grant(&self, caller: &Caller, id: &GrantId) -> Result<Grant> {
        match self.ledger.grant(id)? {
            Some(g) if policy::may_see(caller, &g) => Ok(g),
            _ => Err(not_found(id)),
        }
    }

    /// An admin, or the grant's tenant, ends a grant now.
    pub async fn revoke(&self, caller: &Caller, cmd: Decide) -> Result<Receipted<Grant>> {
        self.end(
            caller,
            &cmd.grant,
            Ending::Revoke,
            &cmd.note,
            policy::may_revoke,
        )
        .await
    }

    /// The holder gives up their grant now.
    pub async fn release(&self, caller: &Caller, id: &GrantId) -> Result<Receipted<Grant>> {
        self.end(
            caller,
            id,
            Ending::Release,
            &Note::default(),
            policy::may_release,
        )
        .await
    }

    async fn end(
        &self,
        caller: &Caller,
        id: &GrantId,
        ending: Ending,
        note: &Note,
        allowed: impl FnOnce(&Caller, &Grant) -> bool,
    ) -> Result<Receipted<Grant>> {
        let actor = caller.actor();
        let (g, c) = self
            .ledger
            .commit(&*self.clock, |s, b, now| {
                let mut g = s.grant(id)?.ok_or_else(|| not_found(id))?;
                if !allowed(caller, &g) {
                    // Indistinguishable from an unknown id for tenants and
                    // staff; admins can see everything anyway.
                    return Err(not_found(id));
                }
                if !g.state.is_live() || g.live_until().is_none_or(|d| now >= d) {
                    return Err(BrokerError::FailedPrecondition(format!(
                        "grant {id} has already ended ({})",
                        if g.state.is_live() {
                            "expired"
                        } else {
                            g.state.as_str()
                        }
                    )));
                }
                // A scheduled grant past its start was active until now.
                if let Some(d) = g.activate_if_due(now) {
                    b.log(d);
                }
                b.log(g.end(ending, now, &actor, note));
                // Into the revocation lists now, before the entry is
                // durable: a list issued after the answer always holds it,
                // even if this group's flush fails and succeeds later. If
                // the group fails instead, the grant stays listed (tenants
                // refuse it offline): fail closed, and the retried call
                // succeeds.
                self.gate.note_ended(&g, now);
                b.put_grant(g.clone());
                Ok(g)
            })
            .await?;
        Ok((g, receipt(c)?))
    }

    /// The holder of an active grant gets a grant certificate for the key
    /// in the request (logged as `grant.certificate_issued`).
    pub async fn issue_grant_certificate(
        &self,
        caller: &Caller,
        cmd: IssueCertificate,
    ) -> Result<Receipted<(Grant, IssuedCertificate)>> {
        let IssueCertificate { grant: id, csr_pem } = cmd;
        let actor = caller.actor();
        let (out, c) = self
            .ledger
            .commit(&*self.clock, |s, b, now| {
                let mut g = s.grant(&id)?.ok_or_else(|| not_found(&id))?;
                if !policy::may_use(caller, &g) {
                    return Err(not_found(&id));
                }
                if self.start_if_due(s, b, &mut g, now)? {
                    b.put_grant(g.clone());
                }
                if let Err(why) = g.is_valid_at(now) {
                    return Err(BrokerError::FailedPrecondition(format!(
                        "grant {id} is not active ({}): certificates are issued for active grants only",
                        why.as_str()
                    )));
                }
                let issued = self
                    .gate
                    .issue_certificate(&g, &self.location().location(&g.holder), &csr_pem, now)
                    .map_err(|e| BrokerError::InvalidArgument(e.to_string()))?;
                b.log(
                    g.draft(&actor, crate::domain::EventKind::GrantCertificateIssued)
                        .with(detail::SERIAL, &issued.serial)
                        .with(detail::NOT_AFTER, issued.not_after),
                );
                Ok((g, issued))
            })
            .await?;
        self.track(&out.0);
        Ok((out, receipt(c)?))
    }

    /// The holder's grants for the tenant as the commit sees them, with
    /// `settled` (changed in this commit) in place of its stored version.
    fn holder_grants(
        &self,
        s: &crate::ledger::View<'_>,
        holder: &crate::domain::Name,
        tenant: &crate::domain::Name,
        settled: Option<Grant>,
    ) -> Result<Vec<Grant>> {
        let mut all = s.holder_grants(holder, tenant)?;
        if let Some(p) = settled {
            match all.iter_mut().find(|g| g.id == p.id) {
                Some(g) => *g = p,
                None => all.push(p),
            }
        }
        Ok(all)
    }
}

/// How far in the past a requested start may be (clock skew): a start at
/// most this long ago means now.
pub const START_SKEW_SECS: i64 = 60;

/// A requested start as the clock sees it: `None` for now (unset, or at
/// most [`START_SKEW_SECS`] ago), or a later start within `ahead` seconds.
fn scheduled_start(
    asked: Option<crate::clock::Timestamp>,
    now: crate::clock::Timestamp,
    ahead: i64,
) -> Result<Option<crate::clock::Timestamp>> {
    let Some(at) = asked else {
        return Ok(None);
    };
    if at <= now {
        if now.millis() - at.millis() > START_SKEW_SECS * 1000 {
            return Err(BrokerError::InvalidArgument(format!(
                "the start {} is in the past (it is now {}); give a start from now on (at most {START_SKEW_SECS} s ago), or none to start now",
                at.to_rfc3339(),
                now.to_rfc3339()
            )));
        }
        return Ok(None);
    }
    let latest = now.plus_secs(ahead);
    if at > latest {
        return Err(BrokerError::InvalidArgument(if ahead == 0 {
            "this server takes no scheduled grants (grants.max_schedule_ahead_secs = 0): leave the start out to start now".to_string()
        } else {
            format!(
                "the start {} is more than {} ahead (grants.max_schedule_ahead_secs); give a start before {}",
                at.to_rfc3339(),
                human_secs(ahead),
                latest.to_rfc3339()
            )
        }));
    }
    Ok(Some(at))
}

impl Broker {
    /// A pending request's entry names who it waits for (`awaits`,
    /// `approvers`), so the webhooks can notify them. Under a group policy
    /// a request the group's other active members cannot approve is
    /// refused (it could only expire).
    fn name_approvers(
        &self,
        s: &crate::ledger::View<'_>,
        g: &Grant,
        requested: crate::domain::Draft,
    ) -> Result<crate::domain::Draft> {
        let group = self.groups().of(g.approver_group.as_ref());
        let eligible = match &group {
            Some(grp) => self.eligible(s, grp, Some(&g.holder))?,
            None => Vec::new(),
        };
        if let Some(r) = g.approver_group.as_ref() {
            if eligible.len() < r.threshold as usize {
                return Err(BrokerError::FailedPrecondition(format!(
                    "tenant {}'s grants need {}, but only {} of its members other than you \
                     can approve; ask an admin to add members (`daypass staff group set {}`)",
                    g.tenant,
                    r.describe(),
                    eligible.len(),
                    r.group
                )));
            }
        }
        let (awaits, approvers) = crate::domain::group::awaits(
            g.policy(),
            &g.tenant,
            g.approver_group.as_ref(),
            &eligible,
        );
        let requested = requested.with(detail::AWAITS, awaits);
        Ok(match approvers {
            Some(a) => requested.with(detail::APPROVERS, a),
            None => requested,
        })
    }
}

fn human_secs(s: i64) -> String {
    match s {
        s if s % 86_400 == 0 && s > 86_400 => format!("{} days", s / 86_400),
        s if s % 3600 == 0 => format!("{} h", s / 3600),
        s if s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}
