//! EmailSubmission/set (RFC 8621 §7.5): an email of the user's sent through the
//! gestore's access point — the very checks and outcome of SMTP submission (the sender
//! must be the authenticated mailbox, valid recipients, the size bound, the formal checks
//! of the PEC rules), the same acceptance receipt or non-acceptance notice and the same
//! legal log. This crate does not know the PEC rules: the server hands it an
//! [`AccessPoint`] (the SMTP submission handler itself) and each creation goes through it.
//!
//! Submissions are immediate and final (`undoStatus` `final`): a PEC accepted is
//! evidence, it cannot be recalled. EmailSubmission objects are not kept (no
//! EmailSubmission/get): what happened is in the receipts the sender gets.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use serde_json::{Map, Value, json};

use crate::api::Ctx;
use crate::args;
use crate::email::Index;
use crate::error::{Error, Result};
use crate::ids::EmailId;
use crate::protocol::Arguments;

/// Most recipients one submission may name (the envelope, or the message's To/Cc/Bcc).
pub const MAX_RECIPIENTS: usize = 100;

/// What the access point made of a submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Accepted: the acceptance receipt is on its way to the sender; the text says the
    /// identificativo.
    Accepted(String),
    /// The reverse path is not the authenticated mailbox (SMTP's `MAIL FROM` refusal).
    ForbiddenFrom(String),
    /// Recipients refused as SMTP's `RCPT TO` refuses them.
    InvalidRecipients(Vec<String>, String),
    /// Larger than the submission service takes, in bytes.
    TooLarge(usize),
    /// Not accepted by the PEC rules: the non-acceptance notice is on its way.
    Refused(String),
    /// The gestore cannot decide now (store, antivirus...): submit again later.
    Temporary(String),
}

/// The future an [`AccessPoint`] answers with.
pub type Pending<'a> = Pin<Box<dyn Future<Output = Verdict> + Send + 'a>>;

/// The access point of the gestore, as SMTP submission reaches it.
pub trait AccessPoint: Send + Sync {
    /// Submits `message` from `user` (authenticated), connected from `peer`, with this
    /// SMTP envelope.
    fn submit<'a>(
        &'a self,
        peer: IpAddr,
        user: &'a str,
        mail_from: &'a str,
        rcpt_to: &'a [String],
        message: Vec<u8>,
    ) -> Pending<'a>;
}

/// One SetError (RFC 8620 §5.3).
fn set_error(kind: &str, description: &str) -> Value {
    json!({"type": kind, "description": description})
}

/// The envelope of a creation: the client's, or the identity's address and the
/// message's To, Cc and Bcc (RFC 8621 §7.5).
fn envelope(
    ctx: &Ctx<'_>,
    spec: &Map<String, Value>,
    raw: &[u8],
) -> std::result::Result<(String, Vec<String>), Value> {
    let invalid = |why: &str| set_error("invalidProperties", why);
    if let Some(env) = spec.get("envelope").filter(|v| !v.is_null()) {
        let from = env
            .pointer("/mailFrom/email")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("envelope/mailFrom/email is required"))?;
        let rcpt = env
            .get("rcptTo")
            .and_then(Value::as_array)
            .ok_or_else(|| invalid("envelope/rcptTo is required"))?;
        if rcpt.len() > MAX_RECIPIENTS {
            return Err(set_error("tooManyRecipients", "too many recipients"));
        }
        let rcpt = rcpt
            .iter()
            .map(|r| r.get("email").and_then(Value::as_str).map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| invalid("envelope/rcptTo/email is required"))?;
        return Ok((from.to_string(), rcpt));
    }
    let parsed = pec_proto::bounded::parse(raw);
    let message = parsed.message().ok_or_else(|| invalid("not a message"))?;
    let rcpt: Vec<String> = [message.to(), message.cc(), message.bcc()]
        .into_iter()
        .flatten()
        .flat_map(|a| a.iter())
        .filter_map(|a| a.address().map(str::to_string))
        .take(MAX_RECIPIENTS + 1)
        .collect();
    if rcpt.len() > MAX_RECIPIENTS {
        return Err(set_error("tooManyRecipients", "too many recipients"));
    }
    if rcpt.is_empty() {
        return Err(set_error("noRecipients", "the email names no recipient"));
    }
    Ok((ctx.address.to_string(), rcpt))
}

/// One creation: the created object or a SetError.
fn create_one(ctx: &Ctx<'_>, index: &Index<'_>, spec: &Value) -> Result<Result<Value, Value>> {
    let Some(spec) = spec.as_object() else {
        return Ok(Err(set_error("invalidProperties", "an object is required")));
    };
    let Some(access) = ctx.access else {
        return Ok(Err(set_error(
            "forbiddenToSend",
            "this server does not send",
        )));
    };
    if let Some(identity) = spec.get("identityId").and_then(Value::as_str)
        && identity != crate::identity::ID
    {
        return Ok(Err(set_error("invalidProperties", "no such identity")));
    }
    let Some(email) = spec
        .get("emailId")
        .and_then(Value::as_str)
        .and_then(EmailId::parse)
    else {
        return Ok(Err(set_error("invalidProperties", "emailId is required")));
    };
    if index.view(email.place).is_none() {
        return Ok(Err(set_error("invalidProperties", "no such email")));
    }
    let raw = match index.bytes(email) {
        Ok(raw) => raw,
        Err(Error::Store(pec_store::Error::NoSuchMessage(_))) => {
            return Ok(Err(set_error("invalidProperties", "no such email")));
        }
        Err(e) => return Err(e),
    };
    let (mail_from, rcpt_to) = match envelope(ctx, spec, &raw) {
        Ok(e) => e,
        Err(e) => return Ok(Err(e)),
    };
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return Ok(Err(set_error(
            "serverUnavailable",
            "no runtime to submit in",
        )));
    };
    let verdict = handle.block_on(access.submit(ctx.peer, ctx.address, &mail_from, &rcpt_to, raw));
    Ok(match verdict {
        Verdict::Accepted(text) => {
            let digest = pec_store::blobs::hash_hex(text.as_bytes());
            Ok(json!({
                "id": format!("x{}", digest.get(..24).unwrap_or_default()),
                "undoStatus": "final",
                "sendAt": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "pecAccepted": text,
            }))
        }
        Verdict::ForbiddenFrom(text) => Err(set_error("forbiddenFrom", &text)),
        Verdict::InvalidRecipients(list, text) => Err(json!({
            "type": "invalidRecipients",
            "description": text,
            "invalidRecipients": list,
        })),
        Verdict::TooLarge(max) => Err(json!({
            "type": "tooLarge",
            "description": format!("at most {max} bytes"),
            "maxSize": max,
        })),
        Verdict::Refused(text) => Err(set_error("forbiddenToSend", &text)),
        Verdict::Temporary(text) => Err(set_error("serverUnavailable", &text)),
    })
}

