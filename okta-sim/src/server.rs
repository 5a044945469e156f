//! The HTTP server: authentication, rate-limit buckets and headers, fault injection, the
//! simulated clock, and the `/_sim/*` control endpoints. The two API operations live in
//! `users` and `logs`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::OktaSimError;
use crate::config::{FaultKind, FaultRule, FaultWhen, OktaSimConfig, RateLimits};
use crate::oauth::{Issued, OAuthClient};
use crate::org::{OktaGroundTruth, OktaOrg};
use crate::rng::{base62, mix, unit};

pub(crate) const JSON: &str = "application/json";

/// One answer before it becomes an HTTP response.
pub(crate) struct Reply {
    pub status: StatusCode,
    pub content_type: &'static str,
    /// Header lines in order; `link` may repeat (one per relation, as Okta sends them).
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub(crate) fn json(status: StatusCode, body: &Value) -> Reply {
        Reply { status, content_type: JSON, headers: Vec::new(), body: serde_json::to_vec(body).unwrap_or_default() }
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.body).into_response();
        let headers = response.headers_mut();
        if let Ok(v) = self.content_type.parse() {
            headers.insert(header::CONTENT_TYPE, v);
        }
        for (name, value) in self.headers {
            if let Ok(v) = value.parse() {
                headers.append(name, v);
            }
        }
        response
    }
}

/// State shared by every request.
pub(crate) struct Shared {
    pub org: Arc<OktaOrg>,
    limits: RateLimits,
    faults: Vec<FaultRule>,
    /// Simulated now, epoch seconds.
    clock: AtomicI64,
    calls: Mutex<HashMap<String, u64>>,
    /// Per bucket: window start (wall-clock epoch ms) and calls in it.
    buckets: Mutex<HashMap<&'static str, (i64, u32)>>,
    errors: AtomicU64,
    pub api_token: String,
    pub logs_denied_token: String,
    oauth_clients: Vec<OAuthClient>,
    token_ttl_secs: u64,
    issued: Mutex<HashMap<String, Issued>>,
}

impl Shared {
    pub(crate) fn now(&self) -> i64 {
        self.clock.load(Ordering::SeqCst)
    }

    pub(crate) fn now_ms(&self) -> i64 {
        self.now() * 1000
    }

    /// Okta's error object (`Error` schema; developer.okta.com/docs/api "Errors": errorCode,
    /// errorSummary, errorLink — "currently the same value as the errorCode" —, errorId,
    /// errorCauses).
    pub(crate) fn error(&self, status: StatusCode, code: &str, summary: &str, causes: &[String]) -> Reply {
        let n = self.errors.fetch_add(1, Ordering::SeqCst);
        let id = format!("oae{}", base62(mix(self.org.spec().seed, n, 777), 22));
        let causes: Vec<Value> = causes.iter().map(|c| json!({"errorSummary": c})).collect();
        Reply::json(
            status,
            &json!({"errorCode": code, "errorSummary": summary, "errorLink": code, "errorId": id, "errorCauses": causes}),
        )
    }

    /// E0000001 with one cause per message (the System Log page's `until` example).
    pub(crate) fn validation(&self, summary_tail: &str, causes: &[String]) -> Reply {
        self.error(StatusCode::BAD_REQUEST, "E0000001", &format!("Api validation failed: {summary_tail}"), causes)
    }

    fn record_call(&self, endpoint: &str) -> u64 {
        let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        let n = calls.entry(endpoint.to_owned()).or_insert(0);
        *n += 1;
        *n
    }

    fn fault_for(&self, endpoint: &str, n: u64) -> Option<FaultKind> {
        let salt =
            endpoint.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
        self.faults.iter().enumerate().find_map(|(i, rule)| {
            if rule.endpoint != "*" && rule.endpoint != endpoint {
                return None;
            }
            let hit = match rule.when {
                FaultWhen::Nth(k) => n == k,
                FaultWhen::EveryNth(k) => k > 0 && n.is_multiple_of(k),
                FaultWhen::Probability(p) => unit(mix(self.org.spec().seed ^ salt, i as u64, n)) < p,
            };
            hit.then(|| rule.kind.clone())
        })
    }

