//! The daemon's Prometheus metrics: their names (documented in the README), what a finished or
//! skipped run adds to them, and the `/healthz` + `/metrics` HTTP routes.
//!
//! API call counts come from the run manifest rather than from hooks in the client, so the
//! daemon's numbers are exactly what `_lastseen/runs/` records. They carry the `app` the
//! source belongs to (the manifest's `SourceReport::app`, from `AppSource::app`) next to the source, so a second SaaS gets its own series
//! under the same names.
//!
//! The server is hardened with [`GuardedListener`]: a cap on open connections, an idle timeout
//! and a lifetime cap per connection, so clients that connect and say nothing (or trickle bytes)
//! cannot use up the file descriptors a run needs for Slack and the store.

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
/// API calls (retries included), per app and source, summed over runs.
pub const API_CALLS: &str = "lastseen_api_calls_total";
/// Rate-limit answers (HTTP 429, or Slack's `ratelimited`), per app and source, summed over runs.
pub const RATE_LIMITED: &str = "lastseen_api_rate_limited_total";
/// Unix time at which the last successful (or partial, i.e. committed) run finished.
pub const LAST_SUCCESS: &str = "lastseen_last_success_timestamp_seconds";
pub const RUN_IN_PROGRESS: &str = "lastseen_run_in_progress";

pub const OUTCOMES: [&str; 5] = ["succeeded", "partial", "failed", "skipped_busy", "skipped_locked"];

/// Registers descriptions and zeroes the run counters, so every series exists from the start.
pub fn describe() {
    metrics::describe_counter!(RUNS, "Daily runs started by the daemon, by outcome");
    metrics::describe_gauge!(LAST_RUN_DURATION, metrics::Unit::Seconds, "Wall time of the last finished run");
    metrics::describe_gauge!(LAST_RUN_ROWS, "Rows the last committed run wrote, per table");
    metrics::describe_counter!(API_CALLS, "API calls made by runs, per app and source");
    metrics::describe_counter!(RATE_LIMITED, "Rate-limit answers (429) received by runs, per app and source");
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
        let app = if s.app.is_empty() { app_of(source) } else { s.app.clone() };
        metrics::counter!(API_CALLS, "app" => app.clone(), "source" => source.clone()).increment(s.calls);
        metrics::counter!(RATE_LIMITED, "app" => app, "source" => source.clone()).increment(s.rate_limited);
    }
    if m.status != RunStatus::Failed {
        for (table, t) in &m.tables {
            metrics::gauge!(LAST_RUN_ROWS, "table" => table.clone()).set(t.rows as f64);
        }
        record_success_time(m.finished_at);
    }
}

/// The app of a source in a manifest written before sources carried their app
/// (`SourceReport::app`, from `AppSource::app`). Slack's sources keep the names they have always
/// had in manifests (`users`, `access_logs`); any other app's source is named
/// `<app>_<source>` (`okta_system_log`), so the app is the part before the first `_`.
pub fn app_of(source: &str) -> String {
    if source.parse::<lastseen_config::Source>().is_ok() {
        return "slack".to_owned();
    }
    source.split('_').next().unwrap_or(source).to_owned()
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

/// Connections served at once; more wait in the kernel's backlog until one closes.
pub const MAX_CONNECTIONS: usize = 64;
/// A connection with no byte read or written for this long is closed.
pub const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// No connection lives longer than this, however it trickles (a request takes milliseconds).
pub const CONNECTION_LIFETIME: std::time::Duration = std::time::Duration::from_secs(60);

/// A TCP listener for `axum::serve` that limits open connections and closes idle or
/// long-lived ones (axum's own server has no timeouts).
pub struct GuardedListener {
    inner: tokio::net::TcpListener,
    slots: Arc<tokio::sync::Semaphore>,
    idle: std::time::Duration,
    lifetime: std::time::Duration,
}

impl GuardedListener {
    pub fn new(
        inner: tokio::net::TcpListener,
        max_connections: usize,
        idle: std::time::Duration,
        lifetime: std::time::Duration,
    ) -> Self {
        GuardedListener { inner, slots: Arc::new(tokio::sync::Semaphore::new(max_connections)), idle, lifetime }
    }
}

impl axum::serve::Listener for GuardedListener {
    type Io = GuardedIo;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        // Wait for a free slot before accepting: past the cap, clients queue in the backlog.
        let permit = Arc::clone(&self.slots).acquire_owned().await.expect("the semaphore is never closed");
        let (io, addr) = axum::serve::Listener::accept(&mut self.inner).await;
        let now = tokio::time::Instant::now();
        let io = GuardedIo {
            inner: io,
            idle: self.idle,
            closes_at: now + self.lifetime,
            deadline: Box::pin(tokio::time::sleep_until((now + self.idle).min(now + self.lifetime))),
            _slot: permit,
        };
        (io, addr)
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A connection that fails with `TimedOut` once idle (or alive) for too long; holds its slot.
pub struct GuardedIo {
    inner: tokio::net::TcpStream,
    idle: std::time::Duration,
    closes_at: tokio::time::Instant,
    deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

impl GuardedIo {
    fn progressed(&mut self) {
        let next = (tokio::time::Instant::now() + self.idle).min(self.closes_at);
        self.deadline.as_mut().reset(next);
    }

    /// `Pending` from the socket: an error if the deadline has passed, else `Pending` (the
    /// deadline's timer wakes the task).
    fn pending_or_timeout<T>(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<T>> {
        match std::future::Future::poll(self.deadline.as_mut(), cx) {
            std::task::Poll::Ready(()) => std::task::Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "connection idle for too long (or open too long)",
            ))),
            std::task::Poll::Pending => std::task::Poll::Pending,
        }
    }
}

impl tokio::io::AsyncRead for GuardedIo {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        match std::pin::Pin::new(&mut self.inner).poll_read(cx, buf) {
            std::task::Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.progressed();
                }
                std::task::Poll::Ready(Ok(()))
            }
            std::task::Poll::Ready(Err(e)) => std::task::Poll::Ready(Err(e)),
            std::task::Poll::Pending => self.pending_or_timeout(cx),
        }
    }
}

