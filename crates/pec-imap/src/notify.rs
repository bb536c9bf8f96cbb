//! [`Notifier`]: the per-mailbox hub that tells IMAP sessions (in IDLE or
//! between commands) that a folder changed, so a delivery or another
//! session's change shows up without the client polling.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

/// A folder of an account: (lowercase address, folder name).
type FolderKey = (String, String);

/// Wakes the sessions watching a folder. Cheap to clone; the delivery point
/// calls [`Notifier::changed`] after it stored a message, and the IMAP and
/// POP3 sessions call it after their own changes.
#[derive(Clone, Default)]
pub struct Notifier {
    folders: Arc<Mutex<HashMap<FolderKey, watch::Sender<u64>>>>,
    /// Per folder: its UIDVALIDITY and the highest UID a session has been
    /// told of as `\Recent` (RFC 3501 2.3.2). Kept in memory: after a
    /// restart the first session to select a folder sees its messages as recent.
    recent: Arc<Mutex<HashMap<FolderKey, (u32, u32)>>>,
}

impl Notifier {
    /// A hub with no watchers yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Key of a folder: the address is case-insensitive, `INBOX` too.
    fn key(address: &str, folder: &str) -> FolderKey {
        let folder = if folder.eq_ignore_ascii_case("INBOX") {
            "INBOX".to_string()
        } else {
            folder.to_string()
        };
        (address.to_ascii_lowercase(), folder)
    }

    /// Subscribes to changes of `folder` in `address`'s mailbox; the receiver
    /// sees a new value after each [`Notifier::changed`] call.
    pub fn watch(&self, address: &str, folder: &str) -> watch::Receiver<u64> {
        let mut map = self.folders.lock().unwrap_or_else(|p| p.into_inner());
        // Forget folders nobody watches any more, so the map stays bounded
        // by the number of open sessions.
        map.retain(|_, tx| tx.receiver_count() > 0);
        map.entry(Self::key(address, folder))
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    /// The highest UID of `folder` already claimed as `\Recent` by a session;
    /// with `claim`, UIDs up to `highest_uid` are claimed now, so no other
    /// session will see them as recent.
    pub(crate) fn claim_recent(
        &self,
        address: &str,
        folder: &str,
        uidvalidity: u32,
        highest_uid: u32,
        claim: bool,
    ) -> u32 {
        let mut map = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let entry = map
            .entry(Self::key(address, folder))
            .or_insert((uidvalidity, 0));
        if entry.0 != uidvalidity {
            *entry = (uidvalidity, 0);
        }
        let before = entry.1;
        if claim {
            entry.1 = entry.1.max(highest_uid);
        }
        before
    }

    /// Tells the watchers of `folder` in `address`'s mailbox that it changed.
    pub fn changed(&self, address: &str, folder: &str) {
        let map = self.folders.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = map.get(&Self::key(address, folder)) {
            tx.send_modify(|v| *v = v.wrapping_add(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn watcher_is_woken_by_change() {
        let n = Notifier::new();
        let mut rx = n.watch("A@x.it", "inbox");
        n.changed("a@X.it", "INBOX");
        tokio::time::timeout(std::time::Duration::from_secs(1), rx.changed())
            .await
            .unwrap()
            .unwrap();
        n.changed("a@x.it", "Sent"); // no watcher: nothing happens
        assert!(!rx.has_changed().unwrap());
    }

    #[test]
    fn recent_is_claimed_once() {
        let n = Notifier::new();
        assert_eq!(n.claim_recent("a@x.it", "INBOX", 7, 3, false), 0);
        assert_eq!(n.claim_recent("a@x.it", "inbox", 7, 3, true), 0);
        assert_eq!(n.claim_recent("A@x.it", "INBOX", 7, 5, true), 3);
        assert_eq!(n.claim_recent("a@x.it", "INBOX", 7, 5, true), 5);
        // A recreated folder (new UIDVALIDITY) starts again.
        assert_eq!(n.claim_recent("a@x.it", "INBOX", 8, 1, true), 0);
    }
}
