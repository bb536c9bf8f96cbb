//! The security archive (SQLite backend): a copy of PEC traffic per address,
//! kept apart from mailboxes and outside quotas; purged by age on the
//! caller's retention policy. Each address's archive is a folder of its own for IMAP:
//! its entries have UIDs from 1 in arrival order and a modseq, its counters
//! (UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ) are a row of `archive_folders`, and the only
//! thing that changes about an entry is its read mark (`\Seen`).

use rusqlite::{Connection, OptionalExtension, params};

use crate::blobs::{self, SqliteBlobs};
use crate::cached;
use crate::error::{Error, Result};
use crate::lookup::{self, from_db, to_db, uid_from_db};
use crate::model::{
    Admission, ArchiveEntry, ArchiveOptions, ArchiveScope, Direction, MessageMeta, SeenStored,
    Selected, Usage,
};

/// Columns read by [`to_entry`].
const COLUMNS: &str = "id, address, uid, blob, size, direction, kind, stored_at";

/// Reads an [`ArchiveEntry`] from a row of [`COLUMNS`].
fn to_entry(r: &rusqlite::Row<'_>) -> Result<ArchiveEntry> {
    let direction: String = r.get(5)?;
    Ok(ArchiveEntry {
        id: r.get(0)?,
        address: r.get(1)?,
        uid: uid_from_db(r.get(2)?, "archive uid")?,
        hash: r.get(3)?,
        size: from_db(r.get(4)?, "archive size")?,
        direction: Direction::parse(&direction)
            .ok_or_else(|| Error::Corrupt(format!("archive direction {direction:?}")))?,
        kind: r.get(6)?,
        stored_at: r.get(7)?,
    })
}

/// Columns read by [`to_meta`]: an entry as a message of the archive folder.
const META_COLUMNS: &str = "a.uid, a.blob, a.size, a.stored_at, a.modseq,
    EXISTS (SELECT 1 FROM archive_seen s WHERE s.archive_id = a.id)";

/// Reads a [`MessageMeta`] from a row of [`META_COLUMNS`].
fn to_meta(r: &rusqlite::Row<'_>) -> Result<MessageMeta> {
    Ok(MessageMeta {
        uid: uid_from_db(r.get(0)?, "archive uid")?,
        hash: r.get(1)?,
        size: from_db(r.get(2)?, "archive size")?,
        internaldate: r.get(3)?,
        flags: seen_flags(r.get(5)?),
        modseq: from_db(r.get(4)?, "archive modseq")?,
    })
}

/// The flags of an archive entry: `\Seen` or none.
pub(crate) fn seen_flags(seen: bool) -> Vec<String> {
    if seen {
        vec![SEEN.to_string()]
    } else {
        Vec::new()
    }
}

/// The only flag of the archive folder.
const SEEN: &str = "\\Seen";

/// The UIDVALIDITY of an address's archive folder made now: one more than the highest
/// given so far, starting at 2. An archive folder is never deleted (its row outlives the
/// account), so its UIDVALIDITY never changes; 1 is never given, because under
/// UIDVALIDITY 1 the archive's UIDs used to be global entry ids, which a client may
/// still have cached. Two folders made at once by two nodes may share a value, which
/// is harmless: UIDVALIDITY is per folder.
pub(crate) const NEW_UIDVALIDITY: &str =
    "(SELECT COALESCE(MAX(uidvalidity), 1) + 1 FROM archive_folders)";

/// Makes the archive folder of `addr` (lowercase) if it has none yet.
fn ensure_folder(conn: &Connection, addr: &str) -> Result<()> {
    cached::execute(
        conn,
        &format!(
            "INSERT INTO archive_folders (address, uidvalidity) VALUES (?1, {NEW_UIDVALIDITY})
             ON CONFLICT (address) DO NOTHING"
        ),
        [addr],
    )?;
    Ok(())
}

