//! The log's semantics: the registries and grants as the log says they are
//! ([`LogState`], rebuilt entry by entry), and the rules every entry must
//! keep given the entries before it. Used three ways:
//!
//! * `audit check` on the server and `audit verify` offline replay the log
//!   and report the first entry that contradicts it (a `validation.allowed`
//!   for a grant the log shows pending, ended or expired, or held by an
//!   offboarded person or a role without access; a third root holder; a
//!   grant longer than 24 h; an entry dated before the previous one; a
//!   `scope_prev` that does not name its scope's previous entry; a request
//!   without the reason code its tenant requires; a `validation.allowed`
//!   for a `for_resource` outside the grant's `scopes`, or an
//!   `out_of_scope` denial for one inside them; ...), with its seq;
//! * at start-up the server compares its stored records with the state the
//!   log derives ([`LogState::compare`]) and refuses to start on any
//!   difference: decisions come only from records the log vouches for.
//!
//! Two rules hold for every entry, of a known kind or not: its timestamp
//! is not earlier than the previous entry's (the log's time never goes
//! back), and its scope links name each tenant scope's previous entry
//! ([`scopes`]).
//!
//! Entries of kinds this build does not know are otherwise skipped. Logs
//! written before `grant.requested` carried `pending_until` are checked
//! without it.

mod alerts;
mod break_glass;
mod groups;
pub mod incidents;
mod schedule;
pub mod scopes;
mod staff;
mod tenants;

use std::collections::{BTreeMap, HashMap};

use super::Entry;
use crate::{
    clock::Timestamp,
    domain::{
        Alert, AlertId, Approval, DenyReason, EventKind, Grant, GrantApproval, GrantId, GrantState,
        MAX_GRANT_SECS, Name, ReasonCode, Role, ScopedResource, Scopes, StaffRecord, TenantRecord,
        detail,
        grant::{CAUSE_OFFBOARDED, CAUSE_TERMINATED},
    },
};

/// The limits the log is held to: the agreement's by default.
#[derive(Clone, Copy, Debug)]
pub struct Rules {
    pub max_root_holders: u32,
    pub max_grant_secs: i64,
    /// The longest a break-glass grant may last.
    pub max_break_glass_secs: i64,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            max_root_holders: 2,
            max_grant_secs: MAX_GRANT_SECS,
            max_break_glass_secs: MAX_GRANT_SECS,
        }
    }
}

/// An entry that contradicts the log before it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contradiction {
    pub seq: u64,
    pub why: String,
}

/// A stored record that differs from what the log says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// `staff/alice`, `tenant/acme`, `grant/g-…`.
    pub record: String,
    /// The last entry that set it (0 when the log never mentions it).
    pub seq: u64,
    pub why: String,
}

/// A grant as the log tells it, with the entry that last changed it.
#[derive(Clone, Debug)]
struct LoggedGrant {
    grant: Grant,
    seq: u64,
}

/// The registries and grants as the log says they are.
#[derive(Debug, Default)]
pub struct LogState {
    rules: Rules,
    staff: BTreeMap<Name, (StaffRecord, u64)>,
    tenants: BTreeMap<Name, (TenantRecord, u64)>,
    grants: HashMap<GrantId, LoggedGrant>,
    /// (holder, tenant) → the newest grant.
    latest: HashMap<(Name, Name), GrantId>,
    alerts: BTreeMap<AlertId, (Alert, u64)>,
    incidents: incidents::IncidentRegister,
    scopes: scopes::ScopeChains,
    /// tenant → the newest `processing.recorded` version.
    processing: HashMap<Name, u32>,
    /// The approver groups, with the entry that last set each.
    groups: BTreeMap<Name, (crate::domain::ApproverGroup, u64)>,
    /// The previous entry's timestamp: the log's time never goes back.
    last_timestamp: Option<Timestamp>,
}

impl LogState {
    pub fn new(rules: Rules) -> LogState {
        LogState {
            rules,
            ..LogState::default()
        }
    }

