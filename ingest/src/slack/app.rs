//! Slack behind the app-agnostic interface ([`crate::source`]): [`SlackApp`] connects
//! (`auth.test`, then workspace discovery) and hands over each configured collector as a
//! [`SlackSource`], which builds Slack's own [`RunContext`] from the run's [`RunInfo`]. Slack's
//! [`Collector`] trait and `RunContext` stay Slack's internal collector interface; the
//! orchestrator sees only [`App`] and [`AppSource`].
//!
//! Source names are the `[slack] sources` names (`users`, `access_logs`), so run manifests,
//! metrics and `--sources`-style configuration keep the keys they always had.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use lastseen_config::{SlackConfig, Source};
use lastseen_lake::{SkipReport, SourceReport, TableDef};
use secrecy::SecretString;

use crate::error::Result;
use crate::slack::api::SlackClient;
use crate::slack::collector::{self, Collector, RunContext, Scope, Settings};
use crate::source::{App, AppSource, Connected, History, Item, Past, Probe, RunInfo, SourceInfo, Window};

/// The app name Slack's sources and metrics carry.
pub const APP: &str = "slack";

/// Slack as configured by `[slack]`: one client (the token, the rate budgets and the counters
/// every source shares) and the sources of `slack.sources`, in that order.
pub struct SlackApp {
    client: Arc<SlackClient>,
    /// The configured sources, each with whether its absence is worth a warning
    /// (`SlackConfig::expects`: always, unless `sources = "auto"` enabled it).
    sources: Vec<(Source, bool)>,
    settings: Settings,
}

impl std::fmt::Debug for SlackApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sources: Vec<Source> = self.sources.iter().map(|(s, _)| *s).collect();
        f.debug_struct("SlackApp").field("client", &self.client).field("sources", &sources).finish()
    }
}

impl SlackApp {
    /// Slack with `token` (moved into the client; no other copy is kept).
    pub fn new(cfg: &SlackConfig, token: SecretString) -> Result<SlackApp> {
        Ok(SlackApp {
            client: Arc::new(SlackClient::new(cfg, token)?),
            sources: cfg.sources.iter().map(|s| (*s, cfg.expects(*s))).collect(),
            settings: Settings::from(cfg),
        })
    }

    /// The client every source shares (its counters feed [`App::report`]).
    pub fn client(&self) -> &Arc<SlackClient> {
        &self.client
    }
}

impl App for SlackApp {
    fn name(&self) -> &'static str {
        APP
    }

    fn sources(&self) -> Vec<SourceInfo> {
        let info = |s: Source, enabled: bool| SourceInfo {
            name: s.to_string(),
            enabled,
            required: s == Source::Users,
            history: collector::collector(s).history(),
        };
        let mut out: Vec<SourceInfo> = self.sources.iter().map(|(s, _)| info(*s, true)).collect();
        out.extend(Source::ALL.iter().filter(|s| !self.sources.iter().any(|(c, _)| c == *s)).map(|s| info(*s, false)));
        out
    }

    fn connect(&self) -> BoxFuture<'_, Result<Connected>> {
        async move {
            let scope = Arc::new(collector::discover(&self.client).await?);
            let sources: Vec<SlackSource> = self
                .sources
                .iter()
                .map(|(s, expected)| SlackSource {
                    collector: collector::collector(*s),
                    client: Arc::clone(&self.client),
                    scope: Arc::clone(&scope),
                    settings: self.settings.clone(),
                    expected: *expected,
                })
                .collect();
            // Workspaces of the organisation the org-wide app was not granted: every
            // per-workspace source skips them (its `known_skips`), said once here.
            let per_workspace: Vec<String> =
                sources.iter().filter(|s| s.collector.per_workspace()).map(|s| s.name()).collect();
            let warnings =
                if per_workspace.is_empty() { Vec::new() } else { not_granted_warnings(&scope, &per_workspace) };
            let describe = format!(
                "Slack team {} ({}), {} workspace(s){}",
                scope.auth.team,
                scope.auth.team_id,
                scope.workspaces.len(),
                if scope.not_granted.is_empty() {
                    String::new()
                } else {
                    format!(", {} not granted", scope.not_granted.len())
                }
            );
            Ok(Connected {
                sources: sources.into_iter().map(|s| Box::new(s) as Box<dyn AppSource>).collect(),
                warnings,
                describe,
            })
        }
        .boxed()
    }

    fn report(&self, methods: &[&str]) -> SourceReport {
        self.client.report(methods)
    }
}

