//! OAuth 2.0 client credentials with a private key (`private_key_jwt`), the way Okta recommends
//! a service app to call its Management API ("Implement OAuth for Okta with a service app"): a
//! short JWT signed RS256 with the app's private key (`iss` = `sub` = client id, `aud` = the
//! token URL, `exp` within the hour, a random `jti`) is exchanged at `/oauth2/v1/token` for an
//! access token with the configured scopes, sent as `Authorization: Bearer …` and renewed before
//! it expires. The key is read once from a file readable only by its owner; neither it nor a
//! token ever reaches a message, a log line or `Debug` output.

use std::fmt;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::Utc;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use secrecy::SecretString;
use secrecy::zeroize::Zeroizing;
use serde::Deserialize;
use serde_json::json;
use url::Url;

use crate::error::{IngestError, Result};

/// The counter label and the name in errors of the token endpoint.
pub const TOKEN: &str = "Okta /oauth2/v1/token";

/// A PEM key is a few KiB; anything far larger is the wrong file.
const MAX_KEY_FILE: u64 = 64 * 1024;

/// How long a client assertion is valid ("no more than one hour in the future"; five minutes is
/// what Okta's own SDKs use).
const ASSERTION_SECS: i64 = 300;

/// A service app's credentials.
pub struct OAuthClient {
    client_id: String,
    key_id: Option<String>,
    scopes: String,
    key: RsaKeyPair,
    token_url: Url,
    http: reqwest::Client,
    /// For messages: `OAuth client … with the private key in file …`.
    pub(crate) source: String,
}

impl fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthClient")
            .field("client_id", &self.client_id)
            .field("key", &"[redacted]")
            .field("token_url", &self.token_url.as_str())
            .finish_non_exhaustive()
    }
}

/// A token answer (`token_type`, `expires_in`, `access_token`, `scope`) or an error answer
/// (`error`, `error_description`, RFC 6749 §5.2).
#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

