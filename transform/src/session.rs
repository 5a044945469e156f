//! The DataFusion session the transforms run in: every committed lake table, typed empty
//! stand-ins for the raw tables of the shared ingest contract that this build's catalog does not
//! have yet, the `users_src` view, and the helpers that run a SQL file with parameters and
//! conform its result to a catalog schema.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::ScalarValue;
use datafusion::common::metadata::ScalarAndMetadata;
use datafusion::datasource::MemTable;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use lastseen_lake::catalog::{SLACK_USERS, TABLES, partition_field};
use lastseen_lake::{Lake, LakeTable, Snapshot};

use crate::{Result, TransformError};

pub(crate) fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn utf8(n: &str) -> Field {
    Field::new(n, DataType::Utf8, true)
}

fn boolean(n: &str) -> Field {
    Field::new(n, DataType::Boolean, true)
}

fn with_dt(fields: Vec<Field>) -> SchemaRef {
    let mut fields = fields;
    fields.push(partition_field());
    Arc::new(Schema::new(fields))
}

/// The raw tables of the ingest contract (names and the columns transforms read) that may not
/// be in this build's catalog. Where the catalog has one, the real table is used instead.
static CONTRACT_TABLES: LazyLock<Vec<(&'static str, SchemaRef)>> = LazyLock::new(|| {
    let collected = || Field::new("collected_at", ts(), true);
    vec![
        ("slack_billing", with_dt(vec![utf8("team_id"), utf8("user_id"), boolean("billing_active"), collected()])),
        (
            "slack_usergroups",
            with_dt(vec![
                utf8("team_id"),
                utf8("usergroup_id"),
                utf8("handle"),
                utf8("name"),
                boolean("disabled"),
                Field::new("user_count", DataType::Int64, true),
                collected(),
            ]),
        ),
        ("slack_usergroup_members", with_dt(vec![utf8("team_id"), utf8("usergroup_id"), utf8("user_id"), collected()])),
        (
            "slack_scim_users",
            with_dt(vec![
                utf8("user_id"),
                utf8("user_name"),
                utf8("external_id"),
                utf8("email"),
                boolean("active"),
                utf8("display_name"),
                utf8("employee_number"),
                utf8("department"),
                utf8("manager_id"),
                collected(),
            ]),
        ),
        (
            "slack_scim_groups",
            with_dt(vec![utf8("group_id"), utf8("display_name"), utf8("member_user_id"), collected()]),
        ),
    ]
});

/// Columns the contract adds to `slack_users`, with the SQL used when this build lacks them.
const USERS_CONTRACT_COLUMNS: &[(&str, &str)] = &[
    ("enterprise_id", "CAST(NULL AS VARCHAR)"),
    ("workspace_ids", "make_array(team_id)"),
    ("last_active_at", "CAST(NULL AS TIMESTAMP)"),
    ("created_at", "CAST(NULL AS TIMESTAMP)"),
    ("has_sso", "CAST(NULL AS BOOLEAN)"),
];

pub(crate) fn in_catalog(table: &str) -> bool {
    TABLES.iter().any(|t| t.name == table)
}

pub(crate) fn catalog_has_column(table: &str, column: &str) -> bool {
    TABLES.iter().find(|t| t.name == table).is_some_and(|t| t.schema().index_of(column).is_ok())
}

/// A session over `snapshot` with stand-ins and `users_src` registered, whose plans share a
/// memory pool of `memory` bytes: sorts and aggregations past it spill to the OS temporary
/// directory, and a plan that cannot spill fails with DataFusion's "resources exhausted" error
/// instead of the process growing without bound.
pub(crate) async fn context(lake: &Lake, snapshot: &Snapshot, memory: usize) -> Result<SessionContext> {
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::new(FairSpillPool::new(memory)))
        .build_arc()
        .map_err(|e| TransformError::df("creating the query engine's runtime", e))?;
    let ctx = SessionContext::new_with_config_rt(SessionConfig::new(), runtime);
    LakeTable::register_all(&ctx, lake, snapshot)?;
    for (name, schema) in CONTRACT_TABLES.iter() {
        if !in_catalog(name) {
            register_batches(&ctx, name, Arc::clone(schema), Vec::new())?;
        }
    }
    register_users_src(&ctx).await?;
    Ok(ctx)
}

async fn register_users_src(ctx: &SessionContext) -> Result<()> {
    let schema = SLACK_USERS.table_schema();
    let mut cols: Vec<String> = schema.fields().iter().map(|f| format!("\"{}\"", f.name())).collect();
    for (col, fill) in USERS_CONTRACT_COLUMNS {
        if schema.index_of(col).is_err() {
            cols.push(format!("{fill} AS {col}"));
        }
    }
    let sql = format!("CREATE VIEW users_src AS SELECT {} FROM slack_users", cols.join(", "));
    ctx.sql(&sql).await.map_err(|e| TransformError::df("creating the users_src view", e))?;
    Ok(())
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
    let map: HashMap<String, ScalarAndMetadata> =
        params.iter().map(|(k, v)| ((*k).to_string(), v.clone().into())).collect();
    let df = ctx.sql(sql).await.map_err(|e| TransformError::df(what, e))?;
    let df = if map.is_empty() {
        df
    } else {
        df.with_param_values(datafusion::common::ParamValues::Map(map)).map_err(|e| TransformError::df(what, e))?
    };
    df.execute_stream().await.map_err(|e| TransformError::df(what, e))
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
