//! [`Notifier`]: the per-account hub that tells IMAP sessions (in IDLE, between
//! commands or at the end of one) what changed in a mailbox, so a delivery or another
//! session's change shows up without the client polling.
//!
//! Each account has one channel carrying a short log of changes (a folder's messages or
//! flags, a folder created, deleted or renamed, a subscription). A session keeps one
//! [`Watcher`] on its account and reads the log from where it left off; a session that
//! fell behind the log (more than [`LOG_LEN`] changes since it last looked) is told so,
//! and resynchronises what it can from the store.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

/// A folder of an account: (lowercase address, folder name).
type FolderKey = (String, String);

/// Changes an account's log keeps for sessions that have not read them yet.
const LOG_LEN: usize = 256;

/// One change in an account's mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Change {
    /// Messages of the folder arrived, went or changed flags.
    Messages(String),
    /// A folder was created or deleted (`old` is `None`), or renamed from `old`.
    Mailbox { name: String, old: Option<String> },
    /// The subscription of a name changed.
    Subscription(String),
}

/// An account's recent changes, numbered.
#[derive(Default)]
struct Log {
    /// The number the next change gets.
    next: u64,
    /// The last [`LOG_LEN`] changes with their numbers, oldest first.
    changes: VecDeque<(u64, Change)>,
}

/// What changed in an account since a [`Watcher`] last looked.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Folders whose messages or flags changed.
    pub folders: BTreeSet<String>,
    /// Folders created or deleted (`None`), or renamed (the old name), in order.
    pub mailboxes: Vec<(String, Option<String>)>,
    /// Names whose subscription changed.
    pub subscriptions: BTreeSet<String>,
    /// Changes were missed (the watcher fell behind the log): anything may have changed.
    pub lost: bool,
}

impl Changes {
    /// Whether messages of `folder` may have changed.
    pub(crate) fn touches(&self, folder: &str) -> bool {
        self.lost || self.folders.contains(&folder_key(folder))
    }
}

/// A session's view of its account's changes (IMAP sessions, JMAP push streams).
pub struct Watcher {
    rx: watch::Receiver<Log>,
    /// The number of the first change not read yet.
    seen: u64,
}

impl Watcher {
    /// Waits until changes arrive (at once if some are unread); `false` if they never
    /// can (the hub is gone).
    pub async fn changed(&mut self) -> bool {
        self.rx.changed().await.is_ok()
    }

    /// The changes since the last call, marked read.
    pub fn take(&mut self) -> Changes {
        let log = self.rx.borrow_and_update();
        let mut out = Changes {
            lost: log.changes.front().is_some_and(|(n, _)| *n > self.seen),
            ..Changes::default()
        };
        for (_, change) in log.changes.iter().filter(|(n, _)| *n >= self.seen) {
            match change {
                Change::Messages(f) => {
                    out.folders.insert(f.clone());
                }
                Change::Mailbox { name, old } => out.mailboxes.push((name.clone(), old.clone())),
                Change::Subscription(n) => {
                    out.subscriptions.insert(n.clone());
                }
            }
        }
        self.seen = log.next;
        out
    }
}

/// The name a folder is known by in the log: `INBOX` in any case is `INBOX`.
pub(crate) fn folder_key(folder: &str) -> String {
    if folder.eq_ignore_ascii_case("INBOX") {
        "INBOX".to_string()
    } else {
        folder.to_string()
    }
}

/// Wakes the sessions watching an account. Cheap to clone; the delivery point calls
/// [`Notifier::changed`] after it stored a message, and the IMAP and POP3 sessions call
/// it after their own changes.
#[derive(Clone, Default)]
pub struct Notifier {
    accounts: Arc<Mutex<HashMap<String, watch::Sender<Log>>>>,
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
        (address.to_ascii_lowercase(), folder_key(folder))
    }

    /// Subscribes to the changes of `address`'s mailbox made from now on.
    pub fn watch(&self, address: &str) -> Watcher {
        let mut map = self.accounts.lock().unwrap_or_else(|p| p.into_inner());
        // Forget accounts nobody watches any more, so the map stays bounded by the
        // number of open sessions.
        map.retain(|_, tx| tx.receiver_count() > 0);
        let rx = map
            .entry(address.to_ascii_lowercase())
            .or_insert_with(|| watch::channel(Log::default()).0)
            .subscribe();
        let seen = rx.borrow().next;
        Watcher { rx, seen }
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

    /// Appends a change to `address`'s log, waking its watchers.
    fn record(&self, address: &str, change: Change) {
        let map = self.accounts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = map.get(&address.to_ascii_lowercase()) {
            tx.send_modify(|log| {
                log.changes.push_back((log.next, change));
                log.next += 1;
                if log.changes.len() > LOG_LEN {
                    log.changes.pop_front();
                }
            });
        }
    }

    /// Tells the watchers of `address`'s mailbox that messages of `folder` arrived,
    /// went or changed flags.
    pub fn changed(&self, address: &str, folder: &str) {
        self.record(address, Change::Messages(folder_key(folder)));
    }

    /// Tells the watchers of `address`'s mailbox that folder `name` was created or
    /// deleted (`old` is `None`), or renamed from `old`.
    pub(crate) fn mailbox_changed(&self, address: &str, name: &str, old: Option<&str>) {
        self.record(
            address,
            Change::Mailbox {
                name: folder_key(name),
                old: old.map(folder_key),
            },
        );
    }

    /// Tells the watchers of `address`'s mailbox that the subscription of `name` changed.
    pub(crate) fn subscription_changed(&self, address: &str, name: &str) {
        self.record(address, Change::Subscription(folder_key(name)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn watcher_is_woken_by_change() {
        let n = Notifier::new();
        let mut w = n.watch("A@x.it");
        n.changed("a@X.it", "inbox");
        tokio::time::timeout(std::time::Duration::from_secs(1), w.changed())
            .await
            .unwrap();
        let c = w.take();
        assert!(c.touches("INBOX") && !c.touches("Sent") && !c.lost);
        n.changed("b@x.it", "INBOX"); // another account: nothing happens
        assert_eq!(w.take(), Changes::default());
        n.mailbox_changed("a@x.it", "New", Some("Old"));
        n.subscription_changed("a@x.it", "New");
        let c = w.take();
        assert_eq!(
            c.mailboxes,
            vec![("New".to_string(), Some("Old".to_string()))]
        );
        assert!(c.subscriptions.contains("New") && c.folders.is_empty());
        assert_eq!(
            w.take(),
            Changes::default(),
            "read changes are not seen again"
        );
    }

    #[test]
    fn a_watcher_behind_the_log_is_told_it_lost_changes() {
        let n = Notifier::new();
        let mut w = n.watch("a@x.it");
        for i in 0..LOG_LEN {
            n.changed("a@x.it", &format!("F{i}"));
        }
        let c = w.take();
        assert!(!c.lost && c.folders.len() == LOG_LEN);
        for i in 0..=LOG_LEN {
            n.changed("a@x.it", &format!("F{i}"));
        }
        let c = w.take();
        assert!(c.lost && c.touches("anything"));
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
