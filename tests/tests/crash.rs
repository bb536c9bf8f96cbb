//! Killed with SIGKILL during a stream of submissions, the gestore loses nothing it
//! acknowledged: after a restart every acknowledged message has exactly one acceptance
//! receipt, one delivered envelope and one delivery receipt. Killed during concurrent IMAP
//! APPENDs and deliveries, every APPEND answered `OK` is in its folder after the restart
//! and `pecd store check` passes. The server is the real `pecd serve` process; the clients
//! are Python's smtplib and imaplib. Both tests run on the embedded store and on
//! PostgreSQL.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pec_e2e::{free_port, pecd_binary};
use pec_proto::classify::classify;
use pec_store::Store;
use pec_store::test_util::Backend;

const MARIO: &str = "mario.rossi@pec.alfa.test";
const ANNA: &str = "anna.bianchi@pec.alfa.test";

/// The tests of this file each load the machine with a server and a stream of clients;
/// they run one at a time so that neither measures the other's load.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serve(config: &std::path::Path) -> Child {
    Command::new(pecd_binary())
        .arg("--config")
        .arg(config)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("pecd serve")
}

fn wait_port(port: u16) {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "pecd did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

const CLIENT: &str = r#"
import smtplib, ssl, sys
port, ca = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False
try:
    s = smtplib.SMTP_SSL("127.0.0.1", port, context=ctx, timeout=10)
    s.login("mario.rossi@pec.alfa.test", "secret-mario.rossi")
    for n in range(100000):
        msg = ("From: mario.rossi@pec.alfa.test\r\nTo: anna.bianchi@pec.alfa.test\r\n"
               "Subject: flusso %d\r\nMessage-ID: <%d@crash.test>\r\n\r\ntesto %d\r\n" % (n, n, n))
        s.sendmail("mario.rossi@pec.alfa.test", ["anna.bianchi@pec.alfa.test"], msg)
        print("ACK", n, flush=True)
except Exception as e:
    print("STOP", e, file=sys.stderr, flush=True)
"#;

/// How many messages of each (kind, n) `address`'s INBOX holds, classifying each message
/// once (the stream acknowledges hundreds of messages: counting per message would make
/// the check quadratic).
fn counts(store: &dyn Store, address: &str) -> HashMap<(String, u64), usize> {
    let mut counts = HashMap::new();
    for m in store.messages(address, "INBOX").unwrap() {
        let c = classify(&store.fetch(address, "INBOX", m.uid).unwrap());
        let n = c
            .headers
            .riferimento_message_id
            .as_deref()
            .and_then(|r| r.strip_prefix('<'))
            .and_then(|r| r.strip_suffix("@crash.test>"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(n) = n {
            *counts.entry((c.kind.as_str().to_string(), n)).or_insert(0) += 1;
        }
    }
    counts
}

/// The count of (`kind`, `n`) in a [`counts`] result.
fn count(counts: &HashMap<(String, u64), usize>, kind: &str, n: u64) -> usize {
    counts.get(&(kind.to_string(), n)).copied().unwrap_or(0)
}

/// Writes the configuration of a lab gestore alfa with MARIO and ANNA into `dir`, its
/// store on `backend` (PostgreSQL: a fresh database of the shared test server).
fn write_config(
    backend: Backend,
    dir: &std::path::Path,
    sub: u16,
    mx: u16,
    imaps: Option<u16>,
) -> std::path::PathBuf {
    let config = dir.join("pecd.toml");
    let imaps = imaps
        .map(|p| format!("imaps = \"127.0.0.1:{p}\"\n"))
        .unwrap_or_default();
    let store = match backend {
        Backend::Sqlite => String::new(),
        // The default lease (300 s): the restarted node (same data_dir) takes back the
        // claims of the killed process at once, without waiting for them to run out.
        Backend::Postgres => format!(
            "[store]\nurl = \"{}\"\n\n",
            pec_store::test_util::shared_server().database()
        ),
    };
    std::fs::write(
        &config,
        format!(
            "[gestore]\nname = \"Alfa PEC (lab)\"\ndata_dir = \"data\"\ndomains = [\"pec.alfa.test\"]\n\n\
             {store}[certificates]\ndir = \"certs\"\nid = \"alfa\"\nlab_generate = true\n\n\
             [listen]\nsubmission_tls = \"127.0.0.1:{sub}\"\nmx = \"127.0.0.1:{mx}\"\n{imaps}\n\
             [dns]\nresolver = \"off\"\n\n[lab]\nmailboxes = [\"{MARIO}\", \"{ANNA}\"]\n"
        ),
    )
    .unwrap();
    config
}

/// Runs `script` with `args`, collecting the numbers it prints as `ACK n` on a thread.
fn acknowledging(script: &str, args: &[String]) -> Acknowledging {
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3");
    let stdout = child.stdout.take().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let counted = count.clone();
    let reader = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .filter_map(|l| l.strip_prefix("ACK ").and_then(|n| n.parse::<u64>().ok()))
            .inspect(|_| {
                counted.fetch_add(1, Ordering::SeqCst);
            })
            .collect::<Vec<u64>>()
    });
    (child, reader, count)
}

/// A client script's process, the thread collecting the numbers it saw acknowledged, and
/// how many so far.
type Acknowledging = (Child, std::thread::JoinHandle<Vec<u64>>, Arc<AtomicUsize>);

/// Waits until every counter has reached `least` (the streams are well under way: the
/// kill then lands in the middle of them, whatever the machine's speed).
fn until_acknowledged(counts: &[&AtomicUsize], least: usize) {
    let deadline = Instant::now() + Duration::from_secs(180);
    while counts.iter().any(|c| c.load(Ordering::SeqCst) < least) {
        assert!(
            Instant::now() < deadline,
            "the clients got too few acknowledgements"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The store `config` names, opened as `pecd` opens it.
fn open_store(config: &std::path::Path) -> std::sync::Arc<dyn Store> {
    pecd::store::open(&pecd::config::Config::load(config).unwrap()).unwrap()
}

pec_store::backend_tests!(
    sigkill_during_submissions_loses_nothing_acknowledged,
    sigkill_during_imap_appends_and_deliveries_loses_nothing_acknowledged,
);

fn sigkill_during_submissions_loses_nothing_acknowledged(backend: Backend) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let (sub, mx) = (free_port(), free_port());
    let config = write_config(backend, dir.path(), sub, mx, None);
    let ca = dir.path().join("certs/ca.pem");

    let mut server = serve(&config);
    wait_port(sub);
    let (mut client, reader, acks) =
        acknowledging(CLIENT, &[sub.to_string(), ca.display().to_string()]);
    // Let a stream of submissions run, then kill the server in the middle of it.
    until_acknowledged(&[&acks], 5);
    server.kill().unwrap();
    server.wait().unwrap();
    let _ = client.wait();
    let acked = reader.join().unwrap();
    assert!(
        acked.len() >= 5,
        "too few submissions before the kill: {}",
        acked.len()
    );

    let mut server = serve(&config);
    wait_port(sub);
    let store = open_store(&config);
    let start = Instant::now();
    let settled = |mario: &HashMap<_, _>, anna: &HashMap<_, _>, n: u64| {
        count(mario, "accettazione", n) == 1
            && count(anna, "posta-certificata", n) == 1
            && count(mario, "avvenuta-consegna", n) == 1
    };
    loop {
        let (mario, anna) = (counts(store.as_ref(), MARIO), counts(store.as_ref(), ANNA));
        if acked.iter().all(|&n| settled(&mario, &anna, n)) {
            break;
        }
        if start.elapsed() > Duration::from_secs(120) {
            let missing: Vec<u64> = acked
                .iter()
                .copied()
                .filter(|&n| !settled(&mario, &anna, n))
                .collect();
            let detail: Vec<String> = missing
                .iter()
                .take(10)
                .map(|&n| {
                    let q = pec_store::LogQuery {
                        msgid: Some(format!("<{n}@crash.test>")),
                        ..Default::default()
                    };
                    let log: Vec<String> = store
                        .search_log(&q)
                        .unwrap_or_default()
                        .iter()
                        .map(|r| format!("{} [{}]", r.entry.event, r.entry.detail))
                        .collect();
                    format!(
                        "{n}: accettazione {}, busta {}, consegna {}; log: {}",
                        count(&mario, "accettazione", n),
                        count(&anna, "posta-certificata", n),
                        count(&mario, "avvenuta-consegna", n),
                        log.join(", ")
                    )
                })
                .collect();
            panic!(
                "not settled 120 s after restart: {} of {} acknowledged: {}",
                missing.len(),
                acked.len(),
                detail.join("; ")
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // Nothing twice, acknowledged or not.
    let (mario, anna) = (counts(store.as_ref(), MARIO), counts(store.as_ref(), ANNA));
    let last = acked.iter().max().copied().unwrap_or(0) + 1;
    for n in 0..=last {
        assert!(count(&mario, "accettazione", n) <= 1, "{n}");
        assert!(count(&anna, "posta-certificata", n) <= 1, "{n}");
        assert!(count(&mario, "avvenuta-consegna", n) <= 1, "{n}");
    }
    assert!(store.check().unwrap().missing.is_empty());
    assert!(store.verify_log().unwrap().fault.is_none());

    // A clean stop on SIGTERM.
    let pid = server.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let start = Instant::now();
    loop {
        if let Some(status) = server.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "no clean stop");
        std::thread::sleep(Duration::from_millis(100));
    }
}

const APPENDER: &str = r#"
import imaplib, ssl, sys
port, ca, folder, tag = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False
try:
    c = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=ctx, timeout=10)
    c.login("mario.rossi@pec.alfa.test", "secret-mario.rossi")
    for n in range(100000):
        msg = ("From: mario.rossi@pec.alfa.test\r\nTo: anna.bianchi@pec.alfa.test\r\n"
               "Subject: append %s %d\r\n\r\n" % (tag, n)) + ("riga %d\r\n" % n) * 200
        typ, _ = c.append(folder, "(\\Seen)", None, msg.encode())
        if typ == "OK":
            print("ACK", n, flush=True)
except Exception as e:
    print("STOP", e, file=sys.stderr, flush=True)
"#;

/// The numbers `n` of the messages `Subject: append <tag> <n>` in `address`'s `folder`.
fn appended(store: &dyn Store, folder: &str, tag: &str) -> Vec<u64> {
    let prefix = format!("Subject: append {tag} ");
    store
        .messages(MARIO, folder)
        .unwrap()
        .iter()
        .filter_map(|m| {
            let bytes = store.fetch(MARIO, folder, m.uid).unwrap();
            let text = String::from_utf8_lossy(&bytes).into_owned();
            text.lines()
                .find_map(|l| l.strip_prefix(&prefix).and_then(|n| n.trim().parse().ok()))
        })
        .collect()
}

fn sigkill_during_imap_appends_and_deliveries_loses_nothing_acknowledged(backend: Backend) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let (sub, mx, imaps) = (free_port(), free_port(), free_port());
    let config = write_config(backend, dir.path(), sub, mx, Some(imaps));
    let ca = dir.path().join("certs/ca.pem").display().to_string();

    let mut server = serve(&config);
    wait_port(sub);
    wait_port(imaps);
    // Three IMAP clients append to two folders while a submission stream delivers to ANNA
    // and files receipts into MARIO's INBOX: all of them write to the store at once.
    let appenders: Vec<_> = [("Sent", "s1"), ("Sent", "s2"), ("Drafts", "d1")]
        .iter()
        .map(|(folder, tag)| {
            let args = [
                imaps.to_string(),
                ca.clone(),
                folder.to_string(),
                tag.to_string(),
            ];
            (*folder, *tag, acknowledging(APPENDER, &args))
        })
        .collect();
    let (mut submitter, submitted, sub_count) =
        acknowledging(CLIENT, &[sub.to_string(), ca.clone()]);
    let mut acks: Vec<&AtomicUsize> = appenders.iter().map(|(_, _, a)| &*a.2).collect();
    acks.push(&sub_count);
    until_acknowledged(&acks, 2);
    server.kill().unwrap();
    server.wait().unwrap();

    let _ = submitter.wait();
    let submitted = submitted.join().unwrap();
    let mut acked = Vec::new();
    for (folder, tag, (mut child, reader, _)) in appenders {
        let _ = child.wait();
        let ns = reader.join().unwrap();
        assert!(
            !ns.is_empty(),
            "no APPEND of {tag} acknowledged before the kill"
        );
        acked.push((folder, tag, ns));
    }

    // Restart: the appends acknowledged are there, once each.
    let mut server = serve(&config);
    wait_port(sub);
    let store = open_store(&config);
    for (folder, tag, ns) in &acked {
        let found = appended(store.as_ref(), folder, tag);
        for n in ns {
            assert_eq!(
                found.iter().filter(|f| *f == n).count(),
                1,
                "APPEND {tag} {n} to {folder} acknowledged but not stored once"
            );
        }
    }
    // The deliveries acknowledged before the kill all arrive.
    let start = Instant::now();
    loop {
        let anna = counts(store.as_ref(), ANNA);
        if submitted
            .iter()
            .all(|&n| count(&anna, "posta-certificata", n) == 1)
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "deliveries not settled 120 s after restart"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // `pecd store check` on the running server's store: every message file intact.
    let check = Command::new(pecd_binary())
        .arg("--config")
        .arg(&config)
        .args(["store", "check"])
        .output()
        .expect("pecd store check");
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{report}");
    assert!(report.contains("store OK"), "{report}");
    server.kill().unwrap();
    server.wait().unwrap();
}