    /// Applies one entry, or says how it contradicts the log before it.
    /// A contradicting entry changes nothing.
    pub fn apply(&mut self, e: &Entry) -> Result<(), Contradiction> {
        let contradiction = |why| Contradiction { seq: e.seq, why };
        // Every entry, of a known kind or not.
        if let Some(prev) = self.last_timestamp.filter(|p| e.timestamp < *p) {
            return Err(contradiction(format!(
                "timestamp {} is earlier than the previous entry's {prev}: the log's time never goes back",
                e.timestamp
            )));
        }
        self.scopes.check(e).map_err(contradiction)?;
        if let Some(kind) = EventKind::parse(&e.kind) {
            self.step(kind, e).map_err(contradiction)?;
        }
        self.scopes.take(e);
        self.last_timestamp = Some(e.timestamp);
        Ok(())
    }

    fn step(&mut self, kind: EventKind, e: &Entry) -> Result<(), String> {
        let now = e.timestamp;
        match kind {
            EventKind::StaffBootstrapped | EventKind::StaffEnrolled => {
                self.staff_enrolled(kind, e)?
            }
            EventKind::StaffOffboarded => self.staff_offboarded(e)?,
            EventKind::StaffDeclarationRecorded => self.declaration_recorded(e)?,
            EventKind::StaffRecertified => self.recertified(e)?,
            EventKind::TenantAdded
            | EventKind::TenantUpdated
            | EventKind::TenantTerminated
            | EventKind::TenantShredded
            | EventKind::TenantJustificationSet
            | EventKind::TenantBreakGlassSet
            | EventKind::TenantAccessLimitSet => self.tenant_changed(kind, e)?,
            EventKind::GrantRequested => self.requested(e)?,
            EventKind::GrantActivated
                if self
                    .grant_of(e)
                    .is_ok_and(|g| g.grant.state == GrantState::Scheduled) =>
            {
                self.scheduled_activated(e)?
            }
            EventKind::GrantScheduled => self.scheduled(e)?,
            EventKind::GrantActivated => {
                let max = self.rules.max_grant_secs;
                self.within_access_limit(e)?;
                let g = self.live_grant(e)?;
                if g.grant.state != GrantState::Pending {
                    return Err(format!(
                        "grant {} is activated but it is {}",
                        g.grant.id,
                        g.grant.state.as_str()
                    ));
                }
                let break_glass = e.details.get(detail::BREAK_GLASS).map(String::as_str)
                    == Some("true");
                if break_glass != g.grant.break_glass {
                    return Err(format!(
                        "grant {} is activated {} break_glass, but it was requested {}",
                        g.grant.id,
                        if break_glass { "with" } else { "without" },
                        if g.grant.break_glass {
                            "as a break-glass grant"
                        } else {
                            "as an ordinary one"
                        }
                    ));
                }
                if break_glass
                    && (now != g.grant.requested_at
                        || e.actor != format!("staff/{}", g.grant.holder))
                {
                    return Err(format!(
                        "break-glass grant {} is activated by {} at {now}: only by its holder, at its request",
                        g.grant.id, e.actor
                    ));
                }
                if g.grant.approval.is_some() && !break_glass && !g.grant.approvals_satisfy() {
                    return Err(format!(
                        "grant {} is activated without the approval of {} (policy {})",
                        g.grant.id,
                        g.grant.waits_for(),
                        g.grant.policy_name()
                    ));
                }
                if let Some(start) = g.grant.starts_at.filter(|s| now < *s) {
                    return Err(format!(
                        "grant {} is activated before its start {start}",
                        g.grant.id
                    ));
                }
                let expires = timestamp(e, detail::EXPIRES_AT)?;
                if expires != now.plus_secs(g.grant.duration_secs) || g.grant.duration_secs > max {
                    return Err(format!(
                        "grant {} is activated until {expires}, not for its {} s (at most {max} s)",
                        g.grant.id, g.grant.duration_secs
                    ));
                }
                let g = &mut g.grant;
                g.state = GrantState::Active;
                g.pending_until = None;
                g.activated_at = Some(now);
                g.expires_at = Some(expires);
                self.touch(e);
            }
            EventKind::GrantApproved | EventKind::GrantDenied => {
                let g = self.live_grant(e)?;
                let what = if kind == EventKind::GrantApproved {
                    "approved"
                } else {
                    "denied"
                };
                if g.grant.state != GrantState::Pending {
                    return Err(format!(
                        "grant {} is {what} but it is {}",
                        g.grant.id,
                        g.grant.state.as_str()
                    ));
                }
                if g.grant.pending_until.is_some_and(|u| now >= u) {
                    return Err(format!(
                        "grant {} is {what} after its request expired",
                        g.grant.id
                    ));
                }
                if e.actor == format!("staff/{}", g.grant.holder) {
                    return Err(format!(
                        "grant {} is {what} by its own requester",
                        g.grant.id
                    ));
                }
                if let Some(policy) = g.grant.approval {
                    if !policy.counts(&e.actor, g.grant.tenant.as_str()) {
                        return Err(format!(
                            "grant {} is {what} by {}, whose decision does not count under policy {}",
                            g.grant.id,
                            e.actor,
                            g.grant.policy_name()
                        ));
                    }
                }
                if g.grant.approval == Some(Approval::Group) {
                    let (id, rule) = (g.grant.id.clone(), g.grant.approver_group.clone());
                    self.check_group_decision(rule.as_ref(), &e.actor)
                        .map_err(|why| format!("grant {id} is {what} by {}: {why}", e.actor))?;
                }
                let g = self.live_grant(e)?;
                if g.grant.approvals.iter().any(|a| a.by == e.actor) {
                    return Err(format!(
                        "grant {} is {what} by {}, who had already approved it",
                        g.grant.id, e.actor
                    ));
                }
                let g = &mut g.grant;
                g.decided_by = e.actor.clone();
                g.decision_note = e.details.get(detail::NOTE).cloned().unwrap_or_default();
                if kind == EventKind::GrantApproved {
                    g.approvals.push(GrantApproval {
                        by: e.actor.clone(),
                        at: now,
                    });
                }
                if kind == EventKind::GrantDenied {
                    g.state = GrantState::Denied;
                    g.ended_at = Some(now);
                }
                self.touch(e);
            }
            EventKind::GrantRevoked | EventKind::GrantReleased => {
                let g = self.live_grant(e)?;
                if !g.grant.state.is_live() || g.grant.live_until().is_none_or(|d| now >= d) {
                    return Err(format!(
                        "grant {} is ended early but it had already ended",
                        g.grant.id
                    ));
                }
                let cause = e
                    .details
                    .get(detail::CAUSE)
                    .map(String::as_str)
                    .filter(|_| kind == EventKind::GrantRevoked)
                    .filter(|c| [CAUSE_OFFBOARDED, CAUSE_TERMINATED].contains(c));
                let offboarded = cause == Some(CAUSE_OFFBOARDED);
                let g = &mut g.grant;
                g.state = if kind == EventKind::GrantRevoked {
                    GrantState::Revoked
                } else {
                    GrantState::Released
                };
                g.ended_at = Some(now);
                g.decided_by = e.actor.clone();
                g.offboarded = offboarded;
                g.decision_note = if let Some(cause) = cause {
                    cause.into()
                } else {
                    e.details.get(detail::NOTE).cloned().unwrap_or_default()
                };
                self.touch(e);
            }
            EventKind::GrantExpired | EventKind::GrantRequestExpired => {
                let at = timestamp(e, detail::EXPIRED_AT)?;
                let g = self.live_grant(e)?;
                let pending = kind == EventKind::GrantRequestExpired;
                let right_state = if pending {
                    g.grant.state == GrantState::Pending
                } else {
                    g.grant.state == GrantState::Active
                };
                let deadline_ok = match g.grant.deadline() {
                    Some(d) => d == at && now >= d,
                    // A request from before `pending_until` was logged.
                    None => pending && now >= at,
                };
                if !right_state || !deadline_ok {
                    return Err(format!(
                        "grant {} is expired at {at}, which is not its deadline (it is {})",
                        g.grant.id,
                        g.grant.state.as_str()
                    ));
                }
                let g = &mut g.grant;
                g.state = if pending {
                    GrantState::RequestExpired
                } else {
                    GrantState::Expired
                };
                g.ended_at = Some(at);
                self.touch(e);
            }
            EventKind::ValidationAllowed | EventKind::GrantCertificateIssued => {
                let what = if kind == EventKind::ValidationAllowed {
                    "allowed"
                } else {
                    "given a certificate"
                };
                let why = self.admits(e, now)?;
                if let Some(why) = why {
                    return Err(format!("{what} although {why}"));
                }
                if kind == EventKind::ValidationAllowed {
                    if let Some(r) = self.resource_of(e)? {
                        let g = &self.grant_of(e)?.grant;
                        if !g.scopes.permits(&r) {
                            return Err(format!(
                                "allowed for {r}, outside grant {}'s scopes ({})",
                                g.id, g.scopes
                            ));
                        }
                    }
                }
            }
            EventKind::ValidationDenied => self.validation_denied(e)?,
            EventKind::AccessRecorded => {
                let reported = match e.details.get(detail::ACCESSED_AT) {
                    None => None,
                    Some(_) => Some(timestamp(e, detail::ACCESSED_AT)?),
                };
                match reported {
                    // About to happen: only while the grant admits.
                    None => {
                        if let Some(why) = self.admits(e, now)? {
                            return Err(format!("an access is recorded although {why}"));
                        }
                    }
                    Some(at) => {
                        let g = self.grant_of(e)?;
                        let active = g.grant.was_active_at(at);
                        let said =
                            e.details.get(detail::WITHIN_GRANT).map(String::as_str) == Some("true");
                        if active != said {
                            return Err(format!(
                                "within_grant says {said}, but the log shows grant {} {} at {at}",
                                g.grant.id,
                                if active { "active" } else { "not active" }
                            ));
                        }
                    }
                }
            }
            EventKind::CallRefused
            | EventKind::AuditRead
            | EventKind::ReportGenerated
            | EventKind::AuditVerified
            | EventKind::ServerStarted
            | EventKind::ServerStopped
            // Screens change no grant and no alert; their records (hashes
            // of their secrets) are not rebuilt from the log.
            | EventKind::ScreenPairingIssued
            | EventKind::ScreenSessionOpened
            | EventKind::ScreenRevoked
            // Key rotation and a declared restore change no record.
            | EventKind::LogKeyAnnounced
            | EventKind::LogKeyRotated
            | EventKind::StoreRestored
            | EventKind::StoreBackedUp
            // Locations and the sub-processor register are the location
            // register's (`service::location`), rebuilt from these entries;
            // the grants they revoke are logged as grant.revoked.
            | EventKind::StaffLocated
            | EventKind::SubprocessorAdded
            | EventKind::SubprocessorAnnounced
            | EventKind::SubprocessorObjected
            | EventKind::TenantCountriesSet => {}
            EventKind::ProcessingRecorded => self.processing_recorded(e)?,
            EventKind::GrantReviewed => self.reviewed(e)?,
            EventKind::AlertRaised => self.alert_raised(e)?,
            EventKind::AlertAcknowledged | EventKind::AlertResolved => {
                self.alert_decided(kind, e)?
            }
            EventKind::GroupSet => self.group_set(e)?,
            EventKind::GroupRemoved => self.group_removed(e)?,
            EventKind::IncidentRecorded
            | EventKind::IncidentUpdated
            | EventKind::IncidentTenantNotified
            | EventKind::IncidentNotificationOverdue => {
                if kind == EventKind::IncidentRecorded
                    && !Name::parse(&e.tenant).is_ok_and(|t| self.tenants.contains_key(&t))
                {
                    return Err(format!(
                        "an incident affects tenant {:?}, which was never added",
                        e.tenant
                    ));
                }
                self.incidents.apply(kind, e)?
            }
        }
        Ok(())
    }

