//! Identity-source readers: an HR or IdP export (CSV, JSONL or Parquet at any storage URL) turned
//! into `identities` rows through the configured column mapping, with every unusable row
//! quarantined under its file and line instead of being dropped, and the manual correlation
//! overrides file, and [`stage`], which commits both with the run's raw tables.
//!
//! A file that cannot be used at all (empty, a mapped column missing, the wrong delimiter, not a
//! single usable row) is an error: correlating against half an export would invent orphans.

mod overrides;
mod parse;
mod stage;
mod stream;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use datafusion::arrow::array::{
    ArrayRef, Date32Builder, Int64Builder, ListBuilder, StringBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::record_batch::RecordBatch;
use lastseen_config::{IdentitiesConfig, IdentityFormat};
use lastseen_lake::catalog::{IDENTITIES, IDENTITIES_QUARANTINE, date32};
use url::Url;

pub use overrides::{OVERRIDES_SCHEMA, read_overrides, read_overrides_from};
pub use stage::{check_identity_drop, stage};

use crate::{IngestError, Result};

/// Attribute slots of a parsed row, in [`lastseen_config::IdentityColumns::mapped`] order.
pub(crate) const ATTRS: [&str; 11] = [
    "identity_id",
    "email",
    "alternate_emails",
    "username",
    "employee_id",
    "display_name",
    "department",
    "manager",
    "status",
    "termination_date",
    "employee_type",
];

fn slot(attr: &str) -> usize {
    ATTRS.iter().position(|a| *a == attr).expect("known attribute")
}

/// One record of the export as read, before validation.
#[derive(Debug, Default)]
pub(crate) struct RawRecord {
    /// 1-based line (CSV, JSONL) or row (Parquet, counting the header as 1 like a spreadsheet).
    pub line: u64,
    pub values: [Option<String>; 11],
    /// Alternate addresses when the format has real lists (JSON arrays, Parquet lists).
    pub alternates: Option<Vec<String>>,
    /// The record as text, kept in the quarantine so it can be fixed at the source.
    pub text: String,
    /// Set when the record could not even be split into fields (bad JSON, wrong field count).
    pub error: Option<String>,
}

/// What reading an export produced: the usable identities and the refused rows.
#[derive(Debug)]
pub struct IdentityLoad {
    /// The `identities` rows (catalog schema).
    pub identities: RecordBatch,
    /// The `identities_quarantine` rows (catalog schema).
    pub quarantine: RecordBatch,
    /// Records read, usable or not.
    pub records: usize,
    /// One line per quarantined row: `file:line: reason`.
    pub problems: Vec<String>,
}

/// Read the export `cfg.url` (which must be set) with `options` for its object store.
///
/// The file is streamed, never held whole: CSV and JSONL go through a bounded channel to the
/// parser on the blocking pool, Parquet is read by row groups with ranged reads. Only the parsed
/// rows (the mapped columns, not the raw text of usable rows) are collected.
pub async fn read_identities(
    cfg: &IdentitiesConfig,
    options: &BTreeMap<String, String>,
    loaded_at: DateTime<Utc>,
) -> Result<IdentityLoad> {
    use object_store::ObjectStoreExt;
    let url = cfg.url.as_ref().ok_or_else(|| IngestError::IdentityFile {
        file: "(none)".into(),
        message: "identities.url is not set".into(),
    })?;
    let file = display_name(url);
    let bad = |message: String| IngestError::IdentityFile { file: file.clone(), message };
    let read_err = |source| IngestError::IdentityRead { file: file.clone(), source };
    let store_err = |source| read_err(lastseen_lake::LakeError::Store { path: file.clone(), source });
    let format = cfg
        .effective_format(url)
        .ok_or_else(|| bad("cannot tell the format from the name; set identities.format".into()))?;
    let (store, path) = lastseen_lake::object_store_for(url, options).map_err(read_err)?;
    if format == IdentityFormat::Parquet {
        let mut collector = Collector::new(cfg);
        let meta = store.head(&path).await.map_err(store_err)?;
        check_size(meta.size, &file)?;
        if meta.size == 0 {
            return Err(bad(empty_message(cfg, format)));
        }
        parse::parquet_object(store, path, meta.size, cfg, &mut |r| collector.push(r)).await.map_err(bad)?;
        return collector.finish(&file, loaded_at);
    }
    let got = store.get(&path).await.map_err(store_err)?;
    check_size(got.meta.size, &file)?;
    let (mut reader, pump) = stream::pump(got.into_stream(), MAX_IDENTITY_FILE);
    // Parsing is CPU work and the reader blocks: on the blocking pool, never on an async worker.
    let parsing = {
        let (cfg, file) = (cfg.clone(), file.clone());
        tokio::task::spawn_blocking(move || {
            let mut collector = Collector::new(&cfg);
            let parsed = match format {
                IdentityFormat::Csv => parse::csv(&mut reader, &cfg, &mut |r| collector.push(r)),
                _ => parse::jsonl(std::io::BufReader::new(&mut reader), &cfg, &mut |r| collector.push(r)),
            };
            let parsed = parsed.map_err(|message| {
                reader.drain();
                let message = if reader.saw_content { message } else { empty_message(&cfg, format) };
                IngestError::IdentityFile { file: file.clone(), message }
            });
            drop(reader);
            parsed.and_then(|()| collector.finish(&file, loaded_at))
        })
    };
    let parsed = parsing.await.map_err(|e| IngestError::Setup(format!("parsing the identity export: {e}")))?;
    // A failed read outranks what the parser made of the truncated input.
    match pump.await.map_err(|e| IngestError::Setup(format!("reading the identity export: {e}")))? {
        Ok(()) => parsed,
        Err(stream::PumpError::Store(source)) => Err(store_err(source)),
        Err(stream::PumpError::TooLarge) => Err(too_large(&file)),
    }
}

/// The largest identity or overrides file read. The raw bytes are streamed, but the parsed
/// rows are collected (about 200 bytes per person, so this is millions of people) and the read
/// takes time; anything larger is a wrong URL or a hostile file, refused before it is read
/// (by its reported size) or as soon as the stream passes it.
pub const MAX_IDENTITY_FILE: u64 = 1 << 30;

fn too_large(file: &str) -> IngestError {
    IngestError::IdentityFile {
        file: file.to_owned(),
        message: format!(
            "the file is more than the {} MiB an identity file may have; check identities.url",
            MAX_IDENTITY_FILE >> 20
        ),
    }
}

fn check_size(size: u64, file: &str) -> Result<()> {
    if size > MAX_IDENTITY_FILE { Err(too_large(file)) } else { Ok(()) }
}

fn empty_message(cfg: &IdentitiesConfig, format: IdentityFormat) -> String {
    format!(
        "the file is empty: expected a {format} export with at least the identity id column `{}`",
        cfg.columns.identity_id
    )
}

/// The object at `url` whole (the small, hand-edited overrides file only), refused unread when
/// its size is over [`MAX_IDENTITY_FILE`].
pub(crate) async fn read_bounded(url: &Url, options: &BTreeMap<String, String>, file: &str) -> Result<bytes::Bytes> {
    use object_store::ObjectStoreExt;
    let read_err = |source| IngestError::IdentityRead { file: file.to_owned(), source };
    let store_err = |source| read_err(lastseen_lake::LakeError::Store { path: file.to_owned(), source });
    let (store, path) = lastseen_lake::object_store_for(url, options).map_err(read_err)?;
    let got = store.get(&path).await.map_err(store_err)?;
    check_size(got.meta.size, file)?;
    got.bytes().await.map_err(store_err)
}

/// How a file is named in rows and messages: the URL without credentials (config refuses them).
pub fn display_name(url: &Url) -> String {
    if url.scheme() == "file" {
        url.to_file_path().map(|p| p.display().to_string()).unwrap_or_else(|()| url.to_string())
    } else {
        url.to_string()
    }
}

/// Parse an export already in memory. `format` `None` means the name did not say (an error).
pub fn parse_identities(
    bytes: &[u8],
    cfg: &IdentitiesConfig,
    file: &str,
    format: Option<IdentityFormat>,
    loaded_at: DateTime<Utc>,
) -> Result<IdentityLoad> {
    let bad = |message: String| IngestError::IdentityFile { file: file.to_string(), message };
    let format = format.ok_or_else(|| bad("cannot tell the format from the name; set identities.format".into()))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(bad(empty_message(cfg, format)));
    }
    let mut collector = Collector::new(cfg);
    let mut sink = |r| collector.push(r);
    match format {
        IdentityFormat::Csv => parse::csv(bytes, cfg, &mut sink).map_err(bad)?,
        IdentityFormat::Jsonl => parse::jsonl(bytes, cfg, &mut sink).map_err(bad)?,
        IdentityFormat::Parquet => parse::parquet(bytes::Bytes::copy_from_slice(bytes), cfg, &mut sink).map_err(bad)?,
    }
    collector.finish(file, loaded_at)
}

