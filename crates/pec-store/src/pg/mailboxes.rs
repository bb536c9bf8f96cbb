//! Folders, messages and the security archive (PostgreSQL backend). UIDs and modseqs are
//! taken with `UPDATE folders ... RETURNING`, which holds the folder's row lock until
//! the transaction ends, so concurrent deliveries from any node get distinct UIDs in
//! commit order; a delivery or a copy checks the quota under the account's row lock.
//! Every change of a folder is announced to the other nodes ([`super::changes`]).

use std::collections::BTreeSet;

use postgres::Transaction;

use super::blobs;
use super::changes::{self, Node};
use super::directory::{account_id, insert_folder, unique};
use crate::archive;
use crate::error::{Error, Result};
use crate::lookup::{self, from_db, to_db, uid_from_db};
use crate::messages::{DELETED, Delivery, flag_set, flags_text};
use crate::model::{
    ARCHIVE_FOLDER, Admission, ArchiveEntry, ArchiveOptions, Copied, Delivered, Direction, FlagOp,
    Folder, MessageMeta, SeenStored, Selected, Usage,
};
use crate::store::Change;

/// Row id of a folder of an account.
fn folder_id(tx: &mut Transaction<'_>, account_id: i64, name: &str) -> Result<i64> {
    let name = lookup::folder_name(name)?;
    tx.query_opt(
        "SELECT id FROM folders WHERE account_id = $1 AND name = $2",
        &[&account_id, &name],
    )?
    .map(|r| r.get(0))
    .ok_or(Error::NoSuchFolder(name))
}

/// Row ids of an account and of one of its folders.
fn locate(tx: &mut Transaction<'_>, addr: &str, folder: &str) -> Result<(i64, i64)> {
    let (account, _) = account_id(tx, addr, false)?;
    Ok((account, folder_id(tx, account, folder)?))
}

/// Tells the other nodes that `folder` of `addr` changed.
fn announce(tx: &mut Transaction<'_>, node: &Node, addr: &str, folder: &str) -> Result<()> {
    let (address, _) = lookup::address(addr)?;
    let folder = lookup::folder_name(folder)?;
    changes::announce(tx, node, &Change::Folder { address, folder })
}

/// The account's folders, INBOX first then by name.
pub fn list_folders(tx: &mut Transaction<'_>, addr: &str) -> Result<Vec<Folder>> {
    let (account, _) = account_id(tx, addr, false)?;
    Ok(tx
        .query(
            "SELECT name, special_use, system,
                    EXISTS (SELECT 1 FROM subscriptions s
                            WHERE s.account_id = f.account_id AND s.name = f.name)
             FROM folders f WHERE account_id = $1
             ORDER BY name <> 'INBOX', name COLLATE \"C\"",
            &[&account],
        )?
        .iter()
        .map(|r| Folder {
            name: r.get(0),
            special_use: r.get(1),
            system: r.get(2),
            subscribed: r.get(3),
        })
        .collect())
}

/// Creates a user folder.
pub fn create_folder(tx: &mut Transaction<'_>, addr: &str, name: &str) -> Result<()> {
    let (account, _) = account_id(tx, addr, false)?;
    let name = lookup::folder_name(name)?;
    insert_folder(tx, account, &name, None, false)
}

/// Refuses to change a folder created with the account.
fn user_folder(tx: &mut Transaction<'_>, folder: i64, name: &str) -> Result<()> {
    let system: bool = tx
        .query_one("SELECT system FROM folders WHERE id = $1", &[&folder])?
        .get(0);
    if system {
        Err(Error::SystemFolder(name.to_string()))
    } else {
        Ok(())
    }
}

