//! What a document attached to a PEC is, judged by its bytes and never by its name: the
//! formats a protocol office registers (PDF, PDF/A, RTF, TIFF, XML) and the CAdES
//! envelopes (`.p7m`) that wrap them, verified with OpenSSL and opened to judge the
//! document inside.
//!
//! Hostile input costs little: each look is a bounded prefix or one linear scan, signed
//! envelopes are opened at most [`MAX_SIGNED_LAYERS`] deep (each layer smaller than the
//! one around it), and a message yields at most [`MAX_ATTACHMENTS`] attachments, parsed
//! within [`crate::bounded`]'s MIME limits.

use mail_parser::MimeHeaders;

use crate::bounded;
use crate::smime::{SignatureReport, open_attached};

/// How many CAdES envelopes inside one another are opened; a deeper document is
/// [`Format::TooDeep`]. Real files have one, sometimes two (a countersignature).
pub const MAX_SIGNED_LAYERS: usize = 3;

/// How many attachments of a message are judged; the others are counted, not read.
pub const MAX_ATTACHMENTS: usize = 256;

/// How far into an XMP packet the value of `pdfaid:part` may be after its name.
const XMP_VALUE_WINDOW: usize = 32;

/// What the bytes of a document are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// A PDF without a PDF/A identification.
    Pdf,
    /// A PDF whose XMP metadata identifies it as PDF/A (`pdfaid:part`, and
    /// `pdfaid:conformance` when present, upper-cased).
    PdfA {
        /// The PDF/A part (1 to 4).
        part: u8,
        /// The conformance level (`A`, `B`, `U`, ...), when stated.
        conformance: Option<char>,
    },
    /// Rich Text Format.
    Rtf,
    /// TIFF, either byte order.
    Tiff,
    /// XML (with its declaration).
    Xml,
    /// A CAdES envelope (CMS SignedData with its content): its signature and the
    /// document inside.
    Signed(Box<Signed>),
    /// CAdES envelopes nested deeper than [`MAX_SIGNED_LAYERS`].
    TooDeep,
    /// A format a protocol office does not register, recognised to name it in a ripudio
    /// (`zip` covers the OOXML and ODF documents).
    Other(&'static str),
    /// Nothing recognised.
    Unknown,
}

/// A CAdES envelope opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// OpenSSL's verdict on the signature (integrity; the signer's certificate is
    /// described, not judged).
    pub signature: SignatureReport,
    /// What the wrapped document is ([`Format::Unknown`] when the envelope carries none).
    pub inner: Format,
}

impl Format {
    /// The format's short name, as events and logs report it: `pdf`, `pdf/a-1b`, `rtf`,
    /// `tiff`, `xml`, `p7m(<inner>)`, `p7m-too-deep`, the other format's name or
    /// `unknown`.
    pub fn name(&self) -> String {
        match self {
            Format::Pdf => "pdf".into(),
            Format::PdfA { part, conformance } => {
                let level = conformance.map(|c| c.to_ascii_lowercase().to_string());
                format!("pdf/a-{part}{}", level.unwrap_or_default())
            }
            Format::Rtf => "rtf".into(),
            Format::Tiff => "tiff".into(),
            Format::Xml => "xml".into(),
            Format::Signed(s) => format!("p7m({})", s.inner.name()),
            Format::TooDeep => "p7m-too-deep".into(),
            Format::Other(name) => (*name).into(),
            Format::Unknown => "unknown".into(),
        }
    }

    /// The document under every signature layer.
    pub fn innermost(&self) -> &Format {
        let mut f = self;
        while let Format::Signed(s) = f {
            f = &s.inner;
        }
        f
    }

    /// The signature reports of every layer, outermost first.
    pub fn signatures(&self) -> Vec<&SignatureReport> {
        let mut out = Vec::new();
        let mut f = self;
        while let Format::Signed(s) = f {
            out.push(&s.signature);
            f = &s.inner;
        }
        out
    }
}

/// What `bytes` are, opening CAdES envelopes up to [`MAX_SIGNED_LAYERS`] deep.
pub fn sniff(bytes: &[u8]) -> Format {
    sniff_layer(bytes, 0)
}

/// [`sniff`] with `depth` envelopes opened around `bytes`. The recursion is bounded by
/// [`MAX_SIGNED_LAYERS`], whatever the input.
fn sniff_layer(bytes: &[u8], depth: usize) -> Format {
    if let Some(format) = plain(bytes) {
        return format;
    }
    let Some(der) = cms_der(bytes) else {
        return other(bytes);
    };
    if depth >= MAX_SIGNED_LAYERS {
        return Format::TooDeep;
    }
    let (signature, content) = open_attached(&der);
    let inner = match content {
        // Each layer is smaller than the one around it, so a loop cannot be built.
        Some(content) if content.len() < der.len() => sniff_layer(&content, depth + 1),
        _ => Format::Unknown,
    };
    Format::Signed(Box::new(Signed { signature, inner }))
}

