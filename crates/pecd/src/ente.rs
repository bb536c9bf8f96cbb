//! `pecd ente …` and `pecd admin …`: the province's commands on the enti (the bodies
//! that own domains), their administrators and their usage for billing, and on the
//! province's own administrators of the HTTPS API. The rules are
//! [`pec_gestore::admin`]'s, the same the API applies.

use std::process::ExitCode;

use anyhow::bail;
use chrono::{Datelike, Utc};
use pec_gestore::admin::Actor;
use pec_gestore::admin::usage::{Period, human_size};
use pec_store::Ente;

use crate::admin::{administration, read_password};
use crate::config::{Config, parse_size};

/// `pecd ente` subcommands.
#[derive(clap::Subcommand)]
pub enum EnteCommand {
    /// Add an ente owning hosted domains (`pecd domain add` them first).
    Add {
        /// The ente's name (e.g. `comune-di-esempio`).
        name: String,
        /// A domain it owns; repeat for several.
        #[arg(long = "domain", required = true)]
        domains: Vec<String>,
        /// Quota its mailboxes may have in all (e.g. `50GiB`).
        #[arg(long)]
        allotment: String,
    },
    /// List the enti with their domains and allotments.
    List,
    /// The administrators of an ente.
    #[command(subcommand)]
    Admin(EnteAdminCommand),
    /// Mailbox-days, messages sent and received and storage, per ente and mailbox.
    Usage {
        /// Only this ente's.
        name: Option<String>,
        /// First day (YYYY-MM-DD, Italian time); the current year's first otherwise.
        #[arg(long)]
        from: Option<String>,
        /// Last day, included (YYYY-MM-DD); today otherwise.
        #[arg(long)]
        to: Option<String>,
        /// Write CSV (for a spreadsheet) instead of a table.
        #[arg(long)]
        csv: bool,
    },
}

/// `pecd ente admin` subcommands.
#[derive(clap::Subcommand)]
pub enum EnteAdminCommand {
    /// Add an administrator of the ente (HTTPS API and console); the password is read
    /// from standard input.
    Add {
        /// The ente.
        name: String,
        /// The administrator's login (an e-mail address).
        login: String,
        /// Read the password from standard input.
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}

/// `pecd admin` subcommands: the province's administrators, who manage every ente.
#[derive(clap::Subcommand)]
pub enum AdminCommand {
    /// Add an administrator of the whole gestore (HTTPS API); the password is read from
    /// standard input.
    Add {
        /// The login (an e-mail address).
        login: String,
        /// Read the password from standard input.
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}

/// Runs a `pecd ente` subcommand.
pub fn ente(config: &Config, cmd: EnteCommand) -> anyhow::Result<ExitCode> {
    let admin = administration(config)?;
    match cmd {
        EnteCommand::Add {
            name,
            domains,
            allotment,
        } => {
            let allotment = parse_size(&allotment)?;
            let ente = Ente {
                name: name.trim().to_string(),
                domains: domains.iter().map(|d| d.trim().to_lowercase()).collect(),
                allotment,
            };
            admin.add_ente(&Actor::command_line("ente add"), &ente)?;
            println!(
                "ente {} added: domains {}, allotment {}",
                ente.name,
                ente.domains.join(", "),
                human_size(allotment)
            );
        }
        EnteCommand::List => {
            let enti = admin.enti(&Actor::command_line("ente list"))?;
            let width = enti.iter().map(|e| e.name.len()).max().unwrap_or(0).max(4);
            println!("{:width$}  {:>10}  DOMAINS", "ENTE", "ALLOTMENT");
            for e in enti {
                println!(
                    "{:width$}  {:>10}  {}",
                    e.name,
                    human_size(e.allotment),
                    e.domains.join(" ")
                );
            }
        }
        EnteCommand::Admin(EnteAdminCommand::Add { name, login, .. }) => {
            let password = read_password()?;
            admin.add_admin(
                &Actor::command_line("ente admin add"),
                &login,
                Some(&name),
                &password,
            )?;
            println!(
                "administrator {} of ente {name} added",
                login.to_lowercase()
            );
        }
        EnteCommand::Usage {
            name,
            from,
            to,
            csv,
        } => {
            let today = pec_gestore::clock::italian(Utc::now()).date_naive();
            let from = from.unwrap_or_else(|| format!("{}-01-01", today.year()));
            let to = to.unwrap_or_else(|| today.to_string());
            let period = Period::parse(&from, &to)?;
            let report =
                admin.usage(&Actor::command_line("ente usage"), name.as_deref(), period)?;
            if csv {
                print!("{}", report.csv());
                return Ok(ExitCode::SUCCESS);
            }
            println!("usage from {} to {} (included)", report.from, report.to);
            let width = report
                .mailboxes
                .iter()
                .map(|m| m.mailbox.len().max(m.ente.len()))
                .max()
                .unwrap_or(0)
                .max(7);
            println!(
                "{:width$}  {:>13}  {:>8}  {:>8}  {:>10}",
                "MAILBOX", "MAILBOX-DAYS", "SENT", "RECEIVED", "STORAGE"
            );
            for e in &report.enti {
                let label = if e.ente.is_empty() {
                    "(no ente)"
                } else {
                    &e.ente
                };
                println!(
                    "{:width$}  {:>13}  {:>8}  {:>8}  {:>10}",
                    format!("{label}: {} mailboxes", e.mailboxes),
                    e.mailbox_days,
                    e.sent,
                    e.received,
                    human_size(e.storage_bytes)
                );
                for m in report.mailboxes.iter().filter(|m| m.ente == e.ente) {
                    println!(
                        "{:width$}  {:>13}  {:>8}  {:>8}  {:>10}",
                        format!("  {}", m.mailbox),
                        m.mailbox_days,
                        m.sent,
                        m.received,
                        human_size(m.storage_bytes)
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs a `pecd admin` subcommand.
pub fn admin(config: &Config, cmd: AdminCommand) -> anyhow::Result<ExitCode> {
    let admin = administration(config)?;
    match cmd {
        AdminCommand::Add { login, .. } => {
            if login.trim().is_empty() {
                bail!("give the administrator's login");
            }
            let password = read_password()?;
            admin.add_admin(&Actor::command_line("admin add"), &login, None, &password)?;
            println!(
                "administrator {} of the gestore added (HTTPS API, Basic authentication)",
                login.to_lowercase()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
