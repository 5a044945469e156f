//! The crate's single error type: every failure names where the bad value came from (file, env
//! var or flag) and, for field problems, the dotted field path, so `lastseen validate` can point
//! straight at the mistake.

use std::path::PathBuf;

/// Everything that can go wrong while loading or validating configuration, or loading the token.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read (missing, unreadable, not UTF-8).
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The file is not valid TOML. `message` starts with the line and column.
    #[error("config error in {origin}: {message}")]
    Parse { origin: String, message: String },

    /// A value has the wrong type, is out of range, or the key is unknown.
    /// `origin` is the file name, `defaults`, a flag, or `environment variable LASTSEEN_…` when an
    /// environment override supplied the value.
    #[error("config error in {origin}: field `{field}`: {message}")]
    Invalid { origin: String, field: String, message: String },

    /// An app's token (`slack`, `okta`) could not be loaded. The message never contains the
    /// token itself.
    #[error("{app} token: {message}")]
    Token { app: &'static str, message: String },

    /// A `[serve]` password could not be loaded. The message never contains the password.
    #[error("serve password: {message}")]
    Secret { message: String },
}

impl ConfigError {
    /// The dotted field path (e.g. `slack.retry.max_attempts`) for field errors.
    pub fn field(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }
}

/// Result alias used throughout the crate.
pub type Result<T> = std::result::Result<T, ConfigError>;
