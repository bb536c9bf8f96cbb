//! Byte-exact MIME writing and the few header operations PEC needs on raw messages.
//!
//! Everything signed must be known byte for byte, so generated messages are assembled
//! here from strings with CRLF line endings rather than serialised by a general builder.
//! Reading is done with `mail-parser` (see `classify`); this module only splices raw
//! header blocks, which must never be parsed and re-serialised.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use mail_parser::{MessagePart, MimeHeaders};

/// Line length limit for encoded bodies (RFC 2045 allows 76).
const LINE: usize = 76;

/// Base64 with CRLF-terminated lines of 76 characters.
pub fn base64_lines(data: &[u8]) -> String {
    let encoded = STANDARD.encode(data);
    let mut out = String::with_capacity(encoded.len() + encoded.len() / LINE * 2 + 2);
    for chunk in encoded.as_bytes().chunks(LINE) {
        // Base64 output is ASCII, so every chunk is valid UTF-8.
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push_str("\r\n");
    }
    out
}

/// Upper-case hex digits, as quoted-printable writes them (RFC 2045 §6.7).
const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// Quoted-printable (RFC 2045 §6.7) of text whose lines end in `\n` or `\r\n`; the output
/// has CRLF hard line breaks and soft breaks keeping lines within 76 characters.
pub fn quoted_printable(text: &[u8]) -> String {
    let mut out = String::with_capacity(text.len() * 11 / 10 + 8);
    let normalized = text.strip_suffix(b"\n").unwrap_or(text);
    for line in normalized.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut width = 0;
        for (i, &b) in line.iter().enumerate() {
            let last = i + 1 == line.len();
            let literal =
                (b == b' ' || b == b'\t') && !last || (33..=126).contains(&b) && b != b'=';
            let width_of_piece = if literal { 1 } else { 3 };
            if width + width_of_piece > LINE - 1 {
                out.push_str("=\r\n");
                width = 0;
            }
            width += width_of_piece;
            if literal {
                out.push(char::from(b));
            } else {
                out.push('=');
                out.push(char::from(HEX_UPPER[usize::from(b >> 4)]));
                out.push(char::from(HEX_UPPER[usize::from(b & 0x0f)]));
            }
        }
        out.push_str("\r\n");
    }
    out
}

/// Converts text to ISO-8859-1, the charset of PEC human-readable parts (spec §5.1);
/// characters outside Latin-1 become `?`.
pub fn to_latin1(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
        .collect()
}

/// Folded header lines stay within this many characters when their words allow it
/// (RFC 5322 §2.1.1).
const HEADER_LINE: usize = 78;

/// UTF-8 bytes in one RFC 2047 encoded word: 60 base64 characters, a word of 72.
const ENCODED_WORD_BYTES: usize = 45;

/// What `=?UTF-8?B?` and `?=` add to the base64 text of an encoded word.
const ENCODED_WORD_OVERHEAD: usize = 12;

