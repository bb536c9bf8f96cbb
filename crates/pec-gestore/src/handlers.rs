//! The SMTP faces of the gestore: the submission handler (access point) and the MX
//! handler (incoming point), plugged into `pec-smtp`'s sessions.

use std::sync::Arc;

use pec_net::Authenticator;
use pec_smtp::{Envelope, Handler, Reply, SessionInfo};
use pec_store::Batch;
use tracing::warn;

use crate::antivirus::Scanner;
use crate::service::{Gestore, blocking, domain_of};

pub(crate) fn temporary(e: impl std::fmt::Display) -> Reply {
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
        let Some(user) = session.authenticated.as_deref() else {
            return Reply::new(530, "5.7.0", "Autenticazione richiesta");
        };
        // A user's message (SMTP or JMAP) waits while the queue is behind; the queue's
        // own submissions (a ripudio) do not, or a pass would wait for itself.
        if self.gestore.flow.admit().await {
            self.gestore.metrics.delayed_submission();
        }
        let message = self.gestore.received(session, &envelope.rcpt_to, &message);
        self.gestore
            .submit_message(
                user,
                (&envelope.mail_from, &envelope.rcpt_to),
                message,
                Batch::default(),
            )
            .await
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
