//! Message bytes in PostgreSQL (`blobs`: one `bytea` per SHA-256), reference counted:
//! every row that names a blob holds one reference, taken in the transaction that writes
//! the row ([`hold`]) and given back in the one that removes it ([`release`]); the blob
//! goes with its last reference. Both work under the blob row's lock, so a node releasing
//! a blob and another starting to use it cannot lose it between them. Nothing lives in a
//! node's files: any node reads what any other wrote.

use std::collections::BTreeMap;

use postgres::Transaction;

use crate::blobs::hash_hex;
use crate::error::{Error, Result};

/// Checks that `hash` is 64 lowercase hex digits.
fn validate(hash: &str) -> Result<()> {
    let ok = hash.len() == 64 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidHash(hash.to_string()))
    }
}

/// Takes a reference to blob `hash` holding `bytes`, storing them if they are new. The
/// bytes cross the network only when the blob is not stored yet.
pub fn hold(tx: &mut Transaction<'_>, hash: &str, bytes: &[u8]) -> Result<()> {
    validate(hash)?;
    if add_ref(tx, hash)? {
        return Ok(());
    }
    tx.execute(
        "INSERT INTO blobs (hash, bytes, refs) VALUES ($1, $2, 1)
         ON CONFLICT (hash) DO UPDATE SET refs = blobs.refs + 1",
        &[&hash, &bytes],
    )?;
    Ok(())
}

/// Takes a reference to blob `hash` if it is stored; `false` if it is not.
pub fn add_ref(tx: &mut Transaction<'_>, hash: &str) -> Result<bool> {
    validate(hash)?;
    Ok(tx.execute("UPDATE blobs SET refs = refs + 1 WHERE hash = $1", &[&hash])? > 0)
}

/// Deletes the rows of `table` (the archive or the virus store, which both keep a
/// `stored_at` and a `blob`) stored before `cutoff` and gives back their blobs; returns
/// how many rows went.
pub fn purge_stored_before(
    tx: &mut Transaction<'_>,
    table: &'static str,
    cutoff: i64,
) -> Result<u64> {
    let released: Vec<String> = tx
        .query(
            &format!("DELETE FROM {table} WHERE stored_at < $1 RETURNING blob"),
            &[&cutoff],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let n = released.len() as u64;
    release(tx, released)?;
    Ok(n)
}

/// Gives back one reference for each of `hashes` (a hash may come several times); a blob
/// whose last reference goes is deleted.
pub fn release(tx: &mut Transaction<'_>, hashes: impl IntoIterator<Item = String>) -> Result<()> {
    let mut counts: BTreeMap<String, i64> = BTreeMap::new();
    for h in hashes {
        *counts.entry(h).or_default() += 1;
    }
    for (hash, n) in counts {
        let left = tx.query_opt(
            "UPDATE blobs SET refs = refs - $2 WHERE hash = $1 RETURNING refs",
            &[&hash, &n],
        )?;
        if left.is_some_and(|r| r.get::<_, i64>(0) <= 0) {
            tx.execute("DELETE FROM blobs WHERE hash = $1", &[&hash])?;
        }
    }
    Ok(())
}

/// The bytes of blob `hash`.
pub fn read(tx: &mut Transaction<'_>, hash: &str) -> Result<Vec<u8>> {
    validate(hash)?;
    tx.query_opt("SELECT bytes FROM blobs WHERE hash = $1", &[&hash])?
        .map(|r| r.get(0))
        .ok_or_else(|| Error::BlobMissing(hash.to_string()))
}

/// Every column that names a blob, with the condition under which the row holds it.
const REFERENCES: &[(&str, &str, &str)] = &[
    ("messages", "blob", "NOT expunged"),
    ("archive", "blob", "TRUE"),
    ("queue", "blob", "TRUE"),
    ("virus_store", "blob", "TRUE"),
    ("timers", "envelope_blob", "TRUE"),
];

/// `(hash, references counted from the rows, refs stored if the blob is)` for every
/// blob either referenced or stored, by hash.
pub fn census(tx: &mut Transaction<'_>) -> Result<Vec<(String, i64, Option<i64>)>> {
    let named = REFERENCES
        .iter()
        .map(|(table, column, live)| {
            format!("SELECT {column} AS hash FROM {table} WHERE {column} IS NOT NULL AND {live}")
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    let rows = tx.query(
        &format!(
            "SELECT coalesce(n.hash, b.hash), coalesce(n.count, 0), b.refs
             FROM (SELECT hash, count(*) AS count FROM ({named}) r GROUP BY hash) n
             FULL JOIN blobs b ON b.hash = n.hash
             ORDER BY 1"
        ),
        &[],
    )?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
}

/// Whether the stored bytes of `hash` still hash to it (`None` if not stored).
pub fn intact(tx: &mut Transaction<'_>, hash: &str) -> Result<Option<bool>> {
    Ok(tx
        .query_opt("SELECT bytes FROM blobs WHERE hash = $1", &[&hash])?
        .map(|r| hash_hex(r.get::<_, &[u8]>(0)) == hash))
}
