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

/// What changed since the Email state `since`: the emails created, updated and
/// destroyed, in the mailboxes' order; `None` when that cannot be told (not a state of
/// ours, or a folder with messages deleted since).
pub fn since(index: &mut Index<'_>, since: &str) -> Result<Option<[Vec<EmailId>; 3]>> {
    let Some(old) = state::parse(since) else {
        return Ok(None);
    };
    for mark in &old.marks {
        // A folder gone with messages ever in it: its UIDs cannot be listed.
        if index.view(mark.place).is_none() && mark.uidnext > 1 {
            return Ok(None);
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
            };
            if meta.uid >= uidnext {
                created.push(id);
            } else if meta.modseq > modseq {
                updated.push(id);
            }
        }
        if let (Some(folder), true) = (&view.folder, before.is_some()) {
            for uid in index.expunged_since(&folder.name, modseq)? {
                if uid < uidnext {
                    destroyed.push(EmailId { place, uid });
                }
            }
        }
    }
    Ok(Some([created, updated, destroyed]))
}

/// Email/changes.
pub fn email_changes(ctx: &Ctx<'_>, args: &Arguments) -> Result<Arguments> {
    let old = args::required_string(args, "sinceState")?;
    let incalculable = || Error::CannotCalculateChanges(old.to_string());
    let mut index = Index::new(ctx)?;
    let lists = since(&mut index, old)?.ok_or_else(incalculable)?;
    let max = args::unsigned(args, "maxChanges")?;
    let total = lists.iter().map(Vec::len).sum::<usize>() as u64;
    if max.is_some_and(|m| m < total) {
        return Err(incalculable());
    }
    let [created, updated, destroyed] =
        lists.map(|l| l.iter().map(ToString::to_string).collect::<Vec<_>>());
    Ok(args::changes_response(
        &ctx.account_id,
        old,
        index.state(),
        [created, updated, destroyed],
    ))
}
