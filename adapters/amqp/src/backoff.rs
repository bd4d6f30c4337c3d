//! Exponential reconnect backoff with jitter, so that a fleet of terminals
//! does not reconnect in lockstep after a broker restart.

use std::time::Duration;

#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    pub(crate) fn new(min: Duration, max: Duration) -> Self {
        Backoff {
            min,
            max,
            current: min,
        }
    }

    /// The next delay: the current step times a random factor in [1, 1.5),
    /// never above `max`; the step doubles each time.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let step = self.current;
        self.current = (self.current * 2).min(self.max);
        step.mul_f64(1.0 + random_unit() / 2.0).min(self.max)
    }

    /// The longest delay, with the same jitter below it (for a broker that refuses us).
    pub(crate) fn max_delay(&self) -> Duration {
        self.max.mul_f64(1.0 - random_unit() / 4.0).max(self.min)
    }

    pub(crate) fn reset(&mut self) {
        self.current = self.min;
    }
}

/// A number in [0, 1) from a random UUID (no extra dependency for a bit of jitter).
fn random_unit() -> f64 {
    let bits = uuid::Uuid::new_v4().as_u128() >> 75; // 53 random bits
    bits as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_with_jitter_up_to_max() {
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        let delays: Vec<Duration> = (0..10).map(|_| b.next_delay()).collect();
        assert!(delays[0] >= Duration::from_millis(500) && delays[0] < Duration::from_millis(750));
        assert!(delays[1] >= Duration::from_secs(1) && delays[1] < Duration::from_millis(1500));
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(30)));
        assert!(delays[9] >= Duration::from_secs(30) - Duration::from_millis(1));
        b.reset();
        assert!(b.next_delay() < Duration::from_millis(750));
        let m = b.max_delay();
        assert!(
            m > Duration::from_secs(22) && m <= Duration::from_secs(30),
            "{m:?}"
        );
    }

    #[test]
    fn jitter_varies() {
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..20 {
            seen.insert(Backoff::new(Duration::from_secs(1), Duration::from_secs(30)).next_delay());
        }
        assert!(seen.len() > 10);
    }
}