/// Renames a user folder; its messages, UIDs and UIDVALIDITY stay.
pub fn rename_folder(tx: &mut Transaction<'_>, addr: &str, from: &str, to: &str) -> Result<()> {
    let (account, folder) = locate(tx, addr, from)?;
    user_folder(tx, folder, from)?;
    let to = lookup::folder_name(to)?;
    tx.execute(
        "UPDATE folders SET name = $1 WHERE id = $2",
        &[&to, &folder],
    )
    .map_err(|e| unique(e, &to))?;
    // The subscription follows the folder.
    let from = lookup::folder_name(from)?;
    tx.execute(
        "WITH moved AS (DELETE FROM subscriptions WHERE account_id = $1 AND name = $2
                        RETURNING account_id)
         INSERT INTO subscriptions (account_id, name) SELECT account_id, $3 FROM moved
         ON CONFLICT DO NOTHING",
        &[&account, &from, &to],
    )?;
    Ok(())
}

/// Deletes a user folder and its messages; its subscription stays (RFC 3501 6.3.4).
pub fn delete_folder(tx: &mut Transaction<'_>, addr: &str, name: &str) -> Result<()> {
    let (_, folder) = locate(tx, addr, name)?;
    user_folder(tx, folder, name)?;
    let released: Vec<String> = tx
        .query(
            "DELETE FROM messages WHERE folder_id = $1 RETURNING blob, expunged",
            &[&folder],
        )?
        .iter()
        .filter(|r| !r.get::<_, bool>(1))
        .map(|r| r.get(0))
        .collect();
    blobs::release(tx, released)?;
    tx.execute("DELETE FROM folders WHERE id = $1", &[&folder])?;
    Ok(())
}

/// Subscribes or unsubscribes a name, whether or not a folder has it (RFC 3501 6.3.6).
pub fn set_subscribed(tx: &mut Transaction<'_>, addr: &str, name: &str, on: bool) -> Result<()> {
    let (account, _) = account_id(tx, addr, false)?;
    let name = lookup::folder_name(name)?;
    let sql = if on {
        "INSERT INTO subscriptions (account_id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING"
    } else {
        "DELETE FROM subscriptions WHERE account_id = $1 AND name = $2"
    };
    tx.execute(sql, &[&account, &name])?;
    Ok(())
}

