//! Every message a gestore generates (spec §3), built byte-exactly and signed.
//!
//! Inputs that vary — the time, the identifiers, the MIME boundaries — are passed in
//! ([`Emission`]), so the same inputs always give the same bytes.

use chrono::{DateTime, FixedOffset};

use crate::breve;
use crate::daticert::{Data, Daticert, Destinatario, Errore, Tipo, TipoDestinatario, TipoRicevuta};
use crate::mime::{
    base64_lines, encode_header_text, has_8bit, prefixed_subject, push_header, push_header_keeping,
    to_crlf,
};
use crate::original::Original;
use crate::smime::Signer;
use crate::text::Body;
use crate::{Error, Result};

/// The facts every message of one PEC transaction repeats: the original's header data
/// (daticert `intestazione`) and its identifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    /// The original sender (From address).
    pub mittente: String,
    /// Every To and Cc recipient, classified.
    pub destinatari: Vec<Destinatario>,
    /// The original's Reply-To, else the sender.
    pub risposte: String,
    /// The original's Subject.
    pub oggetto: Option<String>,
    /// The PEC msgid (Message-ID of the transport envelope), without angle brackets.
    pub identificativo: String,
    /// The client's Message-ID, with angle brackets.
    pub msgid: Option<String>,
    /// The delivery receipt variant the sender asked for.
    pub ricevuta: TipoRicevuta,
}

impl Transaction {
    /// The transaction described by a received `daticert.xml` (how the recipient gestore
    /// learns the facts it must repeat in its receipts).
    pub fn from_daticert(d: &Daticert) -> Transaction {
        Transaction {
            mittente: d.mittente.clone(),
            destinatari: d.destinatari.clone(),
            risposte: d.risposte.clone(),
            oggetto: d.oggetto.clone(),
            identificativo: d.identificativo.clone(),
            msgid: d.msgid.clone(),
            ricevuta: d.ricevuta.unwrap_or_default(),
        }
    }

    /// The transaction of an original being accepted: sender, classified recipients,
    /// Reply-To, Subject and client msgid from `original`; `identificativo` assigned by the
    /// access point. `classify` tells whether an address is in a PEC domain.
    pub fn from_original(
        original: &Original<'_>,
        identificativo: &str,
        classify: impl Fn(&str) -> TipoDestinatario,
    ) -> Transaction {
        let mittente = original.from().first().cloned().unwrap_or_default();
        let destinatari = original
            .to()
            .iter()
            .chain(original.cc())
            .map(|a| Destinatario {
                indirizzo: a.clone(),
                tipo: classify(a),
            })
            .collect();
        Transaction {
            risposte: original
                .reply_to()
                .first()
                .cloned()
                .unwrap_or_else(|| mittente.clone()),
            mittente,
            destinatari,
            oggetto: original.subject().map(str::to_string),
            identificativo: identificativo.to_string(),
            msgid: original.message_id(),
            ricevuta: original.tipo_ricevuta(),
        }
    }

    fn daticert(&self, tipo: Tipo, errore: Errore, e: &Emission<'_>) -> Daticert {
        Daticert {
            tipo,
            errore,
            mittente: self.mittente.clone(),
            destinatari: self.destinatari.clone(),
            risposte: self.risposte.clone(),
            oggetto: self.oggetto.clone(),
            gestore_emittente: e.gestore.to_string(),
            data: Data::from_datetime(&e.time),
            identificativo: self.identificativo.clone(),
            msgid: self.msgid.clone(),
            ricevuta: None,
            consegna: None,
            ricezione: Vec::new(),
            errore_esteso: None,
        }
    }

    fn subject(&self) -> &str {
        self.oggetto.as_deref().unwrap_or("")
    }
}

/// Who emits a message, when, and under which identifiers.
pub struct Emission<'a> {
    /// The gestore's signer; its address is the `From:` of the message.
    pub signer: &'a dyn Signer,
    /// The gestore's name (`gestore-emittente`, the index `providerName`).
    pub gestore: &'a str,
    /// The single temporal reference of the event, in Italian legal time.
    pub time: DateTime<FixedOffset>,
    /// The Message-ID of this message, without angle brackets (for the transport envelope
    /// it is the PEC msgid).
    pub message_id: &'a str,
    /// A seed for the MIME boundaries, unique per message (e.g. random hex).
    pub boundary: &'a str,
}

