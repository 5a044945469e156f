//! CSV: UTF-8 (optionally with a byte-order mark), a header row, text cells guarded against
//! formula injection, and columns CSV has no form for (lists, structs) written as their display
//! text.
//!
//! The writer encodes cells itself rather than through `arrow_csv`: a report of 470,000 rows ×
//! 40 columns is 180 MB of CSV, and going through `arrow_csv` cost a `String` per guarded text
//! cell plus a `fmt` call per cell (a third of `lastseen report review`'s time). Text is copied
//! straight from the Arrow buffers; numbers, booleans, dates and timestamps keep Arrow's display
//! formatter, with the options `arrow_csv` uses, and quoting follows the `csv` crate's
//! `QuoteStyle::Necessary`, so the bytes are the ones `arrow_csv` wrote (a test compares them).
//! Batches are encoded on up to [`MAX_THREADS`] threads and written in order.

use std::io::Write;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};

use super::{Format, ResultSet, stringify};
use crate::{QueryError, Result};

/// Encoding threads at most; the machines lastseen runs on for reports have a few cores, and
/// past two or three the write to the file is the limit.
const MAX_THREADS: usize = 4;

/// Batches one thread encodes before the encoded bytes are written out: bounds the bytes held
/// in memory (a batch is 8,192 rows, a few MB of CSV) while keeping a thread busy long enough.
const BATCHES_PER_THREAD: usize = 2;

/// Spreadsheet apps run a cell starting with one of these as a formula (tab and CR too, which
/// some strip before looking); user-controlled text such as a Slack display name must not
/// become one, so it gets a leading `'`, which they show as text.
#[cfg(test)]
pub(crate) fn guard_formula(s: &str) -> std::borrow::Cow<'_, str> {
    if needs_guard(s) { format!("'{s}").into() } else { s.into() }
}

fn needs_guard(s: &str) -> bool {
    s.starts_with(['=', '+', '-', '@', '\t', '\r'])
}

pub(super) fn write(data: &ResultSet, bom: bool, out: &mut dyn Write) -> Result<()> {
    let err = |e: &dyn std::fmt::Display| QueryError::output(Format::Csv, e);
    if bom {
        out.write_all("\u{feff}".as_bytes()).map_err(|e| err(&e))?;
    }
    let ncols = data.schema.fields().len();
    if ncols == 0 {
        // The `csv` crate writes a record without fields as one empty field, `""`: the header
        // and every row.
        for _ in 0..=data.rows() {
            out.write_all(b"\"\"\n").map_err(|e| err(&e))?;
        }
        return Ok(());
    }
    let mut header = Vec::new();
    for (i, f) in data.schema.fields().iter().enumerate() {
        push_field(&mut header, i, ncols, f.name().as_bytes());
    }
    header.push(b'\n');
    out.write_all(&header).map_err(|e| err(&e))?;
    let batches: Vec<&RecordBatch> = data.batches.iter().filter(|b| b.num_rows() > 0).collect();
    if batches.is_empty() {
        return Ok(());
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, MAX_THREADS);
    if threads == 1 || batches.len() == 1 {
        for b in batches {
            out.write_all(&encode(b)?).map_err(|e| err(&e))?;
        }
        return Ok(());
    }
    // Window by window: the threads encode one window while this thread writes the previous
    // one, so the write overlaps the encoding and only two windows are held at once.
    let window = threads * BATCHES_PER_THREAD;
    let mut pending: Vec<Vec<u8>> = Vec::new();
    for chunk in batches.chunks(window) {
        let encoded = std::thread::scope(|s| -> Result<Vec<Vec<u8>>> {
            let per = chunk.len().div_ceil(threads);
            let handles: Vec<_> =
                chunk.chunks(per).map(|part| s.spawn(move || part.iter().map(|b| encode(b)).collect())).collect();
            for bytes in pending.drain(..) {
                out.write_all(&bytes).map_err(|e| err(&e))?;
            }
            let mut all = Vec::with_capacity(chunk.len());
            for h in handles {
                let part: Result<Vec<Vec<u8>>> = h.join().map_err(|_| err(&"a CSV encoding thread panicked"))?;
                all.extend(part?);
            }
            Ok(all)
        })?;
        pending = encoded;
    }
    for bytes in pending {
        out.write_all(&bytes).map_err(|e| err(&e))?;
    }
    Ok(())
}

