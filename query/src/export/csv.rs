//! CSV: UTF-8 (optionally with a byte-order mark), a header row, text cells guarded against
//! formula injection, and columns CSV has no form for (lists, structs) written as their display
//! text.
//!
//! The writer encodes cells itself rather than through `arrow_csv`: a report of 470,000 rows ×
//! 40 columns is 180 MB of CSV, and going through `arrow_csv` cost a `String` per guarded text
//! cell plus a `fmt` call per cell (a third of `lastseen report review`'s time). Text is copied
//! straight from the Arrow buffers; numbers, booleans, dates and timestamps are written in the
//! text Arrow's display formatter gives them (other types go through that formatter, with the
//! options `arrow_csv` uses), and quoting follows the `csv` crate's `QuoteStyle::Necessary`, so
//! the bytes are the ones `arrow_csv` wrote (a test compares them).
//!
//! A batch is encoded a block of rows at a time, column by column: one pass measures every cell
//! of a column, the next writes it at its row's place in the block. Each pass is a loop over one
//! array of one type, with no per-cell choice of type and no growth checks of the output; cell by
//! cell, row by row, the encoder was ~45 ns a cell and a third of `lastseen report dormant`'s CPU.
//! Batches are encoded on up to [`MAX_THREADS`] threads and written in order.

use std::io::Write;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Int32Array, Int64Array, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};

use datafusion::common::utils::memory::RecordBatchMemoryCounter;
use datafusion::execution::TaskContext;

use super::{Format, ResultSet, stringify};
use crate::sort::{GatherSortExec, Sorted};
use crate::{QueryError, Result};

/// Encoding threads at most; the machines lastseen runs on for reports have a few cores, and
/// past two or three the write to the file is the limit.
const MAX_THREADS: usize = 4;

/// Batches one thread encodes before the encoded bytes are written out: bounds the bytes held
/// in memory (a batch is 8,192 rows, a few MB of CSV) while keeping a thread busy long enough.
const BATCHES_PER_THREAD: usize = 2;

/// Rows measured and written together, column by column: a block of a 40-column report is
/// ~400 KB of CSV, so the passes over it stay in the cache.
const BLOCK_ROWS: usize = 1024;

/// Spreadsheet apps run a cell starting with one of these as a formula (tab and CR too, which
/// some strip before looking); user-controlled text such as a Slack display name must not
/// become one, so it gets a leading `'`, which they show as text.
#[cfg(test)]
pub(crate) fn guard_formula(s: &str) -> std::borrow::Cow<'_, str> {
    if needs_guard(s.as_bytes()) { format!("'{s}").into() } else { s.into() }
}

fn needs_guard(s: &[u8]) -> bool {
    matches!(s.first(), Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r'))
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
    let err = |e: std::io::Error| QueryError::write(Format::Csv, e);
    write_bom(bom, out)?;
    let ncols = schema.fields().len();
    let mut rows = 0u64;
    if ncols == 0 {
        // The `csv` crate writes a record without fields as one empty field, `""`: the header
        // and every row.
        out.write_all(b"\"\"\n").map_err(err)?;
        for b in batches {
            for _ in 0..b?.num_rows() {
                out.write_all(b"\"\"\n").map_err(err)?;
                rows += 1;
            }
        }
        return Ok(rows);
    }
    out.write_all(&header(schema)).map_err(err)?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, MAX_THREADS);
    // Window by window: the threads encode one window while this thread writes the previous
    // one, so the write overlaps the encoding and only two windows are held at once. The output
    // buffers and each thread's scratch are reused from window to window (fresh ones of a few MB
    // each time were page faults the kernel had to zero).
    let window = threads * BATCHES_PER_THREAD;
    let mut scratch: Vec<Scratch> = (0..threads).map(|_| Scratch::default()).collect();
    let mut free: Vec<Vec<u8>> = Vec::new();
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
        let mut bufs: Vec<Vec<u8>> = (0..chunk.len()).map(|_| free.pop().unwrap_or_default()).collect();
        if threads == 1 || chunk.len() == 1 {
            for bytes in pending.drain(..) {
                out.write_all(&bytes).map_err(err)?;
                free.push(bytes);
            }
            for (b, buf) in chunk.iter().zip(bufs.iter_mut()) {
                encode(b, buf, &mut scratch[0])?;
            }
        } else {
            std::thread::scope(|s| -> Result<()> {
                let per = chunk.len().div_ceil(threads);
                let handles: Vec<_> = chunk
                    .chunks(per)
                    .zip(bufs.chunks_mut(per))
                    .zip(scratch.iter_mut())
                    .map(|((part, bufs), scratch)| {
                        s.spawn(move || -> Result<()> {
                            for (b, buf) in part.iter().zip(bufs.iter_mut()) {
                                encode(b, buf, scratch)?;
                            }
                            Ok(())
                        })
                    })
                    .collect();
                for bytes in pending.drain(..) {
                    out.write_all(&bytes).map_err(err)?;
                    free.push(bytes);
                }
                for h in handles {
                    h.join().map_err(|_| QueryError::output(Format::Csv, "a CSV encoding thread panicked"))??;
                }
                Ok(())
            })?;
        }
        pending = bufs;
    }
    for bytes in pending {
        out.write_all(&bytes).map_err(err)?;
    }
    Ok(rows)
}

