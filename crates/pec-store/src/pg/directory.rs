//! Domains and accounts (PostgreSQL backend); creating an account creates its standard
//! folders in the same transaction. Names are checked and normalised as in the embedded
//! store ([`crate::lookup`]).

use postgres::Transaction;
use postgres::error::SqlState;

use super::blobs;
use crate::accounts::{RECEIPTS_FOLDER, STANDARD_FOLDERS};
use crate::error::{Error, Result};
use crate::lookup::{self, from_db, to_db};
use crate::model::{Account, Domain, NewAccount};

/// Maps a unique violation to [`Error::AlreadyExists`].
pub fn unique(e: postgres::Error, name: &str) -> Error {
    if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
        Error::AlreadyExists(name.to_string())
    } else {
        Error::Postgres(e)
    }
}

/// Adds a domain.
pub fn add_domain(tx: &mut Transaction<'_>, name: &str, default_quota: u64) -> Result<()> {
    let name = lookup::domain_name(name)?;
    tx.execute(
        "INSERT INTO domains (name, default_quota) VALUES ($1, $2)",
        &[&name, &to_db(default_quota)],
    )
    .map_err(|e| unique(e, &name))?;
    Ok(())
}

/// All domains, by name.
pub fn list_domains(tx: &mut Transaction<'_>) -> Result<Vec<Domain>> {
    tx.query("SELECT name, default_quota FROM domains ORDER BY name", &[])?
        .iter()
        .map(|r| {
            Ok(Domain {
                name: r.get(0),
                default_quota: from_db(r.get(1), "default_quota")?,
            })
        })
        .collect()
}

/// Removes a domain that has no accounts left.
pub fn remove_domain(tx: &mut Transaction<'_>, name: &str) -> Result<()> {
    let name = lookup::domain_name(name)?;
    let id: i64 = tx
        .query_opt(
            "SELECT id FROM domains WHERE name = $1 FOR UPDATE",
            &[&name],
        )?
        .map(|r| r.get(0))
        .ok_or_else(|| Error::NoSuchDomain(name.clone()))?;
    let busy: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM accounts WHERE domain_id = $1)",
            &[&id],
        )?
        .get(0);
    if busy {
        return Err(Error::DomainNotEmpty(name));
    }
    tx.execute("DELETE FROM domains WHERE id = $1", &[&id])?;
    Ok(())
}

/// Inserts a folder; its UIDVALIDITY is its id, from a sequence that never repeats.
pub fn insert_folder(
    tx: &mut Transaction<'_>,
    account_id: i64,
    name: &str,
    special_use: Option<&str>,
    system: bool,
) -> Result<()> {
    tx.execute(
        "INSERT INTO folders (id, account_id, name, special_use, system, uidvalidity)
         SELECT n.id, $1, $2, $3, $4, n.id FROM (SELECT nextval('folders_id_seq') AS id) n",
        &[&account_id, &name, &special_use, &system],
    )
    .map_err(|e| unique(e, name))?;
    // The account's own folders are subscribed, so clients that show subscribed folders
    // only (Thunderbird's default) still see them; a user's new folder is not.
    if system {
        tx.execute(
            "INSERT INTO subscriptions (account_id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&account_id, &name],
        )?;
    }
    Ok(())
}

/// Creates an account and its standard folders.
pub fn create_account(tx: &mut Transaction<'_>, new: &NewAccount) -> Result<Account> {
    let (address, domain) = lookup::address(&new.address)?;
    let row = tx
        .query_opt(
            "SELECT id, default_quota FROM domains WHERE name = $1",
            &[&domain],
        )?
        .ok_or_else(|| Error::NoSuchDomain(domain.clone()))?;
    let domain_id: i64 = row.get(0);
    let quota = match new.quota {
        Some(q) => q,
        None => from_db(row.get(1), "default_quota")?,
    };
    let account_id: i64 = tx
        .query_one(
            "INSERT INTO accounts (domain_id, address, password_hash, quota, receipts_folder)
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
            &[
                &domain_id,
                &address,
                &new.password_hash,
                &to_db(quota),
                &new.receipts_folder,
            ],
        )
        .map_err(|e| unique(e, &address))?
        .get(0);
    for (name, special_use) in STANDARD_FOLDERS {
        insert_folder(tx, account_id, name, *special_use, true)?;
    }
    if new.receipts_folder {
        insert_folder(tx, account_id, RECEIPTS_FOLDER, None, true)?;
    }
    get_account(tx, &address)
}

/// Columns of an [`Account`], read by [`to_account`].
const ACCOUNT_COLUMNS: &str =
    "SELECT a.address, d.name, a.password_hash, a.quota, a.receipts_folder
     FROM accounts a JOIN domains d ON a.domain_id = d.id";

