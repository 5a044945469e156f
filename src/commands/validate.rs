//! `lastseen validate`: parse and check the configuration, touch nothing else.

use crate::cli::GlobalArgs;

pub fn run(g: &GlobalArgs) -> anyhow::Result<u8> {
    let cfg = super::load_config(g)?;
    let sources: Vec<String> = cfg.slack.sources.iter().map(ToString::to_string).collect();
    outln!("configuration OK ({})", cfg.origin);
    outln!("  lake:       {}", cfg.storage.url);
    outln!("  slack api:  {}", cfg.slack.api_url);
    outln!("  token from: {}", cfg.slack.token.describe());
    outln!(
        "  token sent to: {}{}",
        cfg.slack.token_hosts().join(", "),
        if cfg.slack.allow_custom_hosts { " (slack.allow_custom_hosts = true)" } else { "" }
    );
    outln!("  sources:    {}", sources.join(", "));
    outln!("  dormant after {} days without activity", cfg.reports.dormant_days);
    outln!("  daemon:     {}, /healthz and /metrics on {}", cfg.daemon.schedule, cfg.daemon.listen);
    Ok(crate::exit::OK)
}