/// The byte-order mark some spreadsheet programs need to read UTF-8, when asked for.
fn write_bom(bom: bool, out: &mut dyn Write) -> Result<()> {
    if bom {
        out.write_all("\u{feff}".as_bytes()).map_err(|e| QueryError::write(Format::Csv, e))?;
    }
    Ok(())
}

/// The header record: the columns' names.
fn header(schema: &SchemaRef) -> Vec<u8> {
    let ncols = schema.fields().len();
    let mut header = Vec::new();
    for (i, f) in schema.fields().iter().enumerate() {
        push_field(&mut header, i, ncols, f.name().as_bytes());
    }
    header.push(b'\n');
    header
}

/// Byte strings one after another in one buffer: an input batch of a sorted export as CSV
/// records in the batch's order, or a column's cells as Arrow's formatter wrote them.
#[derive(Default)]
pub(super) struct Spans {
    bytes: Vec<u8>,
    /// `ends[r]` is where string `r` ends in `bytes` (it starts where string `r - 1` ends).
    ends: Vec<usize>,
}

impl Spans {
    fn get(&self, r: usize) -> &[u8] {
        let start = if r == 0 { 0 } else { self.ends[r - 1] };
        &self.bytes[start..self.ends[r]]
    }
}

/// A batch's CSV records (see [`encode_sorted`]).
pub(super) type Records = Spans;

/// The rows of `sort`'s input as CSV records, in the sort's order: each input batch is encoded
/// as it arrives (on up to [`MAX_THREADS`] threads, while the query still reads and joins the
/// rest) and the records are written in order by [`write_sorted`]. The bytes are those of
/// [`write_batches`] over the sort's output (a record's text depends only on its cells); what
/// this saves is copying every row twice on the way, once into its batch's order and once into
/// the output batches (`report review`: 470,000 rows of 40 columns, ~500 MB each time), and the
/// page faults of those copies. The input needs at least one column (a record without fields is
/// written differently).
pub(super) async fn encode_sorted(
    sort: &GatherSortExec,
    context: std::sync::Arc<TaskContext>,
) -> Result<Sorted<Records>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, MAX_THREADS);
    let encoders = Encoders::start(threads)?;
    let send = encoders.sender.clone();
    let mut retained = RecordBatchMemoryCounter::new();
    let mut next = 0;
    // The sort keeps each batch's number; its records come from the encoders at the end. The
    // reservation is the batch's own size: it is held until encoded, and its CSV is smaller.
    let sorted = sort
        .sort_with(context, move |batch, _perm| {
            let size = retained.count_batch(&batch);
            let n = next;
            next += 1;
            // A send fails only when every encoder stopped at an error, which `finish` returns.
            let _ = send.send((n, batch));
            Ok((n, size))
        })
        .await;
    let records = encoders.finish();
    let sorted = sorted?;
    let mut records = records?;
    sorted.map_kept(|n| {
        records
            .get_mut(n)
            .and_then(Option::take)
            .ok_or_else(|| QueryError::output(Format::Csv, "a batch was not encoded"))
    })
}

/// The threads that encode a sorted export's batches: each takes the next batch from one queue
/// when it is done with its last, so when the query's rows end they finish together (dealt out
/// in turn, batch `n` to thread `n % threads`, one thread was still encoding its backlog for
/// ~0.1 s of `report review` after the other had stopped).
struct Encoders {
    sender: std::sync::mpsc::Sender<(usize, RecordBatch)>,
    threads: Vec<std::thread::JoinHandle<Result<Encoded>>>,
}

/// What an encoding thread encoded: each batch's number and records.
type Encoded = Vec<(usize, Records)>;

