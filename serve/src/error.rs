//! The crate's single error type: what stopped the server from starting, said with the setting
//! to change. Query failures go back to the client as Postgres errors instead.

/// Why `lastseen serve` cannot start (or stopped).
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listener's certificate or key is missing, unreadable or not a usable pair. Never
    /// downgraded to plaintext.
    #[error("TLS setup failed: {0}; fix serve.tls_cert / serve.tls_key (the server does not fall back to plaintext)")]
    Tls(String),

    /// No user could log in: an unusable configuration, refused rather than served open.
    #[error("no users: add a [[serve.users]] entry with password_env or password_file (there is no passwordless mode)")]
    NoUsers,

    /// A user's password could not be loaded.
    #[error(transparent)]
    Config(#[from] lastseen_config::ConfigError),

    /// A listener off loopback without TLS.
    #[error("{0} is not a loopback address and no TLS certificate is configured: set serve.tls_cert and serve.tls_key")]
    PlaintextOffLoopback(std::net::SocketAddr),

    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },

    /// The lake could not be read.
    #[error(transparent)]
    Query(#[from] lastseen_query::QueryError),

    /// The DataFusion session could not be set up.
    #[error("setting up the SQL session: {0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),
}

pub type Result<T> = std::result::Result<T, ServeError>;
