//! `activity_daily`: the evidence sources (one SQL file each under `sql/evidence/`, registered by
//! `build.rs` from its header: see [`crate::sources`]), which days need (re)computing, which apps
//! some source covers on a day, and the per-day aggregation.

use std::collections::BTreeSet;
use std::sync::{Arc, LazyLock};

use chrono::{DateTime, NaiveDate, Utc};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::prelude::SessionContext;
use lastseen_lake::Snapshot;
use lastseen_lake::catalog::ACTIVITY_DAILY;

use crate::session::{self, ts};
use crate::{Result, TransformError};

pub use crate::sources::{EVIDENCE, EvidenceSource};

pub const ACTIVITY_DAILY_SQL: &str = include_str!("../sql/activity_daily.sql");

/// What every evidence file yields, plus the source's priority.
pub static EVIDENCE_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("app", DataType::Utf8, false),
        Field::new("day", DataType::Date32, false),
        Field::new("account_id", DataType::Utf8, false),
        Field::new("workspace_id", DataType::Utf8, true),
        Field::new("source", DataType::Utf8, false),
        Field::new("active", DataType::Boolean, false),
        Field::new("first_at", ts(), true),
        Field::new("last_at", ts(), true),
        Field::new("logins", DataType::Int64, true),
        Field::new("messages", DataType::Int64, true),
        Field::new("priority", DataType::Int32, false),
    ]))
});

/// Days up to `until` whose `activity_daily` is missing or older than an evidence partition of
/// the same day: a raw commit re-wrote that day (new rows, or a merge that moved `date_last`).
///
/// The identity providers' sign-on tables (`sql/sso/`) count too: a day whose sign-ons were
/// re-committed re-folds `sso_last_seen` from that day on, as evidence re-folds `last_seen`.
pub fn dirty_days(snapshot: &Snapshot, until: NaiveDate) -> BTreeSet<NaiveDate> {
    let mut out = BTreeSet::new();
    let mut tables: Vec<&str> =
        EVIDENCE.iter().map(|s| s.table).chain(crate::sources::SSO_SOURCES.iter().map(|s| s.table)).collect();
    tables.sort_unstable();
    tables.dedup();
    for table in tables {
        let Some(t) = snapshot.table(table) else { continue };
        for (dt, p) in t.partitions.range(..=until) {
            if p.rows == 0 {
                continue;
            }
            let fresh = snapshot.partition(ACTIVITY_DAILY.name, *dt).is_some_and(|a| derived_after(a, p));
            if !fresh {
                out.insert(*dt);
            }
        }
    }
    out
}

/// Whether derived partition `derived` was written after input partition `input`. Log versions
/// are compared, not `committed_at`: two machines' clocks disagree (a backfill from a laptop
/// behind the daemon's clock must still mark its day stale). A partition from a log written
/// before versions were recorded has version 0, older than any stamped one; only when both are
/// unstamped do the timestamps decide.
fn derived_after(derived: &lastseen_lake::PartitionState, input: &lastseen_lake::PartitionState) -> bool {
    if derived.version == 0 && input.version == 0 {
        return derived.committed_at >= input.committed_at;
    }
    derived.version >= input.version
}

