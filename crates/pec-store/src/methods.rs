//! The list of every [`Store`] method, once, for the wrappers that treat each call the
//! same way ([`crate::faulty`] fails them on demand, [`crate::timed`] measures them).

/// Calls the macro `$m` with every part of [`crate::Store`] and its methods, in the shape
/// `impl Part { fn name(&self, arg: Type, ...) -> Ret; ... }`.
macro_rules! with_store_methods {
    ($m:ident) => {
        $m! {
            impl Directory {
                fn add_domain(&self, name: &str, default_quota: u64) -> Result<()>;
                fn list_domains(&self) -> Result<Vec<Domain>>;
                fn remove_domain(&self, name: &str) -> Result<()>;
                fn create_account(&self, new: &NewAccount) -> Result<Account>;
                fn account(&self, address: &str) -> Result<Account>;
                fn list_accounts(&self, domain: Option<&str>) -> Result<Vec<Account>>;
                fn remove_account(&self, address: &str) -> Result<()>;
                fn set_password_hash(&self, address: &str, hash: &str) -> Result<()>;
                fn set_quota(&self, address: &str, quota: u64) -> Result<()>;
                fn set_receipts_folder(&self, address: &str, on: bool) -> Result<()>;
                fn usage(&self, address: &str) -> Result<Usage>;
                fn add_ente(&self, ente: &Ente) -> Result<()>;
                fn list_enti(&self) -> Result<Vec<Ente>>;
                fn add_admin(&self, admin: &Admin) -> Result<()>;
                fn find_admin(&self, login: &str) -> Result<Option<Admin>>;
                fn record_mailbox_event(&self, event: &MailboxEvent) -> Result<()>;
                fn mailbox_events(&self, to: i64) -> Result<Vec<MailboxEvent>>;
                fn administer(&self, change: &AdminChange) -> Result<bool>;
                fn find_token(&self, hash: &str) -> Result<Option<Admin>>;
                fn list_tokens(&self, login: Option<&str>) -> Result<Vec<ApiToken>>;
            }
            impl Mailboxes {
                fn deliver(&self, address: &str, folder: &str, bytes: &[u8], flags: &[String], internaldate: i64) -> Result<Delivered>;
                fn list_folders(&self, address: &str) -> Result<Vec<Folder>>;
                fn create_folder(&self, address: &str, name: &str) -> Result<()>;
                fn rename_folder(&self, address: &str, from: &str, to: &str) -> Result<()>;
                fn delete_folder(&self, address: &str, name: &str) -> Result<()>;
                fn set_subscribed(&self, address: &str, name: &str, subscribed: bool) -> Result<()>;
                fn subscriptions(&self, address: &str) -> Result<Vec<String>>;
                fn select(&self, address: &str, folder: &str) -> Result<Selected>;
                fn messages(&self, address: &str, folder: &str) -> Result<Vec<MessageMeta>>;
                fn expunged_since(&self, address: &str, folder: &str, modseq: u64) -> Result<Vec<u32>>;
                fn fetch(&self, address: &str, folder: &str, uid: u32) -> Result<Vec<u8>>;
                fn store_flags(&self, address: &str, folder: &str, uids: &[u32], op: FlagOp, flags: &[String]) -> Result<Vec<MessageMeta>>;
                fn expunge(&self, address: &str, folder: &str, uids: Option<&[u32]>) -> Result<Vec<u32>>;
                fn copy(&self, address: &str, from: &str, uids: &[u32], to: &str) -> Result<Copied>;
                fn move_messages(&self, address: &str, from: &str, uids: &[u32], to: &str) -> Result<Copied>;
                fn archive(&self, address: &str, bytes: &[u8], direction: Direction, kind: &str, at: i64) -> Result<ArchiveEntry>;
                fn list_archive(&self, address: &str) -> Result<Vec<ArchiveEntry>>;
                fn read_archive_of(&self, address: &str, uid: u32) -> Result<Vec<u8>>;
                fn select_archive(&self, address: &str) -> Result<Selected>;
                fn archive_messages(&self, address: &str) -> Result<Vec<MessageMeta>>;
                fn set_archive_seen(&self, address: &str, uids: &[u32], seen: bool, unchanged_since: Option<u64>) -> Result<SeenStored>;
                fn archive_options(&self, address: &str) -> Result<ArchiveOptions>;
                fn set_archive_options(&self, address: &str, options: &ArchiveOptions) -> Result<()>;
                fn archive_usage(&self, address: &str) -> Result<Usage>;
                fn read_archive(&self, id: i64) -> Result<Vec<u8>>;
            }
            impl Blobs {
                fn read_blob(&self, hash: &str) -> Result<Vec<u8>>;
            }
            impl Ledger {
                fn append_log(&self, entries: &[LogEntry]) -> Result<Vec<LogRecord>>;
                fn verify_log(&self) -> Result<LogVerification>;
                fn search_log(&self, query: &LogQuery) -> Result<Vec<LogRecord>>;
                fn log_head(&self) -> Result<LogHead>;
                fn store_log_timestamp(&self, stamp: &NewLogTimestamp) -> Result<LogTimestamp>;
                fn list_log_timestamps(&self) -> Result<Vec<LogTimestamp>>;
                fn count_log_events(&self, from: i64, to: i64) -> Result<Vec<(String, u64)>>;
                fn record_uptime(&self, minute: i64) -> Result<()>;
                fn uptime(&self, from: i64, to: i64) -> Result<Uptime>;
                fn enqueue(&self, entry: &NewQueueEntry) -> Result<QueueEntry>;
                fn queue_due(&self, now: i64, limit: usize) -> Result<Vec<QueueEntry>>;
                fn queue_complete(&self, id: i64) -> Result<()>;
                fn queue_retry(&self, id: i64, next_attempt_at: i64, error: &str) -> Result<QueueEntry>;
                fn queue_fail(&self, id: i64) -> Result<QueueEntry>;
                fn list_queue(&self) -> Result<Vec<QueueEntry>>;
                fn queue_hold(&self, id: i64, held: bool) -> Result<QueueEntry>;
                fn queue_reschedule(&self, id: i64, at: i64) -> Result<QueueEntry>;
                fn queue_summary(&self) -> Result<QueueSummary>;
                fn start_timers(&self, timers: &[NewTimer]) -> Result<()>;
                fn mark_presa_in_carico(&self, identificativo: &str, recipients: &[String], at: i64) -> Result<u64>;
                fn mark_outcome(&self, identificativo: &str, recipient: &str, outcome: Outcome) -> Result<Timer>;
                fn due_notices(&self, now: i64, twenty_four_after: i64) -> Result<Vec<DueNotice>>;
                fn mark_notice_sent(&self, identificativo: &str, recipient: &str, kind: NoticeKind) -> Result<()>;
                fn timers(&self, identificativo: &str) -> Result<Vec<Timer>>;
                fn store_virus(&self, entry: &NewVirusEntry) -> Result<VirusEntry>;
                fn list_virus(&self) -> Result<Vec<VirusEntry>>;
                fn virus_entry(&self, id: i64) -> Result<VirusEntry>;
                fn commit_batch(&self, batch: Batch) -> Result<Committed>;
                fn effects_done(&self, keys: &[EffectKey]) -> Result<Vec<bool>>;
                fn registry_events(&self, query: &EventQuery) -> Result<Vec<RegistryEvent>>;
                fn registry_event(&self, id: i64) -> Result<RegistryEvent>;
                fn registry_events_due(&self, now: i64, claim_until: i64, limit: usize) -> Result<Vec<RegistryEvent>>;
                fn registry_event_sent(&self, id: i64, at: i64) -> Result<()>;
                fn registry_event_retry(&self, id: i64, next_attempt_at: i64, error: &str) -> Result<()>;
            }
            impl Maintenance {
                fn purge_archive(&self, cutoff: i64) -> Result<u64>;
                fn purge_log(&self, cutoff: i64) -> Result<u64>;
                fn purge_virus(&self, cutoff: i64) -> Result<u64>;
                fn purge_effects(&self, cutoff: i64) -> Result<u64>;
                fn purge_proofs(&self, cutoff: i64) -> Result<u64>;
                fn purge_events(&self, cutoff: i64) -> Result<u64>;
                fn check(&self) -> Result<CheckReport>;
                fn backup(&self, dest: &Path) -> Result<u64>;
            }
        }
    };
}

pub(crate) use with_store_methods;
