//! An ordered scan of one file read back in order without a merge: the query engine's
//! replacement for the `SortPreservingMergeExec` DataFusion puts over the parts of one sorted
//! file.
//!
//! DataFusion reads a large file in several partitions, each a byte range (the row groups that
//! start in it) or, as the lake shares such a file out, a run of consecutive row groups; where
//! the query needs the file's order it merges the partitions with a `SortPreservingMergeExec`:
//! every key compared, every row of every column copied again by `interleave`. For parts of one file that is sorted as a whole the merge has nothing to do:
//! every row of a part comes before every row of the next. `report dormant` (173,800 rows read
//! from `account_report`, which is stored in its order) spent ~0.07 s of its ~0.5 s of CPU in that
//! merge (bench/RESULTS.md). [`ConcatInOrderExec`] returns the partitions one after another,
//! each read a batch ahead as the merge reads them, and copies nothing.

use std::fmt;
use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode, TreeNodeRecursion};
use datafusion::common::{Result, internal_err};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::physical_plan::parquet::ParquetAccessPlan;
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::TaskContext;
use datafusion::physical_expr::{LexOrdering, OrderingRequirements, PhysicalExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::common::spawn_buffered;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet};
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::sorts::sort_preserving_merge::SortPreservingMergeExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, PlanProperties,
    ReplaceChildrenOptions, SendableRecordBatchStream, apply_expression_roots,
};
use futures::StreamExt;

/// The physical optimizer rule, run after DataFusion's own: a `SortPreservingMergeExec` without
/// a limit whose input partitions are ascending parts of one file (through projections and
/// filters, which keep each partition's rows in order) becomes a [`ConcatInOrderExec`].
#[derive(Debug, Default)]
pub struct ConcatRanges;

