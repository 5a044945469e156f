//! `lastseen check`: who the token is, which workspaces it sees, and for every source whether it
//! works or why not (scope by name, plan, token type, a standing condition by Slack's code), from
//! the same probes and the same table of codes `run` uses; per-workspace sources are probed in
//! each workspace, so a workspace the run would skip shows here as skipped with its reason.
//! Last, whether the configured lake's store honours the create-only puts a run relies on.

use std::sync::Arc;

use anyhow::Context;
use chrono::Utc;
use lastseen_config::Source;
use lastseen_ingest::slack::{self, Probe, RunContext, Scope, Settings};
use lastseen_ingest::{IngestError, SlackClient};

use crate::cli::GlobalArgs;

pub async fn run(g: &GlobalArgs) -> anyhow::Result<u8> {
    let cfg = super::load_config(g)?;
    let token = cfg.slack.token.load().map_err(crate::exit::ConfigProblem::from).context("loading the Slack token")?;
    let client = Arc::new(SlackClient::new(&cfg.slack, token).context("setting up the Slack client")?);
    let scope = slack::discover(&client).await.context("checking the Slack token with auth.test")?;
    let auth = &scope.auth;
    outln!("token:       {} ({})", scope.token_kind(), cfg.slack.token);
    outln!("team:        {} ({})", auth.team, auth.team_id);
    if let Some(e) = &auth.enterprise_id {
        outln!("enterprise:  {e}");
    }
    outln!("user:        {}", auth.user_id);
    let ids: Vec<&str> = scope.workspaces.iter().map(|w| w.id.as_str()).collect();
    outln!("workspaces:  {} ({})", ids.len(), ids.join(", "));
    if !scope.not_granted.is_empty() {
        let ids: Vec<&str> = scope.not_granted.iter().map(|w| w.id.as_str()).collect();
        outln!("not granted: {} ({})", ids.len(), ids.join(", "));
    }
    match &auth.scopes {
        Some(s) => outln!("scopes:      {}", s.join(", ")),
        None => outln!("scopes:      (Slack did not report them)"),
    }
    outln!();

    let ctx = RunContext {
        client: Arc::clone(&client),
        scope: Arc::new(scope.clone()),
        date: Utc::now().date_naive(),
        collected_at: Utc::now(),
        watermarks: Default::default(),
        settings: Settings::from(&cfg.slack),
    };
    let results = futures::future::join_all(Source::ALL.iter().map(|s| {
        let ctx = &ctx;
        async move {
            let c = slack::collector(*s);
            let whole = slack::probe(c.as_ref(), ctx).await;
            // A source that works is probed in each workspace on its own, as the run reads it,
            // so a workspace the run would skip shows up here with its code.
            let mut parts = Vec::new();
            if c.per_workspace() && matches!(whole, Ok(Probe::Works)) && ctx.scope.workspaces.len() > 1 {
                for ws in &ctx.scope.workspaces {
                    let one = RunContext {
                        scope: Arc::new(Scope { workspaces: vec![ws.clone()], ..(*ctx.scope).clone() }),
                        ..ctx.clone()
                    };
                    parts.push((ws.id.clone(), slack::probe(c.as_ref(), &one).await));
                }
            }
            (*s, c.per_workspace(), whole, parts)
        }
    }))
    .await;

    let mut rows = Vec::new();
    let mut problem = false;
    for (source, per_workspace, result, parts) in results {
        let configured = cfg.slack.sources.contains(&source);
        let works = matches!(result, Ok(Probe::Works));
        let (status, why) = match result {
            Ok(Probe::Works) if configured => ("works", String::new()),
            Ok(Probe::Works) => ("off", "works, but not in slack.sources".to_owned()),
            Ok(Probe::Unavailable(e)) => {
                problem |= configured && (cfg.slack.expects(source) || e.is_standing());
                ("skipped", reason(&e))
            }
            Err(e) if e.is_auth() => return Err(anyhow::Error::new(e).context(format!("probing source `{source}`"))),
            Err(e) => {
                problem |= configured;
                ("error", e.to_string())
            }
        };
        rows.push((source.to_string(), status, why));
        for (ws, part) in parts {
            match part {
                Ok(Probe::Works) => {}
                Ok(Probe::Unavailable(e)) => {
                    problem |= configured;
                    rows.push((source.to_string(), "skipped", format!("workspace {ws}: {}", reason(&e))));
                }
                Err(e) => {
                    problem |= configured;
                    rows.push((source.to_string(), "error", format!("workspace {ws}: {e}")));
                }
            }
        }
        // Audit actions Slack no longer supports are skipped one by one by the run.
        if source == Source::Audit && configured && works {
            for (_, e) in slack::audit::unsupported_actions(&ctx).await.unwrap_or_default() {
                problem = true;
                rows.push((source.to_string(), "skipped", reason(&e)));
            }
        }
        if per_workspace && configured && works {
            for ws in &scope.not_granted {
                problem = true;
                rows.push((
                    source.to_string(),
                    "skipped",
                    format!("workspace {}: not granted to the org-wide app (team_access_not_granted)", ws.id),
                ));
            }
        }
    }
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(6).max(6);
    outln!("{:width$}  {:7}  why", "source", "status");
    let logs_work = rows.iter().any(|r| r.0 == Source::AccessLogs.as_str() && r.1 == "works");
    for (source, status, why) in rows {
        outln!("{source:width$}  {status:7}  {why}");
    }
    if logs_work && let Some(ws) = scope.workspaces.first() {
        outln!();
        outln!("access log order: {}", access_log_order(&client, &ws.id, &cfg.slack).await);
    }
    outln!();
    let (lake, lake_ok) = lake_line(&cfg).await;
    problem |= !lake_ok;
    outln!("lake:        {lake}");
    Ok(if problem { crate::exit::PARTIAL } else { crate::exit::OK })
}

