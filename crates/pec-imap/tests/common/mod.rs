//! What the in-memory session tests share: a store with one mailbox.

use std::sync::Arc;
use std::time::Duration;

use pec_imap::{Config, Limits, Notifier, hash_password};
use pec_net::{AuthLimits, Authenticator};
use pec_store::{Directory, NewAccount, SqliteStore};

/// A fresh store with `anna@pec.example.it` (password `segreta`), no TLS, a 1 ms delay
/// after a failed login and no penalty before the next, and `max_literal` when given.
pub fn config(max_literal: Option<u32>) -> (tempfile::TempDir, Arc<Config>) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    store.add_domain("pec.example.it", 10_000_000).unwrap();
    store
        .create_account(&NewAccount {
            address: "anna@pec.example.it".into(),
            password_hash: hash_password("segreta").unwrap(),
            quota: None,
            receipts_folder: false,
        })
        .unwrap();
    let defaults = Limits::default();
    let config = Config {
        store: Arc::new(store),
        notifier: Notifier::new(),
        tls: None,
        limits: Limits {
            max_literal: max_literal.unwrap_or(defaults.max_literal),
            auth_failure_delay: Duration::from_millis(1),
            auth: Arc::new(Authenticator::new(AuthLimits {
                penalty: Duration::ZERO,
                ..AuthLimits::default()
            })),
            ..defaults
        },
    };
    (dir, Arc::new(config))
}
