//! The running gestore: the state the three points share (identity, store, clock,
//! antivirus, settings) and the steps that turn a decision into durable state.
//!
//! Every message the gestore generates for someone else goes through the outbound queue,
//! local domains included (spec §2.6: mail between two domains of the same gestore takes
//! the same path as mail between gestori); the queue worker hands local entries to the
//! incoming point directly instead of over SMTP.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use pec_proto::build::Transaction;
use pec_smtp::SessionInfo;
use pec_smtp::trace::{delivered, received};
use pec_store::{
    Batch, Direction, EffectKey, LogEntry, NewArchiveCopy, NewDelivery, NewEffect, NewQueueEntry,
    Store,
};
use tokio::sync::Notify;
use tracing::warn;

use crate::access::Limits;
use crate::antivirus::Scanner;
use crate::clock::{Clock, italian};
use crate::emit::Generated;
use crate::events::Event;
use crate::identity::Identity;
use crate::quota::Space;

/// Seconds in 24 hours: the life of a queued PEC message (spec §2.3, §7.3).
pub const DAY: i64 = 24 * 3600;

/// What the operator configures beyond identity and storage.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The host name in SMTP greetings and `Received:` lines.
    pub hostname: String,
    /// Limits of the access point.
    pub limits: Limits,
    /// Domains or single mailboxes that accept ordinary mail, wrapped in the busta di
    /// anomalia; everyone else accepts only PEC (the default, as the provinces announce).
    pub accept_ordinary: Vec<String>,
    /// First retry delay of the queue, doubled at each attempt.
    pub retry_base_secs: i64,
    /// Longest retry delay.
    pub retry_max_secs: i64,
    /// How long a queued message is tried before it fails (24 h by law).
    pub queue_lifetime_secs: i64,
    /// Queue entries for one remote domain sent at most over one relay session back to
    /// back (see [`crate::workers::RELAY_BATCH`]); 1 sends each on its own.
    pub relay_batch: usize,
    /// The protocol offices and their document policies.
    pub protocol_offices: Vec<crate::protocol::ProtocolOffice>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            hostname: "localhost".into(),
            limits: Limits::default(),
            accept_ordinary: Vec::new(),
            retry_base_secs: 60,
            retry_max_secs: 3600,
            queue_lifetime_secs: DAY,
            relay_batch: crate::workers::RELAY_BATCH,
            protocol_offices: Vec::new(),
        }
    }
}

/// A callback told the address and folder of every mailbox delivery and of every new
/// security archive entry (folder [`pec_store::ARCHIVE_FOLDER`]), for IMAP IDLE.
pub type DeliveryHook = Arc<dyn Fn(&str, &str) + Send + Sync>;

/// JMAP's `pec` property asks the gestore whether a signer is a gestore: the same
/// judgement as the incoming point's (provider index and trusted CAs in force now).
impl<S: Scanner> pec_jmap::SignerTrust for Gestore<S> {
    fn trusted(
        &self,
        signer: &pec_proto::smime::SignerCert,
        at: chrono::DateTime<chrono::Utc>,
    ) -> bool {
        let material = self.id.trust();
        pec_proto::smime::trust(
            &signer.der,
            &signer.chain,
            &material.index,
            material.anchors.as_ref(),
            at,
        )
        .trusted
    }
}

/// The gestore at run time.
pub struct Gestore<S: Scanner> {
    /// Who it is.
    pub id: Identity,
    /// Its durable state.
    pub store: Arc<dyn Store>,
    /// Its clock.
    pub clock: Arc<dyn Clock>,
    /// Its antivirus.
    pub scanner: S,
    /// Its settings.
    pub settings: Settings,
    /// Where to relay mail for other domains.
    pub router: crate::routing::Router,
    /// Wakes the queue worker when something was queued.
    pub queued: Notify,
    /// Slows submission down while the queue is behind ([`crate::flow`]).
    pub flow: crate::flow::InFlow,
    /// Envelopes between two of its mailboxes, on their way to delivery
    /// ([`crate::handoff`]).
    pub handoff: crate::handoff::HandOff,
    /// Told about every mailbox delivery and archive entry.
    pub on_delivery: Option<DeliveryHook>,
    /// Counts what it does.
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// Runs blocking work (signing, verifying, a durable commit) from async code without
/// stalling the runtime. On a multi-thread runtime the worker first hands its other tasks
/// to another thread (`block_in_place`), so that many sessions can wait on the same group
/// commit of the store instead of one per worker thread; elsewhere it just runs `f`.
pub fn blocking<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// The domain of an address, lower case.
pub fn domain_of(address: &str) -> String {
    address
        .rsplit_once('@')
        .map_or(address, |(_, d)| d)
        .trim()
        .to_ascii_lowercase()
}

impl<S: Scanner> Gestore<S> {
    /// Now, from the injected clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Whether this gestore hosts `domain`; an error when the store cannot say (never to
    /// be read as "not hosted": that answer refuses mail for good).
    pub fn hosts(&self, domain: &str) -> pec_store::Result<bool> {
        let domain = domain.trim().to_ascii_lowercase();
        Ok(self.hosted_domains()?.contains(&domain))
    }

