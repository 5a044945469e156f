//! `lastseen serve`: the lake over the Postgres wire protocol (the `lastseen-serve` crate),
//! until SIGTERM or Ctrl-C. Configuration problems (no users, no TLS off loopback, a bad
//! certificate) exit 78 before anything is served.

use anyhow::Context;
use lastseen_config::ConfigError;
use lastseen_serve::{ServeError, Server};

use crate::cli::{GlobalArgs, ServeArgs};
use crate::exit::ConfigProblem;

pub async fn run(g: &GlobalArgs, args: &ServeArgs) -> anyhow::Result<u8> {
    let shutdown = super::simulate::shutdown_signal()?;
    let mut cfg = super::load_config(g)?;
    if let Some(listen) = args.listen {
        cfg.serve.listen = listen;
    }
    let lake = super::open_lake(&cfg)?;
    let server = bind(&cfg, lake).await?;
    let addr = server.local_addr().context("reading the bound address")?;
    // On stdout, for scripts and tests that start the server on port 0.
    outln!("lastseen serve listening on {addr}");
    server.run(shutdown).await?;
    Ok(crate::exit::OK)
}

/// The listener for `cfg.serve` over `lake` (also what `lastseen daemon` runs with
/// `serve.in_daemon`); configuration problems exit 78.
pub async fn bind(cfg: &lastseen_config::Config, lake: lastseen_lake::Lake) -> anyhow::Result<Server> {
    Server::bind(&cfg.serve, lake, cfg.reports.dormant_days).await.map_err(config_problem)
}

/// Startup failures the configuration can fix exit 78, naming the field.
fn config_problem(e: ServeError) -> anyhow::Error {
    let field = match &e {
        ServeError::Tls(_) => "serve.tls_cert",
        ServeError::NoUsers => "serve.users",
        ServeError::PlaintextOffLoopback(_) => "serve.listen",
        ServeError::Config(_) => return ConfigProblem(unwrap_config(e)).into(),
        _ => return e.into(),
    };
    ConfigProblem(ConfigError::Invalid { origin: "[serve]".into(), field: field.into(), message: e.to_string() }).into()
}

fn unwrap_config(e: ServeError) -> ConfigError {
    match e {
        ServeError::Config(c) => c,
        other => ConfigError::Invalid { origin: "[serve]".into(), field: "serve".into(), message: other.to_string() },
    }
}
