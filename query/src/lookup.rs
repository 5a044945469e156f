//! A right outer join that passes the probe side's columns through: the query engine's
//! replacement for DataFusion's `HashJoinExec` where a big table is outer-joined with a small one
//! on one key, as `report review` joins each account with its newest imported decision and
//! deprovisioning outcome.
//!
//! DataFusion's hash join builds every output batch with a `take` of every column, the probe
//! side's included, even where each probe row comes out once and in order. On `report review`
//! (470,000 rows of 37 columns probing ~22,000 history rows) that copy was nearly all of the
//! join's 190 ms and ~235 MB of fresh memory the kernel had to fault in and zero. Here, when no
//! build key occurs twice, each output batch is the probe batch's own columns plus the build
//! side's gathered by one `take` of nullable indices. A key that does occur twice makes a probe
//! row come out once per match, as the hash join does (both sides then go through `take`).
//!
//! It takes the place only of a `CollectLeft` right join on one text key (the ids lastseen joins
//! on), without a join filter, a limit or a dynamic filter, with SQL's `NULL`-matches-nothing;
//! everything else stays a `HashJoinExec`.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, LargeStringArray, RecordBatch, RecordBatchOptions, StringArray, StringViewArray,
    UInt32Array,
};
use datafusion::arrow::compute::{concat_batches, take};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode, TreeNodeRecursion};
use datafusion::common::{HashMap, JoinType, NullEquality, Result, internal_err};
use datafusion::execution::TaskContext;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::joins::{HashJoinExec, PartitionMode};
use datafusion::physical_plan::metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, Distribution, ExecutionPlan, ExecutionPlanProperties,
    PlanProperties, ReplaceChildrenOptions, SendableRecordBatchStream, apply_expression_roots,
};
use futures::{StreamExt, TryStreamExt};
use tokio::sync::OnceCell;

/// The physical optimizer rule, run after DataFusion's own: a `HashJoinExec` of the kind the
/// module describes becomes a [`LookupJoinExec`].
#[derive(Debug, Default)]
pub struct LookupJoin;

impl PhysicalOptimizerRule for LookupJoin {
    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, _config: &ConfigOptions) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(join) = node.downcast_ref::<HashJoinExec>() else {
                return Ok(Transformed::no(node));
            };
            match LookupJoinExec::replacing(join)? {
                Some(lookup) => Ok(Transformed::yes(Arc::new(lookup) as _)),
                None => Ok(Transformed::no(node)),
            }
        })
        .data()
    }

    fn name(&self) -> &str {
        "lookup_join"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Right outer join of `right` (probed, any number of partitions) with `left` (built once, one
/// partition) on `left_key = right_key`, output columns picked by `projection` from the left
/// columns followed by the right ones (the hash join's schema).
pub struct LookupJoinExec {
    left: Arc<dyn ExecutionPlan>,
    right: Arc<dyn ExecutionPlan>,
    left_key: Arc<dyn PhysicalExpr>,
    right_key: Arc<dyn PhysicalExpr>,
    projection: Option<Arc<[usize]>>,
    properties: Arc<PlanProperties>,
    build: Arc<OnceCell<Arc<Build>>>,
    metrics: ExecutionPlanMetricsSet,
}

impl fmt::Debug for LookupJoinExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LookupJoinExec")
            .field("left_key", &self.left_key)
            .field("right_key", &self.right_key)
            .field("projection", &self.projection)
            .finish_non_exhaustive()
    }
}

impl LookupJoinExec {
    /// The replacement for `join`, if it is a join this one can stand in for.
    pub fn replacing(join: &HashJoinExec) -> Result<Option<LookupJoinExec>> {
        let [(left_key, right_key)] = join.on() else { return Ok(None) };
        let simple = *join.join_type() == JoinType::Right
            && *join.partition_mode() == PartitionMode::CollectLeft
            && join.filter().is_none()
            && join.null_equality() == NullEquality::NullEqualsNothing
            && !join.null_aware
            && join.fetch().is_none()
            && join.dynamic_expressions_produced().is_empty()
            && join.left().output_partitioning().partition_count() == 1;
        let (left_type, right_type) =
            (left_key.data_type(&join.left().schema())?, right_key.data_type(&join.right().schema())?);
        let text = matches!(left_type, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View);
        if !simple || left_type != right_type || !text {
            return Ok(None);
        }
        Ok(Some(LookupJoinExec {
            left: Arc::clone(join.left()),
            right: Arc::clone(join.right()),
            left_key: Arc::clone(left_key),
            right_key: Arc::clone(right_key),
            projection: join.projection.clone(),
            // What the hash join declared: its partitioning (the probe side's), schema and
            // equivalences. The probe side's order, which it keeps only in some cases, is kept
            // here in every case, so whatever order it declared holds.
            properties: Arc::clone(join.properties()),
            build: Arc::new(OnceCell::new()),
            metrics: ExecutionPlanMetricsSet::new(),
        }))
    }
}

