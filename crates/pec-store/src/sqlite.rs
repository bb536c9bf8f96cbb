//! [`SqliteStore`]: the embedded backend — one SQLite database (with the small
//! blobs inside) plus the files of large blobs under a root directory, with a
//! group-commit writer thread.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::Connection;

use crate::blobs::{self, SqliteBlobs};
use crate::effects::{self, EffectKey};
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
use crate::store::{Blobs, Changes, Directory, Ledger, Mailboxes, Maintenance};
use crate::writer::Writer;
use crate::{
    accounts, administer, archive, batch, enti, folders, legal_log, lookup, maintenance, messages,
    queue, registry, schema, timers, timestamps, uptime, virus,
};

/// The embedded store: `<root>/store.db` and `<root>/blobs/`.
///
/// Writes go to a single writer thread that commits concurrent requests
/// together; reads use their own connection (WAL lets them run during writes).
pub struct SqliteStore {
    db_path: PathBuf,
    blobs: SqliteBlobs,
    reader: Mutex<Connection>,
    writer: Writer,
}

impl SqliteStore {
    /// Opens the store at `root`, creating the directory, database and blob
    /// directory if needed and applying pending schema migrations.
    pub fn open(root: &Path) -> Result<Self> {
        fs::create_dir_all(root).map_err(|e| Error::io(root, e))?;
        let blobs = SqliteBlobs::open(root)?;
        let db_path = root.join(maintenance::DB_FILE);
        let mut conn = schema::connect(&db_path)?;
        schema::migrate(&mut conn)?;
        let writer = Writer::start(conn)?;
        let reader = Mutex::new(schema::connect(&db_path)?);
        Ok(SqliteStore {
            db_path,
            blobs,
            reader,
            writer,
        })
    }

    /// Transactions committed so far; under concurrent writes this stays
    /// below the number of writes (group commit). For tests and metrics.
    pub fn commits(&self) -> u64 {
        self.writer.commits()
    }

    /// Runs `f` in a read transaction, so it sees one consistent snapshot.
    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        // A panic elsewhere does not damage the connection: keep using it.
        let conn = self.reader.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn.unchecked_transaction()?;
        f(&tx)
    }

    /// Reads the blob `locate` names: an inline one in the same read transaction, a file
    /// after it (so the reader connection is not held during file I/O).
    fn load(&self, locate: impl FnOnce(&Connection) -> Result<String>) -> Result<Vec<u8>> {
        let (hash, inline) = self.read(|c| {
            let hash = locate(c)?;
            let inline = blobs::read_inline(c, &hash)?;
            Ok((hash, inline))
        })?;
        match inline {
            Some(bytes) => Ok(bytes),
            None => self.blobs.read_file(&hash),
        }
    }

    /// Runs `f` on the writer thread; returns once it is durably committed.
    fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.writer.submit(f)
    }
}

impl Directory for SqliteStore {
    fn add_domain(&self, name: &str, default_quota: u64) -> Result<()> {
        let name = name.to_string();
        self.write(move |c| accounts::add_domain(c, &name, default_quota))
    }

    fn list_domains(&self) -> Result<Vec<Domain>> {
        self.read(accounts::list_domains)
    }

    fn remove_domain(&self, name: &str) -> Result<()> {
        let name = name.to_string();
        self.write(move |c| accounts::remove_domain(c, &name))
    }

    fn create_account(&self, new: &NewAccount) -> Result<Account> {
        let new = new.clone();
        self.write(move |c| accounts::create_account(c, &new))
    }

    fn account(&self, address: &str) -> Result<Account> {
        self.read(|c| accounts::get_account(c, address))
    }

    fn list_accounts(&self, domain: Option<&str>) -> Result<Vec<Account>> {
        self.read(|c| accounts::list_accounts(c, domain))
    }

    fn remove_account(&self, address: &str) -> Result<()> {
        let address = address.to_string();
        self.write(move |c| accounts::remove_account(c, &address))
    }

