//! A deprovisioning plan: per account the intended SCIM call, the evidence and every guard's
//! verdict read live from Slack; hashed so an approval pins exactly what was reviewed. Building
//! a plan writes nothing to Slack.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use lastseen_query::QueryEngine;
use lastseen_query::reports::{self, ReportParams};
use serde::{Deserialize, Serialize};

use crate::decisions::{cell, text_col};
use crate::error::{DeprovisionError, Result, sha256_hex};
use crate::slack::{Call, LiveAccount, Slack};

pub const PLAN_FORMAT: u32 = 1;

/// The app deprovisioning acts on: it deactivates Slack accounts through SCIM.
const SLACK: &str = "slack";

/// Deactivate or re-activate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Deactivate,
    Reactivate,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Deactivate => "deactivate",
            Kind::Reactivate => "reactivate",
        }
    }

    pub fn target_active(self) -> bool {
        self == Kind::Reactivate
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Warn,
    Refuse,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardResult {
    pub guard: String,
    pub verdict: Verdict,
    pub detail: String,
}

/// Why the account is in the plan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    pub decision: Option<String>,
    pub decided_by: Option<String>,
    pub note: Option<String>,
    pub recommendation: Option<String>,
    pub last_seen_at: Option<String>,
    pub last_seen_source: Option<String>,
    pub state: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    pub account_id: String,
    pub workspace_id: Option<String>,
    pub username: Option<String>,
    pub email: Option<String>,
    pub kind: Kind,
    pub call: Call,
    pub evidence: Evidence,
    pub guards: Vec<GuardResult>,
    /// True when every guard passed or only warned: the action will be attempted.
    pub planned: bool,
    /// Needs a second approver (an owner or admin, allowed with --allow-privileged).
    pub privileged: bool,
}

impl Action {
    pub fn refusals(&self) -> Vec<&GuardResult> {
        self.guards.iter().filter(|g| g.verdict == Verdict::Refuse).collect()
    }

    pub fn warnings(&self) -> Vec<&GuardResult> {
        self.guards.iter().filter(|g| g.verdict == Verdict::Warn).collect()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Source {
    /// `decisions` (revoke decisions of an imported review) or `dormant` (a dormant report).
    pub kind: String,
    pub review_id: Option<String>,
    pub as_of: NaiveDate,
    /// The lake version the plan read.
    pub lake_version: u64,
    /// The newest `last_seen` snapshot day when planned: a newer one makes the plan stale.
    pub newest_evidence_day: Option<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub scim_base: String,
    pub scim_version: String,
    pub team_id: String,
    pub enterprise_id: Option<String>,
    pub token_user: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cap {
    pub max_actions: usize,
    pub max_share: f64,
    pub active_accounts: usize,
}

/// Everything the hash covers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanBody {
    pub format: u32,
    pub created_at: DateTime<Utc>,
    pub source: Source,
    pub target: Target,
    pub allow_privileged: bool,
    pub cap: Cap,
    pub actions: Vec<Action>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// SHA-256 of the body's JSON: an edited plan no longer matches.
    pub plan_id: String,
    #[serde(flatten)]
    pub body: PlanBody,
}

impl Plan {
    pub fn seal(body: PlanBody) -> Plan {
        Plan { plan_id: body_hash(&body), body }
    }

    pub fn planned(&self) -> impl Iterator<Item = &Action> {
        self.body.actions.iter().filter(|a| a.planned)
    }

    /// Reads a plan file and checks its hash.
    pub fn load(path: &std::path::Path) -> Result<Plan> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| DeprovisionError::File { path: path.into(), detail: format!("cannot read it: {e}") })?;
        let plan: Plan = serde_json::from_str(&text)
            .map_err(|e| DeprovisionError::File { path: path.into(), detail: format!("not a plan: {e}") })?;
        plan.verify()?;
        Ok(plan)
    }

