//! The account's folders and security archive as JMAP Mailboxes (RFC 8621 §2): what
//! exists now ([`snapshot`]), Mailbox/get, Mailbox/changes, Mailbox/query and
//! Mailbox/queryChanges.
//!
//! Folders are flat (no `parentId`): the store's folder names are shown whole. The
//! security archive ("Archivio di sicurezza") is a read-only mailbox whose only
//! changeable mark is `$seen`.

use pec_store::{ARCHIVE_FOLDER, Folder, MessageMeta, Selected, Store};
use serde_json::{Map, Value, json};

use crate::api::Ctx;
use crate::args;
use crate::error::{Error, Result};
use crate::ids::Place;
use crate::protocol::Arguments;
use crate::state;

/// One mailbox as it is now.
#[derive(Debug, Clone)]
pub struct View {
    /// Where its messages are.
    pub place: Place,
    /// The folder (`None`: the security archive).
    pub folder: Option<Folder>,
    /// UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ, count.
    pub selected: Selected,
}

impl View {
    /// Its name as the user sees it.
    pub fn name(&self) -> &str {
        self.folder
            .as_ref()
            .map_or(ARCHIVE_FOLDER, |f| f.name.as_str())
    }

    /// The RFC 8621 role (`inbox`, `sent`...), from the folder's special use.
    pub fn role(&self) -> Option<&'static str> {
        let folder = self.folder.as_ref()?;
        if folder.name.eq_ignore_ascii_case("INBOX") {
            return Some("inbox");
        }
        match folder.special_use.as_deref()? {
            "\\Sent" => Some("sent"),
            "\\Drafts" => Some("drafts"),
            "\\Trash" => Some("trash"),
            "\\Junk" => Some("junk"),
            "\\Archive" => Some("archive"),
            _ => None,
        }
    }
}

/// The account's mailboxes now: its folders, INBOX first, then the security archive.
pub fn snapshot(store: &dyn Store, address: &str) -> Result<Vec<View>> {
    let mut views = Vec::new();
    for folder in store.list_folders(address)? {
        let selected = store.select(address, &folder.name)?;
        views.push(View {
            place: Place::Folder(selected.uidvalidity),
            folder: Some(folder),
            selected,
        });
    }
    views.push(View {
        place: Place::Archive,
        folder: None,
        selected: store.select_archive(address)?,
    });
    Ok(views)
}

/// The messages of one mailbox.
pub fn messages(store: &dyn Store, address: &str, view: &View) -> Result<Vec<MessageMeta>> {
    Ok(match &view.folder {
        Some(f) => store.messages(address, &f.name)?,
        None => store.archive_messages(address)?,
    })
}

/// Whether the message is unread.
pub fn unread(meta: &MessageMeta) -> bool {
    !meta.flags.iter().any(|f| f.eq_ignore_ascii_case("\\Seen"))
}

fn object(ctx: &Ctx<'_>, view: &View, order: usize) -> Result<Map<String, Value>> {
    let metas = messages(ctx.store, ctx.address, view)?;
    let total = metas.len();
    let unread = metas.iter().filter(|m| unread(m)).count();
    let archive = view.folder.is_none();
    let system = view.folder.as_ref().is_none_or(|f| f.system);
    let writable = !archive;
    let rights = json!({
        "mayReadItems": true,
        "mayAddItems": writable,
        "mayRemoveItems": writable,
        "maySetSeen": true,
        "maySetKeywords": writable,
        "mayCreateChild": false,
        "mayRename": !system,
        "mayDelete": !system,
        "maySubmit": writable,
    });
    let value = json!({
        "id": view.place.mailbox_id(),
        "name": view.name(),
        "parentId": null,
        "role": view.role(),
        "sortOrder": order,
        "totalEmails": total,
        "unreadEmails": unread,
        "totalThreads": total,
        "unreadThreads": unread,
        "myRights": rights,
        "isSubscribed": view.folder.as_ref().is_none_or(|f| f.subscribed),
    });
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(Error::InvalidArguments(
            "internal: mailbox not an object".into(),
        )),
    }
}

/// Mailbox/get (RFC 8621 §2.1).
pub fn get(ctx: &Ctx<'_>, args: &Arguments) -> Result<Arguments> {
    let ids = args::strings(args, "ids", ctx.limits.max_objects_in_get)?;
    let properties = args::strings(args, "properties", 64)?;
    let views = snapshot(ctx.store, ctx.address)?;
    let mut list = Vec::new();
    let mut not_found = Vec::new();
    match ids {
        None => {
            for (i, view) in views.iter().enumerate() {
                list.push(args::select(object(ctx, view, i)?, properties.as_deref()));
            }
        }
        Some(ids) => {
            for id in ids {
                let found = Place::parse_mailbox(&id)
                    .and_then(|p| views.iter().enumerate().find(|(_, v)| v.place == p));
                match found {
                    Some((i, view)) => {
                        list.push(args::select(object(ctx, view, i)?, properties.as_deref()))
                    }
                    None => not_found.push(id),
                }
            }
        }
    }
    let state = state::mailbox_state(&views);
    Ok(args::get_response(&ctx.account_id, state, list, not_found))
}

