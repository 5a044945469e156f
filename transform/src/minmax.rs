//! `min` and `max` of text by group for the transforms' session, with every group's value kept
//! in one buffer instead of one allocation per group.
//!
//! DataFusion's own accumulator for text (`MinMaxBytesAccumulator`) keeps each group's value in
//! a `Vec<u8>` of its own and, for every batch, finds each group's new value through a hash map
//! of the batch's groups. That is fine for a few groups with many rows; `activity_daily` on a
//! first run has ~900,000 groups of one or two rows each (an account-day) in each of its three
//! aggregations (`min(team_id)`, `min(workspace_id)`, `max(latest_key)`), and the accumulator
//! was 7.7% of the whole run's CPU (bench/RESULTS.md). Here each group's value is a span of one
//! growing byte buffer, compared and replaced row by row; a value that fits where the group's
//! previous one was is written over it, and the buffer is compacted when most of it is garbage.
//!
//! [`register`] replaces the session's `min` and `max` with functions that are DataFusion's in
//! every respect (signature, types, statistics, planning) except the grouped accumulator of
//! text and binary values. Byte-wise order is `str`'s order, so results are the same rows
//! (tested against DataFusion's functions).

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BinaryBuilder, BinaryViewBuilder, BooleanArray, LargeBinaryBuilder, LargeStringBuilder,
    StringBuilder, StringViewBuilder,
};
use datafusion::arrow::compute::nullif;
use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::{Result, ScalarValue, internal_err};
use datafusion::logical_expr::expr::{AggregateFunction, AggregateFunctionParams, WindowFunctionParams};
use datafusion::logical_expr::function::{AccumulatorArgs, AggregateFunctionSimplification, StateFieldsArgs};
use datafusion::logical_expr::utils::AggregateOrderSensitivity;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Documentation, EmitTo, Expr, GroupsAccumulator, Operator,
    ReversedUDAF, SetMonotonicity, Signature, StatisticsArgs,
};
use datafusion::prelude::SessionContext;

/// Replace `min` and `max` in `ctx` with [`BytesMinMax`].
pub(crate) fn register(ctx: &SessionContext) {
    for (inner, is_min) in [
        (datafusion::functions_aggregate::min_max::min_udaf(), true),
        (datafusion::functions_aggregate::min_max::max_udaf(), false),
    ] {
        ctx.register_udaf(AggregateUDF::new_from_impl(BytesMinMax { inner, is_min }));
    }
}

/// DataFusion's `min` or `max` (`inner`), with [`BytesState`] as the grouped accumulator of
/// text and binary values.
#[derive(Debug, PartialEq, Eq, Hash)]
struct BytesMinMax {
    inner: Arc<AggregateUDF>,
    is_min: bool,
}

fn is_bytes(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
    )
}

// Every method delegates to DataFusion's function but the grouped accumulator for bytes.
impl AggregateUDFImpl for BytesMinMax {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn schema_name(&self, params: &AggregateFunctionParams) -> Result<String> {
        self.inner.inner().schema_name(params)
    }

    fn human_display(&self, params: &AggregateFunctionParams) -> Result<String> {
        self.inner.inner().human_display(params)
    }

    fn window_function_schema_name(&self, params: &WindowFunctionParams) -> Result<String> {
        self.inner.inner().window_function_schema_name(params)
    }

    fn display_name(&self, params: &AggregateFunctionParams) -> Result<String> {
        self.inner.inner().display_name(params)
    }

    fn window_function_display_name(&self, params: &WindowFunctionParams) -> Result<String> {
        self.inner.inner().window_function_display_name(params)
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.inner().return_type(arg_types)
    }

    fn return_field(&self, arg_fields: &[FieldRef]) -> Result<FieldRef> {
        self.inner.inner().return_field(arg_fields)
    }

    fn is_nullable(&self) -> bool {
        self.inner.inner().is_nullable()
    }

