//! Mailbox administration on a running lab: `pecd store check` and `pecd backup` of a
//! live store, the quota notice, and receipts filed in `Ricevute`.

use std::time::Duration;

use pec_e2e::{Backend, Lab, mailbox, of_kind, standard, submit, wait_archived, wait_for, wait_in};
use pec_proto::classify::classify;
use pec_store::{ArchiveOptions, Mailboxes, SqliteStore};

const MARIO: &str = "mario.rossi@pec.alfa.test";
const ANNA: &str = "anna.bianchi@pec.beta.test";
const PROTOCOLLO: &str = "protocollo@pec.alfa.test";

fn message(from: &str, to: &str, subject: &str, body: &str) -> String {
    format!("From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\n\r\n{body}\r\n")
}

fn ok(out: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "pecd failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_of_a_live_store_passes_check_and_a_deleted_file_fails_it() {
    let lab = Lab::start(standard(), &[]).await;
    let alfa = lab.node("alfa");
    let (port, ca) = (alfa.submission_port, lab.ca());
    // Larger than the blobs kept inside the database: its envelope and receipts are files.
    let large = "riga di testo per un messaggio grande\r\n".repeat(8_000);
    submit(
        port,
        &ca,
        MARIO,
        &[ANNA],
        &message(MARIO, ANNA, "Primo", &large),
    )
    .expect("submit");
    wait_for(alfa.store.as_ref(), MARIO, 2).await;
    let live = ok(&lab.pecd("alfa", &["store", "check"]));
    assert!(live.contains("store OK"), "{live}");

    // The backup runs while the server keeps accepting submissions.
    let traffic = std::thread::spawn(move || {
        for i in 0..3 {
            let m = message(MARIO, ANNA, &format!("Durante {i}"), "testo");
            submit(port, &ca, MARIO, &[ANNA], &m).expect("submit during the backup");
        }
    });
    let copy_dir = lab.dir.path().join("backup");
    let out = ok(&lab.pecd("alfa", &["backup", &copy_dir.display().to_string()]));
    assert!(out.contains("store copied"), "{out}");
    traffic.join().expect("traffic");

    // The copy is a store: `pecd store check` passes on it and it opens with the mailboxes.
    let config = std::fs::read_to_string(lab.config("alfa"))
        .expect("config")
        .replace("data_dir = \"data-alfa\"", "data_dir = \"backup\"");
    std::fs::write(lab.config("copy"), config).expect("copy config");
    let report = ok(&lab.pecd("copy", &["store", "check"]));
    assert!(report.contains("store OK"), "{report}");
    {
        let copy = SqliteStore::open(&copy_dir).expect("the copy opens");
        assert!(mailbox(&copy, MARIO, "INBOX").len() >= 2);
        assert!(!copy.list_archive(MARIO).expect("archive").is_empty());
    }

    // A message file deleted by hand: the check names it and fails.
    let blob = std::fs::read_dir(copy_dir.join("blobs"))
        .expect("blobs")
        .filter_map(|d| d.ok())
        .filter(|d| d.path().is_dir())
        .flat_map(|d| std::fs::read_dir(d.path()).expect("blob dir"))
        .filter_map(|f| f.ok())
        .map(|f| f.path())
        .next()
        .expect("a blob file");
    let hash = format!(
        "{}{}",
        blob.parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy(),
        blob.file_name().unwrap().to_string_lossy()
    );
    std::fs::remove_file(&blob).expect("delete the blob");
    let out = lab.pecd("copy", &["store", "check"]);
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{report}");
    assert!(report.contains(&format!("missing: {hash}")), "{report}");
    assert!(report.contains("store DAMAGED: 1 missing"), "{report}");
    lab.shutdown().await;
}

/// The subjects of the quota notices among `messages`.
fn notices(messages: &[Vec<u8>]) -> Vec<String> {
    notices_of(messages, "Avviso: casella quasi piena")
}

/// The subjects among `messages` that start with `prefix`.
fn notices_of(messages: &[Vec<u8>], prefix: &str) -> Vec<String> {
    messages
        .iter()
        .map(|m| classify(m))
        .filter_map(|c| c.headers.subject)
        .filter(|s| s.starts_with(prefix))
        .collect()
}

