//! Grant records and their lifecycle, with every transition as a method
//! that changes the record and returns the entry that records it:
//!
//! ```text
//! request ─┬─ auto ──────────────▶ Active ─┬─ expires_at ─▶ Expired
//!          └─ approval ▶ Pending ─┤        ├─ revoke ─────▶ Revoked
//!                                 │        ├─ offboard ───▶ Revoked (offboarded)
//!                                 │        └─ release ────▶ Released
//!                                 ├─ approve ▶ Active
//!                                 ├─ deny ─▶ Denied
//!                                 ├─ release ▶ Released
//!                                 └─ pending TTL ▶ RequestExpired
//! break-glass ─▶ Active (at once, whatever the policy) ─▶ … ─▶ review
//! ```
//!
//! A break-glass grant ([`Grant::break_glass`]) skips approval and is
//! reviewed afterwards by a second person ([`Grant::review`]); the review
//! does not change its state.
//!
//! A scheduled grant (one requested with a later start, [`Grant::starts_at`])
//! waits in `Scheduled` once approved (or at once, under `auto`) and
//! activates at its start ([`Grant::activate_scheduled`], written by the
//! expiry sweeper or by the first call that meets it due); approved after
//! its start, it activates at the approval like any other:
//!
//! ```text
//! request ─┬─ auto ─────────────▶ Scheduled ─┬─ start ─▶ Active (as above)
//!          └─ approval ▶ Pending ─ approve ──┘  └─ revoke/release/offboard
//! ```
//!
//! The 24 hours start at activation. Validity is always decided against the
//! injected clock ([`Grant::is_valid_at`]), never by the stored state alone,
//! so a grant is invalid at its expiry even if the sweeper has not run yet.
//! Whether a transition is allowed for a caller is [`crate::policy`]'s
//! question, and whether it is allowed now the service's.

use serde::{Deserialize, Serialize};

use super::{
    event::{Draft, EventKind, detail},
    group::GroupRule,
    ids::{Actor, GrantId, Name},
    justification::ReasonCode,
    review::{GrantReview, ReviewNote, ReviewVerdict},
    tenant::{Approval, GrantApproval},
    text::{Note, Reason, Ticket},
};
use crate::clock::Timestamp;

pub use daypass_tenant::scope::{Resource as ScopedResource, Scope, ScopeError, Scopes};

/// The longest a grant can ever last: 24 hours.
pub const MAX_GRANT_SECS: i64 = daypass_tenant::claims::MAX_GRANT_SECS;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GrantState {
    Pending,
    Active,
    Denied,
    RequestExpired,
    Expired,
    Revoked,
    Released,
    /// Approved, waiting for its start.
    Scheduled,
}

impl GrantState {
    /// Pending, scheduled or active: the grant still has a deadline ahead
    /// of it.
    pub fn is_live(self) -> bool {
        matches!(
            self,
            GrantState::Pending | GrantState::Active | GrantState::Scheduled
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            GrantState::Pending => "pending",
            GrantState::Active => "active",
            GrantState::Denied => "denied",
            GrantState::RequestExpired => "request-expired",
            GrantState::Expired => "expired",
            GrantState::Revoked => "revoked",
            GrantState::Released => "released",
            GrantState::Scheduled => "scheduled",
        }
    }
}

/// Why a grant does not admit its holder right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DenyReason {
    Unknown,
    Pending,
    Expired,
    Revoked,
    Offboarded,
    Denied,
    Released,
    /// The grant admits its holder, but not to the resource asked about:
    /// it is outside the grant's scopes.
    OutOfScope,
    /// A scheduled grant before its start.
    NotYetActive,
}

impl DenyReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DenyReason::Unknown => "unknown",
            DenyReason::Pending => "pending",
            DenyReason::Expired => "expired",
            DenyReason::Revoked => "revoked",
            DenyReason::Offboarded => "offboarded",
            DenyReason::Denied => "denied",
            DenyReason::Released => "released",
            DenyReason::OutOfScope => "out_of_scope",
            DenyReason::NotYetActive => "not_yet_active",
        }
    }
}

