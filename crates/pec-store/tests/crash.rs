//! "Nothing acknowledged is lost": a child process (this test binary re-run
//! with an environment variable) delivers messages from several threads and
//! prints each acknowledgement; the parent kills it with SIGKILL mid-flight,
//! reopens the store, and finds every acknowledged message with its bytes.
//!
//! SIGKILL loses everything not yet handed to the kernel, so this proves the
//! store acknowledges only after writing and committing; it cannot simulate
//! power loss (that is what the fsyncs are for).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use pec_store::{Directory, Mailboxes, Maintenance, NewAccount, SqliteStore};

const CHILD_ENV: &str = "PEC_STORE_CRASH_CHILD";
const ADDR: &str = "crash@pec.example.it";
const THREADS: u32 = 4;

/// The bytes of message `seq` of writer thread `t`, so the parent can rebuild them.
fn body(t: u32, seq: u32) -> Vec<u8> {
    let mut b = format!("From: t{t}@example.it\r\nSubject: {seq}\r\n\r\n").into_bytes();
    for _ in 0..(seq % 40 + 1) {
        b.extend_from_slice(b"payload line for the crash test\r\n");
    }
    b
}

/// Child side: deliver until killed (or until a safety limit if the parent vanished).
#[test]
fn crash_child() {
    let Ok(root) = std::env::var(CHILD_ENV) else {
        return; // Only meaningful when started by the parent test.
    };
    let store = std::sync::Arc::new(SqliteStore::open(root.as_ref()).unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let store = store.clone();
            thread::spawn(move || {
                let mut seq = 0;
                while Instant::now() < deadline {
                    let d = store.deliver(ADDR, "INBOX", &body(t, seq), &[], 0).unwrap();
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ACK {t} {seq} {} {}", d.uid, d.hash).unwrap();
                    out.flush().unwrap();
                    seq += 1;
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
}

#[test]
fn acknowledged_deliveries_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SqliteStore::open(dir.path()).unwrap();
        store.add_domain("pec.example.it", u64::MAX).unwrap();
        store
            .create_account(&NewAccount {
                address: ADDR.into(),
                password_hash: "h".into(),
                quota: None,
                receipts_folder: false,
            })
            .unwrap();
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines, acks_rx) = mpsc::channel::<String>();
    let reader = thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        loop {
            let mut line = String::new();
            match r.read_line(&mut line) {
                // A line cut by the kill has no newline: not an acknowledgement.
                Ok(n) if n > 0 && line.ends_with('\n') => {
                    if lines.send(line).is_err() {
                        break;
                    }
                }
                _ => break,
            }
        }
    });

    // Kill once enough acknowledgements arrived (bounded in time either way).
    let mut acks = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while acks.len() < 300 && Instant::now() < deadline {
        if let Ok(line) = acks_rx.recv_timeout(Duration::from_millis(50)) {
            acks.push(line);
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    reader.join().unwrap();
    acks.extend(acks_rx.try_iter());

    let acks: Vec<(u32, u32, u32, String)> = acks
        .iter()
        .filter_map(|l| l.strip_prefix("ACK "))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (
                f[0].parse().unwrap(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
                f[3].to_string(),
            )
        })
        .collect();
    assert!(
        acks.len() >= 10,
        "child acknowledged only {} messages",
        acks.len()
    );

    let store = SqliteStore::open(dir.path()).unwrap();
    for (t, seq, uid, hash) in &acks {
        let bytes = store
            .fetch(ADDR, "INBOX", *uid)
            .unwrap_or_else(|e| panic!("acknowledged uid {uid} lost: {e}"));
        assert_eq!(bytes, body(*t, *seq), "uid {uid} has wrong bytes");
        assert_eq!(&pec_store::blobs::hash_hex(&bytes), hash);
    }
    let report = store.check().unwrap();
    assert!(report.is_ok(), "{report:?}");
    let exists = store.select(ADDR, "INBOX").unwrap().exists as usize;
    assert!(exists >= acks.len());
}
