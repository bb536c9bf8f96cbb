//! One IMAP4rev1 session: framing with the `imap-codec` fragmentizer,
//! commands decoded and responses encoded by the codec, state over the store.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::num::{NonZeroU32, NonZeroU64};
use std::sync::Arc;

use imap_codec::encode::Encoder;
use imap_codec::fragmentizer::DecodeMessageError;
use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::auth::{AuthMechanism, AuthenticateData};
use imap_codec::imap_types::command::{
    Command, CommandBody, FetchModifier, SelectParameter, StoreModifier,
};
use imap_codec::imap_types::core::{AString, Atom, LiteralMode, QuotedChar, Tag, Vec1};
use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::extensions::binary::LiteralOrLiteral8;
use imap_codec::imap_types::extensions::enable::CapabilityEnable;
use imap_codec::imap_types::extensions::namespace::Namespace;
use imap_codec::imap_types::extensions::quota::{QuotaGet, Resource};
use imap_codec::imap_types::extensions::uidplus::{UidElement, UidSet};
use imap_codec::imap_types::fetch::{
    Macro, MacroOrMessageDataItemNames, MessageDataItem, MessageDataItemName,
};
use imap_codec::imap_types::flag::{
    Flag, FlagFetch, FlagNameAttribute, FlagPerm, StoreResponse, StoreType,
};
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::response::{
    Capability, Code, CommandContinuationRequest, Data, Response, Status, StatusKind,
};
use imap_codec::imap_types::search::SearchKey;
use imap_codec::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};
use imap_codec::imap_types::status::{StatusDataItem, StatusDataItemName};
use imap_codec::{AuthenticateDataCodec, CommandCodec, IdleDoneCodec, ResponseCodec};
use pec_store::{FlagOp, MessageMeta};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

mod archive;

pub use archive::ARCHIVE_FOLDER;
use archive::is_archive;

use crate::error::{Error, Result};
use crate::input::{Bounds, Input, Next};
use crate::listext::{self, ListOptions};
use crate::mime;
use crate::pattern::Pattern;
use crate::server::{Config, Conn};
use pec_proto::bounded::Parsed;

/// Bytes read from the socket at a time (the fragmentizer keeps at most one
/// message, bounded by the literal limit).
const READ_CHUNK: usize = 16 * 1024;

/// Output buffered before it is sent while a FETCH reply is streamed.
const STREAM_CHUNK: usize = 64 * 1024;

/// Longest tag echoed back; a command with a longer one is refused untagged.
const MAX_TAG: usize = 128;

/// The most a command may hold in memory after login: one literal and the lines around
/// it (every bound of [`Input`] must be within this).
fn largest_command(limits: &crate::server::Limits) -> usize {
    (limits.max_literal as usize)
        .saturating_add(2 * limits.max_line)
        .max(limits.max_unauthenticated)
}

/// The folder a session has selected, and what the client knows of it.
struct Selected {
    name: String,
    read_only: bool,
    /// The archive folder: UIDs are archive entry ids, nothing is writable.
    archive: bool,
    /// Messages in sequence order, as last reported to the client.
    messages: Vec<MessageMeta>,
    changes: watch::Receiver<u64>,
    uidvalidity: u32,
    /// UIDs that are `\Recent` in this session (it was the first told of them).
    recent: HashSet<u32>,
    /// Keywords the client was told of in FLAGS.
    keywords: BTreeSet<String>,
}

impl Selected {
    /// FLAGS of a message as this session shows them (`\Recent` included).
    fn flags(&self, meta: &MessageMeta) -> Vec<FlagFetch<'static>> {
        let mut flags = flags_fetch(&meta.flags);
        if self.recent.contains(&meta.uid) {
            flags.push(FlagFetch::Recent);
        }
        flags
    }

    /// Records keywords the messages carry that the client was not told of;
    /// `true` if there were any (FLAGS must be announced again).
    fn learn_keywords(&mut self) -> bool {
        let before = self.keywords.len();
        for m in &self.messages {
            for f in m.flags.iter().filter(|f| !f.starts_with('\\')) {
                if !self.keywords.contains(f) {
                    self.keywords.insert(f.clone());
                }
            }
        }
        self.keywords.len() != before
    }
}

/// How a command ended, for the tagged response.
struct Done {
    kind: StatusKind,
    code: Option<Code<'static>>,
    text: String,
}

impl Done {
    fn ok(text: impl Into<String>) -> Self {
        Done {
            kind: StatusKind::Ok,
            code: None,
            text: text.into(),
        }
    }
    fn ok_code(code: Code<'static>, text: impl Into<String>) -> Self {
        Done {
            kind: StatusKind::Ok,
            code: Some(code),
            text: text.into(),
        }
    }
    fn no(text: impl Into<String>) -> Self {
        Done {
            kind: StatusKind::No,
            code: None,
            text: text.into(),
        }
    }
    fn bad(text: impl Into<String>) -> Self {
        Done {
            kind: StatusKind::Bad,
            code: None,
            text: text.into(),
        }
    }
    /// A NO with a response code the codec has no variant for (RFC 5530 codes).
    fn no_code(code: &'static str, text: impl Into<String>) -> Self {
        Done {
            kind: StatusKind::No,
            code: Some(Code::Other(
                imap_codec::imap_types::response::CodeOther::unvalidated(code.as_bytes()),
            )),
            text: text.into(),
        }
    }
}

/// A STORE command's arguments.
struct StoreRequest {
    kind: StoreType,
    response: StoreResponse,
    flags: Vec<Flag<'static>>,
    uid: bool,
    /// RFC 7162 UNCHANGEDSINCE.
    unchanged_since: Option<u64>,
}

/// What the session loop does after a command.
enum Flow {
    Continue,
    Close,
}

struct Session<S> {
    conn: Conn<S>,
    secure: bool,
    config: Arc<Config>,
    input: Input,
    out: Vec<u8>,
    user: Option<String>,
    selected: Option<Selected>,
    auth_failures: u32,
    /// CONDSTORE is enabled (RFC 7162 3.1): FETCH responses carrying FLAGS
    /// also carry MODSEQ.
    condstore: bool,
    /// New messages were announced at the end of a command other than NOOP or IDLE
    /// since the last NOOP or IDLE. Clients such as Thunderbird ignore EXISTS inside a
    /// body FETCH reply and act only on untagged replies during IDLE, so the next IDLE
    /// repeats EXISTS and RECENT at once (as Dovecot does).
    untold_news: bool,
}

/// Runs a session to its end (LOGOUT, disconnect, timeout or too many failures).
pub(crate) async fn session<S>(conn: Conn<S>, secure: bool, config: Arc<Config>) -> Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let input = Input::new(largest_command(&config.limits));
    let mut s = Session {
        conn,
        secure,
        config,
        input,
        out: Vec::new(),
        user: None,
        selected: None,
        auth_failures: 0,
        condstore: false,
        untold_news: false,
    };
    let caps = s.capabilities();
    s.untagged(
        StatusKind::Ok,
        Some(Code::Capability(caps)),
        "pecd IMAP4rev1 ready",
    )?;
    s.flush().await?;
    let ended = s.run().await;
    if s.conn.interrupted() {
        // The server is shutting down (RFC 3501 7.1.5).
        s.bye("Server shutting down")?;
        s.flush().await?;
        return Ok(());
    }
    ended
}

fn response_err(e: impl std::fmt::Debug) -> Error {
    Error::Response(format!("{e:?}"))
}

fn atom(s: &'static str) -> Atom<'static> {
    Atom::unvalidated(s)
}

fn mailbox_name(m: &Mailbox<'_>) -> String {
    match m {
        Mailbox::Inbox => "INBOX".to_string(),
        Mailbox::Other(o) => String::from_utf8_lossy(o.inner().as_ref()).into_owned(),
    }
}

fn to_mailbox(name: &str) -> Result<Mailbox<'static>> {
    Mailbox::try_from(name.to_string()).map_err(response_err)
}

/// A name LIST or LSUB may show: a folder (the security archive included) or a
/// subscribed name without a folder.
struct ListEntry {
    name: String,
    special_use: Option<String>,
    subscribed: bool,
    exists: bool,
}

/// The account's folders, the security archive (always subscribed) and the subscribed
/// names that are not folders (any more).
fn list_entries(folders: Vec<pec_store::Folder>, subscriptions: Vec<String>) -> Vec<ListEntry> {
    // A real folder of the archive's name (an implicit parent made before such names were
    // reserved) would show twice; the archive is the one listed.
    let mut entries: Vec<ListEntry> = folders
        .into_iter()
        .filter(|f| !is_archive(&f.name))
        .map(|f| ListEntry {
            name: f.name,
            special_use: f.special_use,
            subscribed: f.subscribed,
            exists: true,
        })
        .collect();
    entries.push(ListEntry {
        name: ARCHIVE_FOLDER.to_string(),
        special_use: None,
        subscribed: true,
        exists: true,
    });
    let known: HashSet<String> = entries.iter().map(|e| e.name.clone()).collect();
    entries.extend(
        subscriptions
            .into_iter()
            .filter(|n| !known.contains(n))
            .map(|name| ListEntry {
                name,
                special_use: None,
                subscribed: true,
                exists: false,
            }),
    );
    entries
}