/// A grant as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub id: GrantId,
    pub tenant: Name,
    pub holder: Name,
    pub reason: String,
    pub ticket: String,
    pub state: GrantState,
    pub duration_secs: i64,
    pub requested_at: Timestamp,
    /// Deadline for approval while pending.
    pub pending_until: Option<Timestamp>,
    pub activated_at: Option<Timestamp>,
    pub expires_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    /// Actor who approved, denied, revoked or released it.
    pub decided_by: String,
    pub decision_note: String,
    /// Set when the revocation was caused by offboarding the holder.
    #[serde(default)]
    pub offboarded: bool,
    /// The tenant's approval policy when it was requested; `None` in
    /// records stored before grants kept it (see [`Grant::policy`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approval>,
    /// Every approval, in order (one for most policies, two for
    /// `tenant+peer`).
    #[serde(default)]
    pub approvals: Vec<GrantApproval>,
    /// The request's category, if it gave one ([`Grant::set_reason_code`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason_code: Option<ReasonCode>,
    /// Opened in an emergency without approval ([`Grant::break_glass`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub break_glass: bool,
    /// A break-glass grant's review, once a second person gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<GrantReview>,
    /// The scopes within the tenant it covers ([`Grant::set_scopes`]);
    /// empty: the whole tenant (and every record from before scopes).
    #[serde(default, skip_serializing_if = "Scopes::is_whole_tenant")]
    pub scopes: Scopes,
    /// Under [`Approval::Group`]: the tenant's group and threshold when it
    /// was requested ([`Grant::set_approver_group`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approver_group: Option<GroupRule>,
    /// A scheduled grant's start, as requested ([`Grant::schedule_from`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<Timestamp>,
}

impl Grant {
    /// The approval policy it is decided under: the one it was requested
    /// under, or for a record from before grants kept it, the one policy
    /// that then made requests wait (`tenant-or-peer`).
    pub fn policy(&self) -> Approval {
        self.approval.unwrap_or(Approval::TenantOrPeer)
    }

    /// The next moment at which this grant changes state by itself, if any.
    pub fn deadline(&self) -> Option<Timestamp> {
        match self.state {
            GrantState::Pending => self.pending_until,
            GrantState::Active => self.expires_at,
            GrantState::Scheduled => self.starts_at,
            _ => None,
        }
    }

    /// The latest moment this grant can still admit its holder or be
    /// decided: its pending deadline, its expiry, or for a scheduled grant
    /// the end of its window (its start plus its duration). Past it, the
    /// grant has ended by itself even if no entry says so yet.
    pub fn live_until(&self) -> Option<Timestamp> {
        match self.state {
            GrantState::Scheduled => self.starts_at.map(|s| s.plus_secs(self.duration_secs)),
            _ => self.deadline(),
        }
    }

    /// Was the grant active at `t` (for an access reported afterwards)?
    /// From its activation until it expired or ended, whichever came first.
    pub fn was_active_at(&self, t: Timestamp) -> bool {
        let Some(from) = self.activated_at else {
            return false;
        };
        let until = match (self.expires_at, self.ended_at) {
            (Some(exp), Some(end)) => exp.min(end),
            (Some(exp), None) => exp,
            (None, _) => return false,
        };
        from <= t && t < until
    }

    /// Does the grant admit its holder at `now`? `Ok` only for an active
    /// grant strictly before its expiry.
    pub fn is_valid_at(&self, now: Timestamp) -> Result<(), DenyReason> {
        match self.state {
            GrantState::Active => match self.expires_at {
                Some(exp) if now < exp => Ok(()),
                _ => Err(DenyReason::Expired),
            },
            GrantState::Pending => match self.pending_until {
                Some(until) if now < until => Err(DenyReason::Pending),
                _ => Err(DenyReason::Expired),
            },
            GrantState::Expired | GrantState::RequestExpired => Err(DenyReason::Expired),
            GrantState::Revoked if self.offboarded => Err(DenyReason::Offboarded),
            GrantState::Revoked => Err(DenyReason::Revoked),
            GrantState::Denied => Err(DenyReason::Denied),
            GrantState::Released => Err(DenyReason::Released),
            // From its start on it admits, even before the sweeper wrote
            // the activation (the caller writes it, `activate_if_due`).
            GrantState::Scheduled => match self.starts_at {
                Some(s) if now < s => Err(DenyReason::NotYetActive),
                Some(s) if now < s.plus_secs(self.duration_secs) => Ok(()),
                Some(_) => Err(DenyReason::Expired),
                None => Err(DenyReason::NotYetActive),
            },
        }
    }
}

/// How a live grant ends early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// An admin or the tenant ended it.
    Revoke,
    /// The holder gave it up.
    Release,
    /// The holder was offboarded.
    Offboard,
    /// The tenant's agreement ended (`tenant terminate`).
    Terminate,
}

