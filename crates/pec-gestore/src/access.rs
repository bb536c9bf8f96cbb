//! The access point (punto di accesso, spec §2.2): the formal checks of a submission, then
//! either the signed ricevuta di accettazione and busta di trasporto, or the avviso di non
//! accettazione.

use chrono::{DateTime, Utc};
use pec_proto::build::{Notice, Transaction};
use pec_proto::daticert::{Destinatario, TipoDestinatario};
use pec_proto::mime::bare_address;
use pec_proto::original::Original;

use crate::Result;
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
    /// The busta di trasporto, to send to every recipient domain.
    pub envelope: Vec<u8>,
    /// Recipients in PEC domains: the 12 h / 24 h timers run for them.
    pub certified: Vec<String>,
}

/// A refused submission: the avviso di non accettazione for the sender.
#[derive(Debug, Clone)]
pub struct Refused {
    /// The transaction's facts as far as they could be read.
    pub transaction: Transaction,
    /// The single temporal reference.
    pub time: DateTime<Utc>,
    /// Why, in Italian as it appears in the notice.
    pub reason: String,
    /// Whether the reason is a virus (the message goes to the virus store).
    pub virus: bool,
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
/// then the signed acceptance receipt and transport envelope, or the non-acceptance notice.
pub fn submit(
    id: &Identity,
    sub: &Submission<'_>,
    limits: &Limits,
    now: DateTime<Utc>,
) -> Result<Outcome> {
    let original = Original::parse(sub.raw);
    let identificativo = id.new_id(now);
    let mut transaction =
        Transaction::from_original(&original, &identificativo, |a| id.classify(a));
    if transaction.mittente.is_empty() {
        transaction.mittente = sub.mail_from.to_string();
    }
    if transaction.destinatari.is_empty() {
        transaction.destinatari = sub
            .rcpt_to
            .iter()
            .map(|a| Destinatario {
                indirizzo: a.clone(),
                tipo: id.classify(a),
            })
            .collect();
    }
    let refusal = match (sub.virus, formal_check(&original, sub, limits)) {
        (Some(virus), _) => Some((virus.to_string(), true)),
        (None, Err(reason)) => Some((reason, false)),
        (None, Ok(())) => None,
    };
    if let Some((reason, virus)) = refusal {
        let n = if virus {
            Notice::NonAccettazioneVirus { virus: &reason }
        } else {
            Notice::NonAccettazione { reason: &reason }
        };
        let notice = id.notice(&transaction, &n, sub.mail_from, now)?;
        return Ok(Outcome::Refused(Refused {
            transaction,
            time: now,
            reason,
            virus,
            notice: notice.bytes,
            notice_id: notice.message_id,
        }));
    }

    let receipt = id.notice(&transaction, &Notice::Accettazione, sub.mail_from, now)?;
    let envelope = id.transport_envelope(&transaction, &original, now)?;
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
        envelope,
        certified,
    }))
}