    fn accumulator(&self, acc_args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        self.inner.inner().accumulator(acc_args)
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        self.inner.inner().state_fields(args)
    }

    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        self.inner.inner().groups_accumulator_supported(args)
    }

    fn create_groups_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn GroupsAccumulator>> {
        let data_type = args.return_field.data_type();
        if is_bytes(data_type) {
            return Ok(Box::new(BytesState::new(data_type.clone(), self.is_min)));
        }
        self.inner.inner().create_groups_accumulator(args)
    }

    fn create_sliding_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        self.inner.inner().create_sliding_accumulator(args)
    }

    fn with_beneficial_ordering(
        self: Arc<Self>,
        beneficial_ordering: bool,
    ) -> Result<Option<Arc<dyn AggregateUDFImpl>>> {
        // Order-insensitive: DataFusion's answer is itself or nothing; ours is this function.
        let answer = Arc::clone(self.inner.inner()).with_beneficial_ordering(beneficial_ordering)?;
        Ok(answer.map(|_| self as Arc<dyn AggregateUDFImpl>))
    }

    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        self.inner.inner().order_sensitivity()
    }

    fn simplify(&self) -> Option<AggregateFunctionSimplification> {
        self.inner.inner().simplify()
    }

    fn simplify_expr_op_literal(
        &self,
        agg_function: &AggregateFunction,
        arg: &Expr,
        op: Operator,
        lit: &Expr,
        arg_is_left: bool,
    ) -> Result<Option<Expr>> {
        self.inner.inner().simplify_expr_op_literal(agg_function, arg, op, lit, arg_is_left)
    }

    fn reverse_expr(&self) -> ReversedUDAF {
        self.inner.inner().reverse_expr()
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.inner().coerce_types(arg_types)
    }

    fn is_descending(&self) -> Option<bool> {
        self.inner.inner().is_descending()
    }

    fn value_from_stats(&self, statistics_args: &StatisticsArgs) -> Option<ScalarValue> {
        self.inner.inner().value_from_stats(statistics_args)
    }

    fn default_value(&self, data_type: &DataType) -> Result<ScalarValue> {
        self.inner.inner().default_value(data_type)
    }

    fn supports_null_handling_clause(&self) -> bool {
        self.inner.inner().supports_null_handling_clause()
    }

    fn supports_within_group_clause(&self) -> bool {
        self.inner.inner().supports_within_group_clause()
    }

    fn set_monotonicity(&self, data_type: &DataType) -> SetMonotonicity {
        self.inner.inner().set_monotonicity(data_type)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.inner().documentation()
    }
}

/// Bytes kept from a text column: valid UTF-8 unless this module has a bug.
fn as_text(v: &[u8]) -> Result<&str> {
    std::str::from_utf8(v).or_else(|e| internal_err!("min/max of text kept invalid UTF-8: {e}"))
}

/// No value yet (every row of the group so far NULL or filtered out).
const NONE: (usize, usize) = (usize::MAX, 0);

/// Garbage the buffer may hold before it is compacted, beyond as much as its live bytes.
const SLACK: usize = 1 << 20;

/// Each group's minimum or maximum so far as a span of `data`.
#[derive(Debug)]
struct BytesState {
    data_type: DataType,
    is_min: bool,
    /// Per group: (offset, length) in `data`, or [`NONE`].
    spans: Vec<(usize, usize)>,
    data: Vec<u8>,
    /// Bytes of `data` some span covers.
    live: usize,
}

impl BytesState {
    fn new(data_type: DataType, is_min: bool) -> BytesState {
        BytesState { data_type, is_min, spans: Vec::new(), data: Vec::new(), live: 0 }
    }

