//! What the IMAP and POP3 servers share: their configuration, the accept
//! loop, the connection that can turn into TLS mid-session (STARTTLS/STLS),
//! login checks and the bridge from async sessions to the blocking store.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use pec_store::Store;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::error::{Error, Result};
use crate::notify::Notifier;
use crate::password::verify_password;

/// Bounds a session keeps to, so one client cannot exhaust the server.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest literal (APPEND message) accepted after login, in bytes: the largest
    /// message, as for SMTP.
    pub max_literal: u32,
    /// Longest command line after login, literals aside (Dovecot's
    /// `imap_max_line_length` is 64 KiB too); a longer one ends the session.
    pub max_line: usize,
    /// Most bytes a command may hold before login, lines and literals together: an
    /// unauthenticated client costs no more than this.
    pub max_unauthenticated: usize,
    /// Most folders an account may create (LIST and STATUS of every folder stay cheap).
    pub max_folders: usize,
    /// Failed logins after which the connection is closed.
    pub max_auth_failures: u32,
    /// Pause after each failed login, to slow password guessing.
    pub auth_failure_delay: Duration,
    /// A connection silent this long is closed (IMAP autologout is 30 minutes).
    pub idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_literal: 40 * 1024 * 1024,
            max_line: 64 * 1024,
            max_unauthenticated: 8 * 1024,
            max_folders: 1000,
            max_auth_failures: 3,
            auth_failure_delay: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(30 * 60),
        }
    }
}

/// Everything a session needs: the store, the change hub, TLS and limits.
/// One instance is shared (in an `Arc`) by all sessions of a server.
pub struct Config {
    /// Where accounts and mail live.
    pub store: Arc<dyn Store>,
    /// Wakes IDLE sessions when a folder changes.
    pub notifier: Notifier,
    /// Server certificate for implicit TLS and STARTTLS/STLS; without it
    /// plaintext sessions can never log in.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Resource bounds.
    pub limits: Limits,
}

impl Config {
    /// Runs a store call on the blocking pool (the store fsyncs).
    pub(crate) async fn store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Store) -> pec_store::Result<T> + Send + 'static,
    ) -> Result<T> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(store.as_ref()))
            .await
            .map_err(|e| Error::Task(e.to_string()))?
            .map_err(Error::Store)
    }

    /// The account's canonical address if `password` is right; argon2 runs
    /// on the blocking pool.
    pub(crate) async fn check_login(&self, user: &str, password: &str) -> Result<Option<String>> {
        let user = user.to_string();
        let password = password.to_string();
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || match store.account(&user) {
            Ok(acc) if verify_password(&password, &acc.password_hash) => Ok(Some(acc.address)),
            Ok(_) | Err(pec_store::Error::NoSuchAccount(_) | pec_store::Error::InvalidName(_)) => {
                Ok(None)
            }
            Err(e) => Err(Error::Store(e)),
        })
        .await
        .map_err(|e| Error::Task(e.to_string()))?
    }
}

/// Splits a SASL PLAIN message (`authzid NUL authcid NUL password`) into
/// user and password; an authzid other than the user is refused.
pub(crate) fn sasl_plain(data: &[u8]) -> Option<(String, String)> {
    let mut it = data.split(|&b| b == 0);
    let (authz, authc, pass) = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() || authc.is_empty() {
        return None;
    }
    if !authz.is_empty() && !authz.eq_ignore_ascii_case(authc) {
        return None;
    }
    Some((
        String::from_utf8(authc.to_vec()).ok()?,
        String::from_utf8(pass.to_vec()).ok()?,
    ))
}

/// A client connection that starts plain or TLS and can be upgraded once.
pub(crate) enum Conn<S> {
    Plain(S),
    Tls(Box<TlsStream<S>>),
    /// Only during an upgrade, or after a failed one.
    Gone,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    /// Performs the TLS handshake on a plain connection (STARTTLS/STLS).
    pub(crate) async fn start_tls(&mut self, tls: Arc<rustls::ServerConfig>) -> io::Result<()> {
        match std::mem::replace(self, Conn::Gone) {
            Conn::Plain(s) => {
                *self = Conn::Tls(Box::new(TlsAcceptor::from(tls).accept(s).await?));
                Ok(())
            }
            other => {
                *self = other;
                Err(io::Error::other("connection is already secure"))
            }
        }
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
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Gone => Poll::Ready(Err(gone())),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Conn<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Gone => Poll::Ready(Err(gone())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s).poll_flush(cx),
            Conn::Gone => Poll::Ready(Err(gone())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Gone => Poll::Ready(Ok(())),
        }
    }
}

