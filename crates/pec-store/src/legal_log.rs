//! The legal message log (SQLite backend, spec §8.1): append-only records,
//! hash-chained so that editing, removing, inserting or reordering any record
//! — even directly in the database file — is detected by [`verify`].
//!
//! Each record's hash is `SHA-256(previous hash || canonical(record))`, hex;
//! the previous hash enters as its 64 hex characters, and the first record
//! chains from [`GENESIS`]. The one-row table `legal_log_chain` keeps the
//! checkpoint (the last purged record, or genesis) the remaining records
//! chain from, and the head (the last appended record), so a removed tail
//! shows too.

use openssl::sha::Sha256;
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};

use crate::cached;
use crate::error::{Error, Result};
use crate::lookup::{from_db, list_from_db, list_to_db, to_db};
use crate::model::{LogEntry, LogFault, LogHead, LogQuery, LogRecord, LogVerification};

/// The hash the first record chains from.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Domain separation: a canonical form starts with this, so it can never be
/// mistaken for another structure hashed by the program.
const CANONICAL_TAG: &[u8] = b"pec-store legal log record v1\0";

/// Columns read by [`to_record`].
const COLUMNS: &str = "seq, at, at_local, event, msgid, original_msgid, sender, recipients, \
                       subject, generated_ids, gestore, detail, hash";

/// Appends a length-prefixed string to a canonical form.
fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Appends a count-prefixed list of strings to a canonical form.
fn put_list(out: &mut Vec<u8>, items: &[String]) {
    out.extend_from_slice(&(items.len() as u64).to_be_bytes());
    for item in items {
        put_str(out, item);
    }
}

/// The canonical serialization of a record: every field in a fixed order,
/// integers as 8 big-endian bytes, strings length-prefixed, lists
/// count-prefixed — unambiguous, and independent of how the row is stored.
fn canonical(seq: u64, e: &LogEntry) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(CANONICAL_TAG);
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&e.at.to_be_bytes());
    for s in [
        &e.at_local,
        &e.event,
        &e.msgid,
        &e.original_msgid,
        &e.sender,
    ] {
        put_str(&mut out, s);
    }
    put_list(&mut out, &e.recipients);
    put_str(&mut out, &e.subject);
    put_list(&mut out, &e.generated_ids);
    put_str(&mut out, &e.gestore);
    put_str(&mut out, &e.detail);
    out
}

/// The hash of record `seq` holding `entry`, following `prev`.
pub(crate) fn chain_hash(prev: &str, seq: u64, entry: &LogEntry) -> String {
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(&canonical(seq, entry));
    crate::blobs::lower_hex(&h.finish())
}

/// Reads a [`LogRecord`] from a row of [`COLUMNS`].
fn to_record(r: &Row<'_>) -> Result<LogRecord> {
    let recipients: String = r.get(7)?;
    let generated: String = r.get(9)?;
    Ok(LogRecord {
        seq: from_db(r.get(0)?, "legal log seq")?,
        entry: LogEntry {
            at: r.get(1)?,
            at_local: r.get(2)?,
            event: r.get(3)?,
            msgid: r.get(4)?,
            original_msgid: r.get(5)?,
            sender: r.get(6)?,
            recipients: list_from_db(&recipients, "legal log recipients")?,
            subject: r.get(8)?,
            generated_ids: list_from_db(&generated, "legal log generated ids")?,
            gestore: r.get(10)?,
            detail: r.get(11)?,
        },
        hash: r.get(12)?,
    })
}

