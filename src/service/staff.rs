//! Staff use cases: bootstrap the first admin, enrol (at most the
//! configured number of root holders), offboard (every live grant of theirs
//! revoked in the same commit), re-certify eligibility (four eyes), list;
//! and the holder checks grants make at request and approval (a current
//! confidentiality declaration, an eligibility that has not lapsed).
//!
//! Recertification (`staff.recertify_days`): the enrolment is a person's
//! first certification, each `staff.recertified` the next. It is checked
//! only when a grant is requested or approved: a grant already active
//! when its holder's eligibility lapses runs to its end (at most 24 h) and
//! is neither revoked nor cut short; the next request is refused.

use super::{Broker, BrokerError, Receipted, Result, receipt};
use crate::{
    clock::Timestamp,
    domain::{
        Actor, Draft, EventKind, GrantId, Name, Note, Role, StaffRecord, TenantRecord, detail,
        grant::Ending,
    },
    policy::Caller,
    policy::{self, Verdict},
    service::commands::{AddStaff, OffboardStaff, RecertifyStaff, RecordDeclaration},
};

impl Broker {
    /// Enrols `name` as an admin if, and only if, nobody is enrolled yet.
    pub async fn bootstrap_admin(&self, name: &Name) -> Result<bool> {
        let (created, _) = self
            .ledger
            .commit(&*self.clock, |s, b, now| {
                if !s.all_staff()?.is_empty() {
                    return Ok::<_, BrokerError>(false);
                }
                b.put_staff(StaffRecord {
                    name: name.clone(),
                    role: Role::Admin,
                    enrolled_at: now,
                    offboarded_at: None,
                    declaration: None,
                    recertified_at: None,
                });
                b.log(
                    Draft::new(Actor::System, "", EventKind::StaffBootstrapped)
                        .with(detail::NAME, name)
                        .with(detail::ROLE, Role::Admin)
                        .with(detail::SOURCE, "config bootstrap_admin"),
                );
                Ok(true)
            })
            .await?;
        Ok(created)
    }

