//! The unsigned outer header against the signed content (`outer::contradictions`): what
//! every builder emits and what real gestori send agrees; each rewrite a relay could make
//! to a captured message (Subject, From, Sender, Reply-To, To/Cc, Date, Message-ID, the
//! `X-` fields, a second copy of a field) is reported; the legitimate variations
//! (another RFC 2047 encoding, other folding, a missing optional field) are not.

mod common;

use common::{FakeSigner, all_messages};
use pec_proto::classify::classify;
use pec_proto::mime::split_header;
use pec_proto::outer::contradictions;

const SIGNER: &str = "posta-certificata@pec.alfa.test";

fn problems(bytes: &[u8]) -> Vec<String> {
    contradictions(&classify(bytes), bytes, Some(SIGNER))
}

fn message(name: &str) -> Vec<u8> {
    all_messages(&FakeSigner::new())
        .into_iter()
        .find(|m| m.0 == name)
        .unwrap_or_else(|| panic!("no {name}"))
        .2
}

/// `bytes` with the outer field `name` replaced by `line` (a whole field without its line
/// ending; `None` removes it).
fn with_field(bytes: &[u8], name: &str, line: Option<&str>) -> Vec<u8> {
    let (fields, _) = split_header(bytes);
    // The fields are contiguous from the first byte: the rest (blank line, body) follows.
    let header_len: usize = fields.iter().map(|f| f.bytes.len()).sum();
    let mut out = Vec::new();
    let mut replaced = false;
    for f in &fields {
        if f.name.eq_ignore_ascii_case(name) && !replaced {
            replaced = true;
            if let Some(l) = line {
                out.extend_from_slice(format!("{l}\r\n").as_bytes());
            }
        } else {
            out.extend_from_slice(f.bytes);
        }
    }
    assert!(replaced, "no {name} field");
    out.extend_from_slice(&bytes[header_len..]);
    out
}

fn added(bytes: &[u8], line: &str) -> Vec<u8> {
    let mut out = format!("{line}\r\n").into_bytes();
    out.extend_from_slice(bytes);
    out
}

fn reports(bytes: &[u8], what: &str) {
    let p = problems(bytes);
    assert!(
        p.iter().any(|x| x.contains(what)),
        "expected a problem about {what:?}, got {p:?}"
    );
}

#[test]
fn what_the_builders_emit_agrees_with_itself() {
    for (name, kind, bytes) in all_messages(&FakeSigner::new()) {
        let p = problems(&bytes);
        assert!(p.is_empty(), "{name} ({kind}): {p:?}");
        let lf = String::from_utf8_lossy(&bytes).replace("\r\n", "\n");
        assert_eq!(problems(lf.as_bytes()), p, "{name}: LF-only");
    }
}

#[test]
fn legitimate_variations_are_allowed() {
    let busta = message("busta-trasporto");
    for (field, line) in [
        // The same subject in another RFC 2047 encoding, folded elsewhere.
        (
            "Subject",
            Some("Subject: POSTA CERTIFICATA:\r\n =?ISO-8859-1?Q?Fattura_12/2025_citt=E0?="),
        ),
        // Header names in another case, extra spaces.
        (
            "From",
            Some(
                "FROM:   \"Per conto di:  mario.rossi@PEC.alfa.test\" <Posta-Certificata@pec.alfa.test>",
            ),
        ),
        // Optional fields absent (the real Namirial envelope has no X-TipoRicevuta).
        ("X-TipoRicevuta", None),
        ("X-Riferimento-Message-ID", None),
        ("Reply-To", None),
        // The same instant written in UTC.
        ("Date", Some("Date: Mon, 10 Mar 2025 09:30:15 +0000")),
    ] {
        let b = with_field(&busta, field, line);
        assert!(problems(&b).is_empty(), "{field}: {:?}", problems(&b));
    }
    // A receipt's From may carry a display name that names no other address.
    let consegna = message("consegna-completa");
    for line in [
        "From: \"Posta Certificata Alfa\" <posta-certificata@pec.alfa.test>",
        "From: \"posta-certificata@pec.alfa.test\" <posta-certificata@pec.alfa.test>",
    ] {
        let b = with_field(&consegna, "From", Some(line));
        assert!(problems(&b).is_empty(), "{line}: {:?}", problems(&b));
    }
    // A virus notice may use the plain prefix.
    let virus = message("errore-consegna-virus");
    let b = with_field(
        &virus,
        "Subject",
        Some("Subject: AVVISO DI MANCATA CONSEGNA: =?UTF-8?B?RmF0dHVyYSAxMi8yMDI1IGNpdHTDoA==?="),
    );
    assert!(problems(&b).is_empty(), "{:?}", problems(&b));
}

