//! The access and incoming points on a two-gestore lab PKI: every formal check of
//! spec §2.2, and the §2.3 decision table.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use pec_gestore::access::{Limits, Outcome, RefusalCause, Submission, submit};
use pec_gestore::handoff::{HANDOFF_BYTES, HANDOFF_LEASE, HandOff, Handed, OwnRoute, own_route};
use pec_gestore::identity::Identity;
use pec_gestore::incoming::{Verdict, examine};
use pec_gestore::workers::QUEUE_BATCH;
use pec_proto::build::{self, Emission, Notice, Transaction};
use pec_proto::classify::{Kind, classify};
use pec_proto::daticert::{Daticert, TipoDestinatario};
use pec_proto::index::ProviderIndex;
use pec_proto::labpki::{self, GestoreSpec, LabPki};
use pec_proto::smime::{Digest, OpensslSigner, TrustAnchors};
use pec_store::QueueEntry;

fn lab() -> LabPki {
    let specs = [
        GestoreSpec {
            id: "alfa".into(),
            provider_name: "Alfa PEC (lab)".into(),
            domains: vec!["pec.alfa.test".into()],
        },
        GestoreSpec {
            id: "beta".into(),
            provider_name: "Beta PEC (lab)".into(),
            domains: vec!["pec.beta.test".into()],
        },
    ];
    labpki::generate(
        &specs,
        Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap(),
        3650,
    )
    .unwrap()
}

fn identity(pki: &LabPki, i: usize) -> Identity {
    let g = &pki.gestori[i];
    let signer = OpensslSigner::from_pem(
        g.sign_cert_pem.as_bytes(),
        g.sign_key_pem.as_bytes(),
        Digest::Sha256,
    )
    .unwrap();
    Identity::new(
        g.spec.provider_name.clone(),
        Arc::new(signer),
        ProviderIndex::parse_ldif(pki.index_ldif.as_bytes()).unwrap(),
        Some(TrustAnchors::from_pem(pki.ca_cert_pem.as_bytes()).unwrap()),
    )
}

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 10, 9, 30, 15).unwrap()
}

const MSG: &str = "From: Mario <mario.rossi@pec.alfa.test>\r\nTo: anna.bianchi@pec.beta.test, paolo@posta.ordinaria.test\r\nCc: luca.verdi@pec.beta.test\r\nSubject: Prova\r\nMessage-ID: <m1@client>\r\nDate: Mon, 10 Mar 2025 10:30:00 +0100\r\n\r\nTesto\r\n";

fn rcpts() -> Vec<String> {
    [
        "anna.bianchi@pec.beta.test",
        "paolo@posta.ordinaria.test",
        "Luca.Verdi@pec.beta.test",
    ]
    .map(String::from)
    .to_vec()
}

fn run(
    id: &Identity,
    raw: &str,
    rcpt: &[String],
    from: &str,
    auth: &str,
    virus: Option<&str>,
) -> Outcome {
    let sub = Submission {
        raw: raw.as_bytes(),
        mail_from: from,
        rcpt_to: rcpt,
        authenticated: auth,
        hosted: &[],
        virus,
    };
    submit(id, &sub, &Limits::default(), now()).unwrap()
}

/// The fields of a [`Verdict::Envelope`]; any other verdict fails the test.
fn envelope_verdict(v: Verdict) -> (Daticert, Option<Vec<u8>>, String, String) {
    match v {
        Verdict::Envelope {
            daticert,
            postacert,
            mail_receipt,
            provider,
        } => (daticert, postacert, mail_receipt, provider),
        v => panic!("not a valid envelope: {v:?}"),
    }
}

fn refused(o: Outcome) -> pec_gestore::access::Refused {
    match o {
        Outcome::Refused(r) => r,
        Outcome::Accepted(_) => panic!("accepted"),
    }
}

