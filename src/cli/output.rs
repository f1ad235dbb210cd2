//! How the CLI shows things: aligned tables by default, JSON with `--json`.

use serde_json::{Value, json};

use crate::{clock::Timestamp, pb};

/// Prints `json` (pretty) with `--json`, else `text` as it is.
pub fn print_json_or_text(json_out: bool, json: &Value, text: &str) {
    if json_out {
        println!("{json:#}");
    } else {
        print!("{text}");
    }
}

/// A plain text table with aligned columns.
pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: Vec<&'static str>) -> Self {
        Table {
            headers,
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.len()).collect();
        for r in &self.rows {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cells: Vec<&str>| {
            let mut s = String::new();
            for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
                if i + 1 == cells.len() {
                    s.push_str(c);
                } else {
                    s.push_str(&format!("{c:<w$}  "));
                }
            }
            s.trim_end().to_owned() + "\n"
        };
        let mut out = line(self.headers.clone());
        for r in &self.rows {
            out.push_str(&line(r.iter().map(String::as_str).collect()));
        }
        out
    }
}

pub fn time(ms: i64) -> String {
    if ms == 0 {
        "-".into()
    } else {
        Timestamp(ms).to_rfc3339()
    }
}

pub fn time_json(ms: i64) -> Value {
    if ms == 0 {
        Value::Null
    } else {
        json!(Timestamp(ms).to_rfc3339())
    }
}

pub fn role(v: i32) -> &'static str {
    match pb::Role::try_from(v).unwrap_or(pb::Role::Unspecified) {
        pb::Role::Unspecified => "-",
        pb::Role::Support => "support",
        pb::Role::Root => "root",
        pb::Role::Admin => "admin",
        pb::Role::Auditor => "auditor",
        pb::Role::Partnerships => "partnerships",
        pb::Role::DataEntry => "data-entry",
        pb::Role::Administration => "administration",
    }
}

pub fn state(v: i32) -> &'static str {
    match pb::GrantState::try_from(v).unwrap_or(pb::GrantState::Unspecified) {
        pb::GrantState::Unspecified => "?",
        pb::GrantState::Pending => "pending",
        pb::GrantState::Active => "active",
        pb::GrantState::Denied => "denied",
        pb::GrantState::RequestExpired => "request-expired",
        pb::GrantState::Expired => "expired",
        pb::GrantState::Revoked => "revoked",
        pb::GrantState::Released => "released",
        pb::GrantState::Scheduled => "scheduled",
    }
}

pub fn approval(v: i32) -> &'static str {
    match pb::ApprovalPolicy::try_from(v).unwrap_or(pb::ApprovalPolicy::Unspecified) {
        pb::ApprovalPolicy::Auto => "auto",
        pb::ApprovalPolicy::Approval => "tenant-or-peer",
        pb::ApprovalPolicy::Tenant => "tenant",
        pb::ApprovalPolicy::Peer => "peer",
        pb::ApprovalPolicy::TenantAndPeer => "tenant+peer",
        pb::ApprovalPolicy::Group => "group",
        pb::ApprovalPolicy::Unspecified => "?",
    }
}

/// A policy's name with its group: `group:oncall-leads:2`, `tenant+peer`.
pub fn policy(v: i32, group: &str, threshold: u32) -> String {
    match pb::ApprovalPolicy::try_from(v) {
        Ok(pb::ApprovalPolicy::Group) => format!("group:{group}:{threshold}"),
        _ => approval(v).to_owned(),
    }
}

/// A grant's policy's name ([`policy`]).
pub fn grant_policy(g: &pb::Grant) -> String {
    policy(g.approval, &g.approver_group, g.approval_threshold)
}

/// A tenant's policy's name ([`policy`]).
pub fn tenant_policy(t: &pb::Tenant) -> String {
    policy(t.approval, &t.approver_group, t.approval_threshold)
}

