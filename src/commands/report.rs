//! `lastseen report`: the reports of the registry (SQL files in `query/reports/`), run with the
//! command line's parameters and exported with their provenance, whole or split per manager.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;
use lastseen_query::reports::{self, Param, ReportDef};
use lastseen_query::split::{INDEX_FILE_COLUMN, INDEX_STEM, SplitBy, SplitOutput};
use lastseen_query::{Document, ExportOptions, Format, QueryError, ReportParams};

use crate::cli::{GlobalArgs, OutputArgs, ReportArgs};

pub async fn run(g: &GlobalArgs, args: &ReportArgs) -> anyhow::Result<u8> {
    if args.list {
        out!("{}", listing(&reports::builtin()?));
        return Ok(crate::exit::OK);
    }
    let name = args.name.as_deref().unwrap_or_default();
    let def = reports::find(name)?;
    if args.show_sql {
        out!("{}", def.sql);
        return Ok(crate::exit::OK);
    }
    let cfg = super::load_config(g)?;
    let params = ReportParams {
        as_of: args.as_of,
        // The configured threshold is the default of every report that takes one.
        days: args.days.or(def.takes(Param::Days).then_some(cfg.reports.dormant_days)),
        app: args.app.clone(),
        workspace: args.workspace.clone(),
        department: args.department.clone(),
        exclude_guests: args.exclude_guests,
        include_bots: args.include_bots,
    };
    def.check(&params)?;
    if let Some(dir) = args.output.output.as_deref().filter(|_| args.split_by.is_some()) {
        check_new_or_empty(dir)?;
    }
    let lake = super::open_lake(&cfg)?;
    let engine = match args.lake_version {
        Some(v) => lastseen_query::QueryEngine::open_version(&lake, v).await?,
        None => lastseen_query::QueryEngine::open(&lake).await?,
    };
    // Only the HTML export (whole or split) draws the charts; the others skip their queries.
    let format = Format::from(args.output.format);
    if format.streams() && args.split_by.is_none() {
        // Written as the query produces the rows, not after all of them are held.
        let out = def.stream(&engine, &params).await?;
        if let Some(as_of) = out.as_of {
            warn_if_no_evidence(&lake, as_of).await;
        }
        let rows = super::emit_plan(out.plan, out.context, &out.provenance, &args.output).await?;
        tracing::info!(report = %def.name, as_of = ?out.as_of, rows, lake_version = ?out.provenance.lake_version, "report");
        return Ok(crate::exit::OK);
    }
    let html = format == Format::Html;
    let out = def.run_with(&engine, &params, html && args.split_by.is_none()).await?;
    tracing::info!(report = %def.name, as_of = ?out.as_of, rows = out.data.rows(), "report");
    if let Some(as_of) = out.as_of {
        warn_if_no_evidence(&lake, as_of).await;
    }
    match args.split_by {
        Some(by) => {
            let dir = args.output.output.as_deref().expect("clap requires --output with --split-by");
            split(&def, &engine, &out, by.into(), dir, &args.output).await?;
        }
        None => super::emit(&out.data, &out.provenance, &out.charts, &args.output)?,
    }
    Ok(crate::exit::OK)
}

impl From<crate::cli::SplitBy> for SplitBy {
    fn from(b: crate::cli::SplitBy) -> Self {
        match b {
            crate::cli::SplitBy::Manager => SplitBy::Manager,
            crate::cli::SplitBy::Department => SplitBy::Department,
            crate::cli::SplitBy::Workspace => SplitBy::Workspace,
        }
    }
}

