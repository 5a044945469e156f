//! A full sort with one copy fewer: the query engine's replacement for DataFusion's `SortExec`
//! (and the `SortPreservingMergeExec` above it) where a query sorts its whole result.
//!
//! DataFusion sorts a result held in memory by sorting each input batch (a `take` of every
//! column, ordered by its dynamic comparators), merging the sorted batches of each partition (an
//! `interleave` of every column) and merging the partitions (another `interleave`): three copies
//! of every row. On `report review` (470,000 rows of 40 columns, ~500 MB) the sort and merges were
//! ~0.9 s of the process's ~3 s of CPU (bench/RESULTS.md). Here the input's partitions are read
//! as one stream; each batch, on arrival, has its sort keys encoded in Arrow's row format
//! (compared as bytes) and is copied in their order; at the end the sorted batches are merged by
//! ordering `(batch, row)` pairs and gathering each output batch from them: two copies, and
//! byte comparisons. Rows with equal keys keep their arrival order, as a stable sort would.
//!
//! Like `SortExec` without a disk to spill to, it needs its input in memory: it reserves the
//! input's size in the session's memory pool (`lastseen serve`'s per-query limit applies) and
//! fails with "resources exhausted" past it. It takes the place only of sorts without a limit
//! (a `LIMIT` keeps DataFusion's top-k) whose keys Arrow's row format can encode.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, RecordBatch, RecordBatchOptions, UInt32Array};
use datafusion::arrow::compute::{interleave, take_record_batch};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::row::{RowConverter, Rows, SortField};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode, TreeNodeRecursion};
use datafusion::common::utils::memory::RecordBatchMemoryCounter;
use datafusion::common::{Result, internal_err};
use datafusion::execution::TaskContext;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::physical_expr::{LexOrdering, PhysicalExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet};
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::sorts::sort_preserving_merge::SortPreservingMergeExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, Distribution, ExecutionPlan, ExecutionPlanProperties,
    PlanProperties, ReplaceChildrenOptions, SendableRecordBatchStream, apply_expression_roots,
};
use futures::{StreamExt, TryStreamExt};

/// The physical optimizer rule, run after DataFusion's own: a `SortPreservingMergeExec` over a
/// `SortExec` of its partitions, or a `SortExec` of one partition, both without a limit, become
/// one [`GatherSortExec`].
#[derive(Debug, Default)]
pub struct GatherSort;

impl PhysicalOptimizerRule for GatherSort {
    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, _config: &ConfigOptions) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            // The merge's input partitions, or the one-partition sort's input: `GatherSortExec`
            // reads them as one stream either way.
            let sort = match node.downcast_ref::<SortPreservingMergeExec>() {
                Some(merge) if merge.fetch().is_none() => merge
                    .input()
                    .downcast_ref::<SortExec>()
                    .filter(|sort| sort.preserve_partitioning() && sort.expr() == merge.expr()),
                Some(_) => None,
                None => node.downcast_ref::<SortExec>().filter(|sort| !sort.preserve_partitioning()),
            };
            match sort {
                Some(sort) if sort.fetch().is_none() && encodable(sort.expr(), sort.input()) => Ok(Transformed::yes(
                    Arc::new(GatherSortExec::new(sort.expr().clone(), Arc::clone(sort.input()))) as _,
                )),
                _ => Ok(Transformed::no(node)),
            }
        })
        .data()
    }

    fn name(&self) -> &str {
        "gather_sort"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Whether Arrow's row format can encode every key of `expr` over `input`'s rows.
fn encodable(expr: &LexOrdering, input: &Arc<dyn ExecutionPlan>) -> bool {
    sort_fields(expr, &input.schema()).is_ok_and(|fields| RowConverter::supports_fields(&fields))
}

fn sort_fields(expr: &LexOrdering, schema: &SchemaRef) -> Result<Vec<SortField>> {
    expr.iter().map(|e| Ok(SortField::new_with_options(e.expr.data_type(schema)?, e.options))).collect()
}

/// Sorts all of its input (one partition; [`GatherSortExec::new`] puts a `CoalescePartitionsExec`
/// under it where the input has several) by `expr`, gathering each output batch from the input
/// batches, each sorted on arrival.
#[derive(Debug)]
pub struct GatherSortExec {
    expr: LexOrdering,
    input: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl GatherSortExec {
    pub fn new(expr: LexOrdering, input: Arc<dyn ExecutionPlan>) -> GatherSortExec {
        let input: Arc<dyn ExecutionPlan> = if input.output_partitioning().partition_count() > 1 {
            Arc::new(CoalescePartitionsExec::new(input))
        } else {
            input
        };
        // The output is what a `SortExec` of the whole input declares: one partition, in `expr`'s
        // order, with the input's equivalences.
        let properties = Arc::clone(SortExec::new(expr.clone(), Arc::clone(&input)).properties());
        GatherSortExec { expr, input, properties, metrics: ExecutionPlanMetricsSet::new() }
    }
}

impl DisplayAs for GatherSortExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        match t {
            DisplayFormatType::Default | DisplayFormatType::Verbose => {
                write!(f, "GatherSortExec: expr=[{}]", self.expr)
            }
            DisplayFormatType::TreeRender => write!(f, "{}", self.expr),
        }
    }
}

