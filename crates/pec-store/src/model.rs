//! The plain values the store takes and returns, shared by every backend.

use crate::effects::EffectKey;

/// A mail domain served by this provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    /// Lowercase domain name.
    pub name: String,
    /// Quota in bytes given to new accounts that do not set their own.
    pub default_quota: u64,
}

/// An *ente* (a municipality, a school, an agency of the province): it owns mail domains,
/// has administrators of its own and shares out `allotment` bytes of quota among its
/// mailboxes; the province bills it by its usage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ente {
    /// Its name, unique (e.g. `comune-di-esempio`).
    pub name: String,
    /// The hosted domains it owns, lowercase, by name; a domain belongs to one ente.
    pub domains: Vec<String>,
    /// Quota its mailboxes may have in all, in bytes.
    pub allotment: u64,
}

/// Someone who may use the administration API: of one ente (its domains' mailboxes
/// only) or, with `ente` `None`, of the whole gestore (the province).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin {
    /// The login (an address), lowercase.
    pub login: String,
    /// The ente administered; `None` for the province's administrators.
    pub ente: Option<String>,
    /// Password hash (argon2 PHC string) computed by the caller.
    pub password_hash: String,
}

/// A change in a mailbox's life, kept for billing (mailbox-days are counted from them):
/// `kind` is one of [`MAILBOX_CREATED`], [`MAILBOX_SUSPENDED`], [`MAILBOX_REACTIVATED`],
/// [`MAILBOX_REMOVED`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxEvent {
    /// The mailbox address, lowercase.
    pub address: String,
    /// What happened.
    pub kind: String,
    /// When, seconds since the Unix epoch (the gestore's clock).
    pub at: i64,
}

/// [`MailboxEvent::kind`] of a mailbox created.
pub const MAILBOX_CREATED: &str = "created";
/// [`MailboxEvent::kind`] of a mailbox suspended (its logins refused).
pub const MAILBOX_SUSPENDED: &str = "suspended";
/// [`MailboxEvent::kind`] of a suspended mailbox opened again.
pub const MAILBOX_REACTIVATED: &str = "reactivated";
/// [`MailboxEvent::kind`] of a mailbox removed.
pub const MAILBOX_REMOVED: &str = "removed";

/// The mark a suspended mailbox's stored password hash starts with: no PHC string starts
/// with it, so no password matches until the mailbox is reactivated and the mark taken
/// off again ([`AdminAction::Suspend`]).
pub const SUSPENDED_MARK: char = '!';

/// One administrative change with the records that go with it, stored by
/// [`crate::Directory::administer`] in one transaction: the change, its mailbox event (for
/// billing) and its legal log record stand or fall together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminChange {
    /// What changes.
    pub action: AdminAction,
    /// The change in a mailbox's life this is, for billing; `None` for the others.
    pub event: Option<MailboxEvent>,
    /// The legal log record, naming who made the change.
    pub log: LogEntry,
}

/// What an [`AdminChange`] changes. Quotas of a mailbox in a domain of an ente are checked
/// against the ente's allotment inside the same transaction, under a lock of the ente, so
/// concurrent changes cannot pass it together ([`crate::Error::AllotmentExceeded`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminAction {
    /// Adds an ente.
    AddEnte(Ente),
    /// Hosts a domain.
    AddDomain {
        /// The domain.
        name: String,
        /// Quota of its new mailboxes.
        default_quota: u64,
    },
    /// Stops hosting a domain without mailboxes.
    RemoveDomain(String),
    /// Adds an administrator.
    AddAdmin(Admin),
    /// Creates a mailbox (quota within the allotment).
    CreateMailbox(NewAccount),
    /// Removes a mailbox.
    RemoveMailbox(String),
    /// Replaces a mailbox's password hash; a suspended mailbox stays suspended.
    SetPassword {
        /// The mailbox.
        address: String,
        /// The new PHC string.
        hash: String,
    },
    /// Sets a mailbox's quota (within the allotment).
    SetQuota {
        /// The mailbox.
        address: String,
        /// Bytes.
        quota: u64,
    },
    /// Suspends (`on`) or reactivates a mailbox ([`SUSPENDED_MARK`]); when it is so
    /// already nothing is stored, no event and no log record.
    Suspend {
        /// The mailbox.
        address: String,
        /// Suspend, or reactivate.
        on: bool,
    },
    /// Files receipts in `Ricevute` or INBOX.
    ReceiptsFolder {
        /// The mailbox.
        address: String,
        /// In `Ricevute`.
        on: bool,
    },
    /// Sets what the mailbox's security archive keeps.
    ArchiveOptions {
        /// The mailbox.
        address: String,
        /// The options.
        options: ArchiveOptions,
    },
    /// Keeps the protocol number a registry gave the message of registry event `id`, and
    /// adds `keyword` to that message while it is still where it was delivered (moved,
    /// deleted or its mailbox removed since, the number is kept with the event all the
    /// same).
    SetProtocolNumber {
        /// The registry event.
        id: i64,
        /// What the registry wrote back.
        number: ProtocolNumber,
        /// The keyword the message gets.
        keyword: String,
    },
    /// Stores an administrator's API token (its hash).
    CreateToken(ApiToken),
    /// Deletes an administrator's API token.
    RevokeToken {
        /// The administrator.
        login: String,
        /// The token's name.
        name: String,
    },
}

