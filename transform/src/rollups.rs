//! Daily rollups kept by the run: `account_report` (sql/account_report.sql), one row per account
//! and snapshot day with the joins the account reports (dormant, seats, orphans, terminated,
//! review) repeat, and `usage_daily` (sql/usage_daily.sql), its counts at the grain the `usage`
//! report filters at. `derive_all` writes a day's rollups in the same transaction as its
//! `last_seen`, from the rows it has just derived, so re-running or re-deriving a day rewrites
//! them together; [`from_lake`] computes the same day from the committed tables (the bench
//! generator and the tests use it).

use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::TableProvider;
use datafusion::prelude::{SessionConfig, SessionContext};
use lastseen_lake::Lake;
use lastseen_lake::catalog::{ACCOUNT_REPORT, USAGE_DAILY};

use crate::{Result, TransformError, session};

pub const ACCOUNT_REPORT_SQL: &str = include_str!("../sql/account_report.sql");
pub const USAGE_DAILY_SQL: &str = include_str!("../sql/usage_daily.sql");

/// The relations the rollups read, each with its table schema (including `dt`). `account_report`
/// is the base day's rollup for the fold (and the day's own for `usage_daily`).
pub const SOURCES: [&str; 6] =
    ["activity_daily", "account_report", "accounts", "last_seen", "account_identity", "identities"];

/// A session sharing `base`'s runtime (its memory pool) where each of [`SOURCES`] is the table
/// given in `fresh` (the rows the derivation has staged but not committed, read from staging),
/// or else `base`'s table of that name, or of the name `aliases` gives it.
pub async fn day_context(
    base: &SessionContext,
    fresh: Vec<(&'static str, Arc<dyn TableProvider>)>,
    aliases: &[(&str, &str)],
) -> Result<SessionContext> {
    let ctx = SessionContext::new_with_config_rt(SessionConfig::new(), base.runtime_env());
    for name in SOURCES {
        let provider = match fresh.iter().find(|(n, _)| *n == name) {
            Some((_, provider)) => Arc::clone(provider),
            None => {
                let from = aliases.iter().find(|(n, _)| *n == name).map_or(name, |(_, a)| *a);
                base.table_provider(from).await.map_err(|e| TransformError::df(format!("reading table {from}"), e))?
            }
        };
        ctx.register_table(name, provider).map_err(|e| TransformError::df(format!("registering {name}"), e))?;
    }
    Ok(ctx)
}

/// `account_report` of day `d` as a stream of batches (each to be cast with
/// `session::next_batch`), folded from the `account_report` rows of `base` that `ctx` holds
/// (`None`: there is no base day; an empty `account_report` is registered).
pub async fn account_report_stream(
    ctx: &SessionContext,
    d: NaiveDate,
    base: Option<NaiveDate>,
) -> Result<datafusion::execution::SendableRecordBatchStream> {
    let month = d.checked_sub_days(chrono::Days::new(30)).unwrap_or(NaiveDate::MIN);
    let from = base.map_or(month, |b| b.max(month));
    if base.is_none() {
        session::register_batches(ctx, "account_report", ACCOUNT_REPORT.table_schema(), Vec::new())?;
    }
    session::stream(
        ctx,
        &format!("deriving account_report for {d}"),
        ACCOUNT_REPORT_SQL,
        &[
            ("dt", session::date(d)),
            ("base", session::date(base.unwrap_or(d))),
            ("from", session::date(from)),
            ("month", session::date(month)),
        ],
    )
    .await
}

/// `usage_daily` of day `d`, counted from `ctx`'s `account_report` rows of `d`, as a stream.
pub async fn usage_daily_stream(
    ctx: &SessionContext,
    d: NaiveDate,
) -> Result<datafusion::execution::SendableRecordBatchStream> {
    let wau_from = d.checked_sub_days(chrono::Days::new(6)).unwrap_or(NaiveDate::MIN);
    session::stream(
        ctx,
        &format!("deriving usage_daily for {d}"),
        USAGE_DAILY_SQL,
        &[("dt", session::date(d)), ("wau_from", session::date(wau_from))],
    )
    .await
}

/// The rollups of one day (file schema).
#[derive(Debug)]
pub struct DayRollups {
    pub account_report: Vec<RecordBatch>,
    pub usage_daily: Vec<RecordBatch>,
}

/// The rollups of day `d` from the relations of `ctx` (see [`SOURCES`]), folded from the
/// `account_report` rows of `base` (the previous rollup day; `None`: there is none, and the last
/// 30 days of activity are read instead). `ctx`'s `account_report` must hold `base`'s rows; it is
/// replaced by `d`'s, from which `usage_daily` is counted and the next day folds.
pub async fn derive_day(ctx: &SessionContext, d: NaiveDate, base: Option<NaiveDate>) -> Result<DayRollups> {
    let report_schema = ACCOUNT_REPORT.table_schema();
    let what = format!("deriving account_report for {d}");
    let account_report =
        session::collect(account_report_stream(ctx, d, base).await?, &ACCOUNT_REPORT.schema(), &what).await?;
    let with_dt = account_report.iter().map(|b| session::add_dt(b, &report_schema, d)).collect::<Result<Vec<_>>>()?;
    session::register_batches(ctx, "account_report", report_schema, with_dt)?;
    let what = format!("deriving usage_daily for {d}");
    let usage_daily = session::collect(usage_daily_stream(ctx, d).await?, &USAGE_DAILY.schema(), &what).await?;
    Ok(DayRollups { account_report, usage_daily })
}

/// The rollups of day `d` computed from the committed tables of `lake` (folded from the
/// committed `account_report` of `base`): what the run's rollups must equal (tests), and how the
/// bench generator writes rollups for its snapshots.
pub async fn from_lake(lake: &Lake, d: NaiveDate, base: Option<NaiveDate>) -> Result<DayRollups> {
    let snapshot = lake.snapshot().await?;
    let ctx = session::context(lake, &snapshot, crate::DEFAULT_DERIVE_MEMORY).await?;
    derive_day(&ctx, d, base).await
}
