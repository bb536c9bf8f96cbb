//! What the gestore must prove (PostgreSQL backend, as [`crate::timestamps`] and
//! [`crate::uptime`]): the time stamps of the legal log's head, and the minutes the
//! service was up — any node's minute counts once.

use postgres::Transaction;

use crate::error::Result;
use crate::lookup::{from_db, to_db};
use crate::model::{LogTimestamp, NewLogTimestamp, Uptime};

/// Columns of a [`LogTimestamp`], read by [`to_timestamp`].
const COLUMNS: &str = "id, seq, head_hash, requested_at, tsa_url, response";

/// Builds a [`LogTimestamp`] from a row of [`COLUMNS`].
fn to_timestamp(r: &postgres::Row) -> Result<LogTimestamp> {
    Ok(LogTimestamp {
        id: r.get(0),
        seq: from_db(r.get(1), "log time stamp seq")?,
        head_hash: r.get(2),
        requested_at: r.get(3),
        tsa_url: r.get(4),
        response: r.get(5),
    })
}

/// Keeps a time stamp; returns it with its id.
pub fn store_timestamp(tx: &mut Transaction<'_>, t: &NewLogTimestamp) -> Result<LogTimestamp> {
    let row = tx.query_one(
        &format!(
            "INSERT INTO log_timestamps (seq, head_hash, requested_at, tsa_url, response)
             VALUES ($1, $2, $3, $4, $5) RETURNING {COLUMNS}"
        ),
        &[
            &to_db(t.seq),
            &t.head_hash,
            &t.requested_at,
            &t.tsa_url,
            &t.response,
        ],
    )?;
    to_timestamp(&row)
}

/// Every time stamp, oldest first.
pub fn list_timestamps(tx: &mut Transaction<'_>) -> Result<Vec<LogTimestamp>> {
    tx.query(
        &format!("SELECT {COLUMNS} FROM log_timestamps ORDER BY id"),
        &[],
    )?
    .iter()
    .map(to_timestamp)
    .collect()
}

/// Records that the service was up in the minute starting at `minute`.
pub fn record_uptime(tx: &mut Transaction<'_>, minute: i64) -> Result<()> {
    tx.execute(
        "INSERT INTO uptime (minute) VALUES ($1) ON CONFLICT DO NOTHING",
        &[&minute],
    )?;
    Ok(())
}

/// The recorded minutes with `from <= minute < to`, and the first one ever.
pub fn uptime(tx: &mut Transaction<'_>, from: i64, to: i64) -> Result<Uptime> {
    let since: Option<i64> = tx.query_one("SELECT min(minute) FROM uptime", &[])?.get(0);
    let minutes = tx
        .query(
            "SELECT minute FROM uptime WHERE minute >= $1 AND minute < $2 ORDER BY minute",
            &[&from, &to],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect();
    Ok(Uptime { since, minutes })
}

/// Deletes the uptime minutes and the time stamps from before `cutoff`; returns how many.
pub fn purge(tx: &mut Transaction<'_>, cutoff: i64) -> Result<u64> {
    let minutes = tx.execute("DELETE FROM uptime WHERE minute < $1", &[&cutoff])?;
    let stamps = tx.execute(
        "DELETE FROM log_timestamps WHERE requested_at < $1",
        &[&cutoff],
    )?;
    Ok(minutes + stamps)
}