/// A bearer token an application uses for the administration API on behalf of an
/// administrator (with the same confinement). Only its SHA-256 is stored: the token
/// itself is shown once, when made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// The administrator it acts for.
    pub login: String,
    /// Its name, unique among the administrator's tokens.
    pub name: String,
    /// SHA-256 of the token, 64 lowercase hex digits.
    pub hash: String,
    /// When it was made, seconds since the Unix epoch.
    pub created_at: i64,
}

/// What the caller supplies to create an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccount {
    /// The mailbox address; stored lowercase, its domain must exist.
    pub address: String,
    /// Password hash computed by the caller (argon2 PHC string); stored as is.
    pub password_hash: String,
    /// Quota in bytes; `None` takes the domain's default.
    pub quota: Option<u64>,
    /// File PEC receipts in a separate `Ricevute` folder instead of INBOX.
    pub receipts_folder: bool,
}

/// A stored account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Lowercase mailbox address.
    pub address: String,
    /// The domain it belongs to.
    pub domain: String,
    /// Password hash as given by the caller.
    pub password_hash: String,
    /// Quota in bytes.
    pub quota: u64,
    /// Whether receipts are filed in `Ricevute`.
    pub receipts_folder: bool,
}

/// Bytes used against a quota: a mailbox's, or its security archive's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Sum of the sizes of the messages (of the mailbox's folders, or of its archive).
    pub used: u64,
    /// The quota in bytes.
    pub quota: u64,
}

/// A folder as listed to an IMAP client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folder {
    /// Folder name (`INBOX` is always spelled so).
    pub name: String,
    /// RFC 6154 special use (`\Sent`, `\Drafts`, `\Trash`, `\Junk`), if any.
    pub special_use: Option<String>,
    /// Created with the account; cannot be renamed or deleted.
    pub system: bool,
    /// Whether the folder is subscribed (LSUB / LIST SUBSCRIBED).
    pub subscribed: bool,
}

/// The state an IMAP SELECT reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Selected {
    /// Changes only when UIDs are no longer valid (folder recreated).
    pub uidvalidity: u32,
    /// The UID the next message will get.
    pub uidnext: u32,
    /// Highest modification sequence in the folder (CONDSTORE).
    pub highestmodseq: u64,
    /// Number of messages (not expunged).
    pub exists: u32,
}

/// Metadata of one message, as FETCH needs it without reading the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageMeta {
    /// UID in its folder.
    pub uid: u32,
    /// SHA-256 hex of the bytes (the blob name).
    pub hash: String,
    /// Size in bytes (RFC822.SIZE).
    pub size: u64,
    /// INTERNALDATE, seconds since the Unix epoch.
    pub internaldate: i64,
    /// Flags, sorted, without duplicates.
    pub flags: Vec<String>,
    /// Modification sequence of the last change.
    pub modseq: u64,
}

/// What [`crate::Mailboxes::deliver`] stored, once durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// Folder the message went to.
    pub folder: String,
    /// Its folder's UIDVALIDITY (for APPENDUID).
    pub uidvalidity: u32,
    /// Its UID.
    pub uid: u32,
    /// SHA-256 hex of the bytes.
    pub hash: String,
    /// Size in bytes.
    pub size: u64,
    /// Its modification sequence.
    pub modseq: u64,
    /// The mailbox's usage with the message in, as the delivery's own transaction saw it:
    /// what the quota warning compares, exact even when deliveries commit together.
    pub usage: Usage,
}

