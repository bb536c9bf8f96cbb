//! The clamd scanner against a real clamd, run with an offline test signature for the
//! EICAR test string (freshclam cannot download here, and need not: the signature file is
//! written by the test).

use std::net::TcpListener;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use pec_gestore::antivirus::{Clamd, Scanner, Verdict};

/// The EICAR anti-virus test string.
pub const EICAR: &str = r"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

struct ClamdProcess {
    child: Child,
    address: String,
    _dir: tempfile::TempDir,
}

impl Drop for ClamdProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_clamd() -> ClamdProcess {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    std::fs::create_dir(&db).unwrap();
    let hex: String = EICAR.bytes().map(|b| format!("{b:02x}")).collect();
    std::fs::write(
        db.join("pec-lab.ndb"),
        format!("Eicar-Test-Signature:0:*:{hex}\n"),
    )
    .unwrap();
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
    .unwrap();
    let child = Command::new("clamd")
        .arg("-c")
        .arg(&conf)
        .spawn()
        .expect("clamd is required: apt-get install clamav-daemon");
    let address = format!("127.0.0.1:{port}");
    let start = Instant::now();
    while std::net::TcpStream::connect(&address).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "clamd did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    ClamdProcess {
        child,
        address,
        _dir: dir,
    }
}

#[tokio::test]
async fn clamd_finds_the_test_virus_and_passes_clean_mail() {
    let clamd = start_clamd();
    let scanner = Clamd {
        address: clamd.address.clone(),
        timeout: Duration::from_secs(30),
    };
    let clean = b"From: a@b.it\r\nSubject: x\r\n\r\nniente da segnalare\r\n".to_vec();
    assert_eq!(scanner.scan(&clean).await.unwrap(), Verdict::Clean);
    // The test string inside a larger message, split across INSTREAM chunks.
    let mut infected = vec![b'a'; 64 * 1024 - 10];
    infected.extend_from_slice(EICAR.as_bytes());
    infected.extend_from_slice(b"\r\n");
    match scanner.scan(&infected).await.unwrap() {
        Verdict::Infected(name) => assert!(name.starts_with("Eicar-Test-Signature"), "{name}"),
        Verdict::Clean => panic!("EICAR not found"),
    }
    drop(clamd);
    // A scanner that cannot be reached gives no verdict (never "clean").
    assert!(scanner.scan(&clean).await.is_err());
}