    pub fn verify(&self) -> Result<()> {
        let actual = body_hash(&self.body);
        if actual != self.plan_id {
            return Err(DeprovisionError::Refused(format!(
                "the plan was changed after it was made (plan_id {} but its content hashes to {actual}); make a new \
                 plan with `lastseen deprovision plan` and have it approved",
                self.plan_id
            )));
        }
        if self.body.format != PLAN_FORMAT {
            return Err(DeprovisionError::Refused(format!("plan format {} is not {PLAN_FORMAT}", self.body.format)));
        }
        Ok(())
    }
}

fn body_hash(body: &PlanBody) -> String {
    // Struct fields serialise in declaration order and maps are BTreeMaps: the JSON is canonical.
    sha256_hex(&serde_json::to_vec(body).unwrap_or_default())
}

/// Options of `lastseen deprovision plan`.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    /// Build from this review's decisions (None: the newest imported review).
    pub review_id: Option<String>,
    /// Build from the dormant report with this threshold instead of decisions.
    pub dormant_days: Option<u32>,
    pub allow_privileged: bool,
    pub max_actions: usize,
    pub max_share: f64,
}

/// A candidate before the live checks.
#[derive(Debug, Clone, Default)]
pub struct Candidate {
    pub account_id: String,
    pub workspace_id: Option<String>,
    pub username: Option<String>,
    pub email: Option<String>,
    pub evidence: Evidence,
}

/// Runs a query and returns its rows as text maps.
pub(crate) async fn rows(
    engine: &QueryEngine,
    sql: &str,
    params: &[(&str, datafusion::common::ScalarValue)],
) -> Result<Vec<BTreeMap<String, Option<String>>>> {
    let batches = engine.plan(sql, params).await?.collect().await?;
    let mut out = Vec::new();
    for b in &batches {
        let names: Vec<String> = b.schema().fields().iter().map(|f| f.name().clone()).collect();
        let cols: Vec<_> = names.iter().map(|n| text_col(b, n)).collect();
        for i in 0..b.num_rows() {
            out.push(names.iter().zip(&cols).map(|(n, c)| (n.clone(), cell(c.as_ref(), i))).collect());
        }
    }
    Ok(out)
}

fn get(row: &BTreeMap<String, Option<String>>, k: &str) -> Option<String> {
    row.get(k).cloned().flatten()
}

