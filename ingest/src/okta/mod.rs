//! Okta as an app: its client on the generic HTTP layer ([`client`]; an API token or OAuth with a
//! private key, [`oauth`]), and two sources behind
//! [`OktaApp`] — `okta_users` (`/api/v1/users`, the account snapshot, required) and
//! `okta_logs` (the System Log, `/api/v1/logs`, incremental and backfillable within 90 days) —
//! whose rows fill the lake's `okta_users` and `okta_log_events` tables. The serde models are
//! checked against Okta's published contract.
//!
//! ```text
//! okta_app(cfg) ──▶ OktaApp::connect() (one users call: the token works) ──▶ Connected { sources }
//!   okta_users ─▶ /api/v1/users (+ DEPROVISIONED) ─▶ okta_users rows
//!   okta_logs  ─▶ /api/v1/logs bounded [wm − overlap, min(now, day end) − lag) ─▶ okta_log_events rows + okta.logs
//! ```

pub mod client;
pub mod logs;
pub mod models;
pub mod oauth;
pub mod users;

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::FutureExt;
use futures::future::BoxFuture;
use futures::stream::{self, BoxStream, StreamExt};
use lastseen_config::{OKTA_API_TOKEN, OktaConfig, OktaCredentials, OktaSource};
use lastseen_lake::SourceReport;
use secrecy::SecretString;
use serde::de::DeserializeOwned;
use url::Url;

pub use client::{LOGS, OktaClient, OktaRules, USERS};
pub use logs::{LogsSource, WATERMARK};
pub use users::UsersSource;

use crate::error::{IngestError, Result};
use crate::source::{App, AppSource, Connected, SourceInfo};

/// What "now" is for the System Log windows: the wall clock, or a simulator's clock in tests.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The Okta app of a run.
pub struct OktaApp {
    cfg: Arc<OktaConfig>,
    client: Arc<OktaClient>,
    now: Clock,
}

impl OktaApp {
    /// An app for `cfg` with the API `token`; the wall clock decides the windows.
    pub fn new(cfg: &OktaConfig, token: SecretString) -> Result<OktaApp> {
        Ok(OktaApp {
            cfg: Arc::new(cfg.clone()),
            client: Arc::new(OktaClient::new(cfg, token)?),
            now: Arc::new(Utc::now),
        })
    }

    /// An app authenticating as a service app (OAuth 2.0 client credentials, private_key_jwt):
    /// `cfg.credentials` must be [`OktaCredentials::PrivateKeyJwt`]; the key is read now.
    pub fn with_oauth(cfg: &OktaConfig) -> Result<OktaApp> {
        let OktaCredentials::PrivateKeyJwt { client_id, private_key, key_id, scopes } = &cfg.credentials else {
            return Err(IngestError::Setup("okta: OAuth needs okta.client_id and okta.private_key_file".into()));
        };
        let oauth = oauth::OAuthClient::new(
            &cfg.org_url,
            client_id,
            key_id.as_deref(),
            scopes,
            private_key,
            cfg.request_timeout,
        )?;
        Ok(OktaApp {
            cfg: Arc::new(cfg.clone()),
            client: Arc::new(OktaClient::with_oauth(cfg, oauth)?),
            now: Arc::new(Utc::now),
        })
    }

    /// The same app reading "now" from `now` (a simulator's clock).
    pub fn with_clock(mut self, now: Clock) -> OktaApp {
        self.now = now;
        self
    }

    pub fn client(&self) -> &Arc<OktaClient> {
        &self.client
    }

    /// The configured sources, built without a call (what [`App::connect`] hands over).
    pub fn built_sources(&self) -> Vec<Box<dyn AppSource>> {
        self.cfg.sources.iter().map(|s| self.source(*s)).collect()
    }

    fn source(&self, s: OktaSource) -> Box<dyn AppSource> {
        match s {
            OktaSource::Users => Box::new(UsersSource::new(Arc::clone(&self.client), self.cfg.users_page_size)),
            OktaSource::Logs => {
                Box::new(LogsSource::new(Arc::clone(&self.client), Arc::clone(&self.cfg), Arc::clone(&self.now)))
            }
        }
    }
}

