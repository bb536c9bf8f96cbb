//! The per-client penalty after failed logins, as Dovecot's `auth_penalty`: after the n-th
//! failure in a row, the next attempt from that client waits `first × 2^(n-1)`, at most
//! `max` (2 s, 4 s, 8 s, 15 s by default). Attempts are also spaced by that delay one after
//! the other, so opening many connections at once does not multiply the guesses. A
//! success forgets the client; so do `forget` without failures. At most `capacity` clients
//! are remembered: when full, the longest quiet one is dropped.
//!
//! Pure bookkeeping over an [`Instant`] passed in; the waiting is the caller's.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use tokio::time::Instant;

/// The penalty rules.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Policy {
    pub first: Duration,
    pub max: Duration,
    pub forget: Duration,
    pub capacity: usize,
}

impl Policy {
    /// The wait after `failures` failures in a row.
    fn delay(&self, failures: u32) -> Duration {
        let Some(doublings) = failures.checked_sub(1) else {
            return Duration::ZERO;
        };
        let factor = 1u32.checked_shl(doublings.min(31)).unwrap_or(u32::MAX);
        self.first.saturating_mul(factor).min(self.max)
    }
}

struct Entry {
    failures: u32,
    last_failure: Instant,
    /// The earliest moment the next attempt may be verified.
    next: Instant,
}

/// Remembered clients and their failures.
pub(crate) struct Penalties {
    policy: Policy,
    clients: HashMap<IpAddr, Entry>,
}

impl Penalties {
    pub(crate) fn new(policy: Policy) -> Self {
        Penalties {
            policy,
            clients: HashMap::new(),
        }
    }

    /// When an attempt from `client` arriving at `now` may be verified; the moment after
    /// it is reserved for the client's next attempt.
    pub(crate) fn admit(&mut self, client: IpAddr, now: Instant) -> Instant {
        let policy = self.policy;
        let Some(entry) = self.clients.get_mut(&client) else {
            return now;
        };
        if now.saturating_duration_since(entry.last_failure) >= policy.forget {
            self.clients.remove(&client);
            return now;
        }
        let at = entry.next.max(now);
        entry.next = at + policy.delay(entry.failures);
        at
    }

    /// Records a failed attempt from `client` at `now`.
    pub(crate) fn failed(&mut self, client: IpAddr, now: Instant) {
        if !self.clients.contains_key(&client) && self.clients.len() >= self.policy.capacity {
            self.make_room(now);
        }
        let policy = self.policy;
        let entry = self.clients.entry(client).or_insert(Entry {
            failures: 0,
            last_failure: now,
            next: now,
        });
        if now.saturating_duration_since(entry.last_failure) >= policy.forget {
            entry.failures = 0;
        }
        entry.failures = entry.failures.saturating_add(1);
        entry.last_failure = now;
        entry.next = entry.next.max(now + policy.delay(entry.failures));
    }

    /// Forgets `client` after a successful login.
    pub(crate) fn succeeded(&mut self, client: IpAddr) {
        self.clients.remove(&client);
    }

    /// Drops the clients whose penalty has lapsed, and if none has, the quietest one.
    fn make_room(&mut self, now: Instant) {
        let forget = self.policy.forget;
        self.clients
            .retain(|_, e| now.saturating_duration_since(e.last_failure) < forget);
        if self.clients.len() < self.policy.capacity {
            return;
        }
        let quietest = self
            .clients
            .iter()
            .min_by_key(|(_, e)| e.last_failure)
            .map(|(ip, _)| *ip);
        if let Some(ip) = quietest {
            self.clients.remove(&ip);
        }
    }

    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.clients.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(capacity: usize) -> Policy {
        Policy {
            first: Duration::from_secs(2),
            max: Duration::from_secs(15),
            forget: Duration::from_secs(600),
            capacity,
        }
    }

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, n])
    }

    #[test]
    fn delays_double_up_to_the_cap() {
        let p = policy(10);
        let delays: Vec<u64> = (0..7).map(|n| p.delay(n).as_secs()).collect();
        assert_eq!(delays, [0, 2, 4, 8, 15, 15, 15]);
        assert_eq!(p.delay(u32::MAX), Duration::from_secs(15));
    }

    #[test]
    fn attempts_in_parallel_are_spaced_by_the_delay() {
        let mut t = Penalties::new(policy(10));
        let t0 = Instant::now();
        t.failed(ip(1), t0);
        let s = Duration::from_secs;
        assert_eq!(t.admit(ip(1), t0), t0 + s(2));
        assert_eq!(t.admit(ip(1), t0), t0 + s(4));
        assert_eq!(t.admit(ip(1), t0), t0 + s(6));
        assert_eq!(t.admit(ip(2), t0), t0, "another client does not wait");
    }

    #[test]
    fn a_long_quiet_client_is_forgotten_and_the_table_stays_bounded() {
        let mut t = Penalties::new(policy(3));
        let t0 = Instant::now();
        for n in 1..=3 {
            t.failed(ip(n), t0 + Duration::from_secs(u64::from(n)));
        }
        t.failed(ip(4), t0 + Duration::from_secs(10));
        assert_eq!(t.remembered(), 3);
        let later = t0 + Duration::from_secs(10);
        assert_eq!(t.admit(ip(1), later), later, "the quietest was dropped");
        assert!(t.admit(ip(4), later) > later);
        let much_later = t0 + Duration::from_secs(700);
        assert_eq!(t.admit(ip(4), much_later), much_later);
        t.failed(ip(5), much_later);
        assert!(t.remembered() <= 3);
    }
}