/// The document under every CAdES envelope of `bytes` (opened as [`sniff`] opens them,
/// at most [`MAX_SIGNED_LAYERS`] deep), whether or not the signatures are intact: what a
/// user downloads from a `.p7m` after reading its verification. `None` when `bytes` are
/// no envelope, carry no content, or nest too deep.
pub fn signed_content(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut der = cms_der(bytes)?.into_owned();
    for _ in 0..MAX_SIGNED_LAYERS {
        let content = open_attached(&der).1.filter(|c| c.len() < der.len())?;
        match cms_der(&content) {
            Some(inner) if plain(&content).is_none() => der = inner.into_owned(),
            _ => return Some(content),
        }
    }
    None
}

/// The formats recognised by a prefix (and, for PDF, the XMP scan).
fn plain(bytes: &[u8]) -> Option<Format> {
    if bytes.starts_with(b"%PDF-") {
        return Some(pdfa_identification(bytes).unwrap_or(Format::Pdf));
    }
    if bytes.starts_with(b"{\\rtf") {
        return Some(Format::Rtf);
    }
    if bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*") {
        return Some(Format::Tiff);
    }
    let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let start = text
        .iter()
        .take(1024)
        .position(|b| !b.is_ascii_whitespace())?;
    text[start..].starts_with(b"<?xml").then_some(Format::Xml)
}

/// The formats named only to explain a refusal.
fn other(bytes: &[u8]) -> Format {
    const MAGIC: &[(&[u8], &str)] = &[
        (b"PK\x03\x04", "zip"),
        (b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1", "ole2"),
        (b"\xFF\xD8\xFF", "jpeg"),
        (b"\x89PNG\r\n\x1a\n", "png"),
        (b"GIF8", "gif"),
        (b"Rar!", "rar"),
        (b"7z\xBC\xAF\x27\x1C", "7z"),
        (b"MZ", "exe"),
        (b"\x7FELF", "elf"),
    ];
    MAGIC
        .iter()
        .find(|(magic, _)| bytes.starts_with(magic))
        .map_or(Format::Unknown, |(_, name)| Format::Other(name))
}

/// The PDF/A identification of a PDF's XMP metadata: `pdfaid:part` as an attribute
/// (`pdfaid:part="1"`) or an element (`<pdfaid:part>1</pdfaid:part>`). PDF/A keeps its
/// metadata stream unfiltered, so one scan of the bytes finds it; a part outside 1–4
/// is no identification.
fn pdfaid(bytes: &[u8], name: &[u8]) -> Option<u8> {
    let at = find(bytes, name)? + name.len();
    let window = &bytes[at..bytes.len().min(at + XMP_VALUE_WINDOW)];
    window
        .iter()
        .copied()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'=' | b'"' | b'\'' | b'>'))
}

/// [`Format::PdfA`] when `pdf` carries a PDF/A identification.
fn pdfa_identification(pdf: &[u8]) -> Option<Format> {
    let part = pdfaid(pdf, b"pdfaid:part")?;
    if !(b'1'..=b'4').contains(&part) {
        return None;
    }
    let conformance = pdfaid(pdf, b"pdfaid:conformance")
        .filter(u8::is_ascii_alphabetic)
        .map(|c| char::from(c.to_ascii_uppercase()));
    Some(Format::PdfA {
        part: part - b'0',
        conformance,
    })
}

/// The first position of `needle` in `haystack` (one linear pass per first byte found).
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The DER of a CMS structure: `bytes` themselves when they begin as a DER SEQUENCE,
/// or their base64 decoding (some signers save `.p7m` files in base64).
fn cms_der(bytes: &[u8]) -> Option<std::borrow::Cow<'_, [u8]>> {
    use base64::Engine;
    if bytes.first() == Some(&0x30) {
        return Some(std::borrow::Cow::Borrowed(bytes));
    }
    if !bytes.starts_with(b"MI") {
        return None;
    }
    let compact: Vec<u8> = bytes
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(compact)
        .ok()?;
    (der.first() == Some(&0x30)).then_some(std::borrow::Cow::Owned(der))
}

