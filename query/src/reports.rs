//! The canned reports. Each is a SQL file under `query/reports/` (compiled in, so the binary is
//! self-contained); every report binds the same named parameters, so adding one is adding a
//! file and a line in [`REPORTS`]. `lastseen report NAME --show-sql` prints the SQL.

use chrono::{Duration, NaiveDate};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::ScalarValue;

use crate::{QueryEngine, QueryError, Result};

pub const DORMANT_SQL: &str = include_str!("../reports/dormant.sql");

/// Every report: its name and SQL, in the order `lastseen report --help` lists them.
pub const REPORTS: &[(&str, &str)] = &[
    ("dormant", DORMANT_SQL),
    ("usage", include_str!("../reports/usage.sql")),
    ("seats", include_str!("../reports/seats.sql")),
    ("orphans", include_str!("../reports/orphans.sql")),
    ("terminated", include_str!("../reports/terminated.sql")),
    ("review", include_str!("../reports/review.sql")),
];

/// The names of every report.
pub fn names() -> impl Iterator<Item = &'static str> {
    REPORTS.iter().map(|(n, _)| *n)
}

/// The SQL of report `name`, if there is one.
pub fn sql(name: &str) -> Option<&'static str> {
    REPORTS.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}

/// The parameters every report is run with (a report uses the ones it needs).
#[derive(Debug, Clone, Default)]
pub struct ReportParams {
    /// The snapshot day; `None` = the newest day that has a `last_seen` snapshot.
    pub as_of: Option<NaiveDate>,
    /// The threshold in days (dormant after this many days without evidence of use; for
    /// `usage`, the number of days of the trend ending on the as-of day).
    pub days: u32,
    /// Only accounts of this workspace id (home workspace or a member of it).
    pub workspace: Option<String>,
    /// Only accounts whose owner identity is in this department (case-insensitive).
    pub department: Option<String>,
    pub exclude_guests: bool,
    /// Keep bots, apps and Slackbot, which are left out by default.
    pub include_bots: bool,
}

/// A report with its parameters (the dormant report as the demo and older callers know it).
#[derive(Debug, Clone)]
pub enum Report {
    Dormant(DormantParams),
}

#[derive(Debug, Clone)]
pub struct DormantParams {
    /// The snapshot day; `None` = the newest day that has a `last_seen` snapshot.
    pub as_of: Option<NaiveDate>,
    /// Dormant after this many days without evidence of use.
    pub days: u32,
}

/// A report's result and the parameters it was actually run with.
#[derive(Debug)]
pub struct ReportOutput {
    pub batches: Vec<RecordBatch>,
    pub as_of: NaiveDate,
    pub sql: &'static str,
}

impl Report {
    pub fn sql(&self) -> &'static str {
        match self {
            Report::Dormant(_) => DORMANT_SQL,
        }
    }

    pub async fn run(&self, engine: &QueryEngine) -> Result<ReportOutput> {
        match self {
            Report::Dormant(p) => {
                run(engine, "dormant", &ReportParams { as_of: p.as_of, days: p.days, ..ReportParams::default() }).await
            }
        }
    }
}

/// The `$name` values a report's SQL sees for `params` resolved to `as_of`.
pub fn bindings(as_of: NaiveDate, params: &ReportParams) -> Vec<(&'static str, ScalarValue)> {
    let date = lastseen_lake::catalog::date_scalar;
    vec![
        ("as_of", date(as_of)),
        ("cutoff", date(as_of - Duration::days(i64::from(params.days)))),
        ("days", ScalarValue::Int64(Some(i64::from(params.days)))),
        ("workspace", ScalarValue::Utf8(params.workspace.clone())),
        ("department", ScalarValue::Utf8(params.department.clone())),
        ("exclude_guests", ScalarValue::Boolean(Some(params.exclude_guests))),
        ("include_bots", ScalarValue::Boolean(Some(params.include_bots))),
    ]
}

/// Run report `name` with `params`.
pub async fn run(engine: &QueryEngine, name: &str, params: &ReportParams) -> Result<ReportOutput> {
    let sql = sql(name).ok_or_else(|| {
        QueryError::NoData(format!("no report `{name}`: the reports are {}", names().collect::<Vec<_>>().join(", ")))
    })?;
    let as_of = resolve_as_of(engine, params.as_of)?;
    let df = engine.plan(sql, &bindings(as_of, params)).await?;
    Ok(ReportOutput { batches: df.collect().await?, as_of, sql })
}

/// The as-of day must have both a users snapshot and a derived `last_seen` snapshot.
fn resolve_as_of(engine: &QueryEngine, wanted: Option<NaiveDate>) -> Result<NaiveDate> {
    let days = engine.dates(lastseen_lake::catalog::LAST_SEEN.name);
    let (Some(first), Some(last)) = (days.first(), days.last()) else {
        return Err(QueryError::NoData(
            "the lake has no last_seen snapshot yet: run `lastseen run` (or `lastseen demo`) first".into(),
        ));
    };
    match wanted {
        None => Ok(*last),
        Some(d) if days.contains(&d) => Ok(d),
        Some(d) => Err(QueryError::NoData(format!(
            "no snapshot for {d}: the lake has {} snapshot day(s) from {first} to {last}; pick one of them with --as-of",
            days.len()
        ))),
    }
}
