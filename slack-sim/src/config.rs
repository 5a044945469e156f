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
    /// The normal response, but its `next_cursor` is the cursor the request came with: a client
    /// that follows cursors blindly pages forever.
    RepeatCursor,
}

/// A `--faults` file: JSON (a list of rules, or `{"faults": [...]}`) or TOML (`[[faults]]`
/// tables), chosen by the `.toml` extension.
pub fn load_faults(path: impl AsRef<std::path::Path>) -> Result<Vec<FaultRule>, crate::SimError> {
    let path = path.as_ref();
    let bad = |why: String| crate::SimError::InvalidConfig(format!("fault file {}: {why}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    parse_faults(&text, path.extension().is_some_and(|e| e.eq_ignore_ascii_case("toml"))).map_err(bad)
}

#[derive(Deserialize)]
struct FaultFile {
    #[serde(default)]
    faults: Vec<FaultRule>,
}

fn parse_faults(text: &str, toml_syntax: bool) -> Result<Vec<FaultRule>, String> {
    let rules = if toml_syntax {
        toml::from_str::<FaultFile>(text).map_err(|e| e.to_string())?.faults
    } else if text.trim_start().starts_with('[') {
        serde_json::from_str(text).map_err(|e| e.to_string())?
    } else {
        serde_json::from_str::<FaultFile>(text).map_err(|e| e.to_string())?.faults
    };
    for rule in &rules {
        match rule.when {
            FaultWhen::Probability(p) if !(0.0..=1.0).contains(&p) => {
                return Err(format!("probability {p} for {} is not within 0..=1", rule.method));
            }
            FaultWhen::Nth(0) | FaultWhen::EveryNth(0) => {
                return Err(format!("calls are counted from 1; 0 never matches ({})", rule.method));
            }
            _ => {}
        }
    }
    Ok(rules)
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
        assert_eq!(parse_faults(text, false).map(|r| r.len()), Ok(6));
    }

    #[test]
    fn fault_files_load_from_toml_and_json_and_reject_nonsense() {
        let toml_text = r#"
            [[faults]]
            method = "users.list"
            when = { nth = 2 }
            kind = { status = 503 }

            [[faults]]
            method = "*"
            when = { probability = 0.05 }
            kind = "repeat_cursor"
        "#;
        let rules = parse_faults(toml_text, true).unwrap_or_default();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[1].kind, FaultKind::RepeatCursor);
        let wrapped = r#"{"faults":[{"method":"audit.logs","when":{"every_nth":2},"kind":"malformed"}]}"#;
        assert_eq!(parse_faults(wrapped, false).map(|r| r.len()), Ok(1));
        assert!(parse_faults(r#"[{"method":"x","when":{"probability":2.0},"kind":"truncated"}]"#, false).is_err());
        assert!(parse_faults(r#"[{"method":"x","when":{"nth":0},"kind":"truncated"}]"#, false).is_err());

        let dir = std::env::temp_dir().join(format!("slack-sim-faults-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let file = dir.join("faults.toml");
        let _ = std::fs::write(&file, toml_text);
        assert_eq!(load_faults(&file).map(|r| r.len()).ok(), Some(2));
        assert!(load_faults(dir.join("missing.json")).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
