//! Thread/get (RFC 8621 §3): every email is a thread of its own (`t…` ids, see
//! [`crate::ids`]), so a client that groups by thread shows each message alone. Real
//! threading (by References, as IMAP THREAD does) can replace this without changing
//! the ids of single messages.

use serde_json::json;

use crate::api::Ctx;
use crate::args;
use crate::email::Index;
use crate::error::Result;
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
