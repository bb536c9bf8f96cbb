//! Atomic acceptance: everything of one PEC step stored in one transaction,
//! all or nothing; and the virus store.

use pec_store::test_util::{Backend, TestStore};
use pec_store::{
    AlreadyDone, Batch, BatchItem, Direction, Error, LogEntry, LogQuery, NewAccount,
    NewArchiveCopy, NewDelivery, NewQueueEntry, NewTimer, NewVirusEntry, Outcome, OutcomeUpdate,
    PresaInCaricoUpdate, SqliteStore, Store, Usage, backend_tests, blobs,
};
use pec_store::{Blobs as _, Ledger as _, Maintenance as _};

const SENDER: &str = "mario.rossi@pec.example.it";
const T0: i64 = 1_700_000_000;

/// A store with the sender's account, whose quota is `quota` bytes.
fn store(backend: Backend, quota: u64) -> TestStore {
    let t = TestStore::new(backend);
    let store = &t.store;
    store.add_domain("pec.example.it", quota).unwrap();
    store
        .create_account(&NewAccount {
            address: SENDER.into(),
            password_hash: "$argon2id$v=19$fake".into(),
            quota: None,
            receipts_folder: false,
        })
        .unwrap();
    t
}

/// What the access point stores for one accepted message to two PEC
/// recipients at another gestore.
fn acceptance(receipt: &[u8]) -> Batch {
    let envelope = b"busta di trasporto\r\n".to_vec();
    let envelope_hash = blobs::hash_hex(&envelope);
    let recipients = vec!["a@pec.other.it".to_string(), "b@pec.other.it".to_string()];
    let log = |event: &str, generated: &str| LogEntry {
        at: T0,
        at_local: "2023-11-14T23:13:20+01:00".into(),
        event: event.into(),
        msgid: "opec.1@pec.example.it".into(),
        original_msgid: "<c.1@example.it>".into(),
        sender: SENDER.into(),
        recipients: recipients.clone(),
        subject: "Contratto".into(),
        generated_ids: vec![generated.into()],
        gestore: "Example PEC".into(),
        detail: String::new(),
    };
    Batch {
        deliveries: vec![NewDelivery {
            address: SENDER.into(),
            folder: "INBOX".into(),
            bytes: receipt.to_vec(),
            flags: vec![],
            internaldate: T0,
        }],
        archive: vec![NewArchiveCopy {
            address: SENDER.into(),
            bytes: b"messaggio originale\r\n".to_vec(),
            direction: Direction::Sent,
            kind: "posta-certificata".into(),
            at: T0,
        }],
        queue: vec![NewQueueEntry {
            msgid: "<opec.1@pec.example.it>".into(),
            mail_from: SENDER.into(),
            rcpt_to: recipients.clone(),
            domain: "pec.other.it".into(),
            message: envelope,
            created_at: T0,
            due_at: T0,
            expires_at: T0 + 86_400,
        }],
        virus: vec![],
        timers: recipients
            .iter()
            .map(|r| NewTimer {
                identificativo: "opec.1@pec.example.it".into(),
                recipient: r.clone(),
                sender: SENDER.into(),
                subject: "Contratto".into(),
                dispatched_at: T0,
                envelope: Some(envelope_hash.clone()),
            })
            .collect(),
        log: vec![
            log("accettazione", "<ric.1@pec.example.it>"),
            log("invio", "<opec.1@pec.example.it>"),
        ],
        ..Batch::default()
    }
}

/// Asserts that nothing of a batch is in the store.
fn assert_nothing_stored(store: &dyn Store) {
    assert!(store.messages(SENDER, "INBOX").unwrap().is_empty());
    assert!(store.list_archive(SENDER).unwrap().is_empty());
    assert!(store.list_queue().unwrap().is_empty());
    assert!(store.timers("opec.1@pec.example.it").unwrap().is_empty());
    assert!(store.list_virus().unwrap().is_empty());
    assert!(store.search_log(&LogQuery::default()).unwrap().is_empty());
    let v = store.verify_log().unwrap();
    assert!(v.is_ok());
    assert_eq!(v.head.seq, 0);
}

