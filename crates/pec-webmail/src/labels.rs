//! Italian names for what the `pec` property says in codes: the kinds of PEC messages
//! (for the badges), daticert values and the signature verdict.

use serde_json::Value;

/// The badge text of a PEC kind (`pec.kind`); ordinary mail has none.
pub fn kind(kind: &str) -> &'static str {
    match kind {
        "posta-certificata" => "Posta certificata",
        "anomalia" => "Anomalia",
        "accettazione" => "Accettazione",
        "non-accettazione" => "Non accettazione",
        "presa-in-carico" => "Presa in carico",
        "avvenuta-consegna" => "Avvenuta consegna",
        "errore-consegna" => "Mancata consegna",
        "preavviso-errore-consegna" => "Preavviso di mancata consegna",
        "rilevazione-virus" => "Rilevazione virus",
        _ => "PEC",
    }
}

/// The badge's colour class: good news, bad news, or neutral.
pub fn kind_class(kind: &str) -> &'static str {
    match kind {
        "accettazione" | "avvenuta-consegna" | "presa-in-carico" => "badge ok",
        "non-accettazione"
        | "errore-consegna"
        | "preavviso-errore-consegna"
        | "rilevazione-virus"
        | "anomalia" => "badge ko",
        _ => "badge",
    }
}

/// A recipient's type in the daticert.
pub fn recipient_type(tipo: &str) -> &'static str {
    match tipo {
        "certificato" => "certificato (PEC)",
        "esterno" => "esterno (non PEC)",
        _ => "sconosciuto",
    }
}

/// The signature verdict of a `pec.signature` value, and whether it is good.
pub fn signature(sig: &Value) -> (&'static str, bool) {
    if sig.is_null() {
        return ("Messaggio non firmato", false);
    }
    let intact = sig["intact"].as_bool().unwrap_or(false);
    let trusted = sig["trusted"].as_bool().unwrap_or(false);
    match (intact, trusted) {
        (true, true) => ("Firma valida di un gestore PEC accreditato", true),
        (true, false) => (
            "Firma integra, ma il firmatario non risulta un gestore PEC accreditato",
            false,
        ),
        _ => (
            "Firma non valida: il messaggio potrebbe essere stato alterato",
            false,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn labels_are_italian() {
        assert_eq!(kind("avvenuta-consegna"), "Avvenuta consegna");
        assert_eq!(kind("errore-consegna"), "Mancata consegna");
        assert_eq!(kind_class("errore-consegna"), "badge ko");
        assert!(signature(&json!({"intact": true, "trusted": true})).1);
        assert!(!signature(&json!({"intact": false, "trusted": true})).1);
        assert_eq!(signature(&Value::Null).0, "Messaggio non firmato");
    }
}
