//! `IngestError`: every way an API call or a collector can fail, classified once so the retry
//! loop knows what to retry and the operator reads what went wrong and what to do about it.
//! The transport, HTTP, decode, paging and deadline variants are any app's; the ones whose
//! meaning is Slack's (its `ok:false` codes, plans, token types) say so in their names or docs.
//!
//! No variant ever holds the token or a request header; messages carry the method (or label),
//! the API's error code and where the token came from (an env var name or file path), nothing
//! more.

use std::fmt;
use std::time::Duration;

use datafusion::arrow::error::ArrowError;

/// The crate's result type.
pub type Result<T> = std::result::Result<T, IngestError>;

/// What went wrong at the transport level (before a complete HTTP response was read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// The request (or reading the body) exceeded the app's request timeout
    /// (`slack.request_timeout`) or the connect timeout.
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
    /// The client could not be built (bad token characters, TLS setup, a bad method name, a
    /// URL the token must not go to).
    #[error("API client setup: {0}")]
    Setup(String),

    /// The API rejected the token (HTTP 401; Slack's `invalid_auth`, `not_authed`,
    /// `token_revoked`, `token_expired`, `account_inactive`).
    #[error(
        "{method}: the token was rejected (`{code}`); check the token in {token_source} \
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

    /// HTTP 429, or an app's own rate-limit answer (Slack's `ok:false` `ratelimited`);
    /// `retry_after` is the wait the answer asked for (the app's [`crate::http::ApiRules::wait_hint`]).
    #[error("{method}: rate limited by the server{}", match retry_after {
        Some(d) => format!(" (asked to wait {}s)", d.as_secs()),
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

    /// A standing condition Slack documents for this method, org or workspace (see
    /// [`STANDING_CODES`]): the source is skipped for that workspace (or the organisation),
    /// never the run.
    #[error("{method}: `{code}`: {meaning}; skipped until that changes")]
    Standing { method: String, code: String, meaning: String },

    /// A code Slack documents as "intermittently unavailable until the transition is complete":
    /// retried within the run; when retries run out, skipped for the day.
    #[error("{method}: `{code}`: {meaning}")]
    Transitional { method: String, code: String, meaning: String },

    /// A SCIM / Audit Logs error status with an error code this client cannot fix by retrying.
    #[error("{method}: HTTP {status} `{code}`; this source fails")]
    RestApi { method: String, code: String, status: u16 },

    /// Any other Slack `ok:false` code: a request this client cannot fix by retrying.
    #[error(
        "{method}: Slack answered `{code}`; this source fails (see Slack's documentation of \
         {method} for the meaning of `{code}`)"
    )]
    SlackApi { method: String, code: String },

    /// An error answer in an app's documented error envelope (Okta's `errorCode` and
    /// `errorSummary`; `method` names the app and the endpoint): `retriable` for server-side
    /// statuses (5xx, such as Okta's E0000009 query timeout), otherwise a request this client
    /// cannot fix by retrying.
    #[error("{method}: HTTP {status} `{code}`: {summary}{}", if *retriable { " (server side; retried)" } else { "" })]
    ApiError { method: String, status: u16, code: String, summary: String, retriable: bool },

    /// A non-200 HTTP status other than 429.
    #[error("{method}: HTTP {status}{}", if *status >= 500 || *status == 408 {
        " (server side; retried)"
    } else if (300..400).contains(status) {
        " (a redirect; lastseen never follows redirects so the token cannot leak; check the API URL, such as slack.api_url)"
    } else {
        ""
    })]
    Http { method: String, status: u16 },

    /// Timeouts, connection failures, bodies cut off mid-transfer.
    #[error("{method}: {kind}: {detail}")]
    Transport { method: String, kind: TransportKind, detail: String },

    /// The body is not the JSON the API sends. `retriable` is true for syntax errors and missing
    /// envelopes (a damaged transfer), false when valid JSON has a shape this code cannot read.
    #[error("{method}: could not read the response: {detail}")]
    Decode { method: String, detail: String, retriable: bool },

    /// The API broke its own paging contract (for example a cursor that does not advance).
    #[error("{method}: {message}")]
    Protocol { method: String, message: String },

    /// The run's calls to one app took longer than its run deadline (`key`, such as
    /// `slack.run_deadline`): stopped so a server that never ends a listing cannot hold the lake
    /// (its lease is renewed while the run lives).
    #[error(
        "{method}: the run's API calls passed {key} ({}); stopping so the run does \
         not hold the lake forever (a server that never ends a listing, or a very slow one)",
        humantime_secs(*deadline)
    )]
    Deadline { method: String, key: &'static str, deadline: Duration },

    /// A retriable error persisted through every allowed attempt.
    #[error("{method}: gave up after {attempts} attempts; last error: {last}")]
    RetriesExhausted { method: String, attempts: u32, last: Box<IngestError> },

    /// Page rows did not fit the catalog schema (a bug here, not the API's problem).
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

    /// The identity export shrank past `lake.max_snapshot_drop` against the previous one.
    #[error(
        "identity guard: the identity export has {rows} usable rows, {drop_pct:.1}% fewer than the {previous_rows} \
         rows of the export used for dt={previous_dt}, more than the allowed {max_pct:.1}% \
         (lake.max_snapshot_drop = {max_drop}); it was not used and no derived table was updated. Check that \
         the export is complete (a half-written or partial file?); if the identities really went away, use it \
         with `lastseen run --force` (env LASTSEEN_FORCE=true)",
        drop_pct = 100.0 * (*previous_rows as f64 - *rows as f64) / (*previous_rows).max(1) as f64,
        max_pct = 100.0 * max_drop
    )]
    IdentityDrop { rows: u64, previous_dt: chrono::NaiveDate, previous_rows: u64, max_drop: f64 },

    /// The identity tables could not be staged in the run's transaction.
    #[error("staging the identity tables: {0}")]
    IdentityStage(#[source] lastseen_lake::LakeError),

    /// An app's secret (token, key) could not be loaded; `what` names the app's secret, the
    /// config error names the variable or file (never the value).
    #[error("{what}")]
    Secret {
        what: String,
        #[source]
        source: lastseen_config::ConfigError,
    },
}

