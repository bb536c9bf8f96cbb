//! Exactly-once effects: a batch carrying an effect key that is already stored stores
//! nothing and says it was done already; the key goes in the same transaction as the
//! effect, so concurrent batches with one key commit once.

use std::sync::Arc;

use pec_store::test_util::{Backend, TestStore};
use pec_store::{
    AlreadyDone, Batch, BatchItem, EffectKey, Error, LogEntry, LogQuery, NewAccount, NewDelivery,
    NewEffect, NewTimer, NoticeKind, NoticeSentUpdate, Store, TWELVE_HOURS, backend_tests,
};

const ANNA: &str = "anna@pec.example.it";
const T0: i64 = 1_700_000_000;

fn store(backend: Backend) -> TestStore {
    let t = TestStore::new(backend);
    let store = &t.store;
    store.add_domain("pec.example.it", 1_000_000).unwrap();
    store
        .create_account(&NewAccount {
            address: ANNA.into(),
            password_hash: "$argon2id$v=19$fake".into(),
            quota: None,
            receipts_folder: false,
        })
        .unwrap();
    t
}

fn key() -> EffectKey {
    EffectKey::envelope("Alfa PEC", "opec.1@pec.alfa.it", ANNA)
}

/// A delivery to Anna with its log record, claiming `keys`.
fn delivery(keys: &[EffectKey]) -> Batch {
    Batch {
        deliveries: vec![NewDelivery {
            address: ANNA.into(),
            folder: "INBOX".into(),
            bytes: b"busta\r\n".to_vec(),
            flags: vec![],
            internaldate: T0,
        }],
        effects: keys
            .iter()
            .map(|k| NewEffect {
                key: k.clone(),
                at: T0,
            })
            .collect(),
        log: vec![LogEntry {
            at: T0,
            event: "consegna".into(),
            msgid: "opec.1@pec.alfa.it".into(),
            detail: ANNA.into(),
            ..LogEntry::default()
        }],
        ..Batch::default()
    }
}

fn log_len(store: &dyn Store) -> usize {
    store.search_log(&LogQuery::default()).unwrap().len()
}

fn a_key_already_stored_makes_the_batch_done_already(backend: Backend) {
    let t = store(backend);
    let store = &t.store;
    assert_eq!(store.effects_done(&[key()]).unwrap(), [false]);
    let first = store.commit_batch(delivery(&[key()])).unwrap();
    assert_eq!(first.already_done, None);
    assert_eq!(first.delivered.len(), 1);
    assert_eq!(store.effects_done(&[key()]).unwrap(), [true]);

    // Again, or with the key among new ones: nothing stored, not an error.
    let other = EffectKey::envelope("Alfa PEC", "opec.2@pec.alfa.it", ANNA);
    for keys in [vec![key()], vec![other.clone(), key()]] {
        let again = store.commit_batch(delivery(&keys)).unwrap();
        assert_eq!(again.already_done, Some(AlreadyDone::Effect(key())));
        assert!(again.delivered.is_empty() && again.logged.is_empty());
    }
    assert_eq!(store.messages(ANNA, "INBOX").unwrap().len(), 1);
    assert_eq!(log_len(store.as_ref()), 1);
    assert_eq!(store.effects_done(&[other, key()]).unwrap(), [false, true]);
    assert!(store.verify_log().unwrap().is_ok());
}

fn a_key_is_stored_only_with_its_effect(backend: Backend) {
    let t = store(backend);
    let store = &t.store;
    // The delivery fails (no such mailbox): the key is not kept either.
    let mut batch = delivery(&[key()]);
    batch.deliveries[0].address = "nobody@pec.example.it".into();
    assert!(matches!(
        store.commit_batch(batch),
        Err(Error::BatchItem {
            item: BatchItem::Delivery { index: 0, .. },
            ..
        })
    ));
    assert_eq!(store.effects_done(&[key()]).unwrap(), [false]);
    // The same key twice in one batch is a mistake of the caller, refused whole.
    let err = store.commit_batch(delivery(&[key(), key()])).unwrap_err();
    assert!(
        matches!(&err, Error::BatchItem { item: BatchItem::Effect(1), source }
            if matches!(**source, Error::AlreadyExists(_))),
        "{err}"
    );
    assert!(store.messages(ANNA, "INBOX").unwrap().is_empty());
    assert_eq!(store.effects_done(&[key()]).unwrap(), [false]);
}

