//! Approval and apply: an approval pins a plan's hash, its approvers and an expiry; apply
//! refuses a changed, expired or stale plan, then per action re-checks the guards live, journals
//! the intent, sends the one SCIM call, verifies the answer and journals the outcome. Resumable
//! by (plan, account): what the journal says is done is skipped, and an intent without an
//! outcome is settled by a read. Dry-run unless told to execute.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use lastseen_query::QueryEngine;
use serde::{Deserialize, Serialize};

use crate::error::{DeprovisionError, Result, sha256_hex};
use crate::journal::{Entry, Journal};
use crate::plan::{self, Action, Kind, Plan, Verdict};
use crate::slack::{Slack, WriteBudget};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub approver: String,
    pub at: DateTime<Utc>,
}

/// A plan with its approvals: what `apply` takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approved {
    pub plan: Plan,
    pub approvals: Vec<Approval>,
    pub expires_at: DateTime<Utc>,
    /// SHA-256 over the plan id, the approvals and the expiry: an edit of the approval shows.
    /// (Anyone with write access to the file can recompute it; the journal records who
    /// approved each action, which is the audit record.)
    pub approval_hash: String,
}

impl Approved {
    fn hash(plan_id: &str, approvals: &[Approval], expires_at: DateTime<Utc>) -> String {
        let text = serde_json::to_string(&(plan_id, approvals, expires_at)).unwrap_or_default();
        sha256_hex(text.as_bytes())
    }

    pub fn approvers(&self) -> Vec<String> {
        self.approvals.iter().map(|a| a.approver.clone()).collect()
    }

    pub fn load(path: &Path) -> Result<Approved> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| DeprovisionError::File { path: path.into(), detail: format!("cannot read it: {e}") })?;
        let approved: Approved = serde_json::from_str(&text).map_err(|e| DeprovisionError::File {
            path: path.into(),
            detail: format!("not an approved plan ({e}); approve a plan with `lastseen deprovision approve`"),
        })?;
        Ok(approved)
    }

    /// The checks every use of an approval makes: plan hash, approval hash, expiry.
    pub fn verify(&self, now: DateTime<Utc>) -> Result<()> {
        self.plan.verify()?;
        if Self::hash(&self.plan.plan_id, &self.approvals, self.expires_at) != self.approval_hash {
            return Err(DeprovisionError::Refused(
                "the approval was edited after it was given (approvers or expiry changed); approve the plan again"
                    .into(),
            ));
        }
        if self.approvals.is_empty() {
            return Err(DeprovisionError::Refused("the plan has no approval".into()));
        }
        if now >= self.expires_at {
            return Err(DeprovisionError::Refused(format!(
                "the approval expired at {}; make a new plan (the accounts' state may have changed) and approve it",
                self.expires_at.to_rfc3339()
            )));
        }
        Ok(())
    }
}

/// `approve`: `input` is a plan (first approval) or an approved plan (a second approver).
pub fn approve(input: &Path, approver: &str, valid_for: Duration, now: DateTime<Utc>) -> Result<Approved> {
    let approver = approver.trim();
    if approver.is_empty() {
        return Err(DeprovisionError::Usage("--approver must name a person".into()));
    }
    let text = std::fs::read_to_string(input)
        .map_err(|e| DeprovisionError::File { path: input.into(), detail: format!("cannot read it: {e}") })?;
    let is_approved = serde_json::from_str::<serde_json::Value>(&text).is_ok_and(|v| v.get("approvals").is_some());
    let expires_at = now + chrono::Duration::from_std(valid_for).unwrap_or(chrono::Duration::hours(72));
    let (plan, mut approvals, expires_at) = if is_approved {
        let a = Approved::load(input)?;
        a.verify(now)?;
        if a.approvals.iter().any(|x| x.approver.eq_ignore_ascii_case(approver)) {
            return Err(DeprovisionError::Usage(format!(
                "{approver} already approved this plan: a second approver must be someone else"
            )));
        }
        // A second approval never extends the first one's expiry.
        let exp = a.expires_at.min(expires_at);
        (a.plan, a.approvals, exp)
    } else {
        (Plan::load(input)?, Vec::new(), expires_at)
    };
    approvals.push(Approval { approver: approver.to_owned(), at: now });
    let approval_hash = Approved::hash(&plan.plan_id, &approvals, expires_at);
    Ok(Approved { plan, approvals, expires_at, approval_hash })
}

