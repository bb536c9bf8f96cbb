//! Behaviour of the store through its public API: on both backends, then what only one
//! of them has (SQLite's group commit and blob files, PostgreSQL's lack of `backup`).

use std::sync::Arc;
use std::thread;

use pec_store::test_util::{Backend, TestStore};
use pec_store::{
    Blobs, Direction, Directory, Error, FlagOp, Ledger, Mailboxes, Maintenance, NewAccount,
    SqliteStore, Store, backend_tests, blobs,
};

const ADDR: &str = "mario.rossi@pec.example.it";

/// Adds the domain and the account of [`ADDR`] to `store`.
fn add_account(store: &dyn Store, quota: Option<u64>, receipts_folder: bool) {
    store.add_domain("PEC.example.it", 1_000_000).unwrap();
    store
        .create_account(&NewAccount {
            address: "Mario.Rossi@pec.example.it".into(),
            password_hash: "$argon2id$v=19$fake".into(),
            quota,
            receipts_folder,
        })
        .unwrap();
}

/// A store of `backend` with the account of [`ADDR`].
fn with_account(backend: Backend, quota: Option<u64>, receipts_folder: bool) -> TestStore {
    let t = TestStore::new(backend);
    add_account(t.store.as_ref(), quota, receipts_folder);
    t
}

/// An embedded store with the account of [`ADDR`].
fn store_with_account(
    quota: Option<u64>,
    receipts_folder: bool,
) -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    add_account(&store, quota, receipts_folder);
    (dir, store)
}

fn flags(f: &[&str]) -> Vec<String> {
    f.iter().map(|s| s.to_string()).collect()
}

fn account_gets_standard_folders_and_default_quota(backend: Backend) {
    let t = with_account(backend, None, true);
    let store = &t.store;
    let acc = store.account("MARIO.ROSSI@PEC.EXAMPLE.IT").unwrap();
    assert_eq!(acc.address, ADDR);
    assert_eq!(acc.domain, "pec.example.it");
    assert_eq!(acc.quota, 1_000_000);
    let folders: Vec<_> = store
        .list_folders(ADDR)
        .unwrap()
        .into_iter()
        .map(|f| (f.name, f.special_use))
        .collect();
    let expect = [
        ("INBOX", None),
        ("Drafts", Some("\\Drafts")),
        ("Junk", Some("\\Junk")),
        ("Ricevute", None),
        ("Sent", Some("\\Sent")),
        ("Trash", Some("\\Trash")),
    ];
    let expect: Vec<_> = expect
        .iter()
        .map(|(n, s)| (n.to_string(), s.map(str::to_string)))
        .collect();
    assert_eq!(folders, expect);
}

fn receipts_folder_can_be_turned_on_and_off(backend: Backend) {
    let t = with_account(backend, None, false);
    let store = &t.store;
    let has_ricevute = |s: &Arc<dyn Store>| {
        s.list_folders(ADDR)
            .unwrap()
            .iter()
            .any(|f| f.name == "Ricevute")
    };
    assert!(!has_ricevute(store));
    store.set_receipts_folder(ADDR, true).unwrap();
    assert!(store.account(ADDR).unwrap().receipts_folder);
    assert!(has_ricevute(store));
    store
        .deliver(ADDR, "Ricevute", b"Subject: r\r\n\r\nx\r\n", &[], 0)
        .unwrap();
    store.set_receipts_folder(ADDR, true).unwrap();
    store.set_receipts_folder(ADDR, false).unwrap();
    assert!(!store.account(ADDR).unwrap().receipts_folder);
    assert_eq!(store.messages(ADDR, "Ricevute").unwrap().len(), 1, "kept");
    assert!(matches!(
        store.set_receipts_folder("nessuno@pec.example.it", true),
        Err(Error::NoSuchAccount(_))
    ));
}

fn account_admin_operations(backend: Backend) {
    let t = with_account(backend, Some(10), false);
    let store = &t.store;
    assert!(matches!(
        store.create_account(&NewAccount {
            address: ADDR.into(),
            password_hash: "x".into(),
            quota: None,
            receipts_folder: false,
        }),
        Err(Error::AlreadyExists(_))
    ));
    assert!(matches!(
        store.create_account(&NewAccount {
            address: "a@unknown.it".into(),
            password_hash: "x".into(),
            quota: None,
            receipts_folder: false,
        }),
        Err(Error::NoSuchDomain(_))
    ));
    store.set_password_hash(ADDR, "new-hash").unwrap();
    store.set_quota(ADDR, 42).unwrap();
    let acc = store.account(ADDR).unwrap();
    assert_eq!((acc.password_hash.as_str(), acc.quota), ("new-hash", 42));
    assert_eq!(
        store.list_accounts(Some("pec.example.it")).unwrap().len(),
        1
    );
    assert!(matches!(
        store.remove_domain("pec.example.it"),
        Err(Error::DomainNotEmpty(_))
    ));
    store.remove_account(ADDR).unwrap();
    assert!(matches!(store.account(ADDR), Err(Error::NoSuchAccount(_))));
    store.remove_domain("pec.example.it").unwrap();
    assert!(store.list_domains().unwrap().is_empty());
}

