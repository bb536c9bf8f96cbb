//! `daticert.xml`, the certification data of every PEC message (spec §4).
//!
//! [`Daticert`] models the whole DTD of §4.2. [`Daticert::to_xml`] writes a document that
//! is valid against that DTD with elements in DTD order; [`Daticert::parse`] reads what real
//! gestori send (whitespace, stray text, unknown elements, any element order, a declared
//! encoding other than UTF-8).

use std::borrow::Cow;

use chrono::{DateTime, FixedOffset};
use quick_xml::Reader;
use quick_xml::events::{BytesRef, BytesStart, Event};

use crate::Error;

/// The DTD of `daticert.xml` (spec §4.2), verbatim with the digest's comments.
///
/// Real files carry no DOCTYPE, so the DTD is not referenced by what we emit; it is kept
/// here so that tests and operators can validate documents against it (for example
/// `xmllint --dtdvalid`) and so that the rules [`Daticert::to_xml`] follows are in one place.
pub const DTD: &str = include_str!("../daticert.dtd");

/// The `tipo` attribute of `<postacert>`: which PEC message this document certifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tipo {
    /// Ricevuta di accettazione.
    Accettazione,
    /// Avviso di non accettazione (formal errors or virus).
    NonAccettazione,
    /// Ricevuta di presa in carico.
    PresaInCarico,
    /// Ricevuta di avvenuta consegna (completa, breve or sintetica).
    AvvenutaConsegna,
    /// Busta di trasporto.
    PostaCertificata,
    /// Avviso di mancata consegna.
    ErroreConsegna,
    /// Avviso di mancata consegna per superamento dei tempi massimi (12 h and 24 h).
    PreavvisoErroreConsegna,
    /// Avviso di rilevazione virus.
    RilevazioneVirus,
}

impl Tipo {
    /// Every value, in DTD order.
    pub const ALL: [Tipo; 8] = [
        Tipo::Accettazione,
        Tipo::NonAccettazione,
        Tipo::PresaInCarico,
        Tipo::AvvenutaConsegna,
        Tipo::PostaCertificata,
        Tipo::ErroreConsegna,
        Tipo::PreavvisoErroreConsegna,
        Tipo::RilevazioneVirus,
    ];

    /// The wire literal, also the value of `X-Ricevuta` for receipts.
    pub fn as_str(self) -> &'static str {
        match self {
            Tipo::Accettazione => "accettazione",
            Tipo::NonAccettazione => "non-accettazione",
            Tipo::PresaInCarico => "presa-in-carico",
            Tipo::AvvenutaConsegna => "avvenuta-consegna",
            Tipo::PostaCertificata => "posta-certificata",
            Tipo::ErroreConsegna => "errore-consegna",
            Tipo::PreavvisoErroreConsegna => "preavviso-errore-consegna",
            Tipo::RilevazioneVirus => "rilevazione-virus",
        }
    }

    /// Reads a wire literal, ignoring case and surrounding whitespace.
    pub fn parse(s: &str) -> Option<Tipo> {
        let s = s.trim();
        Tipo::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s))
    }
}

/// The `errore` attribute of `<postacert>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Errore {
    /// No error (the DTD default).
    #[default]
    Nessuno,
    /// Unknown mailbox.
    NoDest,
    /// Unknown domain.
    NoDominio,
    /// Virus.
    Virus,
    /// Any other error, described in `<errore-esteso>`.
    Altro,
}

impl Errore {
    /// Every value, in DTD order.
    pub const ALL: [Errore; 5] = [
        Errore::Nessuno,
        Errore::NoDest,
        Errore::NoDominio,
        Errore::Virus,
        Errore::Altro,
    ];

    /// The wire literal.
    pub fn as_str(self) -> &'static str {
        match self {
            Errore::Nessuno => "nessuno",
            Errore::NoDest => "no-dest",
            Errore::NoDominio => "no-dominio",
            Errore::Virus => "virus",
            Errore::Altro => "altro",
        }
    }

    /// Reads a wire literal, ignoring case and surrounding whitespace.
    pub fn parse(s: &str) -> Option<Errore> {
        let s = s.trim();
        Errore::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s))
    }
}

/// Whether a recipient is in a PEC domain (`certificato`) or not (`esterno`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TipoDestinatario {
    /// The domain is in some provider's `managedDomains` (the DTD default).
    #[default]
    Certificato,
    /// An ordinary mail domain.
    Esterno,
}

impl TipoDestinatario {
    /// The wire literal.
    pub fn as_str(self) -> &'static str {
        match self {
            TipoDestinatario::Certificato => "certificato",
            TipoDestinatario::Esterno => "esterno",
        }
    }

    /// Reads a wire literal, ignoring case and surrounding whitespace.
    pub fn parse(s: &str) -> Option<TipoDestinatario> {
        match s.trim().to_ascii_lowercase().as_str() {
            "certificato" => Some(TipoDestinatario::Certificato),
            "esterno" => Some(TipoDestinatario::Esterno),
            _ => None,
        }
    }
}

/// The delivery receipt variant requested by the sender (`X-TipoRicevuta`, `<ricevuta tipo>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TipoRicevuta {
    /// Full copy of the original (the default).
    #[default]
    Completa,
    /// The original with attachments replaced by their SHA-1 hashes.
    Breve,
    /// Certification data only.
    Sintetica,
}

impl TipoRicevuta {
    /// Every value.
    pub const ALL: [TipoRicevuta; 3] = [
        TipoRicevuta::Completa,
        TipoRicevuta::Breve,
        TipoRicevuta::Sintetica,
    ];

