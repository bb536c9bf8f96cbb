//! FETCH BINARY, BINARY.PEEK and BINARY.SIZE (RFC 3516): a part's content with its
//! transfer encoding undone. The items are encoded here, not by the codec, which has
//! no origin octet for a partial BINARY (`BINARY[1]<0> ~{7}`).

use super::*;
use crate::cte;

/// The decoded content of section `path`, `None` when its encoding is unknown; a
/// missing part reads as empty, as for BODY.
fn decoded(raw: &[u8], parsed: Option<&Parsed<'_>>, path: &[NonZeroU32]) -> Option<Vec<u8>> {
    match mime::binary_part(raw, parsed.and_then(Parsed::message), path) {
        Some((body, encoding)) => cte::decode(encoding.as_deref(), &body),
        None => Some(Vec::new()),
    }
}

/// Whether a BINARY item of `names` asks for a part whose encoding this server does
/// not know (then the FETCH fails with `[UNKNOWN-CTE]`).
pub(super) fn unknown_encoding(
    names: &[MessageDataItemName<'static>],
    raw: &[u8],
    parsed: Option<&Parsed<'_>>,
) -> bool {
    names.iter().any(|n| match n {
        MessageDataItemName::Binary { section, .. }
        | MessageDataItemName::BinarySize { section } => {
            let encoding = mime::binary_part(raw, parsed.and_then(Parsed::message), section)
                .and_then(|(_, e)| e);
            cte::decode(encoding.as_deref(), b"").is_none()
        }
        _ => false,
    })
}

/// The encoded FETCH item for a BINARY name (`None` for any other name): a literal,
/// or a literal8 when the content holds NUL bytes.
pub(super) fn item(
    name: &MessageDataItemName<'static>,
    raw: &[u8],
    parsed: Option<&Parsed<'_>>,
) -> Option<Vec<u8>> {
    let (section, partial, size_only) = match name {
        MessageDataItemName::Binary {
            section, partial, ..
        } => (section, *partial, false),
        MessageDataItemName::BinarySize { section } => (section, None, true),
        _ => return None,
    };
    let mut content = decoded(raw, parsed, section).unwrap_or_default();
    let mut out = if size_only {
        b"BINARY.SIZE[".to_vec()
    } else {
        b"BINARY[".to_vec()
    };
    let path: Vec<String> = section.iter().map(|n| n.to_string()).collect();
    out.extend_from_slice(path.join(".").as_bytes());
    out.push(b']');
    if size_only {
        out.extend_from_slice(format!(" {}", content.len()).as_bytes());
        return Some(out);
    }
    if let Some((start, len)) = partial {
        let from = (start as usize).min(content.len());
        let to = from.saturating_add(len.get() as usize).min(content.len());
        content = content[from..to].to_vec();
        out.extend_from_slice(format!("<{start}>").as_bytes());
    }
    let marker = if content.contains(&0) { "~" } else { "" };
    out.extend_from_slice(format!(" {marker}{{{}}}\r\n", content.len()).as_bytes());
    out.extend_from_slice(&content);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binary(section: &[u32], partial: Option<(u32, u32)>) -> MessageDataItemName<'static> {
        MessageDataItemName::Binary {
            section: section.iter().filter_map(|&n| NonZeroU32::new(n)).collect(),
            partial: partial.and_then(|(s, l)| Some((s, NonZeroU32::new(l)?))),
            peek: true,
        }
    }

    const MSG: &[u8] = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
Content-Transfer-Encoding: base64\r\n\r\nAGE=\r\n--b\r\n\
Content-Transfer-Encoding: x-rot13\r\n\r\nnop\r\n--b--\r\n";

    #[test]
    fn decoded_parts_partial_and_literal8() {
        let parsed = mime::parse(MSG);
        let item = item(&binary(&[1], None), MSG, Some(&parsed)).unwrap();
        assert_eq!(item, b"BINARY[1] ~{2}\r\n\0a");
        let item = super::item(&binary(&[1], Some((1, 5))), MSG, Some(&parsed)).unwrap();
        assert_eq!(item, b"BINARY[1]<1> {1}\r\na");
        let size = MessageDataItemName::BinarySize {
            section: vec![NonZeroU32::MIN],
        };
        assert_eq!(
            super::item(&size, MSG, Some(&parsed)).unwrap(),
            b"BINARY.SIZE[1] 2"
        );
        assert!(super::item(&MessageDataItemName::Uid, MSG, Some(&parsed)).is_none());
    }

    #[test]
    fn unknown_encodings_are_found_before_any_output() {
        let parsed = mime::parse(MSG);
        assert!(!unknown_encoding(&[binary(&[1], None)], MSG, Some(&parsed)));
        assert!(unknown_encoding(&[binary(&[2], None)], MSG, Some(&parsed)));
        assert!(!unknown_encoding(&[binary(&[3], None)], MSG, Some(&parsed)));
    }
}
