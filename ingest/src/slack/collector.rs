//! The `Collector` abstraction: what every Slack source provides (its methods, its tables, a
//! one-call capability probe and a stream of rows), the run context collectors share, and the
//! discovery of what the token can see (its workspaces) that comes before any of them.
//!
//! The orchestrator never sees these: `slack::app` wraps each configured collector as an
//! app-agnostic `AppSource` (building this `RunContext` from the run's `RunInfo`), and the
//! pipeline probes each, then drains each stream into one lake transaction. Nothing here
//! writes storage.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use lastseen_config::{SlackConfig, Source};
use lastseen_lake::TableDef;
use serde::Deserialize;
use url::Url;

use crate::error::{IngestError, PROBE_PASSED, Result};
use crate::slack::api::{AuthInfo, SlackClient};
use crate::slack::cursor::{CursorPage, cursor_pages, with_cursor};
use crate::slack::models::{ResponseMetadata, lenient};
pub(crate) use crate::source::arrow_err;
pub use crate::source::{History, Item, Past, Probe, Window};
pub(crate) use crate::walk::WalkGuard;

/// What a per-workspace stream yields once wrapped by [`skip_on_condition`].
pub(crate) enum Part<T> {
    Data(T),
    /// The workspace's first answer was a standing condition: nothing of it was read.
    Skipped(IngestError),
}

/// Ends `items` (one workspace's, or one org-wide part's) with `Part::Skipped` when it fails
/// with a standing condition (`IngestError::is_standing`) before yielding anything, so the other workspaces go on. A
/// condition after data was already yielded cannot be undone for that part alone: it passes
/// through as an error, and the caller skips the whole source (what it staged is discarded).
pub(crate) fn skip_on_condition<T: Send + 'static>(
    items: BoxStream<'static, Result<T>>,
) -> BoxStream<'static, Result<Part<T>>> {
    futures::stream::unfold((items, false, false), |(mut items, yielded, done)| async move {
        if done {
            return None;
        }
        match items.next().await? {
            Ok(t) => Some((Ok(Part::Data(t)), (items, true, false))),
            // Only a standing condition is a condition of this part; the plan, scopes or token
            // type not covering the source are the same everywhere, and skip the whole source.
            Err(e) if e.is_standing() && !yielded => Some((Ok(Part::Skipped(e)), (items, yielded, true))),
            Err(e) => Some((Err(e), (items, yielded, true))),
        }
    })
    .boxed()
}

/// [`skip_on_condition`] for a stream of items of workspace (or part) `workspace`.
pub(crate) fn items_or_skip(
    workspace: Option<String>,
    items: BoxStream<'static, Result<Item>>,
) -> BoxStream<'static, Result<Item>> {
    skip_on_condition(items)
        .map(move |p| {
            p.map(|p| match p {
                Part::Data(i) => i,
                Part::Skipped(error) => Item::Skipped { workspace: workspace.clone(), error },
            })
        })
        .boxed()
}

/// Raises every `Item::Watermark` of `items` to at least `committed`: a run of an earlier day
/// reads an older part of the history, and a watermark must never move back.
pub(crate) fn watermark_at_least(
    items: BoxStream<'static, Result<Item>>,
    committed: Option<i64>,
) -> BoxStream<'static, Result<Item>> {
    items
        .map(move |item| match item {
            Ok(Item::Watermark { key, value }) => {
                Ok(Item::Watermark { key, value: committed.map_or(value, |c| c.max(value)) })
            }
            other => other,
        })
        .boxed()
}

/// A workspace the token can collect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    pub id: String,
    pub name: Option<String>,
    pub domain: Option<String>,
}

/// What `auth.test` and workspace discovery found out about the token.
#[derive(Debug, Clone)]
pub struct Scope {
    pub auth: AuthInfo,
    /// The workspaces to collect: for an org-level Grid token the workspaces the org-wide app
    /// was granted (`auth.teams.list`, no scope needed), otherwise the token's own.
    pub workspaces: Vec<Workspace>,
    /// Workspaces of the organisation the org-wide app was not granted: listed by
    /// `admin.teams.list` (when the token has `admin.teams:read`) but not by `auth.teams.list`.
    /// Reported as skipped (`team_access_not_granted`) by every per-workspace source.
    pub not_granted: Vec<Workspace>,
}