    /// The wire literal.
    pub fn as_str(self) -> &'static str {
        match self {
            TipoRicevuta::Completa => "completa",
            TipoRicevuta::Breve => "breve",
            TipoRicevuta::Sintetica => "sintetica",
        }
    }

    /// Reads a wire literal, ignoring case and surrounding whitespace.
    pub fn parse(s: &str) -> Option<TipoRicevuta> {
        let s = s.trim();
        TipoRicevuta::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s))
    }
}

/// One `<destinatari>` element: a To or Cc address of the original and its kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Destinatario {
    /// The bare address.
    pub indirizzo: String,
    /// PEC or ordinary.
    pub tipo: TipoDestinatario,
}

/// The `<data>` element: the event's single temporal reference in Italian legal time.
///
/// Kept as the strings read, so that what a foreign gestore wrote is reported as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Data {
    /// Offset from UTC, `+hhmm` or `-hhmm`.
    pub zona: String,
    /// `dd/mm/yyyy`.
    pub giorno: String,
    /// `hh:mm:ss`.
    pub ora: String,
}

impl Data {
    /// The fields for a given local time (its offset becomes `zona`).
    pub fn from_datetime(t: &DateTime<FixedOffset>) -> Data {
        Data {
            zona: t.format("%z").to_string(),
            giorno: t.format("%d/%m/%Y").to_string(),
            ora: t.format("%H:%M:%S").to_string(),
        }
    }

    /// The time these fields denote, if they are well formed.
    pub fn to_datetime(&self) -> Option<DateTime<FixedOffset>> {
        let s = format!(
            "{} {} {}",
            self.giorno.trim(),
            self.ora.trim(),
            self.zona.trim()
        );
        DateTime::parse_from_str(&s, "%d/%m/%Y %H:%M:%S %z").ok()
    }
}

/// A whole `daticert.xml` document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Daticert {
    /// `postacert@tipo`.
    pub tipo: Tipo,
    /// `postacert@errore`.
    pub errore: Errore,
    /// `<mittente>`: the sender of the original.
    pub mittente: String,
    /// `<destinatari>`: every To and Cc address of the original (at least one).
    pub destinatari: Vec<Destinatario>,
    /// `<risposte>`: the Reply-To of the original, else the sender.
    pub risposte: String,
    /// `<oggetto>`: the Subject of the original, if it had one.
    pub oggetto: Option<String>,
    /// `<gestore-emittente>`: the name of the gestore issuing this message.
    pub gestore_emittente: String,
    /// `<data>`.
    pub data: Data,
    /// `<identificativo>`: the PEC msgid, without angle brackets.
    pub identificativo: String,
    /// `<msgid>`: the client's original Message-ID, with angle brackets.
    pub msgid: Option<String>,
    /// `<ricevuta tipo>`: the receipt variant requested by the sender.
    pub ricevuta: Option<TipoRicevuta>,
    /// `<consegna>`: the recipient a delivery, non-delivery, virus or timeout notice is about.
    pub consegna: Option<String>,
    /// `<ricezione>`: the recipients a presa in carico covers.
    pub ricezione: Vec<String>,
    /// `<errore-esteso>`: a short description of the error.
    pub errore_esteso: Option<String>,
}

/// Largest document [`Daticert::parse`] accepts. Real files are a few kilobytes; a limit
/// keeps memory bounded whatever a peer sends.
pub const MAX_XML_LEN: usize = 4 * 1024 * 1024;

/// Deepest element nesting [`Daticert::parse`] follows (the DTD needs 3 levels).
const MAX_DEPTH: usize = 64;

/// How far into the input the XML declaration is looked for.
const DECL_WINDOW: usize = 512;

fn daticert_error(msg: impl Into<String>) -> Error {
    Error::Daticert(msg.into())
}

impl Daticert {
    /// Writes the document as a gestore must emit it (spec §4.2–§4.4).
    ///
    /// Elements follow DTD order, with the indentation and line breaks of the §4.4
    /// examples; `errore` and `destinatari@tipo` are always written. Text and attribute
    /// values are escaped; characters XML 1.0 forbids (control characters other than tab,
    /// LF and CR, U+FFFE, U+FFFF) are replaced by U+FFFD so the output is always
    /// well formed. A carriage return is written as `&#13;` so that it survives the
    /// line-end normalisation of XML parsers. The result is the same bytes for the same
    /// value.
    pub fn to_xml(&self) -> String {
        let mut out = String::with_capacity(1024);
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        out.push_str("<postacert tipo=\"");
        out.push_str(self.tipo.as_str());
        out.push_str("\" errore=\"");
        out.push_str(self.errore.as_str());
        out.push_str("\">\n");

        out.push_str("    <intestazione>\n");
        push_leaf(&mut out, 2, "mittente", &self.mittente);
        for d in &self.destinatari {
            push_indent(&mut out, 2);
            out.push_str("<destinatari tipo=\"");
            out.push_str(d.tipo.as_str());
            out.push_str("\">");
            push_escaped(&mut out, &d.indirizzo, false);
            out.push_str("</destinatari>\n");
        }
        push_leaf(&mut out, 2, "risposte", &self.risposte);
        if let Some(oggetto) = &self.oggetto {
            push_leaf(&mut out, 2, "oggetto", oggetto);
        }
        out.push_str("    </intestazione>\n");

        out.push_str("    <dati>\n");
        push_leaf(&mut out, 2, "gestore-emittente", &self.gestore_emittente);
        push_indent(&mut out, 2);
        out.push_str("<data zona=\"");
        push_escaped(&mut out, &self.data.zona, true);
        out.push_str("\">\n");
        push_leaf(&mut out, 3, "giorno", &self.data.giorno);
        push_leaf(&mut out, 3, "ora", &self.data.ora);
        push_indent(&mut out, 2);
        out.push_str("</data>\n");
        push_leaf(&mut out, 2, "identificativo", &self.identificativo);
        if let Some(msgid) = &self.msgid {
            push_leaf(&mut out, 2, "msgid", msgid);
        }
        if let Some(ricevuta) = self.ricevuta {
            push_indent(&mut out, 2);
            out.push_str("<ricevuta tipo=\"");
            out.push_str(ricevuta.as_str());
            out.push_str("\" />\n");
        }
        if let Some(consegna) = &self.consegna {
            push_leaf(&mut out, 2, "consegna", consegna);
        }
        for r in &self.ricezione {
            push_leaf(&mut out, 2, "ricezione", r);
        }
        if let Some(e) = &self.errore_esteso {
            push_leaf(&mut out, 2, "errore-esteso", e);
        }
        out.push_str("    </dati>\n");
        out.push_str("</postacert>\n");
        out
    }

