//! The accept loop over real loopback sockets: limits per client and in all, implicit TLS
//! that never starts, accept errors, blocked writes, the drain at shutdown.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pec_net::{Accept, Accepted, ListenerLimits, Service, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Connects to `addr` from the loopback address `source` (127.0.0.2 is a second client).
async fn connect_from(source: [u8; 4], addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::from((IpAddr::from(source), 0)))
        .unwrap();
    socket.connect(addr).await.unwrap()
}

/// Everything the server sends until it closes (a 10 s guard against a hang).
async fn read_all(stream: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut all));
    match read.await.expect("the server neither answered nor closed") {
        Ok(_) => all,
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => all,
        Err(e) => panic!("read failed: {e}"),
    }
}

/// The first line the server sends.
async fn greeting(stream: &mut TcpStream) -> String {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\n") {
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut byte));
        match read.await.expect("no greeting").unwrap() {
            0 => break,
            _ => line.push(byte[0]),
        }
    }
    String::from_utf8_lossy(&line).into_owned()
}

/// A session that greets, then waits for the client to leave or the shutdown, saying
/// `bye` at shutdown.
async fn greeter(mut accepted: Accepted) {
    let _ = accepted.conn.write_all(b"hello\r\n").await;
    let mut buf = [0u8; 64];
    tokio::select! {
        () = accepted.shutdown.signalled() => {
            let _ = accepted.conn.write_all(b"bye\r\n").await;
        }
        _ = accepted.conn.read(&mut buf) => {}
    }
}

struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<pec_net::Result<()>>,
}

impl Server {
    async fn start(service: Service, limits: ListenerLimits) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, service, limits, greeter, async move {
            let _ = stopped.await;
        }));
        Server {
            addr,
            stop: Some(stop),
            task,
        }
    }

    async fn shutdown(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap().unwrap();
    }
}

fn plain(busy: &[u8]) -> Service {
    Service {
        name: "test",
        tls: None,
        busy: busy.to_vec(),
        observer: None,
    }
}

#[tokio::test]
async fn one_client_cannot_take_more_than_its_share_and_others_are_served() {
    let limits = ListenerLimits {
        max_connections: 3,
        max_connections_per_ip: 2,
        ..ListenerLimits::default()
    };
    let server = Server::start(plain(b"busy\r\n"), limits).await;
    let mut first = connect_from([127, 0, 0, 1], server.addr).await;
    let mut second = connect_from([127, 0, 0, 1], server.addr).await;
    assert_eq!(greeting(&mut first).await, "hello\r\n");
    assert_eq!(greeting(&mut second).await, "hello\r\n");
    let mut third = connect_from([127, 0, 0, 1], server.addr).await;
    assert_eq!(read_all(&mut third).await, b"busy\r\n");

    let mut other = connect_from([127, 0, 0, 2], server.addr).await;
    assert_eq!(greeting(&mut other).await, "hello\r\n");
    // The listener is full now (3): a third client is refused too.
    let mut fourth = connect_from([127, 0, 0, 3], server.addr).await;
    assert_eq!(read_all(&mut fourth).await, b"busy\r\n");
    server.shutdown().await;
}

#[tokio::test]
async fn an_implicit_tls_connection_that_never_starts_tls_is_closed_after_the_handshake_limit() {
    let key = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let tls = pec_net::tls::server_config(
        key.cert.pem().as_bytes(),
        key.signing_key.serialize_pem().as_bytes(),
    )
    .unwrap();
    let limits = ListenerLimits {
        max_connections_per_ip: 1,
        tls_handshake: Duration::from_millis(200),
        ..ListenerLimits::default()
    };
    let service = Service {
        name: "tls",
        tls: Some(tls),
        busy: b"never sent over TLS listeners\r\n".to_vec(),
        observer: None,
    };
    let server = Server::start(service, limits).await;
    let mut idle = connect_from([127, 0, 0, 1], server.addr).await;
    // While it holds the client's only slot, a second connection is closed unanswered.
    let mut refused = connect_from([127, 0, 0, 1], server.addr).await;
    assert_eq!(read_all(&mut refused).await, b"");
    assert_eq!(read_all(&mut idle).await, b"", "closed without a byte");
    server.shutdown().await;
}

/// A listener that fails with `EMFILE` a number of times before accepting for real,
/// noting when each attempt was made.
struct Exhausted {
    real: TcpListener,
    failures_left: usize,
    attempts: Arc<Mutex<Vec<Instant>>>,
}

impl Accept for Exhausted {
    async fn accept(&mut self) -> io::Result<(TcpStream, SocketAddr)> {
        self.attempts.lock().unwrap().push(Instant::now());
        if self.failures_left > 0 {
            self.failures_left -= 1;
            return Err(io::Error::from_raw_os_error(24)); // EMFILE
        }
        self.real.accept().await
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.real.local_addr()
    }
}

