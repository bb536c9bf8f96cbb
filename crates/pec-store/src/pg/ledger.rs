//! The outbound queue, the 12 h / 24 h timers, the virus store and the effect keys
//! (PostgreSQL backend), with the same meaning as in the embedded store
//! ([`crate::queue`], [`crate::timers`], [`crate::virus`], [`crate::effects`]).
//!
//! Several nodes share the queue and the timers: [`queue_due`] and [`due_notices`] claim
//! what they return with a lease (`lease_owner`, `lease_until`), skipping rows another
//! transaction holds (`FOR UPDATE SKIP LOCKED`) and rows another node's lease still
//! covers. Completing, retrying or failing an entry, and marking a notice sent or an
//! outcome, end the lease; a node that dies leaves its claims to the others once
//! `lease_until` passes. A node's own claims come back to it at its next pass (its
//! queue and timer passes follow one another), so work that failed on a passing fault
//! is tried again as soon as on the embedded store.

use postgres::Transaction;

use super::blobs;
use super::changes::{self, Node};
use super::directory::unique;
use crate::effects::EffectKey;
use crate::error::{Error, Result};
use crate::lookup::{self, from_db, to_db};
use crate::model::{
    DueNotice, NewQueueEntry, NewTimer, NewVirusEntry, NoticeKind, Outcome, QueueEntry,
    QueueSummary, TWELVE_HOURS, Timer, VirusEntry,
};
use crate::store::Change;

/// Columns of a [`QueueEntry`], read by [`to_entry`].
const QUEUE_COLUMNS: &str = "id, msgid, mail_from, rcpt_to, domain, blob, size, created_at, \
                             next_attempt_at, attempts, last_error, expires_at, held";

/// Builds a [`QueueEntry`] from a row of [`QUEUE_COLUMNS`].
fn to_entry(r: &postgres::Row) -> Result<QueueEntry> {
    let attempts: i64 = r.get(9);
    Ok(QueueEntry {
        id: r.get(0),
        msgid: r.get(1),
        mail_from: r.get(2),
        rcpt_to: r.get(3),
        domain: r.get(4),
        hash: r.get(5),
        size: from_db(r.get(6), "queue size")?,
        created_at: r.get(7),
        next_attempt_at: r.get(8),
        attempts: u32::try_from(attempts)
            .map_err(|_| Error::Corrupt(format!("queue attempts = {attempts}")))?,
        last_error: r.get(10),
        expires_at: r.get(11),
        held: r.get(12),
    })
}

/// Queues a message (hashed by the caller as `hash`), due at its `due_at`, and wakes the
/// other nodes' queue workers.
pub fn enqueue(
    tx: &mut Transaction<'_>,
    node: &Node,
    hash: &str,
    e: &NewQueueEntry,
) -> Result<QueueEntry> {
    blobs::hold(tx, hash, &e.message)?;
    let row = tx.query_one(
        &format!(
            "INSERT INTO queue (msgid, mail_from, rcpt_to, domain, blob, size, created_at,
                 next_attempt_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {QUEUE_COLUMNS}"
        ),
        &[
            &e.msgid,
            &e.mail_from,
            &e.rcpt_to,
            &e.domain,
            &hash,
            &to_db(e.message.len() as u64),
            &e.created_at,
            &e.due_at,
            &e.expires_at,
        ],
    )?;
    changes::announce(tx, node, &Change::Queued)?;
    to_entry(&row)
}

/// Claims for `node` the entries due at `now` that no other node holds, earliest first,
/// at most `limit`, until `now + lease`.
pub fn queue_due(
    tx: &mut Transaction<'_>,
    node: &Node,
    now: i64,
    lease: i64,
    limit: usize,
) -> Result<Vec<QueueEntry>> {
    let mut entries = tx
        .query(
            &format!(
                "WITH due AS (
                     SELECT id FROM queue
                     WHERE next_attempt_at <= $1 AND (NOT held OR expires_at <= $1)
                       AND (lease_until IS NULL OR lease_until <= $1 OR lease_owner = $3)
                     ORDER BY next_attempt_at, id LIMIT $2 FOR UPDATE SKIP LOCKED)
                 UPDATE queue q SET lease_owner = $3, lease_until = $4
                 FROM due WHERE q.id = due.id RETURNING {}",
                prefixed("q", QUEUE_COLUMNS)
            ),
            &[
                &now,
                &to_db(limit as u64),
                &node.owner(),
                &now.saturating_add(lease),
            ],
        )?
        .iter()
        .map(to_entry)
        .collect::<Result<Vec<_>>>()?;
    entries.sort_by_key(|e| (e.next_attempt_at, e.id));
    Ok(entries)
}