    /// Fold `values` (one per row, `None` for NULL) into `groups`, skipping rows `filter`
    /// leaves out (false or NULL).
    fn fold<'a>(
        &mut self,
        values: impl Iterator<Item = Option<&'a [u8]>>,
        groups: &[usize],
        filter: Option<&BooleanArray>,
        total: usize,
    ) {
        self.spans.resize(total, NONE);
        for (row, (value, &g)) in values.zip(groups).enumerate() {
            let Some(v) = value else { continue };
            if filter.is_some_and(|f| !(f.is_valid(row) && f.value(row))) {
                continue;
            }
            let (at, len) = self.spans[g];
            if (at, len) != NONE {
                let current = &self.data[at..at + len];
                let better = if self.is_min { v < current } else { v > current };
                if !better {
                    continue;
                }
                if v.len() <= len {
                    // Written over the previous value: the group owns that span alone.
                    self.data[at..at + v.len()].copy_from_slice(v);
                    self.spans[g] = (at, v.len());
                    self.live -= len - v.len();
                    continue;
                }
                self.live -= len;
            }
            self.spans[g] = (self.data.len(), v.len());
            self.data.extend_from_slice(v);
            self.live += v.len();
        }
        self.compact_if_mostly_garbage();
    }

    /// Keep only the bytes some group's value covers, once most of `data` is garbage.
    fn compact_if_mostly_garbage(&mut self) {
        if self.data.len() <= 2 * self.live + SLACK {
            return;
        }
        let mut data = Vec::with_capacity(self.live);
        for span in self.spans.iter_mut().filter(|s| **s != NONE) {
            let at = data.len();
            data.extend_from_slice(&self.data[span.0..span.0 + span.1]);
            span.0 = at;
        }
        self.data = data;
    }

    fn update(
        &mut self,
        values: &ArrayRef,
        groups: &[usize],
        filter: Option<&BooleanArray>,
        total: usize,
    ) -> Result<()> {
        fn text<'a>(it: impl Iterator<Item = Option<&'a str>>) -> impl Iterator<Item = Option<&'a [u8]>> {
            it.map(|v| v.map(str::as_bytes))
        }
        if values.data_type() != &self.data_type || values.len() != groups.len() {
            return internal_err!(
                "min/max of {}: a batch of {} values of type {} for {} groups",
                self.data_type,
                values.len(),
                values.data_type(),
                groups.len()
            );
        }
        match &self.data_type {
            DataType::Utf8 => self.fold(text(values.as_string::<i32>().iter()), groups, filter, total),
            DataType::LargeUtf8 => self.fold(text(values.as_string::<i64>().iter()), groups, filter, total),
            DataType::Utf8View => self.fold(text(values.as_string_view().iter()), groups, filter, total),
            DataType::Binary => self.fold(values.as_binary::<i32>().iter(), groups, filter, total),
            DataType::LargeBinary => self.fold(values.as_binary::<i64>().iter(), groups, filter, total),
            DataType::BinaryView => self.fold(values.as_binary_view().iter(), groups, filter, total),
            other => return internal_err!("min/max of bytes called for {other}"),
        }
        Ok(())
    }

    /// The values of the groups `emit_to` names, removed from the state.
    fn emit(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let spans: Vec<(usize, usize)> = match emit_to {
            EmitTo::All => std::mem::take(&mut self.spans),
            EmitTo::First(n) => self.spans.drain(..n.min(self.spans.len())).collect(),
        };
        let bytes = spans.iter().filter(|s| **s != NONE).map(|s| s.1).sum::<usize>();
        let values = spans.iter().map(|&(at, len)| ((at, len) != NONE).then(|| &self.data[at..at + len]));
        let array: ArrayRef = match &self.data_type {
            DataType::Utf8 => {
                let mut b = StringBuilder::with_capacity(spans.len(), bytes);
                for v in values {
                    b.append_option(v.map(as_text).transpose()?);
                }
                Arc::new(b.finish())
            }
            DataType::LargeUtf8 => {
                let mut b = LargeStringBuilder::with_capacity(spans.len(), bytes);
                for v in values {
                    b.append_option(v.map(as_text).transpose()?);
                }
                Arc::new(b.finish())
            }
            DataType::Utf8View => {
                let mut b = StringViewBuilder::with_capacity(spans.len());
                for v in values {
                    b.append_option(v.map(as_text).transpose()?);
                }
                Arc::new(b.finish())
            }
            DataType::Binary => {
                let mut b = BinaryBuilder::with_capacity(spans.len(), bytes);
                values.for_each(|v| b.append_option(v));
                Arc::new(b.finish())
            }
            DataType::LargeBinary => {
                let mut b = LargeBinaryBuilder::with_capacity(spans.len(), bytes);
                values.for_each(|v| b.append_option(v));
                Arc::new(b.finish())
            }
            DataType::BinaryView => {
                let mut b = BinaryViewBuilder::with_capacity(spans.len());
                values.for_each(|v| b.append_option(v));
                Arc::new(b.finish())
            }
            other => return internal_err!("min/max of bytes called for {other}"),
        };
        self.live -= bytes;
        if self.spans.is_empty() {
            self.data.clear();
            self.live = 0;
        } else {
            self.compact_if_mostly_garbage();
        }
        Ok(array)
    }
}