    /// Takes one call from the endpoint's bucket: the three `X-Rate-Limit-*` headers, and
    /// whether the call is refused ("If the quota is exceeded within the time window, further
    /// requests are rejected with an HTTP 429 Too Many Requests response until the quota
    /// resets", reference/rate-limits; headers as in reference/rl2-monitor: the ceiling, the
    /// requests left in the window, and the reset "in UTC epoch time (in seconds)").
    fn take(&self, bucket: &'static str) -> (Vec<(&'static str, String)>, bool) {
        // Paths outside the two operations count in a bucket of their own, sized like users'.
        let limit = if bucket == "logs" { self.limits.logs } else { self.limits.users };
        let window_ms = (self.limits.window_secs.max(1) * 1000) as i64;
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let (start, used) = buckets.entry(bucket).or_insert((wall, 0));
        if wall >= *start + window_ms {
            *start = wall;
            *used = 0;
        }
        let refused = self.limits.enforce && *used >= limit;
        if !refused && self.limits.enforce {
            *used += 1;
        }
        let reset = (*start + window_ms + 999) / 1000;
        let remaining = limit.saturating_sub(*used);
        let headers = vec![
            ("x-rate-limit-limit", limit.to_string()),
            ("x-rate-limit-remaining", remaining.to_string()),
            ("x-rate-limit-reset", reset.to_string()),
        ];
        (headers, refused)
    }
}

fn make_token(seed: u64, n: u64) -> String {
    // API tokens look like `00QCjAl4MlV-WPXM...0HmjFx-vbGua` (core-okta-api "API token
    // authentication"): 42 characters starting with `00`.
    format!("00{}", base62(mix(seed, n, 4242), 40))
}

/// Entry point for starting a simulator.
#[derive(Debug)]
pub struct OktaSimulator;

impl OktaSimulator {
    /// Generates the organisation and serves it on `addr` (`127.0.0.1:0` for a free port).
    pub async fn start(config: OktaSimConfig, addr: SocketAddr) -> Result<RunningOktaSim, OktaSimError> {
        let spec = config.org.clone();
        let org = tokio::task::spawn_blocking(move || OktaOrg::generate(&spec))
            .await
            .map_err(|e| OktaSimError::Start(e.to_string()))?;
        Self::start_with_org(config, Arc::new(org), addr).await
    }

    /// Serves an organisation that is already generated; `config.org` is ignored.
    pub async fn start_with_org(
        config: OktaSimConfig,
        org: Arc<OktaOrg>,
        addr: SocketAddr,
    ) -> Result<RunningOktaSim, OktaSimError> {
        if config.rate_limits.window_secs == 0 {
            return Err(OktaSimError::InvalidConfig("rate limit window_secs must be at least 1".to_owned()));
        }
        for rule in &config.faults {
            if matches!(rule.when, FaultWhen::Nth(0) | FaultWhen::EveryNth(0)) {
                return Err(OktaSimError::InvalidConfig(format!(
                    "calls are counted from 1; 0 never matches ({})",
                    rule.endpoint
                )));
            }
        }
        let listener =
            tokio::net::TcpListener::bind(addr).await.map_err(|source| OktaSimError::Bind { addr, source })?;
        let addr = listener.local_addr().map_err(|source| OktaSimError::Bind { addr, source })?;
        let seed = org.spec().seed;
        let default_now = org.spec().today.and_hms_opt(23, 59, 59).map_or(0, |t| t.and_utc().timestamp());
        let shared = Arc::new(Shared {
            org,
            limits: config.rate_limits,
            faults: config.faults,
            clock: AtomicI64::new(default_now),
            calls: Mutex::new(HashMap::new()),
            buckets: Mutex::new(HashMap::new()),
            errors: AtomicU64::new(0),
            api_token: make_token(seed, 1),
            logs_denied_token: make_token(seed, 2),
            oauth_clients: config.oauth_clients,
            token_ttl_secs: config.access_token_ttl_secs,
            issued: Mutex::new(HashMap::new()),
        });
        let app = Router::new()
            .route("/api/v1/users", get(users_route))
            .route("/api/v1/logs", get(logs_route))
            .route("/oauth2/v1/token", post(token_route))
            .route("/_sim/clock", get(get_clock).post(set_clock))
            .route("/_sim/ground_truth", get(ground_truth))
            .fallback(not_found)
            .with_state(shared.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "okta simulator stopped with an error");
            }
        });
        tracing::info!(%addr, users = shared.org.user_count(), events = shared.org.event_count(), "okta simulator listening");
        Ok(RunningOktaSim { addr, shared, shutdown: Some(tx), task: Some(task) })
    }
}

