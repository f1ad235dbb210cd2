//! The tenant entries' part of the log's semantics: added once, updated
//! (its policy, its justification rules, whether support may open
//! break-glass grants) only while the agreement runs,
//! terminated once and only with no live grant left, shredded once and
//! only after termination; its access limit set only while the agreement
//! runs, to a valid limit (or none).

use super::{LogState, timestamp};
use crate::{
    audit::Entry,
    domain::{
        AccessLimit, Approval, EventKind, Justification, Name, TenantRecord, TicketPattern, detail,
    },
};

impl LogState {
    pub(super) fn tenant_changed(&mut self, kind: EventKind, e: &Entry) -> Result<(), String> {
        let now = e.timestamp;
        match kind {
            EventKind::TenantAdded | EventKind::TenantUpdated => {
                let name = Name::parse(&e.tenant).map_err(|e| format!("tenant: {e}"))?;
                let approval = e
                    .details
                    .get(detail::APPROVAL)
                    .and_then(|a| Approval::parse(a))
                    .ok_or("the approval policy is missing or unknown")?;
                let require_ticket =
                    e.details.get(detail::REQUIRE_TICKET).map(String::as_str) == Some("true");
                let require_declaration = e
                    .details
                    .get(detail::REQUIRE_DECLARATION)
                    .map(String::as_str)
                    == Some("true");
                let approver_group = self.group_rule(e, Some(approval))?;
                // A group policy is checked when it is set (or changed),
                // not again by an update of the tenant's other rules.
                let before = self.tenants.get(&name).map(|(t, _)| &t.approver_group);
                if let Some(r) = approver_group
                    .as_ref()
                    .filter(|r| before != Some(&Some((*r).clone())))
                {
                    self.check_tenant_group(&name, r)?;
                }
                let exists = self.tenants.contains_key(&name);
                if kind == EventKind::TenantAdded && exists {
                    return Err(format!("tenant {name} was already added"));
                }
                if let Some(why) = self.tenants.get(&name).and_then(|(t, _)| t.closed()) {
                    return Err(format!("{why}, so it is not updated"));
                }
                let (created_at, justification, break_glass_support, access_limit) = match self
                    .tenants
                    .get(&name)
                {
                    Some((t, _)) => (
                        t.created_at,
                        t.justification.clone(),
                        t.break_glass_support,
                        t.access_limit,
                    ),
                    None if kind == EventKind::TenantAdded => {
                        (now, Justification::default(), false, None)
                    }
                    None => return Err(format!("tenant {name} is updated but was never added")),
                };
                let rec = TenantRecord {
                    name: name.clone(),
                    approval,
                    require_ticket,
                    created_at,
                    require_declaration,
                    terminated_at: None,
                    shredded_at: None,
                    justification,
                    break_glass_support,
                    approver_group,
                    access_limit,
                };
                self.tenants.insert(name, (rec, e.seq));
            }
            EventKind::TenantBreakGlassSet => {
                let allow = match e.details.get(detail::ALLOW_SUPPORT).map(String::as_str) {
                    Some("true") => true,
                    Some("false") => false,
                    _ => return Err("allow_support is missing or not true/false".into()),
                };
                let (t, seq) = self.tenant_entry(e)?;
                if let Some(why) = t.closed() {
                    return Err(format!("{why}, so its break-glass setting is not changed"));
                }
                t.break_glass_support = allow;
                *seq = e.seq;
            }
            EventKind::TenantJustificationSet => {
                let pattern = e
                    .details
                    .get(detail::TICKET_PATTERN)
                    .ok_or("ticket_pattern is missing")?;
                let ticket_pattern = TicketPattern::parse(pattern)?;
                let require_reason_code = match e
                    .details
                    .get(detail::REQUIRE_REASON_CODE)
                    .map(String::as_str)
                {
                    Some("true") => true,
                    Some("false") => false,
                    _ => return Err("require_reason_code is missing or not true/false".into()),
                };
                let (t, seq) = self.tenant_entry(e)?;
                if let Some(why) = t.closed() {
                    return Err(format!("{why}, so its rules are not changed"));
                }
                t.justification = Justification {
                    require_reason_code,
                    ticket_pattern,
                };
                *seq = e.seq;
            }
            EventKind::TenantAccessLimitSet => {
                let secs = |key: &str| {
                    e.details
                        .get(key)
                        .and_then(|v| v.parse::<i64>().ok())
                        .ok_or_else(|| format!("{key} is missing or not a number"))
                };
                let limit =
                    AccessLimit::new(secs(detail::LIMIT_SECS)?, secs(detail::WINDOW_SECS)?)?;
                let (t, seq) = self.tenant_entry(e)?;
                if let Some(why) = t.closed() {
                    return Err(format!("{why}, so its access limit is not changed"));
                }
                t.access_limit = limit;
                *seq = e.seq;
            }
            EventKind::TenantTerminated => {
                if let Some(g) = self
                    .grants
                    .values()
                    .find(|g| g.grant.tenant.as_str() == e.tenant && g.grant.state.is_live())
                {
                    return Err(format!(
                        "tenant {} is terminated while grant {} is still {}",
                        e.tenant,
                        g.grant.id,
                        g.grant.state.as_str()
                    ));
                }
                let (t, seq) = self.tenant_entry(e)?;
                if t.terminated_at.is_some() {
                    return Err(format!("tenant {} was already terminated", t.name));
                }
                t.terminated_at = Some(now);
                *seq = e.seq;
            }
            EventKind::TenantShredded => {
                let (t, seq) = self.tenant_entry(e)?;
                if t.terminated_at.is_none() {
                    return Err(format!(
                        "tenant {} is shredded but was not terminated",
                        t.name
                    ));
                }
                if t.shredded_at.is_some() {
                    return Err(format!("tenant {} was already shredded", t.name));
                }
                t.shredded_at = Some(timestamp(e, detail::SHREDDED_AT)?);
                *seq = e.seq;
            }
            _ => {}
        }
        Ok(())
    }

