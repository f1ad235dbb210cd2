//! The register's fold: what the entries rebuild and which entries contradict the log.

use super::*;
use crate::{audit::entry::GENESIS_PREV_HASH, domain::incident::ContactPoint};

const HOUR: i64 = 3_600_000;

/// The one place these tests build an entry.
fn entry(seq: u64, at: i64, d: &Draft) -> Entry {
    Entry {
        seq,
        timestamp: Timestamp(at),
        actor: d.actor.to_string(),
        tenant: d.tenant.clone(),
        kind: d.kind.as_str().to_owned(),
        details: d.details.clone(),
        sealed: None,
        prev_hash: GENESIS_PREV_HASH,
    }
}

fn name(s: &str) -> Name {
    Name::parse(s).unwrap()
}

fn report(tenants: &[&str]) -> IncidentReport {
    IncidentReport {
        nature: "laptop stolen".into(),
        subject_categories: vec!["customers".into(), "staff".into()],
        data_categories: vec!["e-mail".into()],
        approx_subjects: 3,
        approx_records: 4,
        contact: ContactPoint {
            name: "Dana".into(),
            email: "dpo@example.com".into(),
        },
        consequences: "phishing".into(),
        measures: "wiped".into(),
        became_known_at: Timestamp(10 * HOUR),
        tenants: tenants.iter().map(|t| name(t)).collect(),
        evidence: vec![1],
    }
}

fn apply(reg: &mut IncidentRegister, e: &Entry) -> Result<(), String> {
    reg.apply(EventKind::parse(&e.kind).unwrap(), e)
}

fn admin() -> Actor {
    Actor::System
}

#[test]
fn the_entries_of_one_recording_rebuild_the_report_and_every_tenants_clock() {
    let id = IncidentId::random();
    let r = report(&["acme", "globex"]);
    let mut reg = IncidentRegister::default();
    let at = 11 * HOUR;
    for (n, d) in recorded_drafts(&id, &r, &admin()).iter().enumerate() {
        apply(&mut reg, &entry(5 + n as u64, at, d)).unwrap();
    }
    let i = reg.get(&id).unwrap();
    assert_eq!(i.report, r);
    assert_eq!(i.clocks.len(), 2);
    assert_eq!(i.clocks[&name("acme")].due_at, Timestamp(34 * HOUR));
    assert_eq!(
        i.clocks[&name("acme")].status(Timestamp(35 * HOUR)),
        ClockStatus::Overdue
    );
    assert_eq!(reg.next_due(), Some(Timestamp(34 * HOUR)));
    // The same recording again, later, is a contradiction.
    let again = recorded_drafts(&id, &r, &admin());
    assert!(apply(&mut reg, &entry(9, at + 1, &again[0])).is_err());
}

#[test]
fn a_notification_stops_the_clock_and_overdue_entries_must_be_true() {
    let id = IncidentId::random();
    let r = report(&["acme", "globex"]);
    let mut reg = IncidentRegister::default();
    for (n, d) in recorded_drafts(&id, &r, &admin()).iter().enumerate() {
        apply(&mut reg, &entry(5 + n as u64, 11 * HOUR, d)).unwrap();
    }
    let told = Notification {
        tenant: name("acme"),
        notified_at: Timestamp(12 * HOUR),
        channel: "phone".into(),
        by: "Dana".into(),
    };
    let d = notified_draft(&id, &told, &admin());
    apply(&mut reg, &entry(7, 13 * HOUR, &d)).unwrap();
    assert_eq!(
        reg.get(&id).unwrap().clocks[&name("acme")].status(Timestamp(40 * HOUR)),
        ClockStatus::Notified
    );
    // Only globex is left to be logged overdue, and only after due.
    let due = Timestamp(34 * HOUR);
    assert_eq!(
        reg.overdue_unlogged(Timestamp(35 * HOUR)),
        vec![(id.clone(), name("globex"), due)]
    );
    let early = overdue_draft(&id, &name("globex"), due);
    assert!(apply(&mut reg, &entry(8, 34 * HOUR, &early)).is_err());
    let after_notice = overdue_draft(&id, &name("acme"), due);
    assert!(apply(&mut reg, &entry(8, 35 * HOUR, &after_notice)).is_err());
    apply(&mut reg, &entry(8, 35 * HOUR, &early)).unwrap();
    assert!(
        apply(&mut reg, &entry(9, 36 * HOUR, &early)).is_err(),
        "only once"
    );
    assert!(reg.overdue_unlogged(Timestamp(40 * HOUR)).is_empty());
    assert_eq!(reg.next_due(), None);

    // A notification dated before the breach became known is refused.
    let before = Notification {
        notified_at: Timestamp(9 * HOUR),
        ..told.clone()
    };
    let d = notified_draft(&id, &before, &admin());
    assert!(apply(&mut reg, &entry(10, 40 * HOUR, &d)).is_err());
    // So is one for a tenant the incident does not affect.
    let other = Notification {
        tenant: name("initech"),
        ..told
    };
    let d = notified_draft(&id, &other, &admin());
    assert!(apply(&mut reg, &entry(10, 40 * HOUR, &d)).is_err());
}

#[test]
fn updates_append_once_per_update_and_the_timeline_is_in_log_order() {
    let id = IncidentId::random();
    let mut reg = IncidentRegister::default();
    for (n, d) in recorded_drafts(&id, &report(&["acme", "globex"]), &admin())
        .iter()
        .enumerate()
    {
        apply(&mut reg, &entry(5 + n as u64, 11 * HOUR, d)).unwrap();
    }
    let u = IncidentUpdate {
        facts: "found".into(),
        measures: String::new(),
        consequences: String::new(),
        evidence: vec![2],
    };
    let i = reg.get(&id).unwrap().clone();
    for (n, d) in updated_drafts(&i, &u, &admin()).iter().enumerate() {
        apply(&mut reg, &entry(7 + n as u64, 12 * HOUR, d)).unwrap();
    }
    let i = reg.get(&id).unwrap();
    assert_eq!(i.updates.len(), 1, "one update, two entries");
    assert_eq!(i.updates[0].update, u);
    assert_eq!(i.report.measures, "wiped", "nothing overwritten");
    assert_eq!(i.all_evidence(), vec![1, 2]);
    let seqs: Vec<u64> = i.timeline().iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![5, 7]);
    // An update of an incident never recorded contradicts the log.
    let stranger = Incident {
        id: IncidentId::random(),
        ..i.clone()
    };
    let d = &updated_drafts(&stranger, &u, &admin())[0];
    assert!(apply(&mut reg, &entry(20, 13 * HOUR, d)).is_err());
}