impl tokio::io::AsyncWrite for GuardedIo {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match std::pin::Pin::new(&mut self.inner).poll_write(cx, buf) {
            std::task::Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.progressed();
                }
                std::task::Poll::Ready(Ok(n))
            }
            std::task::Poll::Ready(Err(e)) => std::task::Poll::Ready(Err(e)),
            std::task::Poll::Pending => self.pending_or_timeout(cx),
        }
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
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

    /// A client that connects and sends nothing is disconnected after the idle timeout, and past
    /// the connection cap a new client still gets `/healthz` once an idle one is closed.
    #[tokio::test]
    async fn idle_connections_are_closed_and_do_not_starve_healthz() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let idle = std::time::Duration::from_millis(200);
        let listener = GuardedListener::new(tcp, 2, idle, std::time::Duration::from_secs(30));
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let app = router(Arc::new(Mutex::new(Health::default())), recorder.handle());
        let server = tokio::spawn(async move { axum::serve(listener, app).await });

        // Two silent clients take both slots.
        let mut silent = Vec::new();
        for _ in 0..2 {
            silent.push(tokio::net::TcpStream::connect(addr).await.unwrap());
        }
        // A third asks for /healthz: it is answered once an idle one has been closed.
        let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
        let mut body = String::new();
        tokio::time::timeout(std::time::Duration::from_secs(20), c.read_to_string(&mut body))
            .await
            .expect("healthz answered")
            .unwrap();
        assert!(body.starts_with("HTTP/1.1 200"), "{body}");
        // The silent ones were disconnected by the server (EOF or reset), not left open.
        for mut s in silent {
            let mut buf = [0u8; 16];
            let read =
                tokio::time::timeout(std::time::Duration::from_secs(20), s.read(&mut buf)).await.expect("closed");
            assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        }
        server.abort();
    }

    #[test]
    fn sources_are_labelled_with_their_app() {
        assert_eq!(app_of("users"), "slack");
        assert_eq!(app_of("access_logs"), "slack");
        assert_eq!(app_of("okta_system_log"), "okta");
    }

    #[test]
    fn a_run_manifest_becomes_counters_and_gauges() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let started = DateTime::parse_from_rfc3339("2026-06-30T00:30:00Z").unwrap().with_timezone(&Utc);
        let mut m = RunManifest::start("r1", started.date_naive(), started);
        m.finished_at = started + chrono::Duration::milliseconds(2500);
        m.sources.insert("users".into(), SourceReport { calls: 3, rate_limited: 1, ..Default::default() });
        m.sources.insert("access_logs".into(), SourceReport { calls: 5, ..Default::default() });
        // A source's app comes from its report, whatever its name looks like.
        m.sources.insert("system_log".into(), SourceReport { app: "okta".into(), calls: 2, ..Default::default() });
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
            "lastseen_api_calls_total{app=\"slack\",source=\"users\"} 6",
            "lastseen_api_calls_total{app=\"slack\",source=\"access_logs\"} 10",
            "lastseen_api_calls_total{app=\"okta\",source=\"system_log\"} 4",
            "lastseen_api_rate_limited_total{app=\"slack\",source=\"users\"} 2",
            "lastseen_last_run_rows{table=\"slack_users\"} 42",
            "lastseen_last_success_timestamp_seconds 1782779402.5",
            "lastseen_run_in_progress 0",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
    }
}