fn humantime_secs(d: Duration) -> String {
    format!("{}s", d.as_secs())
}

impl IngestError {
    /// Whether another attempt of the same request may succeed.
    pub fn is_retriable(&self) -> bool {
        match self {
            IngestError::RateLimited { .. }
            | IngestError::SlackTransient { .. }
            | IngestError::Transport { .. }
            | IngestError::Transitional { .. } => true,
            IngestError::Http { status, .. } => *status >= 500 || *status == 408,
            IngestError::Decode { retriable, .. } | IngestError::ApiError { retriable, .. } => *retriable,
            _ => false,
        }
    }

    /// Whether the error means "this token or plan cannot serve this source": the run should
    /// skip the source with this message as a warning rather than fail as a whole.
    ///
    /// A transitional code that outlasted every retry counts too: skipped for the day.
    pub fn is_capability(&self) -> bool {
        match self {
            IngestError::MissingScope { .. }
            | IngestError::TokenType { .. }
            | IngestError::PlanUnavailable { .. }
            | IngestError::NotPermitted { .. }
            | IngestError::Standing { .. } => true,
            IngestError::RetriesExhausted { last, .. } => matches!(**last, IngestError::Transitional { .. }),
            _ => false,
        }
    }

    /// A standing condition of the table (or a transitional one that outlasted its retries),
    /// as opposed to the plan, scope or token type simply not covering a source: worth a
    /// warning (and exit 3) even for a source `sources = "auto"` does not insist on.
    pub fn is_standing(&self) -> bool {
        match self {
            IngestError::Standing { .. } => true,
            IngestError::RetriesExhausted { last, .. } => matches!(**last, IngestError::Transitional { .. }),
            _ => false,
        }
    }

    /// Whether the condition belongs to one workspace (another workspace of the same org
    /// token may well answer): a probe tries the next workspace instead of skipping the source.
    pub fn is_workspace_level(&self) -> bool {
        match self {
            IngestError::Standing { code, method, .. } => {
                matches!(code.as_str(), "team_access_not_granted" | "invalid_team_id")
                    || (method == "team.billableInfo" && code == "invalid_auth")
            }
            _ => false,
        }
    }

