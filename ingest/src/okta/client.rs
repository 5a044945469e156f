//! `OktaClient`: Okta's side of talking to Okta, on the generic [`HttpClient`]: the API token as
//! `Authorization: SSWS …` (or an OAuth access token as `Bearer …`, renewed before it expires,
//! see [`super::oauth`]), [`OktaRules`] (a 429 waits until `X-Rate-Limit-Reset`; the error
//! envelope `errorCode`/`errorSummary` classified as auth, capability, retriable or not), pacing
//! from `X-Rate-Limit-Remaining` before a bucket runs dry, and `Link: <…>; rel="next"` paging
//! that follows a link only on the org's own origin and the operation's own path.
//!
//! ```text
//! OktaClient::new(cfg, token) ──▶ page::<T>(label, url) ──▶ Page { items, next }
//!                                   └─▶ pace ─▶ HttpClient::retrying ─▶ send ─▶ classify / decode ─▶ Link
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::Utc;
use lastseen_config::OktaConfig;
use lastseen_lake::SourceReport;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use secrecy::SecretString;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use url::Url;

use super::oauth::{OAuthClient, TOKEN};
use crate::error::{IngestError, Result};
use crate::http::rate::RateBudget;
use crate::http::retry::RetryPolicy;
use crate::http::{ApiRules, Credential, HttpClient, HttpSettings, MAX_JSON_BODY, MethodStats, decode_json};

/// The counter label (and the name in errors) of `GET /api/v1/users`.
pub const USERS: &str = "Okta /api/v1/users";
/// The counter label (and the name in errors) of `GET /api/v1/logs`.
pub const LOGS: &str = "Okta /api/v1/logs";

/// Okta's rate-limit headers (developer.okta.com "Rate limits", "Check your rate limits with
/// Okta's rate limit headers"): the bucket's ceiling, the calls left in its window, and when
/// the window resets, in UTC epoch seconds.
const LIMIT: &str = "x-rate-limit-limit";
const REMAINING: &str = "x-rate-limit-remaining";
const RESET: &str = "x-rate-limit-reset";

/// Below this share of a bucket left, calls are spread over the rest of the window instead of
/// spending it at once and meeting a 429 (which other clients of the org would meet too).
const PACE_BELOW: f64 = 0.1;

/// Okta's error object (`Error` schema: `errorCode`, `errorSummary`, `errorId`, …).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    #[serde(default)]
    error_code: Option<String>,
    #[serde(default)]
    error_summary: Option<String>,
}

/// How Okta's answers read to the generic layer.
#[derive(Debug, Default)]
pub struct OktaRules;

impl ApiRules for OktaRules {
    /// "… rejected with an HTTP 429 Too Many Requests response until the quota resets": wait
    /// until `X-Rate-Limit-Reset`.
    fn wait_hint(&self, headers: &HeaderMap) -> Option<Duration> {
        crate::http::reset_at_epoch(headers, RESET, Utc::now())
    }

    fn classify(&self, label: &str, status: StatusCode, body: &[u8], token_source: &str) -> IngestError {
        let envelope: Envelope = serde_json::from_slice(body).unwrap_or_default();
        let method = label.to_owned();
        let code = envelope.error_code.clone().unwrap_or_else(|| format!("http_{}", status.as_u16()));
        let summary = envelope.error_summary.unwrap_or_default();
        match status.as_u16() {
            // E0000011 "Invalid token provided" (the spec's 401 example), E0000004, …
            401 => IngestError::Auth { method, code, token_source: token_source.to_owned() },
            // E0000006 "You do not have permission to perform the requested action": the
            // token's administrator (or, with OAuth, its scopes) cannot read this; a standing
            // condition of the source, not a failed run.
            403 => IngestError::Standing {
                method,
                code,
                meaning: format!(
                    "{summary}: the API token's administrator may not read this; give them a read-only \
                     administrator role (or the okta.users.read / okta.logs.read scopes)"
                ),
            },
            s if envelope.error_code.is_some() => {
                IngestError::ApiError { method, status: s, code, summary, retriable: s >= 500 || s == 408 }
            }
            s => IngestError::Http { method, status: s },
        }
    }
}

