//! A lab of gestori for end-to-end tests: alfa (`pec.alfa.test`) and beta
//! (`pec.beta.test`, `pec.comune.beta.test`) sharing one lab CA and provider index, run in
//! this process exactly as `pecd serve` runs them (same configuration file format, same
//! assembly), with one manual clock so that 24 hours pass in milliseconds. Messages are
//! submitted with Python's smtplib, a client we did not write.
//!
//! Each gestore's store is the embedded SQLite one ([`Lab::start`]) or a fresh database
//! on the test process's PostgreSQL server ([`Lab::start_on`] with [`Backend::Postgres`]);
//! [`e2e_tests!`] runs one test body on both.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use pec_gestore::clock::ManualClock;
use pec_gestore::runtime::{self, Running};
use pec_proto::classify::{Classified, classify};
use pec_proto::labpki::GestoreSpec;
use pec_store::Store;

pub mod ha;

/// A free loopback port for a server of the lab: one allocator per process, shared with
/// the private PostgreSQL servers of the store's tests.
pub use pec_store::test_util::free_port;

/// Which store the lab's gestori use: one test body runs on both (see [`e2e_tests!`]).
pub use pec_store::test_util::Backend;

/// One running gestore of the lab.
pub struct Node {
    /// Its short name (`alfa`, `beta`).
    pub id: String,
    /// Its store, for assertions.
    pub store: Arc<dyn Store>,
    /// Submission with implicit TLS.
    pub submission_port: u16,
    /// The MX.
    pub mx_port: u16,
    /// HTTPS (client set-up).
    pub https_port: u16,
    /// IMAPS.
    pub imaps_port: u16,
    /// POP3S.
    pub pop3s_port: u16,
    /// HTTP (client set-up: autoconfig, Autodiscover).
    pub http_port: u16,
    /// Submission with STARTTLS.
    pub submission_starttls_port: u16,
    /// IMAP with STARTTLS.
    pub imap_port: u16,
    /// POP3 with STLS.
    pub pop3_port: u16,
    /// The URL of its PostgreSQL database (`None` on SQLite).
    pub store_url: Option<String>,
    running: Option<Running>,
}

/// The lab.
pub struct Lab {
    /// Its directory (certificates, data).
    pub dir: tempfile::TempDir,
    /// The shared clock.
    pub clock: Arc<ManualClock>,
    /// The gestori.
    pub nodes: Vec<Node>,
    /// The backend of every gestore's store.
    pub backend: Backend,
}

/// What a lab node is made of.
pub struct NodeSpec {
    /// Short name.
    pub id: &'static str,
    /// Its domains.
    pub domains: &'static [&'static str],
    /// Lab mailboxes (password `secret-<local part>`).
    pub mailboxes: &'static [&'static str],
    /// Extra TOML appended to its configuration (e.g. `[antivirus]`, `[policy]`).
    pub extra: String,
}

/// The two standard lab gestori.
pub fn standard() -> Vec<NodeSpec> {
    vec![
        NodeSpec {
            id: "alfa",
            domains: &["pec.alfa.test"],
            mailboxes: &["mario.rossi@pec.alfa.test"],
            extra: String::new(),
        },
        NodeSpec {
            id: "beta",
            domains: &["pec.beta.test", "pec.comune.beta.test"],
            mailboxes: &[
                "anna.bianchi@pec.beta.test",
                "luca.verdi@pec.beta.test",
                "ufficio.protocollo@pec.comune.beta.test",
            ],
            extra: String::new(),
        },
    ]
}

fn name_of(id: &str) -> String {
    let mut c = id.chars();
    let first: String = c
        .next()
        .map(|f| f.to_uppercase().collect())
        .unwrap_or_default();
    format!("{first}{} PEC (lab)", c.as_str())
}

impl Lab {
    /// Starts the gestori of `specs`; `extra_index` names gestori that exist only in the
    /// provider index (no server), with their domains.
    pub async fn start(specs: Vec<NodeSpec>, extra_index: &[(&str, &[&str])]) -> Lab {
        Lab::start_on(Backend::Sqlite, specs, extra_index).await
    }