/// Options of `apply`, `undo` and the single-account actions.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// False: dry-run (the default): read and report, write nothing to Slack or the lake.
    pub execute: bool,
    pub allow_stale: bool,
    pub actor: String,
    /// The write budget: well under Slack's 180/min per-operation and 600/min org-wide SCIM
    /// limits, which the customer's IdP shares.
    pub per_minute: u32,
    pub burst: u32,
    /// Attempts after a 5xx or a lost answer, each only after a read shows the state unchanged.
    pub max_attempts: u32,
    /// How long one action may wait out 429s in all.
    pub max_rate_wait: Duration,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            execute: false,
            allow_stale: false,
            actor: String::new(),
            per_minute: 60,
            burst: 5,
            max_attempts: 3,
            max_rate_wait: Duration::from_secs(300),
        }
    }
}

/// What happened to one action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Line {
    pub account_id: String,
    pub action: String,
    /// `done`, `already_done`, `skipped`, `failed`, `would_apply` (dry-run), `would_skip`.
    pub outcome: String,
    pub detail: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub plan_id: String,
    pub dry_run: bool,
    pub lines: Vec<Line>,
    /// 429 answers Slack gave during this run.
    pub rate_limited: u64,
}

impl Summary {
    pub fn count(&self, outcome: &str) -> usize {
        self.lines.iter().filter(|l| l.outcome == outcome).count()
    }
}

/// The journal's state per (account, action): done, or an intent without an outcome.
#[derive(Debug, Default)]
struct Past {
    done: BTreeSet<(String, String)>,
    open_intent: BTreeSet<(String, String)>,
}

fn past(entries: &[Entry]) -> Past {
    let mut p = Past::default();
    for e in entries {
        let key = (e.account_id.clone(), e.action.clone());
        match (e.phase.as_str(), e.outcome.as_deref()) {
            ("intent", _) => {
                p.open_intent.insert(key);
            }
            ("outcome", Some("done")) => {
                p.open_intent.remove(&key);
                p.done.insert(key);
            }
            ("outcome", _) => {
                p.open_intent.remove(&key);
            }
            _ => {}
        }
    }
    p
}

/// Applies an approved plan.
pub async fn apply(journal: &Journal, slack: &Slack, approved: &Approved, opts: &ApplyOptions) -> Result<Summary> {
    approved.verify(Utc::now())?;
    let plan = &approved.plan;
    check_target(plan, slack)?;
    let engine = QueryEngine::open(journal.lake()).await?;
    let newest_day = engine.dates("last_seen").last().copied();
    if newest_day > plan.body.source.newest_evidence_day && !opts.allow_stale {
        return Err(DeprovisionError::Refused(format!(
            "the plan is stale: it was made on the evidence of {} and the lake now has {}; make a new plan (or pass \
             --allow-stale to apply it, the guards re-checking the newest evidence)",
            fmt_day(plan.body.source.newest_evidence_day),
            fmt_day(newest_day)
        )));
    }
    let newest = plan::newest_evidence(&engine).await?;
    let two_approvers = approved.approvals.len() >= 2;
    let approvers = approved.approvers().join(", ");
    let actions: Vec<Action> = plan.planned().cloned().collect();
    run(
        journal,
        slack,
        &plan.plan_id,
        &actions,
        plan.body.source.as_of,
        &newest,
        plan.body.allow_privileged,
        two_approvers,
        &approvers,
        None,
        opts,
    )
    .await
}

fn fmt_day(d: Option<NaiveDate>) -> String {
    d.map_or_else(|| "no snapshot".into(), |d| d.to_string())
}

/// The plan was made for this Slack: the same SCIM base and organisation.
fn check_target(plan: &Plan, slack: &Slack) -> Result<()> {
    let t = &plan.body.target;
    if t.scim_base != slack.scim_base.as_str() || t.team_id != slack.auth.team_id {
        return Err(DeprovisionError::Refused(format!(
            "the plan was made for {} (team {}), but the configured Slack is {} (team {})",
            t.scim_base, t.team_id, slack.scim_base, slack.auth.team_id
        )));
    }
    Ok(())
}

/// `undo`: re-activates what `plan_id` deactivated (per the journal), through the same
/// guards and journal.
pub async fn undo(journal: &Journal, slack: &Slack, approved: &Approved, opts: &ApplyOptions) -> Result<Summary> {
    approved.plan.verify()?;
    check_target(&approved.plan, slack)?;
    let plan_id = &approved.plan.plan_id;
    let entries = journal.load(plan_id).await?;
    let p = past(&entries);
    let mut actions = Vec::new();
    for a in &approved.plan.body.actions {
        if !p.done.contains(&(a.account_id.clone(), Kind::Deactivate.as_str().to_owned())) {
            continue;
        }
        let mut undo = a.clone();
        undo.kind = Kind::Reactivate;
        undo.call = crate::slack::Call::set_active(&a.account_id, true, slack.v1);
        actions.push(undo);
    }
    let today = Utc::now().date_naive();
    run(journal, slack, plan_id, &actions, today, &BTreeMap::new(), true, true, "", Some("undo"), opts).await
}

