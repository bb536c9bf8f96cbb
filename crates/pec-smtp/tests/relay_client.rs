//! The relay client against our own server.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{pki, start};
use pec_smtp::{
    ClientTls, DeliveryOutcome, Error, Mode, Outgoing, Pool, PoolLimits, RecipientStatus, Relay,
    client_tls_config,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

fn relay(tls: ClientTls) -> Relay {
    Relay {
        helo_name: "relay.test".into(),
        tls,
        timeout: Duration::from_secs(10),
        pool: Pool::default(),
    }
}

const MESSAGE: &[u8] =
    b"From: a@other.test\r\nTo: bob@example.it\r\n\r\n.starts with a dot\r\n\xe8 8-bit\r\n.\r\n";

#[tokio::test]
async fn relay_delivers_over_required_starttls() {
    let server = start(Mode::Mx, |_| {}).await;
    let tls = client_tls_config(server.pki.ca_pem.as_bytes()).unwrap();
    let target = format!("localhost:{}", server.addr.port());
    let outcome = relay(ClientTls::RequireStartTls(tls))
        .deliver(
            &target,
            "a@other.test",
            &["bob@example.it".into(), "carol@example.it".into()],
            MESSAGE,
        )
        .await
        .unwrap();
    assert!(
        outcome
            .recipients
            .iter()
            .all(|r| r.status == RecipientStatus::Accepted)
    );
    assert_eq!(outcome.data_reply.unwrap().code, 250);
    let received = server.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].message, MESSAGE, "dot-stuffing must round-trip");
    assert!(received[0].session.tls);
    assert_eq!(received[0].session.helo, "relay.test");
    assert_eq!(
        received[0].envelope.rcpt_to,
        vec!["bob@example.it", "carol@example.it"]
    );
    server.shutdown().await;
}

