//! lastseen's ingestion. An app-agnostic root: the generic HTTP layer ([`http`]: retries
//! honouring the server's "wait until", rate budgets, in-flight cap, counters, URL safety), the
//! error type, and the identity export; under it one folder per app. Slack's folder owns its
//! Web API client (envelope, `auth.test`, error bodies, tiers) and the collectors that stream
//! pages as Arrow batches in the lake catalog's schemas.
//!
//! ```text
//! SlackClient::new(cfg, token) ──▶ Arc<SlackClient> (on http::HttpClient) ──▶ slack collectors ─▶ batches
//! client.report(&[method]) ──▶ lastseen_lake::SourceReport for the run manifest
//! ```

mod error;
pub mod http;
pub mod identities;
pub mod okta;
pub mod slack;
pub mod source;
mod walk;

pub use error::{IngestError, Result, TransportKind};
pub use http::{ApiRules, HttpClient, MethodStats};
pub use okta::{OktaApp, okta_app};
pub use slack::api::{AuthInfo, RestAnswer, SlackClient};

#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod sim_tests;