/// The chain's checkpoint and head.
fn chain_state(conn: &Connection) -> Result<(LogHead, LogHead)> {
    let row: Option<(i64, String, i64, String)> = cached::query_row(
        conn,
        "SELECT checkpoint_seq, checkpoint_hash, head_seq, head_hash
         FROM legal_log_chain WHERE id = 1",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )
    .optional()?;
    let (cseq, chash, hseq, hhash) =
        row.ok_or_else(|| Error::Corrupt("legal log chain state is missing".into()))?;
    Ok((
        LogHead {
            seq: from_db(cseq, "legal log checkpoint seq")?,
            hash: chash,
        },
        LogHead {
            seq: from_db(hseq, "legal log head seq")?,
            hash: hhash,
        },
    ))
}

/// Appends entries in order, in the caller's transaction; returns the records.
pub fn append(conn: &Connection, entries: &[LogEntry]) -> Result<Vec<LogRecord>> {
    let (_, mut head) = chain_state(conn)?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO legal_log (seq, at, at_local, event, msgid, original_msgid, sender,
             recipients, subject, generated_ids, gestore, detail, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?;
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        let seq = head.seq + 1;
        let hash = chain_hash(&head.hash, seq, e);
        insert.execute(params![
            to_db(seq),
            e.at,
            e.at_local,
            e.event,
            e.msgid,
            e.original_msgid,
            e.sender,
            list_to_db(&e.recipients)?,
            e.subject,
            list_to_db(&e.generated_ids)?,
            e.gestore,
            e.detail,
            hash,
        ])?;
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
    cached::execute(
        conn,
        "UPDATE legal_log_chain SET head_seq = ?1, head_hash = ?2 WHERE id = 1",
        params![to_db(head.seq), head.hash],
    )?;
    Ok(out)
}

/// A walk along the chain, fed the stored records in sequence order by a backend: it
/// recomputes each hash from its predecessor and stops at the first problem.
pub(crate) struct Walk {
    /// Records whose hash was recomputed.
    pub checked: u64,
    /// The last record that verified (the start if none).
    pub last: LogHead,
    /// The first problem, where the walk stopped.
    pub fault: Option<LogFault>,
}

impl Walk {
    /// A walk from `start` (the checkpoint).
    pub fn new(start: LogHead) -> Self {
        Walk {
            checked: 0,
            last: start,
            fault: None,
        }
    }

    /// Takes the next stored record: its sequence number as stored, and the record if it
    /// still decodes (a row that no longer does — a list that is not a list, a text
    /// turned into a number — was edited as surely as one with a wrong hash). Returns
    /// whether the walk goes on.
    pub fn step(&mut self, raw_seq: i64, record: Option<LogRecord>) -> bool {
        let expected = self.last.seq + 1;
        let found = u64::try_from(raw_seq).unwrap_or(0);
        if found != expected {
            self.fault = Some(LogFault::OutOfSequence { expected, found });
            return false;
        }
        self.checked += 1;
        let intact =
            record.filter(|rec| chain_hash(&self.last.hash, rec.seq, &rec.entry) == rec.hash);
        match intact {
            Some(rec) => {
                self.last = LogHead {
                    seq: rec.seq,
                    hash: rec.hash,
                };
                true
            }
            None => {
                self.fault = Some(LogFault::Altered { seq: found });
                false
            }
        }
    }

    /// The verification of the whole log: this walk over every record, against the
    /// chain's recorded checkpoint and head.
    pub fn verification(self, checkpoint: LogHead, head: LogHead) -> LogVerification {
        let last = self.last;
        let fault = self.fault.or_else(|| {
            if last.seq < head.seq {
                Some(LogFault::Truncated {
                    last: last.seq,
                    head: head.seq,
                })
            } else if last != head {
                Some(LogFault::HeadMismatch { seq: last.seq })
            } else {
                None
            }
        });
        LogVerification {
            checked: self.checked,
            checkpoint,
            head,
            fault,
        }
    }

    /// What a purge may remove: the records walked, provided they all verified.
    pub fn purgeable(self) -> Result<Self> {
        match &self.fault {
            Some(fault) => Err(Error::Corrupt(format!(
                "legal log fails verification at seq {}, not purging: {fault:?}",
                fault.seq()
            ))),
            None => Ok(self),
        }
    }
}

/// Recomputes the chain from `start` over the records with `seq < below`
/// (all if `None`), in sequence order, stopping at the first problem.
fn walk(conn: &Connection, start: LogHead, below: Option<u64>) -> Result<Walk> {
    let below = below.map_or(i64::MAX, to_db);
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM legal_log WHERE seq < ?1 ORDER BY seq"
    ))?;
    let mut rows = stmt.query([below])?;
    let mut walk = Walk::new(start);
    while let Some(r) = rows.next()? {
        if !walk.step(r.get(0)?, to_record(r).ok()) {
            break;
        }
    }
    Ok(walk)
}

/// Verifies the whole log: every record from the checkpoint to the head.
pub fn verify(conn: &Connection) -> Result<LogVerification> {
    let (checkpoint, head) = chain_state(conn)?;
    let walk = walk(conn, checkpoint.clone(), None)?;
    Ok(walk.verification(checkpoint, head))
}

/// The chain's head: the last record appended (genesis before the first).
pub fn head(conn: &Connection) -> Result<LogHead> {
    Ok(chain_state(conn)?.1)
}

