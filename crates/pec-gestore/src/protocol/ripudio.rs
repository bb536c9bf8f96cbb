//! The ripudio: the PEC a protocol office sends back to the sender of a message whose
//! attachments it cannot register, naming the message and the reason for each
//! attachment. It is written here as an ordinary message from the office's mailbox and
//! submitted through our own access point (see [`ACCESS_POINT`]), so it is a PEC like
//! any other, with its accettazione.

use chrono::{DateTime, Utc};
use pec_proto::build::Transaction;
use pec_proto::mime::{base64_lines, prefixed_subject};

use super::policy::{DocumentPolicy, Verdict};
use crate::clock::italian;

/// The `domain` of an outbound queue entry that is not relayed but submitted through the
/// access point, from its `mail_from` mailbox: the durable job of a ripudio. No real
/// domain starts with a dot.
pub const ACCESS_POINT: &str = ".access-point";

/// The opening of a ripudio when the office configures none.
pub const DEFAULT_TEXT: &str = "Il messaggio di posta elettronica certificata indicato di \
seguito, pervenuto a questa casella, non può essere protocollato perché uno o più allegati \
non rispettano le regole dell'ufficio protocollo. Si prega di inviarlo nuovamente con \
documenti conformi.";

/// Whether and how a protocol office repudiates a message it cannot register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ripudio {
    /// The Italian opening of the message (the details of the message follow it).
    pub text: String,
    /// A competent-office mailbox that gets a copy (in Cc), if any.
    pub copy_to: Option<String>,
}

/// What a ripudio is about: the repudiated PEC, where it arrived, and when.
pub struct Repudiated<'a> {
    /// The PEC's transaction (subject, identificativo, certified sender).
    pub tx: &'a Transaction,
    /// The office's mailbox, which sends the ripudio.
    pub office: &'a str,
    /// When the PEC was delivered.
    pub delivered_at: DateTime<Utc>,
}

impl Ripudio {
    /// The ripudio of `what`, judged `verdict` under `policy`, as a message for the
    /// access point: From the office, To the certified sender, Cc [`Ripudio::copy_to`].
    pub fn message(
        &self,
        what: &Repudiated<'_>,
        policy: &DocumentPolicy,
        verdict: &Verdict,
    ) -> Vec<u8> {
        let tx = what.tx;
        let subject = tx.oggetto.as_deref().unwrap_or("");
        let mut body = format!("{}\n\n", self.text.trim());
        body.push_str(&format!("Oggetto: {subject}\n"));
        body.push_str(&format!("Identificativo: {}\n", tx.identificativo));
        body.push_str(&format!(
            "Ricevuto il: {}\n\nAllegati non conformi:\n",
            italian(what.delivered_at).format("%d/%m/%Y alle ore %H:%M:%S (%z)")
        ));
        for a in &verdict.attachments {
            if let Some(breach) = &a.breach {
                body.push_str(&format!("- {}: {}\n", a.name, breach.italian(policy)));
            }
        }
        if verdict.unjudged > 0 {
            body.push_str(&format!(
                "- altri {} allegati: oltre il numero massimo esaminato ({})\n",
                verdict.unjudged,
                pec_proto::document::MAX_ATTACHMENTS
            ));
        }
        let mut head = format!(
            "From: {}\r\nTo: {}\r\n",
            no_controls(what.office),
            no_controls(&tx.mittente)
        );
        if let Some(copy) = &self.copy_to {
            head.push_str(&format!("Cc: {}\r\n", no_controls(copy)));
        }
        head.push_str(&format!(
            "Subject: {}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n",
            prefixed_subject("RIPUDIO: ", subject)
        ));
        [
            head.as_bytes(),
            base64_lines(body.replace('\n', "\r\n").as_bytes()).as_bytes(),
        ]
        .concat()
    }

    /// The recipients of the ripudio of a PEC from `sender`.
    pub fn recipients(&self, sender: &str) -> Vec<String> {
        std::iter::once(sender.to_string())
            .chain(self.copy_to.clone())
            .collect()
    }
}

/// `text` without control characters, so that an address cannot end a header line.
fn no_controls(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use pec_proto::daticert::TipoRicevuta;

    #[test]
    fn the_ripudio_names_the_message_and_no_header_can_be_injected() {
        let tx = Transaction {
            mittente: "mario@pec.alfa.test\r\nBcc: x@evil.test".into(),
            destinatari: Vec::new(),
            risposte: String::new(),
            oggetto: Some("Città\r\nBcc: y@evil.test".into()),
            identificativo: "id-1@pec.alfa.test".into(),
            msgid: None,
            ricevuta: TipoRicevuta::default(),
        };
        let policy = DocumentPolicy::default();
        let verdict = policy.judge(
            b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nx\r\n\
              --b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; \
              filename=a.exe\r\n\r\nMZ\r\n--b--\r\n",
        );
        assert!(!verdict.complies());
        let ripudio = Ripudio {
            text: "Non protocollabile.".into(),
            copy_to: Some("seg@pec.comune.test".into()),
        };
        let what = Repudiated {
            tx: &tx,
            office: "protocollo@pec.comune.test",
            delivered_at: DateTime::from_timestamp(1_764_489_600, 0).unwrap(),
        };
        let bytes = ripudio.message(&what, &policy, &verdict);
        let (head, body) = std::str::from_utf8(&bytes)
            .unwrap()
            .split_once("\r\n\r\n")
            .unwrap();
        assert!(!head.contains("\r\nBcc"), "{head}");
        assert!(head.contains("\r\nCc: seg@pec.comune.test\r\n"), "{head}");
        assert!(head.contains("Subject: RIPUDIO: =?UTF-8?B?"), "{head}");
        let text = base64::engine::general_purpose::STANDARD
            .decode(body.replace("\r\n", ""))
            .unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.starts_with("Non protocollabile.\r\n\r\n"), "{text}");
        assert!(
            text.contains("Identificativo: id-1@pec.alfa.test\r\n"),
            "{text}"
        );
        assert!(
            text.contains("Ricevuto il: 30/11/2025 alle ore 09:00:00 (+0100)"),
            "{text}"
        );
        assert!(text.contains("- a.exe: formato non ammesso"), "{text}");
        assert_eq!(
            ripudio.recipients("mario@pec.alfa.test"),
            ["mario@pec.alfa.test", "seg@pec.comune.test"]
        );
    }
}