/// `account disable|enable`: one action, the same guards and journal. The id is stable for the
/// same account, kind, reason and day, so re-running the command resumes instead of repeating.
#[allow(clippy::too_many_arguments)]
pub async fn single(
    journal: &Journal,
    slack: &Slack,
    candidate: &plan::Candidate,
    kind: Kind,
    reason: &str,
    allow_privileged: bool,
    opts: &ApplyOptions,
) -> Result<Summary> {
    let today = Utc::now().date_naive();
    let plan_id = format!(
        "account-{}",
        &sha256_hex(format!("{}|{}|{}|{today}", candidate.account_id, kind.as_str(), reason).as_bytes())[..16]
    );
    let engine = QueryEngine::open(journal.lake()).await?;
    let newest = plan::newest_evidence(&engine).await?;
    let live = slack.read(&candidate.account_id, candidate.workspace_id.as_deref()).await?;
    // No review date: evidence of use today or later still stops a deactivation.
    let as_of = today.pred_opt().unwrap_or(today);
    let action = plan::action(
        candidate,
        kind,
        &live,
        &slack.auth.user_id,
        as_of,
        newest.get(&candidate.account_id).copied(),
        allow_privileged,
        slack.v1,
    );
    run(journal, slack, &plan_id, &[action], as_of, &newest, allow_privileged, true, "", Some(reason), opts).await
}

#[allow(clippy::too_many_arguments)]
async fn run(
    journal: &Journal,
    slack: &Slack,
    plan_id: &str,
    actions: &[Action],
    as_of: NaiveDate,
    newest: &BTreeMap<String, DateTime<Utc>>,
    allow_privileged: bool,
    two_approvers: bool,
    approvers: &str,
    reason: Option<&str>,
    opts: &ApplyOptions,
) -> Result<Summary> {
    let entries = journal.load(plan_id).await?;
    let past = past(&entries);
    let mut summary = Summary { plan_id: plan_id.to_owned(), dry_run: !opts.execute, ..Default::default() };
    let mut budget = WriteBudget::new(opts.per_minute, opts.burst);
    let rate_limited_before = slack.rate_limited();
    for a in actions {
        let key = (a.account_id.clone(), a.kind.as_str().to_owned());
        let mut line = |outcome: &str, detail: String| {
            tracing::info!(account = %a.account_id, action = a.kind.as_str(), outcome, "{detail}");
            summary.lines.push(Line {
                account_id: a.account_id.clone(),
                action: a.kind.as_str().into(),
                outcome: outcome.into(),
                detail,
            });
        };
        if past.done.contains(&key) {
            line("already_done", "the journal has this action done".into());
            continue;
        }
        let live = slack.read(&a.account_id, a.workspace_id.as_deref()).await?;
        let target = a.kind.target_active();
        let entry = |phase: &str, outcome: Option<&str>, detail: String| Entry {
            entry_id: uuid::Uuid::new_v4().simple().to_string(),
            plan_id: plan_id.to_owned(),
            account_id: a.account_id.clone(),
            workspace_id: a.workspace_id.clone(),
            username: a.username.clone(),
            email: a.email.clone(),
            action: a.kind.as_str().into(),
            phase: phase.into(),
            outcome: outcome.map(str::to_owned),
            detail: Some(detail),
            call: serde_json::to_string(&a.call).ok(),
            evidence: serde_json::to_string(&a.evidence).ok(),
            approvers: Some(approvers.to_owned()).filter(|s| !s.is_empty()),
            actor: Some(opts.actor.clone()).filter(|s| !s.is_empty()),
            reason: reason.map(str::to_owned),
            at: Utc::now(),
            ..Default::default()
        };
        if past.open_intent.contains(&key) && live.found && live.active == target {
            // The last run sent the call and died before journaling its answer: the read says
            // the change is made, so it is done, without a second write.
            let detail = "settled by a read after an interrupted run: the change is in place".to_owned();
            if opts.execute {
                journal.append(&[entry("outcome", Some("done"), detail.clone())]).await?;
            }
            line(if opts.execute { "done" } else { "would_settle" }, detail);
            continue;
        }
        let guards = plan::guards(
            a.kind,
            &a.account_id,
            &live,
            &slack.auth.user_id,
            as_of,
            newest.get(&a.account_id).copied(),
            allow_privileged,
        );
        let mut refusals: Vec<String> = guards
            .iter()
            .filter(|g| g.verdict == Verdict::Refuse)
            .map(|g| format!("{}: {}", g.guard, g.detail))
            .collect();
        if a.privileged && !two_approvers {
            refusals.push("not_privileged: an owner or admin needs a second approver (approve the file again)".into());
        }
        if !refusals.is_empty() {
            let detail = format!("re-checked live: {}", refusals.join("; "));
            if opts.execute {
                journal.append(&[entry("outcome", Some("skipped"), detail.clone())]).await?;
            }
            line(if opts.execute { "skipped" } else { "would_skip" }, detail);
            continue;
        }
        let warnings: Vec<String> =
            guards.iter().filter(|g| g.verdict == Verdict::Warn).map(|g| g.detail.clone()).collect();
        if !opts.execute {
            let mut detail = format!("would {} {} {}", a.call.method, a.call.path, a.call.body);
            if !warnings.is_empty() {
                detail.push_str(&format!(" (warning: {})", warnings.join("; ")));
            }
            line("would_apply", detail);
            continue;
        }
        journal.append(&[entry("intent", None, format!("{} {}", a.call.method, a.call.path))]).await?;
        lastseen_lake::failpoint("deprovision_after_intent");
        let (outcome, detail, status, code) = send_verified(slack, a, target, &mut budget, opts).await?;
        lastseen_lake::failpoint("deprovision_after_call");
        let mut e = entry("outcome", Some(outcome), detail.clone());
        e.http_status = status.map(i64::from);
        e.slack_error = code;
        if !warnings.is_empty() {
            e.detail = Some(format!("{detail} (warning: {})", warnings.join("; ")));
        }
        journal.append(&[e]).await?;
        line(outcome, detail);
    }
    summary.rate_limited = slack.rate_limited() - rate_limited_before;
    Ok(summary)
}

