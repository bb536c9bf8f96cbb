//! The gestore's webmail, at `/webmail/` on the HTTPS listener: server-rendered pages in
//! Italian, no JavaScript, over the JMAP layer in-process ([`pec_jmap::Jmap`]): the same
//! Mailbox and Email objects, and the same `pec` property, a JMAP client reads.
//!
//! - [`routes`]: the paths, the login form, cookies and CSRF checks, search, downloads,
//!   the quota bar and "Verifica firma";
//! - [`send`]: the compose form's POST: [`form_data`] reads it, [`compose`] builds the
//!   message, the gestore's access point judges it, a copy goes to "Posta inviata";
//! - [`reply`]: "Rispondi" and "Rispondi a tutti" fill the compose form in;
//! - [`signed`]: what the verification of a `.p7m` attachment shows;
//! - [`sessions`]: server-side sessions, bounded in number, with an idle expiry;
//! - [`pages`]: the HTML of each page, every outside value escaped ([`html`]);
//! - [`receipts`]: a sent message's receipts and the state of each recipient;
//! - [`labels`]: Italian names of PEC kinds and daticert values;
//! - [`web`]: the web stack (headers, cookies, forms, the login token), which the
//!   administration console shares.

pub mod compose;
pub mod error;
pub mod form_data;
pub mod html;
pub mod labels;
pub mod original;
pub mod pages;
pub mod receipts;
pub mod reply;
pub mod routes;
pub mod send;
pub mod sessions;
pub mod signed;
pub mod web;

pub use error::{Error, Result};
pub use routes::{PREFIX, Webmail, serves};
pub use sessions::SessionLimits;
