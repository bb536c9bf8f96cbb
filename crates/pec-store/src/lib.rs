//! Durable state of the PEC provider: mail domains, accounts, folders, messages,
//! flags, quotas, the security archive, the hash-chained legal message log,
//! the outbound queue, the 12 h / 24 h timers and the virus store.
//!
//! Callers program against the [`Store`] traits (cut by their users: [`Directory`],
//! [`Mailboxes`], [`Blobs`], [`Ledger`], [`Maintenance`], [`Changes`]). Two backends:
//!
//! - [`SqliteStore`], the embedded one: metadata in SQLite (WAL, `synchronous=FULL`) and
//!   message bytes as content-addressed blobs (inside the database up to 256 KiB, files
//!   beyond: see [`blobs`]); a write returns only once it is durable, and concurrent
//!   writes share one commit (group commit).
//! - [`PgStore`], PostgreSQL, shared by every node of a gestore: the same model, message
//!   bytes included, with claims on queued work, one legal log chain and changes passed
//!   between nodes.

mod accounts;
mod administer;
mod archive;
mod batch;
pub mod blobs;
mod cached;
mod effects;
mod enti;
pub mod error;
mod export;
#[cfg(any(test, feature = "test-util"))]
pub mod faulty;
mod folders;
mod legal_log;
mod lookup;
mod maintenance;
mod messages;
mod methods;
pub mod model;
mod pg;
mod queue;
mod registry;
pub mod schema;
mod sqlite;
mod store;
#[cfg(any(test, feature = "test-util"))]
pub mod test_util;
pub mod timed;
mod timers;
mod timestamps;
mod uptime;
mod virus;
mod writer;

pub use accounts::RECEIPTS_FOLDER;
pub use effects::EffectKey;
pub use error::{BatchItem, Error, Result};
pub use export::{CSV_LIST_SEPARATOR, write_log_csv, write_log_jsonl};
pub use legal_log::GENESIS as LOG_GENESIS;
pub use model::{
    ARCHIVE_FOLDER, Account, Admin, AdminAction, AdminChange, Admission, AlreadyDone, ApiToken,
    ArchiveEntry, ArchiveOptions, ArchiveScope, Batch, CheckReport, Committed, Copied,
    DEFAULT_ARCHIVE_QUOTA, Delivered, Direction, Domain, DueNotice, Ente, EventQuery, FlagOp,
    Folder, LogEntry, LogFault, LogHead, LogQuery, LogRecord, LogTimestamp, LogVerification,
    MAILBOX_CREATED, MAILBOX_REACTIVATED, MAILBOX_REMOVED, MAILBOX_SUSPENDED, MailboxEvent,
    MessageMeta, NewAccount, NewArchiveCopy, NewDelivery, NewEffect, NewLogTimestamp,
    NewQueueEntry, NewRegistryEvent, NewTimer, NewVirusEntry, NoticeKind, NoticeSentUpdate,
    Outcome, OutcomeUpdate, PresaInCaricoUpdate, ProtocolNumber, QueueEntry, QueueSummary,
    RegistryEvent, SUSPENDED_MARK, SeenStored, Selected, TWELVE_HOURS, TWENTY_FOUR_HOURS, Timer,
    Uptime, Usage, VirusEntry,
};
pub use pg::migrate::{Migrated, from_sqlite as migrate_to_postgres};
pub use pg::{PgOptions, PgStore};
pub use sqlite::SqliteStore;
pub use store::{
    Blobs, Change, ChangeHook, Changes, Directory, Ledger, Mailboxes, Maintenance, Store,
};
