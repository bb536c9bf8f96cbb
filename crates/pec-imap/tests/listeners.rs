//! The IMAP and POP3 listeners on `pec-net`: a TLS handshake that never comes, the drain
//! at shutdown, and logins of unknown users going through the same password check.

mod common;

use std::sync::Arc;
use std::time::Duration;

use pec_imap::{Config, imap_session, serve_imap, serve_pop3};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

fn tls_config() -> Arc<rustls::ServerConfig> {
    let key = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    pec_net::tls::server_config(
        key.cert.pem().as_bytes(),
        key.signing_key.serialize_pem().as_bytes(),
    )
    .unwrap()
}

/// The test configuration with TLS and `tweak` applied.
fn config(tweak: impl FnOnce(&mut Config)) -> (tempfile::TempDir, Arc<Config>) {
    let (dir, config) = common::config(None);
    let mut config = Arc::into_inner(config).unwrap();
    config.tls = Some(tls_config());
    tweak(&mut config);
    (dir, Arc::new(config))
}

/// Reads until the server closes; what it sent (a 10 s guard against a hang).
async fn until_closed(stream: &mut (impl AsyncReadExt + Unpin)) -> String {
    let mut all = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut all));
    let _ = read.await.expect("the server did not close the connection");
    String::from_utf8_lossy(&all).into_owned()
}

#[tokio::test]
async fn an_imaps_connection_that_never_starts_tls_is_closed_after_the_handshake_limit() {
    let (_dir, config) = config(|c| {
        c.limits.connections.tls_handshake = Duration::from_millis(200);
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(serve_imap(listener, config, true, std::future::pending()));
    let mut idle = TcpStream::connect(addr).await.unwrap();
    assert_eq!(until_closed(&mut idle).await, "");
    server.abort();
}

#[tokio::test]
async fn shutdown_says_bye_to_imap_sessions_closes_pop3_ones_and_refuses_newcomers() {
    let (_dir, config) = config(|_| {});
    let imap_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let pop3_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (imap_addr, pop3_addr) = (
        imap_listener.local_addr().unwrap(),
        pop3_listener.local_addr().unwrap(),
    );
    let (stop, stopped) = oneshot::channel::<()>();
    let stopped = async move {
        let _ = stopped.await;
    };
    let (stop_pop3, stopped_pop3) = oneshot::channel::<()>();
    let stopped_pop3 = async move {
        let _ = stopped_pop3.await;
    };
    let imap = tokio::spawn(serve_imap(imap_listener, config.clone(), false, stopped));
    let pop3 = tokio::spawn(serve_pop3(pop3_listener, config, false, stopped_pop3));

    let mut imap_client = BufReader::new(TcpStream::connect(imap_addr).await.unwrap());
    let mut greeting = String::new();
    imap_client.read_line(&mut greeting).await.unwrap();
    assert!(greeting.starts_with("* OK "), "{greeting}");
    imap_client.write_all(b"a1 NOOP\r\n").await.unwrap();
    let mut reply = String::new();
    imap_client.read_line(&mut reply).await.unwrap();
    assert!(reply.starts_with("a1 OK"), "{reply}");

    let mut pop3_client = BufReader::new(TcpStream::connect(pop3_addr).await.unwrap());
    let mut greeting = String::new();
    pop3_client.read_line(&mut greeting).await.unwrap();
    assert!(greeting.starts_with("+OK "), "{greeting}");

    stop.send(()).unwrap();
    let rest = until_closed(&mut imap_client).await;
    assert!(rest.starts_with("* BYE "), "{rest}");
    assert!(TcpStream::connect(imap_addr).await.is_err());
    imap.await.unwrap().unwrap();

    stop_pop3.send(()).unwrap();
    assert_eq!(until_closed(&mut pop3_client).await, "");
    pop3.await.unwrap().unwrap();
}

#[tokio::test]
async fn an_unknown_user_costs_a_verification_like_a_wrong_password() {
    let (_dir, config) = common::config(None);
    let auth = config.limits.auth.clone();
    let (mut client, server) = tokio::io::duplex(64 * 1024);
    let session = tokio::spawn(imap_session(server, true, config));
    client
        .write_all(b"a1 LOGIN nessuno@pec.example.it segreta\r\n")
        .await
        .unwrap();
    let mut client = BufReader::new(client);
    let mut line = String::new();
    while !line.starts_with("a1 ") {
        line.clear();
        client.read_line(&mut line).await.unwrap();
    }
    assert!(line.starts_with("a1 NO [AUTHENTICATIONFAILED]"), "{line}");
    assert_eq!(auth.stats().verifications, 1, "the dummy hash was verified");
    client
        .write_all(b"a2 LOGIN anna@pec.example.it sbagliata\r\na3 LOGOUT\r\n")
        .await
        .unwrap();
    let rest = until_closed(&mut client).await;
    assert!(rest.contains("a2 NO [AUTHENTICATIONFAILED]"), "{rest}");
    assert_eq!(auth.stats().verifications, 2);
    session.await.unwrap().unwrap();
}
