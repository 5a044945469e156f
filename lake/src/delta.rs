//! The Delta Lake view: one Delta log per table (`<table>/_delta_log/`) over the very files
//! lastseen's own log lists, so DuckDB, Polars, Spark, Trino and Athena read exactly the
//! committed state of each table, with time travel, and no data is copied.
//!
//! lastseen's log stays the source of truth: it commits every table and the watermarks in one
//! put, which Delta (one log per table) cannot. After each lastseen version is published
//! (commit, retention), every table whose files changed gets one Delta commit that makes its
//! Delta state equal to that version's files: `add` for new files (partition value `dt`, size,
//! `stats` with `numRecords`, `nullCount` and min/max read from the Parquet footer), `remove`
//! for the files it stopped listing, commit info naming the lastseen version and run, and an
//! application transaction (`txn`, app id `lastseen`, version = the lastseen log version). The
//! `txn` makes publishing idempotent and resumable: a crash between lastseen's put and the
//! Delta commits leaves the Delta view behind, and the next command that takes the lease
//! brings every table up to the newest version (a lake without Delta logs is converted the same
//! way, in place). Each Delta commit is a create-only put of `_delta_log/<n>.json` through the
//! lake's own object store (delta-rs's default log store: `If-None-Match` on S3, a hard link
//! on a local disk).
//!
//! Table properties come from config: `delta.deletedFileRetentionDuration` is
//! `lake.keep_superseded` (what `vacuum` honours), a checkpoint every 10 commits, and
//! `delta.logRetentionDuration` (`lake.delta_log_retention`, at least the keep window). `vacuum`
//! deletes a file only when no Delta log references it either: not in a table's current state
//! and not removed more recently than the keep window.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use datafusion::arrow::array::{Array, ArrayRef};
use datafusion::common::ScalarValue;
use datafusion::parquet::arrow::arrow_reader::statistics::StatisticsConverter;
use datafusion::parquet::arrow::parquet_to_arrow_schema;
use datafusion::parquet::file::metadata::{FooterTail, ParquetMetaDataReader};
use deltalake_core::kernel::engine::arrow_conversion::TryFromArrow;
use deltalake_core::kernel::transaction::{CommitBuilder, CommitProperties, TableReference};
use deltalake_core::kernel::{
    Action, Add, Metadata, MetadataExt, Protocol, Remove, StructType, Transaction as AppTransaction, new_metadata,
};
use deltalake_core::logstore::{LogStoreRef, StorageConfig, default_logstore};
use deltalake_core::protocol::{DeltaOperation, SaveMode};
use deltalake_core::table::state::DeltaTableState;
use futures::StreamExt;
use object_store::ObjectStoreExt;
use object_store::prefix::PrefixStore;
use serde_json::{Value, json};

use crate::catalog::{PARTITION_COLUMN, TableDef};
use crate::commit::failpoint;
use crate::lock::LeaseState;
use crate::{DataFile, Lake, LakeError, Result, Snapshot};

/// The application id of lastseen's `txn` actions; its version is the lastseen log version.
pub const DELTA_APP_ID: &str = "lastseen";
/// A Delta checkpoint every this many commits: one commit a day per table makes the default
/// (100) a checkpoint every three months; readers would replay that many JSON files.
pub const DELTA_CHECKPOINT_INTERVAL: u32 = 10;
/// Default `delta.logRetentionDuration` (Delta's own default).
pub const DEFAULT_DELTA_LOG_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);
/// Strings longer than this get no min/max statistics (Delta writers truncate them; a
/// truncated max would need rounding up, so lastseen leaves such columns without bounds).
const MAX_STAT_STRING: usize = 32;

/// The Delta table properties lastseen sets from config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeltaSettings {
    /// `delta.deletedFileRetentionDuration`: `lake.keep_superseded`.
    pub keep_superseded: Duration,
    /// `delta.logRetentionDuration` (never below `keep_superseded`, so time travel works for
    /// as long as the files are kept).
    pub log_retention: Duration,
}

