//! `lastseen vacuum`: delete superseded and dead runs' files once no reader can need them.

use anyhow::Context;
use chrono::Utc;

use crate::cli::{GlobalArgs, VacuumArgs};

pub async fn run(g: &GlobalArgs, args: &VacuumArgs) -> anyhow::Result<u8> {
    let cfg = super::load_config(g)?;
    let lake = super::open_lake(&cfg)?;
    let run_id = format!("vacuum-{}", lastseen_lake::new_run_id(Utc::now()));
    // Deleting needs the lease like a commit does; a dry run takes it too, so what it lists is
    // what an --apply at the same moment would delete.
    let lease = lake.acquire_lock(&run_id, cfg.lake.lease_ttl).await.context("taking the lake lease for vacuum")?;
    let keep = cfg.lake.keep_superseded;
    let result = lake.vacuum(&lease, keep, !args.apply).await;
    if let Err(e) = lease.release().await {
        tracing::warn!(error = %e, "could not release the lake lease; it will expire");
    }
    let r = result.context("vacuuming the lake")?;
    let verb = if args.apply { "deleted" } else { "would delete" };
    for f in r.superseded_files.iter().chain(&r.orphan_files) {
        outln!("{verb} {f}");
    }
    outln!(
        "{verb}: {} superseded file(s), {} file(s) of runs that never published, {} staging file(s); \
         keep window {}",
        r.superseded_files.len(),
        r.orphan_files.len(),
        r.staging_files,
        humanize(keep)
    );
    if args.apply {
        outln!("removed {} old log version(s)", r.log_versions);
    } else {
        outln!("dry run: nothing was deleted; run `lastseen vacuum --apply` to delete");
    }
    Ok(crate::exit::OK)
}

fn humanize(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match s {
        _ if s > 0 && s.is_multiple_of(86_400) => format!("{}d", s / 86_400),
        _ if s > 0 && s.is_multiple_of(3600) => format!("{}h", s / 3600),
        _ => format!("{s}s"),
    }
}
