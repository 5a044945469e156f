//! Splitting a report into one export per manager (or department, or workspace) plus an index of
//! the files: the review pack each reviewer gets only their own part of.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Int64Array, StringArray, UInt32Array};
use datafusion::arrow::compute::{cast, concat_batches, take_record_batch};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::datasource::MemTable;

use crate::export::{Parameter, ResultSet};
use crate::reports::{ReportDef, ReportOutput};
use crate::{QueryEngine, QueryError, Result};

/// What a report's rows are grouped by, one file per group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitBy {
    /// The owner's manager, by e-mail (case-insensitive): each manager reviews their reports'
    /// accounts.
    Manager,
    /// The owner's department.
    Department,
    /// The account's (home) workspace.
    Workspace,
}

impl SplitBy {
    pub const ALL: [SplitBy; 3] = [SplitBy::Manager, SplitBy::Department, SplitBy::Workspace];

    pub fn name(self) -> &'static str {
        match self {
            SplitBy::Manager => "manager",
            SplitBy::Department => "department",
            SplitBy::Workspace => "workspace",
        }
    }

    /// The report column holding the group key.
    pub fn key_column(self) -> &'static str {
        match self {
            SplitBy::Manager => "manager_email",
            SplitBy::Department => "department",
            SplitBy::Workspace => "workspace_id",
        }
    }

    /// A column naming the group for people, when the report has one.
    fn label_column(self) -> Option<&'static str> {
        match self {
            SplitBy::Manager => Some("manager_name"),
            SplitBy::Department => None,
            SplitBy::Workspace => Some("workspace_name"),
        }
    }

    /// The file of the rows without a key (no owner, or an owner without a manager).
    pub fn none_stem(self) -> &'static str {
        match self {
            SplitBy::Manager => "no-manager",
            SplitBy::Department => "no-department",
            SplitBy::Workspace => "no-workspace",
        }
    }

    /// The group a raw key belongs to. E-mail addresses compare case-insensitively (HR exports
    /// spell the same manager differently); blank means none.
    fn normalize(self, raw: &str) -> Option<String> {
        let t = raw.trim();
        match (t.is_empty(), self) {
            (true, _) => None,
            (false, SplitBy::Manager) => Some(t.to_lowercase()),
            (false, _) => Some(t.to_string()),
        }
    }
}

impl std::str::FromStr for SplitBy {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        SplitBy::ALL
            .into_iter()
            .find(|b| b.name() == s)
            .ok_or_else(|| format!("cannot split by `{s}` (expected manager, department or workspace)"))
    }
}

/// One group's rows, exported as `<file_stem>.<extension>`.
#[derive(Debug)]
pub struct Part {
    /// The normalised key (a manager's e-mail in lower case, a department, a workspace id);
    /// `None` for the rows without one.
    pub key: Option<String>,
    pub file_stem: String,
    pub output: ReportOutput,
}

/// A split report: its parts in key order (the rows without a key last) and the index of them.
#[derive(Debug)]
pub struct SplitOutput {
    pub parts: Vec<Part>,
    /// One row per part: its file, key, label, account count and, for reports with a
    /// `recommendation` column, how many accounts to revoke, investigate and keep.
    pub index: ReportOutput,
}

/// The index's file stem (reserved: no group gets it).
pub const INDEX_STEM: &str = "index";
/// The column of the index holding each part's file name (the HTML index links it).
pub const INDEX_FILE_COLUMN: &str = "file";

