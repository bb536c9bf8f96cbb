//! The events the gestore records in the legal log (spec §8.1), typed: the code builds
//! and compares them as values, the log stores their [`Event::as_str`] text, which stays
//! what earlier versions wrote (`pecd log` and `pecd log verify` read old and new records
//! alike).

use pec_proto::classify::Kind;

/// One kind of legal log record written by the gestore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A submission accepted: ricevuta di accettazione and transport envelope issued.
    Accettazione,
    /// A submission refused: avviso di non accettazione issued.
    NonAccettazione,
    /// An envelope taken in charge: presa in carico issued (detail: the recipients).
    PresaInCarico,
    /// An envelope delivered to a mailbox: ricevuta di avvenuta consegna issued.
    Consegna,
    /// An avviso di mancata consegna issued.
    ErroreConsegna,
    /// An avviso di mancata consegna per virus issued to the sender.
    ErroreConsegnaVirus,
    /// An infected envelope: avviso di rilevazione virus issued.
    RilevazioneVirus,
    /// A 12 h or 24 h notice issued.
    Preavviso,
    /// A message propagated in a busta di anomalia, or not propagated to a stray RCPT.
    Anomalia,
    /// A receipt of this kind received and filed.
    Ricezione(Kind),
}

impl Event {
    /// The text stored in the log.
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Accettazione => "accettazione",
            Event::NonAccettazione => "non-accettazione",
            Event::PresaInCarico => "presa-in-carico",
            Event::Consegna => "consegna",
            Event::ErroreConsegna => "errore-consegna",
            Event::ErroreConsegnaVirus => "errore-consegna-virus",
            Event::RilevazioneVirus => "rilevazione-virus",
            Event::Preavviso => "preavviso-errore-consegna",
            Event::Anomalia => "anomalia",
            Event::Ricezione(kind) => match kind {
                Kind::PostaCertificata => "ricezione posta-certificata",
                Kind::Anomalia => "ricezione anomalia",
                Kind::Accettazione => "ricezione accettazione",
                Kind::NonAccettazione => "ricezione non-accettazione",
                Kind::PresaInCarico => "ricezione presa-in-carico",
                Kind::AvvenutaConsegna => "ricezione avvenuta-consegna",
                Kind::ErroreConsegna => "ricezione errore-consegna",
                Kind::PreavvisoErroreConsegna => "ricezione preavviso-errore-consegna",
                Kind::RilevazioneVirus => "ricezione rilevazione-virus",
                Kind::Ordinaria => "ricezione ordinaria",
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_text_is_what_earlier_versions_wrote() {
        let kinds = [
            Kind::PostaCertificata,
            Kind::Anomalia,
            Kind::Accettazione,
            Kind::NonAccettazione,
            Kind::PresaInCarico,
            Kind::AvvenutaConsegna,
            Kind::ErroreConsegna,
            Kind::PreavvisoErroreConsegna,
            Kind::RilevazioneVirus,
            Kind::Ordinaria,
        ];
        for k in kinds {
            assert_eq!(
                Event::Ricezione(k).as_str(),
                format!("ricezione {}", k.as_str())
            );
        }
        assert_eq!(Event::Preavviso.as_str(), "preavviso-errore-consegna");
        assert_eq!(Event::ErroreConsegnaVirus.as_str(), "errore-consegna-virus");
    }
}
