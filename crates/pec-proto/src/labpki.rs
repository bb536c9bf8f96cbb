//! The lab PKI (spec §5.3), shaped like production: a root CA, an intermediate "PEC Lab
//! CA1" (as AgID CA1 under its root) that issues per gestore a signing certificate with the
//! PEC profile and a TLS server certificate, plus the provider index that lists them. Both
//! CAs are name-constrained to the lab gestori's domains. Made with rcgen; nothing here
//! touches a file.

use std::net::{IpAddr, Ipv4Addr};

use chrono::{DateTime, Utc};
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType, DnValue,
    ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    NameConstraints, PKCS_ECDSA_P256_SHA256, PKCS_RSA_SHA256, RsaKeySize, SanType,
};

use crate::index::{Provider, ProviderIndex};
use crate::smime::sha1_hex;
use crate::{Error, Result};

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
    /// The S/MIME signing certificate followed by the intermediate CA that issued it: the
    /// `sign.pem` a gestore signs with, whose certificates but the root every signature
    /// carries.
    pub sign_cert_pem: String,
    /// Its private key (PKCS#8).
    pub sign_key_pem: String,
    /// The TLS server certificate (SAN: its domains, `mx.`/`mail.` names, `localhost`,
    /// 127.0.0.1) followed by the intermediate CA: the chain the listeners send.
    pub tls_cert_pem: String,
    /// Its private key (PKCS#8).
    pub tls_key_pem: String,
}

/// A whole lab PKI.
#[derive(Debug, Clone)]
pub struct LabPki {
    /// The root CA certificate: the only trust anchor a lab gestore needs.
    pub ca_cert_pem: String,
    /// The root CA key.
    pub ca_key_pem: String,
    /// The intermediate CA certificate ("PEC Lab CA1"), issued by the root.
    pub ca1_cert_pem: String,
    /// The intermediate CA key: what issues (and revokes) the gestori's certificates.
    pub ca1_key_pem: String,
    /// One entry per gestore, in the order given.
    pub gestori: Vec<GestoreCerts>,
    /// The provider index listing every lab gestore.
    pub index_ldif: String,
}

/// The subject of the lab root CA; says loudly that it is not for production.
pub const CA_SUBJECT_CN: &str = "PEC Lab Root CA (NOT FOR PRODUCTION)";

/// The subject of the lab intermediate CA, the lab's AgID CA1.
pub const CA1_SUBJECT_CN: &str = "PEC Lab CA1 (NOT FOR PRODUCTION)";

