//! One reception at a time per PEC message. A received envelope or receipt is recognised
//! as already handled through the legal log, which is written in the same transaction as
//! its effects; two receptions of the same message running at the same time (a sender
//! retrying while the first attempt is still being processed) would both find nothing in
//! the log and both deliver. The incoming point therefore enters a key naming the message
//! before looking at the log, and a second reception with the same key waits for the
//! first to finish, then finds its log record.

use std::collections::HashSet;
use std::sync::Mutex;

use tokio::sync::Notify;

/// The keys of the receptions in progress.
#[derive(Debug, Default)]
pub struct InFlight {
    keys: Mutex<HashSet<String>>,
    freed: Notify,
}

/// Holds a key of [`InFlight`] until dropped.
#[derive(Debug)]
pub struct Entered<'a> {
    owner: &'a InFlight,
    key: String,
}

impl InFlight {
    /// Waits until no other reception holds `key`, then holds it.
    pub async fn enter(&self, key: String) -> Entered<'_> {
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            // Registered before the check, so a release in between is not missed.
            freed.as_mut().enable();
            if self.keys().insert(key.clone()) {
                return Entered { owner: self, key };
            }
            freed.await;
        }
    }

    fn keys(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        // The set stays consistent even if a holder panicked: insert and remove are
        // single operations.
        self.keys.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        self.owner.keys().remove(&self.key);
        self.owner.freed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn same_key_runs_one_at_a_time_other_keys_in_parallel() {
        let inflight = Arc::new(InFlight::default());
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (inflight, running, most) = (inflight.clone(), running.clone(), most.clone());
            tasks.push(tokio::spawn(async move {
                let _held = inflight.enter("busta opec1".into()).await;
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
                running.fetch_sub(1, Ordering::SeqCst);
            }));
        }
        // Another key is not held up by the first.
        let other = tokio::time::timeout(Duration::from_millis(500), inflight.enter("x".into()))
            .await
            .is_ok();
        for t in tasks {
            t.await.unwrap();
        }
        assert!(other);
        assert_eq!(most.load(Ordering::SeqCst), 1);
        assert!(inflight.keys().is_empty());
    }
}
