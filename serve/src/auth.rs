//! Logins: SCRAM-SHA-256 only (pgwire offers no other mechanism through this handler, so no
//! cleartext or MD5 password ever crosses the wire). Passwords are turned into salted SCRAM
//! hashes at startup and the plaintext is dropped (zeroized by `SecretString`).
//!
//! The handler also refuses a plaintext connection when the listener requires TLS: pgwire accepts
//! a client that never asks for TLS, so the check must be ours.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use futures::Sink;
use pgwire::api::auth::sasl::SASLAuthStartupHandler;
use pgwire::api::auth::sasl::scram::{ScramAuth, gen_salted_password};
use pgwire::api::auth::{AuthSource, DefaultServerParameterProvider, LoginInfo, Password, StartupHandler};
use pgwire::api::{ClientInfo, METADATA_USER};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use secrecy::{ExposeSecret, SecretString};

/// RFC 7677's minimum, and Postgres' default.
pub const ITERATIONS: usize = 4096;

/// The salted SCRAM hashes of the configured users.
pub struct Users {
    by_name: HashMap<String, Password>,
    /// Answer for an unknown user: a hash of a random password, so the exchange fails the same
    /// way (and takes the same time) as a wrong password and does not reveal who exists.
    decoy: Password,
}

impl Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Users").field("names", &self.by_name.keys().collect::<Vec<_>>()).finish()
    }
}

impl Users {
    pub fn new(users: Vec<(String, SecretString)>) -> Users {
        let hash = |password: &str| {
            let salt: [u8; 16] = rand_bytes();
            Password::new(Some(salt.to_vec()), gen_salted_password(password, &salt, ITERATIONS))
        };
        let by_name = users.iter().map(|(name, secret)| (name.clone(), hash(secret.expose_secret()))).collect();
        let decoy = hash(&String::from_utf8_lossy(&rand_bytes::<24>()));
        Users { by_name, decoy }
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

/// Random bytes from the OS, through ring (already linked for TLS).
fn rand_bytes<const N: usize>() -> [u8; N] {
    use ring::rand::SecureRandom;
    let mut out = [0u8; N];
    ring::rand::SystemRandom::new().fill(&mut out).expect("the OS random source is available");
    out
}

#[async_trait]
impl AuthSource for Users {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        let name = login.user().unwrap_or_default();
        Ok(self.by_name.get(name).cloned().unwrap_or_else(|| self.decoy.clone()))
    }
}

/// One connection's login: TLS check, then SCRAM-SHA-256 through pgwire.
pub struct Login {
    inner: SASLAuthStartupHandler<DefaultServerParameterProvider>,
    require_tls: bool,
    /// Set when the server already serves `serve.max_connections` connections: this one is
    /// refused at its first message with Postgres' own "too many clients" error, so the client
    /// says why at once instead of hanging in the kernel's backlog.
    full: Option<usize>,
}

impl Login {
    pub fn new(users: Arc<Users>, certificate_pem: Option<&[u8]>, require_tls: bool, full: Option<usize>) -> Login {
        let mut scram = ScramAuth::new(users);
        scram.set_iterations(ITERATIONS);
        if let Some(pem) = certificate_pem {
            // Channel binding (SCRAM-SHA-256-PLUS) for clients that ask for it; the PEM was
            // already parsed by the TLS setup, so a failure here only loses the -PLUS variant.
            if let Err(e) = scram.configure_certificate(pem) {
                tracing::warn!(error = %e, "SCRAM channel binding unavailable");
            }
        }
        let mut params = DefaultServerParameterProvider::default();
        params.server_version = format!("16.6 (lastseen {})", env!("CARGO_PKG_VERSION"));
        params.is_superuser = false;
        params.default_transaction_read_only = true;
        params.time_zone = "UTC".into();
        params.date_style = "ISO, MDY".into();
        let inner = SASLAuthStartupHandler::new(Arc::new(params)).with_scram(scram);
        Login { inner, require_tls, full }
    }
}

#[async_trait]
impl StartupHandler for Login {
    async fn on_startup<C>(&self, client: &mut C, message: PgWireFrontendMessage) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if let Some(max) = self.full {
            tracing::warn!(peer = %client.socket_addr(), max, "refused a connection: serve.max_connections reached");
            return Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                "FATAL".into(),
                "53300".into(),
                format!(
                    "sorry, too many clients already: this lastseen server serves at most {max} connections at once \
                     (serve.max_connections); try again when one closes"
                ),
            ))));
        }
        if self.require_tls && !client.is_secure() {
            tracing::warn!(peer = %client.socket_addr(), "refused a connection without TLS");
            return Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                "FATAL".into(),
                "28000".into(),
                "this server accepts only TLS connections: connect with sslmode=require (or verify-full)".into(),
            ))));
        }
        let result = self.inner.on_startup(client, message).await;
        if let Err(e) = &result {
            let user = client.metadata().get(METADATA_USER).cloned().unwrap_or_default();
            tracing::warn!(user, peer = %client.socket_addr(), error = %e, "login failed");
        }
        result
    }
}
