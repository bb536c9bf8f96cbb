//! What happens to a message that reaches the gestore from the network (or from its own
//! queue, for local domains): the incoming point's decision (spec §2.3), then the
//! delivery point (spec §2.4), in one durable step per message.
//!
//! What must happen once is keyed ([`EffectKey`]): an envelope taken in charge for a
//! recipient, a receipt filed. The key is stored in the step's batch, so a message
//! received twice — a retry after a lost reply or a crash, a duplicate relay, two
//! receptions at the same time, on one node or two — is handled once: the second
//! reception finds the key (or its batch is refused as done already) and only
//! acknowledges. A store that cannot answer is never taken for an answer: the sender
//! gets a `4xx` and tries again.

use pec_proto::build::{Envelope, Notice, Transaction};
use pec_proto::classify::Kind;
use pec_proto::daticert::{Daticert, Errore};
use pec_smtp::Reply;
use pec_store::{
    AlreadyDone, Batch, BatchItem, Direction, EffectKey, Error as StoreError,
    Outcome as TimerOutcome,
};
use tracing::{info, warn};

use crate::antivirus::{Scanner, Verdict as Scan};
use crate::delivery::variant_for;
use crate::emit::Generated;
use crate::events::Event;
use crate::handoff::OwnRoute;
use crate::incoming::{Verdict, envelope_addressees, examine, receipt_addressees, stray_reason};
use crate::service::{Gestore, blocking, domain_of};

/// The SMTP reply telling a sender of ordinary mail that the mailbox takes only PEC.
pub fn pec_only_reply() -> Reply {
    Reply::new(
        550,
        "5.7.1",
        "La casella di destinazione accetta solo messaggi di posta elettronica certificata (PEC) / \
         this mailbox accepts only certified mail (PEC)",
    )
}

fn temporary(e: impl std::fmt::Display) -> Reply {
    warn!("cannot store a received message: {e}");
    Reply::new(
        451,
        "4.3.0",
        "Errore temporaneo del gestore, riprovare più tardi",
    )
}

/// The refusal of an infected message that is delivered as PEC to nobody.
fn virus_refusal(name: &str) -> Reply {
    Reply::new(554, "5.7.1", format!("Messaggio rifiutato: virus {name}"))
}

/// The final outcome a receipt reports for its recipient's timers.
fn outcome_of(kind: Kind, d: &Daticert) -> Option<TimerOutcome> {
    match kind {
        Kind::AvvenutaConsegna => Some(TimerOutcome::Delivered),
        Kind::ErroreConsegna if d.errore == Errore::Virus => Some(TimerOutcome::Virus),
        Kind::ErroreConsegna => Some(TimerOutcome::Error),
        Kind::RilevazioneVirus => Some(TimerOutcome::Virus),
        _ => None,
    }
}

/// The key of a receipt's filing: what it certifies, whatever its unsigned outer
/// header, so that the same receipt relayed again is filed once.
fn receipt_key(kind: Kind, d: &Daticert, provider: &str) -> EffectKey {
    EffectKey::receipt(
        kind.as_str(),
        provider,
        &d.identificativo,
        d.consegna.as_deref().unwrap_or_default(),
        &d.ricezione,
    )
}

/// The update of the timer of `d`'s recipient to `outcome`.
fn outcome_update(d: &Daticert, outcome: TimerOutcome) -> pec_store::OutcomeUpdate {
    pec_store::OutcomeUpdate {
        identificativo: d.identificativo.clone(),
        recipient: d.consegna.clone().unwrap_or_default(),
        outcome,
    }
}

/// Why a recipient of an envelope did not get it.
enum Failure {
    NoMailbox,
    Full,
}

/// One SMTP transaction as the incoming point got it (over SMTP, or from the queue for a
/// local domain).
#[derive(Clone, Copy)]
struct Arrival<'a> {
    /// The SMTP reverse path: the `Return-Path:` of what is delivered from it.
    mail_from: &'a str,
    /// The local forward paths.
    rcpt_to: &'a [String],
    /// The received bytes.
    raw: &'a [u8],
}

