//! The unsigned outer header of a PEC message held against what its signature covers
//! (spec §3.1, §3.3, §3.5–§3.12, §5.4 step 8).
//!
//! A `multipart/signed` message signs only its first part: `daticert.xml`, the text and
//! `postacert.eml`. The header fields above it (Subject, From, Reply-To, To, Cc, Date,
//! Message-ID, the `X-` fields) travel unsigned, so whoever relays a captured message can
//! rewrite them and the signature still verifies. They are also what a mail client shows,
//! so a rewritten one turns a genuine certification into a forged one ("URGENTE - nuovo
//! IBAN", "Per conto di: direttore@…"). [`contradictions`] lists each outer field that
//! disagrees with the signed content; the incoming point propagates a message with any as
//! an anomaly, never as PEC.
//!
//! The rules follow what the spec says each field carries and what real gestori send
//! (the samples in `tests/fixtures/samples`); where they may legitimately differ a rule
//! allows it: `X-Riferimento-Message-ID` and `X-TipoRicevuta` may be absent, a receipt's
//! `From` may carry any display name that names no other address. The problems are in
//! Italian: they end up in the anomaly text the recipient reads.

use mail_parser::Address;

use crate::build::SUBJECT_PREFIXES;
use crate::classify::{Classified, Kind};
use crate::daticert::{Daticert, Errore, TipoRicevuta};
use crate::mime::{RawField, split_header};
use crate::original::Original;

/// Fields a message may carry once: a second copy would let a client show the one the
/// checks did not read.
const SINGLE: [&str; 14] = [
    "Subject",
    "From",
    "Sender",
    "Reply-To",
    "To",
    "Cc",
    "Date",
    "Message-ID",
    "X-Riferimento-Message-ID",
    "X-Trasporto",
    "X-Ricevuta",
    "X-TipoRicevuta",
    "X-VerificaSicurezza",
    "X-Mittente",
];

/// The display name of an envelope's `From:` before the sender address (spec §3.3).
const ON_BEHALF: &str = "Per conto di:";

/// Longest certified value quoted in a problem, in characters.
const QUOTE_MAX: usize = 80;

/// The outer header fields of `raw` that contradict its signed content, as sentences for
/// the anomaly text; empty when they all agree.
///
/// `c` is the classification of `raw`; only a certified kind with its `daticert.xml` is
/// looked at (the form checks of [`crate::classify`] report the rest).
/// `signer_address` is the e-mail address of the certificate that signed the message,
/// when known: every message a gestore generates carries it in `From:` (spec §3.1).
pub fn contradictions(c: &Classified, raw: &[u8], signer_address: Option<&str>) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(d) = c.daticert.as_ref() else {
        return problems;
    };
    if c.kind.tipo().is_none() {
        return problems;
    }
    let (fields, _) = split_header(raw);
    repeated(&fields, &mut problems);
    let Some(outer) = crate::bounded::parse_headers(raw) else {
        problems.push("intestazione del messaggio illeggibile".into());
        return problems;
    };
    subject(c.kind, d, outer.subject(), &mut problems);
    from(
        c.kind,
        d,
        outer.from(),
        outer.sender(),
        signer_address,
        &mut problems,
    );
    date(d, outer.date(), &mut problems);
    riferimento(
        d,
        c.headers.riferimento_message_id.as_deref(),
        &mut problems,
    );
    if c.kind == Kind::PostaCertificata {
        let original = c.postacert.as_deref().map(Original::parse);
        envelope(d, &outer, original.as_ref(), c, &mut problems);
    } else {
        receipt(d, c, &mut problems);
    }
    problems
}