pub fn deny_reason(v: i32) -> &'static str {
    match pb::DenyReason::try_from(v).unwrap_or(pb::DenyReason::Unspecified) {
        pb::DenyReason::Unspecified => "",
        pb::DenyReason::Unknown => "unknown",
        pb::DenyReason::Pending => "pending",
        pb::DenyReason::Expired => "expired",
        pb::DenyReason::Revoked => "revoked",
        pb::DenyReason::Offboarded => "offboarded",
        pb::DenyReason::Denied => "denied",
        pb::DenyReason::Released => "released",
        pb::DenyReason::OutOfScope => "out_of_scope",
        pb::DenyReason::NotYetActive => "not_yet_active",
    }
}

pub fn grant_json(g: &pb::Grant) -> Value {
    json!({
        "id": g.id, "tenant": g.tenant, "holder": g.holder, "reason": g.reason,
        "ticket": g.ticket, "state": state(g.state), "duration_seconds": g.duration_seconds,
        "requested_at": time_json(g.requested_at_ms), "pending_until": time_json(g.pending_until_ms),
        "activated_at": time_json(g.activated_at_ms), "expires_at": time_json(g.expires_at_ms),
        "ended_at": time_json(g.ended_at_ms), "decided_by": g.decided_by, "decision_note": g.decision_note,
        "approval": grant_policy(g),
        "approvals": g.approvals.iter().map(|a| json!({"by": a.by, "at": time_json(a.at_ms)})).collect::<Vec<_>>(),
        "reason_code": (!g.reason_code.is_empty()).then_some(&g.reason_code),
        "break_glass": g.break_glass,
        "review": g.review.as_ref().map(|r| json!({
            "by": r.by, "at": time_json(r.at_ms), "verdict": r.verdict, "note": r.note,
        })),
        "scopes": g.scopes,
        "starts_at": (g.starts_at_ms != 0).then(|| time_json(g.starts_at_ms)),
    })
}

/// The review queue: break-glass grants that wait for the caller's
/// review, oldest first, with their age (since they opened).
pub fn reviews_table(grants: &[pb::Grant], now: crate::clock::Timestamp) -> String {
    if grants.is_empty() {
        return "no break-glass grant waits for your review\n".into();
    }
    let mut t = Table::new(vec![
        "ID", "TENANT", "HOLDER", "OPENED", "AGE", "STATE", "REASON",
    ]);
    for g in grants {
        t.row(vec![
            g.id.clone(),
            g.tenant.clone(),
            g.holder.clone(),
            time(g.activated_at_ms),
            minutes(now.millis() - g.activated_at_ms),
            state(g.state).into(),
            crate::identity::truncate(&g.reason, 50),
        ]);
    }
    t.render()
}

/// `45m`, `3h05m`.
fn minutes(ms: i64) -> String {
    let m = ms.max(0) / 60_000;
    if m >= 60 {
        format!("{}h{:02}m", m / 60, m % 60)
    } else {
        format!("{m}m")
    }
}

/// A grant's break-glass mark and review, in words.
pub fn review_state(g: &pb::Grant) -> String {
    match &g.review {
        None => "UNREVIEWED: a second person must review it (`daypass grant review`)".into(),
        Some(r) => format!("{} by {} at {}", r.verdict, r.by, time(r.at_ms)),
    }
}

/// A grant's scopes in a table cell: `db:read ssh:web-*`, or
/// `whole tenant`.
pub fn scopes(g: &pb::Grant) -> String {
    if g.scopes.is_empty() {
        "whole tenant".into()
    } else {
        g.scopes.join(" ")
    }
}

