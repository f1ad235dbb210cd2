//! Tenants: a customer environment's [`TenantRecord`] and its
//! [`Approval`] policy.

use serde::{Deserialize, Serialize};

use super::{access_limit::AccessLimit, group::GroupRule, ids::Name, justification::Justification};
use crate::clock::Timestamp;

/// How a tenant's grants become active: who must approve a request
/// (docs/security.md, "Approval policies"). The requester never approves
/// their own; a denial by anyone who may approve ends the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Approval {
    /// Active at once.
    #[serde(rename = "auto")]
    Auto,
    /// One approval, by the tenant or by a staff member other than the
    /// requester. Written `approval` before the other policies existed:
    /// that name still reads as this one.
    #[serde(rename = "tenant-or-peer", alias = "approval")]
    TenantOrPeer,
    /// Only the tenant's own principal approves (the Customer Lockbox
    /// model).
    #[serde(rename = "tenant")]
    Tenant,
    /// A staff member other than the requester approves (four eyes).
    #[serde(rename = "peer")]
    Peer,
    /// Both: the tenant and a staff member other than the requester.
    #[serde(rename = "tenant+peer")]
    TenantAndPeer,
    /// A threshold of an approver group's members, never the requester
    /// ("2 of group oncall-leads"): the group and the threshold are the
    /// tenant's (and the grant's) [`GroupRule`].
    #[serde(rename = "group")]
    Group,
}

/// Who approved a grant, and when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantApproval {
    /// The approver as an actor (`tenant/acme`, `staff/bob`).
    pub by: String,
    pub at: Timestamp,
}

impl Approval {
    /// Every policy, in the order they are documented.
    pub const ALL: [Approval; 6] = [
        Approval::Auto,
        Approval::TenantOrPeer,
        Approval::Tenant,
        Approval::Peer,
        Approval::TenantAndPeer,
        Approval::Group,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Approval::Auto => "auto",
            Approval::TenantOrPeer => "tenant-or-peer",
            Approval::Tenant => "tenant",
            Approval::Peer => "peer",
            Approval::TenantAndPeer => "tenant+peer",
            Approval::Group => "group",
        }
    }

    /// The policy a log entry names (`approval` is the old name of
    /// `tenant-or-peer`).
    pub fn parse(s: &str) -> Option<Approval> {
        match s {
            "approval" => Some(Approval::TenantOrPeer),
            s => Approval::ALL.into_iter().find(|a| a.as_str() == s),
        }
    }

    /// Who approves, in words.
    pub fn describe(self) -> &'static str {
        match self {
            Approval::Auto => "nobody: grants are active at once",
            Approval::TenantOrPeer => "the tenant or a staff member other than the requester",
            Approval::Tenant => "the tenant only",
            Approval::Peer => "a staff member other than the requester",
            Approval::TenantAndPeer => {
                "both the tenant and a staff member other than the requester"
            }
            Approval::Group => "members of the tenant's approver group other than the requester",
        }
    }

    /// May an approval by `by` (an actor) count for a grant of `tenant`
    /// under this policy? The requester is refused elsewhere; under
    /// [`Approval::Group`] so is a staff member outside the group
    /// ([`crate::policy::may_decide_under`]).
    pub fn counts(self, by: &str, tenant: &str) -> bool {
        let is_tenant = by.strip_prefix("tenant/") == Some(tenant);
        let is_staff = by.starts_with("staff/");
        match self {
            Approval::Auto => false,
            Approval::Tenant => is_tenant,
            Approval::Peer | Approval::Group => is_staff,
            Approval::TenantOrPeer | Approval::TenantAndPeer => is_tenant || is_staff,
        }
    }

    /// Do `approvals` make a request under this policy active? Never for
    /// [`Approval::Group`], whose threshold is its [`GroupRule`]'s: ask
    /// [`crate::domain::Grant::approvals_satisfy`].
    pub fn satisfied(self, approvals: &[GrantApproval]) -> bool {
        let tenant = approvals.iter().any(|a| a.by.starts_with("tenant/"));
        let staff = approvals.iter().any(|a| a.by.starts_with("staff/"));
        match self {
            Approval::Auto => true,
            Approval::TenantOrPeer | Approval::Tenant | Approval::Peer => !approvals.is_empty(),
            Approval::TenantAndPeer => tenant && staff,
            Approval::Group => false,
        }
    }

    /// Who must still approve, in words, after `approvals`.
    pub fn waiting_for(self, approvals: &[GrantApproval]) -> &'static str {
        let tenant = approvals.iter().any(|a| a.by.starts_with("tenant/"));
        match self {
            Approval::TenantAndPeer if tenant => "a staff member other than the requester",
            Approval::TenantAndPeer if !approvals.is_empty() => "the tenant",
            a => a.describe(),
        }
    }
}

