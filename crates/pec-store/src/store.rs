//! The storage interface the rest of the provider programs against, cut by what uses
//! it: [`Directory`] (domains and accounts: the admin commands, logins, routing),
//! [`Mailboxes`] (what IMAP and POP3 users see), [`Ledger`] (the gestore's own books:
//! queue, timers, legal log, effect keys, virus store, the durable batch), [`Blobs`]
//! (stored bytes by hash), [`Maintenance`] (purges, check, backup) and [`Changes`] (what
//! other nodes did). [`Store`] is all of them, so `Arc<dyn Store>` reaches everything;
//! a caller that needs one part may take only that part.
//!
//! The traits are synchronous: a call may wait for a disk or a database. Async code
//! calls them from a thread that may block — `tokio::task::spawn_blocking` (pec-imap) or
//! `block_in_place` (pec-gestore `service::blocking`) — never directly on a runtime
//! thread. Every backend must be callable from any thread, including from inside a tokio
//! runtime of either flavour: it never starts or enters a runtime on the caller's thread.

use std::path::Path;
use std::sync::Arc;

use crate::effects::EffectKey;
use crate::error::{Error, Result};
use crate::model::{
    Account, Admin, AdminChange, ApiToken, ArchiveEntry, ArchiveOptions, Batch, CheckReport,
    Committed, Copied, Delivered, Direction, Domain, DueNotice, Ente, EventQuery, FlagOp, Folder,
    LogEntry, LogHead, LogQuery, LogRecord, LogTimestamp, LogVerification, MailboxEvent,
    MessageMeta, NewAccount, NewLogTimestamp, NewQueueEntry, NewTimer, NewVirusEntry, NoticeKind,
    Outcome, QueueEntry, QueueSummary, RegistryEvent, SeenStored, Selected, Timer, Uptime, Usage,
    VirusEntry,
};

