//! Personnel location, employer and sub-processors in the grant rules
//! (docs/compliance/location.md): the [`Register`] (staff locations, the
//! sub-processor register, tenants' own country lists and objections), a
//! fold over the log rebuilt at start-up and advanced by the commits that
//! change it; the rule that refuses a grant ([`Broker::location_refusal`]);
//! and the use cases that change the register, each re-checking the live
//! grants it affects and revoking (logged, with the reason) those a tenant
//! no longer allows.
//!
//! Not here: parsing countries and organisations ([`crate::domain::location`]),
//! who may call ([`crate::policy`]).

use std::collections::{BTreeMap, HashMap};

use super::{Broker, BrokerError, Receipted, Result, receipt};
use crate::{
    audit::Entry,
    clock::Timestamp,
    config::Config,
    domain::{
        Country, Draft, EventKind, Grant, GrantId, Location, Name, Note, Organisation, StaffRecord,
        Subprocessor, TenantRecord, detail,
        grant::Ending,
        location::{DEFAULT_ADEQUATE, day, parse_countries},
    },
    ledger::{Batch, Ledger, LedgerError, View},
    policy::Caller,
    service::commands::{AddSubprocessor, LocateStaff, ObjectToSubprocessor, SetTenantCountries},
};

/// The configured rules (`[location]`).
#[derive(Clone, Debug)]
pub struct LocationRules {
    /// Allowed outside the EU/EEA for every tenant without its own list.
    pub adequate: Vec<Country>,
    pub notice_secs: i64,
    pub notice_days: u32,
    pub require_country: bool,
}

impl From<&Config> for LocationRules {
    fn from(c: &Config) -> Self {
        let l = &c.location;
        LocationRules {
            // Checked when the config was loaded; a bad code is dropped.
            adequate: parse_countries("location.adequate", l.adequate.iter().map(String::as_str))
                .unwrap_or_else(|_| {
                    parse_countries("", DEFAULT_ADEQUATE.iter().copied()).unwrap_or_default()
                }),
            notice_secs: i64::from(l.subprocessor_notice_days) * 86_400,
            notice_days: l.subprocessor_notice_days,
            require_country: l.require_country,
        }
    }
}

/// What the log says about locations: a fold over its entries.
#[derive(Clone, Debug, Default)]
pub struct Register {
    staff: HashMap<Name, Location>,
    subprocessors: BTreeMap<Name, Subprocessor>,
    /// Tenants with their own list.
    countries: HashMap<Name, Vec<Country>>,
    /// tenant → sub-processor → when it objected.
    objections: HashMap<Name, BTreeMap<Name, Timestamp>>,
}

impl Register {
    /// Rebuilds the register from the whole log (at start-up).
    pub fn from_log(ledger: &Ledger) -> std::result::Result<Register, LedgerError> {
        let mut r = Register::default();
        let end = ledger.head().next_seq;
        for item in ledger.entries_from(0).take(end as usize) {
            r.apply_entry(&item?.entry);
        }
        Ok(r)
    }

    pub fn apply_entry(&mut self, e: &Entry) {
        if let Some(kind) = EventKind::parse(&e.kind) {
            self.apply(kind, &e.tenant, &e.details, e.timestamp);
        }
    }

    fn apply_draft(&mut self, d: &Draft, now: Timestamp) {
        self.apply(d.kind, &d.tenant, &d.details, now);
    }

