//! The HTTP server: routing, the simulated clock, call counters, fault injection, the access-log
//! cache and the `/_sim/*` control endpoints.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use chrono::{DateTime, Utc};
use serde_json::json;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::SimError;
use crate::activity::{Entry, Tally};
use crate::api::{
    self, BOT_SCOPES, JSON, MEMBER_SCOPES, ORG_SCOPES, ORG_SCOPES_NO_TEAMS, Params, Reply, TokenInfo, TokenState,
    TokenType, USER_SCOPES,
};
use crate::config::{Conditions, FaultKind, FaultRule, FaultWhen, RateLimits, SimConfig};
use crate::endpoints::{audit, scim};
use crate::org::{Kind, Org, Plan};
use crate::ratelimit::RateLimiter;
use crate::rng::{base36, mix, mix4, unit};

/// The entries at one clock value, both grouped by account (to advance from) and in listing order.
type CachedLog = (Arc<Tally>, Arc<Vec<Entry>>);

/// State shared by every request.
pub(crate) struct Shared {
    pub org: Arc<Org>,
    pub tokens: Vec<TokenInfo>,
    pub limiter: Option<RateLimiter>,
    pub conditions: Conditions,
    faults: Vec<FaultRule>,
    clock: AtomicI64,
    calls: Mutex<HashMap<String, u64>>,
    /// Pages are fetched many times at one clock value; building the entries is the costly part.
    access_cache: tokio::sync::Mutex<Option<CachedLog>>,
    /// Users with a SCIM write in progress (Slack allows one at a time per user).
    scim_writing: Mutex<HashSet<usize>>,
    /// Every SCIM user write Slack accepted, in order: what tests count.
    scim_writes: Mutex<Vec<ScimWrite>>,
}

/// One accepted SCIM write to a user.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ScimWrite {
    pub user: String,
    /// `v1` or `v2`: the path and body dialect the client used.
    pub version: String,
    /// `PATCH` or `DELETE`.
    pub method: String,
    /// The `active` value written.
    pub active: bool,
}

/// Holds one user's SCIM write lock until dropped.
pub(crate) struct WriteLock<'a> {
    shared: &'a Shared,
    pos: usize,
}

impl<'a> WriteLock<'a> {
    pub(crate) fn take(shared: &'a Shared, pos: usize) -> Option<WriteLock<'a>> {
        let taken = shared.scim_writing.lock().unwrap_or_else(|e| e.into_inner()).insert(pos);
        // Built only when taken: a lock dropped on refusal would release the holder's.
        if taken { Some(WriteLock { shared, pos }) } else { None }
    }
}

impl Drop for WriteLock<'_> {
    fn drop(&mut self) {
        let mut writing = self.shared.scim_writing.lock().unwrap_or_else(|e| e.into_inner());
        writing.remove(&self.pos);
    }
}

impl Shared {
    pub(crate) fn now(&self) -> i64 {
        self.clock.load(Ordering::SeqCst)
    }

    pub(crate) fn record_scim_write(&self, write: ScimWrite) {
        self.scim_writes.lock().unwrap_or_else(|e| e.into_inner()).push(write);
    }

