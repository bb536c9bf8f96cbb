//! S/MIME for PEC (spec §5.2, §5.4): detached CMS signing behind the [`Signer`] trait, and
//! verification of SHA-1 and SHA-256 signatures from any gestore.
//!
//! Verification answers three separate questions: are the signed bytes intact, who signed
//! (certificate, e-mail, digest, signing time, the CA certificates the signature carries),
//! and is that signer trusted (its certificate is in the provider index and chains, through
//! the CAs the signature carries, to the configured ones). As production signatures do,
//! ours carry the signer certificate and the CAs of its chain but the root, so that a
//! receiver trusting only the root can build the path.
//!
//! OpenSSL checks every signature, but never parses a certificate twice: the structure is
//! read with the RustCrypto `cms` crate, its certificates are looked up (or parsed once)
//! in the certificate cache (`certcache.rs`), and OpenSSL is given the SignedData without
//! them plus the parsed signer certificate.

use std::collections::HashMap;
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

use crate::certcache;
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
    /// certificate and the CA certificates of its chain but the root, with `signingTime`
    /// set to `signing_time`.
    fn sign_detached(&self, content: &[u8], signing_time: DateTime<Utc>) -> Result<Vec<u8>>;
    /// The certificates every signature carries, DER-encoded: the signer's and its CAs'
    /// but the root. With them the gestore judges its own signature as a receiver would
    /// (the hand-off of its own envelopes); `None` (the default) when the signer cannot
    /// tell, and then its envelopes are examined like any other.
    fn certificates(&self) -> Option<(&[u8], &[Vec<u8>])> {
        None
    }
}

/// A [`Signer`] that calls `on_signed` after each signature it makes: how metrics and the
/// benchmark count the signatures of a running gestore without knowing its key.
pub struct CountedSigner<F> {
    inner: std::sync::Arc<dyn Signer>,
    on_signed: F,
}

impl<F: Fn() + Send + Sync> CountedSigner<F> {
    /// `inner`, reporting each signature it makes to `on_signed`.
    pub fn new(inner: std::sync::Arc<dyn Signer>, on_signed: F) -> Self {
        CountedSigner { inner, on_signed }
    }
}

impl<F: Fn() + Send + Sync> Signer for CountedSigner<F> {
    fn address(&self) -> &str {
        self.inner.address()
    }

    fn digest(&self) -> Digest {
        self.inner.digest()
    }

    fn sign_detached(&self, content: &[u8], signing_time: DateTime<Utc>) -> Result<Vec<u8>> {
        let signed = self.inner.sign_detached(content, signing_time)?;
        (self.on_signed)();
        Ok(signed)
    }

    fn certificates(&self) -> Option<(&[u8], &[Vec<u8>])> {
        self.inner.certificates()
    }
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
    /// The other certificates the signature carries (DER, at most [`MAX_CARRIED`]): the
    /// intermediate CAs [`trust`] builds the path to the anchors with.
    pub chain: Vec<Vec<u8>>,
}

