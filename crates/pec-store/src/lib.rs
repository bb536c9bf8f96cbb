//! Durable state of the PEC provider: mail domains, accounts, folders, messages,
//! flags, quotas and the security archive.
//!
//! Callers program against the [`Store`] trait. The embedded backend,
//! [`SqliteStore`], keeps metadata in SQLite (WAL, `synchronous=FULL`) and
//! message bytes in content-addressed blob files; a write returns only once
//! it is durable, and concurrent writes share one commit (group commit).

mod accounts;
mod archive;
pub mod blobs;
pub mod error;
mod folders;
mod lookup;
mod maintenance;
mod messages;
pub mod model;
pub mod schema;
mod sqlite;
mod store;
mod writer;

pub use error::{Error, Result};
pub use model::{
    Account, ArchiveEntry, CheckReport, Copied, Delivered, Direction, Domain, FlagOp, Folder,
    MessageMeta, NewAccount, Selected, Usage,
};
pub use sqlite::SqliteStore;
pub use store::Store;