impl Encoders {
    fn start(threads: usize) -> Result<Encoders> {
        let (sender, queue) = std::sync::mpsc::channel::<(usize, RecordBatch)>();
        let queue = std::sync::Arc::new(std::sync::Mutex::new(queue));
        let mut handles = Vec::with_capacity(threads);
        for _ in 0..threads {
            let queue = std::sync::Arc::clone(&queue);
            let thread = std::thread::Builder::new().name("csv-encode".into()).spawn(move || {
                let mut scratch = Scratch::default();
                let mut done = Vec::new();
                // Each batch's records in one allocation, sized from the batch before (most
                // batches have the query's batch size of rows).
                let mut guess = 0;
                // The lock is held only while waiting for a batch; `None` once the sender is
                // dropped (or a thread panicked holding it, which `finish` reports).
                let next = || queue.lock().ok().and_then(|q| q.recv().ok());
                while let Some((n, batch)) = next() {
                    let mut bytes = Vec::with_capacity(guess);
                    encode(&batch, &mut bytes, &mut scratch)?;
                    guess = bytes.len() + bytes.len() / 8;
                    done.push((n, Spans { bytes, ends: std::mem::take(&mut scratch.ends) }));
                }
                Ok(done)
            });
            let thread =
                thread.map_err(|e| QueryError::output(Format::Csv, format!("starting an encoding thread: {e}")))?;
            handles.push(thread);
        }
        Ok(Encoders { sender, threads: handles })
    }

    /// Every batch's records by its number, once the threads have encoded all they were sent;
    /// the first error of a thread if one failed.
    fn finish(self) -> Result<Vec<Option<Records>>> {
        drop(self.sender);
        let mut records = Vec::new();
        for thread in self.threads {
            let done =
                thread.join().map_err(|_| QueryError::output(Format::Csv, "a CSV encoding thread panicked"))??;
            for (n, r) in done {
                if records.len() <= n {
                    records.resize_with(n + 1, || None);
                }
                records[n] = Some(r);
            }
        }
        Ok(records)
    }
}

