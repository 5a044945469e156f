//! `lastseen report`: the reports of the registry (SQL files in `query/reports/`), run with the
//! command line's parameters and exported with their provenance.

use std::fmt::Write as _;

use lastseen_query::ReportParams;
use lastseen_query::reports::{self, Param, ReportDef};

use crate::cli::{GlobalArgs, ReportArgs};

pub async fn run(g: &GlobalArgs, args: &ReportArgs) -> anyhow::Result<u8> {
    if args.list {
        print!("{}", listing(&reports::builtin()?));
        return Ok(crate::exit::OK);
    }
    let name = args.name.as_deref().unwrap_or_default();
    let def = reports::find(name)?;
    if args.show_sql {
        print!("{}", def.sql);
        return Ok(crate::exit::OK);
    }
    let cfg = super::load_config(g)?;
    let params = ReportParams {
        as_of: args.as_of,
        // The configured threshold is the default of every report that takes one.
        days: args.days.or(def.takes(Param::Days).then_some(cfg.reports.dormant_days)),
        workspace: args.workspace.clone(),
        department: args.department.clone(),
        exclude_guests: args.exclude_guests,
        include_bots: args.include_bots,
    };
    def.check(&params)?;
    let lake = super::open_lake(&cfg)?;
    let engine = lastseen_query::QueryEngine::open(&lake).await?;
    let out = def.run(&engine, &params).await?;
    tracing::info!(report = %def.name, as_of = ?out.as_of, rows = out.data.rows(), "report");
    if let Some(as_of) = out.as_of {
        warn_if_no_evidence(&lake, as_of).await;
    }
    super::emit(&out.data, &out.provenance, &out.charts, &args.output)?;
    Ok(crate::exit::OK)
}

/// `--list`: each report, its parameters and charts.
fn listing(defs: &[ReportDef]) -> String {
    let mut s = String::new();
    for d in defs {
        let _ = writeln!(s, "{}  {}", d.name, d.title);
        if !d.summary.is_empty() {
            let _ = writeln!(s, "    {}", d.summary);
        }
        for p in &d.params {
            let _ = writeln!(s, "    {:<18} {}", p.param.flag(), p.help);
        }
        for c in &d.charts {
            let _ = writeln!(s, "    chart ({:?}): {}", c.kind, c.title);
        }
    }
    s
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
