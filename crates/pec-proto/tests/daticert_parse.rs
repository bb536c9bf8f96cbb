//! `Daticert::parse` on real provider files and on the deviations real gestori produce.

use base64::Engine;
use pec_proto::daticert::{
    Data, Daticert, Destinatario, Errore, Tipo, TipoDestinatario, TipoRicevuta,
};

/// The decoded `daticert.xml` part of a fixture message, found by plain text slicing:
/// the base64 block after the part's blank line, up to the next blank line.
fn daticert_of(fixture: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/samples/{fixture}",
        env!("CARGO_MANIFEST_DIR")
    );
    let eml = std::fs::read_to_string(&path).expect("read fixture");
    let eml = eml.replace("\r\n", "\n");
    let part = eml
        .find("filename=\"daticert.xml\"")
        .expect("fixture has a daticert.xml part");
    let rest = &eml[part..];
    let body_start = rest.find("\n\n").expect("part headers end") + 2;
    let body = &rest[body_start..];
    let body_end = body.find("\n\n").unwrap_or(body.len());
    let b64: String = body[..body_end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("valid base64")
}

fn certificato(addr: &str) -> Destinatario {
    Destinatario {
        indirizzo: addr.into(),
        tipo: TipoDestinatario::Certificato,
    }
}

#[test]
fn real_accettazione() {
    let d = Daticert::parse(&daticert_of("accettazione.eml")).expect("parse");
    assert_eq!(
        d,
        Daticert {
            tipo: Tipo::Accettazione,
            errore: Errore::Nessuno,
            mittente: "sender@fakepec.it".into(),
            destinatari: vec![certificato("rec@fakepec.it")],
            risposte: "sender@fakepec.it".into(),
            oggetto: Some("Test PEC".into()),
            gestore_emittente: "FAKEPEC PEC S.p.A.".into(),
            data: Data {
                zona: "+0100".into(),
                giorno: "15/11/2024".into(),
                ora: "18:20:38".into(),
            },
            identificativo: "opec210312.20241115182038.288127.606.1.53@fakepec.it".into(),
            msgid: Some("<SN05IE$951DEC16C1CFD3E4FD8FF1B1D24A99AE@fakepec.it>".into()),
            ricevuta: None,
            consegna: None,
            ricezione: vec![],
            errore_esteso: None,
        }
    );
}

#[test]
fn real_errore_consegna_with_stray_text() {
    let xml = daticert_of("errore-consegna.eml");
    assert!(
        String::from_utf8_lossy(&xml).contains("</risposte>a"),
        "the fixture's stray text is what this test is about"
    );
    let d = Daticert::parse(&xml).expect("parse");
    assert_eq!(
        d,
        Daticert {
            tipo: Tipo::ErroreConsegna,
            errore: Errore::NoDest,
            mittente: "sender@fakepec.it".into(),
            destinatari: vec![certificato("rec@pec.it")],
            risposte: "sender@fakepec.it".into(),
            oggetto: Some("Test PEC".into()),
            gestore_emittente: "FAKE PEC S.p.A.".into(),
            data: Data {
                zona: "+0100".into(),
                giorno: "15/11/2024".into(),
                ora: "18:21:03".into(),
            },
            identificativo: "opec210312.20241115182038.288127.606.1.53@fakepec.it".into(),
            msgid: Some("<SN05IE$951DEC16C1CFD3E4FD8FF1B1D24A99AE@fakepec.it>".into()),
            ricevuta: None,
            consegna: Some("rec@fakepec.it".into()),
            ricezione: vec![],
            errore_esteso: Some("5.1.1 - FAKE Pec S.p.A. - indirizzo non valido".into()),
        }
    );
    assert_eq!(
        d.data.to_datetime().map(|t| t.to_rfc3339()).as_deref(),
        Some("2024-11-15T18:21:03+01:00")
    );
}

/// The value every tolerance document below denotes.
fn expected() -> Daticert {
    Daticert {
        tipo: Tipo::AvvenutaConsegna,
        errore: Errore::Nessuno,
        mittente: "mario.rossi@pec.alfa.example".into(),
        destinatari: vec![
            certificato("anna.bianchi@pec.beta.example"),
            Destinatario {
                indirizzo: "paolo@mail.example.com".into(),
                tipo: TipoDestinatario::Esterno,
            },
        ],
        risposte: "mario.rossi@pec.alfa.example".into(),
        oggetto: Some("Fattura 12/2025".into()),
        gestore_emittente: "Beta PEC S.p.A.".into(),
        data: Data {
            zona: "+0100".into(),
            giorno: "10/03/2025".into(),
            ora: "10:30:18".into(),
        },
        identificativo: "opec101.20250310103015.4711.1.1@alfa.example".into(),
        msgid: Some("<20250310.abc123@client.example>".into()),
        ricevuta: Some(TipoRicevuta::Completa),
        consegna: Some("anna.bianchi@pec.beta.example".into()),
        ricezione: vec![],
        errore_esteso: None,
    }
}

#[test]
fn reordered_and_unknown_elements() {
    let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<postacert errore="nessuno" tipo="avvenuta-consegna">
  <extra><mittente-finto>no</mittente-finto></extra>
  <dati>
    <consegna>anna.bianchi@pec.beta.example</consegna>
    <ricevuta tipo="completa"></ricevuta>
    <msgid>&lt;20250310.abc123@client.example&gt;</msgid>
    <identificativo>opec101.20250310103015.4711.1.1@alfa.example</identificativo>
    <firma algoritmo="x">ignorata</firma>
    <data zona="+0100"><ora>10:30:18</ora><giorno>10/03/2025</giorno></data>
    <gestore-emittente>Beta PEC S.p.A.</gestore-emittente>
  </dati>
  <intestazione>
    <oggetto>Fattura 12/2025</oggetto>
    <risposte>mario.rossi@pec.alfa.example</risposte>
    <destinatari tipo="certificato">anna.bianchi@pec.beta.example</destinatari>
    <nota>sconosciuta</nota>
    <destinatari tipo="esterno">paolo@mail.example.com</destinatari>
    <mittente>mario.rossi@pec.alfa.example</mittente>
  </intestazione>
</postacert>
<!-- trailing comment --> trailing garbage < that is never read
"#;
    assert_eq!(Daticert::parse(xml.as_bytes()).unwrap(), expected());
}

