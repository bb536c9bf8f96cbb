//! The `pecd` binary's commands as a library, so that end-to-end tests can assemble and
//! run gestori in one process (with an injected clock) exactly as `pecd serve` does.

pub mod admin;
pub mod bench;
pub mod certs;
pub mod certs_refresh;
pub mod check;
pub mod config;
pub mod ente;
pub mod inspect;
pub mod log;
pub mod private;
pub mod queue;
pub mod report;
pub mod serve;
pub mod store;
pub mod trust;
