//! SMTP for the PEC gestore: the server sessions of the access point (submission, with TLS
//! and AUTH) and of the incoming point (MX, STARTTLS offered, plaintext accepted), and the
//! relay client the transport queue uses to hand envelopes to other gestori.
//!
//! No PEC rule lives here: the server hands every decision (credentials, senders,
//! recipients, the message itself) to a [`Handler`] supplied by the application, and
//! sends back exactly the [`Reply`] the handler returns. The message bytes reach the
//! handler unchanged except for SMTP dot-unstuffing (spec §8.3: no alteration in transit).

mod client;
mod error;
mod io;
mod pool;
mod reply;
mod server;
mod tls;
pub mod trace;

pub use client::{ClientTls, DeliveryOutcome, Outgoing, RecipientOutcome, RecipientStatus, Relay};
pub use error::Error;
pub use pool::{Pool, PoolLimits};
pub use reply::Reply;
pub use server::{
    Envelope, Handler, Mode, ServerConfig, SessionInfo, Timeouts, serve, smtp_session,
};
pub use tls::{client_tls_config, client_tls_config_with};