/// The candidates and where they come from: revoke decisions, or a dormant report.
pub async fn candidates(engine: &QueryEngine, opts: &PlanOptions) -> Result<(Source, Vec<Candidate>)> {
    let lake_version = engine.snapshot().version;
    let newest_evidence_day = engine.dates("last_seen").last().copied();
    if let Some(days) = opts.dormant_days {
        let def = reports::find("dormant")?;
        // Deprovisioning deactivates Slack accounts (SCIM): the dormant accounts of other apps
        // in the lake (Okta's) are not its to act on.
        let params = ReportParams { days: Some(days), app: Some(SLACK.into()), ..Default::default() };
        let out = def.run(engine, &params).await?;
        let as_of = out.as_of.ok_or_else(|| DeprovisionError::Usage("the lake has no last_seen snapshot".into()))?;
        let mut list = Vec::new();
        for b in &out.data.batches {
            let c = |n: &str| text_col(b, n);
            let (id, ws, user, email, seen, src, state) = (
                c("account_id"),
                c("workspace_id"),
                c("username"),
                c("email"),
                c("last_seen_at"),
                c("last_seen_source"),
                c("state"),
            );
            for i in 0..b.num_rows() {
                let Some(account_id) = cell(id.as_ref(), i) else { continue };
                list.push(Candidate {
                    account_id,
                    workspace_id: cell(ws.as_ref(), i),
                    username: cell(user.as_ref(), i),
                    email: cell(email.as_ref(), i),
                    evidence: Evidence {
                        recommendation: Some(format!("dormant: no evidence of use in {days} days")),
                        last_seen_at: cell(seen.as_ref(), i),
                        last_seen_source: cell(src.as_ref(), i),
                        state: cell(state.as_ref(), i),
                        ..Default::default()
                    },
                });
            }
        }
        let source = Source { kind: "dormant".into(), review_id: None, as_of, lake_version, newest_evidence_day };
        return Ok((source, list));
    }
    if engine.dates("review_decisions").is_empty() {
        return Err(DeprovisionError::Usage(
            "no review decisions in the lake: export `lastseen report review`, fill in `decision`, then `lastseen \
             review import FILE` (or plan from a dormant report with --dormant-days N)"
                .into(),
        ));
    }
    let review_id = match &opts.review_id {
        Some(r) => r.clone(),
        None => {
            let newest = rows(
                engine,
                "SELECT review_id FROM review_decisions ORDER BY imported_at DESC, review_id LIMIT 1",
                &[],
            )
            .await?;
            newest.first().and_then(|r| get(r, "review_id")).unwrap_or_default()
        }
    };
    // The newest decision per account wins (a re-import after a correction). A review of every
    // app holds other apps' accounts too (`other_app`): those are left out, with a warning.
    let sql = "SELECT d.account_id, d.workspace_id, d.username, d.email, d.decision, d.decided_by, d.note, \
                      d.recommendation, CAST(d.review_as_of AS VARCHAR) AS as_of, \
                      CAST(ls.last_seen_at AS VARCHAR) AS last_seen_at, ls.last_seen_source, ls.state, \
                      (SELECT min(a.app) FROM accounts AS a WHERE a.dt = d.review_as_of \
                          AND a.account_id = d.account_id AND a.app <> 'slack') AS other_app \
               FROM (SELECT *, row_number() OVER (PARTITION BY account_id ORDER BY imported_at DESC) AS rn \
                     FROM review_decisions WHERE review_id = $review) AS d \
               LEFT JOIN last_seen AS ls ON ls.dt = d.review_as_of AND ls.account_id = d.account_id \
               WHERE d.rn = 1 ORDER BY d.account_id";
    let found =
        rows(engine, sql, &[("review", datafusion::common::ScalarValue::Utf8(Some(review_id.clone())))]).await?;
    let as_of = found
        .first()
        .and_then(|r| get(r, "as_of"))
        .and_then(|d| d.parse().ok())
        .ok_or_else(|| DeprovisionError::Usage(format!("review {review_id} has no imported decisions")))?;
    let (found, other): (Vec<_>, Vec<_>) = found.into_iter().partition(|r| get(r, "other_app").is_none());
    let other_revoked = other.iter().filter(|r| get(r, "decision").as_deref() == Some("revoke")).count();
    if other_revoked > 0 {
        tracing::warn!(
            review = %review_id,
            decisions = other_revoked,
            "revoke decisions for accounts of other apps than Slack are not planned: lastseen deprovisions Slack accounts only"
        );
    }
    let list = found
        .iter()
        .filter(|r| get(r, "decision").as_deref() == Some("revoke"))
        .map(|r| Candidate {
            account_id: get(r, "account_id").unwrap_or_default(),
            workspace_id: get(r, "workspace_id"),
            username: get(r, "username"),
            email: get(r, "email"),
            evidence: Evidence {
                decision: get(r, "decision"),
                decided_by: get(r, "decided_by"),
                note: get(r, "note"),
                recommendation: get(r, "recommendation"),
                last_seen_at: get(r, "last_seen_at"),
                last_seen_source: get(r, "last_seen_source"),
                state: get(r, "state"),
            },
        })
        .collect();
    let source =
        Source { kind: "decisions".into(), review_id: Some(review_id), as_of, lake_version, newest_evidence_day };
    Ok((source, list))
}

