//! Replays: genuine envelopes and receipts produced by the lab, sent again to an MX with
//! what a relay controls changed (the RCPTs, the reverse path, the unsigned outer
//! header). The incoming point trusts only what the signature covers: a message is PEC
//! only for the recipients and the sender its daticert certifies, receipts go to the
//! certified sender, a rewritten header makes an anomaly, and an exact replay is stored
//! once; an infected envelope reaches no one it does not certify, as an anomaly either.

use std::sync::Arc;

use pec_e2e::{
    Backend, DELIVERED_FROM_MX, EICAR, Lab, NodeSpec, mailbox, of_kind, openssl_verifies,
    send_to_mx, standard, start_clamd, submit, trace_before, wait_archived, wait_for,
};
use pec_gestore::access::{Limits, Outcome, Submission, submit as access_submit};
use pec_gestore::clock::Clock;
use pec_gestore::identity::Identity;
use pec_proto::build::{Notice, Transaction};
use pec_proto::classify::classify;
use pec_proto::daticert::TipoRicevuta;
use pec_proto::index::ProviderIndex;
use pec_proto::smime::{Digest, OpensslSigner};
use pec_store::{LogQuery, LogRecord, Store};

const MARIO: &str = "mario.rossi@pec.alfa.test";
const ANNA: &str = "anna.bianchi@pec.beta.test";
const LUCA: &str = "luca.verdi@pec.beta.test";
const PROTOCOLLO: &str = "ufficio.protocollo@pec.comune.beta.test";
const EVIL: &str = "x@evil.test";

fn message(from: &str, to: &str, subject: &str) -> String {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{}@client.test>\r\n\r\nGentile ufficio,\r\nin allegato.\r\n",
        subject.replace(' ', "-")
    )
}

/// The legal log records of `store` about `msgid`.
fn log(store: &dyn Store, msgid: &str) -> Vec<LogRecord> {
    store
        .search_log(&LogQuery {
            msgid: Some(msgid.to_string()),
            ..Default::default()
        })
        .unwrap()
}

fn events<'a>(records: &'a [LogRecord], event: &str) -> Vec<&'a str> {
    records
        .iter()
        .filter(|r| r.entry.event == event)
        .map(|r| r.entry.detail.as_str())
        .collect()
}

/// The identity of lab gestore `id` (`name` in the index), loaded from the lab's files
/// as `pecd serve` loads it: for messages a gestore signs but does not send itself, as
/// if taken from the wire before they reached their destination.
fn identity(lab: &Lab, id: &str, name: &str) -> Identity {
    let pki = lab.dir.path().join("pki");
    let read = |p: std::path::PathBuf| std::fs::read(&p).unwrap();
    let signer = OpensslSigner::from_pem(
        &read(pki.join(id).join("sign.pem")),
        &read(pki.join(id).join("sign.key")),
        Digest::Sha256,
    )
    .unwrap();
    let index = ProviderIndex::parse_ldif(&read(pki.join("index.ldif"))).unwrap();
    Identity::new(name.into(), Arc::new(signer), index, None)
}

/// A transport envelope alfa signed for Mario's message to Anna that has not reached
/// beta (a relay in between holds it); its identificativo.
fn fresh_envelope(lab: &Lab, subject: &str) -> (Vec<u8>, String) {
    envelope_of(
        lab,
        &message("Mario Rossi <mario.rossi@pec.alfa.test>", ANNA, subject),
    )
}

/// The transport envelope alfa signs for Mario's message `raw` to Anna; its
/// identificativo.
fn envelope_of(lab: &Lab, raw: &str) -> (Vec<u8>, String) {
    let alfa = identity(lab, "alfa", "Alfa PEC (lab)");
    let rcpt = vec![ANNA.to_string()];
    let sub = Submission {
        raw: raw.as_bytes(),
        mail_from: MARIO,
        rcpt_to: &rcpt,
        authenticated: MARIO,
        hosted: &[],
        virus: None,
    };
    match access_submit(&alfa, &sub, &Limits::default(), lab.clock.now()).unwrap() {
        Outcome::Accepted(a) => (a.envelope.bytes, a.transaction.identificativo),
        Outcome::Refused(r) => panic!("not accepted: {}", r.reason),
    }
}

