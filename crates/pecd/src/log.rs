//! `pecd log`: the legal message log (spec §8.1) — verify its hash chain, search it,
//! export it.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use chrono::{DateTime, NaiveDate};
use pec_store::{LogFault, LogQuery, LogRecord, write_log_csv, write_log_jsonl};

use crate::config::Config;

/// Output formats of search and export.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    /// One line per record, for people.
    Text,
    /// JSON lines.
    Jsonl,
    /// CSV with a header row.
    Csv,
}

/// `pecd log` subcommands.
#[derive(clap::Subcommand)]
pub enum LogCommand {
    /// Check that no record was altered, removed, inserted or reordered.
    Verify,
    /// Records about a message, an address or a period.
    Search {
        /// The PEC identificativo (msgid).
        #[arg(long)]
        msgid: Option<String>,
        /// A sender or recipient address.
        #[arg(long)]
        address: Option<String>,
        /// From this date (`YYYY-MM-DD` or RFC 3339).
        #[arg(long)]
        from: Option<String>,
        /// Up to this date (`YYYY-MM-DD`, inclusive, or RFC 3339).
        #[arg(long)]
        to: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Every record, for the conservation system.
    Export {
        /// Output format.
        #[arg(long, value_enum, default_value = "jsonl")]
        format: Format,
        /// Write to this file instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

fn parse_date(text: &str, end_of_day: bool) -> anyhow::Result<i64> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp());
    }
    let d = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .with_context(|| format!("{text:?} is not a date (YYYY-MM-DD or RFC 3339)"))?;
    let t = if end_of_day {
        d.and_hms_opt(23, 59, 59)
    } else {
        d.and_hms_opt(0, 0, 0)
    };
    Ok(t.map(|t| t.and_utc().timestamp()).unwrap_or_default())
}

fn describe(fault: &LogFault) -> String {
    match fault {
        LogFault::Altered { seq } => format!("record {seq} was altered"),
        LogFault::OutOfSequence { expected, found } if found > expected => {
            format!("records {expected}..{} were removed", found - 1)
        }
        LogFault::OutOfSequence { expected, found } => {
            format!("a record was inserted or moved: expected {expected}, found {found}")
        }
        LogFault::Truncated { last, head } => {
            format!("the records after {last} (up to {head}) were removed")
        }
        LogFault::HeadMismatch { seq } => {
            format!("the chain does not end in the recorded head at {seq}")
        }
    }
}

fn write(records: &[LogRecord], format: Format, out: &mut dyn Write) -> anyhow::Result<()> {
    match format {
        Format::Jsonl => {
            write_log_jsonl(records, out)?;
        }
        Format::Csv => {
            write_log_csv(records, out)?;
        }
        Format::Text => {
            for r in records {
                let e = &r.entry;
                writeln!(
                    out,
                    "{} {} {} from={} to={} subject={:?} id={} generated={}",
                    r.seq,
                    e.at_local,
                    e.event,
                    e.sender,
                    e.recipients.join(","),
                    e.subject,
                    e.msgid,
                    e.generated_ids.join(",")
                )?;
            }
        }
    }
    Ok(())
}

/// Runs a `pecd log` subcommand.
pub fn run(config: &Config, cmd: LogCommand) -> anyhow::Result<ExitCode> {
    let store = crate::admin::open(config)?;
    match cmd {
        LogCommand::Verify => {
            let v = store.verify_log()?;
            match &v.fault {
                None => {
                    println!(
                        "log intact: {} records checked, head {} {}",
                        v.checked, v.head.seq, v.head.hash
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Some(f) => {
                    eprintln!("pecd: LOG ALTERED: {}", describe(f));
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        LogCommand::Search {
            msgid,
            address,
            from,
            to,
            format,
        } => {
            if msgid.is_none() && address.is_none() && from.is_none() && to.is_none() {
                bail!("give at least one of --msgid, --address, --from, --to");
            }
            let query = LogQuery {
                msgid,
                address,
                from: from.as_deref().map(|d| parse_date(d, false)).transpose()?,
                to: to.as_deref().map(|d| parse_date(d, true)).transpose()?,
            };
            let records = store.search_log(&query)?;
            write(&records, format, &mut std::io::stdout().lock())?;
            Ok(ExitCode::SUCCESS)
        }
        LogCommand::Export { format, output } => {
            let records = store.search_log(&LogQuery::default())?;
            match output {
                Some(path) => {
                    let mut f = std::fs::File::create(&path)
                        .with_context(|| format!("cannot create {}", path.display()))?;
                    write(&records, format, &mut f)?;
                    f.sync_all()?;
                }
                None => write(&records, format, &mut std::io::stdout().lock())?,
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
