//! `IngestError`: every way a Slack call or a collector can fail, classified once so the retry
//! loop knows what to retry and the operator reads what went wrong and what to do about it.
//!
//! No variant ever holds the token or a request header; messages carry the method, Slack's
//! error code and where the token came from (an env var name or file path), nothing more.

use std::fmt;
use std::time::Duration;

use datafusion::arrow::error::ArrowError;

/// The crate's result type.
pub type Result<T> = std::result::Result<T, IngestError>;

/// What went wrong at the transport level (before a complete HTTP response was read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// The request (or reading the body) exceeded `slack.request_timeout` or the connect timeout.
    Timeout,
    /// The TCP/TLS connection could not be established.
    Connect,
    /// The connection broke while sending the request.
    Request,
    /// The connection broke while reading the body (a truncated transfer).
    Body,
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TransportKind::Timeout => "timed out",
            TransportKind::Connect => "could not connect",
            TransportKind::Request => "request failed",
            TransportKind::Body => "response body was cut off",
        })
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    /// The client could not be built (bad token characters, TLS setup, a bad method name).
    #[error("Slack client setup: {0}")]
    Setup(String),

    /// `invalid_auth`, `not_authed`, `token_revoked`, `token_expired`, `account_inactive`.
    #[error(
        "{method}: Slack rejected the token (`{code}`); check the token in {token_source} \
         (it may be mistyped, revoked, expired, or used from a disallowed IP)"
    )]
    Auth { method: String, code: String, token_source: String },

    /// `missing_scope`: the token lacks a scope this method needs.
    #[error(
        "{method}: the token lacks a required scope (needed: {}, granted: {}); add the scope \
         to the Slack app, reinstall it and update the token",
        needed.as_deref().unwrap_or("not stated"),
        provided.as_deref().unwrap_or("not stated")
    )]
    MissingScope { method: String, needed: Option<String>, provided: Option<String> },

    /// `not_allowed_token_type`: typically a bot token where a user token is required.
    #[error(
        "{method}: `not_allowed_token_type`: this method needs a user token (xoxp-…), not a bot \
         token; put a user token of a workspace admin in {token_source}"
    )]
    TokenType { method: String, token_source: String },

    /// `paid_only`, `plan_upgrade_required`, `feature_not_enabled`, `feature_not_available`.
    #[error(
        "{method}: not available on this workspace's Slack plan (`{code}`); this source is \
         skipped until the plan includes it"
    )]
    PlanUnavailable { method: String, code: String },

    /// HTTP 429, or `ok:false` with `ratelimited`.
    #[error("{method}: rate limited by Slack{}", match retry_after {
        Some(d) => format!(" (Retry-After {}s)", d.as_secs()),
        None => String::new(),
    })]
    RateLimited { method: String, retry_after: Option<Duration> },

    /// `ok:false` with a server-side code Slack documents as transient.
    #[error("{method}: Slack reported a transient server error (`{code}`)")]
    SlackTransient { method: String, code: String },

    /// HTTP 403 from SCIM or the Audit Logs API for a reason other than plan or scope: the
    /// token belongs to someone who may not use the API.
    #[error(
        "{method}: Slack refused access (HTTP {status}, `{code}`); SCIM needs a user token of a \
         workspace or org admin with the `admin` scope, the Audit Logs API an org owner's token \
         with `auditlogs:read` from an org-level install"
    )]
    NotPermitted { method: String, code: String, status: u16 },

    /// A SCIM / Audit Logs error status with an error code this client cannot fix by retrying.
    #[error("{method}: HTTP {status} `{code}`; this source fails")]
    RestApi { method: String, code: String, status: u16 },

    /// Any other `ok:false` code: a request this client cannot fix by retrying.
    #[error(
        "{method}: Slack answered `{code}`; this source fails (see Slack's documentation of \
         {method} for the meaning of `{code}`)"
    )]
    Api { method: String, code: String },

    /// A non-200 HTTP status other than 429.
    #[error("{method}: HTTP {status}{}", if *status >= 500 || *status == 408 {
        " (server side; retried)"
    } else if (300..400).contains(status) {
        " (a redirect; lastseen never follows redirects so the token cannot leak; check slack.api_url)"
    } else {
        ""
    })]
    Http { method: String, status: u16 },

    /// Timeouts, connection failures, bodies cut off mid-transfer.
    #[error("{method}: {kind}: {detail}")]
    Transport { method: String, kind: TransportKind, detail: String },

    /// The body is not the JSON Slack sends. `retriable` is true for syntax errors and missing
    /// envelopes (a damaged transfer), false when valid JSON has a shape this code cannot read.
    #[error("{method}: could not read Slack's response: {detail}")]
    Decode { method: String, detail: String, retriable: bool },

    /// Slack broke its own paging contract (for example a cursor that does not advance).
    #[error("{method}: {message}")]
    Protocol { method: String, message: String },

    /// The run's Slack calls took longer than `slack.run_deadline`: stopped before the lake
    /// lease could expire under the run.
    #[error(
        "{method}: the run's Slack calls passed slack.run_deadline ({}); stopping so the lake lease \
         cannot expire under the run (a server that never ends a listing, or a very slow one)",
        humantime_secs(*deadline)
    )]
    Deadline { method: String, deadline: Duration },

    /// A retriable error persisted through every allowed attempt.
    #[error("{method}: gave up after {attempts} attempts; last error: {last}")]
    RetriesExhausted { method: String, attempts: u32, last: Box<IngestError> },

    /// Page rows did not fit the catalog schema (a bug here, not a Slack problem).
    #[error("building a {table} batch: {source}")]
    Arrow {
        table: &'static str,
        #[source]
        source: ArrowError,
    },

    /// An identity export or overrides file that cannot be used at all (unreadable, empty, a
    /// required column missing, the wrong delimiter, no usable row). Single bad rows are not
    /// errors: they are quarantined.
    #[error("identity file `{file}`: {message}")]
    IdentityFile { file: String, message: String },

    /// The identity export could not be fetched from storage.
    #[error("identity file `{file}`: cannot read it: {source}")]
    IdentityRead {
        file: String,
        #[source]
        source: lastseen_lake::LakeError,
    },
}

