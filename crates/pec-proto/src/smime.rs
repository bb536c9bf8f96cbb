//! S/MIME for PEC (spec §5.2, §5.4): detached CMS signing behind the [`Signer`] trait, and
//! verification of SHA-1 and SHA-256 signatures from any gestore.
//!
//! Verification answers three separate questions: are the signed bytes intact, who signed
//! (certificate, e-mail, digest, signing time), and is that signer trusted (its certificate
//! is in the provider index and chains to the configured CAs).

use chrono::{DateTime, Utc};

use crate::Result;
use crate::index::ProviderIndex;

/// The digest algorithm of a CMS signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Digest {
    /// SHA-1, still used by some gestori.
    Sha1,
    /// SHA-256, what this gestore emits.
    Sha256,
}

impl Digest {
    /// The `micalg` parameter value of `multipart/signed` (RFC 5751).
    pub fn micalg(self) -> &'static str {
        match self {
            Digest::Sha1 => "sha-1",
            Digest::Sha256 => "sha-256",
        }
    }

    /// The short name used in reports (`sha1`, `sha256`).
    pub fn name(self) -> &'static str {
        match self {
            Digest::Sha1 => "sha1",
            Digest::Sha256 => "sha256",
        }
    }
}

/// Something that makes detached CMS signatures with the gestore's key.
///
/// A trait so that a hardware security module can replace the key file later.
pub trait Signer: Send + Sync {
    /// The e-mail address in the signing certificate's subjectAltName: the `From:` of every
    /// message the gestore generates.
    fn address(&self) -> &str;
    /// The digest algorithm this signer uses.
    fn digest(&self) -> Digest;
    /// A DER-encoded detached CMS SignedData over `content`, including the signer
    /// certificate, with `signingTime` set to `signing_time`.
    fn sign_detached(&self, content: &[u8], signing_time: DateTime<Utc>) -> Result<Vec<u8>>;
}

/// The signer certificate as found in a signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerCert {
    /// The subject DN, one line (OpenSSL's `oneline` style is fine).
    pub subject: String,
    /// The first rfc822Name of its subjectAltName.
    pub email: Option<String>,
    /// Upper-case hex SHA-1 of the DER certificate (what `providerCertificateHash` holds).
    pub sha1_hex: String,
    /// The DER certificate.
    pub der: Vec<u8>,
}

/// What a signature says about the bytes it covers and who made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureReport {
    /// The signed bytes match the signature (regardless of certificate validity).
    pub intact: bool,
    /// The signer certificate, when the signature carries it.
    pub signer: Option<SignerCert>,
    /// The digest algorithm of the SignerInfo.
    pub digest: Option<Digest>,
    /// The `signingTime` signed attribute.
    pub signing_time: Option<DateTime<Utc>>,
    /// Why `intact` is false or a field is missing, for humans.
    pub problem: Option<String>,
}

/// Whether a signer is trusted as a PEC gestore (spec §5.4 steps 3, 4 and 6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trust {
    /// The certificate is in the index and chains to a configured CA at the given time.
    pub trusted: bool,
    /// The `providerName` of the index record whose hash matched.
    pub provider: Option<String>,
    /// Why it is not trusted, for humans.
    pub problem: Option<String>,
}

/// Verifies the detached CMS signature `p7s_der` over `content` (the exact bytes of the
/// first part of a `multipart/signed`, CRLF line endings).
///
/// Never fails: anything unreadable is reported as not intact with a `problem`.
pub fn verify_detached(content: &[u8], p7s_der: &[u8]) -> SignatureReport {
    let _ = (content, p7s_der);
    SignatureReport {
        intact: false,
        signer: None,
        digest: None,
        signing_time: None,
        problem: Some("not implemented".into()),
    }
}

/// Trust anchors (the PEC CAs) against which signer certificates are checked.
pub struct TrustAnchors {
    _private: (),
}

impl TrustAnchors {
    /// Loads one or more PEM certificates (a bundle) as trust anchors.
    pub fn from_pem(pem: &[u8]) -> Result<TrustAnchors> {
        let _ = pem;
        Ok(TrustAnchors { _private: () })
    }
}

/// Whether `cert_der` is a gestore certificate at time `at`: its SHA-1 is in `index`, it is
/// byte-equal to a `providerCertificate` of that record, it is within its validity period,
/// and, when `anchors` are given, it chains to them.
pub fn trust(
    cert_der: &[u8],
    index: &ProviderIndex,
    anchors: Option<&TrustAnchors>,
    at: DateTime<Utc>,
) -> Trust {
    let _ = (cert_der, index, anchors, at);
    Trust {
        trusted: false,
        provider: None,
        problem: Some("not implemented".into()),
    }
}