    /// The record of the tenant an entry is about.
    fn tenant_entry(&mut self, e: &Entry) -> Result<(&mut TenantRecord, &mut u64), String> {
        let name = Name::parse(&e.tenant).map_err(|e| format!("tenant: {e}"))?;
        match self.tenants.get_mut(&name) {
            Some((t, seq)) => Ok((t, seq)),
            None => Err(format!("tenant {name} was never added")),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::{audit::state::Rules, clock::Timestamp, domain::GrantId};

    fn entry(seq: u64, actor: &str, tenant: &str, kind: &str, details: &[(&str, &str)]) -> Entry {
        Entry {
            seq,
            timestamp: Timestamp(1_000 + seq as i64),
            actor: actor.into(),
            tenant: tenant.into(),
            kind: kind.into(),
            details: details
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            sealed: None,
            prev_hash: [0; 32],
        }
    }

    /// A log up to a tenant whose `tenant.justification_set` has `rules`.
    fn state_with(rules: &[(&str, &str)]) -> LogState {
        let mut s = LogState::new(Rules::default());
        let staff = [("name", "carol"), ("role", "support")];
        s.apply(&entry(0, "staff/ada", "", "staff.enrolled", &staff))
            .unwrap();
        let added = [
            ("approval", "auto"),
            ("require_ticket", "false"),
            ("require_declaration", "false"),
        ];
        s.apply(&entry(1, "staff/ada", "acme", "tenant.added", &added))
            .unwrap();
        s.apply(&entry(
            2,
            "staff/ada",
            "acme",
            "tenant.justification_set",
            rules,
        ))
        .unwrap();
        s
    }

    fn request(code: Option<&str>) -> Entry {
        let id = GrantId::random().to_string();
        let mut d = vec![
            ("grant", id.as_str()),
            ("holder", "carol"),
            ("duration_secs", "3600"),
            ("approval", "auto"),
        ];
        if let Some(c) = code {
            d.push(("reason_code", c));
        }
        entry(3, "staff/carol", "acme", "grant.requested", &d)
    }

    #[test]
    fn a_request_without_the_code_its_tenant_requires_is_named() {
        let rules = [
            ("ticket_pattern", "^INC-[0-9]+$"),
            ("require_reason_code", "true"),
        ];
        let mut s = state_with(&rules);
        let why = s.apply(&request(None)).unwrap_err();
        assert_eq!(why.seq, 3);
        assert!(
            why.why
                .contains("without a reason code, which tenant acme requires"),
            "{why:?}"
        );
        s.apply(&request(Some("incident"))).unwrap();
        let t = &s.tenants[&Name::parse("acme").unwrap()].0;
        assert_eq!(
            t.justification.ticket_pattern.as_ref().unwrap().as_str(),
            "^INC-[0-9]+$"
        );
        // Not required: a request without one is fine; an unknown one never is.
        let mut s = state_with(&[("ticket_pattern", ""), ("require_reason_code", "false")]);
        assert!(s.apply(&request(Some("whim"))).is_err());
        s.apply(&request(None)).unwrap();
    }

    #[test]
    fn justification_entries_must_say_both_rules_validly() {
        let mut s = state_with(&[("ticket_pattern", ""), ("require_reason_code", "false")]);
        for bad in [
            vec![("require_reason_code", "true")],
            vec![("ticket_pattern", "("), ("require_reason_code", "true")],
            vec![("ticket_pattern", ""), ("require_reason_code", "yes")],
        ] {
            let e = entry(3, "staff/ada", "acme", "tenant.justification_set", &bad);
            assert!(s.apply(&e).is_err(), "{bad:?}");
        }
        // An update of the policy keeps the rules.
        let mut s = state_with(&[("ticket_pattern", "^X$"), ("require_reason_code", "true")]);
        let updated = [
            ("approval", "approval"),
            ("require_ticket", "true"),
            ("require_declaration", "false"),
        ];
        s.apply(&entry(3, "staff/ada", "acme", "tenant.updated", &updated))
            .unwrap();
        let t = &s.tenants[&Name::parse("acme").unwrap()].0;
        assert!(t.justification.require_reason_code);
        assert_eq!(
            t.justification.ticket_pattern.as_ref().unwrap().as_str(),
            "^X$"
        );
    }

    #[test]
    fn access_limit_entries_must_name_a_valid_limit_and_are_kept() {
        let mut s = state_with(&[("ticket_pattern", ""), ("require_reason_code", "false")]);
        let set = |seq, l: &str, w: &str| {
            entry(
                seq,
                "staff/ada",
                "acme",
                "tenant.access_limit_set",
                &[("limit_secs", l), ("window_secs", w)],
            )
        };
        for (l, w) in [
            ("7200", "3600"),
            ("3600", "60"),
            ("x", "3600"),
            ("0", "3600"),
        ] {
            assert!(s.apply(&set(3, l, w)).is_err(), "{l} {w}");
        }
        assert!(
            s.apply(&entry(
                3,
                "staff/ada",
                "acme",
                "tenant.access_limit_set",
                &[]
            ))
            .is_err()
        );
        s.apply(&set(3, "36000", "172800")).unwrap();
        let limit = |s: &LogState| s.tenants[&Name::parse("acme").unwrap()].0.access_limit;
        assert_eq!(
            limit(&s),
            Some(AccessLimit {
                limit_secs: 36_000,
                window_secs: 172_800
            })
        );
        // An update of the policy keeps it; 0 and 0 clear it.
        let updated = [
            ("approval", "auto"),
            ("require_ticket", "false"),
            ("require_declaration", "false"),
        ];
        s.apply(&entry(4, "staff/ada", "acme", "tenant.updated", &updated))
            .unwrap();
        assert!(limit(&s).is_some());
        s.apply(&set(5, "0", "0")).unwrap();
        assert_eq!(limit(&s), None);
    }
}