/// One page of a listing and the next page's URL, when Okta gave one that may be followed.
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<Url>,
}

/// An Okta Management API client. Share it behind an `Arc`: both collectors of a run use one,
/// so counters and pacing are shared.
pub struct OktaClient {
    http: HttpClient,
    org_url: Url,
    /// Per label: not before this instant (pacing from the last answer's headers).
    not_before: Mutex<HashMap<String, tokio::time::Instant>>,
    /// Per label: time spent pacing, added to the label's `rate_wait`.
    paced: Mutex<HashMap<String, Duration>>,
    /// With OAuth: the service app, and when the current access token expires.
    oauth: Option<(OAuthClient, tokio::sync::Mutex<Option<tokio::time::Instant>>)>,
    /// Access tokens fetched so far.
    token_fetches: AtomicU64,
}

impl fmt::Debug for OktaClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OktaClient").field("org_url", &self.org_url.as_str()).field("http", &self.http).finish()
    }
}

impl OktaClient {
    /// A client for `cfg.org_url` with the API `token` (sent only as `Authorization: SSWS …`,
    /// see [`HttpClient::new`]).
    pub fn new(cfg: &OktaConfig, token: SecretString) -> Result<OktaClient> {
        let credential = Credential { scheme: "SSWS", secret: token, source: cfg.credentials.describe() };
        OktaClient::build(cfg, credential, None)
    }

    /// A client authenticating as the service app `oauth`: an access token is fetched before
    /// the first call and renewed before it expires.
    pub fn with_oauth(cfg: &OktaConfig, oauth: OAuthClient) -> Result<OktaClient> {
        // Replaced by a real access token before any request is sent.
        let pending = Credential {
            scheme: "Bearer",
            secret: SecretString::from("pending".to_owned()),
            source: oauth.source.clone(),
        };
        OktaClient::build(cfg, pending, Some(oauth))
    }

    fn build(cfg: &OktaConfig, credential: Credential, oauth: Option<OAuthClient>) -> Result<OktaClient> {
        let settings = HttpSettings {
            app: "Okta",
            deadline_key: "okta.run_deadline",
            request_timeout: cfg.request_timeout,
            // Paging is sequential (each page's link names the next); two leave room for the
            // users and logs collectors at once, well under Okta's per-org concurrency limit.
            concurrency: 2,
            run_deadline: cfg.run_deadline,
            policy: RetryPolicy::from(&cfg.retry),
            // Okta tells its budgets in every answer; pacing follows those, not a fixed table.
            budget: RateBudget::unpaced(),
        };
        let http = HttpClient::new(settings, credential, Arc::new(OktaRules))?;
        tracing::info!(host = cfg.token_host(), "the Okta API token is sent only to this host");
        Ok(OktaClient {
            http,
            org_url: cfg.org_url.clone(),
            not_before: Mutex::new(HashMap::new()),
            paced: Mutex::new(HashMap::new()),
            oauth: oauth.map(|o| (o, tokio::sync::Mutex::new(None))),
            token_fetches: AtomicU64::new(0),
        })
    }

    /// Access tokens fetched so far (OAuth).
    pub fn token_fetches(&self) -> u64 {
        self.token_fetches.load(Ordering::Relaxed)
    }

    /// With OAuth, makes sure the access token outlives the next call: fetched when there is
    /// none, or when less than a quarter of its life (at most a minute) is left.
    async fn ensure_token(&self) -> Result<()> {
        let Some((oauth, expires)) = &self.oauth else { return Ok(()) };
        self.http.check_url(TOKEN, oauth.token_url())?;
        let mut expires = expires.lock().await;
        let now = tokio::time::Instant::now();
        if expires.is_some_and(|e| e > now) {
            return Ok(());
        }
        let (token, life) = oauth.fetch().await?;
        self.token_fetches.fetch_add(1, Ordering::Relaxed);
        self.http.set_credential(Credential { scheme: "Bearer", secret: token, source: oauth.source.clone() })?;
        let margin = (life / 4).min(Duration::from_secs(60));
        *expires = Some(now + life.saturating_sub(margin));
        Ok(())
    }

