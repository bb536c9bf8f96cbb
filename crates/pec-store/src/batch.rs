//! Atomic acceptance (SQLite backend): a [`Batch`] — deliveries, archive
//! copies, queue entries, virus store entries, timers, timer updates, completed
//! queue entries and log records — is applied inside one job of the writer, hence
//! one savepoint of one transaction:
//! if any item fails, every item is rolled back and the error names the item. Blob
//! files written before the failure stay as unreferenced files (content-addressed,
//! so harmless and reused if the bytes come again).
//!
//! Inline blobs (most of them: see [`crate::blobs`]) are rows written in the same
//! transaction. The files of larger blobs are written and fsynced by the caller
//! ([`Prepared::write_blobs`]) before the job reaches the writer thread, so that
//! concurrent callers fsync their files in parallel and the writer's group transaction
//! pays only for SQLite's own commit.

use rusqlite::Connection;

use crate::blobs::{self, Blobs};
use crate::error::{Error, Result};
use crate::messages::{self, Delivery};
use crate::model::{Batch, Committed};
use crate::{archive, legal_log, queue, timers, virus};

/// A batch with every blob hash computed, ready for the writer thread.
pub struct Prepared {
    /// Deliveries, with their hashes.
    deliveries: Vec<Delivery>,
    /// Hashes of the archive copies, in order.
    archive_hashes: Vec<String>,
    /// Hashes of the queued messages, in order.
    queue_hashes: Vec<String>,
    /// Hashes of the infected messages, in order.
    virus_hashes: Vec<String>,
    /// The rest of the batch (its `deliveries` moved out above).
    batch: Batch,
}

impl Prepared {
    /// Hashes every message of `batch` (off the writer thread).
    pub fn new(mut batch: Batch) -> Self {
        let deliveries = std::mem::take(&mut batch.deliveries)
            .into_iter()
            .map(|d| Delivery {
                hash: blobs::hash_hex(&d.bytes),
                address: d.address,
                folder: d.folder,
                bytes: d.bytes,
                flags: d.flags,
                internaldate: d.internaldate,
            })
            .collect();
        Prepared {
            deliveries,
            archive_hashes: batch
                .archive
                .iter()
                .map(|a| blobs::hash_hex(&a.bytes))
                .collect(),
            queue_hashes: batch
                .queue
                .iter()
                .map(|q| blobs::hash_hex(&q.message))
                .collect(),
            virus_hashes: batch
                .virus
                .iter()
                .map(|v| blobs::hash_hex(&v.message))
                .collect(),
            batch,
        }
    }
}

impl Prepared {
    /// Writes (and fsyncs) the file of every blob of the batch too large to be inline,
    /// in the caller's thread; the writer then finds them present. A failure names the
    /// item, as [`apply`] does.
    pub fn write_blobs(&self, blobs: &Blobs) -> Result<()> {
        for (i, d) in self.deliveries.iter().enumerate() {
            blobs
                .prepare(&d.hash, &d.bytes)
                .map_err(item("deliveries", i))?;
        }
        for (i, (a, hash)) in self
            .batch
            .archive
            .iter()
            .zip(&self.archive_hashes)
            .enumerate()
        {
            blobs.prepare(hash, &a.bytes).map_err(item("archive", i))?;
        }
        for (i, (q, hash)) in self.batch.queue.iter().zip(&self.queue_hashes).enumerate() {
            blobs.prepare(hash, &q.message).map_err(item("queue", i))?;
        }
        for (i, (v, hash)) in self.batch.virus.iter().zip(&self.virus_hashes).enumerate() {
            blobs.prepare(hash, &v.message).map_err(item("virus", i))?;
        }
        Ok(())
    }
}

/// Names the failing item of a batch.
fn item(list: &str, index: usize) -> impl FnOnce(Error) -> Error {
    let item = format!("{list}[{index}]");
    move |source| Error::BatchItem {
        item,
        source: Box::new(source),
    }
}

/// Applies a prepared batch in the caller's transaction (savepoint); any
/// error means the caller must roll back, which the writer does.
pub fn apply(conn: &Connection, blobs: &Blobs, p: &Prepared) -> Result<Committed> {
    let mut done = Committed::default();
    for (i, d) in p.deliveries.iter().enumerate() {
        done.delivered
            .push(messages::deliver(conn, blobs, d).map_err(item("deliveries", i))?);
    }
    for (i, (a, hash)) in p.batch.archive.iter().zip(&p.archive_hashes).enumerate() {
        let entry = archive::archive(
            conn,
            blobs,
            (&a.address, hash, &a.bytes),
            a.direction,
            &a.kind,
            a.at,
        )
        .map_err(item("archive", i))?;
        done.archived.push(entry);
    }
    for (i, (q, hash)) in p.batch.queue.iter().zip(&p.queue_hashes).enumerate() {
        done.queued
            .push(queue::enqueue(conn, blobs, hash, q).map_err(item("queue", i))?);
    }
    for (i, (v, hash)) in p.batch.virus.iter().zip(&p.virus_hashes).enumerate() {
        done.virus
            .push(virus::store(conn, blobs, hash, v).map_err(item("virus", i))?);
    }
    for (i, t) in p.batch.timers.iter().enumerate() {
        timers::start(conn, blobs, std::slice::from_ref(t)).map_err(item("timers", i))?;
    }
    for (i, u) in p.batch.presa_in_carico.iter().enumerate() {
        timers::mark_presa_in_carico(conn, &u.identificativo, &u.recipients, u.at)
            .map_err(item("presa_in_carico", i))?;
    }
    for (i, u) in p.batch.outcomes.iter().enumerate() {
        let recipient = u.recipient.trim().to_lowercase();
        timers::record_outcome(conn, &u.identificativo, &recipient, u.outcome)
            .map_err(item("outcomes", i))?;
    }
    for (i, id) in p.batch.completed.iter().enumerate() {
        queue::complete(conn, *id).map_err(item("completed", i))?;
    }
    done.logged = legal_log::append(conn, &p.batch.log).map_err(|source| Error::BatchItem {
        item: "log".into(),
        source: Box::new(source),
    })?;
    Ok(done)
}
