//! `pecd queue`: the outgoing queue as the administrator sees and acts on it — list,
//! show, retry now, hold, drop.
//!
//! Dropping never loses a PEC obligation silently. A drop is what the 24 h limit of the
//! queue does early (spec §7.3): the entry is removed in the same durable step as a
//! legal log record (`rimozione-coda`) naming who asked and why, and nothing else
//! changes — in particular the 12 h / 24 h timers of the PEC recipients keep running,
//! so their sender still receives the avviso di mancata consegna (spec §3.11) unless a
//! delivery receipt arrives first.

use std::process::ExitCode;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use pec_proto::classify::classify;
use pec_store::{Batch, LogEntry, QueueEntry, Store};

use crate::config::Config;

/// The legal log event of an entry dropped by the administrator.
pub const DROP_EVENT: &str = "rimozione-coda";

/// Bytes of a queued message read to show its headers.
const SHOW_LIMIT: usize = 1 << 20;

/// `pecd queue` subcommands.
#[derive(clap::Subcommand)]
pub enum QueueCommand {
    /// The entries waiting to be relayed, oldest first.
    List,
    /// One entry: envelope, schedule, last error and the message's headers.
    Show {
        /// The entry's id (from `pecd queue list`).
        id: i64,
    },
    /// Make an entry due now (and release it if held); a running gestore relays it at
    /// its next pass.
    Retry {
        /// The entry's id.
        id: i64,
    },
    /// Keep an entry from being relayed until `pecd queue retry`; it is still given up
    /// when its 24 h run out.
    Hold {
        /// The entry's id.
        id: i64,
    },
    /// Give up an entry now, as its 24 h limit would: recorded in the legal log; the
    /// PEC recipients' timers keep running, so their sender still gets the avviso di
    /// mancata consegna.
    Drop {
        /// The entry's id.
        id: i64,
        /// Why (recorded in the legal log).
        #[arg(long)]
        reason: String,
    },
}

fn time(t: i64) -> String {
    DateTime::<Utc>::from_timestamp(t, 0).map_or_else(|| t.to_string(), |d| d.to_rfc3339())
}

/// One line of `pecd queue list`.
pub fn line(e: &QueueEntry) -> String {
    format!(
        "{}\t{}\t{}\tqueued={}\tnext={}\texpires={}\tattempts={}{}\tto={}",
        e.id,
        e.domain,
        e.msgid,
        time(e.created_at),
        time(e.next_attempt_at),
        time(e.expires_at),
        e.attempts,
        if e.held { "\tHELD" } else { "" },
        e.rcpt_to.join(",")
    )
}

fn find(store: &dyn Store, id: i64) -> anyhow::Result<QueueEntry> {
    store
        .list_queue()?
        .into_iter()
        .find(|e| e.id == id)
        .with_context(|| format!("no queue entry {id}"))
}

/// The legal log record of a drop.
pub fn drop_record(
    e: &QueueEntry,
    subject: &str,
    gestore: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> LogEntry {
    LogEntry {
        at: now.timestamp(),
        at_local: pec_gestore::clock::italian(now).to_rfc3339(),
        event: DROP_EVENT.into(),
        msgid: e.msgid.clone(),
        original_msgid: String::new(),
        sender: e.mail_from.clone(),
        recipients: e.rcpt_to.clone(),
        subject: subject.to_string(),
        generated_ids: Vec::new(),
        gestore: gestore.to_string(),
        detail: format!(
            "removed from the outgoing queue by the administrator after {} attempts \
             (last error: {}): {reason}",
            e.attempts,
            e.last_error.as_deref().unwrap_or("none")
        ),
    }
}

/// Runs a `pecd queue` subcommand.
pub fn run(config: &Config, cmd: QueueCommand) -> anyhow::Result<ExitCode> {
    let store = crate::admin::open(config)?;
    let now = Utc::now();
    match cmd {
        QueueCommand::List => {
            for e in store.list_queue()? {
                println!("{}", line(&e));
            }
        }
        QueueCommand::Show { id } => {
            let e = find(store.as_ref(), id)?;
            println!("{}", line(&e));
            println!("from: {}", e.mail_from);
            println!("size: {}", e.size);
            println!("last error: {}", e.last_error.as_deref().unwrap_or("none"));
            let bytes = store.read_blob(&e.hash)?;
            let head = &bytes[..bytes.len().min(SHOW_LIMIT)];
            let h = classify(head).headers;
            for (name, value) in [
                ("Subject", h.subject),
                ("From", h.from),
                ("To", h.to),
                ("Date", h.date),
                ("Message-ID", h.message_id),
                ("X-Trasporto", h.trasporto),
                ("X-Ricevuta", h.ricevuta),
            ] {
                if let Some(v) = value {
                    println!("{name}: {v}");
                }
            }
        }
        QueueCommand::Retry { id } => {
            let e = store.queue_reschedule(id, now.timestamp())?;
            println!("{}", line(&e));
        }
        QueueCommand::Hold { id } => {
            let e = store.queue_hold(id, true)?;
            println!("{}", line(&e));
        }
        QueueCommand::Drop { id, reason } => {
            if reason.trim().is_empty() {
                bail!("give the reason of the drop with --reason");
            }
            let e = find(store.as_ref(), id)?;
            let bytes = store.read_blob(&e.hash)?;
            let subject = classify(&bytes[..bytes.len().min(SHOW_LIMIT)])
                .headers
                .subject
                .unwrap_or_default();
            let record = drop_record(&e, &subject, &config.gestore.name, &reason, now);
            let committed = store.commit_batch(Batch {
                completed: vec![id],
                log: vec![record],
                ..Batch::default()
            })?;
            if committed.already_done.is_some() {
                bail!("queue entry {id} was relayed or given up meanwhile: nothing dropped");
            }
            let seq = committed.logged.first().map_or(0, |r| r.seq);
            println!("dropped {id}; legal log record {seq}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
