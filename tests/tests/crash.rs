//! Killed with SIGKILL during a stream of submissions, the gestore loses nothing it
//! acknowledged: after a restart every acknowledged message has exactly one acceptance
//! receipt, one delivered envelope and one delivery receipt. The server is the real
//! `pecd serve` process; the client is Python's smtplib.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pec_e2e::{free_port, pecd_binary};
use pec_proto::classify::classify;
use pec_store::{SqliteStore, Store};

const MARIO: &str = "mario.rossi@pec.alfa.test";
const ANNA: &str = "anna.bianchi@pec.alfa.test";

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
            start.elapsed() < Duration::from_secs(30),
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

#[test]
fn sigkill_during_submissions_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let (sub, mx) = (free_port(), free_port());
    let config = dir.path().join("pecd.toml");
    std::fs::write(
        &config,
        format!(
            "[gestore]\nname = \"Alfa PEC (lab)\"\ndata_dir = \"data\"\ndomains = [\"pec.alfa.test\"]\n\n\
             [certificates]\ndir = \"certs\"\nid = \"alfa\"\nlab_generate = true\n\n\
             [listen]\nsubmission_tls = \"127.0.0.1:{sub}\"\nmx = \"127.0.0.1:{mx}\"\n\n\
             [dns]\nresolver = \"off\"\n\n[lab]\nmailboxes = [\"{MARIO}\", \"{ANNA}\"]\n"
        ),
    )
    .unwrap();
    let ca = dir.path().join("certs/ca.pem");

    let mut server = serve(&config);
    wait_port(sub);
    let mut client = Command::new("python3")
        .arg("-c")
        .arg(CLIENT)
        .arg(sub.to_string())
        .arg(&ca)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3");
    let stdout = client.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .filter_map(|l| l.strip_prefix("ACK ").and_then(|n| n.parse::<u64>().ok()))
            .collect::<Vec<u64>>()
    });
    // Let a stream of submissions run, then kill the server in the middle of it.
    std::thread::sleep(Duration::from_millis(2500));
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
    let store = SqliteStore::open(&dir.path().join("data")).unwrap();
    let start = Instant::now();
    let settled = |mario: &HashMap<_, _>, anna: &HashMap<_, _>, n: u64| {
        count(mario, "accettazione", n) == 1
            && count(anna, "posta-certificata", n) == 1
            && count(mario, "avvenuta-consegna", n) == 1
    };
    loop {
        let (mario, anna) = (counts(&store, MARIO), counts(&store, ANNA));
        if acked.iter().all(|&n| settled(&mario, &anna, n)) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "not settled after restart"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Nothing twice, acknowledged or not.
    let (mario, anna) = (counts(&store, MARIO), counts(&store, ANNA));
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
