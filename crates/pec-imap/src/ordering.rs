//! The SORT order (RFC 5256 3, and RFC 5957's DISPLAYFROM/DISPLAYTO): each message's
//! sort keys read once from its header, then compared key by key, the mailbox order
//! breaking ties. Also the collation and the sent date THREAD shares.

use std::cmp::Ordering;
use std::num::NonZeroU32;

use imap_codec::imap_types::extensions::sort::{SortCriterion, SortKey};
use mail_parser::{HeaderName, Message};
use pec_store::MessageMeta;

use crate::address::{self, Addr};
use crate::mime;
use crate::subject::{BaseSubject, base_subject};

/// One sort key of a message; the keys of one criterion are all of one kind.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Key {
    /// ARRIVAL, DATE (seconds since the epoch) and SIZE.
    Number(i64),
    /// The address and subject keys, collated.
    Text(String),
}

/// A message to sort: what the reply shows for it, its place in the mailbox and one
/// key per sort criterion, in the criteria's order.
#[derive(Debug, Clone)]
pub(crate) struct Sortable {
    /// Its UID for UID SORT, else its sequence number.
    pub number: NonZeroU32,
    /// Its sequence number: equal keys leave messages in mailbox order.
    pub seq: u32,
    /// From [`keys`].
    pub keys: Vec<Key>,
}

/// Whether any criterion needs the message's header (ARRIVAL and SIZE do not).
pub(crate) fn reads_header(criteria: &[SortCriterion]) -> bool {
    criteria
        .iter()
        .any(|c| !matches!(c.key, SortKey::Arrival | SortKey::Size))
}

/// The keys of a message for `criteria`; `msg` is its parsed header (`None` when no
/// criterion reads it, or when there is nothing to parse: empty keys then).
pub(crate) fn keys(
    criteria: &[SortCriterion],
    meta: &MessageMeta,
    msg: Option<&Message<'_>>,
) -> Vec<Key> {
    criteria
        .iter()
        .map(|c| match c.key {
            SortKey::Arrival => Key::Number(meta.internaldate),
            SortKey::Size => Key::Number(i64::try_from(meta.size).unwrap_or(i64::MAX)),
            SortKey::Date => Key::Number(sent_date(meta, msg)),
            SortKey::Subject => Key::Text(collate(&subject(msg).text)),
            SortKey::From => Key::Text(first_mailbox(msg, HeaderName::From)),
            SortKey::To => Key::Text(first_mailbox(msg, HeaderName::To)),
            SortKey::Cc => Key::Text(first_mailbox(msg, HeaderName::Cc)),
            SortKey::DisplayFrom => Key::Text(display_name(msg, HeaderName::From)),
            SortKey::DisplayTo => Key::Text(display_name(msg, HeaderName::To)),
        })
        .collect()
}

/// Puts `items` in SORT order: criterion by criterion (REVERSE turning one around),
/// then mailbox order; `sortable` gives each item's keys. The items are kept, so that
/// RETURN options (ESORT) work on the ordered list and a CONTEXT=SORT result keeps its
/// keys to place the messages that join it later.
pub(crate) fn order<T>(
    items: &mut [T],
    sortable: impl Fn(&T) -> &Sortable,
    criteria: &[SortCriterion],
) {
    items.sort_by(|a, b| compare(sortable(a), sortable(b), criteria));
}

fn compare(a: &Sortable, b: &Sortable, criteria: &[SortCriterion]) -> Ordering {
    criteria
        .iter()
        .zip(a.keys.iter().zip(&b.keys))
        .map(|(c, (ka, kb))| {
            let order = ka.cmp(kb);
            if c.reverse { order.reverse() } else { order }
        })
        .find(|o| o.is_ne())
        .unwrap_or_else(|| a.seq.cmp(&b.seq))
}

/// A string as SORT and THREAD compare it: case folded (upper case, so `_` sorts after
/// letters, as with i;ascii-casemap).
pub(crate) fn collate(s: &str) -> String {
    s.chars().flat_map(char::to_uppercase).collect()
}

/// The sent date (RFC 5256): the Date: header in UTC, or INTERNALDATE when the header
/// is missing or unreadable.
pub(crate) fn sent_date(meta: &MessageMeta, msg: Option<&Message<'_>>) -> i64 {
    msg.and_then(Message::date)
        .filter(|d| d.is_valid())
        .map_or(meta.internaldate, mail_parser::DateTime::to_timestamp)
}

/// The base subject of the first Subject field (empty without one).
pub(crate) fn subject(msg: Option<&Message<'_>>) -> BaseSubject {
    match mime::first_header(msg, HeaderName::Subject) {
        Some(raw) => base_subject(&raw),
        None => BaseSubject {
            text: String::new(),
            reply_or_forward: false,
        },
    }
}

fn first_address(msg: Option<&Message<'_>>, name: HeaderName<'_>) -> Option<Addr> {
    let raw = mime::first_header(msg, name)?;
    address::parse(&raw).into_iter().next()
}

