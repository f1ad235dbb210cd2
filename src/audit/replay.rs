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
    /// The seq of its `grant.requested` entry.
    pub requested_seq: u64,
    pub tenant: String,
    pub holder: String,
    pub reason: String,
    pub ticket: String,
    /// Its reason code (`reason_code`), empty when it gave none.
    pub reason_code: String,
    pub requested_at: Timestamp,
    pub activated_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    /// How it ended: expired, revoked, released, denied, request-expired.
    pub outcome: Option<String>,
    /// Who decided (approved, denied, revoked), if anyone.
    pub decided_by: Vec<(String, String)>,
    /// What the tenant recorded, in log order.
    pub accesses: Vec<Access>,
    /// The deadline `grant.activated` named.
    pub expires_at: Option<Timestamp>,
    /// Ended only by its deadline, which passed before the log's last
    /// entry although no `grant.expired` was logged yet (the server ends
    /// a grant at its deadline; the entry follows at its next sweep).
    pub expiry_unlogged: bool,
    /// Times the tenant's validation admitted the holder.
    pub validations_allowed: u64,
    /// Opened in an emergency without approval (`break_glass`).
    pub break_glass: bool,
    /// Its review (`grant.reviewed`): verdict, reviewer, when.
    pub review: Option<(String, String, Timestamp)>,
}

/// One access the tenant recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access {
    /// The seq of its `access.recorded` entry.
    pub seq: u64,
    /// When it happened: `accessed_at` for a report sent afterwards, else
    /// when it was logged.
    pub at: Timestamp,
    pub action: String,
    pub resource: String,
    /// When it was logged, for a report sent afterwards.
    pub reported_at: Option<Timestamp>,
    /// `false`: the grant was not active when the access happened.
    pub within_grant: bool,
}

