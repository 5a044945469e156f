//! `[okta]`: the validated settings of the Okta app (org URL, API token, collectors, paging, the
//! System Log window, which Okta app instances stand for which lastseen app), and the org URL
//! rules: https to Okta's own domains or loopback, another host only by an opt-in in the file.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use url::{Host, Url};

use crate::slack::{HostRule, RetryConfig, host_rule};
use crate::token::TokenSource;

/// Okta keeps System Log events for 90 days ("Data retention", System Log API): a first run or
/// a backfill cannot read further back.
pub const OKTA_LOG_RETENTION_DAYS: u32 = 90;

/// Validated `[okta]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OktaConfig {
    /// The org's origin (`https://acme.okta.com/`), path `/`: operations are joined under it
    /// (`api/v1/users`).
    pub org_url: Url,
    /// `okta.allow_custom_hosts`, from the file only: `org_url` may name a host other than
    /// Okta's (a custom URL domain). Validation has already applied it.
    pub allow_custom_hosts: bool,
    pub credentials: OktaCredentials,
    /// Collectors to run, in configured order, without duplicates.
    pub sources: Vec<OktaSource>,
    /// `limit` of `/api/v1/users` (1..=200, Okta's maximum).
    pub users_page_size: u32,
    /// `limit` of `/api/v1/logs` (1..=1000, Okta's maximum).
    pub logs_page_size: u32,
    /// How far before the committed watermark a run reads the System Log again: events Okta
    /// persists late ("events may be delayed") are found on the next run.
    pub logs_overlap: Duration,
    /// How far behind now a run's window ends, so most events are persisted when read.
    pub logs_lag: Duration,
    /// Days a first run (no watermark yet) reads back (1..=90).
    pub logs_first_run_days: u32,
    /// The `eventType`s collected (a `filter` of `eventType eq "…"` terms).
    pub event_types: Vec<String>,
    /// lastseen app → the Okta app-instance labels or ids that stand for it: an SSO into one of
    /// them is evidence of use of that app.
    pub apps: BTreeMap<String, Vec<String>>,
    pub request_timeout: Duration,
    /// How long the Okta calls of one run may take in all (at most 24 h).
    pub run_deadline: Duration,
    pub retry: RetryConfig,
}

impl OktaConfig {
    /// The lastseen app an SSO target stands for: the first app listing its label or its id.
    pub fn mapped_app(&self, app_id: &str, label: Option<&str>) -> Option<&str> {
        self.apps
            .iter()
            .find(|(_, names)| names.iter().any(|n| n == app_id || Some(n.as_str()) == label))
            .map(|(app, _)| app.as_str())
    }

    /// The host (and port when not the default) the token is sent to.
    pub fn token_host(&self) -> String {
        match (self.org_url.host_str(), self.org_url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            (None, _) => String::new(),
        }
    }
}

/// How lastseen authenticates to Okta.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OktaCredentials {
    /// An API token, sent as `Authorization: SSWS <token>` (core-okta-api, "API token
    /// authentication"). It acts with its admin's permissions: a read-only administrator's
    /// token reads users and the System Log.
    ApiToken(TokenSource),
    /// OAuth 2.0 client credentials with a private key (`private_key_jwt`), what Okta
    /// recommends: a service app signs a short JWT (RS256) with `private_key` and exchanges it
    /// at `/oauth2/v1/token` for an access token with `scopes`, sent as `Authorization: Bearer`.
    PrivateKeyJwt {
        client_id: String,
        /// A PKCS#8 PEM file (`BEGIN PRIVATE KEY`) readable only by its owner.
        private_key: PathBuf,
        /// The key's `kid` in the app's JWKS, when the app has several keys.
        key_id: Option<String>,
        scopes: Vec<String>,
    },
}

impl OktaCredentials {
    /// Where the secret comes from, for messages (`env OKTA_API_TOKEN`); never the secret.
    pub fn describe(&self) -> String {
        match self {
            OktaCredentials::ApiToken(src) => format!("API token from {src}"),
            OktaCredentials::PrivateKeyJwt { client_id, private_key, .. } => {
                format!("OAuth client {client_id} with the private key in file {}", private_key.display())
            }
        }
    }
}

/// An Okta collector that can be enabled in `okta.sources`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OktaSource {
    /// `/api/v1/users`: the account snapshot.
    Users,
    /// `/api/v1/logs`: sign-ins and SSOs, incremental.
    Logs,
}

