//! `last_seen`: folded incrementally from the previous snapshot and the new `activity_daily`
//! days (`sql/last_seen.sql`), or rebuilt from the whole history with the same SQL and an empty
//! base. Both read named relations, so the same code runs over the lake and over test data.

use chrono::{DateTime, Days, NaiveDate, Utc};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::prelude::SessionContext;
use lastseen_lake::catalog::LAST_SEEN;

use crate::session;
use crate::{Result, TransformError};

pub const LAST_SEEN_SQL: &str = include_str!("../sql/last_seen.sql");

/// Where the fold reads from: relations with the table schemas (including `dt`) of
/// `activity_daily`, `accounts` and `last_seen`.
#[derive(Debug, Clone, Copy)]
pub struct Sources<'a> {
    pub activity: &'a str,
    pub accounts: &'a str,
    pub last_seen: &'a str,
}

/// One fold step.
#[derive(Debug, Clone, Copy)]
pub struct Step<'a> {
    pub as_of: NaiveDate,
    /// The base snapshot's day; `None` = full rebuild from every activity day up to `as_of`.
    pub base: Option<NaiveDate>,
    pub dormant_days: u32,
    /// The apps some evidence source covers on `as_of` (an account of another app without
    /// evidence is `unknown`, not `never_seen`): [`crate::activity::covered_apps`].
    pub covered: &'a [String],
    pub computed_at: DateTime<Utc>,
}

fn lit(d: NaiveDate) -> String {
    format!("DATE '{d}'")
}

fn minus(d: NaiveDate, days: u64) -> NaiveDate {
    d.checked_sub_days(Days::new(days)).unwrap_or(NaiveDate::MIN)
}

async fn view(ctx: &SessionContext, name: &str, sql: &str) -> Result<()> {
    let _ = ctx.deregister_table(name);
    let df = ctx.sql(sql).await.map_err(|e| TransformError::df(format!("preparing {name}"), e))?;
    ctx.register_table(name, df.into_view()).map_err(|e| TransformError::df(format!("registering {name}"), e))?;
    Ok(())
}

/// The `last_seen` rows (file schema) as of `step.as_of`.
pub async fn fold(ctx: &SessionContext, src: Sources<'_>, step: Step<'_>) -> Result<Vec<RecordBatch>> {
    let what = format!("deriving last_seen for {}", step.as_of);
    session::collect(fold_stream(ctx, src, step).await?, &LAST_SEEN.schema(), &what).await
}

/// [`fold`] as a stream of result batches (each to be cast with `session::next_batch`), so the
/// derivation can stage them as they come instead of holding the day's snapshot.
pub async fn fold_stream(
    ctx: &SessionContext,
    src: Sources<'_>,
    step: Step<'_>,
) -> Result<datafusion::execution::SendableRecordBatchStream> {
    fold_stream_with(ctx, src, step, LAST_SEEN_SQL).await
}

/// [`fold_stream`] with the fold's SQL given: the tests run an oracle form of it.
pub(crate) async fn fold_stream_with(
    ctx: &SessionContext,
    src: Sources<'_>,
    step: Step<'_>,
    sql: &str,
) -> Result<datafusion::execution::SendableRecordBatchStream> {
    let d = step.as_of;
    match step.base {
        Some(p) => {
            view(ctx, "base", &format!("SELECT * FROM {} WHERE dt = {}", src.last_seen, lit(p))).await?;
            view(ctx, "days_in", &format!("SELECT * FROM {} WHERE dt > {} AND dt <= {}", src.activity, lit(p), lit(d)))
                .await?;
            view(
                ctx,
                "leaving_days",
                &format!("SELECT * FROM {} WHERE dt > {} AND dt <= {}", src.activity, lit(minus(p, 90)), lit(p)),
            )
            .await?;
        }
        None => {
            view(ctx, "base", &format!("SELECT * FROM {} WHERE false", src.last_seen)).await?;
            view(ctx, "days_in", &format!("SELECT * FROM {} WHERE dt <= {}", src.activity, lit(d))).await?;
            view(ctx, "leaving_days", &format!("SELECT * FROM {} WHERE false", src.activity)).await?;
        }
    }
    view(ctx, "listed", &format!("SELECT app, workspace_id, account_id FROM {} WHERE dt = {}", src.accounts, lit(d)))
        .await?;
    let covered = datafusion::arrow::array::StringArray::from_iter_values(step.covered.iter());
    let covered_schema =
        std::sync::Arc::new(datafusion::arrow::datatypes::Schema::new(vec![datafusion::arrow::datatypes::Field::new(
            "app",
            datafusion::arrow::datatypes::DataType::Utf8,
            false,
        )]));
    let covered = RecordBatch::try_new(std::sync::Arc::clone(&covered_schema), vec![std::sync::Arc::new(covered)])
        .map_err(|e| TransformError::Shape { what: "the covered apps".into(), message: e.to_string() })?;
    session::register_batches(ctx, "covered", covered_schema, vec![covered])?;
    // Without a base the "previous" windows are empty: put them before any date.
    let p = step.base.unwrap_or(NaiveDate::MIN);
    let params = [
        ("d30", session::date(minus(d, 30))),
        ("d90", session::date(minus(d, 90))),
        ("p30", session::date(minus(p, 30))),
        ("p90", session::date(minus(p, 90))),
        ("dormant_cutoff", session::date(minus(d, u64::from(step.dormant_days)))),
        ("computed_at", session::timestamp(step.computed_at)),
    ];
    session::stream(ctx, &format!("deriving last_seen for {d}"), sql, &params).await
}