#[tokio::test]
async fn relay_reports_each_recipient() {
    let server = start(Mode::Mx, |_| {}).await;
    let tls = client_tls_config(server.pki.ca_pem.as_bytes()).unwrap();
    let outcome = relay(ClientTls::Opportunistic(tls))
        .deliver(
            &server.addr.to_string(),
            "a@other.test",
            &["bob@example.it".into(), "refused@example.it".into()],
            b"Subject: x\r\n\r\nbody\r\n",
        )
        .await
        .unwrap();
    assert_eq!(outcome.recipients[0].status, RecipientStatus::Accepted);
    match &outcome.recipients[1].status {
        RecipientStatus::PermanentFailure(reply) => {
            assert_eq!(reply.code, 550);
            assert_eq!(reply.enhanced.as_deref(), Some("5.1.1"));
        }
        other => panic!("expected a permanent failure, got {other:?}"),
    }
    assert_eq!(
        server.received()[0].envelope.rcpt_to,
        vec!["bob@example.it"]
    );

    // Nobody accepted: no DATA at all.
    let outcome = relay(ClientTls::None)
        .deliver(
            &server.addr.to_string(),
            "a@other.test",
            &["refused@example.it".into()],
            b"Subject: x\r\n\r\nbody\r\n",
        )
        .await
        .unwrap();
    assert!(outcome.data_reply.is_none());
    assert_eq!(server.received().len(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn relay_errors_are_classified() {
    // Connection refused: temporary.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = listener.local_addr().unwrap().to_string();
    drop(listener);
    let err = relay(ClientTls::None)
        .deliver(&closed, "a@x.test", &["b@y.test".into()], b"x\r\n")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Io(_)), "{err}");
    assert!(err.is_temporary());

    // An address that would inject a command: permanent, nothing connects.
    let err = relay(ClientTls::None)
        .deliver(&closed, "a@x.test", &["b@y.test>\r\nRSET".into()], b"x\r\n")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidAddress(_)), "{err}");
    assert!(!err.is_temporary());

    // TLS required but the server has none: temporary.
    let server = start(Mode::Mx, |c| c.tls = None).await;
    let tls = client_tls_config(server.pki.ca_pem.as_bytes()).unwrap();
    let err = relay(ClientTls::RequireStartTls(tls))
        .deliver(
            &server.addr.to_string(),
            "a@x.test",
            &["b@y.test".into()],
            b"x\r\n",
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::TlsUnavailable), "{err}");
    assert!(err.is_temporary());
    assert!(server.received().is_empty());
    server.shutdown().await;

    // A certificate from a CA we do not trust: the handshake fails, nothing is sent.
    let server = start(Mode::Mx, |_| {}).await;
    let other_ca = client_tls_config(pki().ca_pem.as_bytes()).unwrap();
    let err = relay(ClientTls::RequireStartTls(other_ca))
        .deliver(
            &server.addr.to_string(),
            "a@x.test",
            &["b@y.test".into()],
            b"x\r\n",
        )
        .await
        .unwrap_err();
    assert!(err.is_temporary(), "{err}");
    assert!(server.received().is_empty());
    server.shutdown().await;

    // 5xx to MAIL FROM: permanent (submission refuses MAIL before AUTH).
    let server = start(
        Mode::Submission {
            implicit_tls: false,
        },
        |_| {},
    )
    .await;
    let tls = client_tls_config(server.pki.ca_pem.as_bytes()).unwrap();
    let err = relay(ClientTls::RequireStartTls(tls))
        .deliver(
            &server.addr.to_string(),
            "a@x.test",
            &["b@y.test".into()],
            b"x\r\n",
        )
        .await
        .unwrap_err();
    match &err {
        Error::Rejected { stage, reply } => {
            assert_eq!(*stage, "MAIL FROM");
            assert_eq!(reply.code, 530);
        }
        other => panic!("unexpected {other}"),
    }
    assert!(!err.is_temporary());
    server.shutdown().await;

    // A host that greets with 554 refuses service, not this message: temporary, so the
    // domain's next host is tried.
    let refusing = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = refusing.local_addr().unwrap().to_string();
    let host = tokio::spawn(async move {
        let (mut conn, _) = refusing.accept().await.unwrap();
        conn.write_all(b"554 5.7.1 no service here\r\n")
            .await
            .unwrap();
        let mut rest = Vec::new();
        let _ = conn.read_to_end(&mut rest).await;
    });
    let err = relay(ClientTls::None)
        .deliver(&addr, "a@x.test", &["b@y.test".into()], b"x\r\n")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Rejected { stage: "greeting", reply } if reply.code == 554),
        "{err}"
    );
    assert!(err.is_temporary());
    host.await.unwrap();
}

/// A TCP relay in front of a test server that counts the connections it accepted and
/// those still open, and can cut them all (the peer closing a session).
struct Proxy {
    addr: std::net::SocketAddr,
    accepted: Arc<AtomicUsize>,
    open: Arc<AtomicUsize>,
    cut: tokio::sync::broadcast::Sender<()>,
}

async fn proxy(target: std::net::SocketAddr) -> Proxy {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let open = Arc::new(AtomicUsize::new(0));
    let (cut, _) = tokio::sync::broadcast::channel(4);
    let (a, o, c) = (accepted.clone(), open.clone(), cut.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut inbound, _)) = listener.accept().await else {
                return;
            };
            a.fetch_add(1, Ordering::SeqCst);
            o.fetch_add(1, Ordering::SeqCst);
            let (o, mut cut) = (o.clone(), c.subscribe());
            tokio::spawn(async move {
                if let Ok(mut outbound) = TcpStream::connect(target).await {
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.recv() => {}
                    }
                }
                o.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    Proxy {
        addr,
        accepted,
        open,
        cut,
    }
}

/// Polls `done` until it holds, failing after a generous deadline.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn pooled(tls: ClientTls, limits: PoolLimits) -> Relay {
    Relay {
        pool: Pool::new(limits),
        ..relay(tls)
    }
}

