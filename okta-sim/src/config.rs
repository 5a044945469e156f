//! How a simulator run behaves beyond the organisation: rate limits and injected faults.

use serde::{Deserialize, Serialize};

pub use lastseen_slack_sim::FaultWhen;

use crate::oauth::OAuthClient;
use crate::org::OktaOrgSpec;

#[derive(Clone, Debug)]
pub struct OktaSimConfig {
    pub org: OktaOrgSpec,
    pub rate_limits: RateLimits,
    pub faults: Vec<FaultRule>,
    /// Service apps that may get access tokens from `/oauth2/v1/token` (private_key_jwt).
    pub oauth_clients: Vec<OAuthClient>,
    /// Lifetime of an issued access token ("expires_in": 3600 in the service-app guide).
    pub access_token_ttl_secs: u64,
}

impl OktaSimConfig {
    /// No enforced rate limits, no faults, no OAuth clients.
    pub fn new(org: OktaOrgSpec) -> Self {
        Self {
            org,
            rate_limits: RateLimits::default(),
            faults: Vec::new(),
            oauth_clients: Vec::new(),
            access_token_ttl_secs: 3600,
        }
    }
}

/// Per-endpoint budgets ("Okta implements rate limits using buckets … Most counters allow N
/// requests per minute. Counters typically reset every 60 seconds", developer.okta.com
/// reference/rate-limits). The window runs on wall-clock time, because clients wait for
/// `X-Rate-Limit-Reset` (UTC epoch seconds) in real time.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RateLimits {
    /// Refuse with 429 once a bucket is spent. When false, the headers still report the
    /// budgets, with `X-Rate-Limit-Remaining` never consumed (an org with room to spare), so a
    /// client pacing from the headers is never slowed down.
    pub enforce: bool,
    /// `GET /api/v1/users` per window (600/min for Enterprise and Workforce Identity orgs,
    /// okta-developer-docs `reference/rl-global-mgmt`).
    pub users: u32,
    /// `GET /api/v1/logs` per window (120/min for Workforce Identity, 50 for Enterprise, 20 for
    /// the Integrator Free plan; same table).
    pub logs: u32,
    /// Window length in seconds (60 at Okta; shorter in tests).
    pub window_secs: u64,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self { enforce: false, users: 600, logs: 120, window_secs: 60 }
    }
}

impl RateLimits {
    /// Enforced budgets per window of `window_secs` seconds.
    pub fn enforced(users: u32, logs: u32, window_secs: u64) -> Self {
        Self { enforce: true, users, logs, window_secs }
    }
}

/// One injected fault: which endpoint (`users`, `logs`, or `"*"`), on which calls, what goes
/// wrong. Calls are counted per endpoint from 1, failed ones included.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaultRule {
    pub endpoint: String,
    pub when: FaultWhen,
    pub kind: FaultKind,
}

impl FaultRule {
    pub fn new(endpoint: impl Into<String>, when: FaultWhen, kind: FaultKind) -> Self {
        Self { endpoint: endpoint.into(), when, kind }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// That HTTP status with an HTML body, as a load balancer in front of Okta would send.
    Status(u16),
    /// 429 with Okta's E0000047 envelope and `X-Rate-Limit-Remaining: 0`, the reset this many
    /// seconds ahead.
    RateLimited { reset_secs: u64 },
    /// HTTP 500 with Okta's E0000009 timeout envelope ("Individual queries have a timeout of 30
    /// seconds"; System Log API, "Errors").
    Timeout,
    /// The normal body cut off in the middle.
    Truncated,
    /// A 200 whose body is not JSON.
    Malformed,
    /// The normal response after a delay.
    Slow { millis: u64 },
    /// The normal response whose `next` link carries the request's own `after`: a client that
    /// follows links blindly pages forever.
    RepeatCursor,
}
