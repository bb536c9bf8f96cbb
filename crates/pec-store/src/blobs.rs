//! Content-addressed blobs: message bodies are named by their SHA-256, so identical
//! bytes are stored once and any corruption is detectable by re-hashing.
//!
//! Two kinds, decided by size alone ([`is_inline`]):
//!
//! - **Inline** (up to [`INLINE_MAX`] bytes: receipts, envelopes, most messages): a row of
//!   the `blobs` table, written in the same transaction as the rows that reference it, so
//!   it costs no file, no inode and no fsync of its own — the transaction's commit makes
//!   it durable. Rows no longer referenced are deleted ([`release`]) in the transaction
//!   that removes the last reference.
//! - **File** (larger): `<root>/blobs/ab/cdef…` (the first two hex digits name a
//!   directory), written to a temporary file in its final directory, fsynced, renamed
//!   into place, and the directory fsynced ([`SqliteBlobs::prepare`]), before the transaction
//!   that references it is submitted; so once committed, the blob survives a crash.
//!
//! Readers look for a row first, then for a file: stores written before inline blobs
//! existed (every blob a file) keep reading.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{Error, Result};

/// Largest blob stored inside the database; larger ones are files.
pub const INLINE_MAX: usize = 256 * 1024;

/// Whether a blob of `len` bytes is stored inside the database.
pub fn is_inline(len: usize) -> bool {
    len <= INLINE_MAX
}

/// Every column that names a blob, with the condition under which the row keeps the blob
/// alive (an expunged message is a tombstone that no longer needs its bytes).
const REFERENCES: &[(&str, &str, &str)] = &[
    ("messages", "blob", "expunged = 0"),
    ("archive", "blob", "1"),
    ("queue", "blob", "1"),
    ("virus_store", "blob", "1"),
    ("timers", "envelope_blob", "1"),
];

/// SQL listing the distinct blobs the database references.
pub(crate) fn referenced_sql() -> String {
    REFERENCES
        .iter()
        .map(|(table, column, live)| {
            format!("SELECT {column} FROM {table} WHERE {column} IS NOT NULL AND {live}")
        })
        .collect::<Vec<_>>()
        .join(" UNION ")
}

/// Deletes the inline blobs among `hashes` that nothing references any more; called in
/// the transaction that removed references (expunge, purge, a completed queue entry...).
/// File blobs are left alone (content-addressed, so harmless and reused if the bytes
/// come again).
pub(crate) fn release(conn: &Connection, hashes: impl IntoIterator<Item = String>) -> Result<()> {
    let unreferenced = REFERENCES
        .iter()
        .map(|(table, column, live)| {
            format!("NOT EXISTS (SELECT 1 FROM {table} WHERE {column} = ?1 AND {live})")
        })
        .collect::<Vec<_>>()
        .join(" AND ");
    let mut delete = conn.prepare_cached(&format!(
        "DELETE FROM blobs WHERE hash = ?1 AND {unreferenced}"
    ))?;
    for hash in hashes.into_iter().collect::<BTreeSet<_>>() {
        delete.execute([hash])?;
    }
    Ok(())
}

/// Runs `sql`, a statement that removes references to blobs and returns the blob of each
/// row it changed (`... RETURNING blob`), then releases those blobs; returns how many rows
/// it changed.
pub(crate) fn unreference(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<usize> {
    let hashes = conn
        .prepare_cached(sql)?
        .query_map(params, |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let n = hashes.len();
    release(conn, hashes)?;
    Ok(n)
}

/// Whether blob `hash` is stored inline.
pub(crate) fn stored_inline(conn: &Connection, hash: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM blobs WHERE hash = ?1)")?
        .query_row([hash], |r| r.get(0))?)
}

/// The bytes of the inline blob `hash`, or `None` if it is not stored inline.
pub(crate) fn read_inline(conn: &Connection, hash: &str) -> Result<Option<Vec<u8>>> {
    validate(hash)?;
    Ok(conn
        .prepare_cached("SELECT bytes FROM blobs WHERE hash = ?1")?
        .query_row([hash], |r| r.get(0))
        .optional()?)
}

/// Distinguishes temporary files written concurrently by one process.
static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Hex SHA-256 of `bytes`: the name a blob gets in the store.
pub fn hash_hex(bytes: &[u8]) -> String {
    lower_hex(&openssl::sha::sha256(bytes))
}

/// Lower-case hex of `bytes`, as the store writes digests (blob names, log chain).
pub(crate) fn lower_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
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

/// The blobs of one store: its blob directory, and the `blobs` table reached through the
/// connection each method is given.
#[derive(Debug, Clone)]
pub struct SqliteBlobs {
    dir: PathBuf,
}

impl SqliteBlobs {
    /// Opens (creating if needed) the blob directory `<root>/blobs`.
    pub fn open(root: &Path) -> Result<Self> {
        let dir = root.join("blobs");
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        Ok(SqliteBlobs { dir })
    }

    /// Where the file of blob `hash` lives (whether or not it exists).
    pub fn path(&self, hash: &str) -> Result<PathBuf> {
        validate(hash)?;
        Ok(self.dir.join(&hash[..2]).join(&hash[2..]))
    }

