//! Client-side rate budgets: one GCRA token bucket per (method, workspace) at the method's Slack
//! tier, so a steady-state run paces itself below Slack's limits instead of bouncing off 429s,
//! plus the pause a 429's `Retry-After` imposes on the whole bucket.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Jitter, Quota, RateLimiter};
use lastseen_config::RateLimitConfig;
use tokio::time::Instant;

/// Slack's rate-limit tier (1..=4) for `method`. "Special" methods are mapped to the tier
/// closest to their documented behaviour; unknown methods get Tier 2, the most common tier for
/// the read methods a collector uses, so a new method is paced conservatively.
pub fn tier_for(method: &str) -> u8 {
    match method {
        // auth.test is "special" in Slack's docs and generous in practice.
        "auth.test" | "users.info" | "admin.users.list" => 4,
        // The Audit Logs API is Tier 3; SCIM's org-wide read limits (300 to 1000 a minute) are
        // well above Tier 3, which keeps lastseen a modest share of them.
        "team.info" | "admin.teams.list" | "audit.logs" | "scim.Users" | "scim.Groups" => 3,
        "users.list"
        | "team.accessLogs"
        | "team.billableInfo"
        | "usergroups.list"
        | "usergroups.users.list"
        | "admin.users.session.list"
        | "admin.analytics.getFile" => 2,
        _ => 2,
    }
}

type BucketKey = (String, String);

/// The budgets of one client.
#[derive(Debug)]
pub struct RateBudget {
    /// Calls per minute for tiers 1..=4; `None` when pacing is disabled.
    per_minute: Option<[u32; 4]>,
    buckets: Mutex<HashMap<BucketKey, Arc<Bucket>>>,
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
    pub fn new(cfg: &RateLimitConfig) -> Self {
        RateBudget { per_minute: cfg.enabled.then_some(cfg.per_minute), buckets: Mutex::new(HashMap::new()) }
    }

    /// The quota the bucket for `method` gets, or `None` when pacing is disabled.
    ///
    /// The burst is a single call: Slack counts calls per minute in a moving window, and a
    /// bucket allowing a burst of b on top of n/min can put n+b calls into one window. Evenly
    /// spaced calls never exceed n in any window.
    pub fn quota(&self, method: &str) -> Option<Quota> {
        let per_minute = self.per_minute?;
        let n = per_minute[usize::from(tier_for(method).clamp(1, 4)) - 1].max(1);
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
        RateBudget::new(&RateLimitConfig { enabled, per_minute })
    }

    #[test]
    fn tiers() {
        assert_eq!(tier_for("users.list"), 2);
        assert_eq!(tier_for("team.accessLogs"), 2);
        assert_eq!(tier_for("team.info"), 3);
        assert_eq!(tier_for("users.info"), 4);
        assert_eq!(tier_for("auth.test"), 4);
        assert_eq!(tier_for("something.new"), 2);
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
