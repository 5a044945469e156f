//! lastseen's configuration: owns the TOML schema (`RawConfig`), the layering
//! defaults ← file ← `LASTSEEN_<SECTION>__<KEY>` environment overrides, and validation into the
//! typed `Config` every other crate consumes. Validation happens once, here, so the rest of the
//! pipeline can trust the values, and every error names its field and where the value came from.

mod daemon;
mod error;
mod identity;
mod okta;
mod overrides;
pub mod raw;
mod serve;
mod slack;
mod storage;
mod token;
mod validate;

#[cfg(test)]
mod tests;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

pub use daemon::{DaemonConfig, Schedule, parse_timezone};
pub use error::{ConfigError, Result};
pub use identity::{
    AccountAttr, CorrelationConfig, CorrelationRule, IdentitiesConfig, IdentityAttr, IdentityColumns, IdentityFormat,
    Normalize,
};
pub use okta::{OKTA_LOG_RETENTION_DAYS, OktaConfig, OktaCredentials, OktaSource};
pub use raw::RawConfig;
pub use serve::{MIN_PASSWORD_CHARS, PasswordSource, ServeConfig, ServeUser, TlsFiles};
pub use slack::{RateLimitConfig, RetryConfig, SlackConfig, Source, UnknownSource};
pub use storage::{StorageConfig, parse_storage_url};
pub use token::{OKTA_API_TOKEN, SLACK_TOKEN, TokenKind, TokenSource};

use overrides::Origins;

/// An annotated configuration listing every key with its default; `lastseen init` can write it.
pub const EXAMPLE: &str = include_str!("../example.toml");

/// The file looked for in the current directory when no path is given.
pub const DEFAULT_FILE: &str = "lastseen.toml";

/// Origin reported when neither a file nor overrides supplied a value.
const DEFAULTS_ORIGIN: &str = "defaults";

/// The validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub storage: StorageConfig,
    pub slack: SlackConfig,
    pub reports: ReportsConfig,
    pub lake: LakeConfig,
    /// `[identities]`: the HR/IdP identity export.
    pub identities: IdentitiesConfig,
    /// `[correlation]`: how accounts are tied to identities.
    pub correlation: CorrelationConfig,
    pub daemon: DaemonConfig,
    /// `[serve]`: `lastseen serve`, the lake over the Postgres wire protocol.
    pub serve: ServeConfig,
    /// `[okta]`: the Okta app, when configured.
    pub okta: Option<OktaConfig>,
    /// Where the file part came from: the path as given, `lastseen.toml`, or `defaults`.
    pub origin: String,
}

/// Validated `[reports]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportsConfig {
    /// Accounts without activity for this many days are dormant (1..=3650).
    pub dormant_days: u32,
}

/// The lake tables `[lake.retention]` may name. The lake's catalog is the authority; this copy
/// exists so configuration can be validated without depending on the lake (a test in the binary
/// checks the two agree).
pub const LAKE_TABLES: &[&str] = &[
    "slack_users",
    "slack_access_logs",
    "last_seen",
    "slack_workspaces",
    "slack_billing",
    "slack_usergroups",
    "slack_usergroup_members",
    "slack_scim_users",
    "slack_scim_groups",
    "slack_member_analytics",
    "slack_member_analytics_quarantine",
    "slack_audit_logins",
    "okta_users",
    "okta_log_events",
    "identities",
    "identities_quarantine",
    "correlation_overrides",
    "accounts",
    "account_identity",
    "activity_daily",
    "account_report",
    "usage_daily",
    "sso_last_seen",
    "review_decisions",
    "deprovision_actions",
];

/// Validated `[lake]`.
#[derive(Debug, Clone, PartialEq)]
pub struct LakeConfig {
    /// Mass-change guard: the largest share (0..=1) by which a new `slack_users` snapshot may
    /// shrink against the previous one and still be published. `None` turns the guard off (what
    /// `lastseen run --force` does for one run); the file always yields `Some`.
    pub max_snapshot_drop: Option<f64>,
    /// Days of partitions kept per table; tables not named keep everything.
    pub retention: std::collections::BTreeMap<String, u32>,
    /// Retention guard: the largest share (0..=1) of a table's partitions one retention pass may
    /// drop (a pass dropping a single partition is always allowed: that is the daily case).
    /// `None` turns the guard off (`lastseen run --force`); the file always yields `Some`.
    pub retention_max_drop: Option<f64>,
    /// Staged rows a run keeps in memory before spilling them to staging files (bytes).
    pub stage_memory: usize,
    /// The memory pool of the derivation's DataFusion plans (bytes): sorts and aggregations past
    /// it spill to the OS temporary directory; a plan that cannot spill fails naming the limit.
    pub derive_memory: usize,
    /// How long files a newer version superseded, and files of runs that died, stay on storage
    /// before `vacuum` deletes them: the longest a reader may keep using an older version.
    pub keep_superseded: std::time::Duration,
    /// Expiry of the lake lease; the holder renews it every third of this while it runs, so it
    /// is how long a killed run blocks the next, not how long a run may take.
    pub lease_ttl: std::time::Duration,
    /// `delta.logRetentionDuration` of every table's Delta log: how long other engines can
    /// time-travel to an older Delta version (its files are kept for `keep_superseded`).
    pub delta_log_retention: std::time::Duration,
}