    /// One entry's change. Entries that do not parse change nothing (the
    /// server wrote them; a malformed one is `audit check`'s business).
    fn apply(
        &mut self,
        kind: EventKind,
        tenant: &str,
        details: &BTreeMap<String, String>,
        at: Timestamp,
    ) {
        let get = |k: &str| details.get(k).map(String::as_str).unwrap_or_default();
        let named = |k: &str| Name::parse(get(k)).ok();
        match kind {
            EventKind::StaffEnrolled | EventKind::StaffBootstrapped | EventKind::StaffLocated => {
                let (Some(name), Ok(loc)) = (
                    named(detail::NAME),
                    Location::parse(get(detail::COUNTRY), get(detail::ORGANISATION)),
                ) else {
                    return;
                };
                self.staff.insert(name, loc);
            }
            EventKind::SubprocessorAdded => {
                let (Some(name), Ok(country)) = (
                    named(detail::SUBPROCESSOR),
                    Country::parse("country", get(detail::COUNTRY)),
                ) else {
                    return;
                };
                self.subprocessors.insert(
                    name.clone(),
                    Subprocessor {
                        name,
                        country,
                        purpose: get(detail::PURPOSE).to_owned(),
                        announced_at: at,
                    },
                );
            }
            EventKind::SubprocessorObjected => {
                let (Ok(t), Some(sp)) = (Name::parse(tenant), named(detail::SUBPROCESSOR)) else {
                    return;
                };
                self.objections
                    .entry(t)
                    .or_default()
                    .entry(sp)
                    .or_insert(at);
            }
            EventKind::TenantCountriesSet => {
                let Ok(t) = Name::parse(tenant) else { return };
                match parse_countries("", [get(detail::ALLOWED_COUNTRIES)]) {
                    Ok(list) if !list.is_empty() => {
                        self.countries.insert(t, list);
                    }
                    _ => {
                        self.countries.remove(&t);
                    }
                }
            }
            _ => {}
        }
    }

    /// A person's location (the default, unknown country and the company,
    /// for records made before locations existed).
    pub fn location(&self, name: &Name) -> Location {
        self.staff.get(name).cloned().unwrap_or_default()
    }

    pub fn subprocessors(&self) -> Vec<Subprocessor> {
        self.subprocessors.values().cloned().collect()
    }

    /// The tenant's own list, if it set one.
    pub fn own_countries(&self, tenant: &Name) -> Option<&Vec<Country>> {
        self.countries.get(tenant)
    }

    /// The countries a tenant's grant holders may work from: its own list,
    /// or EU/EEA plus the adequacy list; and whether it is its own.
    pub fn allowed_countries(&self, rules: &LocationRules, tenant: &Name) -> (Vec<Country>, bool) {
        match self.countries.get(tenant) {
            Some(list) => (list.clone(), true),
            None => {
                let mut all: Vec<Country> = crate::domain::location::EU_EEA
                    .iter()
                    .filter_map(|c| Country::parse("", c).ok())
                    .chain(rules.adequate.iter().cloned())
                    .collect();
                all.sort();
                all.dedup();
                (all, false)
            }
        }
    }

    pub fn objections(&self, tenant: &Name) -> Vec<(Name, Timestamp)> {
        self.objections
            .get(tenant)
            .map(|m| m.iter().map(|(n, t)| (n.clone(), *t)).collect())
            .unwrap_or_default()
    }

    /// Why `loc` may not hold a grant for `tenant` at `now`, if so: the
    /// message names the rule, what is on record and what would do.
    pub fn refusal(
        &self,
        rules: &LocationRules,
        holder: &Name,
        loc: &Location,
        tenant: &Name,
        now: Timestamp,
    ) -> Option<String> {
        let own = self.countries.get(tenant);
        let allowed_words = || match own {
            Some(list) => list
                .iter()
                .map(Country::as_str)
                .collect::<Vec<_>>()
                .join(", "),
            None => {
                let extra: Vec<&str> = rules.adequate.iter().map(Country::as_str).collect();
                if extra.is_empty() {
                    "EU/EEA".to_owned()
                } else {
                    format!("EU/EEA + {}", extra.join(", "))
                }
            }
        };
        match &loc.country {
            None if own.is_some() || rules.require_country => {
                return Some(format!(
                    "{holder}'s country is not recorded (unknown), and tenant {tenant} allows only \
                     (allowed: {}); an admin records it with `daypass staff locate {holder} \
                     --country CC`",
                    allowed_words()
                ));
            }
            None => {}
            Some(c) => {
                let ok = match own {
                    Some(list) => list.contains(c),
                    None => c.is_eu_eea() || rules.adequate.contains(c),
                };
                if !ok {
                    return Some(format!(
                        "country {c} is not allowed by tenant {tenant} (allowed: {})",
                        allowed_words()
                    ));
                }
            }
        }
        let sp = loc.organisation.subprocessor()?;
        if let Some(at) = self.objections.get(tenant).and_then(|m| m.get(sp)) {
            return Some(format!(
                "organisation {sp}: tenant {tenant} objected on {}",
                day(*at)
            ));
        }
        let Some(reg) = self.subprocessors.get(sp) else {
            return Some(format!(
                "organisation {sp} is not in the sub-processor register"
            ));
        };
        let usable = reg.announced_at.plus_secs(rules.notice_secs);
        if now < usable {
            return Some(format!(
                "organisation {sp} announced {}; usable for {tenant} from {} (notice period {} days)",
                day(reg.announced_at),
                day(usable),
                rules.notice_days
            ));
        }
        None
    }
}