impl Default for DeltaSettings {
    fn default() -> Self {
        DeltaSettings { keep_superseded: crate::DEFAULT_KEEP_SUPERSEDED, log_retention: DEFAULT_DELTA_LOG_RETENTION }
    }
}

impl DeltaSettings {
    fn configuration(&self) -> BTreeMap<String, String> {
        let secs = |d: Duration| format!("interval {} seconds", d.as_secs());
        BTreeMap::from([
            ("delta.deletedFileRetentionDuration".to_string(), secs(self.keep_superseded)),
            ("delta.logRetentionDuration".to_string(), secs(self.log_retention.max(self.keep_superseded))),
            ("delta.checkpointInterval".to_string(), DELTA_CHECKPOINT_INTERVAL.to_string()),
        ])
    }
}

/// What bringing the Delta logs up to a lastseen version did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeltaSync {
    /// The lastseen version the Delta logs now reflect.
    pub lake_version: u64,
    /// Tables that got a Delta commit, with its Delta version.
    pub committed: Vec<(String, u64)>,
}

/// A file in a Delta log's current state: its path as the log writes it, size and partition
/// values (what its `remove` must repeat).
type DeltaFile = (String, i64, HashMap<String, Option<String>>);

fn delta_err(table: &str, what: &str, e: impl std::fmt::Display) -> LakeError {
    LakeError::Delta { table: table.to_string(), message: format!("{what}: {e}") }
}

/// A path as Delta readers resolve it (percent-decoded): lastseen's names only use
/// `[A-Za-z0-9._=/-]`, but delta-rs percent-encodes some of them in the log.
fn decoded(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| path.to_string())
}

impl Lake {
    /// The Delta settings this lake publishes with (config `lake.keep_superseded`,
    /// `lake.delta_log_retention`).
    pub fn delta_settings(&self) -> &DeltaSettings {
        &self.delta
    }

    /// The lake with these Delta table properties.
    pub fn with_delta_settings(mut self, settings: DeltaSettings) -> Lake {
        self.delta = settings;
        self
    }

    /// The URL of a table's root (where its `_delta_log` is).
    pub fn table_url(&self, table: &str) -> Result<url::Url> {
        let url = self.url();
        let s = format!("{}://{}/{}/", url.scheme(), url.host_str().unwrap_or(""), self.path(table));
        url::Url::parse(&s).map_err(|e| LakeError::Url { url: s, message: e.to_string() })
    }

    /// delta-rs's log store for `table`, over the lake's own object store.
    pub(crate) fn delta_log_store(&self, table: &str) -> Result<LogStoreRef> {
        let location = self.table_url(table)?;
        let prefixed: Arc<dyn object_store::ObjectStore> =
            Arc::new(PrefixStore::new(Arc::clone(self.store()), self.path(table)));
        Ok(default_logstore(prefixed, Arc::clone(self.store()), &location, &StorageConfig::default()))
    }

    /// The newest state of `table`'s Delta log, or `None` when it has none yet.
    pub(crate) async fn delta_state(&self, table: &str, log_store: &LogStoreRef) -> Result<Option<DeltaTableState>> {
        let exists =
            log_store.is_delta_table_location().await.map_err(|e| delta_err(table, "listing the Delta log", e))?;
        if !exists {
            return Ok(None);
        }
        DeltaTableState::try_new(log_store.as_ref(), None)
            .await
            .map(Some)
            .map_err(|e| delta_err(table, "reading the Delta log", e))
    }