impl DisplayAs for LookupJoinExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        match t {
            DisplayFormatType::Default | DisplayFormatType::Verbose => {
                write!(f, "LookupJoinExec: join_type=Right, on=[({}, {})]", self.left_key, self.right_key)?;
                if let Some(p) = &self.projection {
                    write!(f, ", projection={p:?}")?;
                }
                Ok(())
            }
            DisplayFormatType::TreeRender => write!(f, "on=({}, {})", self.left_key, self.right_key),
        }
    }
}

impl ExecutionPlan for LookupJoinExec {
    fn name(&self) -> &str {
        "LookupJoinExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn required_input_distribution(&self) -> Vec<Distribution> {
        vec![Distribution::SinglePartition, Distribution::UnspecifiedDistribution]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![false, true]
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.left, &self.right]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        apply_expression_roots([&self.left_key, &self.right_key], f)
    }

    fn replace_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let [left, right] = <[_; 2]>::try_from(children).or_else(|_| internal_err!("LookupJoinExec has two inputs"))?;
        // Rebuilt as the hash join it stands for, so the properties are derived from the new
        // inputs as DataFusion derives them.
        let join = HashJoinExec::try_new(
            left,
            right,
            vec![(Arc::clone(&self.left_key), Arc::clone(&self.right_key))],
            None,
            &JoinType::Right,
            self.projection.as_ref().map(|p| p.to_vec()),
            PartitionMode::CollectLeft,
            NullEquality::NullEqualsNothing,
            false,
        )?;
        match LookupJoinExec::replacing(&join)? {
            Some(lookup) => Ok(Arc::new(lookup)),
            None => Ok(Arc::new(join)),
        }
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(children, ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute))
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let schema = self.schema();
        let probe = self.right.execute(partition, Arc::clone(&context))?;
        let metrics = BaselineMetrics::new(&self.metrics, partition);
        let (build, left, left_key) = (Arc::clone(&self.build), Arc::clone(&self.left), Arc::clone(&self.left_key));
        let (right_key, projection, out_schema) =
            (Arc::clone(&self.right_key), self.projection.clone(), Arc::clone(&schema));
        let joined = futures::stream::once(async move {
            // Every partition's stream waits for the one build of the left side.
            let build = build
                .get_or_try_init(|| async {
                    let reservation =
                        MemoryConsumer::new("LookupJoinExec (build side)").register(context.memory_pool());
                    Build::collect(left.execute(0, Arc::clone(&context))?, &left_key, reservation).await.map(Arc::new)
                })
                .await?;
            let build = Arc::clone(build);
            Ok::<_, datafusion::error::DataFusionError>(probe.map(move |batch| {
                let _timer = metrics.elapsed_compute().timer();
                let out = build.join(&batch?, &right_key, projection.as_deref(), &out_schema)?;
                metrics.record_output(out.num_rows());
                Ok(out)
            }))
        })
        .try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, joined)))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

