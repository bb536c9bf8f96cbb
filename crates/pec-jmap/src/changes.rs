//! Email/changes (RFC 8621 §4.3) from the store's modseqs (see [`crate::state`]).
//!
//! Entries purged from the security archive by retention are not reported destroyed,
//! and a folder deleted since the old state makes the changes incalculable (its UIDs
//! are gone with it): the client then fetches the list again.

use crate::api::Ctx;
use crate::args;
use crate::email::Index;
use crate::error::{Error, Result};
use crate::ids::EmailId;
use crate::protocol::Arguments;
use crate::state;

/// Email/changes.
pub fn email_changes(ctx: &Ctx<'_>, args: &Arguments) -> Result<Arguments> {
    let since = args::required_string(args, "sinceState")?;
    let incalculable = || Error::CannotCalculateChanges(since.to_string());
    let old = state::parse(since).ok_or_else(incalculable)?;
    let mut index = Index::new(ctx)?;
    for mark in &old.marks {
        // A folder gone with messages ever in it: its UIDs cannot be listed.
        if index.view(mark.place).is_none() && mark.uidnext > 1 {
            return Err(incalculable());
        }
    }
    let (mut created, mut updated, mut destroyed) = (Vec::new(), Vec::new(), Vec::new());
    let views = index.views.clone();
    for view in &views {
        let place = view.place;
        let before = old.mark(place);
        if before.is_some_and(|b| b.modseq == view.selected.highestmodseq) {
            continue;
        }
        let (modseq, uidnext) = before.map_or((0, 1), |b| (b.modseq, b.uidnext));
        for meta in index.metas(place)? {
            let id = EmailId {
                place,
                uid: meta.uid,
            }
            .to_string();
            if meta.uid >= uidnext {
                created.push(id);
            } else if meta.modseq > modseq {
                updated.push(id);
            }
        }
        if let (Some(folder), true) = (&view.folder, before.is_some()) {
            for uid in ctx
                .store
                .expunged_since(ctx.address, &folder.name, modseq)?
            {
                if uid < uidnext {
                    destroyed.push(EmailId { place, uid }.to_string());
                }
            }
        }
    }
    let max = args::unsigned(args, "maxChanges")?;
    let total = (created.len() + updated.len() + destroyed.len()) as u64;
    if max.is_some_and(|m| m < total) {
        return Err(incalculable());
    }
    Ok(args::changes_response(
        &ctx.account_id,
        since,
        index.state(),
        [created, updated, destroyed],
    ))
}
