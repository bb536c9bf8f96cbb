//! Durable state of the PEC provider: mail domains, accounts, folders, messages,
//! flags, quotas and the security archive.
//!
//! Embedded backend: [`SqliteStore`] keeps metadata in SQLite (WAL,
//! `synchronous=FULL`) and message bytes in content-addressed blob files.

pub mod blobs;
pub mod error;
pub mod schema;

pub use error::{Error, Result};
