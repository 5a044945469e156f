//! `[serve]`: `lastseen serve`, the lake over the Postgres wire protocol. Where it listens, its
//! TLS certificate and key, the users allowed in (each password read from an environment
//! variable or a private file, never from this file), and the limits every query runs under.
//!
//! Secure by default: a listener off loopback without a certificate is a configuration error,
//! not a warning, and there is no "any password" mode (no users = nobody gets in).

use std::ffi::OsString;
use std::fmt;
use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use secrecy::zeroize::Zeroize;

use crate::error::{ConfigError, Result};

/// A password file is one line; anything far larger is the wrong file.
const MAX_PASSWORD_FILE_BYTES: u64 = 4096;

/// Validated `[serve]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeConfig {
    /// Address of the Postgres listener (port 0 picks a free port).
    pub listen: SocketAddr,
    /// PEM certificate chain and private key; both or neither. Required off loopback.
    pub tls: Option<TlsFiles>,
    /// Who may log in (SCRAM-SHA-256). Empty: the server refuses to start.
    pub users: Vec<ServeUser>,
    /// Connections served at once; one more is refused with "too many clients" (53300).
    pub max_connections: usize,
    /// Memory one query may use for sorts, joins and aggregations (bytes); past it the query
    /// fails alone ("resources exhausted") and the server keeps serving.
    pub query_memory: usize,
    /// A query running longer than this is cancelled.
    pub query_timeout: Duration,
    /// How often the newest committed lake version is looked for.
    pub refresh: Duration,
    /// Also run this listener inside `lastseen daemon`.
    pub in_daemon: bool,
}

/// The certificate chain and key files of the listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// One login: a name and where its password is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeUser {
    pub name: String,
    pub password: PasswordSource,
}

/// Where a password comes from. Holds only the variable name or path, never the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    Env(String),
    /// A file whose (trimmed) content is the password; must not be readable by group or others.
    File(PathBuf),
}

impl fmt::Display for PasswordSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PasswordSource::Env(name) => write!(f, "env {name}"),
            PasswordSource::File(path) => write!(f, "file {}", path.display()),
        }
    }
}

impl ServeConfig {
    /// Whether the listener is on a loopback address (the only place plaintext is allowed).
    pub fn is_loopback(&self) -> bool {
        self.listen.ip().is_loopback()
    }
}

impl PasswordSource {
    /// Reads the password of `user`. Errors name the user and the variable or file, never the value.
    pub fn load(&self, user: &str) -> Result<SecretString> {
        self.load_with(user, |name| std::env::var_os(name))
    }

    pub(crate) fn load_with(&self, user: &str, getenv: impl FnOnce(&str) -> Option<OsString>) -> Result<SecretString> {
        let err = |message: String| ConfigError::Secret { message: format!("user `{user}`: {message}") };
        let (mut raw, what) = match self {
            PasswordSource::Env(name) => {
                let value = getenv(name).ok_or_else(|| err(format!("{name} is not set; set it to the password")))?;
                let value = value.into_string().map_err(|_| err(format!("{name} is not valid UTF-8")))?;
                (value, format!("environment variable {name}"))
            }
            PasswordSource::File(path) => {
                let shown = path.display();
                let mut file =
                    std::fs::File::open(path).map_err(|e| err(format!("cannot read password file {shown}: {e}")))?;
                let meta = file.metadata().map_err(|e| err(format!("cannot read password file {shown}: {e}")))?;
                if !meta.is_file() {
                    return Err(err(format!("password file {shown} is not a regular file")));
                }
                private(&meta, &shown.to_string()).map_err(err)?;
                if meta.len() > MAX_PASSWORD_FILE_BYTES {
                    return Err(err(format!("password file {shown} is {} bytes; expected one line", meta.len())));
                }
                // Sized up front so the buffer never reallocates (an unzeroed copy would stay behind).
                let mut text = String::with_capacity(meta.len() as usize + 1);
                if let Err(e) = file.read_to_string(&mut text) {
                    text.zeroize();
                    return Err(err(format!("cannot read password file {shown}: {e}")));
                }
                (text, format!("password file {shown}"))
            }
        };
        let trimmed = raw.trim_end_matches(['\n', '\r']);
        let result = if trimmed.is_empty() {
            Err(err(format!("{what} is empty")))
        } else if trimmed.chars().count() < MIN_PASSWORD_CHARS {
            Err(err(format!("the password in {what} is shorter than {MIN_PASSWORD_CHARS} characters")))
        } else {
            Ok(SecretString::from(trimmed.to_owned()))
        };
        raw.zeroize();
        result
    }
}

