//! An IMAP session fed arbitrary client bytes must never panic nor hang.
//!
//! Each input is prefixed with a valid login and SELECT so the fuzzer also reaches the
//! authenticated and selected states (FETCH, STORE, SEARCH...). To keep thousands of
//! inputs a second: the store lives on tmpfs (`/dev/shm`, where fsync costs nothing),
//! the password hash uses argon2's smallest parameters, and one runtime serves every
//! input.
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use argon2::password_hash::{PasswordHasher, SaltString};
use pec_imap::{Config, Limits, Notifier, imap_session};
use pec_store::{NewAccount, SqliteStore, Store};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Lab {
    _dir: tempfile::TempDir,
    config: Arc<Config>,
    runtime: tokio::runtime::Runtime,
}

/// A PEC-like message (an attached message with parts) and a deeply nested one.
fn messages() -> Vec<Vec<u8>> {
    let pec = b"From: a@pec.example.it\r\nTo: anna@pec.example.it\r\nSubject: s\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\n\
testo\r\n--b1\r\nContent-Type: message/rfc822\r\n\r\nFrom: m@x.it\r\nSubject: dentro\r\n\
Content-Type: multipart/alternative; boundary=\"b2\"\r\n\r\n--b2\r\n\r\nuno\r\n--b2\r\n\
Content-Type: text/html\r\n\r\n<p>due</p>\r\n--b2--\r\n--b1--\r\n"
        .to_vec();
    let mut deep = b"Subject: deep\r\n".to_vec();
    for i in 0..300 {
        deep.extend_from_slice(
            format!("Content-Type: multipart/mixed; boundary=\"d{i}\"\r\n\r\n--d{i}\r\n").as_bytes(),
        );
    }
    deep.extend_from_slice(b"\r\nfondo\r\n");
    vec![b"Subject: x\r\n\r\nbody\r\n".to_vec(), pec, deep]
}

fn lab() -> &'static Lab {
    static LAB: OnceLock<Lab> = OnceLock::new();
    LAB.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .tempdir_in("/dev/shm")
            .or_else(|_| tempfile::tempdir())
            .expect("temp dir");
        let store = SqliteStore::open(dir.path()).expect("store");
        store.add_domain("pec.example.it", 100_000_000).expect("domain");
        let cheap = argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            argon2::Params::new(8, 1, 1, None).expect("params"),
        );
        let salt = SaltString::from_b64("c2FsdHNhbHRzYWx0").expect("salt");
        let hash = cheap
            .hash_password(b"segreta", &salt)
            .expect("hash")
            .to_string();
        store
            .create_account(&NewAccount {
                address: "anna@pec.example.it".into(),
                password_hash: hash,
                quota: None,
                receipts_folder: false,
            })
            .expect("account");
        for m in messages() {
            store
                .deliver("anna@pec.example.it", "INBOX", &m, &[], 0)
                .expect("deliver");
        }
        let config = Arc::new(Config {
            store: Arc::new(store),
            notifier: Notifier::new(),
            tls: None,
            limits: Limits {
                max_literal: 64 * 1024,
                auth_failure_delay: Duration::ZERO,
                idle_timeout: Duration::from_secs(1),
                ..Limits::default()
            },
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        Lab {
            _dir: dir,
            config,
            runtime,
        }
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let lab = lab();
    let config = lab.config.clone();
    let mut input = b"f1 LOGIN anna@pec.example.it segreta\r\nf2 SELECT INBOX\r\n".to_vec();
    input.extend_from_slice(data);
    lab.runtime.block_on(async move {
        let (mut client, server) = tokio::io::duplex(256 * 1024);
        let session = tokio::spawn(imap_session(server, true, config));
        let reader = tokio::spawn(async move {
            let mut sink = Vec::new();
            let _ = client.write_all(&input).await;
            let _ = client.shutdown().await;
            let _ = client.read_to_end(&mut sink).await;
        });
        // Errors (a client that breaks the protocol) are fine; panics are not.
        let _ = session.await.expect("session panicked");
        let _ = reader.await;
    });
});