    fn requested(&mut self, e: &Entry) -> Result<(), String> {
        let id = grant_id(e)?;
        let holder = self.name(e, detail::HOLDER)?;
        let tenant = Name::parse(&e.tenant).map_err(|e| format!("tenant: {e}"))?;
        if self.grants.contains_key(&id) {
            return Err(format!("grant {id} was already requested"));
        }
        if let Some(why) = self.tenants.get(&tenant).and_then(|(t, _)| t.closed()) {
            return Err(format!("grant {id} is requested, but {why}"));
        }
        if e.actor != format!("staff/{holder}") {
            return Err(format!(
                "grant {id} is requested by {} for {holder}",
                e.actor
            ));
        }
        match self.staff.get(&holder) {
            Some((r, _)) if r.is_active() && r.role.may_hold_grants() => {}
            Some((r, _)) if !r.is_active() => {
                return Err(format!(
                    "grant {id} is requested by {holder}, who was offboarded"
                ));
            }
            Some((r, _)) => {
                return Err(format!(
                    "grant {id} is requested by {holder}, whose role ({}) has no access",
                    r.role
                ));
            }
            None => {
                return Err(format!(
                    "grant {id} is requested by {holder}, who is not enrolled"
                ));
            }
        }
        if !self.tenants.contains_key(&tenant) {
            return Err(format!(
                "grant {id} is for tenant {tenant}, which was never added"
            ));
        }
        let duration_secs: i64 = e
            .details
            .get(detail::DURATION_SECS)
            .and_then(|d| d.parse().ok())
            .ok_or("duration_secs is missing")?;
        if duration_secs <= 0 || duration_secs > self.rules.max_grant_secs {
            return Err(format!(
                "grant {id} is requested for {duration_secs} s (at most {} s)",
                self.rules.max_grant_secs
            ));
        }
        let pending_until = match e.details.get(detail::PENDING_UNTIL) {
            None => None,
            Some(_) => Some(timestamp(e, detail::PENDING_UNTIL)?),
        };
        // Logs from before the other policies name `approval`; older ones
        // name none (then activations are not held to a policy).
        let approval = match e.details.get(detail::APPROVAL) {
            None => None,
            Some(a) => Some(
                Approval::parse(a)
                    .ok_or_else(|| format!("grant {id}: approval policy {a:?} is unknown"))?,
            ),
        };
        let reason_code = match e.details.get(detail::REASON_CODE) {
            None => None,
            Some(c) => ReasonCode::parse(c).map_err(|why| format!("grant {id}: {why}"))?,
        };
        let approver_group = self
            .group_rule(e, approval)
            .map_err(|why| format!("grant {id}: {why}"))?;
        if reason_code.is_none()
            && self
                .tenants
                .get(&tenant)
                .is_some_and(|(t, _)| t.justification.require_reason_code)
        {
            return Err(format!(
                "grant {id} is requested without a reason code, which tenant {tenant} requires"
            ));
        }
        let break_glass = e.details.get(detail::BREAK_GLASS).map(String::as_str) == Some("true");
        if break_glass {
            self.may_break_glass(&id, &holder, &tenant, duration_secs)?;
        }
        let scopes = match e.details.get(detail::SCOPES) {
            None => Scopes::whole_tenant(),
            Some(s) if s.is_empty() => {
                return Err(format!(
                    "grant {id}: scopes is empty (a grant of the whole tenant has none)"
                ));
            }
            Some(s) => Scopes::parse_joined(s).map_err(|why| format!("grant {id}: {why}"))?,
        };
        let starts_at = match e.details.get(detail::STARTS_AT) {
            None => None,
            Some(_) => Some(timestamp(e, detail::STARTS_AT)?),
        };
        if let Some(start) = starts_at.filter(|s| *s <= e.timestamp) {
            return Err(format!(
                "grant {id} is scheduled to start at {start}, not later than its request"
            ));
        }
        if let Some(limit) = self.tenants.get(&tenant).and_then(|(t, _)| t.access_limit) {
            let others = self.holder_grants(&holder, &tenant, &id);
            if let Err(x) = limit.check(
                others,
                starts_at.unwrap_or(e.timestamp),
                duration_secs,
                e.timestamp,
            ) {
                return Err(format!(
                    "grant {id} is requested beyond the access limit: {}",
                    x.message(tenant.as_str())
                ));
            }
        }
        let key = (holder.clone(), tenant.clone());
        if let Some(prev) = self.latest.get(&key).and_then(|id| self.grants.get(id)) {
            if prev.grant.state.is_live() {
                return Err(format!(
                    "grant {id} is requested while {} is still {}",
                    prev.grant.id,
                    prev.grant.state.as_str()
                ));
            }
        }
        let g = Grant {
            id: id.clone(),
            tenant,
            holder,
            reason: e.details.get(detail::REASON).cloned().unwrap_or_default(),
            ticket: e.details.get(detail::TICKET).cloned().unwrap_or_default(),
            state: GrantState::Pending,
            duration_secs,
            requested_at: e.timestamp,
            pending_until,
            activated_at: None,
            expires_at: None,
            ended_at: None,
            decided_by: String::new(),
            decision_note: String::new(),
            offboarded: false,
            approval,
            approvals: Vec::new(),
            reason_code,
            break_glass,
            review: None,
            scopes,
            approver_group,
            starts_at,
        };
        self.latest.insert(key, id.clone());
        self.grants.insert(
            id,
            LoggedGrant {
                grant: g,
                seq: e.seq,
            },
        );
        Ok(())
    }

