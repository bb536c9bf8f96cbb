//! [`PgStore`]: the store in PostgreSQL, for a gestore of several nodes. Every node runs
//! `pecd serve` on the same database (`[store] url`); the database is the only shared
//! state — message bytes included — so any node serves any mailbox and takes over any
//! queued work, and a node keeps nothing in its `data_dir` that another would need.
//!
//! - Each call is one transaction on a connection owned by a worker thread
//!   ([`pool`]), so the store may be called from any thread, inside a tokio runtime or
//!   not, and reconnects by itself: a lost connection is [`crate::Error::Unavailable`],
//!   which callers treat as temporary.
//! - Queue entries and due timers are claimed with leases ([`ledger`]); effect keys and
//!   completed entries make each effect happen once whichever node gets there
//!   ([`batch`]); the legal log is one chain serialised by a row lock ([`log`]).
//! - Deliveries, flag changes and queued entries are announced to the other nodes with
//!   `LISTEN`/`NOTIFY` ([`changes`]).
//!
//! The connection is plain TCP or a Unix socket, without TLS: run PostgreSQL on a
//! private network or the same host (TLS is a connector away: [`pool::Connector`]).

mod administer;
mod batch;
mod blobs;
mod changes;
mod check;
mod directory;
mod enti;
mod ledger;
mod log;
mod mailboxes;
pub mod migrate;
mod pool;
mod proof;
mod registry;
mod schema;

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use changes::{Listener, Node};
use pool::{Access, Connector, Pool};

use crate::effects::EffectKey;
use crate::error::{Error, Result};
use crate::messages::Delivery;
use crate::model::{
    Account, Admin, AdminChange, ApiToken, ArchiveEntry, ArchiveOptions, Batch, CheckReport,
    Committed, Copied, Delivered, Direction, Domain, DueNotice, Ente, EventQuery, FlagOp, Folder,
    LogEntry, LogHead, LogQuery, LogRecord, LogTimestamp, LogVerification, MailboxEvent,
    MessageMeta, NewAccount, NewLogTimestamp, NewQueueEntry, NewTimer, NewVirusEntry, NoticeKind,
    Outcome, QueueEntry, QueueSummary, RegistryEvent, SeenStored, Selected, Timer, Uptime, Usage,
    VirusEntry,
};
use crate::store::{Blobs, ChangeHook, Changes, Directory, Ledger, Mailboxes, Maintenance};

/// How a [`PgStore`] connects and shares work with the other nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgOptions {
    /// `postgresql://user@host:port/dbname` (or the `key=value` form libpq accepts).
    pub url: String,
    /// Connections (and worker threads) of this node, at most.
    pub connections: usize,
    /// How long a claimed queue entry or timer stays this node's: another node takes it
    /// over this long after the claim if this node has not finished with it (it died).
    pub lease: Duration,
    /// A name of this node that stays the same across its restarts and differs from
    /// every other node's on its host (`pecd`: its `data_dir`): its leases are then
    /// owned by `<host>:<name>`, and the node restarted after a crash takes its claims
    /// back at its first pass. `None`: owned by this process alone, so a restarted node
    /// waits for them like any other node, `lease` after the claim.
    pub stable_name: Option<String>,
}

impl PgOptions {
    /// The defaults for `url`: 8 connections, leases of 5 minutes (longer than one
    /// relay attempt with its SMTP timeouts).
    pub fn new(url: &str) -> Self {
        PgOptions {
            url: url.to_string(),
            connections: 8,
            lease: Duration::from_secs(300),
            stable_name: None,
        }
    }
}

/// The store in PostgreSQL; see the module documentation.
pub struct PgStore {
    // Dropped first: the listening thread stops before the workers.
    listener: Mutex<Option<Listener>>,
    pool: Pool,
    config: postgres::Config,
    node: Node,
    lease: i64,
}

/// The connection settings of `url`, with the timeouts a server must have: a node must
/// notice a dead database in seconds, not in the kernel's two hours.
fn connection_config(url: &str) -> Result<postgres::Config> {
    let mut config: postgres::Config = url.parse()?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(10));
    }
    if config.get_application_name().is_none() {
        config.application_name("pecd");
    }
    config
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(30));
    Ok(config)
}