impl Scope {
    /// An Enterprise Grid organisation-wide token.
    pub fn org_level(&self) -> bool {
        self.auth.is_enterprise_install
    }

    pub fn enterprise_id(&self) -> Option<&str> {
        self.auth.enterprise_id.as_deref()
    }

    /// `team_id` to send to workspace-scoped methods: required with an org-level token, and
    /// harmless (Slack ignores it) with a workspace token.
    pub fn team_param(&self, ws: &Workspace) -> Vec<(&'static str, String)> {
        vec![("team_id", ws.id.clone())]
    }

    /// The key of organisation-wide sources (analytics, audit): the Grid organisation, or the
    /// workspace.
    pub fn org_key(&self) -> &str {
        self.enterprise_id().unwrap_or(&self.auth.team_id)
    }

    /// What kind of token this is, for people reading `lastseen check`.
    pub fn token_kind(&self) -> &'static str {
        match (&self.auth.bot_id, self.org_level()) {
            (Some(_), _) => "bot token",
            (None, true) => "user token, Enterprise Grid org-level install",
            (None, false) => "user token",
        }
    }
}

/// Collector settings from `[slack]`.
#[derive(Debug, Clone)]
pub struct Settings {
    pub users_page_size: u32,
    pub access_logs_page_size: u32,
    pub access_logs_overlap: Duration,
    pub scim_base: Url,
    pub audit_base: Url,
}

impl From<&SlackConfig> for Settings {
    fn from(cfg: &SlackConfig) -> Self {
        Settings {
            users_page_size: cfg.users_page_size,
            access_logs_page_size: cfg.access_logs_page_size,
            access_logs_overlap: cfg.access_logs_overlap,
            scim_base: cfg.scim_base(),
            audit_base: cfg.audit_base(),
        }
    }
}

/// Everything a collector needs for one run.
#[derive(Debug, Clone)]
pub struct RunContext {
    pub client: Arc<SlackClient>,
    pub scope: Arc<Scope>,
    /// The day being collected (UTC).
    pub date: NaiveDate,
    /// Stamped on every row (`collected_at`).
    pub collected_at: DateTime<Utc>,
    /// The committed watermarks the run starts from.
    pub watermarks: BTreeMap<String, i64>,
    pub settings: Settings,
}

impl RunContext {
    /// End of the run day (epoch seconds), or `None` when the run day is today (read up to now).
    pub fn day_end(&self) -> Option<i64> {
        (self.date < Utc::now().date_naive()).then(|| end_of_day(self.date))
    }
}

/// The capability probe of a per-workspace source: one call of `method` on the first workspace
/// (with `limit=1` when the method pages by `limit`), which proves plan, scopes and token type
/// while reading next to nothing. The reply is parsed as `Page` so a malformed one fails here.
pub(crate) fn probe_first_workspace<'a, Page: serde::de::DeserializeOwned + 'a>(
    ctx: &'a RunContext,
    method: &'static str,
    limit: bool,
) -> BoxFuture<'a, Result<()>> {
    probe_workspaces(ctx, move |ws| {
        async move {
            let mut params = ctx.scope.team_param(ws);
            if limit {
                params.push(("limit", "1".into()));
            }
            ctx.client.call::<Page>(method, Some(&ws.id), &params).await.map(drop)
        }
        .boxed()
    })
}

/// Runs `call` on the workspaces in order until one answers with anything but a
/// workspace-level condition (`team_access_not_granted`, say): that answer is the probe's.
/// A condition of one workspace is reported by the collection, per workspace; only when every
/// workspace has one is the whole source unavailable (the first workspace's error says why).
pub(crate) fn probe_workspaces<'a>(
    ctx: &'a RunContext,
    call: impl Fn(&'a Workspace) -> BoxFuture<'a, Result<()>> + Send + 'a,
) -> BoxFuture<'a, Result<()>> {
    async move {
        let mut first = None;
        for ws in &ctx.scope.workspaces {
            match call(ws).await {
                Err(e) if e.is_workspace_level() => {
                    first.get_or_insert(e);
                }
                other => return other,
            }
        }
        first.map_or(Ok(()), Err)
    }
    .boxed()
}

