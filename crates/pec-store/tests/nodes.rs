//! Several nodes on one PostgreSQL database: claims with leases, notifications across
//! nodes, one legal log chain, distinct UIDs, and a database server restarted under a
//! running store.

use std::collections::BTreeSet;
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use pec_store::test_util::{Backend, PgServer, TestStore};
use pec_store::{
    Batch, Change, ChangeHook, Directory, Error, Ledger, LogEntry, Mailboxes, NewAccount,
    NewDelivery, NewQueueEntry, NewTimer, PgOptions, PgStore, QueueEntry, Store, TWELVE_HOURS,
};

const T0: i64 = 1_700_000_000;
const ANNA: &str = "anna@pec.example.it";

/// How long a test waits for something another thread or the server must do.
const PATIENCE: Duration = Duration::from_secs(60);

/// A fresh PostgreSQL database with Anna's mailbox.
fn database() -> TestStore {
    let t = TestStore::new(Backend::Postgres);
    t.store.add_domain("pec.example.it", 1 << 30).unwrap();
    t.store
        .create_account(&NewAccount {
            address: ANNA.into(),
            password_hash: "h".into(),
            quota: None,
            receipts_folder: false,
        })
        .unwrap();
    t
}

/// Two more nodes on the database of `t`, with leases of `lease` seconds.
fn two_nodes(t: &TestStore, lease: u64) -> [Arc<PgStore>; 2] {
    [(); 2].map(|_| {
        let mut options = PgOptions::new("");
        options.lease = Duration::from_secs(lease);
        Arc::new(t.node(options))
    })
}

fn queued(n: usize) -> NewQueueEntry {
    NewQueueEntry {
        msgid: format!("<opec.{n}@pec.example.it>"),
        mail_from: ANNA.into(),
        rcpt_to: vec![format!("r{n}@pec.other.it")],
        domain: "pec.other.it".into(),
        message: format!("envelope {n}\r\n").into_bytes(),
        created_at: T0,
        due_at: T0,
        expires_at: T0 + 86_400,
    }
}

/// Runs `claim` (which claims work and does it) on both nodes at once, each until it
/// gets nothing; returns what each got.
fn claim_all<T: Ord + Send + 'static>(
    nodes: &[Arc<PgStore>; 2],
    claim: fn(&PgStore) -> Vec<T>,
) -> [BTreeSet<T>; 2] {
    let start = Arc::new(Barrier::new(2));
    let threads = nodes.clone().map(|node| {
        let start = Arc::clone(&start);
        thread::spawn(move || {
            start.wait();
            let mut got = BTreeSet::new();
            loop {
                let batch = claim(&node);
                if batch.is_empty() {
                    return got;
                }
                for item in batch {
                    assert!(got.insert(item), "claimed twice by one node");
                }
            }
        })
    });
    threads.map(|t| t.join().unwrap())
}

#[test]
fn two_nodes_never_claim_the_same_queue_entry() {
    let t = database();
    let ids: BTreeSet<i64> = (0..200)
        .map(|n| t.store.enqueue(&queued(n)).unwrap().id)
        .collect();
    let nodes = two_nodes(&t, 300);
    let [a, b] = claim_all(&nodes, |node| {
        let due = node.queue_due(T0, 7).unwrap();
        for e in &due {
            node.queue_retry(e.id, T0 + 3600, "451 later").unwrap();
        }
        due.into_iter().map(|e| e.id).collect()
    });
    assert!(
        a.is_disjoint(&b),
        "{:?}",
        a.intersection(&b).collect::<Vec<_>>()
    );
    assert_eq!(a.union(&b).copied().collect::<BTreeSet<_>>(), ids);
    assert!(!a.is_empty() && !b.is_empty(), "both nodes worked");
}

#[test]
fn two_nodes_never_claim_the_same_timer() {
    let t = database();
    let timers: Vec<NewTimer> = (0..150)
        .map(|n| NewTimer {
            identificativo: format!("opec.{}", n / 3),
            recipient: format!("r{}@pec.other.it", n % 3),
            sender: ANNA.into(),
            subject: "s".into(),
            dispatched_at: T0,
            envelope: None,
        })
        .collect();
    t.store.start_timers(&timers).unwrap();
    let nodes = two_nodes(&t, 300);
    let [a, b] = claim_all(&nodes, |node| {
        let due = node.due_notices(T0 + TWELVE_HOURS, 86_400).unwrap();
        for d in &due {
            let t = &d.timer;
            node.mark_notice_sent(&t.identificativo, &t.recipient, d.kind)
                .unwrap();
        }
        due.into_iter()
            .map(|d| (d.timer.identificativo, d.timer.recipient))
            .collect()
    });
    assert!(a.is_disjoint(&b));
    assert_eq!(a.len() + b.len(), 150);
}

