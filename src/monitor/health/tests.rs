//! The system-health judgement on a manual clock, without sleeping: each
//! rule fires once per episode, says when and why, stays silent while the
//! ledger is healthy or idle, and respects its toggle and the cool-down.

use super::*;
use crate::clock::{Clock as _, ManualClock};

/// Wednesday 2026-12-02 10:00 UTC.
const WED_10: i64 = 1_796_205_600_000;

struct Probe {
    clock: ManualClock,
    health: Health,
}

impl Probe {
    fn new(s: AlertSettings) -> Probe {
        Probe {
            clock: ManualClock::new(Timestamp(WED_10)),
            health: Health::new(&s),
        }
    }

    /// Judges `sample` after `secs` more seconds.
    fn after(&mut self, secs: i64, sample: Sample) -> Vec<Finding> {
        self.clock.advance_secs(secs);
        self.health.observe(&sample, self.clock.now())
    }
}

fn healthy(durable: u64) -> Sample {
    Sample {
        refusing: None,
        waiting: 0,
        durable,
    }
}

fn refusing(durable: u64) -> Sample {
    Sample {
        refusing: Some("a flush failed and no flush has succeeded since".into()),
        waiting: 0,
        durable,
    }
}

fn waiting(n: u64, durable: u64) -> Sample {
    Sample {
        refusing: None,
        waiting: n,
        durable,
    }
}

fn rules_of(f: &[Finding]) -> Vec<Rule> {
    f.iter().map(|f| f.rule).collect()
}

#[test]
fn silent_while_healthy_or_idle() {
    let mut p = Probe::new(AlertSettings::default());
    // Idle for a day: nothing waits, nothing moves.
    for _ in 0..(86400 / 5) {
        assert!(p.after(5, healthy(10)).is_empty());
    }
    // Busy: commits wait at every sample, but the log moves.
    for i in 0..1000 {
        assert!(p.after(5, waiting(3, 10 + i)).is_empty());
    }
}

#[test]
fn a_refusing_store_raises_once_when_writable_again_saying_when_and_why() {
    let mut p = Probe::new(AlertSettings::default());
    assert!(p.after(5, healthy(10)).is_empty());
    let from = Timestamp(p.clock.now().0 + 5000);
    // While it refuses, no alert could be written: none is raised.
    for _ in 0..100 {
        assert!(p.after(5, refusing(10)).is_empty());
    }
    assert_eq!(p.health.refusing_since(), Some(from));
    let found = p.after(5, healthy(11));
    assert_eq!(rules_of(&found), [Rule::StoreUnwritable]);
    let f = &found[0];
    assert_eq!(f.severity, Severity::Critical);
    assert_eq!(f.subject, "store");
    assert_eq!(f.tenant, "");
    assert!(f.seqs.is_empty());
    assert_eq!(
        f.summary,
        format!(
            "the store refused writes from {from} to {}: a flush failed and no flush has \
             succeeded since",
            p.clock.now()
        )
    );
    assert_eq!(p.health.refusing_since(), None);
    // The episode is over: writable again raises nothing more.
    for _ in 0..100 {
        assert!(p.after(5, healthy(11)).is_empty());
    }
}

#[test]
fn a_second_episode_within_the_cool_down_is_silent_and_after_it_raises() {
    let mut p = Probe::new(AlertSettings::default());
    p.after(5, refusing(1));
    assert_eq!(p.after(5, healthy(1)).len(), 1);
    // Ten minutes later, within the hour's cool-down.
    p.after(600, refusing(1));
    assert!(p.after(5, healthy(1)).is_empty());
    // Two hours later.
    p.after(7200, refusing(1));
    assert_eq!(rules_of(&p.after(5, healthy(1))), [Rule::StoreUnwritable]);
}

#[test]
fn a_stalled_log_raises_once_after_stall_secs() {
    let mut s = AlertSettings::default();
    s.log_stalled.stall_secs = 60;
    let mut p = Probe::new(s);
    assert!(p.after(5, waiting(2, 10)).is_empty());
    // 55 s of standing still: not yet.
    for _ in 0..11 {
        assert!(p.after(5, waiting(4, 10)).is_empty());
    }
    let found = p.after(5, waiting(7, 10));
    assert_eq!(rules_of(&found), [Rule::LogStalled]);
    assert_eq!(found[0].severity, Severity::Critical);
    assert_eq!(found[0].subject, "log");
    assert!(found[0].seqs.is_empty());
    assert!(
        found[0]
            .summary
            .starts_with("7 commits waited while the log stayed at 10 entries from "),
        "{}",
        found[0].summary
    );
    // Still stalled: the episode raised already.
    for _ in 0..100 {
        assert!(p.after(5, waiting(9, 10)).is_empty());
    }
    // It moves and stalls again within the cool-down: silent.
    assert!(p.after(5, waiting(1, 11)).is_empty());
    for _ in 0..20 {
        assert!(p.after(5, waiting(1, 11)).is_empty());
    }
    // It catches up, and after the cool-down a new stall raises again.
    assert!(p.after(3600, healthy(12)).is_empty());
    for _ in 0..12 {
        assert!(p.after(5, waiting(1, 12)).is_empty());
    }
    assert_eq!(rules_of(&p.after(5, waiting(1, 12))), [Rule::LogStalled]);
}

#[test]
fn progress_or_an_idle_moment_restarts_the_stall_timer() {
    let mut p = Probe::new(AlertSettings::default());
    for i in 0..100 {
        // 50 s still, then one step (or nothing waiting for a moment).
        for _ in 0..10 {
            assert!(p.after(5, waiting(1, i)).is_empty());
        }
        let moved = if i % 2 == 0 {
            waiting(1, i + 1)
        } else {
            healthy(i)
        };
        assert!(p.after(5, moved).is_empty());
    }
}

#[test]
fn each_rule_can_be_switched_off() {
    let mut s = AlertSettings::default();
    s.store_unwritable.enabled = false;
    s.log_stalled.enabled = false;
    let mut p = Probe::new(s);
    p.after(5, refusing(1));
    assert!(p.after(5, healthy(1)).is_empty());
    assert_eq!(p.health.refusing_since(), None);
    for _ in 0..100 {
        assert!(p.after(5, waiting(1, 1)).is_empty());
    }
}