#[test]
fn a_good_submission_gets_receipt_and_envelope() {
    let pki = lab();
    let alfa = identity(&pki, 0);
    let sender = "mario.rossi@pec.alfa.test";
    let Outcome::Accepted(a) = run(&alfa, MSG, &rcpts(), sender, sender, None) else {
        panic!("refused")
    };
    let r = classify(&a.receipt);
    assert_eq!(r.kind, Kind::Accettazione);
    assert_eq!(r.headers.to.as_deref(), Some(sender));
    assert!(r.postacert.is_none(), "checklist 16");
    let d = r.daticert.unwrap();
    let kinds: Vec<_> = d
        .destinatari
        .iter()
        .map(|x| (x.indirizzo.as_str(), x.tipo))
        .collect();
    assert_eq!(
        kinds,
        [
            ("anna.bianchi@pec.beta.test", TipoDestinatario::Certificato),
            ("paolo@posta.ordinaria.test", TipoDestinatario::Esterno),
            ("luca.verdi@pec.beta.test", TipoDestinatario::Certificato),
        ]
    );
    let e = classify(&a.envelope.bytes);
    assert_eq!(e.kind, Kind::PostaCertificata);
    assert!(e.problems.is_empty(), "{:?}", e.problems);
    assert_eq!(
        e.daticert.unwrap().identificativo,
        a.transaction.identificativo
    );
    assert_eq!(
        a.certified,
        ["anna.bianchi@pec.beta.test", "luca.verdi@pec.beta.test"]
    );
    assert!(a.transaction.identificativo.ends_with("@pec.alfa.test"));
    // Checklist 17: a new PEC msgid every time.
    let Outcome::Accepted(b) = run(&alfa, MSG, &rcpts(), sender, sender, None) else {
        panic!()
    };
    assert_ne!(a.transaction.identificativo, b.transaction.identificativo);
}

#[test]
fn each_formal_error_gets_a_non_acceptance_notice() {
    let pki = lab();
    let alfa = identity(&pki, 0);
    let s = "mario.rossi@pec.alfa.test";
    let cases: Vec<(String, Vec<String>, &str, &str, &str)> = vec![
        (
            MSG.into(),
            rcpts(),
            "other@pec.alfa.test",
            "other@pec.alfa.test",
            "mittente SMTP",
        ),
        (
            MSG.into(),
            rcpts(),
            s,
            "other@pec.alfa.test",
            "utente autenticato",
        ),
        (
            MSG.replace("From: Mario <mario.rossi@pec.alfa.test>\r\n", ""),
            rcpts(),
            s,
            s,
            "From",
        ),
        (
            MSG.replace("<mario.rossi@pec.alfa.test>", "<mario.rossi>"),
            rcpts(),
            s,
            s,
            "mittente",
        ),
        (
            MSG.replace(
                "To: anna.bianchi@pec.beta.test, paolo@posta.ordinaria.test\r\n",
                "",
            ),
            rcpts(),
            s,
            s,
            "To",
        ),
        (
            MSG.replace("paolo@posta.ordinaria.test", "paolo@"),
            rcpts(),
            s,
            s,
            "destinatari",
        ),
        (
            MSG.replace("Subject:", "Bcc: x@pec.beta.test\r\nSubject:"),
            rcpts(),
            s,
            s,
            "Bcc",
        ),
        (MSG.into(), rcpts()[..2].to_vec(), s, s, "destinatari SMTP"),
        (
            MSG.into(),
            [rcpts(), vec!["extra@pec.beta.test".into()]].concat(),
            s,
            s,
            "destinatari SMTP",
        ),
    ];
    for (raw, rcpt, from, auth, needle) in cases {
        let r = refused(run(&alfa, &raw, &rcpt, from, auth, None));
        assert!(r.reason.contains(needle), "{needle}: {}", r.reason);
        assert_eq!(r.cause, RefusalCause::Formal);
        let c = classify(&r.notice);
        assert_eq!(c.kind, Kind::NonAccettazione, "{needle}");
        assert_eq!(c.headers.to.as_deref(), Some(from), "to the reverse path");
        assert!(
            c.headers
                .subject
                .as_deref()
                .unwrap()
                .starts_with("AVVISO DI NON ACCETTAZIONE: ")
        );
        assert!(c.postacert.is_none(), "checklist 13");
        assert_eq!(
            c.daticert.unwrap().errore_esteso.as_deref(),
            Some(r.reason.as_str())
        );
    }
}

