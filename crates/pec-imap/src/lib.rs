//! IMAP4rev1 and POP3 servers over the PEC mailbox store.

pub mod error;
mod mime;
mod notify;
mod password;

pub use error::{Error, Result};
pub use notify::Notifier;
pub use password::{hash_password, verify_password};