async fn quota_notice_once_when_a_delivery_passes_90_percent(backend: Backend) {
    let lab = Lab::start_on(backend, standard(), &[]).await;
    let (alfa, beta) = (lab.node("alfa"), lab.node("beta"));
    let attachment = "Allegato: riga di testo che occupa spazio nella casella.\r\n".repeat(1000);
    let big = |n: u32| message(MARIO, ANNA, &format!("Pratica {n}"), &attachment);
    submit(alfa.submission_port, &lab.ca(), MARIO, &[ANNA], &big(1)).expect("first");
    wait_for(beta.store.as_ref(), ANNA, 1).await;
    let one = beta.store.usage(ANNA).expect("usage").used;
    // The second envelope of the same size takes the mailbox to about 91 %, and leaves
    // room for the notice and a small message.
    let quota = one * 22 / 10;
    ok(&lab.pecd(
        "beta",
        &["mailbox", "set", ANNA, "--quota", &quota.to_string()],
    ));
    assert!(notices(&mailbox(beta.store.as_ref(), ANNA, "INBOX")).is_empty());

    submit(alfa.submission_port, &lab.ca(), MARIO, &[ANNA], &big(2)).expect("second");
    let inbox = wait_for(beta.store.as_ref(), ANNA, 3).await;
    let found = notices(&inbox);
    assert_eq!(found.len(), 1, "{found:?}");
    let pct: u64 = found[0]
        .trim_start_matches("Avviso: casella quasi piena (")
        .trim_end_matches(" %)")
        .parse()
        .expect("a percentage");
    assert!((90..=100).contains(&pct), "{pct}");
    let notice = inbox.last().expect("the notice is the newest message");
    let c = classify(notice);
    assert_eq!(
        c.headers.from.as_deref(),
        Some("\"Beta PEC (lab)\" <posta-certificata@pec.beta.test>")
    );
    let text = String::from_utf8_lossy(notice);
    assert!(
        text.contains("la casella anna.bianchi@pec.beta.test occupa"),
        "{text}"
    );
    assert!(!text.contains("pkcs7"), "a plain message, not signed");

    // Still past 90 % after one more delivery: no second notice.
    let small = message(MARIO, ANNA, "Breve", "ok");
    submit(alfa.submission_port, &lab.ca(), MARIO, &[ANNA], &small).expect("third");
    let inbox = wait_for(beta.store.as_ref(), ANNA, 4).await;
    assert_eq!(inbox.len(), 4, "two envelopes, the notice, the small one");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        notices(&mailbox(beta.store.as_ref(), ANNA, "INBOX")).len(),
        1
    );
    let usage = beta.store.usage(ANNA).expect("usage");
    assert!(usage.used * 100 >= usage.quota * 90 && usage.used <= usage.quota);
    lab.shutdown().await;
}

