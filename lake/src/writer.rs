//! The Parquet side of a commit: shaping the rows of every partition a commit writes in a table
//! (merge, de-duplicate, sort) with one DataFusion plan, and encoding them into size-rolled,
//! zstd-compressed files per partition on the object store.

use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::parquet::arrow::async_writer::AsyncArrowWriter;
use datafusion::parquet::basic::{Compression, Encoding, ZstdLevel};
use datafusion::parquet::file::metadata::SortingColumn;
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
#[cfg(test)]
use datafusion::prelude::ParquetReadOptions;
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::StreamExt;
#[cfg(test)]
use futures::TryStreamExt;
use futures::future::BoxFuture;
use object_store::buffered::BufWriter;

use crate::catalog::{TableDef, WriteMode};
use crate::log::DataFile;
use crate::{Lake, LakeError, Result};

/// The Parquet writer's sink: a `BufWriter` that aborts its multipart upload when dropped
/// unfinished (a failed encode, a failed part, a cancelled run). S3 keeps the parts of an
/// upload that is neither completed nor aborted, and bills for them, until a bucket lifecycle
/// rule removes them.
pub(crate) struct AbortingWriter {
    inner: Option<BufWriter>,
    done: bool,
}

impl AbortingWriter {
    pub(crate) fn new(lake: &Lake, rel: &str) -> Self {
        AbortingWriter { inner: Some(BufWriter::new(Arc::clone(lake.store()), lake.path(rel))), done: false }
    }

    /// A writer of a staging file: through the lake's scratch store (no fsync; see `Lake`).
    fn staging(lake: &Lake, rel: &str) -> Self {
        AbortingWriter { inner: Some(BufWriter::new(Arc::clone(lake.scratch_store()), lake.path(rel))), done: false }
    }
}

impl datafusion::parquet::arrow::async_writer::AsyncFileWriter for AbortingWriter {
    fn write(&mut self, bs: bytes::Bytes) -> BoxFuture<'_, datafusion::parquet::errors::Result<()>> {
        Box::pin(async move {
            let w = self.inner.as_mut().expect("writer present until dropped");
            w.put(bs).await.map_err(|e| datafusion::parquet::errors::ParquetError::External(Box::new(e)))
        })
    }

    fn complete(&mut self) -> BoxFuture<'_, datafusion::parquet::errors::Result<()>> {
        Box::pin(async move {
            use tokio::io::AsyncWriteExt;
            let w = self.inner.as_mut().expect("writer present until dropped");
            w.shutdown().await.map_err(|e| datafusion::parquet::errors::ParquetError::External(Box::new(e)))?;
            self.done = true;
            Ok(())
        })
    }
}

impl Drop for AbortingWriter {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if let (Some(mut w), Ok(rt)) = (self.inner.take(), tokio::runtime::Handle::try_current()) {
            rt.spawn(async move {
                if let Err(e) = w.abort().await {
                    tracing::warn!(error = %e, "could not abort an unfinished multipart upload");
                }
            });
        }
    }
}

/// Start a new file once the current one reaches this size: big enough for few files per day,
/// small enough that one file never dominates a reader's memory.
const TARGET_FILE_BYTES: usize = 128 * 1024 * 1024;

fn quote(col: &str) -> String {
    format!("\"{}\"", col.replace('"', "\"\""))
}

