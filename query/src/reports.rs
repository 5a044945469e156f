//! The report registry. A report is a SQL file in `query/reports/` (compiled in by `build.rs`, so
//! adding a report is adding a file) whose header declares what it is and what it takes:
//!
//! ```sql
//! -- @title      Dormant Slack accounts
//! -- @snapshots  last_seen             -- the as-of day must have a snapshot of these tables
//! -- @param      as_of  the snapshot day (default: the newest)
//! -- @param      days   dormant after this many days without evidence of use
//! SELECT … WHERE u.dt = CAST($as_of AS DATE) …
//!
//! -- @chart bar Dormant accounts by account type
//! SELECT account_type, count(*) AS accounts FROM report GROUP BY account_type
//! ```
//!
//! A report may read a daily rollup the run keeps (`-- @rollup account_report`): when the as-of
//! day has no partition of it (a lake written before the rollup existed), the report runs its
//! oracle instead, `query/reports/oracle/<name>.sql`, the same report over the raw tables (same
//! parameters, columns and rows; the tests compare the two).
//!
//! The main query is everything before the first `@chart` line. Each chart's SQL (up to the next
//! `@chart`) may read the main query's rows as the table `report` as well as the lake tables, and
//! binds the same parameters. Parameters are a fixed set known to the command line; a report
//! binds only those it declares, plus `$cutoff` (= `$as_of` − `$days`) when it takes both.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{Duration, NaiveDate};
use datafusion::common::ScalarValue;
use datafusion::datasource::MemTable;
use datafusion::prelude::DataFrame;

use crate::export::{Chart, ChartKind, Parameter, Provenance, ResultSet};
use crate::{QueryEngine, QueryError, Result};

/// The largest `--days` a report takes: a century, as for `lake.retention`.
pub const MAX_DAYS: u32 = 36_500;

include!(concat!(env!("OUT_DIR"), "/reports.rs"));

/// The parameters a report can declare; each is one command-line option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Param {
    AsOf,
    Days,
    App,
    Workspace,
    Department,
    ExcludeGuests,
    IncludeBots,
}

impl Param {
    pub const ALL: [Param; 7] = [
        Param::AsOf,
        Param::Days,
        Param::App,
        Param::Workspace,
        Param::Department,
        Param::ExcludeGuests,
        Param::IncludeBots,
    ];

    /// The `$name` it binds.
    pub fn name(self) -> &'static str {
        match self {
            Param::AsOf => "as_of",
            Param::Days => "days",
            Param::App => "app",
            Param::Workspace => "workspace",
            Param::Department => "department",
            Param::ExcludeGuests => "exclude_guests",
            Param::IncludeBots => "include_bots",
        }
    }

    /// The command-line option that sets it.
    pub fn flag(self) -> String {
        format!("--{}", self.name().replace('_', "-"))
    }
}

#[derive(Debug, Clone)]
pub struct ParamDecl {
    pub param: Param,
    pub help: String,
}

#[derive(Debug, Clone)]
pub struct ChartDef {
    pub kind: ChartKind,
    pub title: String,
    pub sql: String,
}

/// A parsed report file.
#[derive(Debug, Clone)]
pub struct ReportDef {
    pub name: String,
    pub title: String,
    /// The first sentence of the file's first comment paragraph.
    pub summary: String,
    pub params: Vec<ParamDecl>,
    /// Tables that must have a snapshot on the as-of day.
    pub snapshots: Vec<String>,
    /// Rollups the query reads: without a partition of each on the as-of day, the oracle runs.
    pub rollups: Vec<String>,
    /// `-- @guard`: a query returning one boolean; unless it is true for the bound parameters,
    /// the rollups cannot answer exactly and the oracle runs.
    pub guard: Option<String>,
    /// The whole file, as `--show-sql` prints it and provenance records it.
    pub sql: String,
    /// The main query (the file up to the first chart).
    pub query: String,
    pub charts: Vec<ChartDef>,
}

/// The values the caller gives; `None`/`false` means "not given".
#[derive(Debug, Clone, Default)]
pub struct ReportParams {
    /// Default: the newest day every `@snapshots` table has.
    pub as_of: Option<NaiveDate>,
    pub days: Option<u32>,
    /// Only accounts of this app (`accounts.app`); `None` = every app.
    pub app: Option<String>,
    pub workspace: Option<String>,
    pub department: Option<String>,
    pub exclude_guests: bool,
    pub include_bots: bool,
}

