//! The staff entries' part of the log's semantics: enrolment (at most the
//! allowed root holders; a bootstrap only into an empty registry),
//! offboarding once, confidentiality declarations only for enrolled,
//! active staff, and re-certifications of an enrolled, active person only
//! by an active admin other than them (four eyes).

use super::LogState;
use crate::{
    audit::Entry,
    domain::{EventKind, Name, Role, StaffRecord, detail},
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
            recertified_at: None,
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

    pub(super) fn recertified(&mut self, e: &Entry) -> Result<(), String> {
        let name = self.name(e, detail::NAME)?;
        let by = e
            .actor
            .strip_prefix("staff/")
            .and_then(|n| Name::parse(n).ok())
            .and_then(|n| self.staff.get(&n))
            .filter(|(r, _)| r.is_active() && r.role == Role::Admin)
            .map(|(r, _)| r.name.clone())
            .ok_or_else(|| {
                format!(
                    "{name} is recertified by {}, who is not an enrolled admin",
                    e.actor
                )
            })?;
        if by == name {
            return Err(format!("{name} recertified themselves"));
        }
        let (now, seq) = (e.timestamp, e.seq);
        let (rec, at) = self
            .staff
            .get_mut(&name)
            .ok_or_else(|| format!("{name} is recertified, never enrolled"))?;
        if !rec.is_active() {
            return Err(format!("{name} is recertified after offboarding"));
        }
        rec.recertified_at = Some(now);
        *at = seq;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{audit::entry::GENESIS_PREV_HASH, clock::Timestamp};

    fn entry(seq: u64, actor: &str, kind: EventKind, details: &[(&str, &str)]) -> Entry {
        Entry {
            seq,
            timestamp: Timestamp(1_000 + seq as i64),
            actor: actor.into(),
            tenant: String::new(),
            kind: kind.as_str().to_owned(),
            details: details
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            sealed: None,
            prev_hash: GENESIS_PREV_HASH,
        }
    }

    /// ada (admin, bootstrapped), bob (admin), alice (support), carl
    /// (support, offboarded).
    fn state() -> LogState {
        let mut s = LogState::default();
        let enrol = |seq, kind, name, role| {
            entry(
                seq,
                "staff/ada",
                kind,
                &[(detail::NAME, name), (detail::ROLE, role)],
            )
        };
        for e in [
            enrol(0, EventKind::StaffBootstrapped, "ada", "admin"),
            enrol(1, EventKind::StaffEnrolled, "bob", "admin"),
            enrol(2, EventKind::StaffEnrolled, "alice", "support"),
            enrol(3, EventKind::StaffEnrolled, "carl", "support"),
            entry(
                4,
                "staff/ada",
                EventKind::StaffOffboarded,
                &[(detail::NAME, "carl")],
            ),
        ] {
            s.apply(&e).expect("a well-formed log");
        }
        s
    }

    fn recertified(seq: u64, actor: &str, name: &str) -> Entry {
        entry(
            seq,
            actor,
            EventKind::StaffRecertified,
            &[(detail::NAME, name)],
        )
    }

    #[test]
    fn a_recertification_by_another_admin_sets_the_last_certification() {
        let mut s = state();
        let name = Name::parse("alice").unwrap();
        assert_eq!(s.staff[&name].0.last_certified(), Timestamp(1_002));
        s.apply(&recertified(9, "staff/bob", "alice")).expect("ok");
        assert_eq!(s.staff[&name].0.recertified_at, Some(Timestamp(1_009)));
        assert_eq!(s.staff[&name].1, 9, "the entry that last set the record");
        // An admin may be recertified too, by another admin.
        s.apply(&recertified(10, "staff/ada", "bob")).expect("ok");
    }

    #[test]
    fn a_recertification_the_log_does_not_allow_is_a_contradiction() {
        let cases = [
            (recertified(9, "staff/ada", "ada"), "recertified themselves"),
            (
                recertified(9, "staff/alice", "alice"),
                "not an enrolled admin",
            ),
            (
                recertified(9, "staff/alice", "bob"),
                "not an enrolled admin",
            ),
            (
                recertified(9, "staff/carl", "alice"),
                "not an enrolled admin",
            ),
            (
                recertified(9, "staff/zed", "alice"),
                "not an enrolled admin",
            ),
            (
                recertified(9, "tenant/acme", "alice"),
                "not an enrolled admin",
            ),
            (recertified(9, "system", "alice"), "not an enrolled admin"),
            (recertified(9, "staff/ada", "carl"), "after offboarding"),
            (recertified(9, "staff/ada", "nobody"), "never enrolled"),
            (
                entry(9, "staff/ada", EventKind::StaffRecertified, &[]),
                "name is missing",
            ),
        ];
        for (e, says) in cases {
            let mut s = state();
            let c = s.apply(&e).expect_err(says);
            assert_eq!(c.seq, 9);
            assert!(c.why.contains(says), "{says}: {}", c.why);
        }
        // An admin offboarded since can no longer recertify anyone.
        let mut s = state();
        s.apply(&entry(
            5,
            "staff/ada",
            EventKind::StaffOffboarded,
            &[(detail::NAME, "bob")],
        ))
        .unwrap();
        let c = s.apply(&recertified(9, "staff/bob", "alice")).unwrap_err();
        assert!(c.why.contains("not an enrolled admin"), "{}", c.why);
    }

    #[test]
    fn a_stored_certification_the_log_does_not_vouch_for_is_a_mismatch() {
        let s = state();
        let mut forged = s.staff[&Name::parse("alice").unwrap()].0.clone();
        forged.recertified_at = Some(Timestamp(5_000));
        let all: Vec<_> = s
            .staff
            .values()
            .map(|(r, _)| {
                if r.name == forged.name {
                    forged.clone()
                } else {
                    r.clone()
                }
            })
            .collect();
        let m = s.compare(&all, &[], &[]);
        assert_eq!(m.len(), 1, "{m:?}");
        assert_eq!(m[0].record, "staff/alice");
        assert!(m[0].why.contains("last certified"), "{}", m[0].why);
    }
}