/// Who must still approve a pending grant, in words.
pub fn waiting_for(g: &pb::Grant) -> String {
    let tenant = g.approvals.iter().any(|a| a.by.starts_with("tenant/"));
    let policy =
        pb::ApprovalPolicy::try_from(g.approval).unwrap_or(pb::ApprovalPolicy::Unspecified);
    if policy == pb::ApprovalPolicy::Group {
        let left = (g.approval_threshold as usize).saturating_sub(g.approvals.len());
        return format!(
            "{left} more of group {} ({} of {} approved)",
            g.approver_group,
            g.approvals.len(),
            g.approval_threshold
        );
    }
    match policy {
        pb::ApprovalPolicy::TenantAndPeer if tenant => "a colleague of the requester",
        pb::ApprovalPolicy::TenantAndPeer if !g.approvals.is_empty() => "the tenant",
        pb::ApprovalPolicy::TenantAndPeer => "the tenant and a colleague of the requester",
        pb::ApprovalPolicy::Tenant => "the tenant",
        pb::ApprovalPolicy::Peer => "a colleague of the requester",
        pb::ApprovalPolicy::Approval => "the tenant or a colleague of the requester",
        pb::ApprovalPolicy::Auto | pb::ApprovalPolicy::Unspecified | pb::ApprovalPolicy::Group => {
            "nobody"
        }
    }
    .to_owned()
}

/// The approval queue: what waits for the caller, oldest first.
pub fn pending_table(grants: &[pb::Grant], now: crate::clock::Timestamp) -> String {
    if grants.is_empty() {
        return "nothing waits for your decision\n".into();
    }
    let mut t = Table::new(vec![
        "ID",
        "TENANT",
        "HOLDER",
        "AGE",
        "LEFT",
        "STARTS",
        "POLICY",
        "WAITS FOR",
        "REASON",
        "SCOPES",
    ]);
    let dur = |ms: i64| {
        let m = ms.max(0) / 60_000;
        if m >= 60 {
            format!("{}h{:02}m", m / 60, m % 60)
        } else {
            format!("{m}m")
        }
    };
    for g in grants {
        t.row(vec![
            g.id.clone(),
            g.tenant.clone(),
            g.holder.clone(),
            dur(now.millis() - g.requested_at_ms),
            dur(g.pending_until_ms - now.millis()),
            starts(g),
            grant_policy(g),
            waiting_for(g),
            crate::identity::truncate(&g.reason, 50),
            scopes(g),
        ]);
    }
    t.render()
}

pub fn grants_table(grants: &[pb::Grant]) -> String {
    if grants.is_empty() {
        return "no grants\n".into();
    }
    let mut t = Table::new(vec![
        "ID",
        "TENANT",
        "HOLDER",
        "STATE",
        "STARTS",
        "EXPIRES / UNTIL",
        "ENDED",
        "REASON",
        "SCOPES",
    ]);
    for g in grants {
        let until = if g.expires_at_ms != 0 {
            g.expires_at_ms
        } else if g.pending_until_ms != 0 {
            g.pending_until_ms
        } else if g.starts_at_ms != 0 {
            // Scheduled: its window's end.
            g.starts_at_ms + g.duration_seconds * 1000
        } else {
            0
        };
        t.row(vec![
            g.id.clone(),
            g.tenant.clone(),
            g.holder.clone(),
            if g.break_glass {
                format!("{} BREAK-GLASS", state(g.state))
            } else {
                state(g.state).into()
            },
            starts(g),
            time(until),
            // When it left pending/active: revoked, released, denied,
            // expired (at its deadline); "-" while live.
            time(g.ended_at_ms),
            crate::identity::truncate(&g.reason, 50),
            scopes(g),
        ]);
    }
    t.render()
}

