//! `HttpClient`: the app-agnostic half of talking to a SaaS API. It owns the HTTP client, the
//! credential (only ever in a sensitive `Authorization` header), URL safety (https or loopback,
//! no redirects, labels that cannot escape the base URL), the retry loop with its policy, the
//! rate budgets and their pauses, the cap on requests in flight, body caps, the run deadline and
//! the per-label counters that feed the run manifest.
//!
//! What differs per app comes in through [`ApiRules`]: how a rate-limit answer says how long to
//! wait (Slack: `Retry-After`; Okta: `X-Rate-Limit-Reset`, epoch seconds) and what an error
//! answer means (and so whether it is retriable). Decoding success bodies (Slack's `ok`
//! envelope, say) is the app's own, on top of [`HttpClient::send`] and [`HttpClient::retrying`].
//!
//! ```text
//! app client (slack::api::SlackClient) ──▶ HttpClient::retrying(label, bucket, || attempt)
//!                                              └─▶ budget ─▶ deadline ─▶ send (in-flight cap, body cap, 429)
//! HttpClient::report(&[label]) ──▶ lastseen_lake::SourceReport for the run manifest
//! ```

pub mod rate;
pub mod retry;

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use lastseen_lake::SourceReport;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{StatusCode, redirect};
use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use tokio::sync::Semaphore;
use url::Url;

use crate::error::{IngestError, Result};
use rate::RateBudget;
use retry::RetryPolicy;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest JSON answer read. The biggest real pages (1,000 Slack users with full profiles,
/// 1,000 SCIM resources, 9,999 audit entries) are a few MiB; a server sending more is broken
/// or hostile, and reading on would only exhaust memory.
pub const MAX_JSON_BODY: usize = 64 << 20;

/// Warnings kept per label; servers repeat the same few on every page.
const MAX_WARNINGS: usize = 20;

/// What an app's API says in its answers that the generic layer must read. Implemented once
/// per app (Slack: [`crate::slack::api::SlackRules`]).
pub trait ApiRules: Send + Sync + 'static {
    /// How long a rate-limit answer asks the caller to wait, from its headers; `None` when it
    /// does not say (the backoff decides). Slack sends `Retry-After` ([`retry_after`]); Okta
    /// sends `X-Rate-Limit-Reset` as epoch seconds ([`reset_at_epoch`]).
    fn wait_hint(&self, headers: &HeaderMap) -> Option<Duration>;

    /// Whether an answer is a rate-limit answer. HTTP 429 for every API known so far.
    fn is_rate_limited(&self, status: StatusCode, _headers: &HeaderMap) -> bool {
        status == StatusCode::TOO_MANY_REQUESTS
    }

    /// The error an answer with a status other than 2xx (and not a rate limit) means, from its
    /// status and body. Whether it is retried follows from the variant
    /// ([`IngestError::is_retriable`]). The default knows only statuses.
    fn classify(&self, label: &str, status: StatusCode, _body: &[u8], _token_source: &str) -> IngestError {
        IngestError::Http { method: label.to_owned(), status: status.as_u16() }
    }
}

/// Everything the generic layer needs from an app's configuration.
pub struct HttpSettings {
    /// The app, for log lines ("Slack").
    pub app: &'static str,
    /// The config key of the run deadline, for the error that names it (`slack.run_deadline`).
    pub deadline_key: &'static str,
    pub request_timeout: Duration,
    /// Requests in flight at once (at least 1).
    pub concurrency: usize,
    /// How long all calls of one client may take.
    pub run_deadline: Duration,
    pub policy: RetryPolicy,
    pub budget: RateBudget,
}

/// The credential, as `Authorization: <scheme> <secret>` (Slack `Bearer`, Okta `SSWS` or
/// `Bearer`), and where it came from for error messages.
pub struct Credential {
    pub scheme: &'static str,
    pub secret: SecretString,
    /// Where the secret came from (`env SLACK_TOKEN`, a file path): the only thing errors say
    /// about it.
    pub source: String,
}