/// Mario's message to Anna, delivered; returns the envelope as Anna got it and its
/// identificativo.
async fn delivered_envelope(lab: &Lab, subject: &str) -> (Vec<u8>, String) {
    let (alfa, beta) = (lab.node("alfa"), lab.node("beta"));
    submit(
        alfa.submission_port,
        &lab.ca(),
        MARIO,
        &[ANNA],
        &message(MARIO, ANNA, subject),
    )
    .expect("submitted");
    let inbox = wait_for(alfa.store.as_ref(), MARIO, 2).await;
    assert_eq!(of_kind(&inbox, "avvenuta-consegna").len(), 1);
    let got = wait_for(beta.store.as_ref(), ANNA, 1).await;
    let c = classify(&got[0]);
    assert_eq!(c.kind.as_str(), "posta-certificata");
    let id = c.daticert.unwrap().identificativo;
    (got[0].clone(), id)
}

async fn envelope_replayed_to_a_recipient_it_does_not_certify(backend: Backend) {
    let lab = Lab::start_on(backend, standard(), &[]).await;
    let beta = lab.node("beta");
    let (envelope, id) = delivered_envelope(&lab, "Fattura 7").await;

    // The exact replay: acknowledged, stored once, nothing certified again.
    send_to_mx(beta.mx_port, MARIO, &[ANNA], &envelope).expect("exact replay");
    assert_eq!(mailbox(beta.store.as_ref(), ANNA, "INBOX").len(), 1);

    // To Luca, whom the daticert does not name: an anomaly, not PEC.
    send_to_mx(beta.mx_port, MARIO, &[LUCA], &envelope).expect("replay to luca");
    let got = wait_for(beta.store.as_ref(), LUCA, 1).await;
    assert_eq!(got.len(), 1);
    let c = classify(&got[0]);
    assert_eq!(c.kind.as_str(), "anomalia");
    assert!(c.daticert.is_none());
    // The whole message as received: the MX's Received line in front of it.
    let wrapped = c.postacert.as_deref().expect("the received message");
    assert_eq!(trace_before(wrapped, &envelope).unwrap(), ["Received"]);
    assert!(
        c.headers
            .from
            .as_deref()
            .unwrap()
            .contains("Per conto di: mario.rossi@pec.alfa.test"),
        "the anomaly names the certified sender: {:?}",
        c.headers.from
    );
    openssl_verifies(&lab.ca(), &got[0]).expect("the anomaly is signed by beta");

    // Luca and Anna together: Anna's copy is the one already delivered, Luca gets a
    // second anomaly.
    send_to_mx(beta.mx_port, MARIO, &[ANNA, LUCA], &envelope).expect("replay to both");
    assert_eq!(mailbox(beta.store.as_ref(), ANNA, "INBOX").len(), 1);
    assert_eq!(mailbox(beta.store.as_ref(), LUCA, "INBOX").len(), 2);

    // The legal log: one presa in carico and one consegna, both for Anna; the anomalies
    // for Luca with the reason. Receipts are queued in the same step as their log
    // records, so no receipt was generated about Luca.
    let records = log(beta.store.as_ref(), &id);
    assert_eq!(events(&records, "presa-in-carico"), vec![ANNA]);
    assert_eq!(events(&records, "consegna"), vec![ANNA]);
    assert!(events(&records, "errore-consegna").is_empty());
    let anomalies = events(&records, "anomalia");
    assert_eq!(anomalies.len(), 2, "{anomalies:?}");
    for a in anomalies {
        assert!(
            a.starts_with(LUCA) && a.contains("non è tra i destinatari certificati"),
            "{a}"
        );
    }
    lab.shutdown().await;
}

