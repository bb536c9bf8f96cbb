//! Email/set (RFC 8621 §4.6): keywords, moves, destroys, and drafts created
//! ([`crate::draft`]), with IMAP's rules. `keywords` is replaced whole or patched one
//! keyword at a time (`keywords/$seen`); in the security archive only `$seen` changes.
//! `mailboxIds` (whole, or `mailboxIds/<id>` patches) moves an email to another folder
//! as IMAP MOVE does, which gives it a new UID there and so a new id (returned in
//! `updated`); a destroy is IMAP's `\Deleted` and EXPUNGE of that one message. The
//! security archive is evidence: nothing leaves or enters it (`forbidden`).

use pec_store::FlagOp;
use serde_json::{Map, Value, json};

use crate::api::Ctx;
use crate::args;
use crate::draft;
use crate::email::Index;
use crate::error::{Error, Result};
use crate::ids::{EmailId, Place};
use crate::keywords;
use crate::protocol::Arguments;

/// One SetError (RFC 8620 §5.3).
fn set_error(kind: &str, description: &str) -> Value {
    json!({"type": kind, "description": description})
}

/// The flag changes an update asks for.
enum Change {
    /// The whole keyword set.
    Replace(Vec<String>),
    /// Flags to add and to remove.
    Patch(Vec<String>, Vec<String>),
}

/// An update's keyword paths and its `mailboxIds` paths, apart.
type Split = (Map<String, Value>, Map<String, Value>);

fn split(patch: &Map<String, Value>) -> Split {
    patch
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .partition(|(k, _)| !(k == "mailboxIds" || k.starts_with("mailboxIds/")))
}

/// The one mailbox the `mailboxIds` paths of an update leave the email in, now at
/// `current`; `Ok(None)` when they name none.
fn destination(
    paths: &Map<String, Value>,
    current: Place,
) -> std::result::Result<Option<Place>, Value> {
    if paths.is_empty() {
        return Ok(None);
    }
    let invalid = |why: &str| set_error("invalidProperties", why);
    let place = |id: &str| Place::parse_mailbox(id).ok_or_else(|| invalid("no such mailbox"));
    let mut places = Vec::new();
    if let Some(whole) = paths.get("mailboxIds") {
        let object = whole
            .as_object()
            .filter(|_| paths.len() == 1)
            .ok_or_else(|| {
                invalid("mailboxIds is an object, and not patched in the same update")
            })?;
        for (id, v) in object {
            if v != &Value::Bool(true) {
                return Err(invalid("mailboxIds values are true"));
            }
            places.push(place(id)?);
        }
    } else {
        places.push(current);
        for (path, v) in paths {
            let id = path.strip_prefix("mailboxIds/").unwrap_or_default();
            let p = place(id)?;
            match v {
                Value::Bool(true) => places.push(p),
                Value::Null | Value::Bool(false) => places.retain(|x| *x != p),
                _ => return Err(invalid("mailboxIds/… is true or null")),
            }
        }
    }
    places.dedup();
    match places.as_slice() {
        [one] => Ok(Some(*one)),
        _ => Err(invalid("an email is in exactly one mailbox")),
    }
}

fn change(patch: &Map<String, Value>) -> std::result::Result<Change, Value> {
    let invalid = |p: &str| set_error("invalidProperties", &format!("{p} cannot be set"));
    let mut add = Vec::new();
    let mut remove = Vec::new();
    for (path, value) in patch {
        if path == "keywords" {
            let object = value.as_object().ok_or_else(|| invalid(path))?;
            let mut flags = Vec::new();
            for (k, v) in object {
                if v != &Value::Bool(true) {
                    return Err(invalid(path));
                }
                flags.push(keywords::to_flag(k).ok_or_else(|| invalid(k))?);
            }
            if patch.len() > 1 {
                return Err(invalid("keywords with keywords/…"));
            }
            return Ok(Change::Replace(flags));
        }
        let keyword = path
            .strip_prefix("keywords/")
            .ok_or_else(|| invalid(path))?;
        let keyword = keyword.replace("~1", "/").replace("~0", "~");
        let flag = keywords::to_flag(&keyword).ok_or_else(|| invalid(path))?;
        match value {
            Value::Bool(true) => add.push(flag),
            Value::Null | Value::Bool(false) => remove.push(flag),
            _ => return Err(invalid(path)),
        }
    }
    Ok(Change::Patch(add, remove))
}

