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
    /// `slack.allow_custom_hosts`, from the file only: the URLs above may name hosts other than
    /// Slack's. Validation has already applied it; kept so `validate` can say so.
    pub allow_custom_hosts: bool,
    pub users_page_size: u32,
    pub access_logs_page_size: u32,
    /// How far before the stored watermark to re-read access logs.
    pub access_logs_overlap: Duration,
    pub request_timeout: Duration,
    pub concurrency: usize,
    /// How long the Slack calls of one run may take in all (at most 24 h). The lake lease is
    /// renewed by a heartbeat while the run lives, so this, not the lease, bounds how long a
    /// slow or hostile server can hold the lake; the commit and derive phase that follows is the
    /// lake's own work and is not cut (a commit is never abandoned half-way through a deadline).
    pub run_deadline: Duration,
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

    /// Every host (with its port when not the default) the token is sent to, without
    /// duplicates: what `validate` and the start of a run print.
    pub fn token_hosts(&self) -> Vec<String> {
        let mut hosts: Vec<String> = Vec::with_capacity(3);
        for url in [&self.api_url, &self.scim_base(), &self.audit_base()] {
            let host = match (url.host_str(), url.port()) {
                (Some(h), Some(p)) => format!("{h}:{p}"),
                (Some(h), None) => h.to_owned(),
                (None, _) => continue,
            };
            if !hosts.contains(&host) {
                hosts.push(host);
            }
        }
        hosts
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
    /// How long one request may keep waiting out rate-limit answers. 429s do not use up
    /// `max_attempts` (another app on the same workspace must not fail the run), so this time
    /// is what bounds them.
    pub rate_limit_budget: Duration,
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

/// Checks a Slack API base URL and normalises its path to end with `/`. `allow_custom` is
/// `slack.allow_custom_hosts` from the file: without it only Slack's hosts and loopback pass
/// ([`host_rule`]).
pub(crate) fn api_url(s: &str, allow_custom: bool) -> Result<Url, String> {
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
    match host_rule(&host) {
        HostRule::Slack | HostRule::Loopback => {}
        HostRule::Custom if allow_custom => {}
        HostRule::Custom => {
            return Err(format!(
                "`{host}` is not a Slack host: the org-admin token is sent only to slack.com, \
                 slack-gov.com, their subdomains (api.slack.com, …) and loopback; to use a proxy, set \
                 slack.allow_custom_hosts = true in the configuration file (an environment override \
                 cannot)"
            ));
        }
        HostRule::Forbidden(why) => {
            return Err(format!(
                "`{host}` is {why}; the token is never sent there, whatever slack.allow_custom_hosts says"
            ));
        }
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// What a host is, as far as sending the token there goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HostRule {
    /// `slack.com`, `slack-gov.com` or a subdomain of either: Slack's own (the Web API also
    /// answers on workspace and org domains such as `acme.slack.com` and
    /// `acme.enterprise.slack.com`; SCIM and Audit on `api.slack.com`).
    Slack,
    /// `localhost`, 127.0.0.0/8 or ::1: the simulator or a local test server.
    Loopback,
    /// Anything else: needs `slack.allow_custom_hosts`.
    Custom,
    /// An IP literal in a range that only ever holds internal services (private, link-local,
    /// cloud metadata, shared address space, unspecified, multicast): refused outright, since
    /// a request there with the token is server-side request forgery carrying a credential.
    Forbidden(&'static str),
}

pub(crate) fn host_rule(host: &Host<String>) -> HostRule {
    match host {
        Host::Domain(d) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            if d == "localhost" {
                HostRule::Loopback
            } else if ["slack.com", "slack-gov.com"].iter().any(|s| d == *s || d.ends_with(&format!(".{s}"))) {
                HostRule::Slack
            } else {
                HostRule::Custom
            }
        }
        Host::Ipv4(ip) => ipv4_rule(*ip),
        Host::Ipv6(ip) => {
            if ip.is_loopback() {
                return HostRule::Loopback;
            }
            if let Some(v4) = ip.to_ipv4_mapped() {
                return ipv4_rule(v4);
            }
            let first = ip.segments()[0];
            if ip.is_unspecified() {
                HostRule::Forbidden("the unspecified address")
            } else if first & 0xfe00 == 0xfc00 {
                // fc00::/7, unique local: private networks, and AWS's metadata at fd00:ec2::254.
                HostRule::Forbidden("a private (unique local) IPv6 address")
            } else if first & 0xffc0 == 0xfe80 {
                HostRule::Forbidden("a link-local IPv6 address")
            } else if ip.is_multicast() {
                HostRule::Forbidden("a multicast address")
            } else {
                HostRule::Custom
            }
        }
    }
}

fn ipv4_rule(ip: std::net::Ipv4Addr) -> HostRule {
    let [a, b, c, _] = ip.octets();
    if ip.is_loopback() {
        HostRule::Loopback
    } else if ip.is_private() {
        HostRule::Forbidden("a private network address")
    } else if ip.is_link_local() {
        // 169.254.0.0/16 holds the cloud metadata services (169.254.169.254).
        HostRule::Forbidden("a link-local address (where cloud metadata services answer)")
    } else if a == 100 && (64..128).contains(&b) {
        // 100.64.0.0/10, shared address space: carrier NAT, and Alibaba's metadata 100.100.100.200.
        HostRule::Forbidden("a shared (carrier-grade NAT) address")
    } else if a == 192 && b == 0 && c == 0 {
        // 192.0.0.0/24, IETF protocol assignments: Oracle Cloud's metadata is 192.0.0.192.
        HostRule::Forbidden("an IETF protocol address (where some cloud metadata services answer)")
    } else if a == 0 || ip.is_broadcast() || ip.is_multicast() {
        HostRule::Forbidden("not a unicast host address")
    } else {
        HostRule::Custom
    }
}

fn is_loopback(host: &Host<String>) -> bool {
    match host {
        Host::Domain(d) => d.trim_end_matches('.').eq_ignore_ascii_case("localhost"),
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
            api_url: api_url(api, false).unwrap(),
            token: TokenSource::Env("T".into()),
            sources: Source::ALL.to_vec(),
            auto_sources: true,
            gov,
            scim_url: None,
            audit_url: None,
            allow_custom_hosts: false,
            users_page_size: 1,
            access_logs_page_size: 1,
            access_logs_overlap: Duration::ZERO,
            request_timeout: Duration::from_secs(1),
            concurrency: 1,
            run_deadline: Duration::from_secs(60),
            retry: RetryConfig {
                max_attempts: 1,
                initial_backoff: Duration::ZERO,
                max_backoff: Duration::ZERO,
                min_retry_after: Duration::ZERO,
                max_retry_after: Duration::ZERO,
                rate_limit_budget: Duration::ZERO,
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
        own.scim_url = Some(api_url("https://scim.example/base", true).unwrap());
        assert_eq!(own.scim_base().as_str(), "https://scim.example/base/v2/");
        assert_eq!(own.token_hosts(), ["127.0.0.1:9", "scim.example"]);
        assert_eq!(slack.token_hosts(), ["slack.com", "api.slack.com"]);
        assert!(own.expects(Source::Users) && !own.expects(Source::Scim));
        own.auto_sources = false;
        assert!(own.expects(Source::Scim));
    }

    #[test]
    fn api_url_rules() {
        let api_url = |s: &str| api_url(s, false);
        assert_eq!(api_url("https://slack.com/api").unwrap().as_str(), "https://slack.com/api/");
        assert_eq!(
            api_url("https://slack.com/api").unwrap().join("users.list").unwrap().as_str(),
            "https://slack.com/api/users.list"
        );
        for ok in [
            "http://127.0.0.1:8080/api",
            "http://127.1.2.3/",
            "http://localhost:9000",
            "http://[::1]:9000/api",
            "https://api.slack.com/scim",
            "https://slack-gov.com/api",
            "https://api.slack-gov.com/audit/v1",
            "https://acme.enterprise.slack.com/api",
            "https://SLACK.COM./api",
        ] {
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
            "https://attacker.example/api",
            "https://slack.com.attacker.example/api",
            "https://evilslack.com/api",
            "https://10.0.0.5/api",
            "https://169.254.169.254/",
            "https://8.8.8.8/api",
        ] {
            assert!(api_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn custom_hosts_need_the_opt_in_and_internal_addresses_are_never_allowed() {
        assert!(super::api_url("https://proxy.example/api", true).is_ok());
        assert!(super::api_url("https://8.8.8.8/api", true).is_ok());
        for forbidden in [
            "https://10.0.0.5/api",
            "https://172.16.0.1/",
            "https://192.168.1.1/",
            "https://169.254.169.254/",
            "https://100.100.100.200/",
            "https://192.0.0.192/",
            "https://0.0.0.0/",
            "https://[fd00:ec2::254]/",
            "https://[fe80::1]/",
            "https://[::ffff:10.0.0.5]/",
            // The URL parser reads these as 10.0.0.5: the rule sees the address, not the text.
            "https://0x0a000005/",
            "https://167772165/",
        ] {
            let err = super::api_url(forbidden, true).unwrap_err();
            assert!(err.contains("never sent there"), "{forbidden}: {err}");
        }
        let err = super::api_url("https://attacker.example/api", false).unwrap_err();
        assert!(err.contains("allow_custom_hosts"), "{err}");
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
