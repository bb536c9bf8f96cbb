//! Flow control between submission and the outbound queue, as Postfix's `in_flow_delay`:
//! while the queue worker's last pass found a full batch of due entries the queue is
//! behind, and each user's submission (SMTP or JMAP, in
//! [`crate::handlers::SubmissionHandler`]; not the queue's own, which would wait for its
//! own pass) waits for the end of the worker's next pass (at most [`IN_FLOW_DELAY`])
//! before it is taken. Acceptance then runs at the rate the queue
//! sustains, instead of growing the backlog for as long as a load lasts (the receipts of
//! an accepted message coming later and later, up to the 12 h notices). Entries deferred
//! to a later attempt (a gestore that is down) are not due until then, so they slow
//! nobody in between.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

/// The longest a submission waits for the queue (Postfix's default `in_flow_delay`).
pub const IN_FLOW_DELAY: Duration = Duration::from_secs(1);

/// Whether the queue keeps up, as its worker last found it, and the signal of its passes.
#[derive(Debug, Default)]
pub struct InFlow {
    behind: AtomicBool,
    pass: Notify,
}

impl InFlow {
    /// Records the end of a pass of the queue worker that found `due` entries when it
    /// asked for at most `batch`, and wakes the submissions waiting for it.
    pub fn pass(&self, due: usize, batch: usize) {
        self.behind.store(due >= batch, Ordering::Relaxed);
        self.pass.notify_waiters();
    }

    /// Whether the last pass found a full batch: more entries were due than it could take.
    pub fn behind(&self) -> bool {
        self.behind.load(Ordering::Relaxed)
    }

    /// Waits, while the queue is behind, for the end of its next pass or for
    /// [`IN_FLOW_DELAY`]; returns whether it waited.
    pub async fn admit(&self) -> bool {
        if !self.behind() {
            return false;
        }
        // Registered before the check below: a pass ending in between still wakes it.
        let next = self.pass.notified();
        tokio::pin!(next);
        next.as_mut().enable();
        if !self.behind() {
            return false;
        }
        let _ = tokio::time::timeout(IN_FLOW_DELAY, next).await;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_submission_waits_only_while_the_queue_is_behind() {
        let flow = std::sync::Arc::new(InFlow::default());
        // Keeping up: no wait.
        flow.pass(3, 256);
        assert!(!flow.admit().await);

        // Behind: the submission waits for the next pass, not for the whole delay.
        flow.pass(256, 256);
        let start = tokio::time::Instant::now();
        let waiting = tokio::spawn({
            let flow = flow.clone();
            async move { flow.admit().await }
        });
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(!waiting.is_finished(), "admitted while the queue is behind");
        flow.pass(256, 256);
        assert!(waiting.await.unwrap());
        assert!(start.elapsed() < IN_FLOW_DELAY);

        // Behind and no pass comes (a stuck worker): the delay bounds the wait.
        let start = tokio::time::Instant::now();
        assert!(flow.admit().await);
        assert_eq!(start.elapsed(), IN_FLOW_DELAY);
    }
}
