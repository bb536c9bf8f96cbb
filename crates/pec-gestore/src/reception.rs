//! What happens to a message that reaches the gestore from the network (or from its own
//! queue, for local domains): the incoming point's decision (spec §2.3), then the
//! delivery point (spec §2.4), in one durable step per message.

use pec_proto::build::{Notice, Transaction};
use pec_proto::classify::Kind;
use pec_proto::daticert::{Daticert, Errore};
use pec_smtp::Reply;
use pec_store::{Batch, Direction, Error as StoreError, Outcome as TimerOutcome};
use tracing::{info, warn};

use crate::antivirus::{Scanner, Verdict as Scan};
use crate::delivery::variant_for;
use crate::incoming::{Verdict, examine};
use crate::service::{Gestore, blocking};

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

/// Why a recipient of an envelope did not get it.
enum Failure {
    NoMailbox,
    Full,
}

impl<S: Scanner> Gestore<S> {
    /// Whether the legal log already holds a record about `identificativo` matching
    /// `pred`: how a message received twice (a retry after a crash, a duplicate relay) is
    /// recognised, since the log record is stored in the same transaction as its effects.
    fn logged(&self, identificativo: &str, pred: impl Fn(&pec_store::LogEntry) -> bool) -> bool {
        let q = pec_store::LogQuery {
            msgid: Some(identificativo.to_string()),
            ..Default::default()
        };
        self.store
            .search_log(&q)
            .is_ok_and(|records| records.iter().any(|r| pred(&r.entry)))
    }

    /// Processes one received message for its local recipients `rcpt_to` (already known to
    /// be in hosted domains); returns the SMTP reply. Everything it decides is durable
    /// before a positive reply.
    pub async fn receive(&self, mail_from: &str, rcpt_to: &[String], raw: &[u8]) -> Reply {
        self.receive_with(mail_from, rcpt_to, raw, Batch::default())
            .await
    }

    /// [`Gestore::receive`], storing `base` in the same durable step as the message, and
    /// only with it: a positive reply means `base` is stored, any other reply means it is
    /// not. The queue worker passes the completion of the entry the message came from,
    /// so handling a local entry costs one transaction and a crash cannot separate the
    /// two.
    pub async fn receive_with(
        &self,
        mail_from: &str,
        rcpt_to: &[String],
        raw: &[u8],
        base: Batch,
    ) -> Reply {
        let now = self.now();
        match blocking(|| examine(&self.id, raw, now)) {
            Verdict::Envelope {
                daticert,
                mail_receipt,
                provider,
            } => {
                let key = format!("busta {} {}", daticert.identificativo, rcpt_to.join(","));
                let _one = self.receiving.enter(key).await;
                let from = (mail_from, mail_receipt.as_str(), provider.as_str());
                self.receive_envelope(from, rcpt_to, raw, &daticert, base)
                    .await
            }
            Verdict::Receipt { kind, daticert } => {
                let key = format!(
                    "ricevuta {} {} {}",
                    daticert.identificativo,
                    kind.as_str(),
                    daticert.consegna.as_deref().unwrap_or_default()
                );
                let _one = self.receiving.enter(key).await;
                blocking(|| self.receive_receipt(rcpt_to, raw, kind, &daticert, base))
            }
            Verdict::Anomaly { reason } => {
                blocking(|| self.receive_anomaly(mail_from, rcpt_to, raw, &reason, base))
            }
            Verdict::Ordinary { reason } => {
                self.receive_ordinary(mail_from, rcpt_to, raw, &reason, base)
                    .await
            }
        }
    }

    /// Stores `base` alone, for a message recognised as already handled; the positive
    /// `reply` if that worked.
    fn settle_duplicate(&self, base: Batch, reply: Reply) -> Reply {
        match self.commit(base) {
            Ok(_) => reply,
            Err(e) => temporary(e),
        }
    }

