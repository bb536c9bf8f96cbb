//! Killed with SIGKILL during a stream of submissions, the gestore loses nothing it
//! acknowledged: after a restart every acknowledged message has exactly one acceptance
//! receipt, one delivered envelope and one delivery receipt. The server is the real
//! `pecd serve` process; the client is Python's smtplib.

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

fn count(store: &dyn Store, address: &str, kind: &str, n: u64) -> usize {
    let wanted = format!("<{n}@crash.test>");
    store
        .messages(address, "INBOX")
        .unwrap()
        .iter()
        .map(|m| classify(&store.fetch(address, "INBOX", m.uid).unwrap()))
        .filter(|c| {
            c.kind.as_str() == kind && c.headers.riferimento_message_id.as_deref() == Some(&wanted)
        })
        .count()
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
    let settled = |n: u64| {
        count(&store, MARIO, "accettazione", n) == 1
            && count(&store, ANNA, "posta-certificata", n) == 1
            && count(&store, MARIO, "avvenuta-consegna", n) == 1
    };
    while !acked.iter().all(|&n| settled(n)) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "not settled after restart"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Nothing twice, acknowledged or not.
    let last = acked.iter().max().copied().unwrap_or(0) + 1;
    for n in 0..=last {
        assert!(count(&store, MARIO, "accettazione", n) <= 1, "{n}");
        assert!(count(&store, ANNA, "posta-certificata", n) <= 1, "{n}");
        assert!(count(&store, MARIO, "avvenuta-consegna", n) <= 1, "{n}");
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
