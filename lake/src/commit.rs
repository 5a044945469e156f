//! The commit protocol: stage rows per partition, write their files, publish one new log version
//! that makes them the partitions' content, then remove what they superseded.
//!
//! Staged rows stay in memory until a partition or the whole transaction exceeds its memory
//! budget; then they are spilled, unsorted, to Parquet under `_lastseen/staging/<run-id>/`, so a
//! long history never has to fit in memory. At commit each partition's in-memory and spilled
//! rows (plus, for merge tables, its committed files) go through one streaming DataFusion plan
//! into the partition's new files; the staging folder is removed once the version is published.
//!
//! Crash safety comes from the order: files first, then the single create-only put of the log
//! version, then cleanup. A crash before the put leaves the previous version as the lake (the new
//! files are unlisted garbage the next commit removes); a crash after it leaves the new version
//! with some superseded files still on disk, which the next commit also removes.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{NaiveDate, Utc};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::{cast, filter_record_batch};
use datafusion::arrow::datatypes::{DataType, Date32Type};
use datafusion::arrow::record_batch::RecordBatch;
use futures::TryStreamExt;
use object_store::ObjectStoreExt;

use crate::catalog::{Partitioning, TableDef, WriteMode};
use crate::log::{DataFile, PartitionState, Snapshot};
use crate::{Lake, LakeError, LockGuard, Result, writer};

/// Where spilled rows wait for the commit: `_lastseen/staging/<run-id>/…`.
pub(crate) const STAGING_DIR: &str = "_lastseen/staging";

/// The default in-memory budget of a transaction's staged rows (Arrow bytes).
pub const DEFAULT_STAGE_MEMORY: usize = 64 * 1024 * 1024;

/// Rows staged for one run, committed together as one log version.
#[derive(Debug)]
pub struct Transaction {
    lake: Lake,
    run_id: String,
    base: Snapshot,
    pending: BTreeMap<(&'static str, NaiveDate), Pending>,
    watermarks: BTreeMap<String, i64>,
    /// The mass-change guard's allowed drop (0..=1) for tables that have one; `None` = off.
    max_snapshot_drop: Option<f64>,
    /// Staged rows kept in memory before they are spilled to staging files.
    memory_budget: usize,
    /// Arrow bytes of all in-memory staged batches.
    in_memory: usize,
    spills: u64,
}

#[derive(Debug)]
struct Pending {
    def: &'static TableDef,
    batches: Vec<RecordBatch>,
    /// Arrow bytes of `batches`.
    bytes: usize,
    /// Rows already spilled to staging files, in spill order.
    spilled: Vec<DataFile>,
}

impl Pending {
    fn rows(&self) -> u64 {
        crate::total_rows(&self.batches) + self.spilled.iter().map(|f| f.rows).sum::<u64>()
    }
}

/// What one partition of a commit holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionWrite {
    pub table: String,
    pub dt: NaiveDate,
    pub rows: u64,
    pub files: usize,
    pub bytes: u64,
}

#[derive(Debug, Clone)]
pub struct CommitSummary {
    pub version: u64,
    pub partitions: Vec<PartitionWrite>,
}

impl CommitSummary {
    /// Rows committed per table (after merge and de-duplication).
    pub fn rows_by_table(&self) -> BTreeMap<String, u64> {
        let mut m = BTreeMap::new();
        for p in &self.partitions {
            *m.entry(p.table.clone()).or_default() += p.rows;
        }
        m
    }
}

/// Test hook: `LASTSEEN_TEST_FAILPOINT=<name>` aborts the process at that point of a commit, the
/// way a `kill -9` would, so crash recovery can be tested against the real binary.
fn failpoint(name: &str) {
    if std::env::var("LASTSEEN_TEST_FAILPOINT").is_ok_and(|v| v == name) {
        eprintln!("lastseen: failpoint `{name}` reached, aborting");
        std::process::abort();
    }
}

