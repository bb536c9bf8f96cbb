//! The options of a security archive (what it keeps, its own quota), applied to the
//! archive copies of a batch in the batch's transaction, and the bytes it holds.

use pec_store::test_util::{Backend, TestStore};
use pec_store::{
    ArchiveOptions, ArchiveScope, Batch, DEFAULT_ARCHIVE_QUOTA, Direction, Error, NewAccount,
    NewArchiveCopy, Store, Usage, backend_tests,
};

const USER: &str = "ufficio@pec.example.it";
const T0: i64 = 1_700_000_000;

fn store(backend: Backend) -> TestStore {
    let t = TestStore::new(backend);
    t.store.add_domain("pec.example.it", 1 << 30).unwrap();
    t.store
        .create_account(&NewAccount {
            address: USER.into(),
            password_hash: "$argon2id$v=19$fake".into(),
            quota: None,
            receipts_folder: false,
        })
        .unwrap();
    t
}

/// A batch of one archive copy for [`USER`].
fn copy(direction: Direction, kind: &str, size: usize, at: i64) -> Batch {
    Batch {
        archive: vec![NewArchiveCopy {
            address: USER.into(),
            bytes: vec![b'x'; size],
            direction,
            kind: kind.into(),
            at,
        }],
        ..Batch::default()
    }
}

/// Commits `batch`; returns how many copies were kept and how many were left out as full.
fn commit(store: &dyn Store, batch: Batch) -> (usize, usize) {
    let done = store.commit_batch(batch).unwrap();
    (done.archived.len(), done.archive_full.len())
}

fn defaults_keep_everything_and_count_bytes(backend: Backend) {
    let t = store(backend);
    let s = &*t.store;
    assert_eq!(s.archive_options(USER).unwrap(), ArchiveOptions::default());
    assert_eq!(
        s.archive_usage(USER).unwrap(),
        Usage {
            used: 0,
            quota: DEFAULT_ARCHIVE_QUOTA
        }
    );
    assert_eq!(DEFAULT_ARCHIVE_QUOTA, 6 * 1024 * 1024 * 1024);
    for (direction, kind) in [
        (Direction::Sent, "posta-certificata"),
        (Direction::Received, "avvenuta-consegna"),
        (Direction::Received, "anomalia"),
    ] {
        assert_eq!(commit(s, copy(direction, kind, 100, T0)), (1, 0));
    }
    assert_eq!(s.archive_usage(USER).unwrap().used, 300);
    assert_eq!(s.list_archive(USER).unwrap().len(), 3);
}

fn pec_only_and_directions_leave_out_the_rest(backend: Backend) {
    let t = store(backend);
    let s = &*t.store;
    let only_received_pec = ArchiveOptions {
        scope: ArchiveScope::Pec,
        sent: false,
        received: true,
        quota: 10_000,
    };
    s.set_archive_options(USER, &only_received_pec).unwrap();
    // Options outlive a reopening (another node sees them too).
    assert_eq!(t.open().archive_options(USER).unwrap(), only_received_pec);
    assert_eq!(s.archive_usage(USER).unwrap().quota, 10_000);
    assert_eq!(
        commit(s, copy(Direction::Received, "anomalia", 100, T0)),
        (0, 0),
        "ordinary mail (its anomaly envelope) is not PEC"
    );
    assert_eq!(
        commit(s, copy(Direction::Sent, "posta-certificata", 100, T0)),
        (0, 0),
        "sent mail is not kept"
    );
    assert_eq!(
        commit(s, copy(Direction::Received, "posta-certificata", 100, T0)),
        (1, 0)
    );
    assert_eq!(
        commit(s, copy(Direction::Received, "accettazione", 100, T0)),
        (1, 0)
    );
    let kinds: Vec<String> = s
        .list_archive(USER)
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, ["posta-certificata", "accettazione"]);
    assert_eq!(s.archive_usage(USER).unwrap().used, 200);
}

fn a_full_archive_keeps_no_more_and_a_purge_frees_it(backend: Backend) {
    let t = store(backend);
    let s = &*t.store;
    let small = ArchiveOptions {
        quota: 250,
        ..ArchiveOptions::default()
    };
    s.set_archive_options(USER, &small).unwrap();
    assert_eq!(
        commit(s, copy(Direction::Sent, "posta-certificata", 100, T0)),
        (1, 0)
    );
    assert_eq!(
        commit(s, copy(Direction::Sent, "posta-certificata", 150, T0 + 10)),
        (1, 0),
        "exactly the quota fits"
    );
    assert_eq!(
        commit(s, copy(Direction::Sent, "posta-certificata", 1, T0 + 20)),
        (0, 1),
        "one byte more does not"
    );
    assert_eq!(s.archive_usage(USER).unwrap().used, 250);
    // The retention purge takes the first entry's bytes off.
    assert_eq!(s.purge_archive(T0 + 5).unwrap(), 1);
    assert_eq!(s.archive_usage(USER).unwrap().used, 150);
    assert_eq!(
        commit(s, copy(Direction::Sent, "posta-certificata", 100, T0 + 30)),
        (1, 0)
    );
    assert_eq!(t.open().archive_usage(USER).unwrap().used, 250);
}

fn options_need_a_mailbox_and_a_quota(backend: Backend) {
    let t = store(backend);
    let s = &*t.store;
    assert!(matches!(
        s.set_archive_options("nessuno@pec.example.it", &ArchiveOptions::default()),
        Err(Error::NoSuchAccount(_))
    ));
    let zero = ArchiveOptions {
        quota: 0,
        ..ArchiveOptions::default()
    };
    assert!(s.set_archive_options(USER, &zero).is_err());
    assert_eq!(s.archive_options(USER).unwrap(), ArchiveOptions::default());
}

backend_tests!(
    defaults_keep_everything_and_count_bytes,
    pec_only_and_directions_leave_out_the_rest,
    a_full_archive_keeps_no_more_and_a_purge_frees_it,
    options_need_a_mailbox_and_a_quota,
);
