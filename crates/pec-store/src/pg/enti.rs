//! Enti, their administrators and the mailbox events billing counts (PostgreSQL
//! backend), as the embedded store keeps them ([`crate::enti`]).

use postgres::Transaction;

use super::directory::unique;
use crate::error::{Error, Result};
use crate::lookup::{self, from_db, to_db};
use crate::model::{Admin, Ente, MailboxEvent};

/// Adds an ente and its domains, which must be hosted.
pub fn add_ente(tx: &mut Transaction<'_>, ente: &Ente) -> Result<()> {
    let id: i64 = tx
        .query_one(
            "INSERT INTO enti (name, allotment) VALUES ($1, $2) RETURNING id",
            &[&ente.name, &to_db(ente.allotment)],
        )
        .map_err(|e| unique(e, &ente.name))?
        .get(0);
    for domain in &ente.domains {
        let domain = lookup::domain_name(domain)?;
        let hosted: bool = tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM domains WHERE name = $1)",
                &[&domain],
            )?
            .get(0);
        if !hosted {
            return Err(Error::NoSuchDomain(domain));
        }
        tx.execute(
            "INSERT INTO ente_domains (domain, ente_id) VALUES ($1, $2)",
            &[&domain, &id],
        )
        .map_err(|e| unique(e, &domain))?;
    }
    Ok(())
}

/// Every ente with its domains, by name.
pub fn list_enti(tx: &mut Transaction<'_>) -> Result<Vec<Ente>> {
    let rows = tx.query(
        "SELECT e.name, e.allotment, d.domain FROM enti e
         LEFT JOIN ente_domains d ON d.ente_id = e.id
         ORDER BY e.name COLLATE \"C\", d.domain COLLATE \"C\"",
        &[],
    )?;
    let mut enti: Vec<Ente> = Vec::new();
    for r in &rows {
        let name: String = r.get(0);
        if enti.last().is_none_or(|e| e.name != name) {
            enti.push(Ente {
                name,
                domains: Vec::new(),
                allotment: from_db(r.get(1), "allotment")?,
            });
        }
        if let (Some(e), Some(d)) = (enti.last_mut(), r.get::<_, Option<String>>(2)) {
            e.domains.push(d);
        }
    }
    Ok(enti)
}

/// Adds an administrator.
pub fn add_admin(tx: &mut Transaction<'_>, admin: &Admin) -> Result<()> {
    let login = admin.login.trim().to_lowercase();
    let ente_id: Option<i64> = match &admin.ente {
        None => None,
        Some(name) => Some(
            tx.query_opt("SELECT id FROM enti WHERE name = $1", &[name])?
                .ok_or_else(|| Error::NoSuchEnte(name.clone()))?
                .get(0),
        ),
    };
    tx.execute(
        "INSERT INTO admins (login, ente_id, password_hash) VALUES ($1, $2, $3)",
        &[&login, &ente_id, &admin.password_hash],
    )
    .map_err(|e| unique(e, &login))?;
    Ok(())
}

/// The administrator with this login.
pub fn find_admin(tx: &mut Transaction<'_>, login: &str) -> Result<Option<Admin>> {
    Ok(tx
        .query_opt(
            "SELECT a.login, e.name, a.password_hash FROM admins a
             LEFT JOIN enti e ON e.id = a.ente_id WHERE a.login = $1",
            &[&login.trim().to_lowercase()],
        )?
        .map(|r| Admin {
            login: r.get(0),
            ente: r.get(1),
            password_hash: r.get(2),
        }))
}

/// Keeps a mailbox event.
pub fn record_mailbox_event(tx: &mut Transaction<'_>, event: &MailboxEvent) -> Result<()> {
    tx.execute(
        "INSERT INTO mailbox_events (address, kind, at) VALUES ($1, $2, $3)",
        &[&event.address.to_lowercase(), &event.kind, &event.at],
    )?;
    Ok(())
}

/// Mailbox events before `to`, by address, time and id.
pub fn mailbox_events(tx: &mut Transaction<'_>, to: i64) -> Result<Vec<MailboxEvent>> {
    Ok(tx
        .query(
            "SELECT address, kind, at FROM mailbox_events WHERE at < $1
             ORDER BY address COLLATE \"C\", at, id",
            &[&to],
        )?
        .iter()
        .map(|r| MailboxEvent {
            address: r.get(0),
            kind: r.get(1),
            at: r.get(2),
        })
        .collect())
}
