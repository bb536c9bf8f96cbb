//! Viruses at the access and incoming points (a real clamd with an offline test
//! signature), and ordinary mail: refused by default, an anomaly envelope when opted in.

use std::time::Duration;

use pec_e2e::{
    Backend, EICAR, Lab, NodeSpec, mailbox, of_kind, openssl_verifies, send_to_mx, standard,
    start_clamd, submit, trace_before, wait_archived, wait_for,
};
use pec_gestore::antivirus::{Clamd, Scanner, Verdict};
use pec_proto::classify::classify;

const MARIO: &str = "mario.rossi@pec.alfa.test";
const ANNA: &str = "anna.bianchi@pec.beta.test";
const PROTOCOLLO: &str = "ufficio.protocollo@pec.comune.beta.test";

fn infected(to: &str, subject: &str) -> String {
    format!("From: {MARIO}\r\nTo: {to}\r\nSubject: {subject}\r\n\r\n{EICAR}\r\n")
}

#[tokio::test]
async fn clamd_scanner_finds_the_test_signature() {
    let clamd = start_clamd();
    let scanner = Clamd {
        address: clamd.address.clone(),
        timeout: Duration::from_secs(30),
    };
    assert_eq!(
        scanner.scan(b"Subject: x\r\n\r\nniente\r\n").await.unwrap(),
        Verdict::Clean
    );
    // Across INSTREAM chunk boundaries.
    let mut big = vec![b'a'; 64 * 1024 - 10];
    big.extend_from_slice(EICAR.as_bytes());
    match scanner.scan(&big).await.unwrap() {
        Verdict::Infected(name) => assert!(name.starts_with("Eicar-Test-Signature"), "{name}"),
        Verdict::Clean => panic!("EICAR not found"),
    }
    drop(clamd);
    assert!(
        scanner.scan(b"x").await.is_err(),
        "no verdict is never 'clean'"
    );
}

async fn virus_at_submission_and_at_the_recipient_gestore(backend: Backend) {
    let clamd = start_clamd();
    let mut specs = standard();
    // Only beta scans: alfa lets the virus through, beta catches it.
    specs[1].extra = format!("[antivirus]\nclamd = \"{}\"\n", clamd.address);
    let lab = Lab::start_on(backend, specs, &[]).await;
    let (alfa, beta) = (lab.node("alfa"), lab.node("beta"));
    submit(
        alfa.submission_port,
        &lab.ca(),
        MARIO,
        &[ANNA],
        &infected(ANNA, "allegato"),
    )
    .unwrap();

    let inbox = wait_for(alfa.store.as_ref(), MARIO, 2).await;
    let notice = of_kind(&inbox, "errore-consegna");
    assert_eq!(notice.len(), 1, "mancata consegna per virus");
    assert_eq!(
        notice[0].headers.verifica_sicurezza.as_deref(),
        Some("errore")
    );
    assert!(
        notice[0]
            .headers
            .subject
            .as_deref()
            .unwrap()
            .starts_with("AVVISO DI MANCATA CONSEGNA PER VIRUS: allegato")
    );
    let d = notice[0].daticert.as_ref().unwrap();
    assert_eq!(d.errore.as_str(), "virus");
    assert_eq!(d.consegna.as_deref(), Some(ANNA));
    assert!(notice[0].postacert.is_none());
    for m in &inbox {
        openssl_verifies(&lab.ca(), m).unwrap();
    }
    // Beta delivered nothing, kept the envelope in its virus store, and sent the
    // rilevazione virus to alfa's service mailbox.
    assert!(mailbox(beta.store.as_ref(), ANNA, "INBOX").is_empty());
    let v = beta.store.list_virus().unwrap();
    assert_eq!(v.len(), 1);
    assert!(v[0].virus.starts_with("Eicar-Test-Signature"));
    let rilevazione = wait_archived(
        alfa.store.as_ref(),
        "ricevute@pec.alfa.test",
        "rilevazione-virus",
    )
    .await
    .expect("rilevazione virus received");
    let r = classify(&alfa.store.read_archive(rilevazione.id).unwrap());
    assert_eq!(
        r.headers.mittente.as_deref(),
        Some(format!("<{MARIO}>").as_str())
    );
    assert!(
        r.headers
            .subject
            .unwrap()
            .starts_with("PROBLEMA DI SICUREZZA: ")
    );
    lab.shutdown().await;
}

