//! Slack: its Web API client, the response models, the collectors that turn Slack pages into
//! Arrow batches in the lake catalog's schemas, and [`SlackApp`], which puts them behind the
//! app-agnostic `App`/`AppSource` interface the orchestrator drives.

pub mod access_logs;
pub mod analytics;
pub mod api;
pub mod app;
pub mod audit;
pub mod billing;
pub mod collector;
#[cfg(test)]
pub(crate) mod contract;
mod cursor;
pub mod models;
pub mod scim;
pub mod usergroups;
pub mod users;
pub mod workspaces;

use chrono::{DateTime, Utc};

pub use access_logs::{AccessLogWindow, MAX_PAGES_PER_WINDOW, TEAM_ACCESS_LOGS, access_logs};
pub use app::{SlackApp, SlackSource};
pub use collector::{
    Collector, Item, Past, Probe, RunContext, Scope, Settings, Workspace, collector, collectors, discover, probe,
};
pub use users::{USERS_LIST, users};

/// Slack's documented maximum for `limit` / `count`.
pub(crate) const MAX_PAGE_SIZE: u32 = 1000;

pub(crate) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// Slack's epoch seconds as the catalog's microseconds; `None` if it would overflow.
pub(crate) fn secs_to_micros(secs: i64) -> Option<i64> {
    secs.checked_mul(1_000_000)
}