/// The cause (and decision note) of a grant ended by offboarding.
pub const CAUSE_OFFBOARDED: &str = "holder offboarded";
/// The cause (and decision note) of a grant ended by termination.
pub const CAUSE_TERMINATED: &str = "tenant terminated";

impl Grant {
    /// A new request, pending until [`Grant::activate`] or
    /// [`Grant::await_approval`]; the returned entry records it.
    #[allow(clippy::too_many_arguments)]
    pub fn request(
        actor: &Actor,
        holder: Name,
        tenant: Name,
        reason: &Reason,
        ticket: &Ticket,
        duration_secs: i64,
        approval: Approval,
        now: Timestamp,
    ) -> (Grant, Draft) {
        let g = Grant {
            id: GrantId::random(),
            tenant,
            holder,
            reason: reason.to_string(),
            ticket: ticket.to_string(),
            state: GrantState::Pending,
            duration_secs,
            requested_at: now,
            pending_until: None,
            activated_at: None,
            expires_at: None,
            ended_at: None,
            decided_by: String::new(),
            decision_note: String::new(),
            offboarded: false,
            approval: Some(approval),
            approvals: Vec::new(),
            reason_code: None,
            break_glass: false,
            review: None,
            scopes: Scopes::whole_tenant(),
            approver_group: None,
            starts_at: None,
        };
        let draft = g
            .draft(actor, EventKind::GrantRequested)
            .with(detail::APPROVAL, approval.as_str())
            .with(detail::REASON, reason)
            .with(detail::TICKET, ticket)
            .with(detail::DURATION_SECS, duration_secs);
        (g, draft)
    }

    /// The request's category, on the record and on its `grant.requested`
    /// entry (`requested`, from [`Grant::request`]); no code leaves both
    /// without one.
    pub fn set_reason_code(&mut self, code: Option<ReasonCode>, requested: Draft) -> Draft {
        self.reason_code = code;
        match code {
            Some(c) => requested.with(detail::REASON_CODE, c.as_str()),
            None => requested,
        }
    }

    /// The scopes the request names, on the record and on its
    /// `grant.requested` entry (`requested`) as `scopes`; the whole tenant
    /// leaves both without.
    pub fn set_scopes(&mut self, scopes: Scopes, requested: Draft) -> Draft {
        let requested = if scopes.is_whole_tenant() {
            requested
        } else {
            requested.with(detail::SCOPES, scopes.joined())
        };
        self.scopes = scopes;
        requested
    }

    /// Does the grant admit its holder to `resource` at `now`? Validity
    /// ([`Grant::is_valid_at`]) first, then the scopes.
    pub fn admits_to(
        &self,
        now: Timestamp,
        resource: Option<&ScopedResource>,
    ) -> Result<(), DenyReason> {
        self.is_valid_at(now)?;
        match resource {
            Some(r) if !self.scopes.permits(r) => Err(DenyReason::OutOfScope),
            _ => Ok(()),
        }
    }

    /// The tenant's approver group and threshold, for a request under
    /// [`Approval::Group`], on the record and on its `grant.requested`
    /// entry (`group`, `threshold`); other policies leave both without.
    pub fn set_approver_group(&mut self, rule: Option<GroupRule>, requested: Draft) -> Draft {
        let rule = rule.filter(|_| self.policy() == Approval::Group);
        let draft = match &rule {
            Some(r) => requested
                .with(detail::GROUP, &r.group)
                .with(detail::THRESHOLD, r.threshold),
            None => requested,
        };
        self.approver_group = rule;
        draft
    }

    /// Its policy's name: `tenant+peer`, `group:oncall-leads:2`.
    pub fn policy_name(&self) -> String {
        super::tenant::policy_name(self.policy(), self.approver_group.as_ref())
    }

    /// Do its approvals make it active? Under a group policy, when as many
    /// members as its threshold approved (each was a member when they did).
    pub fn approvals_satisfy(&self) -> bool {
        match (self.policy(), &self.approver_group) {
            (Approval::Group, Some(r)) => self.approvals.len() >= r.threshold as usize,
            (Approval::Group, None) => false,
            (p, _) => p.satisfied(&self.approvals),
        }
    }

    /// Who must still approve, in words.
    pub fn waits_for(&self) -> String {
        match (self.policy(), &self.approver_group) {
            (Approval::Group, Some(r)) => {
                let left = (r.threshold as usize).saturating_sub(self.approvals.len());
                format!(
                    "{left} more of group {} ({} of {} approved)",
                    r.group,
                    self.approvals.len(),
                    r.threshold
                )
            }
            (p, _) => p.waiting_for(&self.approvals).to_owned(),
        }
    }

