//! Envelopes between two mailboxes of the gestore, handed from the access point straight
//! to delivery. Such an envelope is still queued in the submission's durable step (the
//! crash-safe promise that it will be delivered), but due only [`HANDOFF_LEASE`] seconds
//! later; the access point hands the entry, with the envelope it has just built, to the
//! queue worker in memory. The worker's next pass delivers it without reading it back
//! from the store and without parsing and verifying what the gestore signed a moment ago
//! (as it already files its own receipts, see [`crate::reception`]); the delivery step
//! completes the entry. If the process stops first, the entry falls due when the lease
//! runs out and the queue delivers it the usual way; whichever of the two commits second
//! finds the entry completed (and the recipients' keys stored) and stores nothing.
//!
//! Only while the gestore's own signature passes the checks a receiver makes
//! ([`own_route`]: certificate in the index, valid now, chained to a trusted CA, not
//! revoked) is an envelope handed off, so both ways decide alike: otherwise the incoming
//! point's examination finds the signer untrusted, and the queue path delivers nothing
//! as PEC.

use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use pec_proto::build::Envelope;
use pec_proto::smime::{sha1_hex, trust};
use pec_store::QueueEntry;

use crate::identity::{Identity, TrustMaterial};
use crate::workers::QUEUE_BATCH;

/// Seconds a handed-off entry waits in the store before the queue takes it up itself.
pub const HANDOFF_LEASE: i64 = 30;

/// Bytes of envelopes the hand-off holds at most (with [`QUEUE_BATCH`] entries at most):
/// beyond, an envelope is queued due at once and read back from the store.
pub const HANDOFF_BYTES: usize = 64 * 1024 * 1024;

/// Who took the gestore's own envelope in charge, as its incoming point would read it
/// from the signature: the provider record holding the signing certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnRoute {
    /// The record's `mailReceipt`: where the presa in carico goes.
    pub mail_receipt: String,
    /// The record's `providerName`.
    pub provider: String,
}

/// The gestore's own signature judged by `material` at `now`, as the incoming point judges
/// any signer ([`crate::incoming::examine`]); `None` when a receiver would not trust it,
/// or when the signer cannot show its certificates.
pub fn own_route(id: &Identity, material: &TrustMaterial, now: DateTime<Utc>) -> Option<OwnRoute> {
    let (der, chain) = id.signer.certificates()?;
    let t = trust(der, chain, &material.index, material.anchors.as_ref(), now);
    if !t.trusted {
        return None;
    }
    let record = material.index.by_certificate_hash(&sha1_hex(der))?;
    Some(OwnRoute {
        mail_receipt: record.mail_receipt.clone(),
        provider: t.provider?,
    })
}

/// A queue entry and the envelope it carries, ready for delivery.
#[derive(Debug, Clone)]
pub struct Handed {
    /// The entry, as the submission's step stored it.
    pub entry: QueueEntry,
    /// The envelope, with its daticert and postacert as built.
    pub envelope: Arc<Envelope>,
    /// Its signer, as judged when it was handed off.
    pub route: OwnRoute,
}

/// [`own_route`] as last judged: the same trust material in the same second gives the
/// same answer.
#[derive(Debug)]
struct Judged {
    material: Arc<TrustMaterial>,
    second: i64,
    route: Option<OwnRoute>,
}

/// The entries handed to the queue worker and not yet taken: at most [`QUEUE_BATCH`] and
/// [`HANDOFF_BYTES`] (give or take the submissions committing at the same moment), so
/// that memory stays bounded while the worker is behind.
#[derive(Debug, Default)]
pub struct HandOff {
    ready: Mutex<Vec<Handed>>,
    judged: Mutex<Option<Judged>>,
}

impl HandOff {
    /// The route of an envelope of `size` bytes that may be handed off now, `None` when
    /// it must be queued due at once: the hand-off is full, or a receiver would not trust
    /// the gestore's signature now.
    pub fn admit(&self, id: &Identity, size: usize, now: DateTime<Utc>) -> Option<OwnRoute> {
        {
            let ready = lock(&self.ready);
            let held: usize = ready.iter().map(|h| held_bytes(&h.envelope)).sum();
            if ready.len() >= QUEUE_BATCH || held.saturating_add(size) > HANDOFF_BYTES {
                return None;
            }
        }
        self.judge(id, now)
    }

    /// [`own_route`] by the trust material in force at `now`, judged at most once a second
    /// for the same material. The worker asks again before it delivers an envelope handed
    /// off earlier: a CRL or an index loaded meanwhile, or the certificate's expiry, then
    /// counts as it would for the queue's examination.
    pub fn judge(&self, id: &Identity, now: DateTime<Utc>) -> Option<OwnRoute> {
        let material = id.trust();
        let mut judged = lock(&self.judged);
        match &*judged {
            Some(j) if Arc::ptr_eq(&j.material, &material) && j.second == now.timestamp() => {
                j.route.clone()
            }
            _ => {
                let route = own_route(id, &material, now);
                *judged = Some(Judged {
                    material,
                    second: now.timestamp(),
                    route: route.clone(),
                });
                route
            }
        }
    }

    /// Hands `items` to the queue worker (its caller wakes it).
    pub fn push(&self, items: impl IntoIterator<Item = Handed>) {
        lock(&self.ready).extend(items);
    }

    /// Takes every entry handed off so far. What is taken and then lost (a crash) is
    /// delivered by the queue once its lease runs out.
    pub fn take(&self) -> Vec<Handed> {
        std::mem::take(&mut *lock(&self.ready))
    }
}

/// The memory an envelope holds in the hand-off.
pub fn held_bytes(envelope: &Envelope) -> usize {
    envelope.bytes.len() + envelope.postacert.len()
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while pushing, taking or judging cannot leave the value half-changed.
    m.lock().unwrap_or_else(|e| e.into_inner())
}
