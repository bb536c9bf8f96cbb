//! Bounded MIME parsing: every `mail-parser` parse of this project goes through here, so no
//! message, however hostile, can make a parse (or the walkers over its result) overflow the
//! stack or run for quadratic time.
//!
//! `mail-parser` parses without recursion, but what it builds is recursive for attached
//! messages (`PartType::Message(Message)`): thousands of nested `message/rfc822` parts, or
//! `multipart/digest` children (which default to `message/rfc822`), give a tree whose drop,
//! `into_owned` and every walker recurse once per level. Its boundary search also restarts
//! from where it was after a boundary that never occurs, so thousands of multiparts naming
//! an absent boundary cost thousands of scans to the end of the message.
//!
//! So [`parse`] first *measures* the structure `mail-parser` would build, with the same
//! primitives and the same decisions as its `parse_` ([`MessageStream::parse_headers`],
//! `seek_next_part`, the decoders, ...) but without building anything, and stops as soon as
//! a limit of [`MimeLimits`] is passed. Within the limits it returns the ordinary parse;
//! beyond them a *flat* parse, where the top-level `Content-Type` is read as raw text so the
//! whole body is one part that cannot nest (every other header is parsed as usual, so
//! `From`, `To` and `Subject` still work), and says so: [`Parsed::is_flat`]. Dovecot shows
//! what lies beyond its limits as `application/octet-stream`; the flag lets the IMAP
//! server do the same.
//!
//! The measured depth is never less than the depth of what the real parse builds (the
//! `structure` fuzz target checks this): the depth of a part is the number of open
//! containers (multiparts and messages) around it plus one, the top-level part being at
//! depth 1, and a transfer-encoded attached message, which `mail-parser` parses again from
//! its decoded bytes (at most [`ENCODED_LAYERS`] times over), continues the depth of the part
//! that carries it. Measuring is linear, and so is the parse it lets through: each encoded
//! layer is scanned once, plus one scan per failed boundary search (counted and bounded),
//! and each `--` costs at most a bounded boundary length to compare.
//!
//! The walker follows `mail-parser` 0.11.9 (pinned exactly in the workspace): an upgrade
//! must be checked against its `parsers/message.rs`, then fuzzed with the `structure` target.
//!
//! One more shape is refused: a `message/rfc822` part whose body is directly another
//! unencoded attached message, followed by the closing boundary of the enclosing multipart.
//! `mail-parser` then returns to the outer attached message instead of the multipart and
//! closes *it* as a multipart ([`Exceeded::Inconsistent`]): release builds drop part of the
//! tree and stop early (a PEC envelope around such an original loses its signature part),
//! builds with debug assertions panic ("Invalid part ID, could not find multipart"), which
//! is what stopped the `classify` fuzz target. Such a message is parsed flat.

use std::sync::LazyLock;

use mail_parser::parsers::MessageStream;
use mail_parser::{
    ContentType, GetHeader, Header, HeaderName, HeaderValue, Message, MessageParser, PartType,
};

/// How many times `mail-parser` parses again the decoded bytes of a transfer-encoded
/// attached message inside an attached message (its private `MAX_NESTED_ENCODED`); past
/// that it keeps the bytes as a binary part.
pub const ENCODED_LAYERS: usize = 3;

/// How far a message may go before it is parsed flat.
///
/// The depth and part defaults are those of Dovecot's message parser
/// (`max_nested_mime_parts = 100`, `max_total_mime_parts = 10000`) and Postfix's
/// `mime_nesting_limit = 100`: no real message comes near them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MimeLimits {
    /// Deepest part: the top-level part is at depth 1, each multipart or attached message
    /// adds one level for what it contains.
    pub max_depth: usize,
    /// Most parts, counting the parts of attached messages.
    pub max_parts: usize,
    /// Most boundary searches that reach the end of the message without finding the
    /// boundary (a multipart naming a boundary it never uses); each one is a scan to the end.
    pub max_failed_searches: usize,
    /// Longest boundary (RFC 2046 allows 70 characters): `mail-parser` compares the whole
    /// boundary after every `--`, so its length multiplies the cost of a scan.
    pub max_boundary_len: usize,
}

