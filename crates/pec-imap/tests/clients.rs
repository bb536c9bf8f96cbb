//! Real clients as judges: Python's `imaplib` and `poplib` drive the
//! servers over implicit TLS and STARTTLS/STLS, replaying a mail client's
//! first sync, while this side delivers mail through the store + notifier.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use pec_imap::{Config, Limits, Notifier, hash_password, serve_imap, serve_pop3};
use pec_store::{Direction, Directory, Mailboxes, NewAccount, SqliteStore};
use tokio::net::TcpListener;

const ANNA: &str = "anna@pec.example.it";
const MARIO: &str = "mario@pec.example.it";

const PLAIN_MSG: &[u8] = b"From: Mario Rossi <mario@pec.example.it>\r\n\
To: anna@pec.example.it\r\n\
Subject: Riunione di lunedi\r\n\
Date: Mon, 3 Mar 2025 10:00:00 +0100\r\n\
Message-ID: <m1@pec.example.it>\r\n\
\r\n\
Ciao Anna,\r\n\
.una riga che inizia con un punto\r\n\
a lunedi.\r\n";

const INNER: &[u8] = b"From: mario@pec.example.it\r\n\
To: anna@pec.example.it\r\n\
Subject: Contratto firmato\r\n\
Content-Type: multipart/mixed; boundary=\"in\"\r\n\
\r\n\
--in\r\n\
Content-Type: text/plain\r\n\
\r\n\
In allegato il contratto.\r\n\
--in\r\n\
Content-Type: application/pdf; name=\"contratto.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
JVBERi0xLjQ=\r\n\
--in--\r\n";

fn pec_envelope() -> Vec<u8> {
    let mut m =
        b"From: \"Per conto di: mario@pec.example.it\" <posta-certificata@pec.example.it>\r\n\
To: anna@pec.example.it\r\n\
Subject: POSTA CERTIFICATA: Contratto firmato\r\n\
X-Trasporto: posta-certificata\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"env\"\r\n\
\r\n\
--env\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
Messaggio di posta certificata\r\n\
--env\r\n\
Content-Type: message/rfc822; name=\"postacert.eml\"\r\n\
Content-Disposition: inline; filename=\"postacert.eml\"\r\n\
\r\n"
            .to_vec();
    m.extend_from_slice(INNER);
    m.extend_from_slice(b"\r\n--env--\r\n");
    m
}

struct Lab {
    _dir: tempfile::TempDir,
    files: PathBuf,
    store: Arc<SqliteStore>,
    notifier: Notifier,
    ports: Vec<u16>,
}

/// A store with two accounts, a self-signed certificate and the four
/// listeners (IMAP plain, IMAPS, POP3 plain, POP3S) on loopback.
fn lab(rt: &tokio::runtime::Runtime) -> Lab {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("store")).unwrap());
    store.add_domain("pec.example.it", 10_000_000).unwrap();
    for addr in [ANNA, MARIO] {
        store
            .create_account(&NewAccount {
                address: addr.into(),
                password_hash: hash_password("segreta").unwrap(),
                quota: None,
                receipts_folder: false,
            })
            .unwrap();
    }
    store
        .deliver(ANNA, "INBOX", PLAIN_MSG, &[], 1_740_992_400)
        .unwrap();
    store
        .deliver(ANNA, "INBOX", &pec_envelope(), &[], 1_740_992_500)
        .unwrap();
    store
        .deliver(
            MARIO,
            "INBOX",
            b"Subject: solo per mario\r\n\r\nprivato\r\n",
            &[],
            1_740_992_600,
        )
        .unwrap();
    store
        .archive(
            ANNA,
            &pec_envelope(),
            Direction::Received,
            "posta-certificata",
            1_740_992_500,
        )
        .unwrap();

    let files = dir.path().join("files");
    std::fs::create_dir_all(&files).unwrap();
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    std::fs::write(files.join("cert.pem"), cert.cert.pem()).unwrap();
    std::fs::write(files.join("plain.eml"), PLAIN_MSG).unwrap();
    std::fs::write(files.join("inner.eml"), INNER).unwrap();
    let tls = pec_net::tls::server_config(
        cert.cert.pem().as_bytes(),
        cert.signing_key.serialize_pem().as_bytes(),
    )
    .unwrap();

    let notifier = Notifier::new();
    let config = Arc::new(Config {
        store: store.clone(),
        notifier: notifier.clone(),
        tls: Some(tls),
        limits: Limits {
            max_literal: 1024 * 1024,
            auth_failure_delay: Duration::from_millis(50),
            ..Limits::default()
        },
        observer: None,
    });
    let mut ports = Vec::new();
    for (pop, implicit) in [(false, false), (false, true), (true, false), (true, true)] {
        let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        ports.push(listener.local_addr().unwrap().port());
        let config = config.clone();
        rt.spawn(async move {
            let never = std::future::pending::<()>();
            if pop {
                serve_pop3(listener, config, implicit, never).await
            } else {
                serve_imap(listener, config, implicit, never).await
            }
        });
    }
    Lab {
        _dir: dir,
        files,
        store,
        notifier,
        ports,
    }
}

/// Runs a Python client script; `on_line` sees each line it prints.
fn python(script: &str, args: &[String], mut on_line: impl FnMut(&str)) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(script);
    let mut child = Command::new("python3")
        .arg(&path)
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 is required to run the client tests");
    let stdout = child.stdout.take().unwrap();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        println!("python: {line}");
        on_line(&line);
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "{script} failed: {status}");
}

#[test]
fn imap_first_sync_with_python_imaplib() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let lab = lab(&rt);
    let args = vec![
        lab.ports[0].to_string(),
        lab.ports[1].to_string(),
        lab.files.display().to_string(),
    ];
    let mut woke = false;
    python("imap_client.py", &args, |line| {
        if line == "IDLE_READY" {
            // A delivery from the delivery point, as the gestore makes it.
            lab.store
                .deliver(
                    ANNA,
                    "INBOX",
                    b"Subject: nuova\r\n\r\narrivata durante IDLE\r\n",
                    &[],
                    1_740_999_999,
                )
                .unwrap();
            lab.notifier.changed(ANNA, "INBOX");
            woke = true;
        }
    });
    assert!(woke, "the script never reached IDLE");
}

#[test]
fn imap_archive_with_python_imaplib() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let lab = lab(&rt);
    // Mario's entry first: anna's second entry still gets UID 2 in her archive.
    for (who, at) in [(MARIO, 1_740_992_700), (ANNA, 1_740_992_800)] {
        lab.store
            .archive(
                who,
                b"Subject: copia\r\n\r\nx\r\n",
                Direction::Sent,
                "posta-certificata",
                at,
            )
            .unwrap();
    }
    let args = vec![lab.ports[1].to_string(), lab.files.display().to_string()];
    let mut done = false;
    python("imap_archive.py", &args, |line| {
        done |= line == "archive ok"
    });
    assert!(done, "the script did not finish");
}

#[test]
fn pop3_with_python_poplib() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let lab = lab(&rt);
    let args = vec![
        lab.ports[2].to_string(),
        lab.ports[3].to_string(),
        lab.files.display().to_string(),
    ];
    python("pop3_client.py", &args, |_| {});
    // DELE + QUIT removed the first message for good.
    let left = lab.store.messages(ANNA, "INBOX").unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].uid, 2);
}