pub(crate) fn start_of_day(d: NaiveDate) -> i64 {
    d.and_time(chrono::NaiveTime::MIN).and_utc().timestamp()
}

pub(crate) fn end_of_day(d: NaiveDate) -> i64 {
    start_of_day(d) + 86_399
}

/// A Slack source.
pub trait Collector: Send + Sync {
    fn source(&self) -> Source;

    /// The counter labels (Web API methods, `scim.Users`, `audit.logs`) its calls go under.
    fn methods(&self) -> &'static [&'static str];

    /// The raw tables it writes.
    fn tables(&self) -> &'static [&'static TableDef];

    /// One cheap call that fails with a capability error (`IngestError::is_capability`) when
    /// the plan, scopes or token type cannot serve this source. Any other error is a real
    /// failure (auth, network) and is returned as such.
    fn probe<'a>(&'a self, ctx: &'a RunContext) -> BoxFuture<'a, Result<()>>;

    /// Whether the source reads each workspace on its own (and so can skip one workspace while
    /// collecting the others); organisation-wide sources answer false.
    fn per_workspace(&self) -> bool {
        false
    }

    /// The source's rows, streamed page by page.
    fn collect(&self, ctx: Arc<RunContext>) -> BoxStream<'static, Result<Item>>;

    /// How far back Slack keeps this source's history; `None` (the default) = it serves only
    /// its current state, and a backfill says so instead of reading it.
    fn history(&self) -> Option<History> {
        None
    }

    /// The source's rows for the past `window` (a backfill), and the days Slack has nothing
    /// for. Only sources with a [`Collector::history`] implement it.
    fn read_past(&self, _ctx: Arc<RunContext>, _window: Window) -> BoxStream<'static, Result<Past>> {
        let source = self.source();
        futures::stream::once(async move {
            Err(IngestError::Setup(format!("source `{source}` keeps no history that can be read back")))
        })
        .boxed()
    }
}

/// The collector of every source, in [`Source::ALL`] order.
pub fn collectors() -> Vec<Box<dyn Collector>> {
    Source::ALL.iter().map(|s| collector(*s)).collect()
}

pub fn collector(source: Source) -> Box<dyn Collector> {
    use crate::slack::*;
    match source {
        Source::Workspaces => Box::new(workspaces::WorkspacesCollector),
        Source::Users => Box::new(users::UsersCollector),
        Source::Billing => Box::new(billing::BillingCollector),
        Source::Usergroups => Box::new(usergroups::UsergroupsCollector),
        Source::Scim => Box::new(scim::ScimCollector),
        Source::AccessLogs => Box::new(access_logs::AccessLogsCollector),
        Source::Analytics => Box::new(analytics::AnalyticsCollector),
        Source::Audit => Box::new(audit::AuditCollector),
    }
}

/// The Slack method that lists a Grid organisation's workspaces (needs `admin.teams:read`).
pub const ADMIN_TEAMS_LIST: &str = "admin.teams.list";
/// The workspaces an org-wide app was granted (no scope needed, Tier 2, cursor paged).
pub const AUTH_TEAMS_LIST: &str = "auth.teams.list";

#[derive(Debug, Default, Deserialize)]
struct TeamsPage {
    #[serde(default, deserialize_with = "lenient::vec")]
    teams: Vec<AdminTeam>,
    #[serde(default, deserialize_with = "lenient::object")]
    response_metadata: Option<ResponseMetadata>,
}

/// A team of `admin.teams.list` or `auth.teams.list` (the latter has no `domain`/`team_url`).
#[derive(Debug, Default, Deserialize)]
struct AdminTeam {
    #[serde(deserialize_with = "lenient::string")]
    id: String,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    domain: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    team_url: Option<String>,
}

/// Every team of a cursor-paged teams method.
async fn list_teams(client: &Arc<SlackClient>, method: &'static str, limit: &'static str) -> Result<Vec<Workspace>> {
    let mut out = Vec::new();
    let fetch_client = Arc::clone(client);
    let mut pages = cursor_pages(Arc::clone(client), method, move |cursor| {
        let client = Arc::clone(&fetch_client);
        async move { client.call::<TeamsPage>(method, None, &with_cursor(vec![("limit", limit.to_string())], cursor)).await }
    });
    while let Some(page) = pages.next().await {
        out.extend(page?.teams.into_iter().map(|t| {
            // The subdomain is the host's first label of `team_url` when `domain` is absent.
            let domain = t.domain.or_else(|| {
                t.team_url
                    .as_deref()
                    .and_then(|u| Url::parse(u).ok())
                    .and_then(|u| u.host_str().and_then(|h| h.split('.').next()).map(str::to_owned))
            });
            Workspace { id: t.id, name: t.name.filter(|n| !n.is_empty()), domain }
        }));
    }
    Ok(out)
}