    /// Reads a `daticert.xml` as real gestori send it.
    ///
    /// Tolerated: a BOM or whitespace before the declaration, a declared encoding other
    /// than UTF-8 (decoded accordingly, e.g. `ISO-8859-1`), a DOCTYPE, comments, stray
    /// text between elements, unknown elements (ignored), any element order, element and
    /// attribute names in any case or with a namespace prefix, surrounding whitespace in
    /// text (trimmed), character and predefined entity references. For single-valued
    /// elements the first occurrence wins. An unknown or absent `errore` becomes
    /// [`Errore::Altro`] or [`Errore::Nessuno`]; an unknown or absent `destinatari@tipo`
    /// becomes [`TipoDestinatario::Certificato`] (the DTD default); a `<ricevuta>` with an
    /// unknown or absent `tipo` becomes [`TipoRicevuta::Completa`] (the default receipt).
    ///
    /// Errors ([`Error::Daticert`]): input larger than [`MAX_XML_LEN`], malformed XML
    /// before `</postacert>`, a root element other than `postacert`, a missing or unknown
    /// `tipo`, and any element the DTD requires being absent (`mittente`, `destinatari`,
    /// `risposte`, `gestore-emittente`, `data` with `zona`, `giorno` and `ora`,
    /// `identificativo`). Work is linear in the input and never recursive.
    pub fn parse(input: &[u8]) -> crate::Result<Daticert> {
        if input.len() > MAX_XML_LEN {
            return Err(daticert_error(format!(
                "document is {} bytes, more than the {MAX_XML_LEN} accepted",
                input.len()
            )));
        }
        let text = decode_document(input);
        let text = text.trim_start_matches(|c: char| c == '\u{feff}' || is_xml_space(c));
        let mut parser = Parser::default();
        parser.run(text)?;
        parser.finish()
    }
}

/// XML whitespace (production `S`), the only characters trimmed from text.
fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// Whether XML 1.0 allows `c` in a document (production `Char`).
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

fn push_indent(out: &mut String, level: usize) {
    for _ in 0..level {
        out.push_str("    ");
    }
}

fn push_leaf(out: &mut String, level: usize, name: &str, value: &str) {
    push_indent(out, level);
    out.push('<');
    out.push_str(name);
    out.push('>');
    push_escaped(out, value, false);
    out.push_str("</");
    out.push_str(name);
    out.push_str(">\n");
}

/// Escapes `value` for text (`attr == false`) or a double-quoted attribute value.
fn push_escaped(out: &mut String, value: &str, attr: bool) {
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\r' => out.push_str("&#13;"),
            '\n' if attr => out.push_str("&#10;"),
            '\t' if attr => out.push_str("&#9;"),
            c if is_xml_char(c) => out.push(c),
            _ => out.push('\u{FFFD}'),
        }
    }
}

/// Decodes the input to text: a BOM wins, then the encoding declared in the XML
/// declaration, then UTF-8. Undecodable bytes become U+FFFD.
fn decode_document(input: &[u8]) -> Cow<'_, str> {
    if let Some((encoding, bom_len)) = encoding_rs::Encoding::for_bom(input) {
        let body = input.get(bom_len..).unwrap_or_default();
        return encoding.decode_without_bom_handling(body).0;
    }
    let encoding = declared_encoding(input)
        .and_then(encoding_rs::Encoding::for_label)
        // The declaration was readable as ASCII, so the document cannot really be UTF-16;
        // and the "replacement" encoding would throw the whole document away.
        .filter(|e| {
            *e != encoding_rs::UTF_16LE
                && *e != encoding_rs::UTF_16BE
                && *e != encoding_rs::REPLACEMENT
        })
        .unwrap_or(encoding_rs::UTF_8);
    encoding.decode_without_bom_handling(input).0
}

/// The value of `encoding="..."` in a leading `<?xml ...?>` declaration, if any.
fn declared_encoding(input: &[u8]) -> Option<&[u8]> {
    let start = input.iter().position(|b| !b.is_ascii_whitespace())?;
    let rest = input.get(start..)?;
    let rest = rest.get(..rest.len().min(DECL_WINDOW))?;
    if !rest.starts_with(b"<?xml") {
        return None;
    }
    let end = rest.windows(2).position(|w| w == b"?>")?;
    let decl = rest.get(..end)?;
    let key = decl
        .windows(8)
        .position(|w| w.eq_ignore_ascii_case(b"encoding"))?;
    let mut after = decl.get(key + 8..)?;
    after = trim_ascii_start(after);
    after = after.strip_prefix(b"=")?;
    after = trim_ascii_start(after);
    let (&quote, value) = after.split_first()?;
    if quote != b'"' && quote != b'\'' {
        return None;
    }
    let len = value.iter().position(|&b| b == quote)?;
    value.get(..len)
}