    fn set_password_hash(&self, address: &str, hash: &str) -> Result<()> {
        let (address, hash) = (address.to_string(), hash.to_string());
        self.write(move |c| accounts::set_password_hash(c, &address, &hash))
    }

    fn set_quota(&self, address: &str, quota: u64) -> Result<()> {
        let address = address.to_string();
        self.write(move |c| accounts::set_quota(c, &address, quota))
    }

    fn set_receipts_folder(&self, address: &str, on: bool) -> Result<()> {
        let address = address.to_string();
        self.write(move |c| accounts::set_receipts_folder(c, &address, on))
    }

    fn add_ente(&self, ente: &Ente) -> Result<()> {
        let ente = ente.clone();
        self.write(move |c| enti::add_ente(c, &ente))
    }

    fn list_enti(&self) -> Result<Vec<Ente>> {
        self.read(enti::list_enti)
    }

    fn add_admin(&self, admin: &Admin) -> Result<()> {
        let admin = admin.clone();
        self.write(move |c| enti::add_admin(c, &admin))
    }

    fn find_admin(&self, login: &str) -> Result<Option<Admin>> {
        self.read(|c| enti::find_admin(c, login))
    }

    fn record_mailbox_event(&self, event: &MailboxEvent) -> Result<()> {
        let event = event.clone();
        self.write(move |c| enti::record_mailbox_event(c, &event))
    }

    fn mailbox_events(&self, to: i64) -> Result<Vec<MailboxEvent>> {
        self.read(|c| enti::mailbox_events(c, to))
    }

    fn administer(&self, change: &AdminChange) -> Result<bool> {
        let change = change.clone();
        self.write(move |c| administer::administer(c, &change))
    }

    fn find_token(&self, hash: &str) -> Result<Option<Admin>> {
        self.read(|c| administer::find_token(c, hash))
    }

    fn list_tokens(&self, login: Option<&str>) -> Result<Vec<ApiToken>> {
        self.read(|c| administer::list_tokens(c, login))
    }

    fn usage(&self, address: &str) -> Result<Usage> {
        self.read(|c| {
            let (id, quota) = lookup::account(c, address)?;
            Ok(Usage {
                used: lookup::usage(c, id)?,
                quota,
            })
        })
    }
}