    /// As [`Lab::start`], each gestore's store on `backend` (on PostgreSQL, a fresh
    /// database of the shared test server, written as `[store] url` in its config).
    pub async fn start_on(
        backend: Backend,
        specs: Vec<NodeSpec>,
        extra_index: &[(&str, &[&str])],
    ) -> Lab {
        Lab::start_with_routes_on(backend, specs, extra_index, &[]).await
    }

    /// As [`Lab::start`], with extra static routes (domain, port on loopback), e.g. to an
    /// ordinary mail server; a route for a lab domain replaces the lab's own.
    pub async fn start_with_routes(
        specs: Vec<NodeSpec>,
        extra_index: &[(&str, &[&str])],
        extra_routes: &[(&str, u16)],
    ) -> Lab {
        Lab::start_with_routes_on(Backend::Sqlite, specs, extra_index, extra_routes).await
    }

    /// As [`Lab::start_with_routes`], each gestore's store on `backend`.
    pub async fn start_with_routes_on(
        backend: Backend,
        specs: Vec<NodeSpec>,
        extra_index: &[(&str, &[&str])],
        extra_routes: &[(&str, u16)],
    ) -> Lab {
        let dir = tempfile::tempdir().expect("temp dir");
        // The lab PKI is valid from the real now: the lab clock starts there.
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let mut gestori: Vec<GestoreSpec> = specs
            .iter()
            .map(|s| GestoreSpec {
                id: s.id.into(),
                provider_name: name_of(s.id),
                domains: s.domains.iter().map(|d| d.to_string()).collect(),
            })
            .collect();
        gestori.extend(extra_index.iter().map(|(id, domains)| GestoreSpec {
            id: id.to_string(),
            provider_name: name_of(id),
            domains: domains.iter().map(|d| d.to_string()).collect(),
        }));
        let pki_dir = dir.path().join("pki");
        pecd::certs::write_lab(&pki_dir, gestori, 3650, false).expect("lab PKI");
        let ports: Vec<[u16; 9]> = specs.iter().map(|_| [(); 9].map(|_| free_port())).collect();
        let mut routes = String::from("[routes]\n");
        for (domain, port) in extra_routes {
            routes.push_str(&format!("\"{domain}\" = \"127.0.0.1:{port}\"\n"));
        }
        for (s, p) in specs.iter().zip(&ports) {
            // An extra route for a lab domain replaces the lab's own (e.g. through a proxy).
            for d in s
                .domains
                .iter()
                .filter(|d| !extra_routes.iter().any(|(e, _)| e == *d))
            {
                routes.push_str(&format!("\"{d}\" = \"127.0.0.1:{}\"\n", p[1]));
            }
        }
        let mut nodes = Vec::new();
        for (s, p) in specs.iter().zip(&ports) {
            let config_path = dir.path().join(format!("{}.toml", s.id));
            let mailboxes: Vec<String> = s.mailboxes.iter().map(|m| format!("\"{m}\"")).collect();
            let domains: Vec<String> = s.domains.iter().map(|m| format!("\"{m}\"")).collect();
            let store_url = (backend == Backend::Postgres)
                .then(|| pec_store::test_util::shared_server().database());
            // Few connections per node: a test binary runs several labs at once on one
            // server.
            let store = store_url
                .as_ref()
                .map(|u| format!("[store]\nurl = \"{u}\"\nconnections = 4\n\n"))
                .unwrap_or_default();
            let text = format!(
                "[gestore]\nname = \"{name}\"\nhostname = \"mx.{d0}\"\ndata_dir = \"data-{id}\"\ndomains = [{domains}]\n\n\
                 [certificates]\ndir = \"pki\"\nid = \"{id}\"\n\n\
                 [listen]\nsubmission_tls = \"127.0.0.1:{p0}\"\nmx = \"127.0.0.1:{p1}\"\nimaps = \"127.0.0.1:{p2}\"\n\
                 pop3s = \"127.0.0.1:{p3}\"\nhttp = \"127.0.0.1:{p4}\"\nhttps = \"127.0.0.1:{p5}\"\n\
                 submission = \"127.0.0.1:{p6}\"\nimap = \"127.0.0.1:{p7}\"\npop3 = \"127.0.0.1:{p8}\"\n\n\
                 [queue]\nretry_base_secs = 60\nretry_max_secs = 600\n\n[dns]\nresolver = \"off\"\n\n\
                 {store}[lab]\nmailboxes = [{mailboxes}]\n\n{routes}\n{extra}",
                name = name_of(s.id),
                d0 = s.domains[0],
                id = s.id,
                domains = domains.join(", "),
                p0 = p[0],
                p1 = p[1],
                p2 = p[2],
                p3 = p[3],
                p4 = p[4],
                p5 = p[5],
                p6 = p[6],
                p7 = p[7],
                p8 = p[8],
                mailboxes = mailboxes.join(", "),
                extra = s.extra,
            );
            std::fs::write(&config_path, text).expect("write config");
            let config = pecd::config::Config::load(&config_path).expect("config");
            let parts = pecd::serve::assemble(&config, clock.clone()).expect("assemble");
            let store = parts.gestore.store.clone();
            let running = runtime::start(parts).await.expect("start");
            nodes.push(Node {
                id: s.id.into(),
                store,
                submission_port: p[0],
                mx_port: p[1],
                imaps_port: p[2],
                pop3s_port: p[3],
                http_port: p[4],
                https_port: p[5],
                submission_starttls_port: p[6],
                imap_port: p[7],
                pop3_port: p[8],
                store_url,
                running: Some(running),
            });
        }
        Lab {
            dir,
            clock,
            nodes,
            backend,
        }
    }

