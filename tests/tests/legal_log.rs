//! The legal message log after real traffic: `pecd log verify` passes on the untouched
//! log and fails on one edited by hand (with Python's sqlite3 or a PostgreSQL client,
//! outside our code);
//! search and export; purge after 30 months keeps the rest verifiable.

use pec_e2e::{Backend, Lab, standard, submit, wait_for};

const MARIO: &str = "mario.rossi@pec.alfa.test";
const ANNA: &str = "anna.bianchi@pec.beta.test";

fn sqlite(db: &std::path::Path, sql: &str) {
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg("import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.executescript(sys.argv[2]); c.commit()")
        .arg(db)
        .arg(sql)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn log_verify_search_export_and_tampering(backend: Backend) {
    let mut lab = Lab::start_on(backend, standard(), &[]).await;
    let alfa = lab.node("alfa");
    let msg = format!("From: {MARIO}\r\nTo: {ANNA}\r\nSubject: Registro, \"prova\"\r\n\r\nx\r\n");
    submit(alfa.submission_port, &lab.ca(), MARIO, &[ANNA], &msg).unwrap();
    wait_for(alfa.store.as_ref(), MARIO, 2).await;

    let out = lab.pecd("alfa", &["log", "verify"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("log intact"));

    let out = lab.pecd(
        "alfa",
        &["log", "search", "--address", "ANNA.BIANCHI@pec.beta.test"],
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("accettazione") && text.contains("ricezione avvenuta-consegna"),
        "{text}"
    );
    let id = alfa.store.search_log(&Default::default()).unwrap()[0]
        .entry
        .msgid
        .clone();
    let out = lab.pecd(
        "alfa",
        &["log", "search", "--msgid", &id, "--format", "jsonl"],
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 2, "{text}");
    assert!(
        lines.iter().all(|l| l.starts_with('{') && l.contains(&id)),
        "{text}"
    );

    let csv = lab.dir.path().join("log.csv");
    let out = lab.pecd(
        "alfa",
        &[
            "log",
            "export",
            "--format",
            "csv",
            "--output",
            csv.to_str().unwrap(),
        ],
    );
    assert!(out.status.success());
    let rows = std::process::Command::new("python3")
        .arg("-c")
        .arg("import csv,sys; r=list(csv.DictReader(open(sys.argv[1]))); print(len(r)); print(r[0]['subject'])")
        .arg(&csv)
        .output()
        .unwrap();
    let rows = String::from_utf8_lossy(&rows.stdout).into_owned();
    assert!(rows.lines().nth(1) == Some("Registro, \"prova\""), "{rows}");

    // Edited by hand: the verification fails.
    lab.stop("alfa").await;
    lab.stop("beta").await;
    let edit =
        "UPDATE legal_log SET subject = 'altro' WHERE seq = (SELECT MIN(seq) FROM legal_log);";
    match &lab.node("alfa").store_url {
        None => sqlite(&lab.dir.path().join("data-alfa/store.db"), edit),
        Some(url) => pec_store::test_util::sql(url, edit),
    }
    let out = lab.pecd("alfa", &["log", "verify"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("LOG ALTERED"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    lab.shutdown().await;
}

async fn records_older_than_30_months_are_purged(backend: Backend) {
    let lab = Lab::start_on(backend, standard(), &[]).await;
    let alfa = lab.node("alfa");
    let msg = format!("From: {MARIO}\r\nTo: {ANNA}\r\nSubject: vecchio\r\n\r\nx\r\n");
    submit(alfa.submission_port, &lab.ca(), MARIO, &[ANNA], &msg).unwrap();
    wait_for(alfa.store.as_ref(), MARIO, 2).await;
    let before = alfa.store.search_log(&Default::default()).unwrap().len();
    assert!(before >= 2);
    assert!(!alfa.store.list_archive(MARIO).unwrap().is_empty());

    lab.advance(chrono::Duration::days(31 * 30));
    // The worker purges the log, then the archive, in two steps: wait for both.
    let start = std::time::Instant::now();
    let purged = || {
        (
            alfa.store
                .search_log(&Default::default())
                .unwrap()
                .is_empty(),
            alfa.store.list_archive(MARIO).unwrap().is_empty(),
        )
    };
    while purged() != (true, true) {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "not purged (log, archive): {:?}",
            purged()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        alfa.store.verify_log().unwrap().fault.is_none(),
        "still verifiable"
    );
    lab.shutdown().await;
}

pec_e2e::e2e_tests!(
    log_verify_search_export_and_tampering,
    records_older_than_30_months_are_purged,
);