fn deliver_fetch_select_and_uids(backend: Backend) {
    let t = with_account(backend, None, false);
    let store = &t.store;
    let a = store
        .deliver(ADDR, "inbox", b"first\r\n", &[], 1000)
        .unwrap();
    let b = store
        .deliver(ADDR, "INBOX", b"second\r\n", &flags(&["\\Seen"]), 2000)
        .unwrap();
    assert_eq!((a.uid, b.uid), (1, 2));
    assert_eq!(a.folder, "INBOX");
    assert_eq!(store.fetch(ADDR, "INBOX", 2).unwrap(), b"second\r\n");
    let sel = store.select(ADDR, "INBOX").unwrap();
    assert_eq!(
        (sel.exists, sel.uidnext, sel.uidvalidity),
        (2, 3, a.uidvalidity)
    );
    assert_eq!(sel.highestmodseq, b.modseq);
    let metas = store.messages(ADDR, "INBOX").unwrap();
    assert_eq!(metas[1].flags, vec!["\\Seen"]);
    assert_eq!(metas[0].internaldate, 1000);
    assert_eq!(store.usage(ADDR).unwrap().used, 15);
    assert!(matches!(
        store.fetch(ADDR, "INBOX", 9),
        Err(Error::NoSuchMessage(9))
    ));
    assert!(matches!(
        store.deliver(ADDR, "Nope", b"x", &[], 0),
        Err(Error::NoSuchFolder(_))
    ));
}

fn flags_modseq_expunge_and_tombstones(backend: Backend) {
    let t = with_account(backend, None, false);
    let store = &t.store;
    for i in 0..3 {
        store
            .deliver(ADDR, "INBOX", format!("m{i}").as_bytes(), &[], 0)
            .unwrap();
    }
    let before = store.select(ADDR, "INBOX").unwrap().highestmodseq;
    let changed = store
        .store_flags(
            ADDR,
            "INBOX",
            &[1, 2, 99],
            FlagOp::Add,
            &flags(&["\\Deleted"]),
        )
        .unwrap();
    assert_eq!(changed.len(), 2);
    assert!(changed.iter().all(|m| m.modseq > before));
    // Adding a flag already present changes nothing.
    assert!(
        store
            .store_flags(ADDR, "INBOX", &[1], FlagOp::Add, &flags(&["\\Deleted"]))
            .unwrap()
            .is_empty()
    );
    store
        .store_flags(ADDR, "INBOX", &[2], FlagOp::Remove, &flags(&["\\Deleted"]))
        .unwrap();
    let mid = store.select(ADDR, "INBOX").unwrap().highestmodseq;
    assert_eq!(store.expunge(ADDR, "INBOX", None).unwrap(), vec![1]);
    let sel = store.select(ADDR, "INBOX").unwrap();
    assert_eq!(sel.exists, 2);
    assert!(sel.highestmodseq > mid);
    assert_eq!(store.expunged_since(ADDR, "INBOX", mid).unwrap(), vec![1]);
    assert!(
        store
            .expunged_since(ADDR, "INBOX", sel.highestmodseq)
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.usage(ADDR).unwrap().used, 4);
    assert!(matches!(
        store.store_flags(ADDR, "INBOX", &[2], FlagOp::Add, &flags(&["bad flag"])),
        Err(Error::InvalidName(_))
    ));
}

