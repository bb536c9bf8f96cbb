//! A sent message's receipts, and from them the state of each recipient: the sender's
//! gestore accepted the message (accettazione), each recipient's gestore delivered it
//! (avvenuta consegna) or could not (mancata consegna), or nothing is known yet.

use serde_json::Value;

/// Where the message stands for one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// No receipt yet.
    Waiting,
    /// The sender's gestore refused the message (non accettazione).
    NotAccepted,
    /// Accepted by the sender's gestore, no delivery receipt yet.
    Accepted,
    /// The recipient's gestore warned that delivery has not happened within 12 hours.
    Warned,
    /// Delivered into the recipient's mailbox.
    Delivered,
    /// Not delivered (errore di consegna, or a virus found).
    NotDelivered,
}

impl State {
    /// The state's name as the user reads it.
    pub fn label(self) -> &'static str {
        match self {
            State::Waiting => "in attesa",
            State::NotAccepted => "non accettata",
            State::Accepted => "accettata",
            State::Warned => "in attesa (preavviso di mancata consegna)",
            State::Delivered => "consegnata",
            State::NotDelivered => "mancata consegna",
        }
    }

    /// Whether the news is good, bad, or neither (`None`).
    pub fn good(self) -> Option<bool> {
        match self {
            State::Delivered | State::Accepted => Some(true),
            State::NotAccepted | State::NotDelivered | State::Warned => Some(false),
            State::Waiting => None,
        }
    }
}

/// The recipients of a message and their state, from the `pec` values of the message
/// itself (its daticert names the recipients) and of every receipt found for it.
pub fn states(own: &Value, receipts: &[Value]) -> Vec<(String, State)> {
    let mut rows: Vec<(String, State)> = Vec::new();
    let all = std::iter::once(own).chain(receipts);
    for pec in all.clone() {
        for d in pec["daticert"]["destinatari"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if let Some(a) = d["indirizzo"].as_str()
                && !rows.iter().any(|(r, _)| r.eq_ignore_ascii_case(a))
            {
                rows.push((a.to_string(), State::Waiting));
            }
        }
    }
    for pec in all {
        let kind = pec["kind"].as_str().unwrap_or("");
        let consegna = pec["daticert"]["consegna"].as_str().unwrap_or("");
        for (address, state) in rows.iter_mut() {
            let about_this = consegna.eq_ignore_ascii_case(address);
            let new = match kind {
                "accettazione" => State::Accepted,
                "non-accettazione" => State::NotAccepted,
                "avvenuta-consegna" if about_this => State::Delivered,
                "errore-consegna" | "rilevazione-virus" if about_this => State::NotDelivered,
                "preavviso-errore-consegna" if about_this => State::Warned,
                _ => continue,
            };
            if rank(new) > rank(*state) {
                *state = new;
            }
        }
    }
    rows
}

/// Later news wins: a delivery outranks the acceptance it follows.
fn rank(s: State) -> u8 {
    match s {
        State::Waiting => 0,
        State::Accepted => 1,
        State::Warned => 2,
        State::NotAccepted | State::Delivered | State::NotDelivered => 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn receipt(kind: &str, consegna: Option<&str>) -> Value {
        json!({"kind": kind, "daticert": {"consegna": consegna, "destinatari": [
            {"indirizzo": "a@pec.it", "tipo": "certificato"},
            {"indirizzo": "b@pec.it", "tipo": "certificato"},
            {"indirizzo": "c@pec.it", "tipo": "certificato"}]}})
    }

    #[test]
    fn each_recipient_gets_its_own_state() {
        let own = receipt("posta-certificata", None);
        assert!(states(&own, &[]).iter().all(|(_, s)| *s == State::Waiting));
        let receipts = [
            receipt("avvenuta-consegna", Some("a@pec.it")),
            receipt("accettazione", None),
            receipt("errore-consegna", Some("B@pec.it")),
        ];
        let s = states(&own, &receipts);
        assert_eq!(
            s,
            vec![
                ("a@pec.it".into(), State::Delivered),
                ("b@pec.it".into(), State::NotDelivered),
                ("c@pec.it".into(), State::Accepted),
            ]
        );
        assert_eq!(s[2].1.label(), "accettata");
        let refused = states(&own, &[receipt("non-accettazione", None)]);
        assert!(refused.iter().all(|(_, s)| *s == State::NotAccepted));
    }
}
