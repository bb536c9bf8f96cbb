//! The incoming point (punto di ricezione, spec §2.3 and §5.4): what a message arriving
//! from the network is, and what to do with it.

use chrono::{DateTime, Utc};
use pec_proto::classify::{Classified, Kind, classify};
use pec_proto::daticert::Daticert;
use pec_proto::smime::trust;

use crate::identity::Identity;

/// The decision for one received message.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// A valid transport envelope from a listed gestore: presa in carico to the sender
    /// gestore's `mailReceipt`, then delivery (after the virus scan).
    Envelope {
        /// Its certification data.
        daticert: Daticert,
        /// The signing gestore's `mailReceipt` (destination of presa in carico and
        /// rilevazione virus).
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
            reason: "la firma del messaggio non è valida".into(),
        };
    }
    let Some(signer) = report.signer else {
        return Verdict::Ordinary {
            reason: "la firma non contiene il certificato del firmatario".into(),
        };
    };
    let material = id.trust();
    let t = trust(&signer.der, &material.index, material.anchors.as_ref(), now);
    let provider = match (t.trusted, t.provider) {
        (true, Some(p)) => p,
        _ => {
            return Verdict::Ordinary {
                reason: format!(
                    "il firmatario non è un gestore di posta certificata ({})",
                    t.problem.unwrap_or_default()
                ),
            };
        }
    };
    certified(c, provider, id)
}

fn certified(c: Classified, provider: String, id: &Identity) -> Verdict {
    if !c.is_well_formed() {
        return Verdict::Anomaly {
            reason: format!("messaggio non conforme: {}", c.problems.join("; ")),
        };
    }
    let Some(daticert) = c.daticert else {
        return Verdict::Anomaly {
            reason: "dati di certificazione assenti".into(),
        };
    };
    match c.kind {
        Kind::PostaCertificata => {
            let mail_receipt = id
                .trust()
                .index
                .providers
                .iter()
                .find(|p| p.name == provider)
                .map(|p| p.mail_receipt.clone())
                .unwrap_or_default();
            Verdict::Envelope {
                daticert,
                mail_receipt,
                provider,
            }
        }
        Kind::Anomalia | Kind::Ordinaria => Verdict::Anomaly {
            reason: "busta di anomalia ricevuta da un altro gestore".into(),
        },
        kind => Verdict::Receipt { kind, daticert },
    }
}
