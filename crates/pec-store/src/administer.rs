//! Administrative changes in one transaction (SQLite backend; see
//! [`crate::AdminChange`]): the change, its mailbox event and its legal log record are
//! one writer job, so they commit together or not at all; the writer thread runs one job
//! at a time, so an allotment check and the change it allows cannot interleave with
//! another change.

use rusqlite::{Connection, OptionalExtension, params};

use crate::accounts::{self, unique};
use crate::error::{Error, Result};
use crate::lookup::{self, from_db};
use crate::model::{Admin, AdminAction, AdminChange, ApiToken, FlagOp, SUSPENDED_MARK};
use crate::{archive, cached, enti, legal_log, messages, registry};

/// Applies `change`; `false` if there was nothing to change (then nothing is recorded).
pub fn administer(conn: &Connection, change: &AdminChange) -> Result<bool> {
    let mark = SUSPENDED_MARK.to_string();
    match &change.action {
        AdminAction::AddEnte(ente) => enti::add_ente(conn, ente)?,
        AdminAction::AddDomain {
            name,
            default_quota,
        } => accounts::add_domain(conn, name, *default_quota)?,
        AdminAction::RemoveDomain(name) => accounts::remove_domain(conn, name)?,
        AdminAction::AddAdmin(admin) => enti::add_admin(conn, admin)?,
        AdminAction::CreateMailbox(new) => {
            accounts::create_account(conn, new)?;
            check_allotment(conn, &new.address)?;
        }
        AdminAction::RemoveMailbox(address) => accounts::remove_account(conn, address)?,
        AdminAction::SetPassword { address, hash } => {
            let (id, _) = lookup::account(conn, address)?;
            cached::execute(
                conn,
                "UPDATE accounts SET password_hash = CASE WHEN substr(password_hash, 1, 1) = ?3
                 THEN ?3 || ?2 ELSE ?2 END WHERE id = ?1",
                params![id, hash, mark],
            )?;
        }
        AdminAction::SetQuota { address, quota } => {
            accounts::set_quota(conn, address, *quota)?;
            check_allotment(conn, address)?;
        }
        AdminAction::Suspend { address, on } => {
            let (id, _) = lookup::account(conn, address)?;
            let n = cached::execute(
                conn,
                "UPDATE accounts SET password_hash = CASE WHEN ?2 THEN ?3 || password_hash
                 ELSE substr(password_hash, 2) END
                 WHERE id = ?1 AND (substr(password_hash, 1, 1) = ?3) = NOT ?2",
                params![id, on, mark],
            )?;
            if n == 0 {
                return Ok(false);
            }
        }
        AdminAction::ReceiptsFolder { address, on } => {
            accounts::set_receipts_folder(conn, address, *on)?
        }
        AdminAction::ArchiveOptions { address, options } => {
            archive::set_options(conn, address, options)?
        }
        AdminAction::SetProtocolNumber {
            id,
            number,
            keyword,
        } => {
            let event = registry::set_protocol(conn, *id, number)?;
            if let Some((folder, uid)) = &event.message {
                let keyword = std::slice::from_ref(keyword);
                match messages::store_flags(
                    conn,
                    &event.address,
                    folder,
                    &[*uid],
                    FlagOp::Add,
                    keyword,
                ) {
                    Ok(_)
                    | Err(
                        Error::NoSuchAccount(_) | Error::NoSuchFolder(_) | Error::NoSuchMessage(_),
                    ) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        AdminAction::CreateToken(token) => {
            cached::execute(
                conn,
                "INSERT INTO api_tokens (login, name, hash, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![
                    token.login.to_lowercase(),
                    token.name,
                    token.hash,
                    token.created_at
                ],
            )
            .map_err(|e| unique(e, &token.name))?;
        }
        AdminAction::RevokeToken { login, name } => {
            let n = cached::execute(
                conn,
                "DELETE FROM api_tokens WHERE login = ?1 AND name = ?2",
                params![login.to_lowercase(), name],
            )?;
            if n == 0 {
                return Err(Error::NoSuchToken(name.clone()));
            }
        }
    }
    if let Some(event) = &change.event {
        enti::record_mailbox_event(conn, event)?;
    }
    legal_log::append(conn, std::slice::from_ref(&change.log))?;
    Ok(true)
}

/// Refuses the change just made if the quotas of the mailboxes of the ente owning
/// `address`'s domain now pass its allotment.
fn check_allotment(conn: &Connection, address: &str) -> Result<()> {
    let (_, domain) = lookup::address(address)?;
    let found: Option<(String, i64, i64)> = cached::query_row(
        conn,
        "SELECT e.name, e.allotment,
                (SELECT COALESCE(SUM(a.quota), 0) FROM accounts a
                 JOIN domains d ON d.id = a.domain_id
                 JOIN ente_domains o ON o.domain = d.name
                 WHERE o.ente_id = e.id)
         FROM ente_domains x JOIN enti e ON e.id = x.ente_id WHERE x.domain = ?1",
        [&domain],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .optional()?;
    let Some((ente, allotment, total)) = found else {
        return Ok(());
    };
    let (allotment, requested) = (
        from_db(allotment, "allotment")?,
        from_db(total, "quota total")?,
    );
    if requested > allotment {
        return Err(Error::AllotmentExceeded {
            ente,
            requested,
            allotment,
        });
    }
    Ok(())
}

/// The administrator the token whose SHA-256 is `hash` acts for.
pub fn find_token(conn: &Connection, hash: &str) -> Result<Option<Admin>> {
    Ok(cached::query_row(
        conn,
        "SELECT a.login, e.name, a.password_hash FROM api_tokens t
         JOIN admins a ON a.login = t.login
         LEFT JOIN enti e ON e.id = a.ente_id WHERE t.hash = ?1",
        [hash],
        |r| {
            Ok(Admin {
                login: r.get(0)?,
                ente: r.get(1)?,
                password_hash: r.get(2)?,
            })
        },
    )
    .optional()?)
}

/// The tokens of `login` (all without), by login and name.
pub fn list_tokens(conn: &Connection, login: Option<&str>) -> Result<Vec<ApiToken>> {
    let mut stmt = conn.prepare_cached(
        "SELECT login, name, hash, created_at FROM api_tokens
         WHERE ?1 IS NULL OR login = ?1 ORDER BY login, name",
    )?;
    let rows = stmt.query_map([login.map(str::to_lowercase)], |r| {
        Ok(ApiToken {
            login: r.get(0)?,
            name: r.get(1)?,
            hash: r.get(2)?,
            created_at: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
