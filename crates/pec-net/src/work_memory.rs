//! The argon2 work memory of the password check, kept between verifications.
//!
//! One argon2id verification with the default parameters fills 19 MiB. Allocating it
//! anew for each login costs page faults, zeroing and unmapping: about a tenth of the CPU
//! of a login storm (`BENCHMARKS.md`). The pool keeps at most one buffer per worker while
//! logins keep coming, and drops them all once none was given back for the idle period,
//! so an idle server does not hold `workers` × 19 MiB for good.
//!
//! Time is passed in (the caller's clock: tokio's, paused in tests), so the release is
//! decided by [`WorkMemory::release_if_idle`] alone and tested without waiting.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use argon2::Block;
use tokio::time::Instant;

/// Buffers for verifications, at most `capacity` kept, released after `idle` unused.
#[derive(Debug)]
pub(crate) struct WorkMemory {
    state: Mutex<State>,
    capacity: usize,
    idle: Duration,
}

#[derive(Debug)]
struct State {
    free: Vec<Vec<Block>>,
    last_use: Option<Instant>,
    release_scheduled: bool,
}

impl WorkMemory {
    /// A pool keeping at most `capacity` buffers, dropped after `idle` without use.
    pub(crate) fn new(capacity: usize, idle: Duration) -> Self {
        WorkMemory {
            state: Mutex::new(State {
                free: Vec::new(),
                last_use: None,
                release_scheduled: false,
            }),
            capacity,
            idle,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A kept buffer, or an empty one that the verification grows to what it needs.
    pub(crate) fn take(&self) -> Vec<Block> {
        self.state().free.pop().unwrap_or_default()
    }

    /// Keeps `buffer` for the next verification (dropped when `capacity` are kept
    /// already) and notes `now` as the last use. When no release is pending, the instant
    /// at which the caller is to call [`WorkMemory::release_if_idle`].
    pub(crate) fn give_back(&self, buffer: Vec<Block>, now: Instant) -> Option<Instant> {
        let mut state = self.state();
        if state.free.len() < self.capacity {
            state.free.push(buffer);
        }
        state.last_use = Some(now);
        let pending = std::mem::replace(&mut state.release_scheduled, true);
        (!pending).then_some(now + self.idle)
    }

    /// Drops every kept buffer when none was given back for the idle period before
    /// `now`: then `None`, and the next [`WorkMemory::give_back`] asks for a new release.
    /// Otherwise the instant at which the period ends, to check again then.
    pub(crate) fn release_if_idle(&self, now: Instant) -> Option<Instant> {
        let mut state = self.state();
        let due = state.last_use.map(|last| last + self.idle);
        match due {
            Some(due) if due > now => Some(due),
            _ => {
                state.free = Vec::new();
                state.release_scheduled = false;
                None
            }
        }
    }

    /// Buffers kept now (the ones lent to running verifications are not counted).
    pub(crate) fn kept(&self) -> usize {
        self.state().free.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buffer(blocks: usize) -> Vec<Block> {
        vec![Block::new(); blocks]
    }

    #[test]
    fn buffers_are_reused_up_to_the_capacity() {
        let pool = WorkMemory::new(2, Duration::from_secs(30));
        let now = Instant::now();
        let (a, b, c) = (pool.take(), pool.take(), pool.take());
        assert!(
            a.is_empty() && b.is_empty() && c.is_empty(),
            "nothing kept yet"
        );
        let due = pool.give_back(buffer(8), now);
        assert_eq!(
            due,
            Some(now + Duration::from_secs(30)),
            "a release to schedule"
        );
        assert_eq!(
            pool.give_back(buffer(8), now),
            None,
            "one is pending already"
        );
        assert_eq!(pool.give_back(buffer(8), now), None);
        assert_eq!(pool.kept(), 2, "the third buffer is dropped");
        assert_eq!(pool.take().len(), 8, "a kept buffer comes back as it was");
        assert_eq!(pool.kept(), 1);
    }

    #[test]
    fn buffers_are_released_after_the_idle_period_only() {
        let idle = Duration::from_secs(30);
        let pool = WorkMemory::new(2, idle);
        let start = Instant::now();
        let first_due = pool.give_back(buffer(8), start).unwrap();
        assert_eq!(first_due, start + idle);
        let second = start + Duration::from_secs(20);
        assert_eq!(pool.give_back(buffer(8), second), None);

        // Checked when the first return's period ends: the second return moved it on.
        assert_eq!(pool.release_if_idle(first_due), Some(second + idle));
        assert_eq!(pool.kept(), 2);
        assert_eq!(
            pool.release_if_idle(second + idle - Duration::from_millis(1)),
            Some(second + idle)
        );
        assert_eq!(pool.kept(), 2);
        assert_eq!(pool.release_if_idle(second + idle), None);
        assert_eq!(pool.kept(), 0, "released");

        // Logins again: kept again, and a new release is asked for.
        let again = second + idle * 2;
        assert_eq!(pool.give_back(buffer(8), again), Some(again + idle));
        assert_eq!(pool.kept(), 1);
    }
}