impl Mailboxes for SqliteStore {
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
        self.blobs.prepare(&delivery.hash, &delivery.bytes)?;
        let blobs = self.blobs.clone();
        self.write(move |c| messages::deliver(c, &blobs, &delivery))
    }

    fn list_folders(&self, address: &str) -> Result<Vec<Folder>> {
        self.read(|c| folders::list(c, address))
    }

    fn create_folder(&self, address: &str, name: &str) -> Result<()> {
        let (address, name) = (address.to_string(), name.to_string());
        self.write(move |c| folders::create(c, &address, &name))
    }

    fn rename_folder(&self, address: &str, from: &str, to: &str) -> Result<()> {
        let (address, from, to) = (address.to_string(), from.to_string(), to.to_string());
        self.write(move |c| folders::rename(c, &address, &from, &to))
    }

    fn delete_folder(&self, address: &str, name: &str) -> Result<()> {
        let (address, name) = (address.to_string(), name.to_string());
        self.write(move |c| folders::delete(c, &address, &name))
    }

    fn set_subscribed(&self, address: &str, name: &str, subscribed: bool) -> Result<()> {
        let (address, name) = (address.to_string(), name.to_string());
        self.write(move |c| folders::set_subscribed(c, &address, &name, subscribed))
    }

    fn subscriptions(&self, address: &str) -> Result<Vec<String>> {
        self.read(|c| folders::subscriptions(c, address))
    }

    fn select(&self, address: &str, folder: &str) -> Result<Selected> {
        self.read(|c| folders::select(c, address, folder))
    }

    fn messages(&self, address: &str, folder: &str) -> Result<Vec<MessageMeta>> {
        self.read(|c| messages::list(c, address, folder))
    }

    fn expunged_since(&self, address: &str, folder: &str, modseq: u64) -> Result<Vec<u32>> {
        self.read(|c| messages::expunged_since(c, address, folder, modseq))
    }

    fn fetch(&self, address: &str, folder: &str, uid: u32) -> Result<Vec<u8>> {
        self.load(|c| messages::blob_of(c, address, folder, uid))
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
        self.write(move |c| messages::store_flags(c, &address, &folder, &uids, op, &flags))
    }

    fn expunge(&self, address: &str, folder: &str, uids: Option<&[u32]>) -> Result<Vec<u32>> {
        let (address, folder) = (address.to_string(), folder.to_string());
        let uids = uids.map(<[u32]>::to_vec);
        self.write(move |c| messages::expunge(c, &address, &folder, uids.as_deref()))
    }

    fn copy(&self, address: &str, from: &str, uids: &[u32], to: &str) -> Result<Copied> {
        let (address, from, to) = (address.to_string(), from.to_string(), to.to_string());
        let uids = uids.to_vec();
        self.write(move |c| messages::copy(c, &address, &from, &uids, &to, false))
    }

    fn move_messages(&self, address: &str, from: &str, uids: &[u32], to: &str) -> Result<Copied> {
        let (address, from, to) = (address.to_string(), from.to_string(), to.to_string());
        let uids = uids.to_vec();
        self.write(move |c| messages::copy(c, &address, &from, &uids, &to, true))
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
        let hash = blobs::hash_hex(bytes);
        self.blobs.prepare(&hash, bytes)?;
        let bytes = bytes.to_vec();
        let blobs = self.blobs.clone();
        self.write(move |c| {
            archive::archive(c, &blobs, (&address, &hash, &bytes), direction, &kind, at)
        })
    }

    fn list_archive(&self, address: &str) -> Result<Vec<ArchiveEntry>> {
        self.read(|c| archive::list(c, address))
    }

    fn read_archive(&self, id: i64) -> Result<Vec<u8>> {
        self.load(|c| {
            archive::blob_of(c, id)?.ok_or_else(|| Error::Corrupt(format!("no archive entry {id}")))
        })
    }

    fn read_archive_of(&self, address: &str, uid: u32) -> Result<Vec<u8>> {
        self.load(|c| archive::blob_of_uid(c, address, uid)?.ok_or(Error::NoSuchMessage(uid)))
    }

    fn select_archive(&self, address: &str) -> Result<Selected> {
        if let Some(state) = self.read(|c| archive::folder(c, address))? {
            return Ok(state);
        }
        let address = address.to_string();
        self.write(move |c| archive::make_folder(c, &address))
    }

    fn archive_messages(&self, address: &str) -> Result<Vec<MessageMeta>> {
        self.read(|c| archive::messages(c, address))
    }

    fn set_archive_seen(
        &self,
        address: &str,
        uids: &[u32],
        seen: bool,
        unchanged_since: Option<u64>,
    ) -> Result<SeenStored> {
        let (address, uids) = (address.to_string(), uids.to_vec());
        self.write(move |c| archive::set_seen(c, &address, &uids, seen, unchanged_since))
    }

    fn archive_options(&self, address: &str) -> Result<ArchiveOptions> {
        self.read(|c| archive::options(c, address))
    }

    fn set_archive_options(&self, address: &str, options: &ArchiveOptions) -> Result<()> {
        let (address, options) = (address.to_string(), *options);
        self.write(move |c| archive::set_options(c, &address, &options))
    }

    fn archive_usage(&self, address: &str) -> Result<Usage> {
        self.read(|c| archive::usage(c, address))
    }
}

impl Blobs for SqliteStore {
    fn read_blob(&self, hash: &str) -> Result<Vec<u8>> {
        self.load(|_| Ok(hash.to_string()))
    }
}