/// A simulator serving in the background; dropping it or calling `shutdown` stops it.
pub struct RunningOktaSim {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for RunningOktaSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningOktaSim").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl RunningOktaSim {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The org URL (`https://{yourOktaDomain}` in reality); operations live under `/api/v1`.
    pub fn org_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// An API token with read access to users and the System Log (`Authorization: SSWS …`).
    pub fn api_token(&self) -> &str {
        &self.shared.api_token
    }

    /// A token whose admin may read users but not the System Log: `/api/v1/logs` answers 403
    /// E0000006 (`ErrorAccessDenied403` in listLogEvents' responses).
    pub fn logs_denied_token(&self) -> &str {
        &self.shared.logs_denied_token
    }

    pub fn org(&self) -> &Arc<OktaOrg> {
        &self.shared.org
    }

    /// Moves the simulated clock (whole seconds): which events are persisted, which are within
    /// the 90-day retention, and what `lastLogin` and statuses read.
    pub fn set_now(&self, now: DateTime<Utc>) {
        self.shared.clock.store(now.timestamp(), Ordering::SeqCst);
    }

    pub fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp(self.shared.now(), 0).unwrap_or_default()
    }

    /// Calls received for `users` or `logs`, whatever their outcome.
    pub fn call_count(&self, endpoint: &str) -> u64 {
        let calls = self.shared.calls.lock().unwrap_or_else(|e| e.into_inner());
        calls.get(endpoint).copied().unwrap_or(0)
    }

    /// [`OktaOrg::ground_truth`] at the simulator's clock, over the 90 days the System Log keeps.
    pub fn ground_truth(&self) -> OktaGroundTruth {
        let now = self.now();
        self.shared.org.ground_truth(now, Some(now - chrono::Duration::days(crate::logs::RETENTION_DAYS)))
    }

    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(Duration::from_secs(5), &mut task).await.is_err()
        {
            task.abort();
        }
    }
}

impl Drop for RunningOktaSim {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Query pairs in order, decoded.
pub(crate) fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    query.map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default()
}

pub(crate) fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// `scheme://host` as the client addressed us, for `Link` URLs.
pub(crate) fn base_url(headers: &HeaderMap) -> String {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    format!("http://{host}")
}

pub(crate) fn link(url: &str, rel: &str) -> (&'static str, String) {
    ("link", format!("<{url}>; rel=\"{rel}\""))
}

/// Which token a request carries.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Caller {
    Full,
    LogsDenied,
    /// An OAuth access token, with whether it holds `okta.users.read` and `okta.logs.read`.
    Bearer {
        users: bool,
        logs: bool,
    },
}

fn authenticate(shared: &Shared, headers: &HeaderMap) -> Result<Caller, Reply> {
    // "Requests must have a valid API token specified in the HTTP Authorization header with the
    // SSWS scheme" (core-okta-api, "API token authentication"), or an access token from
    // `/oauth2/v1/token` as `Authorization: Bearer …` ("Make a request", the service-app
    // guide). Anything else — no header, an unknown or expired token — gets the spec's 401
    // example, E0000011 "Invalid token provided" (the simulator's choice for the missing case).
    let value = headers.get(header::AUTHORIZATION).and_then(|h| h.to_str().ok()).unwrap_or_default();
    if let Some(bearer) = value.strip_prefix("Bearer ") {
        let issued = shared.issued.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(scopes) = crate::oauth::scopes_of(&issued, bearer) {
            let has = |s: &str| scopes.iter().any(|x| x == s);
            return Ok(Caller::Bearer { users: has("okta.users.read"), logs: has("okta.logs.read") });
        }
    }
    match value.strip_prefix("SSWS ") {
        Some(t) if t == shared.api_token => Ok(Caller::Full),
        Some(t) if t == shared.logs_denied_token => Ok(Caller::LogsDenied),
        _ => Err(shared.error(StatusCode::UNAUTHORIZED, "E0000011", "Invalid token provided", &[])),
    }
}

/// What the fault rules make of one call.
enum FaultPlan {
    Answer(Reply),
    Run { delay_ms: u64, truncate: bool, repeat: bool },
}

