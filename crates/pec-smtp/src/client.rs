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

/// True for a `421` at the greeting: the server refuses one more connection now (its
/// limit per client address, or shutting down).
fn at_peer_limit(e: &Error) -> bool {
    matches!(e, Error::Rejected { stage: "greeting", reply } if reply.code == 421)
}

/// True when a transaction's failure leaves the session unusable for the next one: all but
/// a refused sender or a message that could not be sent at all.
fn breaks(e: &Error) -> bool {
    match e {
        Error::Rejected { stage, reply } => *stage != "MAIL FROM" || reply.code == 421,
        Error::InvalidAddress(_) | Error::EightBitUnsupported => false,
        _ => true,
    }
}

/// True when the server announced (`421`) that it is closing the session.
fn closing(outcome: &DeliveryOutcome) -> bool {
    outcome
        .data_reply
        .iter()
        .chain(outcome.recipients.iter().filter_map(|r| match &r.status {
            RecipientStatus::Accepted => None,
            RecipientStatus::TemporaryFailure(reply) | RecipientStatus::PermanentFailure(reply) => {
                Some(reply)
            }
        }))
        .any(|reply| reply.code == 421)
}

/// Whether the session may serve the next transaction after this result.
fn keeps(result: &Result<DeliveryOutcome, Error>) -> bool {
    match result {
        Ok(outcome) => !closing(outcome),
        Err(e) => !breaks(e),
    }
}

/// The `MAIL FROM` command for `o` on a session with these extensions: `SIZE` when
/// offered, `BODY=8BITMIME` for 8-bit content (refused when the server lacks 8BITMIME).
fn mail_command(ehlo: &EhloResponse<String>, o: &Outgoing<'_>) -> Result<String, Error> {
    let mut mail = format!("MAIL FROM:<{}>", o.mail_from);
    if ehlo.capabilities & EXT_SIZE != 0 {
        mail.push_str(&format!(" SIZE={}", o.message.len()));
    }
    if !o.message.is_ascii() {
        if ehlo.capabilities & EXT_8BIT_MIME == 0 {
            return Err(Error::EightBitUnsupported);
        }
        mail.push_str(" BODY=8BITMIME");
    }
    mail.push_str("\r\n");
    Ok(mail)
}

/// One message for the relay: the envelope and the content, as [`Relay::deliver_batch`]
/// takes several of them to one server.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    /// The reverse path, without angle brackets.
    pub mail_from: &'a str,
    /// The forward paths, without angle brackets.
    pub rcpt_to: &'a [String],
    /// The content, sent unaltered (dot-stuffed only on the way when DATA is used).
    pub message: &'a [u8],
}