    /// `None` when the entry's grant admits its holder at `now`, or why not.
    fn admits(&self, e: &Entry, now: Timestamp) -> Result<Option<String>, String> {
        let g = &self.grant_of(e)?.grant;
        // Past its start, a scheduled grant admits only once an entry says
        // it activated (the server writes it first).
        if g.state == GrantState::Scheduled && g.is_valid_at(now).is_ok() {
            return Ok(Some(format!(
                "the log shows grant {} scheduled, never activated",
                g.id
            )));
        }
        if let Err(why) = g.is_valid_at(now) {
            return Ok(Some(format!(
                "the log shows grant {} {}",
                g.id,
                why.as_str()
            )));
        }
        if let (Some(a), Some(x)) = (g.activated_at, g.expires_at) {
            if x.millis() - a.millis() > self.rules.max_grant_secs * 1000 {
                return Ok(Some(format!("grant {} lasts more than 24 h", g.id)));
            }
        }
        Ok(match self.staff.get(&g.holder) {
            Some((r, _)) if !r.is_active() => Some(format!("{} was offboarded", g.holder)),
            Some((r, _)) if !r.role.may_hold_grants() => {
                Some(format!("{}'s role ({}) has no access", g.holder, r.role))
            }
            Some(_) => None,
            None => Some(format!("{} is not enrolled", g.holder)),
        })
    }

