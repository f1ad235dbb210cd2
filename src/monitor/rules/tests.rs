//! Each rule with scripted entries on an injected timeline: it fires on
//! the activity it is for, stays silent on the ordinary, and respects its
//! settings and the cool-down.

use std::collections::BTreeMap;

use super::*;
use crate::{audit::entry::GENESIS_PREV_HASH, monitor::settings::UtcOffset};

/// Wednesday 2026-12-02 10:00 UTC (11:00 at +01:00): inside office hours.
const WED_10: i64 = 1_796_205_600_000;
const MIN: i64 = 60_000;

struct Script {
    seq: u64,
    t: i64,
    rules: Rules,
    staff: HashMap<String, StaffRecord>,
}

impl Script {
    fn new(s: AlertSettings) -> Script {
        let mut staff = HashMap::new();
        for (name, role, off) in [
            ("alice", Role::Support, None),
            ("bob", Role::Support, None),
            ("rita", Role::Root, None),
            ("pat", Role::Partnerships, None),
            ("olga", Role::Support, Some(Timestamp(WED_10 - 60 * MIN))),
        ] {
            staff.insert(
                name.to_owned(),
                StaffRecord {
                    name: Name::parse(name).expect("name"),
                    role,
                    enrolled_at: Timestamp(0),
                    offboarded_at: off,
                    declaration: None,
                    recertified_at: None,
                },
            );
        }
        Script {
            seq: 0,
            t: WED_10,
            rules: Rules::new(s),
            staff,
        }
    }

    fn at(&mut self, t: i64) -> &mut Self {
        self.t = t;
        self
    }

    fn after(&mut self, ms: i64) -> &mut Self {
        self.t += ms;
        self
    }

    fn entry(
        &mut self,
        actor: &str,
        tenant: &str,
        kind: EventKind,
        d: &[(&str, String)],
    ) -> Vec<Finding> {
        let e = Entry {
            seq: self.seq,
            timestamp: Timestamp(self.t),
            actor: actor.to_owned(),
            tenant: tenant.to_owned(),
            kind: kind.as_str().to_owned(),
            details: d
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect::<BTreeMap<_, _>>(),
            sealed: None,
            prev_hash: GENESIS_PREV_HASH,
        };
        self.seq += 1;
        let staff = self.staff.clone();
        let dir = move |n: &Name| staff.get(n.as_str()).cloned();
        self.rules.observe(&e, &dir)
    }

    fn request(&mut self, holder: &str, tenant: &str) -> Vec<Finding> {
        self.entry(
            &format!("staff/{holder}"),
            tenant,
            EventKind::GrantRequested,
            &[(detail::HOLDER, holder.into())],
        )
    }

    fn activate(&mut self, holder: &str, tenant: &str, secs: i64) -> Vec<Finding> {
        let exp = Timestamp(self.t).plus_secs(secs);
        self.entry(
            "system",
            tenant,
            EventKind::GrantActivated,
            &[
                (detail::HOLDER, holder.into()),
                (detail::EXPIRES_AT, exp.to_string()),
            ],
        )
    }

    fn end(&mut self, holder: &str, tenant: &str, kind: EventKind) -> Vec<Finding> {
        self.entry("system", tenant, kind, &[(detail::HOLDER, holder.into())])
    }

    fn denied(&mut self, holder: &str, tenant: &str) -> Vec<Finding> {
        self.entry(
            &format!("tenant/{tenant}"),
            tenant,
            EventKind::ValidationDenied,
            &[(detail::HOLDER, holder.into())],
        )
    }

    fn refused(&mut self, actor: &str, code: &str) -> Vec<Finding> {
        self.entry(
            actor,
            "",
            EventKind::CallRefused,
            &[
                (detail::CALL, "RequestGrant".into()),
                (detail::CODE, code.into()),
            ],
        )
    }
}

fn rules_of(f: &[Finding]) -> Vec<Rule> {
    f.iter().map(|f| f.rule).collect()
}

#[test]
fn an_ordinary_day_raises_nothing() {
    let mut s = Script::new(AlertSettings::default());
    for i in 0..40 {
        let holder = if i % 2 == 0 { "alice" } else { "bob" };
        let tenant = ["acme", "globex", "initech"][i % 3];
        s.at(WED_10 + i as i64 * 10 * MIN);
        assert!(s.request(holder, tenant).is_empty());
        assert!(s.activate(holder, tenant, 3600).is_empty());
        for _ in 0..3 {
            s.after(MIN);
            assert!(
                s.entry(
                    &format!("tenant/{tenant}"),
                    tenant,
                    EventKind::ValidationAllowed,
                    &[(detail::HOLDER, holder.into())]
                )
                .is_empty()
            );
        }
        assert!(s.denied(holder, tenant).is_empty());
        s.after(MIN);
        assert!(s.end(holder, tenant, EventKind::GrantReleased).is_empty());
    }
}

