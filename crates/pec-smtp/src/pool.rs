//! Reuse of relay connections: established (and, where the policy asks, TLS-secured) SMTP
//! sessions kept per destination, so that a busy queue pays the TCP and TLS handshakes
//! once per connection instead of once per queue entry.
//!
//! The rules: at most [`PoolLimits::per_destination`] connections to one destination
//! (connect address, TLS server name, TLS policy) and at most [`PoolLimits::total`] in use
//! at once; a session is reused for at most [`PoolLimits::max_transactions`] transactions;
//! an idle session is closed after [`PoolLimits::idle`], and dropped as soon as the peer
//! sent anything unasked (a `421` before closing) or closed it.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use smtp_proto::EhloResponse;
use tokio::io::AsyncBufRead;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use crate::Error;
use crate::client::Conn;
use crate::io::Stream;

/// How many relay connections a [`Pool`] keeps and for how long.
#[derive(Debug, Clone, Copy)]
pub struct PoolLimits {
    /// Connections open to one destination at most (idle or in use): a peer limits the
    /// connections it takes from one address.
    pub per_destination: usize,
    /// Connections in use at once over all destinations.
    pub total: usize,
    /// How long an unused connection stays open: well under the peer's command timeout.
    pub idle: Duration,
    /// Transactions on one connection before it is closed, so none lives forever.
    pub max_transactions: usize,
}

impl Default for PoolLimits {
    fn default() -> Self {
        Self {
            per_destination: 8,
            total: 64,
            idle: Duration::from_secs(5),
            max_transactions: 1000,
        }
    }
}

/// Destinations remembered without connections before the forgotten ones are removed.
const MAX_QUIET_DESTINATIONS: usize = 1024;

/// One established session: the connection after the greeting, EHLO and (if any) TLS.
pub(crate) struct Session {
    pub(crate) conn: Conn,
    pub(crate) ehlo: EhloResponse<String>,
    /// Transactions run on it so far.
    pub(crate) transactions: usize,
}

/// Where a session leads: connect address, TLS server name and the TLS policy it was
/// opened under (a plaintext session must not serve a relay that requires TLS).
pub(crate) type Destination = (String, String, u8);

struct Idle {
    session: Session,
    since: Instant,
}

struct Dest {
    slots: Arc<Semaphore>,
    idle: Vec<Idle>,
    /// Told each time a session is given back.
    returned: Arc<Notify>,
}

#[derive(Default)]
struct State {
    dests: HashMap<Destination, Dest>,
    reaper: bool,
}

struct Inner {
    limits: PoolLimits,
    total: Arc<Semaphore>,
    state: Mutex<State>,
}

/// The relay connections of one [`crate::Relay`] (clones share them): a bounded set of
/// established sessions per destination, reused transaction after transaction.
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

impl Default for Pool {
    fn default() -> Self {
        Self::new(PoolLimits::default())
    }
}

/// The right to use one connection to a destination, with the idle session taken from
/// the pool if there was one.
pub(crate) struct Lease {
    pub(crate) destination: Destination,
    pub(crate) reused: Option<Session>,
    _slot: OwnedSemaphorePermit,
    _total: OwnedSemaphorePermit,
}

/// True when the peer sent something unasked or closed the connection: an idle SMTP
/// session must be silent, so the session cannot be used any more.
fn is_stale(stream: &mut Stream) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    !matches!(Pin::new(stream).poll_fill_buf(&mut cx), Poll::Pending)
}

