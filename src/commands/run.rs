//! `lastseen run`: one daily run against the configured Slack.

use anyhow::Context;
use chrono::Utc;
use lastseen_lake::RunStatus;

use crate::cli::{GlobalArgs, RunArgs};
use crate::pipeline::{DayRun, run_day};

pub async fn run(g: &GlobalArgs, args: &RunArgs) -> anyhow::Result<u8> {
    let mut cfg = super::load_config(g)?;
    if args.force {
        tracing::warn!("--force: the mass-change guard (lake.max_snapshot_drop) is off for this run");
        cfg.lake.max_snapshot_drop = None;
    }
    let token = cfg.slack.token.load().map_err(crate::exit::ConfigProblem::from).context("loading the Slack token")?;
    let lake = super::open_lake(&cfg)?;
    let date = args.date.unwrap_or_else(|| Utc::now().date_naive());
    let progress = crate::logging::progress_enabled(g).then(|| {
        let pb = indicatif::ProgressBar::new_spinner();
        pb.enable_steady_tick(std::time::Duration::from_millis(120));
        pb
    });
    let outcome =
        run_day(DayRun { config: &cfg, lake: &lake, date, dry_run: args.dry_run, progress: progress.clone() }, token)
            .await;
    if let Some(pb) = progress {
        pb.finish_and_clear();
    }
    let outcome = outcome?;
    if args.dry_run {
        for (table, rows) in &outcome.dry_run_rows {
            println!("{table}: {rows} rows (dry run, nothing written)");
        }
        return Ok(crate::exit::OK);
    }
    let m = &outcome.manifest;
    for (table, t) in &m.tables {
        println!("{table}: {} rows in {} partition(s)", t.rows, t.partitions);
    }
    for w in &m.warnings {
        println!("warning: {w}");
    }
    Ok(match m.status {
        RunStatus::Succeeded => crate::exit::OK,
        RunStatus::Partial => crate::exit::PARTIAL,
        RunStatus::Failed => crate::exit::FAILURE,
    })
}
