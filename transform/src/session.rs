//! The DataFusion session the transforms run in (every committed lake table), and the helpers
//! that run a SQL file with parameters and conform its result to a catalog schema.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::ScalarValue;
use datafusion::common::metadata::ScalarAndMetadata;
use datafusion::datasource::MemTable;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use lastseen_lake::{Lake, LakeTable, Snapshot};

use crate::{Result, TransformError};

pub(crate) fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// A session over `snapshot` (every committed lake table registered), whose plans share a
/// memory pool of `memory` bytes: sorts and aggregations past it spill to the OS temporary
/// directory, and a plan that cannot spill fails with DataFusion's "resources exhausted" error
/// instead of the process growing without bound.
pub(crate) async fn context(lake: &Lake, snapshot: &Snapshot, memory: usize) -> Result<SessionContext> {
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::new(FairSpillPool::new(memory)))
        .build_arc()
        .map_err(|e| TransformError::df("creating the query engine's runtime", e))?;
    let ctx = SessionContext::new_with_config_rt(SessionConfig::new(), runtime);
    crate::minmax::register(&ctx);
    LakeTable::register_all(&ctx, lake, snapshot)?;
    Ok(ctx)
}

/// (Re)register in-memory batches as `name`.
pub(crate) fn register_batches(
    ctx: &SessionContext,
    name: &str,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
) -> Result<()> {
    let _ = ctx.deregister_table(name);
    let mem =
        MemTable::try_new(schema, vec![batches]).map_err(|e| TransformError::df(format!("registering {name}"), e))?;
    ctx.register_table(name, Arc::new(mem)).map_err(|e| TransformError::df(format!("registering {name}"), e))?;
    Ok(())
}

/// Run `sql` with `$name` parameters and cast the result, column by column, to `schema`.
pub(crate) async fn run(
    ctx: &SessionContext,
    what: &str,
    sql: &str,
    params: &[(&str, ScalarValue)],
    schema: &SchemaRef,
) -> Result<Vec<RecordBatch>> {
    collect(stream(ctx, what, sql, params).await?, schema, what).await
}

/// Every non-empty batch of `stream`, cast to `schema`.
pub(crate) async fn collect(
    mut stream: datafusion::execution::SendableRecordBatchStream,
    schema: &SchemaRef,
    what: &str,
) -> Result<Vec<RecordBatch>> {
    let mut out = Vec::new();
    while let Some(b) = next_batch(&mut stream, schema, what).await? {
        out.push(b);
    }
    Ok(out)
}

/// Run `sql` with `$name` parameters as a stream of result batches, so a day of 500,000
/// accounts is never held as a whole: the derivation stages each batch as it comes (spilling
/// past `lake.stage_memory_mb`) and later steps read the staged rows back. Each batch still has
/// to go through [`conform`].
pub(crate) async fn stream(
    ctx: &SessionContext,
    what: &str,
    sql: &str,
    params: &[(&str, ScalarValue)],
) -> Result<datafusion::execution::SendableRecordBatchStream> {
    plan(ctx, what, sql, params).await?.execute_stream().await.map_err(|e| TransformError::df(what, e))
}

/// `sql` planned with its `$name` parameters bound, not yet run.
pub(crate) async fn plan(
    ctx: &SessionContext,
    what: &str,
    sql: &str,
    params: &[(&str, ScalarValue)],
) -> Result<datafusion::prelude::DataFrame> {
    let map: HashMap<String, ScalarAndMetadata> =
        params.iter().map(|(k, v)| ((*k).to_string(), v.clone().into())).collect();
    let df = ctx.sql(sql).await.map_err(|e| TransformError::df(what, e))?;
    if map.is_empty() {
        return Ok(df);
    }
    df.with_param_values(datafusion::common::ParamValues::Map(map)).map_err(|e| TransformError::df(what, e))
}

/// The next non-empty batch of `stream`, cast to `schema`.
pub(crate) async fn next_batch(
    stream: &mut datafusion::execution::SendableRecordBatchStream,
    schema: &SchemaRef,
    what: &str,
) -> Result<Option<RecordBatch>> {
    use futures::StreamExt;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(|e| TransformError::df(what, e))?;
        if batch.num_rows() > 0 {
            return Ok(Some(conform(&batch, schema, what)?));
        }
    }
    Ok(None)
}

/// The SQL's result types are DataFusion's choice (string views, nullability, naive
/// timestamps); the catalog's schema is the contract, so each column is cast to it.
pub(crate) fn conform(batch: &RecordBatch, schema: &SchemaRef, what: &str) -> Result<RecordBatch> {
    if batch.num_columns() != schema.fields().len() {
        return Err(TransformError::Shape {
            what: what.to_string(),
            message: format!("{} columns, expected {}", batch.num_columns(), schema.fields().len()),
        });
    }
    let cols = schema
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(f, c)| {
            cast(c, f.data_type()).map_err(|e| TransformError::Shape {
                what: what.to_string(),
                message: format!("column `{}`: {e}", f.name()),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    RecordBatch::try_new(Arc::clone(schema), cols)
        .map_err(|e| TransformError::Shape { what: what.to_string(), message: e.to_string() })
}

/// `batch` (a file-schema batch of a snapshot table) with the `dt` column appended.
pub(crate) fn add_dt(batch: &RecordBatch, table_schema: &SchemaRef, dt: chrono::NaiveDate) -> Result<RecordBatch> {
    let mut cols = batch.columns().to_vec();
    let d = lastseen_lake::catalog::date32(dt);
    cols.push(Arc::new(datafusion::arrow::array::Date32Array::from(vec![d; batch.num_rows()])));
    RecordBatch::try_new(Arc::clone(table_schema), cols).map_err(|e| TransformError::Shape {
        what: format!("adding {}", lastseen_lake::catalog::PARTITION_COLUMN),
        message: e.to_string(),
    })
}

pub(crate) fn date(d: chrono::NaiveDate) -> ScalarValue {
    lastseen_lake::catalog::date_scalar(d)
}

pub(crate) fn timestamp(t: chrono::DateTime<chrono::Utc>) -> ScalarValue {
    ScalarValue::TimestampMicrosecond(Some(t.timestamp_micros()), Some("UTC".into()))
}