impl Pool {
    /// An empty pool with these limits (each at least 1).
    pub fn new(limits: PoolLimits) -> Self {
        let limits = PoolLimits {
            per_destination: limits.per_destination.max(1),
            total: limits.total.max(1),
            max_transactions: limits.max_transactions.max(1),
            idle: limits.idle,
        };
        Self {
            inner: Arc::new(Inner {
                limits,
                total: Arc::new(Semaphore::new(limits.total)),
                state: Mutex::new(State::default()),
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for a free connection slot to `destination`, then hands over an idle session
    /// to it if one is still usable.
    pub(crate) async fn lease(&self, destination: Destination) -> Result<Lease, Error> {
        let slots = {
            let mut state = self.state();
            if state.dests.len() >= MAX_QUIET_DESTINATIONS {
                let per = self.inner.limits.per_destination;
                state.dests.retain(|_, d| {
                    !d.idle.is_empty()
                        || Arc::strong_count(&d.slots) > 1
                        || d.slots.available_permits() < per
                });
            }
            let per = self.inner.limits.per_destination;
            Arc::clone(
                &state
                    .dests
                    .entry(destination.clone())
                    .or_insert_with(|| Dest {
                        slots: Arc::new(Semaphore::new(per)),
                        idle: Vec::new(),
                        returned: Arc::new(Notify::new()),
                    })
                    .slots,
            )
        };
        let closed = |_| Error::Config("relay connection pool closed".into());
        let slot = slots.acquire_owned().await.map_err(closed)?;
        let total = Arc::clone(&self.inner.total)
            .acquire_owned()
            .await
            .map_err(closed)?;
        let reused = {
            let mut state = self.state();
            let idle = state
                .dests
                .get_mut(&destination)
                .map(|d| std::mem::take(&mut d.idle))
                .unwrap_or_default();
            let mut fresh: Vec<Idle> = idle
                .into_iter()
                .filter_map(|mut i| (!is_stale(&mut i.session.conn.stream)).then_some(i))
                .collect();
            let taken = fresh.pop().map(|i| i.session);
            if let Some(d) = state.dests.get_mut(&destination) {
                d.idle = fresh;
            }
            taken
        };
        Ok(Lease {
            destination,
            reused,
            _slot: slot,
            _total: total,
        })
    }

    /// Returns a session that finished a transaction cleanly, releasing the lease; the
    /// session is closed instead when it has served its share.
    pub(crate) fn give_back(&self, lease: Lease, mut session: Session) {
        session.transactions += 1;
        if session.transactions >= self.inner.limits.max_transactions {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut state = self.state();
        if let Some(d) = state.dests.get_mut(&lease.destination) {
            d.idle.push(Idle {
                session,
                since: Instant::now(),
            });
            d.returned.notify_one();
        }
        if !state.reaper {
            state.reaper = true;
            let every = (self.inner.limits.idle / 2).max(Duration::from_millis(10));
            runtime.spawn(reap(Arc::downgrade(&self.inner), every));
        }
        drop(state);
        drop(lease);
    }

    /// For a lease whose new connection the peer refused (its limit on our connections):
    /// when other sessions of ours to the destination are in use, gives up the lease and
    /// waits (at most `within`) for one of them to be given back, then leases it; `None`
    /// when there is none to wait for or none came back in time.
    pub(crate) async fn wait_for_idle(&self, lease: Lease, within: Duration) -> Option<Lease> {
        let returned = {
            let state = self.state();
            let d = state.dests.get(&lease.destination)?;
            // Our own lease holds one of the slots in use.
            let in_use = self.inner.limits.per_destination - d.slots.available_permits();
            if in_use <= 1 {
                return None;
            }
            Arc::clone(&d.returned)
        };
        let destination = lease.destination.clone();
        drop(lease);
        tokio::time::timeout(within, async {
            loop {
                returned.notified().await;
                let lease = self.lease(destination.clone()).await.ok()?;
                if lease.reused.is_some() {
                    return Some(lease);
                }
            }
        })
        .await
        .ok()
        .flatten()
    }

    /// Connections open to one destination at most: how many transactions to it can run
    /// at once.
    pub fn per_destination(&self) -> usize {
        self.inner.limits.per_destination
    }

    /// Connections open and idle now, over all destinations.
    pub fn idle_connections(&self) -> usize {
        self.state().dests.values().map(|d| d.idle.len()).sum()
    }
}

/// Closes the idle sessions that expired or went stale, every `every`, while any is idle.
async fn reap(pool: Weak<Inner>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let Some(inner) = pool.upgrade() else {
            return;
        };
        let mut state = inner.state.lock().unwrap_or_else(PoisonError::into_inner);
        let idle_for = inner.limits.idle;
        let mut left = 0;
        for d in state.dests.values_mut() {
            // Dropping a session closes its connection.
            d.idle.retain_mut(|i| {
                i.since.elapsed() < idle_for && !is_stale(&mut i.session.conn.stream)
            });
            left += d.idle.len();
        }
        if left == 0 {
            state.reaper = false;
            return;
        }
    }
}
