//! `pecd inspect` (in progress).

use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `pecd inspect`.
#[derive(clap::Args)]
pub struct InspectArgs {
    /// The message file (.eml).
    file: PathBuf,
}

/// Runs `pecd inspect`.
pub fn run(args: InspectArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented: {}", args.file.display())
}
