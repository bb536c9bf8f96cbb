//! What tests of this crate and of the crates above it need to run a store of either
//! backend (feature `test-util`): free loopback ports, a private PostgreSQL server, a
//! fresh database per test, and [`TestStore`], the same test body against SQLite or
//! PostgreSQL.
//!
//! The server comes from Debian's PostgreSQL binaries (`/usr/lib/postgresql/<v>/bin`, or
//! the directory in `PEC_PG_BIN`): `initdb` in a temporary directory, `pg_ctl start` on a
//! free port with trust authentication, listening on 127.0.0.1 and a socket of its own.
//! PostgreSQL refuses to run as root, so under root (CI) it runs as `nobody`. A watchdog
//! shell holds a pipe from the test process and stops the server and removes its
//! directory when the pipe closes — when the [`PgServer`] is dropped, or when the
//! process exits however it exits — so one server per test process ([`shared_server`])
//! is stopped too.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::{PgOptions, PgStore, SqliteStore, Store};

/// A free loopback port for a test server.
///
/// Ports come from 20000–32767, below the kernel's ephemeral range (32768–60999): a port
/// picked by binding port 0 is an ephemeral one and can be taken by any outgoing
/// connection (a relay, a client) before the server binds it, which made tests fail with
/// `AddrInUse`. Each process walks its own slice of the range (offset by its pid) and a
/// port is handed out once per process; a port is returned only if it can be bound now.
pub fn free_port() -> u16 {
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_768;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        (std::process::id().wrapping_mul(211)) % SPAN,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..SPAN {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let port = (LOW + n % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in 20000-32767");
}

/// The directory of the PostgreSQL server binaries: `PEC_PG_BIN`, else the newest
/// `/usr/lib/postgresql/<version>/bin`.
fn binaries() -> PathBuf {
    if let Some(dir) = std::env::var_os("PEC_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server binaries: install the postgresql package (.ci/run does)")
        .filter_map(|e| {
            let e = e.ok()?;
            let v = e.file_name().to_str()?.parse().ok()?;
            Some((v, e.path().join("bin")))
        })
        .filter(|(_, bin)| bin.join("pg_ctl").exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .expect("no /usr/lib/postgresql/<version>/bin/pg_ctl: install postgresql")
        .1
}

/// Whether this process runs as root (whose servers PostgreSQL refuses).
fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// The user that runs the server under root.
const SERVER_USER: &str = "nobody";

/// A command of the server's binaries, run as [`SERVER_USER`] under root.
fn server_command(bin: &Path, program: &str) -> Command {
    let program = bin.join(program);
    let mut c = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", SERVER_USER, "--"]).arg(program);
        c
    } else {
        Command::new(program)
    };
    // A directory the server's user may enter.
    c.current_dir("/");
    c
}

/// Runs `c` to its end; panics with its output if it fails.
fn run(mut c: Command) {
    let out = c
        .output()
        .unwrap_or_else(|e| panic!("cannot run {c:?}: {e}"));
    assert!(
        out.status.success(),
        "{c:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Hands a directory to the server's user (under root).
fn give(dir: &Path) {
    if is_root() {
        let out = Command::new("id")
            .args(["-u", SERVER_USER])
            .output()
            .expect("id");
        let uid: u32 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("uid of the server user");
        std::os::unix::fs::chown(dir, Some(uid), None).expect("chown to the server user");
    }
}

/// A private PostgreSQL server; stopped, and its files removed, when dropped.
pub struct PgServer {
    bin: PathBuf,
    data: PathBuf,
    run_dir: PathBuf,
    port: u16,
    durable: bool,
    watchdog: Mutex<Option<(Child, ChildStdin)>>,
}

impl PgServer {
    /// Makes a database cluster in a new temporary directory and starts a server on it,
    /// without fsync (tests do not survive a power cut, and run faster).
    pub fn start() -> PgServer {
        Self::start_with(false)
    }

    /// The same, with PostgreSQL's durable defaults (fsync, synchronous commit, full
    /// page writes): a commit is on disk when it returns, as with the embedded store, so
    /// `pecd bench` compares like with like.
    pub fn start_durable() -> PgServer {
        Self::start_with(true)
    }

    fn start_with(durable: bool) -> PgServer {
        let bin = binaries();
        let root = tempfile::Builder::new()
            .prefix("pec-pg-")
            .tempdir()
            .expect("temp dir")
            .keep();
        // The server's user must reach its directories.
        std::fs::set_permissions(&root, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        let (data, run_dir) = (root.join("data"), root.join("run"));
        for dir in [&data, &run_dir] {
            std::fs::create_dir(dir).expect("mkdir");
            give(dir);
        }
        let mut initdb = server_command(&bin, "initdb");
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C"])
            .arg("--no-sync");
        run(initdb);
        let mut stop = server_command(&bin, "pg_ctl");
        stop.arg("-D")
            .arg(&data)
            .args(["-m", "immediate", "-w", "stop"]);
        let (watchdog, stdin) = watchdog(&root, &stop);
        let server = PgServer {
            bin,
            data,
            run_dir,
            port: free_port(),
            durable,
            watchdog: Mutex::new(Some((watchdog, stdin))),
        };
        server.resume();
        server
    }

    /// Starts the server again after [`PgServer::halt`], on the same port; returns once
    /// it accepts connections (`pg_ctl -w` polls for that).
    pub fn resume(&self) {
        let mut c = server_command(&self.bin, "pg_ctl");
        c.arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(self.run_dir.join("log"))
            .args(["-w", "-t", "120", "-o"])
            .arg(format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 {} -c max_connections=300",
                self.port,
                self.run_dir.display(),
                if self.durable {
                    ""
                } else {
                    "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
                }
            ))
            .arg("start");
        run(c);
    }

    /// Stops the server (fast shutdown: connections are cut), keeping its data.
    pub fn halt(&self) {
        let mut c = server_command(&self.bin, "pg_ctl");
        c.arg("-D")
            .arg(&self.data)
            .args(["-m", "fast", "-w", "stop"]);
        run(c);
    }

    /// The process id of the server's postmaster (the parent of every backend), to
    /// measure the server's CPU time; `None` if it is not running.
    pub fn postmaster_pid(&self) -> Option<u32> {
        let pid = std::fs::read_to_string(self.data.join("postmaster.pid")).ok()?;
        pid.lines().next()?.trim().parse().ok()
    }

    /// The URL of database `name` on this server.
    pub fn url(&self, name: &str) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Creates a new empty database and returns its URL.
    pub fn database(&self) -> String {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "test_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        sql(&self.url("postgres"), &format!("CREATE DATABASE {name}"));
        self.url(&name)
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let taken = self.watchdog.lock().map(|mut w| w.take());
        if let Ok(Some((mut child, stdin))) = taken {
            drop(stdin);
            let _ = child.wait();
        }
    }
}

/// Starts the shell that, when its standard input closes, runs `stop` and removes `root`.
fn watchdog(root: &Path, stop: &Command) -> (Child, ChildStdin) {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg("echo armed; read -r _ignored; \"$@\" >/dev/null 2>&1; rm -rf -- \"$0\"")
        .arg(root)
        .arg(stop.get_program())
        .args(stop.get_args())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = c.spawn().expect("watchdog shell");
    let mut armed = String::new();
    let stdout = child.stdout.take().expect("watchdog stdout");
    BufReader::new(stdout)
        .read_line(&mut armed)
        .expect("watchdog armed");
    let stdin = child.stdin.take().expect("watchdog stdin");
    (child, stdin)
}

/// The server of this test process, started on first use.
pub fn shared_server() -> &'static PgServer {
    static SERVER: OnceLock<PgServer> = OnceLock::new();
    SERVER.get_or_init(PgServer::start)
}

/// Runs `statements` (separated by `;`) on the database at `url`, on a thread of its
/// own (the synchronous client must not run inside a tokio runtime).
pub fn sql(url: &str, statements: &str) {
    let (url, statements) = (url.to_string(), statements.to_string());
    std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls)
            .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"));
        client
            .batch_execute(&statements)
            .unwrap_or_else(|e| panic!("{statements}: {e}"));
    })
    .join()
    .expect("SQL thread");
}

