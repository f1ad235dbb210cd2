//! Break-glass use cases beside the request itself (which is
//! [`Broker::request_grant`] with `break_glass`): a second person's review
//! of an emergency grant afterwards, and the tenant setting that lets
//! support staff (not only root holders) open one. Who may do either is
//! [`crate::policy`]'s ([`policy::may_review`], [`policy::may_break_glass`]);
//! the transitions are [`crate::domain::Grant::review`]'s.

use super::{Broker, BrokerError, Receipted, Result, not_found, receipt};
use crate::{
    domain::{Draft, EventKind, Grant, TenantRecord, detail},
    policy::{self, Caller, Verdict},
    service::commands::{ReviewGrant, SetTenantBreakGlass},
};

impl Broker {
    /// Reviews a break-glass grant (logged as `grant.reviewed` with the
    /// verdict and note): once, after it opened, by someone other than its
    /// holder. A grant the caller may not see is reported as unknown.
    pub async fn review_grant(
        &self,
        caller: &Caller,
        cmd: ReviewGrant,
    ) -> Result<Receipted<Grant>> {
        let ReviewGrant {
            grant: id,
            verdict,
            note,
        } = cmd;
        let actor = caller.actor();
        let (grant, c) = self
            .ledger
            .commit(&*self.clock, |s, b, now| {
                let mut g = s.grant(&id)?.ok_or_else(|| not_found(&id))?;
                match policy::may_review(caller, &g) {
                    Verdict::Allowed => {}
                    Verdict::Hidden => return Err(not_found(&id)),
                    Verdict::Denied(why) => return Err(BrokerError::PermissionDenied(why.into())),
                }
                g.reviewable().map_err(BrokerError::FailedPrecondition)?;
                b.log(g.review(now, &actor, verdict, &note));
                b.put_grant(g.clone());
                Ok(g)
            })
            .await?;
        Ok((grant, receipt(c)?))
    }

    /// Lets support staff open break-glass grants for a tenant, or not
    /// (logged as `tenant.break_glass_set` with the resulting setting).
    /// Grants already open are not touched.
    pub async fn set_tenant_break_glass(
        &self,
        caller: &Caller,
        cmd: SetTenantBreakGlass,
    ) -> Result<Receipted<TenantRecord>> {
        let SetTenantBreakGlass {
            tenant: name,
            allow_support,
        } = cmd;
        let (rec, c) = self
            .ledger
            .commit(&*self.clock, |s, b, _now| {
                let Some(mut rec) = s.tenant(&name)? else {
                    return Err(BrokerError::NotFound(format!(
                        "tenant {name} does not exist; `daypass tenant list` shows the tenants"
                    )));
                };
                if let Some(why) = rec.closed() {
                    return Err(BrokerError::FailedPrecondition(why));
                }
                rec.break_glass_support = allow_support;
                b.log(
                    Draft::new(
                        caller.actor(),
                        name.as_str(),
                        EventKind::TenantBreakGlassSet,
                    )
                    .with(detail::ALLOW_SUPPORT, allow_support),
                );
                b.put_tenant(rec.clone());
                Ok(rec)
            })
            .await?;
        Ok((rec, receipt(c)?))
    }
}