/// A parsed, validated identity.
struct Identity {
    line: u64,
    values: [Option<String>; 11],
    alternates: Vec<String>,
    termination: Option<NaiveDate>,
}

struct Refused {
    line: u64,
    identity_id: Option<String>,
    reason: String,
    text: String,
}

fn parse_date(v: &str, format: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(v, format)
        .ok()
        .or_else(|| NaiveDate::parse_from_str(v, "%Y-%m-%d").ok())
        .or_else(|| DateTime::parse_from_rfc3339(v).ok().map(|t| t.with_timezone(&Utc).date_naive()))
}

/// Validates records as the parser yields them, keeping only what the tables need: the raw
/// text of a record is kept only when the record is refused, so the memory held is the parsed
/// rows, not the file.
struct Collector<'a> {
    cfg: &'a IdentitiesConfig,
    records: usize,
    good: Vec<Identity>,
    refused: Vec<Refused>,
}

impl<'a> Collector<'a> {
    fn new(cfg: &'a IdentitiesConfig) -> Self {
        Collector { cfg, records: 0, good: Vec::new(), refused: Vec::new() }
    }

    fn push(&mut self, mut r: RawRecord) {
        let cfg = self.cfg;
        self.records += 1;
        if let Some(reason) = r.error.take() {
            self.refused.push(Refused { line: r.line, identity_id: r.values[0].take(), reason, text: r.text });
            return;
        }
        let id = r.values[0].take();
        let Some(id) = id else {
            self.refused.push(Refused {
                line: r.line,
                identity_id: None,
                reason: format!("no identity id (column `{}` is empty)", cfg.columns.identity_id),
                text: r.text,
            });
            return;
        };
        let termination = match r.values[slot("termination_date")].as_deref() {
            None => None,
            Some(v) => match parse_date(v, &cfg.date_format) {
                Some(d) => Some(d),
                None => {
                    self.refused.push(Refused {
                        line: r.line,
                        identity_id: Some(id),
                        reason: format!(
                            "termination date `{v}` is not a date in the format `{}` (identities.date_format)",
                            cfg.date_format
                        ),
                        text: r.text,
                    });
                    return;
                }
            },
        };
        let alternates = match r.alternates.take() {
            Some(list) => list,
            None => r.values[slot("alternate_emails")]
                .as_deref()
                .map(|v| {
                    v.split(cfg.list_separator).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
                })
                .unwrap_or_default(),
        };
        r.values[0] = Some(id);
        self.good.push(Identity { line: r.line, values: r.values, alternates, termination });
    }

