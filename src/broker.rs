//! The service logic: staff and tenant registries, the grant lifecycle,
//! validation, access records and audit reads. Every method takes an
//! already-admitted [`Caller`]; every state change and decision is written
//! with its log entry through [`Store::commit`] and is durable before the
//! method returns.
//!
//! Not here: certificates and gRPC (see [`crate::rpc`]), who-may-do-what
//! (see [`crate::policy`]), timers (see [`crate::expiry`]).

use std::sync::Arc;

use thiserror::Error;

use crate::{
    audit::{
        ChainVerifier, Hash, SealedEntry,
        merkle::{self, ProofError},
        verify::ProblemKind,
    },
    clock::{SharedClock, Timestamp},
    config::Config,
    expiry::ExpiryIndex,
    gate::{Gate, IssuedCertificate},
    grant::{DenyReason, Grant, GrantId, GrantState},
    identity::{IdentityError, Name, Principal, PrincipalKind, truncate},
    limits::{Rate, RateLimits},
    policy::{self, Action, Caller, Refusal, Role, Verdict},
    store::{
        Approval, Batch, Draft, Receipt, SignedCheckpoint, StaffRecord, Store, StoreError,
        TenantRecord,
    },
};

/// Longest accepted reason, in characters.
pub const MAX_REASON_CHARS: usize = 500;
/// Longest ticket reference, in characters.
pub const MAX_TICKET_CHARS: usize = 128;
/// Longest access action and resource, in characters.
pub use daypass_tenant::report::{MAX_ACTION_CHARS, MAX_RESOURCE_CHARS};
pub const MAX_NOTE_CHARS: usize = 500;
/// How far in the future a reported access may be (clock skew).
const MAX_REPORT_SKEW_MS: i64 = 5 * 60 * 1000;
/// How old a reported access may be.
const MAX_REPORT_AGE_MS: i64 = 7 * 24 * 3600 * 1000;
/// Longest access report id.
pub const MAX_REPORT_ID_CHARS: usize = 64;

/// Largest accepted certificate signing request (PEM).
pub const MAX_CSR_BYTES: usize = 16 * 1024;

/// Everything a broker call can fail with. Mapped to a gRPC status in
/// exactly one place (`rpc::status`).
#[derive(Debug, Error)]
pub enum BrokerError {
    #[error("{0}")]
    Unauthenticated(#[from] IdentityError),
    #[error("{0}")]
    Refused(#[from] Refusal),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    OutOfRange(String),
    #[error(
        "{caller} is over its limit for {} ({:.0} per second, bursts of {:.0}); retry in {} ms",
        .limited.class.as_str(), .limited.rate.per_sec, .limited.rate.burst, .limited.retry_after_ms
    )]
    RateLimited {
        caller: String,
        limited: crate::limits::Limited,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl BrokerError {
    /// Refusals are logged; storage failures cannot be.
    pub fn is_refusal(&self) -> bool {
        match self {
            BrokerError::Store(_) => false,
            // Only the first refusal in its window (limits::LOG_EVERY_MS).
            BrokerError::RateLimited { limited, .. } => limited.log.is_some(),
            _ => true,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            BrokerError::Unauthenticated(_) => "unauthenticated",
            BrokerError::Refused(_) | BrokerError::PermissionDenied(_) => "permission-denied",
            BrokerError::InvalidArgument(_) => "invalid-argument",
            BrokerError::NotFound(_) => "not-found",
            BrokerError::AlreadyExists(_) => "already-exists",
            BrokerError::FailedPrecondition(_) => "failed-precondition",
            BrokerError::OutOfRange(_) => "out-of-range",
            BrokerError::RateLimited { .. } => "resource-exhausted",
            BrokerError::Store(_) => "unavailable",
        }
    }
}

type Result<T, E = BrokerError> = std::result::Result<T, E>;

/// Limits from the configuration.
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_duration_secs: i64,
    pub pending_ttl_secs: i64,
    pub max_root_holders: u32,
    pub requests: Rate,
    pub validations: Rate,
    pub reports: Rate,
}

impl From<&Config> for Limits {
    fn from(c: &Config) -> Self {
        let l = &c.limits;
        Limits {
            max_duration_secs: c.grants.max_duration_secs,
            pending_ttl_secs: c.grants.pending_ttl_secs,
            max_root_holders: c.staff.max_root_holders,
            requests: Rate {
                per_sec: l.requests_per_minute / 60.0,
                burst: l.request_burst,
            },
            validations: Rate {
                per_sec: l.validations_per_second,
                burst: l.validation_burst,
            },
            reports: Rate {
                per_sec: l.reports_per_second,
                burst: l.report_burst,
            },
        }
    }
}

/// What a tenant's validation concluded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validation {
    pub allowed: Result<(), DenyReason>,
    /// The grant, when the calling tenant may know of it.
    pub grant: Option<Grant>,
    pub log_seq: u64,
    pub receipt: Option<Receipt>,
}

/// What a server-side chain verification found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainReport {
    pub checked: u64,
    pub head: Hash,
    pub problem: Option<crate::audit::Problem>,
}

/// Most entries one `GetEntries` call returns.
pub const MAX_PAGE: u64 = 1000;
/// Most entries one `GetTenantEntries` call returns.
pub const MAX_TENANT_PAGE: u32 = 500;

/// An inclusion proof as served.
#[derive(Clone, Debug)]
pub struct Inclusion {
    pub seq: u64,
    pub size: u64,
    pub leaf_hash: Hash,
    pub hashes: Vec<Hash>,
    pub checkpoint: Option<SignedCheckpoint>,
}

/// A consistency proof as served.
#[derive(Clone, Debug)]
pub struct Consistency {
    pub old: u64,
    pub new: u64,
    pub hashes: Vec<Hash>,
    pub checkpoint: Option<SignedCheckpoint>,
}

/// One page of a tenant's proven entries.
#[derive(Clone, Debug)]
pub struct TenantPage {
    pub checkpoint: SignedCheckpoint,
    pub entries: Vec<(SealedEntry, Vec<Hash>)>,
    pub next_seq: u64,
}

fn proof_err(e: ProofError) -> BrokerError {
    BrokerError::OutOfRange(e.to_string())
}

