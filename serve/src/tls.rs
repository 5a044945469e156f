//! The listener's TLS: the certificate chain and key are read and checked as a pair at startup,
//! so a bad file stops the server instead of silently serving plaintext.

use std::sync::Arc;

use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::{Result, ServeError};

/// A TLS acceptor for `cert` (PEM chain, server certificate first) and `key` (PEM private key).
/// Also returns the PEM of the chain, which SCRAM-SHA-256-PLUS binds the login to.
pub fn acceptor(files: &lastseen_config::TlsFiles) -> Result<(TlsAcceptor, Vec<u8>)> {
    let cert_pem = std::fs::read(&files.cert)
        .map_err(|e| ServeError::Tls(format!("cannot read certificate {}: {e}", files.cert.display())))?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| ServeError::Tls(format!("certificate {} is not PEM: {e}", files.cert.display())))?;
    if certs.is_empty() {
        return Err(ServeError::Tls(format!("{} holds no certificate", files.cert.display())));
    }
    let key_pem = std::fs::read(&files.key)
        .map_err(|e| ServeError::Tls(format!("cannot read private key {}: {e}", files.key.display())))?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| ServeError::Tls(format!("{} holds no usable PEM private key: {e}", files.key.display())))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServeError::Tls(e.to_string()))?
        .with_no_client_auth()
        // Checks that the key signs for the certificate's public key (a mismatched pair fails here).
        .with_single_cert(certs, key)
        .map_err(|e| {
            ServeError::Tls(format!(
                "certificate {} and key {} are not a usable pair: {e}",
                files.cert.display(),
                files.key.display()
            ))
        })?;
    Ok((TlsAcceptor::from(Arc::new(config)), cert_pem))
}
