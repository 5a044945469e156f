//! `SlackClient`: the one way this crate talks to the Slack Web API. It owns the HTTP client,
//! the token (only ever in a sensitive `Authorization` header), response classification,
//! retries, client-side pacing, the bounds on what a server can make it do (body caps, gzip
//! checks off the async threads, the run deadline) and the per-method counters that feed the
//! run manifest.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use lastseen_config::SlackConfig;
use lastseen_lake::SourceReport;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{StatusCode, redirect};
use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokio::sync::Semaphore;
use url::Url;

use crate::error::{IngestError, Result};
use crate::rate::RateBudget;
use crate::retry::RetryPolicy;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest JSON answer read (Web API, SCIM, Audit Logs). The biggest real pages (1,000
/// users with full profiles, 1,000 SCIM resources, 9,999 audit entries) are a few MiB; a server
/// sending more is broken or hostile, and reading on would only exhaust memory.
pub const MAX_JSON_BODY: usize = 64 << 20;
/// The largest file read (`admin.analytics.getFile`, gzip). A day of member analytics is about
/// 100 bytes compressed per member, so 1 GiB is some ten million members.
pub const MAX_FILE_BODY: usize = 1 << 30;
/// The most a file may inflate to: a gzip bomb stops here instead of running for minutes.
pub const MAX_FILE_INFLATED: u64 = 16 << 30;
/// The longest line a (NDJSON) file may hold; a member-analytics row is under 1 KiB. Checked
/// while validating, so the readers after it never buffer an unbounded line.
pub const MAX_FILE_LINE: usize = 1 << 20;

/// Warnings kept per method; Slack repeats the same few on every page.
const MAX_WARNINGS: usize = 20;

/// Slack warnings that follow from a deliberate choice here and would only add noise to every
/// run manifest: classic `team.accessLogs` paging is what the collector uses on purpose.
const EXPECTED_WARNINGS: &[&str] = &["use_cursor_pagination_instead"];

/// What `auth.test` says about the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthInfo {
    pub team_id: String,
    pub team: String,
    pub user_id: String,
    pub url: String,
    /// Set for bot tokens.
    pub bot_id: Option<String>,
    /// Set on Enterprise Grid.
    pub enterprise_id: Option<String>,
    /// An organisation-wide (Enterprise Grid org-level) install: workspace-scoped methods need
    /// `team_id`, and `team_id` above is the organisation.
    pub is_enterprise_install: bool,
    /// The token's scopes, from the `x-oauth-scopes` response header when Slack sends it.
    pub scopes: Option<Vec<String>>,
}

/// Counters for one Slack method over the client's lifetime.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MethodStats {
    /// HTTP requests sent, retries included.
    pub calls: u64,
    /// Pages a collector consumed.
    pub pages: u64,
    /// Rows a collector emitted.
    pub rows: u64,
    /// Attempts after the first.
    pub retries: u64,
    /// Rate-limit answers (HTTP 429 or `ok:false` `ratelimited`).
    pub rate_limited: u64,
    /// Time spent waiting for the client-side budget or for a 429's `Retry-After`.
    pub rate_wait: Duration,
    /// Distinct `warning`s Slack attached to answers.
    pub warnings: Vec<String>,
}

/// A Slack Web API client.
///
/// Cheap to share behind an `Arc`; every collector of a run should use the same client so the
/// rate budgets and counters are shared.
pub struct SlackClient {
    http: reqwest::Client,
    api_url: Url,
    authorization: HeaderValue,
    token_source: String,
    policy: RetryPolicy,
    /// When the client was built (the run started) and how long its calls may take in all.
    started: Instant,
    run_deadline: Duration,
    budget: RateBudget,
    in_flight: Semaphore,
    stats: Mutex<BTreeMap<String, MethodStats>>,
}

impl fmt::Debug for SlackClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackClient")
            .field("api_url", &self.api_url.as_str())
            .field("token", &"[redacted]")
            .field("token_source", &self.token_source)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// One SCIM answer as [`SlackClient::send_rest_once`] read it.
