//! What the tests of a gestore's availability need (`nodes_ha.rs`, `db_restart.rs`):
//! `pecd serve` as OS processes on a PostgreSQL store, a TCP proxy standing for a load
//! balancer or an unreachable peer, submission streams that report what the server
//! acknowledged, and per-message counts of what the mailboxes hold.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use pec_proto::classify::classify;
use pec_store::Store;

use crate::pecd_binary;

/// Polls `done` every 100 ms until it holds; panics with `what` after `limit`.
pub fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until something listens on loopback `port`.
pub fn wait_port(port: u16) {
    wait_until(Duration::from_secs(60), &format!("port {port}"), || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
}

/// A `pecd --config F serve` process; killed (SIGKILL) when dropped.
pub struct Server {
    child: Child,
}

impl Server {
    /// Starts `pecd --config <config> serve`, its log in `<config>.log`.
    pub fn start(config: &Path) -> Server {
        let log = std::fs::File::create(config.with_extension("log")).expect("log file");
        let child = Command::new(pecd_binary())
            .arg("--config")
            .arg(config)
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("pecd serve");
        Server { child }
    }

    /// SIGKILL, and waits for the process to be gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether the process still runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A TCP proxy on loopback: while closed it accepts connections and holds them (a peer
/// that answers nothing yet); once open it joins each to the first backend, in turn,
/// that accepts a connection (a load balancer in front of a gestore's nodes).
pub struct Proxy {
    /// Where it listens.
    pub port: u16,
    open: Arc<(Mutex<bool>, Condvar)>,
}

impl Proxy {
    /// Starts a proxy to `backends` (ports on loopback), open or holding.
    pub fn start(backends: Vec<u16>, open: bool) -> Proxy {
        let port = crate::free_port();
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind proxy");
        let gate = Arc::new((Mutex::new(open), Condvar::new()));
        let next = Arc::new(AtomicUsize::new(0));
        let g = gate.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                let (g, next, backends) = (g.clone(), next.clone(), backends.clone());
                std::thread::spawn(move || {
                    let (lock, cv) = &*g;
                    let mut open = lock.lock().unwrap_or_else(|e| e.into_inner());
                    while !*open {
                        open = cv.wait(open).unwrap_or_else(|e| e.into_inner());
                    }
                    drop(open);
                    let first = next.fetch_add(1, Ordering::SeqCst);
                    let backend = (0..backends.len())
                        .map(|i| backends[(first + i) % backends.len()])
                        .find_map(|p| TcpStream::connect(("127.0.0.1", p)).ok());
                    if let Some(backend) = backend {
                        pipe(client, backend);
                    }
                });
            }
        });
        Proxy { port, open: gate }
    }

    /// Lets the held connections and every later one through.
    pub fn open(&self) {
        let (lock, cv) = &*self.open;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cv.notify_all();
    }
}

/// Copies bytes both ways until each side has closed.
fn pipe(a: TcpStream, b: TcpStream) {
    let (Ok(mut a2), Ok(mut b2)) = (a.try_clone(), b.try_clone()) else {
        return;
    };
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut a2, &mut b2);
        let _ = b2.shutdown(std::net::Shutdown::Write);
    });
    let (mut a, mut b) = (a, b);
    let _ = std::io::copy(&mut b, &mut a);
    let _ = a.shutdown(std::net::Shutdown::Write);
    let _ = up.join();
}

/// A submission client in Python (smtplib): sends message after message, numbered, To
/// one recipient and Cc another (optional), printing `ACK n` for each message the
/// server accepted for every recipient and `CODE c n` for each refusal (a refused
/// transaction is followed by the next on the same session, a refused login by a new
/// connection). With `stop`, it ends when the connection fails; else it connects again. A number is never reused:
/// a message whose fate the client did not learn must still not be doubled.
const STREAM: &str = r#"
import smtplib, ssl, sys, time
port, ca, user, password, tag, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
rcpt = sys.argv[7:]
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False

def close(s):
    # Closed now, not when the garbage collector breaks the exception's cycles: the
    # server counts open connections per client.
    if s is not None:
        try:
            s.close()
        except Exception:
            pass
    return None

def keep(s):
    # A refused transaction leaves the session usable: the next message goes on it.
    try:
        s.rset()
        time.sleep(0.02)
        return s
    except Exception:
        return close(s)

