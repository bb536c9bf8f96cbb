//! Hostile clients and hostile stored messages: every bound of the IMAP session holds,
//! and the session answers (and goes on) where it used to crash, spin or hoard memory.

mod common;

use std::sync::Arc;

use pec_imap::{Config, imap_session};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LOGIN: &[u8] = b"a0 LOGIN anna@pec.example.it segreta\r\n";

/// One whole session over a pipe: `input` in (the server may hang up before it has
/// read it all), everything the server said out.
async fn session(config: Arc<Config>, input: &[u8]) -> String {
    let (client, server) = tokio::io::duplex(64 * 1024);
    let session = tokio::spawn(imap_session(server, true, config));
    let (mut rd, mut wr) = tokio::io::split(client);
    let input = input.to_vec();
    let writer = tokio::spawn(async move {
        if wr.write_all(&input).await.is_ok() {
            let _ = wr.shutdown().await;
        }
    });
    let mut out = Vec::new();
    rd.read_to_end(&mut out).await.unwrap();
    let _ = session.await.unwrap();
    writer.await.unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

/// Runs `f` on a runtime whose only thread has the stack of a tokio worker (2 MiB), so a
/// recursion the input controls overflows here as it did in the server.
fn on_worker_stack<F: std::future::Future<Output = ()> + Send + 'static>(
    f: impl FnOnce() -> F + Send + 'static,
) {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(f())
        })
        .unwrap()
        .join()
        .expect("the session thread did not crash");
}

/// A message whose body nests `depth` multipart/mixed levels.
fn nested_multipart(depth: usize) -> Vec<u8> {
    let mut m = b"From: a@pec.example.it\r\nSubject: deep\r\n".to_vec();
    for i in 0..depth {
        m.extend_from_slice(
            format!("Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n")
                .as_bytes(),
        );
    }
    m.extend_from_slice(b"Content-Type: text/plain\r\n\r\nfondo\r\n");
    for i in (0..depth).rev() {
        m.extend_from_slice(format!("--b{i}--\r\n").as_bytes());
    }
    m
}

/// A message that attaches a message that attaches a message ... `depth` times.
fn nested_messages(depth: usize) -> Vec<u8> {
    let mut m = b"From: a@pec.example.it\r\nSubject: deep\r\n".to_vec();
    for _ in 0..depth {
        m.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\nSubject: x\r\n");
    }
    m.extend_from_slice(b"\r\nfondo\r\n");
    m
}

fn deep_fetch(raw: Vec<u8>) {
    on_worker_stack(move || async move {
        let (_dir, config) = common::config(None);
        config
            .store
            .deliver("anna@pec.example.it", "INBOX", &raw, &[], 0)
            .unwrap();
        let mut input = LOGIN.to_vec();
        input.extend_from_slice(
            b"a1 SELECT INBOX\r\na2 FETCH 1 (BODYSTRUCTURE ENVELOPE BODY[1])\r\n\
a3 SEARCH BODY fondo\r\na4 NOOP\r\n",
        );
        let out = session(config, &input).await;
        let start = &out[..out.len().min(2000)];
        assert!(out.contains("a2 OK"), "{start}");
        // Too complex to show: one opaque part, as Dovecot shows what is too deep.
        assert!(
            out.contains("BODYSTRUCTURE (\"APPLICATION\" \"OCTET-STREAM\""),
            "{start}"
        );
        assert!(
            out.contains("a3 OK") && out.contains("a4 OK"),
            "the session goes on"
        );
    });
}

/// A base64-encoded message/rfc822 part holding `depth` nested messages: mail-parser
/// decodes and parses it itself, recursing over the nested messages.
fn encoded_nested_messages(depth: usize) -> Vec<u8> {
    use base64::Engine;
    let inner = base64::engine::general_purpose::STANDARD.encode(nested_messages(depth));
    let mut m = b"From: a@pec.example.it\r\nSubject: deep\r\n\
Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        .to_vec();
    for line in inner.as_bytes().chunks(76) {
        m.extend_from_slice(line);
        m.extend_from_slice(b"\r\n");
    }
    m
}

#[test]
fn deeply_nested_multiparts_are_answered() {
    deep_fetch(nested_multipart(20_000));
}

#[test]
fn deeply_nested_messages_are_answered() {
    deep_fetch(nested_messages(20_000));
}

#[test]
fn deeply_nested_encoded_messages_are_answered() {
    deep_fetch(encoded_nested_messages(20_000));
}