/// How many records of each event have `from <= at < to`, by event.
pub fn count_events(conn: &Connection, from: i64, to: i64) -> Result<Vec<(String, u64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT event, count(*) FROM legal_log WHERE at >= ?1 AND at < ?2
         GROUP BY event ORDER BY event",
    )?;
    let mut rows = stmt.query([from, to])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push((r.get(0)?, from_db(r.get(1)?, "legal log event count")?));
    }
    Ok(out)
}

/// Records matching `q`, in sequence order.
pub fn search(conn: &Connection, q: &LogQuery) -> Result<Vec<LogRecord>> {
    let mut clauses = Vec::new();
    let mut args: Vec<Value> = Vec::new();
    if let Some(msgid) = &q.msgid {
        args.push(Value::Text(msgid.clone()));
        let n = args.len();
        clauses.push(format!("(msgid = ?{n} OR original_msgid = ?{n})"));
    }
    if let Some(addr) = &q.address {
        args.push(Value::Text(addr.trim().to_string()));
        let n = args.len();
        clauses.push(format!(
            "(lower(sender) = lower(?{n}) OR EXISTS
              (SELECT 1 FROM json_each(recipients) WHERE lower(value) = lower(?{n})))"
        ));
    }
    if let Some(from) = q.from {
        args.push(Value::Integer(from));
        clauses.push(format!("at >= ?{}", args.len()));
    }
    if let Some(to) = q.to {
        args.push(Value::Integer(to));
        clauses.push(format!("at < ?{}", args.len()));
    }
    let filter = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM legal_log {filter} ORDER BY seq"
    ))?;
    let mut rows = stmt.query(params_from_iter(args))?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(to_record(r)?);
    }
    Ok(out)
}

/// Removes the oldest records, up to (not including) the first one with
/// `at >= cutoff`, and moves the checkpoint to the last one removed so the
/// rest still verifies. The removed records are verified first: a tampered
/// log is refused rather than having the evidence purged. Returns how many.
pub fn purge(conn: &Connection, cutoff: i64) -> Result<u64> {
    let (checkpoint, _) = chain_state(conn)?;
    let keep_from: Option<i64> = cached::query_row(
        conn,
        "SELECT min(seq) FROM legal_log WHERE at >= ?1",
        [cutoff],
        |r| r.get(0),
    )?;
    let below = keep_from.map(|s| from_db(s, "legal log seq")).transpose()?;
    let walk = walk(conn, checkpoint, below)?.purgeable()?;
    if walk.checked == 0 {
        return Ok(0);
    }
    cached::execute(
        conn,
        "DELETE FROM legal_log WHERE seq <= ?1",
        [to_db(walk.last.seq)],
    )?;
    cached::execute(
        conn,
        "UPDATE legal_log_chain SET checkpoint_seq = ?1, checkpoint_hash = ?2 WHERE id = 1",
        params![to_db(walk.last.seq), walk.last.hash],
    )?;
    Ok(walk.checked)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(subject: &str) -> LogEntry {
        LogEntry {
            at: 1_700_000_000,
            at_local: "2023-11-14T23:13:20+01:00".into(),
            event: "accettazione".into(),
            msgid: "opec.1@pec.example.it".into(),
            subject: subject.into(),
            recipients: vec!["a@x.it".into()],
            ..LogEntry::default()
        }
    }

    #[test]
    fn canonical_form_is_unambiguous() {
        // Moving a character between adjacent fields must change the form.
        let mut a = entry("x");
        a.msgid = "ab".into();
        a.original_msgid = "c".into();
        let mut b = a.clone();
        b.msgid = "a".into();
        b.original_msgid = "bc".into();
        assert_ne!(canonical(1, &a), canonical(1, &b));
        // So must moving an item between the two lists.
        let mut c = entry("x");
        c.recipients = vec!["r".into(), "g".into()];
        c.generated_ids = vec![];
        let mut d = c.clone();
        d.recipients = vec!["r".into()];
        d.generated_ids = vec!["g".into()];
        assert_ne!(canonical(1, &c), canonical(1, &d));
    }

    #[test]
    fn hash_covers_seq_content_and_predecessor() {
        let e = entry("s");
        let h = chain_hash(GENESIS, 1, &e);
        assert_eq!(h.len(), 64);
        assert_ne!(h, chain_hash(GENESIS, 2, &e));
        assert_ne!(h, chain_hash(&h, 1, &e));
        assert_ne!(h, chain_hash(GENESIS, 1, &entry("t")));
        assert_eq!(h, chain_hash(GENESIS, 1, &e));
    }
}
