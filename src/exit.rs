//! Exit codes (documented in the README) and how errors are printed.

/// Everything worked.
pub const OK: u8 = 0;
/// The run or command failed. The lake only ever moves by whole versions, so no version holds
/// part of a source; but a daily run whose raw commit was published before deriving failed (or
/// was interrupted) says so in its error ("raw tables committed as lake version N") and in its
/// manifest's `lake_version`, and `last_seen` for that day appears only when the day is re-run.
pub const FAILURE: u8 = 1;
/// A usage error: clap's own code, also used for arguments only a command can judge (an unknown
/// report, a parameter the report does not take).
pub const USAGE: u8 = 2;
/// The run committed, but at least one source was skipped (plan, scope or token type).
pub const PARTIAL: u8 = 3;
/// Bad configuration (sysexits EX_CONFIG).
pub const CONFIG: u8 = 78;

/// Marks an error as a configuration problem so `main` exits with [`CONFIG`].
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct ConfigProblem(#[from] pub lastseen_config::ConfigError);

/// An argument only the command can judge (a `--date` in the future): exit [`USAGE`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageProblem(pub String);

pub fn code_for(err: &anyhow::Error) -> u8 {
    if err.chain().any(|e| {
        e.downcast_ref::<ConfigProblem>().is_some() || e.downcast_ref::<lastseen_config::ConfigError>().is_some()
    }) {
        CONFIG
    } else if err.chain().any(|e| {
        matches!(e.downcast_ref(), Some(lastseen_query::QueryError::Usage(_)))
            || e.downcast_ref::<UsageProblem>().is_some()
    }) {
        USAGE
    } else {
        FAILURE
    }
}

/// The error with its causes, `: `-separated, skipping causes whose text the previous already has.
pub fn render(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let s = cause.to_string();
        if out.contains(&s) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&s);
    }
    out
}
