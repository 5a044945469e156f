//! The retry policy as data: how many attempts, which backoff, how a rate-limit answer's "wait
//! until" (Slack's `Retry-After`, Okta's `X-Rate-Limit-Reset`) overrides it, and how long
//! rate-limit answers may be waited out. The loop itself is `HttpClient::retrying`; this module
//! only supplies the delays.

use std::time::Duration;

use lastseen_config::RetryConfig;

use crate::error::IngestError;

/// Attempts and delays for one API call, from the app's retry section (`[slack.retry]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts including the first; at least 1.
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    pub min_retry_after: Duration,
    pub max_retry_after: Duration,
    /// How long one request may keep waiting out rate-limit answers, which do not count
    /// against `max_attempts`.
    pub rate_limit_budget: Duration,
}

impl From<&RetryConfig> for RetryPolicy {
    fn from(cfg: &RetryConfig) -> Self {
        RetryPolicy {
            max_attempts: cfg.max_attempts.max(1),
            initial_backoff: cfg.initial_backoff,
            max_backoff: cfg.max_backoff.max(cfg.initial_backoff),
            min_retry_after: cfg.min_retry_after,
            max_retry_after: cfg.max_retry_after.max(cfg.min_retry_after),
            rate_limit_budget: cfg.rate_limit_budget,
        }
    }
}

impl RetryPolicy {
    /// The delays before attempts 2..=max_attempts.
    pub fn backoff(&self) -> FullJitter {
        FullJitter {
            initial: self.initial_backoff,
            max: self.max_backoff.max(self.initial_backoff),
            step: 0,
            remaining: self.max_attempts.saturating_sub(1),
            rng: fastrand::Rng::new(),
        }
    }

    /// The delays after rate-limit answers without a `Retry-After`: the same full-jitter
    /// curve, without an attempt limit (the time budget bounds them instead).
    pub fn rate_limit_backoff(&self) -> FullJitter {
        FullJitter { remaining: u32::MAX, ..self.backoff() }
    }

    /// The wait before retrying after `err`, given the backoff's proposal. The server's
    /// wait hint (`Retry-After` and the like) wins over the backoff (within the configured
    /// bounds) because retrying earlier only earns another 429.
    pub fn delay_for(&self, err: &IngestError, proposed: Duration) -> Duration {
        match err {
            IngestError::RateLimited { retry_after: Some(after), .. } => {
                (*after).clamp(self.min_retry_after, self.max_retry_after)
            }
            _ => proposed,
        }
    }
}

/// Exponential backoff with full jitter: the n-th delay is drawn uniformly from
/// `[initial, min(max, initial * 2^(n+1))]`. Drawing over the whole range (not adding a small
/// jitter to a fixed delay) is what spreads out clients that failed together; the floor keeps a
/// retry from landing immediately on a server that just failed.
#[derive(Debug)]
pub struct FullJitter {
    initial: Duration,
    max: Duration,
    step: u32,
    remaining: u32,
    rng: fastrand::Rng,
}

impl FullJitter {
    fn ceiling(&self) -> Duration {
        let factor = 2u32.saturating_pow(self.step.saturating_add(1).min(30));
        self.initial.saturating_mul(factor).min(self.max)
    }
}

impl Iterator for FullJitter {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let ceiling = self.ceiling();
        self.step = self.step.saturating_add(1);
        let lo = duration_nanos(self.initial.min(ceiling));
        let hi = duration_nanos(ceiling);
        Some(Duration::from_nanos(self.rng.u64(lo..=hi)))
    }
}

fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            min_retry_after: Duration::from_secs(1),
            max_retry_after: Duration::from_secs(30),
            rate_limit_budget: Duration::from_secs(60),
        }
    }

    #[test]
    fn backoff_yields_one_delay_per_retry_within_bounds() {
        let delays: Vec<_> = policy(8).backoff().collect();
        assert_eq!(delays.len(), 7);
        for (n, d) in delays.iter().enumerate() {
            let ceiling = Duration::from_millis(100 * 2u64.pow(n as u32 + 1)).min(Duration::from_secs(1));
            assert!(*d >= Duration::from_millis(100) && *d <= ceiling, "{n}: {d:?}");
        }
        assert_eq!(policy(1).backoff().count(), 0);
    }

    #[test]
    fn retry_after_is_clamped_and_wins() {
        let p = policy(3);
        let rl = |secs| IngestError::RateLimited { method: "m".into(), retry_after: Some(Duration::from_secs(secs)) };
        let proposed = Duration::from_millis(150);
        assert_eq!(p.delay_for(&rl(0), proposed), Duration::from_secs(1));
        assert_eq!(p.delay_for(&rl(5), proposed), Duration::from_secs(5));
        assert_eq!(p.delay_for(&rl(3600), proposed), Duration::from_secs(30));
        let no_header = IngestError::RateLimited { method: "m".into(), retry_after: None };
        assert_eq!(p.delay_for(&no_header, proposed), proposed);
    }

    #[test]
    fn from_config_repairs_inverted_bounds() {
        let cfg = RetryConfig {
            max_attempts: 0,
            initial_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(1),
            min_retry_after: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(1),
            rate_limit_budget: Duration::from_secs(1),
        };
        let p = RetryPolicy::from(&cfg);
        assert_eq!(p.max_attempts, 1);
        assert_eq!(p.max_backoff, Duration::from_secs(2));
        assert_eq!(p.max_retry_after, Duration::from_secs(5));
    }
}