/// What one durable step for a valid transport envelope is made of.
struct EnvelopeStep<'a> {
    /// The transaction, from the certified data.
    tx: &'a Transaction,
    /// The certified data.
    daticert: &'a Daticert,
    /// The original message it carries (`postacert.eml`).
    postacert: Option<&'a [u8]>,
    /// The signing gestore's name.
    provider: &'a str,
    /// The certified recipients not yet taken in charge: PEC delivery and consegna.
    local: &'a [String],
    /// The RCPTs the certified data does not name: an anomaly each.
    stray: &'a [String],
    /// The transaction that brought it.
    arrival: Arrival<'a>,
    /// The presa in carico, when there are recipients to take in charge.
    presa: Option<&'a Generated>,
    /// What the antivirus found.
    virus: Option<&'a str>,
    /// Recipients whose mailbox turned out to be full.
    full: &'a [String],
    /// Addresses of ours whose receipts are queued rather than filed in the step (their
    /// mailbox could not take them now; the queue retries).
    queued: &'a [String],
    /// Whether receipts for addresses of ours may be filed in the step at all.
    file_receipts: bool,
}

impl<S: Scanner> Gestore<S> {
    /// Processes one received message for its local recipients `rcpt_to` (already known to
    /// be in hosted domains); returns the SMTP reply. Everything it decides is durable
    /// before a positive reply.
    pub async fn receive(&self, mail_from: &str, rcpt_to: &[String], raw: &[u8]) -> Reply {
        self.receive_with(mail_from, rcpt_to, raw, Batch::default())
            .await
    }

    /// [`Gestore::receive`], storing `base` in the same durable step as the message, and
    /// only with it: a positive reply means `base` is stored (or was done already, e.g.
    /// the queue entry it completes was completed by another worker), any other reply
    /// means it is not. The queue worker passes the completion of the entry the message
    /// came from, so handling a local entry costs one transaction and a crash cannot
    /// separate the two.
    pub async fn receive_with(
        &self,
        mail_from: &str,
        rcpt_to: &[String],
        raw: &[u8],
        base: Batch,
    ) -> Reply {
        let now = self.now();
        let arrival = Arrival {
            mail_from,
            rcpt_to,
            raw,
        };
        let verdict = blocking(|| examine(&self.id, raw, now));
        if verdict.signature_failed() {
            self.metrics.verification_failed();
        }
        match verdict {
            Verdict::Envelope {
                daticert,
                postacert,
                mail_receipt,
                provider,
            } => {
                if !mail_from
                    .trim()
                    .eq_ignore_ascii_case(daticert.mittente.trim())
                {
                    // Not signed, so it decides nothing: receipts go to the certified
                    // sender whatever the reverse path says (docs/CONFORMANCE.md).
                    warn!(
                        identificativo = %daticert.identificativo,
                        reverse_path = ?mail_from,
                        mittente = %daticert.mittente,
                        "envelope reverse path differs from its certified sender"
                    );
                }
                let from = (mail_receipt.as_str(), provider.as_str());
                let certified = (&daticert, postacert.as_deref());
                self.receive_envelope(from, arrival, certified, base).await
            }
            Verdict::Receipt {
                kind,
                daticert,
                provider,
            } => blocking(|| self.receive_receipt(arrival, (kind, &daticert, &provider), base)),
            Verdict::Anomaly { reason } => {
                self.receive_anomaly(mail_from, rcpt_to, raw, &reason, base)
                    .await
            }
            Verdict::Ordinary { reason } => {
                self.receive_ordinary(mail_from, rcpt_to, raw, &reason, base)
                    .await
            }
        }
    }

    /// [`Gestore::receive_with`] for a transport envelope this gestore's access point has
    /// just built (a queue entry handed off, [`crate::handoff`]): decided on the daticert
    /// and postacert it was built with, as the incoming point reads them back, and on its
    /// signer's `route` as the incoming point judges the signature, without parsing and
    /// verifying what the gestore signed a moment ago with its own key.
    pub async fn receive_own_envelope(
        &self,
        (mail_from, rcpt_to): (&str, &[String]),
        envelope: &Envelope,
        route: &OwnRoute,
        base: Batch,
    ) -> Reply {
        let arrival = Arrival {
            mail_from,
            rcpt_to,
            raw: &envelope.bytes,
        };
        let certified = (&envelope.daticert, Some(envelope.postacert.as_slice()));
        let from = (route.mail_receipt.as_str(), route.provider.as_str());
        self.receive_envelope(from, arrival, certified, base).await
    }

