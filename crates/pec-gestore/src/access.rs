//! The access point (punto di accesso, spec §2.2): the formal checks of a submission, then
//! either the signed ricevuta di accettazione and busta di trasporto, or the avviso di non
//! accettazione.

use chrono::{DateTime, Utc};
use pec_proto::bounded::{self, Exceeded, MimeLimits};
use pec_proto::build::{Envelope, Notice, Transaction};
use pec_proto::daticert::{Destinatario, TipoDestinatario};
use pec_proto::mime::bare_address;
use pec_proto::original::{Completed, Original};

use crate::Result;
use crate::clock::italian;
use crate::identity::Identity;

/// The provider's limits on submissions (spec §7.1: at least 50 recipients and
/// size × recipients ≤ 30 MB must be allowed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most recipients (To + Cc) in one message.
    pub max_recipients: usize,
    /// Most bytes × recipients.
    pub max_size_times_recipients: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_recipients: 100,
            max_size_times_recipients: 30 * 1024 * 1024,
        }
    }
}

/// A message as the submission service received it.
#[derive(Debug, Clone, Copy)]
pub struct Submission<'a> {
    /// The bytes after DATA.
    pub raw: &'a [u8],
    /// The SMTP reverse path.
    pub mail_from: &'a str,
    /// The SMTP forward paths.
    pub rcpt_to: &'a [String],
    /// The mailbox the client authenticated as.
    pub authenticated: &'a str,
    /// The domains this gestore hosts (lower case): their recipients are certified.
    pub hosted: &'a [String],
    /// What the antivirus found, if anything.
    pub virus: Option<&'a str>,
}

/// An accepted submission: everything the caller must make durable before answering `250`.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The transaction's facts (PEC msgid, classified recipients, ...).
    pub transaction: Transaction,
    /// The single temporal reference of the acceptance.
    pub time: DateTime<Utc>,
    /// The ricevuta di accettazione, for the sender's mailbox.
    pub receipt: Vec<u8>,
    /// The Message-ID of the receipt (no angle brackets).
    pub receipt_id: String,
    /// The busta di trasporto, to send to every recipient domain, with what its incoming
    /// point reads back from it.
    pub envelope: Box<Envelope>,
    /// Recipients in PEC domains: the 12 h / 24 h timers run for them.
    pub certified: Vec<String>,
}

/// A refused submission: the avviso di non accettazione for the sender.
/// Why a submission is refused, in a word: which rule refused it. The metrics count
/// refusals by it (the Italian reason itself carries details).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalCause {
    /// A formal check of the message against its envelope (spec §7.1).
    Formal,
    /// A virus (the message goes to the virus store).
    Virus,
    /// A MIME structure too deep or with too many parts to carry.
    Structure,
}

impl RefusalCause {
    /// Its name as a metrics label value.
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalCause::Formal => "formal",
            RefusalCause::Virus => "virus",
            RefusalCause::Structure => "structure",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Refused {
    /// The transaction's facts as far as they could be read.
    pub transaction: Transaction,
    /// The single temporal reference.
    pub time: DateTime<Utc>,
    /// Why, in Italian as it appears in the notice.
    pub reason: String,
    /// Which rule refused it.
    pub cause: RefusalCause,
    /// The signed notice, to the SMTP reverse path.
    pub notice: Vec<u8>,
    /// Its Message-ID (no angle brackets).
    pub notice_id: String,
}

/// The outcome of a submission.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Accepted: receipt and envelope to store and send.
    Accepted(Accepted),
    /// Not accepted: the notice to deliver to the sender.
    Refused(Refused),
}

/// The submitted `raw` as the access point takes it at `now`: with `Date:` (Italian legal
/// time) and a new `Message-ID:` under the gestore's domain added when it lacks them, as a
/// submission server may do (RFC 6409 §8.3), so that the formal checks, the envelope and
/// `postacert.eml` see a complete RFC 5322 message; `None` when nothing is missing.
pub fn complete(id: &Identity, raw: &[u8], now: DateTime<Utc>) -> Option<Completed> {
    Original::parse(raw).completed(&italian(now).to_rfc2822(), &id.new_id(now))
}

/// What the legal log says about the fields [`complete`] added (empty when none).
pub fn completion_note(added: &[&str]) -> String {
    if added.is_empty() {
        return String::new();
    }
    format!(
        "campi aggiunti dal punto di accesso (RFC 6409 §8.3): {}",
        added.join(", ")
    )
}