/// Sends the call within the budget and settles its outcome: `done` only when Slack's answer
/// (or, after a 5xx or lost answer, a read) shows the target state.
async fn send_verified(
    slack: &Slack,
    a: &Action,
    target: bool,
    budget: &mut WriteBudget,
    opts: &ApplyOptions,
) -> Result<(&'static str, String, Option<u16>, Option<String>)> {
    let started = Instant::now();
    let mut attempts = 0u32;
    loop {
        budget.acquire().await;
        attempts += 1;
        let answer = slack.send(&a.call).await;
        let status = match &answer {
            Ok(ans) => Some(ans.status),
            Err(_) => None,
        };
        match answer {
            Ok(ans) if (200..300).contains(&ans.status) => {
                let shown = ans.body.get("active").and_then(serde_json::Value::as_bool);
                if shown == Some(target) {
                    return Ok(("done", format!("Slack answered {} with active:{target}", ans.status), status, None));
                }
                // An answer cut short or without the resource: only a read can say what happened.
                let live = slack.read(&a.account_id, a.workspace_id.as_deref()).await?;
                return Ok(if live.found && live.active == target {
                    (
                        "done",
                        format!("Slack answered {} unreadably; a read shows active:{target}", ans.status),
                        status,
                        None,
                    )
                } else {
                    (
                        "failed",
                        format!(
                            "Slack answered {} but neither the answer nor a read shows active:{target}",
                            ans.status
                        ),
                        status,
                        None,
                    )
                });
            }
            Ok(ans) if ans.status == 429 => {
                let wait = ans
                    .retry_after
                    .unwrap_or(Duration::from_secs(1))
                    .clamp(Duration::from_secs(1), Duration::from_secs(60));
                if started.elapsed() + wait > opts.max_rate_wait {
                    return Ok((
                        "failed",
                        format!("still rate limited after {:?}", started.elapsed()),
                        status,
                        ans.code,
                    ));
                }
                tracing::warn!(account = %a.account_id, wait_s = wait.as_secs(), "SCIM answered 429; waiting");
                budget.pause(wait).await;
            }
            Ok(ans) if ans.status < 500 => {
                let code = ans.code.clone();
                return Ok((
                    "failed",
                    format!("Slack refused: HTTP {} {}", ans.status, code.clone().unwrap_or_default()),
                    status,
                    code,
                ));
            }
            other => {
                // A 5xx or no answer: the write may or may not have happened. Read first.
                let what = match &other {
                    Ok(ans) => format!("HTTP {}", ans.status),
                    Err(e) => e.to_string(),
                };
                let live = slack.read(&a.account_id, a.workspace_id.as_deref()).await?;
                if live.found && live.active == target {
                    return Ok(("done", format!("{what}, but a read shows active:{target}"), status, None));
                }
                if attempts >= opts.max_attempts {
                    return Ok((
                        "failed",
                        format!("{what} after {attempts} attempts; the state is unchanged"),
                        status,
                        None,
                    ));
                }
                tracing::warn!(account = %a.account_id, "{what}; state unchanged, retrying");
                tokio::time::sleep(Duration::from_millis(200 * u64::from(attempts))).await;
            }
        }
    }
}
