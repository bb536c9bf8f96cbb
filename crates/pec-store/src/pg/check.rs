//! `pecd store check` on PostgreSQL: every blob re-hashed, every reference count and
//! every usage counter compared with the rows they count. (The database's own integrity
//! is PostgreSQL's business: checksums, `pg_amcheck`.)

use postgres::Transaction;

use super::blobs;
use crate::error::Result;
use crate::model::CheckReport;

/// Checks the store in the caller's snapshot.
pub fn check(tx: &mut Transaction<'_>) -> Result<CheckReport> {
    let mut report = CheckReport::default();
    for (hash, counted, stored) in blobs::census(tx)? {
        match stored {
            None => {
                report.blobs_checked += 1;
                report.missing.push(hash);
                continue;
            }
            Some(refs) if refs != counted => report.database.push(format!(
                "blob {hash}: {refs} references recorded, {counted} rows name it"
            )),
            Some(_) => {}
        }
        if counted > 0 {
            report.blobs_checked += 1;
            if blobs::intact(tx, &hash)? == Some(false) {
                report.corrupt.push(hash);
            }
        }
    }
    for r in tx.query(
        "SELECT a.address, a.used, (SELECT coalesce(sum(m.size), 0)::bigint FROM messages m
             JOIN folders f ON m.folder_id = f.id WHERE f.account_id = a.id AND NOT m.expunged)
         FROM accounts a ORDER BY a.address",
        &[],
    )? {
        let (address, used, sum): (String, i64, i64) = (r.get(0), r.get(1), r.get(2));
        if used != sum {
            report.database.push(format!(
                "account {address}: usage counter {used}, messages {sum} bytes"
            ));
        }
    }
    Ok(report)
}