impl ExecutionPlan for GatherSortExec {
    fn name(&self) -> &str {
        "GatherSortExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn required_input_distribution(&self) -> Vec<Distribution> {
        vec![Distribution::SinglePartition]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![false]
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
        let [input] = <[_; 1]>::try_from(children).or_else(|_| internal_err!("GatherSortExec has one input"))?;
        Ok(Arc::new(GatherSortExec::new(self.expr.clone(), input)))
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(children, ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute))
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return internal_err!("GatherSortExec has one output partition, not {partition}");
        }
        let schema = self.schema();
        let metrics = BaselineMetrics::new(&self.metrics, partition);
        let batch_size = context.session_config().batch_size().max(1);
        // Each batch is copied in its rows' order (unless it already is): gathering the output
        // from sorted batches reads each one front to back, where gathering from the unsorted
        // ones jumped around ~300 MB and cost as much as the copies it saved.
        let mut retained = RecordBatchMemoryCounter::new();
        let gathered = self.sorted(context, metrics.clone(), move |batch, perm| {
            let sorted = perm.values().windows(2).all(|w| w[0] < w[1]);
            let batch = if sorted { batch } else { take_record_batch(&batch, perm)? };
            // What the kept batch adds, each buffer counted once: text read as `Utf8View` shares
            // its data buffers between batches (a page's dictionary, the input's buffers after
            // `take`).
            let size = retained.count_batch(&batch);
            Ok((batch, size))
        })?;
        let out_schema = Arc::clone(&schema);
        let sorted = futures::stream::once(async move {
            let gathered = gathered.await?;
            Ok::<_, datafusion::error::DataFusionError>(gathered.into_stream(out_schema, batch_size, metrics))
        })
        .try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, sorted)))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

impl GatherSortExec {
    /// Run the sort's input and order its rows, keeping each input batch as `keep` makes it on
    /// arrival (from the batch and its rows' order: `perm[i]` is the row that sorts `i`th), for
    /// a consumer that wants the rows in order in a form of its own rather than as batches: the
    /// CSV export encodes each batch as it arrives and writes the rows' bytes in this order
    /// (`export::csv::encode_sorted`), with no copy of the batches into order and no gathering
    /// of output batches. `keep` also returns the bytes what it keeps holds, which are reserved
    /// in the session's memory pool like the sort's own batches.
    pub async fn sort_with<T: Send + 'static>(
        &self,
        context: Arc<TaskContext>,
        keep: impl FnMut(RecordBatch, &UInt32Array) -> Result<(T, usize)> + Send + 'static,
    ) -> Result<Sorted<T>> {
        self.sorted(context, BaselineMetrics::new(&self.metrics, 0), keep)?.await
    }

    /// The work of [`Self::sort_with`], started (the input executed) but not yet polled.
    fn sorted<T: Send + 'static>(
        &self,
        context: Arc<TaskContext>,
        metrics: BaselineMetrics,
        keep: impl FnMut(RecordBatch, &UInt32Array) -> Result<(T, usize)> + Send + 'static,
    ) -> Result<impl Future<Output = Result<Sorted<T>>> + Send + 'static> {
        let converter = RowConverter::new(sort_fields(&self.expr, &self.input.schema())?)?;
        let keys: Vec<Arc<dyn PhysicalExpr>> = self.expr.iter().map(|e| Arc::clone(&e.expr)).collect();
        let input = self.input.execute(0, Arc::clone(&context))?;
        let reservation = MemoryConsumer::new("GatherSortExec").register(context.memory_pool());
        Ok(async move { gather(input, &keys, &converter, reservation, &metrics, keep).await })
    }
}

