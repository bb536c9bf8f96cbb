//! Content-addressed blob files: message bodies live outside SQLite, named by
//! their SHA-256, so identical bytes are stored once and any corruption is
//! detectable by re-hashing.
//!
//! Layout: `<root>/blobs/ab/cdef…` (the first two hex digits name a directory).
//! A blob is written to a temporary file in its final directory, fsynced,
//! renamed into place, and the directory fsynced, so once [`Blobs::put`]
//! returns the blob survives a crash; the caller commits the database rows
//! that reference it only afterwards.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// Distinguishes temporary files written concurrently by one process.
static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Hex SHA-256 of `bytes`: the name a blob gets in the store.
pub fn hash_hex(bytes: &[u8]) -> String {
    let digest = openssl::sha::sha256(bytes);
    let mut s = String::with_capacity(64);
    for b in digest {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Checks that `hash` is 64 lowercase hex digits, so it is safe as a file name.
fn validate(hash: &str) -> Result<()> {
    let ok = hash.len() == 64 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidHash(hash.to_string()))
    }
}

/// fsyncs a directory so a rename or creation inside it is durable.
fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

/// The blob directory of one store.
#[derive(Debug, Clone)]
pub struct Blobs {
    dir: PathBuf,
}

impl Blobs {
    /// Opens (creating if needed) the blob directory `<root>/blobs`.
    pub fn open(root: &Path) -> Result<Self> {
        let dir = root.join("blobs");
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        Ok(Blobs { dir })
    }

    /// Where the blob named `hash` lives (whether or not it exists).
    pub fn path(&self, hash: &str) -> Result<PathBuf> {
        validate(hash)?;
        Ok(self.dir.join(&hash[..2]).join(&hash[2..]))
    }

    /// Stores `bytes` durably and returns their hash. Storing bytes that are
    /// already present does nothing and returns the same hash.
    pub fn put(&self, bytes: &[u8]) -> Result<String> {
        let hash = hash_hex(bytes);
        self.put_hashed(&hash, bytes)?;
        Ok(hash)
    }

    /// Like [`Blobs::put`] when the caller already computed `hash` (off the writer thread).
    pub(crate) fn put_hashed(&self, hash: &str, bytes: &[u8]) -> Result<()> {
        let path = self.path(hash)?;
        if path.exists() {
            return Ok(());
        }
        let sub = self.dir.join(&hash[..2]);
        if !sub.exists() {
            fs::create_dir_all(&sub).map_err(|e| Error::io(&sub, e))?;
            sync_dir(&self.dir)?;
        }
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = sub.join(format!(".tmp-{}-{n}", std::process::id()));
        let written = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .and_then(|mut f| {
                f.write_all(bytes)?;
                f.sync_all()
            });
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(Error::io(&tmp, e));
        }
        fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
        sync_dir(&sub)
    }

    /// Reads the blob named `hash`.
    pub fn get(&self, hash: &str) -> Result<Vec<u8>> {
        let path = self.path(hash)?;
        fs::read(&path).map_err(|e| match e.kind() {
            ErrorKind::NotFound => Error::BlobMissing(hash.to_string()),
            _ => Error::io(&path, e),
        })
    }

    /// Re-hashes the blob: `Ok(true)` if its bytes still match its name,
    /// `Ok(false)` if corrupt, [`Error::BlobMissing`] if absent.
    pub fn verify(&self, hash: &str) -> Result<bool> {
        Ok(hash_hex(&self.get(hash)?) == hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_of_known_input() {
        assert_eq!(
            hash_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn put_get_roundtrip_and_layout() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::open(dir.path()).unwrap();
        let h = blobs.put(b"hello").unwrap();
        assert_eq!(blobs.get(&h).unwrap(), b"hello");
        let p = dir.path().join("blobs").join(&h[..2]).join(&h[2..]);
        assert!(p.is_file());
        assert!(blobs.verify(&h).unwrap());
    }

    #[test]
    fn put_is_idempotent_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::open(dir.path()).unwrap();
        let a = blobs.put(b"same").unwrap();
        let b = blobs.put(b"same").unwrap();
        assert_eq!(a, b);
        let entries: Vec<_> = fs::read_dir(dir.path().join("blobs").join(&a[..2]))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(entries.len(), 1, "{entries:?}");
    }

    #[test]
    fn verify_detects_corruption_and_missing() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::open(dir.path()).unwrap();
        let h = blobs.put(b"original").unwrap();
        fs::write(blobs.path(&h).unwrap(), b"tampered").unwrap();
        assert!(!blobs.verify(&h).unwrap());
        let other = hash_hex(b"never stored");
        assert!(matches!(blobs.verify(&other), Err(Error::BlobMissing(_))));
    }

    #[test]
    fn rejects_malformed_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::open(dir.path()).unwrap();
        for bad in ["", "../etc/passwd", &"A".repeat(64), &"0".repeat(63)] {
            assert!(
                matches!(blobs.get(bad), Err(Error::InvalidHash(_))),
                "{bad}"
            );
        }
    }
}