    fn scim_write_log(&self) -> Vec<ScimWrite> {
        self.scim_writes.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn record_call(&self, method: &str) -> u64 {
        let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        let n = calls.entry(method.to_owned()).or_insert(0);
        *n += 1;
        *n
    }

    fn fault_for(&self, method: &str, n: u64) -> Option<&FaultKind> {
        let method_hash =
            method.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
        self.faults.iter().enumerate().find_map(|(i, rule)| {
            if rule.method != "*" && rule.method != method {
                return None;
            }
            let hit = match rule.when {
                FaultWhen::Nth(k) => n == k,
                FaultWhen::EveryNth(k) => k > 0 && n.is_multiple_of(k),
                FaultWhen::Probability(p) => unit(mix4(self.org.seed(), i as u64, method_hash, n)) < p,
            };
            hit.then_some(&rule.kind)
        })
    }

    pub(crate) async fn access_log(&self, now: i64) -> Result<Arc<Vec<Entry>>, ()> {
        let mut cache = self.access_cache.lock().await;
        let base = match cache.as_ref() {
            Some((tally, sorted)) if tally.now == now => return Ok(sorted.clone()),
            Some((tally, _)) => Some(tally.clone()),
            None => None,
        };
        let org = self.org.clone();
        let built = tokio::task::spawn_blocking(move || {
            let tally = org.tally(base.as_deref(), now);
            let sorted = org.sorted_entries(&tally);
            (Arc::new(tally), Arc::new(sorted))
        })
        .await
        .map_err(|e| tracing::error!(error = %e, "building access logs failed"))?;
        let sorted = built.1.clone();
        *cache = Some(built);
        Ok(sorted)
    }
}

const T_TOKEN: u64 = 400;

fn make_tokens(org: &Org) -> Vec<TokenInfo> {
    let seed = org.seed();
    let secret = |n: u64| format!("{:016x}{:08x}", mix(seed, n, T_TOKEN), mix(seed, n + 100, T_TOKEN) >> 32);
    let users = org.users();
    let owner = &users[0];
    let user = |token: String, scopes, state| TokenInfo {
        token,
        kind: TokenType::User,
        state,
        scopes,
        user_id: owner.id.to_string(),
        user_name: owner.name.to_string(),
        bot_id: None,
        org_level: false,
        workspace: 0,
    };
    // The bot token belongs to a bot that users.list shows; an organisation without one gets a
    // bot user that is not listed, as an app installed after the listing was taken would be.
    let (bot_user_id, bot_name, bot_id) = match users.iter().position(|u| u.kind == Kind::Bot) {
        Some(pos) => (users[pos].id.to_string(), users[pos].name.to_string(), api::bot_id(org, pos)),
        None => (
            format!("U{}", base36(mix(seed, 1, T_TOKEN) % 36u64.pow(10), 10)),
            "lastseen".to_owned(),
            format!("B{}", base36(mix(seed, 2, T_TOKEN) % 36u64.pow(10), 10)),
        ),
    };
    let member = users.iter().find(|u| u.kind == Kind::Member && !u.deleted && !u.invited).unwrap_or(owner);
    let mut tokens = vec![
        user(format!("xoxp-sim-{}", secret(1)), USER_SCOPES, TokenState::Active),
        TokenInfo {
            token: format!("xoxb-sim-{}", secret(2)),
            kind: TokenType::Bot,
            state: TokenState::Active,
            scopes: BOT_SCOPES,
            user_id: bot_user_id,
            user_name: bot_name,
            bot_id: Some(bot_id),
            org_level: false,
            workspace: 0,
        },
        TokenInfo {
            user_id: member.id.to_string(),
            user_name: member.name.to_string(),
            ..user(format!("xoxp-sim-{}", secret(3)), MEMBER_SCOPES, TokenState::Active)
        },
        user(format!("xoxp-sim-revoked-{}", secret(4)), USER_SCOPES, TokenState::Revoked),
        user(format!("xoxp-sim-inactive-{}", secret(5)), USER_SCOPES, TokenState::Inactive),
    ];
    if org.spec().plan == Plan::Enterprise {
        tokens.push(TokenInfo {
            org_level: true,
            ..user(format!("xoxp-sim-org-{}", secret(6)), ORG_SCOPES, TokenState::Active)
        });
        // The same install without `admin.teams:read`: it can list only the workspaces the
        // app was granted (`auth.teams.list`, no scope needed).
        tokens.push(TokenInfo {
            org_level: true,
            ..user(format!("xoxp-sim-org-noteams-{}", secret(7)), ORG_SCOPES_NO_TEAMS, TokenState::Active)
        });
    }
    tokens
}

/// Entry point for starting a simulator.
#[derive(Debug)]
pub struct Simulator;

impl Simulator {
    /// Generates the organisation and serves it on `addr` (`127.0.0.1:0` for a free port).
    pub async fn start(config: SimConfig, addr: SocketAddr) -> Result<RunningSim, SimError> {
        let spec = config.org.clone();
        let org = tokio::task::spawn_blocking(move || Org::generate(&spec))
            .await
            .map_err(|e| SimError::Start(e.to_string()))?;
        Self::start_with_org(config, Arc::new(org), addr).await
    }

