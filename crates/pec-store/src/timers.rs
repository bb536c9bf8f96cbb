//! The sender gestore's 12 h / 24 h timers (SQLite backend, spec §7.3), one
//! row per (identificativo, PEC recipient):
//!
//! - the 12 h preavviso is due from `dispatched_at + 12 h` while there is no
//!   presa in carico and no final outcome for the recipient;
//! - the 24 h notice is due from `dispatched_at + threshold` (the caller picks
//!   the threshold between 22 h and 24 h) while there is no final outcome;
//!   sending it ends tracking (outcome [`Outcome::Timeout24`]).
//!
//! A delivery, a delivery error or a virus notice is a final outcome and
//! stops both (spec §7.3 note).

use rusqlite::{Connection, Row, params};

use crate::accounts::unique;
use crate::blobs::SqliteBlobs;
use crate::cached;
use crate::error::{Error, Result};
use crate::lookup;
use crate::model::{DueNotice, NewTimer, NoticeKind, Outcome, TWELVE_HOURS, Timer};

/// Columns read by [`to_timer`].
const COLUMNS: &str = "identificativo, recipient, sender, subject, envelope_blob, dispatched_at, \
                       presa_in_carico_at, delivered, outcome, notice12_sent, notice24_sent";

/// Reads a [`Timer`] from a row of [`COLUMNS`].
fn to_timer(r: &Row<'_>) -> Result<Timer> {
    let outcome: String = r.get(8)?;
    Ok(Timer {
        identificativo: r.get(0)?,
        recipient: r.get(1)?,
        sender: r.get(2)?,
        subject: r.get(3)?,
        envelope: r.get(4)?,
        dispatched_at: r.get(5)?,
        presa_in_carico_at: r.get(6)?,
        delivered: r.get(7)?,
        outcome: Outcome::parse(&outcome)
            .ok_or_else(|| Error::Corrupt(format!("timer outcome {outcome:?}")))?,
        notice12_sent: r.get(9)?,
        notice24_sent: r.get(10)?,
    })
}

/// Runs a query of [`COLUMNS`] and collects the timers.
fn collect(conn: &Connection, sql: &str, args: impl rusqlite::Params) -> Result<Vec<Timer>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(args)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(to_timer(r)?);
    }
    Ok(out)
}

/// The error for an untracked (identificativo, recipient).
fn no_such(identificativo: &str, recipient: &str) -> Error {
    Error::NoSuchTimer {
        identificativo: identificativo.to_string(),
        recipient: recipient.to_string(),
    }
}

/// One recipient's timer.
fn get(conn: &Connection, identificativo: &str, recipient: &str) -> Result<Timer> {
    collect(
        conn,
        &format!("SELECT {COLUMNS} FROM timers WHERE identificativo = ?1 AND recipient = ?2"),
        params![identificativo, recipient],
    )?
    .pop()
    .ok_or_else(|| no_such(identificativo, recipient))
}

/// Starts tracking each recipient. The envelope blob, if named, must already
/// be stored (e.g. by a queue entry earlier in the same batch).
pub fn start(conn: &Connection, blobs: &SqliteBlobs, timers: &[NewTimer]) -> Result<()> {
    let mut insert = conn.prepare_cached(
        "INSERT INTO timers (identificativo, recipient, sender, subject, envelope_blob,
             dispatched_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for t in timers {
        let (recipient, _) = lookup::address(&t.recipient)?;
        if let Some(hash) = &t.envelope
            && !blobs.exists(conn, hash)?
        {
            return Err(Error::BlobMissing(hash.clone()));
        }
        insert
            .execute(params![
                t.identificativo,
                recipient,
                t.sender,
                t.subject,
                t.envelope,
                t.dispatched_at
            ])
            .map_err(|e| unique(e, &format!("timer {} {recipient}", t.identificativo)))?;
    }
    Ok(())
}

/// Records a presa in carico covering `recipients` (the first one counts);
/// recipients not tracked are ignored. Returns how many timers it changed.
pub fn mark_presa_in_carico(
    conn: &Connection,
    identificativo: &str,
    recipients: &[String],
    at: i64,
) -> Result<u64> {
    let mut update = conn.prepare_cached(
        "UPDATE timers SET presa_in_carico_at = ?3
         WHERE identificativo = ?1 AND recipient = ?2 AND presa_in_carico_at IS NULL",
    )?;
    let mut changed = 0;
    for r in recipients {
        changed += update.execute(params![identificativo, r.trim().to_lowercase(), at])? as u64;
    }
    Ok(changed)
}

/// Records a final outcome for one recipient. The first final outcome stays
/// (a late delivery after the 24 h notice only sets `delivered`); marking
/// [`Outcome::Pending`] changes nothing. Returns the timer.
pub fn mark_outcome(
    conn: &Connection,
    identificativo: &str,
    recipient: &str,
    outcome: Outcome,
) -> Result<Timer> {
    let recipient = recipient.trim().to_lowercase();
    if !record_outcome(conn, identificativo, &recipient, outcome)? {
        return Err(no_such(identificativo, &recipient));
    }
    get(conn, identificativo, &recipient)
}

/// What [`mark_outcome`] changes, for a recipient already in lower case; `false` if the
/// recipient has no timer (nothing changed).
pub fn record_outcome(
    conn: &Connection,
    identificativo: &str,
    recipient: &str,
    outcome: Outcome,
) -> Result<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE timers SET delivered = (delivered OR ?3),
                 outcome = CASE WHEN outcome = 'pending' THEN ?4 ELSE outcome END
             WHERE identificativo = ?1 AND recipient = ?2",
        )?
        .execute(params![
            identificativo,
            recipient,
            outcome == Outcome::Delivered,
            outcome.as_str()
        ])?;
    Ok(changed > 0)
}

