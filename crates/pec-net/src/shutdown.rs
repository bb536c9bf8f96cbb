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

    /// Whether the shutdown has begun.
    pub fn is_signalled(&self) -> bool {
        self.0
            .as_ref()
            .is_some_and(|rx| *rx.borrow() || rx.has_changed().is_err())
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

    #[tokio::test]
    async fn the_signal_reaches_every_clone_and_a_dropped_sender_counts() {
        let (tx, signal) = Shutdown::channel();
        let copy = signal.clone();
        assert!(!signal.is_signalled());
        tx.send(true).unwrap();
        copy.signalled().await;
        assert!(signal.is_signalled());

        let (tx, signal) = Shutdown::channel();
        drop(tx);
        assert!(signal.is_signalled());
        signal.signalled().await;
        assert!(!Shutdown::never().is_signalled());
    }
}
