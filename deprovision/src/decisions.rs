//! Reviewers' decisions in: a filled-in `review` export (CSV with its provenance side file, or
//! XLSX with its "About" sheet) read back, checked against the review it came from, and turned
//! into `review_decisions` rows. Every unusable row is reported with file and line.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use datafusion::arrow::array::{
    Array, ArrayRef, Date32Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use lastseen_lake::catalog::{REVIEW_DECISIONS, date32};
use lastseen_query::reports::{self, ReportParams};
use lastseen_query::{QueryEngine, ResultSet};

use crate::error::{DeprovisionError, Result, sha256_hex};

/// What a reviewer decided for one account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Decision {
    Revoke,
    Keep,
    Investigate,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Revoke => "revoke",
            Decision::Keep => "keep",
            Decision::Investigate => "investigate",
        }
    }

    fn parse(s: &str) -> Option<Decision> {
        match s.trim().to_ascii_lowercase().as_str() {
            "revoke" => Some(Decision::Revoke),
            "keep" => Some(Decision::Keep),
            "investigate" => Some(Decision::Investigate),
            _ => None,
        }
    }
}

/// The review an export came from, as its provenance states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewOrigin {
    pub report: String,
    pub as_of: NaiveDate,
    pub lake_version: u64,
    pub run_id: Option<String>,
    /// The report's parameters as text (`days`, `workspace`, …).
    pub parameters: BTreeMap<String, String>,
}

impl ReviewOrigin {
    /// A stable id of the review: the same export (whatever its format) gives the same id.
    pub fn review_id(&self) -> String {
        let params: Vec<String> = self.parameters.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let text = format!("{}|{}|{}|{}", self.report, self.as_of, self.lake_version, params.join("&"));
        sha256_hex(text.as_bytes())[..16].to_owned()
    }
}

/// One usable decision row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionRow {
    pub line: u64,
    pub workspace_id: Option<String>,
    pub account_id: String,
    pub username: Option<String>,
    pub email: Option<String>,
    pub recommendation: Option<String>,
    pub decision: Decision,
    pub decided_by: String,
    pub note: Option<String>,
}

/// A decision file read and checked.
#[derive(Debug)]
pub struct DecisionFile {
    pub path: PathBuf,
    pub sha256: String,
    pub origin: ReviewOrigin,
    pub rows: Vec<DecisionRow>,
    /// Rows still carrying the proposal (`proposed: …`) or left empty: not decided, not imported.
    pub undecided: usize,
    /// `file:line: reason` for every row that cannot be used.
    pub problems: Vec<String>,
}

/// The columns a row is matched on; editing any of them makes the row unusable.
const KEY_COLUMNS: [&str; 4] = ["account_id", "workspace_id", "username", "email"];

/// A sheet read into header + rows of text with their line numbers.
struct Sheet {
    header: Vec<String>,
    rows: Vec<(u64, Vec<String>)>,
}

impl Sheet {
    fn col(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h.trim().eq_ignore_ascii_case(name))
    }
}

/// Reads `path` (CSV or XLSX by extension), finds its review and checks each row against that
/// review re-run on the lake. `reviewer` stands in for an empty `decided_by`.
pub async fn read(engine: &QueryEngine, path: &Path, reviewer: Option<&str>) -> Result<DecisionFile> {
    let file_err = |detail: String| DeprovisionError::File { path: path.to_path_buf(), detail };
    let bytes = std::fs::read(path).map_err(|e| file_err(format!("cannot read it: {e}")))?;
    let sha256 = sha256_hex(&bytes);
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or_default().to_ascii_lowercase();
    let (sheet, origin) = match ext.as_str() {
        "csv" => {
            let side = side_file(path);
            let text = std::fs::read_to_string(&side).map_err(|e| {
                file_err(format!(
                    "its provenance file {} cannot be read ({e}); a review CSV is only accepted with the \
                     `.provenance.json` file written next to it, which says which review it belongs to",
                    side.display()
                ))
            })?;
            (read_csv(&bytes).map_err(file_err)?, origin_from_json(&text).map_err(file_err)?)
        }
        "xlsx" => read_xlsx(path).map_err(file_err)?,
        other => return Err(file_err(format!("`.{other}` is not a review export: give the .csv or .xlsx file"))),
    };
    if origin.report != "review" {
        return Err(file_err(format!("it is an export of the `{}` report, not of `review`", origin.report)));
    }
    let current = engine.snapshot().version;
    if origin.lake_version > current {
        return Err(file_err(format!(
            "its review read lake version {}, but this lake is at version {current}: it belongs to another lake",
            origin.lake_version
        )));
    }
    let review = rerun_review(engine, &origin).await?;
    let mut out =
        DecisionFile { path: path.to_path_buf(), sha256, origin, rows: Vec::new(), undecided: 0, problems: Vec::new() };
    check_rows(&sheet, &review, reviewer, &mut out);
    Ok(out)
}

