//! Thread/get and Thread/changes (RFC 8621 §3): every email is a thread of its own (`t…`
//! ids, see [`crate::ids`]), so a client that groups by thread shows each message alone.
//! Real threading (by References, as IMAP THREAD does) can replace this without changing
//! the ids of single messages.

use serde_json::json;

use crate::api::Ctx;
use crate::args;
use crate::changes::since;
use crate::email::Index;
use crate::error::{Error, Result};
use crate::ids::EmailId;
use crate::protocol::Arguments;

/// Thread/get.
pub fn get(ctx: &Ctx<'_>, args: &Arguments) -> Result<Arguments> {
    let ids = args::strings(args, "ids", ctx.limits.max_objects_in_get)?.unwrap_or_default();
    let mut index = Index::new(ctx)?;
    let mut list = Vec::new();
    let mut not_found = Vec::new();
    for id in ids {
        let email = EmailId::from_thread(&id);
        match email {
            Some(e) if index.meta(e)?.is_some() => {
                list.push(json!({"id": id, "emailIds": [e.to_string()]}))
            }
            _ => not_found.push(id),
        }
    }
    Ok(args::get_response(
        &ctx.account_id,
        index.state(),
        list,
        not_found,
    ))
}

/// Thread/changes (RFC 8621 §3.2). A thread comes and goes with its one email and never
/// changes otherwise (its `emailIds` stay the same whatever happens to the email's
/// keywords), so the changes are the threads of the emails created and destroyed since
/// `sinceState` (a Thread state is the Email state).
pub fn changes(ctx: &Ctx<'_>, args: &Arguments) -> Result<Arguments> {
    let old = args::required_string(args, "sinceState")?;
    let incalculable = || Error::CannotCalculateChanges(old.to_string());
    let mut index = Index::new(ctx)?;
    let [created, _, destroyed] = since(&mut index, old)?.ok_or_else(incalculable)?;
    let max = args::unsigned(args, "maxChanges")?;
    if max.is_some_and(|m| m < (created.len() + destroyed.len()) as u64) {
        return Err(incalculable());
    }
    let threads = |emails: Vec<EmailId>| emails.iter().map(EmailId::thread_id).collect();
    Ok(args::changes_response(
        &ctx.account_id,
        old,
        index.state(),
        [threads(created), Vec::new(), threads(destroyed)],
    ))
}