/// A notice about a transaction: every receipt and avviso of spec §3.5–§3.12.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice<'a> {
    /// Ricevuta di accettazione.
    Accettazione,
    /// Avviso di non accettazione for a formal error, with its description.
    NonAccettazione {
        /// Why the message was not accepted.
        reason: &'a str,
    },
    /// Avviso di non accettazione per virus.
    NonAccettazioneVirus {
        /// What the antivirus found.
        virus: &'a str,
    },
    /// Ricevuta di presa in carico (to the sender gestore's `mailReceipt`).
    PresaInCarico {
        /// The local recipients this receipt covers.
        ricezione: &'a [String],
    },
    /// Ricevuta di avvenuta consegna.
    AvvenutaConsegna {
        /// The recipient it is about.
        recipient: &'a str,
        /// The variant issued (see [`receipt_variant`]).
        variant: TipoRicevuta,
        /// The `postacert.eml` of the envelope (needed for completa and breve).
        postacert: Option<&'a [u8]>,
    },
    /// Avviso di mancata consegna.
    ErroreConsegna {
        /// The recipient it is about.
        recipient: &'a str,
        /// `no-dest`, `no-dominio` or `altro`.
        errore: Errore,
        /// A short description (`errore-esteso`).
        detail: &'a str,
    },
    /// Avviso di mancata consegna per virus (sender gestore, after a rilevazione virus).
    ErroreConsegnaVirus {
        /// The recipient it is about.
        recipient: &'a str,
        /// What the antivirus found.
        virus: &'a str,
    },
    /// The 12 h notice: not delivered yet (`preavviso-errore-consegna`).
    Preavviso12h {
        /// The recipient it is about.
        recipient: &'a str,
    },
    /// The 24 h notice: the transaction failed (`preavviso-errore-consegna`).
    Preavviso24h {
        /// The recipient it is about.
        recipient: &'a str,
    },
    /// Avviso di rilevazione virus (to the sender gestore's `mailReceipt`).
    RilevazioneVirus {
        /// The recipient it is about.
        recipient: &'a str,
        /// What the antivirus found.
        virus: &'a str,
    },
}

/// Which delivery receipt a recipient gets (spec §3.8 table): Cc recipients always get a
/// sintetica; To recipients, and those whose position is unknown, get the requested one.
pub fn receipt_variant(requested: TipoRicevuta, in_cc: Option<bool>) -> TipoRicevuta {
    match in_cc {
        Some(true) => TipoRicevuta::Sintetica,
        _ => requested,
    }
}

/// The Subject prefixes of spec Appendix A.
mod prefix {
    pub const POSTA_CERTIFICATA: &str = "POSTA CERTIFICATA: ";
    pub const ANOMALIA: &str = "ANOMALIA MESSAGGIO: ";
    pub const ACCETTAZIONE: &str = "ACCETTAZIONE: ";
    pub const NON_ACCETTAZIONE: &str = "AVVISO DI NON ACCETTAZIONE: ";
    pub const NON_ACCETTAZIONE_VIRUS: &str = "AVVISO DI NON ACCETTAZIONE PER VIRUS: ";
    pub const PRESA_IN_CARICO: &str = "PRESA IN CARICO: ";
    pub const CONSEGNA: &str = "CONSEGNA: ";
    pub const MANCATA_CONSEGNA: &str = "AVVISO DI MANCATA CONSEGNA: ";
    pub const MANCATA_CONSEGNA_VIRUS: &str = "AVVISO DI MANCATA CONSEGNA PER VIRUS: ";
    pub const TEMPO_MASSIMO: &str = "AVVISO DI MANCATA CONSEGNA PER SUP. TEMPO MASSIMO: ";
    pub const VIRUS: &str = "PROBLEMA DI SICUREZZA: ";
}

