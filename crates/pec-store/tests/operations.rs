//! What the administrator's commands rely on, on both backends: the legal log's head and
//! time stamps, counts of log events by period, the uptime record, and holding and
//! rescheduling queue entries; and that `pecd store migrate` carries them over.

use pec_store::test_util::{Backend, TestStore, shared_server};
use pec_store::{
    Error, Ledger, LogEntry, NewLogTimestamp, NewQueueEntry, PgOptions, PgStore, Store,
    TWENTY_FOUR_HOURS, backend_tests, migrate_to_postgres,
};

const T0: i64 = 1_700_000_000;

fn entry(event: &str, at: i64) -> LogEntry {
    LogEntry {
        at,
        at_local: "2023-11-14T23:13:20+01:00".into(),
        event: event.into(),
        msgid: format!("opec.{at}@pec.example.it"),
        recipients: vec!["a@pec.other.it".into()],
        ..LogEntry::default()
    }
}

fn queued(created_at: i64) -> NewQueueEntry {
    NewQueueEntry {
        msgid: "<opec.q@pec.example.it>".into(),
        mail_from: "posta-certificata@pec.example.it".into(),
        rcpt_to: vec!["r@pec.other.it".into()],
        domain: "pec.other.it".into(),
        message: b"envelope\r\n".to_vec(),
        created_at,
        due_at: created_at,
        expires_at: created_at + TWENTY_FOUR_HOURS,
    }
}

/// Fills a store with what these tests read back.
fn fill(store: &dyn Store) -> (i64, Vec<u8>) {
    store
        .append_log(&[
            entry("accettazione", T0),
            entry("accettazione", T0 + 10),
            entry("non-accettazione", T0 + 20),
            entry("accettazione", T0 + 86_400),
        ])
        .unwrap();
    let head = store.log_head().unwrap();
    let response = vec![0x30, 0x03, 0x02, 0x01, 0x00, 0xff];
    store
        .store_log_timestamp(&NewLogTimestamp {
            seq: head.seq,
            head_hash: head.hash,
            requested_at: T0 + 86_400,
            tsa_url: "http://tsa.test/".into(),
            response: response.clone(),
        })
        .unwrap();
    for minute in [T0 - 60, T0, T0 + 120] {
        store.record_uptime(minute).unwrap();
    }
    store.record_uptime(T0).unwrap();
    let q = store.enqueue(&queued(T0)).unwrap();
    store.queue_hold(q.id, true).unwrap();
    (q.id, response)
}

fn head_timestamps_counts_and_uptime(backend: Backend) {
    let t = TestStore::new(backend);
    let store = t.store.as_ref();
    let empty = store.log_head().unwrap();
    assert_eq!(
        (empty.seq, empty.hash.as_str()),
        (0, pec_store::LOG_GENESIS)
    );
    let (_, response) = fill(store);

    let head = store.log_head().unwrap();
    assert_eq!(head, store.verify_log().unwrap().head);
    assert_eq!(head.seq, 4);
    let stamps = store.list_log_timestamps().unwrap();
    assert_eq!(stamps.len(), 1);
    assert_eq!((stamps[0].seq, &stamps[0].head_hash), (4, &head.hash));
    assert_eq!(stamps[0].response, response);

    // The first day only: [T0, T0 + 1 day).
    let counts = store.count_log_events(T0, T0 + 86_400).unwrap();
    assert_eq!(
        counts,
        vec![
            ("accettazione".to_string(), 2),
            ("non-accettazione".to_string(), 1)
        ]
    );

    let up = store.uptime(T0, T0 + 600).unwrap();
    assert_eq!(up.since, Some(T0 - 60));
    assert_eq!(up.minutes, vec![T0, T0 + 120]);

    // Retention: the minutes before T0 + 60 go (two), the stamp of T0 + 1 day stays.
    assert_eq!(store.purge_proofs(T0 + 60).unwrap(), 2);
    assert_eq!(store.uptime(0, i64::MAX).unwrap().minutes, vec![T0 + 120]);
    assert_eq!(store.list_log_timestamps().unwrap().len(), 1);
    assert_eq!(store.purge_proofs(T0 + 86_401).unwrap(), 2);
    assert!(store.list_log_timestamps().unwrap().is_empty());
    assert_eq!(store.uptime(0, i64::MAX).unwrap(), Default::default());
}

fn held_entries_wait_until_retried_or_expired(backend: Backend) {
    let t = TestStore::new(backend);
    let store = t.store.as_ref();
    let (id, _) = fill(store);
    let listed = store.list_queue().unwrap();
    assert!(listed[0].held);
    assert!(store.queue_due(T0 + 3600, 10).unwrap().is_empty());
    // Held, it is still given up at expiry.
    let expired = store.queue_due(T0 + TWENTY_FOUR_HOURS, 10).unwrap();
    assert_eq!(expired.iter().map(|e| e.id).collect::<Vec<_>>(), vec![id]);

    let released = store.queue_reschedule(id, T0 + 7200).unwrap();
    assert!(!released.held);
    assert_eq!(released.next_attempt_at, T0 + 7200);
    assert!(store.queue_due(T0 + 7199, 10).unwrap().is_empty());
    assert_eq!(store.queue_due(T0 + 7200, 10).unwrap().len(), 1);
    // Never past expiry.
    let late = store
        .queue_reschedule(id, T0 + 10 * TWENTY_FOUR_HOURS)
        .unwrap();
    assert_eq!(late.next_attempt_at, late.expires_at);
    assert!(matches!(
        store.queue_hold(id + 100, true),
        Err(Error::NoSuchQueueEntry(_))
    ));
    assert!(matches!(
        store.queue_reschedule(id + 100, T0),
        Err(Error::NoSuchQueueEntry(_))
    ));
}

backend_tests!(
    head_timestamps_counts_and_uptime,
    held_entries_wait_until_retried_or_expired
);

#[test]
fn migration_carries_time_stamps_uptime_and_holds() {
    let source = TestStore::new(Backend::Sqlite);
    let (_, response) = fill(source.store.as_ref());
    let url = shared_server().database();
    migrate_to_postgres(source.dir.path(), &url).unwrap();
    let pg = PgStore::open(&PgOptions::new(&url)).unwrap();
    let stamps = pg.list_log_timestamps().unwrap();
    assert_eq!(stamps, source.store.list_log_timestamps().unwrap());
    assert_eq!(stamps[0].response, response);
    assert_eq!(
        pg.uptime(0, i64::MAX).unwrap(),
        source.store.uptime(0, i64::MAX).unwrap()
    );
    assert!(pg.list_queue().unwrap()[0].held);
    assert_eq!(pg.log_head().unwrap(), source.store.log_head().unwrap());
}
