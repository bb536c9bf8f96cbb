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
    /// An administrative request refused by the rules (not allowed, invalid, over the
    /// allotment): an answer to the administrator, not a condition to retry.
    #[error("{}", .0.message)]
    Refused(Refusal),
}

/// Why an administrative request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// The actor may not do it (HTTP 403).
    Forbidden,
    /// The request is malformed or a value is not acceptable (HTTP 400).
    Invalid,
    /// It contradicts what is stored (HTTP 409).
    Conflict,
}

/// An administrative refusal: its kind, a stable code for programs and an Italian
/// message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// What kind of refusal.
    pub kind: RefusalKind,
    /// A stable identifier (`other-ente`, `quota-zero`, ...).
    pub code: &'static str,
    /// The explanation, in Italian.
    pub message: String,
}

impl Refusal {
    /// A [`RefusalKind::Forbidden`] error.
    pub fn forbidden(code: &'static str, message: String) -> Error {
        Error::Refused(Refusal {
            kind: RefusalKind::Forbidden,
            code,
            message,
        })
    }

    /// A [`RefusalKind::Invalid`] error.
    pub fn invalid(code: &'static str, message: String) -> Error {
        Error::Refused(Refusal {
            kind: RefusalKind::Invalid,
            code,
            message,
        })
    }

    /// A [`RefusalKind::Conflict`] error.
    pub fn conflict(code: &'static str, message: String) -> Error {
        Error::Refused(Refusal {
            kind: RefusalKind::Conflict,
            code,
            message,
        })
    }
}

/// Result with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
