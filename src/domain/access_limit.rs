//! A tenant's cumulative access limit ([`AccessLimit`]): at most so much of
//! one person's access in any rolling window (e.g. 24 h per 7 days), so
//! that "24 hours at a time" cannot become permanent access by asking
//! again. This file owns what counts as access time, the check of one more
//! grant against the limit and the exact moment the needed time frees up
//! ([`AccessLimit::check`]); the service calls it at request and approval,
//! and the log's replay (`audit::state`) redoes it on the same records.
//!
//! What counts (docs/security.md, "Cumulative access limit"): a grant that
//! was activated counts from its activation until it ended or expired (an
//! active one until its expiry, the most it may still use); a pending or
//! scheduled one counts at its requested duration from its start (now, for
//! one without a start), so parallel requests cannot pass the limit; a
//! grant that never activated and has ended counts nothing.
//!
//! Not here: where the limit is stored (`TenantRecord::access_limit`), or
//! who may set it (`crate::policy`).

use serde::{Deserialize, Serialize};

use super::grant::{Grant, GrantState};
use crate::clock::Timestamp;

/// The shortest window a limit may have: an hour.
pub const MIN_WINDOW_SECS: i64 = 3600;
/// The longest window a limit may have: 366 days.
pub const MAX_WINDOW_SECS: i64 = 366 * 24 * 3600;

/// At most `limit_secs` of one holder's access to the tenant in any window
/// of `window_secs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessLimit {
    pub limit_secs: i64,
    pub window_secs: i64,
}

/// Why one more grant does not fit under a limit, with the numbers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitExceeded {
    pub limit: AccessLimit,
    /// Access already used or booked in the window that ends with the
    /// requested grant, in milliseconds.
    pub used_ms: i64,
    /// Of that, what live grants (pending, scheduled, active) book.
    pub booked_ms: i64,
    pub requested_secs: i64,
    /// The end of that window (the requested grant's end).
    pub window_end: Timestamp,
    /// The earliest start from which a grant of the requested duration
    /// fits; `None` when it does not fit whatever the start (it is longer
    /// than what the limit leaves beside the live grants).
    pub frees_at: Option<Timestamp>,
}

impl AccessLimit {
    /// A limit as given: `(0, 0)` is none; otherwise a window between an
    /// hour and 366 days and a limit between 1 s and the window.
    pub fn new(limit_secs: i64, window_secs: i64) -> Result<Option<AccessLimit>, String> {
        if limit_secs == 0 && window_secs == 0 {
            return Ok(None);
        }
        if !(MIN_WINDOW_SECS..=MAX_WINDOW_SECS).contains(&window_secs) {
            return Err(format!(
                "the window must be between 1 h and 366 d ({MIN_WINDOW_SECS} to {MAX_WINDOW_SECS} s), not {window_secs} s (give 0 and 0 to clear the limit)"
            ));
        }
        if !(1..=window_secs).contains(&limit_secs) {
            return Err(format!(
                "the limit must be between 1 s and the window ({window_secs} s), not {limit_secs} s"
            ));
        }
        Ok(Some(AccessLimit {
            limit_secs,
            window_secs,
        }))
    }

    /// `24 h per 7 d`.
    pub fn describe(&self) -> String {
        format!(
            "{} per {}",
            human_ms(self.limit_secs * 1000),
            human_ms(self.window_secs * 1000)
        )
    }

    /// May a grant of `duration_secs` from `start` be added to `others`
    /// (the holder's other grants for the tenant, as of `now`)? Ended
    /// grants count where they fall in the window that ends with the new
    /// grant: with every ended grant before it, that window holds the most.
    /// Live ones (booked: pending, scheduled or active; the no-stacking
    /// rule leaves none today) count in full, wherever they fall.
    pub fn check<'a>(
        &self,
        others: impl IntoIterator<Item = &'a Grant>,
        start: Timestamp,
        duration_secs: i64,
        now: Timestamp,
    ) -> Result<(), LimitExceeded> {
        let mut spans = Vec::new();
        let mut booked: i64 = 0;
        for g in others {
            match access_span(g, now) {
                Some((a, b)) if g.state.is_live() => booked = booked.saturating_add(b - a),
                Some(span) => spans.push(span),
                None => {}
            }
        }
        let d = duration_secs.saturating_mul(1000);
        let w = self.window_secs * 1000;
        let room = self.limit_secs * 1000 - d - booked;
        let s = start.millis();
        let used_now = usage(&spans, s.saturating_add(d) - w, s.saturating_add(d));
        if room >= 0 && used_now <= room {
            return Ok(());
        }
        let frees_at = (room >= 0).then(|| Timestamp(earliest_fit(&spans, s, d, w, room)));
        Err(LimitExceeded {
            limit: *self,
            used_ms: used_now.saturating_add(booked),
            booked_ms: booked,
            requested_secs: duration_secs,
            window_end: Timestamp(s.saturating_add(d)),
            frees_at,
        })
    }
}