impl ReportParams {
    fn given(&self, p: Param) -> bool {
        match p {
            Param::AsOf => self.as_of.is_some(),
            Param::Days => self.days.is_some(),
            Param::App => self.app.is_some(),
            Param::Workspace => self.workspace.is_some(),
            Param::Department => self.department.is_some(),
            Param::ExcludeGuests => self.exclude_guests,
            Param::IncludeBots => self.include_bots,
        }
    }
}

/// A report's rows, its charts' rows, and the provenance of both.
#[derive(Debug)]
pub struct ReportOutput {
    pub data: ResultSet,
    pub charts: Vec<Chart>,
    pub as_of: Option<NaiveDate>,
    pub provenance: Provenance,
    /// The values bound to the SQL's placeholders, kept to re-run the charts over a subset.
    pub(crate) binds: Vec<(&'static str, ScalarValue)>,
}

/// A report's rows as its query produces them, with their provenance.
pub struct ReportStream {
    /// The report's physical plan and what runs it (`export::save_plan` takes both).
    pub plan: std::sync::Arc<dyn datafusion::physical_plan::ExecutionPlan>,
    pub context: std::sync::Arc<datafusion::execution::TaskContext>,
    pub as_of: Option<NaiveDate>,
    pub provenance: Provenance,
}

impl std::fmt::Debug for ReportStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReportStream").field("as_of", &self.as_of).finish_non_exhaustive()
    }
}