/// Queues one entry and starts one timer on `t`; returns the entry.
fn one_entry_and_one_timer(t: &TestStore) -> QueueEntry {
    let entry = t.store.enqueue(&queued(1)).unwrap();
    t.store
        .start_timers(&[NewTimer {
            identificativo: "opec.1".into(),
            recipient: "r@pec.other.it".into(),
            sender: ANNA.into(),
            subject: "s".into(),
            dispatched_at: T0,
            envelope: None,
        }])
        .unwrap();
    entry
}

#[test]
fn a_lease_runs_out_and_another_node_takes_the_work() {
    let t = database();
    let entry = one_entry_and_one_timer(&t);
    let [dead, alive] = two_nodes(&t, 60);
    let now = T0 + TWELVE_HOURS;
    // The first node claims the work, then dies: it never finishes it.
    assert_eq!(dead.queue_due(now, 10).unwrap(), vec![entry.clone()]);
    assert_eq!(dead.due_notices(now, 86_400).unwrap().len(), 1);
    drop(dead);
    // Until its lease runs out nobody else gets it...
    assert!(alive.queue_due(now + 59, 10).unwrap().is_empty());
    assert!(alive.due_notices(now + 59, 86_400).unwrap().is_empty());
    // ...then the other node does.
    assert_eq!(alive.queue_due(now + 60, 10).unwrap(), vec![entry.clone()]);
    assert_eq!(alive.due_notices(now + 60, 86_400).unwrap().len(), 1);
    // A retry ends the claim: the entry is due to anyone at its next attempt.
    alive.queue_retry(entry.id, now + 100, "451 busy").unwrap();
    let third = t.open();
    assert_eq!(third.queue_due(now + 100, 10).unwrap().len(), 1);
}

#[test]
fn a_node_restarted_under_its_stable_name_takes_its_claims_back_at_once() {
    let t = database();
    let entry = one_entry_and_one_timer(&t);
    let named = |name: &str| {
        let mut options = PgOptions::new("");
        options.stable_name = Some(name.into());
        t.node(options)
    };
    let now = T0 + TWELVE_HOURS;
    // The node claims the work and dies (a crash: the process is gone).
    let before = named("/srv/pecd/node1");
    assert_eq!(before.queue_due(now, 10).unwrap(), vec![entry.clone()]);
    assert_eq!(before.due_notices(now, 86_400).unwrap().len(), 1);
    drop(before);
    // Another node waits for the lease; the same node, restarted, takes its claims back.
    let other = named("/srv/pecd/node2");
    assert!(other.queue_due(now + 1, 10).unwrap().is_empty());
    assert!(other.due_notices(now + 1, 86_400).unwrap().is_empty());
    let after = named("/srv/pecd/node1");
    assert_ne!(after.node(), other.node());
    assert_eq!(after.queue_due(now + 1, 10).unwrap(), vec![entry]);
    assert_eq!(after.due_notices(now + 1, 86_400).unwrap().len(), 1);
}

/// Subscribes `hook` to `node`'s changes, through a channel; returns once the node
/// listens (its listener reports `Queued` when it connects).
fn listen(node: &dyn Store) -> (ChangeHook, mpsc::Receiver<Change>) {
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let hook: ChangeHook = Arc::new(move |c: &Change| {
        let _ = tx.lock().unwrap().send(c.clone());
    });
    node.subscribe(&hook).unwrap();
    assert_eq!(rx.recv_timeout(PATIENCE), Ok(Change::Queued), "listening");
    (hook, rx)
}

#[test]
fn a_change_made_by_one_node_reaches_the_other() {
    let t = database();
    let [a, b] = two_nodes(&t, 300);
    let (_hook, changes) = listen(b.as_ref());
    a.deliver(ANNA, "inbox", b"hello\r\n", &[], T0).unwrap();
    assert_eq!(
        changes.recv_timeout(PATIENCE),
        Ok(Change::Folder {
            address: ANNA.into(),
            folder: "INBOX".into()
        })
    );
    a.store_flags(
        ANNA,
        "INBOX",
        &[1],
        pec_store::FlagOp::Add,
        &["\\Seen".into()],
    )
    .unwrap();
    assert!(matches!(
        changes.recv_timeout(PATIENCE),
        Ok(Change::Folder { .. })
    ));
    a.commit_batch(Batch {
        queue: vec![queued(1)],
        ..Batch::default()
    })
    .unwrap();
    assert_eq!(changes.recv_timeout(PATIENCE), Ok(Change::Queued));
}