#[test]
fn off_hours_fires_at_night_and_at_weekends_in_the_configured_zone() {
    let mut s = Script::new(AlertSettings::default());
    // 18:30 UTC is 19:30 at +01:00: after the 19:00 end.
    s.at(WED_10 + 8 * 60 * MIN + 30 * MIN);
    let f = s.activate("alice", "acme", 3600);
    assert_eq!(rules_of(&f), [Rule::OffHours]);
    assert_eq!(f[0].subject, "staff/alice");
    assert_eq!(f[0].tenant, "acme");
    // The cool-down holds a second one back; an hour later it fires again.
    assert!(s.after(MIN).activate("alice", "acme", 60).is_empty());
    assert_eq!(
        rules_of(&s.after(61 * MIN).activate("alice", "acme", 60)),
        [Rule::OffHours]
    );
    // Saturday 11:00 local.
    s.at(WED_10 + 3 * 24 * 60 * MIN);
    assert_eq!(rules_of(&s.activate("bob", "acme", 60)), [Rule::OffHours]);

    // The same instant is inside the hours of a zone 9 h further west.
    let mut west = AlertSettings::default();
    west.office_hours.utc_offset = UtcOffset(-8 * 60);
    west.office_hours.days.push(Weekday::Sat);
    let mut s = Script::new(west);
    s.at(WED_10 + 8 * 60 * MIN + 30 * MIN);
    assert!(s.activate("alice", "acme", 3600).is_empty());
    let mut off = AlertSettings::default();
    off.office_hours.enabled = false;
    let mut s = Script::new(off);
    s.at(WED_10 + 12 * 60 * MIN);
    assert!(s.activate("alice", "acme", 3600).is_empty());
}

#[test]
fn many_tenants_within_the_window() {
    let mut s = Script::new(AlertSettings::default());
    for t in ["t1", "t2", "t3", "t4", "t5", "t6", "t7"] {
        assert!(s.after(MIN).request("alice", t).is_empty());
    }
    // Repeats of one tenant do not count twice.
    assert!(s.after(MIN).request("alice", "t7").is_empty());
    let f = s.after(MIN).request("alice", "t8");
    assert_eq!(rules_of(&f), [Rule::ManyTenants]);
    assert_eq!(f[0].seqs.len(), 9);
    // Spread over more than the window (2 h): silent.
    let mut s = Script::new(AlertSettings::default());
    for i in 0..20 {
        assert!(
            s.after(20 * MIN)
                .request("alice", &format!("t{i}"))
                .is_empty()
        );
    }
}

#[test]
fn renewal_chains_past_24_hours() {
    let mut s = Script::new(AlertSettings::default());
    assert!(s.activate("alice", "acme", 20 * 3600).is_empty());
    s.after(20 * 60 * MIN);
    assert!(s.end("alice", "acme", EventKind::GrantExpired).is_empty());
    // Re-requested an hour after the end: the chain goes on to 29 h.
    s.at(WED_10 + 21 * 60 * MIN);
    let f = s.activate("alice", "acme", 8 * 3600);
    assert!(rules_of(&f).contains(&Rule::RenewalChain), "{f:?}");
    let chain = f
        .iter()
        .find(|f| f.rule == Rule::RenewalChain)
        .expect("chain");
    assert_eq!(chain.seqs, vec![0, 2]);

    // A long enough break starts a new chain.
    let mut s = Script::new(AlertSettings::default());
    assert!(s.activate("bob", "acme", 20 * 3600).is_empty());
    s.after(60 * MIN);
    assert!(s.end("bob", "acme", EventKind::GrantReleased).is_empty());
    s.after(5 * 60 * MIN);
    let f = s.activate("bob", "acme", 20 * 3600);
    assert!(!rules_of(&f).contains(&Rule::RenewalChain), "{f:?}");
}

#[test]
fn bursts_of_denied_validations_per_person_and_per_tenant() {
    let mut s = Script::new(AlertSettings::default());
    for i in 0..9 {
        assert!(
            s.after(MIN / 2)
                .denied(if i % 2 == 0 { "alice" } else { "bob" }, "acme")
                .is_empty()
        );
    }
    let f = s.after(MIN / 2).denied("alice", "acme");
    assert_eq!(rules_of(&f), [Rule::DeniedBurst]);
    assert_eq!(f[0].subject, "tenant/acme");
    assert_eq!(f[0].seqs.len(), 10);
    // A person's burst across tenants is no single tenant's to read.
    let mut s = Script::new(AlertSettings::default());
    let mut found = Vec::new();
    for i in 0..10 {
        found.extend(s.after(MIN / 2).denied("alice", &format!("t{i}")));
    }
    assert_eq!(rules_of(&found), [Rule::DeniedBurst]);
    assert_eq!(
        (found[0].subject.as_str(), found[0].tenant.as_str()),
        ("staff/alice", "")
    );
    // Slow denials never add up.
    let mut s = Script::new(AlertSettings::default());
    for _ in 0..30 {
        assert!(s.after(2 * MIN).denied("alice", "acme").is_empty());
    }
}