#[tokio::test]
async fn structures_within_the_limits_are_shown() {
    let (_dir, config) = common::config(None);
    config
        .store
        .deliver(
            "anna@pec.example.it",
            "INBOX",
            &nested_multipart(50),
            &[],
            0,
        )
        .unwrap();
    let mut input = LOGIN.to_vec();
    input.extend_from_slice(b"a1 SELECT INBOX\r\na2 FETCH 1 (BODYSTRUCTURE)\r\n");
    let out = session(config, &input).await;
    assert!(out.contains("a2 OK"), "{out}");
    assert_eq!(
        out.matches("\"MIXED\"").count(),
        50,
        "every level is shown: {out}"
    );
}

#[tokio::test]
async fn list_patterns_cost_linear_time() {
    let (_dir, config) = common::config(None);
    let long = "a".repeat(200);
    let stars = "*".repeat(40);
    // With backtracking, 40 stars against a 200-byte name would not finish in a lifetime.
    let input = format!(
        "a0 LOGIN anna@pec.example.it segreta\r\na1 CREATE {long}\r\n\
a2 LIST \"\" \"{stars}Z\"\r\na3 LIST \"\" \"*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*aZ\"\r\n\
a4 LIST \"\" \"{}\"\r\na5 LIST \"\" \"*\"\r\n",
        "a*".repeat(2000)
    );
    let out = session(config, input.as_bytes()).await;
    assert!(out.contains("a2 OK") && out.contains("a3 OK"), "{out}");
    assert!(
        !out.contains(&format!("\"{long}\"\r\na3")),
        "nothing ends in Z: {out}"
    );
    assert!(
        out.contains("a4 BAD"),
        "an over-long pattern is refused: {out}"
    );
    assert!(out.contains(&long) && out.contains("a5 OK"), "{out}");
}

#[tokio::test]
async fn literals_before_login_are_refused_before_the_continuation() {
    let (_dir, config) = common::config(None);
    let (mut client, server) = tokio::io::duplex(64 * 1024);
    let session = tokio::spawn(imap_session(server, true, config));
    client
        .write_all(b"a1 LOGIN {60000000}\r\na2 CAPABILITY\r\n")
        .await
        .unwrap();
    // A non-synchronising literal over the bound comes anyway: the server hangs up at
    // once instead of buffering it.
    client.write_all(b"a3 LOGIN {60000000+}\r\n").await.unwrap();
    let (mut rd, mut wr) = tokio::io::split(client);
    let mut sent = 0usize;
    let mut writing = true;
    let chunk = vec![b'x'; 64 * 1024];
    let mut out = Vec::new();
    let mut buf = vec![0u8; 4096];
    loop {
        tokio::select! {
            n = rd.read(&mut buf) => {
                let n = n.unwrap();
                if n == 0 { break; }
                out.extend_from_slice(&buf[..n]);
            }
            w = wr.write_all(&chunk), if writing && sent < 60_000_000 => {
                // The server hung up: read what it said before.
                writing = w.is_ok();
                sent += chunk.len();
            }
        }
    }
    session.await.unwrap().unwrap();
    let out = String::from_utf8_lossy(&out);
    assert!(out.contains("a1 NO [TOOBIG]"), "{out}");
    assert!(
        !out.contains("+ "),
        "no continuation for an over-long literal: {out}"
    );
    assert!(
        out.contains("a2 OK"),
        "the session goes on after a refused literal: {out}"
    );
    assert!(out.contains("* BYE Literal too large"), "{out}");
    assert!(sent < 1_000_000, "closed after {sent} bytes of the literal");
}

#[tokio::test]
async fn over_long_lines_and_tags_end_or_are_refused() {
    let (_dir, config) = common::config(None);
    // Before login: a 100,000-byte tag is over the few KB an unauthenticated client gets.
    let mut input = "t".repeat(100_000).into_bytes();
    input.extend_from_slice(b" CAPABILITY\r\na1 CAPABILITY\r\n");
    let out = session(config.clone(), &input).await;
    assert!(
        out.contains("* BYE Command too long") || out.contains("* BYE Line too long"),
        "{out}"
    );
    assert!(!out.contains("ttttt"), "the tag is not echoed: {out}");
    assert!(!out.contains("a1 OK"), "the session ended: {out}");

    // After login: a tag over 128 bytes is refused untagged, a line over 64 KiB ends the
    // session.
    let mut input = LOGIN.to_vec();
    input.extend_from_slice(format!("{} NOOP\r\na1 NOOP\r\n", "t".repeat(200)).as_bytes());
    input.extend_from_slice(
        format!("a2 LIST \"\" \"{}\"\r\na3 NOOP\r\n", "x".repeat(70_000)).as_bytes(),
    );
    let out = session(config, &input).await;
    assert!(
        out.contains("* BAD Tag too long") && out.contains("a1 OK"),
        "{out}"
    );
    assert!(
        out.contains("* BYE Line too long") && !out.contains("a3 OK"),
        "{out}"
    );
}