/// Every Subject prefix with the kind of message it announces, longest first so that a
/// prefix is never taken for a shorter one it starts with.
pub const SUBJECT_PREFIXES: [(&str, &str); 11] = [
    (prefix::TEMPO_MASSIMO, "preavviso-errore-consegna"),
    (prefix::NON_ACCETTAZIONE_VIRUS, "non-accettazione"),
    (prefix::MANCATA_CONSEGNA_VIRUS, "errore-consegna"),
    (prefix::NON_ACCETTAZIONE, "non-accettazione"),
    (prefix::MANCATA_CONSEGNA, "errore-consegna"),
    (prefix::POSTA_CERTIFICATA, "posta-certificata"),
    (prefix::ANOMALIA, "anomalia"),
    (prefix::ACCETTAZIONE, "accettazione"),
    (prefix::PRESA_IN_CARICO, "presa-in-carico"),
    (prefix::CONSEGNA, "avvenuta-consegna"),
    (prefix::VIRUS, "rilevazione-virus"),
];

/// "Il giorno dd/mm/yyyy alle ore hh:mm:ss (+hhmm)", the opening of every body.
fn when(t: &DateTime<FixedOffset>) -> String {
    let d = Data::from_datetime(t);
    format!("Il giorno {} alle ore {} ({})", d.giorno, d.ora, d.zona)
}

fn quoted(s: &str) -> String {
    format!("\"{s}\"")
}

fn recipient_lines(tx: &Transaction, tagged: bool) -> Vec<String> {
    tx.destinatari
        .iter()
        .map(|d| match (tagged, d.tipo) {
            (false, _) => d.indirizzo.clone(),
            (true, TipoDestinatario::Certificato) => {
                format!("{} (\"posta certificata\")", d.indirizzo)
            }
            (true, TipoDestinatario::Esterno) => format!("{} (\"posta ordinaria\")", d.indirizzo),
        })
        .collect()
}

fn identificativo_line(tx: &Transaction) -> String {
    format!("Identificativo messaggio: {}", tx.identificativo)
}

/// A MIME part of the signed `multipart/mixed`: its header lines and its content.
struct Part {
    headers: String,
    content: Vec<u8>,
}

fn daticert_part(d: &Daticert) -> Part {
    xml_part(&d.to_xml())
}

/// The `daticert.xml` part carrying `xml`.
fn xml_part(xml: &str) -> Part {
    let b64 = base64_lines(xml.as_bytes());
    Part {
        headers: "Content-Type: application/xml; name=\"daticert.xml\"\r\n\
                  Content-Disposition: inline; filename=\"daticert.xml\"\r\n\
                  Content-Transfer-Encoding: base64\r\n"
            .to_string(),
        content: b64.trim_end().as_bytes().to_vec(),
    }
}

fn message_part(message: &[u8]) -> Part {
    let cte = if has_8bit(message) { "8bit" } else { "7bit" };
    Part {
        headers: format!(
            "Content-Type: message/rfc822; name=\"postacert.eml\"\r\n\
             Content-Disposition: inline; filename=\"postacert.eml\"\r\n\
             Content-Transfer-Encoding: {cte}\r\n"
        ),
        content: to_crlf(message).into_owned(),
    }
}

/// Boundaries derived from the seed, lengthened until none occurs in the content.
struct Boundaries {
    signed: String,
    mixed: String,
    alternative: String,
}