pub fn grant_detail(g: &pb::Grant) -> String {
    let mut t = Table::new(vec!["FIELD", "VALUE"]);
    let mut add = |k: &str, v: String| t.row(vec![k.to_owned(), v]);
    add("id", g.id.clone());
    add("tenant", g.tenant.clone());
    add("holder", g.holder.clone());
    add("state", state(g.state).into());
    if g.break_glass {
        add("BREAK-GLASS", "opened at once, without approval".into());
        add("review", review_state(g));
        if let Some(r) = g.review.as_ref().filter(|r| !r.note.is_empty()) {
            add("review note", r.note.clone());
        }
    }
    add("reason", g.reason.clone());
    if !g.reason_code.is_empty() {
        add("reason code", g.reason_code.clone());
    }
    add(
        "ticket",
        if g.ticket.is_empty() {
            "-".into()
        } else {
            g.ticket.clone()
        },
    );
    add("scopes", scopes(g));
    add("duration", format!("{} s", g.duration_seconds));
    add("requested at", time(g.requested_at_ms));
    if g.starts_at_ms != 0 {
        add("starts at", time(g.starts_at_ms));
    }
    if g.pending_until_ms != 0 {
        add("approve before", time(g.pending_until_ms));
    }
    add("activated at", time(g.activated_at_ms));
    add("expires at", time(g.expires_at_ms));
    add("ended at", time(g.ended_at_ms));
    add("approval policy", grant_policy(g));
    for a in &g.approvals {
        add("approved by", format!("{} at {}", a.by, time(a.at_ms)));
    }
    if let Some(label) = decision_label(g) {
        // Approvals are listed above, each with its time.
        if label != "approved by" || g.approvals.is_empty() {
            add(label, g.decided_by.clone());
        }
    }
    if !g.decision_note.is_empty() {
        add("note", g.decision_note.clone());
    }
    t.render()
}

/// When a grant's window starts: its scheduled start, or "now" for one
/// asked for at once.
fn starts(g: &pb::Grant) -> String {
    if g.starts_at_ms != 0 {
        time(g.starts_at_ms)
    } else {
        "now".into()
    }
}

/// What `decided_by` means for a grant in its state: the proto carries the
/// last decision only, so a grant revoked or released after an approval
/// shows who ended it, not who approved it (the approval is in the log).
/// An expired grant keeps its approver; an auto-approved one has none.
fn decision_label(g: &pb::Grant) -> Option<&'static str> {
    if g.decided_by.is_empty() {
        return None;
    }
    Some(
        match pb::GrantState::try_from(g.state).unwrap_or(pb::GrantState::Unspecified) {
            pb::GrantState::Active | pb::GrantState::Expired | pb::GrantState::Scheduled => {
                "approved by"
            }
            pb::GrantState::Denied => "denied by",
            pb::GrantState::Revoked => "revoked by",
            pb::GrantState::Released => "released by",
            pb::GrantState::Pending
            | pb::GrantState::RequestExpired
            | pb::GrantState::Unspecified => "decided by",
        },
    )
}

pub fn staff_json(s: &pb::Staff) -> Value {
    json!({
        "name": s.name, "role": role(s.role), "principal": s.principal, "active": s.active,
        "enrolled_at": time_json(s.enrolled_at_ms), "offboarded_at": time_json(s.offboarded_at_ms),
        "country": s.country, "organisation": s.organisation,
        "declaration": s.declaration.as_ref().map(|d| json!({
            "version": d.version, "signed_on": d.signed_on, "document_sha256": d.document_sha256,
        })),
        "last_certified_at": time_json(s.last_certified_at_ms),
        // null when staff.recertify_days is off or the person offboarded.
        "recertify_due_at": time_json(s.recertify_due_at_ms),
    })
}

/// The staff table; with `staff.recertify_days` on (some person has a due
/// date) it shows each person's last certification and when it lapses.
pub fn staff_table(staff: &[pb::Staff]) -> String {
    let recertify = staff.iter().any(|s| s.recertify_due_at_ms != 0);
    let mut headers = vec![
        "NAME",
        "ROLE",
        "STATUS",
        "ENROLLED",
        "DECLARATION",
        "LOCATION",
        "PRINCIPAL",
    ];
    if recertify {
        headers.splice(5..5, ["CERTIFIED", "DUE"]);
    }
    let mut t = Table::new(headers);
    for s in staff {
        let mut row = vec![
            s.name.clone(),
            role(s.role).into(),
            if s.active {
                "active".into()
            } else {
                format!("offboarded {}", time(s.offboarded_at_ms))
            },
            time(s.enrolled_at_ms),
            match &s.declaration {
                Some(d) => format!("{} ({})", d.version, d.signed_on),
                None => "-".into(),
            },
            format!(
                "{} / {}",
                if s.country.is_empty() {
                    "?"
                } else {
                    &s.country
                },
                if s.organisation.is_empty() {
                    "company"
                } else {
                    &s.organisation
                }
            ),
            s.principal.clone(),
        ];
        if recertify {
            row.splice(
                5..5,
                [time(s.last_certified_at_ms), time(s.recertify_due_at_ms)],
            );
        }
        t.row(row);
    }
    t.render()
}