    /// The node named `id`.
    pub fn node(&self, id: &str) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .expect("no such node")
    }

    /// The lab CA certificate file.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("pki/ca.pem")
    }

    /// Moves the lab clock forward.
    pub fn advance(&self, d: chrono::Duration) {
        self.clock.advance(d);
    }

    /// Stops a node (its store stays readable).
    pub async fn stop(&mut self, id: &str) {
        if let Some(n) = self.nodes.iter_mut().find(|n| n.id == id)
            && let Some(r) = n.running.take()
        {
            r.stop().await;
        }
    }

    /// Stops a node and starts it again from its configuration, on the same store,
    /// ports and clock (what a restart of `pecd serve` does).
    pub async fn restart(&mut self, id: &str) {
        self.stop(id).await;
        let config = pecd::config::Config::load(&self.config(id)).expect("config");
        let parts = pecd::serve::assemble(&config, self.clock.clone()).expect("assemble");
        let store = parts.gestore.store.clone();
        let running = runtime::start(parts).await.expect("start");
        let node = self
            .nodes
            .iter_mut()
            .find(|n| n.id == id)
            .expect("no such node");
        node.store = store;
        node.running = Some(running);
    }

    /// Stops every node.
    pub async fn shutdown(mut self) {
        for n in &mut self.nodes {
            if let Some(r) = n.running.take() {
                r.stop().await;
            }
        }
    }
}

/// Runs each named e2e test body, an `async fn(Backend)`, on both backends:
/// `e2e_tests!(a, b)` makes the tests `a::sqlite`, `a::postgres`, `b::sqlite`,
/// `b::postgres`, each on a two-thread tokio runtime.
#[macro_export]
macro_rules! e2e_tests {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::Backend::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::Backend::Postgres).await
                }
            }
        )*
    };
}

