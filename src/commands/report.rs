//! `lastseen report NAME`: the canned reports (SQL files in `query/reports/`).

use lastseen_query::reports::{self, ReportParams};

use crate::cli::{GlobalArgs, ReportArgs};

pub async fn run(g: &GlobalArgs, args: &ReportArgs) -> anyhow::Result<u8> {
    let cfg = super::load_config(g)?;
    if args.show_sql {
        // The name was checked by clap against the same list.
        print!("{}", reports::sql(&args.name).unwrap_or_default());
        return Ok(crate::exit::OK);
    }
    let params = ReportParams {
        as_of: args.as_of,
        days: args.days.unwrap_or(cfg.reports.dormant_days),
        workspace: args.workspace.clone(),
        department: args.department.clone(),
        exclude_guests: args.exclude_guests,
        include_bots: args.include_bots,
    };
    let lake = super::open_lake(&cfg)?;
    let engine = lastseen_query::QueryEngine::open(&lake).await?;
    let out = reports::run(&engine, &args.name, &params).await?;
    let rows: usize = out.batches.iter().map(|b| b.num_rows()).sum();
    tracing::info!(report = %args.name, as_of = %out.as_of, days = params.days, rows, "report");
    warn_if_no_evidence(&lake, out.as_of).await;
    super::emit(&out.batches, &args.output)?;
    Ok(crate::exit::OK)
}

/// On a plan without access logs (Slack Free) every account looks "never seen", which is not
/// evidence of dormancy: say so rather than let the report pass for one.
async fn warn_if_no_evidence(lake: &lastseen_lake::Lake, as_of: chrono::NaiveDate) {
    let Ok(runs) = lake.run_manifests().await else { return };
    let Some(run) = runs.iter().rev().find(|r| r.date == as_of && r.lake_version.is_some()) else { return };
    if let Some(why) = run.sources.get("access_logs").and_then(|s| s.error.as_deref()) {
        eprintln!(
            "lastseen: warning: no activity source was available for {as_of} (access_logs: {why}); \
             accounts listed as never_seen may simply be unobserved"
        );
    }
}
