//! `[slack]` and its sub-tables: the validated types the ingest crate consumes (API base URL,
//! token source, collectors, paging, retry policy and rate budgets), and the API URL rules.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

use url::{Host, Url};

use crate::token::TokenSource;

/// Validated `[slack]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackConfig {
    /// Web API base. Its path always ends with `/`, so `api_url.join("users.list")` gives the
    /// method URL.
    pub api_url: Url,
    pub token: TokenSource,
    /// Collectors to run, in configured order, without duplicates.
    pub sources: Vec<Source>,
    /// `sources = "auto"` (the default): every source, where a source the plan or token cannot
    /// serve is left out quietly unless [`Source::expected`] says its absence deserves a warning.
    /// Explicitly listed sources are always expected.
    pub auto_sources: bool,
    /// GovSlack: the default Web API base is `https://slack-gov.com/api` and SCIM is v1.1.
    pub gov: bool,
    /// SCIM base without the version (`…/scim`); `None` = derived from `api_url`.
    pub scim_url: Option<Url>,
    /// Audit Logs API base (`…/audit/v1`); `None` = derived from `api_url`.
    pub audit_url: Option<Url>,
    pub users_page_size: u32,
    pub access_logs_page_size: u32,
    /// How far before the stored watermark to re-read access logs.
    pub access_logs_overlap: Duration,
    pub request_timeout: Duration,
    pub concurrency: usize,
    pub retry: RetryConfig,
    pub rate_limits: RateLimitConfig,
}

impl SlackConfig {
    /// Whether a source that cannot run is worth a warning (and exit code 3).
    pub fn expects(&self, source: Source) -> bool {
        !self.auto_sources || source.expected()
    }

    /// SCIM base with its version and a trailing `/`: `…/scim/v2/`, or `…/scim/v1/` on GovSlack.
    pub fn scim_base(&self) -> Url {
        let base = self.scim_url.clone().unwrap_or_else(|| sibling(&self.api_url, "scim"));
        with_segment(&base, if self.gov { "v1" } else { "v2" })
    }

    /// Audit Logs base with a trailing `/`: `…/audit/v1/`.
    pub fn audit_base(&self) -> Url {
        self.audit_url.clone().unwrap_or_else(|| with_segment(&sibling(&self.api_url, "audit"), "v1"))
    }
}

/// Slack serves SCIM and Audit from `api.<host>` beside the Web API (`slack.com/api` →
/// `api.slack.com/scim`); other hosts (the simulator, a proxy) serve them on the same host,
/// with the last path segment `api` replaced.
fn sibling(api_url: &Url, name: &str) -> Url {
    let mut url = api_url.clone();
    if let Some(host) = url.host_str().map(str::to_ascii_lowercase)
        && (host == "slack.com" || host == "slack-gov.com")
    {
        let _ = url.set_host(Some(&format!("api.{host}")));
    }
    let path = url.path().trim_end_matches('/');
    let parent = path.strip_suffix("/api").unwrap_or(path);
    url.set_path(&format!("{parent}/{name}/"));
    url
}

fn with_segment(base: &Url, segment: &str) -> Url {
    let mut url = base.clone();
    let path = format!("{}/{segment}/", url.path().trim_end_matches('/'));
    url.set_path(&path);
    url
}

/// A Slack collector that can be enabled in `slack.sources`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    Workspaces,
    Users,
    Billing,
    Usergroups,
    Scim,
    AccessLogs,
    Analytics,
    Audit,
}

impl Source {
    /// Every known source, in the default run order.
    pub const ALL: [Source; 8] = [
        Source::Workspaces,
        Source::Users,
        Source::Billing,
        Source::Usergroups,
        Source::Scim,
        Source::AccessLogs,
        Source::Analytics,
        Source::Audit,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Source::Workspaces => "workspaces",
            Source::Users => "users",
            Source::Billing => "billing",
            Source::Usergroups => "usergroups",
            Source::Scim => "scim",
            Source::AccessLogs => "access_logs",
            Source::Analytics => "analytics",
            Source::Audit => "audit",
        }
    }

    /// With `sources = "auto"`, whether this source's absence is still worth a warning: the
    /// account list and the access logs are what dormancy is computed from on every paid plan;
    /// the rest exist only on some plans, where their absence is normal.
    pub fn expected(self) -> bool {
        matches!(self, Source::Users | Source::AccessLogs)
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a known [`Source`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown source `{0}` (known sources: auto, workspaces, users, billing, usergroups, scim, access_logs, \
     analytics, audit)"
)]
pub struct UnknownSource(pub String);

impl FromStr for Source {
    type Err = UnknownSource;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Source::ALL.into_iter().find(|src| src.as_str() == s).ok_or_else(|| UnknownSource(s.to_owned()))
    }
}

/// Validated `[slack.retry]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryConfig {
    /// Total attempts including the first; at least 1.
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    /// Never below `initial_backoff`.
    pub max_backoff: Duration,
    /// Floor applied to a 429's `Retry-After`.
    pub min_retry_after: Duration,
    /// Ceiling applied to a 429's `Retry-After`; never below `min_retry_after`.
    pub max_retry_after: Duration,
}