/// Control characters become spaces: a header value never carries a line break.
fn without_controls(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// `value` as RFC 2047 `B` encoded words in UTF-8, split at character boundaries: the
/// first word holds at most `first_bytes` bytes (but always one character), the others
/// [`ENCODED_WORD_BYTES`]. Decoders join adjacent encoded words without the space between
/// them, so the text comes back whole.
fn encoded_words(value: &str, first_bytes: usize) -> String {
    let mut words = Vec::new();
    let mut chunk = String::new();
    let mut budget = first_bytes;
    for c in value.chars() {
        if !chunk.is_empty() && chunk.len() + c.len_utf8() > budget {
            words.push(format!("=?UTF-8?B?{}?=", STANDARD.encode(&chunk)));
            chunk.clear();
            budget = ENCODED_WORD_BYTES;
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(format!("=?UTF-8?B?{}?=", STANDARD.encode(&chunk)));
    }
    words.join(" ")
}

/// A header value safe for the wire: ASCII as is, otherwise RFC 2047 `B` encoded words in
/// UTF-8, split so that each encoded word stays short. Control characters become spaces.
pub fn encode_header_text(value: &str) -> String {
    let value = without_controls(value);
    if value.is_ascii() {
        return value;
    }
    encoded_words(&value, ENCODED_WORD_BYTES)
}

/// The value of a Subject made of a PEC `prefix` (`"ACCETTAZIONE: "`, ending with its
/// space) and the original `subject`, for [`push_header_keeping`] with the prefix kept.
///
/// The subject is encoded (as [`encode_header_text`] does) when it is not ASCII, when it
/// holds `=?` (a decoder could take it for an encoded word) or a word no line could hold;
/// the first encoded word is then short enough to share the first line with the prefix,
/// so a parser that reads that line alone still sees the prefix and the subject's start.
pub fn prefixed_subject(prefix: &str, subject: &str) -> String {
    let subject = without_controls(subject);
    let plain = subject.is_ascii()
        && !subject.contains("=?")
        && subject.split(' ').all(|w| w.len() < HEADER_LINE);
    if plain {
        return format!("{prefix}{subject}");
    }
    // "Subject: " and the prefix are on the first line before the first encoded word.
    let used = "Subject: ".len() + prefix.len();
    let base64_room = HEADER_LINE
        .saturating_sub(used + ENCODED_WORD_OVERHEAD)
        .min(ENCODED_WORD_BYTES / 3 * 4);
    format!("{prefix}{}", encoded_words(&subject, base64_room / 4 * 3))
}

/// Writes one header field, folding at spaces so lines stay within 78 characters when the
/// value allows it. The value must already be wire-safe (see [`encode_header_text`]).
pub fn push_header(out: &mut Vec<u8>, name: &str, value: &str) {
    push_header_keeping(out, name, value, 0);
}

/// [`push_header`], except that the first `keep` bytes of `value` and the word after them
/// are never folded apart: they stay on the first line whatever its length (a Subject's
/// PEC prefix and the start of the original subject, which parsers look for there).
/// `keep` is cut back to a character boundary of `value`.
pub fn push_header_keeping(out: &mut Vec<u8>, name: &str, value: &str, keep: usize) {
    let mut keep = keep.min(value.len());
    while !value.is_char_boundary(keep) {
        keep -= 1;
    }
    let (kept, rest) = value.split_at(keep);
    let mut words = rest.split(' ').filter(|w| !w.is_empty());
    let head = format!("{kept}{}", words.next().unwrap_or_default());
    out.extend_from_slice(name.as_bytes());
    out.push(b':');
    let mut line_len = name.len() + 1;
    if !head.trim().is_empty() {
        out.push(b' ');
        out.extend_from_slice(head.trim_start().as_bytes());
        line_len += 1 + head.trim_start().len();
    }
    for word in words {
        if line_len + 1 + word.len() > HEADER_LINE && line_len > name.len() + 1 {
            out.extend_from_slice(b"\r\n");
            line_len = 0;
        }
        out.push(b' ');
        out.extend_from_slice(word.as_bytes());
        line_len += 1 + word.len();
    }
    out.extend_from_slice(b"\r\n");
}

/// One header field of a raw message: its name and the whole field (name, colon, value and
/// continuation lines, with the final line ending).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawField<'a> {
    /// The field name as written.
    pub name: &'a str,
    /// The complete field bytes, including the terminating line ending.
    pub bytes: &'a [u8],
}

impl RawField<'_> {
    /// The unfolded value with surrounding whitespace removed, lossily decoded as UTF-8.
    pub fn value(&self) -> String {
        let colon = self.bytes.iter().position(|&b| b == b':').unwrap_or(0);
        let raw = self.bytes.get(colon + 1..).unwrap_or_default();
        let text = String::from_utf8_lossy(raw);
        text.replace("\r\n", "")
            .replace('\n', "")
            .trim()
            .to_string()
    }
}

/// Splits a raw message into its header fields and the offset where the body starts (after
/// the empty line). Tolerates LF-only line endings; a line that is not a field and not a
/// continuation ends the header block, as if it were the body.
pub fn split_header(raw: &[u8]) -> (Vec<RawField<'_>>, usize) {
    let mut fields: Vec<RawField<'_>> = Vec::new();
    let mut pos = 0;
    let mut current: Option<(usize, usize)> = None; // (start, name_end)
    while pos < raw.len() {
        let line_end = raw[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(raw.len(), |p| pos + p + 1);
        let line = &raw[pos..line_end];
        let is_blank = line == b"\r\n" || line == b"\n";
        let is_continuation = matches!(line.first(), Some(b' ' | b'\t'));
        if is_continuation && current.is_some() {
            pos = line_end;
            continue;
        }
        if let Some((start, name_end)) = current.take() {
            push_field(&mut fields, raw, start, name_end, pos);
        }
        if is_blank {
            return (fields, line_end);
        }
        match line.iter().position(|&b| b == b':') {
            Some(colon)
                if colon > 0
                    && line[..colon]
                        .iter()
                        .all(|&b| b.is_ascii_graphic() && b != b':') =>
            {
                current = Some((pos, pos + colon));
            }
            _ => return (fields, pos),
        }
        pos = line_end;
    }
    if let Some((start, name_end)) = current.take() {
        push_field(&mut fields, raw, start, name_end, raw.len());
    }
    (fields, raw.len())
}

fn push_field<'a>(
    fields: &mut Vec<RawField<'a>>,
    raw: &'a [u8],
    start: usize,
    name_end: usize,
    end: usize,
) {
    // The name was checked to be ASCII graphic characters.
    let name = std::str::from_utf8(&raw[start..name_end]).unwrap_or_default();
    fields.push(RawField {
        name,
        bytes: &raw[start..end],
    });
}

/// The first field named `name` (case-insensitive).
pub fn find_field<'a>(fields: &[RawField<'a>], name: &str) -> Option<RawField<'a>> {
    fields
        .iter()
        .find(|f| f.name.eq_ignore_ascii_case(name))
        .copied()
}