/// The apps some evidence source can speak for on day `d` (each source covers its `@app`): an
/// event table with committed rows on or before `d`, or a snapshot table whose day-`d` partition
/// yields evidence (Grid's users snapshot carries `last_active_at` that day). An account of an
/// app no source covers is `unknown` without evidence, not `never_seen`.
pub async fn covered_apps(ctx: &SessionContext, snapshot: &Snapshot, d: NaiveDate) -> Result<Vec<String>> {
    let mut apps: Vec<String> = Vec::new();
    for src in EVIDENCE {
        if apps.iter().any(|a| a == src.app) {
            continue;
        }
        let snapshot_table = lastseen_lake::catalog::table(src.table)
            .is_ok_and(|t| t.partitioning == lastseen_lake::catalog::Partitioning::Snapshot);
        let covers = if snapshot_table {
            if snapshot.partition(src.table, d).is_none_or(|p| p.rows == 0) {
                false
            } else {
                let what = format!("checking whether evidence source {} covers {d}", src.name);
                let df = ctx.sql(src.sql).await.map_err(|e| TransformError::df(&what, e))?;
                let map: std::collections::HashMap<String, datafusion::common::metadata::ScalarAndMetadata> =
                    src.params(snapshot, d, d).into_iter().map(|(k, v)| (k.to_string(), v.into())).collect();
                let df = df
                    .with_param_values(datafusion::common::ParamValues::Map(map))
                    .and_then(|df| df.limit(0, Some(1)))
                    .map_err(|e| TransformError::df(&what, e))?;
                // Rows, not `count(*)`: `DataFrame::count` counts the result's rows.
                df.count().await.map_err(|e| TransformError::df(&what, e))? > 0
            }
        } else {
            snapshot.table(src.table).is_some_and(|t| t.partitions.range(..=d).any(|(_, p)| p.rows > 0))
        };
        if covers {
            apps.push(src.app.to_string());
        }
    }
    apps.sort();
    Ok(apps)
}

/// Evidence rows (committed rows of the evidence tables on the days) one `activity_daily` plan
/// reads at most: a daily run's one or two dirty days are one plan, a first run or backfill of
/// a thousand days a few, and the plan's aggregation (which holds a group per account and day)
/// stays well inside `lake.derive_memory_mb`. At 30,000 a first run of 1,200 days of a
/// 100,000-user org's access logs (1 M rows) was 34 plans, each paying its own planning, file
/// opening and final sort; at 300,000 it is 4: 1-2 s less derivation, the same peak RSS.
const EVIDENCE_ROWS_PER_PLAN: u64 = 300_000;

/// `days` cut into runs derived by one plan each, in date order, each reading at most
/// [`EVIDENCE_ROWS_PER_PLAN`] evidence rows (a single bigger day is a plan of its own).
pub fn plan_groups(snapshot: &Snapshot, days: &BTreeSet<NaiveDate>) -> Vec<BTreeSet<NaiveDate>> {
    let tables: Vec<&str> = EVIDENCE.iter().map(|s| s.table).collect();
    let rows = |d: NaiveDate| -> u64 { tables.iter().filter_map(|t| snapshot.partition(t, d)).map(|p| p.rows).sum() };
    let mut groups: Vec<BTreeSet<NaiveDate>> = Vec::new();
    let mut in_group = 0u64;
    for &d in days {
        let n = rows(d);
        match groups.last_mut() {
            Some(g) if in_group + n <= EVIDENCE_ROWS_PER_PLAN => {
                g.insert(d);
                in_group += n;
            }
            _ => {
                groups.push(BTreeSet::from([d]));
                in_group = n;
            }
        }
    }
    groups
}

