//! Exit codes (documented in the README) and how errors are printed.

/// Everything worked.
pub const OK: u8 = 0;
/// The run or command failed; nothing partial was published.
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

pub fn code_for(err: &anyhow::Error) -> u8 {
    if err.chain().any(|e| {
        e.downcast_ref::<ConfigProblem>().is_some() || e.downcast_ref::<lastseen_config::ConfigError>().is_some()
    }) {
        CONFIG
    } else if err.chain().any(|e| matches!(e.downcast_ref(), Some(lastseen_query::QueryError::Usage(_)))) {
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