    /// `Ok` when the antivirus finds `raw` clean; otherwise the reply refusing it (a
    /// virus) or asking to retry (the scan failed). For messages delivered as PEC to
    /// nobody: ordinary mail and anomalies.
    async fn clean_or_refusal(&self, raw: &[u8]) -> Result<(), Reply> {
        match self.scanner.scan(raw).await {
            Ok(Scan::Clean) => Ok(()),
            Ok(Scan::Infected(name)) => Err(virus_refusal(&name)),
            Err(e) => Err(temporary(e)),
        }
    }

    /// Stores `base` alone, for a message found handled already; the positive `reply` if
    /// that worked.
    fn settle_duplicate(&self, base: Batch, reply: Reply) -> Reply {
        match self.commit(base) {
            Ok(_) => reply,
            Err(e) => temporary(e),
        }
    }

    /// A valid transport envelope; `(mail_receipt, provider)` say which gestore signed
    /// it. It is PEC for the RCPTs its daticert lists; the other RCPTs get it as an
    /// anomaly; receipts about it go to the certified sender, never to the reverse path.
    /// A certified recipient already taken in charge (its key is stored) is left out.
    async fn receive_envelope(
        &self,
        (mail_receipt, provider): (&str, &str),
        arrival: Arrival<'_>,
        (daticert, postacert): (&Daticert, Option<&[u8]>),
        base: Batch,
    ) -> Reply {
        let tx = Transaction::from_daticert(daticert);
        let now = self.now();
        let who = envelope_addressees(daticert, arrival.rcpt_to);
        let keys: Vec<EffectKey> = who
            .certified
            .iter()
            .map(|r| EffectKey::envelope(provider, &tx.identificativo, r))
            .collect();
        let mut scanned: Option<Option<String>> = None;
        let mut presa: Option<(Vec<String>, Generated)> = None;
        let mut full: Vec<String> = Vec::new();
        let mut queued: Vec<String> = Vec::new();
        let mut file_receipts = true;
        // Each pass commits, or learns one more recipient whose mailbox cannot take the
        // message, or one more mailbox of ours that cannot take a receipt now, or that a
        // receipt of ours is filed already, or finds that another reception took at least
        // one more recipient in charge first (its key is stored): so it ends within this
        // many passes.
        let passes = 3 * who.certified.len() + who.stray.len() + 3;
        for _ in 0..passes {
            let done = match blocking(|| self.store.effects_done(&keys)) {
                Ok(d) => d,
                Err(e) => return temporary(e),
            };
            let local: Vec<String> = who
                .certified
                .iter()
                .zip(&done)
                .filter(|(_, done)| !**done)
                .map(|(r, _)| r.clone())
                .collect();
            let taken = format!("Ok: già preso in carico {}", tx.identificativo);
            if local.is_empty() && who.stray.is_empty() {
                return blocking(|| self.settle_duplicate(base, Reply::ok(taken)));
            }
            let virus = match &scanned {
                Some(v) => v.clone(),
                None => {
                    let v = match self.scanner.scan(arrival.raw).await {
                        Ok(Scan::Clean) => None,
                        Ok(Scan::Infected(name)) => Some(name),
                        Err(e) => return temporary(e),
                    };
                    scanned = Some(v.clone());
                    v
                }
            };
            if who.certified.is_empty()
                && let Some(name) = &virus
            {
                // Certified for nobody: infected, it is refused like any message that is
                // not PEC for its recipients.
                return virus_refusal(name);
            }
            if !local.is_empty() && presa.as_ref().is_none_or(|(covers, _)| *covers != local) {
                match blocking(|| {
                    self.id.notice(
                        &tx,
                        &Notice::PresaInCarico { ricezione: &local },
                        mail_receipt,
                        now,
                    )
                }) {
                    Ok(g) => presa = Some((local.clone(), g)),
                    Err(e) => return temporary(e),
                }
            }
            let step = EnvelopeStep {
                tx: &tx,
                daticert,
                postacert,
                provider,
                local: &local,
                stray: &who.stray,
                arrival,
                presa: presa.as_ref().filter(|_| !local.is_empty()).map(|(_, g)| g),
                virus: virus.as_deref(),
                full: &full,
                queued: &queued,
                file_receipts,
            };
            let mut receipts = Vec::new();
            let batch = match blocking(|| self.envelope_batch(base.clone(), &step, &mut receipts)) {
                Ok(b) => b,
                Err(e) => return temporary(e),
            };
            match self.commit(batch) {
                Ok(c) => match c.already_done {
                    None if !local.is_empty() => {
                        info!(identificativo = %tx.identificativo, recipients = local.len(), stray = who.stray.len(), "envelope received");
                        return Reply::ok(format!("Ok: presa in carico {}", tx.identificativo));
                    }
                    None if !who.certified.is_empty() => return Reply::ok(taken),
                    None => {
                        info!(identificativo = %tx.identificativo, stray = who.stray.len(), "envelope for recipients it does not certify: anomaly");
                        return Reply::ok("Ok: consegnato come anomalia");
                    }
                    Some(AlreadyDone::Effect(key)) if keys.contains(&key) => {
                        info!(identificativo = %tx.identificativo, %key, "taken in charge meanwhile by another reception");
                    }
                    Some(AlreadyDone::Effect(key)) => {
                        // A receipt of ours filed already: the queue's reception settles it
                        // as a duplicate.
                        warn!(identificativo = %tx.identificativo, %key, "receipt filed already: queued instead");
                        file_receipts = false;
                    }
                    Some(AlreadyDone::QueueEntry(_)) => return Reply::ok(taken),
                },
                Err(StoreError::BatchItem {
                    item: BatchItem::Delivery { index, address },
                    source,
                }) if matches!(*source, StoreError::QuotaExceeded { .. })
                    && index >= base.deliveries.len() =>
                {
                    // The quota counts the whole step: whatever was refused, a receipt
                    // of ours goes through the queue instead, and the envelope (or an
                    // anomaly) is then found too big for the mailbox on its own.
                    let (learnt, place) = if receipts.contains(&index) {
                        (&mut queued, "receipt")
                    } else {
                        (&mut full, "message")
                    };
                    if learnt.contains(&address) {
                        warn!(identificativo = %tx.identificativo, mailbox = %address, place, "mailbox full again after a retry");
                        return temporary(source);
                    }
                    learnt.push(address);
                }
                Err(e) => return temporary(e),
            }
        }
        temporary("could not settle the deliveries")
    }