    /// The domains this gestore hosts now, lower case: its service domain and every
    /// domain of the store (one added by `pecd domain add` counts at once).
    pub fn hosted_domains(&self) -> pec_store::Result<Vec<String>> {
        let mut domains = vec![domain_of(self.id.address())];
        domains.extend(self.store.list_domains()?.into_iter().map(|d| d.name));
        Ok(domains)
    }

    /// Whether `address` is one of this gestore's service addresses (posta-certificata@,
    /// and the `mailReceipt` of its index record).
    pub fn is_service_address(&self, address: &str) -> bool {
        address.eq_ignore_ascii_case(self.id.address())
            || self
                .id
                .trust()
                .index
                .providers
                .iter()
                .filter(|p| p.name == self.id.name)
                .any(|p| p.mail_receipt.eq_ignore_ascii_case(address))
    }

    /// Whether `address` accepts ordinary mail (as an anomaly envelope).
    pub fn accepts_ordinary(&self, address: &str) -> bool {
        let domain = domain_of(address);
        self.settings
            .accept_ordinary
            .iter()
            .any(|a| a.eq_ignore_ascii_case(address) || a.eq_ignore_ascii_case(&domain))
    }

    /// The folder receipts go to for `address`: `Ricevute` when the mailbox asked for it,
    /// INBOX otherwise (and for an address without a mailbox, whose delivery then fails);
    /// an error when the store cannot say.
    pub fn receipt_folder(&self, address: &str) -> pec_store::Result<&'static str> {
        Ok(self.mailbox_receipts(address)?.unwrap_or("INBOX"))
    }