/// Stores a copy of `bytes` (blob first, durable before the row commits) under the
/// next UID and modseq of its address's archive folder.
pub fn archive(
    conn: &Connection,
    blobs: &SqliteBlobs,
    (addr, hash, bytes): (&str, &str, &[u8]),
    direction: Direction,
    kind: &str,
    at: i64,
) -> Result<ArchiveEntry> {
    let (addr, _) = lookup::address(addr)?;
    blobs.store(conn, hash, bytes)?;
    ensure_folder(conn, &addr)?;
    let (uid, modseq): (i64, i64) = cached::query_row(
        conn,
        "UPDATE archive_folders SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1,
         used = used + ?2 WHERE address = ?1 RETURNING uidnext - 1, highestmodseq",
        params![&addr, to_db(bytes.len() as u64)],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let id: i64 = cached::query_row(
        conn,
        "INSERT INTO archive (address, uid, modseq, blob, size, direction, kind, stored_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING id",
        params![
            addr,
            uid,
            modseq,
            hash,
            to_db(bytes.len() as u64),
            direction.as_str(),
            kind,
            at
        ],
        |r| r.get(0),
    )?;
    Ok(ArchiveEntry {
        id,
        address: addr,
        uid: uid_from_db(uid, "archive uid")?,
        hash: hash.to_string(),
        size: bytes.len() as u64,
        direction,
        kind: kind.to_string(),
        stored_at: at,
    })
}

/// Blob hash of an archive entry.
pub fn blob_of(conn: &Connection, id: i64) -> Result<Option<String>> {
    Ok(conn
        .query_row("SELECT blob FROM archive WHERE id = ?1", [id], |r| r.get(0))
        .optional()?)
}

/// Blob hash of the entry `uid` of the archive folder of `addr` (one index lookup).
pub fn blob_of_uid(conn: &Connection, addr: &str, uid: u32) -> Result<Option<String>> {
    let (addr, _) = lookup::address(addr)?;
    Ok(cached::query_row(
        conn,
        "SELECT blob FROM archive WHERE address = ?1 AND uid = ?2",
        params![addr, uid],
        |r| r.get(0),
    )
    .optional()?)
}

/// An address's archive entries, in arrival (UID) order.
pub fn list(conn: &Connection, addr: &str) -> Result<Vec<ArchiveEntry>> {
    let (addr, _) = lookup::address(addr)?;
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM archive WHERE address = ?1 ORDER BY uid"
    ))?;
    let mut rows = stmt.query([addr])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(to_entry(r)?);
    }
    Ok(out)
}

/// The entries of the archive folder of `addr` as messages, by UID.
pub fn messages(conn: &Connection, addr: &str) -> Result<Vec<MessageMeta>> {
    let (addr, _) = lookup::address(addr)?;
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {META_COLUMNS} FROM archive a WHERE a.address = ?1 ORDER BY a.uid"
    ))?;
    let mut rows = stmt.query([addr])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(to_meta(r)?);
    }
    Ok(out)
}

/// What SELECT reports about the archive folder of `addr`, `None` if it has none yet.
pub fn folder(conn: &Connection, addr: &str) -> Result<Option<Selected>> {
    let (addr, _) = lookup::address(addr)?;
    let row: Option<(i64, i64, i64, i64)> = cached::query_row(
        conn,
        "SELECT uidvalidity, uidnext, highestmodseq,
                (SELECT count(*) FROM archive WHERE address = f.address)
         FROM archive_folders f WHERE address = ?1",
        [&addr],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )
    .optional()?;
    row.map(|(uidvalidity, uidnext, highestmodseq, exists)| {
        Ok(Selected {
            uidvalidity: uid_from_db(uidvalidity, "archive uidvalidity")?,
            uidnext: uid_from_db(uidnext, "archive uidnext")?,
            highestmodseq: from_db(highestmodseq, "archive highestmodseq")?,
            exists: uid_from_db(exists, "archive exists")?,
        })
    })
    .transpose()
}

/// Makes the archive folder of `addr` if it has none yet and reports it as SELECT does.
pub fn make_folder(conn: &Connection, addr: &str) -> Result<Selected> {
    ensure_folder(conn, &lookup::address(addr)?.0)?;
    folder(conn, addr)?.ok_or_else(|| Error::Corrupt(format!("archive folder of {addr} vanished")))
}

/// Which of the entries `(uid, modseq, seen)` a STORE of `\Seen` = `on` changes, and
/// which it leaves alone because they changed after `unchanged_since` (RFC 7162 3.1.3):
/// the rule both backends follow.
pub(crate) fn plan_seen(
    entries: &[(u32, u64, bool)],
    on: bool,
    unchanged_since: Option<u64>,
) -> (Vec<u32>, Vec<u32>) {
    let mut change = Vec::new();
    let mut modified = Vec::new();
    for &(uid, modseq, seen) in entries {
        if unchanged_since.is_some_and(|limit| modseq > limit) {
            modified.push(uid);
        } else if seen != on {
            change.push(uid);
        }
    }
    (change, modified)
}