/// A text key column's values as bytes.
enum Keys<'a> {
    Utf8(&'a StringArray),
    LargeUtf8(&'a LargeStringArray),
    Utf8View(&'a StringViewArray),
}

impl<'a> Keys<'a> {
    fn of(a: &'a ArrayRef) -> Result<Keys<'a>> {
        Ok(match a.data_type() {
            DataType::Utf8 => Keys::Utf8(a.as_string()),
            DataType::LargeUtf8 => Keys::LargeUtf8(a.as_string()),
            DataType::Utf8View => Keys::Utf8View(a.as_string_view()),
            t => return internal_err!("LookupJoinExec joins on text keys, not {t}"),
        })
    }

    /// Row `r`'s key; `None` for NULL, which matches nothing.
    fn get(&self, r: usize) -> Option<&'a [u8]> {
        match self {
            Keys::Utf8(a) => a.is_valid(r).then(|| a.value(r).as_bytes()),
            Keys::LargeUtf8(a) => a.is_valid(r).then(|| a.value(r).as_bytes()),
            Keys::Utf8View(a) => a.is_valid(r).then(|| a.value(r).as_bytes()),
        }
    }
}

/// The left side, in one batch, and where each of its keys is.
struct Build {
    batch: RecordBatch,
    /// Each non-NULL key and the rows that have it, in row order.
    rows_of: HashMap<Box<[u8]>, Vec<u32>>,
    /// Whether some key is on more than one row.
    duplicates: bool,
    _reservation: MemoryReservation,
}

impl Build {
    async fn collect(
        input: SendableRecordBatchStream,
        key: &Arc<dyn PhysicalExpr>,
        reservation: MemoryReservation,
    ) -> Result<Build> {
        let schema = input.schema();
        let batches: Vec<RecordBatch> = input.try_collect().await?;
        let batch = concat_batches(&schema, &batches)?;
        drop(batches);
        let array = key.evaluate(&batch)?.into_array(batch.num_rows())?;
        let keys = Keys::of(&array)?;
        let mut rows_of: HashMap<Box<[u8]>, Vec<u32>> = HashMap::with_capacity(batch.num_rows());
        let mut duplicates = false;
        let mut key_bytes = 0;
        for r in 0..batch.num_rows() {
            let Some(k) = keys.get(r) else { continue };
            let Ok(row) = u32::try_from(r) else {
                return internal_err!("LookupJoinExec: more than 2^32 rows on the build side");
            };
            let rows = rows_of.entry(k.into()).or_default();
            duplicates |= !rows.is_empty();
            key_bytes += k.len();
            rows.push(row);
        }
        reservation.try_grow(batch.get_array_memory_size() + key_bytes + rows_of.capacity() * 48)?;
        Ok(Build { batch, rows_of, duplicates, _reservation: reservation })
    }

    /// The output rows of one probe batch: each probe row with its matches, or once with NULLs
    /// where it has none.
    fn join(
        &self,
        probe: &RecordBatch,
        key: &Arc<dyn PhysicalExpr>,
        projection: Option<&[usize]>,
        schema: &SchemaRef,
    ) -> Result<RecordBatch> {
        let n = probe.num_rows();
        let array = key.evaluate(probe)?.into_array(n)?;
        let keys = Keys::of(&array)?;
        let matches = |r: usize| -> &[u32] { keys.get(r).and_then(|k| self.rows_of.get(k)).map_or(&[], Vec::as_slice) };
        let (left_idx, right): (UInt32Array, Vec<ArrayRef>) = if self.duplicates {
            let mut left = Vec::with_capacity(n);
            let mut right = Vec::with_capacity(n);
            for r in 0..n {
                let probe_row = u32::try_from(r).or_else(|_| internal_err!("a probe batch of 2^32 rows"))?;
                match matches(r) {
                    [] => {
                        left.push(None);
                        right.push(probe_row);
                    }
                    rows => {
                        for &l in rows {
                            left.push(Some(l));
                            right.push(probe_row);
                        }
                    }
                }
            }
            let right = UInt32Array::from(right);
            let columns = probe
                .columns()
                .iter()
                .map(|c| take(c.as_ref(), &right, None))
                .collect::<std::result::Result<_, _>>()?;
            (UInt32Array::from(left), columns)
        } else {
            // Each probe row once, in order: its columns as they are.
            (UInt32Array::from_iter((0..n).map(|r| matches(r).first().copied())), probe.columns().to_vec())
        };
        let left = self
            .batch
            .columns()
            .iter()
            .map(|c| take(c.as_ref(), &left_idx, None))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let all: Vec<ArrayRef> = left.into_iter().chain(right).collect();
        let columns = match projection {
            Some(p) => p.iter().map(|&i| Arc::clone(&all[i])).collect(),
            None => all,
        };
        let options = RecordBatchOptions::new().with_row_count(Some(left_idx.len()));
        Ok(RecordBatch::try_new_with_options(Arc::clone(schema), columns, &options)?)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Int64Array, RecordBatch, StringViewArray};
    use datafusion::arrow::compute::concat_batches;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::datasource::MemTable;
    use datafusion::execution::session_state::SessionStateBuilder;
    use datafusion::physical_plan::displayable;
    use datafusion::prelude::{SessionConfig, SessionContext};
    use proptest::prelude::*;

    use super::LookupJoin;

    /// A table of (key, value) rows in `partitions` partitions of batches of `chunk` rows.
    fn table(rows: &[(Option<String>, i64)], partitions: usize, chunk: usize) -> MemTable {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8View, true),
            Field::new("v", DataType::Int64, false),
        ]));
        let mut parts = vec![Vec::new(); partitions.max(1)];
        for (p, slice) in rows.chunks(chunk.max(1)).enumerate() {
            let batch = RecordBatch::try_new(
                Arc::clone(&schema),
                vec![
                    Arc::new(StringViewArray::from_iter(slice.iter().map(|r| r.0.clone()))),
                    Arc::new(Int64Array::from_iter_values(slice.iter().map(|r| r.1))),
                ],
            )
            .unwrap();
            parts[p % partitions.max(1)].push(batch);
        }
        MemTable::try_new(schema, parts).unwrap()
    }

    fn session(lookup: bool) -> SessionContext {
        let config = SessionConfig::new().with_target_partitions(3).with_batch_size(16);
        let mut state = SessionStateBuilder::new().with_config(config).with_default_features();
        if lookup {
            state = state.with_physical_optimizer_rule(Arc::new(LookupJoin));
        }
        SessionContext::new_with_state(state.build())
    }

    /// The join's rows, sorted (a join's row order is not defined), as text.
    async fn run(
        lookup: bool,
        small: &[(Option<String>, i64)],
        big: &[(Option<String>, i64)],
        chunk: usize,
        sql: &str,
    ) -> (String, String) {
        let ctx = session(lookup);
        ctx.register_table("small", Arc::new(table(small, 1, chunk))).unwrap();
        ctx.register_table("big", Arc::new(table(big, 2, chunk))).unwrap();
        let df = ctx.sql(sql).await.unwrap();
        let plan = df.clone().create_physical_plan().await.unwrap();
        let plan = displayable(plan.as_ref()).indent(true).to_string();
        let schema = Arc::new(df.schema().as_arrow().clone());
        let batches = df.collect().await.unwrap();
        let batch = concat_batches(&schema, &batches).unwrap();
        (pretty_format_batches(&[batch]).unwrap().to_string(), plan)
    }

    fn rows(max_key: u8, len: std::ops::Range<usize>) -> impl Strategy<Value = Vec<(Option<String>, i64)>> {
        proptest::collection::vec(
            (proptest::option::weighted(0.9, (0..max_key).prop_map(|k| format!("account-{k:02}"))), -50i64..50),
            len,
        )
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    const SQL: &str = "SELECT big.k, big.v, s.k AS sk, s.v AS sv \
                       FROM (SELECT * FROM small WHERE v > -1000) AS s RIGHT JOIN big ON s.k = big.k \
                       ORDER BY big.k, big.v, sk, sv";

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// The same rows as DataFusion's hash join, with unique and repeated build keys, NULL
        /// keys on both sides and probe rows without a match. (`big` is always the bigger side,
        /// so the planner keeps `small` as the build side of a right join.)
        #[test]
        fn joins_like_the_hash_join(small in rows(12, 0..16), big in rows(20, 20..80), chunk in 1usize..20) {
            let ((ours, plan), (theirs, _)) = rt().block_on(async {
                (run(true, &small, &big, chunk, SQL).await, run(false, &small, &big, chunk, SQL).await)
            });
            prop_assert!(plan.contains("LookupJoinExec"), "{}", plan);
            prop_assert_eq!(ours, theirs);
        }
    }

    #[tokio::test]
    async fn unique_keys_pass_the_probe_rows_through_in_order() {
        let small = vec![(Some("b".to_string()), 2), (Some("a".to_string()), 1), (None, 9)];
        let big: Vec<(Option<String>, i64)> =
            vec![(Some("a".into()), 10), (None, 11), (Some("c".into()), 12), (Some("b".into()), 13)];
        let ctx = session(true);
        ctx.register_table("small", Arc::new(table(&small, 1, 10))).unwrap();
        ctx.register_table("big", Arc::new(table(&big, 1, 10))).unwrap();
        let sql =
            "SELECT big.v, s.v AS sv FROM (SELECT * FROM small WHERE v > -1000) AS s RIGHT JOIN big ON s.k = big.k";
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        let text = pretty_format_batches(&batches).unwrap().to_string();
        let want =
            "+----+----+\n| v  | sv |\n+----+----+\n| 10 | 1  |\n| 11 |    |\n| 12 |    |\n| 13 | 2  |\n+----+----+";
        assert_eq!(text, want);
    }

    #[tokio::test]
    async fn other_joins_stay_hash_joins() {
        let small = vec![(Some("a".to_string()), 1)];
        let big = vec![(Some("a".to_string()), 10)];
        for sql in [
            "SELECT * FROM small JOIN big ON small.k = big.k",
            "SELECT * FROM small LEFT JOIN big ON small.k = big.k AND small.v < big.v",
            "SELECT * FROM small RIGHT JOIN big ON small.k = big.k AND small.v = big.v",
            // Not a text key.
            "SELECT * FROM small RIGHT JOIN big ON small.v = big.v",
        ] {
            let (_, plan) = run(true, &small, &big, 4, sql).await;
            assert!(!plan.contains("LookupJoinExec") && plan.contains("HashJoinExec"), "{sql}\n{plan}");
        }
    }
}