fn batch_stores_everything_together(backend: Backend) {
    let t = store(backend, 1_000_000);
    let done = t.store.commit_batch(acceptance(b"ricevuta\r\n")).unwrap();
    assert_eq!(done.delivered.len(), 1);
    assert_eq!(done.archived.len(), 1);
    assert_eq!(done.queued.len(), 1);
    assert_eq!(
        done.logged.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![1, 2]
    );
    // Everything is there after a restart (another node: the same).
    let store = t.open();
    assert_eq!(
        store.fetch(SENDER, "INBOX", done.delivered[0].uid).unwrap(),
        b"ricevuta\r\n"
    );
    assert_eq!(store.list_archive(SENDER).unwrap(), done.archived);
    assert_eq!(store.list_queue().unwrap(), done.queued);
    let timers = store.timers("opec.1@pec.example.it").unwrap();
    assert_eq!(timers.len(), 2);
    assert!(timers.iter().all(|t| t.outcome == Outcome::Pending));
    let envelope = timers[0].envelope.as_deref().unwrap();
    assert_eq!(envelope, done.queued[0].hash);
    assert_eq!(
        store.read_blob(envelope).unwrap(),
        b"busta di trasporto\r\n"
    );
    assert_eq!(store.search_log(&LogQuery::default()).unwrap(), done.logged);
    assert!(store.verify_log().unwrap().is_ok());
    assert!(store.check().unwrap().is_ok());
}

fn timer_updates_and_queue_completion_go_with_the_batch(backend: Backend) {
    let t = store(backend, 1_000_000);
    let store = &t.store;
    let queued = store
        .commit_batch(acceptance(b"r"))
        .unwrap()
        .queued
        .remove(0);
    let handled = |completed: i64| Batch {
        deliveries: vec![NewDelivery {
            address: SENDER.into(),
            folder: "INBOX".into(),
            bytes: b"ricevuta di avvenuta consegna\r\n".to_vec(),
            flags: vec![],
            internaldate: T0,
        }],
        presa_in_carico: vec![PresaInCaricoUpdate {
            identificativo: "opec.1@pec.example.it".into(),
            recipients: vec!["A@pec.other.it".into(), "nobody@pec.other.it".into()],
            at: T0 + 60,
        }],
        outcomes: vec![
            OutcomeUpdate {
                identificativo: "opec.1@pec.example.it".into(),
                recipient: "A@PEC.OTHER.IT".into(),
                outcome: Outcome::Delivered,
            },
            // Untracked: skipped, not an error.
            OutcomeUpdate {
                identificativo: "opec.1@pec.example.it".into(),
                recipient: "nobody@pec.other.it".into(),
                outcome: Outcome::Error,
            },
        ],
        completed: vec![completed],
        ..Batch::default()
    };
    // A queue entry that is gone (another handler completed it) keeps every other item
    // out: the batch is done already, which is not an error.
    let gone = queued.id + 1000;
    assert_eq!(
        store.commit_batch(handled(gone)).unwrap().already_done,
        Some(AlreadyDone::QueueEntry(gone))
    );
    assert_eq!(store.messages(SENDER, "INBOX").unwrap().len(), 1);
    let timers = store.timers("opec.1@pec.example.it").unwrap();
    assert!(
        timers
            .iter()
            .all(|t| t.outcome == Outcome::Pending && t.presa_in_carico_at.is_none())
    );
    assert_eq!(store.list_queue().unwrap().len(), 1);

    store.commit_batch(handled(queued.id)).unwrap();
    assert_eq!(store.messages(SENDER, "INBOX").unwrap().len(), 2);
    assert!(store.list_queue().unwrap().is_empty());
    let timers = store.timers("opec.1@pec.example.it").unwrap();
    assert_eq!(
        timers
            .iter()
            .map(|t| (t.recipient.as_str(), t.outcome, t.presa_in_carico_at))
            .collect::<Vec<_>>(),
        vec![
            ("a@pec.other.it", Outcome::Delivered, Some(T0 + 60)),
            ("b@pec.other.it", Outcome::Pending, None),
        ]
    );
    // The envelope stays for the timers, though the queue entry is gone.
    assert!(store.check().unwrap().is_ok());
    assert_eq!(
        store.read_blob(&queued.hash).unwrap(),
        b"busta di trasporto\r\n"
    );
}

