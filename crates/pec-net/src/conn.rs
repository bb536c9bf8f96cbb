//! The connection a session talks over: plain or TLS, upgradable once (STARTTLS, STLS),
//! with its peer's address, and reads that can end when the server shuts down.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::Shutdown;

/// How long a STARTTLS handshake may take unless the listener says otherwise.
const DEFAULT_HANDSHAKE: Duration = Duration::from_secs(10);

enum Stream<S> {
    Plain(S),
    Tls(Box<TlsStream<S>>),
    /// Only during an upgrade, or after a failed one.
    Gone,
}

/// A client connection as a session sees it.
///
/// Once [`Conn::end_reads_on`] is given the listener's [`Shutdown`], a read that would wait
/// for the client returns end-of-stream when the shutdown begins; bytes the client already
/// sent are still delivered first. The session then sees an ordinary end of stream, ends,
/// and can check [`Conn::interrupted`] to say goodbye in its protocol. That is how IMAP and
/// POP3 sessions learn of a shutdown without a shutdown check in each of their reads.
pub struct Conn<S> {
    stream: Stream<S>,
    peer: SocketAddr,
    handshake: Duration,
    stop: Option<Pin<Box<dyn Future<Output = ()> + Send + Sync>>>,
    interrupted: bool,
}

impl<S> Conn<S> {
    fn new(stream: Stream<S>, peer: SocketAddr) -> Self {
        Conn {
            stream,
            peer,
            handshake: DEFAULT_HANDSHAKE,
            stop: None,
            interrupted: false,
        }
    }

    /// A connection without TLS (yet) from `peer`.
    pub fn plain(stream: S, peer: SocketAddr) -> Self {
        Conn::new(Stream::Plain(stream), peer)
    }

    /// A connection whose TLS handshake is done.
    pub fn tls(stream: TlsStream<S>, peer: SocketAddr) -> Self {
        Conn::new(Stream::Tls(Box::new(stream)), peer)
    }

    /// The limit for the handshake of [`Conn::start_tls`].
    pub fn with_handshake_timeout(mut self, limit: Duration) -> Self {
        self.handshake = limit;
        self
    }

    /// From now on, reads end (end-of-stream) once `shutdown` is signalled and no byte
    /// from the client is waiting.
    pub fn end_reads_on(mut self, shutdown: Shutdown) -> Self {
        self.stop = Some(Box::pin(async move { shutdown.signalled().await }));
        self
    }

    /// The client's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Whether the connection is encrypted.
    pub fn is_tls(&self) -> bool {
        matches!(self.stream, Stream::Tls(_))
    }

    /// What the TLS handshake negotiated, for trace fields; `None` without TLS.
    pub fn tls_parameters(&self) -> Option<crate::tls::TlsParameters> {
        match &self.stream {
            Stream::Tls(s) => crate::tls::TlsParameters::of(s.get_ref().1),
            _ => None,
        }
    }

    /// Whether a read was ended by the shutdown (the session should say goodbye).
    pub fn interrupted(&self) -> bool {
        self.interrupted
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    /// Performs the TLS handshake on a plain connection (STARTTLS, STLS), within the
    /// handshake limit; fails on a connection that is already secure.
    pub async fn start_tls(&mut self, tls: Arc<rustls::ServerConfig>) -> io::Result<()> {
        let plain = match std::mem::replace(&mut self.stream, Stream::Gone) {
            Stream::Plain(s) => s,
            other => {
                self.stream = other;
                return Err(io::Error::other("connection is already secure"));
            }
        };
        let handshake = TlsAcceptor::from(tls).accept(plain);
        let tls = tokio::time::timeout(self.handshake, handshake)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
        self.stream = Stream::Tls(Box::new(tls));
        Ok(())
    }
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "TLS upgrade failed")
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Conn<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.interrupted {
            return Poll::Ready(Ok(()));
        }
        let poll = match &mut this.stream {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Gone => Poll::Ready(Err(gone())),
        };
        if poll.is_pending()
            && let Some(stop) = this.stop.as_mut()
            && stop.as_mut().poll(cx).is_ready()
        {
            this.stop = None;
            this.interrupted = true;
            return Poll::Ready(Ok(()));
        }
        poll
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Conn<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().stream {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Gone => Poll::Ready(Err(gone())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().stream {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s).poll_flush(cx),
            Stream::Gone => Poll::Ready(Err(gone())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().stream {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Gone => Poll::Ready(Ok(())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn local() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 0))
    }

    #[tokio::test]
    async fn a_waiting_read_ends_at_shutdown_after_the_bytes_already_sent() {
        let (tx, shutdown) = Shutdown::channel();
        let (mut client, server) = tokio::io::duplex(1024);
        let mut conn = Conn::plain(server, local()).end_reads_on(shutdown);
        client.write_all(b"pipelined").await.unwrap();
        tx.send(true).unwrap();
        let mut buf = [0u8; 64];
        let n = conn.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"pipelined");
        assert!(!conn.interrupted());
        assert_eq!(conn.read(&mut buf).await.unwrap(), 0);
        assert!(conn.interrupted());
        // Writing still works: the session says goodbye.
        conn.write_all(b"* BYE\r\n").await.unwrap();
        let n = client.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"* BYE\r\n");
    }

    #[tokio::test]
    async fn without_the_shutdown_signal_reads_are_untouched() {
        let (tx, shutdown) = Shutdown::channel();
        let (mut client, server) = tokio::io::duplex(1024);
        let mut conn = Conn::plain(server, local());
        let _keep = shutdown;
        tx.send(true).unwrap();
        client.write_all(b"x").await.unwrap();
        drop(client);
        let mut all = Vec::new();
        conn.read_to_end(&mut all).await.unwrap();
        assert_eq!(all, b"x");
        assert!(!conn.interrupted() && !conn.is_tls());
    }

    #[tokio::test(start_paused = true)]
    async fn a_starttls_handshake_that_never_comes_times_out() {
        let (_client, server) = tokio::io::duplex(1024);
        let mut conn = Conn::plain(server, local()).with_handshake_timeout(Duration::from_secs(5));
        let key = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let tls = crate::tls::server_config(
            key.cert.pem().as_bytes(),
            key.signing_key.serialize_pem().as_bytes(),
        )
        .unwrap();
        let err = conn.start_tls(tls).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(!conn.is_tls());
    }
}
