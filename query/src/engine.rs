//! The query engine: one DataFusion `SessionContext` with every lake table registered as of the
//! newest committed version, so every query in a session sees one consistent lake.

use std::collections::HashMap;

use chrono::NaiveDate;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::metadata::ScalarAndMetadata;
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::prelude::{DataFrame, SessionConfig, SessionContext};
use lastseen_lake::{Lake, LakeTable, Snapshot};

use crate::Result;
use crate::export::Provenance;

pub struct QueryEngine {
    ctx: SessionContext,
    lake: Lake,
    snapshot: Snapshot,
}

impl std::fmt::Debug for QueryEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryEngine").field("version", &self.snapshot.version).finish()
    }
}

impl QueryEngine {
    /// A session over the lake's newest committed version.
    pub async fn open(lake: &Lake) -> Result<QueryEngine> {
        let snapshot = lake.snapshot().await?;
        Self::at(lake, snapshot)
    }

    pub fn at(lake: &Lake, snapshot: Snapshot) -> Result<QueryEngine> {
        let config = SessionConfig::new()
            .with_information_schema(true)
            .set_bool("datafusion.execution.parquet.pushdown_filters", true)
            .set_bool("datafusion.execution.parquet.reorder_filters", true);
        let ctx = SessionContext::new_with_config(config);
        LakeTable::register_all(&ctx, lake, &snapshot)?;
        Ok(QueryEngine { ctx, lake: lake.clone(), snapshot })
    }

    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// Plan `sql`, binding `$name` placeholders from `params`.
    pub async fn plan(&self, sql: &str, params: &[(&str, ScalarValue)]) -> Result<DataFrame> {
        let df = self.ctx.sql(sql).await?;
        if params.is_empty() {
            return Ok(df);
        }
        let map: HashMap<String, ScalarAndMetadata> =
            params.iter().map(|(k, v)| (k.to_string(), v.clone().into())).collect();
        Ok(df.with_param_values(ParamValues::Map(map))?)
    }

    pub async fn sql(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        Ok(self.plan(sql, &[]).await?.collect().await?)
    }

    /// Provenance for an export of `sql` read from this session's lake version, generated now.
    pub async fn provenance(&self, title: &str, sql: &str) -> Result<Provenance> {
        Provenance::new(title, sql, chrono::Utc::now()).with_lake(&self.lake, &self.snapshot).await
    }

    /// The committed snapshot days of `table`, oldest first.
    pub fn dates(&self, table: &str) -> Vec<NaiveDate> {
        self.snapshot.dates(table)
    }
}