/// The newest evidence of use per account in the newest `last_seen` snapshot (RFC 3339 text).
pub async fn newest_evidence(engine: &QueryEngine) -> Result<BTreeMap<String, DateTime<Utc>>> {
    if engine.dates("last_seen").is_empty() {
        return Ok(BTreeMap::new());
    }
    let sql = "SELECT account_id, CAST(to_unixtime(max(last_seen_at)) AS BIGINT) AS t FROM last_seen \
               WHERE dt = (SELECT max(dt) FROM last_seen) AND last_seen_at IS NOT NULL GROUP BY account_id";
    let mut out = BTreeMap::new();
    for r in rows(engine, sql, &[]).await? {
        if let (Some(id), Some(t)) = (get(&r, "account_id"), get(&r, "t").and_then(|t| t.parse::<i64>().ok()))
            && let Some(t) = DateTime::from_timestamp(t, 0)
        {
            out.insert(id, t);
        }
    }
    Ok(out)
}

/// Active (not deactivated, not invited) Slack accounts of the newest snapshot: the cap's base.
pub async fn active_accounts(engine: &QueryEngine) -> Result<usize> {
    if engine.dates("accounts").is_empty() {
        return Ok(0);
    }
    let sql = "SELECT count(DISTINCT account_id) AS n FROM accounts WHERE dt = (SELECT max(dt) FROM accounts) \
               AND status = 'active' AND app = 'slack'";
    let r = rows(engine, sql, &[]).await?;
    Ok(r.first().and_then(|r| get(r, "n")).and_then(|n| n.parse().ok()).unwrap_or(0))
}

/// Every guard for one account, from a live read. `as_of` and `newest` decide the activity
/// guard; `allow_privileged` lets owners (not the primary owner) and admins through.
pub fn guards(
    kind: Kind,
    account: &str,
    live: &LiveAccount,
    token_user: &str,
    as_of: NaiveDate,
    newest: Option<DateTime<Utc>>,
    allow_privileged: bool,
) -> Vec<GuardResult> {
    let mut out = Vec::new();
    let mut put = |guard: &str, verdict: Verdict, detail: String| {
        out.push(GuardResult { guard: guard.into(), verdict, detail });
    };
    use Verdict::{Pass, Refuse, Warn};
    if !live.found {
        put("found", Refuse, "Slack does not know this account (SCIM and users.info: not found)".into());
        return out;
    }
    put("found", Pass, String::new());
    if live.is_bot || live.is_app_user || account == "USLACKBOT" {
        put("not_a_bot", Refuse, "a bot, app or Slackbot: SCIM cannot deactivate it; remove the app instead".into());
    } else {
        put("not_a_bot", Pass, String::new());
    }
    match kind {
        Kind::Deactivate => {
            if live.active {
                put("active", Pass, String::new());
            } else {
                put("active", Refuse, "already deactivated: nothing to do".into());
            }
            if live.is_primary_owner {
                put("not_primary_owner", Refuse, "the primary owner is never deactivated".into());
            } else {
                put("not_primary_owner", Pass, String::new());
            }
            if (live.is_owner || live.is_admin) && !live.is_primary_owner {
                let role = if live.is_owner { "an owner" } else { "an admin" };
                if allow_privileged {
                    put("not_privileged", Warn, format!("{role}: allowed by --allow-privileged; needs two approvers"));
                } else {
                    put("not_privileged", Refuse, format!("{role}: refused unless planned with --allow-privileged"));
                }
            } else {
                put("not_privileged", Pass, String::new());
            }
            if account == token_user {
                put("not_token_user", Refuse, "the token's own user: deactivating it would lock lastseen out".into());
            } else {
                put("not_token_user", Pass, String::new());
            }
            let end_of_as_of = as_of.and_hms_opt(23, 59, 59).map(|t| t.and_utc());
            match (newest, end_of_as_of) {
                (Some(seen), Some(end)) if seen > end => put(
                    "no_activity_after_as_of",
                    Refuse,
                    format!(
                        "used on {} after the review's as-of {as_of}: the decision is stale",
                        seen.format("%Y-%m-%d %H:%M")
                    ),
                ),
                _ => put("no_activity_after_as_of", Pass, String::new()),
            }
            match &live.external_id {
                Some(ext) => put(
                    "not_idp_managed",
                    Warn,
                    format!(
                        "managed by the IdP (externalId {ext}): unassign it in the IdP, or the IdP's next push will \
                         re-activate it"
                    ),
                ),
                None => put("not_idp_managed", Pass, String::new()),
            }
        }
        Kind::Reactivate => {
            if live.active {
                put("inactive", Refuse, "already active: nothing to do".into());
            } else {
                put("inactive", Pass, String::new());
            }
        }
    }
    out
}

