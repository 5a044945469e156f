//! Client-side rate budgets: one GCRA token bucket per (label, bucket key) at the pace the app
//! gives for that label (Slack: the method's tier, per workspace), so a steady-state run paces
//! itself below the API's limits instead of bouncing off 429s, plus the pause a rate-limit
//! answer's "wait until" imposes on the whole bucket.

use std::collections::HashMap;
use std::fmt;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Jitter, Quota, RateLimiter};
use tokio::time::Instant;

/// Calls per minute the app allows for a label (a Slack method, `scim.Users`, an Okta
/// endpoint); `None` = not paced. Apps own their limits: Slack's are tiers per method.
pub type PacePerMinute = Arc<dyn Fn(&str) -> Option<u32> + Send + Sync>;

type BucketKey = (String, String);

/// The budgets of one client.
pub struct RateBudget {
    per_minute: PacePerMinute,
    buckets: Mutex<HashMap<BucketKey, Arc<Bucket>>>,
}

impl fmt::Debug for RateBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateBudget").finish_non_exhaustive()
    }
}

struct Bucket {
    limiter: Option<DefaultDirectRateLimiter>,
    jitter: Duration,
    paused_until: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bucket")
            .field("paced", &self.limiter.is_some())
            .field("paused_until", &self.paused_until())
            .finish()
    }
}

impl Bucket {
    fn paused_until(&self) -> Option<Instant> {
        *self.paused_until.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl RateBudget {
    pub fn new(per_minute: PacePerMinute) -> Self {
        RateBudget { per_minute, buckets: Mutex::new(HashMap::new()) }
    }

    /// A budget that never paces (a 429's pause still holds its bucket).
    pub fn unpaced() -> Self {
        RateBudget::new(Arc::new(|_| None))
    }

    /// The quota the bucket for `method` gets, or `None` when it is not paced.
    ///
    /// The burst is a single call: Slack counts calls per minute in a moving window, and a
    /// bucket allowing a burst of b on top of n/min can put n+b calls into one window. Evenly
    /// spaced calls never exceed n in any window.
    pub fn quota(&self, method: &str) -> Option<Quota> {
        let n = (self.per_minute)(method)?.max(1);
        let period = Duration::from_secs(60) / n;
        Quota::with_period(period.max(Duration::from_nanos(1))).map(|q| q.allow_burst(NonZeroU32::MIN))
    }

    fn bucket(&self, method: &str, team: Option<&str>) -> Arc<Bucket> {
        let key = (method.to_owned(), team.unwrap_or_default().to_owned());
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let bucket = buckets.entry(key).or_insert_with(|| {
            let quota = self.quota(method);
            Arc::new(Bucket {
                // Up to a tenth of the spacing: enough to de-synchronise concurrent waiters on
                // one bucket without slowing the steady state noticeably.
                jitter: quota.map_or(Duration::ZERO, |q| q.replenish_interval() / 10),
                limiter: quota.map(RateLimiter::direct),
                paused_until: Mutex::new(None),
            })
        });
        Arc::clone(bucket)
    }

    /// Waits until the (method, team) bucket allows one call; returns how long it waited.
    /// A pause set by a 429 is honoured even when pacing is disabled: Slack's `Retry-After`
    /// applies to every caller of that method, not just the one that received it.
    pub async fn acquire(&self, method: &str, team: Option<&str>) -> Duration {
        let bucket = self.bucket(method, team);
        let start = Instant::now();
        loop {
            if let Some(until) = bucket.paused_until()
                && until > Instant::now()
            {
                tokio::time::sleep_until(until).await;
            }
            if let Some(limiter) = &bucket.limiter {
                limiter.until_ready_with_jitter(Jitter::up_to(bucket.jitter)).await;
            }
            // A 429 seen by a concurrent caller while this one waited extends the pause.
            if bucket.paused_until().is_none_or(|until| until <= Instant::now()) {
                break;
            }
        }
        start.elapsed()
    }

    /// Holds every caller of the (method, team) bucket for `wait` (a 429's Retry-After).
    pub fn pause(&self, method: &str, team: Option<&str>, wait: Duration) {
        let bucket = self.bucket(method, team);
        let until = Instant::now() + wait;
        let mut paused = bucket.paused_until.lock().unwrap_or_else(PoisonError::into_inner);
        if paused.is_none_or(|current| current < until) {
            *paused = Some(until);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(enabled: bool, per_minute: [u32; 4]) -> RateBudget {
        RateBudget::new(crate::slack::api::slack_pace(&lastseen_config::RateLimitConfig { enabled, per_minute }))
    }

    #[test]
    fn quota_follows_the_tier() {
        let b = budget(true, [1, 20, 50, 100]);
        let q = b.quota("users.list").unwrap();
        assert_eq!(q.replenish_interval(), Duration::from_secs(3));
        assert_eq!(q.burst_size().get(), 1);
        assert_eq!(b.quota("users.info").unwrap().replenish_interval(), Duration::from_millis(600));
        assert!(budget(false, [1, 20, 50, 100]).quota("users.list").is_none());
    }

    #[tokio::test]
    async fn paces_calls_and_keeps_buckets_apart() {
        // Tier 2 at 1200/min = one call per 50 ms.
        let b = budget(true, [1, 1200, 1200, 1200]);
        let start = Instant::now();
        for _ in 0..5 {
            b.acquire("users.list", Some("T1")).await;
        }
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(190), "{elapsed:?}");
        // Another workspace has its own bucket: no wait.
        let waited = b.acquire("users.list", Some("T2")).await;
        assert!(waited < Duration::from_millis(20), "{waited:?}");
    }

    #[tokio::test]
    async fn pause_holds_the_bucket_even_when_pacing_is_off() {
        let b = budget(false, [1, 1, 1, 1]);
        assert!(b.acquire("users.list", None).await < Duration::from_millis(20));
        b.pause("users.list", None, Duration::from_millis(120));
        let waited = b.acquire("users.list", None).await;
        assert!(waited >= Duration::from_millis(100), "{waited:?}");
        assert!(b.acquire("team.info", None).await < Duration::from_millis(20));
    }
}
