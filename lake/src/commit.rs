//! The commit protocol: stage rows per partition, write their files, publish one new log version
//! that makes them the partitions' content, then remove what they superseded.
//!
//! Staged rows stay in memory until a partition or the whole transaction exceeds its memory
//! budget; then they are spilled, unsorted, to Parquet under `_lastseen/staging/<run-id>/`, so a
//! long history never has to fit in memory. At commit each partition's in-memory and spilled
//! rows (plus, for merge tables, its committed files) go through one streaming DataFusion plan
//! into the partition's new files; the staging folder is removed once the version is published.
//!
//! Crash safety comes from the order: an in-flight marker naming the partitions the commit will
//! write (`_lastseen/inflight/<run>-<txn>.json`), then the files, then the single create-only
//! put of the log version. A crash before the put leaves the previous version as the lake (the
//! new files are unlisted; `vacuum` removes them through the marker once the run is over and the
//! keep window has passed); a crash after it leaves the new version. Nothing is deleted at
//! commit: the files a version stops listing are recorded in it as superseded and stay on
//! storage for `lake.keep_superseded`, so a reader still scanning an older version keeps working.
//! Only the run's own staging folder is removed after the publish.
//!
//! Fencing: before the publish the commit checks that its run still holds the newest lease
//! generation, renewed within its TTL, and that the version it builds on was not published by a
//! newer generation; otherwise it fails with `LeaseLost` and publishes nothing.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{NaiveDate, Utc};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::{cast, filter_record_batch};
use datafusion::arrow::datatypes::{DataType, Date32Type};
use datafusion::arrow::record_batch::RecordBatch;
use futures::TryStreamExt;
use object_store::ObjectStoreExt;

use crate::catalog::{Partitioning, TableDef, WriteMode};
use crate::lock::LeaseState;
use crate::log::{DataFile, PartitionState, Snapshot};
use crate::{Lake, LakeError, LockGuard, Result, writer};

/// Where spilled rows wait for the commit: `_lastseen/staging/<run-id>/…`.
pub(crate) const STAGING_DIR: &str = "_lastseen/staging";
/// In-flight markers: which partitions a commit is writing files into, so the files of a run
/// that died before publishing can be found without deleting "whatever is unlisted".
pub(crate) const INFLIGHT_DIR: &str = "_lastseen/inflight";
/// Publishing races lost in a row before a commit gives up (the lease makes even one unlikely).
const MAX_PUBLISH_ATTEMPTS: u32 = 6;

/// What `_lastseen/inflight/<run>-<txn>.json` records.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct InflightMarker {
    pub run_id: String,
    /// Data files of this commit are named `part-<file_prefix>-<n>.parquet`.
    pub file_prefix: String,
    pub lease_generation: u64,
    pub started_at: chrono::DateTime<Utc>,
    /// Partition folders (relative to the lake root) the commit writes into.
    pub partitions: Vec<String>,
}

/// The default in-memory budget of a transaction's staged rows (Arrow bytes).
pub const DEFAULT_STAGE_MEMORY: usize = 64 * 1024 * 1024;

/// The memory the commit's sorts get before they spill: twice the staging budget, at least
/// this much. It is what keeps a daily run of a 500,000-user org under 512 MiB: with a 512 MiB
/// pool a re-run peaked at 841 MiB, with 128 MiB at 347 MiB (release, bench/RESULTS.md).
const MIN_COMMIT_PLAN_MEMORY: usize = 128 * 1024 * 1024;
/// The pool a table's write is retried with when the small one was exhausted. DataFusion's
/// plan sorts each input (rows in memory, staging files, committed files) on its own and merges
/// the sorted streams; the merge is not spillable, and with many spilled runs it can find the
/// pool taken by the sorts (a first run of 100,000 users with 1,200 days of access logs failed so
/// at 64 and at 128 MiB, release build). Such writes are rare and large (first runs, backfills),
/// and the retry writes the same files under the same names, so nothing is left behind.
const LARGE_COMMIT_PLAN_MEMORY: usize = 512 * 1024 * 1024;

