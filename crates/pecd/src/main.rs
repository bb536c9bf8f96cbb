//! `pecd`: the PEC provider and its admin tool.

use pecd::{admin, bench, certs, check, config, ente, inspect, log, queue, report, serve};

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A PEC provider (gestore di posta elettronica certificata).
#[derive(Parser)]
#[command(name = "pecd", version, about)]
struct Cli {
    /// The configuration file.
    #[arg(long, global = true, default_value = "conf/pecd.toml")]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Certificates for a lab of gestori.
    #[command(subcommand)]
    Certs(certs::CertsCommand),
    /// Print what a message is: kind, PEC headers, daticert.xml fields, signature verdict;
    /// the exit status is the verdict (0 only for an intact signature).
    #[command(after_help = inspect::EXIT_STATUS)]
    Inspect(inspect::InspectArgs),
    /// Check the configuration file before a (re)start.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Run the gestore: SMTP submission and MX, IMAP, POP3, queue and timers.
    Serve,
    /// The legal message log: verify, search, export, time-stamp.
    #[command(subcommand)]
    Log(log::LogCommand),
    /// The outgoing queue: list, show, retry, hold, drop.
    #[command(subcommand)]
    Queue(queue::QueueCommand),
    /// Messages, receipts, viruses and availability over a period.
    Report(report::ReportArgs),
    /// The hosted PEC domains.
    #[command(subcommand)]
    Domain(admin::DomainCommand),
    /// The hosted mailboxes.
    #[command(subcommand)]
    Mailbox(admin::MailboxCommand),
    /// The enti (bodies owning domains): add, list, their administrators, usage for billing.
    #[command(subcommand)]
    Ente(ente::EnteCommand),
    /// The province's administrators of the HTTPS administration API.
    #[command(subcommand)]
    Admin(ente::AdminCommand),
    /// The mailbox store: integrity check, migration to PostgreSQL.
    #[command(subcommand)]
    Store(admin::StoreCommand),
    /// Copy the store consistently while the server runs.
    Backup(admin::BackupArgs),
    /// Measure throughput, latency, signing limit and RSS on this machine (BENCHMARKS.md).
    Bench(bench::BenchArgs),
}

/// `pecd config …`.
#[derive(Subcommand)]
enum ConfigCommand {
    /// Report every problem of the file (syntax, values, certificates and keys, data
    /// directory, addresses) with its line and key; the exit status is 0 only without
    /// errors (warnings pass).
    Check,
}

fn main() -> ExitCode {
    pecd::private::restrict_umask();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Certs(cmd) => certs::run(cmd, &cli.config),
        Command::Inspect(args) => inspect::run(args),
        Command::Config(ConfigCommand::Check) => check::run(&cli.config),
        Command::Serve => config::Config::load(&cli.config).and_then(|c| serve::run(&c)),
        Command::Log(cmd) => config::Config::load(&cli.config).and_then(|c| log::run(&c, cmd)),
        Command::Queue(cmd) => config::Config::load(&cli.config).and_then(|c| queue::run(&c, cmd)),
        Command::Report(args) => {
            config::Config::load(&cli.config).and_then(|c| report::run(&c, args))
        }
        Command::Domain(cmd) => {
            config::Config::load(&cli.config).and_then(|c| admin::domain(&c, cmd))
        }
        Command::Mailbox(cmd) => {
            config::Config::load(&cli.config).and_then(|c| admin::mailbox(&c, cmd))
        }
        Command::Ente(cmd) => config::Config::load(&cli.config).and_then(|c| ente::ente(&c, cmd)),
        Command::Admin(cmd) => config::Config::load(&cli.config).and_then(|c| ente::admin(&c, cmd)),
        Command::Store(cmd) => {
            config::Config::load(&cli.config).and_then(|c| admin::store(&c, cmd))
        }
        Command::Backup(args) => {
            config::Config::load(&cli.config).and_then(|c| admin::backup(&c, args))
        }
        Command::Bench(args) => bench::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pecd: {e:#}");
            ExitCode::FAILURE
        }
    }
}
