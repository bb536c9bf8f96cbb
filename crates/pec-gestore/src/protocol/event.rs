//! A protocol office's registry event: what its registry learns about a PEC delivered
//! to the office (the certified data, the attachments with their verdict and signature
//! check, the sender's `segnatura.xml`) or about a receipt of a PEC the office sent.
//! Built as JSON in the delivery's step and stored with it
//! ([`pec_store::NewRegistryEvent`]); the webhook and `GET /api/v1/events` send it
//! wrapped by [`envelope`].

use chrono::{DateTime, Utc};
use pec_proto::daticert::Daticert;
use pec_proto::document::Format;
use pec_proto::segnatura::Segnatura;
use pec_store::{NewRegistryEvent, RegistryEvent};
use serde::Serialize;
use serde_json::{Value, json};

use super::ProtocolOffice;
use super::policy::{Judged, Verdict};
use crate::clock::italian;

/// [`NewRegistryEvent::kind`] of a PEC delivered to the office.
pub const POSTA_CERTIFICATA: &str = "posta-certificata";

/// The event's JSON.
#[derive(Serialize)]
struct Body<'a> {
    /// What happened.
    r#type: &'a str,
    /// The office's mailbox.
    mailbox: &'a str,
    /// When it was delivered there (Italian time, RFC 3339).
    delivered_at: String,
    /// The certified sender.
    sender: &'a str,
    /// The certified subject.
    subject: Option<&'a str>,
    /// The PEC identificativo.
    identificativo: &'a str,
    /// Every field of the `daticert.xml`.
    daticert: Value,
    /// Whether every attachment complies with the office's policy (receipts: true).
    complies: bool,
    /// The attachments, judged.
    attachments: Vec<Value>,
    /// Attachments beyond those judged.
    unjudged_attachments: usize,
    /// The sender's `segnatura.xml`, when the message carries one that reads.
    segnatura: Option<&'a Segnatura>,
}

/// The fields of a `daticert.xml`, by their XML names.
fn daticert(d: &Daticert) -> Value {
    json!({
        "tipo": d.tipo.as_str(),
        "errore": d.errore.as_str(),
        "mittente": d.mittente,
        "destinatari": d.destinatari.iter().map(|x| json!({
            "indirizzo": x.indirizzo,
            "tipo": x.tipo.as_str(),
        })).collect::<Vec<_>>(),
        "risposte": d.risposte,
        "oggetto": d.oggetto,
        "gestore-emittente": d.gestore_emittente,
        "data": {"zona": d.data.zona, "giorno": d.data.giorno, "ora": d.data.ora},
        "identificativo": d.identificativo,
        "msgid": d.msgid,
        "ricevuta": d.ricevuta.map(|r| r.as_str()),
        "consegna": d.consegna,
        "ricezione": d.ricezione,
        "errore-esteso": d.errore_esteso,
    })
}

/// One attachment: name, size, SHA-256, detected format, verdict and, for a `.p7m`,
/// the check of each signature layer (outermost first).
fn attachment(a: &Judged, office: &ProtocolOffice) -> Value {
    let signatures: Vec<Value> = a
        .format
        .as_ref()
        .map(Format::signatures)
        .unwrap_or_default()
        .into_iter()
        .map(|s| {
            json!({
                "intact": s.intact,
                "signer": s.signer.as_ref().map(|c| &c.subject),
                "signer_email": s.signer.as_ref().and_then(|c| c.email.as_ref()),
                "signing_time": s.signing_time.map(|t| t.to_rfc3339()),
                "problem": s.problem,
            })
        })
        .collect();
    json!({
        "name": a.name,
        "size": a.size,
        "sha256": a.sha256.to_ascii_lowercase(),
        "format": a.format.as_ref().map(Format::name),
        "complies": a.breach.is_none(),
        "reason": a.breach.as_ref().map(|b| b.italian(&office.policy)),
        "signatures": signatures,
    })
}

/// What the event is about and when it happened.
pub struct Occurrence<'a> {
    /// The office's mailbox.
    pub mailbox: &'a str,
    /// The certified data of the message delivered.
    pub daticert: &'a Daticert,
    /// What was delivered (`posta-certificata` or a receipt's kind).
    pub kind: &'a str,
    /// When.
    pub at: DateTime<Utc>,
    /// Its index in the batch's deliveries.
    pub delivery: usize,
}

/// The registry event of `what`: the attachments as `verdict` judged them under
/// `office`'s policy (none for a receipt), with the sender's `segnatura` if any.
pub fn new_event(
    office: &ProtocolOffice,
    what: &Occurrence<'_>,
    verdict: &Verdict,
    segnatura: Option<&Segnatura>,
) -> NewRegistryEvent {
    let d = what.daticert;
    let body = Body {
        r#type: what.kind,
        mailbox: what.mailbox,
        delivered_at: italian(what.at).to_rfc3339(),
        sender: &d.mittente,
        subject: d.oggetto.as_deref(),
        identificativo: &d.identificativo,
        daticert: daticert(d),
        complies: verdict.complies(),
        attachments: verdict
            .attachments
            .iter()
            .map(|a| attachment(a, office))
            .collect(),
        unjudged_attachments: verdict.unjudged,
        segnatura,
    };
    // A receipt is one per kind, recipient (or recipients taken in charge) and PEC.
    let about = d.consegna.clone().unwrap_or_else(|| d.ricezione.join(","));
    let key = if what.kind == POSTA_CERTIFICATA {
        format!("{POSTA_CERTIFICATA}:{}", d.identificativo)
    } else {
        format!("{}:{}:{about}", what.kind, d.identificativo)
    };
    NewRegistryEvent {
        address: what.mailbox.to_ascii_lowercase(),
        key,
        kind: what.kind.to_string(),
        // Serialising plain strings, numbers and maps cannot fail.
        body: serde_json::to_string(&body).unwrap_or_default(),
        delivery: Some(what.delivery),
        push: office.webhook.is_some(),
        at: what.at.timestamp(),
    }
}

/// What the webhook receives and `GET /api/v1/events` lists: the stored event with its
/// id, mailbox and time; the API adds the protocol number when `with_protocol`.
pub fn envelope(e: &RegistryEvent, with_protocol: bool) -> Value {
    let event: Value = serde_json::from_str(&e.body).unwrap_or(Value::Null);
    let mut out = json!({
        "id": e.id,
        "mailbox": e.address,
        "type": e.kind,
        "created_at": e.created_at,
        "event": event,
    });
    if with_protocol {
        out["protocol"] = match &e.protocol {
            Some(p) => json!({"number": p.number, "date": p.date}),
            None => Value::Null,
        };
        out["webhook"] = json!({
            "pending": e.pending,
            "attempts": e.attempts,
            "sent_at": e.sent_at,
            "last_error": e.last_error,
        });
    }
    out
}
