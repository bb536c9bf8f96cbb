//! A protocol office's document policy and its verdict on a PEC's attachments: a pure
//! function of the policy and the original message (`postacert.eml`).
//!
//! Formats are judged by content ([`pec_proto::document::sniff`]), never by file name;
//! a `.p7m` is judged by its signature and by the document it wraps.

use pec_proto::document::{self, Format};
use pec_proto::segnatura::{self, Segnatura};

/// A format a protocol office registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Allowed {
    /// Any PDF (PDF/A included).
    Pdf,
    /// PDF/A only (identified by its XMP `pdfaid:part`).
    PdfA,
    /// Rich Text Format.
    Rtf,
    /// TIFF.
    Tiff,
    /// XML.
    Xml,
}

impl Allowed {
    /// Every format, in the order of [`Allowed::NAMES`].
    pub const ALL: [Allowed; 5] = [
        Allowed::Pdf,
        Allowed::PdfA,
        Allowed::Rtf,
        Allowed::Tiff,
        Allowed::Xml,
    ];

    /// The names the configuration uses.
    pub const NAMES: [&'static str; 5] = ["pdf", "pdf/a", "rtf", "tiff", "xml"];

    /// The format named `name` in the configuration (case-insensitive).
    pub fn parse(name: &str) -> Option<Allowed> {
        let name = name.trim().to_ascii_lowercase();
        Self::NAMES
            .iter()
            .position(|n| *n == name)
            .map(|i| Self::ALL[i])
    }

    /// The format's name as a person reads it (in a ripudio or a log).
    pub fn label(self) -> &'static str {
        match self {
            Allowed::Pdf => "PDF",
            Allowed::PdfA => "PDF/A",
            Allowed::Rtf => "RTF",
            Allowed::Tiff => "TIFF",
            Allowed::Xml => "XML",
        }
    }

    /// Whether a document of format `f` (not a signed envelope) is of this kind.
    fn admits(self, f: &Format) -> bool {
        matches!(
            (self, f),
            (Allowed::Pdf, Format::Pdf | Format::PdfA { .. })
                | (Allowed::PdfA, Format::PdfA { .. })
                | (Allowed::Rtf, Format::Rtf)
                | (Allowed::Tiff, Format::Tiff)
                | (Allowed::Xml, Format::Xml)
        )
    }
}

/// What a protocol office accepts as attachments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentPolicy {
    /// The formats registered.
    pub formats: Vec<Allowed>,
    /// Whether those formats are also accepted inside CAdES envelopes (`.p7m`) whose
    /// signature is intact.
    pub signed: bool,
    /// The largest attachment (decoded bytes) accepted, if any limit.
    pub max_attachment_size: Option<u64>,
}

impl Default for DocumentPolicy {
    /// PDF, PDF/A, RTF, TIFF, XML and their `.p7m`, no size limit: what the provinces
    /// publish.
    fn default() -> Self {
        DocumentPolicy {
            formats: Allowed::ALL.to_vec(),
            signed: true,
            max_attachment_size: None,
        }
    }
}

/// Why an attachment breaks the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Breach {
    /// Larger than the limit (it was not examined further).
    TooLarge {
        /// Its size in bytes.
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// A format the office does not register (its name, [`Format::name`]).
    Format(String),
    /// A signed envelope, and the office accepts none.
    SignedNotAllowed,
    /// A signed envelope whose signature does not verify.
    BrokenSignature,
    /// Signed envelopes nested deeper than the sniffer opens.
    TooDeep,
}

impl Breach {
    /// The reason in Italian, for the sender and the office.
    pub fn italian(&self, policy: &DocumentPolicy) -> String {
        match self {
            Breach::TooLarge { size, limit } => {
                format!("dimensione di {size} byte, oltre il limite di {limit} byte")
            }
            Breach::Format(name) => format!(
                "formato non ammesso ({name}); formati ammessi: {}",
                policy.accepted_list()
            ),
            Breach::SignedNotAllowed => "documenti firmati (.p7m) non ammessi".into(),
            Breach::BrokenSignature => "firma digitale (.p7m) non valida".into(),
            Breach::TooDeep => "troppe firme digitali annidate".into(),
        }
    }
}