/// How one column's cells become CSV text.
enum Cells<'a> {
    /// Text (guarded against formulas) read straight from the array.
    Utf8(&'a datafusion::arrow::array::StringArray),
    LargeUtf8(&'a datafusion::arrow::array::LargeStringArray),
    Utf8View(&'a datafusion::arrow::array::StringViewArray),
    /// Lists, structs and binary as their display text, guarded like text.
    Shown(StringArray),
    /// Everything else as Arrow displays it (what `arrow_csv` writes), unguarded.
    Formatted(ArrayFormatter<'a>),
}

/// Every row of `batch` as CSV records (no header).
fn encode(batch: &RecordBatch) -> Result<Vec<u8>> {
    let err = |e: &dyn std::fmt::Display| QueryError::output(Format::Csv, e);
    // `arrow_csv`'s options: NULL as an empty cell, Arrow's default date and time formats.
    let options = FormatOptions::default().with_null("");
    let cols: Vec<Cells<'_>> = batch
        .columns()
        .iter()
        .map(|c| cells(c, &options))
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| err(&e))?;
    let ncols = cols.len();
    let mut out = Vec::with_capacity(batch.num_rows() * ncols * 12);
    let mut scratch = String::new();
    for row in 0..batch.num_rows() {
        for (i, col) in cols.iter().enumerate() {
            match col {
                Cells::Utf8(a) => push_text(&mut out, i, ncols, a.is_valid(row).then(|| a.value(row))),
                Cells::LargeUtf8(a) => push_text(&mut out, i, ncols, a.is_valid(row).then(|| a.value(row))),
                Cells::Utf8View(a) => push_text(&mut out, i, ncols, a.is_valid(row).then(|| a.value(row))),
                Cells::Shown(a) => push_text(&mut out, i, ncols, a.is_valid(row).then(|| a.value(row))),
                Cells::Formatted(f) => {
                    scratch.clear();
                    f.value(row)
                        .write(&mut scratch)
                        .map_err(|e| err(&format!("row {}, column {}: {e}", row + 1, i + 1)))?;
                    push_field(&mut out, i, ncols, scratch.as_bytes());
                }
            }
        }
        out.push(b'\n');
    }
    Ok(out)
}

fn cells<'a>(c: &'a ArrayRef, options: &FormatOptions<'a>) -> std::result::Result<Cells<'a>, String> {
    Ok(match c.data_type() {
        DataType::Utf8 => Cells::Utf8(c.as_string::<i32>()),
        DataType::LargeUtf8 => Cells::LargeUtf8(c.as_string::<i64>()),
        DataType::Utf8View => Cells::Utf8View(c.as_string_view()),
        t if t.is_nested() || matches!(t, DataType::Binary | DataType::LargeBinary) => {
            Cells::Shown(stringify(c, Format::Csv).map_err(|e| e.to_string())?)
        }
        _ => Cells::Formatted(ArrayFormatter::try_new(c.as_ref(), options).map_err(|e| e.to_string())?),
    })
}

/// A text cell: NULL as an empty cell, a formula lead guarded with `'`.
fn push_text(out: &mut Vec<u8>, i: usize, ncols: usize, v: Option<&str>) {
    match v {
        Some(s) if needs_guard(s) => {
            if i > 0 {
                out.push(b',');
            }
            // The `'` never needs quoting; whether the cell does is decided by the text.
            if needs_quotes(s.as_bytes()) {
                out.extend_from_slice(b"\"'");
                push_quoted(out, s.as_bytes());
                out.push(b'"');
            } else {
                out.push(b'\'');
                out.extend_from_slice(s.as_bytes());
            }
        }
        Some(s) => push_field(out, i, ncols, s.as_bytes()),
        None => push_field(out, i, ncols, b""),
    }
}

/// Field `i` of `ncols`, quoted when it holds a delimiter, quote, CR or LF (quotes doubled), as
/// the `csv` crate's `QuoteStyle::Necessary` does. A record of one empty field is written `""`
/// so it is not a blank line (the `csv` crate's rule too).
fn push_field(out: &mut Vec<u8>, i: usize, ncols: usize, v: &[u8]) {
    if i > 0 {
        out.push(b',');
    }
    if ncols == 1 && v.is_empty() {
        out.extend_from_slice(b"\"\"");
    } else if needs_quotes(v) {
        out.push(b'"');
        push_quoted(out, v);
        out.push(b'"');
    } else {
        out.extend_from_slice(v);
    }
}

fn needs_quotes(v: &[u8]) -> bool {
    v.iter().any(|&b| matches!(b, b',' | b'"' | b'\r' | b'\n'))
}

/// `v` with each `"` doubled (without the enclosing quotes).
fn push_quoted(out: &mut Vec<u8>, v: &[u8]) {
    let mut rest = v;
    while let Some(p) = rest.iter().position(|&b| b == b'"') {
        out.extend_from_slice(&rest[..=p]);
        out.push(b'"');
        rest = &rest[p + 1..];
    }
    out.extend_from_slice(rest);
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{
        BooleanArray, Date32Array, Float64Array, Int64Array, LargeStringArray, ListBuilder, StringBuilder,
        StringViewArray, TimestampMicrosecondArray,
    };
    use datafusion::arrow::compute::cast;
    use datafusion::arrow::csv::WriterBuilder;
    use datafusion::arrow::datatypes::{Field, Schema};

    use super::*;

    /// The writer this module replaced (`arrow_csv` over guarded copies of the text columns):
    /// the bytes the fast writer must reproduce.
    fn reference(data: &ResultSet) -> Vec<u8> {
        let mut out = Vec::new();
        let mut w = WriterBuilder::new().with_header(true).build(&mut out);
        let empty = [RecordBatch::new_empty(data.schema.clone())];
        let batches = if data.batches.is_empty() { &empty[..] } else { &data.batches[..] };
        for b in batches {
            let mut fields = Vec::new();
            let mut cols: Vec<ArrayRef> = Vec::new();
            for (f, c) in b.schema().fields().iter().zip(b.columns()) {
                let text = if matches!(f.data_type(), DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) {
                    Some(cast(c, &DataType::Utf8).unwrap().as_string::<i32>().clone())
                } else if f.data_type().is_nested() {
                    Some(stringify(c, Format::Csv).unwrap())
                } else {
                    None
                };
                match text {
                    Some(s) => {
                        let g: StringArray = s.iter().map(|v| v.map(|v| guard_formula(v).into_owned())).collect();
                        fields.push(Field::new(f.name(), DataType::Utf8, true));
                        cols.push(Arc::new(g));
                    }
                    None => {
                        fields.push(f.as_ref().clone());
                        cols.push(Arc::clone(c));
                    }
                }
            }
            w.write(&RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).unwrap()).unwrap();
        }
        drop(w);
        out
    }

    fn fast(data: &ResultSet) -> Vec<u8> {
        let mut out = Vec::new();
        write(data, false, &mut out).unwrap();
        out
    }

    fn texts() -> Vec<Option<&'static str>> {
        vec![
            Some("plain"),
            None,
            Some(""),
            Some("=1+2"),
            Some("-3"),
            Some("+44, London"),
            Some("@\"quoted\""),
            Some("a,b"),
            Some("say \"hi\""),
            Some("line\nbreak"),
            Some("cr\rhere"),
            Some("\ttab"),
            Some("\r\n"),
            Some("ünïcødé ⇄"),
            Some("\""),
            Some(","),
        ]
    }

    #[test]
    fn the_bytes_are_the_ones_arrow_csv_wrote() {
        let n = texts().len();
        let mut list = ListBuilder::new(StringBuilder::new());
        for i in 0..n {
            match i % 3 {
                0 => list.append_null(),
                1 => {
                    list.values().append_value("=x");
                    list.values().append_value("y,z");
                    list.append(true);
                }
                _ => list.append(true),
            }
        }
        let schema = Arc::new(Schema::new(vec![
            Field::new("utf8", DataType::Utf8, true),
            Field::new("view", DataType::Utf8View, true),
            Field::new("large, \"odd\" name", DataType::LargeUtf8, true),
            Field::new("n", DataType::Int64, true),
            Field::new("f", DataType::Float64, true),
            Field::new("b", DataType::Boolean, true),
            Field::new("d", DataType::Date32, true),
            Field::new(
                "ts",
                DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new(
                "ts_naive",
                DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Microsecond, None),
                true,
            ),
            Field::new("list", DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))), true),
        ]));
        let opt = |i: usize| i % 4 != 1;
        let batch = |shift: usize| {
            let t: Vec<Option<&str>> = (0..n).map(|i| texts()[(i + shift) % n]).collect();
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(StringArray::from(t.clone())),
                    Arc::new(StringViewArray::from(t.clone())),
                    Arc::new(LargeStringArray::from(t)),
                    Arc::new(Int64Array::from((0..n).map(|i| opt(i).then_some(i as i64 - 3)).collect::<Vec<_>>())),
                    Arc::new(Float64Array::from((0..n).map(|i| opt(i).then_some(i as f64 / 3.0)).collect::<Vec<_>>())),
                    Arc::new(BooleanArray::from((0..n).map(|i| opt(i).then_some(i % 2 == 0)).collect::<Vec<_>>())),
                    Arc::new(Date32Array::from(
                        (0..n).map(|i| opt(i).then_some(20_000 + i as i32)).collect::<Vec<_>>(),
                    )),
                    Arc::new(
                        TimestampMicrosecondArray::from(
                            (0..n).map(|i| opt(i).then_some(1_700_000_000_123_456 + i as i64)).collect::<Vec<_>>(),
                        )
                        .with_timezone("UTC"),
                    ),
                    Arc::new(TimestampMicrosecondArray::from(
                        (0..n).map(|i| opt(i).then_some(1_700_000_000_000_000 + i as i64)).collect::<Vec<_>>(),
                    )),
                    Arc::new(list.finish_cloned()),
                ],
            )
            .unwrap()
        };
        // Enough batches for several windows of the threaded path, and one alone.
        for count in [1, 2, 3, 7, 40] {
            let data = ResultSet::new(schema.clone(), (0..count).map(batch).collect());
            assert_eq!(
                String::from_utf8(fast(&data)).unwrap(),
                String::from_utf8(reference(&data)).unwrap(),
                "{count}"
            );
        }
        // No batches: the header alone.
        let data = ResultSet::new(schema.clone(), Vec::new());
        assert_eq!(fast(&data), reference(&data));
    }

    #[test]
    fn a_result_without_columns_is_one_empty_field_per_record() {
        // (`arrow_csv` refused such a batch; the `csv` crate writes an empty record as `""`.)
        let schema = Arc::new(Schema::empty());
        let options = datafusion::arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(2));
        let b = RecordBatch::try_new_with_options(schema.clone(), vec![], &options).unwrap();
        assert_eq!(fast(&ResultSet::new(schema.clone(), vec![])), b"\"\"\n");
        assert_eq!(fast(&ResultSet::new(schema, vec![b])), b"\"\"\n\"\"\n\"\"\n");
    }

    #[test]
    fn a_single_column_keeps_empty_cells_visible() {
        let schema = Arc::new(Schema::new(vec![Field::new("", DataType::Utf8, true)]));
        let b = RecordBatch::try_new(schema.clone(), vec![Arc::new(StringArray::from(texts()))]).unwrap();
        let data = ResultSet::new(schema, vec![b.clone(), b]);
        assert_eq!(String::from_utf8(fast(&data)).unwrap(), String::from_utf8(reference(&data)).unwrap());
    }
}
