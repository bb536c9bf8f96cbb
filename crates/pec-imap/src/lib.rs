//! IMAP4rev1 and POP3 servers over the PEC mailbox store, for the users'
//! mail clients (Thunderbird, Outlook, phones).
//!
//! Start a server with [`serve_imap`] / [`serve_pop3`] on a bound listener,
//! sharing one [`Config`] (store, [`Notifier`], TLS, [`Limits`]); call
//! [`Notifier::changed`] after delivering to a folder so IDLE clients see it
//! at once. [`imap_session`] and [`pop3_session`] run one session over any
//! byte stream (tests, fuzzing). Logins are refused until the connection
//! is private (implicit TLS or STARTTLS/STLS); passwords are argon2 PHC
//! strings made with [`hash_password`], checked by the shared
//! [`pec_net::Authenticator`] of [`Limits::auth`].
//!
//! The security archive is shown over IMAP as the folder [`ARCHIVE_FOLDER`], whose
//! entries cannot change or go but can be marked read (`\Seen`) by their address.

mod address;
mod append_command;
mod cte;
pub mod error;
mod esearch;
mod id_stream;
mod imap;
mod input;
mod listext;
mod mime;
mod notify;
mod notify_command;
mod ordering;
mod pattern;
mod pop3;
mod scan;
mod search_return;
mod server;
mod subject;
mod threading;

pub use error::{Error, Result};
pub use imap::ARCHIVE_FOLDER;
pub use notify::{Changes, Notifier, Watcher};
pub use pec_net::{hash_password, verify_password};
pub use server::{Config, Limits, imap_session, pop3_session, serve_imap, serve_pop3};

/// Internals the fuzz targets in `fuzz/` drive directly; not an API to build on.
#[doc(hidden)]
pub mod fuzzing {
    /// Whether `name` matches the LIST pattern `pattern`; `None` when the pattern is
    /// refused as too long.
    pub fn list_pattern_matches(pattern: &[u8], name: &[u8]) -> Option<bool> {
        crate::pattern::Pattern::new(pattern)
            .ok()
            .map(|p| p.matches(name))
    }

    /// Reads `data` as the rest of a pre-login ID streamed past the pre-login bound,
    /// whole and in pieces of `chunk` bytes; panics if the readings differ or what is
    /// kept goes over its bounds.
    pub fn id_stream(data: &[u8], chunk: usize) {
        crate::id_stream::check(data, chunk);
    }

    /// Parses `message` as an APPEND (MULTIAPPEND, CATENATE) and the IMAP URLs it
    /// names; panics if what is kept goes over its bounds.
    pub fn append_command(message: &[u8]) {
        crate::append_command::check(message);
    }

    /// Whether `message` (a whole command, tag to CRLF) parses as a SEARCH or SORT
    /// with RETURN options or as CANCELUPDATE; `None` when it is neither.
    pub fn search_return(message: &[u8]) -> Option<bool> {
        crate::search_return::parse(message).map(|r| r.is_ok())
    }
}