async fn send(relay: &Relay, proxy: &Proxy, n: usize) -> DeliveryOutcome {
    send_to(relay, proxy.addr, n).await
}

async fn send_to(relay: &Relay, addr: std::net::SocketAddr, n: usize) -> DeliveryOutcome {
    relay
        .deliver_to(
            &addr.to_string(),
            "localhost",
            "a@other.test",
            &[format!("rcpt{n}@example.it")],
            format!("Subject: {n}\r\n\r\nbody {n}\r\n").as_bytes(),
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn many_messages_share_few_connections() {
    let server = start(Mode::Mx, |_| {}).await;
    let proxy = proxy(server.addr).await;
    let tls = client_tls_config(server.pki.ca_pem.as_bytes()).unwrap();
    let relay = pooled(
        ClientTls::RequireStartTls(tls),
        PoolLimits {
            per_destination: 3,
            ..PoolLimits::default()
        },
    );
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..24 {
        let relay = relay.clone();
        let addr = proxy.addr;
        tasks.spawn(async move { send_to(&relay, addr, n).await });
    }
    while let Some(outcome) = tasks.join_next().await {
        assert_eq!(outcome.unwrap().data_reply.unwrap().code, 250);
    }
    for n in 24..30 {
        send(&relay, &proxy, n).await;
    }
    let received = server.received();
    assert_eq!(received.len(), 30);
    assert!(received.iter().all(|r| r.session.tls));
    let accepted = proxy.accepted.load(Ordering::SeqCst);
    assert!(
        (1..=3).contains(&accepted),
        "30 messages used {accepted} connections"
    );
    assert!(relay.pool.idle_connections() <= 3);
    server.shutdown().await;
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let server = start(Mode::Mx, |_| {}).await;
    let proxy = proxy(server.addr).await;
    let relay = pooled(
        ClientTls::None,
        PoolLimits {
            idle: Duration::from_millis(200),
            ..PoolLimits::default()
        },
    );
    send(&relay, &proxy, 1).await;
    assert_eq!(relay.pool.idle_connections(), 1);
    eventually("the idle connection is closed", || {
        proxy.open.load(Ordering::SeqCst) == 0 && relay.pool.idle_connections() == 0
    })
    .await;
    // The next message opens a new one.
    send(&relay, &proxy, 2).await;
    assert_eq!(proxy.accepted.load(Ordering::SeqCst), 2);
    assert_eq!(server.received().len(), 2);
    server.shutdown().await;
}

#[tokio::test]
async fn a_session_the_peer_closed_is_replaced_and_nothing_doubles() {
    let server = start(Mode::Mx, |_| {}).await;
    let proxy = proxy(server.addr).await;
    let tls = client_tls_config(server.pki.ca_pem.as_bytes()).unwrap();
    let relay = pooled(ClientTls::RequireStartTls(tls), PoolLimits::default());
    send(&relay, &proxy, 1).await;
    send(&relay, &proxy, 2).await;
    assert_eq!(
        proxy.accepted.load(Ordering::SeqCst),
        1,
        "second message reuses"
    );
    proxy.cut.send(()).unwrap();
    eventually("the proxy cut the session", || {
        proxy.open.load(Ordering::SeqCst) == 0
    })
    .await;
    let outcome = send(&relay, &proxy, 3).await;
    assert_eq!(outcome.data_reply.unwrap().code, 250);
    assert_eq!(proxy.accepted.load(Ordering::SeqCst), 2);
    let subjects: Vec<String> = server
        .received()
        .iter()
        .map(|r| String::from_utf8_lossy(&r.message[..11]).into_owned())
        .collect();
    assert_eq!(subjects, ["Subject: 1\r", "Subject: 2\r", "Subject: 3\r"]);
    server.shutdown().await;
}

/// What a scripted server saw: each command line, and whether more client bytes were
/// already waiting when it had read that line (before it replied).
type Seen = Vec<(String, bool)>;

/// A plaintext SMTP server for one session that offers PIPELINING or not and, with
/// pipelining, answers MAIL only once RCPT and DATA arrived too (a client that waits for
/// each reply never gets one: the step timeout fails it). With `chunking` it also offers
/// CHUNKING, reads each BDAT chunk by its announced size and records it as
/// `<chunk TEXT>`, and answers a pipelined group once nothing more is waiting. With
/// `close_after_content` it drops the connection once the content arrived, before
/// replying.
async fn scripted(
    pipelining: bool,
    chunking: bool,
    close_after_content: bool,
) -> (String, JoinHandle<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let task = tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        let mut s = BufReader::new(socket);
        let mut seen = Seen::new();
        s.get_mut().write_all(b"220 scripted\r\n").await.unwrap();
        let mut pending: Vec<&[u8]> = Vec::new();
        loop {
            let mut line = String::new();
            if s.read_line(&mut line).await.unwrap_or(0) == 0 {
                return seen;
            }
            let command = line.trim_end().to_ascii_uppercase();
            seen.push((command.clone(), !s.buffer().is_empty()));
            let reply: &[u8] = if command.starts_with("EHLO") {
                match (pipelining, chunking) {
                    (true, true) => b"250-scripted\r\n250-PIPELINING\r\n250 CHUNKING\r\n",
                    (true, false) => b"250-scripted\r\n250 PIPELINING\r\n",
                    (false, true) => b"250-scripted\r\n250 CHUNKING\r\n",
                    (false, false) => b"250 scripted\r\n",
                }
            } else if let Some(size) = command.strip_prefix("BDAT ") {
                let size: usize = size.trim_end_matches(" LAST").parse().unwrap();
                let mut chunk = vec![0; size];
                s.read_exact(&mut chunk).await.unwrap();
                let text = String::from_utf8(chunk).unwrap();
                seen.push((format!("<chunk {text}>"), !s.buffer().is_empty()));
                if close_after_content {
                    return seen;
                }
                b"250 taken\r\n"
            } else if command == "DATA" {
                b"354 go on\r\n"
            } else if command == "QUIT" {
                b"221 bye\r\n"
            } else {
                b"250 ok\r\n"
            };
            pending.push(reply);
            let waits_for_more = pipelining
                && (command.starts_with("MAIL") || command.starts_with("RCPT"))
                && (!chunking || !s.buffer().is_empty());
            if !waits_for_more {
                let out: Vec<u8> = pending.concat();
                pending.clear();
                s.get_mut().write_all(&out).await.unwrap();
            }
            if command == "DATA" {
                loop {
                    let mut content = String::new();
                    if s.read_line(&mut content).await.unwrap_or(0) == 0 {
                        return seen;
                    }
                    if content == ".\r\n" {
                        break;
                    }
                }
                seen.push(("<content>".into(), !s.buffer().is_empty()));
                if close_after_content {
                    return seen;
                }
                s.get_mut().write_all(b"250 taken\r\n").await.unwrap();
            }
        }
    });
    (addr, task)
}