    pub fn org_url(&self) -> &Url {
        &self.org_url
    }

    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// The counters of one label, pacing included in `rate_wait`.
    pub fn stats(&self, label: &str) -> MethodStats {
        let mut s = self.http.stats(label);
        s.rate_wait += self.paced_for(label);
        s
    }

    /// The counters of `labels` for the run manifest, pacing included in `rate_wait_ms`.
    pub fn report(&self, labels: &[&str]) -> SourceReport {
        let mut report = self.http.report(labels);
        let paced: Duration = labels.iter().map(|l| self.paced_for(l)).sum();
        report.rate_wait_ms = report.rate_wait_ms.saturating_add(u64::try_from(paced.as_millis()).unwrap_or(u64::MAX));
        report
    }

    fn paced_for(&self, label: &str) -> Duration {
        self.paced.lock().unwrap_or_else(PoisonError::into_inner).get(label).copied().unwrap_or_default()
    }

    /// The first page's URL of an operation (`api/v1/users`) with its parameters.
    pub fn url(&self, path: &str, params: &[(&str, String)]) -> Result<Url> {
        self.http.join(&self.org_url, path, params)
    }

    /// GETs one page of a listing: a JSON array of `T`, and the `next` link when it is on the
    /// org's origin and the same operation's path (anything else is refused: the token would
    /// follow the link).
    pub async fn page<T: DeserializeOwned>(&self, label: &str, url: &Url) -> Result<Page<T>> {
        self.http.check_url(label, url)?;
        self.pace(label).await;
        // Decoding is part of the attempt: a body cut off in transfer is read again.
        let (headers, items) = self
            .http
            .retrying(label, None, || async {
                // Each attempt: a long wait for a rate limit may outlast the access token.
                self.ensure_token().await?;
                let answer = self.http.send(label, reqwest::Method::GET, url, None, MAX_JSON_BODY).await?;
                if !answer.status.is_success() {
                    return Err(self.http.rules().classify(
                        label,
                        answer.status,
                        &answer.body,
                        self.http.token_source(),
                    ));
                }
                let items: Vec<T> = decode_json(label, &answer.body, "expected a JSON array")?;
                Ok((answer.headers, items))
            })
            .await?;
        self.note_budget(label, &headers);
        let next = next_link(&headers).map(|link| self.check_next(label, url, &link)).transpose()?;
        if next.as_ref() == Some(url) {
            return Err(IngestError::Protocol {
                method: label.to_owned(),
                message: "Okta's next link repeats the page just read; stopping instead of paging forever".into(),
            });
        }
        self.http.record_page(label, items.len());
        Ok(Page { items, next })
    }

    /// The `next` URL, if it stays on the org's origin and the operation's path.
    fn check_next(&self, label: &str, current: &Url, link: &str) -> Result<Url> {
        let refused = |why: &str| IngestError::Protocol {
            method: label.to_owned(),
            message: format!("refusing to follow Okta's next link: {why}; the API token is sent only to the org"),
        };
        let next = Url::parse(link).map_err(|_| refused("it is not a URL"))?;
        if next.origin() != self.org_url.origin() {
            return Err(refused(&format!("it points to {}", next.origin().ascii_serialization())));
        }
        if next.path() != current.path() {
            return Err(refused(&format!("it leaves {} for {}", current.path(), next.path())));
        }
        if !next.username().is_empty() || next.password().is_some() || next.fragment().is_some() {
            return Err(refused("it carries user info or a fragment"));
        }
        Ok(next)
    }

    /// Waits until the label's pace allows the next call.
    async fn pace(&self, label: &str) {
        let until = self.not_before.lock().unwrap_or_else(PoisonError::into_inner).get(label).copied();
        if let Some(until) = until {
            let now = tokio::time::Instant::now();
            if until > now {
                tokio::time::sleep_until(until).await;
                let mut paced = self.paced.lock().unwrap_or_else(PoisonError::into_inner);
                *paced.entry(label.to_owned()).or_default() += until - now;
            }
        }
    }