impl PgStore {
    /// Connects to the database of `options`, brings its schema up to date (once, if
    /// several nodes start together) and starts the workers.
    pub fn open(options: &PgOptions) -> Result<Self> {
        let config = connection_config(&options.url)?;
        // On a thread of its own: the caller may be inside a tokio runtime.
        let connect = Connector::new(config.clone());
        std::thread::Builder::new()
            .name("pec-store-pg-migrate".into())
            .spawn(move || schema::migrate(&mut connect.connect()?))
            .map_err(|e| Error::io("<postgres migration thread>", e))?
            .join()
            .map_err(|_| Error::Unavailable("the schema migration panicked".into()))??;
        Ok(PgStore {
            listener: Mutex::new(None),
            pool: Pool::start(Connector::new(config.clone()), options.connections)?,
            config,
            node: Node::new(options.stable_name.as_deref())?,
            lease: i64::try_from(options.lease.as_secs()).unwrap_or(i64::MAX),
        })
    }

    /// This store's name among the nodes (the owner of its leases).
    pub fn node(&self) -> &str {
        self.node.owner()
    }

    /// Runs a writing job.
    fn write<T: Send + 'static>(
        &self,
        f: impl Fn(&mut postgres::Transaction<'_>, &Node) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let node = self.node.clone();
        self.pool.run(Access::Write, move |tx| f(tx, &node))
    }

    /// Runs a reading job on one snapshot.
    fn read<T: Send + 'static>(
        &self,
        f: impl Fn(&mut postgres::Transaction<'_>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.pool.run(Access::Read, f)
    }
}

impl Directory for PgStore {
    fn add_domain(&self, name: &str, default_quota: u64) -> Result<()> {
        let name = name.to_string();
        self.write(move |tx, _| directory::add_domain(tx, &name, default_quota))
    }

    fn list_domains(&self) -> Result<Vec<Domain>> {
        self.read(directory::list_domains)
    }

    fn remove_domain(&self, name: &str) -> Result<()> {
        let name = name.to_string();
        self.write(move |tx, _| directory::remove_domain(tx, &name))
    }

    fn create_account(&self, new: &NewAccount) -> Result<Account> {
        let new = new.clone();
        self.write(move |tx, _| directory::create_account(tx, &new))
    }

    fn account(&self, address: &str) -> Result<Account> {
        let address = address.to_string();
        self.read(move |tx| directory::get_account(tx, &address))
    }

    fn list_accounts(&self, domain: Option<&str>) -> Result<Vec<Account>> {
        let domain = domain.map(str::to_string);
        self.read(move |tx| directory::list_accounts(tx, domain.as_deref()))
    }

    fn remove_account(&self, address: &str) -> Result<()> {
        let address = address.to_string();
        self.write(move |tx, _| directory::remove_account(tx, &address))
    }

    fn set_password_hash(&self, address: &str, hash: &str) -> Result<()> {
        let (address, hash) = (address.to_string(), hash.to_string());
        self.write(move |tx, _| directory::set_password_hash(tx, &address, &hash))
    }

    fn set_quota(&self, address: &str, quota: u64) -> Result<()> {
        let address = address.to_string();
        self.write(move |tx, _| directory::set_quota(tx, &address, quota))
    }

    fn set_receipts_folder(&self, address: &str, on: bool) -> Result<()> {
        let address = address.to_string();
        self.write(move |tx, _| directory::set_receipts_folder(tx, &address, on))
    }

    fn add_ente(&self, ente: &Ente) -> Result<()> {
        let ente = ente.clone();
        self.write(move |tx, _| enti::add_ente(tx, &ente))
    }

    fn list_enti(&self) -> Result<Vec<Ente>> {
        self.read(enti::list_enti)
    }

    fn add_admin(&self, admin: &Admin) -> Result<()> {
        let admin = admin.clone();
        self.write(move |tx, _| enti::add_admin(tx, &admin))
    }

    fn find_admin(&self, login: &str) -> Result<Option<Admin>> {
        let login = login.to_string();
        self.read(move |tx| enti::find_admin(tx, &login))
    }

