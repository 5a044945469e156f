//! Turning a `RawConfig` into a `Config`: applying defaults and checking every value, with each
//! error attributed to its field path and to the file or env var it came from.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::daemon::{DaemonConfig, Schedule};
use crate::error::Result;
use crate::okta::{self, OKTA_LOG_RETENTION_DAYS, OktaConfig, OktaCredentials, OktaSource};
use crate::overrides::Origins;
use crate::raw::{
    DurationText, Int, RawConfig, RawDaemon, RawLake, RawOkta, RawRateLimits, RawRetry, RawServe, RawSlack, RawStorage,
};
use crate::serve::{PasswordSource, ServeConfig, ServeUser, TlsFiles};
use crate::slack::{self, RateLimitConfig, RetryConfig, SlackConfig, Source};
use crate::storage::{self, StorageConfig};
use crate::token::TokenSource;
use crate::{Config, LAKE_TABLES, LakeConfig, ReportsConfig};

pub(crate) mod defaults {
    pub const STORAGE_URL: &str = "./lastseen-data";
    pub const API_URL: &str = "https://slack.com/api";
    pub const GOV_API_URL: &str = "https://slack-gov.com/api";
    pub const STAGE_MEMORY_MB: i64 = 64;
    pub const DERIVE_MEMORY_MB: i64 = 512;
    pub const KEEP_SUPERSEDED: &str = "7d";
    pub const LEASE_TTL: &str = "2m";
    pub const DELTA_LOG_RETENTION: &str = "30d";
    pub const TOKEN_ENV: &str = "SLACK_TOKEN";
    pub const SOURCES: &[&str] = &["auto"];
    pub const USERS_PAGE_SIZE: i64 = 200;
    pub const ACCESS_LOGS_PAGE_SIZE: i64 = 1000;
    pub const ACCESS_LOGS_OVERLAP: &str = "1d";
    pub const REQUEST_TIMEOUT: &str = "60s";
    pub const CONCURRENCY: i64 = 4;
    /// The lake lease is a short record renewed by a heartbeat while the run lives, so it no
    /// longer bounds a run: this deadline is what stops a Slack server that never ends a listing
    /// from holding the lake. At most a day, so a hung run cannot skip a daily schedule's next
    /// run for more than one day.
    pub const RUN_DEADLINE: &str = "5h";
    pub const MAX_RUN_DEADLINE_SECS: u64 = 24 * 3600;
    pub const RATE_LIMIT_BUDGET: &str = "30m";
    pub const MAX_ATTEMPTS: i64 = 8;
    pub const INITIAL_BACKOFF: &str = "500ms";
    pub const MAX_BACKOFF: &str = "60s";
    pub const MIN_RETRY_AFTER: &str = "1s";
    pub const MAX_RETRY_AFTER: &str = "15m";
    pub const RATE_LIMITS_ENABLED: bool = true;
    pub const TIERS: [i64; 4] = [1, 20, 50, 100];
    pub const DORMANT_DAYS: i64 = 90;
    pub const MAX_SNAPSHOT_DROP: f64 = 0.2;
    /// A daily pass drops one partition per table; half of a table at once is a typo'd setting.
    pub const RETENTION_MAX_DROP: f64 = 0.5;
    /// A century: long enough for any legal hold, short enough that `dt - days` stays a date.
    pub const MAX_RETENTION_DAYS: i64 = 36_500;
    pub const SCHEDULE: &str = "30 0 * * *";
    pub const TIMEZONE: &str = "UTC";
    /// Loopback: `/healthz` and `/metrics` carry no auth, so reaching them from elsewhere is a
    /// deliberate setting (the Kubernetes manifests set `0.0.0.0:8080`).
    pub const LISTEN: &str = "127.0.0.1:8080";
    pub const CATCH_UP_DAYS: i64 = 7;
    pub const SHUTDOWN_GRACE: &str = "60s";
    /// Loopback, one above Postgres' own 5432 so both can run on one host.
    pub const SERVE_LISTEN: &str = "127.0.0.1:5433";
    pub const SERVE_MAX_CONNECTIONS: i64 = 16;
    pub const SERVE_QUERY_MEMORY_MB: i64 = 512;
    pub const SERVE_QUERY_TIMEOUT: &str = "5m";
    pub const SERVE_REFRESH: &str = "30s";
    pub const OKTA_TOKEN_ENV: &str = "OKTA_API_TOKEN";
    pub const OKTA_SOURCES: &[&str] = &["users", "logs"];
    /// What the two collectors read (Okta's OAuth scopes for listUsers and listLogEvents).
    pub const OKTA_SCOPES: &[&str] = &["okta.users.read", "okta.logs.read"];
    /// Okta's maximum `limit` of each operation: fewest calls.
    pub const OKTA_USERS_PAGE_SIZE: i64 = 200;
    pub const OKTA_LOGS_PAGE_SIZE: i64 = 1000;
    /// Okta documents late events as rare; an hour re-read per run finds them at the cost of an
    /// hour's events read twice (merged away on `uuid`).
    pub const OKTA_LOGS_OVERLAP: &str = "1h";
    pub const OKTA_LOGS_LAG: &str = "5m";
    pub const OKTA_LOGS_FIRST_RUN_DAYS: i64 = 90;
    pub const OKTA_EVENT_TYPES: &[&str] = &["user.session.start", "user.authentication.sso"];
}

