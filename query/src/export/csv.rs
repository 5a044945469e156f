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

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Int32Array, Int64Array, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimeUnit};
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
    write_batches(&data.schema, data.batches.iter().cloned().map(Ok), bom, out).map(|_| ())
}

/// The CSV of `batches` as they come (a query's stream: encoding starts with the first batch,
/// while the query still sorts or merges the rest); returns the rows written. An `Err` from
/// `batches` stops the export with that error.
pub(super) fn write_batches(
    schema: &SchemaRef,
    mut batches: impl Iterator<Item = Result<RecordBatch>>,
    bom: bool,
    out: &mut dyn Write,
) -> Result<u64> {
    let err = |e: &dyn std::fmt::Display| QueryError::output(Format::Csv, e);
    if bom {
        out.write_all("\u{feff}".as_bytes()).map_err(|e| err(&e))?;
    }
    let ncols = schema.fields().len();
    let mut rows = 0u64;
    if ncols == 0 {
        // The `csv` crate writes a record without fields as one empty field, `""`: the header
        // and every row.
        out.write_all(b"\"\"\n").map_err(|e| err(&e))?;
        for b in batches {
            for _ in 0..b?.num_rows() {
                out.write_all(b"\"\"\n").map_err(|e| err(&e))?;
                rows += 1;
            }
        }
        return Ok(rows);
    }
    let mut header = Vec::new();
    for (i, f) in schema.fields().iter().enumerate() {
        push_field(&mut header, i, ncols, f.name().as_bytes());
    }
    header.push(b'\n');
    out.write_all(&header).map_err(|e| err(&e))?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, MAX_THREADS);
    // Window by window: the threads encode one window while this thread writes the previous
    // one, so the write overlaps the encoding and only two windows are held at once.
    let window = threads * BATCHES_PER_THREAD;
    let mut pending: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut chunk = Vec::with_capacity(window);
        while chunk.len() < window {
            match batches.next() {
                Some(b) => {
                    let b = b?;
                    if b.num_rows() > 0 {
                        rows += b.num_rows() as u64;
                        chunk.push(b);
                    }
                }
                None => break,
            }
        }
        if chunk.is_empty() {
            break;
        }
        let encoded = if threads == 1 || chunk.len() == 1 {
            for bytes in pending.drain(..) {
                out.write_all(&bytes).map_err(|e| err(&e))?;
            }
            chunk.iter().map(encode).collect::<Result<Vec<_>>>()?
        } else {
            std::thread::scope(|s| -> Result<Vec<Vec<u8>>> {
                let per = chunk.len().div_ceil(threads);
                let handles: Vec<_> =
                    chunk.chunks(per).map(|part| s.spawn(move || part.iter().map(encode).collect())).collect();
                for bytes in pending.drain(..) {
                    out.write_all(&bytes).map_err(|e| err(&e))?;
                }
                let mut all = Vec::with_capacity(chunk.len());
                for h in handles {
                    let part: Result<Vec<Vec<u8>>> = h.join().map_err(|_| err(&"a CSV encoding thread panicked"))?;
                    all.extend(part?);
                }
                Ok(all)
            })?
        };
        pending = encoded;
    }
    for bytes in pending {
        out.write_all(&bytes).map_err(|e| err(&e))?;
    }
    Ok(rows)
}

