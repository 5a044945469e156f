//! `activity_daily`: the evidence sources (one SQL file each under `sql/evidence/`, included
//! only when this build's catalog has the raw table and column it reads), which days need
//! (re)computing, and the per-day aggregation.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, LazyLock};

use chrono::{DateTime, NaiveDate, Utc};
use datafusion::arrow::array::Int32Array;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::prelude::SessionContext;
use lastseen_lake::Snapshot;
use lastseen_lake::catalog::{ACTIVITY_DAILY, SLACK_USERS};

use crate::session::{self, ts};
use crate::{Result, TransformError};

/// One evidence source: the raw table (and column) it needs and its SQL.
#[derive(Debug)]
pub struct EvidenceSource {
    pub name: &'static str,
    pub table: &'static str,
    /// A column the table must have (the Grid source reads a column of `slack_users`).
    pub column: Option<&'static str>,
    pub sql: &'static str,
    /// Breaks ties on the latest time within a day: the finest-grained source first.
    pub priority: i32,
}

pub static EVIDENCE: &[EvidenceSource] = &[
    EvidenceSource {
        name: "access_logs",
        table: "slack_access_logs",
        column: None,
        sql: include_str!("../sql/evidence/access_logs.sql"),
        priority: 1,
    },
    EvidenceSource {
        name: "audit_logins",
        table: "slack_audit_logins",
        column: None,
        sql: include_str!("../sql/evidence/audit_logins.sql"),
        priority: 2,
    },
    EvidenceSource {
        name: "grid_last_active",
        table: "slack_users",
        column: Some("last_active_at"),
        sql: include_str!("../sql/evidence/grid_last_active.sql"),
        priority: 3,
    },
    EvidenceSource {
        name: "analytics",
        table: "slack_member_analytics",
        column: None,
        sql: include_str!("../sql/evidence/analytics.sql"),
        priority: 4,
    },
];

pub const ACTIVITY_DAILY_SQL: &str = include_str!("../sql/activity_daily.sql");

/// What every evidence file yields, plus the source's priority.
pub static EVIDENCE_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
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

/// The evidence sources this build can read.
pub fn present_sources() -> Vec<&'static EvidenceSource> {
    EVIDENCE
        .iter()
        .filter(|s| match s.column {
            None => session::in_catalog(s.table),
            Some(c) => session::catalog_has_column(s.table, c),
        })
        .collect()
}

/// Days up to `until` whose `activity_daily` is missing or older than an evidence partition of
/// the same day: a raw commit re-wrote that day (new rows, or a merge that moved `date_last`).
pub fn dirty_days(snapshot: &Snapshot, until: NaiveDate) -> BTreeSet<NaiveDate> {
    let mut out = BTreeSet::new();
    for src in present_sources() {
        let Some(t) = snapshot.table(src.table) else { continue };
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

/// Whether any evidence source can speak for day `d`: its table has committed rows on or before
/// `d` (for the Grid source: that day's users snapshot carries `last_active_at`). When none can,
/// an account without evidence is `unknown`, not `never_seen`.
pub async fn any_source(ctx: &SessionContext, snapshot: &Snapshot, d: NaiveDate) -> Result<bool> {
    for src in present_sources() {
        if src.table == SLACK_USERS.name {
            // Rows, not `count(*)`: `DataFrame::count` counts the result's rows.
            let sql = "SELECT user_id FROM slack_users WHERE dt = $d AND last_active_at IS NOT NULL LIMIT 1";
            let df = ctx.sql(sql).await.map_err(|e| TransformError::df("checking Grid last_active_at", e))?;
            let df = df
                .with_param_values(datafusion::common::ParamValues::Map(
                    [("d".to_string(), session::date(d).into())].into(),
                ))
                .map_err(|e| TransformError::df("checking Grid last_active_at", e))?;
            let n = df.count().await.map_err(|e| TransformError::df("checking Grid last_active_at", e))?;
            if n > 0 {
                return Ok(true);
            }
            continue;
        }
        if snapshot.table(src.table).is_some_and(|t| t.partitions.range(..=d).any(|(_, p)| p.rows > 0)) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The `activity_daily` rows (file schema) of each of `days`.
pub async fn derive(
    ctx: &SessionContext,
    days: &BTreeSet<NaiveDate>,
    now: DateTime<Utc>,
) -> Result<BTreeMap<NaiveDate, Vec<RecordBatch>>> {
    let (Some(&from), Some(&to)) = (days.first(), days.last()) else { return Ok(BTreeMap::new()) };
    let mut evidence = Vec::new();
    for src in present_sources() {
        let what = format!("reading evidence source {}", src.name);
        let params = [("from", session::date(from)), ("to", session::date(to))];
        let nine = Arc::new(Schema::new(EVIDENCE_SCHEMA.fields()[..9].to_vec()));
        for b in session::run(ctx, &what, src.sql, &params, &nine).await? {
            let mut cols = b.columns().to_vec();
            cols.push(Arc::new(Int32Array::from(vec![src.priority; b.num_rows()])));
            let b = RecordBatch::try_new(Arc::clone(&EVIDENCE_SCHEMA), cols)
                .map_err(|e| TransformError::Shape { what: what.clone(), message: e.to_string() })?;
            evidence.push(b);
        }
    }
    session::register_batches(ctx, "evidence", Arc::clone(&EVIDENCE_SCHEMA), evidence)?;
    let schema = ACTIVITY_DAILY.schema();
    let mut out = BTreeMap::new();
    for &day in days {
        let params = [("day", session::date(day)), ("computed_at", session::timestamp(now))];
        let what = format!("deriving activity_daily for {day}");
        out.insert(day, session::run(ctx, &what, ACTIVITY_DAILY_SQL, &params, &schema).await?);
    }
    Ok(out)
}
