//! The flows of spec §2.5–§2.9 across two gestori, driven by Python's smtplib; every
//! receipt checked for headers, daticert and an `openssl smime -verify` with the lab CA.

use pec_e2e::{
    Backend, DELIVERED_FROM_MX, Lab, mailbox, of_kind, openssl_verifies, send_to_mx, standard,
    submit, trace_before, wait_for, wait_for_kind,
};
use pec_proto::classify::classify;

const MARIO: &str = "mario.rossi@pec.alfa.test";
const ANNA: &str = "anna.bianchi@pec.beta.test";
const LUCA: &str = "luca.verdi@pec.beta.test";
const PROTOCOLLO: &str = "ufficio.protocollo@pec.comune.beta.test";

fn message(to: &[&str], cc: &[&str], subject: &str, extra: &str) -> String {
    let cc = if cc.is_empty() {
        String::new()
    } else {
        format!("Cc: {}\r\n", cc.join(", "))
    };
    format!(
        "From: Mario Rossi <{MARIO}>\r\nTo: {}\r\n{cc}Subject: {subject}\r\nMessage-ID: <{}@client.test>\r\n{extra}\r\nGentile ufficio,\r\nin allegato.\r\n",
        to.join(", "),
        subject.replace(' ', "-")
    )
}

async fn pec_to_pec_across_gestori_to_and_cc(backend: Backend) {
    let lab = Lab::start_on(backend, standard(), &[]).await;
    let (alfa, beta) = (lab.node("alfa"), lab.node("beta"));
    let msg = message(&[ANNA, PROTOCOLLO], &[LUCA], "Fattura 12/2025", "");
    submit(
        alfa.submission_port,
        &lab.ca(),
        MARIO,
        &[ANNA, PROTOCOLLO, LUCA],
        &msg,
    )
    .expect("submitted");

    // The sender: acceptance + one delivery receipt per recipient.
    let inbox = wait_for(alfa.store.as_ref(), MARIO, 4).await;
    let acc = of_kind(&inbox, "accettazione");
    assert_eq!(acc.len(), 1, "one acceptance receipt");
    let consegne = of_kind(&inbox, "avvenuta-consegna");
    assert_eq!(consegne.len(), 3, "one delivery receipt per recipient");
    for m in &inbox {
        openssl_verifies(&lab.ca(), m).expect("openssl accepts every receipt");
    }
    let id = acc[0].daticert.as_ref().unwrap().identificativo.clone();
    for c in &consegne {
        let d = c.daticert.as_ref().unwrap();
        assert_eq!(d.identificativo, id);
        assert_eq!(d.gestore_emittente, "Beta PEC (lab)");
        assert_eq!(
            c.headers.from.as_deref(),
            Some("posta-certificata@pec.beta.test")
        );
        assert_eq!(c.headers.to.as_deref(), Some(MARIO));
        assert!(
            c.headers
                .subject
                .as_deref()
                .unwrap()
                .starts_with("CONSEGNA: Fattura 12/2025")
        );
        let expected = if d.consegna.as_deref() == Some(LUCA) {
            "sintetica"
        } else {
            "completa"
        };
        assert_eq!(
            c.consegna_variant.unwrap().as_str(),
            expected,
            "{:?}",
            d.consegna
        );
    }

    // Each recipient: the envelope, byte-identical to what alfa sent.
    let sent = alfa.store.list_archive(MARIO).unwrap();
    let envelope_entry = sent
        .iter()
        .find(|e| e.kind == "posta-certificata")
        .expect("archived envelope");
    let envelope = alfa.store.read_archive(envelope_entry.id).unwrap();
    for r in [ANNA, LUCA, PROTOCOLLO] {
        let got = wait_for(beta.store.as_ref(), r, 1).await;
        assert_eq!(got.len(), 1, "{r}");
        assert_eq!(
            trace_before(&got[0], &envelope).expect("the envelope unchanged"),
            DELIVERED_FROM_MX,
            "{r}: behind the trace fields"
        );
        let c = classify(&got[0]);
        assert_eq!(c.kind.as_str(), "posta-certificata");
        assert!(
            c.headers
                .subject
                .unwrap()
                .starts_with("POSTA CERTIFICATA: ")
        );
        openssl_verifies(&lab.ca(), &got[0]).expect("envelope signature");
    }

    // The presa in carico reached alfa's service mailbox and stopped the 12 h timer.
    let timers = alfa.store.timers(&id).unwrap();
    assert_eq!(timers.len(), 3);
    assert!(
        timers
            .iter()
            .all(|t| t.presa_in_carico_at.is_some() && t.delivered),
        "{timers:?}"
    );

    // Received again (a relay retried after a crash lost its completion), the envelope
    // and the receipts are acknowledged and not stored a second time.
    send_to_mx(
        beta.mx_port,
        "posta-certificata@pec.alfa.test",
        &[ANNA],
        &envelope,
    )
    .expect("the envelope again");
    for receipt in inbox
        .iter()
        .filter(|m| classify(m).kind.as_str() == "avvenuta-consegna")
    {
        send_to_mx(
            alfa.mx_port,
            "posta-certificata@pec.beta.test",
            &[MARIO],
            receipt,
        )
        .expect("the receipt again");
    }
    assert_eq!(
        mailbox(beta.store.as_ref(), ANNA, "INBOX").len(),
        1,
        "envelope once"
    );
    let again = mailbox(alfa.store.as_ref(), MARIO, "INBOX");
    assert_eq!(again.len(), 4, "each receipt once");
    lab.shutdown().await;
}