    /// The part of storing a blob done before its transaction, off the writer thread:
    /// writes and fsyncs the file of a blob too large to be inline; nothing otherwise.
    pub fn prepare(&self, hash: &str, bytes: &[u8]) -> Result<()> {
        if is_inline(bytes.len()) {
            validate(hash)
        } else {
            self.write_file(hash, bytes)
        }
    }

    /// The part of storing a blob done in its transaction: the row of an inline blob
    /// (nothing if present), or the file of a larger one if [`SqliteBlobs::prepare`] did not
    /// already write it.
    pub(crate) fn store(&self, conn: &Connection, hash: &str, bytes: &[u8]) -> Result<()> {
        if !is_inline(bytes.len()) {
            return self.write_file(hash, bytes);
        }
        validate(hash)?;
        conn.prepare_cached("INSERT OR IGNORE INTO blobs (hash, bytes) VALUES (?1, ?2)")?
            .execute(params![hash, bytes])?;
        Ok(())
    }

    /// Whether blob `hash` is stored, of either kind.
    pub(crate) fn exists(&self, conn: &Connection, hash: &str) -> Result<bool> {
        Ok(stored_inline(conn, hash)? || self.path(hash)?.exists())
    }

    /// Writes the file of blob `hash` durably; does nothing if it exists.
    pub fn write_file(&self, hash: &str, bytes: &[u8]) -> Result<()> {
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

    /// Reads the file of blob `hash`.
    pub fn read_file(&self, hash: &str) -> Result<Vec<u8>> {
        let path = self.path(hash)?;
        fs::read(&path).map_err(|e| match e.kind() {
            ErrorKind::NotFound => Error::BlobMissing(hash.to_string()),
            _ => Error::io(&path, e),
        })
    }
}

/// Whether `bytes` still match their name `hash`.
pub fn matches(hash: &str, bytes: &[u8]) -> bool {
    hash_hex(bytes) == hash
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, Connection, SqliteBlobs) {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = crate::schema::connect(&dir.path().join("b.db")).unwrap();
        crate::schema::migrate(&mut conn).unwrap();
        let blobs = SqliteBlobs::open(dir.path()).unwrap();
        (dir, conn, blobs)
    }

    #[test]
    fn hash_of_known_input() {
        assert_eq!(
            hash_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn small_blobs_are_rows_large_ones_files() {
        let (dir, conn, blobs) = setup();
        let small = b"hello".to_vec();
        let large = vec![b'x'; INLINE_MAX + 1];
        for bytes in [&small, &large] {
            let h = hash_hex(bytes);
            blobs.prepare(&h, bytes).unwrap();
            blobs.store(&conn, &h, bytes).unwrap();
            blobs.store(&conn, &h, bytes).unwrap();
            assert!(blobs.exists(&conn, &h).unwrap());
        }
        let (hs, hl) = (hash_hex(&small), hash_hex(&large));
        assert_eq!(read_inline(&conn, &hs).unwrap(), Some(small));
        assert!(!blobs.path(&hs).unwrap().exists());
        assert_eq!(read_inline(&conn, &hl).unwrap(), None);
        assert_eq!(blobs.read_file(&hl).unwrap(), large);
        let p = dir.path().join("blobs").join(&hl[..2]).join(&hl[2..]);
        assert!(p.is_file());
    }

    #[test]
    fn write_file_is_idempotent_and_leaves_no_temp_files() {
        let (dir, _conn, blobs) = setup();
        let h = hash_hex(b"same");
        blobs.write_file(&h, b"same").unwrap();
        blobs.write_file(&h, b"same").unwrap();
        let entries: Vec<_> = fs::read_dir(dir.path().join("blobs").join(&h[..2]))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(entries.len(), 1, "{entries:?}");
        assert!(matches(&h, &blobs.read_file(&h).unwrap()));
        let other = hash_hex(b"never stored");
        assert!(matches!(
            blobs.read_file(&other),
            Err(Error::BlobMissing(_))
        ));
    }

    #[test]
    fn release_deletes_only_unreferenced_inline_blobs() {
        let (_dir, conn, blobs) = setup();
        let (kept, gone) = (hash_hex(b"kept"), hash_hex(b"gone"));
        blobs.store(&conn, &kept, b"kept").unwrap();
        blobs.store(&conn, &gone, b"gone").unwrap();
        conn.execute(
            "INSERT INTO archive (address, blob, size, direction, kind, stored_at)
             VALUES ('a@x.it', ?1, 4, 'sent', 'k', 0)",
            [&kept],
        )
        .unwrap();
        release(&conn, [kept.clone(), gone.clone()]).unwrap();
        assert!(blobs.exists(&conn, &kept).unwrap());
        assert!(!blobs.exists(&conn, &gone).unwrap());
    }

    #[test]
    fn rejects_malformed_hashes() {
        let (_dir, conn, blobs) = setup();
        for bad in ["", "../etc/passwd", &"A".repeat(64), &"0".repeat(63)] {
            assert!(
                matches!(blobs.read_file(bad), Err(Error::InvalidHash(_))),
                "{bad}"
            );
            assert!(
                matches!(read_inline(&conn, bad), Err(Error::InvalidHash(_))),
                "{bad}"
            );
            assert!(
                matches!(blobs.store(&conn, bad, b"x"), Err(Error::InvalidHash(_))),
                "{bad}"
            );
        }
    }
}
