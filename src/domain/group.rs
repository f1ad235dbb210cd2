//! Approver groups: named groups of staff whose members approve a tenant's
//! grants under the policy "N of group G" (docs/security.md, "Approval
//! policies"). The [`ApproverGroup`] as the log keeps it (`group.set`,
//! `group.removed`), the [`GroupRule`] a tenant's policy and each grant
//! name, and the words of who a request waits for ([`awaits`]).
//!
//! Not here: the registry itself (a fold over the log, `service::groups`),
//! who may change a group or approve (`crate::policy`).

use serde::{Deserialize, Serialize};

use super::{ids::Name, tenant::Approval};
use crate::clock::Timestamp;

/// The most members one group may have.
pub const MAX_MEMBERS: usize = 64;

/// "`threshold` of group `group`": the part of a tenant's policy (and of a
/// grant's, copied at request time) that names its approver group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRule {
    pub group: Name,
    pub threshold: u32,
}

impl GroupRule {
    /// `group:oncall-leads:2`, as the command line and messages write it.
    pub fn policy_name(&self) -> String {
        format!("group:{}:{}", self.group, self.threshold)
    }

    /// `2 of group oncall-leads`.
    pub fn describe(&self) -> String {
        format!("{} of group {}", self.threshold, self.group)
    }

    /// Parses `group:NAME:N` (the command line's form).
    pub fn parse_policy(s: &str) -> Result<GroupRule, String> {
        let usage = "an approver-group policy is written group:NAME:N (e.g. group:oncall-leads:2)";
        let rest = s.strip_prefix("group:").ok_or(usage)?;
        let (name, n) = rest.rsplit_once(':').ok_or(usage)?;
        let group = Name::parse(name).map_err(|e| format!("group: {e}"))?;
        let threshold = n
            .parse::<u32>()
            .map_err(|_| format!("group threshold {n:?} is not a number; {usage}"))?;
        Ok(GroupRule { group, threshold })
    }
}

/// A named group of staff (support or root holders) in the registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApproverGroup {
    pub name: Name,
    /// Sorted, each once.
    pub members: Vec<Name>,
    /// When it was last set.
    pub set_at: Timestamp,
}

impl ApproverGroup {
    pub fn is_member(&self, name: &Name) -> bool {
        self.members.binary_search(name).is_ok()
    }

    /// `alice,bob,carol`: the `members` detail of `group.set`.
    pub fn members_text(&self) -> String {
        join(&self.members)
    }
}

/// The comma-separated names of a `members` detail.
pub fn join(names: &[Name]) -> String {
    names.iter().map(Name::as_str).collect::<Vec<_>>().join(",")
}

/// Parses a group's members: at least one, at most [`MAX_MEMBERS`], each
/// a staff name, none twice. Sorted.
pub fn parse_members<'a>(items: impl IntoIterator<Item = &'a str>) -> Result<Vec<Name>, String> {
    let mut out = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        if i >= MAX_MEMBERS {
            return Err(format!(
                "members: a group has at most {MAX_MEMBERS} members"
            ));
        }
        let n = Name::parse(item).map_err(|e| format!("members: {e}"))?;
        if out.contains(&n) {
            return Err(format!("members: {n} is named twice"));
        }
        out.push(n);
    }
    if out.is_empty() {
        return Err("members: a group needs at least one member (--member NAME)".into());
    }
    out.sort();
    Ok(out)
}

/// Who a new request waits for, for its `grant.requested` entry (and the
/// webhooks that notify approvers): the `awaits` words and the
/// `approvers` actors named (`None` where anyone of a kind may approve).
/// `eligible` are the group's members who may approve this request (active,
/// not the requester).
pub fn awaits(
    approval: Approval,
    tenant: &Name,
    rule: Option<&GroupRule>,
    eligible: &[Name],
) -> (String, Option<String>) {
    let t = format!("tenant/{tenant}");
    match approval {
        Approval::Auto => (String::new(), None),
        Approval::Tenant => (format!("tenant {tenant}"), Some(t)),
        Approval::Peer => ("peer".into(), None),
        Approval::TenantOrPeer => (format!("tenant {tenant} or peer"), Some(t)),
        Approval::TenantAndPeer => (format!("tenant {tenant} and peer"), Some(t)),
        Approval::Group => {
            let (name, n) = rule.map_or(("?".into(), 0), |r| (r.group.to_string(), r.threshold));
            let actors: Vec<String> = eligible.iter().map(|m| format!("staff/{m}")).collect();
            (
                format!("group {name} {n} of {}", eligible.len()),
                Some(actors.join(",")),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_parsed_sorted_and_each_once() {
        let m = parse_members(["carol", "alice", "bob"]).unwrap();
        assert_eq!(join(&m), "alice,bob,carol");
        assert!(
            parse_members(["alice", "alice"])
                .unwrap_err()
                .contains("alice is named twice")
        );
        assert!(parse_members([]).unwrap_err().contains("at least one"));
        assert!(parse_members(["Bob"]).unwrap_err().starts_with("members:"));
        let many: Vec<String> = (0..=MAX_MEMBERS).map(|i| format!("m{i}")).collect();
        assert!(
            parse_members(many.iter().map(String::as_str))
                .unwrap_err()
                .contains("at most 64")
        );
    }

    #[test]
    fn a_group_policy_reads_and_writes_as_group_name_threshold() {
        let r = GroupRule::parse_policy("group:oncall-leads:2").unwrap();
        assert_eq!(r.group.as_str(), "oncall-leads");
        assert_eq!(r.threshold, 2);
        assert_eq!(r.policy_name(), "group:oncall-leads:2");
        assert_eq!(r.describe(), "2 of group oncall-leads");
        assert!(GroupRule::parse_policy("group:oncall").is_err());
        assert!(GroupRule::parse_policy("oncall:2").is_err());
        assert!(
            GroupRule::parse_policy("group:oncall:two")
                .unwrap_err()
                .contains("not a number")
        );
        assert!(GroupRule::parse_policy("group:Bad:2").is_err());
    }

    #[test]
    fn awaits_names_the_approvers() {
        let acme = Name::parse("acme").unwrap();
        let rule = GroupRule::parse_policy("group:leads:2").unwrap();
        let eligible = parse_members(["bob", "carol"]).unwrap();
        assert_eq!(
            awaits(Approval::Group, &acme, Some(&rule), &eligible),
            (
                "group leads 2 of 2".into(),
                Some("staff/bob,staff/carol".into())
            )
        );
        assert_eq!(
            awaits(Approval::Tenant, &acme, None, &[]),
            ("tenant acme".into(), Some("tenant/acme".into()))
        );
        assert_eq!(
            awaits(Approval::Peer, &acme, None, &[]),
            ("peer".into(), None)
        );
    }
}