/// What running a report needs before its query: the definition that answers (the report or
/// its oracle), the as-of day, the bound parameters and the provenance of the export.
struct Prepared {
    def: ReportDef,
    as_of: Option<NaiveDate>,
    binds: Vec<(&'static str, ScalarValue)>,
    provenance: Provenance,
}

/// Every built-in report, by name.
pub fn builtin() -> Result<Vec<ReportDef>> {
    BUILTIN.iter().map(|(name, sql)| ReportDef::parse(name, sql)).collect()
}

/// The built-in report `name`, or a usage error listing the others.
pub fn find(name: &str) -> Result<ReportDef> {
    match BUILTIN.iter().find(|(n, _)| *n == name) {
        Some((n, sql)) => ReportDef::parse(n, sql),
        None => Err(QueryError::Usage(format!(
            "no report named `{name}`; the reports are: {}",
            BUILTIN.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
        ))),
    }
}

impl ReportDef {
    pub fn parse(name: &str, text: &str) -> Result<ReportDef> {
        let bad = |line: usize, message: String| QueryError::ReportDefinition { report: name.into(), line, message };
        let mut def = ReportDef {
            name: name.into(),
            title: String::new(),
            summary: String::new(),
            params: Vec::new(),
            snapshots: Vec::new(),
            rollups: Vec::new(),
            guard: None,
            sql: text.into(),
            query: String::new(),
            charts: Vec::new(),
        };
        // Where the text of the section being read (main query, guard or a chart) goes.
        let mut section = String::new();
        let mut in_guard = false;
        let mut summary_done = false;
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            let Some(directive) = line.trim_start().strip_prefix("--").map(str::trim).and_then(|c| c.strip_prefix('@'))
            else {
                // The summary is the first sentence of the file's first comment paragraph.
                match line.trim_start().strip_prefix("--").map(str::trim) {
                    Some(c) if !summary_done && !c.is_empty() => {
                        if !def.summary.is_empty() {
                            def.summary.push(' ');
                        }
                        def.summary.push_str(c);
                        summary_done = def.summary.contains(". ") || def.summary.ends_with('.');
                    }
                    _ => summary_done |= !def.summary.is_empty(),
                }
                section.push_str(line);
                section.push('\n');
                continue;
            };
            let (key, rest) = directive.split_once(char::is_whitespace).unwrap_or((directive, ""));
            let rest = rest.trim();
            match key {
                "title" => def.title = rest.to_string(),
                "snapshots" => {
                    def.snapshots = rest.split(',').map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect();
                }
                "guard" => {
                    if in_guard || def.guard.is_some() || !def.charts.is_empty() {
                        return Err(bad(n, "one `@guard` section, after the main query and before the charts".into()));
                    }
                    def.close_section(std::mem::take(&mut section), false);
                    in_guard = true;
                }
                "rollup" => {
                    def.rollups = rest.split(',').map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect();
                }
                "param" => {
                    let (pname, help) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
                    let param = Param::ALL.into_iter().find(|p| p.name() == pname).ok_or_else(|| {
                        bad(
                            n,
                            format!("unknown parameter `{pname}` (known: {})", Param::ALL.map(Param::name).join(", ")),
                        )
                    })?;
                    if def.params.iter().any(|d| d.param == param) {
                        return Err(bad(n, format!("parameter `{pname}` declared twice")));
                    }
                    def.params.push(ParamDecl { param, help: help.trim().to_string() });
                }
                "chart" => {
                    let (kind, title) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
                    let kind = kind.parse::<ChartKind>().map_err(|e| bad(n, e))?;
                    if title.trim().is_empty() {
                        return Err(bad(n, "a chart needs a title: `-- @chart line|bar <title>`".into()));
                    }
                    def.close_section(std::mem::take(&mut section), std::mem::take(&mut in_guard));
                    def.charts.push(ChartDef { kind, title: title.trim().to_string(), sql: String::new() });
                }
                other => {
                    return Err(bad(
                        n,
                        format!("unknown directive `@{other}` (known: title, snapshots, rollup, param, guard, chart)"),
                    ));
                }
            }
        }
        def.close_section(section, in_guard);
        if def.guard.as_ref().is_some_and(|g| g.trim().is_empty()) {
            return Err(bad(1, "the `@guard` section has no SQL".into()));
        }
        if let Some(end) = def.summary.find(". ") {
            def.summary.truncate(end + 1);
        }
        if def.title.is_empty() {
            return Err(bad(1, "missing `-- @title <title>`".into()));
        }
        if def.query.trim().is_empty() {
            return Err(bad(1, "no query before the first `@chart`".into()));
        }
        if let Some(c) = def.charts.iter().find(|c| c.sql.trim().is_empty()) {
            return Err(bad(1, format!("chart \"{}\" has no SQL", c.title)));
        }
        if !def.rollups.is_empty() && !def.takes(Param::AsOf) {
            return Err(bad(1, "a report reading `@rollup` tables must take `as_of`".into()));
        }
        if def.takes(Param::AsOf) && def.snapshots.is_empty() {
            return Err(bad(1, "a report taking `as_of` must name its `@snapshots` tables".into()));
        }
        Ok(def)
    }

    fn close_section(&mut self, text: String, guard: bool) {
        if guard {
            self.guard = Some(text);
            return;
        }
        match self.charts.last_mut() {
            Some(c) => c.sql = text,
            None => self.query = text,
        }
    }

    pub fn takes(&self, p: Param) -> bool {
        self.params.iter().any(|d| d.param == p)
    }

