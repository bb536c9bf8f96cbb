//! APPEND as MULTIAPPEND (RFC 3502) and CATENATE (RFC 4469) extend it, parsed here
//! because imap-codec 2.0.0-alpha.10 decodes only the single-message form; and the
//! IMAP URLs (RFC 5092) a CATENATE part may name, in the forms that point into the
//! logged-in user's own mailboxes.
//!
//! ```abnf
//! append         = "APPEND" SP mailbox 1*append-message
//! append-message = [SP flag-list] [SP date-time] SP append-data
//! append-data    = literal / literal8 / "CATENATE" SP "(" cat-part *(SP cat-part) ")"
//! cat-part       = "URL" SP astring / "TEXT" SP (literal / literal8)
//! ```
//!
//! A client can make the server hold at most [`MAX_MESSAGES`] messages of at most
//! [`MAX_PARTS`] parts each, on top of the bytes the input bounds already limit; the
//! parser never recurses.

use std::num::NonZeroU32;

use imap_codec::CommandCodec;
use imap_codec::decode::Decoder;
use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::command::CommandBody;
use imap_codec::imap_types::fetch::{MacroOrMessageDataItemNames, MessageDataItemName, Section};
use imap_codec::imap_types::flag::Flag;

use crate::scan::Scanner;

/// Most messages one MULTIAPPEND may carry.
pub(crate) const MAX_MESSAGES: usize = 1000;

/// Most parts one CATENATE may join.
pub(crate) const MAX_PARTS: usize = 64;

/// Longest URL of a CATENATE part.
pub(crate) const MAX_URL: usize = 2048;

/// One part of a CATENATE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CatPart {
    /// Bytes sent with the command.
    Text(Vec<u8>),
    /// An IMAP URL, as sent (resolved with [`parse_url`]).
    Url(Vec<u8>),
}

/// What one message of an APPEND is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Content {
    /// The message itself.
    Literal(Vec<u8>),
    /// Parts to join (RFC 4469).
    Catenate(Vec<CatPart>),
}

/// One message of an APPEND.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AppendMessage {
    /// Its flags, in their canonical spelling (`\Seen`).
    pub flags: Vec<String>,
    /// Its INTERNALDATE (Unix seconds), when given.
    pub date: Option<i64>,
    /// Its bytes or how to make them.
    pub content: Content,
}

/// An APPEND of one message or more, all stored or none (RFC 3502 6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Append {
    /// The destination mailbox (`INBOX` in any case is `INBOX`).
    pub mailbox: String,
    /// The messages, in order.
    pub messages: Vec<AppendMessage>,
}

const SYNTAX: &str = "Syntax error in APPEND";

/// Parses a whole command message; `None` when it is not an APPEND, `Err` with the
/// text of the BAD when it is one but malformed or over a bound.
pub(crate) fn parse(message: &[u8]) -> Option<Result<Append, &'static str>> {
    let mut s = Scanner::new(message);
    s.word()?;
    if !(s.eat(b' ') && s.keyword(b"APPEND")) {
        return None;
    }
    Some(append(&mut s))
}