    fn record_mailbox_event(&self, event: &MailboxEvent) -> Result<()> {
        let event = event.clone();
        self.write(move |tx, _| enti::record_mailbox_event(tx, &event))
    }

    fn mailbox_events(&self, to: i64) -> Result<Vec<MailboxEvent>> {
        self.read(move |tx| enti::mailbox_events(tx, to))
    }

    fn administer(&self, change: &AdminChange) -> Result<bool> {
        let change = change.clone();
        self.write(move |tx, node| administer::administer(tx, node, &change))
    }

    fn find_token(&self, hash: &str) -> Result<Option<Admin>> {
        let hash = hash.to_string();
        self.read(move |tx| administer::find_token(tx, &hash))
    }

    fn list_tokens(&self, login: Option<&str>) -> Result<Vec<ApiToken>> {
        let login = login.map(str::to_string);
        self.read(move |tx| administer::list_tokens(tx, login.as_deref()))
    }

    fn usage(&self, address: &str) -> Result<Usage> {
        let address = address.to_string();
        let (used, quota) = self.read(move |tx| directory::usage(tx, &address))?;
        Ok(Usage { used, quota })
    }
}

impl Mailboxes for PgStore {
    fn deliver(
        &self,
        address: &str,
        folder: &str,
        bytes: &[u8],
        flags: &[String],
        internaldate: i64,
    ) -> Result<Delivered> {
        let delivery = Delivery::new(
            address.to_string(),
            folder.to_string(),
            bytes.to_vec(),
            flags.to_vec(),
            internaldate,
        );
        self.write(move |tx, node| mailboxes::deliver(tx, node, &delivery))
    }

    fn list_folders(&self, address: &str) -> Result<Vec<Folder>> {
        let address = address.to_string();
        self.read(move |tx| mailboxes::list_folders(tx, &address))
    }

    fn create_folder(&self, address: &str, name: &str) -> Result<()> {
        let (address, name) = (address.to_string(), name.to_string());
        self.write(move |tx, _| mailboxes::create_folder(tx, &address, &name))
    }

    fn rename_folder(&self, address: &str, from: &str, to: &str) -> Result<()> {
        let (address, from, to) = (address.to_string(), from.to_string(), to.to_string());
        self.write(move |tx, _| mailboxes::rename_folder(tx, &address, &from, &to))
    }

    fn delete_folder(&self, address: &str, name: &str) -> Result<()> {
        let (address, name) = (address.to_string(), name.to_string());
        self.write(move |tx, _| mailboxes::delete_folder(tx, &address, &name))
    }

    fn set_subscribed(&self, address: &str, name: &str, subscribed: bool) -> Result<()> {
        let (address, name) = (address.to_string(), name.to_string());
        self.write(move |tx, _| mailboxes::set_subscribed(tx, &address, &name, subscribed))
    }

    fn subscriptions(&self, address: &str) -> Result<Vec<String>> {
        let address = address.to_string();
        self.read(move |tx| mailboxes::subscriptions(tx, &address))
    }

    fn select(&self, address: &str, folder: &str) -> Result<Selected> {
        let (address, folder) = (address.to_string(), folder.to_string());
        self.read(move |tx| mailboxes::select(tx, &address, &folder))
    }

    fn messages(&self, address: &str, folder: &str) -> Result<Vec<MessageMeta>> {
        let (address, folder) = (address.to_string(), folder.to_string());
        self.read(move |tx| mailboxes::list(tx, &address, &folder))
    }

    fn expunged_since(&self, address: &str, folder: &str, modseq: u64) -> Result<Vec<u32>> {
        let (address, folder) = (address.to_string(), folder.to_string());
        self.read(move |tx| mailboxes::expunged_since(tx, &address, &folder, modseq))
    }

    fn fetch(&self, address: &str, folder: &str, uid: u32) -> Result<Vec<u8>> {
        let (address, folder) = (address.to_string(), folder.to_string());
        self.read(move |tx| mailboxes::fetch(tx, &address, &folder, uid))
    }

    fn store_flags(
        &self,
        address: &str,
        folder: &str,
        uids: &[u32],
        op: FlagOp,
        flags: &[String],
    ) -> Result<Vec<MessageMeta>> {
        let (address, folder) = (address.to_string(), folder.to_string());
        let (uids, flags) = (uids.to_vec(), flags.to_vec());
        self.write(move |tx, node| {
            mailboxes::store_flags(tx, node, (&address, &folder), &uids, op, &flags)
        })
    }

