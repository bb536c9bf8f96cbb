//! The three PEC points and their rules (spec §2): what the access point checks and emits
//! for a submission, what the incoming point decides for a message from the network, and
//! which receipt the delivery point issues for each recipient.
//!
//! The rules are plain functions from (identity, event, time) to messages and decisions;
//! moving bytes over sockets and making them durable is the caller's job.

pub mod access;
pub mod admin;
pub mod antivirus;
pub mod autoconfig;
pub mod clock;
pub mod delivery;
pub mod emit;
pub mod error;
pub mod events;
pub mod fetch;
pub mod flow;
pub mod handlers;
pub mod handoff;
pub mod identity;
pub mod incoming;
pub mod jmap_submission;
pub mod metrics;
pub mod proof;
pub mod protocol;
pub mod quota;
pub mod reception;
pub mod routing;
pub mod runtime;
pub mod service;
pub mod submission;
pub mod workers;

pub use error::{Error, Result};
