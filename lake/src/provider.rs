//! DataFusion access to committed data: a `TableProvider` per lake table that scans exactly the
//! files the commit log lists (never a directory listing), with `dt` as a partition column that
//! filters prune before any file is opened.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::NaiveDate;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::Session;
use datafusion::common::stats::Precision;
use datafusion::common::{DFSchema, Statistics};
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::listing::helpers::{expr_applicable_for_cols, filter_partitioned_file};
use datafusion::datasource::physical_plan::parquet::ParquetAccessPlan;
use datafusion::datasource::physical_plan::parquet::metadata::DFParquetMetadata;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::table_schema::TableSchema;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{LexOrdering, PhysicalSortExpr};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::prelude::SessionContext;
use object_store::ObjectStore;

use crate::catalog::{PARTITION_COLUMN, TABLES, TableDef, date_scalar, partition_field};
use crate::log::{DataFile, Snapshot};
use crate::{Lake, LakeError, Result};

/// One lake table as of one committed version.
#[derive(Debug)]
pub struct LakeTable {
    def: &'static TableDef,
    /// The files' columns as the scan reads them (`def`'s schema, text as `Utf8View` for
    /// [`LakeTable::register_all_views`]), and the same plus `dt`: what queries see.
    file_schema: SchemaRef,
    table_schema: SchemaRef,
    files: Vec<(NaiveDate, DataFile)>,
    lake: Lake,
    /// The files are committed ones, each in its table's sort-key order (staging files are not
    /// sorted yet).
    committed: bool,
}

impl LakeTable {
    pub fn new(lake: &Lake, def: &'static TableDef, snapshot: &Snapshot) -> LakeTable {
        let files = snapshot
            .table(def.name)
            .map(|t| t.partitions.iter().flat_map(|(dt, p)| p.files.iter().map(move |f| (*dt, f.clone()))).collect())
            .unwrap_or_default();
        LakeTable::over(lake, def, files, true)
    }

    /// A table of `def`'s schema over exactly `files` (partition day, file), e.g. the staging
    /// files of a transaction that is not committed yet (see [`crate::Transaction::staged_table`]).
    pub fn from_files(lake: &Lake, def: &'static TableDef, files: Vec<(NaiveDate, DataFile)>) -> LakeTable {
        LakeTable::over(lake, def, files, false)
    }

    fn over(lake: &Lake, def: &'static TableDef, files: Vec<(NaiveDate, DataFile)>, committed: bool) -> LakeTable {
        LakeTable {
            def,
            file_schema: def.schema(),
            table_schema: def.table_schema(),
            files,
            lake: lake.clone(),
            committed,
        }
    }

    /// The same table, its text columns read as `Utf8View`.
    fn with_views(self) -> LakeTable {
        LakeTable { file_schema: view_schema(&self.file_schema), table_schema: view_schema(&self.table_schema), ..self }
    }

    /// The table's sort key as a physical ordering over its table schema.
    fn sort_order(&self) -> DfResult<LexOrdering> {
        let exprs = self.def.sort_columns().map(|(k, options)| {
            let col = Column::new_with_schema(k, &self.table_schema)?;
            Ok(PhysicalSortExpr::new(Arc::new(col), options))
        });
        let exprs = exprs.collect::<DfResult<Vec<_>>>()?;
        LexOrdering::new(exprs).ok_or_else(|| {
            datafusion::error::DataFusionError::Internal(format!("table {} has an empty sort key", self.def.name))
        })
    }

    /// Register the lake's object store and every catalog table (as of `snapshot`) in `ctx`.
    pub fn register_all(ctx: &SessionContext, lake: &Lake, snapshot: &Snapshot) -> Result<()> {
        Self::register(ctx, lake, snapshot, false)
    }

    /// As [`LakeTable::register_all`], text columns read as `Utf8View`.
    pub fn register_all_views(ctx: &SessionContext, lake: &Lake, snapshot: &Snapshot) -> Result<()> {
        Self::register(ctx, lake, snapshot, true)
    }