/// The register and its writers' lock, held by the [`Broker`].
#[derive(Debug)]
pub struct LocationState {
    rules: LocationRules,
    register: parking_lot::RwLock<Register>,
    /// Grant requests and approvals read the register under `read`; a
    /// change to it holds `write` from its decision until the register is
    /// advanced, so no grant is decided on a register about to change.
    writers: tokio::sync::RwLock<()>,
}

impl LocationState {
    pub fn new(rules: LocationRules) -> LocationState {
        LocationState {
            rules,
            register: parking_lot::RwLock::new(Register::default()),
            writers: tokio::sync::RwLock::new(()),
        }
    }

    pub fn rules(&self) -> &LocationRules {
        &self.rules
    }

    /// A copy of the register as it is now.
    pub fn snapshot(&self) -> Register {
        self.register.read().clone()
    }

    pub fn location(&self, name: &Name) -> Location {
        self.register.read().location(name)
    }

    /// Held by grant requests and approvals while they decide.
    pub async fn reading(&self) -> tokio::sync::RwLockReadGuard<'_, ()> {
        self.writers.read().await
    }

    /// Held by a change to the register from its decision until it is
    /// advanced.
    pub async fn writers_write(&self) -> tokio::sync::RwLockWriteGuard<'_, ()> {
        self.writers.write().await
    }

    /// Folds committed entries into the register.
    pub fn advance<'a>(&self, entries: impl IntoIterator<Item = &'a Entry>) {
        let mut r = self.register.write();
        for e in entries {
            r.apply_entry(e);
        }
    }

    pub fn replace(&self, r: Register) {
        *self.register.write() = r;
    }
}

impl Broker {
    /// Rebuilds the location register from the log (at start-up).
    pub async fn rebuild_location(&self) -> std::result::Result<(), LedgerError> {
        let ledger = self.ledger.clone();
        let r = tokio::task::spawn_blocking(move || Register::from_log(&ledger))
            .await
            .map_err(|e| {
                LedgerError::Unavailable(format!("the location register was not rebuilt: {e}"))
            })??;
        self.location.replace(r);
        Ok(())
    }

    pub fn location(&self) -> &LocationState {
        &self.location
    }

    /// Why `holder` may not hold a grant for `tenant` now (their country or
    /// organisation), if so. Called under [`LocationState::reading`].
    pub(super) fn location_refusal(
        &self,
        holder: &Name,
        tenant: &TenantRecord,
        now: Timestamp,
    ) -> Option<String> {
        let r = self.location.register.read();
        let loc = r.location(holder);
        r.refusal(&self.location.rules, holder, &loc, &tenant.name, now)
    }

    /// Changes where `name` works and for whom; their live grants a tenant
    /// no longer allows are revoked in the same commit.
    pub async fn locate_staff(
        &self,
        caller: &Caller,
        cmd: LocateStaff,
    ) -> Result<Receipted<(StaffRecord, Location, Vec<GrantId>)>> {
        let LocateStaff { name, location } = cmd;
        let actor = caller.actor();
        let _one = self.location.writers.write().await;
        let mut next = self.location.snapshot();
        let (out, c) = self
            .ledger
            .commit(&*self.clock, |s, b, now| {
                let Some(rec) = s.staff(&name)? else {
                    return Err(BrokerError::NotFound(format!("{name} is not enrolled")));
                };
                if !rec.is_active() {
                    return Err(BrokerError::FailedPrecondition(format!(
                        "{name} is offboarded: their record is closed"
                    )));
                }
                self.known_organisation(&next, &location.organisation)?;
                let before = next.location(&name);
                let d = Draft::new(actor.clone(), "", EventKind::StaffLocated)
                    .with(detail::NAME, &name)
                    .with(detail::COUNTRY, location.country_str())
                    .with(detail::ORGANISATION, &location.organisation)
                    .with(detail::PREVIOUS_COUNTRY, before.country_str())
                    .with(detail::PREVIOUS_ORGANISATION, &before.organisation);
                next.apply_draft(&d, now);
                b.log(d);
                let revoked = self.recheck(&next, s, b, now, caller, |g| g.holder == name)?;
                Ok((rec, location.clone(), revoked))
            })
            .await?;
        self.location.replace(next);
        Ok((out, receipt(c)?))
    }

