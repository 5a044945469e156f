//! `SlackClient`: Slack's side of talking to Slack, on the generic [`HttpClient`]: the Web API
//! envelope (`ok`, `error`, `warning`, `response_metadata.warnings`), `auth.test`, the error
//! bodies of the REST APIs (SCIM, Audit Logs), the member-analytics file (gzip, checked off the
//! async threads), Slack's method tiers for the rate budgets, and [`SlackRules`]: how Slack says
//! "wait" (`Retry-After`) and what its error statuses mean.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use lastseen_config::{RateLimitConfig, SlackConfig};
use lastseen_lake::SourceReport;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use secrecy::SecretString;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use url::Url;

use crate::error::{IngestError, Result};
use crate::http::rate::{PacePerMinute, RateBudget};
use crate::http::retry::RetryPolicy;
use crate::http::{
    ApiRules, Credential, HttpClient, HttpSettings, MAX_JSON_BODY, MethodStats, check_gzip, decode_json,
};

/// The largest file read (`admin.analytics.getFile`, gzip). A day of member analytics is about
/// 100 bytes compressed per member, so 1 GiB is some ten million members.
pub const MAX_FILE_BODY: usize = 1 << 30;
/// The most a file may inflate to: a gzip bomb stops here instead of running for minutes.
pub const MAX_FILE_INFLATED: u64 = 16 << 30;
/// The longest line a (NDJSON) file may hold; a member-analytics row is under 1 KiB. Checked
/// while validating, so the readers after it never buffer an unbounded line.
pub const MAX_FILE_LINE: usize = 1 << 20;

/// Slack warnings that follow from a deliberate choice here and would only add noise to every
/// run manifest: classic `team.accessLogs` paging is what the collector uses on purpose.
const EXPECTED_WARNINGS: &[&str] = &["use_cursor_pagination_instead"];

/// Slack's rate-limit tier (1..=4) for `method`. "Special" methods are mapped to the tier
/// closest to their documented behaviour; unknown methods get Tier 2, the most common tier for
/// the read methods a collector uses, so a new method is paced conservatively.
pub fn tier_for(method: &str) -> u8 {
    match method {
        // auth.test is "special" in Slack's docs and generous in practice.
        "auth.test" | "users.info" | "admin.users.list" => 4,
        // The Audit Logs API is Tier 3; SCIM's org-wide read limits (300 to 1000 a minute) are
        // well above Tier 3, which keeps lastseen a modest share of them.
        "team.info" | "admin.teams.list" | "audit.logs" | "scim.Users" | "scim.Groups" => 3,
        "users.list"
        | "team.accessLogs"
        | "team.billableInfo"
        | "usergroups.list"
        | "usergroups.users.list"
        | "admin.users.session.list"
        | "admin.analytics.getFile" => 2,
        _ => 2,
    }
}

/// `[slack.rate_limits]` as the generic budget's pace: calls per minute of the method's tier,
/// or none when pacing is disabled.
pub fn slack_pace(cfg: &RateLimitConfig) -> PacePerMinute {
    let per_minute = cfg.enabled.then_some(cfg.per_minute);
    Arc::new(move |method: &str| per_minute.map(|p| p[usize::from(tier_for(method).clamp(1, 4)) - 1]))
}

/// How Slack's answers read to the generic layer: a 429's `Retry-After` (seconds or an HTTP
/// date), and the error statuses of its REST APIs (SCIM, Audit Logs) with their error bodies.
/// Web API errors come as `ok:false` on HTTP 200 and are decoded by [`SlackClient`] itself.
#[derive(Debug, Default)]
pub struct SlackRules;

impl ApiRules for SlackRules {
    fn wait_hint(&self, headers: &HeaderMap) -> Option<Duration> {
        crate::http::retry_after(headers)
    }

    fn classify(&self, label: &str, status: StatusCode, body: &[u8], token_source: &str) -> IngestError {
        let err = RestError::parse(body);
        let method = label.to_owned();
        let code = err.code.clone().unwrap_or_else(|| format!("http_{}", status.as_u16()));
        match status.as_u16() {
            401 => IngestError::Auth { method, code, token_source: token_source.to_owned() },
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
        }
    }
}

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

/// A Slack Web API client.
///
/// Cheap to share behind an `Arc`; every collector of a run should use the same client so the
/// rate budgets and counters are shared.
pub struct SlackClient {
    http: HttpClient,
    api_url: Url,
}

