//! One IMAP4rev1 session: framing with the `imap-codec` fragmentizer,
//! commands decoded and responses encoded by the codec, state over the store.
//!
//! This module holds the session's state ([`Session`], [`Selected`]), how a command
//! ends ([`Done`]) and the small helpers every command uses; each command family has
//! a module of its own, an `impl Session` block that reaches these through
//! `use super::*`:
//!
//! - `session`: output, reading within the input bounds, the loop, STARTTLS, login;
//! - `dispatch`: commands to handlers by state, and the end of every command;
//! - `select`: SELECT/EXAMINE, STATUS, keeping the selected folder in step;
//! - `fetch`, `binary` (FETCH BINARY), `search`, `sort` (SORT, THREAD), `store` (STORE,
//!   COPY/MOVE, EXPUNGE), `context` (SEARCH and SORT with RETURN: ESEARCH, ESORT, live
//!   searches), `idle`, `append` (with MULTIAPPEND and CATENATE);
//! - `folders`: LIST, LSUB, CREATE, SUBSCRIBE;
//! - `qresync`: QRESYNC's SELECT, `VANISHED`;
//! - `notify`: what changed told to the client (at a command's end, between commands,
//!   in IDLE) and the NOTIFY command that chooses it;
//! - `archive`: the security archive, decided in one place.

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

mod append;
mod archive;
mod binary;
mod context;
mod dispatch;
mod fetch;
mod folders;
mod idle;
mod notify;
mod qresync;
mod search;
mod select;
mod session;
mod sort;
mod store;

pub use archive::ARCHIVE_FOLDER;
use archive::is_archive;

use crate::append_command;
use crate::error::{Error, Result};
use crate::id_stream;
use crate::input::{Bounds, Input, Next};
use crate::listext::{self, ListOptions};
use crate::mime;
use crate::notify::{Watcher, folder_key};
use crate::notify_command::{self, Notify};
use crate::pattern::Pattern;
use crate::server::{Config, Conn};
use pec_proto::bounded::Parsed;

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
    /// The archive folder: its entries are the address's archive, only `\Seen` is
    /// writable.
    archive: bool,
    /// Messages in sequence order, as last reported to the client.
    messages: Vec<MessageMeta>,
    /// The store may hold changes of the folder the client was not told of yet.
    stale: bool,
    uidvalidity: u32,
    /// UIDs that are `\Recent` in this session (it was the first told of them).
    recent: HashSet<u32>,
    /// Keywords the client was told of in FLAGS.
    keywords: BTreeSet<String>,
    /// The searches kept live with UPDATE (RFC 5267), which end with the selection.
    contexts: context::Contexts,
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

    /// FLAGS and PERMANENTFLAGS of the folder: the system flags and keywords, any new
    /// keyword allowed, except in the archive, where only `\Seen` can change, and in a
    /// read-only folder, where nothing can.
    fn flag_lists(&self) -> (Vec<Flag<'static>>, Vec<FlagPerm<'static>>) {
        if self.archive {
            let perm = if self.read_only {
                Vec::new()
            } else {
                vec![FlagPerm::Flag(Flag::Seen)]
            };
            return (vec![Flag::Seen], perm);
        }
        let flags = flag_list(&self.keywords);
        let perm = if self.read_only {
            Vec::new()
        } else {
            flags
                .iter()
                .cloned()
                .map(FlagPerm::Flag)
                .chain([FlagPerm::Asterisk])
                .collect()
        };
        (flags, perm)
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
    /// QRESYNC is enabled (RFC 7162 3.2.3): expunges are told with VANISHED.
    qresync: bool,
    /// The changes of the account's mailbox (from login on).
    watcher: Option<Watcher>,
    /// What NOTIFY SET asked for (RFC 5465); `None` before it and after NOTIFY NONE.
    notify: Option<notify::Watching>,
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
        qresync: false,
        watcher: None,
        notify: None,
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