/// `columns` (comma-separated) each prefixed with `table.`.
pub(super) fn prefixed(table: &str, columns: &str) -> String {
    columns
        .split(',')
        .map(|c| format!("{table}.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every entry, oldest first (admin listing).
pub fn list_queue(tx: &mut Transaction<'_>) -> Result<Vec<QueueEntry>> {
    tx.query(
        &format!("SELECT {QUEUE_COLUMNS} FROM queue ORDER BY created_at, id"),
        &[],
    )?
    .iter()
    .map(to_entry)
    .collect()
}

/// The number of entries and the oldest one's creation time.
pub fn queue_summary(tx: &mut Transaction<'_>) -> Result<QueueSummary> {
    let row = tx.query_one("SELECT COUNT(*), MIN(created_at) FROM queue", &[])?;
    let entries: i64 = row.get(0);
    Ok(QueueSummary {
        entries: u64::try_from(entries).unwrap_or(0),
        oldest_created_at: row.get(1),
    })
}

/// Locks entry `id` until the transaction ends; `false` if it is gone.
pub fn lock_entry(tx: &mut Transaction<'_>, id: i64) -> Result<bool> {
    Ok(tx
        .query_opt("SELECT id FROM queue WHERE id = $1 FOR UPDATE", &[&id])?
        .is_some())
}

/// Removes an entry and releases its blob; returns it, `None` if there was none.
fn remove(tx: &mut Transaction<'_>, id: i64) -> Result<Option<QueueEntry>> {
    let Some(row) = tx.query_opt(
        &format!("DELETE FROM queue WHERE id = $1 RETURNING {QUEUE_COLUMNS}"),
        &[&id],
    )?
    else {
        return Ok(None);
    };
    let entry = to_entry(&row)?;
    blobs::release(tx, [entry.hash.clone()])?;
    Ok(Some(entry))
}

/// Removes an entry the relay has delivered.
pub fn queue_complete(tx: &mut Transaction<'_>, id: i64) -> Result<()> {
    remove(tx, id)?
        .map(|_| ())
        .ok_or(Error::NoSuchQueueEntry(id))
}

/// Records a failed attempt and schedules the next one (never after expiry); ends this
/// node's lease.
pub fn queue_retry(
    tx: &mut Transaction<'_>,
    node: &Node,
    id: i64,
    next_attempt_at: i64,
    error: &str,
) -> Result<QueueEntry> {
    let row = tx
        .query_opt(
            &format!(
                "UPDATE queue SET attempts = attempts + 1, last_error = $2,
                     next_attempt_at = least($3, expires_at),
                     lease_until = CASE WHEN lease_owner = $4 THEN NULL ELSE lease_until END,
                     lease_owner = CASE WHEN lease_owner = $4 THEN NULL ELSE lease_owner END
                 WHERE id = $1 RETURNING {QUEUE_COLUMNS}"
            ),
            &[&id, &error, &next_attempt_at, &node.owner()],
        )?
        .ok_or(Error::NoSuchQueueEntry(id))?;
    to_entry(&row)
}

/// Holds an entry from relay or releases it (administrator).
pub fn queue_hold(tx: &mut Transaction<'_>, id: i64, held: bool) -> Result<QueueEntry> {
    let row = tx
        .query_opt(
            &format!("UPDATE queue SET held = $2 WHERE id = $1 RETURNING {QUEUE_COLUMNS}"),
            &[&id, &held],
        )?
        .ok_or(Error::NoSuchQueueEntry(id))?;
    to_entry(&row)
}

/// Makes an entry due at `at` (never past its expiry) and releases it (administrator).
pub fn queue_reschedule(tx: &mut Transaction<'_>, id: i64, at: i64) -> Result<QueueEntry> {
    let row = tx
        .query_opt(
            &format!(
                "UPDATE queue SET held = FALSE, next_attempt_at = least($2, expires_at)
                 WHERE id = $1 RETURNING {QUEUE_COLUMNS}"
            ),
            &[&id, &at],
        )?
        .ok_or(Error::NoSuchQueueEntry(id))?;
    to_entry(&row)
}

/// Removes an entry the relay gives up on and returns it, for the notice.
pub fn queue_fail(tx: &mut Transaction<'_>, id: i64) -> Result<QueueEntry> {
    remove(tx, id)?.ok_or(Error::NoSuchQueueEntry(id))
}

/// Columns of a [`Timer`], read by [`to_timer`].
const TIMER_COLUMNS: &str = "identificativo, recipient, sender, subject, envelope_blob, \
                             dispatched_at, presa_in_carico_at, delivered, outcome, \
                             notice12_sent, notice24_sent";

/// Builds a [`Timer`] from a row of [`TIMER_COLUMNS`].
fn to_timer(r: &postgres::Row) -> Result<Timer> {
    let outcome: String = r.get(8);
    Ok(Timer {
        identificativo: r.get(0),
        recipient: r.get(1),
        sender: r.get(2),
        subject: r.get(3),
        envelope: r.get(4),
        dispatched_at: r.get(5),
        presa_in_carico_at: r.get(6),
        delivered: r.get(7),
        outcome: Outcome::parse(&outcome)
            .ok_or_else(|| Error::Corrupt(format!("timer outcome {outcome:?}")))?,
        notice12_sent: r.get(9),
        notice24_sent: r.get(10),
    })
}

/// The error for an untracked (identificativo, recipient).
fn no_such(identificativo: &str, recipient: &str) -> Error {
    Error::NoSuchTimer {
        identificativo: identificativo.to_string(),
        recipient: recipient.to_string(),
    }
}

/// Starts tracking each recipient; a named envelope blob must be stored already (it
/// gains a reference).
pub fn start_timers(tx: &mut Transaction<'_>, timers: &[NewTimer]) -> Result<()> {
    for t in timers {
        let (recipient, _) = lookup::address(&t.recipient)?;
        if let Some(hash) = &t.envelope
            && !blobs::add_ref(tx, hash)?
        {
            return Err(Error::BlobMissing(hash.clone()));
        }
        tx.execute(
            "INSERT INTO timers (identificativo, recipient, sender, subject, envelope_blob,
                 dispatched_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &t.identificativo,
                &recipient,
                &t.sender,
                &t.subject,
                &t.envelope,
                &t.dispatched_at,
            ],
        )
        .map_err(|e| unique(e, &format!("timer {} {recipient}", t.identificativo)))?;
    }
    Ok(())
}

/// Records a presa in carico covering `recipients` (the first one counts); returns how
/// many timers it changed.
pub fn mark_presa_in_carico(
    tx: &mut Transaction<'_>,
    identificativo: &str,
    recipients: &[String],
    at: i64,
) -> Result<u64> {
    let mut changed = 0;
    for r in recipients {
        changed += tx.execute(
            "UPDATE timers SET presa_in_carico_at = $3
             WHERE identificativo = $1 AND recipient = $2 AND presa_in_carico_at IS NULL",
            &[&identificativo, &r.trim().to_lowercase(), &at],
        )?;
    }
    Ok(changed)
}

/// Records a final outcome for a recipient already in lower case (the first final one
/// stays) and ends any lease on its timer; `false` if it has no timer.
pub fn record_outcome(
    tx: &mut Transaction<'_>,
    identificativo: &str,
    recipient: &str,
    outcome: Outcome,
) -> Result<bool> {
    Ok(tx.execute(
        "UPDATE timers SET delivered = (delivered OR $3),
             outcome = CASE WHEN outcome = 'pending' THEN $4 ELSE outcome END,
             lease_owner = NULL, lease_until = NULL
         WHERE identificativo = $1 AND recipient = $2",
        &[
            &identificativo,
            &recipient,
            &(outcome == Outcome::Delivered),
            &outcome.as_str(),
        ],
    )? > 0)
}

/// Records a final outcome for one recipient; returns its timer.
pub fn mark_outcome(
    tx: &mut Transaction<'_>,
    identificativo: &str,
    recipient: &str,
    outcome: Outcome,
) -> Result<Timer> {
    let recipient = recipient.trim().to_lowercase();
    if !record_outcome(tx, identificativo, &recipient, outcome)? {
        return Err(no_such(identificativo, &recipient));
    }
    timer(tx, identificativo, &recipient)
}

/// One recipient's timer.
fn timer(tx: &mut Transaction<'_>, identificativo: &str, recipient: &str) -> Result<Timer> {
    let row = tx
        .query_opt(
            &format!(
                "SELECT {TIMER_COLUMNS} FROM timers WHERE identificativo = $1 AND recipient = $2"
            ),
            &[&identificativo, &recipient],
        )?
        .ok_or_else(|| no_such(identificativo, recipient))?;
    to_timer(&row)
}

/// Claims for `node`, until `now + lease`, the timers with a notice due at `now` that no
/// other node holds, and returns their notices, oldest dispatch first.
pub fn due_notices(
    tx: &mut Transaction<'_>,
    node: &Node,
    now: i64,
    lease: i64,
    twenty_four_after: i64,
) -> Result<Vec<DueNotice>> {
    let twelve_before = now.saturating_sub(TWELVE_HOURS);
    let twenty_four_before = now.saturating_sub(twenty_four_after);
    let mut timers = tx
        .query(
            &format!(
                "WITH due AS (
                     SELECT identificativo, recipient FROM timers
                     WHERE outcome = 'pending'
                       AND ((NOT notice12_sent AND presa_in_carico_at IS NULL
                             AND dispatched_at <= $1)
                            OR (NOT notice24_sent AND dispatched_at <= $2))
                       AND (lease_until IS NULL OR lease_until <= $3 OR lease_owner = $4)
                     FOR UPDATE SKIP LOCKED)
                 UPDATE timers t SET lease_owner = $4, lease_until = $5
                 FROM due WHERE t.identificativo = due.identificativo
                     AND t.recipient = due.recipient
                 RETURNING {}",
                prefixed("t", TIMER_COLUMNS)
            ),
            &[
                &twelve_before,
                &twenty_four_before,
                &now,
                &node.owner(),
                &now.saturating_add(lease),
            ],
        )?
        .iter()
        .map(to_timer)
        .collect::<Result<Vec<_>>>()?;
    timers.sort_by(|a, b| {
        (a.dispatched_at, &a.identificativo, &a.recipient).cmp(&(
            b.dispatched_at,
            &b.identificativo,
            &b.recipient,
        ))
    });
    Ok(crate::timers::notices_of(
        timers,
        twelve_before,
        twenty_four_before,
    ))
}

/// Records that a notice was sent (the 24 h one ends tracking) and ends the lease.
pub fn mark_notice_sent(
    tx: &mut Transaction<'_>,
    identificativo: &str,
    recipient: &str,
    kind: NoticeKind,
) -> Result<()> {
    let sql = match kind {
        NoticeKind::Twelve => {
            "UPDATE timers SET notice12_sent = TRUE, lease_owner = NULL, lease_until = NULL
             WHERE identificativo = $1 AND recipient = $2"
        }
        NoticeKind::TwentyFour => {
            "UPDATE timers SET notice24_sent = TRUE,
                 outcome = CASE WHEN outcome = 'pending' THEN 'timeout24' ELSE outcome END,
                 lease_owner = NULL, lease_until = NULL
             WHERE identificativo = $1 AND recipient = $2"
        }
    };
    let recipient = recipient.trim().to_lowercase();
    match tx.execute(sql, &[&identificativo, &recipient])? {
        0 => Err(no_such(identificativo, &recipient)),
        _ => Ok(()),
    }
}

/// Every tracked recipient of a transaction, by recipient.
pub fn timers(tx: &mut Transaction<'_>, identificativo: &str) -> Result<Vec<Timer>> {
    tx.query(
        &format!(
            "SELECT {TIMER_COLUMNS} FROM timers WHERE identificativo = $1
             ORDER BY recipient COLLATE \"C\""
        ),
        &[&identificativo],
    )?
    .iter()
    .map(to_timer)
    .collect()
}

/// Columns of a [`VirusEntry`], read by [`to_virus`].
const VIRUS_COLUMNS: &str = "id, stored_at, msgid, sender, recipients, virus, blob, size";

/// Builds a [`VirusEntry`] from a row of [`VIRUS_COLUMNS`].
fn to_virus(r: &postgres::Row) -> Result<VirusEntry> {
    Ok(VirusEntry {
        id: r.get(0),
        stored_at: r.get(1),
        msgid: r.get(2),
        sender: r.get(3),
        recipients: r.get(4),
        virus: r.get(5),
        hash: r.get(6),
        size: from_db(r.get(7), "virus store size")?,
    })
}

/// Keeps an infected message (hashed by the caller as `hash`) in the virus store.
pub fn store_virus(tx: &mut Transaction<'_>, hash: &str, e: &NewVirusEntry) -> Result<VirusEntry> {
    blobs::hold(tx, hash, &e.message)?;
    let row = tx.query_one(
        &format!(
            "INSERT INTO virus_store (stored_at, msgid, sender, recipients, virus, blob, size)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {VIRUS_COLUMNS}"
        ),
        &[
            &e.at,
            &e.msgid,
            &e.sender,
            &e.recipients,
            &e.virus,
            &hash,
            &to_db(e.message.len() as u64),
        ],
    )?;
    to_virus(&row)
}

/// Every virus store entry, oldest first.
pub fn list_virus(tx: &mut Transaction<'_>) -> Result<Vec<VirusEntry>> {
    tx.query(
        &format!("SELECT {VIRUS_COLUMNS} FROM virus_store ORDER BY stored_at, id"),
        &[],
    )?
    .iter()
    .map(to_virus)
    .collect()
}

/// One virus store entry.
pub fn virus_entry(tx: &mut Transaction<'_>, id: i64) -> Result<VirusEntry> {
    let row = tx
        .query_opt(
            &format!("SELECT {VIRUS_COLUMNS} FROM virus_store WHERE id = $1"),
            &[&id],
        )?
        .ok_or(Error::NoSuchVirusEntry(id))?;
    to_virus(&row)
}

/// Deletes virus store entries stored before `cutoff`; returns how many.
pub fn purge_virus(tx: &mut Transaction<'_>, cutoff: i64) -> Result<u64> {
    blobs::purge_stored_before(tx, "virus_store", cutoff)
}

/// Which of `keys` are stored, in order.
pub fn effects_done(tx: &mut Transaction<'_>, keys: &[EffectKey]) -> Result<Vec<bool>> {
    let wanted: Vec<&str> = keys.iter().map(EffectKey::as_str).collect();
    let stored: std::collections::HashSet<String> = tx
        .query("SELECT key FROM effects WHERE key = ANY($1)", &[&wanted])?
        .iter()
        .map(|r| r.get(0))
        .collect();
    Ok(wanted.iter().map(|k| stored.contains(*k)).collect())
}

/// Stores `key` as done at `at`; `false` (and nothing stored) if it was already, by
/// this transaction or a committed one. A concurrent transaction storing the same key
/// makes this one wait for its end.
pub fn claim_effect(tx: &mut Transaction<'_>, key: &EffectKey, at: i64) -> Result<bool> {
    Ok(tx.execute(
        "INSERT INTO effects (key, at) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        &[&key.as_str(), &at],
    )? > 0)
}

/// Removes the keys stored before `cutoff`; returns how many.
pub fn purge_effects(tx: &mut Transaction<'_>, cutoff: i64) -> Result<u64> {
    Ok(tx.execute("DELETE FROM effects WHERE at < $1", &[&cutoff])?)
}