/// `def`'s sort key as SQL `ORDER BY` items, each column's direction as
/// [`TableDef::sort_columns`] gives it.
fn order_by(def: &TableDef) -> String {
    def.sort_columns()
        .map(|(c, o)| {
            let dir = if o.descending { "DESC" } else { "ASC" };
            let nulls = if o.nulls_first { "FIRST" } else { "LAST" };
            format!("{} {dir} NULLS {nulls}", quote(c))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The partition's final rows: `new` plus, for merge tables, the committed `existing` files,
/// de-duplicated by the table's key where it has one, sorted by its sort key.
#[cfg(test)]
pub(crate) async fn prepare(
    lake: &Lake,
    def: &TableDef,
    existing: &[DataFile],
    new: Vec<RecordBatch>,
) -> Result<Vec<RecordBatch>> {
    let stream = prepare_stream(lake, def, existing, &[], new).await?;
    let context = format!("merging and sorting rows of `{}`", def.name);
    stream.try_collect().await.map_err(|e| LakeError::df(&context, e))
}

/// Like `prepare`, with rows already spilled to staging files, as a stream: one plan for one
/// partition. The commit writes every partition of a table with one plan
/// ([`write_partitions`]); this per-partition form stays as the reference the tests compare
/// that plan with.
#[cfg(test)]
pub(crate) async fn prepare_stream(
    lake: &Lake,
    def: &TableDef,
    existing: &[DataFile],
    staged: &[DataFile],
    mut new: Vec<RecordBatch>,
) -> Result<SendableRecordBatchStream> {
    let schema = def.schema();
    new.retain(|b| b.num_rows() > 0);
    if new.is_empty() && existing.is_empty() && staged.is_empty() {
        return Ok(Box::pin(RecordBatchStreamAdapter::new(schema, futures::stream::empty())));
    }
    let stage = |e| LakeError::df(format!("staging rows of `{}`", def.name), e);
    // One partition keeps the sort a single sorted stream; the data is one day of one table.
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(1));
    ctx.register_object_store(lake.store_url().as_ref(), Arc::clone(lake.store()));
    let mem = MemTable::try_new(Arc::clone(&schema), vec![new]).map_err(stage)?;
    ctx.register_table("new_rows", Arc::new(mem)).map_err(stage)?;
    let url = |f: &DataFile| format!("{}{}", lake.store_url().as_str(), lake.path(&f.path));
    let mut sources = vec!["SELECT * FROM new_rows".to_string()];
    for (name, files, what) in [("staged_rows", staged, "staged"), ("old_rows", existing, "committed")] {
        if files.is_empty() {
            continue;
        }
        let urls: Vec<String> = files.iter().map(url).collect();
        let df = ctx
            .read_parquet(urls, ParquetReadOptions::default().schema(&schema))
            .await
            .map_err(|e| LakeError::df(format!("reading {what} files of `{}`", def.name), e))?;
        ctx.register_table(name, df.into_view()).map_err(stage)?;
        sources.push(format!("SELECT * FROM {name}"));
    }
    let source = if sources.len() == 1 { "new_rows".to_string() } else { format!("({})", sources.join(" UNION ALL ")) };
    let cols = schema.fields().iter().map(|f| quote(f.name())).collect::<Vec<_>>().join(", ");
    let order = order_by(def);
    let sql = match def.write_mode {
        WriteMode::Replace => format!("SELECT {cols} FROM {source} AS t ORDER BY {order}"),
        WriteMode::Merge { key, latest_by } => {
            let key = key.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", ");
            // On a tie keep the first-collected copy, so re-reading identical rows changes nothing.
            let tiebreak = if schema.index_of("collected_at").is_ok() { ", \"collected_at\" ASC" } else { "" };
            format!(
                "SELECT {cols} FROM (SELECT {cols}, row_number() OVER (PARTITION BY {key} ORDER BY {} DESC{tiebreak}) AS __rn FROM {source} AS t) \
                 WHERE __rn = 1 ORDER BY {order}",
                quote(latest_by)
            )
        }
    };
    let context = format!("merging and sorting rows of `{}`", def.name);
    let df = ctx.sql(&sql).await.map_err(|e| LakeError::df(&context, e))?;
    df.execute_stream().await.map_err(|e| LakeError::df(&context, e))
}

/// One partition of a multi-partition write: its staged rows (in memory and spilled to staging
/// files) and, for a merge table, the files it has committed.
#[derive(Debug, Clone)]
pub(crate) struct PartitionInput {
    pub dt: NaiveDate,
    pub batches: Vec<RecordBatch>,
    pub staged: Vec<DataFile>,
    pub existing: Vec<DataFile>,
}

/// Files finishing (last row group encoded, uploaded, fsynced on a local disk) in the background
/// at once while the plan goes on to the next partitions: a commit of a thousand small day
/// partitions waits for the disk once per batch of files, not once per file.
const FINISHING_FILES: usize = 16;
/// …and at most this many bytes of encoded-but-unwritten row groups among them.
const FINISHING_BYTES: usize = 64 * 1024 * 1024;

/// Shape and encode every partition in `parts` (all of table `def`) with one streaming
/// DataFusion plan: the rows of all partitions, with their `dt`, are merged (merge tables:
/// newest row per key and day), sorted by `dt` then the table's sort key, and split into each
/// partition's files as they stream out. A partition's files, their names and the order of rows
/// in them are those of a plan over that partition alone. The plan's sorts share a pool of
/// `memory` bytes and spill to the OS temporary directory past it, so a first run's thousand
/// days do not have to fit in memory. Returns every partition of `parts`, with no files where
/// it has no rows.
pub(crate) async fn write_partitions(
    lake: &Lake,
    def: &'static TableDef,
    parts: Vec<PartitionInput>,
    file_prefix: &str,
    memory: usize,
) -> Result<std::collections::BTreeMap<NaiveDate, Vec<DataFile>>> {
    use datafusion::execution::memory_pool::FairSpillPool;
    use datafusion::execution::runtime_env::RuntimeEnvBuilder;
    let mut out: std::collections::BTreeMap<NaiveDate, Vec<DataFile>> =
        parts.iter().map(|p| (p.dt, Vec::new())).collect();
    let schema = def.schema();
    let table_schema = def.table_schema();
    let what = |w: &str| format!("{w} rows of `{}`", def.name);
    let mut new = Vec::new();
    let (mut staged, mut existing) = (Vec::new(), Vec::new());
    for p in parts {
        for b in p.batches.into_iter().filter(|b| b.num_rows() > 0) {
            let mut cols = b.columns().to_vec();
            let d = crate::catalog::date32(p.dt);
            cols.push(Arc::new(datafusion::arrow::array::Date32Array::from(vec![d; b.num_rows()])));
            let b = RecordBatch::try_new(Arc::clone(&table_schema), cols)
                .map_err(|e| LakeError::arrow(what("partitioning staged"), e))?;
            // The sort reserves each input batch's whole size in the pool at once: a batch larger
            // than the pool (a caller staging 500,000 rows as one batch) cannot be sorted even
            // with spilling. Copy big batches into pieces of the engine's batch size (a slice
            // would still account for the whole buffer).
            const PIECE: usize = 8192;
            if b.num_rows() <= PIECE {
                new.push(b);
            } else {
                for offset in (0..b.num_rows()).step_by(PIECE) {
                    let piece = b.slice(offset, PIECE.min(b.num_rows() - offset));
                    new.push(
                        datafusion::arrow::compute::concat_batches(&table_schema, [&piece])
                            .map_err(|e| LakeError::arrow(what("splitting staged"), e))?,
                    );
                }
            }
        }
        staged.extend(p.staged.into_iter().map(|f| (p.dt, f)));
        existing.extend(p.existing.into_iter().map(|f| (p.dt, f)));
    }
    if new.is_empty() && staged.is_empty() && existing.is_empty() {
        return Ok(out);
    }
    let stage = |e| LakeError::df(what("staging"), e);
    let runtime =
        RuntimeEnvBuilder::new().with_memory_pool(Arc::new(FairSpillPool::new(memory))).build_arc().map_err(stage)?;
    // One input partition: the plan is one sorted stream, split by `dt` as it comes.
    let ctx = SessionContext::new_with_config_rt(SessionConfig::new().with_target_partitions(1), runtime);
    ctx.register_object_store(lake.store_url().as_ref(), Arc::clone(lake.store()));
    let has_new = !new.is_empty();
    let mem = MemTable::try_new(Arc::clone(&table_schema), vec![new]).map_err(stage)?;
    ctx.register_table("new_rows", Arc::new(mem)).map_err(stage)?;
    // Staged and committed files are one table (one input, one spilling sort; see
    // `Transaction::commit`); in-memory rows are a second input only when the caller kept some.
    let mut sources = Vec::new();
    if has_new || (staged.is_empty() && existing.is_empty()) {
        sources.push("SELECT * FROM new_rows".to_string());
    }
    let files: Vec<(NaiveDate, DataFile)> = staged.into_iter().chain(existing).collect();
    if !files.is_empty() {
        ctx.register_table("file_rows", Arc::new(crate::LakeTable::from_files(lake, def, files))).map_err(stage)?;
        sources.push("SELECT * FROM file_rows".to_string());
    }
    let source = format!("({})", sources.join(" UNION ALL "));
    let dt = quote(crate::PARTITION_COLUMN);
    let cols = schema.fields().iter().map(|f| quote(f.name())).collect::<Vec<_>>().join(", ");
    let order = order_by(def);
    let n_cols = schema.fields().len();
    let context = format!("merging and sorting rows of `{}`", def.name);
    let run = |sql: String| {
        let ctx = &ctx;
        let context = &context;
        async move {
            let df = ctx.sql(&sql).await.map_err(|e| LakeError::df(context, e))?;
            df.execute_stream().await.map_err(|e| LakeError::df(context, e))
        }
    };
    let mut rows = match def.write_mode {
        WriteMode::Replace => run(format!("SELECT {cols}, {dt} FROM {source} AS t ORDER BY {dt}, {order}")).await?,
        WriteMode::Merge { key, latest_by } => {
            // The newest row per day and key: sorted by day, key and newest first, the first row
            // of each run of equal (day, key) is kept (`first_per_key`), then the survivors are
            // sorted into the table's order. Same rows as `row_number() OVER (PARTITION BY dt,
            // key ORDER BY latest_by DESC) = 1` (the per-partition plan the tests compare with),
            // without the window operator's per-key state: on a first run's million access-log
            // rows, each its own key, that window took 6.3 s of CPU against 0.23 s for its sort.
            // On a tie keep the first-collected copy, so re-reading identical rows changes nothing.
            let tiebreak = if schema.index_of("collected_at").is_ok() { ", \"collected_at\" ASC" } else { "" };
            let key_cols = key.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", ");
            let sorted = run(format!(
                "SELECT {cols}, {dt} FROM {source} AS t ORDER BY {dt}, {key_cols}, {} DESC{tiebreak}",
                quote(latest_by)
            ))
            .await?;
            let mut key_idx = vec![n_cols];
            for k in key {
                key_idx.push(schema.index_of(k).map_err(|e| LakeError::arrow(&context, e))?);
            }
            let unique = first_per_key(sorted, key_idx);
            let table = datafusion::catalog::streaming::StreamingTable::try_new(
                unique.schema(),
                vec![Arc::new(OnceStream::new(unique))],
            )
            .map_err(|e| LakeError::df(&context, e))?;
            ctx.register_table("merged_rows", Arc::new(table)).map_err(|e| LakeError::df(&context, e))?;
            run(format!("SELECT {cols}, {dt} FROM merged_rows ORDER BY {dt}, {order}")).await?
        }
    };

    let props = writer_properties(def, &schema);
    let file_cols: Vec<usize> = (0..n_cols).collect();
    let mut finishing: tokio::task::JoinSet<Result<(NaiveDate, usize, DataFile, usize)>> = tokio::task::JoinSet::new();
    let mut finishing_bytes = 0usize;
    let mut finished_partitions = 0usize;
    // (partition, file number within it, path, writer, rows)
    let mut current: Option<(NaiveDate, usize, String, AsyncArrowWriter<AbortingWriter>, u64)> = None;
    let mut started: std::collections::BTreeMap<NaiveDate, usize> = std::collections::BTreeMap::new();
    let join = |r: std::result::Result<Result<(NaiveDate, usize, DataFile, usize)>, tokio::task::JoinError>| {
        r.map_err(|e| LakeError::df(&context, datafusion::error::DataFusionError::External(Box::new(e))))?
    };
    let done = |out: &mut std::collections::BTreeMap<NaiveDate, Vec<DataFile>>,
                (dt, n, file, _): (NaiveDate, usize, DataFile, usize)| {
        let files = out.entry(dt).or_default();
        if files.len() <= n {
            files.resize_with(n + 1, || DataFile { path: String::new(), rows: 0, bytes: 0 });
        }
        files[n] = file;
    };
    while let Some(batch) = rows.next().await {
        let batch = batch.map_err(|e| LakeError::df(&context, e))?;
        if batch.num_rows() == 0 {
            continue;
        }
        let dates =
            batch.column(n_cols).as_any().downcast_ref::<datafusion::arrow::array::Date32Array>().ok_or_else(|| {
                LakeError::Schema { table: def.name.into(), message: "the commit plan lost the dt column".into() }
            })?;
        let file_batch = batch.project(&file_cols).map_err(|e| LakeError::arrow(&context, e))?;
        // Rows arrive sorted by dt: each run of one day goes to that day's current file.
        let mut start = 0;
        while start < dates.len() {
            let d = dates.value(start);
            let mut end = start + 1;
            while end < dates.len() && dates.value(end) == d {
                end += 1;
            }
            let day = crate::catalog::from_date32(d).ok_or_else(|| LakeError::MissingPartitionValue {
                table: def.name.into(),
                dt: NaiveDate::MIN,
                column: crate::PARTITION_COLUMN.into(),
            })?;
            if current.as_ref().is_some_and(|c| c.0 != day) {
                let (cdt, n, rel, w, nrows) = current.take().expect("checked");
                finishing_bytes += w.in_progress_size();
                let lake = lake.clone();
                finishing.spawn(async move {
                    let bytes = w.in_progress_size();
                    Ok((cdt, n, finish(&lake, rel, w, nrows).await?, bytes))
                });
                finished_partitions += 1;
                if finished_partitions == 1 {
                    // The first partition's files are on storage, the others not yet: a crash
                    // here must leave the lake at its previous version (tests kill it here).
                    while let Some(r) = finishing.join_next().await {
                        let r = join(r)?;
                        finishing_bytes = finishing_bytes.saturating_sub(r.3);
                        done(&mut out, r);
                    }
                    crate::failpoint("mid_data_write");
                }
                while finishing.len() >= FINISHING_FILES || finishing_bytes > FINISHING_BYTES {
                    let Some(r) = finishing.join_next().await else { break };
                    let r = join(r)?;
                    finishing_bytes = finishing_bytes.saturating_sub(r.3);
                    done(&mut out, r);
                }
            }
            if current.is_none() {
                let n = started.entry(day).or_default();
                let rel = format!("{}/part-{file_prefix}-{:05}.parquet", Lake::partition_dir(def.name, day), *n);
                let w = AbortingWriter::new(lake, &rel);
                let w = AsyncArrowWriter::try_new(w, Arc::clone(&schema), Some(props.clone()))
                    .map_err(|source| LakeError::Parquet { path: rel.clone(), source })?;
                current = Some((day, *n, rel, w, 0));
                *n += 1;
            }
            let (_, _, rel, w, nrows) = current.as_mut().expect("set above");
            let slice = file_batch.slice(start, end - start);
            w.write(&slice).await.map_err(|source| LakeError::Parquet { path: rel.clone(), source })?;
            *nrows += slice.num_rows() as u64;
            if w.bytes_written() + w.in_progress_size() >= TARGET_FILE_BYTES {
                // A full file of a large partition: finish it here (it is big enough to keep
                // the disk busy on its own), and go on with the partition's next file.
                let (cdt, n, rel, w, nrows) = current.take().expect("set above");
                let file = finish(lake, rel, w, nrows).await?;
                done(&mut out, (cdt, n, file, 0));
            }
            start = end;
        }
    }
    if let Some((cdt, n, rel, w, nrows)) = current.take() {
        let file = finish(lake, rel, w, nrows).await?;
        done(&mut out, (cdt, n, file, 0));
    }
    while let Some(r) = finishing.join_next().await {
        let r = join(r)?;
        done(&mut out, r);
    }
    Ok(out)
}