#[test]
fn whitespace_doctype_comments_and_entities() {
    let xml = "\n\n   <?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
<!DOCTYPE postacert SYSTEM \"daticert.dtd\">\n\
<!-- a comment -->\n\
<postacert tipo=\" avvenuta-consegna \" errore=\"nessuno\">\n\
<intestazione>\n\
  <mittente>\n\t  mario.rossi@pec.alfa.example  \r\n</mittente>\n\
  <destinatari tipo=\" certificato \"> anna.bianchi@pec.beta.example </destinatari>\n\
  <destinatari tipo=\"esterno\">paolo@mail.example.com</destinatari> stray text\n\
  <risposte>mario.rossi&#64;pec.alfa.example</risposte>\n\
  <oggetto><![CDATA[Fattura]]> 12&#x2F;2025</oggetto>\n\
</intestazione>\n\
<dati>\n\
  <gestore-emittente>Beta PEC S.p.A.</gestore-emittente>\n\
  <data zona=\" +0100 \">\n    <giorno> 10/03/2025 </giorno>\n    <ora>10:30:18</ora>\n  </data>\n\
  <identificativo>opec101.20250310103015.4711.1.1@alfa.example</identificativo>\n\
  <msgid> &lt;20250310.abc123@client.example&gt; </msgid>\n\
  <ricevuta tipo=\"completa\"/>\n\
  <consegna>anna.bianchi@pec.beta.example</consegna>\n\
</dati>\n\
</postacert>\n";
    assert_eq!(Daticert::parse(xml.as_bytes()).unwrap(), expected());
}

#[test]
fn bom_and_mixed_case_names() {
    let xml = "\u{feff}<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
<PostaCert TIPO=\"Avvenuta-Consegna\" Errore=\"NESSUNO\">\
<Intestazione><MITTENTE>mario.rossi@pec.alfa.example</MITTENTE>\
<Destinatari Tipo=\"Certificato\">anna.bianchi@pec.beta.example</Destinatari>\
<DESTINATARI TIPO=\"ESTERNO\">paolo@mail.example.com</DESTINATARI>\
<Risposte>mario.rossi@pec.alfa.example</Risposte><Oggetto>Fattura 12/2025</Oggetto>\
</Intestazione><Dati><Gestore-Emittente>Beta PEC S.p.A.</Gestore-Emittente>\
<Data ZONA=\"+0100\"><Giorno>10/03/2025</Giorno><Ora>10:30:18</Ora></Data>\
<Identificativo>opec101.20250310103015.4711.1.1@alfa.example</Identificativo>\
<MsgId>&lt;20250310.abc123@client.example&gt;</MsgId>\
<Ricevuta Tipo=\"Completa\" /><Consegna>anna.bianchi@pec.beta.example</Consegna>\
</Dati></PostaCert>";
    let bytes = xml.as_bytes();
    assert_eq!(&bytes[..3], b"\xEF\xBB\xBF");
    assert_eq!(Daticert::parse(bytes).unwrap(), expected());
}

#[test]
fn namespace_prefixes_are_ignored() {
    let xml = expected()
        .to_xml()
        .replace("<postacert ", "<pc:postacert xmlns:pc=\"urn:x\" ")
        .replace("</postacert>", "</pc:postacert>")
        .replace("<mittente>", "<pc:mittente>")
        .replace("</mittente>", "</pc:mittente>");
    assert_eq!(Daticert::parse(xml.as_bytes()).unwrap(), expected());
}

#[test]
fn iso_8859_1_declared_document() {
    let mut want = expected();
    want.oggetto = Some("Perché è così".into());
    let utf8 = want
        .to_xml()
        .replace("encoding=\"UTF-8\"", "encoding=\"ISO-8859-1\"");
    // Re-encode by hand as Latin-1: every char here is below U+0100.
    let latin1: Vec<u8> = utf8
        .chars()
        .map(|c| u8::try_from(u32::from(c)).expect("Latin-1 char"))
        .collect();
    assert!(
        latin1.contains(&0xE8),
        "the document carries a raw 0xE8 (è)"
    );
    assert!(std::str::from_utf8(&latin1).is_err(), "not valid UTF-8");
    assert_eq!(Daticert::parse(&latin1).unwrap(), want);

    // Without the declaration the default is UTF-8: the same bytes give U+FFFD, not è.
    let mut raw = latin1.clone();
    let decl = b" encoding=\"ISO-8859-1\"";
    let decl_at = raw
        .windows(decl.len())
        .position(|w| w == decl)
        .expect("declaration");
    raw.drain(decl_at..decl_at + decl.len());
    let d = Daticert::parse(&raw).unwrap();
    assert_eq!(
        d.oggetto.as_deref(),
        Some("Perch\u{fffd} \u{fffd} cos\u{fffd}")
    );
}

#[test]
fn utf16_with_bom() {
    let want = expected();
    let mut bytes = vec![0xFF, 0xFE];
    for unit in want.to_xml().encode_utf16() {
        bytes.extend_from_slice(&unit.to_le_bytes());
    }
    assert_eq!(Daticert::parse(&bytes).unwrap(), want);
}
