//! How store objects are named in JMAP. Ids use only `A-Za-z0-9_-` (RFC 8620 §1.2).
//!
//! - account: `a` and 24 hex digits of the SHA-256 of the address;
//! - mailbox: `m<UIDVALIDITY>` for a folder (UIDVALIDITY is the folder's never reused
//!   row id, so a folder deleted and made again gets a new id), `archive` for the
//!   security archive;
//! - email: `e<UIDVALIDITY>_<UID>`, `s<UID>` in the security archive: a message moved to
//!   another folder is a new email there (IMAP gives it a new UID);
//! - thread: `t` and the email id without its first letter (one email per thread);
//! - blob: `b<SHA-256>` for a whole message, `b<SHA-256>_<part>` for one MIME part.

/// The security archive's mailbox id.
pub const ARCHIVE: &str = "archive";

/// Where a message lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Place {
    /// A folder, by UIDVALIDITY.
    Folder(u32),
    /// The security archive of the address.
    Archive,
}

impl Place {
    /// The mailbox id.
    pub fn mailbox_id(self) -> String {
        match self {
            Place::Folder(v) => format!("m{v}"),
            Place::Archive => ARCHIVE.to_string(),
        }
    }

    /// The place a mailbox id names.
    pub fn parse_mailbox(id: &str) -> Option<Place> {
        if id == ARCHIVE {
            return Some(Place::Archive);
        }
        number(id.strip_prefix('m')?).map(Place::Folder)
    }
}

/// One message: its place and UID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EmailId {
    /// Where it is.
    pub place: Place,
    /// Its UID there.
    pub uid: u32,
}

impl std::fmt::Display for EmailId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.place {
            Place::Folder(v) => write!(f, "e{v}_{}", self.uid),
            Place::Archive => write!(f, "s{}", self.uid),
        }
    }
}

impl EmailId {
    /// The email an id names, if it is one of ours.
    pub fn parse(id: &str) -> Option<EmailId> {
        if let Some(uid) = id.strip_prefix('s') {
            return Some(EmailId {
                place: Place::Archive,
                uid: number(uid)?,
            });
        }
        let (v, uid) = id.strip_prefix('e')?.split_once('_')?;
        Some(EmailId {
            place: Place::Folder(number(v)?),
            uid: number(uid)?,
        })
    }

    /// Its thread's id.
    pub fn thread_id(&self) -> String {
        let id = self.to_string();
        format!("t{}", id.get(1..).unwrap_or_default())
    }

    /// The email of a thread id (one email per thread).
    pub fn from_thread(thread: &str) -> Option<EmailId> {
        let rest = thread.strip_prefix('t')?;
        if rest.contains('_') {
            EmailId::parse(&format!("e{rest}"))
        } else {
            EmailId::parse(&format!("s{rest}"))
        }
    }
}

/// A decimal number without sign or leading zeros.
fn number(s: &str) -> Option<u32> {
    let plain = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && !s.starts_with('0');
    if plain { s.parse().ok() } else { None }
}

/// The account id of `address`.
pub fn account_id(address: &str) -> String {
    let digest = openssl::sha::sha256(address.to_ascii_lowercase().as_bytes());
    let hex: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    format!("a{hex}")
}

/// A blob: a stored message (by SHA-256) and, optionally, one of its MIME parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobId {
    /// SHA-256 hex of the message.
    pub hash: String,
    /// mail-parser's index of the part; `None`: the whole message.
    pub part: Option<u32>,
}

impl std::fmt::Display for BlobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.part {
            Some(p) => write!(f, "b{}_{p}", self.hash),
            None => write!(f, "b{}", self.hash),
        }
    }
}

impl BlobId {
    /// The blob an id names, if it is one of ours.
    pub fn parse(id: &str) -> Option<BlobId> {
        let rest = id.strip_prefix('b')?;
        let (hash, part) = match rest.split_once('_') {
            // Part 0 is the message's root part.
            Some((h, p)) => (h, Some(number(p).or((p == "0").then_some(0))?)),
            None => (rest, None),
        };
        let hex = hash.len() == 64 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        hex.then(|| BlobId {
            hash: hash.to_string(),
            part,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_refuse_strangers() {
        let e = EmailId {
            place: Place::Folder(12),
            uid: 7,
        };
        assert_eq!(e.to_string(), "e12_7");
        assert_eq!(EmailId::parse("e12_7"), Some(e));
        assert_eq!(EmailId::from_thread(&e.thread_id()), Some(e));
        let s = EmailId {
            place: Place::Archive,
            uid: 3,
        };
        assert_eq!(EmailId::parse(&s.to_string()), Some(s));
        assert_eq!(EmailId::from_thread(&s.thread_id()), Some(s));
        for bad in [
            "",
            "e",
            "e12",
            "e12_",
            "e_1",
            "e012_1",
            "x1",
            "s-1",
            "e1_99999999999",
        ] {
            assert_eq!(EmailId::parse(bad), None, "{bad}");
        }
        assert_eq!(Place::parse_mailbox("m3"), Some(Place::Folder(3)));
        assert_eq!(Place::parse_mailbox("archive"), Some(Place::Archive));
        assert_eq!(Place::parse_mailbox("m"), None);
        let hash = "a".repeat(64);
        let b = BlobId {
            hash: hash.clone(),
            part: Some(0),
        };
        assert_eq!(BlobId::parse(&b.to_string()), Some(b));
        assert_eq!(BlobId::parse(&format!("b{hash}")).unwrap().part, None);
        assert_eq!(BlobId::parse("b1234"), None);
        let id = account_id("Mario@Example.it");
        assert_eq!(id, account_id("mario@example.it"));
        assert_eq!(id.len(), 25);
    }
}
