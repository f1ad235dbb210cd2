//! Time, injected. Production uses [`SystemClock`]; tests use [`ManualClock`]
//! and move time forward instead of sleeping. Nothing else in the crate reads
//! the wall clock.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use chrono::{DateTime, SecondsFormat, Utc};
use tokio::sync::watch;

/// Milliseconds since the Unix epoch, UTC. The unit of every time in daypass.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn millis(self) -> i64 {
        self.0
    }

    pub fn plus_secs(self, secs: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(secs.saturating_mul(1000)))
    }

    /// RFC 3339 with milliseconds, e.g. `2026-11-25T10:00:00.000Z`.
    pub fn to_rfc3339(self) -> String {
        match DateTime::<Utc>::from_timestamp_millis(self.0) {
            Some(t) => t.to_rfc3339_opts(SecondsFormat::Millis, true),
            None => format!("{}ms", self.0),
        }
    }

    pub fn parse_rfc3339(s: &str) -> Option<Timestamp> {
        DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| Timestamp(t.timestamp_millis()))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

pub type SleepFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// A source of the current time that can also wait for a moment in time.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
    /// Resolves at or after `deadline` (it may resolve early; callers re-check).
    fn sleep_until(&self, deadline: Timestamp) -> SleepFuture<'_>;
}

pub type SharedClock = Arc<dyn Clock>;

/// The real wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

/// Longest single sleep, so a wall-clock jump is noticed within this time.
const MAX_SLEEP: Duration = Duration::from_secs(30);

impl Clock for SystemClock {
    // The one wall-clock read of the workspace (clippy.toml).
    #[allow(clippy::disallowed_methods)]
    fn now(&self) -> Timestamp {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        Timestamp(ms)
    }

    fn sleep_until(&self, deadline: Timestamp) -> SleepFuture<'_> {
        let wait = deadline.0.saturating_sub(self.now().0).max(0) as u64;
        Box::pin(tokio::time::sleep(
            Duration::from_millis(wait).min(MAX_SLEEP),
        ))
    }
}

/// A clock that only moves when told to. Cloning shares the same time.
#[derive(Clone, Debug)]
pub struct ManualClock {
    now: Arc<watch::Sender<Timestamp>>,
}

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        ManualClock {
            now: Arc::new(watch::Sender::new(start)),
        }
    }

    pub fn set(&self, t: Timestamp) {
        self.now.send_replace(t);
    }

    pub fn advance_secs(&self, secs: i64) {
        self.now.send_modify(|t| *t = t.plus_secs(secs));
    }

    pub fn advance_millis(&self, ms: i64) {
        self.now.send_modify(|t| t.0 += ms);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.now.borrow()
    }

    fn sleep_until(&self, deadline: Timestamp) -> SleepFuture<'_> {
        let mut rx = self.now.subscribe();
        Box::pin(async move {
            // wait_for returns once the predicate holds; the sender lives as
            // long as self, so an error cannot happen while we are borrowed.
            let _ = rx.wait_for(|t| *t >= deadline).await;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trip() {
        let t = Timestamp(1_764_064_800_123);
        assert_eq!(t.to_rfc3339(), "2025-11-25T10:00:00.123Z");
        assert_eq!(Timestamp::parse_rfc3339(&t.to_rfc3339()), Some(t));
    }

    #[tokio::test]
    async fn manual_clock_wakes_sleepers_when_moved() {
        let clock = ManualClock::new(Timestamp(1_000));
        let c2 = clock.clone();
        let sleeper = tokio::spawn(async move { c2.sleep_until(Timestamp(5_000)).await });
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        clock.advance_millis(3_000);
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        clock.advance_millis(1_000);
        tokio::time::timeout(Duration::from_secs(5), sleeper)
            .await
            .expect("sleeper woke")
            .expect("no panic");
    }
}