async fn breve_and_sintetica_receipts(backend: Backend) {
    let lab = Lab::start_on(backend, standard(), &[]).await;
    let alfa = lab.node("alfa");
    let body = "From: mario.rossi@pec.alfa.test\r\nTo: anna.bianchi@pec.beta.test\r\nSubject: Breve\r\n\
        X-TipoRicevuta: breve\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"B\"\r\n\r\n\
        --B\r\nContent-Type: text/plain\r\n\r\ntesto\r\n--B\r\nContent-Type: application/pdf; name=\"atto.pdf\"\r\n\
        Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--B--\r\n";
    submit(alfa.submission_port, &lab.ca(), MARIO, &[ANNA], body).expect("breve");
    let msg = message(&[ANNA], &[], "Sintetica", "X-TipoRicevuta: sintetica\r\n");
    submit(alfa.submission_port, &lab.ca(), MARIO, &[ANNA], &msg).expect("sintetica");
    let inbox = wait_for_kind(alfa.store.as_ref(), MARIO, "avvenuta-consegna", 2).await;
    let consegne = of_kind(&inbox, "avvenuta-consegna");
    assert_eq!(consegne.len(), 2);
    let breve = consegne
        .iter()
        .find(|c| c.headers.subject.as_deref() == Some("CONSEGNA: Breve"))
        .unwrap();
    assert_eq!(breve.consegna_variant.unwrap().as_str(), "breve");
    let postacert = String::from_utf8_lossy(breve.postacert.as_ref().unwrap()).into_owned();
    assert!(
        postacert.contains("atto.pdf.hash") && !postacert.contains("JVBERi0xLjQK"),
        "{postacert}"
    );
    let sintetica = consegne
        .iter()
        .find(|c| c.headers.subject.as_deref() == Some("CONSEGNA: Sintetica"))
        .unwrap();
    assert_eq!(sintetica.consegna_variant.unwrap().as_str(), "sintetica");
    assert!(sintetica.postacert.is_none());
    lab.shutdown().await;
}

async fn same_gestore_between_two_of_its_domains(backend: Backend) {
    let lab = Lab::start_on(backend, standard(), &[]).await;
    let beta = lab.node("beta");
    let msg = format!("From: {ANNA}\r\nTo: {PROTOCOLLO}\r\nSubject: Interno\r\n\r\nciao\r\n");
    submit(beta.submission_port, &lab.ca(), ANNA, &[PROTOCOLLO], &msg).expect("submitted");
    let inbox = wait_for(beta.store.as_ref(), ANNA, 2).await;
    assert_eq!(of_kind(&inbox, "accettazione").len(), 1);
    let c = of_kind(&inbox, "avvenuta-consegna");
    assert_eq!(
        c.len(),
        1,
        "full PEC processing within one gestore (checklist 82)"
    );
    assert_eq!(
        c[0].daticert.as_ref().unwrap().consegna.as_deref(),
        Some(PROTOCOLLO)
    );
    let got = wait_for(beta.store.as_ref(), PROTOCOLLO, 1).await;
    assert_eq!(classify(&got[0]).kind.as_str(), "posta-certificata");
    // Nothing for users from the presa in carico: it went to the service mailbox.
    assert!(of_kind(&inbox, "presa-in-carico").is_empty());
    assert!(mailbox(beta.store.as_ref(), PROTOCOLLO, "INBOX").len() == 1);
    lab.shutdown().await;
}

pec_e2e::e2e_tests!(
    pec_to_pec_across_gestori_to_and_cc,
    breve_and_sintetica_receipts,
    same_gestore_between_two_of_its_domains,
);
