//! `PipelineError`: how a daily run or a backfill fails, for callers of the library (the CLI,
//! tests, benches). Each step's error keeps the crate error it came from as its source, so the
//! CLI can still find a held lease (`LakeError::Locked`) in the chain, and says what step failed.
//! The ingest and transform errors are boxed to keep the error small; the lake's is not, so a
//! caller can downcast the chain to `LakeError`.

use lastseen_ingest::IngestError;
use lastseen_lake::LakeError;
use lastseen_transform::TransformError;

pub type Result<T, E = PipelineError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// An API step (discovery, a probe, a collection) failed; `what` names the step.
    #[error("{what}")]
    Ingest {
        what: String,
        #[source]
        source: Box<IngestError>,
    },
    /// The lake refused or failed a step (the lease, staging, a commit).
    #[error("{what}")]
    Lake {
        what: String,
        #[source]
        source: LakeError,
    },
    /// Deriving the tables after the raw commit failed.
    #[error("{what}")]
    Transform {
        what: String,
        #[source]
        source: Box<TransformError>,
    },
    /// A lake error without more to say than its own message.
    #[error("{0}")]
    LakeStep(#[source] LakeError),
    /// The request cannot be run as asked (a window running backwards, the users source
    /// missing) or a collector ended so its data cannot be trusted (it panicked).
    #[error("{0}")]
    Refused(String),
    /// SIGTERM or Ctrl-C (the caller's cancellation) stopped the run before it finished:
    /// nothing more was published and the lease was released.
    #[error("interrupted by SIGTERM or Ctrl-C; the run stopped before it finished and its lake lease was released")]
    Interrupted,
    /// A failure with what it left behind (the raw commit that landed before it).
    #[error("{what}")]
    After {
        what: String,
        #[source]
        source: Box<PipelineError>,
    },
}

impl PipelineError {
    /// `self` with `what` said before it.
    pub fn context(self, what: impl Into<String>) -> PipelineError {
        PipelineError::After { what: what.into(), source: Box::new(self) }
    }

    /// Whether the caller's cancellation stopped the run.
    pub fn is_interrupted(&self) -> bool {
        match self {
            PipelineError::Interrupted => true,
            PipelineError::After { source, .. } => source.is_interrupted(),
            _ => false,
        }
    }
}

impl From<LakeError> for PipelineError {
    fn from(e: LakeError) -> Self {
        PipelineError::LakeStep(e)
    }
}

/// What a step's error becomes when the step is named.
pub trait Step {
    fn step(self, what: String) -> PipelineError;
}

impl Step for IngestError {
    fn step(self, what: String) -> PipelineError {
        PipelineError::Ingest { what, source: Box::new(self) }
    }
}

impl Step for LakeError {
    fn step(self, what: String) -> PipelineError {
        PipelineError::Lake { what, source: self }
    }
}

impl Step for TransformError {
    fn step(self, what: String) -> PipelineError {
        PipelineError::Transform { what, source: Box::new(self) }
    }
}

impl Step for PipelineError {
    fn step(self, what: String) -> PipelineError {
        self.context(what)
    }
}

/// `.context(..)` / `.with_context(..)` for the crate errors a pipeline step returns.
pub trait Context<T> {
    fn context(self, what: impl Into<String>) -> Result<T>;
    fn with_context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: Step> Context<T> for std::result::Result<T, E> {
    fn context(self, what: impl Into<String>) -> Result<T> {
        self.map_err(|e| e.step(what.into()))
    }

    fn with_context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| e.step(what()))
    }
}

/// An error with its causes, `: `-separated, skipping causes whose text the previous already
/// has (the run manifest's `error`; the CLI prints the same).
pub fn render(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = String::new();
    let mut cause = Some(err);
    while let Some(e) = cause {
        let s = e.to_string();
        if !out.contains(&s) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&s);
        }
        cause = e.source();
    }
    out
}