    /// A rejected token on SCIM or the Audit Logs API, after `auth.test` accepted the same
    /// token: the token is valid but not allowed on that API (Audit takes only an org owner's
    /// token with `auditlogs:read`; SCIM an admin's with `admin`). Slack answers 401 there (an
    /// empty body from Audit, `{"Errors":{…}}` from SCIM v1 and v2: java-slack-sdk
    /// `test_with_remote_apis/audit/ApiTest.java` `getLogs_dummy`, `scim2/ApiTest.java`), so
    /// it is a standing condition of the source, not a failed run. Other errors pass through.
    pub fn refused_rest_token(self) -> IngestError {
        match self {
            IngestError::Auth { method, code, .. } => IngestError::Standing {
                method,
                code,
                meaning: "the token works for the Web API but is not allowed on this API (the Audit Logs API \
                          takes only an org owner's user token with auditlogs:read from an org-level install; \
                          SCIM a workspace or org admin's token with the admin scope)"
                    .to_owned(),
            },
            other => other,
        }
    }

    /// `team.billableInfo` with an org-level token answers `invalid_auth` for a workspace the
    /// org owner is not a member of ("passing the team_id parameter will result in an
    /// invalid_auth error if the org owner is not part of the team", Slack's team.billableInfo
    /// page). After `auth.test` succeeded that is a standing condition of the workspace.
    pub fn billing_owner_not_in_workspace(self) -> IngestError {
        match self {
            IngestError::Auth { method, code, .. } if code == "invalid_auth" => IngestError::Standing {
                method,
                code,
                meaning: "with an org-level token Slack answers this for a workspace the org owner is not a \
                          member of; add the owner to the workspace to collect its billing"
                    .to_owned(),
            },
            other => other,
        }
    }

    /// Whether the token itself was rejected (every other source will fail the same way).
    pub fn is_auth(&self) -> bool {
        match self {
            IngestError::Auth { .. } => true,
            IngestError::RetriesExhausted { last, .. } => last.is_auth(),
            _ => false,
        }
    }

    /// The method (or label: `scim.Users`, an endpoint) the error is about, when there is one.
    pub fn method(&self) -> Option<&str> {
        match self {
            IngestError::Auth { method, .. }
            | IngestError::MissingScope { method, .. }
            | IngestError::TokenType { method, .. }
            | IngestError::PlanUnavailable { method, .. }
            | IngestError::RateLimited { method, .. }
            | IngestError::SlackTransient { method, .. }
            | IngestError::SlackApi { method, .. }
            | IngestError::NotPermitted { method, .. }
            | IngestError::Standing { method, .. }
            | IngestError::Transitional { method, .. }
            | IngestError::RestApi { method, .. }
            | IngestError::ApiError { method, .. }
            | IngestError::Http { method, .. }
            | IngestError::Transport { method, .. }
            | IngestError::Decode { method, .. }
            | IngestError::Protocol { method, .. }
            | IngestError::Deadline { method, .. }
            | IngestError::RetriesExhausted { method, .. } => Some(method),
            IngestError::Setup(_)
            | IngestError::Arrow { .. }
            | IngestError::IdentityFile { .. }
            | IngestError::IdentityRead { .. }
            | IngestError::IdentityDrop { .. }
            | IngestError::IdentityStage(_)
            | IngestError::Secret { .. } => None,
        }
    }

