//! The virus store (SQLite backend, spec §8.2): every infected message the
//! gestore detects, kept apart from mailboxes for 30 months and purged by
//! age on the caller's retention policy.

use rusqlite::{Connection, Row, params};

use crate::blobs::{self, SqliteBlobs};
use crate::cached;
use crate::error::{Error, Result};
use crate::lookup::{from_db, list_from_db, list_to_db, to_db};
use crate::model::{NewVirusEntry, VirusEntry};

/// Columns read by [`to_entry`].
const COLUMNS: &str = "id, stored_at, msgid, sender, recipients, virus, blob, size";

/// Reads a [`VirusEntry`] from a row of [`COLUMNS`].
fn to_entry(r: &Row<'_>) -> Result<VirusEntry> {
    let recipients: String = r.get(4)?;
    Ok(VirusEntry {
        id: r.get(0)?,
        stored_at: r.get(1)?,
        msgid: r.get(2)?,
        sender: r.get(3)?,
        recipients: list_from_db(&recipients, "virus store recipients")?,
        virus: r.get(5)?,
        hash: r.get(6)?,
        size: from_db(r.get(7)?, "virus store size")?,
    })
}

/// Stores an infected message (hashed by the caller as `hash`): blob first,
/// durable before the row commits.
pub fn store(
    conn: &Connection,
    blobs: &SqliteBlobs,
    hash: &str,
    e: &NewVirusEntry,
) -> Result<VirusEntry> {
    blobs.store(conn, hash, &e.message)?;
    let id: i64 = cached::query_row(
        conn,
        "INSERT INTO virus_store (stored_at, msgid, sender, recipients, virus, blob, size)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
        params![
            e.at,
            e.msgid,
            e.sender,
            list_to_db(&e.recipients)?,
            e.virus,
            hash,
            to_db(e.message.len() as u64)
        ],
        |r| r.get(0),
    )?;
    get(conn, id)
}

/// One entry by id.
pub fn get(conn: &Connection, id: i64) -> Result<VirusEntry> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {COLUMNS} FROM virus_store WHERE id = ?1"))?;
    let mut rows = stmt.query([id])?;
    match rows.next()? {
        Some(r) => to_entry(r),
        None => Err(Error::NoSuchVirusEntry(id)),
    }
}

/// Every entry, oldest first.
pub fn list(conn: &Connection) -> Result<Vec<VirusEntry>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM virus_store ORDER BY stored_at, id"
    ))?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(to_entry(r)?);
    }
    Ok(out)
}

/// Deletes entries stored before `cutoff`; returns how many.
pub fn purge(conn: &Connection, cutoff: i64) -> Result<u64> {
    let n = blobs::unreference(
        conn,
        "DELETE FROM virus_store WHERE stored_at < ?1 RETURNING blob",
        [cutoff],
    )?;
    Ok(n as u64)
}