impl Ledger for SqliteStore {
    fn registry_events(&self, query: &EventQuery) -> Result<Vec<RegistryEvent>> {
        self.read(|c| registry::list(c, query))
    }

    fn registry_event(&self, id: i64) -> Result<RegistryEvent> {
        self.read(|c| registry::get(c, id))
    }

    fn registry_events_due(
        &self,
        now: i64,
        claim_until: i64,
        limit: usize,
    ) -> Result<Vec<RegistryEvent>> {
        self.write(move |c| registry::due(c, now, claim_until, limit))
    }

    fn registry_event_sent(&self, id: i64, at: i64) -> Result<()> {
        self.write(move |c| registry::sent(c, id, at))
    }

    fn registry_event_retry(&self, id: i64, next_attempt_at: i64, error: &str) -> Result<()> {
        let error = error.to_string();
        self.write(move |c| registry::retry(c, id, next_attempt_at, &error))
    }

    fn append_log(&self, entries: &[LogEntry]) -> Result<Vec<LogRecord>> {
        let entries = entries.to_vec();
        self.write(move |c| legal_log::append(c, &entries))
    }

    fn verify_log(&self) -> Result<LogVerification> {
        self.read(legal_log::verify)
    }

    fn search_log(&self, query: &LogQuery) -> Result<Vec<LogRecord>> {
        self.read(|c| legal_log::search(c, query))
    }

    fn log_head(&self) -> Result<LogHead> {
        self.read(legal_log::head)
    }

    fn store_log_timestamp(&self, stamp: &NewLogTimestamp) -> Result<LogTimestamp> {
        let stamp = stamp.clone();
        self.write(move |c| timestamps::store(c, &stamp))
    }

    fn list_log_timestamps(&self) -> Result<Vec<LogTimestamp>> {
        self.read(timestamps::list)
    }

    fn count_log_events(&self, from: i64, to: i64) -> Result<Vec<(String, u64)>> {
        self.read(|c| legal_log::count_events(c, from, to))
    }

    fn record_uptime(&self, minute: i64) -> Result<()> {
        self.write(move |c| uptime::record(c, minute))
    }

    fn uptime(&self, from: i64, to: i64) -> Result<Uptime> {
        self.read(|c| {
            Ok(Uptime {
                since: uptime::first(c)?,
                minutes: uptime::minutes(c, from, to)?,
            })
        })
    }

    fn enqueue(&self, entry: &NewQueueEntry) -> Result<QueueEntry> {
        let hash = blobs::hash_hex(&entry.message);
        self.blobs.prepare(&hash, &entry.message)?;
        let entry = entry.clone();
        let blobs = self.blobs.clone();
        self.write(move |c| queue::enqueue(c, &blobs, &hash, &entry))
    }

    fn queue_due(&self, now: i64, limit: usize) -> Result<Vec<QueueEntry>> {
        self.read(|c| queue::due(c, now, limit))
    }

    fn queue_complete(&self, id: i64) -> Result<()> {
        self.write(move |c| queue::complete(c, id))
    }

    fn queue_retry(&self, id: i64, next_attempt_at: i64, error: &str) -> Result<QueueEntry> {
        let error = error.to_string();
        self.write(move |c| queue::retry(c, id, next_attempt_at, &error))
    }

    fn queue_fail(&self, id: i64) -> Result<QueueEntry> {
        self.write(move |c| queue::fail(c, id))
    }

    fn list_queue(&self) -> Result<Vec<QueueEntry>> {
        self.read(queue::list)
    }

    fn queue_hold(&self, id: i64, held: bool) -> Result<QueueEntry> {
        self.write(move |c| queue::hold(c, id, held))
    }

    fn queue_reschedule(&self, id: i64, at: i64) -> Result<QueueEntry> {
        self.write(move |c| queue::reschedule(c, id, at))
    }

    fn queue_summary(&self) -> Result<QueueSummary> {
        self.read(queue::summary)
    }