/// Which backend a [`TestStore`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded store in a temporary directory.
    Sqlite,
    /// A fresh database on the [`shared_server`].
    Postgres,
}

/// Both backends, to run one test body against each.
pub const BACKENDS: [Backend; 2] = [Backend::Sqlite, Backend::Postgres];

/// The SQLite store in `dir`, or the PostgreSQL one at `url`.
fn open_at(dir: &Path, url: Option<&str>) -> Arc<dyn Store> {
    match url {
        None => Arc::new(SqliteStore::open(dir).expect("open SQLite store")),
        Some(url) => Arc::new(PgStore::open(&PgOptions::new(url)).expect("open PG store")),
    }
}

/// A store of either backend for one test, with what it needs to be opened again.
pub struct TestStore {
    /// The store.
    pub store: Arc<dyn Store>,
    /// Its backend.
    pub backend: Backend,
    /// The SQLite store's directory (a scratch directory for PostgreSQL).
    pub dir: tempfile::TempDir,
    /// The PostgreSQL database's URL.
    pub url: Option<String>,
}

impl TestStore {
    /// A new empty store of `backend`.
    pub fn new(backend: Backend) -> TestStore {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = (backend == Backend::Postgres).then(|| shared_server().database());
        TestStore {
            store: open_at(dir.path(), url.as_deref()),
            backend,
            dir,
            url,
        }
    }

