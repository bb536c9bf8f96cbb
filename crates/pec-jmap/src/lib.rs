//! JMAP for PEC mailboxes: RFC 8620 (core) and RFC 8621 (mail) over the store the
//! IMAP server reads, with a capability of ours, `urn:pecd:params:jmap:pec`, that tells
//! a client what each message is in PEC terms (docs/JMAP.md).
//!
//! - [`http`]: the routes, Basic authentication, problem documents, downloads;
//! - [`api`]: a request checked and its method calls dispatched;
//! - [`protocol`]: the JSON shapes and result references;
//! - [`session`]: the session resource, capabilities and limits;
//! - [`mailbox`], [`mailbox_set`], [`email`], [`query`], [`changes`], [`set`], [`thread`],
//!   [`identity`]: the methods; [`pec`] the `pec` property; [`keywords`] flags;
//! - [`push`]: the event source (RFC 8620 §7.3), woken by the IMAP change hub;
//! - [`upload`]: uploaded blobs, kept in memory; [`import`]: Email/import; [`draft`]: Email/set create;
//!   [`snippet`]: SearchSnippet/get;
//!   [`submission`]: EmailSubmission/set through the gestore's access point;
//! - [`ids`] and [`state`]: how store objects and their versions are named.
//!
//! The web client of the gestore is to be built on this API.

pub mod api;
pub mod args;
pub mod blob;
pub mod changes;
pub mod draft;
pub mod email;
pub mod error;
pub mod http;
pub mod identity;
pub mod ids;
pub mod import;
pub mod keywords;
pub mod mailbox;
pub mod mailbox_set;
pub mod pec;
pub mod protocol;
pub mod push;
pub mod query;
pub mod session;
pub mod set;
pub mod snippet;
pub mod state;
pub mod submission;
pub mod thread;
pub mod upload;

pub use error::{Error, Result};
pub use http::{FolderChanged, Jmap, Login, ResponseBody, Unavailable, serves};
pub use pec::SignerTrust;
pub use push::{Push, PushLimits};
pub use session::Limits;
pub use submission::{AccessPoint, Verdict};
pub use upload::Uploads;