fn concurrent_batches_with_one_key_commit_once(backend: Backend) {
    let t = store(backend);
    let store = &t.store;
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let store = Arc::clone(store);
            std::thread::spawn(move || store.commit_batch(delivery(&[key()])).unwrap())
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let stored = results.iter().filter(|c| c.already_done.is_none()).count();
    assert_eq!(stored, 1);
    assert_eq!(store.messages(ANNA, "INBOX").unwrap().len(), 1);
    assert_eq!(log_len(store.as_ref()), 1);
}

fn a_notice_and_its_mark_are_one_step(backend: Backend) {
    let t = store(backend);
    let store = &t.store;
    let envelope = b"busta".to_vec();
    store
        .commit_batch(Batch {
            queue: vec![pec_store::NewQueueEntry {
                msgid: "opec.1".into(),
                mail_from: ANNA.into(),
                rcpt_to: vec!["b@pec.other.it".into()],
                domain: "pec.other.it".into(),
                message: envelope.clone(),
                created_at: T0,
                due_at: T0,
                expires_at: T0 + 86_400,
            }],
            timers: vec![NewTimer {
                identificativo: "opec.1".into(),
                recipient: "b@pec.other.it".into(),
                sender: ANNA.into(),
                subject: "s".into(),
                dispatched_at: T0,
                envelope: Some(pec_store::blobs::hash_hex(&envelope)),
            }],
            ..Batch::default()
        })
        .unwrap();
    let now = T0 + TWELVE_HOURS;
    assert_eq!(store.due_notices(now, 86_400).unwrap().len(), 1);
    let notice = |broken: bool| {
        let mut b = delivery(&[EffectKey::notice(
            NoticeKind::Twelve,
            "opec.1",
            "b@pec.other.it",
        )]);
        b.notices_sent.push(NoticeSentUpdate {
            identificativo: "opec.1".into(),
            recipient: "B@pec.other.it".into(),
            kind: NoticeKind::Twelve,
        });
        if broken {
            b.deliveries[0].folder = "NoSuchFolder".into();
        }
        b
    };
    // The notice cannot be stored: the mark is not kept, the notice stays due.
    assert!(store.commit_batch(notice(true)).is_err());
    assert_eq!(store.due_notices(now, 86_400).unwrap().len(), 1);
    // Stored: marked in the same step, so no longer due; a second one is done already.
    assert_eq!(
        store.commit_batch(notice(false)).unwrap().already_done,
        None
    );
    assert!(store.due_notices(now, 86_400).unwrap().is_empty());
    assert!(store.timers("opec.1").unwrap()[0].notice12_sent);
    assert!(
        store
            .commit_batch(notice(false))
            .unwrap()
            .already_done
            .is_some()
    );
    assert_eq!(store.messages(ANNA, "INBOX").unwrap().len(), 1);
}

fn keys_are_purged_by_age(backend: Backend) {
    let t = store(backend);
    let store = &t.store;
    let old = EffectKey::acceptance("opec.old");
    let mut batch = delivery(&[key()]);
    batch.effects.push(NewEffect {
        key: old.clone(),
        at: T0 - 100,
    });
    store.commit_batch(batch).unwrap();
    assert_eq!(store.purge_effects(T0).unwrap(), 1);
    assert_eq!(store.effects_done(&[old, key()]).unwrap(), [false, true]);
    assert_eq!(store.purge_effects(T0).unwrap(), 0);
}

backend_tests!(
    a_key_already_stored_makes_the_batch_done_already,
    a_key_is_stored_only_with_its_effect,
    concurrent_batches_with_one_key_commit_once,
    a_notice_and_its_mark_are_one_step,
    keys_are_purged_by_age,
);
