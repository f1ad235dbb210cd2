//! Per-caller rate limits: a token bucket per (caller, class of call), on
//! the injected clock. Which calls belong to which class is policy
//! ([`crate::policy::rate_class`]); the rates come from the configuration.
//!
//! Limits are checked after admission, so buckets exist only for enrolled
//! staff and registered tenants: their number is bounded by the registries,
//! not by what strangers send. A refused call is cheap (no log write), and
//! only the first refusal per caller and class in each [`LOG_EVERY_MS`]
//! window is logged, with the number of refusals it stands for: a flood
//! cannot flood the log.

use std::collections::HashMap;

use parking_lot::Mutex;

use crate::clock::Timestamp;

/// Classes of calls sharing one bucket per caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Class {
    /// RequestGrant, per engineer.
    Requests,
    /// ValidateGrant, per tenant.
    Validations,
    /// RecordAccess, per tenant: a tenant deciding offline reports every
    /// admitted call, which must not starve its online validations.
    Reports,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Requests => "grant requests",
            Class::Validations => "validations",
            Class::Reports => "access records",
        }
    }
}

/// A sustained rate and a burst.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    pub per_sec: f64,
    pub burst: f64,
}

/// At most one logged refusal per caller and class per window.
pub const LOG_EVERY_MS: i64 = 60_000;

/// A refused call.
#[derive(Clone, Debug, PartialEq)]
pub struct Limited {
    pub class: Class,
    pub rate: Rate,
    /// When one token will be there again.
    pub retry_after_ms: u64,
    /// Log this refusal: it is the first in its window. `suppressed` earlier
    /// refusals went unlogged since the last logged one.
    pub log: Option<u64>,
}

struct Bucket {
    tokens: f64,
    at: Timestamp,
    logged_at: Option<Timestamp>,
    suppressed: u64,
}

pub struct RateLimits {
    requests: Rate,
    validations: Rate,
    reports: Rate,
    buckets: Mutex<HashMap<(String, Class), Bucket>>,
}

impl RateLimits {
    pub fn new(requests: Rate, validations: Rate, reports: Rate) -> RateLimits {
        RateLimits {
            requests,
            validations,
            reports,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn rate(&self, class: Class) -> Rate {
        match class {
            Class::Requests => self.requests,
            Class::Validations => self.validations,
            Class::Reports => self.reports,
        }
    }

    /// Takes one token from `actor`'s bucket for `class`, or says when to
    /// retry.
    pub fn check(&self, actor: &str, class: Class, now: Timestamp) -> Result<(), Limited> {
        let rate = self.rate(class);
        let mut buckets = self.buckets.lock();
        let b = buckets.entry((actor.to_owned(), class)).or_insert(Bucket {
            tokens: rate.burst,
            at: now,
            logged_at: None,
            suppressed: 0,
        });
        let elapsed_ms = (now.millis() - b.at.millis()).max(0) as f64;
        b.tokens = (b.tokens + elapsed_ms * rate.per_sec / 1000.0).min(rate.burst);
        b.at = Timestamp(now.millis().max(b.at.millis()));
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            return Ok(());
        }
        let retry_after_ms = ((1.0 - b.tokens) * 1000.0 / rate.per_sec).ceil() as u64;
        let log = match b.logged_at {
            Some(t) if now.millis() - t.millis() < LOG_EVERY_MS => {
                b.suppressed += 1;
                None
            }
            _ => {
                b.logged_at = Some(now);
                Some(std::mem::take(&mut b.suppressed))
            }
        };
        Err(Limited {
            class,
            rate,
            retry_after_ms: retry_after_ms.max(1),
            log,
        })
    }
}

/// Refusals logged per principal: a burst of this many, then ...
pub const LOGGED_REFUSAL_BURST: f64 = 64.0;
/// ... this many a minute. A principal refused more often has the rest
/// counted: the next logged refusal says how many went unlogged before it
/// (`unlogged_refusals_before`). So a hostile certificate adds at most
/// 64 + 60 per minute entries to the log, however fast it calls.
pub const LOGGED_REFUSALS_PER_MINUTE: f64 = 60.0;

/// Which refusals are logged (see [`LOGGED_REFUSAL_BURST`]): a token bucket
/// per principal on the injected clock, with the count of those not logged.
#[derive(Default)]
pub struct RefusalLog {
    buckets: Mutex<HashMap<String, RefusalBucket>>,
}

struct RefusalBucket {
    tokens: f64,
    at: Timestamp,
    unlogged: u64,
}

/// Most principals tracked; beyond it, full (idle) buckets are dropped.
const REFUSAL_BUCKETS_KEPT: usize = 10_000;

impl RefusalLog {
    /// Should this refusal by `actor` be logged? `Some(n)`: yes, and `n`
    /// refusals before it were not; `None`: no (it is counted).
    pub fn log(&self, actor: &str, now: Timestamp) -> Option<u64> {
        let mut buckets = self.buckets.lock();
        if buckets.len() >= REFUSAL_BUCKETS_KEPT && !buckets.contains_key(actor) {
            let per_ms = LOGGED_REFUSALS_PER_MINUTE / 60_000.0;
            buckets.retain(|_, b| {
                let elapsed = (now.millis() - b.at.millis()).max(0) as f64;
                b.unlogged > 0 || b.tokens + elapsed * per_ms < LOGGED_REFUSAL_BURST
            });
        }
        let b = buckets.entry(actor.to_owned()).or_insert(RefusalBucket {
            tokens: LOGGED_REFUSAL_BURST,
            at: now,
            unlogged: 0,
        });
        let elapsed_ms = (now.millis() - b.at.millis()).max(0) as f64;
        b.tokens = (b.tokens + elapsed_ms * LOGGED_REFUSALS_PER_MINUTE / 60_000.0)
            .min(LOGGED_REFUSAL_BURST);
        b.at = Timestamp(now.millis().max(b.at.millis()));
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Some(std::mem::take(&mut b.unlogged))
        } else {
            b.unlogged += 1;
            None
        }
    }
}