/// A password a dictionary attack on a captured SCRAM exchange would not find at once.
pub const MIN_PASSWORD_CHARS: usize = 12;

#[cfg(unix)]
fn private(meta: &std::fs::Metadata, shown: &str) -> std::result::Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "password file {shown} is accessible by group or others (mode {mode:03o}); run `chmod 600 {shown}`"
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn private(_meta: &std::fs::Metadata, _shown: &str) -> std::result::Result<(), String> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn load(toml: &str) -> Result<crate::Config> {
        crate::Config::from_toml_str(toml, "t.toml", Vec::<(String, String)>::new())
    }

    #[test]
    fn defaults_are_loopback_without_users() {
        let c = load("").unwrap().serve;
        assert_eq!(c.listen.to_string(), "127.0.0.1:5433");
        assert!(c.is_loopback() && c.tls.is_none() && c.users.is_empty() && !c.in_daemon);
        assert_eq!(c.query_memory, 512 << 20);
        assert_eq!(c.query_timeout, Duration::from_secs(300));
    }

    #[test]
    fn off_loopback_needs_tls_and_tls_needs_both_files() {
        let e = load("[serve]\nlisten = \"0.0.0.0:5433\"\n").unwrap_err();
        assert_eq!(e.field(), Some("serve.listen"));
        assert!(e.to_string().contains("TLS"), "{e}");
        let ok = load("[serve]\nlisten = \"0.0.0.0:5433\"\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\n").unwrap();
        assert_eq!(ok.serve.tls, Some(TlsFiles { cert: "c.pem".into(), key: "k.pem".into() }));
        assert_eq!(load("[serve]\ntls_cert = \"c.pem\"\n").unwrap_err().field(), Some("serve.tls_key"));
    }

    #[test]
    fn users_need_exactly_one_password_source_and_unique_names() {
        let one = "[[serve.users]]\nname = \"ana\"\npassword_env = \"ANA_PW\"\n";
        let c = load(one).unwrap().serve;
        assert_eq!(c.users, vec![ServeUser { name: "ana".into(), password: PasswordSource::Env("ANA_PW".into()) }]);
        let e = load("[[serve.users]]\nname = \"ana\"\n").unwrap_err();
        assert_eq!(e.field(), Some("serve.users[0].password_env"));
        let e = load(&format!("{one}{one}")).unwrap_err();
        assert_eq!(e.field(), Some("serve.users[1].name"));
        let e = load("[[serve.users]]\nname = \"ana\"\npassword = \"x\"\n").unwrap_err();
        assert!(e.to_string().contains("password"), "{e}");
    }

    #[test]
    fn password_from_env_never_echoed() {
        let src = PasswordSource::Env("P".into());
        let p = src.load_with("ana", |_| Some("correct horse battery\n".into())).unwrap();
        assert_eq!(p.expose_secret(), "correct horse battery");
        let msg = src.load_with("ana", |_| Some("short".into())).unwrap_err().to_string();
        assert!(msg.contains("user `ana`") && msg.contains("shorter than 12"), "{msg}");
        assert!(!msg.contains("short\""), "{msg}");
        let msg = src.load_with("ana", |_| None).unwrap_err().to_string();
        assert!(msg.contains("P is not set"), "{msg}");
    }

    #[cfg(unix)]
    #[test]
    fn shared_password_file_is_refused() {
        use std::io::Write;
        use std::os::unix::fs::PermissionsExt;
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "a long enough password").unwrap();
        std::fs::set_permissions(f.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
        let msg = PasswordSource::File(f.path().into()).load("ana").unwrap_err().to_string();
        assert!(msg.contains("chmod 600"), "{msg}");
        std::fs::set_permissions(f.path(), std::fs::Permissions::from_mode(0o600)).unwrap();
        let p = PasswordSource::File(f.path().into()).load("ana").unwrap();
        assert_eq!(p.expose_secret(), "a long enough password");
    }
}