impl Boundaries {
    fn new(seed: &str, contents: &[&[u8]]) -> Boundaries {
        let mut seed = seed.to_string();
        loop {
            let b = Boundaries {
                signed: format!("----=_smime_{seed}"),
                mixed: format!("----=_mixed_{seed}"),
                alternative: format!("----=_alt_{seed}"),
            };
            let clash = contents.iter().any(|c| {
                [&b.signed, &b.mixed, &b.alternative]
                    .iter()
                    .any(|bd| contains(c, bd.as_bytes()))
            });
            if !clash {
                return b;
            }
            seed.push('0');
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(haystack, needle).is_some()
}

/// Assembles and signs a message: `headers` (already wire-safe, in order) followed by
/// `MIME-Version` and the `multipart/signed` whose first part is a `multipart/mixed` of
/// the text body and `parts`.
fn assemble(
    e: &Emission<'_>,
    headers: &[(&str, String)],
    body: &Body,
    parts: &[Part],
) -> Result<Vec<u8>> {
    let contents: Vec<&[u8]> = parts.iter().map(|p| p.content.as_slice()).collect();
    let b = Boundaries::new(e.boundary, &contents);
    let eight_bit = parts.iter().any(|p| has_8bit(&p.content));

    // MIME-Version inside the signed part too, as real gestori write it: the part is a
    // complete entity for whoever takes it out of the signature (`openssl smime -verify
    // -out`, clients that show the signed content as a message).
    let mut inner = format!(
        "Content-Type: multipart/mixed; boundary=\"{}\"\r\nContent-Transfer-Encoding: {}\r\n\
         MIME-Version: 1.0\r\n\r\n",
        b.mixed,
        if eight_bit { "8bit" } else { "7bit" }
    )
    .into_bytes();
    inner.extend_from_slice(format!("--{}\r\n", b.mixed).as_bytes());
    inner.extend_from_slice(body.alternative_entity(&b.alternative).as_bytes());
    for p in parts {
        inner.extend_from_slice(format!("\r\n--{}\r\n{}\r\n", b.mixed, p.headers).as_bytes());
        inner.extend_from_slice(&p.content);
    }
    inner.extend_from_slice(format!("\r\n--{}--\r\n", b.mixed).as_bytes());

    let signature = e
        .signer
        .sign_detached(&inner, e.time.with_timezone(&chrono::Utc))?;

    let mut out = Vec::with_capacity(inner.len() + signature.len() * 2 + 1024);
    for (name, value) in headers {
        push_header_keeping(&mut out, name, value, kept_prefix(name, value));
    }
    push_header(&mut out, "MIME-Version", "1.0");
    push_header(
        &mut out,
        "Content-Type",
        &format!(
            "multipart/signed; protocol=\"application/pkcs7-signature\"; micalg={}; boundary=\"{}\"",
            e.signer.digest().micalg(),
            b.signed
        ),
    );
    out.extend_from_slice(b"\r\nThis is an S/MIME signed message\r\n\r\n");
    out.extend_from_slice(format!("--{}\r\n", b.signed).as_bytes());
    out.extend_from_slice(&inner);
    out.extend_from_slice(
        format!(
            "\r\n--{}\r\nContent-Type: application/pkcs7-signature; name=\"smime.p7s\"\r\n\
             Content-Transfer-Encoding: base64\r\n\
             Content-Disposition: attachment; filename=\"smime.p7s\"\r\n\r\n{}--{}--\r\n",
            b.signed,
            base64_lines(&signature),
            b.signed
        )
        .as_bytes(),
    );
    Ok(out)
}

/// How much of a header value must stay on its first line with the word after it: a
/// Subject's PEC prefix (ERP and protocol software match `startswith("ACCETTAZIONE: ")`
/// on the raw or compat-decoded field), nothing for other fields.
fn kept_prefix(name: &str, value: &str) -> usize {
    if !name.eq_ignore_ascii_case("Subject") {
        return 0;
    }
    SUBJECT_PREFIXES
        .iter()
        .find(|(p, _)| value.starts_with(p))
        .map_or(0, |(p, _)| p.len())
}

fn angle(id: &str) -> String {
    format!("<{id}>")
}

/// The `From:` of an envelope: `"Per conto di: <sender>" <service address>`.
fn on_behalf_of(sender: &str, service: &str) -> String {
    let display = format!("Per conto di: {sender}").replace(['"', '\\'], "");
    format!("\"{}\" <{service}>", encode_header_text(&display))
}

/// Copies the raw fields `names` of `original`, in their original order, unfolded lines
/// kept as they are (CRLF-normalised).
fn copied_fields(original: &Original<'_>, names: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in original.fields() {
        if names.iter().any(|n| f.name.eq_ignore_ascii_case(n)) {
            out.extend_from_slice(&to_crlf(f.bytes));
        }
    }
    out
}

fn check_address(what: &str, address: &str) -> Result<()> {
    if address.contains('@') && !address.contains(['\r', '\n', '<', '>']) {
        Ok(())
    } else {
        Err(Error::Input(format!(
            "{what} is not an address: {address:?}"
        )))
    }
}

/// A busta di trasporto as built, with the two things an incoming point reads back from
/// it: the gestore hands an envelope between two of its own mailboxes straight to
/// delivery with them, instead of parsing and verifying what it has just signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The whole signed message, as sent.
    pub bytes: Vec<u8>,
    /// Its `daticert.xml`.
    pub daticert: Daticert,
    /// Its `postacert.eml`, byte for byte as the part carries it.
    pub postacert: Vec<u8>,
}

