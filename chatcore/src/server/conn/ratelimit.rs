//! Token bucket: a sustained rate with a burst allowance.

use std::time::Instant;

/// Allows `rate` events per second on average and `burst` at once.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    /// Tokens available now (fractional, refilled lazily on each take).
    tokens: f32,
    /// When `tokens` was last refilled.
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(burst: f64, now: Instant) -> Self {
        Self {
            tokens: burst as f32,
            last: now,
        }
    }

    /// Takes one token if there is one.
    pub fn take(&mut self, rate: f64, burst: f64, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f32();
        self.last = now;
        self.tokens = (self.tokens + elapsed * rate as f32).min(burst as f32);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_is_allowed_then_the_rate_refills() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(3.0, t0);
        assert!((0..3).all(|_| b.take(10.0, 3.0, t0)));
        assert!(!b.take(10.0, 3.0, t0));
        assert!(b.take(10.0, 3.0, t0 + Duration::from_millis(110)));
        assert!(!b.take(10.0, 3.0, t0 + Duration::from_millis(110)));
    }
}