    /// Slack's `error` code for `ok:false` answers (also through `RetriesExhausted`).
    pub fn slack_code(&self) -> Option<&str> {
        match self {
            IngestError::Auth { code, .. }
            | IngestError::PlanUnavailable { code, .. }
            | IngestError::SlackTransient { code, .. }
            | IngestError::NotPermitted { code, .. }
            | IngestError::Standing { code, .. }
            | IngestError::Transitional { code, .. }
            | IngestError::RestApi { code, .. }
            | IngestError::SlackApi { code, .. } => Some(code),
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
            _ => match standing(code) {
                Some((Condition::Skip, meaning)) => {
                    IngestError::Standing { method, code: code.to_owned(), meaning: meaning.to_owned() }
                }
                Some((Condition::Transitional, meaning)) => {
                    IngestError::Transitional { method, code: code.to_owned(), meaning: meaning.to_owned() }
                }
                None => IngestError::SlackApi { method, code: code.to_owned() },
            },
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

/// How the failure model treats a documented code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// Skip the source for that workspace (or the organisation, for org-wide sources), with a
    /// warning naming source, workspace and code; the run commits the rest and exits 3.
    Skip,
    /// Retry within the run; if it persists, skip for the day like [`Condition::Skip`].
    Transitional,
}

/// The one table of standing conditions, used by `run`, `backfill`, `daemon` and `check`
/// alike (they all classify through [`IngestError::from_slack_code`]). Plan, scope and token
/// type codes (`missing_scope`, `paid_only`, …) have their own variants above.
///
/// Sources: the error tables of `admin.analytics.getFile` (docs.slack.dev and the older
/// api.slack.com page), `admin.teams.list` (`not_an_admin`), `team.accessLogs`
/// (`invalid_team_id`), and Slack's common errors on nearly every method (`access_denied`,
/// `accesslimited`, `ekm_access_denied`, `enterprise_is_restricted`, `no_permission`,
/// `team_access_not_granted`, `two_factor_setup_required`); see docs/DESIGN.md §2.
pub const STANDING_CODES: &[(&str, Condition, &str)] = &[
    (
        "team_access_not_granted",
        Condition::Skip,
        "the org-wide app is not granted this workspace; an org admin can add the app to it",
    ),
    ("invalid_team_id", Condition::Skip, "the workspace is not valid for this token (not granted to the org-wide app)"),
    ("not_an_admin", Condition::Skip, "the token's user is not an admin here; use an admin's or owner's token"),
    ("not_an_enterprise", Condition::Skip, "the method works only on an Enterprise Grid organisation"),
    ("no_permission", Condition::Skip, "the token's user lacks the permission this method needs"),
    ("access_denied", Condition::Skip, "Slack denied access to the resource"),
    ("accesslimited", Condition::Skip, "access to this method is limited on this workspace"),
    ("ekm_access_denied", Condition::Skip, "administrators suspended the ability to post a message (EKM)"),
    ("enterprise_is_restricted", Condition::Skip, "the method cannot be called from an Enterprise organisation"),
    (
        "org_level_email_display_disabled",
        Condition::Skip,
        "member analytics are unavailable for organisations with a 'Hide email addresses' policy",
    ),
    ("member_analytics_disabled", Condition::Skip, "member analytics are disabled for this organisation"),
    (
        "user_cannot_manage_public_channels",
        Condition::Skip,
        "the token's user may not manage public channels, which this method requires",
    ),
    ("two_factor_setup_required", Condition::Skip, "the token's user must set up two-factor authentication"),
    (
        "org_login_required",
        Condition::Transitional,
        "the workspace is migrating into the organisation; retried, and skipped for the day if it persists",
    ),
    (
        "team_added_to_org",
        Condition::Transitional,
        "the workspace is being added to the organisation; retried, and skipped for the day if it persists",
    ),
];

/// The condition and its meaning for `code`, if it is a standing or transitional one.
pub fn standing(code: &str) -> Option<(Condition, &'static str)> {
    STANDING_CODES.iter().find(|(c, _, _)| *c == code).map(|(_, k, m)| (*k, *m))
}

/// Answers that prove a probe passed Slack's plan, scope and token checks: the call was
/// understood and refused only on its argument (the probe's date). Any other `ok:false` code
/// is not proof that the source works.
pub const PROBE_PASSED: &[&str] = &["data_not_available", "invalid_date", "file_not_yet_available", "file_not_found"];

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
        let e = code("no_such_code_anywhere");
        assert!(matches!(e, IngestError::SlackApi { .. }) && !e.is_retriable() && !e.is_capability());
        assert_eq!(e.slack_code(), Some("no_such_code_anywhere"));
        assert_eq!(e.method(), Some("users.list"));
        // Every code the failure model names: a skip, never a retry or a failed run.
        for c in [
            "team_access_not_granted",
            "invalid_team_id",
            "not_an_admin",
            "not_an_enterprise",
            "no_permission",
            "access_denied",
            "accesslimited",
            "ekm_access_denied",
            "enterprise_is_restricted",
            "org_level_email_display_disabled",
            "member_analytics_disabled",
            "user_cannot_manage_public_channels",
            "two_factor_setup_required",
        ] {
            let e = code(c);
            assert!(matches!(e, IngestError::Standing { .. }) && e.is_capability() && !e.is_retriable(), "{c}");
            assert_eq!(e.slack_code(), Some(c));
            assert!(e.to_string().contains(c), "{e}");
        }
        assert!(code("team_access_not_granted").is_workspace_level());
        assert!(!code("not_an_admin").is_workspace_level());
        // Transitional: retried, and once retries run out, skipped for the day.
        for c in ["org_login_required", "team_added_to_org"] {
            let e = code(c);
            assert!(e.is_retriable() && !e.is_capability(), "{c}");
            let out = IngestError::RetriesExhausted { method: "users.list".into(), attempts: 3, last: Box::new(e) };
            assert!(out.is_capability() && !out.is_retriable(), "{c}");
        }
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
