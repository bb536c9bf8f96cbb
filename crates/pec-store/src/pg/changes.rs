//! Changes across nodes with PostgreSQL's `LISTEN`/`NOTIFY`: a transaction that changes
//! a folder or queues an entry sends a notification on [`CHANNEL`] (delivered to the
//! listeners when, and only if, it commits); each store that has subscribers keeps one
//! connection listening on a thread of its own ([`Listener`]) and calls their hooks with
//! the changes of the other nodes (its own are skipped: the node's local hooks saw them).
//!
//! A notification is `<node>\t<kind>[\t<address>\t<folder>]`: addresses and folder
//! names never hold a tab (the store refuses whitespace in addresses and control
//! characters in folder names), and their bounded sizes keep it well under PostgreSQL's
//! 8000-byte limit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use postgres::Transaction;
use postgres::fallible_iterator::FallibleIterator;

use super::pool::Connector;
use crate::error::{Error, Result};
use crate::store::{Change, ChangeHook};

/// The notification channel of every node of one gestore.
pub const CHANNEL: &str = "pecd_changes";

/// How long the listening thread waits for a notification before it looks whether the
/// store is being dropped.
const POLL: Duration = Duration::from_millis(200);

/// How many quiet polls pass between two questions to the server, asked to find out a
/// connection that broke without a word (about every 5 s).
const PROBE_EVERY: u32 = 25;

/// How long the listening thread waits before connecting again after losing its
/// connection.
const RECONNECT: Duration = Duration::from_secs(1);

/// The names of one store instance among the nodes: the sender of its notifications
/// (random, so two processes on one host differ, and an admin command's changes reach
/// the node it shares a configuration with) and the owner of its leases (the same
/// across a node's restarts when the node has a stable name, so that a restarted node
/// takes its claims back at its first pass rather than when their lease runs out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    name: String,
    owner: String,
}

impl Node {
    /// A fresh name, the host name and 64 random bits; the lease owner is the host name
    /// and `stable`, or the fresh name without it.
    pub fn new(stable: Option<&str>) -> Result<Self> {
        let mut random = [0u8; 8];
        openssl::rand::rand_bytes(&mut random)
            .map_err(|e| Error::Unavailable(format!("no random bytes for the node name: {e}")))?;
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .unwrap_or_default()
            .trim()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'))
            .take(64)
            .collect::<String>();
        let tag: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let name = format!("{host}/{tag}");
        let owner = stable.map_or_else(|| name.clone(), |s| format!("{host}:{s}"));
        Ok(Node { name, owner })
    }

    /// The name (of the notifications' sender).
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// The owner of this instance's leases.
    pub fn owner(&self) -> &str {
        &self.owner
    }
}

/// The notification text of `change` sent by `node`.
fn payload(node: &Node, change: &Change) -> String {
    match change {
        Change::Queued => format!("{}\tqueued", node.name),
        Change::Folder { address, folder } => {
            format!("{}\tfolder\t{address}\t{folder}", node.name)
        }
    }
}

/// Reads a notification: its sender and the change, `None` if it is not one of ours.
fn parse(text: &str) -> Option<(&str, Change)> {
    let mut parts = text.split('\t');
    let node = parts.next()?;
    let change = match (parts.next()?, parts.next(), parts.next(), parts.next()) {
        ("queued", None, None, None) => Change::Queued,
        ("folder", Some(address), Some(folder), None) => Change::Folder {
            address: address.to_string(),
            folder: folder.to_string(),
        },
        _ => return None,
    };
    Some((node, change))
}

/// Sends `change` to the other nodes when `tx` commits.
pub fn announce(tx: &mut Transaction<'_>, node: &Node, change: &Change) -> Result<()> {
    tx.execute(
        "SELECT pg_notify($1, $2)",
        &[&CHANNEL, &payload(node, change)],
    )?;
    Ok(())
}

/// The hooks of one store, held weakly: a hook whose owner dropped it is forgotten.
type Hooks = Arc<Mutex<Vec<Weak<dyn Fn(&Change) + Send + Sync>>>>;

/// The listening thread of a store and the hooks it calls; stopped on drop.
pub struct Listener {
    hooks: Hooks,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Listener {
    /// Starts listening on a connection of its own, for `node`.
    pub fn start(connect: Connector, node: Node) -> Result<Self> {
        let hooks: Hooks = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (h, s) = (Arc::clone(&hooks), Arc::clone(&stop));
        let thread = thread::Builder::new()
            .name("pec-store-pg-listen".into())
            .spawn(move || listen(&connect, &node, &h, &s))
            .map_err(|e| Error::io("<postgres listener thread>", e))?;
        Ok(Listener {
            hooks,
            stop,
            thread: Some(thread),
        })
    }

    /// Adds a hook, held weakly.
    pub fn add(&self, hook: &ChangeHook) {
        let mut hooks = self.hooks.lock().unwrap_or_else(|p| p.into_inner());
        hooks.retain(|h| h.strong_count() > 0);
        hooks.push(Arc::downgrade(hook));
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Calls every live hook with `change`.
fn tell(hooks: &Hooks, change: &Change) {
    let live: Vec<ChangeHook> = hooks
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .filter_map(Weak::upgrade)
        .collect();
    for hook in live {
        hook(change);
    }
}

/// The listening thread: connect, `LISTEN`, pass on the other nodes' changes; connect
/// again when the connection breaks; until `stop`.
fn listen(connect: &Connector, node: &Node, hooks: &Hooks, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let mut client = match connect
            .connect()
            .and_then(|mut c| Ok(c.batch_execute(&format!("LISTEN {CHANNEL}")).map(|()| c)?))
        {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("cannot listen for the changes of other nodes: {e}");
                thread::sleep(RECONNECT);
                continue;
            }
        };
        // Changes made while no connection listened are lost: say so to everyone, who
        // then looks again (a queue pass, a folder refresh costs little).
        tell(hooks, &Change::Queued);
        let mut quiet = 0;
        while !stop.load(Ordering::Relaxed) && !client.is_closed() {
            {
                let mut notifications = client.notifications();
                let mut batch = notifications.timeout_iter(POLL);
                while let Ok(Some(n)) = batch.next() {
                    if let Some((from, change)) = parse(n.payload())
                        && from != node.as_str()
                    {
                        tell(hooks, &change);
                    }
                }
            }
            quiet += 1;
            if quiet >= PROBE_EVERY {
                quiet = 0;
                if client.simple_query("").is_err() {
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_roundtrip_and_refuse_garbage() {
        let node = Node {
            name: "host/0011".into(),
            owner: "host/0011".into(),
        };
        for change in [
            Change::Queued,
            Change::Folder {
                address: "a@x.it".into(),
                folder: "Archivio 2024".into(),
            },
        ] {
            let text = payload(&node, &change);
            assert_eq!(parse(&text), Some(("host/0011", change)));
        }
        for bad in ["", "n", "n\tfolder\ta@x.it", "n\tqueued\tx", "n\tother"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