#[test]
fn rewritten_envelope_fields_are_reported() {
    let busta = message("busta-trasporto");
    for (field, line, what) in [
        (
            "Subject",
            "Subject: POSTA CERTIFICATA: URGENTE - nuovo IBAN",
            "Subject",
        ),
        (
            "Subject",
            "Subject: =?UTF-8?B?UE9TVEEgQ0VSVElGSUNBVEE6IFVSR0VOVEU=?=",
            "Subject",
        ),
        (
            "From",
            "From: \"Per conto di: direttore@pec.alfa.test\" <posta-certificata@pec.alfa.test>",
            "Per conto di: mario.rossi@pec.alfa.test",
        ),
        (
            "From",
            "From: \"Per conto di: mario.rossi@pec.alfa.test\" <posta-certificata@pec.evil.test>",
            "gestore firmatario",
        ),
        (
            "From",
            "From: direttore@pec.alfa.test, posta-certificata@pec.alfa.test",
            "esattamente un indirizzo",
        ),
        ("Reply-To", "Reply-To: <iban@evil.test>", "Reply-To"),
        (
            "To",
            "To: anna.bianchi@pec.beta.test, direttore@pec.beta.test",
            "To e Cc",
        ),
        ("Cc", "Cc: paolo@posta.ordinaria.test", "To e Cc"),
        ("Date", "Date: Tue, 11 Mar 2025 10:30:15 +0100", "Date"),
        ("Date", "Date: domani", "Date"),
        (
            "Message-ID",
            "Message-ID: <altro@pec.alfa.test>",
            "Message-ID",
        ),
        (
            "X-Riferimento-Message-ID",
            "X-Riferimento-Message-ID: <altro@client.example>",
            "X-Riferimento-Message-ID",
        ),
        (
            "X-TipoRicevuta",
            "X-TipoRicevuta: sintetica",
            "X-TipoRicevuta",
        ),
    ] {
        reports(&with_field(&busta, field, Some(line)), what);
    }
    reports(&with_field(&busta, "Date", None), "Date");
    reports(
        &added(&busta, "Subject: POSTA CERTIFICATA: URGENTE"),
        "Subject compare più volte",
    );
    reports(&added(&busta, "Sender: direttore@pec.alfa.test"), "Sender");
}

#[test]
fn rewritten_receipt_fields_are_reported() {
    let consegna = message("consegna-completa");
    reports(
        &with_field(
            &consegna,
            "Subject",
            Some("Subject: CONSEGNA: URGENTE - nuovo IBAN"),
        ),
        "Subject",
    );
    reports(
        &with_field(
            &consegna,
            "From",
            Some(
                "From: \"Per conto di: direttore@pec.alfa.test\" <posta-certificata@pec.alfa.test>",
            ),
        ),
        "nome del campo From",
    );
    reports(
        &with_field(
            &consegna,
            "From",
            Some("From: \"direttore@pec.alfa.test\" <posta-certificata@pec.alfa.test>"),
        ),
        "nome del campo From",
    );
    reports(
        &added(&consegna, "X-VerificaSicurezza: errore"),
        "X-VerificaSicurezza",
    );
    // A plain non-delivery notice must not claim a virus in its Subject.
    reports(
        &with_field(
            &message("errore-consegna-no-dest"),
            "Subject",
            Some(
                "Subject: AVVISO DI MANCATA CONSEGNA PER VIRUS: =?UTF-8?B?RmF0dHVyYSAxMi8yMDI1IGNpdHTDoA==?=",
            ),
        ),
        "Subject",
    );
    reports(
        &with_field(
            &message("rilevazione-virus"),
            "X-Mittente",
            Some("X-Mittente: <direttore@pec.alfa.test>"),
        ),
        "X-Mittente",
    );
    reports(
        &with_field(
            &message("presa-in-carico"),
            "Date",
            Some("Date: Mon, 10 Mar 2025 10:32:16 +0100"),
        ),
        "Date",
    );
    // A header written a second after the certified instant is the same date.
    let late = with_field(
        &message("presa-in-carico"),
        "Date",
        Some("Date: Mon, 10 Mar 2025 10:30:16 +0100"),
    );
    assert!(problems(&late).is_empty(), "{:?}", problems(&late));
}

#[test]
fn real_gestori_samples_agree() {
    let signer = Some("posta-certificata@fakepec.it");
    let acc = common::sample("accettazione.eml");
    assert_eq!(
        contradictions(&classify(&acc), &acc, signer),
        Vec::<String>::new()
    );
    // The anonymiser of this sample rewrote the domain of the client msgid in the header
    // (`@pec.it`) but not in daticert.xml (`@fakepec.it`), as it did for
    // `<destinatari>rec@pec.it` against `<consegna>rec@fakepec.it`; the acceptance of the
    // same transaction carries `@fakepec.it` in both. Everything else agrees.
    let err = common::sample("errore-consegna.eml");
    assert_eq!(
        contradictions(&classify(&err), &err, signer),
        vec!["il campo X-Riferimento-Message-ID non corrisponde al msgid certificato".to_string()]
    );
    let repaired = String::from_utf8_lossy(&err).replacen("A99AE@pec.it>", "A99AE@fakepec.it>", 1);
    assert_eq!(
        contradictions(&classify(repaired.as_bytes()), repaired.as_bytes(), signer),
        Vec::<String>::new()
    );
}

#[test]
fn messages_that_are_not_certified_have_nothing_to_compare() {
    let anomalia = message("busta-anomalia");
    assert!(problems(&anomalia).is_empty());
    assert!(problems(common::ORDINARY).is_empty());
    assert!(problems(b"").is_empty());
}
