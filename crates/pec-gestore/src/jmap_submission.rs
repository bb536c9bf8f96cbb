//! The access point as JMAP's EmailSubmission/set reaches it: the SMTP submission
//! handler itself, called as an SMTP session authenticated as the user would call it
//! (`MAIL FROM`, each `RCPT TO`, the size bound, `DATA`), so that the checks, the
//! acceptance or non-acceptance and the legal log are the same code, not a copy.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use pec_jmap::submission::{AccessPoint, Pending, Verdict};
use pec_smtp::{Envelope, Handler, Mode, SessionInfo};

use crate::antivirus::Scanner;
use crate::handlers::SubmissionHandler;

/// SMTP submission's handler and its limits, as JMAP's access point.
pub struct JmapAccess<S: Scanner> {
    /// The submission handler the SMTP listeners use.
    pub handler: Arc<SubmissionHandler<S>>,
    /// The SMTP listener's largest message and most recipients.
    pub max_message_size: usize,
    /// Most recipients per transaction, as SMTP.
    pub max_recipients: usize,
}

impl<S: Scanner> AccessPoint for JmapAccess<S> {
    fn submit<'a>(
        &'a self,
        peer: IpAddr,
        user: &'a str,
        mail_from: &'a str,
        rcpt_to: &'a [String],
        message: Vec<u8>,
    ) -> Pending<'a> {
        Box::pin(async move {
            let session = SessionInfo {
                peer: SocketAddr::new(peer, 0),
                tls: true,
                tls_parameters: None,
                authenticated: Some(user.to_string()),
                helo: "jmap".to_string(),
                esmtp: true,
                mode: Mode::Submission { implicit_tls: true },
            };
            let h = &self.handler;
            if let Err(r) = h.mail_from(&session, mail_from).await {
                return Verdict::ForbiddenFrom(r.text);
            }
            if rcpt_to.len() > self.max_recipients {
                return Verdict::InvalidRecipients(
                    rcpt_to[self.max_recipients..].to_vec(),
                    format!("al più {} destinatari", self.max_recipients),
                );
            }
            let mut refused = Vec::new();
            let mut why = String::new();
            for to in rcpt_to {
                if let Err(r) = h.rcpt_to(&session, mail_from, to).await {
                    refused.push(to.clone());
                    why = r.text;
                }
            }
            if !refused.is_empty() {
                return Verdict::InvalidRecipients(refused, why);
            }
            if message.len() > self.max_message_size {
                return Verdict::TooLarge(self.max_message_size);
            }
            let envelope = Envelope {
                mail_from: mail_from.to_string(),
                rcpt_to: rcpt_to.to_vec(),
            };
            let reply = h.data(&session, envelope, message).await;
            if reply.is_positive() {
                Verdict::Accepted(reply.text)
            } else if reply.is_transient() {
                Verdict::Temporary(reply.text)
            } else {
                Verdict::Refused(reply.text)
            }
        })
    }
}