/// The side file the exporter writes next to a CSV: `FILE.provenance.json`.
pub fn side_file(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".provenance.json");
    PathBuf::from(name)
}

fn origin_from_json(text: &str) -> std::result::Result<ReviewOrigin, String> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("its provenance file is not valid JSON: {e}"))?;
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
    let report = s("report").ok_or("its provenance names no report")?;
    let as_of = s("as_of").and_then(|d| d.parse().ok()).ok_or("its provenance has no as_of date")?;
    let lake_version = v.get("lake_version").and_then(|x| x.as_u64()).ok_or("its provenance has no lake_version")?;
    let mut parameters = BTreeMap::new();
    for p in v.get("parameters").and_then(|x| x.as_array()).into_iter().flatten() {
        if let (Some(n), Some(val)) = (p.get("name").and_then(|x| x.as_str()), p.get("value").and_then(|x| x.as_str()))
        {
            parameters.insert(n.to_owned(), val.to_owned());
        }
    }
    Ok(ReviewOrigin { report, as_of, lake_version, run_id: s("run_id"), parameters })
}

/// CSV cells a spreadsheet would run as formulas were written with a leading `'`; undo that.
fn unprotect(cell: &str) -> String {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@', '\t', '\r']) => rest.to_owned(),
        _ => cell.to_owned(),
    }
}

fn read_csv(bytes: &[u8]) -> std::result::Result<Sheet, String> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(bytes);
    let header: Vec<String> =
        reader.headers().map_err(|e| format!("its header cannot be read: {e}"))?.iter().map(str::to_owned).collect();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| format!("not valid CSV: {e}"))?;
        let line = record.position().map_or(0, |p| p.line());
        rows.push((line, record.iter().map(unprotect).collect()));
    }
    Ok(Sheet { header, rows })
}

fn read_xlsx(path: &Path) -> std::result::Result<(Sheet, ReviewOrigin), String> {
    use calamine::{Reader, Xlsx, open_workbook};
    let mut wb: Xlsx<_> = open_workbook(path).map_err(|e| format!("not a readable XLSX workbook: {e}"))?;
    let text = |c: &calamine::Data| match c {
        calamine::Data::Empty => String::new(),
        calamine::Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        other => other.to_string(),
    };
    let about = wb.worksheet_range("About").map_err(|_| "it has no \"About\" sheet with the review's provenance")?;
    let mut fields = BTreeMap::new();
    for row in about.rows() {
        if let (Some(k), Some(v)) = (row.first(), row.get(1)) {
            fields.entry(text(k)).or_insert_with(|| text(v));
        }
    }
    let report = fields.get("Report").cloned().ok_or("its About sheet names no report")?;
    let as_of = fields.get("As of").and_then(|d| d.parse().ok()).ok_or("its About sheet has no As of date")?;
    let lake_version =
        fields.get("Lake version").and_then(|v| v.parse().ok()).ok_or("its About sheet has no lake version")?;
    let parameters =
        fields.iter().filter_map(|(k, v)| k.strip_prefix("Parameter ").map(|n| (n.to_owned(), v.clone()))).collect();
    let run_id = fields.get("Run id").filter(|r| r.as_str() != "none").cloned();
    let origin = ReviewOrigin { report, as_of, lake_version, run_id, parameters };
    // Data, Data 2, …: one header row each (large reviews span sheets).
    let mut header = Vec::new();
    let mut rows = Vec::new();
    let names: Vec<String> = wb.sheet_names().into_iter().filter(|n| n.starts_with("Data")).collect();
    if names.is_empty() {
        return Err("it has no \"Data\" sheet".into());
    }
    for name in names {
        let range = wb.worksheet_range(&name).map_err(|e| format!("sheet {name}: {e}"))?;
        let mut it = range.rows().enumerate();
        if let Some((_, h)) = it.next() {
            header = h.iter().map(text).collect();
        }
        for (i, r) in it {
            // Line numbers as a spreadsheet shows them (1-based, header on line 1).
            rows.push((i as u64 + 1, r.iter().map(text).collect()));
        }
    }
    Ok((Sheet { header, rows }, origin))
}

