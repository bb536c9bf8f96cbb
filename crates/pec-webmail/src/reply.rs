//! "Rispondi" and "Rispondi a tutti": the compose form filled in from a message. For a
//! PEC envelope the answer goes to the daticert's mittente (the envelope's own `From` is
//! the gestore's) and quotes the original it carries; for other mail to its `Reply-To`
//! or `From`. "A tutti" adds the other recipients, never the user.

use serde_json::Value;

use crate::compose::Draft;

/// Longest quoted text (in characters): the original stays downloadable whole.
const MAX_QUOTE: usize = 32 * 1024;

fn addresses(list: &Value) -> Vec<String> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["email"].as_str().map(str::to_string))
        .collect()
}

/// `subject` with the envelope's prefix taken off and one `Re: ` in front.
fn subject(subject: &str) -> String {
    let s = subject.trim();
    let s = s.strip_prefix("POSTA CERTIFICATA:").unwrap_or(s).trim();
    if s.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("re:")) {
        s.to_string()
    } else {
        format!("Re: {s}")
    }
}

/// The reply `me` writes to `email` (a JMAP Email with `from`, `replyTo`, `to`, `cc`,
/// `subject`, `messageId`, `receivedAt` and `pec`), quoting `text`; to every recipient
/// when `all`.
pub fn draft(email: &Value, text: &str, me: &str, all: bool) -> Draft {
    let pec = &email["pec"];
    let envelope = pec["kind"] == "posta-certificata";
    let (to, others, message_id) = if envelope {
        let d = &pec["daticert"];
        let others: Vec<String> = d["destinatari"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["indirizzo"].as_str().map(str::to_string))
            .collect();
        let to: Vec<String> = d["mittente"]
            .as_str()
            .map(str::to_string)
            .into_iter()
            .collect();
        (to, others, d["msgid"].as_str().unwrap_or("").to_string())
    } else {
        let reply_to = addresses(&email["replyTo"]);
        let to = if reply_to.is_empty() {
            addresses(&email["from"])
        } else {
            reply_to
        };
        let mut others = addresses(&email["to"]);
        others.extend(addresses(&email["cc"]));
        let id = email["messageId"][0].as_str().unwrap_or("").to_string();
        (to, others, id)
    };
    let cc: Vec<String> = if all {
        others
            .into_iter()
            .filter(|o| {
                !o.eq_ignore_ascii_case(me) && !to.iter().any(|t| t.eq_ignore_ascii_case(o))
            })
            .fold(Vec::new(), |mut acc, o| {
                if !acc.iter().any(|a: &String| a.eq_ignore_ascii_case(&o)) {
                    acc.push(o);
                }
                acc
            })
    } else {
        Vec::new()
    };
    let who = to.first().cloned().unwrap_or_default();
    let quoted: String = text
        .chars()
        .take(MAX_QUOTE)
        .collect::<String>()
        .lines()
        .map(|l| format!("> {l}\n"))
        .collect();
    Draft {
        to: to.join(", "),
        cc: cc.join(", "),
        subject: subject(email["subject"].as_str().unwrap_or("")),
        text: format!("\n\n{who} ha scritto:\n{quoted}"),
        files: Vec::new(),
        in_reply_to: message_id
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_envelope_is_answered_to_its_mittente() {
        let email = json!({
            "subject": "POSTA CERTIFICATA: Verbale 7",
            "from": [{"email": "posta-certificata@pec.alfa.it"}],
            "replyTo": [{"email": "mario@pec.alfa.it"}],
            "to": [{"email": "anna@pec.beta.it"}],
            "messageId": ["opec1@pec.alfa.it"],
            "pec": {"kind": "posta-certificata", "daticert": {
                "mittente": "mario@pec.alfa.it", "msgid": "<verbale-7@client.it>",
                "destinatari": [{"indirizzo": "anna@pec.beta.it"}, {"indirizzo": "bea@pec.beta.it"}]}}
        });
        let d = draft(&email, "riga 1\nriga 2", "anna@pec.beta.it", true);
        assert_eq!(d.to, "mario@pec.alfa.it");
        assert_eq!(d.cc, "bea@pec.beta.it", "not the user herself");
        assert_eq!(d.subject, "Re: Verbale 7");
        assert_eq!(d.in_reply_to, "verbale-7@client.it");
        assert!(
            d.text
                .ends_with("mario@pec.alfa.it ha scritto:\n> riga 1\n> riga 2\n"),
            "{}",
            d.text
        );
        assert_eq!(draft(&email, "", "anna@pec.beta.it", false).cc, "");
    }

    #[test]
    fn ordinary_mail_is_answered_to_its_reply_to_or_from() {
        let email = json!({
            "subject": "RE: Convocazione", "from": [{"email": "bob@pec.it"}], "replyTo": null,
            "to": [{"email": "me@pec.it"}, {"email": "carla@pec.it"}],
            "cc": [{"email": "BOB@pec.it"}, {"email": "carla@pec.it"}],
            "messageId": ["c1@pec.it"], "pec": null
        });
        let d = draft(&email, "x", "me@pec.it", true);
        assert_eq!(
            (d.to.as_str(), d.cc.as_str()),
            ("bob@pec.it", "carla@pec.it")
        );
        assert_eq!(d.subject, "RE: Convocazione", "one Re: only");
        assert_eq!(d.in_reply_to, "c1@pec.it");
    }
}
