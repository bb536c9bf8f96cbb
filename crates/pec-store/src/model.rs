//! The plain values the store takes and returns, shared by every backend.

/// A mail domain served by this provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    /// Lowercase domain name.
    pub name: String,
    /// Quota in bytes given to new accounts that do not set their own.
    pub default_quota: u64,
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

/// Bytes used by an account against its quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Sum of the sizes of the account's messages (security archive excluded).
    pub used: u64,
    /// The account's quota in bytes.
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

/// What [`crate::Store::deliver`] stored, once durable.
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
}

/// How [`crate::Store::store_flags`] combines the given flags with the present ones.
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

/// One entry of the security archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveEntry {
    /// Stable identifier of the entry.
    pub id: i64,
    /// Account address the traffic concerns.
    pub address: String,
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

/// Outcome of [`crate::Store::check`].
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