    /// The resource a validation was asked about (`for_resource`), if any.
    fn resource_of(&self, e: &Entry) -> Result<Option<ScopedResource>, String> {
        e.details
            .get(detail::FOR_RESOURCE)
            .map(|r| ScopedResource::parse(r).map_err(|why| why.to_string()))
            .transpose()
    }

    /// A denial: its resource, if any, well-formed; one denied as out of
    /// scope names a resource outside its grant's scopes.
    fn validation_denied(&self, e: &Entry) -> Result<(), String> {
        let resource = self.resource_of(e)?;
        if e.details.get(detail::DENY_REASON).map(String::as_str)
            != Some(DenyReason::OutOfScope.as_str())
        {
            return Ok(());
        }
        let Some(r) = resource else {
            return Err("denied as out of scope, but names no resource".into());
        };
        let g = &self.grant_of(e)?.grant;
        if g.scopes.permits(&r) {
            return Err(format!(
                "denied as out of scope, but {r} is inside grant {}'s scopes ({})",
                g.id, g.scopes
            ));
        }
        Ok(())
    }

    /// A record of processing: for a tenant that was added and is not
    /// terminated, its versions 1, 2, 3 … without gaps, the sha256 that of
    /// the record.
    fn processing_recorded(&mut self, e: &Entry) -> Result<(), String> {
        let tenant = Name::parse(&e.tenant)
            .ok()
            .filter(|t| self.tenants.contains_key(t))
            .ok_or_else(|| {
                format!(
                    "a record of processing for tenant {:?}, which was never added",
                    e.tenant
                )
            })?;
        if let Some(at) = self.tenants.get(&tenant).and_then(|(t, _)| t.terminated_at) {
            return Err(format!(
                "a record of processing for tenant {tenant}, terminated at {at}"
            ));
        }
        let (version, _) = crate::domain::processing::read_entry(&e.details)?;
        let expected = self.processing.get(&tenant).map_or(1, |v| v + 1);
        if version != expected {
            return Err(format!(
                "record of processing version {version} for tenant {tenant}; the next is {expected}"
            ));
        }
        self.processing.insert(tenant, version);
        Ok(())
    }

