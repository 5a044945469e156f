//! `review import`, `deprovision plan|approve|apply|undo` and `account disable|enable`: thin
//! wiring of the deprovision crate to the configuration, the lake and the Slack client.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use chrono::Utc;
use lastseen_deprovision::apply::{self, ApplyOptions, Approved, Summary};
use lastseen_deprovision::journal::Journal;
use lastseen_deprovision::plan::{self, Candidate, Kind, PlanOptions};
use lastseen_deprovision::slack::Slack;
use lastseen_deprovision::{DeprovisionError, decisions};
use lastseen_ingest::SlackClient;
use lastseen_query::QueryEngine;

use crate::cli::{AccountArgs, AccountCommand, DeprovisionApplyArgs, DeprovisionCommand, GlobalArgs, ReviewCommand};
use crate::exit::UsageProblem;

fn usage(e: DeprovisionError) -> anyhow::Error {
    match e {
        DeprovisionError::Usage(m) | DeprovisionError::Refused(m) => UsageProblem(m).into(),
        e @ (DeprovisionError::Cap { .. } | DeprovisionError::File { .. }) => UsageProblem(e.to_string()).into(),
        other => other.into(),
    }
}

async fn connect(cfg: &lastseen_config::Config) -> anyhow::Result<Slack> {
    let token = cfg.slack.token.load().map_err(crate::exit::ConfigProblem::from).context("loading the Slack token")?;
    let client = Arc::new(SlackClient::new(&cfg.slack, token).context("setting up the Slack client")?);
    Slack::connect(&cfg.slack, client).await.context("checking the Slack token with auth.test")
}

fn actor(given: &Option<String>) -> String {
    given.clone().or_else(|| std::env::var("USER").ok()).unwrap_or_default()
}

pub async fn review(g: &GlobalArgs, cmd: &ReviewCommand) -> anyhow::Result<u8> {
    let ReviewCommand::Import(args) = cmd;
    let cfg = super::load_config(g)?;
    let lake = super::open_lake(&cfg)?;
    let engine = QueryEngine::open(&lake).await?;
    let file = decisions::read(&engine, &args.file, args.reviewer.as_deref()).await.map_err(usage)?;
    for p in &file.problems {
        eprintln!("lastseen: {p}");
    }
    if !file.problems.is_empty() && !args.skip_bad_rows {
        return Err(UsageProblem(format!(
            "{} row(s) of {} cannot be used (listed above); nothing was imported. Fix them, or pass --skip-bad-rows to \
             import the others",
            file.problems.len(),
            args.file.display()
        ))
        .into());
    }
    if !file.rows.is_empty() {
        let batch = decisions::to_batch(&file, Utc::now())?;
        let journal = Journal::new(lake, cfg.lake.lease_ttl);
        let run_id = lastseen_lake::new_run_id(Utc::now());
        let lease = journal.lake().acquire_lock(&run_id, cfg.lake.lease_ttl).await.context("taking the lake lease")?;
        let committed = async {
            let mut tx = journal.lake().begin(&lease).await?;
            tx.write(&lastseen_lake::catalog::REVIEW_DECISIONS, Utc::now().date_naive(), batch)?;
            tx.commit().await
        }
        .await;
        lease.release().await?;
        committed.context("committing the decisions")?;
    }
    let count = |d: decisions::Decision| file.rows.iter().filter(|r| r.decision == d).count();
    outln!(
        "review {} (as of {}, lake version {}): imported {} decision(s) from {}: {} revoke, {} keep, {} investigate; \
         {} undecided, {} unusable",
        file.origin.review_id(),
        file.origin.as_of,
        file.origin.lake_version,
        file.rows.len(),
        args.file.display(),
        count(decisions::Decision::Revoke),
        count(decisions::Decision::Keep),
        count(decisions::Decision::Investigate),
        file.undecided,
        file.problems.len()
    );
    Ok(if file.problems.is_empty() { crate::exit::OK } else { crate::exit::PARTIAL })
}

