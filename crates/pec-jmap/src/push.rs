//! Push by event source (RFC 8620 §7.3) at the session's `eventSourceUrl`: a
//! `text/event-stream` response that tells the client, in `state` events, the new states
//! of the types it asked for (`Email`, `Mailbox`, `Thread`, `EmailDelivery`) whenever
//! they change, and `ping` events if it asked for them.
//!
//! The stream waits on the account's change hub, the one that wakes IMAP IDLE (deliveries,
//! IMAP, POP3 and JMAP changes, and other nodes' changes through the store's change feed):
//! no polling. Each wake-up reads the states once (the store's counters, as
//! `Email/changes` does) and pushes only the types whose state moved.
//!
//! The first event says the states now, unless the client sends `Last-Event-ID` (an event
//! id of ours, which digests the states it was told): then only what changed since, at
//! once, so a client that reconnects misses nothing. `closeafter=state` ends the response
//! after one `state` event (long polling). Streams are bounded per user, per client
//! address and in all, and each lasts at most [`PushLimits::lifetime`] (clients reconnect).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Bytes, Frame};
use pec_imap::{Notifier, Watcher};
use pec_store::Store;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::warn;

use crate::{ids, mailbox, state};

/// The data types a client may ask to be pushed, in the order events list them.
pub const TYPES: [&str; 4] = ["Email", "Mailbox", "Thread", "EmailDelivery"];

/// Events a stream holds for a client that does not read them.
const BACKLOG: usize = 4;

/// The bounds of push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushLimits {
    /// Streams one user may have open at once.
    pub per_user: usize,
    /// Streams one client address may have open at once.
    pub per_peer: usize,
    /// Streams open at once on the server.
    pub total: usize,
    /// Shortest ping interval, in seconds (RFC 8620: at most 30).
    pub min_ping: u64,
    /// Longest ping interval, in seconds (RFC 8620: at least 300).
    pub max_ping: u64,
    /// How long one stream lasts before the server ends it (the client reconnects).
    pub lifetime: Duration,
}

impl Default for PushLimits {
    fn default() -> Self {
        PushLimits {
            per_user: 4,
            per_peer: 8,
            total: 1024,
            min_ping: 10,
            max_ping: 900,
            lifetime: Duration::from_secs(30 * 60),
        }
    }
}

/// Streams open now, by user and by client address.
#[derive(Default)]
struct Open {
    users: HashMap<String, usize>,
    peers: HashMap<IpAddr, usize>,
    total: usize,
}

/// The push service: the change hub it waits on, its bounds and the streams open.
pub struct Push {
    notifier: Notifier,
    limits: PushLimits,
    open: Arc<Mutex<Open>>,
}

/// Why a stream was not opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Too many streams of this user, client or server: `429`.
    Busy,
    /// The query is not one of RFC 8620's: `400`, with why.
    BadRequest(String),
}

/// One open stream, counted until it is dropped.
struct Slot {
    open: Arc<Mutex<Open>>,
    address: String,
    peer: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.users.get_mut(&self.address) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.users.remove(&self.address);
            }
        }
        if let Some(n) = open.peers.get_mut(&self.peer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.peers.remove(&self.peer);
            }
        }
    }
}

/// The body of an event-source response: the events the stream's task writes, ending
/// when it ends. Dropping it (the client went away) frees the stream's place at once and
/// ends the task.
pub struct EventStream {
    rx: mpsc::Receiver<Bytes>,
    _slot: Slot,
}

impl Body for EventStream {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.get_mut()
            .rx
            .poll_recv(cx)
            .map(|event| event.map(|b| Ok(Frame::data(b))))
    }
}

/// What the client asked for in the query string.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Asked {
    types: Vec<&'static str>,
    close_after_state: bool,
    ping: Option<Duration>,
}

/// The ping interval used for `asked` seconds (`None`: no pings), within the limits.
pub fn ping_interval(asked: u64, limits: &PushLimits) -> Option<Duration> {
    (asked > 0).then(|| Duration::from_secs(asked.clamp(limits.min_ping, limits.max_ping)))
}

/// Reads `types`, `closeafter` and `ping` (RFC 8620 §7.3). Missing values mean every
/// type, `no` and no pings; type names we do not push are ignored.
fn asked(query: &str, limits: &PushLimits) -> Result<Asked, String> {
    let mut out = Asked {
        types: TYPES.to_vec(),
        close_after_state: false,
        ping: None,
    };
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "types" if value != "*" => {
                out.types = TYPES
                    .into_iter()
                    .filter(|t| value.split(',').any(|v| v.trim() == *t))
                    .collect();
            }
            "closeafter" => {
                out.close_after_state = match value.as_ref() {
                    "state" => true,
                    "no" => false,
                    _ => return Err("closeafter must be state or no".into()),
                }
            }
            "ping" => {
                let seconds = value
                    .parse::<u64>()
                    .map_err(|_| "ping must be a number of seconds".to_string())?;
                out.ping = ping_interval(seconds, limits);
            }
            _ => {}
        }
    }
    Ok(out)
}

