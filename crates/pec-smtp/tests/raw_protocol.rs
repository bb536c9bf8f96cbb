//! Protocol edges driven byte by byte over raw sockets.

mod common;

use std::time::Duration;

use common::{Raw, start};
use pec_smtp::Mode;

async fn transaction_to_data(raw: &mut Raw) {
    assert!(raw.reply().await.starts_with("220 "));
    assert!(raw.cmd("EHLO raw.test").await.starts_with("250-"));
    assert!(
        raw.cmd("MAIL FROM:<a@other.test>")
            .await
            .starts_with("250 2.1.0")
    );
    assert!(
        raw.cmd("RCPT TO:<bob@example.it>")
            .await
            .starts_with("250 2.1.5")
    );
    assert!(raw.cmd("DATA").await.starts_with("354 "));
}

#[tokio::test]
async fn bare_lf_or_cr_in_data_is_refused_after_the_final_dot() {
    let server = start(Mode::Mx, |_| {}).await;
    let mut raw = Raw::connect(server.addr).await;
    transaction_to_data(&mut raw).await;
    raw.send(b"Subject: x\r\n\r\nbare\nlf\r\n.\r\n").await;
    assert!(raw.reply().await.starts_with("550 5.6.2 "));

    assert!(
        raw.cmd("MAIL FROM:<a@other.test>")
            .await
            .starts_with("250 ")
    );
    assert!(
        raw.cmd("RCPT TO:<bob@example.it>")
            .await
            .starts_with("250 ")
    );
    assert!(raw.cmd("DATA").await.starts_with("354 "));
    raw.send(b"Subject: x\r\n\r\nbare\rcr\r\n.\r\n").await;
    assert!(raw.reply().await.starts_with("550 5.6.2 "));

    // The session is still usable and a clean message goes through.
    assert!(
        raw.cmd("MAIL FROM:<a@other.test>")
            .await
            .starts_with("250 ")
    );
    assert!(
        raw.cmd("RCPT TO:<bob@example.it>")
            .await
            .starts_with("250 ")
    );
    assert!(raw.cmd("DATA").await.starts_with("354 "));
    raw.send(b"Subject: ok\r\n\r\nfine\r\n.\r\n").await;
    assert!(raw.reply().await.starts_with("250 "));
    assert_eq!(server.received().len(), 1);
    assert_eq!(server.received()[0].message, b"Subject: ok\r\n\r\nfine\r\n");
    server.shutdown().await;
}

#[tokio::test]
async fn oversize_message_is_refused_with_552() {
    let server = start(Mode::Mx, |c| c.max_message_size = 1000).await;
    let mut raw = Raw::connect(server.addr).await;
    assert!(raw.reply().await.starts_with("220 "));
    let ehlo = raw.cmd("EHLO raw.test").await;
    assert!(ehlo.contains("250-SIZE 1000\r\n"), "{ehlo}");
    let declared = raw.cmd("MAIL FROM:<a@other.test> SIZE=5000").await;
    assert!(declared.starts_with("552 5.3.4 "), "{declared}");
    assert!(
        raw.cmd("MAIL FROM:<a@other.test> SIZE=500 BODY=8BITMIME")
            .await
            .starts_with("250 ")
    );
    assert!(
        raw.cmd("RCPT TO:<bob@example.it>")
            .await
            .starts_with("250 ")
    );
    assert!(raw.cmd("DATA").await.starts_with("354 "));
    let mut big = b"Subject: big\r\n\r\n".to_vec();
    for _ in 0..100 {
        big.extend_from_slice(b"0123456789012345678901234567890123456789\r\n");
    }
    big.extend_from_slice(b".\r\n");
    raw.send(&big).await;
    assert!(raw.reply().await.starts_with("552 5.3.4 "));
    assert!(raw.cmd("NOOP").await.starts_with("250 "));
    assert!(server.received().is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn recipient_over_the_limit_gets_452() {
    let server = start(Mode::Mx, |_| {}).await;
    let mut raw = Raw::connect(server.addr).await;
    assert!(raw.reply().await.starts_with("220 "));
    assert!(raw.cmd("EHLO raw.test").await.starts_with("250-"));
    let mut batch = b"MAIL FROM:<a@other.test>\r\n".to_vec();
    for i in 0..101 {
        batch.extend_from_slice(format!("RCPT TO:<user{i}@example.it>\r\n").as_bytes());
    }
    raw.send(&batch).await;
    assert!(raw.reply().await.starts_with("250 2.1.0"));
    for i in 0..100 {
        let reply = raw.reply().await;
        assert!(reply.starts_with("250 2.1.5"), "recipient {i}: {reply}");
    }
    assert!(raw.reply().await.starts_with("452 4.5.3 "));
    assert!(raw.cmd("DATA").await.starts_with("354 "));
    raw.send(b"Subject: many\r\n\r\nx\r\n.\r\n").await;
    assert!(raw.reply().await.starts_with("250 "));
    assert_eq!(server.received()[0].envelope.rcpt_to.len(), 100);
    server.shutdown().await;
}

#[tokio::test]
async fn whole_pipelined_transaction_in_one_write() {
    let server = start(Mode::Mx, |_| {}).await;
    let mut raw = Raw::connect(server.addr).await;
    assert!(raw.reply().await.starts_with("220 "));
    raw.send(
        b"EHLO raw.test\r\nMAIL FROM:<a@other.test>\r\nRCPT TO:<bob@example.it>\r\n\
RCPT TO:<refused@example.it>\r\nDATA\r\n.dot\r\nbody\r\n.\r\nQUIT\r\n",
    )
    .await;
    let ehlo = raw.reply().await;
    assert!(ehlo.contains("PIPELINING"), "{ehlo}");
    assert!(raw.reply().await.starts_with("250 2.1.0"));
    assert!(raw.reply().await.starts_with("250 2.1.5"));
    assert!(raw.reply().await.starts_with("550 5.1.1 No such user here"));
    assert!(raw.reply().await.starts_with("354 "));
    assert!(raw.reply().await.starts_with("250 2.0.0 Message accepted"));
    assert!(raw.reply().await.starts_with("221 "));
    assert!(raw.closed().await);
    let received = server.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].message, b"dot\r\nbody\r\n");
    assert_eq!(received[0].envelope.rcpt_to, vec!["bob@example.it"]);
    server.shutdown().await;
}