impl fmt::Debug for SlackClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackClient").field("api_url", &self.api_url.as_str()).field("http", &self.http).finish()
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
    /// Builds a client for `cfg.api_url` with `token` (sent only as `Authorization: Bearer …`,
    /// see [`HttpClient::new`]).
    pub fn new(cfg: &SlackConfig, token: SecretString) -> Result<SlackClient> {
        let settings = HttpSettings {
            app: "Slack",
            deadline_key: "slack.run_deadline",
            request_timeout: cfg.request_timeout,
            concurrency: cfg.concurrency,
            run_deadline: cfg.run_deadline,
            policy: RetryPolicy::from(&cfg.retry),
            budget: RateBudget::new(slack_pace(&cfg.rate_limits)),
        };
        let credential = Credential { scheme: "Bearer", secret: token, source: cfg.token.describe() };
        let http = HttpClient::new(settings, credential, Arc::new(SlackRules))?;
        tracing::info!(
            hosts = cfg.token_hosts().join(", "),
            custom_hosts_allowed = cfg.allow_custom_hosts,
            "the Slack token is sent only to these hosts"
        );
        let mut api_url = cfg.api_url.clone();
        if !api_url.path().ends_with('/') {
            let path = format!("{}/", api_url.path());
            api_url.set_path(&path);
        }
        Ok(SlackClient { http, api_url })
    }

    /// The generic layer under this client (counters, budgets, retry loop).
    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// The Web API base URL (ends with `/`).
    pub fn api_url(&self) -> &Url {
        &self.api_url
    }

    pub fn retry_policy(&self) -> &RetryPolicy {
        self.http.retry_policy()
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
        self.http.stats(method)
    }

    /// The counters of `methods`, summed into the run manifest's per-source shape.
    pub fn report(&self, methods: &[&str]) -> SourceReport {
        self.http.report(methods)
    }

    /// Collectors report what they consumed and emitted, so `report` has pages and rows too.
    pub(crate) fn record_page(&self, method: &str, rows: usize) {
        self.http.record_page(method, rows);
    }

    /// Records a warning a collector (not Slack) raised about `method`.
    pub(crate) fn record_warning(&self, method: &str, warning: String) {
        self.http.record_warning(method, warning);
    }

    fn method_url(&self, method: &str, params: &[(&str, String)]) -> Result<Url> {
        // A Web API method is a plain dotted name; anything else is refused before joining.
        let valid = !method.is_empty()
            && !method.starts_with('.')
            && method.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_');
        if !valid {
            return Err(IngestError::Setup(format!("`{method}` is not a Slack method name")));
        }
        self.http.join(&self.api_url, method, params)
    }

    async fn call_with_reply<T: DeserializeOwned>(
        &self,
        method: &str,
        team: Option<&str>,
        params: &[(&str, String)],
    ) -> Result<Reply<T>> {
        let url = self.method_url(method, params)?;
        self.http.retrying(method, team, || self.attempt::<T>(method, &url)).await
    }

    /// GET a REST endpoint outside the Web API (SCIM, Audit Logs) at `url` and decode a 200
    /// answer into `T`. `label` names it in counters, buckets and errors (`scim.Users`).
    /// These APIs report failures with HTTP statuses and their own error bodies.
    pub async fn get_rest<T: DeserializeOwned>(&self, label: &str, team: Option<&str>, url: &Url) -> Result<T> {
        self.http.get_json(label, team, url).await
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
        let answer = self.http.send_once(label, method, url, body).await?;
        let retry_after = self.http.rules().wait_hint(&answer.headers);
        let json = serde_json::from_slice(&answer.body).unwrap_or(serde_json::Value::Null);
        let code = RestError::parse(&answer.body).code;
        Ok(RestAnswer { status: answer.status.as_u16(), retry_after, body: json, code })
    }

    /// Calls a Web API method that answers with a file (`admin.analytics.getFile`): the bytes
    /// of a successful answer, checked to be a complete gzip stream when they are one (so a cut
    /// transfer is retried), or the classified `ok:false` error.
    pub async fn get_file(&self, method: &str, team: Option<&str>, params: &[(&str, String)]) -> Result<Bytes> {
        let url = self.method_url(method, params)?;
        self.http.retrying(method, team, || self.attempt_file(method, &url)).await
    }

    /// One Web API round trip, classified.
    async fn attempt<T: DeserializeOwned>(&self, method: &str, url: &Url) -> Result<Reply<T>> {
        let crate::http::Answer { status, headers, body } =
            self.http.send(method, reqwest::Method::GET, url, None, MAX_JSON_BODY).await?;
        if status != StatusCode::OK {
            return Err(IngestError::Http { method: method.to_owned(), status: status.as_u16() });
        }
        let scopes = headers.get("x-oauth-scopes").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = self.decode::<T>(method, &body)?;
        Ok(Reply { body, scopes })
    }

    async fn attempt_file(&self, method: &str, url: &Url) -> Result<Bytes> {
        let crate::http::Answer { status, headers, body } =
            self.http.send(method, reqwest::Method::GET, url, None, MAX_FILE_BODY).await?;
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
            self.http.record_warning(method, format!("Slack warning on {method}: {warning}"));
        }
        if !envelope.ok {
            let code = envelope.error.unwrap_or_else(|| "unknown_error".to_owned());
            let err = IngestError::from_slack_code(
                method,
                &code,
                envelope.needed,
                envelope.provided,
                self.http.token_source(),
            );
            if matches!(err, IngestError::RateLimited { .. }) {
                self.http.count_rate_limited(method);
            }
            return Err(err);
        }
        decode_json(method, body, "unexpected shape")
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
        assert!(c.http.authorization_is_sensitive());
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
    fn tiers() {
        assert_eq!(tier_for("users.list"), 2);
        assert_eq!(tier_for("team.accessLogs"), 2);
        assert_eq!(tier_for("team.info"), 3);
        assert_eq!(tier_for("users.info"), 4);
        assert_eq!(tier_for("auth.test"), 4);
        assert_eq!(tier_for("something.new"), 2);
    }
}
