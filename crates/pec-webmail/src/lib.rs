//! The gestore's webmail, at `/webmail/` on the HTTPS listener: server-rendered pages in
//! Italian, no JavaScript, over the JMAP layer in-process ([`pec_jmap::Jmap`]): the same
//! Mailbox and Email objects, and the same `pec` property, a JMAP client reads.
//!
//! - [`routes`]: the paths, the login form, cookies and CSRF checks, search, downloads;
//! - [`sessions`]: server-side sessions, bounded in number, with an idle expiry;
//! - [`pages`]: the HTML of each page, every outside value escaped ([`html`]);
//! - [`receipts`]: a sent message's receipts and the state of each recipient;
//! - [`labels`]: Italian names of PEC kinds and daticert values;
//! - [`web`]: the web stack (headers, cookies, forms, the login token), which the
//!   administration console shares.

pub mod error;
pub mod html;
pub mod labels;
pub mod original;
pub mod pages;
pub mod receipts;
pub mod routes;
pub mod sessions;
pub mod web;

pub use error::{Error, Result};
pub use routes::{PREFIX, Webmail, serves};
pub use sessions::SessionLimits;
