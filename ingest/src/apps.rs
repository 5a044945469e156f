//! The registry of configured apps: each app's secrets loaded and its [`App`] built, so the
//! binary runs a day (or a backfill) without naming any app's client or collectors. Slack is
//! always configured (`[slack]` has defaults); every other app is built when its config
//! section is present.

use lastseen_config::Config;
use secrecy::SecretString;

use crate::error::{IngestError, Result};
use crate::slack::SlackApp;
use crate::source::App;

/// Every configured app, in a fixed order (Slack first), with its secrets loaded now: a
/// missing token fails here, naming its variable or file (`IngestError::Secret`, whose source
/// is the config error), before anything is read or written.
pub fn configured(config: &Config) -> Result<Vec<Box<dyn App>>> {
    let token = config
        .slack
        .token
        .load()
        .map_err(|source| IngestError::Secret { what: "loading the Slack token".into(), source })?;
    let mut apps = vec![slack(config, token)?];
    // Every further app: one branch, loading its own secrets the same way.
    if let Some(okta) = &config.okta {
        apps.push(crate::okta::okta_app(okta)?);
    }
    Ok(apps)
}

/// Slack from `[slack]` with `token` given explicitly (the demo's and tests' simulators; the
/// token is moved into the client and no other copy is kept).
pub fn slack(config: &Config, token: SecretString) -> Result<Box<dyn App>> {
    Ok(Box::new(SlackApp::new(&config.slack, token)?))
}
