//! The `pec` property of an Email (capability `urn:pecd:params:jmap:pec`, docs/JMAP.md):
//! `null` for ordinary mail; for an envelope, anomaly, receipt or notice, what it is
//! (`kind`), its `daticert.xml` (`daticert`), the message it refers to (`refersTo`), its
//! S/MIME signature (`signature`) and the original it carries, if any (`original`).
//!
//! Everything comes from pec-proto's classification, daticert reader and S/MIME
//! verification; whether the signer is a gestore of the provider index is the gestore's
//! judgement, asked through [`SignerTrust`].

use chrono::{DateTime, Utc};
use pec_proto::classify::{Classified, Kind, classify};
use pec_proto::daticert::Daticert;
use pec_proto::smime::SignerCert;
use serde_json::{Value, json};

use crate::api::Ctx;

/// Whether a signature's certificate is that of a PEC gestore (in the provider index,
/// chaining to the trusted CAs) at a time: the gestore's trust material answers.
pub trait SignerTrust: Send + Sync {
    /// Whether `signer` was a trusted gestore certificate at `at`.
    fn trusted(&self, signer: &SignerCert, at: DateTime<Utc>) -> bool;
}

/// An id as compared by `pecRefersTo`: without spaces and angle brackets.
pub fn bare_id(id: &str) -> &str {
    id.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim()
}

/// What a query needs of a message's PEC nature, without verifying its signature.
pub struct Facts {
    /// What it is.
    pub kind: Kind,
    /// The ids `pecRefersTo` matches: the `X-Riferimento-Message-ID`, and the daticert
    /// `identificativo` and `msgid` (bare).
    pub ids: Vec<String>,
}

/// The PEC facts of `raw`; `None` for ordinary mail.
pub fn facts(raw: &[u8]) -> Option<Facts> {
    let c = classify(raw);
    if c.kind == Kind::Ordinaria {
        return None;
    }
    let mut ids: Vec<String> = Vec::new();
    ids.extend(
        c.headers
            .riferimento_message_id
            .as_deref()
            .map(bare_id)
            .map(String::from),
    );
    if let Some(d) = &c.daticert {
        ids.push(bare_id(&d.identificativo).to_string());
        ids.extend(d.msgid.as_deref().map(bare_id).map(String::from));
    }
    ids.retain(|i| !i.is_empty());
    Some(Facts { kind: c.kind, ids })
}

/// The `pec` property of the message `raw`.
pub fn property(ctx: &Ctx<'_>, raw: &[u8]) -> Value {
    let c = classify(raw);
    if c.kind == Kind::Ordinaria {
        return Value::Null;
    }
    json!({
        "kind": c.kind.as_str(),
        "refersTo": c.headers.riferimento_message_id.as_deref().map(bare_id),
        "daticert": c.daticert.as_ref().map(daticert),
        "signature": signature(ctx, &c),
        "original": original(&c),
        "problems": c.problems,
    })
}

/// `daticert.xml` as JSON, element by element (names of the DTD, camel case).
fn daticert(d: &Daticert) -> Value {
    json!({
        "tipo": d.tipo.as_str(),
        "errore": d.errore.as_str(),
        "mittente": d.mittente,
        "destinatari": d.destinatari.iter().map(|r| json!({
            "indirizzo": r.indirizzo,
            "tipo": r.tipo.as_str(),
        })).collect::<Vec<_>>(),
        "risposte": d.risposte,
        "oggetto": d.oggetto,
        "gestoreEmittente": d.gestore_emittente,
        "data": {
            "zona": d.data.zona,
            "giorno": d.data.giorno,
            "ora": d.data.ora,
            "utc": d.data.to_datetime().map(|t| crate::email::utc_date(t.timestamp())),
        },
        "identificativo": d.identificativo,
        "msgid": d.msgid,
        "ricevuta": d.ricevuta.map(|r| r.as_str()),
        "consegna": d.consegna,
        "ricezione": d.ricezione,
        "erroreEsteso": d.errore_esteso,
    })
}

/// The signature: intact (the bytes match), trusted (a gestore of the index signed),
/// the signer and the signing time; `null` for an unsigned message.
fn signature(ctx: &Ctx<'_>, c: &Classified) -> Value {
    let Some(report) = c.verify_signature() else {
        return Value::Null;
    };
    let at = report.signing_time.unwrap_or_else(Utc::now);
    let trusted = report.intact
        && report
            .signer
            .as_ref()
            .is_some_and(|s| ctx.trust.trusted(s, at));
    json!({
        "intact": report.intact,
        "trusted": trusted,
        "signer": report.signer.as_ref().map(|s| json!({
            "subject": s.subject,
            "email": s.email,
            "sha1": s.sha1_hex,
        })),
        "signingTime": report.signing_time.map(|t| crate::email::utc_date(t.timestamp())),
        "problem": report.problem,
    })
}

/// The original a message carries as `postacert.eml` (an envelope, an anomaly, a
/// completa delivery receipt): its main header fields and size; `null` without one.
fn original(c: &Classified) -> Value {
    let Some(bytes) = &c.postacert else {
        return Value::Null;
    };
    let Some(m) = pec_proto::bounded::parse_headers(bytes) else {
        return json!({"size": bytes.len()});
    };
    json!({
        "messageId": m.message_id(),
        "from": m.from().and_then(|a| a.first()).and_then(|a| a.address()),
        "subject": m.subject(),
        "sentAt": m.date().map(|d| d.to_rfc3339()),
        "size": bytes.len(),
    })
}