/// How one column's cells become CSV text.
enum Cells<'a> {
    /// Text (guarded against formulas) read straight from the array.
    Utf8(&'a datafusion::arrow::array::StringArray),
    LargeUtf8(&'a datafusion::arrow::array::LargeStringArray),
    Utf8View(&'a datafusion::arrow::array::StringViewArray),
    /// Lists, structs and binary as their display text, guarded like text.
    Shown(StringArray),
    /// The types every report has many of, written digit by digit in the text Arrow's display
    /// formatter gives them (`true`, `-42`, `2026-06-30`, `2026-06-30T10:11:12.5Z` → see
    /// [`push_timestamp_utc`]) without a formatter call per cell: a review export has 4 million
    /// such cells, which through the formatter were a third of its encoding time. A date or
    /// timestamp outside the years 1–9999 goes through the formatter (the fallback).
    Bool(&'a BooleanArray),
    Int64(&'a Int64Array),
    Int32(&'a Int32Array),
    Date32(&'a Date32Array, ArrayFormatter<'a>),
    TimestampUtc(&'a TimestampMicrosecondArray, ArrayFormatter<'a>),
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
                _ if col.is_null(row) => push_field(&mut out, i, ncols, b""),
                Cells::Bool(a) => push_field(&mut out, i, ncols, if a.value(row) { b"true" } else { b"false" }),
                Cells::Int64(a) => push_int(&mut out, i, a.value(row)),
                Cells::Int32(a) => push_int(&mut out, i, i64::from(a.value(row))),
                Cells::Date32(a, fallback) => {
                    if !push_date(&mut out, i, i64::from(a.value(row))) {
                        push_formatted(&mut out, &mut scratch, fallback, row, i, ncols)?;
                    }
                }
                Cells::TimestampUtc(a, fallback) => {
                    if !push_timestamp_utc(&mut out, i, a.value(row)) {
                        push_formatted(&mut out, &mut scratch, fallback, row, i, ncols)?;
                    }
                }
                Cells::Formatted(f) => push_formatted(&mut out, &mut scratch, f, row, i, ncols)?,
            }
        }
        out.push(b'\n');
    }
    Ok(out)
}

/// A cell through Arrow's display formatter (what `arrow_csv` writes), unguarded.
fn push_formatted(
    out: &mut Vec<u8>,
    scratch: &mut String,
    f: &ArrayFormatter<'_>,
    row: usize,
    i: usize,
    ncols: usize,
) -> Result<()> {
    scratch.clear();
    f.value(row)
        .write(scratch)
        .map_err(|e| QueryError::output(Format::Csv, format!("row {}, column {}: {e}", row + 1, i + 1)))?;
    push_field(out, i, ncols, scratch.as_bytes());
    Ok(())
}

impl Cells<'_> {
    /// Whether the cell is NULL, for the typed cells (text cells check for themselves).
    fn is_null(&self, row: usize) -> bool {
        match self {
            Cells::Bool(a) => a.is_null(row),
            Cells::Int64(a) => a.is_null(row),
            Cells::Int32(a) => a.is_null(row),
            Cells::Date32(a, _) => a.is_null(row),
            Cells::TimestampUtc(a, _) => a.is_null(row),
            // The formatter writes NULL as the empty cell itself.
            Cells::Formatted(_) | Cells::Utf8(_) | Cells::LargeUtf8(_) | Cells::Utf8View(_) | Cells::Shown(_) => false,
        }
    }
}

/// An integer cell (never quoted: digits and a sign only).
fn push_int(out: &mut Vec<u8>, i: usize, v: i64) {
    if i > 0 {
        out.push(b',');
    }
    if v < 0 {
        out.push(b'-');
    }
    let mut n = v.unsigned_abs();
    let mut buf = [0u8; 20];
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[at..]);
}

fn push_digits(out: &mut Vec<u8>, v: u32, width: u32) {
    for k in (0..width).rev() {
        out.push(b'0' + (v / 10u32.pow(k) % 10) as u8);
    }
}

/// `days` since 1970-01-01 as `YYYY-MM-DD` (chrono's `NaiveDate` display, which Arrow uses);
/// false, writing nothing, outside the years 1–9999 (chrono signs or widens those).
fn push_date(out: &mut Vec<u8>, i: usize, days: i64) -> bool {
    use chrono::Datelike;
    // 719,163 days from 0001-01-01 (day 1 of the common era) to 1970-01-01.
    let Some(d) = i32::try_from(days + 719_163).ok().and_then(chrono::NaiveDate::from_num_days_from_ce_opt) else {
        return false;
    };
    if !(1..=9999).contains(&d.year()) {
        return false;
    }
    if i > 0 {
        out.push(b',');
    }
    push_digits(out, d.year() as u32, 4);
    out.push(b'-');
    push_digits(out, d.month(), 2);
    out.push(b'-');
    push_digits(out, d.day(), 2);
    true
}

