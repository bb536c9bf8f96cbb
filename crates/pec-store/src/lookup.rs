//! Shared helpers of the SQLite backend: name normalisation, integer range
//! conversions, and resolving an address or folder name to its row.

use rusqlite::{Connection, OptionalExtension, params};

use crate::cached;
use crate::error::{Error, Result};

/// Lowercases and validates a domain name.
pub fn domain_name(name: &str) -> Result<String> {
    let name = name.trim().to_ascii_lowercase();
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && !name.starts_with('.')
        && !name.ends_with('.');
    if ok {
        Ok(name)
    } else {
        Err(Error::InvalidName(name))
    }
}

/// Lowercases and validates an address; returns it with its domain part.
pub fn address(addr: &str) -> Result<(String, String)> {
    let addr = addr.trim().to_lowercase();
    match addr.rsplit_once('@') {
        Some((local, domain))
            if !local.is_empty()
                && !local
                    .bytes()
                    .any(|b| b.is_ascii_whitespace() || b.is_ascii_control()) =>
        {
            let domain = domain_name(domain).map_err(|_| Error::InvalidName(addr.clone()))?;
            Ok((addr, domain))
        }
        _ => Err(Error::InvalidName(addr)),
    }
}

/// Validates a folder name; `INBOX` is case-insensitive and always spelled so.
pub fn folder_name(name: &str) -> Result<String> {
    if name.is_empty() || name.len() > 255 || name.chars().any(char::is_control) {
        return Err(Error::InvalidName(name.to_string()));
    }
    if name.eq_ignore_ascii_case("INBOX") {
        Ok("INBOX".to_string())
    } else {
        Ok(name.to_string())
    }
}

/// A byte count or quota for SQLite, which stores signed 64-bit integers.
pub fn to_db(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A non-negative integer read back from SQLite.
pub fn from_db(v: i64, what: &str) -> Result<u64> {
    u64::try_from(v).map_err(|_| Error::Corrupt(format!("{what} = {v}")))
}

/// A UID or UIDVALIDITY read back from SQLite.
pub fn uid_from_db(v: i64, what: &str) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::Corrupt(format!("{what} = {v}")))
}

/// A list of strings as stored in the database: a JSON array.
pub fn list_to_db(items: &[String]) -> Result<String> {
    serde_json::to_string(items).map_err(|e| Error::Corrupt(format!("list not encodable: {e}")))
}

/// A list of strings read back from the database.
pub fn list_from_db(text: &str, what: &str) -> Result<Vec<String>> {
    serde_json::from_str(text).map_err(|_| Error::Corrupt(format!("{what} = {text:?}")))
}

/// Row id and quota of the account with this address.
pub fn account(conn: &Connection, addr: &str) -> Result<(i64, u64)> {
    let (addr, _) = address(addr)?;
    let row: Option<(i64, i64)> = cached::query_row(
        conn,
        "SELECT id, quota FROM accounts WHERE address = ?1",
        [&addr],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()?;
    let (id, quota) = row.ok_or(Error::NoSuchAccount(addr))?;
    Ok((id, from_db(quota, "quota")?))
}

/// Row id of a folder of an account.
pub fn folder(conn: &Connection, account_id: i64, name: &str) -> Result<i64> {
    let name = folder_name(name)?;
    cached::query_row(
        conn,
        "SELECT id FROM folders WHERE account_id = ?1 AND name = ?2",
        params![account_id, name],
        |r| r.get(0),
    )
    .optional()?
    .ok_or(Error::NoSuchFolder(name))
}

/// Bytes used by an account: sizes of its messages that are not expunged (kept in the
/// account's row by triggers, schema version 4).
pub fn usage(conn: &Connection, account_id: i64) -> Result<u64> {
    let used: i64 = cached::query_row(
        conn,
        "SELECT used FROM accounts WHERE id = ?1",
        [account_id],
        |r| r.get(0),
    )?;
    from_db(used, "usage")
}

/// Refuses adding `size` bytes to an account if that would pass its quota; otherwise the
/// bytes it uses before them.
pub fn check_quota(
    conn: &Connection,
    addr: &str,
    account_id: i64,
    quota: u64,
    size: u64,
) -> Result<u64> {
    let used = usage(conn, account_id)?;
    if used.saturating_add(size) > quota {
        return Err(Error::QuotaExceeded {
            address: addr.to_string(),
            used,
            size,
            quota,
        });
    }
    Ok(used)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_lowercased_and_validated() {
        assert_eq!(
            address(" Mario.Rossi@PEC.Example.IT ").unwrap(),
            ("mario.rossi@pec.example.it".into(), "pec.example.it".into())
        );
        for bad in [
            "",
            "nodomain",
            "@x.it",
            "a b@x.it",
            "a@",
            "a@bad_domain",
            "a@.x",
        ] {
            assert!(address(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn inbox_is_case_insensitive() {
        assert_eq!(folder_name("inbox").unwrap(), "INBOX");
        assert_eq!(folder_name("Archivio").unwrap(), "Archivio");
        assert!(folder_name("").is_err());
        assert!(folder_name("a\nb").is_err());
    }

    #[test]
    fn integer_conversions_refuse_out_of_range() {
        assert_eq!(to_db(u64::MAX), i64::MAX);
        assert!(from_db(-1, "x").is_err());
        assert!(uid_from_db(1 << 33, "uid").is_err());
    }

    #[test]
    fn lists_roundtrip_and_refuse_garbage() {
        let items = vec!["a@x.it".to_string(), "b, \"c\"".to_string()];
        assert_eq!(
            list_from_db(&list_to_db(&items).unwrap(), "l").unwrap(),
            items
        );
        assert!(list_from_db("not json", "l").is_err());
        assert!(list_from_db("[1]", "l").is_err());
    }
}