fn same_address(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

/// The formal checks of spec §2.2 (checklist 2–9): `Err` carries the reason written in the
/// avviso di non accettazione.
pub fn formal_check(
    original: &Original<'_>,
    sub: &Submission<'_>,
    limits: &Limits,
) -> std::result::Result<(), String> {
    for name in [
        "From",
        "To",
        "Cc",
        "Subject",
        "Message-ID",
        "Date",
        "Reply-To",
    ] {
        if original.count(name) > 1 {
            return Err(format!("il campo {name} compare più volte"));
        }
    }
    let from_field = original
        .field("From")
        .ok_or("il messaggio non contiene il campo From")?;
    let from = match original.from() {
        [one] => one.clone(),
        [] => return Err("il campo From non contiene un indirizzo valido".into()),
        _ => return Err("il campo From contiene più di un indirizzo".into()),
    };
    if bare_address(&from).as_deref() != Some(from.as_str()) {
        return Err(format!(
            "l'indirizzo del mittente non è valido: {}",
            from_field.value()
        ));
    }
    if !same_address(&from, sub.mail_from) {
        return Err("il mittente del messaggio non coincide con il mittente SMTP".into());
    }
    if !same_address(&from, sub.authenticated) {
        return Err("il mittente del messaggio non coincide con l'utente autenticato".into());
    }
    if original.field("To").is_none() || original.to().is_empty() {
        return Err("il messaggio non contiene destinatari nel campo To".into());
    }
    let listed: Vec<&String> = original.to().iter().chain(original.cc()).collect();
    if let Some(bad) = listed
        .iter()
        .find(|a| bare_address(a).as_deref() != Some(a.as_str()))
    {
        return Err(format!("l'indirizzo del destinatario non è valido: {bad}"));
    }
    if original.field("Bcc").is_some_and(|f| !f.value().is_empty()) {
        return Err("il messaggio contiene destinatari in copia nascosta (Bcc)".into());
    }
    let mut header_set: Vec<String> = listed.iter().map(|a| a.to_ascii_lowercase()).collect();
    let mut smtp_set: Vec<String> = sub.rcpt_to.iter().map(|a| a.to_ascii_lowercase()).collect();
    header_set.sort();
    header_set.dedup();
    smtp_set.sort();
    smtp_set.dedup();
    if header_set != smtp_set {
        return Err("i destinatari SMTP non coincidono con i destinatari dei campi To e Cc".into());
    }
    if header_set.len() > limits.max_recipients {
        return Err(format!(
            "il numero di destinatari supera il limite di {}",
            limits.max_recipients
        ));
    }
    if sub.raw.len().saturating_mul(header_set.len()) > limits.max_size_times_recipients {
        return Err(
            "la dimensione del messaggio per il numero di destinatari supera il limite consentito"
                .into(),
        );
    }
    Ok(())
}

/// Runs the access point on a submission at time `now`: formal checks, antivirus verdict,
/// the MIME structure of the transport envelope (within [`MimeLimits::DEFAULT`]), then the
/// signed acceptance receipt and transport envelope, or the non-acceptance notice.
pub fn submit(
    id: &Identity,
    sub: &Submission<'_>,
    limits: &Limits,
    now: DateTime<Utc>,
) -> Result<Outcome> {
    let original = Original::parse(sub.raw);
    let identificativo = id.new_id(now);
    let mut transaction =
        Transaction::from_original(&original, &identificativo, |a| id.classify(a, sub.hosted));
    if transaction.mittente.is_empty() {
        transaction.mittente = sub.mail_from.to_string();
    }
    if transaction.destinatari.is_empty() {
        transaction.destinatari = sub
            .rcpt_to
            .iter()
            .map(|a| Destinatario {
                indirizzo: a.clone(),
                tipo: id.classify(a, sub.hosted),
            })
            .collect();
    }
    let refusal = match (sub.virus, formal_check(&original, sub, limits)) {
        (Some(virus), _) => Some((virus.to_string(), RefusalCause::Virus)),
        (None, Err(reason)) => Some((reason, RefusalCause::Formal)),
        (None, Ok(())) => None,
    };
    if let Some((reason, cause)) = refusal {
        return refuse(id, transaction, reason, cause, sub.mail_from, now);
    }

    // The original travels inside our envelope (three more MIME levels, eight more parts),
    // and every reader of the envelope parses it within the MIME limits: measuring the
    // envelope itself also catches the shapes that only go wrong once wrapped.
    let envelope = id.transport_envelope(&transaction, &original, now)?;
    if let Some(exceeded) = bounded::measure(&envelope.bytes, &MimeLimits::DEFAULT).exceeded {
        return refuse(
            id,
            transaction,
            too_complex(exceeded),
            RefusalCause::Structure,
            sub.mail_from,
            now,
        );
    }
    let receipt = id.notice(&transaction, &Notice::Accettazione, sub.mail_from, now)?;
    let certified = transaction
        .destinatari
        .iter()
        .filter(|d| d.tipo == TipoDestinatario::Certificato)
        .map(|d| d.indirizzo.clone())
        .collect();
    Ok(Outcome::Accepted(Accepted {
        transaction,
        time: now,
        receipt: receipt.bytes,
        receipt_id: receipt.message_id,
        envelope: Box::new(envelope),
        certified,
    }))
}

/// The avviso di non accettazione for `reason`, to the SMTP reverse path `to`.
fn refuse(
    id: &Identity,
    transaction: Transaction,
    reason: String,
    cause: RefusalCause,
    to: &str,
    now: DateTime<Utc>,
) -> Result<Outcome> {
    let n = if cause == RefusalCause::Virus {
        Notice::NonAccettazioneVirus { virus: &reason }
    } else {
        Notice::NonAccettazione { reason: &reason }
    };
    let notice = id.notice(&transaction, &n, to, now)?;
    Ok(Outcome::Refused(Refused {
        transaction,
        time: now,
        reason,
        cause,
        notice: notice.bytes,
        notice_id: notice.message_id,
    }))
}

/// The reason, for the sender, why a MIME structure is refused.
fn too_complex(exceeded: Exceeded) -> String {
    let detail = match exceeded {
        Exceeded::Depth => "troppi livelli di annidamento",
        Exceeded::Parts => "troppe parti",
        Exceeded::FailedSearches => "troppi separatori (boundary) dichiarati e mai usati",
        Exceeded::BoundaryLength => "separatore (boundary) troppo lungo",
        Exceeded::Inconsistent => {
            "un messaggio allegato contiene direttamente un altro messaggio allegato"
        }
    };
    format!("struttura MIME troppo complessa: {detail}")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::TimeZone;
    use pec_proto::classify::{Kind, classify};
    use pec_proto::index::ProviderIndex;
    use pec_proto::smime::{Digest, Signer};

    use super::*;

    /// Signs with a fixed string: the MIME structure is what is under test.
    struct FixedSigner;

    impl Signer for FixedSigner {
        fn address(&self) -> &str {
            "posta-certificata@pec.alfa.test"
        }
        fn digest(&self) -> Digest {
            Digest::Sha256
        }
        fn sign_detached(&self, _: &[u8], _: DateTime<Utc>) -> pec_proto::Result<Vec<u8>> {
            Ok(b"signature".to_vec())
        }
    }

    const SENDER: &str = "mario.rossi@pec.alfa.test";
    const RECIPIENT: &str = "anna.bianchi@pec.beta.test";

    /// Submits an original whose body is `levels` multipart/mixed around a text part.
    fn submit_nested(levels: usize) -> Outcome {
        let mut body = String::new();
        for level in 0..levels {
            body.push_str(&format!(
                "Content-Type: multipart/mixed; boundary=\"b{level}x\"\r\n\r\n--b{level}x\r\n"
            ));
        }
        body.push_str("Content-Type: text/plain\r\n\r\ntesto\r\n");
        for level in (0..levels).rev() {
            body.push_str(&format!("--b{level}x--\r\n"));
        }
        submit_body(&body)
    }

    fn submit_body(body: &str) -> Outcome {
        let id = Identity::new(
            "Alfa PEC".into(),
            Arc::new(FixedSigner),
            ProviderIndex::default(),
            None,
        );
        let raw = format!("From: {SENDER}\r\nTo: {RECIPIENT}\r\nSubject: prova\r\n{body}");
        let rcpt = [RECIPIENT.to_string()];
        let sub = Submission {
            raw: raw.as_bytes(),
            mail_from: SENDER,
            rcpt_to: &rcpt,
            authenticated: SENDER,
            hosted: &[],
            virus: None,
        };
        let now = Utc.with_ymd_and_hms(2025, 3, 10, 9, 30, 0).unwrap();
        submit(&id, &sub, &Limits::default(), now).unwrap()
    }

    fn refusal(outcome: Outcome) -> Refused {
        match outcome {
            Outcome::Refused(r) => r,
            Outcome::Accepted(_) => panic!("accepted"),
        }
    }

    #[test]
    fn mime_structures_beyond_the_limits_once_enveloped_are_refused() {
        // The text part of 96 levels is at depth 97, at 100 in the envelope: the limit.
        let Outcome::Accepted(a) = submit_nested(96) else {
            panic!("refused at the limit")
        };
        assert!(bounded::measure(&a.envelope.bytes, &MimeLimits::DEFAULT).within_limits());

        for levels in [97, 20_000] {
            let r = refusal(submit_nested(levels));
            assert_eq!(
                r.reason,
                "struttura MIME troppo complessa: troppi livelli di annidamento"
            );
            assert_eq!(r.cause, RefusalCause::Structure);
            let notice = classify(&r.notice);
            assert_eq!(notice.kind, Kind::NonAccettazione);
            assert_eq!(notice.headers.to.as_deref(), Some(SENDER));
            assert_eq!(
                notice.daticert.unwrap().errore_esteso.as_deref(),
                Some(r.reason.as_str())
            );
        }
    }

    #[test]
    fn an_original_that_is_only_an_attached_message_is_refused() {
        // Fine alone, but inside the envelope's multipart mail-parser cannot rebuild it.
        const FORWARD: &str =
            "Content-Type: message/rfc822\r\n\r\nSubject: inoltro\r\n\r\ntesto\r\n";
        assert!(bounded::measure(FORWARD.as_bytes(), &MimeLimits::DEFAULT).within_limits());
        let r = refusal(submit_body(FORWARD));
        assert_eq!(
            r.reason,
            "struttura MIME troppo complessa: \
             un messaggio allegato contiene direttamente un altro messaggio allegato"
        );
    }
}
