//! The one error type of this crate.

/// What can go wrong while applying the PEC rules.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Building or signing a PEC message failed.
    #[error(transparent)]
    Proto(#[from] pec_proto::Error),
    /// The store refused or failed.
    #[error("store: {0}")]
    Store(String),
}

/// Result with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