    /// [`Gestore::receipt_folder`] of `address` when it has a mailbox here, `None` when it
    /// has none (one look-up for both questions); an error when the store cannot say.
    pub fn mailbox_receipts(&self, address: &str) -> pec_store::Result<Option<&'static str>> {
        Ok(self.store.find_account(address)?.map(|a| {
            if a.receipts_folder {
                "Ricevute"
            } else {
                "INBOX"
            }
        }))
    }

    /// Whether `address` has a mailbox here; an error when the store cannot say (never
    /// to be read as "no mailbox": that answer is a signed mancata consegna).
    pub fn has_mailbox(&self, address: &str) -> pec_store::Result<bool> {
        Ok(self.store.find_account(address)?.is_some())
    }

    /// `key`, done now: an effect of a batch that must happen once.
    pub fn effect(&self, key: EffectKey) -> NewEffect {
        NewEffect {
            key,
            at: self.now().timestamp(),
        }
    }

    /// `message` as accepted in an SMTP `session` (submission or MX) for `rcpt_to`, with
    /// this hop's `Received:` line in front (RFC 5321 §4.4).
    pub fn received(&self, session: &SessionInfo, rcpt_to: &[String], message: &[u8]) -> Vec<u8> {
        let date = italian(self.now()).to_rfc2822();
        let trace = received(session, &self.settings.hostname, rcpt_to, &date);
        [trace.as_bytes(), message].concat()
    }

    /// Delivers `bytes` into `address`'s `folder`, as the final hop of a message whose
    /// SMTP reverse path is `return_path`, and keeps the security archive copy (of `kind`)
    /// of what was delivered: `Return-Path:` and `Delivered-To:` in front, outside the
    /// signed part. Both are the same bytes, so the store keeps them once. The delivery
    /// is returned for its flags.
    pub fn deliver<'b>(
        &self,
        b: &'b mut Batch,
        return_path: &str,
        (address, folder): (&str, &str),
        bytes: &[u8],
        kind: &str,
    ) -> &'b mut NewDelivery {
        let address = address.to_ascii_lowercase();
        let bytes = [delivered(return_path, &address).as_bytes(), bytes].concat();
        b.archive
            .push(self.archive_copy(&address, &bytes, Direction::Received, kind));
        b.deliveries.push(NewDelivery {
            address,
            folder: folder.to_string(),
            bytes,
            flags: Vec::new(),
            internaldate: self.now().timestamp(),
        });
        let last = b.deliveries.len() - 1;
        &mut b.deliveries[last]
    }

    /// A security archive copy for `address`.
    pub fn archive_copy(
        &self,
        address: &str,
        bytes: &[u8],
        direction: Direction,
        kind: &str,
    ) -> NewArchiveCopy {
        NewArchiveCopy {
            address: address.to_ascii_lowercase(),
            bytes: bytes.to_vec(),
            direction,
            kind: kind.to_string(),
            at: self.now().timestamp(),
        }
    }

    /// Queue entries sending `bytes` from `mail_from` to `rcpt_to`, one per domain.
    pub fn queue_entries(
        &self,
        msgid: &str,
        mail_from: &str,
        rcpt_to: &[String],
        bytes: &[u8],
    ) -> Vec<NewQueueEntry> {
        let mut by_domain: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for r in rcpt_to {
            by_domain.entry(domain_of(r)).or_default().push(r.clone());
        }
        let now = self.now().timestamp();
        by_domain
            .into_iter()
            .map(|(domain, rcpt_to)| NewQueueEntry {
                msgid: msgid.to_string(),
                mail_from: mail_from.to_string(),
                rcpt_to,
                domain,
                message: bytes.to_vec(),
                created_at: now,
                due_at: now,
                expires_at: now + self.settings.queue_lifetime_secs,
            })
            .collect()
    }

    /// Queues a generated message from the gestore's service address.
    pub fn send(&self, batch: &mut Batch, msgid: &str, g: &Generated) {
        batch.queue.extend(self.queue_entries(
            msgid,
            self.id.address(),
            std::slice::from_ref(&g.to),
            &g.bytes,
        ));
    }

    /// A legal log record of an event about `tx`.
    pub fn log(
        &self,
        event: Event,
        tx: &Transaction,
        generated: &[&str],
        gestore: &str,
        detail: &str,
    ) -> LogEntry {
        let now = self.now();
        LogEntry {
            at: now.timestamp(),
            at_local: italian(now).to_rfc3339(),
            event: event.as_str().to_string(),
            msgid: tx.identificativo.clone(),
            original_msgid: tx.msgid.clone().unwrap_or_default(),
            sender: tx.mittente.clone(),
            recipients: tx.destinatari.iter().map(|d| d.indirizzo.clone()).collect(),
            subject: tx.oggetto.clone().unwrap_or_default(),
            generated_ids: generated.iter().map(|s| s.to_string()).collect(),
            gestore: gestore.to_string(),
            detail: detail.to_string(),
        }
    }

    /// Stores a batch, then wakes the queue worker and IDLE sessions, and warns the
    /// mailboxes the batch took past the quota warning threshold. An empty batch stores
    /// nothing and costs no transaction; a batch found done already
    /// ([`pec_store::Committed::already_done`]) stores nothing and wakes no one.
    pub fn commit(&self, batch: Batch) -> pec_store::Result<pec_store::Committed> {
        if batch.is_empty() {
            return Ok(pec_store::Committed::default());
        }
        let wake_queue = !batch.queue.is_empty();
        let delivered: Vec<(String, String)> = batch
            .deliveries
            .iter()
            .map(|d| (d.address.clone(), d.folder.clone()))
            .collect();
        let events: Vec<String> = batch.log.iter().map(|e| e.event.clone()).collect();
        let committed = blocking(|| self.store.commit_batch(batch))?;
        if committed.already_done.is_some() {
            return Ok(committed);
        }
        self.metrics.committed(events.iter().map(String::as_str));
        // In the batch's order, each with the usage its own step saw: the one delivery that
        // takes a mailbox past the threshold warns, however many commit together.
        for ((address, _), d) in delivered.iter().zip(&committed.delivered) {
            self.warn_if_crossed(Space::Mailbox, address, d.usage, d.size);
        }
        let mut archived: BTreeMap<&str, u64> = BTreeMap::new();
        for e in &committed.archived {
            *archived.entry(e.address.as_str()).or_default() += e.size;
        }
        for (address, bytes) in archived {
            self.warn_if_archive_nearly_full(address, bytes);
        }
        for address in committed.archive_full.iter().collect::<BTreeSet<_>>() {
            warn!(mailbox = %address, "security archive full: a copy was not kept");
        }
        if wake_queue {
            self.queued.notify_one();
        }
        if let Some(hook) = &self.on_delivery {
            for (address, folder) in delivered {
                hook(&address, &folder);
            }
            // A new archive entry is news for the sessions watching the archive folder.
            let archived: BTreeSet<&str> = committed
                .archived
                .iter()
                .map(|e| e.address.as_str())
                .collect();
            for address in archived {
                hook(address, pec_store::ARCHIVE_FOLDER);
            }
        }
        Ok(committed)
    }
}