    /// Registers and announces a sub-processor: one entry for the register,
    /// one in each tenant's slice.
    pub async fn add_subprocessor(
        &self,
        caller: &Caller,
        cmd: AddSubprocessor,
    ) -> Result<Receipted<Subprocessor>> {
        let AddSubprocessor {
            name,
            country,
            purpose,
        } = cmd;
        let actor = caller.actor();
        let rules = self.location.rules.clone();
        let _one = self.location.writers.write().await;
        let mut next = self.location.snapshot();
        let (sp, c) = self
            .ledger
            .commit(&*self.clock, |_, b, now| {
                if next.subprocessors.contains_key(&name) || name.as_str() == Organisation::COMPANY
                {
                    return Err(BrokerError::AlreadyExists(format!(
                        "sub-processor {name} is already registered"
                    )));
                }
                // Committed tenants (one added in this same group is missed).
                let tenants = self.ledger.all_tenants()?;
                let usable = now.plus_secs(rules.notice_secs);
                let d = Draft::new(actor.clone(), "", EventKind::SubprocessorAdded)
                    .with(detail::SUBPROCESSOR, &name)
                    .with(detail::COUNTRY, &country)
                    .with(detail::PURPOSE, &purpose)
                    .with(detail::NOTICE_DAYS, rules.notice_days)
                    .with(detail::TENANTS_NOTIFIED, tenants.len());
                next.apply_draft(&d, now);
                b.log(d);
                for t in &tenants {
                    b.log(
                        Draft::new(
                            actor.clone(),
                            t.name.as_str(),
                            EventKind::SubprocessorAnnounced,
                        )
                        .with(detail::SUBPROCESSOR, &name)
                        .with(detail::COUNTRY, &country)
                        .with(detail::PURPOSE, &purpose)
                        .with(detail::ANNOUNCED_AT, now)
                        .with(detail::USABLE_FROM, usable),
                    );
                }
                next.subprocessors
                    .get(&name)
                    .cloned()
                    .ok_or_else(|| BrokerError::InvalidArgument("the sub-processor".into()))
            })
            .await?;
        self.location.replace(next);
        Ok((sp, receipt(c)?))
    }

    pub fn list_subprocessors(&self) -> Vec<Subprocessor> {
        self.location.register.read().subprocessors()
    }

    /// Sets (or, with an empty list, clears) a tenant's own allowed
    /// countries; its live grants are checked again.
    pub async fn set_tenant_countries(
        &self,
        caller: &Caller,
        cmd: SetTenantCountries,
    ) -> Result<Receipted<(TenantRecord, Vec<GrantId>)>> {
        let SetTenantCountries { tenant, countries } = cmd;
        let list = countries
            .iter()
            .map(Country::as_str)
            .collect::<Vec<_>>()
            .join(",");
        self.change_tenant(caller, &tenant, |actor, _| {
            Ok(
                Draft::new(actor, tenant.as_str(), EventKind::TenantCountriesSet)
                    .with(detail::ALLOWED_COUNTRIES, &list),
            )
        })
        .await
    }

