//! An IMAP session fed arbitrary client bytes must never panic nor hang.
//! Each input is prefixed with a valid login and SELECT so the fuzzer also
//! reaches the authenticated and selected states (FETCH, STORE, SEARCH...).
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use pec_imap::{Config, Limits, Notifier, imap_session};
use pec_store::{NewAccount, SqliteStore, Store};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Lab {
    _dir: tempfile::TempDir,
    config: Arc<Config>,
}

fn lab() -> &'static Lab {
    static LAB: OnceLock<Lab> = OnceLock::new();
    LAB.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(dir.path()).expect("store");
        store.add_domain("pec.example.it", 10_000_000).expect("domain");
        store
            .create_account(&NewAccount {
                address: "anna@pec.example.it".into(),
                password_hash: pec_imap::hash_password("segreta").expect("hash"),
                quota: None,
                receipts_folder: false,
            })
            .expect("account");
        store
            .deliver("anna@pec.example.it", "INBOX", b"Subject: x\r\n\r\nbody\r\n", &[], 0)
            .expect("deliver");
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
        Lab { _dir: dir, config }
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let config = lab().config.clone();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let (mut client, server) = tokio::io::duplex(256 * 1024);
        let session = tokio::spawn(imap_session(server, true, config));
        let mut input = b"f1 LOGIN anna@pec.example.it segreta\r\nf2 SELECT INBOX\r\n".to_vec();
        input.extend_from_slice(data);
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
