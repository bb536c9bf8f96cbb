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

/// What a TLS session negotiated, named as OpenSSL names it, which is how Postfix and
/// Dovecot write it in their `Received:` lines (`using TLSv1.3 with cipher
/// TLS_AES_256_GCM_SHA384 (256/256 bits)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsParameters {
    /// `TLSv1.2` or `TLSv1.3`.
    pub version: &'static str,
    /// The cipher suite's OpenSSL name (`TLS_AES_256_GCM_SHA384`,
    /// `ECDHE-RSA-AES128-GCM-SHA256`).
    pub cipher: &'static str,
    /// The bits of its symmetric key.
    pub bits: u16,
}

impl TlsParameters {
    /// The parameters of a finished handshake; `None` before it, or for a suite this
    /// table does not know (every suite of rustls's safe defaults is in it).
    pub fn of(state: &rustls::CommonState) -> Option<TlsParameters> {
        use rustls::{CipherSuite as S, ProtocolVersion as V};
        let version = match state.protocol_version()? {
            V::TLSv1_3 => "TLSv1.3",
            V::TLSv1_2 => "TLSv1.2",
            _ => return None,
        };
        let (cipher, bits) = match state.negotiated_cipher_suite()?.suite() {
            S::TLS13_AES_256_GCM_SHA384 => ("TLS_AES_256_GCM_SHA384", 256),
            S::TLS13_AES_128_GCM_SHA256 => ("TLS_AES_128_GCM_SHA256", 128),
            S::TLS13_CHACHA20_POLY1305_SHA256 => ("TLS_CHACHA20_POLY1305_SHA256", 256),
            S::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 => ("ECDHE-ECDSA-AES256-GCM-SHA384", 256),
            S::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 => ("ECDHE-ECDSA-AES128-GCM-SHA256", 128),
            S::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 => {
                ("ECDHE-ECDSA-CHACHA20-POLY1305", 256)
            }
            S::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => ("ECDHE-RSA-AES256-GCM-SHA384", 256),
            S::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => ("ECDHE-RSA-AES128-GCM-SHA256", 128),
            S::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => ("ECDHE-RSA-CHACHA20-POLY1305", 256),
            _ => return None,
        };
        Some(TlsParameters {
            version,
            cipher,
            bits,
        })
    }
}