fn copy_and_move_return_new_uids(backend: Backend) {
    let t = with_account(backend, Some(100), false);
    let store = &t.store;
    store.create_folder(ADDR, "Archivio").unwrap();
    store.deliver(ADDR, "INBOX", b"0123456789", &[], 0).unwrap();
    store.deliver(ADDR, "INBOX", b"abcdefghij", &[], 0).unwrap();
    let copied = store.copy(ADDR, "INBOX", &[2, 1, 7], "Archivio").unwrap();
    assert_eq!(copied.uids, vec![(1, 1), (2, 2)]);
    assert_eq!(store.usage(ADDR).unwrap().used, 40);
    let moved = store
        .move_messages(ADDR, "INBOX", &[1], "Archivio")
        .unwrap();
    assert_eq!(moved.uids, vec![(1, 3)]);
    assert_eq!(
        moved.uidvalidity,
        store.select(ADDR, "Archivio").unwrap().uidvalidity
    );
    assert_eq!(store.fetch(ADDR, "Archivio", 3).unwrap(), b"0123456789");
    assert_eq!(store.select(ADDR, "INBOX").unwrap().exists, 1);
    assert_eq!(store.usage(ADDR).unwrap().used, 40);
    // A copy that would pass the quota is refused whole.
    store.set_quota(ADDR, 45).unwrap();
    assert!(matches!(
        store.copy(ADDR, "Archivio", &[1, 2], "INBOX"),
        Err(Error::QuotaExceeded { .. })
    ));
    assert_eq!(store.select(ADDR, "INBOX").unwrap().exists, 1);
}

fn user_folders_create_rename_delete(backend: Backend) {
    let t = with_account(backend, None, false);
    let store = &t.store;
    store.create_folder(ADDR, "Lavoro").unwrap();
    assert!(matches!(
        store.create_folder(ADDR, "Lavoro"),
        Err(Error::AlreadyExists(_))
    ));
    let v1 = store.select(ADDR, "Lavoro").unwrap().uidvalidity;
    store.deliver(ADDR, "Lavoro", b"x", &[], 0).unwrap();
    store.rename_folder(ADDR, "Lavoro", "Progetti").unwrap();
    assert_eq!(store.select(ADDR, "Progetti").unwrap().uidvalidity, v1);
    assert_eq!(store.fetch(ADDR, "Progetti", 1).unwrap(), b"x");
    store.set_subscribed(ADDR, "Progetti", false).unwrap();
    assert!(
        store
            .list_folders(ADDR)
            .unwrap()
            .iter()
            .any(|f| f.name == "Progetti" && !f.subscribed)
    );
    store.delete_folder(ADDR, "Progetti").unwrap();
    assert_eq!(store.usage(ADDR).unwrap().used, 0);
    store.create_folder(ADDR, "Progetti").unwrap();
    assert!(store.select(ADDR, "Progetti").unwrap().uidvalidity > v1);
    for system in ["INBOX", "Sent", "Trash"] {
        assert!(matches!(
            store.delete_folder(ADDR, system),
            Err(Error::SystemFolder(_))
        ));
        assert!(matches!(
            store.rename_folder(ADDR, system, "Other"),
            Err(Error::SystemFolder(_))
        ));
    }
}

/// RFC 3501 6.3.6 subscriptions: the account's own folders start subscribed, a user's
/// new folder does not, DELETE keeps the subscription, RENAME carries it, and a name
/// may be subscribed without a folder.
fn subscriptions_outlive_folders(backend: Backend) {
    let t = with_account(backend, None, true);
    let store = &t.store;
    let subscribed = |name: &str| {
        store
            .list_folders(ADDR)
            .unwrap()
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.subscribed)
    };
    for system in ["INBOX", "Sent", "Drafts", "Trash", "Junk", "Ricevute"] {
        assert_eq!(subscribed(system), Some(true), "{system}");
    }
    store.create_folder(ADDR, "Lavoro").unwrap();
    assert_eq!(subscribed("Lavoro"), Some(false));
    store.set_subscribed(ADDR, "Lavoro", true).unwrap();
    store.set_subscribed(ADDR, "Lavoro", true).unwrap();
    assert_eq!(subscribed("Lavoro"), Some(true));
    store.rename_folder(ADDR, "Lavoro", "Progetti").unwrap();
    assert_eq!(subscribed("Progetti"), Some(true));
    store.delete_folder(ADDR, "Progetti").unwrap();
    assert_eq!(subscribed("Progetti"), None);
    store.set_subscribed(ADDR, "Mai/creata", true).unwrap();
    let names = store.subscriptions(ADDR).unwrap();
    assert!(
        names.contains(&"Progetti".to_string()) && names.contains(&"Mai/creata".to_string()),
        "{names:?}"
    );
    assert!(!names.contains(&"Lavoro".to_string()), "{names:?}");
    store.set_subscribed(ADDR, "inbox", false).unwrap();
    assert_eq!(subscribed("INBOX"), Some(false));
    store.set_subscribed(ADDR, "Progetti", false).unwrap();
    assert!(
        !store
            .subscriptions(ADDR)
            .unwrap()
            .contains(&"Progetti".to_string())
    );
}