    /// Bring every table's Delta log up to the newest lastseen version. A table whose Delta
    /// `txn` already is at it (and whose properties match the config), or whose files did not
    /// change, gets no commit. Fenced on the lease before every commit.
    pub(crate) async fn sync_delta(&self, lease: &LeaseState) -> Result<DeltaSync> {
        let snap = self.snapshot().await?;
        let mut out = DeltaSync { lake_version: snap.version, committed: Vec::new() };
        if snap.version == 0 {
            return Ok(out);
        }
        for name in snap.tables.keys() {
            let def = crate::catalog::table(name)?;
            if let Some(v) = self.sync_table(&snap, def, lease).await? {
                out.committed.push((name.clone(), v));
                if out.committed.len() == 1 {
                    failpoint("mid_delta");
                }
            }
        }
        Ok(out)
    }

    /// [`Lake::sync_delta`], logging instead of failing: the lastseen version is published
    /// whatever happens to its Delta view, and the next command that takes the lease retries.
    pub(crate) async fn sync_delta_logged(&self, lease: &LeaseState) {
        match self.sync_delta(lease).await {
            Ok(s) if !s.committed.is_empty() => {
                tracing::info!(lake_version = s.lake_version, tables = ?s.committed, "published the Delta logs")
            }
            Ok(_) => {}
            Err(e @ LakeError::LeaseLost { .. }) => {
                tracing::error!(error = %e, "the Delta logs were not brought up to date")
            }
            Err(e) => tracing::warn!(
                error = %e,
                "the Delta view of the lake is behind lastseen's log (other engines read the previous \
                 version); the next run or `lastseen vacuum` brings it up to date. If a table's \
                 `_delta_log` is damaged, move it away: the next run rebuilds it from lastseen's log"
            ),
        }
    }

