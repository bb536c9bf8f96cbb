//! Writes that give up on a client that stops reading.
//!
//! A client that sends commands but never reads the answers fills the socket buffers; the
//! session's next write then waits forever, pinning its task, its buffers and its
//! connection slot. [`WriteTimeout`] fails such a write with `TimedOut` once no byte has
//! moved for the configured time, so the session ends and frees everything.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Sleep, sleep};

/// A stream whose writes, flushes and shutdowns fail after `limit` without progress.
/// Reads pass through untouched (sessions bound them with their own command timeouts).
#[derive(Debug)]
pub struct WriteTimeout<S> {
    inner: S,
    limit: Duration,
    /// Armed while a write is blocked: when it fires, the write fails.
    deadline: Option<Pin<Box<Sleep>>>,
}

impl<S> WriteTimeout<S> {
    /// Wraps `inner`; a blocked write fails after `limit`.
    pub fn new(inner: S, limit: Duration) -> Self {
        WriteTimeout {
            inner,
            limit,
            deadline: None,
        }
    }

    /// Turns a pending write into a timeout once the deadline has passed; any progress
    /// (a ready result) disarms the deadline.
    fn watch<T>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if poll.is_ready() {
            self.deadline = None;
            return poll;
        }
        let limit = self.limit;
        let deadline = self.deadline.get_or_insert_with(|| Box::pin(sleep(limit)));
        match deadline.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.deadline = None;
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the client stopped reading",
                )))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteTimeout<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteTimeout<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.watch(cx, poll)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_flush(cx);
        this.watch(cx, poll)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.watch(cx, poll)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn a_client_that_never_reads_makes_the_write_fail() {
        let (client, server) = tokio::io::duplex(64);
        let mut server = WriteTimeout::new(server, Duration::from_secs(30));
        let started = tokio::time::Instant::now();
        let err = server.write_all(&[b'x'; 1024]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(30));
        drop(client);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_reader_that_keeps_reading_is_served() {
        let (mut client, server) = tokio::io::duplex(64);
        let mut server = WriteTimeout::new(server, Duration::from_secs(30));
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            let mut chunk = [0u8; 64];
            loop {
                // Slower than the buffer fills, faster than the limit.
                tokio::time::sleep(Duration::from_secs(20)).await;
                match client.read(&mut chunk).await.unwrap() {
                    0 => return got,
                    n => got.extend_from_slice(&chunk[..n]),
                }
            }
        });
        server.write_all(&[b'y'; 640]).await.unwrap();
        server.shutdown().await.unwrap();
        drop(server);
        assert_eq!(reader.await.unwrap(), vec![b'y'; 640]);
    }
}
