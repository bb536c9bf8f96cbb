//! S/MIME for PEC (spec §5.2, §5.4): detached CMS signing behind the [`Signer`] trait, and
//! verification of SHA-1 and SHA-256 signatures from any gestore.
//!
//! Verification answers three separate questions: are the signed bytes intact, who signed
//! (certificate, e-mail, digest, signing time), and is that signer trusted (its certificate
//! is in the provider index and chains to the configured CAs).

use std::ffi::{c_int, c_void};
use std::fmt;
use std::ptr;

use chrono::{DateTime, Utc};
use der::asn1::ObjectIdentifier;
use der::{Decode, Encode};
use foreign_types::ForeignType;
use openssl::asn1::Asn1Time;
use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::error::ErrorStack;
use openssl::pkey::{PKey, Private};
use openssl::stack::Stack;
use openssl::x509::store::{X509Store, X509StoreBuilder};
use openssl::x509::verify::{X509VerifyFlags, X509VerifyParam};
use openssl::x509::{CrlStatus, X509, X509Crl, X509PurposeId, X509Ref, X509StoreContext};

use crate::index::ProviderIndex;
use crate::{Error, Result};

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

/// Functions of libcrypto that `openssl-sys` does not declare. They exist in every OpenSSL
/// since 1.0.2 and in the 3.x series this crate links against.
mod ffi_ext {
    use std::ffi::{c_int, c_uint, c_void};

    use openssl_sys::{BIO, CMS_ContentInfo, EVP_MD, EVP_PKEY, X509};

    /// `CMS_SignerInfo`, opaque; always owned by its `CMS_ContentInfo`.
    #[allow(non_camel_case_types)]
    pub enum CMS_SignerInfo {}

    unsafe extern "C" {
        pub fn CMS_add1_signer(
            cms: *mut CMS_ContentInfo,
            signer: *mut X509,
            pk: *mut EVP_PKEY,
            md: *const EVP_MD,
            flags: c_uint,
        ) -> *mut CMS_SignerInfo;
        pub fn CMS_signed_add1_attr_by_NID(
            si: *mut CMS_SignerInfo,
            nid: c_int,
            attr_type: c_int,
            bytes: *const c_void,
            len: c_int,
        ) -> c_int;
        pub fn CMS_final(
            cms: *mut CMS_ContentInfo,
            data: *mut BIO,
            dcont: *mut BIO,
            flags: c_uint,
        ) -> c_int;
    }
}

/// A read-only memory BIO over a borrowed slice, freed on drop.
struct MemBio<'a> {
    bio: *mut openssl_sys::BIO,
    _data: std::marker::PhantomData<&'a [u8]>,
}

impl<'a> MemBio<'a> {
    fn new(data: &'a [u8]) -> Result<MemBio<'a>> {
        let len = c_int::try_from(data.len())
            .map_err(|_| Error::Smime("content too large to sign".into()))?;
        openssl_sys::init();
        // SAFETY: BIO_new_mem_buf makes a read-only BIO that borrows `data` for `len` bytes;
        // the PhantomData ties the BIO's lifetime to the slice, and Drop frees it.
        let bio = unsafe { openssl_sys::BIO_new_mem_buf(data.as_ptr().cast::<c_void>(), len) };
        if bio.is_null() {
            return Err(ErrorStack::get().into());
        }
        Ok(MemBio {
            bio,
            _data: std::marker::PhantomData,
        })
    }
}

impl Drop for MemBio<'_> {
    fn drop(&mut self) {
        // SAFETY: `bio` came from BIO_new_mem_buf, is non-null and is freed exactly once.
        unsafe {
            openssl_sys::BIO_free_all(self.bio);
        }
    }
}

/// The gestore's signing key and certificate in PEM files, used through OpenSSL.
///
/// Emits what spec §5.2 describes: a detached CMS SignedData over the exact bytes given
/// (binary, no MIME canonicalisation), signed attributes `contentType`, `signingTime` and
/// `messageDigest`, the signer certificate (and the chain, if given) included.
pub struct OpensslSigner {
    cert: X509,
    key: PKey<Private>,
    chain: Vec<X509>,
    digest: Digest,
    address: String,
}

