//! `segnatura.xml`: the registration data an AOO attaches to a protocolled document it
//! sends to another AOO (AgID, Linee guida sul documento informatico, Allegato 6,
//! "Comunicazione tra AOO di Documenti Amministrativi Protocollati"). A protocol office's
//! registry event carries its main fields so the receiving registry need not parse it.
//!
//! Only what is read here is taken: the `Identificatore` of the sender's registration
//! (`CodiceAmministrazione`, `CodiceAOO`, `CodiceRegistro`, `NumeroRegistrazione`,
//! `DataRegistrazione`) and the `Oggetto` of the `Intestazione`, by local name (any
//! namespace prefix). The input is hostile: its size, nesting and each value are bounded,
//! and what is not a `Segnatura` document is none.

use quick_xml::Reader;
use quick_xml::events::Event;

/// Largest `segnatura.xml` read; real ones are a few kilobytes.
pub const MAX_LEN: usize = 1024 * 1024;

/// Deepest element nesting followed.
const MAX_DEPTH: usize = 64;

/// Longest value kept, in bytes of UTF-8 (longer ones are cut at a character boundary).
const MAX_VALUE: usize = 4096;

/// The main fields of a `segnatura.xml`, each as written (trimmed), when present.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Segnatura {
    /// `Identificatore/CodiceAmministrazione`: the sender's IPA code.
    pub codice_amministrazione: Option<String>,
    /// `Identificatore/CodiceAOO`: the sender's AOO.
    pub codice_aoo: Option<String>,
    /// `Identificatore/CodiceRegistro`: the sender's register.
    pub codice_registro: Option<String>,
    /// `Identificatore/NumeroRegistrazione`: the sender's protocol number.
    pub numero_registrazione: Option<String>,
    /// `Identificatore/DataRegistrazione`: the sender's registration date.
    pub data_registrazione: Option<String>,
    /// `Intestazione/Oggetto`: the subject registered.
    pub oggetto: Option<String>,
}

/// Whether an attachment named `name` is a segnatura (`Segnatura.xml`, any case).
pub fn is_segnatura_name(name: &str) -> bool {
    name.rsplit(['/', '\\'])
        .next()
        .is_some_and(|n| n.eq_ignore_ascii_case("segnatura.xml"))
}

/// The fields of `bytes` if it is a `Segnatura` document (UTF-8, undecodable bytes
/// replaced) no larger than [`MAX_LEN`]; `None` otherwise or when it is not well formed
/// up to its root's end.
pub fn parse(bytes: &[u8]) -> Option<Segnatura> {
    if bytes.len() > MAX_LEN {
        return None;
    }
    let text = String::from_utf8_lossy(bytes);
    let mut reader = Reader::from_str(&text);
    reader.config_mut().expand_empty_elements = true;
    let mut stack: Vec<String> = Vec::new();
    let mut value = String::new();
    let mut out = Segnatura::default();
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                if stack.is_empty() && name != "Segnatura" {
                    return None;
                }
                if stack.len() >= MAX_DEPTH {
                    return None;
                }
                stack.push(name);
                value.clear();
            }
            Event::Text(t) => push(&mut value, &t.xml10_content().ok()?),
            Event::CData(t) => push(&mut value, &t.xml10_content().ok()?),
            Event::GeneralRef(r) => {
                let name = String::from_utf8_lossy(r.as_ref()).into_owned();
                if let Ok(Some(c)) = r.resolve_char_ref() {
                    push(&mut value, &c.to_string());
                } else if let Some(v) = quick_xml::escape::resolve_predefined_entity(&name) {
                    push(&mut value, v);
                }
            }
            Event::End(_) => {
                let name = stack.pop()?;
                let parent = stack.last().map(String::as_str);
                let slot = match (parent, name.as_str()) {
                    (Some("Identificatore"), "CodiceAmministrazione") => {
                        &mut out.codice_amministrazione
                    }
                    (Some("Identificatore"), "CodiceAOO") => &mut out.codice_aoo,
                    (Some("Identificatore"), "CodiceRegistro") => &mut out.codice_registro,
                    (Some("Identificatore"), "NumeroRegistrazione") => {
                        &mut out.numero_registrazione
                    }
                    (Some("Identificatore"), "DataRegistrazione") => &mut out.data_registrazione,
                    (Some("Intestazione"), "Oggetto") => &mut out.oggetto,
                    _ => {
                        value.clear();
                        if stack.is_empty() {
                            return Some(out);
                        }
                        continue;
                    }
                };
                if slot.is_none() {
                    *slot = Some(value.trim().to_string());
                }
                value.clear();
            }
            Event::Eof => return None,
            Event::Empty(_)
            | Event::Comment(_)
            | Event::Decl(_)
            | Event::PI(_)
            | Event::DocType(_) => {}
        }
    }
}

