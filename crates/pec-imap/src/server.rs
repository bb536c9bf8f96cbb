//! What the IMAP and POP3 servers share: their configuration, how they run on `pec-net`'s
//! accept loop, the login check and the bridge from async sessions to the blocking store.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use pec_net::{Accepted, Authenticator, ListenerLimits, Service};
use pec_store::Store;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

use crate::error::{Error, Result};
use crate::notify::Notifier;

/// The connection a session talks over (plain or TLS, upgradable once).
pub(crate) use pec_net::Conn;

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
    /// Before login, a connection silent this long is closed: RFC 9051 lets the
    /// unauthenticated state's autologout be shorter, so an idle socket that never logs
    /// in gives its connection slot back within a minute rather than thirty.
    pub login_timeout: Duration,
    /// Connection limits of each listener (per client and in all), the TLS handshake
    /// limit (implicit and STARTTLS/STLS), blocked writes, shutdown grace.
    pub connections: ListenerLimits,
    /// The password check, shared with SMTP submission in a whole server: its bounded
    /// argon2 pool and its per-client penalty after failures.
    pub auth: Arc<Authenticator>,
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
            login_timeout: Duration::from_secs(60),
            connections: ListenerLimits::default(),
            auth: Arc::default(),
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
    /// Told about each session (the server's metrics); `None`: nobody.
    pub observer: Option<Arc<dyn pec_net::SessionObserver>>,
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

    /// The account's canonical address if `password` is right. An unknown user is
    /// checked all the same (against a dummy hash), and `peer`'s earlier failures delay
    /// the check (see [`Authenticator`]).
    pub(crate) async fn check_login(
        &self,
        peer: IpAddr,
        user: &str,
        password: &str,
    ) -> Result<Option<String>> {
        let user = user.to_string();
        let account = self.store(move |s| s.find_account(&user)).await?;
        let stored = account.as_ref().map(|a| a.password_hash.as_str());
        let matched = self.limits.auth.verify(peer, password, stored).await;
        Ok(account.filter(|_| matched).map(|a| a.address))
    }
}

/// Which protocol an accept loop speaks.
#[derive(Clone, Copy)]
enum Protocol {
    Imap,
    Pop3,
}

impl Protocol {
    /// The listener's description; `tls` for implicit TLS.
    fn service(
        self,
        tls: Option<Arc<rustls::ServerConfig>>,
        observer: Option<Arc<dyn pec_net::SessionObserver>>,
    ) -> Service {
        let implicit = tls.is_some();
        let (name, busy): (_, &[u8]) = match self {
            Protocol::Imap => (
                if implicit { "imaps" } else { "imap" },
                b"* BYE Too many connections, try again later\r\n",
            ),
            Protocol::Pop3 => (
                if implicit { "pop3s" } else { "pop3" },
                b"-ERR [SYS/TEMP] Too many connections, try again later\r\n",
            ),
        };
        Service {
            name,
            tls,
            busy: busy.to_vec(),
            observer,
        }
    }
}

/// Accepts connections until `shutdown` completes, running each session on
/// its own task; with `implicit_tls` the TLS handshake comes first (ports
/// 993/995), otherwise the client may upgrade with STARTTLS/STLS (143/110).
/// At shutdown, sessions end at their next wait for the client (IMAP says
/// `* BYE`).
async fn serve(
    protocol: Protocol,
    listener: TcpListener,
    config: Arc<Config>,
    implicit_tls: bool,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let tls = match (implicit_tls, &config.tls) {
        (false, _) => None,
        (true, Some(tls)) => Some(tls.clone()),
        (true, None) => {
            return Err(Error::Protocol(
                "implicit TLS needs a TLS configuration".into(),
            ));
        }
    };
    let service = protocol.service(tls, config.observer.clone());
    let limits = config.limits.connections.clone();
    let session = move |accepted: Accepted| {
        let config = config.clone();
        async move {
            let peer = accepted.peer;
            let conn = accepted.conn.end_reads_on(accepted.shutdown);
            match run(protocol, conn, config).await {
                Ok(()) => {}
                Err(e) if e.is_disconnect() => {
                    tracing::debug!(%peer, error = %e, "client disconnected");
                }
                Err(e) => tracing::info!(%peer, error = %e, "session ended with an error"),
            }
        }
    };
    pec_net::serve(listener, service, limits, session, shutdown).await?;
    Ok(())
}

async fn run<S: AsyncRead + AsyncWrite + Unpin + Send>(
    protocol: Protocol,
    conn: Conn<S>,
    config: Arc<Config>,
) -> Result<()> {
    let secure = conn.is_tls();
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
    let conn = in_memory(stream, &config);
    crate::imap::session(conn, secure, config).await
}

/// Runs one POP3 session over any byte stream; `secure` as for [`imap_session`].
pub async fn pop3_session<S>(stream: S, secure: bool, config: Arc<Config>) -> Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let conn = in_memory(stream, &config);
    crate::pop3::session(conn, secure, config).await
}

/// The connection of a session outside a listener: a local client (127.0.0.1 for the
/// password penalty), the configured handshake limit for STARTTLS.
fn in_memory<S>(stream: S, config: &Config) -> Conn<S> {
    Conn::plain(stream, SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .with_handshake_timeout(config.limits.connections.tls_handshake)
}