/// Submits `message` with Python's smtplib over implicit TLS, authenticated as `user`
/// (password `secret-<local part>`). `Err` carries smtplib's error.
pub fn submit(
    port: u16,
    ca: &Path,
    user: &str,
    rcpt: &[&str],
    message: &str,
) -> Result<(), String> {
    let local = user.split('@').next().unwrap_or(user);
    let script = r#"
import smtplib, ssl, sys
port, ca, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
rcpt = sys.argv[5:]
msg = sys.stdin.buffer.read()
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False
try:
    s = smtplib.SMTP_SSL("127.0.0.1", port, context=ctx, timeout=30)
    s.login(user, password)
    s.sendmail(user, rcpt, msg)
    s.quit()
except smtplib.SMTPException as e:
    print(e, file=sys.stderr)
    sys.exit(3)
"#;
    run_python(
        script,
        &[
            &port.to_string(),
            &ca.display().to_string(),
            user,
            &format!("secret-{local}"),
        ],
        rcpt,
        message.as_bytes(),
    )
    .map(drop)
}

/// Sends `message` to an MX without authentication (another server or the Internet).
pub fn send_to_mx(port: u16, mail_from: &str, rcpt: &[&str], message: &[u8]) -> Result<(), String> {
    let script = r#"
import smtplib, sys
port, mail_from = int(sys.argv[1]), sys.argv[2]
rcpt = sys.argv[3:]
msg = sys.stdin.buffer.read()
try:
    s = smtplib.SMTP("127.0.0.1", port, timeout=30)
    s.sendmail(mail_from, rcpt, msg)
    s.quit()
except smtplib.SMTPException as e:
    print(e, file=sys.stderr)
    sys.exit(3)
"#;
    run_python(script, &[&port.to_string(), mail_from], rcpt, message).map(drop)
}