    /// Serves an organisation that is already generated; `config.org` is ignored.
    pub async fn start_with_org(config: SimConfig, org: Arc<Org>, addr: SocketAddr) -> Result<RunningSim, SimError> {
        let limiter = match config.rate_limits {
            RateLimits::Off => None,
            RateLimits::Tiers { scale } if scale.is_finite() && scale > 0.0 => Some(RateLimiter::new(scale)),
            RateLimits::Tiers { scale } => {
                return Err(SimError::InvalidConfig(format!(
                    "rate limit scale must be a positive number, got {scale}"
                )));
            }
        };
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|source| SimError::Bind { addr, source })?;
        let addr = listener.local_addr().map_err(|source| SimError::Bind { addr, source })?;

        let default_now = org.spec().today.and_hms_opt(23, 59, 59).map_or(0, |t| t.and_utc().timestamp());
        let shared = Arc::new(Shared {
            tokens: make_tokens(&org),
            org,
            limiter,
            faults: config.faults,
            conditions: config.conditions,
            clock: AtomicI64::new(default_now),
            calls: Mutex::new(HashMap::new()),
            access_cache: tokio::sync::Mutex::new(None),
            scim_writing: Mutex::new(HashSet::new()),
            scim_writes: Mutex::new(Vec::new()),
        });
        // GovSlack serves the same API under its own host; here, under `/gov`.
        let slack = Router::new()
            .route("/api/{method}", any(api_call))
            .route("/scim/{version}/{resource}", any(scim::handle_list))
            .route("/scim/{version}/{resource}/{id}", any(scim::handle_one))
            .route("/audit/v1/{endpoint}", any(audit::handle));
        let app = Router::new()
            .merge(slack.clone())
            .nest("/gov", slack)
            .route("/_sim/clock", get(get_clock).post(set_clock))
            .route("/_sim/ground_truth", get(ground_truth))
            .route("/_sim/identities.csv", get(identities))
            .route("/_sim/scim_writes", get(scim_writes))
            .with_state(shared.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    // A dropped sender means the RunningSim is gone: stop as well.
                    let _ = rx.await;
                })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "slack simulator stopped with an error");
            }
        });
        tracing::info!(%addr, team = shared.org.team_id(), accounts = shared.org.len(), "slack simulator listening");
        Ok(RunningSim { addr, shared, shutdown: Some(tx), task: Some(task) })
    }
}

/// A simulator serving in the background; dropping it or calling `shutdown` stops it.
pub struct RunningSim {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for RunningSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningSim").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl RunningSim {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The Web API base; methods live at `{api_url}/users.list`.
    pub fn api_url(&self) -> String {
        format!("http://{}/api", self.addr)
    }

    /// The same Web API as GovSlack serves it (`https://slack-gov.com/api/` in reality).
    pub fn gov_api_url(&self) -> String {
        format!("http://{}/gov/api", self.addr)
    }

    /// The SCIM base: `{scim_url}/v2/Users`, `{scim_url}/v1/Groups`, ... (GovSlack: `/gov/scim`).
    pub fn scim_url(&self) -> String {
        format!("http://{}/scim", self.addr)
    }

    /// The Audit Logs base: `{audit_url}/logs` (GovSlack: `/gov/audit/v1`).
    pub fn audit_url(&self) -> String {
        format!("http://{}/audit/v1", self.addr)
    }

    /// Enterprise Grid only: an organisation-wide install's token (an Org Owner's, with
    /// `auditlogs:read` and the admin scopes); workspace-scoped methods need `team_id` with it.
    pub fn org_token(&self) -> Option<&str> {
        self.shared.tokens.iter().find(|t| t.org_level).map(|t| t.token.as_str())
    }