    fn register(ctx: &SessionContext, lake: &Lake, snapshot: &Snapshot, views: bool) -> Result<()> {
        ctx.register_object_store(lake.store_url().as_ref(), Arc::clone(lake.store()));
        for def in TABLES {
            let table = LakeTable::new(lake, def, snapshot);
            let table = if views { table.with_views() } else { table };
            ctx.register_table(def.name, Arc::new(table))
                .map_err(|e| LakeError::df(format!("registering table {}", def.name), e))?;
        }
        Ok(())
    }
}

#[async_trait]
impl TableProvider for LakeTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.table_schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let partition_filters: Vec<Expr> =
            filters.iter().filter(|f| expr_applicable_for_cols(&[PARTITION_COLUMN], f)).cloned().collect();
        let part_schema = DFSchema::try_from(Schema::new(vec![partition_field()]))?;
        let mut selected = Vec::new();
        let mut rows = 0u64;
        for (dt, f) in &self.files {
            let pf = PartitionedFile::new(self.lake.path(&f.path).to_string(), f.bytes)
                .with_partition_values(vec![date_scalar(*dt)]);
            if let Some(pf) = filter_partitioned_file(pf, &partition_filters, &part_schema)? {
                selected.push(pf);
                rows += f.rows;
            }
        }
        if selected.is_empty() {
            let schema = match projection {
                Some(p) => Arc::new(self.table_schema.project(p)?),
                None => Arc::clone(&self.table_schema),
            };
            return Ok(Arc::new(EmptyExec::new(schema)));
        }
        let target = state.config().target_partitions().max(1);
        let ordered = self.committed && self.def.ordered_scan;
        let groups: Vec<Vec<PartitionedFile>> = if ordered && selected.len() < target && splits_files(state, &selected)
        {
            // DataFusion would cut these files into byte ranges of equal size itself; cut them
            // in runs of whole row groups instead (see `split_by_row_groups`).
            split_by_row_groups(state, self.lake.store().as_ref(), selected, target)
                .await?
                .into_iter()
                .map(|f| vec![f])
                .collect()
        } else {
            let n_groups = target.min(selected.len());
            let mut groups: Vec<Vec<PartitionedFile>> = vec![Vec::new(); n_groups];
            for (i, f) in selected.into_iter().enumerate() {
                groups[i % n_groups].push(f);
            }
            groups
        };
        let table_schema = TableSchema::builder(Arc::clone(&self.file_schema))
            .with_table_partition_cols(vec![Arc::new(partition_field())])
            .build();
        let source = Arc::new(ParquetSource::new(table_schema));
        // The commit log knows every file's rows: the planner's estimates start from them, so a
        // join whose other side is small (review: the imported decisions against ~500,000
        // accounts) builds its hash table from that side on one partition instead of
        // hash-repartitioning every column of the large side. Inexact, never Exact: pushed-down
        // filters read fewer rows than the files hold, and an exact count would let DataFusion
        // answer `count(*)` from it.
        let mut statistics = Statistics::new_unknown(&self.table_schema);
        statistics.num_rows = Precision::Inexact(usize::try_from(rows).unwrap_or(usize::MAX));
        let mut config = FileScanConfigBuilder::new(self.lake.store_url().clone(), source)
            .with_file_groups(groups.into_iter().map(FileGroup::new).collect())
            .with_statistics(statistics)
            .with_projection_indices(projection.cloned())?
            .with_limit(limit);
        if self.committed && self.def.ordered_scan {
            // Each committed file is in sort-key order. DataFusion keeps the ordering only for
            // a partition reading one file (or byte ranges of one): several files in one
            // partition are not in order without per-file statistics, which it checks.
            config = config.with_output_ordering(vec![self.sort_order()?]);
        }
        let config = config.build();
        let format = ParquetFormat::default().with_options(state.table_options().parquet.clone());
        format.create_physical_plan(state, config).await
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> DfResult<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| {
                if expr_applicable_for_cols(&[PARTITION_COLUMN], f) {
                    TableProviderFilterPushDown::Exact
                } else {
                    TableProviderFilterPushDown::Inexact
                }
            })
            .collect())
    }
}

