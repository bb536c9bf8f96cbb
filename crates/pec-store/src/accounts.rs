//! Domains and accounts (SQLite backend). Creating an account also creates its
//! standard folders, in the same transaction.

use rusqlite::{Connection, ErrorCode, OptionalExtension, Row, params};

use crate::blobs;
use crate::cached;
use crate::error::{Error, Result};
use crate::lookup::{self, from_db, to_db};
use crate::model::{Account, Domain, NewAccount};

/// Folders every account gets: name and RFC 6154 special use.
pub(crate) const STANDARD_FOLDERS: &[(&str, Option<&str>)] = &[
    ("INBOX", None),
    ("Sent", Some("\\Sent")),
    ("Drafts", Some("\\Drafts")),
    ("Trash", Some("\\Trash")),
    ("Junk", Some("\\Junk")),
];

/// Folder where PEC receipts are filed when the account asks for it.
pub const RECEIPTS_FOLDER: &str = "Ricevute";

/// Maps a UNIQUE violation to [`Error::AlreadyExists`].
pub(crate) fn unique(e: rusqlite::Error, name: &str) -> Error {
    match e.sqlite_error_code() {
        Some(ErrorCode::ConstraintViolation) => Error::AlreadyExists(name.to_string()),
        _ => Error::Sqlite(e),
    }
}

/// Adds a domain.
pub fn add_domain(conn: &Connection, name: &str, default_quota: u64) -> Result<()> {
    let name = lookup::domain_name(name)?;
    cached::execute(
        conn,
        "INSERT INTO domains (name, default_quota) VALUES (?1, ?2)",
        params![name, to_db(default_quota)],
    )
    .map_err(|e| unique(e, &name))?;
    Ok(())
}

/// All domains, by name.
pub fn list_domains(conn: &Connection) -> Result<Vec<Domain>> {
    let mut stmt = conn.prepare_cached("SELECT name, default_quota FROM domains ORDER BY name")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    rows.map(|row| {
        let (name, quota) = row?;
        Ok(Domain {
            name,
            default_quota: from_db(quota, "default_quota")?,
        })
    })
    .collect()
}

/// Removes a domain that has no accounts left.
pub fn remove_domain(conn: &Connection, name: &str) -> Result<()> {
    let name = lookup::domain_name(name)?;
    let has_accounts: bool = cached::query_row(
        conn,
        "SELECT EXISTS (SELECT 1 FROM accounts a JOIN domains d ON a.domain_id = d.id
         WHERE d.name = ?1)",
        [&name],
        |r| r.get(0),
    )?;
    if has_accounts {
        return Err(Error::DomainNotEmpty(name));
    }
    match cached::execute(conn, "DELETE FROM domains WHERE name = ?1", [&name])? {
        0 => Err(Error::NoSuchDomain(name)),
        _ => Ok(()),
    }
}

/// Inserts a folder; its UIDVALIDITY is its never-reused row id.
pub(crate) fn insert_folder(
    conn: &Connection,
    account_id: i64,
    name: &str,
    special_use: Option<&str>,
    system: bool,
) -> Result<()> {
    cached::execute(
        conn,
        "INSERT INTO folders (account_id, name, special_use, system, uidvalidity)
         VALUES (?1, ?2, ?3, ?4, 0)",
        params![account_id, name, special_use, system],
    )
    .map_err(|e| unique(e, name))?;
    cached::execute(
        conn,
        "UPDATE folders SET uidvalidity = id WHERE id = ?1",
        [conn.last_insert_rowid()],
    )?;
    // The account's own folders are subscribed, so clients that show subscribed folders
    // only (Thunderbird's default) still see them; a user's new folder is not.
    if system {
        cached::execute(
            conn,
            "INSERT OR IGNORE INTO subscriptions (account_id, name) VALUES (?1, ?2)",
            params![account_id, name],
        )?;
    }
    Ok(())
}

/// Creates an account and its standard folders.
pub fn create_account(conn: &Connection, new: &NewAccount) -> Result<Account> {
    let (address, domain) = lookup::address(&new.address)?;
    let (domain_id, default_quota): (i64, i64) = conn
        .query_row(
            "SELECT id, default_quota FROM domains WHERE name = ?1",
            [&domain],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?
        .ok_or_else(|| Error::NoSuchDomain(domain.clone()))?;
    let quota = match new.quota {
        Some(q) => q,
        None => from_db(default_quota, "default_quota")?,
    };
    cached::execute(
        conn,
        "INSERT INTO accounts (domain_id, address, password_hash, quota, receipts_folder)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            domain_id,
            address,
            new.password_hash,
            to_db(quota),
            new.receipts_folder
        ],
    )
    .map_err(|e| unique(e, &address))?;
    let account_id = conn.last_insert_rowid();
    for (name, special_use) in STANDARD_FOLDERS {
        insert_folder(conn, account_id, name, *special_use, true)?;
    }
    if new.receipts_folder {
        insert_folder(conn, account_id, RECEIPTS_FOLDER, None, true)?;
    }
    get_account(conn, &address)
}

