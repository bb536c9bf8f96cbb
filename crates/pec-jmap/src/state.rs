//! State strings (RFC 8620 §1.2, §5.1) derived from the store's IMAP counters, so that
//! nothing new is stored: for each mailbox its HIGHESTMODSEQ (raised by every new
//! message, flag change and expunge) and UIDNEXT (raised by every new message).
//!
//! The Email state is `<mailbox>:<highestmodseq>:<uidnext>` for every mailbox, joined by
//! `,`; the Mailbox state adds `|` and a digest of the names and subscriptions. From an
//! old state, `*/changes` finds what changed with the store's modseqs (as IMAP QRESYNC
//! does): a message whose modseq is above the old HIGHESTMODSEQ changed, and was created
//! if its UID is at or above the old UIDNEXT; expunged UIDs below the old UIDNEXT were
//! destroyed.

use crate::ids::Place;
use crate::mailbox::View;

/// Longest state string read back (a few thousand folders).
const MAX_STATE: usize = 256 * 1024;

/// The counters of one mailbox at one time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    /// The mailbox.
    pub place: Place,
    /// Its HIGHESTMODSEQ then.
    pub modseq: u64,
    /// Its UIDNEXT then.
    pub uidnext: u32,
}

/// A state string read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    /// Every mailbox's counters.
    pub marks: Vec<Mark>,
    /// The digest of names and subscriptions (empty in an Email state).
    pub names: String,
}

impl State {
    /// The counters of `place`, if it existed then.
    pub fn mark(&self, place: Place) -> Option<Mark> {
        self.marks.iter().find(|m| m.place == place).copied()
    }
}

/// The Email state of the mailboxes `views`.
pub fn email_state(views: &[View]) -> String {
    views
        .iter()
        .map(|v| {
            format!(
                "{}:{}:{}",
                v.place.mailbox_id(),
                v.selected.highestmodseq,
                v.selected.uidnext
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The Mailbox state of `views`.
pub fn mailbox_state(views: &[View]) -> String {
    let mut described = String::new();
    for v in views {
        described.push_str(v.name());
        described.push('\0');
        let subscribed = v.folder.as_ref().is_none_or(|f| f.subscribed);
        described.push(if subscribed { '1' } else { '0' });
    }
    let digest = openssl::sha::sha256(described.as_bytes());
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("{}|{hex}", email_state(views))
}

/// The EmailDelivery state (RFC 8621 §1.5) of `views`: the UIDNEXT of every folder that
/// mail is delivered to (all but the security archive, Sent and Drafts). It moves when a
/// message arrives there, which a delivery does, and so does a move or an import into
/// one of them: a client told of it looks, and may find nothing new.
pub fn delivery_state(views: &[View]) -> String {
    views
        .iter()
        .filter(|v| v.folder.is_some() && !matches!(v.role(), Some("sent" | "drafts")))
        .map(|v| format!("{}:{}", v.place.mailbox_id(), v.selected.uidnext))
        .collect::<Vec<_>>()
        .join(",")
}

/// Reads a state string back; `None` if it is not one of ours.
pub fn parse(s: &str) -> Option<State> {
    if s.len() > MAX_STATE {
        return None;
    }
    let (marks, names) = s.split_once('|').unwrap_or((s, ""));
    let mut parsed = Vec::new();
    for item in marks.split(',').filter(|i| !i.is_empty()) {
        let mut fields = item.split(':');
        let place = Place::parse_mailbox(fields.next()?)?;
        let modseq = fields.next()?.parse().ok()?;
        let uidnext = fields.next()?.parse().ok()?;
        if fields.next().is_some() {
            return None;
        }
        parsed.push(Mark {
            place,
            modseq,
            uidnext,
        });
    }
    Some(State {
        marks: parsed,
        names: names.to_string(),
    })
}