#[tokio::test]
async fn the_archive_name_and_its_look_alikes_are_reserved() {
    let (_dir, config) = common::config(None);
    let mut input = LOGIN.to_vec();
    input.extend_from_slice(
        "a1 CREATE \"Archivio di sicurezza/sub\"\r\na2 CREATE \"archivio di sicurezza\"\r\n\
a3 CREATE \"Archivio di sicurezza \"\r\na4 CREATE \" Archivio  di sicurezza/x\"\r\n\
a5 CREATE Lavoro\r\na6 RENAME Lavoro \"ARCHIVIO DI SICUREZZA\"\r\na7 LIST \"\" *\r\n"
            .as_bytes(),
    );
    let out = session(config.clone(), &input).await;
    for tag in ["a1", "a2", "a3", "a4", "a6"] {
        assert!(out.contains(&format!("{tag} NO")), "{tag}: {out}");
    }
    assert!(out.contains("a5 OK"), "{out}");
    assert_eq!(
        out.matches("\"Archivio di sicurezza\"").count(),
        1,
        "the archive is listed once: {out}"
    );
    let folders = config.store.list_folders("anna@pec.example.it").unwrap();
    assert!(
        folders
            .iter()
            .all(|f| !f.name.to_lowercase().contains("archivio")),
        "no real folder was made: {folders:?}"
    );
}

#[tokio::test]
async fn folders_per_account_are_bounded() {
    let (_dir, config) = common::config(None);
    let mut limits = config.limits.clone();
    let existing = config
        .store
        .list_folders("anna@pec.example.it")
        .unwrap()
        .len();
    limits.max_folders = existing + 2;
    let config = Arc::new(Config {
        store: config.store.clone(),
        notifier: pec_imap::Notifier::new(),
        tls: None,
        limits,
        observer: None,
    });
    let mut input = LOGIN.to_vec();
    input.extend_from_slice(b"a1 CREATE uno\r\na2 CREATE due\r\na3 CREATE tre\r\n");
    let out = session(config, &input).await;
    assert!(out.contains("a1 OK") && out.contains("a2 OK"), "{out}");
    assert!(out.contains("a3 NO [LIMIT]"), "{out}");
}

#[tokio::test]
async fn idle_accepts_only_done() {
    let (_dir, config) = common::config(None);
    let mut input = LOGIN.to_vec();
    input.extend_from_slice(b"a1 SELECT INBOX\r\na2 IDLE\r\n");
    input.extend_from_slice(&vec![b'x'; 100_000]);
    let out = session(config, &input).await;
    assert!(out.contains("+ idling") && out.contains("* BYE"), "{out}");
}

/// Seconds of tokio's clock until `session` (served over a pipe no byte is sent to)
/// hangs up, and what it said meanwhile.
async fn silence_until_hung_up<F>(
    session: impl FnOnce(tokio::io::DuplexStream) -> F,
) -> (u64, String)
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (mut client, server) = tokio::io::duplex(64 * 1024);
    let start = tokio::time::Instant::now();
    let running = tokio::spawn(session(server));
    let mut out = Vec::new();
    client.read_to_end(&mut out).await.unwrap();
    let silent = start.elapsed().as_secs();
    let _ = running.await.unwrap();
    (silent, String::from_utf8_lossy(&out).into_owned())
}

/// On tokio's paused clock: a client that never logs in holds its connection slot one
/// minute, not the thirty of the logged-in autologout.
#[tokio::test(start_paused = true)]
async fn a_client_that_does_not_log_in_is_let_go_after_a_minute() {
    let (_dir, config) = common::config(None);
    let c = config.clone();
    let (silent, out) = silence_until_hung_up(|s| imap_session(s, true, c)).await;
    assert!((60..62).contains(&silent), "closed after {silent} s");
    assert!(out.starts_with("* OK"));

    // POP3 alike.
    let c = config.clone();
    let (silent, out) = silence_until_hung_up(|s| pec_imap::pop3_session(s, true, c)).await;
    assert!((60..62).contains(&silent), "POP3 closed after {silent} s");
    assert!(out.starts_with("+OK"));

    // Logged in, the same silence is nothing.
    let (mut client, server) = tokio::io::duplex(64 * 1024);
    let session = tokio::spawn(imap_session(server, true, config));
    client.write_all(LOGIN).await.unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("a0 OK") {
        let n = client.read(&mut buf).await.unwrap();
        assert!(n > 0, "{}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    let quiet =
        tokio::time::timeout(std::time::Duration::from_secs(600), client.read(&mut buf)).await;
    assert!(quiet.is_err(), "still open after ten silent minutes");
    session.abort();
}
