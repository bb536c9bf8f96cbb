//! `pecd certs`: the lab PKI on disk (in progress).

use std::process::ExitCode;

/// `pecd certs` subcommands.
#[derive(clap::Subcommand)]
pub enum CertsCommand {
    /// Generate a lab root CA, per-gestore signing and TLS certificates, and the index LDIF.
    Init {},
}

/// Runs a `pecd certs` subcommand.
pub fn run(cmd: CertsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        CertsCommand::Init {} => anyhow::bail!("not implemented"),
    }
}
