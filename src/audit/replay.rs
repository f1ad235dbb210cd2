//! `daypass audit replay`: turns the log into the answer to "who had access
//! to which tenant, when, why, and what did they do", one block per grant.
//!
//! It reads the entries the server wrote (see the kinds in
//! docs/log-format.md); entries of other kinds are ignored. Memory grows with
//! the number of grants shown, not with the log.

use std::{collections::BTreeMap, fmt::Write as _};

use super::entry::SealedEntry;
use crate::clock::Timestamp;

/// What to show. A grant is shown when its tenant and holder match and its
/// lifetime (request to end) overlaps `[since, until)`.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub tenant: Option<String>,
    pub person: Option<String>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
}

/// One grant's story.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantStory {
    pub grant: String,
    pub tenant: String,
    pub holder: String,
    pub reason: String,
    pub ticket: String,
    pub requested_at: Timestamp,
    pub activated_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    /// How it ended: expired, revoked, released, denied, request-expired.
    pub outcome: Option<String>,
    /// Who decided (approved, denied, revoked), if anyone.
    pub decided_by: Vec<(String, String)>,
    /// (time, action, resource) recorded by the tenant.
    pub accesses: Vec<(Timestamp, String, String)>,
    /// Times the tenant's validation admitted the holder.
    pub validations_allowed: u64,
}

/// Builds the stories from entries in log order.
pub fn replay(entries: impl IntoIterator<Item = SealedEntry>, filter: &Filter) -> Vec<GrantStory> {
    let mut stories: BTreeMap<String, GrantStory> = BTreeMap::new();
    for sealed in entries {
        let e = sealed.entry;
        let Some(grant) = e.details.get("grant").cloned() else {
            continue;
        };
        let detail = |k: &str| e.details.get(k).cloned().unwrap_or_default();
        if e.kind == "grant.requested" {
            stories.insert(
                grant.clone(),
                GrantStory {
                    grant,
                    tenant: e.tenant.clone(),
                    holder: detail("holder"),
                    reason: detail("reason"),
                    ticket: detail("ticket"),
                    requested_at: e.timestamp,
                    activated_at: None,
                    ended_at: None,
                    outcome: None,
                    decided_by: Vec::new(),
                    accesses: Vec::new(),
                    validations_allowed: 0,
                },
            );
            continue;
        }
        let Some(story) = stories.get_mut(&grant) else {
            continue;
        };
        match e.kind.as_str() {
            "grant.activated" => story.activated_at = Some(e.timestamp),
            "grant.approved" => story.decided_by.push(("approved".into(), e.actor.clone())),
            "grant.denied"
            | "grant.revoked"
            | "grant.released"
            | "grant.expired"
            | "grant.request_expired" => {
                let outcome = e.kind.trim_start_matches("grant.").replace('_', "-");
                if e.kind != "grant.expired" && e.kind != "grant.request_expired" {
                    story.decided_by.push((outcome.clone(), e.actor.clone()));
                }
                // An expiry is effective at the deadline, not when it was logged.
                let at = e
                    .details
                    .get("expired_at")
                    .and_then(|t| Timestamp::parse_rfc3339(t))
                    .unwrap_or(e.timestamp);
                story.ended_at = Some(at);
                story.outcome = Some(outcome);
            }
            "access.recorded" => {
                story
                    .accesses
                    .push((e.timestamp, detail("action"), detail("resource")))
            }
            "validation.allowed" => story.validations_allowed += 1,
            _ => {}
        }
    }
    let mut out: Vec<GrantStory> = stories
        .into_values()
        .filter(|s| {
            filter.tenant.as_ref().is_none_or(|t| *t == s.tenant)
                && filter.person.as_ref().is_none_or(|p| *p == s.holder)
                && filter.until.is_none_or(|u| s.requested_at < u)
                && filter
                    .since
                    .is_none_or(|since| s.ended_at.is_none_or(|end| end > since))
        })
        .collect();
    out.sort_by_key(|s| s.requested_at);
    out
}

/// One alert's story: raised by the monitor, then acknowledged and
/// resolved by people (docs/monitoring.md).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertStory {
    pub alert: String,
    pub rule: String,
    pub severity: String,
    pub tenant: String,
    pub subject: String,
    pub summary: String,
    pub raised_at: Timestamp,
    pub trigger_seqs: String,
    /// (what, who, when, note): acknowledged, resolved.
    pub decisions: Vec<(String, String, Timestamp, String)>,
}

