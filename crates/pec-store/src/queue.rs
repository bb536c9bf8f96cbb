//! The outbound queue (SQLite backend): messages waiting to be relayed to
//! another domain, with their retry schedule and the time the relay must
//! give up (spec §7.3: PEC traffic is not held past 24 h). An entry lives
//! until the relay reports it sent ([`complete`]) or abandoned ([`fail`]).

use rusqlite::{Connection, Row, params};

use crate::blobs::{self, SqliteBlobs};
use crate::cached;
use crate::error::{Error, Result};
use crate::lookup::{from_db, list_from_db, list_to_db, to_db};
use crate::model::{NewQueueEntry, QueueEntry, QueueSummary};

/// Columns read by [`to_entry`].
const COLUMNS: &str = "id, msgid, mail_from, rcpt_to, domain, blob, size, created_at, \
                       next_attempt_at, attempts, last_error, expires_at, held";

/// Reads a [`QueueEntry`] from a row of [`COLUMNS`].
fn to_entry(r: &Row<'_>) -> Result<QueueEntry> {
    let rcpt_to: String = r.get(3)?;
    let attempts: i64 = r.get(9)?;
    Ok(QueueEntry {
        id: r.get(0)?,
        msgid: r.get(1)?,
        mail_from: r.get(2)?,
        rcpt_to: list_from_db(&rcpt_to, "queue rcpt_to")?,
        domain: r.get(4)?,
        hash: r.get(5)?,
        size: from_db(r.get(6)?, "queue size")?,
        created_at: r.get(7)?,
        next_attempt_at: r.get(8)?,
        attempts: u32::try_from(attempts)
            .map_err(|_| Error::Corrupt(format!("queue attempts = {attempts}")))?,
        last_error: r.get(10)?,
        expires_at: r.get(11)?,
        held: r.get::<_, i64>(12)? != 0,
    })
}

/// Runs a query of [`COLUMNS`] and collects the entries.
fn collect(conn: &Connection, sql: &str, args: impl rusqlite::Params) -> Result<Vec<QueueEntry>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(args)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(to_entry(r)?);
    }
    Ok(out)
}

/// One entry by id.
pub fn get(conn: &Connection, id: i64) -> Result<QueueEntry> {
    collect(
        conn,
        &format!("SELECT {COLUMNS} FROM queue WHERE id = ?1"),
        [id],
    )?
    .pop()
    .ok_or(Error::NoSuchQueueEntry(id))
}

/// Whether entry `id` is still queued.
pub fn exists(conn: &Connection, id: i64) -> Result<bool> {
    let n: i64 = cached::query_row(
        conn,
        "SELECT count(*) FROM queue WHERE id = ?1",
        [id],
        |r| r.get(0),
    )?;
    Ok(n > 0)
}

/// Queues a message (its bytes hashed by the caller as `hash`): the blob is
/// made durable first, then the row; the entry is due at `due_at`.
pub fn enqueue(
    conn: &Connection,
    blobs: &SqliteBlobs,
    hash: &str,
    e: &NewQueueEntry,
) -> Result<QueueEntry> {
    blobs.store(conn, hash, &e.message)?;
    collect(
        conn,
        &format!(
            "INSERT INTO queue (msgid, mail_from, rcpt_to, domain, blob, size, created_at,
                 next_attempt_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING {COLUMNS}"
        ),
        params![
            e.msgid,
            e.mail_from,
            list_to_db(&e.rcpt_to)?,
            e.domain,
            hash,
            to_db(e.message.len() as u64),
            e.created_at,
            e.due_at,
            e.expires_at
        ],
    )?
    .pop()
    .ok_or_else(|| Error::Corrupt("a queue entry inserted but not returned".into()))
}

/// Entries whose next attempt is due at `now`, earliest first, at most `limit`: held
/// ones only once expired (they are given up then like any other).
pub fn due(conn: &Connection, now: i64, limit: usize) -> Result<Vec<QueueEntry>> {
    collect(
        conn,
        &format!(
            "SELECT {COLUMNS} FROM queue
             WHERE next_attempt_at <= ?1 AND (held = 0 OR expires_at <= ?1)
             ORDER BY next_attempt_at, id LIMIT ?2"
        ),
        params![now, to_db(limit as u64)],
    )
}