fn trim_ascii_start(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|c| c.is_ascii_whitespace()).count();
    b.get(n..).unwrap_or_default()
}

/// The elements [`Daticert::parse`] knows; anything else is [`Field::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Postacert,
    Mittente,
    Destinatari,
    Risposte,
    Oggetto,
    GestoreEmittente,
    Data,
    Giorno,
    Ora,
    Identificativo,
    Msgid,
    Ricevuta,
    Consegna,
    Ricezione,
    ErroreEsteso,
    Other,
}

impl Field {
    fn from_name(lower_local_name: &[u8]) -> Field {
        match lower_local_name {
            b"postacert" => Field::Postacert,
            b"mittente" => Field::Mittente,
            b"destinatari" => Field::Destinatari,
            b"risposte" => Field::Risposte,
            b"oggetto" => Field::Oggetto,
            b"gestore-emittente" => Field::GestoreEmittente,
            b"data" => Field::Data,
            b"giorno" => Field::Giorno,
            b"ora" => Field::Ora,
            b"identificativo" => Field::Identificativo,
            b"msgid" => Field::Msgid,
            b"ricevuta" => Field::Ricevuta,
            b"consegna" => Field::Consegna,
            b"ricezione" => Field::Ricezione,
            b"errore-esteso" => Field::ErroreEsteso,
            _ => Field::Other,
        }
    }

    /// Whether the text content of this element is a value of the model.
    fn has_text(self) -> bool {
        !matches!(
            self,
            Field::Postacert | Field::Data | Field::Ricevuta | Field::Other
        )
    }
}

/// One open element.
struct Open {
    field: Field,
    /// Lower-cased local name, to match the end tag.
    name: Vec<u8>,
    text: String,
    /// `destinatari@tipo`, read at the start tag.
    tipo_destinatario: TipoDestinatario,
}

/// The state of one [`Daticert::parse`] run: what has been read so far.
#[derive(Default)]
struct Parser {
    stack: Vec<Open>,
    root_seen: bool,
    root_closed: bool,
    tipo: Option<Tipo>,
    errore: Errore,
    mittente: Option<String>,
    destinatari: Vec<Destinatario>,
    risposte: Option<String>,
    oggetto: Option<String>,
    gestore_emittente: Option<String>,
    zona: Option<String>,
    data_seen: bool,
    giorno: Option<String>,
    ora: Option<String>,
    identificativo: Option<String>,
    msgid: Option<String>,
    ricevuta: Option<TipoRicevuta>,
    consegna: Option<String>,
    ricezione: Vec<String>,
    errore_esteso: Option<String>,
}

fn lower_local_name(e: &BytesStart<'_>) -> Vec<u8> {
    e.local_name().as_ref().to_ascii_lowercase()
}

fn set_first(slot: &mut Option<String>, value: String) {
    if slot.is_none() {
        *slot = Some(value);
    }
}

impl Parser {
    fn run(&mut self, text: &str) -> crate::Result<()> {
        let mut reader = Reader::from_str(text);
        let config = reader.config_mut();
        config.check_end_names = false;
        config.allow_unmatched_ends = true;
        config.allow_dangling_amp = true;
        config.check_comments = false;
        config.expand_empty_elements = false;
        config.trim_markup_names_in_closing_tags = true;
        let decoder = reader.decoder();

        while !self.root_closed {
            let event = reader.read_event().map_err(|e| {
                daticert_error(format!(
                    "malformed XML at byte {}: {e}",
                    reader.error_position()
                ))
            })?;
            match event {
                Event::Start(e) => self.open(&e, decoder)?,
                Event::Empty(e) => {
                    self.open(&e, decoder)?;
                    self.close_top();
                }
                Event::End(e) => {
                    let name = e.local_name().as_ref().to_ascii_lowercase();
                    if let Some(pos) = self.stack.iter().rposition(|o| o.name == name) {
                        while self.stack.len() > pos {
                            self.close_top();
                        }
                    }
                }
                Event::Text(t) => {
                    if let Ok(s) = t.xml10_content() {
                        self.push_text(&s);
                    }
                }
                Event::CData(t) => {
                    if let Ok(s) = t.xml10_content() {
                        self.push_text(&s);
                    }
                }
                Event::GeneralRef(r) => self.push_reference(&r),
                Event::Eof => {
                    return Err(daticert_error(if self.root_seen {
                        "document ends before </postacert>"
                    } else {
                        "no <postacert> root element"
                    }));
                }
                Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
            }
        }
        Ok(())
    }

    fn open(
        &mut self,
        e: &BytesStart<'_>,
        decoder: quick_xml::encoding::Decoder,
    ) -> crate::Result<()> {
        let name = lower_local_name(e);
        let mut field = Field::from_name(&name);
        if !self.root_seen {
            if field != Field::Postacert {
                return Err(daticert_error(format!(
                    "root element is <{}>, expected <postacert>",
                    String::from_utf8_lossy(&name)
                )));
            }
            self.root_seen = true;
            self.read_root_attributes(e, decoder)?;
        } else if field == Field::Postacert {
            field = Field::Other;
        }
        if self.stack.len() >= MAX_DEPTH {
            return Err(daticert_error(format!(
                "elements nested more than {MAX_DEPTH} deep"
            )));
        }
        let mut tipo_destinatario = TipoDestinatario::Certificato;
        match field {
            Field::Destinatari => {
                tipo_destinatario = attribute(e, b"tipo", decoder)
                    .and_then(|v| TipoDestinatario::parse(&v))
                    .unwrap_or_default();
            }
            Field::Ricevuta if self.ricevuta.is_none() => {
                let tipo = attribute(e, b"tipo", decoder)
                    .and_then(|v| TipoRicevuta::parse(&v))
                    .unwrap_or_default();
                self.ricevuta = Some(tipo);
            }
            Field::Data => {
                self.data_seen = true;
                if self.zona.is_none() {
                    self.zona = attribute(e, b"zona", decoder)
                        .map(|v| v.trim_matches(is_xml_space).to_string());
                }
            }
            _ => {}
        }
        self.stack.push(Open {
            field,
            name,
            text: String::new(),
            tipo_destinatario,
        });
        Ok(())
    }

