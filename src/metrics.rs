//! The daemon's Prometheus metrics: their names (documented in the README), what a finished or
//! skipped run adds to them, and the `/healthz` + `/metrics` HTTP routes.
//!
//! Slack call counts come from the run manifest rather than from hooks in the client, so the
//! daemon's numbers are exactly what `_lastseen/runs/` records.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use chrono::{DateTime, NaiveDate, Utc};
use lastseen_lake::{RunManifest, RunStatus};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;

/// Runs by outcome: `succeeded`, `partial`, `failed`, `skipped_busy` (a tick while this
/// daemon's previous run was still going), `skipped_locked` (another instance holds the lease).
pub const RUNS: &str = "lastseen_runs_total";
pub const LAST_RUN_DURATION: &str = "lastseen_last_run_duration_seconds";
/// Rows the last committed run wrote, per table.
pub const LAST_RUN_ROWS: &str = "lastseen_last_run_rows";
/// Slack Web API calls, per source, summed over runs.
pub const API_CALLS: &str = "lastseen_slack_api_calls_total";
/// Slack answers with HTTP 429 (or `ratelimited`), per source, summed over runs.
pub const RATE_LIMITED: &str = "lastseen_slack_rate_limited_total";
/// Unix time at which the last successful (or partial, i.e. committed) run finished.
pub const LAST_SUCCESS: &str = "lastseen_last_success_timestamp_seconds";
pub const RUN_IN_PROGRESS: &str = "lastseen_run_in_progress";

pub const OUTCOMES: [&str; 5] = ["succeeded", "partial", "failed", "skipped_busy", "skipped_locked"];

/// Registers descriptions and zeroes the run counters, so every series exists from the start.
pub fn describe() {
    metrics::describe_counter!(RUNS, "Daily runs started by the daemon, by outcome");
    metrics::describe_gauge!(LAST_RUN_DURATION, metrics::Unit::Seconds, "Wall time of the last finished run");
    metrics::describe_gauge!(LAST_RUN_ROWS, "Rows the last committed run wrote, per table");
    metrics::describe_counter!(API_CALLS, "Slack API calls made by runs, per source");
    metrics::describe_counter!(RATE_LIMITED, "Slack rate-limit answers (429) received by runs, per source");
    metrics::describe_gauge!(LAST_SUCCESS, metrics::Unit::Seconds, "Unix time the last committed run finished");
    metrics::describe_gauge!(RUN_IN_PROGRESS, "1 while a run is going");
    for outcome in OUTCOMES {
        metrics::counter!(RUNS, "status" => outcome).absolute(0);
    }
    metrics::gauge!(RUN_IN_PROGRESS).set(0.0);
}

fn status_label(s: RunStatus) -> &'static str {
    match s {
        RunStatus::Succeeded => "succeeded",
        RunStatus::Partial => "partial",
        RunStatus::Failed => "failed",
    }
}

/// A run that returned its manifest (succeeded, partial, or failed with the failure recorded).
pub fn record_run(m: &RunManifest) {
    metrics::counter!(RUNS, "status" => status_label(m.status)).increment(1);
    let secs = (m.finished_at - m.started_at).num_milliseconds() as f64 / 1000.0;
    metrics::gauge!(LAST_RUN_DURATION).set(secs);
    for (source, s) in &m.sources {
        metrics::counter!(API_CALLS, "source" => source.clone()).increment(s.calls);
        metrics::counter!(RATE_LIMITED, "source" => source.clone()).increment(s.rate_limited);
    }
    if m.status != RunStatus::Failed {
        for (table, t) in &m.tables {
            metrics::gauge!(LAST_RUN_ROWS, "table" => table.clone()).set(t.rows as f64);
        }
        record_success_time(m.finished_at);
    }
}

pub fn record_success_time(at: DateTime<Utc>) {
    metrics::gauge!(LAST_SUCCESS).set(at.timestamp_millis() as f64 / 1000.0);
}

/// A run that failed without a manifest to show for it (the error came back instead).
pub fn record_failure(duration: std::time::Duration) {
    metrics::counter!(RUNS, "status" => "failed").increment(1);
    metrics::gauge!(LAST_RUN_DURATION).set(duration.as_secs_f64());
}

/// A tick that did not run: `skipped_busy` or `skipped_locked`.
pub fn record_skip(outcome: &'static str) {
    metrics::counter!(RUNS, "status" => outcome).increment(1);
}

/// What `/healthz` reports.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Health {
    pub schedule: String,
    pub next_run: Option<DateTime<Utc>>,
    /// The day being collected, while a run is going.
    pub running: Option<NaiveDate>,
    pub last_success: Option<DateTime<Utc>>,
    pub shutting_down: bool,
}

#[derive(Clone)]
struct Served {
    health: Arc<Mutex<Health>>,
    metrics: PrometheusHandle,
}

/// `/healthz` (200 with the daemon's state as JSON while it is serving) and `/metrics`
/// (Prometheus text format).
pub fn router(health: Arc<Mutex<Health>>, metrics: PrometheusHandle) -> Router {
    Router::new().route("/healthz", get(healthz)).route("/metrics", get(render)).with_state(Served { health, metrics })
}

async fn healthz(State(s): State<Served>) -> impl IntoResponse {
    let h = s.health.lock().unwrap_or_else(|e| e.into_inner()).clone();
    axum::Json(serde_json::json!({ "status": "ok", "daemon": h }))
}

async fn render(State(s): State<Served>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], s.metrics.render())
}

#[cfg(test)]
mod tests {
    use super::*;
    use lastseen_lake::{SourceReport, TableReport};

    #[test]
    fn a_run_manifest_becomes_counters_and_gauges() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let started = DateTime::parse_from_rfc3339("2026-06-30T00:30:00Z").unwrap().with_timezone(&Utc);
        let mut m = RunManifest::start("r1", started.date_naive(), started);
        m.finished_at = started + chrono::Duration::milliseconds(2500);
        m.sources.insert("users".into(), SourceReport { calls: 3, rate_limited: 1, ..Default::default() });
        m.sources.insert("access_logs".into(), SourceReport { calls: 5, ..Default::default() });
        m.tables.insert("slack_users".into(), TableReport { rows: 42, ..Default::default() });
        metrics::with_local_recorder(&recorder, || {
            describe();
            record_run(&m);
            record_run(&m);
            record_skip("skipped_locked");
        });
        let text = handle.render();
        for line in [
            "lastseen_runs_total{status=\"succeeded\"} 2",
            "lastseen_runs_total{status=\"failed\"} 0",
            "lastseen_runs_total{status=\"skipped_locked\"} 1",
            "lastseen_runs_total{status=\"skipped_busy\"} 0",
            "lastseen_last_run_duration_seconds 2.5",
            "lastseen_slack_api_calls_total{source=\"users\"} 6",
            "lastseen_slack_api_calls_total{source=\"access_logs\"} 10",
            "lastseen_slack_rate_limited_total{source=\"users\"} 2",
            "lastseen_last_run_rows{table=\"slack_users\"} 42",
            "lastseen_last_success_timestamp_seconds 1782779402.5",
            "lastseen_run_in_progress 0",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
    }
}