fn flag_of(s: &str) -> Option<Flag<'static>> {
    match s.strip_prefix('\\') {
        Some(sys) => Atom::try_from(sys.to_string()).ok().map(Flag::system),
        None => Atom::try_from(s.to_string()).ok().map(Flag::keyword),
    }
}

/// The system flags and the folder's keywords, for FLAGS and PERMANENTFLAGS.
fn flag_list(keywords: &BTreeSet<String>) -> Vec<Flag<'static>> {
    ["\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft"]
        .into_iter()
        .chain(keywords.iter().map(String::as_str))
        .filter_map(flag_of)
        .collect()
}

fn flags_fetch(flags: &[String]) -> Vec<FlagFetch<'static>> {
    flags
        .iter()
        .filter_map(|f| flag_of(f))
        .map(FlagFetch::Flag)
        .collect()
}

fn modseq_item(meta: &MessageMeta) -> MessageDataItem<'static> {
    MessageDataItem::ModSeq(NonZeroU64::new(meta.modseq).unwrap_or(NonZeroU64::MIN))
}

fn has_flag(meta: &MessageMeta, flag: &str) -> bool {
    meta.flags.iter().any(|f| f.eq_ignore_ascii_case(flag))
}

fn value(s: &SeqOrUid, largest: u32) -> u32 {
    match s {
        SeqOrUid::Value(v) => v.get(),
        SeqOrUid::Asterisk => largest,
    }
}

/// Whether `n` is in the set, `*` standing for `largest`.
fn in_set(set: &SequenceSet, n: u32, largest: u32) -> bool {
    set.0.as_ref().iter().any(|s| match s {
        Sequence::Single(v) => value(v, largest) == n,
        Sequence::Range(a, b) => {
            let (a, b) = (value(a, largest), value(b, largest));
            a.min(b) <= n && n <= a.max(b)
        }
    })
}

fn nz(n: u32) -> Result<NonZeroU32> {
    NonZeroU32::new(n)
        .ok_or_else(|| Error::Response("zero where IMAP needs a positive number".into()))
}

fn seq_of(index: usize) -> Result<NonZeroU32> {
    nz(u32::try_from(index + 1).map_err(response_err)?)
}

fn uid_set(uids: &[u32]) -> Result<UidSet> {
    let elems: Vec<UidElement> = uids
        .iter()
        .map(|&u| nz(u).map(UidElement::Single))
        .collect::<Result<_>>()?;
    Ok(UidSet(Vec1::try_from(elems).map_err(response_err)?))
}

fn internal_date(ts: i64) -> Result<DateTime> {
    let dt = chrono::DateTime::from_timestamp(ts, 0)
        .ok_or_else(|| Error::Response(format!("internaldate {ts} out of range")))?;
    DateTime::try_from(dt.fixed_offset()).map_err(response_err)
}

fn date_of(ts: i64) -> Option<chrono::NaiveDate> {
    chrono::DateTime::from_timestamp(ts, 0).map(|d| d.date_naive())
}

/// A message being searched, its bytes loaded only if the criteria need them.
struct Candidate<'a> {
    seq: u32,
    largest_seq: u32,
    largest_uid: u32,
    meta: &'a MessageMeta,
    /// `\Recent` in this session.
    recent: bool,
    raw: &'a [u8],
    parsed: Option<&'a mail_parser::Message<'a>>,
}

fn needs_bytes(key: &SearchKey<'_>) -> bool {
    match key {
        SearchKey::And(keys) => keys.as_ref().iter().any(needs_bytes),
        SearchKey::Not(k) => needs_bytes(k),
        SearchKey::Or(a, b) => needs_bytes(a) || needs_bytes(b),
        SearchKey::Bcc(_)
        | SearchKey::Body(_)
        | SearchKey::Cc(_)
        | SearchKey::From(_)
        | SearchKey::Header(..)
        | SearchKey::SentBefore(_)
        | SearchKey::SentOn(_)
        | SearchKey::SentSince(_)
        | SearchKey::Subject(_)
        | SearchKey::Text(_)
        | SearchKey::To(_) => true,
        _ => false,
    }
}

fn has_modseq(key: &SearchKey<'_>) -> bool {
    match key {
        SearchKey::And(keys) => keys.as_ref().iter().any(has_modseq),
        SearchKey::Not(k) => has_modseq(k),
        SearchKey::Or(a, b) => has_modseq(a) || has_modseq(b),
        SearchKey::ModSequence { .. } => true,
        _ => false,
    }
}

fn matches(key: &SearchKey<'_>, c: &Candidate<'_>) -> bool {
    let header = |name: &str, needle: &AString<'_>| {
        mime::contains_ci(
            mime::header_text(c.parsed, name).as_bytes(),
            needle.as_ref(),
        )
    };
    let sent = || mime::sent_date(c.parsed);
    let internal = date_of(c.meta.internaldate);
    match key {
        SearchKey::And(keys) => keys.as_ref().iter().all(|k| matches(k, c)),
        SearchKey::SequenceSet(set) => in_set(set, c.seq, c.largest_seq),
        SearchKey::Uid(set) => in_set(set, c.meta.uid, c.largest_uid),
        SearchKey::All => true,
        SearchKey::Answered => has_flag(c.meta, "\\Answered"),
        SearchKey::Unanswered => !has_flag(c.meta, "\\Answered"),
        SearchKey::Deleted => has_flag(c.meta, "\\Deleted"),
        SearchKey::Undeleted => !has_flag(c.meta, "\\Deleted"),
        SearchKey::Draft => has_flag(c.meta, "\\Draft"),
        SearchKey::Undraft => !has_flag(c.meta, "\\Draft"),
        SearchKey::Flagged => has_flag(c.meta, "\\Flagged"),
        SearchKey::Unflagged => !has_flag(c.meta, "\\Flagged"),
        SearchKey::Seen => has_flag(c.meta, "\\Seen"),
        SearchKey::Unseen => !has_flag(c.meta, "\\Seen"),
        SearchKey::Recent => c.recent,
        SearchKey::New => c.recent && !has_flag(c.meta, "\\Seen"),
        SearchKey::Old => !c.recent,
        SearchKey::Keyword(k) => has_flag(c.meta, k.as_ref()),
        SearchKey::Unkeyword(k) => !has_flag(c.meta, k.as_ref()),
        SearchKey::Larger(n) => c.meta.size > u64::from(*n),
        SearchKey::Smaller(n) => c.meta.size < u64::from(*n),
        SearchKey::Before(d) => internal.is_some_and(|i| i < *d.as_ref()),
        SearchKey::On(d) => internal.is_some_and(|i| i == *d.as_ref()),
        SearchKey::Since(d) => internal.is_some_and(|i| i >= *d.as_ref()),
        SearchKey::SentBefore(d) => sent().is_some_and(|i| i < *d.as_ref()),
        SearchKey::SentOn(d) => sent().is_some_and(|i| i == *d.as_ref()),
        SearchKey::SentSince(d) => sent().is_some_and(|i| i >= *d.as_ref()),
        SearchKey::From(s) => header("From", s),
        SearchKey::To(s) => header("To", s),
        SearchKey::Cc(s) => header("Cc", s),
        SearchKey::Bcc(s) => header("Bcc", s),
        SearchKey::Subject(s) => header("Subject", s),
        // An empty string asks whether the field is there at all (RFC 3501 6.4.4).
        SearchKey::Header(name, s) if s.as_ref().is_empty() => {
            mime::has_header(c.parsed, &String::from_utf8_lossy(name.as_ref()))
        }
        SearchKey::Header(name, s) => header(&String::from_utf8_lossy(name.as_ref()), s),
        SearchKey::Body(s) => mime::contains_ci(mime::split_header(c.raw).1, s.as_ref()),
        SearchKey::Text(s) => mime::contains_ci(c.raw, s.as_ref()),
        SearchKey::Not(k) => !matches(k, c),
        SearchKey::Or(a, b) => matches(a, c) || matches(b, c),
        SearchKey::ModSequence { modseq, .. } => c.meta.modseq >= *modseq,
    }
}

