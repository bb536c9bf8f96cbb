//! The one error type of this crate.

/// Everything that can go wrong while building, reading, signing or verifying PEC formats.
///
/// Each variant carries a message meant for a human (an operator or a client), never a
/// panic: bad input from the network or a file always ends up here.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `daticert.xml` could not be read or written.
    #[error("daticert.xml: {0}")]
    Daticert(String),
    /// A message is not the MIME structure it claims to be.
    #[error("malformed message: {0}")]
    Mime(String),
    /// The provider index (LDIF) could not be read.
    #[error("provider index: {0}")]
    Index(String),
    /// Signing or verifying with OpenSSL failed.
    #[error("S/MIME: {0}")]
    Smime(String),
    /// Certificates or keys could not be generated or loaded.
    #[error("PKI: {0}")]
    Pki(String),
    /// An input given to a builder breaks a PEC rule (e.g. a recipient without a domain).
    #[error("invalid input: {0}")]
    Input(String),
}

impl From<openssl::error::ErrorStack> for Error {
    fn from(e: openssl::error::ErrorStack) -> Self {
        Error::Smime(e.to_string())
    }
}

/// Result with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