    /// Another store on the same data: the SQLite directory opened again, or a new
    /// node on the same PostgreSQL database.
    pub fn open(&self) -> Arc<dyn Store> {
        open_at(self.dir.path(), self.url.as_deref())
    }

    /// Another node with `options` (their URL replaced by this store's); PostgreSQL only.
    pub fn node(&self, mut options: PgOptions) -> PgStore {
        options.url = self.url.clone().expect("a PostgreSQL test store");
        PgStore::open(&options).expect("open PG store")
    }

    /// Runs raw SQL on the store's database behind its back (to damage it on purpose).
    pub fn tamper(&self, statements: &str) {
        match &self.url {
            Some(url) => sql(url, statements),
            None => {
                let conn = rusqlite::Connection::open(self.dir.path().join("store.db"))
                    .expect("open store.db");
                conn.execute_batch(statements)
                    .unwrap_or_else(|e| panic!("{statements}: {e}"));
            }
        }
    }
}

/// Runs each named test body, a `fn(Backend)`, on both backends: `backend_tests!(a, b)`
/// makes the tests `a::sqlite`, `a::postgres`, `b::sqlite`, `b::postgres`.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn sqlite() {
                    super::$name($crate::test_util::Backend::Sqlite)
                }
                #[test]
                fn postgres() {
                    super::$name($crate::test_util::Backend::Postgres)
                }
            }
        )*
    };
}

/// The PEC identificativo of the transaction [`populate`] stores.
pub const POPULATED_ID: &str = "opec.migrate.1@pec.alfa.test";

/// The effect keys [`populate`] stores.
pub fn populated_effects() -> Vec<crate::EffectKey> {
    vec![
        crate::EffectKey::acceptance(POPULATED_ID),
        crate::EffectKey::envelope("Alfa PEC", POPULATED_ID, "luca@pec.beta.test"),
    ]
}