pub(crate) fn validate(raw: RawConfig, origins: &Origins) -> Result<Config> {
    Ok(Config {
        storage: storage(raw.storage.unwrap_or_default(), origins)?,
        slack: slack(raw.slack.unwrap_or_default(), origins)?,
        reports: ReportsConfig {
            dormant_days: int(
                origins,
                "reports.dormant_days",
                raw.reports.and_then(|r| r.dormant_days),
                defaults::DORMANT_DAYS,
                1,
                3650,
            )?,
        },
        lake: lake(raw.lake.unwrap_or_default(), origins)?,
        identities: crate::identity::validate_identities(raw.identities.unwrap_or_default(), origins)?,
        correlation: crate::identity::validate_correlation(raw.correlation.unwrap_or_default(), origins)?,
        daemon: daemon(raw.daemon.unwrap_or_default(), origins)?,
        serve: serve(raw.serve.unwrap_or_default(), origins)?,
        okta: raw.okta.map(|o| okta(o, origins)).transpose()?,
        origin: origins.file.clone(),
    })
}

fn lake(raw: RawLake, o: &Origins) -> Result<LakeConfig> {
    let drop = raw.max_snapshot_drop.map_or(defaults::MAX_SNAPSHOT_DROP, |n| n.0);
    if !(0.0..=1.0).contains(&drop) {
        return Err(o.invalid(
            "lake.max_snapshot_drop",
            format!("must be a share between 0 and 1, e.g. 0.2 for 20% (got {drop})"),
        ));
    }
    let retention_max_drop = raw.retention_max_drop.map_or(defaults::RETENTION_MAX_DROP, |n| n.0);
    if !(0.0..=1.0).contains(&retention_max_drop) {
        return Err(o.invalid(
            "lake.retention_max_drop",
            format!("must be a share between 0 and 1, e.g. 0.5 for 50% (got {retention_max_drop})"),
        ));
    }
    let mut retention = BTreeMap::new();
    for (table, days) in raw.retention.unwrap_or_default() {
        let field = format!("lake.retention.{table}");
        if !LAKE_TABLES.contains(&table.as_str()) {
            return Err(o.invalid(&field, format!("unknown table `{table}`; known tables: {}", LAKE_TABLES.join(", "))));
        }
        let days: u32 = int(o, &field, Some(days), 0, 1, defaults::MAX_RETENTION_DAYS)?;
        retention.insert(table, days);
    }
    let stage_memory_mb: usize =
        int(o, "lake.stage_memory_mb", raw.stage_memory_mb, defaults::STAGE_MEMORY_MB, 1, 1024 * 1024)?;
    let derive_memory_mb: usize =
        int(o, "lake.derive_memory_mb", raw.derive_memory_mb, defaults::DERIVE_MEMORY_MB, 16, 1024 * 1024)?;
    let keep_superseded = duration(o, "lake.keep_superseded", raw.keep_superseded, defaults::KEEP_SUPERSEDED)?;
    let lease_ttl = duration(o, "lake.lease_ttl", raw.lease_ttl, defaults::LEASE_TTL)?;
    let delta_log_retention =
        duration(o, "lake.delta_log_retention", raw.delta_log_retention, defaults::DELTA_LOG_RETENTION)?;
    if !(Duration::from_secs(1)..=Duration::from_secs(24 * 3600)).contains(&lease_ttl) {
        return Err(o.invalid(
            "lake.lease_ttl",
            format!(
                "must be between 1s and 1d (got {}); \"2m\" suits most stores",
                humantime::format_duration(lease_ttl)
            ),
        ));
    }
    Ok(LakeConfig {
        max_snapshot_drop: Some(drop),
        retention,
        retention_max_drop: Some(retention_max_drop),
        stage_memory: stage_memory_mb * 1024 * 1024,
        derive_memory: derive_memory_mb * 1024 * 1024,
        keep_superseded,
        lease_ttl,
        delta_log_retention,
    })
}

