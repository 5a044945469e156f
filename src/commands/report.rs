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
            super::emit(&out.batches, &d.output)?;
        }
    }
    Ok(crate::exit::OK)
}