fn repeated(fields: &[RawField<'_>], problems: &mut Vec<String>) {
    for name in SINGLE {
        if fields
            .iter()
            .filter(|f| f.name.trim().eq_ignore_ascii_case(name))
            .count()
            > 1
        {
            problems.push(format!("il campo {name} compare più volte"));
        }
    }
}

/// Text as compared: every run of whitespace, control characters and replacement
/// characters (what encoders and XML writers substitute for characters they cannot carry)
/// becomes one space, with none at the ends.
fn normalize(text: &str) -> String {
    text.split(|c: char| c.is_whitespace() || c.is_control() || c == '\u{FFFD}')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn quote(text: &str) -> String {
    let mut q: String = text.chars().take(QUOTE_MAX).collect();
    if text.chars().count() > QUOTE_MAX {
        q.push('…');
    }
    format!("\"{q}\"")
}

/// Subject = the prefix of the kind + the certified `oggetto` (spec §3.1 notes). A kind
/// with a virus variant of its prefix may use it only when `errore="virus"` is certified.
fn subject(kind: Kind, d: &Daticert, subject: Option<&str>, problems: &mut Vec<String>) {
    let oggetto = d.oggetto.as_deref().unwrap_or("");
    let got = normalize(subject.unwrap_or(""));
    let matches = SUBJECT_PREFIXES
        .iter()
        .filter(|(_, k)| *k == kind.as_str())
        .filter(|(p, _)| !p.contains("PER VIRUS") || d.errore == Errore::Virus)
        .any(|(p, _)| normalize(&format!("{p}{oggetto}")) == got);
    if !matches {
        problems.push(format!(
            "l'oggetto (Subject) non corrisponde all'oggetto certificato {}",
            quote(oggetto)
        ));
    }
}

/// One mailbox of an address field: (display name, address).
fn mailboxes(a: Option<&Address<'_>>) -> Vec<(Option<String>, String)> {
    a.map(|a| {
        a.iter()
            .map(|m| {
                (
                    m.name().map(|n| n.trim().to_string()),
                    m.address().unwrap_or("").trim().to_string(),
                )
            })
            .collect()
    })
    .unwrap_or_default()
}

fn addresses(a: Option<&Address<'_>>) -> Vec<String> {
    let mut v: Vec<String> = mailboxes(a)
        .into_iter()
        .map(|(_, a)| a.to_ascii_lowercase())
        .filter(|a| !a.is_empty())
        .collect();
    v.sort();
    v.dedup();
    v
}

fn lowercase_set(list: &[String]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|a| a.trim().to_ascii_lowercase()).collect();
    v.sort();
    v.dedup();
    v
}

/// From = the signing gestore's address (spec §3.1); for an envelope with the display
/// name "Per conto di: <mittente>" (spec §3.3); for a receipt with no display name that
/// names someone else. Sender, when present, must equal From (RFC 6109 §3.1.1).
fn from(
    kind: Kind,
    d: &Daticert,
    from: Option<&Address<'_>>,
    sender: Option<&Address<'_>>,
    signer_address: Option<&str>,
    problems: &mut Vec<String>,
) {
    let boxes = mailboxes(from);
    let [(name, address)] = boxes.as_slice() else {
        problems.push("il campo From non contiene esattamente un indirizzo".into());
        return;
    };
    if let Some(signer) = signer_address
        && !address.eq_ignore_ascii_case(signer.trim())
    {
        problems.push(format!(
            "il campo From non è l'indirizzo del gestore firmatario {}",
            quote(signer)
        ));
    }
    let name = name.as_deref().unwrap_or_default();
    if kind == Kind::PostaCertificata {
        let behalf = name
            .get(..ON_BEHALF.len())
            .filter(|p| p.eq_ignore_ascii_case(ON_BEHALF))
            .and_then(|_| name.get(ON_BEHALF.len()..))
            .map(str::trim);
        if !behalf.is_some_and(|m| m.eq_ignore_ascii_case(d.mittente.trim())) {
            problems.push(format!(
                "il campo From non indica \"{ON_BEHALF} {}\", il mittente certificato",
                d.mittente.trim()
            ));
        }
    } else {
        let lower = name.to_lowercase();
        let names_other = lower.contains('@') && !lower.trim().eq_ignore_ascii_case(address);
        if lower.contains("per conto di") || names_other {
            problems.push(
                "il nome del campo From indica un mittente diverso dal gestore firmatario".into(),
            );
        }
    }
    if sender.is_some() && addresses(sender) != vec![address.to_ascii_lowercase()] {
        problems.push("il campo Sender è diverso dal campo From".into());
    }
}

/// How far `Date:` may be from the certified instant. The spec wants one temporal
/// reference (§3.3–§3.12 `Date:`, §6), and real gestori match it to the second; a small
/// tolerance keeps a gestore whose header is written a moment after signing from having
/// all its mail turned into anomalies, while a date moved to mislead is still caught.
const DATE_TOLERANCE_SECS: i64 = 120;

/// Date = the certified date and time, within [`DATE_TOLERANCE_SECS`].
fn date(d: &Daticert, date: Option<&mail_parser::DateTime>, problems: &mut Vec<String>) {
    let certified = d.data.to_datetime();
    let Some(date) = date else {
        problems.push("il campo Date è assente o illeggibile".into());
        return;
    };
    if certified.is_some_and(|c| (c.timestamp() - date.to_timestamp()).abs() > DATE_TOLERANCE_SECS)
    {
        problems.push(format!(
            "il campo Date non corrisponde alla data certificata ({} {} {})",
            d.data.giorno.trim(),
            d.data.ora.trim(),
            d.data.zona.trim()
        ));
    }
}

fn bare_id(id: &str) -> &str {
    let id = id.trim();
    id.strip_prefix('<')
        .and_then(|i| i.strip_suffix('>'))
        .unwrap_or(id)
        .trim()
}

/// X-Riferimento-Message-ID, when present, = daticert `<msgid>` (spec §3.1 notes).
fn riferimento(d: &Daticert, header: Option<&str>, problems: &mut Vec<String>) {
    let Some(header) = header else { return };
    if d.msgid.as_deref().map(bare_id) != Some(bare_id(header)) {
        problems
            .push("il campo X-Riferimento-Message-ID non corrisponde al msgid certificato".into());
    }
}

/// The fields of a busta di trasporto (spec §3.3): Message-ID = the identificativo; To,
/// Cc and Reply-To as in the signed original; X-TipoRicevuta, when valid, = the
/// certified `<ricevuta tipo>`.
fn envelope(
    d: &Daticert,
    outer: &mail_parser::Message<'_>,
    original: Option<&Original<'_>>,
    c: &Classified,
    problems: &mut Vec<String>,
) {
    if outer.message_id().map(bare_id) != Some(bare_id(&d.identificativo)) {
        problems.push(format!(
            "il campo Message-ID non è l'identificativo certificato {}",
            quote(&d.identificativo)
        ));
    }
    if let Some(original) = original {
        if addresses(outer.to()) != lowercase_set(original.to())
            || addresses(outer.cc()) != lowercase_set(original.cc())
        {
            problems.push(
                "i destinatari dei campi To e Cc non sono quelli del messaggio originale certificato"
                    .into(),
            );
        }
        let signed_reply_to = match original.reply_to() {
            [] => vec![d.mittente.trim().to_ascii_lowercase()],
            list => lowercase_set(list),
        };
        if outer.reply_to().is_some() && addresses(outer.reply_to()) != signed_reply_to {
            problems
                .push("il campo Reply-To non è quello del messaggio originale certificato".into());
        }
    }
    let requested = c
        .headers
        .tipo_ricevuta
        .as_deref()
        .and_then(TipoRicevuta::parse);
    if requested.is_some_and(|r| r != d.ricevuta.unwrap_or_default()) {
        problems
            .push("il campo X-TipoRicevuta non corrisponde al tipo di ricevuta certificato".into());
    }
}

/// The fields of a receipt: X-Mittente (rilevazione virus, spec §3.12) = the certified
/// mittente; X-VerificaSicurezza only with a certified virus.
fn receipt(d: &Daticert, c: &Classified, problems: &mut Vec<String>) {
    if let Some(m) = c.headers.mittente.as_deref()
        && !bare_id(m).eq_ignore_ascii_case(d.mittente.trim())
    {
        problems.push("il campo X-Mittente non è il mittente certificato".into());
    }
    if c.headers.verifica_sicurezza.is_some() && d.errore != Errore::Virus {
        problems.push("il campo X-VerificaSicurezza segnala un virus non certificato".into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_folds_whitespace_controls_and_replacements() {
        assert_eq!(
            normalize("  POSTA  CERTIFICATA:\r\n\tFattura\u{1}12 "),
            "POSTA CERTIFICATA: Fattura 12"
        );
        assert_eq!(normalize("a\u{FFFD}b"), "a b");
        assert_eq!(normalize(" \t "), "");
    }

    #[test]
    fn ids_compare_without_brackets_and_spaces() {
        assert_eq!(bare_id(" <a@b> "), "a@b");
        assert_eq!(bare_id("a@b"), "a@b");
        assert_eq!(bare_id("<a@b"), "<a@b");
    }

    #[test]
    fn quotes_are_bounded() {
        let long = "x".repeat(500);
        assert_eq!(quote(&long).chars().count(), QUOTE_MAX + 3);
        assert_eq!(quote("Fattura"), "\"Fattura\"");
    }
}