/// Builds one action from a candidate and its live read.
#[allow(clippy::too_many_arguments)]
pub fn action(
    c: &Candidate,
    kind: Kind,
    live: &LiveAccount,
    token_user: &str,
    as_of: NaiveDate,
    newest: Option<DateTime<Utc>>,
    allow_privileged: bool,
    v1: bool,
) -> Action {
    let guards = guards(kind, &c.account_id, live, token_user, as_of, newest, allow_privileged);
    let planned = guards.iter().all(|g| g.verdict != Verdict::Refuse);
    Action {
        account_id: c.account_id.clone(),
        workspace_id: c.workspace_id.clone(),
        username: c.username.clone(),
        email: c.email.clone(),
        kind,
        call: Call::set_active(&c.account_id, kind.target_active(), v1),
        evidence: c.evidence.clone(),
        privileged: kind == Kind::Deactivate && (live.is_owner || live.is_admin),
        guards,
        planned,
    }
}

/// Builds the plan: candidates, a live read each, guards, the cap.
pub async fn build(engine: &QueryEngine, slack: &Slack, opts: &PlanOptions) -> Result<Plan> {
    let (source, candidates) = candidates(engine, opts).await?;
    let newest = newest_evidence(engine).await?;
    let mut actions = Vec::with_capacity(candidates.len());
    for c in &candidates {
        let live = slack.read(&c.account_id, c.workspace_id.as_deref()).await?;
        actions.push(action(
            c,
            Kind::Deactivate,
            &live,
            &slack.auth.user_id,
            source.as_of,
            newest.get(&c.account_id).copied(),
            opts.allow_privileged,
            slack.v1,
        ));
    }
    let active = active_accounts(engine).await?;
    let cap = Cap { max_actions: opts.max_actions, max_share: opts.max_share, active_accounts: active };
    check_cap(actions.iter().filter(|a| a.planned).count(), &cap)?;
    let body = PlanBody {
        format: PLAN_FORMAT,
        created_at: Utc::now(),
        source,
        target: Target {
            scim_base: slack.scim_base.to_string(),
            scim_version: if slack.v1 { "v1.1" } else { "v2" }.into(),
            team_id: slack.auth.team_id.clone(),
            enterprise_id: slack.auth.enterprise_id.clone(),
            token_user: slack.auth.user_id.clone(),
        },
        allow_privileged: opts.allow_privileged,
        cap,
        actions,
    };
    Ok(Plan::seal(body))
}

