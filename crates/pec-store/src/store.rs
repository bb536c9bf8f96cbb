//! The storage interface the rest of the provider programs against, so a
//! PostgreSQL + object-store backend can replace the embedded one later.

use std::path::Path;

use crate::error::Result;
use crate::model::{
    Account, ArchiveEntry, CheckReport, Copied, Delivered, Direction, Domain, FlagOp, Folder,
    MessageMeta, NewAccount, Selected, Usage,
};

/// Durable mailbox storage. Every method that changes state returns only
/// after the change is durable; a method that fails changed nothing.
/// Addresses are case-insensitive; times are seconds since the Unix epoch.
pub trait Store: Send + Sync {
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
    /// Accounts by address, only those of `domain` if given.
    fn list_accounts(&self, domain: Option<&str>) -> Result<Vec<Account>>;
    /// Removes an account and its mailbox; its security archive stays.
    fn remove_account(&self, address: &str) -> Result<()>;
    /// Replaces the password hash (computed by the caller).
    fn set_password_hash(&self, address: &str, hash: &str) -> Result<()>;
    /// Sets the quota in bytes.
    fn set_quota(&self, address: &str, quota: u64) -> Result<()>;
    /// Bytes used and quota.
    fn usage(&self, address: &str) -> Result<Usage>;

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
    /// Subscribes or unsubscribes a folder.
    fn set_subscribed(&self, address: &str, name: &str, subscribed: bool) -> Result<()>;
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

    /// Keeps a copy of PEC traffic in the security archive (not counted in quota).
    fn archive(
        &self,
        address: &str,
        bytes: &[u8],
        direction: Direction,
        kind: &str,
        at: i64,
    ) -> Result<ArchiveEntry>;
    /// An address's archive entries, oldest first.
    fn list_archive(&self, address: &str) -> Result<Vec<ArchiveEntry>>;
    /// The bytes of an archive entry.
    fn read_archive(&self, id: i64) -> Result<Vec<u8>>;
    /// Deletes archive entries stored before `cutoff`; returns how many.
    fn purge_archive(&self, cutoff: i64) -> Result<u64>;

    /// Verifies every referenced blob and the database's integrity.
    fn check(&self) -> Result<CheckReport>;
    /// Writes a consistent copy of the store into the empty or new directory
    /// `dest`, while the store keeps running; returns the number of blobs copied.
    fn backup(&self, dest: &Path) -> Result<u64>;
}