impl GroupsAccumulator for BytesState {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.update(&values[0], group_indices, opt_filter, total_num_groups)
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        self.emit(emit_to)
    }

    /// A minimum or maximum is its own state.
    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        Ok(vec![self.emit(emit_to)?])
    }

    fn merge_batch(&mut self, values: &[ArrayRef], group_indices: &[usize], total_num_groups: usize) -> Result<()> {
        self.update(&values[0], group_indices, None, total_num_groups)
    }

    /// Each row is its own state; rows the filter leaves out become NULL.
    fn convert_to_state(&self, values: &[ArrayRef], opt_filter: Option<&BooleanArray>) -> Result<Vec<ArrayRef>> {
        let Some(filter) = opt_filter else { return Ok(vec![Arc::clone(&values[0])]) };
        let left_out: BooleanArray =
            (0..filter.len()).map(|i| Some(!(filter.is_valid(i) && filter.value(i)))).collect();
        Ok(vec![nullif(&values[0], &left_out)?])
    }

    fn size(&self) -> usize {
        self.data.capacity() + self.spans.capacity() * size_of::<(usize, usize)>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{BooleanArray, Int64Array, StringArray, StringViewArray};
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::arrow::record_batch::RecordBatch;
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::datasource::MemTable;
    use proptest::prelude::*;

    /// Rows of (group, text, keep) in `parts` partitions of batches of `batch` rows, as a table
    /// with the text both as `Utf8` and as `Utf8View`.
    fn table(rows: &[(i64, Option<String>, Option<bool>)], parts: usize, batch: usize) -> MemTable {
        let schema = Arc::new(Schema::new(vec![
            Field::new("g", DataType::Int64, false),
            Field::new("s", DataType::Utf8, true),
            Field::new("v", DataType::Utf8View, true),
            Field::new("k", DataType::Boolean, true),
        ]));
        let mut partitions: Vec<Vec<RecordBatch>> = vec![Vec::new(); parts];
        for (i, chunk) in rows.chunks(batch.max(1)).enumerate() {
            let texts: Vec<Option<&str>> = chunk.iter().map(|r| r.1.as_deref()).collect();
            let b = RecordBatch::try_new(
                Arc::clone(&schema),
                vec![
                    Arc::new(Int64Array::from_iter_values(chunk.iter().map(|r| r.0))),
                    Arc::new(StringArray::from(texts.clone())),
                    Arc::new(StringViewArray::from(texts)),
                    Arc::new(BooleanArray::from(chunk.iter().map(|r| r.2).collect::<Vec<_>>())),
                ],
            )
            .unwrap();
            partitions[i % parts].push(b);
        }
        MemTable::try_new(schema, partitions).unwrap()
    }

    const QUERY: &str = "SELECT g, min(s), max(s), min(v), max(v), \
                         min(v) FILTER (WHERE k), max(s) FILTER (WHERE k), count(*) \
                         FROM t GROUP BY g ORDER BY g";

    async fn answer(ours: bool, rows: &[(i64, Option<String>, Option<bool>)], parts: usize, batch: usize) -> String {
        let config = datafusion::prelude::SessionConfig::new().with_target_partitions(parts).with_batch_size(batch);
        let ctx = SessionContext::new_with_config(config);
        if ours {
            register(&ctx);
        }
        ctx.register_table("t", Arc::new(table(rows, parts, batch))).unwrap();
        let batches = ctx.sql(QUERY).await.unwrap().collect().await.unwrap();
        pretty_format_batches(&batches).unwrap().to_string()
    }

    fn text() -> impl Strategy<Value = Option<String>> {
        // Short and long values sharing prefixes, multi-byte characters, empty text and NULL.
        prop_oneof![
            1 => Just(None),
            1 => Just(Some(String::new())),
            6 => "[ab\u{e9}\u{1F600}]{0,3}".prop_map(Some),
            2 => "[ab]{10,40}".prop_map(Some),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// The same rows as DataFusion's `min` and `max`, with and without FILTER, over several
        /// partitions (partial then final aggregation) and batches.
        #[test]
        fn min_and_max_equal_datafusions(
            rows in proptest::collection::vec((0i64..12, text(), proptest::option::of(any::<bool>())), 0..300),
            parts in 1usize..4,
            batch in 1usize..64,
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let ours = rt.block_on(answer(true, &rows, parts, batch));
            let theirs = rt.block_on(answer(false, &rows, parts, batch));
            prop_assert_eq!(ours, theirs);
        }
    }

    /// The session's `min` and `max` are these, not DataFusion's (else the test above compares
    /// DataFusion with itself).
    #[test]
    fn register_replaces_the_sessions_min_and_max() {
        let ctx = SessionContext::new();
        register(&ctx);
        for name in ["min", "max"] {
            let udf = datafusion::execution::FunctionRegistry::udaf(&ctx.state(), name).unwrap();
            let inner: &dyn std::any::Any = udf.inner().as_ref();
            assert!(inner.downcast_ref::<BytesMinMax>().is_some(), "{name} is DataFusion's");
        }
    }

    fn strings(a: &ArrayRef) -> Vec<Option<String>> {
        a.as_string_view().iter().map(|v| v.map(str::to_owned)).collect()
    }

    /// Emitting the first groups (a sorted aggregation's or a spill's way) renumbers the rest;
    /// growing values past the slack compacts the buffer, and the answer stays right.
    #[test]
    fn first_groups_emitted_and_garbage_compacted() {
        let mut acc = BytesState::new(DataType::Utf8View, false);
        let batch = |v: Vec<Option<&str>>| -> ArrayRef { Arc::new(StringViewArray::from(v)) };
        acc.update_batch(&[batch(vec![Some("b"), Some("a"), None, Some("c")])], &[0, 1, 2, 0], None, 3).unwrap();
        let first = acc.evaluate(EmitTo::First(2)).unwrap();
        assert_eq!(strings(&first), vec![Some("c".to_owned()), Some("a".to_owned())]);
        // Old group 2 is now group 0.
        acc.update_batch(&[batch(vec![Some("x"), Some("y")])], &[0, 1], None, 2).unwrap();
        // Each row longer and greater than the last: every one appended, most of them garbage.
        let long: Vec<String> = (1..3000).map(|n| "z".repeat(n)).collect();
        for v in &long {
            acc.update_batch(&[batch(vec![Some(v.as_str())])], &[1], None, 2).unwrap();
        }
        assert!(acc.data.len() <= 2 * acc.live + SLACK, "{} bytes kept for {} live", acc.data.len(), acc.live);
        let rest = acc.evaluate(EmitTo::All).unwrap();
        assert_eq!(strings(&rest), vec![Some("x".to_owned()), Some("z".repeat(2999))]);
        assert_eq!((acc.spans.len(), acc.live), (0, 0));
    }
}