/// Marks the entries `uids` of the archive folder of `addr` read (or not), those
/// changed after `unchanged_since` excepted; UIDs it does not have are ignored. The
/// entries that change get one new modseq, the folder's next.
pub fn set_seen(
    conn: &Connection,
    addr: &str,
    uids: &[u32],
    on: bool,
    unchanged_since: Option<u64>,
) -> Result<SeenStored> {
    let (addr, _) = lookup::address(addr)?;
    let mut entries = Vec::new();
    for &uid in uids {
        let row: Option<(i64, bool)> = cached::query_row(
            conn,
            "SELECT a.modseq, EXISTS (SELECT 1 FROM archive_seen s WHERE s.archive_id = a.id)
             FROM archive a WHERE a.address = ?1 AND a.uid = ?2",
            params![addr, uid],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
        if let Some((modseq, seen)) = row {
            entries.push((uid, from_db(modseq, "archive modseq")?, seen));
        }
    }
    let (change, modified) = plan_seen(&entries, on, unchanged_since);
    let mut changed = Vec::new();
    if change.is_empty() {
        return Ok(SeenStored { changed, modified });
    }
    let modseq: i64 = cached::query_row(
        conn,
        "UPDATE archive_folders SET highestmodseq = highestmodseq + 1 WHERE address = ?1
         RETURNING highestmodseq",
        [&addr],
        |r| r.get(0),
    )?;
    let mark = if on {
        "INSERT OR IGNORE INTO archive_seen (archive_id)
         SELECT id FROM archive WHERE address = ?1 AND uid = ?2"
    } else {
        "DELETE FROM archive_seen
         WHERE archive_id = (SELECT id FROM archive WHERE address = ?1 AND uid = ?2)"
    };
    for uid in change {
        cached::execute(conn, mark, params![addr, uid])?;
        cached::execute(
            conn,
            "UPDATE archive SET modseq = ?3 WHERE address = ?1 AND uid = ?2",
            params![addr, uid, modseq],
        )?;
        changed.push(cached::query_row(
            conn,
            &format!("SELECT {META_COLUMNS} FROM archive a WHERE a.address = ?1 AND a.uid = ?2"),
            params![addr, uid],
            |r| Ok(to_meta(r)),
        )??);
    }
    Ok(SeenStored { changed, modified })
}

/// Deletes entries stored before `cutoff`; returns how many.
pub fn purge(conn: &Connection, cutoff: i64) -> Result<u64> {
    cached::execute(conn, PURGE_USED, [cutoff])?;
    let n = blobs::unreference(
        conn,
        "DELETE FROM archive WHERE stored_at < ?1 RETURNING blob",
        [cutoff],
    )?;
    Ok(n as u64)
}

/// Takes what a purge before `?1` removes off each archive's bytes used (run before the
/// entries go).
const PURGE_USED: &str = "UPDATE archive_folders SET used = used - (
        SELECT COALESCE(SUM(size), 0) FROM archive
        WHERE archive.address = archive_folders.address AND stored_at < ?1)
    WHERE address IN (SELECT address FROM archive WHERE stored_at < ?1)";

/// The options of `addr`'s archive ([`ArchiveOptions::default`] without a row).
pub fn options(conn: &Connection, addr: &str) -> Result<ArchiveOptions> {
    let (addr, _) = lookup::address(addr)?;
    let row: Option<(String, bool, bool, i64)> = cached::query_row(
        conn,
        "SELECT scope, sent, received, quota FROM archive_options WHERE address = ?1",
        [&addr],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )
    .optional()?;
    row.map_or(
        Ok(ArchiveOptions::default()),
        |(scope, sent, received, quota)| options_from_db(&scope, sent, received, quota),
    )
}

/// Reads stored options, refusing what the schema's checks should have kept out.
pub(crate) fn options_from_db(
    scope: &str,
    sent: bool,
    received: bool,
    quota: i64,
) -> Result<ArchiveOptions> {
    Ok(ArchiveOptions {
        scope: ArchiveScope::parse(scope)
            .ok_or_else(|| Error::Corrupt(format!("archive scope {scope:?}")))?,
        sent,
        received,
        quota: from_db(quota, "archive quota")?,
    })
}

/// Sets the options of the archive of `addr`, which must be a mailbox.
pub fn set_options(conn: &Connection, addr: &str, o: &ArchiveOptions) -> Result<()> {
    let (addr, _) = lookup::address(addr)?;
    lookup::account(conn, &addr)?;
    if o.quota == 0 {
        return Err(Error::InvalidName("archive quota 0".to_string()));
    }
    cached::execute(
        conn,
        "INSERT INTO archive_options (address, scope, sent, received, quota)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (address) DO UPDATE SET scope = excluded.scope, sent = excluded.sent,
             received = excluded.received, quota = excluded.quota",
        params![addr, o.scope.as_str(), o.sent, o.received, to_db(o.quota)],
    )?;
    Ok(())
}

/// Bytes held by `addr`'s archive and its quota.
pub fn usage(conn: &Connection, addr: &str) -> Result<Usage> {
    let (addr, _) = lookup::address(addr)?;
    Ok(Usage {
        used: used(conn, &addr)?,
        quota: options(conn, &addr)?.quota,
    })
}

/// Bytes held by the archive of `addr` (an address already checked and lower-cased).
fn used(conn: &Connection, addr: &str) -> Result<u64> {
    let used: Option<i64> = cached::query_row(
        conn,
        "SELECT used FROM archive_folders WHERE address = ?1",
        [addr],
        |r| r.get(0),
    )
    .optional()?;
    from_db(used.unwrap_or(0), "archive usage")
}

/// What becomes of a copy of `size` bytes for `addr`'s archive (see
/// [`ArchiveOptions::admit`]).
pub fn admit(
    conn: &Connection,
    addr: &str,
    direction: Direction,
    kind: &str,
    size: u64,
) -> Result<Admission> {
    let (addr, _) = lookup::address(addr)?;
    let used = used(conn, &addr)?;
    Ok(options(conn, &addr)?.admit(direction, kind, used, size))
}
