//! PEC and ordinary mail across a real Postfix (the ordinary server a user would pick):
//! PEC to an ordinary address, and ordinary mail to PEC mailboxes — refused by default
//! (Postfix bounces it to the sender with our text), wrapped as an anomaly where opted in.

use pec_e2e::{
    Lab, NodeSpec, Postfix, free_port, of_kind, openssl_verifies, send_to_mx, standard, submit,
    wait_for,
};
use pec_proto::classify::classify;

const MARIO: &str = "mario.rossi@pec.alfa.test";
const ANNA: &str = "anna.bianchi@pec.beta.test";
const PROTOCOLLO: &str = "ufficio.protocollo@pec.comune.beta.test";
const PAOLO: &str = "paolo@posta.ordinaria.test";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pec_and_ordinary_mail_through_postfix() {
    let postfix_port = free_port();
    let specs = vec![
        standard().remove(0),
        NodeSpec {
            extra: "[policy]\naccept_ordinary = [\"pec.comune.beta.test\"]\n".into(),
            ..standard().remove(1)
        },
    ];
    let lab = Lab::start_with_routes(specs, &[], &[("posta.ordinaria.test", postfix_port)]).await;
    let (alfa, beta) = (lab.node("alfa"), lab.node("beta"));
    let postfix = Postfix::start(
        postfix_port,
        &[
            ("pec.alfa.test", alfa.mx_port),
            ("pec.beta.test", beta.mx_port),
            ("pec.comune.beta.test", beta.mx_port),
        ],
    );

    // PEC to an ordinary address (flow C): the envelope reaches Postfix's Maildir; the
    // acceptance tags the address "posta ordinaria"; no delivery receipt, no timers.
    let msg = format!("From: {MARIO}\r\nTo: {PAOLO}\r\nSubject: Verso ordinaria\r\n\r\ntesto\r\n");
    submit(alfa.submission_port, &lab.ca(), MARIO, &[PAOLO], &msg).unwrap();
    let got = postfix.maildir(1);
    let envelope = got
        .iter()
        .map(|m| classify(m))
        .find(|c| c.kind.as_str() == "posta-certificata")
        .expect("envelope in the Maildir");
    assert_eq!(
        envelope.headers.subject.as_deref(),
        Some("POSTA CERTIFICATA: Verso ordinaria")
    );
    let envelope_bytes = got
        .iter()
        .find(|m| classify(m).kind.as_str() == "posta-certificata")
        .unwrap();
    // Postfix adds its Return-Path/Delivered-To/Received lines on top; the signature
    // still verifies with openssl.
    openssl_verifies(&lab.ca(), envelope_bytes).unwrap();
    let inbox = wait_for(alfa.store.as_ref(), MARIO, 1).await;
    let acc = of_kind(&inbox, "accettazione");
    let d = acc[0].daticert.as_ref().unwrap();
    assert_eq!(d.destinatari[0].tipo.as_str(), "esterno");
    let text = String::from_utf8_lossy(&inbox[0]).into_owned();
    assert!(text.contains("posta ordinaria"), "tagged in the text");
    assert!(
        alfa.store.timers(&d.identificativo).unwrap().is_empty(),
        "no timers for esterno"
    );

    // Ordinary mail to a PEC-only mailbox: refused in the SMTP session, so Postfix
    // bounces it to the sender, quoting our reply.
    let ordinary = |to: &str, subject: &str| {
        format!(
            "From: Paolo <{PAOLO}>\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{subject}@posta.ordinaria.test>\r\n\r\nposta ordinaria\r\n"
        )
    };
    send_to_mx(
        postfix.port,
        PAOLO,
        &[ANNA],
        ordinary(ANNA, "rifiutata").as_bytes(),
    )
    .unwrap();
    let got = postfix.maildir(2);
    let bounce = got
        .iter()
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .find(|m| m.contains("Undelivered Mail"))
        .expect("a bounce");
    assert!(bounce.contains("posta elettronica certificata"), "{bounce}");
    assert!(pec_e2e::mailbox(beta.store.as_ref(), ANNA, "INBOX").is_empty());

    // Ordinary mail to a mailbox that opted in: an anomaly envelope.
    send_to_mx(
        postfix.port,
        PAOLO,
        &[PROTOCOLLO],
        ordinary(PROTOCOLLO, "accolta").as_bytes(),
    )
    .unwrap();
    let got = wait_for(beta.store.as_ref(), PROTOCOLLO, 1).await;
    let c = classify(&got[0]);
    assert_eq!(c.kind.as_str(), "anomalia");
    assert_eq!(
        c.headers.subject.as_deref(),
        Some("ANOMALIA MESSAGGIO: accolta")
    );
    assert_eq!(
        c.headers.message_id.as_deref(),
        Some("<accolta@posta.ordinaria.test>")
    );
    openssl_verifies(&lab.ca(), &got[0]).unwrap();
    drop(postfix);
    lab.shutdown().await;
}
