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
        let now = self.now();
        match blocking(|| examine(&self.id, raw, now)) {
            Verdict::Envelope {
                daticert,
                mail_receipt,
                provider,
            } => {
                let key = format!("busta {} {}", daticert.identificativo, rcpt_to.join(","));
                let _one = self.receiving.enter(key).await;
                self.receive_envelope(mail_from, rcpt_to, raw, &daticert, &mail_receipt, &provider)
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
                blocking(|| self.receive_receipt(rcpt_to, raw, kind, &daticert))
            }
            Verdict::Anomaly { reason } => {
                blocking(|| self.receive_anomaly(mail_from, rcpt_to, raw, &reason))
            }
            Verdict::Ordinary { reason } => {
                self.receive_ordinary(mail_from, rcpt_to, raw, &reason)
                    .await
            }
        }
    }

    async fn receive_envelope(
        &self,
        mail_from: &str,
        rcpt_to: &[String],
        raw: &[u8],
        daticert: &Daticert,
        mail_receipt: &str,
        provider: &str,
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
            return Reply::ok(format!("Ok: già preso in carico {}", tx.identificativo));
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
                    &tx,
                    mail_from,
                    &local,
                    raw,
                    &presa,
                    provider,
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

    /// The durable step for a valid transport envelope: presa in carico, then either the
    /// virus path or one delivery and one receipt per recipient.
    #[allow(clippy::too_many_arguments)]
    fn envelope_batch(
        &self,
        tx: &Transaction,
        mail_from: &str,
        local: &[String],
        raw: &[u8],
        presa: &crate::emit::Generated,
        provider: &str,
        virus: Option<&str>,
        failures: &[(String, Failure)],
    ) -> crate::Result<Batch> {
        let now = self.now();
        let mut b = Batch::default();
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
    fn receive_receipt(&self, rcpt_to: &[String], raw: &[u8], kind: Kind, d: &Daticert) -> Reply {
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
        if !message_id.is_empty()
            && self.logged(&tx.identificativo, |e| {
                e.event == event && e.detail == detail
            })
        {
            // Delivered before a crash cut the rest short: settle the timer again (the
            // first outcome wins, so this is harmless when it was settled).
            if let Some(outcome) = outcome_of(kind, d) {
                let _ = self
                    .store
                    .mark_outcome(&tx.identificativo, &recipient, outcome);
            }
            return Reply::ok("Ok: ricevuta già consegnata");
        }
        let mut b = Batch::default();
        let timer_update = match kind {
            Kind::PresaInCarico => {
                if let Err(e) = self.store.mark_presa_in_carico(
                    &tx.identificativo,
                    &d.ricezione,
                    now.timestamp(),
                ) {
                    warn!("presa in carico for an unknown transaction: {e}");
                }
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
        if let Err(e) = self.commit(b) {
            return temporary(e);
        }
        if let Some(outcome) = timer_update
            && let Err(e) = self
                .store
                .mark_outcome(&tx.identificativo, &recipient, outcome)
        {
            info!("receipt for a recipient without timers: {e}");
        }
        Reply::ok("Ok: ricevuta consegnata")
    }

    /// Signed by a gestore but not a correct PEC message: it must still be propagated, as
    /// an anomaly envelope, to every local recipient.
    fn receive_anomaly(
        &self,
        mail_from: &str,
        rcpt_to: &[String],
        raw: &[u8],
        reason: &str,
    ) -> Reply {
        match self.wrap_anomaly(mail_from, rcpt_to, raw, reason) {
            Ok(()) => Reply::ok("Ok: consegnato come anomalia"),
            Err(e) => temporary(e),
        }
    }

    fn wrap_anomaly(
        &self,
        mail_from: &str,
        rcpt_to: &[String],
        raw: &[u8],
        reason: &str,
    ) -> crate::Result<()> {
        let now = self.now();
        let original = pec_proto::original::Original::parse(raw);
        let sender = original
            .from()
            .first()
            .cloned()
            .unwrap_or_else(|| mail_from.to_string());
        let mut b = Batch::default();
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
        match self.wrap_anomaly(mail_from, &accepting, raw, reason) {
            Ok(()) => Reply::ok("Ok: consegnato come anomalia"),
            Err(e) => temporary(e),
        }
    }
}