/// An attachment of a message, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// Its file name as the message gives it (`Content-Disposition` or `Content-Type`
    /// name), empty when it has none.
    pub name: String,
    /// Its decoded bytes (text parts as UTF-8, as the MIME reader decodes them).
    pub bytes: Vec<u8>,
}

/// The attachments of `message` (an original, such as a PEC's `postacert.eml`): at most
/// [`MAX_ATTACHMENTS`] of them, and how many there were in all. A message beyond the
/// MIME limits of [`bounded`] is read flat and has none.
pub fn attachments(message: &[u8]) -> (Vec<Attachment>, usize) {
    let parsed = bounded::parse(message);
    let Some(m) = parsed.message() else {
        return (Vec::new(), 0);
    };
    let list = m
        .attachments()
        .take(MAX_ATTACHMENTS)
        .map(|part| Attachment {
            name: part.attachment_name().unwrap_or_default().to_string(),
            bytes: part.contents().to_vec(),
        })
        .collect();
    (list, m.attachment_count())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PDFA_ATTR: &[u8] = b"%PDF-1.4\n1 0 obj\n<< /Type /Metadata >>\nstream\n\
        <x:xmpmeta><rdf:Description xmlns:pdfaid=\"http://www.aiim.org/pdfa/ns/id/\" \
        pdfaid:part=\"1\" pdfaid:conformance=\"B\"/></x:xmpmeta>\nendstream\n%%EOF\n";
    const PDFA_ELEM: &[u8] = b"%PDF-1.7\n<rdf:Description>\n<pdfaid:part>2</pdfaid:part>\n\
        <pdfaid:conformance>u</pdfaid:conformance></rdf:Description>\n%%EOF\n";

    #[test]
    fn formats_are_judged_by_their_bytes() {
        assert_eq!(sniff(b"%PDF-1.7\n%%EOF\n"), Format::Pdf);
        assert_eq!(
            sniff(PDFA_ATTR),
            Format::PdfA {
                part: 1,
                conformance: Some('B')
            }
        );
        assert_eq!(sniff(PDFA_ATTR).name(), "pdf/a-1b");
        assert_eq!(sniff(PDFA_ELEM).name(), "pdf/a-2u");
        assert_eq!(sniff(b"{\\rtf1\\ansi ciao}"), Format::Rtf);
        assert_eq!(sniff(b"II*\0\x08\0\0\0"), Format::Tiff);
        assert_eq!(sniff(b"MM\0*\0\0\0\x08"), Format::Tiff);
        assert_eq!(
            sniff(b"\xEF\xBB\xBF\r\n <?xml version=\"1.0\"?><a/>"),
            Format::Xml
        );
        assert_eq!(sniff(b"PK\x03\x04rest of a docx"), Format::Other("zip"));
        assert_eq!(sniff(b"plain words"), Format::Unknown);
        assert_eq!(sniff(b""), Format::Unknown);
    }

    #[test]
    fn a_pdfa_claim_outside_the_known_parts_is_a_plain_pdf() {
        assert_eq!(sniff(b"%PDF-1.4 pdfaid:part=\"9\""), Format::Pdf);
        assert_eq!(sniff(b"%PDF-1.4 pdfaid:part"), Format::Pdf);
        // The name of a file is no claim: a PDF/A identification elsewhere is not PDF.
        assert_eq!(sniff(b"<?xml?> pdfaid:part=\"1\""), Format::Xml);
    }

    #[test]
    fn broken_cms_is_a_signed_envelope_with_nothing_inside() {
        let f = sniff(b"\x30\x03\x02\x01\x01");
        let Format::Signed(s) = &f else {
            panic!("{f:?}")
        };
        assert!(!s.signature.intact);
        assert!(s.signature.problem.is_some());
        assert_eq!(s.inner, Format::Unknown);
        assert_eq!(f.name(), "p7m(unknown)");
    }

    #[test]
    fn attachments_are_listed_with_their_names() {
        let msg = b"From: a@b.it\r\nSubject: x\r\nMIME-Version: 1.0\r\n\
            Content-Type: multipart/mixed; boundary=\"B\"\r\n\r\n\
            --B\r\nContent-Type: text/plain\r\n\r\ntesto\r\n\
            --B\r\nContent-Type: application/pdf; name=\"a.pdf\"\r\n\
            Content-Disposition: attachment; filename=\"a.pdf\"\r\n\
            Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjcK\r\n--B--\r\n";
        let (list, total) = attachments(msg);
        assert_eq!(total, 1);
        assert_eq!(list[0].name, "a.pdf");
        assert_eq!(list[0].bytes, b"%PDF-1.7\n");
        assert_eq!(sniff(&list[0].bytes), Format::Pdf);
    }
}
