//! A store that fails is a temporary condition for the IMAP client: `NO [UNAVAILABLE]`
//! (RFC 5530), never an answer about the mailbox such as "no such mailbox" — and the same
//! session works again once the store recovers.

use std::sync::Arc;
use std::time::Duration;

use pec_imap::{Config, Limits, Notifier, hash_password, imap_session};
use pec_store::faulty::{Fault, Faulty};
use pec_store::{Directory, Mailboxes, NewAccount, SqliteStore};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream, ReadHalf, WriteHalf};

const ANNA: &str = "anna@pec.example.it";

/// One client connection, line by line.
struct Client {
    reader: BufReader<ReadHalf<DuplexStream>>,
    writer: WriteHalf<DuplexStream>,
}

impl Client {
    /// Sends `line` and returns every response line up to its tagged one.
    async fn command(&mut self, line: &str) -> String {
        let tag = line.split(' ').next().unwrap();
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .unwrap();
        let mut out = String::new();
        loop {
            let mut l = String::new();
            let n = tokio::time::timeout(Duration::from_secs(20), self.reader.read_line(&mut l))
                .await
                .unwrap()
                .unwrap();
            assert!(n > 0, "connection closed: {out}");
            out.push_str(&l);
            if l.starts_with(&format!("{tag} ")) {
                return out;
            }
        }
    }
}

/// Anna's mailbox on a store that fails on demand, and a session configuration over it.
fn faulty(limits: Limits) -> (tempfile::TempDir, Arc<Faulty<SqliteStore>>, Arc<Config>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Faulty::new(SqliteStore::open(dir.path()).unwrap()));
    store.add_domain("pec.example.it", 10_000_000).unwrap();
    store
        .create_account(&NewAccount {
            address: ANNA.into(),
            password_hash: hash_password("segreta").unwrap(),
            quota: None,
            receipts_folder: false,
        })
        .unwrap();
    let config = Arc::new(Config {
        store: store.clone(),
        notifier: Notifier::new(),
        tls: None,
        limits,
        observer: None,
    });
    (dir, store, config)
}

impl Client {
    /// A session over a pipe, its greeting read.
    async fn start(config: Arc<Config>) -> (Client, tokio::task::JoinHandle<pec_imap::Result<()>>) {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let session = tokio::spawn(imap_session(server, true, config));
        let (reader, writer) = tokio::io::split(client);
        let mut c = Client {
            reader: BufReader::new(reader),
            writer,
        };
        let mut greeting = String::new();
        c.reader.read_line(&mut greeting).await.unwrap();
        assert!(greeting.starts_with("* OK"), "{greeting}");
        (c, session)
    }
}

#[tokio::test]
async fn store_failures_answer_unavailable_and_the_session_recovers() {
    let (_dir, store, config) = faulty(Limits::default());
    store
        .deliver(ANNA, "INBOX", b"Subject: uno\r\n\r\ntesto\r\n", &[], 0)
        .unwrap();
    let (mut c, session) = Client::start(config).await;
    assert!(
        c.command("a1 LOGIN anna@pec.example.it segreta")
            .await
            .contains("a1 OK")
    );

    // Each failing call site: a temporary NO, not "no such mailbox" or "no such message".
    store.fail("list_folders", Fault::Always);
    let out = c.command("a2 LIST \"\" \"*\"").await;
    assert!(out.contains("a2 NO [UNAVAILABLE]"), "{out}");
    store.fail("select", Fault::Always);
    let out = c.command("a3 SELECT INBOX").await;
    assert!(out.contains("a3 NO [UNAVAILABLE]"), "{out}");
    assert!(!out.contains("TRYCREATE"), "{out}");
    store.heal();
    let out = c.command("a4 SELECT INBOX").await;
    assert!(out.contains("* 1 EXISTS") && out.contains("a4 OK"), "{out}");
    store.fail("fetch", Fault::Always);
    let out = c.command("a5 FETCH 1 BODY.PEEK[]").await;
    assert!(out.contains("a5 NO [UNAVAILABLE]"), "{out}");
    store.fail("store_flags", Fault::Always);
    let out = c.command("a6 STORE 1 +FLAGS (\\Flagged)").await;
    assert!(out.contains("a6 NO [UNAVAILABLE]"), "{out}");

    // Recovered: the same session reads and changes the message.
    store.heal();
    let out = c.command("a7 FETCH 1 BODY.PEEK[]").await;
    assert!(
        out.contains("Subject: uno") && out.contains("a7 OK"),
        "{out}"
    );
    let out = c.command("a8 STORE 1 +FLAGS (\\Flagged)").await;
    assert!(out.contains("\\Flagged") && out.contains("a8 OK"), "{out}");
    assert!(c.command("a9 LOGOUT").await.contains("a9 OK"));
    session.await.unwrap().unwrap();
    assert!(store.calls("fetch") >= 2);
}

#[tokio::test]
async fn a_store_failure_at_login_is_not_a_wrong_password() {
    let (_dir, store, config) = faulty(Limits {
        max_auth_failures: 1,
        ..Limits::default()
    });

    // IMAP: a temporary NO that does not count as a failure (one failure would close).
    let (mut c, session) = Client::start(config.clone()).await;
    store.fail("*", Fault::Always);
    for tag in ["a1", "a2"] {
        let out = c
            .command(&format!("{tag} LOGIN anna@pec.example.it segreta"))
            .await;
        assert!(out.contains(&format!("{tag} NO [UNAVAILABLE]")), "{out}");
    }
    store.heal();
    let out = c.command("a3 LOGIN anna@pec.example.it segreta").await;
    assert!(out.contains("a3 OK"), "{out}");
    assert!(c.command("a4 LOGOUT").await.contains("a4 OK"));
    session.await.unwrap().unwrap();

    // POP3: -ERR [SYS/TEMP], then a login that works.
    let (client, server) = tokio::io::duplex(64 * 1024);
    let session = tokio::spawn(pec_imap::pop3_session(server, true, config));
    let (reader, mut writer) = tokio::io::split(client);
    let mut reader = BufReader::new(reader);
    let mut line = String::new();
    reader.read_line(&mut line).await.unwrap();
    store.fail("*", Fault::Always);
    let mut say = async |cmd: &str| {
        writer
            .write_all(format!("{cmd}\r\n").as_bytes())
            .await
            .unwrap();
        let mut l = String::new();
        reader.read_line(&mut l).await.unwrap();
        l
    };
    assert!(say("USER anna@pec.example.it").await.starts_with("+OK"));
    let out = say("PASS segreta").await;
    assert!(out.starts_with("-ERR [SYS/TEMP]"), "{out}");
    store.heal();
    assert!(say("USER anna@pec.example.it").await.starts_with("+OK"));
    let out = say("PASS segreta").await;
    assert!(out.starts_with("+OK"), "{out}");
    assert!(say("QUIT").await.starts_with("+OK"));
    session.await.unwrap().unwrap();
}