fn commands(seen: &Seen) -> Vec<&str> {
    seen.iter().map(|(c, _)| c.as_str()).collect()
}

#[tokio::test]
async fn commands_are_pipelined_only_when_offered() {
    let to = ["bob@example.it".to_string(), "carol@example.it".to_string()];
    for pipelining in [true, false] {
        let (addr, server) = scripted(pipelining, false, false).await;
        let relay = relay(ClientTls::None);
        for _ in 0..2 {
            let outcome = relay
                .deliver(&addr, "a@other.test", &to, b"Subject: x\r\n\r\nbody\r\n")
                .await
                .unwrap();
            assert_eq!(outcome.data_reply.unwrap().code, 250);
        }
        drop(relay);
        let seen = server.await.unwrap();
        let transaction = [
            "MAIL FROM:<A@OTHER.TEST>",
            "RCPT TO:<BOB@EXAMPLE.IT>",
            "RCPT TO:<CAROL@EXAMPLE.IT>",
            "DATA",
            "<content>",
        ];
        let mut expected = vec!["EHLO RELAY.TEST"];
        expected.extend(transaction);
        expected.push("RSET");
        expected.extend(transaction);
        assert_eq!(commands(&seen), expected, "pipelining {pipelining}");
        // Each group arrived in one write: RSET, MAIL and the RCPTs had the rest of the
        // group behind them; without PIPELINING nothing ever came unasked.
        for (command, more) in &seen {
            let grouped = ["MAIL", "RCPT", "RSET"]
                .iter()
                .any(|c| command.starts_with(c));
            assert_eq!(
                *more,
                pipelining && grouped,
                "{command} (pipelining {pipelining})"
            );
        }
    }
}

