//! `lastseen run`: one daily run against every configured app. SIGTERM or Ctrl-C stops it
//! cleanly (nothing more published, lease released, exit 1); a `--date` after today is refused.

use chrono::Utc;
use lastseen_lake::RunStatus;

use crate::cli::{GlobalArgs, RunArgs};
use lastseen::pipeline::{DayRun, run_day};

pub async fn run(g: &GlobalArgs, args: &RunArgs) -> anyhow::Result<u8> {
    // Installed first: from here on SIGTERM means "stop and give the lease back".
    let cancel = super::cancel_on_signal()?;
    // A day after today would be committed under a future date and, with retention, drop the
    // history before it: refused before anything is read or written.
    let today = Utc::now().date_naive();
    if let Some(d) = args.date
        && d > today
    {
        return Err(crate::exit::UsageProblem(format!(
            "--date {d} is in the future (today is {today} UTC); a run collects today or a past day, and \
             nothing was read or written"
        ))
        .into());
    }
    let mut cfg = super::load_config(g)?;
    if args.force {
        tracing::warn!(
            "--force: the mass-change guards (lake.max_snapshot_drop, for slack_users and the identity export) \
             and the retention guard (lake.retention_max_drop) are off for this run"
        );
        cfg.lake.max_snapshot_drop = None;
        cfg.lake.retention_max_drop = None;
    }
    let apps = super::configured_apps(&cfg)?;
    let lake = super::open_lake(&cfg)?;
    let date = args.date.unwrap_or(today);
    let progress = crate::logging::progress_enabled(g).then(|| {
        let pb = indicatif::ProgressBar::new_spinner();
        pb.enable_steady_tick(std::time::Duration::from_millis(120));
        pb
    });
    let outcome = run_day(
        DayRun {
            config: &cfg,
            lake: &lake,
            date,
            dry_run: args.dry_run,
            progress: progress.clone(),
            cancel: Some(cancel),
        },
        apps,
    )
    .await;
    if let Some(pb) = progress {
        pb.finish_and_clear();
    }
    let outcome = outcome?;
    if args.dry_run {
        for (table, rows) in &outcome.dry_run_rows {
            outln!("{table}: {rows} rows (dry run, nothing written)");
        }
        return Ok(crate::exit::OK);
    }
    let m = &outcome.manifest;
    for (table, t) in &m.tables {
        outln!("{table}: {} rows in {} partition(s)", t.rows, t.partitions);
    }
    for w in &m.warnings {
        outln!("warning: {w}");
    }
    Ok(match m.status {
        RunStatus::Succeeded => crate::exit::OK,
        RunStatus::Partial => crate::exit::PARTIAL,
        RunStatus::Failed => crate::exit::FAILURE,
    })
}
