//! The failures of spec §2.9: unknown mailbox, full mailbox, unreachable PEC domain,
//! formal errors, and the 12 h / 24 h timers with an injected clock.

use chrono::Duration;
use pec_e2e::{Backend, Lab, of_kind, openssl_verifies, standard, submit, wait_for};

const MARIO: &str = "mario.rossi@pec.alfa.test";
const ANNA: &str = "anna.bianchi@pec.beta.test";

fn msg(to: &str, subject: &str) -> String {
    format!(
        "From: {MARIO}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{subject}@c>\r\n\r\ntesto\r\n"
    )
}

async fn unknown_mailbox_full_mailbox_and_unknown_domain(backend: Backend) {
    let lab = Lab::start_on(backend, standard(), &[("gamma", &["pec.gamma.test"])]).await;
    let (alfa, beta) = (lab.node("alfa"), lab.node("beta"));
    beta.store.set_quota(ANNA, 1000).unwrap();
    let nobody = "nessuno@pec.beta.test";
    let gamma = "utente@pec.gamma.test";
    submit(
        alfa.submission_port,
        &lab.ca(),
        MARIO,
        &[nobody],
        &msg(nobody, "nodest"),
    )
    .unwrap();
    let big = format!("{}{}\r\n", msg(ANNA, "piena"), "x".repeat(3000));
    submit(alfa.submission_port, &lab.ca(), MARIO, &[ANNA], &big).unwrap();
    submit(
        alfa.submission_port,
        &lab.ca(),
        MARIO,
        &[gamma],
        &msg(gamma, "nodominio"),
    )
    .unwrap();

    let inbox = wait_for(alfa.store.as_ref(), MARIO, 6).await;
    assert_eq!(of_kind(&inbox, "accettazione").len(), 3);
    let errors = of_kind(&inbox, "errore-consegna");
    assert_eq!(
        errors.len(),
        3,
        "{:?}",
        inbox
            .iter()
            .map(|m| pec_proto::classify::classify(m).headers.subject)
            .collect::<Vec<_>>()
    );
    for (subject, errore, consegna) in [
        ("nodest", "no-dest", nobody),
        ("piena", "altro", ANNA),
        ("nodominio", "no-dominio", gamma),
    ] {
        let e = errors
            .iter()
            .find(|c| {
                c.headers.subject.as_deref()
                    == Some(&format!("AVVISO DI MANCATA CONSEGNA: {subject}"))
            })
            .unwrap_or_else(|| panic!("no notice for {subject}"));
        let d = e.daticert.as_ref().unwrap();
        assert_eq!(d.errore.as_str(), errore, "{subject}");
        assert_eq!(d.consegna.as_deref(), Some(consegna));
        assert!(d.errore_esteso.as_deref().is_some_and(|x| !x.is_empty()));
    }
    for m in &inbox {
        openssl_verifies(&lab.ca(), m).unwrap();
    }
    // The full mailbox kept nothing and stayed within its quota.
    assert!(beta.store.messages(ANNA, "INBOX").unwrap().is_empty());
    let u = beta.store.usage(ANNA).unwrap();
    assert!(u.used <= u.quota);
    lab.shutdown().await;
}

async fn formal_error_gets_non_accettazione(backend: Backend) {
    let lab = Lab::start_on(backend, standard(), &[]).await;
    let alfa = lab.node("alfa");
    let bad = format!(
        "From: {MARIO}\r\nTo: {ANNA}\r\nBcc: luca.verdi@pec.beta.test\r\nSubject: nascosto\r\n\r\nx\r\n"
    );
    let err = submit(alfa.submission_port, &lab.ca(), MARIO, &[ANNA], &bad).unwrap_err();
    assert!(err.contains("550") && err.contains("Bcc"), "{err}");
    let inbox = wait_for(alfa.store.as_ref(), MARIO, 1).await;
    let n = of_kind(&inbox, "non-accettazione");
    assert_eq!(n.len(), 1);
    assert!(
        n[0].headers
            .subject
            .as_deref()
            .unwrap()
            .starts_with("AVVISO DI NON ACCETTAZIONE: nascosto")
    );
    assert!(n[0].postacert.is_none());
    openssl_verifies(&lab.ca(), &inbox[0]).unwrap();
    // Nothing was queued for the recipient.
    assert!(alfa.store.list_queue().unwrap().is_empty());
    lab.shutdown().await;
}

async fn twelve_and_twenty_four_hour_notices(backend: Backend) {
    let mut lab = Lab::start_on(backend, standard(), &[]).await;
    // Beta is down: nothing will come back.
    lab.stop("beta").await;
    let alfa = lab.node("alfa");
    submit(
        alfa.submission_port,
        &lab.ca(),
        MARIO,
        &[ANNA],
        &msg(ANNA, "silenzio"),
    )
    .unwrap();
    let inbox = wait_for(alfa.store.as_ref(), MARIO, 1).await;
    assert_eq!(of_kind(&inbox, "accettazione").len(), 1);

    lab.advance(Duration::hours(11));
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert!(
        of_kind(
            &pec_e2e::mailbox(alfa.store.as_ref(), MARIO, "INBOX"),
            "preavviso-errore-consegna"
        )
        .is_empty(),
        "not before 12 h"
    );

    lab.advance(Duration::hours(1) + Duration::minutes(1));
    let inbox = wait_for(alfa.store.as_ref(), MARIO, 2).await;
    let first = of_kind(&inbox, "preavviso-errore-consegna");
    assert_eq!(first.len(), 1, "the 12 h notice");
    let subject = first[0].headers.subject.clone().unwrap();
    assert_eq!(
        subject,
        "AVVISO DI MANCATA CONSEGNA PER SUP. TEMPO MASSIMO: silenzio"
    );
    assert_eq!(
        first[0].daticert.as_ref().unwrap().consegna.as_deref(),
        Some(ANNA)
    );

    lab.advance(Duration::hours(12));
    let inbox = wait_for(alfa.store.as_ref(), MARIO, 3).await;
    let notices = of_kind(&inbox, "preavviso-errore-consegna");
    assert_eq!(notices.len(), 2, "the 24 h notice");
    for m in &inbox {
        openssl_verifies(&lab.ca(), m).unwrap();
        assert!(
            pec_proto::classify::classify(m).postacert.is_none(),
            "never the original"
        );
    }
    // Tracking ended: a further day brings nothing more.
    lab.advance(Duration::hours(24));
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(
        pec_e2e::mailbox(alfa.store.as_ref(), MARIO, "INBOX").len(),
        3
    );
    lab.shutdown().await;
}

pec_e2e::e2e_tests!(
    unknown_mailbox_full_mailbox_and_unknown_domain,
    formal_error_gets_non_accettazione,
    twelve_and_twenty_four_hour_notices,
);