impl fmt::Debug for OpensslSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpensslSigner")
            .field("address", &self.address)
            .field("digest", &self.digest)
            .field("chain", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl OpensslSigner {
    /// Loads the signing certificate, its private key (PKCS#8 or traditional PEM) and an
    /// optional chain (PEM bundle of CA certificates to include in every signature).
    ///
    /// Fails if the key does not match the certificate or the certificate has no
    /// rfc822Name in its subjectAltName (the `From:` address of generated messages).
    pub fn from_pem(
        cert_pem: &[u8],
        key_pem: &[u8],
        chain_pem: Option<&[u8]>,
        digest: Digest,
    ) -> Result<Self> {
        let cert = X509::from_pem(cert_pem)
            .map_err(|e| Error::Smime(format!("signing certificate: {e}")))?;
        let key = PKey::private_key_from_pem(key_pem)
            .map_err(|e| Error::Smime(format!("signing key: {e}")))?;
        if !cert.public_key()?.public_eq(&key) {
            return Err(Error::Smime(
                "the signing key does not match the signing certificate".into(),
            ));
        }
        let chain = match chain_pem {
            Some(pem) => X509::stack_from_pem(pem)
                .map_err(|e| Error::Smime(format!("certificate chain: {e}")))?,
            None => Vec::new(),
        };
        let address = first_san_email(&cert).ok_or_else(|| {
            Error::Smime("the signing certificate has no rfc822Name in its subjectAltName".into())
        })?;
        Ok(OpensslSigner {
            cert,
            key,
            chain,
            digest,
            address,
        })
    }

    /// The signing certificate, DER-encoded (what the provider index lists).
    pub fn certificate_der(&self) -> Result<Vec<u8>> {
        Ok(self.cert.to_der()?)
    }

    /// `content` inside a CMS SignedData that carries it, DER-encoded (a `.p7m`), signed
    /// with the PEC key: how a gestore publishes its own provider-index record (spec §9.2).
    pub fn sign_attached(&self, content: &[u8]) -> Result<Vec<u8>> {
        let mut chain = Stack::new()?;
        for c in &self.chain {
            chain.push(c.clone())?;
        }
        let cms = CmsContentInfo::sign(
            Some(&self.cert),
            Some(&self.key),
            Some(&chain),
            Some(content),
            CMSOptions::BINARY | CMSOptions::NOSMIMECAP,
        )?;
        Ok(cms.to_der()?)
    }
}

impl Signer for OpensslSigner {
    fn address(&self) -> &str {
        &self.address
    }

    fn digest(&self) -> Digest {
        self.digest
    }

    fn sign_detached(&self, content: &[u8], signing_time: DateTime<Utc>) -> Result<Vec<u8>> {
        // PARTIAL: CMS_sign only makes the empty SignedData; the signer is added below so
        // that signingTime can be set before CMS_final signs. NOSMIMECAP: the attributes
        // observed in real PEC signatures are only contentType, signingTime, messageDigest.
        let flags = CMSOptions::PARTIAL
            | CMSOptions::DETACHED
            | CMSOptions::BINARY
            | CMSOptions::NOSMIMECAP;
        let mut chain = Stack::new()?;
        for c in &self.chain {
            chain.push(c.clone())?;
        }
        let certs = if self.chain.is_empty() {
            None
        } else {
            Some(&*chain)
        };
        let cms = CmsContentInfo::sign::<Private>(None, None, certs, None, flags)?;
        let when = Asn1Time::from_unix(unix_time(signing_time)?)?;
        let data = MemBio::new(content)?;
        let md = match self.digest {
            // SAFETY: these return pointers to static digest descriptions.
            Digest::Sha1 => unsafe { openssl_sys::EVP_sha1() },
            Digest::Sha256 => unsafe { openssl_sys::EVP_sha256() },
        };
        // SAFETY: every pointer is valid for the duration of the calls: `cms`, `self.cert`,
        // `self.key`, `when` and `data` are owned values alive until the end of this
        // function. CMS_add1_signer takes its own references to the certificate and key and
        // returns a SignerInfo owned by `cms` (never freed here).
        // CMS_signed_add1_attr_by_NID copies the time value; OpenSSL keeps an existing
        // signingTime instead of adding the wall clock at CMS_final. CMS_final reads the
        // content BIO, computes messageDigest and signs.
        unsafe {
            let si = ffi_ext::CMS_add1_signer(
                cms.as_ptr(),
                self.cert.as_ptr(),
                self.key.as_ptr(),
                md,
                flags.bits(),
            );
            if si.is_null() {
                return Err(ErrorStack::get().into());
            }
            let time_type = openssl_sys::ASN1_STRING_type(when.as_ptr().cast());
            if ffi_ext::CMS_signed_add1_attr_by_NID(
                si,
                openssl_sys::NID_pkcs9_signingTime,
                time_type,
                when.as_ptr().cast::<c_void>().cast_const(),
                -1,
            ) != 1
            {
                return Err(ErrorStack::get().into());
            }
            if ffi_ext::CMS_final(cms.as_ptr(), data.bio, ptr::null_mut(), flags.bits()) != 1 {
                return Err(ErrorStack::get().into());
            }
        }
        Ok(cms.to_der()?)
    }
}

/// Seconds since the epoch in OpenSSL's `time_t` (`i64` on 64-bit targets, narrower on
/// some others).
fn unix_time<T: TryFrom<i64>>(t: DateTime<Utc>) -> Result<T> {
    T::try_from(t.timestamp()).map_err(|_| Error::Smime(format!("time {t} out of range")))
}

/// The first rfc822Name of a certificate's subjectAltName.
fn first_san_email(cert: &X509Ref) -> Option<String> {
    cert.subject_alt_names()?
        .iter()
        .find_map(|n| n.email().map(str::to_owned))
}

/// Upper-case hex SHA-1 of `der`: the form of `providerCertificateHash` (spec §9.2).
pub fn sha1_hex(der: &[u8]) -> String {
    openssl::sha::sha1(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

/// The subject DN on one line, `C=IT, O=..., CN=...` in certificate order.
fn subject_line(cert: &X509Ref) -> String {
    name_line(cert.subject_name())
}

/// A distinguished name on one line, `C=IT, O=..., CN=...`.
fn name_line(name: &openssl::x509::X509NameRef) -> String {
    name.entries()
        .map(|e| {
            let key = e
                .object()
                .nid()
                .short_name()
                .map(str::to_owned)
                .unwrap_or_else(|_| e.object().to_string());
            let value = e.data().to_string().unwrap_or_else(|_| "?".into());
            format!("{key}={value}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Describes a signer certificate given as DER.
fn signer_cert(der: &[u8]) -> std::result::Result<SignerCert, String> {
    let cert = X509::from_der(der).map_err(|e| format!("unreadable signer certificate: {e}"))?;
    Ok(SignerCert {
        subject: subject_line(&cert),
        email: first_san_email(&cert),
        sha1_hex: sha1_hex(der),
        der: der.to_vec(),
    })
}

const OID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const OID_SIGNING_TIME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.5");
const OID_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
const OID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");

/// What the first SignerInfo of a SignedData says.
#[derive(Default)]
struct SignerMeta {
    signer: Option<SignerCert>,
    digest: Option<Digest>,
    signing_time: Option<DateTime<Utc>>,
    problems: Vec<String>,
}

/// Reads signer, digest and signingTime from a DER CMS ContentInfo.
fn signer_meta(der: &[u8]) -> std::result::Result<SignerMeta, String> {
    use cms::cert::CertificateChoices;
    use cms::content_info::ContentInfo;
    use cms::signed_data::{SignedData, SignerIdentifier};
    use x509_cert::ext::pkix::SubjectKeyIdentifier;

    let ci = ContentInfo::from_der(der).map_err(|e| format!("CMS ContentInfo: {e}"))?;
    if ci.content_type != OID_SIGNED_DATA {
        return Err(format!(
            "CMS content type {} is not SignedData",
            ci.content_type
        ));
    }
    let sd: SignedData = ci
        .content
        .decode_as()
        .map_err(|e| format!("CMS SignedData: {e}"))?;
    let si = sd
        .signer_infos
        .0
        .iter()
        .next()
        .ok_or_else(|| "SignedData without SignerInfo".to_string())?;
    let mut meta = SignerMeta::default();
    if sd.signer_infos.0.len() > 1 {
        meta.problems
            .push("more than one SignerInfo; reporting the first".into());
    }
    meta.digest = match si.digest_alg.oid {
        OID_SHA1 => Some(Digest::Sha1),
        OID_SHA256 => Some(Digest::Sha256),
        other => {
            meta.problems
                .push(format!("unsupported digest algorithm {other}"));
            None
        }
    };
    let time_attr = si
        .signed_attrs
        .as_ref()
        .and_then(|attrs| attrs.iter().find(|a| a.oid == OID_SIGNING_TIME))
        .and_then(|a| a.values.iter().next());
    match time_attr {
        Some(v) => match v.to_der().and_then(|d| x509_cert::time::Time::from_der(&d)) {
            Ok(t) => {
                let secs = t.to_unix_duration().as_secs();
                meta.signing_time = i64::try_from(secs)
                    .ok()
                    .and_then(|s| DateTime::<Utc>::from_timestamp(s, 0));
            }
            Err(e) => meta.problems.push(format!("bad signingTime: {e}")),
        },
        None => meta.problems.push("no signingTime attribute".into()),
    }
    let certs = sd
        .certificates
        .as_ref()
        .map(|set| {
            set.0
                .iter()
                .filter_map(|c| match c {
                    CertificateChoices::Certificate(c) => Some(c),
                    CertificateChoices::Other(_) => None,
                })
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let found = certs.into_iter().find(|c| match &si.sid {
        SignerIdentifier::IssuerAndSerialNumber(isn) => {
            c.tbs_certificate.issuer == isn.issuer
                && c.tbs_certificate.serial_number == isn.serial_number
        }
        SignerIdentifier::SubjectKeyIdentifier(ski) => matches!(
            c.tbs_certificate.get::<SubjectKeyIdentifier>(),
            Ok(Some((_, ref found))) if found == ski
        ),
    });
    match found {
        Some(c) => {
            let der = c.to_der().map_err(|e| format!("signer certificate: {e}"))?;
            match signer_cert(&der) {
                Ok(sc) => meta.signer = Some(sc),
                Err(p) => meta.problems.push(p),
            }
        }
        None => meta
            .problems
            .push("the signer certificate is not in the signature".into()),
    }
    Ok(meta)
}

/// Verifies the detached CMS signature `p7s_der` over `content` (the exact bytes of the
/// first part of a `multipart/signed`, CRLF line endings).
///
/// `intact` only says that the content and signed attributes match the signature made
/// with the key of the included signer certificate; certificate validity, chain and
/// index membership are the business of [`trust`]. Never fails: anything unreadable is
/// reported as not intact with a `problem`.
pub fn verify_detached(content: &[u8], p7s_der: &[u8]) -> SignatureReport {
    let mut report = SignatureReport {
        intact: false,
        signer: None,
        digest: None,
        signing_time: None,
        problem: None,
    };
    let mut cms = match CmsContentInfo::from_der(p7s_der) {
        Ok(cms) => cms,
        Err(e) => {
            report.problem = Some(format!("not a CMS signature: {e}"));
            return report;
        }
    };
    // The metadata parser wants DER; OpenSSL accepts BER (indefinite lengths, as some
    // signers emit) and re-encodes it, so retry with its encoding if the original fails.
    let meta = signer_meta(p7s_der).or_else(|first| match cms.to_der() {
        Ok(der) => signer_meta(&der).map_err(|_| first),
        Err(_) => Err(first),
    });
    let mut problems = Vec::new();
    match meta {
        Ok(m) => {
            report.signer = m.signer;
            report.digest = m.digest;
            report.signing_time = m.signing_time;
            problems = m.problems;
        }
        Err(p) => problems.push(p),
    }
    // NO_SIGNER_CERT_VERIFY: an expired or unknown certificate must not look like tampered
    // bytes. BINARY: the content is compared byte for byte, no CRLF translation.
    let flags = CMSOptions::NO_SIGNER_CERT_VERIFY | CMSOptions::BINARY;
    match cms.verify(None, None, Some(content), None, flags) {
        Ok(()) => report.intact = true,
        Err(e) => problems.insert(0, format!("the signature does not match the content: {e}")),
    }
    if !problems.is_empty() {
        report.problem = Some(problems.join("; "));
    }
    report
}

/// Trust anchors (the PEC CAs) against which signer certificates are checked, with the
/// certificate revocation lists the CAs publish.
///
/// Every certificate of the bundle is an anchor (a chain may end at an intermediate such as
/// AgID CA1 without its root). A signer certificate listed as revoked in the CRL of its
/// issuer is not trusted (spec §5.4 step 6).
#[derive(Clone)]
pub struct TrustAnchors {
    certs: Vec<X509>,
    crls: Vec<std::sync::Arc<X509Crl>>,
}

impl fmt::Debug for TrustAnchors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let subjects: Vec<String> = self.certs.iter().map(|c| subject_line(c)).collect();
        f.debug_struct("TrustAnchors")
            .field("subjects", &subjects)
            .field("crls", &self.crls.len())
            .finish()
    }
}

/// The PEM blocks of `pem` labelled `label`, each with its armour lines.
fn pem_blocks<'a>(pem: &'a str, label: &str) -> Vec<&'a str> {
    let (begin, end) = (
        format!("-----BEGIN {label}-----"),
        format!("-----END {label}-----"),
    );
    let mut blocks = Vec::new();
    let mut rest = pem;
    while let Some(start) = rest.find(&begin) {
        let Some(len) = rest[start..].find(&end) else {
            break;
        };
        let stop = start + len + end.len();
        blocks.push(&rest[start..stop]);
        rest = &rest[stop..];
    }
    blocks
}

impl TrustAnchors {
    /// Loads one or more PEM certificates (a bundle) as trust anchors.
    pub fn from_pem(pem: &[u8]) -> Result<TrustAnchors> {
        let certs =
            X509::stack_from_pem(pem).map_err(|e| Error::Smime(format!("trust anchors: {e}")))?;
        if certs.is_empty() {
            return Err(Error::Smime(
                "trust anchors: no certificate in the bundle".into(),
            ));
        }
        Ok(TrustAnchors {
            certs,
            crls: Vec::new(),
        })
    }

    /// Adds the CRLs of a PEM file (one or more `X509 CRL` blocks). Each must be signed by
    /// one of the anchors: a CRL nobody trusted issued is refused, not ignored.
    pub fn add_crls_pem(&mut self, pem: &[u8]) -> Result<usize> {
        let text =
            std::str::from_utf8(pem).map_err(|_| Error::Smime("CRL file: not PEM text".into()))?;
        let blocks = pem_blocks(text, "X509 CRL");
        if blocks.is_empty() {
            return Err(Error::Smime("CRL file: no X509 CRL block".into()));
        }
        for block in &blocks {
            let crl = X509Crl::from_pem(block.as_bytes())
                .map_err(|e| Error::Smime(format!("CRL: {e}")))?;
            let signed_by_anchor = self.certs.iter().any(|ca| {
                ca.subject_name()
                    .try_cmp(crl.issuer_name())
                    .is_ok_and(|o| o.is_eq())
                    && ca
                        .public_key()
                        .and_then(|k| crl.verify(&k))
                        .unwrap_or(false)
            });
            if !signed_by_anchor {
                return Err(Error::Smime(format!(
                    "CRL of {} is not signed by a trusted PEC CA",
                    name_line(crl.issuer_name())
                )));
            }
            self.crls.push(std::sync::Arc::new(crl));
        }
        Ok(blocks.len())
    }

    /// Why `cert` counts as revoked at `at` by the CRL of its issuer, if it does.
    fn revoked(&self, cert: &X509, at: &Asn1Time) -> Option<String> {
        self.crls
            .iter()
            .filter(|crl| {
                crl.issuer_name()
                    .try_cmp(cert.issuer_name())
                    .is_ok_and(|o| o.is_eq())
            })
            .find_map(|crl| match crl.get_by_cert(cert) {
                CrlStatus::Revoked(entry) if entry.revocation_date() <= at => Some(format!(
                    "certificate revoked on {} (CRL of {} issued {})",
                    entry.revocation_date(),
                    name_line(crl.issuer_name()),
                    crl.last_update()
                )),
                _ => None,
            })
    }

    /// The anchors as an OpenSSL store for the S/MIME signing purpose, checking at
    /// `check_time` (Unix seconds) or, without it, now.
    fn store(&self, check_time: Option<i64>) -> std::result::Result<X509Store, ErrorStack> {
        let mut builder = X509StoreBuilder::new()?;
        for c in &self.certs {
            builder.add_cert(c.clone())?;
        }
        let mut param = X509VerifyParam::new()?;
        if let Some(t) = check_time {
            param.set_time(t);
        }
        param.set_flags(X509VerifyFlags::PARTIAL_CHAIN)?;
        builder.set_param(&param)?;
        builder.set_purpose(X509PurposeId::SMIME_SIGN)?;
        Ok(builder.build())
    }

    /// The content of a signed `.p7m` (CMS SignedData with its content, DER) whose
    /// signature is intact and whose signer chains to the anchors now and is not revoked
    /// by their CRLs: how a downloaded provider index is accepted (spec §9.1, checklist
    /// item 73).
    pub fn open_signed(&self, p7m_der: &[u8]) -> Result<Vec<u8>> {
        let mut cms = CmsContentInfo::from_der(p7m_der)
            .map_err(|e| Error::Smime(format!("not a CMS SignedData: {e}")))?;
        let store = self.store(None)?;
        let mut content = Vec::new();
        cms.verify(
            None,
            Some(&store),
            None,
            Some(&mut content),
            CMSOptions::BINARY,
        )
        .map_err(|e| Error::Smime(format!("signature not valid or not trusted: {e}")))?;
        let now = Asn1Time::days_from_now(0)?;
        let signer = signer_meta(p7m_der)
            .ok()
            .and_then(|m| m.signer)
            .and_then(|s| X509::from_der(&s.der).ok());
        match signer {
            Some(cert) => match self.revoked(&cert, &now) {
                Some(reason) => Err(Error::Smime(format!("signer of the file: {reason}"))),
                None => Ok(content),
            },
            None => Err(Error::Smime(
                "the signer certificate is not in the file".into(),
            )),
        }
    }

    /// Checks that `cert` chains to one of the anchors at time `at` (S/MIME signing purpose,
    /// name constraints included). The error is OpenSSL's reason.
    fn verify(&self, cert: &X509Ref, at: DateTime<Utc>) -> std::result::Result<(), String> {
        let check_time = unix_time(at).map_err(|e| e.to_string())?;
        let build = || -> std::result::Result<Option<String>, ErrorStack> {
            let store = self.store(Some(check_time))?;
            let untrusted = Stack::new()?;
            let mut ctx = X509StoreContext::new()?;
            ctx.init(&store, cert, &untrusted, |c| {
                Ok(if c.verify_cert()? {
                    None
                } else {
                    Some(c.error().error_string().to_owned())
                })
            })
        };
        match build() {
            Ok(None) => Ok(()),
            Ok(Some(reason)) => Err(reason),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Whether `cert_der` is a gestore certificate at time `at` (spec §5.4 steps 3, 4, 6): its
/// SHA-1 is in `index`, it is byte-equal to a `providerCertificate` of that record, it is
/// within its validity period, and, when `anchors` are given, it chains to them.
///
/// Revocation (also step 6) is checked against the CRLs added to `anchors`; OCSP is not
/// used.
pub fn trust(
    cert_der: &[u8],
    index: &ProviderIndex,
    anchors: Option<&TrustAnchors>,
    at: DateTime<Utc>,
) -> Trust {
    let refuse = |provider: Option<String>, problem: String| Trust {
        trusted: false,
        provider,
        problem: Some(problem),
    };
    let hash = sha1_hex(cert_der);
    let Some(record) = index.by_certificate_hash(&hash) else {
        return refuse(
            None,
            format!("certificate SHA-1 {hash} is not in the provider index"),
        );
    };
    let provider = Some(record.name.clone());
    if !record.certificates.iter().any(|c| c == cert_der) {
        return refuse(
            provider,
            format!(
                "certificate SHA-1 {hash} is listed for {:?} but the certificate is not one of \
                 its providerCertificate values",
                record.name
            ),
        );
    }
    let cert = match X509::from_der(cert_der) {
        Ok(c) => c,
        Err(e) => return refuse(provider, format!("unreadable certificate: {e}")),
    };
    let at_asn1 = match unix_time(at).and_then(|t| Ok(Asn1Time::from_unix(t)?)) {
        Ok(t) => t,
        Err(e) => return refuse(provider, format!("time {at} out of range: {e}")),
    };
    if cert.not_before() > at_asn1 || cert.not_after() < at_asn1 {
        return refuse(
            provider,
            format!(
                "certificate outside its validity period at {at} (valid {} .. {})",
                cert.not_before(),
                cert.not_after()
            ),
        );
    }
    if let Some(anchors) = anchors {
        if let Err(reason) = anchors.verify(&cert, at) {
            return refuse(
                provider,
                format!("certificate does not chain to the trusted PEC CAs at {at}: {reason}"),
            );
        }
        if let Some(reason) = anchors.revoked(&cert, &at_asn1) {
            return refuse(provider, reason);
        }
    }
    Trust {
        trusted: true,
        provider,
        problem: None,
    }
}