/// The first row of each run of equal `key` columns in `input`, a stream sorted by them (so the
/// first row of a key is the one its sort put first). Equal means as `GROUP BY` and `PARTITION
/// BY` group: two NULLs are the same value. Runs may span batches: the previous batch's last key
/// is kept to compare the next batch's first row with.
pub(crate) fn first_per_key(input: SendableRecordBatchStream, key: Vec<usize>) -> SendableRecordBatchStream {
    use datafusion::arrow::array::{ArrayRef, BooleanArray, make_comparator};
    use datafusion::arrow::compute::{SortOptions, filter_record_batch, partition};
    use datafusion::error::DataFusionError;
    let schema = input.schema();
    let mut last: Option<Vec<ArrayRef>> = None;
    let rows = input.map(move |batch| {
        let batch = batch?;
        let n = batch.num_rows();
        if n == 0 {
            return Ok(batch);
        }
        let keys: Vec<ArrayRef> = key.iter().map(|&i| Arc::clone(batch.column(i))).collect();
        let continues_last = match &last {
            None => false,
            Some(prev) => {
                let mut same = true;
                for (p, k) in prev.iter().zip(&keys) {
                    let cmp = make_comparator(p.as_ref(), k.as_ref(), SortOptions::default())?;
                    if cmp(0, 0) != std::cmp::Ordering::Equal {
                        same = false;
                        break;
                    }
                }
                same
            }
        };
        let mut keep = vec![false; n];
        for r in partition(&keys)?.ranges() {
            keep[r.start] = true;
        }
        if continues_last {
            keep[0] = false;
        }
        last = Some(keys.iter().map(|k| k.slice(n - 1, 1)).collect());
        filter_record_batch(&batch, &BooleanArray::from(keep)).map_err(DataFusionError::from)
    });
    Box::pin(RecordBatchStreamAdapter::new(schema, rows))
}