impl Outgoing<'_> {
    /// Refuses an address that cannot be written into an SMTP command.
    fn check(&self) -> Result<(), Error> {
        let bad = |a: &str| a.bytes().any(|b| matches!(b, b'\r' | b'\n' | b'<' | b'>'));
        match std::iter::once(self.mail_from)
            .chain(self.rcpt_to.iter().map(String::as_str))
            .find(|a| bad(a))
        {
            Some(address) => Err(Error::InvalidAddress(address.to_owned())),
            None => Ok(()),
        }
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
        let one = Outgoing {
            mail_from,
            rcpt_to,
            message,
        };
        self.deliver_batch(connect_to, server_name, &[one])
            .await
            .pop()
            .unwrap_or(Err(Error::Closed))
    }

    /// Delivers several messages to one server over one session, as [`Relay::deliver_to`]
    /// would deliver each: one result per message, in the order given, each decided by
    /// the server's own replies to that message's transaction.
    ///
    /// The first transaction runs alone (it proves a reused session alive, and is retried
    /// on a new session when the server had dropped it); with PIPELINING and CHUNKING the
    /// others follow back to back in one go (RFC 2920, RFC 3030: the next `MAIL` may follow
    /// a `BDAT … LAST` without waiting), so a batch costs one round trip more than one
    /// message. When the session breaks in the middle, the messages without a final reply
    /// get a temporary error: the server may or may not have taken them, and a retry is
    /// recognised by the receiver's own duplicate check.
    pub async fn deliver_batch(
        &self,
        connect_to: &str,
        server_name: &str,
        batch: &[Outgoing<'_>],
    ) -> Vec<Result<DeliveryOutcome, Error>> {
        let mut results: Vec<Option<Result<DeliveryOutcome, Error>>> =
            batch.iter().map(|o| o.check().err().map(Err)).collect();
        let todo: Vec<usize> = (0..batch.len()).filter(|&i| results[i].is_none()).collect();
        if let Some((&first, rest)) = todo.split_first() {
            let destination = (
                connect_to.to_owned(),
                server_name.to_owned(),
                self.tls.tag(),
            );
            match self.pool.lease(destination).await {
                Ok(lease) => {
                    let to = (connect_to, server_name);
                    self.run_batch(lease, to, batch, (first, rest), &mut results)
                        .await
                }
                Err(e) => {
                    for &i in &todo {
                        results[i] = Some(Err(e.again()));
                    }
                }
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or(Err(Error::Closed)))
            .collect()
    }

    /// The transactions of [`Relay::deliver_batch`] on one leased session to
    /// `(connect_to, server_name)`: `first` alone, then the rest; fills `results` for each.
    async fn run_batch(
        &self,
        mut lease: Lease,
        (connect_to, server_name): (&str, &str),
        batch: &[Outgoing<'_>],
        (first, rest): (usize, &[usize]),
        results: &mut [Option<Result<DeliveryOutcome, Error>>],
    ) {
        let mut session = None;
        for attempt in 0..2 {
            if let Some(mut reused) = lease.reused.take() {
                match self.transaction(&mut reused, true, &batch[first]).await {
                    // The server dropped the session before taking anything: a new one may
                    // work, and nobody got the message yet.
                    Err(e) if !reused.conn.content_sent && lost(&e) => {
                        debug!(
                            server = server_name,
                            "reused session lost ({e}), opening a new one"
                        );
                    }
                    r => {
                        session = keeps(&r).then_some(reused);
                        results[first] = Some(r);
                        break;
                    }
                }
            }
            match self.open(connect_to, server_name).await {
                Ok(mut fresh) => {
                    let r = self.transaction(&mut fresh, false, &batch[first]).await;
                    session = keeps(&r).then_some(fresh);
                    results[first] = Some(r);
                }
                // The peer takes no more connections from us: its limit, not a failure of
                // the messages, while a session of ours to it is busy and will be free.
                Err(e) if attempt == 0 && at_peer_limit(&e) => {
                    debug!(server = server_name, "{e}: waiting for a session of ours");
                    match self.pool.wait_for_idle(lease, self.timeout).await {
                        Some(idle) => {
                            lease = idle;
                            continue;
                        }
                        None => {
                            for &i in std::iter::once(&first).chain(rest) {
                                results[i] = Some(Err(e.again()));
                            }
                            return;
                        }
                    }
                }
                Err(e) => results[first] = Some(Err(e)),
            }
            break;
        }
        let Some(mut session) = session else {
            // Never sent: they fail as the first one did, and are retried with it.
            let failure = match &results[first] {
                Some(Err(e)) => e.again(),
                _ => Error::Closed,
            };
            for &i in rest {
                results[i] = Some(Err(failure.again()));
            }
            return;
        };
        let both = EXT_PIPELINING | EXT_CHUNKING;
        let alive = if session.ehlo.capabilities & both == both {
            Self::pipelined(&mut session, batch, rest, results).await
        } else {
            self.one_by_one(&mut session, batch, rest, results).await
        };
        if alive {
            session.transactions += rest.len();
            self.pool.give_back(lease, session);
        }
    }

    /// The transactions `rest` of `batch` one after the other on `session` (a server
    /// without PIPELINING or CHUNKING); returns whether the session can serve again.
    async fn one_by_one(
        &self,
        session: &mut Session,
        batch: &[Outgoing<'_>],
        rest: &[usize],
        results: &mut [Option<Result<DeliveryOutcome, Error>>],
    ) -> bool {
        for (n, &i) in rest.iter().enumerate() {
            let r = self.transaction(session, true, &batch[i]).await;
            if !keeps(&r) {
                let failure = r.as_ref().err().map_or(Error::Closed, Error::again);
                for &j in &rest[n + 1..] {
                    results[j] = Some(Err(failure.again()));
                }
                results[i] = Some(r);
                return false;
            }
            results[i] = Some(r);
        }
        true
    }

    /// Sends the transactions `rest` of `batch` back to back (RSET, MAIL, RCPT, and the
    /// content in one `BDAT … LAST` chunk each), then reads their replies in order; returns
    /// whether the session can serve again. When the session breaks, every transaction
    /// without its final reply gets the error.
    async fn pipelined(
        session: &mut Session,
        batch: &[Outgoing<'_>],
        rest: &[usize],
        results: &mut [Option<Result<DeliveryOutcome, Error>>],
    ) -> bool {
        let Session { conn, ehlo, .. } = session;
        let mut sent = Vec::with_capacity(rest.len());
        let mut broken = None;
        for (k, &i) in rest.iter().enumerate() {
            let o = &batch[i];
            let mail = match mail_command(ehlo, o) {
                Ok(mail) => mail,
                Err(e) => {
                    results[i] = Some(Err(e));
                    continue;
                }
            };
            let mut bytes = Vec::with_capacity(o.message.len() + 256);
            bytes.extend_from_slice(RSET);
            bytes.extend_from_slice(mail.as_bytes());
            for rcpt in o.rcpt_to {
                bytes.extend_from_slice(format!("RCPT TO:<{rcpt}>\r\n").as_bytes());
            }
            bytes.extend_from_slice(format!("BDAT {} LAST\r\n", o.message.len()).as_bytes());
            bytes.extend_from_slice(o.message);
            sent.push(i);
            if let Err(e) = conn.send(&bytes).await {
                // The rest was not sent; what went out may have been taken, and its
                // replies may still be waiting to be read.
                for &j in &rest[k + 1..] {
                    results[j] = Some(Err(e.again()));
                }
                broken = Some(e);
                break;
            }
        }
        for (n, &i) in sent.iter().enumerate() {
            match Self::pipelined_replies(conn, &batch[i]).await {
                Ok(r) => {
                    let alive = keeps(&r);
                    results[i] = Some(r);
                    if !alive {
                        for &j in &sent[n + 1..] {
                            results[j] = Some(Err(Error::Closed));
                        }
                        return false;
                    }
                }
                Err(e) => {
                    for &j in &sent[n..] {
                        results[j] = Some(Err(e.again()));
                    }
                    return false;
                }
            }
        }
        broken.is_none()
    }

    /// Reads the replies to one pipelined transaction (RSET, MAIL, each RCPT, BDAT): the
    /// outer error when the session broke, the inner result as for one delivery.
    async fn pipelined_replies(
        conn: &mut Conn,
        o: &Outgoing<'_>,
    ) -> Result<Result<DeliveryOutcome, Error>, Error> {
        let rset = conn.reply().await?;
        let mail = conn.reply().await?;
        let mut recipients = Vec::with_capacity(o.rcpt_to.len());
        for rcpt in o.rcpt_to {
            let reply = conn.reply().await?;
            recipients.push(RecipientOutcome {
                rcpt: rcpt.clone(),
                status: status_for(&reply),
            });
        }
        let content = conn.reply().await?;
        if !rset.is_positive() {
            return Ok(Err(Error::Rejected {
                stage: RSET_STAGE,
                reply: rset,
            }));
        }
        if !mail.is_positive() {
            return Ok(Err(Error::Rejected {
                stage: "MAIL FROM",
                reply: mail,
            }));
        }
        if !recipients
            .iter()
            .any(|r| r.status == RecipientStatus::Accepted)
        {
            // The server refused the chunk for want of recipients.
            return Ok(Ok(DeliveryOutcome {
                recipients,
                data_reply: None,
            }));
        }
        Ok(Ok(Self::outcome(o.mail_from, recipients, content)))
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
        o: &Outgoing<'_>,
    ) -> Result<DeliveryOutcome, Error> {
        let Session { conn, ehlo, .. } = session;
        conn.content_sent = false;
        let (mail_from, rcpt_to, message) = (o.mail_from, o.rcpt_to, o.message);
        let mail = mail_command(ehlo, o)?;
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