    fn finish(self, file: &str, loaded_at: DateTime<Utc>) -> Result<IdentityLoad> {
        let Collector { records: n, good, mut refused, .. } = self;
        // A repeated id cannot be resolved by picking one: every copy is quarantined and the export
        // has to be fixed, so no account is tied to the wrong record.
        let mut lines_of: HashMap<&str, Vec<u64>> = HashMap::new();
        for g in &good {
            lines_of.entry(g.values[0].as_deref().expect("set above")).or_default().push(g.line);
        }
        let dup: HashMap<String, Vec<u64>> =
            lines_of.into_iter().filter(|(_, l)| l.len() > 1).map(|(k, l)| (k.to_owned(), l)).collect();
        let (good, dups): (Vec<Identity>, Vec<Identity>) =
            good.into_iter().partition(|g| !dup.contains_key(g.values[0].as_deref().unwrap_or_default()));
        for d in dups {
            let id = d.values[0].clone().unwrap_or_default();
            let lines = dup[&id].iter().map(u64::to_string).collect::<Vec<_>>().join(", ");
            refused.push(Refused {
                line: d.line,
                reason: format!("identity id `{id}` appears on several lines ({lines}); every copy is quarantined"),
                identity_id: Some(id),
                text: String::new(),
            });
        }
        refused.sort_by_key(|r| r.line);

        let problems: Vec<String> = refused.iter().map(|r| format!("{file}:{}: {}", r.line, r.reason)).collect();
        if good.is_empty() {
            let first = problems.first().map(|p| format!(" (first: {p})")).unwrap_or_default();
            return Err(IngestError::IdentityFile {
                file: file.to_string(),
                message: format!("no usable identity: {n} record(s) read, {} quarantined{first}", refused.len()),
            });
        }
        Ok(IdentityLoad {
            identities: identities_batch(&good, file, loaded_at)?,
            quarantine: quarantine_batch(&refused, file, loaded_at)?,
            records: n,
            problems,
        })
    }
}

