//! `lastseen backfill --from D --to D`: past days of the sources that keep history.

use lastseen_lake::{RunStatus, SourceStatus};

use crate::cli::{BackfillArgs, GlobalArgs};
use lastseen::backfill::{Backfill, plan};

pub async fn run(g: &GlobalArgs, args: &BackfillArgs) -> anyhow::Result<u8> {
    // Installed first: SIGTERM/Ctrl-C stops the backfill and gives the lease back (exit 1).
    let cancel = super::cancel_on_signal()?;
    let cfg = super::load_config(g)?;
    let apps = super::configured_apps(&cfg)?;
    let lake = super::open_lake(&cfg)?;
    let p = plan(&apps);
    for (app, src) in &p.not_backfillable {
        outln!(
            "{src}: cannot be backfilled: {app} serves only its current state, not past days; the daily run collects it"
        );
    }
    for h in &p.backfilled {
        outln!("{}: backfilling {} to {} ({})", h.source, args.from, args.to, h.history.kept);
    }
    let progress = crate::logging::progress_enabled(g).then(|| {
        let pb = indicatif::ProgressBar::new_spinner();
        pb.enable_steady_tick(std::time::Duration::from_millis(120));
        pb
    });
    let outcome = lastseen::backfill::run(
        Backfill {
            config: &cfg,
            lake: &lake,
            from: args.from,
            to: args.to,
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
    let m = &outcome.manifest;
    for (source, rep) in &m.sources {
        if rep.status == Some(SourceStatus::Skipped) {
            outln!("{source}: skipped: {}", rep.error.as_deref().unwrap_or("not available with this plan or token"));
        }
    }
    for (table, t) in &m.tables {
        outln!("{table}: {} rows in {} partition(s)", t.rows, t.partitions);
    }
    match outcome.last_seen_dt {
        Some(dt) => outln!("last_seen re-derived for dt={dt}"),
        None => outln!("no users snapshot in the lake yet: last_seen comes with the first `lastseen run`"),
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
