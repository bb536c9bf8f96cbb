//! The original message as a user submitted it: the header facts the access point needs,
//! read without altering a byte, and the one permitted modification (spec §3.2).

use mail_parser::Address;

use crate::bounded;
use crate::daticert::TipoRicevuta;
use crate::mime::{RawField, find_field, split_header};

/// A raw message with its header block split into fields.
#[derive(Debug, Clone)]
pub struct Original<'a> {
    raw: &'a [u8],
    fields: Vec<RawField<'a>>,
    body_offset: usize,
    parsed: ParsedHeaders,
}

/// A submitted message completed by the submission server ([`Original::completed`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completed {
    /// The message with the fields added.
    pub bytes: Vec<u8>,
    /// The names of the fields added, in order (for the legal log).
    pub added: Vec<&'static str>,
}

/// Header values that need real RFC 5322 parsing (addresses, encoded words).
#[derive(Debug, Clone, Default)]
struct ParsedHeaders {
    from: Vec<String>,
    to: Vec<String>,
    cc: Vec<String>,
    bcc: Vec<String>,
    reply_to: Vec<String>,
    subject: Option<String>,
}

fn addresses(a: Option<&Address<'_>>) -> Vec<String> {
    a.map(|a| {
        a.iter()
            .filter_map(|addr| addr.address().map(|s| s.trim().to_string()))
            .filter(|s| !s.is_empty())
            .collect()
    })
    .unwrap_or_default()
}

impl<'a> Original<'a> {
    /// Splits `raw` into header fields; never fails (a message without headers simply has
    /// none of the facts).
    pub fn parse(raw: &'a [u8]) -> Original<'a> {
        let (fields, body_offset) = split_header(raw);
        let parsed = bounded::parse_headers(raw)
            .map(|m| ParsedHeaders {
                from: addresses(m.from()),
                to: addresses(m.to()),
                cc: addresses(m.cc()),
                bcc: addresses(m.bcc()),
                reply_to: addresses(m.reply_to()),
                subject: m.subject().map(str::to_string),
            })
            .unwrap_or_default();
        Original {
            raw,
            fields,
            body_offset,
            parsed,
        }
    }

    /// The raw bytes.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// Every header field, in order.
    pub fn fields(&self) -> &[RawField<'a>] {
        &self.fields
    }

    /// The first field named `name` (case-insensitive).
    pub fn field(&self, name: &str) -> Option<RawField<'a>> {
        find_field(&self.fields, name)
    }

    /// How many fields named `name` there are.
    pub fn count(&self, name: &str) -> usize {
        self.fields
            .iter()
            .filter(|f| f.name.eq_ignore_ascii_case(name))
            .count()
    }

    /// The addresses of `From:`.
    pub fn from(&self) -> &[String] {
        &self.parsed.from
    }

    /// The addresses of `To:`.
    pub fn to(&self) -> &[String] {
        &self.parsed.to
    }

    /// The addresses of `Cc:`.
    pub fn cc(&self) -> &[String] {
        &self.parsed.cc
    }

    /// The addresses of `Bcc:`.
    pub fn bcc(&self) -> &[String] {
        &self.parsed.bcc
    }

    /// The addresses of `Reply-To:`.
    pub fn reply_to(&self) -> &[String] {
        &self.parsed.reply_to
    }

    /// The decoded Subject.
    pub fn subject(&self) -> Option<&str> {
        self.parsed.subject.as_deref()
    }

    /// The client's Message-ID as written (with angle brackets), if any.
    pub fn message_id(&self) -> Option<String> {
        self.field("Message-ID")
            .map(|f| f.value())
            .filter(|v| !v.is_empty())
    }

    /// The receipt variant asked for with `X-TipoRicevuta` (absent or unknown: completa).
    pub fn tipo_ricevuta(&self) -> TipoRicevuta {
        self.field("X-TipoRicevuta")
            .and_then(|f| TipoRicevuta::parse(&f.value()))
            .unwrap_or_default()
    }

