//! `pecd store migrate`: an embedded store copied into PostgreSQL reads the same through
//! every trait, keeps its UIDs, UIDVALIDITY and modseqs, its legal log chain and its
//! sequences, and a target that holds anything is refused.

use pec_store::test_util::{Backend, TestStore, contents, populate, shared_server};
use pec_store::{
    Directory, Error, Ledger, Mailboxes, Maintenance, PgOptions, PgStore, migrate_to_postgres,
};

#[test]
fn a_populated_embedded_store_reads_the_same_from_postgres() {
    let source = TestStore::new(Backend::Sqlite);
    populate(source.store.as_ref());
    let before = contents(source.store.as_ref());
    let anna = "anna@pec.alfa.test";
    let lavoro = source.store.select(anna, "Lavoro").unwrap();
    // The newest folder deleted: only SQLite's AUTOINCREMENT remembers its id.
    source.store.create_folder(anna, "Ultima").unwrap();
    let deleted = source.store.select(anna, "Ultima").unwrap().uidvalidity;
    source.store.delete_folder(anna, "Ultima").unwrap();

    let url = shared_server().database();
    let migrated = migrate_to_postgres(source.dir.path(), &url).unwrap();
    let count = |t: &str| {
        migrated
            .rows
            .iter()
            .find(|(name, _)| name == t)
            .map(|(_, n)| *n)
    };
    assert_eq!(count("accounts"), Some(3));
    assert_eq!(count("legal_log"), Some(2));
    assert!(migrated.blob_bytes > 300 * 1024, "{migrated:?}");

    let pg = PgStore::open(&PgOptions::new(&url)).unwrap();
    assert_eq!(contents(&pg), before);
    let check = pg.check().unwrap();
    assert!(check.is_ok(), "{check:?}");
    assert!(pg.verify_log().unwrap().fault.is_none());

    // Work goes on where it stopped: the next UID and modseq follow, and a new folder gets
    // a UIDVALIDITY no folder ever had (not even the one deleted before the move).
    let delivered = pg
        .deliver(anna, "Lavoro", b"Subject: after\r\n\r\nx\r\n", &[], 0)
        .unwrap();
    assert_eq!(delivered.uid, lavoro.uidnext);
    let after = pg.select(anna, "Lavoro").unwrap();
    assert!(after.highestmodseq > lavoro.highestmodseq);
    assert_eq!(after.uidvalidity, lavoro.uidvalidity);
    pg.create_folder(anna, "Nuova").unwrap();
    let newest = pg.select(anna, "Nuova").unwrap().uidvalidity;
    assert!(newest > deleted, "{newest} vs {deleted}");
    let appended = pg
        .append_log(&[pec_store::LogEntry {
            event: "dopo".into(),
            ..Default::default()
        }])
        .unwrap();
    assert_eq!(appended[0].seq, 3);
    assert!(pg.verify_log().unwrap().fault.is_none());
}

#[test]
fn a_target_that_holds_anything_is_refused_and_left_alone() {
    let source = TestStore::new(Backend::Sqlite);
    populate(source.store.as_ref());
    let url = shared_server().database();
    let pg = PgStore::open(&PgOptions::new(&url)).unwrap();
    pg.add_domain("pec.esistente.test", 1).unwrap();
    let err = migrate_to_postgres(source.dir.path(), &url).unwrap_err();
    assert!(matches!(err, Error::TargetNotEmpty(_)), "{err}");
    assert_eq!(pg.list_domains().unwrap().len(), 1);

    // A second migration into a database filled by the first is refused too.
    let url = shared_server().database();
    migrate_to_postgres(source.dir.path(), &url).unwrap();
    let err = migrate_to_postgres(source.dir.path(), &url).unwrap_err();
    assert!(matches!(err, Error::TargetNotEmpty(_)), "{err}");
}

#[test]
fn a_missing_blob_stops_the_copy_and_nothing_is_committed() {
    let source = TestStore::new(Backend::Sqlite);
    populate(source.store.as_ref());
    source.tamper("DELETE FROM blobs WHERE hash IN (SELECT blob FROM virus_store)");
    let url = shared_server().database();
    let err = migrate_to_postgres(source.dir.path(), &url).unwrap_err();
    assert!(matches!(err, Error::BlobMissing(_)), "{err}");
    let pg = PgStore::open(&PgOptions::new(&url)).unwrap();
    assert!(pg.list_domains().unwrap().is_empty());
}

#[test]
fn a_directory_without_a_store_is_an_error_not_an_empty_copy() {
    let dir = tempfile::tempdir().unwrap();
    let url = shared_server().database();
    let err = migrate_to_postgres(dir.path(), &url).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert!(!dir.path().join("store.db").exists());
}