async fn virus_at_the_access_point(backend: Backend) {
    let clamd = start_clamd();
    let mut specs = standard();
    specs[0].extra = format!("[antivirus]\nclamd = \"{}\"\n", clamd.address);
    let lab = Lab::start_on(backend, specs, &[]).await;
    let alfa = lab.node("alfa");
    let err = submit(
        alfa.submission_port,
        &lab.ca(),
        MARIO,
        &[ANNA],
        &infected(ANNA, "virus"),
    )
    .unwrap_err();
    assert!(err.contains("550"), "{err}");
    let inbox = wait_for(alfa.store.as_ref(), MARIO, 1).await;
    let n = of_kind(&inbox, "non-accettazione");
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].headers.verifica_sicurezza.as_deref(), Some("errore"));
    assert!(
        n[0].headers
            .subject
            .as_deref()
            .unwrap()
            .starts_with("AVVISO DI NON ACCETTAZIONE PER VIRUS: virus")
    );
    assert!(n[0].postacert.is_none());
    let v = alfa.store.list_virus().unwrap();
    assert_eq!(v.len(), 1, "kept in the virus store");
    assert!(
        alfa.store
            .read_blob(&v[0].hash)
            .unwrap()
            .windows(EICAR.len())
            .any(|w| w == EICAR.as_bytes())
    );
    assert!(alfa.store.list_queue().unwrap().is_empty(), "nothing sent");
    lab.shutdown().await;
}

async fn ordinary_mail_is_refused_unless_opted_in(backend: Backend) {
    let clamd = start_clamd();
    let specs = vec![
        standard().remove(0),
        NodeSpec {
            extra: format!(
                "[policy]\naccept_ordinary = [\"pec.comune.beta.test\"]\n\n[antivirus]\nclamd = \"{}\"\n",
                clamd.address
            ),
            ..standard().remove(1)
        },
    ];
    let lab = Lab::start_on(backend, specs, &[]).await;
    let beta = lab.node("beta");
    let ordinary = |to: &str| {
        format!(
            "From: Paolo <paolo@posta.ordinaria.test>\r\nTo: {to}\r\nSubject: Ciao\r\nMessage-ID: <o1@posta.ordinaria.test>\r\n\r\nposta normale\r\n"
        )
    };

    let err = send_to_mx(
        beta.mx_port,
        "paolo@posta.ordinaria.test",
        &[ANNA],
        ordinary(ANNA).as_bytes(),
    )
    .unwrap_err();
    assert!(
        err.contains("550") && err.contains("solo messaggi di posta elettronica certificata"),
        "{err}"
    );
    assert!(mailbox(beta.store.as_ref(), ANNA, "INBOX").is_empty());

    send_to_mx(
        beta.mx_port,
        "paolo@posta.ordinaria.test",
        &[PROTOCOLLO],
        ordinary(PROTOCOLLO).as_bytes(),
    )
    .unwrap();
    let got = wait_for(beta.store.as_ref(), PROTOCOLLO, 1).await;
    let c = classify(&got[0]);
    assert_eq!(c.kind.as_str(), "anomalia");
    assert_eq!(
        c.headers.subject.as_deref(),
        Some("ANOMALIA MESSAGGIO: Ciao")
    );
    assert_eq!(
        c.headers.message_id.as_deref(),
        Some("<o1@posta.ordinaria.test>"),
        "keeps the Message-ID"
    );
    assert!(
        c.headers
            .from
            .as_deref()
            .unwrap()
            .contains("Per conto di: paolo@posta.ordinaria.test")
    );
    assert!(c.daticert.is_none());
    // The whole message as received: the MX's Received line in front of it.
    let wrapped = c.postacert.as_deref().expect("the received message");
    assert_eq!(
        trace_before(wrapped, ordinary(PROTOCOLLO).as_bytes()).unwrap(),
        ["Received"]
    );
    openssl_verifies(&lab.ca(), &got[0]).unwrap();
    // No receipt of any kind for ordinary mail.
    assert!(beta.store.list_queue().unwrap().is_empty());

    // Infected ordinary mail is not delivered even where ordinary mail is accepted.
    let bad = format!(
        "From: x@posta.ordinaria.test\r\nTo: {PROTOCOLLO}\r\nSubject: v\r\n\r\n{EICAR}\r\n"
    );
    let err = send_to_mx(
        beta.mx_port,
        "x@posta.ordinaria.test",
        &[PROTOCOLLO],
        bad.as_bytes(),
    )
    .unwrap_err();
    assert!(err.contains("554"), "{err}");
    assert_eq!(mailbox(beta.store.as_ref(), PROTOCOLLO, "INBOX").len(), 1);
    lab.shutdown().await;
}

pec_e2e::e2e_tests!(
    virus_at_submission_and_at_the_recipient_gestore,
    virus_at_the_access_point,
    ordinary_mail_is_refused_unless_opted_in,
);