/// A `Timestamp(Microsecond, "UTC")` as Arrow displays it: RFC 3339 with `Z`, the fraction
/// left out when zero, else 3 digits when whole milliseconds, else 6 (chrono's
/// `SecondsFormat::AutoSi`); false, writing nothing, outside the years 1–9999.
fn push_timestamp_utc(out: &mut Vec<u8>, i: usize, micros: i64) -> bool {
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000) as u32;
    if !push_date(out, i, secs.div_euclid(86_400)) {
        return false;
    }
    let sod = secs.rem_euclid(86_400) as u32;
    out.push(b'T');
    push_digits(out, sod / 3600, 2);
    out.push(b':');
    push_digits(out, sod / 60 % 60, 2);
    out.push(b':');
    push_digits(out, sod % 60, 2);
    if frac != 0 {
        out.push(b'.');
        if frac.is_multiple_of(1000) {
            push_digits(out, frac / 1000, 3);
        } else {
            push_digits(out, frac, 6);
        }
    }
    out.push(b'Z');
    true
}

fn cells<'a>(c: &'a ArrayRef, options: &FormatOptions<'a>) -> std::result::Result<Cells<'a>, String> {
    let formatter = || ArrayFormatter::try_new(c.as_ref(), options).map_err(|e| e.to_string());
    Ok(match c.data_type() {
        DataType::Boolean => Cells::Bool(c.as_boolean()),
        DataType::Int64 => Cells::Int64(c.as_primitive()),
        DataType::Int32 => Cells::Int32(c.as_primitive()),
        DataType::Date32 => Cells::Date32(c.as_primitive(), formatter()?),
        DataType::Timestamp(TimeUnit::Microsecond, Some(tz)) if tz.as_ref() == "UTC" => {
            Cells::TimestampUtc(c.as_primitive(), formatter()?)
        }
        DataType::Utf8 => Cells::Utf8(c.as_string::<i32>()),
        DataType::LargeUtf8 => Cells::LargeUtf8(c.as_string::<i64>()),
        DataType::Utf8View => Cells::Utf8View(c.as_string_view()),
        t if t.is_nested() || matches!(t, DataType::Binary | DataType::LargeBinary) => {
            Cells::Shown(stringify(c, Format::Csv).map_err(|e| e.to_string())?)
        }
        _ => Cells::Formatted(formatter()?),
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

    use datafusion::arrow::array::{Float64Array, LargeStringArray, ListBuilder, StringBuilder, StringViewArray};
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
            Field::new("i32", DataType::Int32, true),
            Field::new(
                "ts_edges",
                DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new("d_edges", DataType::Date32, true),
            Field::new(
                "ts_berlin",
                DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Microsecond, Some("+02:00".into())),
                true,
            ),
        ]));
        // Whole seconds, whole milliseconds, microseconds, before 1970, and the ends of the
        // years 1-9999 on both sides (beyond them the formatter writes the cell).
        let ts_edges = [
            0,
            1_000_000,
            1_500_000,
            1_000_001,
            1_780_000_000_120_000,
            -1,
            -1_000_000,
            -86_400_000_001,
            253_402_300_799_999_999,
            253_402_300_800_000_000,
            -62_135_596_800_000_000,
            -62_135_596_800_000_001,
            -100_000_000_000_000_000,
        ];
        let d_edges = [0, -1, 20_634, 2_932_896, 2_932_897, -719_162, -719_163, 3_000_000, -800_000, 11_016];
        let i32_edges = [0, -1, 7, i32::MAX, i32::MIN, 10, -10, 1_000_000];
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
                    Arc::new(Int32Array::from(
                        (0..n)
                            .map(|i| opt(i + 1).then_some(i32_edges[(i + shift) % i32_edges.len()]))
                            .collect::<Vec<_>>(),
                    )),
                    Arc::new(
                        TimestampMicrosecondArray::from(
                            (0..n)
                                .map(|i| opt(i + 2).then_some(ts_edges[(i + shift) % ts_edges.len()]))
                                .collect::<Vec<_>>(),
                        )
                        .with_timezone("UTC"),
                    ),
                    Arc::new(Date32Array::from(
                        (0..n).map(|i| opt(i + 3).then_some(d_edges[(i + shift) % d_edges.len()])).collect::<Vec<_>>(),
                    )),
                    Arc::new(
                        TimestampMicrosecondArray::from(
                            (0..n).map(|i| opt(i).then_some(ts_edges[(i + shift) % 5])).collect::<Vec<_>>(),
                        )
                        .with_timezone("+02:00"),
                    ),
                ],
            )
            .unwrap()
        };
        // Enough batches for several windows of the threaded path, and one alone; each batch
        // shifts the values so every edge meets a NULL-free row.
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