/// The whole input, batch by batch as its consumer kept it, and the order to read its rows in.
pub struct Sorted<T> {
    /// Per input batch, in arrival order: what was kept of it, and its rows' order.
    pub runs: Vec<Run<T>>,
    /// Every row in the sort's order, as `(run, i)`: the `i`th row of run `run`'s order, which
    /// is row `runs[run].perm[i]` of the batch as it arrived.
    pub order: Vec<(u32, u32)>,
    _reservation: MemoryReservation,
}

impl<T> Sorted<T> {
    /// The same order over what `f` makes of each run's kept value.
    pub fn map_kept<U, E>(
        self,
        mut f: impl FnMut(T) -> std::result::Result<U, E>,
    ) -> std::result::Result<Sorted<U>, E> {
        let runs = self
            .runs
            .into_iter()
            .map(|Run { kept, perm }| Ok(Run { kept: f(kept)?, perm }))
            .collect::<std::result::Result<_, E>>()?;
        Ok(Sorted { runs, order: self.order, _reservation: self._reservation })
    }
}

/// One input batch of a [`Sorted`].
pub struct Run<T> {
    pub kept: T,
    /// `perm[i]` is the batch's row that sorts `i`th among its rows.
    pub perm: UInt32Array,
}

/// Read all of `input`: encode each batch's keys, sort its rows and hand it to `keep` (on
/// arrival, while the input's partitions are still being produced), then merge those runs into
/// one order.
async fn gather<T>(
    mut input: SendableRecordBatchStream,
    keys: &[Arc<dyn PhysicalExpr>],
    converter: &RowConverter,
    reservation: MemoryReservation,
    metrics: &BaselineMetrics,
    mut keep: impl FnMut(RecordBatch, &UInt32Array) -> Result<(T, usize)>,
) -> Result<Sorted<T>> {
    let mut runs: Vec<Run<T>> = Vec::new();
    let mut rows: Vec<Rows> = Vec::new();
    let mut order: Vec<(u32, u32)> = Vec::new();
    while let Some(batch) = input.next().await {
        let batch = batch?;
        if batch.num_rows() == 0 {
            continue;
        }
        let _timer = metrics.elapsed_compute().timer();
        let columns = keys
            .iter()
            .map(|k| k.evaluate(&batch).and_then(|v| v.into_array(batch.num_rows())))
            .collect::<Result<Vec<ArrayRef>>>()?;
        let encoded = converter.convert_columns(&columns)?;
        let (Ok(b), Ok(n)) = (u32::try_from(runs.len()), u32::try_from(batch.num_rows())) else {
            return internal_err!("GatherSortExec: more than 2^32 batches or rows in a batch");
        };
        // A stable sort: rows with equal keys keep their input order.
        // Compared as plain byte slices: `Rows::row` per comparison (an out-of-line call to find
        // the row's bytes) was a fifth of the sorting time.
        let keyed: Vec<&[u8]> = (0..n as usize).map(|r| encoded.row(r).data()).collect();
        let mut perm: Vec<u32> = (0..n).collect();
        perm.sort_by(|x, y| keyed[*x as usize].cmp(keyed[*y as usize]));
        drop(keyed);
        let perm = UInt32Array::from(perm);
        let (kept, size) = keep(batch, &perm)?;
        reservation.try_grow(size + encoded.size() + perm.get_buffer_memory_size())?;
        order.extend((0..n).map(|r| (b, r)));
        runs.push(Run { kept, perm });
        rows.push(encoded);
    }
    let _timer = metrics.elapsed_compute().timer();
    // `order` is one sorted run per batch; the standard library's stable sort finds the runs and
    // merges them (n log(batches) comparisons, not n log n). Ties keep the batches' order. Row
    // `r` of run `b` is row `perm[r]` of its keys. Each pair is sorted with its key's bytes
    // beside it: this merge runs alone, after the input, so every comparison that looks up a
    // row through the permutation and `Rows` is time no other thread hides.
    let keyed: Vec<(&[u8], (u32, u32))> = order
        .iter()
        .map(|&(b, r)| (rows[b as usize].row(runs[b as usize].perm.value(r as usize) as usize).data(), (b, r)))
        .collect();
    merge_runs(keyed, &mut order);
    let keys_size: usize = rows.iter().map(Rows::size).sum();
    drop(rows);
    reservation.shrink(keys_size.min(reservation.size()));
    Ok(Sorted { runs, order, _reservation: reservation })
}