fn humantime_secs(d: Duration) -> String {
    format!("{}s", d.as_secs())
}

impl IngestError {
    /// Whether another attempt of the same request may succeed.
    pub fn is_retriable(&self) -> bool {
        match self {
            IngestError::RateLimited { .. } | IngestError::SlackTransient { .. } | IngestError::Transport { .. } => {
                true
            }
            IngestError::Http { status, .. } => *status >= 500 || *status == 408,
            IngestError::Decode { retriable, .. } => *retriable,
            _ => false,
        }
    }

    /// Whether the error means "this token or plan cannot serve this source": the run should
    /// skip the source with this message as a warning rather than fail as a whole.
    pub fn is_capability(&self) -> bool {
        matches!(
            self,
            IngestError::MissingScope { .. }
                | IngestError::TokenType { .. }
                | IngestError::PlanUnavailable { .. }
                | IngestError::NotPermitted { .. }
        )
    }

    /// Whether the token itself was rejected (every other source will fail the same way).
    pub fn is_auth(&self) -> bool {
        match self {
            IngestError::Auth { .. } => true,
            IngestError::RetriesExhausted { last, .. } => last.is_auth(),
            _ => false,
        }
    }

    /// The Slack method the error is about, when there is one.
    pub fn method(&self) -> Option<&str> {
        match self {
            IngestError::Auth { method, .. }
            | IngestError::MissingScope { method, .. }
            | IngestError::TokenType { method, .. }
            | IngestError::PlanUnavailable { method, .. }
            | IngestError::RateLimited { method, .. }
            | IngestError::SlackTransient { method, .. }
            | IngestError::Api { method, .. }
            | IngestError::NotPermitted { method, .. }
            | IngestError::RestApi { method, .. }
            | IngestError::Http { method, .. }
            | IngestError::Transport { method, .. }
            | IngestError::Decode { method, .. }
            | IngestError::Protocol { method, .. }
            | IngestError::Deadline { method, .. }
            | IngestError::RetriesExhausted { method, .. } => Some(method),
            IngestError::Setup(_)
            | IngestError::Arrow { .. }
            | IngestError::IdentityFile { .. }
            | IngestError::IdentityRead { .. } => None,
        }
    }

    /// Slack's `error` code for `ok:false` answers (also through `RetriesExhausted`).
    pub fn slack_code(&self) -> Option<&str> {
        match self {
            IngestError::Auth { code, .. }
            | IngestError::PlanUnavailable { code, .. }
            | IngestError::SlackTransient { code, .. }
            | IngestError::NotPermitted { code, .. }
            | IngestError::RestApi { code, .. }
            | IngestError::Api { code, .. } => Some(code),
            IngestError::MissingScope { .. } => Some("missing_scope"),
            IngestError::TokenType { .. } => Some("not_allowed_token_type"),
            IngestError::RateLimited { .. } => Some("ratelimited"),
            IngestError::RetriesExhausted { last, .. } => last.slack_code(),
            _ => None,
        }
    }