async fn receipts_go_to_the_certified_sender_not_the_reverse_path(backend: Backend) {
    let mut lab = Lab::start_on(backend, standard(), &[]).await;
    let (envelope, id) = fresh_envelope(&lab, "Diffida");
    // Alfa is down: what beta sends back stays in beta's queue, where it can be read.
    lab.stop("alfa").await;
    let beta = lab.node("beta");

    send_to_mx(beta.mx_port, EVIL, &[ANNA], &envelope).expect("replayed");
    let got = wait_for(beta.store.as_ref(), ANNA, 1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(
        trace_before(&got[0], &envelope).expect("delivered as PEC"),
        DELIVERED_FROM_MX
    );

    // Queued in the same durable step as the delivery, before the 250.
    let queue = beta.store.list_queue().unwrap();
    assert!(
        queue
            .iter()
            .all(|q| q.domain != "evil.test" && q.rcpt_to.iter().all(|r| !r.contains("evil"))),
        "nothing for the reverse path: {:?}",
        queue.iter().map(|q| &q.rcpt_to).collect::<Vec<_>>()
    );
    let queued: Vec<(Vec<String>, Vec<u8>)> = queue
        .iter()
        .map(|q| (q.rcpt_to.clone(), beta.store.read_blob(&q.hash).unwrap()))
        .collect();
    let of = |kind: &str| -> Vec<&(Vec<String>, Vec<u8>)> {
        queued
            .iter()
            .filter(|(_, m)| classify(m).kind.as_str() == kind)
            .collect()
    };
    let consegna = of("avvenuta-consegna");
    assert_eq!(consegna.len(), 1);
    assert_eq!(consegna[0].0, vec![MARIO.to_string()]);
    let c = classify(&consegna[0].1);
    assert_eq!(c.headers.to.as_deref(), Some(MARIO));
    let d = c.daticert.unwrap();
    assert_eq!(d.identificativo, id);
    assert_eq!(d.consegna.as_deref(), Some(ANNA));
    let presa = of("presa-in-carico");
    assert_eq!(presa.len(), 1);
    assert_eq!(
        presa[0].0,
        vec!["ricevute@pec.alfa.test".to_string()],
        "the mailReceipt of the signer's index record"
    );
    lab.shutdown().await;
}

async fn rewritten_outer_header_makes_an_anomaly(backend: Backend) {
    let lab = Lab::start_on(backend, standard(), &[]).await;
    let beta = lab.node("beta");
    // Envelopes rewritten by a relay on their way to beta, before any delivery.
    let rewrite = |subject: &str, from: &str, to: &str, what| {
        let (envelope, id) = fresh_envelope(&lab, subject);
        let forged = String::from_utf8(envelope.clone())
            .unwrap()
            .replacen(from, to, 1);
        assert_ne!(forged.as_bytes(), envelope.as_slice(), "{from} not found");
        (forged, id, what)
    };
    let forged = [
        rewrite(
            "Fattura 8",
            "Subject: POSTA CERTIFICATA: Fattura 8",
            "Subject: POSTA CERTIFICATA: URGENTE - nuovo IBAN",
            "Subject",
        ),
        rewrite(
            "Fattura 9",
            "\"Per conto di: mario.rossi@pec.alfa.test\"",
            "\"Per conto di: direttore@pec.comune.beta.test\"",
            "Per conto di: mario.rossi@pec.alfa.test",
        ),
    ];
    for (n, (forged, id, what)) in forged.iter().enumerate() {
        // The premise: the signature does not cover the outer header.
        openssl_verifies(&lab.ca(), forged.as_bytes()).expect("signature still valid");
        send_to_mx(beta.mx_port, MARIO, &[ANNA], forged.as_bytes()).expect("forged");
        let inbox = wait_for(beta.store.as_ref(), ANNA, n + 1).await;
        assert_eq!(inbox.len(), n + 1);
        let c = classify(&inbox[n]);
        assert_eq!(c.kind.as_str(), "anomalia", "rewrite {n}");
        let wrapped = c.postacert.as_deref().expect("the received message");
        assert_eq!(
            trace_before(wrapped, forged.as_bytes()).unwrap(),
            ["Received"]
        );
        // Nothing certified: no presa in carico, no consegna; the log says why.
        let records = log(beta.store.as_ref(), id);
        assert!(
            events(&records, "presa-in-carico").is_empty(),
            "rewrite {n}"
        );
        assert!(events(&records, "consegna").is_empty(), "rewrite {n}");
        let anomalies = log(beta.store.as_ref(), &format!("<{id}>"));
        let reasons = events(&anomalies, "anomalia");
        assert_eq!(reasons.len(), 1, "{reasons:?}");
        assert!(reasons[0].contains(what), "{}", reasons[0]);
    }
    lab.shutdown().await;
}

async fn receipt_replayed_to_another_mailbox_is_not_filed(backend: Backend) {
    let mut lab = Lab::start_on(backend, standard(), &[]).await;
    let (alfa, beta) = (lab.node("alfa"), lab.node("beta"));
    // Anna writes to Mario: her receipts come back to beta.
    submit(
        beta.submission_port,
        &lab.ca(),
        ANNA,
        &[MARIO],
        &message(ANNA, MARIO, "Verbale"),
    )
    .expect("submitted");
    let inbox = wait_for(beta.store.as_ref(), ANNA, 2).await;
    let consegna = inbox
        .iter()
        .find(|m| classify(m).kind.as_str() == "avvenuta-consegna")
        .expect("delivery receipt")
        .clone();
    wait_for(alfa.store.as_ref(), MARIO, 1).await;
    let presa_entry = wait_archived(
        beta.store.as_ref(),
        "ricevute@pec.beta.test",
        "presa-in-carico",
    )
    .await
    .expect("presa in carico in beta's service mailbox");
    let presa = beta.store.read_archive(presa_entry.id).unwrap();

    // A second message of Anna's, which alfa (down now) has not received: a receipt alfa
    // signs about it certifies what beta has not seen yet. (Another receipt about the
    // first message certifies the delivery beta filed already: filed once, see
    // `receipt_with_a_rewritten_message_id_is_filed_once`.)
    lab.stop("alfa").await;
    let beta = lab.node("beta");
    submit(
        beta.submission_port,
        &lab.ca(),
        ANNA,
        &[MARIO],
        &message(ANNA, MARIO, "Verbale 2"),
    )
    .expect("submitted");
    let inbox = wait_for(beta.store.as_ref(), ANNA, 3).await;
    let d = of_kind(&inbox, "accettazione")
        .into_iter()
        .filter_map(|c| c.daticert)
        .find(|d| d.oggetto.as_deref() == Some("Verbale 2"))
        .expect("acceptance of the second message");

    // That genuine receipt, taken on its way and sent to Luca; then the receipts beta
    // filed for Anna, to Luca and to the protocol office: anomalies, never receipts in
    // their mailboxes.
    let fresh = identity(&lab, "alfa", "Alfa PEC (lab)")
        .notice(
            &Transaction::from_daticert(&d),
            &Notice::AvvenutaConsegna {
                recipient: MARIO,
                variant: TipoRicevuta::Sintetica,
                postacert: None,
            },
            ANNA,
            lab.clock.now(),
        )
        .unwrap()
        .bytes;
    send_to_mx(
        beta.mx_port,
        "posta-certificata@pec.alfa.test",
        &[LUCA],
        &fresh,
    )
    .expect("fresh receipt to luca");
    send_to_mx(
        beta.mx_port,
        "posta-certificata@pec.alfa.test",
        &[LUCA],
        &consegna,
    )
    .expect("receipt to luca");
    send_to_mx(
        beta.mx_port,
        "posta-certificata@pec.alfa.test",
        &[ANNA, PROTOCOLLO],
        &consegna,
    )
    .expect("receipt to anna and the protocol office");
    send_to_mx(
        beta.mx_port,
        "posta-certificata@pec.alfa.test",
        &[LUCA],
        &presa,
    )
    .expect("presa in carico to luca");
    for (who, n) in [(LUCA, 3), (PROTOCOLLO, 1)] {
        let got = wait_for(beta.store.as_ref(), who, n).await;
        assert_eq!(got.len(), n, "{who}");
        for m in &got {
            let c = classify(m);
            assert_eq!(c.kind.as_str(), "anomalia", "{who}");
        }
    }
    // Anna, the certified sender, has the receipt beta filed once; the fresh one is
    // filed for her when it reaches her.
    let again = mailbox(beta.store.as_ref(), ANNA, "INBOX");
    assert_eq!(of_kind(&again, "avvenuta-consegna").len(), 1);
    assert_eq!(again.len(), 3);
    send_to_mx(
        beta.mx_port,
        "posta-certificata@pec.alfa.test",
        &[ANNA],
        &fresh,
    )
    .expect("fresh receipt to anna");
    let filed = mailbox(beta.store.as_ref(), ANNA, "INBOX");
    assert_eq!(filed.len(), 4);
    assert_eq!(trace_before(&filed[3], &fresh).unwrap(), DELIVERED_FROM_MX);
    lab.shutdown().await;
}

async fn receipt_with_a_rewritten_message_id_is_filed_once(backend: Backend) {
    let lab = Lab::start_on(backend, standard(), &[]).await;
    let beta = lab.node("beta");
    submit(
        beta.submission_port,
        &lab.ca(),
        ANNA,
        &[MARIO],
        &message(ANNA, MARIO, "Delibera"),
    )
    .expect("submitted");
    let inbox = wait_for(beta.store.as_ref(), ANNA, 2).await;
    let consegna = of_kind(&inbox, "avvenuta-consegna");
    assert_eq!(consegna.len(), 1);
    let genuine = inbox
        .iter()
        .find(|m| classify(m).kind.as_str() == "avvenuta-consegna")
        .unwrap()
        .clone();
    let text = String::from_utf8(genuine.clone()).unwrap();
    let old_id = consegna[0].headers.message_id.clone().expect("Message-ID");
    // The outer Message-ID is not signed: a relay may rewrite it, the signature holds.
    let rewritten = text.replacen(&old_id, "<riscritto.1@relay.test>", 1);
    assert_ne!(rewritten, text);
    openssl_verifies(&lab.ca(), rewritten.as_bytes()).expect("signature still valid");
    // An exact replay and the rewritten one: acknowledged, neither filed again.
    send_to_mx(
        beta.mx_port,
        "posta-certificata@pec.alfa.test",
        &[ANNA],
        &genuine,
    )
    .expect("exact replay");
    send_to_mx(
        beta.mx_port,
        "posta-certificata@pec.alfa.test",
        &[ANNA],
        rewritten.as_bytes(),
    )
    .expect("rewritten replay");
    let after = mailbox(beta.store.as_ref(), ANNA, "INBOX");
    assert_eq!(after.len(), 2, "nothing filed twice");
    assert_eq!(of_kind(&after, "avvenuta-consegna").len(), 1);
    let id = consegna[0]
        .daticert
        .as_ref()
        .unwrap()
        .identificativo
        .clone();
    let records = log(beta.store.as_ref(), &id);
    let filed = events(&records, "ricezione avvenuta-consegna");
    assert_eq!(filed, vec![MARIO]);
    lab.shutdown().await;
}

async fn a_misdirected_receipt_settles_no_timer(backend: Backend) {
    let mut lab = Lab::start_on(backend, standard(), &[]).await;
    // Beta is down: Mario's envelope waits in alfa's queue, its timer runs.
    lab.stop("beta").await;
    let alfa = lab.node("alfa");
    submit(
        alfa.submission_port,
        &lab.ca(),
        MARIO,
        &[ANNA],
        &message(MARIO, ANNA, "Attesa"),
    )
    .expect("submitted");
    let inbox = wait_for(alfa.store.as_ref(), MARIO, 1).await;
    let d = of_kind(&inbox, "accettazione")[0].daticert.clone().unwrap();
    let id = d.identificativo.clone();
    // A genuine delivery receipt beta signed about it (taken on its way to alfa).
    let beta_id = identity(&lab, "beta", "Beta PEC (lab)");
    let receipt = beta_id
        .notice(
            &Transaction::from_daticert(&d),
            &Notice::AvvenutaConsegna {
                recipient: ANNA,
                variant: TipoRicevuta::Sintetica,
                postacert: None,
            },
            MARIO,
            lab.clock.now(),
        )
        .unwrap()
        .bytes;
    let delivered = |store: &dyn Store| {
        store
            .timers(&id)
            .unwrap()
            .iter()
            .any(|t| t.recipient == ANNA && t.delivered)
    };
    assert!(!delivered(alfa.store.as_ref()));

    // To alfa's service mailbox instead of Mario: not filed, the timer keeps running.
    send_to_mx(
        alfa.mx_port,
        "posta-certificata@pec.beta.test",
        &["ricevute@pec.alfa.test"],
        &receipt,
    )
    .expect("misdirected");
    assert!(
        !delivered(alfa.store.as_ref()),
        "a misdirected receipt settles nothing"
    );
    assert!(
        events(
            &log(alfa.store.as_ref(), &id),
            "ricezione avvenuta-consegna"
        )
        .is_empty()
    );

    // To Mario, the certified sender: filed and the timer settled.
    send_to_mx(
        alfa.mx_port,
        "posta-certificata@pec.beta.test",
        &[MARIO],
        &receipt,
    )
    .expect("to the sender");
    assert!(delivered(alfa.store.as_ref()));
    let inbox = wait_for(alfa.store.as_ref(), MARIO, 2).await;
    assert_eq!(of_kind(&inbox, "avvenuta-consegna").len(), 1);
    lab.shutdown().await;
}

async fn an_infected_envelope_reaches_no_stray_recipient(backend: Backend) {
    let clamd = start_clamd();
    let specs = vec![
        standard().remove(0),
        NodeSpec {
            extra: format!("[antivirus]\nclamd = \"{}\"\n", clamd.address),
            ..standard().remove(1)
        },
    ];
    let lab = Lab::start_on(backend, specs, &[]).await;
    let beta = lab.node("beta");
    let infected = format!("{}{EICAR}\r\n", message(MARIO, ANNA, "Allegato"));
    let (envelope, id) = envelope_of(&lab, &infected);

    // Only to a recipient it does not certify: refused like infected ordinary mail.
    let err = send_to_mx(beta.mx_port, MARIO, &[LUCA], &envelope).unwrap_err();
    assert!(err.contains("554"), "{err}");
    assert!(log(beta.store.as_ref(), &id).is_empty());

    // Rewritten on its way (an anomaly, certified for nobody): refused too.
    let rewritten = String::from_utf8(envelope.clone()).unwrap().replacen(
        "Subject: POSTA CERTIFICATA: Allegato",
        "Subject: POSTA CERTIFICATA: Fattura",
        1,
    );
    assert_ne!(rewritten.as_bytes(), envelope.as_slice());
    let err = send_to_mx(beta.mx_port, MARIO, &[ANNA], rewritten.as_bytes()).unwrap_err();
    assert!(err.contains("554"), "{err}");
    assert!(mailbox(beta.store.as_ref(), ANNA, "INBOX").is_empty());

    // With Anna, whom it certifies: the virus path for her, nothing for Luca.
    send_to_mx(beta.mx_port, MARIO, &[ANNA, LUCA], &envelope).expect("taken in charge");
    assert!(mailbox(beta.store.as_ref(), ANNA, "INBOX").is_empty());
    assert!(mailbox(beta.store.as_ref(), LUCA, "INBOX").is_empty());
    let records = log(beta.store.as_ref(), &id);
    assert_eq!(events(&records, "presa-in-carico"), vec![ANNA]);
    assert_eq!(events(&records, "rilevazione-virus").len(), 1);
    let anomalies = events(&records, "anomalia");
    assert_eq!(anomalies.len(), 1, "{anomalies:?}");
    assert!(
        anomalies[0].starts_with(LUCA) && anomalies[0].contains("virus"),
        "{}",
        anomalies[0]
    );
    lab.shutdown().await;
}

pec_e2e::e2e_tests!(
    envelope_replayed_to_a_recipient_it_does_not_certify,
    receipts_go_to_the_certified_sender_not_the_reverse_path,
    rewritten_outer_header_makes_an_anomaly,
    receipt_replayed_to_another_mailbox_is_not_filed,
    receipt_with_a_rewritten_message_id_is_filed_once,
    a_misdirected_receipt_settles_no_timer,
    an_infected_envelope_reaches_no_stray_recipient,
);
