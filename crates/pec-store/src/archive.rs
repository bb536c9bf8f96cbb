//! The security archive (SQLite backend): a copy of PEC traffic per address,
//! kept apart from mailboxes and outside quotas; purged by age on the
//! caller's retention policy.

use rusqlite::{Connection, OptionalExtension, params};

use crate::blobs::{self, SqliteBlobs};
use crate::cached;
use crate::error::{Error, Result};
use crate::lookup::{self, from_db, to_db};
use crate::model::{ArchiveEntry, Direction};

/// Columns read by [`to_entry`].
const COLUMNS: &str = "id, address, blob, size, direction, kind, stored_at";

/// Reads an [`ArchiveEntry`] from a row of [`COLUMNS`].
fn to_entry(r: &rusqlite::Row<'_>) -> Result<ArchiveEntry> {
    let direction: String = r.get(4)?;
    Ok(ArchiveEntry {
        id: r.get(0)?,
        address: r.get(1)?,
        hash: r.get(2)?,
        size: from_db(r.get(3)?, "archive size")?,
        direction: Direction::parse(&direction)
            .ok_or_else(|| Error::Corrupt(format!("archive direction {direction:?}")))?,
        kind: r.get(5)?,
        stored_at: r.get(6)?,
    })
}

/// Stores a copy of `bytes` (blob first, durable before the row commits).
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
    let id: i64 = cached::query_row(
        conn,
        "INSERT INTO archive (address, blob, size, direction, kind, stored_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
        params![
            addr,
            hash,
            to_db(bytes.len() as u64),
            direction.as_str(),
            kind,
            at
        ],
        |r| r.get(0),
    )?;
    get(conn, id)
}

/// One archive entry by id.
pub fn get(conn: &Connection, id: i64) -> Result<ArchiveEntry> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM archive WHERE id = ?1"))?;
    let mut rows = stmt.query([id])?;
    match rows.next()? {
        Some(r) => to_entry(r),
        None => Err(Error::Corrupt(format!("archive entry {id} vanished"))),
    }
}

/// Blob hash of an archive entry.
pub fn blob_of(conn: &Connection, id: i64) -> Result<Option<String>> {
    Ok(conn
        .query_row("SELECT blob FROM archive WHERE id = ?1", [id], |r| r.get(0))
        .optional()?)
}

/// Blob hash of an archive entry of `addr`.
pub fn blob_of_address(conn: &Connection, addr: &str, id: i64) -> Result<Option<String>> {
    let (addr, _) = lookup::address(addr)?;
    Ok(cached::query_row(
        conn,
        "SELECT blob FROM archive WHERE id = ?1 AND address = ?2",
        params![id, addr],
        |r| r.get(0),
    )
    .optional()?)
}

/// An address's archive entries, oldest first.
pub fn list(conn: &Connection, addr: &str) -> Result<Vec<ArchiveEntry>> {
    let (addr, _) = lookup::address(addr)?;
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM archive WHERE address = ?1 ORDER BY stored_at, id"
    ))?;
    let mut rows = stmt.query([addr])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(to_entry(r)?);
    }
    Ok(out)
}

/// Ids of the entries of `addr` marked read.
pub fn seen(conn: &Connection, addr: &str) -> Result<Vec<i64>> {
    let (addr, _) = lookup::address(addr)?;
    let mut stmt = conn.prepare_cached(
        "SELECT s.archive_id FROM archive_seen s JOIN archive a ON a.id = s.archive_id
         WHERE a.address = ?1 ORDER BY s.archive_id",
    )?;
    let rows = stmt.query_map([addr], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Marks entries of `addr` read (or not); ids of other addresses are ignored.
pub fn set_seen(conn: &Connection, addr: &str, ids: &[i64], on: bool) -> Result<()> {
    let (addr, _) = lookup::address(addr)?;
    let sql = if on {
        "INSERT OR IGNORE INTO archive_seen (archive_id)
         SELECT id FROM archive WHERE id = ?1 AND address = ?2"
    } else {
        "DELETE FROM archive_seen
         WHERE archive_id = (SELECT id FROM archive WHERE id = ?1 AND address = ?2)"
    };
    for id in ids {
        cached::execute(conn, sql, params![id, addr])?;
    }
    Ok(())
}

/// Deletes entries stored before `cutoff`; returns how many.
pub fn purge(conn: &Connection, cutoff: i64) -> Result<u64> {
    let n = blobs::unreference(
        conn,
        "DELETE FROM archive WHERE stored_at < ?1 RETURNING blob",
        [cutoff],
    )?;
    Ok(n as u64)
}
