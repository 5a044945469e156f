//! `lastseen serve`: the lake over the Postgres wire protocol, for the tools analysts already
//! use (psql, DBeaver, Metabase, Grafana, pandas through psycopg). Built on pgwire directly (not
//! datafusion-postgres, which turns on DataFusion's default features for the whole workspace),
//! with the engine ([`engine`]: lake versions, per-query sessions) apart from the server
//! ([`handler`]: the protocol, [`auth`]: logins, [`tls`]: encryption).
//!
//! Secure by default: TLS is required off loopback and a certificate problem stops the server;
//! logins are SCRAM-SHA-256 against salted hashes; everything is read-only; every query has a
//! memory limit and a timeout and is logged with its user.

mod auth;
mod catalog;
mod compat;
mod engine;
mod error;
mod handler;
mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use lastseen_config::ServeConfig;
use lastseen_lake::Lake;
use pgwire::api::PgWireServerHandlers;
use pgwire::api::auth::StartupHandler;
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

pub use error::{Result, ServeError};

use crate::auth::{Login, Users};
use crate::engine::{Limits, Versions};
use crate::handler::Service;

/// How long a connection past the limit may take to receive its refusal (TLS handshake
/// included) before it is simply closed.
const REFUSAL_TIME: std::time::Duration = std::time::Duration::from_secs(10);

/// A bound, ready server; [`Server::run`] serves until the shutdown future completes.
pub struct Server {
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    handlers: Arc<Handlers>,
    /// The same handlers, refusing every login: for connections past `max_connections`.
    full: Arc<Handlers>,
    max_connections: usize,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.listener.local_addr().ok())
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

struct Handlers {
    service: Arc<Service>,
    users: Arc<Users>,
    certificate_pem: Option<Vec<u8>>,
    require_tls: bool,
    /// `Some(max_connections)` on the handlers that refuse connections past the limit.
    full: Option<usize>,
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        Arc::clone(&self.service)
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        Arc::clone(&self.service)
    }

    /// A fresh handler per connection: the SCRAM exchange keeps per-connection state.
    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        Arc::new(Login::new(Arc::clone(&self.users), self.certificate_pem.as_deref(), self.require_tls, self.full))
    }
}

impl Server {
    /// Checks the configuration (users, TLS), reads the lake's newest version and binds the
    /// listener. Every problem is a startup failure; nothing is served half-configured.
    pub async fn bind(cfg: &ServeConfig, lake: Lake, dormant_days: u32) -> Result<Server> {
        let tls = match &cfg.tls {
            Some(files) => Some(tls::acceptor(files)?),
            None if cfg.is_loopback() => None,
            None => return Err(ServeError::PlaintextOffLoopback(cfg.listen)),
        };
        let mut users = Vec::with_capacity(cfg.users.len());
        for u in &cfg.users {
            users.push((u.name.clone(), u.password.load(&u.name)?));
        }
        let users = Users::new(users);
        if users.is_empty() {
            return Err(ServeError::NoUsers);
        }
        let limits = Limits { query_memory: cfg.query_memory, query_timeout: cfg.query_timeout };
        let versions = Versions::open(lake, cfg.refresh, dormant_days, limits).await?;
        let listener =
            TcpListener::bind(cfg.listen).await.map_err(|source| ServeError::Bind { addr: cfg.listen, source })?;
        let (tls, certificate_pem) = match tls {
            Some((acceptor, pem)) => (Some(acceptor), Some(pem)),
            None => (None, None),
        };
        let handlers = Handlers {
            service: Arc::new(Service::new(Arc::new(versions))),
            users: Arc::new(users),
            certificate_pem,
            // With a certificate, plaintext is refused even on loopback: the operator asked for TLS.
            require_tls: tls.is_some(),
            full: None,
        };
        let full = Arc::new(Handlers {
            service: Arc::clone(&handlers.service),
            users: Arc::clone(&handlers.users),
            certificate_pem: handlers.certificate_pem.clone(),
            require_tls: handlers.require_tls,
            full: Some(cfg.max_connections),
        });
        Ok(Server { listener, tls, handlers: Arc::new(handlers), full, max_connections: cfg.max_connections })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts connections until `shutdown` completes. At most `max_connections` are served at
    /// once; one more is answered with Postgres' "too many clients" error (53300) and closed,
    /// within a few seconds whatever the client does, so refusals hold no slot for long.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<()> {
        let slots = Arc::new(tokio::sync::Semaphore::new(self.max_connections));
        tokio::pin!(shutdown);
        tracing::info!(
            addr = %self.listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            tls = self.tls.is_some(),
            max_connections = self.max_connections,
            "serving the lake over the Postgres protocol"
        );
        loop {
            let (socket, peer) = tokio::select! {
                _ = &mut shutdown => break,
                r = self.listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        // Out of file descriptors and the like: say so, back off, keep serving.
                        tracing::warn!(error = %e, "accepting a connection failed");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let tls = self.tls.clone();
            match Arc::clone(&slots).try_acquire_owned() {
                Ok(permit) => {
                    let handlers = Arc::clone(&self.handlers);
                    tokio::spawn(async move {
                        let _slot = permit;
                        if let Err(e) = pgwire::tokio::process_socket(socket, tls, handlers).await {
                            tracing::debug!(%peer, error = %e, "connection ended with an error");
                        }
                    });
                }
                Err(_) => {
                    let full = Arc::clone(&self.full);
                    tokio::spawn(async move {
                        let refuse = pgwire::tokio::process_socket(socket, tls, full);
                        let _ = tokio::time::timeout(REFUSAL_TIME, refuse).await;
                    });
                }
            }
        }
        tracing::info!("stopped serving the lake");
        Ok(())
    }
}