fn arrow_err(table: &'static str) -> impl Fn(datafusion::arrow::error::ArrowError) -> IngestError {
    move |source| IngestError::Arrow { table, source }
}

fn ts_builder(n: usize) -> TimestampMicrosecondBuilder {
    TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC")
}

fn identities_batch(rows: &[Identity], file: &str, loaded_at: DateTime<Utc>) -> Result<RecordBatch> {
    let n = rows.len();
    let text = |i: usize| -> StringBuilder {
        let mut b = StringBuilder::with_capacity(n, n * 16);
        for r in rows {
            b.append_option(r.values[i].as_deref());
        }
        b
    };
    let mut alternates = ListBuilder::new(StringBuilder::new());
    let mut manager_id = StringBuilder::new();
    let mut manager_email = StringBuilder::new();
    let mut status = StringBuilder::new();
    let mut termination = Date32Builder::with_capacity(n);
    let mut source_file = StringBuilder::new();
    let mut source_line = Int64Builder::with_capacity(n);
    let mut loaded = ts_builder(n);
    for r in rows {
        for a in &r.alternates {
            alternates.values().append_value(a);
        }
        alternates.append(true);
        match r.values[slot("manager")].as_deref() {
            Some(m) if m.contains('@') => {
                manager_id.append_null();
                manager_email.append_value(m);
            }
            m => {
                manager_id.append_option(m);
                manager_email.append_null();
            }
        }
        status.append_option(r.values[slot("status")].as_deref().map(str::to_lowercase));
        termination.append_option(r.termination.map(date32));
        source_file.append_value(file);
        source_line.append_value(r.line as i64);
        loaded.append_value(loaded_at.timestamp_micros());
    }
    let cols: Vec<ArrayRef> = vec![
        Arc::new(text(0).finish()),
        Arc::new(text(slot("email")).finish()),
        Arc::new(alternates.finish()),
        Arc::new(text(slot("username")).finish()),
        Arc::new(text(slot("employee_id")).finish()),
        Arc::new(text(slot("display_name")).finish()),
        Arc::new(text(slot("department")).finish()),
        Arc::new(manager_id.finish()),
        Arc::new(manager_email.finish()),
        Arc::new(status.finish()),
        Arc::new(termination.finish()),
        Arc::new(text(slot("employee_type")).finish()),
        Arc::new(source_file.finish()),
        Arc::new(source_line.finish()),
        Arc::new(loaded.finish()),
    ];
    RecordBatch::try_new(IDENTITIES.schema(), cols).map_err(arrow_err(IDENTITIES.name))
}

fn quarantine_batch(rows: &[Refused], file: &str, loaded_at: DateTime<Utc>) -> Result<RecordBatch> {
    let mut f = StringBuilder::new();
    let mut line = Int64Builder::new();
    let mut id = StringBuilder::new();
    let mut reason = StringBuilder::new();
    let mut text = StringBuilder::new();
    let mut loaded = ts_builder(rows.len());
    for r in rows {
        f.append_value(file);
        line.append_value(r.line as i64);
        id.append_option(r.identity_id.as_deref());
        reason.append_value(&r.reason);
        text.append_option((!r.text.is_empty()).then_some(r.text.as_str()));
        loaded.append_value(loaded_at.timestamp_micros());
    }
    let cols: Vec<ArrayRef> = vec![
        Arc::new(f.finish()),
        Arc::new(line.finish()),
        Arc::new(id.finish()),
        Arc::new(reason.finish()),
        Arc::new(text.finish()),
        Arc::new(loaded.finish()),
    ];
    RecordBatch::try_new(IDENTITIES_QUARANTINE.schema(), cols).map_err(arrow_err(IDENTITIES_QUARANTINE.name))
}

#[cfg(test)]
mod tests;