/// Builds an [`Account`] from a row of [`ACCOUNT_COLUMNS`].
fn to_account(r: &postgres::Row) -> Result<Account> {
    Ok(Account {
        address: r.get(0),
        domain: r.get(1),
        password_hash: r.get(2),
        quota: from_db(r.get(3), "quota")?,
        receipts_folder: r.get(4),
    })
}

/// The account with this address (any case).
pub fn get_account(tx: &mut Transaction<'_>, addr: &str) -> Result<Account> {
    let (addr, _) = lookup::address(addr)?;
    let row = tx
        .query_opt(&format!("{ACCOUNT_COLUMNS} WHERE a.address = $1"), &[&addr])?
        .ok_or(Error::NoSuchAccount(addr))?;
    to_account(&row)
}

/// Accounts, by address; only those of `domain` if given.
pub fn list_accounts(tx: &mut Transaction<'_>, domain: Option<&str>) -> Result<Vec<Account>> {
    let domain = domain.map(lookup::domain_name).transpose()?;
    tx.query(
        &format!("{ACCOUNT_COLUMNS} WHERE $1::text IS NULL OR d.name = $1 ORDER BY a.address"),
        &[&domain],
    )?
    .iter()
    .map(to_account)
    .collect()
}

/// Row id and quota of the account with this address; with `lock`, the account's row is
/// locked until the transaction ends (a delivery checks and adds to its usage under it).
pub fn account_id(tx: &mut Transaction<'_>, addr: &str, lock: bool) -> Result<(i64, u64)> {
    let (addr, _) = lookup::address(addr)?;
    let sql = if lock {
        "SELECT id, quota FROM accounts WHERE address = $1 FOR UPDATE"
    } else {
        "SELECT id, quota FROM accounts WHERE address = $1"
    };
    let row = tx
        .query_opt(sql, &[&addr])?
        .ok_or(Error::NoSuchAccount(addr))?;
    Ok((row.get(0), from_db(row.get(1), "quota")?))
}

/// Removes an account with its folders and messages (its security archive stays).
pub fn remove_account(tx: &mut Transaction<'_>, addr: &str) -> Result<()> {
    let (id, _) = account_id(tx, addr, true)?;
    let released: Vec<String> = tx
        .query(
            "DELETE FROM messages WHERE folder_id IN (SELECT id FROM folders WHERE account_id = $1)
             RETURNING blob, expunged",
            &[&id],
        )?
        .iter()
        .filter(|r| !r.get::<_, bool>(1))
        .map(|r| r.get(0))
        .collect();
    blobs::release(tx, released)?;
    tx.execute("DELETE FROM accounts WHERE id = $1", &[&id])?;
    Ok(())
}

/// Replaces the stored password hash.
pub fn set_password_hash(tx: &mut Transaction<'_>, addr: &str, hash: &str) -> Result<()> {
    let (id, _) = account_id(tx, addr, false)?;
    tx.execute(
        "UPDATE accounts SET password_hash = $1 WHERE id = $2",
        &[&hash, &id],
    )?;
    Ok(())
}

/// Sets the quota; lowering it below current usage only refuses new deliveries.
pub fn set_quota(tx: &mut Transaction<'_>, addr: &str, quota: u64) -> Result<()> {
    let (id, _) = account_id(tx, addr, false)?;
    tx.execute(
        "UPDATE accounts SET quota = $1 WHERE id = $2",
        &[&to_db(quota), &id],
    )?;
    Ok(())
}

/// Turns filing receipts in [`RECEIPTS_FOLDER`] on or off, creating the folder if needed.
pub fn set_receipts_folder(tx: &mut Transaction<'_>, addr: &str, on: bool) -> Result<()> {
    let (id, _) = account_id(tx, addr, true)?;
    tx.execute(
        "UPDATE accounts SET receipts_folder = $1 WHERE id = $2",
        &[&on, &id],
    )?;
    let exists: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM folders WHERE account_id = $1 AND name = $2)",
            &[&id, &RECEIPTS_FOLDER],
        )?
        .get(0);
    if on && !exists {
        insert_folder(tx, id, RECEIPTS_FOLDER, None, true)?;
    }
    Ok(())
}

/// Bytes used by the account and its quota.
pub fn usage(tx: &mut Transaction<'_>, addr: &str) -> Result<(u64, u64)> {
    let (addr, _) = lookup::address(addr)?;
    let row = tx
        .query_opt(
            "SELECT used, quota FROM accounts WHERE address = $1",
            &[&addr],
        )?
        .ok_or(Error::NoSuchAccount(addr))?;
    Ok((from_db(row.get(0), "usage")?, from_db(row.get(1), "quota")?))
}
