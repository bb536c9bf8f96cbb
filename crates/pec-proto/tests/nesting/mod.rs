//! Messages nested as deep as asked, built without recursion, for the bounded-parse tests
//! and the `structure` fuzz target (which includes this file by path).

use base64::Engine;

/// One level of nesting around the part inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wrap {
    /// `multipart/mixed` whose only child is the inner part.
    Mixed,
    /// `multipart/mixed` with a text part before and after the inner part.
    MixedWithSiblings,
    /// `multipart/mixed` reusing the boundary of the level around it.
    SameBoundary,
    /// `multipart/mixed` whose first child is a multipart naming a boundary that never
    /// occurs, then the inner part.
    MissingBoundary,
    /// `multipart/digest` whose child has no `Content-Type` (so it is `message/rfc822`).
    Digest,
    /// `message/rfc822`, not transfer-encoded.
    Rfc822,
    /// `message/rfc822` in base64.
    Base64Rfc822,
    /// `message/rfc822` in quoted-printable.
    QuotedPrintableRfc822,
}

impl Wrap {
    const ALL: [Wrap; 8] = [
        Wrap::Mixed,
        Wrap::MixedWithSiblings,
        Wrap::SameBoundary,
        Wrap::MissingBoundary,
        Wrap::Digest,
        Wrap::Rfc822,
        Wrap::Base64Rfc822,
        Wrap::QuotedPrintableRfc822,
    ];

    fn is_encoded(self) -> bool {
        matches!(self, Wrap::Base64Rfc822 | Wrap::QuotedPrintableRfc822)
    }
}

/// Most transfer-encoded levels [`wraps_from_bytes`] makes (each one copies and grows
/// everything inside it); further ones become [`Wrap::Rfc822`].
pub const MAX_ENCODED: usize = 5;

/// One wrap per byte, outermost first.
pub fn wraps_from_bytes(bytes: &[u8]) -> Vec<Wrap> {
    let mut encoded = 0;
    bytes
        .iter()
        .map(|b| {
            let w = Wrap::ALL[usize::from(*b) % Wrap::ALL.len()];
            if w.is_encoded() {
                encoded += 1;
                if encoded > MAX_ENCODED {
                    return Wrap::Rfc822;
                }
            }
            w
        })
        .collect()
}

fn boundary(level: usize) -> String {
    format!("_b{level}_")
}

fn quoted_printable(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 8);
    for &b in data {
        if b == b'=' {
            out.extend_from_slice(b"=3D");
        } else {
            out.push(b);
        }
    }
    out
}

fn base64_lines(data: &[u8]) -> Vec<u8> {
    let text = base64::engine::general_purpose::STANDARD.encode(data);
    let mut out = Vec::with_capacity(text.len() + text.len() / 38);
    for line in text.as_bytes().chunks(76) {
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A message whose top-level part is wrapped in `wraps` (outermost first) around a
/// `text/plain` part.
pub fn nest(wraps: &[Wrap]) -> Vec<u8> {
    // What goes before the inner part, innermost first, and what goes after it.
    let mut before: Vec<Vec<u8>> = Vec::new();
    let mut after: Vec<u8> = Vec::new();
    let mut core = b"Content-Type: text/plain\r\n\r\nhello\r\n".to_vec();
    for (level, wrap) in wraps.iter().enumerate().rev() {
        let b = boundary(level);
        let (pre, post) = match wrap {
            Wrap::Mixed => (
                format!("Content-Type: multipart/mixed; boundary=\"{b}\"\r\n\r\n--{b}\r\n"),
                format!("\r\n--{b}--\r\n"),
            ),
            Wrap::MixedWithSiblings => (
                format!(
                    "Content-Type: multipart/mixed; boundary=\"{b}\"\r\n\r\n--{b}\r\n\
                     Content-Type: text/plain\r\n\r\nbefore\r\n--{b}\r\n"
                ),
                format!("\r\n--{b}\r\nContent-Type: text/plain\r\n\r\nafter\r\n--{b}--\r\n"),
            ),
            Wrap::SameBoundary => {
                let b = boundary(level.saturating_sub(1));
                (
                    format!("Content-Type: multipart/mixed; boundary=\"{b}\"\r\n\r\n--{b}\r\n"),
                    format!("\r\n--{b}--\r\n"),
                )
            }
            Wrap::MissingBoundary => (
                format!(
                    "Content-Type: multipart/mixed; boundary=\"{b}\"\r\n\r\n--{b}\r\n\
                     Content-Type: multipart/mixed; boundary=\"never{level}\"\r\n\r\n\
                     no boundary here\r\n--{b}\r\n"
                ),
                format!("\r\n--{b}--\r\n"),
            ),
            Wrap::Digest => (
                format!("Content-Type: multipart/digest; boundary=\"{b}\"\r\n\r\n--{b}\r\n\r\n"),
                format!("\r\n--{b}--\r\n"),
            ),
            Wrap::Rfc822 => (
                "Content-Type: message/rfc822\r\n\r\n".to_string(),
                String::new(),
            ),
            Wrap::Base64Rfc822 | Wrap::QuotedPrintableRfc822 => {
                let mut inner: Vec<u8> = before.drain(..).rev().flatten().collect();
                inner.extend_from_slice(&core);
                inner.append(&mut after);
                let (name, body) = if *wrap == Wrap::Base64Rfc822 {
                    ("base64", base64_lines(&inner))
                } else {
                    ("quoted-printable", quoted_printable(&inner))
                };
                core = format!(
                    "Content-Type: message/rfc822\r\nContent-Transfer-Encoding: {name}\r\n\r\n"
                )
                .into_bytes();
                core.extend_from_slice(&body);
                continue;
            }
        };
        before.push(pre.into_bytes());
        after.extend_from_slice(post.as_bytes());
    }
    let mut out = b"From: a@example.test\r\nTo: b@example.test\r\nSubject: nested\r\n".to_vec();
    out.extend(before.into_iter().rev().flatten());
    out.extend_from_slice(&core);
    out.extend_from_slice(&after);
    out
}
