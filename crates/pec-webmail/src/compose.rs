//! A message written in the compose form: its recipients checked, the message built with
//! mail-builder (text and attachments, `From` the user's mailbox), and what the access
//! point said of it put in Italian for the user.

use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use pec_jmap::Verdict;
use pec_jmap::submission::MAX_RECIPIENTS;

use crate::form_data::{ComposeForm, IN_REPLY_TO, Upload};

/// What the user wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Draft {
    /// The `A` field as typed.
    pub to: String,
    /// The `Cc` field as typed.
    pub cc: String,
    /// `Oggetto`.
    pub subject: String,
    /// `Testo`.
    pub text: String,
    /// `Allegati`.
    pub files: Vec<Upload>,
    /// The Message-ID (without brackets) of the message this one answers, if any.
    pub in_reply_to: String,
}

impl Draft {
    /// The draft a compose form holds.
    pub fn from_form(form: ComposeForm) -> Self {
        Draft {
            to: form.get("a").to_string(),
            cc: form.get("cc").to_string(),
            subject: form.get("oggetto").trim().to_string(),
            text: form.get("testo").to_string(),
            in_reply_to: form.get(IN_REPLY_TO).trim().to_string(),
            files: form.files,
        }
    }

    /// The `A` and `Cc` addresses, each once; or why they cannot be sent to, in Italian.
    pub fn recipients(&self) -> Result<(Vec<String>, Vec<String>), String> {
        let to = addresses(&self.to)?;
        if to.is_empty() {
            return Err("Indicare almeno un destinatario nel campo A.".into());
        }
        let cc: Vec<String> = addresses(&self.cc)?
            .into_iter()
            .filter(|c| !to.iter().any(|t| t.eq_ignore_ascii_case(c)))
            .collect();
        if to.len() + cc.len() > MAX_RECIPIENTS {
            return Err(format!(
                "Si possono indicare al più {MAX_RECIPIENTS} destinatari."
            ));
        }
        Ok((to, cc))
    }

    /// The message from `from` to `to` and `cc`, with `message_id` (without brackets).
    pub fn build(&self, from: &str, to: &[String], cc: &[String], message_id: &str) -> Vec<u8> {
        let mut m = MessageBuilder::new()
            .from(from)
            .to(list(to))
            .subject(self.subject.as_str())
            .message_id(message_id)
            .text_body(self.text.replace('\n', "\r\n"));
        if !cc.is_empty() {
            m = m.cc(list(cc));
        }
        if !self.in_reply_to.is_empty() {
            m = m
                .in_reply_to(self.in_reply_to.as_str())
                .references(self.in_reply_to.as_str());
        }
        for f in &self.files {
            m = m.attachment(f.media_type.as_str(), f.name.as_str(), f.bytes.as_slice());
        }
        let mut out = Vec::new();
        // Writing into a Vec cannot fail.
        let _ = m.write_to(&mut out);
        out
    }
}

/// A list of addresses for a header.
fn list(addresses: &[String]) -> Address<'_> {
    Address::new_list(
        addresses
            .iter()
            .map(|s| Address::from(s.as_str()))
            .collect(),
    )
}