/// A stream a DataFusion table serves once: the de-duplicated rows of a merge, sorted again by
/// the plan that reads them.
struct OnceStream {
    schema: SchemaRef,
    stream: std::sync::Mutex<Option<SendableRecordBatchStream>>,
}

impl OnceStream {
    fn new(stream: SendableRecordBatchStream) -> Self {
        OnceStream { schema: stream.schema(), stream: std::sync::Mutex::new(Some(stream)) }
    }
}

impl std::fmt::Debug for OnceStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnceStream").finish_non_exhaustive()
    }
}

impl datafusion::physical_plan::streaming::PartitionStream for OnceStream {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<datafusion::execution::TaskContext>) -> SendableRecordBatchStream {
        let taken = self.stream.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        taken.unwrap_or_else(|| {
            let e = datafusion::error::DataFusionError::Internal("a commit's merged rows were read twice".into());
            Box::pin(RecordBatchStreamAdapter::new(
                Arc::clone(&self.schema),
                futures::stream::once(async move { Err(e) }),
            ))
        })
    }
}

/// Rows per Parquet row group at most. A row group is what one thread of a scan decodes and
/// the unit row-group statistics prune, so a 500,000-account snapshot in one row group (the
/// writer's default allows a million rows) was decoded by one core however many there were:
/// `lastseen report review` spent 0.4 s of a single thread there (bench/RESULTS.md, "reports
/// again, faster"). 128 Ki rows is close to DuckDB's 122,880; the price is size: that snapshot's
/// `account_report` file grew from 16.8 to 19.7 MB (each group starts its dictionaries afresh).
pub(crate) const ROW_GROUP_ROWS: usize = 128 * 1024;

