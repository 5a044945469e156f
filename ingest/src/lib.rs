//! lastseen's ingestion: owns the Slack Web API client (token handling, response
//! classification, retries, per-method rate budgets, counters) and the Slack collectors that
//! stream pages as Arrow batches in the lake catalog's schemas.
//!
//! ```text
//! SlackClient::new(cfg, token) ──▶ Arc<SlackClient> ──▶ slack::users(..)        ─▶ slack_users batches
//!                                                   └─▶ slack::access_logs(..)  ─▶ slack_access_logs batches
//! client.report(&[method]) ──▶ lastseen_lake::SourceReport for the run manifest
//! ```

mod client;
mod error;
pub mod identities;
pub mod okta;
pub mod rate;
pub mod retry;
pub mod slack;
mod walk;

pub use client::{AuthInfo, MethodStats, RestAnswer, SlackClient};
pub use error::{IngestError, Result, TransportKind};
pub use rate::{RateBudget, tier_for};
pub use retry::{FullJitter, RetryPolicy};
pub use slack::models::{AccessLogsPage, Login, Paging, Profile, ResponseMetadata, User, UsersPage};
pub use slack::{AccessLogWindow, MAX_PAGES_PER_WINDOW, TEAM_ACCESS_LOGS, USERS_LIST, access_logs, users};

#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod sim_tests;