async fn archive_quota_notice_then_copies_stop_but_mail_is_delivered(backend: Backend) {
    let lab = Lab::start_on(backend, standard(), &[]).await;
    let (alfa, beta) = (lab.node("alfa"), lab.node("beta"));
    let attachment = "Allegato: riga di testo che occupa spazio nell'archivio.\r\n".repeat(500);
    let big = |n: u32| message(MARIO, ANNA, &format!("Pratica {n}"), &attachment);
    submit(alfa.submission_port, &lab.ca(), MARIO, &[ANNA], &big(1)).expect("first");
    wait_for(beta.store.as_ref(), ANNA, 1).await;
    let first = wait_archived(beta.store.as_ref(), ANNA, "posta-certificata")
        .await
        .expect("the envelope is archived");
    assert_eq!(
        beta.store.archive_usage(ANNA).expect("usage").used,
        first.size
    );
    // Room for two envelopes of this size (about 95 % with two), not for three.
    let quota = first.size * 21 / 10;
    beta.store
        .set_archive_options(
            ANNA,
            &ArchiveOptions {
                quota,
                ..ArchiveOptions::default()
            },
        )
        .expect("options");

    submit(alfa.submission_port, &lab.ca(), MARIO, &[ANNA], &big(2)).expect("second");
    let inbox = wait_for(beta.store.as_ref(), ANNA, 3).await;
    let found = notices_of(&inbox, "Avviso: archivio di sicurezza quasi pieno");
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        notices(&inbox).is_empty(),
        "the mailbox itself is far from full"
    );
    let text = String::from_utf8_lossy(inbox.last().expect("the notice is the newest"));
    assert!(
        text.contains("l'archivio di sicurezza della casella anna.bianchi@pec.beta.test occupa"),
        "{text}"
    );
    assert_eq!(beta.store.list_archive(ANNA).expect("archive").len(), 2);

    // The third envelope is delivered, but the full archive keeps no copy of it.
    submit(alfa.submission_port, &lab.ca(), MARIO, &[ANNA], &big(3)).expect("third");
    let inbox = wait_for(beta.store.as_ref(), ANNA, 4).await;
    assert_eq!(inbox.len(), 4, "three envelopes and the notice");
    assert_eq!(beta.store.list_archive(ANNA).expect("archive").len(), 2);
    let usage = beta.store.archive_usage(ANNA).expect("usage");
    assert!(usage.used <= usage.quota && usage.used * 100 >= usage.quota * 90);
    lab.shutdown().await;
}

async fn receipts_in_ricevute_envelopes_in_inbox(backend: Backend) {
    let lab = Lab::start_on(backend, standard(), &[]).await;
    let (alfa, beta) = (lab.node("alfa"), lab.node("beta"));
    let out = lab.pecd_with_input(
        "alfa",
        &[
            "mailbox",
            "add",
            PROTOCOLLO,
            "--password-stdin",
            "--ricevute",
        ],
        b"secret-protocollo\n",
    );
    ok(&out);

    let m = message(PROTOCOLLO, ANNA, "Protocollo 1", "testo");
    submit(alfa.submission_port, &lab.ca(), PROTOCOLLO, &[ANNA], &m).expect("submit");
    let ricevute = wait_in(alfa.store.as_ref(), PROTOCOLLO, "Ricevute", 2).await;
    assert_eq!(of_kind(&ricevute, "accettazione").len(), 1);
    assert_eq!(of_kind(&ricevute, "avvenuta-consegna").len(), 1);

    // An envelope for the same mailbox goes to INBOX.
    let reply = message(ANNA, PROTOCOLLO, "Risposta", "ricevuto");
    submit(beta.submission_port, &lab.ca(), ANNA, &[PROTOCOLLO], &reply).expect("reply");
    let inbox = wait_for(alfa.store.as_ref(), PROTOCOLLO, 1).await;
    assert_eq!(inbox.len(), 1);
    assert_eq!(of_kind(&inbox, "posta-certificata").len(), 1);
    // Anna's receipts stay in her INBOX (she did not ask for Ricevute).
    let anna = wait_for(beta.store.as_ref(), ANNA, 3).await;
    assert_eq!(of_kind(&anna, "accettazione").len(), 1, "{}", anna.len());

    // Turned off by the administrator: the next receipts land in INBOX.
    let out = ok(&lab.pecd("alfa", &["mailbox", "set", PROTOCOLLO, "--ricevute", "off"]));
    assert!(out.contains("INBOX"), "{out}");
    let m = message(PROTOCOLLO, ANNA, "Protocollo 2", "testo");
    submit(alfa.submission_port, &lab.ca(), PROTOCOLLO, &[ANNA], &m).expect("submit");
    let inbox = wait_for(alfa.store.as_ref(), PROTOCOLLO, 3).await;
    assert_eq!(of_kind(&inbox, "accettazione").len(), 1);
    assert_eq!(of_kind(&inbox, "avvenuta-consegna").len(), 1);
    assert_eq!(
        mailbox(alfa.store.as_ref(), PROTOCOLLO, "Ricevute").len(),
        2
    );
    lab.shutdown().await;
}

pec_e2e::e2e_tests!(
    quota_notice_once_when_a_delivery_passes_90_percent,
    archive_quota_notice_then_copies_stop_but_mail_is_delivered,
    receipts_in_ricevute_envelopes_in_inbox,
);
