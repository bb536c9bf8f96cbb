//! The connection side of a session: output, reading commands within their bounds, the command loop, STARTTLS and login.

use imap_codec::imap_types::extensions::sort::SortAlgorithm;
use imap_codec::imap_types::extensions::thread::ThreadingAlgorithm;

use imap_codec::decode::Decoder;

use super::notify::Moment;
use super::*;
use crate::search_return::{self, Extended};

/// Bytes read from the socket at a time (the fragmentizer keeps at most one
/// message, bounded by the literal limit).
pub(super) const READ_CHUNK: usize = 16 * 1024;

/// Longest tag echoed back; a command with a longer one is refused untagged.
pub(super) const MAX_TAG: usize = 128;

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    pub(super) fn capabilities(&self) -> Vec1<Capability<'static>> {
        let mut caps = vec![Capability::Imap4Rev1];
        if self.user.is_none() {
            if !self.secure {
                if self.config.tls.is_some() {
                    caps.push(Capability::StartTls);
                }
                caps.push(Capability::LoginDisabled);
            } else {
                caps.push(Capability::Auth(AuthMechanism::Plain));
                caps.push(Capability::SaslIr);
            }
            // Non-synchronising literals only within the small pre-login bound.
            caps.push(Capability::LiteralMinus);
        } else {
            caps.extend([
                Capability::Namespace,
                Capability::UidPlus,
                Capability::Move,
                Capability::Unselect,
                Capability::Quota,
                Capability::from(atom("SPECIAL-USE")),
                Capability::from(atom("CHILDREN")),
                Capability::ListExtended,
                Capability::CondStore,
                Capability::QResync,
                Capability::from(atom("NOTIFY")),
                Capability::Sort(None),
                Capability::Sort(Some(SortAlgorithm::Display)),
                Capability::Thread(ThreadingAlgorithm::OrderedSubject),
                Capability::Thread(ThreadingAlgorithm::References),
                Capability::Binary,
                Capability::LiteralPlus,
                Capability::from(atom("MULTIAPPEND")),
                Capability::from(atom("CATENATE")),
                Capability::from(atom("ESEARCH")),
                Capability::from(atom("ESORT")),
                Capability::from(atom("CONTEXT=SEARCH")),
                Capability::from(atom("CONTEXT=SORT")),
            ]);
        }
        caps.extend([Capability::Id, Capability::Enable, Capability::Idle]);
        Vec1::try_from(caps).unwrap_or_else(|_| Vec1::from(Capability::Imap4Rev1))
    }

    pub(super) fn push(&mut self, response: &Response<'_>) {
        let bytes = ResponseCodec::default().encode(response).dump();
        self.out.extend_from_slice(&bytes);
    }

    pub(super) fn data(&mut self, data: Data<'_>) {
        self.push(&Response::Data(data));
    }

    pub(super) fn untagged(
        &mut self,
        kind: StatusKind,
        code: Option<Code<'static>>,
        text: &str,
    ) -> Result<()> {
        let status = Status::new(None, kind, code, text.to_string()).map_err(response_err)?;
        self.push(&Response::Status(status));
        Ok(())
    }

    pub(super) fn tagged(&mut self, tag: Tag<'static>, done: Done) -> Result<()> {
        let text = if done.text.is_empty() {
            "done".to_string()
        } else {
            done.text
        };
        let status = Status::new(Some(tag), done.kind, done.code, text).map_err(response_err)?;
        self.push(&Response::Status(status));
        Ok(())
    }

    pub(super) fn bye(&mut self, text: &str) -> Result<()> {
        let status = Status::bye(None, text.to_string()).map_err(response_err)?;
        self.push(&Response::Status(status));
        Ok(())
    }

    pub(super) fn continuation(&mut self, text: &str) -> Result<()> {
        let req =
            CommandContinuationRequest::basic(None, text.to_string()).map_err(response_err)?;
        self.push(&Response::CommandContinuationRequest(req));
        Ok(())
    }

    pub(super) async fn flush(&mut self) -> Result<()> {
        if !self.out.is_empty() {
            self.conn.write_all(&self.out).await?;
            self.out.clear();
        }
        self.conn.flush().await?;
        Ok(())
    }

    /// The input bounds of the session's state: before login a few KB for everything
    /// (nothing an unauthenticated client sends may cost more), after it the configured
    /// line and literal limits.
    pub(super) fn bounds(&self) -> Bounds {
        let l = &self.config.limits;
        if self.user.is_none() {
            let small = l.max_unauthenticated;
            Bounds {
                line: small,
                literal: u32::try_from(small).unwrap_or(u32::MAX),
                command: small,
                stream_id: true,
            }
        } else {
            Bounds {
                line: l.max_line,
                literal: l.max_literal,
                command: largest_command(l),
                stream_id: false,
            }
        }
    }

    /// Reads bytes from the client into the input, waiting at most the idle timeout;
    /// `false` when the session must end (the client left, or idled too long). Meanwhile,
    /// once NOTIFY asked for it, what changes is told as it happens (RFC 5465 3).
    pub(super) async fn read_more(&mut self, buf: &mut [u8]) -> Result<bool> {
        let limits = &self.config.limits;
        let silence = match self.user {
            Some(_) => limits.idle_timeout,
            None => limits.login_timeout,
        };
        let deadline = tokio::time::Instant::now() + silence;
        let read = loop {
            let pushing = self.notify.is_some();
            let conn = &mut self.conn;
            let watcher = self.watcher.as_mut().filter(|_| pushing);
            let news = async {
                match watcher {
                    Some(w) => w.changed().await,
                    None => std::future::pending().await,
                }
            };
            let alive = tokio::select! {
                read = tokio::time::timeout_at(deadline, conn.read(buf)) => break read,
                alive = news => alive,
            };
            if !alive {
                self.watcher = None;
            }
            self.news(Moment::Between).await?;
            self.flush().await?;
        };
        match read {
            Err(_) => {
                self.bye("Autologout: idle for too long")?;
                self.flush().await?;
                Ok(false)
            }
            Ok(Ok(0)) => Ok(false),
            Ok(Ok(n)) => {
                self.input.feed(&buf[..n]);
                Ok(true)
            }
            Ok(Err(e)) => Err(e.into()),
        }
    }

    /// Reads until a whole command is buffered; `false` when the session must end (end
    /// of stream, timeout, or input over a bound, which is answered with BYE).
    /// Synchronising literals are invited with `+` only when within the bounds.
    pub(super) async fn read_message(&mut self) -> Result<bool> {
        let mut buf = vec![0u8; READ_CHUNK];
        loop {
            match self.input.next(&self.bounds()) {
                Next::Command => return Ok(true),
                Next::Read => {
                    if !self.read_more(&mut buf).await? {
                        return Ok(false);
                    }
                }
                Next::Literal(LiteralMode::Sync) => {
                    self.continuation("Ready for literal data")?;
                    self.flush().await?;
                }
                Next::Literal(LiteralMode::NonSync) => {}
                Next::SyncLiteralTooLarge => {
                    let done = Done {
                        kind: StatusKind::No,
                        code: Some(Code::TooBig),
                        text: "Literal too large".into(),
                    };
                    match self
                        .input
                        .fragmentizer()
                        .decode_tag()
                        .map(|t| t.into_static())
                    {
                        Some(tag) => self.tagged(tag, done)?,
                        None => self.untagged(StatusKind::No, done.code, &done.text)?,
                    }
                    self.flush().await?;
                    self.input.skip();
                }
                Next::Id { tag, outcome } => {
                    if !self.streamed_id(&tag, outcome)? {
                        self.flush().await?;
                        return Ok(false);
                    }
                    self.flush().await?;
                }
                Next::Overflow(why) => {
                    tracing::info!(reason = why, user = ?self.user, "client input over a bound");
                    self.bye(why)?;
                    self.flush().await?;
                    return Ok(false);
                }
            }
        }
    }

    /// Answers an ID read as a stream before login (see [`crate::id_stream`]); `false`
    /// when the session must end.
    fn streamed_id(&mut self, tag: &[u8], outcome: id_stream::Outcome) -> Result<bool> {
        let tag = std::str::from_utf8(tag)
            .ok()
            .filter(|t| t.len() <= MAX_TAG)
            .and_then(|t| Tag::try_from(t.to_string()).ok());
        let done = match outcome {
            id_stream::Outcome::Unrecoverable => {
                tracing::info!("pre-login ID over its bounds");
                self.bye("Command too long")?;
                return Ok(false);
            }
            id_stream::Outcome::Malformed => Done::bad("Syntax error in ID"),
            id_stream::Outcome::Fields(fields) => {
                let shown = |b: &[u8]| String::from_utf8_lossy(&b[..b.len().min(64)]).into_owned();
                let client: Vec<(String, String)> = fields
                    .iter()
                    .map(|(k, v)| (shown(k), v.as_deref().map(shown).unwrap_or_default()))
                    .collect();
                tracing::debug!(?client, "imap client id");
                self.id_reply()
            }
        };
        match tag {
            Some(tag) => self.tagged(tag, done)?,
            None => self.untagged(done.kind, None, &done.text)?,
        }
        Ok(true)
    }

    /// The answer to ID (RFC 2971): the server's name.
    pub(super) fn id_reply(&mut self) -> Done {
        let params = vec![(mime::istring("name"), mime::nstring(Some("pecd")))];
        self.data(Data::Id {
            parameters: Some(params),
        });
        Done::ok("ID completed")
    }

    pub(super) async fn run(&mut self) -> Result<()> {
        loop {
            if !self.read_message().await? {
                return Ok(());
            }
            let decoded = self
                .input
                .fragmentizer()
                .decode_message(&CommandCodec::default())
                .map(|c| c.into_static());
            let command = match decoded {
                Ok(command) if command.tag.as_ref().len() > MAX_TAG => {
                    self.untagged(StatusKind::Bad, None, "Tag too long")?;
                    self.flush().await?;
                    continue;
                }
                Ok(command) => command,
                Err(e) => {
                    let tag = self
                        .input
                        .fragmentizer()
                        .decode_tag()
                        .filter(|t| t.as_ref().len() <= MAX_TAG)
                        .map(|t| t.into_static());
                    let text = match e {
                        DecodeMessageError::MessageTooLong { .. } => "Command too long",
                        _ => "Syntax error or unknown command",
                    };
                    if let Some(tag) = tag.clone()
                        && self.uncoded(tag).await?
                    {
                        self.flush().await?;
                        continue;
                    }
                    match tag {
                        Some(tag) => self.tagged(tag, Done::bad(text))?,
                        None => self.untagged(StatusKind::Bad, None, text)?,
                    }
                    self.flush().await?;
                    continue;
                }
            };
            let flow = self.command(command).await?;
            self.flush().await?;
            if let Flow::Close = flow {
                return Ok(());
            }
        }
    }

    /// Answers a command the codec does not decode: the RFC 5258 form of LIST, APPEND with
    /// MULTIAPPEND or CATENATE, NOTIFY
    /// (RFC 5465), SEARCH and SORT with RETURN options, CANCELUPDATE (RFC 4731, RFC
    /// 5267). `false` when the message is none of them.
    async fn uncoded(&mut self, tag: Tag<'static>) -> Result<bool> {
        let logged_in = self.user.is_some();
        if let Some(parsed) = listext::parse(self.input.fragmentizer().message_bytes()) {
            let done = match parsed {
                Err(why) => Ok(Done::bad(why)),
                Ok(_) if !logged_in => Ok(Done::no("Log in first")),
                Ok(options) => self.list(&options, false).await,
            };
            self.finish(tag, "LIST", done).await?;
            return Ok(true);
        }
        if let Some(parsed) = append_command::parse(self.input.fragmentizer().message_bytes()) {
            let done = match parsed {
                _ if !logged_in => Ok(Done::no("Log in first")),
                Err(why) => Ok(Done::bad(why)),
                Ok(request) => self.append(request).await,
            };
            self.finish(tag, "APPEND", done).await?;
            return Ok(true);
        }
        if let Some(parsed) = notify_command::parse(self.input.fragmentizer().message_bytes()) {
            let done = match parsed {
                _ if !logged_in => Ok(Done::no("Log in first")),
                Err(refused) => Ok(notify::refusal(refused)),
                Ok(request) => self.notify_command(request).await,
            };
            self.finish(tag, "NOTIFY", done).await?;
            return Ok(true);
        }
        let Some(parsed) = search_return::parse(self.input.fragmentizer().message_bytes()) else {
            return Ok(false);
        };
        let (name, done) = match parsed {
            _ if !logged_in => ("SEARCH", Ok(Done::no("Log in first"))),
            Err(why) => ("SEARCH", Ok(Done::bad(why))),
            Ok(Extended::CancelUpdate(tags)) => ("CANCELUPDATE", Ok(self.cancel_update(&tags))),
            Ok(Extended::Searching { options, command }) => {
                match CommandCodec::default().decode(&command) {
                    Ok(([], decoded)) => {
                        let body = decoded.body.into_static();
                        let name = body.name();
                        (name, self.searching(&tag, body, options).await)
                    }
                    _ => ("SEARCH", Ok(Done::bad("Syntax error in SEARCH or SORT"))),
                }
            }
        };
        self.finish(tag, name, done).await?;
        Ok(true)
    }

    pub(super) async fn starttls(&mut self, tag: Tag<'static>) -> Result<Flow> {
        let Some(tls) = self.config.tls.clone().filter(|_| !self.secure) else {
            self.tagged(tag, Done::bad("STARTTLS not available"))?;
            return Ok(Flow::Continue);
        };
        self.tagged(tag, Done::ok("Begin TLS negotiation now"))?;
        self.flush().await?;
        self.conn.start_tls(tls).await?;
        self.secure = true;
        // Anything the client sent before the handshake is discarded (RFC 3501 6.2.1).
        self.input.reset(largest_command(&self.config.limits));
        Ok(Flow::Continue)
    }

    pub(super) async fn login(
        &mut self,
        tag: Tag<'static>,
        user: String,
        pass: String,
    ) -> Result<Flow> {
        if !self.secure {
            self.tagged(tag, Done::no_code("PRIVACYREQUIRED", "Use STARTTLS first"))?;
            return Ok(Flow::Continue);
        }
        let peer = self.conn.peer().ip();
        let checked = match self.config.check_login(peer, &user, &pass).await {
            Err(Error::Store(e)) => {
                // Not a wrong password: nothing is counted against the client.
                tracing::error!(error = %e, "store failure during login");
                self.tagged(
                    tag,
                    Done::no_code(
                        "UNAVAILABLE",
                        "Login temporarily unavailable, try again later",
                    ),
                )?;
                return Ok(Flow::Continue);
            }
            other => other?,
        };
        match checked {
            Some(address) => {
                tracing::info!(user = %address, "imap login");
                self.watcher = Some(self.config.notifier.watch(&address));
                self.user = Some(address);
                let caps = self.capabilities();
                self.tagged(tag, Done::ok_code(Code::Capability(caps), "Logged in"))?;
                Ok(Flow::Continue)
            }
            None => {
                self.auth_failures += 1;
                tracing::warn!(user = %user, failures = self.auth_failures, "imap login failed");
                tokio::time::sleep(self.config.limits.auth_failure_delay).await;
                self.tagged(
                    tag,
                    Done::no_code("AUTHENTICATIONFAILED", "Invalid credentials"),
                )?;
                if self.auth_failures >= self.config.limits.max_auth_failures {
                    self.bye("Too many failed logins")?;
                    return Ok(Flow::Close);
                }
                Ok(Flow::Continue)
            }
        }
    }

    pub(super) async fn authenticate(
        &mut self,
        tag: Tag<'static>,
        mechanism: AuthMechanism<'static>,
        initial: Option<Vec<u8>>,
    ) -> Result<Flow> {
        if !self.secure {
            self.tagged(tag, Done::no("Use STARTTLS first"))?;
            return Ok(Flow::Continue);
        }
        if mechanism != AuthMechanism::Plain {
            self.tagged(tag, Done::no("Unsupported mechanism"))?;
            return Ok(Flow::Continue);
        }
        let data = match initial {
            Some(data) => data,
            None => {
                self.push(&Response::CommandContinuationRequest(
                    CommandContinuationRequest::Base64(Vec::new().into()),
                ));
                self.flush().await?;
                if !self.read_message().await? {
                    return Ok(Flow::Close);
                }
                match self
                    .input
                    .fragmentizer()
                    .decode_message(&AuthenticateDataCodec::default())
                {
                    Ok(AuthenticateData::Continue(data)) => data.declassify().to_vec(),
                    Ok(AuthenticateData::Cancel) => {
                        self.tagged(tag, Done::bad("Authentication cancelled"))?;
                        return Ok(Flow::Continue);
                    }
                    Err(_) => {
                        self.tagged(tag, Done::bad("Invalid base64 data"))?;
                        return Ok(Flow::Continue);
                    }
                }
            }
        };
        match pec_net::sasl::plain(&data) {
            Some(c) => self.login(tag, c.user, c.password).await,
            None => {
                self.tagged(tag, Done::bad("Malformed PLAIN data"))?;
                Ok(Flow::Continue)
            }
        }
    }

    pub(super) fn user(&self) -> Result<String> {
        self.user
            .clone()
            .ok_or_else(|| Error::Protocol("not authenticated".into()))
    }
}
