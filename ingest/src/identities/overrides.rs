//! The manual correlation overrides file: a CSV `account_id,identity_id,service_owner_id,reason`
//! kept by the governance team. It is hand-edited and small, so any problem fails the run with
//! the line to fix rather than being quarantined.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{ArrayRef, Int64Builder, StringBuilder};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use url::Url;

use crate::{IngestError, Result};

/// The overrides as the lake's `correlation_overrides` table holds them (file schema).
pub static OVERRIDES_SCHEMA: LazyLock<SchemaRef> =
    LazyLock::new(|| lastseen_lake::catalog::CORRELATION_OVERRIDES.schema());

const COLUMNS: [&str; 4] = ["account_id", "identity_id", "service_owner_id", "reason"];

/// Read the overrides file at `url`.
pub async fn read_overrides(url: &Url, options: &BTreeMap<String, String>) -> Result<RecordBatch> {
    let file = super::display_name(url);
    let bytes = super::read_bounded(url, options, &file).await?;
    read_overrides_from(&bytes, &file)
}

/// Parse an overrides file already in memory.
pub fn read_overrides_from(bytes: &[u8], file: &str) -> Result<RecordBatch> {
    let bad = |message: String| IngestError::IdentityFile { file: file.to_string(), message };
    let mut rdr = csv::ReaderBuilder::new().flexible(true).from_reader(bytes);
    let header: Vec<String> = rdr
        .headers()
        .map_err(|e| bad(format!("cannot read the header row: {e}")))?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').trim().to_ascii_lowercase())
        .collect();
    let idx: Vec<Option<usize>> = COLUMNS.iter().map(|c| header.iter().position(|h| h == c)).collect();
    if idx[0].is_none() || (idx[1].is_none() && idx[2].is_none()) {
        return Err(bad(format!(
            "the header must name `account_id` and `identity_id` and/or `service_owner_id` (optionally `reason`); it has: {}",
            header.join(", ")
        )));
    }
    let mut cols: [StringBuilder; 4] = Default::default();
    let mut lines = Int64Builder::new();
    let mut first_line: HashMap<String, u64> = HashMap::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| bad(format!("unreadable row: {e}")))?;
        let line = rec.position().map_or(0, |p| p.line());
        let get = |k: usize| idx[k].and_then(|i| rec.get(i)).map(str::trim).filter(|v| !v.is_empty());
        let Some(account) = get(0) else {
            if rec.iter().all(|f| f.trim().is_empty()) {
                continue;
            }
            return Err(bad(format!("line {line}: no account_id")));
        };
        if let Some(prev) = first_line.insert(account.to_owned(), line) {
            return Err(bad(format!("line {line}: account `{account}` is already overridden on line {prev}")));
        }
        for (k, b) in cols.iter_mut().enumerate() {
            b.append_option(get(k));
        }
        lines.append_value(line as i64);
    }
    let mut arrays: Vec<ArrayRef> = cols.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef).collect();
    arrays.push(Arc::new(lines.finish()));
    RecordBatch::try_new(Arc::clone(&OVERRIDES_SCHEMA), arrays)
        .map_err(|source| IngestError::Arrow { table: "correlation overrides", source })
}