fn delivery_over_quota_is_refused_and_stores_nothing(backend: Backend) {
    let t = with_account(backend, Some(10), false);
    let store = &t.store;
    store.deliver(ADDR, "INBOX", b"12345678", &[], 0).unwrap();
    let err = store
        .deliver(ADDR, "INBOX", b"too big", &[], 0)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::QuotaExceeded {
                used: 8,
                size: 7,
                quota: 10,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(store.usage(ADDR).unwrap().used, 8);
    assert_eq!(store.select(ADDR, "INBOX").unwrap().exists, 1);
    assert_eq!(store.select(ADDR, "INBOX").unwrap().uidnext, 2);
    assert!(matches!(
        store.read_blob(&blobs::hash_hex(b"too big")),
        Err(Error::BlobMissing(_))
    ));
    // Exactly filling the quota is allowed.
    store.deliver(ADDR, "INBOX", b"12", &[], 0).unwrap();
    assert!(store.check().unwrap().is_ok());
}

fn concurrent_deliveries_never_exceed_quota(backend: Backend) {
    let t = with_account(backend, Some(1000), false);
    let store = &t.store;
    let threads: Vec<_> = (0..10)
        .map(|t| {
            let store = Arc::clone(store);
            thread::spawn(move || {
                let mut ok = 0u64;
                for i in 0..20 {
                    let body = format!("{t:02}-{i:02}-{}", "x".repeat(40));
                    match store.deliver(ADDR, "INBOX", body.as_bytes(), &[], 0) {
                        Ok(d) => ok += d.size,
                        Err(Error::QuotaExceeded { .. }) => {}
                        Err(e) => panic!("{e}"),
                    }
                }
                ok
            })
        })
        .collect();
    let delivered: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let usage = store.usage(ADDR).unwrap();
    assert_eq!(usage.used, delivered);
    assert!(usage.used <= 1000, "{usage:?}");
    assert!(
        usage.used > 1000 - 46,
        "quota should be nearly full: {usage:?}"
    );
}

#[test]
fn group_commit_shares_transactions() {
    let (_dir, store) = store_with_account(None, false);
    let store = Arc::new(store);
    let start = store.commits();
    let threads: Vec<_> = (0..20)
        .map(|t| {
            let store = Arc::clone(&store);
            thread::spawn(move || {
                for i in 0..10 {
                    let body = format!("thread {t} message {i}");
                    store
                        .deliver(ADDR, "INBOX", body.as_bytes(), &[], 0)
                        .unwrap();
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    let commits = store.commits() - start;
    let metas = store.messages(ADDR, "INBOX").unwrap();
    assert_eq!(metas.len(), 200);
    let uids: Vec<u32> = metas.iter().map(|m| m.uid).collect();
    assert_eq!(uids, (1..=200).collect::<Vec<_>>());
    assert!(commits < 200, "no grouping happened: {commits} commits");
}

/// Archives `n` entries for each of `addresses` in turn, at times 100, 101, ...
fn archive_interleaved(store: &dyn Store, addresses: &[&str], n: usize) {
    for i in 0..n {
        for (j, a) in addresses.iter().enumerate() {
            let at = 100 + (i * addresses.len() + j) as i64;
            let bytes = format!("Subject: {i}\r\n\r\n{a}\r\n");
            store
                .archive(a, bytes.as_bytes(), Direction::Received, "accettazione", at)
                .unwrap();
        }
    }
}

/// Each address's archive is a folder of its own: UIDs 1, 2, 3... in arrival order,
/// whatever other addresses archive in between, and counters of its own.
fn archive_folders_number_entries_per_address(backend: Backend) {
    const OTHER: &str = "altro@pec.example.it";
    let t = with_account(backend, None, false);
    let store = t.store.as_ref();
    archive_interleaved(store, &[ADDR, OTHER], 3);
    for a in [ADDR, OTHER] {
        let uids: Vec<u32> = store
            .list_archive(a)
            .unwrap()
            .iter()
            .map(|e| e.uid)
            .collect();
        assert_eq!(uids, [1, 2, 3], "{a}");
        let metas = store.archive_messages(a).unwrap();
        assert_eq!(metas.iter().map(|m| m.uid).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(
            metas.iter().map(|m| m.modseq).collect::<Vec<_>>(),
            [2, 3, 4],
            "each arrival is a change of the folder"
        );
        assert!(metas.iter().all(|m| m.flags.is_empty()));
        let state = store.select_archive(a).unwrap();
        assert_eq!(
            (state.uidnext, state.highestmodseq, state.exists),
            (4, 4, 3)
        );
        assert!(state.uidvalidity > 1, "1 was the UIDVALIDITY of global ids");
    }
    assert_eq!(
        store.read_archive_of(ADDR, 2).unwrap(),
        format!("Subject: 1\r\n\r\n{ADDR}\r\n").as_bytes()
    );
    assert!(matches!(
        store.read_archive_of(ADDR, 4),
        Err(Error::NoSuchMessage(4))
    ));
    // An address that never had an entry gets a folder on first sight, stable after.
    let empty = store.select_archive("nuovo@pec.example.it").unwrap();
    assert_eq!((empty.uidnext, empty.exists), (1, 0));
    assert_eq!(store.select_archive("NUOVO@pec.example.it").unwrap(), empty);
}

/// An address marks its own entries read, each change with a new modseq; UNCHANGEDSINCE
/// leaves newer entries alone; purged UIDs are never given again.
fn archive_read_marks_have_modseqs(backend: Backend) {
    const OTHER: &str = "altro@pec.example.it";
    let t = with_account(backend, None, false);
    let store = t.store.as_ref();
    archive_interleaved(store, &[ADDR, OTHER], 3);
    let done = store
        .set_archive_seen(ADDR, &[1, 2, 99], true, None)
        .unwrap();
    assert_eq!(
        done.changed.iter().map(|m| m.uid).collect::<Vec<_>>(),
        [1, 2]
    );
    assert!(done.changed.iter().all(|m| m.modseq == 5));
    assert!(done.changed.iter().all(|m| m.flags == ["\\Seen"]));
    assert!(done.modified.is_empty());
    // Entry 1 changed at 5, after 4: left alone and reported; entry 3 changes.
    let done = store
        .set_archive_seen(ADDR, &[1, 3], true, Some(4))
        .unwrap();
    assert_eq!(done.modified, [1]);
    assert_eq!(done.changed.iter().map(|m| m.uid).collect::<Vec<_>>(), [3]);
    assert_eq!(done.changed[0].modseq, 6);
    let done = store
        .set_archive_seen(ADDR, &[1, 2, 3], false, Some(6))
        .unwrap();
    assert_eq!(
        done.changed.iter().map(|m| m.uid).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert!(
        done.changed
            .iter()
            .all(|m| m.modseq == 7 && m.flags.is_empty())
    );
    // Nothing to change: no new modseq.
    let done = store.set_archive_seen(ADDR, &[1], false, None).unwrap();
    assert_eq!(done, pec_store::SeenStored::default());
    assert_eq!(store.select_archive(ADDR).unwrap().highestmodseq, 7);
    store.set_archive_seen(ADDR, &[2], true, None).unwrap();
    let seen: Vec<u32> = store
        .archive_messages(ADDR)
        .unwrap()
        .iter()
        .filter(|m| !m.flags.is_empty())
        .map(|m| m.uid)
        .collect();
    assert_eq!(seen, [2]);
    assert!(
        store
            .archive_messages(OTHER)
            .unwrap()
            .iter()
            .all(|m| m.flags.is_empty() && m.modseq <= 4),
        "the same UIDs of another address are untouched"
    );
    // Purged entries leave their UIDs unused: the next entry gets 4.
    assert_eq!(store.purge_archive(102).unwrap(), 2);
    let next = store
        .archive(ADDR, b"dopo", Direction::Sent, "posta-certificata", 900)
        .unwrap();
    assert_eq!(next.uid, 4);
    let state = store.select_archive(ADDR).unwrap();
    assert_eq!((state.uidnext, state.exists), (5, 3));
    let uids: Vec<u32> = store
        .archive_messages(ADDR)
        .unwrap()
        .iter()
        .map(|m| m.uid)
        .collect();
    assert_eq!(uids, [2, 3, 4]);
}

/// The archive folders' UIDs, UIDVALIDITY and marks are the same when the store is
/// opened again (another node on PostgreSQL).
fn archive_folders_survive_reopening(backend: Backend) {
    let t = with_account(backend, None, false);
    archive_interleaved(t.store.as_ref(), &[ADDR], 2);
    t.store.set_archive_seen(ADDR, &[2], true, None).unwrap();
    let before = (
        t.store.select_archive(ADDR).unwrap(),
        t.store.archive_messages(ADDR).unwrap(),
    );
    let again = t.open();
    assert_eq!(
        (
            again.select_archive(ADDR).unwrap(),
            again.archive_messages(ADDR).unwrap()
        ),
        before
    );
    let next = again
        .archive(ADDR, b"x", Direction::Sent, "posta-certificata", 500)
        .unwrap();
    assert_eq!(next.uid, 3);
}

fn archive_is_outside_quota_and_purged_by_age(backend: Backend) {
    let t = with_account(backend, Some(5), false);
    let store = &t.store;
    let e1 = store
        .archive(
            ADDR,
            b"envelope bytes",
            Direction::Sent,
            "posta-certificata",
            100,
        )
        .unwrap();
    store
        .archive(
            ADDR,
            b"receipt bytes",
            Direction::Received,
            "accettazione",
            200,
        )
        .unwrap();
    assert_eq!(store.usage(ADDR).unwrap().used, 0);
    assert_eq!(store.read_archive(e1.id).unwrap(), b"envelope bytes");
    let list = store.list_archive(ADDR).unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!((list[0].direction, list[0].size), (Direction::Sent, 14));
    assert_eq!(store.purge_archive(150).unwrap(), 1);
    let list = store.list_archive(ADDR).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].kind, "accettazione");
    // The archive outlives the mailbox.
    store.remove_account(ADDR).unwrap();
    assert_eq!(store.list_archive(ADDR).unwrap().len(), 1);
}

/// A message of `len` bytes starting with `tag` (larger than [`blobs::INLINE_MAX`]: a file).
fn sized(tag: &[u8], len: usize) -> Vec<u8> {
    let mut bytes = tag.to_vec();
    bytes.resize(len, b'.');
    bytes
}

/// The file of blob `hash` under the store root `dir`.
fn blob_file(dir: &tempfile::TempDir, hash: &str) -> std::path::PathBuf {
    dir.path().join("blobs").join(&hash[..2]).join(&hash[2..])
}

/// A second connection to the store's database, to look at or alter it behind the store.
fn db(dir: &tempfile::TempDir) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.path().join("store.db")).unwrap()
}

/// How many inline blobs the store holds.
fn inline_blobs(dir: &tempfile::TempDir) -> i64 {
    db(dir)
        .query_row("SELECT count(*) FROM blobs", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn check_reports_missing_and_corrupt_blobs() {
    let (dir, store) = store_with_account(None, false);
    let big = |tag: &[u8]| sized(tag, blobs::INLINE_MAX + 1);
    let a = store
        .deliver(ADDR, "INBOX", &big(b"alpha"), &[], 0)
        .unwrap();
    let b = store.deliver(ADDR, "INBOX", &big(b"beta"), &[], 0).unwrap();
    let c = store.deliver(ADDR, "INBOX", b"gamma", &[], 0).unwrap();
    store
        .archive(ADDR, &big(b"alpha"), Direction::Sent, "k", 0)
        .unwrap();
    let report = store.check().unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.blobs_checked, 3);
    assert!(!blob_file(&dir, &c.hash).exists(), "a small blob is inline");
    std::fs::remove_file(blob_file(&dir, &a.hash)).unwrap();
    std::fs::write(blob_file(&dir, &b.hash), b"BETA").unwrap();
    db(&dir)
        .execute(
            "UPDATE blobs SET bytes = 'GAMMA' WHERE hash = ?1",
            [&c.hash],
        )
        .unwrap();
    let report = store.check().unwrap();
    assert_eq!(report.missing, vec![a.hash]);
    let mut corrupt = vec![b.hash, c.hash];
    corrupt.sort();
    assert_eq!(report.corrupt, corrupt);
    assert!(!report.is_ok());
}

#[test]
fn inline_and_file_blobs_roundtrip() {
    let (dir, store) = store_with_account(None, false);
    for len in [0, 5, blobs::INLINE_MAX, blobs::INLINE_MAX + 1] {
        let bytes = sized(b"m", len.max(1));
        let d = store.deliver(ADDR, "INBOX", &bytes, &[], 0).unwrap();
        assert_eq!(store.fetch(ADDR, "INBOX", d.uid).unwrap(), bytes);
        assert_eq!(store.read_blob(&d.hash).unwrap(), bytes);
        let e = store
            .archive(ADDR, &bytes, Direction::Sent, "k", 0)
            .unwrap();
        assert_eq!(store.read_archive(e.id).unwrap(), bytes);
        assert_eq!(
            blob_file(&dir, &d.hash).exists(),
            !blobs::is_inline(bytes.len()),
            "{len}"
        );
    }
    assert_eq!(inline_blobs(&dir), 3);
    assert!(matches!(
        store.read_blob(&blobs::hash_hex(b"never stored")),
        Err(Error::BlobMissing(_))
    ));
    assert!(matches!(
        store.read_blob("../../etc/passwd"),
        Err(Error::InvalidHash(_))
    ));
}

#[test]
fn small_blobs_stored_as_files_by_an_older_version_still_read() {
    let (dir, store) = store_with_account(None, false);
    let d = store.deliver(ADDR, "INBOX", b"legacy", &[], 0).unwrap();
    // What a store written before inline blobs looks like: the file, no row.
    let path = blob_file(&dir, &d.hash);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, b"legacy").unwrap();
    db(&dir)
        .execute("DELETE FROM blobs WHERE hash = ?1", [&d.hash])
        .unwrap();
    assert_eq!(store.fetch(ADDR, "INBOX", d.uid).unwrap(), b"legacy");
    let report = store.check().unwrap();
    assert!(report.is_ok(), "{report:?}");
    let copy = dir.path().join("backup");
    assert_eq!(store.backup(&copy).unwrap(), 1);
    let restored = SqliteStore::open(&copy).unwrap();
    assert_eq!(restored.fetch(ADDR, "INBOX", d.uid).unwrap(), b"legacy");
    assert!(restored.check().unwrap().is_ok());
}

#[test]
fn unreferenced_inline_blobs_are_deleted() {
    let (dir, store) = store_with_account(None, false);
    // The same bytes in a mailbox and in the archive: one blob, kept while either refers to it.
    let d = store.deliver(ADDR, "INBOX", b"shared", &[], 0).unwrap();
    store
        .archive(ADDR, b"shared", Direction::Sent, "k", 100)
        .unwrap();
    store.deliver(ADDR, "Sent", b"in a folder", &[], 0).unwrap();
    store.create_folder(ADDR, "Old").unwrap();
    store
        .deliver(ADDR, "Old", b"in a user folder", &[], 0)
        .unwrap();
    assert_eq!(inline_blobs(&dir), 3);

    store
        .store_flags(ADDR, "INBOX", &[d.uid], FlagOp::Add, &flags(&["\\Deleted"]))
        .unwrap();
    assert_eq!(store.expunge(ADDR, "INBOX", None).unwrap(), vec![d.uid]);
    assert_eq!(inline_blobs(&dir), 3, "the archive still refers to it");
    assert_eq!(store.purge_archive(200).unwrap(), 1);
    assert_eq!(inline_blobs(&dir), 2);
    assert!(matches!(
        store.read_blob(&d.hash),
        Err(Error::BlobMissing(_))
    ));

    store.delete_folder(ADDR, "Old").unwrap();
    assert_eq!(inline_blobs(&dir), 1);
    let q = store
        .enqueue(&pec_store::NewQueueEntry {
            msgid: "<m@x>".into(),
            mail_from: ADDR.into(),
            rcpt_to: vec!["b@y.it".into()],
            domain: "y.it".into(),
            message: b"queued".to_vec(),
            created_at: 0,
            due_at: 0,
            expires_at: 10,
        })
        .unwrap();
    assert_eq!(inline_blobs(&dir), 2);
    store.queue_complete(q.id).unwrap();
    assert_eq!(inline_blobs(&dir), 1);
    store.remove_account(ADDR).unwrap();
    assert_eq!(inline_blobs(&dir), 0);
    assert!(store.check().unwrap().is_ok());
}

#[test]
fn backup_while_writing_opens_and_checks() {
    let (dir, store) = store_with_account(None, false);
    let store = Arc::new(store);
    for i in 0..20 {
        store
            .deliver(ADDR, "INBOX", format!("before {i}").as_bytes(), &[], 0)
            .unwrap();
    }
    let writer = {
        let store = Arc::clone(&store);
        thread::spawn(move || {
            for i in 0..50 {
                store
                    .deliver(ADDR, "INBOX", format!("during {i}").as_bytes(), &[], 0)
                    .unwrap();
            }
        })
    };
    let dest = dir.path().join("backup");
    let copied = store.backup(&dest).unwrap();
    writer.join().unwrap();
    assert!(copied >= 20);
    let restored = SqliteStore::open(&dest).unwrap();
    let report = restored.check().unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.blobs_checked, copied);
    let metas = restored.messages(ADDR, "INBOX").unwrap();
    assert_eq!(metas.len() as u64, copied);
    assert_eq!(restored.fetch(ADDR, "INBOX", 1).unwrap(), b"before 0");
    assert!(matches!(store.backup(&dest), Err(Error::AlreadyExists(_))));
}

fn reopen_keeps_everything(backend: Backend) {
    let t = TestStore::new(backend);
    {
        let store = t.open();
        store.add_domain("x.it", 100).unwrap();
        store
            .create_account(&NewAccount {
                address: "a@x.it".into(),
                password_hash: "h".into(),
                quota: None,
                receipts_folder: false,
            })
            .unwrap();
        store.deliver("a@x.it", "Sent", b"kept", &[], 5).unwrap();
    }
    let store = t.open();
    assert_eq!(store.fetch("a@x.it", "Sent", 1).unwrap(), b"kept");
    assert!(store.check().unwrap().is_ok());
}

fn blobs_go_with_their_last_reference(backend: Backend) {
    let t = with_account(backend, None, false);
    let store = &t.store;
    let gone = |bytes: &[u8]| {
        matches!(
            store.read_blob(&blobs::hash_hex(bytes)),
            Err(Error::BlobMissing(_))
        )
    };
    // The same bytes in two folders and in the archive: kept while any refers to them.
    let d = store.deliver(ADDR, "INBOX", b"shared", &[], 0).unwrap();
    store.copy(ADDR, "INBOX", &[d.uid], "Sent").unwrap();
    store
        .archive(ADDR, b"shared", Direction::Sent, "k", 100)
        .unwrap();
    for folder in ["INBOX", "Sent"] {
        store
            .store_flags(ADDR, folder, &[1], FlagOp::Add, &flags(&["\\Deleted"]))
            .unwrap();
        store.expunge(ADDR, folder, None).unwrap();
        assert!(!gone(b"shared"), "the archive still refers to it");
    }
    assert_eq!(store.purge_archive(200).unwrap(), 1);
    assert!(gone(b"shared"));
    store.create_folder(ADDR, "Old").unwrap();
    store
        .deliver(ADDR, "Old", b"in a user folder", &[], 0)
        .unwrap();
    store.delete_folder(ADDR, "Old").unwrap();
    assert!(gone(b"in a user folder"));
    store
        .deliver(ADDR, "INBOX", b"in the mailbox", &[], 0)
        .unwrap();
    let q = store
        .enqueue(&pec_store::NewQueueEntry {
            msgid: "<m@x>".into(),
            mail_from: ADDR.into(),
            rcpt_to: vec!["b@y.it".into()],
            domain: "y.it".into(),
            message: b"queued".to_vec(),
            created_at: 0,
            due_at: 0,
            expires_at: 10,
        })
        .unwrap();
    assert!(!gone(b"queued"));
    store.queue_complete(q.id).unwrap();
    assert!(gone(b"queued"));
    store.remove_account(ADDR).unwrap();
    assert!(gone(b"in the mailbox"));
    assert!(store.check().unwrap().is_ok());
}

backend_tests!(
    account_gets_standard_folders_and_default_quota,
    receipts_folder_can_be_turned_on_and_off,
    account_admin_operations,
    deliver_fetch_select_and_uids,
    flags_modseq_expunge_and_tombstones,
    copy_and_move_return_new_uids,
    user_folders_create_rename_delete,
    subscriptions_outlive_folders,
    delivery_over_quota_is_refused_and_stores_nothing,
    concurrent_deliveries_never_exceed_quota,
    archive_is_outside_quota_and_purged_by_age,
    archive_folders_number_entries_per_address,
    archive_read_marks_have_modseqs,
    archive_folders_survive_reopening,
    reopen_keeps_everything,
    blobs_go_with_their_last_reference,
);

#[test]
fn postgres_check_reports_missing_corrupt_and_miscounted_blobs() {
    let t = with_account(Backend::Postgres, None, false);
    let store = &t.store;
    let a = store.deliver(ADDR, "INBOX", b"alpha", &[], 0).unwrap();
    let b = store.deliver(ADDR, "INBOX", b"beta", &[], 0).unwrap();
    let c = store.deliver(ADDR, "INBOX", b"gamma", &[], 0).unwrap();
    let report = store.check().unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.blobs_checked, 3);
    t.tamper(&format!(
        "DELETE FROM blobs WHERE hash = '{}';
         UPDATE blobs SET bytes = 'BETA' WHERE hash = '{}';
         UPDATE blobs SET refs = 5 WHERE hash = '{}';
         UPDATE accounts SET used = 1",
        a.hash, b.hash, c.hash
    ));
    let report = store.check().unwrap();
    assert_eq!(report.missing, vec![a.hash]);
    assert_eq!(report.corrupt, vec![b.hash]);
    assert_eq!(report.database.len(), 2, "{:?}", report.database);
    assert!(
        report.database[0].contains(&c.hash),
        "{:?}",
        report.database
    );
    assert!(report.database[1].contains("usage counter 1"));
}

#[test]
fn postgres_backup_is_left_to_postgresql_tools() {
    let t = TestStore::new(Backend::Postgres);
    let err = t.store.backup(&t.dir.path().join("copy")).unwrap_err();
    assert!(matches!(err, Error::Unsupported(_)), "{err}");
}
