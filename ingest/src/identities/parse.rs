//! Format readers: CSV, JSONL and Parquet → [`RawRecord`]s through the column mapping, handed to
//! a sink one at a time as they are read (the file is streamed, never held whole). Errors here
//! are about the whole file (a `String` the caller wraps with the file name).

use std::io::{BufRead, Read};
use std::sync::Arc;

use bytes::Bytes;
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ParquetRecordBatchStreamBuilder;
use datafusion::parquet::arrow::arrow_reader::ArrowReaderOptions;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::arrow::async_reader::AsyncFileReader;
use datafusion::parquet::errors::ParquetError;
use datafusion::parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use futures::future::BoxFuture;
use futures::{FutureExt, TryStreamExt};
use lastseen_config::IdentitiesConfig;
use object_store::ObjectStoreExt;

use super::{ATTRS, RawRecord, slot};

/// The delimiters a CSV export plausibly uses; a one-column header containing another one of
/// them means identities.delimiter is wrong.
const DELIMITERS: [(char, &str); 4] = [(',', ","), (';', ";"), ('\t', "\\t"), ('|', "|")];

/// For each mapped attribute, its column index in `header`. A mapped column that is missing is
/// a configuration or export problem the operator must see, so it fails the file.
fn resolve(header: &[String], cfg: &IdentitiesConfig, delimiter: Option<char>) -> Result<Vec<(usize, usize)>, String> {
    let mut out = Vec::new();
    for (key, col) in cfg.columns.mapped() {
        let found =
            header.iter().position(|h| h == col).or_else(|| header.iter().position(|h| h.eq_ignore_ascii_case(col)));
        match found {
            Some(i) => out.push((slot(key), i)),
            None => {
                if let (Some(d), [only]) = (delimiter, header)
                    && let Some((_, name)) = DELIMITERS.iter().find(|(c, _)| *c != d && only.contains(*c))
                {
                    return Err(format!(
                        "the header is a single column `{}`: the file seems to be delimited by `{name}`, \
                         not `{}`; set identities.delimiter = \"{name}\"",
                        shorten(only),
                        d.escape_default()
                    ));
                }
                let shown: Vec<&str> = header.iter().take(20).map(String::as_str).collect();
                return Err(format!(
                    "required column `{col}` (identities.columns.{key}) is not in the file; its columns are: {}{}. \
                     Fix [identities.columns], or set identities.columns.{key} = \"\" if the export has no such column",
                    shown.join(", "),
                    if header.len() > 20 { ", …" } else { "" }
                ));
            }
        }
    }
    Ok(out)
}

fn shorten(s: &str) -> String {
    if s.chars().count() > 80 { s.chars().take(80).collect::<String>() + "…" } else { s.to_owned() }
}

fn clean(v: &str) -> Option<String> {
    let v = v.trim();
    (!v.is_empty()).then(|| v.to_owned())
}

/// Where parsed records go.
pub(crate) type Sink<'a> = dyn FnMut(RawRecord) + Send + 'a;

/// The longest JSONL line read; a longer one is quarantined unread (skipped to its newline), so
/// one hostile line cannot take the memory a whole export would.
pub(crate) const MAX_JSONL_LINE: usize = 1 << 20;

pub(crate) fn csv(reader: impl Read, cfg: &IdentitiesConfig, sink: &mut Sink<'_>) -> Result<(), String> {
    let mut rdr = csv::ReaderBuilder::new().delimiter(cfg.delimiter).flexible(true).from_reader(reader);
    let header: Vec<String> = rdr
        .headers()
        .map_err(|e| format!("cannot read the header row: {e}"))?
        .iter()
        .enumerate()
        .map(|(i, h)| if i == 0 { h.trim_start_matches('\u{feff}') } else { h }.trim().to_owned())
        .collect();
    let index = resolve(&header, cfg, Some(char::from(cfg.delimiter)))?;
    let delim = char::from(cfg.delimiter).to_string();
    let mut record = csv::StringRecord::new();
    loop {
        let line_before = rdr.position().line();
        match rdr.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let line = record.position().map_or(line_before, |p| p.line());
                let text = record.iter().collect::<Vec<_>>().join(&delim);
                let mut r = RawRecord { line, text, ..RawRecord::default() };
                if record.len() != header.len() {
                    r.error = Some(format!("the row has {} fields, the header has {}", record.len(), header.len()));
                    r.values[0] = index.first().and_then(|&(_, i)| record.get(i)).and_then(clean);
                } else {
                    for &(s, i) in &index {
                        r.values[s] = record.get(i).and_then(clean);
                    }
                }
                sink(r);
            }
            Err(e) => {
                if let csv::ErrorKind::Io(e) = e.kind() {
                    return Err(format!("the read stopped: {e}"));
                }
                let line = e.position().map_or(line_before + 1, |p| p.line());
                sink(RawRecord { line, error: Some(format!("unreadable row: {e}")), ..RawRecord::default() });
                if !matches!(e.kind(), csv::ErrorKind::Utf8 { .. }) {
                    break;
                }
            }
        }
    }
    Ok(())
}

