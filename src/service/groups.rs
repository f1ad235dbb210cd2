//! Approver groups (docs/security.md, "Approval policies"): the registry
//! ([`Groups`], a fold over the `group.set` and `group.removed` entries,
//! rebuilt at start-up and advanced by the commits that change it), the
//! admin use cases that change it, and the checks a tenant's group policy
//! must pass when it is set ([`Broker::check_group_rule`]).
//!
//! Membership is judged at each decision: only the group's members at
//! that moment may approve or deny a request under its policy. An approval
//! already given stays counted when its approver later leaves the group.
//! Offboarded members stay listed but no longer count (they cannot call).
//!
//! Not here: who may decide a grant ([`crate::policy::may_decide_under`]),
//! the log's rules for these entries (`audit::state`).

use std::collections::BTreeMap;

use super::{Broker, BrokerError, Receipted, Result, receipt};
use crate::{
    audit::Entry,
    clock::Timestamp,
    domain::{
        Approval, ApproverGroup, Draft, EventKind, GroupRule, Name, TenantRecord, detail,
        group::{join, parse_members},
    },
    ledger::{Ledger, LedgerError, View},
    policy::Caller,
    service::commands::{RemoveApproverGroup, SetApproverGroup},
};

/// The approver groups as the log says they are.
#[derive(Clone, Debug, Default)]
pub struct Groups(BTreeMap<Name, ApproverGroup>);

impl Groups {
    /// Rebuilds the registry from the whole log (at start-up).
    pub fn from_log(ledger: &Ledger) -> std::result::Result<Groups, LedgerError> {
        let mut g = Groups::default();
        let end = ledger.head().next_seq;
        for item in ledger.entries_from(0).take(end as usize) {
            g.apply_entry(&item?.entry);
        }
        Ok(g)
    }

    /// One entry's change. Entries that do not parse change nothing (the
    /// server wrote them; a malformed one is `audit check`'s business).
    pub fn apply_entry(&mut self, e: &Entry) {
        let get = |k: &str| e.details.get(k).map(String::as_str).unwrap_or_default();
        let Ok(name) = Name::parse(get(detail::GROUP)) else {
            return;
        };
        match EventKind::parse(&e.kind) {
            Some(EventKind::GroupSet) => {
                if let Ok(members) = parse_members(get(detail::MEMBERS).split(',')) {
                    self.set(name, members, e.timestamp);
                }
            }
            Some(EventKind::GroupRemoved) => {
                self.0.remove(&name);
            }
            _ => {}
        }
    }

    fn set(&mut self, name: Name, members: Vec<Name>, at: Timestamp) {
        self.0.insert(
            name.clone(),
            ApproverGroup {
                name,
                members,
                set_at: at,
            },
        );
    }

    pub fn get(&self, name: &Name) -> Option<&ApproverGroup> {
        self.0.get(name)
    }

    pub fn all(&self) -> Vec<ApproverGroup> {
        self.0.values().cloned().collect()
    }
}

/// The registry and its writers' lock, held by the [`Broker`].
#[derive(Debug, Default)]
pub struct GroupBook {
    groups: parking_lot::RwLock<Groups>,
    /// Requests, decisions and tenant policy changes read the registry
    /// under `read`; a change to it holds `write` from its decision until
    /// the registry is advanced, so nothing is decided on a registry about
    /// to change.
    writers: tokio::sync::RwLock<()>,
}

impl GroupBook {
    /// Held by whatever decides on the registry.
    pub async fn reading(&self) -> tokio::sync::RwLockReadGuard<'_, ()> {
        self.writers.read().await
    }

    /// The group a grant's policy names, as the registry has it now.
    pub fn of(&self, rule: Option<&GroupRule>) -> Option<ApproverGroup> {
        rule.and_then(|r| self.groups.read().get(&r.group).cloned())
    }
}

impl Broker {
    /// Rebuilds the approver groups from the log (at start-up).
    pub async fn rebuild_groups(&self) -> std::result::Result<(), LedgerError> {
        let ledger = self.ledger.clone();
        let g = tokio::task::spawn_blocking(move || Groups::from_log(&ledger))
            .await
            .map_err(|e| {
                LedgerError::Unavailable(format!("the approver groups were not rebuilt: {e}"))
            })??;
        *self.groups.groups.write() = g;
        Ok(())
    }

    pub fn groups(&self) -> &GroupBook {
        &self.groups
    }

