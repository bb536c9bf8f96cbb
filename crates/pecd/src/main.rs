//! `pecd`: the PEC provider and its admin tool.

mod certs;
mod inspect;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A PEC provider (gestore di posta elettronica certificata).
#[derive(Parser)]
#[command(name = "pecd", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Certificates for a lab of gestori.
    #[command(subcommand)]
    Certs(certs::CertsCommand),
    /// Print what a message is: kind, PEC headers, daticert.xml fields, signature verdict.
    Inspect(inspect::InspectArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Certs(cmd) => certs::run(cmd),
        Command::Inspect(args) => inspect::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pecd: {e:#}");
            ExitCode::FAILURE
        }
    }
}
