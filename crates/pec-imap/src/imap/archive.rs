//! The security archive as IMAP shows it, decided here and nowhere else: the folder's
//! name and the names reserved around it, what commands may do with it, and where its
//! messages, bytes and counters come from.

use imap_codec::imap_types::command::CommandBody;
use pec_store::MessageMeta;

use super::{Done, Selected, mailbox_name, response_err};
use crate::error::Result;
use crate::server::Config;

/// The read-only folder that shows the account's security archive.
pub const ARCHIVE_FOLDER: &str = "Archivio di sicurezza";

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

/// The answer to a command that would change the archive or take its name, if `body`
/// is one (`selected` is the session's selected folder). Selected read-only, the
/// archive refuses STORE, EXPUNGE and MOVE as any read-only folder does.
pub(super) fn rule(body: &CommandBody<'_>, selected: Option<&Selected>) -> Option<Done> {
    let reserved = || Done::no("The name is reserved for the security archive");
    let read_only = || Done::no("The security archive is read-only");
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
            } else {
                None
            }
        }
        _ => None,
    }
}

/// The archive's entries as messages: UIDs are entry ids, no flags, one modification
/// sequence (entries never change).
pub(super) async fn messages(config: &Config, user: String) -> Result<Vec<MessageMeta>> {
    let entries = config.store(move |s| s.list_archive(&user)).await?;
    Ok(entries
        .into_iter()
        .filter_map(|e| {
            Some(MessageMeta {
                uid: u32::try_from(e.id).ok().filter(|&u| u > 0)?,
                hash: e.hash,
                size: e.size,
                internaldate: e.stored_at,
                flags: Vec::new(),
                modseq: 1,
            })
        })
        .collect())
}

/// The bytes of the archive entry `uid`, if it belongs to `user`.
pub(super) async fn bytes(config: &Config, user: String, uid: u32) -> Result<Vec<u8>> {
    config
        .store(move |s| {
            // Only entries of this account are readable.
            let mine = s
                .list_archive(&user)?
                .iter()
                .any(|e| e.id == i64::from(uid));
            if !mine {
                return Err(pec_store::Error::NoSuchMessage(uid));
            }
            s.read_archive(i64::from(uid))
        })
        .await
}

/// What SELECT and STATUS report for the archive: a fixed UIDVALIDITY and
/// HIGHESTMODSEQ, the next UID after the newest entry.
pub(super) fn state(messages: &[MessageMeta]) -> Result<pec_store::Selected> {
    Ok(pec_store::Selected {
        uidvalidity: 1,
        uidnext: messages.last().map_or(1, |m| m.uid.saturating_add(1)),
        highestmodseq: 1,
        exists: u32::try_from(messages.len()).map_err(response_err)?,
    })
}
