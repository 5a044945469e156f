//! The lake's error type: every storage, Parquet and commit failure, said in terms of what to do.

use chrono::NaiveDate;

/// Everything that can go wrong reading or writing the lake.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error("storage URL `{url}` is not usable: {message}")]
    Url { url: String, message: String },

    #[error("object store error at `{path}`: {source}")]
    Store {
        path: String,
        #[source]
        source: object_store::Error,
    },

    #[error("cannot encode or decode {what}: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },

    #[error("Parquet error in {path}: {source}")]
    Parquet {
        path: String,
        #[source]
        source: datafusion::parquet::errors::ParquetError,
    },

    #[error("query engine error while {context}: {source}")]
    DataFusion {
        context: String,
        #[source]
        source: Box<datafusion::error::DataFusionError>,
    },

    #[error("Arrow error while {context}: {source}")]
    Arrow {
        context: String,
        #[source]
        source: datafusion::arrow::error::ArrowError,
    },

    #[error("unknown table `{0}`; known tables: {known}", known = crate::catalog::table_names().join(", "))]
    UnknownTable(String),

    #[error("batch for table `{table}` does not match its schema: {message}")]
    Schema { table: String, message: String },

    #[error(
        "table `{table}` partition dt={dt}: row in column `{column}` has no value, so it cannot be placed in a date partition"
    )]
    MissingPartitionValue { table: String, dt: NaiveDate, column: String },

    #[error(
        "the lake is locked by run {holder} (until {expires_at}); another lastseen run is writing. \
         Wait for it to finish; a run that died is taken over once its lease expires (its heartbeat \
         stops renewing it)"
    )]
    Locked { holder: String, expires_at: String },

    #[error(
        "commit conflict: another writer committed version {version} touching {what} while this run was writing; re-run to pick up its data"
    )]
    Conflict { version: u64, what: String },

    #[error(
        "mass-change guard: table `{table}` dt={dt} would have {rows} rows, {drop_pct:.1}% fewer than the \
         {previous_rows} rows of dt={previous_dt}, more than the allowed {max_pct:.1}% (lake.max_snapshot_drop = \
         {max_drop}); nothing was published. Check the Slack token's scopes and the source first; if the \
         accounts really went away, publish this snapshot with `lastseen run --force` (env LASTSEEN_FORCE=true)",
        drop_pct = 100.0 * (*previous_rows as f64 - *rows as f64) / *previous_rows as f64,
        max_pct = 100.0 * max_drop
    )]
    SnapshotDrop { table: String, dt: NaiveDate, rows: u64, previous_dt: NaiveDate, previous_rows: u64, max_drop: f64 },

    #[error(
        "storage at `{url}` does not honour create-only puts: a second create of `{probe}` was accepted \
         (an S3-compatible server that ignores `If-None-Match: *`). The lake lease and the commit log \
         need it, or two runs could both publish and lose data; nothing was written. Put the lake on \
         a store that honours conditional puts (AWS S3, GCS, Azure Blob, a local disk, or an \
         S3-compatible server version that implements `If-None-Match` on PUT)"
    )]
    CreateOnlyIgnored { url: String, probe: String },

    #[error(
        "run {run_id} lost the lake lease (generation {generation}): {reason}. Another run took it over, \
         so this run stopped without publishing; re-run when the other run has finished"
    )]
    LeaseLost { run_id: String, generation: u64, reason: String },

    #[error("the commit log is corrupt at `{path}`: {message}")]
    CorruptLog { path: String, message: String },

    #[error(
        "the Delta log of table `{table}` ({table}/_delta_log): {message}. lastseen's own log is unaffected; \
         if the Delta log is damaged, move `{table}/_delta_log` away and the next run rebuilds it"
    )]
    Delta { table: String, message: String },

    #[error(
        "lake version {version} cannot be read: {reason}. Versions stay readable for `lake.keep_superseded` \
         after they were replaced (`lastseen tables` shows the newest); use a newer version or the exported \
         evidence"
    )]
    VersionGone { version: u64, reason: String },
}

impl LakeError {
    pub(crate) fn store(path: impl std::fmt::Display, source: object_store::Error) -> Self {
        LakeError::Store { path: path.to_string(), source }
    }

    pub(crate) fn df(context: impl Into<String>, source: datafusion::error::DataFusionError) -> Self {
        LakeError::DataFusion { context: context.into(), source: Box::new(source) }
    }

    /// A query engine error because a memory pool was exhausted (the plan may succeed with a
    /// larger one).
    pub fn is_resources_exhausted(&self) -> bool {
        matches!(self, LakeError::DataFusion { source, .. }
            if matches!(source.find_root(), datafusion::error::DataFusionError::ResourcesExhausted(_)))
    }

    pub(crate) fn arrow(context: impl Into<String>, source: datafusion::arrow::error::ArrowError) -> Self {
        LakeError::Arrow { context: context.into(), source }
    }
}

pub type Result<T, E = LakeError> = std::result::Result<T, E>;