    /// The durable step for a valid transport envelope, added to `b`: presa in carico and
    /// the keys of the recipients it takes in charge, then either the virus path or one
    /// delivery and one receipt per such recipient, then an anomaly for each stray RCPT.
    /// The indices of the deliveries that are receipts of ours (filed in the step) are
    /// added to `receipts`.
    fn envelope_batch(
        &self,
        mut b: Batch,
        step: &EnvelopeStep<'_>,
        receipts: &mut Vec<usize>,
    ) -> crate::Result<Batch> {
        let (tx, provider, raw) = (step.tx, step.provider, step.arrival.raw);
        let now = self.now();
        if let Some(presa) = step.presa {
            b.log.push(self.log(
                Event::PresaInCarico,
                tx,
                &[&presa.message_id],
                provider,
                &step.local.join(", "),
            ));
            self.send_from_step(&mut b, step, presa, receipts)?;
            b.effects.extend(
                step.local
                    .iter()
                    .map(|r| self.effect(EffectKey::envelope(provider, &tx.identificativo, r))),
            );
        }
        if let Some(virus) = step.virus {
            if let Some(presa) = step.presa {
                b.virus.push(pec_store::NewVirusEntry {
                    at: now.timestamp(),
                    msgid: tx.identificativo.clone(),
                    sender: tx.mittente.clone(),
                    recipients: step.local.to_vec(),
                    virus: virus.to_string(),
                    message: raw.to_vec(),
                });
                for r in step.local {
                    let g = self.id.notice(
                        tx,
                        &Notice::RilevazioneVirus {
                            recipient: r,
                            virus,
                        },
                        &presa.to,
                        now,
                    )?;
                    self.send(&mut b, &tx.identificativo, &g);
                    b.log.push(self.log(
                        Event::RilevazioneVirus,
                        tx,
                        &[&g.message_id],
                        provider,
                        virus,
                    ));
                }
            }
            // An infected message is propagated to nobody as an anomaly either.
            let reason = format!(
                "{}; non consegnato: virus {virus}",
                stray_reason(Kind::PostaCertificata)
            );
            for r in step.stray {
                b.log.push(self.log(
                    Event::Anomalia,
                    tx,
                    &[],
                    provider,
                    &format!("{r}: {reason}"),
                ));
            }
            return Ok(b);
        }
        let postacert = step.postacert;
        for r in step.local {
            let failure = if step.full.contains(r) {
                Some(Failure::Full)
            } else if !self.has_mailbox(r)? {
                Some(Failure::NoMailbox)
            } else {
                None
            };
            // Receipts go to the certified sender (daticert mittente), whatever the SMTP
            // reverse path of the envelope said.
            let (notice, event) = match failure {
                None => {
                    let flags = self.protocol_flags(&mut b, (tx, step.daticert), r, postacert);
                    self.deliver(
                        &mut b,
                        step.arrival.mail_from,
                        (r, "INBOX"),
                        raw,
                        "posta-certificata",
                    )
                    .flags = flags;
                    let variant = variant_for(raw, tx.ricevuta, r);
                    let g = self.id.notice(
                        tx,
                        &Notice::AvvenutaConsegna {
                            recipient: r,
                            variant,
                            postacert,
                        },
                        &tx.mittente,
                        now,
                    )?;
                    (g, Event::Consegna)
                }
                Some(why) => {
                    let (errore, detail) = match why {
                        Failure::NoMailbox => (
                            Errore::NoDest,
                            format!("5.1.1 - {} - indirizzo non valido", self.id.name),
                        ),
                        Failure::Full => (
                            Errore::Altro,
                            format!("5.2.2 - {} - casella piena", self.id.name),
                        ),
                    };
                    let g = self.id.notice(
                        tx,
                        &Notice::ErroreConsegna {
                            recipient: r,
                            errore,
                            detail: &detail,
                        },
                        &tx.mittente,
                        now,
                    )?;
                    (g, Event::ErroreConsegna)
                }
            };
            b.log
                .push(self.log(event, tx, &[&notice.message_id], provider, r));
            // The sender's timer for `r`, when the sender is ours, ends with this step
            // even when the receipt cannot be filed in it (the sender's mailbox full):
            // its 12 h / 24 h notices would deny what this step stores.
            let outcome = match event {
                Event::Consegna => TimerOutcome::Delivered,
                _ => TimerOutcome::Error,
            };
            b.outcomes.push(pec_store::OutcomeUpdate {
                identificativo: tx.identificativo.clone(),
                recipient: r.clone(),
                outcome,
            });
            self.send_from_step(&mut b, step, &notice, receipts)?;
        }
        let reason = stray_reason(Kind::PostaCertificata);
        self.stray_anomalies(
            &mut b,
            tx,
            step.arrival,
            step.stray,
            reason,
            provider,
            step.full,
        )?;
        Ok(b)
    }

