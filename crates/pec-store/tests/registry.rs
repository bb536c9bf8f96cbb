//! Registry events of protocol offices on both backends: written with the delivery they
//! are about, once per mailbox and key, read with a stable cursor filtered by domain,
//! claimed by the webhook sender, retried, acknowledged, and given a protocol number.

use pec_store::test_util::{Backend, TestStore};
use pec_store::{
    AdminAction, AdminChange, Batch, Error, EventQuery, LogEntry, LogQuery, NewAccount,
    NewDelivery, NewRegistryEvent, ProtocolNumber, Store, backend_tests,
};

const T0: i64 = 1_700_000_000;
const OFFICE: &str = "protocollo@pec.comune-a.test";
const OTHER: &str = "protocollo@pec.comune-b.test";

fn store(backend: Backend) -> TestStore {
    let t = TestStore::new(backend);
    for (domain, address) in [("pec.comune-a.test", OFFICE), ("pec.comune-b.test", OTHER)] {
        t.store.add_domain(domain, 1 << 30).unwrap();
        t.store
            .create_account(&NewAccount {
                address: address.into(),
                password_hash: "$argon2id$x".into(),
                quota: None,
                receipts_folder: false,
            })
            .unwrap();
    }
    t
}

/// A delivery to `address` and its registry event keyed `key`.
fn delivery_with_event(address: &str, key: &str, push: bool) -> Batch {
    Batch {
        deliveries: vec![NewDelivery {
            address: address.into(),
            folder: "INBOX".into(),
            bytes: format!("Subject: {key}\r\n\r\nx\r\n").into_bytes(),
            flags: vec![],
            internaldate: T0,
        }],
        registry_events: vec![NewRegistryEvent {
            address: address.to_uppercase(),
            key: key.into(),
            kind: "posta-certificata".into(),
            body: format!(r#"{{"identificativo":"{key}"}}"#),
            delivery: Some(0),
            push,
            at: T0,
        }],
        ..Batch::default()
    }
}

fn all(store: &dyn Store, after: i64, domains: Option<&[&str]>) -> Vec<(i64, String)> {
    store
        .registry_events(&EventQuery {
            after,
            domains: domains.map(|d| d.iter().map(|s| s.to_string()).collect()),
            limit: 100,
        })
        .unwrap()
        .into_iter()
        .map(|e| (e.id, e.body))
        .collect()
}

fn events_are_written_once_with_their_message_and_read_by_cursor(backend: Backend) {
    let t = store(backend);
    let store = t.open();
    let first = store
        .commit_batch(delivery_with_event(OFFICE, "opec.1", true))
        .unwrap();
    // The same event again (a replay that got past the effect keys): the message is
    // delivered again, the event is not recorded twice.
    store
        .commit_batch(delivery_with_event(OFFICE, "opec.1", true))
        .unwrap();
    store
        .commit_batch(delivery_with_event(OTHER, "opec.2", false))
        .unwrap();
    store
        .commit_batch(delivery_with_event(OFFICE, "opec.3", true))
        .unwrap();
    let events = all(&*store, 0, None);
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(events.windows(2).all(|w| w[0].0 < w[1].0), "ids increase");
    assert_eq!(events[0].1, r#"{"identificativo":"opec.1"}"#);
    let e = store.registry_event(events[0].0).unwrap();
    assert_eq!(e.address, OFFICE, "stored lowercase");
    assert_eq!(
        e.message,
        Some(("INBOX".to_string(), first.delivered[0].uid)),
        "the event names the message delivered with it"
    );
    assert_eq!((e.pending, e.attempts, e.created_at), (true, 0, T0));
    // The cursor: after the first id, the others; the domain filter keeps one ente's.
    let after_first = all(&*store, events[0].0, None);
    assert_eq!(after_first, events[1..].to_vec());
    let only_a = all(&*store, 0, Some(&["pec.comune-a.test"]));
    assert_eq!(only_a, vec![events[0].clone(), events[2].clone()]);
    assert!(all(&*store, 0, Some(&[])).is_empty());
    let limited = store
        .registry_events(&EventQuery {
            after: 0,
            domains: None,
            limit: 1,
        })
        .unwrap();
    assert_eq!(limited.len(), 1);
    assert!(matches!(
        store.registry_event(events[2].0 + 100),
        Err(Error::NoSuchEvent(_))
    ));
}

fn the_outbox_claims_retries_and_acknowledges(backend: Backend) {
    let t = store(backend);
    let store = t.open();
    store
        .commit_batch(delivery_with_event(OFFICE, "opec.1", true))
        .unwrap();
    store
        .commit_batch(delivery_with_event(OFFICE, "opec.2", false))
        .unwrap();
    store
        .commit_batch(delivery_with_event(OFFICE, "opec.3", true))
        .unwrap();
    let due = store.registry_events_due(T0, T0 + 60, 10).unwrap();
    let ids: Vec<i64> = due.iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), 2, "only the events a webhook waits for: {due:?}");
    // Claimed: not due again until the claim runs out.
    assert!(
        store
            .registry_events_due(T0 + 59, T0 + 120, 10)
            .unwrap()
            .is_empty()
    );
    store
        .registry_event_retry(ids[0], T0 + 300, "connection refused")
        .unwrap();
    store.registry_event_sent(ids[1], T0 + 1).unwrap();
    assert!(
        store
            .registry_events_due(T0 + 299, T0 + 400, 10)
            .unwrap()
            .is_empty()
    );
    let again = store.registry_events_due(T0 + 300, T0 + 400, 10).unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, ids[0]);
    assert_eq!(again[0].attempts, 1);
    assert_eq!(again[0].last_error.as_deref(), Some("connection refused"));
    let sent = store.registry_event(ids[1]).unwrap();
    assert_eq!((sent.pending, sent.sent_at), (false, Some(T0 + 1)));
    assert!(matches!(
        store.registry_event_sent(ids[1] + 100, T0),
        Err(Error::NoSuchEvent(_))
    ));
}