#[test]
fn the_log_written_by_two_nodes_at_once_is_one_chain() {
    let t = database();
    let nodes = two_nodes(&t, 300);
    let threads: Vec<_> = (0..6)
        .map(|i| {
            let node = Arc::clone(&nodes[i % 2]);
            thread::spawn(move || {
                for n in 0..20 {
                    let entry = LogEntry {
                        at: T0 + n,
                        event: "accettazione".into(),
                        msgid: format!("opec.{i}.{n}"),
                        ..LogEntry::default()
                    };
                    node.commit_batch(Batch {
                        log: vec![entry.clone(), entry],
                        ..Batch::default()
                    })
                    .unwrap();
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    let v = nodes[0].verify_log().unwrap();
    assert!(v.is_ok(), "{v:?}");
    assert_eq!((v.checked, v.head.seq), (240, 240));
    assert!(t.store.verify_log().unwrap().is_ok());
}

#[test]
fn deliveries_to_one_folder_from_two_nodes_get_distinct_uids() {
    let t = database();
    let nodes = two_nodes(&t, 300);
    let threads: Vec<_> = (0..6)
        .map(|i| {
            let node = Arc::clone(&nodes[i % 2]);
            thread::spawn(move || {
                (0..20)
                    .map(|n| {
                        let batch = Batch {
                            deliveries: vec![NewDelivery {
                                address: ANNA.into(),
                                folder: "INBOX".into(),
                                bytes: format!("message {i} {n}\r\n").into_bytes(),
                                flags: vec![],
                                internaldate: T0,
                            }],
                            ..Batch::default()
                        };
                        node.commit_batch(batch).unwrap().delivered[0].uid
                    })
                    .collect::<Vec<u32>>()
            })
        })
        .collect();
    let mut uids: Vec<u32> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    uids.sort_unstable();
    assert_eq!(uids, (1..=120).collect::<Vec<_>>());
    let metas = t.store.messages(ANNA, "INBOX").unwrap();
    assert_eq!(metas.len(), 120);
    let modseqs: BTreeSet<u64> = metas.iter().map(|m| m.modseq).collect();
    assert_eq!(modseqs.len(), 120, "one modseq per delivery");
    let used: u64 = metas.iter().map(|m| m.size).sum();
    assert_eq!(t.store.usage(ANNA).unwrap().used, used);
    assert!(t.store.check().unwrap().is_ok());
}

#[test]
fn a_restarted_server_gives_temporary_errors_then_the_store_works_again() {
    let server = PgServer::start();
    let url = server.database();
    let store = PgStore::open(&PgOptions::new(&url)).unwrap();
    let other = PgStore::open(&PgOptions::new(&url)).unwrap();
    store.add_domain("pec.example.it", 1 << 20).unwrap();
    let (_hook, changes) = listen(&store);

    server.halt();
    for _ in 0..3 {
        let err = store.list_domains().unwrap_err();
        assert!(matches!(err, Error::Unavailable(_)), "{err}");
        let err = store
            .commit_batch(Batch {
                queue: vec![queued(1)],
                ..Batch::default()
            })
            .unwrap_err();
        assert!(matches!(err, Error::Unavailable(_)), "{err}");
    }
    server.resume();

    // The same store, not reopened, works again; nothing of the failed calls was kept.
    assert_eq!(store.list_domains().unwrap().len(), 1);
    assert!(store.list_queue().unwrap().is_empty());
    store.enqueue(&queued(2)).unwrap();
    assert_eq!(other.list_queue().unwrap().len(), 1);
    // Its listener connected again too (and said so), and hears the other node.
    assert_eq!(changes.recv_timeout(PATIENCE), Ok(Change::Queued));
    other.enqueue(&queued(3)).unwrap();
    assert_eq!(changes.recv_timeout(PATIENCE), Ok(Change::Queued));
    assert!(store.verify_log().unwrap().is_ok());
}

#[test]
fn the_store_is_called_from_inside_a_current_thread_runtime() {
    let t = database();
    let runtime = tokio_current_thread();
    runtime.block_on(async {
        // The synchronous driver would start a runtime of its own here and panic; the
        // store's worker threads own the connections instead.
        assert_eq!(t.store.list_domains().unwrap().len(), 1);
        let node = PgStore::open(&PgOptions::new(t.url.as_deref().unwrap())).unwrap();
        node.deliver(ANNA, "INBOX", b"x\r\n", &[], T0).unwrap();
        let (_hook, _changes) = listen(&node);
    });
}

/// A tokio runtime of the flavour `#[tokio::test]` uses.
fn tokio_current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}