    fn grant_of(&self, e: &Entry) -> Result<&LoggedGrant, String> {
        let id = grant_id(e)?;
        let g = self
            .grants
            .get(&id)
            .ok_or_else(|| format!("grant {id} was never requested"))?;
        if g.grant.tenant.as_str() != e.tenant {
            return Err(format!(
                "grant {id} is of tenant {}, not {}",
                g.grant.tenant, e.tenant
            ));
        }
        Ok(g)
    }

    fn live_grant(&mut self, e: &Entry) -> Result<&mut LoggedGrant, String> {
        self.grant_of(e)?;
        let id = grant_id(e)?;
        self.grants
            .get_mut(&id)
            .ok_or_else(|| format!("grant {id} was never requested"))
    }

    fn touch(&mut self, e: &Entry) {
        if let Ok(id) = grant_id(e) {
            if let Some(g) = self.grants.get_mut(&id) {
                g.seq = e.seq;
            }
        }
    }

    fn name(&self, e: &Entry, key: &str) -> Result<Name, String> {
        e.details
            .get(key)
            .ok_or_else(|| format!("{key} is missing"))
            .and_then(|n| Name::parse(n).map_err(|err| format!("{key}: {err}")))
    }

    fn active_roots(&self) -> u32 {
        self.staff
            .values()
            .filter(|(r, _)| r.is_active() && r.role == Role::Root)
            .count() as u32
    }

