//! Email/set (RFC 8621 §4.6): keywords, and drafts created ([`crate::draft`]). A PEC
//! mailbox's messages are evidence, so they are not destroyed through this API (removal
//! is left to IMAP for now). `keywords` is replaced whole or patched one
//! keyword at a time (`keywords/$seen`); in the security archive only `$seen` changes.

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
        let change = match change(patch) {
            Ok(c) => c,
            Err(e) => {
                not_updated.insert(id.clone(), e);
                continue;
            }
        };
        match apply(ctx, &index, email, &meta.flags, change)? {
            Ok(()) => {
                updated.insert(id.clone(), Value::Null);
            }
            Err(e) => {
                not_updated.insert(id.clone(), e);
            }
        }
    }
    let refuse = |why: &str| set_error("forbidden", why);
    let mut created = Map::new();
    let mut not_created = Map::new();
    for (id, spec) in &create {
        match draft::create(ctx, &index, spec)? {
            Ok(c) => created.insert(id.clone(), c),
            Err(e) => not_created.insert(id.clone(), e),
        };
    }
    let mut not_destroyed = Map::new();
    for id in destroy {
        not_destroyed.insert(id, refuse("emails are not destroyed through JMAP yet"));
    }
    let new_state = Index::new(ctx)?.state();
    let mut r = Map::new();
    r.insert("accountId".into(), ctx.account_id.clone().into());
    r.insert("oldState".into(), old_state.into());
    r.insert("newState".into(), new_state.into());
    r.insert("created".into(), Value::Object(created));
    r.insert("updated".into(), Value::Object(updated));
    r.insert("destroyed".into(), Value::Null);
    r.insert("notCreated".into(), Value::Object(not_created));
    r.insert("notUpdated".into(), Value::Object(not_updated));
    r.insert("notDestroyed".into(), Value::Object(not_destroyed));
    Ok(r)
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
