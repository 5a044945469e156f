//! Derived tables: DataFusion SQL plans over the committed raw tables, written back through the
//! lake's commit protocol. Today: `last_seen` (per account, newest and oldest evidence of use).

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use datafusion::arrow::compute::cast;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::metadata::ScalarAndMetadata;
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::prelude::{SessionConfig, SessionContext};
use lastseen_lake::catalog::LAST_SEEN;
use lastseen_lake::{CommitSummary, Lake, LakeTable, LockGuard};

pub const LAST_SEEN_SQL: &str = include_str!("../sql/last_seen.sql");

#[derive(Debug, thiserror::Error)]
pub enum TransformError {
    #[error(transparent)]
    Lake(#[from] lastseen_lake::LakeError),
    #[error("deriving {table} for {dt}: {source}")]
    Plan {
        table: &'static str,
        dt: NaiveDate,
        #[source]
        source: Box<datafusion::error::DataFusionError>,
    },
    #[error("cannot derive {table} for {dt}: {message}")]
    Missing { table: &'static str, dt: NaiveDate, message: String },
}

pub type Result<T, E = TransformError> = std::result::Result<T, E>;

/// Compute `last_seen` for `dates` from the committed raw tables and commit it.
pub async fn derive_last_seen(
    lake: &Lake,
    lease: &LockGuard,
    dates: &[NaiveDate],
    now: DateTime<Utc>,
) -> Result<CommitSummary> {
    let snapshot = lake.snapshot().await?;
    let ctx = SessionContext::new_with_config(SessionConfig::new());
    LakeTable::register_all(&ctx, lake, &snapshot)?;
    let mut tx = lake.begin(lease).await?;
    for &dt in dates {
        if snapshot.partition(lastseen_lake::catalog::SLACK_USERS.name, dt).is_none() {
            return Err(TransformError::Missing {
                table: LAST_SEEN.name,
                dt,
                message: "no slack_users snapshot for that day".into(),
            });
        }
        tx.declare_snapshot(&LAST_SEEN, dt);
        for batch in last_seen_batches(&ctx, dt, now).await? {
            tx.write(&LAST_SEEN, dt, batch)?;
        }
    }
    Ok(tx.commit().await?)
}

/// The `last_seen` rows for one day, in the catalog schema.
pub async fn last_seen_batches(ctx: &SessionContext, dt: NaiveDate, now: DateTime<Utc>) -> Result<Vec<RecordBatch>> {
    let plan_err = |e| TransformError::Plan { table: LAST_SEEN.name, dt, source: Box::new(e) };
    let params: HashMap<String, ScalarAndMetadata> = HashMap::from([
        ("as_of".to_string(), lastseen_lake::catalog::date_scalar(dt).into()),
        ("computed_at".to_string(), ScalarValue::TimestampMicrosecond(Some(now.timestamp_micros()), None).into()),
    ]);
    let df = ctx
        .sql(LAST_SEEN_SQL)
        .await
        .map_err(plan_err)?
        .with_param_values(ParamValues::Map(params))
        .map_err(plan_err)?;
    let batches = df.collect().await.map_err(plan_err)?;
    // The SQL's result types are DataFusion's choice (nullability, string view); the lake's schema
    // is the contract, so conform each column to it.
    let schema = LAST_SEEN.schema();
    batches
        .into_iter()
        .map(|b| {
            let cols = schema
                .fields()
                .iter()
                .zip(b.columns())
                .map(|(f, c)| cast(c, f.data_type()))
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| plan_err(e.into()))?;
            RecordBatch::try_new(Arc::clone(&schema), cols).map_err(|e| plan_err(e.into()))
        })
        .collect()
}