impl CursorPage for TeamsPage {
    fn rows(&self) -> usize {
        self.teams.len()
    }

    fn take_metadata(&mut self) -> Option<ResponseMetadata> {
        self.response_metadata.take()
    }
}

/// `auth.test`, then the workspaces to collect. An org-level Grid token collects the
/// workspaces the org-wide app was granted (`auth.teams.list`: "Obtain a full list of
/// workspaces your org-wide app has been approved for", no scope required); an org-wide app is
/// not automatically in every workspace. `admin.teams.list` only adds names, domains and the
/// workspaces not granted, when the token has `admin.teams:read`; it is never a precondition.
/// Every other token collects its own workspace.
pub async fn discover(client: &Arc<SlackClient>) -> Result<Scope> {
    let auth = client.auth_test().await?;
    if !auth.is_enterprise_install {
        let own = Workspace {
            id: auth.team_id.clone(),
            name: Some(auth.team.clone()).filter(|s| !s.is_empty()),
            domain: None,
        };
        return Ok(Scope { auth, workspaces: vec![own], not_granted: Vec::new() });
    }
    let mut granted = list_teams(client, AUTH_TEAMS_LIST, "1000").await?;
    let mut not_granted = Vec::new();
    match list_teams(client, ADMIN_TEAMS_LIST, "100").await {
        Ok(all) => {
            for t in all {
                match granted.iter_mut().find(|g| g.id == t.id) {
                    Some(g) => {
                        g.name = g.name.take().or(t.name);
                        g.domain = g.domain.take().or(t.domain);
                    }
                    None => not_granted.push(t),
                }
            }
        }
        Err(e) if e.is_auth() => return Err(e),
        Err(e) => tracing::info!(
            "{ADMIN_TEAMS_LIST} unavailable ({e}); workspace names come from {AUTH_TEAMS_LIST} and workspaces \
             not granted to the app cannot be listed"
        ),
    }
    Ok(Scope { auth, workspaces: granted, not_granted })
}

/// Runs a collector's probe and sorts capability errors (standing conditions included) from
/// real failures. Only an answer that proves Slack's checks passed and refused just the
/// probe's argument ([`PROBE_PASSED`]: `data_not_available` for a day long gone, say) counts
/// as "works"; any other code is returned as the error it is.
pub async fn probe(collector: &dyn Collector, ctx: &RunContext) -> Result<Probe> {
    match collector.probe(ctx).await {
        Ok(()) => Ok(Probe::Works),
        Err(e) if e.is_capability() => Ok(Probe::Unavailable(e)),
        Err(e @ IngestError::SlackApi { .. }) if e.slack_code().is_some_and(|c| PROBE_PASSED.contains(&c)) => {
            tracing::debug!(source = %collector.source(), "probe answered {e}; the source is available");
            Ok(Probe::Works)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// auth.teams.list (granted workspaces) and admin.teams.list (names, team_url) as recorded.
    #[test]
    fn every_field_read_is_in_slacks_recorded_answers() {
        use crate::slack::contract::{TEXT, parse};
        let granted: TeamsPage = parse("api__auth.teams.list.json");
        assert_eq!((granted.teams[0].id.as_str(), granted.teams[0].name.as_deref()), ("T00000000", Some(TEXT)));
        assert_eq!(granted.response_metadata.and_then(|m| m.next_cursor).as_deref(), Some(TEXT));
        let all: TeamsPage = parse("api__admin.teams.list.json");
        let t = &all.teams[0];
        assert_eq!(
            (t.id.as_str(), t.name.as_deref(), t.team_url.as_deref()),
            ("T00000000", Some(TEXT), Some("https://www.example.com/"))
        );
        // `domain` is not in admin.teams.list answers: it comes from `team_url`.
        assert!(t.domain.is_none());
    }
}