    /// A valid transport envelope; `(mail_from, mail_receipt, provider)` say who sent it.
    async fn receive_envelope(
        &self,
        (mail_from, mail_receipt, provider): (&str, &str, &str),
        rcpt_to: &[String],
        raw: &[u8],
        daticert: &Daticert,
        base: Batch,
    ) -> Reply {
        let tx = Transaction::from_daticert(daticert);
        let now = self.now();
        // One look at the log for every recipient: those already delivered (a retry
        // after a crash, a duplicate relay) are left out.
        let q = pec_store::LogQuery {
            msgid: Some(tx.identificativo.clone()),
            ..Default::default()
        };
        let records = self.store.search_log(&q).unwrap_or_default();
        let done = |r: &str| {
            records.iter().any(|rec| {
                matches!(
                    rec.entry.event.as_str(),
                    "consegna" | "errore-consegna" | "rilevazione-virus"
                ) && rec.entry.detail.eq_ignore_ascii_case(r)
            })
        };
        let local: Vec<String> = rcpt_to
            .iter()
            .map(|r| r.to_ascii_lowercase())
            .filter(|r| !done(r))
            .collect();
        if local.is_empty() {
            let reply = Reply::ok(format!("Ok: già preso in carico {}", tx.identificativo));
            return blocking(|| self.settle_duplicate(base, reply));
        }
        let presa = match blocking(|| {
            self.id.notice(
                &tx,
                &Notice::PresaInCarico { ricezione: &local },
                mail_receipt,
                now,
            )
        }) {
            Ok(g) => g,
            Err(e) => return temporary(e),
        };
        let virus = match self.scanner.scan(raw).await {
            Ok(Scan::Clean) => None,
            Ok(Scan::Infected(name)) => Some(name),
            Err(e) => return temporary(e),
        };
        let mut failures: Vec<(String, Failure)> = Vec::new();
        // Each pass either commits or learns one more recipient that cannot take the
        // message (a full mailbox), so it ends after at most one pass per recipient.
        for _ in 0..=local.len() {
            let batch = match blocking(|| {
                self.envelope_batch(
                    base.clone(),
                    &tx,
                    (mail_from, provider),
                    &local,
                    raw,
                    &presa,
                    virus.as_deref(),
                    &failures,
                )
            }) {
                Ok(b) => b,
                Err(e) => return temporary(e),
            };
            match self.commit(batch) {
                Ok(_) => {
                    info!(identificativo = %tx.identificativo, recipients = local.len(), "envelope received");
                    return Reply::ok(format!("Ok: presa in carico {}", tx.identificativo));
                }
                Err(StoreError::BatchItem { item, source })
                    if matches!(*source, StoreError::QuotaExceeded { .. }) =>
                {
                    let Some(i) = item
                        .strip_prefix("deliveries[")
                        .and_then(|s| s.strip_suffix(']'))
                        .and_then(|n| n.parse::<usize>().ok())
                    else {
                        return temporary(format!("{item}: {source}"));
                    };
                    let delivered: Vec<&String> = local
                        .iter()
                        .filter(|r| !failures.iter().any(|(f, _)| f == *r))
                        .filter(|r| self.store.account(r).is_ok())
                        .collect();
                    match delivered.get(i) {
                        Some(r) => failures.push(((*r).clone(), Failure::Full)),
                        None => return temporary(format!("{item}: {source}")),
                    }
                }
                Err(e) => return temporary(e),
            }
        }
        temporary("could not settle the deliveries")
    }

