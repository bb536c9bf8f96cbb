//! Building rustls configurations from PEM files, with the aws-lc-rs provider.

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::crypto::aws_lc_rs;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::Error;

fn pem_error(what: &str, e: rustls_pki_types::pem::Error) -> Error {
    Error::Config(format!("cannot read {what} PEM: {e}"))
}

fn certificates(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(what, e))?;
    if certs.is_empty() {
        return Err(Error::Config(format!("no certificate in the {what} PEM")));
    }
    Ok(certs)
}

/// The TLS configuration of the SMTP listeners (submission and MX) from the server
/// certificate chain and its private key, both PEM. It exists so that `pecd` does not need
/// to know rustls to enable STARTTLS and implicit TLS.
pub fn server_tls_config(
    cert_chain_pem: &[u8],
    key_pem: &[u8],
) -> Result<Arc<rustls::ServerConfig>, Error> {
    let chain = certificates(cert_chain_pem, "server certificate")?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| pem_error("private key", e))?;
    let config =
        rustls::ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
    Ok(Arc::new(config))
}

/// The TLS configuration of the relay client, trusting exactly the CA certificates given
/// (PEM): PEC traffic goes only to gestori whose certificates the provider chose to trust.
pub fn client_tls_config(ca_pem: &[u8]) -> Result<Arc<rustls::ClientConfig>, Error> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(ca_pem, "CA")? {
        roots.add(cert)?;
    }
    let config =
        rustls::ClientConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
    Ok(Arc::new(config))
}
