//! What FETCH needs from a message's bytes: BODYSTRUCTURE, ENVELOPE and the
//! bytes of a body section, including parts inside an attached
//! `message/rfc822` (the `postacert.eml` every PEC envelope carries).
//!
//! The MIME tree comes from `mail-parser`; every section returned here is a
//! slice of the stored bytes, never a re-serialization.

use std::num::NonZeroU32;

use imap_codec::imap_types::body::{
    BasicFields, Body, BodyStructure, Disposition, MultiPartExtensionData, SinglePartExtensionData,
    SpecificFields,
};
use imap_codec::imap_types::core::{AString, IString, Literal, NString, Quoted, Vec1};
use imap_codec::imap_types::envelope::{Address as ImapAddress, Envelope};
use imap_codec::imap_types::fetch::Section;
use mail_parser::{Address, ContentType, HeaderName, HeaderValue, Message, MessagePart, PartType};
use pec_proto::bounded::{self, Parsed};

/// Parses a stored message within the MIME limits of `pec_proto::bounded`: a message
/// nested deeper or with more parts than they allow comes back flat (one part), and
/// is shown as one opaque part, as Dovecot does. `message()` is `None` when there is
/// nothing to parse (empty input): callers then treat the bytes as plain text.
pub(crate) fn parse(raw: &[u8]) -> Parsed<'_> {
    bounded::parse(raw)
}

/// A message inside the tree: its parsed form and where its bytes end in
/// its buffer (a nested message that was not transfer-encoded shares the
/// buffer of its parent, so its end is its part's end, not the buffer's).
#[derive(Clone, Copy)]
struct Ctx<'m, 'x> {
    msg: &'m Message<'x>,
    end: usize,
}

impl<'m, 'x> Ctx<'m, 'x> {
    fn top(msg: &'m Message<'x>) -> Self {
        Ctx {
            msg,
            end: msg.raw_message.len(),
        }
    }

    fn raw(&self) -> &'m [u8] {
        self.msg.raw_message.as_ref()
    }

    /// The bytes in `start..end`, clamped to this message.
    fn slice(&self, start: u32, end: u32) -> &'m [u8] {
        let raw = self.raw();
        let end = (end as usize).min(self.end).min(raw.len());
        let start = (start as usize).min(end);
        &raw[start..end]
    }

    fn part(&self, id: usize) -> Option<&'m MessagePart<'x>> {
        self.msg.parts.get(id)
    }

    /// Header block of the message, blank line included.
    fn header(&self) -> &'m [u8] {
        self.part(0)
            .map(|p| self.slice(p.offset_header, p.offset_body))
            .unwrap_or_default()
    }

    /// Body of the message (everything after the header block).
    fn text(&self) -> &'m [u8] {
        self.part(0)
            .map(|p| self.slice(p.offset_body, u32::MAX))
            .unwrap_or_default()
    }

    /// The message attached in part `id`, if that part is `message/rfc822`.
    fn nested(&self, id: usize) -> Option<Ctx<'m, 'x>> {
        let part = self.part(id)?;
        let PartType::Message(inner) = &part.body else {
            return None;
        };
        let same_buffer = inner.raw_message.as_ptr() == self.raw().as_ptr();
        let end = if same_buffer {
            (part.offset_end as usize).min(self.end)
        } else {
            inner.raw_message.len()
        };
        Some(Ctx { msg: inner, end })
    }

    /// Part number `n` (1-based) of this message's body.
    fn child(&self, n: NonZeroU32) -> Option<(Ctx<'m, 'x>, usize)> {
        let root = self.part(0)?;
        match &root.body {
            PartType::Multipart(children) => {
                let id = *children.get(n.get() as usize - 1)?;
                Some((*self, id as usize))
            }
            _ if n.get() == 1 => Some((*self, 0)),
            _ => None,
        }
    }
}

/// The part a section path (`2.1.3`) designates.
fn resolve<'m, 'x>(top: Ctx<'m, 'x>, path: &[NonZeroU32]) -> Option<(Ctx<'m, 'x>, usize)> {
    let (first, rest) = path.split_first()?;
    let mut cur = top.child(*first)?;
    for n in rest {
        let (ctx, id) = cur;
        let part = ctx.part(id)?;
        cur = match &part.body {
            PartType::Message(_) => ctx.nested(id)?.child(*n)?,
            PartType::Multipart(children) => (ctx, *children.get(n.get() as usize - 1)? as usize),
            _ => return None,
        };
    }
    Some(cur)
}

