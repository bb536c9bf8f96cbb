//! The security archive as IMAP shows it, decided here and nowhere else: the folder's
//! name and the names reserved around it, what commands may do with it, and where its
//! messages, bytes and counters come from.

use imap_codec::imap_types::command::CommandBody;
use imap_codec::imap_types::flag::Flag;
use pec_store::{FlagOp, MessageMeta};

use super::{Done, Selected, has_flag, mailbox_name, response_err};
use crate::error::Result;
use crate::server::Config;

/// The folder that shows the account's security archive: its entries cannot change
/// or go, only be marked read.
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

/// A STORE on archive entries (`current`, as the session knows them): only `\Seen`
/// exists there ([`rule`] refused anything else). Returns the entries whose flags
/// changed, with their new flags.
pub(super) async fn store_seen(
    config: &Config,
    user: String,
    current: Vec<MessageMeta>,
    op: FlagOp,
    flags: &[String],
) -> Result<Vec<MessageMeta>> {
    let named = flags.iter().any(|f| f.eq_ignore_ascii_case("\\Seen"));
    let (mut on, mut off, mut changed) = (Vec::new(), Vec::new(), Vec::new());
    for mut m in current {
        let seen = has_flag(&m, "\\Seen");
        let wanted = match op {
            FlagOp::Add => seen || named,
            FlagOp::Remove => seen && !named,
            FlagOp::Replace => named,
        };
        if wanted == seen {
            continue;
        }
        if wanted {
            on.push(i64::from(m.uid));
            m.flags = vec!["\\Seen".to_string()];
        } else {
            off.push(i64::from(m.uid));
            m.flags = Vec::new();
        }
        changed.push(m);
    }
    if !changed.is_empty() {
        config
            .store(move |s| {
                s.set_archive_seen(&user, &on, true)?;
                s.set_archive_seen(&user, &off, false)
            })
            .await?;
    }
    Ok(changed)
}

/// The archive's entries as messages: UIDs are entry ids, `\Seen` the address's read
/// mark, one modification sequence (entries never change).
pub(super) async fn messages(config: &Config, user: String) -> Result<Vec<MessageMeta>> {
    let (entries, seen) = config
        .store(move |s| Ok((s.list_archive(&user)?, s.archive_seen(&user)?)))
        .await?;
    let seen: std::collections::HashSet<i64> = seen.into_iter().collect();
    Ok(entries
        .into_iter()
        .filter_map(|e| {
            let flags = if seen.contains(&e.id) {
                vec!["\\Seen".to_string()]
            } else {
                Vec::new()
            };
            Some(MessageMeta {
                uid: u32::try_from(e.id).ok().filter(|&u| u > 0)?,
                hash: e.hash,
                size: e.size,
                internaldate: e.stored_at,
                flags,
                modseq: 1,
            })
        })
        .collect())
}

/// The bytes of the archive entry `uid`, if it belongs to `user`.
pub(super) async fn bytes(config: &Config, user: String, uid: u32) -> Result<Vec<u8>> {
    config
        // Only entries of this account are readable.
        .store(move |s| s.read_archive_of(&user, i64::from(uid)))
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