/// The states of the pushed types at one time.
#[derive(Debug, Clone, PartialEq, Eq)]
struct States {
    email: String,
    mailbox: String,
    delivery: String,
}

/// A short digest of a state, for event ids.
fn digest(state: &str) -> String {
    let d = openssl::sha::sha256(state.as_bytes());
    d.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

impl States {
    /// The account's states now.
    fn read(store: &dyn Store, address: &str) -> crate::Result<States> {
        let views = mailbox::snapshot(store, address)?;
        Ok(States {
            email: state::email_state(&views),
            mailbox: state::mailbox_state(&views),
            delivery: state::delivery_state(&views),
        })
    }

    /// The state of one of [`TYPES`] (a Thread changes with its emails).
    fn of(&self, kind: &str) -> &str {
        match kind {
            "Mailbox" => &self.mailbox,
            "EmailDelivery" => &self.delivery,
            _ => &self.email,
        }
    }

    /// The event id telling these states: the digests of the Email, Mailbox and
    /// EmailDelivery states.
    fn event_id(&self) -> String {
        format!(
            "{}-{}-{}",
            digest(&self.email),
            digest(&self.mailbox),
            digest(&self.delivery)
        )
    }

    /// The types of `wanted` whose state differs from what event id `told` said
    /// (every one if `told` is not one of our ids).
    fn changed_since(&self, told: Option<&str>, wanted: &[&'static str]) -> Vec<&'static str> {
        let digests: Vec<&str> = told.map(|t| t.split('-').collect()).unwrap_or_default();
        let was = |kind: &str| {
            let i = match kind {
                "Mailbox" => 1,
                "EmailDelivery" => 2,
                _ => 0,
            };
            (digests.len() == 3)
                .then(|| digests.get(i).copied())
                .flatten()
        };
        wanted
            .iter()
            .copied()
            .filter(|k| was(k) != Some(digest(self.of(k)).as_str()))
            .collect()
    }

    /// The types of `wanted` whose state differs from `before`'s.
    fn changed_from(&self, before: &States, wanted: &[&'static str]) -> Vec<&'static str> {
        wanted
            .iter()
            .copied()
            .filter(|k| self.of(k) != before.of(k))
            .collect()
    }
}

/// A `state` event: a StateChange (RFC 8620 §7.1) naming `kinds` of `account`.
fn state_event(account: &str, states: &States, kinds: &[&str]) -> Bytes {
    let mut changed = Map::new();
    for kind in kinds {
        changed.insert((*kind).to_string(), Value::from(states.of(kind)));
    }
    let data = json!({"@type": "StateChange", "changed": {account: changed}});
    Bytes::from(format!(
        "event: state\nid: {}\ndata: {data}\n\n",
        states.event_id()
    ))
}

/// A `ping` event with the interval in use.
fn ping_event(interval: Duration) -> Bytes {
    let data = json!({"interval": interval.as_secs()});
    Bytes::from(format!("event: ping\ndata: {data}\n\n"))
}

/// What one stream's task needs.
struct Stream {
    store: Arc<dyn Store>,
    address: String,
    watcher: Watcher,
    asked: Asked,
    last_event_id: Option<String>,
    lifetime: Duration,
    tx: mpsc::Sender<Bytes>,
}

impl Push {
    /// A push service waking on `notifier`'s changes, within `limits`.
    pub fn new(notifier: Notifier, limits: PushLimits) -> Self {
        Push {
            notifier,
            limits,
            open: Arc::default(),
        }
    }

    /// The longest a stream lasts (the HTTP server lets such a connection live that long).
    pub fn lifetime(&self) -> Duration {
        self.limits.lifetime
    }

    /// A place for a stream of `address` from `peer`, if the bounds allow one more.
    fn slot(&self, address: &str, peer: IpAddr) -> Option<Slot> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let user = open.users.get(address).copied().unwrap_or(0);
        let from = open.peers.get(&peer).copied().unwrap_or(0);
        if user >= self.limits.per_user
            || from >= self.limits.per_peer
            || open.total >= self.limits.total
        {
            return None;
        }
        *open.users.entry(address.to_string()).or_default() += 1;
        *open.peers.entry(peer).or_default() += 1;
        open.total += 1;
        Some(Slot {
            open: self.open.clone(),
            address: address.to_string(),
            peer,
        })
    }

    /// Opens a stream for `address` (from `peer`) with the request's `query` and
    /// `Last-Event-ID`; its events are written by a task that ends with the stream.
    pub fn open(
        &self,
        store: Arc<dyn Store>,
        address: String,
        peer: IpAddr,
        query: &str,
        last_event_id: Option<&str>,
    ) -> Result<EventStream, Refused> {
        let asked = asked(query, &self.limits).map_err(Refused::BadRequest)?;
        let slot = self
            .slot(&address.to_ascii_lowercase(), peer)
            .ok_or(Refused::Busy)?;
        // Watching before the first reading of the states: nothing falls in between.
        let watcher = self.notifier.watch(&address);
        let (tx, rx) = mpsc::channel(BACKLOG);
        let stream = Stream {
            store,
            address,
            watcher,
            asked,
            last_event_id: last_event_id.map(str::to_string),
            lifetime: self.limits.lifetime,
            tx,
        };
        tokio::spawn(stream.run());
        Ok(EventStream { rx, _slot: slot })
    }
}

impl Stream {
    /// The states now, read where blocking is allowed; `None` if the store failed.
    async fn states(&self) -> Option<States> {
        let (store, address) = (self.store.clone(), self.address.clone());
        match tokio::task::spawn_blocking(move || States::read(store.as_ref(), &address)).await {
            Ok(Ok(s)) => Some(s),
            Ok(Err(e)) => {
                warn!("JMAP push: the store failed: {e}");
                None
            }
            Err(e) => {
                warn!("JMAP push: the store task failed: {e}");
                None
            }
        }
    }

    /// Pushes until the client goes, the stream's time is up, the change hub is gone,
    /// the store fails (the client reconnects and catches up) or, with
    /// `closeafter=state`, one state event was sent.
    async fn run(mut self) {
        let account = ids::account_id(&self.address);
        let end = Instant::now() + self.lifetime;
        let Some(mut told) = self.states().await else {
            return;
        };
        let first = told.changed_since(self.last_event_id.as_deref(), &self.asked.types);
        let mut last_sent = Instant::now();
        if !first.is_empty() {
            if self
                .tx
                .send(state_event(&account, &told, &first))
                .await
                .is_err()
                || self.asked.close_after_state
            {
                return;
            }
            last_sent = Instant::now();
        }
        loop {
            let ping_at = self.asked.ping.map(|p| last_sent + p);
            let ping = async {
                match ping_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = tokio::time::sleep_until(end) => return,
                () = self.tx.closed() => return,
                () = ping => {
                    let interval = self.asked.ping.unwrap_or_default();
                    if self.tx.send(ping_event(interval)).await.is_err() {
                        return;
                    }
                    last_sent = Instant::now();
                }
                alive = self.watcher.changed() => {
                    if !alive {
                        return;
                    }
                    self.watcher.take();
                    let Some(now) = self.states().await else {
                        return;
                    };
                    let kinds = now.changed_from(&told, &self.asked.types);
                    if kinds.is_empty() {
                        continue;
                    }
                    if self.tx.send(state_event(&account, &now, &kinds)).await.is_err()
                        || self.asked.close_after_state
                    {
                        return;
                    }
                    told = now;
                    last_sent = Instant::now();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_read_within_bounds() {
        let limits = PushLimits::default();
        let a = asked("types=*&closeafter=no&ping=0", &limits).unwrap();
        assert_eq!(a.types, TYPES.to_vec());
        assert!(!a.close_after_state && a.ping.is_none());
        let a = asked("types=Mailbox%2CFoo,Email&closeafter=state&ping=1", &limits).unwrap();
        assert_eq!(a.types, vec!["Email", "Mailbox"]);
        assert!(a.close_after_state);
        assert_eq!(
            a.ping,
            Some(Duration::from_secs(10)),
            "raised to the minimum"
        );
        assert_eq!(
            ping_interval(1_000_000, &limits),
            Some(Duration::from_secs(900))
        );
        assert!(asked("closeafter=maybe", &limits).is_err());
        assert!(asked("ping=-1", &limits).is_err());
        assert!(asked("ping=99999999999999999999999", &limits).is_err());
    }

    #[test]
    fn event_ids_tell_which_types_changed() {
        let s = States {
            email: "m1:5:3".into(),
            mailbox: "m1:5:3|abc".into(),
            delivery: "m1:3".into(),
        };
        let id = s.event_id();
        assert!(s.changed_since(Some(&id), &TYPES).is_empty());
        assert_eq!(s.changed_since(None, &TYPES), TYPES.to_vec());
        assert_eq!(
            s.changed_since(Some("garbage"), &["Mailbox"]),
            vec!["Mailbox"]
        );
        let flagged = States {
            email: "m1:6:3".into(),
            mailbox: "m1:6:3|abc".into(),
            delivery: "m1:3".into(),
        };
        assert_eq!(
            flagged.changed_since(Some(&id), &TYPES),
            vec!["Email", "Mailbox", "Thread"]
        );
        assert_eq!(
            flagged.changed_from(&s, &["EmailDelivery"]),
            Vec::<&str>::new()
        );
        let event = String::from_utf8(state_event("a1", &flagged, &["Email"]).to_vec()).unwrap();
        assert!(event.starts_with("event: state\nid: "), "{event}");
        assert!(event.ends_with("\n\n"), "{event}");
        let data: Value = serde_json::from_str(
            event
                .lines()
                .nth(2)
                .unwrap()
                .strip_prefix("data: ")
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            data,
            json!({"@type": "StateChange", "changed": {"a1": {"Email": "m1:6:3"}}})
        );
    }
}
