//! The access point's durable step, shared by SMTP submission and by the messages the
//! gestore sends on a mailbox's behalf (a protocol office's ripudio): one rule, one
//! driver, whoever hands the message in.

use std::sync::Arc;

use pec_proto::build::Envelope;
use pec_smtp::Reply;
use pec_store::{Batch, Direction, EffectKey, NewQueueEntry, NewTimer, NewVirusEntry, QueueEntry};
use tracing::info;

use crate::access::{Outcome, RefusalCause, Submission, complete, completion_note, submit};
use crate::antivirus::{Scanner, Verdict as Scan};
use crate::events::Event;
use crate::handlers::temporary;
use crate::handoff::{HANDOFF_LEASE, Handed, OwnRoute, held_bytes};
use crate::service::{Gestore, blocking};

impl<S: Scanner> Gestore<S> {
    /// Submits `message` from the authenticated mailbox `user`, SMTP envelope
    /// `(mail_from, rcpt_to)`: the accettazione (or the avviso di non accettazione) and
    /// everything they start, stored with whatever `base` holds in one durable step.
    /// The reply is the one an SMTP client gets.
    pub async fn submit_message(
        &self,
        user: &str,
        (mail_from, rcpt_to): (&str, &[String]),
        message: Vec<u8>,
        base: Batch,
    ) -> Reply {
        let virus = match self.scanner.scan(&message).await {
            Ok(Scan::Clean) => None,
            Ok(Scan::Infected(name)) => Some(name),
            Err(e) => return temporary(e),
        };
        let hosted = match blocking(|| self.hosted_domains()) {
            Ok(h) => h,
            Err(e) => return temporary(e),
        };
        let now = self.now();
        let completed = complete(&self.id, &message, now);
        let note = completion_note(completed.as_ref().map_or(&[], |c| &c.added[..]));
        let sub = Submission {
            raw: completed.as_ref().map_or(&message, |c| &c.bytes),
            mail_from,
            rcpt_to,
            authenticated: user,
            hosted: &hosted,
            virus: virus.as_deref(),
        };
        let outcome = match blocking(|| submit(&self.id, &sub, &self.settings.limits, now)) {
            Ok(o) => o,
            Err(e) => return temporary(e),
        };
        let sender = mail_from.to_ascii_lowercase();
        let folder = match blocking(|| self.receipt_folder(&sender)) {
            Ok(f) => f,
            Err(e) => return temporary(e),
        };
        let mut b = base;
        match outcome {
            Outcome::Accepted(a) => {
                let tx = &a.transaction;
                self.protocol_receipt(&mut b, &a.receipt, &sender);
                self.deliver(
                    &mut b,
                    self.id.address(),
                    (&sender, folder),
                    &a.receipt,
                    "accettazione",
                );
                b.archive.push(self.archive_copy(
                    &sender,
                    &a.envelope.bytes,
                    Direction::Sent,
                    "posta-certificata",
                ));
                // The envelope for mailboxes of ours goes straight to delivery when the
                // hand-off admits it; its entry is the promise, due once the lease runs
                // out.
                let mut entries =
                    self.queue_entries(&tx.identificativo, mail_from, rcpt_to, &a.envelope.bytes);
                let local = |e: &NewQueueEntry| hosted.contains(&e.domain);
                let route = entries
                    .iter()
                    .any(local)
                    .then(|| {
                        blocking(|| self.handoff.admit(&self.id, held_bytes(&a.envelope), now))
                    })
                    .flatten();
                for e in entries.iter_mut().filter(|e| route.is_some() && local(e)) {
                    e.due_at += HANDOFF_LEASE;
                }
                b.queue.extend(entries);
                let envelope_hash = pec_store::blobs::hash_hex(&a.envelope.bytes);
                b.timers.extend(a.certified.iter().map(|r| NewTimer {
                    identificativo: tx.identificativo.clone(),
                    recipient: r.to_ascii_lowercase(),
                    sender: sender.clone(),
                    subject: tx.oggetto.clone().unwrap_or_default(),
                    dispatched_at: now.timestamp(),
                    envelope: Some(envelope_hash.clone()),
                }));
                b.log.push(self.log(
                    Event::Accettazione,
                    tx,
                    &[&a.receipt_id, &tx.identificativo],
                    &self.id.name,
                    &note,
                ));
                b.effects
                    .push(self.effect(EffectKey::acceptance(&tx.identificativo)));
                match self.commit(b) {
                    // An identificativo already issued (it cannot happen with random
                    // identifiers): nothing stored, the client submits again.
                    Ok(c) if c.already_done.is_some() => temporary("identificativo già usato"),
                    Ok(c) => {
                        if let Some(route) = route {
                            self.hand_off(c.queued, a.envelope, &hosted, route);
                        }
                        self.metrics.accepted();
                        info!(identificativo = %tx.identificativo, from = %sender, "accepted");
                        Reply::ok(format!(
                            "Ok: messaggio accettato, identificativo {}",
                            tx.identificativo
                        ))
                    }
                    Err(pec_store::Error::BatchItem { source, .. })
                        if matches!(*source, pec_store::Error::QuotaExceeded { .. }) =>
                    {
                        Reply::new(
                            452,
                            "4.2.2",
                            "La casella del mittente è piena: impossibile consegnare la ricevuta",
                        )
                    }
                    Err(e) => temporary(e),
                }
            }
            Outcome::Refused(r) => {
                let tx = &r.transaction;
                self.protocol_receipt(&mut b, &r.notice, &sender);
                self.deliver(
                    &mut b,
                    self.id.address(),
                    (&sender, folder),
                    &r.notice,
                    "non-accettazione",
                );
                if r.cause == RefusalCause::Virus {
                    b.virus.push(NewVirusEntry {
                        at: now.timestamp(),
                        msgid: tx.identificativo.clone(),
                        sender: sender.clone(),
                        recipients: rcpt_to.to_vec(),
                        virus: r.reason.clone(),
                        message: message.clone(),
                    });
                }
                let detail = [r.reason.as_str(), &note]
                    .into_iter()
                    .filter(|d| !d.is_empty())
                    .collect::<Vec<_>>()
                    .join("; ");
                b.log.push(self.log(
                    Event::NonAccettazione,
                    tx,
                    &[&r.notice_id],
                    &self.id.name,
                    &detail,
                ));
                match self.commit(b) {
                    Ok(_) => {
                        self.metrics.refused(r.cause);
                        info!(from = %sender, reason = %r.reason, "not accepted");
                        Reply::new(
                            550,
                            "5.7.1",
                            format!(
                                "Messaggio non accettato: {} (avviso di non accettazione inviato)",
                                r.reason
                            ),
                        )
                    }
                    Err(e) => temporary(e),
                }
            }
        }
    }

    /// Hands the entries of `queued` for domains of ours (`hosted`), with `envelope` and
    /// its signer's `route`, to the queue worker, and wakes it.
    fn hand_off(
        &self,
        queued: Vec<QueueEntry>,
        envelope: Box<Envelope>,
        hosted: &[String],
        route: OwnRoute,
    ) {
        let envelope: Arc<Envelope> = Arc::from(envelope);
        self.handoff.push(
            queued
                .into_iter()
                .filter(|e| hosted.contains(&e.domain))
                .map(|entry| Handed {
                    entry,
                    envelope: envelope.clone(),
                    route: route.clone(),
                }),
        );
        self.queued.notify_one();
    }
}
