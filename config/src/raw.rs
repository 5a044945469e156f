//! `RawConfig`: the TOML shape exactly as written (every key optional, unknown keys rejected),
//! before defaults are applied and values are checked.
//!
//! Integers are kept as `i64` and durations as strings so that range and format problems are
//! reported by validation with a readable message ("must be between 1 and 1000 (got 5000)")
//! rather than by serde's type errors.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};

/// The whole file. All sections are optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub storage: Option<RawStorage>,
    pub slack: Option<RawSlack>,
    pub reports: Option<RawReports>,
    pub lake: Option<RawLake>,
    pub identities: Option<RawIdentities>,
    pub correlation: Option<RawCorrelation>,
    pub daemon: Option<RawDaemon>,
    pub serve: Option<RawServe>,
    pub okta: Option<RawOkta>,
}

/// `[okta]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOkta {
    pub org_url: Option<String>,
    /// Lets `org_url` name a host other than Okta's (a custom URL domain). Honoured only from
    /// the file, never from an environment override.
    pub allow_custom_hosts: Option<bool>,
    pub token_env: Option<String>,
    pub token_file: Option<String>,
    /// OAuth 2.0 client credentials with a private key (private_key_jwt).
    pub client_id: Option<String>,
    pub private_key_file: Option<String>,
    pub key_id: Option<String>,
    #[serde(default, deserialize_with = "sources")]
    pub scopes: Option<Vec<String>>,
    #[serde(default, deserialize_with = "sources")]
    pub sources: Option<Vec<String>>,
    pub users_page_size: Option<Int>,
    pub logs_page_size: Option<Int>,
    pub logs_overlap: Option<DurationText>,
    pub logs_lag: Option<DurationText>,
    pub logs_first_run_days: Option<Int>,
    #[serde(default, deserialize_with = "sources")]
    pub event_types: Option<Vec<String>>,
    /// `[okta.apps]`: lastseen app → Okta app-instance labels or ids.
    pub apps: Option<BTreeMap<String, Vec<String>>>,
    pub request_timeout: Option<DurationText>,
    pub run_deadline: Option<DurationText>,
    pub retry: Option<RawRetry>,
}

/// `[serve]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServe {
    pub listen: Option<String>,
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    pub users: Option<Vec<RawServeUser>>,
    pub max_connections: Option<Int>,
    pub query_memory_mb: Option<Int>,
    pub query_timeout: Option<DurationText>,
    pub refresh: Option<DurationText>,
    pub in_daemon: Option<bool>,
}

/// `[[serve.users]]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServeUser {
    pub name: Option<String>,
    pub password_env: Option<String>,
    pub password_file: Option<String>,
}

/// `[daemon]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDaemon {
    pub schedule: Option<String>,
    pub timezone: Option<String>,
    pub listen: Option<String>,
    pub catch_up_days: Option<Int>,
    pub shutdown_grace: Option<DurationText>,
}

/// `[storage]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStorage {
    pub url: Option<String>,
    pub options: Option<BTreeMap<String, OptionValue>>,
}

/// `[slack]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSlack {
    pub api_url: Option<String>,
    pub gov: Option<bool>,
    pub scim_url: Option<String>,
    pub audit_url: Option<String>,
    /// Lets `api_url`, `scim_url` and `audit_url` name hosts other than Slack's (a proxy).
    /// Honoured only from the file, never from an environment override.
    pub allow_custom_hosts: Option<bool>,
    pub token_env: Option<String>,
    pub token_file: Option<String>,
    #[serde(default, deserialize_with = "sources")]
    pub sources: Option<Vec<String>>,
    pub users_page_size: Option<Int>,
    pub access_logs_page_size: Option<Int>,
    pub access_logs_overlap: Option<DurationText>,
    pub request_timeout: Option<DurationText>,
    pub concurrency: Option<Int>,
    pub run_deadline: Option<DurationText>,
    pub retry: Option<RawRetry>,
    pub rate_limits: Option<RawRateLimits>,
}

/// `[slack.retry]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetry {
    pub max_attempts: Option<Int>,
    pub initial_backoff: Option<DurationText>,
    pub max_backoff: Option<DurationText>,
    pub min_retry_after: Option<DurationText>,
    pub max_retry_after: Option<DurationText>,
    pub rate_limit_budget: Option<DurationText>,
}

