//! The security archive as IMAP shows it, decided here and nowhere else: the folder's
//! name and the names reserved around it, what commands may do with it, and where its
//! messages, bytes and counters come from.

use imap_codec::imap_types::command::CommandBody;
use imap_codec::imap_types::flag::Flag;
use pec_store::{FlagOp, MessageMeta, SeenStored};

use super::{Done, Selected, mailbox_name};
use crate::error::Result;
use crate::server::Config;

/// The folder that shows the account's security archive: its entries cannot change
/// or go, only be marked read. It is a folder of its own in the store (UIDVALIDITY,
/// UIDs from 1, modseqs), so CONDSTORE, QRESYNC and the sessions watching it work as
/// on any folder.
pub const ARCHIVE_FOLDER: &str = pec_store::ARCHIVE_FOLDER;

/// Whether `name` is the archive folder.
pub(super) fn is_archive(name: &str) -> bool {
    name == ARCHIVE_FOLDER
}

/// Whether a new folder may not be called `name`: the archive, anything inside it, or a
/// look-alike of it (another case, extra or trailing spaces) that a user could take for
/// the real, legally meaningful one.
pub(super) fn is_reserved(name: &str) -> bool {
    let top = name.split('/').next().unwrap_or(name);
    let normal: Vec<String> = top.split_whitespace().map(str::to_lowercase).collect();
    normal.join(" ") == ARCHIVE_FOLDER.to_lowercase()
}

/// The refusal of a change to the archive.
pub(super) fn read_only() -> Done {
    Done::no("The security archive is read-only")
}

/// The answer to a command that would change the archive or take its name, if `body`
/// is one (`selected` is the session's selected folder). Selected, the archive lets
/// its address mark entries read (STORE of `\Seen`, FETCH of a body) and nothing else.
pub(super) fn rule(body: &CommandBody<'_>, selected: Option<&Selected>) -> Option<Done> {
    let reserved = || Done::no("The name is reserved for the security archive");
    match body {
        CommandBody::Create { mailbox } => {
            let name = mailbox_name(mailbox);
            let name = name.trim_end_matches('/');
            if is_archive(name) {
                Some(Done::no("Mailbox already exists"))
            } else {
                is_reserved(name).then(reserved)
            }
        }
        CommandBody::Delete { mailbox } => is_archive(&mailbox_name(mailbox))
            .then(|| Done::no("The security archive cannot be deleted")),
        CommandBody::Rename { from, to } => {
            let (from, to) = (mailbox_name(from), mailbox_name(to));
            if is_archive(&from) || is_archive(&to) {
                Some(Done::no("The security archive cannot be renamed"))
            } else {
                is_reserved(&to).then(reserved)
            }
        }
        // The archive is always subscribed: nothing to change.
        CommandBody::Subscribe { mailbox } | CommandBody::Unsubscribe { mailbox } => {
            is_archive(&mailbox_name(mailbox)).then(|| Done::ok("Done"))
        }
        CommandBody::Append { mailbox, .. } => is_archive(&mailbox_name(mailbox)).then(read_only),
        CommandBody::Copy { mailbox, .. } | CommandBody::Move { mailbox, .. } => {
            // Without a selected folder the command is refused as such.
            let sel = selected?;
            if is_archive(&mailbox_name(mailbox)) {
                Some(read_only())
            } else if sel.archive && matches!(body, CommandBody::Copy { .. }) {
                Some(Done::no(
                    "Messages cannot be copied out of the security archive",
                ))
            } else if sel.archive {
                Some(Done::no(
                    "Messages cannot be moved out of the security archive",
                ))
            } else {
                None
            }
        }
        CommandBody::Store { flags, .. }
            if selected.is_some_and(|s| s.archive)
                && flags.iter().any(|f| !matches!(f, Flag::Seen)) =>
        {
            Some(Done::no(
                "Only \\Seen can be changed in the security archive",
            ))
        }
        CommandBody::Expunge | CommandBody::ExpungeUid { .. }
            if selected.is_some_and(|s| s.archive) =>
        {
            Some(Done::no(
                "Messages cannot be removed from the security archive",
            ))
        }
        _ => None,
    }
}

/// Whether a STORE (`op` with `flags`, where [`rule`] let only `\\Seen` through) marks
/// archive entries read (`Some(true)`), unread (`Some(false)`) or changes nothing.
fn seen_wanted(op: FlagOp, flags: &[String]) -> Option<bool> {
    let named = flags.iter().any(|f| f.eq_ignore_ascii_case("\\Seen"));
    match op {
        FlagOp::Add => named.then_some(true),
        FlagOp::Remove => named.then_some(false),
        FlagOp::Replace => Some(named),
    }
}

/// A STORE on the archive entries `uids`: only `\\Seen` exists there ([`rule`] refused
/// anything else), changed in the store unless changed after `unchanged_since`.
pub(super) async fn store_seen(
    config: &Config,
    user: String,
    uids: Vec<u32>,
    (op, flags): (FlagOp, &[String]),
    unchanged_since: Option<u64>,
) -> Result<SeenStored> {
    let Some(seen) = seen_wanted(op, flags) else {
        return Ok(SeenStored::default());
    };
    if uids.is_empty() {
        return Ok(SeenStored::default());
    }
    config
        .store(move |s| s.set_archive_seen(&user, &uids, seen, unchanged_since))
        .await
}

/// The archive's entries as messages, by UID.
pub(super) async fn messages(config: &Config, user: String) -> Result<Vec<MessageMeta>> {
    config.store(move |s| s.archive_messages(&user)).await
}

/// UIDs of the archive of `user` purged at the end of their retention: those below its
/// UIDNEXT it no longer has. A purge leaves no tombstone, so they are told whatever
/// modseq the client knew (RFC 7162 3.2.5.1 lets VANISHED (EARLIER) name UIDs expunged
/// before it).
pub(super) async fn purged(config: &Config, user: String) -> Result<Vec<u32>> {
    let (state, present) = config
        .store(move |s| Ok((s.select_archive(&user)?, s.archive_messages(&user)?)))
        .await?;
    Ok(gaps(present.iter().map(|m| m.uid), state.uidnext))
}

/// The numbers from 1 below `end` missing from `present` (ascending).
fn gaps(present: impl Iterator<Item = u32>, end: u32) -> Vec<u32> {
    let mut missing = Vec::new();
    let mut next = 1;
    for uid in present {
        missing.extend(next..uid.min(end));
        next = next.max(uid.saturating_add(1));
    }
    missing.extend(next..end);
    missing
}

/// The bytes of the archive entry `uid`, if it belongs to `user`.
pub(super) async fn bytes(config: &Config, user: String, uid: u32) -> Result<Vec<u8>> {
    config
        // Only entries of this account are readable: one lookup by (address, UID).
        .store(move |s| s.read_archive_of(&user, uid))
        .await
}

/// What SELECT and STATUS report for the archive folder of `user`.
pub(super) async fn state(config: &Config, user: String) -> Result<pec_store::Selected> {
    config.store(move |s| s.select_archive(&user)).await
}

#[cfg(test)]
mod tests {
    use super::gaps;

    #[test]
    fn gaps_are_the_missing_uids_below_uidnext() {
        assert_eq!(gaps([2, 3, 6].into_iter(), 8), [1, 4, 5, 7]);
        assert_eq!(gaps([1, 2].into_iter(), 3), Vec::<u32>::new());
        assert_eq!(gaps([].into_iter(), 3), [1, 2]);
        assert_eq!(gaps([u32::MAX].into_iter(), 2), [1]);
    }
}