#[test]
fn offboarded_certificates_and_no_access_roles() {
    let mut s = Script::new(AlertSettings::default());
    let f = s.refused("staff/olga", "permission-denied");
    assert_eq!(rules_of(&f), [Rule::OffboardedUse]);
    assert_eq!(f[0].severity, Severity::Critical);
    let f = s.refused("staff/pat", "permission-denied");
    assert_eq!(rules_of(&f), [Rule::NoAccessRole]);
    // An ordinary refusal of a support engineer is not an alert.
    assert!(s.refused("staff/alice", "failed-precondition").is_empty());
}

#[test]
fn access_outside_a_grant_root_activity_and_failed_checks() {
    let mut s = Script::new(AlertSettings::default());
    let f = s.entry(
        "tenant/acme",
        "acme",
        EventKind::AccessRecorded,
        &[
            (detail::HOLDER, "alice".into()),
            (detail::WITHIN_GRANT, "false".into()),
        ],
    );
    assert_eq!(rules_of(&f), [Rule::OutsideGrant]);
    assert!(
        s.entry(
            "tenant/acme",
            "acme",
            EventKind::AccessRecorded,
            &[
                (detail::HOLDER, "bob".into()),
                (detail::WITHIN_GRANT, "true".into())
            ]
        )
        .is_empty()
    );
    let f = s.request("rita", "acme");
    assert_eq!(rules_of(&f), [Rule::RootActivity]);
    assert_eq!(f[0].severity, Severity::Info);
    let f = s.entry(
        "auditor/eve",
        "",
        EventKind::AuditVerified,
        &[
            (detail::OK, "false".into()),
            (detail::FIRST_BAD_SEQ, "7".into()),
        ],
    );
    assert_eq!(rules_of(&f), [Rule::ChainCheckFailed]);
    assert!(
        s.entry(
            "auditor/eve",
            "",
            EventKind::AuditVerified,
            &[(detail::OK, "true".into())]
        )
        .is_empty()
    );
}

#[test]
fn rate_limit_floods_count_unlogged_refusals_too() {
    let mut s = Script::new(AlertSettings::default());
    assert!(s.refused("staff/alice", "resource-exhausted").is_empty());
    let f = s.after(1000).entry(
        "staff/alice",
        "",
        EventKind::CallRefused,
        &[
            (detail::CODE, "resource-exhausted".into()),
            (detail::UNLOGGED_REFUSALS_BEFORE, "25".into()),
        ],
    );
    assert_eq!(rules_of(&f), [Rule::RateFlood]);
}

#[test]
fn judging_the_same_entries_again_gives_the_same_findings() {
    let script = |s: &mut Script| {
        let mut all = Vec::new();
        for i in 0..30 {
            s.at(WED_10 + i * 37 * MIN);
            all.extend(s.request("alice", &format!("t{}", i % 7)));
            all.extend(s.activate("alice", &format!("t{}", i % 7), 3600));
            all.extend(s.denied("bob", "acme"));
        }
        all
    };
    let a = script(&mut Script::new(AlertSettings::default()));
    let b = script(&mut Script::new(AlertSettings::default()));
    assert!(!a.is_empty());
    assert_eq!(a, b);
}

#[test]
fn every_break_glass_opening_and_unjustified_review_raises_critical() {
    let mut s = Script::new(AlertSettings::default());
    let open = |s: &mut Script, grant: &str| {
        let exp = Timestamp(s.t).plus_secs(3600);
        s.entry(
            "staff/alice",
            "acme",
            EventKind::GrantActivated,
            &[
                (detail::HOLDER, "alice".into()),
                (detail::GRANT, grant.into()),
                (detail::EXPIRES_AT, exp.to_string()),
                (detail::BREAK_GLASS, "true".into()),
            ],
        )
    };
    let f = open(&mut s, "g-1");
    assert_eq!(rules_of(&f), [Rule::BreakGlass]);
    assert_eq!(f[0].severity, Severity::Critical);
    assert_eq!(
        (f[0].subject.as_str(), f[0].tenant.as_str()),
        ("staff/alice", "acme")
    );
    assert!(f[0].summary.contains("g-1"), "{}", f[0].summary);
    // No cool-down: the next opening, a minute later, raises too.
    s.after(MIN);
    assert_eq!(rules_of(&open(&mut s, "g-2")), [Rule::BreakGlass]);
    // An ordinary activation does not.
    assert!(s.activate("bob", "acme", 3600).is_empty());
    let review = |s: &mut Script, verdict: &str| {
        s.entry(
            "staff/rita",
            "acme",
            EventKind::GrantReviewed,
            &[
                (detail::HOLDER, "alice".into()),
                (detail::GRANT, "g-1".into()),
                (detail::VERDICT, verdict.into()),
            ],
        )
    };
    // rita is a root holder: her review is also root activity (info).
    let f = review(&mut s, "justified");
    assert_eq!(rules_of(&f), [Rule::RootActivity]);
    let f = review(&mut s, "unjustified");
    assert_eq!(
        rules_of(&f),
        [Rule::RootActivity, Rule::BreakGlassUnjustified]
    );
    assert_eq!(f[1].severity, Severity::Critical);
}