/// The per-plan cap: at most `max_actions` deactivations and `max_share` of the active accounts.
pub fn check_cap(planned: usize, cap: &Cap) -> Result<()> {
    let share = if cap.active_accounts == 0 { 1.0 } else { planned as f64 / cap.active_accounts as f64 };
    if planned > cap.max_actions {
        return Err(DeprovisionError::Cap {
            planned,
            active: cap.active_accounts,
            detail: format!("at most {} actions per plan", cap.max_actions),
        });
    }
    if planned > 0 && share > cap.max_share {
        return Err(DeprovisionError::Cap {
            planned,
            active: cap.active_accounts,
            detail: format!("at most {:.1}% of the active accounts per plan", cap.max_share * 100.0),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live() -> LiveAccount {
        LiveAccount { found: true, active: true, ..Default::default() }
    }

    fn refused(g: &[GuardResult]) -> Vec<&str> {
        g.iter().filter(|g| g.verdict == Verdict::Refuse).map(|g| g.guard.as_str()).collect()
    }

    #[test]
    fn each_guard_refuses_its_case_and_only_it() {
        let day = NaiveDate::from_ymd_opt(2026, 6, 1).unwrap();
        let g = |l: &LiveAccount, account: &str, newest: Option<DateTime<Utc>>, allow: bool| {
            guards(Kind::Deactivate, account, l, "UTOKEN", day, newest, allow)
        };
        assert!(refused(&g(&live(), "U1", None, false)).is_empty());
        assert_eq!(refused(&g(&LiveAccount::default(), "U1", None, false)), ["found"]);
        assert_eq!(refused(&g(&LiveAccount { active: false, ..live() }, "U1", None, false)), ["active"]);
        assert_eq!(refused(&g(&LiveAccount { is_bot: true, ..live() }, "U1", None, false)), ["not_a_bot"]);
        assert_eq!(refused(&live_primary()), ["not_primary_owner"]);
        assert_eq!(refused(&g(&LiveAccount { is_admin: true, ..live() }, "U1", None, false)), ["not_privileged"]);
        assert!(refused(&g(&LiveAccount { is_admin: true, ..live() }, "U1", None, true)).is_empty());
        assert_eq!(refused(&g(&live(), "UTOKEN", None, false)), ["not_token_user"]);
        let later = day.succ_opt().unwrap().and_hms_opt(9, 0, 0).unwrap().and_utc();
        let same_day = day.and_hms_opt(23, 0, 0).unwrap().and_utc();
        assert_eq!(refused(&g(&live(), "U1", Some(later), false)), ["no_activity_after_as_of"]);
        assert!(refused(&g(&live(), "U1", Some(same_day), false)).is_empty());
        let idp = g(&LiveAccount { external_id: Some("00u1".into()), ..live() }, "U1", None, false);
        assert!(refused(&idp).is_empty());
        assert!(idp.iter().any(|r| r.guard == "not_idp_managed" && r.verdict == Verdict::Warn));

        fn live_primary() -> Vec<GuardResult> {
            let l = LiveAccount {
                is_primary_owner: true,
                is_owner: true,
                is_admin: true,
                found: true,
                active: true,
                ..Default::default()
            };
            // Even allowed, the primary owner stays refused.
            guards(Kind::Deactivate, "U1", &l, "UTOKEN", NaiveDate::MIN, None, true)
        }
    }

    #[test]
    fn the_cap_counts_and_shares() {
        let cap = Cap { max_actions: 10, max_share: 0.1, active_accounts: 50 };
        assert!(check_cap(5, &cap).is_ok());
        assert!(matches!(check_cap(6, &cap), Err(DeprovisionError::Cap { .. })));
        assert!(matches!(check_cap(11, &Cap { max_share: 1.0, ..cap.clone() }), Err(DeprovisionError::Cap { .. })));
        assert!(check_cap(0, &Cap { active_accounts: 0, ..cap }).is_ok());
    }

    #[test]
    fn any_edit_changes_the_hash() {
        let body = PlanBody {
            format: PLAN_FORMAT,
            created_at: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            source: Source {
                kind: "decisions".into(),
                review_id: Some("r".into()),
                as_of: NaiveDate::from_ymd_opt(2026, 6, 1).unwrap(),
                lake_version: 7,
                newest_evidence_day: None,
            },
            target: Target {
                scim_base: "https://api.slack.com/scim/v2/".into(),
                scim_version: "v2".into(),
                team_id: "T1".into(),
                enterprise_id: None,
                token_user: "U0".into(),
            },
            allow_privileged: false,
            cap: Cap { max_actions: 500, max_share: 0.2, active_accounts: 100 },
            actions: Vec::new(),
        };
        let plan = Plan::seal(body.clone());
        plan.verify().unwrap();
        let text = serde_json::to_string(&plan).unwrap();
        let back: Plan = serde_json::from_str(&text).unwrap();
        back.verify().unwrap();
        let mut edited = back.clone();
        edited.body.cap.max_share = 0.9;
        assert!(matches!(edited.verify(), Err(DeprovisionError::Refused(_))));
    }
}
