//! Admission: an authenticated principal becomes a [`Caller`] through the
//! registries, policy decides whether it may make the call, and the rate
//! limits apply. Every refusal is logged before it is returned.

use super::{Broker, BrokerError, Result};
use crate::{
    domain::{Actor, Draft, EventKind, Principal, PrincipalKind, Role, detail, truncate},
    identity::IdentityError,
    limits::Limited,
    policy::{self, Action, Caller},
};

impl Broker {
    /// Turns an authenticated principal into a [`Caller`] using the
    /// registries, and asks policy whether it may make this call.
    pub async fn admit(
        &self,
        principal: Result<Principal, IdentityError>,
        action: Action,
    ) -> Result<Caller> {
        let (actor, outcome) = match principal {
            Err(e) => (Actor::Unauthenticated, Err(BrokerError::from(e))),
            Ok(p) => (
                Actor::Principal(p.clone()),
                self.resolve(&p).and_then(|c| {
                    policy::authorize(&c, action)?;
                    if let Some(why) = self.fail_closed_reason() {
                        if !policy::serves_while_fail_closed(action) {
                            return Err(BrokerError::FailedPrecondition(format!(
                                "this server decides nothing until an operator has looked: {why}"
                            )));
                        }
                    }
                    if let Some(class) = policy::rate_class(action) {
                        let actor = c.actor();
                        self.rates
                            .check(&actor.to_string(), class, self.clock.now())
                            .map_err(|limited| {
                                self.metrics.rate_limited(limited.class);
                                BrokerError::RateLimited {
                                    caller: actor,
                                    limited,
                                }
                            })?;
                    }
                    Ok(c)
                }),
            ),
        };
        match outcome {
            Ok(c) => Ok(c),
            Err(e) => Err(self.refuse(&actor, action, e).await),
        }
    }

    /// Checks again, for a long-lived call (a followed stream), that its
    /// caller is still enrolled with a role that may make it: offboarding
    /// or a role change ends the stream. The refusal is logged.
    pub async fn readmit(&self, caller: &Caller, action: Action) -> Result<()> {
        let checked = self
            .resolve(&caller.principal())
            .and_then(|now| {
                if now == *caller {
                    Ok(now)
                } else {
                    Err(BrokerError::PermissionDenied(format!(
                        "{} changed role since this stream was opened; open it again",
                        caller.actor()
                    )))
                }
            })
            .and_then(|c| Ok(policy::authorize(&c, action)?));
        match checked {
            Ok(()) => Ok(()),
            Err(e) => Err(self.refuse(&caller.actor(), action, e).await),
        }
    }

    fn resolve(&self, p: &Principal) -> Result<Caller> {
        match p.kind {
            // Certificates cannot name a screen (PrincipalKind::parse); a
            // screen has no gRPC identity.
            PrincipalKind::Screen => Err(BrokerError::PermissionDenied(format!(
                "{p} is a warning screen, which has no access to the gRPC API"
            ))),
            PrincipalKind::Tenant => match self.ledger.tenant(&p.name)? {
                Some(_) => Ok(Caller::Tenant {
                    name: p.name.clone(),
                }),
                None => Err(BrokerError::PermissionDenied(format!(
                    "tenant {} is not registered; an admin can add it with `daypass tenant add {}`",
                    p.name, p.name
                ))),
            },
            PrincipalKind::Staff | PrincipalKind::Auditor => {
                let Some(rec) = self.ledger.staff(&p.name)? else {
                    return Err(BrokerError::PermissionDenied(format!(
                        "{p} is not enrolled; an admin can enrol them with `daypass staff add {} --role ROLE`",
                        p.name
                    )));
                };
                if !rec.is_active() {
                    return Err(BrokerError::PermissionDenied(format!(
                        "{p} was offboarded; their certificate no longer gives any access"
                    )));
                }
                // Auditors present auditor certificates, everyone else staff ones.
                let cert_says_auditor = p.kind == PrincipalKind::Auditor;
                if cert_says_auditor != (rec.role == Role::Auditor) {
                    return Err(BrokerError::PermissionDenied(format!(
                        "{p} is enrolled as {}, which needs {} certificate",
                        rec.role,
                        if rec.role == Role::Auditor {
                            "an auditor"
                        } else {
                            "a staff"
                        }
                    )));
                }
                Ok(Caller::Staff {
                    name: rec.name,
                    role: rec.role,
                })
            }
        }
    }

    /// Logs a refused call and hands the error back. If the refusal itself
    /// cannot be logged the caller gets UNAVAILABLE instead: no unlogged
    /// decisions.
    pub async fn refuse(&self, actor: &Actor, action: Action, err: BrokerError) -> BrokerError {
        if !err.is_refusal() {
            return err;
        }
        // Rate-limited calls have their own window; every other refusal is
        // logged within the per-principal budget, the rest counted.
        let unlogged = match &err {
            BrokerError::RateLimited { .. } => None,
            _ => match self.refusals.log(&actor.to_string(), self.clock.now()) {
                None => return err,
                Some(0) => None,
                Some(n) => Some(n),
            },
        };
        let mut draft = Draft::new(actor.clone(), "", EventKind::CallRefused)
            .with(detail::CALL, action.as_str())
            .with(detail::CODE, err.code().as_str())
            .with(detail::MESSAGE, truncate(&err.to_string(), 300));
        if let BrokerError::RateLimited {
            limited:
                Limited {
                    log: Some(suppressed),
                    ..
                },
            ..
        } = &err
        {
            draft = draft.with(detail::UNLOGGED_REFUSALS_BEFORE, suppressed);
        }
        if let Some(n) = unlogged {
            draft = draft.with(detail::UNLOGGED_REFUSALS_BEFORE, n);
        }
        match self.ledger.append(&*self.clock, vec![draft]).await {
            Ok(_) => err,
            Err(e) => BrokerError::Store(e),
        }
    }
}