/// The review's rows keyed by account: the key columns as exported.
type ReviewIndex = BTreeMap<String, BTreeMap<&'static str, Option<String>>>;

async fn rerun_review(engine: &QueryEngine, origin: &ReviewOrigin) -> Result<ReviewIndex> {
    let def = reports::find("review")?;
    let p = &origin.parameters;
    let text = |k: &str| p.get(k).filter(|v| v.as_str() != "all").cloned();
    let params = ReportParams {
        as_of: Some(origin.as_of),
        days: p.get("days").and_then(|d| d.parse().ok()),
        // Absent from reviews exported before reports took --app: every app, as they had.
        app: text("app"),
        workspace: text("workspace"),
        department: text("department"),
        exclude_guests: p.get("exclude_guests").is_some_and(|v| v == "true"),
        include_bots: p.get("include_bots").is_some_and(|v| v == "true"),
    };
    let out = def.run(engine, &params).await?;
    Ok(index(&out.data))
}

/// A column as `Utf8` whatever string type the engine produced (`Utf8View` from Parquet).
pub(crate) fn text_col(data: &RecordBatch, name: &str) -> Option<StringArray> {
    let col = data.column_by_name(name)?;
    let cast = datafusion::arrow::compute::cast(col, &datafusion::arrow::datatypes::DataType::Utf8).ok()?;
    cast.as_any().downcast_ref::<StringArray>().cloned()
}

/// Row `i` of a text column, `None` when null.
pub(crate) fn cell(col: Option<&StringArray>, i: usize) -> Option<String> {
    col.filter(|c| !c.is_null(i)).map(|c| c.value(i).to_owned())
}

fn index(data: &ResultSet) -> ReviewIndex {
    let mut out = ReviewIndex::new();
    for b in &data.batches {
        let Some(ids) = text_col(b, "account_id") else { continue };
        let cols: Vec<(&'static str, Option<StringArray>)> = KEY_COLUMNS.iter().map(|k| (*k, text_col(b, k))).collect();
        for i in 0..b.num_rows() {
            // As the file is read: a cell is trimmed and an empty one is no value (a CSV cannot
            // tell '' from NULL; Okta's accounts have an empty workspace id).
            let keys = cols
                .iter()
                .map(|(k, c)| (*k, cell(c.as_ref(), i).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())))
                .collect();
            out.insert(ids.value(i).to_owned(), keys);
        }
    }
    out
}

