//! The detection rules, as one deterministic fold over the log: [`Rules`]
//! sees entries in order ([`Rules::observe`]) and returns what they
//! trigger. Time is the entries' own timestamps, never the wall clock, so
//! judging the same entries again gives the same findings: that is what
//! lets the monitor rebuild its state after a restart by re-reading the
//! entries before its cursor without raising anything
//! ([`super`] explains the cursor).
//!
//! What a rule needs beyond the entries (a person's role, whether they
//! were offboarded) comes from the staff registry through [`Directory`];
//! roles never change and offboarding is timestamped, so the answer does
//! not depend on when it is asked.
//!
//! Two rules are not settings and always raise, once per entry: every
//! break-glass opening (`break-glass`) and every review that judges one
//! unjustified (`break-glass-unjustified`).

use std::collections::{HashMap, VecDeque};

use chrono::{Datelike as _, Timelike as _};

use super::settings::{AlertSettings, Threshold, Weekday};
use crate::{
    audit::Entry,
    clock::Timestamp,
    domain::{EventKind, Finding, Name, Role, Rule, Severity, StaffRecord, detail},
};

/// The staff registry, as the rules see it.
pub trait Directory {
    fn staff(&self, name: &Name) -> Option<StaffRecord>;
}

impl<F: Fn(&Name) -> Option<StaffRecord>> Directory for F {
    fn staff(&self, name: &Name) -> Option<StaffRecord> {
        self(name)
    }
}

/// The rules' state: windows of recent events per subject, renewal chains
/// and when each (rule, subject) last raised.
pub struct Rules {
    s: AlertSettings,
    last_raised: HashMap<(Rule, String), Timestamp>,
    requests: HashMap<String, Requests>,
    denials: HashMap<String, VecDeque<(Timestamp, u64)>>,
    floods: HashMap<String, VecDeque<(Timestamp, u64, u64)>>,
    chains: HashMap<(String, String), Chain>,
    observed: u64,
}

/// One person's recent requests, and how many of them each tenant has (so
/// that counting tenants costs O(1) per entry, not the window's length).
#[derive(Default)]
struct Requests {
    window: VecDeque<(Timestamp, String, u64)>,
    per_tenant: HashMap<String, u32>,
}

/// Back-to-back grants of one person on one tenant.
struct Chain {
    start: Timestamp,
    /// When the newest grant ends (its deadline, or when it ended).
    end: Timestamp,
    seqs: Vec<u64>,
}

const HOUR_MS: i64 = 3_600_000;

impl Rules {
    pub fn new(s: AlertSettings) -> Rules {
        Rules {
            s,
            last_raised: HashMap::new(),
            requests: HashMap::new(),
            denials: HashMap::new(),
            floods: HashMap::new(),
            chains: HashMap::new(),
            observed: 0,
        }
    }

