//! The legal message log: hash chain, tamper evidence against direct edits
//! of the database file, purge with checkpoint, search and exports.

use pec_store::test_util::{Backend, TestStore};
use pec_store::{
    CSV_LIST_SEPARATOR, Error, LOG_GENESIS, LogEntry, LogFault, LogQuery, LogRecord, Store,
    backend_tests, write_log_csv, write_log_jsonl,
};

/// A log entry at `at` with a distinguishable subject.
fn entry(n: i64, at: i64) -> LogEntry {
    LogEntry {
        at,
        at_local: format!("2024-03-01T10:00:{:02}+01:00", n % 60),
        event: "accettazione".into(),
        msgid: format!("opec.{n}@pec.example.it"),
        original_msgid: format!("<client.{n}@example.it>"),
        sender: "mario.rossi@pec.example.it".into(),
        recipients: vec![
            "Luigi.Bianchi@pec.other.it".into(),
            "anna@pec.example.it".into(),
        ],
        subject: format!("subject {n}"),
        generated_ids: vec![format!("<ric.{n}@pec.example.it>")],
        gestore: "Example PEC S.p.A.".into(),
        detail: String::new(),
    }
}

/// A store whose log holds records 1..=`n`, `at` = 100 * seq.
fn store_with_log(backend: Backend, n: i64) -> TestStore {
    let t = TestStore::new(backend);
    let entries: Vec<_> = (1..=n).map(|i| entry(i, 100 * i)).collect();
    t.store.append_log(&entries).unwrap();
    t
}

/// The fault `verify_log` reports.
fn fault(store: &dyn Store) -> LogFault {
    let v = store.verify_log().unwrap();
    assert!(!v.is_ok());
    v.fault.unwrap()
}

fn untouched_log_verifies_and_chain_continues_after_reopen(backend: Backend) {
    let t = store_with_log(backend, 3);
    let store = t.store.as_ref();
    let more = store.append_log(&[entry(4, 400), entry(5, 500)]).unwrap();
    assert_eq!(more.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![4, 5]);
    let v = store.verify_log().unwrap();
    assert!(v.is_ok(), "{v:?}");
    assert_eq!(v.checked, 5);
    assert_eq!(v.checkpoint.seq, 0);
    assert_eq!(v.checkpoint.hash, LOG_GENESIS);
    assert_eq!(v.head.seq, 5);
    assert_eq!(v.head.hash, more[1].hash);
    let store = t.open();
    let r = store.append_log(&[entry(6, 600)]).unwrap();
    assert_eq!(r[0].seq, 6);
    let v = store.verify_log().unwrap();
    assert!(v.is_ok(), "{v:?}");
    assert_eq!(v.checked, 6);
}

fn empty_log_verifies(backend: Backend) {
    let t = TestStore::new(backend);
    let v = t.store.verify_log().unwrap();
    assert!(v.is_ok());
    assert_eq!((v.checked, v.head.seq), (0, 0));
}

fn edited_subject_is_detected(backend: Backend) {
    let t = store_with_log(backend, 5);
    let store = t.store.as_ref();
    t.tamper("UPDATE legal_log SET subject = 'innocuous' WHERE seq = 3");
    let f = fault(store);
    assert_eq!(f, LogFault::Altered { seq: 3 });
    assert_eq!(f.seq(), 3);
}

fn edited_list_or_time_is_detected(backend: Backend) {
    let t = store_with_log(backend, 5);
    let store = t.store.as_ref();
    t.tamper(match backend {
        Backend::Sqlite => {
            "UPDATE legal_log SET recipients = '[\"someone@else.it\"]' WHERE seq = 4"
        }
        Backend::Postgres => {
            "UPDATE legal_log SET recipients = ARRAY['someone@else.it'] WHERE seq = 4"
        }
    });
    assert_eq!(fault(store), LogFault::Altered { seq: 4 });

    let t = store_with_log(backend, 5);
    let store = t.store.as_ref();
    t.tamper("UPDATE legal_log SET at = at + 1 WHERE seq = 2");
    assert_eq!(fault(store), LogFault::Altered { seq: 2 });

    // A value that no longer even decodes is an alteration, not an error (PostgreSQL's
    // typed columns take no such value).
    if backend == Backend::Sqlite {
        let t = store_with_log(backend, 5);
        t.tamper("UPDATE legal_log SET generated_ids = 'x' WHERE seq = 1");
        assert_eq!(fault(t.store.as_ref()), LogFault::Altered { seq: 1 });
    }
}