    /// A scheduled request: its window starts at `start` (later than its
    /// request), on the record and on its `grant.requested` entry.
    pub fn schedule_from(&mut self, start: Timestamp, requested: Draft) -> Draft {
        self.starts_at = Some(start);
        requested.with(detail::STARTS_AT, start)
    }

    /// Approved (or auto-approved) before its start: waits for it, logged
    /// as `grant.scheduled`.
    pub fn schedule(&mut self, actor: &Actor) -> Draft {
        self.state = GrantState::Scheduled;
        self.pending_until = None;
        let start = self.starts_at.unwrap_or(self.requested_at);
        self.draft(actor, EventKind::GrantScheduled)
            .with(detail::STARTS_AT, start)
    }

    /// A scheduled grant activates at its start (whenever the entry is
    /// written): active from the start for its duration, the activation
    /// time on the entry (`activated_at`).
    pub fn activate_scheduled(&mut self) -> Draft {
        let start = self.starts_at.unwrap_or(self.requested_at);
        self.state = GrantState::Active;
        self.pending_until = None;
        self.activated_at = Some(start);
        let expires = start.plus_secs(self.duration_secs);
        self.expires_at = Some(expires);
        self.draft(&Actor::System, EventKind::GrantActivated)
            .with(detail::ACTIVATED_AT, start)
            .with(detail::EXPIRES_AT, expires)
    }

    /// The activation of a scheduled grant whose start has come, if so.
    pub fn activate_if_due(&mut self, now: Timestamp) -> Option<Draft> {
        (self.state == GrantState::Scheduled && self.starts_at.is_none_or(|s| now >= s))
            .then(|| self.activate_scheduled())
    }

    /// Brings a live grant up to `now`: a scheduled one past its start
    /// activates, and one past its deadline expires (both, for a scheduled
    /// grant whose whole window has passed). The entries, in order.
    pub fn settle(&mut self, now: Timestamp) -> Vec<Draft> {
        let mut out: Vec<Draft> = self.activate_if_due(now).into_iter().collect();
        if matches!(self.state, GrantState::Pending | GrantState::Active)
            && self.deadline().is_some_and(|d| now >= d)
        {
            out.push(self.expire(now));
        }
        out
    }

    /// An entry about this grant: its tenant, id and holder.
    pub fn draft(&self, actor: &Actor, kind: EventKind) -> Draft {
        Draft::new(actor.clone(), self.tenant.as_str(), kind)
            .with(detail::GRANT, &self.id)
            .with(detail::HOLDER, &self.holder)
    }

    /// Pending: waits for a decision until `until`.
    pub fn await_approval(&mut self, until: Timestamp) {
        self.pending_until = Some(until);
    }

    /// Active from `now` for its duration.
    pub fn activate(&mut self, now: Timestamp, actor: &Actor) -> Draft {
        self.state = GrantState::Active;
        self.pending_until = None;
        self.activated_at = Some(now);
        let expires = now.plus_secs(self.duration_secs);
        self.expires_at = Some(expires);
        self.draft(actor, EventKind::GrantActivated)
            .with(detail::EXPIRES_AT, expires)
    }

    /// An approval of a pending request: its entry, then the activation
    /// once the policy's approvals are all there.
    pub fn approve(&mut self, now: Timestamp, actor: &Actor, note: &Note) -> Vec<Draft> {
        self.decided_by = actor.to_string();
        self.decision_note = note.to_string();
        self.approvals.push(GrantApproval {
            by: actor.to_string(),
            at: now,
        });
        let approved = self
            .draft(actor, EventKind::GrantApproved)
            .with(detail::NOTE, note);
        if self.approvals_satisfy() {
            match self.starts_at {
                Some(start) if now < start => vec![approved, self.schedule(actor)],
                _ => vec![approved, self.activate(now, actor)],
            }
        } else {
            vec![approved]
        }
    }

    /// A pending request denied.
    pub fn deny(&mut self, now: Timestamp, actor: &Actor, note: &Note) -> Draft {
        self.decided_by = actor.to_string();
        self.decision_note = note.to_string();
        self.state = GrantState::Denied;
        self.ended_at = Some(now);
        self.draft(actor, EventKind::GrantDenied)
            .with(detail::NOTE, note)
    }