#[tokio::test(start_paused = true)]
async fn accept_errors_back_off_and_the_listener_serves_again() {
    let real = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = real.local_addr().unwrap();
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let incoming = Exhausted {
        real,
        failures_left: 10,
        attempts: attempts.clone(),
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(
        incoming,
        plain(b""),
        ListenerLimits::default(),
        |mut accepted: Accepted| async move {
            let _ = accepted.conn.write_all(b"served\r\n").await;
        },
        async move {
            let _ = stopped.await;
        },
    ));
    let mut client = TcpStream::connect(addr).await.unwrap();
    assert_eq!(read_all(&mut client).await, b"served\r\n");
    let attempts = attempts.lock().unwrap().clone();
    // Ten failures, then the accept that worked (later calls are the loop waiting again).
    let gaps: Vec<u128> = attempts[..11]
        .windows(2)
        .map(|w| (w[1] - w[0]).as_millis())
        .collect();
    assert_eq!(
        gaps,
        [10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000],
        "the wait doubles up to 1 s"
    );
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_client_that_never_reads_loses_its_session() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (ended, mut ends) = mpsc::unbounded_channel();
    let limits = ListenerLimits {
        write_timeout: Duration::from_millis(200),
        ..ListenerLimits::default()
    };
    let session = move |mut accepted: Accepted| {
        let ended = ended.clone();
        async move {
            let chunk = vec![b'x'; 64 * 1024];
            let error = loop {
                if let Err(e) = accepted.conn.write_all(&chunk).await {
                    break e.kind();
                }
            };
            let _ = ended.send(error);
        }
    };
    let task = tokio::spawn(serve(
        listener,
        plain(b""),
        limits,
        session,
        std::future::pending(),
    ));
    let _client = TcpStream::connect(addr).await.unwrap();
    assert_eq!(ends.recv().await, Some(io::ErrorKind::TimedOut));
    task.abort();
}

#[tokio::test]
async fn shutdown_refuses_new_connections_tells_sessions_and_cuts_the_deaf_ones() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = ListenerLimits {
        shutdown_grace: Duration::from_millis(300),
        ..ListenerLimits::default()
    };
    let (stop, stopped) = oneshot::channel::<()>();
    // The first session listens for the shutdown, the second ignores it (a session stuck
    // in a long command).
    let accepted = Arc::new(AtomicUsize::new(0));
    let session = move |mut accepted_conn: Accepted| {
        let n = accepted.fetch_add(1, Ordering::SeqCst);
        async move {
            if n == 0 {
                greeter(accepted_conn).await;
            } else {
                let _ = accepted_conn.conn.write_all(b"hello\r\n").await;
                std::future::pending::<()>().await;
            }
        }
    };
    let task = tokio::spawn(serve(listener, plain(b""), limits, session, async move {
        let _ = stopped.await;
    }));
    let mut polite = TcpStream::connect(addr).await.unwrap();
    assert_eq!(greeting(&mut polite).await, "hello\r\n");
    let mut deaf = TcpStream::connect(addr).await.unwrap();
    assert_eq!(greeting(&mut deaf).await, "hello\r\n");
    stop.send(()).unwrap();
    assert_eq!(read_all(&mut polite).await, b"bye\r\n");
    let refused = TcpStream::connect(addr).await;
    assert!(refused.is_err(), "no new connection after shutdown");
    assert_eq!(read_all(&mut deaf).await, b"", "cut after the grace period");
    task.await.unwrap().unwrap();
}

/// Counts what the listener tells it.
#[derive(Debug, Default)]
struct Counting {
    opened: AtomicUsize,
    closed: AtomicUsize,
}

impl pec_net::SessionObserver for Counting {
    fn opened(&self, service: &'static str) {
        assert_eq!(service, "test");
        self.opened.fetch_add(1, Ordering::SeqCst);
    }

    fn closed(&self, service: &'static str) {
        assert_eq!(service, "test");
        self.closed.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn the_observer_sees_sessions_open_and_close_but_not_refused_connections() {
    let counting = Arc::new(Counting::default());
    let mut service = plain(b"busy\r\n");
    service.observer = Some(counting.clone());
    let limits = ListenerLimits {
        max_connections_per_ip: 1,
        ..ListenerLimits::default()
    };
    let server = Server::start(service, limits).await;
    let mut first = connect_from([127, 0, 0, 1], server.addr).await;
    assert_eq!(greeting(&mut first).await, "hello\r\n");
    let mut refused = connect_from([127, 0, 0, 1], server.addr).await;
    assert_eq!(read_all(&mut refused).await, b"busy\r\n");
    assert_eq!(counting.opened.load(Ordering::SeqCst), 1);
    assert_eq!(counting.closed.load(Ordering::SeqCst), 0);
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(30);
    while counting.closed.load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(counting.closed.load(Ordering::SeqCst), 1);
    server.shutdown().await;
}
