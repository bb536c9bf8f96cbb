//! The relay client: hands one message to a remote SMTP server (another gestore's MX or an
//! ordinary MTA) and reports the outcome per recipient, for the transport queue. Sessions
//! are kept in the relay's [`Pool`] and reused for the next message to the same server.

use std::sync::Arc;
use std::time::Duration;

use smtp_proto::response::parser::ResponseReceiver;
use smtp_proto::{
    EXT_8BIT_MIME, EXT_CHUNKING, EXT_PIPELINING, EXT_SIZE, EXT_START_TLS, EhloResponse,
};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;
use tracing::{debug, info};

use crate::io::{Line, MAX_LINE, Stream, buffered, read_line};
use crate::pool::{Lease, Pool, Session};
use crate::{Error, Reply};

/// Most lines accepted in one reply (EHLO replies are the longest); bounds memory.
const MAX_REPLY_LINES: usize = 100;

/// Resets a reused session before its next transaction.
const RSET: &[u8] = b"RSET\r\n";
const RSET_STAGE: &str = "RSET";

/// Opens the message content.
const DATA: &[u8] = b"DATA\r\n";

/// True when the failure means the server dropped the session (closed, I/O error, or
/// `421` "closing"): on a reused session nothing was lost and a new one may work.
fn lost(e: &Error) -> bool {
    match e {
        Error::Io(_) | Error::Closed => true,
        Error::Rejected { reply, .. } => reply.code == 421,
        _ => false,
    }
}

/// How the relay client uses TLS. PEC traffic between gestori must be encrypted (spec
/// §8.3), ordinary Internet mail may fall back to plaintext.
#[derive(Clone)]
pub enum ClientTls {
    /// Use STARTTLS, and fail (temporarily) when the server does not offer it.
    RequireStartTls(Arc<rustls::ClientConfig>),
    /// Use STARTTLS when offered, plaintext otherwise. A failed handshake is still an error.
    Opportunistic(Arc<rustls::ClientConfig>),
    /// Never use TLS.
    None,
}

impl ClientTls {
    /// A tag telling the policies apart, so that sessions opened under one are never
    /// reused under another.
    fn tag(&self) -> u8 {
        match self {
            ClientTls::RequireStartTls(_) => 0,
            ClientTls::Opportunistic(_) => 1,
            ClientTls::None => 2,
        }
    }
}

/// The relay client's settings and connections, shared by every delivery a queue worker
/// makes (clones share the pool).
#[derive(Clone)]
pub struct Relay {
    /// The name we give in EHLO.
    pub helo_name: String,
    /// TLS policy and trust roots.
    pub tls: ClientTls,
    /// Limit for each step: connecting, each reply, the TLS handshake, sending the content.
    pub timeout: Duration,
    /// The established sessions, reused from one delivery to the next.
    pub pool: Pool,
}

/// What happened to one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecipientStatus {
    /// The server took responsibility for the message for this recipient.
    Accepted,
    /// Refused with a `4xx` (at RCPT or DATA): try again later.
    TemporaryFailure(Reply),
    /// Refused with a `5xx` (at RCPT or DATA): do not retry.
    PermanentFailure(Reply),
}

/// The outcome for one recipient of a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientOutcome {
    /// The forward path as given to [`Relay::deliver`].
    pub rcpt: String,
    /// Accepted or why not.
    pub status: RecipientStatus,
}

/// The result of a transaction that reached the recipients stage: what the queue needs to
/// decide, per recipient, between done, retry and give up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryOutcome {
    /// One entry per recipient, in the order given. A recipient accepted at RCPT but whose
    /// DATA was refused carries the DATA reply.
    pub recipients: Vec<RecipientOutcome>,
    /// The reply to the end of data or to the last BDAT chunk (or to the DATA command
    /// when it was refused); `None`
    /// when no recipient was accepted and no content was sent.
    pub data_reply: Option<Reply>,
}