impl PhysicalOptimizerRule for ConcatRanges {
    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, _config: &ConfigOptions) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| match node.downcast_ref::<SortPreservingMergeExec>() {
            Some(merge) if merge.fetch().is_none() && ranges_of_one_file(merge.input()) => Ok(Transformed::yes(
                Arc::new(ConcatInOrderExec::new(merge.expr().clone(), Arc::clone(merge.input()))) as _,
            )),
            _ => Ok(Transformed::no(node)),
        })
        .data()
    }

    fn name(&self) -> &str {
        "concat_ranges"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Whether `plan`'s partitions are, in partition order, ascending and disjoint parts of one and
/// the same file, under nothing but projections and filters: byte ranges (each reads the row
/// groups that start in it; DataFusion's own split) or whole-file scans each with an access plan
/// of consecutive row groups (the lake's split at row groups). Either way the partitions hold the
/// file's rows in the file's order: when the file is sorted (the merge above says each partition
/// is, and they are parts of one file), partition after partition is the merged order.
fn ranges_of_one_file(plan: &Arc<dyn ExecutionPlan>) -> bool {
    let mut node = plan;
    loop {
        if let Some(p) = node.downcast_ref::<ProjectionExec>() {
            node = p.input();
        } else if let Some(f) = node.downcast_ref::<FilterExec>() {
            node = f.input();
        } else {
            break;
        }
    }
    let Some(scan) = node.downcast_ref::<DataSourceExec>() else {
        return false;
    };
    let Some(config) = scan.data_source().downcast_ref::<FileScanConfig>() else {
        return false;
    };
    let groups = &config.file_groups;
    if groups.len() < 2 || groups.len() != plan.output_partitioning().partition_count() {
        return false;
    }
    let mut parts = Vec::with_capacity(groups.len());
    for group in groups {
        match group.files() {
            [file] => match part(file) {
                Some(p) => parts.push((&file.object_meta.location, p)),
                None => return false,
            },
            _ => return false,
        }
    }
    parts.windows(2).all(|w| {
        let ((file_a, a), (file_b, b)) = (w[0], w[1]);
        file_a == file_b && a.unit == b.unit && a.start < a.end && a.end <= b.start
    })
}

/// The part of its file a scan's `PartitionedFile` reads: `start..end`, in bytes or row groups.
#[derive(Clone, Copy)]
struct Part {
    unit: Unit,
    start: u64,
    end: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Unit {
    /// A byte range, without an access plan.
    Bytes,
    /// The row groups of an access plan that scans consecutive ones, over the whole file.
    RowGroups,
}

fn part(file: &PartitionedFile) -> Option<Part> {
    match (file.extension::<ParquetAccessPlan>(), &file.range) {
        (None, Some(range)) => Some(Part {
            unit: Unit::Bytes,
            start: u64::try_from(range.start).ok()?,
            end: u64::try_from(range.end).ok()?,
        }),
        (Some(plan), None) => {
            let scanned: Vec<usize> = (0..plan.len()).filter(|&g| plan.should_scan(g)).collect();
            let (&first, &last) = (scanned.first()?, scanned.last()?);
            (last - first + 1 == scanned.len()).then_some(Part {
                unit: Unit::RowGroups,
                start: first as u64,
                end: last as u64 + 1,
            })
        }
        _ => None,
    }
}

/// Its input's partitions, one after another, as one partition in `expr`'s order (which the
/// rule checked the concatenation has). Every partition starts at once and is read one batch
/// ahead, as `SortPreservingMergeExec` reads its inputs.
#[derive(Debug)]
pub struct ConcatInOrderExec {
    expr: LexOrdering,
    input: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl ConcatInOrderExec {
    pub fn new(expr: LexOrdering, input: Arc<dyn ExecutionPlan>) -> ConcatInOrderExec {
        // What the merge it replaces declares: one partition, in `expr`'s order.
        let properties = Arc::clone(SortPreservingMergeExec::new(expr.clone(), Arc::clone(&input)).properties());
        ConcatInOrderExec { expr, input, properties, metrics: ExecutionPlanMetricsSet::new() }
    }
}

impl DisplayAs for ConcatInOrderExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        match t {
            DisplayFormatType::Default | DisplayFormatType::Verbose => {
                write!(f, "ConcatInOrderExec: [{}]", self.expr)
            }
            DisplayFormatType::TreeRender => write!(f, "{}", self.expr),
        }
    }
}

impl ExecutionPlan for ConcatInOrderExec {
    fn name(&self) -> &str {
        "ConcatInOrderExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn required_input_ordering(&self) -> Vec<Option<OrderingRequirements>> {
        vec![Some(OrderingRequirements::from(self.expr.clone()))]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        apply_expression_roots(self.expr.iter().map(|e| &e.expr), f)
    }

    fn replace_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let [input] = <[_; 1]>::try_from(children).or_else(|_| internal_err!("ConcatInOrderExec has one input"))?;
        Ok(Arc::new(ConcatInOrderExec::new(self.expr.clone(), input)))
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(children, ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute))
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return internal_err!("ConcatInOrderExec has one output partition, not {partition}");
        }
        let parts = (0..self.input.output_partitioning().partition_count())
            .map(|i| Ok(spawn_buffered(self.input.execute(i, Arc::clone(&context))?, 1)))
            .collect::<Result<Vec<_>>>()?;
        let metrics = BaselineMetrics::new(&self.metrics, partition);
        let rows = futures::stream::iter(parts).flatten().map(move |b| {
            if let Ok(b) = &b {
                metrics.record_output(b.num_rows());
            }
            b
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(self.schema(), rows)))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
    use datafusion::arrow::compute::SortOptions;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::common::config::ConfigOptions;
    use datafusion::datasource::listing::PartitionedFile;
    use datafusion::datasource::physical_plan::parquet::ParquetAccessPlan;
    use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
    use datafusion::datasource::source::DataSourceExec;
    use datafusion::execution::object_store::ObjectStoreUrl;
    use datafusion::execution::session_state::SessionStateBuilder;
    use datafusion::parquet::arrow::ArrowWriter;
    use datafusion::parquet::file::properties::WriterProperties;
    use datafusion::physical_expr::expressions::Column;
    use datafusion::physical_expr::{LexOrdering, PhysicalSortExpr};
    use datafusion::physical_optimizer::PhysicalOptimizerRule;
    use datafusion::physical_plan::ExecutionPlan;
    use datafusion::physical_plan::displayable;
    use datafusion::physical_plan::sorts::sort_preserving_merge::SortPreservingMergeExec;
    use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext, col};

    use super::ConcatRanges;

    /// `rows` (already sorted by `k, id`) as one Parquet file at `path` in row groups of `group`.
    fn write(path: &std::path::Path, rows: &[(i64, i64)], group: usize) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, false),
            Field::new("id", DataType::Int64, false),
            Field::new("s", DataType::Utf8, false),
        ]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1))),
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| format!("row {} of key {}", r.1, r.0)))),
            ],
        )
        .unwrap();
        let props = WriterProperties::builder().set_max_row_group_row_count(Some(group)).build();
        let mut w = ArrowWriter::try_new(std::fs::File::create(path).unwrap(), schema, Some(props)).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
    }

    /// A session of `partitions` partitions that splits even small files into byte ranges, with
    /// the rule or without it; `dir` registered as table `t`, sorted by `k, id`.
    async fn session(dir: &std::path::Path, partitions: usize, rule: bool) -> SessionContext {
        let config = SessionConfig::new()
            .with_target_partitions(partitions)
            .with_batch_size(64)
            .set_usize("datafusion.optimizer.repartition_file_min_size", 0);
        let mut state = SessionStateBuilder::new().with_config(config).with_default_features();
        if rule {
            state = state.with_physical_optimizer_rule(Arc::new(ConcatRanges));
        }
        let ctx = SessionContext::new_with_state(state.build());
        let order = vec![vec![col("k").sort(true, false), col("id").sort(true, false)]];
        let options = ParquetReadOptions::default().file_sort_order(order);
        ctx.register_parquet("t", dir.to_str().unwrap(), options).await.unwrap();
        ctx
    }

    async fn run(ctx: &SessionContext, sql: &str) -> (String, Vec<RecordBatch>) {
        let df = ctx.sql(sql).await.unwrap();
        let plan = df.clone().create_physical_plan().await.unwrap();
        (displayable(plan.as_ref()).indent(true).to_string(), df.collect().await.unwrap())
    }

    fn ids(batches: &[RecordBatch]) -> Vec<(i64, i64)> {
        batches
            .iter()
            .flat_map(|b| {
                let k = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap().clone();
                let id = b.column(1).as_any().downcast_ref::<Int64Array>().unwrap().clone();
                (0..b.num_rows()).map(move |i| (k.value(i), id.value(i)))
            })
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ranges_of_one_sorted_file_come_back_in_its_order_without_a_merge() {
        let dir = tempfile::tempdir().unwrap();
        // Few keys, many ties, in row groups of 97 rows: ranges end inside runs of one key.
        let mut rows: Vec<(i64, i64)> = (0..5000).map(|i| ((i * 7919) % 13, i)).collect();
        rows.sort();
        write(&dir.path().join("part-0.parquet"), &rows, 97);
        for partitions in [2, 3, 5] {
            let with = session(dir.path(), partitions, true).await;
            let without = session(dir.path(), partitions, false).await;
            for (sql, expected) in [
                ("SELECT k, id, s FROM t ORDER BY k, id", rows.clone()),
                (
                    "SELECT k, id, upper(s) FROM t WHERE id % 3 = 0 AND k >= 4 ORDER BY k, id",
                    rows.iter().copied().filter(|r| r.1 % 3 == 0 && r.0 >= 4).collect(),
                ),
            ] {
                let (plan, got) = run(&with, sql).await;
                assert!(plan.contains("ConcatInOrderExec") && !plan.contains("SortPreservingMergeExec"), "{plan}");
                assert!(plan.contains("file_groups={") && plan.contains(".parquet:"), "not split in ranges: {plan}");
                let (stock, theirs) = run(&without, sql).await;
                assert!(stock.contains("SortPreservingMergeExec"), "{stock}");
                assert_eq!(ids(&got), expected, "{partitions} partitions: {sql}");
                assert_eq!(ids(&got), ids(&theirs));
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn several_files_and_limits_keep_the_merge() {
        let dir = tempfile::tempdir().unwrap();
        // Two files whose keys interleave: only a merge puts their rows in order.
        let a: Vec<(i64, i64)> = (0..300).map(|i| (i * 2, i)).collect();
        let b: Vec<(i64, i64)> = (0..300).map(|i| (i * 2 + 1, i)).collect();
        write(&dir.path().join("a.parquet"), &a, 50);
        write(&dir.path().join("b.parquet"), &b, 50);
        let ctx = session(dir.path(), 2, true).await;
        let (plan, got) = run(&ctx, "SELECT k, id FROM t ORDER BY k, id").await;
        assert!(plan.contains("SortPreservingMergeExec") && !plan.contains("ConcatInOrderExec"), "{plan}");
        let mut all: Vec<(i64, i64)> = a.into_iter().chain(b).collect();
        all.sort();
        assert_eq!(ids(&got), all);
        let (plan, _) = run(&ctx, "SELECT k, id FROM t ORDER BY k, id LIMIT 5").await;
        assert!(!plan.contains("ConcatInOrderExec"), "{plan}");
    }

    /// A scan of the file at `path` (sorted by `k, id`) whose partitions are the whole file,
    /// each with an access plan scanning `runs[i]` of its `groups` row groups (as the lake splits
    /// a sorted file), under a merge, and the plan after the rule.
    fn merge_over_plans(path: &std::path::Path, groups: usize, runs: &[Vec<usize>]) -> Arc<dyn ExecutionPlan> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, false),
            Field::new("id", DataType::Int64, false),
            Field::new("s", DataType::Utf8, false),
        ]));
        let size = std::fs::metadata(path).unwrap().len();
        let parts = runs.iter().map(|run| {
            let mut plan = ParquetAccessPlan::new_none(groups);
            run.iter().for_each(|&g| plan.scan(g));
            FileGroup::new(vec![PartitionedFile::new(path.to_str().unwrap(), size).with_extension(plan)])
        });
        let order = LexOrdering::new(["k", "id"].map(|c| {
            PhysicalSortExpr::new(Arc::new(Column::new_with_schema(c, &schema).unwrap()), SortOptions::default())
        }))
        .unwrap();
        let config =
            FileScanConfigBuilder::new(ObjectStoreUrl::local_filesystem(), Arc::new(ParquetSource::new(schema)))
                .with_file_groups(parts.collect())
                .with_output_ordering(vec![order.clone()])
                .build();
        let merge = SortPreservingMergeExec::new(order, DataSourceExec::from_data_source(config));
        ConcatRanges.optimize(Arc::new(merge), &ConfigOptions::default()).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn runs_of_row_groups_of_one_sorted_file_come_back_in_its_order_without_a_merge() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("part-0.parquet");
        let mut rows: Vec<(i64, i64)> = (0..3000).map(|i| ((i * 7919) % 11, i)).collect();
        rows.sort();
        write(&path, &rows, 97);
        let groups = 3000usize.div_ceil(97);
        let ctx = SessionContext::new_with_config(SessionConfig::new().with_batch_size(64));
        for cuts in [vec![0, 16], vec![0, 5, 20], vec![0, 1, 2, 30]] {
            let runs: Vec<Vec<usize>> = cuts
                .iter()
                .enumerate()
                .map(|(i, &first)| (first..cuts.get(i + 1).copied().unwrap_or(groups)).collect())
                .collect();
            let plan = merge_over_plans(&path, groups, &runs);
            assert_eq!(plan.name(), "ConcatInOrderExec", "{cuts:?}");
            let got = datafusion::physical_plan::collect(plan, ctx.task_ctx()).await.unwrap();
            assert_eq!(ids(&got), rows, "{cuts:?}");
        }
        // Runs out of order, or row groups shared out in turn, need the merge.
        for runs in [
            vec![(16..groups).collect(), (0..16).collect()],
            vec![(0..groups).step_by(2).collect(), (1..groups).step_by(2).collect::<Vec<_>>()],
        ] {
            let plan = merge_over_plans(&path, groups, &runs);
            assert_eq!(plan.name(), "SortPreservingMergeExec");
            let got = datafusion::physical_plan::collect(plan, ctx.task_ctx()).await.unwrap();
            assert_eq!(ids(&got), rows);
        }
    }
}
