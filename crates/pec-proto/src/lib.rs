//! The PEC formats, pure: `daticert.xml`, every envelope and receipt (build and
//! classify), S/MIME signing and verification, the provider index (LDIF) and the lab PKI.
//!
//! Nothing here opens a socket, reads a clock or touches a file: times, identifiers
//! and boundaries are passed in, so the same inputs always give the same bytes.
//! Spec references (§n) are to the sections of `docs/SPEC.md`.

pub mod bounded;
pub mod breve;
pub mod build;
mod certcache;
pub mod classify;
pub mod daticert;
pub mod document;
pub mod error;
pub mod index;
pub mod labpki;
pub mod mime;
pub mod original;
pub mod outer;
pub mod segnatura;
pub mod smime;
pub mod text;
pub mod tsp;

pub use error::{Error, Result};
