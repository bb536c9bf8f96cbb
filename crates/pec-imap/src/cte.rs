//! Content-Transfer-Encoding decoding for FETCH BINARY (RFC 3516): a part's body as
//! its sender meant it, base64 and quoted-printable undone; identity encodings
//! (`7bit`, `8bit`, `binary`, none) pass through. Decoding is lenient, as mail readers
//! are: bytes that do not belong to the encoding are skipped or kept, never an error.
//! Only an encoding this server does not know is refused (`[UNKNOWN-CTE]`).

use base64::Engine;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, general_purpose};

/// The decoded body, or `None` when `encoding` (the header value, any case) is not
/// one this server knows.
pub(crate) fn decode(encoding: Option<&[u8]>, body: &[u8]) -> Option<Vec<u8>> {
    let encoding = encoding.map(|e| e.trim_ascii().to_ascii_lowercase());
    match encoding.as_deref() {
        None | Some(b"" | b"7bit" | b"8bit" | b"binary") => Some(body.to_vec()),
        Some(b"base64") => Some(base64(body)),
        Some(b"quoted-printable") => Some(quoted_printable(body)),
        Some(_) => None,
    }
}

/// Base64 (RFC 2045 6.8): characters outside the alphabet (line breaks, spaces) are
/// skipped, decoding stops at the first `=`, an incomplete last group is dropped.
fn base64(body: &[u8]) -> Vec<u8> {
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    let mut clean: Vec<u8> = body
        .iter()
        .copied()
        .take_while(|&b| b != b'=')
        .filter(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
        .collect();
    // A single character left over cannot make a byte.
    if clean.len() % 4 == 1 {
        clean.pop();
    }
    LENIENT
        .decode(&clean)
        .or_else(|_| general_purpose::STANDARD_NO_PAD.decode(&clean))
        .unwrap_or_default()
}

/// Quoted-printable (RFC 2045 6.7): trailing white space of each line dropped, `=` at
/// a line's end joins it to the next, `=XX` is the byte XX; any other `=` stays as it
/// is. Lines end in CRLF in the output, whatever they ended in.
fn quoted_printable(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut lines = body.split(|&b| b == b'\n').peekable();
    while let Some(line) = lines.next() {
        let last = lines.peek().is_none();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let line = line.trim_ascii_end();
        let (line, soft) = match line.strip_suffix(b"=") {
            Some(l) => (l, true),
            None => (line, false),
        };
        let mut i = 0;
        while i < line.len() {
            let hex = (line[i] == b'=')
                .then(|| Some((hex_digit(*line.get(i + 1)?)?, hex_digit(*line.get(i + 2)?)?)))
                .flatten();
            match hex {
                Some((hi, lo)) => {
                    out.push(hi << 4 | lo);
                    i += 3;
                }
                None => {
                    out.push(line[i]);
                    i += 1;
                }
            }
        }
        if !soft && !last {
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'A'..=b'F' => Some(c - b'A' + 10),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_encodings_and_unknown_ones() {
        assert_eq!(decode(None, b"a\0b").unwrap(), b"a\0b");
        assert_eq!(decode(Some(b" Binary "), b"x").unwrap(), b"x");
        assert_eq!(decode(Some(b"x-uuencode"), b"x"), None);
    }

    #[test]
    fn base64_skips_what_is_not_in_the_alphabet() {
        let body = b"  aGVs    \r\n bG8g  \r\n   d29y  \t \r\n    bGQ= \r\n";
        assert_eq!(decode(Some(b"BASE64"), body).unwrap(), b"hello world");
        assert_eq!(base64(b"aGVsbG8"), b"hello");
        assert_eq!(base64(b"aGVsbG8gA"), b"hello ");
        assert_eq!(base64(b"!!!"), b"");
    }

    #[test]
    fn quoted_printable_soft_breaks_and_escapes() {
        let body =
            b"hello  \r\nbar=\r\n\r\nfoo\t=\r\nbar\r\nfoo\t \t= \r\n=62\r\nfoo =\r\n=3D=3x=\r\n";
        assert_eq!(
            decode(Some(b"quoted-printable"), body).unwrap(),
            b"hello\r\nbar\r\nfoo\tbar\r\nfoo\t \tb\r\nfoo ==3x"
        );
    }
}
