//! Log setup: human-readable on a terminal, JSON lines otherwise (cron, Kubernetes), on stderr.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::cli::{GlobalArgs, LogFormat};

pub fn init(g: &GlobalArgs) {
    let level = match (g.quiet, g.verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    // Our crates at the chosen level; dependencies one step quieter unless RUST_LOG says otherwise.
    let default = format!(
        "{level},lastseen={level},lastseen_ingest={level},lastseen_lake={level},lastseen_query={level},lastseen_transform={level},lastseen_slack_sim={level}"
    );
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let json = match g.log_format {
        LogFormat::Json => true,
        LogFormat::Human => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let result = if json {
        builder.json().flatten_event(true).with_current_span(false).with_span_list(false).try_init()
    } else {
        builder.with_target(false).try_init()
    };
    if let Err(e) = result {
        eprintln!("lastseen: logging already initialised: {e}");
    }
}

/// Progress bars only make sense for a person watching a terminal with human logs.
pub fn progress_enabled(g: &GlobalArgs) -> bool {
    !g.quiet && !matches!(g.log_format, LogFormat::Json) && std::io::stderr().is_terminal()
}
