//! The incoming point (punto di ricezione, spec §2.3 and §5.4): what a message arriving
//! from the network is, what to do with it, and for whom.
//!
//! Only what the signature covers is trusted. The SMTP envelope (reverse path, forward
//! paths) and the outer header fields are written by whoever relays the message, so a
//! captured envelope or receipt can be replayed with any of them changed: the decision
//! reads the certified data (`daticert.xml`) for who the message is from and for, and a
//! message whose outer header contradicts it is not PEC.

use chrono::{DateTime, Utc};
use pec_proto::classify::{Classified, Kind, classify};
use pec_proto::daticert::Daticert;
use pec_proto::outer::contradictions;
use pec_proto::smime::{SignerCert, trust};

use crate::identity::Identity;

/// Why a message whose signature does not verify is not certified.
const BROKEN_SIGNATURE: &str = "la firma del messaggio non è valida";
/// Why a message signed by someone other than a listed gestore is not certified (the
/// detail follows).
const UNTRUSTED_SIGNER: &str = "il firmatario non è un gestore di posta certificata";

impl Verdict {
    /// Whether the message was signed but its signature failed verification (broken, or
    /// not by a listed gestore): what the metrics count as verification failures.
    pub fn signature_failed(&self) -> bool {
        matches!(self, Verdict::Ordinary { reason }
            if reason == BROKEN_SIGNATURE || reason.starts_with(UNTRUSTED_SIGNER))
    }
}

/// The decision for one received message.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// A valid transport envelope from a listed gestore: presa in carico to the sender
    /// gestore's `mailReceipt`, then delivery (after the virus scan).
    Envelope {
        /// Its certification data.
        daticert: Daticert,
        /// The original message it carries (`postacert.eml`), as found by the examination.
        postacert: Option<Vec<u8>>,
        /// The `mailReceipt` of the index record whose certificate signed it (destination
        /// of presa in carico and rilevazione virus).
        mail_receipt: String,
        /// The signing gestore's name.
        provider: String,
    },
    /// A valid receipt from a listed gestore: deliver unchanged, no receipt about it.
    Receipt {
        /// Which receipt.
        kind: Kind,
        /// Its certification data.
        daticert: Daticert,
        /// The signing gestore's name (what its receipts are told apart by).
        provider: String,
    },
    /// Signed by a listed gestore but not a correct envelope or receipt: deliver inside a
    /// busta di anomalia (it must be propagated).
    Anomaly {
        /// Why, for the anomaly text.
        reason: String,
    },
    /// Not certified mail (unsigned, unknown signer, broken signature): the policy decides
    /// between an anomaly envelope and refusal.
    Ordinary {
        /// Why it is not certified, for the anomaly text and the log.
        reason: String,
    },
}

/// Examines `raw` as the incoming point must (spec §5.4 steps 1–8), at time `now`.
pub fn examine(id: &Identity, raw: &[u8], now: DateTime<Utc>) -> Verdict {
    let c = classify(raw);
    let Some(report) = c.verify_signature() else {
        return Verdict::Ordinary {
            reason: "messaggio privo di firma".into(),
        };
    };
    if !report.intact {
        return Verdict::Ordinary {
            reason: BROKEN_SIGNATURE.into(),
        };
    }
    let Some(signer) = report.signer else {
        return Verdict::Ordinary {
            reason: "la firma non contiene il certificato del firmatario".into(),
        };
    };
    let material = id.trust();
    let t = trust(
        &signer.der,
        &signer.chain,
        &material.index,
        material.anchors.as_ref(),
        now,
    );
    let provider = match (t.trusted, t.provider) {
        (true, Some(p)) => p,
        _ => {
            return Verdict::Ordinary {
                reason: format!("{UNTRUSTED_SIGNER} ({})", t.problem.unwrap_or_default()),
            };
        }
    };
    // The record the signing certificate was found in, not one found by name: the
    // receipts for the sending gestore follow the certificate that signed.
    let mail_receipt = material
        .index
        .by_certificate_hash(&signer.sha1_hex)
        .map(|p| p.mail_receipt.clone())
        .unwrap_or_default();
    certified(c, raw, &signer, provider, mail_receipt)
}

