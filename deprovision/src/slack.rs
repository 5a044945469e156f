//! The live side: what Slack says about an account now (SCIM `GET /Users/{id}` and
//! `users.info`), and the one write deprovisioning makes (`PATCH active`), through ingest's
//! client (token only in a sensitive header, host allow-list, https or loopback only).

use std::sync::Arc;
use std::time::Duration;

use lastseen_config::SlackConfig;
use lastseen_ingest::{AuthInfo, IngestError, RestAnswer, SlackClient};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use url::Url;

use crate::error::{DeprovisionError, Result};

/// What Slack says about one account, read live.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveAccount {
    /// Found by SCIM (people) or users.info (bots, apps and Slackbot too).
    pub found: bool,
    /// SCIM `active`, or `!deleted` from users.info when SCIM does not list the account.
    pub active: bool,
    pub is_primary_owner: bool,
    pub is_owner: bool,
    pub is_admin: bool,
    pub is_bot: bool,
    pub is_app_user: bool,
    /// SCIM `externalId`: set by the IdP that provisioned the account.
    pub external_id: Option<String>,
}

/// The SCIM call for one (de)activation, as the plan records it and apply sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Call {
    pub method: String,
    /// Relative to the SCIM base: `Users/<id>`.
    pub path: String,
    pub body: Value,
}

impl Call {
    /// v2 `PatchOp` replacing `active`; v1.1 (GovSlack) a partial resource (docs.slack.dev/
    /// reference/scim-api).
    pub fn set_active(account: &str, active: bool, v1: bool) -> Call {
        let body = if v1 {
            json!({"schemas": ["urn:scim:schemas:core:1.0"], "active": active})
        } else {
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                   "Operations": [{"op": "replace", "path": "active", "value": active}]})
        };
        Call { method: "PATCH".into(), path: format!("Users/{account}"), body }
    }
}

pub const SCIM_LABEL: &str = "scim.Users";

/// A connected Slack: the client, who the token is, and where SCIM lives.
pub struct Slack {
    pub client: Arc<SlackClient>,
    pub auth: AuthInfo,
    pub scim_base: Url,
    /// GovSlack: SCIM v1.1.
    pub v1: bool,
}

impl std::fmt::Debug for Slack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slack").field("scim_base", &self.scim_base.as_str()).field("v1", &self.v1).finish()
    }
}

impl Slack {
    pub async fn connect(cfg: &SlackConfig, client: Arc<SlackClient>) -> Result<Slack> {
        let auth = client.auth_test().await?;
        Ok(Slack { client, auth, scim_base: cfg.scim_base(), v1: cfg.gov })
    }

    fn user_url(&self, account: &str) -> Result<Url> {
        let ok = !account.is_empty() && account.bytes().all(|b| b.is_ascii_alphanumeric());
        if !ok {
            return Err(DeprovisionError::Usage(format!("`{account}` is not a Slack user id")));
        }
        self.scim_base
            .join(&format!("Users/{account}"))
            .map_err(|e| DeprovisionError::Usage(format!("building the SCIM URL for {account}: {e}")))
    }

    /// SCIM and users.info about `account`; `workspace` is its workspace (Grid org tokens
    /// need `team_id` for users.info).
    pub async fn read(&self, account: &str, workspace: Option<&str>) -> Result<LiveAccount> {
        let url = self.user_url(account)?;
        let mut live = LiveAccount::default();
        match self.client.get_rest::<Value>(SCIM_LABEL, None, &url).await {
            Ok(user) => {
                live.found = true;
                live.active = user.get("active").and_then(Value::as_bool).unwrap_or(false);
                live.external_id =
                    user.get("externalId").and_then(Value::as_str).filter(|s| !s.trim().is_empty()).map(str::to_owned);
            }
            Err(IngestError::RestApi { status: 404, .. } | IngestError::Http { status: 404, .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let mut params = vec![("user", account.to_owned())];
        if self.auth.is_enterprise_install
            && let Some(ws) = workspace
        {
            params.push(("team_id", ws.to_owned()));
        }
        match self.client.call::<Value>("users.info", workspace, &params).await {
            Ok(v) => {
                let u = &v["user"];
                let flag = |k: &str| u.get(k).and_then(Value::as_bool).unwrap_or(false);
                live.is_primary_owner = flag("is_primary_owner");
                live.is_owner = flag("is_owner");
                live.is_admin = flag("is_admin");
                live.is_bot = flag("is_bot") || account == "USLACKBOT";
                live.is_app_user = flag("is_app_user");
                if !live.found {
                    // SCIM lists people only; bots are known to users.info.
                    live.found = true;
                    live.active = !flag("deleted");
                }
            }
            Err(e) if e.slack_code() == Some("user_not_found") => {}
            Err(e) => return Err(e.into()),
        }
        Ok(live)
    }

    /// Sends one call, once. The caller owns retries.
    pub async fn send(&self, call: &Call) -> Result<RestAnswer> {
        let url = self
            .scim_base
            .join(&call.path)
            .map_err(|e| DeprovisionError::Usage(format!("building the SCIM URL {}: {e}", call.path)))?;
        let method = reqwest::Method::from_bytes(call.method.as_bytes())
            .map_err(|_| DeprovisionError::Usage(format!("`{}` is not an HTTP method", call.method)))?;
        Ok(self.client.send_rest_once(SCIM_LABEL, method, &url, Some(&call.body)).await?)
    }

    /// 429 answers SCIM gave this process so far.
    pub fn rate_limited(&self) -> u64 {
        self.client.stats(SCIM_LABEL).rate_limited
    }
}

/// Paces writes: at most `per_minute`, bursts of `burst`; a 429's `Retry-After` pauses it.
#[derive(Debug)]
pub struct WriteBudget {
    interval: Duration,
    burst: f64,
    tokens: f64,
    last: tokio::time::Instant,
}

impl WriteBudget {
    pub fn new(per_minute: u32, burst: u32) -> WriteBudget {
        let per_minute = per_minute.max(1);
        WriteBudget {
            interval: Duration::from_secs_f64(60.0 / f64::from(per_minute)),
            burst: f64::from(burst.max(1)),
            tokens: f64::from(burst.max(1)),
            last: tokio::time::Instant::now(),
        }
    }

    pub async fn acquire(&mut self) {
        loop {
            let now = tokio::time::Instant::now();
            let refill = now.duration_since(self.last).as_secs_f64() / self.interval.as_secs_f64();
            self.tokens = (self.tokens + refill).min(self.burst);
            self.last = now;
            if self.tokens >= 1.0 {
                self.tokens -= 1.0;
                return;
            }
            tokio::time::sleep(self.interval.mul_f64(1.0 - self.tokens)).await;
        }
    }

    /// Slack said wait: no write before `wait` has passed, and no burst after it.
    pub async fn pause(&mut self, wait: Duration) {
        tokio::time::sleep(wait).await;
        self.tokens = 0.0;
        self.last = tokio::time::Instant::now();
    }
}