/// One line of `reader` into `buf` (without its `\n`), at most [`MAX_JSONL_LINE`] bytes kept.
/// Returns `None` at the end, else whether the line was longer (the rest is skipped).
fn read_line(reader: &mut impl BufRead, buf: &mut Vec<u8>) -> std::io::Result<Option<bool>> {
    buf.clear();
    let n = reader.by_ref().take(MAX_JSONL_LINE as u64 + 1).read_until(b'\n', buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        return Ok(Some(false));
    }
    if buf.len() <= MAX_JSONL_LINE {
        return Ok(Some(false)); // the last line, without a newline
    }
    buf.clear();
    loop {
        let chunk = reader.fill_buf()?;
        if chunk.is_empty() {
            return Ok(Some(true));
        }
        match chunk.iter().position(|b| *b == b'\n') {
            Some(i) => {
                reader.consume(i + 1);
                return Ok(Some(true));
            }
            None => {
                let n = chunk.len();
                reader.consume(n);
            }
        }
    }
}

pub(crate) fn jsonl(mut reader: impl BufRead, cfg: &IdentitiesConfig, sink: &mut Sink<'_>) -> Result<(), String> {
    let mapped = cfg.columns.mapped();
    let mut seen = vec![false; mapped.len()];
    let mut objects = 0usize;
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    while let Some(too_long) = read_line(&mut reader, &mut buf).map_err(|e| format!("the read stopped: {e}"))? {
        line_no += 1;
        if too_long {
            sink(RawRecord {
                line: line_no,
                error: Some(format!("the line is longer than {} KiB; it was skipped", MAX_JSONL_LINE >> 10)),
                ..RawRecord::default()
            });
            continue;
        }
        let line = String::from_utf8_lossy(buf.strip_suffix(b"\r").unwrap_or(&buf));
        let line = line.as_ref();
        if line.trim().is_empty() {
            continue;
        }
        let mut r = RawRecord { line: line_no, text: line.to_owned(), ..RawRecord::default() };
        match serde_json::from_str::<serde_json::Value>(line) {
            Ok(serde_json::Value::Object(obj)) => {
                objects += 1;
                for (k, (key, col)) in mapped.iter().enumerate() {
                    let v =
                        obj.get(*col).or_else(|| obj.iter().find(|(n, _)| n.eq_ignore_ascii_case(col)).map(|(_, v)| v));
                    let Some(v) = v else { continue };
                    seen[k] = true;
                    let s = slot(key);
                    match v {
                        serde_json::Value::Null => {}
                        serde_json::Value::String(t) => r.values[s] = clean(t),
                        serde_json::Value::Array(items) if ATTRS[s] == "alternate_emails" => {
                            r.alternates = Some(
                                items
                                    .iter()
                                    .filter_map(|x| {
                                        x.as_str().and_then(clean).or_else(|| (!x.is_null()).then(|| x.to_string()))
                                    })
                                    .collect(),
                            );
                        }
                        other => r.values[s] = clean(&other.to_string()),
                    }
                }
            }
            Ok(_) => r.error = Some("the line is JSON but not an object".into()),
            Err(e) => r.error = Some(format!("the line is not valid JSON: {e}")),
        }
        sink(r);
    }
    if objects == 0 {
        return Err("no line is a JSON object: expected one identity object per line (JSONL)".into());
    }
    if let Some(k) = seen.iter().position(|s| !s) {
        let (key, col) = mapped[k];
        return Err(format!(
            "required key `{col}` (identities.columns.{key}) appears in no line of the file. Fix \
             [identities.columns], or set identities.columns.{key} = \"\" if the export has no such key"
        ));
    }
    Ok(())
}

