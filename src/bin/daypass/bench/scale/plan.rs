//! The store the scale bench builds in process: staff, tenants, active
//! grants and access entries, in a planned order.

use super::*;

pub(super) struct Plan {
    grants: u64,
    engineers: u64,
    tenants: u64,
    /// Log entries planned so far.
    made: u64,
    rng: Rng,
}

impl Plan {
    pub(super) fn new(grants: u64) -> Result<Plan, String> {
        // Enough engineers × tenants for `grants` distinct pairs.
        let engineers = (grants as f64).sqrt().ceil().max(1.0) as u64;
        let tenants = grants.div_ceil(engineers).max(1);
        if engineers > 99_999_999 || tenants > 99_999_999 {
            return Err(format!("--grants {grants} is too many"));
        }
        Ok(Plan {
            grants,
            engineers,
            tenants,
            made: 0,
            rng: Rng(0x5eed_da95_0000_0002),
        })
    }

    /// Grants created so far.
    pub(super) fn grants_made(&self) -> u64 {
        self.made
            .saturating_sub(1 + self.engineers + self.tenants)
            .min(self.grants)
    }

    pub(super) fn engineer(i: u64) -> Result<Name, String> {
        Name::parse(&format!("eng-{i:06}")).map_err(err)
    }

    pub(super) fn tenant(j: u64) -> Result<Name, String> {
        Name::parse(&format!("tenant-{j:06}")).map_err(err)
    }

    /// Adds the next planned entry (and its record) to `b`.
    pub(super) fn next(&mut self, b: &mut Batch, now: Timestamp) {
        let k = self.made;
        self.made += 1;
        // ADMIN is a valid name (a constant); were it not, the entries
        // would say so rather than fail the build of the store.
        let admin_actor = Name::parse(ADMIN)
            .map(|name| Actor::Principal(Principal::new(PrincipalKind::Staff, name)))
            .unwrap_or(Actor::Unauthenticated);
        let (e, t) = (self.engineers, self.tenants);
        let result = if k == 0 {
            Name::parse(ADMIN).map_err(err).map(|name| {
                b.log(
                    Draft::new(Actor::System, "", EventKind::StaffBootstrapped)
                        .with(detail::NAME, &name)
                        .with(detail::ROLE, Role::Admin)
                        .with(detail::SOURCE, "config bootstrap_admin"),
                );
                b.put_staff(StaffRecord {
                    name,
                    role: Role::Admin,
                    enrolled_at: now,
                    offboarded_at: None,
                });
            })
        } else if k <= e {
            Plan::engineer(k - 1).map(|name| {
                b.log(
                    Draft::new(admin_actor.clone(), "", EventKind::StaffEnrolled)
                        .with(detail::NAME, &name)
                        .with(detail::ROLE, Role::Support),
                );
                b.put_staff(StaffRecord {
                    name,
                    role: Role::Support,
                    enrolled_at: now,
                    offboarded_at: None,
                });
            })
        } else if k <= e + t {
            Plan::tenant(k - 1 - e).map(|name| {
                b.log(
                    Draft::new(admin_actor.clone(), name.as_str(), EventKind::TenantAdded)
                        .with(detail::APPROVAL, Approval::Auto.as_str())
                        .with(detail::REQUIRE_TICKET, false),
                );
                b.put_tenant(TenantRecord {
                    name,
                    approval: Approval::Auto,
                    require_ticket: false,
                    created_at: now,
                });
            })
        } else if k - 1 - e - t < self.grants {
            // Grant i is engineer i mod E on tenant i div E: distinct pairs.
            let i = k - 1 - e - t;
            Plan::engineer(i % e)
                .and_then(|h| Ok((h, Plan::tenant(i / e)?)))
                .map(|(holder, tenant)| {
                    let expires = now.plus_secs(MAX_GRANT_SECS);
                    let g = Grant {
                        id: GrantId::random(),
                        tenant,
                        holder,
                        reason: "scale bench: on-call for the payments incident".into(),
                        ticket: String::new(),
                        state: GrantState::Active,
                        duration_secs: MAX_GRANT_SECS,
                        requested_at: now,
                        pending_until: None,
                        activated_at: Some(now),
                        expires_at: Some(expires),
                        ended_at: None,
                        decided_by: "system".into(),
                        decision_note: String::new(),
                        offboarded: false,
                    };
                    b.log(
                        g.draft(&Actor::System, EventKind::GrantActivated)
                            .with(detail::EXPIRES_AT, expires),
                    );
                    b.put_grant(g);
                })
        } else {
            b.log(access_entry(&mut self.rng));
            Ok(())
        };
        // Names are generated in range (checked in `new`); should one ever
        // be refused, an access entry keeps the count right.
        if result.is_err() {
            b.log(access_entry(&mut self.rng));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_makes_distinct_pairs_and_counts_its_grants() {
        let mut plan = Plan::new(10).unwrap();
        let (e, t) = (plan.engineers, plan.tenants);
        assert_eq!((e, t), (4, 3));
        let pairs: std::collections::BTreeSet<_> = (0..10)
            .map(|i| (Plan::engineer(i % e).unwrap(), Plan::tenant(i / e).unwrap()))
            .collect();
        assert_eq!(pairs.len(), 10);
        let mut b = Batch::default();
        // The admin, 4 engineers, 3 tenants, then 2 of the 10 grants.
        for _ in 0..10 {
            plan.next(&mut b, Timestamp(0));
        }
        assert_eq!(plan.grants_made(), 2);
        for _ in 0..20 {
            plan.next(&mut b, Timestamp(0));
        }
        assert_eq!(plan.grants_made(), 10);
    }
}
