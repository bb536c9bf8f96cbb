//! The one error type of the crate.

/// What can go wrong in the network front-end.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A listener was given limits that cannot work (for example zero connections).
    #[error("invalid listener configuration: {0}")]
    Config(String),
    /// A socket operation failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A password hash could not be computed.
    #[error("password hashing failed: {0}")]
    Password(String),
    /// A TLS configuration could not be built from the certificate and key given.
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
}

/// Result with the crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
