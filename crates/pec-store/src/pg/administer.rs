//! Administrative changes in one transaction (PostgreSQL backend), as the embedded store
//! makes them ([`crate::administer`]). Quota changes first lock the owning ente's row, so
//! two of them for one ente (from any nodes) take turns: the second, in READ COMMITTED,
//! sums the quotas only once the first has committed.

use postgres::Transaction;

use super::changes::Node;
use super::directory::{self, unique};
use super::{enti, log, mailboxes, registry};
use crate::error::{Error, Result};
use crate::lookup::{self, from_db};
use crate::model::{Admin, AdminAction, AdminChange, ApiToken, FlagOp, SUSPENDED_MARK};

/// Applies `change`; `false` if there was nothing to change (then nothing is recorded).
pub fn administer(tx: &mut Transaction<'_>, node: &Node, change: &AdminChange) -> Result<bool> {
    let mark = SUSPENDED_MARK.to_string();
    match &change.action {
        AdminAction::AddEnte(ente) => enti::add_ente(tx, ente)?,
        AdminAction::AddDomain {
            name,
            default_quota,
        } => directory::add_domain(tx, name, *default_quota)?,
        AdminAction::RemoveDomain(name) => directory::remove_domain(tx, name)?,
        AdminAction::AddAdmin(admin) => enti::add_admin(tx, admin)?,
        AdminAction::CreateMailbox(new) => {
            let ente = lock_ente(tx, &new.address)?;
            directory::create_account(tx, new)?;
            check_allotment(tx, ente)?;
        }
        AdminAction::RemoveMailbox(address) => directory::remove_account(tx, address)?,
        AdminAction::SetPassword { address, hash } => {
            let (id, _) = directory::account_id(tx, address, true)?;
            tx.execute(
                "UPDATE accounts SET password_hash = CASE WHEN left(password_hash, 1) = $3
                 THEN $3 || $2 ELSE $2 END WHERE id = $1",
                &[&id, hash, &mark],
            )?;
        }
        AdminAction::SetQuota { address, quota } => {
            let ente = lock_ente(tx, address)?;
            directory::set_quota(tx, address, *quota)?;
            check_allotment(tx, ente)?;
        }
        AdminAction::Suspend { address, on } => {
            let (id, _) = directory::account_id(tx, address, true)?;
            let n = tx.execute(
                "UPDATE accounts SET password_hash = CASE WHEN $2 THEN $3 || password_hash
                 ELSE substr(password_hash, 2) END
                 WHERE id = $1 AND (left(password_hash, 1) = $3) = NOT $2",
                &[&id, on, &mark],
            )?;
            if n == 0 {
                return Ok(false);
            }
        }
        AdminAction::ReceiptsFolder { address, on } => {
            directory::set_receipts_folder(tx, address, *on)?
        }
        AdminAction::ArchiveOptions { address, options } => {
            mailboxes::set_archive_options(tx, address, options)?
        }
        AdminAction::SetProtocolNumber {
            id,
            number,
            keyword,
        } => {
            let event = registry::set_protocol(tx, *id, number)?;
            if let Some((folder, uid)) = &event.message {
                let keyword = std::slice::from_ref(keyword);
                let at = (event.address.as_str(), folder.as_str());
                match mailboxes::store_flags(tx, node, at, &[*uid], FlagOp::Add, keyword) {
                    Ok(_)
                    | Err(
                        Error::NoSuchAccount(_) | Error::NoSuchFolder(_) | Error::NoSuchMessage(_),
                    ) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        AdminAction::CreateToken(token) => {
            tx.execute(
                "INSERT INTO api_tokens (login, name, hash, created_at) VALUES ($1, $2, $3, $4)",
                &[
                    &token.login.to_lowercase(),
                    &token.name,
                    &token.hash,
                    &token.created_at,
                ],
            )
            .map_err(|e| unique(e, &token.name))?;
        }
        AdminAction::RevokeToken { login, name } => {
            let n = tx.execute(
                "DELETE FROM api_tokens WHERE login = $1 AND name = $2",
                &[&login.to_lowercase(), name],
            )?;
            if n == 0 {
                return Err(Error::NoSuchToken(name.clone()));
            }
        }
    }
    if let Some(event) = &change.event {
        enti::record_mailbox_event(tx, event)?;
    }
    log::append(tx, std::slice::from_ref(&change.log))?;
    Ok(true)
}

/// The ente owning `address`'s domain (its id), its row locked until the transaction
/// ends; `None` for a domain of no ente.
fn lock_ente(tx: &mut Transaction<'_>, address: &str) -> Result<Option<i64>> {
    let (_, domain) = lookup::address(address)?;
    Ok(tx
        .query_opt(
            "SELECT e.id FROM enti e JOIN ente_domains x ON x.ente_id = e.id
             WHERE x.domain = $1 FOR UPDATE OF e",
            &[&domain],
        )?
        .map(|r| r.get(0)))
}

/// Refuses the change just made if the quotas of ente `id`'s mailboxes now pass its
/// allotment.
fn check_allotment(tx: &mut Transaction<'_>, id: Option<i64>) -> Result<()> {
    let Some(id) = id else {
        return Ok(());
    };
    let r = tx.query_one(
        "SELECT e.name, e.allotment,
                (SELECT COALESCE(SUM(a.quota), 0)::BIGINT FROM accounts a
                 JOIN domains d ON d.id = a.domain_id
                 JOIN ente_domains o ON o.domain = d.name
                 WHERE o.ente_id = e.id)
         FROM enti e WHERE e.id = $1",
        &[&id],
    )?;
    let (allotment, requested) = (
        from_db(r.get(1), "allotment")?,
        from_db(r.get(2), "quota total")?,
    );
    if requested > allotment {
        return Err(Error::AllotmentExceeded {
            ente: r.get(0),
            requested,
            allotment,
        });
    }
    Ok(())
}

/// The administrator the token whose SHA-256 is `hash` acts for.
pub fn find_token(tx: &mut Transaction<'_>, hash: &str) -> Result<Option<Admin>> {
    Ok(tx
        .query_opt(
            "SELECT a.login, e.name, a.password_hash FROM api_tokens t
             JOIN admins a ON a.login = t.login
             LEFT JOIN enti e ON e.id = a.ente_id WHERE t.hash = $1",
            &[&hash],
        )?
        .map(|r| Admin {
            login: r.get(0),
            ente: r.get(1),
            password_hash: r.get(2),
        }))
}

/// The tokens of `login` (all without), by login and name.
pub fn list_tokens(tx: &mut Transaction<'_>, login: Option<&str>) -> Result<Vec<ApiToken>> {
    let login = login.map(str::to_lowercase);
    Ok(tx
        .query(
            "SELECT login, name, hash, created_at FROM api_tokens
             WHERE $1::TEXT IS NULL OR login = $1
             ORDER BY login COLLATE \"C\", name COLLATE \"C\"",
            &[&login],
        )?
        .iter()
        .map(|r| ApiToken {
            login: r.get(0),
            name: r.get(1),
            hash: r.get(2),
            created_at: r.get(3),
        })
        .collect())
}