/// The busta di trasporto (spec §3.3): the signed envelope carrying `daticert.xml` and the
/// original as `postacert.eml`. Its Message-ID is `tx.identificativo`
/// (`e.message_id` is ignored).
pub fn transport_envelope(
    e: &Emission<'_>,
    tx: &Transaction,
    original: &Original<'_>,
) -> Result<Envelope> {
    check_address("the sender", &tx.mittente)?;
    let postacert = original.with_pec_msgid(&tx.identificativo);
    let mut d = tx.daticert(Tipo::PostaCertificata, Errore::Nessuno, e);
    d.ricevuta = Some(tx.ricevuta);

    let mut lines = vec![
        format!("{} il messaggio", when(&e.time)),
        format!(
            "{} è stato inviato da {}",
            quoted(tx.subject()),
            quoted(&tx.mittente)
        ),
        "indirizzato a:".to_string(),
    ];
    lines.extend(recipient_lines(tx, false));
    lines.push("Il messaggio originale è incluso in allegato.".to_string());
    lines.push(identificativo_line(tx));
    let body = Body {
        title: "Messaggio di posta certificata".into(),
        lines,
    };

    let mut headers: Vec<(&str, String)> = vec![
        ("X-Trasporto", "posta-certificata".into()),
        ("X-TipoRicevuta", tx.ricevuta.as_str().into()),
    ];
    if let Some(m) = &tx.msgid {
        headers.push(("X-Riferimento-Message-ID", m.clone()));
    }
    headers.push(("Date", e.time.to_rfc2822()));
    headers.push((
        "Subject",
        prefixed_subject(prefix::POSTA_CERTIFICATA, tx.subject()),
    ));
    headers.push(("From", on_behalf_of(&tx.mittente, e.signer.address())));
    // The bare address, as real envelopes write it: integrations read the sender there.
    if original.field("Reply-To").is_none() {
        headers.push(("Reply-To", tx.mittente.clone()));
    }
    headers.push(("Message-ID", angle(&tx.identificativo)));

    let xml = d.to_xml();
    let parts = [xml_part(&xml), message_part(&postacert)];
    let signed = assemble(e, &headers, &body, &parts)?;
    let mut bytes = copied_fields(
        original,
        &["Received", "Return-Path", "To", "Cc", "Reply-To"],
    );
    bytes.extend_from_slice(&signed);
    let [_, message] = parts;
    Ok(Envelope {
        bytes,
        // As a receiver reads it back (the XML escapes and trims some characters).
        daticert: Daticert::parse(xml.as_bytes())?,
        postacert: message.content,
    })
}

