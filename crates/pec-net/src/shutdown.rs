//! The signal a listener gives its sessions when the server stops.

use tokio::sync::watch;

/// Tells a session that the server is shutting down: it should say goodbye in its protocol
/// (SMTP `421`, IMAP `* BYE`) at the next point where it waits for the client, and end.
/// Cloning is cheap; every clone sees the same signal.
#[derive(Debug, Clone)]
pub struct Shutdown(Option<watch::Receiver<bool>>);

impl Shutdown {
    /// A signal that never comes, for sessions outside a listener (in-memory tests, fuzzing).
    pub fn never() -> Self {
        Shutdown(None)
    }

    /// A new signal and the sender that raises it (by sending `true` or being dropped).
    pub(crate) fn channel() -> (watch::Sender<bool>, Shutdown) {
        let (tx, rx) = watch::channel(false);
        (tx, Shutdown(Some(rx)))
    }

    /// Resolves once the shutdown has begun (at once if it already has).
    pub async fn signalled(&self) {
        match &self.0 {
            None => std::future::pending().await,
            Some(rx) => {
                let mut rx = rx.clone();
                // An error means the listener is gone: that is a shutdown too.
                let _ = rx.wait_for(|stop| *stop).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn the_signal_reaches_every_clone_and_a_dropped_sender_counts() {
        let (tx, signal) = Shutdown::channel();
        let copy = signal.clone();
        tx.send(true).unwrap();
        copy.signalled().await;
        signal.signalled().await;

        let (tx, signal) = Shutdown::channel();
        drop(tx);
        signal.signalled().await;
    }

    #[tokio::test(start_paused = true)]
    async fn never_is_never() {
        let never = Shutdown::never();
        let waited = tokio::time::timeout(Duration::from_secs(3600), never.signalled()).await;
        assert!(waited.is_err());
    }
}