    fn read_root_attributes(
        &mut self,
        e: &BytesStart<'_>,
        decoder: quick_xml::encoding::Decoder,
    ) -> crate::Result<()> {
        let tipo = attribute(e, b"tipo", decoder)
            .ok_or_else(|| daticert_error("<postacert> has no tipo attribute"))?;
        self.tipo =
            Some(Tipo::parse(&tipo).ok_or_else(|| {
                daticert_error(format!("unknown postacert tipo {:?}", tipo.trim()))
            })?);
        self.errore = match attribute(e, b"errore", decoder) {
            None => Errore::Nessuno,
            Some(v) => Errore::parse(&v).unwrap_or(Errore::Altro),
        };
        Ok(())
    }

    fn push_text(&mut self, s: &str) {
        if let Some(top) = self.stack.last_mut()
            && top.field.has_text()
        {
            top.text.push_str(s);
        }
    }

    fn push_reference(&mut self, r: &BytesRef<'_>) {
        let resolved: Cow<'_, str> = match r.resolve_char_ref() {
            Ok(Some(c)) => Cow::Owned(c.to_string()),
            Err(_) => return,
            Ok(None) => {
                let name = String::from_utf8_lossy(r.as_ref()).into_owned();
                match quick_xml::escape::resolve_predefined_entity(&name) {
                    Some(v) => Cow::Borrowed(v),
                    // An entity we cannot resolve (declared in a DOCTYPE): keep it as written.
                    None => Cow::Owned(format!("&{name};")),
                }
            }
        };
        self.push_text(&resolved);
    }

    /// Closes the innermost open element and stores its value.
    fn close_top(&mut self) {
        let Some(open) = self.stack.pop() else {
            return;
        };
        let value = open.text.trim_matches(is_xml_space).to_string();
        match open.field {
            Field::Postacert => self.root_closed = true,
            Field::Mittente => set_first(&mut self.mittente, value),
            Field::Destinatari => self.destinatari.push(Destinatario {
                indirizzo: value,
                tipo: open.tipo_destinatario,
            }),
            Field::Risposte => set_first(&mut self.risposte, value),
            Field::Oggetto => set_first(&mut self.oggetto, value),
            Field::GestoreEmittente => set_first(&mut self.gestore_emittente, value),
            Field::Giorno => set_first(&mut self.giorno, value),
            Field::Ora => set_first(&mut self.ora, value),
            Field::Identificativo => set_first(&mut self.identificativo, value),
            Field::Msgid => set_first(&mut self.msgid, value),
            Field::Consegna => set_first(&mut self.consegna, value),
            Field::Ricezione => self.ricezione.push(value),
            Field::ErroreEsteso => set_first(&mut self.errore_esteso, value),
            Field::Data | Field::Ricevuta | Field::Other => {}
        }
    }

    fn finish(self) -> crate::Result<Daticert> {
        fn required(v: Option<String>, what: &str) -> crate::Result<String> {
            v.ok_or_else(|| daticert_error(format!("no <{what}> element")))
        }
        let tipo = self
            .tipo
            .ok_or_else(|| daticert_error("<postacert> has no tipo attribute"))?;
        let mittente = required(self.mittente, "mittente")?;
        if self.destinatari.is_empty() {
            return Err(daticert_error("no <destinatari> element"));
        }
        let risposte = required(self.risposte, "risposte")?;
        let gestore_emittente = required(self.gestore_emittente, "gestore-emittente")?;
        if !self.data_seen {
            return Err(daticert_error("no <data> element"));
        }
        let zona = self
            .zona
            .ok_or_else(|| daticert_error("<data> has no zona attribute"))?;
        let giorno = required(self.giorno, "giorno")?;
        let ora = required(self.ora, "ora")?;
        let identificativo = required(self.identificativo, "identificativo")?;
        Ok(Daticert {
            tipo,
            errore: self.errore,
            mittente,
            destinatari: self.destinatari,
            risposte,
            oggetto: self.oggetto,
            gestore_emittente,
            data: Data { zona, giorno, ora },
            identificativo,
            msgid: self.msgid,
            ricevuta: self.ricevuta,
            consegna: self.consegna,
            ricezione: self.ricezione,
            errore_esteso: self.errore_esteso,
        })
    }
}