    /// One table: make its Delta state equal to `snap`'s files, in one commit.
    async fn sync_table(&self, snap: &Snapshot, def: &'static TableDef, lease: &LeaseState) -> Result<Option<u64>> {
        let table = def.name;
        let Some(ts) = snap.table(table) else { return Ok(None) };
        let log_store = self.delta_log_store(table)?;
        let state = self.delta_state(table, &log_store).await?;
        let mut txn_current = false;
        if let Some(st) = &state {
            let txn = st
                .transaction_version(log_store.as_ref(), DELTA_APP_ID)
                .await
                .map_err(|e| delta_err(table, "reading the `lastseen` transaction version", e))?;
            if let Some(v) = txn.filter(|v| *v > snap.version as i64) {
                // Only when the newest lastseen version is damaged and readers fell back to an
                // older one: never take the Delta view backwards.
                tracing::warn!(
                    table,
                    delta_txn = v,
                    lake_version = snap.version,
                    "the Delta log is ahead of the readable lake version; left as is"
                );
                return Ok(None);
            }
            // Already at this version: only a changed property (config) may still need a commit.
            txn_current = txn == Some(snap.version as i64);
        }
        let prefix = format!("{table}/");
        // The files lastseen lists, by path relative to the table root.
        let mut wanted: BTreeMap<String, (NaiveDate, &DataFile, DateTime<Utc>)> = BTreeMap::new();
        for (dt, p) in &ts.partitions {
            for f in &p.files {
                let rel = f.path.strip_prefix(&prefix).unwrap_or(&f.path).to_string();
                wanted.insert(rel, (*dt, f, p.committed_at));
            }
        }
        // The files the Delta log lists now.
        let mut current: BTreeMap<String, DeltaFile> = BTreeMap::new();
        if let Some(st) = &state {
            for f in st.log_data().iter() {
                let raw = f.path().to_string();
                current.insert(decoded(&raw), (raw, f.size(), f.partition_values_map()));
            }
        }
        let schema = StructType::try_from_arrow(def.table_schema().as_ref())
            .map_err(|e| delta_err(table, "converting the schema", e))?;
        let config = self.delta.configuration();
        let metadata: Option<Metadata> = match &state {
            None => Some(
                new_metadata(&schema, [PARTITION_COLUMN], config.clone())
                    .map_err(|e| delta_err(table, "building the table metadata", e))?,
            ),
            Some(st) => {
                let existing = st.metadata();
                let same_config = config.iter().all(|(k, v)| existing.configuration().get(k) == Some(v));
                if *st.schema() == schema && same_config {
                    None
                } else {
                    let mut m = existing
                        .clone()
                        .with_schema(&schema)
                        .map_err(|e| delta_err(table, "updating the table schema", e))?;
                    for (k, v) in &config {
                        m = m
                            .add_config_key(k.clone(), v.clone())
                            .map_err(|e| delta_err(table, "setting a property", e))?;
                    }
                    Some(m)
                }
            }
        };
        let (added, removed): (Vec<&String>, Vec<&String>) = if txn_current {
            (Vec::new(), Vec::new())
        } else {
            (
                wanted.keys().filter(|p| !current.contains_key(*p)).collect(),
                current.keys().filter(|p| !wanted.contains_key(*p)).collect(),
            )
        };
        if state.is_some() && added.is_empty() && removed.is_empty() && metadata.is_none() {
            return Ok(None);
        }

        let now_ms = Utc::now().timestamp_millis();
        let mut actions = Vec::new();
        let mut days: BTreeSet<String> = BTreeSet::new();
        if state.is_none() {
            let protocol: Protocol = serde_json::from_value(json!({"minReaderVersion": 1, "minWriterVersion": 2}))
                .map_err(|e| delta_err(table, "building the protocol", e))?;
            actions.push(Action::Protocol(protocol));
        }
        if let Some(m) = &metadata {
            actions.push(Action::Metadata(m.clone()));
        }
        for rel in &added {
            let (dt, f, committed_at) = wanted[*rel];
            let day = dt.format("%Y-%m-%d").to_string();
            days.insert(day.clone());
            let stats = self.file_stats(def, f).await?;
            actions.push(Action::Add(Add {
                path: (*rel).clone(),
                partition_values: HashMap::from([(PARTITION_COLUMN.to_string(), Some(day))]),
                size: f.bytes as i64,
                modification_time: committed_at.timestamp_millis(),
                data_change: true,
                stats: Some(stats.to_string()),
                tags: None,
                deletion_vector: None,
                base_row_id: None,
                default_row_commit_version: None,
                clustering_provider: None,
            }));
        }
        for rel in &removed {
            let (raw, size, partition_values) = &current[*rel];
            if let Some(Some(d)) = partition_values.get(PARTITION_COLUMN) {
                days.insert(d.clone());
            }
            actions.push(Action::Remove(Remove {
                path: raw.clone(),
                data_change: true,
                deletion_timestamp: Some(now_ms),
                extended_file_metadata: Some(true),
                partition_values: Some(partition_values.clone()),
                size: Some(*size),
                ..Default::default()
            }));
        }
        let predicate = (!days.is_empty()).then(|| {
            let list: Vec<String> = days.iter().map(|d| format!("'{d}'")).collect();
            format!("{PARTITION_COLUMN} IN ({})", list.join(", "))
        });
        let operation = match (&state, &metadata) {
            (None, Some(m)) => DeltaOperation::Create {
                mode: SaveMode::ErrorIfExists,
                location: log_store.root_url().clone(),
                protocol: match &actions[0] {
                    Action::Protocol(p) => p.clone(),
                    _ => unreachable!("the first action of a new table is its protocol"),
                },
                metadata: m.clone(),
            },
            _ if added.is_empty() && removed.is_empty() => {
                DeltaOperation::SetTableProperties { properties: config.clone().into_iter().collect() }
            }
            _ if added.is_empty() => DeltaOperation::Delete { predicate },
            _ => DeltaOperation::Write {
                mode: if removed.is_empty() { SaveMode::Append } else { SaveMode::Overwrite },
                partition_by: Some(vec![PARTITION_COLUMN.to_string()]),
                predicate,
            },
        };
        let properties = CommitProperties::default()
            .with_application_transaction(AppTransaction::new(DELTA_APP_ID, snap.version as i64))
            .with_metadata([(
                "lastseen".to_string(),
                json!({"lakeVersion": snap.version, "runId": snap.run_id, "committedAt": snap.committed_at}),
            )]);
        // Fencing, as for lastseen's own publish: only the lease holder writes the Delta logs.
        self.check_lease(lease).await?;
        let table_data = state.as_ref().map(|s| s as &dyn TableReference);
        let committed = CommitBuilder::from(properties)
            .with_actions(actions)
            .build(table_data, Arc::clone(&log_store), operation)
            .await
            .map_err(|e| delta_err(table, "committing to the Delta log", e))?;
        tracing::debug!(
            table,
            delta_version = committed.version(),
            lake_version = snap.version,
            added = added.len(),
            removed = removed.len(),
            "Delta commit"
        );
        Ok(Some(committed.version()))
    }

