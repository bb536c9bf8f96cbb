//! Identity/get (RFC 8621 §6): a PEC mailbox sends only as itself, so it has exactly one
//! identity, its address, which cannot be changed or deleted.

use serde_json::json;

use crate::api::Ctx;
use crate::args;
use crate::error::Result;
use crate::protocol::Arguments;

/// The one identity's id.
pub const ID: &str = "self";

/// Identity/get.
pub fn get(ctx: &Ctx<'_>, args: &Arguments) -> Result<Arguments> {
    let ids = args::strings(args, "ids", ctx.limits.max_objects_in_get)?;
    let identity = json!({
        "id": ID,
        "name": "",
        "email": ctx.address,
        "replyTo": null,
        "bcc": null,
        "textSignature": "",
        "htmlSignature": "",
        "mayDelete": false,
    });
    let (list, not_found) = match ids {
        None => (vec![identity], Vec::new()),
        Some(ids) => {
            let (found, missing): (Vec<_>, Vec<_>) = ids.into_iter().partition(|i| i == ID);
            let list = if found.is_empty() {
                vec![]
            } else {
                vec![identity]
            };
            (list, missing)
        }
    };
    Ok(args::get_response(
        &ctx.account_id,
        "1".into(),
        list,
        not_found,
    ))
}