#[tokio::test]
async fn a_peer_closing_after_the_content_is_a_temporary_failure() {
    let (addr, server) = scripted(true, false, true).await;
    let relay = relay(ClientTls::None);
    let err = relay
        .deliver(&addr, "a@other.test", &["bob@example.it".into()], b"x\r\n")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Closed), "{err}");
    assert!(err.is_temporary());
    assert_eq!(relay.pool.idle_connections(), 0);
    server.await.unwrap();
}

/// Has a line starting with a dot and one that is only a dot: BDAT must carry both as
/// they are, where DATA would stuff them.
const DOTTED: &str = "Subject: x\r\n\r\n.starts with a dot\r\n.\r\nend\r\n";

#[tokio::test]
async fn content_goes_in_one_bdat_chunk_when_chunking_is_offered() {
    let to = ["bob@example.it".to_string(), "carol@example.it".to_string()];
    for pipelining in [true, false] {
        let (addr, server) = scripted(pipelining, true, false).await;
        let relay = relay(ClientTls::None);
        for _ in 0..2 {
            let outcome = relay
                .deliver(&addr, "a@other.test", &to, DOTTED.as_bytes())
                .await
                .unwrap();
            assert_eq!(outcome.data_reply.unwrap().code, 250);
            assert!(
                outcome
                    .recipients
                    .iter()
                    .all(|r| r.status == RecipientStatus::Accepted)
            );
        }
        drop(relay);
        let seen = server.await.unwrap();
        let bdat = format!("BDAT {} LAST", DOTTED.len());
        let chunk = format!("<chunk {DOTTED}>");
        let transaction = [
            "MAIL FROM:<A@OTHER.TEST>",
            "RCPT TO:<BOB@EXAMPLE.IT>",
            "RCPT TO:<CAROL@EXAMPLE.IT>",
            &bdat,
            &chunk,
        ];
        let mut expected = vec!["EHLO RELAY.TEST"];
        expected.extend(transaction);
        expected.push("RSET");
        expected.extend(transaction);
        assert_eq!(commands(&seen), expected, "pipelining {pipelining}");
        // With PIPELINING, RSET, MAIL and every RCPT but the last had the rest of the
        // group behind them: BDAT waited for the recipients' replies. The chunk always
        // came in the same write as its BDAT line.
        let behind: Vec<bool> = seen.iter().map(|(_, more)| *more).collect();
        let p = pipelining;
        let group = [p, p, false, true, false];
        let mut want = vec![false];
        want.extend(group);
        want.push(p);
        want.extend(group);
        assert_eq!(behind, want, "pipelining {pipelining}");
    }
}

#[tokio::test]
async fn a_peer_closing_after_a_chunk_is_a_temporary_failure() {
    let (addr, server) = scripted(true, true, true).await;
    let relay = relay(ClientTls::None);
    let err = relay
        .deliver(&addr, "a@other.test", &["bob@example.it".into()], b"x\r\n")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Closed), "{err}");
    assert!(err.is_temporary());
    assert_eq!(relay.pool.idle_connections(), 0);
    server.await.unwrap();
}

fn batch_message(n: usize, extra: &str) -> Vec<u8> {
    format!("Subject: {n}\r\n{extra}\r\nbody {n}\r\n").into_bytes()
}