/// The verdict on one attachment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judged {
    /// Its file name as the message gives it.
    pub name: String,
    /// Its decoded size in bytes.
    pub size: u64,
    /// Upper-case hex SHA-256 of its decoded bytes.
    pub sha256: String,
    /// What it is; `None` when it was too large to examine.
    pub format: Option<Format>,
    /// Why it breaks the policy, if it does.
    pub breach: Option<Breach>,
}

/// The verdict on a message's attachments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Each attachment judged, in message order.
    pub attachments: Vec<Judged>,
    /// Attachments beyond [`document::MAX_ATTACHMENTS`], not judged (a breach).
    pub unjudged: usize,
}

impl Verdict {
    /// Whether every attachment complies (a message without attachments does).
    pub fn complies(&self) -> bool {
        self.unjudged == 0 && self.attachments.iter().all(|a| a.breach.is_none())
    }
}

impl DocumentPolicy {
    /// The accepted formats as a person reads them: `PDF, PDF/A, RTF e i loro .p7m`.
    pub fn accepted_list(&self) -> String {
        let names: Vec<&str> = self.formats.iter().map(|f| f.label()).collect();
        let mut list = names.join(", ");
        if self.signed {
            list.push_str(" e i loro .p7m");
        }
        list
    }

    /// The verdict on the attachments of `original` (a PEC's `postacert.eml`).
    pub fn judge(&self, original: &[u8]) -> Verdict {
        self.judge_and_read(original).0
    }

    /// The verdict on the attachments of `original`, and the first `segnatura.xml`
    /// among them that reads ([`segnatura::parse`]), for the registry event.
    pub fn judge_and_read(&self, original: &[u8]) -> (Verdict, Option<Segnatura>) {
        let (list, total) = document::attachments(original);
        let unjudged = total.saturating_sub(list.len());
        let segnatura = list
            .iter()
            .filter(|a| segnatura::is_segnatura_name(&a.name))
            .find_map(|a| segnatura::parse(&a.bytes));
        let attachments = list
            .into_iter()
            .map(|a| self.judge_one(a.name, &a.bytes))
            .collect();
        (
            Verdict {
                attachments,
                unjudged,
            },
            segnatura,
        )
    }

    /// The verdict on one attachment `name` of content `bytes`.
    pub fn judge_one(&self, name: String, bytes: &[u8]) -> Judged {
        let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        let sha256 = hex_upper(&openssl::sha::sha256(bytes));
        if let Some(limit) = self.max_attachment_size.filter(|l| size > *l) {
            return Judged {
                name,
                size,
                sha256,
                format: None,
                breach: Some(Breach::TooLarge { size, limit }),
            };
        }
        let format = document::sniff(bytes);
        let breach = self.breach(&format);
        Judged {
            name,
            size,
            sha256,
            format: Some(format),
            breach,
        }
    }

    /// What is wrong with a document of `format`, if anything.
    fn breach(&self, format: &Format) -> Option<Breach> {
        let signatures = format.signatures();
        if !signatures.is_empty() {
            if !self.signed {
                return Some(Breach::SignedNotAllowed);
            }
            if signatures.iter().any(|s| !s.intact) {
                return Some(Breach::BrokenSignature);
            }
        }
        let inner = format.innermost();
        if *inner == Format::TooDeep {
            return Some(Breach::TooDeep);
        }
        if self.formats.iter().any(|a| a.admits(inner)) {
            None
        } else {
            Some(Breach::Format(format.name()))
        }
    }
}

