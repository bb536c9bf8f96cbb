//! The mailbox the IMAP and POP3 targets log in to.

/// A mailbox lab for the IMAP and POP3 targets: `anna@pec.example.it` (password
/// `segreta`) holding `messages`, on tmpfs when there is one (fsync costs nothing there),
/// with argon2's smallest parameters and no login penalty, so thousands of inputs a second
/// are not spent on password checks.
pub struct MailboxLab {
    _dir: tempfile::TempDir,
    /// The session configuration over the lab's store.
    pub config: std::sync::Arc<pec_imap::Config>,
}

impl MailboxLab {
    /// Builds the lab (once per process: call it from a `OnceLock`).
    pub fn new(messages: &[&[u8]]) -> MailboxLab {
        use std::sync::Arc;
        use std::time::Duration;

        use argon2::password_hash::{PasswordHasher, SaltString};
        use argon2::{Algorithm, Argon2, Params, Version};
        use pec_store::{Directory, Mailboxes, NewAccount, SqliteStore};

        let dir = tempfile::Builder::new()
            .tempdir_in("/dev/shm")
            .or_else(|_| tempfile::tempdir())
            .expect("temp dir");
        let store = SqliteStore::open(dir.path()).expect("store");
        store.add_domain("pec.example.it", 100_000_000).expect("domain");
        let salt = SaltString::encode_b64(b"fuzz lab salt 16").expect("salt");
        let hash = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8, 1, 1, None).expect("params"),
        )
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
        for m in messages {
            store
                .deliver("anna@pec.example.it", "INBOX", m, &[], 0)
                .expect("deliver");
        }
        let config = Arc::new(pec_imap::Config {
            store: Arc::new(store),
            notifier: pec_imap::Notifier::new(),
            tls: None,
            limits: pec_imap::Limits {
                max_literal: 64 * 1024,
                auth_failure_delay: Duration::ZERO,
                idle_timeout: Duration::from_secs(1),
                auth: Arc::new(pec_net::Authenticator::new(pec_net::AuthLimits {
                    workers: 1,
                    penalty: Duration::ZERO,
                    ..pec_net::AuthLimits::default()
                })),
                ..pec_imap::Limits::default()
            },
            observer: None,
        });
        MailboxLab { _dir: dir, config }
    }
}