/// Split `out` (the result of `def`) by `by`. Charts are recomputed over each part's rows when
/// `charts` is set (only the HTML export draws them, and they cost a query each).
pub async fn split(
    def: &ReportDef,
    engine: &QueryEngine,
    out: &ReportOutput,
    by: SplitBy,
    extension: &str,
    charts: bool,
) -> Result<SplitOutput> {
    let schema = out.data.schema.clone();
    let key_col = by.key_column();
    let Ok(key_idx) = schema.index_of(key_col) else {
        return Err(QueryError::Usage(format!(
            "report `{}` has no `{key_col}` column, so it cannot be split by {} \
             (`lastseen report {} --show-sql` lists its columns)",
            def.name,
            by.name(),
            def.name
        )));
    };
    let all = concat_batches(&schema, &out.data.batches)?;
    let raw = cast(all.column(key_idx), &DataType::Utf8)?;
    let raw = raw.as_any().downcast_ref::<StringArray>().expect("cast to Utf8 gives a StringArray");
    // The group of each row; the index's SQL groups by the same array.
    let keys: StringArray = raw.iter().map(|k| k.and_then(|k| by.normalize(k))).collect();

    // Row positions per group, in the report's own order, so each part keeps its sort.
    let mut groups: BTreeMap<Option<String>, Vec<u32>> = BTreeMap::new();
    for (row, key) in keys.iter().enumerate() {
        groups.entry(key.map(str::to_string)).or_default().push(u32::try_from(row).expect("a report fits in u32 rows"));
    }
    let mut ordered: Vec<(Option<String>, Vec<u32>)> = groups.into_iter().collect();
    // BTreeMap puts `None` first; the rows nobody is responsible for read best last.
    let none_first = ordered.first().is_some_and(|(k, _)| k.is_none());
    ordered.rotate_left(usize::from(none_first));

    let mut taken: BTreeSet<String> = BTreeSet::from([INDEX_STEM.to_string(), by.none_stem().to_string()]);
    let mut parts = Vec::with_capacity(ordered.len());
    for (key, rows) in ordered {
        let file_stem = match &key {
            None => by.none_stem().to_string(),
            Some(k) => unique_stem(&mut taken, &file_stem(k)),
        };
        let batch = take_record_batch(&all, &UInt32Array::from(rows))?;
        let data = ResultSet::new(schema.clone(), vec![batch]);
        let part_charts = if charts { def.charts(engine, &data, &out.binds).await? } else { Vec::new() };
        let mut provenance = out.provenance.clone();
        provenance.title = format!("{} — {}: {}", def.title, by.name(), key.as_deref().unwrap_or("none"));
        provenance.parameters.push(Parameter { name: "split_by".into(), value: by.name().into() });
        provenance
            .parameters
            .push(Parameter { name: key_col.into(), value: key.clone().unwrap_or_else(|| "(none)".into()) });
        let output = ReportOutput { data, charts: part_charts, as_of: out.as_of, provenance, binds: out.binds.clone() };
        parts.push(Part { key, file_stem, output });
    }
    let index = index(def, engine, out, by, &all, keys, &parts, extension).await?;
    Ok(SplitOutput { parts, index })
}

/// The index, by SQL over the report's rows (as `report`, with `keys`, the normalised key of
/// each row, as `split_key`) and the parts' files (as `split_files`); the SQL goes into its provenance.
#[allow(clippy::too_many_arguments, reason = "one private step of `split`, called once")]
async fn index(
    def: &ReportDef,
    engine: &QueryEngine,
    out: &ReportOutput,
    by: SplitBy,
    all: &RecordBatch,
    keys: StringArray,
    parts: &[Part],
    extension: &str,
) -> Result<ReportOutput> {
    let mut fields: Vec<Field> = all.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new("split_key", DataType::Utf8, true));
    let mut columns: Vec<ArrayRef> = all.columns().to_vec();
    columns.push(Arc::new(keys));
    let rows = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?;

    let files = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("ord", DataType::Int64, false),
            Field::new("split_key", DataType::Utf8, true),
            Field::new(INDEX_FILE_COLUMN, DataType::Utf8, false),
        ])),
        vec![
            Arc::new((0..parts.len() as i64).collect::<Int64Array>()),
            Arc::new(parts.iter().map(|p| p.key.as_deref()).collect::<StringArray>()),
            Arc::new(parts.iter().map(|p| Some(format!("{}.{extension}", p.file_stem))).collect::<StringArray>()),
        ],
    )?;

    let has = |c: &str| all.schema().index_of(c).is_ok();
    let key_col = by.key_column();
    let mut select = vec![format!("f.{INDEX_FILE_COLUMN}"), format!("f.split_key AS {key_col}")];
    let mut aggregate = vec!["split_key".to_string()];
    if let Some(label) = by.label_column().filter(|c| has(c)) {
        select.push(format!("r.{label}"));
        aggregate.push(format!("min({label}) AS {label}"));
    }
    select.push("r.accounts".into());
    aggregate.push("count(*) AS accounts".into());
    if has("recommendation") {
        for rec in ["revoke", "investigate", "keep"] {
            select.push(format!("r.{rec}"));
            aggregate.push(format!("count(*) FILTER (WHERE recommendation = '{rec}') AS {rec}"));
        }
    }
    if has("privileged") {
        select.push("r.privileged".into());
        aggregate.push("count(*) FILTER (WHERE privileged) AS privileged".into());
    }
    let sql = format!(
        "SELECT {}\nFROM split_files AS f\nJOIN (\n    SELECT {}\n    FROM report\n    GROUP BY split_key\n) AS r\n  \
         ON r.split_key IS NOT DISTINCT FROM f.split_key\nORDER BY f.ord",
        select.join(", "),
        aggregate.join(", ")
    );

    let ctx = engine.context();
    ctx.register_table("split_files", Arc::new(MemTable::try_new(files.schema(), vec![vec![files]])?))?;
    ctx.register_table(crate::reports::REPORT_TABLE, Arc::new(MemTable::try_new(rows.schema(), vec![vec![rows]])?))?;
    let result = async { ResultSet::collect(engine.plan(&sql, &[]).await?).await }.await;
    ctx.deregister_table("split_files")?;
    ctx.deregister_table(crate::reports::REPORT_TABLE)?;
    let data = result?;

    let mut provenance = out.provenance.clone();
    provenance.title = format!("{} — index by {}", def.title, by.name());
    provenance.parameters.push(Parameter { name: "split_by".into(), value: by.name().into() });
    provenance.sql = format!(
        "{}\n-- The index: `report` is the query above with `split_key` = the normalised `{key_col}`\n\
         -- (trimmed{}; blank = none), `split_files` the file written for each key.\n{sql};\n",
        out.provenance.sql.trim_end(),
        if by == SplitBy::Manager { ", lower-cased" } else { "" }
    );
    Ok(ReportOutput { data, charts: Vec::new(), as_of: out.as_of, provenance, binds: out.binds.clone() })
}