fn edited_hash_is_detected(backend: Backend) {
    let t = store_with_log(backend, 5);
    let store = t.store.as_ref();
    t.tamper(
        "UPDATE legal_log SET hash = (SELECT hash FROM legal_log WHERE seq = 1) WHERE seq = 2",
    );
    assert_eq!(fault(store).seq(), 2);
}

fn deleted_row_is_detected(backend: Backend) {
    let t = store_with_log(backend, 5);
    let store = t.store.as_ref();
    t.tamper("DELETE FROM legal_log WHERE seq = 3");
    let f = fault(store);
    assert_eq!(
        f,
        LogFault::OutOfSequence {
            expected: 3,
            found: 4
        }
    );
    assert_eq!(f.seq(), 3);
}

fn deleted_first_and_last_rows_are_detected(backend: Backend) {
    let t = store_with_log(backend, 5);
    let store = t.store.as_ref();
    t.tamper("DELETE FROM legal_log WHERE seq = 1");
    assert_eq!(fault(store).seq(), 1);

    let t = store_with_log(backend, 5);
    let store = t.store.as_ref();
    t.tamper("DELETE FROM legal_log WHERE seq >= 4");
    let f = fault(store);
    assert_eq!(f, LogFault::Truncated { last: 3, head: 5 });
    assert_eq!(f.seq(), 4);
}

fn swapped_rows_are_detected(backend: Backend) {
    let t = store_with_log(backend, 5);
    let store = t.store.as_ref();
    t.tamper(
        "UPDATE legal_log SET seq = -1 WHERE seq = 2;
         UPDATE legal_log SET seq = 2 WHERE seq = 4;
         UPDATE legal_log SET seq = 4 WHERE seq = -1;",
    );
    assert_eq!(fault(store), LogFault::Altered { seq: 2 });
}

fn inserted_rows_are_detected(backend: Backend) {
    // A copy of record 3 slipped in after the head.
    let t = store_with_log(backend, 5);
    let store = t.store.as_ref();
    t.tamper(
        "INSERT INTO legal_log SELECT 6, at, at_local, event, msgid, original_msgid, sender,
             recipients, subject, generated_ids, gestore, detail, hash
         FROM legal_log WHERE seq = 3",
    );
    assert_eq!(fault(store), LogFault::Altered { seq: 6 });

    // One slipped in before the first record.
    let t = store_with_log(backend, 5);
    let store = t.store.as_ref();
    t.tamper(
        "INSERT INTO legal_log SELECT 0, at, at_local, event, msgid, original_msgid, sender,
             recipients, subject, generated_ids, gestore, detail, hash
         FROM legal_log WHERE seq = 1",
    );
    assert_eq!(
        fault(store),
        LogFault::OutOfSequence {
            expected: 1,
            found: 0
        }
    );

    // One in the middle, the later records renumbered to make room.
    let t = store_with_log(backend, 5);
    let store = t.store.as_ref();
    t.tamper(
        "UPDATE legal_log SET seq = seq + 10 WHERE seq >= 3;
         UPDATE legal_log SET seq = seq - 9 WHERE seq >= 13;
         INSERT INTO legal_log SELECT 3, at, at_local, event, msgid, original_msgid, sender,
             recipients, 'forged', generated_ids, gestore, detail, hash
         FROM legal_log WHERE seq = 2;",
    );
    assert_eq!(fault(store), LogFault::Altered { seq: 3 });
}

