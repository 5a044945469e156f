//! `sso_last_seen`: per identity provider, IdP user and app instance, the last single sign-on as
//! of each snapshot day, folded from the previous day's rows and the sign-ons of the days after
//! it (`sql/sso_last_seen.sql`). The sign-ons come from one SQL file per IdP (`sql/sso/<idp>.sql`,
//! registered by `build.rs`: see [`crate::sources::SSO_SOURCES`]); no code names an IdP or app.

use std::sync::{Arc, LazyLock};

use chrono::{DateTime, NaiveDate, Utc};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::prelude::SessionContext;

use crate::session::{self, ts};
use crate::sources::SSO_SOURCES;
use crate::{Result, TransformError};

pub const SSO_LAST_SEEN_SQL: &str = include_str!("../sql/sso_last_seen.sql");

/// What every `sql/sso/<idp>.sql` yields: one row per (day, IdP user, app instance).
pub static SSO_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("idp", DataType::Utf8, false),
        Field::new("day", DataType::Date32, false),
        Field::new("idp_user_id", DataType::Utf8, false),
        Field::new("app_instance_id", DataType::Utf8, false),
        Field::new("app_instance_label", DataType::Utf8, true),
        Field::new("mapped_app", DataType::Utf8, true),
        Field::new("first_at", ts(), true),
        Field::new("last_at", ts(), false),
    ]))
});

/// Where the fold reads from: relations with the table schemas (including `dt`) of
/// `sso_last_seen` (the base day's rows) and `accounts` (the day's accounts).
#[derive(Debug, Clone, Copy)]
pub struct Sources<'a> {
    pub sso_last_seen: &'a str,
    pub accounts: &'a str,
}

/// Whether some IdP's sign-on table has rows on or before `d`: when none has, and the base day
/// has no rows either, the day's `sso_last_seen` is empty and is not planned at all (a lake
/// without an IdP pays nothing for it).
pub fn has_input(snapshot: &lastseen_lake::Snapshot, d: NaiveDate) -> bool {
    SSO_SOURCES
        .iter()
        .any(|s| snapshot.table(s.table).is_some_and(|t| t.partitions.range(..=d).any(|(_, p)| p.rows > 0)))
}

/// The first day a full rebuild reads sign-ons from (no event predates it).
fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date")
}

async fn view(ctx: &SessionContext, name: &str, df: datafusion::prelude::DataFrame) -> Result<()> {
    let _ = ctx.deregister_table(name);
    ctx.register_table(name, df.into_view()).map_err(|e| TransformError::df(format!("registering {name}"), e))?;
    Ok(())
}

/// The sign-ons of every IdP on the days `from ..= to`, as one relation `sso_days`.
async fn register_days(ctx: &SessionContext, from: NaiveDate, to: NaiveDate) -> Result<()> {
    use datafusion::prelude::{cast, col};
    let mut all: Option<datafusion::prelude::DataFrame> = None;
    for src in SSO_SOURCES {
        let what = format!("reading the single sign-ons of {}", src.idp);
        let df =
            session::plan(ctx, &what, src.sql, &[("from", session::date(from)), ("to", session::date(to))]).await?;
        let exprs: Vec<datafusion::prelude::Expr> = SSO_SCHEMA
            .fields()
            .iter()
            .map(|f| cast(col(format!("\"{}\"", f.name())), f.data_type().clone()).alias(f.name()))
            .collect();
        let df = df.select(exprs).map_err(|e| TransformError::df(&what, e))?;
        all = Some(match all {
            None => df,
            Some(a) => a.union(df).map_err(|e| TransformError::df(&what, e))?,
        });
    }
    match all {
        Some(df) => view(ctx, "sso_days", df).await,
        None => session::register_batches(ctx, "sso_days", Arc::clone(&SSO_SCHEMA), Vec::new()),
    }
}

/// `sso_last_seen` as of `d` (file schema, as a stream of batches to cast with
/// `session::next_batch`), folded from the rows of `base` in `src.sso_last_seen` (`None`: a
/// full rebuild from every sign-on up to `d`).
pub async fn fold_stream(
    ctx: &SessionContext,
    src: Sources<'_>,
    d: NaiveDate,
    base: Option<NaiveDate>,
    computed_at: DateTime<Utc>,
) -> Result<datafusion::execution::SendableRecordBatchStream> {
    let from = base.and_then(|b| b.succ_opt()).unwrap_or_else(epoch);
    register_days(ctx, from, d).await?;
    let base_filter = base.map_or("false".to_string(), |b| format!("dt = DATE '{b}'"));
    crate::register_view(ctx, "sso_base", &format!("SELECT * FROM {} WHERE {base_filter}", src.sso_last_seen)).await?;
    crate::register_view(ctx, "sso_accounts", &format!("SELECT * FROM {} WHERE dt = DATE '{d}'", src.accounts)).await?;
    session::stream(
        ctx,
        &format!("deriving sso_last_seen for {d}"),
        SSO_LAST_SEEN_SQL,
        &[("dt", session::date(d)), ("computed_at", session::timestamp(computed_at))],
    )
    .await
}
