//! The `lastseen` binary: parse the command line, run one command, map the outcome to an exit code.

mod backfill;
mod cli;
mod commands;
mod exit;
mod logging;
mod metrics;
mod pipeline;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    logging::init(&cli.global);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("lastseen: cannot start the async runtime: {e}");
            return ExitCode::from(exit::FAILURE);
        }
    };
    match runtime.block_on(commands::dispatch(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("lastseen: {}", exit::render(&err));
            ExitCode::from(exit::code_for(&err))
        }
    }
}