/// The busta di anomalia (spec §3.4): the whole `received` message wrapped for delivery,
/// without `daticert.xml`. It keeps the received Message-ID (or uses `e.message_id` when
/// there is none). `sender` is the original sender (its From address, else the SMTP reverse
/// path); `error` says why the message is not certified.
pub fn anomaly_envelope(
    e: &Emission<'_>,
    received: &[u8],
    sender: &str,
    error: &str,
) -> Result<Vec<u8>> {
    let original = Original::parse(received);
    let subject = original.subject().unwrap_or("");
    let mut lines = vec![
        format!("{} è stato ricevuto", when(&e.time)),
        format!(
            "il messaggio {} proveniente da {}",
            quoted(subject),
            quoted(sender)
        ),
        "ed indirizzato a:".to_string(),
    ];
    lines.extend(original.to().iter().chain(original.cc()).cloned());
    lines.push("Tali dati non sono stati certificati per il seguente errore:".to_string());
    lines.push(error.to_string());
    lines.push("Il messaggio originale è incluso in allegato.".to_string());
    let body = Body {
        title: "Anomalia nel messaggio".into(),
        lines,
    };

    let mut headers: Vec<(&str, String)> = vec![
        ("X-Trasporto", "errore".into()),
        ("Date", e.time.to_rfc2822()),
        ("Subject", prefixed_subject(prefix::ANOMALIA, subject)),
        ("From", on_behalf_of(sender, e.signer.address())),
    ];
    if original.field("Reply-To").is_none() && sender.contains('@') {
        headers.push(("Reply-To", sender.to_string()));
    }
    if original.field("Message-ID").is_none() {
        headers.push(("Message-ID", angle(e.message_id)));
    }
    let signed = assemble(e, &headers, &body, &[message_part(received)])?;
    let mut out = copied_fields(
        &original,
        &[
            "Received",
            "Return-Path",
            "To",
            "Cc",
            "Reply-To",
            "Message-ID",
        ],
    );
    out.extend_from_slice(&signed);
    Ok(out)
}

/// How one notice differs from the others: its daticert values, Subject prefix, text and
/// extra headers and parts.
struct Shape<'a> {
    tipo: Tipo,
    errore: Errore,
    prefix: &'static str,
    title: &'static str,
    /// The line after the opening "Il giorno …" one: how the message is introduced.
    opening: &'static str,
    /// Recipient lines (all of the transaction, or the one concerned).
    about: Vec<String>,
    /// The lines after the recipients.
    outcome: Vec<String>,
    consegna: Option<&'a str>,
    errore_esteso: Option<&'a str>,
    ricezione: &'a [String],
    ricevuta: bool,
    extra_headers: Vec<(&'static str, String)>,
    postacert: Option<Vec<u8>>,
}

impl<'a> Shape<'a> {
    fn new(tipo: Tipo, errore: Errore, prefix: &'static str, title: &'static str) -> Self {
        Shape {
            tipo,
            errore,
            prefix,
            title,
            opening: "il messaggio",
            about: Vec::new(),
            outcome: Vec::new(),
            consegna: None,
            errore_esteso: None,
            ricezione: &[],
            ricevuta: false,
            extra_headers: Vec::new(),
            postacert: None,
        }
    }
}