    /// A live grant ended before its deadline.
    pub fn end(&mut self, ending: Ending, now: Timestamp, actor: &Actor, note: &Note) -> Draft {
        self.ended_at = Some(now);
        self.decided_by = actor.to_string();
        match ending {
            Ending::Revoke | Ending::Release => {
                let (state, kind) = if ending == Ending::Revoke {
                    (GrantState::Revoked, EventKind::GrantRevoked)
                } else {
                    (GrantState::Released, EventKind::GrantReleased)
                };
                self.state = state;
                self.decision_note = note.to_string();
                self.draft(actor, kind).with(detail::NOTE, note)
            }
            Ending::Offboard => {
                self.state = GrantState::Revoked;
                self.offboarded = true;
                self.decision_note = CAUSE_OFFBOARDED.into();
                self.draft(actor, EventKind::GrantRevoked)
                    .with(detail::CAUSE, CAUSE_OFFBOARDED)
            }
            Ending::Terminate => {
                self.state = GrantState::Revoked;
                self.decision_note = CAUSE_TERMINATED.into();
                self.draft(actor, EventKind::GrantRevoked)
                    .with(detail::CAUSE, CAUSE_TERMINATED)
            }
        }
    }

    /// A live grant past its deadline: expired (or, while pending, the
    /// request expired), as of the deadline.
    pub fn expire(&mut self, now: Timestamp) -> Draft {
        let deadline = self.deadline().unwrap_or(now);
        let kind = if self.state == GrantState::Pending {
            self.state = GrantState::RequestExpired;
            EventKind::GrantRequestExpired
        } else {
            self.state = GrantState::Expired;
            EventKind::GrantExpired
        };
        self.ended_at = Some(deadline);
        self.draft(&Actor::System, kind)
            .with(detail::EXPIRED_AT, deadline)
    }

    /// A request (`requested`, from [`Grant::request`]) opened in an
    /// emergency: active at once, by the holder, whatever the approval
    /// policy. Both entries carry `break_glass = true`.
    pub fn break_glass(&mut self, now: Timestamp, actor: &Actor, requested: Draft) -> [Draft; 2] {
        self.break_glass = true;
        let requested = requested.with(detail::BREAK_GLASS, true);
        let activated = self.activate(now, actor).with(detail::BREAK_GLASS, true);
        [requested, activated]
    }

    /// A second person's review of a break-glass grant (the caller checked
    /// that it may be reviewed, [`Grant::reviewable`]).
    pub fn review(
        &mut self,
        now: Timestamp,
        actor: &Actor,
        verdict: ReviewVerdict,
        note: &ReviewNote,
    ) -> Draft {
        self.review = Some(GrantReview {
            by: actor.to_string(),
            at: now,
            verdict,
            note: note.to_string(),
        });
        self.draft(actor, EventKind::GrantReviewed)
            .with(detail::VERDICT, verdict)
            .with(detail::NOTE, note)
    }

    /// Why this grant cannot be reviewed (now), if so: only a break-glass
    /// grant, once it opened, once.
    pub fn reviewable(&self) -> Result<(), String> {
        if !self.break_glass {
            return Err(format!(
                "grant {} is not a break-glass grant: only those are reviewed",
                self.id
            ));
        }
        if self.activated_at.is_none() {
            return Err(format!("grant {} has not opened yet", self.id));
        }
        if let Some(r) = &self.review {
            return Err(format!(
                "grant {} was already reviewed by {} on {} ({}); a grant is reviewed once",
                self.id,
                r.by,
                r.at.to_rfc3339(),
                r.verdict
            ));
        }
        Ok(())
    }