/// `schema` with its `Utf8` columns as `Utf8View`.
fn view_schema(schema: &SchemaRef) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Utf8 => f.as_ref().clone().with_data_type(DataType::Utf8View),
            _ => f.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// Whether DataFusion would split `files` into byte ranges (fewer files than partitions, as
/// many bytes as its `repartition_file_min_size`, repartitioning on).
fn splits_files(state: &dyn Session, files: &[PartitionedFile]) -> bool {
    let options = &state.config_options().optimizer;
    let bytes: u64 = files.iter().map(|f| f.object_meta.size).sum();
    options.repartition_file_scans && bytes >= options.repartition_file_min_size as u64
}

/// `files` as up to `target` parts, each a run of whole row groups of one file, the runs of a
/// file about equal in compressed bytes.
///
/// DataFusion splits a file into byte ranges of equal size and a range reads the row groups that
/// start in it. A file of four equal row groups, cut in two at its middle byte, gives the first
/// range three of them: the footer after the last group puts the middle just past the third
/// group's start. `account_report` at 500,000 accounts is such a file, and `report review` read
/// 390,000 of its rows on one core and 80,000 on the other (bench/RESULTS.md). Here the runs are
/// chosen from the file's footer, which goes through the session's file-metadata cache, so the
/// scan that opens the file next reads it from there, not again from storage.
///
/// A part is the whole file with a `ParquetAccessPlan` that scans only its run, not a byte range:
/// DataFusion re-cuts byte ranges into equal ones when the query does not need the scan's order,
/// but it leaves a part whose size is one partition's share as it is, and cutting a part again
/// (when there are fewer parts than partitions) still reads each of its row groups once. The
/// parts of a file are in its order, so each partition reads rows in sort-key order, and
/// `ConcatInOrderExec` can put them back together without a merge.
async fn split_by_row_groups(
    state: &dyn Session,
    store: &dyn ObjectStore,
    files: Vec<PartitionedFile>,
    target: usize,
) -> DfResult<Vec<PartitionedFile>> {
    let cache = state.runtime_env().cache_manager.get_file_metadata_cache();
    let mut sizes = Vec::with_capacity(files.len());
    for f in &files {
        let meta = DFParquetMetadata::new(store, &f.object_meta)
            .with_file_metadata_cache(Some(Arc::clone(&cache)))
            .fetch_metadata()
            .await?;
        sizes.push(
            meta.row_groups().iter().map(|rg| u64::try_from(rg.compressed_size()).unwrap_or(0)).collect::<Vec<u64>>(),
        );
    }
    let bytes: Vec<u64> = sizes.iter().map(|s| s.iter().sum::<u64>().max(1)).collect();
    let groups: Vec<usize> = sizes.iter().map(|s| s.len().max(1)).collect();
    let parts = apportion(&bytes, &groups, target);
    let mut out = Vec::new();
    for ((f, sizes), k) in files.into_iter().zip(sizes).zip(parts) {
        if k < 2 {
            out.push(f);
            continue;
        }
        let cuts = cut_points(&sizes, k);
        for (i, &first) in cuts.iter().enumerate() {
            let end = cuts.get(i + 1).copied().unwrap_or(sizes.len());
            let mut plan = ParquetAccessPlan::new_none(sizes.len());
            (first..end).for_each(|g| plan.scan(g));
            out.push(f.clone().with_extension(plan));
        }
    }
    Ok(out)
}

/// How many parts each file gets: one each, then one more at a time to the file with the most
/// bytes per part, until there are `target` parts or no file has a row group left to give.
fn apportion(bytes: &[u64], row_groups: &[usize], target: usize) -> Vec<usize> {
    let mut parts = vec![1usize; bytes.len()];
    for _ in bytes.len()..target {
        let next = (0..bytes.len())
            .filter(|&i| parts[i] < row_groups[i])
            .max_by(|&a, &b| (u128::from(bytes[a]) * parts[b] as u128).cmp(&(u128::from(bytes[b]) * parts[a] as u128)));
        match next {
            Some(i) => parts[i] += 1,
            None => break,
        }
    }
    parts
}