/// Runs a Python 3 `script` with `args` then `rest` as arguments and `stdin` as standard
/// input; `Ok` carries its standard output, `Err` its standard error.
pub fn run_python(
    script: &str,
    args: &[&str],
    rest: &[&str],
    stdin: &[u8],
) -> Result<String, String> {
    use std::io::Write;
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .args(rest)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is required");
    if let Some(mut i) = child.stdin.take() {
        i.write_all(stdin).expect("stdin");
    }
    let out = child.wait_with_output().expect("python3");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The messages of `address`'s `folder`, as stored.
pub fn mailbox(store: &dyn Store, address: &str, folder: &str) -> Vec<Vec<u8>> {
    store
        .messages(address, folder)
        .expect("folder")
        .iter()
        .map(|m| store.fetch(address, folder, m.uid).expect("message"))
        .collect()
}

/// Waits (up to 20 s of real time) until `address`'s INBOX holds at least `n` messages.
pub async fn wait_for(store: &dyn Store, address: &str, n: usize) -> Vec<Vec<u8>> {
    wait_in(store, address, "INBOX", n).await
}

/// How long the waits below give the gestori: generous, because CI runs the suite on two
/// loaded cores; a passing test never waits this long, a failing one reports after it.
const WAIT_DEADLINE: Duration = Duration::from_secs(90);

/// Waits until `address`'s `folder` holds at least `n` messages (or the deadline passes).
pub async fn wait_in(store: &dyn Store, address: &str, folder: &str, n: usize) -> Vec<Vec<u8>> {
    wait_until(store, address, folder, |m| m.len() >= n).await
}

/// Waits until `address`'s INBOX holds at least `n` messages of `kind` (or the deadline
/// passes); returns the whole INBOX. Waiting for a count of all messages is not enough
/// when receipts of different kinds race.
pub async fn wait_for_kind(store: &dyn Store, address: &str, kind: &str, n: usize) -> Vec<Vec<u8>> {
    wait_until(store, address, "INBOX", |m| of_kind(m, kind).len() >= n).await
}

/// Waits until `address`'s security archive holds an entry of `kind` (a service mailbox
/// receives the receipts of other gestori there) and returns it; `None` after the
/// deadline. Receipts travel as separate queue entries, so one may still be on its way
/// when another has arrived.
pub async fn wait_archived(
    store: &dyn Store,
    address: &str,
    kind: &str,
) -> Option<pec_store::ArchiveEntry> {
    let start = Instant::now();
    loop {
        let found = store
            .list_archive(address)
            .ok()
            .and_then(|entries| entries.into_iter().find(|e| e.kind == kind));
        if found.is_some() || start.elapsed() > WAIT_DEADLINE {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `probe` returns something (or the deadline passes: then `None`).
pub async fn wait_some<T>(mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(t) = probe() {
            return Some(t);
        }
        if start.elapsed() > WAIT_DEADLINE {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_until(
    store: &dyn Store,
    address: &str,
    folder: &str,
    done: impl Fn(&[Vec<u8>]) -> bool,
) -> Vec<Vec<u8>> {
    let start = Instant::now();
    loop {
        let m = mailbox(store, address, folder);
        if done(&m) || start.elapsed() > WAIT_DEADLINE {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The classified messages of a mailbox with the given kind.
pub fn of_kind(messages: &[Vec<u8>], kind: &str) -> Vec<Classified> {
    messages
        .iter()
        .map(|m| classify(m))
        .filter(|c| c.kind.as_str() == kind)
        .collect()
}

/// The names of the header fields in front of `sent` in `stored`: the trace fields the
/// hops (`Received:`) and the final delivery (`Return-Path:`, `Delivered-To:`) put before
/// a message they pass on unchanged. `None` when `stored` is not `sent` behind whole
/// header fields.
pub fn trace_before(stored: &[u8], sent: &[u8]) -> Option<Vec<String>> {
    let trace = stored.strip_suffix(sent)?;
    let (fields, end) = pec_proto::mime::split_header(trace);
    (end == trace.len()).then(|| fields.iter().map(|f| f.name.to_string()).collect())
}

/// The trace fields of a message delivered into a mailbox from pecd's MX.
pub const DELIVERED_FROM_MX: [&str; 3] = ["Return-Path", "Delivered-To", "Received"];

/// `openssl smime -verify` with the lab root CA alone on a message, for the S/MIME signing
/// purpose: the independent judge (the path goes through the intermediate the signature
/// carries).
pub fn openssl_verifies(ca: &Path, message: &[u8]) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let file = dir.path().join("m.eml");
    std::fs::write(&file, message).map_err(|e| e.to_string())?;
    let out = Command::new("openssl")
        .args(["smime", "-verify", "-purpose", "smimesign", "-CAfile"])
        .arg(ca)
        .arg("-in")
        .arg(&file)
        .args(["-out", "/dev/null"])
        .output()
        .map_err(|e| format!("openssl CLI required: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The EICAR anti-virus test string.
pub const EICAR: &str = r"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

/// A clamd started for a test, with only an offline signature for the EICAR string
/// (freshclam cannot download here, and need not). Killed when dropped.
pub struct Clamd {
    child: std::process::Child,
    /// Its `host:port`.
    pub address: String,
    _dir: tempfile::TempDir,
}

impl Drop for Clamd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts clamd and waits until it answers.
pub fn start_clamd() -> Clamd {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("db");
    std::fs::create_dir(&db).expect("db dir");
    let hex: String = EICAR.bytes().map(|b| format!("{b:02x}")).collect();
    std::fs::write(
        db.join("pec-lab.ndb"),
        format!("Eicar-Test-Signature:0:*:{hex}\n"),
    )
    .expect("signature");
    let port = free_port();
    let conf = dir.path().join("clamd.conf");
    std::fs::write(
        &conf,
        format!(
            "DatabaseDirectory {}\nTCPSocket {port}\nTCPAddr 127.0.0.1\nForeground yes\nLogFile {}\n",
            db.display(),
            dir.path().join("clamd.log").display()
        ),
    )
    .expect("clamd.conf");
    let child = Command::new("clamd")
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("clamd is required: apt-get install clamav-daemon");
    let address = format!("127.0.0.1:{port}");
    let start = Instant::now();
    while std::net::TcpStream::connect(&address).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "clamd did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Clamd {
        child,
        address,
        _dir: dir,
    }
}

/// The `pecd` binary of this build (`cargo test --workspace` builds it).
pub fn pecd_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target directory");
    let bin = dir.join("pecd");
    assert!(
        bin.exists(),
        "{} is missing: run the suite with `cargo test --workspace` (or `cargo build -p pecd`)",
        bin.display()
    );
    bin
}

impl Lab {
    /// The configuration file of node `id`.
    pub fn config(&self, id: &str) -> PathBuf {
        self.dir.path().join(format!("{id}.toml"))
    }

    /// Runs `pecd --config <node's config> ARGS` with `stdin` as standard input.
    pub fn pecd_with_input(&self, node: &str, args: &[&str], stdin: &[u8]) -> std::process::Output {
        run_pecd(&self.config(node), args, stdin)
    }

    /// Runs `pecd --config <node's config> ARGS`.
    pub fn pecd(&self, node: &str, args: &[&str]) -> std::process::Output {
        Command::new(pecd_binary())
            .arg("--config")
            .arg(self.dir.path().join(format!("{node}.toml")))
            .args(args)
            .output()
            .expect("run pecd")
    }
}

/// Runs `pecd --config <config> ARGS` with `stdin` as standard input.
pub fn run_pecd(config: &Path, args: &[&str], stdin: &[u8]) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(pecd_binary())
        .arg("--config")
        .arg(config)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run pecd");
    if let Some(mut i) = child.stdin.take() {
        // pecd may exit without reading its input (a refused command).
        let _ = i.write_all(stdin);
    }
    child.wait_with_output().expect("pecd")
}

/// A private Postfix (`interop/postfix.sh`): the ordinary mail server of
/// `posta.ordinaria.test`, delivering to a Maildir. Stopped when dropped.
pub struct Postfix {
    dir: tempfile::TempDir,
    /// Its SMTP port.
    pub port: u16,
}

impl Postfix {
    /// Starts Postfix on `port`, relaying `routes` (domain, port on loopback), and waits
    /// until it answers.
    pub fn start(port: u16, routes: &[(&str, u16)]) -> Postfix {
        let dir = tempfile::tempdir().expect("temp dir");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../interop/postfix.sh");
        let status = Command::new("bash")
            .arg(&script)
            .arg("up")
            .arg(dir.path().join("postfix"))
            .arg(port.to_string())
            .args(routes.iter().map(|(d, p)| format!("{d}=127.0.0.1:{p}")))
            .status()
            .expect("bash");
        assert!(
            status.success(),
            "postfix did not start (apt-get install postfix)"
        );
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "postfix does not answer"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Postfix { dir, port }
    }

    /// The messages in the Maildir, waiting (up to 30 s) until there are at least `n`.
    pub fn maildir(&self, n: usize) -> Vec<Vec<u8>> {
        let new = self.dir.path().join("postfix/mail/ordinaria/new");
        let start = Instant::now();
        loop {
            let mut files: Vec<Vec<u8>> = std::fs::read_dir(&new)
                .map(|d| {
                    d.filter_map(|e| e.ok())
                        .filter_map(|e| std::fs::read(e.path()).ok())
                        .collect()
                })
                .unwrap_or_default();
            if files.len() >= n || start.elapsed() > Duration::from_secs(30) {
                files.sort();
                return files;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Postfix {
    /// Postfix's log (its `maillog_file`) once a line of it satisfies `done`, waiting up to
    /// WAIT_DEADLINE; panics with the log when none does.
    pub fn log_when(&self, done: impl Fn(&str) -> bool) -> String {
        let path = self.dir.path().join("postfix/postfix.log");
        let start = Instant::now();
        loop {
            let log = std::fs::read_to_string(&path).unwrap_or_default();
            if log.lines().any(&done) {
                return log;
            }
            assert!(
                start.elapsed() < WAIT_DEADLINE,
                "no such line in Postfix's log:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../interop/postfix.sh");
        let _ = Command::new("bash")
            .arg(script)
            .arg("down")
            .arg(self.dir.path().join("postfix"))
            .status();
    }
}
