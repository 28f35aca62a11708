//! One back-off shared by every slice of a goal.
//!
//! When any agent fails in a way worth retrying (a rate limit, a server
//! error), the whole goal backs off: every slice waits before it starts or
//! restarts an agent, so a rate-limit storm slows the goal down instead of
//! failing every slice at once. Delays grow exponentially with the number of
//! retries, with jitter so slices do not come back in lockstep.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The first retry's delay.
const BASE: Duration = Duration::from_secs(1);
/// The longest delay.
const CAP: Duration = Duration::from_secs(30);

/// The goal's shared back-off.
#[derive(Debug)]
pub struct Limiter {
    not_before: Mutex<Instant>,
}

impl Default for Limiter {
    fn default() -> Self {
        Limiter {
            not_before: Mutex::new(Instant::now()),
        }
    }
}

impl Limiter {
    /// Waits until the goal may call an agent again.
    pub async fn wait(&self) {
        let until = self
            .not_before
            .lock()
            .map(|t| *t)
            .unwrap_or_else(|_| Instant::now());
        tokio::time::sleep_until(until.into()).await;
    }

    /// Pushes every slice back after the `retry`-th retryable failure (1, 2, …)
    /// and returns the delay chosen.
    pub fn back_off(&self, retry: u32) -> Duration {
        let exp = BASE
            .saturating_mul(1 << retry.saturating_sub(1).min(16))
            .min(CAP);
        // ±25% jitter.
        let jitter = 0.75 + rand::random::<f64>() * 0.5;
        let delay = exp.mul_f64(jitter);
        if let Ok(mut t) = self.not_before.lock() {
            *t = (*t).max(Instant::now() + delay);
        }
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_are_capped() {
        let l = Limiter::default();
        let d1 = l.back_off(1);
        let d3 = l.back_off(3);
        let d9 = l.back_off(9);
        assert!(
            d1 >= Duration::from_millis(750) && d1 <= Duration::from_millis(1250),
            "{d1:?}"
        );
        assert!(
            d3 >= Duration::from_secs(3) && d3 <= Duration::from_secs(5),
            "{d3:?}"
        );
        assert!(d9 <= CAP.mul_f64(1.25), "{d9:?}");
    }

    #[tokio::test]
    async fn everyone_waits_for_the_latest_back_off() {
        let l = Limiter::default();
        let started = Instant::now();
        l.back_off(1);
        l.wait().await;
        assert!(started.elapsed() >= Duration::from_millis(700));
    }
}
