//! `lastseen check`: who the token is, which workspaces it sees, and for every source whether it
//! works or why not (scope by name, plan, token type), from the same probes `run` uses.

use std::sync::Arc;

use anyhow::Context;
use chrono::Utc;
use lastseen_config::Source;
use lastseen_ingest::slack::{self, Probe, RunContext, Settings};
use lastseen_ingest::{IngestError, SlackClient};

use crate::cli::GlobalArgs;

pub async fn run(g: &GlobalArgs) -> anyhow::Result<u8> {
    let cfg = super::load_config(g)?;
    let token = cfg.slack.token.load().map_err(crate::exit::ConfigProblem::from).context("loading the Slack token")?;
    let client = Arc::new(SlackClient::new(&cfg.slack, token).context("setting up the Slack client")?);
    let scope = slack::discover(&client).await.context("checking the Slack token with auth.test")?;
    let auth = &scope.auth;
    println!("token:       {} ({})", scope.token_kind(), cfg.slack.token);
    println!("team:        {} ({})", auth.team, auth.team_id);
    if let Some(e) = &auth.enterprise_id {
        println!("enterprise:  {e}");
    }
    println!("user:        {}", auth.user_id);
    let ids: Vec<&str> = scope.workspaces.iter().map(|w| w.id.as_str()).collect();
    println!("workspaces:  {} ({})", ids.len(), ids.join(", "));
    match &auth.scopes {
        Some(s) => println!("scopes:      {}", s.join(", ")),
        None => println!("scopes:      (Slack did not report them)"),
    }
    println!();

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
            (*s, slack::probe(c.as_ref(), ctx).await)
        }
    }))
    .await;

    let mut rows = Vec::new();
    let mut problem = false;
    for (source, result) in results {
        let configured = cfg.slack.sources.contains(&source);
        let (status, why) = match result {
            Ok(Probe::Works) if configured => ("works", String::new()),
            Ok(Probe::Works) => ("off", "works, but not in slack.sources".to_owned()),
            Ok(Probe::Unavailable(e)) => {
                problem |= configured && cfg.slack.expects(source);
                ("skipped", reason(&e))
            }
            Err(e) if e.is_auth() => return Err(anyhow::Error::new(e).context(format!("probing source `{source}`"))),
            Err(e) => {
                problem |= configured;
                ("error", e.to_string())
            }
        };
        rows.push((source.to_string(), status, why));
    }
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(6).max(6);
    println!("{:width$}  {:7}  why", "source", "status");
    for (source, status, why) in rows {
        println!("{source:width$}  {status:7}  {why}");
    }
    Ok(if problem { crate::exit::PARTIAL } else { crate::exit::OK })
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
        other => other.to_string(),
    }
}