fn daemon(raw: RawDaemon, o: &Origins) -> Result<DaemonConfig> {
    let tz = raw.timezone.as_deref().unwrap_or(defaults::TIMEZONE);
    let tz = crate::daemon::parse_timezone(tz).map_err(|m| o.invalid("daemon.timezone", m))?;
    let schedule = raw.schedule.as_deref().unwrap_or(defaults::SCHEDULE);
    let schedule = Schedule::parse(schedule, tz).map_err(|m| o.invalid("daemon.schedule", m))?;
    let listen = raw.listen.as_deref().unwrap_or(defaults::LISTEN);
    let listen = listen.trim().parse().map_err(|_| {
        o.invalid(
            "daemon.listen",
            format!("`{listen}` is not an address with a port; write e.g. \"0.0.0.0:8080\" or \"127.0.0.1:9464\""),
        )
    })?;
    Ok(DaemonConfig {
        schedule,
        listen,
        catch_up_days: int(o, "daemon.catch_up_days", raw.catch_up_days, defaults::CATCH_UP_DAYS, 0, 400)?,
        shutdown_grace: duration(o, "daemon.shutdown_grace", raw.shutdown_grace, defaults::SHUTDOWN_GRACE)?,
    })
}

fn serve(raw: RawServe, o: &Origins) -> Result<ServeConfig> {
    let listen = raw.listen.as_deref().unwrap_or(defaults::SERVE_LISTEN);
    let listen: std::net::SocketAddr = listen.trim().parse().map_err(|_| {
        o.invalid(
            "serve.listen",
            format!("`{listen}` is not an address with a port; write e.g. \"127.0.0.1:5433\" or \"0.0.0.0:5433\""),
        )
    })?;
    let path = |field: &str, v: &str| -> Result<PathBuf> {
        if v.trim().is_empty() {
            Err(o.invalid(field, "is empty; give the path of a PEM file"))
        } else {
            Ok(PathBuf::from(v))
        }
    };
    let tls = match (raw.tls_cert.as_deref(), raw.tls_key.as_deref()) {
        (Some(c), Some(k)) => Some(TlsFiles { cert: path("serve.tls_cert", c)?, key: path("serve.tls_key", k)? }),
        (None, None) => None,
        (Some(_), None) => return Err(o.invalid("serve.tls_key", "is missing: tls_cert needs its private key")),
        (None, Some(_)) => return Err(o.invalid("serve.tls_cert", "is missing: tls_key needs its certificate")),
    };
    if tls.is_none() && !listen.ip().is_loopback() {
        return Err(o.invalid(
            "serve.listen",
            format!(
                "`{listen}` is not a loopback address, so the listener needs TLS: set serve.tls_cert and \
                 serve.tls_key (passwords and data must not cross the network in plaintext)"
            ),
        ));
    }
    let mut users: Vec<ServeUser> = Vec::new();
    for (i, u) in raw.users.unwrap_or_default().into_iter().enumerate() {
        let field = |k: &str| format!("serve.users[{i}].{k}");
        let name = u.name.unwrap_or_default();
        let valid = !name.is_empty()
            && name.len() <= 63
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
        if !valid {
            return Err(o.invalid(&field("name"), format!("`{name}` is not a user name (1-63 of a-z, 0-9, _ - .)")));
        }
        if users.iter().any(|x| x.name == name) {
            return Err(o.invalid(&field("name"), format!("user `{name}` is listed twice")));
        }
        let password = match (u.password_env, u.password_file) {
            (Some(env), None) if is_env_name(&env) => PasswordSource::Env(env),
            (Some(env), None) => {
                return Err(o.invalid(&field("password_env"), format!("`{env}` is not an environment variable name")));
            }
            (None, Some(file)) => PasswordSource::File(path(&field("password_file"), &file)?),
            _ => {
                return Err(o.invalid(
                    &field("password_env"),
                    "give exactly one of password_env or password_file (a password is never written in this file)",
                ));
            }
        };
        users.push(ServeUser { name, password });
    }
    let query_memory_mb: usize =
        int(o, "serve.query_memory_mb", raw.query_memory_mb, defaults::SERVE_QUERY_MEMORY_MB, 16, 1 << 20)?;
    let query_timeout = duration(o, "serve.query_timeout", raw.query_timeout, defaults::SERVE_QUERY_TIMEOUT)?;
    if query_timeout.is_zero() {
        return Err(o.invalid("serve.query_timeout", "must be more than 0"));
    }
    let refresh = duration(o, "serve.refresh", raw.refresh, defaults::SERVE_REFRESH)?;
    Ok(ServeConfig {
        listen,
        tls,
        users,
        max_connections: int(
            o,
            "serve.max_connections",
            raw.max_connections,
            defaults::SERVE_MAX_CONNECTIONS,
            1,
            4096,
        )?,
        query_memory: query_memory_mb << 20,
        query_timeout,
        refresh,
        in_daemon: raw.in_daemon.unwrap_or(false),
    })
}

