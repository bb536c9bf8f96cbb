//! The time stamps of the legal log's head (SQLite backend, spec §8.1): each the whole
//! answer of an RFC 3161 time-stamping authority, kept with the record it covers.

use rusqlite::{Connection, Row, params};

use crate::cached;
use crate::error::{Error, Result};
use crate::lookup::{from_db, to_db};
use crate::model::{LogTimestamp, NewLogTimestamp};

/// Columns read by [`to_timestamp`].
const COLUMNS: &str = "id, seq, head_hash, requested_at, tsa_url, response";

/// Reads a [`LogTimestamp`] from a row of [`COLUMNS`].
fn to_timestamp(r: &Row<'_>) -> Result<LogTimestamp> {
    Ok(LogTimestamp {
        id: r.get(0)?,
        seq: from_db(r.get(1)?, "log time stamp seq")?,
        head_hash: r.get(2)?,
        requested_at: r.get(3)?,
        tsa_url: r.get(4)?,
        response: r.get(5)?,
    })
}

/// Keeps a time stamp; returns it with its id.
pub fn store(conn: &Connection, t: &NewLogTimestamp) -> Result<LogTimestamp> {
    let id: i64 = cached::query_row(
        conn,
        "INSERT INTO log_timestamps (seq, head_hash, requested_at, tsa_url, response)
         VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
        params![
            to_db(t.seq),
            t.head_hash,
            t.requested_at,
            t.tsa_url,
            t.response
        ],
        |r| r.get(0),
    )?;
    list(conn)?
        .into_iter()
        .find(|s| s.id == id)
        .ok_or_else(|| Error::Corrupt(format!("log time stamp {id} vanished")))
}

/// Every time stamp, oldest first.
pub fn list(conn: &Connection) -> Result<Vec<LogTimestamp>> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {COLUMNS} FROM log_timestamps ORDER BY id"))?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(to_timestamp(r)?);
    }
    Ok(out)
}

/// Deletes the time stamps requested before `cutoff`; returns how many.
pub fn purge(conn: &Connection, cutoff: i64) -> Result<u64> {
    Ok(cached::execute(
        conn,
        "DELETE FROM log_timestamps WHERE requested_at < ?1",
        [cutoff],
    )? as u64)
}
