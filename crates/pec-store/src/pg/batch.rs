//! Atomic steps (PostgreSQL backend): a [`crate::Batch`] is one transaction, with the
//! embedded store's meaning ([`crate::batch`]): all or nothing, a failing item named by
//! [`BatchItem`], and a batch whose effect is done already stores nothing and says so.
//!
//! Several nodes commit batches at once, so "done already" cannot be a look before
//! writing: the effect keys are inserted first (`ON CONFLICT DO NOTHING`), which waits
//! for a concurrent transaction inserting the same key and then finds it; the queue
//! entries the batch completes are locked next, and one found gone was completed by
//! someone else. Either way the work so far is rolled back (a savepoint) and the batch
//! reports [`AlreadyDone`]. Only then come the deliveries (UIDs and quotas under row
//! locks), the other items, and last the legal log, whose chain stays locked for the
//! shortest time. Blobs are rows of the same transaction: a batch rolled back leaves
//! none.

use postgres::Transaction;

use super::changes::Node;
use super::{ledger, log, mailboxes, registry};
use crate::batch::{Prepared, delivery, item};
use crate::error::{BatchItem, Error, Result};
use crate::model::{Admission, AlreadyDone, Committed};

/// What of the batch is done already, having claimed its effect keys and locked the
/// queue entries it completes (both kept only if the batch goes on).
fn claim(tx: &mut Transaction<'_>, p: &Prepared) -> Result<Option<AlreadyDone>> {
    let effects = &p.batch.effects;
    for (i, e) in effects.iter().enumerate() {
        if effects[..i].iter().any(|earlier| earlier.key == e.key) {
            return Err(Error::BatchItem {
                item: BatchItem::Effect(i),
                source: Box::new(Error::AlreadyExists(e.key.to_string())),
            });
        }
    }
    for e in effects {
        if !ledger::claim_effect(tx, &e.key, e.at)? {
            return Ok(Some(AlreadyDone::Effect(e.key.clone())));
        }
    }
    for &id in &p.batch.completed {
        if !ledger::lock_entry(tx, id)? {
            return Ok(Some(AlreadyDone::QueueEntry(id)));
        }
    }
    Ok(None)
}

/// Applies a prepared batch in `tx`; an error means `tx` must be rolled back (the pool
/// does). A batch found [`AlreadyDone`] changes nothing and is not an error.
pub fn apply(tx: &mut Transaction<'_>, node: &Node, p: &Prepared) -> Result<Committed> {
    {
        let mut claims = tx.savepoint("claims")?;
        if let Some(done) = claim(&mut claims, p)? {
            // Dropping the savepoint undoes the claims made before the one that failed.
            drop(claims);
            return Ok(Committed {
                already_done: Some(done),
                ..Committed::default()
            });
        }
        claims.commit()?;
    }
    let b = &p.batch;
    let mut done = Committed::default();
    for (i, d) in p.deliveries.iter().enumerate() {
        done.delivered
            .push(mailboxes::deliver(tx, node, d).map_err(item(delivery(i, d)))?);
    }
    for (i, (a, hash)) in b.archive.iter().zip(&p.archive_hashes).enumerate() {
        let size = a.bytes.len() as u64;
        match mailboxes::admit_archive(tx, &a.address, a.direction, &a.kind, size)
            .map_err(item(BatchItem::Archive(i)))?
        {
            Admission::Keep => {}
            Admission::Excluded => continue,
            Admission::Full => {
                done.archive_full.push(a.address.clone());
                continue;
            }
        }
        let entry = mailboxes::archive(
            tx,
            node,
            (&a.address, hash, &a.bytes),
            a.direction,
            &a.kind,
            a.at,
        )
        .map_err(item(BatchItem::Archive(i)))?;
        done.archived.push(entry);
    }
    for (i, (q, hash)) in b.queue.iter().zip(&p.queue_hashes).enumerate() {
        done.queued
            .push(ledger::enqueue(tx, node, hash, q).map_err(item(BatchItem::Queue(i)))?);
    }
    for (i, (v, hash)) in b.virus.iter().zip(&p.virus_hashes).enumerate() {
        done.virus
            .push(ledger::store_virus(tx, hash, v).map_err(item(BatchItem::Virus(i)))?);
    }
    for (i, t) in b.timers.iter().enumerate() {
        ledger::start_timers(tx, std::slice::from_ref(t)).map_err(item(BatchItem::Timer(i)))?;
    }
    for (i, u) in b.presa_in_carico.iter().enumerate() {
        ledger::mark_presa_in_carico(tx, &u.identificativo, &u.recipients, u.at)
            .map_err(item(BatchItem::PresaInCarico(i)))?;
    }
    for (i, u) in b.outcomes.iter().enumerate() {
        let recipient = u.recipient.trim().to_lowercase();
        ledger::record_outcome(tx, &u.identificativo, &recipient, u.outcome)
            .map_err(item(BatchItem::Outcome(i)))?;
    }
    for (i, n) in b.notices_sent.iter().enumerate() {
        ledger::mark_notice_sent(tx, &n.identificativo, &n.recipient, n.kind)
            .map_err(item(BatchItem::NoticeSent(i)))?;
    }
    for (i, id) in b.completed.iter().enumerate() {
        ledger::queue_complete(tx, *id).map_err(item(BatchItem::Completed(i)))?;
    }
    done.logged = log::append(tx, &b.log).map_err(item(BatchItem::Log))?;
    if !b.registry_events.is_empty() {
        registry::lock(tx)?;
    }
    for (i, e) in b.registry_events.iter().enumerate() {
        let delivered = e.delivery.and_then(|d| done.delivered.get(d));
        registry::record(tx, e, delivered).map_err(item(BatchItem::RegistryEvent(i)))?;
    }
    Ok(done)
}
