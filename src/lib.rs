//! lastseen as a library: the orchestration every command that collects shares, callable
//! in-process by tests and benches. [`pipeline::run_day`] runs one day and [`backfill::run`]
//! reads past days, both with the configured apps already built
//! (`lastseen_ingest::apps::configured`) and driven only through the app-agnostic
//! `App`/`AppSource` interface, both ending in a [`PipelineError`] rather than the CLI's
//! `anyhow`. The binary (`src/main.rs`, `src/commands/`) is CLI glue on top: config, secrets,
//! signals, output and exit codes.

pub mod backfill;
pub mod error;
pub mod pipeline;

pub use error::{PipelineError, Result};