/// Domains and accounts: who is hosted, with which password and quota. Every method that
/// changes state returns only after the change is durable; a method that fails changed
/// nothing. Addresses are case-insensitive.
pub trait Directory: Send + Sync {
    /// Adds a mail domain with the quota its new accounts get by default.
    fn add_domain(&self, name: &str, default_quota: u64) -> Result<()>;
    /// All domains, by name.
    fn list_domains(&self) -> Result<Vec<Domain>>;
    /// Removes a domain that has no accounts.
    fn remove_domain(&self, name: &str) -> Result<()>;
    /// Creates an account with INBOX, Sent, Drafts, Trash, Junk (and Ricevute if asked).
    fn create_account(&self, new: &NewAccount) -> Result<Account>;
    /// The account with this address.
    fn account(&self, address: &str) -> Result<Account>;
    /// The account with this address, `None` if there is none (or the address is not
    /// one): the answer "does not exist", kept apart from an error, which means "could
    /// not find out" and must never be taken for it.
    fn find_account(&self, address: &str) -> Result<Option<Account>> {
        match self.account(address) {
            Ok(a) => Ok(Some(a)),
            Err(Error::NoSuchAccount(_) | Error::InvalidName(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }
    /// Accounts by address, only those of `domain` if given.
    fn list_accounts(&self, domain: Option<&str>) -> Result<Vec<Account>>;
    /// Removes an account and its mailbox; its security archive stays.
    fn remove_account(&self, address: &str) -> Result<()>;
    /// Replaces the password hash (computed by the caller).
    fn set_password_hash(&self, address: &str, hash: &str) -> Result<()>;
    /// Sets the quota in bytes.
    fn set_quota(&self, address: &str, quota: u64) -> Result<()>;
    /// Files PEC receipts in `Ricevute` (created if missing) or, when `on` is false, in
    /// INBOX again; the `Ricevute` folder and its messages stay either way.
    fn set_receipts_folder(&self, address: &str, on: bool) -> Result<()>;
    /// Bytes used and quota.
    fn usage(&self, address: &str) -> Result<Usage>;
    /// Adds an ente owning `ente.domains`, which must be hosted and owned by no other
    /// ente ([`Error::AlreadyExists`] names a domain owned already).
    fn add_ente(&self, ente: &Ente) -> Result<()>;
    /// Every ente with its domains, by name.
    fn list_enti(&self) -> Result<Vec<Ente>>;
    /// Adds an administrator (of an ente that must exist, or of the gestore).
    fn add_admin(&self, admin: &Admin) -> Result<()>;
    /// The administrator with this login, `None` if there is none.
    fn find_admin(&self, login: &str) -> Result<Option<Admin>>;
    /// Keeps a change in a mailbox's life, for billing.
    fn record_mailbox_event(&self, event: &MailboxEvent) -> Result<()>;
    /// Every mailbox event with `at < to`, by address, then time, then as recorded.
    fn mailbox_events(&self, to: i64) -> Result<Vec<MailboxEvent>>;
    /// Applies an administrative change with its mailbox event and its legal log record,
    /// all in one transaction (see [`AdminChange`]); `false` if there was nothing to
    /// change (and nothing was recorded).
    fn administer(&self, change: &AdminChange) -> Result<bool>;
    /// The administrator an API token acts for, by the token's SHA-256 (hex).
    fn find_token(&self, hash: &str) -> Result<Option<Admin>>;
    /// The API tokens of one administrator (or of all), by login and name.
    fn list_tokens(&self, login: Option<&str>) -> Result<Vec<ApiToken>>;
}

/// The mailboxes as their users see them: folders, messages, flags, and the security
/// archive of an address. Durable on return, as [`Directory`].
pub trait Mailboxes: Send + Sync {
    /// Stores a message in a folder (delivery point or IMAP APPEND). Refused
    /// with [`crate::Error::QuotaExceeded`], storing nothing, if it would
    /// take the account over quota.
    fn deliver(
        &self,
        address: &str,
        folder: &str,
        bytes: &[u8],
        flags: &[String],
        internaldate: i64,
    ) -> Result<Delivered>;
    /// The account's folders, INBOX first.
    fn list_folders(&self, address: &str) -> Result<Vec<Folder>>;
    /// Creates a user folder.
    fn create_folder(&self, address: &str, name: &str) -> Result<()>;
    /// Renames a user folder, keeping its messages and UIDVALIDITY.
    fn rename_folder(&self, address: &str, from: &str, to: &str) -> Result<()>;
    /// Deletes a user folder and its messages.
    fn delete_folder(&self, address: &str, name: &str) -> Result<()>;
    /// Subscribes or unsubscribes a name; a folder need not exist (RFC 3501 6.3.6).
    fn set_subscribed(&self, address: &str, name: &str, subscribed: bool) -> Result<()>;
    /// The subscribed names, including those of folders that no longer exist (LSUB,
    /// LIST (SUBSCRIBED) shows them `\NonExistent`).
    fn subscriptions(&self, address: &str) -> Result<Vec<String>>;
    /// What SELECT reports about a folder.
    fn select(&self, address: &str, folder: &str) -> Result<Selected>;
    /// Metadata of the folder's messages, by UID.
    fn messages(&self, address: &str, folder: &str) -> Result<Vec<MessageMeta>>;
    /// UIDs expunged after `modseq` (QRESYNC VANISHED).
    fn expunged_since(&self, address: &str, folder: &str, modseq: u64) -> Result<Vec<u32>>;
    /// The bytes of a message, exactly as delivered.
    fn fetch(&self, address: &str, folder: &str, uid: u32) -> Result<Vec<u8>>;
    /// Changes flags; returns the messages that changed, with their new modseq.
    fn store_flags(
        &self,
        address: &str,
        folder: &str,
        uids: &[u32],
        op: FlagOp,
        flags: &[String],
    ) -> Result<Vec<MessageMeta>>;
    /// Removes `\Deleted` messages (only among `uids` if given); returns their UIDs.
    fn expunge(&self, address: &str, folder: &str, uids: Option<&[u32]>) -> Result<Vec<u32>>;
    /// Copies messages to another folder (counts against quota).
    fn copy(&self, address: &str, from: &str, uids: &[u32], to: &str) -> Result<Copied>;
    /// Moves messages to another folder.
    fn move_messages(&self, address: &str, from: &str, uids: &[u32], to: &str) -> Result<Copied>;
    /// Keeps a copy of PEC traffic in the security archive (not counted in the mailbox
    /// quota), whatever the address's [`ArchiveOptions`]: those are applied to the copies
    /// of a [`Batch`], the gestore's path.
    fn archive(
        &self,
        address: &str,
        bytes: &[u8],
        direction: Direction,
        kind: &str,
        at: i64,
    ) -> Result<ArchiveEntry>;
    /// An address's archive entries, in arrival (UID) order.
    fn list_archive(&self, address: &str) -> Result<Vec<ArchiveEntry>>;
    /// The bytes of an archive entry.
    fn read_archive(&self, id: i64) -> Result<Vec<u8>>;
    /// The bytes of the entry `uid` of the address's archive folder
    /// ([`Error::NoSuchMessage`] if it has none such): one index lookup, for IMAP FETCH.
    fn read_archive_of(&self, address: &str, uid: u32) -> Result<Vec<u8>>;
    /// What SELECT reports about the address's archive folder (the folder
    /// [`crate::ARCHIVE_FOLDER`] shows), made on first use: its UIDVALIDITY never
    /// changes, its UIDs are never given twice.
    fn select_archive(&self, address: &str) -> Result<Selected>;
    /// The entries of the address's archive folder as messages, by UID: `\Seen` is the
    /// address's read mark, the modseq that of the entry's last change.
    fn archive_messages(&self, address: &str) -> Result<Vec<MessageMeta>>;
    /// Marks entries `uids` of the address's archive folder read or unread, except those
    /// changed after `unchanged_since` (RFC 7162 UNCHANGEDSINCE); the entries themselves
    /// never change, and UIDs the folder does not have are ignored.
    fn set_archive_seen(
        &self,
        address: &str,
        uids: &[u32],
        seen: bool,
        unchanged_since: Option<u64>,
    ) -> Result<SeenStored>;
    /// What the address's archive keeps and its quota ([`ArchiveOptions::default`] until
    /// set).
    fn archive_options(&self, address: &str) -> Result<ArchiveOptions>;
    /// Sets what the archive of mailbox `address` keeps from now on and its quota (never
    /// 0); entries already kept stay.
    fn set_archive_options(&self, address: &str, options: &ArchiveOptions) -> Result<()>;
    /// Bytes held by the address's archive and its quota.
    fn archive_usage(&self, address: &str) -> Result<Usage>;
}

/// Stored bytes by their SHA-256 (queued messages, timer envelopes, virus store entries).
pub trait Blobs: Send + Sync {
    /// The bytes of any stored blob by hash (queued messages, timer envelopes,
    /// virus store entries).
    fn read_blob(&self, hash: &str) -> Result<Vec<u8>>;
}

/// The gestore's own books: the durable batch of each PEC step, effect keys, the legal
/// log, the outbound queue, the 12 h / 24 h timers and the virus store. Durable on
/// return, as [`Directory`]; times are seconds since the Unix epoch.
pub trait Ledger: Send + Sync {
    /// Stores everything in `batch` in one transaction, all or nothing: if
    /// any item fails (a delivery over quota, a timer already started, ...)
    /// nothing is stored and [`crate::Error::BatchItem`] names the item.
    /// If one of its effect keys is already stored, or a queue entry it completes is
    /// gone, nothing is stored either and [`Committed::already_done`] says why: the
    /// effect happened already, which is not an error.
    /// The access point calls this before its `250`.
    fn commit_batch(&self, batch: Batch) -> Result<Committed>;
    /// Registry events matching `query`, by id (the cursor).
    fn registry_events(&self, query: &EventQuery) -> Result<Vec<RegistryEvent>>;
    /// The registry event with this id ([`Error::NoSuchEvent`] if none).
    fn registry_event(&self, id: i64) -> Result<RegistryEvent>;
    /// Registry events a webhook waits for, due at `now`, earliest first, at most
    /// `limit`: claimed until `claim_until` (their next attempt is moved there), so a
    /// sender that dies leaves them due again then, and another node takes none meanwhile.
    fn registry_events_due(
        &self,
        now: i64,
        claim_until: i64,
        limit: usize,
    ) -> Result<Vec<RegistryEvent>>;
    /// Records that the webhook acknowledged an event at `at`.
    fn registry_event_sent(&self, id: i64, at: i64) -> Result<()>;
    /// Records a failed webhook attempt and when to try again.
    fn registry_event_retry(&self, id: i64, next_attempt_at: i64, error: &str) -> Result<()>;
    /// Whether each of `keys` is stored (in order): which effects already happened.
    fn effects_done(&self, keys: &[EffectKey]) -> Result<Vec<bool>>;
    /// Appends entries to the legal log in one transaction, in order; returns
    /// the records with their sequence numbers and chain hashes.
    fn append_log(&self, entries: &[LogEntry]) -> Result<Vec<LogRecord>>;
    /// Recomputes the log's hash chain from the checkpoint to the head and
    /// reports the first record that is not as it was appended.
    fn verify_log(&self) -> Result<LogVerification>;
    /// Log records matching the query, by sequence number.
    fn search_log(&self, query: &LogQuery) -> Result<Vec<LogRecord>>;
    /// The log's head (the last record appended), without walking the chain: what a
    /// time stamp covers.
    fn log_head(&self) -> Result<LogHead>;
    /// Keeps a time-stamping authority's time stamp of the log's head.
    fn store_log_timestamp(&self, stamp: &NewLogTimestamp) -> Result<LogTimestamp>;
    /// Every kept time stamp, oldest first.
    fn list_log_timestamps(&self) -> Result<Vec<LogTimestamp>>;
    /// How many log records of each event have `from <= at < to`, by event: the
    /// counts of the service report.
    fn count_log_events(&self, from: i64, to: i64) -> Result<Vec<(String, u64)>>;
    /// Records that the service was up in the minute starting at `minute` (a multiple
    /// of 60); recording a minute twice, from any node, is harmless.
    fn record_uptime(&self, minute: i64) -> Result<()>;
    /// The minutes with `from <= minute < to` the service recorded itself up, and the
    /// first one ever.
    fn uptime(&self, from: i64, to: i64) -> Result<Uptime>;
    /// Queues a message for relay to another domain.
    fn enqueue(&self, entry: &NewQueueEntry) -> Result<QueueEntry>;
    /// Queue entries due at `now` (expired ones included: the caller checks
    /// [`QueueEntry::is_expired`]), earliest first, at most `limit`.
    ///
    /// A backend shared by several nodes claims them: it returns only entries no other
    /// node holds and holds them for this node until `now` plus its lease, or until
    /// completed, retried or failed ([`Ledger::queue_complete`], [`Ledger::queue_retry`],
    /// [`Ledger::queue_fail`], [`Batch::completed`]); a node that dies leaves them to the
    /// others when the lease runs out. A node's own claims come back to it at its next
    /// call (a node's passes over the queue follow one another). The embedded backend
    /// does not lease. Either way a
    /// second handler of one entry is harmless: a batch that completes an entry gone is
    /// done already, and the effect keys stop a second effect.
    fn queue_due(&self, now: i64, limit: usize) -> Result<Vec<QueueEntry>>;
    /// Removes a queue entry that was relayed.
    fn queue_complete(&self, id: i64) -> Result<()>;
    /// Records a failed attempt and when to try again (never after expiry).
    fn queue_retry(&self, id: i64, next_attempt_at: i64, error: &str) -> Result<QueueEntry>;
    /// Removes a queue entry given up on and returns it, for the notice.
    fn queue_fail(&self, id: i64) -> Result<QueueEntry>;
    /// Holds a queue entry from relay, or releases it (admin); a held entry is still
    /// given up when it expires.
    fn queue_hold(&self, id: i64, held: bool) -> Result<QueueEntry>;
    /// Makes a queue entry due at `at` (never past its expiry) and releases it (admin).
    fn queue_reschedule(&self, id: i64, at: i64) -> Result<QueueEntry>;
    /// Every queue entry, oldest first (admin).
    fn list_queue(&self) -> Result<Vec<QueueEntry>>;
    /// How many entries the queue holds and the oldest one's age (metrics), without
    /// reading the entries.
    fn queue_summary(&self) -> Result<QueueSummary>;
    /// Starts the 12 h / 24 h timers of PEC recipients, all or none.
    fn start_timers(&self, timers: &[NewTimer]) -> Result<()>;
    /// Records a presa in carico at `at` covering `recipients` of a
    /// transaction; returns how many timers it changed.
    fn mark_presa_in_carico(
        &self,
        identificativo: &str,
        recipients: &[String],
        at: i64,
    ) -> Result<u64>;
    /// Records a final outcome (delivered, error, virus) for a recipient,
    /// which stops its timers; returns its state.
    fn mark_outcome(
        &self,
        identificativo: &str,
        recipient: &str,
        outcome: Outcome,
    ) -> Result<Timer>;
    /// Notices due at `now`; the 24 h one from `twenty_four_after` seconds
    /// after dispatch (spec: between 22 h and 24 h). A backend shared by several nodes
    /// claims their timers as [`Ledger::queue_due`] claims queue entries: a notice
    /// marked sent or an outcome recorded releases the claim.
    fn due_notices(&self, now: i64, twenty_four_after: i64) -> Result<Vec<DueNotice>>;
    /// Records that a notice was sent (the 24 h one ends tracking).
    fn mark_notice_sent(
        &self,
        identificativo: &str,
        recipient: &str,
        kind: NoticeKind,
    ) -> Result<()>;
    /// The timers of a transaction, by recipient.
    fn timers(&self, identificativo: &str) -> Result<Vec<Timer>>;
    /// Keeps an infected message in the virus store.
    fn store_virus(&self, entry: &NewVirusEntry) -> Result<VirusEntry>;
    /// Every virus store entry, oldest first.
    fn list_virus(&self) -> Result<Vec<VirusEntry>>;
    /// One virus store entry.
    fn virus_entry(&self, id: i64) -> Result<VirusEntry>;
}

/// Retention purges and whole-store checks, for the workers and the admin commands.
pub trait Maintenance: Send + Sync {
    /// Deletes archive entries stored before `cutoff`; returns how many.
    fn purge_archive(&self, cutoff: i64) -> Result<u64>;
    /// Removes the log's oldest records up to the first one at or after
    /// `cutoff`, keeping the chain verifiable from a checkpoint; refuses if
    /// the records to remove fail verification. Returns how many.
    fn purge_log(&self, cutoff: i64) -> Result<u64>;
    /// Deletes virus store entries stored before `cutoff`; returns how many.
    fn purge_virus(&self, cutoff: i64) -> Result<u64>;
    /// Deletes the effect keys stored before `cutoff`; returns how many.
    fn purge_effects(&self, cutoff: i64) -> Result<u64>;
    /// Deletes the uptime minutes and the log time stamps from before `cutoff` (the log
    /// records those stamps covered are gone at that age too); returns how many.
    fn purge_proofs(&self, cutoff: i64) -> Result<u64>;
    /// Deletes the protocol offices' registry events made before `cutoff`, delivered to
    /// their webhook or not: the log records and archive copies of the messages they
    /// describe are gone at that age too. Returns how many.
    fn purge_events(&self, cutoff: i64) -> Result<u64>;
    /// Verifies every referenced blob (re-hashed, whether inline or a file), the
    /// database's integrity and each account's usage counter.
    fn check(&self) -> Result<CheckReport>;
    /// Writes a consistent copy of the store into the empty or new directory
    /// `dest`, while the store keeps running; returns the number of blobs copied.
    fn backup(&self, dest: &Path) -> Result<u64>;
}

/// A change made by another node sharing the store, which this node's sessions and
/// workers must hear about as they hear about their own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A folder of a mailbox changed (delivery, flags, expunge, copy or move): wakes the
    /// IMAP sessions watching it.
    Folder {
        /// The account, lowercase.
        address: String,
        /// The folder.
        folder: String,
    },
    /// An entry was queued: wakes the queue workers.
    Queued,
}

/// What [`Changes::subscribe`] calls with each change; it runs on a thread of the store
/// and must return quickly.
pub type ChangeHook = Arc<dyn Fn(&Change) + Send + Sync>;

/// Changes made by other nodes. A store used by one process only (the embedded one)
/// has none to report: its callers' own hooks already see every change.
pub trait Changes: Send + Sync {
    /// Calls `hook` with every change another node makes from now on, for as long as the
    /// caller keeps `hook` (the store holds it weakly). Changes made while the connection
    /// to the other nodes is down are lost; the workers' periodic passes and the IMAP
    /// sessions' next command catch up on them.
    fn subscribe(&self, hook: &ChangeHook) -> Result<()> {
        let _ = hook;
        Ok(())
    }
}

/// Durable state of the gestore: every part above. Implemented by every type that
/// implements them all, so callers holding an `Arc<dyn Store>` reach everything.
pub trait Store: Directory + Mailboxes + Ledger + Blobs + Maintenance + Changes {}

impl<T: Directory + Mailboxes + Ledger + Blobs + Maintenance + Changes + ?Sized> Store for T {}
