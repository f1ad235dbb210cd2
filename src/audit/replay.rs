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
