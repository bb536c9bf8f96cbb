//! The one error type of this crate.

/// What can go wrong while applying the PEC rules. Every variant is a condition to
/// retry later (a `4xx`, a queue retry), never an answer about the message.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Building or signing a PEC message failed.
    #[error(transparent)]
    Proto(#[from] pec_proto::Error),
    /// The store failed, or could not say (an account lookup that did not answer).
    #[error("store: {0}")]
    Store(#[from] pec_store::Error),
    /// Something the store keeps cannot be used (a timer without its envelope, ...).
    #[error("stored data unusable: {0}")]
    Stored(String),
    /// An HTTP exchange with an outside service (time-stamping authority, index, CRL)
    /// failed.
    #[error("HTTP: {0}")]
    Http(String),
}

/// Result with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