    /// A break-glass grant that opened and waits for its review.
    pub fn awaits_review(&self) -> bool {
        self.break_glass && self.activated_at.is_some() && self.review.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn active(expires: i64) -> Grant {
        Grant {
            id: GrantId::random(),
            tenant: Name::parse("acme").unwrap(),
            holder: Name::parse("alice").unwrap(),
            reason: "r".into(),
            ticket: String::new(),
            state: GrantState::Active,
            duration_secs: 60,
            requested_at: Timestamp(0),
            pending_until: None,
            activated_at: Some(Timestamp(0)),
            expires_at: Some(Timestamp(expires)),
            ended_at: None,
            decided_by: String::new(),
            decision_note: String::new(),
            offboarded: false,
            approval: Some(Approval::Auto),
            approvals: Vec::new(),
            reason_code: None,
            break_glass: false,
            review: None,
            scopes: Scopes::whole_tenant(),
            approver_group: None,
            starts_at: None,
        }
    }

    /// Validity does not depend on the sweeper having run: the stored state
    /// still says active, yet the grant is refused from its expiry on.
    #[test]
    fn never_valid_at_or_after_expiry() {
        let g = active(60_000);
        assert_eq!(g.is_valid_at(Timestamp(59_999)), Ok(()));
        assert_eq!(g.is_valid_at(Timestamp(60_000)), Err(DenyReason::Expired));
        assert_eq!(g.is_valid_at(Timestamp(i64::MAX)), Err(DenyReason::Expired));
        let mut pending = active(0);
        pending.state = GrantState::Pending;
        pending.expires_at = None;
        pending.pending_until = Some(Timestamp(1_000));
        assert_eq!(
            pending.is_valid_at(Timestamp(999)),
            Err(DenyReason::Pending)
        );
        assert_eq!(
            pending.is_valid_at(Timestamp(1_000)),
            Err(DenyReason::Expired)
        );
    }

    #[test]
    fn transitions_change_the_record_and_say_so() {
        let now = Timestamp(1_000);
        let alice = Actor::System;
        let (mut g, requested) = Grant::request(
            &alice,
            Name::parse("alice").unwrap(),
            Name::parse("acme").unwrap(),
            &Reason::parse("INC-1").unwrap(),
            &Ticket::parse("").unwrap(),
            60,
            Approval::Auto,
            now,
        );
        assert_eq!(requested.kind, EventKind::GrantRequested);
        assert_eq!(g.state, GrantState::Pending);
        let activated = g.activate(now, &alice);
        assert_eq!(
            activated.details[detail::EXPIRES_AT],
            Timestamp(61_000).to_string()
        );
        assert_eq!(g.is_valid_at(Timestamp(60_999)), Ok(()));
        let revoked = g.end(
            Ending::Offboard,
            Timestamp(2_000),
            &alice,
            &Note::parse("").unwrap(),
        );
        assert_eq!(revoked.kind, EventKind::GrantRevoked);
        assert_eq!(g.is_valid_at(Timestamp(2_000)), Err(DenyReason::Offboarded));
        let mut pending = active(0);
        pending.state = GrantState::Pending;
        pending.pending_until = Some(Timestamp(5));
        assert_eq!(
            pending.expire(Timestamp(9)).kind,
            EventKind::GrantRequestExpired
        );
        assert_eq!(pending.ended_at, Some(Timestamp(5)));
    }

    /// A scheduled grant: not valid before its start, valid from the start
    /// millisecond on (before any entry says it activated), activated at
    /// its start whenever that is written, expiring its duration later.
    #[test]
    fn a_scheduled_grant_admits_from_its_start_to_its_end() {
        let (mut g, requested) = Grant::request(
            &Actor::System,
            Name::parse("alice").unwrap(),
            Name::parse("acme").unwrap(),
            &Reason::parse("maintenance").unwrap(),
            &Ticket::parse("").unwrap(),
            3_600,
            Approval::Peer,
            Timestamp(1_000),
        );
        let requested = g.schedule_from(Timestamp(100_000), requested);
        assert_eq!(
            requested.details[detail::STARTS_AT],
            Timestamp(100_000).to_string()
        );
        let drafts = g.approve(Timestamp(2_000), &Actor::System, &Note::default());
        assert_eq!(drafts[1].kind, EventKind::GrantScheduled);
        assert_eq!(g.state, GrantState::Scheduled);
        assert_eq!(g.deadline(), Some(Timestamp(100_000)));
        assert_eq!(g.live_until(), Some(Timestamp(3_700_000)));
        assert_eq!(
            g.is_valid_at(Timestamp(99_999)),
            Err(DenyReason::NotYetActive)
        );
        assert_eq!(g.is_valid_at(Timestamp(100_000)), Ok(()));
        assert_eq!(
            g.is_valid_at(Timestamp(3_700_000)),
            Err(DenyReason::Expired)
        );
        assert!(g.activate_if_due(Timestamp(99_999)).is_none());
        // Written late, the activation still says the start.
        let all = g.settle(Timestamp(4_000_000));
        assert_eq!(all.len(), 2);
        assert_eq!(
            all[0].details[detail::ACTIVATED_AT],
            Timestamp(100_000).to_string()
        );
        assert_eq!(g.activated_at, Some(Timestamp(100_000)));
        assert_eq!(g.expires_at, Some(Timestamp(3_700_000)));
        assert_eq!(all[1].kind, EventKind::GrantExpired);
        assert_eq!(g.ended_at, Some(Timestamp(3_700_000)));
    }
}