/// A sorted export's CSV (see [`encode_sorted`]): the header, then every record in order;
/// returns the rows written.
pub(super) fn write_sorted(
    schema: &SchemaRef,
    sorted: &Sorted<Records>,
    bom: bool,
    out: &mut dyn Write,
) -> Result<u64> {
    let err = |e: std::io::Error| QueryError::write(Format::Csv, e);
    write_bom(bom, out)?;
    out.write_all(&header(schema)).map_err(err)?;
    // A write per record: `out` buffers (an export file's writer copies into its blocks, which
    // gathering the records into a buffer of our own first copied a second time).
    for &(run, i) in &sorted.order {
        let run = &sorted.runs[run as usize];
        out.write_all(run.kept.get(run.perm.value(i as usize) as usize)).map_err(err)?;
    }
    Ok(sorted.order.len() as u64)
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
    /// [`put_timestamp_utc`]) without a formatter call per cell: a review export has 4 million
    /// such cells, which through the formatter were a third of its encoding time. A block with
    /// a date or timestamp outside the years 1–9999 goes through the formatter (the fallback).
    Bool(&'a BooleanArray),
    Int64(&'a Int64Array),
    Int32(&'a Int32Array),
    Date32(&'a Date32Array, ArrayFormatter<'a>),
    TimestampUtc(&'a TimestampMicrosecondArray, ArrayFormatter<'a>),
    /// Everything else as Arrow displays it (what `arrow_csv` writes), unguarded.
    Formatted(ArrayFormatter<'a>),
}

/// An encoding thread's buffers, kept from batch to batch.
#[derive(Default)]
struct Scratch {
    /// The encoded length of each cell of a block, column after column (`col * rows + row`).
    lens: Vec<usize>,
    /// Per row of the block: its length while measuring, then where its next cell goes.
    pos: Vec<usize>,
    /// Per column: the block's cells as a formatter wrote them, when it did (see [`Rendered`]).
    rendered: Vec<Rendered>,
    text: String,
    /// Where each row of the last batch encoded ends in its output.
    ends: Vec<usize>,
}

/// A column's cells for one block written by Arrow's display formatter: the types without a
/// writer of their own, and dates and timestamps outside the years 1–9999.
#[derive(Default)]
struct Rendered {
    used: bool,
    /// Each row's text.
    cells: Spans,
}

/// Every row of `batch` as CSV records (no header), in `out` (cleared first).
fn encode(batch: &RecordBatch, out: &mut Vec<u8>, s: &mut Scratch) -> Result<()> {
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
    // A record of one empty field is written `""` so it is not a blank line (the `csv` crate's
    // rule): the empty cell of a one-column result is two bytes long.
    let empty = if ncols == 1 { 2 } else { 0 };
    out.clear();
    s.ends.clear();
    if s.rendered.len() < ncols {
        s.rendered.resize_with(ncols, Rendered::default);
    }
    let n = batch.num_rows();
    for start in (0..n).step_by(BLOCK_ROWS) {
        let rows = BLOCK_ROWS.min(n - start);
        let block = start..start + rows;
        s.lens.clear();
        s.lens.resize(ncols * rows, 0);
        s.pos.clear();
        // Each row's separators: a comma after each cell but the last, a newline after it.
        s.pos.resize(rows, ncols);
        // Measure, column by column.
        for (c, col) in cols.iter().enumerate() {
            let lens = &mut s.lens[c * rows..(c + 1) * rows];
            let rendered = &mut s.rendered[c];
            // Measured by the column's own writer, or not: the formatter's types, and a date or
            // timestamp block with a value its writer cannot write (outside the years 1–9999).
            let measured = match col {
                Cells::Utf8(a) => measure_string(lens, &block, a, empty),
                Cells::LargeUtf8(a) => measure_string(lens, &block, a, empty),
                Cells::Utf8View(a) => {
                    measure_view(lens, block.clone(), a, empty);
                    true
                }
                Cells::Shown(a) => measure_string(lens, &block, a, empty),
                Cells::Bool(a) => measure(lens, block.clone(), a, |r| Some(if a.value(r) { 4 } else { 5 }), empty),
                Cells::Int64(a) => measure(lens, block.clone(), a, |r| Some(int_len(a.value(r))), empty),
                Cells::Int32(a) => measure(lens, block.clone(), a, |r| Some(int_len(i64::from(a.value(r)))), empty),
                Cells::Date32(a, _) => {
                    measure(lens, block.clone(), a, |r| date_in_range(i64::from(a.value(r))).then_some(10), empty)
                }
                Cells::TimestampUtc(a, _) => measure(lens, block.clone(), a, |r| timestamp_len(a.value(r)), empty),
                Cells::Formatted(_) => false,
            };
            rendered.used = !measured;
            if rendered.used {
                let f = match col {
                    Cells::Formatted(f) | Cells::Date32(_, f) | Cells::TimestampUtc(_, f) => f,
                    _ => unreachable!("only these columns are rendered"),
                };
                render(f, block.clone(), rendered, &mut s.text, c)?;
                for (r, len) in lens.iter_mut().enumerate() {
                    *len = text_len(rendered.cells.get(r), false, empty);
                }
            }
            for (p, len) in s.pos.iter_mut().zip(lens.iter()) {
                *p += len;
            }
        }
        // Where each row starts.
        let mut at = out.len();
        for p in &mut s.pos {
            let len = *p;
            *p = at;
            at += len;
        }
        out.resize(at, 0);
        // Write, column by column, each cell at its row's next place.
        for (c, col) in cols.iter().enumerate() {
            let lens = &s.lens[c * rows..(c + 1) * rows];
            let sep = if c + 1 == ncols { b'\n' } else { b',' };
            let rendered = &s.rendered[c];
            if rendered.used {
                place(&mut s.pos, out, lens, sep, |cell, r| put_text(cell, rendered.cells.get(r), false));
                continue;
            }
            match col {
                Cells::Utf8(a) => place(&mut s.pos, out, lens, sep, |cell, r| {
                    put_text_opt(cell, a.is_valid(start + r).then(|| a.value(start + r)));
                }),
                Cells::LargeUtf8(a) => place(&mut s.pos, out, lens, sep, |cell, r| {
                    put_text_opt(cell, a.is_valid(start + r).then(|| a.value(start + r)));
                }),
                Cells::Utf8View(a) => place(&mut s.pos, out, lens, sep, |cell, r| {
                    put_text_opt(cell, a.is_valid(start + r).then(|| a.value(start + r)));
                }),
                Cells::Shown(a) => place(&mut s.pos, out, lens, sep, |cell, r| {
                    put_text_opt(cell, a.is_valid(start + r).then(|| a.value(start + r)));
                }),
                Cells::Bool(a) => place(&mut s.pos, out, lens, sep, |cell, r| {
                    put_null_or(cell, a, start + r, |cell, v| {
                        cell.copy_from_slice(if a.value(v) { b"true" } else { b"false" });
                    });
                }),
                Cells::Int64(a) => place(&mut s.pos, out, lens, sep, |cell, r| {
                    put_null_or(cell, a, start + r, |cell, v| put_int(cell, a.value(v)));
                }),
                Cells::Int32(a) => place(&mut s.pos, out, lens, sep, |cell, r| {
                    put_null_or(cell, a, start + r, |cell, v| put_int(cell, i64::from(a.value(v))));
                }),
                Cells::Date32(a, _) => place(&mut s.pos, out, lens, sep, |cell, r| {
                    put_null_or(cell, a, start + r, |cell, v| put_date(cell, i64::from(a.value(v))));
                }),
                Cells::TimestampUtc(a, _) => place(&mut s.pos, out, lens, sep, |cell, r| {
                    put_null_or(cell, a, start + r, |cell, v| put_timestamp_utc(cell, a.value(v)));
                }),
                Cells::Formatted(_) => unreachable!("formatted columns are rendered"),
            }
        }
        // Every cell placed, each row's next place is the end of its record.
        s.ends.extend_from_slice(&s.pos);
    }
    Ok(())
}

/// A column's cells of a block, each at its row's next place in `out` and followed by `sep`;
/// `put` writes row `r`'s cell into the `lens[r]` bytes it is given.
fn place(pos: &mut [usize], out: &mut [u8], lens: &[usize], sep: u8, mut put: impl FnMut(&mut [u8], usize)) {
    for (r, (p, &len)) in pos.iter_mut().zip(lens).enumerate() {
        let cell = &mut out[*p..=*p + len];
        put(&mut cell[..len], r);
        cell[len] = sep;
        *p += len + 1;
    }
}

/// The block's cells of a column through Arrow's display formatter (what `arrow_csv` writes).
fn render(
    f: &ArrayFormatter<'_>,
    block: std::ops::Range<usize>,
    into: &mut Rendered,
    scratch: &mut String,
    col: usize,
) -> Result<()> {
    into.cells.bytes.clear();
    into.cells.ends.clear();
    for r in block {
        scratch.clear();
        f.value(r)
            .write(scratch)
            .map_err(|e| QueryError::output(Format::Csv, format!("row {}, column {}: {e}", r + 1, col + 1)))?;
        into.cells.bytes.extend_from_slice(scratch.as_bytes());
        into.cells.ends.push(into.cells.bytes.len());
    }
    Ok(())
}

/// The lengths of a text column's cells: guarded, quoted when needed; NULL as an empty cell.
/// `plain`: no cell of the block holds a byte that needs quoting (see [`block_is_plain`]), so
/// none is looked at for one.
fn measure_text<'a>(
    lens: &mut [usize],
    block: std::ops::Range<usize>,
    get: impl Fn(usize) -> Option<&'a str>,
    empty: usize,
    plain: bool,
) {
    if plain {
        for (len, r) in lens.iter_mut().zip(block) {
            *len = match get(r) {
                Some("") | None => empty,
                Some(v) => v.len() + usize::from(needs_guard(v.as_bytes())),
            };
        }
        return;
    }
    for (len, r) in lens.iter_mut().zip(block) {
        *len = match get(r) {
            Some(v) => text_len(v.as_bytes(), true, empty),
            None => empty,
        };
    }
}

/// [`measure_text`] over a string array's block, told whether the block has a byte to quote.
/// Always measured (true), as every text column is.
fn measure_string<O: datafusion::arrow::array::OffsetSizeTrait>(
    lens: &mut [usize],
    block: &std::ops::Range<usize>,
    a: &datafusion::arrow::array::GenericStringArray<O>,
    empty: usize,
) -> bool {
    let plain = block_is_plain(a, block);
    measure_text(lens, block.clone(), |r| a.is_valid(r).then(|| a.value(r)), empty, plain);
    true
}

/// Whether no cell of a string array's block holds a delimiter, quote, CR or LF: one SIMD scan
/// (`memchr`) of the bytes the block's cells span, instead of a look at each cell. Most report
/// columns (ids, emails, names, dates as text) have none in a whole block.
fn block_is_plain<O: datafusion::arrow::array::OffsetSizeTrait>(
    a: &datafusion::arrow::array::GenericStringArray<O>,
    block: &std::ops::Range<usize>,
) -> bool {
    let offsets = a.value_offsets();
    let (from, to) = (offsets[block.start].as_usize(), offsets[block.end].as_usize());
    let bytes = &a.value_data()[from..to];
    memchr::memchr3(b',', b'"', b'\n', bytes).is_none() && memchr::memchr(b'\r', bytes).is_none()
}

/// [`measure_text`] over a view array's block. A cell of up to 12 bytes is held in its view (a
/// `u128`: the length, then the bytes): its length, first byte and whether it holds a byte to
/// quote are read from the view with word-wide compares, where going through `&str` and a byte
/// loop per cell was most of the encoder's time on `report review` (its ~30 text columns are
/// `Utf8View`, and most of their cells are short). Longer cells are measured from their buffer.
fn measure_view(
    lens: &mut [usize],
    block: std::ops::Range<usize>,
    a: &datafusion::arrow::array::StringViewArray,
    empty: usize,
) {
    let views = a.views();
    for (len, r) in lens.iter_mut().zip(block) {
        let view = views[r];
        let n = view as u32 as usize;
        *len = if n == 0 || a.is_null(r) {
            empty
        } else if n <= 12 {
            let data = view >> 32;
            if inline_needs_quotes(data, n) {
                text_len(&view.to_le_bytes()[4..4 + n], true, empty)
            } else {
                n + usize::from(needs_guard(&[data as u8]))
            }
        } else {
            text_len(a.value(r).as_bytes(), true, empty)
        };
    }
}

/// Whether the first `n` (1–12) bytes of `data`, an inline view's bytes from the lowest, hold a
/// delimiter, quote, CR or LF: per byte looked for, a zero-byte test of the word XORed with it.
fn inline_needs_quotes(data: u128, n: usize) -> bool {
    const ONES: u128 = u128::from_le_bytes([1; 16]);
    const HIGHS: u128 = ONES << 7;
    // The bytes past the cell become 0xFF, which is none of the bytes looked for.
    let x = data | (u128::MAX << (8 * n));
    [b',', b'"', b'\r', b'\n'].into_iter().any(|b| {
        let y = x ^ (ONES * u128::from(b));
        y.wrapping_sub(ONES) & !y & HIGHS != 0
    })
}

/// The lengths of a typed column's cells (`len` of a valid one); NULL as an empty cell. False,
/// at the first valid cell `len` cannot write (the block then goes through the formatter).
fn measure<A: Array>(
    lens: &mut [usize],
    block: std::ops::Range<usize>,
    a: &A,
    len: impl Fn(usize) -> Option<usize>,
    empty: usize,
) -> bool {
    for (l, r) in lens.iter_mut().zip(block) {
        *l = if a.is_valid(r) {
            match len(r) {
                Some(n) => n,
                None => return false,
            }
        } else {
            empty
        };
    }
    true
}

/// A text cell's encoded length: a leading `'` if `guard`ed and it starts like a formula, two
/// quotes and a second of each `"` when it holds a delimiter, quote, CR or LF; `empty` when it
/// is empty. [`put_text`] reads back from the length which of these it got.
fn text_len(v: &[u8], guard: bool, empty: usize) -> usize {
    let lead = usize::from(guard && needs_guard(v));
    if needs_quotes(v) {
        v.len() + lead + 2 + v.iter().filter(|&&b| b == b'"').count()
    } else if v.is_empty() {
        empty
    } else {
        v.len() + lead
    }
}

/// A text cell into `cell`, which [`text_len`] sized: as it is, after a `'`, or quoted.
fn put_text(cell: &mut [u8], v: &[u8], guard: bool) {
    if cell.len() == v.len() {
        cell.copy_from_slice(v);
    } else if cell.len() == v.len() + 1 {
        // Guarded only: quoting adds at least two bytes.
        cell[0] = b'\'';
        cell[1..].copy_from_slice(v);
    } else {
        // Quoted; the `'` of a guarded cell never needs quoting itself (and the empty cell of a
        // one-column result is `""`).
        let mut at = 1;
        cell[0] = b'"';
        if guard && needs_guard(v) {
            cell[1] = b'\'';
            at = 2;
        }
        for &b in v {
            cell[at] = b;
            at += 1;
            if b == b'"' {
                cell[at] = b'"';
                at += 1;
            }
        }
        cell[at] = b'"';
    }
}

/// A guarded text cell, NULL as the empty cell.
fn put_text_opt(cell: &mut [u8], v: Option<&str>) {
    match v {
        Some(v) => put_text(cell, v.as_bytes(), true),
        None if !cell.is_empty() => cell.copy_from_slice(b"\"\""),
        None => {}
    }
}

/// A typed cell: `put` for a valid one, the empty cell (`""` alone in its record) for NULL.
fn put_null_or<A: Array>(cell: &mut [u8], a: &A, r: usize, put: impl FnOnce(&mut [u8], usize)) {
    if a.is_valid(r) {
        put(cell, r);
    } else if !cell.is_empty() {
        cell.copy_from_slice(b"\"\"");
    }
}

/// The digits of an integer, with its sign.
fn int_len(v: i64) -> usize {
    let mut n = v.unsigned_abs();
    let mut digits = 1;
    while n >= 10 {
        n /= 10;
        digits += 1;
    }
    digits + usize::from(v < 0)
}

/// An integer cell (never quoted: digits and a sign only) into `cell`, which [`int_len`] sized.
fn put_int(cell: &mut [u8], v: i64) {
    let mut n = v.unsigned_abs();
    for b in cell.iter_mut().rev() {
        *b = b'0' + (n % 10) as u8;
        n /= 10;
    }
    if v < 0 {
        cell[0] = b'-';
    }
}

fn put_digits(cell: &mut [u8], mut v: u32) {
    for b in cell.iter_mut().rev() {
        *b = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// Days since 1970-01-01 of 0001-01-01 and of 9999-12-31: chrono's `NaiveDate` display (which
/// Arrow uses) signs or widens years outside them, so those dates go through the formatter.
const FIRST_DAY: i64 = -719_162;
const LAST_DAY: i64 = 2_932_896;

fn date_in_range(days: i64) -> bool {
    (FIRST_DAY..=LAST_DAY).contains(&days)
}

/// `days` since 1970-01-01 as `YYYY-MM-DD` into a 10-byte `cell` (in range: [`date_in_range`]).
/// The civil date of a day count by the proleptic Gregorian calendar's 400-year cycles of
/// 146,097 days (Howard Hinnant's `civil_from_days`), counted from 0000-03-01 so the leap day
/// ends each year.
fn put_date(cell: &mut [u8], days: i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    put_digits(&mut cell[0..4], year as u32);
    cell[4] = b'-';
    put_digits(&mut cell[5..7], month as u32);
    cell[7] = b'-';
    put_digits(&mut cell[8..10], day as u32);
}

/// The length of a `Timestamp(Microsecond, "UTC")` as Arrow displays it: RFC 3339 with `Z`, the
/// fraction left out when zero, else 3 digits when whole milliseconds, else 6 (chrono's
/// `SecondsFormat::AutoSi`); `None` outside the years 1–9999.
fn timestamp_len(micros: i64) -> Option<usize> {
    let secs = micros.div_euclid(1_000_000);
    if !date_in_range(secs.div_euclid(86_400)) {
        return None;
    }
    let frac = micros.rem_euclid(1_000_000);
    Some(if frac == 0 {
        20
    } else if frac % 1000 == 0 {
        24
    } else {
        27
    })
}

/// A `Timestamp(Microsecond, "UTC")` into `cell`, which [`timestamp_len`] sized.
fn put_timestamp_utc(cell: &mut [u8], micros: i64) {
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000) as u32;
    put_date(&mut cell[0..10], secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400) as u32;
    cell[10] = b'T';
    put_digits(&mut cell[11..13], sod / 3600);
    cell[13] = b':';
    put_digits(&mut cell[14..16], sod / 60 % 60);
    cell[16] = b':';
    put_digits(&mut cell[17..19], sod % 60);
    match cell.len() {
        24 => {
            cell[19] = b'.';
            put_digits(&mut cell[20..23], frac / 1000);
        }
        27 => {
            cell[19] = b'.';
            put_digits(&mut cell[20..26], frac);
        }
        _ => {}
    }
    cell[cell.len() - 1] = b'Z';
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

/// Field `i` of `ncols` (the header's), quoted when it holds a delimiter, quote, CR or LF
/// (quotes doubled), as the `csv` crate's `QuoteStyle::Necessary` does; a record of one empty
/// field is written `""`.
fn push_field(out: &mut Vec<u8>, i: usize, ncols: usize, v: &[u8]) {
    if i > 0 {
        out.push(b',');
    }
    let start = out.len();
    out.resize(start + text_len(v, false, if ncols == 1 { 2 } else { 0 }), 0);
    put_text(&mut out[start..], v, false);
}

fn needs_quotes(v: &[u8]) -> bool {
    // No early exit: LLVM turns the loop into vector compares, and report cells are short.
    v.iter().fold(false, |any, &b| any | matches!(b, b',' | b'"' | b'\r' | b'\n'))
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
            // Around the 12 bytes a string view holds inline: a byte to quote last of 12, first
            // of 13, and plain ones of 12 and 13 bytes (one guarded).
            Some("eleven byte\""),
            Some("\nthirteen byt"),
            Some("twelve bytes"),
            Some("=thirteen byt"),
            Some("@elevenbytes"),
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
    fn a_batch_of_several_blocks_is_written_like_one_of_a_few_rows() {
        // 2,600 rows: three blocks, the last one short. Dates and timestamps outside the years
        // 1-9999 only in the middle block, so that block goes through the formatter and the
        // others do not; text with every quoting and guarding case in every block.
        let n = 2 * BLOCK_ROWS + 552;
        let odd = |i: usize| (BLOCK_ROWS + 100..BLOCK_ROWS + 110).contains(&i);
        let schema = Arc::new(Schema::new(vec![
            Field::new("t", DataType::Utf8, true),
            Field::new("v", DataType::Utf8View, true),
            Field::new("plain", DataType::LargeUtf8, true),
            Field::new("d", DataType::Date32, true),
            Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true),
            Field::new("n", DataType::Int64, true),
            Field::new("f", DataType::Float64, true),
        ]));
        let texts = texts();
        let b = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from((0..n).map(|i| texts[i % texts.len()]).collect::<Vec<_>>())),
                // The same as views, read from the view itself up to 12 bytes (and sliced below).
                Arc::new(StringViewArray::from((0..n).map(|i| texts[(i + 3) % texts.len()]).collect::<Vec<_>>())),
                // Guarded, empty and NULL cells but nothing to quote: every block takes the
                // plain path except the middle one, which has one cell to quote.
                Arc::new(LargeStringArray::from(
                    (0..n)
                        .map(|i| match i % 6 {
                            _ if i == BLOCK_ROWS + 500 => Some("a \"quoted\", cell"),
                            0 => Some("plain"),
                            1 => None,
                            2 => Some(""),
                            3 => Some("=1+2"),
                            4 => Some("\tünï"),
                            _ => Some("-3"),
                        })
                        .collect::<Vec<_>>(),
                )),
                Arc::new(Date32Array::from(
                    (0..n)
                        .map(|i| (i % 7 != 3).then_some(if odd(i) { 3_000_000 + i as i32 } else { 20_000 + i as i32 }))
                        .collect::<Vec<_>>(),
                )),
                Arc::new(
                    TimestampMicrosecondArray::from(
                        (0..n)
                            .map(|i| {
                                (i % 5 != 2).then_some(if odd(i) {
                                    -100_000_000_000_000_000
                                } else {
                                    1_700_000_000_000_000 + i as i64 * 1_000_001
                                })
                            })
                            .collect::<Vec<_>>(),
                    )
                    .with_timezone("UTC"),
                ),
                Arc::new(Int64Array::from(
                    (0..n).map(|i| (i % 3 != 1).then_some(i as i64 * 7_919 - 5_000_000)).collect::<Vec<_>>(),
                )),
                Arc::new(Float64Array::from(
                    (0..n).map(|i| (i % 4 != 0).then_some(i as f64 / 7.0)).collect::<Vec<_>>(),
                )),
            ],
        )
        .unwrap();
        let data = ResultSet::new(schema, vec![b.clone(), b.slice(5, 1_500), b]);
        let (ours, theirs) = (fast(&data), reference(&data));
        let text = String::from_utf8_lossy(&theirs);
        assert!(
            text.contains(",+10186-10-19,-1199-02-15T14:13:20Z,"),
            "the middle block's dates and timestamps are outside 1-9999"
        );
        assert_eq!(String::from_utf8(ours).unwrap(), String::from_utf8(theirs).unwrap());
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
        // A block with nothing to quote (the plain path) keeps them visible too.
        let plain = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(StringArray::from(vec![Some(""), None, Some("a"), Some("=b")]))],
        )
        .unwrap();
        let data = ResultSet::new(schema, vec![b.clone(), b, plain]);
        assert!(fast(&data).ends_with(b"\"\"\n\"\"\na\n'=b\n"));
        assert_eq!(String::from_utf8(fast(&data)).unwrap(), String::from_utf8(reference(&data)).unwrap());
    }
}