    /// Records the tenant's objection to a sub-processor; that
    /// sub-processor's live grants for the tenant are revoked.
    pub async fn object_to_subprocessor(
        &self,
        caller: &Caller,
        cmd: ObjectToSubprocessor,
    ) -> Result<Receipted<(TenantRecord, Vec<GrantId>)>> {
        let ObjectToSubprocessor {
            tenant,
            subprocessor,
        } = cmd;
        // Another tenant's name is answered like one that does not exist.
        if !crate::policy::may_object_for(caller, &tenant) {
            return Err(BrokerError::NotFound(format!(
                "tenant {tenant} does not exist"
            )));
        }
        self.change_tenant(caller, &tenant, |actor, reg| {
            if !reg.subprocessors.contains_key(&subprocessor) {
                return Err(BrokerError::InvalidArgument(format!(
                    "subprocessor: {subprocessor} is not in the register (`daypass subprocessor list`)"
                )));
            }
            if reg
                .objections
                .get(&tenant)
                .is_some_and(|m| m.contains_key(&subprocessor))
            {
                return Err(BrokerError::AlreadyExists(format!(
                    "tenant {tenant} already objected to {subprocessor}"
                )));
            }
            Ok(
                Draft::new(actor, tenant.as_str(), EventKind::SubprocessorObjected)
                    .with(detail::SUBPROCESSOR, &subprocessor),
            )
        })
        .await
    }

    /// One change to a tenant's location rules (the entry `change` makes),
    /// then its live grants checked again.
    async fn change_tenant(
        &self,
        caller: &Caller,
        tenant: &Name,
        change: impl FnOnce(crate::domain::Actor, &Register) -> Result<Draft>,
    ) -> Result<Receipted<(TenantRecord, Vec<GrantId>)>> {
        let _one = self.location.writers.write().await;
        let mut next = self.location.snapshot();
        let (out, c) = self
            .ledger
            .commit(&*self.clock, |s, b, now| {
                let Some(rec) = s.tenant(tenant)? else {
                    return Err(BrokerError::NotFound(format!(
                        "tenant {tenant} does not exist"
                    )));
                };
                let d = change(caller.actor(), &next)?;
                next.apply_draft(&d, now);
                b.log(d);
                let revoked = self.recheck(&next, s, b, now, caller, |g| g.tenant == *tenant)?;
                Ok((rec, revoked))
            })
            .await?;
        self.location.replace(next);
        Ok((out, receipt(c)?))
    }

    /// Revokes every live grant `which` selects that `next` no longer
    /// allows, each logged with the reason.
    fn recheck(
        &self,
        next: &Register,
        s: &View<'_>,
        b: &mut Batch,
        now: Timestamp,
        caller: &Caller,
        which: impl Fn(&Grant) -> bool,
    ) -> Result<Vec<GrantId>> {
        let mut revoked = Vec::new();
        for mut g in s.live_grants()?.into_iter().filter(|g| which(g)) {
            // Past its deadline: the sweeper expires it (ending it early
            // now would contradict the log).
            if g.deadline().is_some_and(|d| now >= d) {
                continue;
            }
            let loc = next.location(&g.holder);
            let Some(why) = next.refusal(&self.location.rules, &g.holder, &loc, &g.tenant, now)
            else {
                continue;
            };
            let note = Note::parse(&crate::domain::truncate(
                &format!("location rule: {why}"),
                crate::domain::text::MAX_NOTE_CHARS - 1,
            ))
            .unwrap_or_default();
            b.log(
                g.end(Ending::Revoke, now, &caller.actor(), &note)
                    .with(detail::CAUSE, "location"),
            );
            self.gate.note_ended(&g, now);
            revoked.push(g.id.clone());
            b.put_grant(g);
        }
        Ok(revoked)
    }

    fn known_organisation(&self, r: &Register, o: &Organisation) -> Result<()> {
        match o.subprocessor() {
            Some(sp) if !r.subprocessors.contains_key(sp) => {
                Err(BrokerError::InvalidArgument(format!(
                    "organisation: {sp} is not in the sub-processor register (`daypass subprocessor list`; \
                     `daypass subprocessor add` registers it)"
                )))
            }
            _ => Ok(()),
        }
    }

    /// Checks an enrolment's organisation against the register.
    pub(super) fn check_organisation(&self, o: &Organisation) -> Result<()> {
        self.known_organisation(&self.location.register.read(), o)
    }
}