/// Every entry, oldest first (admin listing).
pub fn list(conn: &Connection) -> Result<Vec<QueueEntry>> {
    collect(
        conn,
        &format!("SELECT {COLUMNS} FROM queue ORDER BY created_at, id"),
        [],
    )
}

/// The number of entries and the oldest one's creation time.
pub fn summary(conn: &Connection) -> Result<QueueSummary> {
    let (entries, oldest_created_at): (i64, Option<i64>) =
        conn.query_row("SELECT COUNT(*), MIN(created_at) FROM queue", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    Ok(QueueSummary {
        entries: from_db(entries, "queue count")?,
        oldest_created_at,
    })
}

/// Deletes an entry's row and releases its blob; `false` if there was no such entry.
fn remove(conn: &Connection, id: i64) -> Result<bool> {
    Ok(blobs::unreference(conn, "DELETE FROM queue WHERE id = ?1 RETURNING blob", [id])? > 0)
}

/// Removes an entry the relay has delivered.
pub fn complete(conn: &Connection, id: i64) -> Result<()> {
    if remove(conn, id)? {
        Ok(())
    } else {
        Err(Error::NoSuchQueueEntry(id))
    }
}

/// Records a failed attempt and schedules the next one — never later than
/// the expiry, so an entry that will not make it is due when it expires.
pub fn retry(conn: &Connection, id: i64, next_attempt_at: i64, error: &str) -> Result<QueueEntry> {
    let changed = cached::execute(
        conn,
        "UPDATE queue SET attempts = attempts + 1, last_error = ?2,
             next_attempt_at = min(?3, expires_at)
         WHERE id = ?1",
        params![id, error, next_attempt_at],
    )?;
    if changed == 0 {
        return Err(Error::NoSuchQueueEntry(id));
    }
    get(conn, id)
}

/// Holds an entry from relay or releases it (administrator).
pub fn hold(conn: &Connection, id: i64, held: bool) -> Result<QueueEntry> {
    let changed = cached::execute(
        conn,
        "UPDATE queue SET held = ?2 WHERE id = ?1",
        params![id, held],
    )?;
    if changed == 0 {
        return Err(Error::NoSuchQueueEntry(id));
    }
    get(conn, id)
}

/// Makes an entry due at `at` (never past its expiry) and releases it (administrator).
pub fn reschedule(conn: &Connection, id: i64, at: i64) -> Result<QueueEntry> {
    let changed = cached::execute(
        conn,
        "UPDATE queue SET held = 0, next_attempt_at = min(?2, expires_at) WHERE id = ?1",
        params![id, at],
    )?;
    if changed == 0 {
        return Err(Error::NoSuchQueueEntry(id));
    }
    get(conn, id)
}

/// Removes an entry the relay gives up on and returns it, so the caller can
/// send the non-delivery notice.
pub fn fail(conn: &Connection, id: i64) -> Result<QueueEntry> {
    let entry = get(conn, id)?;
    remove(conn, id)?;
    Ok(entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, Connection, SqliteBlobs) {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = crate::schema::connect(&dir.path().join("q.db")).unwrap();
        crate::schema::migrate(&mut conn).unwrap();
        let blobs = SqliteBlobs::open(dir.path()).unwrap();
        (dir, conn, blobs)
    }

    #[test]
    fn retry_never_schedules_past_expiry() {
        let (_dir, conn, blobs) = setup();
        let e = NewQueueEntry {
            msgid: "<m@x>".into(),
            mail_from: "a@x.it".into(),
            rcpt_to: vec!["b@y.it".into()],
            domain: "y.it".into(),
            message: b"msg".to_vec(),
            created_at: 100,
            due_at: 100,
            expires_at: 1000,
        };
        let hash = crate::blobs::hash_hex(&e.message);
        let q = enqueue(&conn, &blobs, &hash, &e).unwrap();
        let stored: String = conn
            .query_row("SELECT blob FROM queue WHERE id = ?1", [q.id], |r| r.get(0))
            .unwrap();
        assert_eq!(stored, hash);
        let r = retry(&conn, q.id, 5000, "421 busy").unwrap();
        assert_eq!((r.next_attempt_at, r.attempts), (1000, 1));
        assert_eq!(r.last_error.as_deref(), Some("421 busy"));
        assert!(matches!(
            retry(&conn, 999, 1, "x"),
            Err(Error::NoSuchQueueEntry(999))
        ));
    }
}
