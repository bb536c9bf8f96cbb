//! The background work of a gestore: the outbound queue (relay with retries and the 24 h
//! limit, local domains through the incoming point) and the 12 h / 24 h timers.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use pec_proto::build::{Notice, Transaction};
use pec_proto::classify::classify;
use pec_proto::daticert::{Errore, TipoDestinatario};
use pec_smtp::{DeliveryOutcome, Outgoing, RecipientStatus, Relay, Reply};
use pec_store::{
    Batch, DueNotice, EffectKey, NoticeKind, NoticeSentUpdate, Outcome as TimerOutcome,
    OutcomeUpdate, QueueEntry,
};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::antivirus::Scanner;
use crate::events::Event;
use crate::handoff::Handed;
use crate::protocol::ripudio::ACCESS_POINT;
use crate::routing::RouteError;
use crate::service::Gestore;

/// Queue entries read per pass.
pub const QUEUE_BATCH: usize = 256;

/// Queue entries handled at the same time: enough to fill group commits, few enough to
/// stay under a peer's per-address connection limit (20 by default).
pub const QUEUE_CONCURRENCY: usize = 32;

/// Queue entries for one remote domain sent at most over one relay session back to back
/// (see [`Relay::deliver_batch`]), by default: each is still decided and recorded on its
/// own.
pub const RELAY_BATCH: usize = 16;

/// How often the workers look for due work when nothing wakes them.
pub const TICK: Duration = Duration::from_millis(500);

/// One task of a queue pass: an envelope handed off by the access point, or entries read
/// from the store as [`Gestore::plan`] grouped them.
enum Unit {
    Handed(Box<Handed>),
    Planned(Vec<QueueEntry>),
}

/// The relay clients: PEC traffic to other gestori must use TLS (spec §8.3), ordinary
/// Internet mail uses it when offered.
#[derive(Clone)]
pub struct Relays {
    /// For domains in the provider index.
    pub pec: Relay,
    /// For every other domain.
    pub ordinary: Relay,
}

impl<S: Scanner> Gestore<S> {
    /// One pass over the due queue entries, [`QUEUE_CONCURRENCY`] tasks at a time (so that
    /// their durable steps share group commits); returns how many were handled. Entries
    /// for the same remote domain go in batches over relay sessions (see [`Self::plan`]).
    pub async fn run_queue_once(self: &Arc<Self>, relays: &Relays) -> usize {
        // Taken first: what a failed read below leaves out is still delivered.
        let handed = self.handoff.take();
        let now = self.now().timestamp();
        let mut due = match crate::service::blocking(|| self.store.queue_due(now, QUEUE_BATCH)) {
            Ok(d) => d,
            Err(e) => {
                // Not behind as far as anyone can tell: submissions need not wait.
                warn!("cannot read the queue: {e}");
                Vec::new()
            }
        };
        let n = due.len();
        // An entry whose lease ran out while it was still handed off (a worker far
        // behind) is delivered once here, from memory.
        let ids: BTreeSet<i64> = handed.iter().map(|h| h.entry.id).collect();
        due.retain(|e| !ids.contains(&e.id));
        let handled = due.len() + handed.len();
        let work = crate::service::blocking(|| self.plan(due, relays));
        let units = handed.into_iter().map(|h| Unit::Handed(Box::new(h)));
        self.run_units(units.chain(work.into_iter().map(Unit::Planned)), relays)
            .await;
        self.flow.pass(n, QUEUE_BATCH);
        handled
    }

    /// Delivers what the access point has handed off so far, reading nothing from the
    /// queue; returns how many. The last step of a clean stop, once no session is left to
    /// hand off more: what is delivered here does not wait for its lease after a restart.
    pub async fn run_handed_once(self: &Arc<Self>, relays: &Relays) -> usize {
        let handed = self.handoff.take();
        let n = handed.len();
        let units = handed.into_iter().map(|h| Unit::Handed(Box::new(h)));
        self.run_units(units, relays).await;
        n
    }