impl Lake {
    /// Start a transaction. Holding the lease is required: the cleanup after a commit removes
    /// unlisted files, which is only safe when no other writer is mid-commit.
    pub async fn begin(&self, lease: &LockGuard) -> Result<Transaction> {
        Ok(Transaction {
            lake: self.clone(),
            run_id: lease.run_id().to_string(),
            base: self.snapshot().await?,
            pending: BTreeMap::new(),
            watermarks: BTreeMap::new(),
            max_snapshot_drop: None,
            memory_budget: DEFAULT_STAGE_MEMORY,
            in_memory: 0,
            spills: 0,
        })
    }
}

fn check_schema(def: &TableDef, batch: &RecordBatch) -> Result<()> {
    let want = def.schema();
    let got = batch.schema();
    if want.fields().len() != got.fields().len() {
        return Err(LakeError::Schema {
            table: def.name.into(),
            message: format!("expected {} columns, got {}", want.fields().len(), got.fields().len()),
        });
    }
    for (w, g) in want.fields().iter().zip(got.fields()) {
        if w.name() != g.name() || w.data_type() != g.data_type() || (!w.is_nullable() && g.null_count_hint(batch)) {
            return Err(LakeError::Schema {
                table: def.name.into(),
                message: format!(
                    "column `{}` {:?}{} expected, got `{}` {:?}",
                    w.name(),
                    w.data_type(),
                    if w.is_nullable() { "" } else { " NOT NULL" },
                    g.name(),
                    g.data_type()
                ),
            });
        }
    }
    Ok(())
}

trait NullHint {
    fn null_count_hint(&self, batch: &RecordBatch) -> bool;
}

impl NullHint for datafusion::arrow::datatypes::FieldRef {
    fn null_count_hint(&self, batch: &RecordBatch) -> bool {
        batch.column_by_name(self.name()).is_some_and(|c| c.null_count() > 0)
    }
}

impl Transaction {
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The snapshot this transaction started from (its watermarks are the committed positions).
    pub fn base(&self) -> &Snapshot {
        &self.base
    }

    /// The staged state of one partition, created empty on first use.
    fn pending_mut(&mut self, def: &'static TableDef, dt: NaiveDate) -> &mut Pending {
        self.pending.entry((def.name, dt)).or_insert_with(|| Pending {
            def,
            batches: Vec::new(),
            bytes: 0,
            spilled: Vec::new(),
        })
    }

    fn stage(&mut self, def: &'static TableDef, dt: NaiveDate, batch: Option<RecordBatch>) {
        let p = self.pending_mut(def, dt);
        if let Some(batch) = batch.filter(|b| b.num_rows() > 0) {
            let bytes = batch.get_array_memory_size();
            p.bytes += bytes;
            p.batches.push(batch);
            self.in_memory += bytes;
        }
    }

    /// How many bytes of staged rows (Arrow memory) may be held before they are spilled to
    /// staging files. A partition that alone exceeds a quarter of it is spilled on its own.
    pub fn set_memory_budget(&mut self, bytes: usize) {
        self.memory_budget = bytes.max(1);
    }

    /// Staging files written so far.
    pub fn spill_count(&self) -> u64 {
        self.spills
    }