/// EmailSubmission/set: creations only (a PEC sent is not updated nor destroyed).
pub fn set(ctx: &Ctx<'_>, args: &Arguments) -> Result<Arguments> {
    let index = Index::new(ctx)?;
    let create = args::object(args, "create")?.cloned().unwrap_or_default();
    let update = args::object(args, "update")?.cloned().unwrap_or_default();
    let destroy =
        args::strings(args, "destroy", ctx.limits.max_objects_in_set)?.unwrap_or_default();
    if create.len() + update.len() + destroy.len() > ctx.limits.max_objects_in_set {
        return Err(Error::RequestTooLarge(format!(
            "at most {} objects per EmailSubmission/set",
            ctx.limits.max_objects_in_set
        )));
    }
    let mut created = Map::new();
    let mut not_created = Map::new();
    for (creation_id, spec) in &create {
        match create_one(ctx, &index, spec)? {
            Ok(c) => created.insert(creation_id.clone(), c),
            Err(e) => not_created.insert(creation_id.clone(), e),
        };
    }
    let unsend = || set_error("cannotUnsend", "a PEC accepted cannot be recalled");
    let not_updated: Map<String, Value> = update.keys().map(|k| (k.clone(), unsend())).collect();
    let not_destroyed: Map<String, Value> = destroy.into_iter().map(|k| (k, unsend())).collect();
    let mut r = Map::new();
    r.insert("accountId".into(), ctx.account_id.clone().into());
    r.insert("oldState".into(), Value::Null);
    r.insert("newState".into(), crate::session::SESSION_STATE.into());
    r.insert("created".into(), Value::Object(created));
    r.insert("updated".into(), Value::Null);
    r.insert("destroyed".into(), Value::Null);
    r.insert("notCreated".into(), Value::Object(not_created));
    r.insert("notUpdated".into(), Value::Object(not_updated));
    r.insert("notDestroyed".into(), Value::Object(not_destroyed));
    Ok(r)
}

/// The implicit Email/set RFC 8621 §7.5 asks for after an EmailSubmission/set with
/// `onSuccessUpdateEmail` or `onSuccessDestroyEmail`: their `#creationId` keys name the
/// email of that creation, and only creations that succeeded count. `None` when neither
/// is given or nothing succeeded.
pub fn on_success(args: &Arguments, response: &Arguments) -> Option<Arguments> {
    let created = response.get("created")?.as_object()?;
    let create = args.get("create")?.as_object()?;
    let email_of = |key: &str| {
        let creation = key.strip_prefix('#')?;
        created.get(creation)?;
        create
            .get(creation)?
            .get("emailId")?
            .as_str()
            .map(str::to_string)
    };
    let update: Map<String, Value> = args
        .get("onSuccessUpdateEmail")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, patch)| Some((email_of(k)?, patch.clone())))
        .collect();
    let destroy: Vec<Value> = args
        .get("onSuccessDestroyEmail")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|k| email_of(k.as_str()?).map(Value::from))
        .collect();
    if update.is_empty() && destroy.is_empty() {
        return None;
    }
    let mut set = Map::new();
    set.insert("accountId".into(), response.get("accountId")?.clone());
    set.insert("update".into(), Value::Object(update));
    set.insert("destroy".into(), Value::Array(destroy));
    Some(set)
}

/// Records the ids of the emails an Email/set or Email/import created, by creation id,
/// in a request's `createdIds` (RFC 8620 §5.3), so that a later call may name them
/// `#creationId`.
pub fn record_creation_ids(method: &str, response: &Arguments, ids: &mut Map<String, Value>) {
    if method != "Email/set" && method != "Email/import" {
        return;
    }
    let Some(created) = response.get("created").and_then(Value::as_object) else {
        return;
    };
    for (creation, object) in created {
        if let Some(id) = object.get("id") {
            ids.insert(creation.clone(), id.clone());
        }
    }
}

/// In an EmailSubmission/set, replaces an `emailId` of `#creationId` with the id that
/// creation got earlier in the request (an unknown one stays, and is not found).
pub fn resolve_creation_ids(method: &str, args: &mut Arguments, ids: &Map<String, Value>) {
    if method != "EmailSubmission/set" {
        return;
    }
    let Some(create) = args.get_mut("create").and_then(Value::as_object_mut) else {
        return;
    };
    for spec in create.values_mut() {
        let Some(email) = spec.get_mut("emailId") else {
            continue;
        };
        let known = email
            .as_str()
            .and_then(|e| e.strip_prefix('#'))
            .and_then(|c| ids.get(c));
        if let Some(id) = known {
            *email = id.clone();
        }
    }
}