/// Which protocol an accept loop speaks.
#[derive(Clone, Copy)]
enum Protocol {
    Imap,
    Pop3,
}

/// Accepts connections until `shutdown` completes, running each session on
/// its own task; with `implicit_tls` the TLS handshake comes first (ports
/// 993/995), otherwise the client may upgrade with STARTTLS/STLS (143/110).
async fn serve(
    protocol: Protocol,
    listener: TcpListener,
    config: Arc<Config>,
    implicit_tls: bool,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let acceptor = match (&config.tls, implicit_tls) {
        (Some(tls), true) => Some(TlsAcceptor::from(tls.clone())),
        (None, true) => {
            return Err(Error::Protocol(
                "implicit TLS needs a TLS configuration".into(),
            ));
        }
        _ => None,
    };
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let config = config.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let result = match acceptor {
                Some(acceptor) => match acceptor.accept(tcp).await {
                    Ok(tls) => run(protocol, Conn::Tls(Box::new(tls)), config).await,
                    Err(e) => Err(Error::Io(e)),
                },
                None => run(protocol, Conn::Plain(tcp), config).await,
            };
            if let Err(e) = result {
                tracing::info!(%peer, error = %e, "session ended with an error");
            }
        });
    }
}

async fn run<S: AsyncRead + AsyncWrite + Unpin + Send>(
    protocol: Protocol,
    conn: Conn<S>,
    config: Arc<Config>,
) -> Result<()> {
    let secure = matches!(conn, Conn::Tls(_));
    match protocol {
        Protocol::Imap => crate::imap::session(conn, secure, config).await,
        Protocol::Pop3 => crate::pop3::session(conn, secure, config).await,
    }
}

/// Serves IMAP on `listener` until `shutdown` completes (see [`Config`]);
/// `implicit_tls` is for port 993, otherwise STARTTLS is offered.
pub async fn serve_imap(
    listener: TcpListener,
    config: Arc<Config>,
    implicit_tls: bool,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    serve(Protocol::Imap, listener, config, implicit_tls, shutdown).await
}

/// Serves POP3 on `listener` until `shutdown` completes (see [`Config`]);
/// `implicit_tls` is for port 995, otherwise STLS is offered.
pub async fn serve_pop3(
    listener: TcpListener,
    config: Arc<Config>,
    implicit_tls: bool,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    serve(Protocol::Pop3, listener, config, implicit_tls, shutdown).await
}

/// Runs one IMAP session over any byte stream (a socket, an in-memory pipe
/// for tests and fuzzing). `secure` says whether the stream is already
/// private (TLS or a local pipe): only then are logins accepted, and
/// STARTTLS is offered when it is not and [`Config::tls`] is set.
pub async fn imap_session<S>(stream: S, secure: bool, config: Arc<Config>) -> Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    crate::imap::session(Conn::Plain(stream), secure, config).await
}

/// Runs one POP3 session over any byte stream; `secure` as for [`imap_session`].
pub async fn pop3_session<S>(stream: S, secure: bool, config: Arc<Config>) -> Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    crate::pop3::session(Conn::Plain(stream), secure, config).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sasl_plain_parsing() {
        assert_eq!(
            sasl_plain(b"\0anna@pec.it\0pw"),
            Some(("anna@pec.it".into(), "pw".into()))
        );
        assert_eq!(
            sasl_plain(b"anna@pec.it\0anna@pec.it\0pw"),
            Some(("anna@pec.it".into(), "pw".into()))
        );
        assert_eq!(sasl_plain(b"mario@pec.it\0anna@pec.it\0pw"), None);
        assert_eq!(sasl_plain(b"\0\0pw"), None);
        assert_eq!(sasl_plain(b"only"), None);
    }
}