fn lines(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn virus_header() -> (&'static str, String) {
    ("X-VerificaSicurezza", "errore".to_string())
}

/// The shape of each notice (texts of spec §3.5–§3.12).
fn shape<'a>(tx: &Transaction, n: &Notice<'a>) -> Result<Shape<'a>> {
    let every_recipient = |tagged| {
        let mut v = vec!["ed indirizzato a:".to_string()];
        v.extend(recipient_lines(tx, tagged));
        v
    };
    let single = |intro: &str, r: &str| vec![format!("{intro} {}", quoted(r))];
    let s = match *n {
        Notice::Accettazione => Shape {
            about: every_recipient(true),
            outcome: lines(&["Il messaggio è stato accettato dal sistema ed inoltrato."]),
            ..Shape::new(
                Tipo::Accettazione,
                Errore::Nessuno,
                prefix::ACCETTAZIONE,
                "Ricevuta di accettazione",
            )
        },
        Notice::NonAccettazione { reason } => Shape {
            opening: "nel messaggio",
            about: every_recipient(false),
            outcome: vec![
                "è stato rilevato un problema che ne impedisce l'accettazione".into(),
                format!("a causa di: {reason}"),
                "Il messaggio non è stato accettato.".into(),
            ],
            errore_esteso: Some(reason),
            ..Shape::new(
                Tipo::NonAccettazione,
                Errore::Altro,
                prefix::NON_ACCETTAZIONE,
                "Errore nell'accettazione del messaggio",
            )
        },
        Notice::NonAccettazioneVirus { virus } => Shape {
            opening: "nel messaggio",
            about: every_recipient(false),
            outcome: vec![
                format!("è stato rilevato un problema di sicurezza: {virus}"),
                "Il messaggio non è stato accettato.".into(),
            ],
            errore_esteso: Some(virus),
            extra_headers: vec![virus_header()],
            ..Shape::new(
                Tipo::NonAccettazione,
                Errore::Virus,
                prefix::NON_ACCETTAZIONE_VIRUS,
                "Errore nell'accettazione del messaggio per presenza di virus",
            )
        },
        Notice::PresaInCarico { ricezione } => Shape {
            about: std::iter::once("ed indirizzato a:".to_string())
                .chain(ricezione.iter().cloned())
                .collect(),
            outcome: lines(&["è stato accettato dal sistema."]),
            ricezione,
            ..Shape::new(
                Tipo::PresaInCarico,
                Errore::Nessuno,
                prefix::PRESA_IN_CARICO,
                "Ricevuta di presa in carico",
            )
        },
        Notice::AvvenutaConsegna {
            recipient,
            variant,
            postacert,
        } => {
            let postacert = match (variant, postacert) {
                (TipoRicevuta::Sintetica, _) => None,
                (TipoRicevuta::Completa, Some(p)) => Some(p.to_vec()),
                (TipoRicevuta::Breve, Some(p)) => Some(breve::shorten(p)),
                (_, None) => {
                    return Err(Error::Input(format!(
                        "a {} delivery receipt needs the original message",
                        variant.as_str()
                    )));
                }
            };
            let title = match variant {
                TipoRicevuta::Completa => "Ricevuta di avvenuta consegna",
                TipoRicevuta::Breve => "Ricevuta breve di avvenuta consegna",
                TipoRicevuta::Sintetica => "Ricevuta sintetica di avvenuta consegna",
            };
            Shape {
                about: single("ed indirizzato a", recipient),
                outcome: lines(&["è stato posto nella casella di destinazione."]),
                consegna: Some(recipient),
                ricevuta: true,
                postacert,
                ..Shape::new(
                    Tipo::AvvenutaConsegna,
                    Errore::Nessuno,
                    prefix::CONSEGNA,
                    title,
                )
            }
        }
        Notice::ErroreConsegna {
            recipient,
            errore,
            detail,
        } => Shape {
            opening: "nel messaggio",
            about: single("e destinato all'utente", recipient),
            outcome: vec![
                format!("è stato rilevato un errore: {detail}"),
                "Il messaggio è stato rifiutato dal sistema.".into(),
            ],
            consegna: Some(recipient),
            errore_esteso: Some(detail),
            ..Shape::new(
                Tipo::ErroreConsegna,
                errore,
                prefix::MANCATA_CONSEGNA,
                "Avviso di mancata consegna",
            )
        },
        Notice::ErroreConsegnaVirus { recipient, virus } => Shape {
            opening: "nel messaggio",
            about: single("indirizzato a", recipient),
            outcome: vec![
                format!("è stato rilevato un problema di sicurezza: {virus}"),
                "Il messaggio non è stato consegnato.".into(),
            ],
            consegna: Some(recipient),
            errore_esteso: Some(virus),
            extra_headers: vec![virus_header()],
            ..Shape::new(
                Tipo::ErroreConsegna,
                Errore::Virus,
                prefix::MANCATA_CONSEGNA_VIRUS,
                "Errore di consegna per virus",
            )
        },
        Notice::Preavviso12h { recipient } => Shape {
            about: single("ed indirizzato a", recipient),
            outcome: lines(&[
                "non è stato consegnato nelle prime 12 ore seguenti il suo invio.",
                "Non è escluso che il messaggio possa essere consegnato in seguito,",
                "ma si ritiene utile considerare che l'invio potrebbe non avere esito positivo.",
                "Il sistema provvederà ad inviare un ulteriore avviso se nelle successive",
                "dodici ore non riceverà conferma dal destinatario.",
            ]),
            consegna: Some(recipient),
            errore_esteso: Some("Mancata consegna entro 12 ore"),
            ..Shape::new(
                Tipo::PreavvisoErroreConsegna,
                Errore::Altro,
                prefix::TEMPO_MASSIMO,
                "Avviso di mancata consegna",
            )
        },
        Notice::Preavviso24h { recipient } => Shape {
            about: single("ed indirizzato a", recipient),
            outcome: lines(&[
                "non è stato consegnato entro 24 ore dal suo invio.",
                "La transazione è da ritenersi conclusa con esito negativo.",
            ]),
            consegna: Some(recipient),
            errore_esteso: Some("Mancata consegna entro 24 ore"),
            ..Shape::new(
                Tipo::PreavvisoErroreConsegna,
                Errore::Altro,
                prefix::TEMPO_MASSIMO,
                "Avviso di mancata consegna",
            )
        },
        Notice::RilevazioneVirus { recipient, virus } => Shape {
            opening: "nel messaggio",
            about: single("ed indirizzato a", recipient),
            outcome: vec![format!(
                "è stato rilevato un problema di sicurezza: {virus}"
            )],
            consegna: Some(recipient),
            errore_esteso: Some(virus),
            extra_headers: vec![("X-Mittente", angle(&tx.mittente))],
            ..Shape::new(
                Tipo::RilevazioneVirus,
                Errore::Virus,
                prefix::VIRUS,
                "Avviso di rilevazione virus",
            )
        },
    };
    Ok(s)
}

