//! `daticert.xml`, the certification data of every PEC message (spec §4).
//!
//! [`Daticert`] models the whole DTD of §4.2. [`Daticert::to_xml`] writes a document that
//! is valid against that DTD with elements in DTD order; [`Daticert::parse`] reads what real
//! gestori send (whitespace, stray text, unknown elements, any element order, a declared
//! encoding other than UTF-8).

use chrono::{DateTime, FixedOffset};

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