    /// Judges the next entry of the log.
    pub fn observe(&mut self, e: &Entry, dir: &dyn Directory) -> Vec<Finding> {
        let mut out = Vec::new();
        let Some(kind) = EventKind::parse(&e.kind) else {
            return out;
        };
        let t = e.timestamp;
        let actor = ActorRef::parse(&e.actor);
        let staff = actor.staff_name().and_then(|n| dir.staff(&n));
        let holder = e.details.get(detail::HOLDER).cloned().unwrap_or_default();
        self.observed += 1;
        if self.observed % 10_000 == 0 {
            self.forget_before(t);
        }

        // Root holders: everything they change is noteworthy.
        if self.s.root_activity.enabled
            && staff.as_ref().is_some_and(|r| r.role == Role::Root)
            && !matches!(
                kind,
                EventKind::AuditRead
                    | EventKind::AuditVerified
                    | EventKind::CallRefused
                    | EventKind::AlertAcknowledged
                    | EventKind::AlertResolved
            )
        {
            out.push(self.finding(
                Rule::RootActivity,
                Severity::Info,
                &e.actor,
                &e.tenant,
                format!("root holder {} did {}", e.actor, e.kind),
                vec![e.seq],
            ));
        }

        // Break-glass: not settings, always raised, every time (no
        // cool-down): an emergency grant opened, and one judged unjustified.
        let detail_is = |k: &str, v: &str| e.details.get(k).map(String::as_str) == Some(v);
        if kind == EventKind::GrantActivated && detail_is(detail::BREAK_GLASS, "true") {
            out.push(self.finding(
                Rule::BreakGlass,
                Severity::Critical,
                &format!("staff/{holder}"),
                &e.tenant,
                format!(
                    "BREAK-GLASS: {holder} opened grant {} on {} without approval (until {}); \
                     it must be reviewed (`daypass grant review`)",
                    e.details.get(detail::GRANT).map(String::as_str).unwrap_or("?"),
                    e.tenant,
                    e.details.get(detail::EXPIRES_AT).map(String::as_str).unwrap_or("?")
                ),
                vec![e.seq],
            ));
        }
        if kind == EventKind::GrantReviewed && detail_is(detail::VERDICT, "unjustified") {
            out.push(self.finding(
                Rule::BreakGlassUnjustified,
                Severity::Critical,
                &format!("staff/{holder}"),
                &e.tenant,
                format!(
                    "{} judged {holder}'s break-glass grant {} on {} unjustified",
                    e.actor,
                    e.details.get(detail::GRANT).map(String::as_str).unwrap_or("?"),
                    e.tenant
                ),
                vec![e.seq],
            ));
        }

        match kind {
            EventKind::GrantRequested if self.s.many_tenants.enabled => {
                let Threshold {
                    count, window_secs, ..
                } = self.s.many_tenants;
                let r = self.requests.entry(holder.clone()).or_default();
                r.window.push_back((t, e.tenant.clone(), e.seq));
                *r.per_tenant.entry(e.tenant.clone()).or_default() += 1;
                while r
                    .window
                    .front()
                    .is_some_and(|x| x.0.0 <= t.0 - window_secs * 1000)
                {
                    if let Some((_, old, _)) = r.window.pop_front() {
                        if let Some(n) = r.per_tenant.get_mut(&old) {
                            *n -= 1;
                            if *n == 0 {
                                r.per_tenant.remove(&old);
                            }
                        }
                    }
                }
                if r.per_tenant.len() >= count as usize {
                    let seqs = r.window.iter().map(|x| x.2).collect();
                    let n = r.per_tenant.len();
                    out.extend(self.fire(
                        t,
                        Rule::ManyTenants,
                        Severity::Warning,
                        &format!("staff/{holder}"),
                        "",
                        format!(
                            "{holder} asked for grants in {n} tenants within {}",
                            span(window_secs)
                        ),
                        seqs,
                    ));
                }
            }
            EventKind::GrantActivated => {
                self.off_hours(e, &holder, "was given access", &mut out);
                if self.s.renewal_chain.enabled {
                    let expires = e
                        .details
                        .get(detail::EXPIRES_AT)
                        .and_then(|s| Timestamp::parse_rfc3339(s))
                        .unwrap_or(t);
                    let gap_ms = self.s.renewal_chain.gap_secs * 1000;
                    let key = (holder.clone(), e.tenant.clone());
                    let chain = self.chains.entry(key).or_insert(Chain {
                        start: t,
                        end: t,
                        seqs: Vec::new(),
                    });
                    if t.0 > chain.end.0 + gap_ms {
                        *chain = Chain {
                            start: t,
                            end: t,
                            seqs: Vec::new(),
                        };
                    }
                    chain.end = expires;
                    chain.seqs.push(e.seq);
                    let length = (chain.end.0 - chain.start.0) / 1000;
                    if length > self.s.renewal_chain.max_chain_secs {
                        let seqs = chain.seqs.clone();
                        out.extend(self.fire(
                            t,
                            Rule::RenewalChain,
                            Severity::Warning,
                            &format!("staff/{holder}"),
                            &e.tenant,
                            format!(
                                "{holder} has had access to {} for {} in a row through {} grants",
                                e.tenant,
                                span(length),
                                seqs.len()
                            ),
                            seqs,
                        ));
                    }
                }
            }
            EventKind::GrantRevoked | EventKind::GrantReleased | EventKind::GrantExpired => {
                if let Some(c) = self.chains.get_mut(&(holder.clone(), e.tenant.clone())) {
                    c.end = Timestamp(c.end.0.min(t.0));
                }
            }
            EventKind::AccessRecorded => {
                self.off_hours(e, &holder, "used access", &mut out);
                if self.s.outside_grant.enabled
                    && e.details.get(detail::WITHIN_GRANT).map(String::as_str) == Some("false")
                {
                    out.extend(self.fire(
                        t,
                        Rule::OutsideGrant,
                        Severity::Warning,
                        &format!("staff/{holder}"),
                        &e.tenant,
                        format!("{} reported access by {holder} outside any grant", e.tenant),
                        vec![e.seq],
                    ));
                }
            }
            EventKind::ValidationDenied if self.s.denied_burst.enabled => {
                let mut subjects = vec![format!("tenant/{}", e.tenant)];
                if !holder.is_empty() {
                    subjects.push(format!("staff/{holder}"));
                }
                let Threshold {
                    count, window_secs, ..
                } = self.s.denied_burst;
                for subject in subjects {
                    let q = self.denials.entry(subject.clone()).or_default();
                    q.push_back((t, e.seq));
                    prune(q, t, window_secs, |x| x.0);
                    if q.len() >= count as usize {
                        let seqs: Vec<u64> = q.drain(..).map(|x| x.1).collect();
                        // A person's burst may span tenants: no one tenant
                        // may read it.
                        let tenant = if subject.starts_with("tenant/") {
                            e.tenant.as_str()
                        } else {
                            ""
                        };
                        out.extend(self.fire(
                            t,
                            Rule::DeniedBurst,
                            Severity::Warning,
                            &subject,
                            tenant,
                            format!(
                                "{} validations denied for {subject} within {}",
                                seqs.len(),
                                span(window_secs)
                            ),
                            seqs,
                        ));
                    }
                }
            }
            EventKind::CallRefused => {
                let role = staff.as_ref().map(|r| r.role);
                if self.s.offboarded_use.enabled
                    && staff
                        .as_ref()
                        .and_then(|r| r.offboarded_at)
                        .is_some_and(|at| at <= t)
                {
                    out.extend(self.fire(
                        t,
                        Rule::OffboardedUse,
                        Severity::Critical,
                        &e.actor,
                        "",
                        format!("the certificate of offboarded {} was used", e.actor),
                        vec![e.seq],
                    ));
                } else if self.s.no_access_role.enabled
                    && matches!(
                        role,
                        Some(Role::Partnerships | Role::DataEntry | Role::Administration)
                    )
                {
                    out.extend(self.fire(
                        t,
                        Rule::NoAccessRole,
                        Severity::Warning,
                        &e.actor,
                        "",
                        format!(
                            "{} ({}, a role with no access) tried {}",
                            e.actor,
                            role.map(Role::as_str).unwrap_or_default(),
                            e.details.get(detail::CALL).map(String::as_str).unwrap_or("a call")
                        ),
                        vec![e.seq],
                    ));
                }
                if self.s.rate_flood.enabled
                    && e.details.get(detail::CODE).map(String::as_str) == Some("resource-exhausted")
                {
                    let unlogged: u64 = e
                        .details
                        .get(detail::UNLOGGED_REFUSALS_BEFORE)
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(0);
                    let Threshold {
                        count, window_secs, ..
                    } = self.s.rate_flood;
                    let q = self.floods.entry(e.actor.clone()).or_default();
                    q.push_back((t, e.seq, 1 + unlogged));
                    prune(q, t, window_secs, |x| x.0);
                    let refused: u64 = q.iter().map(|x| x.2).sum();
                    if refused >= u64::from(count) {
                        let seqs: Vec<u64> = q.drain(..).map(|x| x.1).collect();
                        out.extend(self.fire(
                            t,
                            Rule::RateFlood,
                            Severity::Warning,
                            &e.actor,
                            "",
                            format!(
                                "{refused} calls of {} refused by rate limits within {}",
                                e.actor,
                                span(window_secs)
                            ),
                            seqs,
                        ));
                    }
                }
            }
            EventKind::AuditVerified
                if self.s.chain_check_failed.enabled
                    && e.details.get(detail::OK).map(String::as_str) == Some("false") =>
            {
                out.extend(self.fire(
                    t,
                    Rule::ChainCheckFailed,
                    Severity::Critical,
                    "log",
                    "",
                    format!(
                        "a chain check failed at entry {}: {}",
                        e.details.get(detail::FIRST_BAD_SEQ).map(String::as_str).unwrap_or("?"),
                        e.details.get(detail::PROBLEM).map(String::as_str).unwrap_or("")
                    ),
                    vec![e.seq],
                ));
            }
            // The agreement's 24 h: not a setting, always raised (once per
            // incident and tenant, as the server logs it once).
            EventKind::IncidentNotificationOverdue => {
                let incident = e.details.get(detail::INCIDENT).cloned().unwrap_or_default();
                out.push(self.finding(
                    Rule::BreachNotificationOverdue,
                    Severity::Critical,
                    &format!("incident/{incident}"),
                    &e.tenant,
                    format!(
                        "tenant {} was not told of breach {incident} within 24 h (due {}); \
                         notify them and record it with `daypass incident notify`",
                        e.tenant,
                        e.details.get(detail::DUE_AT).map(String::as_str).unwrap_or("?")
                    ),
                    vec![e.seq],
                ));
            }
            _ => {}
        }
        out
    }