/// How [`crate::Mailboxes::store_flags`] combines the given flags with the present ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagOp {
    /// `+FLAGS`: add them.
    Add,
    /// `-FLAGS`: remove them.
    Remove,
    /// `FLAGS`: replace the set.
    Replace,
}

/// Result of a copy or move, as UIDPLUS `COPYUID` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    /// UIDVALIDITY of the destination folder.
    pub uidvalidity: u32,
    /// `(source uid, destination uid)` pairs, in source UID order.
    pub uids: Vec<(u32, u32)>,
}

/// Whether an archived message left or reached the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Sent by the account.
    Sent,
    /// Received for the account.
    Received,
}

impl Direction {
    /// The spelling stored in the database.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Direction::Sent => "sent",
            Direction::Received => "received",
        }
    }

    /// Parses the stored spelling.
    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "sent" => Some(Direction::Sent),
            "received" => Some(Direction::Received),
            _ => None,
        }
    }
}

/// What an address's security archive keeps (issue 14: "salvare automaticamente tutte le
/// mail inviate e ricevute oppure solo quelle … che siano PEC"), and up to how many bytes.
/// An address without options of its own has [`ArchiveOptions::default`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveOptions {
    /// Everything delivered and sent, or only certified mail.
    pub scope: ArchiveScope,
    /// Keep what the address sends.
    pub sent: bool,
    /// Keep what the address receives.
    pub received: bool,
    /// Bytes the archive may hold, apart from the mailbox quota.
    pub quota: u64,
}

/// The archive quota of an address without options of its own: 6 GiB, the size the
/// province offers its enti.
pub const DEFAULT_ARCHIVE_QUOTA: u64 = 6 << 30;

impl Default for ArchiveOptions {
    /// Everything, both directions, [`DEFAULT_ARCHIVE_QUOTA`]: what the archive kept
    /// before it had options.
    fn default() -> Self {
        ArchiveOptions {
            scope: ArchiveScope::All,
            sent: true,
            received: true,
            quota: DEFAULT_ARCHIVE_QUOTA,
        }
    }
}

/// Which messages an archive keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveScope {
    /// Every copy the gestore makes: certified mail, receipts, and the anomaly
    /// envelopes of ordinary mail.
    All,
    /// Only certified mail and its receipts: not the anomaly envelopes of ordinary mail.
    Pec,
}

impl ArchiveScope {
    /// The spelling stored in the database and shown to administrators.
    pub fn as_str(self) -> &'static str {
        match self {
            ArchiveScope::All => "tutto",
            ArchiveScope::Pec => "pec",
        }
    }

    /// Parses [`ArchiveScope::as_str`]'s spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "tutto" => Some(ArchiveScope::All),
            "pec" => Some(ArchiveScope::Pec),
            _ => None,
        }
    }
}

/// What becomes of one archive copy of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Kept.
    Keep,
    /// Left out by the address's options (scope or direction).
    Excluded,
    /// Left out because it would take the archive past its quota.
    Full,
}

impl ArchiveOptions {
    /// Whether a copy of `kind` (a message kind as `pec_proto` spells it: `anomalia` and
    /// `ordinaria` are not certified mail) going `direction`, of `size` bytes, is kept by
    /// an archive holding `used` bytes.
    pub fn admit(&self, direction: Direction, kind: &str, used: u64, size: u64) -> Admission {
        let direction_kept = match direction {
            Direction::Sent => self.sent,
            Direction::Received => self.received,
        };
        let scope_kept = match self.scope {
            ArchiveScope::All => true,
            ArchiveScope::Pec => !matches!(kind, "anomalia" | "ordinaria"),
        };
        if !(direction_kept && scope_kept) {
            Admission::Excluded
        } else if used.saturating_add(size) > self.quota {
            Admission::Full
        } else {
            Admission::Keep
        }
    }
}

/// The IMAP folder that shows an address's security archive. The store knows its name
/// so that a change of the archive reaches the sessions watching it as any folder's
/// change does ([`crate::Change::Folder`]).
pub const ARCHIVE_FOLDER: &str = "Archivio di sicurezza";