/// The addresses of a field: separated by commas, semicolons or spaces, `<>` allowed,
/// each once (case-insensitively).
fn addresses(field: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for item in field
        .split([',', ';', ' ', '\t', '\n', '\r'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let bare = item.trim_start_matches('<').trim_end_matches('>');
        let address = pec_proto::mime::bare_address(bare)
            .filter(|a| a.len() <= 254 && !a.contains(['<', '>', '"', '(', ')', '[', ']', '\\']))
            .ok_or_else(|| format!("Indirizzo non valido: {item}"))?;
        if !out.iter().any(|o| o.eq_ignore_ascii_case(&address)) {
            out.push(address);
        }
        if out.len() > MAX_RECIPIENTS {
            return Err(format!(
                "Si possono indicare al più {MAX_RECIPIENTS} destinatari."
            ));
        }
    }
    Ok(out)
}

/// What the access point said, as the user reads it; `None` when the message was
/// accepted.
pub fn refusal(verdict: &Verdict) -> Option<String> {
    Some(match verdict {
        Verdict::Accepted(_) => return None,
        Verdict::ForbiddenFrom(why) => format!("Il gestore non accetta questo mittente: {why}."),
        Verdict::InvalidRecipients(list, why) => {
            format!("Destinatari rifiutati ({}): {why}.", list.join(", "))
        }
        Verdict::TooLarge(max) => {
            format!("Il messaggio con i suoi allegati supera i {max} byte ammessi.")
        }
        Verdict::Refused(why) => format!("Il gestore non ha accettato il messaggio. {why}."),
        Verdict::Temporary(why) => {
            format!("Il gestore non può accettare il messaggio ora: riprovare più tardi. ({why})")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(to: &str, cc: &str) -> Draft {
        Draft {
            to: to.into(),
            cc: cc.into(),
            subject: "Verbale n. 7".into(),
            text: "Buongiorno,\nin allegato.".into(),
            files: vec![Upload {
                name: "verbale.pdf".into(),
                media_type: "application/pdf".into(),
                bytes: b"%PDF-1.7\n".to_vec(),
            }],
            in_reply_to: "orig@pec.it".into(),
        }
    }

    #[test]
    fn recipients_are_checked_and_listed_once() {
        let (to, cc) = draft(
            "anna@pec.it; <Bea@pec.it>, anna@PEC.it",
            "bea@pec.it carlo@pec.it",
        )
        .recipients()
        .unwrap();
        assert_eq!(to, ["anna@pec.it", "Bea@pec.it"]);
        assert_eq!(cc, ["carlo@pec.it"]);
        assert_eq!(
            draft("", "x@pec.it").recipients().unwrap_err(),
            "Indicare almeno un destinatario nel campo A."
        );
        assert_eq!(
            draft("anna@pec.it, mario", "").recipients().unwrap_err(),
            "Indirizzo non valido: mario"
        );
        let many: Vec<String> = (0..=MAX_RECIPIENTS)
            .map(|i| format!("u{i}@pec.it"))
            .collect();
        assert!(draft(&many.join(","), "").recipients().is_err());
    }

    #[test]
    fn the_message_has_text_attachment_and_headers() {
        let d = draft("anna@pec.it", "bea@pec.it");
        let raw = d.build(
            "mario@pec.it",
            &["anna@pec.it".into()],
            &["bea@pec.it".into()],
            "abc@pec.it",
        );
        use mail_parser::MimeHeaders;
        let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
        assert_eq!(parsed.subject(), Some("Verbale n. 7"));
        assert_eq!(parsed.message_id(), Some("abc@pec.it"));
        assert_eq!(parsed.in_reply_to().as_text(), Some("orig@pec.it"));
        assert_eq!(
            parsed
                .from()
                .and_then(|a| a.first())
                .and_then(|a| a.address()),
            Some("mario@pec.it")
        );
        assert_eq!(
            parsed
                .cc()
                .and_then(|a| a.first())
                .and_then(|a| a.address()),
            Some("bea@pec.it")
        );
        assert_eq!(
            parsed.body_text(0).unwrap().replace("\r\n", "\n").trim(),
            "Buongiorno,\nin allegato."
        );
        let a = parsed.attachment(0).unwrap();
        assert_eq!(a.attachment_name(), Some("verbale.pdf"));
        assert_eq!(a.contents(), b"%PDF-1.7\n");
    }

    #[test]
    fn refusals_are_said_in_italian() {
        assert_eq!(refusal(&Verdict::Accepted("ok".into())), None);
        assert_eq!(
            refusal(&Verdict::TooLarge(1000)).unwrap(),
            "Il messaggio con i suoi allegati supera i 1000 byte ammessi."
        );
        assert!(
            refusal(&Verdict::Refused("Messaggio non accettato: virus".into()))
                .unwrap()
                .starts_with("Il gestore non ha accettato il messaggio.")
        );
    }
}