    /// Creates or replaces a group (logged as `group.set` with its
    /// members). Every member is enrolled, active, and holds a role that
    /// may hold grants (support, root); no tenant's threshold may exceed
    /// the new size.
    pub async fn set_approver_group(
        &self,
        caller: &Caller,
        cmd: SetApproverGroup,
    ) -> Result<Receipted<ApproverGroup>> {
        let SetApproverGroup { name, members } = cmd;
        let _one = self.groups.writers.write().await;
        let tenants = self.ledger.all_tenants()?;
        let (g, c) = self
            .ledger
            .commit(&*self.clock, |s, b, now| {
                for m in &members {
                    match s.staff(m)? {
                        None => {
                            return Err(BrokerError::NotFound(format!(
                                "{m} is not enrolled; a group's members are enrolled staff \
                                 (`daypass staff list`)"
                            )));
                        }
                        Some(r) if !r.is_active() => {
                            return Err(BrokerError::FailedPrecondition(format!(
                                "{m} was offboarded and cannot approve; leave them out"
                            )));
                        }
                        Some(r) if !r.role.may_hold_grants() => {
                            return Err(BrokerError::FailedPrecondition(format!(
                                "{m} is {}; only support and root holders are members of \
                                 approver groups",
                                r.role
                            )));
                        }
                        Some(_) => {}
                    }
                }
                let short: Vec<String> = tenants
                    .iter()
                    .filter(|t| t.terminated_at.is_none())
                    .filter_map(|t| t.approver_group.as_ref().map(|r| (t, r)))
                    .filter(|(t, r)| {
                        t.approval == Approval::Group
                            && r.group == name
                            && r.threshold as usize > members.len()
                    })
                    .map(|(t, r)| format!("{} ({})", t.name, r.policy_name()))
                    .collect();
                if !short.is_empty() {
                    return Err(BrokerError::FailedPrecondition(format!(
                        "group {name} would have {} members, fewer than the threshold of tenant \
                         {}; lower their thresholds first (`daypass tenant update`)",
                        members.len(),
                        short.join(", ")
                    )));
                }
                b.log(
                    Draft::new(caller.actor(), "", EventKind::GroupSet)
                        .with(detail::GROUP, &name)
                        .with(detail::MEMBERS, join(&members)),
                );
                Ok(ApproverGroup {
                    name: name.clone(),
                    members: members.clone(),
                    set_at: now,
                })
            })
            .await?;
        self.groups
            .groups
            .write()
            .set(g.name.clone(), g.members.clone(), g.set_at);
        Ok((g, receipt(c)?))
    }

    /// Removes a group no tenant's policy names (logged as
    /// `group.removed`). Requests already waiting for it can then no
    /// longer be approved; they expire.
    pub async fn remove_approver_group(
        &self,
        caller: &Caller,
        cmd: RemoveApproverGroup,
    ) -> Result<Receipted<Name>> {
        let RemoveApproverGroup { name } = cmd;
        let _one = self.groups.writers.write().await;
        if self.groups.groups.read().get(&name).is_none() {
            return Err(BrokerError::NotFound(format!(
                "approver group {name} does not exist; `daypass staff group list` shows them"
            )));
        }
        let naming: Vec<String> = self
            .ledger
            .all_tenants()?
            .iter()
            .filter(|t| t.terminated_at.is_none() && names_group(t, &name))
            .map(|t| t.name.to_string())
            .collect();
        if !naming.is_empty() {
            return Err(BrokerError::FailedPrecondition(format!(
                "approver group {name} is named by the policy of tenant {}; give them another \
                 policy first (`daypass tenant update NAME --approval ...`)",
                naming.join(", ")
            )));
        }
        let (_, c) = self
            .ledger
            .commit(&*self.clock, |_, b, _| {
                b.log(
                    Draft::new(caller.actor(), "", EventKind::GroupRemoved)
                        .with(detail::GROUP, &name),
                );
                Ok::<_, BrokerError>(())
            })
            .await?;
        self.groups.groups.write().0.remove(&name);
        Ok((name, receipt(c)?))
    }

    pub fn list_approver_groups(&self) -> Vec<ApproverGroup> {
        self.groups.groups.read().all()
    }

    /// A tenant's group policy as it is set: the group exists, and the
    /// threshold is at least 1 and at most its active members. Called
    /// under [`GroupBook::reading`].
    pub(super) fn check_group_rule(
        &self,
        s: &View<'_>,
        approval: Approval,
        rule: Option<&GroupRule>,
    ) -> Result<()> {
        let rule = match (approval, rule) {
            (Approval::Group, Some(r)) => r,
            (Approval::Group, None) => {
                return Err(BrokerError::InvalidArgument(
                    "approval policy group needs approver_group and approval_threshold \
                     (group:NAME:N on the command line)"
                        .into(),
                ));
            }
            (_, None) => return Ok(()),
            (a, Some(_)) => {
                return Err(BrokerError::InvalidArgument(format!(
                    "approver_group is only for approval policy group, not {}",
                    a.as_str()
                )));
            }
        };
        let Some(g) = self.groups.groups.read().get(&rule.group).cloned() else {
            return Err(BrokerError::FailedPrecondition(format!(
                "approver group {} does not exist; create it first (`daypass staff group set {} \
                 --member NAME ...`)",
                rule.group, rule.group
            )));
        };
        let active = self.eligible(s, &g, None)?.len();
        if rule.threshold == 0 || rule.threshold as usize > active {
            return Err(BrokerError::InvalidArgument(format!(
                "approval threshold {} for group {} must be between 1 and its {active} active \
                 members",
                rule.threshold, rule.group
            )));
        }
        Ok(())
    }

    /// The group's members who may approve a request of `holder` now:
    /// active, and not the requester.
    pub(super) fn eligible(
        &self,
        s: &View<'_>,
        g: &ApproverGroup,
        holder: Option<&Name>,
    ) -> Result<Vec<Name>> {
        let mut out = Vec::new();
        for m in &g.members {
            if Some(m) == holder {
                continue;
            }
            if s.staff(m)?.is_some_and(|r| r.is_active()) {
                out.push(m.clone());
            }
        }
        Ok(out)
    }
}

fn names_group(t: &TenantRecord, group: &Name) -> bool {
    t.approval == Approval::Group && t.approver_group.as_ref().is_some_and(|r| r.group == *group)
}
