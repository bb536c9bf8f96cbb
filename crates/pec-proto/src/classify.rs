//! Classification of any message given as bytes (spec §3.1, §5.4): what it is, its PEC
//! headers, its `daticert.xml` and `postacert.eml`, and the parts a signature covers.
//!
//! Reads what real gestori send: header name case variants, `application/x-pkcs7-signature`,
//! `micalg=sha1`, `Content-Transfer-Encoding: binary` on multiparts, LF-only files, extra
//! provider headers and parts. Never panics; what is wrong is listed in `problems`.

use mail_parser::{MessagePart, MimeHeaders, PartType};

use crate::bounded;
use crate::build::SUBJECT_PREFIXES;
use crate::daticert::{Daticert, Tipo, TipoRicevuta};
use crate::mime::{RawField, find_field, is_type, part_name, split_header, to_crlf};
use crate::smime::{SignatureReport, verify_detached};

/// What a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Busta di trasporto (`X-Trasporto: posta-certificata`).
    PostaCertificata,
    /// Busta di anomalia (`X-Trasporto: errore`).
    Anomalia,
    /// Ricevuta di accettazione.
    Accettazione,
    /// Avviso di non accettazione.
    NonAccettazione,
    /// Ricevuta di presa in carico.
    PresaInCarico,
    /// Ricevuta di avvenuta consegna.
    AvvenutaConsegna,
    /// Avviso di mancata consegna.
    ErroreConsegna,
    /// Avviso di mancata consegna per superamento dei tempi massimi.
    PreavvisoErroreConsegna,
    /// Avviso di rilevazione virus.
    RilevazioneVirus,
    /// Anything else: ordinary mail.
    Ordinaria,
}

impl Kind {
    /// The name used in reports (`pecd inspect --json`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::PostaCertificata => "posta-certificata",
            Kind::Anomalia => "anomalia",
            Kind::Ordinaria => "ordinaria",
            other => other.tipo().map_or("ordinaria", Tipo::as_str),
        }
    }

    /// The kind a daticert `tipo` certifies.
    pub fn from_tipo(tipo: Tipo) -> Kind {
        match tipo {
            Tipo::Accettazione => Kind::Accettazione,
            Tipo::NonAccettazione => Kind::NonAccettazione,
            Tipo::PresaInCarico => Kind::PresaInCarico,
            Tipo::AvvenutaConsegna => Kind::AvvenutaConsegna,
            Tipo::PostaCertificata => Kind::PostaCertificata,
            Tipo::ErroreConsegna => Kind::ErroreConsegna,
            Tipo::PreavvisoErroreConsegna => Kind::PreavvisoErroreConsegna,
            Tipo::RilevazioneVirus => Kind::RilevazioneVirus,
        }
    }

    /// The daticert `tipo` this kind carries (none for anomalies and ordinary mail).
    pub fn tipo(self) -> Option<Tipo> {
        Tipo::ALL.into_iter().find(|t| Kind::from_tipo(*t) == self)
    }

    /// Whether this is a receipt or avviso (has `X-Ricevuta`).
    pub fn is_receipt(self) -> bool {
        !matches!(
            self,
            Kind::PostaCertificata | Kind::Anomalia | Kind::Ordinaria
        )
    }
}

/// The PEC header fields of a message, unfolded and trimmed (names matched
/// case-insensitively).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PecHeaders {
    /// `X-Trasporto`.
    pub trasporto: Option<String>,
    /// `X-Ricevuta`.
    pub ricevuta: Option<String>,
    /// `X-VerificaSicurezza`.
    pub verifica_sicurezza: Option<String>,
    /// `X-TipoRicevuta`.
    pub tipo_ricevuta: Option<String>,
    /// `X-Riferimento-Message-ID`.
    pub riferimento_message_id: Option<String>,
    /// `X-Mittente`.
    pub mittente: Option<String>,
    /// `Subject`, decoded.
    pub subject: Option<String>,
    /// `From`, as written.
    pub from: Option<String>,
    /// `To`, as written.
    pub to: Option<String>,
    /// `Date`, as written.
    pub date: Option<String>,
    /// `Message-ID`, as written.
    pub message_id: Option<String>,
}

/// The two halves of a `multipart/signed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedParts {
    /// The exact bytes of the first part, CRLF-canonical: what the signature covers.
    pub content: Vec<u8>,
    /// The decoded `smime.p7s` (DER CMS SignedData).
    pub p7s: Vec<u8>,
}

/// Everything classification learns about a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classified {
    /// What the message is.
    pub kind: Kind,
    /// Its PEC headers.
    pub headers: PecHeaders,
    /// The signed content and signature, if it is a `multipart/signed`.
    pub signed: Option<SignedParts>,
    /// Its `daticert.xml`, when present and readable.
    pub daticert: Option<Daticert>,
    /// The raw `postacert.eml` (for an anomaly: the wrapped message).
    pub postacert: Option<Vec<u8>>,
    /// For a delivery receipt: the variant it is (by its parts).
    pub consegna_variant: Option<TipoRicevuta>,
    /// Formal problems (spec §5.4 step 8); empty for a well-formed PEC message.
    pub problems: Vec<String>,
}

