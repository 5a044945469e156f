//! `TokenSource`: where an app's token (Slack's user token, Okta's API token) is read from, and
//! loading it into a `SecretString` without the value ever reaching an error message, a log line
//! or `Debug` output.

use std::ffi::OsString;
use std::fmt;
use std::io::Read;
use std::path::PathBuf;

use secrecy::SecretString;
use secrecy::zeroize::Zeroize;

use crate::error::{ConfigError, Result};

/// Slack tokens are ~60–100 bytes; anything far larger is the wrong file.
const MAX_TOKEN_FILE_BYTES: u64 = 16 * 1024;

/// What a token is, for the messages that say what to put where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenKind {
    /// The app, as error messages start (`slack`, `okta`).
    pub app: &'static str,
    /// What the variable or file must hold.
    pub hint: &'static str,
}

/// Slack's user token.
pub const SLACK_TOKEN: TokenKind = TokenKind { app: "slack", hint: "a Slack user token (xoxp-…)" };
/// An Okta API token (sent as `Authorization: SSWS …`).
pub const OKTA_API_TOKEN: TokenKind =
    TokenKind { app: "okta", hint: "an Okta API token (Security > API > Tokens in the Admin Console)" };

/// Where the token comes from. Holds only the variable name or path, never the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// Name of an environment variable holding the token.
    Env(String),
    /// A file whose (trimmed) content is the token; must not be readable by group or others.
    File(PathBuf),
}

impl fmt::Display for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenSource::Env(name) => write!(f, "env {name}"),
            TokenSource::File(path) => write!(f, "file {}", path.display()),
        }
    }
}

impl TokenSource {
    /// Reads the Slack token. Errors name the variable or file and what to do, never the value.
    pub fn load(&self) -> Result<SecretString> {
        self.load_as(SLACK_TOKEN)
    }

    /// Reads a token of `kind` (an Okta API token, say).
    pub fn load_as(&self, kind: TokenKind) -> Result<SecretString> {
        self.load_kind_with(kind, |name| std::env::var_os(name))
    }

    /// Human description for logs and `lastseen check`: `env SLACK_TOKEN` / `file /run/…`.
    pub fn describe(&self) -> String {
        self.to_string()
    }

    /// `load` with the environment lookup injected, so tests need not mutate the process
    /// environment (which is `unsafe` in edition 2024 and racy across test threads).
    pub(crate) fn load_kind_with(
        &self,
        kind: TokenKind,
        getenv: impl FnOnce(&str) -> Option<OsString>,
    ) -> Result<SecretString> {
        let hint = kind.hint;
        let token_err = |message: String| ConfigError::Token { app: kind.app, message };
        match self {
            TokenSource::Env(name) => {
                let missing = || token_err(format!("{name} is not set; set {name} to {hint}"));
                let value = getenv(name).ok_or_else(missing)?;
                let value = value
                    .into_string()
                    .map_err(|_| token_err(format!("{name} is not valid UTF-8; set {name} to {hint}")))?;
                finish(value, &format!("environment variable {name}"), hint).map_err(|e| match e {
                    Problem::Empty => token_err(format!("{name} is empty; set {name} to {hint}")),
                    Problem::Whitespace(m) => token_err(m),
                })
            }
            TokenSource::File(path) => {
                let shown = path.display();
                let mut file =
                    std::fs::File::open(path).map_err(|e| token_err(format!("cannot read token file {shown}: {e}")))?;
                let meta = file.metadata().map_err(|e| token_err(format!("cannot read token file {shown}: {e}")))?;
                if !meta.is_file() {
                    return Err(token_err(format!("token file {shown} is not a regular file")));
                }
                check_permissions(&meta, &shown.to_string()).map_err(token_err)?;
                if meta.len() > MAX_TOKEN_FILE_BYTES {
                    return Err(token_err(format!(
                        "token file {shown} is {} bytes; expected just the token",
                        meta.len()
                    )));
                }
                // Sized up front so the buffer never reallocates, which would leave an
                // unzeroed copy of the token behind in freed memory.
                let mut text = String::with_capacity(meta.len() as usize + 1);
                file.read_to_string(&mut text).map_err(|e| {
                    text.zeroize();
                    token_err(format!("cannot read token file {shown}: {e}"))
                })?;
                finish(text, &format!("token file {shown}"), hint).map_err(|e| match e {
                    Problem::Empty => token_err(format!("token file {shown} is empty; write {hint} into it")),
                    Problem::Whitespace(m) => token_err(m),
                })
            }
        }
    }
}

