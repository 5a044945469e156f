//! A local Okta Management API simulator (`/api/v1/users` and the System Log `/api/v1/logs`)
//! with a seeded organisation and its ground truth, for the Okta collectors' tests.
//!
//! The organisation is generated from an [`OktaOrgSpec`], which can share its people with a
//! slack-sim organisation ([`OktaOrgSpec::from_slack`]) so that Okta SSOs into the Slack app
//! instance are evidence for Slack accounts. The server reproduces Okta's paging (`Link`
//! headers, opaque `after`), both System Log request kinds (polling and bounded), late events,
//! the 90-day retention, the error envelope, rate-limit headers and 429s, and can inject faults
//! ([`FaultRule`]). Every behaviour cites Okta's documentation where it is implemented.

mod config;
mod filter;
mod logs;
mod oauth;
mod org;
mod rng;
mod server;
mod users;

use std::net::SocketAddr;

pub use config::{FaultKind, FaultRule, FaultWhen, OktaSimConfig, RateLimits};
pub use logs::{LOGS_MAX_LIMIT, RETENTION_DAYS};
pub use oauth::{OAuthClient, OTHER_OAUTH_PRIVATE_KEY_PEM, TEST_OAUTH_PRIVATE_KEY_PEM};
pub use org::{
    AppInstance, OktaGroundTruth, OktaOrg, OktaOrgSpec, OktaTruthEvent, OktaTruthUser, Person, SlackSsoTruth, SsoTruth,
    UserStatus,
};
pub use server::{OktaSimulator, RunningOktaSim};
pub use users::USERS_MAX_LIMIT;

#[derive(Debug, thiserror::Error)]
pub enum OktaSimError {
    #[error("invalid Okta simulator configuration: {0}")]
    InvalidConfig(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the Okta simulator failed to start: {0}")]
    Start(String),
}

#[cfg(test)]
mod contract_tests;
#[cfg(test)]
mod http_tests;
