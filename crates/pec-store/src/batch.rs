//! Atomic acceptance (SQLite backend): a [`Batch`] — deliveries, archive
//! copies, queue entries, virus store entries, timers, timer updates, notices sent,
//! completed queue entries, effect keys and log records — is applied inside one job of
//! the writer, hence one savepoint of one transaction:
//! if any item fails, every item is rolled back and the error names the item. Blob
//! files written before the failure stay as unreferenced files (content-addressed,
//! so harmless and reused if the bytes come again).
//!
//! Before anything is written the batch is checked against what is already done: an
//! effect key already stored, or a queue entry to complete that is gone, makes the
//! batch store nothing and say so ([`AlreadyDone`]). The writer runs one job at a
//! time, so the check and the writes that follow it cannot interleave with another
//! batch's.
//!
//! Inline blobs (most of them: see [`crate::blobs`]) are rows written in the same
//! transaction. The files of larger blobs are written and fsynced by the caller
//! ([`Prepared::write_blobs`]) before the job reaches the writer thread, so that
//! concurrent callers fsync their files in parallel and the writer's group transaction
//! pays only for SQLite's own commit.

use rusqlite::Connection;

use crate::blobs::{self, SqliteBlobs};
use crate::error::{BatchItem, Error, Result};
use crate::messages::{self, Delivery};
use crate::model::{Admission, AlreadyDone, Batch, Committed};
use crate::{archive, effects, legal_log, queue, registry, timers, virus};

/// A batch with every blob hash computed, ready for the writer thread (or a PostgreSQL
/// transaction).
pub struct Prepared {
    /// Deliveries, with their hashes.
    pub(crate) deliveries: Vec<Delivery>,
    /// Hashes of the archive copies, in order.
    pub(crate) archive_hashes: Vec<String>,
    /// Hashes of the queued messages, in order.
    pub(crate) queue_hashes: Vec<String>,
    /// Hashes of the infected messages, in order.
    pub(crate) virus_hashes: Vec<String>,
    /// The rest of the batch (its `deliveries` moved out above).
    pub(crate) batch: Batch,
}