fn quota_refusal_inside_a_batch_stores_nothing(backend: Backend) {
    let receipt = vec![b'x'; 600];
    let t = store(backend, 1000);
    let store = &t.store;
    let mut batch = acceptance(&receipt);
    // The second delivery takes the account over quota.
    batch.deliveries.push(batch.deliveries[0].clone());
    let err = store.commit_batch(batch).unwrap_err();
    match err {
        Error::BatchItem { item, source } => {
            assert_eq!(
                item,
                BatchItem::Delivery {
                    index: 1,
                    address: SENDER.into()
                }
            );
            assert_eq!(item.to_string(), "deliveries[1]");
            assert!(matches!(*source, Error::QuotaExceeded { .. }), "{source}");
        }
        other => panic!("unexpected error {other}"),
    }
    assert_nothing_stored(store.as_ref());
    assert_eq!(store.usage(SENDER).unwrap().used, 0);
}

fn each_delivery_says_the_usage_its_step_saw(backend: Backend) {
    let t = store(backend, 10_000);
    let store = &t.store;
    let first = store
        .commit_batch(Batch {
            deliveries: acceptance(&[b'a'; 300]).deliveries,
            ..Batch::default()
        })
        .unwrap();
    assert_eq!(
        first.delivered[0].usage,
        Usage {
            used: 300,
            quota: 10_000
        }
    );
    // Two more in one step: each sees what the step stored before it.
    let mut two = acceptance(&[b'b'; 500]).deliveries;
    two.extend(acceptance(&[b'c'; 700]).deliveries);
    let both = store
        .commit_batch(Batch {
            deliveries: two,
            ..Batch::default()
        })
        .unwrap();
    let used: Vec<u64> = both.delivered.iter().map(|d| d.usage.used).collect();
    assert_eq!(used, [800, 1500]);
    assert_eq!(store.usage(SENDER).unwrap(), both.delivered[1].usage);
}

fn failure_of_the_last_item_rolls_back_the_earlier_ones(backend: Backend) {
    let t = store(backend, 1_000_000);
    let store = &t.store;
    let mut batch = acceptance(b"ricevuta\r\n");
    // A timer started twice: the failure comes after deliveries, archive,
    // queue and the first timers were written.
    batch.timers.push(batch.timers[0].clone());
    let err = store.commit_batch(batch).unwrap_err();
    assert!(
        matches!(&err, Error::BatchItem { item, source }
            if *item == BatchItem::Timer(2) && matches!(**source, Error::AlreadyExists(_))),
        "{err}"
    );
    assert_nothing_stored(store.as_ref());

    // The same batch without the fault goes through, and the log starts at 1.
    let done = store.commit_batch(acceptance(b"ricevuta\r\n")).unwrap();
    assert_eq!(done.logged[0].seq, 1);
    assert!(store.verify_log().unwrap().is_ok());
}

fn unknown_mailbox_or_missing_envelope_fails_the_batch(backend: Backend) {
    let t = store(backend, 1_000_000);
    let store = &t.store;
    let mut batch = acceptance(b"r");
    batch.deliveries[0].address = "nobody@pec.example.it".into();
    assert!(matches!(
        store.commit_batch(batch),
        Err(Error::BatchItem { item: BatchItem::Delivery { index: 0, address }, .. })
            if address == "nobody@pec.example.it"
    ));
    assert_nothing_stored(store.as_ref());

    // A fresh store, so the envelope is surely absent (the refused batch above stored
    // nothing: its blobs are small, hence inline rows rolled back with it).
    let t = self::store(backend, 1_000_000);
    let store = &t.store;
    let mut batch = acceptance(b"r");
    batch.queue.clear();
    assert!(matches!(
        store.commit_batch(batch),
        Err(Error::BatchItem { item, source })
            if item == BatchItem::Timer(0) && matches!(*source, Error::BlobMissing(_))
    ));
    assert_nothing_stored(store.as_ref());
}

