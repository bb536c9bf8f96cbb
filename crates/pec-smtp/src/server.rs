//! SMTP server: the session state machine for both submission (access point) and MX
//! (incoming point), run by `pec-net`'s accept loop (connection limits, implicit TLS,
//! graceful shutdown).

use std::borrow::Cow;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use pec_net::sasl::{self, Credentials};
use pec_net::tls::TlsParameters;
use pec_net::{Conn, ListenerLimits, Service, Shutdown};
use smtp_proto::request::receiver::DataReceiver;
use smtp_proto::{MailFrom, RcptTo, Request};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::time::timeout;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

use crate::io::{Line, MAX_LINE, Stream, buffered, read_line};
use crate::{Error, Reply};

/// Which service a listener provides; it decides TLS, AUTH and who may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Access point for the provider's own users (RFC 6409): AUTH is required before MAIL
    /// and is offered only over TLS (spec §2.2, §8.3). `implicit_tls` selects port-465 style
    /// (TLS from the first byte) over port-587 style (STARTTLS).
    Submission {
        /// TLS handshake at connect time instead of STARTTLS.
        implicit_tls: bool,
    },
    /// Incoming point for other gestori and the Internet (spec §2.3): STARTTLS offered and
    /// announced when TLS is configured, plaintext accepted, no AUTH.
    Mx,
}

/// Time limits of a session; they keep idle or slow peers from holding resources.
#[derive(Debug, Clone)]
pub struct Timeouts {
    /// Waiting for one command line (RFC 5321 §4.5.3.2.7 suggests 5 minutes).
    pub command: Duration,
    /// Receiving the whole DATA content.
    pub data: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            command: Duration::from_secs(300),
            data: Duration::from_secs(600),
        }
    }
}

/// Limits and identity of an SMTP listener, shared by all its sessions.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Our host name, used in the greeting and the EHLO reply.
    pub hostname: String,
    /// Largest message accepted (advertised with SIZE); larger ones get `552 5.3.4`.
    pub max_message_size: usize,
    /// Most recipients per transaction; spec §7.1 requires at least 50. Extra ones get
    /// `452 4.5.3` so the client can send them in another transaction.
    pub max_recipients: usize,
    /// Connection limits of the listener (per client and in all: more get `421 4.7.0`),
    /// the TLS handshake limit (implicit and STARTTLS), blocked writes, shutdown grace.
    pub connections: ListenerLimits,
    /// Failed AUTH attempts after which the connection is closed.
    pub max_auth_failures: u32,
    /// Pause before answering a failed AUTH, to slow down password guessing.
    pub auth_failure_delay: Duration,
    /// Session time limits.
    pub timeouts: Timeouts,
    /// Certificate and key for STARTTLS / implicit TLS; `None` disables TLS.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Told about each session (the server's metrics); `None`: nobody.
    pub observer: Option<Arc<dyn pec_net::SessionObserver>>,
}

impl ServerConfig {
    /// A configuration with the defaults: 40 MiB messages (spec §7.1 requires 30 MB for one
    /// recipient, plus room for the transport envelope), 100 recipients, `pec-net`'s
    /// connection limits, 3 AUTH failures, 1 s delay after a failure, no TLS.
    pub fn new(hostname: impl Into<String>) -> Self {
        Self {
            hostname: hostname.into(),
            max_message_size: 40 * 1024 * 1024,
            max_recipients: 100,
            connections: ListenerLimits::default(),
            max_auth_failures: 3,
            auth_failure_delay: Duration::from_secs(1),
            timeouts: Timeouts::default(),
            tls: None,
            observer: None,
        }
    }
}