    /// Enterprise Grid only: the org-wide install's token without `admin.teams:read`.
    pub fn org_token_without_teams_scope(&self) -> Option<&str> {
        self.shared.tokens.iter().filter(|t| t.org_level).nth(1).map(|t| t.token.as_str())
    }

    /// An owner's user token with `users:read`, `users:read.email`, `team:read` and `admin`.
    pub fn user_token(&self) -> &str {
        &self.shared.tokens[0].token
    }

    /// A bot token with `users:read` and `team:read` only.
    pub fn bot_token(&self) -> &str {
        &self.shared.tokens[1].token
    }

    /// A regular member's user token with `users:read` and `team:read` only (no email, no admin).
    pub fn member_token(&self) -> &str {
        &self.shared.tokens[2].token
    }

    /// A token Slack answers with `token_revoked`.
    pub fn revoked_token(&self) -> &str {
        &self.shared.tokens[3].token
    }

    /// A token of a deactivated user: `account_inactive`.
    pub fn inactive_token(&self) -> &str {
        &self.shared.tokens[4].token
    }

    pub fn org(&self) -> &Arc<Org> {
        &self.shared.org
    }

    /// Moves the simulator's clock (whole seconds; the fraction is dropped).
    pub fn set_now(&self, now: DateTime<Utc>) {
        self.shared.clock.store(now.timestamp(), Ordering::SeqCst);
    }

    pub fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp(self.shared.now(), 0).unwrap_or_default()
    }

    /// Calls received for a method, whatever their outcome.
    pub fn call_count(&self, method: &str) -> u64 {
        let calls = self.shared.calls.lock().unwrap_or_else(|e| e.into_inner());
        calls.get(method).copied().unwrap_or(0)
    }

    /// SCIM writes Slack accepted for `user` (a `PATCH active` or a `DELETE`), retries and
    /// no-op writes included: what "exactly once" is checked against.
    pub fn scim_writes(&self, user: &str) -> u64 {
        self.shared.scim_write_log().iter().filter(|w| w.user == user).count() as u64
    }

    /// Every accepted SCIM user write, in order.
    pub fn scim_write_log(&self) -> Vec<ScimWrite> {
        self.shared.scim_write_log()
    }

    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(mut task) = self.task.take() {
            // Keep-alive connections close at once; only a request in flight (say, a `Slow`
            // fault) could hold the server up, and not for long.
            if tokio::time::timeout(Duration::from_secs(5), &mut task).await.is_err() {
                task.abort();
            }
        }
    }
}