/// Builds an [`Account`] from `address, domain, password_hash, quota, receipts_folder`.
fn account_row(r: &Row<'_>) -> rusqlite::Result<(String, String, String, i64, bool)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

/// Columns read by [`account_row`].
const ACCOUNT_COLUMNS: &str =
    "SELECT a.address, d.name, a.password_hash, a.quota, a.receipts_folder
     FROM accounts a JOIN domains d ON a.domain_id = d.id";

/// Converts the raw row into an [`Account`].
fn to_account(row: (String, String, String, i64, bool)) -> Result<Account> {
    let (address, domain, password_hash, quota, receipts_folder) = row;
    Ok(Account {
        address,
        domain,
        password_hash,
        quota: from_db(quota, "quota")?,
        receipts_folder,
    })
}

/// The account with this address (any case).
pub fn get_account(conn: &Connection, addr: &str) -> Result<Account> {
    let (addr, _) = lookup::address(addr)?;
    let row = cached::query_row(
        conn,
        &format!("{ACCOUNT_COLUMNS} WHERE a.address = ?1"),
        [&addr],
        account_row,
    )
    .optional()?
    .ok_or(Error::NoSuchAccount(addr))?;
    to_account(row)
}

/// Accounts, by address; only those of `domain` if given.
pub fn list_accounts(conn: &Connection, domain: Option<&str>) -> Result<Vec<Account>> {
    let domain = domain.map(lookup::domain_name).transpose()?;
    let mut stmt = conn.prepare_cached(&format!(
        "{ACCOUNT_COLUMNS} WHERE ?1 IS NULL OR d.name = ?1 ORDER BY a.address"
    ))?;
    let rows = stmt.query_map([domain], account_row)?;
    rows.map(|row| to_account(row?)).collect()
}

/// Removes an account with its folders and messages (its security archive stays).
pub fn remove_account(conn: &Connection, addr: &str) -> Result<()> {
    let (id, _) = lookup::account(conn, addr)?;
    // Folders and messages go with the account (ON DELETE CASCADE): delete the messages
    // first, so their blobs are released.
    blobs::unreference(
        conn,
        "DELETE FROM messages WHERE folder_id IN (SELECT id FROM folders WHERE account_id = ?1)
         RETURNING blob",
        [id],
    )?;
    cached::execute(conn, "DELETE FROM accounts WHERE id = ?1", [id])?;
    Ok(())
}

/// Replaces the stored password hash.
pub fn set_password_hash(conn: &Connection, addr: &str, hash: &str) -> Result<()> {
    let (id, _) = lookup::account(conn, addr)?;
    cached::execute(
        conn,
        "UPDATE accounts SET password_hash = ?1 WHERE id = ?2",
        params![hash, id],
    )?;
    Ok(())
}

/// Sets the quota; lowering it below current usage only refuses new deliveries.
pub fn set_quota(conn: &Connection, addr: &str, quota: u64) -> Result<()> {
    let (id, _) = lookup::account(conn, addr)?;
    cached::execute(
        conn,
        "UPDATE accounts SET quota = ?1 WHERE id = ?2",
        params![to_db(quota), id],
    )?;
    Ok(())
}

/// Turns filing receipts in [`RECEIPTS_FOLDER`] on or off, creating the folder if needed.
pub fn set_receipts_folder(conn: &Connection, addr: &str, on: bool) -> Result<()> {
    let (id, _) = lookup::account(conn, addr)?;
    cached::execute(
        conn,
        "UPDATE accounts SET receipts_folder = ?1 WHERE id = ?2",
        params![on, id],
    )?;
    let exists: bool = cached::query_row(
        conn,
        "SELECT EXISTS (SELECT 1 FROM folders WHERE account_id = ?1 AND name = ?2)",
        params![id, RECEIPTS_FOLDER],
        |r| r.get(0),
    )?;
    if on && !exists {
        insert_folder(conn, id, RECEIPTS_FOLDER, None, true)?;
    }
    Ok(())
}
