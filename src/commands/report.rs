//! `lastseen report`: the canned reports.

use lastseen_query::{DormantParams, Report};

use crate::cli::{GlobalArgs, ReportArgs, ReportKind};

pub async fn run(g: &GlobalArgs, args: &ReportArgs) -> anyhow::Result<u8> {
    let cfg = super::load_config(g)?;
    match &args.report {
        ReportKind::Dormant(d) => {
            let report =
                Report::Dormant(DormantParams { as_of: d.as_of, days: d.days.unwrap_or(cfg.reports.dormant_days) });
            if d.show_sql {
                print!("{}", report.sql());
                return Ok(crate::exit::OK);
            }
            let lake = super::open_lake(&cfg)?;
            let engine = lastseen_query::QueryEngine::open(&lake).await?;
            let out = report.run(&engine).await?;
            let rows: usize = out.batches.iter().map(|b| b.num_rows()).sum();
            tracing::info!(as_of = %out.as_of, rows, "dormant report");
            warn_if_no_evidence(&lake, out.as_of).await;
            super::emit(&out.batches, &d.output)?;
        }
    }
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