    fn off_hours(&mut self, e: &Entry, holder: &str, what: &str, out: &mut Vec<Finding>) {
        let o = &self.s.office_hours;
        if !o.enabled {
            return;
        }
        let Some(utc) = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(e.timestamp.0)
        else {
            return;
        };
        let local = utc + chrono::Duration::minutes(i64::from(o.utc_offset.0));
        let minute = local.hour() * 60 + local.minute();
        let day = Weekday::from_monday(local.weekday().num_days_from_monday());
        let inside = o.days.contains(&day) && o.start.0 <= minute && minute < o.end.0;
        if inside {
            return;
        }
        let at = local.format("%a %H:%M").to_string();
        out.extend(self.fire(
            e.timestamp,
            Rule::OffHours,
            Severity::Warning,
            &format!("staff/{holder}"),
            &e.tenant,
            format!(
                "{holder} {what} on {} outside office hours ({at} local)",
                e.tenant
            ),
            vec![e.seq],
        ));
    }

    /// A finding, unless the same rule raised for the same subject within
    /// the cool-down.
    #[allow(clippy::too_many_arguments)]
    fn fire(
        &mut self,
        t: Timestamp,
        rule: Rule,
        severity: Severity,
        subject: &str,
        tenant: &str,
        summary: String,
        seqs: Vec<u64>,
    ) -> Option<Finding> {
        let key = (rule, subject.to_owned());
        if let Some(last) = self.last_raised.get(&key) {
            if t.0 < last.0 + self.s.cooldown_secs * 1000 {
                return None;
            }
        }
        self.last_raised.insert(key, t);
        Some(self.finding(rule, severity, subject, tenant, summary, seqs))
    }

