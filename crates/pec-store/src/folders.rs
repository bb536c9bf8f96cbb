//! Folder operations (SQLite backend): list, create, rename, delete,
//! subscribe, and the counters SELECT reports.

use rusqlite::{Connection, params};

use crate::accounts::{insert_folder, unique};
use crate::blobs;
use crate::cached;
use crate::error::{Error, Result};
use crate::lookup::{self, from_db, uid_from_db};
use crate::model::{Folder, Selected};

/// The account's folders, INBOX first then by name.
pub fn list(conn: &Connection, addr: &str) -> Result<Vec<Folder>> {
    let (account_id, _) = lookup::account(conn, addr)?;
    let mut stmt = conn.prepare_cached(
        "SELECT name, special_use, system,
                EXISTS (SELECT 1 FROM subscriptions s
                        WHERE s.account_id = f.account_id AND s.name = f.name)
         FROM folders f WHERE account_id = ?1
         ORDER BY name <> 'INBOX', name",
    )?;
    let rows = stmt.query_map([account_id], |r| {
        Ok(Folder {
            name: r.get(0)?,
            special_use: r.get(1)?,
            system: r.get(2)?,
            subscribed: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Creates a user folder.
pub fn create(conn: &Connection, addr: &str, name: &str) -> Result<()> {
    let (account_id, _) = lookup::account(conn, addr)?;
    let name = lookup::folder_name(name)?;
    insert_folder(conn, account_id, &name, None, false)
}

/// Refuses to change a folder created with the account.
fn user_folder(conn: &Connection, folder_id: i64, name: &str) -> Result<()> {
    let system: bool = cached::query_row(
        conn,
        "SELECT system FROM folders WHERE id = ?1",
        [folder_id],
        |r| r.get(0),
    )?;
    if system {
        Err(Error::SystemFolder(name.to_string()))
    } else {
        Ok(())
    }
}

/// Renames a user folder; its messages, UIDs and UIDVALIDITY stay.
pub fn rename(conn: &Connection, addr: &str, from: &str, to: &str) -> Result<()> {
    let (account_id, _) = lookup::account(conn, addr)?;
    let folder_id = lookup::folder(conn, account_id, from)?;
    user_folder(conn, folder_id, from)?;
    let to = lookup::folder_name(to)?;
    cached::execute(
        conn,
        "UPDATE folders SET name = ?1 WHERE id = ?2",
        params![to, folder_id],
    )
    .map_err(|e| unique(e, &to))?;
    // The subscription follows the folder.
    cached::execute(
        conn,
        "UPDATE OR REPLACE subscriptions SET name = ?3 WHERE account_id = ?1 AND name = ?2",
        params![account_id, lookup::folder_name(from)?, to],
    )?;
    Ok(())
}

/// Deletes a user folder and its messages; its subscription stays (RFC 3501 6.3.4).
pub fn delete(conn: &Connection, addr: &str, name: &str) -> Result<()> {
    let (account_id, _) = lookup::account(conn, addr)?;
    let folder_id = lookup::folder(conn, account_id, name)?;
    user_folder(conn, folder_id, name)?;
    // The messages go with the folder (ON DELETE CASCADE): delete them first, so their
    // blobs are released.
    blobs::unreference(
        conn,
        "DELETE FROM messages WHERE folder_id = ?1 RETURNING blob",
        [folder_id],
    )?;
    cached::execute(conn, "DELETE FROM folders WHERE id = ?1", [folder_id])?;
    Ok(())
}

/// Subscribes or unsubscribes a name, whether or not a folder has it (RFC 3501 6.3.6).
pub fn set_subscribed(conn: &Connection, addr: &str, name: &str, on: bool) -> Result<()> {
    let (account_id, _) = lookup::account(conn, addr)?;
    let name = lookup::folder_name(name)?;
    let sql = if on {
        "INSERT OR IGNORE INTO subscriptions (account_id, name) VALUES (?1, ?2)"
    } else {
        "DELETE FROM subscriptions WHERE account_id = ?1 AND name = ?2"
    };
    cached::execute(conn, sql, params![account_id, name])?;
    Ok(())
}

/// The subscribed names, folders or not, by name.
pub fn subscriptions(conn: &Connection, addr: &str) -> Result<Vec<String>> {
    let (account_id, _) = lookup::account(conn, addr)?;
    let mut stmt =
        conn.prepare_cached("SELECT name FROM subscriptions WHERE account_id = ?1 ORDER BY name")?;
    let rows = stmt.query_map([account_id], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ and the message count of a folder.
pub fn select(conn: &Connection, addr: &str, name: &str) -> Result<Selected> {
    let (account_id, _) = lookup::account(conn, addr)?;
    let folder_id = lookup::folder(conn, account_id, name)?;
    let (uidvalidity, uidnext, highestmodseq, exists): (i64, i64, i64, i64) = cached::query_row(
        conn,
        "SELECT uidvalidity, uidnext, highestmodseq,
                (SELECT count(*) FROM messages WHERE folder_id = f.id AND expunged = 0)
         FROM folders f WHERE id = ?1",
        [folder_id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    Ok(Selected {
        uidvalidity: uid_from_db(uidvalidity, "uidvalidity")?,
        uidnext: uid_from_db(uidnext, "uidnext")?,
        highestmodseq: from_db(highestmodseq, "highestmodseq")?,
        exists: uid_from_db(exists, "exists")?,
    })
}