/// At most `max` things open at once per key (streams per caller): a
/// [`Slot`] is taken for each and given back when it is dropped.
#[derive(Debug)]
pub struct Slots {
    max: usize,
    held: std::sync::Arc<Mutex<HashMap<String, usize>>>,
}

impl Slots {
    pub fn new(max: usize) -> Slots {
        Slots {
            max,
            held: std::sync::Arc::default(),
        }
    }

    /// The most each key may hold.
    pub fn max(&self) -> usize {
        self.max
    }

    /// A slot for one more under `key`, or `None` when it holds `max`.
    pub fn take(&self, key: &str) -> Option<Slot> {
        let mut held = self.held.lock();
        let n = held.entry(key.to_owned()).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(Slot {
            held: self.held.clone(),
            key: key.to_owned(),
        })
    }
}

/// One open thing; frees its slot when dropped.
#[derive(Debug)]
pub struct Slot {
    held: std::sync::Arc<Mutex<HashMap<String, usize>>>,
    key: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut held = self.held.lock();
        if let Some(n) = held.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                held.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> RateLimits {
        RateLimits::new(
            Rate {
                per_sec: 1.0,
                burst: 3.0,
            },
            Rate {
                per_sec: 10.0,
                burst: 5.0,
            },
            Rate {
                per_sec: 100.0,
                burst: 2.0,
            },
        )
    }

    #[test]
    fn access_records_do_not_use_up_validations() {
        let l = limits();
        let t = |ms: i64| Timestamp(1_000_000 + ms);
        for _ in 0..2 {
            assert!(l.check("tenant/acme", Class::Reports, t(0)).is_ok());
        }
        assert!(l.check("tenant/acme", Class::Reports, t(0)).is_err());
        for _ in 0..5 {
            assert!(l.check("tenant/acme", Class::Validations, t(0)).is_ok());
        }
    }

    #[test]
    fn a_burst_then_the_sustained_rate() {
        let l = limits();
        let t = |ms| Timestamp(1_000_000 + ms);
        for _ in 0..3 {
            assert!(l.check("staff/a", Class::Requests, t(0)).is_ok());
        }
        let r = l.check("staff/a", Class::Requests, t(0)).unwrap_err();
        assert_eq!(r.retry_after_ms, 1000);
        assert_eq!(r.log, Some(0));
        // Someone else, or another class, is not affected.
        assert!(l.check("staff/b", Class::Requests, t(0)).is_ok());
        assert!(l.check("staff/a", Class::Validations, t(0)).is_ok());
        // Half a token later: still refused, and not logged again.
        let r = l.check("staff/a", Class::Requests, t(500)).unwrap_err();
        assert_eq!((r.retry_after_ms, r.log), (500, None));
        assert!(l.check("staff/a", Class::Requests, t(1000)).is_ok());
        assert!(l.check("staff/a", Class::Requests, t(1000)).is_err());
        // A window later the next refusal is logged, counting the others.
        let r = l
            .check("staff/a", Class::Requests, t(1000 + LOG_EVERY_MS))
            .map(|_| ());
        assert!(r.is_ok(), "refilled to the burst");
        for _ in 0..2 {
            l.check("staff/a", Class::Requests, t(1000 + LOG_EVERY_MS))
                .unwrap();
        }
        let r = l
            .check("staff/a", Class::Requests, t(1000 + LOG_EVERY_MS))
            .unwrap_err();
        assert_eq!(r.log, Some(2));
    }

    #[test]
    fn a_clock_going_backwards_gives_nothing_away() {
        let l = limits();
        for _ in 0..3 {
            l.check("staff/a", Class::Requests, Timestamp(10_000))
                .unwrap();
        }
        assert!(
            l.check("staff/a", Class::Requests, Timestamp(5_000))
                .is_err()
        );
        assert!(
            l.check("staff/a", Class::Requests, Timestamp(10_500))
                .is_err()
        );
        assert!(
            l.check("staff/a", Class::Requests, Timestamp(11_000))
                .is_ok()
        );
    }

    #[test]
    fn slots_are_bounded_per_key_and_given_back() {
        let slots = Slots::new(2);
        let a = slots.take("auditor/eve").unwrap();
        let _b = slots.take("auditor/eve").unwrap();
        assert!(slots.take("auditor/eve").is_none());
        assert!(slots.take("staff/ada").is_some());
        drop(a);
        assert!(slots.take("auditor/eve").is_some());
    }

    #[test]
    fn refusals_are_logged_in_a_burst_then_counted() {
        let t = Timestamp;
        let log = RefusalLog::default();
        let logged = (0..1000)
            .filter(|_| log.log("staff/mallory", t(0)).is_some())
            .count();
        assert_eq!(logged, LOGGED_REFUSAL_BURST as usize);
        // Another principal has its own bucket.
        assert_eq!(log.log("staff/ada", t(0)), Some(0));
        // A second later one more is logged, counting the others exactly.
        assert_eq!(
            log.log("staff/mallory", t(1000)),
            Some(1000 - LOGGED_REFUSAL_BURST as u64)
        );
        assert_eq!(log.log("staff/mallory", t(1000)), None);
    }
}