#[tokio::test]
async fn a_batch_decides_each_message_on_its_own() {
    let server = start(Mode::Mx, |_| {}).await;
    let proxy = proxy(server.addr).await;
    let tls = client_tls_config(server.pki.ca_pem.as_bytes()).unwrap();
    let relay = pooled(ClientTls::RequireStartTls(tls), PoolLimits::default());
    let to = |r: &[&str]| -> Vec<String> { r.iter().map(|r| r.to_string()).collect() };
    let rcpts = [
        to(&["rcpt0@example.it"]),
        to(&["refused@example.it"]),
        to(&["busy@example.it", "rcpt2@example.it"]),
        to(&["rcpt3@example.it"]),
        to(&["rcpt4@example.it"]),
    ];
    let messages: Vec<Vec<u8>> = (0..5)
        .map(|n| batch_message(n, if n == 3 { "X-Test: tempfail\r\n" } else { "" }))
        .collect();
    let batch: Vec<Outgoing> = rcpts
        .iter()
        .zip(&messages)
        .map(|(rcpt_to, message)| Outgoing {
            mail_from: "a@other.test",
            rcpt_to,
            message,
        })
        .collect();
    // Twice: on a new session, then on the same session reused.
    for round in 0..2 {
        let results = relay
            .deliver_batch(&proxy.addr.to_string(), "localhost", &batch)
            .await;
        let outcomes: Vec<DeliveryOutcome> = results.into_iter().map(Result::unwrap).collect();
        let statuses = |o: &DeliveryOutcome| -> Vec<u16> {
            o.recipients
                .iter()
                .map(|r| match &r.status {
                    RecipientStatus::Accepted => 250,
                    RecipientStatus::TemporaryFailure(reply)
                    | RecipientStatus::PermanentFailure(reply) => reply.code,
                })
                .collect()
        };
        let data = |o: &DeliveryOutcome| o.data_reply.as_ref().map(|r| r.code);
        assert_eq!(statuses(&outcomes[0]), [250], "round {round}");
        assert_eq!(data(&outcomes[0]), Some(250));
        assert_eq!(statuses(&outcomes[1]), [550]);
        assert_eq!(data(&outcomes[1]), None, "no recipient, no content taken");
        assert!(matches!(
            outcomes[1].recipients[0].status,
            RecipientStatus::PermanentFailure(_)
        ));
        assert_eq!(statuses(&outcomes[2]), [450, 250]);
        assert!(matches!(
            outcomes[2].recipients[0].status,
            RecipientStatus::TemporaryFailure(_)
        ));
        assert_eq!(data(&outcomes[2]), Some(250));
        assert_eq!(statuses(&outcomes[3]), [451], "the content refused for now");
        assert!(matches!(
            outcomes[3].recipients[0].status,
            RecipientStatus::TemporaryFailure(_)
        ));
        assert_eq!(statuses(&outcomes[4]), [250]);
        assert_eq!(relay.pool.idle_connections(), 1);
    }
    assert_eq!(proxy.accepted.load(Ordering::SeqCst), 1, "one session");
    let taken: Vec<(Vec<String>, Vec<u8>)> = server
        .received()
        .into_iter()
        .map(|r| (r.envelope.rcpt_to, r.message))
        .collect();
    let once = [
        (to(&["rcpt0@example.it"]), messages[0].clone()),
        (to(&["rcpt2@example.it"]), messages[2].clone()),
        (to(&["rcpt4@example.it"]), messages[4].clone()),
    ];
    let want: Vec<_> = once.iter().chain(&once).cloned().collect();
    assert_eq!(taken, want);
    server.shutdown().await;
}

