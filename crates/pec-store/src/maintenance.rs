//! Whole-store maintenance (SQLite backend): integrity check and online backup.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::path::Path;
use std::thread;
use std::time::Duration;

use rusqlite::Connection;
use rusqlite::backup::{Backup, StepResult};

use crate::blobs::Blobs;
use crate::error::{Error, Result};
use crate::model::CheckReport;

/// File name of the database inside a store's root directory.
pub const DB_FILE: &str = "store.db";

/// Distinct blobs the database references: live messages, archive entries,
/// queued messages, timer envelopes and virus store entries.
fn referenced(conn: &Connection) -> Result<BTreeSet<String>> {
    let mut stmt = conn.prepare(
        "SELECT blob FROM messages WHERE expunged = 0 UNION SELECT blob FROM archive
         UNION SELECT blob FROM queue UNION SELECT blob FROM virus_store
         UNION SELECT envelope_blob FROM timers WHERE envelope_blob IS NOT NULL",
    )?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Runs SQLite's integrity check; returns its complaints (none when healthy).
fn integrity(conn: &Connection) -> Result<Vec<String>> {
    let mut stmt = conn.prepare("PRAGMA integrity_check")?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    let lines = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(lines.into_iter().filter(|l| l != "ok").collect())
}

/// Reads what to check under the database lock; the caller then calls
/// [`verify_blobs`] without holding it.
pub fn check_database(conn: &Connection) -> Result<(BTreeSet<String>, Vec<String>)> {
    Ok((referenced(conn)?, integrity(conn)?))
}

/// Re-hashes every blob in `hashes` and fills a report.
pub fn verify_blobs(
    blobs: &Blobs,
    hashes: BTreeSet<String>,
    database: Vec<String>,
) -> Result<CheckReport> {
    let mut report = CheckReport {
        database,
        ..CheckReport::default()
    };
    for hash in hashes {
        report.blobs_checked += 1;
        match blobs.verify(&hash) {
            Ok(true) => {}
            Ok(false) | Err(Error::InvalidHash(_)) => report.corrupt.push(hash),
            Err(Error::BlobMissing(_)) => report.missing.push(hash),
            Err(e) => return Err(e),
        }
    }
    Ok(report)
}

/// Copies the database at `src_db` with SQLite's online backup (one step, so
/// one consistent snapshot even while the writer commits), then the blobs
/// that snapshot references, into `dest` laid out as a store root.
pub fn backup(src_db: &Path, blobs: &Blobs, dest: &Path) -> Result<u64> {
    fs::create_dir_all(dest).map_err(|e| Error::io(dest, e))?;
    let dest_db = dest.join(DB_FILE);
    if dest_db.exists() {
        return Err(Error::AlreadyExists(dest_db.display().to_string()));
    }
    let src = crate::schema::connect(src_db)?;
    let mut dst = Connection::open(&dest_db)?;
    {
        let copy = Backup::new(&src, &mut dst)?;
        while copy.step(-1)? != StepResult::Done {
            thread::sleep(Duration::from_millis(20));
        }
    }
    let hashes = referenced(&dst)?;
    drop(dst);
    File::open(&dest_db)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io(&dest_db, e))?;
    let dest_blobs = Blobs::open(dest)?;
    for hash in &hashes {
        dest_blobs.put_hashed(hash, &blobs.get(hash)?)?;
    }
    Ok(hashes.len() as u64)
}
