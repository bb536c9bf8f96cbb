//! The one error type of the crate.

use crate::Reply;

/// Everything that can go wrong in this crate: server configuration and I/O, and the
/// failures of a relay attempt, which the queue must sort into "retry later" and "give up"
/// (see [`Error::is_temporary`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration cannot work (for example submission without TLS).
    #[error("invalid SMTP configuration: {0}")]
    Config(String),
    /// Network or socket failure, including a refused connection.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The listener could not run (its limits cannot work).
    #[error("listener: {0}")]
    Net(#[from] pec_net::Error),
    /// TLS setup or certificate problem.
    #[error("TLS error: {0}")]
    Tls(#[from] rustls::Error),
    /// The peer did not answer in time.
    #[error("timed out while {0}")]
    Timeout(&'static str),
    /// The remote server refused a step of the transaction that concerns all recipients.
    #[error("remote server refused {stage}: {reply}")]
    Rejected {
        /// The command that was refused (`greeting`, `EHLO`, `MAIL FROM`, ...).
        stage: &'static str,
        /// What the server answered.
        reply: Reply,
    },
    /// The remote server closed the connection in the middle of a transaction.
    #[error("connection closed by the remote server")]
    Closed,
    /// The remote server said something that is not SMTP.
    #[error("SMTP protocol error: {0}")]
    Protocol(String),
    /// The policy requires STARTTLS and the remote server does not offer it.
    #[error("STARTTLS required but not offered by the remote server")]
    TlsUnavailable,
    /// An address given to the relay client cannot be written into an SMTP command.
    #[error("address {0:?} cannot be used in an SMTP command")]
    InvalidAddress(String),
    /// The message has 8-bit bytes and the remote server lacks 8BITMIME: converting would
    /// alter signed content, so the message cannot be sent there.
    #[error("message has 8-bit content and the remote server does not support 8BITMIME")]
    EightBitUnsupported,
}

impl Error {
    /// The same failure for another message of a batch that shared the session it
    /// happened on: as temporary or not as the original.
    pub(crate) fn again(&self) -> Error {
        match self {
            Error::Config(s) => Error::Config(s.clone()),
            Error::Io(e) => Error::Io(std::io::Error::new(e.kind(), e.to_string())),
            Error::Net(e) => Error::Config(e.to_string()),
            Error::Tls(e) => Error::Tls(e.clone()),
            Error::Timeout(what) => Error::Timeout(what),
            Error::Rejected { stage, reply } => Error::Rejected {
                stage,
                reply: reply.clone(),
            },
            Error::Closed => Error::Closed,
            Error::Protocol(s) => Error::Protocol(s.clone()),
            Error::TlsUnavailable => Error::TlsUnavailable,
            Error::InvalidAddress(a) => Error::InvalidAddress(a.clone()),
            Error::EightBitUnsupported => Error::EightBitUnsupported,
        }
    }

    /// True when a later attempt may succeed (connection problems, timeouts, `4xx`), false
    /// when retrying is pointless (`5xx`, configuration, unsupported content). A `5xx`
    /// greeting is temporary: that host refuses service, which says nothing of the
    /// message or its recipients, so the next host of the domain is tried and, if none
    /// takes it, the message later (as Postfix's `smtp_skip_5xx_greeting`).
    pub fn is_temporary(&self) -> bool {
        match self {
            Error::Rejected {
                stage: "greeting", ..
            } => true,
            Error::Io(_)
            | Error::Tls(_)
            | Error::Timeout(_)
            | Error::Protocol(_)
            | Error::Closed
            | Error::TlsUnavailable => true,
            Error::Rejected { reply, .. } => reply.is_transient(),
            Error::Config(_)
            | Error::Net(_)
            | Error::InvalidAddress(_)
            | Error::EightBitUnsupported => false,
        }
    }
}
