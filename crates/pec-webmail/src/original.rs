//! The original message an envelope carries (`postacert.eml`): its header fields, text
//! and attachments, read from the blob pec-jmap gives, within pec-proto's MIME bounds.
//! JMAP names only the envelope's own parts, so the original's attachments are
//! addressed here by their part number inside `postacert.eml`.

use mail_parser::{Message, MessagePart, MimeHeaders};

/// Longest text shown of the original (the whole message can be downloaded).
const MAX_TEXT: usize = 256 * 1024;

/// What the page shows of an original.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Original {
    /// `From` address.
    pub from: String,
    /// `To` and `Cc` addresses.
    pub to: Vec<String>,
    /// `Subject`.
    pub subject: String,
    /// `Date`, RFC 3339.
    pub date: String,
    /// The first text body, cut at [`MAX_TEXT`] bytes.
    pub text: String,
    /// Its attachments.
    pub attachments: Vec<Attachment>,
}

/// One attachment of the original.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// Its part number inside `postacert.eml`.
    pub part: u32,
    /// The file name it came with (`allegato` without one).
    pub name: String,
    /// Its media type, lower case.
    pub media_type: String,
    /// Its decoded size in bytes.
    pub size: usize,
}

fn media_type(p: &MessagePart<'_>) -> String {
    p.content_type()
        .map_or_else(
            || "application/octet-stream".to_string(),
            |c| match c.subtype() {
                Some(s) => format!("{}/{}", c.ctype(), s),
                None => c.ctype().to_string(),
            },
        )
        .to_ascii_lowercase()
}

fn addresses(m: &Message<'_>) -> Vec<String> {
    let mut out = Vec::new();
    for list in [m.to(), m.cc()].into_iter().flatten() {
        out.extend(list.iter().filter_map(|a| a.address()).map(str::to_string));
    }
    out
}

fn cut(text: &str) -> String {
    let mut end = text.len().min(MAX_TEXT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// The original in `bytes`; `None` when it is not a message.
pub fn read(bytes: &[u8]) -> Option<Original> {
    let parsed = pec_proto::bounded::parse(bytes);
    let m = parsed.message()?;
    let attachments = m
        .attachments
        .iter()
        .filter_map(|&i| {
            let p = m.part(i)?;
            Some(Attachment {
                part: i,
                name: p.attachment_name().unwrap_or("allegato").to_string(),
                media_type: media_type(p),
                size: p.contents().len(),
            })
        })
        .collect();
    Some(Original {
        from: m
            .from()
            .and_then(|a| a.first())
            .and_then(|a| a.address())
            .unwrap_or("")
            .to_string(),
        to: addresses(m),
        subject: m.subject().unwrap_or("").to_string(),
        date: m.date().map(|d| d.to_rfc3339()).unwrap_or_default(),
        text: m.body_text(0).map(|t| cut(&t)).unwrap_or_default(),
        attachments,
    })
}

/// The attachment `part` of the original in `bytes`: its decoded contents, name and
/// media type; `None` when there is no such attachment.
pub fn attachment(bytes: &[u8], part: u32) -> Option<(Vec<u8>, String, String)> {
    let parsed = pec_proto::bounded::parse(bytes);
    let m = parsed.message()?;
    if !m.attachments.contains(&part) {
        return None;
    }
    let p = m.part(part)?;
    Some((
        p.contents().to_vec(),
        p.attachment_name().unwrap_or("allegato").to_string(),
        media_type(p),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGINAL: &str = "From: Mario <mario@pec.it>\r\nTo: anna@pec.it\r\nCc: bea@pec.it\r\n\
        Subject: Verbale <7>\r\nDate: Mon, 30 Nov 2026 08:00:00 +0100\r\nMIME-Version: 1.0\r\n\
        Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n\
        Testo del verbale.\r\n--b\r\nContent-Type: application/pdf\r\n\
        Content-Disposition: attachment; filename=\"verbale.pdf\"\r\n\
        Content-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--b--\r\n";

    #[test]
    fn the_original_and_its_attachments_are_read() {
        let o = read(ORIGINAL.as_bytes()).unwrap();
        assert_eq!(o.from, "mario@pec.it");
        assert_eq!(o.to, vec!["anna@pec.it", "bea@pec.it"]);
        assert_eq!(o.subject, "Verbale <7>");
        assert!(o.text.contains("Testo del verbale."));
        assert_eq!(o.attachments.len(), 1);
        let a = &o.attachments[0];
        assert_eq!(
            (a.name.as_str(), a.media_type.as_str(), a.size),
            ("verbale.pdf", "application/pdf", 5)
        );
        let (bytes, name, _) = attachment(ORIGINAL.as_bytes(), a.part).unwrap();
        assert_eq!(
            (bytes.as_slice(), name.as_str()),
            (&b"%PDF-"[..], "verbale.pdf")
        );
        assert!(
            attachment(ORIGINAL.as_bytes(), 0).is_none(),
            "the root is no attachment"
        );
    }
}