fn storage(raw: RawStorage, o: &Origins) -> Result<StorageConfig> {
    let url = raw.url.as_deref().unwrap_or(defaults::STORAGE_URL);
    let url = storage::storage_url(url).map_err(|m| o.invalid("storage.url", m))?;
    let mut options = BTreeMap::new();
    for (key, value) in raw.options.unwrap_or_default() {
        // object_store's key parsers only know the lower-case spellings; env overrides are
        // lower-cased anyway, so the file is made to match.
        let field = format!("storage.options.{key}");
        let lower = key.to_ascii_lowercase();
        if lower.is_empty() {
            return Err(o.invalid(&field, "option names must not be empty"));
        }
        if options.insert(lower, value.0).is_some() {
            return Err(o.invalid(&field, "given twice (option names are case-insensitive)"));
        }
    }
    Ok(StorageConfig { url, options })
}

fn slack(raw: RawSlack, o: &Origins) -> Result<SlackConfig> {
    let gov = raw.gov.unwrap_or(false);
    let default_api = if gov { defaults::GOV_API_URL } else { defaults::API_URL };
    // Whoever may edit the deployment's environment (or a ConfigMap feeding it) but not read
    // the token's Secret must not be able to send the token elsewhere: the opt-in counts only
    // when written in the file.
    let allow_custom_hosts = raw.allow_custom_hosts.unwrap_or(false);
    if allow_custom_hosts && let Some(var) = o.env_var_for("slack.allow_custom_hosts") {
        return Err(o.invalid(
            "slack.allow_custom_hosts",
            format!(
                "can only be set in the configuration file, not by an environment override ({var}); \
                 it decides where the Slack token may be sent"
            ),
        ));
    }
    let api_url = raw.api_url.as_deref().unwrap_or(default_api);
    let api_url = slack::api_url(api_url, allow_custom_hosts).map_err(|m| o.invalid("slack.api_url", m))?;
    let optional_url = |field: &str, value: Option<String>| -> Result<Option<url::Url>> {
        match value.filter(|v| !v.trim().is_empty()) {
            None => Ok(None),
            Some(v) => slack::api_url(&v, allow_custom_hosts).map(Some).map_err(|m| o.invalid(field, m)),
        }
    };
    let scim_url = optional_url("slack.scim_url", raw.scim_url)?;
    let audit_url = optional_url("slack.audit_url", raw.audit_url)?;

    let token = match (raw.token_env, raw.token_file) {
        (Some(_), Some(_)) => {
            return Err(o.invalid("slack.token_file", "set only one of slack.token_env and slack.token_file"));
        }
        (_, Some(file)) => {
            if file.trim().is_empty() {
                return Err(o.invalid("slack.token_file", "must not be empty"));
            }
            TokenSource::File(PathBuf::from(file))
        }
        (env, None) => {
            let name = env.unwrap_or_else(|| defaults::TOKEN_ENV.to_owned());
            if !is_env_name(&name) {
                return Err(o.invalid(
                    "slack.token_env",
                    format!(
                        "`{name}` is not an environment variable name (letters, digits and _, \
                         not starting with a digit); it names the variable holding the token, \
                         not the token itself"
                    ),
                ));
            }
            TokenSource::Env(name)
        }
    };

    let names = raw.sources.unwrap_or_else(|| defaults::SOURCES.iter().map(|s| (*s).to_owned()).collect());
    let auto_sources = names.iter().any(|n| n == "auto");
    if auto_sources && names.len() > 1 {
        return Err(o.invalid("slack.sources", "`auto` stands alone: write either \"auto\" or a list of sources"));
    }
    let names: Vec<String> =
        if auto_sources { Source::ALL.iter().map(|s| s.as_str().to_owned()).collect() } else { names };
    let mut sources = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let field = format!("slack.sources[{i}]");
        let src: Source = name.parse().map_err(|e| o.invalid(&field, format!("{e}")))?;
        if sources.contains(&src) {
            return Err(o.invalid(&field, format!("`{src}` is listed twice")));
        }
        sources.push(src);
    }
    if sources.is_empty() {
        return Err(o.invalid("slack.sources", "must be \"auto\" or name at least one source (users, access_logs, …)"));
    }

    let request_timeout = duration(o, "slack.request_timeout", raw.request_timeout, defaults::REQUEST_TIMEOUT)?;
    if request_timeout.is_zero() {
        return Err(o.invalid("slack.request_timeout", "must be greater than zero"));
    }
    let run_deadline = duration(o, "slack.run_deadline", raw.run_deadline, defaults::RUN_DEADLINE)?;
    if run_deadline.is_zero() || run_deadline > Duration::from_secs(defaults::MAX_RUN_DEADLINE_SECS) {
        return Err(o.invalid(
            "slack.run_deadline",
            format!(
                "must be greater than zero and at most 24h: it bounds how long a run's Slack calls may \
                 hold the lake, whose lease is renewed while the run lives (got {})",
                humantime::format_duration(run_deadline)
            ),
        ));
    }

    Ok(SlackConfig {
        api_url,
        token,
        sources,
        auto_sources,
        gov,
        scim_url,
        audit_url,
        allow_custom_hosts,
        users_page_size: int(o, "slack.users_page_size", raw.users_page_size, defaults::USERS_PAGE_SIZE, 1, 1000)?,
        access_logs_page_size: int(
            o,
            "slack.access_logs_page_size",
            raw.access_logs_page_size,
            defaults::ACCESS_LOGS_PAGE_SIZE,
            1,
            1000,
        )?,
        access_logs_overlap: duration(
            o,
            "slack.access_logs_overlap",
            raw.access_logs_overlap,
            defaults::ACCESS_LOGS_OVERLAP,
        )?,
        request_timeout,
        concurrency: int(o, "slack.concurrency", raw.concurrency, defaults::CONCURRENCY, 1, 64)?,
        run_deadline,
        retry: retry(raw.retry.unwrap_or_default(), o, "slack")?,
        rate_limits: rate_limits(raw.rate_limits.unwrap_or_default(), o)?,
    })
}

