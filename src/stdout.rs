//! The commands' own lines on standard output (`println!` panics when the reader has gone away):
//! a closed standard output becomes [`StdoutClosed`], which `main` ends the command on quietly.

use std::io::Write;

/// Standard output was closed by its reader (`lastseen deprovision plan … | head`). Like ripgrep,
/// lastseen stops writing and exits 0 without a message: the reader took what it wanted.
#[derive(Debug, thiserror::Error)]
#[error("standard output was closed by its reader")]
pub struct StdoutClosed;

/// A line on standard output, `?`-propagated as an `anyhow::Error`: `outln!("{n} rows")`.
macro_rules! outln {
    () => {
        $crate::stdout::write(format_args!("\n"))?
    };
    ($($arg:tt)*) => {
        $crate::stdout::write(format_args!("{}\n", format_args!($($arg)*)))?
    };
}

/// Text on standard output without a line end added, as [`outln!`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::stdout::write(format_args!($($arg)*))?
    };
}

/// `args` on standard output: what [`outln!`] and [`out!`] expand to.
pub fn write(args: std::fmt::Arguments<'_>) -> anyhow::Result<()> {
    // Standard output is line-buffered: a line is written (and fails) here, not at exit.
    std::io::stdout().lock().write_fmt(args).map_err(error)
}

/// An error writing standard output: [`StdoutClosed`] for a reader that went away, else the OS
/// error with what was being done.
pub fn error(e: std::io::Error) -> anyhow::Error {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        StdoutClosed.into()
    } else {
        anyhow::Error::new(e).context("cannot write to standard output")
    }
}

/// Whether `err` is a closed standard output: the binary's own lines ([`StdoutClosed`]) or an
/// export written to it (`QueryError::is_broken_pipe`).
pub fn closed(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.is::<StdoutClosed>() || e.downcast_ref::<lastseen_query::QueryError>().is_some_and(|q| q.is_broken_pipe())
    })
}