fn edited_head_is_detected(backend: Backend) {
    let t = store_with_log(backend, 5);
    let store = t.store.as_ref();
    t.tamper(&format!(
        "UPDATE legal_log_chain SET head_hash = '{LOG_GENESIS}'"
    ));
    assert_eq!(fault(store), LogFault::HeadMismatch { seq: 5 });
}

fn purge_keeps_the_rest_verifiable(backend: Backend) {
    let t = store_with_log(backend, 10);
    let store = t.store.as_ref();
    assert_eq!(store.purge_log(50).unwrap(), 0);
    let before = store.verify_log().unwrap();
    let purged_hash = store.search_log(&LogQuery::default()).unwrap()[4]
        .hash
        .clone();

    // Records 1..=5 have at < 550.
    assert_eq!(store.purge_log(550).unwrap(), 5);
    let v = store.verify_log().unwrap();
    assert!(v.is_ok(), "{v:?}");
    assert_eq!(
        (v.checkpoint.seq, v.checkpoint.hash.as_str()),
        (5, purged_hash.as_str())
    );
    assert_eq!(v.checked, 5);
    assert_eq!(v.head, before.head);
    let left: Vec<u64> = store
        .search_log(&LogQuery::default())
        .unwrap()
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(left, vec![6, 7, 8, 9, 10]);

    // Appending and purging again keep working across a reopen.
    let store = t.open();
    assert_eq!(store.append_log(&[entry(11, 1100)]).unwrap()[0].seq, 11);
    assert_eq!(store.purge_log(10_000).unwrap(), 6);
    let v = store.verify_log().unwrap();
    assert!(v.is_ok(), "{v:?}");
    assert_eq!((v.checked, v.checkpoint.seq, v.head.seq), (0, 11, 11));
    assert_eq!(store.append_log(&[entry(12, 1200)]).unwrap()[0].seq, 12);
    assert!(store.verify_log().unwrap().is_ok());
}

fn tampering_after_purge_is_detected(backend: Backend) {
    let t = store_with_log(backend, 10);
    let store = t.store.as_ref();
    store.purge_log(550).unwrap();
    t.tamper("DELETE FROM legal_log WHERE seq = 6");
    assert_eq!(
        fault(store),
        LogFault::OutOfSequence {
            expected: 6,
            found: 7
        }
    );
}

fn purge_refuses_to_remove_tampered_records(backend: Backend) {
    let t = store_with_log(backend, 10);
    let store = t.store.as_ref();
    t.tamper("UPDATE legal_log SET subject = 'x' WHERE seq = 2");
    assert!(matches!(store.purge_log(550), Err(Error::Corrupt(_))));
    assert_eq!(store.search_log(&LogQuery::default()).unwrap().len(), 10);
    assert_eq!(fault(store), LogFault::Altered { seq: 2 });
}

/// Sequence numbers of the records a query returns.
fn seqs(store: &dyn Store, q: LogQuery) -> Vec<u64> {
    store
        .search_log(&q)
        .unwrap()
        .iter()
        .map(|r| r.seq)
        .collect()
}

fn search_by_msgid_address_and_dates(backend: Backend) {
    let t = store_with_log(backend, 6);
    let store = t.store.as_ref();
    let mut other = entry(7, 700);
    other.sender = "Paolo@Ordinary.it".into();
    other.recipients = vec!["anna@pec.example.it".into()];
    store.append_log(&[other]).unwrap();

    let by_msgid = |m: &str| LogQuery {
        msgid: Some(m.into()),
        ..LogQuery::default()
    };
    assert_eq!(seqs(store, by_msgid("opec.2@pec.example.it")), vec![2]);
    assert_eq!(seqs(store, by_msgid("<client.3@example.it>")), vec![3]);
    assert_eq!(
        seqs(store, by_msgid("opec.99@pec.example.it")),
        Vec::<u64>::new()
    );

    let by_addr = |a: &str| LogQuery {
        address: Some(a.into()),
        ..LogQuery::default()
    };
    // Recipient, stored mixed-case, found by any case.
    assert_eq!(
        seqs(store, by_addr("luigi.bianchi@PEC.OTHER.IT")),
        vec![1, 2, 3, 4, 5, 6]
    );
    // Sender.
    assert_eq!(seqs(store, by_addr("paolo@ordinary.it")), vec![7]);
    assert_eq!(seqs(store, by_addr("anna@pec.example.it")).len(), 7);
    // Not a substring match.
    assert!(seqs(store, by_addr("bianchi@pec.other.it")).is_empty());

    let range = LogQuery {
        from: Some(200),
        to: Some(500),
        ..LogQuery::default()
    };
    assert_eq!(seqs(store, range), vec![2, 3, 4]);
    let combined = LogQuery {
        address: Some("anna@pec.example.it".into()),
        from: Some(600),
        ..LogQuery::default()
    };
    assert_eq!(seqs(store, combined), vec![6, 7]);
}