#[test]
fn virus_and_size_limits() {
    let pki = lab();
    let alfa = identity(&pki, 0);
    let s = "mario.rossi@pec.alfa.test";
    let r = refused(run(&alfa, MSG, &rcpts(), s, s, Some("Eicar-Signature")));
    assert_eq!(r.cause, RefusalCause::Virus);
    let c = classify(&r.notice);
    assert_eq!(c.headers.verifica_sicurezza.as_deref(), Some("errore"));
    assert!(
        c.headers
            .subject
            .unwrap()
            .starts_with("AVVISO DI NON ACCETTAZIONE PER VIRUS: ")
    );
    assert_eq!(c.daticert.unwrap().errore.as_str(), "virus");

    // Checklist 9: 50 recipients with size × 50 ≤ 30 MB are accepted; 10× the size is not.
    let to: Vec<String> = (0..50).map(|i| format!("u{i}@pec.beta.test")).collect();
    let body = "x".repeat(600 * 1024);
    let raw = format!(
        "From: {s}\r\nTo: {}\r\nSubject: tanti\r\n\r\n{body}\r\n",
        to.join(", ")
    );
    assert!(matches!(
        run(&alfa, &raw, &to, s, s, None),
        Outcome::Accepted(_)
    ));
    let big = format!(
        "From: {s}\r\nTo: {}\r\nSubject: tanti\r\n\r\n{}\r\n",
        to.join(", "),
        body.repeat(2)
    );
    assert!(
        refused(run(&alfa, &big, &to, s, s, None))
            .reason
            .contains("dimensione")
    );
}

#[test]
fn incoming_decision_table() {
    let pki = lab();
    let (alfa, beta) = (identity(&pki, 0), identity(&pki, 1));
    let s = "mario.rossi@pec.alfa.test";
    let Outcome::Accepted(a) = run(&alfa, MSG, &rcpts(), s, s, None) else {
        panic!()
    };

    let (daticert, postacert, mail_receipt, provider) =
        envelope_verdict(examine(&beta, &a.envelope.bytes, now()));
    // The original it carries, as the sender submitted it.
    let original = String::from_utf8(postacert.expect("postacert.eml")).unwrap();
    assert!(
        original.contains("Message-ID: <m1@client>\r\n"),
        "{original}"
    );
    assert!(original.ends_with("\r\nTesto\r\n"), "{original}");
    assert_eq!(mail_receipt, "ricevute@pec.alfa.test");
    assert_eq!(provider, "Alfa PEC (lab)");
    assert_eq!(daticert.identificativo, a.transaction.identificativo);
    assert!(matches!(
        examine(&beta, &a.receipt, now()),
        Verdict::Receipt {
            kind: Kind::Accettazione,
            ..
        }
    ));
    // Unsigned (ordinary) mail.
    assert!(matches!(
        examine(&beta, MSG.as_bytes(), now()),
        Verdict::Ordinary { .. }
    ));
    // Tampered signed content.
    let tampered = String::from_utf8_lossy(&a.envelope.bytes).replacen("Testo\r\n", "Testa\r\n", 1);
    assert!(matches!(
        examine(&beta, tampered.as_bytes(), now()),
        Verdict::Ordinary { .. }
    ));
    // A signer that is not in the index.
    let other = labpki::generate(
        &[GestoreSpec {
            id: "x".into(),
            provider_name: "X".into(),
            domains: vec!["pec.x.test".into()],
        }],
        now(),
        10,
    )
    .unwrap();
    let stranger = identity(
        &LabPki {
            index_ldif: pki.index_ldif.clone(),
            ..other
        },
        0,
    );
    let Outcome::Accepted(x) = run(
        &stranger,
        &MSG.replace("pec.alfa.test", "pec.x.test"),
        &rcpts(),
        "mario.rossi@pec.x.test",
        "mario.rossi@pec.x.test",
        None,
    ) else {
        panic!()
    };
    assert!(matches!(
        examine(&beta, &x.envelope.bytes, now()),
        Verdict::Ordinary { .. }
    ));
    // Signed by a listed gestore but malformed: a notice whose daticert tipo contradicts its header.
    let tx = Transaction::from_original(
        &pec_proto::original::Original::parse(MSG.as_bytes()),
        "id1@pec.alfa.test",
        |_| TipoDestinatario::Certificato,
    );
    let e = Emission {
        signer: alfa.signer.as_ref(),
        gestore: "Alfa PEC (lab)",
        time: now().fixed_offset(),
        message_id: "n1@pec.alfa.test",
        boundary: "b",
    };
    let receipt = build::notice(&e, &tx, &Notice::Accettazione, s).unwrap();
    let lying = String::from_utf8_lossy(&receipt).replacen(
        "X-Ricevuta: accettazione",
        "X-Ricevuta: avvenuta-consegna",
        1,
    );
    assert!(matches!(
        examine(&beta, lying.as_bytes(), now()),
        Verdict::Anomaly { .. }
    ));
    // Expired signer certificate: intact but not trusted → ordinary.
    let later = Utc.with_ymd_and_hms(2040, 1, 1, 0, 0, 0).unwrap();
    assert!(matches!(
        examine(&beta, &a.envelope.bytes, later),
        Verdict::Ordinary { .. }
    ));
}