/// Mailbox/changes (RFC 8621 §2.2): created and destroyed from the ids the old state
/// names; a mailbox whose messages changed is updated in its counts only, unless a name
/// or subscription changed too.
pub fn changes(ctx: &Ctx<'_>, args: &Arguments) -> Result<Arguments> {
    let since = args::required_string(args, "sinceState")?;
    let old = state::parse(since).ok_or_else(|| Error::CannotCalculateChanges(since.into()))?;
    let views = snapshot(ctx.store, ctx.address)?;
    let now = state::parse(&state::mailbox_state(&views))
        .ok_or_else(|| Error::CannotCalculateChanges(since.into()))?;
    let (mut created, mut updated, mut destroyed) = (Vec::new(), Vec::new(), Vec::new());
    let names_changed = old.names != now.names;
    for mark in &now.marks {
        match old.mark(mark.place) {
            None => created.push(mark.place.mailbox_id()),
            Some(o) if names_changed || o != *mark => updated.push(mark.place.mailbox_id()),
            Some(_) => {}
        }
    }
    for mark in &old.marks {
        if now.mark(mark.place).is_none() {
            destroyed.push(mark.place.mailbox_id());
        }
    }
    let max = args::unsigned(args, "maxChanges")?;
    if max.is_some_and(|m| m < (created.len() + updated.len() + destroyed.len()) as u64) {
        return Err(Error::CannotCalculateChanges(since.into()));
    }
    let counts_only = !names_changed && !updated.is_empty();
    let mut r = args::changes_response(
        &ctx.account_id,
        since,
        state::mailbox_state(&views),
        [created, updated, destroyed],
    );
    let properties = if counts_only {
        json!([
            "totalEmails",
            "unreadEmails",
            "totalThreads",
            "unreadThreads"
        ])
    } else {
        Value::Null
    };
    r.insert("updatedProperties".into(), properties);
    Ok(r)
}

/// Mailbox/query (RFC 8621 §2.3): filters `role`, `hasAnyRole`, `name` (contained,
/// ignoring case), `isSubscribed`, `parentId` (null: every mailbox, as they are flat);
/// sorts `sortOrder` and `name`.
pub fn query(ctx: &Ctx<'_>, args: &Arguments) -> Result<Arguments> {
    let views = snapshot(ctx.store, ctx.address)?;
    let mut rows: Vec<(usize, &View)> = views.iter().enumerate().collect();
    if let Some(filter) = args::object(args, "filter")? {
        for (key, value) in filter {
            let keep: Box<dyn Fn(&View) -> bool> = match (key.as_str(), value) {
                ("role", Value::Null) => Box::new(|v: &View| v.role().is_none()),
                ("role", Value::String(r)) => {
                    let r = r.clone();
                    Box::new(move |v: &View| v.role() == Some(r.as_str()))
                }
                ("hasAnyRole", Value::Bool(b)) => {
                    let b = *b;
                    Box::new(move |v: &View| v.role().is_some() == b)
                }
                ("name", Value::String(n)) => {
                    let n = n.to_lowercase();
                    Box::new(move |v: &View| v.name().to_lowercase().contains(&n))
                }
                ("isSubscribed", Value::Bool(b)) => {
                    let b = *b;
                    Box::new(move |v: &View| v.folder.as_ref().is_none_or(|f| f.subscribed) == b)
                }
                ("parentId", Value::Null) => Box::new(|_: &View| true),
                ("parentId", Value::String(_)) => Box::new(|_: &View| false),
                (other, _) => {
                    return Err(Error::UnsupportedFilter(format!(
                        "Mailbox/query filter {other} is not supported"
                    )));
                }
            };
            rows.retain(|(_, v)| keep(v));
        }
    }
    if let Some(sort) = args.get("sort").and_then(Value::as_array) {
        for comparator in sort.iter().rev() {
            let property = comparator.get("property").and_then(Value::as_str);
            let ascending = comparator
                .get("isAscending")
                .and_then(Value::as_bool)
                .unwrap_or(true);
            let by_name = match property {
                Some("name") => true,
                Some("sortOrder") => false,
                other => {
                    return Err(Error::UnsupportedSort(format!(
                        "Mailbox/query cannot sort by {other:?}"
                    )));
                }
            };
            rows.sort_by(|a, b| {
                let order = if by_name {
                    a.1.name().cmp(b.1.name())
                } else {
                    a.0.cmp(&b.0)
                };
                if ascending { order } else { order.reverse() }
            });
        }
    }
    let ids: Vec<String> = rows.iter().map(|(_, v)| v.place.mailbox_id()).collect();
    let (position, page) = args::window(args, &ids, ctx.limits.max_objects_in_get)?;
    let mut r = Map::new();
    r.insert("accountId".into(), ctx.account_id.clone().into());
    r.insert("queryState".into(), state::mailbox_state(&views).into());
    r.insert("canCalculateChanges".into(), false.into());
    r.insert("position".into(), position.into());
    r.insert("ids".into(), json!(page));
    if args::boolean(args, "calculateTotal", false)? {
        r.insert("total".into(), ids.len().into());
    }
    Ok(r)
}

/// Mailbox/queryChanges (RFC 8621 §2.4, RFC 8620 §5.6). Mailbox/query says
/// `canCalculateChanges: false`: a mailbox list is short and a client asks for it again
/// whole. So the answer is "nothing changed" while the mailboxes are as they were at
/// `sinceQueryState`, and `cannotCalculateChanges` once they are not.
pub fn query_changes(ctx: &Ctx<'_>, args: &Arguments) -> Result<Arguments> {
    let since = args::required_string(args, "sinceQueryState")?;
    let answer = query(ctx, args)?;
    let now = answer
        .get("queryState")
        .and_then(|s| s.as_str())
        .unwrap_or_default();
    if now != since {
        return Err(Error::CannotCalculateChanges(since.into()));
    }
    let mut r = Map::new();
    r.insert("accountId".into(), ctx.account_id.clone().into());
    r.insert("oldQueryState".into(), since.into());
    r.insert("newQueryState".into(), now.into());
    r.insert("removed".into(), json!([]));
    r.insert("added".into(), json!([]));
    if let Some(total) = answer.get("total") {
        r.insert("total".into(), total.clone());
    }
    Ok(r)
}