    /// The original as it travels in `postacert.eml` (spec §3.2): its `Message-ID` replaced
    /// by the PEC msgid and, if it had one, `X-Riferimento-Message-ID` added right after it.
    /// Every other byte is unchanged.
    pub fn with_pec_msgid(&self, pec_msgid: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.raw.len() + 128);
        let new_id = format!("Message-ID: <{pec_msgid}>\r\n");
        let mut replaced = false;
        for f in &self.fields {
            if !replaced && f.name.eq_ignore_ascii_case("Message-ID") {
                out.extend_from_slice(new_id.as_bytes());
                let old = f.value();
                if !old.is_empty() {
                    out.extend_from_slice(
                        format!("X-Riferimento-Message-ID: {old}\r\n").as_bytes(),
                    );
                }
                replaced = true;
            } else {
                out.extend_from_slice(f.bytes);
            }
        }
        if !replaced {
            out.extend_from_slice(new_id.as_bytes());
        }
        out.extend_from_slice(self.raw.get(self.header_end()..).unwrap_or_default());
        out
    }

    /// The message as a submission server completes it (RFC 6409 §8.3): `Date:` set to
    /// `date` (an RFC 5322 date-time) and `Message-ID:` to `<message_id>` when the field
    /// is missing, added at the end of the header; `None` when both are there. The PEC
    /// formal checks and the envelope then see a complete message; nothing else changes
    /// (a field present, even empty, is the user's and stays as written).
    pub fn completed(&self, date: &str, message_id: &str) -> Option<Completed> {
        let missing = |name| self.field(name).is_none();
        let mut added = Vec::new();
        let mut fields = String::new();
        if missing("Date") {
            added.push("Date");
            fields.push_str(&format!("Date: {date}\r\n"));
        }
        if missing("Message-ID") {
            added.push("Message-ID");
            fields.push_str(&format!("Message-ID: <{message_id}>\r\n"));
        }
        if added.is_empty() {
            return None;
        }
        let end = self.header_end();
        let mut bytes = Vec::with_capacity(self.raw.len() + fields.len());
        bytes.extend_from_slice(&self.raw[..end]);
        bytes.extend_from_slice(fields.as_bytes());
        bytes.extend_from_slice(&self.raw[end..]);
        Some(Completed { bytes, added })
    }

    /// Where the last header field ends (before the empty line), 0 without fields.
    fn header_end(&self) -> usize {
        self.fields.last().map_or(0, |f| {
            f.bytes.as_ptr() as usize - self.raw.as_ptr() as usize + f.bytes.len()
        })
    }

    /// Where the body starts.
    pub fn body_offset(&self) -> usize {
        self.body_offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"Received: from a\r\n by b\r\nFrom: \"Mario\" <mario.rossi@pec.alfa.test>\r\n\
To: anna@pec.beta.test, \"L\" <luca@pec.beta.test>\r\nCc: paolo@posta.test\r\n\
Subject: =?UTF-8?Q?Citt=C3=A0?=\r\nMessage-ID: <abc@client>\r\nX-TipoRicevuta: Breve\r\n\r\nbody\r\n";

    #[test]
    fn reads_facts() {
        let o = Original::parse(MSG);
        assert_eq!(o.from(), ["mario.rossi@pec.alfa.test"]);
        assert_eq!(o.to(), ["anna@pec.beta.test", "luca@pec.beta.test"]);
        assert_eq!(o.cc(), ["paolo@posta.test"]);
        assert_eq!(o.subject(), Some("Città"));
        assert_eq!(o.message_id().as_deref(), Some("<abc@client>"));
        assert_eq!(o.tipo_ricevuta(), TipoRicevuta::Breve);
    }

    #[test]
    fn replaces_only_the_message_id() {
        let o = Original::parse(MSG);
        let m = o.with_pec_msgid("opec1@pec.alfa.test");
        let expected = String::from_utf8_lossy(MSG).replace(
            "Message-ID: <abc@client>\r\n",
            "Message-ID: <opec1@pec.alfa.test>\r\nX-Riferimento-Message-ID: <abc@client>\r\n",
        );
        assert_eq!(String::from_utf8_lossy(&m), expected);
        let no_id = b"From: a@b.it\r\n\r\nx";
        let m = Original::parse(no_id).with_pec_msgid("p@q.it");
        assert_eq!(&m[..], b"From: a@b.it\r\nMessage-ID: <p@q.it>\r\n\r\nx");
    }

    #[test]
    fn a_submission_gets_the_date_and_message_id_it_lacks() {
        const DATE: &str = "Mon, 10 Mar 2025 10:30:15 +0100";
        let bare = b"From: a@b.it\r\nSubject: x\r\n\r\nDate: in the body\r\n";
        let c = Original::parse(bare)
            .completed(DATE, "id1@pec.b.it")
            .unwrap();
        assert_eq!(c.added, ["Date", "Message-ID"]);
        assert_eq!(
            String::from_utf8_lossy(&c.bytes),
            "From: a@b.it\r\nSubject: x\r\nDate: Mon, 10 Mar 2025 10:30:15 +0100\r\n\
             Message-ID: <id1@pec.b.it>\r\n\r\nDate: in the body\r\n"
        );
        let o = Original::parse(&c.bytes);
        assert_eq!(o.message_id().as_deref(), Some("<id1@pec.b.it>"));
        assert_eq!(o.completed(DATE, "id3@pec.b.it"), None, "complete already");

        // A field present stays as the user wrote it, even empty.
        let c = Original::parse(b"Date: \r\nSubject: x\r\n\r\nx")
            .completed(DATE, "id2@pec.b.it")
            .unwrap();
        assert_eq!(c.added, ["Message-ID"]);
        assert_eq!(
            &c.bytes[..],
            b"Date: \r\nSubject: x\r\nMessage-ID: <id2@pec.b.it>\r\n\r\nx"
        );
    }
}