/// Email/set.
pub fn set(ctx: &Ctx<'_>, args: &Arguments) -> Result<Arguments> {
    let mut index = Index::new(ctx)?;
    let old_state = index.state();
    if let Some(expected) = args::string(args, "ifInState")?
        && expected != old_state
    {
        return Err(Error::StateMismatch(expected.to_string()));
    }
    let update = args::object(args, "update")?.cloned().unwrap_or_default();
    let create = args::object(args, "create")?.cloned().unwrap_or_default();
    let destroy =
        args::strings(args, "destroy", ctx.limits.max_objects_in_set)?.unwrap_or_default();
    if update.len() + create.len() + destroy.len() > ctx.limits.max_objects_in_set {
        return Err(Error::RequestTooLarge(format!(
            "at most {} objects per Email/set",
            ctx.limits.max_objects_in_set
        )));
    }
    let mut updated = Map::new();
    let mut not_updated = Map::new();
    for (id, patch) in &update {
        let email = EmailId::parse(id);
        let meta = match email {
            Some(e) => index.meta(e)?.map(|m| (e, m)),
            None => None,
        };
        let Some((email, meta)) = meta else {
            not_updated.insert(id.clone(), set_error("notFound", "no such email"));
            continue;
        };
        let Some(patch) = patch.as_object() else {
            not_updated.insert(
                id.clone(),
                set_error("invalidPatch", "a patch is an object"),
            );
            continue;
        };
        let (keyword_paths, mailbox_paths) = split(patch);
        let moved = destination(&mailbox_paths, email.place).and_then(|to| {
            change(&keyword_paths).map(|c| (to, (!keyword_paths.is_empty()).then_some(c)))
        });
        let (to, flags) = match moved {
            Ok(m) => m,
            Err(e) => {
                not_updated.insert(id.clone(), e);
                continue;
            }
        };
        if let Some(to) = to
            && to != email.place
            && let Err(e) = movable(&index, email, to)
        {
            not_updated.insert(id.clone(), e);
            continue;
        }
        if let Some(flags) = flags
            && let Err(e) = apply(ctx, &index, email, &meta.flags, flags)?
        {
            not_updated.insert(id.clone(), e);
            continue;
        }
        let result = match to {
            Some(to) if to != email.place => relocate(ctx, &index, email, to)?,
            _ => Ok(Value::Null),
        };
        match result {
            Ok(v) => updated.insert(id.clone(), v),
            Err(e) => not_updated.insert(id.clone(), e),
        };
    }
    let mut created = Map::new();
    let mut not_created = Map::new();
    for (id, spec) in &create {
        match draft::create(ctx, &index, spec)? {
            Ok(c) => created.insert(id.clone(), c),
            Err(e) => not_created.insert(id.clone(), e),
        };
    }
    let mut destroyed = Vec::new();
    let mut not_destroyed = Map::new();
    for id in destroy {
        match remove(ctx, &mut index, &id)? {
            Ok(()) => destroyed.push(Value::String(id)),
            Err(e) => {
                not_destroyed.insert(id, e);
            }
        }
    }
    let new_state = Index::new(ctx)?.state();
    let mut r = Map::new();
    r.insert("accountId".into(), ctx.account_id.clone().into());
    r.insert("oldState".into(), old_state.into());
    r.insert("newState".into(), new_state.into());
    r.insert("created".into(), Value::Object(created));
    r.insert("updated".into(), Value::Object(updated));
    r.insert("destroyed".into(), Value::Array(destroyed));
    r.insert("notCreated".into(), Value::Object(not_created));
    r.insert("notUpdated".into(), Value::Object(not_updated));
    r.insert("notDestroyed".into(), Value::Object(not_destroyed));
    Ok(r)
}

/// Why the security archive refuses a move or a destroy.
const IMMUTABLE: &str = "the security archive is immutable: its messages are evidence";

/// Whether `email` may move to `to`: `Err` with the SetError if not.
fn movable(index: &Index<'_>, email: EmailId, to: Place) -> std::result::Result<(), Value> {
    if email.place == Place::Archive || to == Place::Archive {
        return Err(set_error("forbidden", IMMUTABLE));
    }
    if index.view(to).is_none() {
        return Err(set_error("invalidProperties", "no such mailbox"));
    }
    Ok(())
}

