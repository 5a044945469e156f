//! A local Slack Web API simulator with a seeded synthetic organisation and its ground truth, for
//! tests, `lastseen demo`, `lastseen simulate` and the benchmarks.
//!
//! The organisation is generated from an [`OrgSpec`]; every account's activity is derived from
//! (seed, account, day), so `team.accessLogs` and [`Org::ground_truth`] always agree. The server
//! reproduces Slack's envelopes, errors, paging, plan gating, scopes and tier rate limits, and can
//! inject faults ([`FaultRule`]).

mod activity;
mod api;
mod config;
mod endpoints;
mod identities;
mod names;
mod org;
mod ratelimit;
pub mod rng;
mod server;

use std::net::SocketAddr;

pub use config::{
    Conditions, FaultKind, FaultRule, FaultWhen, RateLimits, SimConfig, WorkspaceError, load_conditions, load_faults,
};
pub use org::{GroundTruth, GroundTruthAccount, Org, OrgSpec, Plan};
pub use server::{RunningSim, ScimWrite, Simulator};

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("unknown Slack plan {0:?}: expected free, pro, business_plus or enterprise")]
    UnknownPlan(String),
    #[error("invalid simulator configuration: {0}")]
    InvalidConfig(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the simulator failed to start: {0}")]
    Start(String),
}

#[cfg(test)]
mod http_tests;
#[cfg(test)]
mod scim_write_tests;