/// One entry of the security archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveEntry {
    /// Stable identifier of the entry.
    pub id: i64,
    /// Account address the traffic concerns.
    pub address: String,
    /// Its UID in the address's archive folder: 1 for the address's first entry, then
    /// one more for each entry in arrival order, never given twice.
    pub uid: u32,
    /// SHA-256 hex of the bytes.
    pub hash: String,
    /// Size in bytes.
    pub size: u64,
    /// Sent or received.
    pub direction: Direction,
    /// Caller's classification (e.g. `posta-certificata`, `accettazione`).
    pub kind: String,
    /// When it was archived, seconds since the Unix epoch.
    pub stored_at: i64,
}

/// What [`crate::Mailboxes::set_archive_seen`] did: the archive is a folder whose only
/// flag is `\\Seen`, changed as STORE changes a folder's flags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeenStored {
    /// The entries whose read mark changed, with their new flags and modseq.
    pub changed: Vec<MessageMeta>,
    /// UIDs left alone because they changed after the caller's UNCHANGEDSINCE.
    pub modified: Vec<u32>,
}

/// Outcome of [`crate::Maintenance::check`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Distinct referenced blobs examined.
    pub blobs_checked: u64,
    /// Referenced blobs whose file is absent.
    pub missing: Vec<String>,
    /// Referenced blobs whose bytes no longer match their hash.
    pub corrupt: Vec<String>,
    /// Problems reported by SQLite's `integrity_check` (empty when fine).
    pub database: Vec<String>,
}

impl CheckReport {
    /// True when nothing is missing, corrupt or inconsistent.
    pub fn is_ok(&self) -> bool {
        self.missing.is_empty() && self.corrupt.is_empty() && self.database.is_empty()
    }
}

/// What the caller records in the legal message log (spec §8.1): one
/// operation on one message, kept unmodified for 30 months.
///
/// Strings that do not apply are empty; lists keep the caller's order.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LogEntry {
    /// When the event happened, seconds since the Unix epoch.
    pub at: i64,
    /// The same instant as the gestore's single temporal reference shows it
    /// (ISO 8601 local time with offset), as the caller formatted it.
    pub at_local: String,
    /// Event type: `accettazione`, `non-accettazione`, `ricezione`,
    /// `presa-in-carico`, `consegna`, `errore-consegna`, `preavviso`,
    /// `virus`, `anomalia`, `invio`, ...
    pub event: String,
    /// The PEC identificativo of the message the event concerns.
    pub msgid: String,
    /// The Message-ID the sender's client gave the original message.
    pub original_msgid: String,
    /// Sender of the original message.
    pub sender: String,
    /// Recipients of the original message.
    pub recipients: Vec<String>,
    /// Subject of the original message.
    pub subject: String,
    /// Message-IDs of the receipts and envelopes the event produced.
    pub generated_ids: Vec<String>,
    /// The sending gestore.
    pub gestore: String,
    /// Free text: error reason, virus name, remote reply, ...
    pub detail: String,
}

/// A stored legal log record: the entry, its place in the chain and its hash.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LogRecord {
    /// Position in the log, from 1, without gaps (purge removes a prefix).
    pub seq: u64,
    /// What was recorded.
    #[serde(flatten)]
    pub entry: LogEntry,
    /// Hex SHA-256 of the previous record's hash and this record's canonical
    /// form, so no record can be changed, removed or moved unnoticed.
    pub hash: String,
}

/// Which legal log records [`crate::Ledger::search_log`] returns; every field
/// given must match (an empty query returns the whole log).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogQuery {
    /// Matches the record's `msgid` or `original_msgid` exactly.
    pub msgid: Option<String>,
    /// Matches the sender or any recipient, ignoring ASCII case.
    pub address: Option<String>,
    /// Only records with `at >= from`.
    pub from: Option<i64>,
    /// Only records with `at < to`.
    pub to: Option<i64>,
}

/// A time stamp a time-stamping authority (RFC 3161) gave the legal log's head: the
/// evidence that the log up to that record existed, unchanged, at the TSA's time (spec
/// §8.1: the log is time-stamped every day).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogTimestamp {
    /// Stable identifier.
    pub id: i64,
    /// The head record covered.
    pub seq: u64,
    /// Its chain hash (hex SHA-256): the digest the TSA signed.
    pub head_hash: String,
    /// When it was requested (gestore clock).
    pub requested_at: i64,
    /// The TSA it came from.
    pub tsa_url: String,
    /// The TSA's whole answer (DER `TimeStampResp`), as `openssl ts -verify -in` reads it.
    pub response: Vec<u8>,
}