/// The first row group of each of `k` runs of consecutive row groups (`sizes` in bytes), the
/// runs as near equal in bytes as cuts between row groups allow. `k` is at most `sizes.len()`.
fn cut_points(sizes: &[u64], k: usize) -> Vec<usize> {
    let n = sizes.len();
    let k = k.clamp(1, n.max(1));
    let total: u128 = sizes.iter().map(|&s| u128::from(s)).sum();
    // before[b]: the bytes of the row groups before b.
    let mut before = vec![0u128; n + 1];
    for (i, &s) in sizes.iter().enumerate() {
        before[i + 1] = before[i] + u128::from(s);
    }
    let mut cuts = vec![0usize];
    for j in 1..k {
        let want = total * j as u128 / k as u128;
        // Leave room for a row group in each of the runs still to come.
        let lo = cuts[cuts.len() - 1] + 1;
        let hi = n - (k - j);
        let best = (lo..=hi).min_by_key(|&b| before[b].abs_diff(want)).unwrap_or(lo);
        cuts.push(best);
    }
    cuts
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Array, Int64Array, RecordBatch};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::datasource::listing::PartitionedFile;
    use datafusion::datasource::physical_plan::{
        FileGroup, FileGroupPartitioner, FileScanConfigBuilder, ParquetSource,
    };
    use datafusion::datasource::source::DataSourceExec;
    use datafusion::execution::object_store::ObjectStoreUrl;
    use datafusion::parquet::arrow::ArrowWriter;
    use datafusion::parquet::file::properties::WriterProperties;
    use datafusion::physical_plan::ExecutionPlan;
    use datafusion::prelude::SessionContext;
    use futures::TryStreamExt;
    use object_store::local::LocalFileSystem;
    use object_store::path::Path;
    use object_store::{ObjectStore, ObjectStoreExt};

    use super::{apportion, cut_points, split_by_row_groups};

    /// What DataFusion does to `parts` when the query does not need the scan's order: cut them
    /// into `target` byte ranges of equal size.
    fn stock_recut(parts: &[PartitionedFile], target: usize) -> Vec<FileGroup> {
        FileGroupPartitioner::new()
            .with_target_partitions(target)
            .with_repartition_file_min_size(0)
            .repartition_file_groups(&[FileGroup::new(parts.to_vec())])
            .unwrap()
    }

    #[test]
    fn cuts_fall_between_row_groups_at_about_equal_bytes() {
        assert_eq!(cut_points(&[10, 10, 10, 10], 2), vec![0, 2]);
        assert_eq!(cut_points(&[10, 10, 10, 10], 4), vec![0, 1, 2, 3]);
        assert_eq!(cut_points(&[10, 10, 10, 10], 9), vec![0, 1, 2, 3]);
        assert_eq!(cut_points(&[40, 10, 10, 10, 10], 2), vec![0, 1]);
        assert_eq!(cut_points(&[10, 10, 10, 10, 40], 2), vec![0, 4]);
        assert_eq!(cut_points(&[5], 3), vec![0]);
        // Every run keeps at least one row group, even where bytes would put two cuts together.
        assert_eq!(cut_points(&[100, 1, 1], 3), vec![0, 1, 2]);
    }

    #[test]
    fn parts_go_to_the_files_with_the_most_bytes_per_part() {
        assert_eq!(apportion(&[100], &[4], 2), vec![2]);
        assert_eq!(apportion(&[100, 10], &[4, 4], 4), vec![3, 1]);
        // A file cannot have more parts than row groups.
        assert_eq!(apportion(&[100, 10], &[1, 4], 4), vec![1, 3]);
        assert_eq!(apportion(&[100], &[1], 8), vec![1]);
        assert_eq!(apportion(&[1, 1, 1], &[4, 4, 4], 2), vec![1, 1, 1]);
    }

    /// `n` rows with ids 0.. in row groups of `group` rows, each row with a long text so that the
    /// row groups have about equal bytes.
    async fn file(dir: &std::path::Path, n: i64, group: usize) -> (Arc<dyn ObjectStore>, PartitionedFile) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("pad", DataType::Utf8, false),
        ]));
        let ids = Int64Array::from_iter_values(0..n);
        let pad = datafusion::arrow::array::StringArray::from_iter_values((0..n).map(|i| format!("{i:0>40}")));
        let batch = RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(ids), Arc::new(pad)]).unwrap();
        let props =
            WriterProperties::builder().set_max_row_group_row_count(Some(group)).set_dictionary_enabled(false).build();
        let out = std::fs::File::create(dir.join("t.parquet")).unwrap();
        let mut w = ArrowWriter::try_new(out, schema, Some(props)).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        let store: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new_with_prefix(dir).unwrap());
        let meta = store.head(&Path::from("t.parquet")).await.unwrap();
        (store, PartitionedFile::new("t.parquet", meta.size))
    }

    /// The ids each partition of a scan of `ranges` (one partition per range) reads, in order.
    async fn read(ctx: &SessionContext, ranges: &[PartitionedFile]) -> Vec<Vec<i64>> {
        read_groups(ctx, ranges.iter().map(|r| FileGroup::new(vec![r.clone()])).collect()).await
    }

    /// The ids each partition of a scan of `groups` reads, in order.
    async fn read_groups(ctx: &SessionContext, groups: Vec<FileGroup>) -> Vec<Vec<i64>> {
        let n = groups.len();
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
        let source = Arc::new(ParquetSource::new(schema));
        let config = FileScanConfigBuilder::new(ObjectStoreUrl::parse("file://").unwrap(), source)
            .with_file_groups(groups)
            // As a scan of a committed, sorted file: each partition reads its own files (no work
            // stealing between partitions, which would also hide how the rows are shared out).
            .with_preserve_order(true)
            .build();
        let plan = DataSourceExec::from_data_source(config);
        let mut out = Vec::new();
        for p in 0..n {
            let batches: Vec<RecordBatch> = plan.execute(p, ctx.task_ctx()).unwrap().try_collect().await.unwrap();
            out.push(
                batches
                    .iter()
                    .flat_map(|b| {
                        let a = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
                        (0..a.len()).map(|i| a.value(i)).collect::<Vec<_>>()
                    })
                    .collect(),
            );
        }
        out
    }

    #[tokio::test]
    async fn a_file_split_at_row_groups_gives_each_part_its_share_of_the_rows() {
        let dir = tempfile::tempdir().unwrap();
        // Four row groups: cut at the middle byte, the first range would start three of them.
        let (store, whole) = file(dir.path(), 4000, 1000).await;
        let ctx = SessionContext::new();
        ctx.register_object_store(&url::Url::parse("file://").unwrap(), Arc::clone(&store));
        let size = whole.object_meta.size;
        let middle = (size / 2) as i64;
        let halves = [whole.clone().with_range(0, middle), whole.clone().with_range(middle, size as i64)];
        let stock: Vec<usize> = read(&ctx, &halves).await.iter().map(Vec::len).collect();
        assert_eq!(stock, vec![3000, 1000], "the byte-middle split this fixes");

        for (target, expected) in
            [(2, vec![2000, 2000]), (3, vec![1000, 1000, 2000]), (4, vec![1000; 4]), (6, vec![1000; 4])]
        {
            let parts = split_by_row_groups(&ctx.state(), store.as_ref(), vec![whole.clone()], target).await.unwrap();
            let read_parts = read(&ctx, &parts).await;
            let mut counts: Vec<usize> = read_parts.iter().map(Vec::len).collect();
            counts.sort();
            assert_eq!(counts, expected, "{target} partitions");
            // Every row once, the parts in the file's order, and each in order.
            assert_eq!(read_parts.concat(), (0..4000).collect::<Vec<_>>(), "{target} partitions");
            // DataFusion re-cuts them into equal byte ranges where the query does not need the
            // scan's order: as many parts as partitions stay as they are; fewer are cut again,
            // and still every row is read once.
            let recut = read_groups(&ctx, stock_recut(&parts, target)).await;
            if parts.len() == target {
                assert_eq!(recut, read_parts, "{target} partitions, re-cut");
            }
            let mut all = recut.concat();
            all.sort();
            assert_eq!(all, (0..4000).collect::<Vec<_>>(), "{target} partitions, re-cut");
        }
    }
}