fn writer_properties(def: &TableDef, schema: &SchemaRef) -> WriterProperties {
    let mut b = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).expect("zstd level 3 is valid")))
        .set_dictionary_enabled(true)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_created_by(format!("lastseen {}", env!("CARGO_PKG_VERSION")));
    let sorting: Vec<SortingColumn> = def
        .sort_columns()
        .filter_map(|(k, o)| schema.index_of(k).ok().map(|i| (i, o)))
        .map(|(i, o)| SortingColumn { column_idx: i as i32, descending: o.descending, nulls_first: o.nulls_first })
        .collect();
    b = b.set_sorting_columns(Some(sorting));
    for f in schema.fields() {
        if matches!(f.data_type(), DataType::Timestamp(_, _)) {
            // High-cardinality timestamps compress better delta-encoded than dictionary-encoded.
            let col = datafusion::parquet::schema::types::ColumnPath::from(f.name().as_str());
            b = b
                .set_column_dictionary_enabled(col.clone(), false)
                .set_column_encoding(col, Encoding::DELTA_BINARY_PACKED);
        }
    }
    b.build()
}

/// Encode `batches` into new files of partition `dt`. Nothing is visible until a commit lists them.
#[cfg(test)]
pub(crate) async fn write_files(
    lake: &Lake,
    def: &TableDef,
    dt: NaiveDate,
    run_id: &str,
    batches: &[RecordBatch],
) -> Result<Vec<DataFile>> {
    // Owned batches: the stream must be 'static.
    let owned: Vec<RecordBatch> = batches.to_vec();
    let stream = futures::stream::iter(owned.into_iter().map(Ok));
    let stream = Box::pin(RecordBatchStreamAdapter::new(def.schema(), stream));
    write_stream(lake, def, dt, run_id, stream).await
}