/// The minutes the service recorded itself up ([`crate::Ledger::uptime`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Uptime {
    /// The first minute ever recorded (the service did not exist before), if any.
    pub since: Option<i64>,
    /// The recorded minutes of the period asked, as Unix times, in order.
    pub minutes: Vec<i64>,
}

/// A time stamp to keep ([`crate::Ledger::store_log_timestamp`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLogTimestamp {
    /// The head record covered.
    pub seq: u64,
    /// Its chain hash.
    pub head_hash: String,
    /// When it was requested.
    pub requested_at: i64,
    /// The TSA it came from.
    pub tsa_url: String,
    /// The TSA's DER `TimeStampResp`.
    pub response: Vec<u8>,
}

/// A point of the legal log's hash chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogHead {
    /// Sequence number of the record (0 before the first one).
    pub seq: u64,
    /// Its hash (the genesis value, 64 zeros, before the first record).
    pub hash: String,
}

/// The first inconsistency [`crate::Ledger::verify_log`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogFault {
    /// The record's hash does not follow from its contents and its
    /// predecessor: it was edited, moved, or a neighbour was replaced.
    Altered {
        /// The record.
        seq: u64,
    },
    /// Sequence numbers do not continue: records were removed (`found >
    /// expected`) or inserted (`found < expected`).
    OutOfSequence {
        /// The sequence number the chain needed next.
        expected: u64,
        /// The one stored there.
        found: u64,
    },
    /// The log ends before the last record ever appended: its tail was removed.
    Truncated {
        /// Last record present (the checkpoint's if none).
        last: u64,
        /// Last record appended.
        head: u64,
    },
    /// The records chain correctly but do not end in the recorded head hash.
    HeadMismatch {
        /// The last record.
        seq: u64,
    },
}

impl LogFault {
    /// The first sequence number that is not as it was written.
    pub fn seq(&self) -> u64 {
        match *self {
            LogFault::Altered { seq } | LogFault::HeadMismatch { seq } => seq,
            LogFault::OutOfSequence { expected, found } => expected.min(found),
            LogFault::Truncated { last, .. } => last + 1,
        }
    }
}

/// Outcome of [`crate::Ledger::verify_log`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogVerification {
    /// Records whose hash was recomputed.
    pub checked: u64,
    /// Where the chain starts: the last purged record, or genesis.
    pub checkpoint: LogHead,
    /// The last record appended. Publishing or time-stamping this hash (spec
    /// §8.1, daily marca temporale) is what protects the log against someone
    /// able to recompute the whole chain.
    pub head: LogHead,
    /// The first problem found, if any.
    pub fault: Option<LogFault>,
}

impl LogVerification {
    /// True when every record is as it was appended.
    pub fn is_ok(&self) -> bool {
        self.fault.is_none()
    }
}

/// A message for the outbound queue: one per destination domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewQueueEntry {
    /// The Message-ID of the message to send (envelope or receipt).
    pub msgid: String,
    /// SMTP `MAIL FROM`.
    pub mail_from: String,
    /// SMTP `RCPT TO`, all in `domain`.
    pub rcpt_to: Vec<String>,
    /// The destination domain (the relay resolves its MX).
    pub domain: String,
    /// The bytes to send, stored unchanged.
    pub message: Vec<u8>,
    /// When it was queued.
    pub created_at: i64,
    /// When it is first due: `created_at`, or later for an entry the gestore hands
    /// straight to its own delivery (the queue takes it only if that did not happen).
    pub due_at: i64,
    /// When to give up (spec §7.3: 24 h after `created_at`).
    pub expires_at: i64,
}

/// How much the outbound queue holds, for monitoring: one aggregate query, however long
/// the queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueSummary {
    /// Entries waiting for delivery or a retry.
    pub entries: u64,
    /// When the oldest of them was queued, seconds since the Unix epoch; `None` when empty.
    pub oldest_created_at: Option<i64>,
}

