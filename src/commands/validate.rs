//! `lastseen validate`: parse and check the configuration, touch nothing else.

use crate::cli::GlobalArgs;

pub fn run(g: &GlobalArgs) -> anyhow::Result<u8> {
    let cfg = super::load_config(g)?;
    let sources: Vec<String> = cfg.slack.sources.iter().map(ToString::to_string).collect();
    println!("configuration OK ({})", cfg.origin);
    println!("  lake:       {}", cfg.storage.url);
    println!("  slack api:  {}", cfg.slack.api_url);
    println!("  token from: {}", cfg.slack.token.describe());
    println!(
        "  token sent to: {}{}",
        cfg.slack.token_hosts().join(", "),
        if cfg.slack.allow_custom_hosts { " (slack.allow_custom_hosts = true)" } else { "" }
    );
    println!("  sources:    {}", sources.join(", "));
    println!("  dormant after {} days without activity", cfg.reports.dormant_days);
    println!("  daemon:     {}, /healthz and /metrics on {}", cfg.daemon.schedule, cfg.daemon.listen);
    Ok(crate::exit::OK)
}
