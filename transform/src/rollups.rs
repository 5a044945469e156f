//! Daily rollups kept by the run: `account_report` (sql/account_report.sql), one row per account
//! and snapshot day with the joins the account reports (dormant, seats, orphans, terminated,
//! review) repeat. `derive_all` writes a day's rollup in the same transaction as its
//! `last_seen`, from the rows it has just derived, so re-running or re-deriving a day rewrites
//! both together; [`account_report_from_lake`] computes the same day from the committed tables
//! (the bench generator and the tests use it).

use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::prelude::{SessionConfig, SessionContext};
use lastseen_lake::Lake;
use lastseen_lake::catalog::ACCOUNT_REPORT;

use crate::{Result, TransformError, session};

pub const ACCOUNT_REPORT_SQL: &str = include_str!("../sql/account_report.sql");

/// The relations `account_report.sql` reads, each with its table schema (including `dt`).
pub const SOURCES: [&str; 8] = [
    "accounts",
    "last_seen",
    "account_identity",
    "identities",
    "slack_workspaces",
    "slack_usergroups",
    "slack_usergroup_members",
    "slack_scim_groups",
];

/// A session sharing `base`'s runtime (its memory pool) where each of [`SOURCES`] is the
/// in-memory rows given in `fresh` (rows the derivation has staged but not committed) or else
/// `base`'s table of that name.
pub async fn day_context(
    base: &SessionContext,
    fresh: Vec<(&'static str, SchemaRef, Vec<RecordBatch>)>,
) -> Result<SessionContext> {
    let ctx = SessionContext::new_with_config_rt(SessionConfig::new(), base.runtime_env());
    for name in SOURCES {
        if let Some((_, schema, batches)) = fresh.iter().find(|(n, _, _)| *n == name) {
            session::register_batches(&ctx, name, Arc::clone(schema), batches.clone())?;
        } else {
            let provider =
                base.table_provider(name).await.map_err(|e| TransformError::df(format!("reading table {name}"), e))?;
            ctx.register_table(name, provider).map_err(|e| TransformError::df(format!("registering {name}"), e))?;
        }
    }
    Ok(ctx)
}

/// `account_report` rows (file schema) of day `d`, from the relations of `ctx` (see [`SOURCES`]).
pub async fn account_report(ctx: &SessionContext, d: NaiveDate) -> Result<Vec<RecordBatch>> {
    session::run(
        ctx,
        &format!("deriving account_report for {d}"),
        ACCOUNT_REPORT_SQL,
        &[("dt", session::date(d))],
        &ACCOUNT_REPORT.schema(),
    )
    .await
}

/// `account_report` of day `d` computed from the committed tables of `lake`: what the run's
/// rollup must equal (tests), and how the bench generator writes rollups for its snapshots.
pub async fn account_report_from_lake(lake: &Lake, d: NaiveDate) -> Result<Vec<RecordBatch>> {
    let snapshot = lake.snapshot().await?;
    let ctx = session::context(lake, &snapshot, crate::DEFAULT_DERIVE_MEMORY).await?;
    account_report(&ctx, d).await
}