    /// Sends `g` from the envelope step `step` ([`Gestore::send_notice`], or always
    /// through the queue once the step found a receipt of ours filed already); the
    /// indices of the deliveries of a receipt filed in `b` are added to `receipts`.
    fn send_from_step(
        &self,
        b: &mut Batch,
        step: &EnvelopeStep<'_>,
        g: &Generated,
        receipts: &mut Vec<usize>,
    ) -> crate::Result<()> {
        if !step.file_receipts {
            self.send(b, &step.tx.identificativo, g);
            return Ok(());
        }
        let first = b.deliveries.len();
        self.send_notice(b, step.tx, g, step.queued)?;
        receipts.extend(first..b.deliveries.len());
        Ok(())
    }

    /// Adds to `b`, for each `stray` RCPT of a certified message about `tx`, the busta di
    /// anomalia wrapping the message of `arrival` (when the address has a mailbox that is
    /// not in `full`) and a log record naming the RCPT and `reason`.
    #[allow(clippy::too_many_arguments)]
    fn stray_anomalies(
        &self,
        b: &mut Batch,
        tx: &Transaction,
        arrival: Arrival<'_>,
        stray: &[String],
        reason: &str,
        provider: &str,
        full: &[String],
    ) -> crate::Result<()> {
        let now = self.now();
        for r in stray {
            let mut detail = format!("{r}: {reason}");
            let mut generated = Vec::new();
            if full.contains(r) {
                detail.push_str(" (casella piena: non consegnata)");
            } else if self.has_mailbox(r)? {
                let g = self.id.anomaly(arrival.raw, &tx.mittente, reason, r, now)?;
                self.deliver(b, arrival.mail_from, (r, "INBOX"), &g.bytes, "anomalia");
                generated.push(g.message_id);
            }
            let ids: Vec<&str> = generated.iter().map(String::as_str).collect();
            b.log
                .push(self.log(Event::Anomalia, tx, &ids, provider, &detail));
        }
        Ok(())
    }