impl OAuthClient {
    /// Reads the PKCS#8 PEM key from `path` (which must not be readable by group or others).
    pub fn new(
        org_url: &Url,
        client_id: &str,
        key_id: Option<&str>,
        scopes: &[String],
        path: &Path,
        timeout: Duration,
    ) -> Result<OAuthClient> {
        let source = format!("OAuth client {client_id} with the private key in file {}", path.display());
        let key = read_key(path)?;
        let token_url = org_url
            .join("oauth2/v1/token")
            .map_err(|e| IngestError::Setup(format!("building the Okta token URL: {e}")))?;
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("lastseen/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| IngestError::Setup(format!("building the HTTP client: {e}")))?;
        Ok(OAuthClient {
            client_id: client_id.to_owned(),
            key_id: key_id.map(str::to_owned),
            scopes: scopes.join(" "),
            key,
            token_url,
            http,
            source,
        })
    }

    pub fn token_url(&self) -> &Url {
        &self.token_url
    }

    /// The signed client assertion (a JWT: header, claims, RS256 signature).
    fn assertion(&self) -> Result<String> {
        let rng = SystemRandom::new();
        let mut jti = [0u8; 16];
        rng.fill(&mut jti).map_err(|_| IngestError::Setup("no randomness for the client assertion".into()))?;
        let now = Utc::now().timestamp();
        let mut header = json!({"alg": "RS256", "typ": "JWT"});
        if let Some(kid) = &self.key_id {
            header["kid"] = json!(kid);
        }
        let claims = json!({
            "aud": self.token_url.as_str(),
            "iss": self.client_id,
            "sub": self.client_id,
            "iat": now,
            "exp": now + ASSERTION_SECS,
            "jti": jti.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        });
        let encode = |v: &serde_json::Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap_or_default());
        let signed = format!("{}.{}", encode(&header), encode(&claims));
        let mut signature = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(&RSA_PKCS1_SHA256, &rng, signed.as_bytes(), &mut signature)
            .map_err(|_| IngestError::Setup(format!("signing the client assertion of {}", self.source)))?;
        Ok(format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }

    /// Exchanges a fresh assertion for an access token: the token and how long it lives.
    pub async fn fetch(&self) -> Result<(SecretString, Duration)> {
        let assertion = Zeroizing::new(self.assertion()?);
        let form: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "client_credentials")
            .append_pair("scope", &self.scopes)
            .append_pair("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
            .append_pair("client_assertion", &assertion)
            .finish();
        let form = Zeroizing::new(form);
        let response = self
            .http
            .post(self.token_url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(reqwest::header::ACCEPT, "application/json")
            .body(form.as_bytes().to_vec())
            .send()
            .await
            .map_err(|e| IngestError::transport(TOKEN, &e, false))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| IngestError::transport(TOKEN, &e, true))?;
        let answer: TokenAnswer = serde_json::from_slice(&body).map_err(|e| IngestError::Decode {
            method: TOKEN.to_owned(),
            detail: format!("HTTP {status}, not Okta's token answer: {e}"),
            retriable: status.is_server_error(),
        })?;
        match (status.is_success(), answer.access_token) {
            (true, Some(token)) if !token.is_empty() => {
                Ok((SecretString::from(token), Duration::from_secs(answer.expires_in.unwrap_or(3600))))
            }
            _ => {
                let code = answer.error.unwrap_or_else(|| format!("http_{}", status.as_u16()));
                let summary = answer.error_description.unwrap_or_default();
                Err(match code.as_str() {
                    // The app or its key is not what Okta has: fix the credentials.
                    "invalid_client" | "unauthorized_client" => IngestError::Auth {
                        method: format!("{TOKEN} ({summary})"),
                        code,
                        token_source: self.source.clone(),
                    },
                    _ => IngestError::ApiError {
                        method: TOKEN.to_owned(),
                        status: status.as_u16(),
                        code,
                        summary: format!("{summary} (check okta.scopes against the scopes granted to the app in Okta)"),
                        retriable: status.is_server_error(),
                    },
                })
            }
        }
    }
}

/// The RSA key in a PKCS#8 PEM file; errors name the file, never its content.
fn read_key(path: &Path) -> Result<RsaKeyPair> {
    let shown = path.display();
    let fail = |why: String| IngestError::Setup(format!("okta.private_key_file {shown}: {why}"));
    let mut file = std::fs::File::open(path).map_err(|e| fail(format!("cannot read it: {e}")))?;
    let meta = file.metadata().map_err(|e| fail(format!("cannot read it: {e}")))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(fail(format!(
                "it is accessible by group or others (mode {mode:03o}); run `chmod 600 {shown}`"
            )));
        }
    }
    if meta.len() > MAX_KEY_FILE {
        return Err(fail(format!("it is {} bytes; expected one PEM private key", meta.len())));
    }
    let mut text = Zeroizing::new(String::with_capacity(meta.len() as usize + 1));
    file.read_to_string(&mut text).map_err(|e| fail(format!("cannot read it: {e}")))?;
    if text.contains("BEGIN RSA PRIVATE KEY") {
        return Err(fail(
            "it holds a PKCS#1 key; convert it to PKCS#8 with `openssl pkcs8 -topk8 -nocrypt -in KEY -out KEY8`".into(),
        ));
    }
    if !text.contains("BEGIN PRIVATE KEY") {
        return Err(fail("it is not a PEM private key (-----BEGIN PRIVATE KEY-----)".into()));
    }
    let body: Zeroizing<String> =
        Zeroizing::new(text.lines().filter(|l| !l.starts_with("-----")).map(str::trim).collect::<Vec<_>>().concat());
    let der = Zeroizing::new(STANDARD.decode(body.as_bytes()).map_err(|_| fail("its PEM body is not base64".into()))?);
    RsaKeyPair::from_pkcs8(&der).map_err(|e| fail(format!("not an RSA private key Okta can verify ({e})")))
}
