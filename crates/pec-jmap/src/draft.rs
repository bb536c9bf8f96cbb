//! Email/set create (RFC 8621 §4.6): a message built from JMAP Email properties with
//! mail-builder — `from`, `to`, `cc`, `bcc`, `replyTo`, `subject`, `sentAt`, the text and
//! HTML bodies (`textBody`/`htmlBody` naming `bodyValues`) and `attachments` (uploaded
//! blobs, or parts of the user's messages) — stored in the one mailbox `mailboxIds`
//! names (Drafts, usually, with `$draft`), as Email/import stores a message.
//!
//! Sending it is EmailSubmission/set's job; nothing here reaches the network.

use std::borrow::Cow;

use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use serde_json::{Map, Value, json};

use crate::api::Ctx;
use crate::email::Index;
use crate::error::Result;
use crate::import;

/// Most addresses in one address field.
const MAX_ADDRESSES: usize = 100;
/// Most attachments of one draft.
const MAX_ATTACHMENTS: usize = 64;

/// The properties a creation may set; any other is `invalidProperties`.
const SETTABLE: [&str; 14] = [
    "mailboxIds",
    "keywords",
    "receivedAt",
    "from",
    "to",
    "cc",
    "bcc",
    "replyTo",
    "subject",
    "sentAt",
    "bodyValues",
    "textBody",
    "htmlBody",
    "attachments",
];

fn invalid(property: &str) -> Value {
    json!({"type": "invalidProperties", "properties": [property],
           "description": format!("{property} is not valid here")})
}

/// An `EmailAddress[]` as mail-builder's address list.
fn addresses<'x>(
    spec: &'x Map<String, Value>,
    name: &str,
) -> std::result::Result<Option<Address<'x>>, Value> {
    let Some(list) = spec.get(name).filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let list = list.as_array().ok_or_else(|| invalid(name))?;
    if list.is_empty() {
        return Ok(None);
    }
    if list.len() > MAX_ADDRESSES {
        return Err(invalid(name));
    }
    let mut out = Vec::with_capacity(list.len());
    for a in list {
        let email = a.get("email").and_then(Value::as_str);
        let email = email
            .filter(|e| pec_proto::mime::bare_address(e).as_deref() == Some(*e))
            .ok_or_else(|| invalid(name))?;
        let display = a
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty());
        out.push(Address::new_address(display.map(Cow::Borrowed), email));
    }
    Ok(Some(Address::new_list(out)))
}

/// The text of the body part a `textBody`/`htmlBody` names (one part, a `bodyValues` key).
fn body<'x>(
    spec: &'x Map<String, Value>,
    name: &str,
) -> std::result::Result<Option<&'x str>, Value> {
    let Some(parts) = spec.get(name).filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let parts = parts.as_array().ok_or_else(|| invalid(name))?;
    let [part] = parts.as_slice() else {
        return Err(invalid(name));
    };
    let id = part
        .get("partId")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(name))?;
    spec.get("bodyValues")
        .and_then(|v| v.get(id))
        .and_then(|v| v.get("value"))
        .and_then(Value::as_str)
        .map(Some)
        .ok_or_else(|| invalid("bodyValues"))
}

/// The message bytes a creation describes, or the SetError saying what is wrong.
fn build(ctx: &Ctx<'_>, spec: &Map<String, Value>) -> Result<std::result::Result<Vec<u8>, Value>> {
    if let Some(bad) = spec.keys().find(|k| !SETTABLE.contains(&k.as_str())) {
        return Ok(Err(invalid(bad)));
    }
    let mut m = MessageBuilder::new();
    for (name, header) in [
        ("from", "From"),
        ("to", "To"),
        ("cc", "Cc"),
        ("bcc", "Bcc"),
        ("replyTo", "Reply-To"),
    ] {
        match addresses(spec, name) {
            Ok(Some(a)) => m = m.header(header, a),
            Ok(None) => {}
            Err(e) => return Ok(Err(e)),
        }
    }
    if let Some(subject) = spec.get("subject").filter(|v| !v.is_null()) {
        let Some(s) = subject.as_str() else {
            return Ok(Err(invalid("subject")));
        };
        m = m.subject(s);
    }
    if let Some(sent) = spec.get("sentAt").filter(|v| !v.is_null()) {
        let at = sent
            .as_str()
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok());
        let Some(at) = at else {
            return Ok(Err(invalid("sentAt")));
        };
        m = m.date(at.timestamp());
    }
    let domain = ctx.address.rsplit('@').next().unwrap_or("localhost");
    let random: String = {
        let mut bytes = [0u8; 16];
        if openssl::rand::rand_bytes(&mut bytes).is_err() {
            return Ok(Err(json!({"type": "serverUnavailable"})));
        }
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    };
    m = m.message_id(format!("{random}@{domain}"));
    match (body(spec, "textBody"), body(spec, "htmlBody")) {
        (Err(e), _) | (_, Err(e)) => return Ok(Err(e)),
        (Ok(text), Ok(html)) => {
            if let Some(t) = text {
                m = m.text_body(t);
            }
            if let Some(h) = html {
                m = m.html_body(h);
            }
        }
    }
    let attachments = match spec.get("attachments").filter(|v| !v.is_null()) {
        None => Vec::new(),
        Some(Value::Array(a)) if a.len() <= MAX_ATTACHMENTS => a.clone(),
        Some(_) => return Ok(Err(invalid("attachments"))),
    };
    let mut total = 0usize;
    for a in &attachments {
        let Some(blob_id) = a.get("blobId").and_then(Value::as_str) else {
            return Ok(Err(invalid("attachments")));
        };
        let Some(bytes) = import::blob_bytes(ctx, blob_id)? else {
            return Ok(Err(json!({"type": "blobNotFound", "notFound": [blob_id]})));
        };
        total += bytes.len();
        if total > ctx.limits.max_size_upload {
            return Ok(Err(json!({"type": "tooLarge",
                "description": format!("attachments over {} bytes", ctx.limits.max_size_upload)})));
        }
        let kind = a
            .get("type")
            .and_then(Value::as_str)
            .map(|t| crate::blob::content_type(&format!("type={t}")))
            .unwrap_or_else(|| "application/octet-stream".to_string());
        let name = a
            .get("name")
            .and_then(Value::as_str)
            .map(crate::blob::safe_name)
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "allegato".to_string());
        m = m.attachment(kind, name, bytes);
    }
    Ok(m.write_to_vec().map_err(|_| invalid("attachments")))
}

/// One creation: `{id, blobId, threadId, size}` or a SetError.
pub fn create(
    ctx: &Ctx<'_>,
    index: &Index<'_>,
    spec: &Value,
) -> Result<std::result::Result<Value, Value>> {
    let Some(spec) = spec.as_object() else {
        return Ok(Err(invalid("create")));
    };
    let folder = match import::destination(index, spec.get("mailboxIds")) {
        Ok(f) => f.to_string(),
        Err(e) => return Ok(Err(e)),
    };
    let flags = match import::flags(spec.get("keywords")) {
        Ok(f) => f,
        Err(e) => return Ok(Err(e)),
    };
    let at = match import::received_at(spec.get("receivedAt")) {
        Ok(a) => a,
        Err(e) => return Ok(Err(e)),
    };
    let bytes = match build(ctx, spec)? {
        Ok(b) => b,
        Err(e) => return Ok(Err(e)),
    };
    import::store(ctx, &folder, &bytes, &flags, at)
}