    fn finding(
        &self,
        rule: Rule,
        severity: Severity,
        subject: &str,
        tenant: &str,
        summary: String,
        seqs: Vec<u64>,
    ) -> Finding {
        Finding {
            rule,
            severity,
            subject: subject.to_owned(),
            tenant: tenant.to_owned(),
            summary,
            seqs,
        }
    }

    /// Drops state no rule can need any more (bounded memory).
    fn forget_before(&mut self, t: Timestamp) {
        let horizon = Timestamp(t.0 - self.s.lookback_secs() * 1000 - HOUR_MS);
        self.last_raised.retain(|_, at| *at >= horizon);
        self.requests
            .retain(|_, r| r.window.back().is_some_and(|x| x.0 >= horizon));
        self.denials
            .retain(|_, q| q.back().is_some_and(|x| x.0 >= horizon));
        self.floods
            .retain(|_, q| q.back().is_some_and(|x| x.0 >= horizon));
        self.chains.retain(|_, c| c.end >= horizon);
    }
}

fn prune<T>(q: &mut VecDeque<T>, now: Timestamp, window_secs: i64, at: impl Fn(&T) -> Timestamp) {
    while q
        .front()
        .is_some_and(|x| at(x).0 <= now.0 - window_secs * 1000)
    {
        q.pop_front();
    }
}

/// `3600` → `1 h`, `600` → `10 min`, `108001` → `30 h 0 min`.
fn span(secs: i64) -> String {
    let (h, m) = (secs / 3600, secs % 3600 / 60);
    match (h, m, secs % 60) {
        (0, 0, s) => format!("{s} s"),
        (0, m, _) => format!("{m} min"),
        (h, 0, 0) => format!("{h} h"),
        (h, m, _) => format!("{h} h {m} min"),
    }
}

/// An entry's actor field, `kind/name`.
struct ActorRef<'a> {
    kind: &'a str,
    name: &'a str,
}

impl<'a> ActorRef<'a> {
    fn parse(s: &'a str) -> ActorRef<'a> {
        let (kind, name) = s.split_once('/').unwrap_or((s, ""));
        ActorRef { kind, name }
    }

    /// The registry name of a staff or auditor actor.
    fn staff_name(&self) -> Option<Name> {
        matches!(self.kind, "staff" | "auditor")
            .then(|| Name::parse(self.name).ok())
            .flatten()
    }
}

#[cfg(test)]
mod tests;