impl OktaSource {
    pub const ALL: [OktaSource; 2] = [OktaSource::Users, OktaSource::Logs];

    pub fn as_str(self) -> &'static str {
        match self {
            OktaSource::Users => "users",
            OktaSource::Logs => "logs",
        }
    }
}

impl fmt::Display for OktaSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OktaSource {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OktaSource::ALL
            .into_iter()
            .find(|src| src.as_str() == s)
            .ok_or_else(|| format!("unknown Okta source `{s}` (known sources: users, logs)"))
    }
}

/// Okta's own org domains (Okta's "Okta domains" for production, preview, EMEA cells, and its
/// government clouds). An org on a custom URL domain needs `okta.allow_custom_hosts`.
const OKTA_DOMAINS: &[&str] = &["okta.com", "oktapreview.com", "okta-emea.com", "okta-gov.com", "okta.mil"];

/// Checks `okta.org_url`: https (http only on loopback), no user info, query or fragment, no
/// path beyond `/` (the org URL is an origin), and a host the API token may go to.
pub(crate) fn org_url(s: &str, allow_custom: bool) -> Result<Url, String> {
    let mut url = Url::parse(s.trim()).map_err(|e| format!("not a valid URL: {e}"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain user info; the token is configured separately".to_owned());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query string or a fragment".to_owned());
    }
    if !url.path().trim_end_matches('/').is_empty() {
        return Err(format!(
            "must be the org's address without a path, such as https://acme.okta.com (got path `{}`)",
            url.path()
        ));
    }
    let host = url.host().ok_or_else(|| "must have a host".to_owned())?.to_owned();
    let rule = host_rule(&host);
    match url.scheme() {
        "https" => {}
        "http" if rule == HostRule::Loopback => {}
        "http" => {
            return Err(format!(
                "must use https (http is allowed only for loopback hosts such as 127.0.0.1; got host `{host}`)"
            ));
        }
        other => return Err(format!("unsupported scheme `{other}` (use https)")),
    }
    let okta = matches!(&host, Host::Domain(d) if {
        let d = d.trim_end_matches('.').to_ascii_lowercase();
        OKTA_DOMAINS.iter().any(|o| d == *o || d.ends_with(&format!(".{o}")))
    });
    match rule {
        HostRule::Forbidden(why) => {
            return Err(format!("`{host}` is {why}; the Okta token is never sent there"));
        }
        HostRule::Loopback => {}
        _ if okta => {}
        _ if allow_custom => {}
        _ => {
            return Err(format!(
                "`{host}` is not an Okta host: the API token is sent only to Okta's domains ({}) and \
                 loopback; for an org on a custom URL domain, set okta.allow_custom_hosts = true in the \
                 configuration file (an environment override cannot)",
                OKTA_DOMAINS.join(", ")
            ));
        }
    }
    url.set_path("/");
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn org_url_rules() {
        assert_eq!(org_url("https://acme.okta.com", false).unwrap().as_str(), "https://acme.okta.com/");
        assert_eq!(org_url("https://acme.oktapreview.com/", false).unwrap().as_str(), "https://acme.oktapreview.com/");
        assert_eq!(org_url("http://127.0.0.1:9000", false).unwrap().as_str(), "http://127.0.0.1:9000/");
        for (bad, says) in [
            ("http://acme.okta.com", "https"),
            ("https://acme.okta.com/api/v1", "without a path"),
            ("https://acme.okta.com/?x=1", "query"),
            ("https://u:p@acme.okta.com", "user info"),
            ("https://login.acme.example", "allow_custom_hosts"),
            ("https://okta.com.attacker.example", "allow_custom_hosts"),
            ("https://169.254.169.254", "never sent"),
        ] {
            let err = org_url(bad, false).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
        assert!(org_url("https://login.acme.example", true).is_ok());
        assert!(org_url("https://10.0.0.5", true).unwrap_err().contains("never sent"));
    }

    #[test]
    fn sources_round_trip_and_apps_map_labels_and_ids() {
        for s in OktaSource::ALL {
            assert_eq!(s.as_str().parse::<OktaSource>(), Ok(s));
        }
        assert!("audit".parse::<OktaSource>().unwrap_err().contains("users, logs"));
    }
}
