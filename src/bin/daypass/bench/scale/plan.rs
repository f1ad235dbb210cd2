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
    /// The grant requested by the previous entry, to activate next.
    requested: Option<Grant>,
    /// Grants activated so far: what access entries refer to.
    active: Vec<(GrantId, Name, Name)>,
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
            requested: None,
            active: Vec::new(),
        })
    }

    /// Grants activated so far (each is two entries: requested, activated).
    pub(super) fn grants_made(&self) -> u64 {
        self.active.len() as u64
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
                    declaration: None,
                    recertified_at: None,
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
                    declaration: None,
                    recertified_at: None,
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
                    require_declaration: false,
                    terminated_at: None,
                    shredded_at: None,
                    justification: Default::default(),
                    break_glass_support: false,
                    approver_group: None,
                    access_limit: None,
                });
            })
        } else if k - 1 - e - t < 2 * self.grants {
            // Grant i is engineer i mod E on tenant i div E: distinct pairs,
            // requested by one entry and activated (auto) by the next, as
            // the service writes them: the log vouches for every record.
            let j = k - 1 - e - t;
            match self.requested.take() {
                Some(mut g) => {
                    b.log(g.activate(now, &Actor::System));
                    self.active
                        .push((g.id.clone(), g.tenant.clone(), g.holder.clone()));
                    b.put_grant(g);
                    Ok(())
                }
                None => {
                    let i = j / 2;
                    Plan::engineer(i % e)
                        .and_then(|h| Ok((h, Plan::tenant(i / e)?)))
                        .map(|(holder, tenant)| {
                            let actor = Actor::Principal(Principal::new(
                                PrincipalKind::Staff,
                                holder.clone(),
                            ));
                            let reason =
                                Reason::parse("scale bench: on-call for the payments incident")
                                    .unwrap_or_else(|_| unreachable!("a valid reason"));
                            let (g, requested) = Grant::request(
                                &actor,
                                holder,
                                tenant,
                                &reason,
                                &Ticket::default(),
                                MAX_GRANT_SECS,
                                Approval::Auto,
                                now,
                            );
                            b.log(requested);
                            b.put_grant(g.clone());
                            self.requested = Some(g);
                        })
                }
            }
        } else {
            b.log(self.access_entry());
            Ok(())
        };
        // Names are generated in range (checked in `new`); should one ever
        // be refused, an access entry keeps the count right.
        if result.is_err() {
            b.log(self.access_entry());
        }
    }

    /// An access by the holder of one of the active grants, as its tenant
    /// reports it; with no grant at all, a read of the log instead.
    fn access_entry(&mut self) -> Draft {
        if self.active.is_empty() {
            return Draft::new(Actor::System, "", EventKind::AuditRead)
                .with(detail::PURPOSE, "scale bench");
        }
        let (id, tenant, holder) = &self.active[self.rng.below(self.active.len() as u64) as usize];
        let mut d = access_entry(&mut self.rng);
        d.actor = Actor::Principal(Principal::new(PrincipalKind::Tenant, tenant.clone()));
        d.tenant = tenant.to_string();
        d.with(detail::GRANT, id).with(detail::HOLDER, holder)
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
        // The admin, 4 engineers, 3 tenants, then 1 of the 10 grants
        // (requested and activated).
        for _ in 0..10 {
            plan.next(&mut b, Timestamp(0));
        }
        assert_eq!(plan.grants_made(), 1);
        for _ in 0..20 {
            plan.next(&mut b, Timestamp(0));
        }
        assert_eq!(plan.grants_made(), 10);
    }
}