/// What the handler knows about the connection; enough to write a `Received:` line and to
/// apply policy (authenticated identity, TLS, mode).
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// The client's address.
    pub peer: SocketAddr,
    /// Whether the session is encrypted (implicit TLS or after STARTTLS).
    pub tls: bool,
    /// What the TLS handshake negotiated, when this server made it (`None` without TLS,
    /// or for a stream [`smtp_session`] was told is secure).
    pub tls_parameters: Option<TlsParameters>,
    /// The identity returned by [`Handler::authenticate`], once AUTH succeeded.
    pub authenticated: Option<String>,
    /// The name given in HELO/EHLO (empty before it).
    pub helo: String,
    /// Whether the client greeted with EHLO (ESMTP) rather than HELO.
    pub esmtp: bool,
    /// The listener's mode.
    pub mode: Mode,
}

/// The SMTP envelope of one transaction, as accepted by the handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The reverse path (empty for the null sender `<>`).
    pub mail_from: String,
    /// The accepted forward paths, in the order given.
    pub rcpt_to: Vec<String>,
}

/// The application behind the SMTP sessions: credentials, routing policy and the durable
/// acceptance of messages all live there, so the SMTP code stays free of PEC rules.
///
/// The futures must be `Send` because each session runs in its own task; an implementation
/// may simply write `async fn`.
pub trait Handler: Send + Sync + 'static {
    /// AUTH: check the credentials of the client of `session` (its address decides the
    /// penalty of earlier failures); return the authenticated identity (the address the user
    /// may send as), `None` to refuse the credentials, or `Err(reply)` when they could not be
    /// checked (a store failure: a temporary `454`, which is not a failed attempt).
    fn authenticate(
        &self,
        session: &SessionInfo,
        user: &str,
        password: &str,
    ) -> impl Future<Output = Result<Option<String>, Reply>> + Send;

    /// MAIL FROM: `Ok` accepts the sender; `Err(reply)` refuses it with that reply (for
    /// example a sender that is not the authenticated identity).
    fn mail_from(
        &self,
        session: &SessionInfo,
        from: &str,
    ) -> impl Future<Output = Result<(), Reply>> + Send;

    /// RCPT TO: `Ok` accepts the recipient; `Err(reply)` refuses it (unknown local user,
    /// relay refused, policy refusal with a clear `5xx` text).
    fn rcpt_to(
        &self,
        session: &SessionInfo,
        from: &str,
        to: &str,
    ) -> impl Future<Output = Result<(), Reply>> + Send;

    /// The whole message, dot-unstuffed and otherwise unchanged. The server sends exactly
    /// the reply returned, so a `250` must only be returned once the data is durable.
    fn data(
        &self,
        session: &SessionInfo,
        envelope: Envelope,
        message: Vec<u8>,
    ) -> impl Future<Output = Reply> + Send;
}

/// Accept connections on `listener` and run one session per connection until `shutdown`
/// completes; then stop accepting, tell idle sessions `421` and give the others
/// `connections.shutdown_grace` to finish before cutting them.
///
/// Fails at once on a configuration that cannot work: fewer than 50 recipients allowed
/// (spec §7.1), or a submission listener without TLS (spec §8.3).
pub async fn serve<H: Handler>(
    listener: TcpListener,
    mode: Mode,
    config: Arc<ServerConfig>,
    handler: Arc<H>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    if config.max_recipients < 50 {
        return Err(Error::Config(
            "max_recipients must be at least 50 (PEC rules)".into(),
        ));
    }
    if matches!(mode, Mode::Submission { .. }) && config.tls.is_none() {
        return Err(Error::Config("submission requires TLS".into()));
    }
    let implicit_tls = matches!(mode, Mode::Submission { implicit_tls: true });
    let service = Service {
        name: match mode {
            Mode::Submission { implicit_tls: true } => "submissions",
            Mode::Submission { .. } => "submission",
            Mode::Mx => "mx",
        },
        tls: config.tls.clone().filter(|_| implicit_tls),
        busy: b"421 4.7.0 Too many connections from your address, try again later\r\n".to_vec(),
        observer: config.observer.clone(),
    };
    let limits = config.connections.clone();
    let session = move |accepted: pec_net::Accepted| {
        let (config, handler) = (Arc::clone(&config), Arc::clone(&handler));
        async move {
            let peer = accepted.peer;
            let secure = accepted.conn.is_tls();
            let session = Session::new(accepted.conn, secure, mode, config, handler);
            if let Err(e) = session.run(accepted.shutdown).await {
                debug!(%peer, error = %e, "session ended with an error");
            }
        }
    };
    pec_net::serve(listener, service, limits, session, shutdown).await?;
    Ok(())
}