/// How an access report was recorded.
#[derive(Clone, Debug)]
pub struct AccessRecord {
    pub seq: u64,
    pub hash: Hash,
    /// None for a duplicate (nothing new was written).
    pub receipt: Option<Receipt>,
    /// The report id had been recorded before: `seq` and `hash` are the
    /// first report's entry.
    pub duplicate: bool,
    /// The grant was active when the access happened.
    pub within_grant: bool,
}

/// A result with the receipt of the entries that record it.
pub type Receipted<T> = (T, Option<Receipt>);

pub struct Broker {
    store: Arc<Store>,
    clock: SharedClock,
    limits: Limits,
    trust_domain: String,
    expiry: Arc<ExpiryIndex>,
    rates: RateLimits,
    gate: Arc<Gate>,
}

impl Broker {
    pub fn new(
        store: Arc<Store>,
        clock: SharedClock,
        limits: Limits,
        trust_domain: String,
        gate: Arc<Gate>,
    ) -> Self {
        let rates = RateLimits::new(limits.requests, limits.validations, limits.reports);
        Broker {
            store,
            clock,
            limits,
            trust_domain,
            expiry: Arc::new(ExpiryIndex::default()),
            rates,
            gate,
        }
    }

    pub fn gate(&self) -> &Arc<Gate> {
        &self.gate
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    pub fn expiry(&self) -> &Arc<ExpiryIndex> {
        &self.expiry
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    // ------------------------------------------------------- admission ---

    /// Turns an authenticated principal into a [`Caller`] using the
    /// registries, and asks policy whether it may make this call. Every
    /// refusal is logged before it is returned.
    pub async fn admit(
        &self,
        principal: Result<Principal, IdentityError>,
        action: Action,
    ) -> Result<Caller> {
        let (actor, outcome) = match principal {
            Err(e) => ("unauthenticated".to_owned(), Err(BrokerError::from(e))),
            Ok(p) => (
                p.to_string(),
                self.resolve(&p).and_then(|c| {
                    policy::authorize(&c, action)?;
                    if let Some(class) = policy::rate_class(action) {
                        self.rates
                            .check(&c.actor(), class, self.clock.now())
                            .map_err(|limited| BrokerError::RateLimited {
                                caller: c.actor(),
                                limited,
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

    fn resolve(&self, p: &Principal) -> Result<Caller> {
        match p.kind {
            PrincipalKind::Tenant => match self.store.tenant(&p.name)? {
                Some(_) => Ok(Caller::Tenant {
                    name: p.name.clone(),
                }),
                None => Err(BrokerError::PermissionDenied(format!(
                    "tenant {} is not registered; an admin can add it with `daypass tenant add {}`",
                    p.name, p.name
                ))),
            },
            PrincipalKind::Staff | PrincipalKind::Auditor => {
                let Some(rec) = self.store.staff(&p.name)? else {
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
                        "{p} is enrolled as {}, which needs a {} certificate",
                        rec.role,
                        if rec.role == Role::Auditor {
                            "auditor"
                        } else {
                            "staff"
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
    pub async fn refuse(&self, actor: &str, action: Action, err: BrokerError) -> BrokerError {
        if !err.is_refusal() {
            return err;
        }
        let mut draft = Draft::new(actor, "", "call.refused")
            .with("call", action.as_str())
            .with("code", err.code())
            .with("message", truncate(&err.to_string(), 300));
        if let BrokerError::RateLimited {
            limited:
                crate::limits::Limited {
                    log: Some(suppressed),
                    ..
                },
            ..
        } = &err
        {
            draft = draft.with("unlogged_refusals_before", suppressed);
        }
        match self.store.append(&*self.clock, vec![draft]).await {
            Ok(_) => err,
            Err(e) => BrokerError::Store(e),
        }
    }

    // ----------------------------------------------------------- staff ---

    /// Enrols `name` as an admin if, and only if, nobody is enrolled yet.
    pub async fn bootstrap_admin(&self, name: &Name) -> Result<bool> {
        let (created, _) = self
            .store
            .commit(&*self.clock, |s, b, now| {
                if !s.all_staff()?.is_empty() {
                    return Ok::<_, BrokerError>(false);
                }
                b.put_staff(StaffRecord {
                    name: name.clone(),
                    role: Role::Admin,
                    enrolled_at: now,
                    offboarded_at: None,
                });
                b.log(
                    Draft::new("system", "", "staff.bootstrapped")
                        .with("name", name)
                        .with("role", Role::Admin)
                        .with("source", "config bootstrap_admin"),
                );
                Ok(true)
            })
            .await?;
        Ok(created)
    }

    pub async fn add_staff(
        &self,
        caller: &Caller,
        name: &str,
        role: Option<Role>,
    ) -> Result<Receipted<StaffRecord>> {
        let name = Name::parse(name).map_err(invalid)?;
        let role = role.ok_or_else(|| {
            BrokerError::InvalidArgument(
                "role is required: support, root, admin, auditor, partnerships, data-entry or administration".into(),
            )
        })?;
        let max_root = self.limits.max_root_holders;
        let (rec, c) = self
            .store
            .commit(&*self.clock, |s, b, now| {
                if let Some(existing) = s.staff(&name)? {
                    return Err(BrokerError::AlreadyExists(if existing.is_active() {
                        format!("{name} is already enrolled as {}", existing.role)
                    } else {
                        format!("{name} was offboarded; names are never reused, enrol them under a new name")
                    }));
                }
                if role == Role::Root {
                    let roots = s
                        .all_staff()?
                        .iter()
                        .filter(|r| r.is_active() && r.role == Role::Root)
                        .count() as u32;
                    if roots >= max_root {
                        return Err(BrokerError::FailedPrecondition(format!(
                            "there are already {roots} root holders (the limit is {max_root}); offboard one first"
                        )));
                    }
                }
                let rec = StaffRecord {
                    name: name.clone(),
                    role,
                    enrolled_at: now,
                    offboarded_at: None,
                };
                b.put_staff(rec.clone());
                b.log(
                    Draft::new(caller.actor(), "", "staff.enrolled")
                        .with("name", &name)
                        .with("role", role),
                );
                Ok(rec)
            })
            .await?;
        Ok((rec, c.receipt))
    }

    /// Offboards `name`: every live grant they hold is revoked in the same
    /// transaction, and their certificate stops working at once.
    pub async fn offboard_staff(
        &self,
        caller: &Caller,
        name: &str,
    ) -> Result<Receipted<(StaffRecord, Vec<GrantId>)>> {
        let name = Name::parse(name).map_err(invalid)?;
        let actor = caller.actor();
        let (out, c) = self
            .store
            .commit(&*self.clock, |s, b, now| {
                let Some(mut rec) = s.staff(&name)? else {
                    return Err(BrokerError::NotFound(format!("{name} is not enrolled")));
                };
                if !rec.is_active() {
                    return Err(BrokerError::FailedPrecondition(format!(
                        "{name} is already offboarded"
                    )));
                }
                rec.offboarded_at = Some(now);
                let mut revoked = Vec::new();
                for mut g in s.live_grants()?.into_iter().filter(|g| g.holder == name) {
                    g.state = GrantState::Revoked;
                    g.offboarded = true;
                    g.ended_at = Some(now);
                    g.decided_by = actor.clone();
                    g.decision_note = "holder offboarded".into();
                    b.log(
                        grant_draft(&actor, &g, "grant.revoked").with("cause", "holder offboarded"),
                    );
                    // Listed before the entry is durable (see `end`).
                    self.gate.note_ended(&g, now);
                    revoked.push(g.id.clone());
                    b.put_grant(g);
                }
                b.put_staff(rec.clone());
                b.log(
                    Draft::new(&actor, "", "staff.offboarded")
                        .with("name", &name)
                        .with("role", rec.role)
                        .with("revoked_grants", revoked.len()),
                );
                Ok((rec, revoked))
            })
            .await?;
        Ok((out, c.receipt))
    }

    pub fn list_staff(&self) -> Result<Vec<StaffRecord>> {
        Ok(self.store.all_staff()?)
    }

    // --------------------------------------------------------- tenants ---

    pub async fn add_tenant(
        &self,
        caller: &Caller,
        name: &str,
        approval: Option<Approval>,
        require_ticket: bool,
    ) -> Result<Receipted<TenantRecord>> {
        let name = Name::parse(name).map_err(invalid)?;
        let approval = approval.ok_or_else(|| {
            BrokerError::InvalidArgument("approval policy is required: auto or approval".into())
        })?;
        let (rec, c) = self
            .store
            .commit(&*self.clock, |s, b, now| {
                if s.tenant(&name)?.is_some() {
                    return Err(BrokerError::AlreadyExists(format!(
                        "tenant {name} already exists"
                    )));
                }
                let rec = TenantRecord {
                    name: name.clone(),
                    approval,
                    require_ticket,
                    created_at: now,
                };
                b.put_tenant(rec.clone());
                b.log(
                    Draft::new(caller.actor(), name.as_str(), "tenant.added")
                        .with("approval", approval.as_str())
                        .with("require_ticket", require_ticket),
                );
                Ok(rec)
            })
            .await?;
        Ok((rec, c.receipt))
    }

    pub async fn update_tenant(
        &self,
        caller: &Caller,
        name: &str,
        approval: Option<Approval>,
        require_ticket: Option<bool>,
    ) -> Result<Receipted<TenantRecord>> {
        let name = Name::parse(name).map_err(invalid)?;
        let (rec, c) = self
            .store
            .commit(&*self.clock, |s, b, _now| {
                let Some(mut rec) = s.tenant(&name)? else {
                    return Err(BrokerError::NotFound(format!(
                        "tenant {name} does not exist"
                    )));
                };
                if let Some(a) = approval {
                    rec.approval = a;
                }
                if let Some(t) = require_ticket {
                    rec.require_ticket = t;
                }
                b.put_tenant(rec.clone());
                b.log(
                    Draft::new(caller.actor(), name.as_str(), "tenant.updated")
                        .with("approval", rec.approval.as_str())
                        .with("require_ticket", rec.require_ticket),
                );
                Ok(rec)
            })
            .await?;
        Ok((rec, c.receipt))
    }

    pub fn list_tenants(&self) -> Result<Vec<TenantRecord>> {
        Ok(self.store.all_tenants()?)
    }

    // ---------------------------------------------------------- grants ---

    /// A support engineer or root holder asks for access to a tenant.
    ///
    /// Stacking rule: while the requester has a live (pending or active)
    /// grant for the same tenant, a new request is refused with
    /// ALREADY_EXISTS naming that grant; release it first. Access can thus
    /// never be extended past 24 h by overlapping grants.
    pub async fn request_grant(
        &self,
        caller: &Caller,
        tenant: &str,
        reason: &str,
        ticket: &str,
        duration_secs: i64,
    ) -> Result<Receipted<Grant>> {
        let Caller::Staff { name: holder, .. } = caller else {
            return Err(BrokerError::PermissionDenied(
                "only staff can hold grants".into(),
            ));
        };
        let tenant = Name::parse(tenant).map_err(|e| invalid_field("tenant", e))?;
        let reason = text_field("reason", reason, MAX_REASON_CHARS, true)?;
        let ticket = text_field("ticket", ticket, MAX_TICKET_CHARS, false)?;
        let max = self.limits.max_duration_secs;
        let duration_secs = match duration_secs {
            0 => max,
            d if d < 0 => {
                return Err(BrokerError::InvalidArgument(format!(
                    "duration must be positive (or 0 for the maximum of {max} s), not {d}"
                )));
            }
            d if d > max => {
                return Err(BrokerError::InvalidArgument(format!(
                    "duration {d} s exceeds the maximum of {max} s; ask for at most {}",
                    human_secs(max)
                )));
            }
            d => d,
        };
        let actor = caller.actor();
        let pending_ttl = self.limits.pending_ttl_secs;
        let (grant, c) = self
            .store
            .commit(&*self.clock, |s, b, now| {
                let Some(t) = s.tenant(&tenant)? else {
                    return Err(BrokerError::NotFound(format!(
                        "tenant {tenant} does not exist; `daypass tenant list` shows the tenants"
                    )));
                };
                if t.require_ticket && ticket.is_empty() {
                    return Err(BrokerError::InvalidArgument(format!(
                        "tenant {tenant} requires a ticket reference: pass --ticket"
                    )));
                }
                if let Some(mut prev) = s.latest_grant(holder, &tenant)? {
                    if prev.state.is_live() {
                        if prev.deadline().is_some_and(|d| now < d) {
                            return Err(BrokerError::AlreadyExists(format!(
                                "you already hold {} grant {} for {tenant}; release it (`daypass grant release {}`) before asking again",
                                prev.state.as_str(),
                                prev.id,
                                prev.id
                            )));
                        }
                        // Past its deadline but not yet swept: close it first.
                        expire(&mut prev, now, b);
                    }
                }
                let mut g = Grant {
                    id: GrantId::random(),
                    tenant: tenant.clone(),
                    holder: holder.clone(),
                    reason: reason.clone(),
                    ticket: ticket.clone(),
                    state: GrantState::Pending,
                    duration_secs,
                    requested_at: now,
                    pending_until: None,
                    activated_at: None,
                    expires_at: None,
                    ended_at: None,
                    decided_by: String::new(),
                    decision_note: String::new(),
                    offboarded: false,
                };
                b.log(
                    grant_draft(&actor, &g, "grant.requested")
                        .with("reason", &reason)
                        .with("ticket", &ticket)
                        .with("duration_secs", duration_secs)
                        .with("approval", t.approval.as_str()),
                );
                match t.approval {
                    Approval::Auto => activate(&mut g, now, "system", b),
                    Approval::Approval => g.pending_until = Some(now.plus_secs(pending_ttl)),
                }
                b.put_grant(g.clone());
                Ok(g)
            })
            .await?;
        self.track(&grant);
        Ok((grant, c.receipt))
    }

    /// Approves (`approve`) or denies a pending request.
    pub async fn decide(
        &self,
        caller: &Caller,
        id: &str,
        approve: bool,
        note: &str,
    ) -> Result<Receipted<Grant>> {
        let id = parse_grant_id(id)?;
        let note = text_field("note", note, MAX_NOTE_CHARS, false)?;
        let actor = caller.actor();
        let (grant, c) = self
            .store
            .commit(&*self.clock, |s, b, now| {
                let mut g = s.grant(&id)?.ok_or_else(|| not_found(&id))?;
                match policy::may_decide(caller, &g) {
                    Verdict::Allowed => {}
                    Verdict::Hidden => return Err(not_found(&id)),
                    Verdict::Denied(why) => return Err(BrokerError::PermissionDenied(why.into())),
                }
                if g.state != GrantState::Pending {
                    return Err(BrokerError::FailedPrecondition(format!(
                        "grant {id} is {}, not pending",
                        g.state.as_str()
                    )));
                }
                if g.pending_until.is_none_or(|u| now >= u) {
                    return Err(BrokerError::FailedPrecondition(format!(
                        "the request {id} expired unapproved; the requester must ask again"
                    )));
                }
                g.decided_by = actor.clone();
                g.decision_note = note.clone();
                if approve {
                    b.log(grant_draft(&actor, &g, "grant.approved").with("note", &note));
                    activate(&mut g, now, &actor, b);
                } else {
                    g.state = GrantState::Denied;
                    g.ended_at = Some(now);
                    b.log(grant_draft(&actor, &g, "grant.denied").with("note", &note));
                }
                b.put_grant(g.clone());
                Ok(g)
            })
            .await?;
        self.track(&grant);
        Ok((grant, c.receipt))
    }

    /// Grants the caller may see, optionally filtered.
    pub fn list_grants(
        &self,
        caller: &Caller,
        tenant: &str,
        holder: &str,
        live_only: bool,
    ) -> Result<Vec<Grant>> {
        let mut grants: Vec<Grant> = self
            .store
            .all_grants()?
            .into_iter()
            .filter(|g| policy::may_see(caller, g))
            .filter(|g| tenant.is_empty() || g.tenant.as_str() == tenant)
            .filter(|g| holder.is_empty() || g.holder.as_str() == holder)
            .filter(|g| !live_only || g.state.is_live())
            .collect();
        grants.sort_by(|a, b| a.requested_at.cmp(&b.requested_at).then(a.id.cmp(&b.id)));
        Ok(grants)
    }

    /// A grant the caller may see; any other is reported as unknown.
    pub fn get_grant(&self, caller: &Caller, id: &str) -> Result<Grant> {
        let id = parse_grant_id(id)?;
        match self.store.grant(&id)? {
            Some(g) if policy::may_see(caller, &g) => Ok(g),
            _ => Err(not_found(&id)),
        }
    }

    /// An admin, or the grant's tenant, ends a grant now.
    pub async fn revoke(&self, caller: &Caller, id: &str, note: &str) -> Result<Receipted<Grant>> {
        let id = parse_grant_id(id)?;
        let note = text_field("note", note, MAX_NOTE_CHARS, false)?;
        self.end(
            caller,
            &id,
            GrantState::Revoked,
            "grant.revoked",
            &note,
            policy::may_revoke,
        )
        .await
    }

    /// The holder gives up their grant now.
    pub async fn release(&self, caller: &Caller, id: &str) -> Result<Receipted<Grant>> {
        let id = parse_grant_id(id)?;
        self.end(
            caller,
            &id,
            GrantState::Released,
            "grant.released",
            "",
            policy::may_release,
        )
        .await
    }

    async fn end(
        &self,
        caller: &Caller,
        id: &GrantId,
        to: GrantState,
        kind: &'static str,
        note: &str,
        allowed: impl FnOnce(&Caller, &Grant) -> bool,
    ) -> Result<Receipted<Grant>> {
        let actor = caller.actor();
        let (g, c) = self
            .store
            .commit(&*self.clock, |s, b, now| {
                let mut g = s.grant(id)?.ok_or_else(|| not_found(id))?;
                if !allowed(caller, &g) {
                    // Indistinguishable from an unknown id for tenants and
                    // staff; admins can see everything anyway.
                    return Err(not_found(id));
                }
                if !g.state.is_live() || g.deadline().is_none_or(|d| now >= d) {
                    return Err(BrokerError::FailedPrecondition(format!(
                        "grant {id} has already ended ({})",
                        if g.state.is_live() {
                            "expired"
                        } else {
                            g.state.as_str()
                        }
                    )));
                }
                g.state = to;
                g.ended_at = Some(now);
                g.decided_by = actor.clone();
                g.decision_note = note.to_owned();
                b.log(grant_draft(&actor, &g, kind).with("note", note));
                // Into the revocation lists now, before the entry is
                // durable: a list issued after the answer always holds it,
                // even if this group's flush fails and succeeds later. If
                // the group fails instead, the grant stays listed (tenants
                // refuse it offline): fail closed, and the retried call
                // succeeds.
                self.gate.note_ended(&g, now);
                b.put_grant(g.clone());
                Ok(g)
            })
            .await?;
        Ok((g, c.receipt))
    }

    /// A tenant asks whether an engineer may act in its environment now.
    /// `subject` is a grant id, or a staff name / principal. A grant of
    /// another tenant is answered exactly like an unknown one.
    pub async fn validate(
        &self,
        caller: &Caller,
        by_grant: Option<&str>,
        by_staff: Option<&str>,
    ) -> Result<Validation> {
        let Some(tenant) = caller.tenant() else {
            return Err(BrokerError::PermissionDenied(
                "only tenants validate grants".into(),
            ));
        };
        enum Subject {
            Grant(Option<GrantId>),
            Staff(Option<Name>),
        }
        let subject = match (by_grant, by_staff) {
            (Some(id), None) => Subject::Grant(GrantId::parse(id.trim())),
            (None, Some(staff)) => Subject::Staff(self.staff_name(staff)),
            _ => {
                return Err(BrokerError::InvalidArgument(
                    "give either a grant id or a staff name to validate".into(),
                ));
            }
        };
        let asked = by_grant.or(by_staff).unwrap_or_default();
        // Decide under the writer lock, so the log order is the decision
        // order: no `validation.allowed` can follow the revocation it missed.
        let ((allowed, grant), c) = self
            .store
            .commit(&*self.clock, |s, b, now| {
                let grant = match &subject {
                    Subject::Grant(Some(id)) => s.grant(id)?,
                    Subject::Staff(Some(name)) => s.latest_grant(name, tenant)?,
                    Subject::Grant(None) | Subject::Staff(None) => None,
                };
                // Another tenant's grant is answered exactly like an unknown one.
                let grant = grant.filter(|g| g.tenant == *tenant);
                let allowed = match &grant {
                    None => Err(DenyReason::Unknown),
                    Some(g) => match s.staff(&g.holder)? {
                        Some(rec) if !rec.is_active() => Err(DenyReason::Offboarded),
                        _ => g.is_valid_at(now),
                    },
                };
                let kind = if allowed.is_ok() {
                    "validation.allowed"
                } else {
                    "validation.denied"
                };
                let mut draft = Draft::new(caller.actor(), tenant.as_str(), kind);
                draft = match &grant {
                    Some(g) => draft.with("grant", &g.id).with("holder", &g.holder),
                    None => draft.with("asked", truncate(asked, 80)),
                };
                if let Err(r) = allowed {
                    draft = draft.with("deny_reason", r.as_str());
                }
                b.log(draft);
                Ok::<_, BrokerError>((allowed, grant))
            })
            .await?;
        Ok(Validation {
            allowed,
            grant,
            log_seq: c.entries.first().map(|s| s.entry.seq).unwrap_or_default(),
            receipt: c.receipt,
        })
    }

    fn staff_name(&self, s: &str) -> Option<Name> {
        let s = s.trim();
        if let Ok(p) = Principal::parse_uri(s, &self.trust_domain) {
            return (p.kind == PrincipalKind::Staff).then_some(p.name);
        }
        Name::parse(s.strip_prefix("staff/").unwrap_or(s)).ok()
    }

    /// A tenant records what an engineer did under a grant that is valid now.
    pub async fn record_access(
        &self,
        caller: &Caller,
        id: &str,
        action: &str,
        resource: &str,
        accessed_at_ms: i64,
        report_id: &str,
    ) -> Result<AccessRecord> {
        let Some(tenant) = caller.tenant() else {
            return Err(BrokerError::PermissionDenied(
                "only tenants record access".into(),
            ));
        };
        let id = parse_grant_id(id)?;
        let action = text_field("action", action, MAX_ACTION_CHARS, true)?;
        let resource = text_field("resource", resource, MAX_RESOURCE_CHARS, false)?;
        let report_id = parse_report_id(report_id)?;
        let now = self.clock.now();
        let accessed_at = match accessed_at_ms {
            0 => None,
            ms if ms > now.millis().saturating_add(MAX_REPORT_SKEW_MS) => {
                return Err(BrokerError::InvalidArgument(format!(
                    "accessed_at_ms {} is more than 5 minutes in the future (now {now}); check the tenant's clock",
                    Timestamp(ms)
                )));
            }
            ms if ms < now.millis().saturating_sub(MAX_REPORT_AGE_MS) => {
                return Err(BrokerError::InvalidArgument(format!(
                    "accessed_at_ms {} is more than 7 days in the past; such a report cannot be taken",
                    Timestamp(ms)
                )));
            }
            ms => Some(Timestamp(ms)),
        };
        let actor = caller.actor();
        let (mut record, mut c) = self
            .store
            .commit(&*self.clock, |s, b, now| {
                let g = s
                    .grant(&id)?
                    .filter(|g| g.tenant == *tenant)
                    .ok_or_else(|| not_found(&id))?;
                let fingerprint = report_fingerprint(&id, &action, &resource, accessed_at_ms);
                if let Some(rid) = &report_id {
                    if let Some((seq, hash, first)) = s.report(tenant, rid)? {
                        if first != fingerprint {
                            return Err(BrokerError::AlreadyExists(format!(
                                "report_id {rid} was already used for another access; give each access its own id"
                            )));
                        }
                        // A retry carries the same time, so the answer is
                        // the first one's: a report without a time was only
                        // taken while the grant admitted its holder.
                        return Ok(AccessRecord {
                            seq,
                            hash,
                            receipt: None,
                            duplicate: true,
                            within_grant: accessed_at.is_none_or(|t| g.was_active_at(t)),
                        });
                    }
                }
                let within_grant = match accessed_at {
                    // About to happen: only while the grant admits its holder.
                    None => match g.is_valid_at(now) {
                        Ok(()) => true,
                        Err(why) => {
                            return Err(BrokerError::FailedPrecondition(format!(
                                "grant {id} does not admit its holder now ({}); the access must not happen",
                                why.as_str()
                            )));
                        }
                    },
                    // Already happened: logged whatever the grant's state
                    // was, and whether it was active then.
                    Some(t) => g.was_active_at(t),
                };
                let mut draft = grant_draft(&actor, &g, "access.recorded")
                    .with("action", &action)
                    .with("resource", &resource);
                if let Some(t) = accessed_at {
                    draft = draft
                        .with("accessed_at", t)
                        .with("within_grant", within_grant);
                }
                if let Some(rid) = &report_id {
                    draft = draft.with("report_id", rid);
                    b.put_report(tenant, rid, fingerprint);
                }
                b.log(draft);
                // The entry's place is known once the commit is sealed.
                Ok::<_, BrokerError>(AccessRecord {
                    seq: 0,
                    hash: [0; 32],
                    receipt: None,
                    duplicate: false,
                    within_grant,
                })
            })
            .await?;
        if !record.duplicate {
            let entry = c.entries.pop().ok_or_else(|| {
                BrokerError::Store(StoreError::Unavailable("no entry written".into()))
            })?;
            record.seq = entry.entry.seq;
            record.hash = entry.hash;
            record.receipt = c.receipt;
        }
        Ok(record)
    }

    // ---------------------------------------------------------- expiry ---

    fn track(&self, g: &Grant) {
        if let Some(d) = g.deadline() {
            self.expiry.insert(d, g.id.clone());
        }
    }

    /// Loads the deadlines of every live grant, and the grants that ended
    /// early but have not expired into the revocation lists (start-up).
    pub fn load_deadlines(&self) -> Result<usize> {
        let live = self.store.live_grants()?;
        for g in &live {
            self.track(g);
        }
        self.gate
            .load_ended(self.store.all_grants()?.iter(), self.clock.now());
        Ok(live.len())
    }

    /// The holder of an active grant gets a grant certificate for the key
    /// in `csr_pem` (logged as `grant.certificate_issued`).
    pub async fn issue_grant_certificate(
        &self,
        caller: &Caller,
        id: &str,
        csr_pem: &str,
    ) -> Result<Receipted<(Grant, IssuedCertificate)>> {
        let id = parse_grant_id(id)?;
        if csr_pem.trim().is_empty() {
            return Err(BrokerError::InvalidArgument(
                "csr_pem is empty: send a PEM certificate signing request made with your own key"
                    .into(),
            ));
        }
        if csr_pem.len() > MAX_CSR_BYTES {
            return Err(BrokerError::InvalidArgument(format!(
                "csr_pem is {} bytes; a certificate signing request has at most {MAX_CSR_BYTES}",
                csr_pem.len()
            )));
        }
        let actor = caller.actor();
        let (out, c) = self
            .store
            .commit(&*self.clock, |s, b, now| {
                let g = s.grant(&id)?.ok_or_else(|| not_found(&id))?;
                if !policy::may_use(caller, &g) {
                    return Err(not_found(&id));
                }
                if let Err(why) = g.is_valid_at(now) {
                    return Err(BrokerError::FailedPrecondition(format!(
                        "grant {id} is not active ({}): certificates are issued for active grants only",
                        why.as_str()
                    )));
                }
                let issued = self
                    .gate
                    .issue_certificate(&g, csr_pem, now)
                    .map_err(|e| BrokerError::InvalidArgument(e.to_string()))?;
                b.log(
                    grant_draft(&actor, &g, "grant.certificate_issued")
                        .with("serial", &issued.serial)
                        .with("not_after", issued.not_after),
                );
                Ok((g, issued))
            })
            .await?;
        Ok((out, c.receipt))
    }

    /// Closes the given grants whose deadline has passed, logging
    /// `grant.expired` or `grant.request_expired` once for each. Grants
    /// that ended otherwise in the meantime are skipped.
    pub async fn expire_due(&self, ids: &[GrantId]) -> Result<usize> {
        let (n, _) = self
            .store
            .commit(&*self.clock, |s, b, now| {
                let mut n = 0;
                for id in ids {
                    if let Some(mut g) = s.grant(id)? {
                        if g.state.is_live() && g.deadline().is_some_and(|d| now >= d) {
                            expire(&mut g, now, b);
                            n += 1;
                        }
                    }
                }
                Ok::<_, BrokerError>(n)
            })
            .await?;
        Ok(n)
    }

    // ----------------------------------------------------------- audit ---

    /// Logs that `caller` reads the log (export, replay, tail...).
    pub async fn log_audit_read(
        &self,
        caller: &Caller,
        from: u64,
        follow: bool,
        purpose: &str,
    ) -> Result<()> {
        let draft = Draft::new(caller.actor(), "", "audit.read")
            .with("from_seq", from)
            .with("follow", follow)
            .with("purpose", purpose);
        self.store.append(&*self.clock, vec![draft]).await?;
        Ok(())
    }

    /// Recomputes every stored entry's hash and link, then logs the result.
    pub async fn verify_chain(&self, caller: &Caller) -> Result<ChainReport> {
        // A full scan: keep it off the async workers.
        let store = self.store.clone();
        let report = tokio::task::spawn_blocking(move || check_chain(&store))
            .await
            .map_err(|e| StoreError::Unavailable(format!("verification task failed: {e}")))??;
        let mut draft = Draft::new(caller.actor(), "", "audit.verified")
            .with("entries", report.checked)
            .with("ok", report.problem.is_none());
        if let Some(p) = &report.problem {
            draft = draft
                .with("first_bad_seq", p.seq)
                .with("problem", p.to_string());
        }
        self.store.append(&*self.clock, vec![draft]).await?;
        Ok(report)
    }

    // ---------------------------------------------------- tree and proofs ---

    /// The newest durable checkpoint (`size` 0) or the one signed at
    /// exactly `size` entries.
    pub fn checkpoint(&self, size: u64) -> Result<SignedCheckpoint> {
        let now = self.store.durable_size();
        if size > now {
            return Err(BrokerError::OutOfRange(format!(
                "tree size {size} is beyond the log, which has {now} entries"
            )));
        }
        let found = if size == 0 {
            self.store.latest_checkpoint()
        } else {
            self.store.checkpoint_at(size)?
        };
        found.ok_or_else(|| {
            BrokerError::NotFound(if size == 0 {
                "the log is empty: there is no checkpoint yet".into()
            } else {
                format!(
                    "no checkpoint was signed at tree size {size} (checkpoints exist where a \
                     write ended; the newest is at {})",
                    self.store.durable_size()
                )
            })
        })
    }

    /// Entries `[start, end)`, at most [`MAX_PAGE`]; the read is logged.
    pub async fn entries(&self, caller: &Caller, start: u64, end: u64) -> Result<Vec<SealedEntry>> {
        let durable = self.store.durable_size();
        let end = match end {
            0 => start.saturating_add(MAX_PAGE),
            e if e < start => {
                return Err(BrokerError::InvalidArgument(format!(
                    "end ({e}) is before start ({start})"
                )));
            }
            e if e - start > MAX_PAGE => {
                return Err(BrokerError::InvalidArgument(format!(
                    "at most {MAX_PAGE} entries per call; ask for [{start}, {})",
                    start + MAX_PAGE
                )));
            }
            e => e,
        }
        .min(durable);
        self.log_audit_read(caller, start, false, "entries").await?;
        let n = end.saturating_sub(start) as usize;
        Ok(self
            .store
            .entries_from(start)
            .take(n)
            .collect::<std::result::Result<_, _>>()?)
    }

    /// An inclusion proof for one entry the caller may read; any other
    /// entry is answered as NOT_FOUND, like one that does not exist.
    pub fn inclusion_proof(&self, caller: &Caller, seq: u64, size: u64) -> Result<Inclusion> {
        let (size, checkpoint) = self.tree_size(size)?;
        let entry = match self.store.entry(seq)? {
            Some(e) if seq < size && policy::may_read_entry(caller, &e.entry) => e,
            _ => {
                return Err(BrokerError::NotFound(format!(
                    "no entry {seq} that you may read in the tree of {size} entries"
                )));
            }
        };
        let hashes = self.store.inclusion_proof(seq, size)?.map_err(proof_err)?;
        Ok(Inclusion {
            seq,
            size,
            leaf_hash: merkle::leaf_hash(&entry.entry.encode()),
            hashes,
            checkpoint,
        })
    }

    /// A consistency proof between two tree sizes (only hashes).
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Consistency> {
        let (new, checkpoint) = self.tree_size(new)?;
        if old > new {
            return Err(BrokerError::InvalidArgument(format!(
                "old_size {old} is larger than new_size {new}"
            )));
        }
        let hashes = self.store.consistency_proof(old, new)?.map_err(proof_err)?;
        Ok(Consistency {
            old,
            new,
            hashes,
            checkpoint,
        })
    }

    /// One page of a tenant's entries, each with an inclusion proof against
    /// one checkpoint. The read is logged.
    pub async fn tenant_entries(
        &self,
        caller: &Caller,
        tenant: &str,
        from: u64,
        limit: u32,
        size: u64,
    ) -> Result<TenantPage> {
        let tenant = match (tenant.trim(), caller.tenant()) {
            ("", Some(own)) => own.clone(),
            ("", None) => {
                return Err(BrokerError::InvalidArgument(
                    "name the tenant whose entries you want".into(),
                ));
            }
            (t, _) => Name::parse(t).map_err(|e| invalid_field("tenant", e))?,
        };
        if !policy::may_read_tenant_log(caller, &tenant) {
            return Err(BrokerError::PermissionDenied(
                "a tenant can read only its own entries".into(),
            ));
        }
        if self.store.tenant(&tenant)?.is_none() {
            return Err(BrokerError::NotFound(format!(
                "tenant {tenant} is not registered"
            )));
        }
        let limit = match limit {
            0 => MAX_TENANT_PAGE,
            l => l.min(MAX_TENANT_PAGE),
        } as usize;
        // The checkpoint is fixed before the read, so every proof is against it.
        let cp = self.checkpoint(size)?;
        let draft = Draft::new(caller.actor(), tenant.as_str(), "audit.read")
            .with("from_seq", from)
            .with("follow", false)
            .with("purpose", "tenant-entries")
            .with("tree_size", cp.size);
        self.store.append(&*self.clock, vec![draft]).await?;
        let mut entries = Vec::new();
        let mut next_seq = 0;
        for seq in self.store.tenant_seqs(tenant.as_str(), from) {
            let seq = seq?;
            if seq >= cp.size {
                break;
            }
            if entries.len() == limit {
                next_seq = seq;
                break;
            }
            let entry = self.store.entry(seq)?.ok_or_else(|| {
                StoreError::Corrupt(format!("entry {seq} is indexed but missing"))
            })?;
            let proof = self
                .store
                .inclusion_proof(seq, cp.size)?
                .map_err(proof_err)?;
            entries.push((entry, proof));
        }
        Ok(TenantPage {
            checkpoint: cp,
            entries,
            next_seq,
        })
    }

    /// Resolves a requested tree size (0: the newest durable checkpoint's).
    /// Returns the checkpoint too when it was chosen here.
    fn tree_size(&self, size: u64) -> Result<(u64, Option<SignedCheckpoint>)> {
        if size == 0 {
            let cp = self.checkpoint(0)?;
            return Ok((cp.size, Some(cp)));
        }
        let durable = self.store.durable_size();
        if size > durable {
            return Err(BrokerError::OutOfRange(format!(
                "tree size {size} is beyond the log's {durable} entries"
            )));
        }
        Ok((size, None))
    }

    /// Logs a server lifecycle event (`server.started`, `server.stopped`).
    pub async fn log_server(&self, kind: &'static str, detail: &str) -> Result<()> {
        let draft = Draft::new("system", "", kind)
            .with("version", env!("CARGO_PKG_VERSION"))
            .with("detail", detail);
        self.store.append(&*self.clock, vec![draft]).await?;
        Ok(())
    }
}

/// The stored chain, checked from seq 0 up to the head at the start of the
/// check: every stored hash recomputed, every link and sequence number, the
/// last hash against the recorded head, and every stored Merkle tree node
/// against the node computed from the entries.
pub fn check_chain(store: &Store) -> Result<ChainReport> {
    let head = store.head();
    let end = head.next_seq;
    let mut verifier = ChainVerifier::new();
    let mut tree = merkle::Frontier::new();
    let mut entries = store.entries_from(0).take(end as usize).peekable();
    let mut problem = None;
    while let Some(item) = entries.next() {
        let entry = match item {
            Ok(e) => e,
            Err(e) => {
                problem = Some(crate::audit::Problem {
                    seq: verifier.expected_seq(),
                    kind: ProblemKind::Malformed,
                    detail: e.to_string(),
                });
                break;
            }
        };
        let next = entries.peek().and_then(|n| n.as_ref().ok());
        if let Err(p) = verifier.push(&entry, next) {
            problem = Some(p);
            break;
        }
        // Every stored node the entry completes must be the one computed.
        let seq = entry.entry.seq;
        for (id, h) in tree.push(merkle::leaf_hash(&entry.entry.encode())) {
            if problem.is_none() && merkle::Nodes::node(store, id).ok() != Some(h) {
                problem = Some(crate::audit::Problem {
                    seq,
                    kind: ProblemKind::Unproven,
                    detail: format!(
                        "the stored Merkle tree node {}/{} does not match the entries: \
                         its nodes or the entries were changed",
                        id.level, id.index
                    ),
                });
            }
        }
        if problem.is_some() {
            break;
        }
    }
    if problem.is_none() && verifier.checked() != end {
        problem = Some(crate::audit::Problem {
            seq: verifier.expected_seq(),
            kind: ProblemKind::Deleted,
            detail: format!(
                "the log ends at {} but its head says {end}",
                verifier.expected_seq()
            ),
        });
    }
    if problem.is_none() && verifier.head() != head.prev_hash {
        problem = Some(crate::audit::Problem {
            seq: end.saturating_sub(1),
            kind: ProblemKind::Modified,
            detail: "the last entry's hash differs from the recorded head".into(),
        });
    }
    Ok(ChainReport {
        checked: verifier.checked(),
        head: verifier.head(),
        problem,
    })
}

fn grant_draft(actor: &str, g: &Grant, kind: &'static str) -> Draft {
    Draft::new(actor, g.tenant.as_str(), kind)
        .with("grant", &g.id)
        .with("holder", &g.holder)
}

fn activate(g: &mut Grant, now: Timestamp, actor: &str, b: &mut Batch) {
    g.state = GrantState::Active;
    g.pending_until = None;
    g.activated_at = Some(now);
    let expires = now.plus_secs(g.duration_secs);
    g.expires_at = Some(expires);
    b.log(grant_draft(actor, g, "grant.activated").with("expires_at", expires));
}

fn expire(g: &mut Grant, now: Timestamp, b: &mut Batch) {
    let deadline = g.deadline().unwrap_or(now);
    let kind = if g.state == GrantState::Pending {
        g.state = GrantState::RequestExpired;
        "grant.request_expired"
    } else {
        g.state = GrantState::Expired;
        "grant.expired"
    };
    g.ended_at = Some(deadline);
    b.log(grant_draft("system", g, kind).with("expired_at", deadline));
    b.put_grant(g.clone());
}

fn parse_grant_id(s: &str) -> Result<GrantId> {
    GrantId::parse(s.trim()).ok_or_else(|| {
        BrokerError::InvalidArgument(format!(
            "grant id {:?} is malformed: it looks like g- followed by 24 hex digits",
            truncate(s, 40)
        ))
    })
}

fn not_found(id: &GrantId) -> BrokerError {
    BrokerError::NotFound(format!("grant {id} not found"))
}

fn invalid(e: IdentityError) -> BrokerError {
    BrokerError::InvalidArgument(e.to_string())
}

fn invalid_field(field: &str, e: IdentityError) -> BrokerError {
    BrokerError::InvalidArgument(format!("{field}: {e}"))
}

/// A free-text field: trimmed, bounded, no control characters.
fn text_field(field: &str, value: &str, max_chars: usize, required: bool) -> Result<String> {
    let v = value.trim();
    if required && v.is_empty() {
        return Err(BrokerError::InvalidArgument(format!(
            "{field} is required and must not be blank"
        )));
    }
    if v.chars().count() > max_chars {
        return Err(BrokerError::InvalidArgument(format!(
            "{field} is longer than {max_chars} characters"
        )));
    }
    if v.chars().any(char::is_control) {
        return Err(BrokerError::InvalidArgument(format!(
            "{field} must not contain control characters"
        )));
    }
    if let Some(c) = v.chars().find(|&c| is_invisible_format(c)) {
        return Err(BrokerError::InvalidArgument(format!(
            "{field} must not contain invisible or direction-changing characters (found U+{:04X}); they make log views misleading",
            u32::from(c)
        )));
    }
    Ok(v.to_owned())
}

/// Characters that change how text around them is shown without being
/// seen: bidirectional marks, overrides and isolates, zero-width and other
/// invisible format characters (soft hyphen, grapheme joiner, Mongolian
/// vowel separator, interlinear annotation, tags), the byte-order mark,
/// line and paragraph separators. Refused in free text so
/// that a log entry reads as what it says.
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2028}'..='\u{2029}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{E0000}'..='\u{E007F}'
    )
}

/// What an access report says, hashed: a report id names one report.
fn report_fingerprint(grant: &GrantId, action: &str, resource: &str, accessed_at_ms: i64) -> Hash {
    let mut d = ring::digest::Context::new(&ring::digest::SHA256);
    for part in [grant.as_str(), action, resource] {
        d.update(&(part.len() as u64).to_be_bytes());
        d.update(part.as_bytes());
    }
    d.update(&accessed_at_ms.to_be_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.finish().as_ref());
    out
}

/// An access report id: empty (none), or 1 to 64 of `[A-Za-z0-9._:-]`.
fn parse_report_id(id: &str) -> Result<Option<String>> {
    if id.is_empty() {
        return Ok(None);
    }
    if id.len() > MAX_REPORT_ID_CHARS
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
    {
        return Err(BrokerError::InvalidArgument(format!(
            "report_id must be 1 to {MAX_REPORT_ID_CHARS} characters of A-Z a-z 0-9 . _ : -"
        )));
    }
    Ok(Some(id.to_owned()))
}

fn human_secs(s: i64) -> String {
    match s {
        s if s % 3600 == 0 => format!("{} h", s / 3600),
        s if s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}