    /// A receipt `(kind, daticert, signing gestore)` from a gestore (ours included): filed
    /// unchanged only for the address it certifies (the sender's mailbox, or the service
    /// mailbox for presa in carico and rilevazione virus, which update the timers
    /// instead), once — its key is made of what it certifies, so the same receipt relayed
    /// again, whatever its unsigned outer header, is not filed twice; any other RCPT gets
    /// it as an anomaly, and then it settles no timer.
    fn receive_receipt(
        &self,
        arrival: Arrival<'_>,
        (kind, d, provider): (Kind, &Daticert, &str),
        mut b: Batch,
    ) -> Reply {
        let tx = Transaction::from_daticert(d);
        let emitter = d.gestore_emittente.as_str();
        let who = receipt_addressees(kind, d, arrival.rcpt_to, |r| self.is_service_address(r));
        if let Err(e) = self.stray_anomalies(
            &mut b,
            &tx,
            arrival,
            &who.stray,
            stray_reason(kind),
            emitter,
            &[],
        ) {
            return temporary(e);
        }
        if who.certified.is_empty() {
            // Not for its certified destination: filed nowhere, and a timer is settled
            // only by a receipt that reaches the sender it certifies.
            info!(identificativo = %tx.identificativo, kind = kind.as_str(), "receipt for another address: anomaly");
            return match self.commit(b) {
                Ok(_) => Reply::ok("Ok: consegnato come anomalia"),
                Err(e) => temporary(e),
            };
        }
        let key = receipt_key(kind, d, provider);
        // Filed already (a duplicate relay, or a crash before this version stored the
        // timer update with the filing): settle the timer again (the first outcome wins,
        // so this is harmless when it was settled).
        let duplicate = |mut b: Batch| {
            b.outcomes
                .extend(outcome_of(kind, d).map(|o| outcome_update(d, o)));
            self.settle_duplicate(b, Reply::ok("Ok: ricevuta già consegnata"))
        };
        match self.store.effects_done(std::slice::from_ref(&key)) {
            Ok(done) if done.contains(&true) => return duplicate(b),
            Ok(_) => {}
            Err(e) => return temporary(e),
        }
        let unfiled = b.clone();
        if let Err(e) = self.file_receipt(&mut b, arrival, &who.certified, (kind, d, provider)) {
            return temporary(e);
        }
        match self.commit(b) {
            Ok(c) => match c.already_done {
                None => Reply::ok("Ok: ricevuta consegnata"),
                // Filed meanwhile by another reception of the same receipt.
                Some(AlreadyDone::Effect(_)) => duplicate(unfiled),
                Some(AlreadyDone::QueueEntry(_)) => Reply::ok("Ok: ricevuta già consegnata"),
            },
            Err(e) => temporary(e),
        }
    }

