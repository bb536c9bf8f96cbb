//! `pecd domain …`, `pecd mailbox …`, `pecd store check`, `pecd store migrate` and
//! `pecd backup`: the administrator's commands on the hosted domains, the mailboxes and
//! the store.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use std::sync::Arc;

use pec_store::{NewAccount, Store};

use crate::config::{Config, parse_size};

/// `pecd domain` subcommands.
#[derive(clap::Subcommand)]
pub enum DomainCommand {
    /// Host a PEC domain (e.g. `pec.comune.example.it`).
    Add {
        /// The domain name.
        name: String,
        /// Default quota of its new mailboxes (e.g. `2GiB`); the configured default otherwise.
        #[arg(long)]
        quota: Option<String>,
    },
    /// List the hosted domains.
    List,
    /// Stop hosting a domain (it must have no mailboxes left).
    Remove {
        /// The domain name.
        name: String,
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
        /// Quota (e.g. `3GiB`); the domain's default otherwise.
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
    },
    /// Change a mailbox's settings.
    Set {
        /// The address.
        address: String,
        /// File PEC receipts in a `Ricevute` folder (`on`) or in INBOX (`off`); receipts
        /// already filed stay where they are.
        #[arg(long, value_parser = ["on", "off"])]
        ricevute: Option<String>,
        /// New quota (e.g. `3GiB`).
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

/// Reads a password: the first line of standard input, without its line ending.
fn read_password() -> anyhow::Result<String> {
    let mut input = String::new();
    std::io::stdin()
        .take(4096)
        .read_to_string(&mut input)
        .context("cannot read the password from standard input")?;
    let password = input.lines().next().unwrap_or("").to_string();
    if password.chars().count() < 8 {
        bail!("the password must have at least 8 characters");
    }
    Ok(password)
}

/// Runs a `pecd domain` subcommand.
pub fn domain(config: &Config, cmd: DomainCommand) -> anyhow::Result<ExitCode> {
    let store = open(config)?;
    match cmd {
        DomainCommand::Add { name, quota } => {
            let quota = match quota {
                Some(q) => parse_size(&q)?,
                None => config.default_quota(),
            };
            store.add_domain(&name, quota)?;
            println!(
                "domain {} added (default quota {quota} bytes); mail to it is certified \
                 from now on. Publish the index record again (pecd certs publish) so that \
                 other gestori certify it too.",
                name.to_lowercase()
            );
        }
        DomainCommand::List => {
            for d in store.list_domains()? {
                println!("{}\t{}", d.name, d.default_quota);
            }
        }
        DomainCommand::Remove { name } => {
            store.remove_domain(&name)?;
            println!(
                "domain {} removed; publish the index record again (pecd certs publish).",
                name.to_lowercase()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs a `pecd mailbox` subcommand.
pub fn mailbox(config: &Config, cmd: MailboxCommand) -> anyhow::Result<ExitCode> {
    let store = open(config)?;
    match cmd {
        MailboxCommand::Add {
            address,
            quota,
            ricevute,
            ..
        } => {
            let password = read_password()?;
            let quota = quota.as_deref().map(parse_size).transpose()?;
            let account = store.create_account(&NewAccount {
                address,
                password_hash: pec_imap::hash_password(&password)?,
                quota,
                receipts_folder: ricevute,
            })?;
            println!(
                "mailbox {} created (quota {} bytes)",
                account.address, account.quota
            );
        }
        MailboxCommand::List { domain } => {
            for a in store.list_accounts(domain.as_deref())? {
                let usage = store.usage(&a.address)?;
                println!("{}\t{}\t{}", a.address, usage.used, usage.quota);
            }
        }
        MailboxCommand::Remove { address } => {
            store.remove_account(&address)?;
            println!("mailbox {} removed", address.to_lowercase());
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
                store.set_quota(&address, q)?;
                println!("quota of {} set to {q} bytes", address.to_lowercase());
            }
            if let Some(r) = ricevute {
                store.set_receipts_folder(&address, r == "on")?;
                println!(
                    "receipts of {} filed in {}",
                    address.to_lowercase(),
                    if r == "on" { "Ricevute" } else { "INBOX" }
                );
            }
        }
        MailboxCommand::Passwd { address, .. } => {
            let password = read_password()?;
            store.set_password_hash(&address, &pec_imap::hash_password(&password)?)?;
            println!("password of {} changed", address.to_lowercase());
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
