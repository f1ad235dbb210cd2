//! The staff entries' part of the log's semantics: enrolment (at most the
//! allowed root holders; a bootstrap only into an empty registry),
//! offboarding once, and confidentiality declarations only for enrolled,
//! active staff.

use super::LogState;
use crate::{
    audit::Entry,
    domain::{EventKind, Role, StaffRecord, detail},
};

impl LogState {
    pub(super) fn staff_enrolled(&mut self, kind: EventKind, e: &Entry) -> Result<(), String> {
        let now = e.timestamp;
        let name = self.name(e, detail::NAME)?;
        let role = e
            .details
            .get(detail::ROLE)
            .and_then(|r| Role::parse(r))
            .ok_or("the role is missing or unknown")?;
        if kind == EventKind::StaffBootstrapped && !self.staff.is_empty() {
            return Err("an admin was bootstrapped although staff were enrolled".into());
        }
        if self.staff.contains_key(&name) {
            return Err(format!("{name} was already enrolled"));
        }
        if role == Role::Root && self.active_roots() >= self.rules.max_root_holders {
            return Err(format!(
                "{name} is enrolled as a root holder beside {} others (at most {})",
                self.active_roots(),
                self.rules.max_root_holders
            ));
        }
        let rec = StaffRecord {
            name: name.clone(),
            role,
            enrolled_at: now,
            offboarded_at: None,
            declaration: None,
        };
        self.staff.insert(name, (rec, e.seq));
        Ok(())
    }

    pub(super) fn staff_offboarded(&mut self, e: &Entry) -> Result<(), String> {
        let now = e.timestamp;
        let name = self.name(e, detail::NAME)?;
        let seq = e.seq;
        let (rec, at) = self
            .staff
            .get_mut(&name)
            .ok_or_else(|| format!("{name} is offboarded but was never enrolled"))?;
        if !rec.is_active() {
            return Err(format!("{name} was already offboarded"));
        }
        rec.offboarded_at = Some(now);
        *at = seq;
        Ok(())
    }

    pub(super) fn declaration_recorded(&mut self, e: &Entry) -> Result<(), String> {
        let name = self.name(e, detail::NAME)?;
        let d = |k: &str| e.details.get(k).map(String::as_str).unwrap_or_default();
        let declaration = crate::domain::Declaration::parse(
            d(detail::DECLARATION_VERSION),
            d(detail::SIGNED_ON),
            d(detail::DOCUMENT_SHA256),
        )?;
        let seq = e.seq;
        let (rec, at) = self
            .staff
            .get_mut(&name)
            .ok_or_else(|| format!("a declaration is recorded for {name}, never enrolled"))?;
        if !rec.is_active() {
            return Err(format!(
                "a declaration is recorded for {name} after offboarding"
            ));
        }
        rec.declaration = Some(declaration);
        *at = seq;
        Ok(())
    }
}
