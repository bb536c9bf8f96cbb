//! Connection slots of one listener: at most so many connections in all and so many from
//! one client ([`crate::peer::key`]). A slot is given back when its [`Slot`] is dropped, so
//! the counts cannot leak whichever way a session ends. Memory is bounded by the global
//! limit: only clients holding a slot have an entry.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

/// Why a connection got no slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The listener holds its maximum number of connections.
    Full,
    /// This client holds its maximum number of connections.
    PerClient,
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_client: HashMap<IpAddr, usize>,
}

/// The slot table of a listener.
pub struct Slots {
    counts: Mutex<Counts>,
    max_total: usize,
    max_per_client: usize,
}

/// One occupied slot; dropping it frees the slot.
pub struct Slot {
    slots: Arc<Slots>,
    client: IpAddr,
}

impl Slots {
    /// A table allowing `max_total` connections, `max_per_client` of them from one client.
    pub fn new(max_total: usize, max_per_client: usize) -> Arc<Self> {
        Arc::new(Slots {
            counts: Mutex::new(Counts::default()),
            max_total,
            max_per_client,
        })
    }

    fn counts(&self) -> MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a slot for a connection from `ip`, or says why there is none.
    pub fn acquire(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Refusal> {
        let client = crate::peer::key(ip);
        let mut counts = self.counts();
        if counts.total >= self.max_total {
            return Err(Refusal::Full);
        }
        let held = counts.per_client.entry(client).or_insert(0);
        if *held >= self.max_per_client {
            return Err(Refusal::PerClient);
        }
        *held += 1;
        counts.total += 1;
        Ok(Slot {
            slots: Arc::clone(self),
            client,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.slots.counts();
        counts.total = counts.total.saturating_sub(1);
        if let Some(held) = counts.per_client.get_mut(&self.client) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                counts.per_client.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(slots: &Slots, ip: IpAddr) -> (usize, usize) {
        let counts = slots.counts();
        let client = crate::peer::key(ip);
        let mine = counts.per_client.get(&client).copied().unwrap_or(0);
        (counts.total, mine)
    }

    #[test]
    fn per_client_and_total_limits_and_slots_come_back() {
        let slots = Slots::new(3, 2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let c: IpAddr = "192.0.2.3".parse().unwrap();
        let a1 = slots.acquire(a).unwrap();
        let _a2 = slots.acquire(a).unwrap();
        assert_eq!(slots.acquire(a).err(), Some(Refusal::PerClient));
        let _b1 = slots.acquire(b).unwrap();
        assert_eq!(slots.acquire(c).err(), Some(Refusal::Full));
        assert_eq!(held(&slots, a), (3, 2));
        drop(a1);
        assert_eq!(held(&slots, a), (2, 1));
        let _c1 = slots.acquire(c).unwrap();
        assert_eq!(slots.acquire(a).err(), Some(Refusal::Full));
    }

    #[test]
    fn empty_entries_are_removed() {
        let slots = Slots::new(10, 10);
        for i in 0..5u8 {
            drop(slots.acquire(IpAddr::from([192, 0, 2, i])).unwrap());
        }
        assert!(slots.counts().per_client.is_empty());
        assert_eq!(slots.counts().total, 0);
    }
}
