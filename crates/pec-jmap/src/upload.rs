//! Uploaded blobs (RFC 8620 §6.1), kept in memory, per account, for a bounded time and
//! size, until Email/import (or a later upload pushing them out) uses them.
//!
//! Memory, not the store: an upload is not evidence and nothing is acknowledged by it (the
//! message becomes evidence only when it is imported or submitted, and then the store
//! keeps it durably); holding it in the store would need a table, a sweeper and a
//! migration for bytes that live an hour at most. A restart forgets uploads: the client
//! uploads again (RFC 8620 lets a server drop unreferenced blobs).
//!
//! Bounds: each blob at most [`crate::Limits::max_size_upload`] bytes, each account at
//! most [`MAX_ACCOUNT_BYTES`] and [`MAX_ACCOUNT_BLOBS`] (its oldest uploads make room for
//! a new one), all accounts together at most [`MAX_TOTAL_BYTES`] (beyond, an upload is
//! refused as a temporary failure), each blob for [`LIFETIME`].

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long an upload is kept (RFC 8620 §6.1 suggests at least an hour).
pub const LIFETIME: Duration = Duration::from_secs(3600);
/// Most bytes of uploads one account holds.
pub const MAX_ACCOUNT_BYTES: usize = 64 * 1024 * 1024;
/// Most uploads one account holds.
pub const MAX_ACCOUNT_BLOBS: usize = 64;
/// Most bytes of uploads the whole server holds.
pub const MAX_TOTAL_BYTES: usize = 512 * 1024 * 1024;

/// One upload.
struct Upload {
    hash: String,
    bytes: Arc<Vec<u8>>,
    at: Instant,
}

/// The uploads of every account, bounded as the module says.
#[derive(Default)]
pub struct Uploads {
    accounts: Mutex<HashMap<String, VecDeque<Upload>>>,
}

/// Why an upload was not kept.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// The server holds as many upload bytes as it may: try again later.
    Full,
}

impl Uploads {
    /// Keeps `bytes` for `address` and returns their SHA-256 hex (the blob is
    /// `b<hash>`, as a stored message's).
    pub fn put(&self, address: &str, bytes: Vec<u8>) -> Result<String, Refused> {
        let hash = pec_store::blobs::hash_hex(&bytes);
        let now = Instant::now();
        let mut accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        accounts.retain(|_, blobs| {
            blobs.retain(|u| now.duration_since(u.at) < LIFETIME);
            !blobs.is_empty()
        });
        let key = address.to_ascii_lowercase();
        let blobs = accounts.entry(key.clone()).or_default();
        blobs.retain(|u| u.hash != hash);
        let mut held: usize = blobs.iter().map(|u| u.bytes.len()).sum();
        while !blobs.is_empty()
            && (blobs.len() >= MAX_ACCOUNT_BLOBS || held + bytes.len() > MAX_ACCOUNT_BYTES)
        {
            if let Some(old) = blobs.pop_front() {
                held -= old.bytes.len();
            }
        }
        let total: usize = accounts
            .values()
            .flat_map(|b| b.iter().map(|u| u.bytes.len()))
            .sum();
        if total + bytes.len() > MAX_TOTAL_BYTES {
            return Err(Refused::Full);
        }
        accounts.entry(key).or_default().push_back(Upload {
            hash: hash.clone(),
            bytes: Arc::new(bytes),
            at: now,
        });
        Ok(hash)
    }

    /// The bytes `address` uploaded with this SHA-256 hex, if still kept.
    pub fn get(&self, address: &str, hash: &str) -> Option<Arc<Vec<u8>>> {
        let accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        accounts
            .get(&address.to_ascii_lowercase())?
            .iter()
            .find(|u| u.hash == hash && u.at.elapsed() < LIFETIME)
            .map(|u| u.bytes.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_are_per_account_and_bounded() {
        let u = Uploads::default();
        let h = u.put("a@x.it", b"hello".to_vec()).unwrap();
        assert_eq!(
            h,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(
            u.get("A@x.it", &h).as_deref().map(Vec::as_slice),
            Some(&b"hello"[..])
        );
        assert!(u.get("b@x.it", &h).is_none());
        for i in 0..MAX_ACCOUNT_BLOBS {
            u.put("a@x.it", format!("blob {i}").into_bytes()).unwrap();
        }
        assert!(u.get("a@x.it", &h).is_none(), "the oldest made room");
        let accounts = u.accounts.lock().unwrap();
        assert_eq!(accounts["a@x.it"].len(), MAX_ACCOUNT_BLOBS);
    }
}
