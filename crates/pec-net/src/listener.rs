//! One accept loop for every protocol ([`serve`]).
//!
//! Each accepted connection needs a connection slot: over the listener's limit or
//! the client's, the protocol's "busy" line ([`Service::busy`]) is written without waiting
//! (plaintext listeners only) and the connection is closed, without a task. With a slot,
//! the connection gets `TCP_NODELAY`, writes that time out ([`WriteTimeout`]), the TLS
//! handshake within [`ListenerLimits::tls_handshake`] when the listener is implicit TLS,
//! and then the session. The slot is held from accept to the end of the session, so idle
//! sockets that never start TLS count against their client too.
//!
//! Accept errors are survived: running out of file descriptors or memory makes the loop
//! wait 10 ms, doubling up to 1 s while the errors go on (one log line per burst), instead
//! of spinning or stopping.
//!
//! At shutdown the listening socket is closed at once (new connections are refused), the
//! sessions are told through their [`Shutdown`], and those still running after
//! [`ListenerLimits::shutdown_grace`] are cut.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tracing::{debug, info, warn};

use crate::slots::Slots;
use crate::{Conn, Error, Result, Shutdown, WriteTimeout};

/// The connection limits and timeouts of a listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerLimits {
    /// Most simultaneous connections on the listener.
    pub max_connections: usize,
    /// Most simultaneous connections from one client ([`crate::peer::key`]).
    pub max_connections_per_ip: usize,
    /// Longest TLS handshake (implicit TLS here; STARTTLS in the sessions).
    pub tls_handshake: Duration,
    /// A write blocked this long by a client that does not read fails.
    pub write_timeout: Duration,
    /// After shutdown, how long running sessions may go on before being cut.
    pub shutdown_grace: Duration,
}