fn append(s: &mut Scanner<'_>) -> Result<Append, &'static str> {
    if !s.eat(b' ') {
        return Err(SYNTAX);
    }
    let name = s.string().ok_or(SYNTAX)?;
    let mut mailbox = String::from_utf8_lossy(&name).into_owned();
    if mailbox.eq_ignore_ascii_case("INBOX") {
        mailbox = "INBOX".into();
    }
    let mut messages = Vec::new();
    while s.eat(b' ') {
        if messages.len() == MAX_MESSAGES {
            return Err("Too many messages in one APPEND");
        }
        messages.push(one_message(s)?);
    }
    if messages.is_empty() || !s.at_end() {
        return Err(SYNTAX);
    }
    Ok(Append { mailbox, messages })
}

fn one_message(s: &mut Scanner<'_>) -> Result<AppendMessage, &'static str> {
    let mut flags = Vec::new();
    if s.peek() == Some(b'(') {
        flags = flag_list(s)?;
        if !s.eat(b' ') {
            return Err(SYNTAX);
        }
    }
    let mut date = None;
    if s.peek() == Some(b'"') {
        let text = s.string().ok_or(SYNTAX)?;
        date = Some(date_time(&text).ok_or("Invalid date-time")?);
        if !s.eat(b' ') {
            return Err(SYNTAX);
        }
    }
    let content = if s.keyword(b"CATENATE") {
        Content::Catenate(cat_parts(s)?)
    } else {
        Content::Literal(s.literal8().ok_or(SYNTAX)?)
    };
    Ok(AppendMessage {
        flags,
        date,
        content,
    })
}

/// `"(" [flag *(SP flag)] ")"`, each flag as the codec spells it.
fn flag_list(s: &mut Scanner<'_>) -> Result<Vec<String>, &'static str> {
    s.eat(b'(');
    let mut flags = Vec::new();
    if s.eat(b')') {
        return Ok(flags);
    }
    loop {
        let system = s.eat(b'\\');
        let atom = s.atom().ok_or(SYNTAX)?;
        let text = format!(
            "{}{}",
            if system { "\\" } else { "" },
            String::from_utf8_lossy(&atom)
        );
        if text.eq_ignore_ascii_case("\\Recent") {
            return Err("\\Recent cannot be set");
        }
        let flag = Flag::try_from(text.as_str()).map_err(|_| "Invalid flag")?;
        flags.push(flag.to_string());
        if s.eat(b')') {
            return Ok(flags);
        }
        if !s.eat(b' ') {
            return Err(SYNTAX);
        }
    }
}

/// An RFC 3501 date-time (`" 1-Jan-2024 10:00:00 +0100"`), in Unix seconds.
fn date_time(text: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(text).ok()?.trim_start();
    chrono::DateTime::parse_from_str(text, "%d-%b-%Y %H:%M:%S %z")
        .ok()
        .map(|d| d.timestamp())
}

/// `SP "(" cat-part *(SP cat-part) ")"`, after the keyword.
fn cat_parts(s: &mut Scanner<'_>) -> Result<Vec<CatPart>, &'static str> {
    if !(s.eat(b' ') && s.eat(b'(')) {
        return Err(SYNTAX);
    }
    let mut parts = Vec::new();
    loop {
        if parts.len() == MAX_PARTS {
            return Err("Too many CATENATE parts");
        }
        if s.keyword(b"URL") && s.eat(b' ') {
            let url = s.string().ok_or(SYNTAX)?;
            if url.len() > MAX_URL {
                return Err("URL too long");
            }
            parts.push(CatPart::Url(url));
        } else if s.keyword(b"TEXT") && s.eat(b' ') {
            parts.push(CatPart::Text(s.literal8().ok_or(SYNTAX)?));
        } else {
            return Err(SYNTAX);
        }
        if s.eat(b')') {
            return Ok(parts);
        }
        if !s.eat(b' ') {
            return Err(SYNTAX);
        }
    }
}

/// What an IMAP URL of a CATENATE part names: a message (or a section, or a range of
/// its bytes) in one of the logged-in user's mailboxes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MessageUrl {
    /// The user the URL names, for an absolute URL that has one.
    pub user: Option<String>,
    /// The mailbox.
    pub mailbox: String,
    /// The UIDVALIDITY the URL was made for, if it says.
    pub uidvalidity: Option<u32>,
    /// The message.
    pub uid: NonZeroU32,
    /// The section (BODY[] of the whole message when `None`).
    pub section: Option<Section<'static>>,
    /// `(offset, length)` of the bytes wanted.
    pub partial: Option<(u32, Option<u32>)>,
}

/// Parses an IMAP URL (RFC 5092) naming a message: `imap://[user@]host[:port]/` or `/`,
/// then `mailbox[;UIDVALIDITY=n]/;UID=n[/;SECTION=s][/;PARTIAL=o[.l]]`; `None` for
/// anything else (a search URL, an unknown parameter, a bad number).
pub(crate) fn parse_url(url: &[u8]) -> Option<MessageUrl> {
    let url = std::str::from_utf8(url).ok()?;
    let (user, path) = match url.get(..7) {
        Some(scheme) if scheme.eq_ignore_ascii_case("imap://") => {
            let rest = &url[7..];
            let slash = rest.find('/')?;
            let authority = &rest[..slash];
            let user = authority.rsplit_once('@').map(|(userinfo, _)| {
                let name = userinfo.split(';').next().unwrap_or_default();
                String::from_utf8_lossy(&percent_decode(name)).into_owned()
            });
            (user, &rest[slash..])
        }
        _ => (None, url),
    };
    let path = path.strip_prefix('/')?;
    let mut pieces = path.split("/;");
    let mailbox_part = pieces.next()?;
    let (mailbox_enc, uidvalidity) = match mailbox_part.split_once(';') {
        Some((m, param)) => {
            let (key, value) = param.split_once('=')?;
            if !key.eq_ignore_ascii_case("UIDVALIDITY") {
                return None;
            }
            (m, Some(number(value)?))
        }
        None => (mailbox_part, None),
    };
    let mut mailbox = String::from_utf8(percent_decode(mailbox_enc)).ok()?;
    if mailbox.is_empty() {
        return None;
    }
    if mailbox.eq_ignore_ascii_case("INBOX") {
        mailbox = "INBOX".into();
    }
    let (key, value) = pieces.next()?.split_once('=')?;
    if !key.eq_ignore_ascii_case("UID") {
        return None;
    }
    let uid = NonZeroU32::new(number(value)?)?;
    let mut section = None;
    let mut partial = None;
    for piece in pieces {
        let (key, value) = piece.split_once('=')?;
        if key.eq_ignore_ascii_case("SECTION") && section.is_none() && partial.is_none() {
            section = Some(parse_section(&percent_decode(value))?);
        } else if key.eq_ignore_ascii_case("PARTIAL") && partial.is_none() {
            partial = Some(match value.split_once('.') {
                Some((o, l)) => (number(o)?, Some(number(l)?)),
                None => (number(value)?, None),
            });
        } else {
            return None;
        }
    }
    Some(MessageUrl {
        user,
        mailbox,
        uidvalidity,
        uid,
        section,
        partial,
    })
}

fn number(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// `%XX` escapes undone (a `%` not followed by two hex digits stays).
fn percent_decode(text: &str) -> Vec<u8> {
    percent_encoding::percent_decode_str(text).collect()
}

/// A section spec (`1.2.MIME`, `HEADER.FIELDS (SUBJECT)`), read by the codec as the
/// section of a `BODY.PEEK[...]` it is given.
fn parse_section(spec: &[u8]) -> Option<Section<'static>> {
    if spec.iter().any(|&b| b < b' ' || b == b']' || b == 0x7f) {
        return None;
    }
    let mut command = b"s FETCH 1 BODY.PEEK[".to_vec();
    command.extend_from_slice(spec);
    command.extend_from_slice(b"]\r\n");
    let (_, decoded) = CommandCodec::default().decode(&command).ok()?;
    let CommandBody::Fetch {
        macro_or_item_names: MacroOrMessageDataItemNames::MessageDataItemNames(names),
        ..
    } = decoded.into_static().body
    else {
        return None;
    };
    match names.into_iter().next()? {
        MessageDataItemName::BodyExt { section, .. } => section,
        _ => None,
    }
}

/// Parses `message` as an APPEND and every URL its CATENATE parts name, and panics if
/// a bound is broken: what the fuzz target checks on hostile input.
pub(crate) fn check(message: &[u8]) {
    let Some(Ok(append)) = parse(message) else {
        return;
    };
    assert!(!append.messages.is_empty() && append.messages.len() <= MAX_MESSAGES);
    for m in &append.messages {
        let Content::Catenate(parts) = &m.content else {
            continue;
        };
        assert!(!parts.is_empty() && parts.len() <= MAX_PARTS);
        for part in parts {
            if let CatPart::Url(url) = part {
                assert!(url.len() <= MAX_URL);
                if let Some(u) = parse_url(url) {
                    assert!(u.uid.get() > 0 && !u.mailbox.is_empty());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiappend_with_flags_dates_and_literal8() {
        let cmd =
            b"a APPEND inbox (\\seen Kw) \" 5-Mar-2024 10:00:00 +0100\" {3}\r\nabc ~{2}\r\n\0x\r\n";
        let a = parse(cmd).unwrap().unwrap();
        assert_eq!(a.mailbox, "INBOX");
        assert_eq!(a.messages.len(), 2);
        assert_eq!(a.messages[0].flags, ["\\Seen", "Kw"]);
        assert_eq!(a.messages[0].date, Some(1_709_629_200));
        assert_eq!(a.messages[0].content, Content::Literal(b"abc".to_vec()));
        assert_eq!(a.messages[1].content, Content::Literal(b"\0x".to_vec()));
        assert!(parse(b"a NOOP\r\n").is_none());
    }

    #[test]
    fn catenate_parts() {
        let cmd = b"a APPEND Box CATENATE (URL \"/Box/;UID=3\" TEXT {2}\r\nhi) {1}\r\nx\r\n";
        let a = parse(cmd).unwrap().unwrap();
        assert_eq!(
            a.messages[0].content,
            Content::Catenate(vec![
                CatPart::Url(b"/Box/;UID=3".to_vec()),
                CatPart::Text(b"hi".to_vec())
            ])
        );
        assert_eq!(a.messages[1].content, Content::Literal(b"x".to_vec()));
    }

    #[test]
    fn malformed_and_over_bound_appends_are_refused() {
        for bad in [
            &b"a APPEND Box\r\n"[..],
            b"a APPEND Box (\\Seen {1}\r\nx\r\n",
            b"a APPEND Box \"junk\" {1}\r\nx\r\n",
            b"a APPEND Box CATENATE ()\r\n",
            b"a APPEND Box CATENATE (TEXT \"q\")\r\n",
            b"a APPEND Box {5}\r\nab\r\n",
            b"a APPEND Box (\\Recent) {1}\r\nx\r\n",
        ] {
            assert!(
                parse(bad).unwrap().is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let many = format!(
            "a APPEND Box CATENATE ({})\r\n",
            vec!["TEXT {1}\r\nx"; MAX_PARTS + 1].join(" ")
        );
        assert_eq!(
            parse(many.as_bytes()).unwrap(),
            Err("Too many CATENATE parts")
        );
        let many = format!("a APPEND Box{}\r\n", " {1}\r\nx".repeat(MAX_MESSAGES + 1));
        assert_eq!(
            parse(many.as_bytes()).unwrap(),
            Err("Too many messages in one APPEND")
        );
    }

    #[test]
    fn urls_relative_and_absolute() {
        let u = parse_url(b"/INBOX;UIDVALIDITY=7/;UID=3/;SECTION=1.MIME").unwrap();
        assert_eq!(
            (u.mailbox.as_str(), u.uidvalidity, u.uid.get()),
            ("INBOX", Some(7), 3)
        );
        assert!(u.section.is_some() && u.partial.is_none() && u.user.is_none());
        let u = parse_url(b"imap://bob;AUTH=*@host:143/a%20b/;UID=9/;PARTIAL=10.5").unwrap();
        assert_eq!(u.user.as_deref(), Some("bob"));
        assert_eq!(u.mailbox, "a b");
        assert_eq!(u.partial, Some((10, Some(5))));
        let u = parse_url(b"/Box/;uid=2/;section=header.fields%20(subject)").unwrap();
        assert!(matches!(u.section, Some(Section::HeaderFields(None, _))));
        for bad in [
            &b"/Box/;UID=0"[..],
            b"/Box;FOO=1/;UID=1",
            b"Box/;UID=1",
            b"/Box?SUBJECT%20x",
            b"/Box/;UID=1/;SECTION=]",
            b"/Box/;UID=1/;PARTIAL=x",
            b"/Box/;UID=1/;OTHER=1",
            b"imap://host",
        ] {
            assert!(parse_url(bad).is_none(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