/// Fills `store` with a bit of everything it keeps, through its API: two domains, three
/// mailboxes (one with a `Ricevute` folder and its own quota), folders (one created, one
/// created and deleted, one renamed and unsubscribed), messages with flags, an expunged
/// one (a tombstone), a copy, a message above the inline blob size, security archive
/// copies (one read), a queue entry that was retried, timers (one taken in charge, one whose 12 h
/// notice was sent), the legal log, effect keys and a virus store entry. For tests that
/// move or compare stores ([`contents`]).
pub fn populate(store: &dyn Store) {
    use crate::{
        Batch, Direction, FlagOp, LogEntry, NewAccount, NewDelivery, NewEffect, NewQueueEntry,
        NewTimer, NewVirusEntry, NoticeKind, Outcome,
    };
    const T0: i64 = 1_760_000_000;
    store.add_domain("pec.alfa.test", 1 << 30).unwrap();
    store.add_domain("pec.gamma.test", 5 << 20).unwrap();
    for (address, quota, receipts) in [
        ("anna@pec.alfa.test", None, false),
        ("mario@pec.alfa.test", Some(3 << 20), true),
        ("zeno@pec.gamma.test", None, false),
    ] {
        store
            .create_account(&NewAccount {
                address: address.into(),
                password_hash: format!("$argon2id$fake${address}"),
                quota,
                receipts_folder: receipts,
            })
            .unwrap();
    }
    store
        .add_ente(&crate::Ente {
            name: "comune-alfa".into(),
            domains: vec!["pec.alfa.test".into()],
            allotment: 10 << 30,
        })
        .unwrap();
    for (login, ente) in [
        ("admin@comune.alfa.test", Some("comune-alfa")),
        ("provincia@pec.gamma.test", None),
    ] {
        store
            .add_admin(&crate::Admin {
                login: login.into(),
                ente: ente.map(str::to_string),
                password_hash: format!("$argon2id$fake${login}"),
            })
            .unwrap();
    }
    for (kind, at) in [
        (crate::MAILBOX_CREATED, T0),
        (crate::MAILBOX_REMOVED, T0 + 86_400),
    ] {
        store
            .record_mailbox_event(&crate::MailboxEvent {
                address: "gone@pec.alfa.test".into(),
                kind: kind.into(),
                at,
            })
            .unwrap();
    }
    let anna = "anna@pec.alfa.test";
    store.create_folder(anna, "Gone").unwrap();
    store.delete_folder(anna, "Gone").unwrap();
    store.create_folder(anna, "Lavoro").unwrap();
    store.create_folder(anna, "Vecchi").unwrap();
    store
        .rename_folder(anna, "Vecchi", "Archivio 2025")
        .unwrap();
    store.set_subscribed(anna, "Archivio 2025", false).unwrap();
    for n in 0..4u8 {
        store
            .deliver(
                anna,
                "INBOX",
                format!("Subject: m{n}\r\n\r\nbody {n}\r\n").as_bytes(),
                &[],
                T0 + i64::from(n),
            )
            .unwrap();
    }
    let big: Vec<u8> = (0..300 * 1024u32).map(|i| b'a' + (i % 26) as u8).collect();
    store
        .deliver(anna, "Lavoro", &big, &["\\Flagged".into()], T0 + 10)
        .unwrap();
    store
        .store_flags(anna, "INBOX", &[1, 2], FlagOp::Add, &["\\Seen".into()])
        .unwrap();
    store
        .store_flags(anna, "INBOX", &[2], FlagOp::Add, &["$Label1".into()])
        .unwrap();
    store
        .store_flags(anna, "INBOX", &[3], FlagOp::Add, &["\\Deleted".into()])
        .unwrap();
    store.expunge(anna, "INBOX", None).unwrap();
    store.copy(anna, "INBOX", &[1], "Lavoro").unwrap();
    let archived = store
        .archive(
            anna,
            b"Subject: archived\r\n\r\nsent\r\n",
            Direction::Sent,
            "posta-certificata",
            T0 + 20,
        )
        .unwrap();
    store
        .archive(
            anna,
            b"Subject: archived, unread\r\n\r\nsent\r\n",
            Direction::Sent,
            "posta-certificata",
            T0 + 21,
        )
        .unwrap();
    store
        .set_archive_seen(anna, &[archived.uid], true, None)
        .unwrap();

    let envelope = b"Subject: POSTA CERTIFICATA: prova\r\n\r\nenvelope\r\n".to_vec();
    let log = |event: &str, detail: &str| LogEntry {
        at: T0 + 30,
        at_local: "2025-10-09T10:40:30+02:00".into(),
        event: event.into(),
        msgid: POPULATED_ID.into(),
        original_msgid: "<orig.1@client>".into(),
        sender: "mario@pec.alfa.test".into(),
        recipients: vec!["luca@pec.beta.test".into(), "zeno@pec.gamma.test".into()],
        subject: "prova, con \"virgolette\" e à".into(),
        generated_ids: vec!["<r.1@pec.alfa.test>".into()],
        gestore: "Alfa PEC".into(),
        detail: detail.into(),
    };
    store
        .commit_batch(Batch {
            deliveries: vec![NewDelivery {
                address: "mario@pec.alfa.test".into(),
                folder: "Ricevute".into(),
                bytes: b"Subject: ACCETTAZIONE: prova\r\n\r\nricevuta\r\n".to_vec(),
                flags: vec![],
                internaldate: T0 + 30,
            }],
            registry_events: vec![crate::NewRegistryEvent {
                address: "mario@pec.alfa.test".into(),
                key: format!("accettazione:{POPULATED_ID}:"),
                kind: "accettazione".into(),
                body: r#"{"type":"accettazione"}"#.into(),
                delivery: Some(0),
                push: true,
                at: T0 + 30,
            }],
            archive: vec![crate::NewArchiveCopy {
                address: "mario@pec.alfa.test".into(),
                bytes: envelope.clone(),
                direction: Direction::Sent,
                kind: "posta-certificata".into(),
                at: T0 + 30,
            }],
            queue: vec![NewQueueEntry {
                msgid: POPULATED_ID.into(),
                mail_from: "posta-certificata@pec.alfa.test".into(),
                rcpt_to: vec!["luca@pec.beta.test".into()],
                domain: "pec.beta.test".into(),
                message: envelope.clone(),
                created_at: T0 + 30,
                due_at: T0 + 30,
                expires_at: T0 + 30 + crate::TWENTY_FOUR_HOURS,
            }],
            timers: [
                "luca@pec.beta.test",
                "zeno@pec.gamma.test",
                "ugo@pec.beta.test",
            ]
            .iter()
            .map(|r| NewTimer {
                identificativo: POPULATED_ID.into(),
                recipient: (*r).into(),
                sender: "mario@pec.alfa.test".into(),
                subject: "prova".into(),
                dispatched_at: T0 + 30,
                envelope: Some(crate::blobs::hash_hex(&envelope)),
            })
            .collect(),
            effects: populated_effects()
                .into_iter()
                .map(|key| NewEffect { key, at: T0 + 30 })
                .collect(),
            log: vec![log("accettazione", ""), log("invio", "pec.beta.test")],
            ..Batch::default()
        })
        .unwrap();
    let entry = store.list_queue().unwrap().remove(0);
    store
        .queue_retry(entry.id, T0 + 400, "421 4.7.0 riprovare")
        .unwrap();
    store
        .mark_presa_in_carico(POPULATED_ID, &["luca@pec.beta.test".into()], T0 + 40)
        .unwrap();
    store
        .mark_outcome(POPULATED_ID, "zeno@pec.gamma.test", Outcome::Delivered)
        .unwrap();
    store
        .mark_notice_sent(POPULATED_ID, "ugo@pec.beta.test", NoticeKind::Twelve)
        .unwrap();
    store
        .store_virus(&NewVirusEntry {
            at: T0 + 50,
            msgid: "<infetto@esterno>".into(),
            sender: "x@pec.beta.test".into(),
            recipients: vec![anna.into(), "zeno@pec.gamma.test".into()],
            virus: "Eicar-Test-Signature".into(),
            message: b"Subject: virus\r\n\r\nX5O!P%@AP\r\n".to_vec(),
        })
        .unwrap();
}

