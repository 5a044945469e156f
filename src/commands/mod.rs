//! One file per command; `dispatch` runs the chosen one and returns its exit code.

mod backfill;
mod check;
mod daemon;
mod demo;
mod report;
mod run;
mod simulate;
mod sql;
mod tables;
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
        Command::Sql(args) => sql::run(&cli.global, args).await,
        Command::Report(args) => report::run(&cli.global, args).await,
        Command::Validate => validate::run(&cli.global),
        Command::Tables(args) => tables::run(&cli.global, args).await,
        Command::Simulate(args) => simulate::run(args).await,
    }
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
    Lake::open(&cfg.storage.url, &cfg.storage.options)
        .with_context(|| format!("opening the lake at {}", cfg.storage.url))
}

impl From<Format> for lastseen_query::OutputFormat {
    fn from(f: Format) -> Self {
        match f {
            Format::Table => lastseen_query::OutputFormat::Table,
            Format::Csv => lastseen_query::OutputFormat::Csv,
            Format::Json => lastseen_query::OutputFormat::Json,
        }
    }
}

/// Write query results where `--output` says (stdout by default).
pub fn emit(batches: &[datafusion::arrow::record_batch::RecordBatch], out: &OutputArgs) -> anyhow::Result<()> {
    match &out.output {
        Some(path) => {
            let mut f = std::io::BufWriter::new(
                std::fs::File::create(path).with_context(|| format!("creating output file {}", path.display()))?,
            );
            lastseen_query::format::write(batches, out.format.into(), &mut f)?;
            f.flush().with_context(|| format!("writing {}", path.display()))?;
        }
        None => {
            let stdout = std::io::stdout();
            let mut lock = stdout.lock();
            lastseen_query::format::write(batches, out.format.into(), &mut lock)?;
            lock.flush().ok();
        }
    }
    Ok(())
}