/// Runs one SMTP session over any byte stream (an in-memory pipe for tests and fuzzing) as
/// if `peer` had connected to a `mode` listener. `secure` says whether the stream is
/// already private (as after implicit TLS): submission offers AUTH only then. Without a
/// listener there is no shutdown to wait for.
pub async fn smtp_session<S, H>(
    stream: S,
    peer: SocketAddr,
    secure: bool,
    mode: Mode,
    config: Arc<ServerConfig>,
    handler: Arc<H>,
) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: Handler,
{
    let conn = Conn::plain(stream, peer);
    Session::new(conn, secure, mode, config, handler)
        .run(Shutdown::never())
        .await
}

/// Bytes of replies held back at most while pipelined commands wait (RFC 2920 lets a
/// server send them whenever): a client that keeps its input from ever running dry, and
/// does not read, gets them written (and meets the write timeout) instead of piling them
/// up in the server's memory.
const HELD_REPLIES: usize = 16 * 1024;

/// Why a session stops reading commands.
enum Flow {
    Continue,
    Close,
}

struct Session<H> {
    stream: Stream,
    /// Replies not yet written: flushed when no pipelined command is waiting, or when
    /// [`HELD_REPLIES`] are held.
    out: Vec<u8>,
    info: SessionInfo,
    config: Arc<ServerConfig>,
    handler: Arc<H>,
    acceptor: Option<TlsAcceptor>,
    mail_from: Option<String>,
    rcpt_to: Vec<String>,
    /// The content received so far by BDAT (RFC 3030) in the current transaction;
    /// `None` before the first chunk.
    chunks: Option<Vec<u8>>,
    auth_failures: u32,
}

/// True when the message holds a CR not followed by LF or an LF not preceded by CR.
fn has_bare_cr_or_lf(message: &[u8]) -> bool {
    message.iter().enumerate().any(|(i, &b)| match b {
        b'\n' => i == 0 || message[i - 1] != b'\r',
        b'\r' => message.get(i + 1) != Some(&b'\n'),
        _ => false,
    })
}

fn parse_error_reply(e: &smtp_proto::Error) -> Reply {
    use smtp_proto::Error as E;
    match e {
        E::UnknownCommand => Reply::new(500, "5.5.1", "Unknown command"),
        E::InvalidSenderAddress => Reply::new(501, "5.1.7", "Invalid sender address"),
        E::InvalidRecipientAddress => Reply::new(501, "5.1.3", "Invalid recipient address"),
        E::SyntaxError { syntax } => Reply::new(501, "5.5.2", format!("Syntax: {syntax}")),
        E::InvalidParameter { param } => {
            Reply::new(501, "5.5.4", format!("Invalid parameter {param}"))
        }
        E::UnsupportedParameter { param } => {
            Reply::new(555, "5.5.4", format!("Unsupported parameter {param}"))
        }
        E::ResponseTooLong => Reply::new(500, "5.5.2", "Line too long"),
        E::NeedsMoreData { .. } | E::InvalidResponse { .. } => {
            Reply::new(500, "5.5.2", "Syntax error")
        }
    }
}

/// MAIL parameters we do not advertise (DSN, SMTPUTF8, BINARYMIME, ...) are refused.
fn unsupported_mail_params(from: &MailFrom<Cow<'_, str>>) -> bool {
    let allowed = smtp_proto::MAIL_BODY_7BIT | smtp_proto::MAIL_BODY_8BITMIME;
    from.flags & !allowed != 0
        || from.env_id.is_some()
        || from.trans_id.is_some()
        || from.solicit.is_some()
        || from.mtrk.is_some()
        || from.by != 0
        || from.hold_for != 0
        || from.hold_until != 0
        || from.mt_priority != 0
}

