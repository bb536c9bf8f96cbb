//! The transport-independent session (what the fuzz target drives) over an
//! in-memory pipe: SASL-IR, literal limits, garbage input, POP3 basics.

mod common;

use std::time::Duration;

use pec_imap::{imap_session, pop3_session};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

/// Sends `input`, closes the client's writing side and returns all output.
async fn converse(client: &mut DuplexStream, input: &[u8]) -> String {
    client.write_all(input).await.unwrap();
    client.shutdown().await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), client.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn sasl_ir_literal_limit_and_garbage() {
    let (_dir, config) = common::config(Some(1000));
    let (mut client, server) = tokio::io::duplex(64 * 1024);
    let session = tokio::spawn(imap_session(server, true, config));
    // "\0anna@pec.example.it\0segreta" in base64.
    let out = converse(
        &mut client,
        b"a0 \xff\xfe garbage\r\n\
a1 AUTHENTICATE PLAIN AGFubmFAcGVjLmV4YW1wbGUuaXQAc2VncmV0YQ==\r\n\
a2 APPEND INBOX {5000}\r\n\
a3 APPEND INBOX {12}\r\nSubject: x\r\n\r\n\
a4 SELECT INBOX\r\n\
a5 FETCH 1 (BODY[HEADER] FLAGS)\r\n\
a6 LOGOUT\r\n",
    )
    .await;
    session.await.unwrap().unwrap();
    assert!(
        out.starts_with("* OK [CAPABILITY IMAP4REV1 AUTH=PLAIN SASL-IR"),
        "{out}"
    );
    assert!(out.contains("a0 BAD"), "{out}");
    assert!(out.contains("a1 OK"), "{out}");
    assert!(out.contains("a2 NO [TOOBIG]"), "{out}");
    assert!(out.contains("a3 OK [APPENDUID"), "{out}");
    assert!(
        out.contains("* 1 EXISTS") && out.contains("a4 OK [READ-WRITE]"),
        "{out}"
    );
    assert!(out.contains("BODY[HEADER] {12}\r\nSubject: x\r\n"), "{out}");
    assert!(
        out.contains("FLAGS (\\Seen \\Recent)"),
        "BODY[] sets \\Seen; the message is \\Recent in its first session: {out}"
    );
    assert!(out.contains("* BYE") && out.contains("a6 OK"), "{out}");
}

#[tokio::test]
async fn plaintext_session_refuses_login() {
    let (_dir, config) = common::config(Some(1000));
    let (mut client, server) = tokio::io::duplex(64 * 1024);
    let session = tokio::spawn(imap_session(server, false, config));
    let out = converse(
        &mut client,
        b"a1 LOGIN anna@pec.example.it segreta\r\na2 AUTHENTICATE PLAIN AGFubmFAcGVjLmV4YW1wbGUuaXQAc2VncmV0YQ==\r\na3 SELECT INBOX\r\n",
    )
    .await;
    session.await.unwrap().unwrap();
    assert!(out.contains("LOGINDISABLED"), "{out}");
    assert!(
        out.contains("a1 NO") && out.contains("a2 NO") && out.contains("a3 NO"),
        "{out}"
    );
}

#[tokio::test]
async fn failed_logins_close_the_connection() {
    let (_dir, config) = common::config(Some(1000));
    let (mut client, server) = tokio::io::duplex(64 * 1024);
    let session = tokio::spawn(imap_session(server, true, config));
    let out = converse(
        &mut client,
        b"a1 LOGIN anna@pec.example.it x\r\na2 LOGIN anna@pec.example.it y\r\na3 LOGIN anna@pec.example.it z\r\na4 LOGIN anna@pec.example.it segreta\r\n",
    )
    .await;
    session.await.unwrap().unwrap();
    assert!(out.contains("a3 NO") && out.contains("* BYE"), "{out}");
    assert!(!out.contains("a4"), "{out}");
}

#[tokio::test]
async fn pop3_over_pipe() {
    let (_dir, config) = common::config(Some(1000));
    config
        .store
        .deliver(
            "anna@pec.example.it",
            "INBOX",
            b"Subject: a\r\n\r\n.dot\r\n",
            &[],
            0,
        )
        .unwrap();
    let (mut client, server) = tokio::io::duplex(64 * 1024);
    let session = tokio::spawn(pop3_session(server, true, config));
    let out = converse(
        &mut client,
        b"USER anna@pec.example.it\r\nPASS segreta\r\nSTAT\r\nRETR 1\r\nRETR 2\r\nQUIT\r\n",
    )
    .await;
    session.await.unwrap().unwrap();
    assert!(out.contains("+OK 1 20\r\n"), "{out}");
    assert!(out.contains("Subject: a\r\n\r\n..dot\r\n.\r\n"), "{out}");
    assert!(out.contains("-ERR No such message"), "{out}");
}