    /// Runs `units`, [`QUEUE_CONCURRENCY`] at a time, until every one has ended.
    async fn run_units(self: &Arc<Self>, units: impl IntoIterator<Item = Unit>, relays: &Relays) {
        let slots = Arc::new(Semaphore::new(QUEUE_CONCURRENCY));
        let mut tasks = JoinSet::new();
        for unit in units {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                break;
            };
            let (g, relays) = (self.clone(), relays.clone());
            tasks.spawn(async move {
                match unit {
                    Unit::Handed(h) => g.deliver_handed(*h).await,
                    Unit::Planned(mut entries) if entries.len() == 1 => {
                        if let Some(entry) = entries.pop() {
                            g.relay_entry(&relays, entry).await;
                        }
                    }
                    Unit::Planned(entries) => g.relay_batch(&relays, entries).await,
                }
                drop(slot);
            });
        }
        while let Some(r) = tasks.join_next().await {
            if let Err(e) = r {
                warn!("a queue task failed: {e}");
            }
        }
    }

    /// Splits the due entries into units of work: each entry for the access point or a
    /// domain of ours alone; those for each remote domain in batches of at most
    /// `settings.relay_batch`, over as many batches as the relay keeps sessions per destination
    /// (so that a short queue still uses them all).
    fn plan(&self, due: Vec<QueueEntry>, relays: &Relays) -> Vec<Vec<QueueEntry>> {
        let Ok(hosted) = self.hosted_domains() else {
            // Each entry finds out on its own, and is retried.
            return due.into_iter().map(|e| vec![e]).collect();
        };
        let mut work = Vec::new();
        let mut remote: Vec<(String, Vec<QueueEntry>)> = Vec::new();
        for entry in due {
            let domain = entry.domain.trim().to_ascii_lowercase();
            if entry.domain == ACCESS_POINT || hosted.contains(&domain) {
                work.push(vec![entry]);
            } else if let Some((_, entries)) = remote.iter_mut().find(|(d, _)| *d == domain) {
                entries.push(entry);
            } else {
                remote.push((domain, vec![entry]));
            }
        }
        let (sessions, most) = (relays.pec.pool.per_destination(), self.settings.relay_batch);
        for (_, entries) in remote {
            let parts = entries
                .len()
                .div_ceil(most.max(1))
                .max(entries.len().min(sessions));
            let mut batches: Vec<Vec<QueueEntry>> = (0..parts).map(|_| Vec::new()).collect();
            for (i, entry) in entries.into_iter().enumerate() {
                batches[i % parts].push(entry);
            }
            work.extend(batches);
        }
        work
    }

    /// The message of a queue entry, or `None` when there is nothing to send: unreadable
    /// (left for the next pass) or past the queue lifetime (failed).
    fn load(&self, entry: &QueueEntry) -> Option<Vec<u8>> {
        let bytes = match self.store.read_blob(&entry.hash) {
            Ok(b) => b,
            Err(e) => {
                warn!(id = entry.id, "queued message unreadable: {e}");
                return None;
            }
        };
        if entry.is_expired(self.now().timestamp()) {
            // The 24 h notices of PEC recipients come from their timers.
            warn!(id = entry.id, domain = %entry.domain, "gave up after the queue lifetime");
            if let Err(e) = self.store.queue_fail(entry.id) {
                warn!("cannot fail queue entry {}: {e}", entry.id);
            }
            return None;
        }
        Some(bytes)
    }

    /// Relays a batch of entries for one remote domain over one session per target, then
    /// records each outcome on its own (in parallel, so that they share group commits).
    async fn relay_batch(self: &Arc<Self>, relays: &Relays, unit: Vec<QueueEntry>) {
        let ready: Vec<(QueueEntry, Vec<u8>)> = crate::service::blocking(|| {
            unit.into_iter()
                .filter_map(|entry| self.load(&entry).map(|bytes| (entry, bytes)))
                .collect()
        });
        let Some(domain) = ready.first().map(|(e, _)| e.domain.clone()) else {
            return;
        };
        let items: Vec<(&QueueEntry, &[u8])> =
            ready.iter().map(|(e, b)| (e, b.as_slice())).collect();
        let results = self.relay_remote(relays, &domain, &items).await;
        let mut settles = JoinSet::new();
        for ((entry, bytes), results) in ready.into_iter().zip(results) {
            let g = Arc::clone(self);
            settles.spawn_blocking(move || g.settle(entry, &bytes, results));
        }
        while let Some(r) = settles.join_next().await {
            if let Err(e) = r {
                warn!("recording a relay outcome failed: {e}");
            }
        }
    }

    async fn relay_entry(&self, relays: &Relays, entry: QueueEntry) {
        let Some(bytes) = crate::service::blocking(|| self.load(&entry)) else {
            return;
        };
        if entry.domain == ACCESS_POINT {
            self.submit_entry(entry, bytes).await;
            return;
        }
        let local = match self.hosts(&entry.domain) {
            Ok(local) => local,
            Err(e) => {
                warn!(
                    id = entry.id,
                    "cannot tell whether {} is local: {e}", entry.domain
                );
                let reply = Reply::new(451, "4.3.0", e.to_string());
                let results = every_recipient(&entry, &reply);
                crate::service::blocking(|| self.settle(entry, &bytes, results));
                return;
            }
        };
        if local {
            // The entry is completed in the same durable step as the message's handling.
            let done = completion(&entry);
            let reply = self
                .receive_with(&entry.mail_from, &entry.rcpt_to, &bytes, done)
                .await;
            self.settle_local(entry, &bytes, reply);
            return;
        }
        let results = self
            .relay_remote(relays, &entry.domain, &[(&entry, &bytes)])
            .await
            .pop()
            .unwrap_or_default();
        crate::service::blocking(|| self.settle(entry, &bytes, results));
    }

    /// Delivers an envelope the access point handed off ([`crate::handoff`]), as
    /// [`Self::relay_entry`] delivers a local entry read from the store. Its signer is
    /// judged again now: when a receiver would no longer trust it as it was judged at
    /// submission, the envelope is examined like any other.
    async fn deliver_handed(&self, h: Handed) {
        let done = completion(&h.entry);
        let (mail_from, rcpt_to) = (h.entry.mail_from.as_str(), h.entry.rcpt_to.as_slice());
        let now = crate::service::blocking(|| self.handoff.judge(&self.id, self.now()));
        let reply = if now.as_ref() == Some(&h.route) {
            self.receive_own_envelope((mail_from, rcpt_to), &h.envelope, &h.route, done)
                .await
        } else {
            info!(
                id = h.entry.id,
                "own signature judged anew: the envelope is examined"
            );
            self.receive_with(mail_from, rcpt_to, &h.envelope.bytes, done)
                .await
        };
        self.settle_local(h.entry, &h.envelope.bytes, reply);
    }

    /// Records the incoming point's `reply` to a local entry: positive, the entry was
    /// completed with the delivery; otherwise retried or refused as a relay's would be.
    fn settle_local(&self, entry: QueueEntry, bytes: &[u8], reply: Reply) {
        if reply.is_positive() {
            info!(id = entry.id, domain = %entry.domain, "delivered locally");
            return;
        }
        let results = every_recipient(&entry, &reply);
        crate::service::blocking(|| self.settle(entry, bytes, results));
    }

    /// Submits a queued message through the access point from its `mail_from` mailbox
    /// (a ripudio): the entry is completed in the submission's durable step, and retried
    /// with the queue's backoff when that step fails for now.
    async fn submit_entry(&self, entry: QueueEntry, bytes: Vec<u8>) {
        let done = completion(&entry);
        let reply = self
            .submit_message(
                &entry.mail_from,
                (&entry.mail_from, &entry.rcpt_to),
                bytes.clone(),
                done,
            )
            .await;
        if !reply.is_transient() {
            // Accepted, or refused with an avviso di non accettazione to the mailbox.
            info!(id = entry.id, from = %entry.mail_from, reply = %reply, "submitted through the access point");
            return;
        }
        let results = every_recipient(&entry, &reply);
        crate::service::blocking(|| self.settle(entry, &bytes, results));
    }

    /// Relays `items` (entries for `domain` and their messages) to the domain's targets in
    /// order, each entry until one target takes its transaction; the outcome per recipient
    /// of each entry, in the order given.
    async fn relay_remote(
        &self,
        relays: &Relays,
        domain: &str,
        items: &[(&QueueEntry, &[u8])],
    ) -> Vec<Vec<(String, Result<(), Reply>)>> {
        let every = |reply: Reply| {
            items
                .iter()
                .map(|(e, _)| every_recipient(e, &reply))
                .collect()
        };
        let targets = match self.router.targets(domain).await {
            Ok(t) => t,
            Err(RouteError::NoDomain(d)) => {
                return every(Reply::new(
                    550,
                    "5.1.2",
                    format!("dominio {d} non raggiungibile"),
                ));
            }
            Err(e) => return every(Reply::new(451, "4.4.3", e.to_string())),
        };
        let relay = if self.id.trust().index.by_domain(domain).is_some() {
            &relays.pec
        } else {
            &relays.ordinary
        };
        let mut results = vec![None; items.len()];
        let mut last = vec![Reply::new(451, "4.4.1", "nessun server raggiungibile"); items.len()];
        let mut pending: Vec<usize> = (0..items.len()).collect();
        for t in targets {
            if pending.is_empty() {
                break;
            }
            let batch: Vec<Outgoing> = pending
                .iter()
                .map(|&i| Outgoing {
                    mail_from: &items[i].0.mail_from,
                    rcpt_to: &items[i].0.rcpt_to,
                    message: items[i].1,
                })
                .collect();
            let outcomes = relay.deliver_batch(&t.connect, &t.name, &batch).await;
            let mut failed = Vec::new();
            for (i, outcome) in pending.into_iter().zip(outcomes) {
                match outcome {
                    Ok(outcome) => results[i] = Some(per_recipient(outcome)),
                    // A server that refuses the whole transaction permanently decides for all.
                    Err(e) if !e.is_temporary() => {
                        results[i] = Some(every_recipient(
                            items[i].0,
                            &Reply::new(554, "5.4.0", e.to_string()),
                        ));
                    }
                    Err(e) => {
                        last[i] = Reply::new(451, "4.4.1", e.to_string());
                        failed.push(i);
                    }
                }
            }
            if let Some(&i) = failed.first() {
                warn!(target = %t.connect, failed = failed.len(), "relay attempt failed: {}", last[i].text);
            }
            pending = failed;
        }
        results
            .into_iter()
            .zip(last)
            .zip(items)
            .map(|((r, last), (entry, _))| r.unwrap_or_else(|| every_recipient(entry, &last)))
            .collect()
    }

    /// Records a delivery attempt: done, retried later for temporary failures, or given up
    /// with a mancata consegna for PEC recipients refused permanently; the entry's
    /// completion is stored with what replaces it (new entries, notices), so an entry
    /// handled twice (it is gone the second time) produces nothing twice. When the
    /// notices cannot be made, the entry is retried rather than completed without them.
    fn settle(&self, entry: QueueEntry, bytes: &[u8], results: Vec<(String, Result<(), Reply>)>) {
        let now = self.now();
        let temporary: Vec<String> = results
            .iter()
            .filter(|(_, r)| r.as_ref().is_err_and(|r| r.is_transient()))
            .map(|(t, _)| t.clone())
            .collect();
        let permanent: Vec<(String, Reply)> = results
            .into_iter()
            .filter_map(|(t, r)| r.err().filter(|r| !r.is_transient()).map(|r| (t, r)))
            .collect();
        let retry = |error: &str| {
            let backoff = (self.settings.retry_base_secs << entry.attempts.min(16))
                .min(self.settings.retry_max_secs);
            if let Err(e) = self
                .store
                .queue_retry(entry.id, now.timestamp() + backoff, error)
            {
                warn!("cannot reschedule queue entry {}: {e}", entry.id);
            }
        };
        if temporary.len() == entry.rcpt_to.len() {
            retry(&temporary.join(", "));
            return;
        }
        let mut b = Batch {
            completed: vec![entry.id],
            ..Batch::default()
        };
        if !temporary.is_empty() {
            let mut rest = self.queue_entries(&entry.msgid, &entry.mail_from, &temporary, bytes);
            for q in &mut rest {
                q.expires_at = entry.expires_at;
            }
            b.queue.extend(rest);
        }
        if !permanent.is_empty()
            && let Err(e) = self.refusal_notices(&mut b, bytes, &permanent)
        {
            warn!(
                id = entry.id,
                "cannot make the mancata consegna, retrying: {e}"
            );
            retry(&e.to_string());
            return;
        }
        match self.commit(b) {
            Ok(c) if c.already_done.is_some() => {
                info!(
                    id = entry.id,
                    "queue entry handled meanwhile by another worker"
                );
            }
            Ok(_) => {
                info!(id = entry.id, domain = %entry.domain, refused = permanent.len(), retried = temporary.len(), "relayed");
            }
            Err(e) => warn!("cannot record the outcome of queue entry {}: {e}", entry.id),
        }
    }

    /// For a transport envelope refused permanently by the recipient's server, the sender
    /// gets an avviso di mancata consegna for each PEC recipient (no-dominio when the
    /// domain cannot be reached at all).
    fn refusal_notices(
        &self,
        b: &mut Batch,
        bytes: &[u8],
        refused: &[(String, Reply)],
    ) -> crate::Result<()> {
        let c = classify(bytes);
        let Some(d) = c
            .daticert
            .filter(|d| d.tipo == pec_proto::daticert::Tipo::PostaCertificata)
        else {
            return Ok(());
        };
        let tx = Transaction::from_daticert(&d);
        let now = self.now();
        for (r, reply) in refused {
            let certified = tx.destinatari.iter().any(|x| {
                x.indirizzo.eq_ignore_ascii_case(r) && x.tipo == TipoDestinatario::Certificato
            });
            if !certified {
                continue;
            }
            let errore = match reply.enhanced.as_deref() {
                Some("5.1.2") => Errore::NoDominio,
                Some("5.1.1") => Errore::NoDest,
                _ => Errore::Altro,
            };
            let detail = format!("{} {}", reply.code, reply.text);
            let g = self.id.notice(
                &tx,
                &Notice::ErroreConsegna {
                    recipient: r,
                    errore,
                    detail: &detail,
                },
                &tx.mittente,
                now,
            )?;
            b.outcomes.push(OutcomeUpdate {
                identificativo: tx.identificativo.clone(),
                recipient: r.clone(),
                outcome: TimerOutcome::Error,
            });
            self.protocol_receipt(b, &g.bytes, &tx.mittente);
            self.deliver(
                b,
                self.id.address(),
                (&tx.mittente, self.receipt_folder(&tx.mittente)?),
                &g.bytes,
                "errore-consegna",
            );
            b.log.push(self.log(
                Event::ErroreConsegna,
                &tx,
                &[&g.message_id],
                &self.id.name,
                &detail,
            ));
        }
        Ok(())
    }

    /// One pass over the due 12 h / 24 h notices; returns how many were sent.
    pub fn run_timers_once(&self) -> usize {
        let now = self.now();
        let due = match self
            .store
            .due_notices(now.timestamp(), pec_store::TWENTY_FOUR_HOURS)
        {
            Ok(d) => d,
            Err(e) => {
                warn!("cannot read the timers: {e}");
                return 0;
            }
        };
        let mut sent = 0;
        for notice in due {
            match self.timeout_notice(&notice) {
                Ok(()) => sent += 1,
                Err(e) => {
                    warn!(identificativo = %notice.timer.identificativo, "timeout notice not sent: {e}")
                }
            }
        }
        sent
    }

    /// Sends one due notice: the notice, its key and the mark that stops it being due
    /// again are one durable step, so it is sent once even if this runs twice (a crash
    /// after the step, two workers).
    fn timeout_notice(&self, due: &DueNotice) -> crate::Result<()> {
        let t = &due.timer;
        let hash = t
            .envelope
            .as_deref()
            .ok_or_else(|| crate::Error::Stored("timer without its envelope".into()))?;
        let envelope = self.store.read_blob(hash)?;
        let d = classify(&envelope)
            .daticert
            .ok_or_else(|| crate::Error::Stored("stored envelope without daticert".into()))?;
        let tx = Transaction::from_daticert(&d);
        let n = match due.kind {
            NoticeKind::Twelve => Notice::Preavviso12h {
                recipient: &t.recipient,
            },
            NoticeKind::TwentyFour => Notice::Preavviso24h {
                recipient: &t.recipient,
            },
        };
        let folder = self.receipt_folder(&t.sender)?;
        let g = self.id.notice(&tx, &n, &t.sender, self.now())?;
        let mut b = Batch::default();
        self.deliver(
            &mut b,
            self.id.address(),
            (&t.sender, folder),
            &g.bytes,
            "preavviso-errore-consegna",
        );
        b.log.push(self.log(
            Event::Preavviso,
            &tx,
            &[&g.message_id],
            &self.id.name,
            &t.recipient,
        ));
        b.notices_sent.push(NoticeSentUpdate {
            identificativo: t.identificativo.clone(),
            recipient: t.recipient.clone(),
            kind: due.kind,
        });
        b.effects
            .push(self.effect(EffectKey::notice(due.kind, &t.identificativo, &t.recipient)));
        if let Some(done) = self.commit(b)?.already_done {
            info!(identificativo = %t.identificativo, ?done, "notice sent already");
        }
        Ok(())
    }
}