fn unsupported_rcpt_params(to: &RcptTo<Cow<'_, str>>) -> bool {
    to.flags != 0 || to.orcpt.is_some() || to.rrvs != 0
}

fn strip_crlf(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

impl<H: Handler> Session<H> {
    fn new<S>(
        conn: Conn<S>,
        secure: bool,
        mode: Mode,
        config: Arc<ServerConfig>,
        handler: Arc<H>,
    ) -> Self
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let peer = conn.peer();
        let tls_parameters = conn.tls_parameters();
        Session {
            stream: buffered(Box::new(conn)),
            out: Vec::new(),
            info: SessionInfo {
                peer,
                tls: secure,
                tls_parameters,
                authenticated: None,
                helo: String::new(),
                esmtp: false,
                mode,
            },
            acceptor: config.tls.clone().map(TlsAcceptor::from),
            config,
            handler,
            mail_from: None,
            rcpt_to: Vec::new(),
            chunks: None,
            auth_failures: 0,
        }
    }

    fn reply(&mut self, reply: &Reply) {
        self.out.extend_from_slice(&reply.to_wire());
    }

    fn send(&mut self, code: u16, enhanced: &str, text: &str) {
        self.reply(&Reply::new(code, enhanced, text));
    }

    async fn flush(&mut self) -> Result<(), Error> {
        if self.out.is_empty() {
            return Ok(());
        }
        let out = std::mem::take(&mut self.out);
        let stream = self.stream.get_mut();
        timeout(self.config.timeouts.command, async {
            stream.write_all(&out).await?;
            stream.flush().await
        })
        .await
        .map_err(|_| Error::Timeout("writing a reply"))??;
        Ok(())
    }

    async fn start_tls(&mut self) -> Result<(), Error> {
        let Some(acceptor) = self.acceptor.clone() else {
            return Err(Error::Config("TLS is not configured".into()));
        };
        if !self.stream.buffer().is_empty() {
            // Plaintext sent after STARTTLS must not be executed inside TLS (CVE-2011-0411).
            warn!(peer = %self.info.peer, "discarding plaintext pipelined after STARTTLS");
        }
        let (placeholder, _) = tokio::io::duplex(1);
        let plain = std::mem::replace(&mut self.stream, buffered(Box::new(placeholder)));
        let tls = timeout(
            self.config.connections.tls_handshake,
            acceptor.accept(plain.into_inner()),
        )
        .await
        .map_err(|_| Error::Timeout("TLS handshake"))??;
        self.info.tls_parameters = TlsParameters::of(tls.get_ref().1);
        self.stream = buffered(Box::new(tls));
        self.info.tls = true;
        Ok(())
    }

    async fn run(mut self, stop: Shutdown) -> Result<(), Error> {
        let peer = self.info.peer;
        info!(%peer, mode = ?self.info.mode, "SMTP session started");
        let greeting = format!("{} ESMTP pecd ready", self.config.hostname);
        self.reply(&Reply {
            code: 220,
            enhanced: None,
            text: greeting,
        });
        loop {
            if self.stream.buffer().is_empty() || self.out.len() >= HELD_REPLIES {
                self.flush().await?;
            }
            let line = tokio::select! {
                () = stop.signalled() => {
                    self.send(421, "4.3.2", "Service shutting down, closing connection");
                    self.flush().await?;
                    return Ok(());
                }
                line = timeout(self.config.timeouts.command, read_line(&mut self.stream, MAX_LINE)) => line,
            };
            let flow = match line {
                Err(_) => {
                    self.send(
                        421,
                        "4.4.2",
                        "Timeout waiting for a command, closing connection",
                    );
                    Flow::Close
                }
                Ok(Err(e)) => return Err(e.into()),
                Ok(Ok(Line::Eof)) => {
                    debug!(%peer, "client closed the connection");
                    return Ok(());
                }
                Ok(Ok(Line::TooLong)) => {
                    self.send(500, "5.5.2", "Line too long");
                    Flow::Continue
                }
                Ok(Ok(Line::Full(line))) => self.command(&line).await?,
            };
            if let Flow::Close = flow {
                self.flush().await?;
                info!(%peer, "SMTP session closed");
                return Ok(());
            }
        }
    }

    fn reset_transaction(&mut self) {
        self.mail_from = None;
        self.rcpt_to.clear();
        self.chunks = None;
    }

    async fn command(&mut self, line: &[u8]) -> Result<Flow, Error> {
        let request = match Request::parse(&mut line.iter()) {
            Ok(request) => request,
            Err(e) => {
                let reply = parse_error_reply(&e);
                self.reply(&reply);
                return Ok(Flow::Continue);
            }
        };
        debug!(peer = %self.info.peer, command = request.name(), "command");
        match request {
            Request::Ehlo { host } => {
                self.info.helo = host.into_owned();
                self.info.esmtp = true;
                self.reset_transaction();
                self.ehlo();
            }
            Request::Helo { host } => {
                self.info.helo = host.into_owned();
                self.info.esmtp = false;
                self.reset_transaction();
                let text = format!("{} greets {}", self.config.hostname, self.info.helo);
                self.reply(&Reply {
                    code: 250,
                    enhanced: None,
                    text,
                });
            }
            Request::Mail { from } => self.mail(from).await,
            Request::Rcpt { to } => self.rcpt(to).await,
            Request::Data => return self.data().await,
            Request::Bdat {
                chunk_size,
                is_last,
            } => return self.bdat(chunk_size, is_last).await,
            Request::Rset => {
                self.reset_transaction();
                self.send(250, "2.0.0", "OK");
            }
            Request::Noop { .. } => self.send(250, "2.0.0", "OK"),
            Request::Quit => {
                self.send(221, "2.0.0", "Bye");
                return Ok(Flow::Close);
            }
            Request::Vrfy { .. } => self.send(
                252,
                "2.5.0",
                "Cannot VRFY user, but will accept message and attempt delivery",
            ),
            Request::StartTls => return self.starttls().await,
            Request::Auth {
                mechanism,
                initial_response,
            } => return self.auth(mechanism, initial_response.into_owned()).await,
            Request::Lhlo { .. }
            | Request::Expn { .. }
            | Request::Help { .. }
            | Request::Etrn { .. }
            | Request::Atrn { .. }
            | Request::Burl { .. } => self.send(502, "5.5.1", "Command not implemented"),
        }
        Ok(Flow::Continue)
    }

    fn tls_available(&self) -> bool {
        self.acceptor.is_some() && !self.info.tls
    }

    fn auth_available(&self) -> bool {
        matches!(self.info.mode, Mode::Submission { .. }) && self.info.tls
    }

    fn ehlo(&mut self) {
        let mut lines = vec![
            format!("{} greets {}", self.config.hostname, self.info.helo),
            "PIPELINING".to_owned(),
            format!("SIZE {}", self.config.max_message_size),
            "8BITMIME".to_owned(),
            "ENHANCEDSTATUSCODES".to_owned(),
            "CHUNKING".to_owned(),
        ];
        if self.tls_available() {
            lines.push("STARTTLS".to_owned());
        }
        if self.auth_available() && self.info.authenticated.is_none() {
            lines.push("AUTH PLAIN LOGIN".to_owned());
        }
        self.reply(&Reply {
            code: 250,
            enhanced: None,
            text: lines.join("\n"),
        });
    }

    async fn mail(&mut self, from: MailFrom<Cow<'_, str>>) {
        if self.info.helo.is_empty() {
            return self.send(503, "5.5.1", "Send EHLO or HELO first");
        }
        if matches!(self.info.mode, Mode::Submission { .. }) && self.info.authenticated.is_none() {
            return self.send(530, "5.7.0", "Authentication required");
        }
        if self.mail_from.is_some() {
            return self.send(503, "5.5.1", "Nested MAIL command");
        }
        if unsupported_mail_params(&from) {
            return self.send(555, "5.5.4", "Unsupported MAIL parameter");
        }
        if from.size > self.config.max_message_size {
            return self.send(
                552,
                "5.3.4",
                "Message size exceeds fixed maximum message size",
            );
        }
        let address = from.address.into_owned();
        match self.handler.mail_from(&self.info, &address).await {
            Ok(()) => {
                self.mail_from = Some(address);
                self.send(250, "2.1.0", "Sender OK");
            }
            Err(reply) => self.reply(&reply),
        }
    }

    async fn rcpt(&mut self, to: RcptTo<Cow<'_, str>>) {
        let Some(from) = self.mail_from.clone() else {
            return self.send(503, "5.5.1", "Need MAIL before RCPT");
        };
        if unsupported_rcpt_params(&to) {
            return self.send(555, "5.5.4", "Unsupported RCPT parameter");
        }
        if to.address.is_empty() {
            return self.send(501, "5.1.3", "Invalid recipient address");
        }
        if self.rcpt_to.len() >= self.config.max_recipients {
            return self.send(452, "4.5.3", "Too many recipients");
        }
        let address = to.address.into_owned();
        match self.handler.rcpt_to(&self.info, &from, &address).await {
            Ok(()) => {
                self.rcpt_to.push(address);
                self.send(250, "2.1.5", "Recipient OK");
            }
            Err(reply) => self.reply(&reply),
        }
    }

    /// Read the DATA content up to `<CRLF>.<CRLF>`, dot-unstuffed; `None` when it was over
    /// the size limit (the content is then read and thrown away).
    async fn receive_data(&mut self) -> Result<Option<Vec<u8>>, Error> {
        let max = self.config.max_message_size;
        let mut receiver = DataReceiver::new();
        let mut message = Vec::new();
        // The DATA line ended with CRLF: tell the receiver, so that a first line "." ends
        // the message and a first line ".x" is unstuffed.
        receiver.ingest(&mut b"\r\n".iter(), &mut message);
        message.clear();
        let mut oversize = false;
        loop {
            let buf = self.stream.fill_buf().await?;
            if buf.is_empty() {
                return Err(Error::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
            let mut bytes = buf.iter();
            let done = receiver.ingest(&mut bytes, &mut message);
            let used = buf.len() - bytes.len();
            self.stream.consume(used);
            if message.len() > max {
                oversize = true;
                message.clear();
            }
            if done {
                return Ok((!oversize).then_some(message));
            }
        }
    }

    async fn data(&mut self) -> Result<Flow, Error> {
        let Some(from) = self.mail_from.clone() else {
            self.send(503, "5.5.1", "Need MAIL before DATA");
            return Ok(Flow::Continue);
        };
        if self.rcpt_to.is_empty() {
            self.send(554, "5.5.1", "No valid recipients");
            return Ok(Flow::Continue);
        }
        if self.chunks.is_some() {
            // RFC 3030 §2: DATA and BDAT do not mix in one transaction.
            self.send(503, "5.5.1", "DATA not allowed after BDAT");
            return Ok(Flow::Continue);
        }
        self.send(354, "2.0.0", "Start mail input; end with <CRLF>.<CRLF>");
        self.flush().await?;
        let received = timeout(self.config.timeouts.data, self.receive_data()).await;
        let envelope = Envelope {
            mail_from: from,
            rcpt_to: std::mem::take(&mut self.rcpt_to),
        };
        self.reset_transaction();
        let message = match received {
            Err(_) => {
                self.send(
                    421,
                    "4.4.2",
                    "Timeout receiving the message, closing connection",
                );
                return Ok(Flow::Close);
            }
            Ok(result) => result?,
        };
        let Some(message) = message else {
            self.send(
                552,
                "5.3.4",
                "Message size exceeds fixed maximum message size",
            );
            return Ok(Flow::Continue);
        };
        self.accept(envelope, message).await;
        Ok(Flow::Continue)
    }

    /// Reads the `size` bytes of a BDAT chunk, appending them to `kept` when the message
    /// stays within the size limit; returns false (`kept` emptied, the chunk read and
    /// thrown away) when it would not.
    async fn read_chunk(&mut self, mut size: usize, kept: &mut Vec<u8>) -> Result<bool, Error> {
        let fits = kept
            .len()
            .checked_add(size)
            .is_some_and(|total| total <= self.config.max_message_size);
        if !fits {
            kept.clear();
        }
        while size > 0 {
            let buf = self.stream.fill_buf().await?;
            if buf.is_empty() {
                return Err(Error::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
            let used = buf.len().min(size);
            if fits {
                kept.extend_from_slice(&buf[..used]);
            }
            self.stream.consume(used);
            size -= used;
        }
        Ok(fits)
    }

    /// BDAT (RFC 3030 CHUNKING): the chunk that follows the command is always read, so
    /// that the session stays in step with a client that pipelined it, even when the
    /// transaction is refused; the chunks together count toward the size limit.
    async fn bdat(&mut self, size: usize, last: bool) -> Result<Flow, Error> {
        let refusal = if self.mail_from.is_none() {
            Some(Reply::new(503, "5.5.1", "Need MAIL before BDAT"))
        } else if self.rcpt_to.is_empty() {
            Some(Reply::new(554, "5.5.1", "No valid recipients"))
        } else {
            None
        };
        let mut kept = self.chunks.take().unwrap_or_default();
        let received = timeout(self.config.timeouts.data, self.read_chunk(size, &mut kept)).await;
        let fits = match received {
            Err(_) => {
                self.send(
                    421,
                    "4.4.2",
                    "Timeout receiving the message, closing connection",
                );
                return Ok(Flow::Close);
            }
            Ok(result) => result?,
        };
        if let Some(reply) = refusal {
            self.reply(&reply);
            return Ok(Flow::Continue);
        }
        if !fits {
            // RFC 3030 §4.2: the transaction failed; later chunks of it are refused too.
            self.reset_transaction();
            self.send(
                552,
                "5.3.4",
                "Message size exceeds fixed maximum message size",
            );
            return Ok(Flow::Continue);
        }
        if !last {
            self.chunks = Some(kept);
            self.send(250, "2.0.0", &format!("{size} octets received"));
            return Ok(Flow::Continue);
        }
        let envelope = Envelope {
            mail_from: self.mail_from.take().unwrap_or_default(),
            rcpt_to: std::mem::take(&mut self.rcpt_to),
        };
        self.reset_transaction();
        self.accept(envelope, kept).await;
        Ok(Flow::Continue)
    }

    /// Hands a whole message (from DATA or the last BDAT chunk) to the handler and queues
    /// its reply; a message with bare CR or LF is refused first.
    async fn accept(&mut self, envelope: Envelope, message: Vec<u8>) {
        if has_bare_cr_or_lf(&message) {
            self.send(
                550,
                "5.6.2",
                "Message contains bare CR or LF characters, lines must end with CRLF",
            );
            return;
        }
        let size = message.len();
        let reply = self.handler.data(&self.info, envelope, message).await;
        info!(peer = %self.info.peer, size, reply = %reply, "message received");
        self.reply(&reply);
    }

    async fn starttls(&mut self) -> Result<Flow, Error> {
        if self.info.tls {
            self.send(503, "5.5.1", "TLS already active");
        } else if self.acceptor.is_none() {
            self.send(454, "4.7.0", "TLS not available");
        } else {
            self.send(220, "2.0.0", "Ready to start TLS");
            self.flush().await?;
            self.start_tls().await?;
            // RFC 3207 §4.2: forget everything learnt before TLS.
            self.info.helo.clear();
            self.info.authenticated = None;
            self.reset_transaction();
        }
        Ok(Flow::Continue)
    }

    /// Read one client response to an AUTH challenge; `None` when the client cancelled.
    async fn auth_response(&mut self, challenge: &str) -> Result<Option<Vec<u8>>, Error> {
        self.reply(&Reply {
            code: 334,
            enhanced: None,
            text: challenge.to_owned(),
        });
        self.flush().await?;
        let line = timeout(
            self.config.timeouts.command,
            read_line(&mut self.stream, MAX_LINE),
        )
        .await
        .map_err(|_| Error::Timeout("waiting for an AUTH response"))??;
        match line {
            Line::Full(line) => {
                let line = strip_crlf(&line);
                Ok((line != b"*").then(|| line.to_vec()))
            }
            Line::TooLong => Ok(None),
            Line::Eof => Err(Error::Io(std::io::ErrorKind::UnexpectedEof.into())),
        }
    }

    async fn auth(&mut self, mechanism: u64, initial: String) -> Result<Flow, Error> {
        if !matches!(self.info.mode, Mode::Submission { .. }) {
            self.send(502, "5.5.1", "Command not implemented");
            return Ok(Flow::Continue);
        }
        if !self.info.tls {
            self.send(
                538,
                "5.7.11",
                "Encryption required for requested authentication mechanism",
            );
            return Ok(Flow::Continue);
        }
        if self.info.authenticated.is_some() || self.mail_from.is_some() {
            self.send(503, "5.5.1", "AUTH not allowed now");
            return Ok(Flow::Continue);
        }
        let credentials = if mechanism == smtp_proto::AUTH_PLAIN {
            let response = if initial.is_empty() {
                self.auth_response("").await?
            } else {
                Some(initial.into_bytes())
            };
            let Some(response) = response else {
                self.send(501, "5.0.0", "Authentication cancelled");
                return Ok(Flow::Continue);
            };
            sasl::decode(&response).and_then(|plain| sasl::plain(&plain))
        } else if mechanism == smtp_proto::AUTH_LOGIN {
            let user = if initial.is_empty() {
                self.auth_response("VXNlcm5hbWU6").await?
            } else {
                Some(initial.into_bytes())
            };
            let Some(user) = user else {
                self.send(501, "5.0.0", "Authentication cancelled");
                return Ok(Flow::Continue);
            };
            let Some(pass) = self.auth_response("UGFzc3dvcmQ6").await? else {
                self.send(501, "5.0.0", "Authentication cancelled");
                return Ok(Flow::Continue);
            };
            sasl::login(&user, &pass)
        } else {
            self.send(504, "5.5.4", "Unrecognized authentication type");
            return Ok(Flow::Continue);
        };
        let identity = match credentials {
            Some(Credentials { user, password }) => {
                match self
                    .handler
                    .authenticate(&self.info, &user, &password)
                    .await
                {
                    Ok(identity) => identity,
                    Err(reply) => {
                        self.reply(&reply);
                        return Ok(Flow::Continue);
                    }
                }
            }
            None => None,
        };
        if let Some(identity) = identity {
            info!(peer = %self.info.peer, %identity, "authenticated");
            self.info.authenticated = Some(identity);
            self.send(235, "2.7.0", "Authentication successful");
            return Ok(Flow::Continue);
        }
        self.auth_failures += 1;
        warn!(peer = %self.info.peer, failures = self.auth_failures, "authentication failed");
        tokio::time::sleep(self.config.auth_failure_delay).await;
        if self.auth_failures >= self.config.max_auth_failures {
            self.send(
                421,
                "4.7.0",
                "Too many failed authentication attempts, closing connection",
            );
            return Ok(Flow::Close);
        }
        self.send(535, "5.7.8", "Authentication credentials invalid");
        Ok(Flow::Continue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_line_ends_are_found() {
        assert!(!has_bare_cr_or_lf(b"a\r\nb\r\n"));
        assert!(has_bare_cr_or_lf(b"a\nb\r\n"));
        assert!(has_bare_cr_or_lf(b"a\rb\r\n"));
        assert!(has_bare_cr_or_lf(b"\n"));
        assert!(has_bare_cr_or_lf(b"a\r"));
        assert!(!has_bare_cr_or_lf(b""));
    }

    #[test]
    fn strip_crlf_handles_both_endings() {
        assert_eq!(strip_crlf(b"abc\r\n"), b"abc");
        assert_eq!(strip_crlf(b"abc\n"), b"abc");
        assert_eq!(strip_crlf(b"abc"), b"abc");
    }
}
