//! Whole-store maintenance (SQLite backend): integrity check and online backup.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::path::Path;
use std::thread;
use std::time::Duration;

use rusqlite::Connection;
use rusqlite::backup::{Backup, StepResult};

use crate::blobs::{self, SqliteBlobs};
use crate::error::{Error, Result};
use crate::model::CheckReport;

/// File name of the database inside a store's root directory.
pub const DB_FILE: &str = "store.db";

/// Distinct blobs the database references: live messages, archive entries,
/// queued messages, timer envelopes and virus store entries.
fn referenced(conn: &Connection) -> Result<BTreeSet<String>> {
    let mut stmt = conn.prepare(&blobs::referenced_sql())?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Runs SQLite's integrity check, and compares each account's usage counter with
/// its messages; returns the complaints (none when healthy).
fn integrity(conn: &Connection) -> Result<Vec<String>> {
    let mut stmt = conn.prepare("PRAGMA integrity_check")?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    let mut lines: Vec<String> = rows
        .collect::<rusqlite::Result<Vec<_>>>()?
        .into_iter()
        .filter(|l| l != "ok")
        .collect();
    let mut stmt = conn.prepare(
        "SELECT a.address, a.used, (SELECT COALESCE(SUM(m.size), 0) FROM messages m
             JOIN folders f ON m.folder_id = f.id WHERE f.account_id = a.id AND m.expunged = 0)
         FROM accounts a",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    for row in rows {
        let (address, used, sum) = row?;
        if used != sum {
            lines.push(format!(
                "account {address}: usage counter {used}, messages {sum} bytes"
            ));
        }
    }
    Ok(lines)
}

/// Checks the store at `db_path` on a connection of its own (the store's reader stays
/// free): SQLite's integrity and every referenced inline blob re-hashed in one read
/// transaction, then the files of the other referenced blobs after it.
pub fn check(db_path: &Path, blobs: &SqliteBlobs) -> Result<CheckReport> {
    let mut conn = crate::schema::connect(db_path)?;
    let mut report = CheckReport::default();
    let mut files = Vec::new();
    {
        let tx = conn.transaction()?;
        report.database = integrity(&tx)?;
        for hash in referenced(&tx)? {
            report.blobs_checked += 1;
            match blobs::read_inline(&tx, &hash) {
                Ok(Some(bytes)) if blobs::matches(&hash, &bytes) => {}
                // A value of the wrong type is corrupt too.
                Ok(Some(_))
                | Err(Error::InvalidHash(_))
                | Err(Error::Sqlite(rusqlite::Error::InvalidColumnType(..))) => {
                    report.corrupt.push(hash)
                }
                Ok(None) => files.push(hash),
                Err(e) => return Err(e),
            }
        }
    }
    for hash in files {
        match blobs.read_file(&hash) {
            Ok(bytes) if blobs::matches(&hash, &bytes) => {}
            Ok(_) => report.corrupt.push(hash),
            Err(Error::BlobMissing(_)) => report.missing.push(hash),
            Err(e) => return Err(e),
        }
    }
    report.corrupt.sort();
    Ok(report)
}

/// Copies the database at `src_db` with SQLite's online backup (one step, so
/// one consistent snapshot even while the writer commits; inline blobs are part of
/// it), then the blob files that snapshot references, into `dest` laid out as a store
/// root. Returns the number of referenced blobs, inline and files.
pub fn backup(src_db: &Path, blobs: &SqliteBlobs, dest: &Path) -> Result<u64> {
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
    // Inline blobs came with the database; the others are files to copy.
    let mut files = Vec::new();
    for hash in &hashes {
        if !blobs::stored_inline(&dst, hash)? {
            files.push(hash);
        }
    }
    drop(dst);
    File::open(&dest_db)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io(&dest_db, e))?;
    let dest_blobs = SqliteBlobs::open(dest)?;
    for hash in files {
        dest_blobs.write_file(hash, &blobs.read_file(hash)?)?;
    }
    Ok(hashes.len() as u64)
}