    /// Delta statistics of a committed file: `numRecords`, and from the Parquet footer
    /// `nullCount` and `minValues`/`maxValues` of the columns Delta readers skip files with.
    async fn file_stats(&self, def: &TableDef, f: &DataFile) -> Result<Value> {
        let path = self.path(&f.path);
        let parquet_err = |source| LakeError::Parquet { path: path.to_string(), source };
        // The footer: its length and magic in the last 8 bytes, the metadata before them.
        let size = f.bytes;
        let tail = self
            .store()
            .get_range(&path, size.saturating_sub(8)..size)
            .await
            .map_err(|e| LakeError::store(&path, e))?;
        let len = FooterTail::try_from(&tail[..]).map_err(parquet_err)?.metadata_length() as u64;
        let start = size.saturating_sub(8 + len);
        let footer = self.store().get_range(&path, start..size - 8).await.map_err(|e| LakeError::store(&path, e))?;
        let meta = ParquetMetaDataReader::decode_metadata(&footer).map_err(parquet_err)?;
        let parquet_schema = meta.file_metadata().schema_descr();
        let arrow_schema =
            parquet_to_arrow_schema(parquet_schema, meta.file_metadata().key_value_metadata()).map_err(parquet_err)?;
        let row_groups = meta.row_groups();
        let rows: u64 = row_groups.iter().map(|rg| rg.num_rows() as u64).sum();
        let (mut mins, mut maxs, mut nulls) = (serde_json::Map::new(), serde_json::Map::new(), serde_json::Map::new());
        for field in def.schema().fields() {
            let name = field.name();
            if matches!(field.data_type(), datafusion::arrow::datatypes::DataType::List(_)) {
                continue;
            }
            let Ok(conv) = StatisticsConverter::try_new(name, &arrow_schema, parquet_schema) else { continue };
            let null_counts = conv.row_group_null_counts(row_groups.iter()).ok();
            let total_nulls: Option<u64> =
                null_counts.as_ref().filter(|n| n.null_count() == 0).map(|n| n.values().iter().sum());
            if let Some(n) = total_nulls {
                nulls.insert(name.clone(), json!(n));
            }
            let (Ok(lo), Ok(hi)) = (conv.row_group_mins(row_groups.iter()), conv.row_group_maxes(row_groups.iter()))
            else {
                continue;
            };
            // Every row group must have bounds, except one made only of nulls.
            let all_null = |i: usize| {
                null_counts.as_ref().is_some_and(|n| !n.is_null(i) && n.value(i) == row_groups[i].num_rows() as u64)
            };
            if let (Some(lo), Some(hi)) = (fold(&lo, true, &all_null), fold(&hi, false, &all_null))
                && let (Some(l), Some(h)) = (stat_json(&lo, true), stat_json(&hi, false))
            {
                mins.insert(name.clone(), l);
                maxs.insert(name.clone(), h);
            }
        }
        Ok(json!({"numRecords": rows.max(f.rows), "minValues": mins, "maxValues": maxs, "nullCount": nulls}))
    }

