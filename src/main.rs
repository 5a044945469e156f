//! The `lastseen` binary: parse the command line, run one command, map the outcome to an exit code.

mod cli;
mod commands;
mod exit;
mod logging;
mod metrics;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    owner_only_files();
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

/// Everything lastseen creates (the local lake's files and folders, exports, staging files)
/// holds personal data: owner-only, 0600 files and 0700 folders. object_store's local store
/// offers no per-file mode, so the process umask is how its files get it; the exporters also
/// ask for 0600 themselves.
fn owner_only_files() {
    #[cfg(unix)]
    let _previous = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
}