pub fn tenant_json(t: &pb::Tenant) -> Value {
    json!({
        "name": t.name, "approval": tenant_policy(t), "require_ticket": t.require_ticket,
        "require_declaration": t.require_declaration, "created_at": time_json(t.created_at_ms),
        "terminated_at": (t.terminated_at_ms != 0).then(|| time_json(t.terminated_at_ms)),
        "shredded_at": (t.shredded_at_ms != 0).then(|| time_json(t.shredded_at_ms)),
        "allowed_countries": t.allowed_countries, "own_countries": t.own_countries,
        "ticket_pattern": (!t.ticket_pattern.is_empty()).then_some(&t.ticket_pattern),
        "require_reason_code": t.require_reason_code,
        "break_glass_support": t.break_glass_support,
        "access_limit": (t.access_limit_seconds != 0).then(|| json!({
            "limit_seconds": t.access_limit_seconds, "window_seconds": t.access_window_seconds,
        })),
        "objections": t.objections.iter().map(|o| json!({
            "subprocessor": o.subprocessor, "objected_at": time_json(o.objected_at_ms),
        })).collect::<Vec<_>>(),
    })
}

pub fn group_json(g: &pb::ApproverGroup) -> Value {
    json!({"name": g.name, "members": g.members, "set_at": time_json(g.set_at_ms)})
}

pub fn groups_table(groups: &[pb::ApproverGroup]) -> String {
    if groups.is_empty() {
        return "no approver groups (`daypass staff group set NAME --member ...`)\n".into();
    }
    let mut t = Table::new(vec!["NAME", "MEMBERS", "SET"]);
    for g in groups {
        t.row(vec![g.name.clone(), g.members.join(","), time(g.set_at_ms)]);
    }
    t.render()
}

pub fn subprocessor_json(s: &pb::Subprocessor) -> Value {
    json!({
        "name": s.name, "country": s.country, "purpose": s.purpose,
        "announced_at": time_json(s.announced_at_ms),
    })
}

pub fn subprocessors_table(list: &[pb::Subprocessor], notice_days: u32) -> String {
    let mut t = Table::new(vec!["NAME", "COUNTRY", "ANNOUNCED", "PURPOSE"]);
    for s in list {
        t.row(vec![
            s.name.clone(),
            s.country.clone(),
            time(s.announced_at_ms),
            s.purpose.clone(),
        ]);
    }
    format!(
        "{}notice period: {notice_days} days after the announcement\n",
        t.render()
    )
}

/// `acme (approval: auto, ticket optional)`.
pub fn tenant_summary(t: &pb::Tenant) -> String {
    format!(
        "{} (approval: {}, ticket {}{}{}{}{}{})",
        t.name,
        tenant_policy(t),
        if t.require_ticket {
            "required"
        } else {
            "optional"
        },
        if t.ticket_pattern.is_empty() {
            String::new()
        } else {
            format!(" matching {}", t.ticket_pattern)
        },
        if t.require_reason_code {
            ", reason code required"
        } else {
            ""
        },
        if t.require_declaration {
            ", confidentiality declaration required"
        } else {
            ""
        },
        if t.break_glass_support {
            ", support may break glass"
        } else {
            ""
        },
        match access_limit(t) {
            Some(l) => format!(", access at most {l}"),
            None => String::new(),
        }
    )
}

/// `24 h per 7 d`, or `None` without a limit.
pub fn access_limit(t: &pb::Tenant) -> Option<String> {
    (t.access_limit_seconds != 0).then(|| {
        crate::domain::AccessLimit {
            limit_secs: t.access_limit_seconds,
            window_secs: t.access_window_seconds,
        }
        .describe()
    })
}