fn plan_fault(shared: &Shared, endpoint: &str) -> FaultPlan {
    let n = shared.record_call(endpoint);
    tracing::debug!(%endpoint, call = n, "okta simulator call");
    let run = |delay_ms, truncate, repeat| FaultPlan::Run { delay_ms, truncate, repeat };
    match shared.fault_for(endpoint, n) {
        None => run(0, false, false),
        Some(FaultKind::Status(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let title = format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or("Error"));
            FaultPlan::Answer(Reply {
                status,
                content_type: "text/html",
                headers: Vec::new(),
                body: format!("<html><head><title>{title}</title></head><body><h1>{title}</h1></body></html>").into_bytes(),
            })
        }
        Some(FaultKind::RateLimited { reset_secs }) => {
            let mut reply = shared.error(
                StatusCode::TOO_MANY_REQUESTS,
                "E0000047",
                "API call exceeded rate limit due to too many requests.",
                &[],
            );
            let wall = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
            let limit = if endpoint == "users" { shared.limits.users } else { shared.limits.logs };
            reply.headers = vec![
                ("x-rate-limit-limit", limit.to_string()),
                ("x-rate-limit-remaining", "0".to_owned()),
                ("x-rate-limit-reset", (wall + reset_secs).to_string()),
            ];
            FaultPlan::Answer(reply)
        }
        Some(FaultKind::Timeout) => FaultPlan::Answer(shared.error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "E0000009",
            "Your last request took too long to complete. This is likely due to a load issue on our side. We've logged this and will work to address it. Please either simplify your query or wait a few minutes and try again.",
            &[],
        )),
        Some(FaultKind::Malformed) => FaultPlan::Answer(Reply {
            status: StatusCode::OK,
            content_type: JSON,
            headers: Vec::new(),
            body: b"<!DOCTYPE html><html><body>Something went wrong.</body></html>".to_vec(),
        }),
        Some(FaultKind::Slow { millis }) => run(millis, false, false),
        Some(FaultKind::Truncated) => run(0, true, false),
        Some(FaultKind::RepeatCursor) => run(0, false, true),
    }
}

/// The common path of both operations: faults, authentication, the rate-limit bucket, then the
/// operation; every answer carries the bucket's headers.
async fn serve_api(
    shared: &Shared,
    endpoint: &'static str,
    headers: &HeaderMap,
    uri: &Uri,
    handle: impl FnOnce(&Shared, Caller) -> Reply,
) -> Response {
    let plan = plan_fault(shared, endpoint);
    let (rl_headers, refused) = shared.take(endpoint);
    let mut reply = match plan {
        FaultPlan::Answer(reply) => reply,
        FaultPlan::Run { delay_ms, truncate, repeat } => {
            if delay_ms > 0 {
                tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            }
            let mut reply = match authenticate(shared, headers) {
                Err(reply) => reply,
                Ok(_) if refused => shared.error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "E0000047",
                    "API call exceeded rate limit due to too many requests.",
                    &[],
                ),
                Ok(caller) => handle(shared, caller),
            };
            if truncate {
                let cut = (reply.body.len() / 2).max(1).min(reply.body.len());
                reply.body.truncate(cut);
            }
            if repeat {
                repeat_after(&mut reply, uri);
            }
            reply
        }
    };
    if !reply.headers.iter().any(|(k, _)| k.starts_with("x-rate-limit")) {
        reply.headers.extend(rl_headers);
    }
    reply.into_response()
}

/// Rewrites the `next` link so that it carries the request's own `after` (or none).
fn repeat_after(reply: &mut Reply, uri: &Uri) {
    let own = query_pairs(uri.query());
    for (name, value) in reply.headers.iter_mut() {
        if *name == "link" && value.ends_with("rel=\"next\"") {
            let Some(url) = value.strip_prefix('<').and_then(|v| v.split_once('>')).map(|(u, _)| u.to_owned()) else {
                continue;
            };
            let Ok(mut parsed) = url::Url::parse(&url) else { continue };
            let kept: Vec<(String, String)> = parsed.query_pairs().into_owned().filter(|(k, _)| k != "after").collect();
            {
                let mut q = parsed.query_pairs_mut();
                q.clear();
                for (k, v) in &kept {
                    q.append_pair(k, v);
                }
                if let Some(after) = param(&own, "after") {
                    q.append_pair("after", after);
                }
            }
            *value = format!("<{parsed}>; rel=\"next\"");
        }
    }
}