impl LimitExceeded {
    /// The refusal in words, naming the limit, the usage and when the
    /// needed time frees up.
    pub fn message(&self, tenant: &str) -> String {
        let limit = self.limit.describe();
        let asked = human_ms(self.requested_secs.saturating_mul(1000));
        match self.frees_at {
            None if self.booked_ms > 0 => format!(
                "tenant {tenant} allows one person at most {limit} of access; your live grants book {} of it, so {asked} more does not fit: end them first, or ask for at most {}",
                human_ms(self.booked_ms),
                human_ms((self.limit.limit_secs * 1000 - self.booked_ms).max(0))
            ),
            None => format!(
                "tenant {tenant} allows one person at most {limit} of access; {asked} is more than that: ask for at most {}",
                human_ms(self.limit.limit_secs * 1000)
            ),
            Some(at) => format!(
                "tenant {tenant} allows one person at most {limit} of access: you have used or booked {} in the {} up to {}, and {asked} more would make {}; {asked} frees up at {} (ask again then, or request a grant starting then with --start)",
                human_ms(self.used_ms),
                human_ms(self.limit.window_secs * 1000),
                self.window_end.to_rfc3339(),
                human_ms(
                    self.used_ms
                        .saturating_add(self.requested_secs.saturating_mul(1000))
                ),
                at.to_rfc3339()
            ),
        }
    }
}

/// The span of access a grant counts for, in milliseconds (module docs).
pub fn access_span(g: &Grant, now: Timestamp) -> Option<(i64, i64)> {
    if let Some(from) = g.activated_at {
        let until = match (g.expires_at, g.ended_at) {
            (Some(x), Some(e)) => x.min(e),
            (Some(x), None) => x,
            (None, Some(e)) => e,
            (None, None) => return None,
        };
        return Some((from.millis(), until.millis().max(from.millis())));
    }
    match g.state {
        GrantState::Pending | GrantState::Scheduled => {
            let from = g.starts_at.unwrap_or(now).max(now).millis();
            Some((
                from,
                from.saturating_add(g.duration_secs.saturating_mul(1000)),
            ))
        }
        _ => None,
    }
}

/// Milliseconds of `spans` within `[lo, hi)`.
fn usage(spans: &[(i64, i64)], lo: i64, hi: i64) -> i64 {
    spans
        .iter()
        .map(|&(s, e)| (e.min(hi) - s.max(lo)).max(0))
        .sum()
}

/// The earliest start `x >= s` at which the window `[x + d - w, x + d)`
/// holds at most `room` of `spans`. The usage is piecewise linear in `x`,
/// with kinks where a window edge meets a span's edge, and zero once the
/// window is past every span: walk the kinks, then solve on the segment
/// where it drops to `room`.
fn earliest_fit(spans: &[(i64, i64)], s: i64, d: i64, w: i64, room: i64) -> i64 {
    let used = |x: i64| usage(spans, x + d - w, x + d);
    let mut kinks: Vec<i64> = spans
        .iter()
        .flat_map(|&(a, b)| [a - d, b - d, a + w - d, b + w - d])
        .filter(|&k| k > s)
        .collect();
    kinks.sort_unstable();
    kinks.dedup();
    let mut p = s;
    for q in kinks {
        let (up, uq) = (used(p), used(q));
        if uq <= room {
            // Linear on [p, q]: solve, rounding up to the millisecond.
            let (num, den) = ((up - room) as i128 * (q - p) as i128, (up - uq) as i128);
            let mut x = if den > 0 {
                p + ((num + den - 1) / den) as i64
            } else {
                q
            };
            while x < q && used(x) > room {
                x += 1;
            }
            while x > p && used(x - 1) <= room {
                x -= 1;
            }
            return x.min(q);
        }
        p = q;
    }
    p
}