    /// Lake-relative paths some Delta log still references: a table's current files, and files
    /// it removed after `cutoff` (a Delta reader pinned to an older version may scan them).
    /// `vacuum` deletes none of these.
    pub(crate) async fn delta_referenced(&self, snap: &Snapshot, cutoff: DateTime<Utc>) -> Result<BTreeSet<String>> {
        let mut out = BTreeSet::new();
        let cutoff_ms = cutoff.timestamp_millis();
        for name in snap.tables.keys() {
            let log_store = self.delta_log_store(name)?;
            let Some(st) = self.delta_state(name, &log_store).await? else { continue };
            for f in st.log_data().iter() {
                out.insert(format!("{name}/{}", decoded(&f.path())));
            }
            let mut tombstones = st.all_tombstones(log_store.as_ref());
            while let Some(t) = tombstones.next().await {
                let t = t.map_err(|e| delta_err(name, "reading the Delta log's removed files", e))?;
                if t.deletion_timestamp().is_none_or(|ts| ts > cutoff_ms) {
                    out.insert(format!("{name}/{}", decoded(&t.path())));
                }
            }
        }
        Ok(out)
    }
}

/// The smallest (`min`) or largest value over the row groups' bounds; `None` when a row group
/// with values has no bound (the statistic is unknown then) or there is no value at all.
fn fold(bounds: &ArrayRef, min: bool, all_null: &dyn Fn(usize) -> bool) -> Option<ScalarValue> {
    let mut best: Option<ScalarValue> = None;
    for i in 0..bounds.len() {
        if bounds.is_null(i) {
            if all_null(i) {
                continue;
            }
            return None;
        }
        let v = ScalarValue::try_from_array(bounds, i).ok()?;
        best = match best {
            None => Some(v),
            Some(b) => {
                let ord = v.partial_cmp(&b)?;
                let better = if min { ord.is_lt() } else { ord.is_gt() };
                Some(if better { v } else { b })
            }
        };
    }
    best
}

/// A bound as Delta statistics JSON. Timestamps are written in milliseconds (what Delta
/// readers parse), rounded outwards so the bound still holds; unsupported types give `None`.
fn stat_json(v: &ScalarValue, min: bool) -> Option<Value> {
    match v {
        ScalarValue::Int64(Some(x)) => Some(json!(x)),
        ScalarValue::Int32(Some(x)) => Some(json!(x)),
        ScalarValue::Utf8(Some(s)) if s.chars().count() <= MAX_STAT_STRING => Some(json!(s)),
        ScalarValue::Date32(Some(d)) => {
            crate::catalog::from_date32(*d).map(|d| json!(d.format("%Y-%m-%d").to_string()))
        }
        ScalarValue::TimestampMicrosecond(Some(us), _) => {
            let ms = if min { us.div_euclid(1000) } else { (us + 999).div_euclid(1000) };
            let t = DateTime::<Utc>::from_timestamp_millis(ms)?;
            Some(json!(t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_percent_decoded() {
        assert_eq!(decoded("dt%3D2026-11-02/part-a.parquet"), "dt=2026-11-02/part-a.parquet");
        assert_eq!(decoded("dt=2026-11-02/part-a.parquet"), "dt=2026-11-02/part-a.parquet");
        assert_eq!(decoded("bad%zz"), "bad%zz");
    }

    #[test]
    fn timestamp_bounds_round_outwards_to_milliseconds() {
        let ts = |us| ScalarValue::TimestampMicrosecond(Some(us), Some("UTC".into()));
        assert_eq!(stat_json(&ts(1_500), true), Some(json!("1970-01-01T00:00:00.001Z")));
        assert_eq!(stat_json(&ts(1_500), false), Some(json!("1970-01-01T00:00:00.002Z")));
        assert_eq!(stat_json(&ts(2_000), false), Some(json!("1970-01-01T00:00:00.002Z")));
        assert_eq!(stat_json(&ScalarValue::Utf8(Some("x".repeat(33))), true), None);
    }
}