impl MimeLimits {
    /// 100 levels, 10,000 parts, 16 failed boundary searches, 256-byte boundaries.
    pub const DEFAULT: MimeLimits = MimeLimits {
        max_depth: 100,
        max_parts: 10_000,
        max_failed_searches: 16,
        max_boundary_len: 256,
    };
}

impl Default for MimeLimits {
    fn default() -> Self {
        MimeLimits::DEFAULT
    }
}

/// Which limit a message passed: why it is parsed flat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Exceeded {
    /// Nested deeper than [`MimeLimits::max_depth`].
    Depth,
    /// More parts than [`MimeLimits::max_parts`].
    Parts,
    /// More failed boundary searches than [`MimeLimits::max_failed_searches`].
    FailedSearches,
    /// A multipart boundary longer than [`MimeLimits::max_boundary_len`].
    BoundaryLength,
    /// A nesting `mail-parser` cannot rebuild consistently (see the module documentation).
    Inconsistent,
}

impl std::fmt::Display for Exceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Exceeded::Depth => "nested too deep",
            Exceeded::Parts => "too many parts",
            Exceeded::FailedSearches => "too many boundaries that never occur",
            Exceeded::BoundaryLength => "boundary too long",
            Exceeded::Inconsistent => "attached message directly inside an attached message",
        })
    }
}

/// What the measurement of a message found: for logs, for the access point's refusal, and
/// to decide between the full and the flat parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measure {
    /// Deepest part seen (1 for a single-part message, 0 when there are no headers at all).
    pub depth: usize,
    /// Parts seen, those of attached messages included.
    pub parts: usize,
    /// Boundary searches that reached the end without finding their boundary.
    pub failed_searches: usize,
    /// The limit passed, if any; the measurement stopped there, so the figures above are
    /// then lower bounds.
    pub exceeded: Option<Exceeded>,
}

impl Measure {
    /// Whether the message stays within the limits it was measured against.
    pub fn within_limits(&self) -> bool {
        self.exceeded.is_none()
    }
}

/// A message parsed within limits, or flat.
#[derive(Debug)]
pub struct Parsed<'x> {
    message: Option<Message<'x>>,
    measure: Measure,
}

impl<'x> Parsed<'x> {
    /// The parsed message; `None` when the bytes hold no header at all. When
    /// [`is_flat`](Self::is_flat), it has one part whose body is everything after the
    /// header block and whose `Content-Type` is left as raw text.
    pub fn message(&self) -> Option<&Message<'x>> {
        self.message.as_ref()
    }

    /// Whether the message was beyond the limits and parsed flat.
    pub fn is_flat(&self) -> bool {
        !self.measure.within_limits()
    }

    /// The measurement that chose the parse.
    pub fn measure(&self) -> &Measure {
        &self.measure
    }
}

/// Parses `raw` within [`MimeLimits::DEFAULT`].
pub fn parse(raw: &[u8]) -> Parsed<'_> {
    parse_within(raw, &MimeLimits::DEFAULT)
}

/// Parses `raw` in full if it stays within `limits`, flat otherwise.
pub fn parse_within<'x>(raw: &'x [u8], limits: &MimeLimits) -> Parsed<'x> {
    let measure = measure(raw, limits);
    let message = if measure.within_limits() {
        MessageParser::default().parse(raw)
    } else {
        FLAT.parse(raw)
    };
    debug_assert!(
        !measure.within_limits()
            || message.as_ref().is_none_or(|m| {
                let built = tree_size(m);
                built.depth <= measure.depth && built.parts <= measure.parts
            }),
        "the measurement under-counted what mail-parser built"
    );
    Parsed { message, measure }
}

