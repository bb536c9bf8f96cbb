//! IDLE as Thunderbird uses it: news reported where the client ignores it (inside a
//! body FETCH reply) must still wake the client's next IDLE.

mod common;

use std::sync::Arc;
use std::time::Duration;

use pec_imap::{Config, imap_session};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

const USER: &str = "anna@pec.example.it";

/// A client over an in-memory pipe that reads until what it waits for has arrived.
struct Client {
    stream: DuplexStream,
    seen: Vec<u8>,
}

impl Client {
    fn start(config: Arc<Config>) -> Self {
        let (stream, server) = tokio::io::duplex(256 * 1024);
        tokio::spawn(imap_session(server, true, config));
        Client {
            stream,
            seen: Vec::new(),
        }
    }

    async fn send(&mut self, line: &str) {
        self.stream.write_all(line.as_bytes()).await.unwrap();
        self.stream.write_all(b"\r\n").await.unwrap();
    }

    /// Reads until the output received after the last call satisfies `done`, failing
    /// after a deadline; returns that output.
    async fn until(&mut self, done: impl Fn(&str) -> bool) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let mut buf = [0u8; 4096];
        loop {
            let text = String::from_utf8_lossy(&self.seen).into_owned();
            if done(&text) {
                self.seen.clear();
                return text;
            }
            match tokio::time::timeout_at(deadline, self.stream.read(&mut buf)).await {
                Ok(Ok(0)) => panic!("session ended; got {text}"),
                Ok(Ok(n)) => self.seen.extend_from_slice(&buf[..n]),
                Ok(Err(e)) => panic!("read failed: {e}; got {text}"),
                Err(_) => panic!("nothing more within the deadline; got {text}"),
            }
        }
    }

    /// Sends a tagged command and returns its whole reply.
    async fn command(&mut self, tag: &str, command: &str) -> String {
        self.send(&format!("{tag} {command}")).await;
        let tagged = format!("\r\n{tag} ");
        self.until(|t| t.contains(&tagged) && t.ends_with("\r\n") || t.starts_with(&tagged[2..]))
            .await
    }
}

fn deliver(config: &Config, subject: &str) {
    let bytes = format!("Subject: {subject}\r\nFrom: a@b.it\r\n\r\nbody\r\n");
    config
        .store
        .deliver(USER, "INBOX", bytes.as_bytes(), &[], 0)
        .unwrap();
}

/// Thunderbird's sequence from issue 10: while it fetches a receipt's body a new one
/// arrives; pecd reports it inside the FETCH reply, which Thunderbird ignores; the
/// IDLE that follows must say something, or the receipt stays invisible.
#[tokio::test]
async fn news_reported_inside_fetch_wakes_the_next_idle() {
    let (_dir, config) = common::config(None);
    deliver(&config, "accettazione");
    let mut c = Client::start(config.clone());
    c.until(|t| t.contains("\r\n")).await;
    c.command("l", "LOGIN anna@pec.example.it segreta").await;
    let selected = c.command("s", "SELECT INBOX").await;
    assert!(selected.contains("* 1 EXISTS"), "{selected}");

    // The delivery receipt arrives while the client fetches the first message.
    deliver(&config, "consegna");
    config.notifier.changed(USER, "INBOX");
    let fetched = c
        .command("65", "UID fetch 1 (UID RFC822.SIZE BODY.PEEK[])")
        .await;
    let body_at = fetched.find("BODY[]").expect("the body is returned");
    let exists_at = fetched.find("* 2 EXISTS").expect("news inside FETCH");
    assert!(body_at < exists_at, "{fetched}");
    assert!(fetched.contains("65 OK"), "{fetched}");

    // Nothing changes any more: the IDLE must still repeat the news.
    c.send("66 IDLE").await;
    let idle = c
        .until(|t| t.contains("+ ") && t.ends_with("\r\n") && t.contains("\r\n* "))
        .await;
    assert!(idle.contains("* 2 EXISTS"), "{idle}");
    c.send("DONE").await;
    c.until(|t| t.contains("66 OK")).await;

    // Once an IDLE (or NOOP) has told the client, a new IDLE stays quiet until news.
    c.send("67 IDLE").await;
    let quiet = c.until(|t| t.starts_with("+ ")).await;
    assert!(!quiet.contains("EXISTS"), "{quiet}");
    deliver(&config, "terza");
    config.notifier.changed(USER, "INBOX");
    let woke = c.until(|t| t.contains("* 3 EXISTS")).await;
    assert!(woke.contains("* 3 EXISTS"), "{woke}");
    c.send("DONE").await;
    c.until(|t| t.contains("67 OK")).await;

    // News reported in a FETCH, then a NOOP: the NOOP told the client, IDLE is quiet.
    deliver(&config, "quarta");
    config.notifier.changed(USER, "INBOX");
    let fetched = c.command("68", "UID FETCH 1 (FLAGS)").await;
    assert!(fetched.contains("* 4 EXISTS"), "{fetched}");
    let noop = c.command("69", "NOOP").await;
    assert!(noop.contains("69 OK"), "{noop}");
    c.send("70 IDLE").await;
    let quiet = c.until(|t| t.starts_with("+ ")).await;
    assert!(!quiet.contains("EXISTS"), "{quiet}");
    c.send("DONE").await;
    let done = c.until(|t| t.contains("70 OK")).await;
    assert!(!done.contains("EXISTS"), "{done}");
}