/// `[<app>.retry]` (`slack`, `okta`).
fn retry(raw: RawRetry, o: &Origins, app: &str) -> Result<RetryConfig> {
    let max_attempts =
        int(o, &format!("{app}.retry.max_attempts"), raw.max_attempts, defaults::MAX_ATTEMPTS, 1, i64::from(u32::MAX))?;
    let initial_backoff =
        duration(o, &format!("{app}.retry.initial_backoff"), raw.initial_backoff, defaults::INITIAL_BACKOFF)?;
    let max_backoff = duration(o, &format!("{app}.retry.max_backoff"), raw.max_backoff, defaults::MAX_BACKOFF)?;
    if max_backoff < initial_backoff {
        return Err(o.invalid(
            &format!("{app}.retry.max_backoff"),
            format!(
                "must be at least {app}.retry.initial_backoff ({} < {})",
                humantime::format_duration(max_backoff),
                humantime::format_duration(initial_backoff)
            ),
        ));
    }
    let min_retry_after =
        duration(o, &format!("{app}.retry.min_retry_after"), raw.min_retry_after, defaults::MIN_RETRY_AFTER)?;
    let max_retry_after =
        duration(o, &format!("{app}.retry.max_retry_after"), raw.max_retry_after, defaults::MAX_RETRY_AFTER)?;
    if max_retry_after < min_retry_after {
        return Err(o.invalid(
            &format!("{app}.retry.max_retry_after"),
            format!(
                "must be at least {app}.retry.min_retry_after ({} < {})",
                humantime::format_duration(max_retry_after),
                humantime::format_duration(min_retry_after)
            ),
        ));
    }
    let rate_limit_budget =
        duration(o, &format!("{app}.retry.rate_limit_budget"), raw.rate_limit_budget, defaults::RATE_LIMIT_BUDGET)?;
    Ok(RetryConfig { max_attempts, initial_backoff, max_backoff, min_retry_after, max_retry_after, rate_limit_budget })
}

