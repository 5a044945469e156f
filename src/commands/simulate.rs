//! `lastseen simulate`: the Slack simulator as a standalone server.

use std::net::SocketAddr;
use std::time::Instant;

use anyhow::Context;
use chrono::Utc;
use lastseen_slack_sim::{OrgSpec, Plan, RateLimits, SimConfig, Simulator, load_conditions, load_faults};

use crate::cli::SimulateArgs;

pub async fn run(args: &SimulateArgs) -> anyhow::Result<u8> {
    let plan: Plan = args.plan.parse().map_err(|e| anyhow::anyhow!("--plan: {e}"))?;
    let mut org = OrgSpec::new(args.seed, args.users, plan, Utc::now().date_naive(), args.history_days);
    if plan == Plan::Enterprise {
        org.workspaces = args.workspaces;
    }
    let rate_limits =
        if args.rate_scale > 0.0 { RateLimits::Tiers { scale: args.rate_scale } } else { RateLimits::Off };
    let (faults, conditions) = match &args.faults {
        Some(path) => (
            load_faults(path).with_context(|| format!("loading faults from {}", path.display()))?,
            load_conditions(path).with_context(|| format!("loading [conditions] from {}", path.display()))?,
        ),
        None => (Vec::new(), Default::default()),
    };
    // Handlers first: a SIGTERM right after the URLs are printed must stop the server cleanly.
    let shutdown = shutdown_signal()?;
    let started = Instant::now();
    let addr = SocketAddr::from(([127, 0, 0, 1], args.port));
    let sim = Simulator::start(SimConfig { org, rate_limits, faults, conditions }, addr)
        .await
        .context("starting the simulator")?;
    outln!(
        "slack simulator ready in {:.2}s: {} accounts, plan {plan}",
        started.elapsed().as_secs_f64(),
        sim.org().len()
    );
    outln!("  web api      {}", sim.api_url());
    outln!("  govslack api {}", sim.gov_api_url());
    outln!("  scim         {}", sim.scim_url());
    outln!("  audit        {}", sim.audit_url());
    outln!("  user token   {}", sim.user_token());
    outln!("  bot token    {}", sim.bot_token());
    if let Some(t) = sim.org_token() {
        outln!("  org token    {t}");
    }
    outln!(
        "  clock        POST {}/_sim/clock?now=<epoch>; ground truth at /_sim/ground_truth?as_of=<epoch>",
        sim_base(&sim.api_url())
    );
    outln!(
        "Try: SLACK_TOKEN={} LASTSEEN_SLACK__API_URL={} lastseen run --lake ./sim-lake",
        sim.user_token(),
        sim.api_url()
    );
    shutdown.await;
    sim.shutdown().await;
    Ok(crate::exit::OK)
}

fn sim_base(api_url: &str) -> &str {
    api_url.strip_suffix("/api").unwrap_or(api_url)
}

/// Resolves on Ctrl-C or SIGTERM. The handlers are installed when this is called, not when
/// the future is first polled.
pub(crate) fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    let ctrl_c = tokio::signal::ctrl_c();
    Ok(async move {
        #[cfg(unix)]
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
    })
}
