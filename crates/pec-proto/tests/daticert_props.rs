//! Property tests: `parse(to_xml(d)) == d` for any valid value, and `parse` never panics.

use pec_proto::daticert::{
    Data, Daticert, Destinatario, Errore, Tipo, TipoDestinatario, TipoRicevuta,
};
use proptest::prelude::*;
use proptest::sample::{Index, select};

/// Text from a mix of ASCII, XML specials, allowed whitespace inside, and non-ASCII
/// (including U+0085 and U+2028, which XML 1.0 must not treat as line ends). Parsing
/// trims XML whitespace, so none is left at either end.
fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 .@_/;:#&<>\"'=°èàòùìÈ€—ß中文😀\\t\\n\\r\u{85}\u{2028}\u{a0}-]{0,24}"
        .prop_map(|s| s.trim_matches([' ', '\t', '\n', '\r']).to_string())
}

fn tipo_destinatario() -> impl Strategy<Value = TipoDestinatario> {
    prop_oneof![
        Just(TipoDestinatario::Certificato),
        Just(TipoDestinatario::Esterno)
    ]
}

fn data() -> impl Strategy<Value = Data> {
    (
        "[+-][0-9]{4}",
        "[0-3][0-9]/[01][0-9]/20[0-9]{2}",
        "[0-2][0-9]:[0-5][0-9]:[0-5][0-9]",
    )
        .prop_map(|(zona, giorno, ora)| Data { zona, giorno, ora })
}

fn daticert() -> impl Strategy<Value = Daticert> {
    let head = (
        select(Tipo::ALL.to_vec()),
        select(Errore::ALL.to_vec()),
        text(),
        prop::collection::vec(
            (text(), tipo_destinatario())
                .prop_map(|(indirizzo, tipo)| Destinatario { indirizzo, tipo }),
            1..5,
        ),
        text(),
        prop::option::of(text()),
    );
    let tail = (
        text(),
        data(),
        text(),
        prop::option::of(text()),
        prop::option::of(select(TipoRicevuta::ALL.to_vec())),
        prop::option::of(text()),
        prop::collection::vec(text(), 0..4),
        prop::option::of(text()),
    );
    (head, tail).prop_map(
        |(
            (tipo, errore, mittente, destinatari, risposte, oggetto),
            (
                gestore_emittente,
                data,
                identificativo,
                msgid,
                ricevuta,
                consegna,
                ricezione,
                errore_esteso,
            ),
        )| Daticert {
            tipo,
            errore,
            mittente,
            destinatari,
            risposte,
            oggetto,
            gestore_emittente,
            data,
            identificativo,
            msgid,
            ricevuta,
            consegna,
            ricezione,
            errore_esteso,
        },
    )
}

/// One edit of a document's bytes.
#[derive(Debug, Clone)]
enum Mutation {
    Delete(Index, usize),
    Insert(Index, Vec<u8>),
    Replace(Index, u8),
    Duplicate(Index, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), 1usize..40).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (
            any::<Index>(),
            prop_oneof![
                prop::collection::vec(any::<u8>(), 1..8),
                select(vec![
                    b"<".to_vec(),
                    b"</".to_vec(),
                    b"&".to_vec(),
                    b"&#0;".to_vec(),
                    b"&#x110000;".to_vec(),
                    b"&bogus;".to_vec(),
                    b"<![CDATA[".to_vec(),
                    b"<!--".to_vec(),
                    b"<x>".to_vec(),
                    b"\"".to_vec(),
                    b"\xEF\xBB\xBF".to_vec(),
                    b"\xFF\xFE".to_vec(),
                ]),
            ]
        )
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Replace(i, b)),
        (any::<Index>(), 1usize..60).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
    ]
}

fn apply(doc: &mut Vec<u8>, m: &Mutation) {
    let len = doc.len().max(1);
    match m {
        Mutation::Delete(i, n) => {
            let at = i.index(len).min(doc.len());
            let end = (at + n).min(doc.len());
            doc.drain(at..end);
        }
        Mutation::Insert(i, bytes) => {
            let at = i.index(len + 1).min(doc.len());
            doc.splice(at..at, bytes.iter().copied());
        }
        Mutation::Replace(i, b) => {
            if !doc.is_empty() {
                let at = i.index(doc.len());
                doc[at] = *b;
            }
        }
        Mutation::Duplicate(i, n) => {
            let at = i.index(len).min(doc.len());
            let end = (at + n).min(doc.len());
            let copy = doc[at..end].to_vec();
            doc.splice(end..end, copy);
        }
    }
}

/// Markup fragments, to reach deeper than random bytes do.
fn token() -> impl Strategy<Value = &'static str> {
    select(vec![
        "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>",
        "<?xml version=\"1.0\" encoding=\"UTF-16\"?>",
        "<!DOCTYPE postacert [<!ENTITY e \"x\">]>",
        "<postacert tipo=\"accettazione\">",
        "<postacert tipo=\"x\" errore=\"y\">",
        "</postacert>",
        "<intestazione>",
        "</intestazione>",
        "<dati>",
        "</dati>",
        "<mittente>",
        "</mittente>",
        "<destinatari tipo=\"esterno\">",
        "</destinatari>",
        "<risposte>",
        "</risposte>",
        "<data zona=\"+0100\">",
        "<data>",
        "</data>",
        "<giorno>",
        "</giorno>",
        "<ora>",
        "</ora>",
        "<identificativo>",
        "</identificativo>",
        "<gestore-emittente>",
        "</gestore-emittente>",
        "<ricevuta tipo=\"breve\"/>",
        "<ricezione/>",
        "a@b",
        " ",
        "&lt;",
        "&#233;",
        "&e;",
        "<![CDATA[x]]>",
        "<!-- c -->",
        "<",
        ">",
        "&",
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn to_xml_then_parse_is_identity(d in daticert()) {
        let xml = d.to_xml();
        prop_assert_eq!(Daticert::parse(xml.as_bytes()).ok(), Some(d), "{}", xml);
    }

    #[test]
    fn parse_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = Daticert::parse(&bytes);
    }

    #[test]
    fn parse_never_panics_on_mutated_documents(
        d in daticert(),
        mutations in prop::collection::vec(mutation(), 1..8),
    ) {
        let mut doc = d.to_xml().into_bytes();
        for m in &mutations {
            apply(&mut doc, m);
        }
        let _ = Daticert::parse(&doc);
    }

    #[test]
    fn parse_never_panics_on_markup_soup(tokens in prop::collection::vec(token(), 0..60)) {
        let _ = Daticert::parse(tokens.concat().as_bytes());
    }
}