/// Counters for one label (a Slack method, `scim.Users`) over the client's lifetime.
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
    /// Rate-limit answers (HTTP 429, or an app's own, such as Slack's `ok:false` `ratelimited`).
    pub rate_limited: u64,
    /// Time spent waiting for the client-side budget or for a rate-limit answer's wait.
    pub rate_wait: Duration,
    /// Distinct warnings the server attached to answers, or a collector raised.
    pub warnings: Vec<String>,
}

/// One answer read in full: status, headers and body.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// The generic API client of one app. Cheap to share behind an `Arc`; every source of a run
/// should use the same one so budgets and counters are shared.
pub struct HttpClient {
    http: reqwest::Client,
    /// Replaced only by [`HttpClient::set_credential`] (an OAuth access token refreshed).
    authorization: std::sync::RwLock<HeaderValue>,
    token_source: String,
    app: &'static str,
    deadline_key: &'static str,
    policy: RetryPolicy,
    /// When the client was built (the run started) and how long its calls may take in all.
    started: Instant,
    run_deadline: Duration,
    budget: RateBudget,
    in_flight: Semaphore,
    rules: Arc<dyn ApiRules>,
    stats: Mutex<BTreeMap<String, MethodStats>>,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("app", &self.app)
            .field("token", &"[redacted]")
            .field("token_source", &self.token_source)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    /// Builds a client. The secret goes into a header value marked sensitive (hyper and reqwest
    /// then keep it out of their own debug output) and nowhere else; the `<scheme> …` text it is
    /// built from is wiped when dropped. (The `HeaderValue` itself keeps its bytes in a `Bytes`
    /// that cannot be zeroized: the HTTP stack allows no better.)
    pub fn new(settings: HttpSettings, credential: Credential, rules: Arc<dyn ApiRules>) -> Result<HttpClient> {
        let authorization = authorization_value(&credential)?;
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(settings.request_timeout)
            // A redirect could carry the Authorization header to a host nobody allow-listed.
            .redirect(redirect::Policy::none())
            .user_agent(concat!("lastseen/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| IngestError::Setup(format!("building the HTTP client: {e}")))?;
        Ok(HttpClient {
            http,
            authorization: std::sync::RwLock::new(authorization),
            token_source: credential.source,
            app: settings.app,
            deadline_key: settings.deadline_key,
            policy: settings.policy,
            started: Instant::now(),
            run_deadline: settings.run_deadline,
            budget: settings.budget,
            in_flight: Semaphore::new(settings.concurrency.max(1)),
            rules,
            stats: Mutex::new(BTreeMap::new()),
        })
    }

    /// Replaces the credential for the requests that follow (an OAuth access token renewed
    /// before it expires); counters, budgets and the deadline carry on.
    pub fn set_credential(&self, credential: Credential) -> Result<()> {
        let value = authorization_value(&credential)?;
        *self.authorization.write().unwrap_or_else(PoisonError::into_inner) = value;
        Ok(())
    }

    fn current_authorization(&self) -> HeaderValue {
        self.authorization.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Where the credential came from (`env SLACK_TOKEN`), for error messages.
    pub fn token_source(&self) -> &str {
        &self.token_source
    }

    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.policy
    }

    pub fn rules(&self) -> &dyn ApiRules {
        self.rules.as_ref()
    }

    #[cfg(test)]
    pub(crate) fn authorization_is_sensitive(&self) -> bool {
        self.authorization.read().unwrap_or_else(PoisonError::into_inner).is_sensitive()
    }

    /// Counters of one label.
    pub fn stats(&self, label: &str) -> MethodStats {
        self.lock_stats().get(label).cloned().unwrap_or_default()
    }

    /// The counters of `labels`, summed into the run manifest's per-source shape. `error` is
    /// left for the orchestrator, which knows how the source ended.
    pub fn report(&self, labels: &[&str]) -> SourceReport {
        let stats = self.lock_stats();
        let mut report = SourceReport::default();
        let mut wait = Duration::ZERO;
        for s in labels.iter().filter_map(|m| stats.get(*m)) {
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
    pub fn record_page(&self, label: &str, rows: usize) {
        self.update(label, |s| {
            s.pages += 1;
            s.rows += rows as u64;
        });
    }

    /// Records a warning about `label` (from the server or a collector), logged once.
    pub fn record_warning(&self, label: &str, warning: String) {
        if self.has_warning(label, &warning) {
            return;
        }
        tracing::warn!(method = label, "{warning}");
        self.update(label, |s| push_warning(&mut s.warnings, warning));
    }

    fn has_warning(&self, label: &str, warning: &str) -> bool {
        self.lock_stats().get(label).is_some_and(|s| s.warnings.iter().any(|w| w == warning))
    }

    /// Counts a rate-limit answer the app recognised in a body (Slack's `ok:false`
    /// `ratelimited` on HTTP 200).
    pub fn count_rate_limited(&self, label: &str) {
        self.update(label, |s| s.rate_limited += 1);
    }

    fn lock_stats(&self) -> MutexGuard<'_, BTreeMap<String, MethodStats>> {
        self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn update(&self, label: &str, f: impl FnOnce(&mut MethodStats)) {
        let mut stats = self.lock_stats();
        match stats.get_mut(label) {
            Some(s) => f(s),
            None => f(stats.entry(label.to_owned()).or_default()),
        }
    }

    /// `base` joined with `path` (a method name such as `users.list`, or `api/v1/users`) and
    /// `params`. Only plain names are joined: anything else could make `join` point elsewhere
    /// ("//host", "../") and the token would follow. A `token` parameter is refused: the
    /// credential goes only in the header.
    pub fn join(&self, base: &Url, path: &str, params: &[(&str, String)]) -> Result<Url> {
        let valid = !path.is_empty()
            && !path.starts_with('.')
            && !path.starts_with('/')
            && !path.split('/').any(|seg| seg.is_empty() || seg.starts_with('.'))
            && path.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/'));
        if !valid {
            return Err(IngestError::Setup(format!("`{path}` is not a {} method name", self.app)));
        }
        let mut url = base.join(path).map_err(|e| IngestError::Setup(format!("building the URL of {path}: {e}")))?;
        if !params.is_empty() {
            let mut query = url.query_pairs_mut();
            for (key, value) in params {
                if key.eq_ignore_ascii_case("token") {
                    return Err(IngestError::Setup(format!(
                        "{path}: the token must not be passed as a query parameter"
                    )));
                }
                query.append_pair(key, value);
            }
        }
        Ok(url)
    }

    /// The token goes only to https, or plain http on loopback (the simulator, tests).
    pub fn check_url(&self, label: &str, url: &Url) -> Result<()> {
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

    /// GET `url` and decode a 2xx JSON answer into `T`, with retries; other answers are
    /// classified by the app's [`ApiRules::classify`]. `label` names the call in counters,
    /// buckets and errors; `bucket` selects the rate bucket within the label (Slack: the
    /// workspace).
    pub async fn get_json<T: DeserializeOwned>(&self, label: &str, bucket: Option<&str>, url: &Url) -> Result<T> {
        self.check_url(label, url)?;
        self.retrying(label, bucket, || async {
            let answer = self.send(label, reqwest::Method::GET, url, None, MAX_JSON_BODY).await?;
            if !answer.status.is_success() {
                return Err(self.rules.classify(label, answer.status, &answer.body, &self.token_source));
            }
            decode_json(label, &answer.body, "unexpected answer")
        })
        .await
    }

    /// One logical request: waits for the (label, bucket) budget, then attempts it with retries
    /// per the policy. Failures other than rate limits use up `max_attempts`; a rate-limit
    /// answer pauses the bucket for its wait hint and is bounded by `rate_limit_budget` of
    /// elapsed time instead, so another app hammering the same API slows the run down without
    /// failing it. Nothing starts after the run deadline.
    pub async fn retrying<T, F, Fut>(&self, label: &str, bucket: Option<&str>, attempt_once: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let started = Instant::now();
        let mut backoff = self.policy.backoff();
        let mut rate_backoff = self.policy.rate_limit_backoff();
        let mut attempts = 0u32;
        loop {
            let waited = self.budget.acquire(label, bucket).await;
            if !waited.is_zero() {
                self.update(label, |s| s.rate_wait += waited);
            }
            self.check_deadline(label, Duration::ZERO)?;
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
                return Err(IngestError::RetriesExhausted { method: label.to_owned(), attempts, last: Box::new(err) });
            };
            self.check_deadline(label, wait)?;
            self.on_retry(label, bucket, &err, wait);
            tokio::time::sleep(wait).await;
        }
    }

    /// `Deadline` when the run deadline has passed, or would pass during `ahead`.
    pub fn check_deadline(&self, label: &str, ahead: Duration) -> Result<()> {
        if self.started.elapsed().saturating_add(ahead) > self.run_deadline {
            return Err(IngestError::Deadline {
                method: label.to_owned(),
                key: self.deadline_key,
                deadline: self.run_deadline,
            });
        }
        Ok(())
    }

    fn on_retry(&self, label: &str, bucket: Option<&str>, err: &IngestError, wait: Duration) {
        let rate_limited = matches!(err, IngestError::RateLimited { .. });
        if rate_limited {
            self.budget.pause(label, bucket, wait);
        }
        self.update(label, |s| {
            s.retries += 1;
            if rate_limited {
                s.rate_wait += wait;
            }
        });
        tracing::warn!(
            app = self.app,
            method = label,
            team = bucket.unwrap_or_default(),
            wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
            "retrying {} call: {err}",
            self.app
        );
    }

    /// Sends one request (an optional JSON body) and reads the body, up to `cap` bytes; a
    /// rate-limit answer becomes `RateLimited` with the app's wait hint, whatever the API.
    /// Other statuses are returned for the caller to classify. No retry here.
    pub async fn send(
        &self,
        label: &str,
        method: reqwest::Method,
        url: &Url,
        json: Option<&serde_json::Value>,
        cap: usize,
    ) -> Result<Answer> {
        // The semaphore is never closed, so acquiring cannot fail; without a permit the
        // request would still be correct, just less bounded.
        let _permit = self.in_flight.acquire().await.ok();
        let response = self.request(label, method, url, json).await?;
        let status = response.status();
        if self.rules.is_rate_limited(status, response.headers()) {
            self.update(label, |s| s.rate_limited += 1);
            return Err(IngestError::RateLimited {
                method: label.to_owned(),
                retry_after: self.rules.wait_hint(response.headers()),
            });
        }
        let headers = response.headers().clone();
        let too_large = || IngestError::Decode {
            method: label.to_owned(),
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
        while let Some(chunk) = response.chunk().await.map_err(|e| IngestError::transport(label, &e, true))? {
            if body.len().saturating_add(chunk.len()) > cap {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer { status, headers, body: body.freeze() })
    }

    /// Count, log and send one request with the token and an optional JSON body; the caller
    /// holds the in-flight permit and reads the answer.
    async fn request(
        &self,
        label: &str,
        method: reqwest::Method,
        url: &Url,
        json: Option<&serde_json::Value>,
    ) -> Result<reqwest::Response> {
        self.update(label, |s| s.calls += 1);
        tracing::debug!(method = label, http = %method, url = url.as_str(), "calling {}", self.app);
        let mut request = self.http.request(method, url.clone()).header(AUTHORIZATION, self.current_authorization());
        if let Some(body) = json {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(serde_json::to_vec(body).unwrap_or_default());
        }
        request.send().await.map_err(|e| IngestError::transport(label, &e, false))
    }

    /// One request that is never retried and whose rate-limit answer is returned, not raised:
    /// for writes, whose caller decides (a write must not be repeated blindly). The URL must
    /// pass [`HttpClient::check_url`]; the deadline still holds.
    pub async fn send_once(
        &self,
        label: &str,
        method: reqwest::Method,
        url: &Url,
        json: Option<&serde_json::Value>,
    ) -> Result<Answer> {
        self.check_url(label, url)?;
        self.check_deadline(label, Duration::ZERO)?;
        let _permit = self.in_flight.acquire().await.ok();
        let response = self.request(label, method, url, json).await?;
        let status = response.status();
        if self.rules.is_rate_limited(status, response.headers()) {
            self.update(label, |s| s.rate_limited += 1);
        }
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(|e| IngestError::transport(label, &e, true))?;
        if body.len() > MAX_JSON_BODY {
            return Err(IngestError::Decode {
                method: label.to_owned(),
                detail: "the answer is larger than any real answer".into(),
                retriable: false,
            });
        }
        Ok(Answer { status, headers, body })
    }
}

/// `<scheme> <secret>` as a header value marked sensitive; the text it is built from is wiped.
fn authorization_value(credential: &Credential) -> Result<HeaderValue> {
    let secret = credential.secret.expose_secret();
    let mut value = Zeroizing::new(Vec::with_capacity(credential.scheme.len() + 1 + secret.len()));
    value.extend_from_slice(credential.scheme.as_bytes());
    value.push(b' ');
    value.extend_from_slice(secret.as_bytes());
    // The error is mapped to one that names the token's source, never its value.
    let mut authorization = HeaderValue::from_bytes(&value).map_err(|_| {
        IngestError::Setup(format!(
            "the token from {} contains characters that cannot be sent in an HTTP header",
            credential.source
        ))
    })?;
    authorization.set_sensitive(true);
    Ok(authorization)
}

/// `body` as `T`. A syntax error or a cut-off body is retriable (a damaged transfer); valid
/// JSON of another shape is not (`what` says what was expected).
pub fn decode_json<T: DeserializeOwned>(label: &str, body: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(body).map_err(|e| {
        let retriable = matches!(e.classify(), serde_json::error::Category::Syntax | serde_json::error::Category::Eof);
        IngestError::Decode { method: label.to_owned(), detail: format!("{what}: {e}"), retriable }
    })
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

/// `Retry-After` (RFC 9110) as delta-seconds or an HTTP date; `None` when absent or
/// unreadable, so the caller falls back to its backoff.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
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

/// A header holding the epoch second a rate-limit window resets at (Okta's
/// `X-Rate-Limit-Reset`), as the wait from `now`; a time already past is no wait.
pub fn reset_at_epoch(headers: &HeaderMap, name: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let at: i64 = headers.get(name)?.to_str().ok()?.trim().parse().ok()?;
    let delta = chrono::DateTime::from_timestamp(at, 0)? - now;
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn reset_epoch_is_a_wait_from_now() {
        let now = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let mut h = HeaderMap::new();
        assert_eq!(reset_at_epoch(&h, "x-rate-limit-reset", now), None);
        h.insert("x-rate-limit-reset", HeaderValue::from_static("1700000042"));
        assert_eq!(reset_at_epoch(&h, "x-rate-limit-reset", now), Some(Duration::from_secs(42)));
        h.insert("x-rate-limit-reset", HeaderValue::from_static("1699999999"));
        assert_eq!(reset_at_epoch(&h, "x-rate-limit-reset", now), Some(Duration::ZERO));
        h.insert("x-rate-limit-reset", HeaderValue::from_static("soon"));
        assert_eq!(reset_at_epoch(&h, "x-rate-limit-reset", now), None);
    }
}