fn infected(n: u8, at: i64) -> NewVirusEntry {
    NewVirusEntry {
        at,
        msgid: format!("<v.{n}@example.it>"),
        sender: "someone@pec.other.it".into(),
        recipients: vec![SENDER.into()],
        virus: "Eicar-Test-Signature".into(),
        message: vec![b'v', n],
    }
}

fn virus_store_list_get_purge(backend: Backend) {
    let t = store(backend, 1_000_000);
    let store = &t.store;
    let old = store.store_virus(&infected(1, 100)).unwrap();
    let mut batch = Batch::default();
    batch.virus.push(infected(2, 200));
    let recent = store.commit_batch(batch).unwrap().virus.remove(0);
    assert_eq!(
        store.list_virus().unwrap(),
        vec![old.clone(), recent.clone()]
    );
    assert_eq!(store.virus_entry(recent.id).unwrap(), recent);
    assert_eq!(store.read_blob(&recent.hash).unwrap(), vec![b'v', 2]);
    assert_eq!(recent.virus, "Eicar-Test-Signature");
    assert_eq!(recent.size, 2);

    assert_eq!(store.purge_virus(150).unwrap(), 1);
    assert_eq!(store.list_virus().unwrap(), vec![recent]);
    assert!(matches!(
        store.virus_entry(old.id),
        Err(Error::NoSuchVirusEntry(id)) if id == old.id
    ));
    assert_eq!(store.purge_virus(150).unwrap(), 0);
}

#[test]
fn virus_store_backup() {
    let t = store(Backend::Sqlite, 1_000_000);
    let (dir, store) = (&t.dir, &t.store);
    let old = store.store_virus(&infected(1, 100)).unwrap();
    // Backups carry the virus store's blobs (and the queue's, the timers').
    store.commit_batch(acceptance(b"r")).unwrap();
    let copy = dir.path().join("backup");
    store.backup(&copy).unwrap();
    let restored = SqliteStore::open(&copy).unwrap();
    assert!(restored.check().unwrap().is_ok());
    assert_eq!(restored.read_blob(&old.hash).unwrap(), vec![b'v', 1]);
    let queued = &restored.list_queue().unwrap()[0];
    assert_eq!(
        restored.read_blob(&queued.hash).unwrap(),
        b"busta di trasporto\r\n"
    );
}

#[test]
fn check_sees_missing_and_corrupt_blobs_of_the_new_tables() {
    let t = store(Backend::Sqlite, 1_000_000);
    let (dir, store) = (&t.dir, &t.store);
    // Too large to be inline: a file.
    let mut large = infected(1, 100);
    large.message = vec![b'v'; blobs::INLINE_MAX + 1];
    let v = store.store_virus(&large).unwrap();
    let q = store
        .commit_batch(acceptance(b"r"))
        .unwrap()
        .queued
        .remove(0);
    let path = dir
        .path()
        .join("blobs")
        .join(&v.hash[..2])
        .join(&v.hash[2..]);
    std::fs::remove_file(path).unwrap();
    // The queued envelope is inline: alter its row behind the store's back.
    let db = rusqlite::Connection::open(dir.path().join("store.db")).unwrap();
    let changed = db
        .execute("UPDATE blobs SET bytes = x'00' WHERE hash = ?1", [&q.hash])
        .unwrap();
    assert_eq!(changed, 1);
    let report = store.check().unwrap();
    assert_eq!(report.missing, vec![v.hash.clone()]);
    assert_eq!(report.corrupt, vec![q.hash.clone()]);
}

backend_tests!(
    batch_stores_everything_together,
    timer_updates_and_queue_completion_go_with_the_batch,
    quota_refusal_inside_a_batch_stores_nothing,
    each_delivery_says_the_usage_its_step_saw,
    failure_of_the_last_item_rolls_back_the_earlier_ones,
    unknown_mailbox_or_missing_envelope_fails_the_batch,
    virus_store_list_get_purge,
);