/// The alerts among `entries` (in log order) that match `filter`: its
/// tenant, its person (the alert's subject `staff/<person>`), and a raise
/// within `[since, until)`.
pub fn alerts(entries: &[SealedEntry], filter: &Filter) -> Vec<AlertStory> {
    let mut stories: BTreeMap<String, AlertStory> = BTreeMap::new();
    for sealed in entries {
        let e = &sealed.entry;
        let Some(id) = e.details.get("alert") else {
            continue;
        };
        let detail = |k: &str| e.details.get(k).cloned().unwrap_or_default();
        match e.kind.as_str() {
            "alert.raised" => {
                stories.insert(
                    id.clone(),
                    AlertStory {
                        alert: id.clone(),
                        rule: detail("rule"),
                        severity: detail("severity"),
                        tenant: e.tenant.clone(),
                        subject: detail("subject"),
                        summary: detail("summary"),
                        raised_at: e.timestamp,
                        trigger_seqs: detail("trigger_seqs"),
                        decisions: Vec::new(),
                    },
                );
            }
            "alert.acknowledged" | "alert.resolved" => {
                if let Some(s) = stories.get_mut(id) {
                    s.decisions.push((
                        e.kind.trim_start_matches("alert.").to_owned(),
                        e.actor.clone(),
                        e.timestamp,
                        detail("note"),
                    ));
                }
            }
            _ => {}
        }
    }
    let mut out: Vec<AlertStory> = stories
        .into_values()
        .filter(|s| {
            filter.tenant.as_ref().is_none_or(|t| *t == s.tenant)
                && filter
                    .person
                    .as_ref()
                    .is_none_or(|p| s.subject == format!("staff/{p}"))
                && filter.until.is_none_or(|u| s.raised_at < u)
                && filter.since.is_none_or(|since| s.raised_at >= since)
        })
        .collect();
    out.sort_by_key(|s| s.raised_at);
    out
}

/// The alerts as readable text (nothing when there are none).
pub fn render_alerts(alerts: &[AlertStory]) -> String {
    let mut out = String::new();
    if alerts.is_empty() {
        return out;
    }
    let _ = writeln!(out, "alerts:");
    for a in alerts {
        let state = match a.decisions.last() {
            Some((what, ..)) => what.as_str(),
            None => "open",
        };
        let _ = writeln!(
            out,
            "  {} {} {} [{}] {}",
            a.raised_at, a.severity, a.rule, state, a.summary
        );
        if a.trigger_seqs.is_empty() {
            // A system-health alert judges the ledger's state, not entries.
            let _ = writeln!(out, "    alert   {} (system health)", a.alert);
        } else {
            let _ = writeln!(out, "    alert   {} (entries {})", a.alert, a.trigger_seqs);
        }
        for (what, who, at, note) in &a.decisions {
            let _ = writeln!(out, "    {what} by {who} at {at}: {note}");
        }
    }
    out
}

/// The readable timeline.
pub fn render(stories: &[GrantStory]) -> String {
    let mut out = String::new();
    if stories.is_empty() {
        out.push_str("no grants match\n");
    }
    for s in stories {
        let window = match (s.activated_at, s.ended_at) {
            (Some(a), Some(e)) => format!("{a} → {e}"),
            (Some(a), None) => format!("{a} → (still active)"),
            (None, _) => "never active".to_owned(),
        };
        let _ = writeln!(
            out,
            "{} had access to {}: {} [{}]",
            s.holder,
            s.tenant,
            window,
            s.outcome.as_deref().unwrap_or("live")
        );
        let _ = writeln!(out, "  grant   {}", s.grant);
        let _ = writeln!(out, "  why     {}", s.reason);
        if !s.ticket.is_empty() {
            let _ = writeln!(out, "  ticket  {}", s.ticket);
        }
        for (what, who) in &s.decided_by {
            let _ = writeln!(out, "  {what:<8}by {who}");
        }
        let _ = writeln!(
            out,
            "  admitted {} time(s) by the tenant",
            s.validations_allowed
        );
        for (t, action, resource) in &s.accesses {
            let _ = writeln!(out, "  {t}  {action}  {resource}");
        }
        out.push('\n');
    }
    out
}
