//! Registry events of protocol offices and their webhook outbox (PostgreSQL backend), as
//! the embedded store keeps them ([`crate::registry`]). Several nodes write at once, so
//! ids would not follow commit order by themselves: a batch inserts its events last,
//! holding [`EVENTS_LOCK`] until it commits, so a reader that has seen id `n` will never
//! see a smaller id appear later and the id stays a stable cursor.

use postgres::{Row, Transaction};

use super::ledger::prefixed;
use crate::error::{Error, Result};
use crate::lookup::to_db;
use crate::model::{Delivered, EventQuery, NewRegistryEvent, ProtocolNumber, RegistryEvent};
use crate::registry::{COLUMNS, Columns, domain_of};

/// The transaction lock that orders event inserts (`pg_advisory_xact_lock`).
const EVENTS_LOCK: i64 = 0x7065_6376;

/// Reads an event from a row of [`COLUMNS`].
fn to_event(r: &Row) -> Result<RegistryEvent> {
    Columns {
        id: r.try_get(0)?,
        address: r.try_get(1)?,
        kind: r.try_get(2)?,
        body: r.try_get(3)?,
        created_at: r.try_get(4)?,
        folder: r.try_get(5)?,
        uid: r.try_get(6)?,
        pending: r.try_get(7)?,
        attempts: r.try_get(8)?,
        next_attempt_at: r.try_get(9)?,
        sent_at: r.try_get(10)?,
        last_error: r.try_get(11)?,
        protocol: (r.try_get(12)?, r.try_get(13)?, r.try_get(14)?),
    }
    .event()
}

/// Takes the lock that orders event ids, once per transaction (taking it again is free).
pub fn lock(tx: &mut Transaction<'_>) -> Result<()> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&EVENTS_LOCK])?;
    Ok(())
}

/// Records `e` (about the message `delivered`, when it names one), unless the mailbox
/// has an event with its key already; the caller holds [`lock`].
pub fn record(
    tx: &mut Transaction<'_>,
    e: &NewRegistryEvent,
    delivered: Option<&Delivered>,
) -> Result<()> {
    tx.execute(
        "INSERT INTO registry_events
             (address, domain, key, kind, body, created_at, folder, uid, pending, next_attempt_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $6)
         ON CONFLICT (address, key) DO NOTHING",
        &[
            &e.address.to_lowercase(),
            &domain_of(&e.address),
            &e.key,
            &e.kind,
            &e.body,
            &e.at,
            &delivered.map(|d| d.folder.as_str()),
            &delivered.map(|d| i64::from(d.uid)),
            &e.push,
        ],
    )?;
    Ok(())
}

/// Events matching `q`, by id.
pub fn list(tx: &mut Transaction<'_>, q: &EventQuery) -> Result<Vec<RegistryEvent>> {
    tx.query(
        &format!(
            "SELECT {COLUMNS} FROM registry_events WHERE id > $1
             AND ($2::TEXT[] IS NULL OR domain = ANY($2)) ORDER BY id LIMIT $3"
        ),
        &[&q.after, &q.domains, &to_db(q.limit as u64)],
    )?
    .iter()
    .map(to_event)
    .collect()
}

/// The event with this id.
pub fn get(tx: &mut Transaction<'_>, id: i64) -> Result<RegistryEvent> {
    match tx.query_opt(
        &format!("SELECT {COLUMNS} FROM registry_events WHERE id = $1"),
        &[&id],
    )? {
        Some(r) => to_event(&r),
        None => Err(Error::NoSuchEvent(id)),
    }
}

/// Claims the events due at `now` until `claim_until`, earliest first, skipping those
/// another node is claiming.
pub fn due(
    tx: &mut Transaction<'_>,
    now: i64,
    claim_until: i64,
    limit: usize,
) -> Result<Vec<RegistryEvent>> {
    let mut events = tx
        .query(
            &format!(
                "WITH due AS (
                     SELECT id FROM registry_events WHERE pending AND next_attempt_at <= $1
                     ORDER BY next_attempt_at, id LIMIT $2 FOR UPDATE SKIP LOCKED)
                 UPDATE registry_events r SET next_attempt_at = $3
                 FROM due WHERE r.id = due.id RETURNING {}",
                prefixed("r", COLUMNS)
            ),
            &[&now, &to_db(limit as u64), &claim_until],
        )?
        .iter()
        .map(to_event)
        .collect::<Result<Vec<_>>>()?;
    events.sort_by_key(|e| e.id);
    Ok(events)
}

/// Marks an event acknowledged by the webhook.
pub fn sent(tx: &mut Transaction<'_>, id: i64, at: i64) -> Result<()> {
    let n = tx.execute(
        "UPDATE registry_events SET pending = FALSE, sent_at = $2, last_error = NULL
         WHERE id = $1",
        &[&id, &at],
    )?;
    found(n, id)
}

/// Deletes the events made before `cutoff`; returns how many. Ids come from a sequence,
/// so a client's cursor stays valid across a purge.
pub fn purge(tx: &mut Transaction<'_>, cutoff: i64) -> Result<u64> {
    Ok(tx.execute(
        "DELETE FROM registry_events WHERE created_at < $1",
        &[&cutoff],
    )?)
}

/// Records a failed attempt.
pub fn retry(tx: &mut Transaction<'_>, id: i64, next_attempt_at: i64, error: &str) -> Result<()> {
    let n = tx.execute(
        "UPDATE registry_events SET attempts = attempts + 1, next_attempt_at = $2,
             last_error = $3 WHERE id = $1",
        &[&id, &next_attempt_at, &error],
    )?;
    found(n, id)
}

/// Keeps the protocol number of an event's message.
pub fn set_protocol(
    tx: &mut Transaction<'_>,
    id: i64,
    p: &ProtocolNumber,
) -> Result<RegistryEvent> {
    let n = tx.execute(
        "UPDATE registry_events SET protocol_number = $2, protocol_date = $3, protocol_at = $4
         WHERE id = $1",
        &[&id, &p.number, &p.date, &p.at],
    )?;
    found(n, id)?;
    get(tx, id)
}

/// `Ok` when an update found its row.
fn found(changed: u64, id: i64) -> Result<()> {
    if changed == 0 {
        Err(Error::NoSuchEvent(id))
    } else {
        Ok(())
    }
}