/// A plaintext server offering PIPELINING and CHUNKING for one session that answers each
/// command at once, except that from the second chunk on it holds its replies until
/// `hold_until` chunks arrived in all (a client that waits for a reply before
/// sending the next transaction never gets one). With `close_after` it stops answering
/// after that many chunks: it half-closes the connection, reads what is left and ends.
/// Returns the command lines and chunks seen.
async fn batch_server(
    hold_until: usize,
    close_after: Option<usize>,
) -> (String, JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let task = tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        let mut s = BufReader::new(socket);
        let mut seen = Vec::new();
        s.get_mut().write_all(b"220 scripted\r\n").await.unwrap();
        let (mut out, mut chunks) = (Vec::new(), 0);
        loop {
            let mut line = String::new();
            if s.read_line(&mut line).await.unwrap_or(0) == 0 {
                return seen;
            }
            let command = line.trim_end().to_ascii_uppercase();
            seen.push(command.clone());
            let reply: &[u8] = if command.starts_with("EHLO") {
                b"250-scripted\r\n250-PIPELINING\r\n250 CHUNKING\r\n"
            } else if let Some(size) = command.strip_prefix("BDAT ") {
                let size: usize = size.trim_end_matches(" LAST").parse().unwrap();
                let mut chunk = vec![0; size];
                s.read_exact(&mut chunk).await.unwrap();
                seen.push(format!("<chunk {}>", String::from_utf8(chunk).unwrap()));
                chunks += 1;
                if close_after == Some(chunks) {
                    s.get_mut().shutdown().await.unwrap();
                    let mut rest = Vec::new();
                    let _ = s.read_to_end(&mut rest).await;
                    return seen;
                }
                b"250 taken\r\n"
            } else {
                b"250 ok\r\n"
            };
            out.extend_from_slice(reply);
            // The first chunk's reply goes: the first transaction waits for it.
            let holding = chunks >= 2 && chunks < hold_until;
            if !holding {
                s.get_mut().write_all(&out).await.unwrap();
                out.clear();
            }
        }
    });
    (addr, task)
}

fn numbered(n: usize) -> Vec<(Vec<String>, Vec<u8>)> {
    (0..n)
        .map(|i| (vec![format!("rcpt{i}@example.it")], batch_message(i, "")))
        .collect()
}

fn outgoing(messages: &[(Vec<String>, Vec<u8>)]) -> Vec<Outgoing<'_>> {
    messages
        .iter()
        .map(|(rcpt_to, message)| Outgoing {
            mail_from: "a@other.test",
            rcpt_to,
            message,
        })
        .collect()
}

#[tokio::test]
async fn later_transactions_of_a_batch_go_without_waiting() {
    let (addr, server) = batch_server(4, None).await;
    let relay = Relay {
        timeout: Duration::from_secs(3),
        ..relay(ClientTls::None)
    };
    let messages = numbered(4);
    let results = relay
        .deliver_batch(&addr, "localhost", &outgoing(&messages))
        .await;
    for (n, r) in results.into_iter().enumerate() {
        let outcome = r.unwrap_or_else(|e| panic!("transaction {n}: {e}"));
        assert_eq!(outcome.data_reply.unwrap().code, 250);
    }
    drop(relay);
    let seen = server.await.unwrap();
    let mut want = vec!["EHLO RELAY.TEST".to_string()];
    for (n, (rcpt, message)) in messages.iter().enumerate() {
        if n > 0 {
            want.push("RSET".into());
        }
        want.push("MAIL FROM:<A@OTHER.TEST>".into());
        want.push(format!("RCPT TO:<{}>", rcpt[0].to_ascii_uppercase()));
        want.push(format!("BDAT {} LAST", message.len()));
        want.push(format!("<chunk {}>", String::from_utf8_lossy(message)));
    }
    assert_eq!(seen, want);
}