    pub async fn add_staff(
        &self,
        caller: &Caller,
        cmd: AddStaff,
    ) -> Result<Receipted<StaffRecord>> {
        let AddStaff {
            name,
            role,
            location,
        } = cmd;
        let max_root = self.limits.max_root_holders;
        // The location register advances with the enrolment.
        let _one = self.location().writers_write().await;
        self.check_organisation(&location.organisation)?;
        let (rec, c) = self
            .ledger
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
                    declaration: None,
                    recertified_at: None,
                };
                b.put_staff(rec.clone());
                let mut enrolled = Draft::new(caller.actor(), "", EventKind::StaffEnrolled)
                    .with(detail::NAME, &name)
                    .with(detail::ROLE, role);
                // Only when given: an enrolment without them reads as before.
                if location != crate::domain::Location::default() {
                    enrolled = enrolled
                        .with(detail::COUNTRY, location.country_str())
                        .with(detail::ORGANISATION, &location.organisation);
                }
                b.log(enrolled);
                Ok(rec)
            })
            .await?;
        if let Some(c) = &c {
            self.location().advance(c.entries.iter().map(|e| &e.entry));
        }
        Ok((rec, receipt(c)?))
    }

    /// Offboards a person: every live grant they hold is revoked in the
    /// same commit, and their certificate stops working at once.
    pub async fn offboard_staff(
        &self,
        caller: &Caller,
        cmd: OffboardStaff,
    ) -> Result<Receipted<(StaffRecord, Vec<GrantId>)>> {
        let name = cmd.name;
        let actor = caller.actor();
        let no_note = Note::default();
        let (out, c) = self
            .ledger
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
                    b.log(g.end(Ending::Offboard, now, &actor, &no_note));
                    // Listed before the entry is durable (see `end`).
                    self.gate.note_ended(&g, now);
                    revoked.push(g.id.clone());
                    b.put_grant(g);
                }
                b.put_staff(rec.clone());
                b.log(
                    Draft::new(actor.clone(), "", EventKind::StaffOffboarded)
                        .with(detail::NAME, &name)
                        .with(detail::ROLE, rec.role)
                        .with(detail::REVOKED_GRANTS, revoked.len()),
                );
                Ok((rec, revoked))
            })
            .await?;
        Ok((out, receipt(c)?))
    }

    /// Records the confidentiality declaration `name` signed (replacing an
    /// older one on their record; every one stays in the log).
    pub async fn record_declaration(
        &self,
        caller: &Caller,
        cmd: RecordDeclaration,
    ) -> Result<Receipted<StaffRecord>> {
        let RecordDeclaration { name, declaration } = cmd;
        let actor = caller.actor();
        let (rec, c) = self
            .ledger
            .commit(&*self.clock, |s, b, now| {
                let Some(mut rec) = s.staff(&name)? else {
                    return Err(BrokerError::NotFound(format!("{name} is not enrolled")));
                };
                if !rec.is_active() {
                    return Err(BrokerError::FailedPrecondition(format!(
                        "{name} is offboarded: their record is closed"
                    )));
                }
                if declaration.signed_at().is_none_or(|t| t > now) {
                    return Err(BrokerError::InvalidArgument(format!(
                        "signed_on {} is in the future: give the day it was signed",
                        declaration.signed_on
                    )));
                }
                b.log(
                    Draft::new(actor.clone(), "", EventKind::StaffDeclarationRecorded)
                        .with(detail::NAME, &name)
                        .with(detail::DECLARATION_VERSION, &declaration.version)
                        .with(detail::SIGNED_ON, &declaration.signed_on)
                        .with(detail::DOCUMENT_SHA256, &declaration.document_sha256),
                );
                rec.declaration = Some(declaration);
                b.put_staff(rec.clone());
                Ok(rec)
            })
            .await?;
        Ok((rec, receipt(c)?))
    }

    /// Re-certifies `name`'s eligibility to hold grants (the next lapse is
    /// `staff.recertify_days` from now). An admin never re-certifies
    /// themselves; an offboarded person's record is closed.
    pub async fn recertify_staff(
        &self,
        caller: &Caller,
        cmd: RecertifyStaff,
    ) -> Result<Receipted<StaffRecord>> {
        let RecertifyStaff { name } = cmd;
        if let Verdict::Denied(why) = policy::may_recertify(caller, &name) {
            return Err(BrokerError::PermissionDenied(why.into()));
        }
        let actor = caller.actor();
        let (rec, c) = self
            .ledger
            .commit(&*self.clock, |s, b, now| {
                let Some(mut rec) = s.staff(&name)? else {
                    return Err(BrokerError::NotFound(format!("{name} is not enrolled")));
                };
                if !rec.is_active() {
                    return Err(BrokerError::FailedPrecondition(format!(
                        "{name} is offboarded: their record is closed and cannot be recertified"
                    )));
                }
                b.log(
                    Draft::new(actor.clone(), "", EventKind::StaffRecertified)
                        .with(detail::NAME, &name),
                );
                rec.recertified_at = Some(now);
                b.put_staff(rec.clone());
                Ok(rec)
            })
            .await?;
        Ok((rec, receipt(c)?))
    }

    /// When `rec`'s eligibility lapses, with `staff.recertify_days` set
    /// and the person still enrolled.
    pub fn certification_due(&self, rec: &StaffRecord) -> Option<Timestamp> {
        rec.certification_due(self.limits.recertify_days)
            .filter(|_| rec.is_active())
    }

    /// Why `holder` may not hold a grant at `now` because their last
    /// certification is more than `staff.recertify_days` days old, if so.
    pub(super) fn lapsed_eligibility(
        &self,
        holder: &Name,
        rec: Option<&StaffRecord>,
        now: Timestamp,
    ) -> Option<String> {
        let days = self.limits.recertify_days;
        let due = self.certification_due(rec?)?;
        (now > due).then(|| {
            let day = due.to_rfc3339().chars().take(10).collect::<String>();
            format!(
                "{holder}'s eligibility lapsed on {day} (recertify every {days} days): \
                 an admin must run `daypass staff recertify {holder}`"
            )
        })
    }

    /// Why `holder` may not hold a grant for `tenant` for want of a
    /// current confidentiality declaration, if so: the company's version
    /// (`staff.declaration_version`) when set, and for a tenant that
    /// requires one (`require_declaration`) at least some declaration.
    pub(super) fn lacks_declaration(
        &self,
        holder: &Name,
        tenant: &TenantRecord,
        rec: Option<&StaffRecord>,
    ) -> Option<String> {
        let required = self.limits.declaration_version.as_ref();
        let on_record = rec.and_then(|r| r.declaration.as_ref());
        let current = |d: &crate::domain::Declaration| required.is_none_or(|v| d.version == *v);
        if on_record.is_some_and(current) || (required.is_none() && !tenant.require_declaration) {
            return None;
        }
        let what = match required {
            Some(v) => format!("the confidentiality declaration {v}"),
            None => format!(
                "a confidentiality declaration, which tenant {} requires",
                tenant.name
            ),
        };
        let version = required.map(String::as_str).unwrap_or("V");
        Some(format!(
            "{holder} has not signed {what} (on record: {}); an admin records it with \
             `daypass staff declare {holder} --version {version} --signed-on DATE --document FILE`",
            match on_record {
                Some(d) => format!("version {} signed {}", d.version, d.signed_on),
                None => "none".into(),
            }
        ))
    }

    pub fn list_staff(&self) -> Result<Vec<StaffRecord>> {
        Ok(self.ledger.all_staff()?)
    }
}