    /// Differences between stored records and the log's state: every
    /// record must be the log's, and the log's must all be stored. Grants
    /// still pending are compared without `pending_until` when the log
    /// predates it.
    pub fn compare(
        &self,
        staff: &[StaffRecord],
        tenants: &[TenantRecord],
        grants: &[Grant],
    ) -> Vec<Mismatch> {
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for r in staff {
            seen.insert(format!("staff/{}", r.name));
            match self.staff.get(&r.name) {
                Some((logged, _)) if logged == r => {}
                Some((logged, seq)) => out.push(Mismatch {
                    record: format!("staff/{}", r.name),
                    seq: *seq,
                    why: if logged.recertified_at != r.recertified_at {
                        format!(
                            "stored as last certified {}, the log says {}",
                            r.last_certified(),
                            logged.last_certified()
                        )
                    } else {
                        format!(
                            "stored as {} ({}), the log says {} ({})",
                            r.role,
                            active_word(r),
                            logged.role,
                            active_word(logged)
                        )
                    },
                }),
                None => out.push(Mismatch {
                    record: format!("staff/{}", r.name),
                    seq: 0,
                    why: "stored, but the log never enrolled them".into(),
                }),
            }
        }
        for r in tenants {
            seen.insert(format!("tenant/{}", r.name));
            match self.tenants.get(&r.name) {
                Some((logged, _)) if logged == r => {}
                Some((_, seq)) => out.push(Mismatch {
                    record: format!("tenant/{}", r.name),
                    seq: *seq,
                    why: "its policy differs from the log's".into(),
                }),
                None => out.push(Mismatch {
                    record: format!("tenant/{}", r.name),
                    seq: 0,
                    why: "stored, but the log never added it".into(),
                }),
            }
        }
        for g in grants {
            seen.insert(format!("grant/{}", g.id));
            match self.grants.get(&g.id) {
                Some(logged) => {
                    let mut expected = logged.grant.clone();
                    if expected.pending_until.is_none() {
                        expected.pending_until = g.pending_until;
                    }
                    // Records stored before grants kept their policy and
                    // approvals (ended ones stay so: nothing decides on them).
                    if g.approval.is_none() {
                        expected.approval = None;
                        if g.state != GrantState::Pending {
                            expected.approvals = g.approvals.clone();
                        }
                    }
                    if expected != *g {
                        out.push(Mismatch {
                            record: format!("grant/{}", g.id),
                            seq: logged.seq,
                            why: grant_difference(g, &expected),
                        });
                    }
                }
                None => out.push(Mismatch {
                    record: format!("grant/{}", g.id),
                    seq: 0,
                    why: "stored, but the log never requested it".into(),
                }),
            }
        }
        let missing = self
            .staff
            .iter()
            .map(|(n, (_, s))| (format!("staff/{n}"), *s))
            .chain(
                self.tenants
                    .iter()
                    .map(|(n, (_, s))| (format!("tenant/{n}"), *s)),
            )
            .chain(
                self.grants
                    .values()
                    .map(|g| (format!("grant/{}", g.grant.id), g.seq)),
            );
        for (record, seq) in missing {
            if !seen.contains(&record) {
                out.push(Mismatch {
                    record,
                    seq,
                    why: "in the log, but not stored".into(),
                });
            }
        }
        out
    }

