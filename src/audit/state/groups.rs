//! The approver groups' part of the log's semantics: a group is set by an
//! active admin, with members who are enrolled, active and may hold grants
//! (support, root), never below a tenant's threshold; removed only once it
//! exists and no running tenant's policy names it; a tenant's group policy
//! names an existing group with a threshold from 1 to its active members;
//! and under a group policy only the group's members (at the decision)
//! approve or deny.

use super::LogState;
use crate::{
    audit::Entry,
    domain::{Approval, ApproverGroup, GroupRule, Name, Role, detail, group::parse_members},
};

impl LogState {
    pub(super) fn group_set(&mut self, e: &Entry) -> Result<(), String> {
        self.by_admin(e, "set")?;
        let name = self.name(e, detail::GROUP)?;
        let members = parse_members(
            e.details
                .get(detail::MEMBERS)
                .map(String::as_str)
                .unwrap_or_default()
                .split(','),
        )?;
        for m in &members {
            match self.staff.get(m) {
                Some((r, _)) if r.is_active() && r.role.may_hold_grants() => {}
                Some((r, _)) if !r.is_active() => {
                    return Err(format!("group {name} names {m}, who was offboarded"));
                }
                Some((r, _)) => {
                    return Err(format!(
                        "group {name} names {m}, whose role ({}) may not hold grants",
                        r.role
                    ));
                }
                None => return Err(format!("group {name} names {m}, who is not enrolled")),
            }
        }
        if let Some(t) = self.tenants.values().find(|(t, _)| {
            t.terminated_at.is_none()
                && t.approval == Approval::Group
                && t.approver_group
                    .as_ref()
                    .is_some_and(|r| r.group == name && r.threshold as usize > members.len())
        }) {
            return Err(format!(
                "group {name} is set to {} members, below tenant {}'s threshold",
                members.len(),
                t.0.name
            ));
        }
        self.groups.insert(
            name.clone(),
            (
                ApproverGroup {
                    name,
                    members,
                    set_at: e.timestamp,
                },
                e.seq,
            ),
        );
        Ok(())
    }

    pub(super) fn group_removed(&mut self, e: &Entry) -> Result<(), String> {
        self.by_admin(e, "removed")?;
        let name = self.name(e, detail::GROUP)?;
        if !self.groups.contains_key(&name) {
            return Err(format!("group {name} is removed but it does not exist"));
        }
        if let Some((t, _)) = self.tenants.values().find(|(t, _)| {
            t.terminated_at.is_none()
                && t.approval == Approval::Group
                && t.approver_group.as_ref().is_some_and(|r| r.group == name)
        }) {
            return Err(format!(
                "group {name} is removed while tenant {}'s policy names it",
                t.name
            ));
        }
        self.groups.remove(&name);
        Ok(())
    }

    /// The group and threshold a `tenant.*` or `grant.requested` entry
    /// names under `approval` (none for other policies).
    pub(super) fn group_rule(
        &self,
        e: &Entry,
        approval: Option<Approval>,
    ) -> Result<Option<GroupRule>, String> {
        if approval != Some(Approval::Group) {
            return Ok(None);
        }
        let group = self.name(e, detail::GROUP)?;
        let threshold = e
            .details
            .get(detail::THRESHOLD)
            .and_then(|t| t.parse::<u32>().ok())
            .ok_or("the group policy's threshold is missing or not a number")?;
        Ok(Some(GroupRule { group, threshold }))
    }

    /// A tenant's group policy as it is set: an existing group, a
    /// threshold from 1 to its active members.
    pub(super) fn check_tenant_group(&self, tenant: &Name, rule: &GroupRule) -> Result<(), String> {
        let Some((g, _)) = self.groups.get(&rule.group) else {
            return Err(format!(
                "tenant {tenant}'s policy names group {}, which does not exist",
                rule.group
            ));
        };
        let active = self.active_members(g).len();
        if rule.threshold == 0 || rule.threshold as usize > active {
            return Err(format!(
                "tenant {tenant}'s policy needs {} of group {}, which has {active} active members",
                rule.threshold, rule.group
            ));
        }
        Ok(())
    }

    /// Under a group policy, a decision by someone outside the group (as
    /// it is at the decision) does not count.
    pub(super) fn check_group_decision(
        &self,
        rule: Option<&GroupRule>,
        actor: &str,
    ) -> Result<(), String> {
        let Some(rule) = rule else {
            return Err("a group policy without its group".into());
        };
        let member = actor
            .strip_prefix("staff/")
            .and_then(|n| Name::parse(n).ok())
            .is_some_and(|n| {
                self.groups
                    .get(&rule.group)
                    .is_some_and(|(g, _)| g.is_member(&n))
            });
        if member {
            Ok(())
        } else {
            Err(format!("{actor} is not a member of group {}", rule.group))
        }
    }

    fn active_members(&self, g: &ApproverGroup) -> Vec<Name> {
        g.members
            .iter()
            .filter(|m| self.staff.get(*m).is_some_and(|(r, _)| r.is_active()))
            .cloned()
            .collect()
    }