    /// Stage rows like [`Transaction::write`], then spill staged rows to staging files if the
    /// memory budget is exceeded. Collectors stream pages through this, so a run's memory is
    /// bounded by the budget, not by the amount of data collected.
    pub async fn write_spilling(
        &mut self,
        def: &'static TableDef,
        snapshot_dt: NaiveDate,
        batch: RecordBatch,
    ) -> Result<()> {
        self.write(def, snapshot_dt, batch)?;
        let per_partition = self.memory_budget / 4;
        let mut over: Vec<(usize, (&'static str, NaiveDate))> =
            self.pending.iter().filter(|(_, p)| p.bytes > 0).map(|(k, p)| (p.bytes, *k)).collect();
        if self.in_memory > self.memory_budget {
            // Largest first until half the budget is free: few, large staging files, and the
            // partitions still filling up stay in memory.
            over.sort_by_key(|o| std::cmp::Reverse(o.0));
            let mut left = self.in_memory;
            over.retain(|(bytes, _)| {
                let keep = left > self.memory_budget / 2;
                left = left.saturating_sub(*bytes);
                keep
            });
        } else {
            over.retain(|(bytes, _)| *bytes > per_partition);
        }
        for (_, key) in over {
            self.spill(key).await?;
        }
        Ok(())
    }

    async fn spill(&mut self, key: (&'static str, NaiveDate)) -> Result<()> {
        let n = self.spills;
        let Some(p) = self.pending.get_mut(&key) else { return Ok(()) };
        if p.batches.is_empty() {
            return Ok(());
        }
        let rel =
            format!("{STAGING_DIR}/{}/{}/dt={}/spill-{n:06}.parquet", self.run_id, key.0, key.1.format("%Y-%m-%d"));
        let batches = std::mem::take(&mut p.batches);
        let file = writer::write_staging(&self.lake, p.def, &rel, &batches).await?;
        self.in_memory = self.in_memory.saturating_sub(p.bytes);
        p.bytes = 0;
        p.spilled.push(file);
        self.spills += 1;
        tracing::debug!(table = key.0, dt = %key.1, file = %rel, "spilled staged rows");
        Ok(())
    }

    /// Drop everything staged for `def` (a source that turned out to be unavailable half-way):
    /// its partitions are not part of this commit. Spilled files go with the staging folder.
    pub fn discard(&mut self, def: &TableDef) {
        let keys: Vec<_> = self.pending.keys().filter(|(t, _)| *t == def.name).copied().collect();
        for k in keys {
            if let Some(p) = self.pending.remove(&k) {
                self.in_memory = self.in_memory.saturating_sub(p.bytes);
            }
        }
    }

    /// Publish snapshot partition `dt` of `def` with this commit even if no rows are staged for
    /// it, so "nothing there that day" is a recorded fact rather than a missing day.
    pub fn declare_snapshot(&mut self, def: &'static TableDef, dt: NaiveDate) {
        debug_assert_eq!(def.partitioning, Partitioning::Snapshot, "{} is not a snapshot table", def.name);
        self.stage(def, dt, None);
    }

    /// Publish partition `dt` of `def` (of any partitioning) with this commit even if no rows
    /// are staged for it. For a replace table this empties a day that was collected empty.
    pub fn declare_partition(&mut self, def: &'static TableDef, dt: NaiveDate) {
        self.stage(def, dt, None);
    }

    /// Stage rows of `def`. Snapshot tables go to partition `snapshot_dt`; event tables are split
    /// by the UTC date of their event column.
    pub fn write(&mut self, def: &'static TableDef, snapshot_dt: NaiveDate, batch: RecordBatch) -> Result<()> {
        check_schema(def, &batch)?;
        match def.partitioning {
            Partitioning::Snapshot => self.stage(def, snapshot_dt, Some(batch)),
            Partitioning::EventDate { column } => {
                let col = batch.column_by_name(column).expect("schema checked");
                let dates = cast(col, &DataType::Date32)
                    .map_err(|e| LakeError::arrow(format!("deriving dt from `{column}`"), e))?;
                let dates = dates.as_primitive::<Date32Type>();
                if dates.null_count() > 0 {
                    return Err(LakeError::MissingPartitionValue {
                        table: def.name.into(),
                        dt: snapshot_dt,
                        column: column.into(),
                    });
                }
                let distinct: BTreeSet<i32> = dates.values().iter().copied().collect();
                for d in distinct {
                    let dt = crate::catalog::from_date32(d).ok_or_else(|| LakeError::MissingPartitionValue {
                        table: def.name.into(),
                        dt: snapshot_dt,
                        column: column.into(),
                    })?;
                    let mask = datafusion::arrow::compute::kernels::cmp::eq(
                        dates,
                        &datafusion::arrow::array::Date32Array::new_scalar(d),
                    )
                    .map_err(|e| LakeError::arrow("splitting rows by date", e))?;
                    let part = filter_record_batch(&batch, &mask)
                        .map_err(|e| LakeError::arrow("splitting rows by date", e))?;
                    self.stage(def, dt, Some(part));
                }
            }
        }
        Ok(())
    }

    /// Record a watermark to publish with this commit (epoch seconds).
    pub fn set_watermark(&mut self, key: impl Into<String>, value: i64) {
        self.watermarks.insert(key.into(), value);
    }

    /// Arm the mass-change guard of the tables that declare one (`TableDef::mass_change_guard`):
    /// `commit` refuses, before writing any file, a snapshot partition whose row count is more
    /// than `max_drop` (a share, 0..=1) below the previous snapshot's. `None` disarms it.
    pub fn guard_snapshots(&mut self, max_drop: Option<f64>) {
        self.max_snapshot_drop = max_drop;
    }

    /// Rows staged per table, before merge/de-duplication (what `--dry-run` reports).
    pub fn staged_rows(&self) -> BTreeMap<&'static str, u64> {
        let mut m = BTreeMap::new();
        for ((table, _), p) in &self.pending {
            *m.entry(*table).or_default() += p.rows();
        }
        m
    }

    /// Write every staged partition and publish them, with the watermarks, as one new version.
    pub async fn commit(self) -> Result<CommitSummary> {
        let Transaction { lake, run_id, base, pending, watermarks, max_snapshot_drop, .. } = self;
        // Guarded partitions first, so a refused snapshot stops the commit before any file is
        // written (the sort is stable: otherwise table and date order).
        let mut pending: Vec<_> = pending.into_iter().collect();
        pending.sort_by_key(|(_, p)| !p.def.mass_change_guard);
        let mut staged: Vec<(PartitionWrite, PartitionState)> = Vec::new();
        for ((table, dt), p) in pending {
            let existing = match (p.def.write_mode, base.partition(table, dt)) {
                (WriteMode::Merge { .. }, Some(part)) => part.files.as_slice(),
                _ => &[],
            };
            if p.def.mass_change_guard
                && let Some(max_drop) = max_snapshot_drop
            {
                // Guarded tables replace their partition, so the staged rows are the result.
                debug_assert!(matches!(p.def.write_mode, WriteMode::Replace));
                check_snapshot_drop(&base, p.def, dt, p.rows(), max_drop)?;
            }
            let rows = writer::prepare_stream(&lake, p.def, existing, &p.spilled, p.batches).await?;
            let files = writer::write_stream(&lake, p.def, dt, &run_id, rows).await?;
            let n_rows = files.iter().map(|f| f.rows).sum();
            let write = PartitionWrite {
                table: table.to_string(),
                dt,
                rows: n_rows,
                files: files.len(),
                bytes: files.iter().map(|f| f.bytes).sum(),
            };
            let state = PartitionState { files, rows: n_rows, run_id: run_id.clone(), committed_at: Utc::now() };
            staged.push((write, state));
        }
        failpoint("after_data_write");

        let mut latest = base.clone();
        let published = loop {
            let mut next = latest.clone();
            next.version = latest.version + 1;
            next.committed_at = Some(Utc::now());
            next.run_id = Some(run_id.clone());
            for (w, state) in &staged {
                let def = crate::catalog::table(&w.table)?;
                let t = next.tables.entry(w.table.clone()).or_default();
                t.schema_version = def.version;
                t.partitions.insert(w.dt, state.clone());
            }
            next.watermarks.extend(watermarks.iter().map(|(k, v)| (k.clone(), *v)));
            if lake.try_publish(&next).await? {
                break next;
            }
            // Someone else published first. Safe to rebase only if they touched none of our
            // partitions: our merges were computed from `base`.
            latest = lake.snapshot().await?;
            for (w, _) in &staged {
                if latest.partition(&w.table, w.dt) != base.partition(&w.table, w.dt) {
                    return Err(LakeError::Conflict {
                        version: latest.version,
                        what: format!("{} dt={}", w.table, w.dt),
                    });
                }
            }
        };
        failpoint("after_commit");

        cleanup(&lake, &latest, &published, &staged).await;
        remove_staging(&lake).await;
        lake.prune_log(published.version).await;
        Ok(CommitSummary { version: published.version, partitions: staged.into_iter().map(|(w, _)| w).collect() })
    }
}

/// Remove every staging file: this run's are merged into the published version, and any others
/// belong to runs that died (the lease guarantees no other writer is staging now). Best effort.
async fn remove_staging(lake: &Lake) {
    let dir = lake.path(STAGING_DIR);
    let objects = match lake.store().list(Some(&dir)).try_collect::<Vec<_>>().await {
        Ok(o) => o,
        Err(object_store::Error::NotFound { .. }) => return,
        Err(e) => {
            tracing::warn!(dir = %dir, error = %e, "could not list staging files for cleanup");
            return;
        }
    };
    for o in objects {
        match lake.store().delete(&o.location).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => tracing::warn!(file = %o.location, error = %e, "could not remove staging file"),
        }
    }
}

/// The mass-change guard. The reference is the newest committed snapshot dated before `dt`
/// (yesterday's for a daily run), or, when there is none, the partition being replaced.
fn check_snapshot_drop(base: &Snapshot, def: &TableDef, dt: NaiveDate, rows: u64, max_drop: f64) -> Result<()> {
    let Some(table) = base.table(def.name) else { return Ok(()) };
    let previous = table.partitions.range(..dt).next_back().or_else(|| table.partitions.get_key_value(&dt));
    let Some((&previous_dt, previous)) = previous else { return Ok(()) };
    let previous_rows = previous.rows;
    // Compared in rows rather than as a ratio, so an empty previous snapshot never divides by 0.
    if rows < previous_rows && (previous_rows - rows) as f64 > max_drop * previous_rows as f64 {
        return Err(LakeError::SnapshotDrop {
            table: def.name.to_string(),
            dt,
            rows,
            previous_dt,
            previous_rows,
            max_drop,
        });
    }
    Ok(())
}

/// Remove files of the touched partitions that the published version does not list: the ones it
/// superseded and any left by a run that died before publishing. Best effort; a leftover is
/// invisible to lastseen and removed by a later commit.
async fn cleanup(lake: &Lake, previous: &Snapshot, published: &Snapshot, staged: &[(PartitionWrite, PartitionState)]) {
    for (w, _) in staged {
        let keep: BTreeSet<&str> = published
            .partition(&w.table, w.dt)
            .map(|p| p.files.iter().map(|f| f.path.as_str()).collect())
            .unwrap_or_default();
        let mut doomed: BTreeSet<String> = previous
            .partition(&w.table, w.dt)
            .map(|p| p.files.iter().map(|f| f.path.clone()).filter(|f| !keep.contains(f.as_str())).collect())
            .unwrap_or_default();
        let dir = lake.path(&Lake::partition_dir(&w.table, w.dt));
        match lake.store().list(Some(&dir)).try_collect::<Vec<_>>().await {
            Ok(objects) => {
                for o in objects {
                    if let Some(rel) = lake.relative(&o.location)
                        && rel.ends_with(".parquet")
                        && !keep.contains(rel.as_str())
                    {
                        doomed.insert(rel);
                    }
                }
            }
            Err(e) => tracing::warn!(dir = %dir, error = %e, "could not list partition for cleanup"),
        }
        for rel in doomed {
            let path = lake.path(&rel);
            match lake.store().delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {
                    tracing::debug!(file = %rel, "removed unlisted file")
                }
                Err(e) => tracing::warn!(file = %rel, error = %e, "could not remove superseded file"),
            }
        }
    }
}
