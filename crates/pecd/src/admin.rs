//! `pecd domain …`, `pecd mailbox …`, `pecd store check`, `pecd store migrate` and
//! `pecd backup`: the administrator's commands on the hosted domains, the mailboxes and
//! the store.

use std::io::{BufRead, IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use pec_gestore::admin::usage::human_size;
use pec_gestore::admin::{Actor, Administration, MIN_PASSWORD_CHARS, NewPassword};
use pec_gestore::clock::SystemClock;
use pec_store::{ArchiveScope, Store};

use crate::config::{Config, parse_size};

/// `pecd domain` subcommands.
#[derive(clap::Subcommand)]
pub enum DomainCommand {
    /// Host a PEC domain (e.g. `pec.comune.example.it`).
    Add {
        /// The domain name.
        name: String,
        /// Default quota of its new mailboxes (e.g. `2GiB`, `500MiB`; `G` alone is
        /// refused as ambiguous); the configured default otherwise.
        #[arg(long)]
        quota: Option<String>,
    },
    /// List the hosted domains.
    List,
    /// Stop hosting a domain (it must have no mailboxes left).
    Remove {
        /// The domain name.
        name: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
}

/// `pecd mailbox` subcommands.
#[derive(clap::Subcommand)]
pub enum MailboxCommand {
    /// Create a mailbox; the password is read from standard input.
    Add {
        /// The address, in a hosted domain.
        address: String,
        /// Read the password from standard input (required: passwords never go on the
        /// command line, where other users can see them).
        #[arg(long, required = true)]
        password_stdin: bool,
        /// Quota (e.g. `3GiB`, `500MiB`; not 0); the domain's default otherwise.
        #[arg(long)]
        quota: Option<String>,
        /// File PEC receipts into a `Ricevute` folder instead of INBOX.
        #[arg(long)]
        ricevute: bool,
    },
    /// List mailboxes with their usage.
    List {
        /// Only this domain's.
        #[arg(long)]
        domain: Option<String>,
    },
    /// Delete a mailbox (its security archive is kept).
    Remove {
        /// The address.
        address: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Change a mailbox's settings.
    Set {
        /// The address.
        address: String,
        /// File PEC receipts in a `Ricevute` folder (`on`) or in INBOX (`off`); receipts
        /// already filed stay where they are.
        #[arg(long, value_parser = ["on", "off"])]
        ricevute: Option<String>,
        /// New quota (e.g. `3GiB`; not 0).
        #[arg(long)]
        quota: Option<String>,
    },
    /// Change a mailbox's password, read from standard input.
    Passwd {
        /// The address.
        address: String,
        /// Read the password from standard input.
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Refuse a mailbox's logins (IMAP, POP3, SMTP submission) until it is reactivated;
    /// mail is still delivered to it.
    Suspend {
        /// The address.
        address: String,
    },
    /// Accept a suspended mailbox's logins again.
    Reactivate {
        /// The address.
        address: String,
    },
    /// Show or change what the mailbox's security archive keeps and its quota (apart
    /// from the mailbox quota); without options, show them.
    Archive {
        /// The address.
        address: String,
        /// Keep every message (`tutto`) or only certified mail and its receipts (`pec`).
        #[arg(long, value_parser = ["tutto", "pec"])]
        scope: Option<String>,
        /// Keep what the mailbox sends.
        #[arg(long, value_parser = ["on", "off"])]
        sent: Option<String>,
        /// Keep what the mailbox receives.
        #[arg(long, value_parser = ["on", "off"])]
        received: Option<String>,
        /// The archive's quota (e.g. `6GiB`); once full, new copies are not kept.
        #[arg(long)]
        quota: Option<String>,
    },
}

/// Opens the store of `config` for an administration command, closing its data
/// directory to other users first (with a warning on standard error when it was open).
pub fn open(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let dir = &config.gestore.data_dir;
    if let Some(mode) = crate::private::data_dir(dir)? {
        eprintln!(
            "pecd: warning: {}",
            crate::private::loosened_warning(dir, mode)
        );
    }
    crate::store::open(config)
}

/// The administration rules over the store of `config`, on the system clock.
pub fn administration(config: &Config) -> anyhow::Result<Administration> {
    Ok(Administration {
        store: open(config)?,
        clock: Arc::new(SystemClock),
        gestore: config.gestore.name.clone(),
    })
}

/// Reads a new password, the first line of standard input without its line ending, and
/// hashes it.
pub fn read_password() -> anyhow::Result<NewPassword> {
    let mut input = String::new();
    std::io::stdin()
        .take(4096)
        .read_to_string(&mut input)
        .context("cannot read the password from standard input")?;
    let password = input.lines().next().unwrap_or("");
    if password.chars().count() < MIN_PASSWORD_CHARS {
        bail!("the password must have at least {MIN_PASSWORD_CHARS} characters");
    }
    Ok(NewPassword::hash_here(password)?)
}

/// Asks before a destructive command: `--yes` goes ahead; otherwise, on a terminal,
/// the operator types `name` to confirm; without a terminal the command is refused.
pub fn confirm(what: &str, name: &str, yes: bool) -> anyhow::Result<()> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        bail!("{what} cannot be undone: add --yes to confirm");
    }
    eprint!("{what} cannot be undone. Type {name} to confirm: ");
    let mut answer = String::new();
    std::io::stdin().lock().take(1024).read_line(&mut answer)?;
    if answer.trim() != name {
        bail!("not confirmed: nothing changed");
    }
    Ok(())
}

/// Runs a `pecd domain` subcommand.
pub fn domain(config: &Config, cmd: DomainCommand) -> anyhow::Result<ExitCode> {
    let admin = administration(config)?;
    let actor = |what: &str| Actor::command_line(&format!("domain {what}"));
    match cmd {
        DomainCommand::Add { name, quota } => {
            let quota = match quota {
                Some(q) => parse_size(&q)?,
                None => config.default_quota(),
            };
            admin.add_domain(&actor("add"), &name, quota)?;
            println!(
                "domain {} added (default mailbox quota {}); mail to it is certified \
                 from now on. Publish the index record again (pecd certs publish) so that \
                 other gestori certify it too.",
                name.to_lowercase(),
                human_size(quota)
            );
        }
        DomainCommand::List => {
            let domains = admin.store.list_domains()?;
            let width = domains
                .iter()
                .map(|d| d.name.len())
                .max()
                .unwrap_or(0)
                .max(6);
            println!("{:width$}  DEFAULT QUOTA", "DOMAIN");
            for d in domains {
                println!("{:width$}  {}", d.name, human_size(d.default_quota));
            }
        }
        DomainCommand::Remove { name, yes } => {
            let name = name.to_lowercase();
            confirm(&format!("Removing domain {name}"), &name, yes)?;
            admin.remove_domain(&actor("remove"), &name)?;
            println!("domain {name} removed; publish the index record again (pecd certs publish).");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs a `pecd mailbox` subcommand, by the rules the administration API applies too.
pub fn mailbox(config: &Config, cmd: MailboxCommand) -> anyhow::Result<ExitCode> {
    let admin = administration(config)?;
    let actor = |what: &str| Actor::command_line(&format!("mailbox {what}"));
    match cmd {
        MailboxCommand::Add {
            address,
            quota,
            ricevute,
            ..
        } => {
            let quota = quota.as_deref().map(parse_size).transpose()?;
            let password = read_password()?;
            let account =
                admin.create_mailbox(&actor("add"), &address, &password, quota, ricevute)?;
            println!(
                "mailbox {} created (quota {})",
                account.address,
                human_size(account.quota)
            );
        }
        MailboxCommand::List { domain } => {
            let list = admin.mailboxes(&actor("list"), domain.as_deref())?;
            let width = list
                .iter()
                .map(|m| m.address.len())
                .max()
                .unwrap_or(0)
                .max(7);
            println!(
                "{:width$}  {:>10}  {:>10}  STATE",
                "MAILBOX", "USED", "QUOTA"
            );
            for m in list {
                println!(
                    "{:width$}  {:>10}  {:>10}  {}",
                    m.address,
                    human_size(m.used),
                    human_size(m.quota),
                    if m.suspended { "suspended" } else { "active" }
                );
            }
        }
        MailboxCommand::Remove { address, yes } => {
            let address = address.to_lowercase();
            confirm(&format!("Removing mailbox {address}"), &address, yes)?;
            admin.remove_mailbox(&actor("remove"), &address)?;
            println!("mailbox {address} removed (its security archive is kept)");
        }
        MailboxCommand::Set {
            address,
            ricevute,
            quota,
        } => {
            if ricevute.is_none() && quota.is_none() {
                bail!("nothing to change: give --ricevute on|off or --quota");
            }
            if let Some(q) = quota {
                let q = parse_size(&q)?;
                admin.set_quota(&actor("set"), &address, q)?;
                println!(
                    "quota of mailbox {} set to {}",
                    address.to_lowercase(),
                    human_size(q)
                );
            }
            if let Some(r) = ricevute {
                admin.set_receipts_folder(&actor("set"), &address, r == "on")?;
                println!(
                    "receipts of mailbox {} filed in {}",
                    address.to_lowercase(),
                    if r == "on" { "Ricevute" } else { "INBOX" }
                );
            }
        }
        MailboxCommand::Passwd { address, .. } => {
            let password = read_password()?;
            admin.set_password(&actor("passwd"), &address, &password)?;
            println!("password of mailbox {} changed", address.to_lowercase());
        }
        MailboxCommand::Suspend { address } => {
            admin.suspend(&actor("suspend"), &address, true)?;
            println!(
                "mailbox {} suspended: its logins are refused",
                address.to_lowercase()
            );
        }
        MailboxCommand::Reactivate { address } => {
            admin.suspend(&actor("reactivate"), &address, false)?;
            println!("mailbox {} reactivated", address.to_lowercase());
        }
        MailboxCommand::Archive {
            address,
            scope,
            sent,
            received,
            quota,
        } => {
            let address = address.to_lowercase();
            let mut options = admin.archive_options(&actor("archive"), &address)?;
            let changed =
                scope.is_some() || sent.is_some() || received.is_some() || quota.is_some();
            if let Some(s) = scope {
                options.scope = ArchiveScope::parse(&s).context("scope: tutto or pec")?;
            }
            options.sent = sent.map_or(options.sent, |v| v == "on");
            options.received = received.map_or(options.received, |v| v == "on");
            if let Some(q) = quota {
                options.quota = parse_size(&q)?;
            }
            if changed {
                admin.set_archive_options(&actor("archive"), &address, &options)?;
            }
            let usage = admin.store.archive_usage(&address)?;
            let on = |b: bool| if b { "on" } else { "off" };
            println!(
                "security archive of mailbox {address}: scope {}, sent {}, received {}, \
                 quota {}, used {}",
                options.scope.as_str(),
                on(options.sent),
                on(options.received),
                human_size(options.quota),
                human_size(usage.used)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `pecd store` subcommands.
#[derive(clap::Subcommand)]
pub enum StoreCommand {
    /// Re-hash every referenced message file and run the database's integrity check;
    /// fails (exit status 1) on any missing or corrupt file or database problem.
    Check,
    /// Copy the embedded store (`gestore.data_dir`) into an empty PostgreSQL database:
    /// mailboxes, folders, flags, quotas, queue, timers, legal log, security archive,
    /// virus store. Run it with the server stopped (or on a `pecd backup` copy): what the
    /// server writes during the copy is not copied. Then set `[store] url` to the same URL.
    Migrate {
        /// The target database, `postgresql://user@host:port/dbname`; it must be empty
        /// (a new database, or one whose only content is pecd's empty schema).
        #[arg(long)]
        to: String,
    },
}

/// Arguments of `pecd backup`.
#[derive(clap::Args)]
pub struct BackupArgs {
    /// Where to write the copy: a new or empty directory, laid out as a store (so
    /// `gestore.data_dir` can point at it to restore).
    pub dir: PathBuf,
}

/// Runs a `pecd store` subcommand.
pub fn store(config: &Config, cmd: StoreCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        StoreCommand::Migrate { to } => migrate(config, &to),
        StoreCommand::Check => {
            let store = open(config)?;
            let report = store.check().context("cannot check the store")?;
            println!("message blobs checked: {}", report.blobs_checked);
            for hash in &report.missing {
                println!("missing: {hash}");
            }
            for hash in &report.corrupt {
                println!("corrupt: {hash}");
            }
            for problem in &report.database {
                println!("database: {problem}");
            }
            if report.is_ok() {
                println!("store OK");
                Ok(ExitCode::SUCCESS)
            } else {
                println!(
                    "store DAMAGED: {} missing, {} corrupt, {} database problems",
                    report.missing.len(),
                    report.corrupt.len(),
                    report.database.len()
                );
                Ok(ExitCode::FAILURE)
            }
        }
    }
}

/// Runs `pecd store migrate --to <url>`: the embedded store of `config` copied into the
/// PostgreSQL database at `url` (see [`pec_store::migrate_to_postgres`]).
fn migrate(config: &Config, url: &str) -> anyhow::Result<ExitCode> {
    if config.store.url.is_some() {
        bail!(
            "this configuration already uses PostgreSQL ([store] url); `pecd store migrate` \
             copies the embedded store of a configuration without it"
        );
    }
    let dir = &config.gestore.data_dir;
    let migrated = pec_store::migrate_to_postgres(dir, url)
        .with_context(|| format!("cannot copy the store in {} to PostgreSQL", dir.display()))?;
    for (table, rows) in &migrated.rows {
        println!("{table}\t{rows}");
    }
    println!(
        "store in {} copied to PostgreSQL ({} bytes of messages); set [store] url to this \
         database and run `pecd store check` and `pecd log verify`",
        dir.display(),
        migrated.blob_bytes
    );
    Ok(ExitCode::SUCCESS)
}

/// Runs `pecd backup`: a consistent copy of the store, taken while the server runs.
pub fn backup(config: &Config, args: BackupArgs) -> anyhow::Result<ExitCode> {
    let store = open(config)?;
    let blobs = store
        .backup(&args.dir)
        .with_context(|| format!("cannot back up the store into {}", args.dir.display()))?;
    println!(
        "store copied into {} ({blobs} message blobs)",
        args.dir.display()
    );
    Ok(ExitCode::SUCCESS)
}