/// Parses the top-level header block of `raw` only. Nothing nests there, so no measurement
/// is needed; it is here so that every `mail-parser` entry point of the crate is in one
/// place.
pub fn parse_headers(raw: &[u8]) -> Option<Message<'_>> {
    MessageParser::default().parse_headers(raw)
}

/// Measures the structure `mail-parser` would build from `raw`, stopping at the first limit
/// of `limits` passed.
pub fn measure(raw: &[u8], limits: &MimeLimits) -> Measure {
    let mut walker = Walker {
        limits,
        measure: Measure {
            depth: 0,
            parts: 0,
            failed_searches: 0,
            exceeded: None,
        },
        parser: MessageParser::default(),
    };
    if let Err(exceeded) = walker.layer(raw, 0, ENCODED_LAYERS) {
        walker.measure.exceeded = Some(exceeded);
    }
    walker.measure
}

/// The size of a parsed tree, counted as [`Measure`] counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeSize {
    /// How deep a walk from the top-level part goes, following multipart children and
    /// attached messages (the top-level part is at depth 1); `usize::MAX` when such a walk
    /// would reach a part twice, so a recursive walker would never end.
    pub depth: usize,
    /// Every part of the message and of the messages attached in it.
    pub parts: usize,
}

/// Counts what a parse built, without recursion: the check that [`measure`] never
/// under-counts, for debug builds, tests and the fuzz targets.
pub fn tree_size(message: &Message<'_>) -> TreeSize {
    let mut parts = 0;
    let mut messages = vec![message];
    while let Some(m) = messages.pop() {
        parts += m.parts.len();
        messages.extend(m.parts.iter().filter_map(|p| match &p.body {
            PartType::Message(inner) => Some(inner),
            _ => None,
        }));
    }
    let mut depth = 0;
    let mut visits = 0;
    let mut todo = vec![(message, 0usize, 1usize)];
    while let Some((m, id, at)) = todo.pop() {
        let Some(part) = m.parts.get(id) else {
            continue;
        };
        visits += 1;
        if visits > parts {
            return TreeSize {
                depth: usize::MAX,
                parts,
            };
        }
        depth = depth.max(at);
        match &part.body {
            PartType::Multipart(children) => {
                todo.extend(children.iter().map(|&c| (m, c as usize, at + 1)));
            }
            PartType::Message(inner) => todo.push((inner, 0, at + 1)),
            _ => {}
        }
    }
    TreeSize { depth, parts }
}

/// The parser of the flat mode: `mail-parser`'s default treatment of every header it knows,
/// except `Content-Type`, kept as raw text so the top-level part is a leaf.
///
/// Setting any header parser switches `mail-parser` from its built-in table to this map
/// (with raw text for the headers not in it), so the table is restated here in full.
static FLAT: LazyLock<MessageParser> = LazyLock::new(|| {
    let texts = [
        HeaderName::Subject,
        HeaderName::Comments,
        HeaderName::ContentDescription,
        HeaderName::ContentLocation,
        HeaderName::ContentTransferEncoding,
    ];
    let addresses = [
        HeaderName::From,
        HeaderName::To,
        HeaderName::Cc,
        HeaderName::Bcc,
        HeaderName::ReplyTo,
        HeaderName::Sender,
        HeaderName::ResentTo,
        HeaderName::ResentFrom,
        HeaderName::ResentBcc,
        HeaderName::ResentCc,
        HeaderName::ResentSender,
        HeaderName::ListArchive,
        HeaderName::ListHelp,
        HeaderName::ListId,
        HeaderName::ListOwner,
        HeaderName::ListPost,
        HeaderName::ListSubscribe,
        HeaderName::ListUnsubscribe,
    ];
    let ids = [
        HeaderName::MessageId,
        HeaderName::References,
        HeaderName::InReplyTo,
        HeaderName::ReturnPath,
        HeaderName::ContentId,
        HeaderName::ResentMessageId,
    ];
    let mut parser = MessageParser::new()
        .header_date(HeaderName::Date)
        .header_date(HeaderName::ResentDate)
        .header_comma_separated(HeaderName::Keywords)
        .header_comma_separated(HeaderName::ContentLanguage)
        .header_received(HeaderName::Received)
        .header_content_type(HeaderName::ContentDisposition)
        .header_raw(HeaderName::MimeVersion)
        .header_raw(HeaderName::ContentType);
    for name in texts {
        parser = parser.header_text(name);
    }
    for name in addresses {
        parser = parser.header_address(name);
    }
    for name in ids {
        parser = parser.header_id(name);
    }
    parser
});