pub async fn run(g: &GlobalArgs, cmd: &DeprovisionCommand) -> anyhow::Result<u8> {
    let cfg = super::load_config(g)?;
    match cmd {
        DeprovisionCommand::Plan(args) => {
            if !(0.0..=1.0).contains(&args.max_share) {
                return Err(UsageProblem("--max-share must be between 0 and 1".into()).into());
            }
            let lake = super::open_lake(&cfg)?;
            let engine = QueryEngine::open(&lake).await?;
            let slack = connect(&cfg).await?;
            let opts = PlanOptions {
                review_id: args.review.clone(),
                dormant_days: args.dormant_days,
                allow_privileged: args.allow_privileged,
                max_actions: args.max_actions,
                max_share: args.max_share,
            };
            let plan = plan::build(&engine, &slack, &opts).await.map_err(usage)?;
            write_json(&args.out, &plan)?;
            for a in &plan.body.actions {
                let who = a.email.as_deref().or(a.username.as_deref()).unwrap_or_default();
                if a.planned {
                    outln!("planned  {} {who}: {} {}", a.account_id, a.call.method, a.call.path);
                } else {
                    let why: Vec<String> = a.refusals().iter().map(|g| format!("{}: {}", g.guard, g.detail)).collect();
                    outln!("refused  {} {who}: {}", a.account_id, why.join("; "));
                }
                for w in a.warnings() {
                    outln!("warning  {} {who}: {}", a.account_id, w.detail);
                }
            }
            outln!(
                "plan {} written to {}: {} planned, {} refused (as of {}, {})",
                plan.plan_id,
                args.out.display(),
                plan.planned().count(),
                plan.body.actions.len() - plan.planned().count(),
                plan.body.source.as_of,
                plan.body.source.kind
            );
            Ok(crate::exit::OK)
        }
        DeprovisionCommand::Approve(args) => {
            let valid = std::time::Duration::from_secs(args.valid_hours * 3600);
            let approved = apply::approve(&args.plan, &args.approver, valid, Utc::now()).map_err(usage)?;
            let out = args.out.clone().unwrap_or_else(|| approved_path(&args.plan));
            write_json(&out, &approved)?;
            outln!(
                "plan {} approved by {} until {}: {}",
                approved.plan.plan_id,
                approved.approvers().join(" and "),
                approved.expires_at.to_rfc3339(),
                out.display()
            );
            Ok(crate::exit::OK)
        }
        DeprovisionCommand::Apply(args) | DeprovisionCommand::Undo(args) => {
            let approved = Approved::load(&args.approved).map_err(usage)?;
            let lake = super::open_lake(&cfg)?;
            let journal = Journal::new(lake, cfg.lake.lease_ttl);
            let slack = connect(&cfg).await?;
            let opts = options(args);
            let summary = if matches!(cmd, DeprovisionCommand::Undo(_)) {
                apply::undo(&journal, &slack, &approved, &opts).await
            } else {
                apply::apply(&journal, &slack, &approved, &opts).await
            }
            .map_err(usage)?;
            report(&summary)
        }
    }
}

fn options(args: &DeprovisionApplyArgs) -> ApplyOptions {
    ApplyOptions {
        execute: args.execute,
        allow_stale: args.allow_stale,
        actor: actor(&args.actor),
        per_minute: args.rate,
        burst: (args.rate / 12).clamp(1, 10),
        ..Default::default()
    }
}

pub async fn account(g: &GlobalArgs, cmd: &AccountCommand) -> anyhow::Result<u8> {
    let (args, kind): (&AccountArgs, Kind) = match cmd {
        AccountCommand::Disable(a) => (a, Kind::Deactivate),
        AccountCommand::Enable(a) => (a, Kind::Reactivate),
    };
    if args.reason.trim().is_empty() {
        return Err(UsageProblem("--reason must say why".into()).into());
    }
    let cfg = super::load_config(g)?;
    let lake = super::open_lake(&cfg)?;
    let journal = Journal::new(lake, cfg.lake.lease_ttl);
    let slack = connect(&cfg).await?;
    let candidate = Candidate { account_id: args.account.clone(), ..Default::default() };
    let opts = ApplyOptions { execute: args.execute, actor: actor(&args.actor), ..Default::default() };
    let summary = apply::single(&journal, &slack, &candidate, kind, args.reason.trim(), args.allow_privileged, &opts)
        .await
        .map_err(usage)?;
    report(&summary)
}

/// One JSON object per action, then the totals; exit 3 when an action failed.
fn report(summary: &Summary) -> anyhow::Result<u8> {
    for line in &summary.lines {
        outln!("{}", serde_json::to_string(line).unwrap_or_default());
    }
    let totals = serde_json::json!({
        "plan_id": summary.plan_id,
        "dry_run": summary.dry_run,
        "done": summary.count("done"),
        "already_done": summary.count("already_done"),
        "skipped": summary.count("skipped") + summary.count("would_skip"),
        "failed": summary.count("failed"),
        "would_apply": summary.count("would_apply"),
        "rate_limited": summary.rate_limited,
    });
    outln!("{totals}");
    if summary.dry_run {
        eprintln!("lastseen: dry-run: nothing was sent to Slack or journaled; pass --execute to apply");
    }
    Ok(if summary.count("failed") > 0 { crate::exit::PARTIAL } else { crate::exit::OK })
}

fn approved_path(plan: &Path) -> PathBuf {
    let stem = plan.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "plan".into());
    plan.with_file_name(format!("{stem}.approved.json"))
}

fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value).context("serialising")? + "\n";
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}