/// `--split-by`: one export per group plus the index, built in a hidden folder next to `dir`
/// and renamed into place, so `dir` holds a complete pack or nothing (a stale file from an
/// earlier pack could otherwise pass for a current one).
async fn split(
    def: &ReportDef,
    engine: &lastseen_query::QueryEngine,
    out: &lastseen_query::ReportOutput,
    by: SplitBy,
    dir: &Path,
    o: &OutputArgs,
) -> anyhow::Result<()> {
    let format: Format = o.format.into();
    let parts = lastseen_query::split::split(def, engine, out, by, format.extension(), format == Format::Html).await?;
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "split".into());
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let staging = parent.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = write_parts(&parts, format, o, &staging).and_then(|files| {
        if dir.exists() {
            std::fs::remove_dir(dir).with_context(|| format!("replacing the empty folder {}", dir.display()))?;
        }
        std::fs::rename(&staging, dir).with_context(|| format!("moving the pack into {}", dir.display()))?;
        Ok(files)
    });
    let files = match written {
        Ok(files) => files,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    tracing::info!(dir = %dir.display(), parts = parts.parts.len(), files, "wrote the split report");
    let ext = format.extension();
    outln!(
        "{}: {} file(s), one per {} ({} rows without one in {}.{ext}), index in {}",
        dir.display(),
        parts.parts.len(),
        by.name(),
        parts.parts.iter().find(|p| p.key.is_none()).map_or(0, |p| p.output.data.rows()),
        by.none_stem(),
        dir.join(format!("{INDEX_STEM}.{ext}")).display(),
    );
    Ok(())
}

/// `--split-by` writes a whole folder: refuse one with files in it before running anything.
fn check_new_or_empty(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        let empty = std::fs::read_dir(dir)
            .with_context(|| format!("--output {} exists but cannot be read as a folder", dir.display()))?
            .next()
            .is_none();
        if !empty {
            return Err(QueryError::Usage(format!(
                "--output {} is not empty: --split-by writes a new folder (e.g. one per review date) so no \
                 file of an earlier pack is mistaken for part of this one",
                dir.display()
            ))
            .into());
        }
    }
    Ok(())
}

/// Every part and the index into `staging`; returns how many files (side files included).
fn write_parts(split: &SplitOutput, format: Format, o: &OutputArgs, staging: &Path) -> anyhow::Result<usize> {
    // Owner-only (0700): the pack holds personal data; `create` fails if the name is taken.
    lastseen_query::export::create_private_dir(staging).with_context(|| format!("creating {}", staging.display()))?;
    let options = ExportOptions { bom: o.bom, ..Default::default() };
    let mut files = 0;
    for part in &split.parts {
        let doc = Document {
            data: &part.output.data,
            provenance: &part.output.provenance,
            charts: &part.output.charts,
            options: &options,
        };
        files += doc.save(format, &staging.join(format!("{}.{}", part.file_stem, format.extension())))?.len();
    }
    let index_options = ExportOptions { link_column: Some(INDEX_FILE_COLUMN.into()), ..options };
    let doc =
        Document { data: &split.index.data, provenance: &split.index.provenance, charts: &[], options: &index_options };
    files += doc.save(format, &staging.join(format!("{INDEX_STEM}.{}", format.extension())))?.len();
    Ok(files)
}

/// `--list`: each report, its parameters and charts.
fn listing(defs: &[ReportDef]) -> String {
    let mut s = String::new();
    for d in defs {
        let _ = writeln!(s, "{}  {}", d.name, d.title);
        if !d.summary.is_empty() {
            let _ = writeln!(s, "    {}", d.summary);
        }
        for p in &d.params {
            let _ = writeln!(s, "    {:<18} {}", p.param.flag(), p.help);
        }
        for c in &d.charts {
            let _ = writeln!(s, "    {} chart: {}", format!("{:?}", c.kind).to_lowercase(), c.title);
        }
    }
    s
}

/// On a plan without access logs (Slack Free) every account looks "never seen", which is not
/// evidence of dormancy: say so rather than let the report pass for one.
async fn warn_if_no_evidence(lake: &lastseen_lake::Lake, as_of: chrono::NaiveDate) {
    let Ok(Some(run)) = lake.newest_run_manifest(|r| r.date == as_of && r.lake_version.is_some()).await else {
        return;
    };
    if let Some(why) = run.sources.get("access_logs").and_then(|s| s.error.as_deref()) {
        eprintln!(
            "lastseen: warning: no activity source was available for {as_of} (access_logs: {why}); \
             accounts listed as never_seen may simply be unobserved"
        );
    }
}