/// Upper-case hex of `bytes`.
fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(parts: &[(&str, &[u8])]) -> Vec<u8> {
        use base64::Engine;
        let mut m = b"From: a@pec.a.test\r\nSubject: istanza\r\nMIME-Version: 1.0\r\n\
            Content-Type: multipart/mixed; boundary=\"B\"\r\n\r\n\
            --B\r\nContent-Type: text/plain\r\n\r\nin allegato\r\n"
            .to_vec();
        for (name, bytes) in parts {
            let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
            m.extend_from_slice(
                format!(
                    "--B\r\nContent-Type: application/octet-stream\r\n\
                     Content-Disposition: attachment; filename=\"{name}\"\r\n\
                     Content-Transfer-Encoding: base64\r\n\r\n{b64}\r\n"
                )
                .as_bytes(),
            );
        }
        m.extend_from_slice(b"--B--\r\n");
        m
    }

    const PDF: &[u8] = b"%PDF-1.7\n%%EOF\n";
    const PDFA: &[u8] = b"%PDF-1.4\n<rdf:Description pdfaid:part=\"2\" pdfaid:conformance=\"B\"/>";
    const DOCX: &[u8] = b"PK\x03\x04\x14\0\x06\0word/document.xml";

    #[test]
    fn formats_are_judged_by_content_not_by_name() {
        let m = message(&[
            ("istanza.pdf", DOCX),
            ("istanza.docx", PDF),
            ("a.tif", b"II*\0\x08\0\0\0"),
        ]);
        let v = DocumentPolicy::default().judge(&m);
        assert!(!v.complies());
        assert_eq!(v.attachments.len(), 3);
        assert_eq!(v.attachments[0].breach, Some(Breach::Format("zip".into())));
        assert_eq!(v.attachments[1].breach, None);
        assert_eq!(v.attachments[1].format, Some(Format::Pdf));
        assert_eq!(v.attachments[2].breach, None);
        assert_eq!(v.attachments[1].size, PDF.len() as u64);
        // By `printf '%%PDF-1.7\n%%%%EOF\n' | sha256sum`.
        assert_eq!(
            v.attachments[1].sha256,
            "1E7313ACE78F0FB481A486939B4885902663102818090805515553D84E0BBFD3"
        );
    }

    #[test]
    fn pdfa_only_refuses_a_plain_pdf() {
        let policy = DocumentPolicy {
            formats: vec![Allowed::PdfA],
            signed: false,
            max_attachment_size: None,
        };
        let v = policy.judge(&message(&[("a.pdf", PDFA), ("b.pdf", PDF)]));
        assert_eq!(v.attachments[0].breach, None);
        assert_eq!(v.attachments[1].breach, Some(Breach::Format("pdf".into())));
        assert_eq!(
            v.attachments[1].breach.as_ref().map(|b| b.italian(&policy)),
            Some("formato non ammesso (pdf); formati ammessi: PDF/A".into())
        );
    }

    #[test]
    fn the_size_limit_is_per_attachment_and_skips_the_examination() {
        let policy = DocumentPolicy {
            max_attachment_size: Some(PDF.len() as u64),
            ..DocumentPolicy::default()
        };
        let v = policy.judge(&message(&[("a.pdf", PDF), ("b.pdf", PDFA)]));
        assert_eq!(v.attachments[0].breach, None);
        assert_eq!(
            v.attachments[1].breach,
            Some(Breach::TooLarge {
                size: PDFA.len() as u64,
                limit: PDF.len() as u64
            })
        );
        assert_eq!(v.attachments[1].format, None);
    }

    #[test]
    fn a_message_without_attachments_complies() {
        let v = DocumentPolicy::default().judge(b"From: a@b\r\nSubject: x\r\n\r\ntesto\r\n");
        assert!(v.complies());
        assert!(v.attachments.is_empty());
    }

    #[test]
    fn a_broken_signed_envelope_breaks_the_policy() {
        let policy = DocumentPolicy::default();
        let j = policy.judge_one("x.p7m".into(), b"\x30\x03\x02\x01\x01");
        assert_eq!(j.breach, Some(Breach::BrokenSignature));
        let unsigned_only = DocumentPolicy {
            signed: false,
            ..DocumentPolicy::default()
        };
        let j = unsigned_only.judge_one("x.p7m".into(), b"\x30\x03\x02\x01\x01");
        assert_eq!(j.breach, Some(Breach::SignedNotAllowed));
    }

    #[test]
    fn format_names_are_parsed_case_insensitively() {
        assert_eq!(Allowed::parse("PDF/A"), Some(Allowed::PdfA));
        assert_eq!(Allowed::parse(" tiff "), Some(Allowed::Tiff));
        assert_eq!(Allowed::parse("docx"), None);
        assert_eq!(
            DocumentPolicy::default().accepted_list(),
            "PDF, PDF/A, RTF, TIFF, XML e i loro .p7m"
        );
    }
}