impl Drop for RunningSim {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

async fn api_call(
    State(shared): State<Arc<Shared>>,
    Path(method): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let params = Params::parse(query.as_deref(), &headers, &body);
    let reply = match plan_fault(&shared, &method) {
        FaultPlan::Answer(reply) => reply,
        FaultPlan::Run { delay_ms, post } => {
            if delay_ms > 0 {
                tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            }
            post.apply(api::handle(&shared, &method, &headers, &params).await, params.get("cursor"))
        }
    };
    reply.into_response()
}

/// What the fault rules make of one call: an answer instead of the real one, or the real one
/// (perhaps late) with a rewrite applied.
pub(crate) enum FaultPlan {
    Answer(Reply),
    Run { delay_ms: u64, post: Post },
}

#[derive(Clone, Copy)]
pub(crate) enum Post {
    Keep,
    Truncate,
    RepeatCursor,
}

impl Post {
    /// `cursor` is the request's own cursor, which `RepeatCursor` hands back as the next one.
    pub(crate) fn apply(self, mut reply: Reply, cursor: Option<&str>) -> Reply {
        match self {
            Post::Keep => {}
            Post::Truncate => {
                let cut = (reply.body.len() / 2).max(1).min(reply.body.len());
                reply.body.truncate(cut);
            }
            Post::RepeatCursor => {
                if let Some(cursor) = cursor {
                    repeat_cursor(&mut reply, cursor);
                }
            }
        }
        reply
    }
}

/// Counts the call and decides its fault. `method` names the fault target: a Web API method,
/// `scim.Users`, `scim.Groups` or `audit.logs`.
pub(crate) fn plan_fault(shared: &Shared, method: &str) -> FaultPlan {
    let n = shared.record_call(method);
    tracing::debug!(%method, call = n, "slack simulator call");
    let run = |delay_ms, post| FaultPlan::Run { delay_ms, post };
    match shared.fault_for(method, n).cloned() {
        None => run(0, Post::Keep),
        Some(FaultKind::Status(code)) => FaultPlan::Answer(html_status(code)),
        Some(FaultKind::RateLimited { retry_after_secs }) => FaultPlan::Answer(Reply::rate_limited(retry_after_secs)),
        Some(FaultKind::OkFalse { error }) => FaultPlan::Answer(Reply::error(&error)),
        Some(FaultKind::Malformed) => FaultPlan::Answer(Reply {
            status: StatusCode::OK,
            content_type: JSON,
            headers: Vec::new(),
            body: b"<!DOCTYPE html><html><head><title>Slack</title></head><body>Something went wrong.</body></html>"
                .to_vec(),
        }),
        Some(FaultKind::Slow { millis }) => run(millis, Post::Keep),
        Some(FaultKind::Truncated) => run(0, Post::Truncate),
        Some(FaultKind::RepeatCursor) => run(0, Post::RepeatCursor),
    }
}

/// Hands the request's own cursor back as the next one, so a client that trusts cursors loops.
fn repeat_cursor(reply: &mut Reply, cursor: &str) {
    let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&reply.body) else { return };
    let Some(next) = v.pointer_mut("/response_metadata/next_cursor") else { return };
    *next = json!(cursor);
    reply.body = serde_json::to_vec(&v).unwrap_or_default();
}

fn html_status(code: u16) -> Reply {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let title = format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or("Error"));
    Reply {
        status,
        content_type: "text/html",
        headers: Vec::new(),
        body: format!(
            "<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n</body>\r\n</html>\r\n"
        )
        .into_bytes(),
    }
}

fn control_error(message: &str) -> Response {
    (StatusCode::BAD_REQUEST, axum::Json(json!({"ok": false, "error": message}))).into_response()
}

fn epoch_arg(query: Option<&str>, name: &str) -> Result<Option<i64>, String> {
    let params = Params::parse(query, &HeaderMap::new(), &[]);
    match params.get(name) {
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

async fn ground_truth(State(shared): State<Arc<Shared>>, RawQuery(query): RawQuery) -> Response {
    let as_of = match epoch_arg(query.as_deref(), "as_of") {
        Ok(t) => t.unwrap_or_else(|| shared.now()),
        Err(message) => return control_error(&message),
    };
    let Some(as_of) = DateTime::from_timestamp(as_of, 0) else {
        return control_error("as_of out of range");
    };
    let org = shared.org.clone();
    match tokio::task::spawn_blocking(move || org.ground_truth(as_of)).await {
        Ok(truth) => axum::Json(truth).into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "ground truth failed").into_response(),
    }
}

async fn identities(State(shared): State<Arc<Shared>>) -> Response {
    let org = shared.org.clone();
    match tokio::task::spawn_blocking(move || org.identities_csv()).await {
        Ok(csv) => ([(axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8")], csv).into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "identities failed").into_response(),
    }
}

/// `GET /_sim/scim_writes[?user=U…]`: the accepted SCIM user writes (all, or one user's) and
/// their count, for tests that drive the binary from outside the process.
async fn scim_writes(State(shared): State<Arc<Shared>>, RawQuery(query): RawQuery) -> Response {
    let params = Params::parse(query.as_deref(), &HeaderMap::new(), &[]);
    let user = params.get("user");
    let log: Vec<ScimWrite> =
        shared.scim_write_log().into_iter().filter(|w| user.is_none_or(|u| w.user == u)).collect();
    axum::Json(json!({"ok": true, "count": log.len(), "writes": log})).into_response()
}
