//! The one error type of the crate, so callers map storage failures to a
//! protocol reply in one place (SMTP 4xx/5xx, IMAP NO).

use std::path::PathBuf;

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory operation failed; the path says where.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The database refused or failed an operation.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL refused or failed an operation.
    #[error("database error: {0}")]
    Postgres(#[from] postgres::Error),
    /// The database server cannot be reached or the connection to it broke (a restart, a
    /// failover, the network): temporary, the next call connects again. What the failed
    /// call was doing may or may not have been committed.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The backend does not do this; the text says what to use instead.
    #[error("not supported by this store: {0}")]
    Unsupported(&'static str),
    /// The shared transaction of a group commit failed, so no job in it was stored.
    #[error("group commit failed: {0}")]
    Commit(String),
    /// The writer thread is gone (the store is shutting down or it crashed).
    #[error("the store's writer thread has stopped")]
    WriterStopped,
    /// The database was written by a newer version of this program.
    #[error("database schema version {found} is newer than this program's {known}")]
    SchemaTooNew {
        /// Version recorded in the database.
        found: i64,
        /// Newest version this program knows.
        known: i64,
    },
    /// A blob name is not 64 lowercase hex digits.
    #[error("invalid blob hash {0:?}")]
    InvalidHash(String),
    /// A referenced blob file does not exist.
    #[error("blob {0} is missing")]
    BlobMissing(String),
    /// The delivery would take the account over its quota; nothing was stored.
    #[error("quota exceeded for {address}: {used} + {size} bytes > {quota}")]
    QuotaExceeded {
        /// The account.
        address: String,
        /// Bytes in use before the delivery.
        used: u64,
        /// Size of the refused message(s).
        size: u64,
        /// The account's quota.
        quota: u64,
    },
    /// No domain with this name.
    #[error("no such domain {0:?}")]
    NoSuchDomain(String),
    /// No ente with this name.
    #[error("no such ente {0:?}")]
    NoSuchEnte(String),
    /// The change would take an ente's mailboxes past its allotment; nothing was stored.
    #[error("allotment of ente {ente:?} exceeded: {requested} bytes > {allotment}")]
    AllotmentExceeded {
        /// The ente.
        ente: String,
        /// The quota its mailboxes would have in all.
        requested: u64,
        /// Its allotment.
        allotment: u64,
    },
    /// No API token with this name for the administrator.
    #[error("no such API token {0:?}")]
    NoSuchToken(String),
    /// No account with this address.
    #[error("no such account {0:?}")]
    NoSuchAccount(String),
    /// No folder with this name in the account.
    #[error("no such folder {0:?}")]
    NoSuchFolder(String),
    /// No live message with this UID in the folder.
    #[error("no such message uid {0}")]
    NoSuchMessage(u32),
    /// The name is already taken (domain, account or folder).
    #[error("{0:?} already exists")]
    AlreadyExists(String),
    /// `pecd store migrate` found something in the database it was to fill; the text
    /// says what. Nothing was copied.
    #[error("the target database is not empty: {0}")]
    TargetNotEmpty(String),
    /// The domain still has accounts and cannot be removed.
    #[error("domain {0:?} still has accounts")]
    DomainNotEmpty(String),
    /// The folder is created with the account (INBOX, Sent, ...) and cannot be renamed or deleted.
    #[error("folder {0:?} is a system folder")]
    SystemFolder(String),
    /// An address, domain or folder name is malformed.
    #[error("invalid name {0:?}")]
    InvalidName(String),
    /// No outbound queue entry with this id.
    #[error("no such queue entry {0}")]
    NoSuchQueueEntry(i64),
    /// No registry event with this id.
    #[error("no such registry event {0}")]
    NoSuchEvent(i64),
    /// No virus store entry with this id.
    #[error("no such virus store entry {0}")]
    NoSuchVirusEntry(i64),
    /// No timer for this identificativo and recipient.
    #[error("no timer for {recipient:?} in {identificativo:?}")]
    NoSuchTimer {
        /// The transaction.
        identificativo: String,
        /// The recipient.
        recipient: String,
    },
    /// One item of a [`crate::Batch`] failed, so nothing of the batch was stored.
    #[error("batch item {item}: {source}")]
    BatchItem {
        /// Which item (shown as e.g. `deliveries[2]`).
        item: BatchItem,
        /// Why it failed.
        source: Box<Error>,
    },
    /// A value in the database is outside its valid range (corruption or a bug).
    #[error("corrupt value in database: {0}")]
    Corrupt(String),
}

/// Which item of a [`crate::Batch`] failed, so the caller can act on it (e.g. tell the
/// sender which recipient's mailbox is full) without parsing a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchItem {
    /// A delivery, with the mailbox it was for.
    Delivery {
        /// Its index in [`crate::Batch::deliveries`].
        index: usize,
        /// Its account address.
        address: String,
    },
    /// An archive copy, by index.
    Archive(usize),
    /// A queue entry, by index.
    Queue(usize),
    /// A virus store entry, by index.
    Virus(usize),
    /// A timer to start, by index.
    Timer(usize),
    /// A presa in carico update, by index.
    PresaInCarico(usize),
    /// An outcome update, by index.
    Outcome(usize),
    /// A notice marked sent, by index.
    NoticeSent(usize),
    /// A queue entry to complete, by index.
    Completed(usize),
    /// An effect key, by index.
    Effect(usize),
    /// The log records (appended as one).
    Log,
    /// A registry event, by index.
    RegistryEvent(usize),
}

impl std::fmt::Display for BatchItem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (list, index) = match self {
            BatchItem::Delivery { index, .. } => ("deliveries", *index),
            BatchItem::Archive(i) => ("archive", *i),
            BatchItem::Queue(i) => ("queue", *i),
            BatchItem::Virus(i) => ("virus", *i),
            BatchItem::Timer(i) => ("timers", *i),
            BatchItem::PresaInCarico(i) => ("presa_in_carico", *i),
            BatchItem::Outcome(i) => ("outcomes", *i),
            BatchItem::NoticeSent(i) => ("notices_sent", *i),
            BatchItem::Completed(i) => ("completed", *i),
            BatchItem::Effect(i) => ("effects", *i),
            BatchItem::RegistryEvent(i) => ("registry_events", *i),
            BatchItem::Log => return f.write_str("log"),
        };
        write!(f, "{list}[{index}]")
    }
}

/// Result with the crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