/// A receipt or avviso about `tx` (spec §3.5–§3.12), addressed to `to`: the original
/// sender as given in the SMTP reverse path for user notices, the sender gestore's
/// `mailReceipt` for presa in carico and rilevazione virus. Never taken from Reply-To.
pub fn notice(e: &Emission<'_>, tx: &Transaction, n: &Notice<'_>, to: &str) -> Result<Vec<u8>> {
    notice_certified(e, tx, n, to).map(|(bytes, _)| bytes)
}

/// [`notice`], with the certified data it signed: the gestore files a notice for one of
/// its own mailboxes from what it certified, without parsing and verifying its own bytes.
pub fn notice_certified(
    e: &Emission<'_>,
    tx: &Transaction,
    n: &Notice<'_>,
    to: &str,
) -> Result<(Vec<u8>, Daticert)> {
    check_address("the receipt destination", to)?;
    let s = shape(tx, n)?;
    let mut d = tx.daticert(s.tipo, s.errore, e);
    d.ricevuta = s.ricevuta.then_some(tx.ricevuta);
    d.consegna = s.consegna.map(str::to_string);
    d.errore_esteso = s.errore_esteso.map(str::to_string);
    d.ricezione = s.ricezione.to_vec();

    let mut body_lines = vec![
        format!("{} {}", when(&e.time), s.opening),
        format!(
            "{} proveniente da {}",
            quoted(tx.subject()),
            quoted(&tx.mittente)
        ),
    ];
    body_lines.extend(s.about);
    body_lines.extend(s.outcome);
    body_lines.push(identificativo_line(tx));
    let body = Body {
        title: s.title.to_string(),
        lines: body_lines,
    };

    let mut headers: Vec<(&str, String)> = vec![("X-Ricevuta", s.tipo.as_str().into())];
    headers.extend(s.extra_headers);
    if let Some(m) = &tx.msgid {
        headers.push(("X-Riferimento-Message-ID", m.clone()));
    }
    headers.push(("Date", e.time.to_rfc2822()));
    headers.push(("Subject", prefixed_subject(s.prefix, tx.subject())));
    headers.push(("From", e.signer.address().to_string()));
    headers.push(("To", to.to_string()));
    headers.push(("Message-ID", angle(e.message_id)));

    let mut parts = vec![daticert_part(&d)];
    parts.extend(s.postacert.as_deref().map(message_part));
    Ok((assemble(e, &headers, &body, &parts)?, d))
}