/// `keyed`'s pairs in the order of their keys into `order`, ties in `keyed`'s order. `keyed` is
/// sorted runs, one after another. On two or more cores the first half of the runs and the
/// second are sorted on two threads, then merged: the merge waits for the whole input and no
/// other work runs beside it, so a second core would otherwise sit idle (~0.1 s of `report
/// review`'s wall time went to it with one thread).
fn merge_runs(mut keyed: Vec<(&[u8], (u32, u32))>, order: &mut [(u32, u32)]) {
    let by_key = |x: &(&[u8], (u32, u32)), y: &(&[u8], (u32, u32))| x.0.cmp(y.0);
    let parallel = std::thread::available_parallelism().map_or(1, |n| n.get()) > 1;
    // Where the second half of the runs starts: the first pair of its first run.
    let runs = keyed.last().map_or(0, |last| last.1.0 as usize + 1);
    let split = keyed.partition_point(|k| (k.1.0 as usize) < runs / 2);
    if !parallel || split == 0 || keyed.len() < 2 * 8192 {
        keyed.sort_by(by_key);
        for (o, k) in order.iter_mut().zip(&keyed) {
            *o = k.1;
        }
        return;
    }
    let (first, second) = keyed.split_at_mut(split);
    std::thread::scope(|s| {
        s.spawn(|| first.sort_by(by_key));
        second.sort_by(by_key);
    });
    // A stable merge of the two: on equal keys the first half's pair (an earlier batch) first.
    let (mut i, mut j) = (0, 0);
    for o in order.iter_mut() {
        let take_first = j == second.len() || (i < first.len() && first[i].0 <= second[j].0);
        if take_first {
            *o = first[i].1;
            i += 1;
        } else {
            *o = second[j].1;
            j += 1;
        }
    }
}

