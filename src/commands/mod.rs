//! One file per command; `dispatch` runs the chosen one and returns its exit code.

mod backfill;
mod check;
mod daemon;
mod demo;
mod deprovision;
mod report;
mod run;
mod serve;
mod shell;
mod simulate;
pub(crate) use simulate::shutdown_signal;
mod sql;
mod tables;
mod vacuum;
mod validate;

use std::io::Write;

use anyhow::Context;
use lastseen_config::Config;
use lastseen_lake::Lake;

use crate::cli::{Cli, Command, Format, OutputArgs};
use crate::exit::ConfigProblem;

pub async fn dispatch(cli: Cli) -> anyhow::Result<u8> {
    match &cli.command {
        Command::Check => check::run(&cli.global).await,
        Command::Demo(args) => demo::run(&cli.global, args).await,
        Command::Run(args) => run::run(&cli.global, args).await,
        Command::Backfill(args) => backfill::run(&cli.global, args).await,
        Command::Daemon(args) => daemon::run(&cli.global, args).await,
        Command::Serve(args) => serve::run(&cli.global, args).await,
        Command::Sql(args) => sql::run(&cli.global, args).await,
        Command::Report(args) => report::run(&cli.global, args).await,
        Command::Validate => validate::run(&cli.global),
        Command::Tables(args) => tables::run(&cli.global, args).await,
        Command::Simulate(args) => simulate::run(args).await,
        Command::Vacuum(args) => vacuum::run(&cli.global, args).await,
        Command::Review(cmd) => deprovision::review(&cli.global, cmd).await,
        Command::Deprovision(cmd) => deprovision::run(&cli.global, cmd).await,
        Command::Account(cmd) => deprovision::account(&cli.global, cmd).await,
    }
}

/// A [`lastseen::pipeline::Cancel`] that resolves with the first SIGTERM or Ctrl-C. The
/// handlers are installed here, before the run starts, so a signal at any later point stops it
/// cleanly.
pub fn cancel_on_signal() -> anyhow::Result<lastseen::pipeline::Cancel> {
    let signal = shutdown_signal()?;
    let fut: futures::future::BoxFuture<'static, ()> = Box::pin(async move {
        signal.await;
        tracing::warn!("SIGTERM or Ctrl-C: stopping the run; nothing more is published");
    });
    Ok(futures::FutureExt::shared(fut))
}

/// Every configured app with its secrets loaded (`lastseen_ingest::apps::configured`). A
/// secret that cannot be loaded is a configuration problem (exit 78): the config error stays
/// in the chain.
pub fn configured_apps(cfg: &Config) -> anyhow::Result<Vec<Box<dyn lastseen_ingest::App>>> {
    Ok(lastseen_ingest::apps::configured(cfg)?)
}

/// The configuration with the command line's overrides applied.
pub fn load_config(g: &crate::cli::GlobalArgs) -> anyhow::Result<Config> {
    let mut cfg = Config::load(g.config.as_deref()).map_err(ConfigProblem::from)?;
    if let Some(url) = &g.lake {
        cfg = cfg.with_storage_url(url).map_err(ConfigProblem::from)?;
    }
    Ok(cfg)
}

pub fn open_lake(cfg: &Config) -> anyhow::Result<Lake> {
    let lake = Lake::open(&cfg.storage.url, &cfg.storage.options)
        .with_context(|| format!("opening the lake at {}", cfg.storage.url))?;
    Ok(lake.with_delta_settings(lastseen_lake::DeltaSettings {
        keep_superseded: cfg.lake.keep_superseded,
        log_retention: cfg.lake.delta_log_retention,
    }))
}

impl From<Format> for lastseen_query::Format {
    fn from(f: Format) -> Self {
        match f {
            Format::Table => lastseen_query::Format::Table,
            Format::Csv => lastseen_query::Format::Csv,
            Format::Json => lastseen_query::Format::Json,
            Format::Parquet => lastseen_query::Format::Parquet,
            Format::Xlsx => lastseen_query::Format::Xlsx,
            Format::Html => lastseen_query::Format::Html,
        }
    }
}

/// Write a query's rows where `--output` says (stdout by default) as the query produces them,
/// in `--format` (one that [`streams`](lastseen_query::Format::streams)), with the provenance
/// side file; returns the rows written.
pub async fn emit_plan(
    plan: std::sync::Arc<dyn datafusion::physical_plan::ExecutionPlan>,
    context: std::sync::Arc<datafusion::execution::TaskContext>,
    provenance: &lastseen_query::Provenance,
    out: &OutputArgs,
) -> anyhow::Result<u64> {
    let format: lastseen_query::Format = out.format.into();
    let options = lastseen_query::ExportOptions { bom: out.bom, ..Default::default() };
    let (rows, written) =
        lastseen_query::export::save_plan(plan, context, format, provenance, &options, out.output.as_deref()).await?;
    tracing::info!(format = %format, rows, lake_version = ?provenance.lake_version, run_id = ?provenance.run_id, "export");
    for p in written {
        tracing::info!(file = %p.display(), "wrote");
    }
    Ok(rows)
}

/// Write a result where `--output` says (stdout by default) in `--format`, with its provenance:
/// inside the file (Parquet, XLSX, HTML) or beside it as `FILE.provenance.json`.
pub fn emit(
    data: &lastseen_query::ResultSet,
    provenance: &lastseen_query::Provenance,
    charts: &[lastseen_query::export::Chart],
    out: &OutputArgs,
) -> anyhow::Result<()> {
    let format: lastseen_query::Format = out.format.into();
    let options = lastseen_query::ExportOptions { bom: out.bom, ..Default::default() };
    let doc = lastseen_query::Document { data, provenance, charts, options: &options };
    tracing::info!(
        format = %format,
        rows = data.rows(),
        lake_version = ?provenance.lake_version,
        run_id = ?provenance.run_id,
        "export"
    );
    match &out.output {
        Some(path) => {
            let written = doc.save(format, path)?;
            for p in written {
                tracing::info!(file = %p.display(), "wrote");
            }
        }
        None => {
            use std::io::IsTerminal;
            let stdout = std::io::stdout();
            if format.is_binary() && stdout.is_terminal() {
                return Err(lastseen_query::QueryError::Usage(format!(
                    "{format} output is binary: pass --output FILE (or redirect stdout)"
                ))
                .into());
            }
            let mut lock = stdout.lock();
            doc.write(format, &mut lock)?;
            lock.flush().map_err(crate::stdout::error)?;
        }
    }
    Ok(())
}
