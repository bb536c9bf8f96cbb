//! The lab PKI (spec §5.3): a root CA name-constrained to the lab gestori's domains, and per
//! gestore a signing certificate with the PEC profile and a TLS server certificate, plus
//! the provider index that lists them. Made with rcgen; nothing here touches a file.

use chrono::{DateTime, Utc};

use crate::Result;

/// What a lab gestore is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GestoreSpec {
    /// Short identifier (e.g. `alfa`), used for file names.
    pub id: String,
    /// `providerName`, placed in the signing certificate's O and CN.
    pub provider_name: String,
    /// The PEC domains it manages; the first is its service domain
    /// (`posta-certificata@<first>`, `mailReceipt` = `ricevute@<first>`).
    pub domains: Vec<String>,
}

/// One lab gestore's certificates and keys, PEM-encoded.
#[derive(Debug, Clone)]
pub struct GestoreCerts {
    /// What it was made for.
    pub spec: GestoreSpec,
    /// The S/MIME signing certificate.
    pub sign_cert_pem: String,
    /// Its private key (PKCS#8).
    pub sign_key_pem: String,
    /// The TLS server certificate (SAN: its domains, `mx.`/`mail.` names, `localhost`, 127.0.0.1).
    pub tls_cert_pem: String,
    /// Its private key (PKCS#8).
    pub tls_key_pem: String,
}

/// A whole lab PKI.
#[derive(Debug, Clone)]
pub struct LabPki {
    /// The root CA certificate.
    pub ca_cert_pem: String,
    /// The root CA key.
    pub ca_key_pem: String,
    /// One entry per gestore, in the order given.
    pub gestori: Vec<GestoreCerts>,
    /// The provider index listing every lab gestore.
    pub index_ldif: String,
}

/// Makes a lab PKI valid from `now` for `days` days.
pub fn generate(gestori: &[GestoreSpec], now: DateTime<Utc>, days: u32) -> Result<LabPki> {
    let _ = (gestori, now, days);
    Err(crate::Error::Pki("not implemented".into()))
}
