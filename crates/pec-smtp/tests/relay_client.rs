//! The relay client against our own server.

mod common;

use std::time::Duration;

use common::{pki, start};
use pec_smtp::{ClientTls, Error, Mode, RecipientStatus, Relay, client_tls_config};

fn relay(tls: ClientTls) -> Relay {
    Relay {
        helo_name: "relay.test".into(),
        tls,
        timeout: Duration::from_secs(10),
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
}
