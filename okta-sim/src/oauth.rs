//! `POST /oauth2/v1/token`: OAuth 2.0 client credentials with a private key (`private_key_jwt`),
//! as Okta's "Implement OAuth for Okta with a service app" guide describes it, and the access
//! tokens it issues (`Authorization: Bearer …`, scoped `okta.users.read` / `okta.logs.read`).
//!
//! Quotations are from that guide (developer.okta.com/docs/guides/implement-oauth-for-okta-
//! serviceapp) and RFC 7523 / RFC 6749 §5.2, which it follows.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::StatusCode;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use crate::server::{JSON, Reply};

/// The test key pair's private half (PKCS#8 PEM, RSA 2048), for tests that sign assertions; the
/// simulator registers its public half with [`OAuthClient::from_pem`].
pub const TEST_OAUTH_PRIVATE_KEY_PEM: &str = include_str!("../testdata/oauth-test-key.pem");
/// Another key, which no simulated client registers.
pub const OTHER_OAUTH_PRIVATE_KEY_PEM: &str = include_str!("../testdata/oauth-other-key.pem");

/// "The assertion type: `urn:ietf:params:oauth:client-assertion-type:jwt-bearer`".
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A service app registered in the org: its client id, the public key it signs with (DER
/// `RSAPublicKey`), and the Okta scopes granted to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthClient {
    pub client_id: String,
    pub public_key_der: Vec<u8>,
    pub scopes: Vec<String>,
}

impl OAuthClient {
    /// A client whose key pair is the PKCS#8 PEM `private_pem` (the simulator keeps only the
    /// public half).
    pub fn from_pem(client_id: &str, private_pem: &str, scopes: &[&str]) -> Option<OAuthClient> {
        let der = pem_body(private_pem)?;
        let pair = ring::signature::RsaKeyPair::from_pkcs8(&der).ok()?;
        use ring::signature::KeyPair as _;
        Some(OAuthClient {
            client_id: client_id.to_owned(),
            public_key_der: pair.public_key().as_ref().to_vec(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        })
    }
}

/// The DER inside a PEM block.
pub(crate) fn pem_body(pem: &str) -> Option<Vec<u8>> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).map(str::trim).collect();
    STANDARD.decode(body).ok()
}

/// An issued access token: its scopes and its expiry (wall-clock epoch milliseconds: the
/// token's lifetime runs in real time, like the client's own expiry check).
#[derive(Clone, Debug)]
pub(crate) struct Issued {
    pub scopes: Vec<String>,
    pub expires_ms: u64,
}

fn wall_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// RFC 6749 §5.2 error body (Okta's token endpoint answers `error` and `error_description`).
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Reply {
    Reply::json(status, &json!({"error": error, "error_description": description}))
}

fn part(token: &str) -> Option<Value> {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token).ok()?).ok()
}

/// Answers one token request. `base` is the org URL as addressed (the assertion's `aud` must be
/// `{base}/oauth2/v1/token`); an issued token is added to `issued`.
pub(crate) fn token(
    clients: &[OAuthClient],
    issued: &mut HashMap<String, Issued>,
    ttl_secs: u64,
    base: &str,
    body: &[u8],
    serial: u64,
) -> Reply {
    let form: HashMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    // "grant_type: client_credentials"
    if get("grant_type") != "client_credentials" {
        return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", "The grant type is not supported.");
    }
    if get("client_assertion_type") != ASSERTION_TYPE {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "The client_assertion_type is invalid.");
    }
    let assertion = get("client_assertion");
    let parts: Vec<&str> = assertion.split('.').collect();
    let invalid = |why: &str| oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", why);
    let [header, claims, signature] = parts.as_slice() else {
        return invalid("The client_assertion token is not a JWT.");
    };
    let (Some(h), Some(c)) = (part(header), part(claims)) else {
        return invalid("The client_assertion token is not a JWT.");
    };
    // "alg: RS256" (the guide's JWT header); the claims: "aud: the full URL of the resource
    // you're using the JWT to authenticate to" (`https://{yourOktaDomain}/oauth2/v1/token`),
    // "iss and sub: the client_id", "exp: … can be no more than one hour in the future".
    if h["alg"] != "RS256" {
        return invalid("The client_assertion token has an unsupported signature algorithm.");
    }
    let Some(client) = clients.iter().find(|k| c["iss"] == k.client_id.as_str()) else {
        return invalid("The client_assertion token's issuer is not a known client.");
    };
    if c["sub"] != c["iss"] {
        return invalid("The client_assertion token's sub must equal its iss.");
    }
    if c["aud"] != format!("{base}/oauth2/v1/token").as_str() {
        return invalid("The audience claim for client_assertion must be the endpoint invoked for the request.");
    }
    let now = wall_ms() / 1000;
    let exp = c["exp"].as_u64().unwrap_or(0);
    if exp <= now || exp > now + 3600 {
        return invalid("The client_assertion token is expired or expires more than an hour ahead.");
    }
    let Ok(sig) = URL_SAFE_NO_PAD.decode(signature) else {
        return invalid("The client_assertion signature is invalid.");
    };
    let key =
        ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PKCS1_2048_8192_SHA256, &client.public_key_der);
    if key.verify(format!("{header}.{claims}").as_bytes(), &sig).is_err() {
        return invalid("The client_assertion signature is invalid.");
    }
    // "scope: Include the scopes that allow you to perform the actions on the endpoint that you
    // want to access"; a scope not granted to the app is `invalid_scope`.
    let scopes: Vec<String> = get("scope").split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect();
    if scopes.is_empty() || scopes.iter().any(|s| !client.scopes.contains(s)) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "The following scopes were requested, but not granted to the app.",
        );
    }
    let access = format!("eyJsim{}", crate::rng::base62(crate::rng::mix(serial, now, 5150), 40));
    issued.insert(access.clone(), Issued { scopes: scopes.clone(), expires_ms: wall_ms() + ttl_secs * 1000 });
    // The guide's response: token_type, expires_in (3600), access_token, scope.
    Reply {
        status: StatusCode::OK,
        content_type: JSON,
        headers: Vec::new(),
        body: serde_json::to_vec(
            &json!({"token_type": "Bearer", "expires_in": ttl_secs, "access_token": access, "scope": scopes.join(" ")}),
        )
        .unwrap_or_default(),
    }
}

/// The scopes of a live access token, or `None` (unknown or expired).
pub(crate) fn scopes_of(issued: &HashMap<String, Issued>, token: &str) -> Option<Vec<String>> {
    issued.get(token).filter(|t| t.expires_ms > wall_ms()).map(|t| t.scopes.clone())
}
