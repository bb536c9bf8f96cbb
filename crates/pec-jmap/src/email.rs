//! Stored messages as JMAP Emails (RFC 8621 §4): where each is ([`Index`]), its
//! properties parsed from the bytes as delivered (within pec-proto's MIME limits), and
//! Email/get.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use mail_parser::{Address, HeaderValue, Message, MessagePart, MimeHeaders};
use pec_store::MessageMeta;
use serde_json::{Map, Value, json};

use crate::api::Ctx;
use crate::args;
use crate::error::{Error, Result};
use crate::ids::{BlobId, EmailId, Place};
use crate::mailbox::{self, View};
use crate::protocol::Arguments;
use crate::{keywords, pec, state};

/// The properties Email/get returns when the client names none (RFC 8621 §4.2), and
/// `pec` when the request uses the PEC capability.
const DEFAULT_PROPERTIES: [&str; 24] = [
    "id",
    "blobId",
    "threadId",
    "mailboxIds",
    "keywords",
    "size",
    "receivedAt",
    "messageId",
    "inReplyTo",
    "references",
    "sender",
    "from",
    "to",
    "cc",
    "bcc",
    "replyTo",
    "subject",
    "sentAt",
    "hasAttachment",
    "preview",
    "bodyValues",
    "textBody",
    "htmlBody",
    "attachments",
];

/// The body part properties returned when the client names none.
const DEFAULT_BODY_PROPERTIES: [&str; 10] = [
    "partId",
    "blobId",
    "size",
    "name",
    "type",
    "charset",
    "disposition",
    "cid",
    "language",
    "location",
];

/// Length of `preview` in characters (RFC 8621: at most 256).
const PREVIEW: usize = 256;

/// The account's mailboxes and, loaded when first asked, their messages' metadata.
pub struct Index<'c> {
    ctx: &'c Ctx<'c>,
    /// The mailboxes now.
    pub views: Vec<View>,
    metas: HashMap<Place, Vec<MessageMeta>>,
}

impl<'c> Index<'c> {
    /// The mailboxes of the account now; no message read yet.
    pub fn new(ctx: &'c Ctx<'c>) -> Result<Self> {
        Ok(Index {
            ctx,
            views: mailbox::snapshot(ctx.store, ctx.address)?,
            metas: HashMap::new(),
        })
    }

    /// The mailbox at `place`, if it exists.
    pub fn view(&self, place: Place) -> Option<&View> {
        self.views.iter().find(|v| v.place == place)
    }

    /// The messages of `place` (empty if no such mailbox), by UID.
    pub fn metas(&mut self, place: Place) -> Result<&[MessageMeta]> {
        if !self.metas.contains_key(&place) {
            let list = match self.view(place) {
                Some(v) => mailbox::messages(self.ctx.store, self.ctx.address, v)?,
                None => Vec::new(),
            };
            self.metas.insert(place, list);
        }
        Ok(self
            .metas
            .get(&place)
            .map(Vec::as_slice)
            .unwrap_or_default())
    }

    /// The metadata of one email, if it exists.
    pub fn meta(&mut self, id: EmailId) -> Result<Option<MessageMeta>> {
        let metas = self.metas(id.place)?;
        Ok(metas
            .binary_search_by_key(&id.uid, |m| m.uid)
            .ok()
            .and_then(|i| metas.get(i))
            .cloned())
    }

    /// The bytes of one email, exactly as stored.
    pub fn bytes(&self, id: EmailId) -> Result<Vec<u8>> {
        let (store, address) = (self.ctx.store, self.ctx.address);
        match self.view(id.place).and_then(|v| v.folder.as_ref()) {
            Some(folder) => Ok(store.fetch(address, &folder.name, id.uid)?),
            None if id.place == Place::Archive => Ok(store.read_archive_of(address, id.uid)?),
            None => Err(Error::Store(pec_store::Error::NoSuchMessage(id.uid))),
        }
    }

    /// The UIDs of `folder` expunged after `modseq`.
    pub fn expunged_since(&self, folder: &str, modseq: u64) -> Result<Vec<u32>> {
        Ok(self
            .ctx
            .store
            .expunged_since(self.ctx.address, folder, modseq)?)
    }

    /// The Email state now.
    pub fn state(&self) -> String {
        state::email_state(&self.views)
    }
}