/// Derive the `activity_daily` rows of every day of `days` with one plan and stage them in
/// `tx` (each day declared, so a day without evidence is published empty). The evidence is a
/// view, not collected rows: the plan streams from the raw tables through its aggregation, and
/// its output (sorted by day) is split into the days' partitions as it comes.
pub async fn derive_into(
    ctx: &SessionContext,
    snapshot: &Snapshot,
    days: &BTreeSet<NaiveDate>,
    now: DateTime<Utc>,
    tx: &mut lastseen_lake::Transaction,
) -> Result<()> {
    use datafusion::arrow::array::{Array, Date32Array};
    use datafusion::prelude::{cast, col, lit};
    use futures::StreamExt;
    let (Some(&from), Some(&to)) = (days.first(), days.last()) else { return Ok(()) };
    let mut evidence: Option<datafusion::prelude::DataFrame> = None;
    for src in EVIDENCE {
        let what = format!("reading evidence source {}", src.name);
        let map: std::collections::HashMap<String, datafusion::common::metadata::ScalarAndMetadata> =
            src.params(snapshot, from, to).into_iter().map(|(k, v)| (k.to_string(), v.into())).collect();
        let df = ctx.sql(src.sql).await.map_err(|e| TransformError::df(&what, e))?;
        let df = df
            .with_param_values(datafusion::common::ParamValues::Map(map))
            .map_err(|e| TransformError::df(&what, e))?;
        // Each source's columns as the evidence schema has them, plus its priority.
        let n = EVIDENCE_SCHEMA.fields().len() - 1;
        let mut exprs: Vec<datafusion::prelude::Expr> = EVIDENCE_SCHEMA.fields()[..n]
            .iter()
            .map(|f| cast(col(format!("\"{}\"", f.name())), f.data_type().clone()).alias(f.name()))
            .collect();
        exprs.push(lit(src.priority).alias("priority"));
        let df = df.select(exprs).map_err(|e| TransformError::df(&what, e))?;
        evidence = Some(match evidence {
            None => df,
            Some(all) => all.union(df).map_err(|e| TransformError::df(&what, e))?,
        });
    }
    let Some(mut evidence) = evidence else {
        for &day in days {
            tx.declare_snapshot(&ACTIVITY_DAILY, day);
        }
        return Ok(());
    };
    // Days between `from` and `to` that are not being derived (a sparse set) are left out.
    let span = (to - from).num_days() + 1;
    if span != days.len() as i64 {
        let list = days.iter().map(|d| lit(session::date(*d))).collect();
        evidence = evidence
            .filter(col("day").in_list(list, false))
            .map_err(|e| TransformError::df("filtering evidence", e))?;
    }
    let _ = ctx.deregister_table("evidence");
    ctx.register_table("evidence", evidence.into_view()).map_err(|e| TransformError::df("registering evidence", e))?;
    for &day in days {
        tx.declare_snapshot(&ACTIVITY_DAILY, day);
    }
    let what = format!("deriving activity_daily for {from}..={to}");
    let map: std::collections::HashMap<String, datafusion::common::metadata::ScalarAndMetadata> =
        [("computed_at".to_string(), session::timestamp(now).into())].into();
    let df = ctx.sql(ACTIVITY_DAILY_SQL).await.map_err(|e| TransformError::df(&what, e))?;
    let df =
        df.with_param_values(datafusion::common::ParamValues::Map(map)).map_err(|e| TransformError::df(&what, e))?;
    let mut rows = df.execute_stream().await.map_err(|e| TransformError::df(&what, e))?;
    let schema = ACTIVITY_DAILY.table_schema();
    let n_file = schema.fields().len() - 1;
    let file_cols: Vec<usize> = (0..n_file).collect();
    while let Some(batch) = rows.next().await {
        let batch = batch.map_err(|e| TransformError::df(&what, e))?;
        if batch.num_rows() == 0 {
            continue;
        }
        let batch = session::conform(&batch, &schema, &what)?;
        let dates = batch
            .column(n_file)
            .as_any()
            .downcast_ref::<Date32Array>()
            .ok_or_else(|| TransformError::Shape { what: what.clone(), message: "dt is not a date".into() })?;
        let file_batch = batch
            .project(&file_cols)
            .map_err(|e| TransformError::Shape { what: what.clone(), message: e.to_string() })?;
        let mut start = 0;
        while start < dates.len() {
            let d = dates.value(start);
            let mut end = start + 1;
            while end < dates.len() && dates.value(end) == d {
                end += 1;
            }
            let day = lastseen_lake::catalog::from_date32(d).ok_or_else(|| TransformError::Shape {
                what: what.clone(),
                message: format!("day {d} out of range"),
            })?;
            tx.write_spilling(&ACTIVITY_DAILY, day, file_batch.slice(start, end - start)).await?;
            start = end;
        }
    }
    Ok(())
}
