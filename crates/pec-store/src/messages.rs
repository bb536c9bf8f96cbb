//! Messages in folders (SQLite backend): delivery with quota, listing,
//! flags with modification sequences, expunge tombstones, copy and move.
//!
//! These functions run on the writer thread inside a group transaction
//! (reads also run on the reader connection).

use std::collections::BTreeSet;

use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::blobs::{self, SqliteBlobs};
use crate::cached;
use crate::error::{Error, Result};
use crate::lookup::{self, from_db, to_db, uid_from_db};
use crate::model::{Copied, Delivered, FlagOp, MessageMeta, Usage};

/// The flag whose messages EXPUNGE removes.
pub(crate) const DELETED: &str = "\\Deleted";

/// A validated, sorted, duplicate-free flag set.
pub(crate) fn flag_set<'a>(flags: impl IntoIterator<Item = &'a str>) -> Result<BTreeSet<String>> {
    flags
        .into_iter()
        .map(|f| {
            let bad = f.is_empty()
                || f.len() > 255
                || f.chars().any(|c| c.is_whitespace() || c.is_control());
            if bad {
                Err(Error::InvalidName(f.to_string()))
            } else {
                Ok(f.to_string())
            }
        })
        .collect()
}

/// The stored spelling of a flag set: space-separated.
pub(crate) fn flags_text(set: &BTreeSet<String>) -> String {
    set.iter().map(String::as_str).collect::<Vec<_>>().join(" ")
}

/// Columns read by [`meta_row`].
const META_COLUMNS: &str = "uid, blob, size, internaldate, flags, modseq";