fn check_rows(sheet: &Sheet, review: &ReviewIndex, reviewer: Option<&str>, out: &mut DecisionFile) {
    let file = out.path.display().to_string();
    let missing: Vec<&str> =
        KEY_COLUMNS.iter().chain(&["decision", "decided_by"]).copied().filter(|c| sheet.col(c).is_none()).collect();
    if !missing.is_empty() {
        out.problems.push(format!(
            "{file}:1: the header lacks {}: export the review again (`lastseen report review`) and fill that file in",
            missing.join(", ")
        ));
        return;
    }
    let get = |row: &[String], name: &str| -> Option<String> {
        sheet.col(name).and_then(|i| row.get(i)).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    };
    let mut seen = HashSet::new();
    for (line, row) in &sheet.rows {
        let at = format!("{file}:{line}");
        let Some(account) = get(row, "account_id") else {
            out.problems.push(format!("{at}: account_id is empty"));
            continue;
        };
        let Some(expected) = review.get(&account) else {
            out.problems.push(format!("{at}: account {account} is not in the review of {}", out.origin.as_of));
            continue;
        };
        if !seen.insert(account.clone()) {
            out.problems.push(format!("{at}: account {account} appears more than once"));
            continue;
        }
        let edited: Vec<&str> =
            KEY_COLUMNS[1..].iter().copied().filter(|k| get(row, k) != expected[k].clone()).collect();
        if !edited.is_empty() {
            out.problems.push(format!(
                "{at}: account {account}: {} edited (expected {}); key columns must stay as exported",
                edited.join(", "),
                edited
                    .iter()
                    .map(|k| format!("{k}={:?}", expected[k].as_deref().unwrap_or("")))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            continue;
        }
        let raw = get(row, "decision").unwrap_or_default();
        let decision = match Decision::parse(&raw) {
            Some(d) => d,
            None if raw.is_empty() || raw.to_ascii_lowercase().starts_with("proposed") => {
                out.undecided += 1;
                continue;
            }
            None => {
                out.problems
                    .push(format!("{at}: account {account}: decision {raw:?} is not one of revoke, keep, investigate"));
                continue;
            }
        };
        let Some(decided_by) = get(row, "decided_by").or_else(|| reviewer.map(str::to_owned)) else {
            out.problems.push(format!(
                "{at}: account {account}: decided_by is empty (fill it in, or pass --reviewer NAME for the whole file)"
            ));
            continue;
        };
        out.rows.push(DecisionRow {
            line: *line,
            workspace_id: get(row, "workspace_id"),
            account_id: account,
            username: get(row, "username"),
            email: get(row, "email"),
            recommendation: get(row, "recommendation"),
            decision,
            decided_by,
            note: get(row, "note"),
        });
    }
}

/// The `review_decisions` rows of a checked file, imported at `now`.
pub fn to_batch(file: &DecisionFile, now: DateTime<Utc>) -> Result<RecordBatch> {
    let n = file.rows.len();
    let o = &file.origin;
    let rep = |v: &str| -> ArrayRef { Arc::new(StringArray::from(vec![v; n])) };
    let col = |f: &dyn Fn(&DecisionRow) -> Option<String>| -> ArrayRef {
        Arc::new(file.rows.iter().map(f).collect::<StringArray>())
    };
    let columns: Vec<ArrayRef> = vec![
        rep(&o.review_id()),
        rep(&o.report),
        Arc::new(Date32Array::from(vec![date32(o.as_of); n])),
        Arc::new(Int64Array::from(vec![i64::try_from(o.lake_version).unwrap_or(i64::MAX); n])),
        Arc::new(StringArray::from(vec![o.run_id.clone(); n])),
        rep(&file.path.display().to_string()),
        rep(&file.sha256),
        Arc::new(Int64Array::from(file.rows.iter().map(|r| i64::try_from(r.line).unwrap_or(0)).collect::<Vec<_>>())),
        col(&|r| r.workspace_id.clone()),
        col(&|r| Some(r.account_id.clone())),
        col(&|r| r.username.clone()),
        col(&|r| r.email.clone()),
        col(&|r| r.recommendation.clone()),
        col(&|r| Some(r.decision.as_str().to_owned())),
        col(&|r| Some(r.decided_by.clone())),
        col(&|r| r.note.clone()),
        Arc::new(TimestampMicrosecondArray::from(vec![now.timestamp_micros(); n]).with_timezone("UTC")),
    ];
    Ok(RecordBatch::try_new(REVIEW_DECISIONS.schema(), columns)?)
}
