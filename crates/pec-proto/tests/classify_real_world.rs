//! Classification of what real gestori send: the anonymized samples, LF-only files,
//! header case variants, `x-pkcs7-signature`, `binary` transfer encodings, extra parts;
//! and property tests that it never panics on arbitrary or mutated input.

mod common;

use common::{FakeSigner, all_messages};
use pec_proto::classify::{Kind, classify};
use pec_proto::daticert::{Errore, Tipo, TipoDestinatario};
use proptest::prelude::*;

#[test]
fn real_accettazione_sample() {
    let c = classify(&common::sample("accettazione.eml"));
    assert_eq!(c.kind, Kind::Accettazione);
    assert_eq!(c.headers.ricevuta.as_deref(), Some("accettazione"));
    assert_eq!(
        c.headers.riferimento_message_id.as_deref(),
        Some("<SN05IE$951DEC16C1CFD3E4FD8FF1B1D24A99AE@fakepec.it>")
    );
    let d = c.daticert.expect("daticert");
    assert_eq!(d.tipo, Tipo::Accettazione);
    assert_eq!(d.mittente, "sender@fakepec.it");
    assert_eq!(d.destinatari[0].indirizzo, "rec@fakepec.it");
    assert_eq!(d.destinatari[0].tipo, TipoDestinatario::Certificato);
    assert_eq!(d.gestore_emittente, "FAKEPEC PEC S.p.A.");
    assert_eq!(
        d.identificativo,
        "opec210312.20241115182038.288127.606.1.53@fakepec.it"
    );
    // The publisher removed the signature part: classification must say so.
    assert!(c.signed.is_none());
    assert!(
        c.problems.iter().any(|p| p.contains("signature")),
        "{:?}",
        c.problems
    );
}

#[test]
fn real_errore_consegna_sample() {
    let c = classify(&common::sample("errore-consegna.eml"));
    assert_eq!(c.kind, Kind::ErroreConsegna);
    let d = c.daticert.expect("daticert despite the stray text");
    assert_eq!(d.errore, Errore::NoDest);
    assert_eq!(d.consegna.as_deref(), Some("rec@fakepec.it"));
    assert_eq!(
        d.errore_esteso.as_deref(),
        Some("5.1.1 - FAKE Pec S.p.A. - indirizzo non valido")
    );
}

fn lf_only(bytes: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(bytes)
        .replace("\r\n", "\n")
        .into_bytes()
}

#[test]
fn lf_only_files_classify_like_crlf_ones() {
    for (name, kind, bytes) in all_messages(&FakeSigner::new()) {
        let crlf = classify(&bytes);
        let lf = classify(&lf_only(&bytes));
        assert_eq!(lf.kind.as_str(), kind, "{name}");
        assert_eq!(lf.daticert, crlf.daticert, "{name}");
        let (a, b) = (lf.signed.expect(name), crlf.signed.expect(name));
        assert_eq!(
            a.content, b.content,
            "{name}: canonical signed bytes differ"
        );
        assert_eq!(lf.problems, crlf.problems, "{name}");
    }
}

#[test]
fn variants_seen_in_real_traffic() {
    // (what we write, what a real gestore writes instead): each must be there to replace.
    let variants = [
        (
            "application/pkcs7-signature",
            "application/x-pkcs7-signature",
        ),
        ("micalg=sha-256", "micalg=\"sha1\""),
        ("X-Ricevuta:", "x-ricevuta:"),
        ("X-Trasporto:", "X-TRASPORTO:"),
        ("X-TipoRicevuta:", "X-Tiporicevuta:"),
        (
            "Content-Transfer-Encoding: 7bit\r\nMIME-Version: 1.0\r\n\r\n------=_mixed",
            "Content-Transfer-Encoding: binary\r\nMIME-Version: 1.0\r\n\r\n------=_mixed",
        ),
        // Without MIME-Version inside the signed part, as we wrote it before.
        (
            "MIME-Version: 1.0\r\n\r\n------=_mixed",
            "\r\n------=_mixed",
        ),
        (
            "MIME-Version: 1.0\r\n",
            "MIME-Version: 1.0\r\nX-Provider-Extra: 1\r\n",
        ),
    ];
    for (name, kind, bytes) in all_messages(&FakeSigner::new()) {
        let mut text = String::from_utf8_lossy(&bytes).into_owned();
        for (ours, theirs) in variants {
            if !text.contains(ours) {
                assert!(
                    ours.starts_with("X-T") || ours.starts_with("X-R"),
                    "{name}: {ours:?} not found"
                );
                continue;
            }
            text = text.replacen(ours, theirs, if ours.contains("pkcs7") { 2 } else { 1 });
        }
        let c = classify(text.as_bytes());
        assert_eq!(c.kind.as_str(), kind, "{name}");
        assert!(c.signed.is_some(), "{name}");
        assert!(c.problems.is_empty(), "{name}: {:?}", c.problems);
        if kind != "anomalia" {
            assert!(c.daticert.is_some(), "{name}");
        }
    }
}

#[test]
fn inconsistent_messages_are_flagged() {
    let messages = all_messages(&FakeSigner::new());
    let accettazione = &messages.iter().find(|m| m.0 == "accettazione").unwrap().2;
    // A header claiming another kind than daticert.xml.
    let lie = String::from_utf8_lossy(accettazione).replacen(
        "X-Ricevuta: accettazione",
        "X-Ricevuta: avvenuta-consegna",
        1,
    );
    let c = classify(lie.as_bytes());
    assert_eq!(c.kind, Kind::AvvenutaConsegna);
    assert!(!c.is_well_formed());
    assert!(
        c.problems.iter().any(|p| p.contains("tipo")),
        "{:?}",
        c.problems
    );
    // Ordinary mail is not PEC, whatever its text says.
    let c = classify(common::ORDINARY);
    assert_eq!(c.kind, Kind::Ordinaria);
    assert!(!c.is_well_formed());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn never_panics_on_arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let c = classify(&data);
        if let Some(s) = &c.signed {
            prop_assert!(s.content.len() <= data.len() * 2);
        }
        let _ = c.verify_signature();
    }

    #[test]
    fn never_panics_on_mutated_real_messages(
        which in 0usize..16,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..16),
    ) {
        let messages = all_messages(&FakeSigner::new());
        let mut bytes = messages[which % messages.len()].2.clone();
        for (at, byte, op) in edits {
            if bytes.is_empty() { break; }
            let i = at.index(bytes.len());
            match op {
                0 => bytes[i] = byte,
                1 => { bytes.remove(i); }
                _ => bytes.insert(i, byte),
            }
        }
        let c = classify(&bytes);
        // A message still claiming to be PEC is either well formed or says why not.
        prop_assert!(c.kind == Kind::Ordinaria || c.is_well_formed() || !c.problems.is_empty());
        let _ = c.verify_signature();
    }
}