/// Reads a [`MessageMeta`] from a row of [`META_COLUMNS`].
fn meta_row(r: &Row<'_>) -> rusqlite::Result<(i64, String, i64, i64, String, i64)> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

/// Converts the raw row into a [`MessageMeta`].
fn to_meta(row: (i64, String, i64, i64, String, i64)) -> Result<MessageMeta> {
    let (uid, hash, size, internaldate, flags, modseq) = row;
    Ok(MessageMeta {
        uid: uid_from_db(uid, "uid")?,
        hash,
        size: from_db(size, "size")?,
        internaldate,
        flags: flags.split_whitespace().map(str::to_string).collect(),
        modseq: from_db(modseq, "modseq")?,
    })
}

/// Takes the next UID and modification sequence of a folder: `(uidvalidity, uid, modseq)`.
fn next_uid(conn: &Connection, folder_id: i64) -> Result<(u32, u32, u64)> {
    let (uidvalidity, uidnext, modseq): (i64, i64, i64) = cached::query_row(
        conn,
        "UPDATE folders SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1
         WHERE id = ?1 RETURNING uidvalidity, uidnext, highestmodseq",
        [folder_id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    Ok((
        uid_from_db(uidvalidity, "uidvalidity")?,
        uid_from_db(uidnext - 1, "uid")?,
        from_db(modseq, "highestmodseq")?,
    ))
}

/// Adds a message row under the folder's next UID: `(uidvalidity, uid, modseq)`.
fn insert_message(
    conn: &Connection,
    folder_id: i64,
    hash: &str,
    size: u64,
    internaldate: i64,
    flags: &str,
) -> Result<(u32, u32, u64)> {
    let (uidvalidity, uid, modseq) = next_uid(conn, folder_id)?;
    cached::execute(
        conn,
        "INSERT INTO messages (folder_id, uid, blob, size, internaldate, flags, modseq)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            folder_id,
            uid,
            hash,
            to_db(size),
            internaldate,
            flags,
            to_db(modseq)
        ],
    )?;
    Ok((uidvalidity, uid, modseq))
}

/// Takes the next modification sequence of a folder.
fn next_modseq(conn: &Connection, folder_id: i64) -> Result<i64> {
    Ok(cached::query_row(
        conn,
        "UPDATE folders SET highestmodseq = highestmodseq + 1 WHERE id = ?1
         RETURNING highestmodseq",
        [folder_id],
        |r| r.get(0),
    )?)
}

/// A message to deliver, with its hash computed off the writer thread.
pub struct Delivery {
    /// Account address.
    pub address: String,
    /// Destination folder.
    pub folder: String,
    /// The message bytes, stored unchanged.
    pub bytes: Vec<u8>,
    /// SHA-256 hex of `bytes`.
    pub hash: String,
    /// Initial flags.
    pub flags: Vec<String>,
    /// INTERNALDATE, seconds since the Unix epoch.
    pub internaldate: i64,
}

impl Delivery {
    /// A delivery of `bytes`, hashed here (off the writer thread) so that every backend
    /// names its blob the same way.
    pub fn new(
        address: String,
        folder: String,
        bytes: Vec<u8>,
        flags: Vec<String>,
        internaldate: i64,
    ) -> Self {
        Delivery {
            hash: crate::blobs::hash_hex(&bytes),
            address,
            folder,
            bytes,
            flags,
            internaldate,
        }
    }
}

/// Stores a message: quota check first (a refusal writes nothing), then the
/// blob (durable before the transaction commits), then the row.
pub fn deliver(conn: &Connection, blobs: &SqliteBlobs, d: &Delivery) -> Result<Delivered> {
    let (account_id, quota) = lookup::account(conn, &d.address)?;
    let folder_id = lookup::folder(conn, account_id, &d.folder)?;
    let flags = flag_set(d.flags.iter().map(String::as_str))?;
    let size = d.bytes.len() as u64;
    let used = lookup::check_quota(conn, &d.address, account_id, quota, size)?;
    blobs.store(conn, &d.hash, &d.bytes)?;
    let (uidvalidity, uid, modseq) = insert_message(
        conn,
        folder_id,
        &d.hash,
        size,
        d.internaldate,
        &flags_text(&flags),
    )?;
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

/// Live (not expunged) messages of a folder, by UID.
pub fn list(conn: &Connection, addr: &str, folder: &str) -> Result<Vec<MessageMeta>> {
    let (account_id, _) = lookup::account(conn, addr)?;
    let folder_id = lookup::folder(conn, account_id, folder)?;
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {META_COLUMNS} FROM messages WHERE folder_id = ?1 AND expunged = 0 ORDER BY uid"
    ))?;
    let rows = stmt.query_map([folder_id], meta_row)?;
    rows.map(|row| to_meta(row?)).collect()
}

/// UIDs expunged after `modseq` (QRESYNC VANISHED), by UID.
pub fn expunged_since(
    conn: &Connection,
    addr: &str,
    folder: &str,
    modseq: u64,
) -> Result<Vec<u32>> {
    let (account_id, _) = lookup::account(conn, addr)?;
    let folder_id = lookup::folder(conn, account_id, folder)?;
    let mut stmt = conn.prepare_cached(
        "SELECT uid FROM messages WHERE folder_id = ?1 AND expunged = 1 AND modseq > ?2
         ORDER BY uid",
    )?;
    let rows = stmt.query_map(params![folder_id, to_db(modseq)], |r| r.get::<_, i64>(0))?;
    rows.map(|uid| uid_from_db(uid?, "uid")).collect()
}

/// Live message `uid` of a folder, with its folder's row id.
fn live(conn: &Connection, folder_id: i64, uid: u32) -> Result<Option<MessageMeta>> {
    cached::query_row(
        conn,
        &format!(
            "SELECT {META_COLUMNS} FROM messages
             WHERE folder_id = ?1 AND uid = ?2 AND expunged = 0"
        ),
        params![folder_id, uid],
        meta_row,
    )
    .optional()?
    .map(to_meta)
    .transpose()
}

/// Blob hash of a live message.
pub fn blob_of(conn: &Connection, addr: &str, folder: &str, uid: u32) -> Result<String> {
    let (account_id, _) = lookup::account(conn, addr)?;
    let folder_id = lookup::folder(conn, account_id, folder)?;
    live(conn, folder_id, uid)?
        .map(|m| m.hash)
        .ok_or(Error::NoSuchMessage(uid))
}

/// Changes the flags of the given messages (absent UIDs are skipped, as in
/// IMAP); each changed message gets a new modification sequence. Returns the
/// changed messages.
pub fn store_flags(
    conn: &Connection,
    addr: &str,
    folder: &str,
    uids: &[u32],
    op: FlagOp,
    flags: &[String],
) -> Result<Vec<MessageMeta>> {
    let (account_id, _) = lookup::account(conn, addr)?;
    let folder_id = lookup::folder(conn, account_id, folder)?;
    let given = flag_set(flags.iter().map(String::as_str))?;
    let mut changed = Vec::new();
    for &uid in uids {
        let Some(mut meta) = live(conn, folder_id, uid)? else {
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
        let modseq = next_modseq(conn, folder_id)?;
        cached::execute(
            conn,
            "UPDATE messages SET flags = ?1, modseq = ?2 WHERE folder_id = ?3 AND uid = ?4",
            params![flags_text(&new), modseq, folder_id, uid],
        )?;
        meta.flags = new.into_iter().collect();
        meta.modseq = from_db(modseq, "modseq")?;
        changed.push(meta);
    }
    Ok(changed)
}

/// Turns live messages into tombstones with one new modification sequence.
fn tombstone(conn: &Connection, folder_id: i64, uids: &[u32]) -> Result<()> {
    if uids.is_empty() {
        return Ok(());
    }
    let modseq = next_modseq(conn, folder_id)?;
    for uid in uids {
        blobs::unreference(
            conn,
            "UPDATE messages SET expunged = 1, modseq = ?1
             WHERE folder_id = ?2 AND uid = ?3 AND expunged = 0 RETURNING blob",
            params![modseq, folder_id, uid],
        )?;
    }
    Ok(())
}

/// Removes the messages flagged `\Deleted` (only among `uids` if given, as
/// UID EXPUNGE). Returns the removed UIDs.
pub fn expunge(
    conn: &Connection,
    addr: &str,
    folder: &str,
    uids: Option<&[u32]>,
) -> Result<Vec<u32>> {
    let removed: Vec<u32> = list(conn, addr, folder)?
        .into_iter()
        .filter(|m| m.flags.iter().any(|f| f == DELETED))
        .filter(|m| uids.is_none_or(|u| u.contains(&m.uid)))
        .map(|m| m.uid)
        .collect();
    let (account_id, _) = lookup::account(conn, addr)?;
    let folder_id = lookup::folder(conn, account_id, folder)?;
    tombstone(conn, folder_id, &removed)?;
    Ok(removed)
}

/// Copies messages to another folder of the same account (blobs are shared);
/// with `remove_source` it is a MOVE. A copy counts against the quota, a move
/// does not change usage. Absent UIDs are skipped.
pub fn copy(
    conn: &Connection,
    addr: &str,
    from: &str,
    uids: &[u32],
    to: &str,
    remove_source: bool,
) -> Result<Copied> {
    let (account_id, quota) = lookup::account(conn, addr)?;
    let src = lookup::folder(conn, account_id, from)?;
    let dst = lookup::folder(conn, account_id, to)?;
    let wanted: BTreeSet<u32> = uids.iter().copied().collect();
    let mut sources = Vec::with_capacity(wanted.len());
    for uid in wanted {
        if let Some(meta) = live(conn, src, uid)? {
            sources.push(meta);
        }
    }
    if !remove_source {
        let size = sources.iter().map(|m| m.size).sum();
        lookup::check_quota(conn, addr, account_id, quota, size)?;
    }
    let mut uidvalidity = lookup::uid_from_db(
        cached::query_row(
            conn,
            "SELECT uidvalidity FROM folders WHERE id = ?1",
            [dst],
            |r| r.get(0),
        )?,
        "uidvalidity",
    )?;
    let mut pairs = Vec::with_capacity(sources.len());
    for m in &sources {
        let (validity, uid, _) = insert_message(
            conn,
            dst,
            &m.hash,
            m.size,
            m.internaldate,
            &m.flags.join(" "),
        )?;
        uidvalidity = validity;
        pairs.push((m.uid, uid));
    }
    if remove_source {
        let moved: Vec<u32> = sources.iter().map(|m| m.uid).collect();
        tombstone(conn, src, &moved)?;
    }
    Ok(Copied {
        uidvalidity,
        uids: pairs,
    })
}