/// `reply`, failing every recipient of `entry`: the outcome of a step that took none.
fn every_recipient(entry: &QueueEntry, reply: &Reply) -> Vec<(String, Result<(), Reply>)> {
    entry
        .rcpt_to
        .iter()
        .map(|t| (t.clone(), Err(reply.clone())))
        .collect()
}

/// The batch that completes `entry`, for the durable step that handles it.
fn completion(entry: &QueueEntry) -> Batch {
    Batch {
        completed: vec![entry.id],
        ..Batch::default()
    }
}

/// The outcome of a transaction per recipient: taken, or the reply that refused it.
fn per_recipient(outcome: DeliveryOutcome) -> Vec<(String, Result<(), Reply>)> {
    outcome
        .recipients
        .into_iter()
        .map(|o| match o.status {
            RecipientStatus::Accepted => (o.rcpt, Ok(())),
            RecipientStatus::TemporaryFailure(r) | RecipientStatus::PermanentFailure(r) => {
                (o.rcpt, Err(r))
            }
        })
        .collect()
}

/// How long the legal log, the security archive and the virus store keep records
/// (spec §8.1, §8.2).
pub const RETENTION_MONTHS: u32 = 30;

impl<S: Scanner> Gestore<S> {
    /// Removes what is older than the retention period; returns (log, archive, virus)
    /// records removed. The effect keys, the log's time stamps and the protocol offices'
    /// events go with the log records of the same age: a message older than that is no
    /// longer recognised as handled, nor listed to its office.
    pub fn purge_expired(&self) -> (u64, u64, u64) {
        let now = self.now();
        let Some(cutoff) = now.checked_sub_months(chrono::Months::new(RETENTION_MONTHS)) else {
            return (0, 0, 0);
        };
        let cutoff = cutoff.timestamp();
        let count = |what: &str, r: pec_store::Result<u64>| {
            r.unwrap_or_else(|e| {
                warn!("cannot purge the {what}: {e}");
                0
            })
        };
        count("effect keys", self.store.purge_effects(cutoff));
        count(
            "uptime record and log time stamps",
            self.store.purge_proofs(cutoff),
        );
        count("protocol offices' events", self.store.purge_events(cutoff));
        (
            count("legal log", self.store.purge_log(cutoff)),
            count("security archive", self.store.purge_archive(cutoff)),
            count("virus store", self.store.purge_virus(cutoff)),
        )
    }
}

/// Runs the queue and timer workers until `shutdown` resolves; purges expired records
/// once an hour (of the gestore's clock).
pub async fn run_workers<S: Scanner>(
    g: Arc<Gestore<S>>,
    relays: Relays,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut last_purge: Option<chrono::DateTime<chrono::Utc>> = None;
    loop {
        let worked = g.run_queue_once(&relays).await;
        crate::service::blocking(|| g.run_timers_once());
        let now = g.now();
        if last_purge.is_none_or(|t| now - t >= chrono::Duration::hours(1)) {
            let (log, archive, virus) = crate::service::blocking(|| g.purge_expired());
            if log + archive + virus > 0 {
                info!(
                    log,
                    archive, virus, "purged records older than {RETENTION_MONTHS} months"
                );
            }
            last_purge = Some(now);
        }
        if worked >= QUEUE_BATCH {
            // Behind: the next pass at once, unless told to stop.
            tokio::select! {
                biased;
                _ = &mut shutdown => break,
                _ = std::future::ready(()) => continue,
            }
        }
        tokio::select! {
            _ = &mut shutdown => break,
            _ = g.queued.notified() => {}
            _ = tokio::time::sleep(TICK) => {}
        }
    }
}