/// What the access point hands to its own delivery instead of the envelope's examination
/// (`Envelope::daticert` and `postacert`) is exactly what the incoming point reads back
/// from the signed bytes, whatever the shape of the original.
#[test]
fn a_handed_off_envelope_says_what_its_examination_reads() {
    let pki = lab();
    let alfa = identity(&pki, 0);
    let s = "mario.rossi@pec.alfa.test";
    let originals = [
        MSG.to_string(),
        // LF line ends, no final line end, 8-bit body, a subject with spaces around it.
        "From: mario.rossi@pec.alfa.test\nTo: anna.bianchi@pec.beta.test\nSubject:   Àccentata è più   \nMessage-ID: <m2@client>\n\nRiga uno\nRiga due senza fine".into(),
        // No Subject, no Message-ID, no Date, a Reply-To, a breve receipt asked for.
        "From: mario.rossi@pec.alfa.test\r\nTo: anna.bianchi@pec.beta.test\r\nReply-To: <protocollo@pec.alfa.test>\r\nX-TipoRicevuta: breve\r\n\r\nCorpo\r\n".into(),
        // Control characters in the subject, which the XML cannot carry as they are.
        "From: mario.rossi@pec.alfa.test\r\nTo: anna.bianchi@pec.beta.test\r\nSubject: Ciao\x01mondo\x1b[0m fine \r\n\r\nCorpo\r\n".into(),
        // Encoded words and a folded subject; a multipart with an attachment.
        format!(
            "From: \"Rossi, Mario\" <mario.rossi@pec.alfa.test>\r\nTo: anna.bianchi@pec.beta.test,\r\n luca.verdi@pec.beta.test\r\nSubject: =?UTF-8?B?{}?=\r\n =?UTF-8?Q?_seconda_parte_=E2=82=AC?=\r\nMessage-ID: <m3@client>\r\nX-TipoRicevuta: sintetica\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"xx\"\r\n\r\n--xx\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nCiao\r\n--xx\r\nContent-Type: application/pdf; name=\"a.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--xx--\r\n",
            "8J+TqCBEZXRlcm1pbmF6aW9uZSBuLiAxMg=="
        ),
    ];
    for raw in &originals {
        let original = pec_proto::original::Original::parse(raw.as_bytes());
        let rcpt: Vec<String> = original.to().iter().chain(original.cc()).cloned().collect();
        let Outcome::Accepted(a) = run(&alfa, raw, &rcpt, s, s, None) else {
            panic!("refused: {raw}")
        };
        // Examined by the gestore that signed it, as its queue would.
        let (daticert, postacert, mail_receipt, provider) =
            envelope_verdict(examine(&alfa, &a.envelope.bytes, now()));
        assert_eq!(daticert, a.envelope.daticert, "{raw}");
        assert_eq!(postacert.as_ref(), Some(&a.envelope.postacert), "{raw}");
        // The signer as the hand-off judges it, and as the examination does.
        assert_eq!(
            own_route(&alfa, &alfa.trust(), now()),
            Some(OwnRoute {
                mail_receipt,
                provider
            })
        );
    }
    // Where the examination no longer trusts the gestore's own signature (its
    // certificate expired), nothing is handed off either.
    let later = Utc.with_ymd_and_hms(2040, 1, 1, 0, 0, 0).unwrap();
    assert_eq!(own_route(&alfa, &alfa.trust(), later), None);
}

