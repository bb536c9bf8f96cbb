//! Mailbox/set (RFC 8621 §2.5): the user's own folders created, renamed, subscribed or
//! not, and destroyed. Folders stay flat (no `parentId`, no `/` in a new name); the
//! folders made with the account (INBOX, Sent...) are neither renamed nor destroyed, and
//! the security archive not changed at all. A folder with messages is destroyed only
//! with `onDestroyRemoveEmails` (its messages go with it, as IMAP DELETE does).

use pec_store::ARCHIVE_FOLDER;
use serde_json::{Map, Value, json};

use crate::api::Ctx;
use crate::args;
use crate::error::{Error, Result};
use crate::ids::Place;
use crate::mailbox::{View, snapshot};
use crate::protocol::Arguments;
use crate::state;

/// Longest mailbox name (bytes), as announced in `maxSizeMailboxName`.
pub const MAX_NAME: usize = 255;

fn set_error(kind: &str, description: &str) -> Value {
    json!({"type": kind, "description": description})
}

/// What a SetError says when the outcome is not done.
type Refusal = Value;

/// A name a user folder may take, or why not.
fn valid_name(name: &str, views: &[View]) -> std::result::Result<(), Refusal> {
    let invalid = |why: &str| set_error("invalidProperties", why);
    if name.trim().is_empty() || name.len() > MAX_NAME {
        return Err(invalid("name: 1 to 255 bytes"));
    }
    if name.contains('/') || name.chars().any(char::is_control) {
        return Err(invalid("name: no '/' nor control characters"));
    }
    let reserved = ["INBOX", ARCHIVE_FOLDER];
    if reserved.iter().any(|r| r.eq_ignore_ascii_case(name))
        || views.iter().any(|v| v.name() == name)
    {
        return Err(invalid("name: already taken"));
    }
    Ok(())
}

/// Properties a client may send on create or update, and their checks (`parentId`
/// null, `role` null: no role is given by JMAP).
fn check_properties(patch: &Map<String, Value>) -> std::result::Result<(), Refusal> {
    for (key, value) in patch {
        let fine = match key.as_str() {
            "name" => value.is_string(),
            "isSubscribed" => value.is_boolean(),
            "parentId" | "role" => value.is_null(),
            "sortOrder" => value.is_u64(),
            _ => false,
        };
        if !fine {
            return Err(set_error(
                "invalidProperties",
                &format!("{key} cannot be set to {value}"),
            ));
        }
    }
    Ok(())
}