    /// Adds to `b` the filing of a certified receipt of `kind` (certified data `d`,
    /// signed by `provider`) for its `certified` addressees: the timer update it brings,
    /// a copy in the service archive for a service address or a delivery for a mailbox,
    /// the log record, and its key, so that it is filed once.
    fn file_receipt(
        &self,
        b: &mut Batch,
        arrival: Arrival<'_>,
        certified: &[String],
        (kind, d, provider): (Kind, &Daticert, &str),
    ) -> crate::Result<()> {
        let tx = Transaction::from_daticert(d);
        let now = self.now();
        let emitter = d.gestore_emittente.as_str();
        let recipient = d.consegna.clone().unwrap_or_default();
        let timer_update = match kind {
            Kind::PresaInCarico => {
                b.presa_in_carico.push(pec_store::PresaInCaricoUpdate {
                    identificativo: tx.identificativo.clone(),
                    recipients: d.ricezione.clone(),
                    at: now.timestamp(),
                });
                None
            }
            Kind::RilevazioneVirus => {
                // The mancata consegna per virus goes only to the sender of a message of
                // ours to that recipient (its timer says so): another gestore's word alone
                // does not make the gestore sign an outcome of a message it never sent.
                let timers = self.store.timers(&tx.identificativo)?;
                let ours = timers
                    .iter()
                    .find(|t| t.recipient.eq_ignore_ascii_case(recipient.trim()));
                match ours {
                    Some(timer) => {
                        let virus = d.errore_esteso.clone().unwrap_or_default();
                        let g = self.id.notice(
                            &tx,
                            &Notice::ErroreConsegnaVirus {
                                recipient: &recipient,
                                virus: &virus,
                            },
                            &timer.sender,
                            now,
                        )?;
                        self.send(b, &tx.identificativo, &g);
                        b.log.push(self.log(
                            Event::ErroreConsegnaVirus,
                            &tx,
                            &[&g.message_id],
                            emitter,
                            &recipient,
                        ));
                        Some(TimerOutcome::Virus)
                    }
                    None => {
                        warn!(identificativo = %tx.identificativo, %recipient, "rilevazione virus about no message of ours: filed, nobody told");
                        None
                    }
                }
            }
            _ => outcome_of(kind, d),
        };
        for r in certified {
            if self.is_service_address(r) {
                b.archive.push(self.archive_copy(
                    r,
                    arrival.raw,
                    Direction::Received,
                    kind.as_str(),
                ));
                continue;
            }
            let Some(folder) = self.mailbox_receipts(r)? else {
                continue;
            };
            self.protocol_receipt(b, arrival.raw, r);
            self.deliver(
                b,
                arrival.mail_from,
                (r, folder),
                arrival.raw,
                kind.as_str(),
            );
        }
        // The log names the recipient the receipt is about, or those a presa in carico
        // covers.
        let detail = if recipient.is_empty() {
            d.ricezione.join(", ")
        } else {
            recipient
        };
        b.log
            .push(self.log(Event::Ricezione(kind), &tx, &[], emitter, &detail));
        b.outcomes
            .extend(timer_update.map(|o| outcome_update(d, o)));
        b.effects.push(self.effect(receipt_key(kind, d, provider)));
        Ok(())
    }

