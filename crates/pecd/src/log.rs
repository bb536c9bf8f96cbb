//! `pecd log`: the legal message log (spec §8.1) — verify its hash chain, search it,
//! export it, time-stamp its head at an RFC 3161 authority and export the time stamps
//! for `openssl ts -verify`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use chrono::{DateTime, NaiveDate};
use pec_store::{LogFault, LogQuery, LogRecord, LogTimestamp, write_log_csv, write_log_jsonl};

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
    /// Time-stamp the log's current head now at `[log] tsa_url` (the running gestore
    /// does it every day) and keep the authority's answer.
    Timestamp,
    /// The time stamps kept: head record, head hash, when, which authority.
    Timestamps {
        /// Also write each as `<DIR>/<id>.tsr` (the authority's DER answer) with
        /// `<DIR>/<id>.sha256` (the head hash it covers, hex) for
        /// `openssl ts -verify -digest "$(cat <id>.sha256)" -in <id>.tsr -CAfile tsa-ca.pem`.
        #[arg(long, value_name = "DIR")]
        export: Option<PathBuf>,
    },
}

/// One line of `pecd log timestamps`.
fn stamp_line(s: &LogTimestamp) -> String {
    let at = DateTime::from_timestamp(s.requested_at, 0)
        .map_or_else(|| s.requested_at.to_string(), |t| t.to_rfc3339());
    format!("{}	seq={}	{}	{at}	{}", s.id, s.seq, s.head_hash, s.tsa_url)
}

/// Writes each time stamp's answer and digest into `dir`.
fn export_stamps(stamps: &[LogTimestamp], dir: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for s in stamps {
        for (name, bytes) in [
            (format!("{}.tsr", s.id), s.response.clone()),
            (format!("{}.sha256", s.id), s.head_hash.clone().into_bytes()),
        ] {
            let path = dir.join(name);
            std::fs::write(&path, bytes)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
    }
    Ok(())
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
        LogCommand::Timestamp => {
            let Some(url) = config.log.tsa_url.as_deref() else {
                bail!("no time-stamping authority: set [log] tsa_url");
            };
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let now = chrono::Utc::now().timestamp();
            let stamp =
                runtime.block_on(pec_gestore::proof::stamp_log(store.as_ref(), url, now))?;
            let Some(stamp) = stamp else {
                bail!("the legal log is empty: nothing to time-stamp");
            };
            println!("{}", stamp_line(&stamp));
            Ok(ExitCode::SUCCESS)
        }
        LogCommand::Timestamps { export } => {
            let stamps = store.list_log_timestamps()?;
            for s in &stamps {
                println!("{}", stamp_line(s));
            }
            if let Some(dir) = export {
                export_stamps(&stamps, &dir)?;
            }
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