/// Makes a lab PKI valid from `now` for `days` days.
///
/// The root CA (RSA-2048, `CA:TRUE, pathlen:1`) issues the intermediate "PEC Lab CA1"
/// (RSA-2048, `CA:TRUE, pathlen:0`), which issues every gestore certificate, as AgID CA1
/// does under its root. Both permit as rfc822Name only the gestori's domains, like AgID
/// CA1 (spec §5.3). Signing keys are RSA-2048 with exactly the §5.3 profile; TLS keys are
/// ECDSA P-256. Every call makes fresh keys.
pub fn generate(gestori: &[GestoreSpec], now: DateTime<Utc>, days: u32) -> Result<LabPki> {
    validate(gestori)?;
    if days == 0 || days > 36_500 {
        return Err(Error::Pki(format!(
            "validity of {days} days: use 1..=36500"
        )));
    }
    let not_after = now + chrono::Duration::days(i64::from(days));
    let constraints = NameConstraints {
        permitted_subtrees: gestori
            .iter()
            .flat_map(|g| g.domains.iter())
            .map(|d| GeneralSubtree::Rfc822Name(d.clone()))
            .collect(),
        excluded_subtrees: Vec::new(),
    };

    let root_params = ca_params(CA_SUBJECT_CN, 1, &constraints, now, not_after)?;
    let ca_key = rsa_key()?;
    let ca_cert = root_params.self_signed(&ca_key).map_err(pki)?;
    let ca_cert_pem = ca_cert.pem();
    let ca_key_pem = ca_key.serialize_pem();
    let root = Issuer::new(root_params, ca_key);

    let ca1_params = ca_params(CA1_SUBJECT_CN, 0, &constraints, now, not_after)?;
    let ca1_key = rsa_key()?;
    let ca1_cert = ca1_params.signed_by(&ca1_key, &root).map_err(pki)?;
    let ca1_cert_pem = ca1_cert.pem();
    let ca1_key_pem = ca1_key.serialize_pem();
    let issuer = Issuer::new(ca1_params, ca1_key);
    let with_ca1 = |leaf: String| format!("{leaf}{ca1_cert_pem}");

    let mut out = Vec::with_capacity(gestori.len());
    let mut index = ProviderIndex::default();
    for g in gestori {
        let first = &g.domains[0];

        let mut sign = CertificateParams::default();
        sign.distinguished_name = dn(&[
            (DnType::CountryName, "IT"),
            (DnType::OrganizationName, &g.provider_name),
            (
                DnType::CommonName,
                &format!("Posta Certificata {}", g.provider_name),
            ),
        ])?;
        sign.subject_alt_names = vec![SanType::Rfc822Name(
            format!("posta-certificata@{first}")
                .try_into()
                .map_err(pki)?,
        )];
        sign.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        sign.extended_key_usages = vec![ExtendedKeyUsagePurpose::EmailProtection];
        sign.is_ca = IsCa::NoCa;
        set_validity(&mut sign, now, not_after)?;
        let sign_key = rsa_key()?;
        leaf_extensions(&mut sign, &sign_key)?;
        let sign_cert = sign.signed_by(&sign_key, &issuer).map_err(pki)?;

        let mut tls = CertificateParams::default();
        tls.distinguished_name = dn(&[
            (DnType::CountryName, "IT"),
            (DnType::OrganizationName, &g.provider_name),
            (DnType::CommonName, &format!("mx.{first}")),
        ])?;
        let names = tls_names(&g.domains);
        tls.subject_alt_names = names
            .into_iter()
            .map(|n| n.try_into().map(SanType::DnsName))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(pki)?;
        tls.subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        tls.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        tls.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        tls.is_ca = IsCa::NoCa;
        set_validity(&mut tls, now, not_after)?;
        let tls_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(pki)?;
        leaf_extensions(&mut tls, &tls_key)?;
        let tls_cert = tls.signed_by(&tls_key, &issuer).map_err(pki)?;

        index.providers.push(Provider {
            name: g.provider_name.clone(),
            unit: None,
            certificate_hashes: vec![sha1_hex(sign_cert.der())],
            certificates: vec![sign_cert.der().to_vec()],
            mail_receipt: format!("ricevute@{first}"),
            managed_domains: g.domains.clone(),
            ldif_location_url: None,
            description: Some(format!("Lab gestore {} (NOT FOR PRODUCTION)", g.id)),
        });
        out.push(GestoreCerts {
            spec: g.clone(),
            sign_cert_pem: with_ca1(sign_cert.pem()),
            sign_key_pem: sign_key.serialize_pem(),
            tls_cert_pem: with_ca1(tls_cert.pem()),
            tls_key_pem: tls_key.serialize_pem(),
        });
    }
    Ok(LabPki {
        ca_cert_pem,
        ca_key_pem,
        ca1_cert_pem,
        ca1_key_pem,
        gestori: out,
        index_ldif: index.to_ldif(),
    })
}

/// The DNS names of a lab gestore's TLS certificate: each domain, its `mx.` and `mail.`
/// hosts, and the `autoconfig.` and `autodiscover.` hosts Thunderbird and Outlook ask over
/// HTTPS for client set-up; then `localhost`.
fn tls_names(domains: &[String]) -> Vec<String> {
    let mut names = Vec::with_capacity(domains.len() * 5 + 1);
    for d in domains {
        names.push(d.clone());
        for host in ["mx", "mail", "autoconfig", "autodiscover"] {
            names.push(format!("{host}.{d}"));
        }
    }
    names.push("localhost".into());
    names
}

/// The parameters of a lab CA named `cn` that may have `pathlen` CAs below it.
fn ca_params(
    cn: &str,
    pathlen: u8,
    constraints: &NameConstraints,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<CertificateParams> {
    let mut params = CertificateParams::default();
    params.distinguished_name = dn(&[
        (DnType::CountryName, "IT"),
        (DnType::OrganizationName, "PEC Lab"),
        (DnType::CommonName, cn),
    ])?;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(pathlen));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.name_constraints = Some(constraints.clone());
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, from, to)?;
    Ok(params)
}