    /// Sends a notice `g` about `tx` from the gestore's service address. A receipt for
    /// one of the gestore's own mailboxes or service addresses (the presa in carico, and
    /// the consegna or mancata consegna, of a message between two of its mailboxes) is
    /// filed in `b` itself, as its incoming point would file it once received from the
    /// queue: the gestore signed it a moment ago with its own key, so verifying it again
    /// would prove nothing (in particular, it is filed as certified even while the
    /// gestore's own certificate is out of the index or expired, which the signing set-up
    /// reports), and the sender learns of the delivery in the same durable step as the
    /// delivery. A notice for an address in `queued` (whose mailbox could not take it in
    /// this step), an avviso of virus, or a notice for another gestore is queued.
    fn send_notice(
        &self,
        b: &mut Batch,
        tx: &Transaction,
        g: &Generated,
        queued: &[String],
    ) -> crate::Result<()> {
        let to = g.to.trim().to_ascii_lowercase();
        if let Some(d) = &g.daticert {
            let kind = Kind::from_tipo(d.tipo);
            let own = || -> crate::Result<bool> {
                Ok(self.is_service_address(&to) || self.hosts(&domain_of(&to))?)
            };
            if kind != Kind::RilevazioneVirus && !queued.contains(&to) && own()? {
                let rcpt = [to];
                let who = receipt_addressees(kind, d, &rcpt, |r| self.is_service_address(r));
                if who.stray.is_empty() {
                    let arrival = Arrival {
                        mail_from: self.id.address(),
                        rcpt_to: &rcpt,
                        raw: &g.bytes,
                    };
                    let signer = (kind, d, self.id.name.as_str());
                    return self.file_receipt(b, arrival, &who.certified, signer);
                }
            }
        }
        self.send(b, &tx.identificativo, g);
        Ok(())
    }

    /// Signed by a gestore but not a correct PEC message: it must still be propagated, as
    /// an anomaly envelope, to every local recipient. Being certified for nobody, an
    /// infected one is refused like ordinary mail.
    async fn receive_anomaly(
        &self,
        mail_from: &str,
        rcpt_to: &[String],
        raw: &[u8],
        reason: &str,
        base: Batch,
    ) -> Reply {
        if let Err(refusal) = self.clean_or_refusal(raw).await {
            return refusal;
        }
        match blocking(|| self.wrap_anomaly(mail_from, rcpt_to, raw, reason, base)) {
            Ok(()) => Reply::ok("Ok: consegnato come anomalia"),
            Err(e) => temporary(e),
        }
    }

    /// Wraps `raw` in an anomaly envelope for each recipient with a mailbox, stored with
    /// `b`.
    fn wrap_anomaly(
        &self,
        mail_from: &str,
        rcpt_to: &[String],
        raw: &[u8],
        reason: &str,
        mut b: Batch,
    ) -> crate::Result<()> {
        let now = self.now();
        let original = pec_proto::original::Original::parse(raw);
        let sender = original
            .from()
            .first()
            .cloned()
            .unwrap_or_else(|| mail_from.to_string());
        for r in rcpt_to {
            if !self.has_mailbox(r)? {
                continue;
            }
            let g = self.id.anomaly(raw, &sender, reason, r, now)?;
            self.deliver(&mut b, mail_from, (r, "INBOX"), &g.bytes, "anomalia");
        }
        let tx = Transaction {
            mittente: sender,
            destinatari: Vec::new(),
            risposte: String::new(),
            oggetto: original.subject().map(str::to_string),
            identificativo: original.message_id().unwrap_or_default(),
            msgid: original.message_id(),
            ricevuta: Default::default(),
        };
        b.log.push(self.log(Event::Anomalia, &tx, &[], "", reason));
        self.commit(b)?;
        Ok(())
    }

    /// Ordinary mail: refused unless a recipient opted in to receive it as an anomaly;
    /// infected ordinary mail is refused outright.
    async fn receive_ordinary(
        &self,
        mail_from: &str,
        rcpt_to: &[String],
        raw: &[u8],
        reason: &str,
        base: Batch,
    ) -> Reply {
        let mut accepting: Vec<String> = Vec::new();
        for r in rcpt_to.iter().filter(|r| self.accepts_ordinary(r)) {
            match blocking(|| self.has_mailbox(r)) {
                Ok(true) => accepting.push(r.clone()),
                Ok(false) => {}
                Err(e) => return temporary(e),
            }
        }
        if accepting.is_empty() {
            info!(from = mail_from, "ordinary mail refused: {reason}");
            return pec_only_reply();
        }
        if let Err(refusal) = self.clean_or_refusal(raw).await {
            return refusal;
        }
        match blocking(|| self.wrap_anomaly(mail_from, &accepting, raw, reason, base)) {
            Ok(()) => Reply::ok("Ok: consegnato come anomalia"),
            Err(e) => temporary(e),
        }
    }
}