#[tokio::test]
async fn a_peer_closing_mid_batch_fails_only_what_it_did_not_answer() {
    let (addr, server) = batch_server(0, Some(3)).await;
    let relay = relay(ClientTls::None);
    let messages = numbered(4);
    let results = relay
        .deliver_batch(&addr, "localhost", &outgoing(&messages))
        .await;
    let [first, second, third, fourth]: [Result<DeliveryOutcome, Error>; 4] =
        results.try_into().unwrap();
    assert_eq!(first.unwrap().data_reply.unwrap().code, 250);
    assert_eq!(second.unwrap().data_reply.unwrap().code, 250);
    // The third was received but not answered, the fourth perhaps not even received:
    // both are for later, and the server's duplicate check recognises a retry.
    for e in [third.unwrap_err(), fourth.unwrap_err()] {
        assert!(e.is_temporary(), "{e}");
    }
    assert_eq!(
        relay.pool.idle_connections(),
        0,
        "a broken session is not kept"
    );
    drop(relay);
    let seen = server.await.unwrap();
    assert_eq!(seen.iter().filter(|c| c.starts_with("<chunk")).count(), 3);
}

/// A plaintext server whose first connection is an SMTP session offering PIPELINING and
/// CHUNKING that holds its reply to the first message until a second connection came and
/// was refused with `421` at the greeting (the peer's limit on our connections); every
/// later connection is refused the same way. Returns the first session's lines and how
/// many connections were refused.
async fn one_connection_server() -> (String, JoinHandle<(Vec<String>, usize)>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let task = tokio::spawn(async move {
        let (first, _) = listener.accept().await.unwrap();
        let refused = Arc::new(AtomicUsize::new(0));
        let came = Arc::new(tokio::sync::Notify::new());
        let (r, c) = (refused.clone(), came.clone());
        let refuser = tokio::spawn(async move {
            loop {
                let (mut more, _) = listener.accept().await.unwrap();
                more.write_all(b"421 4.7.0 Too many connections from your address\r\n")
                    .await
                    .unwrap();
                drop(more);
                r.fetch_add(1, Ordering::SeqCst);
                c.notify_one();
            }
        });
        let mut s = BufReader::new(first);
        let mut seen = Vec::new();
        s.get_mut().write_all(b"220 scripted\r\n").await.unwrap();
        let mut chunks = 0;
        loop {
            let mut line = String::new();
            if s.read_line(&mut line).await.unwrap_or(0) == 0 {
                refuser.abort();
                return (seen, refused.load(Ordering::SeqCst));
            }
            let command = line.trim_end().to_ascii_uppercase();
            seen.push(command.clone());
            let reply: &[u8] = if command.starts_with("EHLO") {
                b"250-scripted\r\n250-PIPELINING\r\n250 CHUNKING\r\n"
            } else if let Some(size) = command.strip_prefix("BDAT ") {
                let size: usize = size.trim_end_matches(" LAST").parse().unwrap();
                let mut chunk = vec![0; size];
                s.read_exact(&mut chunk).await.unwrap();
                chunks += 1;
                if chunks == 1 {
                    came.notified().await;
                }
                b"250 taken\r\n"
            } else {
                b"250 ok\r\n"
            };
            s.get_mut().write_all(reply).await.unwrap();
        }
    });
    (addr, task)
}

#[tokio::test]
async fn a_refused_connection_waits_for_a_session_of_ours() {
    let (addr, server) = one_connection_server().await;
    let relay = relay(ClientTls::None);
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..2 {
        let (relay, addr) = (relay.clone(), addr.clone());
        tasks.spawn(async move {
            relay
                .deliver_to(
                    &addr,
                    "localhost",
                    "a@other.test",
                    &[format!("rcpt{n}@example.it")],
                    b"Subject: x\r\n\r\nbody\r\n",
                )
                .await
        });
    }
    while let Some(outcome) = tasks.join_next().await {
        let outcome = outcome
            .unwrap()
            .expect("the 421 is the peer's limit, not a failure");
        assert_eq!(outcome.data_reply.unwrap().code, 250);
    }
    drop(relay);
    let (seen, refused) = server.await.unwrap();
    assert_eq!(refused, 1);
    let bdats = seen.iter().filter(|c| c.starts_with("BDAT")).count();
    assert_eq!(bdats, 2, "both messages over the one session: {seen:?}");
}