/// `7 d`, `24 h` (days from two on), `1 h 30 min`, `20 min 5 s`, `1.500 s`.
pub fn human_ms(ms: i64) -> String {
    if ms % 1000 != 0 {
        return format!("{:.3} s", ms as f64 / 1000.0);
    }
    let s = ms / 1000;
    if s > 86_400 && s % 86_400 == 0 {
        return format!("{} d", s / 86_400);
    }
    let (h, m, sec) = (s / 3600, s % 3600 / 60, s % 60);
    let mut parts = Vec::new();
    if h > 0 {
        parts.push(format!("{h} h"));
    }
    if m > 0 {
        parts.push(format!("{m} min"));
    }
    if sec > 0 || parts.is_empty() {
        parts.push(format!("{sec} s"));
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::domain::{GrantId, Name, tenant::Approval};

    const H: i64 = 3600;

    fn used(from_h: i64, to_h: i64) -> Grant {
        Grant {
            id: GrantId::random(),
            tenant: Name::parse("acme").unwrap(),
            holder: Name::parse("alice").unwrap(),
            reason: "r".into(),
            ticket: String::new(),
            state: GrantState::Expired,
            duration_secs: (to_h - from_h) * H,
            requested_at: Timestamp(from_h * H * 1000),
            pending_until: None,
            activated_at: Some(Timestamp(from_h * H * 1000)),
            expires_at: Some(Timestamp(to_h * H * 1000)),
            ended_at: Some(Timestamp(to_h * H * 1000)),
            decided_by: String::new(),
            decision_note: String::new(),
            offboarded: false,
            approval: Some(Approval::Auto),
            approvals: Vec::new(),
            reason_code: None,
            starts_at: None,
            break_glass: false,
            review: None,
            scopes: crate::domain::Scopes::whole_tenant(),
            approver_group: None,
        }
    }

    fn at_h(h: i64) -> Timestamp {
        Timestamp(h * H * 1000)
    }

    #[test]
    fn limits_are_bounded_and_zero_zero_is_none() {
        assert_eq!(AccessLimit::new(0, 0), Ok(None));
        assert!(AccessLimit::new(24 * H, 7 * 24 * H).unwrap().is_some());
        assert!(AccessLimit::new(0, 7 * 24 * H).is_err());
        assert!(AccessLimit::new(8 * H, 7 * H).is_err());
        assert!(AccessLimit::new(60, 60).is_err());
        assert!(AccessLimit::new(H, MAX_WINDOW_SECS + 1).is_err());
        assert!(AccessLimit::new(-1, H).is_err());
        let l = AccessLimit::new(24 * H, 7 * 24 * H).unwrap().unwrap();
        assert_eq!(l.describe(), "24 h per 7 d");
        assert_eq!(human_ms(5_400_000), "1 h 30 min");
        assert_eq!(human_ms(1_500), "1.500 s");
        assert_eq!(human_ms(0), "0 s");
    }

    /// 10 h per 48 h; 8 h used from hour 0 to 8. At hour 10, 4 h more
    /// would make 12 h; the window ending at x + 4 h holds at most 6 h of
    /// the old grant once x + 4 - 48 >= 2, so from hour 46 exactly.
    #[test]
    fn the_free_up_time_is_exact() {
        let l = AccessLimit::new(10 * H, 48 * H).unwrap().unwrap();
        let old = [used(0, 8)];
        let e = l.check(&old, at_h(10), 4 * H, at_h(10)).unwrap_err();
        assert_eq!(e.used_ms, 8 * H * 1000);
        assert_eq!(e.frees_at, Some(at_h(46)));
        assert!(l.check(&old, at_h(46), 4 * H, at_h(46)).is_ok());
        assert!(
            l.check(&old, Timestamp(at_h(46).millis() - 1), 4 * H, at_h(40))
                .is_err()
        );
        // 2 h fits at once (8 + 2 = 10).
        assert!(l.check(&old, at_h(10), 2 * H, at_h(10)).is_ok());
        // Longer than the whole limit: never.
        let e = l.check(&[], at_h(10), 11 * H, at_h(10)).unwrap_err();
        assert_eq!(e.frees_at, None);
        assert!(e.message("acme").contains("ask for at most 10 h"));
    }

    #[test]
    fn several_spans_and_a_pending_request_count() {
        let l = AccessLimit::new(10 * H, 48 * H).unwrap().unwrap();
        // 3 h at 0..3 and 5 h at 20..25: 8 h. At 30, 4 h: 12 h > 10.
        let old = vec![used(0, 3), used(20, 25)];
        let e = l.check(&old, at_h(30), 4 * H, at_h(30)).unwrap_err();
        // At most 6 h may remain in [x - 44, x + 4): the window's start
        // must cut 2 h off the first span (1 + 5 = 6), x - 44 = 2.
        assert_eq!(e.frees_at, Some(at_h(46)));
        // A pending or scheduled request counts in full at its duration,
        // even far ahead: parallel requests cannot pass the limit.
        let mut pending = used(0, 1);
        pending.state = GrantState::Pending;
        pending.activated_at = None;
        pending.expires_at = None;
        pending.ended_at = None;
        pending.duration_secs = 9 * H;
        let e = l
            .check([&pending], at_h(100), 2 * H, at_h(100))
            .unwrap_err();
        assert_eq!(
            (e.used_ms, e.booked_ms, e.frees_at),
            (9 * H * 1000, 9 * H * 1000, None)
        );
        assert!(
            e.message("acme").contains("ask for at most 1 h"),
            "{}",
            e.message("acme")
        );
        pending.state = GrantState::Scheduled;
        pending.starts_at = Some(at_h(300));
        assert!(l.check([&pending], at_h(100), 2 * H, at_h(100)).is_err());
        assert!(l.check([&pending], at_h(100), H, at_h(100)).is_ok());
        // Ended without activation: nothing.
        pending.state = GrantState::Denied;
        assert!(l.check([&pending], at_h(100), 2 * H, at_h(100)).is_ok());
        // An early release counts until the release.
        let mut released = used(0, 8);
        released.ended_at = Some(at_h(2));
        assert!(l.check([&released], at_h(3), 8 * H, at_h(3)).is_ok());
    }
}