impl Sorted<RecordBatch> {
    /// The sorted output, `batch_size` rows at a time, each batch gathered when it is asked for
    /// (each run's batch is in its rows' order).
    fn into_stream(
        self,
        schema: SchemaRef,
        batch_size: usize,
        metrics: BaselineMetrics,
    ) -> impl futures::Stream<Item = Result<RecordBatch>> + Send {
        let total = self.order.len();
        futures::stream::iter((0..total).step_by(batch_size)).map(move |start| {
            let _timer = metrics.elapsed_compute().timer();
            let indices: Vec<(usize, usize)> = self.order[start..(start + batch_size).min(total)]
                .iter()
                .map(|&(b, r)| (b as usize, r as usize))
                .collect();
            let columns = (0..schema.fields().len())
                .map(|c| {
                    let arrays: Vec<&dyn Array> = self.runs.iter().map(|run| run.kept.column(c).as_ref()).collect();
                    interleave(&arrays, &indices)
                })
                .collect::<std::result::Result<Vec<ArrayRef>, _>>()?;
            let options = RecordBatchOptions::new().with_row_count(Some(indices.len()));
            let batch = RecordBatch::try_new_with_options(Arc::clone(&schema), columns, &options)?;
            metrics.record_output(batch.num_rows());
            Ok(batch)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{BooleanArray, Int64Array, RecordBatch, StringArray, UInt32Array};
    use datafusion::arrow::compute::concat_batches;
    use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
    use datafusion::datasource::MemTable;
    use datafusion::execution::memory_pool::GreedyMemoryPool;
    use datafusion::execution::runtime_env::RuntimeEnvBuilder;
    use datafusion::execution::session_state::SessionStateBuilder;
    use datafusion::physical_plan::displayable;
    use datafusion::prelude::{SessionConfig, SessionContext};
    use proptest::prelude::*;

    use super::GatherSort;

    /// A row of the test table: a unique id, and keys with NULLs and many ties.
    type Row = (Option<i64>, Option<String>, bool);

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::UInt32, false),
            Field::new("a", DataType::Int64, true),
            Field::new("s", DataType::Utf8, true),
            Field::new("f", DataType::Boolean, false),
        ]))
    }

    /// `rows` as a table of `partitions` partitions, each cut into batches of `chunk` rows.
    fn table(rows: &[Row], partitions: usize, chunk: usize) -> MemTable {
        let mut parts = vec![Vec::new(); partitions];
        for (p, start) in (0..rows.len()).step_by(chunk).enumerate() {
            let end = (start + chunk).min(rows.len());
            let slice = &rows[start..end];
            let batch = RecordBatch::try_new(
                schema(),
                vec![
                    Arc::new(UInt32Array::from_iter_values(start as u32..end as u32)),
                    Arc::new(Int64Array::from_iter(slice.iter().map(|r| r.0))),
                    Arc::new(StringArray::from_iter(slice.iter().map(|r| r.1.clone()))),
                    Arc::new(BooleanArray::from_iter(slice.iter().map(|r| Some(r.2)))),
                ],
            )
            .unwrap();
            parts[p % partitions].push(batch);
        }
        MemTable::try_new(schema(), parts).unwrap()
    }

    fn session(gather: bool, batch_size: usize) -> SessionContext {
        let config = SessionConfig::new().with_target_partitions(3).with_batch_size(batch_size);
        let mut state = SessionStateBuilder::new().with_config(config).with_default_features();
        if gather {
            state = state.with_physical_optimizer_rule(Arc::new(GatherSort));
        }
        SessionContext::new_with_state(state.build())
    }

    async fn run(ctx: &SessionContext, rows: &[Row], partitions: usize, chunk: usize, sql: &str) -> RecordBatch {
        ctx.register_table("t", Arc::new(table(rows, partitions, chunk))).unwrap();
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        concat_batches(&batches.first().map_or_else(schema, |b| b.schema()), &batches).unwrap()
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    fn rows() -> impl Strategy<Value = Vec<Row>> {
        let key =
            (proptest::option::weighted(0.8, -3i64..3), proptest::option::weighted(0.8, "[ab]{0,2}"), any::<bool>());
        proptest::collection::vec(key, 0..120)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// The same rows, in the same order, as DataFusion's own sort, over several partitions
        /// and batches, with NULLs first and last, ascending and descending keys.
        #[test]
        fn sorts_like_datafusion(rows in rows(), partitions in 1usize..4, chunk in 1usize..40, batch_size in 1usize..50) {
            let sql = "SELECT id, a, s, f FROM t ORDER BY s DESC NULLS FIRST, a ASC NULLS LAST, f DESC, id";
            let (ours, theirs) = rt().block_on(async {
                let ours = run(&session(true, batch_size), &rows, partitions, chunk, sql).await;
                let theirs = run(&session(false, batch_size), &rows, partitions, chunk, sql).await;
                (ours, theirs)
            });
            prop_assert_eq!(ours, theirs);
        }

        /// Rows with equal keys keep their input order (one partition: the input order is known).
        #[test]
        fn equal_keys_keep_their_order(rows in rows(), chunk in 1usize..40) {
            let sql = "SELECT id FROM t ORDER BY s NULLS FIRST";
            let got = rt().block_on(run(&session(true, 8192), &rows, 1, chunk, sql));
            let got: Vec<u32> = got.column(0).as_any().downcast_ref::<UInt32Array>().unwrap().values().to_vec();
            let mut want: Vec<u32> = (0..rows.len() as u32).collect();
            want.sort_by(|x, y| rows[*x as usize].1.cmp(&rows[*y as usize].1));
            prop_assert_eq!(got, want);
        }
    }

    /// Enough rows for the final merge to sort its two halves of the batches on two threads: the
    /// same rows as a stable sort, ties (many) in arrival order across the halves.
    #[tokio::test]
    async fn a_large_input_merges_in_two_halves_stably() {
        let rows: Vec<Row> = (0..40_000i64)
            .map(|i| {
                let x = (i * 7_919) % 10_007;
                (Some(x % 5), (x % 3 != 0).then(|| ["a", "b"][(x % 2) as usize].to_string()), x % 4 == 0)
            })
            .collect();
        let sql = "SELECT id FROM t ORDER BY s NULLS FIRST, a DESC";
        // One partition and no repartitioning: the rows arrive in id order.
        let config = SessionConfig::new().with_target_partitions(1);
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_default_features()
            .with_physical_optimizer_rule(Arc::new(GatherSort))
            .build();
        let got = run(&SessionContext::new_with_state(state), &rows, 1, 700, sql).await;
        let got: Vec<u32> = got.column(0).as_any().downcast_ref::<UInt32Array>().unwrap().values().to_vec();
        let mut want: Vec<u32> = (0..rows.len() as u32).collect();
        want.sort_by(|x, y| {
            let (x, y) = (&rows[*x as usize], &rows[*y as usize]);
            x.1.cmp(&y.1).then(y.0.cmp(&x.0))
        });
        assert_eq!(got, want);
    }

    #[tokio::test]
    async fn replaces_full_sorts_and_keeps_top_k() {
        let rows: Vec<Row> = (0..50).map(|i| (Some(i % 7), Some(format!("{}", i % 5)), i % 2 == 0)).collect();
        let ctx = session(true, 8192);
        ctx.register_table("t", Arc::new(table(&rows, 3, 10))).unwrap();
        let plan = |sql: &'static str| {
            let ctx = ctx.clone();
            async move {
                let plan = ctx.sql(sql).await.unwrap().create_physical_plan().await.unwrap();
                displayable(plan.as_ref()).indent(true).to_string()
            }
        };
        let full = plan("SELECT * FROM t ORDER BY s, a").await;
        assert!(full.contains("GatherSortExec: expr=[s@2 ASC NULLS LAST, a@1 ASC NULLS LAST]"), "{full}");
        let stock = |line: &str| line.trim_start().starts_with("SortExec") || line.contains("SortPreservingMergeExec");
        assert!(!full.lines().any(stock), "{full}");
        let top = plan("SELECT * FROM t ORDER BY s, a LIMIT 3").await;
        assert!(top.contains("SortExec: TopK(fetch=3)") && !top.contains("GatherSortExec"), "{top}");
    }

    #[tokio::test]
    async fn input_past_the_memory_limit_fails_alone() {
        let rows: Vec<Row> = (0..5000).map(|i| (Some(i), Some("x".repeat(100)), true)).collect();
        let runtime =
            RuntimeEnvBuilder::new().with_memory_pool(Arc::new(GreedyMemoryPool::new(64 * 1024))).build_arc().unwrap();
        let state = SessionStateBuilder::new()
            .with_config(SessionConfig::new().with_target_partitions(2))
            .with_runtime_env(runtime)
            .with_default_features()
            .with_physical_optimizer_rule(Arc::new(GatherSort))
            .build();
        let ctx = SessionContext::new_with_state(state);
        ctx.register_table("t", Arc::new(table(&rows, 2, 500))).unwrap();
        let err = ctx.sql("SELECT * FROM t ORDER BY a DESC").await.unwrap().collect().await.unwrap_err();
        assert!(err.to_string().contains("Resources exhausted"), "{err}");
        assert!(err.to_string().contains("GatherSortExec"), "{err}");
    }
}