/// Converts bare LF line endings to CRLF, leaving existing CRLF alone: the canonical form
/// that S/MIME signatures cover.
pub fn to_crlf(data: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let needs = data
        .iter()
        .enumerate()
        .any(|(i, &b)| b == b'\n' && (i == 0 || data[i - 1] != b'\r'));
    if !needs {
        return std::borrow::Cow::Borrowed(data);
    }
    let mut out = Vec::with_capacity(data.len() + data.len() / 40);
    for (i, &b) in data.iter().enumerate() {
        if b == b'\n' && (i == 0 || data[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
    std::borrow::Cow::Owned(out)
}

/// Whether any byte is outside 7-bit ASCII.
pub fn has_8bit(data: &[u8]) -> bool {
    data.iter().any(|&b| b >= 0x80)
}

/// Extracts the bare address (`local@domain`) from an address header value such as
/// `"Mario" <mario@x.it>` or `mario@x.it`; `None` when there is none.
pub fn bare_address(value: &str) -> Option<String> {
    let candidate = match (value.rfind('<'), value.rfind('>')) {
        (Some(l), Some(r)) if l < r => &value[l + 1..r],
        _ => value,
    };
    let candidate = candidate.trim();
    let (local, domain) = candidate.rsplit_once('@')?;
    let ok = !local.is_empty()
        && !domain.is_empty()
        && !candidate
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.');
    ok.then(|| candidate.to_string())
}

/// Whether a parsed part's Content-Type is `ctype/` one of `subtypes` (case-insensitive).
pub fn is_type(part: &MessagePart<'_>, ctype: &str, subtypes: &[&str]) -> bool {
    part.content_type().is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case(ctype)
            && ct
                .subtype()
                .is_some_and(|s| subtypes.iter().any(|t| s.eq_ignore_ascii_case(t)))
    })
}

/// The attachment name of a parsed part: `filename` of Content-Disposition, else `name`
/// of Content-Type, trimmed.
pub fn part_name<'p>(part: &'p MessagePart<'_>) -> Option<&'p str> {
    part.content_disposition()
        .and_then(|d| d.attribute("filename"))
        .or_else(|| part.content_type().and_then(|c| c.attribute("name")))
        .map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qp_encodes_latin1_and_soft_breaks() {
        let text = to_latin1("è stato accettato\n");
        assert_eq!(quoted_printable(&text), "=E8 stato accettato\r\n");
        let long = "a".repeat(100);
        let qp = quoted_printable(long.as_bytes());
        assert!(qp.lines().all(|l| l.len() <= 76), "{qp}");
        assert_eq!(qp.replace("=\r\n", "").trim_end(), long);
        assert_eq!(quoted_printable(b"end \n"), "end=20\r\n");
    }

    #[test]
    fn header_split_keeps_raw_fields() {
        let raw = b"Subject: a\r\n b\r\nTo: x@y.it\nX-Ricevuta: accettazione\r\n\r\nbody";
        let (fields, body) = split_header(raw);
        assert_eq!(fields.len(), 3);
        assert_eq!(fields[0].bytes, b"Subject: a\r\n b\r\n");
        assert_eq!(fields[0].value(), "a b");
        assert_eq!(
            find_field(&fields, "x-ricevuta")
                .map(|f| f.value())
                .as_deref(),
            Some("accettazione")
        );
        assert_eq!(&raw[body..], b"body");
    }

    #[test]
    fn addresses() {
        assert_eq!(
            bare_address("\"M R\" <m.r@pec.a.it>").as_deref(),
            Some("m.r@pec.a.it")
        );
        assert_eq!(
            bare_address("m.r@pec.a.it").as_deref(),
            Some("m.r@pec.a.it")
        );
        assert_eq!(bare_address("not an address"), None);
        assert_eq!(bare_address("a@b"), None);
    }

    #[test]
    fn subjects_are_encoded_only_when_plain_text_could_mislead_or_overflow() {
        assert_eq!(
            prefixed_subject("CONSEGNA: ", "Fattura 12"),
            "CONSEGNA: Fattura 12"
        );
        for subject in ["prezzo =?UTF-8?B?x?= finto", &"x".repeat(100), "Città"] {
            let value = prefixed_subject("CONSEGNA: ", subject);
            assert!(value.starts_with("CONSEGNA: =?UTF-8?B?"), "{value}");
        }
        let mut out = Vec::new();
        let value = prefixed_subject("CONSEGNA: ", &"è".repeat(60));
        push_header_keeping(&mut out, "Subject", &value, "CONSEGNA: ".len());
        let text = String::from_utf8(out).unwrap();
        let first = text.split("\r\n").next().unwrap();
        assert!(first.starts_with("Subject: CONSEGNA: =?UTF-8?B?"), "{text}");
        assert!(text.split("\r\n").all(|l| l.len() <= 78), "{text}");
        // A keep that is not on a character boundary is cut back to one.
        let mut out = Vec::new();
        push_header_keeping(&mut out, "X", "àb c", 1);
        assert_eq!(out, "X: àb c\r\n".as_bytes());
    }

    #[test]
    fn encoded_words_for_non_ascii() {
        assert_eq!(encode_header_text("Fattura 12"), "Fattura 12");
        let e = encode_header_text("Città");
        assert!(e.starts_with("=?UTF-8?B?") && e.ends_with("?="), "{e}");
    }
}