/// How many certificates besides the signer's a signature may bring to path building;
/// real chains carry one (AgID CA1). More are ignored, and reported.
pub const MAX_CARRIED: usize = 8;

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
/// `messageDigest`, the signer certificate and its CA certificates but the root included
/// (the real receipts carry AgID CA1).
pub struct OpensslSigner {
    cert: X509,
    key: PKey<Private>,
    chain: Vec<X509>,
    digest: Digest,
    address: String,
    /// `cert` and `chain`, DER-encoded once ([`Signer::certificates`]).
    der: (Vec<u8>, Vec<Vec<u8>>),
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
    /// Loads the signing certificate with its chain (`sign.pem`: the signer certificate
    /// first, then the CAs that issued it) and its private key (PKCS#8 or traditional PEM).
    /// Every signature carries the certificates of `cert_pem` but a self-signed root,
    /// which a receiver must already trust and which would prove nothing.
    ///
    /// Fails if the key does not match the certificate or the certificate has no
    /// rfc822Name in its subjectAltName (the `From:` address of generated messages).
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8], digest: Digest) -> Result<Self> {
        let mut certs = X509::stack_from_pem(cert_pem)
            .map_err(|e| Error::Smime(format!("signing certificate: {e}")))?
            .into_iter();
        let cert = certs
            .next()
            .ok_or_else(|| Error::Smime("signing certificate: no certificate in the PEM".into()))?;
        let key = PKey::private_key_from_pem(key_pem)
            .map_err(|e| Error::Smime(format!("signing key: {e}")))?;
        if !cert.public_key()?.public_eq(&key) {
            return Err(Error::Smime(
                "the signing key does not match the signing certificate".into(),
            ));
        }
        let chain: Vec<X509> = certs.filter(|c| !self_signed(c)).collect();
        let address = first_san_email(&cert).ok_or_else(|| {
            Error::Smime("the signing certificate has no rfc822Name in its subjectAltName".into())
        })?;
        let der = (
            cert.to_der()?,
            chain
                .iter()
                .map(|c| c.to_der())
                .collect::<std::result::Result<_, _>>()?,
        );
        Ok(OpensslSigner {
            cert,
            key,
            chain,
            digest,
            address,
            der,
        })
    }

    /// The signing certificate, DER-encoded (what the provider index lists).
    pub fn certificate_der(&self) -> Result<Vec<u8>> {
        Ok(self.der.0.clone())
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

    fn certificates(&self) -> Option<(&[u8], &[Vec<u8>])> {
        Some((&self.der.0, &self.der.1))
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

/// Whether `cert` is a root: issued by itself and signed with its own key.
fn self_signed(cert: &X509Ref) -> bool {
    cert.subject_name()
        .try_cmp(cert.issuer_name())
        .is_ok_and(|o| o.is_eq())
        && cert
            .public_key()
            .and_then(|k| cert.verify(&k))
            .unwrap_or(false)
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

/// Describes the signer certificate `der`, parsed as `cert`, carried with the
/// certificates `chain`.
fn signer_cert(der: &[u8], cert: &X509Ref, chain: Vec<Vec<u8>>) -> SignerCert {
    SignerCert {
        subject: subject_line(cert),
        email: first_san_email(cert),
        sha1_hex: sha1_hex(der),
        der: der.to_vec(),
        chain,
    }
}

const OID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const OID_SIGNING_TIME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.5");
const OID_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
const OID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");

/// What a SignedData says, read without OpenSSL: its first SignerInfo's signer (DER),
/// digest and signingTime, the other certificates it carries, and the same structure
/// without certificates or CRLs (what OpenSSL then parses).
#[derive(Default)]
struct Reading {
    signer: Option<Vec<u8>>,
    carried: Vec<Vec<u8>>,
    digest: Option<Digest>,
    signing_time: Option<DateTime<Utc>>,
    problems: Vec<String>,
    bare: Vec<u8>,
}

/// Reads a DER CMS ContentInfo holding a SignedData.
fn read_signed_data(der: &[u8]) -> std::result::Result<Reading, String> {
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
    let mut sd: SignedData = ci
        .content
        .decode_as()
        .map_err(|e| format!("CMS SignedData: {e}"))?;
    let si = sd
        .signer_infos
        .0
        .iter()
        .next()
        .ok_or_else(|| "SignedData without SignerInfo".to_string())?;
    let mut r = Reading::default();
    if sd.signer_infos.0.len() > 1 {
        r.problems
            .push("more than one SignerInfo; reporting the first".into());
    }
    r.digest = match si.digest_alg.oid {
        OID_SHA1 => Some(Digest::Sha1),
        OID_SHA256 => Some(Digest::Sha256),
        other => {
            r.problems
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
                r.signing_time = i64::try_from(secs)
                    .ok()
                    .and_then(|s| DateTime::<Utc>::from_timestamp(s, 0));
            }
            Err(e) => r.problems.push(format!("bad signingTime: {e}")),
        },
        None => r.problems.push("no signingTime attribute".into()),
    }
    let certs = sd
        .certificates
        .take()
        .map(|set| set.0.into_vec())
        .unwrap_or_default();
    for c in certs {
        let CertificateChoices::Certificate(c) = c else {
            continue;
        };
        let is_signer = match &si.sid {
            SignerIdentifier::IssuerAndSerialNumber(isn) => {
                c.tbs_certificate.issuer == isn.issuer
                    && c.tbs_certificate.serial_number == isn.serial_number
            }
            SignerIdentifier::SubjectKeyIdentifier(ski) => matches!(
                c.tbs_certificate.get::<SubjectKeyIdentifier>(),
                Ok(Some((_, ref found))) if found == ski
            ),
        };
        let der = c.to_der().map_err(|e| format!("certificate: {e}"))?;
        if is_signer && r.signer.is_none() {
            r.signer = Some(der);
        } else if r.carried.len() < MAX_CARRIED {
            r.carried.push(der);
        } else {
            r.problems.push(format!(
                "more than {MAX_CARRIED} certificates besides the signer's; the others are \
                 ignored"
            ));
        }
    }
    if r.signer.is_none() {
        r.problems
            .push("the signer certificate is not in the signature".into());
    }
    r.problems.dedup();
    sd.crls = None;
    r.bare = ContentInfo {
        content_type: OID_SIGNED_DATA,
        content: der::Any::encode_from(&sd).map_err(|e| format!("CMS SignedData: {e}"))?,
    }
    .to_der()
    .map_err(|e| format!("CMS ContentInfo: {e}"))?;
    Ok(r)
}

/// Reads `p7s_der`; a signature that is BER rather than DER (indefinite lengths, as some
/// signers emit) is read as OpenSSL re-encodes it.
fn read_any(p7s_der: &[u8]) -> std::result::Result<Reading, String> {
    read_signed_data(p7s_der).or_else(|first| {
        let der = CmsContentInfo::from_der(p7s_der)
            .and_then(|cms| cms.to_der())
            .map_err(|_| first.clone())?;
        read_signed_data(&der).map_err(|_| first)
    })
}

/// OpenSSL's check of the detached signature `cms_der` over `content`, with `signer` as
/// the certificate to verify with (found first, before any the structure carries).
///
/// NO_SIGNER_CERT_VERIFY: an expired or unknown certificate must not look like tampered
/// bytes. BINARY: the content is compared byte for byte, no CRLF translation.
fn openssl_verify(
    content: &[u8],
    cms_der: &[u8],
    signer: Option<&X509>,
) -> std::result::Result<(), String> {
    let mut cms =
        CmsContentInfo::from_der(cms_der).map_err(|e| format!("not a CMS signature: {e}"))?;
    let mut certs = Stack::new().map_err(|e| e.to_string())?;
    if let Some(cert) = signer {
        certs.push(cert.clone()).map_err(|e| e.to_string())?;
    }
    let flags = CMSOptions::NO_SIGNER_CERT_VERIFY | CMSOptions::BINARY;
    cms.verify(Some(&certs), None, Some(content), None, flags)
        .map_err(|e| format!("the signature does not match the content: {e}"))
}

/// Verifies the detached CMS signature `p7s_der` over `content` (the exact bytes of the
/// first part of a `multipart/signed`, CRLF line endings).
///
/// `intact` only says that the content and signed attributes match the signature made
/// with the key of the included signer certificate; certificate validity, chain and
/// index membership are the business of [`trust`]. Never fails: anything unreadable is
/// reported as not intact with a `problem`.
///
/// OpenSSL checks the structure without its certificates, given the signer certificate
/// from the certificate cache (`certcache.rs`). Should that fail, it checks the signature
/// as received (with the same signer certificate), so that reading and re-encoding the
/// structure can never turn an intact signature into a broken one: a signature whose
/// signed attributes are not in DER order, for instance, is re-sorted by the reader.
pub fn verify_detached(content: &[u8], p7s_der: &[u8]) -> SignatureReport {
    let mut read = read_report(p7s_der);
    let verified_bare = match (&read.bare, &read.signer) {
        (Some(bare), Some(cert)) => openssl_verify(content, bare, Some(cert)).is_ok(),
        _ => false,
    };
    let verdict = if verified_bare {
        Ok(())
    } else {
        openssl_verify(content, p7s_der, read.signer.as_ref())
    };
    match verdict {
        Ok(()) => read.report.intact = true,
        Err(e) => read.problems.insert(0, e),
    }
    read.finish()
}

/// Opens a CMS SignedData that carries its content (a CAdES `.p7m`, DER): what the
/// signature says, and the content it wraps.
///
/// As with [`verify_detached`], `intact` only says the content matches the signature
/// made with the key of the signer certificate it carries; who the signer is and whether
/// a qualified CA vouches for them is not judged here. The content is returned even
/// when the signature is broken (so the document inside can still be named), and is
/// `None` when there is none (a detached signature) or the structure is unreadable.
/// Never fails: anything unreadable is a `problem`.
pub fn open_attached(p7m_der: &[u8]) -> (SignatureReport, Option<Vec<u8>>) {
    let mut read = read_report(p7m_der);
    let content = match attached_content(p7m_der, read.signer.as_ref()) {
        Ok(content) => {
            read.report.intact = true;
            Some(content)
        }
        Err(e) => {
            read.problems.insert(0, e);
            attached_content_unverified(p7m_der)
        }
    };
    (read.finish(), content)
}

/// What reading a signature's structure tells before OpenSSL checks it: the report
/// (digest, signing time, signer; not yet intact), the problems found so far, the signer
/// certificate (parsed once, from the cache) and the structure without its certificates.
struct ReadReport {
    report: SignatureReport,
    problems: Vec<String>,
    signer: Option<X509>,
    bare: Option<Vec<u8>>,
}

impl ReadReport {
    /// The report, with every problem found.
    fn finish(mut self) -> SignatureReport {
        if !self.problems.is_empty() {
            self.report.problem = Some(self.problems.join("; "));
        }
        self.report
    }
}

/// Reads the signature `der` (detached or carrying its content) for [`verify_detached`]
/// and [`open_attached`]: never fails, anything unreadable is a problem.
fn read_report(der: &[u8]) -> ReadReport {
    let mut read = ReadReport {
        report: SignatureReport {
            intact: false,
            signer: None,
            digest: None,
            signing_time: None,
            problem: None,
        },
        problems: Vec::new(),
        signer: None,
        bare: None,
    };
    match read_any(der) {
        Ok(r) => {
            read.report.digest = r.digest;
            read.report.signing_time = r.signing_time;
            read.problems = r.problems;
            if let Some(cert_der) = &r.signer {
                match certcache::parsed(cert_der) {
                    Ok(cert) => {
                        read.report.signer = Some(signer_cert(cert_der, &cert, r.carried));
                        read.signer = Some(cert);
                    }
                    Err(e) => read
                        .problems
                        .push(format!("unreadable signer certificate: {e}")),
                }
            }
            read.bare = Some(r.bare);
        }
        Err(p) => read.problems.push(p),
    }
    read
}

/// OpenSSL's check of the signature of `p7m_der` over the content it carries, with
/// `signer` found first: the content when it matches.
fn attached_content(p7m_der: &[u8], signer: Option<&X509>) -> std::result::Result<Vec<u8>, String> {
    let mut cms =
        CmsContentInfo::from_der(p7m_der).map_err(|e| format!("not a CMS signature: {e}"))?;
    let mut certs = Stack::new().map_err(|e| e.to_string())?;
    if let Some(cert) = signer {
        certs.push(cert.clone()).map_err(|e| e.to_string())?;
    }
    let mut content = Vec::new();
    let flags = CMSOptions::NO_SIGNER_CERT_VERIFY | CMSOptions::BINARY;
    cms.verify(Some(&certs), None, None, Some(&mut content), flags)
        .map_err(|e| format!("the signature does not match the content: {e}"))?;
    Ok(content)
}

/// The content `p7m_der` carries, its signature not checked (it was found broken).
fn attached_content_unverified(p7m_der: &[u8]) -> Option<Vec<u8>> {
    let mut cms = CmsContentInfo::from_der(p7m_der).ok()?;
    let mut content = Vec::new();
    let flags = CMSOptions::NOSIGS
        | CMSOptions::NOVERIFY
        | CMSOptions::NO_SIGNER_CERT_VERIFY
        | CMSOptions::BINARY;
    cms.verify(None, None, None, Some(&mut content), flags)
        .ok()
        .map(|()| content)
}

/// Trust anchors (the PEC CAs) against which signer certificates are checked, with the
/// certificate revocation lists the CAs publish.
///
/// Every certificate of the bundle is an anchor (a chain may end at an intermediate such as
/// AgID CA1 without its root, or at the root with the intermediate carried by the
/// signature). A signer certificate listed as revoked in the CRL of its issuer, or whose
/// path goes through a CA revoked in the CRL of its own issuer, is not trusted (spec §5.4
/// step 6).
#[derive(Clone)]
pub struct TrustAnchors {
    certs: Vec<X509>,
    crls: Vec<std::sync::Arc<X509Crl>>,
    /// Signer paths already built (see [`TrustAnchors::signer_path`]), shared by clones:
    /// a path depends only on the anchors, the certificates and the time.
    paths: std::sync::Arc<std::sync::Mutex<HashMap<[u8; 32], Vec<X509>>>>,
}

/// How many signer paths [`TrustAnchors`] keeps: a few per gestore of the index; when
/// full, it starts again empty.
const MAX_PATHS: usize = 256;

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
            paths: Default::default(),
        })
    }

    /// Adds the CRLs of a PEM file (one or more `X509 CRL` blocks). Each must be signed by
    /// one of the anchors, or by a CA certificate the file holds too (`CERTIFICATE`
    /// blocks: the intermediate that publishes the CRL, such as AgID CA1 under a root
    /// anchor), which must chain to the anchors now. A CRL nobody trusted issued is
    /// refused, not ignored.
    pub fn add_crls_pem(&mut self, pem: &[u8]) -> Result<usize> {
        let text =
            std::str::from_utf8(pem).map_err(|_| Error::Smime("CRL file: not PEM text".into()))?;
        let blocks = pem_blocks(text, "X509 CRL");
        if blocks.is_empty() {
            return Err(Error::Smime("CRL file: no X509 CRL block".into()));
        }
        let mut issuers = self.certs.clone();
        for block in pem_blocks(text, "CERTIFICATE") {
            let ca = X509::from_pem(block.as_bytes())
                .map_err(|e| Error::Smime(format!("CRL file: issuer certificate: {e}")))?;
            self.path(&ca, &[], Utc::now(), X509PurposeId::CRL_SIGN)
                .map_err(|reason| {
                    Error::Smime(format!(
                        "CRL file: the issuer certificate {} does not chain to the trusted \
                         PEC CAs: {reason}",
                        subject_line(&ca)
                    ))
                })?;
            issuers.push(ca);
        }
        for block in &blocks {
            let crl = X509Crl::from_pem(block.as_bytes())
                .map_err(|e| Error::Smime(format!("CRL: {e}")))?;
            let signed_by_a_trusted_ca = issuers.iter().any(|ca| {
                ca.subject_name()
                    .try_cmp(crl.issuer_name())
                    .is_ok_and(|o| o.is_eq())
                    && ca
                        .public_key()
                        .and_then(|k| crl.verify(&k))
                        .unwrap_or(false)
            });
            if !signed_by_a_trusted_ca {
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

    /// Why a certificate of `path` (from the signer up, as [`TrustAnchors::path`] built
    /// it) counts as revoked at `at`, if one does: the signer, and every CA above it but
    /// the anchor the path ends at.
    fn revoked_on(&self, path: &[X509], at: &Asn1Time) -> Option<String> {
        let below_anchor = path.len().saturating_sub(1).max(1);
        path.iter()
            .take(below_anchor)
            .enumerate()
            .find_map(|(i, cert)| {
                let reason = self.revoked(cert, at)?;
                Some(if i == 0 {
                    reason
                } else {
                    format!("the CA {} of its chain: {reason}", subject_line(cert))
                })
            })
    }

    /// The anchors as an OpenSSL store for `purpose`, checking at `check_time` (Unix
    /// seconds).
    fn store(
        &self,
        check_time: i64,
        purpose: X509PurposeId,
    ) -> std::result::Result<X509Store, ErrorStack> {
        let mut builder = X509StoreBuilder::new()?;
        for c in &self.certs {
            builder.add_cert(c.clone())?;
        }
        let mut param = X509VerifyParam::new()?;
        param.set_time(check_time);
        param.set_flags(X509VerifyFlags::PARTIAL_CHAIN)?;
        builder.set_param(&param)?;
        builder.set_purpose(purpose)?;
        Ok(builder.build())
    }

    /// The content of a signed `.p7m` (CMS SignedData with its content, DER) whose
    /// signature is intact and whose signer chains to the anchors now, through the CAs the
    /// file carries, none of them revoked by the CRLs: how a downloaded provider index is
    /// accepted (spec §9.1, checklist item 73).
    pub fn open_signed(&self, p7m_der: &[u8]) -> Result<Vec<u8>> {
        let mut cms = CmsContentInfo::from_der(p7m_der)
            .map_err(|e| Error::Smime(format!("not a CMS SignedData: {e}")))?;
        let now = Utc::now();
        let store = self.store(unix_time(now)?, X509PurposeId::SMIME_SIGN)?;
        let mut content = Vec::new();
        cms.verify(
            None,
            Some(&store),
            None,
            Some(&mut content),
            CMSOptions::BINARY,
        )
        .map_err(|e| Error::Smime(format!("signature not valid or not trusted: {e}")))?;
        let reading = read_any(p7m_der).map_err(Error::Smime)?;
        let signer = reading
            .signer
            .ok_or_else(|| Error::Smime("the signer certificate is not in the file".into()))?;
        let signer = certcache::parsed(&signer)?;
        let path = self
            .path(
                &signer,
                &carried(&reading.carried),
                now,
                X509PurposeId::SMIME_SIGN,
            )
            .map_err(|e| Error::Smime(format!("signer of the file: {e}")))?;
        match self.revoked_on(&path, &Asn1Time::from_unix(unix_time(now)?)?) {
            Some(reason) => Err(Error::Smime(format!("signer of the file: {reason}"))),
            None => Ok(content),
        }
    }

    /// [`TrustAnchors::path`] for a signature's signer `cert` (DER `cert_der`) and the CA
    /// certificates it carried (`chain`), at `at`, remembered: every message a gestore
    /// signs has the same signer and chain, and OpenSSL's path building (three RSA
    /// verifications) costs more than the message's own signature check. A path found
    /// before is used again only while every certificate on it is within its validity
    /// period at `at`; otherwise it is built again, so expiry is found as before.
    /// Revocation is not part of the path (see [`TrustAnchors::revoked_on`]).
    fn signer_path(
        &self,
        (cert_der, cert): (&[u8], &X509Ref),
        chain: &[Vec<u8>],
        at: DateTime<Utc>,
        at_asn1: &Asn1Time,
    ) -> std::result::Result<Vec<X509>, String> {
        let mut key = openssl::sha::Sha256::new();
        key.update(&(cert_der.len() as u64).to_be_bytes());
        key.update(cert_der);
        for c in chain.iter().take(MAX_CARRIED) {
            key.update(&openssl::sha::sha256(c));
        }
        let key = key.finish();
        let valid = |path: &[X509]| {
            path.iter()
                .all(|c| c.not_before() <= *at_asn1 && c.not_after() >= *at_asn1)
        };
        let known = self
            .paths
            .lock()
            .ok()
            .and_then(|paths| paths.get(&key).cloned());
        if let Some(path) = known.filter(|p| valid(p)) {
            return Ok(path);
        }
        let path = self.path(cert, &carried(chain), at, X509PurposeId::SMIME_SIGN)?;
        if let Ok(mut paths) = self.paths.lock() {
            if paths.len() >= MAX_PATHS {
                paths.clear();
            }
            paths.insert(key, path.clone());
        }
        Ok(path)
    }

    /// The path from `cert` to one of the anchors at time `at`, through the CA
    /// certificates `carried` (untrusted: they only help build it), checked for `purpose`
    /// (name constraints included): `cert` first, the anchor last. The error is OpenSSL's
    /// reason.
    fn path(
        &self,
        cert: &X509Ref,
        carried: &[X509],
        at: DateTime<Utc>,
        purpose: X509PurposeId,
    ) -> std::result::Result<Vec<X509>, String> {
        let check_time = unix_time(at).map_err(|e| e.to_string())?;
        let build =
            || -> std::result::Result<std::result::Result<Vec<X509>, String>, ErrorStack> {
                let store = self.store(check_time, purpose)?;
                let mut untrusted = Stack::new()?;
                for c in carried {
                    untrusted.push(c.clone())?;
                }
                let mut ctx = X509StoreContext::new()?;
                ctx.init(&store, cert, &untrusted, |c| {
                    if !c.verify_cert()? {
                        return Ok(Err(c.error().error_string().to_owned()));
                    }
                    Ok(Ok(c
                        .chain()
                        .map(|chain| chain.iter().map(X509Ref::to_owned).collect())
                        .unwrap_or_default()))
                })
            };
        build().unwrap_or_else(|e| Err(e.to_string()))
    }
}

/// The certificates `ders` parsed (through the cache), at most [`MAX_CARRIED`] of them;
/// an unreadable one is left out (the path then fails if it was needed).
fn carried(ders: &[Vec<u8>]) -> Vec<X509> {
    ders.iter()
        .take(MAX_CARRIED)
        .filter_map(|d| certcache::parsed(d).ok())
        .collect()
}

/// Whether `cert_der` is a gestore certificate at time `at` (spec §5.4 steps 3, 4, 6): its
/// SHA-1 is in `index`, it is byte-equal to a `providerCertificate` of that record, it is
/// within its validity period, and, when `anchors` are given, it chains to them, through
/// the CA certificates `chain` its signature carried ([`SignerCert::chain`]) when the
/// anchors are roots above them.
///
/// Revocation (also step 6) is checked against the CRLs added to `anchors`, for the
/// certificate and the CAs of its path below the anchor; OCSP is not used.
pub fn trust(
    cert_der: &[u8],
    chain: &[Vec<u8>],
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
    let cert = match certcache::parsed(cert_der) {
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
        let path = match anchors.signer_path((cert_der, &cert), chain, at, &at_asn1) {
            Ok(path) => path,
            Err(reason) => {
                return refuse(
                    provider,
                    format!("certificate does not chain to the trusted PEC CAs at {at}: {reason}"),
                );
            }
        };
        if let Some(reason) = anchors.revoked_on(&path, &at_asn1) {
            return refuse(provider, reason);
        }
    }
    Trust {
        trusted: true,
        provider,
        problem: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labpki::{self, GestoreSpec};

    #[test]
    fn openssl_checks_our_signatures_without_their_certificates() {
        let now = Utc::now();
        let spec = GestoreSpec {
            id: "alfa".into(),
            provider_name: "Alfa PEC (lab)".into(),
            domains: vec!["pec.alfa.test".into()],
        };
        let pki = labpki::generate(&[spec], now, 2).unwrap();
        let g = &pki.gestori[0];
        let signer = OpensslSigner::from_pem(
            g.sign_cert_pem.as_bytes(),
            g.sign_key_pem.as_bytes(),
            Digest::Sha256,
        )
        .unwrap();
        let content = b"Content-Type: text/plain\r\n\r\nciao\r\n";
        let sig = signer.sign_detached(content, now).unwrap();
        let r = read_signed_data(&sig).unwrap();
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        let cert = certcache::parsed(r.signer.as_deref().unwrap()).unwrap();
        assert_eq!(cert.to_der().unwrap(), signer.certificate_der().unwrap());
        assert_eq!(r.carried.len(), 1, "the intermediate");
        // The structure OpenSSL parses has no certificate left: without the signer's it
        // cannot verify; with it (from the cache), the quick path holds for our own
        // signatures, so the structure as received is never parsed for them.
        assert!(r.bare.len() + 1000 < sig.len());
        assert!(openssl_verify(content, &r.bare, None).is_err());
        assert_eq!(openssl_verify(content, &r.bare, Some(&cert)), Ok(()));
        assert!(openssl_verify(b"other", &r.bare, Some(&cert)).is_err());
        // Another certificate than the signer's is not accepted in its place.
        let ca1 = X509::from_pem(pki.ca1_cert_pem.as_bytes()).unwrap();
        assert!(openssl_verify(content, &r.bare, Some(&ca1)).is_err());
    }
}