    /// Every `$name` the SQL may use: the declared parameters and the derived ones.
    pub fn bound_names(&self) -> BTreeSet<&'static str> {
        let mut out: BTreeSet<_> = self.params.iter().map(|d| d.param.name()).collect();
        if self.takes(Param::AsOf) && self.takes(Param::Days) {
            out.insert("cutoff");
        }
        out
    }

    /// A usage error for a parameter given that this report does not take, or a missing one.
    pub fn check(&self, p: &ReportParams) -> Result<()> {
        for param in Param::ALL {
            if p.given(param) && !self.takes(param) {
                let takes: Vec<String> = self.params.iter().map(|d| d.param.flag()).collect();
                return Err(QueryError::Usage(format!(
                    "report `{}` does not take {}; it takes {}",
                    self.name,
                    param.flag(),
                    if takes.is_empty() { "no parameters".to_string() } else { takes.join(", ") }
                )));
            }
        }
        if self.takes(Param::Days) && p.days.is_none() {
            return Err(QueryError::Usage(format!("report `{}` needs --days", self.name)));
        }
        // A bound, not only a type: `$as_of - $days` must stay a date, and `usage` expands one
        // row per day of the range.
        if let Some(days) = p.days.filter(|d| !(1..=MAX_DAYS).contains(d)) {
            return Err(QueryError::Usage(format!("--days must be between 1 and {MAX_DAYS} (got {days})")));
        }
        Ok(())
    }

    /// The unoptimised report over the raw tables (`query/reports/oracle/<name>.sql`), for a
    /// report that reads rollups: what runs when the as-of day has none, and the tests' oracle.
    pub fn oracle(&self) -> Result<Option<ReportDef>> {
        ORACLES.iter().find(|(n, _)| *n == self.name).map(|(n, sql)| ReportDef::parse(n, sql)).transpose()
    }

    /// Whether this definition's rollups answer for `as_of`: every rollup it reads has a
    /// partition that day, and its `@guard`, if any, is true for `binds`.
    pub async fn rollups_answer(
        &self,
        engine: &QueryEngine,
        as_of: Option<NaiveDate>,
        binds: &[(&str, ScalarValue)],
    ) -> Result<bool> {
        let Some(d) = as_of.filter(|_| !self.rollups.is_empty()) else { return Ok(true) };
        if !self.rollups.iter().all(|t| engine.dates(t).contains(&d)) {
            return Ok(false);
        }
        let Some(guard) = &self.guard else { return Ok(true) };
        let rows = engine.plan(guard, binds).await?.collect().await?;
        let Some(first) = rows.iter().find(|b| b.num_rows() > 0) else { return Ok(false) };
        let flag =
            first.column(0).as_any().downcast_ref::<datafusion::arrow::array::BooleanArray>().ok_or_else(|| {
                QueryError::ReportDefinition {
                    report: self.name.clone(),
                    line: 0,
                    message: format!("the `@guard` query must return a boolean, not {}", first.column(0).data_type()),
                }
            })?;
        Ok(datafusion::arrow::array::Array::is_valid(flag, 0) && flag.value(0))
    }

    /// The definition that answers for `as_of` on `engine`'s lake: this one when its rollups
    /// answer (see [`ReportDef::rollups_answer`]), else its oracle (same rows over the raw tables).
    pub async fn effective(
        &self,
        engine: &QueryEngine,
        as_of: Option<NaiveDate>,
        binds: &[(&str, ScalarValue)],
    ) -> Result<ReportDef> {
        if self.rollups_answer(engine, as_of, binds).await? {
            return Ok(self.clone());
        }
        let d = as_of.expect("a report reading rollups takes as_of");
        match self.oracle()? {
            // The rows are the same; provenance records the oracle's SQL as the one that ran.
            Some(oracle) => Ok(oracle),
            None => Err(QueryError::NoData(format!(
                "report `{}` reads {} and the lake has none for {d}: run `lastseen run` for that day to write it",
                self.name,
                self.rollups.join(" + ")
            ))),
        }
    }

    /// Run the report and its charts over `engine`'s lake version.
    pub async fn run(&self, engine: &QueryEngine, p: &ReportParams) -> Result<ReportOutput> {
        self.run_with(engine, p, true).await
    }

    /// Run the report, and its charts only when `charts` is set: only the HTML export draws
    /// them, and each is a query over all the report's rows.
    pub async fn run_with(&self, engine: &QueryEngine, p: &ReportParams, charts: bool) -> Result<ReportOutput> {
        let Prepared { def, as_of, binds, provenance } = self.prepare(engine, p).await?;
        let data = ResultSet::collect(engine.plan(&def.query, &binds).await?).await?;
        let charts = if charts { def.charts(engine, &data, &binds).await? } else { Vec::new() };
        Ok(ReportOutput { data, charts, as_of, provenance, binds })
    }

    /// Bind the parameters, choose the definition that answers, and record the provenance.
    async fn prepare(&self, engine: &QueryEngine, p: &ReportParams) -> Result<Prepared> {
        let (as_of, binds, shown) = self.bind(engine, p)?;
        let def = self.effective(engine, as_of, &binds).await?;
        let mut provenance = engine.provenance(&self.title, &def.sql).await?;
        provenance.report = Some(self.name.clone());
        provenance.as_of = as_of;
        provenance.parameters = shown;
        Ok(Prepared { def, as_of, binds, provenance })
    }

    /// The report's rows as a stream, for an export written as they come (no charts: only the
    /// HTML export draws them, from all the rows); otherwise as [`ReportDef::run_with`].
    pub async fn stream(&self, engine: &QueryEngine, p: &ReportParams) -> Result<ReportStream> {
        let Prepared { def, as_of, binds, provenance } = self.prepare(engine, p).await?;
        let df = engine.plan(&def.query, &binds).await?;
        let context = std::sync::Arc::new(df.task_ctx());
        let plan = df.create_physical_plan().await?;
        Ok(ReportStream { plan, context, as_of, provenance })
    }

    /// Run the report's main query as it runs (reading its rollups) and its oracle (the same
    /// report over the raw tables) with `p` bound, and say where they differ: column names, row
    /// count, or the first row that differs (rows are compared in order, value by value, as
    /// text: an Int32 and an Int64 holding 3 are equal, NULL and '' are not). `Ok(None)` when the
    /// rows are the same. An error when the report has no oracle or the as-of day no rollup
    /// or its guard fails (there would be nothing to compare): [`QueryError::NoData`].
    pub async fn oracle_difference(&self, engine: &QueryEngine, p: &ReportParams) -> Result<Option<String>> {
        let oracle = self
            .oracle()?
            .ok_or_else(|| QueryError::Usage(format!("report `{}` reads no rollup and has no oracle", self.name)))?;
        let (as_of, binds, _) = self.bind(engine, p)?;
        if !self.rollups_answer(engine, as_of, &binds).await? {
            return Err(QueryError::NoData(format!(
                "the {} rollups cannot answer for these parameters (no rollup or the guard fails): nothing to compare",
                self.rollups.join(" + ")
            )));
        }
        let fast = engine.plan(&self.query, &binds).await?.collect().await?;
        let slow = engine.plan(&oracle.query, &binds).await?.collect().await?;
        let names = |b: &[datafusion::arrow::record_batch::RecordBatch]| -> Option<Vec<String>> {
            b.first().map(|b| b.schema().fields().iter().map(|f| f.name().clone()).collect())
        };
        let (fast_rows, slow_rows) = (rows_as_text(&fast)?, rows_as_text(&slow)?);
        if let (Some(f), Some(s)) = (names(&fast), names(&slow))
            && f != s
        {
            return Ok(Some(format!("columns differ: {f:?} vs the oracle's {s:?}")));
        }
        if fast_rows.len() != slow_rows.len() {
            return Ok(Some(format!("{} rows, the oracle {}", fast_rows.len(), slow_rows.len())));
        }
        Ok(fast_rows
            .iter()
            .zip(&slow_rows)
            .position(|(a, b)| a != b)
            .map(|i| format!("row {i} differs: {:?} vs the oracle's {:?}", fast_rows[i], slow_rows[i])))
    }

    /// The report's main query with `p` bound, not yet run: what `lastseen serve` registers as
    /// the view `report_<name>`. Returns the as-of day it was bound to.
    pub async fn plan(&self, engine: &QueryEngine, p: &ReportParams) -> Result<(DataFrame, Option<NaiveDate>)> {
        let (as_of, binds, _) = self.bind(engine, p)?;
        let def = self.effective(engine, as_of, &binds).await?;
        Ok((engine.plan(&def.query, &binds).await?, as_of))
    }

    /// The values bound to the SQL's placeholders and how provenance shows them.
    #[allow(clippy::type_complexity)]
    fn bind(
        &self,
        engine: &QueryEngine,
        p: &ReportParams,
    ) -> Result<(Option<NaiveDate>, Vec<(&'static str, ScalarValue)>, Vec<Parameter>)> {
        self.check(p)?;
        let as_of = if self.takes(Param::AsOf) { Some(resolve_as_of(engine, &self.snapshots, p.as_of)?) } else { None };
        let mut binds: Vec<(&'static str, ScalarValue)> = Vec::new();
        let mut shown: Vec<Parameter> = Vec::new();
        let mut bind = |name: &'static str, v: ScalarValue, text: String| {
            binds.push((name, v));
            shown.push(Parameter { name: name.into(), value: text });
        };
        for d in &self.params {
            match d.param {
                Param::AsOf => {
                    let d = as_of.expect("resolved above for reports taking as_of");
                    bind("as_of", lastseen_lake::catalog::date_scalar(d), d.to_string());
                }
                Param::Days => {
                    let days = p.days.expect("checked above");
                    bind("days", ScalarValue::Int64(Some(i64::from(days))), days.to_string());
                }
                Param::App => {
                    let text = p.app.clone().unwrap_or_else(|| "all".into());
                    bind("app", ScalarValue::Utf8(p.app.clone()), text);
                }
                Param::Workspace => {
                    let text = p.workspace.clone().unwrap_or_else(|| "all".into());
                    bind("workspace", ScalarValue::Utf8(p.workspace.clone()), text);
                }
                Param::Department => {
                    let text = p.department.clone().unwrap_or_else(|| "all".into());
                    bind("department", ScalarValue::Utf8(p.department.clone()), text);
                }
                Param::ExcludeGuests => {
                    bind("exclude_guests", ScalarValue::Boolean(Some(p.exclude_guests)), p.exclude_guests.to_string());
                }
                Param::IncludeBots => {
                    bind("include_bots", ScalarValue::Boolean(Some(p.include_bots)), p.include_bots.to_string());
                }
            }
        }
        if let (Some(d), Some(days)) = (as_of, p.days.filter(|_| self.takes(Param::Days))) {
            let cutoff = d.checked_sub_signed(Duration::days(i64::from(days))).ok_or_else(|| {
                QueryError::Usage(format!("--days {days} reaches before the first representable date"))
            })?;
            bind("cutoff", lastseen_lake::catalog::date_scalar(cutoff), cutoff.to_string());
        }
        Ok((as_of, binds, shown))
    }

    pub(crate) async fn charts(
        &self,
        engine: &QueryEngine,
        data: &ResultSet,
        binds: &[(&str, ScalarValue)],
    ) -> Result<Vec<Chart>> {
        if self.charts.is_empty() {
            return Ok(Vec::new());
        }
        let ctx = engine.context();
        let table = MemTable::try_new(data.schema.clone(), vec![data.batches.clone()])?;
        ctx.register_table(REPORT_TABLE, Arc::new(table))?;
        let mut out = Vec::with_capacity(self.charts.len());
        let mut result = Ok(());
        for c in &self.charts {
            match async { ResultSet::collect(engine.plan(&c.sql, binds).await?).await }.await {
                Ok(rows) => out.push(Chart { kind: c.kind, title: c.title.clone(), data: rows }),
                Err(e) => {
                    result = Err(QueryError::ReportDefinition {
                        report: self.name.clone(),
                        line: 0,
                        message: format!("chart \"{}\" failed: {e}", c.title),
                    });
                    break;
                }
            }
        }
        ctx.deregister_table(REPORT_TABLE)?;
        result.map(|()| out)
    }
}