/// Builds the stories from entries in log order.
pub fn replay(entries: impl IntoIterator<Item = SealedEntry>, filter: &Filter) -> Vec<GrantStory> {
    let mut stories: BTreeMap<String, GrantStory> = BTreeMap::new();
    let mut last = None;
    for sealed in entries {
        let e = sealed.entry;
        last = Some(e.timestamp);
        let Some(grant) = e.details.get("grant").cloned() else {
            continue;
        };
        let detail = |k: &str| e.details.get(k).cloned().unwrap_or_default();
        if e.kind == "grant.requested" {
            stories.insert(
                grant.clone(),
                GrantStory {
                    grant,
                    requested_seq: e.seq,
                    tenant: e.tenant.clone(),
                    holder: detail("holder"),
                    reason: detail("reason"),
                    ticket: detail("ticket"),
                    reason_code: detail("reason_code"),
                    requested_at: e.timestamp,
                    activated_at: None,
                    ended_at: None,
                    outcome: None,
                    decided_by: Vec::new(),
                    accesses: Vec::new(),
                    validations_allowed: 0,
                    expires_at: None,
                    expiry_unlogged: false,
                    break_glass: detail("break_glass") == "true",
                    review: None,
                },
            );
            continue;
        }
        let Some(story) = stories.get_mut(&grant) else {
            continue;
        };
        match e.kind.as_str() {
            "grant.activated" => {
                // A scheduled grant's activation names its start, whenever
                // it was written.
                story.activated_at = Some(
                    e.details
                        .get("activated_at")
                        .and_then(|t| Timestamp::parse_rfc3339(t))
                        .unwrap_or(e.timestamp),
                );
                story.expires_at = e
                    .details
                    .get("expires_at")
                    .and_then(|t| Timestamp::parse_rfc3339(t));
            }
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
                let accessed_at = e
                    .details
                    .get("accessed_at")
                    .and_then(|t| Timestamp::parse_rfc3339(t));
                story.accesses.push(Access {
                    seq: e.seq,
                    at: accessed_at.unwrap_or(e.timestamp),
                    action: detail("action"),
                    resource: detail("resource"),
                    reported_at: accessed_at.map(|_| e.timestamp),
                    within_grant: e.details.get("within_grant").map(String::as_str)
                        != Some("false"),
                })
            }
            "validation.allowed" => story.validations_allowed += 1,
            "grant.reviewed" => {
                story.review = Some((detail("verdict"), e.actor.clone(), e.timestamp));
            }
            _ => {}
        }
    }
    // A deadline that passed before the log ends ended the grant, logged
    // or not (an export taken between the deadline and the sweep).
    for s in stories.values_mut() {
        if let (Some(_), None, Some(exp), Some(last)) =
            (s.activated_at, s.ended_at, s.expires_at, last)
        {
            if exp <= last {
                s.ended_at = Some(exp);
                s.outcome = Some("expired".into());
                s.expiry_unlogged = true;
            }
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

/// A break-glass grant's review state, in words: `unreviewed`, or
/// `justified by staff/carol at …`.
pub fn review_text(s: &GrantStory) -> String {
    match &s.review {
        None => "unreviewed".into(),
        Some((verdict, by, at)) => format!("{verdict} by {by} at {at}"),
    }
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

/// Why `filter` names a tenant or person the log never mentions (a
/// misspelling, most likely), or `None`.
pub fn unknown_names(entries: &[SealedEntry], filter: &Filter) -> Option<String> {
    if let Some(t) = &filter.tenant {
        if !entries.iter().any(|s| s.entry.tenant == *t) {
            return Some(format!(
                "no tenant named {t:?} appears in the log (check the spelling; `daypass tenant list` shows them)"
            ));
        }
    }
    if let Some(p) = &filter.person {
        let named = |s: &SealedEntry| {
            s.entry.details.get("holder").is_some_and(|h| h == p)
                || s.entry.details.get("name").is_some_and(|n| n == p)
                || s.entry.actor.rsplit_once('/').is_some_and(|(_, n)| n == p)
        };
        if !entries.iter().any(named) {
            return Some(format!(
                "no person named {p:?} appears in the log (check the spelling; `daypass staff list` shows them)"
            ));
        }
    }
    None
}

/// The readable timeline.
pub fn render(stories: &[GrantStory]) -> String {
    let mut out = String::new();
    if stories.is_empty() {
        out.push_str("no grants match\n");
    }
    for s in stories {
        let window = match (s.activated_at, s.ended_at) {
            (Some(a), Some(e)) if s.expiry_unlogged => {
                format!("{a} → {e} (its deadline; the expiry entry came after the log's end)")
            }
            (Some(a), Some(e)) => format!("{a} → {e}"),
            (Some(a), None) => match s.expires_at {
                Some(exp) => format!("{a} → (active when the log ends; until {exp} at most)"),
                None => format!("{a} → (active when the log ends)"),
            },
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
        if s.break_glass {
            let _ = writeln!(out, "  BREAK-GLASS {}", review_text(s));
        }
        let _ = writeln!(out, "  why     {}", s.reason);
        if !s.reason_code.is_empty() {
            let _ = writeln!(out, "  code    {}", s.reason_code);
        }
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
        for a in &s.accesses {
            let late = a
                .reported_at
                .map(|r| format!("  (reported at {r})"))
                .unwrap_or_default();
            let outside = if a.within_grant {
                ""
            } else {
                "  OUTSIDE THE GRANT"
            };
            let _ = writeln!(
                out,
                "  {}  {}  {}{late}{outside}",
                a.at, a.action, a.resource
            );
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::entry::Entry;

    const T0: i64 = 1_800_000_000_000;

    fn e(
        seq: u64,
        secs: i64,
        actor: &str,
        tenant: &str,
        kind: &str,
        d: &[(&str, &str)],
    ) -> SealedEntry {
        SealedEntry {
            entry: Entry {
                seq,
                timestamp: Timestamp(T0 + secs * 1000),
                actor: actor.into(),
                tenant: tenant.into(),
                kind: kind.into(),
                details: d.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect(),
                sealed: None,
                prev_hash: [0; 32],
            },
            hash: [0; 32],
        }
    }

    fn at(secs: i64) -> String {
        Timestamp(T0 + secs * 1000).to_rfc3339()
    }

    /// alice on acme (an hour, released at 30 min, a late report outside
    /// the grant), bob on globex (active at the log's end), carol on acme
    /// (its deadline passed before the log's end, no expiry entry yet).
    fn log() -> Vec<SealedEntry> {
        let g = |id: &str| ("grant", id.to_owned());
        let (ga, gb, gc) = (g("g-a"), g("g-b"), g("g-c"));
        let exp_a = at(3600);
        let exp_b = at(100_000);
        let exp_c = at(4000);
        let late = at(7200);
        vec![
            e(
                0,
                0,
                "staff/alice",
                "acme",
                "grant.requested",
                &[(ga.0, &ga.1), ("holder", "alice"), ("reason", "INC-1")],
            ),
            e(
                1,
                0,
                "system",
                "acme",
                "grant.activated",
                &[(ga.0, &ga.1), ("holder", "alice"), ("expires_at", &exp_a)],
            ),
            e(
                2,
                60,
                "tenant/acme",
                "acme",
                "access.recorded",
                &[
                    (ga.0, &ga.1),
                    ("holder", "alice"),
                    ("action", "ssh"),
                    ("resource", "web-1"),
                ],
            ),
            e(
                3,
                1800,
                "staff/alice",
                "acme",
                "grant.released",
                &[(ga.0, &ga.1), ("holder", "alice")],
            ),
            e(
                4,
                2000,
                "staff/bob",
                "globex",
                "grant.requested",
                &[(gb.0, &gb.1), ("holder", "bob"), ("reason", "INC-2")],
            ),
            e(
                5,
                2000,
                "system",
                "globex",
                "grant.activated",
                &[(gb.0, &gb.1), ("holder", "bob"), ("expires_at", &exp_b)],
            ),
            e(
                6,
                2100,
                "staff/carol",
                "acme",
                "grant.requested",
                &[(gc.0, &gc.1), ("holder", "carol"), ("reason", "INC-3")],
            ),
            e(
                7,
                400,
                "system",
                "acme",
                "grant.activated",
                &[(gc.0, &gc.1), ("holder", "carol"), ("expires_at", &exp_c)],
            ),
            e(
                8,
                7300,
                "tenant/acme",
                "acme",
                "access.recorded",
                &[
                    (ga.0, &ga.1),
                    ("holder", "alice"),
                    ("action", "sql"),
                    ("resource", "db"),
                    ("accessed_at", &late),
                    ("within_grant", "false"),
                ],
            ),
        ]
    }

    #[test]
    fn filters_select_by_tenant_person_and_overlap_with_the_window() {
        let ids =
            |f: Filter| -> Vec<String> { replay(log(), &f).into_iter().map(|s| s.grant).collect() };
        assert_eq!(ids(Filter::default()), ["g-a", "g-b", "g-c"]);
        assert_eq!(
            ids(Filter {
                tenant: Some("acme".into()),
                ..Default::default()
            }),
            ["g-a", "g-c"]
        );
        assert_eq!(
            ids(Filter {
                person: Some("bob".into()),
                ..Default::default()
            }),
            ["g-b"]
        );
        // alice's grant ended at 1800 s: not in a window from 1900 s on.
        let since = Some(Timestamp(T0 + 1_900_000));
        assert_eq!(
            ids(Filter {
                since,
                ..Default::default()
            }),
            ["g-b", "g-c"]
        );
        // Nothing was requested before 1 s but alice's.
        let until = Some(Timestamp(T0 + 1000));
        assert_eq!(
            ids(Filter {
                until,
                ..Default::default()
            }),
            ["g-a"]
        );
    }

    #[test]
    fn late_reports_keep_when_they_happened_and_say_they_were_outside_the_grant() {
        let s = &replay(log(), &Filter::default())[0];
        assert_eq!(s.accesses.len(), 2);
        let late = &s.accesses[1];
        assert_eq!(late.at.to_rfc3339(), at(7200));
        assert_eq!(late.reported_at.map(Timestamp::to_rfc3339), Some(at(7300)));
        assert!(!late.within_grant && s.accesses[0].within_grant);
        let text = render(std::slice::from_ref(s));
        assert!(
            text.contains("(reported at") && text.contains("OUTSIDE THE GRANT"),
            "{text}"
        );
    }

    #[test]
    fn a_passed_deadline_ends_a_grant_and_only_a_live_one_is_active_at_the_end() {
        let stories = replay(log(), &Filter::default());
        let (b, c) = (&stories[1], &stories[2]);
        assert_eq!((b.ended_at, b.expiry_unlogged), (None, false));
        assert!(render(std::slice::from_ref(b)).contains("active when the log ends; until"));
        assert_eq!(c.ended_at.map(Timestamp::to_rfc3339), Some(at(4000)));
        assert!(c.expiry_unlogged);
        let text = render(std::slice::from_ref(c));
        assert!(
            text.contains("[expired]") && !text.contains("active when"),
            "{text}"
        );
    }

    #[test]
    fn a_name_the_log_never_mentions_is_reported_as_such() {
        let f = |t: Option<&str>, p: Option<&str>| Filter {
            tenant: t.map(Into::into),
            person: p.map(Into::into),
            ..Default::default()
        };
        assert!(unknown_names(&log(), &f(Some("acme"), Some("alice"))).is_none());
        let why = unknown_names(&log(), &f(Some("acmee"), None)).unwrap();
        assert!(why.contains("no tenant named \"acmee\""), "{why}");
        let why = unknown_names(&log(), &f(None, Some("alcie"))).unwrap();
        assert!(why.contains("no person named \"alcie\""), "{why}");
    }
}
