//! lastseen's ingestion. An app-agnostic root: the generic HTTP layer ([`http`]: retries
//! honouring the server's "wait until", rate budgets, in-flight cap, counters, URL safety), the
//! error type, the identity export, the interface every app implements ([`source`]: `App`,
//! `AppSource`, `RunInfo`) and the registry of configured apps ([`apps`]); under it one folder
//! per app. Slack's folder owns its Web API client (envelope, `auth.test`, error bodies, tiers),
//! the collectors that stream pages as Arrow batches in the lake catalog's schemas, and
//! `SlackApp`, which puts them behind the interface.
//!
//! ```text
//! apps::configured(config) ──▶ Vec<Box<dyn App>> (secrets loaded; SlackApp holds Arc<SlackClient>)
//! app.connect() ──▶ Connected { sources: Vec<Box<dyn AppSource>>, warnings, describe }
//! source.probe(&RunInfo) / source.collect(Arc<RunInfo>) ──▶ Items (batches, watermarks, skips)
//! app.report(source.methods()) ──▶ lastseen_lake::SourceReport for the run manifest
//! ```

pub mod apps;
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
pub use source::{App, AppSource, Connected, RunInfo, SourceInfo};

#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod sim_tests;