fn certified(
    c: Classified,
    raw: &[u8],
    signer: &SignerCert,
    provider: String,
    mail_receipt: String,
) -> Verdict {
    if !c.is_well_formed() {
        return Verdict::Anomaly {
            reason: format!("messaggio non conforme: {}", c.problems.join("; ")),
        };
    }
    let Some(daticert) = c.daticert.clone() else {
        return Verdict::Anomaly {
            reason: "dati di certificazione assenti".into(),
        };
    };
    if matches!(c.kind, Kind::Anomalia | Kind::Ordinaria) {
        return Verdict::Anomaly {
            reason: "busta di anomalia ricevuta da un altro gestore".into(),
        };
    }
    let problems = contradictions(&c, raw, signer.email.as_deref());
    if !problems.is_empty() {
        return Verdict::Anomaly {
            reason: format!(
                "intestazione non coerente con i dati certificati: {}",
                problems.join("; ")
            ),
        };
    }
    match c.kind {
        Kind::PostaCertificata => Verdict::Envelope {
            daticert,
            postacert: c.postacert,
            mail_receipt,
            provider,
        },
        kind => Verdict::Receipt {
            kind,
            daticert,
            provider,
        },
    }
}

/// How the RCPTs of one SMTP transaction divide for a certified message: it is PEC only
/// for the recipients its signed data is for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Addressees {
    /// The RCPTs the certified data names (lower case, each once): an envelope is
    /// delivered to them as PEC, with presa in carico and consegna; a receipt is filed
    /// for them.
    pub certified: Vec<String>,
    /// The other RCPTs (lower case, each once): for them the message is not a correct
    /// envelope or receipt, so it is propagated inside a busta di anomalia (spec §2.3)
    /// and nothing is certified about them.
    pub stray: Vec<String>,
}

fn divide(rcpt_to: &[String], is_certified: impl Fn(&str) -> bool) -> Addressees {
    let mut a = Addressees::default();
    for r in rcpt_to {
        let r = r.trim().to_ascii_lowercase();
        if a.certified.contains(&r) || a.stray.contains(&r) {
            continue;
        }
        if is_certified(&r) {
            a.certified.push(r);
        } else {
            a.stray.push(r);
        }
    }
    a
}

/// The RCPTs of a transport envelope that its daticert lists in `<destinatari>`
/// (case-insensitive), and the others. The SMTP forward paths of a replayed envelope are
/// the replayer's choice; the recipients the sender gestore certified are not.
pub fn envelope_addressees(d: &Daticert, rcpt_to: &[String]) -> Addressees {
    divide(rcpt_to, |r| {
        d.destinatari
            .iter()
            .any(|x| x.indirizzo.trim().eq_ignore_ascii_case(r))
    })
}

/// Whether a receipt of `kind` belongs in the gestore's service mailbox (spec §3.7,
/// §3.12: presa in carico and rilevazione virus go to the sending gestore's
/// `mailReceipt`, never to users) rather than in the certified sender's.
pub fn is_service_receipt(kind: Kind) -> bool {
    matches!(kind, Kind::PresaInCarico | Kind::RilevazioneVirus)
}

/// The RCPTs a receipt of `kind` may be filed for, and the others: a user receipt only
/// for the sender it certifies (daticert `<mittente>`, spec §3.5–§3.11), a service
/// receipt only for this gestore's service addresses (`is_service`).
pub fn receipt_addressees(
    kind: Kind,
    d: &Daticert,
    rcpt_to: &[String],
    is_service: impl Fn(&str) -> bool,
) -> Addressees {
    if is_service_receipt(kind) {
        divide(rcpt_to, is_service)
    } else if kind.is_receipt() {
        divide(rcpt_to, |r| d.mittente.trim().eq_ignore_ascii_case(r))
    } else {
        divide(rcpt_to, |_| false)
    }
}

/// Why a stray RCPT of a certified message of `kind` gets it as an anomaly (Italian: it is
/// the text of the busta di anomalia).
pub fn stray_reason(kind: Kind) -> &'static str {
    if kind == Kind::PostaCertificata {
        "il destinatario non è tra i destinatari certificati del messaggio"
    } else if is_service_receipt(kind) {
        "la ricevuta è destinata solo alla casella di servizio del gestore"
    } else {
        "la ricevuta è destinata solo al mittente certificato"
    }
}