/// A Parquet export already in memory.
pub(crate) fn parquet(bytes: Bytes, cfg: &IdentitiesConfig, sink: &mut Sink<'_>) -> Result<(), String> {
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| format!("not a readable Parquet file: {e}"))?;
    let header: Vec<String> = builder.schema().fields().iter().map(|f| f.name().clone()).collect();
    let index = resolve(&header, cfg, None)?;
    let reader = builder.build().map_err(|e| format!("cannot read the Parquet file: {e}"))?;
    let mut row = 0u64;
    for batch in reader {
        let batch = batch.map_err(|e| format!("cannot read the Parquet file: {e}"))?;
        parquet_batch(&batch, &header, &index, &mut row, sink)?;
    }
    Ok(())
}

/// A Parquet export in a store, read by row groups with ranged reads (footer first), so only
/// one batch of it is in memory at a time.
pub(crate) async fn parquet_object(
    store: Arc<dyn object_store::ObjectStore>,
    path: object_store::path::Path,
    size: u64,
    cfg: &IdentitiesConfig,
    sink: &mut Sink<'_>,
) -> Result<(), String> {
    let reader = StoreFile { store, path, size };
    let builder =
        ParquetRecordBatchStreamBuilder::new(reader).await.map_err(|e| format!("not a readable Parquet file: {e}"))?;
    let header: Vec<String> = builder.schema().fields().iter().map(|f| f.name().clone()).collect();
    let index = resolve(&header, cfg, None)?;
    let mut stream = builder.build().map_err(|e| format!("cannot read the Parquet file: {e}"))?;
    let mut row = 0u64;
    while let Some(batch) = stream.try_next().await.map_err(|e| format!("cannot read the Parquet file: {e}"))? {
        parquet_batch(&batch, &header, &index, &mut row, sink)?;
    }
    Ok(())
}

/// A Parquet file in an object store, read with ranged GETs (the footer, then the column chunks
/// of one row group at a time). parquet's own `ParquetObjectReader` is deprecated in favour of
/// implementing [`AsyncFileReader`], which is this.
struct StoreFile {
    store: Arc<dyn object_store::ObjectStore>,
    path: object_store::path::Path,
    size: u64,
}

impl AsyncFileReader for StoreFile {
    fn get_bytes(&mut self, range: std::ops::Range<u64>) -> BoxFuture<'_, datafusion::parquet::errors::Result<Bytes>> {
        async move { self.store.get_range(&self.path, range).await.map_err(|e| ParquetError::External(Box::new(e))) }
            .boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        _options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, datafusion::parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            let size = self.size;
            Ok(Arc::new(ParquetMetaDataReader::new().load_and_finish(self, size).await?))
        }
        .boxed()
    }
}

/// The records of one Parquet batch; `row` counts rows across batches.
fn parquet_batch(
    batch: &RecordBatch,
    header: &[String],
    index: &[(usize, usize)],
    row: &mut u64,
    sink: &mut Sink<'_>,
) -> Result<(), String> {
    let list_utf8 = DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)));
    let mut cols = Vec::with_capacity(index.len());
    for &(s, i) in index {
        let c = batch.column(i);
        let is_list = matches!(c.data_type(), DataType::List(_) | DataType::LargeList(_));
        let target = if is_list { &list_utf8 } else { &DataType::Utf8 };
        let c = cast(c, target).map_err(|e| format!("column `{}` cannot be read as text: {e}", header[i]))?;
        cols.push((s, c));
    }
    for r in 0..batch.num_rows() {
        *row += 1;
        let mut rec = RawRecord { line: *row, ..RawRecord::default() };
        let mut text = Vec::new();
        for (s, c) in &cols {
            if c.is_null(r) {
                text.push(String::new());
                continue;
            }
            if let Some(list) = c.as_list_opt::<i32>() {
                let items = list.value(r);
                let items = items.as_string::<i32>();
                let v: Vec<String> = items.iter().flatten().filter_map(clean).collect();
                text.push(v.join(";"));
                if ATTRS[*s] == "alternate_emails" {
                    rec.alternates = Some(v);
                } else {
                    rec.values[*s] = clean(&text[text.len() - 1]);
                }
            } else {
                let v = c.as_string::<i32>().value(r);
                text.push(v.to_owned());
                rec.values[*s] = clean(v);
            }
        }
        rec.text = text.join(",");
        sink(rec);
    }
    Ok(())
}