/// FROM, TO, CC: the local part (addr-mailbox) of the field's first address; for a
/// group, its name.
fn first_mailbox(msg: Option<&Message<'_>>, name: HeaderName<'_>) -> String {
    first_address(msg, name)
        .and_then(|a| a.mailbox)
        .map(|m| collate(&String::from_utf8_lossy(&m)))
        .unwrap_or_default()
}

/// DISPLAYFROM, DISPLAYTO (RFC 5957): the decoded display name of the field's first
/// address, or without one its `mailbox@host` (a group's name for a group).
fn display_name(msg: Option<&Message<'_>>, name: HeaderName<'_>) -> String {
    let Some(a) = first_address(msg, name) else {
        return String::new();
    };
    let display = a
        .name
        .map(|n| mime::decode_words(&n))
        .filter(|n| !n.trim().is_empty());
    let text = match (display, a.mailbox, a.host) {
        (Some(n), _, _) => n,
        (None, Some(m), Some(h)) => format!(
            "{}@{}",
            String::from_utf8_lossy(&m),
            String::from_utf8_lossy(&h)
        ),
        (None, Some(m), None) => String::from_utf8_lossy(&m).into_owned(),
        (None, None, _) => String::new(),
    };
    collate(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(internaldate: i64, size: u64) -> MessageMeta {
        MessageMeta {
            uid: 1,
            hash: String::new(),
            size,
            internaldate,
            flags: Vec::new(),
            modseq: 1,
        }
    }

    fn criteria(spec: &[(SortKey, bool)]) -> Vec<SortCriterion> {
        spec.iter()
            .map(|(key, reverse)| SortCriterion {
                reverse: *reverse,
                key: key.clone(),
            })
            .collect()
    }

    /// Sorts headers (message i has sequence number i + 1) and returns the sequence numbers.
    fn order(headers: &[&str], spec: &[(SortKey, bool)]) -> Vec<u32> {
        let criteria = criteria(spec);
        let mut items: Vec<Sortable> = headers
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let raw = format!("{h}\r\n\r\nbody\r\n");
                let parsed = mime::parse(raw.as_bytes());
                let seq = u32::try_from(i + 1).unwrap();
                Sortable {
                    number: NonZeroU32::new(seq).unwrap(),
                    seq,
                    keys: keys(&criteria, &meta(0, 0), parsed.message()),
                }
            })
            .collect();
        super::order(&mut items, |s| s, &criteria);
        items.into_iter().map(|s| s.number.get()).collect()
    }

    #[test]
    fn address_keys_compare_the_first_local_part() {
        let h = [
            "From: user2@domain2.org",
            "From: user2@domain1.org",
            "From: User1 <user1@domain1.org>, a@a",
        ];
        assert_eq!(order(&h, &[(SortKey::From, false)]), [3, 1, 2]);
        // REVERSE turns the key around, never the mailbox order of equal keys.
        assert_eq!(order(&h, &[(SortKey::From, true)]), [1, 2, 3]);
        let cc = ["Cc: zed: a@b;", "Cc: b@c", "Subject: none"];
        assert_eq!(order(&cc, &[(SortKey::Cc, false)]), [3, 2, 1]);
    }

    #[test]
    fn display_keys_use_the_decoded_name_or_the_address() {
        let h = [
            "To: foo bar <a@b.c>",
            "To: b@c.d",
            "To: =?iso-8859-1?q?foo_aar?= <e@f.g>",
            "To: a: xx@xx.org;",
            "To: \"\" <c@d.e>",
        ];
        assert_eq!(order(&h, &[(SortKey::DisplayTo, false)]), [4, 2, 5, 3, 1]);
    }

    #[test]
    fn dates_fall_back_on_arrival_and_ties_keep_mailbox_order() {
        let criteria = criteria(&[(SortKey::Date, false)]);
        let with_date = mime::parse(b"Date: Fri, 22 Feb 2008 02:00:00 +0200\r\n\r\n");
        let garbage = mime::parse(b"Date: yesterday\r\n\r\n");
        let date = keys(&criteria, &meta(5, 0), with_date.message());
        assert_eq!(date, [Key::Number(1_203_638_400)]);
        assert_eq!(
            keys(&criteria, &meta(5, 0), garbage.message()),
            [Key::Number(5)]
        );
        assert_eq!(keys(&criteria, &meta(7, 0), None), [Key::Number(7)]);
    }

    #[test]
    fn later_criteria_break_ties_of_earlier_ones() {
        let h = [
            "Subject: b",
            "Subject: Re: a",
            "Subject: a",
            "Subject: [x] B",
        ];
        assert_eq!(
            order(&h, &[(SortKey::Subject, false)]),
            [2, 3, 1, 4],
            "equal base subjects stay in mailbox order"
        );
        assert_eq!(
            order(&h, &[(SortKey::Subject, true), (SortKey::Arrival, false)]),
            [1, 4, 2, 3]
        );
        assert_eq!(
            order(
                &["Subject: _", "Subject: Z", "Subject: z"],
                &[(SortKey::Subject, false)]
            ),
            [2, 3, 1],
            "upper-case folding puts '_' after letters"
        );
    }
}