/// What the client asked Email/get for.
struct Wanted {
    properties: Vec<String>,
    body_properties: Vec<String>,
    text_values: bool,
    html_values: bool,
    all_values: bool,
    max_value: usize,
}

/// Email/get (RFC 8621 §4.2).
pub fn get(ctx: &Ctx<'_>, args: &Arguments) -> Result<Arguments> {
    let max = ctx.limits.max_objects_in_get;
    let mut index = Index::new(ctx)?;
    let ids: Vec<String> = match args::strings(args, "ids", max)? {
        Some(ids) => ids,
        None => {
            let mut all = Vec::new();
            for view in index.views.clone() {
                for meta in index.metas(view.place)? {
                    all.push(
                        EmailId {
                            place: view.place,
                            uid: meta.uid,
                        }
                        .to_string(),
                    );
                }
            }
            if all.len() > max {
                return Err(Error::RequestTooLarge(format!(
                    "the account has {} emails: name at most {max}",
                    all.len()
                )));
            }
            all
        }
    };
    let mut properties = args::strings(args, "properties", 256)?.unwrap_or_else(|| {
        let mut d: Vec<String> = DEFAULT_PROPERTIES.iter().map(|s| s.to_string()).collect();
        if ctx.using_pec {
            d.push("pec".into());
        }
        d
    });
    if properties.iter().any(|p| p == "pec") && !ctx.using_pec {
        return Err(Error::InvalidArguments(format!(
            "the pec property needs {} in using",
            crate::session::PEC
        )));
    }
    if !properties.iter().any(|p| p == "id") {
        properties.push("id".into());
    }
    let wanted = Wanted {
        properties,
        body_properties: args::strings(args, "bodyProperties", 64)?.unwrap_or_else(|| {
            DEFAULT_BODY_PROPERTIES
                .iter()
                .map(|s| s.to_string())
                .collect()
        }),
        text_values: args::boolean(args, "fetchTextBodyValues", false)?,
        html_values: args::boolean(args, "fetchHTMLBodyValues", false)?,
        all_values: args::boolean(args, "fetchAllBodyValues", false)?,
        max_value: args::unsigned(args, "maxBodyValueBytes")?
            .filter(|m| *m > 0)
            .map_or(ctx.limits.max_body_value, |m| {
                usize::try_from(m)
                    .unwrap_or(usize::MAX)
                    .min(ctx.limits.max_body_value)
            }),
    };
    let mut list = Vec::new();
    let mut not_found = Vec::new();
    for raw_id in ids {
        let Some(id) = EmailId::parse(&raw_id) else {
            not_found.push(raw_id);
            continue;
        };
        let Some(meta) = index.meta(id)? else {
            not_found.push(raw_id);
            continue;
        };
        let bytes = index.bytes(id)?;
        list.push(Value::Object(object(ctx, id, &meta, &bytes, &wanted)?));
    }
    Ok(args::get_response(
        &ctx.account_id,
        index.state(),
        list,
        not_found,
    ))
}

/// The Email object of one message, with the properties `wanted`.
fn object(
    ctx: &Ctx<'_>,
    id: EmailId,
    meta: &MessageMeta,
    raw: &[u8],
    wanted: &Wanted,
) -> Result<Map<String, Value>> {
    let parsed = pec_proto::bounded::parse(raw);
    let message = parsed.message();
    let mut o = Map::new();
    for property in &wanted.properties {
        let value = match property.as_str() {
            "id" => id.to_string().into(),
            "blobId" => message_blob(meta).into(),
            "threadId" => id.thread_id().into(),
            "mailboxIds" => json!({ id.place.mailbox_id(): true }),
            "keywords" => keywords::from_flags(&meta.flags),
            "size" => meta.size.into(),
            "receivedAt" => utc_date(meta.internaldate).into(),
            "pec" => pec::property(ctx, raw),
            header if header.starts_with("header:") => header_property(message, header)?,
            other => match message {
                Some(m) => message_property(m, meta, other, wanted)?,
                None => empty_property(other)?,
            },
        };
        o.insert(property.clone(), value);
    }
    Ok(o)
}

fn message_blob(meta: &MessageMeta) -> String {
    BlobId {
        hash: meta.hash.clone(),
        part: None,
    }
    .to_string()
}