/// Validated `[slack.rate_limits]`: calls per minute per method per workspace for each tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitConfig {
    pub enabled: bool,
    /// Tier 1..=4 budgets, each at least 1.
    pub per_minute: [u32; 4],
}

impl RateLimitConfig {
    /// The budget for `tier` (1..=4). Tiers outside that range are clamped to the nearest one,
    /// so a method tagged with an unexpected tier still gets a finite, conservative-ish budget
    /// instead of a panic in the middle of a run.
    pub fn per_minute(&self, tier: u8) -> u32 {
        let index = usize::from(tier.clamp(1, 4)) - 1;
        self.per_minute[index]
    }
}

/// Checks a Slack API base URL and normalises its path to end with `/`.
pub(crate) fn api_url(s: &str) -> Result<Url, String> {
    let mut url = Url::parse(s.trim()).map_err(|e| format!("not a valid URL: {e}"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain user info; the token is configured separately".to_owned());
    }
    if url.query().is_some() {
        return Err("must not have a query string".to_owned());
    }
    if url.fragment().is_some() {
        return Err("must not have a fragment".to_owned());
    }
    let host = url.host().ok_or_else(|| "must have a host".to_owned())?.to_owned();
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&host) => {}
        "http" => {
            // The token travels in every request header; plain http is only tolerable when it
            // never leaves the machine (the simulator).
            return Err(format!(
                "must use https (http is allowed only for loopback hosts such as 127.0.0.1; got host `{host}`)"
            ));
        }
        other => return Err(format!("unsupported scheme `{other}` (use https)")),
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

fn is_loopback(host: &Host<String>) -> bool {
    match host {
        Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        Host::Ipv4(ip) => IpAddr::V4(*ip).is_loopback(),
        Host::Ipv6(ip) => IpAddr::V6(*ip).is_loopback(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_round_trips() {
        for s in Source::ALL {
            assert_eq!(s.as_str().parse::<Source>().unwrap(), s);
            assert_eq!(s.to_string(), s.as_str());
        }
        assert!("audits".parse::<Source>().unwrap_err().to_string().contains("audits"));
    }

    #[test]
    fn scim_and_audit_bases_follow_the_api_url() {
        let cfg = |api: &str, gov: bool| SlackConfig {
            api_url: api_url(api).unwrap(),
            token: TokenSource::Env("T".into()),
            sources: Source::ALL.to_vec(),
            auto_sources: true,
            gov,
            scim_url: None,
            audit_url: None,
            users_page_size: 1,
            access_logs_page_size: 1,
            access_logs_overlap: Duration::ZERO,
            request_timeout: Duration::from_secs(1),
            concurrency: 1,
            retry: RetryConfig {
                max_attempts: 1,
                initial_backoff: Duration::ZERO,
                max_backoff: Duration::ZERO,
                min_retry_after: Duration::ZERO,
                max_retry_after: Duration::ZERO,
            },
            rate_limits: RateLimitConfig { enabled: false, per_minute: [1; 4] },
        };
        let slack = cfg("https://slack.com/api", false);
        assert_eq!(slack.scim_base().as_str(), "https://api.slack.com/scim/v2/");
        assert_eq!(slack.audit_base().as_str(), "https://api.slack.com/audit/v1/");
        let gov = cfg("https://slack-gov.com/api", true);
        assert_eq!(gov.scim_base().as_str(), "https://api.slack-gov.com/scim/v1/");
        let sim = cfg("http://127.0.0.1:9/gov/api", true);
        assert_eq!(sim.scim_base().as_str(), "http://127.0.0.1:9/gov/scim/v1/");
        assert_eq!(sim.audit_base().as_str(), "http://127.0.0.1:9/gov/audit/v1/");
        let mut own = cfg("http://127.0.0.1:9/api", false);
        own.scim_url = Some(api_url("https://scim.example/base").unwrap());
        assert_eq!(own.scim_base().as_str(), "https://scim.example/base/v2/");
        assert!(own.expects(Source::Users) && !own.expects(Source::Scim));
        own.auto_sources = false;
        assert!(own.expects(Source::Scim));
    }

    #[test]
    fn api_url_rules() {
        assert_eq!(api_url("https://slack.com/api").unwrap().as_str(), "https://slack.com/api/");
        assert_eq!(
            api_url("https://slack.com/api").unwrap().join("users.list").unwrap().as_str(),
            "https://slack.com/api/users.list"
        );
        for ok in ["http://127.0.0.1:8080/api", "http://127.1.2.3/", "http://localhost:9000", "http://[::1]:9000/api"] {
            assert!(api_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://slack.com/api",
            "http://10.0.0.1/api",
            "ftp://127.0.0.1/",
            "https://slack.com/api?x=1",
            "https://slack.com/api#frag",
            "https://user:pw@slack.com/api",
            "not a url",
        ] {
            assert!(api_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tier_lookup_clamps() {
        let rl = RateLimitConfig { enabled: true, per_minute: [1, 20, 50, 100] };
        assert_eq!(rl.per_minute(1), 1);
        assert_eq!(rl.per_minute(3), 50);
        assert_eq!(rl.per_minute(0), 1);
        assert_eq!(rl.per_minute(9), 100);
    }
}