/// Appends `s` to `value`, up to [`MAX_VALUE`] bytes.
fn push(value: &mut String, s: &str) {
    for c in s.chars() {
        if value.len() + c.len_utf8() > MAX_VALUE {
            return;
        }
        value.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Segnatura xmlns="http://www.agid.gov.it/protocollo/" versione="2021-03-12">
  <Intestazione>
    <Identificatore>
      <CodiceAmministrazione>c_b157</CodiceAmministrazione>
      <CodiceAOO>AOO_BS</CodiceAOO>
      <CodiceRegistro>PG</CodiceRegistro>
      <NumeroRegistrazione>0012345</NumeroRegistrazione>
      <DataRegistrazione>2026-11-30</DataRegistrazione>
    </Identificatore>
    <Oggetto>Richiesta &amp; parere</Oggetto>
  </Intestazione>
  <Descrizione><Documento nome="a.pdf"><Oggetto>altro</Oggetto></Documento></Descrizione>
</Segnatura>"#;

    #[test]
    fn reads_the_identificatore_and_the_subject() {
        let s = parse(EXAMPLE.as_bytes()).expect("a segnatura");
        assert_eq!(s.codice_amministrazione.as_deref(), Some("c_b157"));
        assert_eq!(s.codice_aoo.as_deref(), Some("AOO_BS"));
        assert_eq!(s.codice_registro.as_deref(), Some("PG"));
        assert_eq!(s.numero_registrazione.as_deref(), Some("0012345"));
        assert_eq!(s.data_registrazione.as_deref(), Some("2026-11-30"));
        assert_eq!(s.oggetto.as_deref(), Some("Richiesta & parere"));
    }

    #[test]
    fn prefixed_names_are_read_by_local_name() {
        let xml = r#"<p:Segnatura xmlns:p="http://www.agid.gov.it/protocollo/"><p:Intestazione>
            <p:Identificatore><p:NumeroRegistrazione>7</p:NumeroRegistrazione></p:Identificatore>
            </p:Intestazione></p:Segnatura>"#;
        assert_eq!(
            parse(xml.as_bytes()).and_then(|s| s.numero_registrazione),
            Some("7".into())
        );
    }

    #[test]
    fn other_documents_and_hostile_input_are_none() {
        assert_eq!(parse(b"<postacert/>"), None);
        assert_eq!(parse(b"not xml at all"), None);
        assert_eq!(parse(b"<Segnatura><Intestazione>"), None, "unterminated");
        let deep = format!("<Segnatura>{}", "<a>".repeat(MAX_DEPTH + 1));
        assert_eq!(parse(deep.as_bytes()), None);
        let big = vec![b' '; MAX_LEN + 1];
        assert_eq!(parse(&big), None);
        let long = format!(
            "<Segnatura><Intestazione><Oggetto>{}</Oggetto></Intestazione></Segnatura>",
            "x".repeat(MAX_VALUE * 2)
        );
        assert_eq!(
            parse(long.as_bytes())
                .and_then(|s| s.oggetto)
                .map(|o| o.len()),
            Some(MAX_VALUE)
        );
    }

    #[test]
    fn names_are_matched_whatever_the_case_and_path() {
        assert!(is_segnatura_name("Segnatura.xml"));
        assert!(is_segnatura_name("dir/SEGNATURA.XML"));
        assert!(!is_segnatura_name("segnatura.xml.p7m"));
    }
}
