//! The `lastseen` binary: parse the command line, run one command, map the outcome to an exit code.

mod cli;
// Before `commands`: its `outln!`/`out!` macros are used there.
#[macro_use]
mod stdout;
mod commands;
mod exit;
mod logging;
mod metrics;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Parsing starts no thread, so the allocator can still be tuned for the command after it.
    let cli = cli::Cli::parse();
    limit_malloc_arenas(!matches!(cli.command, cli::Command::Report(_)));
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
        // `lastseen report … | head`: the reader has what it wanted; not a failure to report.
        Err(err) if stdout::closed(&err) => ExitCode::from(exit::OK),
        Err(err) => {
            eprintln!("lastseen: {}", exit::render(&err));
            ExitCode::from(exit::code_for(&err))
        }
    }
}

/// glibc's allocator keeps freed memory mapped where a columnar engine does not want it: each
/// thread that allocates gets an arena of its own (up to 8 per core), and a freed block larger
/// than the mmap threshold raises that threshold, so the next large Arrow buffers come from the
/// heap and stay there once freed. DataFusion's workers free join and sort buffers in other
/// arenas than the next batch allocates from, and a 500,000-user daily run peaked at 690-760 MiB
/// with pools sized for under 500. Two arenas and a fixed 128 KiB threshold (glibc's starting
/// value) held it at 466-505 MiB for about 5% more time (bench/RESULTS.md, "malloc arenas").
/// `MALLOC_ARENA_MAX` or `MALLOC_MMAP_THRESHOLD_` set by the operator win.
///
/// `fixed_threshold` is off for `lastseen report`, a process that lives for one query: there
/// every sort, merge and export pass allocated its large buffers with a fresh `mmap`, and the
/// page faults and zeroing cost `report review` about 0.15 s of system time of its ~1.1 s on the
/// bench lake (bench/RESULTS.md, "reports again, faster"); glibc's own threshold keeps them.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code, reason = "mallopt is glibc's only interface to these settings; called before any thread exists")]
fn limit_malloc_arenas(fixed_threshold: bool) {
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets a tuning parameter of the allocator; the process has one thread.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
    if fixed_threshold && std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
        // SAFETY: as above.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas(_fixed_threshold: bool) {}

/// Everything lastseen creates (the local lake's files and folders, exports, staging files)
/// holds personal data: owner-only, 0600 files and 0700 folders. object_store's local store
/// offers no per-file mode, so the process umask is how its files get it; the exporters also
/// ask for 0600 themselves.
fn owner_only_files() {
    #[cfg(unix)]
    let _previous = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
}