/// The configured lake and whether its store honours create-only puts, which the lease and the
/// commit log need (the probe `run` makes before taking the lease), so an operator learns it
/// before the first run rather than from a refused one.
async fn lake_line(cfg: &lastseen_config::Config) -> (String, bool) {
    let url = &cfg.storage.url;
    let lake = match super::open_lake(cfg) {
        Ok(l) => l,
        Err(e) => return (format!("{url} error: {e:#}"), false),
    };
    match lake.verify_create_only().await {
        Ok(()) => (format!("{url} ok (create-only puts honoured)"), true),
        Err(e @ lastseen_lake::LakeError::CreateOnlyIgnored { .. }) => (format!("{url} refused: {e}"), false),
        Err(e) => (format!("{url} error: {e}"), false),
    }
}

/// Whether the first two pages of `team`'s access log come in non-increasing `date_last` order.
/// Slack documents no sort key; the collector reads a whole window when they do not, so this
/// only tells the operator which case their workspace is (docs/DESIGN.md §2).
async fn access_log_order(client: &Arc<SlackClient>, team: &str, cfg: &lastseen_config::SlackConfig) -> String {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::TimestampMicrosecondType;
    use futures::StreamExt;
    let page = cfg.access_logs_page_size.min(200);
    let mut pages = lastseen_ingest::slack::access_logs(
        Arc::clone(client),
        team.to_owned(),
        lastseen_ingest::slack::AccessLogWindow::default(),
        page,
        Utc::now(),
    );
    let mut lasts: Vec<i64> = Vec::new();
    for _ in 0..2 {
        match pages.next().await {
            Some(Ok(batch)) => {
                if let Some(col) = batch.column_by_name("date_last") {
                    lasts.extend(col.as_primitive::<TimestampMicrosecondType>().values().iter().copied());
                }
            }
            Some(Err(e)) => return format!("could not read it: {e}"),
            None => break,
        }
    }
    if lasts.len() < 2 {
        "too few entries to tell".to_owned()
    } else if lasts.windows(2).all(|w| w[0] >= w[1]) {
        format!("by date_last, newest first, over the first {} entries (incremental runs may stop early)", lasts.len())
    } else {
        format!(
            "NOT by date_last over the first {} entries: each run reads the whole window back to its watermark",
            lasts.len()
        )
    }
}

/// The short reason a source cannot run, naming the scope, plan or token type.
fn reason(e: &IngestError) -> String {
    let method = e.method().unwrap_or("?");
    match e {
        IngestError::MissingScope { needed, .. } => {
            format!("missing scope {} ({method})", needed.as_deref().unwrap_or("(not stated by Slack)"))
        }
        IngestError::TokenType { .. } => format!("needs a user token, not a bot token ({method})"),
        IngestError::PlanUnavailable { code, .. } => format!("not on this Slack plan: {code} ({method})"),
        IngestError::NotPermitted { code, .. } => format!("token not permitted: {code} ({method})"),
        IngestError::Standing { code, meaning, .. } => format!("{code}: {meaning} ({method})"),
        e @ IngestError::RetriesExhausted { .. } => {
            format!("{}: skipped for today ({method}): {e}", e.slack_code().unwrap_or("transitional"))
        }
        other => other.to_string(),
    }
}
