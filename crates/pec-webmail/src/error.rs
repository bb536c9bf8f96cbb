//! The webmail's one error type: what keeps a page from being shown.

/// Why a page could not be made.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store did not answer: a temporary failure, the user should try again.
    #[error("the store is unavailable")]
    Unavailable,
    /// A JMAP method answered with an error (its type and description).
    #[error("JMAP {0}: {1}")]
    Method(String, String),
    /// What was asked for does not exist, or is not the user's.
    #[error("not found")]
    NotFound,
    /// A form the webmail does not take (too large, malformed...): why, in Italian.
    #[error("form refused: {0}")]
    BadForm(String),
}

/// The webmail's results.
pub type Result<T> = std::result::Result<T, Error>;