const SAMPLE_DATICERT: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<postacert tipo="posta-certificata" errore="nessuno">
  <intestazione>
    <mittente>mario.rossi@pec.alfa.test</mittente>
    <destinatari tipo="certificato">anna.bianchi@pec.alfa.test</destinatari>
    <risposte>mario.rossi@pec.alfa.test</risposte>
    <oggetto>Prova</oggetto>
  </intestazione>
  <dati>
    <gestore-emittente>Alfa</gestore-emittente>
    <data zona="+0100"><giorno>10/03/2025</giorno><ora>10:30:15</ora></data>
    <identificativo>opec1@pec.alfa.test</identificativo>
    <ricevuta tipo="completa" />
  </dati>
</postacert>
"#;

/// A handed-off entry `id` whose envelope holds `bytes` bytes.
fn handed(id: i64, bytes: usize, route: &OwnRoute) -> Handed {
    let envelope = build::Envelope {
        bytes: vec![b'x'; bytes],
        daticert: Daticert::parse(SAMPLE_DATICERT.as_bytes()).unwrap(),
        postacert: Vec::new(),
    };
    Handed {
        entry: QueueEntry {
            id,
            msgid: String::new(),
            mail_from: String::new(),
            rcpt_to: Vec::new(),
            domain: String::new(),
            hash: String::new(),
            size: bytes as u64,
            created_at: 0,
            next_attempt_at: HANDOFF_LEASE,
            attempts: 0,
            last_error: None,
            expires_at: 0,
            held: false,
        },
        envelope: Arc::new(envelope),
        route: route.clone(),
    }
}

#[test]
fn envelopes_are_handed_off_while_trusted_and_within_bounds() {
    let pki = lab();
    let alfa = identity(&pki, 0);
    let h = HandOff::default();
    let route = h
        .admit(&alfa, 10, now())
        .expect("its own signature is trusted");
    assert_eq!(
        route,
        OwnRoute {
            mail_receipt: "ricevute@pec.alfa.test".into(),
            provider: "Alfa PEC (lab)".into(),
        }
    );
    // At most QUEUE_BATCH entries...
    h.push((1..QUEUE_BATCH as i64).map(|i| handed(i, 10, &route)));
    assert!(h.admit(&alfa, 10, now()).is_some());
    h.push([handed(0, 10, &route)]);
    assert!(h.admit(&alfa, 10, now()).is_none(), "full at {QUEUE_BATCH}");
    assert_eq!(h.take().len(), QUEUE_BATCH);
    assert!(h.take().is_empty());
    // ... and HANDOFF_BYTES of envelopes.
    h.push([handed(1, HANDOFF_BYTES - 100, &route)]);
    assert!(h.admit(&alfa, 100, now()).is_some());
    assert!(h.admit(&alfa, 101, now()).is_none());
    h.take();
    // Once its certificate has expired a receiver would not trust it: not handed off.
    let later = Utc.with_ymd_and_hms(2040, 1, 1, 0, 0, 0).unwrap();
    assert!(h.admit(&alfa, 10, later).is_none());
    assert!(h.admit(&alfa, 10, now()).is_some());
}