    fn expunge(&self, address: &str, folder: &str, uids: Option<&[u32]>) -> Result<Vec<u32>> {
        let (address, folder) = (address.to_string(), folder.to_string());
        let uids = uids.map(<[u32]>::to_vec);
        self.write(move |tx, node| mailboxes::expunge(tx, node, &address, &folder, uids.as_deref()))
    }

    fn copy(&self, address: &str, from: &str, uids: &[u32], to: &str) -> Result<Copied> {
        let (address, from, to) = (address.to_string(), from.to_string(), to.to_string());
        let uids = uids.to_vec();
        self.write(move |tx, node| mailboxes::copy(tx, node, (&address, &from, &to), &uids, false))
    }

    fn move_messages(&self, address: &str, from: &str, uids: &[u32], to: &str) -> Result<Copied> {
        let (address, from, to) = (address.to_string(), from.to_string(), to.to_string());
        let uids = uids.to_vec();
        self.write(move |tx, node| mailboxes::copy(tx, node, (&address, &from, &to), &uids, true))
    }

    fn archive(
        &self,
        address: &str,
        bytes: &[u8],
        direction: Direction,
        kind: &str,
        at: i64,
    ) -> Result<ArchiveEntry> {
        let (address, kind) = (address.to_string(), kind.to_string());
        let hash = crate::blobs::hash_hex(bytes);
        let bytes = bytes.to_vec();
        self.write(move |tx, node| {
            mailboxes::archive(tx, node, (&address, &hash, &bytes), direction, &kind, at)
        })
    }

    fn list_archive(&self, address: &str) -> Result<Vec<ArchiveEntry>> {
        let address = address.to_string();
        self.read(move |tx| mailboxes::list_archive(tx, &address))
    }

    fn read_archive_of(&self, address: &str, uid: u32) -> Result<Vec<u8>> {
        let address = address.to_string();
        self.read(move |tx| mailboxes::read_archive_of(tx, &address, uid))
    }

    fn select_archive(&self, address: &str) -> Result<Selected> {
        let owned = address.to_string();
        if let Some(state) = self.read(move |tx| mailboxes::archive_folder(tx, &owned))? {
            return Ok(state);
        }
        let address = address.to_string();
        self.write(move |tx, _| mailboxes::make_archive_folder(tx, &address))
    }

    fn archive_messages(&self, address: &str) -> Result<Vec<MessageMeta>> {
        let address = address.to_string();
        self.read(move |tx| mailboxes::archive_messages(tx, &address))
    }

    fn set_archive_seen(
        &self,
        address: &str,
        uids: &[u32],
        seen: bool,
        unchanged_since: Option<u64>,
    ) -> Result<SeenStored> {
        let (address, uids) = (address.to_string(), uids.to_vec());
        self.write(move |tx, node| {
            mailboxes::set_archive_seen(tx, node, &address, &uids, seen, unchanged_since)
        })
    }

    fn archive_options(&self, address: &str) -> Result<ArchiveOptions> {
        let address = address.to_string();
        self.read(move |tx| mailboxes::archive_options(tx, &address))
    }

    fn set_archive_options(&self, address: &str, options: &ArchiveOptions) -> Result<()> {
        let (address, options) = (address.to_string(), *options);
        self.write(move |tx, _| mailboxes::set_archive_options(tx, &address, &options))
    }

    fn archive_usage(&self, address: &str) -> Result<Usage> {
        let address = address.to_string();
        self.read(move |tx| mailboxes::archive_usage(tx, &address))
    }

    fn read_archive(&self, id: i64) -> Result<Vec<u8>> {
        self.read(move |tx| mailboxes::read_archive(tx, id))
    }
}

impl Blobs for PgStore {
    fn read_blob(&self, hash: &str) -> Result<Vec<u8>> {
        let hash = hash.to_string();
        self.read(move |tx| blobs::read(tx, &hash))
    }
}

