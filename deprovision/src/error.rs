//! The one error type of the deprovisioning crate: each variant says what failed and what to do.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DeprovisionError {
    /// Bad input from the user (a file, a flag): exit 2 material.
    #[error("{0}")]
    Usage(String),
    /// A decision file that cannot be read at all.
    #[error("{path}: {detail}")]
    File { path: PathBuf, detail: String },
    /// Rows of a decision file that cannot be used, one line each.
    #[error("{count} row(s) of the decision file cannot be used:\n{listing}")]
    BadRows { count: usize, listing: String },
    /// A plan or approval that must not be applied.
    #[error("refusing the plan: {0}")]
    Refused(String),
    /// The per-plan cap was exceeded.
    #[error(
        "the plan would deactivate {planned} of {active} active accounts, over the cap ({detail}); review the \
         decisions, split the plan, or raise the cap with --max-actions / --max-share"
    )]
    Cap { planned: usize, active: usize, detail: String },
    /// Slack (SCIM or Web API) failed in a way that stops the command.
    #[error(transparent)]
    Slack(#[from] lastseen_ingest::IngestError),
    #[error(transparent)]
    Lake(#[from] lastseen_lake::LakeError),
    #[error(transparent)]
    Query(#[from] lastseen_query::QueryError),
    #[error("{0}")]
    Io(String),
}

pub type Result<T> = std::result::Result<T, DeprovisionError>;

impl From<datafusion::error::DataFusionError> for DeprovisionError {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        DeprovisionError::Query(e.into())
    }
}

impl From<datafusion::arrow::error::ArrowError> for DeprovisionError {
    fn from(e: datafusion::arrow::error::ArrowError) -> Self {
        DeprovisionError::Io(format!("building a journal batch: {e}"))
    }
}

/// SHA-256 of `bytes`, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}