fn status_for(reply: &Reply) -> RecipientStatus {
    if reply.is_positive() {
        RecipientStatus::Accepted
    } else if reply.is_transient() {
        RecipientStatus::TemporaryFailure(reply.clone())
    } else {
        RecipientStatus::PermanentFailure(reply.clone())
    }
}

/// The host part of `host:port` (brackets of an IPv6 literal removed), for TLS.
fn host_of(target: &str) -> &str {
    let host = target.rsplit_once(':').map_or(target, |(host, _)| host);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// One client connection.
pub(crate) struct Conn {
    pub(crate) stream: Stream,
    step: Duration,
    /// Set once message content went out in the current transaction: from then on a
    /// failure leaves it unknown whether the server took the message.
    content_sent: bool,
}

impl Conn {
    async fn send(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let stream = self.stream.get_mut();
        timeout(self.step, async {
            stream.write_all(bytes).await?;
            stream.flush().await
        })
        .await
        .map_err(|_| Error::Timeout("sending to the remote server"))??;
        Ok(())
    }

    /// The raw bytes of one whole (possibly multi-line) reply.
    async fn read_raw(&mut self) -> Result<Vec<u8>, Error> {
        let mut raw = Vec::new();
        for _ in 0..MAX_REPLY_LINES {
            let line = timeout(self.step, read_line(&mut self.stream, MAX_LINE))
                .await
                .map_err(|_| Error::Timeout("waiting for a reply"))??;
            let line = match line {
                Line::Full(line) => line,
                Line::TooLong => return Err(Error::Protocol("reply line too long".into())),
                Line::Eof => return Err(Error::Closed),
            };
            let last = line.get(3) != Some(&b'-');
            raw.extend_from_slice(&line);
            if last {
                return Ok(raw);
            }
        }
        Err(Error::Protocol("reply has too many lines".into()))
    }

    fn parse(raw: &[u8]) -> Result<Reply, Error> {
        let response = ResponseReceiver::default()
            .parse(&mut raw.iter())
            .map_err(|e| {
                Error::Protocol(format!(
                    "unparsable reply {:?}: {e:?}",
                    String::from_utf8_lossy(raw)
                ))
            })?;
        let enhanced = (response.esc != [0, 0, 0]).then(|| {
            let [class, subject, detail] = response.esc;
            format!("{class}.{subject}.{detail}")
        });
        Ok(Reply {
            code: response.code,
            enhanced,
            text: response.message,
        })
    }

    async fn reply(&mut self) -> Result<Reply, Error> {
        let raw = self.read_raw().await?;
        Self::parse(&raw)
    }

    /// Send a command and require a positive reply, else fail the whole transaction.
    async fn expect(&mut self, command: &str, stage: &'static str) -> Result<Reply, Error> {
        self.send(command.as_bytes()).await?;
        self.positive(stage).await
    }

    /// Read the reply to a command already sent and require it to be positive.
    async fn positive(&mut self, stage: &'static str) -> Result<Reply, Error> {
        let reply = self.reply().await?;
        if reply.is_positive() {
            Ok(reply)
        } else {
            Err(Error::Rejected { stage, reply })
        }
    }

    async fn ehlo(&mut self, helo_name: &str) -> Result<EhloResponse<String>, Error> {
        self.send(format!("EHLO {helo_name}\r\n").as_bytes())
            .await?;
        let raw = self.read_raw().await?;
        let reply = Self::parse(&raw)?;
        if reply.code != 250 {
            return Err(Error::Rejected {
                stage: "EHLO",
                reply,
            });
        }
        EhloResponse::parse(&mut raw.iter())
            .map_err(|e| Error::Protocol(format!("unparsable EHLO reply: {e:?}")))
    }
}

impl Relay {
    /// Deliver `message` from `mail_from` to `rcpt_to` through the SMTP server at `target`
    /// (`host:port`; the host is also the TLS server name).
    ///
    /// Returns the per-recipient outcome once the transaction reached the recipients; an
    /// `Err` means nobody got the message, and [`Error::is_temporary`] says whether to retry.
    /// The content is dot-stuffed on the way; `BODY=8BITMIME` is sent when it has 8-bit bytes.
    pub async fn deliver(
        &self,
        target: &str,
        mail_from: &str,
        rcpt_to: &[String],
        message: &[u8],
    ) -> Result<DeliveryOutcome, Error> {
        self.deliver_to(target, host_of(target), mail_from, rcpt_to, message)
            .await
    }

    /// As [`Relay::deliver`], connecting to `connect_to` (an address already resolved, e.g.
    /// from an MX look-up) while naming the server `server_name` for TLS.
    pub async fn deliver_to(
        &self,
        connect_to: &str,
        server_name: &str,
        mail_from: &str,
        rcpt_to: &[String],
        message: &[u8],
    ) -> Result<DeliveryOutcome, Error> {
        let bad = |a: &str| a.bytes().any(|b| matches!(b, b'\r' | b'\n' | b'<' | b'>'));
        if let Some(address) = std::iter::once(mail_from)
            .chain(rcpt_to.iter().map(String::as_str))
            .find(|a| bad(a))
        {
            return Err(Error::InvalidAddress(address.to_owned()));
        }
        let destination = (
            connect_to.to_owned(),
            server_name.to_owned(),
            self.tls.tag(),
        );
        let mut lease = self.pool.lease(destination).await?;
        if let Some(mut session) = lease.reused.take() {
            match self
                .transaction(&mut session, true, mail_from, rcpt_to, message)
                .await
            {
                Ok(outcome) => return Ok(self.finish(lease, session, outcome)),
                // The server dropped the session before taking anything: a new one may
                // work, and nobody got the message yet.
                Err(e) if !session.conn.content_sent && lost(&e) => {
                    debug!(
                        server = server_name,
                        "reused session lost ({e}), opening a new one"
                    );
                }
                Err(e) => return Err(e),
            }
        }
        let mut session = self.open(connect_to, server_name).await?;
        let outcome = self
            .transaction(&mut session, false, mail_from, rcpt_to, message)
            .await?;
        Ok(self.finish(lease, session, outcome))
    }

    /// Keeps the session for the next delivery unless the server announced it is closing.
    fn finish(&self, lease: Lease, session: Session, outcome: DeliveryOutcome) -> DeliveryOutcome {
        let closing = outcome
            .data_reply
            .iter()
            .chain(outcome.recipients.iter().filter_map(|r| match &r.status {
                RecipientStatus::Accepted => None,
                RecipientStatus::TemporaryFailure(reply)
                | RecipientStatus::PermanentFailure(reply) => Some(reply),
            }))
            .any(|reply| reply.code == 421);
        if !closing {
            self.pool.give_back(lease, session);
        }
        outcome
    }

    /// A new session: connection, greeting, EHLO and STARTTLS as the policy asks.
    async fn open(&self, connect_to: &str, server_name: &str) -> Result<Session, Error> {
        let tcp = timeout(self.timeout, TcpStream::connect(connect_to))
            .await
            .map_err(|_| Error::Timeout("connecting"))??;
        let mut conn = Conn {
            stream: buffered(Box::new(tcp)),
            step: self.timeout,
            content_sent: false,
        };
        let greeting = conn.reply().await?;
        if greeting.code != 220 {
            return Err(Error::Rejected {
                stage: "greeting",
                reply: greeting,
            });
        }
        let mut ehlo = conn.ehlo(&self.helo_name).await?;
        let tls_config = match &self.tls {
            ClientTls::RequireStartTls(config) => {
                if ehlo.capabilities & EXT_START_TLS == 0 {
                    return Err(Error::TlsUnavailable);
                }
                Some(config)
            }
            ClientTls::Opportunistic(config) => {
                (ehlo.capabilities & EXT_START_TLS != 0).then_some(config)
            }
            ClientTls::None => None,
        };
        if let Some(config) = tls_config {
            conn.expect("STARTTLS\r\n", "STARTTLS").await?;
            let name = rustls_pki_types::ServerName::try_from(server_name.to_owned())
                .map_err(|e| Error::Config(format!("invalid TLS server name: {e}")))?;
            let (placeholder, _) = tokio::io::duplex(1);
            let plain = std::mem::replace(&mut conn.stream, buffered(Box::new(placeholder)));
            let tls = timeout(
                self.timeout,
                TlsConnector::from(Arc::clone(config)).connect(name, plain.into_inner()),
            )
            .await
            .map_err(|_| Error::Timeout("TLS handshake"))??;
            conn.stream = buffered(Box::new(tls));
            ehlo = conn.ehlo(&self.helo_name).await?;
            debug!(server = server_name, "STARTTLS done");
        }
        Ok(Session {
            conn,
            ehlo,
            transactions: 0,
        })
    }

    /// One transaction on `session`; a `reused` session is reset first (RSET). The content
    /// goes as one `BDAT … LAST` chunk when the server offers CHUNKING (RFC 3030: no
    /// dot-stuffing, no scan for the end on either side), else after DATA.
    async fn transaction(
        &self,
        session: &mut Session,
        reused: bool,
        mail_from: &str,
        rcpt_to: &[String],
        message: &[u8],
    ) -> Result<DeliveryOutcome, Error> {
        let Session { conn, ehlo, .. } = session;
        conn.content_sent = false;
        let mut mail = format!("MAIL FROM:<{mail_from}>");
        if ehlo.capabilities & EXT_SIZE != 0 {
            mail.push_str(&format!(" SIZE={}", message.len()));
        }
        if !message.is_ascii() {
            if ehlo.capabilities & EXT_8BIT_MIME == 0 {
                return Err(Error::EightBitUnsupported);
            }
            mail.push_str(" BODY=8BITMIME");
        }
        mail.push_str("\r\n");
        let rcpt_commands: Vec<String> = rcpt_to
            .iter()
            .map(|rcpt| format!("RCPT TO:<{rcpt}>\r\n"))
            .collect();

        let pipelining = ehlo.capabilities & EXT_PIPELINING != 0;
        let chunking = ehlo.capabilities & EXT_CHUNKING != 0;
        let mail_reply;
        let mut rcpt_replies = Vec::with_capacity(rcpt_to.len());
        // With PIPELINING, the reply to the DATA sent in the batch (RFC 2920 §3.1: DATA
        // ends a group): refused by the server when no recipient was accepted.
        let mut data_reply = None;
        if pipelining {
            // RFC 2920: RSET, MAIL, every RCPT and DATA in one write, then the replies.
            // BDAT is not sent before a recipient was accepted: the content would go out
            // for nobody, and a lost session could no longer be retried at once.
            let mut batch = Vec::new();
            if reused {
                batch.extend_from_slice(RSET);
            }
            batch.extend_from_slice(mail.as_bytes());
            for command in &rcpt_commands {
                batch.extend_from_slice(command.as_bytes());
            }
            if !chunking {
                batch.extend_from_slice(DATA);
            }
            conn.send(&batch).await?;
            if reused {
                conn.positive(RSET_STAGE).await?;
            }
            mail_reply = conn.reply().await?;
            for _ in &rcpt_commands {
                rcpt_replies.push(conn.reply().await?);
            }
            if !chunking {
                data_reply = Some(conn.reply().await?);
            }
        } else {
            if reused {
                conn.send(RSET).await?;
                conn.positive(RSET_STAGE).await?;
            }
            conn.send(mail.as_bytes()).await?;
            mail_reply = conn.reply().await?;
            if mail_reply.is_positive() {
                for command in &rcpt_commands {
                    conn.send(command.as_bytes()).await?;
                    rcpt_replies.push(conn.reply().await?);
                }
            }
        }
        if !mail_reply.is_positive() {
            return Err(Error::Rejected {
                stage: "MAIL FROM",
                reply: mail_reply,
            });
        }

        let recipients: Vec<RecipientOutcome> = rcpt_to
            .iter()
            .zip(&rcpt_replies)
            .map(|(rcpt, reply)| RecipientOutcome {
                rcpt: rcpt.clone(),
                status: status_for(reply),
            })
            .collect();
        let accepted = recipients
            .iter()
            .any(|r| r.status == RecipientStatus::Accepted);
        if !accepted {
            if data_reply.is_some_and(|r| r.code == 354) {
                // A server that opened DATA without recipients gets an empty message,
                // which it cannot deliver to anybody.
                conn.send(b".\r\n").await?;
                conn.reply().await?;
            }
            return Ok(DeliveryOutcome {
                recipients,
                data_reply: None,
            });
        }

        if chunking {
            let mut chunk = format!("BDAT {} LAST\r\n", message.len()).into_bytes();
            chunk.extend_from_slice(message);
            conn.content_sent = true;
            conn.send(&chunk).await?;
            let reply = conn.reply().await?;
            return Ok(Self::outcome(mail_from, recipients, reply));
        }
        let mut data_reply = match data_reply {
            Some(reply) => reply,
            None => {
                conn.send(DATA).await?;
                conn.reply().await?
            }
        };
        if data_reply.code == 354 {
            let mut stuffed = Vec::new();
            pec_net::dot::stuff(message, &mut stuffed);
            conn.content_sent = true;
            conn.send(&stuffed).await?;
            data_reply = conn.reply().await?;
        } else if data_reply.is_positive() {
            // A positive reply other than 354 would leave the content unsent.
            return Err(Error::Protocol(format!(
                "unexpected reply to DATA: {data_reply}"
            )));
        }
        Ok(Self::outcome(mail_from, recipients, data_reply))
    }

    /// The outcome once the server answered the content: a refusal there applies to every
    /// recipient accepted at RCPT.
    fn outcome(
        mail_from: &str,
        mut recipients: Vec<RecipientOutcome>,
        data_reply: Reply,
    ) -> DeliveryOutcome {
        if !data_reply.is_positive() {
            for r in &mut recipients {
                if r.status == RecipientStatus::Accepted {
                    r.status = status_for(&data_reply);
                }
            }
        }
        info!(from = mail_from, data_reply = %data_reply, "relay transaction done");
        DeliveryOutcome {
            recipients,
            data_reply: Some(data_reply),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_part() {
        assert_eq!(host_of("mx.example.it:25"), "mx.example.it");
        assert_eq!(host_of("[::1]:25"), "::1");
        assert_eq!(host_of("127.0.0.1:2525"), "127.0.0.1");
    }

    /// Postfix 3.7's EHLO reply, as `tests/tests/relay_postfix.rs` meets it.
    #[test]
    fn postfix_ehlo_offers_chunking() {
        let raw = b"250-mx.posta.ordinaria.test\r\n250-PIPELINING\r\n250-SIZE 52428800\r\n250-VRFY\r\n250-ETRN\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n";
        let ehlo = EhloResponse::parse(&mut raw.iter()).unwrap();
        assert_ne!(ehlo.capabilities & EXT_CHUNKING, 0);
        assert_ne!(ehlo.capabilities & EXT_PIPELINING, 0);
    }

    #[test]
    fn parses_multiline_reply_with_enhanced_code() {
        let reply = Conn::parse(b"250-2.1.5 first\r\n250 2.1.5 second\r\n").unwrap();
        assert_eq!(reply.code, 250);
        assert_eq!(reply.enhanced.as_deref(), Some("2.1.5"));
        assert!(reply.text.contains("first") && reply.text.contains("second"));
    }
}