    /// Reads the bucket's headers: with none left, the next call waits for the reset; with
    /// little left, the rest is spread over the window.
    fn note_budget(&self, label: &str, headers: &HeaderMap) {
        let number = |name: &str| headers.get(name)?.to_str().ok()?.trim().parse::<u64>().ok();
        let (Some(limit), Some(remaining)) = (number(LIMIT), number(REMAINING)) else { return };
        let Some(to_reset) = crate::http::reset_at_epoch(headers, RESET, Utc::now()) else { return };
        let wait = if remaining == 0 {
            to_reset
        } else if (remaining as f64) < (limit as f64) * PACE_BELOW {
            to_reset / u32::try_from(remaining).unwrap_or(u32::MAX)
        } else {
            return;
        };
        // Never longer than the window itself: a clock far off must not stall the run.
        let wait = wait.min(Duration::from_secs(60));
        if !wait.is_zero() {
            tracing::debug!(method = label, remaining, wait_ms = wait.as_millis() as u64, "pacing Okta calls");
            let until = tokio::time::Instant::now() + wait;
            self.not_before.lock().unwrap_or_else(PoisonError::into_inner).insert(label.to_owned(), until);
        }
    }
}

/// The URL of the `Link: <…>; rel="next"` header (Okta sends one `link` header per relation).
pub(crate) fn next_link(headers: &HeaderMap) -> Option<String> {
    headers.get_all(reqwest::header::LINK).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).find_map(
        |part| {
            let (target, params) = part.trim().split_once(';')?;
            let is_next = params.split(';').any(|p| {
                let p = p.trim().replace(' ', "");
                p.eq_ignore_ascii_case("rel=\"next\"") || p.eq_ignore_ascii_case("rel=next")
            });
            is_next.then(|| target.trim().trim_start_matches('<').trim_end_matches('>').to_owned())
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn next_link_is_read_from_either_header_form() {
        let mut h = HeaderMap::new();
        h.append("link", HeaderValue::from_static("<https://a.okta.com/api/v1/logs?x=1>; rel=\"self\""));
        assert_eq!(next_link(&h), None);
        h.append("link", HeaderValue::from_static("<https://a.okta.com/api/v1/logs?after=2>; rel=\"next\""));
        assert_eq!(next_link(&h).as_deref(), Some("https://a.okta.com/api/v1/logs?after=2"));
        let mut one = HeaderMap::new();
        one.insert(
            "link",
            HeaderValue::from_static("<https://a/s>; rel=\"self\", <https://a/n?after=3>; rel=\"next\""),
        );
        assert_eq!(next_link(&one).as_deref(), Some("https://a/n?after=3"));
    }

    #[test]
    fn the_error_envelope_is_classified() {
        let body = |code: &str| format!(r#"{{"errorCode":"{code}","errorSummary":"summary of {code}","errorId":"x"}}"#);
        let c = |status: u16, b: &str| {
            OktaRules.classify(LOGS, StatusCode::from_u16(status).unwrap(), b.as_bytes(), "env T")
        };
        let auth = c(401, &body("E0000011"));
        assert!(auth.is_auth() && !auth.is_retriable(), "{auth}");
        assert!(auth.to_string().contains("Okta /api/v1/logs") && auth.to_string().contains("E0000011"), "{auth}");
        let denied = c(403, &body("E0000006"));
        assert!(denied.is_capability() && !denied.is_auth(), "{denied}");
        let timeout = c(500, &body("E0000009"));
        assert!(timeout.is_retriable() && timeout.to_string().contains("E0000009"), "{timeout}");
        let bad = c(400, &body("E0000053"));
        assert!(!bad.is_retriable() && !bad.is_capability(), "{bad}");
        assert!(bad.to_string().contains("summary of E0000053"), "{bad}");
        let html = c(502, "<html>Bad Gateway</html>");
        assert!(matches!(html, IngestError::Http { status: 502, .. }) && html.is_retriable());
    }
}
