//! "Verifica firma" of a `.p7m` attachment (what users now do with Dike): each CAdES
//! layer's signature as pec-proto's document reader judges it (intact, signer, signing
//! time) and its signer certificate's validity period, with the document inside for
//! download. Whether the certifier is a qualified one (the EU trusted lists) is not
//! judged here, and the page says so.

use chrono::{DateTime, Utc};
use openssl::asn1::{Asn1Time, Asn1TimeRef};
use openssl::x509::{X509, X509NameRef};
use pec_proto::document::{self, Format};
use pec_proto::smime::SignatureReport;

/// One signature layer, as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// The signed bytes match the signature.
    pub intact: bool,
    /// The signer's subject (empty when the signature carries no certificate).
    pub signer: String,
    /// The signer's e-mail address, when the certificate names one.
    pub email: Option<String>,
    /// The certificate's issuer.
    pub issuer: String,
    /// The `signingTime` attribute.
    pub signing_time: Option<DateTime<Utc>>,
    /// The certificate's validity period.
    pub valid_from: Option<DateTime<Utc>>,
    /// The end of that period.
    pub valid_until: Option<DateTime<Utc>>,
    /// Whether the certificate was valid when signing (`None` without a signing time or
    /// a certificate).
    pub valid_at_signing: Option<bool>,
    /// Whether the certificate is valid now.
    pub valid_now: bool,
    /// Why the signature is not intact, or what is missing.
    pub problem: Option<String>,
}

/// A `.p7m` verified: its layers (outermost first) and the document inside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// The signature layers.
    pub layers: Vec<Layer>,
    /// What the document inside is, for humans (`PDF`, `PDF/A-1b`, `XML`...).
    pub document: String,
    /// The name the document is downloaded with.
    pub document_name: String,
    /// Whether there is a document inside to download.
    pub has_document: bool,
}

/// The verification of `bytes`, an attachment named `name`, at `now`; `None` when the
/// bytes are no CAdES envelope.
pub fn verify(bytes: &[u8], name: &str, now: DateTime<Utc>) -> Option<Verification> {
    let format = document::sniff(bytes);
    if !matches!(format, Format::Signed(_)) {
        return None;
    }
    let inner = format.innermost();
    Some(Verification {
        layers: format
            .signatures()
            .into_iter()
            .map(|s| layer(s, now))
            .collect(),
        document: describe(inner),
        document_name: document_name(name, inner),
        has_document: !matches!(inner, Format::Unknown | Format::TooDeep),
    })
}

/// What a document format is called on the page.
fn describe(f: &Format) -> String {
    match f {
        Format::Pdf => "PDF".into(),
        Format::PdfA { .. } => f.name().to_uppercase(),
        Format::Rtf => "RTF".into(),
        Format::Tiff => "TIFF".into(),
        Format::Xml => "XML".into(),
        Format::TooDeep => "troppe firme annidate: il documento non è stato aperto".into(),
        Format::Unknown => "non riconosciuto".into(),
        Format::Other(name) => name.to_uppercase(),
        Format::Signed(_) => "documento firmato".into(),
    }
}

/// `name` without its `.p7m` endings; a name of the format's extension when none is
/// left.
pub fn document_name(name: &str, inner: &Format) -> String {
    let mut base = name.trim();
    while base.len() > 4 && base.is_char_boundary(base.len() - 4) {
        let (head, tail) = base.split_at(base.len() - 4);
        if !tail.eq_ignore_ascii_case(".p7m") {
            break;
        }
        base = head;
    }
    if !base.is_empty() && !base.eq_ignore_ascii_case(name.trim()) {
        return base.to_string();
    }
    let extension = match inner {
        Format::Pdf | Format::PdfA { .. } => "pdf",
        Format::Rtf => "rtf",
        Format::Tiff => "tif",
        Format::Xml => "xml",
        _ => "bin",
    };
    format!("documento.{extension}")
}

fn layer(s: &SignatureReport, now: DateTime<Utc>) -> Layer {
    let cert = s.signer.as_ref().and_then(|c| X509::from_der(&c.der).ok());
    let valid_from = cert.as_ref().and_then(|c| time(c.not_before()));
    let valid_until = cert.as_ref().and_then(|c| time(c.not_after()));
    let within = |at: DateTime<Utc>| match (valid_from, valid_until) {
        (Some(from), Some(until)) => from <= at && at <= until,
        _ => false,
    };
    Layer {
        intact: s.intact,
        signer: s
            .signer
            .as_ref()
            .map_or(String::new(), |c| c.subject.clone()),
        email: s.signer.as_ref().and_then(|c| c.email.clone()),
        issuer: cert
            .as_ref()
            .map_or(String::new(), |c| name(c.issuer_name())),
        signing_time: s.signing_time,
        valid_from,
        valid_until,
        valid_at_signing: s.signing_time.filter(|_| cert.is_some()).map(within),
        valid_now: within(now),
        problem: s.problem.clone(),
    }
}

/// An X.509 time as UTC.
fn time(t: &Asn1TimeRef) -> Option<DateTime<Utc>> {
    let diff = Asn1Time::from_unix(0).ok()?.diff(t).ok()?;
    let secs = i64::from(diff.days) * 86_400 + i64::from(diff.secs);
    DateTime::from_timestamp(secs, 0)
}

/// A distinguished name on one line (`CN=..., O=...`).
fn name(n: &X509NameRef) -> String {
    n.entries()
        .map(|e| {
            let key = e.object().nid().short_name().unwrap_or("?");
            let value = String::from_utf8_lossy(e.data().as_slice());
            format!("{key}={value}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_names_lose_their_p7m() {
        assert_eq!(
            document_name("delibera.pdf.p7m", &Format::Pdf),
            "delibera.pdf"
        );
        assert_eq!(
            document_name("delibera.pdf.P7M.p7m", &Format::Pdf),
            "delibera.pdf"
        );
        assert_eq!(document_name("firmato.p7m", &Format::Xml), "firmato");
        assert_eq!(document_name(".p7m", &Format::Xml), "documento.xml");
        assert_eq!(document_name("è.p7m", &Format::Pdf), "è");
        assert_eq!(document_name("", &Format::Pdf), "documento.pdf");
    }

    #[test]
    fn what_is_not_an_envelope_is_not_verified() {
        assert_eq!(verify(b"%PDF-1.7\n", "a.pdf.p7m", Utc::now()), None);
        let broken = verify(b"\x30\x03\x02\x01\x01", "a.p7m", Utc::now()).unwrap();
        assert!(!broken.layers[0].intact && !broken.has_document);
        assert!(broken.layers[0].problem.is_some());
    }
}