    /// Maps an `ok:false` answer to its class. `token_source` describes where the token came
    /// from (`env SLACK_TOKEN`), so auth errors can say what to fix.
    pub(crate) fn from_slack_code(
        method: &str,
        code: &str,
        needed: Option<String>,
        provided: Option<String>,
        token_source: &str,
    ) -> IngestError {
        let method = method.to_owned();
        match code {
            "ratelimited" | "rate_limited" => IngestError::RateLimited { method, retry_after: None },
            "invalid_auth" | "not_authed" | "token_revoked" | "token_expired" | "account_inactive" => {
                IngestError::Auth { method, code: code.to_owned(), token_source: token_source.to_owned() }
            }
            "missing_scope" => IngestError::MissingScope { method, needed, provided },
            "not_allowed_token_type" => IngestError::TokenType { method, token_source: token_source.to_owned() },
            "paid_only" | "plan_upgrade_required" | "feature_not_enabled" | "feature_not_available" => {
                IngestError::PlanUnavailable { method, code: code.to_owned() }
            }
            "fatal_error" | "internal_error" | "service_unavailable" | "request_timeout" => {
                IngestError::SlackTransient { method, code: code.to_owned() }
            }
            _ => IngestError::Api { method, code: code.to_owned() },
        }
    }

    pub(crate) fn transport(method: &str, err: &reqwest::Error, reading_body: bool) -> Self {
        let kind = if err.is_timeout() {
            TransportKind::Timeout
        } else if err.is_connect() {
            TransportKind::Connect
        } else if reading_body || err.is_body() || err.is_decode() {
            TransportKind::Body
        } else {
            TransportKind::Request
        };
        IngestError::Transport { method: method.to_owned(), kind, detail: error_chain(err) }
    }
}

/// One line from an error and its sources, because reqwest's top-level message ("error sending
/// request") hides the useful part ("connection refused"). reqwest errors carry the URL, which
/// never holds the token, and never the headers.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(c: &str) -> IngestError {
        IngestError::from_slack_code("users.list", c, None, None, "env SLACK_TOKEN")
    }

    #[test]
    fn classification_table() {
        for c in ["ratelimited", "fatal_error", "internal_error", "service_unavailable", "request_timeout"] {
            assert!(code(c).is_retriable(), "{c}");
        }
        for c in ["invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive"] {
            let e = code(c);
            assert!(matches!(e, IngestError::Auth { .. }), "{c}");
            assert!(!e.is_retriable() && e.is_auth());
            assert!(e.to_string().contains("env SLACK_TOKEN"), "{e}");
        }
        for c in ["paid_only", "plan_upgrade_required", "feature_not_enabled", "feature_not_available"] {
            let e = code(c);
            assert!(matches!(e, IngestError::PlanUnavailable { .. }) && e.is_capability(), "{c}");
        }
        assert!(matches!(code("not_allowed_token_type"), IngestError::TokenType { .. }));
        assert!(code("not_allowed_token_type").to_string().contains("xoxp-"));
        let e = code("no_permission");
        assert!(matches!(e, IngestError::Api { .. }) && !e.is_retriable() && !e.is_capability());
        assert_eq!(e.slack_code(), Some("no_permission"));
        assert_eq!(e.method(), Some("users.list"));
    }

    #[test]
    fn missing_scope_names_scopes() {
        let e = IngestError::from_slack_code(
            "team.accessLogs",
            "missing_scope",
            Some("admin".into()),
            Some("users:read".into()),
            "env T",
        );
        let msg = e.to_string();
        assert!(msg.contains("team.accessLogs") && msg.contains("needed: admin"), "{msg}");
        assert!(msg.contains("granted: users:read"), "{msg}");
    }

    #[test]
    fn http_statuses() {
        let http = |status| IngestError::Http { method: "m".into(), status };
        assert!(http(500).is_retriable() && http(503).is_retriable() && http(408).is_retriable());
        assert!(!http(404).is_retriable() && !http(302).is_retriable());
        assert!(http(302).to_string().contains("redirect"));
    }

    #[test]
    fn exhausted_keeps_the_last_error() {
        let e = IngestError::RetriesExhausted {
            method: "users.list".into(),
            attempts: 3,
            last: Box::new(code("internal_error")),
        };
        let msg = e.to_string();
        assert!(msg.contains("users.list") && msg.contains("3 attempts"), "{msg}");
        assert!(msg.contains("internal_error"), "{msg}");
        assert!(!e.is_retriable());
        assert_eq!(e.slack_code(), Some("internal_error"));
    }
}