/// The message a section path designates for HEADER/TEXT: the top one, or
/// the one attached in a `message/rfc822` part.
fn message_at<'m, 'x>(top: Ctx<'m, 'x>, path: Option<&[NonZeroU32]>) -> Option<Ctx<'m, 'x>> {
    match path {
        None => Some(top),
        Some(path) => {
            let (ctx, id) = resolve(top, path)?;
            ctx.nested(id)
        }
    }
}

/// The bytes of a FETCH body section; `None` when the section does not exist.
pub(crate) fn section(
    raw: &[u8],
    msg: Option<&Message<'_>>,
    section: Option<&Section<'_>>,
) -> Option<Vec<u8>> {
    let Some(section) = section else {
        return Some(raw.to_vec());
    };
    let Some(msg) = msg else {
        // Unparsable bytes: everything is the body of part 1.
        return match section {
            Section::Part(p) if p.0.as_ref().len() == 1 && p.0.as_ref()[0].get() == 1 => {
                Some(raw.to_vec())
            }
            Section::Text(None) => Some(raw.to_vec()),
            _ => Some(Vec::new()),
        };
    };
    let top = Ctx::top(msg);
    let path = |p: &Option<imap_codec::imap_types::fetch::Part>| -> Option<Vec<NonZeroU32>> {
        p.as_ref().map(|p| p.0.as_ref().to_vec())
    };
    match section {
        Section::Part(p) => {
            let (ctx, id) = resolve(top, p.0.as_ref())?;
            let part = ctx.part(id)?;
            Some(ctx.slice(part.offset_body, part.offset_end).to_vec())
        }
        Section::Mime(p) => {
            let (ctx, id) = resolve(top, p.0.as_ref())?;
            let part = ctx.part(id)?;
            Some(ctx.slice(part.offset_header, part.offset_body).to_vec())
        }
        Section::Header(p) => Some(message_at(top, path(p).as_deref())?.header().to_vec()),
        Section::Text(p) => Some(message_at(top, path(p).as_deref())?.text().to_vec()),
        Section::HeaderFields(p, names) => {
            let header = message_at(top, path(p).as_deref())?.header();
            Some(header_fields(header, names.as_ref(), true))
        }
        Section::HeaderFieldsNot(p, names) => {
            let header = message_at(top, path(p).as_deref())?.header();
            Some(header_fields(header, names.as_ref(), false))
        }
    }
}

/// The body of the part a BINARY section path designates (the whole message for an
/// empty path) and the value of its Content-Transfer-Encoding field, if any; `None`
/// when the part does not exist. Multipart bodies and attached messages have no
/// encoding of their own to undo.
pub(crate) fn binary_part(
    raw: &[u8],
    msg: Option<&Message<'_>>,
    path: &[NonZeroU32],
) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
    if path.is_empty() {
        return Some((raw.to_vec(), None));
    }
    let Some(msg) = msg else {
        return (path.len() == 1 && path[0].get() == 1).then(|| (raw.to_vec(), None));
    };
    let (ctx, id) = resolve(Ctx::top(msg), path)?;
    let part = ctx.part(id)?;
    let body = ctx.slice(part.offset_body, part.offset_end).to_vec();
    let encoding = match part.body {
        PartType::Multipart(_) => None,
        _ => raw_header(ctx, part, HeaderName::ContentTransferEncoding),
    };
    Some((body, encoding))
}