/// Spill `batches` (unsorted) into one staging file at `rel`; only a commit reads it.
pub(crate) async fn write_staging(lake: &Lake, def: &TableDef, rel: &str, batches: &[RecordBatch]) -> Result<DataFile> {
    let schema = def.schema();
    // Staging files are read once, soon: fast compression, no statistics. LZ4 rather than zstd:
    // Parquet makes a codec per column chunk written or read, and its zstd codec creates a
    // compression and a decompression context each time. A first run of 1,200 days spills ~2,000
    // small staging files (one per day and table), and those contexts, for staging and lake files
    // together, were ~10% of its CPU; with LZ4 (no context) the run takes ~12% less CPU
    // (bench/RESULTS.md, issue 18, twelfth session).
    let props = WriterProperties::builder()
        .set_compression(Compression::LZ4_RAW)
        .set_statistics_enabled(EnabledStatistics::None)
        .build();
    let w = AbortingWriter::staging(lake, rel);
    let mut w = AsyncArrowWriter::try_new(w, Arc::clone(&schema), Some(props))
        .map_err(|source| LakeError::Parquet { path: rel.to_string(), source })?;
    let mut rows = 0u64;
    for b in batches {
        w.write(b).await.map_err(|source| LakeError::Parquet { path: rel.to_string(), source })?;
        rows += b.num_rows() as u64;
    }
    finish(lake, rel.to_string(), w, rows).await
}