s = None
for n in range(100000):
    try:
        if s is None:
            s = smtplib.SMTP_SSL("127.0.0.1", port, context=ctx, timeout=30)
            s.login(user, password)
        cc = "Cc: %s\r\n" % rcpt[1] if len(rcpt) > 1 else ""
        msg = ("From: %s\r\nTo: %s\r\n%sSubject: flusso %s %d\r\nMessage-ID: <%s-%d@ha.test>\r\n\r\ntesto %d\r\n"
               % (user, rcpt[0], cc, tag, n, tag, n, n))
        refused = s.sendmail(user, rcpt, msg)
        if refused:
            for code, _ in refused.values():
                print("CODE", code, n, flush=True)
        else:
            print("ACK", n, flush=True)
    except smtplib.SMTPRecipientsRefused as e:
        for code, _ in e.recipients.values():
            print("CODE", code, n, flush=True)
        s = keep(s)
    except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as e:
        print("CODE", e.smtp_code, n, flush=True)
        s = keep(s)
    except smtplib.SMTPResponseException as e:
        print("CODE", e.smtp_code, n, flush=True)
        s = close(s)
    except (OSError, smtplib.SMTPException) as e:
        print("DROP", n, e, flush=True)
        s = close(s)
        if mode == "stop":
            sys.exit(0)
        time.sleep(0.1)
"#;

/// What a [`Stream`] has seen so far.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    /// The numbers of the messages acknowledged (`250` for every recipient).
    pub acked: Vec<u64>,
    /// Every reply code of a refusal.
    pub codes: Vec<u16>,
    /// Connections that failed.
    pub drops: usize,
    /// Why the last one failed.
    pub last_drop: String,
    /// The highest number tried.
    pub last: u64,
}

/// A running submission stream (see [`STREAM`]); the client is killed when dropped.
pub struct Stream {
    /// The stream's tag, in each Message-ID: `<tag-n@ha.test>`.
    pub tag: String,
    child: Child,
    seen: Arc<Mutex<Seen>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Stream {
    /// Starts a stream to submission port `port` as `user` (password
    /// `secret-<local part>`) to `rcpt`; `stop_on_drop`: end at the first failed
    /// connection.
    pub fn start(
        port: u16,
        ca: &Path,
        user: &str,
        tag: &str,
        rcpt: &[&str],
        stop_on_drop: bool,
    ) -> Stream {
        let local = user.split('@').next().unwrap_or(user);
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(STREAM)
            .arg(port.to_string())
            .arg(ca)
            .arg(user)
            .arg(format!("secret-{local}"))
            .arg(tag)
            .arg(if stop_on_drop { "stop" } else { "retry" })
            .args(rcpt)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3");
        let stdout = child.stdout.take().expect("stdout");
        let seen = Arc::new(Mutex::new(Seen::default()));
        let s = seen.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let words: Vec<&str> = line.split_whitespace().collect();
                let mut seen = s.lock().unwrap_or_else(|e| e.into_inner());
                let n = |i: usize| words.get(i).and_then(|w| w.parse::<u64>().ok());
                match words.first() {
                    Some(&"ACK") => {
                        if let Some(n) = n(1) {
                            seen.acked.push(n);
                            seen.last = seen.last.max(n);
                        }
                    }
                    Some(&"CODE") => {
                        if let (Some(c), Some(n)) = (n(1), n(2)) {
                            seen.codes.push(c as u16);
                            seen.last = seen.last.max(n);
                        }
                    }
                    Some(&"DROP") => {
                        seen.drops += 1;
                        seen.last_drop = words.get(2..).unwrap_or_default().join(" ");
                        if let Some(n) = n(1) {
                            seen.last = seen.last.max(n);
                        }
                    }
                    _ => {}
                }
            }
        });
        Stream {
            tag: tag.to_string(),
            child,
            seen,
            reader: Some(reader),
        }
    }

    /// What it has seen so far.
    pub fn seen(&self) -> Seen {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Kills the client and returns what it saw; a message it was sending stays
    /// unacknowledged (and must still not be doubled).
    pub fn stop(mut self) -> Seen {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The reader ends with the pipe, after the last lines.
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        self.seen()
    }

    /// Whether the client still runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the INBOXes of some mailboxes hold, by (kind, Message-ID of the original).
#[derive(Debug, Default)]
pub struct Holdings {
    /// (address, kind, original Message-ID) → how many.
    pub count: HashMap<(String, String, String), usize>,
    /// (sender address, original Message-ID) → the recipient of each delivery receipt.
    pub consegne: HashMap<(String, String), Vec<String>>,
}

impl Holdings {
    /// Reads the INBOXes of `addresses` in `store`, classifying each message once and
    /// keeping those that refer to a Message-ID ending in `@ha.test>`.
    pub fn read(store: &dyn Store, addresses: &[&str]) -> Holdings {
        let mut h = Holdings::default();
        for address in addresses {
            let Ok(messages) = store.messages(address, "INBOX") else {
                continue;
            };
            for m in messages {
                let Ok(bytes) = store.fetch(address, "INBOX", m.uid) else {
                    continue;
                };
                let c = classify(&bytes);
                let Some(msgid) = c
                    .headers
                    .riferimento_message_id
                    .clone()
                    .filter(|r| r.ends_with("@ha.test>"))
                else {
                    continue;
                };
                let kind = c.kind.as_str().to_string();
                if kind == "avvenuta-consegna" {
                    let to = c
                        .daticert
                        .as_ref()
                        .and_then(|d| d.consegna.clone())
                        .unwrap_or_default();
                    h.consegne
                        .entry((address.to_string(), msgid.clone()))
                        .or_default()
                        .push(to);
                }
                *h.count
                    .entry((address.to_string(), kind, msgid))
                    .or_insert(0) += 1;
            }
        }
        h
    }

    /// How many `kind` messages referring to `msgid` `address`'s INBOX holds.
    pub fn get(&self, address: &str, kind: &str, msgid: &str) -> usize {
        self.count
            .get(&(address.to_string(), kind.to_string(), msgid.to_string()))
            .copied()
            .unwrap_or(0)
    }

    /// Every count of a kind not in `allowed`, as (address, kind, msgid) → count.
    pub fn unexpected(&self, allowed: &[&str]) -> BTreeMap<(String, String, String), usize> {
        self.count
            .iter()
            .filter(|((_, kind, _), _)| !allowed.contains(&kind.as_str()))
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }
}

/// One message a stream sent: its sender and recipients, each with its store.
pub struct Sent<'a> {
    /// The Message-ID.
    pub msgid: String,
    /// The sender.
    pub from: &'a str,
    /// The recipients.
    pub to: &'a [&'a str],
}