/// Every row of `batches` as its values' display text, `None` for NULL.
pub fn rows_as_text(batches: &[datafusion::arrow::record_batch::RecordBatch]) -> Result<Vec<Vec<Option<String>>>> {
    use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
    let options = FormatOptions::default();
    let mut out = Vec::new();
    for b in batches {
        let formatters = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(datafusion::error::DataFusionError::from)?;
        for row in 0..b.num_rows() {
            out.push(
                b.columns()
                    .iter()
                    .zip(&formatters)
                    .map(|(c, f)| (!c.is_null(row)).then(|| f.value(row).to_string()))
                    .collect(),
            );
        }
    }
    Ok(out)
}

/// The table name under which chart SQL sees the report's rows.
pub const REPORT_TABLE: &str = "report";

/// The as-of day must be a committed snapshot day of every table in `tables`.
fn resolve_as_of(engine: &QueryEngine, tables: &[String], wanted: Option<NaiveDate>) -> Result<NaiveDate> {
    let mut common: Option<BTreeSet<NaiveDate>> = None;
    for t in tables {
        let days: BTreeSet<NaiveDate> = engine.dates(t).into_iter().collect();
        common = Some(match common {
            None => days,
            Some(c) => c.intersection(&days).copied().collect(),
        });
    }
    let days = common.unwrap_or_default();
    let (Some(first), Some(last)) = (days.first(), days.last()) else {
        return Err(QueryError::NoData(format!(
            "the lake has no {} snapshot yet: run `lastseen run` (or `lastseen demo`) first",
            tables.join(" + ")
        )));
    };
    match wanted {
        None => Ok(*last),
        Some(d) if days.contains(&d) => Ok(d),
        Some(d) => Err(QueryError::NoData(format!(
            "no snapshot for {d}: the lake has {} snapshot day(s) from {first} to {last}; pick one of them with --as-of",
            days.len()
        ))),
    }
}

