//! The `postacert.eml` of a ricevuta breve (spec §3.8): the original's MIME tree kept, every
//! part with a `name` or `filename` replaced by a `text/plain` part `<name>.hash` holding the
//! SHA-1 of the replaced part's body as transmitted (the encoded bytes), 40 lower-case hex
//! characters.

use mail_parser::{MessagePart, PartType};

use crate::bounded;
use crate::mime::{is_type, part_name};
use openssl::sha::sha1;

/// The breve form of `original`. A `multipart/signed` original is shortened inside its
/// first part only (the signature part is kept byte-identical); an opaque
/// `application/pkcs7-mime` original is returned unchanged, as is anything unparsable or
/// too complex to parse in full (see [`bounded`]).
pub fn shorten(original: &[u8]) -> Vec<u8> {
    let parsed = bounded::parse(original);
    let Some(message) = parsed.message().filter(|_| !parsed.is_flat()) else {
        return original.to_vec();
    };
    let mut replacements: Vec<(usize, usize, Vec<u8>)> = Vec::new();
    collect(&message.parts, 0, true, original, &mut replacements, 0);
    replacements.sort_by_key(|r| r.0);
    let mut out = Vec::with_capacity(original.len());
    let mut pos = 0;
    for (start, end, bytes) in replacements {
        if start < pos || end > original.len() {
            continue;
        }
        out.extend_from_slice(&original[pos..start]);
        out.extend_from_slice(&bytes);
        pos = end;
    }
    out.extend_from_slice(original.get(pos..).unwrap_or_default());
    out
}

fn collect(
    parts: &[MessagePart<'_>],
    id: usize,
    is_root: bool,
    raw: &[u8],
    out: &mut Vec<(usize, usize, Vec<u8>)>,
    depth: usize,
) {
    let Some(part) = parts.get(id) else { return };
    if depth > 64 || is_type(part, "application", &["pkcs7-mime", "x-pkcs7-mime"]) {
        return;
    }
    let name = if is_root {
        None
    } else {
        part_name(part).map(|n| n.replace(['"', '\r', '\n', '\\'], ""))
    };
    if let Some(name) = name {
        let (start, body, end) = (
            part.offset_header as usize,
            part.offset_body as usize,
            part.offset_end as usize,
        );
        if let Some(content) = raw.get(body..end).filter(|_| start <= body) {
            let hex: String = sha1(content).iter().map(|b| format!("{b:02x}")).collect();
            let replacement = format!(
                "Content-Type: text/plain; name=\"{name}.hash\"\r\n\
                 Content-Disposition: attachment; filename=\"{name}.hash\"\r\n\
                 Content-Transfer-Encoding: 7bit\r\n\r\n{hex}"
            );
            out.push((start, end, replacement.into_bytes()));
        }
        return;
    }
    if let PartType::Multipart(children) = &part.body {
        let signed = is_type(part, "multipart", &["signed"]);
        let take = if signed { 1 } else { children.len() };
        for &child in children.iter().take(take) {
            collect(parts, child as usize, false, raw, out, depth + 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha1_hex(data: &[u8]) -> String {
        sha1(data).iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn attached_message_is_hashed_whole() {
        let inner = "From: a@b.it\r\nSubject: x\r\n\r\nhello\r\n";
        let msg = format!(
            "Content-Type: multipart/mixed; boundary=\"B\"\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\ntext\r\n\
             --B\r\nContent-Type: message/rfc822; name=\"inoltro.eml\"\r\n\r\n{inner}\r\n--B--\r\n"
        );
        let out = String::from_utf8(shorten(msg.as_bytes())).unwrap();
        assert!(out.contains("name=\"inoltro.eml.hash\""), "{out}");
        assert!(out.contains(&sha1_hex(inner.as_bytes())), "{out}");
        assert!(!out.contains("hello"));
        assert!(
            out.contains("text\r\n--B\r\n"),
            "untouched parts stay: {out}"
        );
    }

    #[test]
    fn signed_original_is_shortened_in_the_first_part_only() {
        let sig = "Content-Type: application/pkcs7-signature; name=\"smime.p7s\"\r\n\
                   Content-Disposition: attachment; filename=\"smime.p7s\"\r\n\r\nAAAA";
        let msg = format!(
            "Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; boundary=\"S\"\r\n\r\n\
             --S\r\nContent-Type: multipart/mixed; boundary=\"M\"\r\n\r\n--M\r\nContent-Type: text/plain\r\n\r\nt\r\n\
             --M\r\nContent-Type: application/pdf; name=\"a.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nQUJD\r\n--M--\r\n\
             \r\n--S\r\n{sig}\r\n--S--\r\n"
        );
        let out = String::from_utf8(shorten(msg.as_bytes())).unwrap();
        assert!(out.contains("a.pdf.hash"), "{out}");
        assert!(out.contains(&sha1_hex(b"QUJD")));
        assert!(
            out.contains(sig),
            "signature part kept byte-identical: {out}"
        );
        assert!(!out.contains("smime.p7s.hash"));
    }

    #[test]
    fn opaque_pkcs7_is_left_alone() {
        let msg =
            b"Content-Type: application/pkcs7-mime; smime-type=signed-data; name=\"smime.p7m\"\r\n\
                    Content-Transfer-Encoding: base64\r\n\r\nAAAA\r\n";
        assert_eq!(shorten(msg), msg.to_vec());
    }
}