#[tokio::test]
async fn command_order_and_syntax_errors() {
    let server = start(Mode::Mx, |_| {}).await;
    let mut raw = Raw::connect(server.addr).await;
    assert!(raw.reply().await.starts_with("220 "));
    assert!(
        raw.cmd("MAIL FROM:<a@other.test>")
            .await
            .starts_with("503 5.5.1")
    );
    assert!(raw.cmd("BOGUS").await.starts_with("500 5.5.1"));
    assert!(raw.cmd("HELO raw.test").await.starts_with("250 "));
    assert!(
        raw.cmd("RCPT TO:<bob@example.it>")
            .await
            .starts_with("503 ")
    );
    assert!(raw.cmd("DATA").await.starts_with("503 "));
    assert!(
        raw.cmd("MAIL FROM:<a@other.test> RET=FULL")
            .await
            .starts_with("555 ")
    );
    assert!(
        raw.cmd("MAIL FROM:<a@other.test>")
            .await
            .starts_with("250 ")
    );
    assert!(
        raw.cmd("MAIL FROM:<a@other.test>")
            .await
            .starts_with("503 ")
    );
    assert!(
        raw.cmd("RCPT TO:<refused@example.it>")
            .await
            .starts_with("550 ")
    );
    assert!(raw.cmd("DATA").await.starts_with("554 "));
    let long = format!("NOOP {}", "x".repeat(5000));
    assert!(raw.cmd(&long).await.starts_with("500 5.5.2"));
    assert!(raw.cmd("RSET").await.starts_with("250 "));
    assert!(raw.cmd("STARTTLS").await.starts_with("220 "));
    server.shutdown().await;
}

