//! The minutes the service was up (SQLite backend, spec §7.2): the running gestore
//! records each minute once; a minute without a row is a minute of unavailability.

use rusqlite::Connection;

use crate::cached;
use crate::error::Result;

/// Records that the service was up in the minute starting at `minute`.
pub fn record(conn: &Connection, minute: i64) -> Result<()> {
    cached::execute(
        conn,
        "INSERT OR IGNORE INTO uptime (minute) VALUES (?1)",
        [minute],
    )?;
    Ok(())
}

/// The recorded minutes with `from <= minute < to`, in order.
pub fn minutes(conn: &Connection, from: i64, to: i64) -> Result<Vec<i64>> {
    let mut stmt = conn.prepare_cached(
        "SELECT minute FROM uptime WHERE minute >= ?1 AND minute < ?2 ORDER BY minute",
    )?;
    let rows = stmt.query_map([from, to], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<Vec<i64>>>()?)
}

/// The first minute ever recorded: when the service started to exist.
pub fn first(conn: &Connection) -> Result<Option<i64>> {
    Ok(cached::query_row(
        conn,
        "SELECT min(minute) FROM uptime",
        [],
        |r| r.get(0),
    )?)
}

/// Deletes the minutes before `cutoff`; returns how many.
pub fn purge(conn: &Connection, cutoff: i64) -> Result<u64> {
    Ok(cached::execute(conn, "DELETE FROM uptime WHERE minute < ?1", [cutoff])? as u64)
}
