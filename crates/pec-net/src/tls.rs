//! The TLS side of every listener: the server configuration built from PEM files, with
//! the aws-lc-rs provider and rustls's safe defaults (TLS 1.2 and 1.3, AEAD ciphers only).

use std::sync::Arc;

use rustls::crypto::aws_lc_rs;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::{Error, Result};

fn pem_error(what: &str, e: rustls::pki_types::pem::Error) -> Error {
    Error::Config(format!("cannot read {what} PEM: {e}"))
}

/// The certificates of a PEM file (a chain, a CA bundle); an error when there is none.
/// Shared by the listeners and the relay client, which trusts a CA bundle.
pub fn certificates(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| pem_error(what, e))?;
    if certs.is_empty() {
        return Err(Error::Config(format!("no certificate in the {what} PEM")));
    }
    Ok(certs)
}

/// The TLS configuration of the listeners (SMTP, IMAP, POP3, HTTPS) from the server
/// certificate chain and its private key, both PEM, so that `pecd` and the tests need
/// not know rustls to enable STARTTLS and implicit TLS.
pub fn server_config(cert_chain_pem: &[u8], key_pem: &[u8]) -> Result<Arc<rustls::ServerConfig>> {
    let chain = certificates(cert_chain_pem, "server certificate")?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| pem_error("private key", e))?;
    let config =
        rustls::ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
    Ok(Arc::new(config))
}