/// A queued outbound message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueEntry {
    /// Stable identifier of the entry.
    pub id: i64,
    /// The Message-ID of the message to send.
    pub msgid: String,
    /// SMTP `MAIL FROM`.
    pub mail_from: String,
    /// SMTP `RCPT TO`.
    pub rcpt_to: Vec<String>,
    /// The destination domain.
    pub domain: String,
    /// SHA-256 hex of the message (read it with [`crate::Blobs::read_blob`]).
    pub hash: String,
    /// Size of the message in bytes.
    pub size: u64,
    /// When it was queued.
    pub created_at: i64,
    /// When the next attempt is due.
    pub next_attempt_at: i64,
    /// Failed attempts so far.
    pub attempts: u32,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When to give up.
    pub expires_at: i64,
    /// Kept from relay by the administrator (`pecd queue hold`) until released; it still
    /// expires at `expires_at`.
    pub held: bool,
}

impl QueueEntry {
    /// True once the entry should be given up (and the sender notified).
    pub fn is_expired(&self, now: i64) -> bool {
        now >= self.expires_at
    }
}

/// Seconds after dispatch when the first (12 h) preavviso is due (spec §7.3).
pub const TWELVE_HOURS: i64 = 12 * 3600;
/// Seconds after dispatch by which the 24 h notice must be sent (spec §7.3);
/// the caller may send it from 22 h on.
pub const TWENTY_FOUR_HOURS: i64 = 24 * 3600;

/// Starts the 12 h / 24 h tracking of one PEC recipient of a dispatched envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTimer {
    /// The PEC identificativo of the transaction.
    pub identificativo: String,
    /// The PEC recipient (stored lowercase).
    pub recipient: String,
    /// The original sender, to whom notices go.
    pub sender: String,
    /// The original subject, repeated in the notices.
    pub subject: String,
    /// When the envelope was dispatched.
    pub dispatched_at: i64,
    /// Hash of the stored transport envelope, to rebuild notices from later.
    pub envelope: Option<String>,
}

/// The final outcome of one recipient of a transaction (spec §7.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Still waiting: timers run.
    Pending,
    /// Ricevuta di avvenuta consegna received.
    Delivered,
    /// Avviso di mancata consegna received.
    Error,
    /// Mancata consegna per virus received.
    Virus,
    /// The 24 h notice was sent; tracking ended.
    Timeout24,
}

impl Outcome {
    /// The spelling stored in the database.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Outcome::Pending => "pending",
            Outcome::Delivered => "delivered",
            Outcome::Error => "error",
            Outcome::Virus => "virus",
            Outcome::Timeout24 => "timeout24",
        }
    }

    /// Parses the stored spelling.
    pub(crate) fn parse(s: &str) -> Option<Self> {
        [
            Outcome::Pending,
            Outcome::Delivered,
            Outcome::Error,
            Outcome::Virus,
            Outcome::Timeout24,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
    }
}

/// The tracking state of one (identificativo, recipient).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timer {
    /// The PEC identificativo of the transaction.
    pub identificativo: String,
    /// The PEC recipient, lowercase.
    pub recipient: String,
    /// The original sender.
    pub sender: String,
    /// The original subject.
    pub subject: String,
    /// Hash of the stored transport envelope, if given.
    pub envelope: Option<String>,
    /// When the envelope was dispatched.
    pub dispatched_at: i64,
    /// When the first presa in carico covering the recipient arrived.
    pub presa_in_carico_at: Option<i64>,
    /// Whether an avvenuta consegna arrived (even after the 24 h notice).
    pub delivered: bool,
    /// The first final outcome; [`Outcome::Pending`] while timers run.
    pub outcome: Outcome,
    /// The 12 h preavviso was sent.
    pub notice12_sent: bool,
    /// The 24 h notice was sent.
    pub notice24_sent: bool,
}

/// Which of the two notices of spec §7.3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    /// The 12 h preavviso (no presa in carico, no outcome yet).
    Twelve,
    /// The 24 h notice (no outcome); sending it ends tracking.
    TwentyFour,
}

/// A notice the timer worker must send now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueNotice {
    /// Which notice.
    pub kind: NoticeKind,
    /// The recipient's state, with what the notice needs.
    pub timer: Timer,
}

/// An infected message for the virus store (spec §8.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewVirusEntry {
    /// When the virus was detected.
    pub at: i64,
    /// Message-ID (or identificativo) of the infected message.
    pub msgid: String,
    /// Its sender.
    pub sender: String,
    /// Its recipients.
    pub recipients: Vec<String>,
    /// What the scanner called the virus.
    pub virus: String,
    /// The infected message, stored unchanged.
    pub message: Vec<u8>,
}

