//! The query crate's error type.

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error(transparent)]
    Lake(#[from] lastseen_lake::LakeError),

    #[error("query failed: {0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),

    #[error("cannot write {format} output: {message}")]
    Output { format: String, message: String },

    #[error("{0}")]
    NoData(String),
}

pub type Result<T, E = QueryError> = std::result::Result<T, E>;