fn number(n: &str, at: i64) -> ProtocolNumber {
    ProtocolNumber {
        number: n.into(),
        date: Some("2026-11-30".into()),
        at,
    }
}

/// The write-back of protocol number `n` for event `id`, as the administration makes it.
fn protocol(id: i64, n: &str, at: i64) -> AdminChange {
    AdminChange {
        action: AdminAction::SetProtocolNumber {
            id,
            number: number(n, at),
            keyword: KEYWORD.into(),
        },
        event: None,
        log: LogEntry {
            at,
            event: "amministrazione".into(),
            sender: "segreteria@comune-a.test".into(),
            recipients: vec![OFFICE.into()],
            detail: format!("protocollo {n}"),
            ..LogEntry::default()
        },
    }
}

const KEYWORD: &str = "$Protocollo";

/// The details of the legal log's records, in order.
fn log_details(store: &dyn Store) -> Vec<String> {
    store
        .search_log(&LogQuery::default())
        .unwrap()
        .into_iter()
        .map(|r| r.entry.detail)
        .collect()
}

/// A store with one event for the office, and its id.
fn one_event(backend: Backend) -> (TestStore, std::sync::Arc<dyn Store>, i64) {
    let t = store(backend);
    let store = t.open();
    store
        .commit_batch(delivery_with_event(OFFICE, "opec.1", true))
        .unwrap();
    let id = all(&*store, 0, None)[0].0;
    (t, store, id)
}

fn office_flags(store: &dyn Store) -> Vec<String> {
    store.messages(OFFICE, "INBOX").unwrap()[0].flags.clone()
}