/// The fields of a header block whose names are (or, with `keep = false`,
/// are not) in `names`, followed by the blank line, as HEADER.FIELDS wants.
fn header_fields<N: AsRef<[u8]>>(header: &[u8], names: &[N], keep: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for field in split_fields(header) {
        let name = field.split(|&b| b == b':').next().unwrap_or_default();
        let name = name.trim_ascii();
        let listed = names.iter().any(|n| n.as_ref().eq_ignore_ascii_case(name));
        if listed == keep {
            out.extend_from_slice(field);
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Splits a header block into fields (each with its continuation lines and
/// line ends), stopping at the blank line.
fn split_fields(header: &[u8]) -> Vec<&[u8]> {
    let mut fields = Vec::new();
    let mut start = 0;
    let mut pos = 0;
    while pos < header.len() {
        let line_end = header[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(header.len(), |i| pos + i + 1);
        let line = &header[pos..line_end];
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        if !continuation && pos > start {
            fields.push(&header[start..pos]);
            start = pos;
        }
        pos = line_end;
    }
    if pos > start {
        fields.push(&header[start..pos]);
    }
    fields
}

/// An IMAP string for any text: a literal when it cannot be quoted; NUL
/// bytes, which no IMAP string may carry, become spaces.
pub(crate) fn istring(bytes: impl Into<Vec<u8>>) -> IString<'static> {
    let mut bytes: Vec<u8> = bytes.into();
    if bytes.contains(&0) {
        for b in &mut bytes {
            if *b == 0 {
                *b = b' ';
            }
        }
    }
    IString::try_from(bytes).unwrap_or(IString::Quoted(Quoted::unvalidated("")))
}

/// An IMAP astring (quoted when it cannot be an atom, `""` included).
pub(crate) fn astring(text: &str) -> AString<'static> {
    AString::try_from(text.to_string())
        .unwrap_or(AString::String(IString::Quoted(Quoted::unvalidated(""))))
}

/// Message data for FETCH, always as a literal (what clients expect for
/// body sections, whatever their length); NUL bytes become spaces.
pub(crate) fn literal(bytes: impl Into<Vec<u8>>) -> NString<'static> {
    let mut bytes: Vec<u8> = bytes.into();
    bytes
        .iter_mut()
        .filter(|b| **b == 0)
        .for_each(|b| *b = b' ');
    match Literal::try_from(bytes) {
        Ok(l) => NString(Some(IString::Literal(l))),
        Err(_) => NString(Some(IString::Quoted(Quoted::unvalidated("")))),
    }
}

/// An IMAP nstring: `NIL` for `None`.
pub(crate) fn nstring(value: Option<impl Into<Vec<u8>>>) -> NString<'static> {
    NString(value.map(istring))
}

/// A header field's value as it appears (unfolded, trimmed), as ENVELOPE wants.
fn raw_header(ctx: Ctx<'_, '_>, part: &MessagePart<'_>, name: HeaderName<'_>) -> Option<Vec<u8>> {
    let h = part.headers.iter().find(|h| h.name == name)?;
    let value = ctx.slice(h.offset_start, h.offset_end);
    let unfolded: Vec<u8> = value
        .iter()
        .copied()
        .filter(|&b| b != b'\r' && b != b'\n')
        .collect();
    Some(unfolded.trim_ascii().to_vec())
}

/// The raw value (unfolded, trimmed) of the first `name` field of the top message,
/// for what SORT and THREAD read from the header.
pub(crate) fn first_header(msg: Option<&Message<'_>>, name: HeaderName<'_>) -> Option<Vec<u8>> {
    let ctx = Ctx::top(msg?);
    raw_header(ctx, ctx.part(0)?, name)
}

/// The text of an unstructured header value: RFC 2047 encoded words decoded (any
/// charset `mail-parser` knows), folding white space between words made one space.
/// SORT and THREAD compare subjects and display names in this form.
pub(crate) fn decode_words(raw: &[u8]) -> String {
    // The field parser reads up to the end of the field's line.
    let mut line = Vec::with_capacity(raw.len() + 1);
    line.extend_from_slice(raw);
    line.push(b'\n');
    match mail_parser::parsers::MessageStream::new(&line).parse_unstructured() {
        HeaderValue::Text(text) => text.into_owned(),
        _ => String::new(),
    }
}

/// The ENVELOPE addresses of a header field (empty when the field is absent or empty).
fn addresses(
    ctx: Ctx<'_, '_>,
    part: &MessagePart<'_>,
    name: HeaderName<'_>,
) -> Vec<ImapAddress<'static>> {
    let Some(value) = raw_header(ctx, part, name) else {
        return Vec::new();
    };
    crate::address::parse(&value)
        .into_iter()
        .map(|a| ImapAddress {
            name: nstring(a.name),
            adl: nstring(a.adl),
            mailbox: nstring(a.mailbox),
            host: nstring(a.host),
        })
        .collect()
}