#[cfg(test)]
mod tests {
    use pec_proto::daticert::{Data, Destinatario, Errore, Tipo, TipoDestinatario};

    use super::*;

    fn daticert() -> Daticert {
        Daticert {
            tipo: Tipo::PostaCertificata,
            errore: Errore::Nessuno,
            mittente: "Mario.Rossi@pec.alfa.test".into(),
            destinatari: ["anna@pec.beta.test", "Luca@Pec.Beta.Test"]
                .map(|a| Destinatario {
                    indirizzo: a.into(),
                    tipo: TipoDestinatario::Certificato,
                })
                .to_vec(),
            risposte: "mario.rossi@pec.alfa.test".into(),
            oggetto: Some("Prova".into()),
            gestore_emittente: "Alfa".into(),
            data: Data {
                zona: "+0100".into(),
                giorno: "10/03/2025".into(),
                ora: "10:30:15".into(),
            },
            identificativo: "id@pec.alfa.test".into(),
            msgid: None,
            ricevuta: None,
            consegna: None,
            ricezione: Vec::new(),
            errore_esteso: None,
        }
    }

    fn rcpt(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn an_envelope_is_pec_only_for_its_certified_recipients() {
        let a = envelope_addressees(
            &daticert(),
            &rcpt(&[
                "ANNA@pec.beta.test",
                "intruso@pec.beta.test",
                "luca@pec.beta.test",
                "anna@pec.beta.test",
            ]),
        );
        assert_eq!(
            a.certified,
            rcpt(&["anna@pec.beta.test", "luca@pec.beta.test"])
        );
        assert_eq!(a.stray, rcpt(&["intruso@pec.beta.test"]));
        let none = envelope_addressees(&daticert(), &rcpt(&["direttore@pec.beta.test"]));
        assert!(none.certified.is_empty());
        assert_eq!(none.stray, rcpt(&["direttore@pec.beta.test"]));
    }

    #[test]
    fn a_user_receipt_is_filed_only_for_the_certified_sender() {
        let service = |r: &str| r == "ricevute@pec.alfa.test";
        for kind in [
            Kind::Accettazione,
            Kind::NonAccettazione,
            Kind::AvvenutaConsegna,
            Kind::ErroreConsegna,
            Kind::PreavvisoErroreConsegna,
        ] {
            let a = receipt_addressees(
                kind,
                &daticert(),
                &rcpt(&[
                    "mario.rossi@PEC.alfa.test",
                    "anna@pec.alfa.test",
                    "ricevute@pec.alfa.test",
                ]),
                service,
            );
            assert_eq!(
                a.certified,
                rcpt(&["mario.rossi@pec.alfa.test"]),
                "{kind:?}"
            );
            assert_eq!(
                a.stray,
                rcpt(&["anna@pec.alfa.test", "ricevute@pec.alfa.test"]),
                "{kind:?}"
            );
            assert_eq!(
                stray_reason(kind),
                "la ricevuta è destinata solo al mittente certificato"
            );
        }
    }

    #[test]
    fn a_service_receipt_is_filed_only_for_a_service_address() {
        let service = |r: &str| r == "ricevute@pec.alfa.test";
        for kind in [Kind::PresaInCarico, Kind::RilevazioneVirus] {
            let a = receipt_addressees(
                kind,
                &daticert(),
                &rcpt(&["mario.rossi@pec.alfa.test", "Ricevute@pec.alfa.test"]),
                service,
            );
            assert_eq!(a.certified, rcpt(&["ricevute@pec.alfa.test"]), "{kind:?}");
            assert_eq!(a.stray, rcpt(&["mario.rossi@pec.alfa.test"]), "{kind:?}");
        }
    }

    #[test]
    fn what_is_not_a_receipt_is_filed_for_nobody() {
        for kind in [Kind::PostaCertificata, Kind::Anomalia, Kind::Ordinaria] {
            let a = receipt_addressees(
                kind,
                &daticert(),
                &rcpt(&["mario.rossi@pec.alfa.test"]),
                |_| true,
            );
            assert!(a.certified.is_empty(), "{kind:?}");
        }
    }
}