/// Maps a store refusal to the NO the client sees; a failure of the store itself is
/// logged and shown as `NO [UNAVAILABLE]` (RFC 5530: try again later), never as an
/// answer about the mailbox.
fn store_refusal(e: &pec_store::Error) -> Done {
    use pec_store::Error as E;
    match e {
        E::NoSuchFolder(_) => Done {
            kind: StatusKind::No,
            code: Some(Code::TryCreate),
            text: "No such mailbox".into(),
        },
        E::QuotaExceeded { .. } => Done {
            kind: StatusKind::No,
            code: Some(Code::OverQuota),
            text: "Quota exceeded".into(),
        },
        E::AlreadyExists(_) => Done::no("Mailbox already exists"),
        E::SystemFolder(_) => Done::no("System mailboxes cannot be renamed or deleted"),
        E::InvalidName(_) => Done::no("Invalid mailbox name"),
        E::NoSuchMessage(_) => Done::no("No such message"),
        other => {
            tracing::error!(error = %other, "store failure");
            Done::no_code("UNAVAILABLE", "Temporary server failure, try again later")
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    fn capabilities(&self) -> Vec1<Capability<'static>> {
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
            ]);
        }
        caps.extend([Capability::Id, Capability::Enable, Capability::Idle]);
        Vec1::try_from(caps).unwrap_or_else(|_| Vec1::from(Capability::Imap4Rev1))
    }

    fn push(&mut self, response: &Response<'_>) {
        let bytes = ResponseCodec::default().encode(response).dump();
        self.out.extend_from_slice(&bytes);
    }

    fn data(&mut self, data: Data<'_>) {
        self.push(&Response::Data(data));
    }

    fn untagged(
        &mut self,
        kind: StatusKind,
        code: Option<Code<'static>>,
        text: &str,
    ) -> Result<()> {
        let status = Status::new(None, kind, code, text.to_string()).map_err(response_err)?;
        self.push(&Response::Status(status));
        Ok(())
    }

    fn tagged(&mut self, tag: Tag<'static>, done: Done) -> Result<()> {
        let text = if done.text.is_empty() {
            "done".to_string()
        } else {
            done.text
        };
        let status = Status::new(Some(tag), done.kind, done.code, text).map_err(response_err)?;
        self.push(&Response::Status(status));
        Ok(())
    }

    fn bye(&mut self, text: &str) -> Result<()> {
        let status = Status::bye(None, text.to_string()).map_err(response_err)?;
        self.push(&Response::Status(status));
        Ok(())
    }

    fn continuation(&mut self, text: &str) -> Result<()> {
        let req =
            CommandContinuationRequest::basic(None, text.to_string()).map_err(response_err)?;
        self.push(&Response::CommandContinuationRequest(req));
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
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
    fn bounds(&self) -> Bounds {
        let l = &self.config.limits;
        if self.user.is_none() {
            let small = l.max_unauthenticated;
            Bounds {
                line: small,
                literal: u32::try_from(small).unwrap_or(u32::MAX),
                command: small,
            }
        } else {
            Bounds {
                line: l.max_line,
                literal: l.max_literal,
                command: largest_command(l),
            }
        }
    }

    /// Reads bytes from the client into the input, waiting at most the idle timeout;
    /// `false` when the session must end (the client left, or idled too long).
    async fn read_more(&mut self, buf: &mut [u8]) -> Result<bool> {
        let read = tokio::time::timeout(self.config.limits.idle_timeout, self.conn.read(buf)).await;
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
    async fn read_message(&mut self) -> Result<bool> {
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
                Next::Overflow(why) => {
                    tracing::info!(reason = why, user = ?self.user, "client input over a bound");
                    self.bye(why)?;
                    self.flush().await?;
                    return Ok(false);
                }
            }
        }
    }

    async fn run(&mut self) -> Result<()> {
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
                    // The RFC 5258 form of LIST, which the codec does not decode.
                    if let (Some(tag), Some(parsed)) = (
                        tag.clone(),
                        listext::parse(self.input.fragmentizer().message_bytes()),
                    ) {
                        let done = match parsed {
                            Err(why) => Ok(Done::bad(why)),
                            Ok(_) if self.user.is_none() => Ok(Done::no("Log in first")),
                            Ok(options) => self.list(&options, false).await,
                        };
                        self.finish(tag, "LIST", done).await?;
                        self.flush().await?;
                        continue;
                    }
                    let text = match e {
                        DecodeMessageError::MessageTooLong { .. } => "Command too long",
                        _ => "Syntax error or unknown command",
                    };
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

    async fn command(&mut self, command: Command<'static>) -> Result<Flow> {
        let Command { tag, body } = command;
        let name = body.name();
        tracing::debug!(command = name, user = ?self.user, "imap command");
        let result = match body {
            CommandBody::Capability => {
                let caps = self.capabilities();
                self.data(Data::Capability(caps));
                Ok(Done::ok("CAPABILITY completed"))
            }
            CommandBody::Noop | CommandBody::Check => {
                self.untold_news = false;
                self.refresh(true).await?;
                Ok(Done::ok("NOOP completed"))
            }
            CommandBody::Logout => {
                self.bye("Logging out")?;
                self.tagged(tag, Done::ok("LOGOUT completed"))?;
                return Ok(Flow::Close);
            }
            CommandBody::StartTLS => return self.starttls(tag).await,
            CommandBody::Id { .. } => {
                let params = vec![(mime::istring("name"), mime::nstring(Some("pecd")))];
                self.data(Data::Id {
                    parameters: Some(params),
                });
                Ok(Done::ok("ID completed"))
            }
            CommandBody::Enable { capabilities } if self.user.is_some() => {
                let mut enabled = Vec::new();
                if capabilities
                    .as_ref()
                    .iter()
                    .any(|c| matches!(c, CapabilityEnable::CondStore))
                {
                    self.condstore = true;
                    enabled.push(CapabilityEnable::CondStore);
                }
                self.data(Data::Enabled {
                    capabilities: enabled,
                });
                Ok(Done::ok("ENABLE completed"))
            }
            CommandBody::Login { username, password } if self.user.is_none() => {
                let user = String::from_utf8_lossy(username.as_ref()).into_owned();
                let pass = String::from_utf8_lossy(password.declassify().as_ref()).into_owned();
                return self.login(tag, user, pass).await;
            }
            CommandBody::Authenticate {
                mechanism,
                initial_response,
            } if self.user.is_none() => {
                return self
                    .authenticate(
                        tag,
                        mechanism,
                        initial_response.map(|r| r.declassify().to_vec()),
                    )
                    .await;
            }
            CommandBody::Login { .. } | CommandBody::Authenticate { .. } => {
                Ok(Done::bad("Already authenticated"))
            }
            _ if self.user.is_none() => Ok(Done::no("Log in first")),
            other => self.authenticated(&tag, other).await,
        };
        self.finish(tag, name, result).await?;
        Ok(Flow::Continue)
    }

    /// Ends command `name`: store refusals become NO, pending changes of the
    /// selected folder are announced, then the tagged response.
    async fn finish(&mut self, tag: Tag<'static>, name: &str, result: Result<Done>) -> Result<()> {
        let done = match result {
            Ok(done) => done,
            Err(Error::Store(e)) => store_refusal(&e),
            Err(e) => return Err(e),
        };
        if self
            .selected
            .as_ref()
            .is_some_and(|s| s.changes.has_changed().unwrap_or(false))
        {
            // FETCH, STORE and SEARCH must not announce expunges (RFC 3501 7.4.1).
            let allow_expunge = !matches!(name, "FETCH" | "STORE" | "SEARCH");
            let arrived = self.refresh(allow_expunge).await?;
            if arrived && !matches!(name, "NOOP" | "CHECK" | "IDLE") {
                self.untold_news = true;
            }
        }
        self.tagged(tag, done)
    }

    async fn starttls(&mut self, tag: Tag<'static>) -> Result<Flow> {
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

    async fn login(&mut self, tag: Tag<'static>, user: String, pass: String) -> Result<Flow> {
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

    async fn authenticate(
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

    fn user(&self) -> Result<String> {
        self.user
            .clone()
            .ok_or_else(|| Error::Protocol("not authenticated".into()))
    }

    async fn authenticated(
        &mut self,
        tag: &Tag<'static>,
        body: CommandBody<'static>,
    ) -> Result<Done> {
        let user = self.user()?;
        if let Some(done) = archive::rule(&body, self.selected.as_ref()) {
            return Ok(done);
        }
        match body {
            CommandBody::Select {
                mailbox,
                parameters,
            } => self.select(&mailbox, false, &parameters).await,
            CommandBody::Examine {
                mailbox,
                parameters,
            } => self.select(&mailbox, true, &parameters).await,
            CommandBody::List {
                reference,
                mailbox_wildcard,
            } => {
                self.list(&ListOptions::plain(&reference, &mailbox_wildcard), false)
                    .await
            }
            CommandBody::Lsub {
                reference,
                mailbox_wildcard,
            } => {
                self.list(&ListOptions::plain(&reference, &mailbox_wildcard), true)
                    .await
            }
            CommandBody::Namespace => {
                let personal = vec![Namespace {
                    prefix: mime::istring(""),
                    delimiter: Some(QuotedChar::unvalidated('/')),
                    extensions: Vec::new(),
                }];
                self.data(Data::Namespace {
                    personal,
                    other: Vec::new(),
                    shared: Vec::new(),
                });
                Ok(Done::ok("NAMESPACE completed"))
            }
            CommandBody::Status {
                mailbox,
                item_names,
            } => self.status(&mailbox, &item_names).await,
            CommandBody::Create { mailbox } => self.create(&mailbox).await,
            CommandBody::Delete { mailbox } => {
                let name = mailbox_name(&mailbox);
                self.config
                    .store(move |s| s.delete_folder(&user, &name))
                    .await?;
                Ok(Done::ok("DELETE completed"))
            }
            CommandBody::Rename { from, to } => {
                let (from, to) = (mailbox_name(&from), mailbox_name(&to));
                self.config
                    .store(move |s| s.rename_folder(&user, &from, &to))
                    .await?;
                Ok(Done::ok("RENAME completed"))
            }
            CommandBody::Subscribe { mailbox } => self.subscribe(&mailbox, true).await,
            CommandBody::Unsubscribe { mailbox } => self.subscribe(&mailbox, false).await,
            CommandBody::Append {
                mailbox,
                flags,
                date,
                message,
            } => {
                self.append(
                    &mailbox,
                    flags,
                    date,
                    match message {
                        LiteralOrLiteral8::Literal(l) => l.into_inner().to_vec(),
                        LiteralOrLiteral8::Literal8(l) => l.data.to_vec(),
                    },
                )
                .await
            }
            CommandBody::GetQuotaRoot { mailbox } => {
                let usage = self.config.store(move |s| s.usage(&user)).await?;
                self.data(Data::QuotaRoot {
                    mailbox,
                    roots: vec![mime::astring("")],
                });
                self.quota_data(usage)?;
                Ok(Done::ok("GETQUOTAROOT completed"))
            }
            CommandBody::GetQuota { root } => {
                if !root.as_ref().is_empty() {
                    return Ok(Done::no("No such quota root"));
                }
                let usage = self.config.store(move |s| s.usage(&user)).await?;
                self.quota_data(usage)?;
                Ok(Done::ok("GETQUOTA completed"))
            }
            CommandBody::SetQuota { .. } => Ok(Done::no("Quotas are set by the provider")),
            CommandBody::Idle => self.idle(tag).await,
            other => self.selected_command(other).await,
        }
    }

    /// CREATE, superior hierarchy names included (RFC 3501 6.3.3), within the folder cap.
    async fn create(&mut self, mailbox: &Mailbox<'_>) -> Result<Done> {
        let user = self.user()?;
        let name = mailbox_name(mailbox).trim_end_matches('/').to_string();
        let u = user.clone();
        let count = self.config.store(move |s| s.list_folders(&u)).await?.len();
        if count >= self.config.limits.max_folders {
            return Ok(Done::no_code("LIMIT", "Too many folders"));
        }
        self.config
            .store(move |s| {
                let mut parent = String::new();
                for part in name.split('/').take(name.split('/').count() - 1) {
                    if !parent.is_empty() {
                        parent.push('/');
                    }
                    parent.push_str(part);
                    match s.create_folder(&user, &parent) {
                        Ok(_) | Err(pec_store::Error::AlreadyExists(_)) => {}
                        Err(e) => return Err(e),
                    }
                }
                s.create_folder(&user, &name)
            })
            .await?;
        Ok(Done::ok("CREATE completed"))
    }

    /// SUBSCRIBE (`on`) or UNSUBSCRIBE.
    async fn subscribe(&mut self, mailbox: &Mailbox<'_>, on: bool) -> Result<Done> {
        let user = self.user()?;
        let name = mailbox_name(mailbox);
        self.config
            .store(move |s| s.set_subscribed(&user, &name, on))
            .await?;
        Ok(Done::ok(if on {
            "SUBSCRIBE completed"
        } else {
            "UNSUBSCRIBE completed"
        }))
    }

    fn quota_data(&mut self, usage: pec_store::Usage) -> Result<()> {
        let quota = QuotaGet {
            resource: Resource::Storage,
            usage: usage.used.div_ceil(1024),
            limit: usage.quota / 1024,
        };
        self.data(Data::Quota {
            root: mime::astring(""),
            quotas: Vec1::from(quota),
        });
        Ok(())
    }

    /// The folder's messages from the store (the archive's entries for the archive).
    async fn load(&self, folder: &str) -> Result<Vec<MessageMeta>> {
        let user = self.user()?;
        if is_archive(folder) {
            return archive::messages(&self.config, user).await;
        }
        let folder = folder.to_string();
        self.config.store(move |s| s.messages(&user, &folder)).await
    }

    /// A message's bytes (an archive entry's when the archive is selected).
    async fn fetch_bytes(&self, sel_archive: bool, folder: &str, uid: u32) -> Result<Vec<u8>> {
        let user = self.user()?;
        if sel_archive {
            return archive::bytes(&self.config, user, uid).await;
        }
        let folder = folder.to_string();
        self.config
            .store(move |s| s.fetch(&user, &folder, uid))
            .await
    }

    /// The highest UID of `folder` other sessions were told of as `\Recent` (claiming
    /// those up to `highest` with `claim`); nothing in the archive is ever recent.
    fn claimed_recent(
        &self,
        folder: &str,
        uidvalidity: u32,
        highest: u32,
        claim: bool,
    ) -> Result<u32> {
        if is_archive(folder) {
            return Ok(u32::MAX);
        }
        Ok(self
            .config
            .notifier
            .claim_recent(&self.user()?, folder, uidvalidity, highest, claim))
    }

    async fn select(
        &mut self,
        mailbox: &Mailbox<'_>,
        examine: bool,
        parameters: &[SelectParameter],
    ) -> Result<Done> {
        self.selected = None;
        self.untold_news = false;
        for p in parameters {
            match p {
                SelectParameter::CondStore => self.condstore = true,
                SelectParameter::QResync { .. } => {
                    return Ok(Done::bad("QRESYNC is not supported"));
                }
            }
        }
        let user = self.user()?;
        let name = mailbox_name(mailbox);
        let archive = is_archive(&name);
        let state = if archive {
            None
        } else {
            let (u, f) = (user.clone(), name.clone());
            Some(self.config.store(move |s| s.select(&u, &f)).await?)
        };
        // Watched before the messages are read, so nothing delivered in between is missed.
        let changes = self.config.notifier.watch(&user, &name);
        let messages = self.load(&name).await?;
        let pec_store::Selected {
            uidvalidity,
            uidnext,
            highestmodseq,
            ..
        } = match state {
            Some(state) => state,
            None => archive::state(&messages)?,
        };
        let read_only = examine || archive;
        let exists = u32::try_from(messages.len()).map_err(response_err)?;
        let highest_uid = messages.last().map_or(0, |m| m.uid);
        let claimed = self.claimed_recent(&name, uidvalidity, highest_uid, !read_only)?;
        let recent: HashSet<u32> = messages
            .iter()
            .map(|m| m.uid)
            .filter(|&u| u > claimed)
            .collect();
        let mut sel = Selected {
            name,
            read_only,
            archive,
            messages,
            changes,
            uidvalidity,
            recent,
            keywords: BTreeSet::new(),
        };
        sel.learn_keywords();
        let flags = flag_list(&sel.keywords);
        self.data(Data::Flags(flags.clone()));
        self.data(Data::Exists(exists));
        self.data(Data::Recent(
            u32::try_from(sel.recent.len()).map_err(response_err)?,
        ));
        let messages = &sel.messages;
        if let Some(first_unseen) = messages.iter().position(|m| !has_flag(m, "\\Seen")) {
            self.untagged(
                StatusKind::Ok,
                Some(Code::Unseen(seq_of(first_unseen)?)),
                "First unseen",
            )?;
        }
        self.untagged(
            StatusKind::Ok,
            Some(Code::UidValidity(nz(uidvalidity)?)),
            "UIDs valid",
        )?;
        self.untagged(
            StatusKind::Ok,
            Some(Code::UidNext(nz(uidnext.max(1))?)),
            "Predicted next UID",
        )?;
        let perm: Vec<FlagPerm<'static>> = if read_only {
            Vec::new()
        } else {
            flags
                .into_iter()
                .map(FlagPerm::Flag)
                .chain([FlagPerm::Asterisk])
                .collect()
        };
        self.untagged(
            StatusKind::Ok,
            Some(Code::PermanentFlags(perm)),
            "Flags permitted",
        )?;
        if let Some(h) = NonZeroU64::new(highestmodseq) {
            self.untagged(StatusKind::Ok, Some(Code::HighestModSeq(h)), "Highest")?;
        }
        self.selected = Some(sel);
        Ok(if read_only {
            Done::ok_code(Code::ReadOnly, "EXAMINE completed")
        } else {
            Done::ok_code(Code::ReadWrite, "SELECT completed")
        })
    }

    /// Reports what changed in the selected folder since the client last
    /// heard: EXPUNGE (if allowed now), FETCH FLAGS, EXISTS; `true` when new
    /// messages were announced.
    async fn refresh(&mut self, allow_expunge: bool) -> Result<bool> {
        let Some(sel) = self.selected.as_mut() else {
            return Ok(false);
        };
        sel.changes.borrow_and_update();
        let name = sel.name.clone();
        let fresh = self.load(&name).await?;
        let condstore = self.condstore;
        let user = self.user()?;
        let notifier = self.config.notifier.clone();
        let Some(sel) = self.selected.as_mut() else {
            return Ok(false);
        };
        let by_uid: HashMap<u32, &MessageMeta> = fresh.iter().map(|m| (m.uid, m)).collect();
        let mut responses = Vec::new();
        if allow_expunge {
            let mut i = sel.messages.len();
            while i > 0 {
                i -= 1;
                if !by_uid.contains_key(&sel.messages[i].uid) {
                    let gone = sel.messages.remove(i);
                    sel.recent.remove(&gone.uid);
                    responses.push(Data::Expunge(seq_of(i)?));
                }
            }
        }
        let mut changed = Vec::new();
        for (i, m) in sel.messages.iter_mut().enumerate() {
            if let Some(f) = by_uid.get(&m.uid)
                && (f.flags != m.flags || (condstore && f.modseq != m.modseq))
            {
                m.flags = f.flags.clone();
                m.modseq = f.modseq;
                changed.push(i);
            }
        }
        let last = sel.messages.last().map_or(0, |m| m.uid);
        let before = sel.messages.len();
        sel.messages
            .extend(fresh.iter().filter(|m| m.uid > last).cloned());
        let arrived_any = sel.messages.len() != before;
        let new_keywords = sel.learn_keywords();
        for i in changed {
            let Some(m) = sel.messages.get(i) else {
                continue;
            };
            let mut items = vec![
                MessageDataItem::Uid(nz(m.uid)?),
                MessageDataItem::Flags(sel.flags(m)),
            ];
            if condstore {
                items.push(modseq_item(m));
            }
            responses.push(Data::Fetch {
                seq: seq_of(i)?,
                items: Vec1::try_from(items).map_err(response_err)?,
            });
        }
        if sel.messages.len() != before {
            let highest = sel.messages.last().map_or(0, |m| m.uid);
            let claimed = if sel.archive {
                u32::MAX
            } else {
                notifier.claim_recent(&user, &sel.name, sel.uidvalidity, highest, !sel.read_only)
            };
            let arrived: Vec<u32> = sel.messages[before..]
                .iter()
                .map(|m| m.uid)
                .filter(|&u| u > claimed)
                .collect();
            sel.recent.extend(arrived);
            responses.push(Data::Exists(
                u32::try_from(sel.messages.len()).map_err(response_err)?,
            ));
            responses.push(Data::Recent(
                u32::try_from(sel.recent.len()).map_err(response_err)?,
            ));
        }
        if new_keywords {
            self.announce_flags()?;
        }
        for r in responses {
            self.data(r);
        }
        Ok(arrived_any)
    }

    /// FLAGS and PERMANENTFLAGS again, after keywords new to the client appeared.
    fn announce_flags(&mut self) -> Result<()> {
        let Some(sel) = self.selected.as_ref() else {
            return Ok(());
        };
        let flags = flag_list(&sel.keywords);
        let read_only = sel.read_only;
        self.data(Data::Flags(flags.clone()));
        if !read_only {
            let perm = flags
                .into_iter()
                .map(FlagPerm::Flag)
                .chain([FlagPerm::Asterisk])
                .collect();
            self.untagged(
                StatusKind::Ok,
                Some(Code::PermanentFlags(perm)),
                "Flags permitted",
            )?;
        }
        Ok(())
    }

    async fn list(&mut self, opts: &ListOptions, lsub: bool) -> Result<Done> {
        let user = self.user()?;
        let completed = if lsub {
            "LSUB completed"
        } else {
            "LIST completed"
        };
        if !lsub && opts.patterns.iter().all(|p| p.is_empty()) {
            self.data(Data::List {
                items: vec![FlagNameAttribute::Noselect],
                delimiter: Some(QuotedChar::unvalidated('/')),
                mailbox: to_mailbox("")?,
            });
            return Ok(Done::ok(completed));
        }
        let with_subscriptions = lsub || opts.subscribed;
        let (folders, subscriptions) = self
            .config
            .store(move |s| {
                let folders = s.list_folders(&user)?;
                let subscriptions = if with_subscriptions {
                    s.subscriptions(&user)?
                } else {
                    Vec::new()
                };
                Ok((folders, subscriptions))
            })
            .await?;
        let entries = list_entries(folders, subscriptions);
        // Each pattern twice: as given, and upper-cased for INBOX (case-insensitive).
        let mut patterns = Vec::new();
        for p in &opts.patterns {
            let full = [opts.reference.as_slice(), p.as_slice()].concat();
            match (
                Pattern::new(&full),
                Pattern::new(&full.to_ascii_uppercase()),
            ) {
                (Ok(p), Ok(upper)) => patterns.push((p, upper)),
                _ => return Ok(Done::bad("Mailbox pattern too long")),
            }
        }
        let matches_pattern = |name: &str| {
            patterns.iter().any(|(p, upper)| {
                if name == "INBOX" {
                    upper.matches(b"INBOX")
                } else {
                    p.matches(name.as_bytes())
                }
            })
        };
        if lsub {
            return self.lsub(&entries, &matches_pattern);
        }
        // What the selection options ask for, patterns aside.
        let selects = |e: &ListEntry| {
            (!opts.subscribed || e.subscribed)
                && (!opts.special_use || e.special_use.is_some())
                && (e.exists || opts.subscribed)
        };
        let mut lines = Vec::new();
        for f in &entries {
            if !matches_pattern(&f.name) {
                continue;
            }
            let prefix = format!("{}/", f.name);
            let descendants = entries.iter().filter(|c| c.name.starts_with(&prefix));
            let children = descendants.clone().any(|c| c.exists);
            // RFC 5258 RECURSIVEMATCH: a parent of selected mailboxes that the patterns
            // do not return is listed (with CHILDINFO) even when not selected itself.
            let child_info = opts.recursive_match
                && descendants
                    .filter(|c| !matches_pattern(&c.name))
                    .any(selects);
            if !selects(f) && !child_info {
                continue;
            }
            let mut items = Vec::new();
            if f.exists {
                items.push(FlagNameAttribute::from(atom(if children {
                    "HasChildren"
                } else {
                    "HasNoChildren"
                })));
            } else {
                items.push(FlagNameAttribute::from(atom("NonExistent")));
            }
            if (opts.subscribed || opts.return_subscribed) && f.subscribed {
                items.push(FlagNameAttribute::from(atom("Subscribed")));
            }
            if let Some(special) = f.special_use.as_deref().and_then(|s| s.strip_prefix('\\'))
                && let Ok(a) = Atom::try_from(special.to_string())
            {
                items.push(FlagNameAttribute::from(a));
            }
            let data = Data::List {
                items,
                delimiter: Some(QuotedChar::unvalidated('/')),
                mailbox: to_mailbox(&f.name)?,
            };
            let mut line = ResponseCodec::default()
                .encode(&Response::Data(data))
                .dump();
            if child_info && line.ends_with(b"\r\n") {
                line.truncate(line.len() - 2);
                let mut criteria = Vec::new();
                if opts.subscribed {
                    criteria.push("\"SUBSCRIBED\"");
                }
                if opts.special_use {
                    criteria.push("\"SPECIAL-USE\"");
                }
                line.extend_from_slice(
                    format!(" (\"CHILDINFO\" ({}))\r\n", criteria.join(" ")).as_bytes(),
                );
            }
            lines.push(line);
        }
        for line in lines {
            self.out.extend_from_slice(&line);
        }
        Ok(Done::ok(completed))
    }

    /// LSUB (RFC 3501 6.3.9): the subscribed names the patterns match, and, for a
    /// subscribed name they do not match, its unsubscribed parents they do match, as
    /// `\Noselect` (so `%` shows `foo` when only `foo/bar` is subscribed).
    fn lsub(
        &mut self,
        entries: &[ListEntry],
        matches_pattern: &dyn Fn(&str) -> bool,
    ) -> Result<Done> {
        let subscribed: HashSet<&str> = entries
            .iter()
            .filter(|e| e.subscribed)
            .map(|e| e.name.as_str())
            .collect();
        let mut shown: BTreeMap<String, bool> = BTreeMap::new();
        for e in entries.iter().filter(|e| e.subscribed) {
            if matches_pattern(&e.name) {
                shown.insert(e.name.clone(), !e.exists);
                continue;
            }
            let mut parent = e.name.as_str();
            while let Some((up, _)) = parent.rsplit_once('/') {
                parent = up;
                if !subscribed.contains(parent) && matches_pattern(parent) {
                    shown.insert(parent.to_string(), true);
                }
            }
        }
        // INBOX first, as LIST does.
        let mut names: Vec<(String, bool)> = shown.into_iter().collect();
        names.sort_by_key(|(n, _)| n != "INBOX");
        for (name, noselect) in names {
            let items = if noselect {
                vec![FlagNameAttribute::Noselect]
            } else {
                Vec::new()
            };
            self.data(Data::Lsub {
                items,
                delimiter: Some(QuotedChar::unvalidated('/')),
                mailbox: to_mailbox(&name)?,
            });
        }
        Ok(Done::ok("LSUB completed"))
    }

    async fn status(
        &mut self,
        mailbox: &Mailbox<'static>,
        names: &[StatusDataItemName],
    ) -> Result<Done> {
        let user = self.user()?;
        let name = mailbox_name(mailbox);
        let messages = self.load(&name).await?;
        let sel = if is_archive(&name) {
            archive::state(&messages)?
        } else {
            let n = name.clone();
            self.config.store(move |s| s.select(&user, &n)).await?
        };
        let count = |f: &dyn Fn(&MessageMeta) -> bool| {
            u32::try_from(messages.iter().filter(|m| f(m)).count()).unwrap_or(u32::MAX)
        };
        let mut items = Vec::new();
        for n in names {
            items.push(match n {
                StatusDataItemName::Messages => StatusDataItem::Messages(sel.exists),
                StatusDataItemName::Recent => {
                    let claimed = self.claimed_recent(&name, sel.uidvalidity, 0, false)?;
                    StatusDataItem::Recent(count(&|m| m.uid > claimed))
                }
                StatusDataItemName::UidNext => StatusDataItem::UidNext(nz(sel.uidnext.max(1))?),
                StatusDataItemName::UidValidity => {
                    StatusDataItem::UidValidity(nz(sel.uidvalidity)?)
                }
                StatusDataItemName::Unseen => {
                    StatusDataItem::Unseen(count(&|m| !has_flag(m, "\\Seen")))
                }
                StatusDataItemName::Deleted => {
                    StatusDataItem::Deleted(count(&|m| has_flag(m, "\\Deleted")))
                }
                StatusDataItemName::DeletedStorage => StatusDataItem::DeletedStorage(
                    messages
                        .iter()
                        .filter(|m| has_flag(m, "\\Deleted"))
                        .map(|m| m.size)
                        .sum(),
                ),
                StatusDataItemName::HighestModSeq => {
                    StatusDataItem::HighestModSeq(sel.highestmodseq)
                }
            });
        }
        self.data(Data::Status {
            mailbox: mailbox.clone(),
            items: items.into(),
        });
        Ok(Done::ok("STATUS completed"))
    }

    async fn append(
        &mut self,
        mailbox: &Mailbox<'_>,
        flags: Vec<Flag<'static>>,
        date: Option<DateTime>,
        bytes: Vec<u8>,
    ) -> Result<Done> {
        let user = self.user()?;
        let name = mailbox_name(mailbox);
        let flags: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
        let when = date.map_or_else(
            || chrono::Utc::now().timestamp(),
            |d| d.as_ref().timestamp(),
        );
        let (u, f) = (user.clone(), name.clone());
        let delivered = self
            .config
            .store(move |s| s.deliver(&u, &f, &bytes, &flags, when))
            .await?;
        self.config.notifier.changed(&user, &delivered.folder);
        Ok(Done::ok_code(
            Code::AppendUid {
                uid_validity: nz(delivered.uidvalidity)?,
                uid: nz(delivered.uid)?,
            },
            "APPEND completed",
        ))
    }

    async fn idle(&mut self, tag: &Tag<'static>) -> Result<Done> {
        let _ = tag;
        self.continuation("idling")?;
        if std::mem::take(&mut self.untold_news)
            && let Some(sel) = self.selected.as_ref()
        {
            let exists = u32::try_from(sel.messages.len()).map_err(response_err)?;
            let recent = u32::try_from(sel.recent.len()).map_err(response_err)?;
            self.data(Data::Exists(exists));
            self.data(Data::Recent(recent));
        }
        self.flush().await?;
        let mut changes = self.selected.as_ref().map(|s| s.changes.clone());
        let mut buf = vec![0u8; 1024];
        loop {
            // Only DONE may come; anything that is not a short line ends the session.
            match self.input.next(&self.bounds()) {
                Next::Command => {
                    let decoded = self
                        .input
                        .fragmentizer()
                        .decode_message(&IdleDoneCodec::default());
                    return Ok(match decoded {
                        Ok(_) => Done::ok("IDLE terminated"),
                        Err(_) => Done::bad("Expected DONE"),
                    });
                }
                Next::Read => {}
                Next::Literal(_) | Next::SyncLiteralTooLarge | Next::Overflow(_) => {
                    self.bye("Expected DONE")?;
                    self.flush().await?;
                    return Err(Error::Protocol("unexpected input in IDLE".into()));
                }
            }
            let changed = async {
                match changes.as_mut() {
                    Some(rx) => rx.changed().await.is_ok(),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                read = tokio::time::timeout(self.config.limits.idle_timeout, self.conn.read(&mut buf)) => {
                    match read {
                        Err(_) | Ok(Ok(0)) => return Err(Error::Protocol("connection closed in IDLE".into())),
                        Ok(Ok(n)) => self.input.feed(&buf[..n]),
                        Ok(Err(e)) => return Err(e.into()),
                    }
                }
                alive = changed => {
                    if !alive {
                        changes = None;
                    }
                    self.refresh(true).await?;
                    self.flush().await?;
                }
            }
        }
    }

    async fn selected_command(&mut self, body: CommandBody<'static>) -> Result<Done> {
        let Some(sel) = self.selected.as_ref() else {
            return Ok(Done::bad("No mailbox selected"));
        };
        let writable = !sel.read_only;
        match body {
            CommandBody::Fetch {
                sequence_set,
                macro_or_item_names,
                uid,
                modifiers,
            } => {
                let mut changed_since = None;
                for m in modifiers {
                    match m {
                        FetchModifier::ChangedSince(n) => changed_since = Some(n.get()),
                        FetchModifier::Vanished => {
                            return Ok(Done::bad("VANISHED needs QRESYNC, not supported"));
                        }
                    }
                }
                self.fetch(&sequence_set, macro_or_item_names, uid, changed_since)
                    .await
            }
            CommandBody::Store {
                sequence_set,
                kind,
                response,
                flags,
                uid,
                modifiers,
            } => {
                if !writable {
                    return Ok(Done::no("Mailbox is read-only"));
                }
                let unchanged_since = modifiers
                    .iter()
                    .map(|StoreModifier::UnchangedSince(n)| *n)
                    .min();
                let store = StoreRequest {
                    kind,
                    response,
                    flags,
                    uid,
                    unchanged_since,
                };
                self.store(&sequence_set, store).await
            }
            CommandBody::Search { criteria, uid, .. } => self.search(criteria, uid).await,
            CommandBody::Copy {
                sequence_set,
                mailbox,
                uid,
            } => self.copy(&sequence_set, &mailbox, uid, false).await,
            CommandBody::Move {
                sequence_set,
                mailbox,
                uid,
            } => {
                if !writable {
                    return Ok(Done::no("Mailbox is read-only"));
                }
                self.copy(&sequence_set, &mailbox, uid, true).await
            }
            CommandBody::Expunge => {
                if !writable {
                    return Ok(Done::no("Mailbox is read-only"));
                }
                self.expunge(None).await
            }
            CommandBody::ExpungeUid { sequence_set } => {
                if !writable {
                    return Ok(Done::no("Mailbox is read-only"));
                }
                self.expunge(Some(sequence_set)).await
            }
            CommandBody::Close => {
                if writable {
                    let user = self.user()?;
                    let name = sel.name.clone();
                    let (u, n) = (user.clone(), name.clone());
                    let gone = self.config.store(move |s| s.expunge(&u, &n, None)).await?;
                    if !gone.is_empty() {
                        self.config.notifier.changed(&user, &name);
                    }
                }
                self.selected = None;
                Ok(Done::ok("CLOSE completed"))
            }
            CommandBody::Unselect => {
                self.selected = None;
                Ok(Done::ok("UNSELECT completed"))
            }
            _ => Ok(Done::bad("Command not supported")),
        }
    }

    /// FLAGS of a message of the selected folder as this session shows them.
    fn flags_of(&self, meta: &MessageMeta) -> Vec<FlagFetch<'static>> {
        match self.selected.as_ref() {
            Some(sel) => sel.flags(meta),
            None => flags_fetch(&meta.flags),
        }
    }

    /// Indices (in sequence order) of the messages a set designates.
    fn resolve(&self, set: &SequenceSet, uid: bool) -> Vec<usize> {
        let Some(sel) = self.selected.as_ref() else {
            return Vec::new();
        };
        let largest_uid = sel.messages.last().map_or(0, |m| m.uid);
        let largest_seq = u32::try_from(sel.messages.len()).unwrap_or(u32::MAX);
        sel.messages
            .iter()
            .enumerate()
            .filter(|(i, m)| {
                if uid {
                    in_set(set, m.uid, largest_uid)
                } else {
                    u32::try_from(i + 1).is_ok_and(|seq| in_set(set, seq, largest_seq))
                }
            })
            .map(|(i, _)| i)
            .collect()
    }

    async fn fetch(
        &mut self,
        set: &SequenceSet,
        names: MacroOrMessageDataItemNames<'static>,
        uid: bool,
        changed_since: Option<u64>,
    ) -> Result<Done> {
        let mut names = match names {
            MacroOrMessageDataItemNames::Macro(m) => {
                let mut v = vec![
                    MessageDataItemName::Flags,
                    MessageDataItemName::InternalDate,
                    MessageDataItemName::Rfc822Size,
                ];
                match m {
                    Macro::Fast => {}
                    Macro::All => v.push(MessageDataItemName::Envelope),
                    _ => v.extend([MessageDataItemName::Envelope, MessageDataItemName::Body]),
                }
                v
            }
            MacroOrMessageDataItemNames::MessageDataItemNames(v) => v,
        };
        if uid && !names.contains(&MessageDataItemName::Uid) {
            names.insert(0, MessageDataItemName::Uid);
        }
        // FETCH MODSEQ and CHANGEDSINCE enable CONDSTORE (RFC 7162 3.1).
        if changed_since.is_some() || names.contains(&MessageDataItemName::ModSeq) {
            self.condstore = true;
        }
        // With CONDSTORE on, FLAGS come with MODSEQ; CHANGEDSINCE implies it.
        if (changed_since.is_some()
            || (self.condstore && names.contains(&MessageDataItemName::Flags)))
            && !names.contains(&MessageDataItemName::ModSeq)
        {
            names.push(MessageDataItemName::ModSeq);
        }
        if names.iter().any(|n| {
            matches!(
                n,
                MessageDataItemName::Binary { .. } | MessageDataItemName::BinarySize { .. }
            )
        }) {
            return Ok(Done::bad("BINARY is not supported"));
        }
        let needs_bytes = names.iter().any(|n| {
            !matches!(
                n,
                MessageDataItemName::Flags
                    | MessageDataItemName::Uid
                    | MessageDataItemName::Rfc822Size
                    | MessageDataItemName::InternalDate
                    | MessageDataItemName::ModSeq
            )
        });
        let (folder, archive, read_only) = match self.selected.as_ref() {
            Some(s) => (s.name.clone(), s.archive, s.read_only),
            None => return Ok(Done::bad("No mailbox selected")),
        };
        let marks_seen = !read_only
            && names.iter().any(|n| {
                matches!(
                    n,
                    MessageDataItemName::BodyExt { peek: false, .. }
                        | MessageDataItemName::Rfc822
                        | MessageDataItemName::Rfc822Text
                )
            });
        let user = self.user()?;
        for index in self.resolve(set, uid) {
            let Some(mut meta) = self
                .selected
                .as_ref()
                .and_then(|s| s.messages.get(index))
                .cloned()
            else {
                continue;
            };
            if changed_since.is_some_and(|since| meta.modseq <= since) {
                continue;
            }
            let raw = if needs_bytes {
                match self.fetch_bytes(archive, &folder, meta.uid).await {
                    Ok(raw) => raw,
                    // Expunged by another session, not yet announced.
                    Err(Error::Store(pec_store::Error::NoSuchMessage(_))) => continue,
                    Err(e) => return Err(e),
                }
            } else {
                Vec::new()
            };
            let mut set_seen = false;
            if marks_seen && !has_flag(&meta, "\\Seen") {
                let (u, f, id) = (user.clone(), folder.clone(), meta.uid);
                let changed = self
                    .config
                    .store(move |s| {
                        s.store_flags(&u, &f, &[id], FlagOp::Add, &["\\Seen".to_string()])
                    })
                    .await?;
                if let Some(c) = changed.into_iter().next() {
                    meta = c;
                    set_seen = true;
                    if let Some(slot) = self
                        .selected
                        .as_mut()
                        .and_then(|s| s.messages.get_mut(index))
                    {
                        *slot = meta.clone();
                    }
                    self.config.notifier.changed(&user, &folder);
                }
            }
            let parsed = needs_bytes.then(|| mime::parse(&raw));
            let mut extra = Vec::new();
            if set_seen && !names.contains(&MessageDataItemName::Flags) {
                extra.push(MessageDataItem::Flags(self.flags_of(&meta)));
                if self.condstore && !names.contains(&MessageDataItemName::ModSeq) {
                    extra.push(modseq_item(&meta));
                }
            }
            // One item at a time to the client: a reply naming the same large section
            // many times never sits in memory whole.
            let seq = seq_of(index)?;
            self.out
                .extend_from_slice(format!("* {seq} FETCH (").as_bytes());
            let mut first = true;
            for name in &names {
                let item = self.item(name, &meta, &raw, parsed.as_ref())?;
                self.stream_item(seq, item, &mut first).await?;
            }
            for item in extra {
                self.stream_item(seq, item, &mut first).await?;
            }
            self.out.extend_from_slice(b")\r\n");
        }
        Ok(Done::ok("FETCH completed"))
    }

    /// One FETCH item of a message.
    fn item(
        &self,
        name: &MessageDataItemName<'static>,
        meta: &MessageMeta,
        raw: &[u8],
        parsed: Option<&Parsed<'_>>,
    ) -> Result<MessageDataItem<'static>> {
        let message = parsed.and_then(Parsed::message);
        Ok(match name {
            MessageDataItemName::Uid => MessageDataItem::Uid(nz(meta.uid)?),
            MessageDataItemName::Flags => MessageDataItem::Flags(self.flags_of(meta)),
            MessageDataItemName::InternalDate => {
                MessageDataItem::InternalDate(internal_date(meta.internaldate)?)
            }
            MessageDataItemName::Rfc822Size => {
                MessageDataItem::Rfc822Size(u32::try_from(meta.size).unwrap_or(u32::MAX))
            }
            MessageDataItemName::ModSeq => modseq_item(meta),
            MessageDataItemName::Envelope => MessageDataItem::Envelope(mime::envelope(message)),
            MessageDataItemName::BodyStructure => {
                MessageDataItem::BodyStructure(mime::body_structure(raw, parsed))
            }
            MessageDataItemName::Body => {
                MessageDataItem::Body(mime::without_extensions(mime::body_structure(raw, parsed)))
            }
            MessageDataItemName::Rfc822 => MessageDataItem::Rfc822(mime::literal(raw)),
            MessageDataItemName::Rfc822Header => {
                MessageDataItem::Rfc822Header(mime::literal(mime::split_header(raw).0))
            }
            MessageDataItemName::Rfc822Text => {
                MessageDataItem::Rfc822Text(mime::literal(mime::split_header(raw).1))
            }
            MessageDataItemName::BodyExt {
                section, partial, ..
            } => {
                let mut bytes = mime::section(raw, message, section.as_ref()).unwrap_or_default();
                let origin = partial.map(|(start, len)| {
                    let start_at = (start as usize).min(bytes.len());
                    let end = start_at.saturating_add(len.get() as usize).min(bytes.len());
                    bytes = bytes[start_at..end].to_vec();
                    start
                });
                MessageDataItem::BodyExt {
                    section: section.clone(),
                    origin,
                    data: mime::literal(bytes),
                }
            }
            // Refused before any message is read (see `fetch`).
            MessageDataItemName::Binary { .. } | MessageDataItemName::BinarySize { .. } => {
                return Err(Error::Response("BINARY is not supported".into()));
            }
        })
    }

    /// Appends one item of the FETCH reply of message `seq` to the output, sending the
    /// output once it holds more than [`STREAM_CHUNK`] bytes.
    async fn stream_item(
        &mut self,
        seq: NonZeroU32,
        item: MessageDataItem<'static>,
        first: &mut bool,
    ) -> Result<()> {
        // The codec encodes whole responses: encode a reply with this item alone and keep
        // what is between "* seq FETCH (" and ")\r\n".
        let encoded = ResponseCodec::default()
            .encode(&Response::Data(Data::Fetch {
                seq,
                items: Vec1::from(item),
            }))
            .dump();
        let prefix = format!("* {seq} FETCH (");
        let inner = encoded
            .strip_prefix(prefix.as_bytes())
            .and_then(|b| b.strip_suffix(b")\r\n"))
            .ok_or_else(|| Error::Response("unexpected FETCH encoding".into()))?;
        if !std::mem::take(first) {
            self.out.push(b' ');
        }
        self.out.extend_from_slice(inner);
        if self.out.len() > STREAM_CHUNK {
            self.flush().await?;
        }
        Ok(())
    }

    async fn store(&mut self, set: &SequenceSet, req: StoreRequest) -> Result<Done> {
        let user = self.user()?;
        if req.unchanged_since.is_some() {
            self.condstore = true;
        }
        let indices = self.resolve(set, req.uid);
        let Some(sel) = self.selected.as_ref() else {
            return Ok(Done::bad("No mailbox selected"));
        };
        let folder = sel.name.clone();
        let uids: Vec<u32> = indices
            .iter()
            .filter_map(|&i| sel.messages.get(i).map(|m| m.uid))
            .collect();
        let op = match req.kind {
            StoreType::Add => FlagOp::Add,
            StoreType::Remove => FlagOp::Remove,
            StoreType::Replace => FlagOp::Replace,
        };
        let flags: Vec<String> = req.flags.iter().map(|f| f.to_string()).collect();
        let (u, f) = (user.clone(), folder.clone());
        let unchanged_since = req.unchanged_since;
        let (changed, modified) = self
            .config
            .store(move |s| {
                // RFC 7162 UNCHANGEDSINCE: messages changed after the given
                // modification sequence are left alone and reported MODIFIED.
                let (allowed, modified): (Vec<u32>, Vec<u32>) = match unchanged_since {
                    None => (uids, Vec::new()),
                    Some(limit) => {
                        let current: HashMap<u32, u64> = s
                            .messages(&u, &f)?
                            .into_iter()
                            .map(|m| (m.uid, m.modseq))
                            .collect();
                        uids.into_iter()
                            .partition(|uid| current.get(uid).is_none_or(|&m| m <= limit))
                    }
                };
                let changed = s.store_flags(&u, &f, &allowed, op, &flags)?;
                Ok((changed, modified))
            })
            .await?;
        if !changed.is_empty() {
            self.config.notifier.changed(&user, &folder);
        }
        let condstore = self.condstore;
        let Some(sel) = self.selected.as_mut() else {
            return Ok(Done::bad("No mailbox selected"));
        };
        let changed_uids: Vec<u32> = changed.iter().map(|c| c.uid).collect();
        for c in changed {
            if let Some(m) = sel.messages.iter_mut().find(|m| m.uid == c.uid) {
                *m = c;
            }
        }
        if sel.learn_keywords() {
            self.announce_flags()?;
        }
        let Some(sel) = self.selected.as_ref() else {
            return Ok(Done::bad("No mailbox selected"));
        };
        let mut out = Vec::new();
        let mut modified_ids = Vec::new();
        for &i in &indices {
            let Some(m) = sel.messages.get(i) else {
                continue;
            };
            if modified.contains(&m.uid) {
                modified_ids.push(if req.uid { m.uid } else { seq_of(i)?.get() });
                continue;
            }
            let mut items = Vec::new();
            if req.response == StoreResponse::Answer {
                items.push(MessageDataItem::Flags(sel.flags(m)));
            } else if !(condstore && changed_uids.contains(&m.uid)) {
                // .SILENT: only the new MODSEQ of changed messages (RFC 7162 3.1.3).
                continue;
            }
            if req.uid {
                items.push(MessageDataItem::Uid(nz(m.uid)?));
            }
            if condstore {
                items.push(modseq_item(m));
            }
            out.push(Data::Fetch {
                seq: seq_of(i)?,
                items: Vec1::try_from(items).map_err(response_err)?,
            });
        }
        for d in out {
            self.data(d);
        }
        if let Ok(ids) = Vec1::try_from(modified_ids) {
            let set = SequenceSet(
                ids.into_iter()
                    .map(|id| nz(id).map(|n| Sequence::Single(SeqOrUid::Value(n))))
                    .collect::<Result<Vec<_>>>()?
                    .try_into()
                    .map_err(response_err)?,
            );
            return Ok(Done::ok_code(
                Code::Modified(set),
                "Conditional STORE failed for some messages",
            ));
        }
        Ok(Done::ok("STORE completed"))
    }

    async fn search(&mut self, criteria: Vec1<SearchKey<'static>>, uid: bool) -> Result<Done> {
        let key = SearchKey::And(criteria);
        let Some(sel) = self.selected.as_ref() else {
            return Ok(Done::bad("No mailbox selected"));
        };
        let (folder, archive) = (sel.name.clone(), sel.archive);
        let messages = sel.messages.clone();
        let recent = sel.recent.clone();
        let largest_uid = messages.last().map_or(0, |m| m.uid);
        let largest_seq = u32::try_from(messages.len()).unwrap_or(u32::MAX);
        let load = needs_bytes(&key);
        let with_modseq = has_modseq(&key);
        if with_modseq {
            self.condstore = true;
        }
        let mut hits = Vec::new();
        let mut highest = 0;
        for (i, meta) in messages.iter().enumerate() {
            let raw = if load {
                match self.fetch_bytes(archive, &folder, meta.uid).await {
                    Ok(raw) => raw,
                    Err(Error::Store(pec_store::Error::NoSuchMessage(_))) => continue,
                    Err(e) => return Err(e),
                }
            } else {
                Vec::new()
            };
            let parsed = load.then(|| mime::parse(&raw));
            let seq = u32::try_from(i + 1).unwrap_or(u32::MAX);
            let c = Candidate {
                seq,
                largest_seq,
                largest_uid,
                meta,
                recent: recent.contains(&meta.uid),
                raw: &raw,
                parsed: parsed.as_ref().and_then(Parsed::message),
            };
            if matches(&key, &c) {
                hits.push(nz(if uid { meta.uid } else { seq })?);
                highest = highest.max(meta.modseq);
            }
        }
        // RFC 7162 3.1.5: a SEARCH with MODSEQ reports the highest one found.
        let modseq = NonZeroU64::new(highest).filter(|_| with_modseq);
        self.data(Data::Search(hits, modseq));
        Ok(Done::ok("SEARCH completed"))
    }

    async fn copy(
        &mut self,
        set: &SequenceSet,
        mailbox: &Mailbox<'_>,
        uid: bool,
        is_move: bool,
    ) -> Result<Done> {
        let user = self.user()?;
        let dest = mailbox_name(mailbox);
        let indices = self.resolve(set, uid);
        let Some(sel) = self.selected.as_ref() else {
            return Ok(Done::bad("No mailbox selected"));
        };
        let folder = sel.name.clone();
        let uids: Vec<u32> = indices
            .iter()
            .filter_map(|&i| sel.messages.get(i).map(|m| m.uid))
            .collect();
        if uids.is_empty() {
            return Ok(Done::ok("Nothing to do"));
        }
        let (u, f, d) = (user.clone(), folder.clone(), dest.clone());
        let copied = self
            .config
            .store(move |s| {
                if is_move {
                    s.move_messages(&u, &f, &uids, &d)
                } else {
                    s.copy(&u, &f, &uids, &d)
                }
            })
            .await?;
        self.config.notifier.changed(&user, &dest);
        let (src, dst): (Vec<u32>, Vec<u32>) = copied.uids.iter().copied().unzip();
        let code = match (uid_set(&src), uid_set(&dst)) {
            (Ok(source), Ok(destination)) => Some(Code::CopyUid {
                uid_validity: nz(copied.uidvalidity)?,
                source,
                destination,
            }),
            _ => None,
        };
        if !is_move {
            return Ok(Done {
                kind: StatusKind::Ok,
                code,
                text: "COPY completed".into(),
            });
        }
        self.config.notifier.changed(&user, &folder);
        self.untagged(StatusKind::Ok, code, "Moved")?;
        self.forget(&src)?;
        Ok(Done::ok("MOVE completed"))
    }

    /// Drops expunged UIDs from the snapshot, announcing each with EXPUNGE.
    fn forget(&mut self, uids: &[u32]) -> Result<()> {
        let Some(sel) = self.selected.as_mut() else {
            return Ok(());
        };
        let mut out = Vec::new();
        let mut i = sel.messages.len();
        while i > 0 {
            i -= 1;
            if uids.contains(&sel.messages[i].uid) {
                sel.messages.remove(i);
                out.push(Data::Expunge(seq_of(i)?));
            }
        }
        for d in out {
            self.data(d);
        }
        Ok(())
    }

    async fn expunge(&mut self, uids: Option<SequenceSet>) -> Result<Done> {
        let user = self.user()?;
        let only: Option<Vec<u32>> = match &uids {
            Some(set) => {
                let indices = self.resolve(set, true);
                let sel = self.selected.as_ref();
                Some(
                    indices
                        .iter()
                        .filter_map(|&i| sel.and_then(|s| s.messages.get(i)).map(|m| m.uid))
                        .collect(),
                )
            }
            None => None,
        };
        let Some(sel) = self.selected.as_ref() else {
            return Ok(Done::bad("No mailbox selected"));
        };
        let folder = sel.name.clone();
        let (u, f) = (user.clone(), folder.clone());
        let gone = self
            .config
            .store(move |s| s.expunge(&u, &f, only.as_deref()))
            .await?;
        if !gone.is_empty() {
            self.config.notifier.changed(&user, &folder);
        }
        self.forget(&gone)?;
        Ok(Done::ok("EXPUNGE completed"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_with_star() {
        let set = SequenceSet::try_from("5:*").unwrap();
        assert!(
            in_set(&set, 3, 3),
            "n:* with n above the largest still names the largest"
        );
        assert!(!in_set(&set, 2, 3));
        let set = SequenceSet::try_from("1,4:6").unwrap();
        assert!(in_set(&set, 5, 9) && in_set(&set, 1, 9) && !in_set(&set, 2, 9));
    }
}