enum Problem {
    Empty,
    Whitespace(String),
}

/// Trims and checks the raw value, wiping the untrimmed copy either way.
fn finish(mut raw: String, what: &str, hint: &str) -> std::result::Result<SecretString, Problem> {
    let result = {
        let token = raw.trim();
        if token.is_empty() {
            Err(Problem::Empty)
        } else if token.chars().any(char::is_whitespace) {
            Err(Problem::Whitespace(format!(
                "{what} contains whitespace inside the token; it must hold a single token \
                 ({hint})"
            )))
        } else {
            Ok(SecretString::from(token.to_owned()))
        }
    };
    raw.zeroize();
    result
}

#[cfg(unix)]
fn check_permissions(meta: &std::fs::Metadata, shown: &str) -> std::result::Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "token file {shown} is accessible by group or others (mode {mode:03o}); \
             run `chmod 600 {shown}`"
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_meta: &std::fs::Metadata, _shown: &str) -> std::result::Result<(), String> {
    // No portable mode bits; ACLs are the operator's responsibility on other platforms.
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::io::Write;

    const TOKEN: &str = "xoxp-1234-secret-value";

    #[test]
    fn token_from_env() {
        let src = TokenSource::Env("MY_TOKEN".into());
        let tok = src.load_kind_with(SLACK_TOKEN, |n| (n == "MY_TOKEN").then(|| format!(" {TOKEN}\n").into())).unwrap();
        assert_eq!(tok.expose_secret(), TOKEN);
        assert_eq!(src.describe(), "env MY_TOKEN");
    }

    #[test]
    fn missing_env_names_the_variable() {
        let src = TokenSource::Env("LASTSEEN_TEST_SURELY_UNSET_TOKEN_4242".into());
        let msg = src.load().unwrap_err().to_string();
        assert!(msg.contains("LASTSEEN_TEST_SURELY_UNSET_TOKEN_4242 is not set"), "{msg}");
        assert!(msg.contains("xoxp-"), "{msg}");
        let msg =
            TokenSource::Env("T".into()).load_kind_with(SLACK_TOKEN, |_| Some("  ".into())).unwrap_err().to_string();
        assert!(msg.contains("T is empty"), "{msg}");
    }

    #[test]
    fn whitespace_inside_is_rejected_without_echo() {
        let msg = TokenSource::Env("T".into())
            .load_kind_with(SLACK_TOKEN, |_| Some(format!("{TOKEN} extra").into()))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("whitespace"), "{msg}");
        assert!(!msg.contains("secret-value"), "{msg}");
    }

    fn token_file(mode: u32) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "{TOKEN}").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(f.path(), std::fs::Permissions::from_mode(mode)).unwrap();
        }
        #[cfg(not(unix))]
        let _ = mode;
        f
    }

    #[test]
    fn token_from_private_file() {
        let f = token_file(0o600);
        let src = TokenSource::File(f.path().to_path_buf());
        assert_eq!(src.load().unwrap().expose_secret(), TOKEN);
        assert_eq!(src.describe(), format!("file {}", f.path().display()));
    }

    #[cfg(unix)]
    #[test]
    fn world_readable_file_is_refused() {
        let f = token_file(0o644);
        let msg = TokenSource::File(f.path().to_path_buf()).load().unwrap_err().to_string();
        assert!(msg.contains("chmod 600"), "{msg}");
        assert!(msg.contains(&f.path().display().to_string()), "{msg}");
        assert!(!msg.contains("secret-value"), "{msg}");
    }

    #[test]
    fn missing_file_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope");
        let msg = TokenSource::File(path.clone()).load().unwrap_err().to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
    }
}