/// Checks what would make a bad certificate or a bad file name.
fn validate(gestori: &[GestoreSpec]) -> Result<()> {
    if gestori.is_empty() {
        return Err(Error::Pki("no gestore given".into()));
    }
    for (i, g) in gestori.iter().enumerate() {
        let id_ok = !g.id.is_empty()
            && g.id.len() <= 64
            && g.id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !id_ok {
            return Err(Error::Pki(format!(
                "gestore id {:?}: use 1 to 64 of a-z, 0-9, '-', '_'",
                g.id
            )));
        }
        if gestori[..i].iter().any(|o| o.id == g.id) {
            return Err(Error::Pki(format!("gestore id {:?} given twice", g.id)));
        }
        if g.provider_name.trim().is_empty() || g.provider_name.chars().any(char::is_control) {
            return Err(Error::Pki(format!(
                "gestore {:?}: empty or invalid provider name",
                g.id
            )));
        }
        if g.domains.is_empty() {
            return Err(Error::Pki(format!("gestore {:?}: no domain", g.id)));
        }
        for d in &g.domains {
            if !is_domain(d) {
                return Err(Error::Pki(format!("gestore {:?}: bad domain {d:?}", g.id)));
            }
            let twice = gestori[..i].iter().any(|o| o.domains.contains(d))
                || g.domains.iter().filter(|x| *x == d).count() > 1;
            if twice {
                return Err(Error::Pki(format!("domain {d:?} given twice")));
            }
        }
    }
    Ok(())
}

/// A lower-case dot-atom host name of LDH labels: what a PEC domain must look like, here
/// and in `pecd config check`.
pub fn is_domain(d: &str) -> bool {
    d.len() <= 253
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

fn pki(e: impl std::fmt::Display) -> Error {
    Error::Pki(e.to_string())
}

fn rsa_key() -> Result<KeyPair> {
    KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, RsaKeySize::_2048).map_err(pki)
}

/// A DN; countryName is a PrintableString as RFC 5280 requires, the rest UTF8String.
fn dn(entries: &[(DnType, &str)]) -> Result<DistinguishedName> {
    let mut dn = DistinguishedName::new();
    for (t, v) in entries {
        if *t == DnType::CountryName {
            let printable = rcgen::string::PrintableString::try_from(*v).map_err(pki)?;
            dn.push(t.clone(), DnValue::PrintableString(printable));
        } else {
            dn.push(t.clone(), *v);
        }
    }
    Ok(dn)
}

/// AKI and SKI on an end-entity certificate. rcgen writes SKI only on certificates with
/// basicConstraints, and §5.3 forbids basicConstraints on the signing certificate, so SKI
/// is added as a plain (non-critical) extension.
fn leaf_extensions(params: &mut CertificateParams, key: &KeyPair) -> Result<()> {
    params.use_authority_key_identifier_extension = true;
    let id = params.key_identifier(key);
    // extnValue = SubjectKeyIdentifier ::= KeyIdentifier ::= OCTET STRING
    let value = der::asn1::OctetString::new(id)
        .and_then(|o| der::Encode::to_der(&o))
        .map_err(pki)?;
    params
        .custom_extensions
        .push(CustomExtension::from_oid_content(&[2, 5, 29, 14], value));
    Ok(())
}

/// Sets the validity period. rcgen uses the `time` crate; the value is built from the Unix
/// epoch so that this crate does not depend on `time` directly.
fn set_validity(
    params: &mut CertificateParams,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<()> {
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    let secs = |t: DateTime<Utc>| -> Result<std::time::Duration> {
        let s = u64::try_from(t.timestamp())
            .map_err(|_| Error::Pki(format!("time {t} is before 1970")))?;
        if s > 253_402_300_799 {
            return Err(Error::Pki(format!("time {t} is after 9999")));
        }
        Ok(std::time::Duration::from_secs(s))
    };
    params.not_before = epoch + secs(from)?;
    params.not_after = epoch + secs(to)?;
    Ok(())
}