/// Rows staged for one run, committed together as one log version.
#[derive(Debug)]
pub struct Transaction {
    lake: Lake,
    run_id: String,
    lease: std::sync::Arc<LeaseState>,
    base: Snapshot,
    /// The number the next version must take (above a damaged newest version, if any).
    next_version: u64,
    pending: BTreeMap<(&'static str, NaiveDate), Pending>,
    watermarks: BTreeMap<String, i64>,
    /// The mass-change guard's allowed drop (0..=1) for tables that have one; `None` = off.
    max_snapshot_drop: Option<f64>,
    /// Snapshot partitions whose source skipped some workspaces for a standing condition: the
    /// previous snapshot's rows of only those workspaces are carried into the new one.
    carry_forward: BTreeMap<(&'static str, NaiveDate), (&'static TableDef, BTreeSet<String>)>,
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

/// Test hook for crash recovery against the real binary. `LASTSEEN_TEST_FAILPOINT=<name>`
/// aborts the process at that point (no destructor, flush or release runs, as with a crash);
/// `<name>:pause` prints the same line and then stops the process in place, so a test can
/// deliver a real SIGKILL at exactly that point. Names: `mid_data_write` (a multi-partition write
/// after its first partition's files, before the others'), `after_data_write`, `after_log_put`
/// (alias `after_commit`), `mid_cleanup`, `mid_vacuum`, `mid_delta`, the pipeline's
/// `mid_collection:<source>` (after that source's first rows are staged), and the deprovisioning
/// journal's `deprovision_after_intent`, `deprovision_after_call`. Compiled into every build: the
/// tests drive the shipped binary, and the check is one environment lookup per point.
pub fn failpoint(name: &str) {
    let Ok(v) = std::env::var("LASTSEEN_TEST_FAILPOINT") else { return };
    let (point, pause) = match v.strip_suffix(":pause") {
        Some(p) => (p, true),
        None => (v.as_str(), false),
    };
    let hit = point == name || (point == "after_commit" && name == "after_log_put");
    if !hit {
        return;
    }
    eprintln!("lastseen: failpoint `{name}` reached");
    if pause {
        // Block this thread (and with it the commit) until the test kills the process.
        loop {
            std::thread::park();
        }
    }
    std::process::abort();
}

impl Lake {
    /// Start a transaction. Holding the lease is required: the commit fences on it (no
    /// publish once another run has taken the lease over).
    pub async fn begin(&self, lease: &LockGuard) -> Result<Transaction> {
        let (base, next_version) = self.head().await?;
        Ok(Transaction {
            lake: self.clone(),
            run_id: lease.run_id().to_string(),
            lease: lease.state(),
            base,
            next_version,
            pending: BTreeMap::new(),
            watermarks: BTreeMap::new(),
            max_snapshot_drop: None,
            carry_forward: BTreeMap::new(),
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

    /// The rows staged so far for `def`, readable by a query before the commit: every staged
    /// batch of the table is spilled to its staging file first, so reading them back does not
    /// hold them in memory. The derivation reads the `activity_daily` days it re-derived this way
    /// while it re-folds `last_seen` over them. The files stay part of the commit as before.
    pub async fn staged_table(&mut self, def: &'static TableDef) -> Result<crate::LakeTable> {
        let keys: Vec<_> = self.pending.keys().filter(|(t, _)| *t == def.name).copied().collect();
        let mut files = Vec::new();
        for key in keys {
            self.spill(key).await?;
            if let Some(p) = self.pending.get(&key) {
                files.extend(p.spilled.iter().map(|f| (key.1, f.clone())));
            }
        }
        Ok(crate::LakeTable::from_files(&self.lake, def, files))
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

    /// The source of snapshot `def` skipped `workspaces` today for a standing condition (issue
    /// 12): at commit, the rows of the previous snapshot (the guard's reference) that belong
    /// only to those workspaces (`workspace_ids`, or `team_id` where that is empty) and whose
    /// key was not collected today are carried into partition `dt` unchanged, `collected_at`
    /// included. So an account of a skipped workspace neither vanishes from the day's snapshot
    /// as if removed nor trips the mass-change guard, while a real shrink of a collected
    /// workspace still does. The table must have `team_id` and `workspace_ids` columns.
    pub fn carry_forward_skipped(
        &mut self,
        def: &'static TableDef,
        dt: NaiveDate,
        workspaces: impl IntoIterator<Item = String>,
    ) {
        debug_assert_eq!(def.partitioning, Partitioning::Snapshot, "{} is not a snapshot table", def.name);
        let set: BTreeSet<String> = workspaces.into_iter().collect();
        if !set.is_empty() {
            self.carry_forward.entry((def.name, dt)).or_insert_with(|| (def, BTreeSet::new())).1.extend(set);
        }
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
        let Transaction {
            lake,
            run_id,
            lease,
            base,
            next_version,
            mut pending,
            watermarks,
            max_snapshot_drop,
            carry_forward,
            memory_budget,
            ..
        } = self;
        // Carried rows count for the guard like collected ones: the comparison is like with like.
        for ((table, dt), (def, skipped)) in carry_forward {
            let Some(p) = pending.get_mut(&(table, dt)) else { continue };
            let Some((_, previous)) = reference_snapshot(&base, def, dt) else { continue };
            let carried = carried_rows(&lake, def, &previous.files, p, &skipped).await?;
            let n = crate::total_rows(&carried);
            if n > 0 {
                tracing::info!(table, %dt, rows = n, workspaces = ?skipped, "carried rows of skipped workspaces forward");
            }
            p.bytes += carried.iter().map(RecordBatch::get_array_memory_size).sum::<usize>();
            p.batches.extend(carried);
        }
        // Guarded partitions first, so a refused snapshot stops the commit before any file is
        // written (the sort is stable: otherwise table and date order).
        let mut pending: Vec<_> = pending.into_iter().collect();
        pending.sort_by_key(|(_, p)| !p.def.mass_change_guard);
        if let Some(max_drop) = max_snapshot_drop {
            for ((_, dt), p) in &pending {
                if p.def.mass_change_guard {
                    // Guarded tables replace their partition, so the staged rows are the result.
                    debug_assert!(matches!(p.def.write_mode, WriteMode::Replace));
                    check_snapshot_drop(&base, p.def, *dt, p.rows(), max_drop)?;
                }
            }
        }
        // A run that already lost the lease writes nothing.
        lake.check_lease(&lease).await?;
        let txn = uuid::Uuid::new_v4().simple().to_string();
        let file_prefix = format!("{run_id}-{}", &txn[..8]);
        if !pending.is_empty() {
            write_marker(&lake, &run_id, &file_prefix, &lease, &pending).await?;
        }
        // One plan per table writes all of its partitions (a first run's thousand days of access
        // logs, a backfill, a re-derivation), in the order the partitions are listed here.
        let keys: Vec<(&'static str, NaiveDate)> = pending.iter().map(|(k, _)| *k).collect();
        let mut by_table: Vec<(&'static TableDef, Vec<writer::PartitionInput>)> = Vec::new();
        // A table's commit plan should have one input: DataFusion sorts each input of a union on
        // its own and merges the sorted streams, and that merge cannot spill (it ran out of a
        // 128 MiB pool on a daily run's access logs). A table with rows in files already (spilled
        // staging, or the committed rows a merge table re-reads) gets its in-memory rows written
        // to a staging file too, so all of them are read as one table by one spilling sort.
        let with_files: std::collections::BTreeSet<&'static str> = pending
            .iter()
            .filter(|((table, dt), p)| {
                !p.spilled.is_empty()
                    || (matches!(p.def.write_mode, WriteMode::Merge { .. })
                        && base.partition(table, *dt).is_some_and(|part| !part.files.is_empty()))
            })
            .map(|((table, _), _)| *table)
            .collect();
        for ((table, dt), mut p) in pending {
            if with_files.contains(table) && !p.batches.is_empty() {
                let rel =
                    format!("{STAGING_DIR}/{run_id}/{table}/dt={}/commit-{file_prefix}.parquet", dt.format("%Y-%m-%d"));
                let file = writer::write_staging(&lake, p.def, &rel, &p.batches).await?;
                p.batches.clear();
                p.spilled.push(file);
            }
            let existing = match (p.def.write_mode, base.partition(table, dt)) {
                (WriteMode::Merge { .. }, Some(part)) => part.files.clone(),
                _ => Vec::new(),
            };
            let input = writer::PartitionInput { dt, batches: p.batches, staged: p.spilled, existing };
            match by_table.iter_mut().find(|(d, _)| d.name == table) {
                Some((_, parts)) => parts.push(input),
                None => by_table.push((p.def, vec![input])),
            }
        }
        let plan_memory = memory_budget.saturating_mul(2).max(MIN_COMMIT_PLAN_MEMORY);
        let mut written: BTreeMap<(&'static str, NaiveDate), Vec<DataFile>> = BTreeMap::new();
        for (def, parts) in by_table {
            let t0 = std::time::Instant::now();
            let n = parts.len();
            let files = match writer::write_partitions(&lake, def, parts.clone(), &file_prefix, plan_memory).await {
                Err(e) if e.is_resources_exhausted() && plan_memory < LARGE_COMMIT_PLAN_MEMORY => {
                    tracing::info!(
                        table = def.name,
                        pool_mib = plan_memory >> 20,
                        retry_mib = LARGE_COMMIT_PLAN_MEMORY >> 20,
                        "the commit's sort needed more memory than its pool; writing the table again with a larger one"
                    );
                    writer::write_partitions(&lake, def, parts, &file_prefix, LARGE_COMMIT_PLAN_MEMORY).await?
                }
                r => r?,
            };
            for (dt, files) in files {
                written.insert((def.name, dt), files);
            }
            tracing::debug!(
                table = def.name,
                partitions = n,
                ms = t0.elapsed().as_millis() as u64,
                peak_rss_mib = crate::peak_rss_mib(),
                "wrote partitions"
            );
        }
        let mut staged: Vec<(PartitionWrite, PartitionState)> = Vec::new();
        for (table, dt) in keys {
            let files = written.remove(&(table, dt)).unwrap_or_default();
            let n_rows = files.iter().map(|f| f.rows).sum();
            let write = PartitionWrite {
                table: table.to_string(),
                dt,
                rows: n_rows,
                files: files.len(),
                bytes: files.iter().map(|f| f.bytes).sum(),
            };
            let state =
                PartitionState { files, rows: n_rows, run_id: run_id.clone(), committed_at: Utc::now(), version: 0 };
            staged.push((write, state));
        }
        failpoint("after_data_write");

        let generation = lease.generation();
        let mut latest = base.clone();
        let mut number = next_version;
        let mut attempt = 0;
        let published = loop {
            attempt += 1;
            // Fencing: only the holder of the newest lease generation publishes, and never over
            // a version a newer generation published.
            lake.check_lease(&lease).await?;
            check_generation(&latest, &run_id, generation)?;
            let now = Utc::now();
            let mut next = latest.clone();
            next.version = number;
            next.committed_at = Some(now);
            next.run_id = Some(run_id.clone());
            next.lease_generation = Some(generation);
            for (w, state) in &staged {
                let def = crate::catalog::table(&w.table)?;
                let t = next.tables.entry(w.table.clone()).or_default();
                t.schema_version = def.version;
                // The version stamp, not `committed_at`, orders partitions (D18): it is the same
                // on every machine, whatever its clock.
                let state = PartitionState { version: number, ..state.clone() };
                if let Some(old) = t.partitions.insert(w.dt, state.clone()) {
                    let kept: BTreeSet<&str> = state.files.iter().map(|f| f.path.as_str()).collect();
                    let gone: Vec<DataFile> =
                        old.files.into_iter().filter(|f| !kept.contains(f.path.as_str())).collect();
                    next.supersede(&gone, now);
                }
            }
            next.watermarks.extend(watermarks.iter().map(|(k, v)| (k.clone(), *v)));
            if lake.try_publish(&next).await? {
                break next;
            }
            if attempt >= MAX_PUBLISH_ATTEMPTS {
                return Err(LakeError::Conflict {
                    version: number,
                    what: format!("the lake ({attempt} publish attempts in a row lost races)"),
                });
            }
            tokio::time::sleep(backoff(attempt)).await;
            // Someone else published first. Safe to rebase only if they touched none of our
            // partitions: our merges were computed from `base`.
            (latest, number) = lake.head().await?;
            for (w, _) in &staged {
                if latest.partition(&w.table, w.dt) != base.partition(&w.table, w.dt) {
                    return Err(LakeError::Conflict {
                        version: latest.version,
                        what: format!("{} dt={}", w.table, w.dt),
                    });
                }
            }
        };
        failpoint("after_log_put");

        remove_own_staging(&lake, &run_id).await;
        // The Delta view of every changed table follows lastseen's version; a failure there
        // leaves it behind until the next command that takes the lease catches it up.
        lake.sync_delta_logged(&lease).await;
        Ok(CommitSummary { version: published.version, partitions: staged.into_iter().map(|(w, _)| w).collect() })
    }
}

/// Fencing on the log: a run never publishes over a version that a newer lease generation
/// published (it lost the lease, even if its own record still looks current to it). Every
/// publish path (commit, retention, vacuum) calls this on the version it builds on.
pub(crate) fn check_generation(latest: &Snapshot, run_id: &str, generation: u64) -> Result<()> {
    if let Some(newer) = latest.lease_generation.filter(|g| *g > generation) {
        return Err(LakeError::LeaseLost {
            run_id: run_id.to_string(),
            generation,
            reason: format!("version {} was published under lease generation {newer}", latest.version),
        });
    }
    Ok(())
}

/// Jittered exponential backoff between publish attempts: 20 ms doubling, capped at 2 s, so
/// two writers that keep colliding drift apart.
fn backoff(attempt: u32) -> std::time::Duration {
    let cap = 20u64.saturating_mul(1 << attempt.min(7)).min(2_000);
    let jitter = (uuid::Uuid::new_v4().as_u128() % u128::from(cap)) as u64;
    std::time::Duration::from_millis(cap / 2 + jitter / 2)
}

/// Record, before any data file is written, which partitions this commit writes into and how
/// its files are named, so `vacuum` can find them if the run dies before publishing.
async fn write_marker(
    lake: &Lake,
    run_id: &str,
    file_prefix: &str,
    lease: &LeaseState,
    pending: &[((&'static str, NaiveDate), Pending)],
) -> Result<()> {
    let marker = InflightMarker {
        run_id: run_id.to_string(),
        file_prefix: file_prefix.to_string(),
        lease_generation: lease.generation(),
        started_at: Utc::now(),
        partitions: pending.iter().map(|((t, dt), _)| Lake::partition_dir(t, *dt)).collect(),
    };
    let rel = format!("{INFLIGHT_DIR}/{file_prefix}.json");
    let path = lake.path(&rel);
    let body = serde_json::to_vec_pretty(&marker)
        .map_err(|source| LakeError::Json { what: "in-flight marker".into(), source })?;
    lake.store().put(&path, body.into()).await.map_err(|e| LakeError::store(&path, e))?;
    Ok(())
}

/// Remove this run's staging folder: its rows are in the published version. Other runs'
/// folders are left alone (a live writer could own one); `vacuum` removes those of runs that
/// are over. Best effort.
async fn remove_own_staging(lake: &Lake, run_id: &str) {
    let dir = lake.path(&format!("{STAGING_DIR}/{run_id}"));
    let objects = match lake.store().list(Some(&dir)).try_collect::<Vec<_>>().await {
        Ok(o) => o,
        Err(object_store::Error::NotFound { .. }) => Vec::new(),
        Err(e) => {
            tracing::warn!(dir = %dir, error = %e, "could not list this run's staging files for cleanup");
            return;
        }
    };
    let mut first = true;
    for o in objects {
        match lake.store().delete(&o.location).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => tracing::warn!(file = %o.location, error = %e, "could not remove staging file"),
        }
        if std::mem::take(&mut first) {
            failpoint("mid_cleanup");
        }
    }
    if first {
        failpoint("mid_cleanup");
    }
}

/// The previous snapshot of `def` for partition `dt`: the newest committed one dated before
/// `dt` (yesterday's for a daily run), or, when there is none, the partition being replaced.
fn reference_snapshot<'a>(
    base: &'a Snapshot,
    def: &TableDef,
    dt: NaiveDate,
) -> Option<(NaiveDate, &'a PartitionState)> {
    let table = base.table(def.name)?;
    let previous = table.partitions.range(..dt).next_back().or_else(|| table.partitions.get_key_value(&dt));
    previous.map(|(d, p)| (*d, p))
}

/// The rows of `previous` that belong only to `skipped` workspaces and whose sort key (the
/// table's identity of a row) is not among the rows staged in `p`.
async fn carried_rows(
    lake: &Lake,
    def: &TableDef,
    previous: &[DataFile],
    p: &Pending,
    skipped: &BTreeSet<String>,
) -> Result<Vec<RecordBatch>> {
    use datafusion::datasource::MemTable;
    use datafusion::prelude::{ParquetReadOptions, SessionContext};
    let schema = def.schema();
    for col in ["team_id", "workspace_ids"] {
        if schema.index_of(col).is_err() {
            return Err(LakeError::Schema {
                table: def.name.into(),
                message: format!("rows of skipped workspaces cannot be carried forward without a `{col}` column"),
            });
        }
    }
    if previous.is_empty() {
        return Ok(Vec::new());
    }
    let what = format!("carrying rows of skipped workspaces forward in `{}`", def.name);
    let err = |e| LakeError::df(&what, e);
    let ctx = SessionContext::new();
    ctx.register_object_store(lake.store_url().as_ref(), std::sync::Arc::clone(lake.store()));
    let url = |f: &DataFile| format!("{}{}", lake.store_url().as_str(), lake.path(&f.path));
    let read = |files: &[DataFile]| {
        let urls: Vec<String> = files.iter().map(url).collect();
        let opts = ParquetReadOptions::default().schema(&schema);
        let ctx = &ctx;
        async move { ctx.read_parquet(urls, opts).await }
    };
    ctx.register_table("prev", read(previous).await.map_err(err)?.into_view()).map_err(err)?;
    let mem = MemTable::try_new(std::sync::Arc::clone(&schema), vec![p.batches.clone()]).map_err(err)?;
    ctx.register_table("cur_mem", std::sync::Arc::new(mem)).map_err(err)?;
    let mut cur = "SELECT * FROM cur_mem".to_string();
    if !p.spilled.is_empty() {
        ctx.register_table("cur_spilled", read(&p.spilled).await.map_err(err)?.into_view()).map_err(err)?;
        cur.push_str(" UNION ALL SELECT * FROM cur_spilled");
    }
    let quote = |s: &str| format!("'{}'", s.replace('\'', "''"));
    let list = skipped.iter().map(|s| quote(s)).collect::<Vec<_>>().join(", ");
    let key = def.sort_key.iter().map(|c| format!("c.\"{c}\" = prev.\"{c}\"")).collect::<Vec<_>>().join(" AND ");
    let sql = format!(
        "SELECT prev.* FROM prev \
         WHERE cardinality(array_except(\
             CASE WHEN prev.workspace_ids IS NULL OR cardinality(prev.workspace_ids) = 0 \
                  THEN make_array(prev.team_id) ELSE prev.workspace_ids END, \
             make_array({list}))) = 0 \
         AND NOT EXISTS (SELECT 1 FROM ({cur}) AS c WHERE {key})"
    );
    let df = ctx.sql(&sql).await.map_err(err)?;
    let batches = df.collect().await.map_err(err)?;
    // The plan's schema may differ in field metadata or nullability from the catalog's: rebuild.
    batches
        .into_iter()
        .filter(|b| b.num_rows() > 0)
        .map(|b| {
            RecordBatch::try_new(std::sync::Arc::clone(&schema), b.columns().to_vec())
                .map_err(|e| LakeError::arrow(&what, e))
        })
        .collect()
}

/// The mass-change guard, against [`reference_snapshot`].
fn check_snapshot_drop(base: &Snapshot, def: &TableDef, dt: NaiveDate, rows: u64, max_drop: f64) -> Result<()> {
    let Some((previous_dt, previous)) = reference_snapshot(base, def, dt) else { return Ok(()) };
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