/// `[slack.rate_limits]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRateLimits {
    pub enabled: Option<bool>,
    pub tier1: Option<Int>,
    pub tier2: Option<Int>,
    pub tier3: Option<Int>,
    pub tier4: Option<Int>,
}

/// `[reports]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReports {
    pub dormant_days: Option<Int>,
}

/// `[lake]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLake {
    pub max_snapshot_drop: Option<Number>,
    pub retention_max_drop: Option<Number>,
    pub stage_memory_mb: Option<Int>,
    pub derive_memory_mb: Option<Int>,
    /// How long superseded files stay before `vacuum` deletes them, e.g. "7d".
    pub keep_superseded: Option<DurationText>,
    /// Expiry of the lake lease (renewed by a heartbeat), e.g. "2m".
    pub lease_ttl: Option<DurationText>,
    /// How long each table's Delta log keeps old entries (time travel), e.g. "30d".
    pub delta_log_retention: Option<DurationText>,
    /// `[lake.retention]`: table name → days kept. Names are checked during validation so the
    /// error can list the known tables.
    pub retention: Option<BTreeMap<String, Int>>,
}

/// `[identities]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIdentities {
    pub url: Option<String>,
    pub format: Option<String>,
    pub delimiter: Option<String>,
    pub list_separator: Option<String>,
    pub date_format: Option<String>,
    /// `[identities.columns]`: attribute → column name ("" = the file has none).
    pub columns: Option<RawIdentityColumns>,
}

/// `[identities.columns]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIdentityColumns {
    pub identity_id: Option<String>,
    pub email: Option<String>,
    pub alternate_emails: Option<String>,
    pub username: Option<String>,
    pub employee_id: Option<String>,
    pub display_name: Option<String>,
    pub department: Option<String>,
    pub manager: Option<String>,
    pub status: Option<String>,
    pub termination_date: Option<String>,
    pub employee_type: Option<String>,
}

/// `[correlation]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCorrelation {
    pub rules: Option<Vec<RawRule>>,
    pub domain_aliases: Option<BTreeMap<String, String>>,
    pub overrides: Option<String>,
}

/// One `[[correlation.rules]]` entry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    pub account: String,
    pub identity: String,
    pub normalize: Option<Vec<String>>,
}

/// A `[storage.options]` value. object_store wants strings, but people naturally write
/// `aws_allow_http = true`, and an env override of `true` arrives as a TOML bool, so scalars are
/// accepted and turned into their string form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionValue(pub String);

impl<'de> Deserialize<'de> for OptionValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = OptionValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(OptionValue(v.to_owned()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(OptionValue(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(OptionValue(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(OptionValue(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(OptionValue(v.to_string()))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// An integer field. Kept wide so range errors can quote the value; a dedicated type only so
/// type errors say "an integer" rather than serde's "i64".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Int(pub i64);

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Int;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an integer")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                i64::try_from(v).map(Int).map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }
        }
        deserializer.deserialize_i64(V)
    }
}

/// A number field that may be written as an integer (`1`) or a float (`0.2`); range-checked
/// during validation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Number(pub f64);

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Number;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number such as 0.2")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Number(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Number(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Number(v as f64))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// A humantime duration as written (`"500ms"`, `"15m"`, `"1d"`); parsed during validation. A
/// bare number is refused rather than guessed at, since its unit would be ambiguous.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationText(pub String);

impl<'de> Deserialize<'de> for DurationText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = DurationText;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration string with a unit, such as \"500ms\", \"60s\" or \"1d\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(DurationText(v.to_owned()))
            }
        }
        deserializer.deserialize_str(V)
    }
}

/// `sources` as an array of names, or as one comma-separated string, which is the convenient
/// form for `LASTSEEN_SLACK__SOURCES=users,access_logs`.
fn sources<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Vec<String>>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("\"auto\" or an array of source names such as [\"users\", \"access_logs\"]")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(name) = seq.next_element::<String>()? {
                out.push(name);
            }
            Ok(out)
        }
    }
    deserializer.deserialize_any(V).map(Some)
}