impl Default for ListenerLimits {
    /// As strict as Dovecot and Postfix out of the box: 100 connections per listener
    /// (their default process limit), 10 per client (Dovecot's per-user-and-IP limit),
    /// 10 s for a TLS handshake, 60 s for a blocked write, 30 s of grace at shutdown.
    fn default() -> Self {
        ListenerLimits {
            max_connections: 100,
            max_connections_per_ip: 10,
            tls_handshake: Duration::from_secs(10),
            write_timeout: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

impl ListenerLimits {
    fn check(&self) -> Result<()> {
        if self.max_connections == 0 || self.max_connections_per_ip == 0 {
            return Err(Error::Config(
                "connection limits must allow at least one connection".into(),
            ));
        }
        Ok(())
    }
}

/// Told when a listener's sessions open and close (the server's metrics), by listener
/// name.
pub trait SessionObserver: Send + Sync + std::fmt::Debug {
    /// A connection was accepted and given a slot.
    fn opened(&self, service: &'static str);
    /// That session ended.
    fn closed(&self, service: &'static str);
}

/// Tells the observer a session ended when dropped, however the session task ends.
struct Observed {
    observer: Arc<dyn SessionObserver>,
    service: &'static str,
}

impl Observed {
    fn new(observer: Option<&Arc<dyn SessionObserver>>, service: &'static str) -> Option<Self> {
        let observer = observer?.clone();
        observer.opened(service);
        Some(Observed { observer, service })
    }
}

impl Drop for Observed {
    fn drop(&mut self) {
        self.observer.closed(self.service);
    }
}

/// What a listener serves, as far as the accept loop cares.
#[derive(Clone)]
pub struct Service {
    /// The name used in logs (`imaps`, `submission`, ...).
    pub name: &'static str,
    /// With a configuration, every connection starts with a TLS handshake (ports 465, 993,
    /// 995, 443).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Written to a connection refused for lack of a slot, on plaintext listeners (SMTP
    /// `421 4.7.0 ...`, IMAP `* BYE ...`, POP3 `-ERR ...`); empty: just close.
    pub busy: Vec<u8>,
    /// Told about each session; `None`: nobody.
    pub observer: Option<Arc<dyn SessionObserver>>,
}

/// What a session gets from the listener.
pub struct Accepted {
    /// The connection, TLS already established on implicit-TLS listeners.
    pub conn: Conn<WriteTimeout<TcpStream>>,
    /// The client's address.
    pub peer: SocketAddr,
    /// Raised when the server shuts down.
    pub shutdown: Shutdown,
}

/// A source of connections: a [`TcpListener`], or in tests one that fails on purpose.
pub trait Accept: Send {
    /// The next connection and its peer.
    fn accept(&mut self) -> impl Future<Output = io::Result<(TcpStream, SocketAddr)>> + Send;

    /// The address listened on, for the logs.
    fn local_addr(&self) -> io::Result<SocketAddr>;
}

impl Accept for TcpListener {
    fn accept(&mut self) -> impl Future<Output = io::Result<(TcpStream, SocketAddr)>> + Send {
        TcpListener::accept(self)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        TcpListener::local_addr(self)
    }
}

/// Errors about one connection only (it went away before we took it): accept the next.
fn about_one_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

/// The wait after failed accepts: 10 ms, doubled each time up to 1 s, back to 10 ms after
/// a success. It also keeps the log to one line per burst of failures.
struct Backoff {
    next: Duration,
    failures: u64,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(10);
    const MAX: Duration = Duration::from_secs(1);

    fn new() -> Self {
        Backoff {
            next: Self::FIRST,
            failures: 0,
        }
    }

    /// Records a failure; returns how long to wait before accepting again.
    fn failed(&mut self, service: &str, e: &io::Error) -> Duration {
        if self.failures == 0 {
            warn!(service, error = %e, "accept failed; backing off until it works again");
        }
        self.failures += 1;
        let wait = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        wait
    }

    fn succeeded(&mut self, service: &str) {
        if self.failures > 0 {
            info!(service, failures = self.failures, "accepting again");
        }
        *self = Backoff::new();
    }
}

/// Accepts connections from `incoming` and runs `session` for each, within `limits`,
/// until `shutdown` completes; then drains as described in the module documentation.
/// Fails only on limits that cannot work.
pub async fn serve<A, F, Fut>(
    mut incoming: A,
    service: Service,
    limits: ListenerLimits,
    session: F,
    shutdown: impl Future<Output = ()>,
) -> Result<()>
where
    A: Accept,
    F: Fn(Accepted) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    limits.check()?;
    let session = Arc::new(session);
    let name = service.name;
    let acceptor = service.tls.clone().map(TlsAcceptor::from);
    let slots = Slots::new(limits.max_connections, limits.max_connections_per_ip);
    let (stop, stopping) = Shutdown::channel();
    let mut sessions = JoinSet::new();
    let mut backoff = Backoff::new();
    tokio::pin!(shutdown);
    match incoming.local_addr() {
        Ok(addr) => info!(service = name, %addr, "listener started"),
        Err(_) => info!(service = name, "listener started"),
    }

    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            Some(ended) = sessions.join_next(), if !sessions.is_empty() => {
                if let Err(e) = ended
                    && e.is_panic()
                {
                    warn!(service = name, "a session panicked");
                }
                continue;
            }
            accepted = incoming.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => {
                backoff.succeeded(name);
                accepted
            }
            Err(e) if about_one_connection(&e) => continue,
            Err(e) => {
                let wait = backoff.failed(name, &e);
                tokio::select! {
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(wait) => continue,
                }
            }
        };
        let slot = match slots.acquire(peer.ip()) {
            Ok(slot) => slot,
            Err(why) => {
                debug!(service = name, %peer, ?why, "connection refused: too many connections");
                if acceptor.is_none() && !service.busy.is_empty() {
                    // A fresh socket's send buffer is empty: this never waits.
                    let _ = tcp.try_write(&service.busy);
                }
                continue;
            }
        };
        if let Err(e) = tcp.set_nodelay(true) {
            debug!(service = name, %peer, error = %e, "cannot set TCP_NODELAY");
        }
        let socket = WriteTimeout::new(tcp, limits.write_timeout);
        let (acceptor, session, shutdown) =
            (acceptor.clone(), Arc::clone(&session), stopping.clone());
        let handshake = limits.tls_handshake;
        let observed = Observed::new(service.observer.as_ref(), name);
        sessions.spawn(async move {
            let _slot = slot;
            let _observed = observed;
            let conn = match acceptor {
                None => Conn::plain(socket, peer),
                Some(acceptor) => {
                    match implicit_tls(socket, peer, acceptor, handshake, &shutdown, name).await {
                        Some(tls) => Conn::tls(tls, peer),
                        None => return,
                    }
                }
            };
            let conn = conn.with_handshake_timeout(handshake);
            session(Accepted {
                conn,
                peer,
                shutdown,
            })
            .await;
        });
    }

    drop(incoming);
    info!(
        service = name,
        sessions = sessions.len(),
        "listener stopping"
    );
    let _ = stop.send(true);
    let grace = tokio::time::timeout(limits.shutdown_grace, async {
        while sessions.join_next().await.is_some() {}
    });
    if grace.await.is_err() {
        warn!(
            service = name,
            sessions = sessions.len(),
            "shutdown grace period over, cutting sessions"
        );
        sessions.shutdown().await;
    }
    Ok(())
}

/// The TLS handshake of an implicit-TLS connection, within `limit` and given up at
/// shutdown; `None` when it did not complete.
async fn implicit_tls(
    socket: WriteTimeout<TcpStream>,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    limit: Duration,
    shutdown: &Shutdown,
    service: &'static str,
) -> Option<TlsStream<WriteTimeout<TcpStream>>> {
    let handshake = tokio::time::timeout(limit, acceptor.accept(socket));
    let outcome = tokio::select! {
        () = shutdown.signalled() => return None,
        outcome = handshake => outcome,
    };
    match outcome {
        Ok(Ok(tls)) => Some(tls),
        Ok(Err(e)) => {
            debug!(service, %peer, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            debug!(service, %peer, "TLS handshake timed out");
            None
        }
    }
}