fn envelope_of(ctx: Ctx<'_, '_>) -> Envelope<'static> {
    let Some(root) = ctx.part(0) else {
        return empty_envelope();
    };
    let from = addresses(ctx, root, HeaderName::From);
    let mut sender = addresses(ctx, root, HeaderName::Sender);
    if sender.is_empty() {
        sender = from.clone();
    }
    let mut reply_to = addresses(ctx, root, HeaderName::ReplyTo);
    if reply_to.is_empty() {
        reply_to = from.clone();
    }
    Envelope {
        date: nstring(raw_header(ctx, root, HeaderName::Date)),
        subject: nstring(raw_header(ctx, root, HeaderName::Subject)),
        from,
        sender,
        reply_to,
        to: addresses(ctx, root, HeaderName::To),
        cc: addresses(ctx, root, HeaderName::Cc),
        bcc: addresses(ctx, root, HeaderName::Bcc),
        in_reply_to: nstring(raw_header(ctx, root, HeaderName::InReplyTo)),
        message_id: nstring(raw_header(ctx, root, HeaderName::MessageId)),
    }
}

fn empty_envelope() -> Envelope<'static> {
    Envelope {
        date: NString(None),
        subject: NString(None),
        from: Vec::new(),
        sender: Vec::new(),
        reply_to: Vec::new(),
        to: Vec::new(),
        cc: Vec::new(),
        bcc: Vec::new(),
        in_reply_to: NString(None),
        message_id: NString(None),
    }
}

/// The ENVELOPE of a message (`None` = unparsable bytes: all NIL).
pub(crate) fn envelope(msg: Option<&Message<'_>>) -> Envelope<'static> {
    match msg {
        Some(msg) => envelope_of(Ctx::top(msg)),
        None => empty_envelope(),
    }
}

fn params(ct: Option<&ContentType<'_>>) -> Vec<(IString<'static>, IString<'static>)> {
    ct.and_then(|ct| ct.attributes.as_ref())
        .map(|attrs| {
            attrs
                .iter()
                .map(|a| (istring(a.name.as_bytes()), istring(a.value.as_bytes())))
                .collect()
        })
        .unwrap_or_default()
}

fn lines(bytes: &[u8]) -> u32 {
    u32::try_from(bytes.iter().filter(|&&b| b == b'\n').count()).unwrap_or(u32::MAX)
}

fn structure(ctx: Ctx<'_, '_>, id: usize, depth: usize) -> BodyStructure<'static> {
    use mail_parser::MimeHeaders;
    let Some(part) = ctx.part(id) else {
        return plain_text(0, 0);
    };
    let ct = part.content_type();
    let subtype = |default: &str| {
        istring(
            ct.and_then(|c| c.c_subtype.as_deref())
                .unwrap_or(default)
                .to_ascii_uppercase(),
        )
    };
    if let PartType::Multipart(children) = &part.body
        && depth < MAX_DEPTH
    {
        let bodies: Vec<BodyStructure<'static>> = children
            .iter()
            .map(|&c| structure(ctx, c as usize, depth + 1))
            .collect();
        if let Ok(bodies) = Vec1::try_from(bodies) {
            return BodyStructure::Multi {
                bodies,
                subtype: subtype("MIXED"),
                extension_data: Some(MultiPartExtensionData {
                    parameter_list: params(ct),
                    tail: None,
                }),
            };
        }
        // A multipart without parts: show it as an opaque leaf.
    }
    let body_bytes = ctx.slice(part.offset_body, part.offset_end);
    let basic = BasicFields {
        parameter_list: params(ct),
        id: nstring(part.content_id().map(|s| format!("<{s}>"))),
        description: nstring(part.content_description()),
        content_transfer_encoding: istring(
            part.content_transfer_encoding()
                .unwrap_or("7BIT")
                .to_ascii_uppercase(),
        ),
        size: u32::try_from(body_bytes.len()).unwrap_or(u32::MAX),
    };
    let main_type = ct.map(|c| c.c_type.as_ref()).unwrap_or("text");
    let specific = match (&part.body, ctx.nested(id)) {
        (PartType::Message(_), Some(inner)) if depth < MAX_DEPTH => SpecificFields::Message {
            envelope: Box::new(envelope_of(inner)),
            body_structure: Box::new(structure(inner, 0, depth + 1)),
            number_of_lines: lines(body_bytes),
        },
        _ if main_type.eq_ignore_ascii_case("text") => SpecificFields::Text {
            subtype: subtype("PLAIN"),
            number_of_lines: lines(body_bytes),
        },
        // A multipart or message shown as a leaf (too deep, or without parts): opaque
        // bytes, since a leaf of those types would break the BODYSTRUCTURE grammar.
        _ if ["multipart", "message"]
            .iter()
            .any(|t| main_type.eq_ignore_ascii_case(t)) =>
        {
            SpecificFields::Basic {
                r#type: istring("APPLICATION"),
                subtype: istring("OCTET-STREAM"),
            }
        }
        _ => SpecificFields::Basic {
            r#type: istring(main_type.to_ascii_uppercase()),
            subtype: subtype("OCTET-STREAM"),
        },
    };
    let disposition = part
        .content_disposition()
        .map(|d| (istring(d.c_type.to_ascii_uppercase()), params(Some(d))));
    BodyStructure::Single {
        body: Body { basic, specific },
        extension_data: Some(SinglePartExtensionData {
            md5: NString(None),
            tail: Some(Disposition {
                disposition,
                tail: None,
            }),
        }),
    }
}

