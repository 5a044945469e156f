//! The query engine: one DataFusion `SessionContext` with every lake table registered as of the
//! newest committed version, so every query in a session sees one consistent lake. Queries are
//! read-only: the context holds the lake's store with its write credentials, so DDL, DML
//! (`COPY … TO` included) and statements are refused before planning finishes.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::metadata::ScalarAndMetadata;
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::execution::context::SQLOptions;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::{DataFrame, SessionConfig, SessionContext};
use lastseen_lake::{Lake, LakeTable, Snapshot};

use crate::concat::ConcatRanges;
use crate::export::Provenance;
use crate::lookup::LookupJoin;
use crate::sort::GatherSort;
use crate::{QueryError, Result};

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

    /// A session over lake version `version` (`--lake-version`): the state a report or an
    /// export recorded in its provenance, while its files are kept.
    pub async fn open_version(lake: &Lake, version: u64) -> Result<QueryEngine> {
        let snapshot = lake.snapshot_at(version).await?;
        Self::at(lake, snapshot)
    }

    pub fn at(lake: &Lake, snapshot: Snapshot) -> Result<QueryEngine> {
        let config = SessionConfig::new()
            .with_information_schema(true)
            .set_bool("datafusion.execution.parquet.pushdown_filters", true)
            .set_bool("datafusion.execution.parquet.reorder_filters", true);
        // DataFusion's session with its default rules, and after them the one-copy sort
        // (`sort.rs`): reports and ad hoc queries sort results of hundreds of thousands of wide
        // rows, where DataFusion's sort copies every row three times; and the merge of a sorted
        // file's byte ranges replaced by reading them one after another (`concat.rs`); and a
        // right join of a small table that passes the big side's rows through (`lookup.rs`).
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_default_features()
            .with_physical_optimizer_rule(Arc::new(GatherSort))
            .with_physical_optimizer_rule(Arc::new(ConcatRanges))
            .with_physical_optimizer_rule(Arc::new(LookupJoin))
            .build();
        let ctx = SessionContext::new_with_state(state);
        // Text as `Utf8View`: scans, joins and sorts copy 16-byte views instead of strings
        // (docs/DESIGN.md, the query session).
        LakeTable::register_all_views(&ctx, lake, &snapshot)?;
        Ok(QueryEngine { ctx, lake: lake.clone(), snapshot })
    }

    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// Plan `sql`, binding `$name` placeholders from `params`. Only queries pass: DDL
    /// (`CREATE`, `DROP`), DML (`INSERT`, `COPY … TO`) and statements (`SET`, transactions) are
    /// a usage error, so `lastseen sql`, the shell and reports cannot write the lake or local
    /// files. (URL tables, `SELECT * FROM 'file.csv'`, stay off: DataFusion's default.)
    pub async fn plan(&self, sql: &str, params: &[(&str, ScalarValue)]) -> Result<DataFrame> {
        let df = self.ctx.sql_with_options(sql, read_only()).await.map_err(refused)?;
        if params.is_empty() {
            return Ok(df);
        }
        let map: HashMap<String, ScalarAndMetadata> =
            params.iter().map(|(k, v)| (k.to_string(), v.clone().into())).collect();
        Ok(df.with_param_values(ParamValues::Map(map))?)
    }

    /// Plan and run `sql` (read-only, as [`Self::plan`]).
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

/// The options every lastseen query is planned with: no DDL, DML or statements. `lastseen serve`
/// checks its plans against the same options.
pub fn read_only() -> SQLOptions {
    SQLOptions::new().with_allow_ddl(false).with_allow_dml(false).with_allow_statements(false)
}

/// DataFusion's refusal of a writing statement, said in lastseen's terms.
pub fn refused(e: datafusion::error::DataFusionError) -> QueryError {
    let text = e.to_string();
    let what =
        ["DDL not supported", "DML not supported", "Statement not supported"].into_iter().find(|m| text.contains(m));
    match what {
        Some(_) => QueryError::Usage(format!(
            "lastseen's SQL is read-only: COPY … TO, CREATE, DROP, INSERT, UPDATE, DELETE and SET are refused \
             ({}); to save a result, run the query with --output FILE (and --format)",
            text.trim_start_matches("Error during planning: ")
        )),
        None => QueryError::DataFusion(e),
    }
}
