//! How a simulator run behaves beyond the organisation: rate limiting and injected faults.

use serde::{Deserialize, Serialize};

use crate::org::OrgSpec;

#[derive(Clone, Debug)]
pub struct SimConfig {
    pub org: OrgSpec,
    pub rate_limits: RateLimits,
    pub faults: Vec<FaultRule>,
    /// Standing conditions of the organisation or token (what real organisations live with).
    pub conditions: Conditions,
}

impl SimConfig {
    /// No rate limits, no faults and no standing conditions: the well-behaved Slack.
    pub fn new(org: OrgSpec) -> Self {
        Self { org, rate_limits: RateLimits::Off, faults: Vec::new(), conditions: Conditions::default() }
    }
}

/// Standing conditions Slack documents, each a switch (`[conditions]` in a faults file). Unlike
/// faults they are not transient: every call they concern answers the same way. Each cites the
/// documentation or contract data it reproduces.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Conditions {
    /// Grid: the org-wide app is granted only these workspaces (indices into the organisation's
    /// workspaces); `None` = all. `auth.teams.list` lists only these, and workspace-scoped
    /// methods answer `team_access_not_granted` for the others. ("the app won't actually be
    /// added to any workspaces yet", Slack's org-wide apps reference; `auth.teams.list`:
    /// "Obtain a full list of workspaces your org-wide app has been approved for".)
    pub granted_workspaces: Option<Vec<usize>>,
    /// The organisation's "Hide email addresses" policy: `admin.analytics.getFile` answers
    /// `org_level_email_display_disabled` (its docs.slack.dev error table).
    pub hide_emails: bool,
    /// Member analytics switched off: `admin.analytics.getFile` answers
    /// `member_analytics_disabled` (same error table).
    pub analytics_disabled: bool,
    /// Workspaces (indices) the org owner whose org token this is is not a member of:
    /// `team.billableInfo` with that `team_id` answers `invalid_auth` ("passing the team_id
    /// parameter will result in an invalid_auth error if the org owner is not part of the
    /// team", Slack's team.billableInfo page).
    pub owner_missing_from: Vec<usize>,
    /// SCIM refuses the token: HTTP 401 `{"Errors":{"description":"invalid_authentication",
    /// "code":401}}` on v1 and v2 (java-slack-sdk `test_with_remote_apis/scim*/ApiTest.java`).
    pub scim_refuses_token: bool,
    /// The Audit Logs API refuses the token (an org admin's, not an owner's): HTTP 401 with no
    /// body (java-slack-sdk `test_with_remote_apis/audit/ApiTest.java` `getLogs_dummy`).
    pub audit_refuses_token: bool,
    /// Audit actions answered with HTTP 400 as no longer supported (java-slack-sdk audit
    /// `ApiTest.java` `verifyAllActions`).
    pub audit_unsupported_actions: Vec<String>,
    /// Every member-analytics file carries one malformed line (a truncated JSON object) after
    /// its first row: real files are "often very large" NDJSON (java-slack-sdk
    /// `AdminAnalyticsGetFileResponse.java`), and one bad line must not sink a day.
    pub analytics_bad_line: bool,
    /// Member-analytics rows carry `enterprise_user_id` instead of `user_id`, the name Slack's
    /// field guide uses ("The canonical, organization-wide user ID this row concerns", older
    /// api.slack.com admin.analytics.getFile page).
    pub analytics_enterprise_user_id: bool,
    /// `team.accessLogs` lists entries by `date_first` (newest first) instead of `date_last`:
    /// Slack documents no sort key ("Set the before parameter to the oldest timestamp
    /// returned", team.accessLogs page), so either order is possible.
    pub access_logs_by_date_first: bool,
    /// Workspaces (indices; 0 outside a Grid) whose `team.accessLogs` answers the classic way
    /// only: `limit` and `cursor` are ignored, `count` (default 100) and `page` are honoured,
    /// and the answer carries the `paging` block (`count`, `total`, `page`, `pages`) and no
    /// `response_metadata`. That is the method as it was before cursor paging was added in
    /// May 2023 ("If specified, result is returned using a cursor-based approach instead of a
    /// classic one", team.accessLogs page; `paging` as in the contract sample
    /// `api__team.accessLogs.json` and the team.accessLogs page's example response).
    pub access_logs_classic: Vec<usize>,
    /// The organisation's bot users are workflow and connector bots (`is_workflow_bot`,
    /// `is_connector_bot`, with `is_bot: false`): see `api::service_flags`.
    pub workflow_bots: bool,
    /// Listed per workspace: a Web API method answers an error code for one workspace (an org
    /// token's `team_id`). For the codes of Slack's common error table (`not_an_admin`,
    /// `access_denied`, `no_permission`, `ekm_access_denied`, …, as republished on hexdocs
    /// `slack_kit` "Common Errors") that one workspace can answer while others do not.
    pub workspace_errors: Vec<WorkspaceError>,
}

/// One `Conditions::workspace_errors` entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceError {
    pub method: String,
    /// Index into the organisation's workspaces.
    pub workspace: usize,
    pub error: String,
}

impl Conditions {
    /// Whether an org-wide app was granted workspace `ws`.
    pub fn granted(&self, ws: usize) -> bool {
        self.granted_workspaces.as_ref().is_none_or(|g| g.contains(&ws))
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
    #[serde(default)]
    conditions: Conditions,
}

/// The `[conditions]` of a faults file (TOML, or a JSON object with `"conditions"`); none when
/// the file is a bare JSON list of fault rules.
pub fn load_conditions(path: impl AsRef<std::path::Path>) -> Result<Conditions, crate::SimError> {
    let path = path.as_ref();
    let bad = |why: String| crate::SimError::InvalidConfig(format!("fault file {}: {why}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("toml")) {
        toml::from_str::<FaultFile>(&text).map(|f| f.conditions).map_err(|e| bad(e.to_string()))
    } else if text.trim_start().starts_with('[') {
        Ok(Conditions::default())
    } else {
        serde_json::from_str::<FaultFile>(&text).map(|f| f.conditions).map_err(|e| bad(e.to_string()))
    }
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
        let with_conditions = format!(
            "{toml_text}\n[conditions]\ngranted_workspaces = [0, 2]\nhide_emails = true\n\
             [[conditions.workspace_errors]]\nmethod = \"users.list\"\nworkspace = 1\nerror = \"not_an_admin\"\n"
        );
        let c = toml::from_str::<FaultFile>(&with_conditions).map(|f| f.conditions).unwrap_or_default();
        assert_eq!(c.granted_workspaces, Some(vec![0, 2]));
        assert!(c.hide_emails && !c.granted(1) && c.granted(2));
        assert_eq!(c.workspace_errors[0].error, "not_an_admin");
        assert!(toml::from_str::<FaultFile>("[conditions]\nhide_email = true\n").is_err(), "typos are refused");
        let file = dir.join("faults.toml");
        let _ = std::fs::write(&file, toml_text);
        assert_eq!(load_faults(&file).map(|r| r.len()).ok(), Some(2));
        assert!(load_faults(dir.join("missing.json")).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
