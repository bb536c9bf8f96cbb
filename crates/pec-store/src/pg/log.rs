//! The legal log (PostgreSQL backend): the hash chain of the embedded store
//! ([`crate::legal_log`]: same canonical form, same hashes, same verification), one chain
//! for the whole gestore however many nodes write it. An append locks the chain's row
//! (`legal_log_chain`) until its transaction commits, so the appends of all nodes are
//! serialised by the database: every record follows the one committed before it, and
//! `pecd log verify` on any node checks every record of every node.

use postgres::Transaction;

use crate::error::{Error, Result};
use crate::legal_log::{Walk, chain_hash};
use crate::lookup::{from_db, to_db};
use crate::model::{LogEntry, LogHead, LogQuery, LogRecord, LogVerification};

/// Columns of a [`LogRecord`], read by [`to_record`].
const COLUMNS: &str = "seq, at, at_local, event, msgid, original_msgid, sender, recipients, \
                       subject, generated_ids, gestore, detail, hash";

/// Records verified per query of a walk, so memory stays bounded on a long log.
const PAGE: i64 = 1000;

/// Builds a [`LogRecord`] from a row of [`COLUMNS`].
fn to_record(r: &postgres::Row) -> Result<LogRecord> {
    Ok(LogRecord {
        seq: from_db(r.get(0), "legal log seq")?,
        entry: LogEntry {
            at: r.get(1),
            at_local: r.get(2),
            event: r.get(3),
            msgid: r.get(4),
            original_msgid: r.get(5),
            sender: r.get(6),
            recipients: r.get(7),
            subject: r.get(8),
            generated_ids: r.get(9),
            gestore: r.get(10),
            detail: r.get(11),
        },
        hash: r.get(12),
    })
}

/// The chain's checkpoint and head; with `lock`, the chain's row is locked until the
/// transaction ends.
fn chain_state(tx: &mut Transaction<'_>, lock: bool) -> Result<(LogHead, LogHead)> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    let r = tx
        .query_opt(
            &format!(
                "SELECT checkpoint_seq, checkpoint_hash, head_seq, head_hash
                 FROM legal_log_chain WHERE id = 1{lock}"
            ),
            &[],
        )?
        .ok_or_else(|| Error::Corrupt("legal log chain state is missing".into()))?;
    Ok((
        LogHead {
            seq: from_db(r.get(0), "legal log checkpoint seq")?,
            hash: r.get(1),
        },
        LogHead {
            seq: from_db(r.get(2), "legal log head seq")?,
            hash: r.get(3),
        },
    ))
}

/// Appends entries in order, in the caller's transaction, holding the chain until it
/// commits; returns the records. No entries: nothing locked, nothing written.
pub fn append(tx: &mut Transaction<'_>, entries: &[LogEntry]) -> Result<Vec<LogRecord>> {
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    let (_, mut head) = chain_state(tx, true)?;
    let insert = tx.prepare(
        "INSERT INTO legal_log (seq, at, at_local, event, msgid, original_msgid, sender,
             recipients, subject, generated_ids, gestore, detail, hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )?;
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        let seq = head.seq + 1;
        let hash = chain_hash(&head.hash, seq, e);
        tx.execute(
            &insert,
            &[
                &to_db(seq),
                &e.at,
                &e.at_local,
                &e.event,
                &e.msgid,
                &e.original_msgid,
                &e.sender,
                &e.recipients,
                &e.subject,
                &e.generated_ids,
                &e.gestore,
                &e.detail,
                &hash,
            ],
        )?;
        head = LogHead {
            seq,
            hash: hash.clone(),
        };
        out.push(LogRecord {
            seq,
            entry: e.clone(),
            hash,
        });
    }
    tx.execute(
        "UPDATE legal_log_chain SET head_seq = $1, head_hash = $2 WHERE id = 1",
        &[&to_db(head.seq), &head.hash],
    )?;
    Ok(out)
}

/// Walks the chain from `start` over the records with `seq < below`, a page at a time.
fn walk(tx: &mut Transaction<'_>, start: LogHead, below: i64) -> Result<Walk> {
    let mut walk = Walk::new(start);
    let mut after = i64::MIN;
    loop {
        let rows = tx.query(
            &format!(
                "SELECT {COLUMNS} FROM legal_log WHERE seq > $1 AND seq < $2
                 ORDER BY seq LIMIT $3"
            ),
            &[&after, &below, &PAGE],
        )?;
        for r in &rows {
            after = r.get(0);
            if !walk.step(after, to_record(r).ok()) {
                return Ok(walk);
            }
        }
        if (rows.len() as i64) < PAGE {
            return Ok(walk);
        }
    }
}

/// Verifies the whole log, in the caller's (snapshot) transaction.
pub fn verify(tx: &mut Transaction<'_>) -> Result<LogVerification> {
    let (checkpoint, head) = chain_state(tx, false)?;
    let walk = walk(tx, checkpoint.clone(), i64::MAX)?;
    Ok(walk.verification(checkpoint, head))
}

/// The chain's head: the last record appended (genesis before the first).
pub fn head(tx: &mut Transaction<'_>) -> Result<LogHead> {
    Ok(chain_state(tx, false)?.1)
}

/// How many records of each event have `from <= at < to`, by event.
pub fn count_events(tx: &mut Transaction<'_>, from: i64, to: i64) -> Result<Vec<(String, u64)>> {
    tx.query(
        "SELECT event, count(*) FROM legal_log WHERE at >= $1 AND at < $2
         GROUP BY event ORDER BY event",
        &[&from, &to],
    )?
    .iter()
    .map(|r| Ok((r.get(0), from_db(r.get(1), "legal log event count")?)))
    .collect()
}

/// Records matching `q`, in sequence order.
pub fn search(tx: &mut Transaction<'_>, q: &LogQuery) -> Result<Vec<LogRecord>> {
    let address = q.address.as_ref().map(|a| a.trim().to_string());
    tx.query(
        &format!(
            "SELECT {COLUMNS} FROM legal_log
             WHERE ($1::text IS NULL OR msgid = $1 OR original_msgid = $1)
               AND ($2::text IS NULL OR lower(sender) = lower($2)
                    OR EXISTS (SELECT 1 FROM unnest(recipients) r WHERE lower(r) = lower($2)))
               AND ($3::bigint IS NULL OR at >= $3)
               AND ($4::bigint IS NULL OR at < $4)
             ORDER BY seq"
        ),
        &[&q.msgid, &address, &q.from, &q.to],
    )?
    .iter()
    .map(to_record)
    .collect()
}

/// Removes the oldest records up to the first one with `at >= cutoff`, after verifying
/// them, and moves the checkpoint to the last one removed. Returns how many.
pub fn purge(tx: &mut Transaction<'_>, cutoff: i64) -> Result<u64> {
    let (checkpoint, _) = chain_state(tx, true)?;
    let keep_from: Option<i64> = tx
        .query_one("SELECT min(seq) FROM legal_log WHERE at >= $1", &[&cutoff])?
        .get(0);
    let walk = walk(tx, checkpoint, keep_from.unwrap_or(i64::MAX))?.purgeable()?;
    if walk.checked == 0 {
        return Ok(0);
    }
    let last = to_db(walk.last.seq);
    tx.execute("DELETE FROM legal_log WHERE seq <= $1", &[&last])?;
    tx.execute(
        "UPDATE legal_log_chain SET checkpoint_seq = $1, checkpoint_hash = $2 WHERE id = 1",
        &[&last, &walk.last.hash],
    )?;
    Ok(walk.checked)
}
