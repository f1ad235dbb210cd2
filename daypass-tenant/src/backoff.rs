//! Capped exponential backoff with jitter, for retrying calls to the broker
//! (the feed's reconnections, the reporter's retries).
//!
//! These waits pace network retries; they are not decisions about validity,
//! so they run on tokio's monotonic timer rather than the injected
//! [`crate::clock::Clock`] (which only decides what is admitted).

use std::time::Duration;

use ring::rand::{SecureRandom, SystemRandom};

/// The delays before successive retries: `min`, doubling up to `max`, each
/// drawn uniformly from its upper half so that many tenants reconnecting to
/// a restarted broker do not arrive in step.
#[derive(Debug)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
    rng: SystemRandom,
}

impl Backoff {
    pub(crate) fn new(min: Duration, max: Duration) -> Backoff {
        let max = max.max(min);
        Backoff {
            min,
            max,
            next: min,
            rng: SystemRandom::new(),
        }
    }

    /// The next delay; each call doubles the following one, up to `max`.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let full = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        let half = full / 2;
        let mut bytes = [0u8; 4];
        // Without randomness, wait the full delay: still capped and growing.
        if self.rng.fill(&mut bytes).is_err() {
            return full;
        }
        let fraction = f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX);
        half + half.mul_f64(fraction)
    }

    /// Starts again from `min` (after a success).
    pub(crate) fn reset(&mut self) {
        self.next = self.min;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(700));
        let delays: Vec<Duration> = (0..6).map(|_| b.next_delay()).collect();
        let caps = [100, 200, 400, 700, 700, 700];
        for (d, cap) in delays.iter().zip(caps) {
            let cap = Duration::from_millis(cap);
            assert!(
                *d <= cap && *d >= cap / 2,
                "{d:?} not in [{:?}, {cap:?}]",
                cap / 2
            );
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }
}
