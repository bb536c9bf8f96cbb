//! What the in-memory session tests share: a store with one mailbox.

use std::sync::Arc;
use std::time::Duration;

use pec_imap::{Config, Limits, Notifier, hash_password, imap_session};
use pec_net::{AuthLimits, Authenticator};
use pec_store::{Directory, NewAccount, SqliteStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

/// The mailbox of [`config`].
#[allow(dead_code)]
pub const USER: &str = "anna@pec.example.it";

/// A fresh store with `anna@pec.example.it` (password `segreta`), no TLS, a 1 ms delay
/// after a failed login and no penalty before the next, and `max_literal` when given.
pub fn config(max_literal: Option<u32>) -> (tempfile::TempDir, Arc<Config>) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    store.add_domain("pec.example.it", 10_000_000).unwrap();
    store
        .create_account(&NewAccount {
            address: USER.into(),
            password_hash: hash_password("segreta").unwrap(),
            quota: None,
            receipts_folder: false,
        })
        .unwrap();
    let defaults = Limits::default();
    let config = Config {
        store: Arc::new(store),
        notifier: Notifier::new(),
        tls: None,
        limits: Limits {
            max_literal: max_literal.unwrap_or(defaults.max_literal),
            auth_failure_delay: Duration::from_millis(1),
            auth: Arc::new(Authenticator::new(AuthLimits {
                penalty: Duration::ZERO,
                ..AuthLimits::default()
            })),
            ..defaults
        },
        observer: None,
    };
    (dir, Arc::new(config))
}

/// Logs in as anna, sends `input` (the client's exact bytes, CRLF-terminated commands and
/// literals) then LOGOUT, and returns everything the server said. Not every test file
/// that shares this module runs scripted sessions.
#[allow(dead_code)]
pub async fn session(config: Arc<Config>, input: &str) -> String {
    let input = format!("l LOGIN anna@pec.example.it segreta\r\n{input}z LOGOUT\r\n");
    exchange(config, input.into_bytes()).await
}

/// Sends `input` as it is (then closes the client's side) and returns everything the
/// server said until it ended the session. The input is written beside the reading, so
/// a server that answers while the client still writes, or ends the session early
/// (BYE), does not block it; a failed write is expected then.
#[allow(dead_code)]
pub async fn exchange(config: Arc<Config>, input: Vec<u8>) -> String {
    let (mut client, server) = tokio::io::duplex(256 * 1024);
    let task = tokio::spawn(imap_session(server, true, config));
    let writer = tokio::spawn(async move {
        let _ = client.write_all(&input).await;
        let _ = client.shutdown().await;
        client
    });
    let mut client = writer.await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), client.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    task.await.unwrap().unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

/// As [`session`], with one command per line of `commands` (trimmed, blank lines skipped).
#[allow(dead_code)]
pub async fn session_lines(config: Arc<Config>, commands: &str) -> String {
    let mut input = String::new();
    for line in commands.lines().filter(|l| !l.trim().is_empty()) {
        input.push_str(line.trim());
        input.push_str("\r\n");
    }
    session(config, &input).await
}

/// A client over an in-memory pipe that reads until what it waits for has arrived (not
/// every test file that shares this module drives one).
#[allow(dead_code)]
pub struct Client {
    stream: DuplexStream,
    seen: Vec<u8>,
}

#[allow(dead_code)]
impl Client {
    pub fn start(config: Arc<Config>) -> Self {
        let (stream, server) = tokio::io::duplex(256 * 1024);
        tokio::spawn(imap_session(server, true, config));
        Client {
            stream,
            seen: Vec::new(),
        }
    }

    pub async fn send(&mut self, line: &str) {
        self.stream.write_all(line.as_bytes()).await.unwrap();
        self.stream.write_all(b"\r\n").await.unwrap();
    }

    /// Reads until the output received after the last call satisfies `done`, failing
    /// after a deadline; returns that output.
    pub async fn until(&mut self, done: impl Fn(&str) -> bool) -> String {
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
    pub async fn command(&mut self, tag: &str, command: &str) -> String {
        self.send(&format!("{tag} {command}")).await;
        let tagged = format!("\r\n{tag} ");
        self.until(|t| t.contains(&tagged) && t.ends_with("\r\n") || t.starts_with(&tagged[2..]))
            .await
    }
}

/// Delivers a small message with `subject` to `folder` of [`USER`] through the store
/// alone (no notification); returns its UID.
#[allow(dead_code)]
pub fn deliver_to(config: &Config, folder: &str, subject: &str) -> u32 {
    let bytes = format!("Subject: {subject}\r\nFrom: a@b.it\r\n\r\nbody\r\n");
    config
        .store
        .deliver(USER, folder, bytes.as_bytes(), &[], 0)
        .unwrap()
        .uid
}

/// [`deliver_to`] the INBOX.
#[allow(dead_code)]
pub fn deliver(config: &Config, subject: &str) {
    deliver_to(config, "INBOX", subject);
}

/// Stores each message (LF line ends turned into CRLF) in anna's INBOX, in order, with
/// INTERNALDATE 0.
#[allow(dead_code)]
pub fn deliver_all(config: &Config, messages: &[&str]) {
    let dated: Vec<(&str, i64)> = messages.iter().map(|m| (*m, 0)).collect();
    deliver_at(config, &dated);
}

/// As [`deliver_all`], each message with its INTERNALDATE (seconds since the epoch).
#[allow(dead_code)]
pub fn deliver_at(config: &Config, messages: &[(&str, i64)]) {
    for (m, internaldate) in messages {
        let bytes = m.replace('\n', "\r\n");
        config
            .store
            .deliver(USER, "INBOX", bytes.as_bytes(), &[], *internaldate)
            .unwrap();
    }
}

/// The untagged lines answering the command tagged `tag` (checked to end in OK).
#[allow(dead_code)]
pub fn reply<'a>(out: &'a str, tag: &str) -> Vec<&'a str> {
    let lines: Vec<&str> = out.split("\r\n").collect();
    let end = lines
        .iter()
        .position(|l| l.starts_with(&format!("{tag} ")))
        .unwrap_or_else(|| panic!("no {tag} in {out}"));
    assert!(
        lines[end].starts_with(&format!("{tag} OK")),
        "{tag}: {}\n{out}",
        lines[end]
    );
    let start = lines[..end]
        .iter()
        .rposition(|l| !l.starts_with('*'))
        .map_or(0, |i| i + 1);
    lines[start..end].to_vec()
}

/// The numbers of the untagged `kind` line (`* SEARCH`, `* SORT`) answering `tag`,
/// up to a parenthesized MODSEQ.
#[allow(dead_code)]
pub fn numbers(out: &str, tag: &str, kind: &str) -> Vec<u32> {
    let lines = reply(out, tag);
    let line = lines
        .iter()
        .find(|l| l.starts_with(kind))
        .unwrap_or_else(|| panic!("no {kind} for {tag}: {out}"));
    line[kind.len()..]
        .split('(')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect()
}