/// Mailbox/set.
pub fn set(ctx: &Ctx<'_>, args: &Arguments) -> Result<Arguments> {
    let (store, address) = (ctx.store, ctx.address);
    let mut views = snapshot(store, address)?;
    let old_state = state::mailbox_state(&views);
    if let Some(expected) = args::string(args, "ifInState")?
        && expected != old_state
    {
        return Err(Error::StateMismatch(expected.to_string()));
    }
    let create = args::object(args, "create")?.cloned().unwrap_or_default();
    let update = args::object(args, "update")?.cloned().unwrap_or_default();
    let destroy =
        args::strings(args, "destroy", ctx.limits.max_objects_in_set)?.unwrap_or_default();
    if create.len() + update.len() + destroy.len() > ctx.limits.max_objects_in_set {
        return Err(Error::RequestTooLarge(format!(
            "at most {} objects per Mailbox/set",
            ctx.limits.max_objects_in_set
        )));
    }
    let remove_emails = args::boolean(args, "onDestroyRemoveEmails", false)?;

    let mut created = Map::new();
    let mut not_created = Map::new();
    for (cid, object) in &create {
        let outcome = (|| -> Result<std::result::Result<Value, Refusal>> {
            let Some(object) = object.as_object() else {
                return Ok(Err(set_error("invalidProperties", "an object is required")));
            };
            if let Err(e) = check_properties(object) {
                return Ok(Err(e));
            }
            let Some(name) = object.get("name").and_then(Value::as_str) else {
                return Ok(Err(set_error("invalidProperties", "name is required")));
            };
            if let Err(e) = valid_name(name, &views) {
                return Ok(Err(e));
            }
            if views.len() > ctx.limits.max_mailboxes {
                return Ok(Err(set_error("overQuota", "too many mailboxes")));
            }
            store.create_folder(address, name)?;
            if object.get("isSubscribed") == Some(&Value::Bool(false)) {
                store.set_subscribed(address, name, false)?;
            }
            let selected = store.select(address, name)?;
            Ok(Ok(
                json!({"id": Place::Folder(selected.uidvalidity).mailbox_id()}),
            ))
        })()?;
        match outcome {
            Ok(v) => {
                created.insert(cid.clone(), v);
                views = snapshot(store, address)?;
            }
            Err(e) => {
                not_created.insert(cid.clone(), e);
            }
        }
    }

    let mut updated = Map::new();
    let mut not_updated = Map::new();
    for (id, patch) in &update {
        let outcome = (|| -> Result<std::result::Result<(), Refusal>> {
            let Some(view) =
                Place::parse_mailbox(id).and_then(|p| views.iter().find(|v| v.place == p))
            else {
                return Ok(Err(set_error("notFound", "no such mailbox")));
            };
            let Some(folder) = &view.folder else {
                return Ok(Err(set_error(
                    "forbidden",
                    "the security archive cannot change",
                )));
            };
            let Some(patch) = patch.as_object() else {
                return Ok(Err(set_error("invalidPatch", "a patch is an object")));
            };
            if let Err(e) = check_properties(patch) {
                return Ok(Err(e));
            }
            let mut name = folder.name.clone();
            if let Some(new) = patch.get("name").and_then(Value::as_str)
                && new != folder.name
            {
                if folder.system {
                    return Ok(Err(set_error(
                        "forbidden",
                        "a system mailbox keeps its name",
                    )));
                }
                if let Err(e) = valid_name(new, &views) {
                    return Ok(Err(e));
                }
                store.rename_folder(address, &folder.name, new)?;
                name = new.to_string();
            }
            if let Some(on) = patch.get("isSubscribed").and_then(Value::as_bool) {
                store.set_subscribed(address, &name, on)?;
            }
            Ok(Ok(()))
        })()?;
        match outcome {
            Ok(()) => {
                updated.insert(id.clone(), Value::Null);
                views = snapshot(store, address)?;
            }
            Err(e) => {
                not_updated.insert(id.clone(), e);
            }
        }
    }

    let mut destroyed = Vec::new();
    let mut not_destroyed = Map::new();
    for id in destroy {
        let view = Place::parse_mailbox(&id).and_then(|p| views.iter().find(|v| v.place == p));
        let refusal = match view.map(|v| (&v.folder, v.selected.exists)) {
            None => Some(set_error("notFound", "no such mailbox")),
            Some((None, _)) => Some(set_error("forbidden", "the security archive stays")),
            Some((Some(f), _)) if f.system => Some(set_error(
                "forbidden",
                "a system mailbox cannot be destroyed",
            )),
            Some((Some(_), n)) if n > 0 && !remove_emails => {
                Some(set_error("mailboxHasEmail", "the mailbox has emails"))
            }
            Some((Some(f), _)) => {
                store.delete_folder(address, &f.name)?;
                None
            }
        };
        match refusal {
            Some(e) => {
                not_destroyed.insert(id, e);
            }
            None => {
                destroyed.push(Value::String(id));
                views = snapshot(store, address)?;
            }
        }
    }

    let mut r = Map::new();
    r.insert("accountId".into(), ctx.account_id.clone().into());
    r.insert("oldState".into(), old_state.into());
    r.insert("newState".into(), state::mailbox_state(&views).into());
    r.insert("created".into(), Value::Object(created));
    r.insert("updated".into(), Value::Object(updated));
    r.insert("destroyed".into(), Value::Array(destroyed));
    r.insert("notCreated".into(), Value::Object(not_created));
    r.insert("notUpdated".into(), Value::Object(not_updated));
    r.insert("notDestroyed".into(), Value::Object(not_destroyed));
    Ok(r)
}