/// Where a message stands in `sender`'s and the recipients' holdings: `None` if
/// settled (exactly one accettazione, one envelope per recipient, one delivery receipt
/// per recipient, naming each recipient once), else what is missing or too much.
pub fn unsettled(sent: &Sent, from: &Holdings, to: &[&Holdings]) -> Option<String> {
    let m = &sent.msgid;
    let mut wrong = Vec::new();
    let acc = from.get(sent.from, "accettazione", m);
    if acc != 1 {
        wrong.push(format!("accettazione {acc}"));
    }
    for (r, h) in sent.to.iter().zip(to) {
        let n = h.get(r, "posta-certificata", m);
        if n != 1 {
            wrong.push(format!("busta for {r} {n}"));
        }
    }
    let mut consegne = from
        .consegne
        .get(&(sent.from.to_string(), m.clone()))
        .cloned()
        .unwrap_or_default();
    consegne.sort();
    let mut expected: Vec<String> = sent.to.iter().map(|r| r.to_string()).collect();
    expected.sort();
    if consegne != expected {
        wrong.push(format!("consegne {consegne:?}"));
    }
    (!wrong.is_empty()).then(|| format!("{m}: {}", wrong.join(", ")))
}

/// Runs `pecd --config <config> ARGS` with `stdin`; `Ok(stdout)` if it succeeded, else
/// `Err` with both outputs.
pub fn pecd(config: &Path, args: &[&str], stdin: &[u8]) -> Result<String, String> {
    let out = crate::run_pecd(config, args, stdin);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)))
    }
}

/// Runs a query on the database at `url` on a thread of its own (the synchronous client
/// must not run inside a tokio runtime); each row's columns as text.
pub fn query(url: &str, sql: &str) -> Vec<Vec<Option<String>>> {
    let (url, sql) = (url.to_string(), sql.to_string());
    std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls)
            .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"));
        client
            .simple_query(&sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .into_iter()
            .filter_map(|m| match m {
                postgres::SimpleQueryMessage::Row(r) => {
                    Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
                }
                _ => None,
            })
            .collect()
    })
    .join()
    .expect("SQL thread")
}