/// The `$name` placeholders `sql` uses, outside comments and string literals.
pub fn placeholders(sql: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '-' if chars.peek() == Some(&'-') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '\'' => {
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                }
            }
            '$' => {
                let mut name = String::new();
                while let Some(c) = chars.peek().copied().filter(|c| c.is_ascii_alphanumeric() || *c == '_') {
                    name.push(c);
                    chars.next();
                }
                if !name.is_empty() {
                    out.insert(name);
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_report_parses_and_binds_exactly_what_it_declares() {
        let reports = builtin().unwrap();
        assert!(reports.iter().any(|r| r.name == "dormant"));
        for r in reports {
            let bound: BTreeSet<String> = r.bound_names().into_iter().map(String::from).collect();
            let mut used = placeholders(&r.query);
            used.extend(r.guard.iter().flat_map(|g| placeholders(g)));
            for c in &r.charts {
                used.extend(placeholders(&c.sql));
            }
            // `$cutoff` is `$as_of - $days`: a report using it uses `days`.
            if used.contains("cutoff") {
                used.insert("days".into());
            }
            assert_eq!(used, bound, "report {}: placeholders used vs declared (+ derived)", r.name);
            assert!(!r.summary.is_empty(), "report {} needs a first comment line", r.name);
        }
    }

    #[test]
    fn every_oracle_is_its_reports_twin_over_the_raw_tables() {
        let reports = builtin().unwrap();
        for (name, _) in ORACLES {
            let r = reports.iter().find(|r| r.name == *name).unwrap_or_else(|| panic!("oracle {name} has no report"));
            let o = r.oracle().unwrap().unwrap();
            assert!(!r.rollups.is_empty() && o.rollups.is_empty(), "{name}");
            let params = |d: &ReportDef| d.params.iter().map(|p| p.param).collect::<Vec<_>>();
            assert_eq!(params(r), params(&o), "{name}: parameters");
            assert_eq!(r.snapshots, o.snapshots, "{name}");
            let charts = |d: &ReportDef| d.charts.iter().map(|c| (c.title.clone(), c.sql.clone())).collect::<Vec<_>>();
            assert_eq!(charts(r), charts(&o), "{name}: charts");
            for t in &r.rollups {
                assert!(!o.query.contains(t.as_str()), "{name}: the oracle must not read {t}");
            }
        }
        for r in &reports {
            assert_eq!(
                r.rollups.is_empty(),
                r.oracle().unwrap().is_none(),
                "{}: a rollup report needs an oracle",
                r.name
            );
        }
    }

    #[test]
    fn dormant_declares_its_parameters_and_charts() {
        let r = find("dormant").unwrap();
        assert_eq!(r.title, "Dormant accounts");
        assert_eq!(r.summary, "dormant: accounts that can still be used but show no evidence of use.");
        // A first sentence wrapped over two comment lines is read whole, and only it.
        assert_eq!(find("review").unwrap().summary, "review: the access-review pack.");
        let params: Vec<_> = r.params.iter().map(|d| d.param).collect();
        assert_eq!(params, Param::ALL);
        assert_eq!(r.snapshots, ["last_seen"]);
        let titles: Vec<_> = r.charts.iter().map(|c| (c.kind, c.title.as_str())).collect();
        assert_eq!(
            titles,
            [
                (ChartKind::Bar, "Dormant accounts by department"),
                (ChartKind::Bar, "Dormant accounts by account type"),
                (ChartKind::Bar, "Dormant accounts by time since last seen"),
            ]
        );
        assert!(!r.query.contains("@chart") && r.query.contains("FROM account_report"));
        assert_eq!(r.rollups, ["account_report"]);
        let oracle = r.oracle().unwrap().expect("dormant has an oracle");
        assert!(oracle.query.contains("FROM accounts AS a") && oracle.rollups.is_empty());
    }

    fn takes_nothing(reports: &[ReportDef], name: &str) -> bool {
        reports.iter().find(|r| r.name == name).is_some_and(|r| r.params.is_empty())
    }

    #[test]
    fn every_builtin_report_is_registered_with_its_parameters() {
        let reports = builtin().unwrap();
        let names: Vec<_> = reports.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            ["deprovisioned", "dormant", "identities", "orphans", "review", "seats", "terminated", "usage"]
        );
        assert!(takes_nothing(&reports, "deprovisioned"));
        let takes = |name: &str| -> Vec<Param> {
            reports.iter().find(|r| r.name == name).unwrap().params.iter().map(|d| d.param).collect()
        };
        for name in ["dormant", "review", "seats", "usage"] {
            assert_eq!(takes(name), Param::ALL, "{name}");
        }
        assert_eq!(takes("orphans"), [Param::AsOf, Param::Days, Param::App, Param::Workspace, Param::ExcludeGuests]);
        assert_eq!(takes("identities"), [Param::AsOf, Param::Days, Param::App, Param::Department]);
        assert_eq!(
            takes("terminated"),
            [Param::AsOf, Param::App, Param::Workspace, Param::Department, Param::ExcludeGuests, Param::IncludeBots]
        );
        let usage = reports.iter().find(|r| r.name == "usage").unwrap();
        assert_eq!(usage.charts[0].kind, ChartKind::Line);
        assert!(reports.iter().all(|r| !r.charts.is_empty()), "every report has a chart");
    }

    #[test]
    fn header_errors_name_the_line() {
        let e = ReportDef::parse("x", "-- x\n-- @title T\n-- @param colour blue\nSELECT 1").unwrap_err();
        assert_eq!(
            e.to_string(),
            "report `x` is malformed, line 3: unknown parameter `colour` (known: as_of, days, app, workspace, department, exclude_guests, include_bots)"
        );
        let e = ReportDef::parse("x", "-- x\n-- @title T\nSELECT 1\n-- @chart pie Share\nSELECT 1").unwrap_err();
        assert!(e.to_string().contains("line 4: unknown chart kind `pie`"), "{e}");
        let e = ReportDef::parse("x", "-- x\nSELECT 1").unwrap_err();
        assert!(e.to_string().contains("missing `-- @title"), "{e}");
    }

    #[test]
    fn parameters_a_report_does_not_take_are_usage_errors() {
        let r = find("orphans").unwrap();
        let p = ReportParams { days: Some(30), department: Some("Sales".into()), ..Default::default() };
        let e = r.check(&p).unwrap_err();
        assert!(matches!(e, QueryError::Usage(_)));
        assert_eq!(
            e.to_string(),
            "report `orphans` does not take --department; it takes --as-of, --days, --app, --workspace, --exclude-guests"
        );
        assert!(r.check(&ReportParams::default()).unwrap_err().to_string().contains("needs --days"));
        let e = find("terminated").unwrap().check(&ReportParams { days: Some(30), ..Default::default() }).unwrap_err();
        assert!(e.to_string().starts_with("report `terminated` does not take --days"), "{e}");
        assert!(
            find("nope")
                .unwrap_err()
                .to_string()
                .starts_with("no report named `nope`; the reports are: deprovisioned, dormant")
        );
    }

    #[test]
    fn days_are_bounded_so_no_date_overflows() {
        let r = find("dormant").unwrap();
        for days in [0, 36_501, 4_000_000_000] {
            let e = r.check(&ReportParams { days: Some(days), ..Default::default() }).unwrap_err();
            assert!(matches!(e, QueryError::Usage(_)), "{days}: {e}");
            assert!(e.to_string().contains("between 1 and 36500"), "{e}");
        }
        r.check(&ReportParams { days: Some(36_500), ..Default::default() }).unwrap();
    }

    #[test]
    fn placeholders_skip_comments_and_strings() {
        let got = placeholders("-- $not\nSELECT '$nor', $as_of, x FROM t WHERE y = $days_2 -- $no");
        assert_eq!(got.into_iter().collect::<Vec<_>>(), ["as_of", "days_2"]);
    }
}