/// What an open container is, as far as its children are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// A message (the top-level one or an attached one).
    Message,
    /// A `multipart/digest`: children without a `Content-Type` are attached messages.
    Digest,
    /// Any other multipart.
    Multipart,
}

/// A container being read, with the boundary that ends its current child (for an attached
/// message: the boundary it took over from the multipart around it, as `mail-parser` does).
struct Open {
    role: Role,
    boundary: Option<Vec<u8>>,
}

/// How `mail-parser` treats a part, from its `Content-Type` and its container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// `multipart/*`; `digest` for `multipart/digest`.
    Multipart { digest: bool },
    /// `message/rfc822` or `message/global`, or a digest child without a `Content-Type`.
    Message,
    /// Everything else.
    Leaf,
}

fn shape(content_type: Option<&ContentType<'_>>, container: Role) -> Shape {
    match content_type {
        Some(ct) => match ct.ctype() {
            "multipart" => Shape::Multipart {
                digest: ct.subtype() == Some("digest"),
            },
            "message" if matches!(ct.subtype(), Some("rfc822" | "global")) => Shape::Message,
            _ => Shape::Leaf,
        },
        None if container == Role::Digest => Shape::Message,
        None => Shape::Leaf,
    }
}

/// The transfer encodings `mail-parser` decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Base64,
    QuotedPrintable,
    Identity,
}

fn encoding(content_transfer_encoding: Option<&HeaderValue<'_>>) -> Encoding {
    match content_transfer_encoding {
        Some(HeaderValue::Text(e)) if e.eq_ignore_ascii_case("base64") => Encoding::Base64,
        Some(HeaderValue::Text(e)) if e.eq_ignore_ascii_case("quoted-printable") => {
            Encoding::QuotedPrintable
        }
        _ => Encoding::Identity,
    }
}

/// The measuring twin of `mail-parser`'s parse loop: same reads, same decisions, no tree.
struct Walker<'l> {
    limits: &'l MimeLimits,
    measure: Measure,
    parser: MessageParser,
}