/// Encode a stream of rows into new files of partition `dt`, rolled by size, named
/// `part-<file_prefix>-<n>.parquet` (the prefix is the run id plus a per-commit id, so no two
/// commits ever write the same name and no file a version lists is ever overwritten).
#[cfg(test)]
pub(crate) async fn write_stream(
    lake: &Lake,
    def: &TableDef,
    dt: NaiveDate,
    file_prefix: &str,
    mut batches: SendableRecordBatchStream,
) -> Result<Vec<DataFile>> {
    let schema = def.schema();
    let props = writer_properties(def, &schema);
    let dir = Lake::partition_dir(def.name, dt);
    let mut files = Vec::new();
    let mut current: Option<(String, AsyncArrowWriter<AbortingWriter>, u64)> = None;
    let context = format!("merging and sorting rows of `{}`", def.name);
    while let Some(batch) = batches.next().await {
        let batch = batch.map_err(|e| LakeError::df(&context, e))?;
        if batch.num_rows() == 0 {
            continue;
        }
        let batch = &batch;
        if current.is_none() {
            let rel = format!("{dir}/part-{file_prefix}-{:05}.parquet", files.len());
            let w = AbortingWriter::new(lake, &rel);
            let w = AsyncArrowWriter::try_new(w, Arc::clone(&schema), Some(props.clone()))
                .map_err(|source| LakeError::Parquet { path: rel.clone(), source })?;
            current = Some((rel, w, 0));
        }
        let (rel, w, rows) = current.as_mut().expect("set above");
        w.write(batch).await.map_err(|source| LakeError::Parquet { path: rel.clone(), source })?;
        *rows += batch.num_rows() as u64;
        if w.bytes_written() + w.in_progress_size() >= TARGET_FILE_BYTES {
            let (rel, w, rows) = current.take().expect("set above");
            files.push(finish(lake, rel, w, rows).await?);
        }
    }
    if let Some((rel, w, rows)) = current.take() {
        files.push(finish(lake, rel, w, rows).await?);
    }
    Ok(files)
}

async fn finish(lake: &Lake, rel: String, w: AsyncArrowWriter<AbortingWriter>, rows: u64) -> Result<DataFile> {
    w.close().await.map_err(|source| LakeError::Parquet { path: rel.clone(), source })?;
    let path = lake.path(&rel);
    let bytes = object_store::ObjectStoreExt::head(lake.store().as_ref(), &path)
        .await
        .map_err(|e| LakeError::store(&path, e))?
        .size;
    Ok(DataFile { path: rel, rows, bytes })
}