pub fn tenants_table(tenants: &[pb::Tenant]) -> String {
    let mut t = Table::new(vec![
        "NAME", "APPROVAL", "TICKET", "PATTERN", "CODE", "LIMIT", "CREATED", "ENDED",
    ]);
    for x in tenants {
        t.row(vec![
            x.name.clone(),
            tenant_policy(x),
            if x.require_ticket {
                "required".into()
            } else {
                "optional".into()
            },
            if x.ticket_pattern.is_empty() {
                "-".into()
            } else {
                x.ticket_pattern.clone()
            },
            if x.require_reason_code {
                "required".into()
            } else {
                "optional".into()
            },
            access_limit(x).unwrap_or_else(|| "-".into()),
            time(x.created_at_ms),
            match (x.terminated_at_ms, x.shredded_at_ms) {
                (0, _) => "-".into(),
                (t, 0) => format!("terminated {}", time(t)),
                (_, s) => format!("shredded {}", time(s)),
            },
        ]);
    }
    t.render()
}

/// One log entry on one line, for `audit tail`.
pub fn entry_line(e: &pb::LogEntry) -> String {
    let details: Vec<String> = e
        .details
        .iter()
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect();
    format!(
        "{:>6}  {}  {:<22} {:<16} {:<10} {}",
        e.seq,
        time(e.timestamp_ms),
        e.kind,
        e.actor,
        if e.tenant.is_empty() { "-" } else { &e.tenant },
        details.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(state: pb::GrantState, decided_by: &str) -> pb::Grant {
        pb::Grant {
            id: "g-1".into(),
            tenant: "acme".into(),
            holder: "alice".into(),
            reason: "INC-1".into(),
            state: state as i32,
            requested_at_ms: 1_000,
            activated_at_ms: 2_000,
            expires_at_ms: 9_000_000,
            decided_by: decided_by.into(),
            ..Default::default()
        }
    }

    /// The row of `detail` whose first column is `label`, if any.
    fn row<'a>(detail: &'a str, label: &str) -> Option<&'a str> {
        detail
            .lines()
            .find(|l| l.starts_with(&format!("{label}  ")))
            .map(|l| l[label.len()..].trim())
    }

    #[test]
    fn the_decision_is_labelled_by_what_happened() {
        use pb::GrantState::*;
        for (state, label) in [
            (Active, "approved by"),
            (Expired, "approved by"),
            (Denied, "denied by"),
            (Revoked, "revoked by"),
            (Released, "released by"),
        ] {
            let detail = grant_detail(&grant(state, "staff/bob"));
            assert_eq!(
                row(&detail, label),
                Some("staff/bob"),
                "{state:?}:\n{detail}"
            );
            assert!(
                !detail.contains("decided by"),
                "{state:?} keeps no generic label:\n{detail}"
            );
        }
        // Auto-approved: nobody decided, so no such row at all.
        let detail = grant_detail(&grant(Active, ""));
        assert!(!detail.contains(" by "), "{detail}");
    }

    #[test]
    fn grant_list_shows_when_ended_grants_ended() {
        let mut revoked = grant(pb::GrantState::Revoked, "tenant/acme");
        revoked.ended_at_ms = 3_000_000;
        let live = grant(pb::GrantState::Active, "");
        let table = grants_table(&[revoked, live]);
        let mut lines = table.lines();
        let header = lines.next().unwrap_or_default();
        let ended_col = header.find("ENDED").expect("an ENDED column");
        let revoked_line = lines.next().unwrap_or_default();
        assert_eq!(
            revoked_line[ended_col..].split_whitespace().next(),
            Some(time(3_000_000).as_str()),
            "{table}"
        );
        let live_line = lines.next().unwrap_or_default();
        assert_eq!(
            live_line[ended_col..].split_whitespace().next(),
            Some("-"),
            "{table}"
        );
    }
}
