//! Slack's per-method, per-workspace rate limits as token buckets on wall-clock time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Slack's documented tiers, in calls per minute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tier {
    Tier2,
    Tier3,
    Tier4,
    /// A method-specific rate in calls per minute (SCIM's org-wide limits).
    PerMinute(u32),
    /// A rate in calls per minute with a documented burst: SCIM's write limits
    /// (docs.slack.dev/reference/scim-api/rate-limits: org-wide writes 600/min burst 180;
    /// create, update and delete a user 180/min burst 20 each).
    Burst(u32, u32),
}

impl Tier {
    pub(crate) fn per_minute(self) -> f64 {
        match self {
            Tier::Tier2 => 20.0,
            Tier::Tier3 => 50.0,
            Tier::Tier4 => 100.0,
            Tier::PerMinute(n) | Tier::Burst(n, _) => f64::from(n),
        }
    }
}

/// Slack "tolerates small bursts": the bucket holds this many seconds of refill, at least two calls.
const BURST_SECONDS: f64 = 6.0;
const MIN_BURST: f64 = 2.0;

struct Bucket {
    tokens: f64,
    last: Instant,
}

pub(crate) struct RateLimiter {
    scale: f64,
    buckets: Mutex<HashMap<(String, String), Bucket>>,
}

impl RateLimiter {
    pub(crate) fn new(scale: f64) -> Self {
        Self { scale, buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes one call from the (method, team) bucket, or says how many whole seconds until one
    /// is available (at least 1, as Slack never sends `Retry-After: 0`).
    pub(crate) fn acquire(&self, method: &str, team: &str, tier: Tier) -> Result<(), u64> {
        let rate = tier.per_minute() * self.scale / 60.0;
        let capacity = match tier {
            Tier::Burst(_, burst) => (f64::from(burst) * self.scale).max(MIN_BURST),
            _ => (rate * BURST_SECONDS).max(MIN_BURST),
        };
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let bucket =
            buckets.entry((method.to_owned(), team.to_owned())).or_insert(Bucket { tokens: capacity, last: now });
        let elapsed = now.duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(capacity);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / rate;
            Err((wait.ceil() as u64).max(1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_refuses_with_a_wait() {
        let limiter = RateLimiter::new(1.0);
        assert!(limiter.acquire("users.list", "T1", Tier::Tier2).is_ok());
        assert!(limiter.acquire("users.list", "T1", Tier::Tier2).is_ok());
        let wait = limiter.acquire("users.list", "T1", Tier::Tier2);
        assert!(matches!(wait, Err(s) if (1..=3).contains(&s)), "{wait:?}");
        // Other methods and teams have their own buckets.
        assert!(limiter.acquire("team.info", "T1", Tier::Tier3).is_ok());
        assert!(limiter.acquire("users.list", "T2", Tier::Tier2).is_ok());
    }
}