/// A file name for a key that is safe on every file system: letters, digits, `@ . _ -` kept,
/// anything else (path separators included) replaced by `_`, at most 100 characters.
pub fn file_stem(key: &str) -> String {
    let s: String = key
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '@' | '.' | '_' | '-') { c } else { '_' })
        .take(100)
        .collect();
    // A leading dot would hide the file; `.` and `..` would not be files at all.
    let s = s.trim_start_matches('.').to_string();
    if s.is_empty() { "_".into() } else { s }
}

/// `stem`, or `stem-2`, `stem-3`, … when another key already mapped to it (keys differing only
/// in characters the file name cannot hold, or a key equal to a reserved name).
fn unique_stem(taken: &mut BTreeSet<String>, stem: &str) -> String {
    let mut candidate = stem.to_string();
    let mut n = 1;
    while !taken.insert(candidate.to_ascii_lowercase()) {
        n += 1;
        candidate = format!("{stem}-{n}");
    }
    candidate
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_stems_are_safe_and_unique() {
        assert_eq!(file_stem("ann.lee@example.com"), "ann.lee@example.com");
        assert_eq!(file_stem("../etc/passwd"), "_etc_passwd");
        assert_eq!(file_stem("Sales & Marketing"), "Sales___Marketing");
        assert_eq!(file_stem("..."), "_");
        assert_eq!(file_stem(&"x".repeat(300)).len(), 100);
        let mut taken = BTreeSet::from(["index".to_string(), "no-manager".to_string()]);
        assert_eq!(unique_stem(&mut taken, "a_b"), "a_b");
        assert_eq!(unique_stem(&mut taken, "a_b"), "a_b-2");
        assert_eq!(unique_stem(&mut taken, "A_B"), "A_B-3");
        assert_eq!(unique_stem(&mut taken, "index"), "index-2");
        assert_eq!(unique_stem(&mut taken, "No-Manager"), "No-Manager-2");
    }

    #[test]
    fn manager_keys_compare_case_insensitively_and_blank_is_none() {
        assert_eq!(SplitBy::Manager.normalize("  Ann.Lee@Example.COM "), Some("ann.lee@example.com".into()));
        assert_eq!(SplitBy::Department.normalize("Sales"), Some("Sales".into()));
        assert_eq!(SplitBy::Workspace.normalize("   "), None);
        assert_eq!("manager".parse::<SplitBy>(), Ok(SplitBy::Manager));
        assert!("colour".parse::<SplitBy>().unwrap_err().contains("expected manager"));
    }
}