/// A record whose subject and detail need every kind of CSV quoting.
fn awkward_store() -> (TestStore, Vec<LogRecord>) {
    let t = store_with_log(Backend::Sqlite, 2);
    let store = t.store.as_ref();
    let mut e = entry(3, 300);
    e.subject = "Fattura n. 1, \"urgente\"\nseconda riga".into();
    e.detail = "550 5.1.1 user unknown; retry\r\nlater".into();
    e.recipients.push("terzo@pec.example.it".into());
    store.append_log(&[e]).unwrap();
    let records = store.search_log(&LogQuery::default()).unwrap();
    (t, records)
}

#[test]
fn jsonl_export_parses_back_identically() {
    let (_store, records) = awkward_store();
    let mut out = Vec::new();
    assert_eq!(write_log_jsonl(&records, &mut out).unwrap(), 3);
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    let parsed: Vec<LogRecord> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(parsed, records);
    let v: serde_json::Value = serde_json::from_str(lines[2]).unwrap();
    assert_eq!(v["seq"], 3);
    assert_eq!(v["recipients"].as_array().unwrap().len(), 3);
    assert_eq!(v["subject"], "Fattura n. 1, \"urgente\"\nseconda riga");
}

#[test]
fn csv_export_parses_back_with_a_real_csv_reader() {
    let (_store, records) = awkward_store();
    let mut out = Vec::new();
    assert_eq!(write_log_csv(&records, &mut out).unwrap(), 3);
    let mut reader = csv::Reader::from_reader(out.as_slice());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    assert_eq!(header[0], "seq");
    assert_eq!(header.len(), 13);
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 3);
    for (row, rec) in rows.iter().zip(&records) {
        assert_eq!(row.len(), 13);
        assert_eq!(row[col("seq")], rec.seq.to_string());
        assert_eq!(row[col("at")], rec.entry.at.to_string());
        assert_eq!(row[col("subject")], rec.entry.subject);
        assert_eq!(row[col("detail")], rec.entry.detail);
        assert_eq!(row[col("msgid")], rec.entry.msgid);
        assert_eq!(row[col("hash")], rec.hash);
        let recipients: Vec<&str> = row[col("recipients")].split(CSV_LIST_SEPARATOR).collect();
        assert_eq!(recipients, rec.entry.recipients);
        assert_eq!(
            row[col("generated_ids")]
                .split(CSV_LIST_SEPARATOR)
                .collect::<Vec<_>>(),
            rec.entry.generated_ids
        );
    }
    assert_eq!(
        &rows[2][col("subject")],
        "Fattura n. 1, \"urgente\"\nseconda riga"
    );
}

backend_tests!(
    untouched_log_verifies_and_chain_continues_after_reopen,
    empty_log_verifies,
    edited_subject_is_detected,
    edited_list_or_time_is_detected,
    edited_hash_is_detected,
    deleted_row_is_detected,
    deleted_first_and_last_rows_are_detected,
    swapped_rows_are_detected,
    inserted_rows_are_detected,
    edited_head_is_detected,
    purge_keeps_the_rest_verifiable,
    tampering_after_purge_is_detected,
    purge_refuses_to_remove_tampered_records,
    search_by_msgid_address_and_dates,
);