impl Prepared {
    /// Hashes every message of `batch` (off the writer thread).
    pub fn new(mut batch: Batch) -> Self {
        let deliveries = std::mem::take(&mut batch.deliveries)
            .into_iter()
            .map(|d| Delivery::new(d.address, d.folder, d.bytes, d.flags, d.internaldate))
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
    pub fn write_blobs(&self, blobs: &SqliteBlobs) -> Result<()> {
        for (i, d) in self.deliveries.iter().enumerate() {
            blobs
                .prepare(&d.hash, &d.bytes)
                .map_err(item(delivery(i, d)))?;
        }
        for (i, (a, hash)) in self
            .batch
            .archive
            .iter()
            .zip(&self.archive_hashes)
            .enumerate()
        {
            blobs
                .prepare(hash, &a.bytes)
                .map_err(item(BatchItem::Archive(i)))?;
        }
        for (i, (q, hash)) in self.batch.queue.iter().zip(&self.queue_hashes).enumerate() {
            blobs
                .prepare(hash, &q.message)
                .map_err(item(BatchItem::Queue(i)))?;
        }
        for (i, (v, hash)) in self.batch.virus.iter().zip(&self.virus_hashes).enumerate() {
            blobs
                .prepare(hash, &v.message)
                .map_err(item(BatchItem::Virus(i)))?;
        }
        Ok(())
    }
}

/// Names the failing item of a batch.
pub(crate) fn item(item: BatchItem) -> impl FnOnce(Error) -> Error {
    move |source| Error::BatchItem {
        item,
        source: Box::new(source),
    }
}

/// The name of delivery `index`.
pub(crate) fn delivery(index: usize, d: &Delivery) -> BatchItem {
    BatchItem::Delivery {
        index,
        address: d.address.clone(),
    }
}

/// What of `batch` is done already, if anything: the first effect key stored, else the
/// first queue entry to complete that is gone.
fn already_done(conn: &Connection, batch: &Batch) -> Result<Option<AlreadyDone>> {
    for e in &batch.effects {
        if effects::exists(conn, &e.key)? {
            return Ok(Some(AlreadyDone::Effect(e.key.clone())));
        }
    }
    for id in &batch.completed {
        if !queue::exists(conn, *id)? {
            return Ok(Some(AlreadyDone::QueueEntry(*id)));
        }
    }
    Ok(None)
}

/// Applies a prepared batch in the caller's transaction (savepoint); any
/// error means the caller must roll back, which the writer does. A batch found
/// [`AlreadyDone`] changes nothing and is not an error.
pub fn apply(conn: &Connection, blobs: &SqliteBlobs, p: &Prepared) -> Result<Committed> {
    if let Some(done) = already_done(conn, &p.batch)? {
        return Ok(Committed {
            already_done: Some(done),
            ..Committed::default()
        });
    }
    let mut done = Committed::default();
    for (i, d) in p.deliveries.iter().enumerate() {
        done.delivered
            .push(messages::deliver(conn, blobs, d).map_err(item(delivery(i, d)))?);
    }
    for (i, (a, hash)) in p.batch.archive.iter().zip(&p.archive_hashes).enumerate() {
        let size = a.bytes.len() as u64;
        match archive::admit(conn, &a.address, a.direction, &a.kind, size)
            .map_err(item(BatchItem::Archive(i)))?
        {
            Admission::Keep => {}
            Admission::Excluded => continue,
            Admission::Full => {
                done.archive_full.push(a.address.clone());
                continue;
            }
        }
        let entry = archive::archive(
            conn,
            blobs,
            (&a.address, hash, &a.bytes),
            a.direction,
            &a.kind,
            a.at,
        )
        .map_err(item(BatchItem::Archive(i)))?;
        done.archived.push(entry);
    }
    for (i, (q, hash)) in p.batch.queue.iter().zip(&p.queue_hashes).enumerate() {
        done.queued
            .push(queue::enqueue(conn, blobs, hash, q).map_err(item(BatchItem::Queue(i)))?);
    }
    for (i, (v, hash)) in p.batch.virus.iter().zip(&p.virus_hashes).enumerate() {
        done.virus
            .push(virus::store(conn, blobs, hash, v).map_err(item(BatchItem::Virus(i)))?);
    }
    for (i, t) in p.batch.timers.iter().enumerate() {
        timers::start(conn, blobs, std::slice::from_ref(t)).map_err(item(BatchItem::Timer(i)))?;
    }
    for (i, u) in p.batch.presa_in_carico.iter().enumerate() {
        timers::mark_presa_in_carico(conn, &u.identificativo, &u.recipients, u.at)
            .map_err(item(BatchItem::PresaInCarico(i)))?;
    }
    for (i, u) in p.batch.outcomes.iter().enumerate() {
        let recipient = u.recipient.trim().to_lowercase();
        timers::record_outcome(conn, &u.identificativo, &recipient, u.outcome)
            .map_err(item(BatchItem::Outcome(i)))?;
    }
    for (i, n) in p.batch.notices_sent.iter().enumerate() {
        timers::mark_notice_sent(conn, &n.identificativo, &n.recipient, n.kind)
            .map_err(item(BatchItem::NoticeSent(i)))?;
    }
    for (i, id) in p.batch.completed.iter().enumerate() {
        queue::complete(conn, *id).map_err(item(BatchItem::Completed(i)))?;
    }
    for (i, e) in p.batch.effects.iter().enumerate() {
        effects::record(conn, &e.key, e.at).map_err(item(BatchItem::Effect(i)))?;
    }
    done.logged = legal_log::append(conn, &p.batch.log).map_err(item(BatchItem::Log))?;
    for (i, e) in p.batch.registry_events.iter().enumerate() {
        let delivered = e.delivery.and_then(|d| done.delivered.get(d));
        registry::record(conn, e, delivered).map_err(item(BatchItem::RegistryEvent(i)))?;
    }
    Ok(done)
}
