//! The network front-end of the gestore, shared by SMTP, IMAP, POP3 and HTTP so that every
//! listener defends itself the same way:
//!
//! - [`listener`]: one accept loop ([`serve`]) with a per-IP and a global connection limit,
//!   accept errors (out of file descriptors) survived with a backoff, implicit TLS with a
//!   handshake timeout, `TCP_NODELAY`, and a graceful drain at shutdown;
//! - [`conn`]: the connection a session reads and writes ([`Conn`]), plain or TLS, upgradable
//!   once (STARTTLS/STLS), whose reads can end when the server shuts down;
//! - [`write_timeout`]: writes that fail when a client stops reading ([`WriteTimeout`]);
//! - [`sasl`]: AUTH PLAIN and LOGIN decoding;
//! - [`password`] and [`auth`]: the argon2 password format and the one password check
//!   ([`Authenticator`]): a bounded pool of verifications, the same work for unknown users, a
//!   growing per-IP penalty after failures, the argon2 work memory kept between
//!   verifications (`work_memory`);
//! - [`dot`]: dot-stuffing of an outgoing message (POP3 RETR/TOP, the SMTP relay client).
//!
//! Nothing here knows a mail protocol beyond these shared pieces; the protocol crates plug
//! their sessions in.

pub mod auth;
pub mod conn;
pub mod dot;
pub mod error;
pub mod listener;
pub mod password;
pub mod peer;
mod penalty;
pub mod sasl;
pub mod shutdown;
mod slots;
pub mod tls;
mod work_memory;
pub mod write_timeout;

pub use auth::{AuthLimits, AuthStats, Authenticator};
pub use conn::Conn;
pub use error::{Error, Result};
pub use listener::{Accept, Accepted, ListenerLimits, Service, SessionObserver, serve};
pub use password::{hash_password, verify_password};
pub use shutdown::Shutdown;
pub use write_timeout::WriteTimeout;
