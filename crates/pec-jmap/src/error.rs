//! The crate's one error type: what a method call can fail with, named as RFC 8620 §3.6.2
//! and RFC 8621 name the method-level errors, so that [`Error::kind`] is the `type` the
//! client reads and the message is its `description`.

/// Why a method call (or a whole request) failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The arguments are missing, of the wrong type, or contradict each other.
    #[error("{0}")]
    InvalidArguments(String),
    /// A result reference names no earlier call, or its path leads nowhere.
    #[error("{0}")]
    InvalidResultReference(String),
    /// The method is not one this server implements.
    #[error("unknown method {0}")]
    UnknownMethod(String),
    /// The `accountId` is not the account of the authenticated user.
    #[error("no such account")]
    AccountNotFound,
    /// The account is read-only for this method.
    #[error("{0}")]
    AccountReadOnly(String),
    /// A `*/changes` cannot tell what changed since the given state.
    #[error("cannot calculate changes from state {0:?}")]
    CannotCalculateChanges(String),
    /// The `anchor` of a query is not in its results.
    #[error("the anchor is not in the results")]
    AnchorNotFound,
    /// A filter condition this server does not support, or too costly to run.
    #[error("{0}")]
    UnsupportedFilter(String),
    /// A sort property this server does not support.
    #[error("{0}")]
    UnsupportedSort(String),
    /// The call asks for more objects than a limit allows.
    #[error("{0}")]
    RequestTooLarge(String),
    /// `ifInState` does not match the current state.
    #[error("the state is not {0:?}")]
    StateMismatch(String),
    /// The store failed: temporary, the client may try again.
    #[error("store: {0}")]
    Store(#[from] pec_store::Error),
}

impl Error {
    /// The error `type` of RFC 8620 §3.6.2 (or RFC 8621's) the client receives.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::InvalidArguments(_) => "invalidArguments",
            Error::InvalidResultReference(_) => "invalidResultReference",
            Error::UnknownMethod(_) => "unknownMethod",
            Error::AccountNotFound => "accountNotFound",
            Error::AccountReadOnly(_) => "accountReadOnly",
            Error::CannotCalculateChanges(_) => "cannotCalculateChanges",
            Error::AnchorNotFound => "anchorNotFound",
            Error::UnsupportedFilter(_) => "unsupportedFilter",
            Error::UnsupportedSort(_) => "unsupportedSort",
            Error::RequestTooLarge(_) => "requestTooLarge",
            Error::StateMismatch(_) => "stateMismatch",
            Error::Store(_) => "serverUnavailable",
        }
    }
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