impl Walker<'_> {
    fn part_at(&mut self, depth: usize) -> Result<(), Exceeded> {
        self.measure.parts += 1;
        self.measure.depth = self.measure.depth.max(depth);
        if self.measure.depth > self.limits.max_depth {
            Err(Exceeded::Depth)
        } else if self.measure.parts > self.limits.max_parts {
            Err(Exceeded::Parts)
        } else {
            Ok(())
        }
    }

    fn failed_search(&mut self) -> Result<(), Exceeded> {
        self.measure.failed_searches += 1;
        if self.measure.failed_searches > self.limits.max_failed_searches {
            Err(Exceeded::FailedSearches)
        } else {
            Ok(())
        }
    }

    /// Measures one message held in `data` whose top-level part is at depth `base + 1`;
    /// `encoded_layers` is how many more times a transfer-encoded attached message gets
    /// parsed again. Recursion is only into those layers, so never more than
    /// [`ENCODED_LAYERS`] deep whatever the input.
    fn layer(&mut self, data: &[u8], base: usize, encoded_layers: usize) -> Result<(), Exceeded> {
        let mut stream = MessageStream::new(data);
        // The container being read, and those around it (outermost first).
        let mut current = Open {
            role: Role::Message,
            boundary: None,
        };
        let mut around: Vec<Open> = Vec::new();
        let mut headers: Vec<Header<'_>> = Vec::new();
        let mut parts_here = 0usize;
        'parts: loop {
            headers.clear();
            if !stream.parse_headers(&self.parser, &mut headers) {
                break;
            }
            let depth = base + around.len() + 1;
            self.part_at(depth)?;
            parts_here += 1;
            let content_type = headers
                .header_value(&HeaderName::ContentType)
                .and_then(HeaderValue::as_content_type);
            let mut shape = shape(content_type, current.role);

            if let Shape::Multipart { digest } = shape
                && let Some(boundary) = content_type.and_then(|ct| ct.attribute("boundary"))
            {
                if boundary.len() > self.limits.max_boundary_len {
                    return Err(Exceeded::BoundaryLength);
                }
                if stream.seek_next_part(boundary.as_bytes()) {
                    let role = if digest {
                        Role::Digest
                    } else {
                        Role::Multipart
                    };
                    let multipart = Open {
                        role,
                        boundary: Some(boundary.as_bytes().to_vec()),
                    };
                    around.push(std::mem::replace(&mut current, multipart));
                    stream.skip_crlf();
                    continue;
                }
                if !boundary.is_empty() {
                    self.failed_search()?;
                }
                shape = Shape::Leaf;
            }

            let encoding = encoding(headers.header_value(&HeaderName::ContentTransferEncoding));
            if shape == Shape::Message && encoding == Encoding::Identity {
                // The attached message takes over the boundary of its container.
                let message = Open {
                    role: Role::Message,
                    boundary: current.boundary.take(),
                };
                around.push(std::mem::replace(&mut current, message));
                continue;
            }

            let boundary = current.boundary.as_deref().unwrap_or_default();
            let (end, body) = match encoding {
                Encoding::Base64 => stream.decode_base64_mime(boundary),
                Encoding::QuotedPrintable => stream.decode_quoted_printable_mime(boundary),
                Encoding::Identity => stream.mime_part(boundary),
            };
            if end == usize::MAX {
                // Undecodable, or the boundary never comes: mail-parser keeps the raw bytes
                // up to the boundary as text, or up to the end if there is none.
                let (_, found) = stream.seek_part_end(current.boundary.as_deref());
                if !found {
                    self.failed_search()?;
                    current.boundary = None;
                }
            } else if shape == Shape::Message && encoded_layers > 0 {
                self.layer(&body, depth, encoded_layers - 1)?;
            }

            if current.boundary.is_none() {
                if stream.offset() >= stream.len() {
                    break;
                }
                continue;
            }

            // The part ended at its container's boundary: close what ends there.
            loop {
                if current.role == Role::Message {
                    // An attached message ends with the boundary it took over, which goes
                    // back to its container.
                    let Some(mut parent) = around.pop() else {
                        return Err(Exceeded::Inconsistent);
                    };
                    parent.boundary = current.boundary.take();
                    current = parent;
                }
                if !stream.is_multipart_end() {
                    continue 'parts;
                }
                // A closing boundary: mail-parser closes the current container as a
                // multipart, which an attached message is not.
                if current.role == Role::Message {
                    return Err(Exceeded::Inconsistent);
                }
                let Some(parent) = around.pop() else {
                    break 'parts;
                };
                current = parent;
                let Some(boundary) = current.boundary.as_deref() else {
                    break 'parts;
                };
                if stream.seek_next_part_offset(boundary).is_none() {
                    self.failed_search()?;
                    break 'parts;
                }
            }
        }
        if parts_here == 0 && !headers.is_empty() {
            // A header block without its blank line still makes a one-part message.
            self.part_at(base + 1)?;
        }
        Ok(())
    }
}