/// Multipart and message levels shown; deeper parts are shown as opaque leaves, as
/// Dovecot does (the structure is built recursively, so its depth must be bounded).
const MAX_DEPTH: usize = 100;

fn plain_text(size: u32, number_of_lines: u32) -> BodyStructure<'static> {
    BodyStructure::Single {
        body: Body {
            basic: BasicFields {
                parameter_list: vec![(istring("CHARSET"), istring("US-ASCII"))],
                id: NString(None),
                description: NString(None),
                content_transfer_encoding: istring("7BIT"),
                size,
            },
            specific: SpecificFields::Text {
                subtype: istring("PLAIN"),
                number_of_lines,
            },
        },
        extension_data: None,
    }
}

/// The BODYSTRUCTURE of a message (unparsable bytes: one text/plain part).
pub(crate) fn body_structure(raw: &[u8], parsed: Option<&Parsed<'_>>) -> BodyStructure<'static> {
    match parsed.and_then(|p| p.message().map(|m| (m, p.is_flat()))) {
        Some((msg, false)) => structure(Ctx::top(msg), 0, 0),
        Some((_, true)) => opaque(split_header(raw).1),
        None => plain_text(u32::try_from(raw.len()).unwrap_or(u32::MAX), lines(raw)),
    }
}

/// The non-extensible form FETCH BODY returns (RFC 3501 7.4.2): the structure without
/// extension data, at every level, nested messages included.
pub(crate) fn without_extensions(bs: BodyStructure<'static>) -> BodyStructure<'static> {
    match bs {
        BodyStructure::Single { body, .. } => {
            let specific = match body.specific {
                SpecificFields::Message {
                    envelope,
                    body_structure,
                    number_of_lines,
                } => SpecificFields::Message {
                    envelope,
                    body_structure: Box::new(without_extensions(*body_structure)),
                    number_of_lines,
                },
                other => other,
            };
            BodyStructure::Single {
                body: Body {
                    basic: body.basic,
                    specific,
                },
                extension_data: None,
            }
        }
        BodyStructure::Multi {
            bodies, subtype, ..
        } => {
            let bodies: Vec<BodyStructure<'static>> =
                bodies.into_iter().map(without_extensions).collect();
            match Vec1::try_from(bodies) {
                Ok(bodies) => BodyStructure::Multi {
                    bodies,
                    subtype,
                    extension_data: None,
                },
                // Not reachable: a Vec1 maps to a non-empty Vec.
                Err(_) => plain_text(0, 0),
            }
        }
    }
}

/// The body of a message too complex to show its structure: one opaque part.
fn opaque(body: &[u8]) -> BodyStructure<'static> {
    BodyStructure::Single {
        body: Body {
            basic: BasicFields {
                parameter_list: Vec::new(),
                id: NString(None),
                description: NString(None),
                content_transfer_encoding: istring("7BIT"),
                size: u32::try_from(body.len()).unwrap_or(u32::MAX),
            },
            specific: SpecificFields::Basic {
                r#type: istring("APPLICATION"),
                subtype: istring("OCTET-STREAM"),
            },
        },
        extension_data: None,
    }
}

/// Header and body of a message as POP3 TOP and SEARCH need them.
pub(crate) fn split_header(raw: &[u8]) -> (&[u8], &[u8]) {
    let mut pos = 0;
    while pos < raw.len() {
        let line_end = raw[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(raw.len(), |i| pos + i + 1);
        if &raw[pos..line_end] == b"\r\n" || &raw[pos..line_end] == b"\n" {
            return (&raw[..line_end], &raw[line_end..]);
        }
        pos = line_end;
    }
    (raw, &[])
}

/// Decoded text of the named header fields of the top message, for SEARCH.
pub(crate) fn header_text(msg: Option<&Message<'_>>, name: &str) -> String {
    let Some(msg) = msg else {
        return String::new();
    };
    let Some(root) = msg.parts.first() else {
        return String::new();
    };
    let mut out = String::new();
    for h in root
        .headers
        .iter()
        .filter(|h| h.name.as_str().eq_ignore_ascii_case(name))
    {
        match &h.value {
            HeaderValue::Text(t) => out.push_str(t),
            HeaderValue::TextList(l) => l.iter().for_each(|t| out.push_str(t)),
            HeaderValue::Address(Address::List(l)) => {
                for a in l {
                    out.push_str(a.name.as_deref().unwrap_or_default());
                    out.push_str(" <");
                    out.push_str(a.address.as_deref().unwrap_or_default());
                    out.push_str("> ");
                }
            }
            HeaderValue::Address(Address::Group(groups)) => {
                for a in groups.iter().flat_map(|g| g.addresses.iter()) {
                    out.push_str(a.name.as_deref().unwrap_or_default());
                    out.push_str(" <");
                    out.push_str(a.address.as_deref().unwrap_or_default());
                    out.push_str("> ");
                }
            }
            _ => {}
        }
        let raw = msg
            .raw_message
            .get(h.offset_start as usize..h.offset_end as usize)
            .unwrap_or_default();
        out.push(' ');
        out.push_str(&String::from_utf8_lossy(raw));
    }
    out
}

/// The date of the Date header in its own time zone, time and zone disregarded, as
/// SENTBEFORE/SENTON/SENTSINCE compare it (RFC 3501 6.4.4).
pub(crate) fn sent_date(msg: Option<&Message<'_>>) -> Option<chrono::NaiveDate> {
    let d = msg?.date()?;
    chrono::NaiveDate::from_ymd_opt(i32::from(d.year), u32::from(d.month), u32::from(d.day))
}

/// Whether the top message has a header field called `name` (SEARCH HEADER name "").
pub(crate) fn has_header(msg: Option<&Message<'_>>, name: &str) -> bool {
    msg.and_then(|m| m.parts.first()).is_some_and(|root| {
        root.headers
            .iter()
            .any(|h| h.name.as_str().eq_ignore_ascii_case(name))
    })
}

/// Lowercases for the simple case-insensitive substring SEARCH does.
pub(crate) fn contains_ci(haystack: &[u8], needle: &[u8]) -> bool {
    if needle.is_empty() {
        return true;
    }
    let needle: Vec<u8> = needle.to_ascii_lowercase();
    haystack
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(&needle))
}

#[cfg(test)]
mod tests {
    use super::*;
    use imap_codec::imap_types::fetch::Part;

    pub(crate) const PEC: &[u8] =
        b"From: \"Per conto di: mario@pec.it\" <posta-certificata@pec.it>\r\n\
To: anna@pec.it\r\n\
Subject: POSTA CERTIFICATA: prova\r\n\
Message-ID: <env1@pec.it>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\
\r\n\
--b1\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
Messaggio di posta certificata\r\n\
--b1\r\n\
Content-Type: message/rfc822; name=\"postacert.eml\"\r\n\
Content-Disposition: inline; filename=\"postacert.eml\"\r\n\
\r\n\
From: mario@pec.it\r\n\
To: anna@pec.it\r\n\
Subject: prova\r\n\
Content-Type: multipart/mixed; boundary=\"b2\"\r\n\
\r\n\
--b2\r\n\
Content-Type: text/plain\r\n\
\r\n\
Ciao Anna\r\n\
--b2\r\n\
Content-Type: application/pdf; name=\"a.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
JVBERi0=\r\n\
--b2--\r\n\
\r\n\
--b1--\r\n";

    fn sec(s: Section<'_>) -> Vec<u8> {
        let parsed = parse(PEC);
        section(PEC, parsed.message(), Some(&s)).unwrap()
    }

    fn part(p: &[u32]) -> Part {
        let v: Vec<NonZeroU32> = p.iter().map(|&n| NonZeroU32::new(n).unwrap()).collect();
        Part(Vec1::try_from(v).unwrap())
    }

    #[test]
    fn sections_of_nested_message() {
        assert_eq!(
            sec(Section::Part(part(&[1]))),
            b"Messaggio di posta certificata"
        );
        let inner = sec(Section::Part(part(&[2])));
        assert!(
            inner.starts_with(b"From: mario@pec.it\r\n"),
            "{}",
            String::from_utf8_lossy(&inner)
        );
        assert!(
            inner.ends_with(b"--b2--\r\n"),
            "{}",
            String::from_utf8_lossy(&inner)
        );
        assert_eq!(sec(Section::Part(part(&[2, 1]))), b"Ciao Anna");
        assert_eq!(sec(Section::Part(part(&[2, 2]))), b"JVBERi0=");
        let h = sec(Section::Header(Some(part(&[2]))));
        assert!(h.starts_with(b"From: mario@pec.it\r\n") && h.ends_with(b"\r\n\r\n"));
        let mime = sec(Section::Mime(part(&[2])));
        assert!(mime.starts_with(b"Content-Type: message/rfc822"));
        assert!(sec(Section::Header(None)).ends_with(b"multipart/mixed; boundary=\"b1\"\r\n\r\n"));
        let names = Vec1::try_from(vec![
            imap_codec::imap_types::core::AString::try_from("subject").unwrap(),
        ])
        .unwrap();
        assert_eq!(
            sec(Section::HeaderFields(None, names)),
            b"Subject: POSTA CERTIFICATA: prova\r\n\r\n"
        );
        assert!(section(PEC, parse(PEC).message(), Some(&Section::Part(part(&[3])))).is_none());
    }

    #[test]
    fn structure_shows_attached_message() {
        let parsed = parse(PEC);
        let bs = body_structure(PEC, Some(&parsed));
        let BodyStructure::Multi { bodies, .. } = bs else {
            panic!("not multipart")
        };
        let second = &bodies.as_ref()[1];
        let BodyStructure::Single { body, .. } = second else {
            panic!("not single")
        };
        let SpecificFields::Message {
            envelope,
            body_structure,
            ..
        } = &body.specific
        else {
            panic!("not message/rfc822")
        };
        assert_eq!(envelope.subject, nstring(Some("prova")));
        assert!(matches!(**body_structure, BodyStructure::Multi { .. }));
        let env = super::envelope(parsed.message());
        assert_eq!(env.subject, nstring(Some("POSTA CERTIFICATA: prova")));
        assert_eq!(env.from[0].host, nstring(Some("pec.it")));
    }

    #[test]
    fn header_fields_split() {
        let h = b"A: 1\r\nB: 2\r\n  cont\r\nC: 3\r\n\r\nbody";
        assert_eq!(
            split_fields(h),
            vec![&b"A: 1\r\n"[..], b"B: 2\r\n  cont\r\n", b"C: 3\r\n"]
        );
        assert_eq!(header_fields(h, &[b"b"], true), b"B: 2\r\n  cont\r\n\r\n");
        assert_eq!(header_fields(h, &[b"b"], false), b"A: 1\r\nC: 3\r\n\r\n");
        assert_eq!(split_header(h).1, b"body");
    }
}
