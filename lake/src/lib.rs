//! lastseen's lake: the table catalog, the partitioned Parquet writer, the commit protocol, the
//! single-flight lease, run manifests, and the DataFusion provider that reads committed data.
//!
//! This crate is the only code that writes storage. Layout under the storage URL:
//!
//! ```text
//! <table>/dt=YYYY-MM-DD/part-<run-id>-<txn>-<n>.parquet  Hive layout; which files count is in the log
//! _lastseen/log/<version>.json                       commit log: each version is a full snapshot of
//!                                                    which files make up each partition, plus watermarks,
//!                                                    the lease generation and the superseded files
//! _lastseen/runs/<run-id>.json                       run manifests
//! _lastseen/lease/<generation>.json                  single-writer lease, one record per generation
//! _lastseen/inflight/<run-id>-<txn>.json             which partitions a commit writes into (for vacuum)
//! _lastseen/staging/<run-id>/                        spilled rows of a run in progress
//! _lastseen/probe/                                   the create-only check's short-lived key
//! <table>/_delta_log/                                the Delta Lake view of each table (delta.rs)
//! ```

pub mod catalog;
mod commit;
mod delta;
mod durable;
mod error;
mod lock;
pub mod log;
pub mod manifest;
mod provider;
mod retention;
mod store;
mod vacuum;
mod writer;

pub use catalog::{PARTITION_COLUMN, Partitioning, TABLES, TableDef, WriteMode};
pub use commit::{CommitSummary, DEFAULT_STAGE_MEMORY, PartitionWrite, Transaction, failpoint};
pub use delta::{DEFAULT_DELTA_LOG_RETENTION, DELTA_APP_ID, DELTA_CHECKPOINT_INTERVAL, DeltaSettings, DeltaSync};
pub use error::{LakeError, Result};
pub use lock::LockGuard;
pub use log::{DataFile, PartitionState, Snapshot, Superseded, TableState};
pub use manifest::{RunKind, RunManifest, RunStatus, SkipReport, SourceReport, SourceStatus, TableReport};
pub use provider::LakeTable;
pub use retention::{DroppedPartition, RefusedRetention, RetentionOutcome};
pub use store::{Lake, object_store_for};
pub use vacuum::{DEFAULT_KEEP_SUPERSEDED, VacuumReport};

/// Rows in a set of batches.
pub fn total_rows(batches: &[datafusion::arrow::record_batch::RecordBatch]) -> u64 {
    batches.iter().map(|b| b.num_rows() as u64).sum()
}

/// The process's peak resident set size so far in MiB (Linux `VmHWM`; `None` elsewhere): logged
/// with the timings of a run's phases, so a benchmark shows which phase sets the peak.
pub fn peak_rss_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}

/// A new run id: sortable by start time, unique across machines.
pub fn new_run_id(now: chrono::DateTime<chrono::Utc>) -> String {
    let rand = uuid::Uuid::new_v4().simple().to_string();
    format!("{}-{}", now.format("%Y%m%dT%H%M%SZ"), &rand[..8])
}
#[cfg(test)]
mod tests;