    fn start_timers(&self, new: &[NewTimer]) -> Result<()> {
        let new = new.to_vec();
        let blobs = self.blobs.clone();
        self.write(move |c| timers::start(c, &blobs, &new))
    }

    fn mark_presa_in_carico(
        &self,
        identificativo: &str,
        recipients: &[String],
        at: i64,
    ) -> Result<u64> {
        let (id, recipients) = (identificativo.to_string(), recipients.to_vec());
        self.write(move |c| timers::mark_presa_in_carico(c, &id, &recipients, at))
    }

    fn mark_outcome(
        &self,
        identificativo: &str,
        recipient: &str,
        outcome: Outcome,
    ) -> Result<Timer> {
        let (id, recipient) = (identificativo.to_string(), recipient.to_string());
        self.write(move |c| timers::mark_outcome(c, &id, &recipient, outcome))
    }

    fn due_notices(&self, now: i64, twenty_four_after: i64) -> Result<Vec<DueNotice>> {
        self.read(|c| timers::due_notices(c, now, twenty_four_after))
    }

    fn mark_notice_sent(
        &self,
        identificativo: &str,
        recipient: &str,
        kind: NoticeKind,
    ) -> Result<()> {
        let (id, recipient) = (identificativo.to_string(), recipient.to_string());
        self.write(move |c| timers::mark_notice_sent(c, &id, &recipient, kind))
    }

    fn timers(&self, identificativo: &str) -> Result<Vec<Timer>> {
        self.read(|c| timers::list(c, identificativo))
    }

    fn store_virus(&self, entry: &NewVirusEntry) -> Result<VirusEntry> {
        let hash = blobs::hash_hex(&entry.message);
        self.blobs.prepare(&hash, &entry.message)?;
        let entry = entry.clone();
        let blobs = self.blobs.clone();
        self.write(move |c| virus::store(c, &blobs, &hash, &entry))
    }

    fn list_virus(&self) -> Result<Vec<VirusEntry>> {
        self.read(virus::list)
    }

    fn virus_entry(&self, id: i64) -> Result<VirusEntry> {
        self.read(|c| virus::get(c, id))
    }

    fn commit_batch(&self, batch: Batch) -> Result<Committed> {
        let prepared = batch::Prepared::new(batch);
        prepared.write_blobs(&self.blobs)?;
        let blobs = self.blobs.clone();
        self.write(move |c| batch::apply(c, &blobs, &prepared))
    }

    fn effects_done(&self, keys: &[EffectKey]) -> Result<Vec<bool>> {
        self.read(|c| keys.iter().map(|k| effects::exists(c, k)).collect())
    }
}

impl Maintenance for SqliteStore {
    fn purge_archive(&self, cutoff: i64) -> Result<u64> {
        self.write(move |c| archive::purge(c, cutoff))
    }

    fn purge_log(&self, cutoff: i64) -> Result<u64> {
        self.write(move |c| legal_log::purge(c, cutoff))
    }

    fn purge_virus(&self, cutoff: i64) -> Result<u64> {
        self.write(move |c| virus::purge(c, cutoff))
    }

    fn purge_effects(&self, cutoff: i64) -> Result<u64> {
        self.write(move |c| effects::purge(c, cutoff))
    }

    fn purge_proofs(&self, cutoff: i64) -> Result<u64> {
        self.write(move |c| Ok(uptime::purge(c, cutoff)? + timestamps::purge(c, cutoff)?))
    }

    fn purge_events(&self, cutoff: i64) -> Result<u64> {
        self.write(move |c| registry::purge(c, cutoff))
    }

    fn check(&self) -> Result<CheckReport> {
        maintenance::check(&self.db_path, &self.blobs)
    }

    fn backup(&self, dest: &Path) -> Result<u64> {
        maintenance::backup(&self.db_path, &self.blobs, dest)
    }
}

/// One process owns the database: its callers' own hooks see every change.
impl Changes for SqliteStore {}
