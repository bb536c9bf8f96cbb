//! The one way every command opens the gestore's store: PostgreSQL when `[store] url` is
//! set (shared by every node of the gestore), else the embedded store in
//! `gestore.data_dir`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use pec_store::{PgOptions, PgStore, SqliteStore, Store};

use crate::config::Config;

/// Opens the store `config` names.
pub fn open(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let s = &config.store;
    Ok(match &s.url {
        Some(url) => {
            let options = PgOptions {
                url: url.clone(),
                connections: s.connections,
                lease: Duration::from_secs(s.lease_secs),
                // Each node of a host has a data_dir of its own: a node restarted
                // after a crash takes back its claims at once.
                stable_name: Some(
                    std::path::absolute(&config.gestore.data_dir)
                        .unwrap_or_else(|_| config.gestore.data_dir.clone())
                        .display()
                        .to_string(),
                ),
            };
            Arc::new(PgStore::open(&options).context("cannot open the PostgreSQL store")?)
        }
        None => {
            let dir = &config.gestore.data_dir;
            Arc::new(
                SqliteStore::open(dir)
                    .with_context(|| format!("cannot open the store in {}", dir.display()))?,
            )
        }
    })
}
