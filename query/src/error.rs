//! The query crate's error type.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error(transparent)]
    Lake(#[from] lastseen_lake::LakeError),

    #[error("query failed: {0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),

    #[error("query failed: {0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),

    #[error("cannot write {format} output: {message}")]
    Output { format: String, message: String },

    /// Writing an export's bytes failed. The OS error is kept as the source (not turned into
    /// text) so the binary can tell a reader that went away (`lastseen report … | head`: a
    /// broken pipe, which ends the command quietly) from a failure.
    #[error("cannot write {format} output: {source}")]
    Write { format: String, source: std::io::Error },

    #[error("cannot write {}: {source} (check that the folder exists and is writable)", path.display())]
    Io { path: PathBuf, source: std::io::Error },

    /// A report file in `query/reports/` that does not follow the header format.
    #[error("report `{report}` is malformed, line {line}: {message}")]
    ReportDefinition { report: String, line: usize, message: String },

    /// The caller asked for something the report cannot do (an unknown report, a parameter it
    /// does not take); the command line maps this to a usage error.
    #[error("{0}")]
    Usage(String),

    #[error("{0}")]
    NoData(String),
}

impl QueryError {
    pub(crate) fn output(format: impl std::fmt::Display, e: impl std::fmt::Display) -> QueryError {
        QueryError::Output { format: format.to_string(), message: e.to_string() }
    }

    /// A failed write of `format`'s bytes; see [`QueryError::Write`].
    pub(crate) fn write(format: impl std::fmt::Display, source: std::io::Error) -> QueryError {
        QueryError::Write { format: format.to_string(), source }
    }

    /// An Arrow writer's error: its I/O errors (the JSON writer's sink) stay I/O errors.
    pub(crate) fn arrow_output(format: impl std::fmt::Display, e: datafusion::arrow::error::ArrowError) -> QueryError {
        match e {
            datafusion::arrow::error::ArrowError::IoError(_, source) => QueryError::write(format, source),
            e => QueryError::output(format, e),
        }
    }

    /// Whether this is a write to a reader that has gone away (`EPIPE`): standard output piped
    /// into `head`, a FIFO whose reader exited.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, QueryError::Write { source, .. } if source.kind() == std::io::ErrorKind::BrokenPipe)
    }

    pub(crate) fn io(path: &Path, source: std::io::Error) -> QueryError {
        QueryError::Io { path: path.to_path_buf(), source }
    }
}

pub type Result<T, E = QueryError> = std::result::Result<T, E>;