    /// Live grants per the log, and the newest grant of each holder and
    /// tenant: what the stored indexes must say.
    pub fn live_ids(&self) -> Vec<&GrantId> {
        self.grants
            .values()
            .filter(|g| g.grant.state.is_live())
            .map(|g| &g.grant.id)
            .collect()
    }

    pub fn latest(&self, holder: &Name, tenant: &Name) -> Option<&GrantId> {
        self.latest.get(&(holder.clone(), tenant.clone()))
    }
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.record)?;
        if self.seq > 0 {
            write!(f, " (last set by entry {})", self.seq)?;
        }
        write!(f, ": {}", self.why)
    }
}

fn active_word(r: &StaffRecord) -> &'static str {
    if r.is_active() {
        "active"
    } else {
        "offboarded"
    }
}

/// The first field that differs, in words.
fn grant_difference(stored: &Grant, logged: &Grant) -> String {
    let fields: [(&str, String, String); 8] = [
        (
            "state",
            stored.state.as_str().into(),
            logged.state.as_str().into(),
        ),
        (
            "holder",
            stored.holder.to_string(),
            logged.holder.to_string(),
        ),
        (
            "tenant",
            stored.tenant.to_string(),
            logged.tenant.to_string(),
        ),
        ("expires_at", opt(stored.expires_at), opt(logged.expires_at)),
        (
            "activated_at",
            opt(stored.activated_at),
            opt(logged.activated_at),
        ),
        ("ended_at", opt(stored.ended_at), opt(logged.ended_at)),
        (
            "duration_secs",
            stored.duration_secs.to_string(),
            logged.duration_secs.to_string(),
        ),
        (
            "pending_until",
            opt(stored.pending_until),
            opt(logged.pending_until),
        ),
    ];
    for (field, s, l) in fields {
        if s != l {
            return format!("{field} is stored as {s}, the log says {l}");
        }
    }
    "its details differ from the log's".into()
}

fn opt(t: Option<Timestamp>) -> String {
    t.map(|t| t.to_string()).unwrap_or_else(|| "-".into())
}

fn grant_id(e: &Entry) -> Result<GrantId, String> {
    e.details
        .get(detail::GRANT)
        .and_then(|g| GrantId::parse(g))
        .ok_or_else(|| "the grant id is missing or malformed".into())
}

fn timestamp(e: &Entry, key: &str) -> Result<Timestamp, String> {
    e.details
        .get(key)
        .and_then(|t| Timestamp::parse_rfc3339(t))
        .ok_or_else(|| format!("{key} is missing or not a time"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::entry::GENESIS_PREV_HASH;

    fn entry(seq: u64, at: i64, kind: &str) -> Entry {
        Entry {
            seq,
            timestamp: Timestamp(at),
            actor: "system".into(),
            tenant: String::new(),
            kind: kind.into(),
            details: Default::default(),
            sealed: None,
            prev_hash: GENESIS_PREV_HASH,
        }
    }

    #[test]
    fn the_logs_time_never_goes_back_even_in_entries_of_unknown_kinds() {
        let mut state = LogState::default();
        state.apply(&entry(0, 1_000, "server.started")).unwrap();
        // The same millisecond again is fine.
        state.apply(&entry(1, 1_000, "some.future_kind")).unwrap();
        state.apply(&entry(2, 2_000, "some.future_kind")).unwrap();
        let back = state.apply(&entry(3, 1_999, "server.started")).unwrap_err();
        assert_eq!(back.seq, 3);
        assert_eq!(
            back.why,
            "timestamp 1970-01-01T00:00:01.999Z is earlier than the previous entry's \
             1970-01-01T00:00:02.000Z: the log's time never goes back"
        );
        // An entry of an unknown kind is held to it too.
        let back = state.apply(&entry(3, 0, "some.future_kind")).unwrap_err();
        assert_eq!(back.seq, 3);
        // A contradicting entry changes nothing: the previous time is still 2 000.
        assert!(state.apply(&entry(3, 1_500, "server.started")).is_err());
        state.apply(&entry(3, 2_000, "server.started")).unwrap();
        // An unknown kind's time counts as the previous one.
        state.apply(&entry(4, 5_000, "some.future_kind")).unwrap();
        assert!(state.apply(&entry(5, 4_999, "server.started")).is_err());
    }
}