/// A policy's name with its group: `group:oncall-leads:2` for a group
/// policy, else [`Approval::as_str`].
pub fn policy_name(a: Approval, rule: Option<&GroupRule>) -> String {
    match (a, rule) {
        (Approval::Group, Some(r)) => r.policy_name(),
        (a, _) => a.as_str().to_owned(),
    }
}

/// A tenant in the registry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantRecord {
    pub name: Name,
    pub approval: Approval,
    pub require_ticket: bool,
    pub created_at: Timestamp,
    /// Grants for this tenant need a confidentiality declaration on the
    /// holder's record (absent in records written before it existed).
    #[serde(default)]
    pub require_declaration: bool,
    /// When the agreement ended (`tenant terminate`): no grants from then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminated_at: Option<Timestamp>,
    /// When its key was destroyed, and with it its personal details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shredded_at: Option<Timestamp>,
    /// Its rules for a request's reason code and ticket
    /// (`tenant.justification_set`; default in older records).
    #[serde(default, skip_serializing_if = "is_default")]
    pub justification: Justification,
    /// Support staff (not only root holders) may open break-glass grants
    /// for it (`tenant.break_glass_set`; off in older records).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub break_glass_support: bool,
    /// Under [`Approval::Group`]: which group, and how many of its members.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approver_group: Option<GroupRule>,
    /// Its cumulative access limit (`tenant.access_limit_set`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_limit: Option<AccessLimit>,
}

fn is_default(j: &Justification) -> bool {
    *j == Justification::default()
}

impl TenantRecord {
    /// Its policy's name: `tenant+peer`, `group:oncall-leads:2`.
    pub fn policy_name(&self) -> String {
        policy_name(self.approval, self.approver_group.as_ref())
    }

    /// Why no grant may be requested or approved for this tenant, if so.
    pub fn closed(&self) -> Option<String> {
        self.terminated_at.map(|t| {
            format!(
                "tenant {} was terminated on {}: it takes no grants any more",
                self.name,
                t.to_rfc3339()
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn by(actors: &[&str]) -> Vec<GrantApproval> {
        actors
            .iter()
            .map(|a| GrantApproval {
                by: (*a).to_owned(),
                at: Timestamp(0),
            })
            .collect()
    }

    #[test]
    fn the_old_name_reads_as_tenant_or_peer_and_every_name_round_trips() {
        assert_eq!(Approval::parse("approval"), Some(Approval::TenantOrPeer));
        let stored: Approval = serde_json::from_str("\"approval\"").unwrap();
        assert_eq!(stored, Approval::TenantOrPeer);
        for a in Approval::ALL {
            assert_eq!(Approval::parse(a.as_str()), Some(a));
            let json = serde_json::to_string(&a).unwrap();
            assert_eq!(json, format!("\"{}\"", a.as_str()));
            assert_eq!(serde_json::from_str::<Approval>(&json).unwrap(), a);
        }
        assert_eq!(Approval::parse("Tenant"), None);
        assert_eq!(Approval::parse(""), None);
    }

    #[test]
    fn each_policy_counts_and_needs_its_approvers() {
        use Approval::*;
        let (t, other, staff) = ("tenant/acme", "tenant/globex", "staff/bob");
        assert!(Tenant.counts(t, "acme") && !Tenant.counts(staff, "acme"));
        assert!(!Tenant.counts(other, "acme"));
        assert!(Peer.counts(staff, "acme") && !Peer.counts(t, "acme"));
        for a in [TenantOrPeer, TenantAndPeer] {
            assert!(a.counts(t, "acme") && a.counts(staff, "acme") && !a.counts(other, "acme"));
        }
        assert!(!Auto.counts(t, "acme") && !Auto.counts(staff, "acme"));
        assert!(Auto.satisfied(&[]));
        for a in [TenantOrPeer, Tenant, Peer, TenantAndPeer] {
            assert!(!a.satisfied(&[]), "{a:?}");
        }
        assert!(Tenant.satisfied(&by(&[t])) && Peer.satisfied(&by(&[staff])));
        assert!(!TenantAndPeer.satisfied(&by(&[staff, "staff/carol"])));
        assert!(!TenantAndPeer.satisfied(&by(&[t])));
        assert!(TenantAndPeer.satisfied(&by(&[staff, t])));
        assert_eq!(TenantAndPeer.waiting_for(&by(&[staff])), "the tenant");
        assert_eq!(
            TenantAndPeer.waiting_for(&by(&[t])),
            "a staff member other than the requester"
        );
    }
}
