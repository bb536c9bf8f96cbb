//! Registry events of protocol offices and their webhook outbox (SQLite backend): one
//! row per event, written in the transaction of the delivery it is about, unique per
//! mailbox and key so a replay records none; the webhook sender claims due rows, then
//! marks them sent or schedules the next attempt. Ids come from `AUTOINCREMENT` in the
//! single writer's commit order, so the id is a stable cursor.

use rusqlite::{Connection, Row, params};

use crate::cached;
use crate::error::{Error, Result};
use crate::lookup::{list_to_db, uid_from_db};
use crate::model::{Delivered, EventQuery, NewRegistryEvent, ProtocolNumber, RegistryEvent};

/// Columns read by [`to_event`] (and by the PostgreSQL backend, in this order).
pub(crate) const COLUMNS: &str = "id, address, kind, body, created_at, folder, uid, pending, \
    attempts, next_attempt_at, sent_at, last_error, protocol_number, protocol_date, protocol_at";

/// A stored event's columns as either database returns them.
pub(crate) struct Columns {
    pub id: i64,
    pub address: String,
    pub kind: String,
    pub body: String,
    pub created_at: i64,
    pub folder: Option<String>,
    pub uid: Option<i64>,
    pub pending: bool,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub sent_at: Option<i64>,
    pub last_error: Option<String>,
    pub protocol: (Option<String>, Option<String>, Option<i64>),
}

impl Columns {
    /// The event these columns describe (out-of-range numbers are corruption).
    pub(crate) fn event(self) -> Result<RegistryEvent> {
        let message = match (self.folder, self.uid) {
            (Some(f), Some(uid)) => Some((f, uid_from_db(uid, "registry event uid")?)),
            _ => None,
        };
        let attempts = u32::try_from(self.attempts)
            .map_err(|_| Error::Corrupt(format!("registry event attempts = {}", self.attempts)))?;
        let (number, date, at) = self.protocol;
        Ok(RegistryEvent {
            id: self.id,
            address: self.address,
            kind: self.kind,
            body: self.body,
            created_at: self.created_at,
            message,
            pending: self.pending,
            attempts,
            next_attempt_at: self.next_attempt_at,
            sent_at: self.sent_at,
            last_error: self.last_error,
            protocol: number.map(|number| ProtocolNumber {
                number,
                date,
                at: at.unwrap_or_default(),
            }),
        })
    }
}

/// The domain of a mailbox address, as the events are filtered by.
pub(crate) fn domain_of(address: &str) -> String {
    address
        .rsplit_once('@')
        .map(|(_, d)| d)
        .unwrap_or_default()
        .to_lowercase()
}

/// Reads an event from a row of [`COLUMNS`].
fn to_event(r: &Row<'_>) -> Result<RegistryEvent> {
    Columns {
        id: r.get(0)?,
        address: r.get(1)?,
        kind: r.get(2)?,
        body: r.get(3)?,
        created_at: r.get(4)?,
        folder: r.get(5)?,
        uid: r.get(6)?,
        pending: r.get::<_, i64>(7)? != 0,
        attempts: r.get(8)?,
        next_attempt_at: r.get(9)?,
        sent_at: r.get(10)?,
        last_error: r.get(11)?,
        protocol: (r.get(12)?, r.get(13)?, r.get(14)?),
    }
    .event()
}

/// Records `e` (about the message `delivered`, when it names one), unless the mailbox
/// has an event with its key already.
pub fn record(
    conn: &Connection,
    e: &NewRegistryEvent,
    delivered: Option<&Delivered>,
) -> Result<()> {
    cached::execute(
        conn,
        "INSERT INTO registry_events
             (address, domain, key, kind, body, created_at, folder, uid, pending, next_attempt_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?6)
         ON CONFLICT (address, key) DO NOTHING",
        params![
            e.address.to_lowercase(),
            domain_of(&e.address),
            e.key,
            e.kind,
            e.body,
            e.at,
            delivered.map(|d| d.folder.as_str()),
            delivered.map(|d| i64::from(d.uid)),
            i64::from(e.push),
        ],
    )?;
    Ok(())
}

/// Events matching `q`, by id.
pub fn list(conn: &Connection, q: &EventQuery) -> Result<Vec<RegistryEvent>> {
    let domains = q.domains.as_deref().map(list_to_db).transpose()?;
    let limit = i64::try_from(q.limit).unwrap_or(i64::MAX);
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM registry_events WHERE id > ?1
         AND (?2 IS NULL OR domain IN (SELECT value FROM json_each(?2)))
         ORDER BY id LIMIT ?3"
    ))?;
    let mut rows = stmt.query(params![q.after, domains, limit])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(to_event(r)?);
    }
    Ok(out)
}

/// The event with this id.
pub fn get(conn: &Connection, id: i64) -> Result<RegistryEvent> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM registry_events WHERE id = ?1"
    ))?;
    let mut rows = stmt.query([id])?;
    match rows.next()? {
        Some(r) => to_event(r),
        None => Err(Error::NoSuchEvent(id)),
    }
}

/// Claims the events due at `now` until `claim_until`, earliest first.
pub fn due(
    conn: &Connection,
    now: i64,
    claim_until: i64,
    limit: usize,
) -> Result<Vec<RegistryEvent>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let ids: Vec<i64> = {
        let mut stmt = conn.prepare_cached(
            "SELECT id FROM registry_events WHERE pending = 1 AND next_attempt_at <= ?1
             ORDER BY next_attempt_at, id LIMIT ?2",
        )?;
        stmt.query_map(params![now, limit], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?
    };
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        cached::execute(
            conn,
            "UPDATE registry_events SET next_attempt_at = ?2 WHERE id = ?1",
            params![id, claim_until],
        )?;
        out.push(get(conn, id)?);
    }
    Ok(out)
}

/// Marks an event acknowledged by the webhook.
pub fn sent(conn: &Connection, id: i64, at: i64) -> Result<()> {
    let n = cached::execute(
        conn,
        "UPDATE registry_events SET pending = 0, sent_at = ?2, last_error = NULL WHERE id = ?1",
        params![id, at],
    )?;
    found(n, id)
}

/// Deletes the events made before `cutoff`; returns how many. Ids are never reused
/// (AUTOINCREMENT), so a client's cursor stays valid across a purge.
pub fn purge(conn: &Connection, cutoff: i64) -> Result<u64> {
    let n = cached::execute(
        conn,
        "DELETE FROM registry_events WHERE created_at < ?1",
        [cutoff],
    )?;
    Ok(n as u64)
}

/// Records a failed attempt.
pub fn retry(conn: &Connection, id: i64, next_attempt_at: i64, error: &str) -> Result<()> {
    let n = cached::execute(
        conn,
        "UPDATE registry_events SET attempts = attempts + 1, next_attempt_at = ?2,
             last_error = ?3 WHERE id = ?1",
        params![id, next_attempt_at, error],
    )?;
    found(n, id)
}

/// Keeps the protocol number of an event's message.
pub fn set_protocol(conn: &Connection, id: i64, p: &ProtocolNumber) -> Result<RegistryEvent> {
    let n = cached::execute(
        conn,
        "UPDATE registry_events SET protocol_number = ?2, protocol_date = ?3, protocol_at = ?4
         WHERE id = ?1",
        params![id, p.number, p.date, p.at],
    )?;
    found(n, id)?;
    get(conn, id)
}

/// `Ok` when an update found its row.
fn found(changed: usize, id: i64) -> Result<()> {
    if changed == 0 {
        Err(Error::NoSuchEvent(id))
    } else {
        Ok(())
    }
}
