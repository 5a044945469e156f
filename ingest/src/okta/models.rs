//! The Okta `User` and `LogEvent` fields a collector needs, as serde models.
//!
//! Every attribute but the identifiers and timestamps Okta documents as always present is an
//! `Option`: Okta's own examples send `null` even where the OpenAPI schema does not say
//! nullable (`outcome.reason`, `client.zone`, `detailEntry` in the spec's ListLogs example),
//! and every LogEvent attribute beyond `uuid`, `published`, `eventType`, `version` and
//! `severity` is optional (System Log API, "LogEvent object annotated example"). Unknown keys
//! are ignored: Okta adds attributes over time (`device`, `securityContext.risk`, …).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};

/// One element of `GET /api/v1/users` (schema `User`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OktaUser {
    pub id: String,
    /// `UserStatus`: STAGED, PROVISIONED, ACTIVE, RECOVERY, PASSWORD_EXPIRED, LOCKED_OUT,
    /// SUSPENDED, DEPROVISIONED; kept as text so a status Okta adds later still loads.
    pub status: String,
    pub created: DateTime<Utc>,
    /// "The timestamp when the user status transitioned to `ACTIVE`"; null for STAGED and
    /// PROVISIONED users.
    #[serde(default)]
    pub activated: Option<DateTime<Utc>>,
    /// "The timestamp of the last login"; null for a user who never signed in.
    #[serde(default)]
    pub last_login: Option<DateTime<Utc>>,
    #[serde(default)]
    pub status_changed: Option<DateTime<Utc>>,
    #[serde(default)]
    pub last_updated: Option<DateTime<Utc>>,
    pub profile: OktaUserProfile,
}

/// `UserProfile`: the fields correlation and reports use.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OktaUserProfile {
    #[serde(default)]
    pub login: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub employee_number: Option<String>,
    #[serde(default)]
    pub department: Option<String>,
    /// "The `displayName` of the user's manager".
    #[serde(default)]
    pub manager: Option<String>,
    /// "The `id` of the user's manager".
    #[serde(default)]
    pub manager_id: Option<String>,
    /// "The type of user": employee, contractor, … (free text).
    #[serde(default)]
    pub user_type: Option<String>,
}

/// One element of `GET /api/v1/logs` (schema `LogEvent`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogEvent {
    /// "Unique identifier for an individual event": the dedup key.
    pub uuid: String,
    pub published: DateTime<Utc>,
    pub event_type: String,
    #[serde(default)]
    pub actor: Option<LogActor>,
    /// "Zero or more targets"; absent or null reads as none. Search it by `type`: "Target types
    /// … for a given eventType are not always in the same array location".
    #[serde(default, deserialize_with = "null_as_empty")]
    pub target: Vec<LogTarget>,
    #[serde(default)]
    pub outcome: Option<LogOutcome>,
    #[serde(default)]
    pub client: Option<LogClient>,
}

impl LogEvent {
    /// The first target of a type (`AppInstance`, `User`, …).
    pub fn target_of_type(&self, kind: &str) -> Option<&LogTarget> {
        self.target.iter().find(|t| t.kind.as_deref() == Some(kind))
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogActor {
    pub id: String,
    /// `User`, or a non-user actor such as `SystemPrincipal`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub alternate_id: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogTarget {
    pub id: String,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub alternate_id: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct LogOutcome {
    /// SUCCESS, FAILURE, … (`LogOutcome.result`).
    #[serde(default)]
    pub result: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogClient {
    #[serde(default)]
    pub ip_address: Option<String>,
    #[serde(default)]
    pub device: Option<String>,
    #[serde(default)]
    pub user_agent: Option<LogUserAgent>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogUserAgent {
    #[serde(default)]
    pub raw_user_agent: Option<String>,
    #[serde(default)]
    pub os: Option<String>,
    #[serde(default)]
    pub browser: Option<String>,
}

fn null_as_empty<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}
