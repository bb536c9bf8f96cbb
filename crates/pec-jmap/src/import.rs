//! Email/import (RFC 8621 §4.8): a message the user uploaded (or one of their stored
//! messages, by its blob) stored in one of their folders, as an IMAP APPEND stores it —
//! the same store call, the same quota. Nothing is sent: sending is submission.
//!
//! The security archive takes no imports (it holds only what the gestore kept), and an
//! email is in one mailbox only (`maxMailboxesPerEmail` is 1).

use serde_json::{Map, Value, json};

use crate::api::Ctx;
use crate::args;
use crate::blob;
use crate::email::Index;
use crate::error::{Error, Result};
use crate::ids::{BlobId, EmailId, Place};
use crate::keywords;
use crate::protocol::Arguments;

/// One SetError (RFC 8620 §5.3).
fn set_error(kind: &str, description: &str) -> Value {
    json!({"type": kind, "description": description})
}

/// The bytes of a blob the user may import: an upload of theirs, or one of their
/// messages (or a part of one).
pub fn blob_bytes(ctx: &Ctx<'_>, id: &str) -> Result<Option<Vec<u8>>> {
    let Some(blob) = BlobId::parse(id) else {
        return Ok(None);
    };
    if blob.part.is_none()
        && let Some(bytes) = ctx.uploads.get(ctx.address, &blob.hash)
    {
        return Ok(Some(bytes.as_ref().clone()));
    }
    blob::read(ctx.store, ctx.address, &blob)
}

/// The one folder a `mailboxIds` names, or the SetError saying why not.
pub fn destination<'i>(
    index: &'i Index<'_>,
    mailbox_ids: Option<&Value>,
) -> std::result::Result<&'i str, Value> {
    let invalid = |why: &str| set_error("invalidProperties", why);
    let ids = mailbox_ids
        .and_then(Value::as_object)
        .ok_or_else(|| invalid("mailboxIds is required"))?;
    let mut chosen = ids.iter().filter(|(_, v)| **v == Value::Bool(true));
    let (Some((id, _)), None) = (chosen.next(), chosen.next()) else {
        return Err(invalid("an email is in exactly one mailbox"));
    };
    let place = Place::parse_mailbox(id).ok_or_else(|| invalid("no such mailbox"))?;
    if place == Place::Archive {
        return Err(set_error(
            "forbidden",
            "the security archive holds only what the gestore kept",
        ));
    }
    index
        .view(place)
        .and_then(|v| v.folder.as_ref())
        .map(|f| f.name.as_str())
        .ok_or_else(|| invalid("no such mailbox"))
}

/// The flags a `keywords` object names.
pub fn flags(keywords: Option<&Value>) -> std::result::Result<Vec<String>, Value> {
    let invalid = || set_error("invalidProperties", "keywords is an object of true values");
    let Some(object) = keywords.filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let object = object.as_object().ok_or_else(invalid)?;
    object
        .iter()
        .map(|(k, v)| {
            (v == &Value::Bool(true))
                .then(|| keywords::to_flag(k))
                .flatten()
                .ok_or_else(invalid)
        })
        .collect()
}

/// Stores `bytes` in `folder` with `flags`: the created email's `{id, blobId,
/// threadId, size}`, a SetError (over quota), or the store's failure.
pub fn store(
    ctx: &Ctx<'_>,
    folder: &str,
    bytes: &[u8],
    flags: &[String],
    received_at: i64,
) -> Result<std::result::Result<Value, Value>> {
    match ctx
        .store
        .deliver(ctx.address, folder, bytes, flags, received_at)
    {
        Ok(d) => {
            (ctx.changed)(ctx.address, folder);
            let id = EmailId {
                place: Place::Folder(d.uidvalidity),
                uid: d.uid,
            };
            Ok(Ok(json!({
                "id": id.to_string(),
                "blobId": BlobId { hash: d.hash, part: None }.to_string(),
                "threadId": id.thread_id(),
                "size": d.size,
            })))
        }
        Err(pec_store::Error::QuotaExceeded { .. }) => {
            Ok(Err(set_error("overQuota", "the mailbox is over its quota")))
        }
        Err(e) => Err(e.into()),
    }
}

/// The Unix time of an RFC 3339 `receivedAt`, now when absent.
pub fn received_at(value: Option<&Value>) -> std::result::Result<i64, Value> {
    match value {
        None | Some(Value::Null) => Ok(chrono::Utc::now().timestamp()),
        Some(Value::String(s)) => chrono::DateTime::parse_from_rfc3339(s)
            .map(|d| d.timestamp())
            .map_err(|_| set_error("invalidProperties", "receivedAt is a UTCDate")),
        Some(_) => Err(set_error("invalidProperties", "receivedAt is a UTCDate")),
    }
}

/// One import: the created object or a SetError.
fn import_one(
    ctx: &Ctx<'_>,
    index: &Index<'_>,
    spec: &Value,
) -> Result<std::result::Result<Value, Value>> {
    let Some(spec) = spec.as_object() else {
        return Ok(Err(set_error(
            "invalidProperties",
            "an EmailImport is an object",
        )));
    };
    let folder = match destination(index, spec.get("mailboxIds")) {
        Ok(f) => f.to_string(),
        Err(e) => return Ok(Err(e)),
    };
    let (flags, at) = match (
        flags(spec.get("keywords")),
        received_at(spec.get("receivedAt")),
    ) {
        (Ok(f), Ok(a)) => (f, a),
        (Err(e), _) | (_, Err(e)) => return Ok(Err(e)),
    };
    let Some(blob_id) = spec.get("blobId").and_then(Value::as_str) else {
        return Ok(Err(set_error("invalidProperties", "blobId is required")));
    };
    let Some(bytes) = blob_bytes(ctx, blob_id)? else {
        return Ok(Err(set_error("blobNotFound", "no such blob")));
    };
    let parsed = pec_proto::bounded::parse(&bytes);
    if parsed.message().is_none_or(|m| m.from().is_none()) {
        return Ok(Err(set_error(
            "invalidEmail",
            "the blob is not a message with a From",
        )));
    }
    store(ctx, &folder, &bytes, &flags, at)
}

/// Email/import.
pub fn import(ctx: &Ctx<'_>, args: &Arguments) -> Result<Arguments> {
    let index = Index::new(ctx)?;
    let old_state = index.state();
    if let Some(expected) = args::string(args, "ifInState")?
        && expected != old_state
    {
        return Err(Error::StateMismatch(expected.to_string()));
    }
    let emails = args::object(args, "emails")?
        .ok_or_else(|| Error::InvalidArguments("emails is required".into()))?;
    if emails.len() > ctx.limits.max_objects_in_set {
        return Err(Error::RequestTooLarge(format!(
            "at most {} emails per Email/import",
            ctx.limits.max_objects_in_set
        )));
    }
    let mut created = Map::new();
    let mut not_created = Map::new();
    for (creation_id, spec) in emails {
        match import_one(ctx, &index, spec)? {
            Ok(c) => created.insert(creation_id.clone(), c),
            Err(e) => not_created.insert(creation_id.clone(), e),
        };
    }
    let mut r = Map::new();
    r.insert("accountId".into(), ctx.account_id.clone().into());
    r.insert("oldState".into(), old_state.into());
    r.insert("newState".into(), Index::new(ctx)?.state().into());
    r.insert("created".into(), Value::Object(created));
    r.insert("notCreated".into(), Value::Object(not_created));
    Ok(r)
}
