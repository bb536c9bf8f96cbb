//! The one error type of the crate, so the servers map every failure to an
//! IMAP or POP3 reply (or a closed connection) in one place.

/// Why a session or a server operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing the connection failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The mailbox store refused or failed an operation.
    #[error("store error: {0}")]
    Store(#[from] pec_store::Error),
    /// A blocking store task could not complete (the runtime is shutting down).
    #[error("background task failed: {0}")]
    Task(String),
    /// The listener could not run (its limits cannot work).
    #[error("listener: {0}")]
    Net(#[from] pec_net::Error),
    /// A response could not be built from the data (a bug or corrupt data).
    #[error("cannot build response: {0}")]
    Response(String),
    /// The client broke the protocol badly enough to end the session.
    #[error("protocol violation: {0}")]
    Protocol(String),
}

impl Error {
    /// Whether the client simply went away (closed or reset the connection, or ended
    /// TLS without close_notify, as Thunderbird does when it quits): logged at DEBUG,
    /// not as a failure.
    pub fn is_disconnect(&self) -> bool {
        use std::io::ErrorKind as K;
        matches!(
            self,
            Error::Io(e) if matches!(
                e.kind(),
                K::UnexpectedEof | K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe
            )
        )
    }
}

/// Result with the crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Error as IoError, ErrorKind};

    #[test]
    fn a_client_leaving_is_a_disconnect() {
        // What tokio-rustls reports when the client ends TLS without close_notify.
        let eof = IoError::new(
            ErrorKind::UnexpectedEof,
            "peer closed connection without sending TLS close_notify",
        );
        assert!(Error::Io(eof).is_disconnect());
        assert!(Error::Io(IoError::from(ErrorKind::ConnectionReset)).is_disconnect());
        assert!(!Error::Io(IoError::from(ErrorKind::PermissionDenied)).is_disconnect());
        assert!(!Error::Protocol("unexpected input in IDLE".into()).is_disconnect());
    }
}