/// A time as UTC RFC 3339 (JMAP's `UTCDate`).
pub fn utc_date(seconds: i64) -> String {
    DateTime::<Utc>::from_timestamp(seconds, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// A property of a message without any header (its bytes are not a message).
fn empty_property(name: &str) -> Result<Value> {
    Ok(match name {
        "hasAttachment" => false.into(),
        "preview" => "".into(),
        "bodyValues" => json!({}),
        "textBody" | "htmlBody" | "attachments" | "headers" => json!([]),
        known if is_known(known) => Value::Null,
        unknown => return Err(unknown_property(unknown)),
    })
}

fn is_known(name: &str) -> bool {
    DEFAULT_PROPERTIES.contains(&name) || matches!(name, "headers" | "bodyStructure" | "pec")
}

fn unknown_property(name: &str) -> Error {
    Error::InvalidArguments(format!("unknown Email property {name}"))
}

fn message_property(
    m: &Message<'_>,
    meta: &MessageMeta,
    name: &str,
    wanted: &Wanted,
) -> Result<Value> {
    Ok(match name {
        "messageId" => ids_value(m.message_id().map(|s| HeaderValue::Text(s.into())).as_ref()),
        "inReplyTo" => ids_value(Some(m.in_reply_to())),
        "references" => ids_value(Some(m.references())),
        "sender" => addresses(m.sender()),
        "from" => addresses(m.from()),
        "to" => addresses(m.to()),
        "cc" => addresses(m.cc()),
        "bcc" => addresses(m.bcc()),
        "replyTo" => addresses(m.reply_to()),
        "subject" => m.subject().map_or(Value::Null, |s| s.into()),
        "sentAt" => m.date().map_or(Value::Null, |d| d.to_rfc3339().into()),
        "hasAttachment" => (!m.attachments.is_empty()).into(),
        "preview" => m
            .body_preview(PREVIEW)
            .map_or_else(String::new, |p| {
                // Line breaks and runs of blanks become one space (a one-line fragment).
                p.split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
                    .chars()
                    .take(PREVIEW)
                    .collect()
            })
            .into(),
        "headers" => Value::Array(raw_headers(m, m.root_part())),
        "textBody" => parts(m, &m.text_body, meta, wanted),
        "htmlBody" => parts(m, &m.html_body, meta, wanted),
        "attachments" => parts(m, &m.attachments, meta, wanted),
        "bodyStructure" => part(m, 0, meta, wanted),
        "bodyValues" => body_values(m, wanted),
        unknown => return Err(unknown_property(unknown)),
    })
}

/// `messageId`, `inReplyTo`, `references`: a list of ids without angle brackets.
fn ids_value(value: Option<&HeaderValue<'_>>) -> Value {
    let list: Vec<String> = match value {
        Some(HeaderValue::Text(t)) => vec![t.to_string()],
        Some(HeaderValue::TextList(l)) => l.iter().map(|t| t.to_string()).collect(),
        _ => Vec::new(),
    };
    if list.is_empty() {
        Value::Null
    } else {
        json!(list)
    }
}

/// An address list as `[{name, email}]` (groups flattened).
fn addresses(a: Option<&Address<'_>>) -> Value {
    let Some(a) = a else { return Value::Null };
    Value::Array(
        a.iter()
            .map(|addr| json!({"name": addr.name(), "email": addr.address()}))
            .collect(),
    )
}

/// The header fields of a part as `[{name, value}]`, values raw as written.
fn raw_headers(m: &Message<'_>, part: &MessagePart<'_>) -> Vec<Value> {
    part.headers
        .iter()
        .map(|h| json!({"name": h.name(), "value": raw_value(m, h)}))
        .collect()
}

/// A header field's value as written (RFC 8621 §4.1.2.1 Raw): from after the colon to
/// before the field's final line break.
fn raw_value(m: &Message<'_>, h: &mail_parser::Header<'_>) -> String {
    let (start, end) = (h.offset_start() as usize, h.offset_end() as usize);
    let value = m.raw_message.get(start..end).unwrap_or_default();
    let value = value.strip_suffix(b"\n").unwrap_or(value);
    let value = value.strip_suffix(b"\r").unwrap_or(value);
    String::from_utf8_lossy(value).into_owned()
}

/// `header:{name}[:asRaw|:asText|:asAddresses|:asMessageIds|:asDate][:all]`.
fn header_property(message: Option<&Message<'_>>, property: &str) -> Result<Value> {
    let mut fields = property.split(':').skip(1);
    let name = fields
        .next()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| unknown_property(property))?;
    let mut form = "asRaw";
    let mut all = false;
    for f in fields {
        match f {
            "all" => all = true,
            "asRaw" | "asText" | "asAddresses" | "asMessageIds" | "asDate" if !all => form = f,
            _ => return Err(unknown_property(property)),
        }
    }
    let Some(m) = message else {
        return Ok(if all { json!([]) } else { Value::Null });
    };
    let root = m.root_part();
    let values: Vec<Value> = root
        .headers
        .iter()
        .filter(|h| h.name().eq_ignore_ascii_case(name))
        .map(|h| match form {
            "asRaw" => raw_value(m, h).into(),
            "asText" => h.value().as_text().map_or(Value::Null, |t| t.trim().into()),
            "asAddresses" => addresses(h.value().as_address()),
            "asMessageIds" => ids_value(Some(h.value())),
            _ => h
                .value()
                .as_datetime()
                .map_or(Value::Null, |d| d.to_rfc3339().into()),
        })
        .collect();
    Ok(if all {
        Value::Array(values)
    } else {
        values.into_iter().last().unwrap_or(Value::Null)
    })
}

fn parts(m: &Message<'_>, ids: &[u32], meta: &MessageMeta, wanted: &Wanted) -> Value {
    Value::Array(ids.iter().map(|&i| part(m, i, meta, wanted)).collect())
}

/// One EmailBodyPart (without `subParts` below the first level: the structure is not
/// walked recursively).
fn part(m: &Message<'_>, index: u32, meta: &MessageMeta, wanted: &Wanted) -> Value {
    let Some(p) = m.part(index) else {
        return Value::Null;
    };
    let ctype = p.content_type();
    let mime = ctype.map_or_else(
        || "text/plain".to_string(),
        |c| match c.subtype() {
            Some(s) => format!("{}/{}", c.ctype(), s).to_ascii_lowercase(),
            None => c.ctype().to_ascii_lowercase(),
        },
    );
    let charset = ctype
        .and_then(|c| c.attribute("charset"))
        .map(str::to_string)
        .or_else(|| mime.starts_with("text/").then(|| "us-ascii".to_string()));
    let mut o = Map::new();
    for property in &wanted.body_properties {
        let value = match property.as_str() {
            "partId" => index.to_string().into(),
            "blobId" => BlobId {
                hash: meta.hash.clone(),
                part: Some(index),
            }
            .to_string()
            .into(),
            "size" => p.contents().len().into(),
            "name" => p.attachment_name().map_or(Value::Null, |n| n.into()),
            "type" => mime.clone().into(),
            "charset" => charset.clone().map_or(Value::Null, Value::String),
            "disposition" => p
                .content_disposition()
                .map_or(Value::Null, |d| d.ctype().to_ascii_lowercase().into()),
            "cid" => p
                .content_id()
                .map_or(Value::Null, |c| c.trim_matches(['<', '>']).into()),
            "language" => match p.content_language() {
                HeaderValue::Text(t) => json!([t]),
                HeaderValue::TextList(l) => json!(l),
                _ => Value::Null,
            },
            "location" => p.content_location().map_or(Value::Null, |l| l.into()),
            "headers" => Value::Array(raw_headers(m, p)),
            "subParts" => match p.sub_parts() {
                Some(children) => Value::Array(
                    children
                        .iter()
                        .map(|c| json!({"partId": c.to_string()}))
                        .collect(),
                ),
                None => Value::Null,
            },
            _ => Value::Null,
        };
        o.insert(property.clone(), value);
    }
    Value::Object(o)
}

/// `bodyValues`: the text of the parts asked for, decoded, cut at `max_value` bytes.
fn body_values(m: &Message<'_>, wanted: &Wanted) -> Value {
    let mut chosen: Vec<u32> = Vec::new();
    if wanted.text_values || wanted.all_values {
        chosen.extend(&m.text_body);
    }
    if wanted.html_values || wanted.all_values {
        chosen.extend(&m.html_body);
    }
    chosen.sort_unstable();
    chosen.dedup();
    let mut values = Map::new();
    for i in chosen {
        let Some(p) = m.part(i) else { continue };
        let Some(text) = p.text_contents() else {
            continue;
        };
        let mut end = text.len().min(wanted.max_value);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        values.insert(
            i.to_string(),
            json!({
                "value": text.get(..end).unwrap_or_default(),
                "isEncodingProblem": p.is_encoding_problem,
                "isTruncated": end < text.len(),
            }),
        );
    }
    Value::Object(values)
}