#[derive(Debug, Clone)]
pub struct RestAnswer {
    pub status: u16,
    /// A 429's `Retry-After`.
    pub retry_after: Option<Duration>,
    pub body: serde_json::Value,
    /// The error code of an error body (`Errors.description`, `detail` or `error`).
    pub code: Option<String>,
}

/// A decoded answer plus the headers a caller may need.
struct Reply<T> {
    body: T,
    scopes: Option<String>,
}

/// The part of every Slack answer that says whether it worked.
#[derive(Deserialize)]
struct Envelope {
    ok: bool,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    needed: Option<String>,
    #[serde(default)]
    provided: Option<String>,
    #[serde(default)]
    warning: Option<String>,
    #[serde(default)]
    response_metadata: Option<EnvelopeMetadata>,
}

#[derive(Deserialize, Default)]
struct EnvelopeMetadata {
    #[serde(default)]
    warnings: Option<Vec<String>>,
}

impl SlackClient {
    /// Builds a client for `cfg.api_url` with `token`. The token goes into a header value marked
    /// sensitive (hyper and reqwest then keep it out of their own debug output) and nowhere else;
    /// the `Bearer …` text it is built from is wiped when dropped. (The `HeaderValue` itself
    /// keeps its bytes in a `Bytes` that cannot be zeroized: the HTTP stack allows no better.)
    pub fn new(cfg: &SlackConfig, token: SecretString) -> Result<SlackClient> {
        let secret = token.expose_secret();
        let mut bearer = Zeroizing::new(Vec::with_capacity(7 + secret.len()));
        bearer.extend_from_slice(b"Bearer ");
        bearer.extend_from_slice(secret.as_bytes());
        // The error is mapped to one that names the token's source, never its value.
        let mut authorization = HeaderValue::from_bytes(&bearer).map_err(|_| {
            IngestError::Setup(format!(
                "the token from {} contains characters that cannot be sent in an HTTP header",
                cfg.token
            ))
        })?;
        drop(bearer);
        authorization.set_sensitive(true);
        tracing::info!(
            hosts = cfg.token_hosts().join(", "),
            custom_hosts_allowed = cfg.allow_custom_hosts,
            "the Slack token is sent only to these hosts"
        );
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(cfg.request_timeout)
            // A redirect could carry the Authorization header to a host nobody allow-listed.
            .redirect(redirect::Policy::none())
            .user_agent(concat!("lastseen/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| IngestError::Setup(format!("building the HTTP client: {e}")))?;
        let mut api_url = cfg.api_url.clone();
        if !api_url.path().ends_with('/') {
            let path = format!("{}/", api_url.path());
            api_url.set_path(&path);
        }
        Ok(SlackClient {
            http,
            api_url,
            authorization,
            token_source: cfg.token.describe(),
            policy: RetryPolicy::from(&cfg.retry),
            started: Instant::now(),
            run_deadline: cfg.run_deadline,
            budget: RateBudget::new(&cfg.rate_limits),
            in_flight: Semaphore::new(cfg.concurrency.max(1)),
            stats: Mutex::new(BTreeMap::new()),
        })
    }

    /// The Web API base URL (ends with `/`).
    pub fn api_url(&self) -> &Url {
        &self.api_url
    }

    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// Calls `method` with GET and decodes a successful (`ok:true`) answer into `T`.
    ///
    /// `team` selects the rate bucket (Slack's limits are per method per workspace); pass the
    /// workspace the call is about, or `None` for the token's own. It is not sent: methods that
    /// take `team_id` get it in `params`. Retriable failures are retried per the policy; a
    /// 429 pauses the method's bucket for its `Retry-After`.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        team: Option<&str>,
        params: &[(&str, String)],
    ) -> Result<T> {
        self.call_with_reply(method, team, params).await.map(|reply| reply.body)
    }

    /// `auth.test`: who the token belongs to, and its scopes when Slack reports them.
    pub async fn auth_test(&self) -> Result<AuthInfo> {
        #[derive(Deserialize)]
        struct AuthTest {
            #[serde(default)]
            team_id: Option<String>,
            #[serde(default)]
            team: Option<String>,
            #[serde(default)]
            user_id: Option<String>,
            #[serde(default)]
            url: Option<String>,
            #[serde(default)]
            bot_id: Option<String>,
            #[serde(default)]
            enterprise_id: Option<String>,
            #[serde(default)]
            is_enterprise_install: bool,
        }
        let reply = self.call_with_reply::<AuthTest>("auth.test", None, &[]).await?;
        let body = reply.body;
        let non_empty = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
        let team_id = non_empty(body.team_id).ok_or_else(|| IngestError::Decode {
            method: "auth.test".into(),
            detail: "the answer has no team_id".into(),
            retriable: false,
        })?;
        Ok(AuthInfo {
            team_id,
            team: body.team.unwrap_or_default(),
            user_id: body.user_id.unwrap_or_default(),
            url: body.url.unwrap_or_default(),
            bot_id: non_empty(body.bot_id),
            enterprise_id: non_empty(body.enterprise_id),
            is_enterprise_install: body.is_enterprise_install,
            scopes: reply
                .scopes
                .map(|s| s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()),
        })
    }

    /// Counters of one method.
    pub fn stats(&self, method: &str) -> MethodStats {
        self.lock_stats().get(method).cloned().unwrap_or_default()
    }

    /// The counters of `methods`, summed into the run manifest's per-source shape. `error` is
    /// left for the orchestrator, which knows how the source ended.
    pub fn report(&self, methods: &[&str]) -> SourceReport {
        let stats = self.lock_stats();
        let mut report = SourceReport::default();
        let mut wait = Duration::ZERO;
        for s in methods.iter().filter_map(|m| stats.get(*m)) {
            report.calls += s.calls;
            report.pages += s.pages;
            report.rows += s.rows;
            report.retries += s.retries;
            report.rate_limited += s.rate_limited;
            wait += s.rate_wait;
            for w in &s.warnings {
                if !report.warnings.contains(w) {
                    report.warnings.push(w.clone());
                }
            }
        }
        report.rate_wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        report
    }

    /// Collectors report what they consumed and emitted, so `report` has pages and rows too.
    pub(crate) fn record_page(&self, method: &str, rows: usize) {
        self.update(method, |s| {
            s.pages += 1;
            s.rows += rows as u64;
        });
    }

    /// Records a warning a collector (not Slack) raised about `method`.
    pub(crate) fn record_warning(&self, method: &str, warning: String) {
        tracing::warn!(method, "{warning}");
        self.update(method, |s| push_warning(&mut s.warnings, warning));
    }

    fn lock_stats(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, MethodStats>> {
        self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn update(&self, method: &str, f: impl FnOnce(&mut MethodStats)) {
        let mut stats = self.lock_stats();
        match stats.get_mut(method) {
            Some(s) => f(s),
            None => f(stats.entry(method.to_owned()).or_default()),
        }
    }

    fn method_url(&self, method: &str, params: &[(&str, String)]) -> Result<Url> {
        // The method is joined onto the base URL: anything but a plain dotted name could make
        // `join` point elsewhere ("//host", "../") and the token would follow.
        let valid = !method.is_empty()
            && !method.starts_with('.')
            && method.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_');
        if !valid {
            return Err(IngestError::Setup(format!("`{method}` is not a Slack method name")));
        }
        let mut url =
            self.api_url.join(method).map_err(|e| IngestError::Setup(format!("building the URL of {method}: {e}")))?;
        if !params.is_empty() {
            let mut query = url.query_pairs_mut();
            for (key, value) in params {
                if key.eq_ignore_ascii_case("token") {
                    return Err(IngestError::Setup(format!(
                        "{method}: the token must not be passed as a query parameter"
                    )));
                }
                query.append_pair(key, value);
            }
        }
        Ok(url)
    }

    async fn call_with_reply<T: DeserializeOwned>(
        &self,
        method: &str,
        team: Option<&str>,
        params: &[(&str, String)],
    ) -> Result<Reply<T>> {
        let url = self.method_url(method, params)?;
        self.retrying(method, team, || self.attempt::<T>(method, &url)).await
    }

    /// GET a REST endpoint outside the Web API (SCIM, Audit Logs) at `url` and decode a 200
    /// answer into `T`. `label` names it in counters, buckets and errors (`scim.Users`).
    /// These APIs report failures with HTTP statuses and their own error bodies.
    pub async fn get_rest<T: DeserializeOwned>(&self, label: &str, team: Option<&str>, url: &Url) -> Result<T> {
        self.check_rest_url(label, url)?;
        self.retrying(label, team, || self.attempt_rest::<T>(label, url)).await
    }

    /// One SCIM request (any method, an optional JSON body) with no retry: the caller decides,
    /// because a write must not be repeated blindly (deprovisioning re-reads before retrying).
    /// Returns the status, the `Retry-After` of a 429, and the JSON body (`Null` when empty or
    /// not JSON). The token goes only in the sensitive header, as for every other call.
    pub async fn send_rest_once(
        &self,
        label: &str,
        method: reqwest::Method,
        url: &Url,
        body: Option<&serde_json::Value>,
    ) -> Result<RestAnswer> {
        self.check_rest_url(label, url)?;
        self.check_deadline(label, Duration::ZERO)?;
        let _permit = self.in_flight.acquire().await.ok();
        self.update(label, |s| s.calls += 1);
        tracing::debug!(method = label, http = %method, url = url.as_str(), "calling Slack");
        let mut request = self.http.request(method, url.clone()).header(AUTHORIZATION, self.authorization.clone());
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(serde_json::to_vec(body).unwrap_or_default());
        }
        let response = request.send().await.map_err(|e| IngestError::transport(label, &e, false))?;
        let status = response.status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            self.update(label, |s| s.rate_limited += 1);
        }
        let retry_after = retry_after(response.headers());
        let bytes = response.bytes().await.map_err(|e| IngestError::transport(label, &e, true))?;
        if bytes.len() > MAX_JSON_BODY {
            return Err(IngestError::Decode {
                method: label.to_owned(),
                detail: "the answer is larger than any real SCIM answer".into(),
                retriable: false,
            });
        }
        let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        let code = RestError::parse(&bytes).code;
        Ok(RestAnswer { status: status.as_u16(), retry_after, body: json, code })
    }

    /// Calls a Web API method that answers with a file (`admin.analytics.getFile`): the bytes
    /// of a successful answer, checked to be a complete gzip stream when they are one (so a cut
    /// transfer is retried), or the classified `ok:false` error.
    pub async fn get_file(&self, method: &str, team: Option<&str>, params: &[(&str, String)]) -> Result<Bytes> {
        let url = self.method_url(method, params)?;
        self.retrying(method, team, || self.attempt_file(method, &url)).await
    }

    /// The REST bases are configured separately from `api_url`; the same rules keep the token
    /// off plain http to anything but loopback.
    fn check_rest_url(&self, label: &str, url: &Url) -> Result<()> {
        let loopback = match url.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        if url.scheme() == "https" || (url.scheme() == "http" && loopback) {
            Ok(())
        } else {
            Err(IngestError::Setup(format!(
                "{label}: refusing to send the token to {} (https only)",
                url.origin().ascii_serialization()
            )))
        }
    }

    /// One logical request: waits for the (method, team) budget, then attempts it with retries
    /// per the policy. Failures other than rate limits use up `max_attempts`; a 429 (or
    /// `ratelimited`) pauses the bucket for its `Retry-After` and is bounded by
    /// `rate_limit_budget` of elapsed time instead, so another app hammering the same workspace
    /// slows the run down without failing it. Nothing starts after the run deadline.
    async fn retrying<T, F, Fut>(&self, method: &str, team: Option<&str>, attempt_once: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let started = Instant::now();
        let mut backoff = self.policy.backoff();
        let mut rate_backoff = self.policy.rate_limit_backoff();
        let mut attempts = 0u32;
        loop {
            let waited = self.budget.acquire(method, team).await;
            if !waited.is_zero() {
                self.update(method, |s| s.rate_wait += waited);
            }
            self.check_deadline(method, Duration::ZERO)?;
            attempts = attempts.saturating_add(1);
            let err = match attempt_once().await {
                Ok(reply) => return Ok(reply),
                Err(err) if !err.is_retriable() => return Err(err),
                Err(err) => err,
            };
            let wait = if matches!(err, IngestError::RateLimited { .. }) {
                let proposed = rate_backoff.next().unwrap_or(self.policy.max_backoff);
                let wait = self.policy.delay_for(&err, proposed);
                (started.elapsed().saturating_add(wait) <= self.policy.rate_limit_budget).then_some(wait)
            } else {
                backoff.next().map(|proposed| self.policy.delay_for(&err, proposed))
            };
            let Some(wait) = wait else {
                return Err(IngestError::RetriesExhausted { method: method.to_owned(), attempts, last: Box::new(err) });
            };
            self.check_deadline(method, wait)?;
            self.on_retry(method, team, &err, wait);
            tokio::time::sleep(wait).await;
        }
    }

    /// `Deadline` when `slack.run_deadline` has passed, or would pass during `ahead`.
    fn check_deadline(&self, method: &str, ahead: Duration) -> Result<()> {
        if self.started.elapsed().saturating_add(ahead) > self.run_deadline {
            return Err(IngestError::Deadline { method: method.to_owned(), deadline: self.run_deadline });
        }
        Ok(())
    }

    fn on_retry(&self, method: &str, team: Option<&str>, err: &IngestError, wait: Duration) {
        let rate_limited = matches!(err, IngestError::RateLimited { .. });
        if rate_limited {
            self.budget.pause(method, team, wait);
        }
        self.update(method, |s| {
            s.retries += 1;
            if rate_limited {
                s.rate_wait += wait;
            }
        });
        tracing::warn!(
            method,
            team = team.unwrap_or_default(),
            wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
            "retrying Slack call: {err}"
        );
    }

    /// Sends one GET and reads the body, up to `cap` bytes; a 429 becomes `RateLimited`
    /// whatever the API.
    async fn send(&self, method: &str, url: &Url, cap: usize) -> Result<(StatusCode, HeaderMap, Bytes)> {
        // The semaphore is never closed, so acquiring cannot fail; without a permit the
        // request would still be correct, just less bounded.
        let _permit = self.in_flight.acquire().await.ok();
        self.update(method, |s| s.calls += 1);
        tracing::debug!(method, url = url.as_str(), "calling Slack");
        let response = self
            .http
            .get(url.clone())
            .header(AUTHORIZATION, self.authorization.clone())
            .send()
            .await
            .map_err(|e| IngestError::transport(method, &e, false))?;
        let status = response.status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            self.update(method, |s| s.rate_limited += 1);
            return Err(IngestError::RateLimited {
                method: method.to_owned(),
                retry_after: retry_after(response.headers()),
            });
        }
        let headers = response.headers().clone();
        let too_large = || IngestError::Decode {
            method: method.to_owned(),
            detail: format!("the answer is larger than {} MiB, more than any real answer; not reading it", cap >> 20),
            retriable: false,
        };
        let announced = response.content_length().unwrap_or(0);
        if announced > cap as u64 {
            return Err(too_large());
        }
        // Read chunk by chunk so a server that sends without end is cut off at `cap`, not when
        // memory runs out.
        let mut body = BytesMut::with_capacity(usize::try_from(announced).unwrap_or(cap).min(cap));
        let mut response = response;
        while let Some(chunk) = response.chunk().await.map_err(|e| IngestError::transport(method, &e, true))? {
            if body.len().saturating_add(chunk.len()) > cap {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok((status, headers, body.freeze()))
    }

    /// One Web API round trip, classified.
    async fn attempt<T: DeserializeOwned>(&self, method: &str, url: &Url) -> Result<Reply<T>> {
        let (status, headers, body) = self.send(method, url, MAX_JSON_BODY).await?;
        if status != StatusCode::OK {
            return Err(IngestError::Http { method: method.to_owned(), status: status.as_u16() });
        }
        let scopes = headers.get("x-oauth-scopes").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = self.decode::<T>(method, &body)?;
        Ok(Reply { body, scopes })
    }

    async fn attempt_file(&self, method: &str, url: &Url) -> Result<Bytes> {
        let (status, headers, body) = self.send(method, url, MAX_FILE_BODY).await?;
        if status != StatusCode::OK {
            return Err(IngestError::Http { method: method.to_owned(), status: status.as_u16() });
        }
        let json = headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/json"));
        if json || !body.starts_with(&[0x1f, 0x8b]) {
            // Errors come as a JSON envelope; a body that is neither is a damaged answer.
            self.decode::<serde_json::Value>(method, &body)?;
            return Err(IngestError::Decode {
                method: method.to_owned(),
                detail: "expected a gzip file, got a JSON answer without an error".into(),
                retriable: false,
            });
        }
        // Reading the whole stream once is the only way to know it is complete; a cut transfer
        // is then retried like any other. It costs CPU, not memory, so it runs on the blocking
        // pool, never on an async worker, and stops at the caps: a gzip bomb or a line without
        // end is refused here, before any reader buffers it.
        let file = body.clone();
        let checked = tokio::task::spawn_blocking(move || check_gzip(&file, MAX_FILE_INFLATED, MAX_FILE_LINE))
            .await
            .map_err(|e| IngestError::Setup(format!("checking the file of {method}: {e}")))?;
        checked.map_err(|(detail, retriable)| IngestError::Decode {
            method: method.to_owned(),
            detail: format!("{detail} ({} bytes compressed)", body.len()),
            retriable,
        })?;
        Ok(body)
    }

    /// One SCIM / Audit Logs round trip, classified by HTTP status and error body.
    async fn attempt_rest<T: DeserializeOwned>(&self, label: &str, url: &Url) -> Result<T> {
        let (status, _headers, body) = self.send(label, url, MAX_JSON_BODY).await?;
        if status == StatusCode::OK {
            return serde_json::from_slice(&body).map_err(|e| {
                let retriable =
                    matches!(e.classify(), serde_json::error::Category::Syntax | serde_json::error::Category::Eof);
                IngestError::Decode { method: label.to_owned(), detail: format!("unexpected answer: {e}"), retriable }
            });
        }
        let err = RestError::parse(&body);
        let method = label.to_owned();
        let code = err.code.clone().unwrap_or_else(|| format!("http_{}", status.as_u16()));
        Err(match status.as_u16() {
            401 => IngestError::Auth { method, code, token_source: self.token_source.clone() },
            403 => match code.as_str() {
                "missing_scope" => IngestError::MissingScope { method, needed: err.needed, provided: err.provided },
                "feature_not_enabled"
                | "feature_not_available"
                | "paid_only"
                | "plan_upgrade_required"
                | "invalid_workspace"
                | "team_not_authorized" => IngestError::PlanUnavailable { method, code },
                _ => IngestError::NotPermitted { method, code, status: 403 },
            },
            s if s >= 500 || s == 408 => IngestError::Http { method, status: s },
            s if err.code.is_some() => IngestError::RestApi { method, code, status: s },
            s => IngestError::Http { method, status: s },
        })
    }

    fn decode<T: DeserializeOwned>(&self, method: &str, body: &[u8]) -> Result<T> {
        let envelope: Envelope = serde_json::from_slice(body).map_err(|e| IngestError::Decode {
            method: method.to_owned(),
            // A body that is not a Slack envelope at all is a damaged transfer or a proxy's
            // error page; another attempt may well get the real answer.
            detail: format!("not a Slack JSON answer ({e}; {} bytes)", body.len()),
            retriable: true,
        })?;
        let mut warnings: Vec<String> = envelope.warning.into_iter().collect();
        if let Some(more) = envelope.response_metadata.and_then(|m| m.warnings) {
            warnings.extend(more);
        }
        for warning in warnings {
            if EXPECTED_WARNINGS.contains(&warning.as_str()) {
                tracing::trace!(method, warning, "expected Slack warning");
                continue;
            }
            let known = self.lock_stats().get(method).is_some_and(|s| s.warnings.contains(&warning));
            if !known {
                self.record_warning(method, format!("Slack warning on {method}: {warning}"));
            }
        }
        if !envelope.ok {
            let code = envelope.error.unwrap_or_else(|| "unknown_error".to_owned());
            let err =
                IngestError::from_slack_code(method, &code, envelope.needed, envelope.provided, &self.token_source);
            if matches!(err, IngestError::RateLimited { .. }) {
                self.update(method, |s| s.rate_limited += 1);
            }
            return Err(err);
        }
        serde_json::from_slice(body).map_err(|e| {
            let retriable =
                matches!(e.classify(), serde_json::error::Category::Syntax | serde_json::error::Category::Eof);
            IngestError::Decode { method: method.to_owned(), detail: format!("unexpected shape: {e}"), retriable }
        })
    }
}

/// The error bodies of SCIM v1 (`Errors.description`), SCIM v2 (`detail`) and the Audit Logs
/// API (`error`, `needed`, `provided`), read leniently: any of them may be missing.
#[derive(Debug, Default)]
struct RestError {
    code: Option<String>,
    needed: Option<String>,
    provided: Option<String>,
}

impl RestError {
    fn parse(body: &[u8]) -> RestError {
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else { return RestError::default() };
        let text = |p: &str| v.pointer(p).and_then(|x| x.as_str()).filter(|s| !s.is_empty()).map(str::to_owned);
        RestError {
            code: text("/error").or_else(|| text("/detail")).or_else(|| text("/Errors/description")),
            needed: text("/needed"),
            provided: text("/provided"),
        }
    }
}

/// Inflates `gzip` without keeping what it inflates to, checking that the stream is complete,
/// inflates to at most `max_inflated` bytes and has no line longer than `max_line`. The error
/// says what is wrong and whether downloading again may help (a cut transfer may; a bomb not).
pub(crate) fn check_gzip(gzip: &[u8], max_inflated: u64, max_line: usize) -> std::result::Result<(), (String, bool)> {
    let mut decoder = flate2::read::GzDecoder::new(gzip);
    let mut buf = vec![0u8; 64 * 1024];
    let (mut total, mut line) = (0u64, 0usize);
    loop {
        let n = match decoder.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err((format!("the gzip file is damaged or cut off ({e})"), true)),
        };
        total += n as u64;
        if total > max_inflated {
            return Err((
                format!("the gzip file inflates to more than {} MiB; refusing it", max_inflated >> 20),
                false,
            ));
        }
        // The first piece continues the current line; every later one starts a new line, so
        // the one before it is complete and checked.
        let mut pieces = buf[..n].split(|b| *b == b'\n');
        line = line.saturating_add(pieces.next().map_or(0, <[u8]>::len));
        for piece in pieces {
            if line > max_line {
                break;
            }
            line = piece.len();
        }
        if line > max_line {
            return Err((format!("the file has a line longer than {} KiB; refusing it", max_line >> 10), false));
        }
    }
}

fn push_warning(warnings: &mut Vec<String>, warning: String) {
    if warnings.len() < MAX_WARNINGS && !warnings.contains(&warning) {
        warnings.push(warning);
    }
}

/// `Retry-After` as delta-seconds or an HTTP date; `None` when absent or unreadable, so the
/// caller falls back to its backoff.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = value.parse::<f64>()
        && secs.is_finite()
        && secs >= 0.0
    {
        return Duration::try_from_secs_f64(secs).ok();
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let delta = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lastseen_config::{RateLimitConfig, RetryConfig, Source, TokenSource};

    const TOKEN: &str = "xoxp-SENTINEL-0000-do-not-print";

    fn config(api_url: &str) -> SlackConfig {
        SlackConfig {
            api_url: Url::parse(api_url).unwrap(),
            token: TokenSource::Env("SLACK_TOKEN".into()),
            sources: vec![Source::Users],
            auto_sources: false,
            gov: false,
            scim_url: None,
            audit_url: None,
            allow_custom_hosts: false,
            users_page_size: 200,
            access_logs_page_size: 1000,
            access_logs_overlap: Duration::from_secs(86_400),
            request_timeout: Duration::from_secs(5),
            concurrency: 4,
            run_deadline: Duration::from_secs(600),
            retry: RetryConfig {
                max_attempts: 3,
                initial_backoff: Duration::from_millis(1),
                max_backoff: Duration::from_millis(5),
                min_retry_after: Duration::from_millis(1),
                max_retry_after: Duration::from_secs(2),
                rate_limit_budget: Duration::from_secs(60),
            },
            rate_limits: RateLimitConfig { enabled: false, per_minute: [1, 20, 50, 100] },
        }
    }

    fn client() -> SlackClient {
        SlackClient::new(&config("http://127.0.0.1:9/api"), SecretString::from(TOKEN)).unwrap()
    }

    #[test]
    fn debug_never_shows_the_token() {
        let c = client();
        let debug = format!("{c:?}");
        assert!(!debug.contains("SENTINEL"), "{debug}");
        assert!(debug.contains("[redacted]") && debug.contains("env SLACK_TOKEN"), "{debug}");
        assert!(c.authorization.is_sensitive());
    }

    #[test]
    fn method_urls_are_confined_to_the_api_base() {
        let c = client();
        let url = c.method_url("users.list", &[("limit", "5".into()), ("cursor", "a b=&".into())]).unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:9/api/users.list?limit=5&cursor=a+b%3D%26");
        for bad in ["", "//evil.example/x", "../admin", "https://evil.example", ".hidden", "a/b"] {
            assert!(c.method_url(bad, &[]).is_err(), "{bad}");
        }
        let err = c.method_url("users.list", &[("token", TOKEN.into())]).unwrap_err();
        assert!(!err.to_string().contains("SENTINEL"));
    }

    #[test]
    fn bad_token_characters_are_reported_without_the_token() {
        let err = SlackClient::new(&config("http://127.0.0.1:9/api"), SecretString::from("xoxp-SENTINEL\nsecond-line"))
            .unwrap_err();
        let msg = format!("{err} {err:?}");
        assert!(!msg.contains("SENTINEL") && msg.contains("env SLACK_TOKEN"), "{msg}");
    }

    #[test]
    fn decode_classifies_envelopes() {
        #[derive(Debug, Deserialize)]
        struct Members {
            members: Vec<serde_json::Value>,
        }
        let c = client();
        let ok: Members = c.decode("users.list", br#"{"ok":true,"members":[]}"#).unwrap();
        assert!(ok.members.is_empty());
        let err = c
            .decode::<Members>(
                "team.accessLogs",
                br#"{"ok":false,"error":"missing_scope","needed":"admin","provided":"users:read"}"#,
            )
            .unwrap_err();
        assert!(matches!(err, IngestError::MissingScope { .. }), "{err}");
        let err = c.decode::<Members>("users.list", br#"{"ok":true,"memb"#).unwrap_err();
        assert!(err.is_retriable(), "{err}");
        let err = c.decode::<Members>("users.list", b"<html>502</html>").unwrap_err();
        assert!(err.is_retriable(), "{err}");
        let err = c.decode::<Members>("users.list", br#"{"ok":true,"members":"nope"}"#).unwrap_err();
        assert!(!err.is_retriable(), "{err}");
        let err = c.decode::<Members>("users.list", br#"{"ok":false,"error":"ratelimited"}"#).unwrap_err();
        assert!(err.is_retriable());
        assert_eq!(c.stats("users.list").rate_limited, 1);
    }

    #[test]
    fn slack_warnings_are_recorded_once() {
        let c = client();
        let body = br#"{"ok":true,"members":[],"warning":"superfluous_charset","response_metadata":{"warnings":["superfluous_charset"]}}"#;
        for _ in 0..3 {
            let _: serde_json::Value = c.decode("users.list", body).unwrap();
        }
        let report = c.report(&["users.list"]);
        assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
        assert!(report.warnings[0].contains("superfluous_charset"));
    }

    #[test]
    fn retry_after_forms() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(RETRY_AFTER, HeaderValue::from_static("1.5"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(1500)));
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
        h.insert(RETRY_AFTER, HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"));
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
    }
}