/// The value of the attribute whose local name is `name` (any case), unescaped when
/// possible, raw otherwise. The first match wins; malformed attributes are skipped.
fn attribute(
    e: &BytesStart<'_>,
    name: &[u8],
    decoder: quick_xml::encoding::Decoder,
) -> Option<String> {
    e.attributes()
        .with_checks(false)
        .flatten()
        .find(|a| a.key.local_name().as_ref().eq_ignore_ascii_case(name))
        .map(|a| match a.decode_and_unescape_value(decoder) {
            Ok(v) => v.into_owned(),
            Err(_) => String::from_utf8_lossy(&a.value).into_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `<intestazione>` of the §4.4 running example.
    const INTESTAZIONE: &str = r#"    <intestazione>
        <mittente>mario.rossi@pec.alfa.example</mittente>
        <destinatari tipo="certificato">anna.bianchi@pec.beta.example</destinatari>
        <destinatari tipo="certificato">luca.verdi@pec.beta.example</destinatari>
        <destinatari tipo="esterno">paolo@mail.example.com</destinatari>
        <risposte>mario.rossi@pec.alfa.example</risposte>
        <oggetto>Fattura 12/2025</oggetto>
    </intestazione>"#;

    /// The §4.4 transport envelope, byte for byte.
    const ENVELOPE_XML: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<postacert tipo="posta-certificata" errore="nessuno">
    <intestazione>
        <mittente>mario.rossi@pec.alfa.example</mittente>
        <destinatari tipo="certificato">anna.bianchi@pec.beta.example</destinatari>
        <destinatari tipo="certificato">luca.verdi@pec.beta.example</destinatari>
        <destinatari tipo="esterno">paolo@mail.example.com</destinatari>
        <risposte>mario.rossi@pec.alfa.example</risposte>
        <oggetto>Fattura 12/2025</oggetto>
    </intestazione>
    <dati>
        <gestore-emittente>Alfa PEC S.p.A.</gestore-emittente>
        <data zona="+0100">
            <giorno>10/03/2025</giorno>
            <ora>10:30:15</ora>
        </data>
        <identificativo>opec101.20250310103015.4711.1.1@alfa.example</identificativo>
        <msgid>&lt;20250310.abc123@client.example&gt;</msgid>
        <ricevuta tipo="completa" />
    </dati>
</postacert>
"#;

    fn envelope() -> Daticert {
        Daticert {
            tipo: Tipo::PostaCertificata,
            errore: Errore::Nessuno,
            mittente: "mario.rossi@pec.alfa.example".into(),
            destinatari: vec![
                Destinatario {
                    indirizzo: "anna.bianchi@pec.beta.example".into(),
                    tipo: TipoDestinatario::Certificato,
                },
                Destinatario {
                    indirizzo: "luca.verdi@pec.beta.example".into(),
                    tipo: TipoDestinatario::Certificato,
                },
                Destinatario {
                    indirizzo: "paolo@mail.example.com".into(),
                    tipo: TipoDestinatario::Esterno,
                },
            ],
            risposte: "mario.rossi@pec.alfa.example".into(),
            oggetto: Some("Fattura 12/2025".into()),
            gestore_emittente: "Alfa PEC S.p.A.".into(),
            data: Data {
                zona: "+0100".into(),
                giorno: "10/03/2025".into(),
                ora: "10:30:15".into(),
            },
            identificativo: "opec101.20250310103015.4711.1.1@alfa.example".into(),
            msgid: Some("<20250310.abc123@client.example>".into()),
            ricevuta: Some(TipoRicevuta::Completa),
            consegna: None,
            ricezione: vec![],
            errore_esteso: None,
        }
    }

    /// A §4.4 example: its `<dati>` body as printed there and the value it denotes.
    struct Example {
        tipo: &'static str,
        errore: &'static str,
        dati: &'static str,
        value: Daticert,
    }

    fn with(f: impl FnOnce(&mut Daticert)) -> Daticert {
        let mut d = envelope();
        d.ricevuta = None;
        f(&mut d);
        d
    }

    fn examples() -> Vec<Example> {
        const MSGID: &str = "<msgid>&lt;20250310.abc123@client.example&gt;</msgid>";
        const IDENT: &str =
            "<identificativo>opec101.20250310103015.4711.1.1@alfa.example</identificativo>";
        let dati = |gestore: &str, ora: &str, tail: &str| -> &'static str {
            let s = format!(
                "<gestore-emittente>{gestore}</gestore-emittente>\n\
                 <data zona=\"+0100\"><giorno>10/03/2025</giorno><ora>{ora}</ora></data>\n\
                 {IDENT}\n{MSGID}\n{tail}"
            );
            Box::leak(s.into_boxed_str())
        };
        let beta = |d: &mut Daticert, ora: &str| {
            d.gestore_emittente = "Beta PEC S.p.A.".into();
            d.data.ora = ora.into();
        };
        vec![
            Example {
                tipo: "posta-certificata",
                errore: "nessuno",
                dati: dati(
                    "Alfa PEC S.p.A.",
                    "10:30:15",
                    "<ricevuta tipo=\"completa\" />",
                ),
                value: envelope(),
            },
            Example {
                tipo: "accettazione",
                errore: "nessuno",
                dati: dati("Alfa PEC S.p.A.", "10:30:15", ""),
                value: with(|d| d.tipo = Tipo::Accettazione),
            },
            Example {
                tipo: "non-accettazione",
                errore: "altro",
                dati: dati(
                    "Alfa PEC S.p.A.",
                    "10:30:15",
                    "<errore-esteso>Il mittente del messaggio non coincide con il mittente \
                     SMTP</errore-esteso>",
                ),
                value: with(|d| {
                    d.tipo = Tipo::NonAccettazione;
                    d.errore = Errore::Altro;
                    d.errore_esteso =
                        Some("Il mittente del messaggio non coincide con il mittente SMTP".into());
                }),
            },
            Example {
                tipo: "non-accettazione",
                errore: "virus",
                dati: dati(
                    "Alfa PEC S.p.A.",
                    "10:30:15",
                    "<errore-esteso>Win.Test.EICAR_HDB-1</errore-esteso>",
                ),
                value: with(|d| {
                    d.tipo = Tipo::NonAccettazione;
                    d.errore = Errore::Virus;
                    d.errore_esteso = Some("Win.Test.EICAR_HDB-1".into());
                }),
            },
            Example {
                tipo: "presa-in-carico",
                errore: "nessuno",
                dati: dati(
                    "Beta PEC S.p.A.",
                    "10:30:17",
                    "<ricezione>anna.bianchi@pec.beta.example</ricezione>\n\
                     <ricezione>luca.verdi@pec.beta.example</ricezione>",
                ),
                value: with(|d| {
                    d.tipo = Tipo::PresaInCarico;
                    beta(d, "10:30:17");
                    d.ricezione = vec![
                        "anna.bianchi@pec.beta.example".into(),
                        "luca.verdi@pec.beta.example".into(),
                    ];
                }),
            },
            Example {
                tipo: "avvenuta-consegna",
                errore: "nessuno",
                dati: dati(
                    "Beta PEC S.p.A.",
                    "10:30:18",
                    "<ricevuta tipo=\"breve\" />\n\
                     <consegna>anna.bianchi@pec.beta.example</consegna>",
                ),
                value: with(|d| {
                    d.tipo = Tipo::AvvenutaConsegna;
                    beta(d, "10:30:18");
                    d.ricevuta = Some(TipoRicevuta::Breve);
                    d.consegna = Some("anna.bianchi@pec.beta.example".into());
                }),
            },
            Example {
                tipo: "errore-consegna",
                errore: "no-dest",
                dati: dati(
                    "Beta PEC S.p.A.",
                    "10:30:18",
                    "<consegna>luca.verdi@pec.beta.example</consegna>\n\
                     <errore-esteso>5.1.1 - Beta PEC S.p.A. - indirizzo non valido</errore-esteso>",
                ),
                value: with(|d| {
                    d.tipo = Tipo::ErroreConsegna;
                    d.errore = Errore::NoDest;
                    beta(d, "10:30:18");
                    d.consegna = Some("luca.verdi@pec.beta.example".into());
                    d.errore_esteso = Some("5.1.1 - Beta PEC S.p.A. - indirizzo non valido".into());
                }),
            },
            Example {
                tipo: "preavviso-errore-consegna",
                errore: "altro",
                dati: dati(
                    "Alfa PEC S.p.A.",
                    "22:30:15",
                    "<consegna>anna.bianchi@pec.beta.example</consegna>\n\
                     <errore-esteso>Mancata consegna entro 12 ore</errore-esteso>",
                ),
                value: with(|d| {
                    d.tipo = Tipo::PreavvisoErroreConsegna;
                    d.errore = Errore::Altro;
                    d.data.ora = "22:30:15".into();
                    d.consegna = Some("anna.bianchi@pec.beta.example".into());
                    d.errore_esteso = Some("Mancata consegna entro 12 ore".into());
                }),
            },
            Example {
                tipo: "rilevazione-virus",
                errore: "virus",
                dati: dati(
                    "Beta PEC S.p.A.",
                    "10:30:17",
                    "<consegna>anna.bianchi@pec.beta.example</consegna>\n\
                     <errore-esteso>Win.Test.EICAR_HDB-1</errore-esteso>",
                ),
                value: with(|d| {
                    d.tipo = Tipo::RilevazioneVirus;
                    d.errore = Errore::Virus;
                    beta(d, "10:30:17");
                    d.consegna = Some("anna.bianchi@pec.beta.example".into());
                    d.errore_esteso = Some("Win.Test.EICAR_HDB-1".into());
                }),
            },
        ]
    }

    #[test]
    fn to_xml_of_the_envelope_example_is_byte_exact() {
        assert_eq!(envelope().to_xml(), ENVELOPE_XML);
    }

    #[test]
    fn parse_of_the_envelope_example() {
        assert_eq!(
            Daticert::parse(ENVELOPE_XML.as_bytes()).unwrap(),
            envelope()
        );
    }

    #[test]
    fn every_section_4_4_example_parses_and_round_trips() {
        let examples = examples();
        for t in Tipo::ALL {
            assert!(
                examples.iter().any(|e| e.value.tipo == t),
                "no example for {t:?}"
            );
        }
        for ex in examples {
            let xml = format!(
                "<postacert tipo=\"{}\" errore=\"{}\">\n{INTESTAZIONE}\n    <dati>\n{}\n    \
                 </dati>\n</postacert>\n",
                ex.tipo, ex.errore, ex.dati
            );
            let parsed = Daticert::parse(xml.as_bytes())
                .unwrap_or_else(|e| panic!("{}: {e}\n{xml}", ex.tipo));
            assert_eq!(parsed, ex.value, "parse of the {} example", ex.tipo);
            let written = ex.value.to_xml();
            assert_eq!(
                Daticert::parse(written.as_bytes()).unwrap(),
                ex.value,
                "round trip of {written}"
            );
        }
    }

    #[test]
    fn text_is_escaped() {
        let mut d = envelope();
        d.oggetto = Some(r#"A & B <c> "d" 'e'"#.into());
        let xml = d.to_xml();
        assert!(
            xml.contains("        <oggetto>A &amp; B &lt;c&gt; &quot;d&quot; 'e'</oggetto>\n"),
            "{xml}"
        );
        assert!(xml.contains("        <msgid>&lt;20250310.abc123@client.example&gt;</msgid>\n"));
        assert_eq!(Daticert::parse(xml.as_bytes()).unwrap(), d);
    }

    #[test]
    fn attribute_values_are_escaped() {
        let mut d = envelope();
        d.data.zona = "+01\"00&<\t\n".into();
        let xml = d.to_xml();
        assert!(
            xml.contains(r#"<data zona="+01&quot;00&amp;&lt;&#9;&#10;">"#),
            "{xml}"
        );
    }

    #[test]
    fn forbidden_control_characters_are_replaced() {
        let mut d = envelope();
        d.oggetto = Some("a\u{0}b\u{1}c\u{8}d\u{b}e\u{c}f\u{1b}g\u{1f}h\u{fffe}i\u{ffff}j".into());
        d.mittente = "x\u{7}@y".into();
        let xml = d.to_xml();
        assert!(
            !xml.chars().any(|c| !is_xml_char(c)),
            "forbidden character left in {xml:?}"
        );
        let back = Daticert::parse(xml.as_bytes()).unwrap();
        assert_eq!(
            back.oggetto.as_deref(),
            Some(
                "a\u{fffd}b\u{fffd}c\u{fffd}d\u{fffd}e\u{fffd}f\u{fffd}g\u{fffd}h\u{fffd}i\u{fffd}j"
            )
        );
        assert_eq!(back.mittente, "x\u{fffd}@y");
    }

    #[test]
    fn allowed_whitespace_inside_text_survives() {
        let mut d = envelope();
        d.oggetto = Some("riga 1\r\nriga 2\rriga\t3\nfine".into());
        let xml = d.to_xml();
        assert!(
            xml.contains("riga 1&#13;\nriga 2&#13;riga\t3\nfine"),
            "{xml}"
        );
        assert_eq!(Daticert::parse(xml.as_bytes()).unwrap(), d);
    }

    #[test]
    fn optional_elements_are_omitted_when_absent() {
        let mut d = envelope();
        d.oggetto = None;
        d.msgid = None;
        d.ricevuta = None;
        let xml = d.to_xml();
        for name in [
            "oggetto",
            "msgid",
            "ricevuta",
            "consegna",
            "ricezione",
            "errore-esteso",
        ] {
            assert!(!xml.contains(&format!("<{name}")), "{name} in {xml}");
        }
        assert_eq!(Daticert::parse(xml.as_bytes()).unwrap(), d);
    }

    fn parse_err(xml: &str) -> String {
        match Daticert::parse(xml.as_bytes()) {
            Err(Error::Daticert(m)) => m,
            other => panic!("expected a daticert error, got {other:?}"),
        }
    }

    #[test]
    fn missing_required_pieces_are_errors() {
        let env = ENVELOPE_XML;
        assert!(parse_err("").contains("no <postacert>"));
        assert!(parse_err("<?xml version=\"1.0\"?><foo/>").contains("root element is <foo>"));
        let cases = [
            (env.replace(" tipo=\"posta-certificata\"", ""), "no tipo"),
            (
                env.replace("\"posta-certificata\"", "\"posta-strana\""),
                "unknown postacert tipo \"posta-strana\"",
            ),
            (
                env.replace("<mittente>mario.rossi@pec.alfa.example</mittente>", ""),
                "no <mittente>",
            ),
            (
                env.replace("<identificativo>", "<id>")
                    .replace("</identificativo>", "</id>"),
                "no <identificativo>",
            ),
            (
                env.replace("<risposte>mario.rossi@pec.alfa.example</risposte>", ""),
                "no <risposte>",
            ),
            (
                env.replace("<gestore-emittente>Alfa PEC S.p.A.</gestore-emittente>", ""),
                "no <gestore-emittente>",
            ),
            (env.replace(" zona=\"+0100\"", ""), "no zona"),
            (env.replace("<ora>10:30:15</ora>", ""), "no <ora>"),
            (
                env.replace("<giorno>10/03/2025</giorno>", ""),
                "no <giorno>",
            ),
            (env.replace("</postacert>", ""), "ends before </postacert>"),
            (
                env.replace("<dati>", "<dati><!-- never closed"),
                "malformed XML",
            ),
        ];
        for (xml, expected) in cases {
            let msg = parse_err(&xml);
            assert!(msg.contains(expected), "{msg:?} lacks {expected:?}");
        }
        let no_dest: String = env
            .lines()
            .filter(|l| !l.contains("<destinatari"))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(parse_err(&no_dest).contains("no <destinatari>"));
    }

    #[test]
    fn tolerant_attribute_values() {
        let xml = ENVELOPE_XML
            .replace("errore=\"nessuno\"", "errore=\"boh\"")
            .replace("tipo=\"esterno\"", "tipo=\"strano\"")
            .replace("<ricevuta tipo=\"completa\" />", "<ricevuta/>");
        let d = Daticert::parse(xml.as_bytes()).unwrap();
        assert_eq!(d.errore, Errore::Altro);
        assert!(
            d.destinatari
                .iter()
                .all(|x| x.tipo == TipoDestinatario::Certificato)
        );
        assert_eq!(d.ricevuta, Some(TipoRicevuta::Completa));
        let xml = ENVELOPE_XML.replace(" errore=\"nessuno\"", "");
        assert_eq!(
            Daticert::parse(xml.as_bytes()).unwrap().errore,
            Errore::Nessuno
        );
    }

    #[test]
    fn too_large_or_too_deep_input_is_refused() {
        let big = vec![b' '; MAX_XML_LEN + 1];
        assert!(parse_err(std::str::from_utf8(&big).unwrap()).contains("more than"));
        let deep = format!(
            "<postacert tipo=\"accettazione\">{}",
            "<x>".repeat(MAX_DEPTH + 1)
        );
        assert!(parse_err(&deep).contains("nested"));
    }

    #[test]
    fn declared_encoding_is_found() {
        assert_eq!(
            declared_encoding(b"  <?xml version='1.0' encoding = 'ISO-8859-1' ?><a/>"),
            Some(&b"ISO-8859-1"[..])
        );
        assert_eq!(declared_encoding(b"<?xml version=\"1.0\"?><a/>"), None);
        assert_eq!(declared_encoding(b"<a encoding=\"x\"/>"), None);
        assert_eq!(declared_encoding(b"<?xml encoding=\"unterminated"), None);
    }
}
