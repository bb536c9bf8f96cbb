//! Every generated message, built from fixed inputs, pinned byte for byte, and read back
//! by classification. Run with `UPDATE_GOLDEN=1` to rewrite the golden files after an
//! intended change (and review the diff).

mod common;

use std::path::PathBuf;

use common::{FakeSigner, all_messages};
use pec_proto::classify::classify;

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

#[test]
fn every_kind_matches_its_golden_file() {
    let signer = FakeSigner::new();
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut mismatches = Vec::new();
    for (name, _, bytes) in all_messages(&signer) {
        let path = golden_dir().join(format!("{name}.eml"));
        if update {
            std::fs::write(&path, &bytes).unwrap();
            continue;
        }
        let expected = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1)", path.display()));
        if expected != bytes {
            mismatches.push(name);
        }
    }
    assert!(mismatches.is_empty(), "differ from golden: {mismatches:?}");
}

#[test]
fn same_inputs_give_same_bytes() {
    let a = all_messages(&FakeSigner::new());
    let b = all_messages(&FakeSigner::new());
    assert_eq!(a, b);
}

#[test]
fn classification_finds_kind_and_exact_signed_bytes() {
    let signer = FakeSigner::new();
    let messages = all_messages(&signer);
    let signed = signer.signed.lock().unwrap().clone();
    assert_eq!(signed.len(), messages.len());
    for ((name, kind, bytes), content) in messages.iter().zip(signed) {
        let c = classify(bytes);
        assert_eq!(c.kind.as_str(), *kind, "{name}");
        let parts = c
            .signed
            .as_ref()
            .unwrap_or_else(|| panic!("{name}: not signed"));
        assert_eq!(parts.content, content, "{name}: signed bytes differ");
        assert_eq!(parts.p7s, b"FAKE CMS SIGNATURE", "{name}");
        assert!(
            bytes.windows(2).all(|w| w[1] != b'\n' || w[0] == b'\r'),
            "{name}: bare LF"
        );
        assert!(
            bytes.split(|&b| b == b'\n').all(|l| l.len() <= 998),
            "{name}: long line"
        );
    }
}

#[test]
fn daticert_of_every_message_is_read_back_and_valid_against_the_dtd() {
    let tx = common::transaction();
    let dtd = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("daticert.dtd");
    let dir = tempfile::tempdir().unwrap();
    for (name, kind, bytes) in all_messages(&FakeSigner::new()) {
        let c = classify(&bytes);
        assert!(c.problems.is_empty(), "{name}: {:?}", c.problems);
        if kind == "anomalia" {
            assert!(c.daticert.is_none(), "{name}");
            assert!(c.postacert.as_deref() == Some(common::ORDINARY), "{name}");
            continue;
        }
        let d = c.daticert.unwrap_or_else(|| panic!("{name}: no daticert"));
        assert_eq!(d.tipo.as_str(), kind, "{name}");
        assert_eq!(d.mittente, tx.mittente, "{name}");
        assert_eq!(d.destinatari, tx.destinatari, "{name}");
        assert_eq!(
            d.oggetto.as_deref(),
            Some("Fattura 12/2025 città"),
            "{name}"
        );
        assert_eq!(d.identificativo, common::PEC_MSGID, "{name}");
        assert_eq!(
            d.msgid.as_deref(),
            Some("<20250310.abc123@client.example>"),
            "{name}"
        );
        assert_eq!(d.gestore_emittente, "Alfa PEC (lab)", "{name}");
        assert_eq!(
            (
                d.data.giorno.as_str(),
                d.data.ora.as_str(),
                d.data.zona.as_str()
            ),
            ("10/03/2025", "10:30:15", "+0100"),
            "{name}"
        );
        let xml = dir.path().join(format!("{name}.xml"));
        std::fs::write(&xml, d.to_xml()).unwrap();
        let out = std::process::Command::new("xmllint")
            .args(["--noout", "--dtdvalid"])
            .arg(&dtd)
            .arg(&xml)
            .output()
            .expect("xmllint is required: apt-get install libxml2-utils");
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn postacert_and_variants_are_where_the_spec_wants_them() {
    let original_with_id =
        pec_proto::original::Original::parse(common::ORIGINAL).with_pec_msgid(common::PEC_MSGID);
    for (name, kind, bytes) in all_messages(&FakeSigner::new()) {
        let c = classify(&bytes);
        let expected_postacert = match name {
            "busta-trasporto" | "consegna-completa" => Some(original_with_id.clone()),
            "busta-anomalia" => Some(common::ORDINARY.to_vec()),
            "consegna-breve" => c.postacert.clone(),
            _ => None,
        };
        assert_eq!(c.postacert, expected_postacert, "{name}");
        let variant = c.consegna_variant.map(|v| v.as_str());
        match name {
            "consegna-completa" => assert_eq!(variant, Some("completa")),
            "consegna-breve" => assert_eq!(variant, Some("breve")),
            "consegna-sintetica" => assert_eq!(variant, Some("sintetica")),
            _ => assert_eq!(variant, None, "{name} ({kind})"),
        }
    }
}

#[test]
fn reply_to_never_becomes_a_receipt_destination() {
    use pec_proto::build::{self, Notice, Transaction};
    use pec_proto::original::Original;
    let raw = String::from_utf8_lossy(common::ORIGINAL).replacen(
        "Cc: ",
        "Reply-To: segreteria@posta.ordinaria.test\r\nCc: ",
        1,
    );
    let original = Original::parse(raw.as_bytes());
    let tx = Transaction::from_original(&original, common::PEC_MSGID, common::classify_domain);
    assert_eq!(tx.risposte, "segreteria@posta.ordinaria.test");
    let signer = FakeSigner::new();
    let e = common::emission(&signer, "id-1@pec.alfa.test");
    // The envelope keeps the user's Reply-To (copied) and adds none of its own.
    let envelope = build::transport_envelope(&e, &tx, &original).unwrap().bytes;
    let c = classify(&envelope);
    assert_eq!(
        c.daticert.unwrap().risposte,
        "segreteria@posta.ordinaria.test"
    );
    let text = String::from_utf8_lossy(&envelope);
    let header_block = &text[..text.find("\r\n\r\n").unwrap()];
    assert_eq!(
        header_block.matches("Reply-To:").count(),
        1,
        "{header_block}"
    );
    // Every user notice goes to the reverse path given, never to Reply-To.
    let reverse_path = "mario.rossi@pec.alfa.test";
    for n in [
        Notice::Accettazione,
        Notice::NonAccettazione { reason: "x" },
        Notice::Preavviso12h {
            recipient: "anna.bianchi@pec.beta.test",
        },
    ] {
        let bytes = build::notice(&e, &tx, &n, reverse_path).unwrap();
        let c = classify(&bytes);
        assert_eq!(c.headers.to.as_deref(), Some(reverse_path));
        let text = String::from_utf8_lossy(&bytes);
        let headers = &text[..text.find("\r\n\r\n").unwrap()];
        assert!(!headers.contains("segreteria@"), "{headers}");
    }
}
