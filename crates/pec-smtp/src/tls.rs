//! The relay client's rustls configuration, with the aws-lc-rs provider (the listeners'
//! is `pec_net::tls::server_config`).

use std::sync::Arc;

use crate::Error;
use rustls::RootCertStore;
use rustls::crypto::aws_lc_rs;

/// The TLS configuration of the relay client, trusting exactly the CA certificates given
/// (PEM): PEC traffic goes only to gestori whose certificates the provider chose to trust.
/// Share the returned configuration: its session cache (rustls's default, 256 servers in
/// memory) lets new connections to a gestore resume TLS instead of a full handshake.
pub fn client_tls_config(ca_pem: &[u8]) -> Result<Arc<rustls::ClientConfig>, Error> {
    let mut roots = RootCertStore::empty();
    let certs =
        pec_net::tls::certificates(ca_pem, "CA").map_err(|e| Error::Config(e.to_string()))?;
    for cert in certs {
        roots.add(cert)?;
    }
    client_tls_config_with(roots)
}

/// A client configuration trusting `roots` (the relay's CAs, or the system's for an
/// HTTPS client that talks to servers outside the PEC network).
pub fn client_tls_config_with(roots: RootCertStore) -> Result<Arc<rustls::ClientConfig>, Error> {
    let config =
        rustls::ClientConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
    Ok(Arc::new(config))
}