    /// The durable step for a valid transport envelope, added to `b`: presa in carico,
    /// then either the virus path or one delivery and one receipt per recipient.
    #[allow(clippy::too_many_arguments)]
    fn envelope_batch(
        &self,
        mut b: Batch,
        tx: &Transaction,
        (mail_from, provider): (&str, &str),
        local: &[String],
        raw: &[u8],
        presa: &crate::emit::Generated,
        virus: Option<&str>,
        failures: &[(String, Failure)],
    ) -> crate::Result<Batch> {
        let now = self.now();
        self.send(&mut b, &tx.identificativo, presa);
        b.log.push(self.log(
            "presa-in-carico",
            tx,
            &[&presa.message_id],
            provider,
            &local.join(", "),
        ));
        if let Some(virus) = virus {
            b.virus.push(pec_store::NewVirusEntry {
                at: now.timestamp(),
                msgid: tx.identificativo.clone(),
                sender: tx.mittente.clone(),
                recipients: local.to_vec(),
                virus: virus.to_string(),
                message: raw.to_vec(),
            });
            for r in local {
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
                b.log
                    .push(self.log("rilevazione-virus", tx, &[&g.message_id], provider, virus));
            }
            return Ok(b);
        }
        // The original message is found once, whatever the number of recipients.
        let postacert = std::cell::OnceCell::new();
        for r in local {
            let failure = failures.iter().find(|(f, _)| f == r).map(|(_, why)| why);
            let failure = match failure {
                Some(f) => Some(f),
                None if self.store.account(r).is_err() => Some(&Failure::NoMailbox),
                None => None,
            };
            let (notice, event) = match failure {
                None => {
                    b.deliveries.push(self.delivery(r, "INBOX", raw));
                    b.archive.push(self.archive_copy(
                        r,
                        raw,
                        Direction::Received,
                        "posta-certificata",
                    ));
                    let variant = variant_for(raw, tx.ricevuta, r);
                    let postacert =
                        postacert.get_or_init(|| pec_proto::classify::classify(raw).postacert);
                    let g = self.id.notice(
                        tx,
                        &Notice::AvvenutaConsegna {
                            recipient: r,
                            variant,
                            postacert: postacert.as_deref(),
                        },
                        mail_from,
                        now,
                    )?;
                    (g, "consegna")
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
                        mail_from,
                        now,
                    )?;
                    (g, "errore-consegna")
                }
            };
            self.send(&mut b, &tx.identificativo, &notice);
            b.log
                .push(self.log(event, tx, &[&notice.message_id], provider, r));
        }
        Ok(b)
    }

    /// A receipt from a gestore (ours included): delivered unchanged to the user it is
    /// addressed to; those for the service mailbox update the timers instead.
    fn receive_receipt(
        &self,
        rcpt_to: &[String],
        raw: &[u8],
        kind: Kind,
        d: &Daticert,
        mut b: Batch,
    ) -> Reply {
        let tx = Transaction::from_daticert(d);
        let now = self.now();
        let provider = d.gestore_emittente.as_str();
        let message_id = pec_proto::original::Original::parse(raw)
            .message_id()
            .unwrap_or_default();
        let event = format!("ricezione {}", kind.as_str());
        let recipient = d.consegna.clone().unwrap_or_default();
        // The log record of a received receipt names the recipient it is about and the
        // receipt's own Message-ID: how the same receipt received twice is recognised
        // (a transaction has one presa in carico per destination gestore, so the
        // recipient alone would not do).
        let detail = if recipient.is_empty() {
            message_id.clone()
        } else {
            format!("{recipient} {message_id}")
        };
        let outcome = |outcome| pec_store::OutcomeUpdate {
            identificativo: tx.identificativo.clone(),
            recipient: recipient.clone(),
            outcome,
        };
        if !message_id.is_empty()
            && self.logged(&tx.identificativo, |e| {
                e.event == event && e.detail == detail
            })
        {
            // Delivered already (a duplicate relay, or a crash before this version stored
            // the timer update with the delivery): settle the timer again (the first
            // outcome wins, so this is harmless when it was settled).
            b.outcomes.extend(outcome_of(kind, d).map(outcome));
            return self.settle_duplicate(b, Reply::ok("Ok: ricevuta già consegnata"));
        }
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
                let virus = d.errore_esteso.clone().unwrap_or_default();
                match self.id.notice(
                    &tx,
                    &Notice::ErroreConsegnaVirus {
                        recipient: &recipient,
                        virus: &virus,
                    },
                    &tx.mittente,
                    now,
                ) {
                    Ok(g) => {
                        self.send(&mut b, &tx.identificativo, &g);
                        b.log.push(self.log(
                            "errore-consegna-virus",
                            &tx,
                            &[&g.message_id],
                            provider,
                            &recipient,
                        ));
                    }
                    Err(e) => return temporary(e),
                }
                Some(TimerOutcome::Virus)
            }
            _ => outcome_of(kind, d),
        };
        for r in rcpt_to {
            if self.is_service_address(r) {
                b.archive
                    .push(self.archive_copy(r, raw, Direction::Received, kind.as_str()));
                continue;
            }
            if self.store.account(r).is_err() {
                continue;
            }
            b.deliveries
                .push(self.delivery(r, self.receipt_folder(r), raw));
            b.archive
                .push(self.archive_copy(r, raw, Direction::Received, kind.as_str()));
        }
        b.log.push(self.log(&event, &tx, &[], provider, &detail));
        b.outcomes.extend(timer_update.map(outcome));
        match self.commit(b) {
            Ok(_) => Reply::ok("Ok: ricevuta consegnata"),
            Err(e) => temporary(e),
        }
    }

    /// Signed by a gestore but not a correct PEC message: it must still be propagated, as
    /// an anomaly envelope, to every local recipient.
    fn receive_anomaly(
        &self,
        mail_from: &str,
        rcpt_to: &[String],
        raw: &[u8],
        reason: &str,
        base: Batch,
    ) -> Reply {
        match self.wrap_anomaly(mail_from, rcpt_to, raw, reason, base) {
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
        for r in rcpt_to.iter().filter(|r| self.store.account(r).is_ok()) {
            let g = self.id.anomaly(raw, &sender, reason, r, now)?;
            b.deliveries.push(self.delivery(r, "INBOX", &g.bytes));
            b.archive
                .push(self.archive_copy(r, &g.bytes, Direction::Received, "anomalia"));
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
        b.log.push(self.log("anomalia", &tx, &[], "", reason));
        self.commit(b)
            .map_err(|e| crate::Error::Store(e.to_string()))?;
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
        let accepting: Vec<String> = rcpt_to
            .iter()
            .filter(|r| self.accepts_ordinary(r) && self.store.account(r).is_ok())
            .cloned()
            .collect();
        if accepting.is_empty() {
            info!(from = mail_from, "ordinary mail refused: {reason}");
            return pec_only_reply();
        }
        match self.scanner.scan(raw).await {
            Ok(Scan::Clean) => {}
            Ok(Scan::Infected(name)) => {
                return Reply::new(554, "5.7.1", format!("Messaggio rifiutato: virus {name}"));
            }
            Err(e) => return temporary(e),
        }
        match blocking(|| self.wrap_anomaly(mail_from, &accepting, raw, reason, base)) {
            Ok(()) => Reply::ok("Ok: consegnato come anomalia"),
            Err(e) => temporary(e),
        }
    }
}
