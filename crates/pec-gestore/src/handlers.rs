//! The SMTP faces of the gestore: the submission handler (access point) and the MX
//! handler (incoming point), plugged into `pec-smtp`'s sessions.

use std::sync::Arc;

use pec_net::Authenticator;
use pec_smtp::{Envelope, Handler, Reply, SessionInfo};
use pec_store::{Batch, Direction, EffectKey, NewTimer, NewVirusEntry};
use tracing::{info, warn};

use crate::access::{Outcome, RefusalCause, Submission, complete, completion_note, submit};
use crate::antivirus::{Scanner, Verdict as Scan};
use crate::events::Event;
use crate::service::{Gestore, blocking, domain_of};

fn temporary(e: impl std::fmt::Display) -> Reply {
    warn!("temporary failure, the client is to retry: {e}");
    Reply::new(
        451,
        "4.3.0",
        "Errore temporaneo del gestore, riprovare più tardi",
    )
}

/// The access point over SMTP submission.
pub struct SubmissionHandler<S: Scanner> {
    /// The PEC rules and state.
    pub gestore: Arc<Gestore<S>>,
    /// The password check shared with IMAP and POP3 (bounded pool, per-client penalty).
    pub auth: Arc<Authenticator>,
}

impl<S: Scanner> Handler for SubmissionHandler<S> {
    async fn authenticate(
        &self,
        session: &SessionInfo,
        user: &str,
        password: &str,
    ) -> Result<Option<String>, Reply> {
        let g = &self.gestore;
        let account = match blocking(|| g.store.find_account(user)) {
            Ok(account) => account,
            Err(e) => {
                warn!("cannot look up {user}: {e}");
                return Err(Reply::new(
                    454,
                    "4.7.0",
                    "Verifica delle credenziali momentaneamente impossibile, riprovare più tardi",
                ));
            }
        };
        let stored = account.as_ref().map(|a| a.password_hash.as_str());
        let matched = self.auth.verify(session.peer.ip(), password, stored).await;
        Ok(account.filter(|_| matched).map(|a| a.address))
    }

    async fn mail_from(&self, session: &SessionInfo, from: &str) -> Result<(), Reply> {
        match &session.authenticated {
            Some(user) if user.eq_ignore_ascii_case(from) => Ok(()),
            _ => Err(Reply::new(
                553,
                "5.7.1",
                "Il mittente deve coincidere con la casella autenticata",
            )),
        }
    }

    async fn rcpt_to(&self, _session: &SessionInfo, _from: &str, to: &str) -> Result<(), Reply> {
        if pec_proto::mime::bare_address(to).is_some() {
            Ok(())
        } else {
            Err(Reply::new(
                553,
                "5.1.3",
                "Indirizzo del destinatario non valido",
            ))
        }
    }