    fn by_admin(&self, e: &Entry, what: &str) -> Result<(), String> {
        let admin = e
            .actor
            .strip_prefix("staff/")
            .and_then(|n| Name::parse(n).ok())
            .and_then(|n| self.staff.get(&n))
            .is_some_and(|(r, _)| r.is_active() && r.role == Role::Admin);
        if admin {
            Ok(())
        } else {
            Err(format!(
                "a group is {what} by {}, who is not an enrolled admin",
                e.actor
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{audit::entry::GENESIS_PREV_HASH, clock::Timestamp, domain::EventKind};

    fn entry(seq: u64, actor: &str, tenant: &str, kind: EventKind, d: &[(&str, &str)]) -> Entry {
        Entry {
            seq,
            timestamp: Timestamp(1_000 + seq as i64),
            actor: actor.into(),
            tenant: tenant.into(),
            kind: kind.as_str().to_owned(),
            details: d
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            sealed: None,
            prev_hash: GENESIS_PREV_HASH,
        }
    }

    fn set(seq: u64, actor: &str, members: &str) -> Entry {
        entry(
            seq,
            actor,
            "",
            EventKind::GroupSet,
            &[(detail::GROUP, "leads"), (detail::MEMBERS, members)],
        )
    }

    fn tenant(seq: u64, kind: EventKind, threshold: &str) -> Entry {
        entry(
            seq,
            "staff/ada",
            "acme",
            kind,
            &[
                (detail::APPROVAL, "group"),
                (detail::GROUP, "leads"),
                (detail::THRESHOLD, threshold),
                (detail::REQUIRE_TICKET, "false"),
            ],
        )
    }

    /// ada (admin), alice and bob (support), eve (auditor), carl
    /// (support, offboarded).
    fn state() -> LogState {
        let mut s = LogState::default();
        let enrol = |seq, kind, name, role| {
            entry(
                seq,
                "staff/ada",
                "",
                kind,
                &[(detail::NAME, name), (detail::ROLE, role)],
            )
        };
        for e in [
            enrol(0, EventKind::StaffBootstrapped, "ada", "admin"),
            enrol(1, EventKind::StaffEnrolled, "alice", "support"),
            enrol(2, EventKind::StaffEnrolled, "bob", "support"),
            enrol(3, EventKind::StaffEnrolled, "eve", "auditor"),
            enrol(4, EventKind::StaffEnrolled, "carl", "support"),
            entry(
                5,
                "staff/ada",
                "",
                EventKind::StaffOffboarded,
                &[(detail::NAME, "carl")],
            ),
        ] {
            s.apply(&e).expect("a well-formed log");
        }
        s
    }

    #[test]
    fn a_group_and_a_policy_naming_it_follow_the_rules() {
        let mut s = state();
        s.apply(&set(9, "staff/ada", "alice,bob")).expect("set");
        s.apply(&tenant(10, EventKind::TenantAdded, "2"))
            .expect("policy");
        let name = Name::parse("acme").unwrap();
        assert_eq!(
            s.tenants[&name].0.approver_group,
            Some(GroupRule {
                group: Name::parse("leads").unwrap(),
                threshold: 2
            })
        );
        for (e, why) in [
            (
                set(11, "staff/alice", "alice,bob"),
                "who is not an enrolled admin",
            ),
            (
                set(11, "staff/ada", "alice,carl"),
                "carl, who was offboarded",
            ),
            (
                set(11, "staff/ada", "alice,eve"),
                "eve, whose role (auditor)",
            ),
            (
                set(11, "staff/ada", "alice,nobody"),
                "nobody, who is not enrolled",
            ),
            (set(11, "staff/ada", "alice,alice"), "alice is named twice"),
            (
                set(11, "staff/ada", "alice"),
                "below tenant acme's threshold",
            ),
            (
                tenant(11, EventKind::TenantUpdated, "3"),
                "needs 3 of group leads, which has 2 active members",
            ),
            (
                tenant(11, EventKind::TenantUpdated, "0"),
                "needs 0 of group leads",
            ),
            (
                entry(
                    11,
                    "staff/ada",
                    "",
                    EventKind::GroupRemoved,
                    &[(detail::GROUP, "leads")],
                ),
                "removed while tenant acme's policy names it",
            ),
            (
                entry(
                    11,
                    "staff/ada",
                    "",
                    EventKind::GroupRemoved,
                    &[(detail::GROUP, "other")],
                ),
                "group other is removed but it does not exist",
            ),
        ] {
            let c = s.apply(&e).expect_err(why);
            assert!(c.why.contains(why), "{} should say {why:?}", c.why);
            assert_eq!(c.seq, 11);
        }
        // An update of the tenant's other rules does not judge the group
        // again; the same policy with more members then stays valid.
        s.apply(&set(11, "staff/ada", "alice,bob"))
            .expect("same group");
        let mut other = tenant(12, EventKind::TenantUpdated, "2");
        other
            .details
            .insert(detail::REQUIRE_TICKET.into(), "true".into());
        s.apply(&other).expect("other rules");
    }
}
