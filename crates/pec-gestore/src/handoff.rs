//! Envelopes between two mailboxes of the gestore, handed from the access point straight
//! to delivery. Such an envelope is still queued in the submission's durable step (the
//! crash-safe promise that it will be delivered), but due only [`HANDOFF_LEASE`] seconds
//! later; the access point hands the entry, with the envelope it has just built, to the
//! queue worker in memory. The worker's next pass delivers it without reading it back
//! from the store and without parsing and verifying what the gestore signed a moment ago
//! (as it already files its own receipts, see [`crate::reception`]); the delivery step
//! completes the entry. If the process stops first, the entry falls due when the lease
//! runs out and the queue delivers it the usual way; the delivery's keys make a second
//! delivery of the same envelope a no-op in any case.

use std::sync::{Arc, Mutex};

use pec_proto::build::Envelope;
use pec_store::QueueEntry;

use crate::workers::QUEUE_BATCH;

/// Seconds a handed-off entry waits in the store before the queue takes it up itself.
pub const HANDOFF_LEASE: i64 = 30;

/// A queue entry and the envelope it carries, ready for delivery.
#[derive(Debug, Clone)]
pub struct Handed {
    /// The entry, as the submission's step stored it.
    pub entry: QueueEntry,
    /// The envelope, with its daticert and postacert as built.
    pub envelope: Arc<Envelope>,
}

/// The entries handed to the queue worker and not yet taken: at most [`QUEUE_BATCH`],
/// so that memory stays bounded while the worker is behind (a submission that finds no
/// room queues its envelope due at once, as any other).
#[derive(Debug, Default)]
pub struct HandOff {
    ready: Mutex<Vec<Handed>>,
}

impl HandOff {
    /// Whether one more submission may hand its envelopes off.
    pub fn has_room(&self) -> bool {
        self.lock().len() < QUEUE_BATCH
    }

    /// Hands `items` to the queue worker (its caller wakes it).
    pub fn push(&self, items: impl IntoIterator<Item = Handed>) {
        self.lock().extend(items);
    }

    /// Takes every entry handed off so far. What is taken and then lost (a crash) is
    /// delivered by the queue once its lease runs out.
    pub fn take(&self) -> Vec<Handed> {
        std::mem::take(&mut *self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Handed>> {
        // A panic while pushing or taking cannot leave the Vec half-changed.
        self.ready.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pec_proto::daticert::Daticert;

    const SAMPLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<postacert tipo="posta-certificata" errore="nessuno">
  <intestazione>
    <mittente>mario.rossi@pec.alfa.test</mittente>
    <destinatari tipo="certificato">anna.bianchi@pec.alfa.test</destinatari>
    <risposte>mario.rossi@pec.alfa.test</risposte>
    <oggetto>Prova</oggetto>
  </intestazione>
  <dati>
    <gestore-emittente>Alfa</gestore-emittente>
    <data zona="+0100"><giorno>10/03/2025</giorno><ora>10:30:15</ora></data>
    <identificativo>opec1@pec.alfa.test</identificativo>
    <ricevuta tipo="completa" />
  </dati>
</postacert>
"#;

    fn handed(id: i64) -> Handed {
        let envelope = Envelope {
            bytes: b"x".to_vec(),
            daticert: Daticert::parse(SAMPLE.as_bytes()).unwrap_or_else(|e| panic!("sample: {e}")),
            postacert: Vec::new(),
        };
        Handed {
            entry: QueueEntry {
                id,
                msgid: String::new(),
                mail_from: String::new(),
                rcpt_to: Vec::new(),
                domain: String::new(),
                hash: String::new(),
                size: 1,
                created_at: 0,
                next_attempt_at: HANDOFF_LEASE,
                attempts: 0,
                last_error: None,
                expires_at: 0,
                held: false,
            },
            envelope: Arc::new(envelope),
        }
    }

    #[test]
    fn the_hand_off_is_bounded_and_taken_whole() {
        let h = HandOff::default();
        h.push((0..QUEUE_BATCH as i64 - 1).map(handed));
        assert!(h.has_room());
        h.push([handed(-1)]);
        assert!(!h.has_room(), "full at {QUEUE_BATCH}");
        let taken = h.take();
        assert_eq!(taken.len(), QUEUE_BATCH);
        assert_eq!(taken.last().map(|t| t.entry.id), Some(-1));
        assert!(h.take().is_empty());
        assert!(h.has_room());
    }
}
