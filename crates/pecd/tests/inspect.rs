//! `pecd inspect` run as a user would: on signed messages of a lab made by
//! `pecd certs init`, on the real samples, and on unreadable input.

use std::path::Path;
use std::process::{Command, Output};

use chrono::FixedOffset;
use pec_proto::build::{self, Emission, Notice, Transaction};
use pec_proto::daticert::TipoDestinatario;
use pec_proto::original::Original;
use pec_proto::smime::{Digest, OpensslSigner};
use serde_json::Value;

fn pecd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pecd"))
        .args(args)
        .output()
        .expect("run pecd")
}

/// The JSON report of a run that exited with `status` (the verdict on the signature).
fn report(out: &Output, status: i32) -> Value {
    assert_eq!(
        out.status.code(),
        Some(status),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

/// The JSON report of a message whose signature is intact (and trusted, when asked).
fn json(out: &Output) -> Value {
    report(out, 0)
}

const ORIGINAL: &[u8] = b"From: mario.rossi@pec.alfa.test\r\nTo: anna.bianchi@pec.beta.test\r\n\
Cc: paolo@posta.ordinaria.test\r\nSubject: Prova\r\nMessage-ID: <m1@client>\r\n\r\nTesto\r\n";

/// A lab made by the real command, and an acceptance receipt and an envelope signed with
/// alfa's key.
fn lab_messages(dir: &Path) -> (Vec<u8>, Vec<u8>) {
    let lab = dir.join("lab");
    let out = pecd(&[
        "certs",
        "init",
        "--dir",
        lab.to_str().unwrap(),
        "--gestore",
        "alfa=pec.alfa.test",
        "--gestore",
        "beta=pec.beta.test",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cert = std::fs::read(lab.join("alfa/sign.pem")).unwrap();
    let key = std::fs::read(lab.join("alfa/sign.key")).unwrap();
    let signer = OpensslSigner::from_pem(&cert, &key, Digest::Sha256).unwrap();
    let original = Original::parse(ORIGINAL);
    let tx = Transaction::from_original(&original, "opec1.1@pec.alfa.test", |a| {
        if a.ends_with(".test") && a.contains("@pec.") {
            TipoDestinatario::Certificato
        } else {
            TipoDestinatario::Esterno
        }
    });
    let e = Emission {
        signer: &signer,
        gestore: "Alfa PEC (lab)",
        time: chrono::Utc::now().with_timezone(&FixedOffset::east_opt(3600).unwrap()),
        message_id: "opec1.2@pec.alfa.test",
        boundary: "b1",
    };
    let receipt =
        build::notice(&e, &tx, &Notice::Accettazione, "mario.rossi@pec.alfa.test").unwrap();
    let envelope = build::transport_envelope(&e, &tx, &original).unwrap().bytes;
    (receipt, envelope)
}

#[test]
fn json_reports_kind_daticert_and_a_trusted_signature() {
    let dir = tempfile::tempdir().unwrap();
    let (receipt, envelope) = lab_messages(dir.path());
    let file = dir.path().join("accettazione.eml");
    std::fs::write(&file, &receipt).unwrap();
    let index = dir.path().join("lab/index.ldif");
    let ca = dir.path().join("lab/ca.pem");

    let v = json(&pecd(&["inspect", "--json", file.to_str().unwrap()]));
    assert_eq!(v["kind"], "accettazione");
    let d = &v["daticert"];
    assert_eq!(d["tipo"], "accettazione");
    assert_eq!(d["errore"], "nessuno");
    assert_eq!(d["mittente"], "mario.rossi@pec.alfa.test");
    assert_eq!(
        d["destinatari"][0]["indirizzo"],
        "anna.bianchi@pec.beta.test"
    );
    assert_eq!(d["destinatari"][0]["tipo"], "certificato");
    assert_eq!(d["destinatari"][1]["tipo"], "esterno");
    assert_eq!(d["oggetto"], "Prova");
    assert_eq!(d["gestore_emittente"], "Alfa PEC (lab)");
    assert_eq!(d["identificativo"], "opec1.1@pec.alfa.test");
    assert_eq!(d["msgid"], "<m1@client>");
    for key in ["data", "ricevuta", "consegna", "errore_esteso"] {
        assert!(d.get(key).is_some(), "daticert.{key} missing");
    }
    let s = &v["signature"];
    assert_eq!(s["present"], true);
    assert_eq!(s["intact"], true);
    assert_eq!(s["digest"], "sha256");
    assert_eq!(s["signer_email"], "posta-certificata@pec.alfa.test");
    assert!(s["signer"].as_str().unwrap().contains("Alfa PEC (lab)"));
    assert!(s["signing_time"].is_string());
    assert!(s["trusted"].is_null(), "trusted is null without --index");

    let v = json(&pecd(&[
        "inspect",
        "--json",
        "--index",
        index.to_str().unwrap(),
        "--ca",
        ca.to_str().unwrap(),
        file.to_str().unwrap(),
    ]));
    assert_eq!(v["signature"]["trusted"], true);

    // An index that does not list the signer: intact but not trusted, exit status 4.
    let other = dir.path().join("other");
    assert!(
        pecd(&["certs", "init", "--dir", other.to_str().unwrap()])
            .status
            .success()
    );
    let v = report(
        &pecd(&[
            "inspect",
            "--json",
            "--index",
            other.join("index.ldif").to_str().unwrap(),
            file.to_str().unwrap(),
        ]),
        4,
    );
    assert_eq!(v["signature"]["intact"], true);
    assert_eq!(v["signature"]["trusted"], false);

    // A tampered body: not intact, exit status 3, JSON or not, index or not.
    let tampered = String::from_utf8_lossy(&receipt).replacen(
        "\"Prova\" proveniente",
        "\"Prava\" proveniente",
        1,
    );
    assert_ne!(
        tampered.as_bytes(),
        &receipt[..],
        "the tampering must hit the body"
    );
    std::fs::write(&file, tampered).unwrap();
    let v = report(&pecd(&["inspect", "--json", file.to_str().unwrap()]), 3);
    assert_eq!(v["signature"]["intact"], false);
    let human = pecd(&["inspect", file.to_str().unwrap()]);
    assert_eq!(human.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&human.stdout).contains("NOT INTACT"));
    let with_index = pecd(&[
        "inspect",
        "--index",
        index.to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    assert_eq!(with_index.status.code(), Some(3));

    // The envelope: kind and its postacert.
    std::fs::write(&file, &envelope).unwrap();
    let v = json(&pecd(&["inspect", "--json", file.to_str().unwrap()]));
    assert_eq!(v["kind"], "posta-certificata");
    assert_eq!(v["daticert"]["ricevuta"], "completa");
    let human = pecd(&["inspect", file.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(
        text.contains("posta-certificata") && text.contains("intact, sha256"),
        "{text}"
    );
}

#[test]
fn real_samples_and_ordinary_mail() {
    let samples = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../pec-proto/tests/fixtures/samples"
    );
    // Unsigned (the sample's signature was removed): exit status 5.
    let v = report(
        &pecd(&[
            "inspect",
            "--json",
            &format!("{samples}/errore-consegna.eml"),
        ]),
        5,
    );
    assert_eq!(v["kind"], "errore-consegna");
    assert_eq!(v["daticert"]["errore"], "no-dest");
    assert_eq!(v["daticert"]["consegna"], "rec@fakepec.it");
    assert!(
        v["signature"].is_null(),
        "the sample's signature was removed"
    );

    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.eml");
    std::fs::write(&plain, ORIGINAL).unwrap();
    let v = report(&pecd(&["inspect", "--json", plain.to_str().unwrap()]), 5);
    assert_eq!(v["kind"], "ordinaria");
    assert!(v["daticert"].is_null());
}

#[test]
fn unreadable_input_is_one_line_and_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.bin");
    std::fs::write(&garbage, [0u8, 159, 146, 150, 0xff, b'\n', 0, 1]).unwrap();
    for path in [garbage.to_str().unwrap(), "/nonexistent/file.eml"] {
        let out = pecd(&["inspect", "--json", path]);
        assert_eq!(out.status.code(), Some(1), "{path}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{path}: {err}");
        assert!(err.starts_with("pecd: "), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn help_documents_the_exit_status() {
    let out = pecd(&["inspect", "--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for want in ["Exit status", "NOT intact", "trusted gestore", "not signed"] {
        assert!(help.contains(want), "{want}: {help}");
    }
}