fn rate_limits(raw: RawRateLimits, o: &Origins) -> Result<RateLimitConfig> {
    let given = [raw.tier1, raw.tier2, raw.tier3, raw.tier4];
    let mut per_minute = [0u32; 4];
    for (i, slot) in per_minute.iter_mut().enumerate() {
        // Zero would be a budget that never refills: every call of that tier would hang.
        *slot =
            int(o, &format!("slack.rate_limits.tier{}", i + 1), given[i], defaults::TIERS[i], 1, i64::from(u32::MAX))?;
    }
    Ok(RateLimitConfig { enabled: raw.enabled.unwrap_or(defaults::RATE_LIMITS_ENABLED), per_minute })
}

fn okta(raw: RawOkta, o: &Origins) -> Result<OktaConfig> {
    // As for Slack: whoever may edit the environment but not read the token's Secret must not
    // be able to send the token to another host.
    let allow_custom_hosts = raw.allow_custom_hosts.unwrap_or(false);
    if allow_custom_hosts && let Some(var) = o.env_var_for("okta.allow_custom_hosts") {
        return Err(o.invalid(
            "okta.allow_custom_hosts",
            format!(
                "can only be set in the configuration file, not by an environment override ({var}); \
                 it decides where the Okta token may be sent"
            ),
        ));
    }
    let Some(url) = raw.org_url.filter(|u| !u.trim().is_empty()) else {
        return Err(
            o.invalid("okta.org_url", "is required in [okta]: the org's address, such as https://acme.okta.com")
        );
    };
    let org_url = okta::org_url(&url, allow_custom_hosts).map_err(|m| o.invalid("okta.org_url", m))?;
    let credentials = match raw.client_id {
        Some(client_id) => {
            if raw.token_env.is_some() || raw.token_file.is_some() {
                return Err(o.invalid(
                    "okta.client_id",
                    "set either an API token (token_env or token_file) or OAuth (client_id and private_key_file), \
                     not both",
                ));
            }
            let valid =
                !client_id.is_empty() && client_id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !valid {
                return Err(
                    o.invalid("okta.client_id", format!("`{client_id}` is not an Okta client id such as 0oa1b2c3d4"))
                );
            }
            let Some(key) = raw.private_key_file.filter(|k| !k.trim().is_empty()) else {
                return Err(o.invalid(
                    "okta.private_key_file",
                    "is required with okta.client_id: the PKCS#8 PEM private key whose public key the service app holds",
                ));
            };
            let scopes = raw.scopes.unwrap_or_else(|| defaults::OKTA_SCOPES.iter().map(|s| (*s).to_owned()).collect());
            if scopes.is_empty() || scopes.iter().any(|s| !s.starts_with("okta.") || s.contains(char::is_whitespace)) {
                return Err(
                    o.invalid("okta.scopes", "must list Okta scopes such as \"okta.users.read\", \"okta.logs.read\"")
                );
            }
            OktaCredentials::PrivateKeyJwt { client_id, private_key: PathBuf::from(key), key_id: raw.key_id, scopes }
        }
        None => {
            for (field, given) in [
                ("okta.private_key_file", raw.private_key_file.is_some()),
                ("okta.key_id", raw.key_id.is_some()),
                ("okta.scopes", raw.scopes.is_some()),
            ] {
                if given {
                    return Err(o.invalid(field, "is an OAuth setting: it needs okta.client_id"));
                }
            }
            OktaCredentials::ApiToken(match (raw.token_env, raw.token_file) {
                (Some(_), Some(_)) => {
                    return Err(o.invalid("okta.token_file", "set only one of okta.token_env and okta.token_file"));
                }
                (_, Some(file)) if file.trim().is_empty() => {
                    return Err(o.invalid("okta.token_file", "must not be empty"));
                }
                (_, Some(file)) => TokenSource::File(PathBuf::from(file)),
                (env, None) => {
                    let name = env.unwrap_or_else(|| defaults::OKTA_TOKEN_ENV.to_owned());
                    if !is_env_name(&name) {
                        return Err(o.invalid(
                            "okta.token_env",
                            format!(
                                "`{name}` is not an environment variable name (letters, digits and _, not starting \
                                 with a digit); it names the variable holding the API token, not the token itself"
                            ),
                        ));
                    }
                    TokenSource::Env(name)
                }
            })
        }
    };
    let names = raw.sources.unwrap_or_else(|| defaults::OKTA_SOURCES.iter().map(|s| (*s).to_owned()).collect());
    let mut sources = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let field = format!("okta.sources[{i}]");
        let src: OktaSource = name.parse().map_err(|e: String| o.invalid(&field, e))?;
        if sources.contains(&src) {
            return Err(o.invalid(&field, format!("`{src}` is listed twice")));
        }
        sources.push(src);
    }
    if sources.is_empty() {
        return Err(o.invalid("okta.sources", "must name at least one source (users, logs)"));
    }
    let event_types =
        raw.event_types.unwrap_or_else(|| defaults::OKTA_EVENT_TYPES.iter().map(|s| (*s).to_owned()).collect());
    for (i, t) in event_types.iter().enumerate() {
        // An event type goes into a SCIM filter between quotes: only its documented alphabet.
        let valid = !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !valid {
            return Err(o.invalid(
                &format!("okta.event_types[{i}]"),
                format!("`{t}` is not an Okta event type such as \"user.session.start\""),
            ));
        }
    }
    if event_types.is_empty() {
        return Err(o.invalid("okta.event_types", "must name at least one event type, such as \"user.session.start\""));
    }
    let apps = match raw.apps {
        None => BTreeMap::from([("slack".to_owned(), vec!["Slack".to_owned()])]),
        Some(apps) => apps,
    };
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for (app, names) in &apps {
        let field = format!("okta.apps.{app}");
        let valid = !app.is_empty() && app.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid {
            return Err(o.invalid(&field, format!("`{app}` is not a lastseen app name (a-z, 0-9, _), such as slack")));
        }
        for n in names {
            if n.trim().is_empty() {
                return Err(o.invalid(&field, "an app-instance label or id must not be empty"));
            }
            if let Some(other) = seen.insert(n, app) {
                return Err(o.invalid(&field, format!("`{n}` already stands for app `{other}`")));
            }
        }
    }
    let request_timeout = duration(o, "okta.request_timeout", raw.request_timeout, defaults::REQUEST_TIMEOUT)?;
    if request_timeout.is_zero() {
        return Err(o.invalid("okta.request_timeout", "must be greater than zero"));
    }
    let run_deadline = duration(o, "okta.run_deadline", raw.run_deadline, defaults::RUN_DEADLINE)?;
    if run_deadline.is_zero() || run_deadline > Duration::from_secs(defaults::MAX_RUN_DEADLINE_SECS) {
        return Err(o.invalid(
            "okta.run_deadline",
            format!("must be greater than zero and at most 24h (got {})", humantime::format_duration(run_deadline)),
        ));
    }
    Ok(OktaConfig {
        org_url,
        allow_custom_hosts,
        credentials,
        sources,
        users_page_size: int(o, "okta.users_page_size", raw.users_page_size, defaults::OKTA_USERS_PAGE_SIZE, 1, 200)?,
        logs_page_size: int(o, "okta.logs_page_size", raw.logs_page_size, defaults::OKTA_LOGS_PAGE_SIZE, 1, 1000)?,
        logs_overlap: duration(o, "okta.logs_overlap", raw.logs_overlap, defaults::OKTA_LOGS_OVERLAP)?,
        logs_lag: duration(o, "okta.logs_lag", raw.logs_lag, defaults::OKTA_LOGS_LAG)?,
        logs_first_run_days: int(
            o,
            "okta.logs_first_run_days",
            raw.logs_first_run_days,
            defaults::OKTA_LOGS_FIRST_RUN_DAYS,
            1,
            i64::from(OKTA_LOG_RETENTION_DAYS),
        )?,
        event_types,
        apps,
        request_timeout,
        run_deadline,
        retry: retry(raw.retry.unwrap_or_default(), o, "okta")?,
    })
}

/// Applies the default and checks `lo..=hi`. A `hi` of the target type's maximum is treated as
/// "no upper bound" in the message.
fn int<T: TryFrom<i64>>(o: &Origins, field: &str, value: Option<Int>, default: i64, lo: i64, hi: i64) -> Result<T> {
    let v = value.map_or(default, |i| i.0);
    if v < lo || v > hi {
        let msg = if hi == i64::from(u32::MAX) {
            format!("must be at least {lo} (got {v})")
        } else {
            format!("must be between {lo} and {hi} (got {v})")
        };
        return Err(o.invalid(field, msg));
    }
    T::try_from(v).map_err(|_| o.invalid(field, format!("out of range (got {v})")))
}

fn duration(o: &Origins, field: &str, value: Option<DurationText>, default: &str) -> Result<Duration> {
    let text = value.as_ref().map_or(default, |d| d.0.as_str());
    humantime::parse_duration(text.trim()).map_err(|e| {
        o.invalid(field, format!("`{text}` is not a duration ({e}); write e.g. \"500ms\", \"60s\", \"15m\", \"1d\""))
    })
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