#[tokio::test]
async fn per_ip_connection_limit_gives_421() {
    let server = start(Mode::Mx, |c| c.connections.max_connections_per_ip = 2).await;
    let mut first = Raw::connect(server.addr).await;
    let mut second = Raw::connect(server.addr).await;
    assert!(first.reply().await.starts_with("220 "));
    assert!(second.reply().await.starts_with("220 "));
    let mut third = Raw::connect(server.addr).await;
    assert!(third.reply().await.starts_with("421 4.7.0 "));
    assert!(third.closed().await);
    assert!(first.cmd("QUIT").await.starts_with("221 "));
    assert!(first.closed().await);
    // The slot comes back once the first session is gone.
    let mut ok = false;
    for _ in 0..50 {
        let mut again = Raw::connect(server.addr).await;
        if again.reply().await.starts_with("220 ") {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ok, "connection slot was not released");
    server.shutdown().await;
}

#[tokio::test]
async fn failed_logins_disconnect_over_implicit_tls() {
    let server = start(Mode::Submission { implicit_tls: true }, |c| {
        c.max_auth_failures = 3;
    })
    .await;
    let mut raw = Raw::connect_tls(server.addr, &server.pki.ca_pem).await;
    assert!(raw.reply().await.starts_with("220 "));
    let ehlo = raw.cmd("EHLO raw.test").await;
    assert!(ehlo.contains("AUTH PLAIN LOGIN"), "{ehlo}");
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
    // PLAIN without initial response, then a cancelled LOGIN.
    assert!(raw.cmd("AUTH PLAIN").await.starts_with("334 "));
    assert!(raw.cmd("AGFsaWNlAHdyb25n").await.starts_with("535 5.7.8 "));
    assert!(raw.cmd("AUTH LOGIN").await.starts_with("334 VXNlcm5hbWU6"));
    assert!(raw.cmd("*").await.starts_with("501 "));
    assert!(raw.cmd("AUTH CRAM-MD5").await.starts_with("504 "));
    assert!(
        raw.cmd("AUTH PLAIN AGFsaWNlAHdyb25n")
            .await
            .starts_with("535 ")
    );
    assert!(
        raw.cmd("AUTH PLAIN not-base64!")
            .await
            .starts_with("421 4.7.0 ")
    );
    assert!(raw.closed().await);

    let mut raw = Raw::connect_tls(server.addr, &server.pki.ca_pem).await;
    assert!(raw.reply().await.starts_with("220 "));
    assert!(raw.cmd("EHLO raw.test").await.starts_with("250-"));
    assert!(
        raw.cmd("MAIL FROM:<alice@example.it>")
            .await
            .starts_with("530 5.7.0")
    );
    assert!(
        raw.cmd("AUTH PLAIN AGFsaWNlAHNlY3JldA==")
            .await
            .starts_with("235 2.7.0")
    );
    assert!(
        raw.cmd("AUTH PLAIN AGFsaWNlAHNlY3JldA==")
            .await
            .starts_with("503 ")
    );
    assert!(
        raw.cmd("MAIL FROM:<alice@example.it>")
            .await
            .starts_with("250 ")
    );
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_tells_idle_sessions_421_and_returns() {
    let server = start(Mode::Mx, |_| {}).await;
    let mut raw = Raw::connect(server.addr).await;
    assert!(raw.reply().await.starts_with("220 "));
    assert!(raw.cmd("EHLO raw.test").await.starts_with("250-"));
    let addr = server.addr;
    tokio::time::timeout(Duration::from_secs(5), server.shutdown())
        .await
        .expect("serve did not return");
    assert!(raw.reply().await.starts_with("421 4.3.2 "));
    assert!(raw.closed().await);
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn shutdown_lets_a_message_in_flight_finish_then_says_421() {
    let server = start(Mode::Mx, |_| {}).await;
    let addr = server.addr;
    let handler = server.handler.clone();
    let mut idle = Raw::connect(addr).await;
    assert!(idle.reply().await.starts_with("220 "));
    let mut busy = Raw::connect(addr).await;
    transaction_to_data(&mut busy).await;
    busy.send(b"Subject: in flight\r\n\r\nfirst half\r\n").await;

    let stopping = tokio::spawn(server.shutdown());
    // The idle session is told at once: the shutdown has begun.
    assert!(idle.reply().await.starts_with("421 4.3.2 "));
    assert!(idle.closed().await);
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    // The message being received still goes through, then the session is told.
    busy.send(b"second half\r\n.\r\n").await;
    assert!(busy.reply().await.starts_with("250 "));
    assert!(busy.reply().await.starts_with("421 4.3.2 "));
    assert!(busy.closed().await);
    stopping.await.unwrap();
    let received = handler.messages.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    assert_eq!(
        received[0].message,
        b"Subject: in flight\r\n\r\nfirst half\r\nsecond half\r\n"
    );
}

#[tokio::test]
async fn credentials_that_cannot_be_checked_are_a_temporary_error() {
    let server = start(Mode::Submission { implicit_tls: true }, |c| {
        c.max_auth_failures = 1;
    })
    .await;
    let mut raw = Raw::connect_tls(server.addr, &server.pki.ca_pem).await;
    assert!(raw.reply().await.starts_with("220 "));
    assert!(raw.cmd("EHLO raw.test").await.starts_with("250-"));
    // The handler could not check them (a store failure): 454, twice, and no failure
    // counted (one failure would close the connection).
    for _ in 0..2 {
        let r = raw.cmd("AUTH PLAIN AHVuYXZhaWxhYmxlAHg=").await;
        assert!(r.starts_with("454 4.7.0"), "{r}");
    }
    assert!(
        raw.cmd("AUTH PLAIN AGFsaWNlAHNlY3JldA==")
            .await
            .starts_with("235 2.7.0")
    );
}

#[tokio::test]
async fn replies_to_a_pipeline_that_never_runs_dry_are_written_not_held() {
    let server = start(Mode::Mx, |_| {}).await;
    let mut raw = Raw::connect(server.addr).await;
    assert!(raw.reply().await.starts_with("220 "));
    // The input ends mid-command: the server never finds it empty, yet the replies to
    // the 4000 commands before come back without the client sending more.
    let mut pipeline = "NOOP\r\n".repeat(4000).into_bytes();
    pipeline.extend_from_slice(b"NOO");
    raw.send(&pipeline).await;
    let first = raw.reply().await;
    assert!(first.starts_with("250 "), "{first}");
    // Nothing lost: every command gets its reply once the last one is complete.
    raw.send(b"P\r\n").await;
    for n in 1..4001 {
        let r = raw.reply().await;
        assert!(r.starts_with("250 "), "reply {n}: {r}");
    }
    server.shutdown().await;
}