/// An entry of the virus store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirusEntry {
    /// Stable identifier of the entry.
    pub id: i64,
    /// When the virus was detected.
    pub stored_at: i64,
    /// Message-ID (or identificativo) of the infected message.
    pub msgid: String,
    /// Its sender.
    pub sender: String,
    /// Its recipients.
    pub recipients: Vec<String>,
    /// What the scanner called the virus.
    pub virus: String,
    /// SHA-256 hex of the message (read it with [`crate::Blobs::read_blob`]).
    pub hash: String,
    /// Size in bytes.
    pub size: u64,
}

/// A mailbox delivery inside a [`Batch`] (same meaning as [`crate::Mailboxes::deliver`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    /// Account address.
    pub address: String,
    /// Destination folder.
    pub folder: String,
    /// The message, stored unchanged.
    pub bytes: Vec<u8>,
    /// Initial flags.
    pub flags: Vec<String>,
    /// INTERNALDATE, seconds since the Unix epoch.
    pub internaldate: i64,
}

/// A security archive copy inside a [`Batch`] (same meaning as [`crate::Mailboxes::archive`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewArchiveCopy {
    /// Account address the traffic concerns.
    pub address: String,
    /// The message, stored unchanged.
    pub bytes: Vec<u8>,
    /// Sent or received.
    pub direction: Direction,
    /// Caller's classification.
    pub kind: String,
    /// When it was archived.
    pub at: i64,
}

/// Everything one PEC step must make durable before it answers (e.g. the
/// access point before its `250`): applied by [`crate::Ledger::commit_batch`]
/// in one transaction, all or nothing, in the order of the fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    /// Messages for mailboxes (quota checked: one refusal refuses the batch).
    pub deliveries: Vec<NewDelivery>,
    /// Security archive copies.
    pub archive: Vec<NewArchiveCopy>,
    /// Outbound queue entries.
    pub queue: Vec<NewQueueEntry>,
    /// Virus store entries.
    pub virus: Vec<NewVirusEntry>,
    /// Timers to start (their envelope blob may come from `queue` above).
    pub timers: Vec<NewTimer>,
    /// Presa in carico to record on timers (as [`crate::Ledger::mark_presa_in_carico`]).
    pub presa_in_carico: Vec<PresaInCaricoUpdate>,
    /// Final outcomes to record on timers (as [`crate::Ledger::mark_outcome`]; a recipient
    /// without a timer is skipped, not an error).
    pub outcomes: Vec<OutcomeUpdate>,
    /// Notices sent (as [`crate::Ledger::mark_notice_sent`]), so that a 12 h / 24 h notice
    /// and the mark that stops it being due again are one durable step.
    pub notices_sent: Vec<NoticeSentUpdate>,
    /// Queue entries this step completes (as [`crate::Ledger::queue_complete`]), so that
    /// handling a queued message and removing it from the queue are one durable step. An
    /// entry already gone means another handler completed it: the batch is then
    /// [`AlreadyDone`].
    pub completed: Vec<i64>,
    /// The effects this step performs that must happen once: if any is already stored,
    /// the batch stores nothing and reports it [`AlreadyDone`].
    pub effects: Vec<NewEffect>,
    /// Legal log entries, appended in order.
    pub log: Vec<LogEntry>,
    /// Registry events of protocol offices, recorded with the delivery they are about.
    pub registry_events: Vec<NewRegistryEvent>,
}

impl Batch {
    /// Whether the batch stores or changes nothing.
    pub fn is_empty(&self) -> bool {
        self.deliveries.is_empty()
            && self.archive.is_empty()
            && self.queue.is_empty()
            && self.virus.is_empty()
            && self.timers.is_empty()
            && self.presa_in_carico.is_empty()
            && self.outcomes.is_empty()
            && self.notices_sent.is_empty()
            && self.completed.is_empty()
            && self.effects.is_empty()
            && self.log.is_empty()
            && self.registry_events.is_empty()
    }
}

/// An effect of a [`Batch`] that must happen once, and when it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEffect {
    /// What was done.
    pub key: EffectKey,
    /// When, seconds since the Unix epoch (keys are purged with the legal log).
    pub at: i64,
}