    async fn data(&self, session: &SessionInfo, envelope: Envelope, message: Vec<u8>) -> Reply {
        let g = &self.gestore;
        let Some(user) = session.authenticated.as_deref() else {
            return Reply::new(530, "5.7.0", "Autenticazione richiesta");
        };
        let message = g.received(session, &envelope.rcpt_to, &message);
        let virus = match g.scanner.scan(&message).await {
            Ok(Scan::Clean) => None,
            Ok(Scan::Infected(name)) => Some(name),
            Err(e) => return temporary(e),
        };
        let hosted = match blocking(|| g.hosted_domains()) {
            Ok(h) => h,
            Err(e) => return temporary(e),
        };
        let now = g.now();
        let completed = complete(&g.id, &message, now);
        let note = completion_note(completed.as_ref().map_or(&[], |c| &c.added[..]));
        let sub = Submission {
            raw: completed.as_ref().map_or(&message, |c| &c.bytes),
            mail_from: &envelope.mail_from,
            rcpt_to: &envelope.rcpt_to,
            authenticated: user,
            hosted: &hosted,
            virus: virus.as_deref(),
        };
        let outcome = match blocking(|| submit(&g.id, &sub, &g.settings.limits, now)) {
            Ok(o) => o,
            Err(e) => return temporary(e),
        };
        let sender = envelope.mail_from.to_ascii_lowercase();
        let folder = match blocking(|| g.receipt_folder(&sender)) {
            Ok(f) => f,
            Err(e) => return temporary(e),
        };
        let mut b = Batch::default();
        match outcome {
            Outcome::Accepted(a) => {
                let tx = &a.transaction;
                g.deliver(
                    &mut b,
                    g.id.address(),
                    (&sender, folder),
                    &a.receipt,
                    "accettazione",
                );
                b.archive.push(g.archive_copy(
                    &sender,
                    &a.envelope,
                    Direction::Sent,
                    "posta-certificata",
                ));
                b.queue.extend(g.queue_entries(
                    &tx.identificativo,
                    &envelope.mail_from,
                    &envelope.rcpt_to,
                    &a.envelope,
                ));
                let envelope_hash = pec_store::blobs::hash_hex(&a.envelope);
                b.timers.extend(a.certified.iter().map(|r| NewTimer {
                    identificativo: tx.identificativo.clone(),
                    recipient: r.to_ascii_lowercase(),
                    sender: sender.clone(),
                    subject: tx.oggetto.clone().unwrap_or_default(),
                    dispatched_at: now.timestamp(),
                    envelope: Some(envelope_hash.clone()),
                }));
                b.log.push(g.log(
                    Event::Accettazione,
                    tx,
                    &[&a.receipt_id, &tx.identificativo],
                    &g.id.name,
                    &note,
                ));
                b.effects
                    .push(g.effect(EffectKey::acceptance(&tx.identificativo)));
                match g.commit(b) {
                    // An identificativo already issued (it cannot happen with random
                    // identifiers): nothing stored, the client submits again.
                    Ok(c) if c.already_done.is_some() => temporary("identificativo già usato"),
                    Ok(_) => {
                        g.metrics.accepted();
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
                g.deliver(
                    &mut b,
                    g.id.address(),
                    (&sender, folder),
                    &r.notice,
                    "non-accettazione",
                );
                if r.cause == RefusalCause::Virus {
                    b.virus.push(NewVirusEntry {
                        at: now.timestamp(),
                        msgid: tx.identificativo.clone(),
                        sender: sender.clone(),
                        recipients: envelope.rcpt_to.clone(),
                        virus: r.reason.clone(),
                        message: message.clone(),
                    });
                }
                let detail = [r.reason.as_str(), &note]
                    .into_iter()
                    .filter(|d| !d.is_empty())
                    .collect::<Vec<_>>()
                    .join("; ");
                b.log.push(g.log(
                    Event::NonAccettazione,
                    tx,
                    &[&r.notice_id],
                    &g.id.name,
                    &detail,
                ));
                match g.commit(b) {
                    Ok(_) => {
                        g.metrics.refused(r.cause);
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
}

/// The incoming point over SMTP (the MX of the hosted domains).
pub struct MxHandler<S: Scanner>(pub Arc<Gestore<S>>);

impl<S: Scanner> Handler for MxHandler<S> {
    async fn authenticate(
        &self,
        _session: &SessionInfo,
        _user: &str,
        _password: &str,
    ) -> Result<Option<String>, Reply> {
        Ok(None)
    }

    async fn mail_from(&self, _session: &SessionInfo, _from: &str) -> Result<(), Reply> {
        Ok(())
    }

    async fn rcpt_to(&self, _session: &SessionInfo, _from: &str, to: &str) -> Result<(), Reply> {
        match blocking(|| self.0.hosts(&domain_of(to))) {
            Ok(true) => Ok(()),
            Ok(false) => Err(Reply::new(
                550,
                "5.7.1",
                "Relay non consentito: dominio non gestito",
            )),
            // Not knowing is no reason to refuse for good: the peer retries.
            Err(e) => Err(temporary(e)),
        }
    }

    async fn data(&self, session: &SessionInfo, envelope: Envelope, message: Vec<u8>) -> Reply {
        let message = self.0.received(session, &envelope.rcpt_to, &message);
        self.0
            .receive(&envelope.mail_from, &envelope.rcpt_to, &message)
            .await
    }
}