impl App for OktaApp {
    fn name(&self) -> &'static str {
        "okta"
    }

    /// One cheap call (`/api/v1/users?limit=1`): a rejected token fails here, naming Okta's
    /// error code and where the token came from.
    /// Every Okta source, configured or not, described without a call (the backfill plans with
    /// it; the daily run checks the required one is enabled).
    fn sources(&self) -> Vec<SourceInfo> {
        OktaSource::ALL
            .iter()
            .map(|s| {
                let built = self.source(*s);
                SourceInfo {
                    name: built.name(),
                    enabled: self.cfg.sources.contains(s),
                    required: built.required(),
                    history: built.history(),
                }
            })
            .collect()
    }

    fn connect(&self) -> BoxFuture<'_, Result<Connected>> {
        async move {
            let url = self.client.url("api/v1/users", &[("limit", "1".to_owned())])?;
            self.client.page::<models::OktaUser>(USERS, &url).await?;
            Ok(Connected {
                sources: self.built_sources(),
                warnings: Vec::new(),
                describe: format!("Okta org {} ({})", self.cfg.org_url, self.cfg.credentials.describe()),
            })
        }
        .boxed()
    }

    fn report(&self, methods: &[&str]) -> SourceReport {
        self.client.report(methods)
    }
}

/// The Okta app for `cfg`: loads the API token from where the configuration says (the error
/// names the variable or file, never the value). The lead wires it into the app registry.
pub fn okta_app(cfg: &OktaConfig) -> Result<Box<dyn App>> {
    match &cfg.credentials {
        OktaCredentials::ApiToken(src) => {
            let token = src
                .load_as(OKTA_API_TOKEN)
                .map_err(|source| IngestError::Secret { what: "loading the Okta API token".into(), source })?;
            Ok(Box::new(OktaApp::new(cfg, token)?))
        }
        OktaCredentials::PrivateKeyJwt { .. } => Ok(Box::new(OktaApp::with_oauth(cfg)?)),
    }
}

/// `items` up to and including its first error: nothing after a failure (in particular no
/// watermark for a window that was not read whole).
pub(crate) fn until_error<T: Send + 'static>(items: BoxStream<'static, Result<T>>) -> BoxStream<'static, Result<T>> {
    // Not `take_while`: it would pull (and so request) the item after the error to test it.
    stream::unfold((items, false), |(mut items, failed)| async move {
        if failed {
            return None;
        }
        let item = items.next().await?;
        let failed = item.is_err();
        Some((item, (items, failed)))
    })
    .boxed()
}

/// The pages of a listing from `first` on, following `next` links; a page shorter than
/// `short_below` (the requested `limit`) is the last whatever its links say. A link to a page
/// already read is a server paging in circles ("a client that follows links blindly pages
/// forever"): refused.
pub(crate) fn pages<T: DeserializeOwned + Send + 'static>(
    client: Arc<OktaClient>,
    label: &'static str,
    first: Url,
    short_below: Option<usize>,
) -> BoxStream<'static, Result<Vec<T>>> {
    let visited: HashSet<Url> = HashSet::new();
    stream::try_unfold((Some(first), visited), move |(next, mut visited)| {
        let client = Arc::clone(&client);
        async move {
            let Some(url) = next else { return Ok(None) };
            if !visited.insert(url.clone()) {
                return Err(IngestError::Protocol {
                    method: label.to_owned(),
                    message: "Okta's next link leads back to a page already read; stopping instead of paging forever"
                        .to_owned(),
                });
            }
            let page = client.page::<T>(label, &url).await?;
            let last = short_below.is_some_and(|n| page.items.len() < n);
            Ok(Some((page.items, (if last { None } else { page.next }, visited))))
        }
    })
    .boxed()
}

#[cfg(test)]
mod contract;
#[cfg(test)]
mod sim_tests;