/// Everything a client or an auditor can read from `store`, as text, so two stores are
/// compared whole: domains, accounts and usage, folders with their UIDVALIDITY, UIDNEXT
/// and HIGHESTMODSEQ, each message's metadata and bytes, tombstones, the security
/// archive, the legal log and its verification, the queue, the timers of
/// [`POPULATED_ID`], the effect keys of [`populated_effects`], the virus store.
pub fn contents(store: &dyn Store) -> String {
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    line(format!("{:?}", store.list_domains().unwrap()));
    line(format!("{:?}", store.list_enti().unwrap()));
    for login in ["admin@comune.alfa.test", "provincia@pec.gamma.test"] {
        line(format!("{:?}", store.find_admin(login).unwrap()));
    }
    line(format!("{:?}", store.mailbox_events(i64::MAX).unwrap()));
    let events = crate::EventQuery {
        after: 0,
        domains: None,
        limit: 1000,
    };
    line(format!("{:?}", store.registry_events(&events).unwrap()));
    for account in store.list_accounts(None).unwrap() {
        let a = &account.address;
        line(format!("{account:?} {:?}", store.usage(a).unwrap()));
        for folder in store.list_folders(a).unwrap() {
            let f = &folder.name;
            line(format!("  {folder:?} {:?}", store.select(a, f).unwrap()));
            line(format!(
                "  expunged {:?}",
                store.expunged_since(a, f, 0).unwrap()
            ));
            for m in store.messages(a, f).unwrap() {
                let bytes = store.fetch(a, f, m.uid).unwrap();
                line(format!("    {m:?} {}", crate::blobs::hash_hex(&bytes)));
            }
        }
        line(format!(
            "  subscribed {:?}",
            store.subscriptions(a).unwrap()
        ));
        let archived = store.list_archive(a).unwrap();
        for entry in &archived {
            let bytes = store.read_archive(entry.id).unwrap();
            line(format!("  {entry:?} {}", crate::blobs::hash_hex(&bytes)));
        }
        // Only an address with entries surely has its archive folder: reading the
        // folder of another would make it.
        if !archived.is_empty() {
            line(format!(
                "  archive folder {:?} {:?}",
                store.select_archive(a).unwrap(),
                store.archive_messages(a).unwrap()
            ));
        }
    }
    for record in store.search_log(&crate::LogQuery::default()).unwrap() {
        line(format!("{record:?}"));
    }
    line(format!("{:?}", store.verify_log().unwrap()));
    for entry in store.list_queue().unwrap() {
        let bytes = store.read_blob(&entry.hash).unwrap();
        line(format!("{entry:?} {}", bytes.len()));
    }
    line(format!("{:?}", store.timers(POPULATED_ID).unwrap()));
    line(format!(
        "{:?}",
        store.effects_done(&populated_effects()).unwrap()
    ));
    for entry in store.list_virus().unwrap() {
        let bytes = store.read_blob(&entry.hash).unwrap();
        line(format!("{entry:?} {}", bytes.len()));
    }
    out
}