impl Classified {
    /// Whether the message is a formally correct envelope or receipt (signature aside).
    pub fn is_well_formed(&self) -> bool {
        self.kind != Kind::Ordinaria && self.problems.is_empty()
    }

    /// Verifies the signature over the signed part, if there is one.
    pub fn verify_signature(&self) -> Option<SignatureReport> {
        self.signed
            .as_ref()
            .map(|s| verify_detached(&s.content, &s.p7s))
    }
}

/// Deepest MIME nesting looked at; deeper parts are ignored.
const MAX_DEPTH: usize = 32;

fn header(fields: &[RawField<'_>], name: &str) -> Option<String> {
    find_field(fields, name).map(|f| f.value())
}

/// Parts found while walking the MIME tree (not descending into attached messages).
#[derive(Default)]
struct Found {
    daticert: Option<Vec<u8>>,
    postacert: Option<Vec<u8>>,
    any_message: Option<Vec<u8>>,
    hash_parts: usize,
}

fn walk(parts: &[MessagePart<'_>], id: usize, raw: &[u8], found: &mut Found, depth: usize) {
    let Some(part) = parts.get(id) else { return };
    if depth > MAX_DEPTH {
        return;
    }
    match &part.body {
        PartType::Multipart(children) => {
            for &child in children {
                walk(parts, child as usize, raw, found, depth + 1);
            }
        }
        PartType::Message(_) => {
            let body = raw
                .get(part.offset_body as usize..part.offset_end as usize)
                .map(<[u8]>::to_vec);
            let named_postacert =
                part_name(part).is_some_and(|n| n.trim().eq_ignore_ascii_case("postacert.eml"));
            if named_postacert && found.postacert.is_none() {
                found.postacert = body;
            } else if found.any_message.is_none() {
                found.any_message = body;
            }
        }
        _ => {
            let name = part_name(part).map(str::trim);
            if name.is_some_and(|n| n.eq_ignore_ascii_case("daticert.xml"))
                || (name.is_none() && is_type(part, "application", &["xml"]))
            {
                if found.daticert.is_none() {
                    found.daticert = Some(part.contents().to_vec());
                }
            } else if name.is_some_and(|n| n.to_ascii_lowercase().ends_with(".hash")) {
                found.hash_parts += 1;
            } else if name.is_some_and(|n| n.trim().eq_ignore_ascii_case("postacert.eml"))
                && found.postacert.is_none()
            {
                // A postacert.eml not declared message/rfc822: keep its bytes anyway.
                found.postacert = Some(part.contents().to_vec());
            }
        }
    }
}

/// Classifies `raw`. Never panics, whatever the bytes.
pub fn classify(raw: &[u8]) -> Classified {
    let (fields, _) = split_header(raw);
    let mut problems = Vec::new();
    let parsed = bounded::parse(raw);
    if let Some(exceeded) = parsed.measure().exceeded {
        problems.push(format!(
            "MIME structure too complex ({exceeded}): read as one part"
        ));
    }
    let message = parsed.message();
    let headers = PecHeaders {
        trasporto: header(&fields, "X-Trasporto"),
        ricevuta: header(&fields, "X-Ricevuta"),
        verifica_sicurezza: header(&fields, "X-VerificaSicurezza"),
        tipo_ricevuta: header(&fields, "X-TipoRicevuta"),
        riferimento_message_id: header(&fields, "X-Riferimento-Message-ID"),
        mittente: header(&fields, "X-Mittente"),
        subject: message
            .and_then(|m| m.subject().map(str::to_string))
            .or_else(|| header(&fields, "Subject")),
        from: header(&fields, "From"),
        to: header(&fields, "To"),
        date: header(&fields, "Date"),
        message_id: header(&fields, "Message-ID"),
    };

    let kind = match (&headers.trasporto, &headers.ricevuta) {
        (Some(t), _) if t.eq_ignore_ascii_case("posta-certificata") => Kind::PostaCertificata,
        (Some(t), _) if t.eq_ignore_ascii_case("errore") => Kind::Anomalia,
        (Some(t), None) => {
            problems.push(format!("unknown X-Trasporto value {t:?}"));
            Kind::Ordinaria
        }
        (_, Some(r)) => match Tipo::parse(r) {
            Some(t) if t != Tipo::PostaCertificata => Kind::from_tipo(t),
            _ => {
                problems.push(format!("unknown X-Ricevuta value {r:?}"));
                Kind::Ordinaria
            }
        },
        (None, None) => Kind::Ordinaria,
    };

    let Some(message) = message else {
        problems.push("not a MIME message".into());
        return Classified {
            kind,
            headers,
            signed: None,
            daticert: None,
            postacert: None,
            consegna_variant: None,
            problems,
        };
    };
    let parts = &message.parts;

    let mut signed = None;
    if let Some(root) = parts.first() {
        if is_type(root, "multipart", &["signed"]) {
            let protocol_ok = root
                .content_type()
                .and_then(|c| c.attribute("protocol"))
                .is_some_and(|p| p.to_ascii_lowercase().contains("pkcs7-signature"));
            let children = match &root.body {
                PartType::Multipart(c) => c.as_slice(),
                _ => &[],
            };
            let first = children.first().and_then(|&c| parts.get(c as usize));
            let second = children.get(1).and_then(|&c| parts.get(c as usize));
            match (first, second) {
                (Some(content), Some(sig)) if protocol_ok => {
                    let bytes = raw
                        .get(content.offset_header as usize..content.offset_end as usize)
                        .unwrap_or_default();
                    signed = Some(SignedParts {
                        content: to_crlf(bytes).into_owned(),
                        p7s: sig.contents().to_vec(),
                    });
                }
                _ => problems.push("multipart/signed without a PKCS#7 signature part".into()),
            }
        } else if is_type(root, "application", &["pkcs7-mime", "x-pkcs7-mime"]) {
            problems.push("opaque S/MIME (application/pkcs7-mime) is not a PEC layout".into());
        }
    }

    let mut found = Found::default();
    // The signed part of a multipart/signed, or the whole message otherwise.
    let start = match (&signed, parts.first().map(|r| &r.body)) {
        (Some(_), Some(PartType::Multipart(c))) => c.first().map_or(0, |&c| c as usize),
        _ => 0,
    };
    walk(parts, start, raw, &mut found, 0);

    let daticert = match found.daticert.as_deref().map(Daticert::parse) {
        Some(Ok(d)) => Some(d),
        Some(Err(e)) => {
            problems.push(e.to_string());
            None
        }
        None => None,
    };
    let postacert = found.postacert.or(found.any_message);

    if kind != Kind::Ordinaria {
        check_form(
            kind,
            &headers,
            signed.is_some(),
            daticert.as_ref(),
            found.daticert.is_some(),
            postacert.is_some(),
            &mut problems,
        );
    }
    let consegna_variant = (kind == Kind::AvvenutaConsegna).then(|| {
        if postacert.is_none() {
            TipoRicevuta::Sintetica
        } else if found.hash_parts > 0 || postacert.as_deref().is_some_and(has_hash_part) {
            TipoRicevuta::Breve
        } else {
            TipoRicevuta::Completa
        }
    });

    Classified {
        kind,
        headers,
        signed,
        daticert,
        postacert,
        consegna_variant,
        problems,
    }
}

/// Whether an attached message contains a `.hash` part (a breve receipt's postacert).
fn has_hash_part(message: &[u8]) -> bool {
    bounded::parse(message).message().is_some_and(|m| {
        m.parts
            .iter()
            .any(|p| part_name(p).is_some_and(|n| n.trim().to_ascii_lowercase().ends_with(".hash")))
    })
}

/// The formal checks of spec §5.4 step 8 for a message that claims to be PEC.
fn check_form(
    kind: Kind,
    headers: &PecHeaders,
    signed: bool,
    daticert: Option<&Daticert>,
    daticert_present: bool,
    postacert: bool,
    problems: &mut Vec<String>,
) {
    if !signed {
        problems.push("not signed (no multipart/signed)".into());
    }
    let subject = headers.subject.as_deref().unwrap_or("");
    // About an original without a Subject the field is the bare prefix, which parsers
    // read without its trailing space.
    let prefix_kind = SUBJECT_PREFIXES
        .iter()
        .find(|(p, _)| subject.starts_with(p) || subject == p.trim_end())
        .map(|(_, k)| *k);
    if prefix_kind != Some(kind.as_str()) {
        problems.push(format!(
            "Subject does not start with the prefix of {}",
            kind.as_str()
        ));
    }
    match kind {
        Kind::Anomalia => {
            if daticert_present {
                problems.push("an anomaly envelope must not carry daticert.xml".into());
            }
            if !postacert {
                problems.push("anomaly envelope without the received message".into());
            }
        }
        _ => {
            match daticert {
                Some(d) if kind.tipo() != Some(d.tipo) => problems.push(format!(
                    "daticert.xml tipo {} does not match {}",
                    d.tipo.as_str(),
                    kind.as_str()
                )),
                Some(_) => {}
                None if !daticert_present => problems.push("no daticert.xml".into()),
                None => {}
            }
            if kind == Kind::PostaCertificata && !postacert {
                problems.push("transport envelope without postacert.eml".into());
            }
        }
    }
}