impl Ledger for PgStore {
    fn registry_events(&self, query: &EventQuery) -> Result<Vec<RegistryEvent>> {
        let query = query.clone();
        self.read(move |tx| registry::list(tx, &query))
    }

    fn registry_event(&self, id: i64) -> Result<RegistryEvent> {
        self.read(move |tx| registry::get(tx, id))
    }

    fn registry_events_due(
        &self,
        now: i64,
        claim_until: i64,
        limit: usize,
    ) -> Result<Vec<RegistryEvent>> {
        self.write(move |tx, _| registry::due(tx, now, claim_until, limit))
    }

    fn registry_event_sent(&self, id: i64, at: i64) -> Result<()> {
        self.write(move |tx, _| registry::sent(tx, id, at))
    }

    fn registry_event_retry(&self, id: i64, next_attempt_at: i64, error: &str) -> Result<()> {
        let error = error.to_string();
        self.write(move |tx, _| registry::retry(tx, id, next_attempt_at, &error))
    }

    fn commit_batch(&self, batch: Batch) -> Result<Committed> {
        let prepared = crate::batch::Prepared::new(batch);
        self.write(move |tx, node| batch::apply(tx, node, &prepared))
    }

    fn effects_done(&self, keys: &[EffectKey]) -> Result<Vec<bool>> {
        let keys = keys.to_vec();
        self.read(move |tx| ledger::effects_done(tx, &keys))
    }

    fn append_log(&self, entries: &[LogEntry]) -> Result<Vec<LogRecord>> {
        let entries = entries.to_vec();
        self.write(move |tx, _| log::append(tx, &entries))
    }

    fn verify_log(&self) -> Result<LogVerification> {
        self.read(log::verify)
    }

    fn search_log(&self, query: &LogQuery) -> Result<Vec<LogRecord>> {
        let query = query.clone();
        self.read(move |tx| log::search(tx, &query))
    }

    fn log_head(&self) -> Result<LogHead> {
        self.read(log::head)
    }

    fn store_log_timestamp(&self, stamp: &NewLogTimestamp) -> Result<LogTimestamp> {
        let stamp = stamp.clone();
        self.write(move |tx, _| proof::store_timestamp(tx, &stamp))
    }

    fn list_log_timestamps(&self) -> Result<Vec<LogTimestamp>> {
        self.read(proof::list_timestamps)
    }

    fn count_log_events(&self, from: i64, to: i64) -> Result<Vec<(String, u64)>> {
        self.read(move |tx| log::count_events(tx, from, to))
    }

    fn record_uptime(&self, minute: i64) -> Result<()> {
        self.write(move |tx, _| proof::record_uptime(tx, minute))
    }

    fn uptime(&self, from: i64, to: i64) -> Result<Uptime> {
        self.read(move |tx| proof::uptime(tx, from, to))
    }

    fn enqueue(&self, entry: &NewQueueEntry) -> Result<QueueEntry> {
        let hash = crate::blobs::hash_hex(&entry.message);
        let entry = entry.clone();
        self.write(move |tx, node| ledger::enqueue(tx, node, &hash, &entry))
    }

    fn queue_due(&self, now: i64, limit: usize) -> Result<Vec<QueueEntry>> {
        let lease = self.lease;
        self.write(move |tx, node| ledger::queue_due(tx, node, now, lease, limit))
    }

    fn queue_complete(&self, id: i64) -> Result<()> {
        self.write(move |tx, _| ledger::queue_complete(tx, id))
    }

    fn queue_retry(&self, id: i64, next_attempt_at: i64, error: &str) -> Result<QueueEntry> {
        let error = error.to_string();
        self.write(move |tx, node| ledger::queue_retry(tx, node, id, next_attempt_at, &error))
    }

    fn queue_fail(&self, id: i64) -> Result<QueueEntry> {
        self.write(move |tx, _| ledger::queue_fail(tx, id))
    }

    fn list_queue(&self) -> Result<Vec<QueueEntry>> {
        self.read(ledger::list_queue)
    }

    fn queue_hold(&self, id: i64, held: bool) -> Result<QueueEntry> {
        self.write(move |tx, _| ledger::queue_hold(tx, id, held))
    }