/// One configured Slack collector, connected: the client, what discovery found, the settings.
pub struct SlackSource {
    collector: Box<dyn Collector>,
    client: Arc<SlackClient>,
    scope: Arc<Scope>,
    settings: Settings,
    expected: bool,
}

impl SlackSource {
    /// Slack's context for one run of this source.
    fn context(&self, run: &RunInfo) -> RunContext {
        RunContext {
            client: Arc::clone(&self.client),
            scope: Arc::clone(&self.scope),
            date: run.date,
            collected_at: run.collected_at,
            watermarks: run.watermarks.clone(),
            settings: self.settings.clone(),
        }
    }
}

impl AppSource for SlackSource {
    fn app(&self) -> &'static str {
        APP
    }

    fn name(&self) -> String {
        self.collector.source().to_string()
    }

    fn methods(&self) -> &'static [&'static str] {
        self.collector.methods()
    }

    fn tables(&self) -> &'static [&'static TableDef] {
        self.collector.tables()
    }

    /// Every other Slack table is keyed on the users snapshot.
    fn required(&self) -> bool {
        self.collector.source() == Source::Users
    }

    fn expected(&self) -> bool {
        self.expected
    }

    fn parts(&self) -> Vec<String> {
        if self.collector.per_workspace() {
            self.scope.workspaces.iter().map(|w| w.id.clone()).collect()
        } else {
            Vec::new()
        }
    }

    fn probe<'a>(&'a self, run: &'a RunInfo) -> BoxFuture<'a, Result<Probe>> {
        async move {
            let ctx = self.context(run);
            collector::probe(self.collector.as_ref(), &ctx).await
        }
        .boxed()
    }

    fn known_skips(&self) -> Vec<SkipReport> {
        if self.collector.per_workspace() { not_granted_skips(&self.scope) } else { Vec::new() }
    }

    fn collect(&self, run: Arc<RunInfo>) -> BoxStream<'static, Result<Item>> {
        self.collector.collect(Arc::new(self.context(&run)))
    }

    fn history(&self) -> Option<History> {
        self.collector.history()
    }

    fn read_past(&self, run: Arc<RunInfo>, window: Window) -> BoxStream<'static, Result<Past>> {
        self.collector.read_past(Arc::new(self.context(&run)), window)
    }
}

/// The `team_access_not_granted` entries a per-workspace source records for the workspaces an
/// org-wide app was not granted (known when `admin.teams.list` answered).
pub fn not_granted_skips(scope: &Scope) -> Vec<SkipReport> {
    scope
        .not_granted
        .iter()
        .map(|ws| SkipReport {
            workspace: Some(ws.id.clone()),
            code: "team_access_not_granted".into(),
            reason: format!("workspace {} is not granted to the org-wide app", ws.id),
        })
        .collect()
}

/// One warning per workspace the org-wide app was not granted, naming the per-workspace
/// `sources` that skip it.
fn not_granted_warnings(scope: &Scope, sources: &[String]) -> Vec<String> {
    scope
        .not_granted
        .iter()
        .map(|ws| {
            let name = ws.name.as_deref().map(|n| format!(" ({n})")).unwrap_or_default();
            format!(
                "workspace {}{name} is not granted to the org-wide app (`team_access_not_granted`): {} skipped \
                 for it; an org admin can add the app to the workspace",
                ws.id,
                sources.join(", ")
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(toml: &str) -> SlackApp {
        let cfg = lastseen_config::Config::from_toml_str(toml, "test", Vec::<(String, String)>::new()).unwrap();
        SlackApp::new(&cfg.slack, SecretString::from("xoxp-test")).unwrap()
    }

    /// What the orchestrator plans with before connecting: the enabled sources in the
    /// configured order, then the others; `users` required; history where Slack keeps it.
    #[test]
    fn sources_are_described_in_the_configured_order_with_users_required() {
        let a = app("[slack]\nsources = [\"audit\", \"users\"]\n");
        let s = a.sources();
        let enabled: Vec<&str> = s.iter().filter(|s| s.enabled).map(|s| s.name.as_str()).collect();
        assert_eq!(enabled, ["audit", "users"]);
        assert_eq!(s.len(), Source::ALL.len());
        let required: Vec<&str> = s.iter().filter(|s| s.required).map(|s| s.name.as_str()).collect();
        assert_eq!(required, ["users"]);
        let history: Vec<&str> = s.iter().filter(|s| s.history.is_some()).map(|s| s.name.as_str()).collect();
        assert_eq!(history, ["audit", "access_logs", "analytics"]);
        assert_eq!(a.name(), "slack");
    }
}