/// A notice recorded as sent inside a [`Batch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeSentUpdate {
    /// The transaction.
    pub identificativo: String,
    /// The recipient the notice is about.
    pub recipient: String,
    /// Which notice.
    pub kind: NoticeKind,
}

/// Why [`crate::Ledger::commit_batch`] stored nothing although nothing failed: what the
/// batch does was done already (a retry, a duplicate, another node or worker first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlreadyDone {
    /// This key of the batch's effects is stored.
    Effect(EffectKey),
    /// This queue entry the batch completes is gone.
    QueueEntry(i64),
}

/// A presa in carico inside a [`Batch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresaInCaricoUpdate {
    /// The transaction.
    pub identificativo: String,
    /// The recipients it covers (untracked ones are ignored).
    pub recipients: Vec<String>,
    /// When it was received.
    pub at: i64,
}

/// A final outcome for one recipient's timers inside a [`Batch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutcomeUpdate {
    /// The transaction.
    pub identificativo: String,
    /// The recipient.
    pub recipient: String,
    /// The outcome (the first final one stays).
    pub outcome: Outcome,
}

/// What [`crate::Ledger::commit_batch`] stored, item for item in the batch's order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Committed {
    /// Set when the batch was found done already; then nothing was stored and every list
    /// below is empty.
    pub already_done: Option<AlreadyDone>,
    /// One per delivery.
    pub delivered: Vec<Delivered>,
    /// One per archive copy kept (see [`ArchiveOptions::admit`]).
    pub archived: Vec<ArchiveEntry>,
    /// The addresses of the archive copies left out because their archive was full.
    pub archive_full: Vec<String>,
    /// One per queue entry.
    pub queued: Vec<QueueEntry>,
    /// One per virus store entry.
    pub virus: Vec<VirusEntry>,
    /// One per log entry.
    pub logged: Vec<LogRecord>,
}

/// A protocol office's registry event to record with a [`Batch`]: what its registry
/// learns about a PEC delivered to the office, or a receipt of a PEC it sent. Kept in
/// the store (the outbox) so that neither a crash nor a receiver down loses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRegistryEvent {
    /// The office mailbox, lowercase.
    pub address: String,
    /// What the event is about, unique per mailbox: a second event with the same key is
    /// not recorded (a replay makes none).
    pub key: String,
    /// What happened (`posta-certificata`, `avvenuta-consegna`, ...).
    pub kind: String,
    /// The event as JSON, what the registry reads.
    pub body: String,
    /// The index in [`Batch::deliveries`] of the message the event is about, so that the
    /// registry's protocol number reaches that message.
    pub delivery: Option<usize>,
    /// Whether a webhook waits for it (the office has one).
    pub push: bool,
    /// When, seconds since the Unix epoch.
    pub at: i64,
}

/// A registry event as stored, with its delivery to the webhook so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryEvent {
    /// Its id: increasing in commit order, the events cursor.
    pub id: i64,
    /// The office mailbox.
    pub address: String,
    /// What happened.
    pub kind: String,
    /// The event as JSON.
    pub body: String,
    /// When it was recorded.
    pub created_at: i64,
    /// The folder and UID of the message it is about, as delivered.
    pub message: Option<(String, u32)>,
    /// Whether the webhook still has to get it.
    pub pending: bool,
    /// Failed webhook attempts so far.
    pub attempts: u32,
    /// When the webhook is tried next (or when a sender's claim on it runs out).
    pub next_attempt_at: i64,
    /// When the webhook acknowledged it.
    pub sent_at: Option<i64>,
    /// The last webhook failure.
    pub last_error: Option<String>,
    /// The protocol number the registry gave the message, if it wrote it back.
    pub protocol: Option<ProtocolNumber>,
}

/// The registry's protocol number for the message of an event, kept in our view of the
/// message (never in its signed bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolNumber {
    /// The number, as the registry writes it.
    pub number: String,
    /// The registration date, as the registry writes it, if given.
    pub date: Option<String>,
    /// When it was written back, seconds since the Unix epoch.
    pub at: i64,
}

/// Which registry events to read: those after a cursor, of some domains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventQuery {
    /// Only events with a larger id (0: from the first).
    pub after: i64,
    /// Only events of mailboxes of these domains (lowercase); `None`: every domain.
    pub domains: Option<Vec<String>>,
    /// At most this many.
    pub limit: usize,
}