    fn queue_reschedule(&self, id: i64, at: i64) -> Result<QueueEntry> {
        self.write(move |tx, _| ledger::queue_reschedule(tx, id, at))
    }

    fn queue_summary(&self) -> Result<QueueSummary> {
        self.read(ledger::queue_summary)
    }

    fn start_timers(&self, timers: &[NewTimer]) -> Result<()> {
        let timers = timers.to_vec();
        self.write(move |tx, _| ledger::start_timers(tx, &timers))
    }

    fn mark_presa_in_carico(
        &self,
        identificativo: &str,
        recipients: &[String],
        at: i64,
    ) -> Result<u64> {
        let (id, recipients) = (identificativo.to_string(), recipients.to_vec());
        self.write(move |tx, _| ledger::mark_presa_in_carico(tx, &id, &recipients, at))
    }

    fn mark_outcome(
        &self,
        identificativo: &str,
        recipient: &str,
        outcome: Outcome,
    ) -> Result<Timer> {
        let (id, recipient) = (identificativo.to_string(), recipient.to_string());
        self.write(move |tx, _| ledger::mark_outcome(tx, &id, &recipient, outcome))
    }

    fn due_notices(&self, now: i64, twenty_four_after: i64) -> Result<Vec<DueNotice>> {
        let lease = self.lease;
        self.write(move |tx, node| ledger::due_notices(tx, node, now, lease, twenty_four_after))
    }

    fn mark_notice_sent(
        &self,
        identificativo: &str,
        recipient: &str,
        kind: NoticeKind,
    ) -> Result<()> {
        let (id, recipient) = (identificativo.to_string(), recipient.to_string());
        self.write(move |tx, _| ledger::mark_notice_sent(tx, &id, &recipient, kind))
    }

    fn timers(&self, identificativo: &str) -> Result<Vec<Timer>> {
        let id = identificativo.to_string();
        self.read(move |tx| ledger::timers(tx, &id))
    }

    fn store_virus(&self, entry: &NewVirusEntry) -> Result<VirusEntry> {
        let hash = crate::blobs::hash_hex(&entry.message);
        let entry = entry.clone();
        self.write(move |tx, _| ledger::store_virus(tx, &hash, &entry))
    }

    fn list_virus(&self) -> Result<Vec<VirusEntry>> {
        self.read(ledger::list_virus)
    }

    fn virus_entry(&self, id: i64) -> Result<VirusEntry> {
        self.read(move |tx| ledger::virus_entry(tx, id))
    }
}

impl Maintenance for PgStore {
    fn purge_archive(&self, cutoff: i64) -> Result<u64> {
        self.write(move |tx, _| mailboxes::purge_archive(tx, cutoff))
    }

    fn purge_log(&self, cutoff: i64) -> Result<u64> {
        self.write(move |tx, _| log::purge(tx, cutoff))
    }

    fn purge_virus(&self, cutoff: i64) -> Result<u64> {
        self.write(move |tx, _| ledger::purge_virus(tx, cutoff))
    }

    fn purge_effects(&self, cutoff: i64) -> Result<u64> {
        self.write(move |tx, _| ledger::purge_effects(tx, cutoff))
    }

    fn purge_proofs(&self, cutoff: i64) -> Result<u64> {
        self.write(move |tx, _| proof::purge(tx, cutoff))
    }

    fn purge_events(&self, cutoff: i64) -> Result<u64> {
        self.write(move |tx, _| registry::purge(tx, cutoff))
    }

    fn check(&self) -> Result<CheckReport> {
        self.read(check::check)
    }

    fn backup(&self, _dest: &Path) -> Result<u64> {
        Err(Error::Unsupported(
            "a PostgreSQL store is backed up with PostgreSQL's tools (pg_dump, pg_basebackup)",
        ))
    }
}

impl Changes for PgStore {
    fn subscribe(&self, hook: &ChangeHook) -> Result<()> {
        let mut listener = self.listener.lock().unwrap_or_else(|p| p.into_inner());
        if listener.is_none() {
            *listener = Some(Listener::start(
                Connector::new(self.config.clone()),
                self.node.clone(),
            )?);
        }
        if let Some(l) = listener.as_ref() {
            l.add(hook);
        }
        Ok(())
    }
}