// Validation only lets finite values through, so equality on the share is reflexive.
impl Eq for LakeConfig {}

impl Config {
    /// Load from `path` if Some (must exist), else `lastseen.toml` in the current directory if
    /// it exists, else defaults; env overrides from the process environment.
    pub fn load(path: Option<&Path>) -> Result<Config> {
        let env = process_env()?;
        match path {
            Some(path) => {
                let text = read(path)?;
                Config::from_toml_str(&text, &path.display().to_string(), env)
            }
            None => match std::fs::read_to_string(DEFAULT_FILE) {
                Ok(text) => Config::from_toml_str(&text, DEFAULT_FILE, env),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Config::from_toml_str("", DEFAULTS_ORIGIN, env),
                Err(source) => Err(ConfigError::Read { path: PathBuf::from(DEFAULT_FILE), source }),
            },
        }
    }

    /// Same from a string, with an explicit env (for tests). `origin` names the text in errors.
    pub fn from_toml_str(text: &str, origin: &str, env: impl IntoIterator<Item = (String, String)>) -> Result<Config> {
        let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| parse_error(origin, text, &e))?;
        let overrides = overrides::apply(&mut table, env)?;
        let origins = Origins { file: origin.to_owned(), overrides };
        let raw: RawConfig = serde_path_to_error::deserialize(table).map_err(|e| deserialize_error(&e, &origins))?;
        validate::validate(raw, &origins)
    }

    /// The CLI's `--lake` override; same parsing and validation as `storage.url`.
    pub fn with_storage_url(mut self, url: &str) -> Result<Config> {
        self.storage.url = storage::storage_url(url).map_err(|message| ConfigError::Invalid {
            origin: "--lake / LASTSEEN_LAKE".to_owned(),
            field: "storage.url".to_owned(),
            message,
        })?;
        Ok(self)
    }
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })
}

/// `std::env::vars` panics on non-UTF-8 entries; unrelated variables must not break loading,
/// so only override-shaped ones are required to be UTF-8.
fn process_env() -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for (key, value) in std::env::vars_os() {
        let Some(key) = key.to_str().filter(|k| overrides::is_override(k)) else {
            continue;
        };
        let value = value.into_string().map_err(|_: OsString| ConfigError::Invalid {
            origin: overrides::env_origin(key),
            field: key.to_owned(),
            message: "value is not valid UTF-8".to_owned(),
        })?;
        out.push((key.to_owned(), value));
    }
    Ok(out)
}

fn parse_error(origin: &str, text: &str, e: &toml::de::Error) -> ConfigError {
    let detail = e.message().lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("; ");
    let message = match e.span() {
        Some(span) => {
            let (line, col) = line_col(text, span.start);
            format!("TOML syntax error at line {line}, column {col}: {detail}")
        }
        None => format!("TOML syntax error: {detail}"),
    };
    ConfigError::Parse { origin: origin.to_owned(), message }
}

/// 1-based line and column (in characters) of byte `offset`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..text.floor_char_boundary(offset.min(text.len()))];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, col)
}

fn deserialize_error(e: &serde_path_to_error::Error<toml::de::Error>, origins: &Origins) -> ConfigError {
    use serde_path_to_error::Segment;
    let mut field = String::new();
    let mut last_key = None;
    for segment in e.path().iter() {
        last_key = None;
        match segment {
            Segment::Seq { index } => field.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !field.is_empty() {
                    field.push('.');
                }
                field.push_str(key);
                last_key = Some(key.as_str());
            }
            Segment::Unknown => {}
        }
    }
    let message = e.inner().message().trim().to_owned();
    // The path normally already ends at the unknown key; make sure it does, because naming the
    // key itself is what lets the user (and the env-var attribution) find it.
    if let Some(key) = unknown_field(&message).filter(|k| last_key != Some(*k)) {
        if !field.is_empty() {
            field.push('.');
        }
        field.push_str(key);
    }
    if field.is_empty() {
        field.push('.');
    }
    origins.invalid(&field, message)
}

fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split_once('`').map(|(key, _)| key)
}