fn the_protocol_number_is_kept_and_replaced(backend: Backend) {
    let (t, store, id) = one_event(backend);
    assert!(store.administer(&protocol(id, "0001", T0)).unwrap());
    assert_eq!(
        store.registry_event(id).unwrap().protocol,
        Some(number("0001", T0))
    );
    assert!(office_flags(&*store).contains(&KEYWORD.to_string()));
    assert!(store.administer(&protocol(id, "0002", T0 + 5)).unwrap());
    // Kept across reopening the store, each write-back with its log record.
    drop(store);
    let store = t.open();
    assert_eq!(
        store.registry_event(id).unwrap().protocol,
        Some(number("0002", T0 + 5))
    );
    let details = log_details(&*store);
    assert!(details.ends_with(&["protocollo 0001".into(), "protocollo 0002".into()]));
    assert!(matches!(
        store.administer(&protocol(id + 1, "1", T0)),
        Err(Error::NoSuchEvent(_))
    ));
    assert_eq!(
        log_details(&*store),
        details,
        "no record for a refused change"
    );
    // The office's mailbox removed since: the number is still kept, with its record.
    store.remove_account(OFFICE).unwrap();
    assert!(store.administer(&protocol(id, "0003", T0 + 9)).unwrap());
    assert_eq!(
        store.registry_event(id).unwrap().protocol,
        Some(number("0003", T0 + 9))
    );
    assert!(log_details(&*store).ends_with(&["protocollo 0003".into()]));
}

fn a_protocol_number_without_its_log_record_is_not_kept(backend: Backend) {
    let (t, store, id) = one_event(backend);
    let details = log_details(&*store);
    // The legal log refuses every record from now on.
    t.tamper(match backend {
        Backend::Sqlite => {
            "CREATE TRIGGER refuse BEFORE INSERT ON legal_log
             BEGIN SELECT RAISE(ABORT, 'log down'); END;"
        }
        Backend::Postgres => {
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS
                 $$ BEGIN RAISE EXCEPTION 'log down'; END $$;
             CREATE TRIGGER refuse BEFORE INSERT ON legal_log
                 FOR EACH ROW EXECUTE FUNCTION refuse();"
        }
    });
    assert!(store.administer(&protocol(id, "0001", T0)).is_err());
    assert_eq!(store.registry_event(id).unwrap().protocol, None);
    assert!(!office_flags(&*store).contains(&KEYWORD.to_string()));
    assert_eq!(log_details(&*store), details);
}

fn events_are_purged_by_age_and_the_cursor_survives(backend: Backend) {
    let t = store(backend);
    let store = t.open();
    let mut old = delivery_with_event(OFFICE, "opec.old", true);
    old.registry_events[0].at = T0 - 100;
    store.commit_batch(old).unwrap();
    store
        .commit_batch(delivery_with_event(OFFICE, "opec.new", true))
        .unwrap();
    let before = all(store.as_ref(), 0, None);
    assert_eq!(before.len(), 2);
    let (old_id, new_id) = (before[0].0, before[1].0);

    assert_eq!(store.purge_events(T0).unwrap(), 1);
    assert_eq!(
        all(store.as_ref(), 0, None),
        vec![(new_id, r#"{"identificativo":"opec.new"}"#.to_string())]
    );
    // A client that had read up to the purged event goes on from there.
    assert_eq!(all(store.as_ref(), old_id, None).len(), 1);
    assert_eq!(all(store.as_ref(), new_id, None), vec![]);
    // Nothing due from the purged event, and a second purge finds nothing.
    let due = store.registry_events_due(T0 + 1, T0 + 60, 10).unwrap();
    assert_eq!(due.iter().map(|e| e.id).collect::<Vec<_>>(), [new_id]);
    assert_eq!(store.purge_events(T0).unwrap(), 0);
    // A later event gets an id after every one a client may have seen.
    store
        .commit_batch(delivery_with_event(OFFICE, "opec.later", true))
        .unwrap();
    assert!(all(store.as_ref(), new_id, None)[0].0 > new_id);
}

backend_tests!(
    events_are_purged_by_age_and_the_cursor_survives,
    events_are_written_once_with_their_message_and_read_by_cursor,
    the_outbox_claims_retries_and_acknowledges,
    the_protocol_number_is_kept_and_replaced,
    a_protocol_number_without_its_log_record_is_not_kept,
);
