//! The canned reports. Each is a SQL file under `query/reports/` (compiled in, so the binary is
//! self-contained) plus the parameters it binds; `lastseen report --show-sql` prints the SQL.

use chrono::{Duration, NaiveDate};
use datafusion::arrow::record_batch::RecordBatch;

use crate::{QueryEngine, QueryError, Result};

pub const DORMANT_SQL: &str = include_str!("../reports/dormant.sql");

/// A report with its parameters.
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
                let as_of = resolve_as_of(engine, p.as_of)?;
                let cutoff = as_of - Duration::days(i64::from(p.days));
                let df = engine
                    .plan(
                        DORMANT_SQL,
                        &[
                            ("as_of", lastseen_lake::catalog::date_scalar(as_of)),
                            ("cutoff", lastseen_lake::catalog::date_scalar(cutoff)),
                        ],
                    )
                    .await?;
                Ok(ReportOutput { batches: df.collect().await?, as_of, sql: DORMANT_SQL })
            }
        }
    }
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
