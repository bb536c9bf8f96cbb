//! A POP3 session fed arbitrary client bytes must never panic nor hang. Each input is
//! prefixed with a valid USER/PASS login so the fuzzer reaches the transaction state
//! (LIST, UIDL, RETR, TOP, DELE, QUIT...). The account's hash has tiny argon2 parameters
//! so password checking does not dominate the run.
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use pec_imap::{Config, Limits, Notifier, pop3_session};
use pec_net::{AuthLimits, Authenticator};
use pec_store::{NewAccount, SqliteStore, Store};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Lab {
    _dir: tempfile::TempDir,
    config: Arc<Config>,
}

fn cheap_hash(password: &str) -> String {
    let params = Params::new(8, 1, 1, None).expect("params");
    let salt = SaltString::encode_b64(b"fuzz lab salt 16").expect("salt");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(password.as_bytes(), &salt)
        .expect("hash")
        .to_string()
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
                password_hash: cheap_hash("segreta"),
                quota: None,
                receipts_folder: false,
            })
            .expect("account");
        for message in [
            &b"Subject: x\r\n\r\nbody\r\n.dot line\r\n"[..],
            b"Subject: y\r\n\r\nno final line end",
        ] {
            store
                .deliver("anna@pec.example.it", "INBOX", message, &[], 0)
                .expect("deliver");
        }
        let config = Arc::new(Config {
            store: Arc::new(store),
            notifier: Notifier::new(),
            tls: None,
            limits: Limits {
                auth_failure_delay: Duration::ZERO,
                idle_timeout: Duration::from_secs(1),
                auth: Arc::new(Authenticator::new(AuthLimits {
                    workers: 1,
                    penalty: Duration::ZERO,
                    ..AuthLimits::default()
                })),
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
        let session = tokio::spawn(pop3_session(server, true, config));
        let mut input = b"USER anna@pec.example.it\r\nPASS segreta\r\n".to_vec();
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
