//! How a simulator run behaves beyond the organisation: rate limiting and injected faults.

use serde::{Deserialize, Serialize};

use crate::org::OrgSpec;

#[derive(Clone, Debug)]
pub struct SimConfig {
    pub org: OrgSpec,
    pub rate_limits: RateLimits,
    pub faults: Vec<FaultRule>,
}

impl SimConfig {
    /// No rate limits and no faults: the well-behaved Slack.
    pub fn new(org: OrgSpec) -> Self {
        Self { org, rate_limits: RateLimits::Off, faults: Vec::new() }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateLimits {
    Off,
    /// Slack's per-minute tier rates multiplied by `scale` (60.0 = a minute's quota per second).
    Tiers {
        scale: f64,
    },
}

/// One injected fault: which method (or `"*"` for all), on which calls, and what goes wrong.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaultRule {
    pub method: String,
    pub when: FaultWhen,
    pub kind: FaultKind,
}

impl FaultRule {
    pub fn new(method: impl Into<String>, when: FaultWhen, kind: FaultKind) -> Self {
        Self { method: method.into(), when, kind }
    }
}

/// Calls are counted per method, 1-based, including calls that fail; a `"*"` rule looks at the
/// counter of whichever method is being called.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultWhen {
    /// Exactly the Nth call.
    Nth(u64),
    /// Every Nth call (N, 2N, ...).
    EveryNth(u64),
    /// Each call with this probability, decided by the seed so runs repeat.
    Probability(f64),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// That HTTP status with an HTML body, as a load balancer in front of Slack would send.
    Status(u16),
    RateLimited {
        retry_after_secs: u64,
    },
    /// The normal JSON body cut off in the middle.
    Truncated,
    /// A 200 whose body is not JSON.
    Malformed,
    /// The normal response, after a delay.
    Slow {
        millis: u64,
    },
    /// `{"ok":false,"error":<error>}` with HTTP 200.
    OkFalse {
        error: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_rules_load_from_json() {
        let text = r#"[
            {"method":"users.list","when":{"nth":2},"kind":{"status":503}},
            {"method":"*","when":{"probability":0.1},"kind":"truncated"},
            {"method":"team.accessLogs","when":{"every_nth":3},"kind":{"rate_limited":{"retry_after_secs":2}}},
            {"method":"auth.test","when":{"nth":1},"kind":{"ok_false":{"error":"fatal_error"}}},
            {"method":"team.info","when":{"nth":1},"kind":{"slow":{"millis":50}}},
            {"method":"team.info","when":{"nth":2},"kind":"malformed"}
        ]"#;
        let rules: Vec<FaultRule> = serde_json::from_str(text).unwrap_or_default();
        assert_eq!(rules.len(), 6);
        assert_eq!(rules[0], FaultRule::new("users.list", FaultWhen::Nth(2), FaultKind::Status(503)));
        assert_eq!(rules[2].kind, FaultKind::RateLimited { retry_after_secs: 2 });
        assert_eq!(rules[4].kind, FaultKind::Slow { millis: 50 });
    }
}