/// The notices due at `now`, oldest dispatch first; `twenty_four_after` is
/// the delay after dispatch from which the 24 h notice is sent.
pub fn due_notices(conn: &Connection, now: i64, twenty_four_after: i64) -> Result<Vec<DueNotice>> {
    let twelve_before = now.saturating_sub(TWELVE_HOURS);
    let twenty_four_before = now.saturating_sub(twenty_four_after);
    let timers = collect(
        conn,
        &format!(
            "SELECT {COLUMNS} FROM timers
             WHERE outcome = 'pending'
               AND ((notice12_sent = 0 AND presa_in_carico_at IS NULL AND dispatched_at <= ?1)
                    OR (notice24_sent = 0 AND dispatched_at <= ?2))
             ORDER BY dispatched_at, identificativo, recipient"
        ),
        params![twelve_before, twenty_four_before],
    )?;
    Ok(notices_of(timers, twelve_before, twenty_four_before))
}

/// The notices due of `timers` (pending ones, in order): the 12 h one of a timer
/// dispatched at or before `twelve_before` with no presa in carico, the 24 h one of a
/// timer dispatched at or before `twenty_four_before`, each unless sent already.
pub(crate) fn notices_of(
    timers: Vec<Timer>,
    twelve_before: i64,
    twenty_four_before: i64,
) -> Vec<DueNotice> {
    let mut due = Vec::new();
    for timer in timers {
        let twelve = !timer.notice12_sent
            && timer.presa_in_carico_at.is_none()
            && timer.dispatched_at <= twelve_before;
        let twenty_four = !timer.notice24_sent && timer.dispatched_at <= twenty_four_before;
        if twelve {
            due.push(DueNotice {
                kind: NoticeKind::Twelve,
                timer: timer.clone(),
            });
        }
        if twenty_four {
            due.push(DueNotice {
                kind: NoticeKind::TwentyFour,
                timer,
            });
        }
    }
    due
}

/// Records that a notice was sent; the 24 h one ends tracking.
pub fn mark_notice_sent(
    conn: &Connection,
    identificativo: &str,
    recipient: &str,
    kind: NoticeKind,
) -> Result<()> {
    let sql = match kind {
        NoticeKind::Twelve => {
            "UPDATE timers SET notice12_sent = 1 WHERE identificativo = ?1 AND recipient = ?2"
        }
        NoticeKind::TwentyFour => {
            "UPDATE timers SET notice24_sent = 1,
                 outcome = CASE WHEN outcome = 'pending' THEN 'timeout24' ELSE outcome END
             WHERE identificativo = ?1 AND recipient = ?2"
        }
    };
    let recipient = recipient.trim().to_lowercase();
    match cached::execute(conn, sql, params![identificativo, recipient])? {
        0 => Err(no_such(identificativo, &recipient)),
        _ => Ok(()),
    }
}

/// Every tracked recipient of a transaction, by recipient.
pub fn list(conn: &Connection, identificativo: &str) -> Result<Vec<Timer>> {
    collect(
        conn,
        &format!("SELECT {COLUMNS} FROM timers WHERE identificativo = ?1 ORDER BY recipient"),
        [identificativo],
    )
}