/// Moves `email` to the folder at `to` as IMAP MOVE does (its flags go with it);
/// `Ok(Ok({id}))` with its new id.
fn relocate(
    ctx: &Ctx<'_>,
    index: &Index<'_>,
    email: EmailId,
    to: Place,
) -> Result<std::result::Result<Value, Value>> {
    let folder = |p: Place| index.view(p).and_then(|v| v.folder.as_ref());
    let (Some(from), Some(dest)) = (folder(email.place), folder(to)) else {
        return Ok(Err(set_error("notFound", "no such email or mailbox")));
    };
    let copied = match ctx
        .store
        .move_messages(ctx.address, &from.name, &[email.uid], &dest.name)
    {
        Ok(c) => c,
        Err(pec_store::Error::QuotaExceeded { .. }) => {
            return Ok(Err(set_error("overQuota", "the mailbox is full")));
        }
        Err(e) => return Err(e.into()),
    };
    (ctx.changed)(ctx.address, &from.name);
    (ctx.changed)(ctx.address, &dest.name);
    let Some(&(_, uid)) = copied.uids.first() else {
        return Ok(Err(set_error("notFound", "no such email")));
    };
    let moved = EmailId {
        place: Place::Folder(copied.uidvalidity),
        uid,
    };
    Ok(Ok(
        json!({"id": moved.to_string(), "threadId": moved.thread_id()}),
    ))
}

/// Destroys one email as IMAP does (`\Deleted`, then EXPUNGE of that UID only).
fn remove(
    ctx: &Ctx<'_>,
    index: &mut Index<'_>,
    id: &str,
) -> Result<std::result::Result<(), Value>> {
    let not_found = || Ok(Err(set_error("notFound", "no such email")));
    let Some(email) = EmailId::parse(id) else {
        return not_found();
    };
    if index.meta(email)?.is_none() {
        return not_found();
    }
    if email.place == Place::Archive {
        return Ok(Err(set_error("forbidden", IMMUTABLE)));
    }
    let Some(folder) = index.view(email.place).and_then(|v| v.folder.as_ref()) else {
        return not_found();
    };
    let (store, address, uids) = (ctx.store, ctx.address, [email.uid]);
    store.store_flags(
        address,
        &folder.name,
        &uids,
        FlagOp::Add,
        &["\\Deleted".to_string()],
    )?;
    let expunged = store.expunge(address, &folder.name, Some(&uids))?;
    (ctx.changed)(address, &folder.name);
    if expunged.contains(&email.uid) {
        Ok(Ok(()))
    } else {
        not_found()
    }
}

/// Applies one keyword change to a message: `Ok(Err(SetError))` if it cannot be; a
/// store failure is the whole call's (temporary) error.
fn apply(
    ctx: &Ctx<'_>,
    index: &Index<'_>,
    email: EmailId,
    flags: &[String],
    change: Change,
) -> Result<std::result::Result<(), Value>> {
    let uids = [email.uid];
    let (address, store) = (ctx.address, ctx.store);
    if email.place == Place::Archive {
        let (add, remove) = match change {
            Change::Replace(f) => {
                let seen = f.iter().any(|f| f == "\\Seen");
                (
                    f,
                    if seen {
                        vec![]
                    } else {
                        vec!["\\Seen".to_string()]
                    },
                )
            }
            Change::Patch(add, remove) => (add, remove),
        };
        if add.iter().chain(&remove).any(|f| f != "\\Seen") {
            return Ok(Err(set_error(
                "forbidden",
                "the security archive changes only $seen",
            )));
        }
        if !add.is_empty() || !remove.is_empty() {
            store.set_archive_seen(address, &uids, !add.is_empty(), None)?;
            (ctx.changed)(address, pec_store::ARCHIVE_FOLDER);
        }
        return Ok(Ok(()));
    }
    let Some(folder) = index.view(email.place).and_then(|v| v.folder.as_ref()) else {
        return Ok(Err(set_error("notFound", "no such email")));
    };
    match change {
        Change::Replace(mut new) => {
            // Flags that are not keywords (\\Deleted) stay as they are.
            new.extend(
                flags
                    .iter()
                    .filter(|f| f.eq_ignore_ascii_case("\\Deleted"))
                    .cloned(),
            );
            store.store_flags(address, &folder.name, &uids, FlagOp::Replace, &new)?;
        }
        Change::Patch(add, remove) => {
            if !add.is_empty() {
                store.store_flags(address, &folder.name, &uids, FlagOp::Add, &add)?;
            }
            if !remove.is_empty() {
                store.store_flags(address, &folder.name, &uids, FlagOp::Remove, &remove)?;
            }
        }
    }
    (ctx.changed)(address, &folder.name);
    Ok(Ok(()))
}