/// The subscribed names, folders or not, by name.
pub fn subscriptions(tx: &mut Transaction<'_>, addr: &str) -> Result<Vec<String>> {
    let (account, _) = account_id(tx, addr, false)?;
    Ok(tx
        .query(
            "SELECT name FROM subscriptions WHERE account_id = $1 ORDER BY name COLLATE \"C\"",
            &[&account],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ and the message count of a folder.
pub fn select(tx: &mut Transaction<'_>, addr: &str, name: &str) -> Result<Selected> {
    let (_, folder) = locate(tx, addr, name)?;
    let r = tx.query_one(
        "SELECT uidvalidity, uidnext, highestmodseq,
                (SELECT count(*) FROM messages WHERE folder_id = f.id AND NOT expunged)
         FROM folders f WHERE id = $1",
        &[&folder],
    )?;
    Ok(Selected {
        uidvalidity: uid_from_db(r.get(0), "uidvalidity")?,
        uidnext: uid_from_db(r.get(1), "uidnext")?,
        highestmodseq: from_db(r.get(2), "highestmodseq")?,
        exists: uid_from_db(r.get(3), "exists")?,
    })
}

/// Columns of a [`MessageMeta`], read by [`to_meta`].
const META_COLUMNS: &str = "uid, blob, size, internaldate, flags, modseq";

/// Builds a [`MessageMeta`] from a row of [`META_COLUMNS`].
fn to_meta(r: &postgres::Row) -> Result<MessageMeta> {
    let flags: String = r.get(4);
    Ok(MessageMeta {
        uid: uid_from_db(r.get(0), "uid")?,
        hash: r.get(1),
        size: from_db(r.get(2), "size")?,
        internaldate: r.get(3),
        flags: flags.split_whitespace().map(str::to_string).collect(),
        modseq: from_db(r.get(5), "modseq")?,
    })
}

/// Locks the rows of `folders` (in id order, as every writer does) until the transaction
/// ends: the changes of one folder take their turns, and a writer that takes a folder
/// before its messages never waits in a circle with another.
fn lock_folders(tx: &mut Transaction<'_>, folders: &[i64]) -> Result<()> {
    tx.execute(
        "SELECT id FROM folders WHERE id = ANY($1) ORDER BY id FOR UPDATE",
        &[&folders],
    )?;
    Ok(())
}

/// Takes the next UID and modseq of a folder (locking its row until the transaction
/// ends): `(uidvalidity, uid, modseq)`.
fn next_uid(tx: &mut Transaction<'_>, folder: i64) -> Result<(u32, u32, u64)> {
    let r = tx.query_one(
        "UPDATE folders SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1
         WHERE id = $1 RETURNING uidvalidity, uidnext, highestmodseq",
        &[&folder],
    )?;
    Ok((
        uid_from_db(r.get(0), "uidvalidity")?,
        uid_from_db(r.get::<_, i64>(1) - 1, "uid")?,
        from_db(r.get(2), "highestmodseq")?,
    ))
}

/// Takes the next modseq of a folder.
fn next_modseq(tx: &mut Transaction<'_>, folder: i64) -> Result<i64> {
    Ok(tx
        .query_one(
            "UPDATE folders SET highestmodseq = highestmodseq + 1 WHERE id = $1
             RETURNING highestmodseq",
            &[&folder],
        )?
        .get(0))
}

/// Adds a message row under the folder's next UID, taking a reference to its blob
/// (stored already): `(uidvalidity, uid, modseq)`.
fn insert_message(
    tx: &mut Transaction<'_>,
    folder: i64,
    m: &MessageMeta,
) -> Result<(u32, u32, u64)> {
    let (uidvalidity, uid, modseq) = next_uid(tx, folder)?;
    tx.execute(
        "INSERT INTO messages (folder_id, uid, blob, size, internaldate, flags, modseq)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &folder,
            &i64::from(uid),
            &m.hash,
            &to_db(m.size),
            &m.internaldate,
            &m.flags.join(" "),
            &to_db(modseq),
        ],
    )?;
    Ok((uidvalidity, uid, modseq))
}

/// Refuses adding `size` bytes to a locked account if that would pass its quota;
/// otherwise the bytes it uses before them.
fn check_quota(
    tx: &mut Transaction<'_>,
    addr: &str,
    account: i64,
    quota: u64,
    size: u64,
) -> Result<u64> {
    let used = from_db(
        tx.query_one("SELECT used FROM accounts WHERE id = $1", &[&account])?
            .get(0),
        "usage",
    )?;
    if used.saturating_add(size) > quota {
        return Err(Error::QuotaExceeded {
            address: addr.to_string(),
            used,
            size,
            quota,
        });
    }
    Ok(used)
}

/// Stores a message in a folder: quota checked under the account's lock (a refusal
/// writes nothing), the blob held, the row added under the next UID.
pub fn deliver(tx: &mut Transaction<'_>, node: &Node, d: &Delivery) -> Result<Delivered> {
    let (account, quota) = account_id(tx, &d.address, true)?;
    let folder = folder_id(tx, account, &d.folder)?;
    let flags = flag_set(d.flags.iter().map(String::as_str))?;
    let size = d.bytes.len() as u64;
    let used = check_quota(tx, &d.address, account, quota, size)?;
    blobs::hold(tx, &d.hash, &d.bytes)?;
    let meta = MessageMeta {
        uid: 0,
        hash: d.hash.clone(),
        size,
        internaldate: d.internaldate,
        flags: flags.into_iter().collect(),
        modseq: 0,
    };
    let (uidvalidity, uid, modseq) = insert_message(tx, folder, &meta)?;
    announce(tx, node, &d.address, &d.folder)?;
    Ok(Delivered {
        folder: lookup::folder_name(&d.folder)?,
        uidvalidity,
        uid,
        hash: d.hash.clone(),
        size,
        modseq,
        usage: Usage {
            used: used.saturating_add(size),
            quota,
        },
    })
}

/// Live messages of a folder, by UID.
pub fn list(tx: &mut Transaction<'_>, addr: &str, folder: &str) -> Result<Vec<MessageMeta>> {
    let (_, folder) = locate(tx, addr, folder)?;
    tx.query(
        &format!(
            "SELECT {META_COLUMNS} FROM messages WHERE folder_id = $1 AND NOT expunged
             ORDER BY uid"
        ),
        &[&folder],
    )?
    .iter()
    .map(to_meta)
    .collect()
}

/// UIDs expunged after `modseq` (QRESYNC VANISHED), by UID.
pub fn expunged_since(
    tx: &mut Transaction<'_>,
    addr: &str,
    folder: &str,
    modseq: u64,
) -> Result<Vec<u32>> {
    let (_, folder) = locate(tx, addr, folder)?;
    tx.query(
        "SELECT uid FROM messages WHERE folder_id = $1 AND expunged AND modseq > $2 ORDER BY uid",
        &[&folder, &to_db(modseq)],
    )?
    .iter()
    .map(|r| uid_from_db(r.get(0), "uid"))
    .collect()
}

/// Live message `uid` of a folder; with `lock`, its row is locked.
fn live(
    tx: &mut Transaction<'_>,
    folder: i64,
    uid: u32,
    lock: bool,
) -> Result<Option<MessageMeta>> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    tx.query_opt(
        &format!(
            "SELECT {META_COLUMNS} FROM messages WHERE folder_id = $1 AND uid = $2
             AND NOT expunged{lock}"
        ),
        &[&folder, &i64::from(uid)],
    )?
    .map(|r| to_meta(&r))
    .transpose()
}

/// The bytes of a live message.
pub fn fetch(tx: &mut Transaction<'_>, addr: &str, folder: &str, uid: u32) -> Result<Vec<u8>> {
    let (_, folder) = locate(tx, addr, folder)?;
    let hash = live(tx, folder, uid, false)?
        .ok_or(Error::NoSuchMessage(uid))?
        .hash;
    blobs::read(tx, &hash)
}

/// Changes the flags of the given messages (absent UIDs are skipped); each changed
/// message gets a new modseq. Returns the changed messages.
pub fn store_flags(
    tx: &mut Transaction<'_>,
    node: &Node,
    (addr, folder_name): (&str, &str),
    uids: &[u32],
    op: FlagOp,
    flags: &[String],
) -> Result<Vec<MessageMeta>> {
    let (_, folder) = locate(tx, addr, folder_name)?;
    let given = flag_set(flags.iter().map(String::as_str))?;
    lock_folders(tx, &[folder])?;
    let mut changed = Vec::new();
    for &uid in uids {
        let Some(mut meta) = live(tx, folder, uid, true)? else {
            continue;
        };
        let present = flag_set(meta.flags.iter().map(String::as_str))?;
        let new: BTreeSet<String> = match op {
            FlagOp::Add => present.union(&given).cloned().collect(),
            FlagOp::Remove => present.difference(&given).cloned().collect(),
            FlagOp::Replace => given.clone(),
        };
        if new == present {
            continue;
        }
        let modseq = next_modseq(tx, folder)?;
        tx.execute(
            "UPDATE messages SET flags = $1, modseq = $2 WHERE folder_id = $3 AND uid = $4",
            &[&flags_text(&new), &modseq, &folder, &i64::from(uid)],
        )?;
        meta.flags = new.into_iter().collect();
        meta.modseq = from_db(modseq, "modseq")?;
        changed.push(meta);
    }
    if !changed.is_empty() {
        announce(tx, node, addr, folder_name)?;
    }
    Ok(changed)
}

/// Turns live messages into tombstones under one new modseq, releasing their blobs.
fn tombstone(tx: &mut Transaction<'_>, folder: i64, uids: &[u32]) -> Result<()> {
    if uids.is_empty() {
        return Ok(());
    }
    let modseq = next_modseq(tx, folder)?;
    let uids: Vec<i64> = uids.iter().map(|&u| i64::from(u)).collect();
    let released: Vec<String> = tx
        .query(
            "UPDATE messages SET expunged = TRUE, modseq = $1
             WHERE folder_id = $2 AND uid = ANY($3) AND NOT expunged RETURNING blob",
            &[&modseq, &folder, &uids],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect();
    blobs::release(tx, released)
}

/// Removes the messages flagged `\Deleted` (only among `uids` if given). Returns their
/// UIDs.
pub fn expunge(
    tx: &mut Transaction<'_>,
    node: &Node,
    addr: &str,
    folder_name: &str,
    uids: Option<&[u32]>,
) -> Result<Vec<u32>> {
    let (_, folder) = locate(tx, addr, folder_name)?;
    lock_folders(tx, &[folder])?;
    let removed: Vec<u32> = list(tx, addr, folder_name)?
        .into_iter()
        .filter(|m| m.flags.iter().any(|f| f == DELETED))
        .filter(|m| uids.is_none_or(|u| u.contains(&m.uid)))
        .map(|m| m.uid)
        .collect();
    tombstone(tx, folder, &removed)?;
    if !removed.is_empty() {
        announce(tx, node, addr, folder_name)?;
    }
    Ok(removed)
}

/// Copies messages to another folder of the same account (blobs shared); with
/// `remove_source` it is a MOVE. A copy counts against the quota, a move does not.
pub fn copy(
    tx: &mut Transaction<'_>,
    node: &Node,
    (addr, from, to): (&str, &str, &str),
    uids: &[u32],
    remove_source: bool,
) -> Result<Copied> {
    let (account, quota) = account_id(tx, addr, true)?;
    let src = folder_id(tx, account, from)?;
    let dst = folder_id(tx, account, to)?;
    lock_folders(tx, &[src, dst])?;
    let mut sources = Vec::new();
    for uid in uids.iter().copied().collect::<BTreeSet<u32>>() {
        if let Some(meta) = live(tx, src, uid, remove_source)? {
            sources.push(meta);
        }
    }
    if !remove_source {
        let size = sources.iter().map(|m| m.size).sum();
        check_quota(tx, addr, account, quota, size)?;
    }
    let mut uidvalidity = uid_from_db(
        tx.query_one("SELECT uidvalidity FROM folders WHERE id = $1", &[&dst])?
            .get(0),
        "uidvalidity",
    )?;
    let mut pairs = Vec::with_capacity(sources.len());
    for m in &sources {
        if !blobs::add_ref(tx, &m.hash)? {
            return Err(Error::BlobMissing(m.hash.clone()));
        }
        let (validity, uid, _) = insert_message(tx, dst, m)?;
        uidvalidity = validity;
        pairs.push((m.uid, uid));
    }
    if remove_source {
        let moved: Vec<u32> = sources.iter().map(|m| m.uid).collect();
        tombstone(tx, src, &moved)?;
    }
    if !pairs.is_empty() {
        announce(tx, node, addr, to)?;
        if remove_source {
            announce(tx, node, addr, from)?;
        }
    }
    Ok(Copied {
        uidvalidity,
        uids: pairs,
    })
}

/// Columns of an [`ArchiveEntry`], read by [`to_archive`].
const ARCHIVE_COLUMNS: &str = "id, address, uid, blob, size, direction, kind, stored_at";

/// Builds an [`ArchiveEntry`] from a row of [`ARCHIVE_COLUMNS`].
fn to_archive(r: &postgres::Row) -> Result<ArchiveEntry> {
    let direction: String = r.get(5);
    Ok(ArchiveEntry {
        id: r.get(0),
        address: r.get(1),
        uid: uid_from_db(r.get(2), "archive uid")?,
        hash: r.get(3),
        size: from_db(r.get(4), "archive size")?,
        direction: Direction::parse(&direction)
            .ok_or_else(|| Error::Corrupt(format!("archive direction {direction:?}")))?,
        kind: r.get(6),
        stored_at: r.get(7),
    })
}

/// Columns of an archive entry as a message of its folder, read by [`to_archive_meta`].
const ARCHIVE_META_COLUMNS: &str = "a.uid, a.blob, a.size, a.stored_at, a.modseq,
    EXISTS (SELECT 1 FROM archive_seen s WHERE s.archive_id = a.id)";

/// Builds a [`MessageMeta`] from a row of [`ARCHIVE_META_COLUMNS`].
fn to_archive_meta(r: &postgres::Row) -> Result<MessageMeta> {
    Ok(MessageMeta {
        uid: uid_from_db(r.get(0), "archive uid")?,
        hash: r.get(1),
        size: from_db(r.get(2), "archive size")?,
        internaldate: r.get(3),
        flags: archive::seen_flags(r.get(5)),
        modseq: from_db(r.get(4), "archive modseq")?,
    })
}

/// Tells the other nodes that the archive folder of `addr` (lowercase) changed.
fn announce_archive(tx: &mut Transaction<'_>, node: &Node, addr: &str) -> Result<()> {
    announce(tx, node, addr, ARCHIVE_FOLDER)
}

/// Makes the archive folder of `addr` (lowercase) if it has none yet.
fn ensure_archive_folder(tx: &mut Transaction<'_>, addr: &str) -> Result<()> {
    tx.execute(
        &format!(
            "INSERT INTO archive_folders (address, uidvalidity)
             VALUES ($1, {}) ON CONFLICT (address) DO NOTHING",
            archive::NEW_UIDVALIDITY
        ),
        &[&addr],
    )?;
    Ok(())
}

/// Stores a copy of `bytes` (hashed by the caller as `hash`) in the security archive,
/// under the next UID and modseq of its address's archive folder.
pub fn archive(
    tx: &mut Transaction<'_>,
    node: &Node,
    (addr, hash, bytes): (&str, &str, &[u8]),
    direction: Direction,
    kind: &str,
    at: i64,
) -> Result<ArchiveEntry> {
    let (addr, _) = lookup::address(addr)?;
    blobs::hold(tx, hash, bytes)?;
    ensure_archive_folder(tx, &addr)?;
    let next = tx.query_one(
        "UPDATE archive_folders SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1,
         used = used + $2 WHERE address = $1 RETURNING uidnext - 1, highestmodseq",
        &[&addr, &to_db(bytes.len() as u64)],
    )?;
    let (uid, modseq): (i64, i64) = (next.get(0), next.get(1));
    let row = tx.query_one(
        &format!(
            "INSERT INTO archive (address, uid, modseq, blob, size, direction, kind, stored_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {ARCHIVE_COLUMNS}"
        ),
        &[
            &addr,
            &uid,
            &modseq,
            &hash,
            &to_db(bytes.len() as u64),
            &direction.as_str(),
            &kind,
            &at,
        ],
    )?;
    announce_archive(tx, node, &addr)?;
    to_archive(&row)
}

/// An address's archive entries, in arrival (UID) order.
pub fn list_archive(tx: &mut Transaction<'_>, addr: &str) -> Result<Vec<ArchiveEntry>> {
    let (addr, _) = lookup::address(addr)?;
    tx.query(
        &format!("SELECT {ARCHIVE_COLUMNS} FROM archive WHERE address = $1 ORDER BY uid"),
        &[&addr],
    )?
    .iter()
    .map(to_archive)
    .collect()
}

/// The bytes of an archive entry.
pub fn read_archive(tx: &mut Transaction<'_>, id: i64) -> Result<Vec<u8>> {
    let hash: String = tx
        .query_opt("SELECT blob FROM archive WHERE id = $1", &[&id])?
        .map(|r| r.get(0))
        .ok_or_else(|| Error::Corrupt(format!("no archive entry {id}")))?;
    blobs::read(tx, &hash)
}

/// The bytes of the entry `uid` of the archive folder of `addr` (one index lookup).
pub fn read_archive_of(tx: &mut Transaction<'_>, addr: &str, uid: u32) -> Result<Vec<u8>> {
    let (addr, _) = lookup::address(addr)?;
    let hash: String = tx
        .query_opt(
            "SELECT blob FROM archive WHERE address = $1 AND uid = $2",
            &[&addr, &i64::from(uid)],
        )?
        .map(|r| r.get(0))
        .ok_or(Error::NoSuchMessage(uid))?;
    blobs::read(tx, &hash)
}

/// What SELECT reports about the archive folder of `addr`, `None` if it has none yet.
pub fn archive_folder(tx: &mut Transaction<'_>, addr: &str) -> Result<Option<Selected>> {
    let (addr, _) = lookup::address(addr)?;
    tx.query_opt(
        "SELECT uidvalidity, uidnext, highestmodseq,
                (SELECT count(*) FROM archive WHERE address = f.address)
         FROM archive_folders f WHERE address = $1",
        &[&addr],
    )?
    .map(|r| {
        Ok(Selected {
            uidvalidity: uid_from_db(r.get(0), "archive uidvalidity")?,
            uidnext: uid_from_db(r.get(1), "archive uidnext")?,
            highestmodseq: from_db(r.get(2), "archive highestmodseq")?,
            exists: uid_from_db(r.get(3), "archive exists")?,
        })
    })
    .transpose()
}

/// Makes the archive folder of `addr` if it has none yet and reports it as SELECT does.
pub fn make_archive_folder(tx: &mut Transaction<'_>, addr: &str) -> Result<Selected> {
    ensure_archive_folder(tx, &lookup::address(addr)?.0)?;
    archive_folder(tx, addr)?
        .ok_or_else(|| Error::Corrupt(format!("archive folder of {addr} vanished")))
}

/// The entries of the archive folder of `addr` as messages, by UID.
pub fn archive_messages(tx: &mut Transaction<'_>, addr: &str) -> Result<Vec<MessageMeta>> {
    let (addr, _) = lookup::address(addr)?;
    tx.query(
        &format!(
            "SELECT {ARCHIVE_META_COLUMNS} FROM archive a WHERE a.address = $1 ORDER BY a.uid"
        ),
        &[&addr],
    )?
    .iter()
    .map(to_archive_meta)
    .collect()
}

/// Marks the entries `uids` of the archive folder of `addr` read (or not), those changed
/// after `unchanged_since` excepted (see [`archive::plan_seen`]); UIDs it does not have
/// are ignored. The entries that change get one new modseq, the folder's next, taken
/// under the folder row's lock.
pub fn set_archive_seen(
    tx: &mut Transaction<'_>,
    node: &Node,
    addr: &str,
    uids: &[u32],
    on: bool,
    unchanged_since: Option<u64>,
) -> Result<SeenStored> {
    let (addr, _) = lookup::address(addr)?;
    // The folder's row lock first: two STOREs of one folder see each other's marks.
    if tx
        .query_opt(
            "SELECT 1 FROM archive_folders WHERE address = $1 FOR UPDATE",
            &[&addr],
        )?
        .is_none()
    {
        return Ok(SeenStored::default());
    }
    let wanted: Vec<i64> = uids.iter().map(|&u| i64::from(u)).collect();
    let entries = tx
        .query(
            "SELECT a.uid, a.modseq, EXISTS (SELECT 1 FROM archive_seen s WHERE s.archive_id = a.id)
             FROM archive a WHERE a.address = $1 AND a.uid = ANY($2) ORDER BY a.uid",
            &[&addr, &wanted],
        )?
        .iter()
        .map(|r| {
            Ok((
                uid_from_db(r.get(0), "archive uid")?,
                from_db(r.get(1), "archive modseq")?,
                r.get(2),
            ))
        })
        .collect::<Result<Vec<(u32, u64, bool)>>>()?;
    let (change, modified) = archive::plan_seen(&entries, on, unchanged_since);
    if change.is_empty() {
        return Ok(SeenStored {
            changed: Vec::new(),
            modified,
        });
    }
    let change: Vec<i64> = change.into_iter().map(i64::from).collect();
    let modseq: i64 = tx
        .query_one(
            "UPDATE archive_folders SET highestmodseq = highestmodseq + 1 WHERE address = $1
             RETURNING highestmodseq",
            &[&addr],
        )?
        .get(0);
    if on {
        tx.execute(
            "INSERT INTO archive_seen (archive_id)
             SELECT id FROM archive WHERE address = $1 AND uid = ANY($2)
             ON CONFLICT DO NOTHING",
            &[&addr, &change],
        )?;
    } else {
        tx.execute(
            "DELETE FROM archive_seen WHERE archive_id IN
             (SELECT id FROM archive WHERE address = $1 AND uid = ANY($2))",
            &[&addr, &change],
        )?;
    }
    tx.execute(
        "UPDATE archive SET modseq = $3 WHERE address = $1 AND uid = ANY($2)",
        &[&addr, &change, &modseq],
    )?;
    let changed = tx
        .query(
            &format!(
                "SELECT {ARCHIVE_META_COLUMNS} FROM archive a
                 WHERE a.address = $1 AND a.uid = ANY($2) ORDER BY a.uid"
            ),
            &[&addr, &change],
        )?
        .iter()
        .map(to_archive_meta)
        .collect::<Result<_>>()?;
    announce_archive(tx, node, &addr)?;
    Ok(SeenStored { changed, modified })
}

/// Deletes archive entries stored before `cutoff`; returns how many.
pub fn purge_archive(tx: &mut Transaction<'_>, cutoff: i64) -> Result<u64> {
    // What goes comes off each archive's bytes used, before the entries go.
    tx.execute(
        "UPDATE archive_folders SET used = used - (
             SELECT COALESCE(SUM(size), 0) FROM archive
             WHERE archive.address = archive_folders.address AND stored_at < $1)
         WHERE address IN (SELECT address FROM archive WHERE stored_at < $1)",
        &[&cutoff],
    )?;
    blobs::purge_stored_before(tx, "archive", cutoff)
}

/// The options of `addr`'s archive ([`ArchiveOptions::default`] without a row).
pub fn archive_options(tx: &mut Transaction<'_>, addr: &str) -> Result<ArchiveOptions> {
    let (addr, _) = lookup::address(addr)?;
    let row = tx.query_opt(
        "SELECT scope, sent, received, quota FROM archive_options WHERE address = $1",
        &[&addr],
    )?;
    row.map_or(Ok(ArchiveOptions::default()), |r| {
        archive::options_from_db(r.get(0), r.get(1), r.get(2), r.get(3))
    })
}

/// Sets the options of the archive of `addr`, which must be a mailbox.
pub fn set_archive_options(tx: &mut Transaction<'_>, addr: &str, o: &ArchiveOptions) -> Result<()> {
    let (addr, _) = lookup::address(addr)?;
    account_id(tx, &addr, false)?;
    if o.quota == 0 {
        return Err(Error::InvalidName("archive quota 0".to_string()));
    }
    tx.execute(
        "INSERT INTO archive_options (address, scope, sent, received, quota)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (address) DO UPDATE SET scope = excluded.scope, sent = excluded.sent,
             received = excluded.received, quota = excluded.quota",
        &[
            &addr,
            &o.scope.as_str(),
            &o.sent,
            &o.received,
            &to_db(o.quota),
        ],
    )?;
    Ok(())
}

/// Bytes held by `addr`'s archive and its quota.
pub fn archive_usage(tx: &mut Transaction<'_>, addr: &str) -> Result<Usage> {
    let (addr, _) = lookup::address(addr)?;
    let used: Option<i64> = tx
        .query_opt(
            "SELECT used FROM archive_folders WHERE address = $1",
            &[&addr],
        )?
        .map(|r| r.get(0));
    Ok(Usage {
        used: from_db(used.unwrap_or(0), "archive usage")?,
        quota: archive_options(tx, &addr)?.quota,
    })
}

/// What becomes of a copy of `size` bytes for `addr`'s archive (see
/// [`ArchiveOptions::admit`]).
pub fn admit_archive(
    tx: &mut Transaction<'_>,
    addr: &str,
    direction: Direction,
    kind: &str,
    size: u64,
) -> Result<Admission> {
    let u = archive_usage(tx, addr)?;
    Ok(archive_options(tx, addr)?.admit(direction, kind, u.used, size))
}