async fn users_route(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    uri: Uri,
    RawQuery(q): RawQuery,
) -> Response {
    let base = base_url(&headers);
    serve_api(&shared, "users", &headers, &uri, |s, caller| {
        // An access token without the operation's scope is refused like an admin without the
        // permission (403 E0000006), the scope being the OAuth form of that permission
        // ("okta.users.read … okta.logs.read", the service-app guide's scopes).
        if matches!(caller, Caller::Bearer { users: false, .. }) {
            return s.error(
                StatusCode::FORBIDDEN,
                "E0000006",
                "You do not have permission to perform the requested action",
                &[],
            );
        }
        crate::users::list(s, &base, q.as_deref())
    })
    .await
}

async fn logs_route(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    uri: Uri,
    RawQuery(q): RawQuery,
) -> Response {
    let base = base_url(&headers);
    serve_api(&shared, "logs", &headers, &uri, |s, caller| {
        if matches!(caller, Caller::LogsDenied | Caller::Bearer { logs: false, .. }) {
            return s.error(
                StatusCode::FORBIDDEN,
                "E0000006",
                "You do not have permission to perform the requested action",
                &[],
            );
        }
        crate::logs::list(s, &base, q.as_deref())
    })
    .await
}

/// `POST /oauth2/v1/token` (see [`crate::oauth`]).
async fn token_route(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let base = base_url(&headers);
    let serial = shared.errors.fetch_add(1, Ordering::SeqCst);
    let mut issued = shared.issued.lock().unwrap_or_else(|e| e.into_inner());
    crate::oauth::token(&shared.oauth_clients, &mut issued, shared.token_ttl_secs, &base, &body, serial).into_response()
}

/// Any other path: 404 with the spec's `ErrorResourceNotFound` shape ("Not found: {0}").
async fn not_found(State(shared): State<Arc<Shared>>, uri: Uri) -> Response {
    let (rl_headers, _) = shared.take("other");
    let mut reply = shared.error(
        StatusCode::NOT_FOUND,
        "E0000007",
        &format!("Not found: Resource not found: {} (Path)", uri.path()),
        &[],
    );
    reply.headers.extend(rl_headers);
    reply.into_response()
}

fn control_error(message: &str) -> Response {
    (StatusCode::BAD_REQUEST, axum::Json(json!({"ok": false, "error": message}))).into_response()
}

fn epoch_arg(query: Option<&str>, name: &str) -> Result<Option<i64>, String> {
    match param(&query_pairs(query), name) {
        None => Ok(None),
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|&t| DateTime::from_timestamp(t, 0).is_some())
            .map(Some)
            .ok_or_else(|| format!("{name} must be epoch seconds")),
    }
}

async fn get_clock(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(json!({"ok": true, "now": shared.now()})).into_response()
}

async fn set_clock(State(shared): State<Arc<Shared>>, RawQuery(query): RawQuery) -> Response {
    match epoch_arg(query.as_deref(), "now") {
        Ok(Some(now)) => {
            shared.clock.store(now, Ordering::SeqCst);
            axum::Json(json!({"ok": true, "now": now})).into_response()
        }
        Ok(None) => control_error("now is required"),
        Err(message) => control_error(&message),
    }
}

/// `GET /_sim/ground_truth[?as_of=<epoch>][&since=<epoch>]`; `since` defaults to 90 days before
/// `as_of` (the System Log's retention).
async fn ground_truth(State(shared): State<Arc<Shared>>, RawQuery(query): RawQuery) -> Response {
    let as_of = match epoch_arg(query.as_deref(), "as_of") {
        Ok(t) => t.unwrap_or_else(|| shared.now()),
        Err(message) => return control_error(&message),
    };
    let since = match epoch_arg(query.as_deref(), "since") {
        Ok(t) => t.unwrap_or(as_of - crate::logs::RETENTION_DAYS * 86_400),
        Err(message) => return control_error(&message),
    };
    let (Some(as_of), Some(since)) = (DateTime::from_timestamp(as_of, 0), DateTime::from_timestamp(since, 0)) else {
        return control_error("as_of or since out of range");
    };
    let org = shared.org.clone();
    match tokio::task::spawn_blocking(move || org.ground_truth(as_of, Some(since))).await {
        Ok(truth) => axum::Json(truth).into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "ground truth failed").into_response(),
    }
}
